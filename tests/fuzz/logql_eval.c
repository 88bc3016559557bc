/* Fuzz target for the LogQL evaluator (server/logql/engine.c, engine_range.c,
 * engine_vector.c, with pipeline.c): arbitrary bytes as a query, parsed and, when it
 * parses, evaluated over a tiny fixed log store (built once in a temporary directory,
 * removed at exit) with tight limits (200 ms, 50 series, 200 points, 100 entries):
 *   - a log query forward and backward over the whole data, with an interval once;
 *   - a metric query as an instant query and as a range query of 21 steps;
 *   - the same instant query again with the Nth allocation failing (N from the input),
 *     so the error paths are walked for leaks.
 * A failure must carry a code engine.h documents and a message; a result must be well
 * formed: one point per vector series, matrix points inside the range in time order,
 * labels sorted, stream entries in the query's direction inside [start, end).
 *
 * The data: three apps with logfmt, JSON and plain lines, structured metadata, a
 * stream with a number that does not parse (for unwrap errors), one entry per second
 * over 30 seconds. */
#include "../../server/logql/engine.h"
#include "../../server/logql/parser.h"
#include "../../storage/base/vg_alloc.h"
#include "../../storage/logstore/logstore.h"

#include "fuzz_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEC 1000000000LL
#define T0 (1700000000LL * SEC)
#define NENT 30

static struct logstore *store;
static char dir[64];

static void cleanup(void)
{
    logstore_close(store);
    store = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "logql_eval: could not remove %s\n", dir);
}

static void push(const char *const *kv, const char *fmt, const struct label *meta, size_t nmeta)
{
    struct label l[4];
    size_t nl = 0;
    for (; kv[nl * 2]; nl++)
        l[nl] = (struct label){ vg_str_c(kv[nl * 2]), vg_str_c(kv[nl * 2 + 1]) };
    static char lines[NENT][96];
    struct lentry e[NENT];
    for (int i = 0; i < NENT; i++) {
        int n = snprintf(lines[i], sizeof lines[i], fmt, i, i * 7 % 13, i % 3 ? "GET" : "POST");
        e[i] = (struct lentry){ T0 + i * SEC + (i % 4) * 1000, { lines[i], (size_t)n },
                                i % 2 ? meta : NULL, i % 2 ? nmeta : 0 };
    }
    struct logstore_stream_in s = { l, nl, e, NENT };
    struct vg_err err = { 0 };
    if (logstore_push(store, &s, 1, NULL, &err))
        fprintf(stderr, "logql_eval: push: %s\n", err.msg);
}

static void store_init(void)
{
    strcpy(dir, "/tmp/vg_fuzz_logql_XXXXXX");
    if (!mkdtemp(dir))
        abort();
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 0;
    struct vg_err err = { 0 };
    store = logstore_open(&o, &err);
    if (!store) {
        fprintf(stderr, "logql_eval: %s\n", err.msg);
        abort();
    }
    atexit(cleanup);
    static const struct label meta[] = { { VG_STR("trace_id"), VG_STR("abc123") },
                                         { VG_STR("user"), VG_STR("u1") } };
    push((const char *[]){ "app", "api", "env", "prod", NULL },
         "level=info msg=\"request %d\" latency=%dms method=%s", meta, 2);
    push((const char *[]){ "app", "web", "env", "prod", NULL },
         "{\"status\":%d,\"bytes\":%d,\"method\":\"%s\",\"nested\":{\"a\":1}}", NULL, 0);
    push((const char *[]){ "app", "api", "env", "dev", NULL },
         "plain line %d with %d things via %s", meta, 1);
    push((const char *[]){ "app", "bad", NULL }, "latency=%d.%d.x size=1KB m=%s", NULL, 0);
}

static void check_error(const struct vg_err *err)
{
    FUZZ_CHECK(err->code == VG_EINVAL || err->code == VG_ETOOLARGE || err->code == VG_ENOMEM ||
               err->code == VG_EOVERLOAD || err->code == VG_EIO);
    FUZZ_CHECK(err->msg[0]);
}

