/* Tests server/promql/parser.c: Prometheus 3 grammar, precedence and associativity,
 * the tree conventions the evaluator relies on (offset/@ placement, folded signs,
 * durations as numbers), Prometheus's exact error messages with line:column, type
 * checking as checkAST, nesting limits and allocation failure. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/promql/engine.h"
#include "../../../../server/promql/functions.h"
#include "../../../../storage/base/vg_alloc.h"

static struct promql_expr *ex;
static struct vg_err err;

static void fini(void)
{
    promql_expr_free(ex);
    ex = NULL;
    vg_alloc_fail_after(0);
}

TestSuite(parser, .fini = fini);

static struct promql_node *parse(const char *q)
{
    promql_expr_free(ex);
    vg_err_clear(&err);
    ex = promql_parse(q, strlen(q), &err);
    return ex ? ex->root : NULL;
}

static struct promql_node *must(const char *q)
{
    struct promql_node *n = parse(q);
    cr_assert(n, "%s: %s", q, err.msg);
    return n;
}

/* The printed form, in a static buffer. */
static const char *fmt(const struct promql_node *n)
{
    static char out[4096];
    struct vg_buf b;
    vg_buf_init(&b);
    promql_format(n, &b);
    cr_assert(!vg_buf_failed(&b));
    snprintf(out, sizeof out, "%s", vg_buf_cstr(&b));
    vg_buf_free(&b);
    return out;
}

/* ---- accepted queries, each with its canonical form ---- */

