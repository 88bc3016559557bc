/* runner: runs a parsed PromQL test file against the TSDB and the engine; the rules are in
 * runner.h. The comparison follows Prometheus's harness (promql/promqltest/test.go):
 * messages name the same things (unexpected metric, expected metric not found, point
 * counts, timestamps, values) so a failure reads like Prometheus's. */
#include "runner.h"

#include "../../server/promql/functions.h"
#include "../../server/promql/querier.h"
#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/tsdb/tsdb.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MINUTE_MS 60000LL
/* The widest out-of-order window the store needs: every file loads from 1970 on. */
#define OOO_WINDOW_MS (100LL * 365 * 24 * 3600 * 1000)
/* How much of an actual result a failure report prints. */
#define SHOW_SERIES 40
#define SHOW_POINTS 30

struct taint {
    const struct label *labels;
    size_t n;
};

struct run {
    const struct runner_opts *o;
    char dir[512];
    struct tsdb *db;
    struct querier q;
    struct taint *taint; /* native-histogram series of the current store */
    size_t ntaint, cap_taint;
    struct vg_arena *arena; /* labels derived for load_with_nhcb; reset by clear */
};

/* The grid a matrix result's expected points lie on. */
struct grid {
    int64_t start, end, step;
};

void runner_opts_default(struct runner_opts *o)
{
    memset(o, 0, sizeof *o);
    promql_opts_default(&o->engine);
    o->at_variants = true;
    o->range_mode = true;
    o->case_timeout_s = 60;
}

bool runner_is_case(const struct tf_cmd *cmd)
{
    return cmd->kind == TF_EVAL || (cmd->kind == TF_LOAD && cmd->error);
}

/* ---- the store ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    (void)remove(path); /* best effort: a leftover temporary file is harmless */
    return 0;
}

void runner_rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void close_db(struct run *r)
{
    if (r->db) {
        tsdb_close(r->db);
        r->db = NULL;
    }
    if (r->dir[0]) {
        runner_rm_tree(r->dir);
        r->dir[0] = 0;
    }
    r->ntaint = 0;
    vg_arena_reset(r->arena);
}

static int open_db(struct run *r, struct vg_err *err)
{
    const char *base = r->o->tmpdir;
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(r->dir, sizeof r->dir, "%s/vigil-promqltest-XXXXXX", base);
    if (!mkdtemp(r->dir)) {
        int e = errno;
        r->dir[0] = 0;
        return vg_err_set(err, VG_EIO, "mkdtemp in %s: %s", base, strerror(e));
    }
    struct tsdb_opts to;
    tsdb_opts_default(&to);
    to.dir = r->dir;
    to.retention_ms = 0;
    to.ooo_window_ms = OOO_WINDOW_MS;
    to.maint_interval_ms = 24LL * 3600 * 1000; /* no background work during a file */
    r->db = tsdb_open(&to, err);
    if (!r->db) {
        close_db(r);
        return err->code ? err->code : VG_EIO;
    }
    querier_tsdb(r->db, &r->q);
    return 0;
}

/* ---- formatting ---- */

static void put_quoted(struct vg_buf *b, struct vg_str s)
{
    vg_buf_putc(b, '"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\')
            vg_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            vg_buf_puts(b, "\\n");
        else if (c < 0x20 || c == 0x7f)
            vg_buf_printf(b, "\\x%02x", c);
        else
            vg_buf_putc(b, (char)c);
    }
    vg_buf_putc(b, '"');
}

/* name{a="b", c="d"} as Prometheus prints a label set. */
static void put_labels(struct vg_buf *b, const struct label *ls, size_t n)
{
    struct vg_str name = labels_get(ls, n, "__name__");
    if (name.p)
        vg_buf_append(b, name.p, name.len);
    if (name.p && n == 1)
        return;
    vg_buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (vg_str_eq_c(ls[i].name, "__name__"))
            continue;
        if (!first)
            vg_buf_puts(b, ", ");
        first = false;
        vg_buf_append(b, ls[i].name.p, ls[i].name.len);
        vg_buf_putc(b, '=');
        put_quoted(b, ls[i].value);
    }
    vg_buf_putc(b, '}');
}

static bool is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == TSDB_STALE_NAN_BITS;
}

static void put_float(struct vg_buf *b, double v)
{
    if (is_stale(v))
        vg_buf_puts(b, "stale");
    else
        vg_buf_prom_float(b, v);
}

static void put_time(struct vg_buf *b, int64_t ms)
{
    if (ms % 1000 == 0)
        vg_buf_printf(b, "%llds", (long long)(ms / 1000));
    else
        vg_buf_printf(b, "%.3fs", (double)ms / 1000.0);
}

