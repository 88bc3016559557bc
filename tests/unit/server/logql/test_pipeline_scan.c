/* Tests server/logql/pipeline_scan.c directly: Go float, duration and humanize byte
 * parsing with Go's error texts, label-name sanitising, JSON unescaping and paths, the
 * logfmt decoder's errors and recovery, pattern matching and testing, ip() patterns
 * and the address scan, and ANSI escape stripping. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/logql/pipeline_scan.h"

static struct vg_err err;

Test(pipeline_scan, floats)
{
    double v;
    cr_assert_eq(lqscan_float(VG_STR("1.5e3"), &v, &err), 0);
    cr_assert_float_eq(v, 1500, 1e-9);
    cr_assert_eq(lqscan_float(VG_STR("-Inf"), &v, &err), 0);
    cr_assert(isinf(v) && v < 0);
    cr_assert_eq(lqscan_float(VG_STR("0x1p-2"), &v, &err), 0);
    cr_assert_float_eq(v, 0.25, 1e-12);
    cr_assert_eq(lqscan_float(VG_STR(" 1"), &v, &err), LQSCAN_SYNTAX);
    cr_assert_eq(lqscan_float(VG_STR("0x10"), &v, &err), LQSCAN_SYNTAX);
    cr_assert_eq(lqscan_float(VG_STR("1e999"), &v, &err), LQSCAN_SYNTAX);
    cr_assert_str_eq(err.msg, "strconv.ParseFloat: parsing \"1e999\": value out of range");
}

Test(pipeline_scan, durations)
{
    int64_t ns;
    cr_assert_eq(lqscan_duration(VG_STR("1h2m3.5s"), &ns, &err), 0);
    cr_assert_eq(ns, 3723500000000LL);
    cr_assert_eq(lqscan_duration(VG_STR("-1.5us"), &ns, &err), 0);
    cr_assert_eq(ns, -1500);
    cr_assert_eq(lqscan_duration(VG_STR("\xc2\xb5s"), &ns, &err), LQSCAN_SYNTAX);
    cr_assert_eq(lqscan_duration(VG_STR("3\xc2\xb5s"), &ns, &err), 0);
    cr_assert_eq(ns, 3000);
    cr_assert_eq(lqscan_duration(VG_STR("0"), &ns, &err), 0);
    cr_assert_eq(lqscan_duration(VG_STR(""), &ns, &err), LQSCAN_SYNTAX);
    cr_assert_str_eq(err.msg, "time: invalid duration \"\"");
    cr_assert_eq(lqscan_duration(VG_STR("9999999999h"), &ns, &err), LQSCAN_SYNTAX);
    cr_assert_eq(lqscan_duration(VG_STR("1d"), &ns, &err), LQSCAN_SYNTAX);
    cr_assert_str_eq(err.msg, "time: unknown unit \"d\" in duration \"1d\"");
}

Test(pipeline_scan, bytes)
{
    uint64_t b;
    cr_assert_eq(lqscan_bytes(VG_STR("42"), &b, &err), 0);
    cr_assert_eq(b, 42);
    cr_assert_eq(lqscan_bytes(VG_STR("1,024 kB"), &b, &err), 0);
    cr_assert_eq(b, 1024000);
    cr_assert_eq(lqscan_bytes(VG_STR("1.5Mi"), &b, &err), 0);
    cr_assert_eq(b, 1572864);
    cr_assert_eq(lqscan_bytes(VG_STR("5 parsecs"), &b, &err), LQSCAN_SYNTAX);
    cr_assert_str_eq(err.msg, "unhandled size name: parsecs");
    cr_assert_eq(lqscan_bytes(VG_STR("KB"), &b, &err), LQSCAN_SYNTAX);
    cr_assert_eq(lqscan_bytes(VG_STR("99999EB"), &b, &err), LQSCAN_SYNTAX);
}

Test(pipeline_scan, sanitize)
{
    struct vg_buf b;
    vg_buf_init(&b);
    lqscan_sanitize(&b, VG_STR(" 1a-b.c\xc3\xa9 "));
    cr_assert_eq(b.len, 8);
    cr_assert(memcmp(b.p, "_1a_b_c_", 8) == 0); /* one '_' for the two-byte \xc3\xa9 */
    vg_buf_reset(&b);
    lqscan_sanitize(&b, VG_STR("   "));
    cr_assert_eq(b.len, 0);
    vg_buf_free(&b);
    cr_assert(lqscan_valid_label_name(VG_STR("_a1")));
    cr_assert_not(lqscan_valid_label_name(VG_STR("1a")));
    cr_assert_not(lqscan_valid_label_name(VG_STR("")));
}

