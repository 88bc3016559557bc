/* scrape_config: the `scrape_configs` section in Prometheus's YAML shape, and the
 * target labels built from it (Prometheus's PopulateLabels).
 *
 *   global:
 *     scrape_interval: 1m          default of every job's scrape_interval
 *     scrape_timeout: 10s          default of every job's scrape_timeout
 *     body_size_limit, sample_limit, label_limit, label_name_length_limit,
 *     label_value_length_limit     defaults of the jobs' keys of the same name (as
 *                                  Prometheus 2.45+); a job's 0 or absent key inherits
 *   scrape_configs:
 *     - job_name: node             required, unique
 *       scrape_interval: 15s       default global.scrape_interval
 *       scrape_timeout: 10s        default global.scrape_timeout, capped at the interval
 *                                  (an explicit value above the interval is an error)
 *       metrics_path: /metrics
 *       scheme: http               http or https (https through libcurl, tls_config below)
 *       params: { module: [if_mib] }
 *       honor_labels: false        true: scraped labels win over target labels; false:
 *                                  clashing scraped labels are renamed exported_<name>
 *       honor_timestamps: true     false: scraped timestamps are ignored
 *       basic_auth: { username, password | password_file }
 *       authorization: { type: Bearer, credentials | credentials_file }
 *       bearer_token / bearer_token_file   (older spelling of authorization)
 *       tls_config: { ca_file, cert_file, key_file, server_name, insecure_skip_verify,
 *                     min_version }   (../tls_config.h)
 *       static_configs: [ { targets: [host:port, ...], labels: { k: v } } ]
 *       file_sd_configs: [ { files: [glob, ...], refresh_interval: 5m } ]
 *                                  JSON (.json) or YAML (.yml/.yaml) files holding a list
 *                                  of { targets, labels }; re-read when they change
 *       relabel_configs: [...]     relabel.h; applied to target labels
 *       metric_relabel_configs: [...]  applied to every scraped sample
 *       sample_limit: 0            0 = none; more samples after relabelling fail the scrape
 *       label_limit: 0             labels per sample (after relabelling)
 *       label_name_length_limit: 0
 *       label_value_length_limit: 0
 *       body_size_limit: 0         bytes (uncompressed), also "10MiB"; when both the job
 *                                  and global say 0 (or nothing), the built-in
 *                                  SCRAPE_DEFAULT_BODY_SIZE_LIMIT (256 MiB) applies, so a
 *                                  runaway target cannot make a scrape buffer unbounded
 * Other keys Prometheus knows for a scrape config are refused by name, so a config that
 * relies on (say) kubernetes_sd_configs fails at start instead of scraping nothing.
 *
 * Target labels: a target group's labels plus __address__ (the target), then job,
 * __scheme__, __metrics_path__, __scrape_interval__, __scrape_timeout__ and __param_<k>
 * (first value of each param) where the group did not set them; relabel_configs run;
 * a dropped target is kept for /api/v1/targets' droppedTargets. __address__ without a
 * port gets :80 or :443 by scheme (as Prometheus 2.x); labels starting with "__" are
 * removed; instance defaults to __address__. The scrape URL is
 * scheme://address/metrics_path?params, with __param_<k> overriding params[k][0].
 *
 * Everything parsed here is immutable and may be read from any thread. */
#ifndef SCRAPE_CONFIG_H
#define SCRAPE_CONFIG_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../config.h"
#include "../tls_config.h"
#include "relabel.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAPE_DEFAULT_INTERVAL_MS 60000
#define SCRAPE_DEFAULT_TIMEOUT_MS 10000
/* The body_size_limit when neither the job nor global sets one. Prometheus has none; a
 * ceiling is needed because the body is buffered whole and scrape_append holds every
 * parsed sample until the batch is stored: about 28 bytes per body byte for the shortest
 * lines ("m1 1\n"), a few for typical ones (test_scrape_append measures it). 256 MiB is
 * far above real exporters (node_exporter sends ~0.1-1 MiB, kube-state-metrics of a
 * large cluster tens of MiB), so no sane target is cut off, while a target serving
 * millions of series without end is stopped there. A pathological 256 MiB body of
 * minimal lines can still cost ~7 GiB while it is appended: lower the limit (or set
 * sample_limit) where that is too much. */
