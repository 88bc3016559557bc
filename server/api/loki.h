/* loki: Loki's query HTTP API (Loki 3 shapes), mod_loki_api, so Grafana's Loki data
 * source, logcli and curl users can read the log store:
 *   GET|POST /loki/api/v1/query              query, limit, time, direction      (loki_query.c)
 *   GET|POST /loki/api/v1/query_range        query, start, end, since, step, interval,
 *                                            limit, direction                   (loki_query.c)
 *   GET|POST /loki/api/v1/labels             start, end, since, query
 *   GET|POST /loki/api/v1/label/<name>/values  start, end, since, query
 *   GET|POST /loki/api/v1/series             match[] (repeatable), start, end, since
 *   GET|POST /loki/api/v1/index/stats        query, start, end
 *   GET|POST /loki/api/v1/index/volume       query, start, end, limit, targetLabels, aggregateBy
 *   GET|POST /loki/api/v1/index/volume_range same plus step
 *   GET      /loki/api/v1/detected_labels    query, start, end                  (loki_detect.c)
 *   GET      /loki/api/v1/detected_fields    query, start, end, line_limit, limit
 *                                            (loki_detect.c)
 *   GET      /loki/api/v1/patterns           query, start, end, step            (loki_patterns.c)
 *   GET|POST /loki/api/v1/format_query       query
 *   GET      /loki/api/v1/tail               WebSocket: query, delay_for, limit, start
 *                                            (loki_tail.c)
 *   GET      /loki/api/v1/status/buildinfo
 *   GET      /ready
 *
 * Parameters follow Loki's pkg/loghttp: times are integers of at most 10 digits (Unix
 * seconds), longer integers (nanoseconds), numbers with a fraction (float seconds,
 * rounded to the millisecond) or RFC 3339; start defaults to end (or now, when end is in
 * the future) minus since (default 1h), end to now; step and interval are float seconds
 * or durations; limit defaults to 100.
 *
 * Answers: {"status":"success","data":...} as Loki writes them; index/stats and
 * buildinfo are bare objects and detected_* have their own shape (see each handler).
 * Errors are Loki's: a plain-text body (no trailing newline) with status 400 for bad
 * parameters and queries (parse errors read "parse error at line 1, col 5: ..."), 504
 * for a query timeout, 500 for storage failures.
 *
 * Everything here is thread-safe; handlers run on the HTTP front end's workers. */
#ifndef LOKI_API_H
#define LOKI_API_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../http.h"
#include "../logql/ast.h"
#include "../logql/engine.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOKI_DEFAULT_LIMIT 100
#define LOKI_DEFAULT_SINCE_NS (3600LL * 1000000000LL)
#define LOKI_MAX_POINTS 11000
/* The Loki version reported by buildinfo: Grafana enables features by it. */
#define LOKI_API_VERSION "3.4.2"
/* Loki's messages for two checks several endpoints make. */
#define LOKI_END_BEFORE_START "end timestamp must not be before or equal to start time"
#define LOKI_NEED_MATCHER                                                                  \
    "parse error : queries require at least one regexp or equality matcher that does not " \
    "have an empty-compatible value. For instance, app=~\".*\" does not meet this "          \
    "requirement, but app=~\".+\" will"

/* A time parameter as Loki's parseTimestamp reads it (see the top of this file), in ns.
 * 0, or VG_EINVAL with Go's wording (`strconv.ParseInt: parsing "x": invalid syntax`). */
int loki_parse_time(const char *s, int64_t *ns, struct vg_err *err);
/* Float seconds or a Prometheus duration, in ns (step, interval). 0 or VG_EINVAL
 * `cannot parse "x" to a valid duration`. */
int loki_parse_duration(const char *s, int64_t *ns, struct vg_err *err);
/* start, end and since of req as Loki's determineBounds, now_ns being the wall clock.
 * Errors read `could not parse 'start' parameter: ...`. Does not check end < start. */
int loki_bounds(const struct http_request *req, int64_t now_ns, int64_t *start, int64_t *end,
                struct vg_err *err);
/* Argument "limit": absent -> def; else a positive integer (VG_EINVAL
 * "limit must be a positive value" or Go's Atoi error). */
int loki_limit(const struct http_request *req, size_t def, size_t *out, struct vg_err *err);
/* The default step of a range: max(floor((end - start) / 250 s), 1) seconds, in ns. */
int64_t loki_default_step(int64_t start_ns, int64_t end_ns);
int64_t loki_now_ns(void);

/* Parses a query that must be a log selector with an optional pipeline (labels,
 * series, index and tail endpoints). An empty query gives *out NULL (all streams). 0,
 * or VG_EINVAL (a metric query or a parse error, with Loki's message), VG_ENOMEM. The
 * caller frees *out with logql_expr_free. */
int loki_selector(const char *query, struct logql_expr **out, struct vg_err *err);

/* Fills resp with Loki's plain-text error for err: 400 for VG_EINVAL, VG_ETOOLARGE and
 * VG_ECONFLICT, 504 (with Loki's timeout text) for VG_EOVERLOAD, 404 for VG_ENOTFOUND,
 * 500 otherwise (logged). */
void loki_resp_error(struct http_response *resp, const struct vg_err *err);
/* Moves b into resp as a 200 JSON answer (or a 500 when b failed). */
void loki_send(struct http_response *resp, struct vg_buf *b);
/* The end of a handler: rc < 0 frees b and answers err, else sends b. */
void loki_finish(struct http_response *resp, int rc, const struct vg_err *err, struct vg_buf *b);
/* The engine's limits with the query timeout from the config (query.timeout). */
void loki_limits(const struct vigil *v, struct logql_limits *lim);

extern const struct vigil_module mod_loki_api;

#endif
