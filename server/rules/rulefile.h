/* rulefile: Prometheus rule files (YAML), parsed and validated as `promtool check rules`
 * does.
 *
 *   groups:
 *     - name: <string>            unique within the file
 *       interval: <duration>      default: global.evaluation_interval
 *       limit: <int>              0 = no limit on series/alerts a rule may produce
 *       query_offset: <duration>  evaluate at t - offset (Prometheus 2.53+)
 *       labels: {name: value}     added to every rule's output (Prometheus 3)
 *       type: promql | logql      Vigil's marker for log rules (Loki's ruler has none:
 *                                 its files are all LogQL); default promql
 *       rules:
 *         - record: <metric name> | alert: <name>
 *           expr: <PromQL, or LogQL metric query in a logql group>
 *           for: <duration>               alerting rules only
 *           keep_firing_for: <duration>   alerting rules only
 *           labels: {name: template}
 *           annotations: {name: template} alerting rules only
 *
 * Validation (messages as promtool's, prefixed "file:line: " for the offending node):
 * unknown keys, duplicate group names, neither or both of record/alert, missing expr,
 * record names that are not metric names, label and annotation names that are not
 * label names (the classic [a-zA-Z_][a-zA-Z0-9_]* rule, as Prometheus 2), for /
 * keep_firing_for / annotations on recording rules, expression parse errors with their
 * position, template parse errors in labels and annotations.
 *
 * A parsed file is immutable and may be read by several threads at once. */
#ifndef RULES_RULEFILE_H
#define RULES_RULEFILE_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct promql_expr;
struct logql_expr;
struct rule_template;

enum rule_kind { RULE_RECORD, RULE_ALERT };
enum rule_lang { RULE_LANG_PROMQL, RULE_LANG_LOGQL };

struct rule_def {
    enum rule_kind kind;
    const char *name;             /* record or alert name */
    const char *expr;             /* as written */
    unsigned line;                /* line of the rule in the file */
    int64_t for_ms;
    int64_t keep_firing_for_ms;
    struct label *labels;         /* sorted by name; values are templates */
    size_t nlabels;
    struct label *annotations;    /* sorted by name; values are templates */
    size_t nannotations;
    struct rule_template **label_tmpl; /* nlabels parsed templates, same order */
    struct rule_template **annot_tmpl; /* nannotations parsed templates */
    struct promql_expr *promql;   /* RULE_LANG_PROMQL */
    struct logql_expr *logql;     /* RULE_LANG_LOGQL */
    const char *query;            /* canonical form of the expression (API's "query") */
};

struct rule_group_def {
    const char *name;
    const char *file;            /* the file's path as given */
    unsigned line;
    int64_t interval_ms;         /* 0 = not set (the global evaluation interval applies) */
    int64_t limit;               /* 0 = none */
    int64_t query_offset_ms;     /* 0 = none */
    enum rule_lang lang;
    struct label *labels;        /* group labels, sorted */
    size_t nlabels;
    struct rule_def *rules;
    size_t nrules;
};

struct rule_file {
    const char *path;
    struct rule_group_def *groups;
    size_t ngroups;
    size_t nrules;               /* over all groups */
    void *priv;                  /* the memory behind all of the above */
};

/* Parses buf (len bytes) as the rule file named path. Returns 0 with *out (free with
 * rulefile_free), or VG_EINVAL with the first error in err ("path:line: ...") and,
 * when errors is not NULL, every error found appended to errors one per line (YAML
 * syntax errors stop at the first), or VG_ENOMEM. */
int rulefile_parse(const char *path, const char *buf, size_t len, struct rule_file **out,
                   struct vg_buf *errors, struct vg_err *err);
/* Reads the file at path and parses it; VG_EIO ("path: cannot open: ...") when it cannot
 * be read. */
int rulefile_load(const char *path, struct rule_file **out, struct vg_buf *errors,
                  struct vg_err *err);
void rulefile_free(struct rule_file *f); /* accepts NULL */

/* promtool's duplicate-rules lint: rules of one group with the same record or alert
 * name and the same labels. Returns how many rules duplicate an earlier one and, when
 * out is given and there are some, appends "N duplicate rule(s) found.", then per set
 * "Metric: NAME", "Group: G (file:line, file:line...)" and its labels, then
 * "Might cause inconsistency while recording expressions". */
size_t rulefile_duplicates(const struct rule_file *f, struct vg_buf *out);

/* Name rules: [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*. */
bool rulefile_valid_metric_name(const char *s);
bool rulefile_valid_label_name(const char *s);

#endif
