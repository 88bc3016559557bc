/* testfile: parser of Prometheus's PromQL test-file format; see testfile.h for the
 * format and the rules taken over from Prometheus's harness (promql/promqltest).
 *
 * The text is copied into the file's arena as trimmed, NUL-terminated lines (comment
 * lines emptied), then read command by command. Arrays grow by copying inside the arena:
 * test files are small, so the waste does not matter and nothing needs freeing one by
 * one. */
#include "testfile.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/tsdb/matcher.h"
#include "../../storage/tsdb/tsdb.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parser {
    struct vg_arena *a;
    char **lines;
    size_t nlines;
    size_t cap_cmds;
    struct tf_file *f;
    bool oom;
};

/* ---- small helpers ---- */

/* Makes room for one more element of size elsz in *arr (n used, *cap allocated) and
 * returns the new slot, zeroed; NULL when out of memory. */
static void *arr_push(struct parser *p, void **arr, size_t *n, size_t *cap, size_t elsz)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        void *na = vg_arena_alloc(p->a, ncap * elsz);
        if (!na) {
            p->oom = true;
            return NULL;
        }
        if (*n)
            memcpy(na, *arr, *n * elsz);
        *arr = na;
        *cap = ncap;
    }
    char *slot = (char *)*arr + *n * elsz;
    memset(slot, 0, elsz);
    (*n)++;
    return slot;
}

static char *p_strndup(struct parser *p, const char *s, size_t n)
{
    char *r = vg_arena_strndup(p->a, s, n);
    if (!r)
        p->oom = true;
    return r;
}

