/* pipeline_scan: the byte scanners behind LogQL's pipeline stages (pipeline.c), as pure
 * functions over a line: JSON (flattening, path lookup, top-level members), Loki's
 * logfmt decoder, pattern expressions (`<name> - <_> [<ts>]`), ip("...") matching, Go
 * durations, humanize byte sizes, Go floats, label-name sanitising and ANSI escape
 * stripping. No allocation except where an out buffer is passed; all thread-safe.
 *
 * Semantics follow Loki 3 (pkg/logql/log): where a detail is Loki's (which JSON values
 * are skipped, how a logfmt error is worded), the function's comment says so.
 *
 * Errors on line content are not vg_err codes: they come back as LQSCAN_SYNTAX with a
 * message in struct vg_err (code VG_EINVAL) for __error_details__. Build-time errors
 * (a bad pattern or ip() argument) are VG_EINVAL with the message. */
#ifndef LOGQL_PIPELINE_SCAN_H
#define LOGQL_PIPELINE_SCAN_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LQSCAN_SYNTAX 2        /* the input is malformed; err says where and why */
#define LQSCAN_MAX_DEPTH 128   /* JSON nesting refused past this */

/* ---- label names ---- */

/* Appends key sanitised as Loki's parsers do (sanitizeLabelKey / appendSanitized):
 * surrounding spaces trimmed, each UTF-8 sequence (or invalid byte) outside
 * [A-Za-z0-9_] becomes one '_', and a '_' goes first when b is empty and key starts
 * with a digit. Appends nothing for a key that is empty after trimming. */
void lqscan_sanitize(struct vg_buf *b, struct vg_str key);
/* True for a Prometheus label name: [A-Za-z_][A-Za-z0-9_]*. */
bool lqscan_valid_label_name(struct vg_str s);

/* ---- JSON ---- */

enum lqscan_json_kind {
    LQJ_STRING, LQJ_NUMBER, LQJ_TRUE, LQJ_FALSE, LQJ_NULL, LQJ_OBJECT, LQJ_ARRAY,
};

/* Called for a member: key as written (still escaped) or, when flattening, the joined
 * sanitised key; raw: a string's bytes between the quotes (escapes in), or the value's
 * text for other kinds. A non-zero return stops the walk and is returned. */
typedef int (*lqscan_json_fn)(void *ud, struct vg_str key, enum lqscan_json_kind kind,
                              struct vg_str raw);

/* Loki's `| json`: walks the object in s, recursing into nested objects with their
 * sanitised keys joined by '_' (built in keybuf, which is reset first), and calls fn for
 * every string, number and boolean member; null and array members are skipped. Members
 * already reported stay reported when a later part is malformed. 0, LQSCAN_SYNTAX with
 * err, VG_ENOMEM (keybuf failed), or fn's non-zero return. */
int lqscan_json_flatten(struct vg_str s, struct vg_buf *keybuf, lqscan_json_fn fn, void *ud,
                        struct vg_err *err);

/* Calls fn for each member of the top-level object in s (key as written), whatever its
 * kind; nested values are validated but not reported. Same returns as above. */
int lqscan_json_members(struct vg_str s, lqscan_json_fn fn, void *ud, struct vg_err *err);

/* A compiled `| json name="expr"` path: steps of object keys and array indexes. */
struct lqscan_json_step {
    bool is_index;
    size_t index;
    struct vg_str key; /* points into the expression or its owner's copy */
};

/* Parses a Loki JSON expression: `a.b`, `a[0]`, `a["b c"]`, `["a"].b[1]`, `.a`. Fills up
 * to cap steps; returns the count, or VG_EINVAL (err names the expression) for a
 * malformed one or more than cap steps. Keys in quotes may not contain escapes. */
int lqscan_json_path_parse(struct vg_str expr, struct lqscan_json_step *steps, size_t cap,
                           struct vg_err *err);

/* Finds the value at path in s. 1 with *kind and *raw (as for lqscan_json_fn), 0 when
 * the path does not exist, LQSCAN_SYNTAX with err when s is malformed on the way. */
int lqscan_json_path(struct vg_str s, const struct lqscan_json_step *steps, size_t nsteps,
                     enum lqscan_json_kind *kind, struct vg_str *raw, struct vg_err *err);

