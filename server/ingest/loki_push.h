/* loki_push: Loki's push API, POST /loki/api/v1/push, into the log store, as promtail,
 * Grafana Alloy (loki.write), the Docker driver and `curl` send it.
 *
 * Bodies (Loki's pkg/loghttp/push):
 *   Content-Type application/json (gzip undone by the front end):
 *     {"streams": [{"stream": {"<name>": "<value>", ...},
 *                   "values": [["<ns since the epoch, decimal string>", "<line>"],
 *                              ["<ns>", "<line>", {"<metadata name>": "<value>", ...}]]}]}
 *     A bare JSON integer is accepted for the time too; unknown keys are skipped.
 *   Content-Type application/x-protobuf, or none (Loki's default): a snappy block
 *     (Content-Encoding absent, "identity" or "snappy") holding a logproto.PushRequest
 *     (proto/loki_push.proto), whose stream labels are a string in LogQL selector
 *     syntax, `{name="value", other='v'}`: names [a-zA-Z_][a-zA-Z0-9_]*, only `=`,
 *     values quoted as in PromQL/LogQL (lexer_scan_string).
 *
 * Validation (Loki's rules; the store applies its limits on top: labels per stream,
 * label name and value bytes, line bytes, metadata, out-of-order window, retention):
 *   - a body that does not decode, or a stream labels string that does not parse,
 *     refuses the whole request (400, nothing stored);
 *   - a stream whose labels are invalid (no labels once empty values are dropped, as
 *     Prometheus treats them as absent; an invalid name; a duplicate name; a value that
 *     is not UTF-8) is refused with all its entries ("invalid_labels");
 *   - an entry more than INGEST_LOG_MAX_FUTURE_NS after the receive time
 *     ("too_far_in_future") or before 1970 ("too_old") is refused.
 * As Loki's distributor does, what is valid is stored and the answer is then 400 naming
 * how many entries were refused and the first reason; 204 when everything was stored;
 * 413 past the decoded-size or memory cap; 415 for other media types; 503 with
 * Retry-After when the store fails (nothing stored). Error bodies are plain text.
 *
 * Counted as receiver "loki_push" (ingest.h). The handler is thread-safe. */
#ifndef LOKI_PUSH_H
#define LOKI_PUSH_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/logstore/logstore.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOKI_PUSH_ARENA_FACTOR 4 /* arena cap = factor x limits.max_decoded_bytes */
/* Deepest nesting of JSON values skipped as unknown. */
#define LOKI_PUSH_MAX_DEPTH 64

enum loki_push_reject {
    LOKI_PUSH_REJECT_LABELS,  /* "invalid_labels" (the store's name for its own refusals) */
    LOKI_PUSH_REJECT_FUTURE,  /* INGEST_REJECT_FUTURE */
    LOKI_PUSH_REJECT_TOO_OLD, /* INGEST_REJECT_TOO_OLD */
    LOKI_PUSH_REJECT_COUNT
};
const char *loki_push_reject_name(enum loki_push_reject r);

struct loki_push_opts {
    int64_t now_ns;        /* receive time */
    int64_t max_future_ns; /* entries later than now_ns + this are refused */
};

/* A decoded push. Everything lives in the arena or points into the input, which must
 * outlive the batch. Streams hold only accepted entries, with sorted unique labels. */
struct loki_push_batch {
    struct logstore_stream_in *streams;
    size_t nstreams;
    uint64_t entries;                            /* in the request */
    uint64_t rejected;                           /* refused here */
    uint64_t rejected_by[LOKI_PUSH_REJECT_COUNT];
    char reason[256];                            /* the first refusal, "" if none */
};

/* Decodes a push body (JSON when json, else an uncompressed PushRequest) and validates
 * it as described above. 0 with out filled, or VG_EINVAL naming the byte offset or
 * stream and what is wrong, VG_ETOOLARGE (a's cap), VG_ENOMEM; out is then empty.
 * Pure; thread-safe. */
int loki_push_decode(const void *buf, size_t len, bool json, const struct loki_push_opts *o,
                     struct vg_arena *a, struct loki_push_batch *out, struct vg_err *err);

extern const struct vigil_module mod_loki_push;

#endif
