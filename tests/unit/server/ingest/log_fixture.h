/* log_fixture: what the log receiver tests (test_otlp_logs.c, test_loki_push.c) share
 * on top of ../fixture.h: the suite state (a server fixture with a log store and the
 * ingest counters, a request arena, the last response, `now` in ns on a whole second)
 * with its setup and teardown, JSON written with ' for " in that arena, a dump of
 * everything the log store holds as text (stream by stream, entries in time order), and
 * a lookup in the /metrics exposition. Included by one test file per executable;
 * functions are static inline so each compiles alone. */
#ifndef LOG_FIXTURE_H
#define LOG_FIXTURE_H

#include "../fixture.h"

#include "../../../../storage/logstore/logstore.h"
#include "../../../../storage/tsdb/matcher.h"

#include "../../../../server/ingest/ingest.h"

#include <inttypes.h>
#include <limits.h>

/* The suite state. */
static struct server_fixture fx;
static struct vg_arena *arena;     /* requests' arena (the front end's, in the server) */
static struct http_response resp;  /* the last response */
static struct vg_buf dump;         /* the last logfx_stored() text */
static struct vg_err err;
static int64_t now;                /* ns, a whole second; requests are written around it */

static inline void logfx_setup(void)
{
    fixture_receiver_open(&fx, FIXTURE_LOGS, &arena, &resp);
    vg_buf_init(&dump);
    vg_err_clear(&err);
    now = fixture_now_ms() / 1000 * 1000 * 1000000;
}

static inline void logfx_teardown(void)
{
    vg_buf_free(&dump);
    fixture_receiver_close(&fx, arena, &resp);
}

/* JSON written with ' for " and printf conversions, in the suite's arena (fixture_json). */
static inline struct vg_str logfx_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline struct vg_str logfx_json(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct vg_str s = fixture_vjson(arena, fmt, ap);
    va_end(ap);
    return s;
}

/* Every stored entry as "labels t line|meta\n" lines, labels and meta as name=value
 * joined by ",": stream by stream in label order, each stream's entries in time order;
 * "" when the store is empty. Written to out (reset first), NUL-terminated. */
static inline void logfx_dump(struct server_fixture *f, struct vg_buf *out)
{
    struct vg_err err = {0};
    struct logstore_series_set *set;
    cr_assert_eq(logstore_series(f->v.logs, NULL, 0, INT64_MIN, INT64_MAX, &set, &err), 0,
                 "logstore_series: %s", err.msg);
    vg_buf_reset(out);
    for (size_t s = 0; s < set->n; s++) {
        const struct logstore_series *st = &set->v[s];
        /* Selects the stream by all its labels; entries of larger streams are skipped. */
        struct matcher *ms[32];
        cr_assert_leq(st->nlabels, 32);
        for (size_t i = 0; i < st->nlabels; i++) {
            ms[i] = matcher_new(MATCH_EQ, st->labels[i].name, st->labels[i].value, &err);
            cr_assert_not_null(ms[i]);
        }
        struct logstore_query q = { .matchers = ms, .nmatchers = st->nlabels,
                                    .start = INT64_MIN, .end = INT64_MAX };
        struct logstore_iter *it = logstore_query(f->v.logs, &q, &err);
        cr_assert_not_null(it, "logstore_query: %s", err.msg);
        struct logstore_entry e;
        int rc;
        while ((rc = logstore_iter_next(it, &e, &err)) == 1) {
            if (e.stream != st->id)
                continue;
            for (size_t i = 0; i < e.nlabels; i++)
                vg_buf_printf(out, "%s%.*s=%.*s", i ? "," : "", (int)e.labels[i].name.len,
                              e.labels[i].name.p, (int)e.labels[i].value.len,
                              e.labels[i].value.p);
            vg_buf_printf(out, " %" PRId64 " ", e.t);
            vg_buf_append(out, e.line.p, e.line.len); /* NUL bytes included */
            vg_buf_putc(out, '|');
            for (size_t i = 0; i < e.nmeta; i++)
                vg_buf_printf(out, "%s%.*s=%.*s", i ? "," : "", (int)e.meta[i].name.len,
                              e.meta[i].name.p, (int)e.meta[i].value.len, e.meta[i].value.p);
            vg_buf_putc(out, '\n');
        }
        cr_assert_eq(rc, 0, "logstore_iter_next: %s", err.msg);
        logstore_iter_free(it);
        for (size_t i = 0; i < st->nlabels; i++)
            matcher_free(ms[i]);
    }
    logstore_series_set_free(set);
    cr_assert_not_null(vg_buf_cstr(out));
}

/* Entries in the store. */
static inline size_t logfx_count(struct server_fixture *f)
{
    struct vg_buf b;
    vg_buf_init(&b);
    logfx_dump(f, &b);
    size_t n = 0;
    for (size_t i = 0; i < b.len; i++)
        n += b.p[i] == '\n';
    vg_buf_free(&b);
    return n;
}

/* The store's content as logfx_dump writes it, kept in dump. */
static inline const char *logfx_stored(void)
{
    logfx_dump(&fx, &dump);
    return dump.p;
}

static inline void logfx_expect(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void logfx_expect(const char *fmt, ...)
{
    static char want[1 << 14];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    cr_assert_str_eq(logfx_stored(), want);
}

/* True when the /metrics exposition holds the line (or line prefix) want. */
static inline bool logfx_counted(struct server_fixture *f, const char *want)
{
    struct vg_buf out;
    vg_buf_init(&out);
    metrics_render(f->v.metrics, &out);
    bool found = vg_buf_cstr(&out) && strstr(out.p, want) != NULL;
    vg_buf_free(&out);
    return found;
}

#endif
