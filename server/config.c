/* config: see config.h.
 *
 * The YAML file is a mapping of sections (server, storage, limits, otlp) to mappings of
 * keys. Every key is a row of config_keys[] below: its section, name, type, where it
 * lives in struct config, its default (parsed by the same code as file values, so a
 * default can never be out of range unnoticed), bounds and help. Flags on the command
 * line use config_set with "section.key" names, so flags and files share validation. */
#include "config.h"

#include "../storage/base/vg_alloc.h"
#include "config_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

enum key_type { K_STR, K_DURATION, K_SIZE, K_INT, K_BOOL, K_DELTA, K_STRLIST, K_RATIO, K_FSYNC };

struct key {
    const char *section;
    const char *name;
    enum key_type type;
    size_t off;
    const char *def;
    int64_t min, max; /* for durations, sizes and ints */
    const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define GIB (1024LL * 1024 * 1024)
#define DAY_MS (86400LL * 1000)

static const struct key config_keys[] = {
    { "server", "http_addr", K_STR, OFF(http_addr), "0.0.0.0:4318", 0, 0,
      "HOST:PORT of the HTTP listener (OTLP/HTTP, remote write, query APIs)" },
    { "server", "grpc_addr", K_STR, OFF(grpc_addr), "0.0.0.0:4317", 0, 0,
      "HOST:PORT of the gRPC listener (OTLP/gRPC)" },
    { "server", "log_level", K_STR, OFF(log_level), "info", 0, 0,
      "debug, info, warn or error" },
    { "server", "external_url", K_STR, OFF(external_url), "", 0, 0,
      "URL Vigil is reached at (Prometheus's --web.external-url): $externalURL in rule "
      "templates, alerts' generatorURL; \"\" = http://<hostname>:<http_addr port>" },
    { "server", "http_threads", K_INT, OFF(http_threads), "8", 1, 256,
      "HTTP worker threads (requests waiting on disk sync share a group commit)" },
    { "server", "grpc_threads", K_INT, OFF(grpc_threads), "4", 1, 256,
      "gRPC completion-queue worker threads" },
    { "storage", "data_dir", K_STR, OFF(data_dir), "./data", 0, 0,
      "directory holding the stores (created if missing)" },
    { "storage", "retention", K_DURATION, OFF(retention_ms), "15d", 0, DAY_MS * 365 * 100,
      "how long samples are kept; 0 keeps them forever" },
    { "storage", "log_retention", K_DURATION, OFF(log_retention_ms), "15d", 0,
      DAY_MS * 365 * 100, "how long log lines are kept; 0 keeps them forever" },
    { "storage", "trace_retention", K_DURATION, OFF(trace_retention_ms), "7d", 0,
      DAY_MS * 365 * 100, "how long spans are kept; 0 keeps them forever" },
    { "storage", "out_of_order_window", K_DURATION, OFF(out_of_order_window_ms), "30m", 0,
      7 * DAY_MS, "how far behind a series' newest sample a sample may still arrive" },
    { "storage", "cache_size", K_SIZE, OFF(cache_bytes), "32MiB", 0, 64 * GIB,
      "LevelDB block cache of the time-series store" },
    { "storage", "fsync", K_FSYNC, OFF(fsync), "periodic", 0, 0,
      "always: fsync each write before acknowledging it (survives power loss); periodic: "
      "acknowledge once in the stores' logs (survives kill -9) and fsync them every "
      "fsync_interval; never: the OS writes them to disk later (true = always, false = never)" },
    { "storage", "fsync_interval", K_DURATION, OFF(fsync_interval_ms), "1s", 10, 60000,
      "with fsync periodic: how often the stores' logs are fsynced (at most this much "
      "acknowledged data is lost on power loss)" },
    { "limits", "max_body_bytes", K_SIZE, OFF(limits.max_body_bytes), "16MiB", 1024, 4 * GIB,
      "largest request body accepted on the wire" },
    { "limits", "max_decoded_bytes", K_SIZE, OFF(limits.max_decoded_bytes), "64MiB", 1024,
      16 * GIB, "largest request body after gzip or snappy decompression" },
    { "limits", "max_labels_per_series", K_INT, OFF(limits.max_labels_per_series), "64", 1,
      10000, "labels (including __name__) one series may have" },
    { "limits", "max_label_name_length", K_INT, OFF(limits.max_label_name_length), "256", 1,
      1 << 20, "bytes in one label name" },
    { "limits", "max_label_value_length", K_INT, OFF(limits.max_label_value_length), "4096",
      1, 1 << 24, "bytes in one label value" },
    { "limits", "max_series_per_request", K_INT, OFF(limits.max_series_per_request), "100000",
      1, 100000000, "series in one write request" },
    { "otlp", "delta_temporality", K_DELTA, OFF(otlp_delta), "reject", 0, 0,
      "reject delta sums and histograms, or accumulate them into cumulative series" },
    { "otlp", "promote_resource_attributes", K_STRLIST, OFF(otlp_promote_attrs), "", 0, 0,
      "resource attributes copied as labels onto every series (list)" },
    { "otlp", "add_type_and_unit_suffixes", K_BOOL, OFF(otlp_add_type_and_unit_suffixes),
      "true", 0, 0, "append _total, unit and _ratio suffixes to metric names, as Prometheus" },
    { "otlp", "keep_identifying_resource_attributes", K_BOOL,
      OFF(otlp_keep_identifying_attrs), "false", 0, 0,
      "also keep service.name, service.namespace, service.instance.id in target_info" },
    { "otlp", "delta_max_series", K_INT, OFF(otlp_delta_max_series), "100000", 1, 100000000,
      "series the delta accumulator tracks; points of new series beyond it are refused" },
    { "otlp", "delta_idle_timeout", K_DURATION, OFF(otlp_delta_idle_timeout_ms), "1h", 1000,
      30 * DAY_MS, "accumulated delta series not updated for this long start again from 0" },
    { "syslog", "udp_addr", K_STR, OFF(syslog_udp_addr), "", 0, 0,
      "HOST:PORT of the syslog UDP listener (RFC 5424 or 3164, one per datagram); empty = off" },
    { "syslog", "tcp_addr", K_STR, OFF(syslog_tcp_addr), "", 0, 0,
      "HOST:PORT of the syslog TCP listener (octet counting or newline framing); empty = off" },
    { "syslog", "max_message_bytes", K_SIZE, OFF(syslog_max_message_bytes), "64KiB", 480,
      256LL * 1024, "longest syslog message; longer ones are dropped and counted" },
    { "syslog", "max_connections", K_INT, OFF(syslog_max_connections), "256", 1, 65536,
      "open syslog TCP connections at most; more are closed at once and counted" },
    { "syslog", "idle_timeout", K_DURATION, OFF(syslog_idle_timeout_ms), "5m", 0, DAY_MS,
      "a syslog TCP connection silent this long is closed; 0 never closes one" },
    { "syslog", "flush_interval", K_DURATION, OFF(syslog_flush_interval_ms), "200ms", 10,
      10000, "received syslog messages are written to the log store at least this often" },
    { "syslog", "labels", K_STRLIST, OFF(syslog_labels),
      "hostname,app_name,facility,severity,level", 0, 0,
      "syslog fields made stream labels (hostname, app_name, facility, severity, level, "
      "proc_id, msg_id); the others become structured metadata (list)" },
    { "syslog", "use_message_timestamp", K_BOOL, OFF(syslog_use_message_timestamp), "true", 0,
      0, "store a message at the time it carries (else at receive time)" },
    { "logs", "otlp_resource_labels", K_STRLIST, OFF(logs_otlp_resource_labels), "", 0, 0,
      "OTLP log resource attributes made stream labels, beside the built-in ones (list)" },
    { "query", "timeout", K_DURATION, OFF(query_timeout_ms), "2m", 1, DAY_MS,
      "longest a PromQL query may run (the timeout parameter can only shorten it)" },
    { "query", "max_samples", K_INT, OFF(query_max_samples), "50000000", 1, 10000000000LL,
      "samples one PromQL query may load into memory at once" },
    { "query", "lookback_delta", K_DURATION, OFF(query_lookback_delta_ms), "5m", 1,
      DAY_MS, "how far back an instant vector selector looks for a sample" },
    { "traces", "max_attributes", K_INT, OFF(traces_max_attributes), "128", 1, 100000,
      "attributes one span, event, link, resource or scope may carry" },
    { "traces", "max_attribute_bytes", K_SIZE, OFF(traces_max_attribute_bytes), "64KiB", 16,
      GIB, "bytes in one attribute (key plus value)" },
    { "traces", "max_spans_per_request", K_INT, OFF(traces_max_spans_per_request), "100000",
      1, 100000000, "spans in one write request; the rest are refused" },
    { "traces", "span_metrics_enabled", K_BOOL, OFF(traces_span_metrics_enabled), "true", 0, 0,
      "derive traces_spanmetrics_* series (calls, duration histogram) from ingested spans" },
    { "traces", "service_graph_enabled", K_BOOL, OFF(traces_service_graph_enabled), "true", 0,
      0, "derive traces_service_graph_* series from client/server span pairs" },
    { "traces", "errors_enabled", K_BOOL, OFF(traces_errors_enabled), "true", 0, 0,
      "group span exceptions and error logs with a trace id (GET /api/v1/errors)" },
    { "traces", "derive_flush_interval", K_DURATION, OFF(traces_derive_flush_interval_ms),
      "15s", 1000, 3600000, "how often derived series are written to the time-series store" },
    { "traces", "span_metrics_buckets", K_STRLIST, OFF(traces_span_metrics_buckets),
      "0.002,0.004,0.008,0.016,0.032,0.064,0.128,0.256,0.512,1.024,2.048,4.096,8.192,16.384",
      0, 0, "upper bounds in seconds of the span duration histogram, ascending (list)" },
    { "traces", "service_graph_buckets", K_STRLIST, OFF(traces_service_graph_buckets),
      "0.1,0.2,0.4,0.8,1.6,3.2,6.4,12.8", 0, 0,
      "upper bounds in seconds of the service graph latency histograms, ascending (list)" },
    { "traces", "service_graph_wait", K_DURATION, OFF(traces_service_graph_wait_ms), "10s",
      100, 600000, "how long a client or server span waits for its other side" },
    { "traces", "service_graph_max_items", K_INT, OFF(traces_service_graph_max_items),
      "10000", 1, 10000000, "spans waiting for their other side at most; more are dropped" },
    { "traces", "max_derived_series", K_INT, OFF(traces_max_derived_series), "10000", 1,
      10000000, "series each kind of derived metric keeps at most; spans beyond are counted" },
    { "traces", "errors_max_groups", K_INT, OFF(traces_errors_max_groups), "10000", 1,
      10000000, "error groups kept at most; occurrences of new groups beyond are counted" },
    { "traces", "sample_ratio", K_RATIO, OFF(traces_sample_ratio), "1", 0, 0,
      "head sampling: share of traces kept, by trace id (0 to 1; 1 keeps all)" },
    { "traces", "max_traces_per_second", K_INT, OFF(traces_max_traces_per_second), "0", 0,
      100000000, "head sampling: new traces kept per second at most (token bucket); 0 = off" },
    { "traces", "sample_cache_size", K_INT, OFF(traces_sample_cache_size), "100000", 1,
      10000000, "head sampling: trace ids whose decision is remembered (LRU)" },
};
/* K_STRLIST keeps its count right after the array pointer. */
_Static_assert(offsetof(struct config, otlp_npromote) ==
                   offsetof(struct config, otlp_promote_attrs) + sizeof(char **),
               "string list count must follow its array");
_Static_assert(offsetof(struct config, logs_notlp_resource_labels) ==
                   offsetof(struct config, logs_otlp_resource_labels) + sizeof(char **),
               "string list count must follow its array");

_Static_assert(offsetof(struct config, syslog_nlabels) ==
                   offsetof(struct config, syslog_labels) + sizeof(char **),
               "string list count must follow its array");
_Static_assert(offsetof(struct config, traces_nspan_metrics_buckets) ==
                   offsetof(struct config, traces_span_metrics_buckets) + sizeof(char **),
               "string list count must follow its array");
_Static_assert(offsetof(struct config, traces_nservice_graph_buckets) ==
                   offsetof(struct config, traces_service_graph_buckets) + sizeof(char **),
               "string list count must follow its array");

#define NKEYS (sizeof config_keys / sizeof config_keys[0])

static const char *const sections[] = { "server", "storage", "limits", "otlp", "syslog", "logs",
                                        "query", "traces" };
#define NSECTIONS (sizeof sections / sizeof sections[0])

/* Sections kept as trees for the module that owns them (config_node.h). Their shapes
 * follow Prometheus's and Alertmanager's files where the concept is the same, so a user's
 * existing sections carry over. Add a name here and validate it in the module's check. */
static const char *const block_sections[] = {
    "global",         /* Prometheus: evaluation_interval, external_labels, ... */
    "rule_files",     /* Prometheus: list of globs */
    "alerting",       /* Prometheus: alertmanagers */
    "notifications",  /* Alertmanager-shaped route and receivers */
    "scrape_configs", /* Prometheus */
    "log_files",      /* tailed files and their parsers */
    "log_processors", /* processors applied to every log record */
    "tail_sampling",  /* trace tail-sampling policies */
    "snmp",           /* SNMP devices polled (collect/snmp.h) */
    "jmx",            /* Jolokia targets polled (collect/jolokia.h) */
    "statsd",         /* StatsD receiver (ingest/statsd.h) */
    "probes",         /* synthetic probes (probe/probe.h) */
};
#define NBLOCKS (sizeof block_sections / sizeof block_sections[0])
_Static_assert(NBLOCKS <= CONFIG_MAX_BLOCKS, "raise CONFIG_MAX_BLOCKS");

const struct config_node *config_block(const struct config *c, const char *name)
{
    for (size_t i = 0; i < NBLOCKS; i++)
        if (!strcmp(block_sections[i], name))
            return c->blocks[i];
    return NULL;
}

const char *config_block_name(size_t i)
{
    return i < NBLOCKS ? block_sections[i] : NULL;
}

/* "server, storage, ..., tail_sampling" for messages. */
static void section_names(char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NSECTIONS + NBLOCKS; i++) {
        const char *s = i < NSECTIONS ? sections[i] : block_sections[i - NSECTIONS];
        int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", s);
        if (w < 0 || (size_t)w >= cap - len)
            return;
        len += (size_t)w;
    }
}

