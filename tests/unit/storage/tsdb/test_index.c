/* Tests storage/tsdb/index.c: id-set algebra, posting keys and the selection plan run
 * against postings written straight into a LevelDB (kv). */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set(struct index_ids *a, const uint64_t *v, size_t n)
{
    a->n = 0;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(index_ids_push(a, v[i]), 0);
}

Test(index, id_sets_sort_intersect_subtract)
{
    struct index_ids a = { 0 }, b = { 0 };
    set(&a, (uint64_t[]){ 5, 1, 3, 5, 9, 1 }, 6);
    index_ids_sort_unique(&a);
    cr_assert_eq(a.n, 4);
    cr_assert_eq(a.v[0], 1);
    cr_assert_eq(a.v[3], 9);
    set(&b, (uint64_t[]){ 3, 4, 9 }, 3);
    index_ids_intersect(&a, &b);
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.v[1], 9);
    set(&a, (uint64_t[]){ 1, 3, 5, 9 }, 4);
    index_ids_subtract(&a, &b);
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.v[0], 1);
    cr_assert_eq(a.v[1], 5);
    index_ids_free(&a);
    index_ids_free(&b);
    vg_alloc_fail_after(1);
    cr_assert_eq(index_ids_push(&a, 1), VG_ENOMEM);
    vg_alloc_fail_after(0);
}

static char dir[64];
static struct kv *kv;

static void put(const char *name, const char *value, uint64_t id)
{
    struct vg_buf k;
    vg_buf_init(&k);
    index_key(&k, vg_str_c(name), vg_str_c(value), id);
    struct vg_err err;
    cr_assert_eq(kv_put(kv, k.p, k.len, "", 0, false, &err), 0);
    vg_buf_free(&k);
}

static void setup(void)
{
    strcpy(dir, "/tmp/vg_index_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct vg_err err;
    kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv);
    /* A value containing 0x00's neighbour and one that prefixes another. */
    put("job", "a", 1);
    put("job", "a", 3);
    put("job", "ab", 2);
    put("job", "b", 4);
    put("env", "prod", 1);
    put("env", "prod", 2);
    put("env", "dev", 4);
}

static void teardown(void)
{
    kv_close(kv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(index, .init = setup, .fini = teardown);

static size_t sel(const char *spec[][3], size_t n, uint64_t *first)
{
    struct matcher *ms[4];
    struct vg_err err = { 0 };
    for (size_t i = 0; i < n; i++) {
        enum matcher_op op = !strcmp(spec[i][1], "=")    ? MATCH_EQ
                             : !strcmp(spec[i][1], "!=") ? MATCH_NEQ
                             : !strcmp(spec[i][1], "=~") ? MATCH_RE
                                                         : MATCH_NRE;
        ms[i] = matcher_new(op, vg_str_c(spec[i][0]), vg_str_c(spec[i][2]), &err);
        cr_assert_not_null(ms[i], "%s", err.msg);
    }
    struct index_ids out = { 0 };
    int rc = index_select(kv, ms, n, &out, &err);
    for (size_t i = 0; i < n; i++)
        matcher_free(ms[i]);
    size_t c = rc == 0 ? out.n : (size_t)-1;
    if (first && out.n)
        *first = out.v[0];
    index_ids_free(&out);
    return c;
}

Test(index, exact_value_does_not_match_a_longer_one)
{
    uint64_t id;
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "a" } }, 1, &id), 2);
    cr_assert_eq(id, 1);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "ab" } }, 1, &id), 1);
    cr_assert_eq(id, 2);
}

Test(index, plans_combine_positive_and_negative_matchers)
{
    uint64_t id;
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", "a.*" } }, 1, NULL), 3);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", "a.*" }, { "env", "!=", "prod" } }, 2,
                     &id),
                 1);
    cr_assert_eq(id, 3, "series 3 has no env: \"\" != \"prod\"");
    cr_assert_eq(sel((const char *[][3]){ { "env", "=", "prod" }, { "job", "!~", "ab|b" } }, 2,
                     &id),
                 1);
    cr_assert_eq(id, 1);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", ".+" }, { "env", "=", "" } }, 2, &id),
                 1);
    cr_assert_eq(id, 3);
    cr_assert_eq(sel((const char *[][3]){ { "job", "!=", "" } }, 1, NULL), 4);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "zzz" }, { "env", "=~", ".*" } }, 2,
                     NULL),
                 0);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", ".*" } }, 1, NULL), (size_t)-1,
                 "all matchers match the empty string");
}

