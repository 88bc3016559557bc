/* Tests server/rules/route_group.c on a fake clock: group_wait, group_interval and
 * repeat_interval as Alertmanager applies them, resolved notifications, grouping keys,
 * silences (the mute callback), inhibition, escalation, the notification log across a
 * restart, and the alert bound. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../server/rules/route.h"
#include "../../../../storage/base/vg_alloc.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }
#define T0 1700000000000LL
#define S 1000LL
#define M (60 * S)

struct sent {
    char receiver[32];
    char key[160];
    size_t nalerts, nfiring;
    bool escalation;
    char names[8][32]; /* alertname of each alert */
};

struct rec {
    struct sent s[64];
    size_t n;
};

static void on_emit(void *ctx, const struct route_notification *n, int64_t now)
{
    (void)now;
    struct rec *r = ctx;
    cr_assert_lt(r->n, 64);
    struct sent *s = &r->s[r->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->receiver, sizeof s->receiver, "%s", n->receiver);
    snprintf(s->key, sizeof s->key, "%s", n->group_key);
    s->nalerts = n->nalerts;
    s->nfiring = n->nfiring;
    s->escalation = n->escalation;
    for (size_t i = 0; i < n->nalerts && i < 8; i++) {
        struct vg_str v = labels_get(n->alerts[i].labels, n->alerts[i].nlabels, "alertname");
        snprintf(s->names[i], sizeof s->names[i], "%.*s", (int)v.len, v.p);
    }
}

static const char *const yaml =
    "notifications:\n"
    "  route:\n"
    "    receiver: team\n"
    "    group_by: [alertname]\n"
    "    group_wait: 30s\n"
    "    group_interval: 5m\n"
    "    repeat_interval: 1h\n"
    "    routes:\n"
    "      - matchers: ['severity=\"page\"']\n"
    "        receiver: team\n"
    "        group_by: [alertname]\n"
    "        escalate: {after: 10m, receiver: boss}\n"
    "  receivers: [{name: team}, {name: boss}]\n"
    "  inhibit_rules:\n"
    "    - source_matchers: ['severity=\"critical\"']\n"
    "      target_matchers: ['severity=\"warning\"']\n"
    "      equal: [cluster]\n";

struct fx {
    struct config *cfg;
    struct route_config *rc;
    struct route_dispatcher *d;
    struct rec rec;
};

static void fx_open(struct fx *f, const char *y)
{
    struct vg_err err;
    memset(f, 0, sizeof *f);
    f->cfg = config_load_buf("g.yml", y, strlen(y), &err);
    cr_assert_not_null(f->cfg, "%s", err.msg);
    f->rc = route_config_parse(config_block(f->cfg, "notifications"), "", &err);
    cr_assert_not_null(f->rc, "%s", err.msg);
    f->d = route_dispatcher_new(f->rc, 1000);
    cr_assert_not_null(f->d);
}

static void fx_close(struct fx *f)
{
    route_dispatcher_free(f->d);
    route_config_free(f->rc);
    config_free(f->cfg);
}

/* Sends one alert as the rule engine would: firing until ends (4 min ahead by
 * default), or resolved at ends. */
static void send(struct fx *f, const struct label *ls, size_t n, int64_t starts, int64_t ends,
                 int64_t now)
{
    struct alert a = { .labels = ls, .nlabels = n, .starts_at_ms = starts, .ends_at_ms = ends,
                       .generator_url = "" };
    cr_assert_eq(route_dispatcher_add(f->d, &a, 1, now), 0);
}

static void tick(struct fx *f, int64_t now, route_muted_fn muted, void *mctx)
{
    route_dispatcher_tick(f->d, now, muted, mctx, on_emit, &f->rec);
}

