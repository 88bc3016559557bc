/* Tests server/rules/alertmanager.c: the PostableAlert JSON, the endpoint URL built
 * from scheme, target and path_prefix, batching up to 64 alerts per POST, Prometheus's
 * HTTP client keys (basic_auth, authorization, bearer_token, their _file forms,
 * tls_config, timeout), alert_relabel_configs (global and per Alertmanager), and config
 * errors with file:line. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../server/rules/alertmanager.h"
#include "../../../../server/rules/history.h"
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
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      api_version: v1\n",
          "a.yml:4: alerting.alertmanagers[0].api_version: \"v1\" is not supported (only v2" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      basic_auth: {username: u, password: p}\n      bearer_token: t\n",
          "at most one of basic_auth, authorization and bearer_token(_file)" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      basic_auth: {username: u, password: p, password_file: /etc/hostname}\n",
          "basic_auth: at most one of password and password_file" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      basic_auth: {password: p}\n",
          "a.yml:4: alerting.alertmanagers[0].basic_auth.username: required" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      basic_auth: {username: u, password_file: /nonexistent/pw}\n",
          "basic_auth.password_file: cannot read \"/nonexistent/pw\"" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      authorization: {type: Basic, credentials: x}\n",
          "authorization.type: \"Basic\" is not allowed here, use basic_auth" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      authorization: {credentials: x, credentials_file: /etc/hostname}\n",
          "authorization: at most one of credentials and credentials_file" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      bearer_token: a\n      bearer_token_file: /etc/hostname\n",
          "at most one of bearer_token and bearer_token_file" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      tls_config: {cert_file: /etc/hostname}\n",
          "tls_config: cert_file and key_file go together" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      tls_config: {ca_file: /nonexistent/ca.pem}\n",
          "a.yml:4: alerting.alertmanagers[0].tls_config.ca_file: cannot read" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      tls_config: {min_version: TLS9}\n", "min_version: \"TLS9\" is not TLS10" },
        { "alerting:\n  alertmanagers:\n    - static_configs: [{targets: [h:1]}]\n"
          "      alert_relabel_configs: [{action: bogus}]\n",
          "alerting.alertmanagers[0].alert_relabel_configs[0]" },
        { "alerting:\n  alert_relabel_configs: [{action: hashmod, target_label: x}]\n",
          "alerting.alert_relabel_configs[0]" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct vg_err err;
        struct config *c = config_load_buf("a.yml", bad[i][0], strlen(bad[i][0]), &err);
        cr_assert_not_null(c, "%s", err.msg);
        cr_assert_eq(alertmanager_check(config_block(c, "alerting"), &err), VG_EINVAL, "%zu", i);
        cr_assert(strstr(err.msg, bad[i][1]), "[%s] lacks [%s]", err.msg, bad[i][1]);
        config_free(c);
    }
}

/* Starts the client on config text y (with "%u" for the sink's port, used up to 3 times). */
static struct alertmanagers *am_start(const char *y, unsigned port, struct config **c)
{
    char text[2048];
    snprintf(text, sizeof text, y, port, port, port);
    struct vg_err err;
    *c = config_load_buf("a.yml", text, strlen(text), &err);
    cr_assert_not_null(*c, "%s", err.msg);
    cr_assert_eq(alertmanager_check(config_block(*c, "alerting"), &err), 0, "%s", err.msg);
    static const struct route_delivery d = { .initial_backoff_ms = 10, .max_backoff_ms = 10,
                                             .max_attempts = 2 };
    static _Atomic uint64_t seq = 1;
    struct alertmanagers *am = alertmanagers_new(config_block(*c, "alerting"), &d, NULL, &seq,
                                                 NULL, NULL, &err);
    cr_assert_not_null(am, "%s", err.msg);
    return am;
}

