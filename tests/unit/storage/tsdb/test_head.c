/* Tests storage/tsdb/head.c: the labels hash map (lookups, growth, backward-shift
 * removal), the label-pair symbol table (sharing, release, bytes that are not pairs),
 * chunk cutting at 120 samples and 2 h, the out-of-order buffer, lookups of
 * stored values, write-ahead bookkeeping and allocation failure. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/head.h"
#include "../../../../storage/tsdb/labels.h"

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

/* Series {__name__="up", instance="host-<i>", job=<job>} in canonical encoding. */
static struct head_series *mk_labels(struct head *h, int i, const char *job,
                                     struct vg_buf *b)
{
    char inst[32];
    snprintf(inst, sizeof inst, "host-%d", i);
    struct label ls[] = {
        { vg_str_c("__name__"), vg_str_c("up") },
        { vg_str_c("instance"), vg_str_c(inst) },
        { vg_str_c("job"), vg_str_c(job) },
    };
    vg_buf_reset(b);
    labels_encode(ls, 3, b);
    cr_assert(!vg_buf_failed(b));
    return head_create(h, h->next_id, b->p, b->len, head_hash(b->p, b->len), 3);
}

Test(head, label_pairs_are_interned_and_released_with_their_last_series)
{
    struct head h;
    head_init(&h);
    struct vg_buf b;
    vg_buf_init(&b);
    struct head_series *s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = mk_labels(&h, i, i < 2 ? "api" : "db", &b);
        cr_assert_not_null(s[i]);
        cr_assert_eq(s[i]->npieces, 3);
    }
    /* __name__="up", four instances, two jobs. */
    cr_assert_eq(h.sym_count, 7);
    cr_assert_eq(s[0]->sym[0], s[3]->sym[0]);
    cr_assert_eq(s[0]->sym[2], s[1]->sym[2]);
    cr_assert_neq(s[0]->sym[2], s[2]->sym[2]);

    /* The bytes come back exactly, and lookups compare piece by piece. */
    mk_labels(&h, 1, "db", &b); /* a fifth series: host-1 in job db */
    cr_assert_eq(h.sym_count, 7);
    char out[128];
    cr_assert_leq(b.len, sizeof out);
    head_labels_copy(&h, head_by_id(&h, 5), out);
    cr_assert_eq(head_by_id(&h, 5)->lbl_len, b.len);
    cr_assert_arr_eq(out, b.p, b.len);
    cr_assert_eq(head_lookup(&h, b.p, b.len, head_hash(b.p, b.len)), head_by_id(&h, 5));
    char other[128];
    memcpy(other, b.p, b.len);
    other[b.len - 1] = 'x'; /* job="dx": same length, last piece differs */
    cr_assert_null(head_lookup(&h, other, b.len, head_hash(other, b.len)));

    /* Removing series frees the pairs only they used; ids are reused. */
    head_remove(&h, s[2]); /* host-2 */
    cr_assert_eq(h.sym_count, 6);
    head_remove(&h, s[3]); /* host-3, the last "db" user but series 5 */
    cr_assert_eq(h.sym_count, 5);
    head_remove(&h, head_by_id(&h, 5));
    cr_assert_eq(h.sym_count, 4); /* up, host-0, host-1, api */
    struct head_series *n = mk_labels(&h, 9, "web", &b);
    cr_assert_not_null(n);
    cr_assert_eq(h.sym_count, 6);
    cr_assert_lt(n->sym[1], 7, "a freed id is reused");
    head_labels_copy(&h, n, out);
    cr_assert_arr_eq(out, b.p, b.len);
    vg_buf_free(&b);
    head_free(&h);
}

Test(head, bytes_that_are_not_label_pairs_are_kept_as_one_piece)
{
    struct head h;
    head_init(&h);
    /* A valid pair followed by a length running past the end. */
    const char lbl[] = "\x01" "a" "\x01" "b" "\x05" "xy";
    size_t len = sizeof lbl - 1;
    struct head_series *s = head_create(&h, 1, lbl, len, head_hash(lbl, len), 2);
    cr_assert_not_null(s);
    cr_assert_eq(s->npieces, 2);
    char out[16];
    head_labels_copy(&h, s, out);
    cr_assert_arr_eq(out, lbl, len);
    cr_assert_eq(head_lookup(&h, lbl, len, head_hash(lbl, len)), s);
    /* No labels at all. */
    struct head_series *e = head_create(&h, 2, "", 0, head_hash("", 0), 0);
    cr_assert_not_null(e);
    cr_assert_eq(e->npieces, 0);
    cr_assert_eq(head_lookup(&h, "", 0, head_hash("", 0)), e);
    head_free(&h);
}

