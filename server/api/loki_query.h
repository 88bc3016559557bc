/* loki_query: /loki/api/v1/query and /loki/api/v1/query_range of mod_loki_api (loki.h):
 * parameters as Loki's pkg/loghttp reads them, evaluation by the LogQL engine
 * (logql/engine.h), answers in Loki 3's JSON:
 *   {"status":"success","data":{"resultType":"streams"|"vector"|"matrix"|"scalar",
 *    "result":[...],"stats":{...}[,"encodingFlags":["categorize-labels"]]}}
 * streams: [{"stream":{labels},"values":[["<ns>","<line>"],...]}]. By default the labels
 * of an entry's structured metadata and of parsers are part of its stream labels (what
 * Loki does for clients that did not ask otherwise). A client that sends
 * X-Loki-Response-Encoding-Flags: categorize-labels (Grafana does) gets the stream
 * labels alone, streams with equal labels merged, and a third element
 * {"structuredMetadata":{..},"parsed":{..}} on entries that have either.
 * vector: [{"metric":{..},"value":[<seconds>,"<value>"]}]; matrix: [{"metric":{..},
 * "values":[[<seconds>,"<value>"],...]}]; scalar: [<seconds>,"<value>"] (numbers as
 * Prometheus writes them, query.h).
 * stats: Loki's summary / querier / ingester / cache / index object; Vigil is a single
 * node, so the store's figures go under querier and ingester and cache are zero.
 * Thread-safe. */
#ifndef LOKI_QUERY_H
#define LOKI_QUERY_H

#include "../http.h"
#include "../logql/engine.h"
#include "../vigil.h"

#define LOKI_ENCODING_FLAGS_HEADER "X-Loki-Response-Encoding-Flags"

void loki_query_instant(struct vigil *v, struct http_request *req, struct http_response *resp);
void loki_query_range(struct vigil *v, struct http_request *req, struct http_response *resp);

/* The stats object of a result (exported for the tests). */
void loki_query_json_stats(struct vg_buf *b, const struct logql_stats *st, int64_t exec_ns);
/* A whole success body for r; categorize: the encoding flag above was sent; backward:
 * the query's direction (merged streams keep it). */
void loki_query_json_result(struct vg_buf *b, const struct logql_result *r, bool categorize,
                            bool backward, int64_t exec_ns);

#endif
