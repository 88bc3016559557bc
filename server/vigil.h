/* vigil: the server as a library. vigil_start wires the stores, the module registry and
 * the front ends from a config; vigil_stop shuts them down in order (front ends first,
 * then stores). Tests run the whole server in-process through these; main.c only parses
 * flags and handles signals.
 *
 * struct vigil is the one context handed to every handler; its fields are set at start
 * and read-only afterwards (the objects they point to are thread-safe themselves). */
#ifndef VIGIL_H
#define VIGIL_H

#include "../storage/base/vg_err.h"
#include "config.h"
#include "grpc.h"
#include "http.h"
#include "metrics.h"

#include <stddef.h>

#define VIGIL_VERSION "0.1.0"

struct tsdb;
struct logstore;
struct spanstore;
struct trace_derive;
struct notifier;
struct rules;

/* A module: one receiver or API family. Adding one is a new file and a new row in
 * modules.c. check/init/free may be NULL. check validates the module's part of the
 * config (its config_block sections) without side effects: `vigil check-config` and
 * vigil_start run it for every module before any init. */
struct vigil_module {
    const char *name;
    const struct http_route *routes;
    size_t nroutes;
    const struct grpc_method *grpc_methods;
    size_t ngrpc;
    int (*check)(const struct config *cfg, struct vg_err *err);
    int (*init)(struct vigil *v, struct vg_err *err);
    void (*free)(struct vigil *v);
};

/* Runs every module's check; the first failure's code with err. */
int vigil_check_config(const struct config *cfg, struct vg_err *err);

/* modules.c */
extern const struct vigil_module *const vigil_modules[];
extern const size_t vigil_nmodules;

struct ingest_metrics; /* server/ingest/ingest_metrics.h */

struct vigil {
    const struct config *cfg;
    struct tsdb *tsdb;
    struct logstore *logs;          /* data_dir/logs */
    struct spanstore *traces;       /* data_dir/traces */
    struct metrics *metrics;
    struct ingest_metrics *ingest;  /* shared counters of the receivers */
    struct http_server *http;
    struct grpc_front *grpc;
    void *otlp_state;               /* delta-to-cumulative state of the OTLP receiver */
    void *syslog_state;             /* listeners of the syslog receiver (ingest/syslog.h) */
    void *filetail_state;           /* tailed log files (ingest/filetail.h) */
    void *scrape_state;             /* scrape targets and loop (scrape/scrape.h) */
    void *sampling_state;           /* trace head and tail samplers (ingest/sampling.h) */
    void *snmp_state;               /* SNMP pollers (collect/snmp.h) */
    void *jmx_state;                /* Jolokia pollers (collect/jolokia.h) */
    void *statsd_state;             /* StatsD listeners and aggregates (ingest/statsd.h) */
    void *probe_state;              /* scheduled synthetic probes (probe/probe.h) */
    struct trace_derive *derive;    /* span metrics, service graph, errors (traces/derive.h) */
    struct notifier *notifier;      /* alert delivery (rules/notify.h) */
    struct rules *rules;            /* rule groups and their evaluation (rules/rules.h) */
    int64_t start_time_ms;
    /* the route and method tables gathered from the modules at start */
    const struct http_route **routes;
    size_t nroutes;
    const struct grpc_method **methods;
    size_t nmethods;
    size_t modules_started;         /* how many modules' init ran (for stop) */
};

/* Starts everything; NULL with err on failure (nothing left running). cfg must outlive
 * the returned server. */
struct vigil *vigil_start(const struct config *cfg, struct vg_err *err);
/* Graceful: stop accepting, finish in-flight requests, flush and close stores. */
void vigil_stop(struct vigil *v);

/* The TSDB's directory under cfg->data_dir. 0 or VG_EINVAL when it does not fit. */
int vigil_tsdb_path(const struct config *cfg, char *out, size_t cap);
/* The directory of the store named name ("tsdb", "logs", "traces") under cfg->data_dir. */
int vigil_store_path(const struct config *cfg, const char *name, char *out, size_t cap);
/* storage.fsync as a store's options: *no_sync unless "always"; *sync_interval_ms is
 * storage.fsync_interval for "periodic" (the kv-sync thread of storage/kv.h), else 0. */
void vigil_store_sync(const struct config *cfg, bool *no_sync, int64_t *sync_interval_ms);

#endif