static const struct {
    const char *q, *want;
} good[] = {
    { "1", "1" },
    { "+Inf", "+Inf" },
    { "-Inf", "-Inf" },
    { "NaN", "NaN" },
    { "nan", "NaN" },
    { ".5", "0.5" },
    { "5.", "5" },
    { "123.4567", "123.4567" },
    { "5e-3", "0.005" },
    { "5e3", "5000" },
    { "0xc", "12" },
    { "0755", "493" },
    { "08", "8" },
    { "1_000", "1000" },
    { "+5.5e-3", "0.0055" },
    { "-0755", "-493" },
    { "1e9", "1000000000" },
    { "5m", "300" },
    { "1h30m", "5400" },
    { "1 + 1", "1 + 1" },
    { "1 - 1", "1 - 1" },
    { "1 * 1", "1 * 1" },
    { "1 % 1", "1 % 1" },
    { "1 / 1", "1 / 1" },
    { "1 atan2 2", "1 atan2 2" },
    { "1 == bool 1", "1 == bool 1" },
    { "1 != bool 1", "1 != bool 1" },
    { "1 > bool 1", "1 > bool 1" },
    { "1 >= bool 1", "1 >= bool 1" },
    { "1 < bool 1", "1 < bool 1" },
    { "1 <= bool 1", "1 <= bool 1" },
    { "-1^2", "-1 ^ 2" },
    { "-1*2", "-1 * 2" },
    { "+1 + -2 * 1", "1 + -2 * 1" },
    { "1 + 2/(3*1)", "1 + 2 / (3 * 1)" },
    { "1 < bool 2 - 1 * 2", "1 < bool 2 - 1 * 2" },
    { "-some_metric", "-some_metric" },
    { "+some_metric", "+some_metric" },
    { " +{\"some_metric\"}", "+{__name__=\"some_metric\"}" },
    { "foo * bar", "foo * bar" },
    { "foo * sum", "foo * sum" },
    { "foo == 1", "foo == 1" },
    { "foo == bool 1", "foo == bool 1" },
    { "2.5 / bar", "2.5 / bar" },
    { "foo and bar", "foo and bar" },
    { "foo or bar", "foo or bar" },
    { "foo unless bar", "foo unless bar" },
    { "foo + bar or bla and blub", "foo + bar or bla and blub" },
    { "foo and bar unless baz or qux", "foo and bar unless baz or qux" },
    { "bar + on(foo) bla / on(baz, buz) group_right(test) blub",
      "bar + on (foo) bla / on (baz, buz) group_right (test) blub" },
    { "foo * on(test,blub) bar", "foo * on (test, blub) bar" },
    { "foo * on(test,blub) group_left bar", "foo * on (test, blub) group_left () bar" },
    { "foo and on(test,blub) bar", "foo and on (test, blub) bar" },
    { "foo and on() bar", "foo and on () bar" },
    { "foo and ignoring(test,blub) bar", "foo and ignoring (test, blub) bar" },
    { "foo and ignoring() bar", "foo and bar" },
    { "foo unless on(bar) baz", "foo unless on (bar) baz" },
    { "foo / on(test,blub) group_left(bar) bar", "foo / on (test, blub) group_left (bar) bar" },
    { "foo / ignoring(test,blub) group_left(blub) bar",
      "foo / ignoring (test, blub) group_left (blub) bar" },
    { "foo - on(test,blub) group_right(bar,foo) bar",
      "foo - on (test, blub) group_right (bar, foo) bar" },
    { "foo - ignoring(test,blub) group_right(bar,foo) bar",
      "foo - ignoring (test, blub) group_right (bar, foo) bar" },
    { "foo > bool on(a) bar", "foo > bool on (a) bar" },
    { "1 + on() 2", "1 + 2" },
    { "foo", "foo" },
    { "min", "min" },
    { "foo offset 5m", "foo offset 5m" },
    { "foo offset -7m", "foo offset -7m" },
    { "foo OFFSET 1h30m", "foo offset 1h30m" },
    { "foo OFFSET 1m30ms", "foo offset 1m30ms" },
    { "foo offset 90", "foo offset 1m30s" },
    { "foo @ 1603774568", "foo @ 1603774568.000" },
    { "foo @ -100", "foo @ -100.000" },
    { "foo @ .3", "foo @ 0.300" },
    { "foo @ 3.", "foo @ 3.000" },
    { "foo @ 3.33", "foo @ 3.330" },
    { "foo @ 3.3333", "foo @ 3.333" },
    { "foo @ 3.3335", "foo @ 3.334" },
    { "foo @ 3e2", "foo @ 300.000" },
    { "foo @ 3e-1", "foo @ 0.300" },
    { "foo @ 0xA", "foo @ 10.000" },
    { "foo @ -3.3e1", "foo @ -33.000" },
    { "foo @ 1m", "foo @ 60.000" },
    { "foo @ start()", "foo @ start()" },
    { "foo @ end()", "foo @ end()" },
    { "foo offset 5m @ 10", "foo @ 10.000 offset 5m" },
    { "foo @ 10 offset 5m", "foo @ 10.000 offset 5m" },
    { "foo:bar{a=\"bc\"}", "foo:bar{a=\"bc\"}" },
    { "foo{NaN='bc'}", "foo{NaN=\"bc\"}" },
    { "foo{bar='}'}", "foo{bar=\"}\"}" },
    { "foo{a=\"b\", foo!=\"bar\", test=~\"test\", bar!~\"baz\"}",
      "foo{a=\"b\",bar!~\"baz\",foo!=\"bar\",test=~\"test\"}" },
    { "foo{a=\"b\", foo!~\"bar\", test=~\"test\", bar!~\"baz\"}",
      "foo{a=\"b\",bar!~\"baz\",foo!~\"bar\",test=~\"test\"}" },
    { "foo{a=\"b\",}", "foo{a=\"b\"}" },
    { "{__name__=~\"foo.+\"}", "{__name__=~\"foo.+\"}" },
    { "{__name__=\"foo\",__name__=\"bar\"}", "{__name__=\"bar\",__name__=\"foo\"}" },
    { "{\"foo.bar\"}", "{__name__=\"foo.bar\"}" },
    { "{\"foo.bar\", \"service.name\"=\"api\", job='a'}",
      "{\"service.name\"=\"api\",__name__=\"foo.bar\",job=\"a\"}" },
    { "{job=~\".+\"}", "{job=~\".+\"}" },
    { "{job=\"a\", x=~\".*\"}", "{job=\"a\",x=~\".*\"}" },
    { "offset{step=\"1s\"}[5m]", "offset{step=\"1s\"}[5m]" },
    { "by", "by" },
    { "foo + by", "foo + by" },
    { "test[5s]", "test[5s]" },
    { "test[5m]", "test[5m]" },
    { "test[5m30s]", "test[5m30s]" },
    { "test[5h] OFFSET 5m", "test[5h] offset 5m" },
    { "test[5d] OFFSET 10s", "test[5d] offset 10s" },
    { "test[5w] offset 2w", "test[5w] offset 2w" },
    { "test[5y] offset 3d", "test[5y] offset 3d" },
    { "test[5y] @ 1603774699", "test[5y] @ 1603774699.000" },
    { "test[5m] offset 1m @ end()", "test[5m] @ end() offset 1m" },
    { "foo[300]", "foo[5m]" },
    { "foo[1.5]", "foo[1s500ms]" },
    { "foo[ 5m ]", "foo[5m]" },
    { "foo[90d]", "foo[90d]" },
    { "foo[14d]", "foo[2w]" },
    { "foo[365d]", "foo[1y]" },
    { "foo[0s]", "foo[0s]" },
    { "sum by (foo)(some_metric)", "sum by (foo) (some_metric)" },
    { "avg by (foo)(some_metric)", "avg by (foo) (some_metric)" },
    { "max by (foo)(some_metric)", "max by (foo) (some_metric)" },
    { "sum without (foo) (some_metric)", "sum without (foo) (some_metric)" },
    { "sum (some_metric) without (foo)", "sum without (foo) (some_metric)" },
    { "stddev(some_metric)", "stddev(some_metric)" },
    { "stdvar by (foo)(some_metric)", "stdvar by (foo) (some_metric)" },
    { "sum by ()(some_metric)", "sum(some_metric)" },
    { "sum by (foo,bar,)(some_metric)", "sum by (foo, bar) (some_metric)" },
    { "sum by (foo,)(some_metric)", "sum by (foo) (some_metric)" },
    { "topk(5, some_metric)", "topk(5, some_metric)" },
    { "count_values(\"value\", some_metric)", "count_values(\"value\", some_metric)" },
    { "sum without(and, by, avg, count, alert, annotations)(some_metric)",
      "sum without (and, by, avg, count, alert, annotations) (some_metric)" },
    { "sum without () (x)", "sum without () (x)" },
    { "SUM BY (job) (x)", "sum by (job) (x)" },
    { "sum by (\"foo.bar\") (x)", "sum by (\"foo.bar\") (x)" },
    { "quantile(0.9, x)", "quantile(0.9, x)" },
    { "bottomk(3, x)", "bottomk(3, x)" },
    { "limitk(2, x)", "limitk(2, x)" },
    { "limit_ratio(0.5, x)", "limit_ratio(0.5, x)" },
    { "group by (a) (x)", "group by (a) (x)" },
    { "time()", "time()" },
    { "floor(some_metric{foo!=\"bar\"})", "floor(some_metric{foo!=\"bar\"})" },
    { "rate(some_metric[5m])", "rate(some_metric[5m])" },
    { "round(some_metric)", "round(some_metric)" },
    { "round(some_metric, 5)", "round(some_metric, 5)" },
    { "hour()", "hour()" },
    { "label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")",
      "label_join(x, \"d\", \",\", \"a\", \"b\", \"c\")" },
    { "label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")",
      "label_replace(up, \"a\", \"$1\", \"b\", \"(.*)\")" },
    { "sort_by_label(x)", "sort_by_label(x)" },
    { "sort_by_label(x, \"a\", \"b\")", "sort_by_label(x, \"a\", \"b\")" },
    { "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))",
      "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))" },
    { "predict_linear(foo[1h], 4h)", "predict_linear(foo[1h], 14400)" },
    { "clamp(x, 0, 1)", "clamp(x, 0, 1)" },
    { "vector(1)", "vector(1)" },
    { "scalar(x) + 1", "scalar(x) + 1" },
    { "double_exponential_smoothing(x[5m], 0.5, 0.5)",
      "double_exponential_smoothing(x[5m], 0.5, 0.5)" },
    { "\"double-quoted string \\\" with escape\"", "\"double-quoted string \\\" with escape\"" },
    { "'single-quoted string \\' with escape'", "\"single-quoted string ' with escape\"" },
    { "`backtick-quoted string`", "\"backtick-quoted string\"" },
    { "\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\" - \\xFF\\377\\u1234\\U00010111\\U0001011111☺\"",
      "\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\" - \\xff\\xff\u1234\U00010111\U0001011111☺\"" },
    { "`\\a\\b`", "\"\\\\a\\\\b\"" },
    { "foo[10m:6s]", "foo[10m:6s]" },
    { "foo[10m5s:1h6ms]", "foo[10m5s:1h6ms]" },
    { "foo[10m:]", "foo[10m:]" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:5s])",
      "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:5s])" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:])[4m:3s]",
      "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:])[4m:3s]" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s]",
      "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s]" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] @ 1603775091)[4m:3s]",
      "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] @ 1603775091.000)[4m:3s]" },
    { "sum without(and, by, avg, count, alert, annotations)(some_metric) [30m:10s]",
      "sum without (and, by, avg, count, alert, annotations) (some_metric)[30m:10s]" },
    { "some_metric OFFSET 1m [10m:5s]", "some_metric offset 1m[10m:5s]" },
    { "some_metric @ 123 [10m:5s]", "some_metric @ 123.000[10m:5s]" },
    { "(foo + bar{nm=\"val\"})[5m:]", "(foo + bar{nm=\"val\"})[5m:]" },
    { "(foo + bar{nm=\"val\"})[5m:] offset 10m", "(foo + bar{nm=\"val\"})[5m:] offset 10m" },
    { "(foo + bar{nm=\"val\"} @ 1234)[5m:] @ 1603775019",
      "(foo + bar{nm=\"val\"} @ 1234.000)[5m:] @ 1603775019.000" },
    { "foo # a comment\n + bar", "foo + bar" },
    { "# c\nsum(\n  rate(x[5m]) # inner\n)", "sum(rate(x[5m]))" },
    { "foo{# c\n a=\"b\" # d\n}", "foo{a=\"b\"}" },
    { "1 + 2 > bool 2", "1 + 2 > bool 2" },
    { "2 ^ 3 ^ 2", "2 ^ 3 ^ 2" },
    { "-(1)", "-(1)" },
    { "- - 1", "1" },
    { "foo - -1", "foo - -1" },
    { "AND{a=\"b\"}", "AND{a=\"b\"}" },
    { "start", "start" },
    { "foo @ 1 + bar", "foo @ 1.000 + bar" },
    { "rate(foo[5m] @ start())", "rate(foo[5m] @ start())" },
};

