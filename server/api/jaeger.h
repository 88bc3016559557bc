/* jaeger: Jaeger's query API (the HTTP JSON API of jaeger-query that Jaeger UI and
 * Grafana's Jaeger data source use) over the span store, under the prefix /jaeger so its
 * /api/traces/<id> does not collide with Tempo's. Grafana's data source URL is
 * http://host:4318/jaeger.
 *
 * Every answer is Jaeger's structured response
 *   {"data":<data>,"total":N,"limit":0,"offset":0,"errors":null}
 * and every error is the same shape with data null and
 *   "errors":[{"code":<HTTP status>,"msg":"<reason>"}]   (status 400, 404, 503, 500)
 *
 *   GET /jaeger/api/services                      data: ["svc",...] sorted; total = count
 *   GET /jaeger/api/services/<svc>/operations     data: ["op",...] sorted, unique names
 *   GET /jaeger/api/operations?service=&spanKind= data: [{"name","spanKind"}]; service is
 *                       required (400); spanKind server|client|producer|consumer|internal
 *                       filters (any other value finds nothing, as in Jaeger; absent or
 *                       empty = every kind); an unspecified kind is listed as ""
 *   GET /jaeger/api/traces?service=&operation=&tags=&tag=&minDuration=&maxDuration=
 *                       &start=&end=&limit=&lookback=&traceID=
 *       data: [trace...] newest first, total = traces returned. service is required
 *       unless traceID (repeatable) names traces directly; unknown ids then become
 *       errors entries {"msg":"trace not found","traceID":"<id>"} beside the found ones.
 *       start and end are unix microseconds (end inclusive); without end, now; without
 *       start, end minus lookback (a duration: "1h", "2d"; "custom" or absent = 1h).
 *       minDuration/maxDuration are Go durations ("1.2s", "100ms") bounding the duration
 *       of a matching span. limit: traces, default 100, at most JAEGER_MAX_LIMIT.
 *       tags: a JSON map {"http.status_code":"500"} (what Grafana sends; number and bool
 *       values are taken as their text) or key:value / key=value pairs separated by
 *       spaces or commas, values optionally double-quoted; tag (repeatable): one
 *       key:value, the value being everything after the first ':' (Jaeger's form).
 *       Service, operation, duration and every tag must hold on one span, as in Jaeger.
 *       Tags the translator below synthesises are matched against what they come from:
 *       error=true -> error status, otel.status_code=OK|ERROR -> status, span.kind=<kind>
 *       -> kind; any other key is a span or resource attribute compared by its text
 *       form. Not filterable (they match nothing): otel.status_description,
 *       otel.scope.name/version, w3c.tracestate, log (event) fields.
 *   GET /jaeger/api/traces/<traceID>              data: [trace]; 1 to 32 hex digits
 *       (400 otherwise); unknown: 404 with msg "trace not found"
 *   GET /jaeger/api/dependencies?endTs=&lookback=&service=
 *       data: [{"parent","child","callCount"}] sorted by parent then child: one link per
 *       pair of different services where a span of the child service has its parent span
 *       (same trace) in the parent service. endTs unix ms (default now), lookback ms or a
 *       duration (default 24h); service keeps links touching it. Bounded work: at most
 *       JAEGER_DEP_MAX_TRACES traces (the newest in the window) and JAEGER_DEP_MAX_SPANS
 *       spans are read, so over a busy window counts are those of a recent sample.
 *   anything else under /jaeger/                  404 in the error shape
 *
 * The trace model is Jaeger's JSON (model/json) as Jaeger's OTLP translator fills it:
 *   trace {"traceID","spans":[span...],"processes":{"p1":process,...},"warnings":null}
 *   span  {"traceID","spanID","flags","operationName","references":[{"refType",
 *          "traceID","spanID"}],"startTime"(µs),"duration"(µs),"tags":[kv...],
 *          "logs":[{"timestamp"(µs),"fields":[kv...]}],"processID":"pN","warnings":null}
 *   kv    {"key","type":"string"|"bool"|"int64"|"float64"|"binary","value"}: int64 and
 *          float64 as JSON numbers (a non-finite float as the string "NaN", "+Inf",
 *          "-Inf"), binary as base64, OTLP arrays and maps as type string holding their
 *          JSON text (OpenTelemetry's AsString)
 *   process {"serviceName","tags":[resource attributes except service.name]}: one per
 *          distinct resource (service name and attributes), numbered p1, p2, ... in order
 *          of first appearance; a span without service is "OTLPResourceNoServiceName".
 * Trace ids print as 16 hex digits when the high 64 bits are zero, else 32; span ids as
 * 16. flags are the W3C trace flags (low 8 bits of the OTLP flags; 1 = sampled). The
 * parent is the first reference (CHILD_OF); links follow as FOLLOWS_FROM. Span tags in
 * order: otel.scope.name, otel.scope.version, the attributes, span.kind, otel.status_code
 * ("OK"/"ERROR"), error (bool true, error status only), otel.status_description,
 * w3c.tracestate. A span event is a log whose fields are "event" (the name, when set)
 * then its attributes.
 *
 * Handlers are thread-safe (they share nothing but the span store). */
#ifndef JAEGER_H
#define JAEGER_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/spanstore/span.h"
#include "../vigil.h"

#include <stddef.h>
#include <stdint.h>

#define JAEGER_DEFAULT_LIMIT 100
#define JAEGER_MAX_LIMIT 1500      /* the most Jaeger UI offers */
#define JAEGER_MAX_TAGS 32         /* tag filters per search */
#define JAEGER_DEP_MAX_TRACES 1000 /* traces one dependencies request reads */
#define JAEGER_DEP_MAX_SPANS 200000
#define JAEGER_DEP_MAX_LINKS 10000 /* distinct (parent, child) pairs kept */

struct jaeger_tag {
    struct vg_str key, value; /* bytes in the arena given to jaeger_parse_tags */
};

enum jaeger_tags_form {
    JAEGER_TAGS_ANY,  /* the tags parameter: a JSON map or key:value pairs */
    JAEGER_TAG_PAIR,  /* the tag parameter: one key:value, value = all after the first ':' */
};

/* Parses s[0..n) in the given form and adds its pairs to out[*nout..max), a key given
 * again replacing the earlier value (as Jaeger's map does). Keys and values are copied
 * into a. Returns 0, VG_EINVAL naming what is malformed (bad JSON, a non-scalar JSON
 * value, a pair without ':' or '=', an empty key, an unterminated quote), VG_ETOOLARGE
 * beyond max pairs, or VG_ENOMEM. Thread-safe. */
int jaeger_parse_tags(const char *s, size_t n, enum jaeger_tags_form form, struct vg_arena *a,
                      struct jaeger_tag *out, size_t max, size_t *nout, struct vg_err *err);

/* A Go duration ("1h30m", "1.2s", "100ms", "-2ms") or a decimal number of days or weeks
 * ("2d", "1.5w", Jaeger UI's lookback) in s[0..n): 0 and *ns, or -1 when malformed or out
 * of int64 nanoseconds. Thread-safe. */
int jaeger_parse_duration(const char *s, size_t n, int64_t *ns);

/* Appends the Jaeger JSON trace of spans[0..n) (n >= 1, all of one trace, in the order
 * given) to out. Scratch memory (process table, unpacked attribute blobs) from a.
 * Returns 0 or VG_ENOMEM (out may then be marked failed). Thread-safe. */
int jaeger_write_trace(const struct span *spans, size_t n, struct vg_arena *a,
                       struct vg_buf *out, struct vg_err *err);

extern const struct vigil_module mod_jaeger_api;

#endif
