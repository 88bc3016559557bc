/* fixture: what the server handler tests (api/, ingest/) share. A real TSDB opened in
 * a fresh temporary directory, a minimal struct vigil around it (cfg from config_default,
 * tsdb, metrics), helpers to append samples and metadata, and a call helper that runs a
 * route handler directly with a constructed struct http_request (its own arena, the
 * given args) and leaves the body NUL-terminated. Everything is static inline so a test
 * file that uses only part of it still compiles under -Werror. */
#ifndef SERVER_FIXTURE_H
#define SERVER_FIXTURE_H

#include "../../../server/config.h"
#include "../../../server/ingest/ingest.h"
#include "../../../server/http.h"
#include "../../../server/metrics.h"
#include "../../../server/vigil.h"
#include "../../../storage/base/vg_alloc.h"
#include "../../../storage/logstore/logstore.h"
#include "../../../storage/spanstore/spanstore.h"
#include "../../../storage/tsdb/tsdb.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE_MAX_LABELS 16

struct server_fixture {
    char dir[64];
    struct config *cfg;
    struct vigil v;
    uint64_t fail_after; /* when set, fixture_call arms vg_alloc_fail_after around fn */
    struct tsdb_metadata meta; /* sent with the next fixture_append when meta.metric set */
};

static inline int64_t fixture_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void fixture_open_tsdb(struct server_fixture *f)
{
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = f->dir;
    struct vg_err err = {0};
    f->v.tsdb = tsdb_open(&o, &err);
    cr_assert_not_null(f->v.tsdb, "tsdb_open: %s", err.msg);
}

static inline void fixture_open(struct server_fixture *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/vigil-test-XXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    f->cfg = config_default();
    cr_assert_not_null(f->cfg);
    fixture_open_tsdb(f);
    f->v.cfg = f->cfg;
    f->v.metrics = metrics_new();
    cr_assert_not_null(f->v.metrics);
}

/* Opens a log store (default options) in <dir>/logs as f->v.logs; fixture_close closes
 * it. Tests of the log receivers call it after fixture_open. */
static inline void fixture_open_logs(struct server_fixture *f)
{
    char path[96];
    snprintf(path, sizeof path, "%s/logs", f->dir);
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = path;
    o.maint_interval_ms = 0;
    struct vg_err err = {0};
    f->v.logs = logstore_open(&o, &err);
    cr_assert_not_null(f->v.logs, "logstore_open: %s", err.msg);
}

/* Opens a span store (default options, no fsync) in <dir>/traces as f->v.traces;
 * fixture_close closes it. Tests of the trace receivers and APIs call it after
 * fixture_open. */
static inline void fixture_open_traces(struct server_fixture *f)
{
    char path[96];
    snprintf(path, sizeof path, "%s/traces", f->dir);
    struct spanstore_opts o;
    spanstore_opts_default(&o);
    o.dir = path;
    o.no_sync = true;
    struct vg_err err = {0};
    f->v.traces = spanstore_open(&o, &err);
    cr_assert_not_null(f->v.traces, "spanstore_open: %s", err.msg);
}

/* Closes and reopens the TSDB on the same directory, as a restart of the server does. */
static inline void fixture_reopen(struct server_fixture *f)
{
    tsdb_close(f->v.tsdb);
    fixture_open_tsdb(f);
}