Test(route_group, group_wait_interval_and_repeat)
{
    struct fx f;
    fx_open(&f, yaml);
    struct label a[] = { L("alertname", "A"), L("instance", "1") };
    struct label b[] = { L("alertname", "A"), L("instance", "2") };
    send(&f, a, 2, T0, T0 + 4 * M, T0);
    tick(&f, T0 + 29 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 0, "nothing before group_wait");
    send(&f, b, 2, T0 + 10 * S, T0 + 4 * M, T0 + 10 * S);
    tick(&f, T0 + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 1, "one notification for the group after group_wait");
    cr_assert_str_eq(f.rec.s[0].receiver, "team");
    cr_assert_str_eq(f.rec.s[0].key, "{}:{alertname=\"A\"}");
    cr_assert_eq(f.rec.s[0].nalerts, 2);
    cr_assert_eq(f.rec.s[0].nfiring, 2);
    cr_assert_eq(route_dispatcher_groups(f.d), 1);

    /* resent by the rule engine, unchanged: nothing until repeat_interval */
    for (int64_t t = T0 + M; t < T0 + 60 * M; t += M) {
        send(&f, a, 2, T0, t + 4 * M, t);
        send(&f, b, 2, T0 + 10 * S, t + 4 * M, t);
        tick(&f, t, NULL, NULL);
    }
    cr_assert_eq(f.rec.n, 1, "unchanged group: no notification before repeat_interval");
    /* the flush at 30s + 12 * 5m = 60m30s is the first at least 1h after the first */
    send(&f, a, 2, T0, T0 + 64 * M, T0 + 60 * M);
    send(&f, b, 2, T0 + 10 * S, T0 + 64 * M, T0 + 60 * M);
    tick(&f, T0 + 60 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 2, "repeat_interval passed");
    cr_assert_eq(f.rec.s[1].nfiring, 2);

    /* b resolves: notified at the next group_interval flush, then leaves the group */
    send(&f, b, 2, T0 + 10 * S, T0 + 61 * M, T0 + 61 * M);
    tick(&f, T0 + 62 * M, NULL, NULL);
    cr_assert_eq(f.rec.n, 2, "waits for group_interval");
    send(&f, a, 2, T0, T0 + 69 * M, T0 + 65 * M);
    tick(&f, T0 + 65 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 3);
    cr_assert_eq(f.rec.s[2].nalerts, 2);
    cr_assert_eq(f.rec.s[2].nfiring, 1, "a fires, b resolved (listed after the firing)");
    cr_assert_eq(route_dispatcher_alerts(f.d), 1, "the resolved alert left the group");

    /* a new alert joins a flushed group: sent at the next group_interval, not group_wait */
    struct label c[] = { L("alertname", "A"), L("instance", "3") };
    send(&f, c, 2, T0 + 66 * M, T0 + 74 * M, T0 + 66 * M);
    tick(&f, T0 + 66 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 3);
    tick(&f, T0 + 70 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 4);
    cr_assert_eq(f.rec.s[3].nfiring, 1, "a has ended (not resent): only c fires");
    fx_close(&f);
}

Test(route_group, all_resolved_empties_and_removes_the_group)
{
    struct fx f;
    fx_open(&f, yaml);
    struct label a[] = { L("alertname", "B") };
    send(&f, a, 1, T0, T0 + 4 * M, T0);
    tick(&f, T0 + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 1);
    send(&f, a, 1, T0, T0 + M, T0 + M);
    tick(&f, T0 + 5 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 2);
    cr_assert_eq(f.rec.s[1].nfiring, 0);
    cr_assert_eq(f.rec.s[1].nalerts, 1, "the resolution is notified");
    cr_assert_eq(route_dispatcher_groups(f.d), 0);

    /* an alert resolved before its group ever flushed is never notified */
    struct label b[] = { L("alertname", "C") };
    send(&f, b, 1, T0, T0 + 6 * M, T0 + 6 * M);
    tick(&f, T0 + 7 * M, NULL, NULL);
    cr_assert_eq(f.rec.n, 2);
    cr_assert_eq(route_dispatcher_groups(f.d), 0);
    fx_close(&f);
}

static bool mute_instance_2(void *ctx, const struct alert *a, int64_t now)
{
    (void)now;
    int *calls = ctx;
    (*calls)++;
    return vg_str_eq_c(labels_get(a->labels, a->nlabels, "instance"), "2");
}

