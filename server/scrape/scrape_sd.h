/* scrape_sd: file-based service discovery (file_sd_configs) as Prometheus's: each file
 * matched by a job's globs holds a list of target groups,
 *   JSON: [ { "targets": ["host:9100"], "labels": { "env": "prod" } }, ... ]
 *   YAML: - targets: [host:9100]
 *           labels: { env: prod }
 * and every group gets the label __meta_filepath (the file's path). Both shapes are read
 * by libyaml (JSON is YAML's flow style). A file that cannot be read or parsed is logged,
 * counted and, when read with a scrape_sd_keep that saw it parse before, contributes
 * its last good groups (as Prometheus keeps a half-written file's previous targets);
 * otherwise it contributes none. Change detection is a fingerprint of the matched names and
 * contents (the refresh_interval re-read, as Prometheus re-reads every file then), plus a
 * watch (inotify on Linux) on the globs' directories that reports closes after writing,
 * renames and deletions there so a change is seen as it happens (scrape_sd_watch_*).
 * The functions are pure and thread-safe; a watch is used by one thread at a time. */
#ifndef SCRAPE_SD_H
#define SCRAPE_SD_H

#include "scrape_config.h"

#include <stdbool.h>
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

/* The last contents of every file that parsed, by path, so that a file failing later
 * still gives its previous groups. Shared by all jobs (a file's groups do not depend on
 * the job); thread-safe. NULL on VG_ENOMEM; free with scrape_sd_keep_free (accepts NULL). */
struct scrape_sd_keep;
struct scrape_sd_keep *scrape_sd_keep_new(void);
void scrape_sd_keep_free(struct scrape_sd_keep *k);
/* Forgets the files no scrape_sd_read_keep looked at since the previous prune (files
 * gone from every job's globs). Call after reading every job. */
void scrape_sd_keep_prune(struct scrape_sd_keep *k);

/* scrape_sd_read, remembering good files in keep (NULL: none) and using their last good
 * contents for a file that fails now. *nerrors (may be NULL) gets the number of files
 * that failed to read or parse. 0 or VG_ENOMEM. */
int scrape_sd_read_keep(const struct scrape_job *job, struct scrape_sd_keep *keep,
                        struct scrape_sd_group **out, size_t *n, uint64_t *nerrors,
                        struct vg_err *err);

/* Parses one file's contents (name for messages). Groups appended to *out / *n
 * (vg_realloc'd). 0, VG_EINVAL with "name:line: ...", VG_ENOMEM. */
int scrape_sd_parse(const char *name, const char *buf, size_t len, struct scrape_sd_group **out,
                    size_t *n, struct vg_err *err);

/* A fingerprint of the files the job's globs match now: their names and contents (every
 * file is read); 0 for none. */
uint64_t scrape_sd_fingerprint(const struct scrape_job *job);

/* A set of watched directories. On Linux an inotify descriptor; elsewhere no descriptor,
 * and only the refresh re-read finds changes. */
struct scrape_sd_watch;

/* NULL with err (VG_ENOMEM). When inotify_init1 fails that is logged and the watch has
 * no descriptor. Free with scrape_sd_watch_free (accepts NULL). */
struct scrape_sd_watch *scrape_sd_watch_new(struct vg_err *err);
void scrape_sd_watch_free(struct scrape_sd_watch *w);
/* The descriptor to poll for POLLIN, or -1 when there is none. */
int scrape_sd_watch_fd(const struct scrape_sd_watch *w);
/* Watches the directories of job's globs that exist now (a directory part with
 * wildcards is expanded); watching one twice is a no-op. Returns how many directories
 * of the job are watched; failures are logged. */
size_t scrape_sd_watch_add(struct scrape_sd_watch *w, const struct scrape_job *job);
/* Stops watching everything (before the set is rebuilt for a new config). */
void scrape_sd_watch_clear(struct scrape_sd_watch *w);
/* Reads the pending events without blocking; true when there was any. */
bool scrape_sd_watch_drain(struct scrape_sd_watch *w);

#endif
