/* engine_int: the LogQL evaluator's private types, shared by engine.c (entry point, log
 * queries, values, helpers), engine_range.c (range aggregations over the log store) and
 * engine_vector.c (vector aggregations, binary operations, label_replace, vector()).
 * Nothing here is part of the engine's API.
 *
 * Model: a metric node is evaluated once over every step t_k = t0 + k * step (k <
 * nsteps; an instant query is the one step at end) and yields an lq_val: either a
 * scalar (a literal: the same number at every step) or a vector, a list of series each
 * holding its points (k, value) in increasing k, present only at the steps where the
 * series has a sample (Loki's "no NaN filling"). Points are sparse, so memory follows
 * the data, not series x steps. Operations that combine series at one step (vector
 * aggregation, binary operations) walk a step index (lq_sidx): the points of a value
 * regrouped by step, in series order.
 *
 * Order: the series order of a value is meaningful for an instant query that sorts
 * (sort, sort_desc): Loki returns such a vector in evaluation order, so operations
 * keep it (see lq_val and engine.c's final ordering).
 *
 * Memory: label arrays and strings live in the result's arena (they end up in the
 * answer); point arrays, series arrays and scratch come from vg_malloc and are freed as
 * soon as the parent has consumed them (lq_val_free). Errors fill ev->err; functions
 * return NULL or a negative vg_code. */
#ifndef LOGQL_ENGINE_INT_H
#define LOGQL_ENGINE_INT_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "ast.h"
#include "engine.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lq_ev {
    struct logstore *ls;
    const struct logql_params *p;
    const struct logql_limits *lim;
    struct vg_arena *arena; /* the result's */
    struct vg_err *err;
    struct logql_stats *st;
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = no timeout */
    unsigned tick;
    int64_t t0, step; /* step times t0 + k * step */
    size_t nsteps;
};

static inline int64_t lq_t(const struct lq_ev *ev, size_t k)
{
    return ev->t0 + (int64_t)k * ev->step;
}

struct lq_pt {
    uint32_t k; /* step index */
    double v;
};

struct lq_ser {
    const struct label *ls; /* sorted, in the arena */
    size_t nls;
    struct lq_pt *pt; /* vg_malloc'd, increasing k */
    size_t n, cap;
};

struct lq_val {
    bool scalar;
    double sv; /* scalar value (every step) */
    struct lq_ser *s;
    size_t n, cap;
};

/* Makes room for need elements of size bytes in the vg_malloc'd array *p of *cap
 * (doubling, at least min_cap). 0 or VG_ENOMEM with ev->err set; *p stays valid. */
int lq_grow(struct lq_ev *ev, void *p, size_t *cap, size_t need, size_t size, size_t min_cap);

/* ---- engine.c: values ---- */
struct lq_val *lq_val_new(struct lq_ev *ev);
struct lq_val *lq_scalar_new(struct lq_ev *ev, double v);
void lq_val_free(struct lq_val *v); /* accepts NULL */
/* Appends a series without points; its index or a negative code. */
long lq_val_add(struct lq_ev *ev, struct lq_val *v, const struct label *ls, size_t nls);
/* Appends point (k, x) to series s (k must not be below its last point's). */
int lq_ser_put(struct lq_ev *ev, struct lq_ser *s, uint32_t k, double x);
/* True when s already has a point at step k (it is the last one, as puts go in order). */
static inline bool lq_ser_has(const struct lq_ser *s, uint32_t k)
{
    return s->n && s->pt[s->n - 1].k == k;
}
/* Drops series without points, keeping the order of the others. */
void lq_val_compact(struct lq_val *v);

/* A map from 64-bit keys to indexes (open addressing). */
struct lq_map {
    uint64_t *keys;
    uint32_t *vals; /* index + 1; 0 = empty */
    size_t cap, n;
};
int lq_map_init(struct lq_ev *ev, struct lq_map *m, size_t hint);
void lq_map_free(struct lq_map *m);
/* The index stored under key, or -1. */
long lq_map_get(const struct lq_map *m, uint64_t key);
/* Stores idx under key (which must be absent). 0 or VG_ENOMEM. */
int lq_map_put(struct lq_ev *ev, struct lq_map *m, uint64_t key, size_t idx);