Test(pipeline_scan, json_unescape_and_utf8)
{
    char out[64];
    long n = lqscan_json_unescape(VG_STR("a\\u00e9\\ud83d\\ude00\\ud800x\\/"), out);
    cr_assert_eq(n, 1 + 2 + 4 + 3 + 2);
    cr_assert(memcmp(out, "a\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx/", (size_t)n) == 0);
    cr_assert_eq(lqscan_json_unescape(VG_STR("bad\\q"), out), -1);
    cr_assert_eq(lqscan_json_unescape(VG_STR("bad\\u12"), out), -1);
    char s[] = "a\xff" "b\xef\xbf\xbd" "c";
    size_t l = lqscan_fix_utf8(s, sizeof s - 1);
    cr_assert_eq(l, 5);
    cr_assert(memcmp(s, "a b c", 5) == 0);
}

Test(pipeline_scan, json_paths)
{
    struct lqscan_json_step st[8];
    cr_assert_eq(lqscan_json_path_parse(VG_STR("a.b[2][\"c d\"]"), st, 8, &err), 4);
    cr_assert(st[2].is_index && st[2].index == 2);
    cr_assert(vg_str_eq_c(st[3].key, "c d"));
    cr_assert_eq(lqscan_json_path_parse(VG_STR("a."), st, 8, &err), VG_EINVAL);
    cr_assert_eq(lqscan_json_path_parse(VG_STR("a[x]"), st, 8, &err), VG_EINVAL);
    cr_assert_eq(lqscan_json_path_parse(VG_STR("a.b.c"), st, 2, &err), VG_EINVAL);
    enum lqscan_json_kind k;
    struct vg_str raw;
    int n = lqscan_json_path_parse(VG_STR("a.b[2][\"c d\"]"), st, 8, &err);
    const char *doc = "{\"x\":[1,{\"y\":2}],\"a\":{\"b\":[0,1,{\"c d\":\"v\\\"\"}]}}";
    cr_assert_eq(lqscan_json_path(vg_str_c(doc), st, (size_t)n, &k, &raw, &err), 1);
    cr_assert_eq(k, LQJ_STRING);
    cr_assert(vg_str_eq_c(raw, "v\\\""));
    cr_assert_eq(lqscan_json_path(VG_STR("{\"a\":{\"b\":[]}}"), st, (size_t)n, &k, &raw, &err), 0);
    cr_assert_eq(lqscan_json_path(VG_STR("{\"a\":{\"b\":[1,"), st, (size_t)n, &k, &raw, &err),
                 LQSCAN_SYNTAX);
}

static int count_member(void *ud, struct vg_str key, enum lqscan_json_kind kind, struct vg_str raw)
{
    (void)key, (void)kind, (void)raw;
    (*(int *)ud)++;
    return 0;
}

Test(pipeline_scan, json_depth_is_bounded)
{
    char doc[2 * LQSCAN_MAX_DEPTH + 64];
    size_t w = 0;
    doc[w++] = '{';
    memcpy(doc + w, "\"a\":", 4);
    w += 4;
    for (int i = 0; i < LQSCAN_MAX_DEPTH + 5; i++)
        doc[w++] = '[';
    int count = 0;
    struct vg_buf kb;
    vg_buf_init(&kb);
    cr_assert_eq(lqscan_json_flatten((struct vg_str){ doc, w }, &kb, count_member, &count, &err),
                 LQSCAN_SYNTAX);
    cr_assert(strstr(err.msg, "too deeply nested"), "%s", err.msg);
    cr_assert_eq(lqscan_json_members(VG_STR("{\"a\":1,\"b\":{\"c\":2}} trailing"), count_member,
                                     &count, &err), 0);
    cr_assert_eq(count, 2);
    vg_buf_free(&kb);
}

