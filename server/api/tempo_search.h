/* tempo_search: Tempo's search and tag endpoints (routed by tempo.c).
 *
 *   GET /api/search            q (TraceQL) or tags (logfmt: service.name=x
 *                              http.status_code=500 name="GET /"), minDuration and
 *                              maxDuration (Go durations, bounds on the trace duration),
 *                              limit (traces, default 20), start and end (unix seconds,
 *                              bounds on span start times), spss (spans shown per spanset,
 *                              default 3). Answers
 *       {"traces":[{"traceID","rootServiceName","rootTraceName","startTimeUnixNano"
 *         (string),"durationMs","spanSet":{...},"spanSets":[{"spans":[{"spanID","name",
 *         "startTimeUnixNano","durationNanos","attributes":[KeyValue...]}],"matched":N}]}],
 *        "metrics":{"inspectedTraces":N,"inspectedSpans":"N","completedJobs":1,
 *        "totalJobs":1}}
 *     newest trace first. Shown attributes: service.name and every attribute the query
 *     names. A trace without a root span has rootServiceName "<root span not yet
 *     received>" as in Tempo. When the bound on traces read was reached before the store
 *     ran out, metrics also carries "truncated":true (Vigil's addition).
 *     Legacy tags: name=... is the span name, status=error|ok|unset the status, any
 *     other key an attribute (span or resource) compared by its text form, all on one
 *     span.
 *   GET /api/search/tags       ?scope=span|resource|intrinsic (default both attribute
 *                              scopes) -> {"tagNames":[...]}
 *   GET /api/v2/search/tags    ?scope=... -> {"scopes":[{"name":"span","tags":[...]},
 *                              {"name":"resource",...},{"name":"intrinsic",...}]}
 *   GET /api/search/tag/<tag>/values          -> {"tagValues":["a","b"]}
 *   GET /api/v2/search/tag/<scoped.tag>/values -> {"tagValues":[{"type":"string",
 *                              "value":"a"}]}; tag is span.x, resource.x, .x or an
 *                              intrinsic (name, status, kind, rootServiceName, ...);
 *                              with q (TraceQL) only values on the spans it matches
 *
 * Errors are Tempo's: 400 with a plain-text reason (a TraceQL parse error reads
 * "invalid TraceQL query: parse error at line 1, col 3: ..."), 500/503 for store
 * failures. Handlers are thread-safe. */
#ifndef TEMPO_SEARCH_H
#define TEMPO_SEARCH_H

#include "../http.h"
#include "../vigil.h"

#define TEMPO_SEARCH_MAX_SPSS 100 /* spans per spanset shown at most */

void tempo_search(struct vigil *v, struct http_request *req, struct http_response *resp);
void tempo_search_tags(struct vigil *v, struct http_request *req, struct http_response *resp);
void tempo_search_tags_v2(struct vigil *v, struct http_request *req,
                          struct http_response *resp);
/* Prefix routes: the tag is the path between the prefix and "/values". */
void tempo_tag_values(struct vigil *v, struct http_request *req, struct http_response *resp);
void tempo_tag_values_v2(struct vigil *v, struct http_request *req,
                         struct http_response *resp);

#define TEMPO_TAG_VALUES_PREFIX "/api/search/tag/"
#define TEMPO_TAG_VALUES_V2_PREFIX "/api/v2/search/tag/"

#endif
