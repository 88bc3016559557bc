/* Tests server/promql/selector.c: PromQL series selectors as match[] carries them, Go
 * string escapes, error positions, the non-empty-matcher rule, allocation failure. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/promql/selector.h"
#include "../../../../storage/base/vg_alloc.h"

static struct selector sel;
static struct vg_err err;

static int parse(const char *s)
{
    selector_free(&sel);
    vg_err_clear(&err);
    return selector_parse(s, strlen(s), &sel, &err);
}

static void fini(void)
{
    selector_free(&sel);
    vg_alloc_fail_after(0);
}

TestSuite(selector, .fini = fini);

static void expect(size_t i, const char *name, enum matcher_op op, const char *value, size_t vlen)
{
    cr_assert_lt(i, sel.n);
    cr_assert_str_eq(sel.ms[i]->name, name);
    cr_assert_eq(sel.ms[i]->op, op, "matcher %zu op %d", i, sel.ms[i]->op);
    cr_assert_eq(sel.ms[i]->value_len, vlen, "matcher %zu value length %zu", i,
                 sel.ms[i]->value_len);
    cr_assert(memcmp(sel.ms[i]->value, value, vlen) == 0, "matcher %zu value", i);
}

#define EXPECT(i, name, op, lit) expect(i, name, op, lit, sizeof(lit) - 1)

Test(selector, bare_metric_name)
{
    cr_assert_eq(parse("http_requests_total"), 0, "%s", err.msg);
    cr_assert_eq(sel.n, 1);
    EXPECT(0, "__name__", MATCH_EQ, "http_requests_total");
    cr_assert_eq(parse("  job:rate5m:sum \n"), 0, "%s", err.msg);
    EXPECT(0, "__name__", MATCH_EQ, "job:rate5m:sum");
}

Test(selector, name_and_all_four_operators)
{
    cr_assert_eq(parse("up{job=\"api\", instance!=\"a:1\",path=~\"/api/.*\" , code!~\"5..\",}"),
                 0, "%s", err.msg);
    cr_assert_eq(sel.n, 5);
    EXPECT(0, "__name__", MATCH_EQ, "up");
    EXPECT(1, "job", MATCH_EQ, "api");
    EXPECT(2, "instance", MATCH_NEQ, "a:1");
    EXPECT(3, "path", MATCH_RE, "/api/.*");
    EXPECT(4, "code", MATCH_NRE, "5..");
}

Test(selector, braces_only_and_name_label)
{
    cr_assert_eq(parse("{__name__=\"up\"}"), 0, "%s", err.msg);
    cr_assert_eq(sel.n, 1);
    EXPECT(0, "__name__", MATCH_EQ, "up");
    cr_assert_eq(parse("{__name__=~\"node_.+\",job=\"n\"}"), 0, "%s", err.msg);
    EXPECT(0, "__name__", MATCH_RE, "node_.+");
}

Test(selector, whitespace_and_comments_between_tokens)
{
    cr_assert_eq(parse("up # the metric\n { job = 'a' # x\n }"), 0, "%s", err.msg);
    cr_assert_eq(sel.n, 2);
    EXPECT(1, "job", MATCH_EQ, "a");
}

Test(selector, double_quoted_go_escapes)
{
    cr_assert_eq(parse("{a=\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\"\"}"), 0, "%s", err.msg);
    EXPECT(0, "a", MATCH_EQ, "\a\b\f\n\r\t\v\\\"");
    cr_assert_eq(parse("{a=\"\\101\\x42\\u00e9\\U0001F600\"}"), 0, "%s", err.msg);
    EXPECT(0, "a", MATCH_EQ, "AB\xc3\xa9\xf0\x9f\x98\x80");
    /* \x and octal give raw bytes, as in Go. */
    cr_assert_eq(parse("{a=\"\\xff\\377\"}"), 0, "%s", err.msg);
    EXPECT(0, "a", MATCH_EQ, "\xff\xff");
    /* An escaped NUL is a byte of the value. */
    cr_assert_eq(parse("{a=\"x\\000y\"}"), 0, "%s", err.msg);
    EXPECT(0, "a", MATCH_EQ, "x\0y");
}

Test(selector, single_quoted_escapes_its_own_quote_only)
{
    cr_assert_eq(parse("{a='it\\'s \"q\"'}"), 0, "%s", err.msg);
    EXPECT(0, "a", MATCH_EQ, "it's \"q\"");
    cr_assert_eq(parse("{a='\\\"'}"), VG_EINVAL);
    cr_assert(strstr(err.msg, "unknown escape sequence"), "%s", err.msg);
    cr_assert_eq(parse("{a=\"\\'\"}"), VG_EINVAL);
}

Test(selector, raw_strings_keep_backslashes_and_newlines)
{
    cr_assert_eq(parse("{a=~`\\d+\\.\\d+`, b=`x\ny`}"), 0, "%s", err.msg);
    EXPECT(0, "a", MATCH_RE, "\\d+\\.\\d+");
    EXPECT(1, "b", MATCH_EQ, "x\ny");
}

Test(selector, utf8_values_and_quoted_names)
{
    cr_assert_eq(parse("{city=\"Zürich\"}"), 0, "%s", err.msg);
    EXPECT(0, "city", MATCH_EQ, "Zürich");
    /* Prometheus 3: quoted label names and a lone quoted metric name. */
    cr_assert_eq(parse("{\"my.metric\", \"service.name\"=\"api\"}"), 0, "%s", err.msg);
    cr_assert_eq(sel.n, 2);
    EXPECT(0, "__name__", MATCH_EQ, "my.metric");
    EXPECT(1, "service.name", MATCH_EQ, "api");
}

