/* Tests server/template/gotmpl.c, the Go text/template engine LogQL and rules share,
 * through small test languages: text, trim markers and comments; literals; fields,
 * chains, variables and with; if / else if / else; every builtin and printf verb with
 * Go's bad-verb texts; the three language flags (flat, early arity, loose numbers);
 * the shared case and regex functions with prepare/release; parse and execution errors
 * with their line numbers; time printing; allocation failure. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/template/gotmpl.h"
#include "../../../../storage/base/vg_alloc.h"

static const struct label map[] = { { VG_STR("instance"), VG_STR("db1:9100") },
                                    { VG_STR("job"), VG_STR("node") } };

struct data {
    double f;
};

static bool field(void *d, struct vg_str name, struct gotmpl_val *out)
{
    if (vg_str_eq_c(name, "Name"))
        *out = gotmpl_str("api", 3);
    else if (vg_str_eq_c(name, "Map"))
        *out = (struct gotmpl_val){ .k = GOTMPL_MAP, .ls = map, .n = 2 };
    else if (vg_str_eq_c(name, "F"))
        *out = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = ((struct data *)d)->f };
    else if (vg_str_eq_c(name, "T")) /* 2023-11-14 22:13:20.5 */
        *out = (struct gotmpl_val){ .k = GOTMPL_TIME, .i = 1700000000500000000LL };
    else if (vg_str_eq_c(name, "Empty"))
        *out = gotmpl_str("", 0);
    else
        return false;
    return true;
}

static int prepared, released;

static int prep(struct vg_str lit, void **state, struct vg_err *err)
{
    if (vg_str_eq_c(lit, "bad"))
        return vg_err_set(err, VG_EINVAL, "bad literal");
    prepared++;
    *state = &prepared;
    return 0;
}

static void release(void *state)
{
    cr_assert_eq(state, &prepared);
    released++;
}

/* pre x: "P" when x was prepared at parse, "-" otherwise. */
static int f_pre(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    (void)a, (void)n;
    *out = c->state ? gotmpl_str("P", 1) : gotmpl_str("-", 1);
    return 0;
}

static const struct gotmpl_func funcs[] = {
    { "up", 1, 1, gotmpl_fn_case, GOTMPL_UPPER, NULL, NULL },
    { "low", 1, 1, gotmpl_fn_case, GOTMPL_LOWER, NULL, NULL },
    { "title", 1, 1, gotmpl_fn_case, GOTMPL_TITLE, NULL, NULL },
    { "titleApos", 1, 1, gotmpl_fn_case, GOTMPL_TITLE_APOS, NULL, NULL },
    { "sub", 3, 3, gotmpl_fn_replace_all, 0, gotmpl_regex_prepare, gotmpl_regex_release },
    { "subLit", 3, 3, gotmpl_fn_replace_all, GOTMPL_RE_LITERAL, NULL, NULL },
    { "sub2", 3, 3, gotmpl_fn_replace_all, GOTMPL_RE_REPL_2ND, NULL, NULL },
    { "pre", 1, 1, f_pre, 0, prep, release },
    { "len", 1, 1, f_pre, 0, NULL, NULL }, /* shadows the builtin */
};
static const char *const vars[][2] = { { "m", "Map" }, { "name", "Name" } };
#define LANG(flags) { funcs, sizeof funcs / sizeof funcs[0], field, vars, 2, flags }
static const struct gotmpl_lang full = LANG(0);
static const struct gotmpl_lang flat = LANG(GOTMPL_FLAT | GOTMPL_EARLY_ARITY);
static const struct gotmpl_lang loose = LANG(GOTMPL_LOOSE_NUMBERS);

static struct vg_err err;

/* Runs src in lang with .F = f; returns the output (or "ERR" with err set). */
static const char *run_f(const struct gotmpl_lang *l, const char *src, double f)
{
    static char out[8192];
    struct gotmpl *t = gotmpl_new(l, "t", vg_str_c(src), &err);
    cr_assert_not_null(t, "parse %s: %s", src, err.msg);
    struct vg_arena *a = vg_arena_new(256);
    struct vg_buf b;
    vg_buf_init(&b);
    struct data d = { f };
    int rc = gotmpl_exec(t, &d, a, &b, &err);
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.p ? b.p : "");
    vg_buf_free(&b);
    vg_arena_free(a);
    gotmpl_free(t);
    if (rc)
        cr_assert_eq(rc, VG_EINVAL);
    return rc ? "ERR" : out;
}

