/* head: the TSDB's in-memory series and their not-yet-persisted samples.
 *
 * Per series: its canonical label encoding (in the same allocation as the struct), an
 * open chunk encoder for in-order samples ("head chunk", its own buffer, packed every
 * HEAD_PACK_STEP samples), a sorted
 * buffer of accepted out-of-order samples, and a list of frozen chunks ("nodes") cut
 * from the head or the OOO buffer that wait to be written as 'C' keys. A head_series is
 * small (a few hundred bytes with its label bytes and chunk buffer) because the
 * benchmark counts memory per active series.
 *
 * Lookup structures: an open-addressing hash map (linear probing, backward-shift
 * deletion) from the label bytes to the series, and a dense array from id to series
 * (ids are handed out in increasing order and never reused). Label pairs are interned
 * in a symbol table (same kind of map), and a series holds their ids.
 *
 * Every sample kept here is also in a write-ahead record; each part remembers the
 * sequence number of the oldest record it depends on (wal_seq fields), so the store
 * knows which records it may delete.
 *
 * Not thread-safe: the TSDB holds its head mutex around every call. */
#ifndef HEAD_H
#define HEAD_H

#include "chunk.h"
#include "tsdb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAD_CHUNK_MAX_SAMPLES 120
/* The head chunk is packed (chunk_enc_pack) each time this many samples were appended
 * since the last packing: at 40 and 80 of 120; at 120 it is sealed (chunk_enc_seal),
 * which spares the write of the chunk its encoding. Each packing re-encodes the whole
 * chunk, so this costs about one more encoding per sample (~40 ns), and keeps all but
 * the last 0-39 samples at encoding 1's size (measured on the benchmark's counters and
 * gauges: 0.8 instead of 2.2 bytes per sample). */
#define HEAD_PACK_STEP 40
/* Every chunk, in-order or out-of-order, spans less than this: a sample at t lives in a
 * chunk starting in (t - HEAD_CHUNK_MAX_SPAN_MS, t], which bounds every lookup. */
#define HEAD_CHUNK_MAX_SPAN_MS (2LL * 3600 * 1000)

enum head_node_kind { HEAD_NODE_INORDER = 0, HEAD_NODE_OOO = 1 };

/* A frozen chunk waiting to be written. */
struct head_node {
    struct head_node *next;
    struct chunk_enc enc;
    int64_t mint, maxt;
    uint64_t wal_seq;  /* oldest write-ahead record holding one of its samples */
    uint8_t kind;      /* enum head_node_kind */
    uint64_t writer;   /* token of the writer that owns it right now (0: none) */
};

struct head_ooo {
    uint32_t n, cap;
    uint64_t wal_seq; /* oldest record holding one of its samples */
    struct tsdb_sample v[]; /* sorted by t, unique */
};

enum {
    HEAD_F_DURABLE = 1, /* S/L/P keys are in LevelDB */
    HEAD_F_LOST = 2,    /* memory lost samples after an allocation failure: keep the
                           write-ahead records from lost_seq on and write no chunk of
                           this series until restart, so replay restores everything */
};

/* Limits of a series' fields (head_create refuses more): the id array is dense, so ids
 * stay far below this in practice, and label sets come from requests of bounded size. */
#define HEAD_MAX_ID (UINT32_MAX - 1)
#define HEAD_MAX_LABEL_BYTES (1u << 24)

/* One allocation per series: the struct followed by the ids of its label pieces. The
 * canonical label bytes are not kept per series: each label pair (its canonical
 * encoding, uvarint len, name, uvarint len, value) is interned once in the head's
 * symbol table and the series holds its pairs' ids in label order (npieces of them;
 * bytes that do not parse as pairs become one piece, so concatenating the pieces always
 * gives back the bytes the series was created with). On the benchmark's label sets this
 * is 24-28 bytes instead of about 107 per series. The first sample of the head chunk is
 * read from the chunk (head_mint). The fixed part is 112 bytes, so that a series of up
 * to six labels (136 bytes) takes glibc's 144-byte chunk rather than the 160-byte one. */
struct head_series {
    int64_t min_t, max_t; /* over all stored samples; INT64_MAX / INT64_MIN when none */
    /* Record of the head chunk's first sample; with HEAD_F_LOST, also at most the
     * oldest record the lost samples are in (kept from then on, head chunk or not). */
    uint64_t head_seq;
    struct chunk_enc head;
    struct head_ooo *ooo;
    struct head_node *nodes;
    uint32_t id;        /* at most HEAD_MAX_ID */
    uint32_t hash;      /* low 32 bits of head_hash of the label bytes (the map's key) */
    uint32_t lbl_len : 24; /* length of the canonical label bytes (< HEAD_MAX_LABEL_BYTES) */
    uint32_t flags : 8;
    uint32_t pending;   /* appends validated against this series but not yet applied */
    uint32_t mark;      /* scratch for the append in progress (under the head lock) */
    uint16_t nlabels;
    uint16_t npieces;
    uint32_t sym[];     /* ids into head.syms, npieces of them, in byte order */
};

/* An interned piece of label bytes (normally one canonical label pair), shared by
 * every series holding it; freed when the last of them is removed. */
