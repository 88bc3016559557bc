/* lhead: in-memory head chunks; contract in lhead.h.
 *
 * Reading without a lock is safe because a capture records the page that was last at
 * the time: every earlier page is full and never written again (its `used` was set
 * before the next page was linked, under the caller's lock, which the capture also
 * took), and in the last captured page the reader stops after the captured count,
 * before any byte the writer may still be adding. */
#include "lhead.h"

#include "../base/vg_alloc.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_MIN 4096
#define PAGE_MAX (64u << 10)

struct lhead_page {
    struct lhead_page *next;
    size_t cap, used;
    char data[];
};

struct lhead *lhead_new(int64_t now_ms)
{
    struct lhead *h = vg_calloc(1, sizeof *h);
    if (!h)
        return NULL;
    atomic_init(&h->refs, 1);
    h->ordered = true;
    h->created_ms = now_ms;
    return h;
}

void lhead_release(struct lhead *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    for (struct lhead_page *p = h->first, *next; p; p = next) {
        next = p->next;
        vg_free(p);
    }
    vg_free(h);
}

int lhead_append(struct lhead *h, const struct lentry *e, uint64_t seq, uint32_t idx)
{
    size_t need = lentry_size(e, 0);
    struct lhead_page *pg = h->last;
    if (!pg || pg->cap - pg->used < need) {
        size_t cap = pg ? pg->cap * 2 : PAGE_MIN;
        if (cap > PAGE_MAX)
            cap = PAGE_MAX;
        if (cap < need)
            cap = need;
        struct lhead_page *np = vg_malloc(sizeof *np + cap);
        if (!np)
            return VG_ENOMEM;
        np->next = NULL;
        np->cap = cap;
        np->used = 0;
        if (pg)
            pg->next = np;
        else
            h->first = np;
        h->last = np;
        h->mem += sizeof *np + cap;
        pg = np;
    }
    lentry_put(pg->data + pg->used, e, 0);
    pg->used += need;
    if (h->n == 0) {
        h->mint = h->maxt = e->t;
        h->seq_lo = seq;
    } else {
        if (e->t < h->maxt)
            h->ordered = false;
        if (e->t < h->mint)
            h->mint = e->t;
        if (e->t > h->maxt)
            h->maxt = e->t;
    }
    h->n++;
    h->nmeta += (uint32_t)e->nmeta;
    h->raw += need;
    h->bytes += lentry_bytes(e);
    h->last_seq = seq;
    h->last_idx = idx;
    return 0;
}

void lhead_capture(struct lhead *h, struct lhead_snap *s)
{
    atomic_fetch_add(&h->refs, 1);
    s->h = h;
    s->last = h->last;
    s->n = h->n;
    s->ordered = h->ordered;
}

static int cmp_ref(const void *a, const void *b)
{
    const struct lhead_ref *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->seqno > y->seqno) - (x->seqno < y->seqno);
}

int lhead_collect(const struct lhead_snap *s, int64_t start, int64_t end,
                  struct lhead_ref **out, uint32_t *n)
{
    *out = NULL;
    *n = 0;
    if (s->n == 0)
        return 0;
    struct lhead_ref *v = vg_malloc(s->n * sizeof *v);
    if (!v)
        return VG_ENOMEM;
    uint32_t seen = 0, k = 0;
    for (struct lhead_page *pg = s->h->first; pg && seen < s->n; pg = pg->next) {
        const char *p = pg->data;
        /* Pages before the captured last one are final; in that one stop by count. */
        const char *stop = pg == s->last ? pg->data + pg->cap : pg->data + pg->used;
        while (seen < s->n && p < stop) {
            const char *at = p;
            struct lentry e;
            struct label meta[LENTRY_MAX_META];
            (void)lentry_decode(&p, pg->data + pg->cap, 0, &e, meta, NULL);
            if (e.t >= start && e.t < end)
                v[k++] = (struct lhead_ref){ e.t, seen, at, pg->data + pg->cap };
            seen++;
        }
        if (pg == s->last)
            break;
    }
    if (!s->ordered)
        qsort(v, k, sizeof *v, cmp_ref);
    if (k == 0) {
        vg_free(v);
        v = NULL;
    }
    *out = v;
    *n = k;
    return 0;
}

void lhead_entry(const struct lhead_ref *r, struct lentry *e, struct label *meta)
{
    const char *p = r->p;
    (void)lentry_decode(&p, r->end, 0, e, meta, NULL);
}
