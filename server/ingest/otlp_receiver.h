/* otlp_receiver: what the OTLP receivers (metrics, traces, logs) share around their
 * codecs: the accepted media types of OTLP/HTTP, decoding a request body (protobuf-c into
 * a capped request arena after pb_check_depth, or OTLP/JSON), encoding a response in the
 * request's encoding, and the google.rpc.Status error body the OTLP/HTTP specification
 * asks for ("Failures" section):
 *   protobuf: field 1 code int32 (varint, omitted when 0), field 2 message string;
 *   JSON:     {"code":N,"message":"..."}.
 * No knowledge of any one signal: the receivers hand in their export function. Thread-safe
 * (no shared state). */
#ifndef OTLP_RECEIVER_H
#define OTLP_RECEIVER_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../config.h"
#include "../http.h"
#include "../vigil.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* Checks an OTLP/HTTP request's Content-Type (application/x-protobuf or application/json,
 * parameters ignored) and Content-Encoding (none or identity once the front end undid
 * gzip). Returns true and sets *json; otherwise fills resp with a plain-text 415 naming
 * what (e.g. "OTLP/HTTP traces") and returns false. */
bool otlp_receiver_accept(const struct http_request *req, const char *what, bool *json,
                          struct http_response *resp);

/* Caps arena a at factor x limits.max_decoded_bytes beyond what it holds already (a
 * tighter cap set by the front end stays in force). Returns the cap that was in place, to
 * hand back to vg_arena_set_limit when the request's decoding is done. */
size_t otlp_receiver_cap_arena(const struct config *cfg, struct vg_arena *a, unsigned factor);

/* Tells a VG_ENOMEM under an arena capped by otlp_receiver_cap_arena (capped true) apart
 * from a real shortage: when the heap still gives memory the cap was hit, and rc becomes
 * VG_ETOOLARGE with a message naming factor. Other codes pass through. */
int otlp_receiver_cap_or_nomem(int rc, bool capped, unsigned factor, struct vg_err *err);

/* Decodes body as message d (OTLP/JSON when json) into a. 0 with *out set, or
 * VG_EINVAL (malformed, too deep; the message names d), VG_ETOOLARGE (the arena's cap was
 * reached; the message names factor), VG_ENOMEM. */
int otlp_receiver_decode(const ProtobufCMessageDescriptor *d, const void *body, size_t len,
                         bool json, struct vg_arena *a, unsigned factor,
                         ProtobufCMessage **out, struct vg_err *err);

/* Appends m to out as protobuf or OTLP/JSON. 0 or VG_ENOMEM. */
int otlp_receiver_encode(const ProtobufCMessage *m, bool json, struct vg_buf *out,
                         struct vg_err *err);

/* Fills resp with the status for err->code and a google.rpc.Status body in the request's
 * encoding (Retry-After: 5 for overload, memory and storage failures). */
void otlp_receiver_error(struct http_response *resp, bool json, const struct vg_err *err);

/* A receiver's export function: decodes body (OTLP/JSON when json), stores it, appends
 * the encoded response to out. 0 or a vg_code with err filled. */
typedef int (*otlp_receiver_export_fn)(struct vigil *v, const char *receiver, const void *body,
                                       size_t len, bool json, struct vg_arena *a,
                                       struct vg_buf *out, struct vg_err *err);

/* The whole POST handler of an OTLP/HTTP receiver: media checks (otlp_receiver_accept,
 * what names the signal), export, then 200 with the response in the request's encoding or
 * otlp_receiver_error; counted in vigil_ingest_requests_total{receiver}. */
void otlp_receiver_http(struct vigil *v, struct http_request *req, struct http_response *resp,
                        const char *receiver, const char *what, otlp_receiver_export_fn fn);

/* The whole unary gRPC Export method: a request arena of its own, export (protobuf), the
 * count by gRPC status code. Same return as fn. */
int otlp_receiver_grpc(struct vigil *v, const char *receiver, otlp_receiver_export_fn fn,
                       const unsigned char *req, size_t len, struct vg_buf *resp,
                       struct vg_err *err);

#endif