static int collect(void *ctx, const char *s, size_t len)
{
    char *buf = ctx;
    strncat(buf, s, len);
    strcat(buf, ",");
    return 0;
}

Test(index, skip_scans_list_distinct_names_and_values)
{
    char buf[256] = "";
    struct vg_err err = { 0 };
    cr_assert_eq(index_label_names(kv, collect, buf, &err), 0);
    cr_assert_str_eq(buf, "env,job,");
    buf[0] = 0;
    cr_assert_eq(index_label_values(kv, VG_STR("job"), collect, buf, &err), 0);
    cr_assert_str_eq(buf, "a,ab,b,");
    buf[0] = 0;
    cr_assert_eq(index_label_values(kv, VG_STR("nope"), collect, buf, &err), 0);
    cr_assert_str_eq(buf, "");
}

Test(index, many_rejected_postings_are_skipped_by_seeking)
{
    for (uint64_t id = 10; id < 200; id++)
        put("big", "x", id);
    put("big", "y", 500);
    uint64_t id;
    cr_assert_eq(sel((const char *[][3]){ { "big", "=~", "y" } }, 1, &id), 1);
    cr_assert_eq(id, 500);
    cr_assert_eq(sel((const char *[][3]){ { "big", "=~", "x|y" } }, 1, NULL), 191);
}

/* Regex plans that narrow the scan (a literal prefix, a set of literals) must select
 * exactly what matching the regex against every value selects. */
Test(index, literal_prefix_and_literal_set_plans_match_every_value_scan)
{
    static const char *values[] = { "a",         "ab",        "abc",   "aac",  "b",
                                    "bc",        "c",         "a|b",   "x",    "host-0001:9100",
                                    "host-0042:9100", "host-1:9100", "HOST-7", "hot", "h", "aa" };
    enum { NV = sizeof values / sizeof values[0] };
    for (size_t i = 0; i < NV; i++) {
        put("v", values[i], 1000 + i);
        put("v", values[i], 2000 + i); /* two ids per value */
    }
    static const char *res[] = {
        "host-00[0-4][0-9]:9100", "host-.*", "host-0001:9100|x", "a|ab", "ab?", "ab*c",
        "a{2}", "(a|b)c", "h\\w+", "x|", "|x", "(?i)host.*", "ho[st]+.*", "a\\|b",
        "[|]a|b", "a(b|c)|x", "b|bc|c", "abc|zzz", "nope|nada", "a+", "h.", "\\x41|b",
        "a.c|b", "host-0001:9100",
    };
    for (size_t r = 0; r < sizeof res / sizeof res[0]; r++) {
        struct vg_err err = { 0 };
        struct matcher *m = matcher_new(MATCH_RE, VG_STR("v"), vg_str_c(res[r]), &err);
        cr_assert_not_null(m, "%s: %s", res[r], err.msg);
        size_t want = 0;
        for (size_t i = 0; i < NV; i++)
            want += matcher_matches(m, vg_str_c(values[i])) ? 2 : 0;
        struct index_ids out = { 0 };
        int rc = m->matches_empty ? -1 : index_select(kv, &m, 1, &out, &err);
        if (rc == 0) {
            cr_assert_eq(out.n, want, "%s: %zu ids, want %zu", res[r], out.n, want);
            for (size_t i = 0; i < out.n; i++) {
                uint64_t id = out.v[i], k = id % 1000;
                cr_assert(k < NV && matcher_matches(m, vg_str_c(values[k])), "%s: id %llu",
                          res[r], (unsigned long long)id);
                cr_assert(i == 0 || out.v[i - 1] < id, "%s: sorted and unique", res[r]);
            }
        }
        index_ids_free(&out);
        matcher_free(m);
    }
}

/* ---- packed postings blocks and index_pack ---- */

