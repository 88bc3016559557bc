/* errors: error tracking from traces and logs, grouped by fingerprint and kept in the
 * error store (storage/errorstore).
 *
 * Sources:
 *   - span events named "exception" (OpenTelemetry's exception semantic conventions):
 *     type exception.type, message exception.message, stack exception.stacktrace; the
 *     service is the span's, the trace id the span's, the time the event's;
 *   - log entries at ERROR or above that carry a trace id in their structured metadata
 *     (trace_id or traceID): level from metadata or stream label detected_level, level
 *     or severity_text (error, err, critical, crit, fatal, panic, emerg, emergency,
 *     alert; any case) or severity_number >= 17 (OTLP's ERROR range and above); type
 *     from metadata exception_type, else "log"; message from exception_message, else the
 *     line; stack from exception_stacktrace; service from the stream label service_name,
 *     else service, else job.
 *
 * Fingerprint: 64-bit FNV-1a over type, NUL, the normalised message, NUL, the normalised
 * top frames, written as 16 lowercase hex digits. Message normalisation replaces
 *   quoted strings ('...', "...", `...`)     -> <str>
 *   e-mail addresses                         -> <email>
 *   UUIDs (8-4-4-4-12 hex digits)            -> <uuid>
 *   0x-prefixed hex and hex runs of 8 or more characters with a digit -> <hex>
 *   every other run of digits                -> <num>
 * so "user 42 not found" and "user 7 not found" fall into one group. Frames: the lines
 * of the stack trace that look like frames (they start with "at " or "File \"", or hold
 * a ':' followed by a digit), trimmed, with line and column numbers (":12", ":12:5",
 * "line 12") and "+0x..." offsets removed; the first ERRORS_TOP_FRAMES of them, or the
 * last ones for Python tracebacks (which list the innermost call last), joined by '\n'.
 *
 * Occurrences are aggregated in memory by (fingerprint, service, hour) and written to
 * the store by errors_flush (derive.c's flush thread; the API flushes before reading).
 * Observing allocates only for a fingerprint not yet pending since the last flush; at
 * most ERRORS_MAX_PENDING are pending, occurrences beyond are dropped and counted.
 *
 * Thread safety: all functions may be called from any thread (one mutex guards the
 * pending set; the store serialises its writes). The normalisation functions are pure. */
#ifndef ERRORS_H
#define ERRORS_H

#include "../../storage/errorstore/errorstore.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/spanstore/span.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ERRORS_TOP_FRAMES 3
#define ERRORS_MAX_PENDING 4096
#define ERRORS_MAX_MESSAGE 1024 /* normalised message bytes hashed at most */
#define ERRORS_MAX_FRAMES 1024  /* normalised frame bytes at most */

/* Writes the normalised form of msg into out (cap >= 1 bytes, NUL-terminated, cut at
 * cap - 1); returns its length. */
size_t errors_normalise_message(struct vg_str msg, char *out, size_t cap);
/* Writes the normalised top frames of stack into out as above; returns the length. */
size_t errors_top_frames(struct vg_str stack, char *out, size_t cap);
/* The fingerprint of an error; message and frames already normalised. */
uint64_t errors_fingerprint(struct vg_str type, struct vg_str message, struct vg_str frames);

struct errors_opts {
    const char *dir;   /* the error store's directory */
    size_t max_groups;
    bool no_sync;      /* tests; storage.fsync */
    int64_t sync_interval_ms; /* errorstore_opts.sync_interval_ms */
};

struct errors_stats {
    uint64_t occurrences;     /* seen since start */
    uint64_t dropped_pending; /* dropped: too many pending groups between flushes */
    uint64_t dropped_full;    /* dropped by the store: max groups reached */
    uint64_t flush_failures;  /* flushes that failed (their occurrences are lost) */
};

struct errors;

/* Opens the store. NULL with err (the store's error). */
struct errors *errors_new(const struct errors_opts *o, struct vg_err *err);
/* Flushes what is pending, closes the store. Accepts NULL. */
void errors_free(struct errors *e);

/* Takes the exceptions of n spans. */
void errors_observe_spans(struct errors *e, const struct span *spans, size_t n);
/* Takes the error log entries of the streams. */
void errors_observe_logs(struct errors *e, const struct logstore_stream_in *streams,
                         size_t n);

/* Writes everything pending to the store. 0, or the store's error (the pending
 * occurrences are then dropped and counted as a flush failure). */
int errors_flush(struct errors *e, struct vg_err *err);

/* The store (owned by e), for the API. */
struct errorstore *errors_store(struct errors *e);
void errors_stats(struct errors *e, struct errors_stats *st);

#endif