Test(head, failed_series_creation_keeps_no_symbols)
{
    struct head h;
    head_init(&h);
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_not_null(mk_labels(&h, 0, "api", &b));
    for (uint64_t k = 1; k < 20; k++) {
        vg_alloc_fail_after(k);
        struct head_series *s = mk_labels(&h, 1, "db", &b);
        vg_alloc_fail_after(0);
        if (s) {
            cr_assert_eq(h.sym_count, 5);
            head_remove(&h, s);
            break;
        }
        cr_assert_eq(h.sym_count, 3, "k=%llu", (unsigned long long)k);
    }
    cr_assert_eq(h.sym_count, 3);
    vg_buf_free(&b);
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

Test(head, a_full_head_chunk_is_sealed_and_cut_by_the_next_sample)
{
    struct head h;
    head_init(&h);
    struct head_series *s = mk(&h, 1);
    struct head_node *cut;
    for (int i = 0; i < HEAD_CHUNK_MAX_SAMPLES; i++)
        cr_assert_eq(head_append(s, 1000 + i * 15000LL, i * 3.0, 1, &cut), 0);
    cr_assert_eq(s->head.packed, HEAD_CHUNK_MAX_SAMPLES, "packed up to its last sample");
    cr_assert_lt(s->head.cap, 80, "120 counter samples in %u bytes", s->head.cap);
    cr_assert_eq(head_append(s, 1000 + 120 * 15000LL, 360.0, 2, &cut), 0);
    cr_assert_not_null(cut);
    size_t len;
    const unsigned char *b = chunk_bytes(&cut->enc, &len);
    cr_assert_eq(b, cut->enc.buf + 13, "written as packed, without encoding again");
    struct head_samples all = { 0 };
    cr_assert_eq(head_samples_from_chunk(&all, b, len, INT64_MIN, INT64_MAX), 0);
    cr_assert_eq(all.n, HEAD_CHUNK_MAX_SAMPLES);
    cr_assert_eq(all.v[119].v, 357.0);
    cr_assert_eq(all.v[119].t, 1000 + 119 * 15000LL);
    vg_free(all.v);
    cr_assert_eq(s->head.count, 1);
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
    /* Later chunks neither move that point forward nor hide an older record. */
    for (int i = 0; i < 121; i++)
        cr_assert_eq(head_append(s, 10 + i, 1, 50 + (uint64_t)i, &cut), 0);
    cr_assert_not_null(cut);
    cr_assert_eq(head_wal_min(s), 42);
    head_node_drop(s, cut);
    cr_assert_eq(head_wal_min(s), 42);
    cr_assert_eq(head_ooo_insert(s, 5, 1, 7), 0);
    cr_assert_eq(head_wal_min(s), 7);
    vg_alloc_fail_after(1);
    char lbl[] = "x";
    cr_assert_null(head_create(&h, h.next_id, lbl, 1, head_hash(lbl, 1), 1));
    vg_alloc_fail_after(0);
    cr_assert_null(head_create(&h, (uint64_t)HEAD_MAX_ID + 1, lbl, 1, head_hash(lbl, 1), 1),
                   "ids past 32 bits are refused");
    size_t big = HEAD_MAX_LABEL_BYTES;
    char *huge = vg_calloc(big, 1);
    cr_assert_not_null(huge);
    cr_assert_null(head_create(&h, h.next_id, huge, big, head_hash(huge, big), 1),
                   "label bytes past 24 bits are refused");
    vg_free(huge);
    cr_assert_eq(h.count, 1);
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

/* head_prefetch is a hint: every stage on an empty head, on hashes of absent series, on
 * slots whose series has another hash and on present series leaves lookups unchanged. */
Test(head, prefetch_changes_nothing)
{
    struct head h;
    head_init(&h);
    for (int stage = 0; stage < 4; stage++)
        head_prefetch(&h, 12345, stage); /* no map yet */
    struct vg_buf b;
    vg_buf_init(&b);
    for (int i = 0; i < 300; i++)
        mk_labels(&h, i, i % 2 ? "api" : "db", &b);
    for (int i = 0; i < 600; i++) {
        char inst[32];
        snprintf(inst, sizeof inst, "host-%d", i);
        struct label ls[3] = { { VG_STR("__name__"), VG_STR("up") },
                               { VG_STR("instance"), vg_str_c(inst) },
                               { VG_STR("job"), i % 2 ? VG_STR("api") : VG_STR("db") } };
        vg_buf_reset(&b);
        labels_encode(ls, 3, &b);
        uint64_t hv = head_hash(b.p, b.len);
        for (int stage = 0; stage < 4; stage++) {
            head_prefetch(&h, hv, stage);
            head_prefetch(&h, hv ^ 1, stage); /* a neighbouring slot, another hash */
        }
        struct head_series *s = head_lookup(&h, b.p, b.len, hv);
        if (i < 300)
            cr_assert(s && s->id == (uint64_t)i + 1, "%d", i);
        else
            cr_assert_null(s, "%d", i);
    }
    vg_buf_free(&b);
    head_free(&h);
}
