/* Tests server/api/loki_patterns.c: the clustering (logfmt keys kept, values and
 * numbers made variable, the first-token rule, runs of variables written once, the
 * cluster limit), the samples per step bucket, and the endpoint against a real store. */
#include "loki_fixture.h"

#include "../../../../server/api/loki_patterns.h"

#define NS 1000000000LL

TestSuite(loki_patterns, .init = lf_open, .fini = lf_close, .timeout = 60);

static const char *drain_json(struct loki_drain *d, int64_t step)
{
    static struct vg_buf b;
    vg_buf_free(&b);
    loki_drain_json(d, step, &b);
    cr_assert(!vg_buf_failed(&b));
    return vg_buf_cstr(&b);
}

Test(loki_patterns, clusters)
{
    struct loki_drain *d = loki_drain_new();
    cr_assert_not_null(d);
    cr_assert_eq(loki_drain_add(d, VG_STR("level=info msg=hello status=200 took=5ms"), 10 * NS), 0);
    cr_assert_eq(loki_drain_add(d, VG_STR("level=error msg=boom status=500 took=1s"), 11 * NS), 0);
    cr_assert_eq(loki_drain_add(d, VG_STR("level=warn msg=slow status=200 took=9ms"), 25 * NS), 0);
    cr_assert_eq(loki_drain_add(d, VG_STR("connected to db-1 in 15 ms"), 12 * NS), 0);
    cr_assert_eq(loki_drain_add(d, VG_STR("connected to db-2 in 3 ms"), 12 * NS), 0);
    cr_assert_eq(loki_drain_add(d, VG_STR("shutting down"), 40 * NS), 0);
    cr_assert_str_eq(drain_json(d, 10 * NS),
                     "[{\"pattern\":\"level=<_> msg=<_> status=<_> took=<_>\","
                     "\"samples\":[[10,2],[20,1]]},"
                     "{\"pattern\":\"connected to <_> in <_> ms\",\"samples\":[[10,2]]},"
                     "{\"pattern\":\"shutting down\",\"samples\":[[40,1]]}]");
    loki_drain_free(d);
}

Test(loki_patterns, first_token_and_runs)
{
    struct loki_drain *d = loki_drain_new();
    loki_drain_add(d, VG_STR("GET /a 12 34"), 0);
    loki_drain_add(d, VG_STR("PUT /a 12 34"), 0);
    cr_assert_str_eq(drain_json(d, NS), "[{\"pattern\":\"GET /a <_>\",\"samples\":[[0,1]]},"
                                        "{\"pattern\":\"PUT /a <_>\",\"samples\":[[0,1]]}]");
    loki_drain_free(d);
}

Test(loki_patterns, cluster_limit)
{
    struct loki_drain *d = loki_drain_new();
    char line[64];
    for (int i = 0; i < LOKI_PATTERNS_MAX_CLUSTERS + 10; i++) {
        snprintf(line, sizeof line, "word%c%c alone", 'a' + i % 26, 'a' + i / 26 % 26);
        cr_assert_eq(loki_drain_add(d, vg_str_c(line), 0), 0);
    }
    const char *j = drain_json(d, NS);
    size_t n = 0;
    for (const char *p = j; (p = strstr(p, "\"pattern\"")); p++)
        n++;
    cr_assert_eq(n, LOKI_PATTERNS_MAX_CLUSTERS);
    loki_drain_free(d);
}

Test(loki_patterns, allocation_failure)
{
    for (uint64_t n = 1; n < 12; n++) {
        struct loki_drain *d = loki_drain_new();
        if (!d)
            continue;
        vg_alloc_fail_after(n);
        int rc = 0;
        for (int i = 0; i < 4 && rc == 0; i++)
            rc = loki_drain_add(d, VG_STR("a b=c d"), i);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM);
        loki_drain_free(d);
    }
}

Test(loki_patterns, endpoint)
{
    int64_t T = (lf_now_s() - 60) * NS;
    lf_push(T - 2 * NS, "app=web", NULL, "user alice logged in");
    lf_push(T - 1 * NS, "app=web", NULL, "user bob logged in");
    lf_push(T, "app=web", NULL, "disk full");
    lf_call("/loki/api/v1/patterns", "query", "{app=\"web\"}", "since", "1h", "step", "1m", NULL);
    cr_assert_str_eq(lf_str("status"), "success");
    cr_assert_eq(lf_len("data"), 2, "%s", lf_resp.body.p);
    cr_assert_str_eq(lf_str("data/0/pattern"), "user <_> logged in");
    int64_t sum = 0;
    for (size_t i = 0; i < lf_len("data/0/samples"); i++) {
        char p[64];
        snprintf(p, sizeof p, "data/0/samples/%zu/1", i);
        sum += lf_int(p);
        snprintf(p, sizeof p, "data/0/samples/%zu/0", i);
        cr_assert_eq(lf_int(p) % 60, 0, "buckets start at multiples of step");
    }
    cr_assert_eq(sum, 2);
    cr_assert_str_eq(lf_str("data/1/pattern"), "disk full");
    lf_call("/loki/api/v1/patterns", "query", "{app=\"web\"}", "step", "0", NULL);
    lf_expect_error(400, "zero or negative");
    lf_call("/loki/api/v1/patterns", NULL);
    lf_expect_error(400, "at least one regexp or equality matcher");
}