static const char *run(const char *src)
{
    return run_f(&full, src, 1.5);
}

#define EXPECT(src, want) cr_assert_str_eq(run(src), want, "%s: %s", src, err.msg)

static void parse_fails(const struct gotmpl_lang *l, const char *src, const char *want)
{
    struct gotmpl *t = gotmpl_new(l, "t", vg_str_c(src), &err);
    cr_assert_null(t, "%s parsed", src);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, want), "%s: got %s", src, err.msg);
}

static void exec_fails(const char *src, const char *want)
{
    cr_assert_str_eq(run(src), "ERR", "%s ran", src);
    cr_assert(strstr(err.msg, want), "%s: got %s", src, err.msg);
}

Test(gotmpl, text_trim_and_comments)
{
    EXPECT("plain", "plain");
    EXPECT("", "");
    EXPECT("a  {{- \"b\" -}}  c", "abc");
    EXPECT("a  {{- .Name }}  {{- .Name -}}\n z", "aapiapiz");
    EXPECT("x{{/* a comment */}}y{{- /* trimmed */ -}} z{{ /* spaced */ }}", "xyz");
    EXPECT("{{ \"}}\" }}|{{ `a\"b` }}", "}}|a\"b");
    EXPECT("{{-3}}", "-3"); /* no space: a negative number, not a trim marker */
    struct gotmpl *t = gotmpl_new(&full, "t", VG_STR("just text"), &err);
    cr_assert(gotmpl_is_text(t));
    gotmpl_free(t);
    t = gotmpl_new(&full, "t", VG_STR("a{{/* c */}}b"), &err);
    cr_assert(gotmpl_is_text(t));
    gotmpl_free(t);
    t = gotmpl_new(&full, NULL, VG_STR("{{ .Name }}"), &err);
    cr_assert_not(gotmpl_is_text(t));
    gotmpl_free(t);
}

Test(gotmpl, literals)
{
    EXPECT("{{ 42 }} {{ -7 }} {{ 0x1f }} {{ 1.5 }} {{ 1e3 }} {{ true }} {{ false }}",
           "42 -7 31 1.5 1000 true false");
    EXPECT("{{ \"a\\tb\\x41\\\\\\\"\" }}|{{ `raw\\n` }}", "a\tbA\\\"|raw\\n");
    parse_fails(&full, "{{ 1x }}", "bad number syntax: \"1x\"");
    parse_fails(&full, "{{ \"\\q\" }}", "invalid syntax in quoted string");
    parse_fails(&full, "{{ \"\\x4\" }}", "invalid syntax in quoted string");
    parse_fails(&full, "{{ nil }}", "nil is not a command");
}

Test(gotmpl, fields_variables_and_with)
{
    EXPECT("{{ .Name }} {{ .Map.job }} [{{ .Map.nope }}] {{ $m.instance }} {{ $.Map.job }}",
           "api node [] db1:9100 node");
    EXPECT("{{ .Map }}", "map[instance:db1:9100 job:node]");
    EXPECT("{{ $ }} {{ . }}", "{...} {...}");
    EXPECT("{{ $x := .Name }}{{ $x }}-{{ $x = \"y\" }}{{ $x }}", "api-y");
    EXPECT("{{ $name = \"z\" }}{{ $name }}", "z"); /* a predeclared one can be redefined */
    EXPECT("{{ with .Map.job }}<{{ . }}>{{ end }}", "<node>");
    EXPECT("{{ with .Map.nope }}<{{ . }}>{{ else }}none{{ end }}", "none");
    EXPECT("{{ with $v := .Name }}{{ $v }}{{ end }}", "api");
    EXPECT("{{ (index .Map \"job\") }} {{ (.Map).job }}", "node node");
    EXPECT("{{ if true }}{{ $y := 1 }}{{ $y }}{{ end }}", "1");
    parse_fails(&full, "{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}", "undefined variable \"$y\"");
    parse_fails(&full, "{{ $nope }}", "undefined variable \"$nope\"");
    parse_fails(&full, "{{ $nope = 1 }}", "undefined variable \"$nope\"");
    exec_fails("{{ .Nope }}", "template: t:1: executing \"t\" at <Nope>: can't evaluate field Nope in type data");
    exec_fails("{{ .Name.x }}", "can't evaluate field x in type string");
}

