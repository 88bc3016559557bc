/* Tests of server/collect/poller.c: sample sets stored through ingest_store into a real
 * TSDB (labels validated, invalid series dropped and counted, the per-poll bound,
 * metadata once per family, allocation failure), and the poller thread (interval, sync,
 * stop while idle and while a poll runs), and the health records /api/v1/targets reads. */
#include "../../../../server/collect/poller.h"
#include "../../../../server/scrape/scrape.h"
#include "../fixture.h"

#include <stdatomic.h>
#include <unistd.h>

static void open_fx(struct server_fixture *f)
{
    struct vg_err err = { 0 };
    fixture_open(f);
    cr_assert_eq(ingest_metrics_init(&f->v, &err), 0, "%s", err.msg);
}

static void close_fx(struct server_fixture *f)
{
    ingest_metrics_free(&f->v);
    fixture_close(f);
}

static size_t count_series(struct server_fixture *f, const char *name)
{
    struct vg_err err = { 0 };
    struct matcher *m = matcher_new(MATCH_EQ, VG_STR("__name__"), vg_str_c(name), &err);
    cr_assert_not_null(m, "%s", err.msg);
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_select(f->v.tsdb, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0);
    size_t n = set->n;
    tsdb_series_set_free(set);
    matcher_free(m);
    return n;
}

Test(poller_samples, store_validates_and_counts)
{
    struct server_fixture f;
    open_fx(&f);
    struct poller_samples s;
    cr_assert_eq(poller_samples_init(&s, fixture_now_ms(), 3), 0);
    struct label ls[] = { { VG_STR("ifIndex"), VG_STR("2") }, { VG_STR("device"), VG_STR("r1") },
                          { VG_STR("empty"), VG_STR("") } };
    cr_assert_eq(poller_samples_add(&s, "ifInOctets", ls, 3, 10), 0);
    struct label bad[] = { { VG_STR("bad-name"), VG_STR("x") } };
    cr_assert_eq(poller_samples_add(&s, "ifInOctets", bad, 1, 1), 0);
    cr_assert_eq(poller_samples_add(&s, "9invalid", NULL, 0, 1), 0);
    cr_assert_eq(poller_samples_add(&s, "over", NULL, 0, 1), VG_ETOOLARGE, "max_series");
    cr_assert_eq(poller_samples_meta(&s, "ifInOctets", TSDB_TYPE_COUNTER, "help"), 0);
    cr_assert_eq(poller_samples_meta(&s, "ifInOctets", TSDB_TYPE_GAUGE, "again"), 0);
    cr_assert_eq(s.nmeta, 1, "one metadata row per family");
    size_t invalid = 0;
    struct vg_err err = { 0 };
    cr_assert_eq(poller_samples_store(&f.v, "snmp", &s, &invalid, &err), 0, "%s", err.msg);
    cr_assert_eq(invalid, 2);
    cr_assert(strstr(err.msg, "bad-name"), "first reason kept: %s", err.msg);
    poller_samples_free(&s);
    cr_assert_eq(count_series(&f, "ifInOctets"), 1);
    enum tsdb_metric_type t;
    cr_assert(tsdb_metadata_get(f.v.tsdb, "ifInOctets", &t, NULL, 0, NULL, 0));
    cr_assert_eq(t, TSDB_TYPE_COUNTER);
    struct vg_buf out;
    vg_buf_init(&out);
    metrics_render(f.v.metrics, &out);
    cr_assert(strstr(vg_buf_cstr(&out), "vigil_ingest_samples_rejected_total{receiver=\"snmp\","
                                        "reason=\"invalid_labels\"} 2"), "%s", out.p);
    cr_assert(strstr(out.p, "vigil_ingest_samples_accepted_total{receiver=\"snmp\"} 1"));
    vg_buf_free(&out);
    close_fx(&f);
}

Test(poller_samples, empty_set_and_allocation_failure)
{
    struct server_fixture f;
    open_fx(&f);
    struct poller_samples s;
    cr_assert_eq(poller_samples_init(&s, 1000, 0), 0);
    cr_assert_eq(poller_samples_store(&f.v, "jmx", &s, NULL, NULL), 0, "nothing to store");
    poller_samples_free(&s);
    poller_samples_free(&s); /* freeing twice is harmless */
    size_t live = vg_alloc_live_bytes();
    bool failed = false;
    for (uint64_t n = 1; n < 40; n++) {
        struct label l = { VG_STR("target"), VG_STR("a") };
        vg_alloc_fail_after(n);
        int rc = poller_samples_init(&s, 1000, 0);
        for (int i = 0; rc == 0 && i < 100; i++)
            rc = poller_samples_add(&s, "m", &l, 1, i);
        if (rc == 0)
            rc = poller_samples_meta(&s, "m", TSDB_TYPE_GAUGE, "h");
        vg_alloc_fail_after(0);
        if (rc < 0) {
            cr_assert_eq(rc, VG_ENOMEM);
            failed = true;
        }
        poller_samples_free(&s);
        cr_assert_eq(vg_alloc_live_bytes(), live, "n=%llu leaks", (unsigned long long)n);
    }
    cr_assert(failed);
    close_fx(&f);
}

struct counter {
    atomic_int polls;
    int sleep_ms;
    atomic_bool saw_stop;
};

static void count_poll(void *ctx, const atomic_bool *stop)
{
    struct counter *c = ctx;
    atomic_fetch_add(&c->polls, 1);
    for (int i = 0; i < c->sleep_ms / 10; i++) {
        if (atomic_load(stop)) {
            atomic_store(&c->saw_stop, true);
            return;
        }
        usleep(10000);
    }
}

