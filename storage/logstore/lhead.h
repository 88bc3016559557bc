/* lhead: the open (or sealed, not yet written) chunk of one stream, in memory.
 *
 * Entries are appended in arrival order, encoded as in lentry.h (relative to t = 0),
 * into pages that are never moved or reallocated once handed out, so a reader that
 * captured the first n entries can keep reading them without a lock while the writer
 * appends more. Timestamps may arrive out of order (within the store's window); readers
 * and the chunk encoder sort (stable, so equal times keep arrival order).
 *
 * Ownership: a head is reference-counted. The stream holds one reference; each query
 * that captured it holds one (lhead_capture / lhead_release); the last release frees
 * it. Thread safety: lhead_append and lhead_capture must be serialised by the caller
 * (the store's head lock); a capture may then be read from any thread. */
#ifndef LHEAD_H
#define LHEAD_H

#include "../base/vg_err.h"
#include "lentry.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lhead_page;

struct lhead {
    atomic_uint refs;
    struct lhead_page *first, *last;
    uint32_t n;            /* entries */
    uint32_t nmeta;        /* metadata pairs over all entries */
    int64_t mint, maxt;    /* valid when n > 0 */
    size_t raw;            /* encoded bytes (what the chunk size target counts) */
    size_t mem;            /* page bytes allocated */
    uint64_t bytes;        /* sum of lentry_bytes */
    bool ordered;          /* every entry had t >= the previous one's */
    uint64_t seq_lo;       /* WAL seq of the first entry */
    uint64_t last_seq;     /* WAL position (seq, idx) of the last entry */
    uint32_t last_idx;
    int64_t created_ms;    /* wall clock of the first append, for age-based flushing */
};

/* A new empty head with one reference, or NULL when out of memory. */
struct lhead *lhead_new(int64_t now_ms);
/* Drops a reference (accepts NULL); frees at zero. */
void lhead_release(struct lhead *h);

/* Appends e, which had WAL position (seq, idx). 0 or VG_ENOMEM (head unchanged). */
int lhead_append(struct lhead *h, const struct lentry *e, uint64_t seq, uint32_t idx);

/* The first n entries of a head as of a capture. */
struct lhead_snap {
    struct lhead *h;          /* holds a reference */
    struct lhead_page *last;  /* the page that was last when captured */
    uint32_t n;
    bool ordered;
};
void lhead_capture(struct lhead *h, struct lhead_snap *s); /* takes a reference */

/* A pointer to one encoded entry of a head. */
struct lhead_ref {
    int64_t t;
    uint32_t seqno;  /* arrival order, to keep the sort stable */
    const char *p, *end;
};
/* The captured entries with start <= t < end sorted by (t, arrival), in *out
 * (vg_malloc'ed, caller frees; NULL when none) and *n. 0 or VG_ENOMEM. */
int lhead_collect(const struct lhead_snap *s, int64_t start, int64_t end,
                  struct lhead_ref **out, uint32_t *n);
/* Decodes a collected entry; metadata goes to meta (room for LENTRY_MAX_META). */
void lhead_entry(const struct lhead_ref *r, struct lentry *e, struct label *meta);

#endif