Test(index_block, round_trip_keeps_every_id)
{
    static const uint64_t v[] = { 1, 2, 3, 200, 201, 70000, (1ULL << 40) + 7, UINT64_MAX };
    for (size_t n = 1; n <= sizeof v / sizeof v[0]; n++) {
        struct vg_buf b;
        vg_buf_init(&b);
        index_block_encode(&b, v, n);
        cr_assert(!vg_buf_failed(&b));
        struct index_ids out = { 0 };
        struct vg_err err = { 0 };
        cr_assert_eq(index_ids_push(&out, 99), 0); /* decoding appends */
        cr_assert_eq(index_block_decode(b.p, b.len, v[n - 1], &out, &err), 0, "%s", err.msg);
        cr_assert_eq(out.n, n + 1);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(out.v[i + 1], v[i]);
        cr_assert_eq(index_entry_ids("Px\0y\1\0\0\0\0\0\0\0\5", 13, b.p, b.len), n);
        cr_assert_eq(index_entry_ids("Px\0y\0\0\0\0\0\0\0\0\5", 13, "", 0), 1);
        index_ids_free(&out);
        vg_buf_free(&b);
    }
}

/* Each malformed block is an error naming the offset, and leaves out as it was. */
Test(index_block, corrupt_blocks_are_rejected)
{
    static const struct {
        const char *p;
        size_t len;
        uint64_t last;
        const char *what;
    } bad[] = {
        { "", 0, 1, "count" },                     /* empty */
        { "\x00", 1, 1, "range" },                 /* zero count */
        { "\x81\x40", 2, 1, "range" },             /* 8193 > INDEX_BLOCK_MAX_IDS */
        { "\x80\x00", 2, 1, "count" },             /* overlong count */
        { "\x02\x05", 2, 5, "truncated" },         /* one id of two */
        { "\x02\x05\x00", 3, 5, "increasing" },    /* zero delta */
        { "\x01\x85\x00", 3, 5, "truncated" },     /* overlong id */
        { "\x01\x05\x07", 3, 5, "trailing" },      /* bytes after the ids */
        { "\x01\x05", 2, 6, "last id" },           /* key says another last id */
        { "\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01", 12, 0, "overflow" },
        { "\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11, 0, "truncated" }, /* > 64 bits */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct index_ids out = { 0 };
        struct vg_err err = { 0 };
        cr_assert_eq(index_ids_push(&out, 42), 0);
        cr_assert_eq(index_block_decode(bad[i].p, bad[i].len, bad[i].last, &out, &err),
                     VG_EINVAL, "case %zu", i);
        cr_assert(strstr(err.msg, bad[i].what) && strstr(err.msg, "offset"), "case %zu: %s", i,
                  err.msg);
        cr_assert_eq(out.n, 1, "case %zu", i);
        index_ids_free(&out);
    }
    cr_assert_eq(index_entry_ids("Px\0y\1\0\0\0\0\0\0\0\5", 13, "\x80", 1), 0);
}

Test(index_block, decode_out_of_memory)
{
    struct vg_buf b;
    vg_buf_init(&b);
    index_block_encode(&b, (uint64_t[]){ 4, 9 }, 2);
    struct index_ids out = { 0 };
    struct vg_err err = { 0 };
    vg_alloc_fail_after(1);
    int rc = index_block_decode(b.p, b.len, 9, &out, &err);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    cr_assert_eq(out.n, 0);
    vg_buf_free(&b);
}

/* live fn: drops the id in ctx. */
static void drop_id(void *ctx, struct index_ids *ids)
{
    uint64_t gone = *(const uint64_t *)ctx;
    size_t w = 0;
    for (size_t i = 0; i < ids->n; i++)
        if (ids->v[i] != gone)
            ids->v[w++] = ids->v[i];
    ids->n = w;
}

/* Counts posting entries of each kind. */
static void kinds(size_t *one, size_t *blocks)
{
    *one = *blocks = 0;
    struct kv_iter *it = kv_iter_new(kv, NULL, true);
    for (kv_iter_seek(it, "P", 1); kv_iter_has_prefix(it, "P", 1); kv_iter_next(it)) {
        size_t kl;
        const char *k = kv_iter_key(it, &kl);
        (k[kl - 9] ? blocks : one)[0]++;
    }
    kv_iter_free(it);
}

Test(index, pack_keeps_selections_and_drops_dead_ids)
{
    uint64_t none = 0, gone = 2, id;
    size_t one, blocks, packed;
    struct vg_err err = { 0 };
    cr_assert_eq(index_pack(kv, drop_id, &none, &packed, &err), 0, "%s", err.msg);
    cr_assert_eq(packed, 5);
    kinds(&one, &blocks);
    cr_assert_eq(one, 0);
    cr_assert_eq(blocks, 5);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "a" } }, 1, &id), 2);
    cr_assert_eq(id, 1);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "ab" } }, 1, &id), 1);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", "a.*" }, { "env", "!=", "prod" } }, 2,
                     &id),
                 1);
    cr_assert_eq(id, 3);
    char buf[256] = "";
    cr_assert_eq(index_label_values(kv, VG_STR("job"), collect, buf, &err), 0);
    cr_assert_str_eq(buf, "a,ab,b,", "each value once although it has two entry kinds");
    buf[0] = 0;
    cr_assert_eq(index_label_names(kv, collect, buf, &err), 0);
    cr_assert_str_eq(buf, "env,job,");
    /* Nothing new: nothing rewritten. New one-id keys merge with the blocks. */
    cr_assert_eq(index_pack(kv, drop_id, &none, &packed, &err), 0);
    cr_assert_eq(packed, 0);
    put("job", "a", 2);
    put("job", "a", 7);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "a" } }, 1, &id), 4);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", "a|b" } }, 1, &id), 5);
    /* Series 2 is gone: its ids leave every block; "ab" (only 2) loses its entry. */
    cr_assert_eq(index_pack(kv, drop_id, &gone, &packed, &err), 0);
    cr_assert_eq(packed, 3);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "a" } }, 1, &id), 3);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "ab" } }, 1, &id), 0);
    cr_assert_eq(sel((const char *[][3]){ { "env", "=", "prod" } }, 1, &id), 1);
    buf[0] = 0;
    cr_assert_eq(index_label_values(kv, VG_STR("job"), collect, buf, &err), 0);
    cr_assert_str_eq(buf, "a,b,");
}

