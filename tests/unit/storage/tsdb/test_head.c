/* Tests storage/tsdb/head.c: the labels hash map (lookups, growth, backward-shift
 * removal), chunk cutting at 120 samples and 2 h, the out-of-order buffer, lookups of
 * stored values, write-ahead bookkeeping and allocation failure. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/head.h"

#include <stdio.h>
#include <string.h>

static struct head_series *mk(struct head *h, int i)
{
    char lbl[32];
    int n = snprintf(lbl, sizeof lbl, "series-%d", i);
    struct head_series *s =
        head_create(h, h->next_id, lbl, (size_t)n, head_hash(lbl, (size_t)n), 1);
    cr_assert_not_null(s);
    return s;
}

static struct head_series *find(struct head *h, int i)
{
    char lbl[32];
    int n = snprintf(lbl, sizeof lbl, "series-%d", i);
    return head_lookup(h, lbl, (size_t)n, head_hash(lbl, (size_t)n));
}

Test(head, map_grows_and_survives_removals)
{
    struct head h;
    head_init(&h);
    for (int i = 0; i < 5000; i++)
        cr_assert_eq(mk(&h, i)->id, (uint64_t)i + 1);
    for (int i = 0; i < 5000; i += 3)
        head_remove(&h, find(&h, i));
    for (int i = 0; i < 5000; i++) {
        struct head_series *s = find(&h, i);
        if (i % 3 == 0) {
            cr_assert_null(s, "%d", i);
            cr_assert_null(head_by_id(&h, (uint64_t)i + 1));
        } else {
            cr_assert_not_null(s, "%d", i);
            cr_assert_eq(head_by_id(&h, s->id), s);
        }
    }
    cr_assert_eq(h.next_id, 5001, "ids are never reused");
    cr_assert_null(head_by_id(&h, 0));
    cr_assert_null(head_by_id(&h, 1u << 30));
    head_free(&h);
}

Test(head, chunks_are_cut_at_120_samples_and_2_hours)
{
    struct head h;
    head_init(&h);
    struct head_series *s = mk(&h, 1);
    struct head_node *cut;
    int cuts = 0;
    for (int i = 0; i < 250; i++) {
        cr_assert_eq(head_append(s, 1000 + i * 1000LL, i, 10 + (uint64_t)i, &cut), 0);
        cuts += cut != NULL;
    }
    cr_assert_eq(cuts, 2);
    cr_assert_eq(s->head.count, 10);
    cr_assert_eq(s->nodes->enc.count, 120);
    cr_assert_eq(s->nodes->mint, 1000 + 120 * 1000LL);
    cr_assert_eq(head_wal_min(s), 10, "the oldest node still needs record 10");
    /* A gap of 2 h cuts early. */
    cr_assert_eq(head_append(s, 1000 + 250 * 1000LL + HEAD_CHUNK_MAX_SPAN_MS, 1, 300, &cut), 0);
    cr_assert_not_null(cut);
    cr_assert_eq(cut->enc.count, 10);
    cr_assert_eq(head_mem_samples(s), 251);
    uint64_t bits;
    cr_assert(head_find(s, 1000 + 5 * 1000LL, &bits));
    double v = 5;
    cr_assert_eq(memcmp(&bits, &v, 8), 0);
    cr_assert_not(head_find(s, 1500, &bits));
    while (s->nodes)
        head_node_drop(s, s->nodes);
    cr_assert_eq(head_wal_min(s), 300);
    cr_assert_eq(s->min_t, 1000);
    head_free(&h);
}

Test(head, the_head_chunk_is_packed_every_step_and_reads_stay_exact)
{
    struct head h;
    head_init(&h);
    struct head_series *s = mk(&h, 1);
    struct head_node *cut;
    struct chunk_enc plain;
    chunk_enc_init(&plain);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(head_append(s, 1000 + i * 15000LL, i * 3.0, 1, &cut), 0);
        cr_assert_null(cut);
        cr_assert_eq(chunk_append(&plain, 1000 + i * 15000LL, i * 3.0), 0);
    }
    cr_assert_eq(s->head.packed, 2 * HEAD_PACK_STEP);
    cr_assert_eq(s->head.buf[2], 2);
    cr_assert_lt(s->head.cap * 3, plain.cap * 2, "packed %u bytes, plain %u", s->head.cap,
                 plain.cap);
    chunk_enc_free(&plain);
    cr_assert_eq(head_mint(s), 1000);
    uint64_t bits;
    for (int i = 0; i < 100; i++) {
        cr_assert(head_find(s, 1000 + i * 15000LL, &bits), "sample %d", i);
        double v = i * 3.0;
        cr_assert_eq(memcmp(&bits, &v, 8), 0, "sample %d", i);
    }
    struct head_samples a = { 0 };
    cr_assert_eq(head_collect(s, 1000 + 10 * 15000LL, 1000 + 89 * 15000LL, &a), 0);
    cr_assert_eq(a.n, 80);
    cr_assert_eq(a.v[0].v, 30.0);
    cr_assert_eq(a.v[79].t, 1000 + 89 * 15000LL);
    vg_free(a.v);
    struct head_node *n = head_freeze(s);
    cr_assert_not_null(n);
    size_t len;
    const unsigned char *b = chunk_bytes(&n->enc, &len);
    struct head_samples all = { 0 };
    cr_assert_eq(head_samples_from_chunk(&all, b, len, INT64_MIN, INT64_MAX), 0);
    cr_assert_eq(all.n, 100);
    cr_assert_eq(all.v[99].v, 297.0);
    vg_free(all.v);
    head_free(&h);
}

