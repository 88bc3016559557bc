/* log_batch: see log_batch.h. The scratch arrays of log_batch_streams (an index to sort,
 * the entries, the streams) grow with the batch and are reused, so grouping a batch
 * costs one qsort and no allocation once the batch has reached its usual size. */
#include "log_batch.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_err.h"

#include <stdlib.h>
#include <string.h>

int log_batch_init(struct log_batch *b, size_t arena_block)
{
    memset(b, 0, sizeof *b);
    b->arena = vg_arena_new(arena_block);
    return b->arena ? 0 : VG_ENOMEM;
}

void log_batch_free(struct log_batch *b)
{
    vg_arena_free(b->arena);
    vg_free(b->items);
    vg_free(b->idx);
    vg_free(b->es);
    vg_free(b->st);
    memset(b, 0, sizeof *b);
}

void log_batch_clear(struct log_batch *b)
{
    vg_arena_reset(b->arena);
    b->n = 0;
    b->bytes = 0;
}

static bool copy_str(struct vg_arena *a, struct vg_str *s)
{
    if (!s->len)
        return true;
    char *d = vg_arena_alloc(a, s->len);
    if (!d)
        return false;
    memcpy(d, s->p, s->len);
    s->p = d;
    return true;
}

static bool copy_labels(struct vg_arena *a, const struct label *src, size_t n,
                        struct label **out)
{
    struct label *d = vg_arena_alloc(a, (n ? n : 1) * sizeof *d);
    if (!d)
        return false;
    for (size_t i = 0; i < n; i++) {
        d[i] = src[i];
        if (!copy_str(a, &d[i].name) || !copy_str(a, &d[i].value))
            return false;
    }
    *out = d;
    return true;
}

int log_batch_add(struct log_batch *b, int64_t t, const struct label *labels, size_t nl,
                  const struct label *meta, size_t nm, struct vg_str line)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct log_batch_item *v = vg_realloc(b->items, cap * sizeof *v);
        if (!v)
            return VG_ENOMEM;
        b->items = v;
        b->cap = cap;
    }
    struct log_batch_item *it = &b->items[b->n];
    *it = (struct log_batch_item){ .t = t, .hash = labels_hash(labels, nl),
                                   .seq = (uint32_t)b->n, .nlabels = (uint32_t)nl,
                                   .nmeta = (uint32_t)nm, .line = line };
    if (!copy_labels(b->arena, labels, nl, &it->labels) ||
        !copy_labels(b->arena, meta, nm, &it->meta) || !copy_str(b->arena, &it->line))
        return VG_ENOMEM;
    b->n++;
    b->bytes += line.len;
    for (size_t i = 0; i < nm; i++)
        b->bytes += meta[i].name.len + meta[i].value.len;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    const struct log_batch_item *x = *(struct log_batch_item *const *)a;
    const struct log_batch_item *y = *(struct log_batch_item *const *)b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    int c = labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool same_stream(const struct log_batch_item *x, const struct log_batch_item *y)
{
    return x->hash == y->hash && labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels) == 0;
}

/* Grows each scratch array to n; they are replaced one by one, so a failure leaves the
 * old ones valid (and freed by log_batch_free). */
static int grow_scratch(struct log_batch *b, size_t n)
{
    if (n <= b->scratch_cap)
        return 0;
    struct log_batch_item **idx = vg_realloc(b->idx, n * sizeof *idx);
    if (!idx)
        return VG_ENOMEM;
    b->idx = idx;
    struct lentry *es = vg_realloc(b->es, n * sizeof *es);
    if (!es)
        return VG_ENOMEM;
    b->es = es;
    struct logstore_stream_in *st = vg_realloc(b->st, n * sizeof *st);
    if (!st)
        return VG_ENOMEM;
    b->st = st;
    b->scratch_cap = n;
    return 0;
}

int log_batch_streams(struct log_batch *b, struct logstore_stream_in **streams,
                      size_t *nstreams)
{
    size_t n = b->n;
    *streams = NULL;
    *nstreams = 0;
    if (!n)
        return 0;
    if (grow_scratch(b, n) < 0)
        return VG_ENOMEM;
    for (size_t i = 0; i < n; i++)
        b->idx[i] = &b->items[i];
    qsort(b->idx, n, sizeof *b->idx, cmp_item);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        const struct log_batch_item *p = b->idx[i];
        b->es[i] = (struct lentry){ .t = p->t, .line = p->line, .meta = p->meta,
                                    .nmeta = p->nmeta };
        if (i == 0 || !same_stream(b->idx[i - 1], p))
            b->st[ns++] = (struct logstore_stream_in){ .labels = p->labels,
                                                       .nlabels = p->nlabels,
                                                       .entries = &b->es[i] };
        b->st[ns - 1].nentries++;
    }
    *streams = b->st;
    *nstreams = ns;
    return 0;
}