Test(gotmpl, if_else_chains)
{
    EXPECT("{{ if eq .Name \"api\" }}A{{ else }}B{{ end }}", "A");
    EXPECT("{{ if .Empty }}A{{ else if eq .Name \"x\" }}B{{ else if .Name }}C{{ else }}D{{ end }}",
           "C");
    EXPECT("{{ if .Empty }}A{{ end }}.", ".");
    EXPECT("{{ if .Name }}{{ if .Map }}both{{ end }}{{ end }}", "both");
    EXPECT("{{ if 0 }}a{{ else if 0.0 }}b{{ else if .T }}t{{ end }}", "t");
}

Test(gotmpl, comparisons_and_logic)
{
    EXPECT("{{ eq .Name \"api\" }} {{ eq .Name \"x\" \"api\" }} {{ ne 1 2 }} {{ eq true true }}",
           "true true true true");
    EXPECT("{{ lt 1 2 }} {{ le 2 2 }} {{ gt \"b\" \"a\" }} {{ ge 2.5 2.5 }} {{ lt .T .T }}",
           "true true true true false");
    EXPECT("{{ and .Name .Map.job }} {{ or .Empty .Name }} {{ not .Empty }} {{ and 0 1 }}",
           "node api true 0");
    exec_fails("{{ eq .Name 1 }}",
               "executing \"t\" at <eq>: error calling eq: incompatible types for comparison");
    exec_fails("{{ lt 1 2.0 }}", "incompatible types for comparison");
    exec_fails("{{ lt true false }}", "invalid type for comparison");
    exec_fails("{{ eq .Map .Map }}", "invalid type for comparison");
}

Test(gotmpl, len_index_print)
{
    EXPECT("{{ index .Map \"job\" }}[{{ index .Map \"x\" }}]", "node[]");
    EXPECT("{{ print 1 2 \"a\" \"b\" 3 }}|{{ println 1 \"a\" }}|", "1 2ab3|1 a\n|");
    EXPECT("{{ len .Name }}", "-"); /* the language's len shadows the builtin */
    struct gotmpl_lang nolen = { funcs, 7, field, vars, 2, 0 };
    cr_assert_str_eq(run_f(&nolen, "{{ len .Name }} {{ len .Map }}", 0), "3 2");
    cr_assert_str_eq(run_f(&nolen, "{{ len 1 }}", 0), "ERR");
    cr_assert(strstr(err.msg, "error calling len: len of type int"), "%s", err.msg);
    exec_fails("{{ index .Name \"a\" }}", "can't index item of type string");
}

Test(gotmpl, printf_verbs)
{
    EXPECT("{{ printf \"%s=%d %5.2f|%-4s|%04d %x %X %o %q %v %t %c %%\" .Name 7 3.14159 \"ab\" 42 255 "
           "255 8 \"q\\n\" 1.5 true 65 }}",
           "api=7  3.14|ab  |0042 ff FF 10 \"q\\n\" 1.5 true A %");
    EXPECT("{{ printf \"%x|%6v|%-6v|%.2s|%g|%e|%.3g|%8.3f|%+d\" \"hi\" 1 \"x\" \"abc\" 0.5 1000.0 "
           "3.14159 2.5 3 }}",
           "6869|     1|x     |ab|0.5|1.000000e+03|3.14|   2.500|+3");
    EXPECT("{{ printf \"%d\" \"42\" }}|{{ printf \"%s\" 1 }}|{{ printf \"%d\" 1.5 }}|{{ printf \"%t\" nil }}",
           "%!d(string=42)|%!s(int=1)|%!d(float64=1.5)|%!t(<nil>)");
    EXPECT("{{ printf \"%s %s\" .Name }}|{{ printf \"%s\" .Name 1 true }}|{{ printf \"100%\" }}",
           "api %!s(MISSING)|api%!(EXTRA int=1, bool=true)|100%!(NOVERB)");
    EXPECT("{{ .Name | printf \"<%s>\" }} {{ printf \"%v\" .T }}",
           "<api> 2023-11-14 22:13:20.5 +0000 UTC");
    /* a width past the clamp does not allocate gigabytes */
    cr_assert_eq(strlen(run("{{ printf \"%999999999d\" 1 }}")), 4096);
    exec_fails("{{ printf 1 }}", "error calling printf: wrong type for value; expected string; got int");
}

