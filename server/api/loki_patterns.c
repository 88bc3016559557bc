/* loki_patterns: see loki_patterns.h.
 *
 * Memory: a cluster owns copies of its constant tokens (NULL stands for <_>) and the
 * times of its lines; everything is freed by loki_drain_free. The handler bounds the
 * work: at most LOKI_PATTERNS_MAX_LINES lines, LOKI_PATTERNS_MAX_CLUSTERS clusters of
 * LOKI_PATTERNS_MAX_TOKENS tokens, each line compared with the clusters of its length. */
#include "loki_patterns.h"

#include "../../storage/base/vg_alloc.h"
#include "../logql/engine.h"
#include "loki.h"
#include "prometheus.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define VAR "<_>"

struct cluster {
    char **tok; /* ntok tokens, NULL = variable */
    bool *glued; /* no space after token i (the "key=" half of key=value) */
    size_t ntok;
    int64_t *t; /* times of its lines */
    size_t n, cap;
};

struct loki_drain {
    struct cluster *c;
    size_t n, cap;
};

struct loki_drain *loki_drain_new(void)
{
    return vg_calloc(1, sizeof(struct loki_drain));
}

static void cluster_free(struct cluster *c)
{
    for (size_t i = 0; c->tok && i < c->ntok; i++)
        vg_free(c->tok[i]);
    vg_free(c->tok);
    vg_free(c->glued);
    vg_free(c->t);
}

void loki_drain_free(struct loki_drain *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++)
        cluster_free(&d->c[i]);
    vg_free(d->c);
    vg_free(d);
}

struct token {
    struct vg_str s; /* s.p NULL: variable */
    bool glued;
};

static void push_token(struct token *out, size_t *n, const char *p, size_t len, bool glued)
{
    bool digit = false;
    for (size_t i = 0; i < len; i++)
        digit |= isdigit((unsigned char)p[i]) != 0;
    out[(*n)++] = (struct token){ { digit ? NULL : p, len }, glued };
}

/* Splits line at blanks into at most LOKI_PATTERNS_MAX_TOKENS tokens, and a key=value
 * token (logfmt) into "key=" glued to "value", so keys stay while values vary; a token
 * holding a digit is variable. Returns the count. */
static size_t tokenize(struct vg_str line, struct token *out)
{
    size_t n = 0, i = 0;
    while (i < line.len && n + 1 < LOKI_PATTERNS_MAX_TOKENS) {
        while (i < line.len && (line.p[i] == ' ' || line.p[i] == '\t'))
            i++;
        size_t s = i, eq = 0;
        while (i < line.len && line.p[i] != ' ' && line.p[i] != '\t') {
            if (line.p[i] == '=' && !eq && i > s)
                eq = i + 1;
            i++;
        }
        if (i == s)
            break;
        if (eq && eq < i) {
            push_token(out, &n, line.p + s, eq - s, true);
            push_token(out, &n, line.p + eq, i - eq, false);
        } else {
            push_token(out, &n, line.p + s, i - s, false);
        }
    }
    return n;
}

static bool tok_eq(const char *c, struct token t)
{
    return c && t.s.p && strlen(c) == t.s.len && memcmp(c, t.s.p, t.s.len) == 0;
}

/* Share of positions where the cluster takes the token as it is. */
static double similarity(const struct cluster *c, const struct token *t, size_t n)
{
    if (n && c->tok[0] && t[0].s.p && !tok_eq(c->tok[0], t[0]))
        return -1; /* Drain's first-token rule: different leading words never merge */
    size_t same = 0;
    for (size_t i = 0; i < n; i++)
        same += !c->tok[i] || tok_eq(c->tok[i], t[i]);
    return n ? (double)same / (double)n : 1;
}

static int cluster_add_time(struct cluster *c, int64_t t)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        int64_t *nt = vg_realloc(c->t, cap * sizeof *nt);
        if (!nt)
            return VG_ENOMEM;
        c->t = nt;
        c->cap = cap;
    }
    c->t[c->n++] = t;
    return 0;
}

static int cluster_new(struct loki_drain *d, const struct token *t, size_t n)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct cluster *nc = vg_realloc(d->c, cap * sizeof *nc);
        if (!nc)
            return VG_ENOMEM;
        d->c = nc;
        d->cap = cap;
    }
    struct cluster *c = &d->c[d->n];
    *c = (struct cluster){ .tok = vg_calloc(n ? n : 1, sizeof *c->tok),
                           .glued = vg_calloc(n ? n : 1, sizeof *c->glued), .ntok = n };
    d->n++; /* from here cluster_free releases whatever was allocated */
    if (!c->tok || !c->glued)
        return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        c->glued[i] = t[i].glued;
        if (t[i].s.p && !(c->tok[i] = vg_strndup(t[i].s.p, t[i].s.len)))
            return VG_ENOMEM;
    }
    return 0;
}

