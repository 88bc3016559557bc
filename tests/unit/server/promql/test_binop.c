/* Tests server/promql/binop.c: scalar and vector arithmetic (Go's Mod and Pow, division
 * by zero), comparisons as filters and with bool, __name__ dropping, one-to-one and
 * group_left/group_right matching with on/ignoring and included labels, the
 * many-to-many and multiple-match errors, and/or/unless. */
#include "eval_fixture.h"

static void init(void)
{
    fx_reset();
    fx_load("a{job=\"j\", i=\"1\"}", 60000, "1x10");
    fx_load("a{job=\"j\", i=\"2\"}", 60000, "2x10");
    fx_load("b{job=\"j\", i=\"1\"}", 60000, "10x10");
    fx_load("b{job=\"j\", i=\"2\"}", 60000, "20x10");
    fx_load("c{job=\"j\", extra=\"e\"}", 60000, "100x10");
}

TestSuite(binop, .init = init, .fini = fx_fini);

Test(binop, scalar_arithmetic)
{
    EXPECT_INSTANT("1 + 2 * 3", 0, "scalar 7");
    EXPECT_INSTANT("2 ^ 3 ^ 2", 0, "scalar 512");
    EXPECT_INSTANT("5 % 3", 0, "scalar 2");
    EXPECT_INSTANT("-5 % 3", 0, "scalar -2");
    EXPECT_INSTANT("5.5 % -2", 0, "scalar 1.5");
    EXPECT_INSTANT("1 / 0", 0, "scalar +Inf");
    EXPECT_INSTANT("-1 / 0", 0, "scalar -Inf");
    EXPECT_INSTANT("0 / 0", 0, "scalar NaN");
    EXPECT_INSTANT("5 % 0", 0, "scalar NaN");
    EXPECT_INSTANT("1 atan2 1", 0, "scalar 0.7853981634");
    EXPECT_INSTANT("(-8) ^ (1/3)", 0, "scalar NaN");
    EXPECT_INSTANT("NaN ^ 0", 0, "scalar 1");
    EXPECT_INSTANT("2 > bool 1", 0, "scalar 1");
    EXPECT_INSTANT("2 == bool 1", 0, "scalar 0");
}

Test(binop, vector_scalar)
{
    EXPECT_INSTANT("a * 2", 60, "{i=\"1\", job=\"j\"} 2\n{i=\"2\", job=\"j\"} 4");
    EXPECT_INSTANT("10 - a", 60, "{i=\"1\", job=\"j\"} 9\n{i=\"2\", job=\"j\"} 8");
    EXPECT_INSTANT("a > 1", 60, "a{i=\"2\", job=\"j\"} 2");
    EXPECT_INSTANT("1 < a", 60, "a{i=\"2\", job=\"j\"} 2");
    EXPECT_INSTANT("a > bool 1", 60, "{i=\"1\", job=\"j\"} 0\n{i=\"2\", job=\"j\"} 1");
    EXPECT_INSTANT("a == NaN", 60, "");
    EXPECT_INSTANT("a != NaN", 60, "a{i=\"1\", job=\"j\"} 1\na{i=\"2\", job=\"j\"} 2");
}

Test(binop, one_to_one_matching)
{
    EXPECT_INSTANT("a + b", 60, "{i=\"1\", job=\"j\"} 11\n{i=\"2\", job=\"j\"} 22");
    EXPECT_INSTANT("b / on(i) a", 60, "{i=\"1\"} 10\n{i=\"2\"} 10");
    /* one-to-one results lose the ignoring() labels, comparisons included */
    EXPECT_INSTANT("b > ignoring(job) a", 60, "b{i=\"1\"} 10\nb{i=\"2\"} 20");
    EXPECT_INSTANT("a == bool b", 60, "{i=\"1\", job=\"j\"} 0\n{i=\"2\", job=\"j\"} 0");
    EXPECT_INSTANT("a + c", 60, "");
}

Test(binop, group_left_and_right)
{
    EXPECT_INSTANT("a * on(job) group_left c", 60,
                   "{i=\"1\", job=\"j\"} 100\n{i=\"2\", job=\"j\"} 200");
    EXPECT_INSTANT("a * on(job) group_left(extra) c", 60,
                   "{extra=\"e\", i=\"1\", job=\"j\"} 100\n{extra=\"e\", i=\"2\", job=\"j\"} 200");
    EXPECT_INSTANT("c - on(job) group_right a", 60,
                   "{i=\"1\", job=\"j\"} 99\n{i=\"2\", job=\"j\"} 98");
    /* comparisons keep the left operand's value (here the "one" side's) */
    EXPECT_INSTANT("c > on(job) group_right a", 60,
                   "a{i=\"1\", job=\"j\"} 100\na{i=\"2\", job=\"j\"} 100");
}

