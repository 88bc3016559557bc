/* Tests server/logql/template.c: LogQL's language on the shared template engine
 * (the engine itself is tested in tests/unit/server/template/test_gotmpl.c): text and
 * actions, trim markers, comments, fields and missing fields, pipelines, every Loki
 * function, printf verbs and Go's bad-verb texts, if/else if/else, the Loki specials,
 * the compile-time refusals (unknown function, arity, syntax, variables, chains,
 * unsupported actions, bad literal regex), execution errors and allocation failure. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/logql/template.h"
#include "../../../../storage/base/vg_alloc.h"

static struct template *tp;
static struct vg_arena *scratch;
static struct vg_buf out;
static struct vg_err err;

static void init(void)
{
    scratch = vg_arena_new(4096);
    vg_buf_init(&out);
}

static void fini(void)
{
    template_free(tp);
    tp = NULL;
    vg_arena_free(scratch);
    vg_buf_free(&out);
    vg_alloc_fail_after(0);
}

TestSuite(template, .init = init, .fini = fini);

static bool field(void *ud, struct vg_str name, struct vg_str *v)
{
    (void)ud;
    static const char *const kv[][2] = {
        { "app", "api" }, { "level", "info" }, { "msg", "  Hello World  " },
        { "n", "42" }, { "empty", "" }, { "path", "/api/v1/users" }, { "re", "(" },
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (vg_str_eq_c(name, kv[i][0])) {
            *v = vg_str_c(kv[i][1]);
            return true;
        }
    return false;
}

static int exec_rc(const char *src)
{
    template_free(tp);
    vg_err_clear(&err);
    tp = template_new(vg_str_c(src), "line", &err);
    cr_assert(tp, "compile %s: %s", src, err.msg);
    vg_buf_reset(&out);
    struct template_data d = { field, NULL, VG_STR("the line"), 1700000000000000000LL };
    return template_exec(tp, &d, scratch, &out, &err);
}

static void expect(const char *src, const char *want)
{
    int rc = exec_rc(src);
    cr_assert_eq(rc, 0, "exec %s: %s", src, err.msg);
    cr_assert_eq(out.len, strlen(want), "%s: got [%.*s] want [%s]", src, (int)out.len, out.p, want);
    cr_assert(out.len == 0 || memcmp(out.p, want, out.len) == 0, "%s: got [%.*s] want [%s]", src,
              (int)out.len, out.p, want);
}

static void compile_error(const char *src, const char *want)
{
    template_free(tp);
    tp = template_new(vg_str_c(src), "line", &err);
    cr_assert_null(tp, "%s should not compile", src);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, want), "%s: %s", src, err.msg);
}

Test(template, text_and_fields)
{
    expect("plain text", "plain text");
    expect("", "");
    expect("{{.app}}-{{ .level }}", "api-info");
    expect("[{{.missing}}]", "[]");
    expect("a {{- \" b \" -}} c", "a b c");
    expect("a  {{- .app }}  {{- .level -}}  z", "aapiinfoz");
    expect("x{{/* a comment */}}y{{- /* trimmed */ -}} z", "xyz");
    expect("{{ 42 }} {{ 1.5 }} {{ true }} {{ `raw\\n` }}", "42 1.5 true raw\\n");
}

Test(template, is_text)
{
    tp = template_new(VG_STR("just text"), "t", &err);
    cr_assert(template_is_text(tp));
    template_free(tp);
    tp = template_new(VG_STR("{{.a}}"), "t", &err);
    cr_assert_not(template_is_text(tp));
}

Test(template, string_functions)
{
    expect("{{ .level | upper }} {{ ToUpper .app }} {{ lower \"ABC\" }} {{ ToLower \"XyZ\" }}",
           "INFO API abc xyz");
    expect("{{ title \"hello big-world\" }}", "Hello Big-World");
    expect("[{{ trim .msg }}] [{{ trimAll \"/\" .path }}]", "[Hello World] [api/v1/users]");
    expect("{{ trimPrefix \"/api\" .path }} {{ .path | trimSuffix \"/users\" }}",
           "/v1/users /api/v1");
    expect("{{ replace \"/\" \"_\" .path }}", "_api_v1_users");
    expect("{{ replace \"\" \"-\" \"ab\" }}", "-a-b-");
    expect("{{ contains \"v1\" .path }} {{ hasPrefix \"/x\" .path }} {{ hasSuffix \"users\" .path }}",
           "true false true");
    expect("{{ len .app }}", "3");
}

Test(template, regex_replace)
{
    expect("{{ regexReplaceAll \"/v([0-9])/\" .path \"/version$1/\" }}", "/api/version1/users");
    expect("{{ regexReplaceAll \"(?P<w>[a-z]+)\" \"ab 12 cd\" \"<${w}>\" }}", "<ab> 12 <cd>");
    expect("{{ regexReplaceAll \"a*\" \"baaac\" \"x\" }}", "xbxcx");
    expect("{{ regexReplaceAllLiteral \"[0-9]+\" \"a1b22\" \"$1\" }}", "a$1b$1");
    expect("{{ regexReplaceAll \"^a\" \"aaa\" \"b\" }}", "baa");
    compile_error("{{ regexReplaceAll \"(\" .a \"x\" }}", "error parsing regexp");
}

