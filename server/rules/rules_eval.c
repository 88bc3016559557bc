/* rules_eval: evaluating one rule at one time, as Prometheus's rules package does.
 *
 * Recording rule (RecordingRule.Eval): the expression at t - query_offset; a scalar
 * becomes one sample without labels; each sample gets __name__ = the record name and
 * the group's then the rule's labels (an empty value removes the label). More than
 * `limit` series, or two samples with the same resulting labels, fail the rule
 * ("exceeded limit of 3 with 5 series", "vector contains metrics with the same labelset
 * after applying rule labels").
 *
 * Alerting rule (AlertingRule.Eval): for each sample, labels = the sample's minus
 * __name__, plus the rule's labels expanded as templates (with $labels = the sample's
 * labels, $value its value), plus alertname; annotations expanded the same way (a
 * template's `query` runs at t, as Prometheus's; an expansion error puts
 * "<error expanding template: ...>" in place of the value, counts in
 * vigil_rule_template_errors_total and is logged when it differs from the rule's last
 * one; the other labels and annotations are unaffected). Then
 *   - a new label set starts pending with active_at = t (the evaluation time, not
 *     minus the offset); an existing one keeps its state and gets the new value and
 *     annotations;
 *   - an active alert whose labels are gone: a firing one with keep_firing_for keeps
 *     firing until keep_firing_for has passed since it first went missing; otherwise
 *     it becomes inactive with resolved_at = t. Pending ones are dropped; resolved ones
 *     are kept 15 minutes so the notifier hears of the resolution;
 *   - pending becomes firing once t - active_at >= for (fired_at = t);
 *   - more than `limit` pending or firing alerts fail the rule and clear its alerts
 *     ("exceeded limit of 3 with 5 alerts").
 * Written per active alert: ALERTS{<labels>, alertstate="pending"|"firing"} = 1 and
 * ALERTS_FOR_STATE{<labels>} = active_at in seconds, at t - query_offset.
 *
 * Both kinds: a series written at the previous successful evaluation and not at this
 * one gets a staleness marker (Prometheus's Group.Eval), so queries stop seeing it at
 * once instead of after the lookback delta.
 *
 * Sending (AlertingRule.sendAlerts): after each evaluation every firing or resolved
 * alert not sent within the resend delay (1m), or resolved since its last send, is
 * sent with ends_at = resolved_at, or t + 4 * max(resend delay, interval) while it
 * fires; starts_at = fired_at; generator_url = <external URL>/graph?g0.expr=<query,
 * url.QueryEscape'd>&g0.tab=1. External labels are added for the notifier (not to
 * ALERTS), as Prometheus's notifier does. */
#include "rules_int.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/tsdb/tsdb.h"
#include "../logql/engine.h"
#include "../promql/querier.h"
#include "../vigil.h"
#include "notify.h"
#include "rule_template.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One sample of a rule's query result; labels point into the result. */
struct sample {
    const struct label *labels;
    size_t nlabels;
    double v;
};

/* A series to write; labels in the evaluation's arena. */
struct out_series {
    struct label *labels;
    size_t nlabels;
    double v;
};

struct outbuf {
    struct out_series *v;
    size_t n, cap;
};

struct eval {
    struct group_rt *g;
    struct rule_rt *rr;
    int64_t ts;      /* evaluation time */
    int64_t qt;      /* ts - query_offset: query and sample time */
    struct vg_arena *a;
    struct vg_err *err;
    struct outbuf out;
    struct alert *send;
    size_t nsend;
    size_t tmpl_errors;  /* template expansions that failed in this evaluation */
    struct vg_buf tmpl_msgs; /* their distinct messages, one per line */
};

struct label *rules_labels_copy(const struct label *ls, size_t n)
{
    size_t bytes = n * sizeof *ls;
    for (size_t i = 0; i < n; i++)
        bytes += ls[i].name.len + ls[i].value.len + 2;
    struct label *out = vg_malloc(bytes ? bytes : 1);
    if (!out)
        return NULL;
    char *p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(p, ls[i].name.p, ls[i].name.len);
        p[ls[i].name.len] = '\0';
        out[i].name = (struct vg_str){ p, ls[i].name.len };
        p += ls[i].name.len + 1;
        if (ls[i].value.len)
            memcpy(p, ls[i].value.p, ls[i].value.len);
        p[ls[i].value.len] = '\0';
        out[i].value = (struct vg_str){ p, ls[i].value.len };
        p += ls[i].value.len + 1;
    }
    return out;
}

