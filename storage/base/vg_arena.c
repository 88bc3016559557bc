/* vg_arena: see vg_arena.h. Blocks form a singly linked list; a request larger than half
 * a block gets a block of its own so small allocations keep filling the current one. */
#include "vg_arena.h"

#include "vg_alloc.h"

#include <stdint.h>
#include <string.h>

struct block {
    struct block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct vg_arena {
    struct block *head;
    size_t block_size;
    size_t total;
    size_t limit;
};

struct vg_arena *vg_arena_new(size_t block_size)
{
    struct vg_arena *a = vg_calloc(1, sizeof *a);
    if (a)
        a->block_size = block_size ? block_size : 16384;
    return a;
}

static void free_blocks(struct block *b)
{
    while (b) {
        struct block *n = b->next;
        vg_free(b);
        b = n;
    }
}

void vg_arena_free(struct vg_arena *a)
{
    if (!a)
        return;
    free_blocks(a->head);
    vg_free(a);
}

void vg_arena_reset(struct vg_arena *a)
{
    if (!a || !a->head)
        return;
    /* Keep the last block in the list (the first one allocated) for reuse. */
    struct block *b = a->head, *keep = NULL;
    while (b->next)
        b = b->next;
    keep = b;
    for (b = a->head; b != keep;) {
        struct block *n = b->next;
        vg_free(b);
        b = n;
    }
    keep->used = 0;
    a->head = keep;
    a->total = keep->size;
}

void vg_arena_set_limit(struct vg_arena *a, size_t max_bytes)
{
    a->limit = max_bytes;
}

size_t vg_arena_get_limit(const struct vg_arena *a)
{
    return a->limit;
}

void *vg_arena_alloc(struct vg_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    struct block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > a->block_size / 2 ? n : a->block_size;
        if (a->limit && a->total + size > a->limit)
            return NULL;
        struct block *nb = vg_malloc(sizeof *nb + size);
        if (!nb)
            return NULL;
        nb->size = size;
        nb->used = 0;
        a->total += size;
        if (b && size == n && b->size - b->used >= 64) {
            /* A dedicated big block goes behind the current one so it stays current. */
            nb->next = b->next;
            b->next = nb;
            nb->used = n;
            return nb->data;
        }
        nb->next = b;
        a->head = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void *vg_arena_calloc(struct vg_arena *a, size_t n)
{
    void *p = vg_arena_alloc(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

char *vg_arena_strndup(struct vg_arena *a, const char *s, size_t n)
{
    char *d = vg_arena_alloc(a, n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t vg_arena_used(const struct vg_arena *a)
{
    return a->total;
}
