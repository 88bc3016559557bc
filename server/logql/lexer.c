/* lexer: see lexer.h. String unescaping, Go number reading and Prometheus durations
 * come from the PromQL lexer's helpers (lexer_scan_string, lexer_parse_number,
 * lexer_parse_duration); what is LogQL's own is here: the token table, Go's
 * time.ParseDuration and go-humanize's ParseBytes for label filter values, and Loki's
 * function-or-identifier rule. */
#include "lexer.h"

#include "../../storage/base/vg_buf.h"
#include "../promql/lexer.h"
#include "ast.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Loki's token names in yacc messages: the text for operators and keywords, the yacc
 * symbol for the others. */
static const char *const tk_names[] = {
    "$end", "error", "IDENTIFIER", "STRING", "NUMBER", "DURATION", "BYTES", "RANGE",
    "PARSER_FLAG", ",", ".", "{", "}", "=", "!=", "=~", "!~", "!>", "|=", "|~", "|>", "|",
    "(", ")", "]", "+", "-", "*", "/", "%", "^", "==", ">", ">=", "<", "<=", "by",
    "without", "bool", "offset", "on", "ignoring", "group_left", "group_right", "or",
    "and", "unless", "json", "regexp", "logfmt", "unpack", "pattern", "label_format",
    "line_format", "decolorize", "drop", "keep", "unwrap", "ip", "label_replace", "VECTOR",
};
static const char *const range_syms[] = {
    "COUNT_OVER_TIME", "RATE", "RATE_COUNTER", "BYTES_OVER_TIME", "BYTES_RATE",
    "AVG_OVER_TIME", "SUM_OVER_TIME", "MIN_OVER_TIME", "MAX_OVER_TIME", "STDVAR_OVER_TIME",
    "STDDEV_OVER_TIME", "QUANTILE_OVER_TIME", "FIRST_OVER_TIME", "LAST_OVER_TIME",
    "ABSENT_OVER_TIME",
};
static const char *const vector_syms[] = {
    "SUM", "AVG", "COUNT", "MAX", "MIN", "STDDEV", "STDVAR", "BOTTOMK", "TOPK", "SORT",
    "SORT_DESC",
};
static const char *const conv_syms[] = { "", "BYTES_CONV", "DURATION_CONV",
                                         "DURATION_SECONDS_CONV" };
static const char *const conv_words[] = { "", "bytes", "duration", "duration_seconds" };

static const struct {
    const char *word;
    enum logql_tk kind;
} keywords[] = {
    { "by", LT_BY }, { "without", LT_WITHOUT }, { "bool", LT_BOOL }, { "offset", LT_OFFSET },
    { "on", LT_ON }, { "ignoring", LT_IGNORING }, { "group_left", LT_GROUP_LEFT },
    { "group_right", LT_GROUP_RIGHT }, { "or", LT_OR }, { "and", LT_AND },
    { "unless", LT_UNLESS }, { "json", LT_JSON }, { "regexp", LT_REGEXP },
    { "logfmt", LT_LOGFMT }, { "unpack", LT_UNPACK }, { "pattern", LT_PATTERN },
    { "label_format", LT_LABEL_FMT }, { "line_format", LT_LINE_FMT },
    { "decolorize", LT_DECOLORIZE }, { "drop", LT_DROP }, { "keep", LT_KEEP },
    { "unwrap", LT_UNWRAP },
};


const char *logql_tok_name(const struct logql_tok *t)
{
    switch (t->kind) {
    case LT_RANGE_OP: return range_syms[t->sub];
    case LT_VECTOR_OP: return vector_syms[t->sub];
    case LT_CONV: return conv_syms[t->sub];
    default: return tk_names[t->kind];
    }
}

/* ---- the tokenizer ---- */

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
/* Identifier bytes: ASCII letters, digits, '_', and any non-ASCII byte (Go's scanner
 * takes Unicode letters; a valid multi-byte rune is kept whole). */
static bool is_ident_start(unsigned char c) { return isalpha(c) || c == '_' || c >= 0x80; }
static bool is_ident(unsigned char c) { return is_ident_start(c) || is_digit(c); }
/* unicode.IsSpace for the bytes a query can hold. */
static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void tok_error(struct logql_tok *t, size_t at, bool line_zero, const char *msg)
{
    t->kind = LT_ERROR;
    t->start = at;
    t->line_zero = line_zero;
    snprintf(t->msg, sizeof t->msg, "%s", msg);
}

