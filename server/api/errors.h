/* errors (API): error groups from error tracking (server/traces/errors.h), mod_errors_api.
 *
 *   GET /api/v1/errors                 start, end, service, limit
 *   GET /api/v1/errors/<fingerprint>   start, end, step (default 1h, a whole number of
 *                                      hours)
 *
 * List answer, in Prometheus's envelope, groups sorted by count (most first; ties by
 * fingerprint):
 *   {"status":"success","data":[{"fingerprint":"<16 hex>","type":"..","message":"..",
 *     "count":N,"firstSeen":"<RFC 3339>","lastSeen":"<RFC 3339>","services":[..],
 *     "sampleTraceId":"<32 hex>"|null}, ...]}
 * message is the first message recorded for the group as it was sent (the fingerprint
 * uses its normalised form). Without start and end, count is the group's total; with
 * either (start defaults to 0, end to now), count is the sum over the hours that overlap
 * [start, end], and groups with none there are left out. service keeps the groups that
 * service raised; limit (0 = all) cuts the sorted list.
 *
 * Detail answer: the same object for one group plus
 *   "frames":"<normalised top frames, \n-separated>",
 *   "sampleTraceIds":["<newest>", ...],
 *   "occurrences":[[<unix seconds of the step's start>, count], ...]
 * with one pair per step from start (default: the later of firstSeen and end - 7 days,
 * floored to the step) to end (default now), zeros included; at most 11000 steps, as
 * Prometheus caps a range query.
 *
 * Error tracking writes occurrences every flush interval; both endpoints flush first, so
 * they see every error ingested before the request. Errors: 400 bad_data for bad
 * parameters, 404 for an unknown fingerprint or when error tracking is off
 * (traces.errors_enabled), 500 when the store fails. Handlers are thread-safe. */
#ifndef API_ERRORS_H
#define API_ERRORS_H

#include "../vigil.h"

#define ERRORS_API_MAX_POINTS 11000

extern const struct vigil_module mod_errors_api;

#endif
