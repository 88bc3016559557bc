/* callgrind_ingest: the remote-write ingest path without HTTP, for profiling.
 *
 * It builds WriteRequests shaped like the ones Prometheus sends (labels sorted by name,
 * eight per series: __name__, container, endpoint, instance, job, namespace, pod,
 * service; counters growing by small integers; one sample per series per request by
 * default) and, for each of --iters requests, times rw_decode (snappy + protobuf +
 * validation) and tsdb_append_enc (with the label encodings rw_decode made) on a fresh
 * TSDB in a temporary directory: the work a POST /api/v1/write does after libmicrohttpd
 * has read the body, minus /metrics counting.
 *
 * The series pool (--active) is cycled through in slices of --series; each pass over the
 * pool advances time by one scrape interval (15 s), so every sample is in order and the
 * head cuts and persists chunks as in production (120 samples each). One untimed warm-up
 * pass creates every series first; the timed requests then measure the steady state
 * (new samples for known series), which is what a server spends its life doing. The
 * head packs its chunk at 40 and 80 samples and seals it at 120: a run covers a whole
 * chunk's life only when --iters * --series / --active reaches 120 (the default covers
 * samples 2-21 of each series, which leaves packing out).
 *
 * Under valgrind, only the timed decode + append calls are collected (the request
 * building is not), so
 *   valgrind --tool=callgrind --collect-atstart=no ./callgrind_ingest ...
 * gives total instructions for the printed sample count. Without valgrind headers the
 * --toggle-collect=bench_one function name does the same. The TSDB's LevelDB does an
 * fsync per append (the durability contract); put --dir on tmpfs to leave the disk out.
 *
 * Output: human-readable lines, then one line for scripts:
 *   RESULT samples_per_sec=<f> decode_ns_per_sample=<f> append_ns_per_sample=<f>
 *          samples=<n> series=<n> [disk_bytes_per_sample=<f>] rss_bytes_per_series=<f>
 */
#include "../server/compress.h"
#include "../server/config.h"
#include "../server/ingest/remote_write.h"
#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_buf.h"
#include "../storage/base/vg_log.h"
#include "../storage/tsdb/tsdb.h"

#include "prom_remote_write.pb-c.h"

#include "bench_util.h"

#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define NLABELS 8
#define INTERVAL_MS 15000

struct opts {
    long series; /* series per request */
    long samples; /* samples per series per request */
    long active; /* series pool */
    long iters;
    const char *dir;
    bool keep;
    bool compact;
};

struct series {
    char *val[NLABELS];
    double v;
};

static const char *const names[NLABELS] = {
    "__name__", "container", "endpoint", "instance", "job", "namespace", "pod", "service",
};

static const char *const metrics[] = {
    "container_cpu_usage_seconds_total", "container_memory_working_set_bytes",
    "container_network_receive_bytes_total", "container_network_transmit_bytes_total",
    "container_fs_reads_bytes_total", "container_fs_writes_bytes_total",
    "http_requests_total", "http_request_duration_seconds_count",
    "process_resident_memory_bytes", "go_goroutines",
};

static void die(const char *what)
{
    fprintf(stderr, "callgrind_ingest: %s\n", what);
    exit(2);
}

static char *fmt(const char *f, long a, long b)
{
    char buf[128];
    snprintf(buf, sizeof buf, f, a, b);
    char *s = vg_strdup(buf);
    if (!s)
        die("out of memory");
    return s;
}

/* Series i: pod i/10 of deployment (i/10)%50 in namespace (i/500)%8, metric i%10. */
static void make_series(long i, struct series *s)
{
    long pod = i / 10;
    s->val[0] = vg_strdup(metrics[i % 10]);
    s->val[1] = fmt("app-%ld", pod % 50, 0);
    s->val[2] = fmt("https-metrics", 0, 0);
    s->val[3] = fmt("10.%ld.%ld.7:10250", (pod / 250) % 256, pod % 250);
    s->val[4] = fmt("kubelet", 0, 0);
    s->val[5] = fmt("team-%ld", (i / 500) % 8, 0);
    s->val[6] = fmt("app-%ld-7f9c8d6b5-x%05ld", pod % 50, pod);
    s->val[7] = fmt("kubelet", 0, 0);
    s->v = (double)(i % 1000);
    if (!s->val[0])
        die("out of memory");
}