#define SCRAPE_DEFAULT_BODY_SIZE_LIMIT ((int64_t)256 << 20)

/* A list of targets sharing labels (a static_configs item or one group of a file). */
struct scrape_group {
    char **targets;
    size_t ntargets;
    struct label *labels;   /* names and values vg_malloc'd, as written */
    size_t nlabels;
};

struct scrape_param {
    char *name;
    char **values;
    size_t nvalues;
};

struct scrape_job {
    char *name;
    int64_t interval_ms, timeout_ms;
    char *metrics_path, *scheme;
    struct scrape_param *params;
    size_t nparams;
    bool honor_labels, honor_timestamps;
    /* auth, resolved at load (files read then, as Prometheus re-reads them per scrape
     * only when they change; a reload picks up new contents) */
    char *basic_user, *basic_pass;    /* NULL when no basic_auth */
    char *auth_header;                /* "Bearer xyz" when authorization is set */
    struct tls_config tls;            /* tls_config (../tls_config.h) */
    struct scrape_group *groups;      /* static_configs */
    size_t ngroups;
    char **sd_globs;                  /* file_sd_configs, all files of the job */
    size_t nsd_globs;
    int64_t sd_refresh_ms;
    struct relabel_rules relabel, metric_relabel;
    int64_t sample_limit, label_limit, label_name_length_limit, label_value_length_limit;
    int64_t body_size_limit;
};

struct scrape_config {
    struct scrape_job *jobs;
    size_t njobs;
    char *base_dir;   /* directory of the config file: relative file paths start there */
};

/* Parses cfg's scrape_configs (and global's scrape_interval, scrape_timeout and limits;
 * the resolved limits are in each job, body_size_limit never 0). No section
 * gives zero jobs. 0, VG_EINVAL with "file:line: scrape_configs[i].key: ...", VG_ENOMEM.
 * *out is freed with scrape_config_free. */
int scrape_config_parse(const struct config *cfg, struct scrape_config **out,
                        struct vg_err *err);
void scrape_config_free(struct scrape_config *c); /* accepts NULL */

/* One target after relabelling. Strings and arrays come from the arena given. */
struct scrape_target_def {
    struct label *discovered;   /* sorted: the labels relabel_configs saw */
    size_t ndiscovered;
    struct label *labels;       /* sorted: the target's labels (no "__" ones); empty if dropped */
    size_t nlabels;
    const char *url;            /* NULL when dropped */
    int64_t interval_ms, timeout_ms;
    uint64_t hash;              /* of url and labels: identity across reloads */
    bool dropped;
};

/* Builds target number ti of group g (extra, nextra: labels added to the group's, such
 * as __meta_filepath). Returns 1 for an active target, 0 for one relabel_configs
 * dropped (def->discovered set), VG_EINVAL with err for a target that cannot be scraped
 * (no address, a bad __scrape_interval__, ...), VG_ENOMEM. */
int scrape_target_build(const struct scrape_job *job, const struct scrape_group *g, size_t ti,
                        const struct label *extra, size_t nextra, struct vg_arena *a,
                        struct scrape_target_def *def, struct vg_err *err);

/* ms as Prometheus's model.Duration prints it, largest units first: "1m30s", "15s",
 * "500ms", "0s". */
void scrape_format_duration(char *out, size_t cap, int64_t ms);

/* Parses one { targets: [...], labels: {...} } item (a static_configs entry or a group
 * of a file_sd file) into g (zeroed by the caller; freed with scrape_group_free even on
 * failure). where names it in messages. 0, VG_EINVAL with "file:line: ...", VG_ENOMEM. */
struct config_node;
int scrape_group_parse(const struct config_node *it, const char *where, struct scrape_group *g,
                       struct vg_err *err);

/* Frees the contents of one group (not g itself). */
void scrape_group_free(struct scrape_group *g);

#endif
