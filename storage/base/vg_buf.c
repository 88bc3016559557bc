/* vg_buf: see vg_buf.h. */
#include "vg_buf.h"

#include "vg_alloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vg_buf_init(struct vg_buf *b)
{
    memset(b, 0, sizeof *b);
}

void vg_buf_free(struct vg_buf *b)
{
    if (!b)
        return;
    vg_free(b->p);
    vg_buf_init(b);
}

void vg_buf_reset(struct vg_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->p)
        b->p[0] = '\0';
}

bool vg_buf_reserve(struct vg_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *np = vg_realloc(b->p, cap);
    if (!np) {
        b->failed = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

void vg_buf_append(struct vg_buf *b, const void *data, size_t n)
{
    if (!vg_buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void vg_buf_puts(struct vg_buf *b, const char *s)
{
    vg_buf_append(b, s, strlen(s));
}

void vg_buf_putc(struct vg_buf *b, char c)
{
    vg_buf_append(b, &c, 1);
}

void vg_buf_printf(struct vg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        vg_buf_append(b, small, (size_t)n);
        return;
    }
    if (!vg_buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
    else return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

void vg_buf_json_str(struct vg_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    vg_buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            vg_buf_putc(b, '\\');
            vg_buf_putc(b, (char)c);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': vg_buf_puts(b, "\\n"); break;
            case '\r': vg_buf_puts(b, "\\r"); break;
            case '\t': vg_buf_puts(b, "\\t"); break;
            default: vg_buf_printf(b, "\\u%04x", c); break;
            }
            i++;
        } else if (c < 0x80) {
            size_t j = i;
            while (j < n && u[j] >= 0x20 && u[j] < 0x80 && u[j] != '"' && u[j] != '\\')
                j++;
            vg_buf_append(b, s + i, j - i);
            i = j;
        } else {
            size_t l = utf8_seq(u + i, n - i);
            if (l) {
                vg_buf_append(b, s + i, l);
                i += l;
            } else {
                vg_buf_puts(b, "\xEF\xBF\xBD");
                i++;
            }
        }
    }
    vg_buf_putc(b, '"');
}

/* Shortest decimal digits that round-trip v (v finite, nonzero): digits into d without a
 * dot, returns their count and sets *dp to the decimal point position, so v = 0.d x 10^dp. */
static int shortest_digits(double v, char *d, int *dp)
{
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* tmp looks like [-]D[.DDD]e[+-]XX */
    const char *s = tmp;
    if (*s == '-')
        s++;
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            d[n++] = *s;
    while (n > 1 && d[n - 1] == '0')
        n--;
    d[n] = '\0';
    *dp = (int)strtol(s + 1, NULL, 10) + 1; /* our own %e output: always a valid exponent */
    return n;
}

static void put_fixed(struct vg_buf *b, const char *d, int n, int dp)
{
    if (dp <= 0) {
        vg_buf_puts(b, "0.");
        for (int i = 0; i < -dp; i++)
            vg_buf_putc(b, '0');
        vg_buf_append(b, d, (size_t)n);
    } else if (dp >= n) {
        vg_buf_append(b, d, (size_t)n);
        for (int i = n; i < dp; i++)
            vg_buf_putc(b, '0');
    } else {
        vg_buf_append(b, d, (size_t)dp);
        vg_buf_putc(b, '.');
        vg_buf_append(b, d + dp, (size_t)(n - dp));
    }
}

static bool put_special(struct vg_buf *b, double v)
{
    if (isnan(v)) {
        vg_buf_puts(b, "NaN");
        return true;
    }
    if (isinf(v)) {
        vg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return true;
    }
    if (v == 0) {
        vg_buf_puts(b, signbit(v) ? "-0" : "0");
        return true;
    }
    return false;
}

void vg_buf_prom_float(struct vg_buf *b, double v)
{
    if (put_special(b, v))
        return;
    char d[24];
    int dp;
    int n = shortest_digits(v, d, &dp);
    if (v < 0)
        vg_buf_putc(b, '-');
    /* Go's strconv 'g' with shortest precision (what Prometheus's exposition uses)
     * switches to exponent form below 1e-4 and from 1e6 up: 1e+06, 1.5e-05. */
    int exp = dp - 1;
    int eprec = 6;
    if (exp < -4 || exp >= eprec) {
        vg_buf_putc(b, d[0]);
        if (n > 1) {
            vg_buf_putc(b, '.');
            vg_buf_append(b, d + 1, (size_t)(n - 1));
        }
        vg_buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    put_fixed(b, d, n, dp);
}

void vg_buf_json_float(struct vg_buf *b, double v)
{
    if (put_special(b, v))
        return;
    /* Integers below 2^53 (counters, counts: most sample values) print as themselves,
     * which is what the digit search below would produce, without its snprintf and
     * strtod rounds (about 10,000 instructions per value). */
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v) {
        char t[24];
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)-i : (uint64_t)i;
        size_t at = sizeof t;
        do
            t[--at] = (char)('0' + u % 10);
        while (u /= 10);
        if (i < 0)
            t[--at] = '-';
        vg_buf_append(b, t + at, sizeof t - at);
        return;
    }
    char d[24];
    int dp;
    int n = shortest_digits(v, d, &dp);
    if (v < 0)
        vg_buf_putc(b, '-');
    put_fixed(b, d, n, dp);
}

void vg_buf_put_u64be(struct vg_buf *b, uint64_t v)
{
    unsigned char t[8];
    for (int i = 7; i >= 0; i--) {
        t[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
    vg_buf_append(b, t, 8);
}

void vg_buf_put_uvarint(struct vg_buf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (unsigned char)v;
    vg_buf_append(b, t, n);
}

const char *vg_buf_cstr(struct vg_buf *b)
{
    if (!vg_buf_reserve(b, 0))
        return NULL;
    b->p[b->len] = '\0';
    return b->p;
}

char *vg_buf_steal(struct vg_buf *b, size_t *len)
{
    char *p = b->p;
    if (len)
        *len = b->len;
    vg_buf_init(b);
    return p;
}