/* Go's time.ParseDuration: [-+]? (number[.fraction] unit)+, units ns us µs μs ms s m h,
 * "0" alone allowed. 0 and nanoseconds in *ns, or -1. */
static int go_parse_duration(const char *s, size_t n, int64_t *ns)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    if (n - i == 1 && s[i] == '0') {
        *ns = 0;
        return 0;
    }
    if (i == n)
        return -1;
    static const struct {
        const char *u;
        uint64_t mult;
    } units[] = { { "ns", 1 }, { "us", 1000 }, { "\xC2\xB5s", 1000 }, { "\xCE\xBCs", 1000 },
                  { "ms", 1000000 }, { "s", 1000000000ULL }, { "m", 60000000000ULL },
                  { "h", 3600000000000ULL } };
    uint64_t total = 0;
    while (i < n) {
        uint64_t v = 0, frac = 0, scale = 1;
        size_t d0 = i;
        bool any = false;
        for (; i < n && is_digit(s[i]); i++) {
            if (v > (UINT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (uint64_t)(s[i] - '0');
        }
        any = i > d0;
        if (i < n && s[i] == '.') {
            size_t f0 = ++i;
            for (; i < n && is_digit(s[i]); i++) {
                if (scale < 1000000000000000000ULL) { /* extra digits do not matter */
                    frac = frac * 10 + (uint64_t)(s[i] - '0');
                    scale *= 10;
                }
            }
            any = any || i > f0;
        }
        if (!any)
            return -1;
        size_t u0 = i;
        while (i < n && s[i] != '.' && !is_digit(s[i]))
            i++;
        size_t k = 0;
        for (; k < sizeof units / sizeof units[0]; k++)
            if (strlen(units[k].u) == i - u0 && memcmp(units[k].u, s + u0, i - u0) == 0)
                break;
        if (k == sizeof units / sizeof units[0])
            return -1;
        uint64_t m = units[k].mult;
        if (v > (1ULL << 63) / m)
            return -1;
        v *= m;
        v += (uint64_t)((double)frac * ((double)m / (double)scale));
        total += v;
        if (total > (1ULL << 63))
            return -1;
    }
    if (total > (uint64_t)INT64_MAX && !neg)
        return -1;
    *ns = neg ? (int64_t)(0 - total) : (int64_t)total;
    return 0;
}

/* Loki's parseDuration: Prometheus's rules first (d, w, y), then Go's (fractions, us). */
static int parse_duration(const char *s, size_t n, int64_t *ns)
{
    int64_t ms;
    char msg[160];
    if (lexer_parse_duration(s, n, &ms, msg, sizeof msg) == 0 && ms <= INT64_MAX / 1000000) {
        *ns = ms * 1000000;
        return 0;
    }
    return go_parse_duration(s, n, ns);
}

/* go-humanize ParseBytes: a number (',' ignored) and an optional SI or IEC unit. */
static int parse_bytes(const char *s, size_t n, uint64_t *out)
{
    static const struct {
        const char *u;
        double mult;
    } units[] = { { "", 1 }, { "b", 1 }, { "k", 1e3 }, { "kb", 1e3 }, { "ki", 1024.0 },
                  { "kib", 1024.0 }, { "m", 1e6 }, { "mb", 1e6 }, { "mi", 1048576.0 },
                  { "mib", 1048576.0 }, { "g", 1e9 }, { "gb", 1e9 },
                  { "gi", 1073741824.0 }, { "gib", 1073741824.0 }, { "t", 1e12 },
                  { "tb", 1e12 }, { "ti", 1099511627776.0 }, { "tib", 1099511627776.0 },
                  { "p", 1e15 }, { "pb", 1e15 }, { "pi", 1125899906842624.0 },
                  { "pib", 1125899906842624.0 } };
    char num[64];
    size_t i = 0, k = 0;
    for (; i < n && (is_digit(s[i]) || s[i] == '.' || s[i] == ','); i++)
        if (s[i] != ',' && k + 1 < sizeof num)
            num[k++] = s[i];
    num[k] = '\0';
    double f;
    char msg[8];
    if (k == 0 || strchr(num, '.') != strrchr(num, '.') ||
        lexer_parse_number(num, k, &f, msg, sizeof msg) != 0)
        return -1;
    char unit[8];
    size_t ul = n - i;
    if (ul >= sizeof unit)
        return -1;
    for (size_t j = 0; j < ul; j++)
        unit[j] = (char)tolower((unsigned char)s[i + j]);
    unit[ul] = '\0';
    for (size_t j = 0; j < sizeof units / sizeof units[0]; j++) {
        if (strcmp(units[j].u, unit) == 0) {
            f *= units[j].mult;
            if (!(f < 18446744073709551616.0))
                return -1;
            *out = (uint64_t)f;
            return 0;
        }
    }
    return -1;
}

static bool duration_rune_at(const char *s, size_t len, size_t i, size_t *w)
{
    *w = 1;
    if (is_digit(s[i]) || s[i] == '.' || (s[i] && strchr("numshdwy", s[i])))
        return true;
    if (s[i] == '\xC2' && i + 1 < len && s[i + 1] == '\xB5') { /* µ */
        *w = 2;
        return true;
    }
    return false;
}

static bool bytes_rune_at(const char *s, size_t i)
{
    return is_digit(s[i]) || s[i] == '.' || (s[i] && strchr("BikKMGTP", s[i]));
}

/* Loki's tryScanDuration / tryScanBytes: the number text s[start, at) followed by the
 * unit runes that run up to a space. On success the token becomes t. */
static bool try_unit(const char *s, size_t len, size_t start, size_t at, struct logql_tok *t)
{
    size_t j = at, w;
    while (j < len && !is_space((unsigned char)s[j]) && duration_rune_at(s, len, j, &w))
        j += w;
    if (j > at && parse_duration(s + start, j - start, &t->ns) == 0) {
        t->kind = LT_DURATION;
        t->end = j;
        t->line_zero = true;
        return true;
    }
    j = at;
    while (j < len && bytes_rune_at(s, j))
        j++;
    if (j > at && parse_bytes(s + start, j - start, &t->bytes) == 0) {
        t->kind = LT_BYTES;
        t->end = j;
        t->line_zero = true;
        return true;
    }
    return false;
}

/* Go text/scanner's number: 0x hex, or digits, fraction, exponent ('_' separators). */
static size_t scan_number(const char *s, size_t len, size_t i, struct logql_tok *t)
{
    if (s[i] == '0' && i + 1 < len && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        i += 2;
        while (i < len && (isxdigit((unsigned char)s[i]) || s[i] == '_'))
            i++;
        return i;
    }
    while (i < len && (is_digit(s[i]) || s[i] == '_'))
        i++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && (is_digit(s[i]) || s[i] == '_'))
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < len && (is_digit(s[i]) || s[i] == '_'))
            i++;
        if (i == d)
            tok_error(t, e, false, "exponent has no digits");
    }
    return i;
}