static const char *type_name(enum key_type t)
{
    switch (t) {
    case K_STR: return "string";
    case K_DURATION: return "duration";
    case K_SIZE: return "size";
    case K_INT: return "integer";
    case K_BOOL: return "boolean";
    case K_DELTA: return "reject|accumulate";
    case K_FSYNC: return "always|periodic|never";
    case K_STRLIST: return "list of strings";
    case K_RATIO: return "number 0-1";
    }
    return "?";
}

int config_parse_duration(const char *s, int64_t *ms, struct vg_err *err)
{
    /* Prometheus's duration syntax: units y w d h m s ms, largest first, each once. */
    static const struct { const char *u; int64_t ms; } units[] = {
        { "ms", 1 }, { "y", 365 * DAY_MS }, { "w", 7 * DAY_MS }, { "d", DAY_MS },
        { "h", 3600000 }, { "m", 60000 }, { "s", 1000 },
    };
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    const char *p = s;
    int64_t total = 0;
    int last_rank = -1;
    if (!*p)
        return vg_err_set(err, VG_EINVAL, "empty duration");
    while (*p) {
        if (*p < '0' || *p > '9')
            return vg_err_set(err, VG_EINVAL, "not a valid duration string: \"%s\"", s);
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (n > INT64_MAX / 10)
                return vg_err_set(err, VG_EINVAL, "duration out of range: \"%s\"", s);
            n = n * 10 + (*p++ - '0');
        }
        int rank = -1;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].u);
            if (strncmp(p, units[i].u, l) == 0) {
                rank = (int)i;
                p += l;
                break;
            }
        }
        if (rank < 0)
            return vg_err_set(err, VG_EINVAL, "not a valid duration string: \"%s\" (units: y w d h m s ms)", s);
        /* ms is listed first for matching but is the smallest unit in order. */
        int order = rank == 0 ? 100 : rank;
        if (order <= last_rank)
            return vg_err_set(err, VG_EINVAL, "not a valid duration string: \"%s\" (units must go from largest to smallest)", s);
        last_rank = order;
        if (n > INT64_MAX / units[rank].ms || total > INT64_MAX - n * units[rank].ms)
            return vg_err_set(err, VG_EINVAL, "duration out of range: \"%s\"", s);
        total += n * units[rank].ms;
    }
    *ms = total;
    return 0;
}

