/* Tests server/api/status_config.c: which key names are secrets, URL credentials, the
 * YAML of a config holding every kind of secret (each masked, none of the values left
 * anywhere in the output, file paths shown), quoting of strings that YAML would read as
 * something else, nested lists, and that the output loads back (with config_load_buf,
 * i.e. libyaml) to the same trees and the same effective values. Then the route through
 * the server fixture: Prometheus's envelope, secrets masked, errors with their reason,
 * and allocation failure (an error, never a secret). */
#include "../fixture.h"

#include "../../../../server/api/status_config.h"
#include "../../../../server/config_node.h"

#include <jansson.h>

/* ---- names and URLs ---- */

Test(status_config, secret_key_names)
{
    static const char *const secret[] = {
        "password", "auth_password", "priv_password", "basic_auth_password", "PassWord",
        "passwd", "client_secret", "secret", "secrets", "bearer_token", "token", "auth_token",
        "X-Auth-Token", "api_key", "x-api-key", "ApiKey", "credentials", "aws_credentials",
        "passphrase", "auth_passphrase", "community", "api_url", "webhook_url",
        "Authorization", "cookie",
    };
    static const char *const not_secret[] = {
        "password_file", "bearer_token_file", "credentials_file", "client_secret_file",
        "secret_files", "token_url", "url", "username", "auth_username", "auth_protocol",
        "priv_protocol", "key_file", "key", "type", "basic_auth", "external_url",
        "job_name", "", "security_level",
    };
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++)
        cr_assert(status_config_secret_key(secret[i]), "%s is a secret", secret[i]);
    for (size_t i = 0; i < sizeof not_secret / sizeof not_secret[0]; i++)
        cr_assert_not(status_config_secret_key(not_secret[i]), "%s is no secret", not_secret[i]);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memcpy(longname + 10, "token", 5);
    cr_assert(status_config_secret_key(longname), "long names are judged too");
}

static const char *masked_url(const char *in)
{
    static char out[512];
    struct vg_buf b;
    vg_buf_init(&b);
    bool changed = status_config_mask_url(in, &b);
    snprintf(out, sizeof out, "%s", changed ? vg_buf_cstr(&b) : "(unchanged)");
    vg_buf_free(&b);
    return out;
}

Test(status_config, url_credentials)
{
    cr_assert_str_eq(masked_url("https://alice:s3cr3t@hooks.example.com/x?y=1"),
                     "https://alice:<secret>@hooks.example.com/x?y=1");
    cr_assert_str_eq(masked_url("http://ghp_tok@example.com"), "http://<secret>@example.com");
    cr_assert_str_eq(masked_url("http://u:p@a@h:80/"), "http://u:<secret>@h:80/",
                     "the last @ ends the userinfo");
    cr_assert_str_eq(masked_url("http://h/p?x=1&token=abc&api_key=k#frag"),
                     "http://h/p?x=1&token=<secret>&api_key=<secret>#frag");
    cr_assert_str_eq(masked_url("http://u:p@h/?access_token=t"),
                     "http://u:<secret>@h/?access_token=<secret>");
    cr_assert_str_eq(masked_url("http://h/p#a?token=x"), "(unchanged)",
                     "a fragment is not a query");
    cr_assert_str_eq(masked_url("http://h/p?token="), "(unchanged)", "empty stays empty");
    cr_assert_str_eq(masked_url("http://h/a@b"), "(unchanged)", "an @ in the path is no userinfo");
    cr_assert_str_eq(masked_url("http://@h/"), "(unchanged)");
    cr_assert_str_eq(masked_url("http://127.0.0.1:9090/metrics"), "(unchanged)");
    cr_assert_str_eq(masked_url("user:pass@host"), "(unchanged)", "no scheme, no URL");
    cr_assert_str_eq(masked_url(""), "(unchanged)");
    cr_assert_str_eq(masked_url("1http://u:p@h"), "(unchanged)");
}

/* ---- the YAML ---- */

static struct config *load(const char *yaml)
{
    struct vg_err err;
    struct config *c = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(c, "%s", err.msg);
    return c;
}

/* status_config_yaml of c, vg_malloc'd (caller frees). */
static char *yaml_of(const struct config *c)
{
    struct vg_buf b;
    vg_buf_init(&b);
    struct vg_err err;
    cr_assert_eq(status_config_yaml(c, &b, &err), 0, "%s", err.msg);
    char *s = vg_buf_steal(&b, NULL);
    cr_assert_not_null(s);
    return s;
}