static void send_one(struct alertmanagers *am)
{
    struct label ls[] = { L("alertname", "X"), L("env", "prod"), L("secret", "s") };
    struct alert a = { ls, 3, NULL, 0, 1, 2, "" };
    alertmanagers_send(am, &a, 1, 0);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* The Authorization header of the one POST made for one alert with config y (caller frees). */
static char *auth_seen(const char *y)
{
    struct sink s;
    sink_start(&s);
    struct config *c;
    struct alertmanagers *am = am_start(y, s.port, &c);
    send_one(am);
    cr_assert_eq(sink_wait(&s, 1, 3000), 1);
    char *auth = strdup(s.auths[0]);
    alertmanagers_free(am);
    config_free(c);
    sink_stop(&s);
    return auth;
}

Test(alertmanager, basic_auth_header)
{
    char *a = auth_seen(
        "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "      basic_auth: {username: alice, password: 's3cret'}\n");
    cr_assert_str_eq(a, "Basic YWxpY2U6czNjcmV0"); /* base64("alice:s3cret") */
    free(a);
}

Test(alertmanager, secrets_from_files_are_read_per_request)
{
    char dir[] = "/tmp/vg-am-XXXXXX", pw[64], tok[64], y[512];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(pw, sizeof pw, "%s/pw", dir);
    snprintf(tok, sizeof tok, "%s/tok", dir);
    write_file(pw, "  s3cret\n");
    write_file(tok, "tok-1\n");
    struct sink s;
    sink_start(&s);
    snprintf(y, sizeof y,
             "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:%%u']}]\n"
             "      basic_auth: {username: alice, password_file: '%s'}\n"
             "    - static_configs: [{targets: ['localhost:%%u']}]\n"
             "      bearer_token_file: '%s'\n", pw, tok);
    struct config *c;
    struct alertmanagers *am = am_start(y, s.port, &c);
    send_one(am);
    cr_assert_eq(sink_wait(&s, 2, 3000), 2);
    /* the two targets post in either order */
    bool basic = false, bearer = false;
    for (int i = 0; i < 2; i++) {
        basic |= !strcmp(s.auths[i], "Basic YWxpY2U6czNjcmV0"); /* trimmed, as Prometheus */
        bearer |= !strcmp(s.auths[i], "Bearer tok-1");
    }
    cr_assert(basic && bearer, "[%s] [%s]", s.auths[0], s.auths[1]);
    write_file(tok, "tok-2");
    send_one(am);
    cr_assert_eq(sink_wait(&s, 4, 3000), 4);
    cr_assert(!strcmp(s.auths[2], "Bearer tok-2") || !strcmp(s.auths[3], "Bearer tok-2"),
              "a rotated token is used: [%s] [%s]", s.auths[2], s.auths[3]);
    alertmanagers_free(am);
    config_free(c);
    sink_stop(&s);
    unlink(pw);
    unlink(tok);
    rmdir(dir);
}

Test(alertmanager, authorization_header)
{
    struct sink s;
    sink_start(&s);
    struct config *c;
    struct alertmanagers *am = am_start(
        "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "      authorization: {type: Token, credentials: abc}\n"
        "    - static_configs: [{targets: ['localhost:%u']}]\n"
        "      authorization: {credentials: xyz}\n"
        "    - static_configs: [{targets: ['[::1]:1']}]\n"
        "      bearer_token: t\n", s.port, &c);
    cr_assert_eq(alertmanagers_count(am), 3);
    send_one(am);
    cr_assert_eq(sink_wait(&s, 2, 3000), 2);
    bool token = false, bearer = false;
    for (int i = 0; i < 2; i++) {
        token |= !strcmp(s.auths[i], "Token abc");
        bearer |= !strcmp(s.auths[i], "Bearer xyz"); /* type defaults to Bearer */
    }
    cr_assert(token && bearer, "[%s] [%s]", s.auths[0], s.auths[1]);
    alertmanagers_free(am);
    config_free(c);
    sink_stop(&s);
}

Test(alertmanager, no_auth_no_header)
{
    char *a = auth_seen(
        "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "      timeout: 2s\n      scheme: http\n      api_version: v2\n");
    cr_assert_str_eq(a, "");
    free(a);
}

Test(alertmanager, tls_to_a_plain_server_fails)
{
    /* scheme https with a full tls_config against the plain-text sink: the config is
     * accepted, the client really speaks TLS (the sink never sees an HTTP request), and
     * nothing is sent in clear text. A TLS peer with a CA file and server_name is
     * exercised end to end by tests/integration/alertmanager_client_options.sh. */
    struct sink s;
    sink_start(&s);
    struct config *c;
    struct alertmanagers *am = am_start(
        "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "      scheme: https\n      timeout: 1s\n"
        "      tls_config: {ca_file: /etc/hostname, insecure_skip_verify: true,\n"
        "                   server_name: am.example}\n", s.port, &c);
    send_one(am);
    usleep(300000);
    cr_assert_eq(sink_count(&s), 0, "no plain-text request reached the sink");
    alertmanagers_free(am);
    config_free(c);
    sink_stop(&s);
}

Test(alertmanager, alert_relabel_configs)
{
    struct sink s, s2;
    sink_start(&s);
    sink_start(&s2);
    char y[1024];
    snprintf(y, sizeof y,
             "alerting:\n"
             "  alert_relabel_configs:\n"
             "    - {action: labeldrop, regex: secret}\n"
             "  alertmanagers:\n"
             "    - static_configs: [{targets: ['127.0.0.1:%%u']}]\n"
             "      alert_relabel_configs:\n"
             "        - {source_labels: [env], target_label: stage, replacement: 'is-$1'}\n"
             "        - {action: drop, source_labels: [alertname], regex: Noisy}\n"
             "    - static_configs: [{targets: ['127.0.0.1:%u']}]\n", s2.port);
    struct config *c;
    struct alertmanagers *am = am_start(y, s.port, &c);
    struct label l1[] = { L("alertname", "Noisy"), L("env", "prod") };
    struct label l2[] = { L("alertname", "X"), L("env", "prod"), L("secret", "s") };
    struct alert as[] = { { l1, 2, NULL, 0, 1, 2, "" }, { l2, 3, NULL, 0, 1, 2, "" } };
    alertmanagers_send(am, as, 2, 0);
    cr_assert_geq(sink_wait(&s2, 1, 3000), 1);
    cr_assert_eq(sink_wait(&s, 1, 3000), 1);
    usleep(300000);
    json_t *got = json_loads(s.bodies[0], 0, NULL);
    for (int i = 1; i < sink_count(&s); i++) { /* the two may come in separate batches */
        json_t *more = json_loads(s.bodies[i], 0, NULL);
        json_array_extend(got, more);
        json_decref(more);
    }
    cr_assert_eq(json_array_size(got), 1, "Noisy dropped for the first: %s", s.bodies[0]);
    json_t *ls = json_object_get(json_array_get(got, 0), "labels");
    cr_assert_str_eq(json_string_value(json_object_get(ls, "stage")), "is-prod");
    cr_assert_null(json_object_get(ls, "secret"), "the global labeldrop ran");
    json_decref(got);
    size_t total = 0;
    for (int i = 0; i < sink_count(&s2); i++) {
        json_t *a = json_loads(s2.bodies[i], 0, NULL);
        total += json_array_size(a);
        for (size_t k = 0; k < json_array_size(a); k++) {
            json_t *l = json_object_get(json_array_get(a, k), "labels");
            cr_assert_null(json_object_get(l, "stage"), "rules of one entry stay with it");
            cr_assert_null(json_object_get(l, "secret"));
        }
        json_decref(a);
    }
    cr_assert_eq(total, 2, "the second Alertmanager gets both");
    alertmanagers_free(am);
    config_free(c);
    sink_stop(&s);
    sink_stop(&s2);
}

Test(alertmanager, allocation_failure_is_reported_without_leaks)
{
    const char *y =
        "alerting:\n  alert_relabel_configs: [{action: labeldrop, regex: x}]\n"
        "  alertmanagers:\n    - static_configs: [{targets: ['h:1', 'h:2']}]\n"
        "      basic_auth: {username: u, password: p}\n"
        "      tls_config: {server_name: am, insecure_skip_verify: true}\n"
        "      alert_relabel_configs: [{source_labels: [a], target_label: b}]\n"
        "    - static_configs: [{targets: ['h:3']}]\n"
        "      authorization: {credentials: c}\n";
    struct vg_err err;
    struct config *c = config_load_buf("a.yml", y, strlen(y), &err);
    cr_assert_not_null(c, "%s", err.msg);
    size_t live = vg_alloc_live_bytes();
    bool saw_oom = false, ok = false;
    for (uint64_t k = 1; k < 400 && !ok; k++) {
        vg_alloc_fail_after(k);
        int rc = alertmanager_check(config_block(c, "alerting"), &err);
        vg_alloc_fail_after(0);
        ok = rc == 0;
        saw_oom |= rc == VG_ENOMEM;
        cr_assert(rc == 0 || rc == VG_ENOMEM, "%d: %s", rc, err.msg);
        cr_assert_eq(vg_alloc_live_bytes(), live, "nothing leaks after failure %llu",
                     (unsigned long long)k);
    }
    cr_assert(saw_oom && ok);
    config_free(c);
}

Test(alertmanager, timeout_and_missing_secret_show_in_history)
{
    char dir[] = "/tmp/vg-am-XXXXXX", pw[64], y[512];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(pw, sizeof pw, "%s/pw", dir);
    write_file(pw, "x");
    struct sink s;
    sink_start(&s);
    s.hang = true;
    snprintf(y, sizeof y,
             "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:%u']}]\n"
             "      timeout: 200ms\n"
             "    - static_configs: [{targets: ['localhost:1']}]\n"
             "      basic_auth: {username: u, password_file: '%s'}\n", s.port, pw);
    struct vg_err err;
    struct config *c = config_load_buf("a.yml", y, strlen(y), &err);
    cr_assert_not_null(c, "%s", err.msg);
    struct history *h = history_new(NULL, 100, &err);
    struct route_delivery d = { .initial_backoff_ms = 10, .max_backoff_ms = 10,
                                .max_attempts = 1 };
    _Atomic uint64_t seq = 1;
    struct alertmanagers *am = alertmanagers_new(config_block(c, "alerting"), &d, NULL, &seq, h,
                                                 NULL, &err);
    cr_assert_not_null(am, "%s", err.msg);
    unlink(pw); /* readable at start, gone at send time */
    send_one(am);
    struct vg_buf b;
    vg_buf_init(&b);
    for (int waited = 0; waited < 3000 && history_len(h) < 2; waited += 10)
        usleep(10000);
    history_json(h, 0, &b);
    cr_assert(strstr(vg_buf_cstr(&b), "timed out after 200 ms"), "%s", vg_buf_cstr(&b));
    cr_assert(strstr(vg_buf_cstr(&b), "cannot read"), "%s", vg_buf_cstr(&b));
    vg_buf_free(&b);
    alertmanagers_free(am);
    history_free(h);
    config_free(c);
    pthread_mutex_lock(&s.mu);
    s.hang = false;
    pthread_mutex_unlock(&s.mu);
    sink_stop(&s);
    rmdir(dir);
}