/* Loki's isFunction: after optional spaces, a '(' or by/without and a '('. */
static bool is_function(const char *s, size_t len, size_t i)
{
    while (i < len && is_space((unsigned char)s[i]))
        i++;
    if (i < len && s[i] == '(')
        return true;
    size_t k = 0;
    if (len - i >= 2 && strncasecmp(s + i, "by", 2) == 0)
        k = 2;
    else if (len - i >= 7 && strncasecmp(s + i, "without", 7) == 0)
        k = 7;
    if (k == 0)
        return false;
    for (i += k; i < len && is_space((unsigned char)s[i]); i++)
        ;
    return i < len && s[i] == '(';
}

static bool word_is(const char *w, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(w, word, n) == 0;
}

static void word_token(const char *s, size_t len, struct logql_tok *t)
{
    const char *w = s + t->start;
    size_t n = t->end - t->start;
    t->kind = LT_IDENT;
    bool fn = is_function(s, len, t->end);
    for (int k = 0; k <= LQ_RANGE_ABSENT; k++)
        if (word_is(w, n, logql_range_op_str((enum logql_range_op)k))) {
            if (fn)
                t->kind = LT_RANGE_OP, t->sub = k;
            return;
        }
    for (int k = 0; k <= LQ_VEC_SORT_DESC; k++)
        if (word_is(w, n, logql_vector_op_str((enum logql_vector_op)k))) {
            if (fn)
                t->kind = LT_VECTOR_OP, t->sub = k;
            return;
        }
    for (int k = 1; k <= LQ_CONV_DURATION_SECONDS; k++)
        if (word_is(w, n, conv_words[k])) {
            if (fn)
                t->kind = LT_CONV, t->sub = k;
            return;
        }
    if (word_is(w, n, "vector") || word_is(w, n, "ip") || word_is(w, n, "label_replace")) {
        if (fn)
            t->kind = word_is(w, n, "vector") ? LT_VECTOR : word_is(w, n, "ip") ? LT_IP
                                                                             : LT_LABEL_REPLACE;
        return;
    }
    for (size_t k = 0; k < sizeof keywords / sizeof keywords[0]; k++)
        if (word_is(w, n, keywords[k].word)) {
            t->kind = keywords[k].kind;
            return;
        }
}

