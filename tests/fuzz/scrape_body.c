/* Fuzz target for the scrape parsers and server/scrape/scrape_append.c: the first byte
 * picks the format (even: text 0.0.4, odd: OpenMetrics) and the flags (bit 1:
 * honor_labels, bit 2: honor_timestamps, bit 3: a sample_limit of 50); the rest is the
 * body, scraped twice into one cache (the second time without its last line, so the
 * staleness path runs). Every batch must hold sorted, unique label names. */
#include "../../server/scrape/scrape_append.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int check_sink(void *ctx, const struct tsdb_batch *b, struct tsdb_append_result *res,
                      struct vg_err *err)
{
    (void)ctx, (void)res, (void)err;
    for (size_t i = 0; i < b->nseries; i++) {
        const struct tsdb_series_in *s = &b->series[i];
        if (s->nsamples != 1)
            abort();
        for (size_t k = 1; k < s->nlabels; k++)
            if (vg_str_cmp(s->labels[k - 1].name, s->labels[k].name) >= 0)
                abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    static const struct label target[] = { { { "instance", 8 }, { "h:1", 3 } },
                                            { { "job", 3 }, { "j", 1 } } };
    struct scrape_input in = { .target = target, .ntarget = 2,
                               .honor_labels = mode & 2, .honor_timestamps = mode & 4,
                               .sample_limit = mode & 8 ? 50 : 0 };
    struct scrape_cache c = { 0 };
    struct scrape_report rep = { 0 };
    struct vg_err err;
    (void)scrape_append(&in, body, len, mode & 1, 1000, &c, check_sink, NULL, &rep, &err);
    size_t cut = len;
    while (cut > 0 && body[cut - 1] == '\n')
        cut--;
    while (cut > 0 && body[cut - 1] != '\n')
        cut--;
    (void)scrape_append(&in, body, cut, mode & 1, 2000, &c, check_sink, NULL, &rep, &err);
    (void)scrape_append_gone(&in, 3000, &c, check_sink, NULL, &err);
    scrape_cache_free(&c);
    return 0;
}