static void put_expected(struct vg_buf *b, const struct tf_eval *e)
{
    vg_buf_puts(b, "    expected:");
    if (tf_eval_is_fail(e)) {
        const struct tf_expect *x = tf_eval_fail_expect(e);
        vg_buf_puts(b, " an error");
        if (x && x->msg)
            vg_buf_printf(b, " with message \"%s\"", x->msg);
        if (x && x->regex)
            vg_buf_printf(b, " matching /%s/", x->regex);
        vg_buf_putc(b, '\n');
        return;
    }
    if (e->expect_string) {
        vg_buf_puts(b, " string ");
        put_quoted(b, (struct vg_str){ e->string, e->string_len });
        vg_buf_putc(b, '\n');
        return;
    }
    if (e->expect_scalar) {
        vg_buf_puts(b, " scalar ");
        put_float(b, e->scalar);
        vg_buf_putc(b, '\n');
        return;
    }
    if (e->nseries == 0) {
        vg_buf_puts(b, " empty result\n");
        return;
    }
    vg_buf_putc(b, '\n');
    for (size_t i = 0; i < e->nseries; i++) {
        const struct tf_series *s = &e->series[i];
        vg_buf_puts(b, "      ");
        put_labels(b, s->labels, s->nlabels);
        for (size_t k = 0; k < s->nvals; k++) {
            vg_buf_putc(b, ' ');
            if (s->vals[k].omitted)
                vg_buf_putc(b, '_');
            else
                put_float(b, s->vals[k].v);
        }
        vg_buf_putc(b, '\n');
    }
}

static void put_annotations(struct vg_buf *b, const char *what, char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vg_buf_printf(b, "      %s: %s\n", what, v[i]);
}

static void put_actual(struct vg_buf *b, const struct promql_result *res)
{
    vg_buf_printf(b, "    actual (%s):", promql_type_name(res->type));
    switch (res->type) {
    case PT_SCALAR:
        vg_buf_putc(b, ' ');
        put_float(b, res->scalar.v);
        vg_buf_putc(b, '\n');
        break;
    case PT_STRING:
        vg_buf_putc(b, ' ');
        put_quoted(b, vg_str_c(res->string));
        vg_buf_putc(b, '\n');
        break;
    default:
        vg_buf_puts(b, res->nseries ? "\n" : " empty result\n");
        for (size_t i = 0; i < res->nseries && i < SHOW_SERIES; i++) {
            const struct promql_series *s = &res->series[i];
            vg_buf_puts(b, "      ");
            put_labels(b, s->labels, s->nlabels);
            for (size_t k = 0; k < s->npoints && k < SHOW_POINTS; k++) {
                vg_buf_putc(b, ' ');
                put_float(b, s->points[k].v);
                if (res->type == PT_MATRIX) {
                    vg_buf_putc(b, '@');
                    put_time(b, s->points[k].t);
                }
            }
            if (s->npoints > SHOW_POINTS)
                vg_buf_printf(b, " ... (%zu points)", s->npoints);
            vg_buf_putc(b, '\n');
        }
        if (res->nseries > SHOW_SERIES)
            vg_buf_printf(b, "      ... (%zu series)\n", res->nseries);
    }
    put_annotations(b, "warning", res->warnings, res->nwarnings);
    put_annotations(b, "info", res->infos, res->ninfos);
}

/* ---- walking the syntax tree ---- */

typedef bool (*visit_fn)(struct promql_node *n, void *ctx); /* false: skip children */

static void walk(struct promql_node *n, visit_fn fn, void *ctx)
{
    if (!n || !fn(n, ctx))
        return;
    switch (n->kind) {
    case PN_MATRIX_SELECTOR:
        walk(n->msel.vs, fn, ctx);
        break;
    case PN_SUBQUERY:
        walk(n->subq.expr, fn, ctx);
        break;
    case PN_CALL:
        for (size_t i = 0; i < n->call.nargs; i++)
            walk(n->call.args[i], fn, ctx);
        break;
    case PN_AGGREGATE:
        walk(n->agg.param, fn, ctx);
        walk(n->agg.expr, fn, ctx);
        break;
    case PN_BINARY:
        walk(n->bin.lhs, fn, ctx);
        walk(n->bin.rhs, fn, ctx);
        break;
    case PN_UNARY:
        walk(n->unary.expr, fn, ctx);
        break;
    case PN_PAREN:
        walk(n->paren.expr, fn, ctx);
        break;
    default:
        break;
    }
}

struct taint_ctx {
    const struct run *r;
    bool hit;
};

