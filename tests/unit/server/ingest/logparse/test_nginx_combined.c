/* Tests server/ingest/logparse/nginx_combined.c with lines as nginx writes them in the
 * predefined `combined` log_format: browsers and curl, IPv6 clients, "-" fields, \xHH
 * escapes, TLS bytes sent to a plain-HTTP port, truncated and huge lines, and counting
 * the unparsable lines of a mixed file. */
#include "lp_test.h"

#include <stdlib.h>

TestSuite(nginx_combined, .init = lp_setup, .fini = lp_teardown);

#define T0 1709992931000000000LL /* 09/Mar/2024:14:02:11 +0000 */

Test(nginx_combined, browser_request)
{
    struct logparse *p = lp_new("nginx_combined");
    struct logparse_result r = lp_parse(
        p, "192.168.1.20 - - [09/Mar/2024:14:02:11 +0000] \"GET /api/v1/users?page=2 "
           "HTTP/1.1\" 200 1534 \"https://example.com/users\" \"Mozilla/5.0 (X11; Linux "
           "x86_64; rv:123.0) Gecko/20100101 Firefox/123.0\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r),
                     "remote_addr=192.168.1.20;time_local=09/Mar/2024:14:02:11 +0000;"
                     "request=GET /api/v1/users?page=2 HTTP/1.1;method=GET;"
                     "path=/api/v1/users?page=2;protocol=HTTP/1.1;status=200;"
                     "body_bytes_sent=1534;http_referer=https://example.com/users;"
                     "http_user_agent=Mozilla/5.0 (X11; Linux x86_64; rv:123.0) "
                     "Gecko/20100101 Firefox/123.0;");
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    cr_assert_eq(r.time_ns, T0);
    logparse_free(p);
}

Test(nginx_combined, ipv6_client_with_user_and_dashes)
{
    struct logparse *p = lp_new("nginx_combined");
    struct logparse_result r = lp_parse(
        p, "2001:db8:85a3::8a2e:370:7334 - alice [09/Mar/2024:15:02:11 +0100] \"POST "
           "/login HTTP/2.0\" 302 0 \"-\" \"curl/8.5.0\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "remote_addr"), "2001:db8:85a3::8a2e:370:7334");
    cr_assert_str_eq(lp_get(&r, "remote_user"), "alice");
    cr_assert_str_eq(lp_get(&r, "body_bytes_sent"), "0");
    cr_assert_null(lp_get(&r, "http_referer"));
    cr_assert_eq(r.time_ns, T0);

    r = lp_parse(p, "::1 - - [09/Mar/2024:14:02:11 +0000] \"GET /healthz HTTP/1.1\" 200 2 "
                    "\"-\" \"\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "remote_addr"), "::1");
    cr_assert_null(lp_get(&r, "remote_user"));
    cr_assert_str_eq(lp_get(&r, "http_user_agent"), ""); /* empty, not absent */
    logparse_free(p);
}

Test(nginx_combined, escaped_bytes_and_garbage_requests)
{
    struct logparse *p = lp_new("nginx_combined");
    struct logparse_result r = lp_parse(
        p, "10.0.0.5 - - [09/Mar/2024:14:02:11 +0000] \"GET /search?q=\\x22hello\\x22 "
           "HTTP/1.1\" 200 612 \"-\" \"Mozilla/5.0 \\x22quoted\\x22 \\xD0\\x96\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "path"), "/search?q=\"hello\"");
    cr_assert_str_eq(lp_get(&r, "http_user_agent"), "Mozilla/5.0 \"quoted\" \xD0\x96");

    /* a TLS ClientHello sent to a plain-HTTP port */
    r = lp_parse(p, "203.0.113.9 - - [09/Mar/2024:14:02:12 +0000] "
                    "\"\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03\" 400 157 \"-\" \"-\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "status"), "400");
    cr_assert_null(lp_get(&r, "method"));
    cr_assert_eq(logparse_get(&r, VG_STR("request"))->len, 11);

    /* a connection closed before a request line */
    r = lp_parse(p, "198.51.100.7 - - [09/Mar/2024:14:02:13 +0000] \"-\" 400 0 \"-\" \"-\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "remote_addr=198.51.100.7;time_local=09/Mar/2024:14:02:13 "
                                  "+0000;status=400;body_bytes_sent=0;");

    /* raw bytes that are not UTF-8 pass through (nginx would have escaped them) */
    r = lp_parse(p, "10.0.0.5 - - [09/Mar/2024:14:02:11 +0000] \"GET / HTTP/1.1\" 200 1 "
                    "\"-\" \"bad \xff\xfe agent\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "http_user_agent"), "bad \xff\xfe agent");
    logparse_free(p);
}

Test(nginx_combined, bad_time_keeps_the_fields)
{
    struct logparse *p = lp_new("nginx_combined");
    struct logparse_result r = lp_parse(
        p, "10.0.0.5 - - [31/Feb/2024:14:02:11 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"");
    lp_assert_parsed(&r);
    cr_assert_eq(r.time, LOGPARSE_TIME_INVALID);
    logparse_free(p);
}

Test(nginx_combined, huge_line)
{
    struct logparse *p = lp_new("nginx_combined");
    size_t big = 1 << 20;
    char *line = malloc(big + 200);
    int n = snprintf(line, 200, "10.0.0.1 - - [09/Mar/2024:14:02:11 +0000] \"GET /");
    memset(line + n, 'a', big);
    snprintf(line + n + big, 200, " HTTP/1.1\" 414 150 \"-\" \"-\"");
    struct logparse_result r = lp_parse(p, line);
    lp_assert_parsed(&r);
    cr_assert_eq(logparse_get(&r, VG_STR("path"))->len, big + 1);
    cr_assert_str_eq(lp_get(&r, "status"), "414");
    free(line);
    logparse_free(p);
}

Test(nginx_combined, unparsable_lines_are_counted)
{
    static const char *const lines[] = {
        "10.0.0.1 - - [09/Mar/2024:14:02:11 +0000] \"GET / HTTP/1.1\" 200 612 \"-\" \"curl/8.5.0\"",
        /* truncated mid user agent (a partial last line) */
        "10.0.0.1 - - [09/Mar/2024:14:02:11 +0000] \"GET / HTTP/1.1\" 200 612 \"-\" \"Mozilla/5.0 (X1",
        /* the `main` format with $http_x_forwarded_for: not combined */
        "10.0.0.1 - - [09/Mar/2024:14:02:11 +0000] \"GET / HTTP/1.1\" 200 612 \"-\" \"curl\" \"-\"",
        /* Apache common: no referer or agent */
        "10.0.0.1 - - [09/Mar/2024:14:02:11 +0000] \"GET / HTTP/1.1\" 200 612",
        "2024/03/09 14:02:11 [error] 1234#1234: *1 open() failed (2: No such file or directory)",
        "",
        "10.0.0.2 - bob [09/Mar/2024:14:02:12 +0000] \"HEAD /robots.txt HTTP/1.0\" 404 0 \"-\" \"-\"",
    };
    struct logparse *p = lp_new("nginx_combined");
    size_t parsed = 0, unparsable = 0;
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct logparse_result r = lp_parse(p, lines[i]);
        if (r.status == LOGPARSE_PARSED) {
            parsed++;
        } else {
            unparsable++;
            cr_assert_not_null(r.reason);
            cr_assert_eq(r.nfields, 0);
        }
    }
    cr_assert_eq(parsed, 2);
    cr_assert_eq(unparsable, 5);
    logparse_free(p);
}
