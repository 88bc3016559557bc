/* Tests storage/kv.c: the LevelDB wrapper (open, get/put/delete, atomic batches,
 * iterators, snapshots, compaction, sizes, kv_sync and the periodic kv-sync thread) and
 * its failure paths (unusable directory, missing keys, allocation failure). */
#include <criterion/criterion.h>

#include "../../../storage/base/vg_alloc.h"
#include "../../../storage/kv.h"

#include <dirent.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMPDIR_PREFIX "vg_kv"
#include "tmpdir_fixture.h"

TestSuite(kv, .init = mkdir_tmp, .fini = rm_tmp);

static struct kv *open_db(void)
{
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    return kv;
}

Test(kv, put_get_delete_round_trip)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    struct vg_buf v;
    vg_buf_init(&v);
    cr_assert_eq(kv_put(kv, "a", 1, "one\0x", 5, true, &err), 0);
    cr_assert_eq(kv_get(kv, NULL, "a", 1, &v, &err), 0);
    cr_assert_eq(v.len, 5);
    cr_assert_eq(memcmp(v.p, "one\0x", 5), 0);
    cr_assert_eq(kv_delete(kv, "a", 1, false, &err), 0);
    cr_assert_eq(kv_get(kv, NULL, "a", 1, &v, &err), VG_ENOTFOUND);
    cr_assert_eq(err.code, VG_ENOTFOUND);
    cr_assert_str_eq(kv_path(kv), dir);
    vg_buf_free(&v);
    kv_close(kv);
    kv_close(NULL);
}

Test(kv, batch_is_atomic_and_reusable)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    struct kv_batch *b = kv_batch_new();
    cr_assert_not_null(b);
    kv_batch_put(b, "k1", 2, "v1", 2);
    kv_batch_put(b, "k2", 2, "v2", 2);
    kv_batch_delete(b, "k1", 2);
    cr_assert_eq(kv_batch_count(b), 3);
    cr_assert_eq(kv_batch_bytes(b), 10);
    cr_assert_eq(kv_write(kv, b, true, &err), 0);
    struct vg_buf v;
    vg_buf_init(&v);
    cr_assert_eq(kv_get(kv, NULL, "k1", 2, &v, &err), VG_ENOTFOUND, "later delete wins");
    cr_assert_eq(kv_get(kv, NULL, "k2", 2, &v, &err), 0);
    kv_batch_clear(b);
    cr_assert_eq(kv_batch_count(b), 0);
    kv_batch_put(b, "k3", 2, "", 0);
    cr_assert_eq(kv_write(kv, b, false, &err), 0);
    cr_assert_eq(kv_get(kv, NULL, "k3", 2, &v, &err), 0);
    cr_assert_eq(v.len, 0);
    vg_buf_free(&v);
    kv_batch_free(b);
    kv_batch_free(NULL);
    kv_close(kv);
}

/* A batch that grew past 64 KiB gives its buffer back when cleared (a pooled batch
 * would otherwise keep its largest write resident), and stays usable. */
/* glibc's counters say nothing under AddressSanitizer, whose allocator replaces malloc. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KV_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define KV_TEST_ASAN 1
#endif
#if defined(__GLIBC__) && !defined(KV_TEST_ASAN)
#define KV_TEST_MALLINFO 1
#endif

Test(kv, cleared_large_batch_releases_its_buffer)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    struct kv_batch *b = kv_batch_new();
    cr_assert_not_null(b);
    static char val[4096];
    memset(val, 'x', sizeof val);
    char key[16];
    for (int i = 0; i < 256; i++) { /* 1 MiB of values */
        int kl = snprintf(key, sizeof key, "big%04d", i);
        kv_batch_put(b, key, (size_t)kl, val, sizeof val);
    }
#ifdef KV_TEST_MALLINFO
    struct mallinfo2 m = mallinfo2();
    size_t before = m.uordblks + m.hblkhd; /* heap and mmapped blocks in use */
#endif
    kv_batch_clear(b);
