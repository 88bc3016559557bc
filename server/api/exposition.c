/* exposition: the Prometheus text format 0.0.4, written and parsed (see exposition.h for
 * the line grammar).
 *
 * The parser follows the rules of Prometheus's expfmt text parser line by line: blanks
 * are spaces and tabs; blank lines are skipped; "#" starts a comment unless its first
 * word is HELP or TYPE; label values allow only the escapes \\ \" \n and must be valid
 * UTF-8; HELP allows \\ and \n; "__name__" is reserved inside braces; a label name may
 * not repeat within a sample; values are Go ParseFloat syntax (overflow is an error,
 * underflow is not); timestamps are int64 milliseconds. A missing newline at the end of
 * the input is accepted. Strings without escapes point into the input; unescaped copies
 * come from the caller's arena, so nothing here needs freeing but the label scratch.
 *
 * OpenMetrics (p->om) reuses the same line parser with its differences switched on, as
 * Prometheus's OpenMetrics parser has them: exactly "# HELP", "# TYPE", "# UNIT" or
 * "# EOF" after a '#', no blank lines, \" allowed in HELP, float-second timestamps
 * (NaN and infinities refused; milliseconds = seconds * 1000 truncated), an optional
 * exemplar after " # ", and "# EOF" closing the input. */
#include "exposition.h"

#include "../../storage/base/vg_alloc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [EXPOSITION_COUNTER] = "counter",   [EXPOSITION_GAUGE] = "gauge",
    [EXPOSITION_HISTOGRAM] = "histogram", [EXPOSITION_SUMMARY] = "summary",
    [EXPOSITION_UNTYPED] = "untyped", [EXPOSITION_GAUGEHISTOGRAM] = "gaugehistogram",
    [EXPOSITION_INFO] = "info", [EXPOSITION_STATESET] = "stateset",
    [EXPOSITION_UNKNOWN] = "unknown",
};

const char *exposition_type_name(enum exposition_type t)
{
    if ((unsigned)t >= sizeof(type_names) / sizeof(type_names[0]))
        return "untyped";
    return type_names[t];
}

/* ---------------------------------------------------------------- writing */

/* Escapes backslash and newline, and double quote when quote is set. */
static void put_escaped(struct vg_buf *out, struct vg_str s, bool quote)
{
    size_t run = 0;
    for (size_t i = 0; i < s.len; i++) {
        const char *rep = NULL;
        if (s.p[i] == '\\')
            rep = "\\\\";
        else if (s.p[i] == '\n')
            rep = "\\n";
        else if (quote && s.p[i] == '"')
            rep = "\\\"";
        if (!rep)
            continue;
        vg_buf_append(out, s.p + run, i - run);
        vg_buf_append(out, rep, 2);
        run = i + 1;
    }
    vg_buf_append(out, s.p + run, s.len - run);
}

void exposition_write_label_value(struct vg_buf *out, struct vg_str s)
{
    vg_buf_putc(out, '"');
    put_escaped(out, s, true);
    vg_buf_putc(out, '"');
}

/* "# HELP name " or "# TYPE name ". */
static void put_comment_head(struct vg_buf *out, const char *keyword, struct vg_str name)
{
    vg_buf_puts(out, keyword);
    vg_buf_append(out, name.p, name.len);
    vg_buf_putc(out, ' ');
}

void exposition_write_help(struct vg_buf *out, struct vg_str name, struct vg_str help)
{
    put_comment_head(out, "# HELP ", name);
    put_escaped(out, help, false);
    vg_buf_putc(out, '\n');
}

void exposition_write_type(struct vg_buf *out, struct vg_str name, enum exposition_type type)
{
    put_comment_head(out, "# TYPE ", name);
    vg_buf_puts(out, exposition_type_name(type));
    vg_buf_putc(out, '\n');
}

