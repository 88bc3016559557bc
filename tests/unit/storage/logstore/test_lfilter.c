/* Tests storage/logstore/lfilter.c: whole tokens, trigrams for edge runs, case folding,
 * metadata pairs, empty filters, and that a needle contained in a line is never
 * reported absent (the property chunk skipping relies on). */
#include <criterion/criterion.h>

#include "../../../../storage/logstore/lfilter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct vg_buf built;
static struct lfilter f;

static void build(const char *const *lines, size_t n)
{
    struct lfilter_builder *b = lfilter_builder_new();
    cr_assert_not_null(b);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(lfilter_add_line(b, lines[i], strlen(lines[i])), 0);
    cr_assert_eq(lfilter_add_meta(b, VG_STR("trace_id"), VG_STR("4bf92f35")), 0);
    vg_buf_init(&built);
    lfilter_finish(b, &built);
    lfilter_builder_free(b);
    const char *p = built.p;
    cr_assert(lfilter_parse(&p, built.p + built.len, &f));
    cr_assert_eq(p, built.p + built.len);
}

static bool may(const char *needle)
{
    struct lfilter_query q = { 0 };
    lfilter_query_needle(&q, vg_str_c(needle));
    bool r = lfilter_may_match(&f, &q);
    lfilter_query_free(&q);
    return r;
}

Test(lfilter, contained_needles_always_pass_absent_ones_mostly_fail)
{
    const char *lines[] = { "GET /api/v1/users?id=42 HTTP/1.1 200",
                            "level=error msg=\"Connection REFUSED\" host=db-7" };
    build(lines, 2);
    const char *present[] = { "/api/v1/users", "users?id=4", "connection refused", "REFUSED",
                              "ref", "db-7", "42 HTTP", "ror", "=", "", "Users", "v1/u" };
    for (size_t i = 0; i < sizeof present / sizeof *present; i++)
        cr_assert(may(present[i]), "%s", present[i]);
    const char *absent[] = { "timeout", "/api/v2/", "level=warn", "connection accepted" };
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
        cr_assert_not(may(absent[i]), "%s", absent[i]);
    /* An interior run must be a whole token: "api" is, "pi" inside " pi " is not. */
    cr_assert(may("/api/"));
    cr_assert_not(may("/pi/"));
    struct lfilter_query q = { 0 };
    lfilter_query_meta(&q, VG_STR("trace_id"), VG_STR("4bf92f35"));
    cr_assert(lfilter_may_match(&f, &q));
    lfilter_query_free(&q);
    lfilter_query_meta(&q, VG_STR("trace_id"), VG_STR("4bf92f36"));
    cr_assert_not(lfilter_may_match(&f, &q));
    lfilter_query_free(&q);
    vg_buf_free(&built);
}

Test(lfilter, random_substrings_of_lines_always_pass)
{
    static char lines[200][80];
    const char *ptrs[200];
    srand(7);
    for (int i = 0; i < 200; i++) {
        snprintf(lines[i], sizeof lines[i], "ip=10.%d.%d.%d req=%08x path=/p%d/Q%d ok", rand() % 256,
                 rand() % 256, rand() % 256, (unsigned)rand(), rand() % 50, rand() % 9);
        ptrs[i] = lines[i];
    }
    build(ptrs, 200);
    for (int k = 0; k < 5000; k++) {
        const char *l = lines[rand() % 200];
        size_t len = strlen(l), a = (size_t)rand() % len, n = 1 + (size_t)rand() % (len - a);
        char needle[80];
        memcpy(needle, l + a, n);
        needle[n] = 0;
        cr_assert(may(needle), "'%s' from '%s'", needle, l);
    }
    vg_buf_free(&built);
}

Test(lfilter, empty_filter_and_malformed_stored_form)
{
    build(NULL, 0); /* only the metadata pair */
    cr_assert_not(may("anything"));
    cr_assert(may("ab"), "too short to check");
    vg_buf_free(&built);
    const char bad[] = { 7, 100, 1, 2 }; /* says 100 bytes, has 2 */
    const char *p = bad;
    struct lfilter g;
    cr_assert_not(lfilter_parse(&p, bad + sizeof bad, &g));
    const char zero_k[] = { 0, 0 };
    p = zero_k;
    cr_assert_not(lfilter_parse(&p, zero_k + 2, &g));
}
