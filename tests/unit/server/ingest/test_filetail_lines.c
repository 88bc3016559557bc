/* Tests server/ingest/filetail_lines.c, the line and record assembler of the file
 * collector: lines split across feeds at every byte, "\r\n", the end offset of each
 * record, partial lines (waiting, then handed on after the timeout or at finish), lines
 * cut at max_line_bytes, multiline records (start regex, continuation before any start,
 * max_lines, size cut, idle timeout), reset, and a callback error stopping the feed. */
#include "../../../../server/ingest/filetail_lines.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static char got[8192];   /* "text@end[/cut]" records joined by ";" */
static size_t ngot;
static int fail_at;      /* the callback fails on this record (1-based); 0: never */

static int collect(void *ud, struct vg_str text, uint64_t end, unsigned flags)
{
    (void)ud;
    ngot++;
    size_t n = strlen(got);
    snprintf(got + n, sizeof got - n, "%.*s@%" PRIu64 "%s;", (int)text.len, text.p, end,
             flags & FILETAIL_LINES_CUT ? "/cut" : "");
    return fail_at && (int)ngot == fail_at ? VG_EIO : 0;
}

static void clear(void)
{
    got[0] = 0;
    ngot = 0;
    fail_at = 0;
}

TestSuite(filetail_lines, .init = clear);

static struct filetail_lines l;

static void init(size_t max, const struct matcher_regex *start, size_t max_lines,
                 int64_t partial_ms, int64_t record_ms)
{
    struct filetail_lines_opts o = { .max_line_bytes = max, .start = start,
                                     .max_lines = max_lines, .partial_timeout_ms = partial_ms,
                                     .record_timeout_ms = record_ms };
    filetail_lines_init(&l, &o);
}

static void feed(const char *s, uint64_t off, int64_t now)
{
    cr_assert_eq(filetail_lines_feed(&l, s, strlen(s), off, now, collect, NULL), 0);
}

Test(filetail_lines, lines_and_offsets_at_every_split)
{
    const char *text = "one\r\ntwo\n\nthree\npart";
    for (size_t cut = 0; cut <= strlen(text); cut++) {
        clear();
        init(100, NULL, 1, 0, 0);
        cr_assert_eq(filetail_lines_feed(&l, text, cut, 0, 0, collect, NULL), 0);
        cr_assert_eq(filetail_lines_feed(&l, text + cut, strlen(text) - cut, cut, 0, collect,
                                         NULL), 0);
        cr_assert_str_eq(got, "one@5;two@9;@10;three@16;", "split at %zu", cut);
        cr_assert(filetail_lines_pending(&l));
        cr_assert_eq(filetail_lines_tick(&l, 1000000, collect, NULL), 0);
        cr_assert_str_eq(got, "one@5;two@9;@10;three@16;", "timeout 0 waits forever");
        cr_assert_eq(filetail_lines_finish(&l, collect, NULL), 0);
        cr_assert_str_eq(got, "one@5;two@9;@10;three@16;part@20;");
        cr_assert_not(filetail_lines_pending(&l));
        filetail_lines_free(&l);
    }
}

Test(filetail_lines, partial_line_goes_out_after_its_timeout)
{
    init(100, NULL, 1, 500, 0);
    feed("abc", 0, 1000);
    cr_assert_eq(filetail_lines_tick(&l, 1499, collect, NULL), 0);
    cr_assert_str_eq(got, "");
    feed("de", 3, 1400);
    cr_assert_eq(filetail_lines_tick(&l, 1500, collect, NULL), 0);
    cr_assert_str_eq(got, "abcde@5;", "the wait counts from the first byte");
    feed("f\n", 5, 1600);
    cr_assert_str_eq(got, "abcde@5;f@7;", "later bytes make a new line");
    filetail_lines_free(&l);
}

Test(filetail_lines, long_lines_are_cut)
{
    init(4, NULL, 1, 0, 0);
    feed("abcdefghij\nxy", 0, 0);
    cr_assert_str_eq(got, "abcd@4/cut;efgh@8/cut;ij@11;");
    feed("zuvw", 13, 0); /* part "xy" + "zu" reaches the limit: cut, "vw" waits */
    cr_assert_str_eq(got, "abcd@4/cut;efgh@8/cut;ij@11;xyzu@15/cut;");
    feed("\n", 17, 0);
    cr_assert_str_eq(got, "abcd@4/cut;efgh@8/cut;ij@11;xyzu@15/cut;vw@18;");
    filetail_lines_free(&l);
}

static struct matcher_regex *re(const char *p)
{
    struct vg_err err;
    struct matcher_regex *r = matcher_regex_new(vg_str_c(p), &err);
    cr_assert_not_null(r, "%s", err.msg);
    return r;
}

Test(filetail_lines, multiline_records)
{
    struct matcher_regex *start = re("^\\d{4}-");
    init(1000, start, 3, 0, 2000);
    feed("  orphan\n2024-01 a\n  at x\n  at y\n2024-02 b\n", 0, 0);
    cr_assert_str_eq(got, "  orphan@9;2024-01 a\n  at x\n  at y@33;");
    feed("  c1\n  c2\n  c3\n", 43, 100);
    cr_assert_str_eq(got, "  orphan@9;2024-01 a\n  at x\n  at y@33;2024-02 b\n  c1\n  c2@53/cut;",
                     "max_lines cuts the record");
    cr_assert_eq(filetail_lines_tick(&l, 2099, collect, NULL), 0);
    cr_assert_eq(ngot, 3);
    cr_assert_eq(filetail_lines_tick(&l, 2100, collect, NULL), 0);
    cr_assert_eq(ngot, 4, "the idle record goes out");
    cr_assert(strstr(got, ";  c3@58;"), "%s", got);
    filetail_lines_free(&l);
    matcher_regex_free(start);
}

Test(filetail_lines, multiline_record_cut_at_size)
{
    struct matcher_regex *start = re("^S");
    init(10, start, 100, 0, 0);
    feed("S1234\nabcd\nefgh\nS\n", 0, 0);
    cr_assert_str_eq(got, "S1234\nabcd@11/cut;efgh@16;");
    cr_assert_eq(filetail_lines_finish(&l, collect, NULL), 0);
    cr_assert_str_eq(got, "S1234\nabcd@11/cut;efgh@16;S@18;");
    filetail_lines_free(&l);
    matcher_regex_free(start);
}

Test(filetail_lines, callback_error_stops_and_reset_forgets)
{
    init(100, NULL, 1, 0, 0);
    fail_at = 2;
    cr_assert_eq(filetail_lines_feed(&l, "a\nb\nc\nd", 7, 0, 0, collect, NULL), VG_EIO);
    cr_assert_str_eq(got, "a@2;b@4;");
    filetail_lines_reset(&l);
    cr_assert_not(filetail_lines_pending(&l));
    clear();
    feed("c\n", 4, 0);
    cr_assert_str_eq(got, "c@6;");
    filetail_lines_free(&l);
}

Test(filetail_lines, allocation_failure)
{
    init(100, NULL, 1, 0, 0);
    vg_alloc_fail_after(1);
    int rc = filetail_lines_feed(&l, "partial", 7, 0, 0, collect, NULL);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    filetail_lines_reset(&l);
    feed("ok\n", 0, 0);
    cr_assert_str_eq(got, "ok@3;");
    filetail_lines_free(&l);
}
