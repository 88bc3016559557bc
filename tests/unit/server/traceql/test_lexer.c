/* Tests server/traceql/lexer.c: operators, strings with escapes, numbers and durations,
 * attributes in every scope (quoted names too), words, and lexical errors. */
#include "../../../../server/traceql/ast.h"
#include "../../../../server/traceql/lexer.h"

#include <criterion/criterion.h>
#include <string.h>

static char buf[TRACEQL_MAX_STRING];

static struct traceql_tok lex1(const char *s)
{
    struct traceql_tok t;
    traceql_lex(s, strlen(s), 0, &t, buf);
    return t;
}

/* The kinds of every token of s, ending at EOF or the first error. */
static void kinds(const char *s, const enum traceql_tk *want, size_t n)
{
    struct traceql_tok t = { .end = 0 };
    for (size_t i = 0; i < n; i++) {
        traceql_lex(s, strlen(s), t.end, &t, buf);
        cr_assert_eq(t.kind, want[i], "%s: token %zu is %s", s, i, traceql_tok_name(&t));
    }
}

Test(traceql_lexer, operators)
{
    static const enum traceql_tk want[] = {
        TK_LBRACE, TK_RBRACE, TK_LPAREN, TK_RPAREN, TK_COMMA, TK_PIPE, TK_AND, TK_OR, TK_NOT,
        TK_EQ, TK_NEQ, TK_GT, TK_GTE, TK_LT, TK_LTE, TK_RE, TK_NRE, TK_DESC, TK_ANCE,
        TK_TILDE, TK_MINUS, TK_EOF,
    };
    kinds("{ } ( ) , | && || ! = != > >= < <= =~ !~ >> << ~ -", want,
          sizeof want / sizeof want[0]);
    struct traceql_tok t = lex1("  >>");
    cr_assert_eq(t.start, 2);
    cr_assert_eq(t.end, 4);
}

Test(traceql_lexer, strings)
{
    struct traceql_tok t = lex1("\"a\\\"b\\n\\x41\\u00e9\\101\"");
    cr_assert_eq(t.kind, TK_STRING);
    cr_assert_eq(t.slen, 8);
    cr_assert(!memcmp(t.s, "a\"b\nA\xc3\xa9" "A", 8));
    t = lex1("`raw\\n`");
    cr_assert_eq(t.kind, TK_STRING);
    cr_assert_eq(t.slen, 5);
    cr_assert(!memcmp(t.s, "raw\\n", 5));
    t = lex1("\"plain\"");
    cr_assert_eq(t.slen, 5);
    cr_assert_eq(t.end, 7);
}

Test(traceql_lexer, numbers_and_durations)
{
    struct traceql_tok t = lex1("42");
    cr_assert_eq(t.kind, TK_INT);
    cr_assert_eq(t.i, 42);
    t = lex1("1.25");
    cr_assert_eq(t.kind, TK_FLOAT);
    cr_assert_float_eq(t.f, 1.25, 1e-12);
    static const struct { const char *s; int64_t ns; } d[] = {
        { "1.5s", 1500000000 }, { "100ms", 100000000 }, { "10us", 10000 },
        { "10\xc2\xb5s", 10000 }, { "7ns", 7 }, { "1h30m", 5400000000000 }, { "2m", 120000000000 },
        { "0.5ms", 500000 },
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        t = lex1(d[i].s);
        cr_assert_eq(t.kind, TK_DURATION, "%s", d[i].s);
        cr_assert_eq(t.i, d[i].ns, "%s", d[i].s);
        cr_assert_eq(t.end, strlen(d[i].s));
    }
    cr_assert_eq(lex1("5x").kind, TK_ERROR);
    cr_assert_eq(lex1("5sx").kind, TK_ERROR);
    cr_assert_eq(lex1("99999999999999999999").kind, TK_ERROR);
    cr_assert_eq(lex1("9999999999999h").kind, TK_ERROR);
}