int config_parse_size(const char *s, int64_t *bytes, struct vg_err *err)
{
    static const struct { const char *u; int64_t mul; } units[] = {
        { "KiB", 1024LL }, { "MiB", 1024LL * 1024 }, { "GiB", GIB }, { "TiB", GIB * 1024 },
        { "kB", 1000LL }, { "KB", 1000LL }, { "MB", 1000000LL }, { "GB", 1000000000LL },
        { "TB", 1000000000000LL }, { "B", 1 }, { "", 1 },
    };
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (end == s || n < 0 || errno)
        return vg_err_set(err, VG_EINVAL, "not a valid size: \"%s\" (e.g. 512kB, 16MiB, 1048576)", s);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].u) == 0) {
            if (n > INT64_MAX / units[i].mul)
                return vg_err_set(err, VG_EINVAL, "size out of range: \"%s\"", s);
            *bytes = n * units[i].mul;
            return 0;
        }
    }
    return vg_err_set(err, VG_EINVAL, "not a valid size: \"%s\" (units: B kB MB GB KiB MiB GiB)", s);
}

static void free_strlist(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vg_free(v[i]);
    vg_free(v);
}

/* Sets one key from a scalar string. items/nitems carry a YAML sequence for K_STRLIST
 * (from a flag, a comma-separated scalar is split instead). */
