/* logproc: log processors, a chain of small steps run on every log record before it is
 * stored. One chain per tailed file source (log_files[i].processors, filetail.h) and one
 * global chain (the top-level block `log_processors`), which ingest_store_logs runs on
 * every record of every receiver that stores through it (OTLP logs, Loki push, syslog, files).
 *
 * Config: a list; each item is a mapping with exactly one key naming the step:
 *
 *   log_processors:
 *     - add_labels: {env: prod}           # set stream labels (overwrites)
 *     - rename_labels: {app: service}     # old: new (a label called new is replaced)
 *     - drop_labels: [pod, instance]
 *     - add_fields: {team: core}          # structured metadata, same three forms
 *     - rename_fields: {msg: message}
 *     - drop_fields: [password]
 *     - min_level: warn                   # drop records below this level
 *     - drop_levels: [debug, trace]       # drop records at these levels
 *     - keep: {regex: 'GET /api'}         # keep only records whose line matches
 *     - drop: {field: path, regex: '^/health'}   # drop records whose field matches
 *     - redact: {regex: '[\w.+-]+@[\w-]+\.[\w.]+', replacement: '<redacted>'}
 *     - rate_limit: {lines_per_second: 100, burst: 200}
 *
 * Levels: a record's level is the first of the metadata fields level, detected_level,
 * severity, severity_text, lvl, loglevel, then the labels level, detected_level,
 * severity, that holds a known name. Names map, case-insensitively, onto Loki's scale:
 * trace; debug, dbg; info, information, informational, notice; warn, warning; error,
 * err; critical, crit, fatal, panic, alert, emerg, emergency (all "critical"). Config
 * takes the same names. A record with no known level is never dropped by min_level or
 * drop_levels.
 *
 * keep/drop: `regex` is searched (unanchored, Go regexp semantics as matcher.h's
 * extraction regexes) in the line, or with `field: name` in that metadata field, else
 * that label (a missing one is ""). keep drops records that do not match.
 *
 * redact: every non-empty match of `regex` is replaced by `replacement` (default
 * "<redacted>"). Without `fields` it rewrites the line and every metadata value; with
 * `fields: [a, b]` only those metadata fields, plus the line when `line: true`. Labels
 * are never rewritten (redact before making a field a label).
 *
 * rate_limit: a token bucket per source (the tailed file source for a per-source chain;
 * the receiver name, e.g. "loki_push", for the global chain) holding `burst` lines
 * (default: lines_per_second, at least 1), refilled at lines_per_second.
 *
 * Records dropped by a step are counted in /metrics as
 *   vigil_logproc_dropped_total{source, reason}   reason: level, filter, rate_limit
 * and are not reported to the sender as rejected (a filter is the operator's choice).
 *
 * Errors name the config line: "cfg.yml:12: log_processors[2].keep.regex: invalid
 * regex ...". Label names must be valid Prometheus label names; added values non-empty.
 *
 * Thread safety: a chain is immutable after logproc_new except for its rate-limit
 * buckets (guarded by a mutex inside); logproc_run and logproc_streams may be called
 * from many threads at once, each with its own arena. */
#ifndef LOGPROC_H
#define LOGPROC_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/tsdb/labels.h"
#include "../config_node.h"

#include <stdint.h>

struct metrics;
struct logproc;

/* One record as a chain sees it. On input the arrays may be read-only (they are copied
 * into the arena before a step changes them); on output labels are sorted and unique
 * and every changed string lives in the arena. */
struct logproc_record {
    int64_t t;
    struct vg_str line;
    const struct label *labels;
    size_t nlabels;
    const struct label *meta;
    size_t nmeta;
};

/* Compiles the chain in list (a SEQ; where names it in messages, e.g. "log_processors"
 * or "log_files[0].processors"). list NULL or an empty list: 0 with *out NULL (no
 * chain). mx may be NULL (validation only: nothing is counted). Errors: VG_EINVAL as
 * "file:line: where[i].step: what", VG_ENOMEM. Caller frees with logproc_free. */
int logproc_new(const struct config_node *list, const char *where, struct metrics *mx,
                struct logproc **out, struct vg_err *err);
void logproc_free(struct logproc *p); /* accepts NULL */

/* Runs the chain on r for source (a rate-limit bucket and the metric label). now_ns is
 * a monotonic clock for the rate limit. 1: keep r (possibly changed), 0: dropped (and
 * counted), VG_ENOMEM when the arena ran out (r unchanged in meaning; the caller may
 * keep it as it was). */
int logproc_run(struct logproc *p, const char *source, struct logproc_record *r,
                int64_t now_ns, struct vg_arena *a);

/* Runs the chain on every entry of a push. *out gets streams (in the arena) with the
 * kept entries, *nout of them (streams left with no entry are left out; two input
 * streams may come out with equal labels, which logstore_push accepts). 0, or
 * VG_ENOMEM (then nothing is written to *out). */
int logproc_streams(struct logproc *p, const char *source, const struct logstore_stream_in *in,
                    size_t n, struct vg_arena *a, struct logstore_stream_in **out,
                    size_t *nout);

/* The level rank of a name (0 trace .. 5 critical as above), or -1 when unknown. */
int logproc_level_rank(struct vg_str name);

#endif
