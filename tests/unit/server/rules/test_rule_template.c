/* Tests for server/rules/rule_template.c: Prometheus's alert template language on the
 * shared engine (tested itself in tests/unit/server/template/test_gotmpl.c): the
 * $labels/$value/$externalLabels data, the humanize family and string functions, loose
 * number comparisons, parse and expansion errors, allocation failure; the query family
 * (query, range over its result, first, label, value, strvalue, sortByLabel) on a fake
 * query function, and safeHtml, urlQueryEscape, toTime, now, args, pathPrefix,
 * externalURL. */
#include "../../../../server/rules/rule_template.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct label labels[] = {
    { VG_STR("instance"), VG_STR("db1.example.com:9100") },
    { VG_STR("job"), VG_STR("node") },
};
static const struct label ext[] = { { VG_STR("cluster"), VG_STR("eu1") } };

/* Expands text with $value = value; returns a static copy of the output. */
static const char *expand_v(const char *text, double value)
{
    static char out[512];
    struct vg_err err = { 0 };
    struct rule_template *t = rule_template_parse("t", text, &err);
    cr_assert_not_null(t, "parse %s: %s", text, err.msg);
    struct rule_template_data d = { labels, 2, ext, 1, "http://vigil:4318", value };
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = rule_template_expand(t, &d, &b, &err);
    cr_assert_eq(rc, 0, "expand %s: %s", text, err.msg);
    snprintf(out, sizeof out, "%s", vg_buf_cstr(&b));
    vg_buf_free(&b);
    rule_template_free(t);
    return out;
}

static const char *expand(const char *text)
{
    return expand_v(text, 1234.5);
}

static void parse_fails(const char *text, const char *msg)
{
    struct vg_err err = { 0 };
    struct rule_template *t = rule_template_parse("t", text, &err);
    cr_assert_null(t, "%s parsed", text);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, msg), "%s: got %s", text, err.msg);
}

static void expand_fails(const char *text, const char *msg)
{
    struct vg_err err = { 0 };
    struct rule_template *t = rule_template_parse("t", text, &err);
    cr_assert_not_null(t, "%s: %s", text, err.msg);
    struct rule_template_data d = { labels, 2, NULL, 0, NULL, 1 };
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_lt(rule_template_expand(t, &d, &b, &err), 0, "%s expanded", text);
    cr_assert(strstr(err.msg, msg), "%s: got %s", text, err.msg);
    vg_buf_free(&b);
    rule_template_free(t);
}

Test(rule_template, variables_and_fields)
{
    cr_assert_str_eq(expand("plain"), "plain");
    cr_assert_str_eq(expand("{{ $labels.instance }} of {{ $labels.job }}"),
                     "db1.example.com:9100 of node");
    cr_assert_str_eq(expand("{{ .Labels.job }}/{{ .Value }}"), "node/1234.5");
    cr_assert_str_eq(expand("{{ $value }}"), "1234.5");
    cr_assert_str_eq(expand("{{ $externalLabels.cluster }} {{ $externalURL }}"),
                     "eu1 http://vigil:4318");
    cr_assert_str_eq(expand("[{{ $labels.missing }}]"), "[]");
    cr_assert_str_eq(expand("{{ $labels }}"), "map[instance:db1.example.com:9100 job:node]");
    cr_assert_str_eq(expand("{{ $x := $labels.job }}{{ $x }}-{{ $x = \"y\" }}{{ $x }}"), "node-y");
    cr_assert_str_eq(expand_v("{{ $value }}", 1e6), "1e+06");
    cr_assert_str_eq(expand("{{ index $labels \"job\" }}"), "node");
}

Test(rule_template, humanize_family)
{
    cr_assert_str_eq(expand_v("{{ humanize $value }}", 1234567), "1.235M");
    cr_assert_str_eq(expand_v("{{ humanize $value }}", 0.0012), "1.2m");
    cr_assert_str_eq(expand_v("{{ humanize $value }}", 0), "0");
    cr_assert_str_eq(expand_v("{{ $value | humanize }}", 12), "12");
    cr_assert_str_eq(expand_v("{{ humanize1024 $value }}", 1048576), "1Mi");
    cr_assert_str_eq(expand_v("{{ humanize1024 $value }}", 0.5), "0.5");
    cr_assert_str_eq(expand_v("{{ humanizeDuration $value }}", 93784), "1d 2h 3m 4s");
    cr_assert_str_eq(expand_v("{{ humanizeDuration $value }}", 3661), "1h 1m 1s");
    cr_assert_str_eq(expand_v("{{ humanizeDuration $value }}", 61), "1m 1s");
    cr_assert_str_eq(expand_v("{{ humanizeDuration $value }}", 1.5), "1.5s");
    cr_assert_str_eq(expand_v("{{ humanizeDuration $value }}", 0.25), "250ms");
    cr_assert_str_eq(expand_v("{{ humanizeDuration $value }}", 0), "0s");
    cr_assert_str_eq(expand_v("{{ humanizePercentage $value }}", 0.1234), "12.34%");
    cr_assert_str_eq(expand_v("{{ humanizeTimestamp $value }}", 1435065584.128),
                     "2015-06-23 13:19:44.128 +0000 UTC");
    cr_assert_str_eq(expand_v("{{ humanizeTimestamp $value }}", 0), "1970-01-01 00:00:00 +0000 UTC");
    cr_assert_str_eq(expand_v("{{ humanize $value }}", NAN), "NaN");
    cr_assert_str_eq(expand_v("{{ humanize $value }}", INFINITY), "+Inf");
    cr_assert_str_eq(expand("{{ humanize \"2048\" }}"), "2.048k");
}