static bool selector_hits_taint(struct promql_node *n, void *vctx)
{
    struct taint_ctx *c = vctx;
    if (n->kind != PN_VECTOR_SELECTOR)
        return !c->hit;
    for (size_t t = 0; t < c->r->ntaint && !c->hit; t++) {
        const struct taint *tt = &c->r->taint[t];
        bool all = true;
        for (size_t m = 0; m < n->sel.nms && all; m++) {
            struct vg_str v = labels_get(tt->labels, tt->n, n->sel.ms[m]->name);
            all = matcher_matches(n->sel.ms[m], v.p ? v : VG_STR(""));
        }
        c->hit = all;
    }
    return false;
}

static bool is_ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == ':';
}

/* Whether expr selects a native-histogram series of the current store. */
static bool touches_taint(const struct run *r, const char *expr)
{
    if (r->ntaint == 0)
        return false;
    struct vg_err err = {0};
    struct promql_expr *x = promql_parse(expr, strlen(expr), &err);
    if (!x) {
        /* Unparseable: fall back to looking for the metric names as whole identifiers
         * in the text (so "h" does not taint "h_bucket"). */
        for (size_t t = 0; t < r->ntaint; t++) {
            struct vg_str name = labels_get(r->taint[t].labels, r->taint[t].n, "__name__");
            for (const char *p = expr; name.len && *p; p++) {
                if (strncmp(p, name.p, name.len) == 0 && (p == expr || !is_ident_char(p[-1])) &&
                    !is_ident_char(p[name.len]))
                    return true;
            }
        }
        return false;
    }
    struct taint_ctx c = { r, false };
    walk(x->root, selector_hits_taint, &c);
    promql_expr_free(x);
    return c.hit;
}

struct at_ctx {
    int64_t ts;
    bool unsafe;     /* a function whose value depends on the evaluation time */
    bool start_end;  /* an @ start()/end() left (inside a subquery) */
};

/* The harness's rewrite: `@ ts` on every selector and subquery not already pinned to a
 * timestamp; nothing inside a subquery changes (it gets the @ itself). */
static bool set_at(struct promql_node *n, void *vctx)
{
    struct at_ctx *c = vctx;
    static const char *const unsafe[] = {
        "days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute",
        "month", "year", "predict_linear", "time", "timestamp",
        /* the query's parameters: a shifted evaluation time changes start() and end() */
        "start", "end", "step", "range",
    };
    switch (n->kind) {
    case PN_VECTOR_SELECTOR:
        if (n->sel.at != AT_TIMESTAMP) {
            n->sel.at = AT_TIMESTAMP;
            n->sel.at_ms = c->ts;
        }
        return false;
    case PN_SUBQUERY:
        if (n->subq.at != AT_TIMESTAMP) {
            n->subq.at = AT_TIMESTAMP;
            n->subq.at_ms = c->ts;
        }
        return false;
    case PN_CALL:
        for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++)
            if (strcmp(n->call.fn->name, unsafe[i]) == 0)
                c->unsafe = true;
        return true;
    default:
        return true;
    }
}

static bool find_start_end(struct promql_node *n, void *vctx)
{
    struct at_ctx *c = vctx;
    if (n->kind == PN_VECTOR_SELECTOR && n->sel.at != AT_NONE && n->sel.at != AT_TIMESTAMP)
        c->start_end = true;
    if (n->kind == PN_SUBQUERY && n->subq.at != AT_NONE && n->subq.at != AT_TIMESTAMP)
        c->start_end = true;
    return !c->start_end;
}

/* The harness skips its range-mode check for queries using start(), end(), range() or
 * step(), which resolve differently in a range query. */
static bool uses_query_context(const char *expr)
{
    static const char *const fns[] = { "start()", "end()", "range()", "step()" };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        if (strstr(expr, fns[i]))
            return true;
    return false;
}

/* ---- checks ---- */

static bool expect_matches(const struct tf_expect *x, const char *s)
{
    if (x->msg)
        return strcmp(x->msg, s) == 0;
    if (x->regex)
        return tf_regex_search(x->regex, s) == 1;
    return true;
}

/* An error happened and the case expects one: does it match expect fail msg:/regex:? */
static bool check_failure(const struct tf_eval *e, const char *msg, struct vg_buf *d)
{
    const struct tf_expect *x = tf_eval_fail_expect(e);
    if (!x || expect_matches(x, msg))
        return true;
    vg_buf_printf(d, "    reason: expected error %s \"%s\", but got: %s\n",
                  x->msg ? "message" : "matching", x->msg ? x->msg : x->regex, msg);
    return false;
}

