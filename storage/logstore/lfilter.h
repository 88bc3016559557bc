/* lfilter: the per-chunk token filter that lets a search skip chunks without
 * decompressing them.
 *
 * What goes in (case-folded: ASCII letters lower-cased, other bytes kept):
 *   - every token of every line, a token being a maximal run of token bytes
 *     (ASCII letters and digits, '_', and every byte >= 0x80 so UTF-8 words stay whole);
 *   - every trigram (3 consecutive bytes) inside those tokens;
 *   - every structured metadata pair as the exact, case-sensitive name and value.
 * These elements are put in a bloom filter of LFILTER_BITS_PER_ELEMENT bits each with
 * LFILTER_K probes (about 1% false positives per element).
 *
 * Why a query can rely on it (a needle is a byte string every wanted line contains,
 * compared case-insensitively or not): split the needle into runs of token bytes. A run
 * with a separator byte on both sides inside the needle is a whole token of the line,
 * so its token element must be present. Any other run of 3 or more bytes lies inside
 * one token of the line, so all of its trigrams must be present. Runs shorter than 3
 * at an edge prove nothing. A chunk where any required element is absent cannot hold a
 * matching line and is skipped; presence only means "maybe".
 *
 * Stored form, appended by lfilter_finish:  u8 k, uvarint nbytes, nbytes of bits
 * (bit i is byte i/8, mask 1 << (i % 8)). nbytes == 0 means the set is empty.
 *
 * A builder belongs to one thread at a time (it owns a 2 MiB trigram bitmap, reused
 * from chunk to chunk). Query and probe functions are pure and thread-safe. */
#ifndef LFILTER_H
#define LFILTER_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LFILTER_BITS_PER_ELEMENT 10
#define LFILTER_K 7

struct lfilter_builder;

/* NULL when out of memory. Free with lfilter_builder_free (accepts NULL). */
struct lfilter_builder *lfilter_builder_new(void);
void lfilter_builder_free(struct lfilter_builder *b);
/* Adds a line's tokens and trigrams. 0 or VG_ENOMEM. */
int lfilter_add_line(struct lfilter_builder *b, const char *p, size_t len);
/* Adds an exact metadata pair. 0 or VG_ENOMEM. */
int lfilter_add_meta(struct lfilter_builder *b, struct vg_str name, struct vg_str value);
/* Appends the stored form of everything added since the last finish, then empties the
 * builder. Allocation failure shows in vg_buf_failed(out). */
void lfilter_finish(struct lfilter_builder *b, struct vg_buf *out);

/* A parsed filter pointing into the stored bytes. */
struct lfilter {
    const unsigned char *bits;
    size_t nbytes;
    unsigned k;
};
/* Parses the stored form at *p, advancing it. false when malformed. */
bool lfilter_parse(const char **p, const char *end, struct lfilter *f);

/* The elements a query requires, compiled once per query. */
struct lfilter_query {
    uint64_t *h;
    size_t n, cap;
    bool failed; /* allocation failed: the query then requires nothing (skips nothing) */
};
/* Adds the elements a line containing needle must have (rules above). */
void lfilter_query_needle(struct lfilter_query *q, struct vg_str needle);
/* Adds the element of an exact metadata pair. */
void lfilter_query_meta(struct lfilter_query *q, struct vg_str name, struct vg_str value);
void lfilter_query_free(struct lfilter_query *q);
/* False when some required element is certainly absent from f. */
bool lfilter_may_match(const struct lfilter *f, const struct lfilter_query *q);

#endif
