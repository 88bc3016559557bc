/* spanmetrics: see spanmetrics.h. One dtable with the four labels, one counter and one
 * histogram with exemplars. */
#include "spanmetrics.h"

#include "../../storage/base/vg_alloc.h"

#include <string.h>

struct spanmetrics {
    struct dtable *t;
};

static const char *const KIND[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const char *const STATUS[] = { "STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                      "STATUS_CODE_ERROR" };

/* Their lengths, so the hot path does no strlen. */
static const size_t KIND_LEN[] = { 21, 18, 16, 16, 18, 18 };
static const size_t STATUS_LEN[] = { 17, 14, 17 };

const char *spanmetrics_kind_name(enum span_kind k)
{
    return (unsigned)k <= SPAN_KIND_MAX ? KIND[k] : KIND[0];
}

const char *spanmetrics_status_name(enum span_status s)
{
    return (unsigned)s <= SPAN_STATUS_MAX ? STATUS[s] : STATUS[0];
}

struct spanmetrics *spanmetrics_new(const struct spanmetrics_opts *o, struct vg_err *err)
{
    static const char *const labels[] = { "service", "span_name", "span_kind", "status_code" };
    static const char *const counters[] = { SPANMETRICS_CALLS };
    static const char *const hists[] = { SPANMETRICS_DURATION };
    struct dtable_def def = {
        .label_names = labels, .nlabels = 4,
        .counter_names = counters, .ncounters = 1,
        .hist_names = hists, .nhists = 1,
        .bounds = o->bounds, .nbounds = o->nbounds,
        .exemplars = true,
        .max_series = o->max_series, .max_value_len = o->max_value_len,
        .idle_ms = o->idle_ms,
    };
    struct spanmetrics *sm = vg_calloc(1, sizeof *sm);
    if (!sm) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    if (!(sm->t = dtable_new(&def, err))) {
        vg_free(sm);
        return NULL;
    }
    return sm;
}

void spanmetrics_free(struct spanmetrics *sm)
{
    if (!sm)
        return;
    dtable_free(sm->t);
    vg_free(sm);
}

void spanmetrics_observe(struct spanmetrics *sm, const struct span *spans, size_t n,
                         int64_t now_ms)
{
    dtable_lock(sm->t);
    for (size_t i = 0; i < n; i++) {
        const struct span *s = &spans[i];
        if (s->end_ns < s->start_ns || (unsigned)s->kind > SPAN_KIND_MAX ||
            (unsigned)s->status > SPAN_STATUS_MAX)
            continue;
        struct vg_str vals[4] = {
            s->service,
            s->name,
            { KIND[s->kind], KIND_LEN[s->kind] },
            { STATUS[s->status], STATUS_LEN[s->status] },
        };
        struct dseries *ds = dtable_get(sm->t, vals, now_ms);
        if (!ds)
            continue;
        struct dtable_exemplar ex;
        memcpy(ex.trace_id, s->trace_id, sizeof ex.trace_id);
        memcpy(ex.span_id, s->span_id, sizeof ex.span_id);
        ex.t_ms = s->end_ns / 1000000;
        dtable_count(sm->t, ds, 0, 1);
        dtable_observe(sm->t, ds, 0, (double)(s->end_ns - s->start_ns) / 1e9, &ex);
    }
    dtable_unlock(sm->t);
}

int spanmetrics_collect(struct spanmetrics *sm, int64_t now_ms, struct dtable_out *out,
                        struct vg_err *err)
{
    return dtable_collect(sm->t, now_ms, out, err);
}

void spanmetrics_stats(struct spanmetrics *sm, struct dtable_stats *st)
{
    dtable_stats(sm->t, st);
}
