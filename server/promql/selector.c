/* selector: see selector.h. A hand-written scanner over the bytes s[0..len), no
 * NUL-termination assumed.
 *
 * Accepted forms (PromQL's vector selector without offset, @ or range):
 *   name
 *   name{matchers}
 *   {matchers}
 * where matchers is a comma-separated list (trailing comma allowed) of
 *   label op string          label = [a-zA-Z_][a-zA-Z0-9_]* or a quoted string (Prometheus 3)
 *   string                   a lone quoted string is the metric name (Prometheus 3 `{"a.b"}`)
 * Strings follow PromQL's lexer, which uses Go's rules: "..." and '...' take the escapes
 * \a \b \f \n \r \t \v \\, the quote itself, \ooo (octal, <= 255), \xhh, \uhhhh and
 * \Uhhhhhhhh (valid code points only); an unescaped newline ends nothing and is an
 * error; `...` is raw (no escapes, newlines allowed). Whitespace and # comments may
 * separate tokens. Errors read like Prometheus's: "1:12: parse error: <what>", with
 * 1-based line and column (in bytes). */
#include "selector.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    struct selector *out;
    size_t cap;
    struct vg_buf scratch; /* unquoted string value */
    struct vg_buf scratch2; /* unquoted quoted label name */
    struct vg_err *err;
    bool have_outer_name;
    const char *outer_name;
    size_t outer_len;
};

/* Prints at most 64 bytes for error messages. */
#define SHOWN(p, n) (int)((n) > 64 ? 64 : (n)), (p)

