/* errorstore: error groups kept durably in their own LevelDB database (data_dir/errors).
 *
 * A group is everything that shares a fingerprint (computed by the caller: the store
 * knows nothing of spans or logs and takes plain occurrences). Per group the store keeps
 * the type, a sample message and the top stack frames as first recorded, the total
 * count, first and last time seen, the services that raised it (at most
 * ERRORSTORE_MAX_SERVICES, first come) and the trace ids of the latest occurrences that
 * had one (at most ERRORSTORE_MAX_SAMPLES, newest first), plus a count per hour.
 *
 * Key layout (all integers big-endian, so LevelDB's order is numeric order):
 *   'G' fp(8)            -> group record
 *   'H' fp(8) hour(8)    -> uvarint count of occurrences in that hour
 *                           (hour = floor(t_ms / 3600000); times before 1970 count as 0)
 * Group record, version 1 ("uvarint" is LEB128, "svarint" a zigzag uvarint, "str" a
 * uvarint length then bytes):
 *   u8 version (1), uvarint count, svarint first_seen_ms, svarint last_seen_ms,
 *   str type, str message, str frames,
 *   uvarint nservices, str service ...,
 *   uvarint nsamples, (str trace_id, svarint t_ms) ...
 * A record that does not decode is reported as VG_EIO naming the fingerprint.
 *
 * Bounds: at most max_groups groups; occurrences of new groups beyond it are counted in
 * the result and not stored. Strings are cut to ERRORSTORE_MAX_TEXT bytes.
 *
 * Retention: errorstore_expire deletes groups last seen before a cutoff with all their
 * 'H' keys, and the 'H' keys of the other groups for hours before the cutoff's hour
 * (the hour holding the cutoff is kept whole). Deleted groups free room under max_groups;
 * a group seen again later starts afresh.
 *
 * Thread safety: every function may be called from any thread. Recording and expiry are
 * serialised by a mutex (they read and rewrite records); reads see a consistent LevelDB
 * view. */
#ifndef ERRORSTORE_H
#define ERRORSTORE_H

#include "../base/vg_arena.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ERRORSTORE_MAX_SERVICES 16
#define ERRORSTORE_MAX_SAMPLES 5
#define ERRORSTORE_MAX_TEXT 4096
#define ERRORSTORE_HOUR_MS 3600000LL

struct errorstore_opts {
    const char *dir;   /* directory of the LevelDB database (created if missing) */
    size_t max_groups; /* >= 1 */
    bool no_sync;      /* do not fsync each record batch (tests; storage.fsync) */
    int64_t sync_interval_ms; /* > 0 with no_sync: fsync the log this often in the
                               * background (kv.h's kv-sync thread); 0 = never */
};

struct errorstore;

/* Opens (creating) the store and counts its groups. NULL with err: VG_EIO naming the path
 * and LevelDB's reason, VG_EINVAL for bad options, VG_ENOMEM. */
struct errorstore *errorstore_open(const struct errorstore_opts *o, struct vg_err *err);
void errorstore_close(struct errorstore *es); /* accepts NULL */

/* One or more occurrences of an error, as the caller aggregated them. Strings are
 * borrowed for the call. */
struct errorstore_occurrence {
    uint64_t fingerprint;
    struct vg_str type, message, frames; /* kept from the first occurrence of a group */
    struct vg_str service;               /* may be empty */
    struct vg_str trace_id;              /* lowercase hex, may be empty */
    int64_t t_ms;                        /* when it happened */
    uint64_t count;                      /* >= 1 occurrences at t_ms */
};

struct errorstore_record_result {
    uint64_t recorded;       /* occurrences stored */
    uint64_t dropped_full;   /* occurrences of new groups refused: max_groups reached */
    uint64_t groups_created;
};

/* Records n occurrences in one atomic LevelDB write. 0 (res filled), VG_EIO (nothing
 * stored) or VG_ENOMEM. */
int errorstore_record(struct errorstore *es, const struct errorstore_occurrence *occ,
                      size_t n, struct errorstore_record_result *res, struct vg_err *err);

struct errorstore_sample {
    const char *trace_id;
    int64_t t_ms;
};

struct errorstore_group {
    uint64_t fingerprint;
    const char *type, *message, *frames; /* NUL-terminated */
    uint64_t count;
    int64_t first_seen_ms, last_seen_ms;
    const char **services;
    size_t nservices;
    struct errorstore_sample *samples; /* newest first */
    size_t nsamples;
};

struct errorstore_groups {
    struct errorstore_group *v;
    size_t n;
    struct vg_arena *arena; /* owns v and every string */
};

/* Every group, in fingerprint order. 0, VG_EIO or VG_ENOMEM; free with
 * errorstore_groups_free (also after an error). */
int errorstore_list(struct errorstore *es, struct errorstore_groups *out, struct vg_err *err);
/* One group (out->n == 1). 0, VG_ENOTFOUND, VG_EIO or VG_ENOMEM. */
int errorstore_get(struct errorstore *es, uint64_t fingerprint, struct errorstore_groups *out,
                   struct vg_err *err);
void errorstore_groups_free(struct errorstore_groups *g); /* accepts an empty one */

struct errorstore_hour {
    int64_t start_ms; /* the hour's first millisecond */
    uint64_t count;
};
/* The non-empty hours of fingerprint that overlap [start_ms, end_ms], oldest first.
 * *out is vg_malloc'ed (vg_free), *n its length. 0, VG_EIO or VG_ENOMEM. */
int errorstore_hours(struct errorstore *es, uint64_t fingerprint, int64_t start_ms,
                     int64_t end_ms, struct errorstore_hour **out, size_t *n,
                     struct vg_err *err);

/* Deletes every group whose last_seen_ms < cutoff_ms together with all its hour counts,
 * and the hour counts of the remaining groups whose hour starts before
 * hour_of(cutoff_ms) (so errorstore_hours keeps the cutoff's hour and later ones).
 * Works in rounds of about 1,024 deletes, each one LevelDB write (synced unless no_sync)
 * made holding the recording mutex, so recording waits one round at most; a failure
 * leaves the earlier rounds done. *groups_deleted (required) counts the groups deleted
 * by written rounds, also on failure. 0, VG_EIO (a record that does not decode, or
 * LevelDB's error) or VG_ENOMEM. */
int errorstore_expire(struct errorstore *es, int64_t cutoff_ms, size_t *groups_deleted,
                      struct vg_err *err);

/* Groups stored now. */
size_t errorstore_ngroups(struct errorstore *es);

#endif