Test(parser, accepts_prometheus_grammar_and_prints_canonically)
{
    size_t n = sizeof good / sizeof good[0];
    for (size_t i = 0; i < n; i++) {
        struct promql_node *root = parse(good[i].q);
        cr_assert(root, "%s: %s", good[i].q, err.msg);
        cr_expect_str_eq(fmt(root), good[i].want, "query %s", good[i].q);
    }
}

/* ---- rejected queries with Prometheus's exact messages ---- */

static const struct {
    const char *q, *msg;
} bad[] = {
    { "", "1:1: parse error: no expression found in input" },
    { "# just a comment\n\n", "1:1: parse error: no expression found in input" },
    { "1+", "1:3: parse error: unexpected end of input" },
    { ".", "1:1: parse error: unexpected character: '.'" },
    { "2.5.", "1:1: parse error: bad number or duration syntax: \"2.5.\"" },
    { "100..4", "1:1: parse error: bad number or duration syntax: \"100..\"" },
    { "0deadbeef", "1:1: parse error: bad number or duration syntax: \"0de\"" },
    { "1 /", "1:4: parse error: unexpected end of input" },
    { "*1", "1:1: parse error: unexpected <op:*>" },
    { "(1))", "1:5: parse error: unexpected right parenthesis ')'" },
    { "((1)", "1:5: parse error: unclosed left parenthesis" },
    { "(", "1:2: parse error: unclosed left parenthesis" },
    { "1 and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar expression" },
    { "1 == 1", "1:3: parse error: comparisons between scalars must use BOOL modifier" },
    { "1 or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression" },
    { "1 unless 1",
      "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression" },
    { "1 !~ 1", "1:3: parse error: unexpected character after '!': '~'" },
    { "1 =~ 1", "1:3: parse error: unexpected character after '=': '~'" },
    { "-\"string\"", "1:1: parse error: unary expression only allowed on expressions of type "
                     "scalar or instant vector, got \"string\"" },
    { "-test[5m]", "1:1: parse error: unary expression only allowed on expressions of type "
                   "scalar or instant vector, got \"range vector\"" },
    { "*test", "1:1: parse error: unexpected <op:*>" },
    { "@@", "1:1: parse error: unexpected <op:@>" },
    { "1 offset 1d", "1:1: parse error: offset modifier must be preceded by an instant vector "
                     "selector or range vector selector or a subquery" },
    { "foo offset 1s offset 2s", "1:1: parse error: offset may not be set multiple times" },
    { "a - on(b) ignoring(c) d", "1:11: parse error: unexpected <ignoring>" },
    { "foo and 1", "1:1: parse error: set operator \"and\" not allowed in binary scalar "
                   "expression" },
    { "1 and foo", "1:1: parse error: set operator \"and\" not allowed in binary scalar "
                   "expression" },
    { "foo or 1", "1:1: parse error: set operator \"or\" not allowed in binary scalar expression" },
    { "foo unless 1",
      "1:1: parse error: set operator \"unless\" not allowed in binary scalar expression" },
    { "1 or on(bar) foo", "1:1: parse error: vector matching only allowed between instant "
                          "vectors" },
    { "foo == on(bar) 10", "1:1: parse error: vector matching only allowed between instant "
                           "vectors" },
    { "foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison "
                        "operators" },
    { "foo + bool 10", "1:5: parse error: bool modifier can only be used on comparison "
                       "operators" },
    { "foo and bool 10", "1:5: parse error: bool modifier can only be used on comparison "
                         "operators" },
    { "foo and on(bar) group_left(baz) bar",
      "1:1: parse error: no grouping allowed for \"and\" operation" },
    { "foo and on(bar) group_right(baz) bar",
      "1:1: parse error: no grouping allowed for \"and\" operation" },
    { "foo or on(bar) group_left(baz) bar",
      "1:1: parse error: no grouping allowed for \"or\" operation" },
    { "foo unless on(bar) group_left(baz) bar",
      "1:1: parse error: no grouping allowed for \"unless\" operation" },
    { "http_requests{group=\"production\"} + on(instance) group_left(job,instance) "
      "cpu_count{type=\"smp\"}",
      "1:35: parse error: label \"instance\" must not occur in ON and GROUP clause at once" },
    { "foo + bool", "1:11: parse error: unexpected end of input" },
    { "foo + bool bar", "1:5: parse error: bool modifier can only be used on comparison "
                        "operators" },
    { "{", "1:2: parse error: unexpected end of input inside braces" },
    { "}", "1:1: parse error: unexpected character: '}'" },
    { "some{", "1:6: parse error: unexpected end of input inside braces" },
    { "some}", "1:5: parse error: unexpected character: '}'" },
    { "some_metric{a=b}",
      "1:15: parse error: unexpected identifier \"b\" in label matching, expected string" },
    { "some_metric{a:b=\"b\"}",
      "1:14: parse error: unexpected character inside braces: ':'" },
    { "foo{a*\"b\"}", "1:6: parse error: unexpected character inside braces: '*'" },
    { "foo{a>=\"b\"}", "1:6: parse error: unexpected character inside braces: '>'" },
    { "foo{gibberish}",
      "1:14: parse error: unexpected \"}\" in label matching, expected label matching operator" },
    { "foo{1}", "1:5: parse error: unexpected character inside braces: '1'" },
    { "{}", "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "{x=\"\"}",
      "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "{x=~\".*\"}",
      "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "{x!~\".+\"}",
      "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "{x!=\"a\"}",
      "1:1: parse error: vector selector must contain at least one non-empty matcher" },
    { "foo{__name__=\"bar\"}",
      "1:1: parse error: metric name must not be set twice: \"foo\" or \"bar\"" },
    { "foo{__name__= =}",
      "1:15: parse error: unexpected \"=\" in label matching, expected string" },
    { "foo{,}",
      "1:5: parse error: unexpected \",\" in label matching, expected identifier or \"}\"" },
    { "foo{__name__ == \"bar\"}",
      "1:15: parse error: unexpected \"=\" in label matching, expected string" },
    { "foo{__name__=\"bar\" lol}",
      "1:20: parse error: unexpected identifier \"lol\" in label matching, expected \",\" or "
      "\"}\"" },
    { "foo{a=\"b\"} {c=\"d\"}", "1:12: parse error: unexpected \"{\"" },
    { "foo[5mm]", "1:5: parse error: bad number or duration syntax: \"5mm\"" },
    { "foo[5m1]", "1:5: parse error: bad number or duration syntax: \"5m1\"" },
    { "foo[5m:1m1]", "1:8: parse error: bad number or duration syntax: \"1m1\"" },
    { "foo[5y1hs]", "1:5: parse error: unknown unit \"hs\" in duration \"5y1hs\"" },
    { "foo[5m1h]", "1:5: parse error: not a valid duration string: \"5m1h\"" },
    { "foo[5m1m]", "1:5: parse error: not a valid duration string: \"5m1m\"" },
    { "foo[\"5m\"]", "1:5: parse error: bad number or duration syntax: \"\"" },
    { "foo[]", "1:5: parse error: bad number or duration syntax: \"\"" },
    { "foo[-5m]", "1:5: parse error: bad number or duration syntax: \"\"" },
    { "foo[5m", "1:7: parse error: unclosed left bracket" },
    { "foo[5m:", "1:8: parse error: unclosed left bracket" },
    { "foo]", "1:4: parse error: unexpected right bracket ']'" },
    { "foo[5m][5m]", "1:8: parse error: ranges only allowed for vector selectors" },
    { "some_metric[5m] OFFSET",
      "1:23: parse error: unexpected end of input in offset, expected number or duration" },
    { "some_metric[5m] OFFSET 1mm",
      "1:24: parse error: bad number or duration syntax: \"1mm\"" },
    { "some_metric OFFSET 1m[5m]", "1:22: parse error: no offset modifiers allowed before range" },
    { "some_metric @ 123 [5m]", "1:19: parse error: no @ modifiers allowed before range" },
    { "(foo + bar)[5m]", "1:12: parse error: ranges only allowed for vector selectors" },
    { "rate(foo[5m])[5m]", "1:14: parse error: ranges only allowed for vector selectors" },
    { "foo[5m:1m 1s]",
      "1:11: parse error: unexpected duration \"1s\" in subquery selector, expected \"]\"" },
    { "foo[5m 1m]", "1:8: parse error: unexpected duration \"1m\" in subquery or range, "
                    "expected \":\" or \"]\"" },
    { "foo[5m x]", "1:8: parse error: unexpected character: 'x', expected ':'" },
    { "foo[5m::]", "1:8: parse error: unexpected colon ':'" },
    { "test[5d] OFFSET 10s [10m:5s]",
      "1:1: parse error: subquery is only allowed on instant vector, got matrix instead" },
    { "(foo + bar{nm=\"val\"})[5m:][10m:5s]",
      "1:1: parse error: subquery is only allowed on instant vector, got matrix instead" },
    { "rate(food[1m])[1h] offset 1h", "1:15: parse error: ranges only allowed for vector "
                                      "selectors" },
    { "sum without(==)(some_metric)",
      "1:13: parse error: unexpected <op:==> in grouping opts, expected label" },
    { "sum without(,)(some_metric)",
      "1:13: parse error: unexpected \",\" in grouping opts, expected label" },
    { "sum without(foo,,)(some_metric)",
      "1:17: parse error: unexpected \",\" in grouping opts, expected label" },
    { "sum some_metric by (test)",
      "1:5: parse error: unexpected identifier \"some_metric\"" },
    { "sum (some_metric) by test",
      "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\"" },
    { "sum (some_metric) by test",
      "1:22: parse error: unexpected identifier \"test\" in grouping opts, expected \"(\"" },
    { "sum () by (test)", "1:1: parse error: no arguments for aggregate expression provided" },
    { "MIN keep_common (some_metric)",
      "1:5: parse error: unexpected identifier \"keep_common\"" },
    { "MIN (some_metric) keep_common",
      "1:19: parse error: unexpected identifier \"keep_common\"" },
    { "sum (some_metric) without (test) by (test)", "1:34: parse error: unexpected <by>" },
    { "sum without (test) (some_metric) by (test)", "1:34: parse error: unexpected <by>" },
    { "topk(some_metric)", "1:1: parse error: wrong number of arguments for aggregate "
                          "expression provided, expected 2, got 1" },
    { "topk(some_metric,)",
      "1:17: parse error: trailing commas not allowed in function call args" },
    { "topk(some_metric, other_metric)",
      "1:6: parse error: expected type scalar in aggregation parameter, got instant vector" },
    { "count_values(5, other_metric)",
      "1:14: parse error: expected type string in aggregation parameter, got scalar" },
    { "sum(1)", "1:5: parse error: expected type instant vector in aggregation expression, got "
                "scalar" },
    { "sum(1, x)", "1:1: parse error: wrong number of arguments for aggregate expression "
                   "provided, expected 1, got 2" },
    { "sum(x[5m])", "1:5: parse error: expected type instant vector in aggregation expression, "
                    "got range vector" },
    { "sum(x +)", "1:8: parse error: unexpected \")\" in aggregation" },
    { "sum(rate(x[5m]) foo)",
      "1:17: parse error: unexpected identifier \"foo\" in aggregation" },
    { "sum by (a) foo", "1:12: parse error: unexpected identifier \"foo\" in aggregation" },
    { "rate(some_metric[5m]) @ 1", "1:1: parse error: @ modifier must be preceded by an "
                                   "instant vector selector or range vector selector or a "
                                   "subquery" },
    { "time()", NULL },
    { "floor()", "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 0" },
    { "floor(some_metric, other_metric)",
      "1:1: parse error: expected 1 argument(s) in call to \"floor\", got 2" },
    { "floor(some_metric, 1)", "1:1: parse error: expected 1 argument(s) in call to \"floor\", "
                               "got 2" },
    { "floor(1)", "1:7: parse error: expected type instant vector in call to function \"floor\", "
                  "got scalar" },
    { "hour(some_metric, some_metric, some_metric)",
      "1:1: parse error: expected at most 1 argument(s) in call to \"hour\", got 3" },
    { "time(some_metric)", "1:1: parse error: expected 0 argument(s) in call to \"time\", got 1" },
    { "non_existent_function_far_bar()",
      "1:1: parse error: unknown function with name \"non_existent_function_far_bar\"" },
    { "rate(some_metric)", "1:6: parse error: expected type range vector in call to function "
                           "\"rate\", got instant vector" },
    { "label_replace(a, `b`, `c\\xff`, `d`, `.*`)", NULL },
    { "label_join(x, \"d\")",
      "1:1: parse error: expected at least 3 argument(s) in call to \"label_join\", got 2" },
    { "label_join(x, \"d\", \",\", 1)", "1:25: parse error: expected type string in call to "
                                        "function \"label_join\", got scalar" },
    { "round(x, 1, 2)", "1:1: parse error: expected at most 2 argument(s) in call to \"round\", "
                        "got 3" },
    { "abs(x, )", "1:6: parse error: trailing commas not allowed in function call args" },
    { "abs(x y)", "1:7: parse error: unexpected identifier \"y\"" },
    { "foo:bar(x)", "1:8: parse error: unexpected \"(\"" },
    { "abs(", "1:5: parse error: unclosed left parenthesis" },
    { "abs(1", "1:6: parse error: unclosed left parenthesis" },
    { "\"unterminated", "1:1: parse error: unterminated quoted string" },
    { "'abc\ndef'", "1:1: parse error: unterminated quoted string" },
    { "`raw", "1:1: parse error: unterminated raw string" },
    { "\"\\q\"", "1:1: parse error: unknown escape sequence U+0071 'q'" },
    { "\"\\x4g\"", "1:1: parse error: illegal character U+0067 'g' in escape sequence" },
    { "\"\\400\"", "1:1: parse error: escape sequence is an invalid Unicode code point" },
    { "\"\\uD800\"", "1:1: parse error: escape sequence is an invalid Unicode code point" },
    { "\"\\", "1:1: parse error: escape sequence not terminated" },
    { "\"\xff\"", "1:1: parse error: invalid UTF-8 rune" },
    { "foo{a=\"\xc3\"}", "1:7: parse error: invalid UTF-8 rune" },
    { "foo $", "1:5: parse error: unexpected character: '$'" },
    { "foo ~ bar", "1:5: parse error: unexpected character: '~'" },
    { "foo = bar", "1:5: parse error: unexpected \"=\"" },
    { "foo bar", "1:5: parse error: unexpected identifier \"bar\"" },
    { "foo 1", "1:5: parse error: unexpected number \"1\"" },
    { "foo \"a very long string\"",
      "1:5: parse error: unexpected string \"\\\"a very lo\"..." },
    { "foo offset", "1:11: parse error: unexpected end of input in offset, expected number or "
                    "duration" },
    { "foo offset bar",
      "1:12: parse error: unexpected identifier \"bar\" in offset, expected number or duration" },
    { "foo @", "1:6: parse error: unexpected end of input in @, expected timestamp" },
    { "foo @ start", "1:12: parse error: unexpected end of input in @, expected timestamp" },
    { "foo @ start(", "1:13: parse error: unclosed left parenthesis" },
    { "foo @ bar", "1:7: parse error: unexpected identifier \"bar\" in @, expected timestamp" },
    { "foo @ 1 @ 2", "1:1: parse error: @ <timestamp> may not be set multiple times" },
    { "foo @ start() @ end()", "1:1: parse error: @ <timestamp> may not be set multiple times" },
    { "foo @ Inf", "1:1: parse error: timestamp out of bounds for @ modifier: +Inf" },
    { "foo @ NaN", "1:1: parse error: timestamp out of bounds for @ modifier: NaN" },
    { "foo @ 1e20",
      "1:1: parse error: timestamp out of bounds for @ modifier: 100000000000000000000.000000" },
    { "(foo) @ 1", "1:1: parse error: @ modifier must be preceded by an instant vector selector "
                   "or range vector selector or a subquery" },
    { "sum(foo) offset 5m", "1:1: parse error: offset modifier must be preceded by an instant "
                            "vector selector or range vector selector or a subquery" },
    { "foo offset 1e30", "1:12: parse error: duration out of range" },
    { "foo[300y]", "1:5: parse error: duration out of range" },
    { "1e400", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"1e400\": "
               "value out of range" },
    { "0x", "1:1: parse error: error parsing number: strconv.ParseFloat: parsing \"0x\": invalid "
            "syntax" },
    { "1.5m", "1:1: parse error: unknown unit \".\" in duration \"1.5m\"" },
    { "foo{a=~\"(\"}", "1:5: parse error: " },
    { "1 +\n  *", "2:3: parse error: unexpected <op:*>" },
    { "sum(\n  rate(x[5m]\n", "3:1: parse error: unclosed left parenthesis" },
    { "foo{\n  job=\"a\",\n  x\n}", "4:1: parse error: unexpected \"}\" in label matching, "
                                   "expected label matching operator" },
    { "foo and bar and on(a) group_left baz",
      "1:1: parse error: no grouping allowed for \"and\" operation" },
    { "\"a\" + 1", "1:1: parse error: binary expression must contain only scalar and instant "
                   "vector types" },
    { "1 + foo[5m]", "1:5: parse error: binary expression must contain only scalar and instant "
                     "vector types" },
    { "group_left", "1:1: parse error: unexpected <group_left>" },
    { "foo * group_left bar", "1:7: parse error: unexpected <group_left>" },
    { "sum by (a:b) (x)",
      "1:9: parse error: unexpected metric identifier \"a:b\" in grouping opts, expected label" },
};

Test(parser, rejects_with_prometheus_messages)
{
    size_t n = sizeof bad / sizeof bad[0];
    for (size_t i = 0; i < n; i++) {
        struct promql_node *root = parse(bad[i].q);
        if (!bad[i].msg) {
            cr_expect(root, "%s: %s", bad[i].q, err.msg);
            continue;
        }
        cr_expect_null(root, "%s should fail", bad[i].q);
        if (!root) {
            cr_expect_eq(err.code, VG_EINVAL, "%s", bad[i].q);
            cr_expect(strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) == 0,
                      "query %s:\n got  %s\n want %s", bad[i].q, err.msg, bad[i].msg);
        }
    }
}

/* ---- trees ---- */

Test(parser, precedence_and_associativity)
{
    struct promql_node *n = must("1 + 2 * 3 ^ 2 ^ 3 - 4");
    cr_assert_eq(n->kind, PN_BINARY);
    cr_assert_eq(n->bin.op, BIN_SUB);
    cr_assert_eq(n->bin.rhs->number, 4);
    struct promql_node *add = n->bin.lhs;
    cr_assert_eq(add->bin.op, BIN_ADD);
    struct promql_node *mul = add->bin.rhs;
    cr_assert_eq(mul->bin.op, BIN_MUL);
    struct promql_node *pow = mul->bin.rhs;
    cr_assert_eq(pow->bin.op, BIN_POW);
    cr_assert_eq(pow->bin.lhs->number, 3);
    cr_assert_eq(pow->bin.rhs->kind, PN_BINARY, "^ is right-associative");
    cr_assert_eq(pow->bin.rhs->bin.op, BIN_POW);

    n = must("a or b and c unless d == e + f");
    cr_assert_eq(n->bin.op, BIN_OR);
    cr_assert_eq(n->bin.rhs->bin.op, BIN_UNLESS);
    cr_assert_eq(n->bin.rhs->bin.lhs->bin.op, BIN_AND);
    cr_assert_eq(n->bin.rhs->bin.rhs->bin.op, BIN_EQL);
    cr_assert_eq(n->bin.rhs->bin.rhs->bin.rhs->bin.op, BIN_ADD);

    n = must("a - b - c");
    cr_assert_eq(n->bin.lhs->kind, PN_BINARY, "- is left-associative");
    n = must("a / b * c % d atan2 e");
    cr_assert_eq(n->bin.op, BIN_ATAN2);
    cr_assert_eq(n->bin.lhs->bin.op, BIN_MOD);
    cr_assert_eq(n->bin.lhs->bin.lhs->bin.op, BIN_MUL);
    n = must("a > b < c");
    cr_assert_eq(n->bin.op, BIN_LSS);
    cr_assert_eq(n->bin.lhs->bin.op, BIN_GTR);
}

Test(parser, unary_minus_rules)
{
    struct promql_node *n = must("-2^2");
    cr_assert_eq(n->kind, PN_UNARY, "-2^2 is -(2^2)");
    cr_assert(n->unary.negate);
    cr_assert_eq(n->unary.expr->bin.op, BIN_POW);
    n = must("-1 * 2");
    cr_assert_eq(n->kind, PN_BINARY);
    cr_assert_eq(n->bin.lhs->kind, PN_NUMBER);
    cr_assert_eq(n->bin.lhs->number, -1);
    cr_assert_eq(n->bin.lhs->start, 0);
    n = must("2 ^ -1");
    cr_assert_eq(n->bin.rhs->number, -1);
    n = must("-foo * 2");
    cr_assert_eq(n->kind, PN_BINARY);
    cr_assert_eq(n->bin.lhs->kind, PN_UNARY);
    n = must("-foo offset 5m");
    cr_assert_eq(n->kind, PN_UNARY);
    cr_assert_eq(n->unary.expr->sel.offset_ms, 300000);
    n = must("+foo");
    cr_assert_eq(n->kind, PN_UNARY);
    cr_assert_not(n->unary.negate);
    n = must("-(1)");
    cr_assert_eq(n->kind, PN_UNARY);
    cr_assert_eq(n->unary.expr->kind, PN_PAREN);
    n = must("--1");
    cr_assert_eq(n->kind, PN_NUMBER);
    cr_assert_eq(n->number, 1);
}

Test(parser, selectors_offsets_and_at)
{
    struct promql_node *n = must("http_requests_total{job=\"api\", code=~\"5..\"} offset -5m");
    cr_assert_eq(n->kind, PN_VECTOR_SELECTOR);
    cr_assert_str_eq(n->sel.name, "http_requests_total");
    cr_assert_eq(n->sel.nms, 3);
    cr_assert_str_eq(n->sel.ms[2]->name, "__name__", "the name matcher comes last");
    cr_assert_eq(n->sel.ms[1]->op, MATCH_RE);
    cr_assert_eq(n->sel.offset_ms, -300000);
    cr_assert_eq(n->sel.at, AT_NONE);
    cr_assert_eq(ex->nmatchers, 3);

    n = must("rate(x[5m] offset 1h @ 1700000000.5)");
    cr_assert_eq(n->kind, PN_CALL);
    cr_assert_eq(n->call.fn->id, FN_RATE);
    struct promql_node *m = n->call.args[0];
    cr_assert_eq(m->kind, PN_MATRIX_SELECTOR);
    cr_assert_eq(m->msel.range_ms, 300000);
    cr_assert_eq(m->msel.vs->sel.offset_ms, 3600000, "offset lives in the inner selector");
    cr_assert_eq(m->msel.vs->sel.at, AT_TIMESTAMP);
    cr_assert_eq(m->msel.vs->sel.at_ms, 1700000000500LL);

    n = must("max_over_time(rate(x[1m])[1h:30s] @ end() offset 5m)");
    struct promql_node *s = n->call.args[0];
    cr_assert_eq(s->kind, PN_SUBQUERY);
    cr_assert_eq(s->subq.range_ms, 3600000);
    cr_assert_eq(s->subq.step_ms, 30000);
    cr_assert_eq(s->subq.at, AT_END);
    cr_assert_eq(s->subq.offset_ms, 300000);
    n = must("x[5m:]");
    cr_assert_eq(n->subq.step_ms, 0);
    n = must("{\"my.metric\"}");
    cr_assert_null(n->sel.name);
    cr_assert_str_eq(n->sel.ms[0]->name, "__name__");
    cr_assert_str_eq(n->sel.ms[0]->value, "my.metric");
    n = must("foo @ -1.0005");
    cr_assert_eq(n->sel.at_ms, -1001, "rounded half away from zero as math.Round");
}

Test(parser, aggregations_and_matching)
{
    struct promql_node *n = must("topk by (job) (3, rate(x[5m]))");
    cr_assert_eq(n->kind, PN_AGGREGATE);
    cr_assert_eq(n->agg.op, AGG_TOPK);
    cr_assert_eq(n->agg.param->number, 3);
    cr_assert_eq(n->agg.expr->kind, PN_CALL);
    cr_assert(n->agg.has_grouping);
    cr_assert_not(n->agg.without);
    cr_assert_eq(n->agg.grouping.n, 1);
    cr_assert_str_eq(n->agg.grouping.v[0], "job");
    n = must("sum(x)");
    cr_assert_not(n->agg.has_grouping);
    cr_assert_null(n->agg.param);
    n = must("sum by () (x)");
    cr_assert(n->agg.has_grouping);
    cr_assert_eq(n->agg.grouping.n, 0);
    n = must("count_values without (a, b) (\"val\", x)");
    cr_assert(n->agg.without);
    cr_assert_eq(n->agg.param->kind, PN_STRING);
    cr_assert_str_eq(n->agg.param->string.p, "val");

    n = must("a * on (x, y) group_left (z) b");
    cr_assert_not_null(n->bin.matching);
    cr_assert_eq(n->bin.matching->card, CARD_MANY_TO_ONE);
    cr_assert(n->bin.matching->on);
    cr_assert_eq(n->bin.matching->labels.n, 2);
    cr_assert_str_eq(n->bin.matching->include.v[0], "z");
    n = must("a / ignoring (x) group_right b");
    cr_assert_eq(n->bin.matching->card, CARD_ONE_TO_MANY);
    cr_assert_not(n->bin.matching->on);
    cr_assert_eq(n->bin.matching->include.n, 0);
    n = must("a and b");
    cr_assert_eq(n->bin.matching->card, CARD_MANY_TO_MANY);
    n = must("a + 1");
    cr_assert_null(n->bin.matching, "no matching unless both sides are vectors");
    n = must("a > bool 1");
    cr_assert(n->bin.return_bool);
    cr_assert_eq(promql_node_type(n), PT_VECTOR);
    n = must("1 > bool 2");
    cr_assert_eq(promql_node_type(n), PT_SCALAR);
}

Test(parser, types_of_nodes)
{
    cr_assert_eq(promql_node_type(must("1")), PT_SCALAR);
    cr_assert_eq(promql_node_type(must("\"s\"")), PT_STRING);
    cr_assert_eq(promql_node_type(must("x")), PT_VECTOR);
    cr_assert_eq(promql_node_type(must("x[1m]")), PT_MATRIX);
    cr_assert_eq(promql_node_type(must("x[1m:]")), PT_MATRIX);
    cr_assert_eq(promql_node_type(must("scalar(x)")), PT_SCALAR);
    cr_assert_eq(promql_node_type(must("(time())")), PT_SCALAR);
    cr_assert_eq(promql_node_type(must("-time()")), PT_SCALAR);
    cr_assert_eq(promql_node_type(must("pi() * 2")), PT_SCALAR);
    cr_assert_eq(promql_node_type(must("sum(x)")), PT_VECTOR);
    cr_assert_str_eq(promql_type_name(PT_MATRIX), "matrix");
}

Test(parser, positions_are_byte_offsets)
{
    struct promql_node *n = must("  foo + sum(bar)");
    cr_assert_eq(n->start, 2);
    cr_assert_eq(n->end, 16);
    cr_assert_eq(n->bin.lhs->end, 5);
    cr_assert_eq(n->bin.rhs->start, 8);
    cr_assert_str_eq(ex->query, "  foo + sum(bar)");
}

Test(parser, error_columns_count_bytes_and_lines)
{
    cr_assert_null(parse("{city=\"Zürich\"} + $"));
    cr_assert_str_eq(err.msg, "1:20: parse error: unexpected character: '$'");
    cr_assert_null(parse("sum(x)\n  by (a) +"));
    cr_assert_str_eq(err.msg, "2:11: parse error: unexpected end of input");
}

Test(parser, nesting_is_bounded)
{
    static char q[8192];
    size_t n = 0;
    for (int i = 0; i < 600; i++)
        q[n++] = '(';
    q[n++] = '1';
    for (int i = 0; i < 600; i++)
        q[n++] = ')';
    q[n] = 0;
    cr_assert_null(parse(q));
    cr_assert(strstr(err.msg, "nested too deeply"), "%s", err.msg);
    n = 0;
    for (int i = 0; i < 700; i++) {
        memcpy(q + n, "1+", 2);
        n += 2;
    }
    q[n++] = '1';
    q[n] = 0;
    cr_assert_null(parse(q));
    cr_assert(strstr(err.msg, "nested too deeply"), "%s", err.msg);
    n = 0;
    for (int i = 0; i < 200; i++) {
        memcpy(q + n, "1+", 2);
        n += 2;
    }
    q[n++] = '1';
    q[n] = 0;
    cr_assert_not_null(parse(q), "%s", err.msg);
}

Test(parser, query_with_nul_bytes_and_no_terminator)
{
    const char q[] = { 'u', 'p', ' ', '+', ' ', '1', 'x' };
    promql_expr_free(ex);
    ex = promql_parse(q, 6, &err);
    cr_assert_not_null(ex, "%s", err.msg);
    promql_expr_free(ex);
    ex = promql_parse("up\0+1", 5, &err);
    cr_assert_null(ex);
    cr_assert_str_eq(err.msg, "1:3: parse error: unexpected character: '\\x00'");
}

Test(parser, allocation_failure_is_an_error)
{
    const char *q = "sum by (job) (rate(http_requests_total{job=~\"api|web\",code!=\"200\"}[5m] "
                    "offset 1m)) / on (job) group_left (team) max(team_info) > bool 0.5";
    bool ok = false;
    for (uint64_t n = 1; n < 500 && !ok; n++) {
        vg_alloc_fail_after(n);
        promql_expr_free(ex);
        ex = promql_parse(q, strlen(q), &err);
        vg_alloc_fail_after(0);
        if (ex)
            ok = true;
        else
            cr_assert_eq(err.code, VG_ENOMEM, "allocation %llu: %s", (unsigned long long)n,
                         err.msg);
    }
    cr_assert(ok, "parse never succeeded");
}

Test(parser, function_table)
{
    const struct promql_function *f = promql_function_lookup("label_replace", 13);
    cr_assert_not_null(f);
    cr_assert_eq(f->nargs, 5);
    cr_assert_eq(promql_function_min_args(f), 5);
    f = promql_function_lookup("label_join", 10);
    cr_assert_eq(f->variadic, -1);
    cr_assert_eq(promql_function_min_args(f), 3);
    f = promql_function_lookup("round", 5);
    cr_assert_eq(promql_function_min_args(f), 1);
    f = promql_function_lookup("year", 4);
    cr_assert_eq(promql_function_min_args(f), 0);
    cr_assert_eq(f->ret, PT_VECTOR);
    cr_assert_null(promql_function_lookup("rat", 3));
    cr_assert_null(promql_function_lookup("rates", 5));
    cr_assert_null(promql_function_lookup("Rate", 4), "function names are case-sensitive");
    f = promql_function_lookup("histogram_quantiles", 19);
    cr_assert_eq(promql_function_min_args(f), 3, "vector, label and one quantile at least");
    cr_assert_eq(f->variadic, 9);
    /* Every id is reachable by its name. */
    static const char *names[] = {
        "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan",
        "atanh", "avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos",
        "cosh", "count_over_time", "day_of_month", "day_of_week", "day_of_year",
        "days_in_month", "deg", "delta", "deriv", "double_exponential_smoothing", "exp",
        "floor", "histogram_quantile", "hour", "idelta", "increase", "irate", "label_join",
        "label_replace", "last_over_time", "ln", "log10", "log2", "mad_over_time",
        "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
        "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
        "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc", "sort_desc",
        "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time",
        "timestamp", "vector", "year",
        /* the experimental ones, ids appended */
        "end", "first_over_time", "histogram_fraction", "histogram_quantiles", "max_of",
        "min_of", "range", "start", "step", "ts_of_first_over_time", "ts_of_last_over_time",
        "ts_of_max_over_time", "ts_of_min_over_time",
    };
    cr_assert_eq(sizeof names / sizeof names[0], FN_COUNT_);
    for (size_t i = 0; i < FN_COUNT_; i++) {
        f = promql_function_lookup(names[i], strlen(names[i]));
        cr_assert_not_null(f, "%s", names[i]);
        cr_assert_eq((size_t)f->id, i, "%s", names[i]);
        cr_assert_str_eq(f->name, names[i]);
    }
}
