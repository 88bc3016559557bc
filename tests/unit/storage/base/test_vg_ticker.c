/* Tests storage/base/vg_ticker.c: the first-run delay, fixed-delay and fixed-rate
 * schedules (an overrun is followed by one run, not a burst), prompt stop with a long
 * interval and during a long run, kick and sync, and bad options.
 *
 * Timing assertions are lower bounds the ticker guarantees (it never runs before a
 * deadline) plus upper bounds with generous slack, so a loaded machine cannot fail
 * them. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "../../../../storage/base/vg_ticker.h"

#define MS 1000000LL
#define MAX_RUNS 64

struct rec {
    atomic_int begun, n;                   /* runs begun, runs finished */
    int64_t start[MAX_RUNS], end[MAX_RUNS]; /* monotonic ns, written by the ticker thread */
    int64_t sleep_first_ms, sleep_ms;      /* how long the first and later runs take */
    bool until_stop;                       /* the run lasts until *stop */
    atomic_bool saw_stop;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * MS };
    nanosleep(&ts, NULL);
}

static void run(void *arg, const atomic_bool *stop)
{
    struct rec *r = arg;
    int i = atomic_load(&r->n);
    if (i < MAX_RUNS)
        r->start[i] = now_ns();
    atomic_fetch_add(&r->begun, 1);
    if (r->until_stop) {
        while (!atomic_load(stop))
            sleep_ms(1);
        atomic_store(&r->saw_stop, true);
    } else {
        sleep_ms(i == 0 ? r->sleep_first_ms : r->sleep_ms);
    }
    if (i < MAX_RUNS)
        r->end[i] = now_ns();
    atomic_store(&r->n, i + 1); /* after the times, so a reader of n sees them */
}

/* Waits up to limit_ms for at least want runs; returns the count. */
static int wait_runs(struct rec *r, int want, int64_t limit_ms)
{
    int64_t until = now_ns() + limit_ms * MS;
    while (atomic_load(&r->n) < want && now_ns() < until)
        sleep_ms(1);
    return atomic_load(&r->n);
}

/* Waits (up to 10 s) until the first run has begun. */
static void wait_begun(struct rec *r)
{
    int64_t until = now_ns() + 10000 * MS;
    while (atomic_load(&r->begun) == 0 && now_ns() < until)
        sleep_ms(1);
    cr_assert_eq(atomic_load(&r->begun), 1);
}

static void start(struct vg_ticker *t, struct rec *r, int64_t interval_ms, int64_t first_ms,
                  bool fixed_rate)
{
    struct vg_ticker_opts o = { .name = "test-ticker", .interval_ms = interval_ms,
                                .first_ms = first_ms, .fixed_rate = fixed_rate };
    struct vg_err err;
    cr_assert_eq(vg_ticker_start(t, &o, run, r, &err), 0);
}

Test(vg_ticker, fixed_delay_waits_first_ms_then_interval_after_each_run)
{
    struct rec r = { .sleep_first_ms = 15, .sleep_ms = 15 };
    struct vg_ticker t;
    int64_t t0 = now_ns();
    start(&t, &r, 20, 30, false);
    cr_assert_geq(wait_runs(&r, 5, 10000), 5);
    cr_assert(vg_ticker_stop(&t));
    int n = atomic_load(&r.n);
    cr_assert_geq(r.start[0], t0 + 30 * MS, "first run %lld ns after start",
                  (long long)(r.start[0] - t0));
    for (int i = 1; i < n && i < MAX_RUNS; i++)
        cr_assert_geq(r.start[i], r.end[i - 1] + 20 * MS, "run %d began %lld ns after run %d ended",
                      i, (long long)(r.start[i] - r.end[i - 1]), i - 1);
}

Test(vg_ticker, first_ms_zero_runs_at_once)
{
    struct rec r = { 0 };
    struct vg_ticker t;
    int64_t t0 = now_ns();
    start(&t, &r, 3600 * 1000, 0, false);
    cr_assert_eq(wait_runs(&r, 1, 10000), 1);
    cr_assert_lt(r.start[0] - t0, 5000 * MS);
    sleep_ms(30);
    cr_assert_eq(atomic_load(&r.n), 1, "the next run is an hour away");
    cr_assert(vg_ticker_stop(&t));
}

Test(vg_ticker, fixed_rate_keeps_the_phase)
{
    /* Each run takes 40 ms of a 60 ms interval: due at 0, 60, 120, ... after the first,
     * where a fixed delay would start them 100 ms apart. */
    struct rec r = { .sleep_first_ms = 40, .sleep_ms = 40 };
    struct vg_ticker t;
    int64_t t0 = now_ns();
    start(&t, &r, 60, 10, true);
    cr_assert_geq(wait_runs(&r, 6, 20000), 6);
    cr_assert(vg_ticker_stop(&t));
    for (int i = 0; i < 6; i++)
        cr_assert_geq(r.start[i], t0 + (10 + 60 * i) * MS, "run %d came early", i);
    /* five gaps: 300 ms on the phase, at least 500 ms if it drifted by the run time */
    cr_assert_lt(r.start[5] - r.start[0], 480 * MS, "runs drifted: %lld ms for five gaps",
                 (long long)((r.start[5] - r.start[0]) / MS));
}

