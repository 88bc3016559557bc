/* Tests server/config.c: embedded defaults, YAML overlay, and the file:line errors a user
 * sees for unknown keys, wrong types and out-of-range values. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../server/config.h"

static struct config *load(const char *yaml, struct vg_err *err)
{
    return config_load_buf("t.yml", yaml, strlen(yaml), err);
}

Test(config, defaults_are_the_documented_ones)
{
    struct config *c = config_default();
    cr_assert_not_null(c);
    cr_assert_str_eq(c->http_addr, "0.0.0.0:4318");
    cr_assert_str_eq(c->grpc_addr, "0.0.0.0:4317");
    cr_assert_str_eq(c->data_dir, "./data");
    cr_assert_eq(c->retention_ms, 15LL * 86400 * 1000);
    cr_assert_eq(c->out_of_order_window_ms, 30LL * 60 * 1000);
    cr_assert_eq(c->log_retention_ms, 15LL * 86400 * 1000);
    cr_assert_eq(c->trace_retention_ms, 7LL * 86400 * 1000);
    cr_assert_eq(c->otlp_delta, OTLP_DELTA_REJECT);
    cr_assert(c->otlp_add_type_and_unit_suffixes);
    cr_assert_eq(c->fsync, CONFIG_FSYNC_PERIODIC, "logs fsynced in the background by default");
    cr_assert_eq(c->fsync_interval_ms, 1000);
    cr_assert_eq(c->otlp_npromote, 0);
    cr_assert_eq(c->otlp_delta_max_series, 100000);
    cr_assert_eq(c->otlp_delta_idle_timeout_ms, 3600LL * 1000);
    config_free(c);
}

Test(config, file_values_override_defaults)
{
    struct vg_err err;
    struct config *c = load("server:\n  http_addr: 127.0.0.1:9000\n"
                            "storage:\n  retention: 1h30m\n  data_dir: /tmp/x\n  fsync: false\n"
                            "limits:\n  max_body_bytes: 2MiB\n"
                            "otlp:\n  delta_temporality: accumulate\n"
                            "  promote_resource_attributes: [k8s.pod.name, cloud.region]\n",
                            &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_str_eq(c->http_addr, "127.0.0.1:9000");
    cr_assert_str_eq(c->grpc_addr, "0.0.0.0:4317");
    cr_assert_eq(c->retention_ms, 90LL * 60 * 1000);
    cr_assert_str_eq(c->data_dir, "/tmp/x");
    cr_assert_eq(c->fsync, CONFIG_FSYNC_NEVER, "the old false still means no fsync");
    cr_assert_eq(c->limits.max_body_bytes, 2LL * 1024 * 1024);
    cr_assert_eq(c->otlp_delta, OTLP_DELTA_ACCUMULATE);
    cr_assert_eq(c->otlp_npromote, 2);
    cr_assert_str_eq(c->otlp_promote_attrs[1], "cloud.region");
    config_free(c);
}

Test(config, unknown_key_names_file_line_and_valid_keys)
{
    struct vg_err err;
    struct config *c = load("server:\n  http_addr: 127.0.0.1:9000\n  htp_addr: x\n", &err);
    cr_assert_null(c);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, "t.yml:3: server.htp_addr: unknown key (valid keys: http_addr"),
              "%s", err.msg);
}

Test(config, unknown_section_is_an_error)
{
    struct vg_err err;
    cr_assert_null(load("storge:\n  retention: 1d\n", &err));
    cr_assert(strstr(err.msg, "t.yml:1: storge: unknown section"), "%s", err.msg);
}

Test(config, wrong_types_and_ranges_are_errors)
{
    struct vg_err err;
    cr_assert_null(load("storage:\n  retention: soon\n", &err));
    cr_assert(strstr(err.msg, "t.yml:2: storage.retention: not a valid duration"), "%s", err.msg);
    cr_assert_null(load("limits:\n  max_labels_per_series: 0\n", &err));
    cr_assert(strstr(err.msg, "t.yml:2: limits.max_labels_per_series: 0 is out of range"), "%s", err.msg);
    cr_assert_null(load("otlp:\n  delta_temporality: drop\n", &err));
    cr_assert(strstr(err.msg, "expected reject or accumulate"), "%s", err.msg);
    cr_assert_null(load("server:\n  http_addr: [a, b]\n", &err));
    cr_assert(strstr(err.msg, "t.yml:2: server.http_addr: expected a string"), "%s", err.msg);
    cr_assert_null(load("server: [1\n", &err));
    cr_assert(strstr(err.msg, "t.yml:"), "%s", err.msg);
}

Test(config, empty_file_means_defaults)
{
    struct vg_err err;
    struct config *c = load("", &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_str_eq(c->http_addr, "0.0.0.0:4318");
    config_free(c);
}

Test(config, durations_and_sizes_parse_like_prometheus)
{
    int64_t v;
    cr_assert_eq(config_parse_duration("15d", &v, NULL), 0);
    cr_assert_eq(v, 15LL * 86400000);
    cr_assert_eq(config_parse_duration("1h30m", &v, NULL), 0);
    cr_assert_eq(v, 5400000);
    cr_assert_eq(config_parse_duration("500ms", &v, NULL), 0);
    cr_assert_eq(v, 500);
    cr_assert_eq(config_parse_duration("1w2d", &v, NULL), 0);
    cr_assert_eq(v, 9LL * 86400000);
    cr_assert_lt(config_parse_duration("30m1h", &v, NULL), 0);
    cr_assert_lt(config_parse_duration("5", &v, NULL), 0);
    cr_assert_lt(config_parse_duration("", &v, NULL), 0);
    cr_assert_eq(config_parse_size("16MiB", &v, NULL), 0);
    cr_assert_eq(v, 16LL * 1024 * 1024);
    cr_assert_eq(config_parse_size("512kB", &v, NULL), 0);
    cr_assert_eq(v, 512000);
    cr_assert_eq(config_parse_size("1048576", &v, NULL), 0);
    cr_assert_eq(v, 1048576);
    cr_assert_lt(config_parse_size("12 apples", &v, NULL), 0);
}

Test(config, flags_use_the_same_validation)
{
    struct config *c = config_default();
    struct vg_err err;
    cr_assert_eq(config_set(c, "storage.retention", "2h", &err), 0);
    cr_assert_eq(c->retention_ms, 7200000);
    cr_assert_lt(config_set(c, "storage.retention", "forever", &err), 0);
    cr_assert(strstr(err.msg, "storage.retention: not a valid duration"), "%s", err.msg);
    cr_assert_lt(config_set(c, "storage.nope", "1", &err), 0);
    cr_assert_eq(c->retention_ms, 7200000, "a refused value changes nothing");
    config_free(c);
}

Test(config, reference_lists_every_section)
{
    struct vg_buf b;
    vg_buf_init(&b);
    config_reference(&b);
    cr_assert(strstr(b.p, "server:") && strstr(b.p, "storage:") && strstr(b.p, "limits:") &&
              strstr(b.p, "otlp:"));
    cr_assert(strstr(b.p, "max_label_value_length"));
    vg_buf_free(&b);
}

Test(config, fsync_takes_three_modes_and_the_old_booleans)
{
    static const struct { const char *v; enum config_fsync want; } cases[] = {
        { "always", CONFIG_FSYNC_ALWAYS }, { "periodic", CONFIG_FSYNC_PERIODIC },
        { "never", CONFIG_FSYNC_NEVER },   { "true", CONFIG_FSYNC_ALWAYS },
        { "false", CONFIG_FSYNC_NEVER },   { "yes", CONFIG_FSYNC_ALWAYS },
        { "off", CONFIG_FSYNC_NEVER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[96];
        snprintf(yaml, sizeof yaml, "storage:\n  fsync: %s\n  fsync_interval: 250ms\n",
                 cases[i].v);
        struct vg_err err;
        struct config *c = load(yaml, &err);
        cr_assert_not_null(c, "%s: %s", cases[i].v, err.msg);
        cr_assert_eq(c->fsync, cases[i].want, "fsync: %s", cases[i].v);
        cr_assert_eq(c->fsync_interval_ms, 250);
        config_free(c);
    }
    struct config *c = config_default();
    struct vg_err err;
    cr_assert_eq(config_set(c, "storage.fsync", "always", &err), 0, "%s", err.msg);
    cr_assert_eq(c->fsync, CONFIG_FSYNC_ALWAYS);
    struct vg_buf b;
    vg_buf_init(&b);
    config_dump(c, &b);
    cr_assert(strstr(b.p, "always"), "%s", b.p);
    vg_buf_free(&b);
    config_free(c);
}

Test(config, bad_fsync_values_name_the_key_and_the_choices)
{
    struct vg_err err;
    cr_assert_null(load("storage:\n  fsync: sometimes\n", &err));
    cr_assert(strstr(err.msg, "t.yml:2: storage.fsync: expected always, periodic or never"),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "\"sometimes\""), "%s", err.msg);
    cr_assert_null(load("storage:\n  fsync: [always]\n", &err));
    cr_assert(strstr(err.msg, "t.yml:2: storage.fsync: expected a always|periodic|never"),
              "%s", err.msg);
    cr_assert_null(load("storage:\n  fsync_interval: 5ms\n", &err));
    cr_assert(strstr(err.msg, "t.yml:2: storage.fsync_interval: 5ms is out of range (10ms to 60000ms)"),
              "%s", err.msg);
    cr_assert_null(load("storage:\n  fsync_interval: 2m\n", &err));
    cr_assert(strstr(err.msg, "storage.fsync_interval: 2m is out of range"), "%s", err.msg);
    cr_assert_null(load("storage:\n  fsync_interval: often\n", &err));
    cr_assert(strstr(err.msg, "storage.fsync_interval: not a valid duration"), "%s", err.msg);
    struct config *c = load("storage:\n  fsync_interval: 10ms\n", &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->fsync_interval_ms, 10);
    config_free(c);
    c = load("storage:\n  fsync_interval: 1m\n", &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(c->fsync_interval_ms, 60000);
    config_free(c);
}