static inline int fixture_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void fixture_close(struct server_fixture *f)
{
    vg_alloc_fail_after(0);
    tsdb_close(f->v.tsdb);
    logstore_close(f->v.logs);
    spanstore_close(f->v.traces);
    metrics_free(f->v.metrics);
    config_free(f->cfg);
    if (f->dir[0])
        nftw(f->dir, fixture_rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* Stores a receiver test opens besides the TSDB (fixture_receiver_open). */
enum { FIXTURE_LOGS = 1, FIXTURE_TRACES = 2 };

/* What every receiver test sets up: the fixture with the stores in `stores`, the ingest
 * counters, a request arena and an empty response. */
static inline void fixture_receiver_open(struct server_fixture *f, unsigned stores,
                                         struct vg_arena **arena, struct http_response *resp)
{
    struct vg_err err = {0};
    fixture_open(f);
    if (stores & FIXTURE_LOGS)
        fixture_open_logs(f);
    if (stores & FIXTURE_TRACES)
        fixture_open_traces(f);
    cr_assert_eq(ingest_metrics_init(&f->v, &err), 0, "%s", err.msg);
    *arena = vg_arena_new(0);
    cr_assert_not_null(*arena);
    memset(resp, 0, sizeof *resp);
    vg_buf_init(&resp->body);
}

static inline void fixture_receiver_close(struct server_fixture *f, struct vg_arena *arena,
                                          struct http_response *resp)
{
    vg_alloc_fail_after(0);
    vg_buf_free(&resp->body);
    vg_arena_free(arena);
    ingest_metrics_free(&f->v);
    fixture_close(f);
}

/* Records metadata for metric, written together with the next fixture_append's sample
 * (as remote write and OTLP send it alongside the series). */
static inline void fixture_meta(struct server_fixture *f, const char *metric,
                                enum tsdb_metric_type type)
{
    f->meta = (struct tsdb_metadata){.metric = vg_str_c(metric), .type = type,
                                     .help = VG_STR("help"), .unit = VG_STR("")};
}

/* Appends one sample to the series given as name/value string pairs ending in NULL
 * (any order; sorted here), with the metadata of a preceding fixture_meta. */
static inline void fixture_append(struct server_fixture *f, int64_t t, double value, ...)
{
    struct label ls[FIXTURE_MAX_LABELS];
    size_t n = 0;
    va_list ap;
    va_start(ap, value);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
        cr_assert_lt(n, FIXTURE_MAX_LABELS);
        ls[n].name = vg_str_c(k);
        ls[n++].value = vg_str_c(va_arg(ap, const char *));
    }
    va_end(ap);
    labels_sort(ls, n);
    struct tsdb_sample s = {t, value};
    struct tsdb_series_in in = {.labels = ls, .nlabels = n, .samples = &s, .nsamples = 1};
    struct tsdb_batch b = {.series = &in, .nseries = 1, .meta = &f->meta,
                           .nmeta = f->meta.metric.p ? 1 : 0};
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    struct vg_err err = {0};
    cr_assert_eq(tsdb_append(f->v.tsdb, &b, &res, &err), 0, "tsdb_append: %s", err.msg);
    cr_assert_eq(res.accepted, 1, "sample not accepted: %s", res.first_reject);
    f->meta = (struct tsdb_metadata){0};
}

/* Runs fn as GET path with args (key/value pairs, nargs of them). resp is initialised
 * here; the caller frees resp->body. The body is NUL-terminated (vg_buf_cstr). With
 * f->fail_after set, only allocations made by fn itself are failed; a body that could
 * not be written at all is then left empty and false returned. */
static inline bool fixture_call(struct server_fixture *f, http_handler_fn fn, const char *path,
                                const struct http_arg *args, size_t nargs,
                                struct http_response *resp)
{
    struct http_request req;
    memset(&req, 0, sizeof req);
    req.method = "GET";
    req.path = path;
    req.body = VG_STR("");
    req.arena = vg_arena_new(4096);
    cr_assert_not_null(req.arena);
    req.args = vg_arena_alloc(req.arena, (nargs ? nargs : 1) * sizeof *req.args);
    cr_assert_not_null(req.args);
    if (nargs)
        memcpy(req.args, args, nargs * sizeof *args);
    req.nargs = nargs;
    memset(resp, 0, sizeof *resp);
    resp->status = 200;
    vg_buf_init(&resp->body);
    if (f->fail_after)
        vg_alloc_fail_after(f->fail_after);
    fn(&f->v, &req, resp);
    vg_alloc_fail_after(0);
    vg_arena_free(req.arena);
    bool complete = !vg_buf_failed(&resp->body);
    if (!complete)
        vg_buf_reset(&resp->body);
    cr_assert_not_null(vg_buf_cstr(&resp->body));
    return complete;
}

#endif