Test(vg_ticker, fixed_rate_overrun_is_followed_by_one_run_not_a_burst)
{
    /* The first run takes 200 ms of a 50 ms interval: three deadlines pass during it.
     * The next run starts at once; the one after waits a whole interval. */
    struct rec r = { .sleep_first_ms = 200, .sleep_ms = 0 };
    struct vg_ticker t;
    start(&t, &r, 50, 0, true);
    cr_assert_geq(wait_runs(&r, 3, 20000), 3);
    cr_assert(vg_ticker_stop(&t));
    cr_assert_lt(r.start[1] - r.end[0], 5000 * MS);
    cr_assert_geq(r.start[2], r.end[0] + 50 * MS, "run 2 began %lld ms after run 0 ended",
                  (long long)((r.start[2] - r.end[0]) / MS));
}

Test(vg_ticker, stop_is_prompt_with_a_long_interval)
{
    struct rec r = { 0 };
    struct vg_ticker t;
    start(&t, &r, 3600 * 1000, 3600 * 1000, false);
    sleep_ms(20);
    int64_t t0 = now_ns();
    cr_assert(vg_ticker_stop(&t));
    cr_assert_lt(now_ns() - t0, 2000 * MS, "stop took %lld ms", (long long)((now_ns() - t0) / MS));
    cr_assert_eq(atomic_load(&r.n), 0, "stop does not run fn");
    cr_assert_not(vg_ticker_stop(&t), "a second stop is a no-op");
}

Test(vg_ticker, stop_sets_the_flag_a_long_run_watches)
{
    struct rec r = { .until_stop = true };
    struct vg_ticker t;
    start(&t, &r, 3600 * 1000, 0, false);
    wait_begun(&r);
    int64_t t0 = now_ns();
    cr_assert(vg_ticker_stop(&t));
    cr_assert_lt(now_ns() - t0, 2000 * MS);
    cr_assert(atomic_load(&r.saw_stop));
    cr_assert_eq(atomic_load(&r.n), 1, "stop waited for the run to return");
}

Test(vg_ticker, kick_runs_at_once_without_waiting)
{
    struct rec r = { .sleep_first_ms = 50 };
    struct vg_ticker t;
    start(&t, &r, 3600 * 1000, 3600 * 1000, false);
    int64_t t0 = now_ns();
    vg_ticker_kick(&t);
    vg_ticker_kick(&t); /* before the run starts: shares it */
    cr_assert_lt(now_ns() - t0, 40 * MS, "kick returned before the 50 ms run ended");
    cr_assert_eq(wait_runs(&r, 1, 10000), 1);
    sleep_ms(100);
    cr_assert_leq(atomic_load(&r.n), 2, "kicks made before a run started share it");
    cr_assert(vg_ticker_stop(&t));
}

Test(vg_ticker, sync_waits_for_a_run_that_started_after_the_call)
{
    struct rec r = { .sleep_first_ms = 0 };
    struct vg_ticker t;
    start(&t, &r, 3600 * 1000, 3600 * 1000, false);
    for (int i = 1; i <= 3; i++) {
        int64_t t0 = now_ns();
        vg_ticker_sync(&t);
        cr_assert_eq(atomic_load(&r.n), i);
        cr_assert_geq(r.start[i - 1], t0);
    }
    cr_assert(vg_ticker_stop(&t));
}

Test(vg_ticker, sync_during_a_run_waits_for_the_next_one)
{
    struct rec r = { .sleep_first_ms = 100 };
    struct vg_ticker t;
    start(&t, &r, 3600 * 1000, 0, false);
    wait_begun(&r);
    int64_t t0 = now_ns();
    vg_ticker_sync(&t);
    cr_assert_eq(atomic_load(&r.n), 2, "run 0 began before the call; run 1 is the one");
    cr_assert_geq(r.start[1], t0);
    cr_assert(vg_ticker_stop(&t));
}

Test(vg_ticker, rejects_bad_options_and_stops_a_zeroed_ticker)
{
    struct rec r = { 0 };
    struct vg_ticker t;
    struct vg_err err;
    struct vg_ticker_opts o = { .name = "bad", .interval_ms = 0 };
    cr_assert_eq(vg_ticker_start(&t, &o, run, &r, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "interval_ms 0") != NULL, "%s", err.msg);
    cr_assert_not(vg_ticker_stop(&t));
    o = (struct vg_ticker_opts){ .name = "bad", .interval_ms = 10, .first_ms = -1 };
    cr_assert_eq(vg_ticker_start(&t, &o, run, &r, &err), VG_EINVAL);
    cr_assert_not(vg_ticker_stop(&t));
    struct vg_ticker zero = { 0 };
    cr_assert_not(vg_ticker_stop(&zero));
    cr_assert_eq(atomic_load(&r.n), 0);
}
