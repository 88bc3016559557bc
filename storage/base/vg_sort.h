/* vg_sort: an LSD radix sort of (128-bit key, index) records, for the places where a
 * qsort with a comparison call per step costs more than the work around it (ordering the
 * series a query selected by label ranks, or by id before reading their chunks).
 *
 * Keys compare as unsigned 128-bit numbers, hi word first. The sort is stable, so records
 * with equal keys keep their input order. Byte positions where every key holds the same
 * byte are skipped, so a key that only uses its low 2-3 bytes (a series id) costs 2-3
 * passes, not 16.
 *
 * Pure and thread-safe; vg_sort_keys allocates one counting table (16 x 257 size_t). */
#ifndef VG_SORT_H
#define VG_SORT_H

#include <stddef.h>
#include <stdint.h>

struct vg_sort_key {
    uint64_t hi, lo;
    size_t i; /* the caller's index of the record this key stands for */
};

/* Sorts the n keys of v by (hi, lo), stably, using tmp (n keys) as scratch space. Returns
 * the buffer that holds the sorted keys (v or tmp; the other holds scratch), or NULL when
 * the counting table could not be allocated (then v is unchanged). n may be 0. */
struct vg_sort_key *vg_sort_keys(struct vg_sort_key *v, struct vg_sort_key *tmp, size_t n);

#endif
