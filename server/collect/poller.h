/* poller: what the pull collectors (snmp.h, jolokia.h) share.
 *
 *  - A poller is one named thread that calls a poll function every interval until it is
 *    stopped, so one slow or dead target never delays another. The first poll runs
 *    offset_ms after start (spreading targets that share an interval); each later one
 *    interval after the previous one started (a poll that overruns its interval is
 *    followed at once by the next, never by two).
 *  - A sample set gathers the samples of one poll (metric name, labels, value, all at
 *    one timestamp), validates every series against the configured label limits
 *    (ingest_check_labels) and stores them in one tsdb_append through ingest_store, so
 *    vigil_ingest_*{receiver} count them like any receiver's.
 *
 *  - A poller health record keeps the outcome of a target's last poll, so
 *    /api/v1/targets lists polled devices beside scraped targets, in the same shape.
 *
 * Thread safety: a poller's function runs on the poller's thread only; poller_stop and
 * poller_sync may be called from any one other thread. A sample set belongs to one
 * thread. A health record is locked: set by the poller's thread, read by any. */
#ifndef COLLECT_POLLER_H
#define COLLECT_POLLER_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../../storage/tsdb/tsdb.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vigil;
struct poller;
struct scrape_target_status;

/* Called on the poller's thread; *stop becomes true when the poller is being stopped
 * (long polls check it between requests and return early). */
typedef void (*poller_fn)(void *ctx, const atomic_bool *stop);

/* Starts the thread (named name, cut to 15 bytes). NULL with err (VG_ENOMEM or
 * VG_EINTERNAL) when it cannot. ctx must outlive the poller. */
struct poller *poller_start(const char *name, int64_t interval_ms, int64_t offset_ms,
                            poller_fn fn, void *ctx, struct vg_err *err);
/* Stops and joins the thread (waiting for a poll under way to return) and frees the
 * poller. Accepts NULL. */
void poller_stop(struct poller *p);
/* Runs one poll that starts after the call and returns when it has finished (tests). */
void poller_sync(struct poller *p);

/* Stable offset in [0, interval_ms) for a target name (FNV-1a), as Prometheus spreads
 * scrapes of one interval over it. */
int64_t poller_offset(const char *name, int64_t interval_ms);

/* Clocks: wall time in ms (sample timestamps) and monotonic seconds (durations). */
int64_t poller_wall_ms(void);
double poller_mono_s(void);

/* ---- sample sets ---- */

struct poller_samples {
    int64_t t;                        /* every sample's timestamp (ms) */
    size_t max_series;                /* poller_samples_add refuses more (0 = no limit) */
    struct vg_arena *arena;           /* names, labels, values */
    struct tsdb_series_in *series;
    size_t n, cap;
    struct tsdb_metadata *meta;
    size_t nmeta, capmeta;
};

/* 0 or VG_ENOMEM. max_series bounds one poll's output (a misconfigured walk or wildcard
 * cannot flood the store). */
int poller_samples_init(struct poller_samples *s, int64_t t_ms, size_t max_series);
void poller_samples_free(struct poller_samples *s); /* accepts a zeroed or freed set */

/* Adds one sample of metric name with labels (any order; copied; a label with an
 * empty value is dropped as Prometheus does). 0, VG_ENOMEM, or VG_ETOOLARGE when the set
 * holds max_series already. Name and labels are validated at store time. */
int poller_samples_add(struct poller_samples *s, const char *name, const struct label *ls,
                       size_t nl, double v);
/* Records the type (and help) of metric family name once per set (later calls for
 * the same name are ignored). 0 or VG_ENOMEM. */
int poller_samples_meta(struct poller_samples *s, const char *name,
                        enum tsdb_metric_type type, const char *help);

/* Adds a poll's health series, labelled label_name=label_value, with their metadata:
 * <prefix>_up (up ? 1 : 0), <prefix>_scrape_duration_seconds (since started, a
 * poller_mono_s reading) and <prefix>_scrape_samples (the samples in the set before the
 * call). Lifts max_series so they always fit. `what` names the polled thing in help. */
void poller_samples_health(struct poller_samples *s, const char *prefix, const char *label_name,
                           const char *label_value, const char *what, bool up, double started);

/* Validates every series (series failing ingest_check_labels are dropped and counted
 * as vigil_ingest_samples_rejected_total{receiver,reason="invalid_labels"}), then
 * stores the rest with ingest_store. Returns ingest_store's result (0 when nothing was
 * left to store); *invalid (may be NULL) gets the number dropped, err the first
 * reason when some were. */
int poller_samples_store(struct vigil *v, const char *receiver, struct poller_samples *s,
                         size_t *invalid, struct vg_err *err);

/* ---- health, for /api/v1/targets ---- */

struct poller_health {
    pthread_mutex_t mu;
    int64_t last_ms;        /* wall time the last poll started; 0 before the first */
    double duration_s;
    bool up;
    char error[256];        /* why the last poll failed; "" when it did not */
};

/* A polled target as /api/v1/targets shows it. */
struct poller_target {
    const char *pool;       /* scrapePool: the collector ("snmp", "jmx") */
    const char *address;    /* discovered __address__ */
    const char *url;        /* scrapeUrl */
    struct label label;     /* the label the target's series carry (device="core1") */
    int64_t interval_ms, timeout_ms;
};

void poller_health_init(struct poller_health *h);
void poller_health_destroy(struct poller_health *h);
/* Records a finished poll: started_ms (wall), its duration, whether it succeeded and
 * why not (NULL or "" when it did; cut to fit). */
void poller_health_set(struct poller_health *h, int64_t started_ms, double duration_s, bool up,
                       const char *error);
/* Calls fn once with t's status as scrape_each_target hands out a target's (health
 * "unknown" before the first poll, then "up" or "down"), under h's lock. */
void poller_health_report(struct poller_health *h, const struct poller_target *t,
                          void (*fn)(void *ctx, const struct scrape_target_status *st),
                          void *ctx);

#endif
