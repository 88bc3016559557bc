/* Tests server/promql/lexer.c: token kinds and boundaries as Prometheus's lexer makes
 * them (keywords case-insensitive, durations, numbers, braces, brackets, comments), the
 * lexer's error texts and positions, Go number and duration reading, string scanning and
 * unescaping, Go quoting, duration printing. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../../../server/promql/ast.h"
#include "../../../../server/promql/lexer.h"

/* Lexes q into kinds (at most 32), returning how many; the lexer is left in *lx. */
static size_t lex(const char *q, enum lexer_kind *k, struct lexer_token *toks, struct lexer *lx)
{
    lexer_init(lx, q, strlen(q));
    size_t n = 0;
    for (; n < 32; n++) {
        lexer_next(lx, &toks[n]);
        k[n] = toks[n].kind;
        if (k[n] == LK_EOF || k[n] == LK_ERROR)
            return n + 1;
    }
    return n;
}

#define KINDS(q, ...)                                                                        \
    do {                                                                                     \
        static const enum lexer_kind want[] = { __VA_ARGS__ };                               \
        enum lexer_kind got[32];                                                             \
        struct lexer_token t[32];                                                            \
        struct lexer lx;                                                                     \
        size_t n = lex(q, got, t, &lx);                                                      \
        cr_assert_eq(n, sizeof want / sizeof want[0], "%s: %zu tokens", q, n);               \
        for (size_t i = 0; i < n; i++)                                                       \
            cr_assert_eq(got[i], want[i], "%s: token %zu is %d, want %d", q, i, got[i],      \
                         want[i]);                                                           \
    } while (0)

Test(lexer, operators_and_punctuation)
{
    KINDS(",()[]{}", LK_COMMA, LK_LPAREN, LK_RPAREN, LK_LBRACKET, LK_ERROR);
    KINDS("+ - * / % ^ == != < <= > >= @", LK_ADD, LK_SUB, LK_MUL, LK_DIV, LK_MOD, LK_POW,
          LK_EQLC, LK_NEQ, LK_LSS, LK_LTE, LK_GTR, LK_GTE, LK_AT, LK_EOF);
    KINDS("a = b", LK_IDENT, LK_EQL, LK_IDENT, LK_EOF);
    KINDS("and OR Unless atan2", LK_AND, LK_OR, LK_UNLESS, LK_ATAN2, LK_EOF);
}

Test(lexer, keywords_identifiers_and_numbers)
{
    KINDS("sum BY without on ignoring group_left group_right bool offset start end", LK_AGG,
          LK_BY, LK_WITHOUT, LK_ON, LK_IGNORING, LK_GROUP_LEFT, LK_GROUP_RIGHT, LK_BOOL,
          LK_OFFSET, LK_START, LK_END, LK_EOF);
    KINDS("foo foo:bar :x _a1", LK_IDENT, LK_METRIC_IDENT, LK_METRIC_IDENT, LK_IDENT, LK_EOF);
    KINDS("Inf NaN inf 1 .5 5. 1e3 0x1F 1_000", LK_NUMBER, LK_NUMBER, LK_NUMBER, LK_NUMBER,
          LK_NUMBER, LK_NUMBER, LK_NUMBER, LK_NUMBER, LK_NUMBER, LK_EOF);
    KINDS("5m 1h30m 10ms 2y 1.5m", LK_DURATION, LK_DURATION, LK_DURATION, LK_DURATION,
          LK_DURATION, LK_EOF);
    enum lexer_kind k[32];
    struct lexer_token t[32];
    struct lexer lx;
    lex("count_values limit_ratio", k, t, &lx);
    cr_assert_eq(t[0].agg, AGG_COUNT_VALUES);
    cr_assert_eq(t[1].agg, AGG_LIMIT_RATIO);
    lex("  rate(x)", k, t, &lx);
    cr_assert_eq(t[0].pos, 2);
    cr_assert_eq(t[0].len, 4);
}