Test(pipeline_scan, logfmt_decoder)
{
    struct lqscan_logfmt d;
    lqscan_logfmt_init(&d, VG_STR("a=1 b= c \"d\"=2 e=x=y f=\"q\\\"\" g=\"open"));
    cr_assert_eq(lqscan_logfmt_next(&d), 1);
    cr_assert(vg_str_eq_c(d.key, "a") && vg_str_eq_c(d.value, "1"));
    cr_assert_eq(lqscan_logfmt_next(&d), 1);
    cr_assert(vg_str_eq_c(d.key, "b") && d.value.len == 0);
    cr_assert_eq(lqscan_logfmt_next(&d), 1);
    cr_assert(vg_str_eq_c(d.key, "c") && d.value.len == 0);
    cr_assert_eq(lqscan_logfmt_next(&d), -1);
    cr_assert_str_eq(d.why, "unexpected '\"'");
    cr_assert_eq(d.err_pos, 10);
    cr_assert_eq(lqscan_logfmt_next(&d), -1);
    cr_assert_str_eq(d.why, "unexpected '='");
    cr_assert_eq(lqscan_logfmt_next(&d), 1);
    cr_assert(vg_str_eq_c(d.key, "f") && d.escaped && vg_str_eq_c(d.value, "q\\\""));
    cr_assert_eq(lqscan_logfmt_next(&d), -1);
    cr_assert_str_eq(d.why, "unterminated quoted value");
    cr_assert_eq(lqscan_logfmt_next(&d), 0);
}

static int collect(void *ud, struct vg_str name, struct vg_str value)
{
    char *buf = ud;
    size_t l = strlen(buf);
    snprintf(buf + l, 256 - l, "%.*s=%.*s;", (int)name.len, name.p, (int)value.len, value.p);
    return 0;
}

Test(pipeline_scan, patterns)
{
    struct lqscan_pattern *p = lqscan_pattern_new(VG_STR("<a> [<_>] <b> <x"), true, &err);
    cr_assert(p, "%s", err.msg);
    char buf[256] = "";
    cr_assert_eq(lqscan_pattern_match(p, VG_STR("1 [2] 3 <x"), collect, buf), 0);
    cr_assert_str_eq(buf, "a=1;b=3;");
    cr_assert(lqscan_pattern_test(p, VG_STR("1 [2] 3 <x")));
    cr_assert_not(lqscan_pattern_test(p, VG_STR("1 [2] 3 <x tail")));
    cr_assert_not(lqscan_pattern_test(p, VG_STR(" [2] 3 <x")));
    lqscan_pattern_free(p);
    p = lqscan_pattern_new(VG_STR("GET <_>"), false, &err);
    cr_assert(lqscan_pattern_test(p, VG_STR("GET /x")));
    cr_assert_not(lqscan_pattern_test(p, VG_STR("xGET /x")));
    cr_assert_not(lqscan_pattern_test(p, VG_STR("")));
    lqscan_pattern_free(p);
    cr_assert_null(lqscan_pattern_new(VG_STR("<_> x"), true, &err));
    cr_assert_str_eq(err.msg, "at least one capture is required");
    cr_assert_null(lqscan_pattern_new(VG_STR("<a> <a>"), true, &err));
    cr_assert_str_eq(err.msg, "duplicate capture name (a): invalid expression");
}

Test(pipeline_scan, ip)
{
    struct lqscan_ip m;
    cr_assert_eq(lqscan_ip_parse(VG_STR("10.0.0.0/8"), &m, &err), 0);
    cr_assert(lqscan_ip_search(&m, VG_STR("x 10.255.0.1 y")));
    cr_assert_not(lqscan_ip_search(&m, VG_STR("x 11.0.0.1 y")));
    cr_assert_not(lqscan_ip_search(&m, VG_STR("010.0.0.1")));
    cr_assert_eq(lqscan_ip_parse(VG_STR("::1"), &m, &err), 0);
    cr_assert(lqscan_ip_search(&m, VG_STR("from ::1 port")));
    cr_assert_eq(lqscan_ip_parse(VG_STR("1.2.3.4-1.2.3.1"), &m, &err), VG_EINVAL);
    cr_assert_eq(lqscan_ip_parse(VG_STR("1.2.3.4-::1"), &m, &err), VG_EINVAL);
    cr_assert_eq(lqscan_ip_parse(VG_STR("1.2.3.4/033"), &m, &err), VG_EINVAL);
    cr_assert_eq(lqscan_ip_parse(VG_STR(""), &m, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "ip: invalid pattern: \"\"");
}

Test(pipeline_scan, decolorize)
{
    char out[64];
    struct vg_str in = VG_STR("\x1b[1;31mA\x1b[0m \x1b]0;title\x07" "B \xc2\x9b" "5C \x1b[99999m!");
    size_t n = lqscan_decolorize(in, out);
    /* U+009B "5C" is a whole CSI sequence; after four digits the fifth is taken as the
     * final byte, as the ansi-regex does, leaving "m!". */
    cr_assert_eq(n, 7, "%.*s", (int)n, out);
    cr_assert(memcmp(out, "A B  m!", 7) == 0, "%.*s", (int)n, out);
}