static bool check_annotation_kind(const struct tf_eval *e, enum tf_expect_kind kind,
                                  const char *what, char **actual, size_t nactual,
                                  struct vg_buf *d)
{
    size_t nexp = 0;
    for (size_t i = 0; i < e->nexpects; i++)
        nexp += e->expects[i].kind == kind;
    if (nexp == 0)
        return true;
    if (nactual == 0) {
        vg_buf_printf(d, "    reason: expected %s annotations but none were found\n", what);
        return false;
    }
    for (size_t i = 0; i < e->nexpects; i++) {
        const struct tf_expect *x = &e->expects[i];
        if (x->kind != kind)
            continue;
        bool found = false;
        for (size_t k = 0; k < nactual && !found; k++)
            found = expect_matches(x, actual[k]);
        if (!found) {
            vg_buf_printf(d, "    reason: expected %s annotation %s \"%s\" but none matched\n",
                          what, x->regex ? "matching" : "with message",
                          x->msg ? x->msg : x->regex ? x->regex : "");
            return false;
        }
    }
    for (size_t k = 0; k < nactual; k++) {
        bool found = false;
        for (size_t i = 0; i < e->nexpects && !found; i++)
            found = e->expects[i].kind == kind && expect_matches(&e->expects[i], actual[k]);
        if (!found) {
            vg_buf_printf(d, "    reason: unexpected %s annotation \"%s\"\n", what, actual[k]);
            return false;
        }
    }
    return true;
}

static bool has_expect(const struct tf_eval *e, enum tf_expect_kind kind)
{
    for (size_t i = 0; i < e->nexpects; i++)
        if (e->expects[i].kind == kind)
            return true;
    return false;
}

static bool check_annotations(const struct tf_eval *e, const struct promql_result *res,
                              struct vg_buf *d)
{
    if (e->warn && res->nwarnings == 0) {
        vg_buf_puts(d, "    reason: expected warnings but got none\n");
        return false;
    }
    if (e->info && res->ninfos == 0) {
        vg_buf_puts(d, "    reason: expected info annotations but got none\n");
        return false;
    }
    if (!check_annotation_kind(e, TF_EXPECT_WARN, "warn", res->warnings, res->nwarnings, d) ||
        !check_annotation_kind(e, TF_EXPECT_INFO, "info", res->infos, res->ninfos, d))
        return false;
    if (has_expect(e, TF_EXPECT_NO_WARN) && res->nwarnings) {
        vg_buf_printf(d, "    reason: unexpected warning annotations: %s\n", res->warnings[0]);
        return false;
    }
    if (has_expect(e, TF_EXPECT_NO_INFO) && res->ninfos) {
        vg_buf_printf(d, "    reason: unexpected info annotations: %s\n", res->infos[0]);
        return false;
    }
    return true;
}

static const struct tf_series *find_expected(const struct tf_eval *e, const struct label *ls,
                                             size_t n, size_t *idx)
{
    for (size_t i = 0; i < e->nseries; i++) {
        if (labels_cmp(e->series[i].labels, e->series[i].nlabels, ls, n) == 0) {
            *idx = i;
            return &e->series[i];
        }
    }
    return NULL;
}

static void reason_series(struct vg_buf *d, const char *pre, const struct label *ls, size_t n,
                          const char *post)
{
    vg_buf_printf(d, "    reason: %s", pre);
    put_labels(d, ls, n);
    vg_buf_printf(d, "%s\n", post);
}

static bool compare_matrix_series(const struct tf_series *exp, const struct promql_series *s,
                                  struct grid g, struct vg_buf *d)
{
    size_t nexp = 0;
    for (size_t i = 0; i < exp->nvals; i++) {
        int64_t ts = g.start + (int64_t)i * g.step;
        if (ts > g.end) {
            reason_series(d, "", s->labels, s->nlabels, "");
            vg_buf_printf(d, "    reason: expected %zu points for the series above, but the "
                             "query time range cannot return this many points\n", exp->nvals);
            return false;
        }
        if (exp->vals[i].omitted)
            continue;
        if (nexp < s->npoints) {
            const struct promql_point *p = &s->points[nexp];
            if (p->t != ts) {
                reason_series(d, "timestamps differ for ", s->labels, s->nlabels, "");
                vg_buf_printf(d, "    reason: point %zu should be at %lld but is at %lld\n", nexp,
                              (long long)ts, (long long)p->t);
                return false;
            }
            if (!tf_float_equal(exp->vals[i].v, p->v)) {
                reason_series(d, "values differ for ", s->labels, s->nlabels, "");
                vg_buf_puts(d, "    reason: at t=");
                put_time(d, ts);
                vg_buf_puts(d, " expected ");
                put_float(d, exp->vals[i].v);
                vg_buf_puts(d, " but got ");
                put_float(d, p->v);
                vg_buf_putc(d, '\n');
                return false;
            }
        }
        nexp++;
    }
    if (nexp != s->npoints) {
        reason_series(d, "", s->labels, s->nlabels, "");
        vg_buf_printf(d, "    reason: expected %zu points for the series above, but got %zu\n",
                      nexp, s->npoints);
        return false;
    }
    return true;
}