Test(head, ooo_buffer_stays_sorted_and_freezes_into_chunks)
{
    struct head h;
    head_init(&h);
    struct head_series *s = mk(&h, 1);
    struct head_node *cut;
    cr_assert_eq(head_append(s, 1000000, 0, 1, &cut), 0);
    for (int i = 0; i < 130; i++)
        cr_assert_eq(head_ooo_insert(s, 500000 - (i * 37 % 130) * 1000, i, 2 + (uint64_t)i), 0);
    cr_assert_eq(s->ooo->n, 130);
    for (uint32_t i = 1; i < s->ooo->n; i++)
        cr_assert_lt(s->ooo->v[i - 1].t, s->ooo->v[i].t);
    cr_assert_eq(head_wal_min(s), 1);
    cr_assert_eq(head_mem_min(s), 500000 - 129 * 1000);
    struct head_samples a = { 0 };
    cr_assert_eq(head_collect(s, INT64_MIN, INT64_MAX, &a), 0);
    cr_assert_eq(a.n, 131);
    head_samples_sort_unique(&a);
    cr_assert_eq(a.n, 131);
    vg_free(a.v);
    cr_assert_eq(head_freeze_ooo(s), 0);
    cr_assert_null(s->ooo);
    int nodes = 0;
    for (struct head_node *n = s->nodes; n; n = n->next) {
        nodes++;
        cr_assert_eq(n->kind, HEAD_NODE_OOO);
    }
    cr_assert_eq(nodes, 2, "120 + 10");
    uint64_t bits;
    cr_assert(head_find(s, 500000, &bits));
    head_free(&h);
}

Test(head, allocation_failure_marks_the_series_lost)
{
    struct head h;
    head_init(&h);
    struct head_series *s = mk(&h, 1);
    struct head_node *cut;
    vg_alloc_fail_after(1);
    cr_assert_eq(head_append(s, 1, 1, 42, &cut), VG_ENOMEM);
    cr_assert_eq(head_ooo_insert(s, 0, 1, 43), VG_ENOMEM);
    vg_alloc_fail_after(0);
    cr_assert(s->flags & HEAD_F_LOST);
    cr_assert_eq(head_wal_min(s), 42, "records from the loss on are kept");
    cr_assert(head_has_data(s));
    vg_alloc_fail_after(1);
    char lbl[] = "x";
    cr_assert_null(head_create(&h, h.next_id, lbl, 1, head_hash(lbl, 1), 1));
    vg_alloc_fail_after(0);
    head_free(&h);
}

Test(head, in_order_chunks_are_written_oldest_first)
{
    struct head h;
    head_init(&h);
    struct head_series *s = mk(&h, 1);
    struct head_node *cut;
    for (int i = 0; i < 241; i++)
        cr_assert_eq(head_append(s, i * 1000LL, i, 1, &cut), 0);
    struct head_node *newer = s->nodes, *older = newer->next;
    cr_assert_not_null(older);
    cr_assert(head_node_writable(older, 5));
    cr_assert_not(head_node_writable(newer, 5), "the older one is not written yet");
    older->writer = 5;
    cr_assert(head_node_writable(newer, 5), "same writer, same batch");
    cr_assert_not(head_node_writable(newer, 6), "another writer owns the older one");
    cr_assert_eq(head_ooo_insert(s, 500, 1, 2), 0);
    cr_assert_eq(head_freeze_ooo(s), 0);
    cr_assert(head_node_writable(s->nodes, 6), "out-of-order chunks: any time");
    head_free(&h);
}
