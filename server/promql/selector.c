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

#include "lexer.h"

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
    char what[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return lexer_error(ps->err, ps->s, ps->len, at, "%s", what);
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

/* A quoted string starting at ps->pos (on its quote), unquoted into b (reset first).
 * The scanning is lexer.c's (PromQL's rules); the messages are this parser's own. */
static int parse_string(struct parser *ps, struct vg_buf *b)
{
    struct lexer_str_error e;
    size_t end;
    vg_buf_reset(b);
    switch (lexer_scan_string(ps->s, ps->len, ps->pos, &end, b, &e)) {
    case LS_OK:
        break;
    case LS_NOMEM:
        return vg_err_set(ps->err, VG_ENOMEM, "out of memory parsing a selector");
    case LS_UNTERMINATED:
        return perr(ps, e.at, "unterminated quoted string");
    case LS_UNTERMINATED_RAW:
        return perr(ps, e.at, "unterminated raw string");
    case LS_BAD_UTF8:
        return perr(ps, e.at, "invalid UTF-8 rune");
    case LS_ESC_UNTERMINATED:
        return perr(ps, e.at, "escape sequence not terminated");
    case LS_ESC_UNKNOWN:
        return perr(ps, e.at, "unknown escape sequence '\\%c'",
                    e.ch >= 0x20 && e.ch < 0x7f ? (char)e.ch : '?');
    case LS_ESC_ILLEGAL:
        return perr(ps, e.at, "illegal character in escape sequence");
    case LS_ESC_RANGE:
        if (e.value <= 0777) /* three octal digits */
            return perr(ps, e.at, "octal escape value > 255: %lu", e.value);
        return perr(ps, e.at, "escape sequence is an invalid Unicode code point");
    }
    ps->pos = end;
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