static int set_key(struct config *c, const struct key *k, const char *value,
                   const char *const *items, size_t nitems, struct vg_err *err)
{
    void *dst = (char *)c + k->off;
    int64_t n = 0;
    switch (k->type) {
    case K_STR: {
        if (!value)
            return vg_err_set(err, VG_EINVAL, "expected a string");
        char *d = vg_strdup(value);
        if (!d)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        vg_free(*(char **)dst);
        *(char **)dst = d;
        return 0;
    }
    case K_DURATION:
    case K_SIZE:
    case K_INT: {
        if (!value)
            return vg_err_set(err, VG_EINVAL, "expected a %s", type_name(k->type));
        if (k->type == K_DURATION) {
            if (config_parse_duration(value, &n, err) < 0)
                return err ? err->code : VG_EINVAL;
        } else if (k->type == K_SIZE) {
            if (config_parse_size(value, &n, err) < 0)
                return err ? err->code : VG_EINVAL;
        } else {
            char *end;
            errno = 0;
            long long v = strtoll(value, &end, 10);
            if (end == value || *end || errno)
                return vg_err_set(err, VG_EINVAL, "expected an integer, got \"%s\"", value);
            n = v;
        }
        if (n < k->min || n > k->max)
            return vg_err_set(err, VG_EINVAL, "%s is out of range (%lld%s to %lld%s)", value,
                              (long long)k->min, k->type == K_DURATION ? "ms" : "",
                              (long long)k->max, k->type == K_DURATION ? "ms" : "");
        *(int64_t *)dst = n;
        return 0;
    }
    case K_BOOL:
        if (value && (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on"))) {
            *(bool *)dst = true;
            return 0;
        }
        if (value && (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off"))) {
            *(bool *)dst = false;
            return 0;
        }
        return vg_err_set(err, VG_EINVAL, "expected true or false, got \"%s\"", value ? value : "a list");
    case K_DELTA:
        if (value && !strcmp(value, "reject")) {
            *(enum otlp_delta_policy *)dst = OTLP_DELTA_REJECT;
            return 0;
        }
        if (value && !strcmp(value, "accumulate")) {
            *(enum otlp_delta_policy *)dst = OTLP_DELTA_ACCUMULATE;
            return 0;
        }
        return vg_err_set(err, VG_EINVAL, "expected reject or accumulate, got \"%s\"", value ? value : "a list");
    case K_FSYNC: {
        /* The booleans are what storage.fsync took before periodic existed. */
        static const struct { const char *s; enum config_fsync v; } names[] = {
            { "always", CONFIG_FSYNC_ALWAYS }, { "periodic", CONFIG_FSYNC_PERIODIC },
            { "never", CONFIG_FSYNC_NEVER },   { "true", CONFIG_FSYNC_ALWAYS },
            { "false", CONFIG_FSYNC_NEVER },   { "yes", CONFIG_FSYNC_ALWAYS },
            { "on", CONFIG_FSYNC_ALWAYS },     { "no", CONFIG_FSYNC_NEVER },
            { "off", CONFIG_FSYNC_NEVER },
        };
        for (size_t i = 0; value && i < sizeof names / sizeof names[0]; i++)
            if (!strcmp(value, names[i].s)) {
                *(enum config_fsync *)dst = names[i].v;
                return 0;
            }
        return vg_err_set(err, VG_EINVAL, "expected always, periodic or never (or true, false), "
                          "got \"%s\"", value ? value : "a list");
    }
    case K_RATIO: {
        char *end = NULL;
        errno = 0;
        double d = value ? strtod(value, &end) : NAN;
        if (!value || end == value || *end || errno || !(d >= 0 && d <= 1))
            return vg_err_set(err, VG_EINVAL, "expected a number from 0 to 1, got \"%s\"",
                              value ? value : "a list");
        *(double *)dst = d;
        return 0;
    }
    case K_STRLIST: {
        /* the count lives right after the array pointer in struct config */
        char ***arr = dst;
        size_t *cnt = (size_t *)((char *)dst + sizeof(char **));
        const char *split_src = value;
        size_t cap = nitems;
        if (split_src) {
            cap = 1;
            for (const char *p = split_src; *p; p++)
                cap += *p == ',';
        }
        char **v = vg_calloc(cap ? cap : 1, sizeof *v);
        if (!v)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        size_t nv = 0;
        if (split_src) {
            const char *p = split_src;
            while (*p) {
                const char *e = strchr(p, ',');
                size_t l = e ? (size_t)(e - p) : strlen(p);
                if (l)
                    v[nv++] = vg_strndup(p, l);
                p += l + (e ? 1 : 0);
            }
        } else {
            for (size_t i = 0; i < nitems; i++)
                v[nv++] = vg_strdup(items[i]);
        }
        for (size_t i = 0; i < nv; i++)
            if (!v[i]) {
                free_strlist(v, nv);
                return vg_err_set(err, VG_ENOMEM, "out of memory");
            }
        free_strlist(*arr, *cnt);
        *arr = v;
        *cnt = nv;
        return 0;
    }
    }
    return vg_err_set(err, VG_EINTERNAL, "unknown key type");
}

static const struct key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (!strcmp(config_keys[i].section, section) && !strcmp(config_keys[i].name, name))
            return &config_keys[i];
    return NULL;
}

static void valid_keys_of(const char *section, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(config_keys[i].section, section) != 0)
            continue;
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", config_keys[i].name);
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
}