Test(rule_template, string_functions)
{
    cr_assert_str_eq(expand("{{ printf \"%.2f\" $value }}"), "1234.50");
    cr_assert_str_eq(expand("{{ printf \"%s=%d\" \"a\" 5 }}"), "a=5");
    cr_assert_str_eq(expand("{{ printf \"%5s|%-4s|\" \"ab\" \"c\" }}"), "   ab|c   |");
    cr_assert_str_eq(expand("{{ printf \"%s %s\" \"a\" }}"), "a %!s(MISSING)");
    cr_assert_str_eq(expand("{{ printf \"100%%\" }}"), "100%");
    cr_assert_str_eq(expand("{{ toUpper \"abc\" }} {{ toLower \"ABC\" }}"), "ABC abc");
    cr_assert_str_eq(expand("{{ title \"hello big world\" }}"), "Hello Big World");
    cr_assert_str_eq(expand("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}"),
                     "db1.example.com");
    cr_assert_str_eq(expand("{{ reReplaceAll \"o\" \"0\" \"foo boo\" }}"), "f00 b00");
    cr_assert_str_eq(expand("{{ stripPort $labels.instance }}"), "db1.example.com");
    cr_assert_str_eq(expand("{{ stripPort \"[::1]:80\" }}"), "::1");
    cr_assert_str_eq(expand("{{ stripDomain $labels.instance }}"), "db1:9100");
    cr_assert_str_eq(expand("{{ stripDomain \"10.0.0.1:80\" }}"), "10.0.0.1:80");
    cr_assert_str_eq(expand("{{ parseDuration \"1m30s\" }}"), "90");
    cr_assert_str_eq(expand("{{ match \"^db\" $labels.instance }}"), "true");
    cr_assert_str_eq(expand("{{ `raw\\n` }}"), "raw\\n");
}

Test(rule_template, conditionals)
{
    cr_assert_str_eq(expand_v("{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}", 90), "high");
    cr_assert_str_eq(expand_v("{{ if gt $value 80.0 }}high{{ else }}ok{{ end }}", 10), "ok");
    cr_assert_str_eq(expand_v("{{ if gt $value 80 }}a{{ else if gt $value 5 }}b{{ else }}c{{ end }}", 6),
                     "b");
    cr_assert_str_eq(expand("{{ if eq $labels.job \"node\" \"x\" }}yes{{ end }}"), "yes");
    cr_assert_str_eq(expand("{{ if and $labels.job (not $labels.nope) }}y{{ end }}"), "y");
    cr_assert_str_eq(expand("{{ with $labels.job }}<{{ . }}>{{ end }}"), "<node>");
    cr_assert_str_eq(expand("{{ with $labels.nope }}<{{ . }}>{{ else }}none{{ end }}"), "none");
    cr_assert_str_eq(expand("a  {{- \"b\" -}}  c"), "abc");
    cr_assert_str_eq(expand("a{{/* note */}}b"), "ab");
    cr_assert_str_eq(expand("{{ if true }}{{ $y := 1 }}{{ $y }}{{ end }}"), "1");
}

Test(rule_template, parse_errors)
{
    parse_fails("{{ foo }}", "template: t:1: function \"foo\" not defined");
    parse_fails("x\n{{ if true }}", "template: t:2: unexpected EOF");
    parse_fails("{{ end }}", "unexpected {{end}}");
    parse_fails("{{ $nope }}", "undefined variable \"$nope\"");
    parse_fails("{{ .Labels.x", "unclosed action");
    parse_fails("{{ define \"x\" }}{{ end }}", "\"define\" actions are not supported");
    parse_fails("{{ break }}", "{{break}} outside {{range}}");
    parse_fails("{{ (humanize 1 }}", "unclosed left paren");
    parse_fails("{{ $labels.a 1 }}", "can't give argument to non-function");
}

/* The fake query engine: "up" gives three samples, "one" a scalar-like sample without
 * labels, "none" nothing, anything else fails. */