/* Output builder: series of a value identified by their label set. */
struct lq_bld {
    struct lq_val *v;
    struct lq_map map; /* labels_hash -> first series with that hash */
    uint32_t *next;    /* per series: next series with the same hash + 1 (collisions) */
    size_t nnext;
};
int lq_bld_init(struct lq_ev *ev, struct lq_bld *b, struct lq_val *v, size_t hint);
void lq_bld_free(struct lq_bld *b); /* frees the map, not the value */
/* The series with labels ls (hash = labels_hash(ls, nls)), added when new; when copy,
 * a new series gets a deep copy of the labels in the arena, else it borrows ls (which
 * must live in the arena). Index or a negative code. */
long lq_bld_get(struct lq_ev *ev, struct lq_bld *b, const struct label *ls, size_t nls,
                uint64_t hash, bool copy);
/* Sets point k of series i; VG_EINVAL with dup_msg when it already has one. */
int lq_bld_put(struct lq_ev *ev, struct lq_bld *b, size_t i, uint32_t k, double x,
               const char *dup_msg);

/* Step index: refs of step k are r[off[k] .. off[k+1]), in series order. */
struct lq_ref {
    uint32_t s;
    double v;
};
struct lq_sidx {
    uint32_t *off;
    struct lq_ref *r;
};
int lq_sidx_build(struct lq_ev *ev, const struct lq_val *v, struct lq_sidx *x);
void lq_sidx_free(struct lq_sidx *x);

/* ---- engine.c: labels (results in the arena) ---- */
bool lq_names_has(const struct logql_strings *names, struct vg_str name);
/* keep: only the labels named in names; else all but those. */
int lq_lbl_filter(struct lq_ev *ev, const struct label *ls, size_t n,
                  const struct logql_strings *names, bool keep, const struct label **out,
                  size_t *nout);
/* Sets name=value (copied), or removes name when value is empty. */
int lq_lbl_set(struct lq_ev *ev, const struct label *ls, size_t n, struct vg_str name,
               struct vg_str value, const struct label **out, size_t *nout);
/* Deep copy of ls into the arena. */
int lq_lbl_copy(struct lq_ev *ev, const struct label *ls, size_t n, const struct label **out);
/* Prometheus's labels.String(): {a="b", c="d"} into buf (truncated to cap). */
void lq_lbl_str(const struct label *ls, size_t n, char *buf, size_t cap);

/* ---- engine.c: errors and the clock ---- */
int lq_nomem(struct lq_ev *ev);
int lq_fail(struct lq_ev *ev, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Checks the deadline every few hundred calls: VG_EOVERLOAD once it has passed. */
int lq_tick(struct lq_ev *ev);
/* Opens the store's iterator over [start, end) for an LQ_LOG node: its matchers, and
 * the pipeline's needles for chunk skipping (limit 0 = all). NULL with ev->err set.
 * lq_add_iter_stats adds an iterator's statistics to ev->st. */
struct logstore_iter;
#define LQ_NEEDLES_MAX 16 /* line needles lq_select gives the store at most */
struct logstore_iter *lq_select(struct lq_ev *ev, const struct logql_node *log, int64_t start,
                                int64_t end, bool backward, size_t limit);
void lq_add_iter_stats(struct lq_ev *ev, const struct logstore_iter *it);

/* ---- dispatch ---- */
struct lq_val *lq_eval(struct lq_ev *ev, const struct logql_node *n);
struct lq_val *lq_eval_range(struct lq_ev *ev, const struct logql_node *n);   /* engine_range.c */
/* engine_range.c: range aggregation n with its samples' labels reduced to g (NULL: all
 * labels), and whether vector aggregation op over range aggregation n gives the same
 * answer when its grouping is applied in n's sample extraction (engine_range.c's top). */
struct lq_val *lq_eval_range_grouped(struct lq_ev *ev, const struct logql_node *n,
                                     const struct logql_grouping *g);
bool lq_range_pushdown(enum logql_vector_op op, const struct logql_node *n);
struct lq_val *lq_eval_vecagg(struct lq_ev *ev, const struct logql_node *n);  /* engine_vector.c */
struct lq_val *lq_eval_binary(struct lq_ev *ev, const struct logql_node *n);  /* engine_vector.c */
struct lq_val *lq_eval_replace(struct lq_ev *ev, const struct logql_node *n); /* engine_vector.c */

#endif