static const char *const secrets_doc =
    "server:\n"
    "  http_addr: 127.0.0.1:4318\n"
    "scrape_configs:\n"
    "  - job_name: node\n"
    "    basic_auth: {username: prom, password: SECRET-basic}\n"
    "    static_configs: [{targets: ['a:1', 'b:2']}]\n"
    "  - job_name: api\n"
    "    bearer_token: SECRET-bearer\n"
    "    authorization: {type: Bearer, credentials: SECRET-cred}\n"
    "    oauth2: {client_id: cid, client_secret: SECRET-oauth, token_url: 'https://idp/token'}\n"
    "  - job_name: files\n"
    "    basic_auth: {username: u, password_file: /etc/vigil/pass}\n"
    "    bearer_token_file: /etc/vigil/token\n"
    "    http_headers: {X-Api-Key: {secrets: [SECRET-h1, SECRET-h2]}}\n"
    "notifications:\n"
    "  route: {receiver: team}\n"
    "  receivers:\n"
    "    - name: team\n"
    "      slack_configs:\n"
    "        - api_url: https://hooks.slack.com/services/T0/B0/SECRET-slack\n"
    "          channel: '#alerts'\n"
    "      webhook_configs:\n"
    "        - url: http://bob:SECRET-hook@127.0.0.1:9/hook\n"
    "        - url: http://127.0.0.1:9/plain\n"
    "      email_configs:\n"
    "        - to: ops@example.com\n"
    "          smarthost: 'smtp:25'\n"
    "          auth_username: ops\n"
    "          auth_password: SECRET-smtp\n"
    "snmp:\n"
    "  devices:\n"
    "    - name: sw1\n"
    "      address: 10.0.0.1\n"
    "      community: SECRET-community\n"
    "      v3:\n"
    "        username: mon\n"
    "        auth_protocol: SHA\n"
    "        auth_password: SECRET-auth\n"
    "        priv_password: SECRET-priv\n"
    "jmx:\n"
    "  targets:\n"
    "    - url: http://127.0.0.1:8778/jolokia\n"
    "      username: j\n"
    "      password: SECRET-jmx\n"
    "probes:\n"
    "  http:\n"
    "    - target: 'http://127.0.0.1/?api_key=SECRET-query'\n"
    "      headers: {Authorization: Bearer SECRET-header}\n"
    "      empty_password: ''\n";

Test(status_config, every_secret_is_masked)
{
    struct config *c = load(secrets_doc);
    char *y = yaml_of(c);
    cr_assert_null(strstr(y, "SECRET-"), "a secret value leaked:\n%s", y);
    static const char *const shown[] = {
        "# source: t.yml\n",
        "password: <secret>",
        "bearer_token: <secret>",
        "credentials: <secret>",
        "type: Bearer",
        "client_secret: <secret>",
        "token_url: 'https://idp/token'",
        "client_id: cid",
        "password_file: /etc/vigil/pass",
        "bearer_token_file: /etc/vigil/token",
        "api_url: <secret>",
        "url: http://bob:<secret>@127.0.0.1:9/hook",
        "url: http://127.0.0.1:9/plain",
        "auth_password: <secret>",
        "auth_username: ops",
        "community: <secret>",
        "priv_password: <secret>",
        "auth_protocol: SHA",
        "target: 'http://127.0.0.1/?api_key=<secret>'",
        "Authorization: <secret>",
        "empty_password: ''",
        "channel: '#alerts'",
        "username: prom",
    };
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        cr_assert_not_null(strstr(y, shown[i]), "missing \"%s\" in:\n%s", shown[i], y);
    /* A list under a secret key: each item masked. */
    const char *l = strstr(y, "secrets:\n");
    cr_assert_not_null(l);
    l = strchr(l, '\n') + 1;
    const char *l2 = strchr(l, '\n') + 1;
    cr_assert(!strncmp(l + strspn(l, " "), "- <secret>\n", 11) &&
              !strncmp(l2 + strspn(l2, " "), "- <secret>\n", 11), "%s", l);
    vg_free(y);
    config_free(c);
}

static void same_tree(const struct config_node *a, const struct config_node *b, const char *where)
{
    cr_assert_eq(a->type, b->type, "%s: type", where);
    cr_assert_eq(a->n, b->n, "%s: size", where);
    if (a->type == CONFIG_NODE_SCALAR) {
        cr_assert_str_eq(a->value, b->value, "%s", where);
        if (a->quoted && !strchr(a->value, '\n'))
            cr_assert(b->quoted, "%s: %s stays quoted", where, a->value);
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->type == CONFIG_NODE_MAP)
            cr_assert_str_eq(a->keys[i], b->keys[i], "%s: key %zu", where, i);
        char w[256];
        snprintf(w, sizeof w, "%s/%s", where, a->type == CONFIG_NODE_MAP ? a->keys[i] : "[]");
        same_tree(a->items[i], b->items[i], w);
    }
}

