/* Unit tests of tests/promql/testfile.c: the reader of Prometheus's PromQL test-file
 * format used by vigil-promqltest. */
#include "testfile.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/tsdb/tsdb.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static struct tf_file *parse(const char *text)
{
    struct vg_err err = {0};
    struct tf_file *f = tf_parse(text, strlen(text), &err);
    cr_assert_not_null(f, "tf_parse: %s", err.msg);
    return f;
}

static const char *label(const struct tf_series *s, const char *name)
{
    static char buf[256];
    struct vg_str v = labels_get(s->labels, s->nlabels, name);
    if (!v.p)
        return NULL;
    snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.p);
    return buf;
}

static uint64_t bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

Test(testfile, durations_and_times)
{
    int64_t ms = -1;
    struct vg_err err = {0};
    struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        { "0", 0 },           { "5m", 300000 },     { "1h30m", 5400000 },
        { "100ms", 100 },     { "90s", 90000 },     { "1y", 31536000000LL },
        { "2w1d", 1209600000LL + 86400000LL },      { "20", 20000 },
        { "1.5", 1500 },      { "0m", 0 },          { "1m30s500ms", 90500 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(tf_parse_time(ok[i].s, strlen(ok[i].s), &ms, &err), 0, "%s: %s", ok[i].s,
                     err.msg);
        cr_assert_eq(ms, ok[i].ms, "%s gave %lld", ok[i].s, (long long)ms);
    }
    const char *bad[] = { "", "5x", "m5", "5m1h", "1h1h", "-5m", "5 m", "1.5m", "99999999999999999999s" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(tf_parse_time(bad[i], strlen(bad[i]), &ms, &err), VG_EINVAL, "%s", bad[i]);
        cr_assert_eq(err.code, VG_EINVAL);
    }
}

