/* query: the PromQL part of Prometheus's HTTP API, mod_query_api:
 *   GET|POST /api/v1/query              query, time, timeout, limit, lookback_delta
 *   GET|POST /api/v1/query_range        query, start, end, step, timeout, limit, lookback_delta
 *   GET|POST /api/v1/format_query       query
 *   GET|POST /api/v1/parse_query        query (the syntax tree as Prometheus 3's JSON)
 *   GET|POST /api/v1/query_exemplars    query, start, end
 *   GET      /api/v1/status/runtimeinfo
 *   GET      /api/v1/status/flags
 *   GET      /api/v1/status/tsdb        limit (default 10)
 * Answers use Prometheus's envelope {"status":"success","data":...[,"warnings":[..]]
 * [,"infos":[..]]}; errors are {"status":"error","errorType":T,"error":"..."} with T and
 * the HTTP status as Prometheus picks them (see query_error_type). Queries are counted
 * in /metrics as vigil_query_requests_total{endpoint,status} and
 * vigil_query_duration_seconds{endpoint}.
 *
 * The helpers below are exported for the unit tests; they are pure and thread-safe. */
#ifndef QUERY_API_H
#define QUERY_API_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../promql/ast.h"
#include "../promql/engine.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Prometheus's errorType values, each with its HTTP status. */
enum query_error_type {
    QUERY_BAD_DATA,  /* 400: parameters, parse errors */
    QUERY_EXECUTION, /* 422: evaluation errors (many-to-many matching, sample limit, ...) */
    QUERY_TIMEOUT,   /* 503: the query ran out of time */
    QUERY_CANCELED,  /* 499: the client went away */
    QUERY_INTERNAL,  /* 500: storage failure or our own bug */
};
const char *query_error_type_name(enum query_error_type t); /* "bad_data", ... */
int query_error_status(enum query_error_type t);            /* 400, 422, ... */
/* The errorType of an evaluation error code (engine.h): VG_EOVERLOAD timeout; VG_EIO,
 * VG_ENOMEM and VG_EINTERNAL internal; everything else execution, as Prometheus maps
 * every error out of its engine's Exec that is not a timeout, a cancellation or a
 * storage error. */
enum query_error_type query_error_type(int code);
/* Fills resp with the error body and status. */
void query_resp_error(struct http_response *resp, enum query_error_type t, const char *msg);

/* A duration parameter as Prometheus's API reads step, timeout and lookback_delta:
 * float seconds ("15", "0.5", "1e3") or a Prometheus duration ("15s", "1h30m"), into
 * nanoseconds. 0, or VG_EINVAL with `cannot parse "<s>" to a valid duration` (or "...
 * It overflows int64"). */
int query_parse_duration(const char *s, int64_t *ns, struct vg_err *err);

/* A timestamp in ms as Prometheus writes it: whole seconds, then a dot and always three
 * digits when the milliseconds are not zero ("1700000000", "1700000000.500", "-1.500"). */
void query_json_time(struct vg_buf *b, int64_t ms);
/* A sample value in quotes as Prometheus writes it: Go 'f' formatting, except 'e' below
 * 1e-6 and from 1e21 on in magnitude ("1.5", "1e-07", "NaN", "+Inf"). */
void query_json_value(struct vg_buf *b, double v);
/* The data object {"resultType":..,"result":..} of r. With limit > 0 a vector or matrix
 * keeps its first limit series and *truncated is set when some were dropped. */
void query_json_result(struct vg_buf *b, const struct promql_result *r, size_t limit,
                       bool *truncated);
/* The syntax tree as Prometheus 3's /api/v1/parse_query writes it (keys sorted). */
void query_json_ast(struct vg_buf *b, const struct promql_node *n);
/* A duration in ms as Prometheus prints one ("15d", "1h30m", "0s"). */
void query_format_duration(struct vg_buf *b, int64_t ms);

extern const struct vigil_module mod_query_api;

#endif
