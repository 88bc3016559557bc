/* matcher: PromQL label matchers over PCRE2. See matcher.h for the API.
 *
 * Prometheus compiles a regex matcher as "^(?s:" + re + ")$" (Go RE2): fully anchored,
 * and `.` matches "\n" too. We get the same without editing the pattern text (which
 * would let "a)|(b" compile, and shift error offsets) by compiling with PCRE2_ANCHORED |
 * PCRE2_ENDANCHORED | PCRE2_DOTALL; ENDANCHORED backtracks into alternatives, so "a|ab"
 * matches "ab" as in RE2. PCRE2's `$` would also match before a final newline, which
 * the options avoid as well.
 *
 * UTF-8: a pattern that is valid UTF-8 is compiled with PCRE2_UTF (so `.` is one code
 * point, as in Go) and PCRE2_MATCH_INVALID_UTF, so subjects that are not valid UTF-8
 * are safe to match: their bad bytes match no character (Go would treat each as
 * U+FFFD; label values are validated as UTF-8 at ingestion, so this rarely matters).
 * A pattern that is not valid UTF-8 is compiled byte-wise.
 *
 * Memory: the compiled code allocates through vg_malloc (a general context set at
 * compile time, which the code remembers) and so does the per-call match data, which
 * is what makes matching thread-safe. PCRE2's default match and depth limits bound
 * catastrophic backtracking; hitting one counts as "no match" for =~ (so !~ matches).
 * If the match data cannot be allocated, neither =~ nor !~ matches. The JIT is used when
 * available.
 *
 * Extraction regexes (matcher_regex_*) share the compiler but not the anchoring: log
 * parsers search a line the way Go's regexp.FindSubmatch does (unanchored, no DOTALL,
 * PCRE2_DOLLAR_ENDONLY so `$` is end of text as in Go). Named groups are listed once at
 * compile time, sorted by group number, from PCRE2's name table. The same regexes
 * serve Go's ReplaceAllString (template functions regexReplaceAll and reReplaceAll),
 * with replacement references expanded by the code matcher_expand uses.
 */
#include "matcher.h"

#include "../base/vg_alloc.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdlib.h>
#include <string.h>

static void *re_malloc(size_t n, void *ud)
{
    (void)ud;
    return vg_malloc(n);
}

static void re_free(void *p, void *ud)
{
    (void)ud;
    vg_free(p);
}

static pcre2_code *compile(const char *re, size_t len, uint32_t base, struct vg_err *err)
{
    pcre2_general_context *gc = pcre2_general_context_create(re_malloc, re_free, NULL);
    pcre2_compile_context *cc = gc ? pcre2_compile_context_create(gc) : NULL;
    if (!cc) {
        pcre2_general_context_free(gc);
        vg_err_set(err, VG_ENOMEM, "regex: out of memory");
        return NULL;
    }
    base |= PCRE2_NEVER_BACKSLASH_C;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, len,
                                     base | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off, cc);
    if (!code && ec >= PCRE2_ERROR_UTF8_ERR21 && ec <= PCRE2_ERROR_UTF8_ERR1)
        code = pcre2_compile((PCRE2_SPTR)re, len, base, &ec, &off, cc);
    pcre2_compile_context_free(cc);
    pcre2_general_context_free(gc);
    if (!code) {
        if (ec == PCRE2_ERROR_HEAP_FAILED || ec == PCRE2_ERROR_NOMEMORY) {
            vg_err_set(err, VG_ENOMEM, "regex: out of memory");
            return NULL;
        }
        PCRE2_UCHAR msg[256];
        const char *why = pcre2_get_error_message(ec, msg, sizeof msg) < 0
                              ? "unknown error"
                              : (const char *)msg;
        int shown = len > 200 ? 200 : (int)len;
        vg_err_set(err, VG_EINVAL, "invalid regex \"%.*s\": %s at offset %zu", shown, re, why,
                   (size_t)off);
        return NULL;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    return code;
}