static void string_token(const char *s, size_t len, struct logql_tok *t)
{
    struct lexer_str_error e;
    switch (lexer_scan_string(s, len, t->start, &t->end, NULL, &e)) {
    case LS_OK:
        t->kind = LT_STRING;
        return;
    case LS_UNTERMINATED:
    case LS_UNTERMINATED_RAW:
        tok_error(t, t->start, false, "literal not terminated");
        return;
    case LS_BAD_UTF8:
        tok_error(t, t->start, false, "invalid UTF-8 encoding");
        return;
    default:
        tok_error(t, t->start, false, "invalid char escape");
        return;
    }
}

/* Go's scanner reads 'x' as a character literal, which Loki takes as an identifier. */
static void char_token(const char *s, size_t len, struct logql_tok *t)
{
    struct lexer_str_error e;
    struct vg_buf b;
    vg_buf_init(&b);
    enum lexer_str_fail f = lexer_scan_string(s, len, t->start, &t->end, &b, &e);
    int32_t r;
    if (f == LS_UNTERMINATED)
        tok_error(t, t->start, false, "literal not terminated");
    else if (f == LS_NOMEM || vg_buf_failed(&b))
        tok_error(t, t->start, false, "out of memory");
    else if (f != LS_OK)
        tok_error(t, t->start, false, "invalid char escape");
    else if (b.len == 0 ||
             (b.len > 1 && lexer_utf8((const unsigned char *)b.p, b.len, &r) != b.len))
        tok_error(t, t->start, false, "invalid char literal");
    else
        t->kind = LT_IDENT;
    vg_buf_free(&b);
}

/* Skips spaces and comments from i; a '/ *' without its end is an error in t. */
static size_t skip_blank(const char *s, size_t len, size_t i, struct logql_tok *t)
{
    for (;;) {
        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i < len && s[i] == '#') {
            while (i < len && s[i] != '\n')
                i++;
            continue;
        }
        if (i + 1 < len && s[i] == '/' && s[i + 1] == '/') {
            while (i < len && s[i] != '\n')
                i++;
            continue;
        }
        if (i + 1 < len && s[i] == '/' && s[i + 1] == '*') {
            size_t c = i;
            for (i += 2; i + 1 < len && !(s[i] == '*' && s[i + 1] == '/'); i++)
                ;
            if (i + 1 >= len) {
                tok_error(t, c, false, "comment not terminated");
                return len;
            }
            i += 2;
            continue;
        }
        return i;
    }
}

static void range_token(const char *s, size_t len, struct logql_tok *t)
{
    const char *close = memchr(s + t->start, ']', len - t->start);
    if (!close) {
        tok_error(t, t->start, true, "missing closing ']' in duration");
        return;
    }
    size_t a = t->start + 1, b = (size_t)(close - s);
    int64_t ms;
    char msg[160];
    if (lexer_parse_duration(s + a, b - a, &ms, msg, sizeof msg) != 0) {
        tok_error(t, t->start, true, msg);
        return;
    }
    if (ms > INT64_MAX / 1000000) {
        tok_error(t, t->start, true, "duration out of range");
        return;
    }
    t->kind = LT_RANGE;
    t->ns = ms * 1000000;
    t->end = b + 1;
    t->line_zero = true;
}

