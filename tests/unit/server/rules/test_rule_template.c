/* Tests for server/rules/rule_template.c: Prometheus's alert template language on the
 * shared engine (tested itself in tests/unit/server/template/test_gotmpl.c): the
 * $labels/$value/$externalLabels data, the humanize family and string functions, loose
 * number comparisons, parse and expansion errors, allocation failure. */
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
    parse_fails("{{ range $labels }}{{ end }}", "\"range\" actions are not supported");
    parse_fails("{{ (humanize 1 }}", "unclosed left paren");
    parse_fails("{{ $labels.a 1 }}", "can't give argument to non-function");
    parse_fails("{{ query \"up\" }}", "function \"query\" not defined");
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
