/* fixture: what the server handler tests (api/, ingest/) share. A real TSDB opened in
 * a fresh temporary directory, a minimal struct vigil around it (cfg from config_default,
 * tsdb, metrics), helpers to append samples and metadata, and a call helper that runs a
 * route handler directly with a constructed struct http_request (its own arena, the
 * given args) and leaves the body NUL-terminated. For the receiver tests: request bodies
 * written as JSON with ' for ", a POST helper, OTLP requests and responses in either
 * encoding, a trace read back through the Tempo API and a /metrics sample value.
 * Everything is static inline so a test file that uses only part of it still compiles
 * under -Werror. */
#ifndef SERVER_FIXTURE_H
#define SERVER_FIXTURE_H

#include "../../../server/api/tempo.h"
#include "../../../server/config.h"
#include "../../../server/ingest/ingest.h"
#include "../../../server/ingest/otlp_json.h"
#include "../../../server/http.h"
#include "../../../server/metrics.h"
#include "../../../server/pb_alloc.h"
#include "../../../server/vigil.h"
#include "../../../storage/base/vg_alloc.h"
#include "../../../storage/logstore/logstore.h"
#include "../../../storage/spanstore/spanstore.h"
#include "../../../storage/tsdb/tsdb.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FIXTURE_MAX_LABELS 16
#define FIXTURE_MAX_ARGS 16 /* query arguments fixture_vget takes */

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

/* The handler of mod's first route that path matches (exactly, or starting with a prefix
 * route's path), as the HTTP server dispatches. Fails the test when there is none. */
static inline http_handler_fn fixture_route(const struct vigil_module *mod, const char *path)
{
    for (size_t i = 0; i < mod->nroutes; i++) {
        const struct http_route *r = &mod->routes[i];
        if (r->prefix ? !strncmp(path, r->path, strlen(r->path)) : !strcmp(path, r->path))
            return r->fn;
    }
    cr_assert_fail("%s has no route for %s", mod->name, path);
    return NULL;
}

/* Runs mod's route for path (fixture_route) as GET path with the arguments ap holds:
 * key, value, ... ending in a NULL key (at most FIXTURE_MAX_ARGS pairs). resp's previous
 * body is freed first. Returns the body, NUL-terminated (fixture_call). */
static inline const char *fixture_vget(struct server_fixture *f, const struct vigil_module *mod,
                                       const char *path, va_list ap, struct http_response *resp)
{
    struct http_arg args[FIXTURE_MAX_ARGS];
    size_t n = 0;
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
        cr_assert_lt(n, FIXTURE_MAX_ARGS, "%s: too many arguments", path);
        args[n].key = k;
        args[n++].value = va_arg(ap, const char *);
    }
    vg_buf_free(&resp->body);
    fixture_call(f, fixture_route(mod, path), path, args, n, resp);
    return resp->body.p;
}

/* ---- receivers ---- */

/* JSON written in C with ' for " (so cases need no escapes) and printf conversions:
 * formatted, then every ' turned into ", in arena a (NUL-terminated). */
