/* Fuzz target: the tail_sampling block (server/ingest/tail_sampling.c), a policy tree
 * users write by hand. YAML goes through config_load_buf; the block must either be
 * refused with a "fuzz.yml:line: ..." error or give a sampler that takes a few spans and
 * decides them (flush) without a crash, leak or sanitizer report. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../server/config.h"
#include "../../server/config_node.h"
#include "../../server/ingest/tail_sampling.h"

static int sink(void *ctx, const struct span *spans, size_t n)
{
    (void)ctx, (void)spans, (void)n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct config *c = config_load_buf("fuzz.yml", (const char *)data, size, &err);
    if (!c)
        return 0;
    const struct config_node *b = config_block(c, "tail_sampling");
    if (!b) {
        config_free(c);
        return 0;
    }
    int rc = tail_sampling_check(b, &err);
    if (rc < 0 && err.code != VG_ENOMEM && strncmp(err.msg, "fuzz.yml:", 9) != 0)
        __builtin_trap(); /* every refusal names the file and line */
    struct tail_sampling_sink s = { sink, NULL };
    struct tail_sampling *ts = rc < 0 ? NULL : tail_sampling_new(b, NULL, &s, &err);
    if (ts) {
        struct span_attr attrs[2] = {
            { .key = VG_STR("http.route"), .type = SPAN_VAL_STRING, .v.s = VG_STR("/checkout") },
            { .key = VG_STR("items"), .type = SPAN_VAL_INT, .v.i = 12 },
        };
        struct span sp[3];
        memset(sp, 0, sizeof sp);
        for (int i = 0; i < 3; i++) {
            sp[i].trace_id[0] = (uint8_t)(i % 2 + 1);
            sp[i].span_id[0] = (uint8_t)(i + 1);
            sp[i].start_ns = 1700000000000000000LL;
            sp[i].end_ns = sp[i].start_ns + (int64_t)i * 400000000;
            sp[i].status = (enum span_status)(i % 3);
            sp[i].service = VG_STR("shop");
            sp[i].attrs = attrs;
            sp[i].nattrs = 2;
        }
        struct span pass[3];
        size_t np;
        struct tail_sampling_add_result r;
        tail_sampling_add(ts, sp, 3, 0, pass, &np, &r, &err);
        tail_sampling_tick(ts, 20000000000LL);
        tail_sampling_add(ts, sp, 3, 30000000000LL, pass, &np, &r, &err);
        tail_sampling_free(ts); /* flushes */
    }
    config_free(c);
    return 0;
}