int config_set(struct config *c, const char *key, const char *value, struct vg_err *err)
{
    const char *dot = strchr(key, '.');
    char section[32];
    if (!dot || (size_t)(dot - key) >= sizeof section)
        return vg_err_set(err, VG_EINVAL, "%s: unknown key (keys are section.name)", key);
    memcpy(section, key, (size_t)(dot - key));
    section[dot - key] = '\0';
    const struct key *k = find_key(section, dot + 1);
    if (!k)
        return vg_err_set(err, VG_EINVAL, "%s: unknown key", key);
    if (set_key(c, k, value, NULL, 0, err) < 0)
        return vg_err_prefix(err, "%s", key);
    return 0;
}

void config_free(struct config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < NKEYS; i++) {
        void *dst = (char *)c + config_keys[i].off;
        if (config_keys[i].type == K_STR)
            vg_free(*(char **)dst);
        else if (config_keys[i].type == K_STRLIST)
            free_strlist(*(char ***)dst, *(size_t *)((char *)dst + sizeof(char **)));
    }
    for (size_t i = 0; i < NBLOCKS; i++)
        config_node_free(c->blocks[i]);
    vg_free(c->source);
    vg_free(c);
}

struct config *config_default(void)
{
    struct config *c = vg_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->source = vg_strdup("<embedded defaults>");
    for (size_t i = 0; i < NKEYS; i++) {
        if (set_key(c, &config_keys[i], config_keys[i].def, NULL, 0, NULL) < 0) {
            config_free(c);
            return NULL;
        }
    }
    return c;
}

