/* vigil: see vigil.h. Start order: metrics, stores, modules, then the front ends, so no
 * request can arrive before what it needs exists; stop runs in reverse. */
#include "vigil.h"

#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_log.h"
#include "../storage/logstore/logstore.h"
#include "../storage/spanstore/spanstore.h"
#include "../storage/tsdb/tsdb.h"
#include "ingest/ingest.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mkdir -p */
static int make_dirs(const char *path, struct vg_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return vg_err_set(err, VG_EINVAL, "data directory path too long");
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return vg_err_set(err, VG_EIO, "cannot create %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return vg_err_set(err, VG_EIO, "cannot create %s: %s", tmp, strerror(errno));
    return 0;
}

int vigil_store_path(const struct config *cfg, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", cfg->data_dir, name);
    return n > 0 && (size_t)n < cap ? 0 : VG_EINVAL;
}

int vigil_tsdb_path(const struct config *cfg, char *out, size_t cap)
{
    return vigil_store_path(cfg, "tsdb", out, cap);
}

void vigil_store_sync(const struct config *cfg, bool *no_sync, int64_t *sync_interval_ms)
{
    *no_sync = cfg->fsync != CONFIG_FSYNC_ALWAYS;
    *sync_interval_ms = cfg->fsync == CONFIG_FSYNC_PERIODIC ? cfg->fsync_interval_ms : 0;
}

#define NS_PER_MS 1000000LL

static int open_stores(struct vigil *v, struct vg_err *err)
{
    const struct config *cfg = v->cfg;
    char path[PATH_MAX];
    if (vigil_store_path(cfg, "logs", path, sizeof path) < 0)
        return vg_err_set(err, VG_EINVAL, "storage.data_dir: path too long");
    struct logstore_opts lo;
    logstore_opts_default(&lo);
    lo.dir = path;
    lo.retention_ns = cfg->log_retention_ms * NS_PER_MS;
    vigil_store_sync(cfg, &lo.no_sync, &lo.sync_interval_ms);
    v->logs = logstore_open(&lo, err);
    if (!v->logs)
        return err->code;
    if (vigil_store_path(cfg, "traces", path, sizeof path) < 0)
        return vg_err_set(err, VG_EINVAL, "storage.data_dir: path too long");
    struct spanstore_opts so;
    spanstore_opts_default(&so);
    so.dir = path;
    so.retention_ns = cfg->trace_retention_ms * NS_PER_MS;
    vigil_store_sync(cfg, &so.no_sync, &so.sync_interval_ms);
    v->traces = spanstore_open(&so, err);
    return v->traces ? 0 : err->code;
}

static int gather_tables(struct vigil *v, struct vg_err *err)
{
    size_t nr = 0, ng = 0;
    for (size_t i = 0; i < vigil_nmodules; i++) {
        nr += vigil_modules[i]->nroutes;
        ng += vigil_modules[i]->ngrpc;
    }
    v->routes = vg_calloc(nr ? nr : 1, sizeof *v->routes);
    v->methods = vg_calloc(ng ? ng : 1, sizeof *v->methods);
    if (!v->routes || !v->methods)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < vigil_nmodules; i++) {
        const struct vigil_module *m = vigil_modules[i];
        for (size_t r = 0; r < m->nroutes; r++)
            v->routes[v->nroutes++] = &m->routes[r];
        for (size_t g = 0; g < m->ngrpc; g++)
            v->methods[v->nmethods++] = &m->grpc_methods[g];
    }
    return 0;
}

int vigil_check_config(const struct config *cfg, struct vg_err *err)
{
    for (size_t i = 0; i < vigil_nmodules; i++) {
        const struct vigil_module *m = vigil_modules[i];
        int rc = m->check ? m->check(cfg, err) : 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct vigil *vigil_start(const struct config *cfg, struct vg_err *err)
{
    if (vigil_check_config(cfg, err) < 0)
        return NULL;
    struct vigil *v = vg_calloc(1, sizeof *v);
    if (!v) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    v->cfg = cfg;
    v->start_time_ms = now_ms();
    v->metrics = metrics_new();
    if (!v->metrics) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    if (ingest_metrics_init(v, err) < 0)
        goto fail;

    char path[PATH_MAX];
    if (make_dirs(cfg->data_dir, err) < 0 || vigil_tsdb_path(cfg, path, sizeof path) < 0) {
        vg_err_prefix(err, "storage.data_dir");
        goto fail;
    }
    struct tsdb_opts to;
    tsdb_opts_default(&to);
    to.dir = path;
    to.retention_ms = cfg->retention_ms;
    to.ooo_window_ms = cfg->out_of_order_window_ms;
    to.cache_bytes = (size_t)cfg->cache_bytes;
    vigil_store_sync(cfg, &to.no_sync, &to.sync_interval_ms);
    v->tsdb = tsdb_open(&to, err);
    if (!v->tsdb)
        goto fail;
    if (open_stores(v, err) < 0)
        goto fail;

    for (size_t i = 0; i < vigil_nmodules; i++) {
        const struct vigil_module *m = vigil_modules[i];
        if (m->init && m->init(v, err) < 0) {
            vg_err_prefix(err, "module %s", m->name);
            goto fail;
        }
        v->modules_started = i + 1;
    }
    if (gather_tables(v, err) < 0)
        goto fail;

    struct http_server_opts ho = {
        .addr = cfg->http_addr,
        .threads = (unsigned)cfg->http_threads,
        .max_body_bytes = (size_t)cfg->limits.max_body_bytes,
        .max_decoded_bytes = (size_t)cfg->limits.max_decoded_bytes,
        .timeout_s = 120,
    };
    v->http = http_start(v, v->routes, v->nroutes, &ho, err);
    if (!v->http)
        goto fail;
    struct grpc_server_opts go = {
        .addr = cfg->grpc_addr,
        .threads = (unsigned)cfg->grpc_threads,
        .max_msg_bytes = (size_t)cfg->limits.max_decoded_bytes,
    };
    v->grpc = grpc_front_start(v, v->methods, v->nmethods, &go, err);
    if (!v->grpc)
        goto fail;

    char hp[16], gp[16];
    snprintf(hp, sizeof hp, "%u", http_port(v->http));
    snprintf(gp, sizeof gp, "%u", grpc_front_port(v->grpc));
    vg_log(VG_LOG_INFO, "vigil", "started", "version", VIGIL_VERSION, "config", cfg->source,
           "http_addr", cfg->http_addr, "http_port", hp, "grpc_addr", cfg->grpc_addr,
           "grpc_port", gp, "data_dir", cfg->data_dir, NULL);
    return v;
fail:
    vigil_stop(v);
    return NULL;
}

void vigil_stop(struct vigil *v)
{
    if (!v)
        return;
    if (v->http || v->grpc)
        vg_log(VG_LOG_INFO, "vigil", "stopping: no new requests, finishing in-flight ones", NULL);
    http_stop(v->http);
    v->http = NULL;
    grpc_front_stop(v->grpc);
    v->grpc = NULL;
    for (size_t i = v->modules_started; i > 0; i--)
        if (vigil_modules[i - 1]->free)
            vigil_modules[i - 1]->free(v);
    if (v->tsdb || v->logs || v->traces) {
        tsdb_close(v->tsdb);
        logstore_close(v->logs);
        spanstore_close(v->traces);
        vg_log(VG_LOG_INFO, "vigil", "stores flushed and closed", NULL);
    }
    if (v->ingest)
        ingest_metrics_free(v);
    metrics_free(v->metrics);
    vg_free(v->routes);
    vg_free(v->methods);
    vg_free(v);
}
