/* testfile: reads Prometheus's PromQL test-file format (Prometheus's promql/promqltest/testdata,
 * summarised in ../shared/conformance/README.md) into a list of commands that
 * promqltest.c runs against the TSDB and the engine. Pure parsing: no storage, no engine.
 *
 * The rules follow Prometheus's test harness so a file means the same thing to both:
 * - Every line is trimmed; a line starting with '#' counts as blank, and a blank line
 *   ends a command's block.
 * - Commands: `clear`; `load <step>` / `load_with_nhcb <step>` + series lines;
 *   `eval[_fail|_warn|_info|_ordered] instant at <time> <expr>` and
 *   `eval[_fail|_warn|_info] range from <t> to <t> step <d> <expr>`, followed by
 *   `expect <fail|warn|no_warn|info|no_info|ordered> [msg:<text>|regex:<re>]`,
 *   `expect range vector from <t> to <t> step <d>`, `expect string "<s>"`, a bare number
 *   (scalar result; ends the block) or result series `<labels> <values>`.
 * - Values: `_` (no sample), `_xN` (N of them), a number (also Inf, NaN, signed),
 *   `stale`, `axN` (N+1 times a), `a+bxN` / `a-bxN` (N+1 values from a in steps of b).
 *   `{{...}}` native histograms (also `{{..}}xN`, `{{..}}+{{..}}xN`) are recognised
 *   and flagged, not decoded: this runner does not support native histograms.
 * - Times and durations are Prometheus durations (`0`, `90s`, `1h30m`, `100ms`); a bare
 *   number is accepted as seconds.
 *
 * A malformed command does not spoil the file: it is kept with `error` set and the parser
 * resumes at the next block, so the runner can report it as one failed case.
 *
 * Memory: everything hangs off the tf_file's arena and is released by tf_free. Not
 * thread-safe per file; different files may be parsed concurrently. */
#ifndef PROMQL_TESTFILE_H
#define PROMQL_TESTFILE_H

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One position of a value sequence. */
struct tf_value {
    double v;       /* the float; stale markers carry TSDB_STALE_NAN_BITS */
    bool omitted;   /* `_`: no sample at this position */
    bool histogram; /* a native histogram, not decoded (v is 0) */
};

/* A series line: labels (sorted by name, __name__ included, empty values dropped as
 * Prometheus treats them as absent) and its values. */
struct tf_series {
    struct label *labels;
    size_t nlabels;
    struct tf_value *vals;
    size_t nvals;
    bool has_histogram; /* some value is a native histogram */
    int line;           /* 1-based line in the file */
};

enum tf_expect_kind {
    TF_EXPECT_ORDERED,
    TF_EXPECT_FAIL,
    TF_EXPECT_WARN,
    TF_EXPECT_NO_WARN,
    TF_EXPECT_INFO,
    TF_EXPECT_NO_INFO,
};

/* `expect <kind>` with an optional `msg:` (exact text, trimmed) or `regex:` (unanchored,
 * as Go's regexp.MatchString). Neither set: anything matches. */
struct tf_expect {
    enum tf_expect_kind kind;
    char *msg;
    char *regex;
};

struct tf_eval {
    char *expr;             /* the query text, NUL-terminated */
    bool range;             /* `eval range`; else instant */
    int64_t at_ms;          /* instant: evaluation time (the range's end with
                               expect range vector, as Prometheus) */
    int64_t start_ms, end_ms, step_ms; /* range, or the expected range vector's grid */
    bool expect_range_vector; /* instant query whose result is a range vector */
    bool fail, warn, info, ordered; /* from eval_fail / eval_warn / eval_info / eval_ordered */
    struct tf_expect *expects;
    size_t nexpects;
    bool expect_string; /* `expect string`; string holds the unquoted value */
    char *string;
    size_t string_len;
    bool expect_scalar; /* a bare number line */
    double scalar;
    struct tf_series *series; /* expected result series in file order */
    size_t nseries;
    bool has_histogram;       /* an expected value is a native histogram */
};

enum tf_cmd_kind { TF_CLEAR, TF_LOAD, TF_EVAL };

struct tf_load {
    int64_t step_ms;
    bool nhcb; /* load_with_nhcb: classic histograms also become native ones */
    struct tf_series *series;
    size_t nseries;
};

struct tf_cmd {
    enum tf_cmd_kind kind;
    int line;    /* 1-based line of the command */
    const char *error; /* non-NULL: the command is malformed; this says why */
    union {
        struct tf_load load;
        struct tf_eval eval;
    };
};

struct tf_file {
    struct tf_cmd *cmds;
    size_t ncmds;
    struct vg_arena *arena;
};

/* Parses a whole file (len bytes; need not be NUL-terminated). Malformed commands are
 * kept with their error (see above); a line that starts no known command becomes a
 * TF_EVAL with error set. NULL only when out of memory (err VG_ENOMEM). Caller frees
 * with tf_free. */
struct tf_file *tf_parse(const char *text, size_t len, struct vg_err *err);
void tf_free(struct tf_file *f); /* accepts NULL */

/* An eval command's fail / ordered flags combined from its eval_* form and its expect
 * lines, and its `expect fail` line (NULL when none). */
bool tf_eval_is_fail(const struct tf_eval *e);
bool tf_eval_is_ordered(const struct tf_eval *e);
const struct tf_expect *tf_eval_fail_expect(const struct tf_eval *e);

/* A Prometheus duration ("0", "5m", "1h30m", "100ms", "1y2w3d"), or a bare decimal
 * number of seconds ("20", "1.5"). Returns 0 and *ms, or VG_EINVAL. */
int tf_parse_time(const char *s, size_t len, int64_t *ms, struct vg_err *err);

/* A number as Prometheus's harness reads a scalar line: Go's ParseInt(s, 0, 64) (so
 * 0x1f, 0o17, 017, 0b101), else ParseFloat (decimal, hex float, Inf, NaN, infinity).
 * Returns true and *out when the whole of s (len bytes) is a number. */
bool tf_parse_number(const char *s, size_t len, double *out);

/* Float comparison as Prometheus's test harness: NaN equals NaN, otherwise equal or a
 * relative difference below 1e-6 (absolute near zero). */
bool tf_float_equal(double a, double b);

/* Unanchored regex search (PCRE2, via the matcher wrapper). Returns 1 on a match, 0 on
 * none, VG_EINVAL when re does not compile. */
int tf_regex_search(const char *re, const char *s);

#endif