Test(traceql_lexer, parse_duration_like_go)
{
    int64_t ns;
    cr_assert_eq(traceql_parse_duration("0", 1, &ns), 0);
    cr_assert_eq(ns, 0);
    cr_assert_eq(traceql_parse_duration("-2ms", 4, &ns), 0);
    cr_assert_eq(ns, -2000000);
    cr_assert_eq(traceql_parse_duration("1m1s", 4, &ns), 0);
    cr_assert_eq(ns, 61000000000);
    cr_assert_eq(traceql_parse_duration("", 0, &ns), -1);
    cr_assert_eq(traceql_parse_duration("10", 2, &ns), -1);
    cr_assert_eq(traceql_parse_duration("1s ", 3, &ns), -1);
    cr_assert_eq(traceql_parse_duration(".s", 2, &ns), -1);
}

Test(traceql_lexer, attributes)
{
    struct traceql_tok t = lex1(".http.status_code=");
    cr_assert_eq(t.kind, TK_ATTR);
    cr_assert_eq(t.sub, TQ_SCOPE_ANY);
    cr_assert_eq(t.slen, 16);
    cr_assert(!memcmp(t.s, "http.status_code", 16));
    cr_assert_eq(t.end, 17);
    t = lex1("span.foo-bar/baz)");
    cr_assert_eq(t.kind, TK_ATTR);
    cr_assert_eq(t.sub, TQ_SCOPE_SPAN);
    cr_assert_eq(t.slen, 11);
    t = lex1("resource.service.name");
    cr_assert_eq(t.sub, TQ_SCOPE_RESOURCE);
    cr_assert_eq(t.slen, 12);
    t = lex1("span.\"with space\"");
    cr_assert_eq(t.kind, TK_ATTR);
    cr_assert_eq(t.slen, 10);
    cr_assert(!memcmp(t.s, "with space", 10));
    cr_assert_eq(lex1(". ").kind, TK_ERROR);
    cr_assert_eq(lex1("span.\"\"").kind, TK_ERROR);
}

Test(traceql_lexer, words)
{
    struct traceql_tok t = lex1("error");
    cr_assert_eq(t.kind, TK_STATUS);
    cr_assert_eq(t.sub, 2);
    t = lex1("consumer");
    cr_assert_eq(t.kind, TK_KIND);
    cr_assert_eq(t.sub, 5);
    t = lex1("trace:rootService");
    cr_assert_eq(t.kind, TK_INTRINSIC);
    cr_assert_eq(t.sub, TQ_I_ROOT_SERVICE);
    cr_assert_eq(lex1("span:duration").sub, TQ_I_DURATION);
    cr_assert_eq(lex1("avg").kind, TK_AGG);
    cr_assert_eq(lex1("select").kind, TK_SELECT);
    cr_assert_eq(lex1("nil").kind, TK_NIL);
    t = lex1("foo");
    cr_assert_eq(t.kind, TK_ERROR);
    cr_assert_str_eq(t.msg, "unknown identifier \"foo\"");
}

Test(traceql_lexer, errors)
{
    struct traceql_tok t = lex1("\"abc");
    cr_assert_eq(t.kind, TK_ERROR);
    cr_assert_str_eq(t.msg, "literal not terminated");
    cr_assert_eq(lex1("\"a\\qb\"").kind, TK_ERROR);
    cr_assert_eq(lex1("\"a\\xZZ\"").kind, TK_ERROR);
    cr_assert_eq(lex1("\"\\ud800\"").kind, TK_ERROR);
    cr_assert_eq(lex1("\"a\nb\"").kind, TK_ERROR);
    t = lex1("&");
    cr_assert_eq(t.kind, TK_ERROR);
    cr_assert_str_eq(t.msg, "unexpected character '&'");
    t = lex1("\x01");
    cr_assert_str_eq(t.msg, "unexpected byte 0x01");
    cr_assert_eq(lex1("").kind, TK_EOF);
    cr_assert_str_eq(traceql_tok_name(&t), "error");
}