/* Unescapes the bytes of a JSON string (between the quotes) into out, which has room
 * for raw.len bytes (unescaping never grows). Returns the length, or -1 for a
 * malformed escape. */
long lqscan_json_unescape(struct vg_str raw, char *out);

/* Replaces each invalid UTF-8 byte and each U+FFFD in s[0..len) with one space, in place
 * (Loki's removeInvalidUtf); returns the new length. */
size_t lqscan_fix_utf8(char *s, size_t len);

/* ---- logfmt (Loki's decoder, adapted from go-logfmt) ---- */

struct lqscan_logfmt {
    struct vg_str line;
    size_t pos;
    struct vg_str key, value; /* after a pair: value without quotes */
    bool escaped;             /* value still holds backslash escapes (JSON-style) */
    const char *why;          /* after an error: "unexpected '='", ... */
    size_t err_pos;           /* 1-based, as Loki reports it */
};

void lqscan_logfmt_init(struct lqscan_logfmt *d, struct vg_str line);
/* 1: a pair (key non-empty, value possibly empty), 0: end of line, -1: syntax error
 * (why and err_pos set; the decoder has skipped past the bad token so scanning may go
 * on, as Loki's non-strict mode does). */
int lqscan_logfmt_next(struct lqscan_logfmt *d);

/* ---- pattern expressions ---- */

struct lqscan_pattern;

/* Compiles a pattern: literal text with captures `<name>` ([A-Za-z_][A-Za-z0-9_]*) and
 * `<_>` (unnamed); anything else is literal. Refused (VG_EINVAL): two captures in a row,
 * a repeated name, and for a parser (need_named) a pattern without a named capture.
 * Caller frees with lqscan_pattern_free (accepts NULL). */
struct lqscan_pattern *lqscan_pattern_new(struct vg_str src, bool need_named,
                                          struct vg_err *err);
void lqscan_pattern_free(struct lqscan_pattern *p);

typedef int (*lqscan_capture_fn)(void *ud, struct vg_str name, struct vg_str value);
/* Loki's `| pattern`: a leading literal must start the line; each capture takes the
 * text up to the next occurrence of the literal after it; when that literal is missing
 * the capture takes the rest and matching stops. fn is called per named capture found.
 * Returns 0 or fn's non-zero return. */
int lqscan_pattern_match(const struct lqscan_pattern *p, struct vg_str line,
                         lqscan_capture_fn fn, void *ud);
/* Loki's `|>` test: every literal is found in order, captures are non-empty, a leading
 * literal starts the line and a trailing literal ends it. */
bool lqscan_pattern_test(const struct lqscan_pattern *p, struct vg_str line);

/* ---- ip("...") ---- */

struct lqscan_ip {
    int family;         /* 4 or 6 */
    uint8_t lo[16], hi[16]; /* inclusive range, big-endian (first 4 bytes for IPv4) */
};

/* An address, a CIDR (a.b.c.d/n, x::/n) or a range (a-b, both of one family).
 * VG_EINVAL `ip: invalid pattern: "..."` otherwise. */
int lqscan_ip_parse(struct vg_str pattern, struct lqscan_ip *m, struct vg_err *err);
/* True when any IPv4 or IPv6 address found in s (Loki's scan: runs of address
 * characters that start like an address) lies in m. */
bool lqscan_ip_search(const struct lqscan_ip *m, struct vg_str s);

/* ---- value conversions, with Go's error texts in err ---- */

/* strconv.ParseFloat: 0 or LQSCAN_SYNTAX. */
int lqscan_float(struct vg_str s, double *v, struct vg_err *err);
/* time.ParseDuration ("1h30m", "250ms", "-1.5s", "0"): 0 or LQSCAN_SYNTAX. */
int lqscan_duration(struct vg_str s, int64_t *ns, struct vg_err *err);
/* humanize.ParseBytes ("5KB" = 5000, "1 MiB", "42", "1,024 b"): 0 or LQSCAN_SYNTAX. */
int lqscan_bytes(struct vg_str s, uint64_t *v, struct vg_err *err);

/* ---- decolorize ---- */

/* Copies s to out (room for s.len bytes) without ANSI escape sequences (CSI and OSC as
 * the ansi-regex that Loki uses matches them); returns the length written. */
size_t lqscan_decolorize(struct vg_str s, char *out);

#endif
