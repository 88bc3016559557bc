/* span_head: the span store's index postings not yet written to LevelDB.
 *
 * Writes add their postings (term key -> time, trace id) here instead of storing one
 * LevelDB list per term and write: most of a write's terms recur in every write (the
 * service, the span names, the status), and the lists those made, scattered over the
 * key space, were half of the store's CPU (memtable inserts and the compactions that
 * merged them). The store's maintenance thread freezes the head now and then and
 * writes the frozen postings as one segment of the index database, whose keys all sort
 * after every earlier segment's (spanstore.c), so LevelDB moves those tables down its
 * levels without rewriting them. Until then queries read the postings from here.
 *
 * Two generations: `active` takes new postings, `frozen` is being written out. A frozen
 * generation is never changed, so the flushing thread reads it without the lock;
 * span_head_release frees it once it is in LevelDB, waiting for every query that
 * started before (span_head_read_begin / end), so a query sees each posting in the head
 * or in the LevelDB snapshot it took after read_begin, never in neither.
 *
 * Term keys are span_index_term_key's ('X' bucket kind term). A term's postings are
 * kept in arrival order; readers sort their copies.
 *
 * Thread safety: every function may be called from any thread; add and copy take the
 * head's mutex, freeze and release also the read/write lock as described. */
#ifndef SPAN_HEAD_H
#define SPAN_HEAD_H

#include "span.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct span_head_posting {
    int64_t t;
    uint8_t tid[SPAN_TRACE_ID_LEN];
};

/* One term of a frozen generation: its key and postings (arrival order). */
struct span_head_term {
    const char *key;
    size_t klen;
    uint64_t hash; /* span_head_hash(key, klen) */
    const struct span_head_posting *p;
    size_t n;
};

struct span_head;

struct span_head *span_head_new(void);
void span_head_free(struct span_head *h); /* accepts NULL */

/* A word-at-a-time multiplicative hash, never 0 (in memory only: nothing hashed is
 * stored). The head's term hash; the span store's per-write key sets use it too, so a
 * term's hash is computed once. */
uint64_t span_head_hash(const void *p, size_t n);

/* Adding a write's postings: lock, one add per term (hash = span_head_hash(key, klen)),
 * unlock. span_head_add returns false when out of memory (postings added before stay). */
void span_head_lock(struct span_head *h);
void span_head_unlock(struct span_head *h);
bool span_head_add(struct span_head *h, const char *key, size_t klen, uint64_t hash,
                   const struct span_head_posting *p, size_t n);
/* Postings in the active generation (call with the lock held). */
size_t span_head_active(const struct span_head *h);

/* Moves the active generation to frozen. Returns false (changing nothing) when a frozen
 * generation is still held or the active one is empty. Call with the lock held. */
bool span_head_freeze(struct span_head *h);
/* The frozen generation's terms sorted by key (an array owned by the head, valid until
 * span_head_release); 0 when none is frozen. No lock needed: frozen postings never change. */
size_t span_head_frozen(struct span_head *h, const struct span_head_term **terms);
/* Frees the frozen generation after waiting for the queries that started before. */
void span_head_release(struct span_head *h);

/* Queries: bracket the whole query (and its LevelDB snapshot, taken after begin). */
void span_head_read_begin(struct span_head *h);
void span_head_read_end(struct span_head *h);
/* Copies the term's postings at or before `to` (to <= 0: all) from both generations
 * into *out (vg_realloc'd, *cap entries), sorted newest first then by trace id; *n is
 * their count. Returns false when out of memory. */
bool span_head_copy(struct span_head *h, const char *key, size_t klen, int64_t to,
                    struct span_head_posting **out, size_t *n, size_t *cap);
/* Sorts p newest first, then by trace id (the order of an index list). */
void span_head_sort(struct span_head_posting *p, size_t n);

#endif
