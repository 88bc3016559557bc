/* trace_filter: see trace_filter.h. Each part is an array of 512-bit blocks (8 words,
 * one cache line); an id picks a block with the low bits of its hash and sets 4 bits
 * chosen by 9-bit fields of a second hash. Parts hold 64 ids per block (8 bits an id:
 * about 3% false "maybe" when full). */
#include "trace_filter.h"

#include "../base/vg_alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define WORDS_PER_BLOCK 8
#define IDS_PER_BLOCK 64
#define MIN_BLOCKS ((uint64_t)1 << 11) /* 128 KiB: 131,072 ids */
#define GROWTH 4
#define MAX_FIRST_BLOCKS ((uint64_t)1 << 20)

struct part {
    _Atomic uint64_t *w;
    uint64_t nblocks; /* a power of two */
    uint64_t cap;     /* ids it takes before the next part starts */
    _Atomic uint64_t n;
};

struct trace_filter {
    struct part parts[TRACE_FILTER_PARTS];
    _Atomic size_t nparts;
    size_t max_parts;
    atomic_bool ready, overflow;
    pthread_mutex_t mu; /* adding a part */
};

static bool part_init(struct part *p, uint64_t nblocks)
{
    /* calloc: pages stay unmapped until ids land in them */
    p->w = vg_calloc(nblocks * WORDS_PER_BLOCK, sizeof *p->w);
    p->nblocks = nblocks;
    p->cap = nblocks * IDS_PER_BLOCK;
    atomic_init(&p->n, 0);
    return p->w != NULL;
}

struct trace_filter *trace_filter_new(uint64_t expect)
{
    return trace_filter_new_parts(expect, TRACE_FILTER_PARTS);
}

struct trace_filter *trace_filter_new_parts(uint64_t expect, size_t max_parts)
{
    struct trace_filter *f = vg_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->max_parts = max_parts < 1 ? 1 : max_parts > TRACE_FILTER_PARTS ? TRACE_FILTER_PARTS
                                                                      : max_parts;
    uint64_t nb = MIN_BLOCKS;
    /* (at most 64 MiB to start: the store's trace count is a sum that a damaged
     * counter record could make absurd, and later parts grow as ids come) */
    while (nb * IDS_PER_BLOCK < 2 * expect && nb < MAX_FIRST_BLOCKS)
        nb *= 2;
    if (!part_init(&f->parts[0], nb)) {
        vg_free(f);
        return NULL;
    }
    atomic_init(&f->nparts, 1);
    atomic_init(&f->ready, false);
    atomic_init(&f->overflow, false);
    pthread_mutex_init(&f->mu, NULL);
    return f;
}

void trace_filter_free(struct trace_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < TRACE_FILTER_PARTS; i++)
        vg_free((void *)f->parts[i].w);
    pthread_mutex_destroy(&f->mu);
    vg_free(f);
}

/* Trace ids are usually random, but nothing makes them so (tests, some SDKs): mixed. */
static uint64_t id_hash(const uint8_t *tid)
{
    uint64_t a, b;
    memcpy(&a, tid, 8);
    memcpy(&b, tid + 8, 8);
    uint64_t h = (a ^ 0x243f6a8885a308d3ULL) * 0x9e3779b97f4a7c15ULL;
    h ^= (h >> 31) ^ b;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    return h ^ (h >> 29);
}

static uint64_t second_hash(uint64_t h)
{
    h = (h ^ (h >> 33)) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

static _Atomic uint64_t *block_of(const struct part *p, uint64_t h)
{
    return p->w + (h & (p->nblocks - 1)) * WORDS_PER_BLOCK;
}

/* The part new ids go to, adding one when the newest is full; NULL past the last. */
static struct part *part_for_add(struct trace_filter *f)
{
    size_t n = atomic_load_explicit(&f->nparts, memory_order_acquire);
    struct part *p = &f->parts[n - 1];
    if (atomic_fetch_add_explicit(&p->n, 1, memory_order_relaxed) < p->cap)
        return p;
    pthread_mutex_lock(&f->mu);
    n = atomic_load_explicit(&f->nparts, memory_order_relaxed);
    p = &f->parts[n - 1];
    if (atomic_load_explicit(&p->n, memory_order_relaxed) >= p->cap) {
        if (n == f->max_parts || !part_init(&f->parts[n], p->nblocks * GROWTH)) {
            atomic_store(&f->overflow, true);
            pthread_mutex_unlock(&f->mu);
            return NULL;
        }
        atomic_store_explicit(&f->nparts, n + 1, memory_order_release);
        p = &f->parts[n];
    }
    atomic_fetch_add_explicit(&p->n, 1, memory_order_relaxed);
    pthread_mutex_unlock(&f->mu);
    return p;
}

void trace_filter_add(struct trace_filter *f, const uint8_t *tid)
{
    if (atomic_load_explicit(&f->overflow, memory_order_relaxed))
        return;
    struct part *p = part_for_add(f);
    if (!p)
        return;
    uint64_t h = id_hash(tid), g = second_hash(h);
    _Atomic uint64_t *b = block_of(p, h);
    for (int i = 0; i < 4; i++, g >>= 9)
        atomic_fetch_or_explicit(&b[(g >> 6) & 7], (uint64_t)1 << (g & 63),
                                 memory_order_relaxed);
}

bool trace_filter_maybe(const struct trace_filter *f, const uint8_t *tid)
{
    if (!atomic_load_explicit(&f->ready, memory_order_acquire) ||
        atomic_load_explicit(&f->overflow, memory_order_relaxed))
        return true;
    uint64_t h = id_hash(tid), g0 = second_hash(h);
    size_t n = atomic_load_explicit(&f->nparts, memory_order_acquire);
    for (size_t k = n; k-- > 0;) {
        const _Atomic uint64_t *b = block_of(&f->parts[k], h);
        bool all = true;
        uint64_t g = g0;
        for (int i = 0; all && i < 4; i++, g >>= 9)
            all = (atomic_load_explicit(&b[(g >> 6) & 7], memory_order_relaxed) >> (g & 63)) & 1;
        if (all)
            return true;
    }
    return false;
}

void trace_filter_set_ready(struct trace_filter *f)
{
    atomic_store_explicit(&f->ready, true, memory_order_release);
}

size_t trace_filter_bytes(const struct trace_filter *f)
{
    size_t n = atomic_load_explicit(&f->nparts, memory_order_acquire), bytes = sizeof *f;
    for (size_t k = 0; k < n; k++)
        bytes += f->parts[k].nblocks * WORDS_PER_BLOCK * sizeof(uint64_t);
    return bytes;
}
