/* lsearch: SIMD first-and-last-byte substring search (contract in lsearch.h).
 *
 * For a needle of m >= 2 bytes, window i holds a candidate when hay[i] == needle[0] and
 * hay[i + m - 1] == needle[m - 1]; both are tested for a block of positions with two
 * unaligned loads and byte compares, and only candidates get a memcmp of the middle.
 * Loads never read past hay + n: the vector loop stops while a whole block of windows
 * fits, and the rest (fewer than one block) goes to memmem. The AVX2 variant is chosen
 * at run time (__builtin_cpu_supports), so the binary runs on any x86-64; other
 * architectures use memmem. */
#include "lsearch.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LSEARCH_X86 1
#endif

#ifdef LSEARCH_X86
/* Middle bytes of the candidates in bits of mask at block base p; the match or NULL. */
static inline const char *check(const char *p, unsigned mask, const char *needle, size_t m)
{
    while (mask) {
        unsigned bit = (unsigned)__builtin_ctz(mask);
        if (memcmp(p + bit + 1, needle + 1, m - 2) == 0)
            return p + bit;
        mask &= mask - 1;
    }
    return NULL;
}

static const char *find_sse2(const char *hay, size_t n, const char *needle, size_t m,
                             size_t *done)
{
    const __m128i f = _mm_set1_epi8(needle[0]), l = _mm_set1_epi8(needle[m - 1]);
    size_t i = 0;
    for (; i + m - 1 + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(hay + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(hay + i + m - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, f), _mm_cmpeq_epi8(b, l)));
        const char *r = mask ? check(hay + i, mask, needle, m) : NULL;
        if (r)
            return r;
    }
    *done = i;
    return NULL;
}

__attribute__((target("avx2"))) static const char *find_avx2(const char *hay, size_t n,
                                                             const char *needle, size_t m,
                                                             size_t *done)
{
    const __m256i f = _mm256_set1_epi8(needle[0]), l = _mm256_set1_epi8(needle[m - 1]);
    size_t i = 0;
    for (; i + m - 1 + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(hay + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(hay + i + m - 1));
        unsigned mask = (unsigned)_mm256_movemask_epi8(
            _mm256_and_si256(_mm256_cmpeq_epi8(a, f), _mm256_cmpeq_epi8(b, l)));
        const char *r = mask ? check(hay + i, mask, needle, m) : NULL;
        if (r)
            return r;
    }
    *done = i;
    return NULL;
}
#endif

const char *lsearch_find(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m > n)
        return NULL;
#ifdef LSEARCH_X86
    if (m >= 2) {
        size_t done = 0;
        const char *r = __builtin_cpu_supports("avx2") ? find_avx2(hay, n, needle, m, &done)
                                                       : find_sse2(hay, n, needle, m, &done);
        if (r)
            return r;
        hay += done;
        n -= done;
    }
#endif
    return memmem(hay, n, needle, m);
}