void rules_rule_clear(struct rule_rt *rr)
{
    for (size_t i = 0; i < rr->nalerts; i++) {
        vg_free(rr->alerts[i].labels);
        vg_free(rr->alerts[i].annotations);
    }
    vg_free(rr->alerts);
    rr->alerts = NULL;
    rr->nalerts = rr->cap = 0;
    for (size_t i = 0; i < rr->nprev; i++)
        vg_free(rr->prev[i].labels);
    vg_free(rr->prev);
    rr->prev = NULL;
    rr->nprev = 0;
    vg_free(rr->last_error);
    rr->last_error = NULL;
    vg_free(rr->tmpl_error);
    rr->tmpl_error = NULL;
}

void rules_metric_add(struct rules *r, enum rules_metric m, const char *group, double d)
{
    for (int i = 0; i < 2; i++)
        if (r->fam[m][i])
            metric_add(r->fam[m][i], d, group);
}

void rules_metric_observe(struct rules *r, enum rules_metric m, const char *group, double v)
{
    for (int i = 0; i < 2; i++)
        if (r->fam[m][i])
            metric_observe(r->fam[m][i], v, group);
}

void rules_metric_set(struct rules *r, enum rules_metric m, const char *group, double v)
{
    for (int i = 0; i < 2; i++)
        if (r->fam[m][i])
            metric_set(r->fam[m][i], v, group);
}

/* ---- label building ---- */

/* base (sorted) without __name__ when drop_name, then each of sets applied in order
 * (an empty value removes the name), sorted; in the arena. NULL on OOM. */
/* Prometheus writes ALERTS_FOR_STATE as ActiveAt.Unix(): whole seconds. */
static int64_t whole_seconds(int64_t ms)
{
    return ms / 1000;
}

static struct label *build(struct vg_arena *a, const struct label *base, size_t nbase,
                           bool drop_name, const struct label *sets, size_t nsets, size_t *n)
{
    struct label *ls = vg_arena_alloc(a, (nbase + nsets + 1) * sizeof *ls);
    if (!ls)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < nbase; i++)
        if (!(drop_name && vg_str_eq_c(base[i].name, "__name__")))
            ls[k++] = base[i];
    for (size_t s = 0; s < nsets; s++) {
        size_t i;
        for (i = 0; i < k && !vg_str_eq(ls[i].name, sets[s].name); i++)
            ;
        if (i < k) {
            if (sets[s].value.len)
                ls[i].value = sets[s].value;
            else
                ls[i] = ls[--k];
        } else if (sets[s].value.len) {
            ls[k++] = sets[s];
        }
    }
    labels_sort(ls, k);
    *n = k;
    return ls;
}

static int push(struct eval *e, struct label *ls, size_t n, double v)
{
    struct outbuf *o = &e->out;
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        struct out_series *nv = vg_arena_alloc(e->a, cap * sizeof *nv);
        if (!nv)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        if (o->n)
            memcpy(nv, o->v, o->n * sizeof *nv);
        o->v = nv;
        o->cap = cap;
    }
    o->v[o->n++] = (struct out_series){ ls, n, v };
    return 0;
}

static int cmp_out(const void *x, const void *y)
{
    const struct out_series *a = x, *b = y;
    return labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

/* ---- querying ---- */

static int query_promql(struct eval *e, struct promql_result **res, struct sample **out,
                        size_t *n)
{
    struct querier q;
    querier_tsdb(e->g->r->o.tsdb, &q);
    if (promql_eval_instant(&e->g->r->popts, &q, e->rr->def->promql, e->qt, res, e->err) < 0)
        return e->err->code;
    struct promql_result *r = *res;
    if (r->type == PT_SCALAR) {
        *out = vg_arena_alloc(e->a, sizeof **out);
        if (!*out)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        (*out)[0] = (struct sample){ NULL, 0, r->scalar.v };
        *n = 1;
        return 0;
    }
    if (r->type != PT_VECTOR)
        return vg_err_set(e->err, VG_EINVAL, "rule result is not a vector or scalar");
    *out = vg_arena_alloc(e->a, (r->nseries ? r->nseries : 1) * sizeof **out);
    if (!*out)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->nseries; i++)
        (*out)[i] = (struct sample){ r->series[i].labels, r->series[i].nlabels,
                                     r->series[i].npoints ? r->series[i].points[0].v : NAN };
    *n = r->nseries;
    return 0;
}