/* Compares res with what e expects; matrix points lie on g. */
static bool compare_result(const struct tf_eval *e, const struct promql_result *res, struct grid g,
                           struct vg_buf *d)
{
    bool ordered = tf_eval_is_ordered(e);
    switch (res->type) {
    case PT_SCALAR:
        if (!e->expect_scalar) {
            vg_buf_puts(d, "    reason: expected vector or matrix result, but got a scalar\n");
            return false;
        }
        if (!tf_float_equal(e->scalar, res->scalar.v)) {
            vg_buf_puts(d, "    reason: expected scalar ");
            put_float(d, e->scalar);
            vg_buf_puts(d, " but got ");
            put_float(d, res->scalar.v);
            vg_buf_putc(d, '\n');
            return false;
        }
        return true;
    case PT_STRING: {
        const char *want = e->expect_string ? e->string : "";
        size_t wlen = e->expect_string ? e->string_len : 0;
        const char *got = res->string ? res->string : "";
        if (wlen != strlen(got) || memcmp(want, got, wlen) != 0) {
            vg_buf_puts(d, "    reason: the strings differ\n");
            return false;
        }
        return true;
    }
    case PT_VECTOR:
    case PT_MATRIX:
        break;
    default:
        vg_buf_printf(d, "    reason: unexpected result type %d\n", (int)res->type);
        return false;
    }
    if (e->expect_scalar) {
        vg_buf_printf(d, "    reason: expected scalar result, but got %s\n",
                      promql_type_name(res->type));
        return false;
    }
    if (res->type == PT_MATRIX) {
        if (ordered) {
            vg_buf_puts(d, "    reason: expected ordered result, but query returned a matrix\n");
            return false;
        }
        for (size_t i = 1; i < res->nseries; i++) {
            const struct promql_series *a = &res->series[i - 1], *b = &res->series[i];
            if (labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels) > 0) {
                vg_buf_printf(d, "    reason: matrix results should always be sorted by labels, "
                                 "but series %zu sorts before series %zu\n", i, i - 1);
                return false;
            }
        }
    }
    bool *seen = vg_calloc(e->nseries ? e->nseries : 1, sizeof *seen);
    bool ok = seen != NULL;
    if (!ok)
        vg_buf_puts(d, "    reason: out of memory\n");
    for (size_t i = 0; ok && i < res->nseries; i++) {
        const struct promql_series *s = &res->series[i];
        size_t idx = 0;
        const struct tf_series *exp = find_expected(e, s->labels, s->nlabels, &idx);
        if (!exp) {
            reason_series(d, "unexpected metric ", s->labels, s->nlabels, " in result");
            ok = false;
        } else if (seen[idx]) {
            reason_series(d, "series ", s->labels, s->nlabels, " appears twice in the result");
            ok = false;
        } else if (res->type == PT_MATRIX) {
            ok = compare_matrix_series(exp, s, g, d);
        } else if (ordered && idx != i) {
            reason_series(d, "expected ", s->labels, s->nlabels, "");
            vg_buf_printf(d, "    reason: at position %zu but it was at %zu\n", idx + 1, i + 1);
            ok = false;
        } else if (s->npoints != 1) {
            reason_series(d, "", s->labels, s->nlabels, "");
            vg_buf_printf(d, "    reason: a vector element should have one point, has %zu\n",
                          s->npoints);
            ok = false;
        } else {
            double want = exp->vals[0].omitted ? 0 : exp->vals[0].v;
            if (!tf_float_equal(want, s->points[0].v)) {
                reason_series(d, "values differ for ", s->labels, s->nlabels, "");
                vg_buf_puts(d, "    reason: expected ");
                put_float(d, want);
                vg_buf_puts(d, " but got ");
                put_float(d, s->points[0].v);
                vg_buf_putc(d, '\n');
                ok = false;
            }
        }
        if (ok)
            seen[idx] = true;
    }
    for (size_t i = 0; ok && i < e->nseries; i++) {
        if (!seen[i]) {
            reason_series(d, "expected metric ", e->series[i].labels, e->series[i].nlabels,
                          " not found");
            ok = false;
        }
    }
    vg_free(seen);
    return ok;
}

/* The harness's range-mode check: the query from t-1m to t+1m step 1m must hold, at t,
 * what the instant query gave (compared against the same expectations). */
