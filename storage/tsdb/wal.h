/* wal: the write-ahead records of the TSDB, one LevelDB value per accepted append.
 *
 * Key:   'W' seq(u64be)                  (9 bytes; seq increases with every append)
 * Value: u8 version (2, written; 1 still read), then one group per series until the
 *        end of the value:
 *          varint(zigzag(series id - previous group's id)), the previous starting at 0
 *            (version 1: uvarint series id)
 *          uvarint n_inorder, uvarint n_ooo
 *          n_inorder + n_ooo samples, each: varint(zigzag(t - previous t)) with the
 *          previous t the record's previous sample, 0 for the first (version 1: 0 at
 *          the start of every group), then the value's IEEE-754 bits as u64le
 *          (bit-exact, so NaN payloads survive).
 *        Version 2 exists for size: an append carries one sample for each of up to
 *        thousands of series, scraped at the same moment and mostly with ids close to
 *        the previous group's, so a sample costs 11-12 bytes instead of 19; every record
 *        goes through LevelDB's log, memtable and a table flush.
 *        The first n_inorder samples were appended to the series' head chunk in this
 *        order (strictly increasing t); the n_ooo after them went to its out-of-order
 *        buffer (increasing t). Replay needs the distinction: an in-order sample at or
 *        before the newest persisted in-order chunk is known to be persisted.
 * Pure functions, thread-safe. */
#ifndef WAL_H
#define WAL_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WAL_KEY_LEN 9
#define WAL_PREFIX 'W'
#define WAL_VERSION 2
#define WAL_VERSION_1 1 /* the per-group encoding above, still replayed */

void wal_key(unsigned char out[WAL_KEY_LEN], uint64_t seq);
/* False if k is not a W key. */
bool wal_key_parse(const char *k, size_t len, uint64_t *seq);

/* Building a record: wal_begin once, then per series wal_group followed by exactly
 * n_inorder + n_ooo wal_sample calls. Allocation failures show in vg_buf_failed(b).
 * wal_reserve (optional, after wal_begin) makes room for the whole record at once, so
 * the group and sample writers then store straight through a pointer. */
struct wal_writer {
    struct vg_buf *b;
    int64_t prev_t;
    uint64_t prev_id;
};
#define WAL_GROUP_MAX 30  /* bytes of a group header at most (three uvarints) */
#define WAL_SAMPLE_MAX 18 /* bytes of a sample at most (a varint and 8 bytes) */
void wal_begin(struct wal_writer *w, struct vg_buf *b);
void wal_reserve(struct wal_writer *w, size_t ngroups, size_t nsamples);

/* The writers are inline: an append calls them once or twice per sample. */

/* Where the next max bytes go, or NULL when the buffer failed. vg_buf keeps a NUL after
 * len, hence the extra byte. */
static inline unsigned char *wal_room_(struct vg_buf *b, size_t max)
{
    if (b->failed || (b->cap - b->len < max + 1 && !vg_buf_reserve(b, max)))
        return NULL;
    return (unsigned char *)b->p + b->len;
}

static inline void wal_done_(struct vg_buf *b, unsigned char *end)
{
    b->len = (size_t)(end - (unsigned char *)b->p);
    *end = '\0';
}

static inline unsigned char *wal_put_uvarint_(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

static inline unsigned char *wal_put_sample_(struct wal_writer *w, unsigned char *p, int64_t t,
                                             double v)
{
    uint64_t d = (uint64_t)t - (uint64_t)w->prev_t;
    p = wal_put_uvarint_(p, (d << 1) ^ (uint64_t)-(int64_t)(d >> 63));
    uint64_t bits;
    memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(bits >> (8 * i));
    w->prev_t = t;
    return p;
}

static inline void wal_group(struct wal_writer *w, uint64_t id, uint32_t n_inorder,
                             uint32_t n_ooo)
{
    unsigned char *p = wal_room_(w->b, WAL_GROUP_MAX);
    if (!p)
        return;
    uint64_t d = id - w->prev_id;
    p = wal_put_uvarint_(p, (d << 1) ^ (uint64_t)-(int64_t)(d >> 63));
    p = wal_put_uvarint_(p, n_inorder);
    p = wal_put_uvarint_(p, n_ooo);
    wal_done_(w->b, p);
    w->prev_id = id;
}

static inline void wal_sample(struct wal_writer *w, int64_t t, double v)
{
    unsigned char *p = wal_room_(w->b, WAL_SAMPLE_MAX);
    if (p)
        wal_done_(w->b, wal_put_sample_(w, p, t, v));
}

/* wal_group(w, id, 1, 0) and wal_sample(w, t, v) in one step: the usual group of a
 * remote-write append (one in-order sample per series). */
static inline void wal_group1(struct wal_writer *w, uint64_t id, int64_t t, double v)
{
    unsigned char *p = wal_room_(w->b, WAL_GROUP_MAX + WAL_SAMPLE_MAX);
    if (!p)
        return;
    uint64_t d = id - w->prev_id;
    p = wal_put_uvarint_(p, (d << 1) ^ (uint64_t)-(int64_t)(d >> 63));
    p[0] = 1; /* n_inorder, n_ooo */
    p[1] = 0;
    wal_done_(w->b, wal_put_sample_(w, p + 2, t, v));
    w->prev_id = id;
}

/* Reading: wal_reader_init checks the version; wal_next_group gives the next group
 * (1), the end (0) or VG_EINVAL on malformed bytes; wal_next_sample then yields the
 * group's samples in order (returns false after the last or on malformed bytes, which
 * wal_next_group reports next). */
struct wal_reader {
    const unsigned char *p, *end;
    uint32_t left;   /* samples left in the current group */
    int64_t prev_t;
    uint64_t prev_id;
    unsigned char version;
    bool bad;
};
struct wal_group {
    uint64_t id;
    uint32_t n_inorder, n_ooo;
};
int wal_reader_init(struct wal_reader *r, const char *rec, size_t len, struct vg_err *err);
int wal_next_group(struct wal_reader *r, struct wal_group *g, struct vg_err *err);
bool wal_next_sample(struct wal_reader *r, int64_t *t, double *v);

#endif