static int query_logql(struct eval *e, struct logql_result **res, struct sample **out,
                       size_t *n)
{
    if (!e->g->r->o.logs)
        return vg_err_set(e->err, VG_EINVAL, "no log store to evaluate a LogQL rule on");
    struct logql_params p = { .start_ns = e->qt * 1000000, .end_ns = e->qt * 1000000,
                              .step_ns = 1000000, .instant = true, .backward = true,
                              .limit = 100 };
    struct logql_limits lim;
    logql_limits_default(&lim);
    if (e->g->r->o.cfg)
        lim.timeout_ms = e->g->r->popts.timeout_ms;
    if (logql_exec(e->g->r->o.logs, e->rr->def->logql, &p, &lim, res, e->err) < 0)
        return e->err->code;
    struct logql_result *r = *res;
    if (r->type == LQ_RESULT_SCALAR) {
        *out = vg_arena_alloc(e->a, sizeof **out);
        if (!*out)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        (*out)[0] = (struct sample){ NULL, 0, r->scalar.v };
        *n = 1;
        return 0;
    }
    if (r->type != LQ_RESULT_VECTOR && r->type != LQ_RESULT_MATRIX)
        return vg_err_set(e->err, VG_EINVAL, "rule result is not a vector or scalar");
    *out = vg_arena_alloc(e->a, (r->nseries ? r->nseries : 1) * sizeof **out);
    if (!*out)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < r->nseries; i++)
        if (r->series[i].npoints)
            (*out)[k++] = (struct sample){ r->series[i].labels, r->series[i].nlabels,
                                           r->series[i].points[r->series[i].npoints - 1].v };
    *n = k;
    return 0;
}

/* ---- recording rules ---- */

static int eval_record(struct eval *e, const struct sample *s, size_t n)
{
    const struct rule_group_def *gd = e->g->def;
    if (gd->limit > 0 && (int64_t)n > gd->limit)
        return vg_err_set(e->err, VG_ETOOLARGE, "exceeded limit of %lld with %zu series",
                          (long long)gd->limit, n);
    struct label name = { VG_STR("__name__"), vg_str_c(e->rr->def->name) };
    for (size_t i = 0; i < n; i++) {
        size_t nl, nf;
        struct label *l1 = build(e->a, s[i].labels, s[i].nlabels, true, &name, 1, &nl);
        struct label *l2 = l1 ? build(e->a, l1, nl, false, e->rr->labels, e->rr->nlabels, &nf) : NULL;
        if (!l2)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        if (push(e, l2, nf, s[i].v) < 0)
            return e->err->code;
    }
    if (e->out.n > 1) /* qsort wants a non-NULL base even for 0 items */
        qsort(e->out.v, e->out.n, sizeof *e->out.v, cmp_out);
    for (size_t i = 1; i < e->out.n; i++)
        if (!cmp_out(&e->out.v[i - 1], &e->out.v[i]))
            return vg_err_set(e->err, VG_ECONFLICT,
                              "vector contains metrics with the same labelset after applying rule labels");
    return 0;
}

/* ---- alerting rules ---- */

/* The expanded labels and annotations of one sample. */
struct pending_alert {
    struct label *labels;
    size_t nlabels;
    struct label *annotations;
    size_t nannotations;
    uint64_t hash;
    double v;
};

