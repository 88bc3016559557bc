/* Tests server/ingest/logparse/logfmt.c with lines as Go services write them (go-kit,
 * slog's TextHandler, logrus's text formatter, Loki's own logs): quoted values with
 * escapes, bare keys, empty values, '=' in values, and malformed or truncated lines. */
#include "lp_test.h"

TestSuite(logfmt, .init = lp_setup, .fini = lp_teardown);

static struct logparse_result parse(const char *line)
{
    struct logparse *p = lp_new("logfmt");
    struct logparse_result r = lp_parse(p, line);
    logparse_free(p);
    return r;
}

Test(logfmt, go_kit_and_slog)
{
    struct logparse_result r = parse("level=info ts=2024-03-09T14:02:11.418Z caller=main.go:42 "
                                     "msg=\"listening on :8080\" transport=HTTP addr=:8080");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "level=info;ts=2024-03-09T14:02:11.418Z;caller=main.go:42;"
                                  "msg=listening on :8080;transport=HTTP;addr=:8080;");

    struct logparse *p = lp_new_full("logfmt", NULL, "time", "rfc3339");
    r = lp_parse(p, "time=2024-03-09T14:02:11.418Z level=INFO msg=\"hello, world\" user=alice count=3");
    lp_assert_parsed(&r);
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    cr_assert_eq(r.time_ns, 1709992931418000000LL);
    cr_assert_str_eq(lp_get(&r, "msg"), "hello, world");
    logparse_free(p);
}

Test(logfmt, logrus_and_loki_with_escapes)
{
    struct logparse_result r = parse(
        "time=\"2024-03-09T14:02:11Z\" level=warning msg=\"The group's number increased "
        "tremendously!\" number=122 omg=true");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "time"), "2024-03-09T14:02:11Z");
    cr_assert_str_eq(lp_get(&r, "omg"), "true");

    r = parse("level=error ts=2024-03-09T14:02:11.418Z caller=pusher.go:88 component=distributor "
              "msg=\"push failed\" err=\"rpc error: code = Unavailable desc = \\\"connection "
              "refused\\\"\\n\\tretrying \\u00e9\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "err"),
                     "rpc error: code = Unavailable desc = \"connection refused\"\n\tretrying \xc3\xa9");
}

Test(logfmt, bare_keys_empty_values_and_odd_values)
{
    struct logparse_result r =
        parse("  msg=hi debug key= other=1\tquery=a=b path=C:\\Users\\x q=it\"s caf\xc3\xa9=1 "
              "http.status=200 empty=\"\"  ");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "msg=hi;debug=;key=;other=1;query=a=b;path=C:\\Users\\x;"
                                  "q=it\"s;caf_=1;http_status=200;empty=;");
    r = parse("a=\xff\xfe b=\"\xc3\x28\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "a"), "\xff\xfe");
    cr_assert_str_eq(lp_get(&r, "b"), "\xc3\x28");
}

Test(logfmt, malformed_lines_are_unparsable)
{
    struct { const char *line, *reason; size_t offset; } cases[] = {
        { "just some plain text", "no key=value pair", 0 },
        { "", "no key=value pair", 0 },
        { "   ", "no key=value pair", 0 },
        { "level=info msg=\"truncated in the mid", "unterminated quoted value", 15 },
        { "msg=\"ends with a backslash\\\"", "unterminated quoted value", 4 },
        { "msg=\"a\"b=1", "expected a space after a quoted value", 7 },
        { "a=1 =v", "empty key", 4 },
        { "\"k\"=v", "quote before a key", 0 },
        { "k\"x=1", "quote inside a key", 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct logparse_result r = parse(cases[i].line);
        cr_assert_eq(r.status, LOGPARSE_UNPARSABLE, "%s", cases[i].line);
        cr_assert_str_eq(r.reason, cases[i].reason, "%s", cases[i].line);
        cr_assert_eq(r.offset, cases[i].offset, "%s: %zu", cases[i].line, r.offset);
    }
}

Test(logfmt, out_of_memory)
{
    struct logparse *p = lp_new("logfmt");
    struct vg_arena *tiny = vg_arena_new(0);
    vg_arena_set_limit(tiny, 1);
    const char *lines[] = { "a=1", "a.b=1", "a=\"x\\ny\"" };
    for (size_t i = 0; i < 3; i++) {
        struct logparse_result r;
        cr_assert_eq(logparse_line(p, lines[i], strlen(lines[i]), 0, tiny, &r), VG_ENOMEM);
        lp_assert_unparsable(&r, "out of memory");
    }
    vg_arena_free(tiny);
    logparse_free(p);
}
