/* filetail_lines: turns the bytes of a tailed file into records, for filetail.c.
 *
 * Bytes are fed in the order they sit in the file, each chunk with its file offset.
 * Lines end at "\n" (a "\r" before it is removed). Every record handed to the callback
 * carries `end`, the file offset just past its last byte: once the record is stored,
 * reading may resume there, which is how filetail keeps offsets exact (nothing a
 * restart re-reads was stored, nothing stored is read again).
 *
 * - One record per line, or with a `start` regex (multiline) a record is a line that
 *   matches start plus the lines that follow up to the next such line, joined by "\n"
 *   (a file that begins with continuation lines starts a record with them). A record
 *   goes out when the next start line arrives, when it reaches max_lines lines or
 *   max_line_bytes bytes (flagged FILETAIL_LINES_CUT; the next line starts a new record),
 *   or when it has not grown for record_timeout_ms (filetail_lines_tick).
 * - A line without its "\n" waits; filetail_lines_tick hands it on as a complete line
 *   once it has waited partial_timeout_ms (0: wait forever, as Promtail does). Bytes
 *   that come later start a new line.
 * - A line longer than max_line_bytes is cut into pieces of at most that many bytes,
 *   each a line of its own flagged FILETAIL_LINES_CUT. So the memory held per file is
 *   at most about 2 * max_line_bytes.
 * - Empty lines are handed on as empty records (multiline: as part of the record), so
 *   the caller can still move its offset past them.
 *
 * Pure: no I/O, no clock (times come in), no storage. Not thread-safe: one per file. */
#ifndef FILETAIL_LINES_H
#define FILETAIL_LINES_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/matcher.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FILETAIL_LINES_CUT 1u /* the record was cut at max_line_bytes or max_lines */

struct filetail_lines_opts {
    size_t max_line_bytes;             /* >= 1 */
    const struct matcher_regex *start; /* multiline start of record; NULL: one per line */
    size_t max_lines;                  /* multiline: lines per record at most (>= 1) */
    int64_t partial_timeout_ms;        /* 0: an unterminated line waits forever */
    int64_t record_timeout_ms;         /* multiline: idle record goes out; 0: never */
};

/* Called for every record, text valid only during the call. A negative return stops
 * the feed and is returned by it. */
typedef int (*filetail_lines_fn)(void *ud, struct vg_str text, uint64_t end, unsigned flags);

struct filetail_lines {
    struct filetail_lines_opts o;
    struct vg_buf part;   /* an unterminated line */
    uint64_t part_end;    /* file offset just past part */
    int64_t part_ms;      /* when part got its first byte */
    struct vg_buf rec;    /* multiline: the record being assembled */
    bool has_rec;
    size_t rec_lines;
    uint64_t rec_end;
    int64_t rec_ms;       /* when rec last grew */
    unsigned rec_flags;
};

/* o is copied (start is borrowed: it must outlive l). */
void filetail_lines_init(struct filetail_lines *l, const struct filetail_lines_opts *o);
void filetail_lines_free(struct filetail_lines *l);
/* Forgets every pending byte (the caller re-reads from its last stored offset). */
void filetail_lines_reset(struct filetail_lines *l);
/* True while bytes wait (a partial line or an unfinished record). */
bool filetail_lines_pending(const struct filetail_lines *l);

/* Feeds [p, p + n), which starts at file offset off, at time now_ms. 0, VG_ENOMEM
 * (buffers), or fn's negative return. After a failure, reset before feeding again. */
int filetail_lines_feed(struct filetail_lines *l, const char *p, size_t n, uint64_t off,
                        int64_t now_ms, filetail_lines_fn fn, void *ud);
/* Hands on what has waited too long (see the top of the file). Same returns. */
int filetail_lines_tick(struct filetail_lines *l, int64_t now_ms, filetail_lines_fn fn,
                        void *ud);
/* Hands on everything pending: the file will not grow again (rotated away, or about to
 * be truncated). Same returns. */
int filetail_lines_finish(struct filetail_lines *l, filetail_lines_fn fn, void *ud);

#endif