/* Regression (found by fuzzing): a NUL byte as the verb matched strchr's terminator and
 * reached snprintf as a truncated C format. */
Test(gotmpl, printf_nul_verb_is_a_bad_verb)
{
    static const char src[] = "{{ printf \"%\0|%-\0\" 1 2 }}";
    struct gotmpl *t = gotmpl_new(&full, "t", (struct vg_str){ src, sizeof src - 1 }, &err);
    cr_assert_not_null(t, "%s", err.msg);
    struct vg_arena *a = vg_arena_new(256);
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_eq(gotmpl_exec(t, &(struct data){ 0 }, a, &b, &err), 0, "%s", err.msg);
    static const char want[] = "%!\0(int=1)|%!\0(int=2)";
    cr_assert_eq(b.len, sizeof want - 1);
    cr_assert(memcmp(b.p, want, b.len) == 0);
    vg_buf_free(&b);
    vg_arena_free(a);
    gotmpl_free(t);
}

Test(gotmpl, nan_and_inf_print_as_go)
{
    cr_assert_str_eq(run_f(&full, "{{ .F }} {{ printf \"%.1f\" .F }}", NAN), "NaN NaN");
    cr_assert_str_eq(run_f(&full, "{{ .F }} {{ printf \"%5.1f|%f\" .F .F }}", -INFINITY),
                     "-Inf  -Inf|-Inf");
}

Test(gotmpl, loose_numbers)
{
    cr_assert_str_eq(run_f(&loose, "{{ gt .F 1 }} {{ eq 2 2.0 }} {{ lt 1 .F }}", 1.5),
                     "true true true");
    cr_assert_str_eq(run_f(&loose, "{{ printf \"%d|%.2f|%s|%5s|%x\" .F 3 .F 7 255.0 }}", 12.7),
                     "12|3.00|12.7|    7|ff");
    cr_assert_str_eq(run_f(&full, "{{ gt .F 1 }}", 1.5), "ERR");
}

Test(gotmpl, flat_and_early_arity)
{
    cr_assert_str_eq(run_f(&flat, "{{ .Name }} {{ up .Name }}", 0), "api API");
    parse_fails(&flat, "{{ $x := 1 }}", "variables are not supported");
    parse_fails(&flat, "{{ $m.job }}", "variables are not supported");
    parse_fails(&flat, "{{ .Map.job }}", "unsupported field reference");
    parse_fails(&flat, "{{ . }}", "unsupported field reference");
    parse_fails(&flat, "{{ (print .Name).x }}", "unsupported field reference");
    parse_fails(&flat, "{{ with .Name }}{{ end }}", "\"with\" actions are not supported");
    parse_fails(&flat, "x\n{{ up }}", "template: t:2: wrong number of args for up: want 1 got 0");
    parse_fails(&flat, "{{ .Name | up \"a\" }}", "wrong number of args for up: want 1 got 2");
    parse_fails(&flat, "{{ printf \"%s\" up }}", "wrong number of args for up: want 1 got 0");
    /* without the flag the same counts fail when executing */
    exec_fails("x\n{{ up }}", "template: t:2: executing \"t\" at <up>: wrong number of args for up: want 1 got 0");
    exec_fails("{{ printf \"%s\" up }}", "wrong number of args for up");
}

