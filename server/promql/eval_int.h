/* eval_int: the evaluator's private types, shared by engine.c, eval.c, binop.c,
 * aggregate.c and funcs.c. Nothing here is part of the engine's API.
 *
 * Model (Prometheus's rangeEval): every node is evaluated once over the whole list of
 * steps t_k = start + k * step (an instant query is one step) and yields an ev_val:
 *   scalar  v[k] for every step;
 *   vector  n series, each with labels and a dense row of nsteps values plus a
 *           presence byte per step (v[i * nsteps + k], ok[i * nsteps + k]);
 *   string  the literal;
 *   matrix  only for a range vector at the top of an instant query (ev_range).
 * Range vectors (matrix selectors, subqueries) reach functions as an ev_range: per
 * series a sorted sample array without staleness markers, and the rule giving the
 * window (end - range, end] for each step. Parents consume children step by step and
 * build their own rows, so no per-sample allocation happens in the loops.
 *
 * Memory: label arrays live in the query arena (or borrow the querier's sets, which
 * stay alive until the query ends); value rows are vg_malloc'ed and freed as soon as
 * the parent has consumed them. Points held in values count against max_samples.
 *
 * Errors: functions return NULL or a negative vg_code after filling ev->err. */
#ifndef PROMQL_EVAL_INT_H
#define PROMQL_EVAL_INT_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "ast.h"
#include "engine.h"
#include "functions.h"
#include "querier.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev {
    const struct promql_opts *o;
    struct querier *q;
    struct vg_arena *arena;
    struct vg_err *err;
    int64_t qstart, qend; /* the query's start and end: @ start() / @ end() */
    int64_t qstep;        /* the range query's step (0 for an instant query): step() */
    int64_t deadline_ns;  /* CLOCK_MONOTONIC; 0 = no timeout */
    unsigned tick;
    uint64_t loaded; /* samples handed out by the querier */
    uint64_t live;   /* points held in evaluated values and ranges */
    bool delayed;    /* delayed __name__ removal (Prometheus's feature flag) */
    bool range;      /* a range query (sort functions warn) */
    struct querier_set **sets;
    size_t nsets, capsets;
    char **warn, **info;
    size_t nwarn, ninfo, capwarn, capinfo;
};

/* Evaluation times: t_k = start + k * step, k < n. */
struct ev_steps {
    int64_t start, step;
    size_t n;
};

static inline int64_t ev_t(const struct ev_steps *st, size_t k)
{
    return st->start + (int64_t)k * st->step;
}

struct ev_series {
    const struct label *ls;
    size_t nls;
    bool drop_name; /* delayed removal: __name__ goes at the end */
};

struct ev_range;

struct ev_val {
    enum promql_type type;
    size_t nsteps;
    size_t n, cap;
    struct ev_series *s;
    double *v;   /* scalar: nsteps values; vector: cap * nsteps */
    uint8_t *ok; /* vector presence */
    const char *str; /* PT_STRING */
    size_t slen;
    struct ev_range *rng; /* PT_MATRIX */
    uint64_t counted;     /* points added to ev->live */
};

static inline double *ev_row(const struct ev_val *v, size_t i)
{
    return v->v + i * v->nsteps;
}
static inline uint8_t *ev_okrow(const struct ev_val *v, size_t i)
{
    return v->ok + i * v->nsteps;
}

struct ev_rser {
    const struct label *ls;
    size_t nls;
    bool drop_name;
    const struct tsdb_sample *s;
    size_t n;
};

/* A range vector: windows (end - range, end] where end = at-or-t minus offset. */
struct ev_range {
    struct ev_rser *v;
    size_t n;
    int64_t range, offset;
    enum promql_at at;
    int64_t at_ms;
    void *mem; /* vg_malloc'ed samples owned by the range (or NULL) */
    uint64_t counted;
};

/* ---- eval.c ---- */
struct ev_val *ev_eval(struct ev *ev, const struct promql_node *n, const struct ev_steps *st);
struct ev_range *ev_eval_range(struct ev *ev, const struct promql_node *n,
                               const struct ev_steps *st);
