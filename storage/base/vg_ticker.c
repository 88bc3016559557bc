/* vg_ticker: see vg_ticker.h.
 *
 * The thread holds mu except while it runs fn. It sleeps on `wake` until the next
 * deadline, a kick (kicks != kicks_done) or stop; spurious and early wake-ups re-check
 * all three. A run serves every kick made before it started: it records the kick count
 * it read before unlocking and marks those done after fn returns, so vg_ticker_sync,
 * which waits for a count it raised itself, only returns after a run that started
 * after its call. At stop the thread marks every kick done on its way out, so no
 * waiter can be left waiting for a run that will never come. */
#include "vg_ticker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static void *ticker_main(void *arg)
{
    struct vg_ticker *t = arg;
#ifdef __linux__
    if (t->name[0])
        pthread_setname_np(pthread_self(), t->name);
#endif
    int64_t next = mono_ns() + t->first_ns;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        struct timespec dl = { .tv_sec = (time_t)(next / NS_PER_S),
                               .tv_nsec = (long)(next % NS_PER_S) };
        while (!atomic_load(&t->stop) && t->kicks == t->kicks_done && mono_ns() < next)
            pthread_cond_timedwait(&t->wake, &t->mu, &dl);
        if (atomic_load(&t->stop))
            break;
        uint64_t serving = t->kicks;
        pthread_mutex_unlock(&t->mu); /* never held while fn runs */
        int64_t started = mono_ns();
        t->fn(t->arg, &t->stop);
        pthread_mutex_lock(&t->mu);
        t->kicks_done = serving;
        pthread_cond_broadcast(&t->done);
        int64_t now = mono_ns();
        if (!t->fixed_rate) {
            next = now + t->interval_ns;
            continue;
        }
        next += t->interval_ns;
        if (next <= started) /* started late by more than an interval: restart the phase */
            next = started + t->interval_ns;
        if (next < now) /* overran: one more at once, not one per missed interval */
            next = now;
    }
    t->kicks_done = t->kicks;
    pthread_cond_broadcast(&t->done);
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int vg_ticker_start(struct vg_ticker *t, const struct vg_ticker_opts *o, vg_ticker_fn fn,
                    void *arg, struct vg_err *err)
{
    memset(t, 0, sizeof *t);
    const char *name = o->name ? o->name : "";
    if (o->interval_ms <= 0 || o->first_ms < 0)
        return vg_err_set(err, VG_EINVAL,
                          "ticker %s: interval_ms %lld must be > 0 and first_ms %lld >= 0",
                          name, (long long)o->interval_ms, (long long)o->first_ms);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->interval_ns = o->interval_ms * NS_PER_MS;
    t->first_ns = o->first_ms * NS_PER_MS;
    t->fixed_rate = o->fixed_rate;
    t->fn = fn;
    t->arg = arg;
    atomic_init(&t->stop, false);
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&t->done, NULL);
    int e = pthread_create(&t->thr, NULL, ticker_main, t);
    if (e) {
        pthread_cond_destroy(&t->wake);
        pthread_cond_destroy(&t->done);
        pthread_mutex_destroy(&t->mu);
        return vg_err_set(err, VG_EINTERNAL, "cannot start the %s thread: %s", name,
                          strerror(e));
    }
    t->started = true;
    return 0;
}

/* Raises the kick count and wakes the thread; returns the count to wait for. Under mu. */
static uint64_t kick_locked(struct vg_ticker *t)
{
    uint64_t want = ++t->kicks;
    pthread_cond_signal(&t->wake);
    return want;
}

void vg_ticker_kick(struct vg_ticker *t)
{
    pthread_mutex_lock(&t->mu);
    kick_locked(t);
    pthread_mutex_unlock(&t->mu);
}

void vg_ticker_sync(struct vg_ticker *t)
{
    pthread_mutex_lock(&t->mu);
    /* a run under way may have started before the call: wait for the one after it */
    uint64_t want = kick_locked(t);
    while (t->kicks_done < want && !atomic_load(&t->stop))
        pthread_cond_wait(&t->done, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

bool vg_ticker_stop(struct vg_ticker *t)
{
    if (!t->started)
        return false;
    pthread_mutex_lock(&t->mu);
    atomic_store(&t->stop, true);
    pthread_cond_broadcast(&t->wake);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thr, NULL);
    pthread_cond_destroy(&t->wake);
    pthread_cond_destroy(&t->done);
    pthread_mutex_destroy(&t->mu);
    t->started = false;
    return true;
}