Test(status_config, block_names_cover_every_section)
{
    size_t n = 0;
    while (config_block_name(n))
        n++;
    cr_assert_geq(n, 12);
    cr_assert_leq(n, CONFIG_MAX_BLOCKS);
    cr_assert_null(config_block_name(CONFIG_MAX_BLOCKS));
    /* Every name is a section the loader keeps, and written back under that name. */
    for (size_t i = 0; i < n; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "%s: {k: v}\n", config_block_name(i));
        struct config *c = load(doc);
        cr_assert_not_null(config_block(c, config_block_name(i)), "%s", config_block_name(i));
        char *y = yaml_of(c);
        snprintf(doc, sizeof doc, "\n%s:\n  k: v\n", config_block_name(i));
        cr_assert_not_null(strstr(y, doc), "%s", y);
        vg_free(y);
        config_free(c);
    }
}

/* The output of c loads back to the same key values and the same trees. */
static void round_trips(const struct config *c)
{
    char *y = yaml_of(c);
    struct vg_err err;
    struct config *back = config_load_buf("back.yml", y, strlen(y), &err);
    cr_assert_not_null(back, "%s in:\n%s", err.msg, y);
    struct vg_buf d1, d2;
    vg_buf_init(&d1);
    vg_buf_init(&d2);
    config_dump(c, &d1);
    config_dump(back, &d2);
    const char *s1 = strchr(vg_buf_cstr(&d1), '\n'), *s2 = strchr(vg_buf_cstr(&d2), '\n');
    cr_assert_str_eq(s1, s2, "the key sections read back the same");
    for (size_t i = 0; config_block_name(i); i++) {
        const char *name = config_block_name(i);
        const struct config_node *a = config_block(c, name), *b = config_block(back, name);
        cr_assert_eq(a == NULL, b == NULL, "%s present in both or neither", name);
        if (a)
            same_tree(a, b, name);
    }
    /* Written again, it is the same text (after the source comment). */
    char *y2 = yaml_of(back);
    cr_assert_str_eq(strchr(y, '\n'), strchr(y2, '\n'));
    vg_buf_free(&d1);
    vg_buf_free(&d2);
    vg_free(y);
    vg_free(y2);
    config_free(back);
}

Test(status_config, special_strings_are_quoted_and_round_trip)
{
    struct config *c = load(
        "storage:\n"
        "  data_dir: '/var/lib/vigil: #1'\n"
        "  retention: 90m\n"
        "  log_retention: 0\n"
        "syslog:\n"
        "  labels: [hostname, 'app name', 'a,b']\n"
        "otlp:\n"
        "  promote_resource_attributes: []\n"
        "global:\n"
        "  external_labels:\n"
        "    quoted_bool: 'true'\n"
        "    plain_bool: true\n"
        "    quoted_num: '0123'\n"
        "    plain_num: 1.5\n"
        "    null_looking: 'null'\n"
        "    tilde: '~'\n"
        "    empty_quoted: ''\n"
        "    colon: 'a: b'\n"
        "    hash: '#not a comment'\n"
        "    star: '*alias'\n"
        "    amp: '&anchor'\n"
        "    bang: '!tag'\n"
        "    dash: '- item'\n"
        "    brackets: '[x]'\n"
        "    braces: '{y}'\n"
        "    quotes: \"it's \\\"q\\\"\"\n"
        "    backslash: 'C:\\dir\\'\n"
        "    lead_space: '  x'\n"
        "    trail_space: 'x  '\n"
        "    tab: \"a\\tb\"\n"
        "    unicode: 'héllo ✓'\n"
        "    multiline: \"line one\\nline two\\n\"\n"
        "    keep_trailing: \"l1\\n\\n\"\n"
        "    cr: \"a\\rb\"\n"
        "    percent: '%x'\n"
        "    at: '@x'\n"
        "    backtick: '`x'\n"
        "    pipe: '|'\n"
        "    gt: '>'\n"
        "    question: '? x'\n"
        "    long: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'\n"
        "    'key: with colon': v\n"
        "    '': empty key\n"
        "    nothing:\n"
        "rule_files: ['r/*.yml', \"s.yml\"]\n"
        "scrape_configs:\n"
        "  - job_name: nested\n"
        "    static_configs:\n"
        "      - targets: [a, [b, [c, []]], {}]\n"
        "        labels: {k: v}\n"
        "      - []\n"
        "      - - - deep\n"
        "  - job_name: second\n"
        "log_files: []\n"
        "statsd: {}\n");
    round_trips(c);
    char *y = yaml_of(c);
    static const char *const shown[] = {
        "  retention: 1h30m\n", "  log_retention: 0s\n", "  - app name\n",
        "  promote_resource_attributes: []\n", "quoted_bool: 'true'", "plain_bool: true",
        "null_looking: 'null'", "nothing:\n", "multiline: |\n", "statsd: {}",
        "log_files: []", "data_dir: '/var/lib/vigil: #1'",
    };
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        cr_assert_not_null(strstr(y, shown[i]), "missing \"%s\" in:\n%s", shown[i], y);
    vg_free(y);
    config_free(c);
}

