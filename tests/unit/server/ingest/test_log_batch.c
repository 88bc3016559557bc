/* Tests server/ingest/log_batch.c: records are copied (the caller's buffers may change
 * after add), grouped into one stream per label set with each stream's records in
 * arrival order, bytes counted as the store counts them, clear and reuse, an empty
 * batch, and allocation failure in add, grouping and init. */
#include "../../../../server/ingest/log_batch.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct log_batch b;

static void setup(void)
{
    cr_assert_eq(log_batch_init(&b, 0), 0);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    log_batch_free(&b);
}

TestSuite(log_batch, .init = setup, .fini = teardown);

/* Adds a record of stream {app=<app>} with metadata k=v from scratch buffers that are
 * overwritten afterwards, so a test sees whether add copied them. */
static int add(int64_t t, const char *app, const char *line, const char *mv)
{
    char appbuf[32], linebuf[64], mvbuf[32];
    snprintf(appbuf, sizeof appbuf, "%s", app);
    snprintf(linebuf, sizeof linebuf, "%s", line);
    snprintf(mvbuf, sizeof mvbuf, "%s", mv ? mv : "");
    struct label ls[2] = { { VG_STR("app"), vg_str_c(appbuf) },
                           { VG_STR("job"), VG_STR("test") } };
    struct label meta = { VG_STR("k"), vg_str_c(mvbuf) };
    int rc = log_batch_add(&b, t, ls, 2, &meta, mv ? 1 : 0, vg_str_c(linebuf));
    memset(appbuf, 'X', sizeof appbuf);
    memset(linebuf, 'X', sizeof linebuf);
    memset(mvbuf, 'X', sizeof mvbuf);
    return rc;
}

static const struct logstore_stream_in *stream_of(const struct logstore_stream_in *st,
                                                  size_t ns, const char *app)
{
    for (size_t i = 0; i < ns; i++)
        if (vg_str_eq_c(labels_get(st[i].labels, st[i].nlabels, "app"), app))
            return &st[i];
    return NULL;
}

static bool line_is(const struct lentry *e, const char *want)
{
    return vg_str_eq_c(e->line, want);
}

Test(log_batch, groups_by_label_set_in_arrival_order)
{
    cr_assert_eq(add(30, "web", "w1", "a"), 0);
    cr_assert_eq(add(10, "db", "d1", NULL), 0);
    cr_assert_eq(add(20, "web", "w2", NULL), 0);
    cr_assert_eq(add(20, "web", "w3", "bb"), 0);
    cr_assert_eq(add(5, "db", "d2", NULL), 0);
    cr_assert_eq(b.n, 5);
    /* the line plus metadata names and values, as lentry_bytes */
    cr_assert_eq(b.bytes, 2 * 5 + (1 + 1) + (1 + 2));

    struct logstore_stream_in *st;
    size_t ns;
    cr_assert_eq(log_batch_streams(&b, &st, &ns), 0);
    cr_assert_eq(ns, 2);
    const struct logstore_stream_in *web = stream_of(st, ns, "web");
    const struct logstore_stream_in *db = stream_of(st, ns, "db");
    cr_assert_not_null(web);
    cr_assert_not_null(db);
    cr_assert_eq(web->nlabels, 2);
    cr_assert(vg_str_eq_c(labels_get(web->labels, 2, "job"), "test"), "labels copied");
    cr_assert_eq(web->nentries, 3);
    cr_assert(line_is(&web->entries[0], "w1") && line_is(&web->entries[1], "w2") &&
              line_is(&web->entries[2], "w3"), "arrival order, not time order");
    cr_assert_eq(web->entries[0].t, 30);
    cr_assert_eq(web->entries[0].nmeta, 1);
    cr_assert(vg_str_eq_c(web->entries[0].meta[0].value, "a"));
    cr_assert(vg_str_eq_c(web->entries[2].meta[0].value, "bb"));
    cr_assert_eq(web->entries[1].nmeta, 0);
    cr_assert_eq(db->nentries, 2);
    cr_assert(line_is(&db->entries[0], "d1") && line_is(&db->entries[1], "d2"));
}

Test(log_batch, clear_reuse_and_empty)
{
    struct logstore_stream_in *st = (void *)&b;
    size_t ns = 9;
    cr_assert_eq(log_batch_streams(&b, &st, &ns), 0);
    cr_assert_eq(ns, 0);
    cr_assert_null(st);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 600; i++) { /* past the first growth of the item array */
            char app[16];
            snprintf(app, sizeof app, "a%d", i % 7);
            cr_assert_eq(add(i, app, "line", NULL), 0);
        }
        cr_assert_eq(log_batch_streams(&b, &st, &ns), 0);
        cr_assert_eq(ns, 7);
        size_t total = 0;
        for (size_t i = 0; i < ns; i++)
            total += st[i].nentries;
        cr_assert_eq(total, 600);
        log_batch_clear(&b);
        cr_assert_eq(b.n, 0);
        cr_assert_eq(b.bytes, 0);
    }
}

Test(log_batch, allocation_failure)
{
    /* add: whichever allocation fails, the batch keeps what it had */
    cr_assert_eq(add(1, "web", "first", NULL), 0);
    for (uint64_t n = 1; n < 10; n++) {
        struct log_batch big;
        cr_assert_eq(log_batch_init(&big, 64), 0);
        char line[200];
        memset(line, 'x', sizeof line - 1);
        line[sizeof line - 1] = 0;
        struct label l = { VG_STR("job"), VG_STR("j") };
        vg_alloc_fail_after(n);
        int rc = 0;
        size_t i = 0;
        for (; i < 300 && rc == 0; i++)
            rc = log_batch_add(&big, (int64_t)i, &l, 1, NULL, 0, vg_str_c(line));
        vg_alloc_fail_after(0);
        cr_assert_eq(rc, VG_ENOMEM, "allocation %llu", (unsigned long long)n);
        cr_assert_eq(big.n, i - 1, "the failed record is not counted");
        log_batch_free(&big);
    }
    /* grouping: the scratch arrays fail one by one, then it works */
    for (uint64_t n = 1; n <= 3; n++) {
        struct log_batch g;
        cr_assert_eq(log_batch_init(&g, 0), 0);
        struct label l = { VG_STR("job"), VG_STR("j") };
        cr_assert_eq(log_batch_add(&g, 1, &l, 1, NULL, 0, VG_STR("x")), 0);
        struct logstore_stream_in *st;
        size_t ns;
        vg_alloc_fail_after(n);
        cr_assert_eq(log_batch_streams(&g, &st, &ns), VG_ENOMEM);
        vg_alloc_fail_after(0);
        cr_assert_eq(log_batch_streams(&g, &st, &ns), 0);
        cr_assert_eq(ns, 1);
        log_batch_free(&g);
    }
    /* init */
    struct log_batch f;
    vg_alloc_fail_after(1);
    cr_assert_eq(log_batch_init(&f, 0), VG_ENOMEM);
    vg_alloc_fail_after(0);
    log_batch_free(&f);
}
