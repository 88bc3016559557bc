/* self_metrics: GET /metrics (see self_metrics.h).
 *
 * Collectors written here, each a complete block with # HELP and # TYPE:
 *   vigil_tsdb_series, vigil_tsdb_head_series, vigil_tsdb_head_samples (gauges),
 *   vigil_tsdb_chunks_persisted_total, vigil_tsdb_samples_appended_total,
 *   vigil_tsdb_out_of_order_samples_total (counters), vigil_tsdb_disk_bytes (gauge)
 *   vigil_heap_live_bytes (gauge, vg_alloc_live_bytes)
 *   vigil_storage_fsyncs_total{store}, vigil_storage_fsync_failures_total{store}
 *   (counters: the background fsyncs of storage.fsync periodic, per store: tsdb, logs,
 *   traces; 0 in the other modes)
 *   process_cpu_seconds_total, process_resident_memory_bytes,
 *   process_virtual_memory_bytes, process_open_fds, process_max_fds,
 *   process_start_time_seconds: read from /proc/self/{stat,fd,limits} and /proc/stat's
 *   btime the way Prometheus's Go client computes them, so dashboards built for
 *   Prometheus itself work unchanged
 *   vigil_build_info{version} 1
 * A /proc file that cannot be read leaves its metrics out instead of reporting zeros. */
#include "self_metrics.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/kv.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/spanstore/spanstore.h"
#include "../../storage/tsdb/tsdb.h"
#include "exposition.h"

#include <dirent.h>
#include <math.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* One family with a single unlabelled sample. */
static void put_one(struct vg_buf *out, const char *name, const char *help,
                    enum exposition_type type, double v)
{
    struct vg_str n = vg_str_c(name);
    exposition_write_help(out, n, vg_str_c(help));
    exposition_write_type(out, n, type);
    exposition_write_sample(out, n, NULL, 0, v, false, 0);
}

static void collect_tsdb(void *ctx, struct vg_buf *out)
{
    struct vigil *v = ctx;
    if (!v->tsdb)
        return;
    struct tsdb_stats st;
    tsdb_stats(v->tsdb, &st);
    put_one(out, "vigil_tsdb_series", "Series known to the TSDB (in the head or on disk).",
            EXPOSITION_GAUGE, (double)st.series);
    put_one(out, "vigil_tsdb_head_series", "Series with samples in the in-memory head.",
            EXPOSITION_GAUGE, (double)st.head_series);
    put_one(out, "vigil_tsdb_head_samples", "Samples in the head not yet in a persisted chunk.",
            EXPOSITION_GAUGE, (double)st.head_samples);
    put_one(out, "vigil_tsdb_chunks_persisted_total", "Chunks written to disk since start.",
            EXPOSITION_COUNTER, (double)st.chunks_persisted);
    put_one(out, "vigil_tsdb_samples_appended_total", "Samples appended since start.",
            EXPOSITION_COUNTER, (double)st.samples_appended);
    put_one(out, "vigil_tsdb_out_of_order_samples_total",
            "Out-of-order samples accepted since start.", EXPOSITION_COUNTER,
            (double)st.ooo_samples);
    put_one(out, "vigil_tsdb_disk_bytes", "Size of the TSDB's database directory in bytes.",
            EXPOSITION_GAUGE, (double)st.bytes_on_disk);
}

static void collect_heap(void *ctx, struct vg_buf *out)
{
    (void)ctx;
    put_one(out, "vigil_heap_live_bytes", "Bytes currently allocated on Vigil's heap.",
            EXPOSITION_GAUGE, (double)vg_alloc_live_bytes());
}

static void collect_build(void *ctx, struct vg_buf *out)
{
    (void)ctx;
    struct vg_str n = VG_STR("vigil_build_info");
    struct label l = { VG_STR("version"), VG_STR(VIGIL_VERSION) };
    exposition_write_help(out, n, VG_STR("A metric with a constant '1' value labelled by the "
                                         "version Vigil was built from."));
    exposition_write_type(out, n, EXPOSITION_GAUGE);
    exposition_write_sample(out, n, &l, 1, 1, false, 0);
}

/* Reads a whole (small, /proc) file into b as a C string; false when it cannot. */
static bool read_file(const char *path, struct vg_buf *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    vg_buf_reset(b);
    for (;;) {
        if (!vg_buf_reserve(b, 4096))
            break;
        ssize_t r = read(fd, b->p + b->len, b->cap - b->len - 1);
        if (r <= 0)
            break;
        b->len += (size_t)r;
    }
    close(fd);
    return !vg_buf_failed(b) && vg_buf_cstr(b) != NULL && b->len > 0;
}

/* Boot time in seconds since the epoch (/proc/stat "btime"), or -1. */
static long long boot_time(struct vg_buf *b)
{
    if (!read_file("/proc/stat", b))
        return -1;
    const char *p = strstr(b->p, "\nbtime ");
    return p ? strtoll(p + 7, NULL, 10) : -1;
}

