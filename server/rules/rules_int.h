/* rules_int: what rules.c (loading, threads, reload, views), rules_eval.c (evaluating
 * one rule) and rules_state.c (saving and restoring alert state) share.
 *
 * Locking: rules.mu guards rules.gen (the running generation of groups) and is held by
 * views and by the swap in a reload; group threads never take it. group_rt.mu guards
 * the state of the group's rules (alerts, health, series written) and is held briefly
 * by evaluation and by views. rules.state_mu serialises writes of the state file. */
#ifndef RULES_RULES_INT_H
#define RULES_RULES_INT_H

#include "../metrics.h"
#include "../promql/engine.h"
#include "rules.h"

#include <pthread.h>

/* Prometheus's defaults: --rules.alert.resend-delay, resolved alerts kept for
 * re-sending, --rules.alert.for-outage-tolerance. */
#define RULES_RESEND_DELAY_MS 60000
#define RULES_RESOLVED_RETENTION_MS (15 * 60000LL)
#define RULES_OUTAGE_TOLERANCE_MS (60 * 60000LL)

/* One alert of an alerting rule: labels fixed for its life, annotations replaced at
 * each evaluation. Both are single vg_malloc blocks (rules_labels_copy). */
struct alert_rt {
    struct label *labels;
    size_t nlabels;
    struct label *annotations;
    size_t nannotations;
    uint64_t hash;
    enum rules_alert_state state;
    double value;
    int64_t active_at, fired_at, resolved_at, last_sent_at, keep_firing_since, valid_until;
};

/* A series a rule wrote at its last successful evaluation (for staleness markers). */
struct series_mark {
    struct label *labels; /* rules_labels_copy block */
    size_t nlabels;
    uint64_t hash;
};

struct rule_rt {
    const struct rule_def *def;
    struct label *labels;  /* group labels then the rule's (rule wins), sorted; arena */
    size_t nlabels;
    struct rule_template **tmpl; /* template per label, NULL for group labels */
    enum rules_health health;
    char *last_error;      /* vg_malloc'd, NULL = none */
    char *tmpl_error;      /* the template errors last logged (group thread only, no lock) */
    int64_t last_eval;
    double eval_seconds;
    struct alert_rt *alerts;
    size_t nalerts, cap;
    struct series_mark *prev;
    size_t nprev;
    bool used;             /* reload: state already taken by a new rule */
};

struct generation;

struct group_rt {
    struct rules *r;
    struct generation *gen;
    const struct rule_group_def *def;
    char *key;             /* "file;name", the rule_group label */
    uint64_t hash;
    int64_t interval_ms;
    int64_t offset_ms;     /* query_offset */
    struct rule_rt *rules;
    size_t nrules;
    pthread_mutex_t mu;
    int64_t last_eval;
    double eval_seconds;
    bool dirty;            /* alert state changed since the last save */
    pthread_t thread;
    bool started;
};

/* Settings read from the config's global and rule_files sections. */
struct rules_settings {
    int64_t interval_ms;
    int64_t query_offset_ms;
    struct label *external; /* sorted */
    size_t nexternal;
    const char **globs;
    size_t nglobs;
    const char *base_dir;   /* of the config file; "." for the embedded defaults */
    const char *external_url; /* no trailing '/'; $externalURL and alerts' generatorURL */
};

struct generation {
    struct vg_arena *arena;   /* settings, groups, rule_rts */
    struct rules_settings set;
    struct rule_file **files;
    size_t nfiles;
    struct group_rt **groups; /* by file, then name */
    size_t ngroups;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stop;
};

enum rules_metric {
    RM_EVALS, RM_FAILURES, RM_MISSED, RM_ITERATIONS, RM_LAST_TS, RM_LAST_DUR, RM_INTERVAL,
    RM_RULES, RM_EVAL_DURATION, RM_TEMPLATE_ERRORS, RM_COUNT
};

struct rules {
    struct rules_opts o;
    pthread_mutex_t mu;
    pthread_mutex_t reload_mu;
    pthread_mutex_t state_mu;
    struct generation *gen;
    struct promql_opts popts;
    struct metric_family *fam[RM_COUNT][2]; /* vigil_rule_* and prometheus_rule_* */
    char state_path[4096];
    struct restored *restored; /* saved state not yet claimed by a rule (rules_state.c) */
};

/* rules.c */
/* The slot to evaluate when a group's thread wakes at now for the slot next: the
 * latest slot <= now; the whole intervals skipped count as missed iterations. */
int64_t rules_group_catch_up(struct group_rt *g, int64_t next, int64_t now);

/* rules_eval.c */
void rules_eval_rule(struct group_rt *g, struct rule_rt *rr, int64_t ts);
void rules_metric_add(struct rules *r, enum rules_metric m, const char *group, double d);
void rules_metric_set(struct rules *r, enum rules_metric m, const char *group, double v);
void rules_metric_observe(struct rules *r, enum rules_metric m, const char *group, double v);
/* One vg_malloc block holding a copy of ls (sorted as given); NULL on OOM (n may be 0). */
struct label *rules_labels_copy(const struct label *ls, size_t n);
void rules_rule_clear(struct rule_rt *rr);
/* Appends Prometheus's generatorURL for an alert of expression expr:
 * <external_url>/graph?g0.expr=<url.QueryEscape(expr)>&g0.tab=1. */
void rules_generator_url(struct vg_buf *b, const char *external_url, const char *expr);

/* rules_state.c */
/* Reads the state file into r->restored (missing, old or unreadable: nothing). */
void rules_state_load(struct rules *r);
/* Hands the saved alerts of rule rr of group g to it (once). */
void rules_state_claim(struct rules *r, struct group_rt *g, struct rule_rt *rr);
void rules_state_free(struct rules *r);
/* Writes every alert of gen to the state file (atomically). */
void rules_state_save(struct rules *r, struct generation *gen);

#endif