/* ---- YAML ---- */

static int node_err(struct vg_err *err, const char *name, const yaml_node_t *n, const char *fmt,
                    const char *a, const char *b)
{
    char msg[2 * VG_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, fmt, a, b);
    return vg_err_set(err, VG_EINVAL, "%s:%zu: %s", name, n->start_mark.line + 1, msg);
}

static int load_section(struct config *c, const char *name, yaml_document_t *doc,
                        const char *section, yaml_node_t *map, struct vg_err *err)
{
    char valid[512];
    valid_keys_of(section, valid, sizeof valid);
    if (map->type != YAML_MAPPING_NODE)
        return node_err(err, name, map, "%s: expected a mapping of keys (valid keys: %s)", section, valid);
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        if (!kn || !vn || kn->type != YAML_SCALAR_NODE)
            return vg_err_set(err, VG_EINVAL, "%s: %s: keys must be plain names", name, section);
        const char *kname = (const char *)kn->data.scalar.value;
        const struct key *k = find_key(section, kname);
        char full[128];
        snprintf(full, sizeof full, "%s.%s", section, kname);
        if (!k)
            return node_err(err, name, kn, "%s: unknown key (valid keys: %s)", full, valid);
        int rc;
        struct vg_err kerr;
        if (vn->type == YAML_SCALAR_NODE) {
            const char *val = (const char *)vn->data.scalar.value;
            /* an empty scalar for a list means an empty list */
            if (k->type == K_STRLIST && val[0] == '\0')
                rc = set_key(c, k, NULL, NULL, 0, &kerr);
            else
                rc = set_key(c, k, val, NULL, 0, &kerr);
        } else if (vn->type == YAML_SEQUENCE_NODE && k->type == K_STRLIST) {
            size_t n = (size_t)(vn->data.sequence.items.top - vn->data.sequence.items.start);
            const char **items = vg_calloc(n ? n : 1, sizeof *items);
            if (!items)
                return vg_err_set(err, VG_ENOMEM, "out of memory");
            for (size_t i = 0; i < n; i++) {
                yaml_node_t *it = yaml_document_get_node(doc, vn->data.sequence.items.start[i]);
                if (!it || it->type != YAML_SCALAR_NODE) {
                    vg_free(items);
                    return node_err(err, name, it ? it : vn, "%s: expected a list of strings%s", full, "");
                }
                items[i] = (const char *)it->data.scalar.value;
            }
            rc = set_key(c, k, NULL, items, n, &kerr);
            vg_free(items);
        } else {
            return node_err(err, name, vn, "%s: expected a %s", full, type_name(k->type));
        }
        if (rc == VG_ENOMEM)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        if (rc < 0)
            return node_err(err, name, vn, "%s: %.400s", full, kerr.msg);
    }
    return 0;
}

