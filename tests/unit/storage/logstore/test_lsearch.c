/* Tests storage/logstore/lsearch.c: lsearch_find agrees with memmem for needles of every
 * length at every position of buffers whose ends sit at every offset of a vector block
 * (a match ending on the last byte, candidates whose first and last bytes match but not
 * the middle, several matches, none), and reads nothing past the buffer. */
#include <criterion/criterion.h>

#include "../../../../storage/logstore/lsearch.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void same(const char *hay, size_t n, const char *nd, size_t m)
{
    const char *want = memmem(hay, n, nd, m);
    const char *got = lsearch_find(hay, n, nd, m);
    cr_assert_eq(got, want, "n=%zu m=%zu: got %td want %td", n, m, got ? got - hay : -1,
                 want ? want - hay : -1);
}

Test(lsearch, matches_memmem_at_every_position)
{
    char hay[200], nd[40];
    for (size_t m = 1; m <= 36; m += 1)
        for (size_t n = m; n <= 140; n += 3)
            for (size_t at = 0; at + m <= n; at += 5) {
                memset(hay, 'a', n);
                for (size_t i = 0; i < m; i++)
                    nd[i] = (char)('b' + i % 7);
                /* decoys: same first and last byte, other middle */
                if (m >= 3 && at >= m) {
                    memcpy(hay + at - m, nd, m);
                    hay[at - m + m / 2] = 'z';
                }
                memcpy(hay + at, nd, m);
                same(hay, n, nd, m);
                same(hay, at + m, nd, m); /* the match ends on the last byte */
                same(hay, at + m - 1, nd, m); /* one byte short: absent */
            }
}

Test(lsearch, first_of_several_and_none)
{
    const char *text = "{\"agent\":\"Mozilla Firefox/120\"}\n{\"agent\":\"curl\"}\n"
                       "{\"agent\":\"Firefox\"}\n";
    size_t n = strlen(text);
    same(text, n, "Firefox", 7);
    same(text, n, "Firefox/", 8);
    same(text, n, "Chrome", 6);
    same(text, n, "}\n{", 3);
    same(text, n, "", 0);
    same(text, 0, "F", 1);
    cr_assert_null(lsearch_find(text, 3, "agent", 5));
}

Test(lsearch, random_text_agrees)
{
    srand(7);
    static char hay[4096];
    for (int round = 0; round < 300; round++) {
        size_t n = (size_t)rand() % sizeof hay;
        for (size_t i = 0; i < n; i++)
            hay[i] = (char)('a' + rand() % 3);
        char nd[12];
        size_t m = 1 + (size_t)rand() % sizeof nd;
        for (size_t i = 0; i < m; i++)
            nd[i] = (char)('a' + rand() % 3);
        same(hay, n, nd, m);
    }
}

/* The buffer ends right before an unmapped page: a read past it would crash. */
Test(lsearch, reads_nothing_past_the_end)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    cr_assert_neq(p, MAP_FAILED);
    cr_assert_eq(mprotect(p + pg, (size_t)pg, PROT_NONE), 0);
    memset(p, 'x', (size_t)pg);
    for (size_t n = 0; n <= 70; n++) {
        const char *hay = p + pg - n;
        same(hay, n, "xy", 2);
        same(hay, n, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxy", 41);
        if (n >= 5)
            cr_assert_eq(lsearch_find(hay, n, "xxxxx", 5), hay);
    }
    munmap(p, (size_t)pg * 2);
}
