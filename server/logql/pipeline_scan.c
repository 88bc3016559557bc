/* pipeline_scan: byte scanners for LogQL's pipeline stages (see pipeline_scan.h).
 *
 * The JSON scanner is deliberately as lenient as the jsonparser package Loki uses:
 * numbers are any run of number characters, content after the top-level object is
 * ignored, and strings are only checked for their closing quote (escapes are checked
 * when a value is unescaped). Depth is bounded by LQSCAN_MAX_DEPTH so a hostile line
 * cannot exhaust the stack. */
#include "pipeline_scan.h"

#include "../../storage/base/vg_alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ---- */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
static bool is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

void lqscan_sanitize(struct vg_buf *b, struct vg_str key)
{
    const unsigned char *s = (const unsigned char *)key.p;
    size_t i = 0, n = key.len;
    while (i < n && is_space(s[i]))
        i++;
    while (n > i && is_space(s[n - 1]))
        n--;
    if (i == n)
        return;
    if (b->len == 0 && is_digit(s[i]))
        vg_buf_putc(b, '_');
    while (i < n) {
        size_t run = i; /* plain characters go in one append: keys are mostly plain */
        while (run < n && (is_alpha(s[run]) || is_digit(s[run]) || s[run] == '_'))
            run++;
        if (run > i) {
            vg_buf_append(b, key.p + i, run - i);
            i = run;
            continue;
        }
        unsigned c = s[i];
        size_t l = c < 0x80 ? 1 : utf8_len(s + i, n - i);
        vg_buf_putc(b, '_');
        i += l ? l : 1;
    }
}

bool lqscan_valid_label_name(struct vg_str s)
{
    if (s.len == 0 || !(is_alpha(s.p[0]) || s.p[0] == '_'))
        return false;
    for (size_t i = 1; i < s.len; i++)
        if (!(is_alpha(s.p[i]) || is_digit(s.p[i]) || s.p[i] == '_'))
            return false;
    return true;
}

size_t lqscan_fix_utf8(char *s, size_t len)
{
    size_t r = 0, w = 0;
    while (r < len) {
        const unsigned char *u = (const unsigned char *)s + r;
        if (*u < 0x80) {
            s[w++] = s[r++];
            continue;
        }
        size_t l = utf8_len(u, len - r);
        if (l == 0 || (l == 3 && u[0] == 0xEF && u[1] == 0xBF && u[2] == 0xBD)) {
            s[w++] = ' ';
            r += l ? l : 1;
            continue;
        }
        memmove(s + w, s + r, l);
        w += l;
        r += l;
    }
    return w;
}

/* ---- JSON ---- */

struct jw {
    const char *p;
    size_t n, i;
    int depth;
    struct vg_err *err;
};

static int jerr(struct jw *w, const char *what)
{
    vg_err_set(w->err, VG_EINVAL, "%s at offset %zu", what, w->i);
    return LQSCAN_SYNTAX;
}

static void jws(struct jw *w)
{
    while (w->i < w->n && (w->p[w->i] == ' ' || w->p[w->i] == '\t' || w->p[w->i] == '\n' ||
                           w->p[w->i] == '\r'))
        w->i++;
}

static int jpeek(const struct jw *w) { return w->i < w->n ? (unsigned char)w->p[w->i] : -1; }

/* At '"': the bytes up to the closing quote. */
static int jstring(struct jw *w, struct vg_str *raw)
{
    size_t start = ++w->i;
    while (w->i < w->n && w->p[w->i] != '"')
        w->i += w->p[w->i] == '\\' ? 2 : 1;
    if (w->i >= w->n) {
        w->i = start - 1;
        return jerr(w, "unterminated string");
    }
    *raw = (struct vg_str){ w->p + start, w->i - start };
    w->i++;
    return 0;
}

static bool jword(struct jw *w, const char *word)
{
    size_t l = strlen(word);
    if (w->n - w->i < l || memcmp(w->p + w->i, word, l) != 0)
        return false;
    w->i += l;
    return true;
}

static int jvalue(struct jw *w, enum lqscan_json_kind *kind, struct vg_str *raw);

struct jwalk {
    lqscan_json_fn fn;
    void *ud;
    struct vg_buf *keybuf; /* NULL: report the members of this object only */
};


static int jobject(struct jw *w, const struct jwalk *c, size_t plen);

/* At '[': validates the array up to its closing bracket. */
static int jarray(struct jw *w)
{
    if (++w->depth > LQSCAN_MAX_DEPTH)
        return jerr(w, "too deeply nested");
    w->i++;
    jws(w);
    if (jpeek(w) == ']') {
        w->i++;
        w->depth--;
        return 0;
    }
    for (;;) {
        enum lqscan_json_kind k;
        struct vg_str raw;
        jws(w);
        int rc = jvalue(w, &k, &raw);
        if (rc)
            return rc;
        jws(w);
        if (jpeek(w) == ',') {
            w->i++;
            continue;
        }
        if (jpeek(w) == ']') {
            w->i++;
            w->depth--;
            return 0;
        }
        return jerr(w, "expected ',' or ']'");
    }
}