#ifdef KV_TEST_MALLINFO
    m = mallinfo2();
    size_t after = m.uordblks + m.hblkhd;
    cr_assert_lt(after + (512u << 10), before, "in use before %zu, after %zu", before, after);
#endif
    cr_assert_eq(kv_batch_count(b), 0);
    cr_assert_eq(kv_batch_bytes(b), 0);
    kv_batch_put(b, "small", 5, "v", 1);
    cr_assert_eq(kv_write(kv, b, false, &err), 0, "%s", err.msg);
    struct vg_buf v;
    vg_buf_init(&v);
    cr_assert_eq(kv_get(kv, NULL, "small", 5, &v, &err), 0);
    cr_assert_eq(kv_get(kv, NULL, "big0000", 7, &v, &err), VG_ENOTFOUND, "cleared puts are gone");
    /* A small batch keeps its buffer: clearing it changes nothing but the counts. */
    kv_batch_clear(b);
    kv_batch_put(b, "small2", 6, "v", 1);
    cr_assert_eq(kv_write(kv, b, false, &err), 0, "%s", err.msg);
    cr_assert_eq(kv_get(kv, NULL, "small2", 6, &v, &err), 0);
    vg_buf_free(&v);
    kv_batch_free(b);
    kv_close(kv);
}

Test(kv, iterators_seek_walk_both_ways_and_match_prefixes)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    const char *keys[] = { "P\x00" "a", "P\x01", "Pb", "Q", "W1", "W2" };
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(kv_put(kv, keys[i], i < 1 ? 3 : strlen(keys[i]), "v", 1, false, &err), 0);
    struct kv_iter *it = kv_iter_new(kv, NULL, true);
    cr_assert_not_null(it);
    int n = 0;
    for (kv_iter_seek(it, "P", 1); kv_iter_has_prefix(it, "P", 1); kv_iter_next(it))
        n++;
    cr_assert_eq(n, 3);
    size_t kl;
    cr_assert(kv_iter_valid(it));
    cr_assert_eq(memcmp(kv_iter_key(it, &kl), "Q", 1), 0);
    kv_iter_prev(it);
    const char *k = kv_iter_key(it, &kl);
    cr_assert_eq(kl, 2);
    cr_assert_eq(memcmp(k, "Pb", 2), 0);
    size_t vl;
    cr_assert_eq(memcmp(kv_iter_value(it, &vl), "v", 1), 0);
    kv_iter_seek_last(it);
    k = kv_iter_key(it, &kl);
    cr_assert_eq(memcmp(k, "W2", 2), 0);
    kv_iter_seek_first(it);
    k = kv_iter_key(it, &kl);
    cr_assert_eq(kl, 3);
    kv_iter_seek(it, "Z", 1);
    cr_assert_not(kv_iter_valid(it));
    cr_assert_not(kv_iter_has_prefix(it, "Z", 1));
    cr_assert_eq(kv_iter_error(it, &err), 0);
    kv_iter_free(it);
    kv_iter_free(NULL);
    kv_close(kv);
}

/* kv_delete_prefix takes every key under the prefix, across its batches of 4,096, and
 * nothing beside it. */
Test(kv, delete_prefix_removes_exactly_the_prefix)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    struct kv_batch *b = kv_batch_new();
    char key[16];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(key, sizeof key, "p%05d", i);
        kv_batch_put(b, key, (size_t)n, "v", 1);
    }
    kv_batch_put(b, "o", 1, "v", 1);
    kv_batch_put(b, "q", 1, "v", 1);
    kv_batch_put(b, "p", 1, "v", 1); /* the prefix itself is under it too */
    cr_assert_eq(kv_write(kv, b, false, &err), 0, "%s", err.msg);
    kv_batch_free(b);
    cr_assert_eq(kv_delete_prefix(kv, "p", 1, &err), 0, "%s", err.msg);
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    char seen[8] = { 0 };
    size_t n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it) && n < sizeof seen - 1; kv_iter_next(it)) {
        size_t klen;
        seen[n++] = kv_iter_key(it, &klen)[0];
    }
    kv_iter_free(it);
    cr_assert_str_eq(seen, "oq");
    cr_assert_eq(kv_delete_prefix(kv, "zz", 2, &err), 0, "nothing to delete is fine");
    kv_close(kv);
}