static bool check_range_mode(const struct run *r, const struct tf_eval *e,
                             const struct promql_expr *x, const struct promql_result *inst,
                             int64_t t, struct vg_buf *d)
{
    struct promql_result *rr = NULL;
    struct vg_err err = {0};
    if (promql_eval_range(&r->o->engine, (struct querier *)&r->q, x, t - MINUTE_MS,
                          t + MINUTE_MS, MINUTE_MS, &rr, &err) != 0) {
        vg_buf_printf(d, "    reason: range mode (t-1m to t+1m step 1m): error: %s\n", err.msg);
        promql_result_free(rr);
        return false;
    }
    if (tf_eval_is_ordered(e)) {
        promql_result_free(rr);
        return true; /* range results are always sorted by labels */
    }
    bool ok = true;
    struct promql_result v = { .type = inst->type == PT_SCALAR ? PT_SCALAR : PT_VECTOR };
    struct promql_series *vs = NULL;
    if (rr->type != PT_MATRIX) {
        vg_buf_printf(d, "    reason: range mode: the range query returned a %s\n",
                      promql_type_name(rr->type));
        ok = false;
    } else {
        vs = vg_calloc(rr->nseries ? rr->nseries : 1, sizeof *vs);
        ok = vs != NULL;
    }
    for (size_t i = 0; ok && i < rr->nseries; i++) {
        const struct promql_series *s = &rr->series[i];
        if (i > 0 && labels_cmp(s[-1].labels, s[-1].nlabels, s->labels, s->nlabels) > 0) {
            vg_buf_puts(d, "    reason: range mode: matrix not sorted by labels\n");
            ok = false;
        }
        for (size_t k = 0; k < s->npoints; k++) {
            if (s->points[k].t == t) {
                vs[v.nseries] = (struct promql_series){ s->labels, s->nlabels,
                                                        &s->points[k], 1 };
                v.nseries++;
                break;
            }
        }
    }
    if (ok && v.type == PT_SCALAR) {
        if (v.nseries == 0) {
            vg_buf_puts(d, "    reason: range mode: no point at t for a scalar query\n");
            ok = false;
        } else {
            v.scalar = vs[0].points[0];
        }
    } else {
        v.series = vs;
    }
    if (ok && !compare_result(e, &v, (struct grid){ t, INT64_MIN, 0 }, d)) {
        vg_buf_puts(d, "    (in range mode: t-1m to t+1m step 1m, the points at t)\n");
        v.series = vs;
        v.type = PT_VECTOR;
        put_expected(d, e);
        put_actual(d, &v);
        ok = false;
    }
    vg_free(vs);
    promql_result_free(rr);
    return ok;
}

/* What every evaluation is checked for: the error an eval_fail / expect fail case wants,
 * or annotations and result against the expectations (matrix points on g). */
static bool check_outcome(const struct tf_eval *e, int rc, const struct vg_err *err,
                          const struct promql_result *res, struct grid g, struct vg_buf *d)
{
    if (rc != 0) {
        if (tf_eval_is_fail(e))
            return check_failure(e, err->msg, d);
        vg_buf_printf(d, "    reason: error evaluating the query: %s\n", err->msg);
        put_expected(d, e);
        return false;
    }
    bool ok;
    if (tf_eval_is_fail(e)) {
        vg_buf_puts(d, "    reason: expected an error but the query succeeded\n");
        ok = false;
    } else {
        ok = check_annotations(e, res, d) && compare_result(e, res, g, d);
    }
    if (!ok) {
        put_expected(d, e);
        put_actual(d, res);
    }
    return ok;
}

/* One instant evaluation of x at t with every check of the harness. */
static bool check_instant(const struct run *r, const struct tf_eval *e,
                          const struct promql_expr *x, int64_t t, bool range_mode,
                          struct vg_buf *d)
{
    struct promql_result *res = NULL;
    struct vg_err err = {0};
    int rc = promql_eval_instant(&r->o->engine, (struct querier *)&r->q, x, t, &res, &err);
    struct grid g = { t, INT64_MIN, 0 }; /* an instant query has no grid... */
    if (e->expect_range_vector)          /* ...unless the case gives one */
        g = (struct grid){ e->start_ms, e->end_ms, e->step_ms };
    bool ok = check_outcome(e, rc, &err, res, g, d);
    if (ok && rc == 0 && range_mode && r->o->range_mode && !e->expect_range_vector &&
        !e->expect_string)
        ok = check_range_mode(r, e, x, res, t, d);
    promql_result_free(res);
    return ok;
}

static bool check_range(const struct run *r, const struct tf_eval *e,
                        const struct promql_expr *x, struct vg_buf *d)
{
    struct promql_result *res = NULL;
    struct vg_err err = {0};
    int rc = promql_eval_range(&r->o->engine, (struct querier *)&r->q, x, e->start_ms,
                               e->end_ms, e->step_ms, &res, &err);
    bool ok = check_outcome(e, rc, &err, res, (struct grid){ e->start_ms, e->end_ms,
                                                             e->step_ms }, d);
    promql_result_free(res);
    return ok;
}

