/* Tests storage/tsdb/labels.c: sorting, duplicate detection, ordering, the canonical
 * encoding (round trip and rejection of every non-canonical form), hash stability. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/labels.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }

Test(labels, sort_and_get)
{
    struct label ls[] = { L("job", "api"), L("__name__", "up"), L("instance", "a:9"),
                          L("a", ""), L("zone", "eu") };
    size_t n = sizeof ls / sizeof ls[0];
    labels_sort(ls, n);
    const char *want[] = { "__name__", "a", "instance", "job", "zone" };
    for (size_t i = 0; i < n; i++)
        cr_assert(vg_str_eq_c(ls[i].name, want[i]), "position %zu", i);
    cr_assert(vg_str_eq_c(labels_get(ls, n, "job"), "api"));
    cr_assert(vg_str_eq_c(labels_get(ls, n, "__name__"), "up"));
    cr_assert(vg_str_eq_c(labels_get(ls, n, "zone"), "eu"));
    struct vg_str empty = labels_get(ls, n, "a");
    cr_assert_not_null(empty.p, "present with empty value is not absent");
    cr_assert_eq(empty.len, 0);
    struct vg_str missing = labels_get(ls, n, "jo");
    cr_assert_null(missing.p);
    cr_assert_null(labels_get(NULL, 0, "x").p);
}

Test(labels, duplicate_names_are_named)
{
    struct label ls[] = { L("b", "1"), L("a", "x"), L("b", "2") };
    labels_sort(ls, 3);
    struct vg_err err = { 0 };
    cr_assert_eq(labels_check_unique(ls, 3, &err), VG_EINVAL);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, "\"b\""), "%s", err.msg);
    cr_assert_eq(labels_check_unique(ls, 2, &err), 0);
    cr_assert_eq(labels_check_unique(NULL, 0, NULL), 0);
}

Test(labels, compare_orders_by_name_value_length)
{
    struct label a[] = { L("a", "1"), L("b", "2") };
    struct label b[] = { L("a", "1"), L("b", "3") };
    struct label c[] = { L("a", "1") };
    struct label d[] = { L("a", "1"), L("c", "0") };
    cr_assert_eq(labels_cmp(a, 2, a, 2), 0);
    cr_assert_eq(labels_cmp(a, 2, b, 2), -1);
    cr_assert_eq(labels_cmp(b, 2, a, 2), 1);
    cr_assert_eq(labels_cmp(c, 1, a, 2), -1);
    cr_assert_eq(labels_cmp(a, 2, c, 1), 1);
    cr_assert_eq(labels_cmp(a, 2, d, 2), -1);
    cr_assert_eq(labels_cmp(NULL, 0, NULL, 0), 0);
}

Test(labels, encode_decode_round_trip)
{
    static char big[300];
    memset(big, 'v', sizeof big);
    struct label ls[] = { L("__name__", "http_requests_total"), L("code", "200"),
                          L("empty", ""), { VG_STR("long"), { big, sizeof big } },
                          { VG_STR("nul"), { "a\0b", 3 } } };
    size_t n = sizeof ls / sizeof ls[0];
    struct vg_buf b;
    vg_buf_init(&b);
    labels_encode(ls, n, &b);
    cr_assert_not(vg_buf_failed(&b));
    cr_assert_eq((unsigned char)b.p[0], 8);
    cr_assert_eq(memcmp(b.p + 1, "__name__", 8), 0);

    struct label out[8];
    struct vg_err err = { 0 };
    cr_assert_eq(labels_decode(b.p, b.len, out, 8, &err), (int)n);
    cr_assert_eq(labels_cmp(ls, n, out, n), 0);
    cr_assert_eq(labels_hash(ls, n), labels_hash(out, n));
    cr_assert_eq(labels_decode(b.p, b.len, out, n - 1, &err), VG_ETOOLARGE);
    cr_assert_eq(labels_decode("", 0, out, 8, &err), 0);

    struct vg_buf again;
    vg_buf_init(&again);
    labels_encode(out, n, &again);
    cr_assert_eq(again.len, b.len);
    cr_assert_eq(memcmp(again.p, b.p, b.len), 0);
    vg_buf_free(&again);

    /* Every truncation is malformed (the cut never falls on a label boundary here,
     * except at the end of a whole label). */
    for (size_t cut = 1; cut < b.len; cut++) {
        char *p = vg_malloc(cut);
        memcpy(p, b.p, cut);
        int rc = labels_decode(p, cut, out, 8, &err);
        cr_assert(rc == VG_EINVAL || (rc > 0 && rc < (int)n), "cut %zu gave %d", cut, rc);
        vg_free(p);
    }
    vg_buf_free(&b);
}

