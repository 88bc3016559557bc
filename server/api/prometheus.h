/* prometheus: the series-metadata part of Prometheus's HTTP API (what Grafana's label
 * browser and query editor call), mod_prometheus_api:
 *   GET|POST /api/v1/series           match[] (required, repeatable), start, end, limit
 *   GET|POST /api/v1/labels           match[] (optional), start, end, limit
 *   GET      /api/v1/label/<name>/values   same parameters; <name> plain or U__-escaped
 *   GET      /api/v1/metadata         metric, limit, limit_per_metric
 *   GET      /api/v1/status/buildinfo
 * Bodies use Prometheus's envelope: {"status":"success","data":...[,"warnings":[...]]},
 * errors {"status":"error","errorType":"bad_data","error":"..."} via http_resp_error.
 * JSON is written with vg_buf (vg_buf_json_str) throughout.
 *
 * The helpers below are exported for the unit tests; they are pure and thread-safe. */
#ifndef PROMETHEUS_H
#define PROMETHEUS_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../http.h"
#include "../labels_json.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Prometheus's MinTime and MaxTime (v1.MinTime/MaxTime) in milliseconds: the defaults of
 * start and end, and what "-292273086-05-16T16:47:06Z" / "292277025-08-18T07:12:54.999999999Z"
 * (Grafana and client_golang send these) parse to. */
#define PROMETHEUS_MIN_TIME_MS (-9223309901257974000LL)
#define PROMETHEUS_MAX_TIME_MS (9223309901257974999LL)

/* The Prometheus API level reported as "version" by buildinfo. Grafana picks features by
 * this version (a non-Prometheus number such as ours would read as an ancient server);
 * Vigil's own version goes into "revision" as "vigil-<version>". */
#define PROMETHEUS_API_VERSION "2.53.0"

/* Parses a time as Prometheus's API does: Unix seconds with an optional fraction
 * ("1700000000", "1700000000.123", "-1.5", "1.7e9"; rounded to the millisecond) or RFC 3339
 * with optional fraction and zone ("2023-11-14T22:13:20.5Z", "...+01:00"; truncated to
 * the millisecond), plus the two boundary strings above. 0, or VG_EINVAL with
 * "cannot parse \"<s>\" to a valid timestamp". NaN, infinities and times whose
 * millisecond count overflows int64 are refused too. */
int prometheus_parse_time(const char *s, int64_t *ms, struct vg_err *err);

/* Argument name of req as a time (default def when absent or empty); errors read
 * `invalid parameter "start": cannot parse "x" to a valid timestamp`. */
int prometheus_time_param(const struct http_request *req, const char *name, int64_t def,
                          int64_t *ms, struct vg_err *err);

/* Argument "limit" as series/labels/values take it: absent or empty -> 0 (no limit); a
 * non-negative decimal integer; else VG_EINVAL `invalid parameter "limit": ...`. */
int prometheus_limit_param(const struct http_request *req, size_t *limit, struct vg_err *err);

/* Undoes Prometheus 3's U__ escaping of a label name in a URL path ("U__my_2e_name" ->
 * "my.name", "__" -> "_", "_<hex>_" -> that code point). Names without the prefix, and
 * malformed escapes (which Prometheus also keeps as they are), are copied unchanged.
 * Appends to out (NUL-terminated after vg_buf_cstr). */
void prometheus_unescape_name(const char *s, size_t n, struct vg_buf *out);

/* Envelope pieces: begin writes `{"status":"success","data":`; end closes it, adding
 * "warnings":[warning] when warning is not NULL. */
void prometheus_json_begin(struct vg_buf *b);
void prometheus_json_end(struct vg_buf *b, const char *warning);
/* ["a","b",...] of at most n strings (NUL-terminated). */
void prometheus_json_strings(struct vg_buf *b, const char *const *v, size_t n);
/* {"name":"value",...}: the shared label-set writer (labels_json.h). */
static inline void prometheus_json_labels(struct vg_buf *b, const struct label *ls, size_t n)
{
    labels_json_put(b, ls, n);
}
/* The data object of /api/v1/status/buildinfo: version, revision, branch, buildUser,
 * buildDate, goVersion, all strings, and no "features" (Grafana takes a non-empty one to
 * mean Mimir). */
void prometheus_json_buildinfo(struct vg_buf *b);

/* Sorts v (n NUL-terminated strings) and drops repeats; returns the new count. Used to
 * union the answers of several match[] selectors. */
size_t prometheus_sort_unique(const char **v, size_t n);

extern const struct vigil_module mod_prometheus_api;

#endif