Test(selector, not_nul_terminated_input)
{
    const char s[] = "up{job=\"a\"}garbage";
    cr_assert_eq(selector_parse(s, 11, &sel, &err), 0, "%s", err.msg);
    cr_assert_eq(sel.n, 2);
}

Test(selector, empty_matching_selectors_are_refused)
{
    cr_assert_eq(parse("{}"), VG_EINVAL);
    cr_assert(strstr(err.msg, "at least one non-empty matcher"), "%s", err.msg);
    cr_assert_eq(sel.n, 0);
    cr_assert_null(sel.ms);
    cr_assert_eq(parse("{job=\"\"}"), VG_EINVAL);
    cr_assert_eq(parse("{job=~\".*\"}"), VG_EINVAL);
    cr_assert_eq(parse("{job!=\"x\"}"), VG_EINVAL);
    cr_assert_eq(parse("{job!~\"x\"}"), VG_EINVAL);
    cr_assert_eq(parse("{job=~\".*\", env=~\".+\"}"), 0, "%s", err.msg);
}

struct bad {
    const char *in;
    const char *msg; /* expected substring, position first */
};

Test(selector, errors_name_line_and_column)
{
    static const struct bad cases[] = {
        { "", "1:1: parse error: unexpected end of input" },
        { "up{", "1:4: parse error: unexpected end of input inside braces" },
        { "up{job}", "1:7: parse error: unexpected character '}'" },
        { "up{job=}", "1:8: parse error: unexpected character '}' inside braces, expected a quoted string" },
        { "up{job=\"a\" x=\"b\"}", "1:12: parse error: unexpected character 'x' inside braces, expected ',' or '}'" },
        { "up{job=\"a}", "1:8: parse error: unterminated quoted string" },
        { "up{job=`a}", "1:8: parse error: unterminated raw string" },
        { "up{job=\"a\nb\"}", "1:8: parse error: unterminated quoted string" },
        { "up{job=\"\\q\"}", "1:9: parse error: unknown escape sequence" },
        { "up{job=\"\\x4\"}", "1:12: parse error: illegal character in escape sequence" },
        { "up{job=\"\\400\"}", "1:9: parse error: octal escape value > 255" },
        { "up{job=\"\\uD800\"}", "1:9: parse error: escape sequence is an invalid Unicode code point" },
        { "up{job=\"\\U00110000\"}", "invalid Unicode code point" },
        { "up{job=\"\xff\"}", "1:9: parse error: invalid UTF-8 rune" },
        { "up{1job=\"a\"}", "1:4: parse error: unexpected character '1' inside braces, expected a label name" },
        { "up{job:x=\"a\"}", "1:7: parse error: unexpected character ':'" },
        { "up[5m]", "1:3: parse error: unexpected character '['" },
        { "up offset 5m", "1:4: parse error: unexpected character 'o' after the selector" },
        { "rate(up[5m])", "1:5: parse error" },
        { "up{__name__=\"x\"}", "1:4: parse error: metric name must not be set twice: \"up\" or \"x\"" },
        { "up{\"other\"}", "metric name must not be set twice" },
        { "up{\"\"=\"a\"}", "label name must not be empty" },
        { "up{job=~\"(\"}", "1:4: parse error: " },
        { "\n  up{job=1}", "2:10: parse error: unexpected character '1'" },
        { "up{job==\"a\"}", "1:8: parse error: unexpected character '='" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(parse(cases[i].in), VG_EINVAL, "case %zu", i);
        cr_expect(strstr(err.msg, cases[i].msg), "case %zu: got \"%s\", want \"%s\"", i,
                  err.msg, cases[i].msg);
        cr_expect_eq(sel.n, 0, "case %zu leaves no matchers", i);
    }
}

Test(selector, regex_error_keeps_matcher_reason)
{
    cr_assert_eq(parse("{job=~\"a(b\"}"), VG_EINVAL);
    cr_assert(strncmp(err.msg, "1:2: parse error: ", 18) == 0, "%s", err.msg);
    cr_assert_gt(strlen(err.msg), 20);
}

Test(selector, allocation_failure_is_enomem_and_leaks_nothing)
{
    const char *s = "up{job=\"a\",b=~\"c.*\",d!=\"e\",f!~\"g\",h=\"i\"}";
    size_t live = vg_alloc_live_bytes();
    bool saw_enomem = false;
    for (uint64_t n = 1; n < 200; n++) {
        vg_alloc_fail_after(n);
        int rc = selector_parse(s, strlen(s), &sel, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            cr_assert_eq(sel.n, 6);
            selector_free(&sel);
            break;
        }
        saw_enomem |= rc == VG_ENOMEM;
        cr_assert(rc == VG_ENOMEM || rc == VG_EINVAL, "rc %d at %llu: %s", rc,
                  (unsigned long long)n, err.msg);
        cr_assert_eq(sel.n, 0);
        cr_assert_eq(vg_alloc_live_bytes(), live, "leak after failing allocation %llu",
                     (unsigned long long)n);
    }
    cr_assert(saw_enomem);
    cr_assert_eq(vg_alloc_live_bytes(), live);
}

Test(selector, free_accepts_zeroed_struct)
{
    struct selector z = { 0 };
    selector_free(&z);
    selector_free(NULL);
}
