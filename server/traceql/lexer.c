/* lexer: see lexer.h. */
#include "lexer.h"

#include "ast.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c == ':';
}

/* Bytes that end an unquoted attribute name (Tempo's lexer stops at these too). */
static bool ends_attr(char c)
{
    return is_space(c) || strchr("{}()=~!<>&|^,\"`", c) != NULL;
}

/* ---- durations (Go's time.ParseDuration) ---- */

struct unit {
    const char *name;
    int64_t ns;
};
static const struct unit units[] = {
    { "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 }, { "\xce\xbcs", 1000 },
    { "ms", 1000000 }, { "s", 1000000000 }, { "m", 60000000000 }, { "h", 3600000000000 },
};

/* The unit at s[0..n): its length (longest match), 0 when none. */
static size_t unit_at(const char *s, size_t n, int64_t *ns)
{
    size_t best = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t l = strlen(units[i].name);
        if (l <= n && l > best && !memcmp(s, units[i].name, l)) {
            best = l;
            *ns = units[i].ns;
        }
    }
    return best;
}

/* Reads "<digits>[.<digits>]<unit>" pairs from s[*i..n); the total in *ns. Returns
 * false when no pair was read or on overflow. */
static bool read_pairs(const char *s, size_t n, size_t *i, int64_t *ns)
{
    uint64_t total = 0;
    size_t pairs = 0;
    while (*i < n && (is_digit(s[*i]) || s[*i] == '.')) {
        uint64_t whole = 0, frac = 0, scale = 1;
        size_t j = *i, digits = 0;
        for (; j < n && is_digit(s[j]); j++, digits++) {
            if (whole > (UINT64_MAX - 9) / 10)
                return false;
            whole = whole * 10 + (uint64_t)(s[j] - '0');
        }
        if (j < n && s[j] == '.') {
            for (j++; j < n && is_digit(s[j]); j++, digits++)
                if (scale < 1000000000000000000ULL) { /* later digits cannot matter */
                    frac = frac * 10 + (uint64_t)(s[j] - '0');
                    scale *= 10;
                }
        }
        int64_t u;
        size_t ul = digits ? unit_at(s + j, n - j, &u) : 0;
        if (!ul)
            return false;
        if (whole > (uint64_t)INT64_MAX / (uint64_t)u)
            return false;
        uint64_t v = whole * (uint64_t)u;
        v += (uint64_t)((double)frac * ((double)u / (double)scale));
        if (v > (uint64_t)INT64_MAX - total)
            return false;
        total += v;
        *i = j + ul;
        pairs++;
    }
    *ns = (int64_t)total;
    return pairs > 0;
}

int traceql_parse_duration(const char *s, size_t n, int64_t *ns)
{
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '-' || s[0] == '+'))
        neg = s[i++] == '-';
    if (n - i == 1 && s[i] == '0') {
        *ns = 0;
        return 0;
    }
    if (!read_pairs(s, n, &i, ns) || i != n)
        return -1;
    if (neg)
        *ns = -*ns;
    return 0;
}

/* ---- strings ---- */

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

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static void tok_error(struct traceql_tok *t, size_t at, const char *msg)
{
    t->kind = TK_ERROR;
    t->start = at;
    snprintf(t->msg, sizeof t->msg, "%s", msg);
}

