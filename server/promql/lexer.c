/* lexer: see lexer.h. A port of the behaviour (not the code) of Prometheus 3's PromQL
 * lexer, so that token boundaries and error texts match what Prometheus users see:
 *
 * - Runes are decoded as Go does: an invalid byte is U+FFFD with width 1; positions
 *   are byte offsets.
 * - Numbers are scanned by Prometheus's rules ([.][d][d._eE]*, 0x hex, '_' separators,
 *   a letter right after a number makes it a duration or an error); the token text is
 *   then read as Go's ParseInt(s, 0, 64), falling back to ParseFloat(s, 64).
 * - A number followed by unit letters is a duration token (`5m`, `1h30m`); after `[` the
 *   next token is always read as a number or duration.
 * - Error positions are those Prometheus reports: the start of the token being scanned,
 *   except an unbalanced ')' which points just past it. */
#include "lexer.h"

#include "../../storage/base/vg_str.h"
#include "ast.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#define RUNE_EOF (-1)
#define RUNE_ERROR 0xFFFD

/* ---- UTF-8 ---- */

size_t lexer_utf8(const unsigned char *p, size_t n, int32_t *rune)
{
    unsigned c = p[0];
    size_t l;
    unsigned min;
    if (c < 0x80) {
        *rune = (int32_t)c;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) { l = 2; min = 0x80; c &= 0x1F; }
    else if ((c & 0xF0) == 0xE0) { l = 3; min = 0x800; c &= 0x0F; }
    else if ((c & 0xF8) == 0xF0) { l = 4; min = 0x10000; c &= 0x07; }
    else return 0;
    if (l > n)
        return 0;
    for (size_t k = 1; k < l; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (p[k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *rune = (int32_t)c;
    return l;
}

static void put_utf8(struct vg_buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    vg_buf_append(b, u, n);
}

/* Go's unicode.IsPrint, approximated: the format, control, surrogate and private-use
 * ranges a query could plausibly contain are not printable. */
static bool rune_printable(int32_t r)
{
    if (r < 0x20 || r == 0x7F)
        return false;
    if (r < 0x7F)
        return true;
    if (r <= 0xA0 || r == 0xAD || (r >= 0x600 && r <= 0x605) || r == 0x61C || r == 0x6DD ||
        r == 0x70F || r == 0x180E || (r >= 0x200B && r <= 0x200F) ||
        (r >= 0x2028 && r <= 0x202E) || (r >= 0x2060 && r <= 0x206F) ||
        (r >= 0xD800 && r <= 0xF8FF) || r == 0xFEFF || (r >= 0xFFF9 && r <= 0xFFFB) ||
        (r >= 0xE0000 && r <= 0xE007F) || r >= 0xF0000)
        return false;
    return true;
}

static void quote_rune_body(struct vg_buf *b, int32_t r, char quote)
{
    char tmp[16];
    if (r == quote || r == '\\') {
        vg_buf_putc(b, '\\');
        vg_buf_putc(b, (char)r);
        return;
    }
    if (rune_printable(r)) {
        put_utf8(b, (uint32_t)r);
        return;
    }
    switch (r) {
    case '\a': vg_buf_puts(b, "\\a"); return;
    case '\b': vg_buf_puts(b, "\\b"); return;
    case '\f': vg_buf_puts(b, "\\f"); return;
    case '\n': vg_buf_puts(b, "\\n"); return;
    case '\r': vg_buf_puts(b, "\\r"); return;
    case '\t': vg_buf_puts(b, "\\t"); return;
    case '\v': vg_buf_puts(b, "\\v"); return;
    default: break;
    }
    if (r < ' ' || r == 0x7F)
        snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)r);
    else if (r < 0x10000)
        snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)r);
    else
        snprintf(tmp, sizeof tmp, "\\U%08x", (unsigned)r);
    vg_buf_puts(b, tmp);
}

void lexer_quote(struct vg_buf *b, const char *s, size_t n)
{
    vg_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        int32_t r;
        size_t l = lexer_utf8((const unsigned char *)s + i, n - i, &r);
        if (l == 0) {
            char tmp[8];
            snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned char)s[i]);
            vg_buf_puts(b, tmp);
            i++;
            continue;
        }
        if (r == RUNE_ERROR)
            vg_buf_puts(b, "\\ufffd"); /* a literal U+FFFD does not lex back */
        else
            quote_rune_body(b, r, '"');
        i += l;
    }
    vg_buf_putc(b, '"');
}