/* 1 on a match, 0 on none (or a PCRE2 limit hit), VG_ENOMEM without match data. */
static int re_match(const pcre2_code *code, const char *s, size_t len)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md)
        return VG_ENOMEM;
    /* An empty subject may come as {NULL, 0}; PCRE2 wants a pointer. */
    int rc = pcre2_match(code, (PCRE2_SPTR)(s ? s : ""), len, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

struct matcher *matcher_new(enum matcher_op op, struct vg_str name, struct vg_str value,
                            struct vg_err *err)
{
    if (op != MATCH_EQ && op != MATCH_NEQ && op != MATCH_RE && op != MATCH_NRE) {
        vg_err_set(err, VG_EINVAL, "matcher: unknown operator %d", (int)op);
        return NULL;
    }
    struct matcher *m = vg_calloc(1, sizeof *m);
    char *n = vg_malloc(name.len + 1), *v = vg_malloc(value.len + 1);
    if (!m || !n || !v) {
        vg_free(m);
        vg_free(n);
        vg_free(v);
        vg_err_set(err, VG_ENOMEM, "matcher: out of memory");
        return NULL;
    }
    if (name.len)
        memcpy(n, name.p, name.len);
    n[name.len] = 0;
    if (value.len)
        memcpy(v, value.p, value.len);
    v[value.len] = 0;
    m->op = op;
    m->name = n;
    m->value = v;
    m->value_len = value.len;
    if (op == MATCH_RE || op == MATCH_NRE) {
        m->re = compile(v, value.len, PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL, err);
        if (!m->re) {
            matcher_free(m);
            return NULL;
        }
    }
    if (m->re) {
        int rc = re_match(m->re, "", 0);
        if (rc < 0) {
            matcher_free(m);
            vg_err_set(err, rc, "matcher: out of memory");
            return NULL;
        }
        m->matches_empty = (op == MATCH_RE) == (rc == 1);
    } else {
        m->matches_empty = (op == MATCH_EQ) == (value.len == 0);
    }
    return m;
}

void matcher_free(struct matcher *m)
{
    if (!m)
        return;
    pcre2_code_free(m->re);
    vg_free(m->name);
    vg_free(m->value);
    vg_free(m);
}

bool matcher_matches(const struct matcher *m, struct vg_str value)
{
    bool eq;
    switch (m->op) {
    case MATCH_EQ:
    case MATCH_NEQ:
        eq = value.len == m->value_len && (value.len == 0 || !memcmp(value.p, m->value, value.len));
        return m->op == MATCH_EQ ? eq : !eq;
    case MATCH_RE:
        return re_match(m->re, value.p, value.len) == 1;
    case MATCH_NRE:
        return re_match(m->re, value.p, value.len) == 0;
    }
    return false;
}

const char *matcher_op_str(enum matcher_op op)
{
    switch (op) {
    case MATCH_EQ:
        return "=";
    case MATCH_NEQ:
        return "!=";
    case MATCH_RE:
        return "=~";
    case MATCH_NRE:
        return "!~";
    }
    return "?";
}

/* The reference after a '$' (Go's regexp extract): *num >= 0 for a number, else the
 * name in [*np, *np + *nl). Returns the bytes consumed, 0 when malformed. */
static size_t tmpl_ref(const char *s, size_t len, long *num, const char **np, size_t *nl)
{
    size_t i = 0;
    bool brace = len && s[0] == '{';
    if (brace)
        i++;
    size_t start = i;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        /* letters, digits, '_'; bytes >= 0x80 stand for non-ASCII letters */
        if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || c >= 0x80))
            break;
        i++;
    }
    if (i == start)
        return 0;
    *np = s + start;
    *nl = i - start;
    if (brace) {
        if (i >= len || s[i] != '}')
            return 0;
        i++;
    }
    long n = 0;
    for (size_t j = 0; j < *nl; j++) {
        char c = (*np)[j];
        if (c < '0' || c > '9' || n >= 100000000) {
            n = -1;
            break;
        }
        n = n * 10 + (c - '0');
    }
    if (*nl > 1 && (*np)[0] == '0')
        n = -1; /* no leading zeros */
    *num = n;
    return i;
}

/* Appends tmpl to out with the references to the match in ov expanded (Go's
 * regexp.Expand; see matcher_expand in matcher.h). */
static void expand_refs(const pcre2_code *code, const char *subj, const PCRE2_SIZE *ov,
                        uint32_t pairs, struct vg_str tmpl, struct vg_buf *out)
{
    const char *t = tmpl.p ? tmpl.p : "";
    size_t i = 0, len = tmpl.len;
    while (i < len) {
        const char *d = memchr(t + i, '$', len - i);
        if (!d) {
            vg_buf_append(out, t + i, len - i);
            break;
        }
        vg_buf_append(out, t + i, (size_t)(d - (t + i)));
        i = (size_t)(d - t) + 1;
        if (i < len && t[i] == '$') {
            vg_buf_putc(out, '$');
            i++;
            continue;
        }
        long num;
        const char *np;
        size_t nl;
        size_t used = tmpl_ref(t + i, len - i, &num, &np, &nl);
        if (!used) {
            vg_buf_putc(out, '$');
            continue;
        }
        i += used;
        if (num < 0) {
            char name[256];
            if (nl >= sizeof name)
                continue;
            memcpy(name, np, nl);
            name[nl] = 0;
            int g = pcre2_substring_number_from_name(code, (PCRE2_SPTR)name);
            if (g < 0)
                continue; /* no such group: nothing */
            num = g;
        }
        if ((uint32_t)num < pairs && ov[2 * num] != PCRE2_UNSET)
            vg_buf_append(out, subj + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }
}

int matcher_expand(const struct matcher *m, struct vg_str value, struct vg_str tmpl,
                   struct vg_buf *out)
{
    if (!m->re)
        return VG_EINVAL;
    const pcre2_code *code = m->re;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!md)
        return VG_ENOMEM;
    const char *subj = value.p ? value.p : "";
    int rc = pcre2_match(code, (PCRE2_SPTR)subj, value.len, 0, 0, md, NULL);
    if (rc >= 0)
        expand_refs(code, subj, pcre2_get_ovector_pointer(md), pcre2_get_ovector_count(md),
                    tmpl, out);
    pcre2_match_data_free(md);
    return rc < 0 ? 0 : vg_buf_failed(out) ? VG_ENOMEM : 1;
}