static bool check_eval(const struct run *r, const struct tf_eval *e, struct vg_buf *d)
{
    struct vg_err err = {0};
    struct promql_expr *x = promql_parse(e->expr, strlen(e->expr), &err);
    if (!x) {
        if (tf_eval_is_fail(e))
            return check_failure(e, err.msg, d);
        vg_buf_printf(d, "    reason: parse error: %s\n", err.msg);
        return false;
    }
    if (e->range) {
        bool ok = check_range(r, e, x, d);
        promql_expr_free(x);
        return ok;
    }
    int64_t t = e->at_ms;
    bool ok = check_instant(r, e, x, t, !uses_query_context(e->expr), d);
    if (ok && r->o->at_variants) {
        struct at_ctx c = { .ts = t };
        walk(x->root, set_at, &c);
        walk(x->root, find_start_end, &c);
        int64_t times[5] = { -10 * t, 0, t / 5, t, 10 * t };
        size_t ntimes = 5;
        if (t == 0) {
            times[0] = -1000, times[1] = 0, times[2] = 1000;
            ntimes = 3;
        }
        bool range_mode = !c.start_end && !strstr(e->expr, "range()") && !strstr(e->expr, "step()");
        for (size_t i = 0; ok && !c.unsafe && i < ntimes; i++) {
            ok = check_instant(r, e, x, times[i], range_mode, d);
            if (!ok) {
                vg_buf_puts(d, "    (in the @-modifier variant: every selector and subquery "
                               "@ ");
                put_time(d, t);
                vg_buf_puts(d, ", evaluated at t=");
                put_time(d, times[i]);
                vg_buf_puts(d, ")\n");
            }
        }
    }
    promql_expr_free(x);
    return ok;
}

/* ---- commands ---- */

static bool taint_add(struct run *r, const struct label *ls, size_t n)
{
    if (r->ntaint == r->cap_taint) {
        size_t ncap = r->cap_taint ? r->cap_taint * 2 : 16;
        struct taint *nt = vg_realloc(r->taint, ncap * sizeof *nt);
        if (!nt)
            return false;
        r->taint = nt;
        r->cap_taint = ncap;
    }
    r->taint[r->ntaint++] = (struct taint){ ls, n };
    return true;
}

static bool has_suffix(struct vg_str s, const char *suf)
{
    size_t n = strlen(suf);
    return s.len > n && memcmp(s.p + s.len - n, suf, n) == 0;
}

/* load_with_nhcb: the native series Prometheus derives from a classic histogram series
 * (name without _bucket/_count/_sum, no le label) is marked as native. */
static bool taint_nhcb(struct run *r, const struct tf_series *s)
{
    struct vg_str name = labels_get(s->labels, s->nlabels, "__name__");
    const char *suffixes[] = { "_bucket", "_count", "_sum" };
    size_t k;
    for (k = 0; k < 3; k++)
        if (has_suffix(name, suffixes[k]))
            break;
    if (k == 3)
        return true;
    if (k == 0) {
        struct vg_str le = labels_get(s->labels, s->nlabels, "le");
        char buf[64];
        if (!le.p || le.len >= sizeof buf)
            return true;
        memcpy(buf, le.p, le.len);
        buf[le.len] = 0;
        double v;
        if (!tf_parse_number(buf, le.len, &v) || isnan(v))
            return true;
    }
    struct label *ls = vg_arena_alloc(r->arena, s->nlabels * sizeof *ls);
    if (!ls)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (vg_str_eq_c(s->labels[i].name, "le"))
            continue;
        ls[n] = s->labels[i];
        if (vg_str_eq_c(ls[n].name, "__name__"))
            ls[n].value.len = name.len - strlen(suffixes[k]);
        n++;
    }
    return taint_add(r, ls, n);
}