Test(status_config, defaults_and_secrets_round_trip)
{
    struct config *c = config_default();
    cr_assert_not_null(c);
    round_trips(c);
    char *y = yaml_of(c);
    cr_assert_not_null(strstr(y, "# source: <embedded defaults>\nserver:\n  http_addr: 0.0.0.0:4318\n"), "%s", y);
    cr_assert_not_null(strstr(y, "  retention: 15d\n"), "%s", y);
    cr_assert_not_null(strstr(y, "  udp_addr: ''\n"), "empty strings stay strings:\n%s", y);
    cr_assert_not_null(strstr(y, "  labels:\n  - hostname\n"), "%s", y);
    vg_free(y);
    config_free(c);
    /* Masked, the secrets config still loads back; its secrets then read <secret>. */
    c = load(secrets_doc);
    char *m = yaml_of(c);
    struct vg_err err;
    struct config *back = config_load_buf("m.yml", m, strlen(m), &err);
    cr_assert_not_null(back, "%s", err.msg);
    const struct config_node *job = config_block(back, "scrape_configs")->items[0];
    cr_assert_str_eq(config_node_get(config_node_get(job, "basic_auth"), "password")->value,
                     "<secret>");
    config_free(back);
    vg_free(m);
    config_free(c);
}

/* Sets key to value (as a flag does) and expects status_config_yaml to fail with
 * VG_EINTERNAL and a message holding reason. */
static void refuses(struct config *c, const char *key, const char *value, const char *reason)
{
    struct vg_err err;
    cr_assert_eq(config_set(c, key, value, &err), 0, "%s", err.msg);
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_eq(status_config_yaml(c, &b, &err), VG_EINTERNAL);
    cr_assert_not_null(strstr(err.msg, reason), "%s", err.msg);
    vg_buf_free(&b);
}

Test(status_config, flags_override_and_bad_utf8_is_an_error)
{
    struct config *c = config_default();
    struct vg_err err;
    cr_assert_eq(config_set(c, "storage.retention", "2h", &err), 0);
    cr_assert_eq(config_set(c, "server.log_level", "debug", &err), 0);
    char *y = yaml_of(c);
    cr_assert_not_null(strstr(y, "  retention: 2h\n"), "%s", y);
    cr_assert_not_null(strstr(y, "  log_level: debug\n"), "%s", y);
    vg_free(y);
    refuses(c, "storage.data_dir", "/tmp/\xff\xfe", "not valid UTF-8");
    config_free(c);
}

Test(status_config, line_breaks_in_values_and_source)
{
    struct vg_err err;
    struct config *c = config_load_buf("we\nird.yml", "storage: {retention: 1h}\n", 24, &err);
    cr_assert_not_null(c, "%s", err.msg);
    char *y = yaml_of(c);
    static const char head[] = "# source: we?ird.yml\nserver:\n";
    cr_assert(!strncmp(y, head, sizeof head - 1), "%s", y);
    cr_assert_not_null(strstr(y, "  retention: 1h\n"), "%s", y);
    vg_free(y);
    /* A key value with a line break could pass for another key or section. */
    refuses(c, "server.log_level", "info\nevil:", "line break");
    config_free(c);
}

Test(status_config, node_on_its_own)
{
    struct config *c = load("alerting:\n  alertmanagers:\n    - basic_auth: {password: p}\n"
                            "      static_configs: [{targets: [h]}]\n");
    struct vg_buf b;
    vg_buf_init(&b);
    struct vg_err err;
    cr_assert_eq(status_config_node_yaml(config_block(c, "alerting"), &b, &err), 0, "%s", err.msg);
    cr_assert_str_eq(vg_buf_cstr(&b), "alertmanagers:\n"
                                      "- basic_auth:\n"
                                      "    password: <secret>\n"
                                      "  static_configs:\n"
                                      "  - targets:\n"
                                      "    - h\n");
    vg_buf_free(&b);
    config_free(c);
}

