/* parser: TraceQL text to a syntax tree (ast.h), by recursive descent.
 *
 * The subset (Tempo's grammar and precedence where it overlaps):
 *   query     = pipeline
 *   pipeline  = spanset { "|" stage }
 *   stage     = spanset | AGG "(" [field] ")" cmp value | "select" "(" field {"," field} ")"
 *   spanset   = operands of || , then && , then the structural > >> < << ~ (tightest),
 *               all left-associative
 *   operand   = "{" [field] "}" | "(" pipeline ")"
 *   field     = || over && over comparisons (= != > >= < <= =~ !~) over ! over
 *               "(" field ")" | static | intrinsic | attribute
 * AGG is count (no argument), avg, min, max or sum (one numeric field); the value they
 * compare with is a number or duration (a leading - allowed). Regex comparisons need a
 * static string on the right, compiled fully anchored. A spanset's field must be
 * boolean: a comparison, &&, ||, !, true/false or an attribute (true when it holds the
 * boolean true). Not supported (a parse error says so): arithmetic, by(), coalesce(),
 * quantile and the other newer aggregates, event:/link:/parent. scopes.
 *
 * Errors read as Tempo's: "parse error at line 1, col 12: syntax error: unexpected }"
 * (the offending token's position, 1-based columns in bytes), "parse error at line 1,
 * col 3: literal not terminated" for lexical errors, and the same prefix with the reason
 * for type errors ("regex needs a string on the right").
 *
 * Thread-safe: no shared state. */
#ifndef TRACEQL_PARSER_H
#define TRACEQL_PARSER_H

#include "../../storage/base/vg_err.h"
#include "ast.h"

#include <stddef.h>

#define TRACEQL_MAX_QUERY_LEN 16384 /* bytes; longer queries are refused */
#define TRACEQL_MAX_DEPTH 100       /* nesting of parentheses, braces and operators */

/* Parses query (len bytes, need not be NUL-terminated). Returns the tree, which the
 * caller frees with traceql_query_free, or NULL with err set: VG_EINVAL and a message
 * starting "parse error" for a bad query, VG_ENOMEM when allocation fails. */
struct traceql_query *traceql_parse(const char *query, size_t len, struct vg_err *err);

#endif
