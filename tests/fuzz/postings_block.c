/* Fuzz target for the packed postings blocks of storage/tsdb/index.c. Input: the key's
 * last id (u64be, 8 bytes), then the block. Whatever decodes must be 1..INDEX_BLOCK_MAX_IDS
 * strictly increasing ids ending at that last id and re-encode to the same bytes; a
 * failure must be VG_EINVAL and leave the output list as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/tsdb/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t last = 0;
    for (int i = 0; i < 8; i++)
        last = last << 8 | data[i];
    const char *p = (const char *)data + 8;
    size_t len = size - 8;
    struct index_ids out = { 0 };
    struct vg_err err;
    if (index_ids_push(&out, 7) != 0)
        abort();
    int rc = index_block_decode(p, len, last, &out, &err);
    if (rc != 0) {
        if (rc != VG_EINVAL || out.n != 1 || !strstr(err.msg, "offset"))
            abort();
        index_ids_free(&out);
        return 0;
    }
    size_t n = out.n - 1;
    if (n == 0 || n > INDEX_BLOCK_MAX_IDS || out.v[out.n - 1] != last)
        abort();
    for (size_t i = 2; i < out.n; i++)
        if (out.v[i - 1] >= out.v[i])
            abort();
    struct vg_buf b;
    vg_buf_init(&b);
    index_block_encode(&b, out.v + 1, n);
    if (!vg_buf_failed(&b) && (b.len != len || memcmp(b.p, p, len) != 0))
        abort();
    char key[13] = { 'P', 'x', 0, 'y', 1 };
    memcpy(key + 5, data, 8);
    if (index_entry_ids(key, sizeof key, p, len) != n)
        abort();
    vg_buf_free(&b);
    index_ids_free(&out);
    return 0;
}