void lexer_quote_rune(int32_t r, char *out, size_t cap)
{
    struct vg_buf b;
    vg_buf_init(&b);
    if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF))
        r = RUNE_ERROR;
    vg_buf_putc(&b, '\'');
    quote_rune_body(&b, r, '\'');
    vg_buf_putc(&b, '\'');
    snprintf(out, cap, "%s", vg_buf_failed(&b) || !b.p ? "'?'" : vg_buf_cstr(&b));
    vg_buf_free(&b);
}

/* Go's %#U: "U+0071 'q'", or "U+000A" for a rune that is not printable. */
static void rune_hash_u(int32_t r, char *out, size_t cap)
{
    if (r < 0)
        r = RUNE_ERROR;
    if (rune_printable(r)) {
        /* %#U prints the rune itself between quotes, unescaped. */
        char u[5] = { 0 };
        struct vg_buf b;
        vg_buf_init(&b);
        put_utf8(&b, (uint32_t)r);
        if (!vg_buf_failed(&b) && b.len < sizeof u)
            memcpy(u, b.p, b.len);
        vg_buf_free(&b);
        snprintf(out, cap, "U+%04X '%s'", (unsigned)r, u);
    } else {
        snprintf(out, cap, "U+%04X", (unsigned)r);
    }
}

/* ---- errors ---- */

