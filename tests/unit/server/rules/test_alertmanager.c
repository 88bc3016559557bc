/* Tests server/rules/alertmanager.c: the PostableAlert JSON, the endpoint URL built
 * from scheme, target and path_prefix, batching up to 64 alerts per POST, and config
 * errors with file:line. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../server/rules/alertmanager.h"
#include "sink.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }

Test(alertmanager, alert_json)
{
    struct label ls[] = { L("alertname", "X"), L("job", "a\"b") };
    struct label an[] = { L("summary", "s") };
    struct alert a = { ls, 2, an, 1, 1700000000000LL, 1700000240000LL, "http://g" };
    struct vg_buf b;
    vg_buf_init(&b);
    alertmanager_alert_json(&a, &b);
    cr_assert_str_eq(vg_buf_cstr(&b),
                     "{\"labels\":{\"alertname\":\"X\",\"job\":\"a\\\"b\"},\"annotations\":"
                     "{\"summary\":\"s\"},\"startsAt\":\"2023-11-14T22:13:20.000Z\",\"endsAt\":"
                     "\"2023-11-14T22:17:20.000Z\",\"generatorURL\":\"http://g\"}");
    vg_buf_reset(&b);
    struct alert z = { ls, 1, NULL, 0, 0, 0, NULL };
    alertmanager_alert_json(&z, &b);
    cr_assert_str_eq(vg_buf_cstr(&b), "{\"labels\":{\"alertname\":\"X\"},\"annotations\":{},"
                                      "\"generatorURL\":\"\"}", "no times when unknown");
    vg_buf_free(&b);
}

Test(alertmanager, batches_to_the_prefixed_endpoint)
{
    struct sink s;
    sink_start(&s);
    char y[512];
    snprintf(y, sizeof y,
             "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:%u', "
             "'127.0.0.1:%u']}]\n      path_prefix: am/\n", s.port, s.port);
    struct vg_err err;
    struct config *c = config_load_buf("a.yml", y, strlen(y), &err);
    cr_assert_eq(alertmanager_check(config_block(c, "alerting"), &err), 0, "%s", err.msg);
    struct route_delivery d = { .initial_backoff_ms = 10, .max_backoff_ms = 10,
                                .max_attempts = 3 };
    _Atomic uint64_t seq = 1;
    struct alertmanagers *am = alertmanagers_new(config_block(c, "alerting"), &d, NULL, &seq,
                                                 NULL, NULL, &err);
    cr_assert_not_null(am, "%s", err.msg);
    cr_assert_eq(alertmanagers_count(am), 1, "a target listed twice gets one queue");
    struct label ls[100][1];
    struct alert as[100];
    char names[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "a%d", i);
        ls[i][0] = (struct label){ VG_STR("alertname"), vg_str_c(names[i]) };
        as[i] = (struct alert){ ls[i], 1, NULL, 0, 1, 2, "" };
    }
    alertmanagers_send(am, as, 100, 0);
    /* The sender may take a batch before all 100 are queued, so wait for the alerts, not
     * for a number of POSTs: at least two, none over the batch size. */
    size_t total = 0;
    for (int waited = 0; waited < 3000; waited += 10) {
        total = 0;
        pthread_mutex_lock(&s.mu);
        for (int i = 0; i < s.n; i++) {
            json_t *arr = json_loads(s.bodies[i], 0, NULL);
            cr_assert(json_array_size(arr) <= ALERTMANAGER_BATCH);
            total += json_array_size(arr);
            json_decref(arr);
        }
        pthread_mutex_unlock(&s.mu);
        if (total >= 100)
            break;
        usleep(10000);
    }
    cr_assert_geq(sink_count(&s), 2);
    cr_assert_str_eq(s.paths[0], "/am/api/v2/alerts");
    cr_assert_eq(total, 100);
    alertmanagers_free(am);
    config_free(c);
    sink_stop(&s);
}

Test(alertmanager, config_errors)
{
    const char *bad[][2] = {
        { "alerting:\n  alertmanagers:\n    - scheme: ftp\n      static_configs: [{targets: [h:1]}]\n",
          "a.yml:3: alerting.alertmanagers[0].scheme: \"ftp\" is not http or https" },
        { "alerting:\n  alertmanagers:\n    - timeout: 10s\n",
          "a.yml:3: alerting.alertmanagers[0].static_configs: expected a non-empty list" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n      tls: x\n",
          "unknown key \"tls\"" },
        { "alerting:\n  queue_capacity: 0\n", "alerting.queue_capacity: 0 is out of range" },
        { "alerting:\n  alert_relabel_configs: []\n", "not supported by Vigil" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct vg_err err;
        struct config *c = config_load_buf("a.yml", bad[i][0], strlen(bad[i][0]), &err);
        cr_assert_not_null(c, "%s", err.msg);
        cr_assert_eq(alertmanager_check(config_block(c, "alerting"), &err), VG_EINVAL);
        cr_assert(strstr(err.msg, bad[i][1]), "[%s] lacks [%s]", err.msg, bad[i][1]);
        config_free(c);
    }
}