static inline struct vg_str fixture_vjson(struct vg_arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static inline struct vg_str fixture_vjson(struct vg_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    cr_assert_geq(n, 0);
    char *s = vg_arena_alloc(a, (size_t)n + 1);
    cr_assert_not_null(s);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    for (int i = 0; i < n; i++)
        if (s[i] == '\'')
            s[i] = '"';
    return (struct vg_str){ s, (size_t)n };
}

static inline struct vg_str fixture_json(struct vg_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline struct vg_str fixture_json(struct vg_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct vg_str s = fixture_vjson(a, fmt, ap);
    va_end(ap);
    return s;
}

/* Runs mod's route for path (fixture_route) as POST path with body,
 * content type ct and content encoding ce (NULL for none), the request's memory from a.
 * resp is reset first (status 0, no content type, no headers); returns its body,
 * NUL-terminated. */
static inline const char *fixture_post(struct server_fixture *f, const struct vigil_module *mod,
                                       const char *path, const char *ct, const char *ce,
                                       struct vg_str body, struct vg_arena *a,
                                       struct http_response *resp)
{
    http_handler_fn fn = fixture_route(mod, path);
    struct http_request r = { .method = "POST", .path = path, .content_type = ct,
                              .content_encoding = ce, .body = body, .arena = a };
    vg_buf_reset(&resp->body);
    resp->status = 0;
    resp->content_type = NULL;
    resp->nheaders = 0;
    fn(&f->v, &r, resp);
    return vg_buf_cstr(&resp->body);
}

/* The message (of type desc) an OTLP/JSON text decodes to, from a. */
static inline ProtobufCMessage *fixture_otlp_msg(const ProtobufCMessageDescriptor *desc,
                                                 struct vg_str json, struct vg_arena *a)
{
    ProtobufCMessage *m = NULL;
    struct vg_err err = {0};
    cr_assert_eq(otlp_json_decode(desc, json.p, json.len, a, &m, &err), 0, "%s", err.msg);
    return m;
}

/* The protobuf encoding of m, from a. */
static inline struct vg_str fixture_pb_pack(const ProtobufCMessage *m, struct vg_arena *a)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = vg_arena_alloc(a, n + 1);
    cr_assert_not_null(p);
    protobuf_c_message_pack(m, p);
    return (struct vg_str){ (const char *)p, n };
}

/* The protobuf encoding of an OTLP/JSON request of type desc, from a. */
static inline struct vg_str fixture_otlp_pb(const ProtobufCMessageDescriptor *desc,
                                            struct vg_str json, struct vg_arena *a)
{
    return fixture_pb_pack(fixture_otlp_msg(desc, json, a), a);
}

/* Posts the OTLP/JSON request json of type desc to mod's route path, as JSON when
 * as_json is true, else protobuf-encoded, and expects 200 answered in the request's
 * encoding (OTLP/HTTP: the response's Content-Type matches the request's). */
static inline void fixture_otlp_export(struct server_fixture *f, const struct vigil_module *mod,
                                       const char *path, const ProtobufCMessageDescriptor *desc,
                                       bool as_json, struct vg_str json, struct vg_arena *a,
                                       struct http_response *resp)
{
    const char *ct = as_json ? "application/json" : "application/x-protobuf";
    fixture_post(f, mod, path, ct, NULL, as_json ? json : fixture_otlp_pb(desc, json, a), a,
                 resp);
    cr_assert_eq(resp->status, 200, "%d %s", resp->status, vg_buf_cstr(&resp->body));
    cr_assert_str_eq(resp->content_type, ct);
}

/* Failing the n-th allocation for n = 1, 2, ... walks every allocation a receiver makes:
 * posts body (content type ct) to mod's route path, each time in a fresh request arena
 * as the front end gives, until it is answered 200. Every answer before must be a
 * refusal that stores nothing: 413 (the arena gave out) or 503 with Retry-After, with
 * stored() still 0. Asserts that some refusal was a 503. */
static inline void fixture_post_failing_allocs(struct server_fixture *f,
                                               const struct vigil_module *mod, const char *path,
                                               const char *ct, struct vg_str body,
                                               struct http_response *resp,
                                               uint64_t (*stored)(void))
{
    bool saw_503 = false;
    for (uint64_t n = 1; n < 100000; n++) {
        struct vg_arena *a = vg_arena_new(0);
        cr_assert_not_null(a);
        vg_alloc_fail_after(n);
        fixture_post(f, mod, path, ct, NULL, body, a, resp);
        vg_alloc_fail_after(0);
        vg_arena_free(a);
        if (resp->status == 200)
            break;
        cr_assert(resp->status == 503 || resp->status == 413, "n=%" PRIu64 ": %d", n,
                  resp->status);
        if (resp->status == 503) {
            saw_503 = true;
            cr_assert_eq(resp->nheaders, 1);
            cr_assert_str_eq(resp->headers[0].name, "Retry-After");
        }
        cr_assert_eq(stored(), 0, "n=%" PRIu64 ": a refused request stored data", n);
    }
    cr_assert_eq(resp->status, 200);
    cr_assert(saw_503);
}

/* The message of type desc in resp's body, OTLP/JSON when json is true, else protobuf;
 * from a. */
static inline ProtobufCMessage *fixture_otlp_answer(const ProtobufCMessageDescriptor *desc,
                                                    bool json, const struct http_response *resp,
                                                    struct vg_arena *a)
{
    if (json)
        return fixture_otlp_msg(desc, (struct vg_str){ resp->body.p, resp->body.len }, a);
    ProtobufCAllocator pa;
    pb_alloc_from_arena(a, &pa);
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &pa, resp->body.len,
                                                    (const uint8_t *)resp->body.p);
    cr_assert_not_null(m);
    return m;
}

/* The trace as GET /api/traces/<id> answers it (JSON, NUL-terminated, valid until the
 * next call); "" for 404. */
static inline const char *fixture_trace_json(struct server_fixture *f, struct vg_arena *a,
                                             const char *id)
{
    static struct http_response r;
    vg_buf_free(&r.body);
    memset(&r, 0, sizeof r);
    vg_buf_init(&r.body);
    tempo_trace_by_id(&f->v, id, false, false, a, &r);
    if (r.status == 404)
        return "";
    cr_assert_eq(r.status, 200, "%d %s", r.status, vg_buf_cstr(&r.body));
    return vg_buf_cstr(&r.body);
}

/* The value of the /metrics sample line (not a # HELP line) starting with prefix, or -1
 * when there is none. */
static inline double fixture_metric(struct metrics *m, const char *prefix)
{
    struct vg_buf b;
    vg_buf_init(&b);
    metrics_render(m, &b);
    const char *s = vg_buf_cstr(&b), *at = s;
    cr_assert_not_null(s);
    while ((at = strstr(at, prefix)) && at != s && at[-1] != '\n')
        at++;
    double v = at ? strtod(at + strlen(prefix), NULL) : -1;
    vg_buf_free(&b);
    return v;
}

#endif
