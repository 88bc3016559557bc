/* loki_detect: the "detected" endpoints of mod_loki_api (loki.h) that Grafana's Logs
 * Drilldown (Explore Logs) calls:
 *
 *   GET /loki/api/v1/detected_labels  query (optional selector), start, end, since
 *     {"detectedLabels":[{"label":"app","cardinality":3},...]}
 *     Stream labels of the selected streams with how many values each has, sorted by
 *     name. As Loki does, a label whose values all look like ids (numbers or UUIDs, a
 *     lone 0/1 pair excepted) is left out, except cluster, namespace, instance and pod.
 *
 *   GET /loki/api/v1/detected_fields  query (log query), start, end, since, line_limit
 *                                     (default 1000), limit (or field_limit, default 1000)
 *     {"fields":[{"label":"status","type":"int","cardinality":4,"parsers":["logfmt"]},..],
 *      "limit":1000}
 *     The newest line_limit entries of the query (its pipeline filtering them) are parsed
 *     as Loki's detection does: `| json`, and when the line is not JSON `| logfmt`; each
 *     field gets the parsers that found it, a type from its values (int, float, boolean,
 *     duration, bytes, else string, in Loki's order of tries) and its count of distinct
 *     values (exact, where Loki estimates). Structured metadata counts as fields with
 *     "parsers":null. At most limit fields, sorted by name.
 *
 * Thread-safe. */
#ifndef LOKI_DETECT_H
#define LOKI_DETECT_H

#include "../http.h"
#include "../vigil.h"

#include <stdbool.h>

void loki_detected_labels(struct vigil *v, struct http_request *req, struct http_response *resp);
void loki_detected_fields(struct vigil *v, struct http_request *req, struct http_response *resp);

/* The detected type of one value: "int", "float", "boolean", "duration", "bytes" or
 * "string" (Go's ParseInt, ParseFloat, ParseBool, time.ParseDuration and humanize's
 * ParseBytes, tried in that order). Exported for the tests. */
const char *loki_detect_type(const char *s, size_t n);
/* True when s looks like an id: a number (ParseFloat) or a UUID. */
bool loki_detect_is_id(const char *s, size_t n);

#endif
