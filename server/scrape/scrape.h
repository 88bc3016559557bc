/* scrape: Prometheus-style scraping of the targets in `scrape_configs`
 * (scrape_config.h for the config, scrape_append.h for what a scrape stores).
 *
 * Threads: "scrape-io" runs every HTTP transfer at once through one libcurl multi
 * handle (so a hung target costs a socket, not a thread), starting each target on its
 * own slot: the first time t >= now with t = hash(target) mod interval, then every
 * interval, which spreads targets evenly over the interval as Prometheus's offsets do.
 * A target still being scraped or processed when its slot comes skips that slot.
 * Finished transfers go to SCRAPE_WORKERS "scrape-N" threads that parse, relabel and
 * append (scrape_append). "scrape-sd" watches the file_sd_configs directories (inotify)
 * and re-reads every file each refresh_interval, applying changes like a reload.
 *
 * HTTP: GET with Accept "application/openmetrics-text;version=1.0.0,
 * application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,
 * and any type at q=0.1 (Prometheus's), Accept-Encoding gzip (bodies are inflated by libcurl; the
 * body_size_limit counts inflated bytes), X-Prometheus-Scrape-Timeout-Seconds, the
 * configured auth and TLS, redirects followed. The response's Content-Type picks the
 * parser: application/openmetrics-text is OpenMetrics, anything else text 0.0.4. A
 * status other than 200 fails the scrape ("server returned HTTP status 500").
 *
 * Counted on /metrics (Prometheus's names):
 * prometheus_target_scrapes_exceeded_body_size_limit_total,
 * prometheus_target_scrapes_exceeded_sample_limit_total, and
 * prometheus_sd_file_read_errors_total (file_sd files that failed to read or parse; each
 * keeps its last good targets, scrape_sd.h).
 *
 * Reload (scrape_reload, SIGHUP and POST /-/reload) re-reads the config file; targets
 * whose job, URL and labels are unchanged keep their state (staleness cache, health);
 * removed targets get staleness markers for everything they stored.
 *
 * struct scrape is thread-safe: the status walk may run while scrapes go on. */
#ifndef SCRAPE_H
#define SCRAPE_H

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../vigil.h"
#include "scrape_append.h"

#include <stdbool.h>
#include <stdint.h>

#define SCRAPE_WORKERS 2

struct scrape;

extern const struct vigil_module mod_scrape;

/* The first slot at or after now_ms for a target with this hash: the smallest
 * t >= now_ms with t mod interval_ms == hash mod interval_ms. Pure. */
int64_t scrape_first_slot(uint64_t hash, int64_t interval_ms, int64_t now_ms);

/* Builds the targets of cfg and starts scraping into v's TSDB. NULL with err (a bad
 * scrape config, VG_ENOMEM, a thread that would not start). */
struct scrape *scrape_start(struct vigil *v, const struct config *cfg, struct vg_err *err);
/* Stops the threads (in-flight transfers are abandoned), writes staleness markers for
 * every target's series, frees. Accepts NULL. */
void scrape_stop(struct scrape *s);

/* Re-reads the config file cfg->source (the one scrape_start had; the embedded defaults
 * are re-applied as they are) and applies its scrape_configs. On error the running
 * targets are kept and err says why (also logged). One reload at a time. */
int scrape_reload(struct scrape *s, struct vg_err *err);
/* Applies cfg's scrape_configs (what scrape_reload does after reading the file). cfg is
 * only read during the call. */
int scrape_apply(struct scrape *s, const struct config *cfg, struct vg_err *err);

/* A target's state for the APIs. Strings and arrays are valid during the callback. */
struct scrape_target_status {
    const char *pool;              /* job name */
    const struct label *discovered;
    size_t ndiscovered;
    const struct label *labels;    /* empty for a dropped target */
    size_t nlabels;
    bool dropped;
    const char *url;
    const char *health;            /* "up", "down", "unknown" */
    const char *last_error;        /* "" when none */
    int64_t last_scrape_ms;        /* 0 before the first scrape */
    double last_duration_s;
    int64_t interval_ms, timeout_ms;
    const struct scrape_meta *meta; /* HELP/TYPE/UNIT of the last scrape */
    size_t nmeta;
};

/* Calls fn for every target (active, then dropped, pool by pool in config order)
 * under the status lock; fn must not call back into s. */
void scrape_each_target(struct scrape *s,
                        void (*fn)(void *ctx, const struct scrape_target_status *st),
                        void *ctx);

/* Runs one scrape of every active target right now, synchronously (for tests and the
 * first scrape of a test server). 0 or the first error storing samples. */
int scrape_run_once(struct scrape *s, struct vg_err *err);

#endif
