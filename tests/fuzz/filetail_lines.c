/* Fuzz target for server/ingest/filetail_lines.c, the line and record assembler of the
 * file collector: the input is the content of a tailed file. Byte 0 picks
 * max_line_bytes (1-64), byte 1 multiline on or off and max_lines, byte 2 seeds where
 * the content is cut into reads. Assembling it in one piece and in many pieces must
 * give the same records (text, end offset, flags); every record fits max_line_bytes,
 * end offsets never go back and never pass the content, and after finish nothing is
 * pending and the last end is the content's length. Any difference traps. */
#include "../../server/ingest/filetail_lines.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <string.h>

#define MAX_RECORDS 4096

struct record {
    size_t n;
    uint64_t last_end;
    size_t max;
    size_t size;
    uint64_t hash[MAX_RECORDS]; /* FNV-1a of end, flags and text */
};

static int on_record(void *ud, struct vg_str text, uint64_t end, unsigned flags)
{
    struct record *r = ud;
    FUZZ_CHECK(text.len <= r->max);
    FUZZ_CHECK(end >= r->last_end && end <= r->size);
    r->last_end = end;
    uint64_t h = (1469598103934665603ULL ^ end) * 1099511628211ULL;
    h = (h ^ flags) * 1099511628211ULL;
    for (size_t i = 0; i < text.len; i++)
        h = (h ^ (unsigned char)text.p[i]) * 1099511628211ULL;
    if (r->n < MAX_RECORDS)
        r->hash[r->n] = h;
    r->n++;
    return 0;
}

static void run(const uint8_t *data, size_t size, const struct filetail_lines_opts *o,
                unsigned seed, struct record *r)
{
    memset(r, 0, sizeof *r);
    r->max = o->max_line_bytes;
    r->size = size;
    struct filetail_lines l;
    filetail_lines_init(&l, o);
    size_t i = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (i < size) {
        size_t step = size - i;
        if (seed) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            step = 1 + x % (seed % 2 ? 3 : 97);
            if (step > size - i)
                step = size - i;
        }
        FUZZ_CHECK(filetail_lines_feed(&l, (const char *)data + i, step, i, 0, on_record, r) == 0);
        FUZZ_CHECK(l.part.len <= o->max_line_bytes && l.rec.len <= o->max_line_bytes);
        i += step;
    }
    FUZZ_CHECK(filetail_lines_tick(&l, 0, on_record, r) == 0);
    FUZZ_CHECK(filetail_lines_finish(&l, on_record, r) == 0);
    FUZZ_CHECK(!filetail_lines_pending(&l));
    FUZZ_CHECK(size == 0 || r->last_end == size);
    filetail_lines_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct matcher_regex *start;
    static struct record whole, split;
    if (!start) {
        struct vg_err err;
        start = matcher_regex_new(VG_STR("^[0-9]"), &err);
        FUZZ_CHECK(start != NULL);
    }
    if (size < 3)
        return 0;
    struct filetail_lines_opts o = {
        .max_line_bytes = 1 + data[0] % 64,
        .start = data[1] & 1 ? start : NULL,
        .max_lines = 1 + (data[1] >> 1) % 8,
    };
    unsigned seed = data[2];
    data += 3;
    size -= 3;
    run(data, size, &o, 0, &whole);
    run(data, size, &o, seed | 1, &split);
    FUZZ_CHECK(whole.n == split.n);
    size_t n = whole.n < MAX_RECORDS ? whole.n : MAX_RECORDS;
    FUZZ_CHECK(memcmp(whole.hash, split.hash, n * sizeof whole.hash[0]) == 0);
    return 0;
}
