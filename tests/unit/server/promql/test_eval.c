/* Tests server/promql/eval.c: instant and range selectors (lookback, left-open windows,
 * staleness markers), offset (also negative), @ with timestamps, start() and end(),
 * subquery step alignment, unary minus, loading each selector once, and the helpers
 * (xxHash64 as Prometheus's labels.Hash, labels.String()). */
#include "eval_fixture.h"

#include "../../../../server/promql/eval_int.h"

static void init(void)
{
    fx_reset();
    fx_load("x{a=\"1\"}", 60000, "0+10x10");
    fx_load("y", 60000, "1 stale 3");
}

TestSuite(eval, .init = init, .fini = fx_fini);

Test(eval, instant_selector_picks_newest_sample)
{
    EXPECT_INSTANT("x", 125, "x{a=\"1\"} 20");
    EXPECT_INSTANT("x", 120, "x{a=\"1\"} 20");
    EXPECT_INSTANT("x", 119.999, "x{a=\"1\"} 10");
}

Test(eval, lookback_window_is_left_open)
{
    EXPECT_INSTANT("x", 899.999, "x{a=\"1\"} 100");
    EXPECT_INSTANT("x", 900, ""); /* the sample at 600s is exactly 5m old: excluded */
    fx_opts.lookback_ms = 60000;
    EXPECT_INSTANT("x", 659, "x{a=\"1\"} 100");
    EXPECT_INSTANT("x", 660, "");
}

Test(eval, staleness_marker_hides_series)
{
    EXPECT_INSTANT("y", 30, "y{} 1");
    EXPECT_INSTANT("y", 60, "");
    EXPECT_INSTANT("y", 119, "");
    EXPECT_INSTANT("y", 120, "y{} 3");
    /* a range window drops the marker but keeps the rest */
    EXPECT_INSTANT("count_over_time(y[5m])", 150, "{} 2");
}

Test(eval, offset_and_negative_offset)
{
    EXPECT_INSTANT("x offset 1m", 125, "x{a=\"1\"} 10");
    EXPECT_INSTANT("x offset -1m", 125, "x{a=\"1\"} 30");
    EXPECT_INSTANT("sum_over_time(x[2m] offset 2m)", 240, "{a=\"1\"} 30");
}

Test(eval, at_modifier_pins_time)
{
    EXPECT_INSTANT("x @ 300", 1000, "x{a=\"1\"} 50");
    EXPECT_INSTANT("x @ 300 offset 1m", 1000, "x{a=\"1\"} 40");
    EXPECT_RANGE("x @ start()", 60, 180, 60, "x{a=\"1\"} 10@60 10@120 10@180");
    EXPECT_RANGE("x @ end()", 60, 180, 60, "x{a=\"1\"} 30@60 30@120 30@180");
    EXPECT_RANGE("rate(x[2m] @ 300)", 0, 120, 60,
                 "{a=\"1\"} 0.1666666667@0 0.1666666667@60 0.1666666667@120");
}

Test(eval, range_selector_at_top_of_instant_query)
{
    EXPECT_INSTANT("x[2m]", 120, "x{a=\"1\"} 10@60 20@120");
    EXPECT_INSTANT("x[1m]", 90, "x{a=\"1\"} 10@60");
    EXPECT_INSTANT("nothing[1m]", 90, "");
}

Test(eval, subquery_steps_are_absolute_multiples)
{
    /* (0, 120] at 30s steps: 30, 60, 90, 120 */
    EXPECT_INSTANT("x[2m:30s]", 120, "x{a=\"1\"} 0@30 10@60 10@90 20@120");
    /* (5, 125] -> 30, 60, 90, 120 */
    EXPECT_INSTANT("x[2m:30s]", 125, "x{a=\"1\"} 0@30 10@60 10@90 20@120");
    EXPECT_INSTANT("max_over_time(x[2m:1m] offset 1m)", 300, "{a=\"1\"} 40");
    EXPECT_INSTANT("count_over_time(vector(1)[5m:1m])", 330, "{} 5");
    /* the default step is the configured one (1m) */
    EXPECT_INSTANT("count_over_time(x[5m:])", 600, "{a=\"1\"} 5");
    fx_opts.default_subquery_step_ms = 30000;
    EXPECT_INSTANT("count_over_time(x[5m:])", 600, "{a=\"1\"} 10");
    /* nested subqueries and @ inside */
    EXPECT_INSTANT("max_over_time(max_over_time(x[1m:30s])[2m:1m])", 600, "{a=\"1\"} 100");
    EXPECT_INSTANT("last_over_time(x[1m:30s] @ 300)", 600, "x{a=\"1\"} 50");
    /* a range whose step is wider than the range may see no step at all */
    EXPECT_INSTANT("count_over_time(x[10s:1m])", 90, "");
}

