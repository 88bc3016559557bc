/* span_index: the keys and small records of the span store's LevelDB database.
 *
 * The byte-by-byte layout is documented at the top of spanstore.c; this module is the
 * only code that builds or parses those keys, so the layout lives in one place. Index
 * entries are grouped by hour bucket first, so a whole hour of index and registry data is
 * one contiguous key range (cheap retention), and within a bucket and a term, lists sort
 * by their newest posting (~time) and hold postings newest first, so a search with a
 * limit stops after the first few keys.
 *
 * Thread safety: pure functions over their arguments. */
#ifndef SPAN_INDEX_H
#define SPAN_INDEX_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"
#include "span.h"

#include <stdbool.h>
#include <stdint.h>

#define SPAN_INDEX_BUCKET_NS (3600LL * 1000000000LL) /* one hour */
#define SPAN_INDEX_SUFFIX_LEN (8 + SPAN_TRACE_ID_LEN)  /* ~time, trace id */
#define SPAN_INDEX_MAX_VALUE 256 /* longer attribute values are not indexed */

/* Key prefixes (first byte of every key). */
enum {
    SPAN_KEY_SPAN = 'S',    /* 'S' trace id, span id -> spans (stores before chunk ids) */
    SPAN_KEY_SUMMARY = 'T', /* 'T' trace id -> trace summary */
    SPAN_KEY_STATS = 'C',   /* 'C' stripe (2 bytes) -> counters */
    SPAN_KEY_BUCKET = 'X',  /* 'X' bucket (4 bytes) kind ... -> index and registry */
};

/* Kinds inside a bucket: lower case are index lists (term, ~newest, write id ->
 * postings), upper case are registry entries (names and values seen in the bucket). */
enum span_index_kind {
    SPAN_IX_ALL = 'a',      /* no term: every trace */
    SPAN_IX_SERVICE = 's',  /* str service */
    SPAN_IX_NAME = 'n',     /* str service, str span name */
    SPAN_IX_STATUS = 'e',   /* u8 status */
    SPAN_IX_DURATION = 'd', /* u8 duration bucket */
    SPAN_IX_ATTR = 't',     /* u8 scope, str key, str value text */
    SPAN_REG_SERVICE = 'S', /* str service */
    SPAN_REG_OP = 'O',      /* str service, str span name, u8 kind */
    SPAN_REG_KEY = 'K',     /* u8 scope, str key */
    SPAN_REG_VALUE = 'V',   /* u8 scope, str key, u8 value type, value text (rest) */
};

/* Attribute scopes as stored in keys. */
enum { SPAN_SCOPE_SPAN = 's', SPAN_SCOPE_RESOURCE = 'r' };

/* The hour bucket of a time (times before the epoch fall in bucket 0, after 2^32 hours
 * in the last one). */
uint32_t span_index_bucket(int64_t t_ns);
int64_t span_index_bucket_start(uint32_t bucket);
/* Duration buckets: bit length of the duration in units of 1024 ns (0..54), so each
 * bucket spans a factor of two. */
uint8_t span_index_duration_bucket(int64_t dur_ns);
/* Smallest duration in bucket b (0 for b == 0). */
int64_t span_index_duration_floor(uint8_t b);

void span_index_trace_prefix(struct vg_buf *b, const uint8_t *trace_id);
void span_index_summary_key(struct vg_buf *b, const uint8_t *trace_id);
void span_index_stats_key(struct vg_buf *b, unsigned stripe);
/* One index term or registry entry, in the fields its kind uses (see the enum). */
struct span_index_term {
    enum span_index_kind kind;
    uint8_t byte;      /* status, duration bucket, attribute scope */
    uint8_t op_kind;   /* span kind of a REG_OP */
    uint8_t vtype;     /* enum span_val_type of a REG_VALUE */
    struct vg_str a;   /* service, or attribute key */
    struct vg_str b;   /* span name, or attribute value text */
};
/* Appends 'X' bucket kind and the term's fields: the whole key of a registry entry, or
 * the prefix of an index term's entries (add span_index_put_suffix). */
void span_index_term_key(struct vg_buf *out, uint32_t bucket, const struct span_index_term *t);
/* The 'X' bucket kind prefix alone (every key of one kind in one bucket). */
void span_index_kind_prefix(struct vg_buf *out, uint32_t bucket, enum span_index_kind kind);
/* Parses a registry key back into t (strings borrow from key). 0 or VG_EINVAL. */
int span_index_term_parse(const char *key, size_t klen, struct span_index_term *t,
                          struct vg_err *err);