Test(status_config, allocation_failure_is_an_error)
{
    struct config *c = load(secrets_doc);
    bool failed = false, succeeded = false;
    for (uint64_t n = 1; n < 400 && !succeeded; n++) {
        struct vg_buf b;
        vg_buf_init(&b);
        struct vg_err err;
        vg_alloc_fail_after(n);
        int rc = status_config_yaml(c, &b, &err);
        vg_alloc_fail_after(0);
        if (rc < 0) {
            cr_assert_eq(rc, VG_ENOMEM, "%s", err.msg);
            failed = true;
        } else {
            succeeded = true;
        }
        if (vg_buf_cstr(&b))
            cr_assert_null(strstr(b.p, "SECRET-"), "no secret on failure (n=%llu)",
                           (unsigned long long)n);
        vg_buf_free(&b);
    }
    cr_assert(failed && succeeded);
    config_free(c);
}

/* ---- the route ---- */

static struct server_fixture fx;
static struct http_response resp;

static void setup(void)
{
    fixture_open(&fx);
    config_free(fx.cfg);
    fx.cfg = load(secrets_doc);
    fx.v.cfg = fx.cfg;
    memset(&resp, 0, sizeof resp);
}

static void teardown(void)
{
    vg_buf_free(&resp.body);
    fixture_close(&fx);
}

TestSuite(status_config_api, .init = setup, .fini = teardown, .timeout = 60);

static http_handler_fn route(void)
{
    cr_assert_eq(mod_status_config_api.nroutes, 1);
    cr_assert_str_eq(mod_status_config_api.routes[0].path, "/api/v1/status/config");
    cr_assert_str_eq(mod_status_config_api.routes[0].method, "GET");
    return mod_status_config_api.routes[0].fn;
}

Test(status_config_api, prometheus_shape_with_secrets_masked)
{
    fixture_call(&fx, route(), "/api/v1/status/config", NULL, 0, &resp);
    cr_assert_eq(resp.status, 200, "%s", resp.body.p);
    cr_assert_null(strstr(resp.body.p, "SECRET-"), "%s", resp.body.p);
    json_error_t je;
    json_t *j = json_loads(resp.body.p, 0, &je);
    cr_assert_not_null(j, "%s: %s", je.text, resp.body.p);
    cr_assert_str_eq(json_string_value(json_object_get(j, "status")), "success");
    cr_assert_eq(json_object_size(j), 2);
    json_t *data = json_object_get(j, "data");
    cr_assert_eq(json_object_size(data), 1);
    const char *y = json_string_value(json_object_get(data, "yaml"));
    cr_assert_not_null(y);
    char *want = yaml_of(fx.cfg);
    cr_assert_str_eq(y, want);
    cr_assert_not_null(strstr(y, "api_url: <secret>"));
    vg_free(want);
    json_decref(j);
}

Test(status_config_api, errors_carry_their_reason)
{
    struct vg_err err;
    cr_assert_eq(config_set(fx.cfg, "server.log_level", "\xc3", &err), 0);
    fixture_call(&fx, route(), "/api/v1/status/config", NULL, 0, &resp);
    cr_assert_eq(resp.status, 500, "%s", resp.body.p);
    cr_assert_not_null(strstr(resp.body.p, "\"status\":\"error\""), "%s", resp.body.p);
    cr_assert_not_null(strstr(resp.body.p, "not valid UTF-8"), "%s", resp.body.p);
    vg_buf_free(&resp.body);
    fx.v.cfg = NULL;
    fixture_call(&fx, route(), "/api/v1/status/config", NULL, 0, &resp);
    cr_assert_eq(resp.status, 500);
    cr_assert_not_null(strstr(resp.body.p, "no configuration loaded"), "%s", resp.body.p);
}

Test(status_config_api, allocation_failure)
{
    bool ok = false;
    for (uint64_t n = 1; n < 500 && !ok; n++) {
        vg_buf_free(&resp.body);
        fx.fail_after = n;
        bool complete = fixture_call(&fx, route(), "/api/v1/status/config", NULL, 0, &resp);
        cr_assert_null(strstr(resp.body.p, "SECRET-"), "n=%llu", (unsigned long long)n);
        if (complete && resp.status == 200)
            ok = true;
        else if (complete)
            cr_assert_eq(resp.status, 503, "n=%llu: %d %s", (unsigned long long)n,
                         resp.status, resp.body.p);
    }
    cr_assert(ok, "succeeds once allocations do");
}
