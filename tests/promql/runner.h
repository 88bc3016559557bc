/* runner: runs one parsed PromQL test file (testfile.h) against the real TSDB and the real
 * engine, the way Prometheus's harness (promql/promqltest) runs it against Prometheus:
 *
 * - The file gets a fresh TSDB in a temporary directory (retention off, an out-of-order
 *   window wide enough for 1970 timestamps); `clear` replaces it with another fresh one.
 *   Each `load` is one tsdb_append batch, sample i of a series at i * step ms.
 * - Each eval is parsed with promql_parse and run through promql_eval_instant/range with
 *   querier_tsdb. Results are compared as the harness does: labels exactly, floats with
 *   tf_float_equal, order only when the case expects it, points of a matrix on the grid
 *   start + i*step, errors against `expect fail` msg:/regex:, warnings and infos only
 *   when the case mentions them (eval_warn, expect warn/no_warn, ...).
 * - Instant cases get the harness's extra checks: the same query as a range query from
 *   t-1m to t+1m step 1m must give the same value at t ("range mode"; skipped for
 *   ordered, string and range-vector results and for queries using start()/end()), and,
 *   unless the query calls time(), timestamp(), predict_linear or a date function, the
 *   query with `@ t` put on every selector and subquery must give the same result when
 *   evaluated at -10t, 0, t/5, t and 10t (-1s, 0, 1s when t is 0).
 * - A case is unsupported (never passed) when it touches native histograms: an expected
 *   `{{...}}` value, or a selector that matches a series loaded with `{{...}}` values or
 *   a native series load_with_nhcb derives from classic `_bucket`/`_count`/`_sum`
 *   series. Those native series are not loaded; every float series is.
 *
 * One case is reported per eval command, plus one failed case for a load that is
 * malformed or that the TSDB refuses. Not thread-safe (uses alarm() per case when asked). */
#ifndef PROMQL_RUNNER_H
#define PROMQL_RUNNER_H

#include "../../server/promql/engine.h"
#include "../../storage/base/vg_buf.h"
#include "testfile.h"

#include <stdbool.h>

enum case_status { CASE_PASS, CASE_FAIL, CASE_UNSUPPORTED };

struct runner_opts {
    struct promql_opts engine;
    bool at_variants;    /* the harness's @-modifier variants (default on) */
    bool range_mode;     /* the harness's range-mode check (default on) */
    bool compact;        /* tsdb_compact after each load, so queries read persisted chunks */
    int case_timeout_s;  /* alarm() per case, 0 = none; the process dies when it fires */
    const char *tmpdir;  /* parent of the temporary TSDB directories; NULL = $TMPDIR or /tmp */
    int only_line;       /* run only the eval on this line (loads and clears still run); 0 = all */
};
void runner_opts_default(struct runner_opts *o);

/* Called once per case in file order. detail (NULL for passes) is a multi-line
 * description: reason, expression, expected and actual, each line indented by 4. */
typedef void (*runner_report_fn)(void *ctx, int line, enum case_status st, const char *detail);

/* Called just before a case runs, so a caller watching from another process can tell
 * which case was running if the process dies. May be NULL. */
typedef void (*runner_start_fn)(void *ctx, int line);

/* Runs every command of f. Returns 0, or a vg_code with err when no TSDB could be opened
 * (cases already reported stay reported). */
int runner_run_file(const struct tf_file *f, const struct runner_opts *o,
                    runner_start_fn start, runner_report_fn report, void *ctx,
                    struct vg_err *err);

/* Appends the one-line description of cmd that starts a case's details ("eval instant at
 * 50m <expr>", "load", or the text of a malformed command), newline included. */
void runner_describe(const struct tf_cmd *cmd, struct vg_buf *out);

/* Removes a directory tree (the temporary stores); errors are ignored. */
void runner_rm_tree(const char *dir);

/* Whether cmd is reported as a case before it runs: every eval command, and a malformed
 * load. (A well-formed load is reported only if the TSDB refuses it.) */
bool runner_is_case(const struct tf_cmd *cmd);

#endif