Test(lexer, braces_make_keywords_plain_identifiers)
{
    KINDS("x{by=\"a\", offset!~'b', sum=~`c`, on!=\"d\",}", LK_IDENT, LK_LBRACE, LK_IDENT,
          LK_EQL, LK_STRING, LK_COMMA, LK_IDENT, LK_NEQ_REGEX, LK_STRING, LK_COMMA, LK_IDENT,
          LK_EQL_REGEX, LK_STRING, LK_COMMA, LK_IDENT, LK_NEQ, LK_STRING, LK_COMMA, LK_RBRACE,
          LK_EOF);
}

Test(lexer, brackets_read_numbers_and_durations)
{
    KINDS("x[5m:1m]", LK_IDENT, LK_LBRACKET, LK_DURATION, LK_COLON, LK_DURATION,
          LK_RBRACKET, LK_EOF);
    KINDS("x[ 300 : ]", LK_IDENT, LK_LBRACKET, LK_NUMBER, LK_COLON, LK_RBRACKET, LK_EOF);
}

Test(lexer, comments_are_skipped)
{
    KINDS("# only\n", LK_EOF);
    KINDS("a # c1\n+ # c2\r\nb", LK_IDENT, LK_ADD, LK_IDENT, LK_EOF);
}

static void lex_error(const char *q, size_t at, const char *msg)
{
    enum lexer_kind k[32];
    struct lexer_token t[32];
    struct lexer lx;
    size_t n = lex(q, k, t, &lx);
    cr_assert_eq(k[n - 1], LK_ERROR, "%s", q);
    cr_assert_str_eq(lx.msg, msg, "%s", q);
    cr_assert_eq(lx.err_at, at, "%s: at %zu", q, lx.err_at);
    struct lexer_token after;
    lexer_next(&lx, &after);
    cr_assert_eq(after.kind, LK_EOF, "nothing after an error");
}

Test(lexer, errors_and_positions)
{
    lex_error("(", 1, "unclosed left parenthesis");
    lex_error("a)", 2, "unexpected right parenthesis ')'");
    lex_error("x[5m", 4, "unclosed left bracket");
    lex_error("x[5m[", 4, "unexpected left bracket '['");
    lex_error("]", 0, "unexpected right bracket ']'");
    lex_error("{a", 2, "unexpected end of input inside braces");
    lex_error("{a{", 2, "unexpected left brace '{'");
    lex_error("{a!b", 2, "unexpected character after '!' inside braces: 'b'");
    lex_error("{a;", 2, "unexpected character inside braces: ';'");
    lex_error("a !b", 2, "unexpected character after '!': 'b'");
    lex_error("a =~ b", 2, "unexpected character after '=': '~'");
    lex_error("a ? b", 2, "unexpected character: '?'");
    lex_error("é", 0, "unexpected character: 'é'");
    lex_error("a \x01", 2, "unexpected character: '\\x01'");
    lex_error("a \xff", 2, "unexpected character: '�'");
    lex_error("0xee", 0, "bad number or duration syntax: \"0xee\"");
    lex_error("1e", 0, "bad number or duration syntax: \"1e\"");
    lex_error("1__0", 0, "bad number or duration syntax: \"1__\"");
    lex_error("5mb", 0, "bad number or duration syntax: \"5mb\"");
    lex_error("x[5m::]", 5, "unexpected colon ':'");
    lex_error("'abc", 0, "unterminated quoted string");
    lex_error("1 + \"\\z\"", 4, "unknown escape sequence U+007A 'z'");
    lex_error("\"\\\n\"", 0, "unknown escape sequence U+000A");
    lex_error("\"\\u12\"", 0, "illegal character U+0022 '\"' in escape sequence");
}

