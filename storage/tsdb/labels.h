/* labels: a series' identity, a set of name/value pairs sorted by name, names unique.
 * The metric name is the label "__name__".
 *
 * Canonical encoding (used as LevelDB key material and for hashing), for each label in
 * name order: uvarint(len(name)) name uvarint(len(value)) value.
 * Functions here are pure and thread-safe. */
#ifndef LABELS_H
#define LABELS_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct label {
    struct vg_str name;
    struct vg_str value;
};

/* Sorts in place by name (byte order). */
void labels_sort(struct label *ls, size_t n);
/* After sorting: VG_EINVAL naming the label if a name repeats, else 0. */
int labels_check_unique(const struct label *ls, size_t n, struct vg_err *err);
/* Compares two sorted label sets (name, then value, then length). */
int labels_cmp(const struct label *a, size_t na, const struct label *b, size_t nb);
/* Appends the canonical encoding of sorted ls to out. */
void labels_encode(const struct label *ls, size_t n, struct vg_buf *out);
/* Decodes a canonical encoding into at most max labels pointing into buf. Returns the
 * count, or VG_EINVAL if malformed, VG_ETOOLARGE if more than max. */
int labels_decode(const char *buf, size_t len, struct label *out, size_t max, struct vg_err *err);
/* 64-bit hash of sorted labels (stable across runs and machines). */
uint64_t labels_hash(const struct label *ls, size_t n);
/* Reads the minimal uvarint (LEB128) at p[*pos..len) into *out and moves *pos past it;
 * false if truncated, overlong (not minimal) or over 64 bits. Shared by the TSDB's
 * decoders (labels here, postings blocks in index.c). */
bool labels_get_uvarint(const unsigned char *p, size_t len, size_t *pos, uint64_t *out);
/* Value of name in sorted ls, or a {NULL,0} vg_str when absent. */
struct vg_str labels_get(const struct label *ls, size_t n, const char *name);

#endif
