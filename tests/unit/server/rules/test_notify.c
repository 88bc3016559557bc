/* Tests server/rules/notify.c end to end on loopback sinks: alerts reach an
 * Alertmanager endpoint as a JSON array and the built-in receivers after group_wait; a
 * failing receiver is retried; a hanging one delays nobody else; silences keep alerts
 * from built-in receivers; the status JSON lists attempts and queues; pending
 * notifications survive a restart; config errors name file:line. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "../../../../server/config.h"
#include "../../../../server/metrics.h"
#include "../../../../server/rules/notify.h"
#include "../../../../storage/base/vg_alloc.h"
#include "sink.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s, (void)f, (void)w;
    return remove(p);
}

struct nf {
    struct sink am, ok, flaky, hang, slack;
    char dir[64], state[96];
    struct config *cfg;
    struct metrics *m;
    struct notifier *n;
};

static void nf_config(struct nf *f)
{
    char y[4096];
    snprintf(y, sizeof y,
             "alerting:\n"
             "  alertmanagers:\n"
             "    - static_configs: [{targets: ['127.0.0.1:%u']}]\n"
             "      timeout: 2s\n"
             "notifications:\n"
             "  external_url: http://vigil.test\n"
             "  route:\n"
             "    receiver: all\n"
             "    group_by: [alertname]\n"
             "    group_wait: 0s\n"
             "    group_interval: 1s\n"
             "  receivers:\n"
             "    - name: all\n"
             "      webhook_configs:\n"
             "        - url: http://127.0.0.1:%u/ok\n"
             "        - url: http://127.0.0.1:%u/flaky\n"
             "        - url: http://127.0.0.1:%u/hang\n"
             "      slack_configs:\n"
             "        - {api_url: 'http://127.0.0.1:%u/slack', channel: '#ops', send_resolved: true}\n"
             "  delivery: {timeout: 300ms, initial_backoff: 20ms, max_backoff: 50ms,\n"
             "             max_attempts: 1000, tick: 20ms}\n",
             f->am.port, f->ok.port, f->flaky.port, f->hang.port, f->slack.port);
    struct vg_err err;
    f->cfg = config_load_buf("nf.yml", y, strlen(y), &err);
    cr_assert_not_null(f->cfg, "%s", err.msg);
    cr_assert_eq(notifier_check_config(f->cfg, &err), 0, "%s", err.msg);
}

static void nf_start(struct nf *f)
{
    struct vg_err err;
    f->n = notifier_new(f->cfg, f->state, f->m, &err);
    cr_assert_not_null(f->n, "%s", err.msg);
}

static void nf_open(struct nf *f)
{
    memset(f, 0, sizeof *f);
    sink_start(&f->am);
    sink_start(&f->ok);
    sink_start(&f->flaky);
    sink_start(&f->hang);
    sink_start(&f->slack);
    f->flaky.fail_first = 2;
    f->hang.hang = true;
    snprintf(f->dir, sizeof f->dir, "/tmp/vigil-notify-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    snprintf(f->state, sizeof f->state, "%s/notify", f->dir);
    f->m = metrics_new();
    nf_config(f);
    nf_start(f);
}

static void nf_close(struct nf *f)
{
    notifier_free(f->n);
    config_free(f->cfg);
    metrics_free(f->m);
    sink_stop(&f->am);
    sink_stop(&f->ok);
    sink_stop(&f->flaky);
    sink_stop(&f->hang);
    sink_stop(&f->slack);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static void fire(struct nf *f, const struct label *ls, size_t n)
{
    struct label ann[] = { L("summary", "it broke") };
    struct alert a = { .labels = ls, .nlabels = n, .annotations = ann, .nannotations = 1,
                       .starts_at_ms = now_ms() - 1000, .ends_at_ms = now_ms() + 240000,
                       .generator_url = "http://vigil.test/graph" };
    notifier_send(f->n, &a, 1);
}

Test(notify, delivers_to_alertmanager_and_receivers)
{
    struct nf f;
    nf_open(&f);
    struct label a[] = { L("alertname", "Disk"), L("severity", "page") };
    fire(&f, a, 2);
    cr_assert_eq(sink_wait(&f.am, 1, 3000), 1);
    json_t *arr = json_loads(f.am.bodies[0], 0, NULL);
    cr_assert_eq(json_array_size(arr), 1, "%s", f.am.bodies[0]);
    json_t *al = json_array_get(arr, 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(al, "labels"),
                                                       "alertname")), "Disk");
    cr_assert_str_eq(json_string_value(json_object_get(al, "generatorURL")),
                     "http://vigil.test/graph");
    cr_assert_not_null(json_object_get(al, "startsAt"));
    cr_assert_not_null(json_object_get(al, "endsAt"));
    cr_assert_str_eq(f.am.paths[0], "/api/v2/alerts");
    json_decref(arr);

    cr_assert_eq(sink_wait(&f.ok, 1, 3000), 1, "delivered while /hang hangs");
    cr_assert_eq(sink_wait(&f.slack, 1, 3000), 1);
    cr_assert_eq(sink_wait(&f.flaky, 1, 3000), 1, "delivered after two failures");
    cr_assert_eq(f.flaky.requests, 3);
    json_t *wh = json_loads(f.ok.bodies[0], 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(wh, "receiver")), "all");
    cr_assert_str_eq(json_string_value(json_object_get(wh, "externalURL")), "http://vigil.test");
    cr_assert_str_eq(json_string_value(json_object_get(wh, "groupKey")), "{}:{alertname=\"Disk\"}");
    json_decref(wh);
    json_t *sl = json_loads(f.slack.bodies[0], 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(sl, "channel")), "#ops");
    json_decref(sl);

    struct vg_buf b;
    vg_buf_init(&b);
    usleep(400000);
    notifier_status_json(f.n, 0, &b);
    json_t *st = json_loads(vg_buf_cstr(&b), 0, NULL);
    cr_assert_not_null(st, "%s", b.p);
    json_t *att = json_object_get(st, "attempts");
    size_t ok = 0, retry = 0, timeouts = 0;
    for (size_t i = 0; i < json_array_size(att); i++) {
        json_t *e = json_array_get(att, i);
        const char *s = json_string_value(json_object_get(e, "status"));
        ok += !strcmp(s, "success");
        retry += !strcmp(s, "retry");
        timeouts += strstr(json_string_value(json_object_get(e, "error")), "timed out") != NULL;
    }
    cr_assert_geq(ok, 4, "AM, ok, flaky, slack: %s", b.p);
    cr_assert_geq(retry, 3, "flaky twice, hang at least once: %s", b.p);
    cr_assert_geq(timeouts, 1);
    cr_assert_eq(json_array_size(json_object_get(st, "queues")), 5);
    cr_assert_eq(json_integer_value(json_object_get(st, "groups")), 1);
    json_decref(st);
    vg_buf_reset(&b);
    metrics_render(f.m, &b);
    cr_assert(strstr(vg_buf_cstr(&b), "prometheus_notifications_sent_total{alertmanager=\"http://127.0.0.1:"),
              "%s", b.p);
    cr_assert(strstr(b.p, "vigil_notifications_sent_total{receiver=\"all\",integration=\"webhook[0]\"} 1"),
              "%s", b.p);
    cr_assert(strstr(b.p, "vigil_notifications_failed_total{receiver=\"all\",integration=\"webhook[1]\"} 2"));
    vg_buf_free(&b);
    nf_close(&f);
}

Test(notify, silenced_alerts_skip_builtin_receivers)
{
    struct nf f;
    nf_open(&f);
    char id[64];
    struct vg_err err;
    const char *sil = "{\"matchers\":[{\"name\":\"alertname\",\"value\":\"Quiet\"}],"
                      "\"endsAt\":\"2099-01-01T00:00:00Z\",\"createdBy\":\"t\",\"comment\":\"c\"}";
    cr_assert_eq(notifier_silence_create(f.n, sil, strlen(sil), id, &err), 0, "%s", err.msg);
    struct label q[] = { L("alertname", "Quiet") };
    struct label l[] = { L("alertname", "Loud") };
    fire(&f, q, 1);
    fire(&f, l, 1);
    cr_assert_eq(sink_wait(&f.ok, 1, 3000), 1);
    usleep(300000);
    cr_assert_eq(sink_count(&f.ok), 1, "only Loud");
    cr_assert(strstr(f.ok.bodies[0], "Loud"));
    cr_assert_geq(sink_wait(&f.am, 1, 3000), 1);
    cr_assert(strstr(f.am.bodies[0], "Quiet"), "Alertmanager silences on its own");
    struct vg_buf b;
    vg_buf_init(&b);
    notifier_silences_json(f.n, &b);
    cr_assert(strstr(vg_buf_cstr(&b), id));
    vg_buf_free(&b);
    cr_assert_eq(notifier_silence_expire(f.n, id, &err), 0);
    cr_assert_eq(notifier_silence_expire(f.n, id, &err), VG_ECONFLICT);
    nf_close(&f);
}

Test(notify, pending_notifications_survive_a_restart)
{
    struct nf f;
    nf_open(&f);
    struct label a[] = { L("alertname", "Held") };
    fire(&f, a, 1);
    cr_assert_eq(sink_wait(&f.ok, 1, 3000), 1);
    usleep(200000); /* the /hang item is queued and persisted, never delivered */
    notifier_free(f.n);
    f.n = NULL;
    pthread_mutex_lock(&f.hang.mu);
    f.hang.hang = false;
    pthread_mutex_unlock(&f.hang.mu);
    nf_start(&f);
    cr_assert_geq(sink_wait(&f.hang, 1, 3000), 1, "re-delivered after the restart");
    cr_assert(strstr(f.hang.bodies[0], "Held"));
    usleep(300000);
    cr_assert_eq(sink_count(&f.ok), 1, "the notification log: no duplicate to /ok");
    nf_close(&f);
}

