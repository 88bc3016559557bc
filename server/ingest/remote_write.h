/* remote_write: the Prometheus remote write 1.0 receiver, POST /api/v1/write.
 *
 * rw_decode is the pure codec (bytes -> validated struct tsdb_batch, no HTTP, no store),
 * so the fuzz target and the unit tests call it directly; mod_remote_write glues the HTTP
 * front end, the codec and the TSDB. A request is all or nothing at the validation stage:
 * one invalid series, sample, exemplar or metadata row rejects the whole request with a
 * reason naming it, before anything is stored. */
#ifndef REMOTE_WRITE_H
#define REMOTE_WRITE_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/tsdb.h"
#include "../config.h"
#include "../vigil.h"

#include <stddef.h>
#include <stdint.h>

/* Timestamps outside [RW_MIN_TIME_MS, RW_MAX_TIME_MS] (years 0001 to 9999, what RFC 3339
 * can print) are rejected: they come from a sender converting NaN or garbage to int64
 * (Go turns NaN into INT64_MIN) and would poison every range query. */
#define RW_MIN_TIME_MS (-62135596800000LL)
#define RW_MAX_TIME_MS (253402300799999LL)

/* Decoding a message may take at most this many arena bytes per decompressed byte (plus
 * RW_ARENA_SLACK): the decoder keeps strings in place (plus one canonical copy of the
 * labels), so real payloads need about 3x and
 * a hostile one of empty submessages at most 24x (48-byte series per 2 wire bytes). */
#define RW_ARENA_FACTOR 32
#define RW_ARENA_SLACK (1u << 20)

struct rw_request {
    struct tsdb_batch batch; /* series, samples, exemplars, metadata; all in the arena */
    uint64_t nsamples;       /* float samples in the request (filled as soon as known,
                                also when validation then fails, for counting) */
    uint64_t nexemplars;
    uint64_t nhistograms;    /* native histogram samples (TimeSeries field 4): not stored,
                                Vigil keeps float samples only */
    struct vg_str *enc;      /* per series of batch: the canonical encoding of its labels
                                (labels_encode's bytes) when the decoder made it, else
                                p NULL; for tsdb_append_enc; in the arena */
};

/* Decodes a snappy-compressed prometheus.WriteRequest of len bytes and validates all of
 * it against lim: labels via ingest_check_labels (sorted, unique, names valid, __name__
 * present, counts and lengths within limits), series count <= max_series_per_request,
 * sample and exemplar timestamps within the range above, exemplar labels, metadata
 * names. Everything *out points to lives in a (caller owns a; out is valid until a is
 * freed or reset). While decoding, a is capped with vg_arena_set_limit (its current use
 * plus RW_ARENA_FACTOR times the decompressed size plus RW_ARENA_SLACK); the cap is lifted
 * (0) before returning.
 * Returns 0, or VG_EINVAL (bad snappy, bad protobuf, invalid content; err names the
 * series index and label), VG_ETOOLARGE (decompressed size over max_decoded_bytes, too
 * many series, message too big for the arena budget), VG_ENOMEM. Thread-safe. */
int rw_decode(const void *body, size_t len, const struct config_limits *lim,
              struct vg_arena *a, struct rw_request *out, struct vg_err *err);

/* Routes: POST /api/v1/write. Answers 204 when everything was stored; 400 (plain text)
 * naming the first invalid thing; 400 with counts and the first reason when the TSDB
 * refused some samples (too old, conflicting duplicate; the rest are stored) or native
 * histograms were dropped; 413 too large; 415 for an encoding other than snappy or a
 * content type other than application/x-protobuf (remote write 2.0 included); 5xx only
 * for storage failures, which senders retry. Counted as receiver "remote_write". */
extern const struct vigil_module mod_remote_write;

#endif
