/* rules: the rule engine. Loads the rule files named by the config's `rule_files`
 * globs, evaluates every group on its interval, writes recording-rule results and the
 * ALERTS / ALERTS_FOR_STATE series into the TSDB, keeps alert state (inactive ->
 * pending -> firing -> resolved, with `for` and `keep_firing_for`), hands alerts to the
 * notifier, persists alert state across restarts and reloads the rule files on demand.
 *
 * Config (Prometheus's keys, same meaning):
 *   global:
 *     evaluation_interval: 1m      default group interval
 *     rule_query_offset: 0s        default query_offset of groups
 *     external_labels: {k: v}      added to notifications; $externalLabels in templates
 *     (Prometheus's other global keys are accepted and ignored here)
 *   rule_files: [glob, ...]        relative to the config file's directory
 *   server:
 *     external_url: URL            Prometheus's --web.external-url: $externalURL,
 *                                  pathPrefix and alerts' generatorURL; default
 *                                  http://<hostname>:<port of server.http_addr>
 *
 * Metrics (rule_group label "file;group", each under vigil_ and prometheus_):
 * rule_evaluations_total, rule_evaluation_failures_total, rule_evaluation_duration_seconds
 * (histogram), rule_group_iterations_total, rule_group_iterations_missed_total,
 * rule_group_last_evaluation_timestamp_seconds, rule_group_last_duration_seconds,
 * rule_group_interval_seconds, rule_group_rules; vigil_rule_template_errors_total only.
 *
 * Threads: one per group ("rules-eval"), woken at Prometheus's slots: a group with
 * interval I evaluates at times t with t mod I == hash(file, name) mod I, so groups
 * spread over the interval. Every function here is thread-safe.
 *
 * State persistence: data_dir/rules/state.json, rewritten atomically (write, fsync,
 * rename) after an evaluation changed some alert's state or send time. Read at start;
 * a file older than an hour (Prometheus's outage tolerance) is ignored. */
#ifndef RULES_RULES_H
#define RULES_RULES_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "rulefile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct tsdb;
struct logstore;
struct metrics;
struct vigil;
struct vigil_module;
struct rules;

/* The module (server/modules.c): checks the config, starts the engine as v->rules. */
extern const struct vigil_module mod_rules;

struct rules_opts {
    const struct config *cfg;  /* global/rule_files blocks, query limits, config path */
    struct tsdb *tsdb;
    struct logstore *logs;     /* for LogQL groups; may be NULL (their rules then fail) */
    struct metrics *metrics;   /* may be NULL */
    struct vigil *v;           /* v->notifier is read at send time; may be NULL */
    const char *state_dir;     /* NULL: no persistence */
    bool manual;               /* no threads: evaluation only through rules_eval_group
                                  (tests drive the clock) */
};

/* Validates the global and rule_files sections and every rule file they name. 0 or
 * VG_EINVAL with "file:line: ..." (the first error). */
int rules_check_config(const struct config *cfg, struct vg_err *err);

/* Loads settings and rule files, restores saved alert state, starts the group threads.
 * NULL with err when a rule file is bad or out of memory. Free with rules_free. */
struct rules *rules_new(const struct rules_opts *o, struct vg_err *err);
/* Stops the threads (an evaluation in progress finishes), saves state, frees. */
void rules_free(struct rules *r); /* accepts NULL */

/* Re-reads the config file's global and rule_files sections (when the config came from
 * a file) and the rule files. On success the new groups replace the old ones; rules
 * that are unchanged (same file, group, kind, name and labels) keep their alerts and
 * health. On failure (VG_EINVAL with the error, VG_EIO, VG_ENOMEM) the old rules keep
 * running. One reload at a time; the error is also logged. */
int rules_reload(struct rules *r, struct vg_err *err);

/* ---- for tests and the API ---- */

size_t rules_ngroups(struct rules *r);
/* Evaluates group gi (in the API's order: by file, then name) once at time ts_ms, as
 * its thread would. 0, or VG_ENOTFOUND for a bad index. Rule failures are recorded in
 * the rules' health, not returned. */
int rules_eval_group(struct rules *r, size_t gi, int64_t ts_ms);
/* Prometheus's slot for a group: the latest t <= now_ms with t mod interval ==
 * hash mod interval. */
int64_t rules_slot(uint64_t hash, int64_t interval_ms, int64_t now_ms);
/* The hash rules_slot uses for a group (of its file and name). */
uint64_t rules_group_hash(const char *file, const char *name);

enum rules_alert_state { RULES_INACTIVE, RULES_PENDING, RULES_FIRING };
const char *rules_alert_state_name(enum rules_alert_state s); /* "inactive", ... */

enum rules_health { RULES_UNKNOWN, RULES_OK, RULES_ERR };
const char *rules_health_name(enum rules_health h); /* "unknown", "ok", "err" */

struct rules_alert_view {
    struct label *labels;          /* sorted; alertname and rule labels included */
    size_t nlabels;
    struct label *annotations;     /* sorted */
    size_t nannotations;
    enum rules_alert_state state;  /* pending or firing */
    int64_t active_at_ms;
    int64_t keep_firing_since_ms;  /* 0 = not keeping firing */
    double value;
};

struct rules_rule_view {
    enum rule_kind kind;
    const char *name;
    const char *query;             /* canonical expression */
    struct label *labels;          /* group labels and the rule's, as written */
    size_t nlabels;
    struct label *annotations;
    size_t nannotations;
    int64_t for_ms, keep_firing_for_ms;
    enum rules_alert_state state;  /* the highest of its alerts' */
    enum rules_health health;
    const char *last_error;        /* "" when none */
    double eval_seconds;
    int64_t last_eval_ms;          /* 0 = never */
    struct rules_alert_view *alerts; /* pending and firing, sorted by labels */
    size_t nalerts;
};

struct rules_group_view {
    const char *name;
    const char *file;
    int64_t interval_ms;
    int64_t limit;
    double eval_seconds;
    int64_t last_eval_ms;
    struct rules_rule_view *rules;
    size_t nrules;
};

/* A consistent copy of every group's state (each group copied under its lock). */
struct rules_view {
    struct rules_group_view *groups; /* by file, then name */
    size_t ngroups;
    struct vg_arena *arena;          /* everything above */
};
/* 0 with *out (free with rules_view_free) or VG_ENOMEM. r may be NULL (no groups). */
int rules_view(struct rules *r, struct rules_view **out, struct vg_err *err);
void rules_view_free(struct rules_view *v); /* accepts NULL */

#endif
