/* Tests storage/base/vg_sort.c: the radix sort against qsort on random keys, stability,
 * keys that differ only in the high word, small inputs and allocation failure. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_sort.h"

static int cmp_key_then_index(const void *a, const void *b)
{
    const struct vg_sort_key *x = a, *y = b;
    if (x->hi != y->hi)
        return x->hi < y->hi ? -1 : 1;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i); /* stable: input order among equal keys */
}

static uint64_t next_rand(uint64_t *s) /* xorshift64*: reproducible without libc rand */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Sorts n random keys (masked per word) with vg_sort_keys and with qsort and compares
 * every record. */
static void check_against_qsort(size_t n, uint64_t seed, uint64_t hi_mask, uint64_t lo_mask)
{
    struct vg_sort_key *v = malloc(n * sizeof *v), *tmp = malloc(n * sizeof *tmp);
    struct vg_sort_key *want = malloc(n * sizeof *want);
    cr_assert(v && tmp && want);
    for (size_t i = 0; i < n; i++) {
        v[i] = (struct vg_sort_key){ next_rand(&seed) & hi_mask, next_rand(&seed) & lo_mask, i };
        want[i] = v[i];
    }
    qsort(want, n, sizeof *want, cmp_key_then_index);
    struct vg_sort_key *got = vg_sort_keys(v, tmp, n);
    cr_assert(got == v || got == tmp);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(got[i].hi, want[i].hi, "record %zu", i);
        cr_assert_eq(got[i].lo, want[i].lo, "record %zu", i);
        cr_assert_eq(got[i].i, want[i].i, "record %zu (stability)", i);
    }
    free(v);
    free(tmp);
    free(want);
}

Test(vg_sort, full_width_random_keys_match_qsort)
{
    check_against_qsort(5000, 1, ~0ULL, ~0ULL);
}

Test(vg_sort, few_distinct_keys_keep_input_order)
{
    check_against_qsort(4000, 2, 0, 0x3); /* 4 distinct keys, 1,000 records each */
}

Test(vg_sort, high_word_decides_before_low_word)
{
    check_against_qsort(3000, 3, 0xff00000000000000ULL, 0xffff);
}

Test(vg_sort, ids_in_low_bytes_only)
{
    check_against_qsort(20000, 4, 0, 0x3ffff); /* series ids: three passes */
}

Test(vg_sort, equal_keys_need_no_pass_and_small_inputs_are_returned)
{
    struct vg_sort_key v[3] = { { 7, 7, 0 }, { 7, 7, 1 }, { 7, 7, 2 } }, tmp[3];
    struct vg_sort_key *got = vg_sort_keys(v, tmp, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(got[i].i, i);
    cr_assert_eq(vg_sort_keys(v, tmp, 1), v);
    cr_assert_eq(vg_sort_keys(v, tmp, 0), v);
}

Test(vg_sort, allocation_failure_returns_null_and_leaves_input)
{
    struct vg_sort_key v[2] = { { 0, 2, 0 }, { 0, 1, 1 } }, tmp[2];
    vg_alloc_fail_after(1);
    struct vg_sort_key *got = vg_sort_keys(v, tmp, 2);
    vg_alloc_fail_after(0);
    cr_assert_null(got);
    cr_assert_eq(v[0].lo, 2);
    cr_assert_eq(v[1].lo, 1);
}
