/* Fuzz target for selector_parse (server/promql/selector.c): arbitrary bytes as a match[]
 * value. A successful parse must hold at least one matcher that does not match the empty
 * string; a failed one must leave nothing allocated in *out. */
#include "../../server/promql/selector.h"

#include "fuzz_check.h"
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct selector sel;
    struct vg_err err;
    int rc = selector_parse((const char *)data, size, &sel, &err);
    if (rc == 0) {
        FUZZ_CHECK(sel.n >= 1);
        int nonempty = 0;
        for (size_t i = 0; i < sel.n; i++)
            nonempty |= !sel.ms[i]->matches_empty;
        FUZZ_CHECK(nonempty);
    } else {
        FUZZ_CHECK(sel.n == 0 && sel.ms == NULL);
    }
    selector_free(&sel);
    return 0;
}
