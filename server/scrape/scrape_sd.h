/* scrape_sd: file-based service discovery (file_sd_configs) as Prometheus's: each file
 * matched by a job's globs holds a list of target groups,
 *   JSON: [ { "targets": ["host:9100"], "labels": { "env": "prod" } }, ... ]
 *   YAML: - targets: [host:9100]
 *           labels: { env: prod }
 * and every group gets the label __meta_filepath (the file's path). Both shapes are read
 * by libyaml (JSON is YAML's flow style). A file that cannot be read or parsed is logged
 * and contributes no targets. Change detection is a fingerprint of the matched names,
 * sizes and modification times, so a poll costs a glob and a stat per file.
 * Pure functions; thread-safe. */
#ifndef SCRAPE_SD_H
#define SCRAPE_SD_H

#include "scrape_config.h"

#include <stdint.h>

struct scrape_sd_group {
    struct scrape_group g;
    char *filepath;   /* for __meta_filepath */
};

/* Reads every file the job's globs match now. *out (vg_malloc'd, *n groups) is freed
 * with scrape_sd_groups_free. Files that fail are logged and skipped; 0 or VG_ENOMEM. */
int scrape_sd_read(const struct scrape_job *job, struct scrape_sd_group **out, size_t *n,
                   struct vg_err *err);
void scrape_sd_groups_free(struct scrape_sd_group *v, size_t n);

/* Parses one file's contents (name for messages). Groups appended to *out / *n
 * (vg_realloc'd). 0, VG_EINVAL with "name:line: ...", VG_ENOMEM. */
int scrape_sd_parse(const char *name, const char *buf, size_t len, struct scrape_sd_group **out,
                    size_t *n, struct vg_err *err);

/* A fingerprint of the files the job's globs match (names, sizes, mtimes); 0 for none. */
uint64_t scrape_sd_fingerprint(const struct scrape_job *job);

#endif
