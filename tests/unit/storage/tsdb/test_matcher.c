/* Tests storage/tsdb/matcher.c: Prometheus matcher semantics (full anchoring, `.`
 * matching newlines, UTF-8), matches_empty, regex errors, allocation failure and
 * concurrent matching. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/matcher.h"

static struct matcher *mk(enum matcher_op op, const char *v)
{
    struct vg_err err = { 0 };
    struct matcher *m = matcher_new(op, VG_STR("job"), vg_str_c(v), &err);
    cr_assert_not_null(m, "%s: %s", v, err.msg);
    return m;
}

static bool re(const char *pattern, const char *subject)
{
    struct matcher *m = mk(MATCH_RE, pattern);
    bool r = matcher_matches(m, vg_str_c(subject));
    struct matcher *n = mk(MATCH_NRE, pattern);
    cr_assert_eq(matcher_matches(n, vg_str_c(subject)), !r);
    matcher_free(m);
    matcher_free(n);
    return r;
}

Test(matcher, equality)
{
    struct matcher *m = mk(MATCH_EQ, "api");
    cr_assert_str_eq(m->name, "job");
    cr_assert_eq(m->value_len, 3);
    cr_assert(matcher_matches(m, VG_STR("api")));
    cr_assert_not(matcher_matches(m, VG_STR("ap")));
    cr_assert_not(matcher_matches(m, VG_STR("apix")));
    cr_assert_not(matcher_matches(m, (struct vg_str){ NULL, 0 }));
    cr_assert_not(m->matches_empty);
    matcher_free(m);
    m = mk(MATCH_NEQ, "api");
    cr_assert_not(matcher_matches(m, VG_STR("api")));
    cr_assert(matcher_matches(m, VG_STR("web")));
    cr_assert(m->matches_empty);
    matcher_free(m);
    m = mk(MATCH_EQ, "");
    cr_assert(m->matches_empty);
    cr_assert(matcher_matches(m, (struct vg_str){ NULL, 0 }));
    matcher_free(m);
    m = mk(MATCH_NEQ, "");
    cr_assert_not(m->matches_empty);
    matcher_free(m);
    matcher_free(NULL);
}

Test(matcher, regexes_are_fully_anchored)
{
    cr_assert(re("api", "api"));
    cr_assert_not(re("api", "xapi"));
    cr_assert_not(re("api", "apix"));
    cr_assert_not(re("api", "api\n"), "PCRE's $ would allow a final newline");
    cr_assert(re("a|ab", "ab"), "alternatives backtrack to reach the end");
    cr_assert(re("api|web", "web"));
    cr_assert_not(re("api|web", "apiweb"));
    cr_assert(re("/api/.*", "/api/v1/query"));
    cr_assert(re("(?i)GET", "get"));
    cr_assert(re("5..", "503"));
    cr_assert_not(re("5..", "5030"));
    cr_assert(re("", ""));
    cr_assert_not(re("", "x"));
}

Test(matcher, dot_matches_newline_and_utf8_code_points)
{
    cr_assert(re("a.b", "a\nb"));
    cr_assert(re(".*", "line1\nline2"));
    cr_assert(re("caf.", "caf\xc3\xa9"), "one code point, two bytes");
    cr_assert(re("\xc3\xa9+", "\xc3\xa9\xc3\xa9"));
    cr_assert_not(re("a.c", "a\xffx"), "invalid UTF-8 subject is safe to match");
    cr_assert(re("a\xff", "a\xff"), "a pattern that is not UTF-8 matches byte-wise");
    /* A value with an embedded NUL byte is matched by length. */
    struct matcher *m = mk(MATCH_RE, "a.b");
    cr_assert(matcher_matches(m, (struct vg_str){ "a\0b", 3 }));
    matcher_free(m);
}