Test(kv, snapshots_keep_their_view)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    cr_assert_eq(kv_put(kv, "x", 1, "old", 3, false, &err), 0);
    struct kv_snapshot *snap = kv_snapshot_new(kv);
    cr_assert_not_null(snap);
    cr_assert_eq(kv_put(kv, "x", 1, "new", 3, false, &err), 0);
    cr_assert_eq(kv_put(kv, "y", 1, "y", 1, false, &err), 0);
    struct vg_buf v;
    vg_buf_init(&v);
    cr_assert_eq(kv_get(kv, snap, "x", 1, &v, &err), 0);
    cr_assert_str_eq(v.p, "old");
    cr_assert_eq(kv_get(kv, NULL, "x", 1, &v, &err), 0);
    cr_assert_str_eq(v.p, "new");
    struct kv_iter *it = kv_iter_new(kv, snap, false);
    int n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    cr_assert_eq(n, 1, "y was written after the snapshot");
    kv_iter_free(it);
    kv_snapshot_free(kv, snap);
    kv_snapshot_free(kv, NULL);
    vg_buf_free(&v);
    kv_close(kv);
}

Test(kv, data_survives_reopen_and_compaction_drops_deleted_bytes)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    char val[1000];
    uint32_t x = 12345;
    struct kv_batch *b = kv_batch_new();
    for (int i = 0; i < 2000; i++) {
        for (size_t j = 0; j < sizeof val; j++) {
            x = x * 1103515245u + 12345u; /* poorly compressible */
            val[j] = (char)(x >> 24);
        }
        char key[16];
        int kl = snprintf(key, sizeof key, "C%06d", i);
        kv_batch_put(b, key, (size_t)kl, val, sizeof val);
    }
    cr_assert_eq(kv_write(kv, b, true, &err), 0);
    kv_compact_range(kv, NULL, 0, NULL, 0);
    uint64_t before = kv_approximate_size(kv, "C", 1, "D", 1);
    cr_assert_gt(before, 1000000, "size %lu", (unsigned long)before);
    kv_batch_clear(b);
    for (int i = 0; i < 2000; i++) {
        char key[16];
        int kl = snprintf(key, sizeof key, "C%06d", i);
        kv_batch_delete(b, key, (size_t)kl);
    }
    cr_assert_eq(kv_write(kv, b, true, &err), 0);
    kv_batch_free(b);
    kv_put(kv, "keep", 4, "1", 1, true, &err);
    kv_close(kv);

    kv = open_db();
    struct vg_buf v;
    vg_buf_init(&v);
    cr_assert_eq(kv_get(kv, NULL, "keep", 4, &v, &err), 0);
    kv_compact_range(kv, "C", 1, "D", 1);
    uint64_t after = kv_approximate_size(kv, "C", 1, "D", 1);
    cr_assert_lt(after, before / 10, "after %lu before %lu", (unsigned long)after,
                 (unsigned long)before);
    vg_buf_free(&v);
    kv_close(kv);
}

Test(kv, unusable_directory_is_an_io_error_naming_the_path)
{
    char path[128];
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(path, sizeof path, "%s/file/db", dir);
    struct vg_err err = { 0 };
    cr_assert_null(kv_open(path, NULL, &err));
    cr_assert_eq(err.code, VG_EIO);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    cr_assert_null(kv_open("", NULL, &err));
    cr_assert_eq(err.code, VG_EINVAL);
}

Test(kv, second_open_of_a_locked_database_fails)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    cr_assert_null(kv_open(dir, NULL, &err));
    cr_assert_eq(err.code, VG_EIO);
    cr_assert_not_null(strstr(err.msg, "lock"), "%s", err.msg);
    kv_close(kv);
}

