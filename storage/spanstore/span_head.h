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
 * Memory: a generation's posting arrays are cut from large slabs it owns, and a released
 * generation hands its slabs and its emptied tables to the next one instead of freeing
 * them (the per-term arrays malloc'd, freed and faulted in again every generation were a
 * seventh of the server's page faults). What is kept back is bounded by the last
 * released generation; span_head_trim gives it all back when the store goes idle.
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

/* A word-at-a-time multiplicative hash, never 0. The head's term hash; the span store's
 * per-write key sets use it too, so a term's hash is computed once. Its values ARE
 * stored: a segment's directory record lists the hashes of the terms it holds as lists
 * (span_index.h, span_index_seg_bucket.listed), and a reader whose hash differed would
 * look for those terms among the packed ones and miss them. Never change its values. */
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
 * span_head_release); 0 when none is frozen, and also when the sort's arrays cannot be
 * allocated: then *oom is set (else cleared) and a later call tries again. No lock
 * needed: frozen postings never change; one flushing thread at a time. */
size_t span_head_frozen(struct span_head *h, const struct span_head_term **terms, bool *oom);
/* Drops the frozen generation after waiting for the queries that started before: its
 * slabs and tables are kept for the next generation (the ones kept from the generation
 * before are freed, so at most one generation's worth waits). */
void span_head_release(struct span_head *h);
/* Frees the memory kept for reuse, and the active generation's tables when it holds no
 * posting: for an idle store, so it doesn't hold the tens of MiB of its last busy
 * generation. Takes the lock. */
void span_head_trim(struct span_head *h);
/* Bytes the head holds in slabs and tables, kept for reuse included (takes the lock;
 * for tests and stats; a frozen generation's sort arrays are not counted). */
size_t span_head_bytes(struct span_head *h);

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
/* The same with the caller's scratch, kept across calls so a flush sorting thousands of
 * terms allocates it once (grown as needed; zero-initialise it, free it with
 * span_head_sort_scratch_free). When the scratch cannot grow the sort still completes
 * (by qsort). Not thread-safe: one scratch per thread. */
struct span_head_sort_scratch {
    struct span_head_posting *a, *b;
    size_t cap; /* entries of a and of b */
};
void span_head_sort_with(struct span_head_posting *p, size_t n,
                         struct span_head_sort_scratch *s);
/* Sorts a copy of p[0..n) (left unchanged, so a frozen generation's postings can be
 * sorted without copying them first) in s: returns the sorted postings, inside s and
 * valid until its next use, or NULL when s could not grow to n entries. */
const struct span_head_posting *span_head_sort_copy(const struct span_head_posting *p,
                                                    size_t n, struct span_head_sort_scratch *s);
void span_head_sort_scratch_free(struct span_head_sort_scratch *s);

#endif