Test(matcher, matches_empty_is_computed)
{
    struct { const char *re; bool empty; } cases[] = {
        { ".*", true }, { ".+", false }, { "a?", true }, { "a|", true },
        { "api", false }, { "(foo)?", true }, { "|x", true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct matcher *m = mk(MATCH_RE, cases[i].re);
        cr_assert_eq(m->matches_empty, cases[i].empty, "=~ %s", cases[i].re);
        matcher_free(m);
        m = mk(MATCH_NRE, cases[i].re);
        cr_assert_eq(m->matches_empty, !cases[i].empty, "!~ %s", cases[i].re);
        matcher_free(m);
    }
}

Test(matcher, invalid_regex_names_error_and_offset)
{
    struct vg_err err = { 0 };
    cr_assert_null(matcher_new(MATCH_RE, VG_STR("job"), VG_STR("ab(c"), &err));
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, "invalid regex \"ab(c\""), "%s", err.msg);
    cr_assert(strstr(err.msg, "offset 4"), "%s", err.msg);
    cr_assert_null(matcher_new(MATCH_NRE, VG_STR("job"), VG_STR("a)|(b"), &err));
    cr_assert(strstr(err.msg, "offset 1"), "%s", err.msg);
    cr_assert_null(matcher_new(MATCH_RE, VG_STR("job"), VG_STR("x{2,1}"), &err));
    cr_assert_null(matcher_new((enum matcher_op)9, VG_STR("job"), VG_STR("x"), &err));
    cr_assert_eq(err.code, VG_EINVAL);
}

Test(matcher, op_strings)
{
    cr_assert_str_eq(matcher_op_str(MATCH_EQ), "=");
    cr_assert_str_eq(matcher_op_str(MATCH_NEQ), "!=");
    cr_assert_str_eq(matcher_op_str(MATCH_RE), "=~");
    cr_assert_str_eq(matcher_op_str(MATCH_NRE), "!~");
}

Test(matcher, allocation_failure)
{
    size_t live = vg_alloc_live_bytes();
    bool made = false;
    for (uint64_t k = 1; k < 200 && !made; k++) {
        struct vg_err err = { 0 };
        vg_alloc_fail_after(k);
        struct matcher *m = matcher_new(MATCH_RE, VG_STR("path"), VG_STR("/api/(v1|v2)/.*"), &err);
        vg_alloc_fail_after(0);
        if (m) {
            made = true;
            cr_assert(matcher_matches(m, VG_STR("/api/v1/query")));
            matcher_free(m);
        } else {
            cr_assert_eq(err.code, VG_ENOMEM, "k=%llu: %s", (unsigned long long)k, err.msg);
        }
        cr_assert_eq(vg_alloc_live_bytes(), live, "leak at k=%llu", (unsigned long long)k);
    }
    cr_assert(made);

    struct matcher *m = mk(MATCH_RE, "a.*");
    vg_alloc_fail_after(1);
    bool r = matcher_matches(m, VG_STR("abc"));
    vg_alloc_fail_after(0);
    cr_assert_not(r, "no match data: no match");
    matcher_free(m);
}

static void *hammer(void *arg)
{
    const struct matcher *m = arg;
    for (int i = 0; i < 20000; i++) {
        if (!matcher_matches(m, VG_STR("/api/v1/query_range")) ||
            matcher_matches(m, VG_STR("/metrics")))
            return (void *)1;
    }
    return NULL;
}

Test(matcher, concurrent_matching)
{
    struct matcher *m = mk(MATCH_RE, "/api/v[0-9]+/.*");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, m);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        cr_assert_null(rv);
    }
    matcher_free(m);
}

/* matcher_expand: Go's regexp.Expand template rules, as PromQL's label_replace uses. */
static const char *expand(const char *re, const char *value, const char *tmpl, int *rc)
{
    static struct vg_buf out;
    vg_buf_free(&out);
    vg_buf_init(&out);
    struct matcher *m = mk(MATCH_RE, re);
    *rc = matcher_expand(m, vg_str_c(value), vg_str_c(tmpl), &out);
    matcher_free(m);
    return vg_buf_cstr(&out);
}