int loki_drain_add(struct loki_drain *d, struct vg_str line, int64_t t_ns)
{
    struct token t[LOKI_PATTERNS_MAX_TOKENS];
    size_t n = tokenize(line, t);
    struct cluster *best = NULL;
    double best_sim = LOKI_PATTERNS_MIN_SIMILARITY;
    for (size_t i = 0; i < d->n; i++) {
        if (d->c[i].ntok != n)
            continue;
        double s = similarity(&d->c[i], t, n);
        if (s >= best_sim && (!best || s > best_sim)) {
            best = &d->c[i];
            best_sim = s;
        }
    }
    if (best) {
        for (size_t i = 0; i < n; i++)
            if (best->tok[i] && !tok_eq(best->tok[i], t[i])) {
                vg_free(best->tok[i]);
                best->tok[i] = NULL;
            }
        return cluster_add_time(best, t_ns);
    }
    if (d->n >= LOKI_PATTERNS_MAX_CLUSTERS)
        return 0;
    int rc = cluster_new(d, t, n);
    return rc < 0 ? rc : cluster_add_time(&d->c[d->n - 1], t_ns);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_cluster_size(const void *a, const void *b)
{
    const struct cluster *x = *(const struct cluster *const *)a;
    const struct cluster *y = *(const struct cluster *const *)b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return (x > y) - (x < y); /* first found first */
}

static void json_pattern(struct vg_buf *b, const struct cluster *c)
{
    struct vg_buf p;
    vg_buf_init(&p);
    for (size_t i = 0; i < c->ntok; i++) {
        if (!c->tok[i] && i && !c->tok[i - 1] && !c->glued[i - 1])
            continue; /* a run of variables reads as one */
        if (p.len && !(i && c->glued[i - 1]))
            vg_buf_putc(&p, ' ');
        vg_buf_puts(&p, c->tok[i] ? c->tok[i] : VAR);
    }
    vg_buf_json_str(b, p.p ? p.p : "", p.len);
    if (vg_buf_failed(&p))
        b->failed = true;
    vg_buf_free(&p);
}

void loki_drain_json(struct loki_drain *d, int64_t step_ns, struct vg_buf *out)
{
    const struct cluster **order = vg_malloc((d->n ? d->n : 1) * sizeof *order);
    if (!order) {
        out->failed = true;
        return;
    }
    for (size_t i = 0; i < d->n; i++)
        order[i] = &d->c[i];
    qsort(order, d->n, sizeof *order, cmp_cluster_size);
    vg_buf_putc(out, '[');
    for (size_t i = 0; i < d->n; i++) {
        struct cluster *c = (struct cluster *)order[i];
        vg_buf_puts(out, i ? ",{\"pattern\":" : "{\"pattern\":");
        json_pattern(out, c);
        vg_buf_puts(out, ",\"samples\":[");
        if (c->n > 1)
            qsort(c->t, c->n, sizeof *c->t, cmp_i64);
        for (size_t k = 0, w = 0; k < c->n;) {
            int64_t bucket = c->t[k] - ((c->t[k] % step_ns) + step_ns) % step_ns;
            size_t cnt = 0;
            while (k < c->n && c->t[k] - bucket < step_ns)
                k++, cnt++;
            vg_buf_printf(out, "%s[%lld,%zu]", w++ ? "," : "",
                          (long long)(bucket / 1000000000LL), cnt);
        }
        vg_buf_puts(out, "]}");
    }
    vg_buf_putc(out, ']');
    vg_free(order);
}

/* ---- the handler ---- */

static int pattern_params(const struct http_request *req, struct logql_params *p,
                          struct vg_err *err)
{
    memset(p, 0, sizeof *p);
    p->backward = true;
    p->limit = LOKI_PATTERNS_MAX_LINES;
    if (loki_bounds(req, loki_now_ns(), &p->start_ns, &p->end_ns, err) < 0)
        return VG_EINVAL;
    if (p->end_ns < p->start_ns)
        return vg_err_set(err, VG_EINVAL, LOKI_END_BEFORE_START);
    const char *s = http_arg_get(req, "step");
    p->step_ns = loki_default_step(p->start_ns, p->end_ns);
    if (s && *s && loki_parse_duration(s, &p->step_ns, err) < 0)
        return VG_EINVAL;
    if (p->step_ns <= 0)
        return vg_err_set(err, VG_EINVAL, "zero or negative query resolution step widths are "
                                          "not accepted. Try a positive integer");
    return 0;
}

void loki_patterns(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct logql_params p;
    struct logql_expr *e = NULL;
    struct logql_result *r = NULL;
    struct loki_drain *d = loki_drain_new();
    const char *q = http_arg_get(req, "query");
    int rc = d ? pattern_params(req, &p, &err) : vg_err_set(&err, VG_ENOMEM, "out of memory");
    if (rc == 0)
        rc = loki_selector(q ? q : "", &e, &err);
    if (rc == 0 && !e)
        rc = vg_err_set(&err, VG_EINVAL, LOKI_NEED_MATCHER);
    if (rc == 0) {
        struct logql_limits lim;
        loki_limits(v, &lim);
        rc = logql_exec(v->logs, e, &p, &lim, &r, &err);
    }
    for (size_t i = 0; rc == 0 && r && i < r->nstreams; i++)
        for (size_t k = 0; rc == 0 && k < r->streams[i].nentries; k++)
            if (loki_drain_add(d, r->streams[i].entries[k].line, r->streams[i].entries[k].t) < 0)
                rc = vg_err_set(&err, VG_ENOMEM, "out of memory clustering lines");
    struct vg_buf b;
    vg_buf_init(&b);
    if (rc == 0) {
        prometheus_json_begin(&b);
        loki_drain_json(d, p.step_ns, &b);
        vg_buf_putc(&b, '}');
    }
    logql_result_free(r);
    logql_expr_free(e);
    loki_drain_free(d);
    loki_finish(resp, rc, &err, &b);
}
