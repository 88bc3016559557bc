/* index: the TSDB's inverted index (postings) in LevelDB, and set operations on sorted
 * series id lists.
 *
 * Two kinds of entry, side by side in one key range per name="value" pair:
 *   one-id  'P' name 0x00 value 0x00 id(u64be)   -> empty value
 *           written with every new series, one per label whose value is not empty (an
 *           empty value is the same as no label, as in Prometheus);
 *   block   'P' name 0x00 value 0x01 last(u64be) -> uvarint(n) uvarint(first)
 *                                                   (n - 1) x uvarint(delta > 0)
 *           written by index_pack (at compaction) in place of the one-id keys: n sorted
 *           ids, 1 <= n <= INDEX_BLOCK_MAX_IDS, whose largest is last; the blocks of a
 *           pair do not overlap. About 1 byte per id on disk instead of ~8 per key.
 * The separator byte after the value (0x00 or 0x01) tells the kinds apart. A scan over
 * 'P' name 0x00 value 0x00..0x01 yields the pair's entries (the ids of both kinds,
 * merged and sorted by the reader); a scan over 'P' name 0x00 visits the values of
 * name in byte order. Keys are parsed from both ends (the id is the last 8 bytes, the
 * separator before it ends the value), and a scan for value v checks the key length,
 * so a value that contains 0x00 or 0x01 never leaks into another value's list. The
 * skip-scans that list distinct names and values do assume values contain no byte
 * below 0x02 (Prometheus label values are UTF-8 text; control bytes are not expected).
 * Blocks may still hold ids of series deleted since the last pack: readers resolve ids
 * through the head, which no longer has them.
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
#define INDEX_BLOCK_MAX_IDS 4096

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

/* Packed postings blocks (format above). index_block_encode appends the block of the
 * strictly increasing ids v[0..n), 1 <= n, to b (b marked failed when out of memory).
 * index_block_decode checks a block against the key's last id and appends its ids to
 * out: 0, VG_EINVAL naming the offset of the first malformed byte (truncated or
 * overlong varint, zero delta, overflow, count out of range, trailing bytes, last id
 * not the key's), VG_ENOMEM. */
void index_block_encode(struct vg_buf *b, const uint64_t *v, size_t n);
int index_block_decode(const char *p, size_t len, uint64_t last, struct index_ids *out,
                       struct vg_err *err);
/* Number of series ids the posting entry (key k, value v) stands for: 1 for a one-id
 * key, the block's count for a block (0 if the count is malformed). For statistics. */
size_t index_entry_ids(const char *k, size_t klen, const char *v, size_t vlen);

/* Rewrites the postings: each pair's one-id keys and blocks become blocks of at most
 * INDEX_BLOCK_MAX_IDS ids, after live(ctx, ids) removed from the sorted ids (in place,
 * keeping order) those of series that no longer exist. A pair with no one-id key and
 * no removed id is left as it is; a pair with no id left loses every entry. Each pair
 * is replaced in one atomic batch (written without sync: a crash leaves either form,
 * both valid), so concurrent readers always see every id. Only entries this call read
 * are deleted, so keys added meanwhile by appends stay. At most one index_pack at a
 * time per kv. 0, VG_EINVAL (a malformed block: nothing more is rewritten), VG_EIO,
 * VG_ENOMEM. *packed (may be NULL) gets the number of pairs rewritten. */
typedef void (*index_live_fn)(void *ctx, struct index_ids *ids);
int index_pack(struct kv *kv, index_live_fn live, void *ctx, size_t *packed,
               struct vg_err *err);

#endif
