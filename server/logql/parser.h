/* parser: LogQL (Loki 3) text to a syntax tree (ast.h).
 *
 * The grammar is Loki's pkg/logql/syntax/expr.y, read by recursive descent with the
 * same precedence (or < and/unless < comparisons < + - < * / % < ^, all left-
 * associative but ^) and the same token rules as Loki's lexer (lex.go): keywords are
 * case-insensitive; words that name functions (rate, sum, vector, ip, bytes, ...) are
 * functions only when a '(' (or by/without and a '(') follows, otherwise identifiers;
 * a number followed by unit letters is a duration (5m, 1.5s, -1h) or a byte size (5KB);
 * `[...]` is a range read by Prometheus's duration rules; `#`, `//` and `/ * * /` start
 * comments; strings are "..." with Go escapes or `...` raw.
 *
 * Errors read as Loki's: "parse error at line 1, col 15: syntax error: unexpected
 * IDENTIFIER" for syntax and lexical errors (the position of the offending token; line
 * 0 where Loki's scanner forgets the line, after two-character operators, durations,
 * byte sizes, flags and ranges), and "parse error : <what>" for errors found once the
 * syntax is right (a bad regex, grouping on count_over_time, a log query leg in a
 * binary operation, a selector without a non-empty matcher, ...). The "expecting ..."
 * part of yacc's messages is given where Loki gives it for common mistakes (an unclosed
 * selector, a line filter without a string, a comparison without a number).
 *
 * Thread-safe: no shared state. */
#ifndef LOGQL_PARSER_H
#define LOGQL_PARSER_H

#include "../../storage/base/vg_err.h"
#include "ast.h"

#include <stddef.h>

/* Queries of this many bytes or more are refused, as Loki does. */
#define LOGQL_MAX_QUERY_LEN 5120
/* Nesting deeper than this (parentheses, aggregations, binary operands, label filter
 * groups) is refused, so a hostile query cannot exhaust the stack. Deep enough for the
 * printed form of any query: String() puts each binary operation in parentheses, so a
 * chain `a - b - c ...` of a few hundred terms prints that many levels deep. */
#define LOGQL_MAX_DEPTH 1000

/* Parses query (len bytes, need not be NUL-terminated). Returns the tree, which the
 * caller frees with logql_expr_free, or NULL with err set: VG_EINVAL and Loki's message
 * for a bad query, VG_ENOMEM when allocation fails. */
struct logql_expr *logql_parse(const char *query, size_t len, struct vg_err *err);

#endif