Test(matcher, expand_go_template)
{
    int rc;
    cr_assert_str_eq(expand("(a)(b)?", "a", "$1-$2-${1}x", &rc), "a--ax");
    cr_assert_eq(rc, 1);
    cr_assert_str_eq(expand("(.*)", "v", "$1x", &rc), ""); /* the group named "1x" */
    cr_assert_str_eq(expand("(?P<n>.)(.)", "ab", "$n/${n}/$2/$3", &rc), "a/a/b/");
    cr_assert_str_eq(expand("(.*)", "v", "$$1 $ ${ ${1 $01", &rc), "$1 $ ${ ${1 ");
    cr_assert_str_eq(expand("x", "xy", "never", &rc), ""); /* anchored: no match */
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(expand("", "", "empty", &rc), "empty");
    cr_assert_eq(rc, 1);
    struct matcher *eq = mk(MATCH_EQ, "x");
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_eq(matcher_expand(eq, VG_STR("x"), VG_STR("y"), &b), VG_EINVAL);
    matcher_free(eq);
    vg_buf_free(&b);
}

Test(matcher, expand_out_of_memory)
{
    struct matcher *m = mk(MATCH_RE, "(.*)");
    struct vg_buf b;
    vg_buf_init(&b);
    vg_alloc_fail_after(1);
    int rc = matcher_expand(m, VG_STR("abc"), VG_STR("$1"), &b);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    vg_buf_free(&b);
    matcher_free(m);
}

/* ---- extraction regexes ---- */

struct groups_seen {
    char text[256];
    int calls;
    int stop_at; /* return -42 on this call (1-based); 0 = never */
};

static int collect_group(void *ud, struct vg_str name, struct vg_str value)
{
    struct groups_seen *g = ud;
    size_t n = strlen(g->text);
    snprintf(g->text + n, sizeof g->text - n, "%.*s=%.*s;", (int)name.len, name.p,
             (int)value.len, value.p);
    return ++g->calls == g->stop_at ? -42 : 0;
}

static struct matcher_regex *mk_re(const char *pattern)
{
    struct vg_err err;
    struct matcher_regex *re = matcher_regex_new(vg_str_c(pattern), &err);
    cr_assert_not_null(re, "%s: %s", pattern, err.msg);
    return re;
}

Test(matcher, regex_groups_are_unanchored_and_in_group_order)
{
    struct matcher_regex *re =
        mk_re("(?P<zeta>\\w+) (\\d+) (?<alpha>[a-z]+)(?<opt>!)?");
    cr_assert_eq(matcher_regex_named_count(re), 3);
    struct groups_seen g = { 0 };
    int rc = matcher_regex_groups(re, VG_STR("--> first 42 second <--"), collect_group, &g);
    cr_assert_eq(rc, 1);
    /* numbered order (zeta, alpha), not the name table's alphabetical order; the group
     * that did not take part (opt) is not reported */
    cr_assert_str_eq(g.text, "zeta=first;alpha=second;");

    memset(&g, 0, sizeof g);
    cr_assert_eq(matcher_regex_groups(re, VG_STR("no digits here"), collect_group, &g), 0);
    cr_assert_eq(g.calls, 0);
    matcher_regex_free(re);
}

Test(matcher, regex_follows_go_semantics_for_dot_and_dollar)
{
    struct matcher_regex *re = mk_re("a(?<rest>.*)$");
    struct groups_seen g = { 0 };
    /* `.` stops at the newline, and `$` does not match before a final "\n" */
    cr_assert_eq(matcher_regex_groups(re, VG_STR("xab\nc\n"), collect_group, &g), 0);
    cr_assert_eq(matcher_regex_groups(re, VG_STR("xab\nc"), collect_group, &g), 0);
    cr_assert_eq(matcher_regex_groups(re, VG_STR("x\nabc"), collect_group, &g), 1);
    cr_assert_str_eq(g.text, "rest=bc;");
    matcher_regex_free(re);

    re = mk_re("(?<e>)");
    memset(&g, 0, sizeof g);
    cr_assert_eq(matcher_regex_groups(re, (struct vg_str){ NULL, 0 }, collect_group, &g), 1);
    cr_assert_str_eq(g.text, "e=;");
    matcher_regex_free(re);
}

Test(matcher, regex_callback_can_stop_the_walk)
{
    struct matcher_regex *re = mk_re("(?<a>.)(?<b>.)(?<c>.)");
    struct groups_seen g = { .stop_at = 2 };
    cr_assert_eq(matcher_regex_groups(re, VG_STR("xyz"), collect_group, &g), -42);
    cr_assert_eq(g.calls, 2);
    matcher_regex_free(re);
}

