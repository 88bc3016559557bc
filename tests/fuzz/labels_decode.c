/* Fuzz target for storage/tsdb/labels.c: decodes arbitrary bytes as a canonical label
 * encoding; whatever decodes must be sorted and unique and re-encode to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/tsdb/labels.h"

#define MAX_LABELS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct label ls[MAX_LABELS];
    struct vg_err err;
    int n = labels_decode((const char *)data, size, ls, MAX_LABELS, &err);
    if (n < 0) {
        if (n != VG_EINVAL && n != VG_ETOOLARGE)
            abort();
        return 0;
    }
    if (labels_check_unique(ls, (size_t)n, &err) != 0)
        abort();
    struct label sorted[MAX_LABELS];
    memcpy(sorted, ls, (size_t)n * sizeof ls[0]);
    labels_sort(sorted, (size_t)n);
    if (labels_cmp(ls, (size_t)n, sorted, (size_t)n) != 0)
        abort();
    if (labels_hash(ls, (size_t)n) != labels_hash(sorted, (size_t)n))
        abort();
    for (int i = 0; i < n; i++) {
        char name[64];
        if (ls[i].name.len < sizeof name && !memchr(ls[i].name.p, 0, ls[i].name.len)) {
            memcpy(name, ls[i].name.p, ls[i].name.len);
            name[ls[i].name.len] = 0;
            if (!vg_str_eq(labels_get(ls, (size_t)n, name), ls[i].value))
                abort();
        }
    }
    struct vg_buf b;
    vg_buf_init(&b);
    labels_encode(ls, (size_t)n, &b);
    if (!vg_buf_failed(&b) && (b.len != size || (size && memcmp(b.p, data, size) != 0)))
        abort();
    vg_buf_free(&b);
    return 0;
}
