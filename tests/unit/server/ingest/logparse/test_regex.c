/* Tests server/ingest/logparse/regex.c: named groups become fields in group order, the
 * search is unanchored, optional groups, time from a group, configuration errors, no
 * match, invalid UTF-8 subjects and concurrent use of one parser. */
#include "lp_test.h"

#include <pthread.h>

TestSuite(regex, .init = lp_setup, .fini = lp_teardown);

/* nginx's `main` log_format, which the combined parser refuses */
#define NGINX_MAIN                                                                         \
    "^(?P<remote_addr>\\S+) - (?P<remote_user>\\S+) \\[(?P<time_local>[^\\]]+)\\] "        \
    "\"(?P<method>\\S+) (?P<path>\\S+) (?P<protocol>[^\"]+)\" (?P<status>\\d{3}) "        \
    "(?P<bytes>\\d+) \"(?P<referer>[^\"]*)\" \"(?P<agent>[^\"]*)\" \"(?P<xff>[^\"]*)\"$"

Test(regex, custom_nginx_format_with_time)
{
    struct logparse *p = lp_new_full("regex", NGINX_MAIN, "time_local", "clf");
    struct logparse_result r = lp_parse(
        p, "10.0.0.1 - - [09/Mar/2024:14:02:11 +0000] \"GET /a HTTP/1.1\" 200 612 \"-\" "
           "\"curl/8.5.0\" \"203.0.113.7, 10.0.0.2\"");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "remote_addr=10.0.0.1;remote_user=-;"
                                  "time_local=09/Mar/2024:14:02:11 +0000;method=GET;path=/a;"
                                  "protocol=HTTP/1.1;status=200;bytes=612;referer=-;"
                                  "agent=curl/8.5.0;xff=203.0.113.7, 10.0.0.2;");
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    cr_assert_eq(r.time_ns, 1709992931000000000LL);

    r = lp_parse(p, "10.0.0.1 - - [09/Mar/2024:14:02:11 +0000] \"GET /a HTTP/1.1\" 200 612 "
                    "\"-\" \"curl/8.5.0\"");
    lp_assert_unparsable(&r, "the pattern does not match");
    logparse_free(p);
}

Test(regex, unanchored_search_and_optional_groups)
{
    struct logparse *p =
        lp_new_full("regex", "(?<level>[A-Z]+) \\[(?<logger>[^\\]]+)\\](?: req=(?<req>\\d+))?",
                    NULL, NULL);
    struct logparse_result r =
        lp_parse(p, "2024-03-09 14:02:11,418 INFO [app.db] pool ready");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "level=INFO;logger=app.db;");
    r = lp_parse(p, "2024-03-09 14:02:11,418 WARN [app.http] req=42 slow");
    cr_assert_str_eq(lp_dump(&r), "level=WARN;logger=app.http;req=42;");
    /* invalid UTF-8 in the subject is safe to search; its bytes match no character */
    r = lp_parse(p, "\xff\xfe ERROR [db] x");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "logger"), "db");
    r = lp_parse(p, "ERROR [\xc3\x28]");
    lp_assert_unparsable(&r, "the pattern does not match");
    logparse_free(p);
}

Test(regex, configuration_errors)
{
    struct { const char *pattern, *msg; } cases[] = {
        { NULL, "pattern: the regex format needs a pattern" },
        { "(\\d+) (\\w+)", "pattern: needs at least one named group" },
        { "(?<a>x", "pattern: invalid regex \"(?<a>x\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct logparse_config cfg = { .format = "regex", .pattern = vg_str_c(cases[i].pattern) };
        struct vg_err err;
        cr_assert_null(logparse_new(&cfg, &err));
        cr_assert_eq(err.code, VG_EINVAL);
        cr_assert(strstr(err.msg, cases[i].msg), "%s", err.msg);
    }
}

Test(regex, limits_and_out_of_memory)
{
    struct logparse_config cfg = { .format = "regex",
                                   .pattern = VG_STR("(?<a>.)(?<b>.)(?<c>.)"),
                                   .max_fields = 2 };
    struct vg_err err;
    struct logparse *p = logparse_new(&cfg, &err);
    struct logparse_result r = lp_parse(p, "xyz");
    lp_assert_unparsable(&r, "too many fields");
    logparse_free(p);

    p = lp_new_full("regex", "(?<a>.)", NULL, NULL);
    vg_alloc_fail_after(1); /* PCRE2's match data */
    cr_assert_eq(logparse_line(p, "x", 1, 0, lp_arena, &r), VG_ENOMEM);
    vg_alloc_fail_after(0);
    struct vg_arena *tiny = vg_arena_new(0);
    vg_arena_set_limit(tiny, 1);
    cr_assert_eq(logparse_line(p, "x", 1, 0, tiny, &r), VG_ENOMEM);
    lp_assert_unparsable(&r, "out of memory");
    vg_arena_free(tiny);
    logparse_free(p);
}

static void *worker(void *arg)
{
    const struct logparse *p = arg;
    struct vg_arena *a = vg_arena_new(0);
    long ok = 0;
    for (int i = 0; i < 2000; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "id=%d status=%d", i, 200 + i % 300);
        struct logparse_result r;
        if (logparse_line(p, line, (size_t)n, 0, a, &r) == 0 && r.nfields == 2)
            ok++;
        vg_arena_reset(a);
    }
    vg_arena_free(a);
    return (void *)ok;
}

Test(regex, one_parser_many_threads)
{
    struct logparse *p = lp_new_full("regex", "id=(?<id>\\d+) status=(?<status>\\d{3})", NULL, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, p);
    for (int i = 0; i < 4; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        cr_assert_eq((long)ok, 2000);
    }
    logparse_free(p);
}
