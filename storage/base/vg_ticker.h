/* vg_ticker: a named background thread that calls one function on an interval until
 * it is stopped: the periodic fsync (kv-sync), TSDB maintenance (tsdb-maint), the
 * SNMP and JMX pollers.
 *
 * Schedule. The first run is due first_ms after vg_ticker_start. After a run:
 *  - fixed delay (fixed_rate false): the next is due interval_ms after it returned;
 *  - fixed rate (fixed_rate true): the next is due interval_ms after the previous one
 *    was due, so runs keep their phase; a run that overran its interval is followed at
 *    once by one more, never by a burst of the missed ones.
 * Deadlines are on CLOCK_MONOTONIC, so setting the wall clock neither fires nor
 * delays a run. The thread sleeps on a condition variable, so vg_ticker_stop,
 * vg_ticker_kick and vg_ticker_sync wake it at once whatever the interval.
 *
 * Thread safety: fn runs on the ticker's thread only, one run at a time, and never
 * with the ticker's lock held (fn may take any lock of its own and may call
 * vg_ticker_kick on its own ticker, but not vg_ticker_sync or vg_ticker_stop).
 * vg_ticker_kick and vg_ticker_sync may be called from any number of other threads
 * while the ticker runs; vg_ticker_stop from one thread once no kick or sync call is
 * under way (it destroys the lock they take), and nothing may be called after it. The struct is the caller's (embed it anywhere that outlives the thread);
 * its fields are private. Nothing here allocates. */
#ifndef VG_TICKER_H
#define VG_TICKER_H

#include "vg_err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* One run. *stop becomes true once vg_ticker_stop was called: a long run checks it
 * between steps and returns early. */
typedef void (*vg_ticker_fn)(void *arg, const atomic_bool *stop);

struct vg_ticker_opts {
    const char *name;    /* thread name, cut to 15 bytes; NULL leaves it unnamed */
    int64_t interval_ms; /* > 0 */
    int64_t first_ms;    /* delay before the first run, >= 0 (0: at once) */
    bool fixed_rate;     /* see the schedule above */
};

struct vg_ticker {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* stop or a kick; on CLOCK_MONOTONIC */
    pthread_cond_t done; /* a run finished (vg_ticker_sync waits on it) */
    atomic_bool stop;
    bool started;
    uint64_t kicks, kicks_done; /* under mu: runs asked for, and the asks served */
    int64_t interval_ns, first_ns;
    bool fixed_rate;
    vg_ticker_fn fn;
    void *arg;
    char name[16];
};

/* Starts t's thread (t need not be initialised; arg must outlive the thread). 0, or
 * VG_EINVAL for an interval <= 0 or a negative first_ms, VG_EINTERNAL when the thread
 * cannot be created; on error t is left stopped (vg_ticker_stop on it is a no-op). */
int vg_ticker_start(struct vg_ticker *t, const struct vg_ticker_opts *o, vg_ticker_fn fn,
                    void *arg, struct vg_err *err);

/* Asks for a run as soon as the thread is free (a run under way finishes first) and
 * returns at once. Kicks made before that run starts share it. Does not move the
 * fixed-rate phase. */
void vg_ticker_kick(struct vg_ticker *t);

/* Asks for a run that starts after the call and returns once it has finished (tests;
 * "flush now"). */
void vg_ticker_sync(struct vg_ticker *t);

/* Wakes the thread, waits for a run under way to return, joins the thread and
 * destroys t's lock. True when it stopped a running ticker; false (and nothing done)
 * for one that was never started, failed to start or is stopped already, so a zeroed
 * struct may always be stopped. */
bool vg_ticker_stop(struct vg_ticker *t);

#endif