void ev_val_free(struct ev *ev, struct ev_val *v);
void ev_range_free(struct ev *ev, struct ev_range *r);
const struct promql_node *ev_unparen(const struct promql_node *n);
/* Time of the selector/subquery at step time t (@ pins, offset shifts back). */
int64_t ev_at(const struct ev *ev, enum promql_at at, int64_t at_ms, int64_t offset, int64_t t);
/* Periodic deadline check: VG_EOVERLOAD once the timeout has passed. */
int ev_check(struct ev *ev);
int ev_nomem(struct ev *ev);
int ev_fail(struct ev *ev, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int ev_annotate(struct ev *ev, bool warning, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* v as Go's %g prints it ("NaN", "+Inf", "1.5", "1e+21"); buf holds 32 bytes. */
const char *ev_g(double v, char *buf);
/* The warning for a quantile outside [0, 1] (quantile, quantile_over_time,
 * histogram_quantile). */
int ev_warn_quantile(struct ev *ev, double q);
/* Adds/removes a value's present points to/from ev->live, enforcing max_samples. */
int ev_account(struct ev *ev, struct ev_val *v);

/* Values. */
struct ev_val *ev_val_new(struct ev *ev, enum promql_type t, size_t nsteps);
struct ev_val *ev_scalar_new(struct ev *ev, size_t nsteps, double fill);
/* Appends a series (no points yet); returns its index or a negative code. */
long ev_val_add(struct ev *ev, struct ev_val *v, const struct label *ls, size_t nls,
                bool drop_name);
/* Removes series without any point (keeps order). */
void ev_val_compact(struct ev_val *v);

/* Output builder: series identified by their labels (64-bit hash, as Prometheus). */
struct ev_build {
    struct ev_val *val;
    uint64_t *keys;
    uint32_t *slots;
    size_t nslots;
};
int ev_build_init(struct ev *ev, struct ev_build *b, size_t nsteps, size_t hint);
long ev_build_series(struct ev *ev, struct ev_build *b, const struct label *ls, size_t nls,
                     bool drop_name);
/* Sets point k of series i; VG_ECONFLICT when it is already set at k. */
int ev_build_set(struct ev *ev, struct ev_build *b, size_t i, size_t k, double v);
/* Sets point k of series s, adding s on first use (*o caches its index; start at -1). */
int ev_build_put(struct ev *ev, struct ev_build *b, long *o, const struct ev_series *s, size_t k,
                 double v);
/* Adds series s with every point of row i of in. */
int ev_build_copy(struct ev *ev, struct ev_build *b, const struct ev_series *s,
                  const struct ev_val *in, size_t i);
struct ev_val *ev_build_done(struct ev *ev, struct ev_build *b);
void ev_build_abort(struct ev *ev, struct ev_build *b);
int ev_dup_labelset(struct ev *ev);

/* Hashing (xxHash64, as Prometheus's labels.Hash: name 0xff value 0xff ...). */
uint64_t ev_labels_hash(const struct label *ls, size_t n);
/* Hash of the labels named in names (on = true) or of all but those and __name__. */
uint64_t ev_sig_hash(const struct label *ls, size_t n, const struct promql_strings *names,
                     bool on);
/* Map from 64-bit keys to indexes (open addressing). */
struct ev_map {
    uint64_t *keys;
    uint32_t *vals; /* index + 1; 0 = empty */
    size_t cap, n;
};
int ev_map_init(struct ev *ev, struct ev_map *m, size_t hint);
/* Looks key up; when absent and add, inserts idx. Returns the stored index, -1 when
 * absent and !add, or a negative code below -1 on allocation failure (VG_ENOMEM - 1). */
long ev_map_get(struct ev *ev, struct ev_map *m, uint64_t key, size_t idx, bool add);
void ev_map_free(struct ev_map *m);

/* Prometheus 3's label-name rule: non-empty valid UTF-8. */
bool ev_label_name_ok(struct vg_str s);
/* Label sets (arrays from the arena; strings borrowed). */
bool ev_names_has(const struct promql_strings *names, struct vg_str name);
int ev_lbl_drop_name(struct ev *ev, const struct label *ls, size_t n, const struct label **out,
                     size_t *nout);
/* keep = true: only the labels in names; else all but those in names (and __name__ when
 * also_name). */
int ev_lbl_filter(struct ev *ev, const struct label *ls, size_t n,
                  const struct promql_strings *names, bool keep, bool also_name,
                  const struct label **out, size_t *nout);
/* Sets name=value (an empty value removes the label). value is copied to the arena. */
int ev_lbl_set(struct ev *ev, const struct label *ls, size_t n, struct vg_str name,
               struct vg_str value, const struct label **out, size_t *nout);
/* The series a name-dropping operation yields (flag when delayed, else labels). */
int ev_ser_dropname(struct ev *ev, const struct ev_series *in, struct ev_series *out);
/* Prometheus's labels.String(): {a="b", c="d"} into buf. */
void ev_lbl_str(const struct label *ls, size_t n, char *buf, size_t cap);

/* ---- binop.c, aggregate.c, funcs.c ---- */
struct ev_val *ev_binary(struct ev *ev, const struct promql_node *n, const struct ev_steps *st);
struct ev_val *ev_aggregate(struct ev *ev, const struct promql_node *n,
                            const struct ev_steps *st);
struct ev_val *ev_call(struct ev *ev, const struct promql_node *n, const struct ev_steps *st);
double ev_scalar_binop(enum promql_binop op, double l, double r);
/* True for the ops whose result drops __name__ (arithmetic). */
bool ev_binop_drops_name(enum promql_binop op);

/* True when the node (through parens) is sort-like or topk-like: the order of an
 * instant vector result is meaningful. */
bool ev_is_ordered(const struct promql_node *n);

#endif
