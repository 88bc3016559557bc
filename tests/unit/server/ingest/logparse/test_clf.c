/* Tests server/ingest/logparse/clf.c directly with small layouts: token kinds, "-" as
 * an empty value, request splitting, escapes, spacing and truncation. */
#include "lp_test.h"

#include "../../../../../server/ingest/logparse/clf.h"

TestSuite(clf, .init = lp_setup, .fini = lp_teardown);

static struct logparse_out out;

static int run(const struct clf_token *layout, size_t n, const char *line)
{
    out = (struct logparse_out){ .arena = lp_arena, .max = 32 };
    return clf_parse(layout, n, vg_str_c(line), &out);
}

static const char *dump(void)
{
    struct logparse_result r = { .fields = out.fields, .nfields = out.n };
    return lp_dump(&r);
}

static const struct clf_token all_kinds[] = {
    { CLF_WORD, "w" },   { CLF_SKIP, NULL },   { CLF_TIME, "t" },   { CLF_QUOTED, "q" },
    { CLF_STATUS, "s" }, { CLF_NUMBER, "n" },
};
#define N_ALL (sizeof all_kinds / sizeof all_kinds[0])

Test(clf, every_token_kind)
{
    cr_assert_eq(run(all_kinds, N_ALL, "word skipped [a time] \"quoted text\" 404 123"), 0);
    cr_assert_str_eq(dump(), "w=word;t=a time;q=quoted text;s=404;n=123;");
    /* runs of spaces between tokens and at the end */
    cr_assert_eq(run(all_kinds, N_ALL, "w  x [t]   \"q\" 200 0  "), 0);
    cr_assert_str_eq(dump(), "w=w;t=t;q=q;s=200;n=0;");
}

Test(clf, dash_leaves_a_field_out)
{
    cr_assert_eq(run(all_kinds, N_ALL, "- - [-] \"-\" - -"), 0);
    cr_assert_str_eq(dump(), "");
    /* an empty quoted value is kept: it is not the server's "-" */
    cr_assert_eq(run(all_kinds, N_ALL, "a b [t] \"\" 500 -"), 0);
    cr_assert_str_eq(dump(), "w=a;t=t;q=;s=500;");
}

Test(clf, failures_say_where)
{
    struct { const char *line, *reason; size_t offset; } cases[] = {
        { "", "line ends early", 0 },
        { "a b", "line ends early", 3 },
        { "a b t \"q\" 200 1", "expected '[' before the time", 4 },
        { "a b [t \"q\" 200 1", "unterminated [time]", 4 },
        { "a b [t] q 200 1", "expected a quoted value", 8 },
        { "a b [t] \"q 200 1", "unterminated quoted value", 8 },
        { "a b [t] \"q\\\" 200 1", "unterminated quoted value", 8 },
        { "a b [t] \"q\" 20 1", "status is not three digits", 12 },
        { "a b [t] \"q\" 2000 1", "status is not three digits", 12 },
        { "a b [t] \"q\" 200 1k", "expected a number or '-'", 16 },
        { "a b [t] \"q\" 200 1 extra", "unexpected text after the last field", 18 },
        { "a b [t]\"q\" 200 1", "expected a space", 7 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(run(all_kinds, N_ALL, cases[i].line), LOGPARSE_UNPARSABLE, "%s",
                     cases[i].line);
        cr_assert_str_eq(out.reason, cases[i].reason, "%s", cases[i].line);
        cr_assert_eq(out.offset, cases[i].offset, "%s: %zu", cases[i].line, out.offset);
    }
}

static const struct clf_token request_only[] = { { CLF_REQUEST, NULL } };

static const char *request(const char *line)
{
    cr_assert_eq(run(request_only, 1, line), 0, "%s", line);
    return dump();
}

Test(clf, request_lines_are_split)
{
    cr_assert_str_eq(request("\"GET /index.html?q=1 HTTP/1.1\""),
                     "request=GET /index.html?q=1 HTTP/1.1;method=GET;path=/index.html?q=1;"
                     "protocol=HTTP/1.1;");
    cr_assert_str_eq(request("\"GET /\""), "request=GET /;method=GET;path=/;"); /* HTTP/0.9 */
    cr_assert_str_eq(request("\"GET /a b c HTTP/2.0\""),
                     "request=GET /a b c HTTP/2.0;method=GET;path=/a b c;protocol=HTTP/2.0;");
    cr_assert_str_eq(request("\"GET /a b\""), "request=GET /a b;method=GET;path=/a b;");
    cr_assert_str_eq(request("\"\\x16\\x03\\x01\""), "request=\x16\x03\x01;");
    cr_assert_str_eq(request("\"\""), "request=;");
    cr_assert_str_eq(request("\"GET \""), "request=GET ;method=GET;");
    cr_assert_str_eq(request("\" / HTTP/1.1\""),
                     "request= / HTTP/1.1;path=/;protocol=HTTP/1.1;");
    cr_assert_str_eq(request("\"GET /q=\\\"x\\\" HTTP/1.0\""),
                     "request=GET /q=\"x\" HTTP/1.0;method=GET;path=/q=\"x\";protocol=HTTP/1.0;");
}

Test(clf, out_of_memory)
{
    vg_arena_set_limit(lp_arena, 1);
    cr_assert_eq(run(all_kinds, N_ALL, "a b [t] \"q\" 200 1"), VG_ENOMEM);
    cr_assert_eq(run(all_kinds, N_ALL, "- - [-] \"\\n\" - -"), VG_ENOMEM);
}
