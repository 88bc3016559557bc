/* lexer: PromQL's tokens, and the string, number and duration rules shared by the
 * expression parser (parser.c) and the series-selector parser (selector.c).
 *
 * The token rules follow Prometheus 3's lexer (promql/parser/lex.go) so that error
 * messages read the same: keywords are case-insensitive, `Inf`/`NaN` are numbers, `5m`
 * is a duration token, `#` starts a comment to the end of the line, and inside `{...}`
 * every word is a plain identifier. The lexer keeps Prometheus's paren/brace/bracket
 * state, so "unclosed left parenthesis" and friends come from here.
 *
 * Pure functions over caller-owned bytes; a struct lexer is used by one thread. */
#ifndef PROMQL_LEXER_H
#define PROMQL_LEXER_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lexer_kind {
    LK_EOF,
    LK_ERROR, /* the lexer's message is in lexer.msg, its position in lexer.err_at */
    LK_COMMA, LK_COLON, LK_LPAREN, LK_RPAREN, LK_LBRACE, LK_RBRACE, LK_LBRACKET,
    LK_RBRACKET, LK_EQL, /* '=' */
    LK_STRING, LK_NUMBER, LK_DURATION, LK_IDENT, LK_METRIC_IDENT, /* has a ':' */
    /* operators */
    LK_ADD, LK_SUB, LK_MUL, LK_DIV, LK_MOD, LK_POW, LK_ATAN2, LK_EQLC, LK_NEQ, LK_LSS,
    LK_LTE, LK_GTR, LK_GTE, LK_AND, LK_OR, LK_UNLESS, LK_EQL_REGEX, LK_NEQ_REGEX, LK_AT,
    /* aggregation operators: lexer_token.agg says which */
    LK_AGG,
    /* keywords */
    LK_BOOL, LK_BY, LK_GROUP_LEFT, LK_GROUP_RIGHT, LK_IGNORING, LK_OFFSET, LK_ON,
    LK_WITHOUT,
    /* @ preprocessors */
    LK_START, LK_END,
};

struct lexer_token {
    enum lexer_kind kind;
    uint32_t pos, len; /* bytes of the query */
    int agg;           /* enum promql_aggop for LK_AGG */
};

struct lexer {
    const char *s;
    size_t len;
    size_t pos;
    int paren_depth;
    bool brace_open, bracket_open, got_colon;
    bool want_number; /* the token after '[' is a number or duration */
    size_t err_at;
    char msg[256];
};

void lexer_init(struct lexer *l, const char *s, size_t len);
/* The next token, comments and spaces skipped. After LK_ERROR or LK_EOF it keeps
 * returning LK_EOF. */
void lexer_next(struct lexer *l, struct lexer_token *t);

/* "unexpected ..." wording of a token, as Prometheus's Item.desc(): `<op:+>`, `<by>`,
 * `<aggr:sum>`, `identifier "foo"`, `"("`, `end of input`, ... */
void lexer_describe(const char *query, const struct lexer_token *t, char *out, size_t cap);

/* Fills err with VG_EINVAL and "<line>:<col>: parse error: <message>" for byte offset
 * at of query (line and column 1-based, the column counted in bytes). Returns
 * VG_EINVAL. */
int lexer_error(struct vg_err *err, const char *query, size_t len, size_t at, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));

/* Quoted strings ("..." and '...' with Go escapes, `...` raw). */
enum lexer_str_fail {
    LS_OK,
    LS_UNTERMINATED,     /* end of input or a newline before the closing quote */
    LS_UNTERMINATED_RAW, /* end of input inside `...` */
    LS_BAD_UTF8,         /* invalid UTF-8 (or U+FFFD, as Prometheus's lexer) */
    LS_ESC_UNTERMINATED, /* input ends inside an escape */
    LS_ESC_UNKNOWN,      /* \q: ch holds the rune */
    LS_ESC_ILLEGAL,      /* bad digit in \x12, \u1234, \012: ch holds the rune */
    LS_ESC_RANGE,        /* code point over the limit or a surrogate */
    LS_NOMEM,
};
struct lexer_str_error {
    enum lexer_str_fail kind;
    size_t at;  /* byte offset of the problem: the quote, the backslash, the bad byte */
    int32_t ch; /* the offending rune, -1 at end of input */
    unsigned long value; /* LS_ESC_RANGE: the value */
};
/* Scans the string whose opening quote is at s[pos]; on success *end is just past the
 * closing quote and, if out is not NULL, the unescaped bytes are appended to out. */
enum lexer_str_fail lexer_scan_string(const char *s, size_t len, size_t pos, size_t *end,
                                      struct vg_buf *out, struct lexer_str_error *e);
/* Prometheus's message for a string error ("unknown escape sequence U+0071 'q'"). */
void lexer_string_message(const struct lexer_str_error *e, char *out, size_t cap);

/* Length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid; *rune gets
 * the code point. */
size_t lexer_utf8(const unsigned char *p, size_t n, int32_t *rune);

/* Appends s as Go's strconv.Quote does ("...", escapes, \x for invalid UTF-8). */
void lexer_quote(struct vg_buf *b, const char *s, size_t n);
/* Go's %q of one rune ('a', '\n', '�'), NUL-terminated in out (at least 16 bytes). */
void lexer_quote_rune(int32_t r, char *out, size_t cap);

/* Go's strconv.ParseInt(s, 0, 64) falling back to ParseFloat(s, 64), as Prometheus
 * reads NUMBER tokens. 0, or -1 with Go's error text in msg. */
int lexer_parse_number(const char *s, size_t n, double *out, char *msg, size_t cap);
/* prometheus/common model.ParseDuration: units y w d h m s ms, biggest first, each once;
 * "0" alone is allowed. 0 and milliseconds in *ms, or -1 with the error text in msg. */
int lexer_parse_duration(const char *s, size_t n, int64_t *ms, char *msg, size_t cap);
/* model.Duration.String(): "1h30m", "2w" (years and weeks only when exact), "0s".
 * ms must be >= 0. */
void lexer_format_duration(struct vg_buf *b, int64_t ms);

/* [a-zA-Z_][a-zA-Z0-9_]*: a label name that needs no quotes. */
bool lexer_is_label_name(const char *s, size_t n);

#endif
