/* outbox: one bounded, persistent delivery queue with its own worker thread, used for
 * each Alertmanager and each receiver integration, so a hanging or failing peer only
 * ever delays its own queue.
 *
 * An item is an opaque payload (a rendered webhook body, an e-mail message, one alert's
 * JSON for an Alertmanager) with the group key and fingerprints it carries. The worker
 * takes up to `batch` items, calls send, and on failure retries the same batch after
 * outbox_backoff_ms (exponential from initial_backoff, capped at max_backoff, "equal
 * jitter": half fixed, half random) until max_attempts, then gives up ("failed").
 * A full queue drops its oldest waiting item ("dropped"). Every attempt is recorded in
 * the history and counted in the metrics (label values: receiver, integration).
 *
 * Persistence (kv may be NULL): an item is written on push under "q/" + 8-byte
 * big-endian sequence number and deleted when delivered, given up or dropped, so a
 * restart (even kill -9) re-delivers what was pending. Value (JSON):
 *   {"target":"<outbox id>","groupKey":"...","fingerprints":["<16 hex>",...],
 *    "created":<ms>,"payload":"<the payload>"}
 * outbox_restore_json parses such a value back for outbox_push_restored.
 *
 * Thread-safe: push from any thread; one mutex per outbox. */
#ifndef RULES_OUTBOX_H
#define RULES_OUTBOX_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv;
struct history;
struct metric_family;

struct outbox_item {
    uint64_t seq;
    char *payload;
    size_t len;
    char *group_key;
    uint64_t *fps;
    size_t nfps;
    int64_t created_ms;
};

/* Delivers items[0..n); 0 or a negative code with err (the reason kept in history). */
typedef int (*outbox_send_fn)(void *ctx, struct outbox_item *const *items, size_t n,
                              const atomic_bool *stop, struct vg_err *err);

struct outbox_opts {
    const char *id;           /* persistent target id, e.g. "webhook/team/0" */
    const char *receiver;     /* for history and metric labels */
    const char *integration;
    size_t capacity;
    size_t batch;             /* items per send (1 for receivers, 64 for Alertmanager) */
    int64_t initial_backoff_ms, max_backoff_ms;
    int max_attempts;
    outbox_send_fn send;
    void *ctx;
    struct kv *kv;                     /* may be NULL */
    _Atomic uint64_t *seq;             /* shared sequence for kv keys (required) */
    struct history *hist;              /* may be NULL */
    /* counters (may be NULL), labelled (receiver, integration): */
    struct metric_family *sent, *failed, *dropped, *queue_len;
    int64_t (*clock_ms)(void);         /* NULL = wall clock */
};

struct outbox;

/* Copies opts' strings and starts the worker. NULL with err. */
struct outbox *outbox_new(const struct outbox_opts *o, struct vg_err *err);
/* Stops the worker (aborting a transfer in flight) and frees; what was not delivered
 * stays in kv. Accepts NULL. */
void outbox_free(struct outbox *ob);
const char *outbox_id(const struct outbox *ob);

/* Queues a copy of payload (and persists it). Never blocks on the network. Returns
 * false when out of memory (counted as dropped). */
bool outbox_push(struct outbox *ob, const char *payload, size_t len, const char *group_key,
                 const uint64_t *fps, size_t nfps, int64_t now_ms);

/* A stored item read back at start: fills *target (vg_malloc'd) and the item (owned by
 * the caller until outbox_push_restored takes it). 0 or VG_EINVAL / VG_ENOMEM. */
int outbox_restore_json(const char *val, size_t len, uint64_t seq, char **target,
                        struct outbox_item *it, struct vg_err *err);
/* Queues a restored item, keeping its kv key; takes ownership of it. */
void outbox_push_restored(struct outbox *ob, struct outbox_item *it);
/* Frees a restored item nobody took, deleting its kv key (kv may be NULL). */
void outbox_item_discard(struct kv *kv, struct outbox_item *it);

/* Items waiting (not counting a batch being sent). */
size_t outbox_len(struct outbox *ob);
/* Appends {"id":..,"receiver":..,"integration":..,"queued":N,"inflight":N,
 * "attempt":N,"nextAttempt":"<RFC 3339>"|null} */
void outbox_status_json(struct outbox *ob, struct vg_buf *out);

/* The delay before attempt number `attempt` + 1 (attempt >= 1 failed attempts so far),
 * given a random value: d = min(max, initial * 2^(attempt-1)); d/2 + rnd % (d/2 + 1). */
int64_t outbox_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms, uint32_t rnd);

#endif