Test(poller, runs_on_its_interval_syncs_and_stops)
{
    struct counter c = { .sleep_ms = 0 };
    struct vg_err err = { 0 };
    struct poller *p = poller_start("test", 50, 0, count_poll, &c, &err);
    cr_assert_not_null(p, "%s", err.msg);
    usleep(330000);
    int n = atomic_load(&c.polls);
    cr_assert(n >= 4 && n <= 9, "about 7 polls in 330 ms at 50 ms, got %d", n);
    poller_stop(p);

    /* a long interval: only sync makes it poll */
    struct counter d = { .sleep_ms = 0 };
    p = poller_start("test2", 3600000, 3600000, count_poll, &d, &err);
    cr_assert_not_null(p);
    cr_assert_eq(atomic_load(&d.polls), 0);
    poller_sync(p);
    cr_assert_eq(atomic_load(&d.polls), 1);
    poller_sync(p);
    cr_assert_eq(atomic_load(&d.polls), 2);
    poller_stop(p);
    poller_stop(NULL);
}

Test(poller, stop_reaches_a_running_poll)
{
    struct counter c = { .sleep_ms = 10000 };
    struct vg_err err = { 0 };
    struct poller *p = poller_start("slow", 1000, 0, count_poll, &c, &err);
    cr_assert_not_null(p);
    while (atomic_load(&c.polls) == 0)
        usleep(1000);
    poller_stop(p); /* returns long before the poll's 10 s */
    cr_assert(atomic_load(&c.saw_stop));
}

Test(poller, offsets_spread_and_are_stable)
{
    int64_t a = poller_offset("core1", 30000), b = poller_offset("core2", 30000);
    cr_assert(a >= 0 && a < 30000 && b >= 0 && b < 30000);
    cr_assert_neq(a, b);
    cr_assert_eq(a, poller_offset("core1", 30000));
    cr_assert_eq(poller_offset("x", 0), 0);
}

/* What /api/v1/targets gets for a polled target before and after polls. */
struct seen {
    char health[16], error[64], pool[8], url[64], dname[3][16], dvalue[3][64], label[32];
    int64_t last_ms, interval_ms, timeout_ms;
    double duration_s;
    size_t ndiscovered, calls;
};

static void remember(void *ctx, const struct scrape_target_status *st)
{
    struct seen *s = ctx;
    s->calls++;
    snprintf(s->health, sizeof s->health, "%s", st->health);
    snprintf(s->error, sizeof s->error, "%s", st->last_error);
    snprintf(s->pool, sizeof s->pool, "%s", st->pool);
    snprintf(s->url, sizeof s->url, "%s", st->url);
    s->ndiscovered = st->ndiscovered;
    for (size_t i = 0; i < st->ndiscovered && i < 3; i++) {
        snprintf(s->dname[i], sizeof s->dname[i], "%.*s", (int)st->discovered[i].name.len,
                 st->discovered[i].name.p);
        snprintf(s->dvalue[i], sizeof s->dvalue[i], "%.*s", (int)st->discovered[i].value.len,
                 st->discovered[i].value.p);
    }
    cr_assert_eq(st->nlabels, 1);
    snprintf(s->label, sizeof s->label, "%.*s=%.*s", (int)st->labels[0].name.len,
             st->labels[0].name.p, (int)st->labels[0].value.len, st->labels[0].value.p);
    s->last_ms = st->last_scrape_ms;
    s->duration_s = st->last_duration_s;
    s->interval_ms = st->interval_ms;
    s->timeout_ms = st->timeout_ms;
    cr_assert_not(st->dropped);
}

Test(poller_health, unknown_then_down_with_reason_then_up)
{
    struct poller_health h;
    poller_health_init(&h);
    struct poller_target t = {
        .pool = "snmp", .address = "192.0.2.1:161", .url = "snmp://192.0.2.1:161",
        .label = { VG_STR("device"), VG_STR("core1") }, .interval_ms = 30000, .timeout_ms = 5000,
    };
    struct seen s = { 0 };
    poller_health_report(&h, &t, remember, &s);
    cr_assert_eq(s.calls, 1);
    cr_assert_str_eq(s.health, "unknown");
    cr_assert_eq(s.last_ms, 0);
    cr_assert_str_eq(s.pool, "snmp");
    cr_assert_str_eq(s.url, "snmp://192.0.2.1:161");
    cr_assert_str_eq(s.label, "device=core1");
    cr_assert_eq(s.ndiscovered, 2);
    cr_assert_str_eq(s.dname[0], "__address__"); /* sorted by name */
    cr_assert_str_eq(s.dvalue[0], "192.0.2.1:161");
    cr_assert_str_eq(s.dname[1], "device");
    cr_assert_eq(s.interval_ms, 30000);
    cr_assert_eq(s.timeout_ms, 5000);

    poller_health_set(&h, 1700000000000, 0.25, false, "timeout");
    poller_health_report(&h, &t, remember, &s);
    cr_assert_str_eq(s.health, "down");
    cr_assert_str_eq(s.error, "timeout");
    cr_assert_eq(s.last_ms, 1700000000000);
    cr_assert_float_eq(s.duration_s, 0.25, 1e-9);

    poller_health_set(&h, 1700000030000, 0.01, true, NULL);
    poller_health_report(&h, &t, remember, &s);
    cr_assert_str_eq(s.health, "up");
    cr_assert_str_eq(s.error, "");
    cr_assert_eq(s.last_ms, 1700000030000);
    poller_health_destroy(&h);
}

Test(poller_health, a_long_reason_is_cut_not_overrun)
{
    struct poller_health h;
    poller_health_init(&h);
    char why[1000];
    memset(why, 'x', sizeof why - 1);
    why[sizeof why - 1] = 0;
    poller_health_set(&h, 1, 0, false, why);
    cr_assert_eq(strlen(h.error), sizeof h.error - 1);
    poller_health_destroy(&h);
}