void exposition_write_sample(struct vg_buf *out, struct vg_str name, const struct label *labels,
                             size_t nlabels, double value, bool has_ts, int64_t ts_ms)
{
    vg_buf_append(out, name.p, name.len);
    bool open = false;
    for (size_t i = 0; i < nlabels; i++) {
        if (vg_str_eq_c(labels[i].name, "__name__"))
            continue;
        vg_buf_putc(out, open ? ',' : '{');
        open = true;
        vg_buf_append(out, labels[i].name.p, labels[i].name.len);
        vg_buf_putc(out, '=');
        exposition_write_label_value(out, labels[i].value);
    }
    if (open)
        vg_buf_putc(out, '}');
    vg_buf_putc(out, ' ');
    vg_buf_prom_float(out, value);
    if (has_ts)
        vg_buf_printf(out, " %lld", (long long)ts_ms);
    vg_buf_putc(out, '\n');
}

/* ---------------------------------------------------------------- parsing */

struct parser {
    const char *buf;
    size_t line;        /* 1-based */
    size_t line_start;  /* offset of the current line's first byte */
    size_t eol;         /* offset of its '\n' (or the input length) */
    struct vg_arena *arena;
    struct vg_err *err;
    struct label *scratch; /* labels of the sample being parsed (vg_malloc'ed) */
    size_t scap;
    bool om;            /* OpenMetrics 1.0 rules */
};

static int perr(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct parser *p, size_t at, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return vg_err_set(p->err, VG_EINVAL, "line %zu column %zu: %s", p->line,
                      at - p->line_start + 1, what);
}

static int nomem(struct parser *p)
{
    return vg_err_set(p->err, VG_ENOMEM, "line %zu: out of memory", p->line);
}

/* Describes the byte at i for messages: the character or "end of line". */
static const char *what_at(struct parser *p, size_t i, char tmp[8])
{
    if (i >= p->eol)
        return "end of line";
    unsigned char c = (unsigned char)p->buf[i];
    if (c > 0x20 && c < 0x7f)
        snprintf(tmp, 8, "'%c'", c);
    else
        snprintf(tmp, 8, "0x%02x", c);
    return tmp;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static size_t skip_blanks(struct parser *p, size_t i)
{
    while (i < p->eol && is_blank(p->buf[i]))
        i++;
    return i;
}

static bool is_name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool is_name_char(char c, bool colon)
{
    return is_name_start(c, colon) || (c >= '0' && c <= '9');
}

bool exposition_valid_name(struct vg_str s, bool metric)
{
    if (s.len == 0 || !is_name_start(s.p[0], metric))
        return false;
    for (size_t i = 1; i < s.len; i++)
        if (!is_name_char(s.p[i], metric))
            return false;
    return true;
}

/* Reads a metric name (colon allowed) or label name at i into *out; returns the index
 * after it, or 0 with err set when there is none. */
static size_t read_name(struct parser *p, size_t i, bool metric, struct vg_str *out)
{
    size_t s = i;
    if (i < p->eol && is_name_start(p->buf[i], metric)) {
        while (i < p->eol && is_name_char(p->buf[i], metric))
            i++;
    }
    if (i == s) {
        char tmp[8];
        perr(p, s, "expected %s name, found %s", metric ? "metric" : "label",
             what_at(p, s, tmp));
        return 0;
    }
    *out = (struct vg_str){ p->buf + s, i - s };
    return i;
}

static size_t token_end(struct parser *p, size_t i)
{
    while (i < p->eol && !is_blank(p->buf[i]))
        i++;
    return i;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when it is not valid (overlong
 * forms, surrogates and code points past U+10FFFF are rejected, as Go's utf8 does). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return len;
}

/* Unescapes p->buf[s..e) into *out allowing \\, \n and (when quote) \"; raw bytes must be
 * valid UTF-8 when utf8. Points into the input when there is nothing to undo. */
static int unescape(struct parser *p, size_t s, size_t e, bool quote, bool utf8,
                    struct vg_str *out)
{
    const char *b = p->buf;
    bool any = false;
    for (size_t i = s; i < e;) {
        if (b[i] == '\\') {
            char c = i + 1 < e ? b[i + 1] : 0;
            if (c != '\\' && c != 'n' && !(quote && c == '"')) {
                char tmp[8];
                return perr(p, i, "invalid escape sequence '\\' followed by %s",
                            what_at(p, i + 1 < e ? i + 1 : p->eol, tmp));
            }
            any = true;
            i += 2;
            continue;
        }
        size_t n = utf8 ? utf8_seq((const unsigned char *)b + i, e - i) : 1;
        if (n == 0)
            return perr(p, i, "invalid UTF-8 in label value");
        i += n;
    }
    if (!any) {
        *out = (struct vg_str){ b + s, e - s };
        return 0;
    }
    char *d = vg_arena_alloc(p->arena, e - s);
    if (!d)
        return nomem(p);
    size_t n = 0;
    for (size_t i = s; i < e; i++) {
        if (b[i] == '\\') {
            i++;
            d[n++] = b[i] == 'n' ? '\n' : b[i];
        } else {
            d[n++] = b[i];
        }
    }
    *out = (struct vg_str){ d, n };
    return 0;
}

static bool ieq(const char *s, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return false;
    }
    return true;
}

/* Go's strconv.ParseFloat syntax: decimal or hexadecimal (with a 'p' exponent) numbers,
 * "inf"/"infinity" with an optional sign and "nan", any case. No underscores. */
static bool parse_float(const char *s, size_t n, double *out)
{
    if (n == 0)
        return false;
    size_t k = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (ieq(s + k, n - k, "inf") || ieq(s + k, n - k, "infinity")) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (ieq(s, n, "nan")) {
        *out = NAN;
        return true;
    }
    bool hex = n - k > 2 && s[k] == '0' && (s[k + 1] == 'x' || s[k + 1] == 'X');
    bool has_p = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-' ||
                  c == 'e' || c == 'E' || (hex && ((c >= 'a' && c <= 'f') ||
                  (c >= 'A' && c <= 'F') || c == 'x' || c == 'X' || c == 'p' || c == 'P'));
        if (!ok)
            return false;
        has_p |= c == 'p' || c == 'P';
    }
    if (hex && !has_p)
        return false;
    char small[64];
    char *z = n < sizeof small ? small : vg_malloc(n + 1);
    if (!z)
        return false;
    memcpy(z, s, n);
    z[n] = '\0';
    char *end;
    errno = 0;
    double v = strtod(z, &end);
    bool ok = end == z + n && !(errno == ERANGE && isinf(v));
    if (z != small)
        vg_free(z);
    *out = v;
    return ok;
}