Test(template, default_and_logic)
{
    expect("{{ .empty | default \"none\" }} {{ .app | default \"none\" }}", "none api");
    expect("{{ default \"d\" .missing }}", "d");
    expect("{{ and .app .level }} {{ or .empty .level }} {{ not .empty }}", "info info true");
    expect("{{ eq .app \"api\" }} {{ eq .app \"x\" \"api\" }} {{ ne .n \"42\" }}",
           "true true false");
    expect("{{ lt 1 2 }} {{ ge 2.5 2.5 }} {{ gt \"b\" \"a\" }} {{ le 3 2 }}",
           "true true true false");
}

Test(template, if_else)
{
    expect("{{if eq .level \"info\"}}I{{else}}O{{end}}", "I");
    expect("{{if eq .level \"warn\"}}W{{else if eq .level \"info\"}}I{{else}}O{{end}}", "I");
    expect("{{if .empty}}yes{{end}}.", ".");
    expect("{{ if .missing }}a{{ else }}b{{ end }}", "b");
    expect("{{if .app}}{{if .level}}both{{end}}{{end}}", "both");
}

Test(template, printf)
{
    expect("{{ printf \"%s=%d %5.2f|%-4s|%04d %x %q %v %t %%\" .app 7 3.14159 \"ab\" 42 255 \"q\" 1.5 true }}",
           "api=7  3.14|ab  |0042 ff \"q\" 1.5 true %");
    expect("{{ printf \"%d\" .n }}", "%!d(string=42)");
    expect("{{ printf \"%s %s\" .app }}", "api %!s(MISSING)");
    expect("{{ printf \"%s\" .app 1 }}", "api%!(EXTRA int=1)");
    expect("{{ printf \"%.2s|%g|%e\" \"abcdef\" 0.5 1000.0 }}", "ab|0.5|1.000000e+03");
    expect("{{ .level | printf \"<%s>\" }}", "<info>");
}

Test(template, loki_specials)
{
    expect("{{ __line__ }} at {{ __timestamp__ }}", "the line at 2023-11-14 22:13:20 +0000 UTC");
    expect("{{ __timestamp__ | unixEpoch }} {{ unixEpochMillis __timestamp__ }}",
           "1700000000 1700000000000");
    expect("{{ printf \"%s!\" __line__ }}", "the line!");
}

Test(template, compile_errors)
{
    compile_error("{{ nope .a }}", "template: line:1: function \"nope\" not defined");
    compile_error("x\n{{ upper }}", "line:2: wrong number of args for upper: want 1 got 0");
    compile_error("{{ .a ", "unclosed action");
    compile_error("{{ \"unterminated }}", "unterminated quoted string");
    compile_error("{{ range .a }}{{ end }}", "\"range\" actions are not supported");
    compile_error("{{ $x := 1 }}", "variables are not supported");
    compile_error("{{ if .a }}x", "unexpected EOF");
    compile_error("{{ end }}", "unexpected {{end}}");
    compile_error("{{ .a .b }}", "can't give argument to non-function");
    compile_error("{{ .a | .b }}", "non executable command");
    compile_error("{{ .a.b }}", "unsupported field reference");
    compile_error("{{ printf \"%s\" upper }}", "wrong number of args for upper");
    compile_error("{{/* open }}", "unclosed comment");
}

Test(template, exec_errors)
{
    cr_assert_eq(exec_rc("{{ upper true }}"), VG_EINVAL);
    cr_assert(strstr(err.msg, "error calling upper: wrong type for value; expected string; got bool"),
              "%s", err.msg);
    cr_assert_eq(exec_rc("{{ eq .app 1 }}"), VG_EINVAL);
    cr_assert(strstr(err.msg, "incompatible types for comparison"), "%s", err.msg);
    cr_assert_eq(exec_rc("{{ unixEpoch .app }}"), VG_EINVAL);
    cr_assert_eq(exec_rc("{{ regexReplaceAll .app .app .app }}"), 0);
    cr_assert_eq(exec_rc("{{ regexReplaceAll .re .app .app }}"), VG_EINVAL);
}

Test(template, allocation_failure)
{
    const char *src = "{{ if eq .app \"api\" }}{{ .level | upper | printf \"%s-%s\" .app }}"
                      "{{ regexReplaceAll \"a(p)\" .app \"$1\" }}{{ replace \"i\" \"I\" .app }}{{ end }}";
    size_t before = vg_alloc_live_bytes();
    bool done = false;
    for (uint64_t n = 1; n < 2000 && !done; n++) {
        struct vg_arena *a = vg_arena_new(64);
        struct vg_buf b;
        vg_buf_init(&b);
        vg_alloc_fail_after(n);
        struct template *t = template_new(vg_str_c(src), "t", &err);
        int rc = t ? 0 : err.code;
        if (t && a) {
            struct template_data d = { field, NULL, VG_STR("l"), 0 };
            rc = template_exec(t, &d, a, &b, &err);
        }
        vg_alloc_fail_after(0);
        if (rc == 0 && a) {
            done = true;
            cr_assert_eq(b.len, strlen("api-INFOpiapI"));
        } else if (a) {
            cr_assert_eq(rc, VG_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
        }
        template_free(t);
        vg_arena_free(a);
        vg_buf_free(&b);
        cr_assert_eq(vg_alloc_live_bytes(), before, "leak at n=%llu", (unsigned long long)n);
    }
    cr_assert(done);
}