Test(matcher, regex_errors_and_out_of_memory)
{
    struct vg_err err;
    cr_assert_null(matcher_regex_new(VG_STR("(?<a>x"), &err));
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, "offset 6"), "%s", err.msg);
    cr_assert_null(matcher_regex_new(VG_STR("(?<a>x)(?<a>y)"), &err)); /* duplicate name */
    cr_assert_eq(err.code, VG_EINVAL);
    matcher_regex_free(NULL);

    for (uint64_t n = 1; n <= 4; n++) {
        vg_alloc_fail_after(n);
        struct matcher_regex *re = matcher_regex_new(VG_STR("(?<a>x)(?<b>y)"), &err);
        vg_alloc_fail_after(0);
        if (!re)
            cr_assert_eq(err.code, VG_ENOMEM);
        matcher_regex_free(re);
    }
    struct matcher_regex *re = mk_re("(?<a>x)");
    struct groups_seen g = { 0 };
    vg_alloc_fail_after(1);
    int rc = matcher_regex_groups(re, VG_STR("x"), collect_group, &g);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    matcher_regex_free(re);
}

static const char *replace(const char *pattern, const char *subject, const char *repl,
                           bool literal)
{
    static char out[256];
    struct matcher_regex *re = mk_re(pattern);
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_eq(matcher_regex_replace_all(re, vg_str_c(subject), vg_str_c(repl), literal, &b), 0);
    snprintf(out, sizeof out, "%.*s", (int)b.len, b.p ? b.p : "");
    vg_buf_free(&b);
    matcher_regex_free(re);
    return out;
}

Test(matcher, regex_replace_all_follows_go)
{
    cr_assert_str_eq(replace("/v([0-9])/", "/api/v1/users", "/version$1/", false),
                     "/api/version1/users");
    cr_assert_str_eq(replace("(?P<w>[a-z]+)", "ab 12 cd", "<${w}>", false), "<ab> 12 <cd>");
    /* no replacement for the empty match right after "aaa" */
    cr_assert_str_eq(replace("a*", "baaac", "x", false), "xbxcx");
    cr_assert_str_eq(replace("[0-9]+", "a1b22", "$1", true), "a$1b$1");
    cr_assert_str_eq(replace("[0-9]+", "a1b22", "$1", false), "ab");
    cr_assert_str_eq(replace("^a", "aaa", "b", false), "baa");
    cr_assert_str_eq(replace("(.*):.*", "db1.example.com:9100", "$1", false), "db1.example.com");
    cr_assert_str_eq(replace("x", "none", "y", false), "none");
    cr_assert_str_eq(replace("", "\xc3\xa9t", "-", false), "-\xc3\xa9-t-"); /* per character */
    cr_assert_str_eq(replace("o$", "foo\n", "0", false), "foo\n"); /* `$` only at the end */
    /* unanchored match (Go's MatchString) is matcher_regex_find from 0 */
    struct matcher_regex *re = mk_re("^db");
    size_t s, e;
    cr_assert_eq(matcher_regex_find(re, VG_STR("db1:9"), 0, &s, &e), 1);
    cr_assert_eq(matcher_regex_find(re, VG_STR("a db1"), 0, &s, &e), 0);
    matcher_regex_free(re);
}

Test(matcher, regex_replace_all_out_of_memory)
{
    struct matcher_regex *re = mk_re("(b)");
    for (uint64_t n = 1; n <= 3; n++) {
        struct vg_buf b;
        vg_buf_init(&b);
        vg_alloc_fail_after(n);
        int rc = matcher_regex_replace_all(re, VG_STR("abcabc"), VG_STR("[$1]"), false, &b);
        vg_alloc_fail_after(0);
        if (rc == 0)
            cr_assert_eq(b.len, strlen("a[b]ca[b]c"));
        else
            cr_assert_eq(rc, VG_ENOMEM);
        vg_buf_free(&b);
    }
    matcher_regex_free(re);
}