Test(eval, subquery_in_range_query)
{
    EXPECT_RANGE("max_over_time(x[1m:30s])", 60, 180, 60,
                 "{a=\"1\"} 10@60 20@120 30@180");
}

Test(eval, unary_minus_drops_name)
{
    EXPECT_INSTANT("-x", 60, "{a=\"1\"} -10");
    EXPECT_INSTANT("+x", 60, "x{a=\"1\"} 10");
    EXPECT_INSTANT("-(1 + 2)", 60, "scalar -3");
    EXPECT_INSTANT("-{__name__=~\"x|z\"}", 60, "{a=\"1\"} -10");
}

Test(eval, selector_loads_once_per_query)
{
    fx.select_calls = 0;
    EXPECT_RANGE("rate(x[2m])", 120, 600, 60,
                 "{a=\"1\"} 0.1666666667@120 0.1666666667@180 0.1666666667@240 "
                 "0.1666666667@300 0.1666666667@360 0.1666666667@420 0.1666666667@480 "
                 "0.1666666667@540 0.1666666667@600");
    cr_assert_eq(fx.select_calls, 1);
}

Test(eval, string_literal_result)
{
    EXPECT_INSTANT("\"hello\"", 10, "string \"hello\"");
}

Test(eval, labels_hash_is_xxhash64_of_prometheus_bytes)
{
    /* xxHash64 of the empty input, and of "a\xff" "b\xff" */
    cr_assert_eq(ev_labels_hash(NULL, 0), 0xEF46DB3751D8E999ULL);
    struct label l = { VG_STR("a"), VG_STR("b") };
    uint64_t h = ev_labels_hash(&l, 1);
    /* longer than a 32-byte stripe: streaming must equal one-shot over the same bytes */
    struct label ls[3] = { { VG_STR("aaaaaaaaaaaaaaaaaaaa"), VG_STR("bbbbbbbbbbbbbbbbbbbbbbbbbb") },
                           { VG_STR("c"), VG_STR("d") },
                           { VG_STR("e"), VG_STR("") } };
    cr_assert_neq(h, ev_labels_hash(ls, 3));
    cr_assert_eq(ev_labels_hash(ls, 3), ev_labels_hash(ls, 3));
}

Test(eval, labels_string_as_prometheus)
{
    struct label ls[2] = { { VG_STR("__name__"), VG_STR("up") },
                           { VG_STR("job"), VG_STR("a\"b\\c\n") } };
    char buf[128];
    ev_lbl_str(ls, 2, buf, sizeof buf);
    cr_assert_str_eq(buf, "{__name__=\"up\", job=\"a\\\"b\\\\c\\n\"}");
    struct label odd = { VG_STR("a.b"), VG_STR("x") };
    ev_lbl_str(&odd, 1, buf, sizeof buf);
    cr_assert_str_eq(buf, "{\"a.b\"=\"x\"}");
    ev_lbl_str(ls, 2, buf, 8);
    cr_assert_eq(strlen(buf), 7);
}

Test(eval, allocation_failure_is_clean)
{
    const char *q = "sum by (a) (rate(x[5m])) + on() group_left count(max_over_time(x[2m:30s]))";
    bool done = false;
    for (uint64_t n = 1; n < 2000 && !done; n++) {
        vg_alloc_fail_after(n);
        const char *r = fx_instant(q, 600);
        vg_alloc_fail_after(0);
        if (strncmp(r, "error:", 6) && strncmp(r, "parse error:", 12)) {
            cr_assert_str_eq(r, "{a=\"1\"} 1.166666667");
            done = true;
        } else if (!strncmp(r, "error:", 6)) {
            cr_assert(strstr(r, "out of memory"), "%s", r);
        }
    }
    cr_assert(done);
}
