/* lexer: LogQL's tokens, as Loki 3's lex.go reads them over Go's text/scanner.
 *
 * logql_lex is stateless: it returns the token that starts at (or after spaces and
 * comments from) a byte offset, so the parser can look two tokens ahead by lexing twice.
 * The rules, all Loki's:
 * - keywords (by, without, bool, offset, on, ignoring, group_left/right, or, and,
 *   unless, json, regexp, logfmt, unpack, pattern, label_format, line_format,
 *   decolorize, drop, keep, unwrap) are case-insensitive and always keywords;
 * - function words (rate, count_over_time, ..., sum, topk, ..., vector, ip,
 *   label_replace, bytes, duration, duration_seconds) are functions only when '(' or
 *   by/without and '(' follow, otherwise identifiers;
 * - a number directly followed by unit letters is a duration (Prometheus's rules, then
 *   Go's time.ParseDuration: 5m, 1.5s, 100us, -1h) or else a byte size (go-humanize:
 *   5KB, 1.5MiB); "-" before a duration makes it negative; `--strict` and
 *   `--keep-empty` are parser flags;
 * - `[...]` is a range read by Prometheus's duration rules;
 * - "..." (Go escapes) and `...` are strings; 'x' is a Go character literal, which Loki
 *   takes as an identifier; '#' and '//' comment to the end of the line, '/ *' to '* /';
 * - any other single byte is an identifier (Loki's fallback), except NUL and invalid
 *   UTF-8, which Go's scanner refuses.
 * Thread-safe: pure functions over caller-owned bytes. */
#ifndef LOGQL_LEXER_H
#define LOGQL_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum logql_tk {
    LT_EOF, LT_ERROR, LT_IDENT, LT_STRING, LT_NUMBER, LT_DURATION, LT_BYTES, LT_RANGE, LT_FLAG,
    LT_COMMA, LT_DOT, LT_LBRACE, LT_RBRACE, LT_EQ, LT_NEQ, LT_RE, LT_NRE, LT_NPA, LT_PIPE_EXACT,
    LT_PIPE_MATCH, LT_PIPE_PATTERN, LT_PIPE, LT_LPAREN, LT_RPAREN, LT_RBRACKET,
    LT_ADD, LT_SUB, LT_MUL, LT_DIV, LT_MOD, LT_POW, LT_CMP_EQ, LT_GT, LT_GTE, LT_LT, LT_LTE,
    /* keywords */
    LT_BY, LT_WITHOUT, LT_BOOL, LT_OFFSET, LT_ON, LT_IGNORING, LT_GROUP_LEFT, LT_GROUP_RIGHT,
    LT_OR, LT_AND, LT_UNLESS, LT_JSON, LT_REGEXP, LT_LOGFMT, LT_UNPACK, LT_PATTERN, LT_LABEL_FMT,
    LT_LINE_FMT, LT_DECOLORIZE, LT_DROP, LT_KEEP, LT_UNWRAP,
    /* words that are functions when a '(' follows */
    LT_IP, LT_LABEL_REPLACE, LT_VECTOR, LT_RANGE_OP, LT_VECTOR_OP, LT_CONV,
};

struct logql_tok {
    enum logql_tk kind;
    int sub;           /* LT_RANGE_OP, LT_VECTOR_OP, LT_CONV: which one;
                          LT_FLAG: 0 --strict, 1 --keep-empty */
    size_t start, end; /* bytes of the query */
    bool line_zero;    /* Loki's scanner reports line 0 for this token */
    int64_t ns;        /* LT_DURATION, LT_RANGE */
    uint64_t bytes;    /* LT_BYTES */
    char msg[160];     /* LT_ERROR */
};

/* The token at or after byte i of s (len bytes). A lexical error is an LT_ERROR token
 * holding Loki's message ("literal not terminated", "missing closing ']' in duration",
 * ...) and its position; the token after an error is not defined. */
void logql_lex(const char *s, size_t len, size_t i, struct logql_tok *t);

/* The token's name in yacc messages: the text of operators and keywords ("|=", "by"),
 * the grammar symbol of the others (IDENTIFIER, STRING, RANGE, COUNT_OVER_TIME, $end). */
const char *logql_tok_name(const struct logql_tok *t);

#endif