/* Snappy WriteRequest of series [first, first + o->series) of the pool at step. */
static void build_request(const struct opts *o, struct series *pool, long first, long step,
                          int64_t base_ms, struct vg_buf *out)
{
    size_t ns = (size_t)o->series, nsm = (size_t)o->samples;
    Prometheus__TimeSeries *ts = vg_calloc(ns, sizeof *ts);
    Prometheus__TimeSeries **tsp = vg_calloc(ns, sizeof *tsp);
    Prometheus__Label *lab = vg_calloc(ns * NLABELS, sizeof *lab);
    Prometheus__Label **labp = vg_calloc(ns * NLABELS, sizeof *labp);
    Prometheus__Sample *sm = vg_calloc(ns * nsm, sizeof *sm);
    Prometheus__Sample **smp = vg_calloc(ns * nsm, sizeof *smp);
    if (!ts || !tsp || !lab || !labp || !sm || !smp)
        die("out of memory");
    for (size_t i = 0; i < ns; i++) {
        struct series *s = &pool[(size_t)first + i];
        prometheus__time_series__init(&ts[i]);
        tsp[i] = &ts[i];
        for (size_t k = 0; k < NLABELS; k++) {
            Prometheus__Label *l = &lab[i * NLABELS + k];
            prometheus__label__init(l);
            l->name = (char *)names[k];
            l->value = s->val[k];
            labp[i * NLABELS + k] = l;
        }
        ts[i].labels = &labp[i * NLABELS];
        ts[i].n_labels = NLABELS;
        for (size_t j = 0; j < nsm; j++) {
            Prometheus__Sample *x = &sm[i * nsm + j];
            prometheus__sample__init(x);
            s->v += (double)(1 + (first + (long)i + step) % 7);
            x->value = s->v;
            x->timestamp = base_ms + (int64_t)(step * o->samples + (long)j) * INTERVAL_MS;
            smp[i * nsm + j] = x;
        }
        ts[i].samples = &smp[i * nsm];
        ts[i].n_samples = nsm;
    }
    Prometheus__WriteRequest wr;
    prometheus__write_request__init(&wr);
    wr.timeseries = tsp;
    wr.n_timeseries = ns;
    size_t len = prometheus__write_request__get_packed_size(&wr);
    uint8_t *raw = vg_malloc(len ? len : 1);
    if (!raw)
        die("out of memory");
    prometheus__write_request__pack(&wr, raw);
    vg_buf_reset(out);
    struct vg_err err;
    if (compress_snappy_encode(raw, len, out, &err) < 0)
        die(err.msg);
    vg_free(raw);
    vg_free(ts);
    vg_free(tsp);
    vg_free(lab);
    vg_free(labp);
    vg_free(sm);
    vg_free(smp);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct timing {
    int64_t decode_ns, append_ns;
    uint64_t samples;
};

/* One request through the ingest path; when collect, the only code callgrind collects.
 * Not inlined so --toggle-collect=bench_one works too (that also counts the warm-up). */
__attribute__((noinline)) int bench_one(struct tsdb *db, const struct config_limits *lim,
                                        const struct vg_buf *body, bool collect,
                                        struct timing *tm, struct vg_err *err)
{
    if (collect)
        CALLGRIND_TOGGLE_COLLECT;
    int64_t t0 = now_ns();
    struct vg_arena *a = vg_arena_new(16384); /* as http.c makes one per request */
    struct rw_request rq = { 0 };
    int rc = a ? rw_decode(body->p, body->len, lim, a, &rq, err) : VG_ENOMEM;
    int64_t t1 = now_ns();
    struct tsdb_append_result res;
    if (rc == 0)
        rc = tsdb_append_enc(db, &rq.batch, rq.enc, &res, err);
    vg_arena_free(a);
    int64_t t2 = now_ns();
    if (collect)
        CALLGRIND_TOGGLE_COLLECT;
    if (rc == 0 && res.accepted != rq.nsamples) {
        snprintf(err->msg, sizeof err->msg, "stored %" PRIu64 " of %" PRIu64 " samples: %s",
                 res.accepted, rq.nsamples, res.first_reject);
        rc = VG_EINTERNAL;
    }
    tm->decode_ns += t1 - t0;
    tm->append_ns += t2 - t1;
    tm->samples += rq.nsamples;
    return rc;
}

static uint64_t dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    uint64_t n = 0;
    struct dirent *e;
    char path[4096 + 512];
    while (d && (e = readdir(d))) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            n += (uint64_t)st.st_size;
    }
    if (d)
        closedir(d);
    return n;
}

