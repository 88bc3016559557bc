/* lsearch: substring search over decompressed log text, the inner loop of filtered log
 * queries (logstore_query.c searches whole chunks with it).
 *
 * lsearch_find returns what memmem returns (the first occurrence, or NULL; an empty
 * needle is found at the start), only faster for needles of 2 bytes or more: it scans
 * 32 (AVX2, when the CPU has it) or 16 (SSE2) positions at a time for the needle's
 * first and last bytes together and compares the rest only where both match, as grep's
 * literal search does, instead of glibc's general-purpose algorithm. Pure and
 * thread-safe. */
#ifndef LSEARCH_H
#define LSEARCH_H

#include <stddef.h>

const char *lsearch_find(const char *hay, size_t n, const char *needle, size_t m);

#endif