Test(binop, matching_errors)
{
    EXPECT_INSTANT("a + on(job) c", 60,
                   "error: multiple matches for labels: many-to-one matching must be explicit "
                   "(group_left/group_right)");
    /* Prometheus 3 reports it even when the comparison filters everything away */
    EXPECT_INSTANT("a > on(job) c", 60,
                   "error: multiple matches for labels: many-to-one matching must be explicit "
                   "(group_left/group_right)");
    EXPECT_INSTANT("c + on(job) a", 60,
                   "error: found duplicate series for the match group {job=\"j\"} on the right "
                   "hand-side of the operation: [{__name__=\"a\", i=\"2\", job=\"j\"}, "
                   "{__name__=\"a\", i=\"1\", job=\"j\"}];many-to-many matching not allowed: "
                   "matching labels must be unique on one side");
    EXPECT_INSTANT("c * on(job) group_right a", 60,
                   "{i=\"1\", job=\"j\"} 100\n{i=\"2\", job=\"j\"} 200");
    EXPECT_INSTANT("a * on(job) group_right c", 60,
                   "error: found duplicate series for the match group {job=\"j\"} on the left "
                   "hand-side of the operation: [{__name__=\"a\", i=\"2\", job=\"j\"}, "
                   "{__name__=\"a\", i=\"1\", job=\"j\"}];many-to-many matching not allowed: "
                   "matching labels must be unique on one side");
    EXPECT_INSTANT("b + on(job) group_left(i) a", 60,
                   "error: found duplicate series for the match group {job=\"j\"} on the right "
                   "hand-side of the operation: [{__name__=\"a\", i=\"2\", job=\"j\"}, "
                   "{__name__=\"a\", i=\"1\", job=\"j\"}];many-to-many matching not allowed: "
                   "matching labels must be unique on one side");
    /* group_left whose results collide */
    EXPECT_INSTANT("(a * 0) + on(job) group_left(i) c", 60,
                   "error: multiple matches for labels: grouping labels must ensure unique "
                   "matches");
    /* no error when the many side is empty at that step */
    EXPECT_INSTANT("nothing + on(job) a", 60, "");
}

Test(binop, set_operators)
{
    EXPECT_INSTANT("a and b", 60, "a{i=\"1\", job=\"j\"} 1\na{i=\"2\", job=\"j\"} 2");
    EXPECT_INSTANT("a and on(i) b{i=\"1\"}", 60, "a{i=\"1\", job=\"j\"} 1");
    EXPECT_INSTANT("a unless on(i) b{i=\"1\"}", 60, "a{i=\"2\", job=\"j\"} 2");
    EXPECT_INSTANT("a or c", 60,
                   "a{i=\"1\", job=\"j\"} 1\na{i=\"2\", job=\"j\"} 2\nc{extra=\"e\", job=\"j\"} 100");
    EXPECT_INSTANT("a or b", 60, "a{i=\"1\", job=\"j\"} 1\na{i=\"2\", job=\"j\"} 2");
    EXPECT_INSTANT("a and nothing", 60, "");
    EXPECT_INSTANT("nothing or a{i=\"1\"}", 60, "a{i=\"1\", job=\"j\"} 1");
}

Test(binop, range_query_matches_per_step)
{
    fx_load("p", 60000, "1 _ 3");
    fx_load("q", 60000, "10 20 30");
    fx_opts.lookback_ms = 30000;
    EXPECT_RANGE("p or q", 0, 120, 60, "p{} 1@0 3@120\nq{} 20@60");
    EXPECT_RANGE("q unless p", 0, 120, 60, "q{} 20@60");
    EXPECT_RANGE("-p or -q", 0, 120, 60, "{} -1@0 -20@60 -3@120");
}

Test(binop, arithmetic_name_collision_is_an_error)
{
    fx_load("m1{k=\"v\"}", 60000, "1");
    fx_load("m2{k=\"v\"}", 60000, "2");
    EXPECT_INSTANT("{k=\"v\"} * 2", 0, "error: vector cannot contain metrics with the same labelset");
    EXPECT_INSTANT("{k=\"v\"} > 1", 0, "m2{k=\"v\"} 2");
}