/* A quoted string starting at s[i] (the quote); fills t->s/slen and t->end. */
static bool lex_string(const char *s, size_t len, size_t i, struct traceql_tok *t, char *buf)
{
    char q = s[i];
    size_t j = i + 1, o = 0;
    bool escaped = false;
    while (j < len && s[j] != q) {
        char c = s[j++];
        if (q == '"' && c == '\n') {
            tok_error(t, i, "newline in string");
            return false;
        }
        if (q == '`' || c != '\\') {
            if (o < TRACEQL_MAX_STRING)
                buf[o] = c;
            o++;
            continue;
        }
        escaped = true;
        if (j >= len)
            break;
        c = s[j++];
        uint32_t cp = 0;
        int digits = 0;
        switch (c) {
        case 'n': c = '\n'; break;
        case 't': c = '\t'; break;
        case 'r': c = '\r'; break;
        case 'a': c = '\a'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'v': c = '\v'; break;
        case '\\': case '"': case '\'': break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (c >= '0' && c <= '7') { /* three octal digits */
                if (j + 2 > len || s[j] < '0' || s[j] > '7' || s[j + 1] < '0' || s[j + 1] > '7') {
                    tok_error(t, j - 2, "invalid octal escape in string");
                    return false;
                }
                cp = (uint32_t)((c - '0') * 64 + (s[j] - '0') * 8 + (s[j + 1] - '0'));
                j += 2;
                if (cp > 255) {
                    tok_error(t, j - 4, "octal escape value > 255 in string");
                    return false;
                }
                c = (char)cp;
                break;
            }
            tok_error(t, j - 2, "unknown escape sequence in string");
            return false;
        }
        if (digits) {
            for (int k = 0; k < digits; k++) {
                int h = j < len ? hexval(s[j]) : -1;
                if (h < 0) {
                    tok_error(t, j, "invalid hex escape in string");
                    return false;
                }
                cp = cp * 16 + (uint32_t)h;
                j++;
            }
            if (digits > 2 && (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))) {
                tok_error(t, j - (size_t)digits - 2, "escape sequence is invalid Unicode");
                return false;
            }
            char tmp[4];
            size_t l = digits == 2 ? (tmp[0] = (char)cp, 1) : put_utf8(tmp, cp);
            for (size_t k = 0; k < l; k++, o++)
                if (o < TRACEQL_MAX_STRING)
                    buf[o] = tmp[k];
            continue;
        }
        if (o < TRACEQL_MAX_STRING)
            buf[o] = c;
        o++;
    }
    if (j >= len) {
        tok_error(t, i, "literal not terminated");
        return false;
    }
    if (o > TRACEQL_MAX_STRING) {
        tok_error(t, i, "string too long");
        return false;
    }
    if (escaped) {
        t->s = buf;
        t->slen = o;
    } else {
        t->s = s + i + 1;
        t->slen = j - i - 1;
    }
    t->end = j + 1;
    return true;
}

/* ---- words ---- */

struct word {
    const char *text;
    enum traceql_tk kind;
    int sub;
};

static const struct word words[] = {
    { "true", TK_TRUE, 0 }, { "false", TK_FALSE, 0 }, { "nil", TK_NIL, 0 },
    { "ok", TK_STATUS, 1 }, { "error", TK_STATUS, 2 }, { "unset", TK_STATUS, 0 },
    { "unspecified", TK_KIND, 0 }, { "internal", TK_KIND, 1 }, { "server", TK_KIND, 2 },
    { "client", TK_KIND, 3 }, { "producer", TK_KIND, 4 }, { "consumer", TK_KIND, 5 },
    { "name", TK_INTRINSIC, TQ_I_NAME }, { "span:name", TK_INTRINSIC, TQ_I_NAME },
    { "status", TK_INTRINSIC, TQ_I_STATUS }, { "span:status", TK_INTRINSIC, TQ_I_STATUS },
    { "statusMessage", TK_INTRINSIC, TQ_I_STATUS_MESSAGE },
    { "span:statusMessage", TK_INTRINSIC, TQ_I_STATUS_MESSAGE },
    { "duration", TK_INTRINSIC, TQ_I_DURATION },
    { "span:duration", TK_INTRINSIC, TQ_I_DURATION },
    { "kind", TK_INTRINSIC, TQ_I_KIND }, { "span:kind", TK_INTRINSIC, TQ_I_KIND },
    { "rootName", TK_INTRINSIC, TQ_I_ROOT_NAME },
    { "trace:rootName", TK_INTRINSIC, TQ_I_ROOT_NAME },
    { "rootServiceName", TK_INTRINSIC, TQ_I_ROOT_SERVICE },
    { "trace:rootService", TK_INTRINSIC, TQ_I_ROOT_SERVICE },
    { "traceDuration", TK_INTRINSIC, TQ_I_TRACE_DURATION },
    { "trace:duration", TK_INTRINSIC, TQ_I_TRACE_DURATION },
    { "count", TK_AGG, TQ_AGG_COUNT }, { "avg", TK_AGG, TQ_AGG_AVG },
    { "min", TK_AGG, TQ_AGG_MIN }, { "max", TK_AGG, TQ_AGG_MAX }, { "sum", TK_AGG, TQ_AGG_SUM },
    { "select", TK_SELECT, 0 },
};