Test(labels, decode_rejects_non_canonical)
{
    struct label out[4];
    struct vg_err err = { 0 };
    /* Overlong varint for a length of 1. */
    cr_assert_eq(labels_decode("\x81\x00" "a\x01x", 5, out, 4, &err), VG_EINVAL);
    /* Length past the end. */
    cr_assert_eq(labels_decode("\x05" "ab", 3, out, 4, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "past end"), "%s", err.msg);
    /* Varint over 64 bits. */
    cr_assert_eq(labels_decode("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10, out, 4, &err),
                 VG_EINVAL);
    /* Names out of order, and a repeated name. */
    cr_assert_eq(labels_decode("\x01" "b\x00\x01" "a\x00", 6, out, 4, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "sorted"), "%s", err.msg);
    cr_assert_eq(labels_decode("\x01" "a\x00\x01" "a\x00", 6, out, 4, &err), VG_EINVAL);
    /* A name without its value. */
    cr_assert_eq(labels_decode("\x01" "a", 2, out, 4, &err), VG_EINVAL);
}

Test(labels, hash_is_stable_and_discriminating)
{
    struct label a[] = { L("__name__", "up"), L("job", "node") };
    struct label b[] = { L("__name__", "up"), L("job", "nod"), };
    struct label c[] = { L("__name__", "upj"), L("ob", "node") };
    struct label d[] = { { VG_STR("a"), { "\0", 1 } } };
    struct label e[] = { L("a", "") };
    /* Pinned values: the hash is persisted, so changing it is a format change. */
    uint64_t ha = labels_hash(a, 2);
    cr_assert_eq(ha, labels_hash(a, 2));
    cr_assert_neq(ha, labels_hash(b, 2));
    cr_assert_neq(ha, labels_hash(c, 2));
    cr_assert_neq(labels_hash(d, 1), labels_hash(e, 1));
    cr_assert_neq(labels_hash(NULL, 0), labels_hash(e, 1));
    printf("labels_hash pins: %016llx %016llx\n", (unsigned long long)ha,
           (unsigned long long)labels_hash(NULL, 0));
    cr_assert_eq(ha, 0xaa3003ecff016974ULL, "hash of {__name__=up,job=node} changed: %016llx",
                 (unsigned long long)ha);
    cr_assert_eq(labels_hash(NULL, 0), 0xe9e0033e3badaf36ULL);
}

/* Both sorting paths (insertion sort up to 16 labels, qsort beyond) give name order, and
 * labels_encode writes the same bytes label by label as in one go, including 2-byte
 * length varints. */
Test(labels, sort_paths_and_encode_lengths)
{
    for (size_t n = 0; n <= 40; n++) {
        struct label ls[40];
        char names[40][8];
        for (size_t i = 0; i < n; i++) {
            snprintf(names[i], sizeof names[i], "n%02zu", (i * 17) % 41);
            ls[i] = (struct label){ vg_str_c(names[i]), VG_STR("v") };
        }
        labels_sort(ls, n);
        for (size_t i = 1; i < n; i++)
            cr_assert_lt(vg_str_cmp(ls[i - 1].name, ls[i].name), 0, "n %zu at %zu", n, i);
    }
    char big[300];
    memset(big, 'x', sizeof big);
    struct label ls[] = { { VG_STR("a"), { big, 200 } }, { { big, 130 }, VG_STR("") } };
    struct vg_buf one, each;
    vg_buf_init(&one);
    vg_buf_init(&each);
    labels_encode(ls, 2, &one);
    labels_encode(&ls[0], 1, &each);
    labels_encode(&ls[1], 1, &each);
    labels_encode(ls, 0, &each);
    cr_assert_eq(one.len, 1 + 1 + 2 + 200 + 2 + 130 + 1);
    cr_assert_eq(one.len, each.len);
    cr_assert_eq(memcmp(one.p, each.p, one.len), 0);
    cr_assert_eq((unsigned char)one.p[2], 0xc8); /* 200 = 0xc8 0x01 */
    cr_assert_eq((unsigned char)one.p[3], 0x01);
    struct label back[2];
    cr_assert_eq(labels_decode(one.p, one.len, back, 2, NULL), 2);
    cr_assert_eq(labels_cmp(back, 2, ls, 2), 0);
    vg_buf_free(&one);
    vg_buf_free(&each);
}