Test(index, pack_splits_large_lists_into_blocks)
{
    uint64_t none = 0, id;
    size_t n = 2 * INDEX_BLOCK_MAX_IDS + 5, one, blocks;
    struct kv_batch *b = kv_batch_new();
    struct vg_buf k;
    vg_buf_init(&k);
    for (uint64_t i = 1; i <= n; i++) {
        vg_buf_reset(&k);
        index_key(&k, VG_STR("big"), VG_STR("x"), i * 3);
        kv_batch_put(b, k.p, k.len, "", 0);
    }
    struct vg_err err = { 0 };
    cr_assert_eq(kv_write(kv, b, false, &err), 0);
    kv_batch_free(b);
    vg_buf_free(&k);
    cr_assert_eq(index_pack(kv, drop_id, &none, NULL, &err), 0, "%s", err.msg);
    kinds(&one, &blocks);
    cr_assert_eq(one, 0);
    cr_assert_eq(blocks, 5 + 3);
    struct matcher *m = matcher_new(MATCH_EQ, VG_STR("big"), VG_STR("x"), &err);
    struct index_ids out = { 0 };
    cr_assert_eq(index_select(kv, &m, 1, &out, &err), 0);
    cr_assert_eq(out.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(out.v[i], (i + 1) * 3);
    matcher_free(m);
    index_ids_free(&out);
    cr_assert_eq(sel((const char *[][3]){ { "big", "=~", "x|y" } }, 1, &id), n);
}

Test(index, corrupt_block_fails_the_selection)
{
    char key[] = "Pjob\0a\1\0\0\0\0\0\0\0\7";
    struct vg_err err = { 0 };
    uint64_t none = 0;
    cr_assert_eq(kv_put(kv, key, sizeof key - 1, "\x02\x07", 2, false, &err), 0);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "a" } }, 1, NULL), (size_t)-1);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", "a|zz" } }, 1, NULL), (size_t)-1);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=~", ".+" } }, 1, NULL), (size_t)-1);
    cr_assert_eq(index_pack(kv, drop_id, &none, NULL, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "postings block"), "%s", err.msg);
    /* The pair's one-id keys are still there. */
    cr_assert_eq(kv_delete(kv, key, sizeof key - 1, false, &err), 0);
    cr_assert_eq(sel((const char *[][3]){ { "job", "=", "a" } }, 1, NULL), 2);
}
