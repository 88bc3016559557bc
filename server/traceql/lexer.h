/* lexer: TraceQL's tokens, as Tempo's lexer reads them.
 *
 * traceql_lex is stateless: it returns the token that starts at (or after spaces from)
 * a byte offset, so the parser can look ahead by lexing again. The rules:
 * - operators: { } ( ) , | && || ! = != > >= < <= =~ !~ >> << ~ and - (before a
 *   number: a negative literal);
 * - strings: "..." with Go escapes (\" \\ \n \t \r \xHH \uHHHH ...) or `...` raw;
 * - numbers: 12 (INT), 1.5 (FLOAT), and durations: a number directly followed by a
 *   unit, several in a row as Go's time.ParseDuration reads them (1h30m, 1.5s, 100ms,
 *   10us, 10µs, 7ns);
 * - attributes: `.name`, `span.name`, `resource.name`; the name runs to the next space
 *   or operator byte and may be quoted after the dot (span."a b");
 * - words: true false nil, status values ok error unset, kinds server client producer
 *   consumer internal unspecified, intrinsics (name status statusMessage duration kind
 *   rootName rootServiceName traceDuration and the scoped spellings span:name
 *   span:status span:statusMessage span:duration span:kind trace:rootName
 *   trace:rootService trace:duration), functions count avg min max sum select;
 *   anything else is an error (Tempo has no bare identifiers).
 * Thread-safe: pure functions over caller-owned bytes. */
#ifndef TRACEQL_LEXER_H
#define TRACEQL_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum traceql_tk {
    TK_EOF, TK_ERROR,
    TK_LBRACE, TK_RBRACE, TK_LPAREN, TK_RPAREN, TK_COMMA, TK_PIPE,
    TK_AND, TK_OR, TK_NOT, TK_EQ, TK_NEQ, TK_GT, TK_GTE, TK_LT, TK_LTE, TK_RE, TK_NRE,
    TK_DESC, TK_ANCE, TK_TILDE, TK_MINUS,
    TK_STRING, TK_INT, TK_FLOAT, TK_DURATION,
    TK_TRUE, TK_FALSE, TK_NIL, TK_STATUS, TK_KIND, /* sub: the enum value */
    TK_INTRINSIC,                                  /* sub: enum traceql_intrinsic */
    TK_ATTR,                                       /* sub: enum traceql_scope */
    TK_AGG,                                        /* sub: enum traceql_agg */
    TK_SELECT,
};

struct traceql_tok {
    enum traceql_tk kind;
    int sub;
    size_t start, end; /* bytes of the query */
    int64_t i;         /* INT, DURATION (ns) */
    double f;          /* FLOAT */
    /* STRING: the unescaped bytes; ATTR: the name (unescaped when quoted). Points into
     * the query when nothing needed unescaping, else into buf. */
    const char *s;
    size_t slen;
    char msg[128]; /* ERROR */
};

/* Longest string or quoted attribute name the lexer unescapes. */
#define TRACEQL_MAX_STRING 4096

/* The token at or after byte i of s (len bytes). buf (TRACEQL_MAX_STRING bytes) holds an
 * unescaped string; the caller copies it before lexing the next token into the same
 * buffer. A lexical error is a TK_ERROR token with its message and position. */
void traceql_lex(const char *s, size_t len, size_t i, struct traceql_tok *t, char *buf);

/* The token's name in error messages: the text of operators and words ("&&", "{",
 * "true"), the class of the others (STRING, INTEGER, FLOAT, DURATION, IDENTIFIER, end of
 * input). */
const char *traceql_tok_name(const struct traceql_tok *t);

/* Go's time.ParseDuration over s[0..n) ("1h30m", "1.5s", "-2ms", "0"): 0 and *ns, or -1
 * when s is not a duration or overflows. Shared with the HTTP API's minDuration. */
int traceql_parse_duration(const char *s, size_t n, int64_t *ns);

#endif
