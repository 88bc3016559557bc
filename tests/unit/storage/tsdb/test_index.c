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