/* The template's `query`: an instant PromQL query at the evaluation time. */
static int tmpl_query(void *ctx, const char *expr, struct vg_arena *a,
                      struct rule_template_sample **out, size_t *n, struct vg_err *err)
{
    struct eval *e = ctx;
    struct promql_expr *pe = promql_parse(expr, strlen(expr), err);
    if (!pe)
        return err->code;
    struct querier q;
    querier_tsdb(e->g->r->o.tsdb, &q);
    struct promql_result *r = NULL;
    int rc = promql_eval_instant(&e->g->r->popts, &q, pe, e->ts, &r, err);
    promql_expr_free(pe);
    if (rc < 0)
        return rc;
    if (r->type != PT_VECTOR && r->type != PT_SCALAR) {
        promql_result_free(r);
        return vg_err_set(err, VG_EINVAL, "rule result is not a vector or scalar");
    }
    size_t cnt = r->type == PT_SCALAR ? 1 : r->nseries;
    struct rule_template_sample *smp = vg_arena_calloc(a, (cnt ? cnt : 1) * sizeof *smp);
    rc = smp ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
    if (smp && r->type == PT_SCALAR)
        smp[0].v = r->scalar.v;
    for (size_t i = 0; rc == 0 && r->type == PT_VECTOR && i < cnt; i++) {
        const struct promql_series *ps = &r->series[i];
        smp[i].v = ps->npoints ? ps->points[0].v : NAN;
        smp[i].labels = vg_arena_alloc(a, (ps->nlabels + 1) * sizeof *smp[i].labels);
        if (!smp[i].labels) {
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
            break;
        }
        for (size_t k = 0; k < ps->nlabels; k++) {
            char *nm = vg_arena_strndup(a, ps->labels[k].name.p, ps->labels[k].name.len);
            char *vl = vg_arena_strndup(a, ps->labels[k].value.p, ps->labels[k].value.len);
            if (!nm || !vl) {
                rc = vg_err_set(err, VG_ENOMEM, "out of memory");
                break;
            }
            smp[i].labels[k] = (struct label){ { nm, ps->labels[k].name.len },
                                               { vl, ps->labels[k].value.len } };
        }
        smp[i].nlabels = ps->nlabels;
    }
    promql_result_free(r);
    if (rc == 0)
        *out = smp, *n = cnt;
    return rc;
}

/* Counts a template error and notes its message for template_errors_log. */
static void template_error(struct eval *e, const char *msg)
{
    e->tmpl_errors++;
    rules_metric_add(e->g->r, RM_TEMPLATE_ERRORS, e->g->key, 1);
    const char *have = vg_buf_cstr(&e->tmpl_msgs);
    size_t len = strlen(msg);
    for (const char *p = have; p && *p; p = strchr(p, '\n') + 1)
        if (!strncmp(p, msg, len) && p[len] == '\n')
            return;
    vg_buf_append(&e->tmpl_msgs, msg, len);
    vg_buf_putc(&e->tmpl_msgs, '\n');
}

/* Logs the evaluation's template errors when they differ from the rule's last logged
 * set (so a template failing the same way at every evaluation is logged once). */
static void template_errors_log(struct eval *e)
{
    struct rule_rt *rr = e->rr;
    const char *now = e->tmpl_errors ? vg_buf_cstr(&e->tmpl_msgs) : NULL;
    if ((!now && !rr->tmpl_error) || (now && rr->tmpl_error && !strcmp(now, rr->tmpl_error)))
        return;
    vg_free(rr->tmpl_error);
    rr->tmpl_error = now ? vg_strdup(now) : NULL;
    if (now)
        vg_log(VG_LOG_WARN, "rules", "expanding alert template failed", "group", e->g->key,
               "rule", rr->def->name, "errors", now, NULL);
}

static const char *expand(struct eval *e, const struct rule_template *t, const char *raw,
                          const struct rule_template_data *d)
{
    if (!t)
        return raw;
    struct vg_buf b;
    vg_buf_init(&b);
    struct vg_err terr;
    if (rule_template_expand(t, d, &b, &terr) < 0) {
        /* Prometheus puts the error in place of the value. */
        template_error(e, terr.msg);
        vg_buf_reset(&b);
        vg_buf_printf(&b, "<error expanding template: %s>", terr.msg);
    }
    const char *s = vg_buf_cstr(&b);
    char *out = s ? vg_arena_strndup(e->a, s, b.len) : NULL;
    vg_buf_free(&b);
    return out;
}