struct config *config_load_buf(const char *name, const char *buf, size_t len, struct vg_err *err)
{
    struct config *c = config_default();
    if (!c) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    vg_free(c->source);
    c->source = vg_strdup(name);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        config_free(c);
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        vg_err_set(err, VG_EINVAL, "%s:%zu: %s%s%s", name, parser.problem_mark.line + 1,
                   parser.problem ? parser.problem : "invalid YAML",
                   parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        config_free(c);
        return NULL;
    }
    int rc = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start;
             rc == 0 && p < root->data.mapping.pairs.top; p++) {
            yaml_node_t *kn = yaml_document_get_node(&doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(&doc, p->value);
            const char *sname = kn && kn->type == YAML_SCALAR_NODE ? (const char *)kn->data.scalar.value : "";
            size_t s;
            for (s = 0; s < NSECTIONS + NBLOCKS; s++)
                if (!strcmp(s < NSECTIONS ? sections[s] : block_sections[s - NSECTIONS], sname))
                    break;
            if (s == NSECTIONS + NBLOCKS) {
                char valid[400];
                section_names(valid, sizeof valid);
                rc = node_err(err, name, kn ? kn : root,
                              "%s: unknown section (valid sections: %s)", sname, valid);
                break;
            }
            if (s >= NSECTIONS) {
                size_t b = s - NSECTIONS;
                config_node_free(c->blocks[b]);
                c->blocks[b] = config_node_from_yaml(&doc, vn, c->source, 0, err);
                if (!c->blocks[b])
                    rc = VG_EINVAL;
                continue;
            }
            if (vn->type == YAML_SCALAR_NODE && vn->data.scalar.length == 0)
                continue; /* "section:" with nothing under it */
            rc = load_section(c, name, &doc, sections[s], vn, err);
        }
    } else if (root && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
        char valid[400];
        section_names(valid, sizeof valid);
        rc = node_err(err, name, root, "the top level must be a mapping of sections (%s)%s",
                      valid, "");
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc < 0) {
        config_free(c);
        return NULL;
    }
    return c;
}