static int perr(struct parser *ps, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(struct parser *ps, size_t at, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < ps->len; i++) {
        if (ps->s[i] == '\n') {
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
    return vg_err_set(ps->err, VG_EINVAL, "%zu:%zu: parse error: %s", line, col, what);
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t l;
    unsigned min;
    if (c < 0x80)
        return 1;
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
    return l;
}

static void put_utf8(struct vg_buf *b, unsigned cp)
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

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void skip_space(struct parser *ps)
{
    while (ps->pos < ps->len) {
        char c = ps->s[ps->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            ps->pos++;
        } else if (c == '#') {
            while (ps->pos < ps->len && ps->s[ps->pos] != '\n')
                ps->pos++;
        } else {
            break;
        }
    }
}

static bool at_end(struct parser *ps)
{
    return ps->pos >= ps->len;
}

static char peek(struct parser *ps)
{
    return ps->pos < ps->len ? ps->s[ps->pos] : '\0';
}

static bool is_quote(char c)
{
    return c == '"' || c == '\'' || c == '`';
}

/* One escape sequence after the backslash at ps->pos - 1, appended to b. */
static int unescape(struct parser *ps, char quote, struct vg_buf *b)
{
    size_t at = ps->pos - 1;
    if (at_end(ps))
        return perr(ps, at, "escape sequence not terminated");
    char c = ps->s[ps->pos++];
    switch (c) {
    case 'a': vg_buf_putc(b, '\a'); return 0;
    case 'b': vg_buf_putc(b, '\b'); return 0;
    case 'f': vg_buf_putc(b, '\f'); return 0;
    case 'n': vg_buf_putc(b, '\n'); return 0;
    case 'r': vg_buf_putc(b, '\r'); return 0;
    case 't': vg_buf_putc(b, '\t'); return 0;
    case 'v': vg_buf_putc(b, '\v'); return 0;
    case '\\': vg_buf_putc(b, '\\'); return 0;
    default: break;
    }
    if (c == quote) {
        vg_buf_putc(b, c);
        return 0;
    }
    unsigned digits, base;
    if (c >= '0' && c <= '7') {
        digits = 3;
        base = 8;
        ps->pos--; /* the first digit is part of the value */
    } else if (c == 'x') {
        digits = 2;
        base = 16;
    } else if (c == 'u') {
        digits = 4;
        base = 16;
    } else if (c == 'U') {
        digits = 8;
        base = 16;
    } else {
        return perr(ps, at, "unknown escape sequence '\\%c'", c >= 0x20 && c < 0x7f ? c : '?');
    }
    unsigned long v = 0;
    for (unsigned i = 0; i < digits; i++) {
        if (at_end(ps))
            return perr(ps, at, "escape sequence not terminated");
        int d = hexval(ps->s[ps->pos]);
        if (d < 0 || (unsigned)d >= base)
            return perr(ps, ps->pos, "illegal character in escape sequence");
        v = v * base + (unsigned)d;
        ps->pos++;
    }
    if (base == 8 || c == 'x') {
        /* Go: octal and \x produce one byte, which need not be valid UTF-8. */
        if (v > 255)
            return perr(ps, at, "octal escape value > 255: %lu", v);
        vg_buf_putc(b, (char)v);
        return 0;
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return perr(ps, at, "escape sequence is an invalid Unicode code point");
    put_utf8(b, (unsigned)v);
    return 0;
}

/* A quoted string starting at ps->pos (on its quote), unquoted into b (reset first). */
static int parse_string(struct parser *ps, struct vg_buf *b)
{
    size_t start = ps->pos;
    char quote = ps->s[ps->pos++];
    vg_buf_reset(b);
    for (;;) {
        if (at_end(ps))
            return perr(ps, start, quote == '`' ? "unterminated raw string"
                                                : "unterminated quoted string");
        char c = ps->s[ps->pos];
        if (c == quote) {
            ps->pos++;
            break;
        }
        if (c == '\n' && quote != '`')
            return perr(ps, start, "unterminated quoted string");
        if (c == '\\' && quote != '`') {
            ps->pos++;
            int rc = unescape(ps, quote, b);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t l = utf8_len((const unsigned char *)ps->s + ps->pos, ps->len - ps->pos);
        if (l == 0)
            return perr(ps, ps->pos, "invalid UTF-8 rune");
        vg_buf_append(b, ps->s + ps->pos, l);
        ps->pos += l;
    }
    vg_buf_cstr(b);
    if (vg_buf_failed(b))
        return vg_err_set(ps->err, VG_ENOMEM, "out of memory parsing a selector");
    return 0;
}

static bool ident_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool ident_char(char c, bool colon)
{
    return ident_start(c, colon) || (c >= '0' && c <= '9');
}

/* Length of the identifier at ps->pos (metric names may hold ':', label names not). */
static size_t ident_len(struct parser *ps, bool colon)
{
    size_t i = ps->pos;
    if (i >= ps->len || !ident_start(ps->s[i], colon))
        return 0;
    while (i < ps->len && ident_char(ps->s[i], colon))
        i++;
    return i - ps->pos;
}

static int add_matcher(struct parser *ps, size_t at, enum matcher_op op, struct vg_str name,
                       struct vg_str value)
{
    if (ps->have_outer_name && vg_str_eq_c(name, "__name__"))
        return perr(ps, at, "metric name must not be set twice: \"%.*s\" or \"%.*s\"",
                    SHOWN(ps->outer_name, ps->outer_len), SHOWN(value.p, value.len));
    if (ps->out->n == ps->cap) {
        size_t ncap = ps->cap ? ps->cap * 2 : 4;
        struct matcher **nm = vg_realloc(ps->out->ms, ncap * sizeof *nm);
        if (!nm)
            return vg_err_set(ps->err, VG_ENOMEM, "out of memory parsing a selector");
        ps->out->ms = nm;
        ps->cap = ncap;
    }
    struct vg_err merr;
    vg_err_clear(&merr);
    struct matcher *m = matcher_new(op, name, value, &merr);
    if (!m) {
        if (merr.code == VG_ENOMEM)
            return vg_err_set(ps->err, VG_ENOMEM, "%s", merr.msg);
        return perr(ps, at, "%s", merr.msg);
    }
    ps->out->ms[ps->out->n++] = m;
    return 0;
}

/* `= != =~ !~` at ps->pos. */
static int parse_op(struct parser *ps, enum matcher_op *op)
{
    char c = peek(ps);
    char d = ps->pos + 1 < ps->len ? ps->s[ps->pos + 1] : '\0';
    if (c == '=' && d == '~') {
        *op = MATCH_RE;
        ps->pos += 2;
    } else if (c == '=') {
        *op = MATCH_EQ;
        ps->pos += 1;
    } else if (c == '!' && d == '=') {
        *op = MATCH_NEQ;
        ps->pos += 2;
    } else if (c == '!' && d == '~') {
        *op = MATCH_NRE;
        ps->pos += 2;
    } else if (at_end(ps)) {
        return perr(ps, ps->pos, "unexpected end of input inside braces, expected a label "
                                 "matching operator (=, !=, =~, !~)");
    } else {
        return perr(ps, ps->pos, "unexpected character '%c' inside braces, expected a label "
                                 "matching operator (=, !=, =~, !~)", c);
    }
    return 0;
}

/* Describes what sits at ps->pos for "unexpected ..." messages. */
static const char *what_here(struct parser *ps, char *tmp, size_t cap)
{
    if (at_end(ps))
        return "end of input";
    char c = ps->s[ps->pos];
    if (c >= 0x21 && c < 0x7f)
        snprintf(tmp, cap, "character '%c'", c);
    else
        snprintf(tmp, cap, "byte 0x%02x", (unsigned char)c);
    return tmp;
}

/* One item inside braces; ps->pos is on its first byte. */
static int parse_item(struct parser *ps)
{
    size_t at = ps->pos;
    struct vg_str name;
    bool quoted = false;
    if (is_quote(peek(ps))) {
        int rc = parse_string(ps, &ps->scratch2);
        if (rc < 0)
            return rc;
        name = (struct vg_str){ ps->scratch2.p, ps->scratch2.len };
        quoted = true;
    } else {
        size_t n = ident_len(ps, false);
        if (n == 0) {
            char tmp[32];
            return perr(ps, ps->pos, "unexpected %s inside braces, expected a label name",
                        what_here(ps, tmp, sizeof tmp));
        }
        name = (struct vg_str){ ps->s + ps->pos, n };
        ps->pos += n;
    }
    skip_space(ps);
    char c = peek(ps);
    if (quoted && (c == ',' || c == '}')) {
        /* Prometheus 3: {"metric.name", ...} names the metric. */
        return add_matcher(ps, at, MATCH_EQ, VG_STR("__name__"), name);
    }
    if (quoted && name.len == 0)
        return perr(ps, at, "label name must not be empty");
    enum matcher_op op = MATCH_EQ;
    int rc = parse_op(ps, &op);
    if (rc < 0)
        return rc;
    skip_space(ps);
    if (!is_quote(peek(ps))) {
        char tmp[32];
        return perr(ps, ps->pos, "unexpected %s inside braces, expected a quoted string",
                    what_here(ps, tmp, sizeof tmp));
    }
    rc = parse_string(ps, &ps->scratch);
    if (rc < 0)
        return rc;
    return add_matcher(ps, at, op, name, (struct vg_str){ ps->scratch.p, ps->scratch.len });
}

static int parse_braces(struct parser *ps)
{
    ps->pos++; /* '{' */
    for (;;) {
        skip_space(ps);
        if (peek(ps) == '}') {
            ps->pos++;
            return 0;
        }
        if (at_end(ps))
            return perr(ps, ps->pos, "unexpected end of input inside braces");
        int rc = parse_item(ps);
        if (rc < 0)
            return rc;
        skip_space(ps);
        char c = peek(ps);
        if (c == ',') {
            ps->pos++;
        } else if (c != '}') {
            char tmp[32];
            return perr(ps, ps->pos, "unexpected %s inside braces, expected ',' or '}'",
                        what_here(ps, tmp, sizeof tmp));
        }
    }
}

static int parse(struct parser *ps)
{
    skip_space(ps);
    size_t n = ident_len(ps, true);
    if (n > 0) {
        size_t at = ps->pos;
        ps->outer_name = ps->s + ps->pos;
        ps->outer_len = n;
        ps->pos += n;
        int rc = add_matcher(ps, at, MATCH_EQ, VG_STR("__name__"),
                             (struct vg_str){ ps->outer_name, n });
        if (rc < 0)
            return rc;
        ps->have_outer_name = true;
        skip_space(ps);
    }
    if (peek(ps) == '{') {
        int rc = parse_braces(ps);
        if (rc < 0)
            return rc;
        skip_space(ps);
    } else if (n == 0) {
        char tmp[32];
        return perr(ps, ps->pos, "unexpected %s, expected a metric name or '{'",
                    what_here(ps, tmp, sizeof tmp));
    }
    if (!at_end(ps)) {
        char tmp[32];
        return perr(ps, ps->pos, "unexpected %s after the selector (only a series selector "
                                 "is allowed here)", what_here(ps, tmp, sizeof tmp));
    }
    for (size_t i = 0; i < ps->out->n; i++)
        if (!ps->out->ms[i]->matches_empty)
            return 0;
    return perr(ps, 0, "vector selector must contain at least one non-empty matcher");
}

int selector_parse(const char *s, size_t len, struct selector *out, struct vg_err *err)
{
    struct parser ps = { .s = s, .len = len, .out = out, .err = err };
    out->ms = NULL;
    out->n = 0;
    vg_buf_init(&ps.scratch);
    vg_buf_init(&ps.scratch2);
    int rc = parse(&ps);
    vg_buf_free(&ps.scratch);
    vg_buf_free(&ps.scratch2);
    if (rc < 0)
        selector_free(out);
    return rc;
}

void selector_free(struct selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        matcher_free(s->ms[i]);
    vg_free(s->ms);
    s->ms = NULL;
    s->n = 0;
}
