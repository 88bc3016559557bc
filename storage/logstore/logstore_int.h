/* logstore_int: internals shared by logstore.c (layout, open, push, maintenance) and
 * logstore_query.c (reads). Not for use outside storage/logstore/. */
#ifndef LOGSTORE_INT_H
#define LOGSTORE_INT_H

#include "../base/vg_buf.h"
#include "../base/vg_ticker.h"
#include "../kv.h"
#include "lchunk.h"
#include "lhead.h"
#include "logstore.h"

#include <pthread.h>
#include <stdatomic.h>

/* Key prefixes; layout at the top of logstore.c. */
#define LS_KEY_STREAM 'S'
#define LS_KEY_LABELS 'L'
#define LS_KEY_CHUNK 'C'
#define LS_KEY_FLUSHED 'F'
#define LS_KEY_WAL 'W'
#define LS_CHUNK_KEY_LEN 29 /* 'C' id(8) tk(maxt)(8) seq(8) idx(4) */
#define LS_MAX_QUERY_WORKERS 16

struct lstream {
    uint64_t id;
    struct label *labels;      /* sorted; strings point into enc */
    size_t nlabels;
    char *enc;                 /* canonical encoding (labels.h), owned */
    size_t enclen;
    uint64_t hash;
    struct lstream *hnext;     /* hash chain */
    int64_t newest;            /* newest accepted time; INT64_MIN when none */
    int64_t mint, maxt;        /* stored data (chunks and heads); mint > maxt: none */
    struct lhead *head;        /* the open chunk, or NULL */
    struct lhead **sealed;     /* cut, not yet written, in cut order */
    size_t nsealed, sealed_cap;
    uint64_t fl_seq;           /* flushed position: entries up to (fl_seq, fl_idx) are */
    uint32_t fl_idx;           /*   in written chunks */
    uint64_t hold_seq;         /* != 0: entries from this WAL seq on failed to reach memory */
    uint64_t ap_seq;           /* position (ap_seq, ap_idx) of the last entry applied to */
    uint32_t ap_idx;           /*   memory, so a retry of a held stream resumes after it */
    /* Scratch of the push in progress (under wmu only). */
    uint64_t push_gen;
    int64_t push_newest;
    uint32_t push_n;
};

struct logstore {
    struct logstore_opts o;
    struct kv *kv;
    /* wmu serialises everything that writes: pushes, flushes, retention. Holders may
     * read the stream table without mu, since only wmu holders change it. */
    pthread_mutex_t wmu;
    /* mu guards the stream table, heads and sealed lists for readers. Taken inside wmu,
     * never the other way round. */
    pthread_mutex_t mu;
    struct lstream **streams;  /* sorted by id */
    size_t nstreams, streams_cap;
    struct lstream **htab;     /* by label hash; power-of-two size */
    size_t hcap;
    uint64_t next_id, next_seq;
    size_t nheld;              /* streams with hold_seq set (under wmu and mu) */
    uint64_t push_gen;
    struct lchunk_writer *cw;  /* under wmu */
    struct kv_batch *batch;    /* under wmu */
    uint64_t head_entries, head_bytes; /* under mu */
    atomic_uint_fast64_t rejected[LOGSTORE_REJECT_COUNT];
    atomic_uint_fast64_t chunks_written;
    /* The "logstore-maint" ticker; zeroed when maint_interval_ms is 0. */
    struct vg_ticker maint;
};

void ls_put_u64be(unsigned char *p, uint64_t v);
uint64_t ls_get_u64be(const unsigned char *p);
uint32_t ls_get_u32be(const unsigned char *p);
/* Byte-order-preserving time: u64be of t XOR 1<<63. */
void ls_put_tk(unsigned char *p, int64_t t);
int64_t ls_get_tk(const unsigned char *p);

/* Chunk key of the chunk of stream id whose newest entry is maxt and whose last entry
 * had WAL position (seq, idx). out has LS_CHUNK_KEY_LEN bytes. */
void ls_chunk_key(unsigned char *out, uint64_t id, int64_t maxt, uint64_t seq, uint32_t idx);
/* 'C' id tk(t): seeking here finds the stream's first chunk with maxt >= t. */
void ls_chunk_seek_key(unsigned char out[17], uint64_t id, int64_t t);
/* Parses a chunk key of stream id (false for anything else). */
bool ls_chunk_key_parse(const char *k, size_t len, uint64_t id, int64_t *maxt);

/* Makes room for element n of the vg_malloc'ed array at vp (a T ** cast to void *) of
 * elem-byte elements and capacity *cap: doubles it, or starts at first. 0 or VG_ENOMEM. */
int ls_grow(void *vp, size_t *cap, size_t n, size_t elem, size_t first);
/* The stream with id, or NULL. Under mu or wmu. */
struct lstream *ls_stream_by_id(struct logstore *ls, uint64_t id);
/* Ids of streams matching ms (all streams when nms == 0), sorted. */
struct index_ids;
int ls_select_ids(struct logstore *ls, struct matcher *const *ms, size_t nms,
                  struct index_ids *out, struct vg_err *err);

#endif
