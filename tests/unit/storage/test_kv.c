/* Tests storage/kv.c: the LevelDB wrapper (open, get/put/delete, atomic batches,
 * iterators, snapshots, compaction, sizes) and its failure paths (unusable directory,
 * missing keys, allocation failure). */
#include <criterion/criterion.h>

#include "../../../storage/base/vg_alloc.h"
#include "../../../storage/kv.h"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