Test(testfile, numbers_like_go)
{
    double v;
    struct {
        const char *s;
        double v;
    } ok[] = {
        { "1", 1 },          { "-1", -1 },   { "0x1f", 31 },    { "017", 15 },
        { "0b101", 5 },      { "0o17", 15 }, { "1e3", 1000 },   { "12.34e-6", 12.34e-6 },
        { "+Inf", INFINITY }, { "-inf", -INFINITY }, { "Infinity", INFINITY },
        { ".2", 0.2 },       { "2.", 2 },    { "0x1_0", 16 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert(tf_parse_number(ok[i].s, strlen(ok[i].s), &v), "%s", ok[i].s);
        cr_assert_eq(v, ok[i].v, "%s gave %g", ok[i].s, v);
    }
    cr_assert(tf_parse_number("NaN", 3, &v) && isnan(v));
    const char *bad[] = { "", "abc", "1 2", " 1", "nan(1)", "1_000", "{} 1", "metric 1", "1x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!tf_parse_number(bad[i], strlen(bad[i]), &v), "%s", bad[i]);
}

Test(testfile, float_equality_as_the_harness)
{
    cr_assert(tf_float_equal(NAN, NAN));
    cr_assert(tf_float_equal(0, 0));
    cr_assert(tf_float_equal(INFINITY, INFINITY));
    cr_assert(!tf_float_equal(INFINITY, -INFINITY));
    cr_assert(tf_float_equal(1, 1 + 1e-7));
    cr_assert(!tf_float_equal(1, 1.00001));
    cr_assert(!tf_float_equal(0, 1e-300)); /* near zero only exact-ish values match */
    cr_assert(!tf_float_equal(NAN, 1));
    cr_assert(tf_float_equal(1e300, 1e300 * (1 + 1e-8)));
}

Test(testfile, regex_search_is_unanchored)
{
    cr_assert_eq(tf_regex_search("foo", "a foo b"), 1);
    cr_assert_eq(tf_regex_search("^foo", "a foo"), 0);
    cr_assert_eq(tf_regex_search("a|zz", "xyz a"), 1);
    cr_assert_eq(tf_regex_search("line\\d", "first\nline2"), 1);
    cr_assert_eq(tf_regex_search("(", "x"), VG_EINVAL);
}

Test(testfile, load_expands_value_notation)
{
    struct tf_file *f = parse("load 5m\n"
                              "  metric{a=\"b\"} 0+10x3 _ stale 1x2 _x2 -1-1x2 Inf -Inf NaN 1e3\n");
    cr_assert_eq(f->ncmds, 1);
    const struct tf_cmd *c = &f->cmds[0];
    cr_assert_null(c->error, "%s", c->error);
    cr_assert_eq(c->kind, TF_LOAD);
    cr_assert_eq(c->line, 1);
    cr_assert_eq(c->load.step_ms, 300000);
    cr_assert_not(c->load.nhcb);
    cr_assert_eq(c->load.nseries, 1);
    const struct tf_series *s = &c->load.series[0];
    cr_assert_eq(s->line, 2);
    cr_assert_str_eq(label(s, "__name__"), "metric");
    cr_assert_str_eq(label(s, "a"), "b");
    /* 0 10 20 30 | _ | stale | 1 1 1 | _ _ | -1 -2 -3 | Inf -Inf NaN 1000 */
    cr_assert_eq(s->nvals, 4 + 1 + 1 + 3 + 2 + 3 + 4);
    double want[] = { 0, 10, 20, 30 };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(s->vals[i].v, want[i]);
    cr_assert(s->vals[4].omitted);
    cr_assert_eq(bits(s->vals[5].v), TSDB_STALE_NAN_BITS);
    cr_assert(!s->vals[5].omitted);
    for (int i = 6; i < 9; i++)
        cr_assert_eq(s->vals[i].v, 1);
    cr_assert(s->vals[9].omitted && s->vals[10].omitted);
    cr_assert_eq(s->vals[11].v, -1);
    cr_assert_eq(s->vals[12].v, -2);
    cr_assert_eq(s->vals[13].v, -3);
    cr_assert(isinf(s->vals[14].v) && s->vals[14].v > 0);
    cr_assert(isinf(s->vals[15].v) && s->vals[15].v < 0);
    cr_assert(isnan(s->vals[16].v));
    cr_assert_eq(bits(s->vals[16].v) == TSDB_STALE_NAN_BITS, 0);
    cr_assert_eq(s->vals[17].v, 1000);
    cr_assert_not(s->has_histogram);
    tf_free(f);

    /* No hex in series values: 0x10 is 0 repeated, as Prometheus's series lexer reads it. */
    f = parse("load 1m\n  m 0x10\n");
    cr_assert_null(f->cmds[0].error, "%s", f->cmds[0].error);
    cr_assert_eq(f->cmds[0].load.series[0].nvals, 11);
    cr_assert_eq(f->cmds[0].load.series[0].vals[10].v, 0);
    tf_free(f);
}

Test(testfile, labels_forms)
{
    struct tf_file *f = parse("load 1m\n"
                              "  plain 1\n"
                              "  {__name__=\"braced\", z=\"1\", a='2'} 1\n"
                              "  {\"utf8.name\", \"la.bel\"=\"x\", trailing=\"c\",} 1\n"
                              "  esc{v=\"a\\\"b\\\\c\\n\", raw=`x\\n`, empty=\"\", u=\"\\u00e9\"} 1\n"
                              "  with:colon{job=\"a b\"} 1\n");
    const struct tf_load *l = &f->cmds[0].load;
    cr_assert_null(f->cmds[0].error, "%s", f->cmds[0].error);
    cr_assert_eq(l->nseries, 5);
    cr_assert_eq(l->series[0].nlabels, 1);
    cr_assert_str_eq(label(&l->series[0], "__name__"), "plain");
    const struct tf_series *b = &l->series[1];
    cr_assert_eq(b->nlabels, 3);
    /* sorted by name */
    cr_assert(vg_str_eq_c(b->labels[0].name, "__name__"));
    cr_assert(vg_str_eq_c(b->labels[1].name, "a"));
    cr_assert(vg_str_eq_c(b->labels[2].name, "z"));
    cr_assert_str_eq(label(b, "a"), "2");
    cr_assert_str_eq(label(&l->series[2], "__name__"), "utf8.name");
    cr_assert_str_eq(label(&l->series[2], "la.bel"), "x");
    const struct tf_series *e = &l->series[3];
    cr_assert_str_eq(label(e, "v"), "a\"b\\c\n");
    cr_assert_str_eq(label(e, "raw"), "x\\n");
    cr_assert_null(label(e, "empty"), "an empty value is no label");
    cr_assert_str_eq(label(e, "u"), "\xc3\xa9");
    cr_assert_str_eq(label(&l->series[4], "__name__"), "with:colon");
    cr_assert_str_eq(label(&l->series[4], "job"), "a b");
    tf_free(f);
}

Test(testfile, malformed_series_lines)
{
    const char *bad[] = {
        "load 1m\n  m{a=~\"x\"} 1\n",     "load 1m\n  m{a=\"x\" 1\n",
        "load 1m\n  m{a=\"x} 1\n",        "load 1m\n  m 1+1\n",
        "load 1m\n  m 1y\n",              "load 1m\n  m{a=\"1\", a=\"2\"} 1\n",
        "load 1m\n  m 0x1f\n",            "load 1m\n  m{a=\"x\"}1\n",
        "load 1m\n  m stalex3\n",         "load 1m\n  m {{schema:0\n",
        "load 1m\n  m _x\n",              "load 1m\n  {} 1\n",
        "load 1m\n  m \"\\q\"\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tf_file *f = parse(bad[i]);
        cr_assert_eq(f->ncmds, 1);
        cr_assert_not_null(f->cmds[0].error, "accepted: %s", bad[i]);
        cr_assert(strstr(f->cmds[0].error, "line 2:"), "%s", f->cmds[0].error);
        tf_free(f);
    }
}

Test(testfile, histograms_are_flagged_and_counted)
{
    struct tf_file *f = parse("load 1m\n"
                              "  h {{schema:0 sum:1 count:1 buckets:[1]}}x2 _ "
                              "{{count:1}}+{{count:2}}x3 {{count:0}}\n"
                              "  f 1 2\n"
                              "\n"
                              "eval instant at 1m h\n"
                              "  h {{count:1}}\n");
    const struct tf_load *l = &f->cmds[0].load;
    cr_assert_null(f->cmds[0].error, "%s", f->cmds[0].error);
    cr_assert(l->series[0].has_histogram);
    cr_assert_eq(l->series[0].nvals, 3 + 1 + 4 + 1);
    cr_assert(l->series[0].vals[0].histogram);
    cr_assert(l->series[0].vals[3].omitted);
    cr_assert_not(l->series[1].has_histogram);
    cr_assert_null(f->cmds[1].error, "%s", f->cmds[1].error);
    cr_assert(f->cmds[1].eval.has_histogram);
    tf_free(f);
}

Test(testfile, load_with_nhcb_and_duplicate_series)
{
    struct tf_file *f = parse("load_with_nhcb 30s\n"
                              "  m_bucket{le=\"1\"} 1 2\n"
                              "  m_bucket{le=\"1\"} 5\n");
    cr_assert_null(f->cmds[0].error, "%s", f->cmds[0].error);
    cr_assert(f->cmds[0].load.nhcb);
    cr_assert_eq(f->cmds[0].load.step_ms, 30000);
    cr_assert_eq(f->cmds[0].load.nseries, 1, "the later definition replaces the earlier");
    cr_assert_eq(f->cmds[0].load.series[0].nvals, 1);
    cr_assert_eq(f->cmds[0].load.series[0].vals[0].v, 5);
    tf_free(f);
}

Test(testfile, eval_instant_forms)
{
    struct tf_file *f = parse("eval instant at 50m sum by (a) (m)\n"
                              "  {a=\"x\"} 3\n"
                              "  {} 4\n"
                              "\n"
                              "eval instant at 1m 1 + 1\n"
                              "\t2\n"
                              "\n"
                              "eval instant at 0 \"Foo\"\n"
                              "  expect string \"F\\\"oo\"\n"
                              "\n"
                              "eval instant at 0 `Foo`\n"
                              "  expect string `Foo`\n"
                              "\n"
                              "eval_ordered instant at 10s sort(m)\n"
                              "  m{a=\"1\"} 1\n"
                              "\n"
                              "eval instant at 5m none\n");
    cr_assert_eq(f->ncmds, 6);
    for (size_t i = 0; i < f->ncmds; i++)
        cr_assert_null(f->cmds[i].error, "%zu: %s", i, f->cmds[i].error);
    const struct tf_eval *e = &f->cmds[0].eval;
    cr_assert_str_eq(e->expr, "sum by (a) (m)");
    cr_assert_eq(e->at_ms, 3000000);
    cr_assert_not(e->range);
    cr_assert_eq(e->nseries, 2);
    cr_assert_eq(e->series[1].nlabels, 0);
    cr_assert_eq(e->series[1].vals[0].v, 4);
    cr_assert_not(tf_eval_is_ordered(e));
    cr_assert_not(tf_eval_is_fail(e));

    e = &f->cmds[1].eval;
    cr_assert(e->expect_scalar);
    cr_assert_eq(e->scalar, 2);
    cr_assert_eq(f->cmds[1].line, 5);

    e = &f->cmds[2].eval;
    cr_assert(e->expect_string);
    cr_assert_eq(e->string_len, 4);
    cr_assert_str_eq(e->string, "F\"oo");
    cr_assert(f->cmds[3].eval.expect_string);
    cr_assert_str_eq(f->cmds[3].eval.string, "Foo");

    cr_assert(tf_eval_is_ordered(&f->cmds[4].eval));
    cr_assert_eq(f->cmds[4].eval.at_ms, 10000);

    cr_assert_eq(f->cmds[5].eval.nseries, 0);
    cr_assert_not(f->cmds[5].eval.expect_scalar);
    tf_free(f);
}

Test(testfile, expect_lines)
{
    struct tf_file *f = parse("eval instant at 1m foo\n"
                              "  expect fail msg: something went  wrong  \n"
                              "  expect warn regex: ratio .* capped\n"
                              "  expect no_info\n"
                              "  expect ordered\n"
                              "\n"
                              "eval_fail instant at 0 bar\n"
                              "\n"
                              "eval_warn range from 0 to 1m step 30s baz\n"
                              "\n"
                              "eval_info instant at 0 qux\n");
    cr_assert_eq(f->ncmds, 4);
    const struct tf_eval *e = &f->cmds[0].eval;
    cr_assert_null(f->cmds[0].error, "%s", f->cmds[0].error);
    cr_assert_eq(e->nexpects, 4);
    cr_assert_eq(e->expects[0].kind, TF_EXPECT_FAIL);
    cr_assert_str_eq(e->expects[0].msg, "something went  wrong");
    cr_assert_eq(e->expects[1].kind, TF_EXPECT_WARN);
    cr_assert_str_eq(e->expects[1].regex, "ratio .* capped");
    cr_assert_null(e->expects[2].msg);
    cr_assert_null(e->expects[2].regex);
    cr_assert(tf_eval_is_fail(e));
    cr_assert(tf_eval_is_ordered(e));
    cr_assert_eq(tf_eval_fail_expect(e), &e->expects[0]);
    cr_assert(f->cmds[1].eval.fail && tf_eval_is_fail(&f->cmds[1].eval));
    cr_assert_null(tf_eval_fail_expect(&f->cmds[1].eval));
    cr_assert(f->cmds[2].eval.warn && f->cmds[2].eval.range);
    cr_assert(f->cmds[3].eval.info);
    tf_free(f);
}

Test(testfile, eval_range_and_range_vector)
{
    struct tf_file *f = parse("eval range from 0 to 2m step 1m foo > 2 or bar\n"
                              "  foo{job=\"1\"} _ 3 5\n"
                              "  bar{job=\"2\"} 1+2x2\n"
                              "\n"
                              "eval instant at 1m some_metric[1m]\n"
                              "  expect range vector from 10s to 1m step 10s\n"
                              "  some_metric{env=\"a\"} 2 3 4 5 6\n");
    cr_assert_eq(f->ncmds, 2);
    const struct tf_eval *e = &f->cmds[0].eval;
    cr_assert_null(f->cmds[0].error, "%s", f->cmds[0].error);
    cr_assert(e->range);
    cr_assert_eq(e->start_ms, 0);
    cr_assert_eq(e->end_ms, 120000);
    cr_assert_eq(e->step_ms, 60000);
    cr_assert_str_eq(e->expr, "foo > 2 or bar");
    cr_assert(e->series[0].vals[0].omitted);
    cr_assert_eq(e->series[1].nvals, 3);
    cr_assert_eq(e->series[1].vals[2].v, 5);

    e = &f->cmds[1].eval;
    cr_assert_null(f->cmds[1].error, "%s", f->cmds[1].error);
    cr_assert(e->expect_range_vector);
    cr_assert_eq(e->start_ms, 10000);
    cr_assert_eq(e->end_ms, 60000);
    cr_assert_eq(e->step_ms, 10000);
    cr_assert_eq(e->at_ms, 60000, "the harness evaluates at the range's end");
    cr_assert_eq(e->series[0].nvals, 5);
    tf_free(f);
}

Test(testfile, comments_end_blocks_and_clear)
{
    struct tf_file *f = parse("# heading\n"
                              "load 1m\n"
                              "  a 1\n"
                              "# a comment ends the block\n"
                              "clear\n"
                              "CLEAR\n"
                              "\n"
                              "eval instant at 0 a\n"
                              "  {} 1\n");
    cr_assert_eq(f->ncmds, 4);
    cr_assert_eq(f->cmds[0].kind, TF_LOAD);
    cr_assert_eq(f->cmds[1].kind, TF_CLEAR);
    cr_assert_eq(f->cmds[1].line, 5);
    cr_assert_eq(f->cmds[2].kind, TF_CLEAR);
    cr_assert_eq(f->cmds[3].kind, TF_EVAL);
    cr_assert_eq(f->cmds[3].line, 8);
    tf_free(f);
}

Test(testfile, malformed_commands_are_kept_and_parsing_resumes)
{
    struct tf_file *f = parse("frobnicate now\n"
                              "  with details\n"
                              "\n"
                              "load soon\n"
                              "  a 1\n"
                              "\n"
                              "eval instant at 1m a\n"
                              "  a 1 2\n"
                              "\n"
                              "eval instant at 1m a\n"
                              "  expect warn\n"
                              "  expect no_warn\n"
                              "\n"
                              "eval_ordered range from 0 to 1m step 1m a\n"
                              "\n"
                              "eval range from 2m to 1m step 1m a\n"
                              "\n"
                              "eval instant 1m a\n"
                              "\n"
                              "eval instant at 1m a\n"
                              "  expect fail\n"
                              "  expect fail\n"
                              "\n"
                              "eval instant at 1m a\n"
                              "  expect sometimes\n"
                              "\n"
                              "eval instant at 1m a\n"
                              "  expect string Foo\n"
                              "\n"
                              "eval instant at 1m a\n"
                              "  a 1\n");
    cr_assert_eq(f->ncmds, 11);
    for (size_t i = 0; i < 10; i++) {
        cr_assert_not_null(f->cmds[i].error, "command %zu accepted", i);
        cr_assert_eq(f->cmds[i].kind, i == 1 ? TF_LOAD : TF_EVAL);
    }
    cr_assert(strstr(f->cmds[0].error, "invalid command"));
    cr_assert(strstr(f->cmds[2].error, "multiple values"), "%s", f->cmds[2].error);
    cr_assert(strstr(f->cmds[3].error, "warn and no_warn"), "%s", f->cmds[3].error);
    cr_assert_null(f->cmds[10].error, "%s", f->cmds[10].error);
    cr_assert_eq(f->cmds[10].line, 30);
    tf_free(f);
}

Test(testfile, crlf_and_missing_final_newline)
{
    struct tf_file *f = parse("load 1m\r\n  a 1 2\r\n\r\neval instant at 1m a\r\n  a 2");
    cr_assert_eq(f->ncmds, 2);
    cr_assert_null(f->cmds[0].error, "%s", f->cmds[0].error);
    cr_assert_null(f->cmds[1].error, "%s", f->cmds[1].error);
    cr_assert_eq(f->cmds[0].load.series[0].nvals, 2);
    cr_assert_eq(f->cmds[1].eval.series[0].vals[0].v, 2);
    tf_free(f);
}

Test(testfile, allocation_failure_is_clean)
{
    const char *text = "load 5m\n  a{b=\"c\"} 0+1x20\n\neval instant at 5m a\n  a{b=\"c\"} 1\n"
                       "  expect warn msg: x\n";
    size_t live = vg_alloc_live_bytes();
    bool succeeded = false;
    for (uint64_t n = 1; n < 200 && !succeeded; n++) {
        struct vg_err err = {0};
        vg_alloc_fail_after(n);
        struct tf_file *f = tf_parse(text, strlen(text), &err);
        vg_alloc_fail_after(0);
        if (f) {
            succeeded = true;
            cr_assert_null(f->cmds[0].error);
            tf_free(f);
        } else {
            cr_assert_eq(err.code, VG_ENOMEM);
        }
        cr_assert_eq(vg_alloc_live_bytes(), live, "leak after failing allocation %llu",
                     (unsigned long long)n);
    }
    cr_assert(succeeded);
}