/* An attribute name after the dot at s[i]; fills t->s/slen and t->end. */
static bool lex_attr_name(const char *s, size_t len, size_t i, struct traceql_tok *t, char *buf)
{
    if (i < len && s[i] == '"') {
        if (!lex_string(s, len, i, t, buf))
            return false;
    } else {
        size_t j = i;
        while (j < len && !ends_attr(s[j]))
            j++;
        t->s = s + i;
        t->slen = j - i;
        t->end = j;
    }
    if (!t->slen) {
        tok_error(t, t->start, "attribute name is empty");
        return false;
    }
    return true;
}

static void lex_number(const char *s, size_t len, size_t i, struct traceql_tok *t)
{
    size_t j = i;
    while (j < len && is_digit(s[j]))
        j++;
    bool frac = j + 1 < len && s[j] == '.' && is_digit(s[j + 1]);
    if (frac)
        for (j++; j < len && is_digit(s[j]); j++)
            ;
    size_t k = i;
    int64_t ns;
    if (j < len && (is_word(s[j]) || s[j] == '\xc2' || s[j] == '\xce') && !is_digit(s[j])) {
        if (!read_pairs(s, len, &k, &ns) || (k < len && is_word(s[k]))) {
            tok_error(t, i, "invalid duration");
            return;
        }
        t->kind = TK_DURATION;
        t->i = ns;
        t->end = k;
        return;
    }
    t->end = j;
    char tmp[64];
    if (j - i >= sizeof tmp) {
        tok_error(t, i, "number too long");
        return;
    }
    memcpy(tmp, s + i, j - i);
    tmp[j - i] = 0;
    if (frac) {
        t->kind = TK_FLOAT;
        t->f = strtod(tmp, NULL); /* the lexer checked the digits already */
        return;
    }
    uint64_t v = 0;
    for (size_t p = i; p < j; p++) {
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(s[p] - '0')) / 10) {
            tok_error(t, i, "integer out of range");
            return;
        }
        v = v * 10 + (uint64_t)(s[p] - '0');
    }
    t->kind = TK_INT;
    t->i = (int64_t)v;
}

static void lex_word(const char *s, size_t len, size_t i, struct traceql_tok *t, char *buf)
{
    size_t j = i;
    while (j < len && is_word(s[j]))
        j++;
    size_t n = j - i;
    if (j < len && s[j] == '.' && ((n == 4 && !memcmp(s + i, "span", 4)) ||
                                   (n == 8 && !memcmp(s + i, "resource", 8)))) {
        t->kind = TK_ATTR;
        t->sub = n == 4 ? TQ_SCOPE_SPAN : TQ_SCOPE_RESOURCE;
        lex_attr_name(s, len, j + 1, t, buf);
        return;
    }
    t->end = j;
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (strlen(words[k].text) == n && !memcmp(words[k].text, s + i, n)) {
            t->kind = words[k].kind;
            t->sub = words[k].sub;
            return;
        }
    t->kind = TK_ERROR;
    snprintf(t->msg, sizeof t->msg, "unknown identifier \"%.*s\"", (int)(n > 64 ? 64 : n),
             s + i);
}