/* ---- extraction regexes ---- */

struct matcher_group {
    uint32_t num; /* capture group number */
    const char *name; /* NUL-terminated, inside PCRE2's name table */
    size_t len;
};

struct matcher_regex {
    pcre2_code *code;
    size_t ngroups;
    struct matcher_group *groups; /* named groups sorted by number */
};

static int group_cmp(const void *a, const void *b)
{
    const struct matcher_group *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

struct matcher_regex *matcher_regex_new(struct vg_str pattern, struct vg_err *err)
{
    struct matcher_regex *re = vg_calloc(1, sizeof *re);
    if (!re) {
        vg_err_set(err, VG_ENOMEM, "regex: out of memory");
        return NULL;
    }
    /* Go's defaults: no DOTALL, and `$` is end of text only. */
    re->code = compile(pattern.p ? pattern.p : "", pattern.len, PCRE2_DOLLAR_ENDONLY, err);
    if (!re->code) {
        vg_free(re);
        return NULL;
    }
    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    if (count) {
        re->groups = vg_calloc(count, sizeof *re->groups);
        if (!re->groups) {
            matcher_regex_free(re);
            vg_err_set(err, VG_ENOMEM, "regex: out of memory");
            return NULL;
        }
    }
    /* Each name-table entry: the group number as 2 bytes big-endian, then the name. */
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR e = table + (size_t)i * entry;
        re->groups[i].num = ((uint32_t)e[0] << 8) | e[1];
        re->groups[i].name = (const char *)e + 2;
        re->groups[i].len = strlen(re->groups[i].name);
    }
    re->ngroups = count;
    if (count > 1)
        qsort(re->groups, count, sizeof *re->groups, group_cmp);
    return re;
}

void matcher_regex_free(struct matcher_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    vg_free(re->groups);
    vg_free(re);
}

size_t matcher_regex_named_count(const struct matcher_regex *re)
{
    return re->ngroups;
}

int matcher_regex_groups(const struct matcher_regex *re, struct vg_str subject,
                         matcher_group_fn fn, void *ud)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md)
        return VG_ENOMEM;
    const char *subj = subject.p ? subject.p : "";
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subj, subject.len, 0, 0, md, NULL);
    if (rc < 0) {
        pcre2_match_data_free(md);
        return 0;
    }
    uint32_t pairs = pcre2_get_ovector_count(md);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    int out = 1;
    for (size_t i = 0; i < re->ngroups && out == 1; i++) {
        size_t g = re->groups[i].num;
        if (g >= pairs || ov[2 * g] == PCRE2_UNSET)
            continue; /* the group did not take part */
        struct vg_str name = { re->groups[i].name, re->groups[i].len };
        struct vg_str value = { subj + ov[2 * g], ov[2 * g + 1] - ov[2 * g] };
        int r = fn(ud, name, value);
        if (r < 0)
            out = r;
    }
    pcre2_match_data_free(md);
    return out;
}

int matcher_regex_find(const struct matcher_regex *re, struct vg_str subject, size_t start,
                       size_t *mstart, size_t *mend)
{
    if (start > subject.len)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md)
        return VG_ENOMEM;
    const char *subj = subject.p ? subject.p : "";
    int rc = pcre2_match(re->code, (PCRE2_SPTR)subj, subject.len, start, 0, md, NULL);
    if (rc >= 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *mstart = ov[0];
        *mend = ov[1];
    }
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Go's Regexp.ReplaceAllString loop: search from pos (the whole subject stays visible to
 * `^` and lookbehind), copy what lies before the match, replace unless the match is
 * empty and starts where the previous one ended (Go's rule against replacing both "aaa"
 * and the empty string after it), then step past the match or at least one UTF-8
 * character. */
int matcher_regex_replace_all(const struct matcher_regex *re, struct vg_str subject,
                              struct vg_str repl, bool literal, struct vg_buf *out)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!md)
        return VG_ENOMEM;
    const char *subj = subject.p ? subject.p : "";
    size_t pos = 0, last = 0, n = subject.len;
    bool any = false;
    while (pos <= n && pcre2_match(re->code, (PCRE2_SPTR)subj, n, pos, 0, md, NULL) >= 0) {
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        vg_buf_append(out, subj + last, ov[0] - last);
        if (!any || ov[1] > last || ov[0] == 0) {
            if (literal)
                vg_buf_append(out, repl.p, repl.len);
            else
                expand_refs(re->code, subj, ov, pcre2_get_ovector_count(md), repl, out);
        }
        any = true;
        last = ov[1];
        size_t width = 1;
        while (pos + width < n && ((unsigned char)subj[pos + width] & 0xC0) == 0x80)
            width++;
        pos = pos + width > ov[1] ? pos + width : ov[1];
    }
    vg_buf_append(out, subj + last, n - last);
    pcre2_match_data_free(md);
    return vg_buf_failed(out) ? VG_ENOMEM : 0;
}
