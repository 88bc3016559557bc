/* Tests server/metrics.c: families and children, the exact text rendered for counters,
 * gauges and histograms, ordering, collectors, misuse, concurrency and allocation
 * failure. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>

#include "../../../server/api/exposition.h"
#include "../../../server/metrics.h"
#include "../../../storage/base/vg_alloc.h"
#include "../../../storage/base/vg_arena.h"

static struct metrics *m;
static struct vg_buf out;

static void setup(void)
{
    m = metrics_new();
    cr_assert_not_null(m);
    vg_buf_init(&out);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    metrics_free(m);
    vg_buf_free(&out);
}

static const char *render(void)
{
    vg_buf_reset(&out);
    metrics_render(m, &out);
    cr_assert_not(vg_buf_failed(&out));
    return vg_buf_cstr(&out);
}

TestSuite(metrics, .init = setup, .fini = teardown);

Test(metrics, unlabelled_counter_shows_zero_before_first_add)
{
    struct metric_family *f =
        metrics_family(m, "vigil_up_total", "Times it went up.", METRIC_COUNTER, NULL, 0, NULL, 0);
    cr_assert_not_null(f);
    cr_assert_str_eq(render(), "# HELP vigil_up_total Times it went up.\n"
                               "# TYPE vigil_up_total counter\n"
                               "vigil_up_total 0\n");
    metric_add(f, 2.5);
    metric_add(f, 1);
    cr_assert_str_eq(render(), "# HELP vigil_up_total Times it went up.\n"
                               "# TYPE vigil_up_total counter\n"
                               "vigil_up_total 3.5\n");
}

Test(metrics, counters_ignore_negative_deltas_and_gauges_take_them)
{
    struct metric_family *c = metrics_family(m, "c_total", "c", METRIC_COUNTER, NULL, 0, NULL, 0);
    struct metric_family *g = metrics_family(m, "g", "g", METRIC_GAUGE, NULL, 0, NULL, 0);
    metric_add(c, 5);
    metric_add(c, -3);
    metric_add(c, NAN);
    metric_set(g, 10);
    metric_add(g, -4);
    cr_assert_str_eq(render(), "# HELP c_total c\n# TYPE c_total counter\nc_total 5\n"
                               "# HELP g g\n# TYPE g gauge\ng 6\n");
}

Test(metrics, children_are_sorted_by_label_values_and_escaped)
{
    const char *names[] = { "code", "path" };
    struct metric_family *f = metrics_family(m, "http_requests_total", "Requests.\nBy code.",
                                             METRIC_COUNTER, names, 2, NULL, 0);
    cr_assert_not_null(f);
    /* Labelled families with no children are left out entirely. */
    cr_assert_str_eq(render(), "");
    metric_add(f, 1, "500", "/b");
    metric_add(f, 1, "200", "/q\"x\\\n");
    metric_add(f, 2, "200", "/a");
    metric_add(f, 1, "200", "/a");
    cr_assert_str_eq(render(),
                     "# HELP http_requests_total Requests.\\nBy code.\n"
                     "# TYPE http_requests_total counter\n"
                     "http_requests_total{code=\"200\",path=\"/a\"} 3\n"
                     "http_requests_total{code=\"200\",path=\"/q\\\"x\\\\\\n\"} 1\n"
                     "http_requests_total{code=\"500\",path=\"/b\"} 1\n");
}

Test(metrics, families_render_in_name_order_whatever_the_registration_order)
{
    metrics_family(m, "zeta", "z", METRIC_GAUGE, NULL, 0, NULL, 0);
    metrics_family(m, "alpha", "a", METRIC_GAUGE, NULL, 0, NULL, 0);
    metrics_family(m, "mid", "m", METRIC_GAUGE, NULL, 0, NULL, 0);
    const char *s = render();
    const char *a = strstr(s, "alpha 0"), *mi = strstr(s, "mid 0"), *z = strstr(s, "zeta 0");
    cr_assert(a && mi && z && a < mi && mi < z, "%s", s);
}

Test(metrics, histogram_uses_default_request_duration_buckets)
{
    const char *names[] = { "handler" };
    struct metric_family *f = metrics_family(m, "req_seconds", "Latency.", METRIC_HISTOGRAM,
                                             names, 1, NULL, 0);
    cr_assert_not_null(f);
    metric_observe(f, 0.003, "/x");
    metric_observe(f, 0.2, "/x");
    metric_observe(f, 0.25, "/x"); /* upper bounds are inclusive */
    metric_observe(f, 42, "/x");
    cr_assert_str_eq(render(),
                     "# HELP req_seconds Latency.\n"
                     "# TYPE req_seconds histogram\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"0.005\"} 1\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"0.01\"} 1\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"0.025\"} 1\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"0.05\"} 1\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"0.1\"} 1\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"0.25\"} 3\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"0.5\"} 3\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"1\"} 3\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"2.5\"} 3\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"5\"} 3\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"10\"} 3\n"
                     "req_seconds_bucket{handler=\"/x\",le=\"+Inf\"} 4\n"
                     "req_seconds_sum{handler=\"/x\"} 42.453\n"
                     "req_seconds_count{handler=\"/x\"} 4\n");
}

