/* lentry: one log entry (timestamp, line, structured metadata) and its byte encoding,
 * shared by the write-ahead records (lwal), the in-memory head (lhead) and the
 * uncompressed payload of chunks (lchunk).
 *
 * Encoding of one entry, relative to a previous timestamp `prev` chosen by the caller:
 *   varint(zigzag(t - prev))
 *   uvarint nmeta, then nmeta times: uvarint len(name) name uvarint len(value) value
 *   uvarint len(line) line
 * Lines and metadata are arbitrary bytes (no terminator). Decoding never reads past
 * the given end and refuses more than LENTRY_MAX_META pairs.
 * Pure functions, thread-safe. */
#ifndef LENTRY_H
#define LENTRY_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"
#include "../tsdb/labels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Structured metadata pairs per entry at most (Loki's default limit is 128). */
#define LENTRY_MAX_META 128

struct lentry {
    int64_t t;                 /* nanoseconds since the epoch */
    struct vg_str line;
    const struct label *meta;  /* name/value pairs in the order given (trace_id, ...) */
    size_t nmeta;
};

/* Bytes of the line plus every metadata name and value: what stats call "bytes". */
uint64_t lentry_bytes(const struct lentry *e);
/* Exact size of the encoding of e relative to prev. */
size_t lentry_size(const struct lentry *e, int64_t prev);
/* Writes the encoding at p (lentry_size bytes must be available); returns the end. */
char *lentry_put(char *p, const struct lentry *e, int64_t prev);
/* Appends the encoding to b (allocation failure shows in vg_buf_failed). */
void lentry_append(struct vg_buf *b, const struct lentry *e, int64_t prev);

/* Decodes one entry from [*p, end) relative to prev into e, with metadata pairs
 * written to meta (room for LENTRY_MAX_META; e->meta points to it and its strings
 * point into the input). Advances *p. 0 or VG_EINVAL naming what is malformed. */
int lentry_decode(const char **p, const char *end, int64_t prev, struct lentry *e,
                  struct label *meta, struct vg_err *err);
/* Only the timestamp: advances *p past the zigzag varint. false when malformed. */
bool lentry_decode_t(const char **p, const char *end, int64_t prev, int64_t *t);
/* The rest after lentry_decode_t (metadata and line), e->t left unchanged. */
int lentry_decode_body(const char **p, const char *end, struct lentry *e, struct label *meta,
                       struct vg_err *err);

/* Varint helpers used by the other logstore codecs. get_* return false when the
 * varint runs past end or is longer than 10 bytes. */
bool lentry_get_uvarint_slow(const char **p, const char *end, uint64_t *v); /* checks each byte */
/* Inline, without bound checks when a whole varint fits before end: a chunk's index walk
 * decodes a few per entry. */
static inline bool lentry_get_uvarint(const char **p, const char *end, uint64_t *v)
{
    if (end - *p < 10)
        return lentry_get_uvarint_slow(p, end, v);
    const unsigned char *q = (const unsigned char *)*p;
    uint64_t r = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        unsigned char c = *q++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            *p = (const char *)q;
            return true;
        }
    }
    return false;
}
size_t lentry_uvarint_size(uint64_t v);
char *lentry_put_uvarint(char *p, uint64_t v);

#endif