static const struct {
    const char *op;
    enum logql_tk kind;
} ops2[] = {
    { "!=", LT_NEQ }, { "=~", LT_RE }, { "!~", LT_NRE }, { "!>", LT_NPA }, { "|=", LT_PIPE_EXACT },
    { "|~", LT_PIPE_MATCH }, { "|>", LT_PIPE_PATTERN }, { "==", LT_CMP_EQ }, { ">=", LT_GTE },
    { "<=", LT_LTE },
};
static const char ops1[] = ",.{}=|()]+-*/%^><";
static const enum logql_tk ops1_kind[] = { LT_COMMA, LT_DOT, LT_LBRACE, LT_RBRACE, LT_EQ, LT_PIPE,
                                     LT_LPAREN, LT_RPAREN, LT_RBRACKET, LT_ADD, LT_SUB, LT_MUL,
                                     LT_DIV, LT_MOD, LT_POW, LT_GT, LT_LT };

/* The token at or after byte i. */
void logql_lex(const char *s, size_t len, size_t i, struct logql_tok *t)
{
    memset(t, 0, offsetof(struct logql_tok, msg));
    t->msg[0] = '\0';
    i = skip_blank(s, len, i, t);
    if (t->kind == LT_ERROR)
        return;
    t->start = t->end = i;
    if (i >= len) {
        t->kind = LT_EOF;
        return;
    }
    unsigned char c = (unsigned char)s[i];
    if (c == 0) { /* Go's text/scanner refuses it (and names are C strings here) */
        tok_error(t, i, false, "invalid character NUL");
        return;
    }
    if (is_digit(c) || (c == '.' && i + 1 < len && is_digit(s[i + 1]))) {
        t->kind = LT_NUMBER;
        size_t e = scan_number(s, len, i, t);
        if (t->kind == LT_ERROR)
            return;
        t->end = e;
        try_unit(s, len, i, e, t);
        return;
    }
    if (c == '-') {
        if (i + 1 < len && s[i + 1] == '-') { /* parser flags */
            size_t j = i + 2;
            while (j < len && (isalpha((unsigned char)s[j]) || s[j] == '-'))
                j++;
            if (j - i == 8 && memcmp(s + i, "--strict", 8) == 0)
                t->sub = 0;
            else if (j - i == 12 && memcmp(s + i, "--keep-empty", 12) == 0)
                t->sub = 1;
            else
                j = 0;
            if (j) {
                t->kind = LT_FLAG;
                t->end = j;
                t->line_zero = true;
                return;
            }
        }
        if (try_unit(s, len, i, i + 1, t) && t->kind == LT_DURATION)
            return;
        t->kind = LT_SUB;
        t->end = i + 1;
        t->bytes = 0;
        t->line_zero = false;
        return;
    }
    if (c == '"' || c == '`') {
        string_token(s, len, t);
        return;
    }
    if (c == '\'') {
        char_token(s, len, t);
        return;
    }
    if (c == '[') {
        range_token(s, len, t);
        return;
    }
    if (is_ident_start(c)) {
        size_t j = i;
        while (j < len && is_ident((unsigned char)s[j])) {
            int32_t r;
            size_t w = (unsigned char)s[j] < 0x80 ? 1
                       : lexer_utf8((const unsigned char *)s + j, len - j, &r);
            if (w == 0) {
                tok_error(t, i, false, "invalid UTF-8 encoding");
                return;
            }
            j += w;
        }
        t->end = j;
        word_token(s, len, t);
        return;
    }
    if (i + 1 < len) {
        for (size_t k = 0; k < sizeof ops2 / sizeof ops2[0]; k++)
            if (s[i] == ops2[k].op[0] && s[i + 1] == ops2[k].op[1]) {
                t->kind = ops2[k].kind;
                t->end = i + 2;
                t->line_zero = true; /* Loki's lexer called Next() for the second byte */
                return;
            }
    }
    const char *hit = c ? strchr(ops1, c) : NULL;
    t->end = i + 1;
    t->kind = hit ? ops1_kind[hit - ops1] : LT_IDENT; /* any other byte: an identifier */
}
