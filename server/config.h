/* config: Vigil's configuration, YAML with embedded defaults.
 *
 * Keys are declared in tables in config.c (key, type, default, bounds, one-line help);
 * the same tables print `vigil --help`'s config reference. Unknown keys, wrong types and
 * out-of-range values fail with "file:line: key: what is wrong (valid keys: ...)".
 * A loaded struct config is immutable and may be read from any thread. */
#ifndef CONFIG_H
#define CONFIG_H

#include "../storage/base/vg_buf.h"
#include "../storage/base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum otlp_delta_policy {
    OTLP_DELTA_REJECT,     /* delta sums and histograms are rejected with a reason */
    OTLP_DELTA_ACCUMULATE, /* converted to cumulative by summing per series in memory */
};

/* storage.fsync: when an acknowledged write of the stores reaches the disk. */
enum config_fsync {
    CONFIG_FSYNC_ALWAYS,   /* fsync before acknowledging (survives power loss) */
    CONFIG_FSYNC_PERIODIC, /* acknowledge once in LevelDB's log (survives kill -9); a
                            * background fsync every storage.fsync_interval bounds what
                            * a power loss takes */
    CONFIG_FSYNC_NEVER,    /* acknowledge once in LevelDB's log; the OS writes it later */
};

struct config_limits {
    int64_t max_body_bytes;          /* request body on the wire */
    int64_t max_decoded_bytes;       /* after gzip/snappy decompression */
    int64_t max_labels_per_series;
    int64_t max_label_name_length;
    int64_t max_label_value_length;
    int64_t max_series_per_request;
};

struct config_node; /* config_node.h */

/* Structured sections at most (config.c's block_sections must fit). */
#define CONFIG_MAX_BLOCKS 24

struct config {
    /* server */
    char *http_addr;
    char *grpc_addr;
    char *log_level;
    char *external_url;   /* "" = derived from the host name and http_addr */
    int64_t http_threads;
    int64_t grpc_threads;
    /* storage */
    char *data_dir;
    int64_t retention_ms;           /* time series */
    int64_t log_retention_ms;
    int64_t trace_retention_ms;
    int64_t out_of_order_window_ms;
    int64_t cache_bytes;
    enum config_fsync fsync;     /* of the stores (time series, logs, spans, errors) */
    int64_t fsync_interval_ms;   /* CONFIG_FSYNC_PERIODIC's period */
    /* limits */
    struct config_limits limits;
    /* otlp */
    enum otlp_delta_policy otlp_delta;
    char **otlp_promote_attrs;  /* resource attributes copied as labels on every series */
    size_t otlp_npromote;
    bool otlp_add_type_and_unit_suffixes;
    bool otlp_keep_identifying_attrs;
    int64_t otlp_delta_max_series;      /* series the delta accumulator tracks at most */
    int64_t otlp_delta_idle_timeout_ms; /* accumulated series idle this long are dropped */
    /* syslog (server/ingest/syslog.h) */
    char *syslog_udp_addr;             /* "" = no UDP listener */
    char *syslog_tcp_addr;             /* "" = no TCP listener */
    int64_t syslog_max_message_bytes;
    int64_t syslog_max_connections;
    int64_t syslog_idle_timeout_ms;    /* 0 = never */
    int64_t syslog_flush_interval_ms;
    char **syslog_labels;              /* fields made stream labels */
    size_t syslog_nlabels;
    bool syslog_use_message_timestamp;
    /* logs */
    char **logs_otlp_resource_labels; /* OTLP resource attributes made stream labels, beyond
                                         the built-in list (otlp_logs.h) */
    size_t logs_notlp_resource_labels;
    /* query (PromQL engine defaults) */
    int64_t query_timeout_ms;        /* longest a query may run */
    int64_t query_max_samples;       /* samples one query may hold in memory at once */
    int64_t query_lookback_delta_ms; /* how far back an instant selector looks */
    /* traces (span receivers) */
    int64_t traces_max_attributes;       /* attributes in one list (span, resource, ...) */
    int64_t traces_max_attribute_bytes;  /* key plus value of one attribute */
    int64_t traces_max_spans_per_request;
    /* traces: derived data (server/traces/derive.h) */
    bool traces_span_metrics_enabled;
    bool traces_service_graph_enabled;
    bool traces_errors_enabled;
    int64_t traces_derive_flush_interval_ms;
    char **traces_span_metrics_buckets;   /* seconds, ascending (checked by mod_traces_derive) */
    size_t traces_nspan_metrics_buckets;
    char **traces_service_graph_buckets;
    size_t traces_nservice_graph_buckets;
    int64_t traces_service_graph_wait_ms;
    int64_t traces_service_graph_max_items;
    int64_t traces_max_derived_series;
    int64_t traces_errors_max_groups;
    /* traces: head sampling (server/ingest/sampling.h) */
    double traces_sample_ratio;             /* 0..1 */
    int64_t traces_max_traces_per_second;   /* 0 = no rate limit */
    int64_t traces_sample_cache_size;
    /* structured sections, each parsed by the module that owns it (config_block) */
    struct config_node *blocks[CONFIG_MAX_BLOCKS];
    /* where the config came from ("<embedded defaults>" or a path) */
    char *source;
};

/* The tree of a structured section ("rule_files", "alerting", "scrape_configs", ... as
 * listed in config.c's block_sections), or NULL when the file has none. The module that
 * owns the section validates it in its vigil_module.check. */
const struct config_node *config_block(const struct config *c, const char *name);
/* The name of structured section i in config.c's order (c->blocks[i] holds its tree), or
 * NULL when i is past the last one. For writers of the whole config (status_config.h). */
const char *config_block_name(size_t i);

/* The embedded defaults; never fails except out of memory (NULL). */
struct config *config_default(void);
/* Defaults overlaid with the YAML file at path; NULL with err "path:line: ..." */
struct config *config_load_file(const char *path, struct vg_err *err);
/* Same, from a buffer (name used in messages). */
struct config *config_load_buf(const char *name, const char *buf, size_t len, struct vg_err *err);
void config_free(struct config *c);

/* Duration like Prometheus's: "15d", "1h30m", "500ms". 0 or VG_EINVAL. */
int config_parse_duration(const char *s, int64_t *ms, struct vg_err *err);
/* Size like "10MiB", "512kB", "1048576". 0 or VG_EINVAL. */
int config_parse_size(const char *s, int64_t *bytes, struct vg_err *err);

/* Appends the config reference (every key, type, default and help) as text. */
void config_reference(struct vg_buf *out);
/* Appends the effective config as YAML (for the status page and logs). */
void config_dump(const struct config *c, struct vg_buf *out);

/* Setters used by command-line flags (which override the file); replace the value. */
int config_set(struct config *c, const char *key, const char *value, struct vg_err *err);

#endif
