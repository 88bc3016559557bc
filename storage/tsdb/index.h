/* index: the TSDB's inverted index (postings) in LevelDB, and set operations on sorted
 * series id lists.
 *
 * Key:   'P' name 0x00 value 0x00 id(u64be)  -> empty value
 * One key per label of every series whose value is not empty (an empty value is the
 * same as no label, as in Prometheus). A prefix scan over 'P' name 0x00 value 0x00
 * yields the ids of name="value" in increasing order; a scan over 'P' name 0x00 visits
 * the values of name in byte order. Keys are parsed from both ends (the id is the last
 * 8 bytes, the 0x00 before it ends the value), and a scan for value v checks the key
 * length, so a value that contains 0x00 never leaks into another value's list. The
 * skip-scans that list distinct names and values do assume values contain no 0x00
 * (Prometheus label values are UTF-8 text; a NUL byte inside one is not expected).
 *
 * Thread-safe: functions only read LevelDB (which is thread-safe) and their arguments. */
#ifndef INDEX_H
#define INDEX_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"
#include "../kv.h"
#include "matcher.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INDEX_PREFIX 'P'

/* A growable list of series ids (vg_malloc'ed); "sorted" lists are strictly increasing. */
struct index_ids {
    uint64_t *v;
    size_t n, cap;
};
void index_ids_free(struct index_ids *a);
int index_ids_push(struct index_ids *a, uint64_t id); /* 0 or VG_ENOMEM */
void index_ids_sort_unique(struct index_ids *a);
/* a = a ∩ b and a = a \ b, both sorted; in place. */
void index_ids_intersect(struct index_ids *a, const struct index_ids *b);
void index_ids_subtract(struct index_ids *a, const struct index_ids *b);

/* Appends the posting key of (name, value, id) to b. */
void index_key(struct vg_buf *b, struct vg_str name, struct vg_str value, uint64_t id);

/* Ids of series matching every matcher, sorted (into out, which is reset). At least one
 * matcher must not match the empty string (VG_EINVAL otherwise). 0, VG_EINVAL, VG_EIO,
 * VG_ENOMEM. */
int index_select(struct kv *kv, struct matcher *const *ms, size_t nms, struct index_ids *out,
                 struct vg_err *err);

/* Calls fn for every distinct label name (byte order), or every distinct value of name,
 * found in the postings. fn returns 0 to go on or an error code to stop with. */
typedef int (*index_str_fn)(void *ctx, const char *s, size_t len);
int index_label_names(struct kv *kv, index_str_fn fn, void *ctx, struct vg_err *err);
int index_label_values(struct kv *kv, struct vg_str name, index_str_fn fn, void *ctx,
                       struct vg_err *err);

#endif
