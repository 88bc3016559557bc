/* Tests storage/spanstore/spanstore_flush.c: flushes written by a writer's kick keep
 * their scratch and the head's memory for the next flush, and a timer's round gives all
 * of it back; terms big enough for lists in several pieces, for the radix sort and for
 * a slab of their own read back complete and newest first after several flushes;
 * allocation failures at every step of a flush that reuses its scratch lose no posting
 * (the frozen generation is written by the next flush) and leak nothing. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/spanstore/spanstore_int.h"
#include "span_fixture.h"

#include <stdio.h>
#include <stdlib.h>

static char dir[64];
static struct spanstore *ss;

static void open_store(size_t flush_postings)
{
    struct spanstore_opts o;
    spanstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 0; /* no threads: a writer's kick flushes in the writer */
    o.no_sync = true;
    o.index_flush_postings = flush_postings;
    struct vg_err err = { 0 };
    ss = spanstore_open(&o, &err);
    cr_assert_not_null(ss, "%s", err.msg);
}

static void setup(void)
{
    strcpy(dir, "/tmp/vg_spanf_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    spanstore_close(ss);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(spanflush, .init = setup, .fini = teardown, .timeout = 120);

/* Traces first..last (1-based), a second apart inside one hour (trace t + 3000 a
 * nanosecond after trace t), 20 to a write, 12 postings each: web root
 * "GET /" -> db "query"; every trace has its own http.route (a packed term) while the
 * service, name and status terms hold a posting per trace (lists). */
static void corpus(int first, int last)
{
    static struct fx_span f[40];
    struct span s[40];
    size_t n = 0;
    for (int t = first; t <= last; t++) {
        int64_t t0 = FX_T0 - FX_T0 % FX_HOUR + (int64_t)(t % 3000) * 1000 * FX_MS + t / 3000;
        fx_span(&f[n], (uint64_t)t, 1, 0, "web", "GET /", t0, 10 * FX_MS, SPAN_STATUS_OK);
        snprintf(f[n].route, sizeof f[n].route, "/item/%d", t);
        fx_set_attr(&f[n], 2, "http.route", f[n].route);
        n++;
        fx_span(&f[n], (uint64_t)t, 2, 1, "db", "query", t0 + FX_MS, 5 * FX_MS,
                SPAN_STATUS_OK);
        n++;
        if (n == 40 || t == last) {
            for (size_t i = 0; i < n; i++)
                s[i] = f[i].s;
            struct spanstore_write_result res;
            struct vg_err err = { 0 };
            cr_assert_eq(spanstore_write(ss, s, n, &res, &err), 0, "%s", err.msg);
            cr_assert_eq(res.accepted, n, "%s", res.first_reject);
            n = 0;
        }
    }
}

/* Traces of service web found (checked newest first), with http.route `route` when
 * given; searched a third of the corpus's hour at a time (a search returns at most
 * 10,000). */
static size_t count_web(const char *route)
{
    struct matcher *m = NULL;
    struct spanstore_attr_filter af;
    if (route) {
        struct vg_err merr = { 0 };
        m = matcher_new(MATCH_EQ, VG_STR("http.route"), vg_str_c(route), &merr);
        cr_assert_not_null(m, "%s", merr.msg);
        af = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_SPAN, m };
    }
    size_t n = 0;
    for (int64_t k = 0; k < 3; k++) {
        struct spanstore_query q;
        spanstore_query_init(&q);
        q.service = VG_STR("web");
        q.limit = 10000;
        q.from_ns = FX_T0 - FX_T0 % FX_HOUR + k * 1000000 * FX_MS;
        q.to_ns = q.from_ns + 1000000 * FX_MS - 1;
        if (route) {
            q.attrs = &af;
            q.nattrs = 1;
        }
        struct spanstore_search_result r;
        struct vg_err err = { 0 };
        cr_assert_eq(spanstore_search(ss, &q, &r, &err), 0, "%s", err.msg);
        for (size_t i = 1; i < r.n; i++)
            cr_assert_geq(r.traces[i - 1].start_ns, r.traces[i].start_ns, "newest first");
        cr_assert_lt(r.n, 10000);
        n += r.n;
        spanstore_search_free(&r);
    }
    matcher_free(m);
    return n;
}

/* A timer's round: the flush a writer did not ask for. */
static int timer_flush(void)
{
    struct vg_err err = { 0 };
    atomic_store(&ss->flush_wanted, false);
    return spanstore_flush_index(ss, &err);
}

Test(spanflush, kicked_flushes_keep_memory_and_an_idle_round_gives_it_back)
{
    open_store(36000); /* a flush every 3,000 traces: the web term gets a slab of its own */
    corpus(1, 12000);
    cr_assert_not_null(ss->flush_scratch, "kept after a writer's flush");
    cr_assert_gt(span_head_bytes(ss->head), 0);
    cr_assert_geq(ss->nsegs, 3);
    cr_assert_eq(count_web(NULL), 12000);
    cr_assert_eq(count_web("/item/4321"), 1);
    size_t live = vg_alloc_live_bytes();
    cr_assert_eq(timer_flush(), 0);
    cr_assert_null(ss->flush_scratch, "freed by an idle round");
    cr_assert_eq(span_head_bytes(ss->head), 0, "the head keeps nothing for reuse");
    cr_assert_lt(vg_alloc_live_bytes(), live);
    cr_assert_eq(timer_flush(), 0, "a round with nothing to write");
    cr_assert_eq(count_web(NULL), 12000);
    cr_assert_eq(count_web("/item/17"), 1);
    corpus(12001, 12100); /* writes and flushes go on after the idle round */
    cr_assert_eq(timer_flush(), 0);
    cr_assert_eq(count_web(NULL), 12100);
}

Test(spanflush, allocation_failures_in_a_reusing_flush_lose_nothing_and_leak_nothing)
{
    size_t live0 = vg_alloc_live_bytes();
    open_store(1 << 30); /* flushes only when asked */
    corpus(1, 1500);
    atomic_store(&ss->flush_wanted, true); /* a writer's kick: the scratch is kept */
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_flush_index(ss, &err), 0, "%s", err.msg);
    cr_assert_not_null(ss->flush_scratch);
    int failed = 0, t = 1500;
    for (uint64_t n = 1; n < 400; n += n < 40 ? 1 : 23) {
        corpus(t + 1, t + 60);
        t += 60;
        atomic_store(&ss->flush_wanted, true);
        vg_alloc_fail_after(n);
        int rc = spanstore_flush_index(ss, &err);
        vg_alloc_fail_after(0);
        if (rc) {
            cr_assert_eq(rc, VG_ENOMEM, "%s", err.msg);
            failed++;
        }
    }
    cr_assert_gt(failed, 0);
    atomic_store(&ss->flush_wanted, true);
    cr_assert_eq(spanstore_flush_index(ss, &err), 0, "%s", err.msg); /* the frozen one */
    cr_assert_eq(spanstore_flush_index(ss, &err), 0, "%s", err.msg); /* the active one */
    cr_assert_eq(count_web(NULL), (size_t)t);
    cr_assert_eq(count_web("/item/1600"), 1);
    spanstore_close(ss);
    ss = NULL;
    cr_assert_eq(vg_alloc_live_bytes(), live0, "leaked");
    open_store(1 << 30); /* what was written reads back after a restart */
    cr_assert_eq(count_web(NULL), (size_t)t);
}