static int skip_member(void *ud, struct vg_str key, enum lqscan_json_kind kind, struct vg_str raw)
{
    (void)ud, (void)key, (void)kind, (void)raw;
    return 0;
}

static int jvalue(struct jw *w, enum lqscan_json_kind *kind, struct vg_str *raw)
{
    size_t start = w->i;
    int c = jpeek(w);
    int rc = 0;
    if (c == '"') {
        *kind = LQJ_STRING;
        return jstring(w, raw);
    }
    if (c == '{') {
        static const struct jwalk skip = { skip_member, NULL, NULL };
        *kind = LQJ_OBJECT;
        rc = jobject(w, &skip, 0);
    } else if (c == '[') {
        *kind = LQJ_ARRAY;
        rc = jarray(w);
    } else if (c == '-' || is_digit(c)) {
        *kind = LQJ_NUMBER;
        while (w->i < w->n && (is_digit(w->p[w->i]) || strchr("+-.eE", w->p[w->i])))
            w->i++;
    } else if (jword(w, "true")) {
        *kind = LQJ_TRUE;
    } else if (jword(w, "false")) {
        *kind = LQJ_FALSE;
    } else if (jword(w, "null")) {
        *kind = LQJ_NULL;
    } else {
        return jerr(w, c < 0 ? "unexpected end of input" : "unknown value type");
    }
    *raw = (struct vg_str){ w->p + start, w->i - start };
    return rc;
}

/* At '{': reports members per c; plen is the length of the key prefix in keybuf. */
static int jobject(struct jw *w, const struct jwalk *c, size_t plen)
{
    if (++w->depth > LQSCAN_MAX_DEPTH)
        return jerr(w, "too deeply nested");
    w->i++;
    jws(w);
    if (jpeek(w) == '}') {
        w->i++;
        w->depth--;
        return 0;
    }
    for (;;) {
        struct vg_str key, raw;
        enum lqscan_json_kind k;
        int rc;
        jws(w);
        if (jpeek(w) != '"')
            return jerr(w, "expected a key");
        if ((rc = jstring(w, &key)) != 0)
            return rc;
        jws(w);
        if (jpeek(w) != ':')
            return jerr(w, "expected ':'");
        w->i++;
        jws(w);
        if (c->keybuf && jpeek(w) == '{') {
            c->keybuf->len = plen;
            if (plen)
                vg_buf_putc(c->keybuf, '_');
            lqscan_sanitize(c->keybuf, key);
            if (vg_buf_failed(c->keybuf))
                return VG_ENOMEM;
            if ((rc = jobject(w, c, c->keybuf->len)) != 0)
                return rc;
        } else {
            if ((rc = jvalue(w, &k, &raw)) != 0)
                return rc;
            if (!c->keybuf) {
                rc = c->fn(c->ud, key, k, raw);
            } else if (k == LQJ_STRING || k == LQJ_NUMBER || k == LQJ_TRUE || k == LQJ_FALSE) {
                c->keybuf->len = plen;
                if (plen)
                    vg_buf_putc(c->keybuf, '_');
                size_t before = c->keybuf->len;
                lqscan_sanitize(c->keybuf, key);
                if (vg_buf_failed(c->keybuf))
                    return VG_ENOMEM;
                if (c->keybuf->len > before)
                    rc = c->fn(c->ud, (struct vg_str){ c->keybuf->p, c->keybuf->len }, k, raw);
            }
            if (rc)
                return rc;
        }
        jws(w);
        if (jpeek(w) == ',') {
            w->i++;
            continue;
        }
        if (jpeek(w) == '}') {
            w->i++;
            w->depth--;
            return 0;
        }
        return jerr(w, "expected ',' or '}'");
    }
}

static int jtop(struct vg_str s, const struct jwalk *c, struct vg_err *err)
{
    struct jw w = { s.p, s.len, 0, 0, err };
    jws(&w);
    if (jpeek(&w) != '{')
        return jerr(&w, "value is not an object");
    return jobject(&w, c, 0);
}

int lqscan_json_flatten(struct vg_str s, struct vg_buf *keybuf, lqscan_json_fn fn, void *ud,
                        struct vg_err *err)
{
    vg_buf_reset(keybuf);
    struct jwalk c = { fn, ud, keybuf };
    return jtop(s, &c, err);
}

int lqscan_json_members(struct vg_str s, lqscan_json_fn fn, void *ud, struct vg_err *err)
{
    struct jwalk c = { fn, ud, NULL };
    return jtop(s, &c, err);
}

