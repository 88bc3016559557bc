/* Tests server/ingest/logparse/logparse.c: the registry, configuration errors, the
 * timestamp step (set, none, invalid), the field builder's limits and growth, key
 * sanitising and backslash unescaping, allocation failure in the arena. */
#include "lp_test.h"

#include "../../../../../server/ingest/logparse/logparse_int.h"

TestSuite(logparse, .init = lp_setup, .fini = lp_teardown);

Test(logparse, registry_lists_every_format_once)
{
    size_t n;
    const struct logparse_format *const *all = logparse_formats(&n);
    cr_assert_eq(n, 6);
    const char *want[] = { "nginx_combined", "apache_common", "apache_combined",
                           "json",           "logfmt",        "regex" };
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(all[i]->name, want[i]);
        cr_assert_eq(logparse_find(want[i]), all[i]);
        cr_assert_not_null(all[i]->parse);
        cr_assert_not_null(all[i]->summary);
        cr_assert_eq(all[i]->init == NULL, all[i]->free == NULL);
    }
    cr_assert_null(logparse_find("JSON"));
    cr_assert_null(logparse_find(NULL));
}

static void refused(struct logparse_config cfg, int code, const char *msg_part)
{
    struct vg_err err;
    cr_assert_null(logparse_new(&cfg, &err));
    cr_assert_eq(err.code, code);
    cr_assert(strstr(err.msg, msg_part), "%s", err.msg);
}

Test(logparse, configuration_errors_name_the_key)
{
    refused((struct logparse_config){ .format = "syslog" }, VG_EINVAL,
            "format: unknown log format \"syslog\" (valid formats: nginx_combined, "
            "apache_common, apache_combined, json, logfmt, regex)");
    refused((struct logparse_config){ .format = NULL }, VG_EINVAL, "format:");
    refused((struct logparse_config){ .format = "json", .time_format = VG_STR("unix") },
            VG_EINVAL, "time_format: set without time_field");
    refused((struct logparse_config){ .format = "json", .time_field = VG_STR("ts"),
                                      .time_format = VG_STR("%Q") },
            VG_EINVAL, "time_format: time layout");
    refused((struct logparse_config){ .format = "regex" }, VG_EINVAL, "pattern:");
}