/* Appends ~time and the trace id (SPAN_INDEX_SUFFIX_LEN bytes): one posting of an index
 * list value, ordered newest first by its bytes. */
void span_index_put_suffix(struct vg_buf *b, int64_t t_ns, const uint8_t *trace_id);
/* Parses the last SPAN_INDEX_SUFFIX_LEN bytes of key; false when the key is too short. */
bool span_index_get_suffix(const char *key, size_t klen, int64_t *t_ns, uint8_t *trace_id);
/* Parses one posting (SPAN_INDEX_SUFFIX_LEN bytes at p). */
void span_index_get_posting(const void *p, int64_t *t_ns, uint8_t *trace_id);

/* Index list keys: term key, then ~(newest posting time) and a write id (8 bytes BE
 * each), so lists sort newest first and two writes never share a key. */
#define SPAN_INDEX_LIST_SUFFIX_LEN 16
/* A list's postings all lie in one slot of 2^36 ns (about 69 s): a list whose newest
 * posting is after t + SPAN_INDEX_LIST_SPAN_NS holds nothing at or before t. */
#define SPAN_INDEX_LIST_SLOT_SHIFT 36
#define SPAN_INDEX_LIST_SPAN_NS (1LL << SPAN_INDEX_LIST_SLOT_SHIFT)
void span_index_put_list_suffix(struct vg_buf *b, int64_t newest_ns, uint64_t write_id);
/* The newest posting time of an index list key; false when the key is too short. */
bool span_index_get_list_suffix(const char *key, size_t klen, int64_t *newest_ns);
/* Postings in an index list value of vlen bytes; false when vlen is not a whole number of
 * postings (or zero). */
bool span_index_list_count(size_t vlen, size_t *n);
/* The bucket of an 'X' key; false when key is not one. */
bool span_index_key_bucket(const char *key, size_t klen, uint32_t *bucket);

/* ---- segments of the index database (<dir>/index) ----
 * A segment is one flush of the in-memory postings (span_head.h). Its keys start with
 * 'G' and the segment id (8, BE; ids come from the chunk counter, so every new segment
 * sorts after all earlier ones):
 *   'G' seg | bucket | kind term | ~newest | piece -> postings (as an index list)
 *   'G' seg | ff ff ff ff                     -> the segment's directory record
 *   'G' seg                                   -> the same, as stores before wrote it
 * The record sorts after its segment's lists and blocks (no bucket is 2^32 - 1 hours),
 * and a flush writes every key in order, so the tables of consecutive flush batches
 * never overlap and LevelDB places them without merging (it merged about three times
 * a segment's bytes when the record came first and lists and blocks interleaved).
 * The list keys are the span database's list keys with 'X' replaced by 'G' seg: the
 * term key's bucket, kind and term, then span_index_put_list_suffix with a piece number
 * in place of the write id. A piece holds at most SPAN_INDEX_PIECE postings of one slot
 * (SPAN_INDEX_LIST_SLOT_SHIFT), newest first. The directory record names the buckets
 * the segment holds postings of (with their oldest and newest posting and count) and
 * the chunk watermark: every chunk with a smaller id has its postings in this or an
 * earlier segment (the store replays the chunks from there after a crash). */
#define SPAN_KEY_SEGMENT 'G'
#define SPAN_INDEX_SEG_KEY_LEN 9
#define SPAN_INDEX_PIECE 1024
/* Terms of at most SPAN_INDEX_PACK_MAX postings in a segment (most of them: attribute
 * values such as URLs with ids name one trace or a few) are packed instead, in key
 * order, into blocks of about SPAN_INDEX_PACK_BYTES under
 *   'G' seg | bucket | 'P' | kind term (of the block's first term) -> entries
 * each entry u16 BE length, kind term, u16 BE count, the postings (newest first). A
 * term's entry is in the last block whose key is not after the term's; a block holds
 * terms of one bucket. One key per block instead of one per term: LevelDB's memtable
 * insert per key was the largest cost of a flush. */
#define SPAN_INDEX_PACK_MAX 32
#define SPAN_INDEX_PACK_BYTES 4096
#define SPAN_INDEX_PACK 'P'

