/* spanstore_int: the state shared by spanstore.c (open, write, retention, stats) and
 * spanstore_query.c (trace by id, search, listings). Not part of the public API. */
#ifndef SPANSTORE_INT_H
#define SPANSTORE_INT_H

#include "../kv.h"
#include "span_index.h"
#include "spanstore.h"

#include <pthread.h>
#include <stdatomic.h>

#define SPANSTORE_STRIPES 256

struct spanstore_cache; /* registry entries already written (spanstore.c) */

struct spanstore {
    struct kv *kv;
    struct spanstore_opts opts;
    char **rules; /* indexed attribute rules, owned copies; "x*" is a prefix rule */
    size_t nrules;

    /* Stripe s guards read-modify-write of the summaries of traces hashing to s, and
     * counts[s] (the in-memory copy of the 'C' record of that stripe). */
    pthread_mutex_t stripes[SPANSTORE_STRIPES];
    struct span_index_counts counts[SPANSTORE_STRIPES];

    pthread_mutex_t reg_mu; /* guards cache */
    struct spanstore_cache *cache;

    _Atomic uint64_t keys_read;

    pthread_mutex_t maint_mu; /* guards stop; maint_cv wakes the thread */
    pthread_cond_t maint_cv;
    bool stop;
    bool has_thread;
    pthread_t thread;
};

/* Whether key matches one of the indexed-attribute rules. */
bool spanstore_is_indexed(const struct spanstore *ss, struct vg_str key);
unsigned spanstore_stripe(const uint8_t *trace_id);

#endif