static int fake_query(void *ctx, const char *expr, struct vg_arena *a,
                      struct rule_template_sample **out, size_t *n, struct vg_err *err)
{
    (*(int *)ctx)++;
    static struct label s1[] = { { VG_STR("__name__"), VG_STR("up") }, { VG_STR("instance"), VG_STR("b:1") },
                                 { VG_STR("job"), VG_STR("api") } };
    static struct label s2[] = { { VG_STR("__name__"), VG_STR("up") }, { VG_STR("instance"), VG_STR("a:1") },
                                 { VG_STR("job"), VG_STR("api") } };
    static struct label s3[] = { { VG_STR("__name__"), VG_STR("up") }, { VG_STR("__value__"), VG_STR("str") },
                                 { VG_STR("instance"), VG_STR("c:1") } };
    struct rule_template_sample *r = vg_arena_alloc(a, 3 * sizeof *r);
    cr_assert_not_null(r);
    if (!strcmp(expr, "up")) {
        r[0] = (struct rule_template_sample){ s1, 3, 0 };
        r[1] = (struct rule_template_sample){ s2, 3, 1 };
        r[2] = (struct rule_template_sample){ s3, 3, 0.25 };
        *n = 3;
    } else if (!strcmp(expr, "one")) {
        r[0] = (struct rule_template_sample){ NULL, 0, 42 };
        *n = 1;
    } else if (!strcmp(expr, "none")) {
        *n = 0;
    } else {
        return vg_err_set(err, VG_EINVAL, "1:1: parse error: bad query");
    }
    *out = r;
    return 0;
}

static int expand_q(const char *text, int64_t ts, const char *url, char *out, size_t cap,
                    struct vg_err *err)
{
    static int calls;
    struct rule_template *t = rule_template_parse("t", text, err);
    cr_assert_not_null(t, "parse %s: %s", text, err->msg);
    struct rule_template_data d = { labels, 2, ext, 1, url, 3, ts, fake_query, &calls };
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = rule_template_expand(t, &d, &b, err);
    snprintf(out, cap, "%s", rc == 0 ? vg_buf_cstr(&b) : "");
    vg_buf_free(&b);
    rule_template_free(t);
    return rc;
}

static const char *q_ok(const char *text)
{
    static char out[1024];
    struct vg_err err = { 0 };
    cr_assert_eq(expand_q(text, 1700000000500, "https://vigil.example.com:8443/prefix/", out,
                          sizeof out, &err), 0, "%s: %s", text, err.msg);
    return out;
}

static void q_fails(const char *text, const char *msg)
{
    char out[64];
    struct vg_err err = { 0 };
    cr_assert_lt(expand_q(text, 0, NULL, out, sizeof out, &err), 0, "%s expanded", text);
    cr_assert(strstr(err.msg, msg), "%s: got %s", text, err.msg);
}

Test(rule_template, query_family)
{
    cr_assert_str_eq(q_ok("{{ query \"up\" | first | value }}"), "0");
    cr_assert_str_eq(q_ok("{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}"), "b:1");
    cr_assert_str_eq(q_ok("{{ range query \"up\" }}{{ .Labels.instance }}={{ .Value }};{{ end }}"),
                     "b:1=0;a:1=1;c:1=0.25;");
    cr_assert_str_eq(q_ok("{{ range $i, $s := query \"up\" | sortByLabel \"instance\" }}"
                          "{{ $i }}:{{ label \"instance\" $s }} {{ end }}"), "0:a:1 1:b:1 2:c:1 ");
    /* stable: equal keys (job) keep their order */
    cr_assert_str_eq(q_ok("{{ range sortByLabel \"job\" (query \"up\") }}{{ .Labels.instance }} {{ end }}"),
                     "c:1 b:1 a:1 ");
    cr_assert_str_eq(q_ok("{{ range $s := query \"up\" }}{{ if eq $s.Value 1.0 }}{{ break }}{{ end }}"
                          "{{ $s.Labels.instance }} {{ end }}"), "b:1 ");
    cr_assert_str_eq(q_ok("{{ range query \"up\" }}{{ if eq .Value 1.0 }}{{ continue }}{{ end }}"
                          "{{ .Labels.instance }} {{ end }}"), "b:1 c:1 ");
    cr_assert_str_eq(q_ok("{{ range query \"none\" }}x{{ else }}empty{{ end }}"), "empty");
    cr_assert_str_eq(q_ok("{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}"),
                     "instance=db1.example.com:9100,job=node,");
    cr_assert_str_eq(q_ok("{{ query \"one\" | first | value | humanize }}"), "42");
    cr_assert_str_eq(q_ok("{{ len (query \"up\") }} {{ (index (query \"up\") 1).Labels.instance }}"),
                     "3 a:1");
    cr_assert_str_eq(q_ok("{{ (query \"up\" | first).Value }}"), "0");
    cr_assert_str_eq(q_ok("{{ index (query \"up\") 2 | strvalue }}|{{ query \"one\" | first | strvalue }}"),
                     "str|");
    cr_assert_str_eq(q_ok("{{ query \"one\" | first }}"), "&{map[] 42}");
    q_fails("{{ query \"bad(\" }}", "error calling query: 1:1: parse error: bad query");
    q_fails("{{ query \"none\" | first }}", "error calling first: first() called on vector with no elements");
    q_fails("{{ first 1 }}", "expected template.queryResult; got int");
    q_fails("{{ value \"x\" }}", "expected *template.sample; got string");
    q_fails("{{ range 3 }}{{ end }}", "range can't iterate over 3");
    q_fails("{{ index (query \"up\") 7 }}", "index out of range: 7");
}

