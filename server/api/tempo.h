/* tempo: the Tempo query API (the part Grafana's Tempo data source needs to show a trace).
 *
 *   GET /api/traces/<traceID>     the trace as Tempo's tempopb.Trace:
 *                                 JSON {"batches":[ResourceSpans...]} (OTLP/JSON, ids in
 *                                 lowercase hex, 64-bit integers as strings, enums as
 *                                 numbers); with Accept: application/protobuf the
 *                                 protobuf Trace (field 1 repeated ResourceSpans, the same
 *                                 bytes as an OTLP TracesData)
 *   GET /api/v2/traces/<traceID>  Tempo's TraceByIDResponse: JSON
 *                                 {"trace":{"resourceSpans":[...]}}; protobuf field 1 =
 *                                 the Trace message above
 *   GET /api/echo                 200 "echo" (Grafana's health check of the data source)
 *   GET /api/status/buildinfo     {"version":TEMPO_API_VERSION,"revision":"vigil-<version>",
 *                                 "branch","buildUser","buildDate","goVersion"}
 *   GET /api/search, /api/search/tags, /api/v2/search/tags, /api/search/tag/<t>/values,
 *       /api/v2/search/tag/<t>/values   see tempo_search.h
 *
 * traceID is 1 to 32 hex digits (either case; shorter ids are zero-padded on the left, as
 * Tempo does for 64-bit ids); anything else is 400. An unknown trace is 404 with the
 * plain-text message "trace <id> not found". Spans are grouped into resources and scopes
 * by otlp_traces_from_spans (server/ingest/otlp_traces.h). The start and end parameters
 * are accepted and ignored: the store reads a whole trace in one range read.
 * Handlers are thread-safe. */
#ifndef TEMPO_H
#define TEMPO_H

#include "../../storage/base/vg_arena.h"
#include "../http.h"
#include "../vigil.h"

#include <stdbool.h>

/* The Tempo release whose HTTP API this follows (reported by /api/status/buildinfo). */
#define TEMPO_API_VERSION "2.7.0"

/* Answers a trace-by-id request for the hex id text (v2: the /api/v2 shape; protobuf:
 * the protobuf encoding) into resp (status, content type, body). Scratch memory from a. */
void tempo_trace_by_id(struct vigil *v, const char *id, bool v2, bool protobuf,
                       struct vg_arena *a, struct http_response *resp);

extern const struct vigil_module mod_tempo;

#endif