int lexer_error(struct vg_err *err, const char *query, size_t len, size_t at, const char *fmt,
                ...)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < len; i++) {
        if (query[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char what[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return vg_err_set(err, VG_EINVAL, "%zu:%zu: parse error: %s", line, col, what);
}

/* ---- strings ---- */

static int hexval(int32_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 16;
}

/* Decodes the rune at s[i] as Go's utf8.DecodeRune: invalid bytes are U+FFFD, width 1. */
static int32_t rune_at(const char *s, size_t len, size_t i, size_t *w)
{
    if (i >= len) {
        *w = 0;
        return RUNE_EOF;
    }
    int32_t r;
    size_t l = lexer_utf8((const unsigned char *)s + i, len - i, &r);
    if (l == 0) {
        *w = 1;
        return RUNE_ERROR;
    }
    *w = l;
    return r;
}

static enum lexer_str_fail str_fail(struct lexer_str_error *e, enum lexer_str_fail k, size_t at,
                                    int32_t ch)
{
    e->kind = k;
    e->at = at;
    e->ch = ch;
    return k;
}

/* One escape; i is just past the backslash at bs. */
static enum lexer_str_fail scan_escape(const char *s, size_t len, size_t bs, size_t *ip,
                                       char quote, struct vg_buf *out,
                                       struct lexer_str_error *e)
{
    size_t i = *ip, w;
    int32_t ch = rune_at(s, len, i, &w);
    i += w;
    static const char simple[] = "abfnrtv\\";
    static const char value[] = "\a\b\f\n\r\t\v\\";
    const char *hit = ch > 0 && ch < 0x80 ? strchr(simple, (int)ch) : NULL;
    if (hit || ch == quote) {
        if (out)
            vg_buf_putc(out, hit ? value[hit - simple] : quote);
        *ip = i;
        return LS_OK;
    }
    int n;
    unsigned base;
    unsigned long maxv;
    if (ch >= '0' && ch <= '7') {
        n = 3, base = 8, maxv = 255;
    } else if (ch == 'x' || ch == 'u' || ch == 'U') {
        n = ch == 'x' ? 2 : ch == 'u' ? 4 : 8;
        base = 16;
        maxv = ch == 'x' ? 255 : 0x10FFFF;
        ch = rune_at(s, len, i, &w);
        i += w;
    } else if (ch == RUNE_EOF) {
        return str_fail(e, LS_ESC_UNTERMINATED, bs, ch);
    } else {
        return str_fail(e, LS_ESC_UNKNOWN, bs, ch);
    }
    bool bytes = base == 8 || maxv == 255;
    unsigned long x = 0;
    for (;;) {
        unsigned d = (unsigned)hexval(ch);
        if (d >= base) {
            if (ch == RUNE_EOF)
                return str_fail(e, LS_ESC_UNTERMINATED, bs, ch);
            return str_fail(e, LS_ESC_ILLEGAL, i - w, ch);
        }
        x = x * base + d;
        if (--n == 0)
            break;
        ch = rune_at(s, len, i, &w);
        i += w;
    }
    if (x > maxv || (x >= 0xD800 && x < 0xE000)) {
        str_fail(e, LS_ESC_RANGE, bs, 0);
        e->value = x;
        return LS_ESC_RANGE;
    }
    if (out) {
        if (bytes)
            vg_buf_putc(out, (char)x); /* \377 and \xff are single bytes, as in Go */
        else
            put_utf8(out, (uint32_t)x);
    }
    *ip = i;
    return LS_OK;
}

enum lexer_str_fail lexer_scan_string(const char *s, size_t len, size_t pos, size_t *end,
                                      struct vg_buf *out, struct lexer_str_error *e)
{
    char quote = s[pos];
    size_t i = pos + 1;
    for (;;) {
        size_t w;
        int32_t r = rune_at(s, len, i, &w);
        if (r == RUNE_EOF)
            return str_fail(e, quote == '`' ? LS_UNTERMINATED_RAW : LS_UNTERMINATED, pos, r);
        if (r == quote) {
            i++;
            break;
        }
        if (r == RUNE_ERROR)
            return str_fail(e, LS_BAD_UTF8, i, r);
        if (quote != '`') {
            if (r == '\n')
                return str_fail(e, LS_UNTERMINATED, pos, r);
            if (r == '\\') {
                size_t bs = i;
                i++;
                enum lexer_str_fail f = scan_escape(s, len, bs, &i, quote, out, e);
                if (f != LS_OK)
                    return f;
                continue;
            }
        }
        if (out)
            vg_buf_append(out, s + i, w);
        i += w;
    }
    if (out && vg_buf_failed(out))
        return str_fail(e, LS_NOMEM, pos, 0);
    *end = i;
    return LS_OK;
}

void lexer_string_message(const struct lexer_str_error *e, char *out, size_t cap)
{
    char u[32];
    switch (e->kind) {
    case LS_UNTERMINATED: snprintf(out, cap, "unterminated quoted string"); return;
    case LS_UNTERMINATED_RAW: snprintf(out, cap, "unterminated raw string"); return;
    case LS_BAD_UTF8: snprintf(out, cap, "invalid UTF-8 rune"); return;
    case LS_ESC_UNTERMINATED: snprintf(out, cap, "escape sequence not terminated"); return;
    case LS_ESC_UNKNOWN:
        rune_hash_u(e->ch, u, sizeof u);
        snprintf(out, cap, "unknown escape sequence %s", u);
        return;
    case LS_ESC_ILLEGAL:
        rune_hash_u(e->ch, u, sizeof u);
        snprintf(out, cap, "illegal character %s in escape sequence", u);
        return;
    case LS_ESC_RANGE:
        snprintf(out, cap, "escape sequence is an invalid Unicode code point");
        return;
    case LS_NOMEM: snprintf(out, cap, "out of memory"); return;
    case LS_OK: break;
    }
    snprintf(out, cap, "no error");
}

/* ---- numbers and durations ---- */

static bool is_digit(int32_t r) { return r >= '0' && r <= '9'; }
static bool is_alpha(int32_t r)
{
    return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
}
static bool is_alnum(int32_t r) { return is_alpha(r) || is_digit(r); }
static bool is_space(int32_t r) { return r == ' ' || r == '\t' || r == '\n' || r == '\r'; }

bool lexer_is_label_name(const char *s, size_t n)
{
    if (n == 0 || !is_alpha((unsigned char)s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum((unsigned char)s[i]))
            return false;
    return true;
}

/* Go's underscoreOK: '_' only between digits (a base prefix counts as a digit). */
static bool underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    bool hex = false;
    if (n >= 2 && s[0] == '0' && strchr("bBoOxX", s[1])) {
        i = 2;
        saw = '0';
        hex = s[1] == 'x' || s[1] == 'X';
    }
    for (; i < n; i++) {
        char c = s[i];
        if ((c >= '0' && c <= '9') || (hex && hexval((unsigned char)c) < 16)) {
            saw = '0';
            continue;
        }
        if (c == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

/* strconv.ParseInt(s, 0, 64) for an unsigned token: 1 ok, 0 syntax, -1 range. */
static int go_parse_int(const char *s, size_t n, int64_t *out)
{
    if (n == 0)
        return 0;
    unsigned base = 10;
    size_t i = 0;
    if (s[0] == '0' && n > 1) {
        if (s[1] == 'x' || s[1] == 'X') {
            base = 16;
            i = 2;
        } else if (s[1] == 'o' || s[1] == 'O') {
            base = 8;
            i = 2;
        } else if (s[1] == 'b' || s[1] == 'B') {
            base = 2;
            i = 2;
        } else {
            base = 8;
            i = 1;
        }
    }
    bool underscores = false, any = false, range = false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] == '_') {
            underscores = true;
            continue;
        }
        unsigned d = (unsigned)hexval((unsigned char)s[i]);
        if (d >= base)
            return 0;
        any = true;
        if (v > (UINT64_MAX - d) / base)
            range = true;
        else
            v = v * base + d;
    }
    if (!any && base != 8)
        return 0;
    if (underscores && !underscore_ok(s, n))
        return 0;
    if (range || v > (uint64_t)INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 1;
}

/* strconv.ParseFloat(s, 64) for decimal tokens: 1 ok, 0 syntax, -1 range. */
static int go_parse_float(const char *s, size_t n, double *out)
{
    const char *sp[] = { "inf", "+inf", "infinity", "+infinity", "nan" };
    for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++) {
        if (n == strlen(sp[k]) && strncasecmp(s, sp[k], n) == 0) {
            *out = k == 4 ? NAN : INFINITY;
            return 1;
        }
    }
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        return 0; /* a hex mantissa needs a 'p' exponent, which no token holds */
    char buf[512];
    size_t bn = 0, i = 0;
    bool digits = false, underscores = false;
    for (; i < n && (is_digit((unsigned char)s[i]) || s[i] == '_'); i++) {
        if (s[i] == '_') {
            underscores = true;
            continue;
        }
        digits = true;
        if (bn < sizeof buf - 8)
            buf[bn++] = s[i];
    }
    if (i < n && s[i] == '.') {
        buf[bn++] = '.';
        for (i++; i < n && (is_digit((unsigned char)s[i]) || s[i] == '_'); i++) {
            if (s[i] == '_') {
                underscores = true;
                continue;
            }
            digits = true;
            if (bn < sizeof buf - 8)
                buf[bn++] = s[i];
        }
    }
    if (!digits)
        return 0;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        buf[bn++] = 'e';
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            buf[bn++] = s[i++];
        if (i >= n || !is_digit((unsigned char)s[i]))
            return 0;
        for (; i < n && (is_digit((unsigned char)s[i]) || s[i] == '_'); i++) {
            if (s[i] == '_') {
                underscores = true;
                continue;
            }
            if (bn < sizeof buf - 2)
                buf[bn++] = s[i];
        }
    }
    if (i != n || (underscores && !underscore_ok(s, n)))
        return 0;
    buf[bn] = 0;
    errno = 0;
    double v = strtod(buf, NULL);
    if (errno == ERANGE && isinf(v))
        return -1;
    *out = v;
    return 1;
}

int lexer_parse_number(const char *s, size_t n, double *out, char *msg, size_t cap)
{
    int64_t iv;
    if (go_parse_int(s, n, &iv) == 1) {
        *out = (double)iv;
        return 0;
    }
    int rc = n <= 400 ? go_parse_float(s, n, out) : -1;
    if (rc == 1)
        return 0;
    struct vg_buf q;
    vg_buf_init(&q);
    lexer_quote(&q, s, n);
    snprintf(msg, cap, "error parsing number: strconv.ParseFloat: parsing %s: %s",
             vg_buf_failed(&q) ? "\"\"" : vg_buf_cstr(&q),
             rc < 0 ? "value out of range" : "invalid syntax");
    vg_buf_free(&q);
    return -1;
}

static const struct {
    const char *unit;
    uint64_t ns;
} units[] = {
    { "y", 365ULL * 24 * 3600 * 1000000000ULL }, { "w", 7ULL * 24 * 3600 * 1000000000ULL },
    { "d", 24ULL * 3600 * 1000000000ULL },       { "h", 3600ULL * 1000000000ULL },
    { "m", 60ULL * 1000000000ULL },              { "s", 1000000000ULL },
    { "ms", 1000000ULL },
};

int lexer_parse_duration(const char *s, size_t n, int64_t *ms, char *msg, size_t cap)
{
    if (n == 1 && s[0] == '0') {
        *ms = 0;
        return 0;
    }
    if (n == 0) {
        snprintf(msg, cap, "empty duration string");
        return -1;
    }
    uint64_t dur = 0;
    size_t last = 0, i = 0;
    while (i < n) {
        if (!is_digit((unsigned char)s[i]))
            goto invalid;
        uint64_t v = 0;
        bool over = false;
        for (; i < n && is_digit((unsigned char)s[i]); i++) {
            unsigned d = (unsigned)(s[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                over = true;
            else
                v = v * 10 + d;
        }
        if (over)
            goto invalid;
        size_t u = i;
        while (i < n && !is_digit((unsigned char)s[i]))
            i++;
        if (i == u)
            goto invalid;
        size_t k = 0;
        for (; k < sizeof units / sizeof units[0]; k++)
            if (strlen(units[k].unit) == i - u && memcmp(units[k].unit, s + u, i - u) == 0)
                break;
        if (k == sizeof units / sizeof units[0]) {
            struct vg_buf a, b;
            vg_buf_init(&a);
            vg_buf_init(&b);
            lexer_quote(&a, s + u, i - u);
            lexer_quote(&b, s, n);
            snprintf(msg, cap, "unknown unit %s in duration %s",
                     vg_buf_failed(&a) ? "\"\"" : vg_buf_cstr(&a),
                     vg_buf_failed(&b) ? "\"\"" : vg_buf_cstr(&b));
            vg_buf_free(&a);
            vg_buf_free(&b);
            return -1;
        }
        if (k + 1 <= last)
            goto invalid;
        last = k + 1;
        if (v > (1ULL << 63) / units[k].ns) {
            snprintf(msg, cap, "duration out of range");
            return -1;
        }
        dur += v * units[k].ns;
        if (dur > (uint64_t)INT64_MAX) {
            snprintf(msg, cap, "duration out of range");
            return -1;
        }
    }
    *ms = (int64_t)(dur / 1000000ULL);
    return 0;
invalid:;
    struct vg_buf q;
    vg_buf_init(&q);
    lexer_quote(&q, s, n);
    snprintf(msg, cap, "not a valid duration string: %s", vg_buf_failed(&q) ? "\"\"" : vg_buf_cstr(&q));
    vg_buf_free(&q);
    return -1;
}

void lexer_format_duration(struct vg_buf *b, int64_t ms)
{
    if (ms <= 0) {
        vg_buf_puts(b, "0s");
        return;
    }
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        int64_t mult = (int64_t)(units[k].ns / 1000000ULL);
        /* Years and weeks only when exact: "90d" reads better than "12w6d". */
        if (k < 2 && ms % mult != 0)
            continue;
        int64_t v = ms / mult;
        if (v > 0) {
            vg_buf_printf(b, "%lld%s", (long long)v, units[k].unit);
            ms -= v * mult;
        }
    }
}

/* ---- the token scanner ---- */

static int32_t next_rune(struct lexer *l, size_t *w)
{
    int32_t r = rune_at(l->s, l->len, l->pos, w);
    l->pos += *w;
    return r;
}

static int32_t peek_rune(const struct lexer *l)
{
    size_t w;
    return rune_at(l->s, l->len, l->pos, &w);
}

/* Go's accept: consumes the next rune if it is in set. */
static bool accept(struct lexer *l, const char *set)
{
    int32_t r = peek_rune(l);
    if (r > 0 && r < 0x80 && strchr(set, (int)r)) {
        l->pos++;
        return true;
    }
    return false;
}

static bool is_in(const struct lexer *l, const char *set)
{
    int32_t r = peek_rune(l);
    return r > 0 && r < 0x80 && strchr(set, (int)r);
}

/* Prometheus's scanNumber: true when the scanned text is a complete number token. */
static bool scan_number(struct lexer *l)
{
    size_t initial = l->pos;
    const char *digits = "0123456789";
    bool hex = false;
    if (accept(l, "0") && accept(l, "xX")) {
        accept(l, "_");
        digits = "0123456789abcdefABCDEF";
        hex = true;
    }
    char all[40];
    snprintf(all, sizeof all, "%s._eE", digits);
    accept(l, ".");
    accept(l, digits);
    bool dot = false, exp = false;
    while (is_in(l, all)) {
        if (is_in(l, ".") && dot) {
            accept(l, ".");
            return false;
        }
        if (is_in(l, "eE") && exp) {
            accept(l, "eE");
            return false;
        }
        if (accept(l, ".")) {
            dot = true;
            if (accept(l, "_.") || hex)
                return false;
            continue;
        }
        if (accept(l, "eE")) {
            exp = true;
            accept(l, "+-");
            if (accept(l, "._eE") || peek_rune(l) == RUNE_EOF)
                return false;
            continue;
        }
        if (accept(l, "_")) {
            if (accept(l, "._eE") || peek_rune(l) == RUNE_EOF)
                return false;
            continue;
        }
        while (accept(l, digits))
            ;
    }
    if (l->pos == initial)
        return false;
    return !is_alnum(peek_rune(l));
}

/* Unit letters after a number; true when a duration token ends here. */
static bool accept_remaining_duration(struct lexer *l)
{
    if (!accept(l, "smhdwy"))
        return false;
    accept(l, "s");
    while (accept(l, "0123456789")) {
        while (accept(l, "0123456789"))
            ;
        if (!accept(l, "smhdw"))
            return false;
        accept(l, "s");
    }
    size_t w;
    int32_t r = next_rune(l, &w);
    if (is_alnum(r))
        return false;
    l->pos -= w;
    return true;
}

static void emit(struct lexer *l, struct lexer_token *t, enum lexer_kind k, size_t start)
{
    t->kind = k;
    t->pos = (uint32_t)start;
    t->len = (uint32_t)(l->pos - start);
    t->agg = 0;
}

static void fail(struct lexer *l, struct lexer_token *t, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(struct lexer *l, struct lexer_token *t, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->msg, sizeof l->msg, fmt, ap);
    va_end(ap);
    l->err_at = at;
    t->kind = LK_ERROR;
    t->pos = (uint32_t)at;
    t->len = 0;
    l->pos = l->len + 1; /* nothing after an error */
}

static void number_or_duration(struct lexer *l, struct lexer_token *t, size_t start)
{
    if (scan_number(l)) {
        emit(l, t, LK_NUMBER, start);
        return;
    }
    if (accept_remaining_duration(l)) {
        emit(l, t, LK_DURATION, start);
        return;
    }
    struct vg_buf q;
    vg_buf_init(&q);
    lexer_quote(&q, l->s + start, l->pos - start);
    fail(l, t, start, "bad number or duration syntax: %s", vg_buf_failed(&q) ? "\"\"" : vg_buf_cstr(&q));
    vg_buf_free(&q);
}

static void string_token(struct lexer *l, struct lexer_token *t, size_t start)
{
    struct lexer_str_error e;
    size_t end;
    if (lexer_scan_string(l->s, l->len, start, &end, NULL, &e) != LS_OK) {
        char m[128];
        lexer_string_message(&e, m, sizeof m);
        fail(l, t, start, "%s", m);
        return;
    }
    l->pos = end;
    emit(l, t, LK_STRING, start);
}

static const struct {
    const char *word;
    enum lexer_kind kind;
    int agg;
} keywords[] = {
    { "and", LK_AND, 0 },       { "or", LK_OR, 0 },
    { "unless", LK_UNLESS, 0 }, { "atan2", LK_ATAN2, 0 },
    { "sum", LK_AGG, AGG_SUM }, { "avg", LK_AGG, AGG_AVG },
    { "count", LK_AGG, AGG_COUNT }, { "min", LK_AGG, AGG_MIN },
    { "max", LK_AGG, AGG_MAX }, { "group", LK_AGG, AGG_GROUP },
    { "stddev", LK_AGG, AGG_STDDEV }, { "stdvar", LK_AGG, AGG_STDVAR },
    { "topk", LK_AGG, AGG_TOPK }, { "bottomk", LK_AGG, AGG_BOTTOMK },
    { "count_values", LK_AGG, AGG_COUNT_VALUES }, { "quantile", LK_AGG, AGG_QUANTILE },
    { "limitk", LK_AGG, AGG_LIMITK }, { "limit_ratio", LK_AGG, AGG_LIMIT_RATIO },
    { "offset", LK_OFFSET, 0 }, { "by", LK_BY, 0 },
    { "without", LK_WITHOUT, 0 }, { "on", LK_ON, 0 },
    { "ignoring", LK_IGNORING, 0 }, { "group_left", LK_GROUP_LEFT, 0 },
    { "group_right", LK_GROUP_RIGHT, 0 }, { "bool", LK_BOOL, 0 },
    { "start", LK_START, 0 }, { "end", LK_END, 0 },
    { "inf", LK_NUMBER, 0 }, { "nan", LK_NUMBER, 0 },
};

static void keyword_or_identifier(struct lexer *l, struct lexer_token *t, size_t start)
{
    bool colon = false;
    while (l->pos < l->len) {
        char c = l->s[l->pos];
        if (!is_alnum((unsigned char)c) && c != ':')
            break;
        colon |= c == ':';
        l->pos++;
    }
    size_t n = l->pos - start;
    for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++) {
        if (strlen(keywords[k].word) == n && strncasecmp(keywords[k].word, l->s + start, n) == 0) {
            emit(l, t, keywords[k].kind, start);
            t->agg = keywords[k].agg;
            return;
        }
    }
    emit(l, t, colon ? LK_METRIC_IDENT : LK_IDENT, start);
}

static void skip_comment(struct lexer *l)
{
    while (l->pos < l->len && l->s[l->pos] != '\n' && l->s[l->pos] != '\r')
        l->pos++;
}

/* The next rune after any comments, and where it starts. */
static int32_t next_after_comments(struct lexer *l, size_t *start, size_t *w)
{
    while (l->pos < l->len && l->s[l->pos] == '#')
        skip_comment(l);
    *start = l->pos;
    return next_rune(l, w);
}

static void inside_braces(struct lexer *l, struct lexer_token *t)
{
    for (;;) {
        size_t start, w;
        int32_t r = next_after_comments(l, &start, &w);
        char q[16];
        switch (r) {
        case RUNE_EOF:
            fail(l, t, start, "unexpected end of input inside braces");
            return;
        case ',': emit(l, t, LK_COMMA, start); return;
        case '"': case '\'': case '`': string_token(l, t, start); return;
        case '=':
            emit(l, t, accept(l, "~") ? LK_EQL_REGEX : LK_EQL, start);
            return;
        case '!': {
            int32_t nr = next_rune(l, &w);
            if (nr == '~' || nr == '=') {
                emit(l, t, nr == '~' ? LK_NEQ_REGEX : LK_NEQ, start);
                return;
            }
            lexer_quote_rune(nr, q, sizeof q);
            fail(l, t, start, "unexpected character after '!' inside braces: %s", q);
            return;
        }
        case '{':
            fail(l, t, start, "unexpected left brace '{'");
            return;
        case '}':
            l->brace_open = false;
            emit(l, t, LK_RBRACE, start);
            return;
        default: break;
        }
        if (is_space(r))
            continue;
        if (is_alpha(r)) {
            while (l->pos < l->len && is_alnum((unsigned char)l->s[l->pos]))
                l->pos++;
            emit(l, t, LK_IDENT, start);
            return;
        }
        lexer_quote_rune(r, q, sizeof q);
        fail(l, t, start, "unexpected character inside braces: %s", q);
        return;
    }
}

void lexer_init(struct lexer *l, const char *s, size_t len)
{
    memset(l, 0, sizeof *l);
    l->s = s;
    l->len = len;
}

void lexer_next(struct lexer *l, struct lexer_token *t)
{
    if (l->pos > l->len) { /* after an error */
        t->kind = LK_EOF;
        t->pos = (uint32_t)l->len;
        t->len = 0;
        return;
    }
    if (l->brace_open) {
        inside_braces(l, t);
        return;
    }
    if (l->want_number && l->pos < l->len) {
        /* The token right after '[' is always read as a number or duration. */
        l->want_number = false;
        number_or_duration(l, t, l->pos);
        return;
    }
    l->want_number = false;
    for (;;) {
        size_t start, w;
        int32_t r = next_after_comments(l, &start, &w);
        char q[16];
        switch (r) {
        case RUNE_EOF:
            if (l->paren_depth != 0)
                fail(l, t, start, "unclosed left parenthesis");
            else if (l->bracket_open)
                fail(l, t, start, "unclosed left bracket");
            else
                emit(l, t, LK_EOF, start);
            return;
        case ',': emit(l, t, LK_COMMA, start); return;
        case '*': emit(l, t, LK_MUL, start); return;
        case '/': emit(l, t, LK_DIV, start); return;
        case '%': emit(l, t, LK_MOD, start); return;
        case '+': emit(l, t, LK_ADD, start); return;
        case '-': emit(l, t, LK_SUB, start); return;
        case '^': emit(l, t, LK_POW, start); return;
        case '@': emit(l, t, LK_AT, start); return;
        case '=':
            if (accept(l, "=")) {
                emit(l, t, LK_EQLC, start);
            } else if (is_in(l, "~")) {
                fail(l, t, start, "unexpected character after '=': '~'");
            } else {
                emit(l, t, LK_EQL, start);
            }
            return;
        case '!': {
            int32_t nr = next_rune(l, &w);
            if (nr != '=') {
                lexer_quote_rune(nr, q, sizeof q);
                fail(l, t, start, "unexpected character after '!': %s", q);
                return;
            }
            emit(l, t, LK_NEQ, start);
            return;
        }
        case '<': emit(l, t, accept(l, "=") ? LK_LTE : LK_LSS, start); return;
        case '>': emit(l, t, accept(l, "=") ? LK_GTE : LK_GTR, start); return;
        case '"': case '\'': case '`': string_token(l, t, start); return;
        case '(':
            l->paren_depth++;
            emit(l, t, LK_LPAREN, start);
            return;
        case ')':
            emit(l, t, LK_RPAREN, start);
            if (--l->paren_depth < 0)
                fail(l, t, l->pos, "unexpected right parenthesis ')'");
            return;
        case '{':
            l->brace_open = true;
            emit(l, t, LK_LBRACE, start);
            return;
        case '[':
            if (l->bracket_open) {
                fail(l, t, start, "unexpected left bracket '['");
                return;
            }
            l->got_colon = false;
            l->bracket_open = true;
            l->want_number = true;
            emit(l, t, LK_LBRACKET, start);
            while (l->pos < l->len && is_space((unsigned char)l->s[l->pos]))
                l->pos++;
            return;
        case ']':
            if (!l->bracket_open) {
                fail(l, t, start, "unexpected right bracket ']'");
                return;
            }
            l->bracket_open = false;
            emit(l, t, LK_RBRACKET, start);
            return;
        default: break;
        }
        if (is_space(r))
            continue;
        if ((is_digit(r)) || (r == '.' && is_digit(peek_rune(l)))) {
            l->pos = start;
            number_or_duration(l, t, start);
            return;
        }
        if (is_alpha(r) || r == ':') {
            if (!l->bracket_open) {
                l->pos = start;
                keyword_or_identifier(l, t, start);
                return;
            }
            if (r == ':') {
                if (l->got_colon) {
                    fail(l, t, start, "unexpected colon ':'");
                    return;
                }
                l->got_colon = true;
                emit(l, t, LK_COLON, start);
                return;
            }
            lexer_quote_rune(r, q, sizeof q);
            fail(l, t, start, "unexpected character: %s, expected ':'", q);
            return;
        }
        lexer_quote_rune(r, q, sizeof q);
        fail(l, t, start, "unexpected character: %s", q);
        return;
    }
}

/* ---- describing tokens ---- */

/* Go's %q of the token text, or %.10q... when it is longer than 10 bytes. */
static void quoted_text(const char *s, size_t n, bool truncate, char *out, size_t cap)
{
    struct vg_buf b;
    vg_buf_init(&b);
    size_t take = n;
    bool cut = false;
    if (truncate && n > 10) {
        size_t runes = 0, i = 0;
        while (i < n && runes < 10) {
            int32_t r;
            size_t l = lexer_utf8((const unsigned char *)s + i, n - i, &r);
            i += l ? l : 1;
            runes++;
        }
        take = i;
        cut = true;
    }
    lexer_quote(&b, s, take);
    if (cut)
        vg_buf_puts(&b, "...");
    snprintf(out, cap, "%s", vg_buf_failed(&b) ? "\"\"" : vg_buf_cstr(&b));
    vg_buf_free(&b);
}

void lexer_describe(const char *query, const struct lexer_token *t, char *out, size_t cap)
{
    const char *s = query + t->pos;
    int n = (int)t->len;
    char q[160];
    switch (t->kind) {
    case LK_EOF:
    case LK_ERROR:
        snprintf(out, cap, "end of input");
        return;
    case LK_IDENT:
    case LK_METRIC_IDENT:
        quoted_text(s, t->len, false, q, sizeof q);
        snprintf(out, cap, "%s %s", t->kind == LK_IDENT ? "identifier" : "metric identifier",
                 q);
        return;
    case LK_STRING:
    case LK_NUMBER:
    case LK_DURATION:
        quoted_text(s, t->len, true, q, sizeof q);
        snprintf(out, cap, "%s %s",
                 t->kind == LK_STRING ? "string" : t->kind == LK_NUMBER ? "number" : "duration",
                 q);
        return;
    case LK_AGG:
        snprintf(out, cap, "<aggr:%.*s>", n, s);
        return;
    case LK_BOOL: case LK_BY: case LK_GROUP_LEFT: case LK_GROUP_RIGHT: case LK_IGNORING:
    case LK_OFFSET: case LK_ON: case LK_WITHOUT:
        snprintf(out, cap, "<%.*s>", n, s);
        return;
    case LK_ADD: case LK_SUB: case LK_MUL: case LK_DIV: case LK_MOD: case LK_POW:
    case LK_ATAN2: case LK_EQLC: case LK_NEQ: case LK_LSS: case LK_LTE: case LK_GTR:
    case LK_GTE: case LK_AND: case LK_OR: case LK_UNLESS: case LK_EQL_REGEX:
    case LK_NEQ_REGEX: case LK_AT:
        snprintf(out, cap, "<op:%.*s>", n, s);
        return;
    default:
        quoted_text(s, t->len, true, q, sizeof q);
        snprintf(out, cap, "%s", q);
        return;
    }
}