/* Appends a load as one batch; returns false with d filled when it fails. */
static bool run_load(struct run *r, const struct tf_load *ld, struct vg_buf *d)
{
    size_t total = 0;
    for (size_t i = 0; i < ld->nseries; i++)
        total += ld->series[i].nvals;
    struct tsdb_series_in *in = vg_calloc(ld->nseries ? ld->nseries : 1, sizeof *in);
    struct tsdb_sample *smp = vg_malloc((total ? total : 1) * sizeof *smp);
    bool ok = in && smp;
    size_t nin = 0, ns = 0;
    for (size_t i = 0; ok && i < ld->nseries; i++) {
        const struct tf_series *s = &ld->series[i];
        if (s->has_histogram) {
            ok = taint_add(r, s->labels, s->nlabels);
            continue;
        }
        if (ld->nhcb && !taint_nhcb(r, s)) {
            ok = false;
            break;
        }
        size_t first = ns;
        for (size_t k = 0; k < s->nvals; k++)
            if (!s->vals[k].omitted)
                smp[ns++] = (struct tsdb_sample){ (int64_t)k * ld->step_ms, s->vals[k].v };
        if (ns == first)
            continue;
        in[nin++] = (struct tsdb_series_in){ .labels = s->labels, .nlabels = s->nlabels,
                                             .samples = smp + first, .nsamples = ns - first };
    }
    if (!ok)
        vg_buf_puts(d, "    reason: out of memory loading samples\n");
    struct tsdb_append_result res = {0};
    struct vg_err err = {0};
    if (ok && nin) {
        struct tsdb_batch b = { .series = in, .nseries = nin };
        if (tsdb_append(r->db, &b, &res, &err) != 0) {
            vg_buf_printf(d, "    reason: tsdb_append failed: %s\n", err.msg);
            ok = false;
        } else if (res.rejected[TSDB_REJECT_TOO_OLD] || res.rejected[TSDB_REJECT_DUPLICATE]) {
            vg_buf_printf(d, "    reason: the TSDB rejected %llu samples: %s\n",
                          (unsigned long long)res.rejected[TSDB_REJECT_TOO_OLD] +
                              (unsigned long long)res.rejected[TSDB_REJECT_DUPLICATE],
                          res.first_reject);
            ok = false;
        } else if (r->o->compact && tsdb_compact(r->db, &err) != 0) {
            vg_buf_printf(d, "    reason: tsdb_compact failed: %s\n", err.msg);
            ok = false;
        }
    }
    vg_free(in);
    vg_free(smp);
    return ok;
}

void runner_describe(const struct tf_cmd *cmd, struct vg_buf *d)
{
    if (cmd->kind == TF_LOAD) {
        vg_buf_puts(d, "load\n");
        return;
    }
    const struct tf_eval *e = &cmd->eval;
    if (cmd->error)
        vg_buf_printf(d, "%s\n", e->expr ? e->expr : "");
    else if (e->range) {
        vg_buf_puts(d, "eval range from ");
        put_time(d, e->start_ms);
        vg_buf_puts(d, " to ");
        put_time(d, e->end_ms);
        vg_buf_puts(d, " step ");
        put_time(d, e->step_ms);
        vg_buf_printf(d, " %s\n", e->expr);
    } else {
        vg_buf_puts(d, "eval instant at ");
        put_time(d, e->at_ms);
        vg_buf_printf(d, " %s\n", e->expr);
    }
}

int runner_run_file(const struct tf_file *f, const struct runner_opts *o,
                    runner_start_fn start, runner_report_fn report, void *ctx,
                    struct vg_err *err)
{
    struct run r = { .o = o };
    r.arena = vg_arena_new((size_t)16 * 1024);
    if (!r.arena)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = open_db(&r, err);
    struct vg_buf d;
    vg_buf_init(&d);
    for (size_t i = 0; rc == 0 && i < f->ncmds; i++) {
        const struct tf_cmd *cmd = &f->cmds[i];
        if (cmd->kind == TF_CLEAR) {
            close_db(&r);
            rc = open_db(&r, err);
            continue;
        }
        bool selected = !o->only_line || o->only_line == cmd->line;
        if (cmd->kind == TF_EVAL && !selected)
            continue;
        vg_buf_reset(&d);
        runner_describe(cmd, &d);
        if (start && runner_is_case(cmd))
            start(ctx, cmd->line);
        if (o->case_timeout_s > 0)
            alarm((unsigned)o->case_timeout_s);
        enum case_status st;
        if (cmd->error) {
            vg_buf_printf(&d, "    reason: malformed command: %s\n", cmd->error);
            st = CASE_FAIL;
        } else if (cmd->kind == TF_LOAD) {
            st = run_load(&r, &cmd->load, &d) ? CASE_PASS : CASE_FAIL;
            if (st == CASE_PASS) {
                alarm(0);
                continue; /* a load that worked is not a case */
            }
        } else if (cmd->eval.has_histogram) {
            vg_buf_puts(&d, "    unsupported: expects native histogram values\n");
            st = CASE_UNSUPPORTED;
        } else if (touches_taint(&r, cmd->eval.expr)) {
            vg_buf_puts(&d, "    unsupported: selects native histogram series\n");
            st = CASE_UNSUPPORTED;
        } else {
            st = check_eval(&r, &cmd->eval, &d) ? CASE_PASS : CASE_FAIL;
        }
        alarm(0);
        report(ctx, cmd->line, st, st == CASE_PASS ? NULL : vg_buf_cstr(&d));
    }
    close_db(&r);
    vg_buf_free(&d);
    vg_free(r.taint);
    vg_arena_free(r.arena);
    return rc;
}