struct head_sym {
    uint64_t hash; /* head_hash of the bytes */
    uint32_t len, refs;
    char b[];
};

/* First sample of the head chunk (s->head.count must be > 0). */
static inline int64_t head_mint(const struct head_series *s)
{
    return chunk_enc_first_t(&s->head);
}

struct head {
    struct head_series **slots; /* hash map, cap a power of two */
    size_t cap, count;
    struct head_series **by_id; /* by_id[id - 1] */
    size_t by_id_cap;
    uint64_t next_id; /* first id never handed out */
    /* Symbol table: syms[i] is symbol i (NULL when free; free ids are reused from
     * sym_free); sym_slots is an open-addressing map from bytes to id + 1 (0: empty). */
    struct head_sym **syms;
    uint32_t nsyms, syms_cap;
    uint32_t *sym_slots;
    size_t sym_cap, sym_count;
    uint32_t *sym_free;
    size_t sym_nfree, sym_free_cap;
};

void head_init(struct head *h);
void head_free(struct head *h); /* frees every series */

uint64_t head_hash(const char *lbl, size_t len);
struct head_series *head_lookup(const struct head *h, const char *lbl, size_t len,
                                uint64_t hash);
/* Prefetch for a coming head_lookup of hash, in stages a caller runs a few lookups
 * apart, oldest stage nearest (3: the series' symbols, 2: its symbol pointers, 1: the
 * series, 0: its slot): each stage reads what the one before brought in. A lookup reads
 * a slot, the series and one symbol per label pair, all likely cache misses at tens of
 * thousands of series; a batch of lookups with prefetches overlaps them. No effect on
 * results; under the same lock as head_lookup. */
void head_prefetch(const struct head *h, uint64_t hash, int stage);
struct head_series *head_by_id(const struct head *h, uint64_t id);
/* Creates and indexes a series with the given id (>= 1, not in use); next_id moves past
 * it. NULL when out of memory, id > HEAD_MAX_ID or len >= HEAD_MAX_LABEL_BYTES (nothing
 * changed). */
struct head_series *head_create(struct head *h, uint64_t id, const char *lbl, size_t len,
                                uint64_t hash, uint16_t nlabels);
/* Unindexes and frees a series (and the symbols only it used). */
void head_remove(struct head *h, struct head_series *s);
/* Writes the series' canonical label bytes (s->lbl_len of them) to dst. */
void head_labels_copy(const struct head *h, const struct head_series *s, char *dst);

/* Appends an in-order sample (t > s->max_t). When the head chunk is full (120 samples)
 * or t is 2 h past its start, the head chunk is first frozen into a node pushed on
 * s->nodes and returned in *cut. seq is the record holding the sample. Returns 0 or
 * VG_ENOMEM; on failure the series is marked HEAD_F_LOST. */
int head_append(struct head_series *s, int64_t t, double v, uint64_t seq,
                struct head_node **cut);
/* Inserts an out-of-order sample (no sample at t may exist). 0 or VG_ENOMEM (then the
 * series is marked HEAD_F_LOST). */
int head_ooo_insert(struct head_series *s, int64_t t, double v, uint64_t seq);

/* Value bits stored in memory at t (head chunk, nodes, OOO buffer). */
bool head_find(struct head_series *s, int64_t t, uint64_t *bits);

/* Moves the head chunk into a new node (NULL if empty or out of memory). */
struct head_node *head_freeze(struct head_series *s);
/* Moves the OOO buffer into nodes (chunks of at most 120 samples spanning less than
 * 2 h). 0 or VG_ENOMEM (buffer kept). */
int head_freeze_ooo(struct head_series *s);
/* Whether in-order node n may be written by writer now: only together with or after
 * every older in-order node of its series, because replay treats every in-order sample
 * up to the end of the newest in-order chunk on disk as persisted. OOO nodes: always. */
bool head_node_writable(const struct head_node *n, uint64_t writer);
/* Unlinks n from s->nodes and frees it. */
void head_node_drop(struct head_series *s, struct head_node *n);

/* Oldest write-ahead record this series still needs; UINT64_MAX when none. */
uint64_t head_wal_min(const struct head_series *s);
/* Whether anything of the series is only in memory. */
bool head_has_data(const struct head_series *s);
/* Oldest sample held in memory; INT64_MAX when none. */
int64_t head_mem_min(const struct head_series *s);
/* Samples held in memory (head chunk, nodes, OOO buffer). */
size_t head_mem_samples(const struct head_series *s);

/* A growable sample array (vg_malloc'ed). */
struct head_samples {
    struct tsdb_sample *v;
    size_t n, cap;
};
int head_samples_push(struct head_samples *a, int64_t t, double v);
/* Appends the samples of an encoded chunk within [mint, maxt]. 0, VG_ENOMEM, or
 * VG_EINVAL for a malformed chunk. */
int head_samples_from_chunk(struct head_samples *a, const unsigned char *buf, size_t len,
                            int64_t mint, int64_t maxt);
/* Appends the in-memory samples of s within [mint, maxt] (unsorted across parts). */
int head_collect(struct head_series *s, int64_t mint, int64_t maxt, struct head_samples *a);
/* Sorts by t and removes repeated timestamps (keeping the first). */
void head_samples_sort_unique(struct head_samples *a);

#endif
