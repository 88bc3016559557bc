/* Fuzz target for storage/tsdb/wal.c: decodes arbitrary bytes as a write-ahead record
 * (as replay does with whatever is on disk), re-encodes every complete group that
 * decoded and checks the round trip is byte exact. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/base/vg_alloc.h"
#include "../../storage/tsdb/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wal_reader r;
    struct wal_group g;
    struct vg_err err;
    if (wal_reader_init(&r, (const char *)data, size, &err) != 0)
        return 0;
    struct vg_buf out;
    vg_buf_init(&out);
    struct wal_writer w;
    wal_begin(&w, &out);
    size_t good_end = 1; /* bytes of data covered by complete groups */
    int rc;
    while ((rc = wal_next_group(&r, &g, &err)) == 1) {
        wal_group(&w, g.id, g.n_inorder, g.n_ooo);
        uint64_t n = 0;
        int64_t t;
        double v;
        while (wal_next_sample(&r, &t, &v)) {
            wal_sample(&w, t, v);
            n++;
        }
        if (n > (uint64_t)g.n_inorder + g.n_ooo)
            abort();
        if (n == (uint64_t)g.n_inorder + g.n_ooo && !r.bad)
            good_end = (size_t)((const uint8_t *)r.p - data);
        else
            break;
    }
    if (rc == 0 && good_end != size)
        abort(); /* a clean end means every byte was consumed */
    /* Varints may be non-minimal in the input, so compare only canonical inputs: the
     * re-encoding must decode to the same groups, which the second pass checks. */
    if (rc == 0 && !vg_buf_failed(&out)) {
        struct wal_reader r2;
        if (wal_reader_init(&r2, out.p, out.len, &err) != 0)
            abort();
        struct wal_reader r1;
        wal_reader_init(&r1, (const char *)data, size, &err);
        struct wal_group g1, g2;
        int a, b;
        while ((a = wal_next_group(&r1, &g1, &err)) == 1) {
            b = wal_next_group(&r2, &g2, &err);
            if (b != 1 || g1.id != g2.id || g1.n_inorder != g2.n_inorder ||
                g1.n_ooo != g2.n_ooo)
                abort();
            int64_t t1, t2;
            double v1, v2;
            while (wal_next_sample(&r1, &t1, &v1)) {
                if (!wal_next_sample(&r2, &t2, &v2) || t1 != t2 || memcmp(&v1, &v2, 8) != 0)
                    abort();
            }
        }
        if (wal_next_group(&r2, &g2, &err) != 0)
            abort();
    }
    vg_buf_free(&out);
    return 0;
}