Test(gotmpl, range)
{
    EXPECT("{{ range .Map }}[{{ . }}]{{ end }}", "[db1:9100][node]");
    EXPECT("{{ range $k, $v := .Map }}{{ $k }}={{ $v }} {{ end }}", "instance=db1:9100 job=node ");
    EXPECT("{{ range $v := .Map }}{{ $v }},{{ end }}", "db1:9100,node,");
    EXPECT("{{ range .Map }}{{ break }}{{ end }}after", "after");
    EXPECT("{{ range $k, $v := .Map }}{{ if eq $k \"instance\" }}{{ continue }}{{ end }}{{ $v }}{{ end }}",
           "node");
    EXPECT("{{ $x := 1 }}{{ range .Map }}{{ $x = 2 }}{{ end }}{{ $x }}", "2");
    exec_fails("{{ range 3 }}{{ end }}", "range can't iterate over 3");
    exec_fails("{{ range .Name }}{{ end }}", "range can't iterate over api");
}

Test(gotmpl, parse_errors)
{
    parse_fails(&full, "{{ nope .a }}", "template: t:1: function \"nope\" not defined");
    parse_fails(&full, "x\n{{ if true }}", "template: t:2: unexpected EOF");
    parse_fails(&full, "{{ if true }}{{ else }}{{ else }}{{ end }}", "expected end; found {{else}}");
    parse_fails(&full, "{{ if true }}{{ else nope }}{{ end }}", "unexpected \"nope\" in else");
    parse_fails(&full, "{{ with 1 }}{{ else if 2 }}{{ end }}", "unexpected \"if\" in else");
    parse_fails(&full, "{{ end }}", "unexpected {{end}}");
    parse_fails(&full, "{{ else }}", "unexpected {{else}}");
    parse_fails(&full, "{{ if 1 }}{{ end x }}", "unexpected \"x\" in end");
    parse_fails(&full, "{{ .Name ", "unclosed action");
    parse_fails(&full, "{{ \"open }}", "unterminated quoted string");
    parse_fails(&full, "{{ \"a\nb\" }}", "unterminated quoted string");
    parse_fails(&full, "{{ }}", "missing value for command");
    parse_fails(&full, "{{ .Name | }}", "missing value for command");
    parse_fails(&full, "{{ .Name .Name }}", "can't give argument to non-function");
    parse_fails(&full, "{{ .Name | .Name }}", "non executable command in pipeline stage 2");
    parse_fails(&full, "{{ (up .Name }}", "unclosed left paren");
    parse_fails(&full, "{{ up .Name) }}", "unexpected \")\" in command");
    parse_fails(&full, "{{ # }}", "unexpected \"#\" in command");
    parse_fails(&full, "{{ (print 1). }}", "unexpected . after term");
    parse_fails(&flat, "{{ range .Map }}{{ end }}", "\"range\" actions are not supported");
    parse_fails(&full, "{{ continue }}", "{{continue}} outside {{range}}");
    parse_fails(&full, "{{ range .Map }}{{ else }}{{ break }}{{ end }}", "{{break}} outside {{range}}");
    parse_fails(&full, "{{ range .Map }}{{ break 1 }}{{ end }}", "unexpected \"1\" in break");
    parse_fails(&full, "{{ range $a, 1 := .Map }}{{ end }}", "range can only initialize variables");
    parse_fails(&full, "{{ range $a, $b = .Map }}{{ end }}", "expected := after range variables");
    parse_fails(&full, "{{ $a, $b := .Map }}", "undefined variable \"$a\"");
    parse_fails(&full, "{{ define \"x\" }}{{ end }}", "\"define\" actions are not supported");
    parse_fails(&full, "{{/* open }}", "unclosed comment");
    parse_fails(&full, "{{/* c */ .Name }}", "comment ends before closing delimiter");
    char deep[400] = "{{ ";
    for (int i = 0; i < 70; i++)
        strcat(deep, "(");
    strcat(deep, "1 }}");
    parse_fails(&full, deep, "nesting deeper than 64");
    char many[400] = "{{ print";
    for (int i = 0; i < 40; i++)
        strcat(many, " 1");
    strcat(many, " }}");
    parse_fails(&full, many, "too many arguments");
}