struct config *config_load_file(const char *path, struct vg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        vg_err_set(err, VG_EINVAL, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        vg_buf_append(&b, chunk, n);
    int ferr = ferror(f);
    (void)fclose(f); /* read-only: nothing is lost if close fails */
    if (ferr || vg_buf_failed(&b)) {
        vg_buf_free(&b);
        vg_err_set(err, VG_EIO, "%s: cannot read", path);
        return NULL;
    }
    struct config *c = config_load_buf(path, b.p ? b.p : "", b.len, err);
    vg_buf_free(&b);
    return c;
}

static void put_value(const struct config *c, const struct key *k, struct vg_buf *out)
{
    const void *src = (const char *)c + k->off;
    switch (k->type) {
    case K_STR: vg_buf_puts(out, *(char *const *)src ? *(char *const *)src : ""); break;
    case K_DURATION: vg_buf_printf(out, "%lldms", (long long)*(const int64_t *)src); break;
    case K_SIZE:
    case K_INT: vg_buf_printf(out, "%lld", (long long)*(const int64_t *)src); break;
    case K_BOOL: vg_buf_puts(out, *(const bool *)src ? "true" : "false"); break;
    case K_RATIO: vg_buf_prom_float(out, *(const double *)src); break;
    case K_DELTA:
        vg_buf_puts(out, *(const enum otlp_delta_policy *)src == OTLP_DELTA_REJECT ? "reject" : "accumulate");
        break;
    case K_FSYNC: {
        enum config_fsync f = *(const enum config_fsync *)src;
        vg_buf_puts(out, f == CONFIG_FSYNC_ALWAYS  ? "always"
                         : f == CONFIG_FSYNC_NEVER ? "never"
                                                   : "periodic");
        break;
    }
    case K_STRLIST: {
        char *const *v = *(char **const *)src;
        size_t n = *(const size_t *)((const char *)src + sizeof(char **));
        vg_buf_putc(out, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                vg_buf_puts(out, ", ");
            vg_buf_json_str(out, v[i], strlen(v[i]));
        }
        vg_buf_putc(out, ']');
        break;
    }
    }
}

void config_reference(struct vg_buf *out)
{
    for (size_t s = 0; s < NSECTIONS; s++) {
        vg_buf_printf(out, "%s:\n", sections[s]);
        for (size_t i = 0; i < NKEYS; i++) {
            const struct key *k = &config_keys[i];
            if (strcmp(k->section, sections[s]) != 0)
                continue;
            vg_buf_printf(out, "  %-38s %-18s default %-14s %s\n", k->name, type_name(k->type),
                          k->def[0] ? k->def : "[]", k->help);
        }
    }
}

void config_dump(const struct config *c, struct vg_buf *out)
{
    vg_buf_printf(out, "# source: %s\n", c->source ? c->source : "");
    for (size_t s = 0; s < NSECTIONS; s++) {
        vg_buf_printf(out, "%s:\n", sections[s]);
        for (size_t i = 0; i < NKEYS; i++) {
            if (strcmp(config_keys[i].section, sections[s]) != 0)
                continue;
            vg_buf_printf(out, "  %s: ", config_keys[i].name);
            put_value(c, &config_keys[i], out);
            vg_buf_putc(out, '\n');
        }
    }
}