Test(metrics, histogram_with_custom_buckets_and_explicit_inf)
{
    const double b[] = { 1, 10, INFINITY };
    struct metric_family *f = metrics_family(m, "size_bytes", "Sizes.", METRIC_HISTOGRAM,
                                             NULL, 0, b, 3);
    cr_assert_not_null(f);
    metric_observe(f, 5);
    metric_observe(f, 100);
    metric_add(f, 1);  /* wrong kind of update: ignored */
    metric_set(f, 1);
    cr_assert_str_eq(render(), "# HELP size_bytes Sizes.\n"
                               "# TYPE size_bytes histogram\n"
                               "size_bytes_bucket{le=\"1\"} 0\n"
                               "size_bytes_bucket{le=\"10\"} 1\n"
                               "size_bytes_bucket{le=\"+Inf\"} 2\n"
                               "size_bytes_sum 105\n"
                               "size_bytes_count 2\n");
}

Test(metrics, observe_on_a_counter_is_ignored)
{
    struct metric_family *f = metrics_family(m, "n_total", "n", METRIC_COUNTER, NULL, 0, NULL, 0);
    metric_observe(f, 3);
    cr_assert(strstr(render(), "n_total 0\n"));
}

Test(metrics, registering_twice_returns_the_same_family)
{
    const char *names[] = { "a" };
    struct metric_family *f1 = metrics_family(m, "x_total", "x", METRIC_COUNTER, names, 1, NULL, 0);
    struct metric_family *f2 = metrics_family(m, "x_total", "x", METRIC_COUNTER, names, 1, NULL, 0);
    cr_assert_not_null(f1);
    cr_assert_eq(f1, f2);
    const char *other[] = { "b" };
    cr_assert_null(metrics_family(m, "x_total", "x", METRIC_COUNTER, other, 1, NULL, 0));
    cr_assert_null(metrics_family(m, "x_total", "x", METRIC_GAUGE, names, 1, NULL, 0));
}

Test(metrics, invalid_shapes_are_rejected)
{
    const char *dup[] = { "a", "a" };
    const char *bad[] = { "1a" };
    const char *reserved[] = { "__x" };
    const char *le[] = { "le" };
    const double desc[] = { 2, 1 };
    cr_assert_null(metrics_family(m, "bad-name", "h", METRIC_GAUGE, NULL, 0, NULL, 0));
    cr_assert_null(metrics_family(m, "", "h", METRIC_GAUGE, NULL, 0, NULL, 0));
    cr_assert_null(metrics_family(m, "9x", "h", METRIC_GAUGE, NULL, 0, NULL, 0));
    cr_assert_null(metrics_family(m, "d", "h", METRIC_GAUGE, dup, 2, NULL, 0));
    cr_assert_null(metrics_family(m, "d", "h", METRIC_GAUGE, bad, 1, NULL, 0));
    cr_assert_null(metrics_family(m, "d", "h", METRIC_GAUGE, reserved, 1, NULL, 0));
    cr_assert_null(metrics_family(m, "h", "h", METRIC_HISTOGRAM, le, 1, NULL, 0));
    cr_assert_null(metrics_family(m, "h", "h", METRIC_HISTOGRAM, NULL, 0, desc, 2));
    cr_assert_not_null(metrics_family(m, "ns:sub_total", "h", METRIC_COUNTER, NULL, 0, NULL, 0));
    /* Updates through a failed registration are harmless no-ops. */
    metric_add(NULL, 1);
    metric_set(NULL, 1);
    metric_observe(NULL, 1);
}

static void collector_a(void *ctx, struct vg_buf *b)
{
    (*(int *)ctx)++;
    vg_buf_puts(b, "# HELP zz_coll A.\n# TYPE zz_coll gauge\nzz_coll 1\n");
}

static void collector_b(void *ctx, struct vg_buf *b)
{
    (void)ctx;
    vg_buf_puts(b, "# HELP aa_coll B.\n# TYPE aa_coll gauge\naa_coll 2\n");
}

Test(metrics, collectors_run_at_every_render_after_the_families)
{
    int calls = 0;
    metrics_family(m, "fam", "f", METRIC_GAUGE, NULL, 0, NULL, 0);
    metrics_add_collector(m, collector_a, &calls);
    metrics_add_collector(m, collector_b, NULL);
    const char *want = "# HELP fam f\n# TYPE fam gauge\nfam 0\n"
                       "# HELP zz_coll A.\n# TYPE zz_coll gauge\nzz_coll 1\n"
                       "# HELP aa_coll B.\n# TYPE aa_coll gauge\naa_coll 2\n";
    cr_assert_str_eq(render(), want);
    cr_assert_str_eq(render(), want);
    cr_assert_eq(calls, 2);
}