Test(notify, config_errors)
{
    struct vg_err err;
    const char *y = "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['nohost']}]\n";
    struct config *c = config_load_buf("x.yml", y, strlen(y), &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(notifier_check_config(c, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "x.yml:3: alerting.alertmanagers[0].static_configs[0].targets[0]: "
                              "\"nohost\" is not host:port"), "%s", err.msg);
    config_free(c);
    y = "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['h:1']}]\n"
        "      api_version: v1\n";
    c = config_load_buf("x.yml", y, strlen(y), &err);
    cr_assert_eq(notifier_check_config(c, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "x.yml:4: alerting.alertmanagers[0].api_version: \"v1\" is not "
                              "supported"), "%s", err.msg);
    config_free(c);
    y = "notifications:\n  route: {receiver: m}\n  receivers:\n    - name: m\n"
        "      email_configs: [{to: 'nobody', from: a@b, smarthost: 'h:25'}]\n";
    c = config_load_buf("x.yml", y, strlen(y), &err);
    cr_assert_eq(notifier_check_config(c, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "notifications.receivers[0].email_configs[0].to: \"nobody\" is not "
                              "an e-mail address"), "%s", err.msg);
    config_free(c);
    c = config_default();
    cr_assert_eq(notifier_check_config(c, &err), 0, "no sections: nothing to check");
    config_free(c);
}

Test(notify, no_sections_still_runs)
{
    char dir[] = "/tmp/vigil-notify-empty-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char state[96];
    snprintf(state, sizeof state, "%s/notify", dir);
    struct config *c = config_default();
    struct vg_err err;
    struct notifier *n = notifier_new(c, state, NULL, &err);
    cr_assert_not_null(n, "%s", err.msg);
    struct label a[] = { L("alertname", "X") };
    struct alert al = { .labels = a, .nlabels = 1, .starts_at_ms = 1, .ends_at_ms = 2 };
    notifier_send(n, &al, 1);
    notifier_tick(n, now_ms());
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    notifier_free(n); /* wakes the ticker from its 1 s (default tick) sleep */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(took, 0.5, "free waited out the tick: %.3f s", took);
    notifier_free(NULL);
    config_free(c);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
