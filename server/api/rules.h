/* rules (API): the rule engine's HTTP face, in Prometheus's shapes so Grafana's
 * alerting view of a Prometheus data source works.
 *
 *   GET  /api/v1/rules    {"status":"success","data":{"groups":[{"name","file","rules":[...],
 *                         "interval","limit","evaluationTime","lastEvaluation"}]}}
 *                         alerting rule: state, name, query, duration, keepFiringFor,
 *                         labels, annotations, alerts[], health, lastError (omitted when
 *                         empty), evaluationTime, lastEvaluation, type "alerting";
 *                         recording rule: name, query, labels (omitted when empty),
 *                         health, lastError, evaluationTime, lastEvaluation, type
 *                         "recording". Filters: type=alert|record, rule_name[],
 *                         rule_group[], file[], exclude_alerts=true.
 *   GET  /api/v1/alerts   {"status":"success","data":{"alerts":[{labels, annotations, state,
 *                         activeAt, keepFiringSince (when set), value}]}}
 *   POST /-/reload        (also PUT) re-reads the config's rule sections and the rule
 *                         files: 200 with an empty body, or 500 with the error as text
 *                         ("failed to reload config: ..."), the old rules still running.
 *
 * Times are RFC 3339 in UTC with the fraction trimmed ("2024-05-01T10:00:00.5Z"; a rule
 * never evaluated shows Go's zero time "0001-01-01T00:00:00Z"); durations and
 * evaluation times are seconds as JSON numbers; alert values are strings in Go's 'e'
 * format ("1e+00", "9.5e-01"). Handlers are thread-safe. */
#ifndef API_RULES_H
#define API_RULES_H

#include "../../storage/base/vg_buf.h"
#include "../vigil.h"

#include <stdint.h>

extern const struct vigil_module mod_rules_api;

/* Appends v as Go's strconv.FormatFloat(v, 'e', -1, 64): shortest digits that read
 * back exactly, exponent with sign and at least two digits; NaN, +Inf, -Inf. */
void rules_api_go_e(struct vg_buf *b, double v);
/* Appends ms as Go marshals a time.Time in UTC (RFC 3339, trailing fraction zeros
 * dropped); 0 as Go's zero time. */
void rules_api_time(struct vg_buf *b, int64_t ms);

#endif
