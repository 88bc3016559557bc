/* lwal: the write-ahead record of one log push, stored as one LevelDB value.
 *
 * Key:   'W' seq(u64be)   (the logstore's key layout is in logstore.c)
 * Value: u8 version (1), then one group per stream until the end of the value:
 *          uvarint stream id
 *          uvarint n (>= 1)
 *          n entries encoded as in lentry.h, each relative to the previous entry's t
 *          (the first relative to 0)
 * Entry i of a stream's group (0-based) has the WAL position (seq, i); positions order
 * a stream's entries exactly as they were applied to its head, which is what replay
 * compares with the stream's flushed position.
 * Pure functions, thread-safe. */
#ifndef LWAL_H
#define LWAL_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "lentry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LWAL_VERSION 1

/* Writing: lwal_begin once, then per stream lwal_group followed by exactly n
 * lwal_entry calls. Allocation failure shows in vg_buf_failed(b). */
struct lwal_writer {
    struct vg_buf *b;
    int64_t prev;
};
void lwal_begin(struct lwal_writer *w, struct vg_buf *b);
void lwal_group(struct lwal_writer *w, uint64_t stream, uint32_t n);
void lwal_entry(struct lwal_writer *w, const struct lentry *e);

/* Reading: lwal_reader_init checks the version (0 or VG_EINVAL); lwal_next_group
 * returns 1 with the next group, 0 at the clean end, VG_EINVAL when malformed (also
 * when the previous group's entries were not all read or were short); lwal_next_entry
 * yields the group's entries (0, or VG_EINVAL). Decoded strings point into the value;
 * metadata goes to meta (room for LENTRY_MAX_META). */
struct lwal_reader {
    const char *p, *end;
    uint32_t left;
    int64_t prev;
};
int lwal_reader_init(struct lwal_reader *r, const char *p, size_t len, struct vg_err *err);
int lwal_next_group(struct lwal_reader *r, uint64_t *stream, uint32_t *n, struct vg_err *err);
int lwal_next_entry(struct lwal_reader *r, struct lentry *e, struct label *meta,
                    struct vg_err *err);

#endif