static bool field_char(int c)
{
    return is_alpha(c) || is_digit(c) || c == '_' || c == '-' || c >= 0x80;
}

int lqscan_json_path_parse(struct vg_str e, struct lqscan_json_step *steps, size_t cap,
                           struct vg_err *err)
{
    size_t i = 0, n = 0;
    const char *p = e.p;
    if (e.len == 0)
        goto bad;
    while (i < e.len) {
        struct lqscan_json_step st = { 0 };
        if (p[i] == '.' && (n > 0 || i == 0)) /* a separator, or a leading dot */
            i++;
        if (i < e.len && p[i] == '[') {
            i++;
            if (i < e.len && p[i] == '"') {
                size_t k0 = ++i;
                while (i < e.len && p[i] != '"' && p[i] != '\\')
                    i++;
                if (i >= e.len || p[i] != '"')
                    goto bad;
                st.key = (struct vg_str){ p + k0, i - k0 };
                i++;
            } else {
                size_t d0 = i;
                while (i < e.len && is_digit(p[i])) {
                    if (st.index > (SIZE_MAX - 9) / 10)
                        goto bad;
                    st.index = st.index * 10 + (size_t)(p[i] - '0');
                    i++;
                }
                if (i == d0)
                    goto bad;
                st.is_index = true;
            }
            if (i >= e.len || p[i] != ']')
                goto bad;
            i++;
        } else {
            size_t k0 = i;
            while (i < e.len && field_char((unsigned char)p[i]))
                i++;
            if (i == k0)
                goto bad;
            st.key = (struct vg_str){ p + k0, i - k0 };
        }
        if (n == cap) {
            vg_err_set(err, VG_EINVAL, "json expression [%.*s]: more than %zu steps",
                       (int)e.len, e.p, cap);
            return VG_EINVAL;
        }
        steps[n++] = st;
        if (i < e.len && p[i] != '.' && p[i] != '[')
            goto bad;
        if (i < e.len && p[i] == '.' && i + 1 == e.len)
            goto bad;
    }
    return (int)n;
bad:
    vg_err_set(err, VG_EINVAL, "cannot parse expression [%.*s]: syntax error at offset %zu",
               (int)e.len, e.p, i);
    return VG_EINVAL;
}

/* Compares a JSON key as written (raw, escapes in) with a plain key. */
static bool jkey_eq(struct vg_str raw, struct vg_str key)
{
    if (!memchr(raw.p, '\\', raw.len))
        return vg_str_eq(raw, key);
    char tmp[256];
    if (raw.len > sizeof tmp)
        return false;
    long l = lqscan_json_unescape(raw, tmp);
    return l >= 0 && (size_t)l == key.len && memcmp(tmp, key.p, key.len) == 0;
}

int lqscan_json_path(struct vg_str s, const struct lqscan_json_step *steps, size_t nsteps,
                     enum lqscan_json_kind *kind, struct vg_str *raw, struct vg_err *err)
{
    struct jw w = { s.p, s.len, 0, 0, err };
    int rc;
    jws(&w);
    for (size_t d = 0; d < nsteps; d++) {
        const struct lqscan_json_step *st = &steps[d];
        char open = st->is_index ? '[' : '{', close = st->is_index ? ']' : '}';
        if (jpeek(&w) != open)
            return 0;
        w.i++;
        for (size_t k = 0;; k++) {
            jws(&w);
            if (k == 0 && jpeek(&w) == close)
                return 0;
            struct vg_str key = { 0 }, r;
            enum lqscan_json_kind kd;
            if (!st->is_index) {
                if (jpeek(&w) != '"')
                    return jerr(&w, "expected a key");
                if ((rc = jstring(&w, &key)) != 0)
                    return rc;
                jws(&w);
                if (jpeek(&w) != ':')
                    return jerr(&w, "expected ':'");
                w.i++;
                jws(&w);
            }
            if (st->is_index ? k == st->index : jkey_eq(key, st->key))
                break; /* found: descend into its value */
            if ((rc = jvalue(&w, &kd, &r)) != 0)
                return rc;
            jws(&w);
            if (jpeek(&w) == ',') {
                w.i++;
                continue;
            }
            if (jpeek(&w) == close)
                return 0;
            return jerr(&w, "expected a separator");
        }
    }
    return (rc = jvalue(&w, kind, raw)) != 0 ? rc : 1;
}