Test(kv, options_are_honoured)
{
    struct kv_opts o = { .cache_bytes = 1 << 20, .write_buffer_bytes = 1 << 20,
                         .bloom_bits_per_key = -1, .no_compression = true,
                         .max_open_files = 64, .block_bytes = 16 << 10 };
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(dir, &o, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    cr_assert_eq(kv_put(kv, "a", 1, "b", 1, false, &err), 0);
    kv_close(kv);
}

/* Bytes on disk of 4000 similar entries written with the given block size. */
static uint64_t stored_bytes(size_t block_bytes)
{
    struct kv_opts o = { .block_bytes = block_bytes, .bloom_bits_per_key = -1 };
    struct vg_err err = { 0 };
    char sub[96];
    snprintf(sub, sizeof sub, "%s/b%zu", dir, block_bytes);
    struct kv *kv = kv_open(sub, &o, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    for (unsigned i = 0; i < 4000; i++) {
        char k[16], v[64];
        snprintf(k, sizeof k, "k%06u", i);
        snprintf(v, sizeof v, "job=api,instance=host-%05u:9100,path=/v1/%u", i / 40, i % 7);
        cr_assert_eq(kv_put(kv, k, strlen(k), v, strlen(v), false, &err), 0);
    }
    kv_compact_range(kv, NULL, 0, NULL, 0);
    uint64_t n = kv_approximate_size(kv, "k", 1, "l", 1);
    kv_close(kv);
    return n;
}

Test(kv, bigger_blocks_compress_similar_entries_better)
{
    uint64_t small = stored_bytes(1024), big = stored_bytes(64 << 10);
    cr_assert_gt(small, 0);
    cr_assert_lt(big, small, "64 KiB blocks %llu bytes, 1 KiB blocks %llu",
                 (unsigned long long)big, (unsigned long long)small);
}

Test(kv, allocation_failures_are_reported_not_crashes)
{
    struct vg_err err = { 0 };
    vg_alloc_fail_after(1);
    cr_assert_null(kv_open(dir, NULL, &err));
    cr_assert_eq(err.code, VG_ENOMEM);
    cr_assert_null(kv_batch_new());
    vg_alloc_fail_after(0);

    struct kv *kv = open_db();
    cr_assert_eq(kv_put(kv, "a", 1, "value", 5, false, &err), 0);
    struct vg_buf v;
    vg_buf_init(&v);
    vg_alloc_fail_after(1);
    cr_assert_null(kv_iter_new(kv, NULL, true));
    cr_assert_null(kv_snapshot_new(kv));
    cr_assert_eq(kv_get(kv, NULL, "a", 1, &v, &err), VG_ENOMEM);
    vg_alloc_fail_after(0);
    cr_assert_eq(kv_get(kv, NULL, "a", 1, &v, &err), 0);
    vg_buf_free(&v);
    kv_close(kv);
}

/* ---- kv_sync and the kv-sync thread ---- */

/* A sync round appends one record to LevelDB's log: a 7-byte record header and an empty
 * batch (8-byte sequence, 4-byte count). */
#define SYNC_RECORD_BYTES 19

/* Bytes in the database's write-ahead log files (NNNNNN.log; not the info log "LOG"). */
static long long wal_bytes(const char *path)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d);
    long long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".log") != 0)
            continue;
        char f[256];
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        struct stat st;
        cr_assert_eq(stat(f, &st), 0);
        n += st.st_size;
    }
    closedir(d);
    return n;
}

