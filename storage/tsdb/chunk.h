/* chunk: compressed samples of one series (Gorilla paper, as Prometheus's XOR chunk).
 *
 * Byte layout of an encoded chunk:
 *   u16be sample count, u8 encoding, then a bitstream.
 *   Encoding 0 (what appends write): t0 and v0 as 64 raw bits each, then timestamp
 *   delta-of-delta in buckets and XOR'ed values with leading/trailing-zero windows.
 *   Encoding 1 (picked by chunk_bytes when smaller): Rice-coded timestamp residuals and
 *   values as a constant, XOR, or exact decimals (integer deltas).
 *   Encoding 2 (what appends write after chunk_enc_pack): t0, then an encoding-1 chunk
 *   of the first samples, then the rest continuing in encoding 0. Exact bit layouts of
 *   all three are documented in chunk.c.
 * Values are stored bit-exact: NaN payloads such as the staleness marker survive.
 * Timestamps are milliseconds and must be non-decreasing within a chunk.
 * Not thread-safe; an encoder owns its buffer (chunk_enc_free). */
#ifndef CHUNK_H
#define CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 48 bytes: one lives in every in-memory series, so the fields are packed. buf holds
 * the encoding-0 bytes, or after chunk_enc_pack the encoding-2 bytes (the header's
 * count is kept current either way), and is grown in small steps so that a head chunk
 * costs about its encoded size. */
struct chunk_enc {
    unsigned char *buf;
    int64_t t, tdelta;  /* last timestamp and last delta */
    uint64_t vbits;     /* last value's bits */
    uint32_t cap;       /* bytes allocated at buf */
    uint32_t bits;      /* bits written after the 3-byte header (< 65535 * 146) */
    uint16_t count;
    uint8_t leading, trailing;
    bool failed;        /* an allocation failed; the chunk is unusable */
    bool nopack;        /* packing did not pay off; chunk_enc_pack does not try again */
    uint16_t packed;    /* samples in the encoding-1 part (0: buf is encoding 0) */
};

void chunk_enc_init(struct chunk_enc *e);
/* Timestamp of the first sample; e must hold at least one. Encodings 0 and 2 keep it
 * as the 64 raw bits right after the header, so callers need not store it separately. */
static inline int64_t chunk_enc_first_t(const struct chunk_enc *e)
{
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = t << 8 | e->buf[3 + i];
    return (int64_t)t;
}
void chunk_enc_free(struct chunk_enc *e);
/* Appends a sample; t must be >= the previous one. Returns 0, VG_ENOMEM (the encoder
 * is then failed for good), VG_EINVAL if t goes backwards, or VG_ETOOLARGE when the
 * chunk already holds 65535 samples. */
int chunk_append(struct chunk_enc *e, int64_t t, double v);
/* Re-encodes the samples appended so far as encoding 1 and goes on appending after
 * them in encoding 0 (the result is encoding 2, see chunk.c), when that is at least an
 * eighth smaller; otherwise marks e so that later calls do nothing. Costs about one
 * chunk_bytes. Returns 0 (also when nothing changed) or VG_ENOMEM (e unchanged and
 * still usable). */
int chunk_enc_pack(struct chunk_enc *e);
/* chunk_enc_pack for a chunk that takes no more appends (a full head chunk): the same,
 * but leaves no room past the packed bytes (a later append still works, reallocating).
 * chunk_bytes then returns the packed bytes as they are, without encoding again. */
int chunk_enc_seal(struct chunk_enc *e);
/* The encoded bytes (valid until the next append or free; owned by e); *len set.
 * Picks the smaller of the two encodings, so it costs one pass over the samples (none
 * when everything appended is packed: then the packed part is returned).
 * NULL with *len = 0 when the encoder has failed. */
const unsigned char *chunk_bytes(struct chunk_enc *e, size_t *len);
/* Starts a new encoder whose content is the given encoded chunk, to keep appending
 * (used when reloading a head chunk). e needs no chunk_enc_init before; on error it is
 * left empty (chunk_enc_free is still allowed). Returns 0, VG_EINVAL on malformed
 * input, or VG_ENOMEM. */
int chunk_enc_from_bytes(struct chunk_enc *e, const unsigned char *buf, size_t len);

struct chunk_iter {
    const unsigned char *buf;
    size_t len_bits;
    size_t pos;         /* bit position */
    uint16_t count, read;
    int64_t t, tdelta;
    uint64_t vbits;
    uint8_t leading, trailing;
    bool err;
    /* Encoding-1 and -2 state (private to chunk.c). */
    uint8_t enc, tmode, vmode, kt, kv, scale;
    uint16_t seg;       /* samples decoded as encoding 1 */
    int64_t t0, m, mdelta;
    uint64_t interval;
    size_t cont;        /* encoding 2: bit position of the encoding-0 continuation */
};

/* Iterates an encoded chunk. chunk_next returns true with a sample, false at the end
 * or on malformed bytes (then it->err is true). Never reads outside buf. */
void chunk_iter_init(struct chunk_iter *it, const unsigned char *buf, size_t len);
bool chunk_next(struct chunk_iter *it, int64_t *t, double *v);
/* Moves it past the samples before mint that follow the last one returned, as calls to
 * chunk_next would, but several times faster where the chunk allows (the encoding-1
 * part with decimal or constant values, what counters and most gauges get); elsewhere
 * it moves less or not at all, so callers still check each t chunk_next returns. Used
 * by reads of a window that starts inside a chunk. */
void chunk_iter_skip_before(struct chunk_iter *it, int64_t mint);
/* Sample count stored in an encoded chunk's header (0 if len < 2). */
uint16_t chunk_count(const unsigned char *buf, size_t len);

#endif