static int expand_sample(struct eval *e, const struct sample *s, struct pending_alert *pa)
{
    const struct rule_def *def = e->rr->def;
    const struct rules_settings *set = &e->g->gen->set;
    struct rule_template_data d = { s->labels, s->nlabels, set->external, set->nexternal,
                                    set->external_url, s->v, e->ts, tmpl_query, e };
    struct label *sets = vg_arena_alloc(e->a, (e->rr->nlabels + 1) * sizeof *sets);
    struct label *ann = vg_arena_alloc(e->a, (def->nannotations + 1) * sizeof *ann);
    if (!sets || !ann)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->rr->nlabels; i++) {
        const char *v = expand(e, e->rr->tmpl[i], e->rr->labels[i].value.p, &d);
        if (!v)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        sets[i] = (struct label){ e->rr->labels[i].name, vg_str_c(v) };
    }
    sets[e->rr->nlabels] = (struct label){ VG_STR("alertname"), vg_str_c(def->name) };
    pa->labels = build(e->a, s->labels, s->nlabels, true, sets, e->rr->nlabels + 1, &pa->nlabels);
    if (!pa->labels)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < def->nannotations; i++) {
        const char *v = expand(e, def->annot_tmpl[i], def->annotations[i].value.p, &d);
        if (!v)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        ann[i] = (struct label){ def->annotations[i].name, vg_str_c(v) };
    }
    pa->annotations = ann;
    pa->nannotations = def->nannotations;
    pa->hash = labels_hash(pa->labels, pa->nlabels);
    pa->v = s->v;
    return 0;
}

static struct alert_rt *find_alert(struct rule_rt *rr, const struct label *ls, size_t n, uint64_t h)
{
    for (size_t i = 0; i < rr->nalerts; i++)
        if (rr->alerts[i].hash == h && !labels_cmp(rr->alerts[i].labels, rr->alerts[i].nlabels, ls, n))
            return &rr->alerts[i];
    return NULL;
}

static void drop_alert(struct rule_rt *rr, size_t i)
{
    vg_free(rr->alerts[i].labels);
    vg_free(rr->alerts[i].annotations);
    rr->alerts[i] = rr->alerts[--rr->nalerts];
}

/* Labels with __name__ and optionally alertstate added, in the arena. */
static struct label *series_labels(struct eval *e, const struct alert_rt *a, const char *name,
                                   const char *state, size_t *n)
{
    struct label sets[2] = { { VG_STR("__name__"), vg_str_c(name) },
                             { VG_STR("alertstate"), vg_str_c(state ? state : "") } };
    return build(e->a, a->labels, a->nlabels, false, sets, state ? 2 : 1, n);
}

static int update_alerts(struct eval *e, struct pending_alert *pa, size_t n)
{
    struct rule_rt *rr = e->rr;
    const struct rule_def *def = rr->def;
    int64_t ts = e->ts;
    /* new or updated alerts */
    for (size_t i = 0; i < n; i++) {
        struct alert_rt *a = find_alert(rr, pa[i].labels, pa[i].nlabels, pa[i].hash);
        struct label *ann = rules_labels_copy(pa[i].annotations, pa[i].nannotations);
        if (!ann)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        if (a && a->state != RULES_INACTIVE) {
            a->value = pa[i].v;
            vg_free(a->annotations);
            a->annotations = ann;
            a->nannotations = pa[i].nannotations;
            continue;
        }
        struct label *ls = rules_labels_copy(pa[i].labels, pa[i].nlabels);
        if (!ls) {
            vg_free(ann);
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        }
        if (a) { /* a resolved alert comes back: a new life with the same labels */
            vg_free(a->labels);
            vg_free(a->annotations);
        } else {
            if (rr->nalerts == rr->cap) {
                size_t cap = rr->cap ? rr->cap * 2 : 4;
                struct alert_rt *nv = vg_realloc(rr->alerts, cap * sizeof *nv);
                if (!nv) {
                    vg_free(ls);
                    vg_free(ann);
                    return vg_err_set(e->err, VG_ENOMEM, "out of memory");
                }
                rr->alerts = nv;
                rr->cap = cap;
            }
            a = &rr->alerts[rr->nalerts++];
        }
        *a = (struct alert_rt){ .labels = ls, .nlabels = pa[i].nlabels, .annotations = ann,
                                .nannotations = pa[i].nannotations, .hash = pa[i].hash,
                                .state = RULES_PENDING, .value = pa[i].v, .active_at = ts };
        e->g->dirty = true;
    }
    /* alerts whose labels are gone; state advance */
    size_t active = 0;
    for (size_t i = 0; i < rr->nalerts;) {
        struct alert_rt *a = &rr->alerts[i];
        bool present = false;
        for (size_t k = 0; k < n && !present; k++)
            present = pa[k].hash == a->hash &&
                      !labels_cmp(pa[k].labels, pa[k].nlabels, a->labels, a->nlabels);
        if (!present) {
            bool keep = false;
            if (a->state == RULES_FIRING && def->keep_firing_for_ms > 0) {
                if (!a->keep_firing_since)
                    a->keep_firing_since = ts;
                keep = ts - a->keep_firing_since < def->keep_firing_for_ms;
            }
            if (a->state == RULES_PENDING ||
                (a->resolved_at && ts - a->resolved_at > RULES_RESOLVED_RETENTION_MS)) {
                drop_alert(rr, i);
                e->g->dirty = true;
                continue;
            }
            if (a->state != RULES_INACTIVE && !keep) {
                a->state = RULES_INACTIVE;
                a->resolved_at = ts;
                e->g->dirty = true;
            }
            if (!keep) {
                i++;
                continue;
            }
        } else {
            a->keep_firing_since = 0;
        }
        active++;
        if (a->state == RULES_PENDING && ts - a->active_at >= def->for_ms) {
            a->state = RULES_FIRING;
            a->fired_at = ts;
            e->g->dirty = true;
        }
        i++;
    }
    if (e->g->def->limit > 0 && (int64_t)active > e->g->def->limit) {
        for (size_t i = 0; i < rr->nalerts; i++) {
            vg_free(rr->alerts[i].labels);
            vg_free(rr->alerts[i].annotations);
        }
        rr->nalerts = 0;
        e->g->dirty = true;
        return vg_err_set(e->err, VG_ETOOLARGE, "exceeded limit of %lld with %zu alerts",
                          (long long)e->g->def->limit, active);
    }
    return 0;
}