Test(rule_template, query_without_engine)
{
    expand_fails("{{ query \"up\" }}", "error calling query: no query engine");
}

Test(rule_template, url_time_and_misc_functions)
{
    cr_assert_str_eq(q_ok("{{ externalURL }} {{ $externalURL }} {{ pathPrefix }}"),
                     "https://vigil.example.com:8443/prefix/ https://vigil.example.com:8443/prefix/ /prefix/");
    cr_assert_str_eq(q_ok("{{ now }}"), "1.7000000005e+09");
    cr_assert_str_eq(q_ok("{{ now | humanizeTimestamp }}"), "2023-11-14 22:13:20.5 +0000 UTC");
    cr_assert_str_eq(q_ok("{{ toTime 1700000000.5 }}"), "2023-11-14 22:13:20.5 +0000 UTC");
    cr_assert_str_eq(q_ok("{{ toTime 1700000000.25 }}"), "2023-11-14 22:13:20.249 +0000 UTC");
    cr_assert_str_eq(q_ok("{{ \"1700000000\" | toTime }}"), "2023-11-14 22:13:20 +0000 UTC");
    cr_assert_str_eq(q_ok("{{ safeHtml \"<b>x</b>\" }}"), "<b>x</b>");
    cr_assert_str_eq(q_ok("{{ urlQueryEscape \"rate(x{a=\\\"b c\\\"}[5m])\" }}"),
                     "rate%28x%7Ba%3D%22b+c%22%7D%5B5m%5D%29");
    cr_assert_str_eq(q_ok("{{ $a := args 1 \"two\" }}{{ $a.arg0 }} {{ $a.arg1 }} [{{ $a.arg2 }}] {{ len $a }}"),
                     "1 two [<no value>] 2");
    cr_assert_str_eq(q_ok("{{ args 1 \"x\" }}"), "map[arg0:1 arg1:x]");
    cr_assert_str_eq(q_ok("{{ graphLink \"up > 1\" }} {{ tableLink \"up\" }}"),
                     "/graph?g0.expr=up+%3E+1&g0.tab=0 /graph?g0.expr=up&g0.tab=1");
    char out[64];
    struct vg_err err = { 0 };
    cr_assert_eq(expand_q("[{{ pathPrefix }}][{{ externalURL }}]", 0, "http://h:9090", out, sizeof out, &err), 0);
    cr_assert_str_eq(out, "[][http://h:9090]");
    q_fails("{{ toTime \"x\" }}", "error calling toTime: strconv.ParseFloat");
    q_fails("{{ toTime 1e300 }}", "overflows int64");
    q_fails("{{ toTime \"NaN\" }}", "value is NaN or Inf");
}

Test(rule_template, expansion_errors)
{
    expand_fails("{{ humanize \"abc\" }}", "error calling humanize: strconv.ParseFloat");
    expand_fails("{{ reReplaceAll \"(\" \"\" \"x\" }}", "error parsing regexp");
    expand_fails("{{ .Nope }}", "can't evaluate field Nope");
    expand_fails("{{ toUpper 1 }}", "expected string");
    expand_fails("{{ gt \"a\" 1 }}", "incompatible types");
}

Test(rule_template, allocation_failure)
{
    for (uint64_t n = 1; n < 40; n++) {
        struct vg_err err = { 0 };
        vg_alloc_fail_after(n);
        struct rule_template *t = rule_template_parse("t", "{{ if gt $value 1.0 }}{{ humanize $value }}{{ end }}", &err);
        if (t) {
            struct rule_template_data d = { labels, 2, NULL, 0, NULL, 5 };
            struct vg_buf b;
            vg_buf_init(&b);
            int rc = rule_template_expand(t, &d, &b, &err);
            cr_assert(rc == 0 || rc == VG_ENOMEM);
            vg_buf_free(&b);
            rule_template_free(t);
        } else {
            cr_assert_eq(err.code, VG_ENOMEM);
        }
        vg_alloc_fail_after(0);
    }
}