struct span_index_seg_bucket {
    uint32_t bucket;
    int64_t min_t, max_t;
    uint64_t n;
    /* span_head_hash of the term keys ('X' bucket kind term) stored as lists in this
     * bucket of the segment, ascending: every other term there is packed, so a reader
     * looks in one place. */
    const uint64_t *listed;
    uint32_t nlisted;
};
struct span_index_seg {
    uint64_t seg, watermark;
    struct span_index_seg_bucket *b; /* vg_malloc'd by decode, listed hashes included */
    size_t nb;
};
/* 'G' seg: the prefix of every key of segment seg. */
void span_index_seg_key(struct vg_buf *b, uint64_t seg);
/* 'G' seg ff ff ff ff: where segment seg's directory record is written. */
void span_index_seg_rec_key(struct vg_buf *b, uint64_t seg);
#define SPAN_INDEX_SEG_REC_LEN (SPAN_INDEX_SEG_KEY_LEN + 4)
/* Whether a key of segment seg (span_index_seg_of) is its directory record, in either
 * form. */
bool span_index_seg_is_rec(const char *key, size_t klen);
/* 'G' seg, then term_key (span_index_term_key's bytes) without its leading 'X'. */
void span_index_seg_term(struct vg_buf *b, uint64_t seg, const char *term_key, size_t tlen);
/* Whether b lists the term whose span_head_hash is hash (then its postings are lists;
 * else they are packed, if the segment has any in b). A hash collision only costs the
 * reader a look in the wrong place first. */
bool span_index_seg_listed(const struct span_index_seg_bucket *b, uint64_t hash);
/* 'G' seg | bucket | 'P' | kind term: the packed-block key sought for term_key. */
void span_index_seg_pack_key(struct vg_buf *b, uint64_t seg, const char *term_key,
                             size_t tlen);
/* Appends a packed entry's u16 length and kind term (term_key without 'X' bucket). */
void span_index_pack_entry(struct vg_buf *b, const char *term_key, size_t tlen);
/* Finds term_key's entry in a packed block: true with *postings and *n (0 when the
 * block has no entry for it); false for a malformed block. */
bool span_index_pack_find(const char *v, size_t vlen, const char *term_key, size_t tlen,
                          const char **postings, size_t *n);
/* The segment id of a 'G' key; false when key is not one. */
bool span_index_seg_of(const char *key, size_t klen, uint64_t *seg);
void span_index_seg_encode(const struct span_index_seg *s, struct vg_buf *out);
/* Decodes a directory record of segment seg (s->b allocated; free with vg_free).
 * 0 or VG_EINVAL / VG_ENOMEM. */
int span_index_seg_decode(uint64_t seg, const void *buf, size_t len, struct span_index_seg *s,
                          struct vg_err *err);

/* The per-trace summary record, merged as spans arrive. */
struct span_index_summary {
    int64_t start_ns, end_ns;
    uint64_t spans, errors, bytes;
    bool has_root;                /* the root span has arrived */
    bool legacy;                  /* spans under 'S' keys (written by version 1 stores) */
    struct vg_str root_service;   /* the root's, or the earliest span's until then */
    struct vg_str root_name;
    const uint8_t *chunks;        /* nchunks chunk ids, 8 bytes BE each (borrowed) */
    size_t nchunks;
    uint64_t new_chunk;           /* encode appends this id to the list (0 = none) */
};
#define SPAN_INDEX_CHUNK_ID_LEN 8
/* The i-th chunk id of sum. */
uint64_t span_index_summary_chunk(const struct span_index_summary *sum, size_t i);
/* Folds span s (encoded in enc_bytes) into sum; sum's strings may then borrow from s. */
void span_index_summary_add(struct span_index_summary *sum, const struct span *s,
                            size_t enc_bytes);
void span_index_summary_encode(const struct span_index_summary *sum, struct vg_buf *b);
/* Strings borrow from buf. 0 or VG_EINVAL. */
int span_index_summary_decode(const void *buf, size_t len, struct span_index_summary *sum,
                              struct vg_err *err);

/* Per-stripe counters. */
struct span_index_counts {
    uint64_t spans, traces, bytes;
};
void span_index_counts_encode(const struct span_index_counts *c, struct vg_buf *b);
int span_index_counts_decode(const void *buf, size_t len, struct span_index_counts *c,
                             struct vg_err *err);

#endif