static int hexval(int c)
{
    return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

static long hex4(const char *p, size_t left)
{
    if (left < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        if (!is_hex((unsigned char)p[i]))
            return -1;
        v = v * 16 + hexval((unsigned char)p[i]);
    }
    return v;
}

long lqscan_json_unescape(struct vg_str raw, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < raw.len; i++) {
        char c = raw.p[i];
        if (c != '\\') {
            out[w++] = c;
            continue;
        }
        if (++i >= raw.len)
            return -1;
        switch (raw.p[i]) {
        case '"': case '\\': case '/': case '\'': out[w++] = raw.p[i]; break;
        case 'b': out[w++] = '\b'; break;
        case 'f': out[w++] = '\f'; break;
        case 'n': out[w++] = '\n'; break;
        case 'r': out[w++] = '\r'; break;
        case 't': out[w++] = '\t'; break;
        case 'u': {
            long cp = hex4(raw.p + i + 1, raw.len - i - 1);
            if (cp < 0)
                return -1;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 2 < raw.len && raw.p[i + 1] == '\\' &&
                raw.p[i + 2] == 'u') {
                long lo = hex4(raw.p + i + 3, raw.len - i - 3);
                if (lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = 0xFFFD; /* a lone surrogate */
            w += put_utf8(out + w, (unsigned)cp);
            break;
        }
        default:
            return -1;
        }
    }
    return (long)w;
}

/* ---- logfmt ---- */

void lqscan_logfmt_init(struct lqscan_logfmt *d, struct vg_str line)
{
    memset(d, 0, sizeof *d);
    d->line = line;
}

static bool has_invalid_utf8(struct vg_str s)
{
    for (size_t i = 0; i < s.len;) {
        const unsigned char *u = (const unsigned char *)s.p + i;
        size_t l = utf8_len(u, s.len - i);
        if (l == 0 || (l == 3 && u[0] == 0xEF && u[1] == 0xBF && u[2] == 0xBD))
            return true;
        i += l;
    }
    return false;
}

/* Records an error at pos and skips the rest of the token, so scanning can go on. */
static int lf_fail(struct lqscan_logfmt *d, const char *why, size_t pos)
{
    d->why = why;
    d->err_pos = pos + 1;
    d->pos = pos + 1;
    while (d->pos < d->line.len && (unsigned char)d->line.p[d->pos] > ' ')
        d->pos++;
    return -1;
}

int lqscan_logfmt_next(struct lqscan_logfmt *d)
{
    const char *s = d->line.p;
    size_t n = d->line.len;
    d->key = d->value = (struct vg_str){ NULL, 0 };
    d->escaped = false;
    while (d->pos < n && (unsigned char)s[d->pos] <= ' ')
        d->pos++;
    if (d->pos >= n)
        return 0;
    size_t start = d->pos;
    bool multibyte = false;
    while (d->pos < n) {
        unsigned char c = (unsigned char)s[d->pos];
        if (c == '=' || c <= ' ')
            break;
        if (c == '"')
            return lf_fail(d, "unexpected '\"'", d->pos);
        if (c >= 0x80)
            multibyte = true;
        d->pos++;
    }
    if (d->pos > start) {
        d->key = (struct vg_str){ s + start, d->pos - start };
        if (multibyte && has_invalid_utf8(d->key))
            return lf_fail(d, "invalid key", d->pos);
    }
    if (d->pos >= n || s[d->pos] != '=')
        return 1; /* a bare key */
    if (d->key.len == 0)
        return lf_fail(d, "unexpected '='", d->pos);
    d->pos++;
    if (d->pos >= n || (unsigned char)s[d->pos] <= ' ')
        return 1;
    if (s[d->pos] != '"') {
        start = d->pos;
        while (d->pos < n && (unsigned char)s[d->pos] > ' ') {
            if (s[d->pos] == '=')
                return lf_fail(d, "unexpected '='", d->pos);
            if (s[d->pos] == '"')
                return lf_fail(d, "unexpected '\"'", d->pos);
            d->pos++;
        }
        d->value = (struct vg_str){ s + start, d->pos - start };
        return 1;
    }
    start = ++d->pos;
    bool esc = false;
    for (; d->pos < n; d->pos++) {
        if (esc) {
            esc = false;
        } else if (s[d->pos] == '\\') {
            esc = d->escaped = true;
        } else if (s[d->pos] == '"') {
            d->value = (struct vg_str){ s + start, d->pos - start };
            d->pos++;
            return 1;
        }
    }
    d->why = "unterminated quoted value";
    d->err_pos = n + 1;
    return -1;
}

/* ---- patterns ---- */

struct pnode {
    bool capture;
    bool named;
    struct vg_str text; /* literal bytes, or the capture's name */
};

struct lqscan_pattern {
    struct pnode *nodes;
    size_t n;
    char *src; /* owned copy the nodes point into */
};

void lqscan_pattern_free(struct lqscan_pattern *p)
{
    if (!p)
        return;
    vg_free(p->nodes);
    vg_free(p->src);
    vg_free(p);
}

/* Length of a capture `<ident>` at s, or 0. */
static size_t capture_len(const char *s, size_t n)
{
    if (n < 3 || s[0] != '<' || !(is_alpha(s[1]) || s[1] == '_'))
        return 0;
    size_t i = 2;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
        i++;
    return i < n && s[i] == '>' ? i + 1 : 0;
}

struct lqscan_pattern *lqscan_pattern_new(struct vg_str src, bool need_named,
                                          struct vg_err *err)
{
    struct lqscan_pattern *p = vg_calloc(1, sizeof *p);
    if (!p || !(p->src = vg_malloc(src.len + 1)) ||
        !(p->nodes = vg_calloc(src.len + 1, sizeof *p->nodes))) {
        lqscan_pattern_free(p);
        vg_err_set(err, VG_ENOMEM, "pattern: out of memory");
        return NULL;
    }
    if (src.len)
        memcpy(p->src, src.p, src.len);
    p->src[src.len] = 0;
    size_t named = 0;
    for (size_t i = 0; i < src.len;) {
        size_t cl = capture_len(p->src + i, src.len - i);
        if (cl) {
            struct pnode *nd = &p->nodes[p->n++];
            nd->capture = true;
            nd->text = (struct vg_str){ p->src + i + 1, cl - 2 };
            nd->named = !vg_str_eq_c(nd->text, "_");
            if (p->n > 1 && p->nodes[p->n - 2].capture) {
                vg_err_set(err, VG_EINVAL, "found consecutive capture '<%.*s>': invalid expression",
                           (int)nd->text.len, nd->text.p);
                goto fail;
            }
            for (size_t j = 0; nd->named && j + 1 < p->n; j++)
                if (p->nodes[j].named && vg_str_eq(p->nodes[j].text, nd->text)) {
                    vg_err_set(err, VG_EINVAL, "duplicate capture name (%.*s): invalid expression",
                               (int)nd->text.len, nd->text.p);
                    goto fail;
                }
            named += nd->named;
            i += cl;
            continue;
        }
        if (p->n == 0 || p->nodes[p->n - 1].capture)
            p->nodes[p->n++] = (struct pnode){ false, false, { p->src + i, 0 } };
        p->nodes[p->n - 1].text.len++;
        i++;
    }
    if (need_named && named == 0) {
        vg_err_set(err, VG_EINVAL, "at least one capture is required");
        goto fail;
    }
    return p;
fail:
    lqscan_pattern_free(p);
    return NULL;
}

/* Offset of needle in hay, or -1. */
static long find(struct vg_str hay, struct vg_str needle)
{
    if (needle.len == 0)
        return 0;
    if (hay.len < needle.len)
        return -1;
    const char *end = hay.p + hay.len - needle.len;
    for (const char *s = hay.p; s <= end; s++) {
        s = memchr(s, needle.p[0], (size_t)(end - s) + 1);
        if (!s)
            return -1;
        if (memcmp(s, needle.p, needle.len) == 0)
            return s - hay.p;
    }
    return -1;
}

static struct vg_str drop_front(struct vg_str s, size_t k)
{
    return (struct vg_str){ s.p + k, s.len - k };
}

int lqscan_pattern_match(const struct lqscan_pattern *p, struct vg_str in,
                         lqscan_capture_fn fn, void *ud)
{
    if (in.len == 0 || p->n == 0)
        return 0;
    size_t k = 0;
    if (!p->nodes[0].capture) {
        if (in.len < p->nodes[0].text.len ||
            memcmp(in.p, p->nodes[0].text.p, p->nodes[0].text.len) != 0)
            return 0;
        in = drop_front(in, p->nodes[0].text.len);
        k = 1;
    }
    while (k < p->n) {
        const struct pnode *cap = &p->nodes[k];
        if (k + 1 == p->n)
            return cap->named ? fn(ud, cap->text, in) : 0;
        struct vg_str lit = p->nodes[k + 1].text;
        long at = find(in, lit);
        if (at < 0)
            return cap->named ? fn(ud, cap->text, in) : 0;
        if (cap->named) {
            int rc = fn(ud, cap->text, (struct vg_str){ in.p, (size_t)at });
            if (rc)
                return rc;
        }
        in = drop_front(in, (size_t)at + lit.len);
        k += 2;
    }
    return 0;
}

bool lqscan_pattern_test(const struct lqscan_pattern *p, struct vg_str in)
{
    if (in.len == 0 || p->n == 0)
        return in.len == 0 && p->n == 0;
    size_t off = 0;
    for (size_t k = 0; k < p->n; k++) {
        if (p->nodes[k].capture)
            continue;
        long j = find(drop_front(in, off), p->nodes[k].text);
        if (j < 0 || (k == 0 && j != 0) || (k != 0 && j == 0))
            return false;
        off += (size_t)j + p->nodes[k].text.len;
    }
    bool ends_in_capture = p->nodes[p->n - 1].capture;
    return ends_in_capture == (off != in.len);
}

/* ---- ip ---- */

static int parse_addr(const char *s, size_t n, uint8_t out[16])
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    memset(out, 0, 16);
    if (memchr(tmp, ':', n))
        return inet_pton(AF_INET6, tmp, out) == 1 ? 6 : 0;
    return inet_pton(AF_INET, tmp, out) == 1 ? 4 : 0;
}