Test(route_group, silenced_alerts_are_left_out)
{
    struct fx f;
    fx_open(&f, yaml);
    struct label a[] = { L("alertname", "A"), L("instance", "1") };
    struct label b[] = { L("alertname", "A"), L("instance", "2") };
    struct label c[] = { L("alertname", "Z"), L("instance", "2") };
    send(&f, a, 2, T0, T0 + 4 * M, T0);
    send(&f, b, 2, T0, T0 + 4 * M, T0);
    send(&f, c, 2, T0, T0 + 4 * M, T0);
    int calls = 0;
    tick(&f, T0 + 30 * S, mute_instance_2, &calls);
    cr_assert_gt(calls, 0);
    cr_assert_eq(f.rec.n, 1, "group Z is entirely silenced");
    cr_assert_eq(f.rec.s[0].nalerts, 1);
    cr_assert_str_eq(f.rec.s[0].names[0], "A");
    /* the silence ends: b is new to the group and is notified at the next flush */
    send(&f, a, 2, T0, T0 + 9 * M, T0 + 5 * M);
    send(&f, b, 2, T0, T0 + 9 * M, T0 + 5 * M);
    send(&f, c, 2, T0, T0 + 9 * M, T0 + 5 * M);
    tick(&f, T0 + 5 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 3);
    fx_close(&f);
}

Test(route_group, inhibition_mutes_lower_severity_with_equal_labels)
{
    struct fx f;
    fx_open(&f, yaml);
    struct label crit[] = { L("alertname", "Down"), L("cluster", "eu"), L("severity", "critical") };
    struct label warn_eu[] = { L("alertname", "Slow"), L("cluster", "eu"), L("severity", "warning") };
    struct label warn_us[] = { L("alertname", "Slow2"), L("cluster", "us"), L("severity", "warning") };
    send(&f, crit, 3, T0, T0 + 4 * M, T0);
    send(&f, warn_eu, 3, T0, T0 + 4 * M, T0);
    send(&f, warn_us, 3, T0, T0 + 4 * M, T0);
    tick(&f, T0 + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 2, "Down and Slow2 notified, Slow inhibited");
    bool saw_slow = false;
    for (size_t i = 0; i < f.rec.n; i++)
        saw_slow |= !strcmp(f.rec.s[i].names[0], "Slow");
    cr_assert_not(saw_slow);
    fx_close(&f);
}

Test(route_group, escalation_after_firing_long_enough)
{
    struct fx f;
    fx_open(&f, yaml);
    struct label p[] = { L("alertname", "Pg"), L("severity", "page") };
    int64_t t;
    for (t = T0; t < T0 + 10 * M; t += M) {
        send(&f, p, 2, T0, t + 4 * M, t);
        tick(&f, t + 30 * S, NULL, NULL);
    }
    cr_assert_eq(f.rec.n, 1, "the team's notification only");
    cr_assert_not(f.rec.s[0].escalation);
    send(&f, p, 2, T0, T0 + 14 * M, T0 + 10 * M);
    tick(&f, T0 + 10 * M, NULL, NULL);
    cr_assert_eq(f.rec.n, 2, "escalated once 10m have passed");
    cr_assert(f.rec.s[1].escalation);
    cr_assert_str_eq(f.rec.s[1].receiver, "boss");
    cr_assert_str_eq(f.rec.s[1].key, "{}/{severity=\"page\"}:{alertname=\"Pg\"}/escalate");
    for (t = T0 + 11 * M; t <= T0 + 70 * M; t += M) {
        send(&f, p, 2, T0, t + 4 * M, t);
        tick(&f, t, NULL, NULL);
    }
    size_t esc = 0;
    for (size_t i = 0; i < f.rec.n; i++)
        esc += f.rec.s[i].escalation;
    cr_assert_eq(esc, 2, "once more after repeat_interval (1h), not on every tick");
    fx_close(&f);
}