Test(lexer, go_number_reading)
{
    char m[256];
    double v;
    struct {
        const char *s;
        double want;
    } ok[] = {
        { "0", 0 },       { "0755", 493 },       { "08", 8 },      { "0x1f", 31 },
        { "0X_1F", 31 },  { "1_000", 1000 },      { "1.5", 1.5 },   { ".5", 0.5 },
        { "5.", 5 },      { "1e3", 1000 },       { "1E-2", 0.01 }, { "1_0.5_0", 10.5 },
        { "99999999999999999999", 1e20 },       { "1e-400", 0 },  { "Inf", INFINITY },
        { "4.9e-324", 4.9e-324 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(lexer_parse_number(ok[i].s, strlen(ok[i].s), &v, m, sizeof m), 0, "%s: %s",
                     ok[i].s, m);
        cr_assert_eq(v, ok[i].want, "%s = %g", ok[i].s, v);
    }
    cr_assert_eq(lexer_parse_number("NaN", 3, &v, m, sizeof m), 0);
    cr_assert(isnan(v));
    cr_assert_eq(lexer_parse_number("1e309", 5, &v, m, sizeof m), -1);
    cr_assert_str_eq(m, "error parsing number: strconv.ParseFloat: parsing \"1e309\": value "
                        "out of range");
    cr_assert_eq(lexer_parse_number("0x10000000000000000", 19, &v, m, sizeof m), -1);
    cr_assert(strstr(m, "invalid syntax"), "%s", m);
    cr_assert_eq(lexer_parse_number("1_", 2, &v, m, sizeof m), -1);
    cr_assert_eq(lexer_parse_number("_1", 2, &v, m, sizeof m), -1);
    cr_assert_eq(lexer_parse_number("", 0, &v, m, sizeof m), -1);
}

Test(lexer, durations_read_and_print)
{
    char m[256];
    int64_t ms;
    struct {
        const char *s;
        int64_t ms;
        const char *printed;
    } ok[] = {
        { "0", 0, "0s" },
        { "0s", 0, "0s" },
        { "1ms", 1, "1ms" },
        { "90s", 90000, "1m30s" },
        { "1h30m", 5400000, "1h30m" },
        { "1y2w3d4h5m6s7ms", 33019506007LL, "382d4h5m6s7ms" },
        { "14d", 1209600000LL, "2w" },
        { "90d", 7776000000LL, "90d" },
        { "365d", 31536000000LL, "1y" },
        { "366d", 31622400000LL, "366d" },
        { "292y", 9208512000000LL, "292y" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(lexer_parse_duration(ok[i].s, strlen(ok[i].s), &ms, m, sizeof m), 0, "%s: %s",
                     ok[i].s, m);
        cr_assert_eq(ms, ok[i].ms, "%s = %lld", ok[i].s, (long long)ms);
        struct vg_buf b;
        vg_buf_init(&b);
        lexer_format_duration(&b, ms);
        cr_assert_str_eq(vg_buf_cstr(&b), ok[i].printed);
        vg_buf_free(&b);
    }
    struct {
        const char *s, *msg;
    } bad[] = {
        { "", "empty duration string" },
        { "5", "not a valid duration string: \"5\"" },
        { "m", "not a valid duration string: \"m\"" },
        { "1m1h", "not a valid duration string: \"1m1h\"" },
        { "1m1m", "not a valid duration string: \"1m1m\"" },
        { "1x", "unknown unit \"x\" in duration \"1x\"" },
        { "1.5m", "unknown unit \".\" in duration \"1.5m\"" },
        { "293y", "duration out of range" },
        { "99999999999999999999999s", "not a valid duration string: \"99999999999999999999999s\"" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(lexer_parse_duration(bad[i].s, strlen(bad[i].s), &ms, m, sizeof m), -1, "%s",
                     bad[i].s);
        cr_assert_str_eq(m, bad[i].msg);
    }
}

static const char *unquote(const char *s, enum lexer_str_fail want, size_t *len)
{
    static struct vg_buf b;
    vg_buf_free(&b);
    vg_buf_init(&b);
    struct lexer_str_error e;
    size_t end;
    enum lexer_str_fail f = lexer_scan_string(s, strlen(s), 0, &end, &b, &e);
    cr_assert_eq(f, want, "%s: %d", s, f);
    if (f != LS_OK)
        return NULL;
    cr_assert_eq(end, strlen(s));
    *len = b.len;
    return b.len ? b.p : "";
}

Test(lexer, strings_unescape_like_go)
{
    size_t n;
    const char *v = unquote("\"a\\tb\\\"c\"", LS_OK, &n);
    cr_assert(n == 5 && memcmp(v, "a\tb\"c", 5) == 0);
    v = unquote("'it\\'s'", LS_OK, &n);
    cr_assert(n == 4 && memcmp(v, "it's", 4) == 0);
    v = unquote("\"\\101\\x42\\u00e9\\U0001F600\"", LS_OK, &n);
    cr_assert(n == 8 && memcmp(v, "AB\xc3\xa9\xf0\x9f\x98\x80", 8) == 0);
    v = unquote("\"\\xff\\377\"", LS_OK, &n);
    cr_assert(n == 2 && memcmp(v, "\xff\xff", 2) == 0, "single bytes, as Go");
    v = unquote("`raw\\n\nline`", LS_OK, &n);
    cr_assert(n == 10 && memcmp(v, "raw\\n\nline", 10) == 0);
    unquote("\"\\'\"", LS_ESC_UNKNOWN, &n);
    unquote("'\\\"'", LS_ESC_UNKNOWN, &n);
    unquote("\"\\U00110000\"", LS_ESC_RANGE, &n);
    unquote("\"\\400\"", LS_ESC_RANGE, &n);
    unquote("\"\\12\"", LS_ESC_ILLEGAL, &n);
    unquote("\"\\x", LS_ESC_UNTERMINATED, &n);
    unquote("\"\xef\xbf\xbd\"", LS_BAD_UTF8, &n);
    unquote("`a", LS_UNTERMINATED_RAW, &n);
    unquote("\"a\nb\"", LS_UNTERMINATED, &n);
}

Test(lexer, go_quoting)
{
    struct vg_buf b;
    vg_buf_init(&b);
    lexer_quote(&b, "a\"b\\c\n\x01\x7f\xc2\x80\xc3\xa9\xff\xef\xbf\xbd", 16);
    cr_assert_str_eq(vg_buf_cstr(&b), "\"a\\\"b\\\\c\\n\\x01\\x7f\\u0080é\\xff\\ufffd\"");
    vg_buf_free(&b);
    char r[16];
    lexer_quote_rune('\'', r, sizeof r);
    cr_assert_str_eq(r, "'\\''");
    lexer_quote_rune(0x2028, r, sizeof r);
    cr_assert_str_eq(r, "'\\u2028'");
    lexer_quote_rune(-1, r, sizeof r);
    cr_assert_str_eq(r, "'�'");
}

Test(lexer, describe_tokens_as_prometheus)
{
    static const struct {
        const char *q, *want;
    } cases[] = {
        { "foo", "identifier \"foo\"" },
        { "a:b", "metric identifier \"a:b\"" },
        { "\"abcdefghijklmn\"", "string \"\\\"abcdefghi\"..." },
        { "'ab'", "string \"'ab'\"" },
        { "12345678901", "number \"1234567890\"..." },
        { "5m", "duration \"5m\"" },
        { "BY", "<BY>" },
        { "Sum", "<aggr:Sum>" },
        { "and", "<op:and>" },
        { "=", "\"=\"" },
        { "(", "\"(\"" },
        { "start", "\"start\"" },
        { "", "end of input" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct lexer lx;
        struct lexer_token t;
        lexer_init(&lx, cases[i].q, strlen(cases[i].q));
        lexer_next(&lx, &t);
        char d[128];
        lexer_describe(cases[i].q, &t, d, sizeof d);
        cr_assert_str_eq(d, cases[i].want, "%s", cases[i].q);
    }
}

Test(lexer, error_positions_in_lines_and_columns)
{
    struct vg_err err;
    const char *q = "a\nbc\n\td";
    cr_assert_eq(lexer_error(&err, q, strlen(q), 6, "x %d", 1), VG_EINVAL);
    cr_assert_str_eq(err.msg, "3:2: parse error: x 1");
    lexer_error(&err, q, strlen(q), 0, "y");
    cr_assert_str_eq(err.msg, "1:1: parse error: y");
    lexer_error(&err, q, strlen(q), 99, "z");
    cr_assert_str_eq(err.msg, "3:3: parse error: z");
    cr_assert(lexer_is_label_name("_a9", 3));
    cr_assert_not(lexer_is_label_name("9a", 2));
    cr_assert_not(lexer_is_label_name("a.b", 3));
    cr_assert_not(lexer_is_label_name("", 0));
}