Test(gotmpl, shared_case_and_regex_functions)
{
    EXPECT("{{ up \"abC-é\" }} {{ low \"ABc\" }} {{ title \"hello big-world don't\" }} "
           "{{ titleApos \"don't stop\" }}",
           "ABC-é abc Hello Big-World Don'T Don't Stop");
    EXPECT("{{ sub \"/v([0-9])/\" \"/api/v1/x\" \"/version$1/\" }} {{ sub \"a*\" \"baaac\" \"x\" }}",
           "/api/version1/x xbxcx");
    EXPECT("{{ subLit \"[0-9]+\" \"a1b22\" \"$1\" }} {{ sub2 \"(.*):.*\" \"$1\" .Map.instance }}",
           "a$1b$1 db1");
    EXPECT("{{ $p := \"(b)\" }}{{ sub $p \"abc\" \"[$1]\" }}", "a[b]c"); /* compiled per call */
    parse_fails(&full, "{{ sub \"(\" .Name \"x\" }}", "template: t:1: error parsing regexp: invalid regex");
    exec_fails("{{ sub2 \"(\" \"x\" .Name }}", "error calling sub2: error parsing regexp");
    exec_fails("{{ up 1 }}", "error calling up: wrong type for value; expected string; got int");
}

Test(gotmpl, prepare_and_release)
{
    prepared = released = 0;
    EXPECT("{{ pre \"x\" }}{{ pre .Name }}{{ \"y\" | pre }}{{ pre \"z\" }}", "P--P");
    cr_assert_eq(prepared, 2);
    cr_assert_eq(released, 2);
    parse_fails(&full, "x\n\n{{ pre \"bad\" }}", "template: t:3: bad literal");
    cr_assert_eq(released, 2);
}

Test(gotmpl, time_printing)
{
    struct vg_buf b;
    vg_buf_init(&b);
    gotmpl_put_time(&b, 1435065584, 128000000, ' ');
    vg_buf_putc(&b, '|');
    gotmpl_put_time(&b, 0, -1, 'T'); /* one ns before the epoch */
    vg_buf_putc(&b, '|');
    gotmpl_put_time(&b, -86400 * 365, 0, 'T');
    cr_assert_str_eq(vg_buf_cstr(&b),
                     "2015-06-23 13:19:44.128|1969-12-31T23:59:59.999999999|1969-01-01T00:00:00");
    vg_buf_free(&b);
    EXPECT("{{ .T }}", "2023-11-14 22:13:20.5 +0000 UTC");
}

Test(gotmpl, allocation_failure)
{
    const char *src = "{{ $x := up .Name }}{{ if eq $x \"API\" }}{{ .Map.job | up | printf \"%s-%s\" $x }}"
                      "{{ sub \"a(p)\" .Name \"$1\" }}{{ print .Map }}{{ end }}";
    size_t before = vg_alloc_live_bytes();
    bool done = false;
    for (uint64_t n = 1; n < 3000 && !done; n++) {
        struct vg_arena *a = vg_arena_new(64);
        struct vg_buf b;
        vg_buf_init(&b);
        vg_alloc_fail_after(n);
        struct gotmpl *t = gotmpl_new(&full, "t", vg_str_c(src), &err);
        int rc = t ? 0 : err.code;
        if (t && a)
            rc = gotmpl_exec(t, &(struct data){ 0 }, a, &b, &err);
        vg_alloc_fail_after(0);
        if (rc == 0 && a) {
            done = true;
            cr_assert_str_eq(vg_buf_cstr(&b), "API-NODEpimap[instance:db1:9100 job:node]");
        } else if (a) {
            cr_assert_eq(rc, VG_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
        }
        gotmpl_free(t);
        vg_arena_free(a);
        vg_buf_free(&b);
        cr_assert_eq(vg_alloc_live_bytes(), before, "leak at n=%llu", (unsigned long long)n);
    }
    cr_assert(done);
}