static int alert_series(struct eval *e)
{
    for (size_t i = 0; i < e->rr->nalerts; i++) {
        const struct alert_rt *a = &e->rr->alerts[i];
        if (a->state == RULES_INACTIVE)
            continue;
        size_t n1, n2;
        struct label *l1 = series_labels(e, a, "ALERTS", rules_alert_state_name(a->state), &n1);
        struct label *l2 = series_labels(e, a, "ALERTS_FOR_STATE", NULL, &n2);
        if (!l1 || !l2)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        if (push(e, l1, n1, 1) < 0 || push(e, l2, n2, (double)whole_seconds(a->active_at)) < 0)
            return e->err->code;
    }
    return 0;
}

void rules_generator_url(struct vg_buf *b, const char *external_url, const char *expr)
{
    vg_buf_puts(b, external_url ? external_url : "");
    vg_buf_puts(b, "/graph?g0.expr=");
    rule_template_query_escape(b, expr, strlen(expr));
    vg_buf_puts(b, "&g0.tab=1");
}

/* Alerts due for sending, copied into the arena with the external labels added. */
static int collect_sends(struct eval *e)
{
    struct rule_rt *rr = e->rr;
    const struct rules_settings *set = &e->g->gen->set;
    int64_t delta = e->g->interval_ms > RULES_RESEND_DELAY_MS ? e->g->interval_ms : RULES_RESEND_DELAY_MS;
    e->send = vg_arena_alloc(e->a, (rr->nalerts ? rr->nalerts : 1) * sizeof *e->send);
    struct vg_buf gu;
    vg_buf_init(&gu);
    rules_generator_url(&gu, set->external_url, rr->def->query ? rr->def->query : rr->def->expr);
    const char *gs = vg_buf_cstr(&gu);
    const char *gen_url = gs ? vg_arena_strndup(e->a, gs, gu.len) : NULL;
    vg_buf_free(&gu);
    if (!e->send || !gen_url)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < rr->nalerts; i++) {
        struct alert_rt *a = &rr->alerts[i];
        if (a->state == RULES_PENDING)
            continue;
        bool due = a->resolved_at > a->last_sent_at || a->last_sent_at + RULES_RESEND_DELAY_MS < e->ts;
        if (!due)
            continue;
        a->last_sent_at = e->ts;
        a->valid_until = e->ts + 4 * delta;
        e->g->dirty = true;
        /* external labels only where the alert has no such label */
        struct label *ext = vg_arena_alloc(e->a, (set->nexternal + 1) * sizeof *ext);
        if (!ext)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        size_t next = 0;
        for (size_t k = 0; k < set->nexternal; k++)
            if (!labels_get(a->labels, a->nlabels, set->external[k].name.p).p)
                ext[next++] = set->external[k];
        size_t nl;
        struct label *ls = build(e->a, a->labels, a->nlabels, false, ext, next, &nl);
        struct label *ann = vg_arena_alloc(e->a, (a->nannotations + 1) * sizeof *ann);
        if (!ls || !ann)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        if (a->nannotations)
            memcpy(ann, a->annotations, a->nannotations * sizeof *ann);
        e->send[e->nsend++] = (struct alert){
            .labels = ls, .nlabels = nl, .annotations = ann, .nannotations = a->nannotations,
            .starts_at_ms = a->fired_at,
            .ends_at_ms = a->state == RULES_INACTIVE ? a->resolved_at : a->valid_until,
            .generator_url = gen_url,
        };
    }
    return 0;
}

