/* history: the record of notification attempts (built-in receivers and Alertmanagers),
 * a bounded ring kept in memory and in the notifier's kv, shown by
 * GET /api/v1/notifications.
 *
 * One attempt, as stored and listed (JSON, fields in this order):
 *   {"time":"<RFC 3339>","receiver":"team","integration":"webhook[0]",
 *    "groupKey":"{}:{alertname=\"X\"}","fingerprints":["<16 hex>",...],
 *    "status":"success|retry|failed|dropped","attempt":1,"error":"..."}
 * ("error" is "" on success). kv keys: "h/" + 8-byte big-endian sequence number; the
 * ring keeps the newest cap entries, deleting older keys as it goes.
 * Thread-safe: one mutex. */
#ifndef RULES_HISTORY_H
#define RULES_HISTORY_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"

#include <stddef.h>
#include <stdint.h>

struct kv;
struct history;

struct history_attempt {
    const char *receiver;
    const char *integration;
    const char *group_key;      /* may be "" */
    const uint64_t *fingerprints;
    size_t nfingerprints;
    const char *status;         /* "success", "retry", "failed", "dropped" */
    int attempt;                /* 1-based */
    const char *error;          /* NULL or "" on success */
    int64_t time_ms;
};

/* Loads the newest cap stored entries from kv (NULL kv: memory only). NULL with err. */
struct history *history_new(struct kv *kv, size_t cap, struct vg_err *err);
void history_free(struct history *h); /* accepts NULL */

/* Records one attempt (best effort: a storage failure is logged, not returned). */
void history_add(struct history *h, const struct history_attempt *a);

/* Appends a JSON array of the entries, newest first, at most limit (0 = all). */
void history_json(struct history *h, size_t limit, struct vg_buf *out);

/* Entries held. */
size_t history_len(struct history *h);

#endif
