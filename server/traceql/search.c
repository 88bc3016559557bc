/* search: see search.h. */
#include "search.h"

#include "plan.h"

#include "../../storage/base/vg_alloc.h"

#include <string.h>

#define STORE_MAX_LIMIT 10000 /* the most traces one spanstore_search returns */
#define FIRST_ROUND_MIN 50

/* The trace ids already evaluated: open addressing, all-zero = free (ids never are). */
struct seen {
    uint8_t (*ids)[SPAN_TRACE_ID_LEN];
    size_t n, cap;
};

static bool is_zero(const uint8_t *id)
{
    static const uint8_t zero[SPAN_TRACE_ID_LEN];
    return !memcmp(id, zero, SPAN_TRACE_ID_LEN);
}

static size_t slot(const struct seen *s, const uint8_t *id)
{
    uint64_t h = 0;
    for (int i = 0; i < SPAN_TRACE_ID_LEN; i++)
        h = h * 31 + id[i];
    size_t j = (size_t)h & (s->cap - 1);
    while (!is_zero(s->ids[j]) && memcmp(s->ids[j], id, SPAN_TRACE_ID_LEN) != 0)
        j = (j + 1) & (s->cap - 1);
    return j;
}

/* 1 when id is new (now recorded), 0 when seen before, VG_ENOMEM. */
static int seen_add(struct seen *s, const uint8_t *id)
{
    if ((s->n + 1) * 2 > s->cap) {
        struct seen g = { .cap = s->cap ? s->cap * 2 : 256 };
        g.ids = vg_calloc(g.cap, SPAN_TRACE_ID_LEN);
        if (!g.ids)
            return VG_ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (!is_zero(s->ids[i]))
                memcpy(g.ids[slot(&g, s->ids[i])], s->ids[i], SPAN_TRACE_ID_LEN);
        g.n = s->n;
        vg_free(s->ids);
        *s = g;
    }
    size_t j = slot(s, id);
    if (!is_zero(s->ids[j]))
        return 0;
    memcpy(s->ids[j], id, SPAN_TRACE_ID_LEN);
    s->n++;
    return 1;
}

static void merge_bounds(int64_t *min, int64_t *max, int64_t omin, int64_t omax)
{
    if (omin > *min)
        *min = omin;
    if (omax > 0 && (*max == 0 || omax < *max))
        *max = omax;
}

struct run {
    struct spanstore *ss;
    const struct traceql_query *q;
    traceql_hit_fn fn;
    void *ud;
    struct traceql_search_stats *st;
    struct vg_arena *scratch;
    struct seen seen;
    size_t limit, max_inspect;
    bool done;
};

/* Reads and evaluates one candidate. */
static int inspect(struct run *r, const struct spanstore_trace_summary *sum, struct vg_err *err)
{
    int rc = seen_add(&r->seen, sum->trace_id);
    if (rc <= 0)
        return rc < 0 ? vg_err_set(err, rc, "traceql search: out of memory") : 0;
    if (r->st->inspected_traces >= r->max_inspect) {
        r->st->truncated = true;
        r->done = true;
        return 0;
    }
    struct spanstore_trace t = { 0 };
    rc = spanstore_trace_get(r->ss, sum->trace_id, &t, err);
    if (rc == VG_ENOTFOUND) { /* removed by retention since the search saw it */
        spanstore_trace_free(&t);
        return 0;
    }
    if (rc == 0) {
        r->st->inspected_traces++;
        r->st->inspected_spans += t.n;
        vg_arena_reset(r->scratch);
        struct traceql_match m;
        rc = traceql_eval(r->q, t.spans, t.n, r->scratch, &m, err);
        if (rc == 0 && m.matched) {
            rc = r->fn(r->ud, sum, t.spans, t.n, &m);
            if (++r->st->matched >= r->limit)
                r->done = true;
        }
    }
    spanstore_trace_free(&t);
    return rc;
}

int traceql_search(struct spanstore *ss, const struct traceql_query *q,
                   const struct traceql_search_opts *o, traceql_hit_fn fn, void *ud,
                   struct traceql_search_stats *stats, struct vg_err *err)
{
    memset(stats, 0, sizeof *stats);
    struct run r = { .ss = ss, .q = q, .fn = fn, .ud = ud, .st = stats };
    r.limit = o->limit ? o->limit : TRACEQL_SEARCH_DEFAULT_LIMIT;
    if (r.limit > TRACEQL_SEARCH_MAX_LIMIT)
        r.limit = TRACEQL_SEARCH_MAX_LIMIT;
    r.max_inspect = o->max_inspect ? o->max_inspect : TRACEQL_SEARCH_DEFAULT_INSPECT;
    struct traceql_plan plan;
    int rc = traceql_plan_build(q, &plan, err);
    r.scratch = vg_arena_new((size_t)64 * 1024);
    if (!rc && !r.scratch)
        rc = vg_err_set(err, VG_ENOMEM, "traceql search: out of memory");
    plan.q.from_ns = o->from_ns;
    plan.q.to_ns = o->to_ns;
    merge_bounds(&plan.q.min_trace_duration_ns, &plan.q.max_trace_duration_ns,
                 o->min_trace_duration_ns, o->max_trace_duration_ns);
    size_t want = r.limit * 2 < FIRST_ROUND_MIN ? FIRST_ROUND_MIN : r.limit * 2;
    while (!rc && !r.done) {
        plan.q.limit = want;
        struct spanstore_search_result res;
        rc = spanstore_search(ss, &plan.q, &res, err);
        stats->keys_read += res.keys_read;
        for (size_t i = 0; !rc && !r.done && i < res.n; i++)
            rc = inspect(&r, &res.traces[i], err);
        bool exhausted = res.n < want && !res.truncated;
        if (!rc && !r.done && !exhausted && (res.truncated || want >= STORE_MAX_LIMIT))
            stats->truncated = true; /* the store stopped before it ran out */
        spanstore_search_free(&res);
        if (exhausted || stats->truncated)
            break;
        want = want * 4 > STORE_MAX_LIMIT ? STORE_MAX_LIMIT : want * 4;
    }
    vg_free(r.seen.ids);
    vg_arena_free(r.scratch);
    traceql_plan_free(&plan);
    return rc;
}