/* Formats a message into the arena (for cmd->error). */
static char *p_fmt(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *p_fmt(struct parser *p, const char *fmt, ...)
{
    char tmp[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    char *r = p_strndup(p, tmp, strlen(tmp));
    /* Never NULL: callers use NULL for "no error"; p->oom already fails the parse. */
    return r ? r : (char *)"out of memory";
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

static const char *skip_ws(const char *s)
{
    while (*s && is_space(*s))
        s++;
    return s;
}

/* The word at s (up to whitespace or end); *len its length. */
static const char *word_at(const char *s, size_t *len)
{
    const char *e = s;
    while (*e && !is_space(*e))
        e++;
    *len = (size_t)(e - s);
    return s;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static bool has_prefix(const char *s, const char *pre)
{
    return strncmp(s, pre, strlen(pre)) == 0;
}

/* ---- numbers and durations ---- */

bool tf_parse_number(const char *s, size_t len, double *out)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (is_space(buf[0]))
        return false;

    /* Go's ParseInt with base 0: sign, then 0x / 0o / 0b / leading-0 octal / decimal,
     * '_' allowed between digits only after a base prefix. */
    const char *q = buf;
    bool neg = false;
    if (*q == '+' || *q == '-')
        neg = *q++ == '-';
    int base = 10;
    bool prefixed = false;
    if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
        base = 16, q += 2, prefixed = true;
    } else if (q[0] == '0' && (q[1] == 'o' || q[1] == 'O')) {
        base = 8, q += 2, prefixed = true;
    } else if (q[0] == '0' && (q[1] == 'b' || q[1] == 'B')) {
        base = 2, q += 2, prefixed = true;
    } else if (q[0] == '0' && q[1]) {
        base = 8, q += 1, prefixed = true;
    }
    if (*q) {
        uint64_t acc = 0;
        bool ok = true, any = false, overflow = false;
        for (const char *c = q; *c; c++) {
            if (*c == '_' && prefixed && any && c[1] && c[1] != '_')
                continue;
            int d = is_digit(*c) ? *c - '0'
                    : (*c >= 'a' && *c <= 'f') ? *c - 'a' + 10
                    : (*c >= 'A' && *c <= 'F') ? *c - 'A' + 10 : 99;
            if (d >= base) {
                ok = false;
                break;
            }
            if (acc > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
                overflow = true;
            acc = acc * (uint64_t)base + (uint64_t)d;
            any = true;
        }
        if (ok && any && !overflow && acc <= (uint64_t)INT64_MAX + (neg ? 1u : 0u)) {
            *out = neg ? -(double)acc : (double)acc;
            return true;
        }
    }

    /* Go's ParseFloat: strtod covers decimal, hex floats, inf, infinity and nan; refuse
     * the forms Go does not take ("nan(...)"). */
    if (strchr(buf, '(') || strchr(buf, '_'))
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end)
        return false;
    *out = v; /* like Go, a value out of range becomes ±Inf */
    return true;
}

int tf_parse_time(const char *s, size_t len, int64_t *ms, struct vg_err *err)
{
    if (len == 0)
        return vg_err_set(err, VG_EINVAL, "empty duration");
    if (len == 1 && s[0] == '0') {
        *ms = 0;
        return 0;
    }
    /* A bare decimal number: seconds. */
    size_t i = 0;
    while (i < len && (is_digit(s[i]) || s[i] == '.'))
        i++;
    if (i == len) {
        char buf[64];
        if (len >= sizeof buf)
            return vg_err_set(err, VG_EINVAL, "duration too long");
        memcpy(buf, s, len);
        buf[len] = 0;
        char *end;
        double sec = strtod(buf, &end);
        if (*end || sec > 9.2e15)
            return vg_err_set(err, VG_EINVAL, "invalid time %.*s", (int)len, s);
        *ms = (int64_t)llround(sec * 1000.0);
        return 0;
    }
    /* Prometheus durations: integer+unit pairs in the order y w d h m s ms. */
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        { "y", 365LL * 24 * 3600 * 1000 }, { "w", 7LL * 24 * 3600 * 1000 },
        { "d", 24LL * 3600 * 1000 },       { "h", 3600LL * 1000 },
        { "m", 60LL * 1000 },              { "s", 1000 },
        { "ms", 1 },
    };
    size_t nunits = sizeof units / sizeof units[0];
    size_t next_unit = 0;
    int64_t total = 0;
    i = 0;
    while (i < len) {
        if (!is_digit(s[i]))
            return vg_err_set(err, VG_EINVAL, "invalid duration %.*s", (int)len, s);
        int64_t n = 0;
        while (i < len && is_digit(s[i])) {
            if (n > INT64_MAX / 10 - 10)
                return vg_err_set(err, VG_EINVAL, "duration %.*s too large", (int)len, s);
            n = n * 10 + (s[i++] - '0');
        }
        size_t u0 = i;
        while (i < len && isalpha((unsigned char)s[i]))
            i++;
        size_t k;
        for (k = next_unit; k < nunits; k++)
            if (strlen(units[k].unit) == i - u0 && memcmp(units[k].unit, s + u0, i - u0) == 0)
                break;
        if (k == nunits)
            return vg_err_set(err, VG_EINVAL, "invalid duration %.*s", (int)len, s);
        if (n > INT64_MAX / units[k].ms || total > INT64_MAX - n * units[k].ms)
            return vg_err_set(err, VG_EINVAL, "duration %.*s too large", (int)len, s);
        total += n * units[k].ms;
        next_unit = k + 1;
    }
    *ms = total;
    return 0;
}

bool tf_float_equal(double a, double b)
{
    /* The smallest positive normal double: below it, relative error is meaningless. */
    const double min_normal = 2.2250738585072014e-308;
    const double eps = 1e-6;
    if (isnan(a) && isnan(b))
        return true;
    if (a == b)
        return true;
    double abs_sum = fabs(a) + fabs(b);
    double diff = fabs(a - b);
    if (a == 0 || b == 0 || abs_sum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(abs_sum, 1.7976931348623157e308) < eps;
}

int tf_regex_search(const char *re, const char *s)
{
    /* The matcher wrapper anchors both ends; surrounding the pattern with .* (DOTALL is
     * on) turns that into a search, as Go's MatchString. */
    size_t n = strlen(re) + 16;
    char *pat = vg_malloc(n);
    if (!pat)
        return VG_ENOMEM;
    snprintf(pat, n, ".*(?:%s).*", re);
    struct vg_err err = {0};
    struct matcher *m = matcher_new(MATCH_RE, VG_STR("msg"), vg_str_c(pat), &err);
    vg_free(pat);
    if (!m)
        return VG_EINVAL;
    int r = matcher_matches(m, vg_str_c(s)) ? 1 : 0;
    matcher_free(m);
    return r;
}

/* ---- quoted strings ---- */

static void put_utf8(char *out, size_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hexval(char c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads a quoted string at *sp ("...", '...' or `...`, Go escapes in the first two) into
 * the arena; advances *sp past the closing quote. NULL on a malformed string (*why set). */
static char *read_quoted(struct parser *p, const char **sp, size_t *outlen, const char **why)
{
    const char *s = *sp;
    char q = *s++;
    const char *start = s;
    while (*s && *s != q) {
        if (*s == '\\' && q != '`' && s[1])
            s++;
        s++;
    }
    if (*s != q) {
        *why = "unterminated quoted string";
        return NULL;
    }
    size_t raw = (size_t)(s - start);
    char *out = vg_arena_alloc(p->a, raw + 1);
    if (!out) {
        p->oom = true;
        *why = "out of memory";
        return NULL;
    }
    size_t o = 0;
    for (const char *c = start; c < s; c++) {
        if (q == '`' || *c != '\\') {
            out[o++] = *c;
            continue;
        }
        c++;
        uint32_t cp;
        int digits = 0;
        switch (*c) {
        case 'a': out[o++] = '\a'; continue;
        case 'b': out[o++] = '\b'; continue;
        case 'f': out[o++] = '\f'; continue;
        case 'n': out[o++] = '\n'; continue;
        case 'r': out[o++] = '\r'; continue;
        case 't': out[o++] = '\t'; continue;
        case 'v': out[o++] = '\v'; continue;
        case '\\': case '"': case '\'': out[o++] = *c; continue;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (*c >= '0' && *c <= '7' && c + 2 < s && c[1] >= '0' && c[1] <= '7' &&
                c[2] >= '0' && c[2] <= '7') {
                out[o++] = (char)(((c[0] - '0') << 6) | ((c[1] - '0') << 3) | (c[2] - '0'));
                c += 2;
                continue;
            }
            *why = "invalid escape sequence in quoted string";
            return NULL;
        }
        cp = 0;
        for (int k = 0; k < digits; k++) {
            int h = c + 1 < s ? hexval(c[1]) : -1;
            if (h < 0) {
                *why = "invalid escape sequence in quoted string";
                return NULL;
            }
            cp = cp * 16 + (uint32_t)h;
            c++;
        }
        if (digits == 2)
            out[o++] = (char)cp; /* \xHH is a raw byte */
        else if (cp > 0x10FFFF) {
            *why = "invalid Unicode escape in quoted string";
            return NULL;
        } else
            put_utf8(out, &o, cp); /* 4 or 8 hex digits never exceed their raw length */
    }
    out[o] = 0;
    *outlen = o;
    *sp = s + 1;
    return out;
}

/* ---- series lines ---- */

static bool is_metric_start(char c) { return is_alpha(c) || c == ':'; }
static bool is_metric_char(char c) { return is_alnum(c) || c == ':'; }

static bool add_label(struct parser *p, struct tf_series *sr, size_t *cap, const char *name,
                      size_t nlen, const char *value, size_t vlen)
{
    if (vlen == 0)
        return true; /* an empty value is the same as no label */
    struct label *l = arr_push(p, (void **)&sr->labels, &sr->nlabels, cap, sizeof *l);
    if (!l)
        return false;
    char *n = p_strndup(p, name, nlen);
    if (!n)
        return false;
    l->name = (struct vg_str){ n, nlen };
    l->value = (struct vg_str){ value, vlen };
    return true;
}

/* The label part of a series line: `name`, `name{...}` or `{...}`. Advances *sp. */
static const char *parse_labels(struct parser *p, const char **sp, struct tf_series *sr)
{
    const char *s = *sp;
    size_t cap = 0;
    const char *why = NULL;
    if (is_metric_start(*s)) {
        const char *n0 = s;
        while (is_metric_char(*s))
            s++;
        char *name = p_strndup(p, n0, (size_t)(s - n0));
        if (!name || !add_label(p, sr, &cap, "__name__", 8, name, (size_t)(s - n0)))
            return "out of memory";
    } else if (*s != '{') {
        return "expected a metric name or '{' at the start of a series";
    }
    if (*s == '{' && s[1] != '{') {
        s = skip_ws(s + 1);
        while (*s != '}') {
            const char *name;
            size_t nlen;
            bool quoted = *s == '"' || *s == '\'' || *s == '`';
            if (quoted) {
                name = read_quoted(p, &s, &nlen, &why);
                if (!name)
                    return why;
            } else if (is_alpha(*s)) {
                name = s;
                while (is_alnum(*s))
                    s++;
                nlen = (size_t)(s - name);
            } else {
                return "expected a label name in '{...}'";
            }
            s = skip_ws(s);
            if (*s == '=' && s[1] != '~') {
                s = skip_ws(s + 1);
                if (*s != '"' && *s != '\'' && *s != '`')
                    return "expected a quoted label value after '='";
                size_t vlen;
                char *value = read_quoted(p, &s, &vlen, &why);
                if (!value)
                    return why;
                if (!add_label(p, sr, &cap, name, nlen, value, vlen))
                    return "out of memory";
            } else if (quoted && (*s == ',' || *s == '}')) {
                /* A lone quoted string is the metric name (Prometheus 3 UTF-8 names). */
                if (!add_label(p, sr, &cap, "__name__", 8, name, nlen))
                    return "out of memory";
            } else {
                return "expected '=' after a label name (series lines only take '=')";
            }
            s = skip_ws(s);
            if (*s == ',')
                s = skip_ws(s + 1);
            else if (*s != '}')
                return "expected ',' or '}' in the label set";
        }
        s++;
    }
    if (*s && !is_space(*s))
        return "expected whitespace after the series' labels";
    labels_sort(sr->labels, sr->nlabels);
    struct vg_err err = {0};
    if (labels_check_unique(sr->labels, sr->nlabels, &err) != 0)
        return p_fmt(p, "%s", err.msg);
    *sp = s;
    return NULL;
}

static bool push_value(struct parser *p, struct tf_series *sr, size_t *cap, struct tf_value v)
{
    struct tf_value *slot = arr_push(p, (void **)&sr->vals, &sr->nvals, cap, sizeof *slot);
    if (!slot)
        return false;
    *slot = v;
    return true;
}

/* A non-negative integer; advances *sp. */
static bool read_uint(const char **sp, uint64_t *out)
{
    const char *s = *sp;
    if (!is_digit(*s))
        return false;
    uint64_t n = 0;
    while (is_digit(*s)) {
        if (n > 100000000)
            return false; /* no test writes more; refuse what would exhaust memory */
        n = n * 10 + (uint64_t)(*s++ - '0');
    }
    *out = n;
    *sp = s;
    return true;
}

/* A number as the series lexer scans it: digits[.digits][e[+-]digits], or the words
 * Inf / NaN (any case). No sign (the caller handles it), no hex (Prometheus refuses hex
 * in series descriptions because 0x10 would be ambiguous). Advances *sp. */
static bool read_number(const char **sp, double *out)
{
    const char *s = *sp;
    if (is_alpha(*s)) {
        const char *w = s;
        while (is_alnum(*s))
            s++;
        size_t n = (size_t)(s - w);
        if (n == 3 && strncasecmp(w, "inf", 3) == 0)
            *out = INFINITY;
        else if (n == 3 && strncasecmp(w, "nan", 3) == 0)
            *out = NAN;
        else
            return false;
        *sp = s;
        return true;
    }
    const char *n0 = s;
    while (is_digit(*s))
        s++;
    if (*s == '.') {
        s++;
        while (is_digit(*s))
            s++;
    }
    if (s == n0 || (s == n0 + 1 && *n0 == '.'))
        return false;
    if (*s == 'e' || *s == 'E') {
        const char *e = s + 1;
        if (*e == '+' || *e == '-')
            e++;
        if (!is_digit(*e))
            return false;
        while (is_digit(*e))
            e++;
        s = e;
    }
    if (is_alnum(*s) && *s != 'x')
        return false;
    char buf[64];
    size_t len = (size_t)(s - n0);
    if (len >= sizeof buf)
        return false;
    memcpy(buf, n0, len);
    buf[len] = 0;
    *out = strtod(buf, NULL);
    *sp = s;
    return true;
}

/* Skips one `{{...}}` native histogram at *sp. */
static bool skip_histogram(const char **sp)
{
    const char *e = strstr(*sp, "}}");
    if (!e)
        return false;
    *sp = e + 2;
    return true;
}

/* One whitespace-separated item of a value sequence (a histogram may hold spaces). */
static const char *parse_item(struct parser *p, const char **sp, struct tf_series *sr,
                              size_t *cap)
{
    const char *s = *sp;
    uint64_t n = 0;
    struct tf_value v = {0};
    if (s[0] == '{' && s[1] == '{') {
        if (!skip_histogram(&s))
            return "unterminated native histogram '{{'";
        n = 0;
        if ((*s == '+' || *s == '-') && s[1] == '{' && s[2] == '{') {
            s++;
            if (!skip_histogram(&s) || *s != 'x')
                return "expected 'x<count>' after a histogram increment";
        }
        if (*s == 'x') {
            s++;
            if (!read_uint(&s, &n))
                return "expected a count after 'x'";
        }
        v.histogram = true;
        sr->has_histogram = true;
        for (uint64_t k = 0; k <= n; k++)
            if (!push_value(p, sr, cap, v))
                return "out of memory";
    } else if (*s == '_') {
        s++;
        n = 1;
        if (*s == 'x') {
            s++;
            if (!read_uint(&s, &n))
                return "expected a count after '_x'";
        }
        v.omitted = true;
        for (uint64_t k = 0; k < n; k++)
            if (!push_value(p, sr, cap, v))
                return "out of memory";
    } else {
        double a;
        if (strncmp(s, "stale", 5) == 0 && !is_alnum(s[5])) {
            uint64_t bits = TSDB_STALE_NAN_BITS;
            memcpy(&a, &bits, sizeof a);
            s += 5;
        } else {
            bool neg = false;
            if (*s == '+' || *s == '-')
                neg = *s++ == '-';
            if (!read_number(&s, &a))
                return "expected a number, '_', 'stale' or '{{' in the values";
            if (neg)
                a = -a;
        }
        double b = 0;
        bool incr = false;
        if (*s == '+' || *s == '-') {
            bool neg = *s++ == '-';
            if (!read_number(&s, &b))
                return "expected a number after '+' or '-' in a value";
            if (neg)
                b = -b;
            incr = true;
            if (*s != 'x')
                return "expected 'x<count>' after 'a+b' in a value";
        }
        if (*s == 'x') {
            s++;
            if (!read_uint(&s, &n))
                return "expected a count after 'x'";
        }
        v.v = a;
        if (!push_value(p, sr, cap, v))
            return "out of memory";
        for (uint64_t k = 1; k <= n; k++) {
            if (incr)
                v.v += b; /* repeated addition, as Prometheus, so rounding matches */
            if (!push_value(p, sr, cap, v))
                return "out of memory";
        }
    }
    if (*s && !is_space(*s))
        return p_fmt(p, "unexpected character '%c' in the values", *s);
    *sp = s;
    return NULL;
}

/* Parses `<labels> <values>` into *sr; returns NULL or why the line is malformed. */
static const char *parse_series(struct parser *p, const char *line, struct tf_series *sr)
{
    memset(sr, 0, sizeof *sr);
    const char *s = line;
    const char *why = parse_labels(p, &s, sr);
    if (why)
        return why;
    size_t cap = 0;
    for (s = skip_ws(s); *s; s = skip_ws(s)) {
        why = parse_item(p, &s, sr, &cap);
        if (why)
            return why;
    }
    return NULL;
}

/* Adds sr to the array; a series with the same labels replaces the earlier one, as the
 * harness keys series by their label hash. */
static bool put_series(struct parser *p, struct tf_series **arr, size_t *n, size_t *cap,
                       const struct tf_series *sr)
{
    for (size_t i = 0; i < *n; i++) {
        if (labels_cmp((*arr)[i].labels, (*arr)[i].nlabels, sr->labels, sr->nlabels) == 0) {
            (*arr)[i] = *sr;
            return true;
        }
    }
    struct tf_series *slot = arr_push(p, (void **)arr, n, cap, sizeof *slot);
    if (!slot)
        return false;
    *slot = *sr;
    return true;
}

/* ---- commands ---- */

/* Index of the last line of the block that starts at i (the line before a blank one). */
static size_t block_end(struct parser *p, size_t i)
{
    while (i + 1 < p->nlines && p->lines[i + 1][0])
        i++;
    return i;
}

static size_t parse_load(struct parser *p, size_t i, struct tf_cmd *cmd)
{
    cmd->kind = TF_LOAD;
    const char *s = p->lines[i];
    size_t wl;
    const char *w = word_at(s, &wl);
    cmd->load.nhcb = word_is(w, wl, "load_with_nhcb");
    s = skip_ws(w + wl);
    size_t sl;
    const char *step = word_at(s, &sl);
    struct vg_err err = {0};
    if ((!cmd->load.nhcb && !word_is(w, wl, "load")) || sl == 0 || *skip_ws(step + sl)) {
        cmd->error = p_fmt(p, "invalid load command (load[_with_nhcb] <step:duration>)");
        return block_end(p, i);
    }
    if (tf_parse_time(step, sl, &cmd->load.step_ms, &err) != 0) {
        cmd->error = p_fmt(p, "invalid step definition \"%.*s\": %s", (int)sl, step, err.msg);
        return block_end(p, i);
    }
    size_t cap = 0;
    while (i + 1 < p->nlines && p->lines[i + 1][0]) {
        i++;
        struct tf_series sr;
        const char *why = parse_series(p, p->lines[i], &sr);
        if (!why && sr.nlabels == 0)
            why = "a loaded series needs labels";
        if (why) {
            cmd->error = p_fmt(p, "line %zu: %s", i + 1, why);
            return block_end(p, i);
        }
        sr.line = (int)i + 1;
        if (!put_series(p, &cmd->load.series, &cmd->load.nseries, &cap, &sr))
            return block_end(p, i);
    }
    return i;
}

/* `expect <kind> [msg:<text>|regex:<re>]`. */
static const char *parse_expect(struct parser *p, const char *line, struct tf_eval *e,
                                size_t *cap)
{
    static const struct {
        const char *word;
        enum tf_expect_kind kind;
    } kinds[] = {
        { "ordered", TF_EXPECT_ORDERED }, { "fail", TF_EXPECT_FAIL },
        { "warn", TF_EXPECT_WARN },       { "no_warn", TF_EXPECT_NO_WARN },
        { "info", TF_EXPECT_INFO },       { "no_info", TF_EXPECT_NO_INFO },
    };
    const char *s = skip_ws(line + 6);
    size_t wl;
    const char *w = word_at(s, &wl);
    size_t k;
    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (word_is(w, wl, kinds[k].word))
            break;
    if (k == sizeof kinds / sizeof kinds[0] || w == line + 6)
        return "invalid expect statement, must match `expect <type> <match_type>: <string>`";
    struct tf_expect x = { .kind = kinds[k].kind };
    s = w + wl;
    if (*s) {
        s = skip_ws(s);
        const char *arg;
        bool is_regex;
        if (has_prefix(s, "msg:"))
            arg = s + 4, is_regex = false;
        else if (has_prefix(s, "regex:"))
            arg = s + 6, is_regex = true;
        else
            return "invalid expect statement: expected msg: or regex: after the type";
        arg = skip_ws(arg);
        size_t alen = strlen(arg);
        while (alen && is_space(arg[alen - 1]))
            alen--;
        if (alen == 0)
            return "invalid expect statement: empty msg:/regex:";
        char *text = p_strndup(p, arg, alen);
        if (!text)
            return "out of memory";
        if (is_regex) {
            if (tf_regex_search(text, "") < 0)
                return p_fmt(p, "invalid regex %s", text);
            x.regex = text;
        } else {
            x.msg = text;
        }
    }
    /* The harness refuses contradictory or repeated expectations. */
    for (size_t j = 0; j < e->nexpects; j++) {
        enum tf_expect_kind o = e->expects[j].kind;
        if ((o == TF_EXPECT_INFO && x.kind == TF_EXPECT_NO_INFO) ||
            (o == TF_EXPECT_NO_INFO && x.kind == TF_EXPECT_INFO))
            return "invalid expect lines, info and no_info cannot be used together";
        if ((o == TF_EXPECT_WARN && x.kind == TF_EXPECT_NO_WARN) ||
            (o == TF_EXPECT_NO_WARN && x.kind == TF_EXPECT_WARN))
            return "invalid expect lines, warn and no_warn cannot be used together";
        if (o == TF_EXPECT_FAIL && x.kind == TF_EXPECT_FAIL)
            return "invalid expect lines, multiple expect fail lines are not allowed";
    }
    struct tf_expect *slot = arr_push(p, (void **)&e->expects, &e->nexpects, cap, sizeof *slot);
    if (!slot)
        return "out of memory";
    *slot = x;
    return NULL;
}

/* Reads "from <t> to <t> step <d>" at s into the eval's range fields; *rest gets what
 * follows the step (the expression for `eval range`). */
static const char *parse_from_to_step(struct parser *p, const char *s, struct tf_eval *e,
                                      const char **rest)
{
    static const char *const kw[3] = { "from", "to", "step" };
    int64_t *dst[3] = { &e->start_ms, &e->end_ms, &e->step_ms };
    for (int k = 0; k < 3; k++) {
        size_t wl, tl;
        const char *w = word_at(skip_ws(s), &wl);
        if (!word_is(w, wl, kw[k]))
            return p_fmt(p, "expected '%s'", kw[k]);
        const char *t = word_at(skip_ws(w + wl), &tl);
        struct vg_err err = {0};
        if (tf_parse_time(t, tl, dst[k], &err) != 0)
            return p_fmt(p, "invalid %s \"%.*s\": %s", kw[k], (int)tl, t, err.msg);
        s = t + tl;
    }
    if (e->end_ms < e->start_ms)
        return "invalid test definition, end timestamp is before start timestamp";
    if (e->step_ms <= 0)
        return "invalid step: must be positive";
    *rest = s;
    return NULL;
}

/* One line of an eval block; *stop set when the line ends the block (a scalar). */
static const char *parse_eval_line(struct parser *p, const char *line, struct tf_eval *e,
                                   size_t *xcap, size_t *scap, bool *stop)
{
    size_t wl;
    const char *w = word_at(line, &wl);
    if (has_prefix(line, "expect range vector")) {
        const char *rest = NULL;
        const char *why = parse_from_to_step(p, line + 19, e, &rest);
        if (why)
            return why;
        if (*skip_ws(rest))
            return "unexpected text after expect range vector ... step <d>";
        e->expect_range_vector = true;
        e->at_ms = e->end_ms;
        return NULL;
    }
    if (has_prefix(line, "expect string")) {
        const char *s = line + 13;
        if (*s != ' ' || !s[1])
            return "expected string literal not valid - a quoted string literal is required";
        s++;
        const char *why = NULL;
        if (*s != '"' && *s != '`' && *s != '\'')
            return "expected string literal not valid - check that the string is correctly quoted";
        e->string = read_quoted(p, &s, &e->string_len, &why);
        if (!e->string)
            return why;
        if (*s)
            return "expected string literal not valid - check that the string is correctly quoted";
        e->expect_string = true;
        return NULL;
    }
    if (word_is(w, wl, "expect"))
        return parse_expect(p, line, e, xcap);
    double v;
    if (tf_parse_number(line, strlen(line), &v)) {
        e->expect_scalar = true;
        e->scalar = v;
        *stop = true;
        return NULL;
    }
    struct tf_series sr;
    const char *why = parse_series(p, line, &sr);
    if (why)
        return why;
    if (sr.nvals > 1 && !e->range && !e->expect_range_vector)
        return "expecting multiple values in instant evaluation not allowed. consider using "
               "'expect range vector' directive to enable a range vector result for an "
               "instant query";
    if (sr.nvals == 0)
        return "an expected series needs a value";
    if (sr.has_histogram)
        e->has_histogram = true;
    if (!put_series(p, &e->series, &e->nseries, scap, &sr))
        return "out of memory";
    return NULL;
}

static size_t parse_eval(struct parser *p, size_t i, struct tf_cmd *cmd)
{
    cmd->kind = TF_EVAL;
    struct tf_eval *e = &cmd->eval;
    const char *s = p->lines[i];
    size_t wl;
    const char *w = word_at(s, &wl);
    const char *mod = wl > 4 && w[4] == '_' ? w + 5 : "";
    size_t modlen = wl > 5 ? wl - 5 : 0;
    bool known = word_is(w, wl, "eval") ||
                 (wl > 5 && memcmp(w, "eval_", 5) == 0 &&
                  (word_is(mod, modlen, "fail") || word_is(mod, modlen, "warn") ||
                   word_is(mod, modlen, "info") || word_is(mod, modlen, "ordered")));
    if (!known)
        goto bad_header;
    e->fail = word_is(mod, modlen, "fail");
    e->warn = word_is(mod, modlen, "warn");
    e->info = word_is(mod, modlen, "info");
    e->ordered = word_is(mod, modlen, "ordered");

    size_t kl;
    const char *kind = word_at(skip_ws(w + wl), &kl);
    const char *rest = NULL;
    if (word_is(kind, kl, "instant")) {
        size_t al, tl;
        const char *at = word_at(skip_ws(kind + kl), &al);
        if (!word_is(at, al, "at"))
            goto bad_header;
        const char *t = word_at(skip_ws(at + al), &tl);
        struct vg_err err = {0};
        if (tf_parse_time(t, tl, &e->at_ms, &err) != 0) {
            cmd->error = p_fmt(p, "invalid timestamp definition \"%.*s\": %s", (int)tl, t, err.msg);
            return block_end(p, i);
        }
        rest = t + tl;
    } else if (word_is(kind, kl, "range") && !e->ordered) {
        e->range = true;
        const char *why = parse_from_to_step(p, kind + kl, e, &rest);
        if (why) {
            cmd->error = why;
            return block_end(p, i);
        }
    } else {
        goto bad_header;
    }
    rest = skip_ws(rest);
    if (!*rest || !is_space(rest[-1]))
        goto bad_header;
    e->expr = p_strndup(p, rest, strlen(rest));
    if (!e->expr)
        return block_end(p, i);

    size_t xcap = 0, scap = 0;
    while (i + 1 < p->nlines && p->lines[i + 1][0]) {
        i++;
        bool stop = false;
        const char *why = parse_eval_line(p, p->lines[i], e, &xcap, &scap, &stop);
        if (why) {
            cmd->error = p_fmt(p, "line %zu: %s", i + 1, why);
            return block_end(p, i);
        }
        if (stop)
            break;
    }
    if (e->expect_scalar && e->nseries)
        cmd->error = p_fmt(p, "a scalar and series cannot both be expected");
    return i;

bad_header:
    cmd->error = p_fmt(p, "invalid evaluation command. Must be either 'eval[_fail|_warn|_info|"
                          "_ordered] instant at <time> <query>' or 'eval[_fail|_warn|_info] "
                          "range from <from> to <to> step <step> <query>'");
    if (!e->expr)
        e->expr = p_strndup(p, p->lines[i], strlen(p->lines[i]));
    return block_end(p, i);
}

/* Splits text into trimmed NUL-terminated lines in the arena; '#' lines become "". */
static bool split_lines(struct parser *p, const char *text, size_t len)
{
    size_t cap = 0;
    size_t pos = 0;
    while (pos <= len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t a = pos, b = end;
        while (a < b && is_space(text[a]))
            a++;
        while (b > a && (is_space(text[b - 1]) || text[b - 1] == '\0'))
            b--;
        if (a < b && text[a] == '#')
            b = a;
        char **slot = arr_push(p, (void **)&p->lines, &p->nlines, &cap, sizeof *slot);
        if (!slot)
            return false;
        *slot = p_strndup(p, text + a, b - a);
        if (!*slot)
            return false;
        if (!nl)
            break;
        pos = end + 1;
    }
    return true;
}

struct tf_file *tf_parse(const char *text, size_t len, struct vg_err *err)
{
    struct parser p = {0};
    p.a = vg_arena_new((size_t)64 * 1024);
    p.f = p.a ? vg_arena_calloc(p.a, sizeof *p.f) : NULL;
    if (!p.f) {
        vg_arena_free(p.a);
        vg_err_set(err, VG_ENOMEM, "out of memory parsing a test file");
        return NULL;
    }
    p.f->arena = p.a;
    if (!split_lines(&p, text, len))
        goto oom;
    for (size_t i = 0; i < p.nlines && !p.oom; i++) {
        const char *l = p.lines[i];
        if (!l[0])
            continue;
        struct tf_cmd *cmd = arr_push(&p, (void **)&p.f->cmds, &p.f->ncmds, &p.cap_cmds,
                                      sizeof *cmd);
        if (!cmd)
            goto oom;
        cmd->line = (int)i + 1;
        size_t wl;
        const char *w = word_at(l, &wl);
        char lw[16] = {0};
        for (size_t k = 0; k < wl && k + 1 < sizeof lw; k++)
            lw[k] = (char)tolower((unsigned char)w[k]);
        if (strcmp(lw, "clear") == 0 && wl == 5) {
            cmd->kind = TF_CLEAR;
        } else if (has_prefix(lw, "load")) {
            i = parse_load(&p, i, cmd);
        } else if (has_prefix(lw, "eval")) {
            i = parse_eval(&p, i, cmd);
        } else {
            cmd->kind = TF_EVAL;
            cmd->eval.expr = p_strndup(&p, l, strlen(l));
            cmd->error = p_fmt(&p, "invalid command \"%s\"", l);
            i = block_end(&p, i);
        }
    }
    if (p.oom)
        goto oom;
    return p.f;
oom:
    vg_arena_free(p.a);
    vg_err_set(err, VG_ENOMEM, "out of memory parsing a test file");
    return NULL;
}

void tf_free(struct tf_file *f)
{
    if (f)
        vg_arena_free(f->arena);
}

bool tf_eval_is_fail(const struct tf_eval *e)
{
    return e->fail || tf_eval_fail_expect(e) != NULL;
}

bool tf_eval_is_ordered(const struct tf_eval *e)
{
    if (e->ordered)
        return true;
    for (size_t i = 0; i < e->nexpects; i++)
        if (e->expects[i].kind == TF_EXPECT_ORDERED)
            return true;
    return false;
}

const struct tf_expect *tf_eval_fail_expect(const struct tf_eval *e)
{
    for (size_t i = 0; i < e->nexpects; i++)
        if (e->expects[i].kind == TF_EXPECT_FAIL)
            return &e->expects[i];
    return NULL;
}