static void collect_fds(struct vg_buf *out, struct vg_buf *tmp)
{
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (struct dirent *e; (e = readdir(d)) != NULL;)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        put_one(out, "process_open_fds", "Number of open file descriptors.",
                EXPOSITION_GAUGE, (double)n);
    }
    if (read_file("/proc/self/limits", tmp)) {
        const char *p = strstr(tmp->p, "Max open files");
        if (p) {
            p += strlen("Max open files");
            while (*p == ' ')
                p++;
            /* "unlimited" is reported as +Inf, as the Go client does. */
            double v = strncmp(p, "unlimited", 9) == 0 ? INFINITY : strtod(p, NULL);
            put_one(out, "process_max_fds", "Maximum number of open file descriptors.",
                    EXPOSITION_GAUGE, v);
        }
    }
}

void self_metrics_collect_process(void *ctx, struct vg_buf *out)
{
    (void)ctx;
    struct vg_buf b;
    vg_buf_init(&b);
    /* Fields of /proc/self/stat after the ")" closing comm (which may hold spaces):
     * 0 state ... 11 utime, 12 stime, 19 starttime (ticks since boot), 20 vsize (bytes),
     * 21 rss (pages); see proc(5). */
    char *end = read_file("/proc/self/stat", &b) ? strrchr(b.p, ')') : NULL;
    if (end) {
        unsigned long long f[22] = { 0 };
        char *p = end + 1;
        size_t k = 0;
        while (k < 22) {
            while (*p == ' ')
                p++;
            if (!*p)
                break;
            char *next;
            f[k++] = strtoull(p, &next, 10);
            p = next;
            while (*p && *p != ' ')
                p++;
        }
        if (k == 22) {
            double tick = (double)sysconf(_SC_CLK_TCK);
            double page = (double)sysconf(_SC_PAGESIZE);
            put_one(out, "process_cpu_seconds_total",
                    "Total user and system CPU time spent in seconds.", EXPOSITION_COUNTER,
                    (double)(f[11] + f[12]) / tick);
            put_one(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
                    EXPOSITION_GAUGE, (double)f[21] * page);
            put_one(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                    EXPOSITION_GAUGE, (double)f[20]);
            long long bt = boot_time(&b);
            if (bt >= 0)
                put_one(out, "process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.",
                        EXPOSITION_GAUGE, (double)bt + (double)f[19] / tick);
        }
    }
    collect_fds(out, &b);
    vg_buf_free(&b);
}

static void render(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    resp->content_type = CONTENT_TYPE;
    metrics_render(v->metrics, &resp->body);
    if (vg_buf_failed(&resp->body)) {
        struct vg_err err;
        vg_err_set(&err, VG_ENOMEM, "metrics: out of memory rendering the registry");
        vg_buf_reset(&resp->body);
        http_resp_error(resp, &err);
    }
}

static void collect_syncs(void *ctx, struct vg_buf *out)
{
    struct vigil *v = ctx;
    struct kv_sync_stats st[3] = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
    static const char *const stores[3] = { "tsdb", "logs", "traces" };
    bool open[3] = { v->tsdb != NULL, v->logs != NULL, v->traces != NULL };
    if (v->tsdb)
        tsdb_sync_stats(v->tsdb, &st[0]);
    if (v->logs)
        logstore_sync_stats(v->logs, &st[1]);
    if (v->traces)
        spanstore_sync_stats(v->traces, &st[2]);
    static const struct {
        const char *name, *help;
    } fams[2] = {
        { "vigil_storage_fsyncs_total",
          "Background fsyncs of a store's LevelDB logs (storage.fsync: periodic)." },
        { "vigil_storage_fsync_failures_total",
          "Background fsyncs that failed; the store then refuses writes." },
    };
    for (int f = 0; f < 2; f++) {
        struct vg_str n = vg_str_c(fams[f].name);
        exposition_write_help(out, n, vg_str_c(fams[f].help));
        exposition_write_type(out, n, EXPOSITION_COUNTER);
        for (int s = 0; s < 3; s++) {
            if (!open[s])
                continue;
            struct label l = { VG_STR("store"), vg_str_c(stores[s]) };
            exposition_write_sample(out, n, &l, 1,
                                    (double)(f ? st[s].failures : st[s].syncs), false, 0);
        }
    }
}

static int init(struct vigil *v, struct vg_err *err)
{
    (void)err;
    metrics_add_collector(v->metrics, collect_tsdb, v);
    metrics_add_collector(v->metrics, collect_syncs, v);
    metrics_add_collector(v->metrics, collect_heap, NULL);
    metrics_add_collector(v->metrics, self_metrics_collect_process, NULL);
    metrics_add_collector(v->metrics, collect_build, NULL);
    return 0;
}

static const struct http_route routes[] = {
    { "GET", "/metrics", false, render, "/metrics" },
};

const struct vigil_module mod_self_metrics = {
    .name = "self_metrics",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
    .init = init,
};
