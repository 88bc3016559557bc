/* logstore_bench: push throughput, compression and filter-query speed of the log store
 * against `grep -c` over the same raw text.
 *
 *   logstore_bench DIR [MB]      (default 200 MB of log text)
 *
 * Generates nginx "combined"-like access-log lines (plus a request_id, the kind of
 * field people search for) from a fixed seed over 8 streams, writes the raw text to
 * DIR/raw.log, pushes the same lines single-threaded in pushes of 1000 lines (each a
 * synchronous LevelDB write, as the server does per request) into DIR/db, compacts,
 * then times filter queries `{job="nginx"} |= "<needle>"` (the store skips chunks by
 * token filter, the bench applies the line filter with memmem, as LogQL would) and
 * `grep -c <needle> DIR/raw.log` for: a request id present once, a rare path, and a
 * common word (every chunk must be read). Prints one line per figure. */
#include "../storage/base/vg_alloc.h"
#include "../storage/logstore/logstore.h"
#include "bench_util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NSTREAMS 8
#define PUSH_LINES 1000
#define SEC 1000000000LL

static uint64_t rng = 88172645463325252ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const paths[] = { "/", "/index.html", "/api/v1/users", "/api/v1/orders",
                                     "/api/v1/products", "/static/app.js", "/static/site.css",
                                     "/login", "/logout", "/api/v1/cart", "/favicon.ico",
                                     "/healthz" };
static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.0.0 Safari/537.36"), /* one agent, split for width */
    "curl/8.4.0", "Go-http-client/1.1", "kube-probe/1.28",
};
static const char *const methods[] = { "GET", "GET", "GET", "POST", "PUT", "DELETE" };
static const int statuses[] = { 200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500 };

static int make_line(char *buf, size_t cap, int64_t t, uint64_t i)
{
    time_t sec = (time_t)(t / SEC);
    struct tm tm;
    gmtime_r(&sec, &tm);
    char ts[40];
    strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    uint64_t r = next();
    /* Clients come from a pool of 500 addresses and response sizes from a few per
     * path, as in real access logs; the request id stays fully random (64 bits). */
    uint64_t client = (r >> 8) % 500;
    const char *path = paths[r % 12];
    if (i % 100003 == 7)
        path = "/api/v1/rare-endpoint"; /* about 10 lines per million */
    return snprintf(buf, cap,
                    "10.%u.%u.%u - - [%s] \"%s %s?id=%u HTTP/1.1\" %d %u \"-\" \"%s\" "
                    "rt=0.%03u request_id=%016llx",
                    (unsigned)(client * 7 & 255), (unsigned)(client * 13 & 255),
                    (unsigned)(client & 255), ts, methods[(r >> 32) % 6], path,
                    (unsigned)(r >> 40 & 0xffff), statuses[(r >> 36) % 11],
                    (unsigned)(r % 12 * 1371 + (r >> 20) % 4 * 17), agents[client % 5],
                    (unsigned)(r >> 50 & 1023) % 1000,
                    (unsigned long long)(next() ^ i));
}

static double dir_mb(const char *path)
{
    return (double)bench_tree_bytes(path) / 1048576.0;
}

static double grep_s(const char *needle, const char *raw, long *count)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "grep -c -F -- '%s' '%s'", needle, raw);
    double t0 = bench_now_s();
    /* Running grep through a shell is the point: it is the physical reference. */
    FILE *f = popen(cmd, "r"); // NOLINT(cert-env33-c)
    char out[64];
    *count = f && fgets(out, sizeof out, f) ? strtol(out, NULL, 10) : -1;
    if (f)
        pclose(f);
    return bench_now_s() - t0;
}