/* Opens <dir>/index alone (the store closed). */
static struct kv *open_index_db(void)
{
    char path[96];
    snprintf(path, sizeof path, "%s/index", dir);
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(path, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    return kv;
}

/* Every key of the index database in order: each segment's record is its last key
 * (after its packed blocks and lists), so a flush wrote keys in order. Returns the
 * number of segments; *last is the newest segment's id. */
static size_t check_record_last(struct kv *kv, uint64_t *last)
{
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    size_t segs = 0;
    uint64_t cur = 0;
    bool open = false; /* keys of segment cur seen, its record not yet */
    for (kv_iter_seek(it, "G", 1); kv_iter_has_prefix(it, "G", 1); kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        uint64_t seg;
        cr_assert(span_index_seg_of(k, klen, &seg));
        if (open)
            cr_assert_eq(seg, cur, "segment %llu has keys after segment %llu's lists but "
                         "no record", (unsigned long long)seg, (unsigned long long)cur);
        cur = seg;
        if (span_index_seg_is_rec(k, klen)) {
            cr_assert_eq(klen, SPAN_INDEX_SEG_REC_LEN, "records are written last now");
            open = false;
            segs++;
            *last = seg;
        } else {
            open = true;
        }
    }
    cr_assert_not(open, "the newest segment has a record");
    kv_iter_free(it);
    return segs;
}

/* Segments are written in key order with their record last; a store whose records
 * sit first (the form stores before this one wrote) opens with every segment, and the
 * keys of a flush that never wrote its record are deleted at open while the chunks'
 * replay gives the postings back. */
Test(spanflush, records_last_old_form_records_load_and_unfinished_flushes_go)
{
    open_store(2000);
    corpus(1, 900);
    spanstore_close(ss);
    ss = NULL;
    struct kv *kv = open_index_db();
    uint64_t last = 0;
    size_t segs = check_record_last(kv, &last);
    cr_assert_geq(segs, 3, "the first record and the flushes");
    /* rewrite every record in the old form ('G' seg), and drop the newest segment's
     * record as a crash before it would */
    struct vg_buf key, old;
    vg_buf_init(&key);
    vg_buf_init(&old);
    struct kv_batch *kb = kv_batch_new();
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    for (kv_iter_seek(it, "G", 1); kv_iter_has_prefix(it, "G", 1); kv_iter_next(it)) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        uint64_t seg;
        if (!span_index_seg_is_rec(k, klen) || !span_index_seg_of(k, klen, &seg))
            continue;
        kv_batch_delete(kb, k, klen);
        if (seg == last)
            continue;
        vg_buf_reset(&old);
        span_index_seg_key(&old, seg);
        kv_batch_put(kb, old.p, old.len, v, vlen);
    }
    kv_iter_free(it);
    struct vg_err err = { 0 };
    cr_assert_eq(kv_write(kv, kb, true, &err), 0, "%s", err.msg);
    kv_batch_free(kb);
    kv_close(kv);
    open_store(2000);
    cr_assert_eq(ss->nsegs, segs - 1, "old-form records load; the unfinished one does not");
    cr_assert_eq(count_web(NULL), 900, "every trace found (the replay refilled the head)");
    cr_assert_eq(count_web("/item/7"), 1);
    spanstore_close(ss);
    ss = NULL;
    kv = open_index_db();
    it = kv_iter_new(kv, NULL, false);
    size_t of_last = 0;
    for (kv_iter_seek(it, "G", 1); kv_iter_has_prefix(it, "G", 1); kv_iter_next(it)) {
        size_t klen;
        uint64_t seg;
        const char *k = kv_iter_key(it, &klen);
        of_last += span_index_seg_of(k, klen, &seg) && seg == last;
    }
    cr_assert_eq(of_last, 0, "the unfinished segment's keys were deleted");
    kv_iter_free(it);
    kv_close(kv);
    vg_buf_free(&key);
    vg_buf_free(&old);
}