/* The labels and annotations of every sample into *out. Runs without the group lock:
 * templates may query the TSDB, and views must not wait for that. */
static int expand_all(struct eval *e, const struct sample *s, size_t n, struct pending_alert **out)
{
    struct pending_alert *pa = *out = vg_arena_alloc(e->a, (n ? n : 1) * sizeof *pa);
    if (!pa)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (expand_sample(e, &s[i], &pa[i]) < 0)
            return e->err->code;
        for (size_t k = 0; k < i; k++)
            if (pa[k].hash == pa[i].hash &&
                !labels_cmp(pa[k].labels, pa[k].nlabels, pa[i].labels, pa[i].nlabels))
                return vg_err_set(e->err, VG_ECONFLICT,
                                  "vector contains metrics with the same labelset after applying alert labels");
    }
    template_errors_log(e);
    return 0;
}

/* Under the group lock: the expanded alerts update the rule's state. */
static int eval_alert(struct eval *e, struct pending_alert *pa, size_t n)
{
    if (update_alerts(e, pa, n) < 0 || alert_series(e) < 0)
        return e->err->code;
    if (e->out.n > 1) /* qsort wants a non-NULL base even for 0 items */
        qsort(e->out.v, e->out.n, sizeof *e->out.v, cmp_out);
    return collect_sends(e);
}

/* ---- writing ---- */

/* Series of the previous evaluation missing now get a staleness marker; the new set
 * replaces the old. Runs under the group lock. */
static int staleness(struct eval *e, struct outbuf *stale)
{
    struct rule_rt *rr = e->rr;
    struct series_mark *next = vg_calloc(e->out.n ? e->out.n : 1, sizeof *next);
    if (!next)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->out.n; i++) {
        next[i].labels = rules_labels_copy(e->out.v[i].labels, e->out.v[i].nlabels);
        next[i].nlabels = e->out.v[i].nlabels;
        next[i].hash = labels_hash(e->out.v[i].labels, e->out.v[i].nlabels);
        if (!next[i].labels) {
            for (size_t k = 0; k < i; k++)
                vg_free(next[k].labels);
            vg_free(next);
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        }
    }
    double stale_nan;
    uint64_t bits = TSDB_STALE_NAN_BITS;
    memcpy(&stale_nan, &bits, sizeof stale_nan);
    *stale = (struct outbuf){ 0 };
    struct eval se = *e;
    se.out = (struct outbuf){ 0 };
    for (size_t i = 0; i < rr->nprev; i++) {
        bool kept = false;
        for (size_t k = 0; k < e->out.n && !kept; k++)
            kept = next[k].hash == rr->prev[i].hash &&
                   !labels_cmp(next[k].labels, next[k].nlabels, rr->prev[i].labels, rr->prev[i].nlabels);
        if (kept)
            continue;
        /* the marker's labels must outlive prev: copy into the arena */
        struct label *ls = vg_arena_alloc(e->a, (rr->prev[i].nlabels + 1) * sizeof *ls);
        if (!ls)
            break; /* a missed marker only delays staleness by the lookback delta */
        for (size_t k = 0; k < rr->prev[i].nlabels; k++) {
            const struct label *l = &rr->prev[i].labels[k];
            char *nm = vg_arena_strndup(e->a, l->name.p, l->name.len);
            char *vl = vg_arena_strndup(e->a, l->value.p, l->value.len);
            if (!nm || !vl)
                break;
            ls[k] = (struct label){ { nm, l->name.len }, { vl, l->value.len } };
        }
        if (push(&se, ls, rr->prev[i].nlabels, stale_nan) < 0)
            break;
    }
    *stale = se.out;
    for (size_t i = 0; i < rr->nprev; i++)
        vg_free(rr->prev[i].labels);
    vg_free(rr->prev);
    rr->prev = next;
    rr->nprev = e->out.n;
    return 0;
}