static double query_s(struct logstore *ls, const char *needle, long *count,
                      struct logstore_iter_stats *st)
{
    struct vg_err err;
    struct matcher *m = matcher_new(MATCH_EQ, VG_STR("job"), VG_STR("nginx"), &err);
    struct vg_str nd = vg_str_c(needle);
    double t0 = bench_now_s();
    struct logstore_query q = { &m, 1, INT64_MIN, INT64_MAX, false, 0, &nd, 1, NULL, 0 };
    struct logstore_iter *it = logstore_query(ls, &q, &err);
    struct logstore_entry e;
    long n = 0;
    while (it && logstore_iter_next(it, &e, &err) == 1)
        n += memmem(e.line.p, e.line.len, nd.p, nd.len) != NULL;
    double dt = bench_now_s() - t0;
    if (it)
        logstore_iter_stats(it, st);
    logstore_iter_free(it);
    matcher_free(m);
    *count = n;
    return dt;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [MB]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    double mb = argc > 2 ? bench_arg_double("MB", argv[2]) : 200;
    char raw[512], db[512];
    snprintf(raw, sizeof raw, "%s/raw.log", dir);
    snprintf(db, sizeof db, "%s/db", dir);
    FILE *rf = fopen(raw, "w");
    if (!rf) {
        perror(raw);
        return 1;
    }
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = db;
    o.maint_interval_ms = 0;
    o.max_streams = 100;
    if (getenv("LS_ZSTD_LEVEL")) /* tuning knobs for experiments */
        o.zstd_level = (int)bench_arg_int("LS_ZSTD_LEVEL", getenv("LS_ZSTD_LEVEL"));
    if (getenv("LS_CHUNK_KB"))
        o.chunk_target_bytes = (size_t)bench_arg_int("LS_CHUNK_KB", getenv("LS_CHUNK_KB")) << 10;
    struct vg_err err;
    struct logstore *ls = logstore_open(&o, &err);
    if (!ls) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    char hosts[NSTREAMS][16];
    struct label labels[NSTREAMS][2];
    for (int s = 0; s < NSTREAMS; s++) {
        snprintf(hosts[s], sizeof hosts[s], "web-%d", s);
        labels[s][0] = (struct label){ VG_STR("host"), vg_str_c(hosts[s]) };
        labels[s][1] = (struct label){ VG_STR("job"), VG_STR("nginx") };
    }
    char *text = malloc((size_t)PUSH_LINES * 512);
    if (!text) {
        perror("malloc");
        return 1;
    }
    struct lentry *es = calloc(PUSH_LINES, sizeof *es);
    uint64_t target = (uint64_t)(mb * 1024 * 1024), total = 0, lines = 0;
    int64_t t = 1700000000LL * SEC;
    char needle_id[40] = "";
    double push_time = 0;
    while (total < target) {
        size_t off = 0;
        for (int i = 0; i < PUSH_LINES; i++, lines++) {
            t += 1000000; /* 1000 lines per second */
            int n = make_line(text + off, 512, t, lines);
            es[i] = (struct lentry){ t, { text + off, (size_t)n }, NULL, 0 };
            if (lines == 123457)
                snprintf(needle_id, sizeof needle_id, "%.*s", 16,
                         strstr(text + off, "request_id=") + 11);
            if (fwrite(text + off, 1, (size_t)n, rf) != (size_t)n || fputc('\n', rf) == EOF) {
                perror(raw);
                return 1;
            }
            off += (size_t)n + 1;
            total += (uint64_t)n;
        }
        struct logstore_stream_in in[NSTREAMS];
        for (int s = 0; s < NSTREAMS; s++)
            in[s] = (struct logstore_stream_in){ labels[s], 2, es + (ptrdiff_t)s * (PUSH_LINES / NSTREAMS),
                                                 PUSH_LINES / NSTREAMS };
        double t0 = bench_now_s();
        if (logstore_push(ls, in, NSTREAMS, NULL, &err) != 0) {
            fprintf(stderr, "push: %s\n", err.msg);
            return 1;
        }
        push_time += bench_now_s() - t0;
    }
    if (fclose(rf) != 0) {
        perror(raw);
        return 1;
    }
    double text_mb = (double)total / 1048576.0;
    double t0 = bench_now_s();
    if (logstore_compact(ls, &err) != 0) {
        fprintf(stderr, "compact: %s\n", err.msg);
        return 1;
    }
    double flush_time = bench_now_s() - t0;
    struct logstore_stats st;
    logstore_stats(ls, NULL, 0, INT64_MIN, INT64_MAX, &st, &err);
    printf("lines                 %llu (%.1f MB of text, %.0f bytes/line)\n",
           (unsigned long long)lines, text_mb, (double)total / (double)lines);
    printf("push throughput       %.1f MB/s, %.0f lines/s single-threaded (pushes of %d lines, "
           "sync)\n", text_mb / push_time, (double)lines / push_time, PUSH_LINES);
    printf("final flush+compact   %.2f s\n", flush_time);
    printf("chunks                %llu, compressed %.1f MB: ratio %.2fx (chunk values incl. "
           "filters)\n", (unsigned long long)st.chunks, (double)st.bytes_compressed / 1048576.0,
           (double)st.bytes / (double)st.bytes_compressed);
    double dbmb = dir_mb(db);
    printf("database on disk      %.1f MB: ratio %.2fx vs raw text\n", dbmb,
           text_mb / dbmb);
    const char *needles[] = { needle_id, "/api/v1/rare-endpoint", "Firefox" };
    const char *what[] = { "one request id", "rare path", "common word" };
    for (int i = 0; i < 3; i++) {
        long nq, ng;
        struct logstore_iter_stats qs = { 0 };
        /* Warm both (page cache, block cache) and take the second run. */
        grep_s(needles[i], raw, &ng);
        query_s(ls, needles[i], &nq, &qs);
        double tg = grep_s(needles[i], raw, &ng);
        double tq = query_s(ls, needles[i], &nq, &qs);
        printf("filter %-15s |= \"%s\": store %.3f s (%ld lines, %llu/%llu chunks opened), "
               "grep -c %.3f s (%ld): ratio %.2fx\n",
               what[i], needles[i], tq, nq, (unsigned long long)qs.chunks_opened,
               (unsigned long long)qs.chunks_considered, tg, ng, tq / tg);
    }
    logstore_close(ls);
    free(text);
    free(es);
    return 0;
}
