/* Fuzz target for the TCP framer of server/ingest/syslog_parse.c: the input is a byte
 * stream as a syslog sender might write it to a connection. The first byte picks the
 * message size limit, the second seeds where the stream is cut into reads. Framing the
 * stream in one piece and in many pieces must give the same messages (kind, length,
 * bytes), the same success or failure and the same end-of-stream loss; the framer's
 * buffer never exceeds the limit. Any difference aborts. */
#include "../../server/ingest/syslog_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FRAMES 4096

struct record {
    size_t n;
    size_t bytes;                  /* sum of message lengths, as a cheap extra check */
    uint64_t hash[MAX_FRAMES];     /* FNV-1a of kind, length and bytes of each frame */
    size_t max_msg;
};

static void on_frame(void *ctx, enum syslog_frame_kind kind, const char *p, size_t len)
{
    struct record *r = ctx;
    if (kind == SYSLOG_FRAME_MSG && (len == 0 || len > r->max_msg))
        abort();
    if (kind == SYSLOG_FRAME_TOO_LARGE && len <= r->max_msg)
        abort();
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;
    h = (h ^ len) * 1099511628211ULL;
    for (size_t i = 0; kind == SYSLOG_FRAME_MSG && i < len; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    if (r->n < MAX_FRAMES)
        r->hash[r->n] = h;
    r->n++;
    r->bytes += len;
}

/* Frames data, cut at the points a small generator seeded by seed picks (seed 0: one
 * piece). Returns the feed status; *lost gets finish's count. */
static int run(const uint8_t *data, size_t size, size_t max, unsigned seed, struct record *r,
               size_t *lost)
{
    struct syslog_framer f;
    struct vg_err err;
    memset(r, 0, sizeof *r);
    r->max_msg = max;
    if (syslog_framer_init(&f, max, &err) < 0)
        return -100;
    int rc = 0;
    size_t i = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (i < size && rc == 0) {
        size_t step = size - i;
        if (seed) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            step = 1 + x % (seed % 2 ? 3 : 97);
            if (step > size - i)
                step = size - i;
        }
        rc = syslog_framer_feed(&f, (const char *)data + i, step, on_frame, r, &err);
        if (f.cap > max || f.len > max)
            abort();
        i += step;
    }
    *lost = rc == 0 ? syslog_framer_finish(&f, on_frame, r) : 0;
    syslog_framer_free(&f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max = 1 + data[0] % 64;
    unsigned seed = data[1];
    data += 2;
    size -= 2;
    static struct record whole, split;
    size_t lost_whole, lost_split;
    int a = run(data, size, max, 0, &whole, &lost_whole);
    int b = run(data, size, max, seed | 1, &split, &lost_split);
    if (a != b || whole.n != split.n || whole.bytes != split.bytes || lost_whole != lost_split)
        abort();
    size_t n = whole.n < MAX_FRAMES ? whole.n : MAX_FRAMES;
    if (memcmp(whole.hash, split.hash, n * sizeof whole.hash[0]) != 0)
        abort();
    return 0;
}