static void check_sorted(const struct label *ls, size_t n)
{
    for (size_t j = 1; j < n; j++)
        FUZZ_CHECK(vg_str_cmp(ls[j - 1].name, ls[j].name) < 0);
}

static void check_result(const struct logql_result *r, const struct logql_params *p)
{
    if (r->type == LQ_RESULT_STREAMS) {
        size_t total = 0;
        for (size_t i = 0; i < r->nstreams; i++) {
            const struct logql_stream *s = &r->streams[i];
            check_sorted(s->labels, s->nlabels);
            FUZZ_CHECK(s->nentries > 0);
            total += s->nentries;
            for (size_t j = 0; j < s->nentries; j++) {
                int64_t t = s->entries[j].t;
                FUZZ_CHECK(t >= p->start_ns && t < p->end_ns);
                if (j)
                    FUZZ_CHECK(p->backward ? s->entries[j - 1].t >= t
                                           : s->entries[j - 1].t <= t);
            }
        }
        FUZZ_CHECK(total <= p->limit);
        return;
    }
    FUZZ_CHECK(r->type == LQ_RESULT_VECTOR || r->type == LQ_RESULT_MATRIX ||
               r->type == LQ_RESULT_SCALAR);
    int64_t lo = p->start_ns / 1000000, hi = p->end_ns / 1000000;
    for (size_t i = 0; i < r->nseries; i++) {
        const struct logql_series *s = &r->series[i];
        check_sorted(s->labels, s->nlabels);
        FUZZ_CHECK(s->npoints > 0);
        if (r->type == LQ_RESULT_VECTOR)
            FUZZ_CHECK(s->npoints == 1 && s->points[0].t_ms == hi);
        for (size_t j = 0; j < s->npoints; j++)
            FUZZ_CHECK(s->points[j].t_ms >= lo && s->points[j].t_ms <= hi &&
                       (j == 0 || s->points[j - 1].t_ms < s->points[j].t_ms));
        for (size_t j = 0; j < i && i < 64; j++)
            FUZZ_CHECK(labels_cmp(r->series[j].labels, r->series[j].nlabels, s->labels,
                                  s->nlabels) != 0);
    }
}

static void run(const struct logql_expr *e, const struct logql_params *p, uint64_t fail_after)
{
    struct logql_limits lim = { .timeout_ms = 200, .max_series = 50, .max_points = 200,
                                .max_entries_limit = 100 };
    struct logql_result *r = NULL;
    struct vg_err err = { 0 };
    if (fail_after)
        vg_alloc_fail_after(fail_after);
    int rc = logql_exec(store, e, p, &lim, &r, &err);
    vg_alloc_fail_after(0);
    if (rc) {
        FUZZ_CHECK(!r && rc == err.code);
        check_error(&err);
        return;
    }
    FUZZ_CHECK(r);
    check_result(r, p);
    logql_result_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!store)
        store_init();
    struct vg_err err = { 0 };
    struct logql_expr *e = logql_parse((const char *)data, size, &err);
    if (!e)
        return 0;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ULL;
    if (logql_is_log_query(e->root)) {
        struct logql_params p = { .start_ns = T0, .end_ns = T0 + 40 * SEC, .step_ns = SEC,
                                  .limit = 25, .backward = true };
        run(e, &p, 0);
        p.backward = false;
        p.interval_ns = (int64_t)(h % 4) * SEC;
        run(e, &p, 0);
        p.limit = 100;
        run(e, &p, 1 + h % 300);
    } else {
        struct logql_params p = { .start_ns = T0 + 20 * SEC, .end_ns = T0 + 20 * SEC,
                                  .instant = true, .limit = 100 };
        run(e, &p, 0);
        run(e, &p, 1 + h % 300);
        p = (struct logql_params){ .start_ns = T0, .end_ns = T0 + 40 * SEC,
                                   .step_ns = 2 * SEC, .limit = 100 };
        run(e, &p, 0);
    }
    logql_expr_free(e);
    return 0;
}
