/* Fuzz target: the form-body parser of the HTTP front end (POST /api/v1/series and the
 * other Prometheus API endpoints take their arguments this way). Every key and value
 * must come back NUL-terminated and no longer than the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../server/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    struct http_arg *args = NULL;
    size_t n = 0;
    if (http_form_parse(a, (const char *)data, size, &args, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (strlen(args[i].key) > size || strlen(args[i].value) > size)
                __builtin_trap();
    }
    vg_arena_free(a);
    return 0;
}