/* LevelDB keeps a flat directory: remove its files, then it. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096 + 512];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    if (f)
        (void)fclose(f);
    return kb * 1024;
}

static void usage(void)
{
    puts("usage: callgrind_ingest [options]\n"
         "  --series N   series per request (default 500; Prometheus sends up to 2000)\n"
         "  --samples N  samples per series per request (default 1)\n"
         "  --active N   series pool cycled through (default 10 x --series)\n"
         "  --iters N    timed requests after the warm-up pass (default 200)\n"
         "  --dir DIR    parent of the temporary TSDB directory (default $TMPDIR or /tmp)\n"
         "  --keep       keep the TSDB directory\n"
         "  --compact    after the run, compact and report disk bytes per sample\n"
         "Profile: valgrind --tool=callgrind --collect-atstart=no ./callgrind_ingest --iters 50");
}

static long num(const char *s, long min)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < min)
        die("bad number (see --help)");
    return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        { "series", 1, NULL, 's' }, { "samples", 1, NULL, 'm' }, { "active", 1, NULL, 'a' },
        { "iters", 1, NULL, 'i' },  { "dir", 1, NULL, 'd' },     { "keep", 0, NULL, 'k' },
        { "compact", 0, NULL, 'c' }, { "help", 0, NULL, 'h' },   { NULL, 0, NULL, 0 },
    };
    *o = (struct opts){ .series = 500, .samples = 1, .iters = 200 };
    const char *tmp = getenv("TMPDIR");
    o->dir = tmp && *tmp ? tmp : "/tmp";
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 's': o->series = num(optarg, 1); break;
        case 'm': o->samples = num(optarg, 1); break;
        case 'a': o->active = num(optarg, 1); break;
        case 'i': o->iters = num(optarg, 1); break;
        case 'd': o->dir = optarg; break;
        case 'k': o->keep = true; break;
        case 'c': o->compact = true; break;
        case 'h': usage(); exit(0);
        default: usage(); exit(2);
        }
    }
    if (!o->active)
        o->active = 10 * o->series;
    if (o->active % o->series)
        die("--active must be a multiple of --series");
}

int main(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o);
    vg_log_set_level(VG_LOG_ERROR);
    struct config *cfg = config_default();
    if (!cfg)
        die("out of memory");
    struct config_limits lim = cfg->limits;
    if (lim.max_series_per_request > 0 && lim.max_series_per_request < o.series)
        lim.max_series_per_request = o.series;

    char dir[4096];
    snprintf(dir, sizeof dir, "%s/vigil-cgi-XXXXXX", o.dir);
    if (!mkdtemp(dir))
        die("cannot create the temporary directory (--dir)");
    struct tsdb_opts to;
    tsdb_opts_default(&to);
    to.dir = dir;
    to.retention_ms = 0;
    to.maint_interval_ms = 3600LL * 1000; /* keep the background thread out of the profile */
    struct vg_err err;
    vg_err_clear(&err);
    struct tsdb *db = tsdb_open(&to, &err);
    if (!db)
        die(err.msg);

    struct series *pool = vg_calloc((size_t)o.active, sizeof *pool);
    if (!pool)
        die("out of memory");
    for (long i = 0; i < o.active; i++)
        make_series(i, &pool[i]);
    long slices = o.active / o.series;
    int64_t base_ms = ((int64_t)time(NULL) - 86400) * 1000 / INTERVAL_MS * INTERVAL_MS;
    struct vg_buf body;
    vg_buf_init(&body);
    struct timing warm = { 0 }, tm = { 0 };
    long rss0 = rss_bytes();
    size_t body_bytes = 0;
    /* Request r carries slice r % slices at step r / slices; r < slices is the warm-up. */
    for (long r = 0; r < slices + o.iters; r++) {
        build_request(&o, pool, (r % slices) * o.series, r / slices, base_ms, &body);
        body_bytes += r >= slices ? body.len : 0;
        if (bench_one(db, &lim, &body, r >= slices, r < slices ? &warm : &tm, &err) < 0)
            die(err.msg);
    }
    long rss1 = rss_bytes();

    double total_s = (double)(tm.decode_ns + tm.append_ns) / 1e9;
    double sps = (double)tm.samples / total_s;
    printf("requests: %ld timed (after %ld warm-up) of %ld series x %ld samples, pool %ld "
           "series, %zu bytes snappy per request\n",
           o.iters, slices, o.series, o.samples, o.active, body_bytes / (size_t)o.iters);
    printf("warm-up (series creation): %.0f samples/s\n",
           (double)warm.samples / ((double)(warm.decode_ns + warm.append_ns) / 1e9));
    printf("steady: %.0f samples/s; rw_decode %.1f ns/sample, tsdb_append %.1f ns/sample\n",
           sps, (double)tm.decode_ns / (double)tm.samples,
           (double)tm.append_ns / (double)tm.samples);
    double rss_per_series = (double)(rss1 - rss0) / (double)o.active;
    printf("RSS growth over the run: %.0f bytes per active series\n", rss_per_series);
    double disk = -1;
    if (o.compact) {
        if (tsdb_compact(db, &err) < 0)
            die(err.msg);
        disk = (double)dir_bytes(dir) / (double)(tm.samples + warm.samples);
        printf("on disk after compaction: %.3f bytes per sample\n", disk);
    }
    printf("RESULT samples_per_sec=%.0f decode_ns_per_sample=%.1f append_ns_per_sample=%.1f "
           "samples=%" PRIu64 " series=%ld",
           sps, (double)tm.decode_ns / (double)tm.samples,
           (double)tm.append_ns / (double)tm.samples, tm.samples, o.active);
    if (disk >= 0)
        printf(" disk_bytes_per_sample=%.3f", disk);
    printf(" rss_bytes_per_series=%.0f\n", rss_per_series);

    tsdb_close(db);
    if (!o.keep)
        remove_dir(dir);
    else
        printf("kept %s\n", dir);
    for (long i = 0; i < o.active; i++)
        for (int k = 0; k < NLABELS; k++)
            vg_free(pool[i].val[k]);
    vg_free(pool);
    vg_buf_free(&body);
    config_free(cfg);
    return 0;
}
