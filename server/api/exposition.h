/* exposition: the Prometheus text exposition format 0.0.4, written and parsed.
 *
 * Format (one item per line, lines end in '\n'):
 *   # HELP <metric> <docstring, escapes \\ and \n>
 *   # TYPE <metric> counter|gauge|histogram|summary|untyped
 *   # any other comment
 *   <metric>[{<label>="<value, escapes \\ \" \n>",...}] <float> [<int64 ms timestamp>]
 * Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*.
 * Floats are Go ParseFloat's syntax (decimal, exponent, NaN, +Inf, -Inf, ...).
 *
 * The writer is what /metrics and /federate send; the parser is what a scraper and the
 * tests read back. Both are pure and thread-safe.
 *
 * OpenMetrics 1.0 text (exposition_parse_openmetrics) differs: "# UNIT <metric> <unit>"
 * lines; types also gaugehistogram, info, stateset and unknown; HELP also unescapes \";
 * no other comments and no blank lines; timestamps are float seconds (kept here as
 * milliseconds); a sample may carry an exemplar " # {<labels>} <value> [<timestamp>]";
 * the input must end with the line "# EOF" and nothing after it. */
#ifndef EXPOSITION_H
#define EXPOSITION_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/labels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum exposition_type {
    EXPOSITION_COUNTER,
    EXPOSITION_GAUGE,
    EXPOSITION_HISTOGRAM,
    EXPOSITION_SUMMARY,
    EXPOSITION_UNTYPED,
    /* OpenMetrics only */
    EXPOSITION_GAUGEHISTOGRAM,
    EXPOSITION_INFO,
    EXPOSITION_STATESET,
    EXPOSITION_UNKNOWN,
};

/* "counter", "gauge", "histogram", "summary", "untyped" (and the OpenMetrics names). */
const char *exposition_type_name(enum exposition_type t);

/* Whether s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, metric true) or label name
 * ([a-zA-Z_][a-zA-Z0-9_]*) in this format. */
bool exposition_valid_name(struct vg_str s, bool metric);

/* ---- writing ---- */

/* "# HELP name help\n" with backslash and newline in help escaped. */
void exposition_write_help(struct vg_buf *out, struct vg_str name, struct vg_str help);
/* "# TYPE name type\n". */
void exposition_write_type(struct vg_buf *out, struct vg_str name, enum exposition_type type);
/* "name{l1="v1",...} value[ ts]\n". Labels are written in the order given; a label named
 * "__name__" is skipped (name carries it), so a stored series' labels can be passed as
 * they are. Label values get backslash, double quote and newline escaped; names are
 * written as given (the caller keeps them valid). value is printed like Go's 'g'. */
void exposition_write_sample(struct vg_buf *out, struct vg_str name, const struct label *labels,
                             size_t nlabels, double value, bool has_ts, int64_t ts_ms);
/* Appends s as a label value between double quotes, escaped as above. */
void exposition_write_label_value(struct vg_buf *out, struct vg_str s);

/* ---- parsing ---- */

enum exposition_kind {
    EXPOSITION_SAMPLE,
    EXPOSITION_HELP,
    EXPOSITION_TYPE,
    EXPOSITION_UNIT, /* OpenMetrics only */
};

struct exposition_entry {
    enum exposition_kind kind;
    size_t line;                /* 1-based line it came from */
    struct vg_str name;         /* sample's metric name, or the HELP/TYPE metric name */
    struct vg_str help;         /* HELP: the unescaped docstring (may be empty) */
    enum exposition_type type;  /* TYPE */
    struct vg_str unit;         /* UNIT (OpenMetrics) */
    struct label *labels;       /* SAMPLE: in the order written (not sorted) */
    size_t nlabels;
    double value;
    bool has_ts;
    int64_t ts_ms;
    /* SAMPLE, OpenMetrics only: the exemplar after " # " (labels in the order written) */
    bool has_exemplar;
    struct label *ex_labels;
    size_t ex_nlabels;
    double ex_value;
    bool ex_has_ts;
    int64_t ex_ts_ms;
};

/* Called once per HELP, TYPE and sample line, in input order. Returning non-zero stops
 * the parse; that value is returned by exposition_parse (err filled by the callback). */
typedef int (*exposition_fn)(void *ctx, const struct exposition_entry *e, struct vg_err *err);

/* Parses buf[0..len). Strings in the entries point into buf or into arena; they stay
 * valid while both live. The parser checks each line on its own (like Prometheus's
 * scrape parser): no cross-line checks of families, duplicate series or ordering.
 * Returns 0, VG_EINVAL with "line L column C: <what>" (1-based, C counts bytes),
 * VG_ENOMEM when arena or heap fails, or the callback's non-zero result. */
int exposition_parse(const char *buf, size_t len, struct vg_arena *arena, exposition_fn fn,
                     void *ctx, struct vg_err *err);

/* Parses OpenMetrics 1.0 text (see the top of this file) the same way, with the same
 * errors plus "missing # EOF at the end of the input" and "unexpected data after # EOF".
 * Like Prometheus's parser it checks lines, not families: a _created or _total sample
 * is passed on as a sample like any other. */
int exposition_parse_openmetrics(const char *buf, size_t len, struct vg_arena *arena,
                                 exposition_fn fn, void *ctx, struct vg_err *err);

/* Same, collecting every entry into an arena array *out of *n entries. */
int exposition_parse_all(const char *buf, size_t len, struct vg_arena *arena,
                         struct exposition_entry **out, size_t *n, struct vg_err *err);

#endif