void traceql_lex(const char *s, size_t len, size_t i, struct traceql_tok *t, char *buf)
{
    memset(t, 0, sizeof *t);
    while (i < len && is_space(s[i]))
        i++;
    t->start = i;
    t->end = i + 1;
    if (i >= len) {
        t->kind = TK_EOF;
        t->end = i;
        return;
    }
    char c = s[i], d = i + 1 < len ? s[i + 1] : 0;
    switch (c) {
    case '{': t->kind = TK_LBRACE; return;
    case '}': t->kind = TK_RBRACE; return;
    case '(': t->kind = TK_LPAREN; return;
    case ')': t->kind = TK_RPAREN; return;
    case ',': t->kind = TK_COMMA; return;
    case '~': t->kind = TK_TILDE; return;
    case '-': t->kind = TK_MINUS; return;
    case '|':
        t->kind = d == '|' ? TK_OR : TK_PIPE;
        t->end += d == '|';
        return;
    case '&':
        if (d != '&')
            break;
        t->kind = TK_AND;
        t->end++;
        return;
    case '!':
        t->kind = d == '=' ? TK_NEQ : d == '~' ? TK_NRE : TK_NOT;
        t->end += t->kind != TK_NOT;
        return;
    case '=':
        t->kind = d == '~' ? TK_RE : TK_EQ;
        t->end += d == '~';
        return;
    case '>':
        t->kind = d == '=' ? TK_GTE : d == '>' ? TK_DESC : TK_GT;
        t->end += t->kind != TK_GT;
        return;
    case '<':
        t->kind = d == '=' ? TK_LTE : d == '<' ? TK_ANCE : TK_LT;
        t->end += t->kind != TK_LT;
        return;
    case '"':
    case '`':
        if (lex_string(s, len, i, t, buf))
            t->kind = TK_STRING;
        return;
    case '.':
        if (is_digit(d)) {
            lex_number(s, len, i, t);
            return;
        }
        t->kind = TK_ATTR;
        t->sub = TQ_SCOPE_ANY;
        lex_attr_name(s, len, i + 1, t, buf);
        return;
    default:
        if (is_digit(c)) {
            lex_number(s, len, i, t);
            return;
        }
        if (is_word(c)) {
            lex_word(s, len, i, t, buf);
            return;
        }
        break;
    }
    t->kind = TK_ERROR;
    if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
        snprintf(t->msg, sizeof t->msg, "unexpected character '%c'", c);
    else
        snprintf(t->msg, sizeof t->msg, "unexpected byte 0x%02x", (unsigned char)c);
}

const char *traceql_tok_name(const struct traceql_tok *t)
{
    static const char *const names[] = {
        [TK_EOF] = "end of input", [TK_ERROR] = "error", [TK_LBRACE] = "{",
        [TK_RBRACE] = "}", [TK_LPAREN] = "(", [TK_RPAREN] = ")", [TK_COMMA] = ",",
        [TK_PIPE] = "|", [TK_AND] = "&&", [TK_OR] = "||", [TK_NOT] = "!", [TK_EQ] = "=",
        [TK_NEQ] = "!=", [TK_GT] = ">", [TK_GTE] = ">=", [TK_LT] = "<", [TK_LTE] = "<=",
        [TK_RE] = "=~", [TK_NRE] = "!~", [TK_DESC] = ">>", [TK_ANCE] = "<<", [TK_TILDE] = "~",
        [TK_MINUS] = "-", [TK_STRING] = "STRING", [TK_INT] = "INTEGER", [TK_FLOAT] = "FLOAT",
        [TK_DURATION] = "DURATION", [TK_TRUE] = "true", [TK_FALSE] = "false", [TK_NIL] = "nil",
        [TK_STATUS] = "STATUS", [TK_KIND] = "KIND", [TK_INTRINSIC] = "INTRINSIC",
        [TK_ATTR] = "ATTRIBUTE", [TK_AGG] = "AGGREGATE", [TK_SELECT] = "select",
    };
    return (unsigned)t->kind < sizeof names / sizeof names[0] ? names[t->kind] : "?";
}
