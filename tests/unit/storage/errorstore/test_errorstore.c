/* Tests storage/errorstore/errorstore.c: recording merges occurrences into groups (count,
 * first/last seen, services, newest sample trace ids) and hour counts, everything
 * survives a reopen, max_groups refuses new groups and counts them, hours are read by
 * range, a corrupt record is an error naming the group, and allocation failure; expiry
 * deletes old groups with their hours and old hours of live groups, keeps the group
 * count right (max_groups admits new groups again), works across many write rounds, and
 * fails cleanly on a corrupt record or allocation failure. */
#include "../../../../storage/errorstore/errorstore.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/kv.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define H ERRORSTORE_HOUR_MS
#define T0 (1700000000000LL / H * H) /* on an hour boundary */

static char dir[64];
static struct errorstore *es;
static struct vg_err err;

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static struct errorstore *open_store(size_t max_groups)
{
    struct errorstore_opts o = { .dir = dir, .max_groups = max_groups, .no_sync = true };
    struct errorstore *s = errorstore_open(&o, &err);
    cr_assert_not_null(s, "%s", err.msg);
    return s;
}

static void setup(void)
{
    vg_err_clear(&err);
    snprintf(dir, sizeof dir, "/tmp/vigil-errorstore-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    es = open_store(10);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    errorstore_close(es);
    nftw(dir, rm, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(errorstore, .init = setup, .fini = teardown);

static struct errorstore_occurrence occ(uint64_t fp, const char *svc, const char *tid,
                                        int64_t t, uint64_t count)
{
    return (struct errorstore_occurrence){
        .fingerprint = fp, .type = VG_STR("KeyError"), .message = VG_STR("key 1"),
        .frames = VG_STR("at f"), .service = vg_str_c(svc), .trace_id = vg_str_c(tid),
        .t_ms = t, .count = count,
    };
}

static void record(const struct errorstore_occurrence *o, size_t n,
                   struct errorstore_record_result *res)
{
    cr_assert_eq(errorstore_record(es, o, n, res, &err), 0, "%s", err.msg);
}

Test(errorstore, groups_merge_and_survive_reopen)
{
    struct errorstore_occurrence o[4] = {
        occ(7, "cart", "t1", T0 + 10, 2),
        occ(7, "shop", "t2", T0 + H + 5, 1),
        occ(7, "cart", "", T0 + 2 * H, 3),
        occ(9, "cart", "t9", T0, 1),
    };
    struct errorstore_record_result res;
    record(o, 4, &res);
    cr_assert_eq(res.recorded, 7);
    cr_assert_eq(res.groups_created, 2);
    cr_assert_eq(res.dropped_full, 0);
    struct errorstore_occurrence later = occ(7, "cart", "t3", T0 + 2 * H + 1, 1);
    later.message = VG_STR("key 2"); /* the first message stays */
    record(&later, 1, &res);
    cr_assert_eq(res.groups_created, 0);

    errorstore_close(es);
    es = open_store(10);
    cr_assert_eq(errorstore_ngroups(es), 2);
    struct errorstore_groups gs;
    cr_assert_eq(errorstore_get(es, 7, &gs, &err), 0, "%s", err.msg);
    const struct errorstore_group *g = &gs.v[0];
    cr_assert_eq(g->fingerprint, 7);
    cr_assert_str_eq(g->type, "KeyError");
    cr_assert_str_eq(g->message, "key 1");
    cr_assert_str_eq(g->frames, "at f");
    cr_assert_eq(g->count, 7);
    cr_assert_eq(g->first_seen_ms, T0 + 10);
    cr_assert_eq(g->last_seen_ms, T0 + 2 * H + 1);
    cr_assert_eq(g->nservices, 2);
    cr_assert_str_eq(g->services[0], "cart");
    cr_assert_str_eq(g->services[1], "shop");
    cr_assert_eq(g->nsamples, 3);
    cr_assert_str_eq(g->samples[0].trace_id, "t3", "newest first");
    cr_assert_str_eq(g->samples[1].trace_id, "t2");
    cr_assert_str_eq(g->samples[2].trace_id, "t1");
    errorstore_groups_free(&gs);

    struct errorstore_hour *h;
    size_t n;
    cr_assert_eq(errorstore_hours(es, 7, T0, T0 + 3 * H, &h, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(h[0].start_ms, T0);
    cr_assert_eq(h[0].count, 2);
    cr_assert_eq(h[1].start_ms, T0 + H);
    cr_assert_eq(h[1].count, 1);
    cr_assert_eq(h[2].count, 4);
    vg_free(h);
    cr_assert_eq(errorstore_hours(es, 7, T0 + H + 10, T0 + H + 20, &h, &n, &err), 0);
    cr_assert_eq(n, 1, "the hour overlapping the range");
    cr_assert_eq(h[0].count, 1);
    vg_free(h);
    cr_assert_eq(errorstore_hours(es, 8, T0, T0 + 3 * H, &h, &n, &err), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(errorstore_hours(es, 7, T0 + 5, T0, &h, &n, &err), 0);
    cr_assert_eq(n, 0);

    cr_assert_eq(errorstore_list(es, &gs, &err), 0);
    cr_assert_eq(gs.n, 2);
    cr_assert_eq(gs.v[0].fingerprint, 7, "fingerprint order");
    cr_assert_eq(gs.v[1].fingerprint, 9);
    errorstore_groups_free(&gs);
    cr_assert_eq(errorstore_get(es, 8, &gs, &err), VG_ENOTFOUND);
    cr_assert(strstr(err.msg, "0000000000000008"), "%s", err.msg);
    errorstore_groups_free(&gs);
}

Test(errorstore, samples_and_services_bounded)
{
    char tid[ERRORSTORE_MAX_SERVICES + 3][8], svc[ERRORSTORE_MAX_SERVICES + 3][8];
    struct errorstore_occurrence o[ERRORSTORE_MAX_SERVICES + 3];
    for (size_t i = 0; i < ERRORSTORE_MAX_SERVICES + 3; i++) {
        snprintf(tid[i], 8, "t%zu", i);
        snprintf(svc[i], 8, "s%zu", i);
        o[i] = occ(1, svc[i], i < ERRORSTORE_MAX_SAMPLES + 3 ? tid[i] : "", T0 + (int64_t)i, 1);
    }
    struct errorstore_record_result res;
    record(o, ERRORSTORE_MAX_SERVICES + 3, &res);
    struct errorstore_groups gs;
    cr_assert_eq(errorstore_get(es, 1, &gs, &err), 0);
    cr_assert_eq(gs.v[0].nservices, ERRORSTORE_MAX_SERVICES);
    cr_assert_eq(gs.v[0].nsamples, ERRORSTORE_MAX_SAMPLES);
    cr_assert_str_eq(gs.v[0].samples[0].trace_id, "t7");
    cr_assert_eq(gs.v[0].samples[0].t_ms, T0 + 7);
    errorstore_groups_free(&gs);
}

Test(errorstore, max_groups)
{
    errorstore_close(es);
    es = open_store(2);
    struct errorstore_occurrence o[3] = { occ(1, "a", "", T0, 1), occ(2, "a", "", T0, 1),
                                          occ(3, "a", "", T0, 5) };
    struct errorstore_record_result res;
    record(o, 3, &res);
    cr_assert_eq(res.groups_created, 2);
    cr_assert_eq(res.dropped_full, 5);
    cr_assert_eq(res.recorded, 2);
    record(&o[0], 1, &res);
    cr_assert_eq(res.recorded, 1, "known groups still count when full");
    errorstore_close(es);
    es = open_store(2);
    record(&o[2], 1, &res);
    cr_assert_eq(res.dropped_full, 5, "the bound holds across a reopen");
}

/* Closes the store, writes a record for group 5 that does not decode, reopens. */
static void reopen_with_corrupt_group5(void)
{
    errorstore_close(es);
    es = NULL;
    struct kv *kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv);
    uint8_t k[9] = { 'G', 0, 0, 0, 0, 0, 0, 0, 5 };
    cr_assert_eq(kv_put(kv, k, 9, "\x01\x05", 2, false, &err), 0);
    kv_close(kv);
    es = open_store(10);
}

Test(errorstore, corrupt_record)
{
    reopen_with_corrupt_group5();
    struct errorstore_groups gs;
    cr_assert_eq(errorstore_get(es, 5, &gs, &err), VG_EIO);
    cr_assert(strstr(err.msg, "0000000000000005"), "%s", err.msg);
    errorstore_groups_free(&gs);
    cr_assert_eq(errorstore_list(es, &gs, &err), VG_EIO);
    errorstore_groups_free(&gs);
    struct errorstore_occurrence o = occ(5, "a", "", T0, 1);
    struct errorstore_record_result res;
    cr_assert_eq(errorstore_record(es, &o, 1, &res, &err), VG_EIO);
}

Test(errorstore, bad_options_and_allocation_failure)
{
    struct errorstore_opts o = { .dir = dir, .max_groups = 0 };
    cr_assert_null(errorstore_open(&o, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    struct errorstore_occurrence x = occ(1, "a", "t", T0, 1);
    struct errorstore_record_result res;
    for (uint64_t n = 1; n < 10; n++) {
        vg_alloc_fail_after(n);
        int rc = errorstore_record(es, &x, 1, &res, &err);
        vg_alloc_fail_after(0);
        if (rc == 0)
            break;
        cr_assert_eq(rc, VG_ENOMEM, "%s", err.msg);
        cr_assert_eq(errorstore_ngroups(es), 0, "nothing stored");
    }
    struct errorstore_groups gs;
    for (uint64_t n = 1; n < 10; n++) {
        vg_alloc_fail_after(n);
        int rc = errorstore_list(es, &gs, &err);
        vg_alloc_fail_after(0);
        errorstore_groups_free(&gs);
        if (rc == 0)
            break;
        cr_assert_eq(rc, VG_ENOMEM);
    }
    cr_assert_eq(errorstore_record(es, &x, 0, &res, &err), 0, "an empty batch is fine");
}

/* The fingerprints errorstore_list returns, in order, into fps (cap entries). */
static size_t list_fps(uint64_t *fps, size_t cap)
{
    struct errorstore_groups gs;
    cr_assert_eq(errorstore_list(es, &gs, &err), 0, "%s", err.msg);
    size_t n = gs.n;
    for (size_t i = 0; i < n && i < cap; i++)
        fps[i] = gs.v[i].fingerprint;
    errorstore_groups_free(&gs);
    return n;
}

static size_t nhours(uint64_t fp, int64_t *first)
{
    struct errorstore_hour *h;
    size_t n;
    cr_assert_eq(errorstore_hours(es, fp, 0, T0 + 1000 * H, &h, &n, &err), 0, "%s", err.msg);
    if (first)
        *first = n ? h[0].start_ms : -1;
    vg_free(h);
    return n;
}

static size_t expire(int64_t cutoff)
{
    size_t deleted = 99;
    cr_assert_eq(errorstore_expire(es, cutoff, &deleted, &err), 0, "%s", err.msg);
    return deleted;
}

Test(errorstore, expire_groups_and_old_hours)
{
    struct errorstore_occurrence o[6] = {
        occ(1, "a", "", T0 + 10, 1),         /* old: goes */
        occ(2, "a", "", T0, 1),              /* live, hours T0 .. T0+2H */
        occ(2, "a", "", T0 + H + 7, 2),
        occ(2, "a", "", T0 + 2 * H + 5, 3),
        occ(3, "a", "", T0 + H + H / 2, 1),  /* last seen exactly at the cutoff: stays */
        occ(4, "a", "", T0 + 5 * H, 1),
    };
    struct errorstore_record_result res;
    record(o, 6, &res);
    cr_assert_eq(errorstore_ngroups(es), 4);
    int64_t cutoff = T0 + H + H / 2;
    cr_assert_eq(expire(cutoff), 1);
    cr_assert_eq(errorstore_ngroups(es), 3);
    uint64_t fps[8];
    cr_assert_eq(list_fps(fps, 8), 3);
    cr_assert_eq(fps[0], 2);
    cr_assert_eq(fps[1], 3);
    cr_assert_eq(fps[2], 4);
    struct errorstore_groups gs;
    cr_assert_eq(errorstore_get(es, 1, &gs, &err), VG_ENOTFOUND);
    errorstore_groups_free(&gs);
    cr_assert_eq(nhours(1, NULL), 0, "a deleted group's hours go with it");
    int64_t first;
    cr_assert_eq(nhours(2, &first), 2, "hours before the cutoff's hour go");
    cr_assert_eq(first, T0 + H, "the cutoff's hour stays whole");
    cr_assert_eq(errorstore_get(es, 2, &gs, &err), 0);
    cr_assert_eq(gs.v[0].count, 6, "the group's own totals are kept");
    errorstore_groups_free(&gs);
    cr_assert_eq(nhours(3, NULL), 1);

    cr_assert_eq(expire(cutoff), 0, "nothing more to do");
    errorstore_close(es);
    es = open_store(10);
    cr_assert_eq(errorstore_ngroups(es), 3, "deletions are durable");
    cr_assert_eq(expire(T0 + 100 * H), 3);
    cr_assert_eq(errorstore_ngroups(es), 0);
    cr_assert_eq(list_fps(fps, 8), 0);
    cr_assert_eq(nhours(2, NULL) + nhours(4, NULL), 0);
    cr_assert_eq(expire(T0 + 100 * H), 0, "an empty store");
}

Test(errorstore, expire_makes_room_under_max_groups)
{
    errorstore_close(es);
    es = open_store(2);
    struct errorstore_occurrence o[3] = { occ(1, "a", "", T0, 4), occ(2, "a", "", T0 + 2 * H, 1),
                                          occ(3, "a", "", T0 + 2 * H, 1) };
    struct errorstore_record_result res;
    record(o, 3, &res);
    cr_assert_eq(res.dropped_full, 1);
    cr_assert_eq(expire(T0 + H), 1);
    record(&o[2], 1, &res);
    cr_assert_eq(res.groups_created, 1, "room again after expiry");
    cr_assert_eq(res.dropped_full, 0);
    struct errorstore_occurrence again = occ(1, "a", "", T0 + 3 * H, 1);
    record(&again, 1, &res);
    cr_assert_eq(res.dropped_full, 1, "full again: the bound is still kept");
    cr_assert_eq(expire(T0 + 3 * H), 2);
    record(&again, 1, &res);
    cr_assert_eq(res.groups_created, 1);
    struct errorstore_groups gs;
    cr_assert_eq(errorstore_get(es, 1, &gs, &err), 0);
    cr_assert_eq(gs.v[0].count, 1, "a group seen again starts afresh");
    cr_assert_eq(gs.v[0].first_seen_ms, T0 + 3 * H);
    errorstore_groups_free(&gs);
    cr_assert_eq(nhours(1, NULL), 1);
}

Test(errorstore, expire_in_many_rounds)
{
    enum { NG = 3000, NH = 5000 };
    errorstore_close(es);
    es = open_store(NG + 1);
    struct errorstore_occurrence *o = vg_malloc((NG + NH) * sizeof *o);
    cr_assert_not_null(o);
    for (size_t i = 0; i < NG; i++) /* even groups old, odd ones live; two hours each */
        o[i] = occ(i + 1, "a", "", (i % 2 ? T0 + 10 * H : T0) + (int64_t)(i % 3) * H, 1);
    for (size_t i = 0; i < NH; i++) /* one live group with many old hours */
        o[NG + i] = occ(1u << 20, "a", "", T0 - (int64_t)i * H, 1);
    o[NG].t_ms = T0 + 20 * H;
    struct errorstore_record_result res;
    record(o, NG + NH, &res);
    vg_free(o);
    cr_assert_eq(errorstore_ngroups(es), NG + 1);
    cr_assert_eq(expire(T0 + 5 * H), NG / 2);
    cr_assert_eq(errorstore_ngroups(es), NG / 2 + 1);
    uint64_t *fps = vg_malloc(NG * sizeof *fps);
    cr_assert_eq(list_fps(fps, NG), NG / 2 + 1);
    for (size_t i = 0; i < NG / 2; i++)
        cr_assert_eq(fps[i] % 2, 0, "the odd indexes (even fingerprints) live");
    vg_free(fps);
    cr_assert_eq(nhours(1u << 20, NULL), 1, "only the live hour of the big group is left");
}

Test(errorstore, expire_failures)
{
    struct errorstore_occurrence o[2] = { occ(1, "a", "", T0, 1), occ(2, "a", "", T0 + H, 1) };
    struct errorstore_record_result res;
    record(o, 2, &res);
    size_t deleted;
    int rc = VG_ENOMEM;
    for (uint64_t n = 1; n < 20 && rc != 0; n++) {
        vg_alloc_fail_after(n);
        rc = errorstore_expire(es, T0 + 1, &deleted, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "%d %s", rc, err.msg);
        uint64_t fps[4];
        cr_assert_eq(list_fps(fps, 4), errorstore_ngroups(es), "the count follows the data");
    }
    cr_assert_eq(rc, 0);
    cr_assert_eq(errorstore_ngroups(es), 1);

    reopen_with_corrupt_group5();
    cr_assert_eq(errorstore_expire(es, T0 + 2 * H, &deleted, &err), VG_EIO);
    cr_assert(strstr(err.msg, "0000000000000005"), "%s", err.msg);
    cr_assert_eq(deleted, 0, "group 2 sits in the round that failed");
    cr_assert_eq(errorstore_ngroups(es), 2);
}