static bool parse_int64(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return false;
    uint64_t v = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int push_label(struct parser *p, size_t n, struct vg_str name, struct vg_str value)
{
    if (n == p->scap) {
        size_t cap = p->scap ? p->scap * 2 : 16;
        struct label *g = vg_realloc(p->scratch, cap * sizeof *g);
        if (!g)
            return nomem(p);
        p->scratch = g;
        p->scap = cap;
    }
    p->scratch[n] = (struct label){ name, value };
    return 0;
}

static int cmp_label_name(const void *a, const void *b)
{
    return vg_str_cmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

/* Copies the scratch labels to the arena into *out, rejecting a repeated name. */
static int finish_labels(struct parser *p, size_t n, size_t brace, struct label **out,
                         size_t *nout)
{
    *nout = n;
    *out = NULL;
    if (n == 0)
        return 0;
    *out = vg_arena_alloc(p->arena, n * sizeof **out);
    if (!*out)
        return nomem(p);
    memcpy(*out, p->scratch, n * sizeof **out);
    if (n == 1)
        return 0;
    /* Sort the scratch copy: quadratic checks would let one long line stall a scrape. */
    qsort(p->scratch, n, sizeof *p->scratch, cmp_label_name);
    for (size_t i = 1; i < n; i++)
        if (vg_str_eq(p->scratch[i].name, p->scratch[i - 1].name))
            return perr(p, brace, "duplicate label name \"%.*s\"",
                        (int)p->scratch[i].name.len, p->scratch[i].name.p);
    return 0;
}

/* Parses "{...}" starting at the brace at i; returns the index after '}' or 0. */
static size_t parse_labels(struct parser *p, size_t i, struct label **out, size_t *nout)
{
    size_t brace = i, n = 0;
    char tmp[8];
    i++;
    for (;;) {
        i = skip_blanks(p, i);
        if (i < p->eol && p->buf[i] == '}')
            break;
        struct vg_str name, value;
        size_t ns = i;
        if (!(i = read_name(p, i, false, &name)))
            return 0;
        if (vg_str_eq_c(name, "__name__")) {
            perr(p, ns, "label name \"__name__\" is reserved");
            return 0;
        }
        i = skip_blanks(p, i);
        if (i >= p->eol || p->buf[i] != '=') {
            perr(p, i, "expected '=' after label name, found %s", what_at(p, i, tmp));
            return 0;
        }
        i = skip_blanks(p, i + 1);
        if (i >= p->eol || p->buf[i] != '"') {
            perr(p, i, "expected '\"' to start the label value, found %s", what_at(p, i, tmp));
            return 0;
        }
        size_t vs = ++i;
        while (i < p->eol && p->buf[i] != '"')
            i += p->buf[i] == '\\' && i + 1 < p->eol ? 2 : 1;
        if (i >= p->eol) {
            perr(p, vs - 1, "unterminated label value");
            return 0;
        }
        if (unescape(p, vs, i, true, true, &value) || push_label(p, n, name, value))
            return 0;
        n++;
        i = skip_blanks(p, i + 1);
        if (i < p->eol && p->buf[i] == ',') {
            i++;
            continue;
        }
        if (i < p->eol && p->buf[i] == '}')
            break;
        perr(p, i, "expected ',' or '}' after label value, found %s", what_at(p, i, tmp));
        return 0;
    }
    if (finish_labels(p, n, brace, out, nout))
        return 0;
    return i + 1;
}

/* An OpenMetrics timestamp (float seconds) at [i, te) into *ms. */
static int parse_om_ts(struct parser *p, size_t i, size_t te, int64_t *ms)
{
    double sec;
    if (!parse_float(p->buf + i, te - i, &sec) || isnan(sec) || isinf(sec) ||
        fabs(sec) > 9.2e15)
        return perr(p, i, "invalid timestamp \"%.*s\"", (int)(te - i > 40 ? 40 : te - i),
                    p->buf + i);
    *ms = (int64_t)(sec * 1000);
    return 0;
}

/* An OpenMetrics exemplar "{labels} value [timestamp]" starting at i (after "# "). */
static int parse_exemplar(struct parser *p, size_t i, struct exposition_entry *e)
{
    char tmp[8];
    if (i >= p->eol || p->buf[i] != '{')
        return perr(p, i, "expected '{' to start the exemplar, found %s", what_at(p, i, tmp));
    if (!(i = parse_labels(p, i, &e->ex_labels, &e->ex_nlabels)))
        return p->err->code;
    i = skip_blanks(p, i);
    if (i >= p->eol)
        return perr(p, i, "expected an exemplar value, found end of line");
    size_t ve = token_end(p, i);
    if (!parse_float(p->buf + i, ve - i, &e->ex_value))
        return perr(p, i, "invalid exemplar value \"%.*s\"",
                    (int)(ve - i > 40 ? 40 : ve - i), p->buf + i);
    e->has_exemplar = true;
    i = skip_blanks(p, ve);
    if (i < p->eol) {
        size_t te = token_end(p, i);
        if (parse_om_ts(p, i, te, &e->ex_ts_ms))
            return p->err->code;
        e->ex_has_ts = true;
        i = skip_blanks(p, te);
        if (i < p->eol)
            return perr(p, i, "unexpected %s after the exemplar", what_at(p, i, tmp));
    }
    return 0;
}

static int parse_sample(struct parser *p, size_t i, struct exposition_entry *e)
{
    char tmp[8];
    e->kind = EXPOSITION_SAMPLE;
    if (!(i = read_name(p, i, true, &e->name)))
        return p->err->code;
    size_t after = i;
    i = skip_blanks(p, i);
    if (i < p->eol && p->buf[i] == '{') {
        if (!(i = parse_labels(p, i, &e->labels, &e->nlabels)))
            return p->err->code;
        i = skip_blanks(p, i);
    } else if (i == after && i < p->eol) {
        return perr(p, i, "unexpected %s after metric name", what_at(p, i, tmp));
    }
    if (i >= p->eol)
        return perr(p, i, "expected a value, found end of line");
    size_t ve = token_end(p, i);
    if (!parse_float(p->buf + i, ve - i, &e->value))
        return perr(p, i, "invalid value \"%.*s\"", (int)(ve - i > 40 ? 40 : ve - i), p->buf + i);
    i = skip_blanks(p, ve);
    if (i < p->eol && !(p->om && p->buf[i] == '#')) {
        size_t te = token_end(p, i);
        if (p->om) {
            if (parse_om_ts(p, i, te, &e->ts_ms))
                return p->err->code;
        } else if (!parse_int64(p->buf + i, te - i, &e->ts_ms)) {
            return perr(p, i, "invalid timestamp \"%.*s\"", (int)(te - i > 40 ? 40 : te - i),
                        p->buf + i);
        }
        e->has_ts = true;
        i = skip_blanks(p, te);
    }
    if (p->om && i < p->eol && p->buf[i] == '#') {
        if (i + 1 >= p->eol || p->buf[i + 1] != ' ')
            return perr(p, i, "expected \"# \" before the exemplar");
        return parse_exemplar(p, skip_blanks(p, i + 1), e);
    }
    if (i < p->eol)
        return perr(p, i, "unexpected %s after the %s", what_at(p, i, tmp),
                    e->has_ts ? "timestamp" : "value");
    return 0;
}

/* A comment line starting at the '#' at i. Returns 1 for a plain comment, 0 with e
 * filled for HELP/TYPE, or a negative code. */
static int parse_comment(struct parser *p, size_t i, struct exposition_entry *e)
{
    char tmp[8];
    i = skip_blanks(p, i + 1);
    size_t we = token_end(p, i);
    bool help = we - i == 4 && memcmp(p->buf + i, "HELP", 4) == 0;
    bool type = we - i == 4 && memcmp(p->buf + i, "TYPE", 4) == 0;
    bool unit = p->om && we - i == 4 && memcmp(p->buf + i, "UNIT", 4) == 0;
    if (p->om && !help && !type && !unit)
        return perr(p, i, "unknown comment \"%.*s\" (OpenMetrics allows HELP, TYPE, UNIT and "
                    "EOF)", (int)(we - i > 40 ? 40 : we - i), p->buf + i);
    if (!help && !type && !unit)
        return 1;
    e->kind = help ? EXPOSITION_HELP : type ? EXPOSITION_TYPE : EXPOSITION_UNIT;
    i = skip_blanks(p, we);
    if (!(i = read_name(p, i, true, &e->name)))
        return p->err->code;
    if (i < p->eol && !is_blank(p->buf[i]))
        return perr(p, i, "unexpected %s after metric name", what_at(p, i, tmp));
    i = skip_blanks(p, i);
    if (help) {
        e->help = (struct vg_str){ p->buf + i, 0 };
        return unescape(p, i, p->eol, p->om, false, &e->help);
    }
    size_t te = token_end(p, i);
    if (unit) {
        e->unit = (struct vg_str){ p->buf + i, te - i };
        i = skip_blanks(p, te);
        if (i < p->eol)
            return perr(p, i, "unexpected %s after the unit", what_at(p, i, tmp));
        return 0;
    }
    static const enum exposition_type types[] = { EXPOSITION_COUNTER, EXPOSITION_GAUGE,
        EXPOSITION_HISTOGRAM, EXPOSITION_SUMMARY, EXPOSITION_UNTYPED };
    static const enum exposition_type om_types[] = { EXPOSITION_COUNTER, EXPOSITION_GAUGE,
        EXPOSITION_HISTOGRAM, EXPOSITION_GAUGEHISTOGRAM, EXPOSITION_SUMMARY, EXPOSITION_INFO,
        EXPOSITION_STATESET, EXPOSITION_UNKNOWN };
    const enum exposition_type *tv = p->om ? om_types : types;
    size_t nt = p->om ? sizeof om_types / sizeof om_types[0] : sizeof types / sizeof types[0];
    size_t k = 0;
    while (k < nt && !(strlen(type_names[tv[k]]) == te - i &&
                       memcmp(p->buf + i, type_names[tv[k]], te - i) == 0))
        k++;
    if (k == nt)
        return perr(p, i, "unknown metric type \"%.*s\" (valid: %s)",
                    (int)(te - i > 40 ? 40 : te - i), p->buf + i,
                    p->om ? "counter, gauge, histogram, gaugehistogram, summary, info, "
                            "stateset, unknown"
                          : "counter, gauge, histogram, summary, untyped");
    e->type = tv[k];
    i = skip_blanks(p, te);
    if (i < p->eol)
        return perr(p, i, "unexpected %s after the metric type", what_at(p, i, tmp));
    return 0;
}

static bool is_eof_line(const struct parser *p, size_t i)
{
    return p->eol - i == 5 && memcmp(p->buf + i, "# EOF", 5) == 0;
}

static int parse_lines(const char *buf, size_t len, bool om, struct vg_arena *arena,
                       exposition_fn fn, void *ctx, struct vg_err *err)
{
    struct vg_err local;
    struct parser p = { .buf = buf, .arena = arena, .err = err ? err : &local, .om = om };
    int rc = 0;
    size_t pos = 0;
    bool eof = false;
    while (pos < len && rc == 0) {
        p.line++;
        p.line_start = pos;
        const char *nl = memchr(buf + pos, '\n', len - pos);
        p.eol = nl ? (size_t)(nl - buf) : len;
        size_t i = skip_blanks(&p, pos);
        pos = p.eol + 1;
        if (om && eof) {
            rc = perr(&p, p.line_start, "unexpected data after # EOF");
            break;
        }
        if (om && is_eof_line(&p, p.line_start)) {
            eof = true;
            continue;
        }
        if (i == p.eol) {
            if (om)
                rc = perr(&p, i, "blank lines are not allowed in OpenMetrics");
            continue;
        }
        struct exposition_entry e = { .line = p.line };
        if (buf[i] == '#') {
            rc = parse_comment(&p, i, &e);
            if (rc == 1) {
                rc = 0;
                continue;
            }
        } else {
            rc = parse_sample(&p, i, &e);
        }
        if (rc == 0)
            rc = fn(ctx, &e, p.err);
    }
    if (om && rc == 0 && !eof)
        rc = vg_err_set(p.err, VG_EINVAL, "line %zu: missing # EOF at the end of the input",
                        p.line + 1);
    vg_free(p.scratch);
    return rc;
}

int exposition_parse(const char *buf, size_t len, struct vg_arena *arena, exposition_fn fn,
                     void *ctx, struct vg_err *err)
{
    return parse_lines(buf, len, false, arena, fn, ctx, err);
}

int exposition_parse_openmetrics(const char *buf, size_t len, struct vg_arena *arena,
                                 exposition_fn fn, void *ctx, struct vg_err *err)
{
    return parse_lines(buf, len, true, arena, fn, ctx, err);
}

struct collect {
    struct vg_arena *arena;
    struct exposition_entry *v;
    size_t n, cap;
};

static int collect_entry(void *ctx, const struct exposition_entry *e, struct vg_err *err)
{
    struct collect *c = ctx;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        struct exposition_entry *g = vg_arena_alloc(c->arena, cap * sizeof *g);
        if (!g)
            return vg_err_set(err, VG_ENOMEM, "line %zu: out of memory", e->line);
        if (c->n)
            memcpy(g, c->v, c->n * sizeof *g);
        c->v = g;
        c->cap = cap;
    }
    c->v[c->n++] = *e;
    return 0;
}

int exposition_parse_all(const char *buf, size_t len, struct vg_arena *arena,
                         struct exposition_entry **out, size_t *n, struct vg_err *err)
{
    struct collect c = { .arena = arena };
    int rc = exposition_parse(buf, len, arena, collect_entry, &c, err);
    *out = rc ? NULL : c.v;
    *n = rc ? 0 : c.n;
    return rc;
}