Test(metrics, many_children_survive_table_growth_and_render_stably)
{
    const char *names[] = { "i" };
    struct metric_family *f = metrics_family(m, "many", "m", METRIC_GAUGE, names, 1, NULL, 0);
    char v[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(v, sizeof v, "%04d", i);
        metric_set(f, i, v);
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(v, sizeof v, "%04d", i);
        metric_add(f, 1, v);
    }
    char *first = strdup(render());
    cr_assert_str_eq(render(), first);
    cr_assert(strstr(first, "many{i=\"0000\"} 1\nmany{i=\"0001\"} 2\n"));
    cr_assert(strstr(first, "many{i=\"0999\"} 1000\n"));
    free(first);
}

Test(metrics, null_label_values_are_empty_strings)
{
    const char *names[] = { "a" };
    struct metric_family *f = metrics_family(m, "nv", "n", METRIC_GAUGE, names, 1, NULL, 0);
    metric_set(f, 1, (const char *)NULL);
    metric_add(f, 1, "");
    cr_assert(strstr(render(), "nv{a=\"\"} 2\n"));
}

struct worker {
    struct metric_family *c, *h;
    const char *label;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20000; i++) {
        metric_add(w->c, 1, w->label);
        metric_add(w->c, 1, "shared");
        metric_observe(w->h, 0.01, "shared");
    }
    return NULL;
}

Test(metrics, concurrent_updates_are_not_lost)
{
    const char *names[] = { "w" };
    struct metric_family *c = metrics_family(m, "ops_total", "o", METRIC_COUNTER, names, 1, NULL, 0);
    struct metric_family *h = metrics_family(m, "lat", "l", METRIC_HISTOGRAM, names, 1, NULL, 0);
    pthread_t th[4];
    struct worker w[4];
    const char *labels[] = { "a", "b", "c", "d" };
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ c, h, labels[i] };
        pthread_create(&th[i], NULL, hammer, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    const char *s = render();
    cr_assert(strstr(s, "ops_total{w=\"shared\"} 80000\n"), "%s", s);
    cr_assert(strstr(s, "ops_total{w=\"c\"} 20000\n"), "%s", s);
    cr_assert(strstr(s, "lat_count{w=\"shared\"} 80000\n"), "%s", s);
    cr_assert(strstr(s, "lat_bucket{w=\"shared\",le=\"0.005\"} 0\n"), "%s", s);
    cr_assert(strstr(s, "lat_bucket{w=\"shared\",le=\"0.01\"} 80000\n"), "%s", s);
}

Test(metrics, allocation_failures_leave_the_registry_usable)
{
    for (uint64_t n = 1; n < 12; n++) {
        vg_alloc_fail_after(n);
        struct metric_family *f =
            metrics_family(m, "oom_seconds", "o", METRIC_HISTOGRAM, NULL, 0, NULL, 0);
        vg_alloc_fail_after(0);
        if (f) {
            cr_assert(strstr(render(), "oom_seconds_count 0\n"));
            break;
        }
    }
    const char *names[] = { "k" };
    struct metric_family *f = metrics_family(m, "lab", "l", METRIC_GAUGE, names, 1, NULL, 0);
    cr_assert_not_null(f);
    vg_alloc_fail_after(1);
    metric_set(f, 1, "new-child"); /* the child cannot be created: dropped */
    vg_alloc_fail_after(0);
    cr_assert_null(strstr(render(), "lab{"));
    metric_set(f, 1, "new-child");
    cr_assert(strstr(render(), "lab{k=\"new-child\"} 1\n"));
    /* A render that cannot allocate marks the buffer failed instead of dropping lines. */
    struct vg_buf b;
    vg_buf_init(&b);
    vg_alloc_fail_after(1);
    metrics_render(m, &b);
    vg_alloc_fail_after(0);
    cr_assert(vg_buf_failed(&b));
    vg_buf_free(&b);
}

static int count_samples(void *ctx, const struct exposition_entry *e, struct vg_err *err)
{
    (void)err;
    if (e->kind == EXPOSITION_SAMPLE)
        (*(size_t *)ctx)++;
    return 0;
}

Test(metrics, rendered_text_parses_back)
{
    const char *names[] = { "path", "code" };
    struct metric_family *f = metrics_family(m, "req_seconds", "Latency \\ of \"requests\".",
                                             METRIC_HISTOGRAM, names, 2, NULL, 0);
    metric_observe(f, 0.3, "/a\n\"b\"", "200");
    metric_observe(f, INFINITY, "/c", "500");
    const char *s = render();
    struct vg_arena *a = vg_arena_new(4096);
    struct vg_err err;
    size_t n = 0;
    int rc = exposition_parse(s, strlen(s), a, count_samples, &n, &err);
    cr_assert_eq(rc, 0, "%s\n%s", err.msg, s);
    cr_assert_eq(n, 2 * 14);
    vg_arena_free(a);
}