static int write_series(struct rules *r, const struct outbuf *o, int64_t t, struct vg_err *err)
{
    if (!o->n)
        return 0;
    struct tsdb_sample *smp = vg_malloc(o->n * sizeof *smp);
    struct tsdb_series_in *in = vg_malloc(o->n * sizeof *in);
    if (!smp || !in) {
        vg_free(smp);
        vg_free(in);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < o->n; i++) {
        smp[i] = (struct tsdb_sample){ t, o->v[i].v };
        in[i] = (struct tsdb_series_in){ .labels = o->v[i].labels, .nlabels = o->v[i].nlabels,
                                         .samples = &smp[i], .nsamples = 1 };
    }
    struct tsdb_batch b = { .series = in, .nseries = o->n };
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    int rc = tsdb_append(r->o.tsdb, &b, &res, err);
    vg_free(smp);
    vg_free(in);
    return rc;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void rules_eval_rule(struct group_rt *g, struct rule_rt *rr, int64_t ts)
{
    struct rules *r = g->r;
    struct vg_err err = { 0 };
    int64_t t0 = mono_ns();
    struct eval e = { .g = g, .rr = rr, .ts = ts, .qt = ts - g->offset_ms, .err = &err };
    struct promql_result *pres = NULL;
    struct logql_result *lres = NULL;
    struct sample *s = NULL;
    size_t n = 0;
    struct outbuf stale = { 0 };
    vg_buf_init(&e.tmpl_msgs);
    e.a = vg_arena_new(4096);
    int rc = e.a ? 0 : vg_err_set(&err, VG_ENOMEM, "out of memory");
    if (rc == 0 && rr->def->promql)
        rc = query_promql(&e, &pres, &s, &n);
    else if (rc == 0 && rr->def->logql)
        rc = query_logql(&e, &lres, &s, &n);
    else if (rc == 0)
        rc = vg_err_set(&err, VG_EINVAL, "rule has no parsed expression");
    struct pending_alert *pa = NULL;
    if (rc == 0 && rr->def->kind == RULE_ALERT)
        rc = expand_all(&e, s, n, &pa);
    pthread_mutex_lock(&g->mu);
    if (rc == 0)
        rc = rr->def->kind == RULE_ALERT ? eval_alert(&e, pa, n) : eval_record(&e, s, n);
    if (rc == 0)
        rc = staleness(&e, &stale);
    double secs = (double)(mono_ns() - t0) / 1e9;
    rr->last_eval = ts;
    rr->eval_seconds = secs;
    rr->health = rc == 0 ? RULES_OK : RULES_ERR;
    vg_free(rr->last_error);
    rr->last_error = rc == 0 ? NULL : vg_strdup(err.msg);
    pthread_mutex_unlock(&g->mu);
    rules_metric_add(r, RM_EVALS, g->key, 1);
    rules_metric_observe(r, RM_EVAL_DURATION, g->key, secs);
    if (rc < 0) {
        rules_metric_add(r, RM_FAILURES, g->key, 1);
        vg_log(VG_LOG_WARN, "rules", "evaluating rule failed", "group", g->key, "rule",
               rr->def->name, "error", err.msg, NULL);
        goto out;
    }
    /* The results are in the TSDB before the next rule runs, so it sees them. */
    if (write_series(r, &e.out, e.qt, &err) < 0 || write_series(r, &stale, e.qt, &err) < 0) {
        rules_metric_add(r, RM_FAILURES, g->key, 1);
        vg_log(VG_LOG_WARN, "rules", "writing rule results failed", "group", g->key, "rule",
               rr->def->name, "error", err.msg, NULL);
        pthread_mutex_lock(&g->mu);
        rr->health = RULES_ERR;
        vg_free(rr->last_error);
        rr->last_error = vg_strdup(err.msg);
        pthread_mutex_unlock(&g->mu);
    }
    struct notifier *nt = r->o.v ? r->o.v->notifier : NULL;
    if (e.nsend && nt)
        notifier_send(nt, e.send, e.nsend);
out:
    promql_result_free(pres);
    logql_result_free(lres);
    vg_buf_free(&e.tmpl_msgs);
    vg_arena_free(e.a);
}