Test(logparse, time_field_sets_the_record_time)
{
    struct logparse *p = lp_new_full("json", NULL, "@timestamp", "rfc3339");
    /* the configured name is sanitised like the keys it is compared with */
    struct logparse_result r = lp_parse(p, "{\"@timestamp\":\"2024-03-09T14:02:11Z\"}");
    lp_assert_parsed(&r);
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    cr_assert_eq(r.time_ns, 1709992931000000000LL);
    r = lp_parse(p, "{\"@timestamp\":\"yesterday\"}");
    lp_assert_parsed(&r);
    cr_assert_eq(r.time, LOGPARSE_TIME_INVALID);
    r = lp_parse(p, "{\"msg\":\"no time\"}");
    cr_assert_eq(r.time, LOGPARSE_TIME_NONE);
    r = lp_parse(p, "not json");
    cr_assert_eq(r.time, LOGPARSE_TIME_NONE);
    logparse_free(p);

    /* no field configured and none by default: no time */
    p = lp_new("logfmt");
    r = lp_parse(p, "time=2024-03-09T14:02:11Z");
    cr_assert_eq(r.time, LOGPARSE_TIME_NONE);
    logparse_free(p);

    /* a field without a format: auto */
    p = lp_new_full("logfmt", NULL, "ts", NULL);
    r = lp_parse(p, "ts=1709992931.5 msg=x");
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    cr_assert_eq(r.time_ns, 1709992931500000000LL);
    logparse_free(p);

    /* a format's default field with another layout */
    p = lp_new_full("nginx_combined", NULL, NULL, "clf");
    r = lp_parse(p, "::1 - - [09/Mar/2024:14:02:11 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"");
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    logparse_free(p);
    logparse_free(NULL);
}

Test(logparse, line_terminators_are_ignored)
{
    struct logparse *p = lp_new("logfmt");
    struct logparse_result r = lp_parse(p, "a=1 b=2\r\n");
    cr_assert_str_eq(lp_dump(&r), "a=1;b=2;");
    cr_assert_eq(logparse_line(p, NULL, 0, 0, lp_arena, &r), 0);
    lp_assert_unparsable(&r, "no key=value pair");
    cr_assert_eq(logparse_format_of(p), logparse_find("logfmt"));
    logparse_free(p);
}

Test(logparse, max_fields_makes_a_line_unparsable)
{
    struct logparse_config cfg = { .format = "logfmt", .max_fields = 3 };
    struct vg_err err;
    struct logparse *p = logparse_new(&cfg, &err);
    struct logparse_result r = lp_parse(p, "a=1 b=2 c=3");
    cr_assert_eq(r.nfields, 3);
    r = lp_parse(p, "a=1 b=2 c=3 d=4");
    lp_assert_unparsable(&r, "too many fields");
    logparse_free(p);

    /* the default is generous, and the array grows past its first size */
    p = lp_new("logfmt");
    char line[4096] = "";
    size_t n = 0;
    for (int i = 0; i < LOGPARSE_DEFAULT_MAX_FIELDS; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "k%d=%d ", i, i);
    r = lp_parse(p, line);
    lp_assert_parsed(&r);
    cr_assert_eq(r.nfields, LOGPARSE_DEFAULT_MAX_FIELDS);
    cr_assert_str_eq(lp_get(&r, "k255"), "255");
    logparse_free(p);
}

Test(logparse, arena_exhaustion_is_reported_and_the_line_kept_raw)
{
    struct logparse *p = lp_new("json");
    vg_arena_set_limit(lp_arena, 1);
    struct logparse_result r;
    const char *line = "{\"a\":1}";
    cr_assert_eq(logparse_line(p, line, strlen(line), 0, lp_arena, &r), VG_ENOMEM);
    lp_assert_unparsable(&r, "out of memory");
    logparse_free(p);
}

Test(logparse, allocation_failure_in_new)
{
    struct logparse_config cfg = { .format = "regex", .pattern = VG_STR("(?<a>x)"),
                                   .time_field = VG_STR("a") };
    for (uint64_t n = 1; n <= 8; n++) {
        struct vg_err err;
        vg_alloc_fail_after(n);
        struct logparse *p = logparse_new(&cfg, &err);
        vg_alloc_fail_after(0);
        if (!p)
            cr_assert_eq(err.code, VG_ENOMEM, "%s", err.msg);
        logparse_free(p);
    }
}

static struct vg_str key(struct logparse_out *o, const char *prefix, const char *k)
{
    bool nomem = false;
    struct vg_str s = logparse_key(o, vg_str_c(prefix), vg_str_c(k), &nomem);
    cr_assert(!nomem);
    return s;
}

Test(logparse, keys_are_sanitised_like_loki)
{
    struct logparse_out o = { .arena = lp_arena, .max = 8 };
    const char *clean = "status_code";
    cr_assert_eq(key(&o, "", clean).p, clean); /* unchanged: no copy */
    struct { const char *prefix, *key, *want; } cases[] = {
        { "", "http.method", "http_method" },
        { "", "@timestamp", "_timestamp" },
        { "", "2xx", "_2xx" },
        { "", "  level ", "level" },
        { "", "caf\xc3\xa9", "caf_" },   /* one '_' per UTF-8 character */
        { "", "a\xff" "b", "a_b" },      /* and per invalid byte */
        { "", "\xe2\x82", "__" },        /* a truncated sequence: each byte */
        { "req", "method", "req_method" },
        { "req", "2", "req_2" },         /* no '_' prefix for nested keys */
        { "req_headers", "user-agent", "req_headers_user_agent" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vg_str s = key(&o, cases[i].prefix, cases[i].key);
        cr_assert(vg_str_eq_c(s, cases[i].want), "%s/%s: %.*s", cases[i].prefix,
                  cases[i].key, (int)s.len, s.p);
    }
    cr_assert_eq(key(&o, "", "   ").len, 0);
    struct logparse_out tiny = { .arena = vg_arena_new(0), .max = 8 };
    vg_arena_set_limit(tiny.arena, 1);
    bool nomem = false;
    logparse_key(&tiny, VG_STR(""), VG_STR("a.b"), &nomem);
    cr_assert(nomem);
    vg_arena_free(tiny.arena);
}

static const char *unesc(struct logparse_out *o, const char *raw)
{
    static char buf[256];
    bool nomem = false;
    struct vg_str s = logparse_unescape(o, vg_str_c(raw), &nomem);
    cr_assert(!nomem);
    cr_assert_leq(s.len, strlen(raw));
    memcpy(buf, s.p, s.len);
    buf[s.len] = 0;
    return buf;
}

Test(logparse, unescaping)
{
    struct logparse_out o = { .arena = lp_arena, .max = 8 };
    cr_assert_str_eq(unesc(&o, "plain"), "plain");
    cr_assert_str_eq(unesc(&o, "a\\\"b\\\\c\\/d"), "a\"b\\c/d");
    cr_assert_str_eq(unesc(&o, "\\n\\t\\r\\a\\b\\f\\v\\'"), "\n\t\r\a\b\f\v'");
    cr_assert_str_eq(unesc(&o, "\\x22quoted\\x22 \\x5C"), "\"quoted\" \\");
    cr_assert_str_eq(unesc(&o, "caf\\u00e9 \\u20AC"), "caf\xc3\xa9 \xe2\x82\xac");
    cr_assert_str_eq(unesc(&o, "\\ud83d\\ude00"), "\xf0\x9f\x98\x80"); /* a surrogate pair */
    cr_assert_str_eq(unesc(&o, "\\ud83dx"), "\xef\xbf\xbdx");          /* lone: U+FFFD */
    cr_assert_str_eq(unesc(&o, "\\U0001F600"), "\xf0\x9f\x98\x80");
    cr_assert_str_eq(unesc(&o, "\\U00110000"), "\xef\xbf\xbd");
    cr_assert_str_eq(unesc(&o, "\\101\\060"), "A0");
    /* unknown and malformed escapes stay as written */
    cr_assert_str_eq(unesc(&o, "C:\\Users\\q \\x4 \\u12 \\8 \\"), "C:\\Users\\q \\x4 \\u12 \\8 \\");
    struct vg_str nul = logparse_unescape(&o, VG_STR("a\\x00b"), &(bool){ false });
    cr_assert_eq(nul.len, 3);
    cr_assert_eq(memcmp(nul.p, "a\0b", 3), 0);
    struct logparse_out tiny = { .arena = vg_arena_new(0), .max = 8 };
    vg_arena_set_limit(tiny.arena, 1);
    bool nomem = false;
    logparse_unescape(&tiny, VG_STR("\\n"), &nomem);
    cr_assert(nomem);
    vg_arena_free(tiny.arena);
}