Test(route_group, silenced_alert_is_not_escalated)
{
    struct fx f;
    fx_open(&f, yaml);
    struct label p[] = { L("alertname", "Pg"), L("instance", "2"), L("severity", "page") };
    int calls = 0;
    for (int64_t t = T0; t < T0 + 30 * M; t += M) {
        send(&f, p, 3, T0, t + 4 * M, t);
        tick(&f, t, mute_instance_2, &calls);
    }
    cr_assert_eq(f.rec.n, 0);
    fx_close(&f);
}

Test(route_group, notification_log_survives_a_restart)
{
    struct fx f;
    fx_open(&f, yaml);
    struct label a[] = { L("alertname", "A") };
    send(&f, a, 1, T0, T0 + 4 * M, T0);
    tick(&f, T0 + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 1);
    struct vg_buf log;
    vg_buf_init(&log);
    route_dispatcher_export(f.d, &log);
    cr_assert(strstr(vg_buf_cstr(&log), "\"key\":\"{}:{alertname=\\\"A\\\"}\""), "%s", log.p);

    /* "restart": a fresh dispatcher with the log imported does not re-notify... */
    route_dispatcher_free(f.d);
    f.d = route_dispatcher_new(f.rc, 1000);
    cr_assert_eq(route_dispatcher_import(f.d, log.p, log.len), 0);
    cr_assert_eq(route_dispatcher_import(f.d, "garbage\n{}\n", 11), 2);
    send(&f, a, 1, T0, T0 + 6 * M, T0 + 2 * M);
    tick(&f, T0 + 2 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 1, "already notified before the restart");
    /* ...but does notify the resolution of what it notified before */
    send(&f, a, 1, T0, T0 + 3 * M, T0 + 3 * M);
    tick(&f, T0 + 7 * M + 30 * S, NULL, NULL);
    cr_assert_eq(f.rec.n, 2);
    cr_assert_eq(f.rec.s[1].nfiring, 0);
    vg_buf_free(&log);
    fx_close(&f);
}

Test(route_group, alert_bound_refuses_new_alerts)
{
    struct fx f;
    fx_open(&f, yaml);
    route_dispatcher_free(f.d);
    f.d = route_dispatcher_new(f.rc, 2);
    struct label a[] = { L("alertname", "A"), L("i", "1") };
    struct label b[] = { L("alertname", "A"), L("i", "2") };
    struct label c[] = { L("alertname", "A"), L("i", "3") };
    struct alert al[3] = {
        { .labels = a, .nlabels = 2, .starts_at_ms = T0, .ends_at_ms = T0 + M },
        { .labels = b, .nlabels = 2, .starts_at_ms = T0, .ends_at_ms = T0 + M },
        { .labels = c, .nlabels = 2, .starts_at_ms = T0, .ends_at_ms = T0 + M },
    };
    cr_assert_eq(route_dispatcher_add(f.d, al, 3, T0), 1);
    cr_assert_eq(route_dispatcher_add(f.d, al, 2, T0), 0, "updates of held alerts still pass");
    cr_assert_eq(route_dispatcher_alerts(f.d), 2);
    fx_close(&f);
}

Test(route_group, group_by_all_labels_and_empty_group_by)
{
    struct fx f;
    fx_open(&f, "notifications:\n  route:\n    receiver: r\n    group_wait: 0s\n"
                "    routes:\n      - {matchers: ['x=\"1\"'], group_by: ['...']}\n"
                "  receivers: [{name: r}]\n");
    struct label a[] = { L("alertname", "A"), L("x", "1") };
    struct label b[] = { L("alertname", "B"), L("x", "1") };
    struct label c[] = { L("alertname", "C") };
    struct label d[] = { L("alertname", "D") };
    send(&f, a, 2, T0, T0 + M, T0);
    send(&f, b, 2, T0, T0 + M, T0);
    send(&f, c, 1, T0, T0 + M, T0);
    send(&f, d, 1, T0, T0 + M, T0);
    cr_assert_eq(route_dispatcher_groups(f.d), 3, "'...': one group per alert; none: one");
    tick(&f, T0, NULL, NULL);
    cr_assert_eq(f.rec.n, 3);
    fx_close(&f);
}
