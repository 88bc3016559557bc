/* zipkin: the Zipkin v2 JSON receiver, POST /api/v2/spans (a JSON array of spans, as
 * Zipkin's own server takes it; gzip is undone by the HTTP front end).
 *
 * Each Zipkin span becomes one span of the store's model (span.h) by the rules the
 * OpenTelemetry Collector's zipkin receiver applies (pkg/translator/zipkin/zipkinv2), listed
 * at the top of zipkin.c; the decoded spans then go through the same checks and limits as
 * OTLP spans (otlp_traces_check, traces.* keys) and the same reasons.
 *
 * Answers, as Zipkin's server does: 202 Accepted with an empty body when every span was
 * stored. A body that is not a JSON array of objects is 400 and stores nothing. Spans that
 * fail validation are refused one by one while the rest is stored: if none is left the
 * answer is 400 naming the first reason; otherwise 202 with a plain-text body saying how
 * many were refused and why (Zipkin clients ignore the body of a 202). 415 for protobuf
 * or thrift bodies (only JSON is taken), 503 with Retry-After when the store fails.
 * Counted as receiver "zipkin" in /metrics (ingest.h). Thread-safe. */
#ifndef ZIPKIN_H
#define ZIPKIN_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../config.h"
#include "../vigil.h"
#include "otlp_traces.h"

#include <stddef.h>

/* Decodes a Zipkin v2 JSON body into spans under cfg's traces.* limits. Every allocation,
 * the spans' strings included, comes from a. Returns 0 with *res filled (refused spans are
 * counted there, not an error), VG_EINVAL when body is not a JSON array (err names the
 * line and column or what was found), VG_ENOMEM. Pure: no HTTP, no storage. */
int zipkin_decode(const char *body, size_t len, const struct config *cfg, struct vg_arena *a,
                  struct otlp_traces_result *res, struct vg_err *err);

extern const struct vigil_module mod_zipkin;

#endif