/* Threads of this process (criterion runs each test in a process of its own). */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static struct kv *open_periodic(int64_t interval_ms)
{
    struct kv_opts o = { .sync_interval_ms = interval_ms };
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(dir, &o, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    return kv;
}

static uint64_t syncs_of(const struct kv *kv)
{
    struct kv_sync_stats st;
    kv_sync_stats(kv, &st);
    cr_assert_eq(st.failures, 0);
    return st.syncs;
}

/* Waits up to 5 s for the kv-sync thread to pass `than` syncs. */
static uint64_t wait_syncs_above(const struct kv *kv, uint64_t than)
{
    for (int i = 0; i < 500 && syncs_of(kv) <= than; i++)
        sleep_ms(10);
    return syncs_of(kv);
}

Test(kv, sync_appends_one_empty_record_to_the_log_and_keeps_data)
{
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    cr_assert_eq(kv_put(kv, "a", 1, "1", 1, false, &err), 0);
    long long before = wal_bytes(dir);
    cr_assert_gt(before, 0);
    cr_assert_eq(kv_sync(kv, &err), 0, "%s", err.msg);
    cr_assert_eq(kv_sync(kv, &err), 0, "%s", err.msg);
    cr_assert_eq(wal_bytes(dir), before + 2 * SYNC_RECORD_BYTES);
    cr_assert_eq(syncs_of(kv), 2);
    /* The empty batches are no entries: the data and the next write are as before. */
    cr_assert_eq(kv_put(kv, "b", 1, "2", 1, false, &err), 0);
    kv_close(kv);
    kv = open_db();
    struct vg_buf v;
    vg_buf_init(&v);
    cr_assert_eq(kv_get(kv, NULL, "a", 1, &v, &err), 0);
    cr_assert_str_eq(vg_buf_cstr(&v), "1");
    cr_assert_eq(kv_get(kv, NULL, "b", 1, &v, &err), 0);
    cr_assert_str_eq(vg_buf_cstr(&v), "2");
    struct kv_iter *it = kv_iter_new(kv, NULL, true);
    size_t n = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it))
        n++;
    cr_assert_eq(n, 2);
    kv_iter_free(it);
    vg_buf_free(&v);
    kv_close(kv);
}

Test(kv, periodic_thread_syncs_unsynced_writes_and_skips_idle_rounds)
{
    struct kv *kv = open_periodic(10);
    struct vg_err err = { 0 };
    sleep_ms(100);
    cr_assert_eq(syncs_of(kv), 0, "nothing written: no round syncs");

    cr_assert_eq(kv_put(kv, "a", 1, "1", 1, false, &err), 0);
    uint64_t n = wait_syncs_above(kv, 0);
    cr_assert_geq(n, 1, "the thread synced the unsynced write");
    sleep_ms(100);
    cr_assert_eq(syncs_of(kv), n, "idle rounds do not sync");

    /* Synced writes need no round either. */
    cr_assert_eq(kv_put(kv, "b", 1, "2", 1, true, &err), 0);
    sleep_ms(100);
    cr_assert_eq(syncs_of(kv), n);

    struct kv_batch *b = kv_batch_new();
    kv_batch_put(b, "c", 1, "3", 1);
    cr_assert_eq(kv_write(kv, b, false, &err), 0);
    cr_assert_gt(wait_syncs_above(kv, n), n, "the next unsynced write is synced too");
    kv_batch_free(b);
    kv_close(kv);
}

Test(kv, close_stops_the_thread_at_once_and_syncs_what_is_left)
{
    /* Warm LevelDB's own background thread (one per process, never stopped) so that
     * only the kv-sync thread comes and goes below. */
    struct kv *kv = open_db();
    struct vg_err err = { 0 };
    cr_assert_eq(kv_put(kv, "a", 1, "1", 1, false, &err), 0);
    kv_compact_range(kv, NULL, 0, NULL, 0);
    kv_close(kv);
    int threads = thread_count();
    size_t live = vg_alloc_live_bytes();

    kv = open_periodic(60000);
    cr_assert_eq(thread_count(), threads + 1, "one kv-sync thread");
    cr_assert_eq(kv_put(kv, "b", 1, "2", 1, false, &err), 0);
    long long before = wal_bytes(dir);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kv_close(kv);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(secs, 5.0, "close waited %.1f s for a 60 s interval", secs);
    cr_assert_eq(thread_count(), threads, "the kv-sync thread is gone");
    cr_assert_eq(vg_alloc_live_bytes(), live, "nothing of the kv is left on the heap");
    cr_assert_eq(wal_bytes(dir), before + SYNC_RECORD_BYTES, "close made the final sync");

    /* Nothing unsynced: close adds nothing to the log. */
    kv = open_periodic(60000);
    cr_assert_eq(kv_put(kv, "c", 1, "3", 1, true, &err), 0);
    before = wal_bytes(dir);
    kv_close(kv);
    cr_assert_eq(wal_bytes(dir), before);
}