static bool addr_le(const uint8_t *a, const uint8_t *b, int family)
{
    return memcmp(a, b, family == 4 ? 4 : 16) <= 0;
}

int lqscan_ip_parse(struct vg_str pat, struct lqscan_ip *m, struct vg_err *err)
{
    memset(m, 0, sizeof *m);
    const char *slash = memchr(pat.p, '/', pat.len), *dash = memchr(pat.p, '-', pat.len);
    if ((m->family = parse_addr(pat.p, pat.len, m->lo)) != 0) {
        memcpy(m->hi, m->lo, 16);
        return 0;
    }
    if (slash) {
        size_t al = (size_t)(slash - pat.p), bl = pat.len - al - 1;
        int fam = parse_addr(pat.p, al, m->lo);
        unsigned bits = 0, max = fam == 4 ? 32 : 128;
        bool ok = fam && bl > 0 && bl <= 3 && !(bl > 1 && pat.p[al + 1] == '0');
        for (size_t i = 0; ok && i < bl; i++) {
            ok = is_digit(pat.p[al + 1 + i]);
            bits = bits * 10 + (unsigned)(pat.p[al + 1 + i] - '0');
        }
        if (ok && bits <= max) {
            m->family = fam;
            memcpy(m->hi, m->lo, 16);
            for (unsigned b = bits; b < max; b++) {
                m->lo[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
                m->hi[b / 8] |= (uint8_t)(0x80u >> (b % 8));
            }
            return 0;
        }
    } else if (dash) {
        size_t al = (size_t)(dash - pat.p);
        int fa = parse_addr(pat.p, al, m->lo);
        int fb = parse_addr(dash + 1, pat.len - al - 1, m->hi);
        if (fa && fa == fb && addr_le(m->lo, m->hi, fa)) {
            m->family = fa;
            return 0;
        }
    }
    m->family = 0;
    vg_err_set(err, VG_EINVAL, "ip: invalid pattern: \"%.*s\"", (int)pat.len, pat.p);
    return VG_EINVAL;
}

static size_t span(const char *s, size_t n, const char *set)
{
    size_t i = 0;
    while (i < n && s[i] && strchr(set, s[i]))
        i++;
    return i;
}

static bool ip_in(const struct lqscan_ip *m, const char *s, size_t n)
{
    uint8_t a[16];
    int fam = parse_addr(s, n, a);
    return fam == m->family && addr_le(m->lo, a, fam) && addr_le(a, m->hi, fam);
}

bool lqscan_ip_search(const struct lqscan_ip *m, struct vg_str line)
{
    const char *s = line.p;
    size_t n = line.len;
    for (size_t i = 0; i < n; i++) {
        const char *set = NULL;
        if (i + 3 < n && is_digit(s[i]) && (s[i + 1] == '.' || s[i + 2] == '.' || s[i + 3] == '.'))
            set = "0123456789.";
        else if (i + 4 < n &&
                 ((s[i] == ':' && s[i + 1] == ':' && is_hex(s[i + 2])) ||
                  (is_hex(s[i]) && s[i + 1] == ':') ||
                  (is_hex(s[i]) && is_hex(s[i + 1]) && s[i + 2] == ':') ||
                  (is_hex(s[i]) && is_hex(s[i + 1]) && is_hex(s[i + 2]) && s[i + 3] == ':') ||
                  (is_hex(s[i]) && is_hex(s[i + 1]) && is_hex(s[i + 2]) && is_hex(s[i + 3]) &&
                   s[i + 4] == ':')))
            set = "0123456789abcdefABCDEF:.";
        if (!set)
            continue;
        size_t l = span(s + i, n - i, set);
        if (ip_in(m, s + i, l))
            return true;
        i += l;
    }
    return false;
}

/* ---- conversions ---- */

static int float_err(struct vg_str s, const char *why, struct vg_err *err)
{
    vg_err_set(err, VG_EINVAL, "strconv.ParseFloat: parsing \"%.*s\": %s", (int)s.len, s.p, why);
    return LQSCAN_SYNTAX;
}

static bool ieq(struct vg_str s, size_t off, const char *w)
{
    size_t l = strlen(w);
    if (s.len - off != l)
        return false;
    for (size_t i = 0; i < l; i++)
        if ((s.p[off + i] | 0x20) != w[i])
            return false;
    return true;
}

/* Go's float syntax: decimal with optional exponent, hex with a 'p' exponent, inf,
 * infinity and nan (case-insensitive), an optional sign. */
static bool go_float_syntax(struct vg_str s)
{
    size_t i = 0;
    if (i < s.len && (s.p[i] == '+' || s.p[i] == '-'))
        i++;
    if (ieq(s, i, "inf") || ieq(s, i, "infinity") || (i == 0 && ieq(s, 0, "nan")))
        return true;
    bool hex = s.len - i > 2 && s.p[i] == '0' && (s.p[i + 1] | 0x20) == 'x';
    if (hex)
        i += 2;
    size_t digits = 0;
    bool dot = false;
    for (; i < s.len; i++) {
        if (s.p[i] == '.' && !dot)
            dot = true;
        else if (hex ? is_hex((unsigned char)s.p[i]) : is_digit(s.p[i]))
            digits++;
        else
            break;
    }
    if (digits == 0)
        return false;
    if (i < s.len && (s.p[i] | 0x20) == (hex ? 'p' : 'e')) {
        i++;
        if (i < s.len && (s.p[i] == '+' || s.p[i] == '-'))
            i++;
        size_t e0 = i;
        while (i < s.len && is_digit(s.p[i]))
            i++;
        if (i == e0)
            return false;
    } else if (hex) {
        return false;
    }
    return i == s.len;
}

int lqscan_float(struct vg_str s, double *v, struct vg_err *err)
{
    char tmp[128];
    if (!go_float_syntax(s) || s.len >= sizeof tmp)
        return float_err(s, "invalid syntax", err);
    memcpy(tmp, s.p, s.len);
    tmp[s.len] = 0;
    errno = 0;
    *v = strtod(tmp, NULL);
    if (errno == ERANGE && isinf(*v))
        return float_err(s, "value out of range", err);
    return 0;
}

int lqscan_duration(struct vg_str s, int64_t *out, struct vg_err *err)
{
    static const struct { const char *name; int64_t ns; } units[] = {
        { "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
        { "ms", 1000000 }, { "s", 1000000000 }, { "m", 60000000000 }, { "h", 3600000000000 },
    };
    size_t i = 0;
    bool neg = false;
    uint64_t d = 0;
    if (i < s.len && (s.p[i] == '-' || s.p[i] == '+'))
        neg = s.p[i++] == '-';
    if (s.len - i == 1 && s.p[i] == '0') {
        *out = 0;
        return 0;
    }
    if (i == s.len)
        goto invalid;
    while (i < s.len) {
        if (!(s.p[i] == '.' || is_digit(s.p[i])))
            goto invalid;
        uint64_t v = 0;
        size_t p0 = i;
        for (; i < s.len && is_digit(s.p[i]); i++) {
            if (v > (UINT64_MAX / 2 - 9) / 10)
                goto invalid;
            v = v * 10 + (uint64_t)(s.p[i] - '0');
        }
        bool pre = i > p0, post = false;
        double frac = 0, scale = 1;
        if (i < s.len && s.p[i] == '.') {
            size_t f0 = ++i;
            for (; i < s.len && is_digit(s.p[i]); i++) {
                if (scale < 1e18) {
                    frac = frac * 10 + (s.p[i] - '0');
                    scale *= 10;
                }
            }
            post = i > f0;
        }
        if (!pre && !post)
            goto invalid;
        size_t u0 = i;
        while (i < s.len && s.p[i] != '.' && !is_digit(s.p[i]))
            i++;
        if (i == u0) {
            vg_err_set(err, VG_EINVAL, "time: missing unit in duration \"%.*s\"", (int)s.len,
                       s.p);
            return LQSCAN_SYNTAX;
        }
        struct vg_str u = { s.p + u0, i - u0 };
        int64_t unit = 0;
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
            if (vg_str_eq_c(u, units[k].name))
                unit = units[k].ns;
        if (!unit) {
            vg_err_set(err, VG_EINVAL, "time: unknown unit \"%.*s\" in duration \"%.*s\"",
                       (int)u.len, u.p, (int)s.len, s.p);
            return LQSCAN_SYNTAX;
        }
        if (v > (uint64_t)INT64_MAX / (uint64_t)unit)
            goto invalid;
        v *= (uint64_t)unit;
        if (frac > 0) {
            v += (uint64_t)(frac * ((double)unit / scale));
            if (v > (uint64_t)INT64_MAX)
                goto invalid;
        }
        d += v;
        if (d > (uint64_t)INT64_MAX + (neg ? 1 : 0))
            goto invalid;
    }
    *out = neg ? (int64_t)(0 - d) : (int64_t)d;
    return 0;
invalid:
    vg_err_set(err, VG_EINVAL, "time: invalid duration \"%.*s\"", (int)s.len, s.p);
    return LQSCAN_SYNTAX;
}

int lqscan_bytes(struct vg_str s, uint64_t *out, struct vg_err *err)
{
    static const struct { const char *name; double mult; } table[] = {
        { "", 1 }, { "b", 1 },
        { "k", 1e3 }, { "kb", 1e3 }, { "ki", 1024.0 }, { "kib", 1024.0 },
        { "m", 1e6 }, { "mb", 1e6 }, { "mi", 1048576.0 }, { "mib", 1048576.0 },
        { "g", 1e9 }, { "gb", 1e9 }, { "gi", 1073741824.0 }, { "gib", 1073741824.0 },
        { "t", 1e12 }, { "tb", 1e12 }, { "ti", 1099511627776.0 }, { "tib", 1099511627776.0 },
        { "p", 1e15 }, { "pb", 1e15 }, { "pi", 1125899906842624.0 },
        { "pib", 1125899906842624.0 },
        { "e", 1e18 }, { "eb", 1e18 }, { "ei", 1152921504606846976.0 },
        { "eib", 1152921504606846976.0 },
    };
    char num[128];
    size_t i = 0, w = 0;
    for (; i < s.len && (is_digit(s.p[i]) || s.p[i] == '.' || s.p[i] == ','); i++)
        if (s.p[i] != ',' && w < sizeof num - 1)
            num[w++] = s.p[i];
    double f;
    if (lqscan_float((struct vg_str){ num, w }, &f, err) != 0)
        return LQSCAN_SYNTAX;
    size_t a = i, b = s.len;
    while (a < b && is_space(s.p[a]))
        a++;
    while (b > a && is_space(s.p[b - 1]))
        b--;
    char unit[8];
    size_t ul = b - a;
    if (ul < sizeof unit) {
        for (size_t k = 0; k < ul; k++)
            unit[k] = (char)(s.p[a + k] >= 'A' && s.p[a + k] <= 'Z' ? s.p[a + k] | 0x20 : s.p[a + k]);
        unit[ul] = 0;
        for (size_t k = 0; k < sizeof table / sizeof table[0]; k++)
            if (strcmp(unit, table[k].name) == 0) {
                f *= table[k].mult;
                if (f >= 18446744073709551615.0) {
                    vg_err_set(err, VG_EINVAL, "too large: %.*s", (int)s.len, s.p);
                    return LQSCAN_SYNTAX;
                }
                *out = (uint64_t)f;
                return 0;
            }
    }
    vg_err_set(err, VG_EINVAL, "unhandled size name: %.*s", (int)ul, s.p + a);
    return LQSCAN_SYNTAX;
}

/* ---- decolorize ---- */

static bool ansi_final(int c)
{
    return is_digit(c) || (c >= 'A' && c <= 'P') || c == 'R' || c == 'Z' || c == 'c' ||
           (c >= 'f' && c <= 'n') || c == 'q' || c == 'r' || c == 't' || c == 'y' ||
           c == '=' || c == '>' || c == '<' || c == '~';
}

/* Length of the escape sequence at s[i] (its introducer already checked to be il
 * bytes long), or 0. Follows the ansi-regex Loki uses:
 *   [[\]()#;?]* ( [A-Za-z0-9;]* BEL | (\d{1,4}(;\d{0,4})*)? FINAL ) */
static size_t ansi_seq(const char *s, size_t n, size_t i, size_t il)
{
    size_t j = i + il;
    while (j < n && strchr("[]()#;?", s[j]) && s[j])
        j++;
    size_t k = j;
    while (k < n && (is_alpha(s[k]) || is_digit(s[k]) || s[k] == ';'))
        k++;
    if (k < n && s[k] == 7)
        return k + 1 - i;
    /* The longest prefix of [0-9;]* that is \d{1,4}(;\d{0,4})* and is followed by a
     * final byte; the empty prefix counts too. */
    size_t best = ansi_final(j < n ? (unsigned char)s[j] : -1) ? j + 1 : 0;
    size_t tok = 0;
    bool first = true;
    for (size_t p = j; p < n; p++) {
        if (is_digit(s[p])) {
            if (++tok > 4)
                break;
        } else if (s[p] == ';' && !(first && tok == 0)) {
            first = false;
            tok = 0;
        } else {
            break;
        }
        if (!(first && tok == 0) && p + 1 < n && ansi_final((unsigned char)s[p + 1]))
            best = p + 2;
    }
    return best ? best - i : 0;
}

size_t lqscan_decolorize(struct vg_str in, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < in.len;) {
        size_t il = in.p[i] == 0x1b                                            ? 1
                    : (i + 1 < in.len && (unsigned char)in.p[i] == 0xC2 &&
                       (unsigned char)in.p[i + 1] == 0x9B) ? 2
                                                           : 0;
        size_t l = il ? ansi_seq(in.p, in.len, i, il) : 0;
        if (l) {
            i += l;
            continue;
        }
        out[w++] = in.p[i++];
    }
    return w;
}
