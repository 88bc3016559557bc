/* Tests server/ingest/logparse/apache.c with lines as Apache httpd writes them in the
 * `common` and `combined` LogFormats: the example from Apache's documentation, "-" for
 * zero bytes, \" and \\ escapes, IPv6, and lines of one format fed to the other. */
#include "lp_test.h"

TestSuite(apache, .init = lp_setup, .fini = lp_teardown);

Test(apache, common_log_format)
{
    struct logparse *p = lp_new("apache_common");
    struct logparse_result r = lp_parse(
        p, "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "remote_host=127.0.0.1;remote_user=frank;"
                                  "time=10/Oct/2000:13:55:36 -0700;"
                                  "request=GET /apache_pb.gif HTTP/1.0;method=GET;"
                                  "path=/apache_pb.gif;protocol=HTTP/1.0;status=200;"
                                  "response_bytes=2326;");
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    cr_assert_eq(r.time_ns, 971211336000000000LL);

    /* %b prints "-" for no body; identd answered */
    r = lp_parse(p, "fe80::1%eth0 ident42 - [10/Oct/2000:13:55:36 -0700] \"HEAD / HTTP/1.1\" 304 -");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "remote_host"), "fe80::1%eth0");
    cr_assert_str_eq(lp_get(&r, "remote_logname"), "ident42");
    cr_assert_null(lp_get(&r, "response_bytes"));
    cr_assert_null(lp_get(&r, "remote_user"));

    /* a combined line is not common */
    r = lp_parse(p, "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1 \"-\" \"x\"");
    lp_assert_unparsable(&r, "unexpected text after the last field");
    cr_assert_eq(r.offset, 66);
    logparse_free(p);
}

Test(apache, combined_log_format)
{
    struct logparse *p = lp_new("apache_combined");
    struct logparse_result r = lp_parse(
        p, "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" "
           "200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "referer"), "http://www.example.com/start.html");
    cr_assert_str_eq(lp_get(&r, "user_agent"), "Mozilla/4.08 [en] (Win98; I ;Nav)");

    /* Apache escapes '"' and '\' as \" and \\ */
    r = lp_parse(p, "192.0.2.4 - - [09/Mar/2024:14:02:11 +0000] \"GET /a\\\\b?q=\\\"x\\\" "
                    "HTTP/1.1\" 404 196 \"-\" \"Go-http-client/1.1 \\\"probe\\\"\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "path"), "/a\\b?q=\"x\"");
    cr_assert_str_eq(lp_get(&r, "user_agent"), "Go-http-client/1.1 \"probe\"");

    /* empty user agent header and no referer */
    r = lp_parse(p, "192.0.2.4 - - [09/Mar/2024:14:02:11 +0000] \"OPTIONS * HTTP/1.0\" 200 - "
                    "\"-\" \"\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "path"), "*");
    cr_assert_str_eq(lp_get(&r, "user_agent"), "");
    cr_assert_null(lp_get(&r, "referer"));

    /* a common line is too short for combined; truncated lines too */
    r = lp_parse(p, "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 2326");
    lp_assert_unparsable(&r, "line ends early");
    r = lp_parse(p, "127.0.0.1 - frank [10/Oct/2000:13:5");
    lp_assert_unparsable(&r, "unterminated [time]");
    r = lp_parse(p, "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" OK 2326 \"-\" \"-\"");
    lp_assert_unparsable(&r, "status is not three digits");
    logparse_free(p);
}
