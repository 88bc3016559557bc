/* tsdb_int: private to the TSDB's files (tsdb.c: layout, open, append; tsdb_query.c:
 * reads; tsdb_maint.c: flushing, write-ahead truncation, retention). The key layout is
 * documented at the top of tsdb.c.
 *
 * Locks, always taken in this order: maint_mu (one maintenance round at a time), then
 * mu (the head, the counters and the in-flight list). pool_mu and the maintenance
 * ticker's own lock are leaves.
 * Nothing holds mu across a sync write. */
#ifndef TSDB_INT_H
#define TSDB_INT_H

#include "../base/vg_err.h"
#include "../base/vg_log.h"
#include "../base/vg_ticker.h"
#include "../kv.h"
#include "head.h"
#include "tsdb.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define TSDB_FLUSH_AGE_MS (3600LL * 1000) /* head chunks older than this get written */
#define TSDB_NODE_BATCH_BYTES (4u << 20)  /* split chunk batches around this size */
#define TSDB_CHUNK_KEY_MAX 26
#define TSDB_ID_KEY_LEN 9

/* An append whose record number is handed out but whose samples are not applied yet:
 * truncation must keep its record. */
struct tsdb_inflight {
    struct tsdb_inflight *prev, *next;
    uint64_t seq;
};

/* Frozen chunks being written. */
struct tsdb_node_ref {
    struct head_series *s;
    struct head_node *n;
};
struct tsdb_node_refs {
    struct tsdb_node_ref *v;
    size_t n, cap;
};

struct tsdb_actx;

struct tsdb {
    struct tsdb_opts o;
    char *dir;
    struct kv *kv;

    pthread_mutex_t mu;
    pthread_cond_t applied; /* broadcast when an append released its series */
    unsigned waiters;
    struct head head;
    uint64_t next_seq;  /* next W record number */
    struct tsdb_inflight inflight; /* list sentinel */
    uint64_t chunks_persisted, samples_appended, ooo_samples;
    struct vg_complaint apply_complaint;

    pthread_mutex_t pool_mu;
    struct tsdb_actx *pool; /* reusable append scratch */

    pthread_mutex_t maint_mu;
    uint64_t wal_first; /* no W record below this exists (under maint_mu) */
    uint64_t wal_deleted_uncompacted, chunks_deleted_uncompacted;
    uint64_t packed_next_id; /* head.next_id when the postings were last packed */
    int64_t last_retention_cutoff;

    struct vg_ticker maint; /* "tsdb-maint"; zeroed when not started */
};

static inline uint64_t tsdb_dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static inline void tsdb_put_u64be(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static inline uint64_t tsdb_get_u64be(const void *src)
{
    const unsigned char *p = src;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* Timestamps in keys: sign bit flipped so negative times sort first. */
static inline uint64_t tsdb_tk(int64_t t)
{
    return (uint64_t)t ^ (1ULL << 63);
}

static inline int64_t tsdb_tk_inv(uint64_t k)
{
    return (int64_t)(k ^ (1ULL << 63));
}

static inline int64_t tsdb_sat_sub(int64_t a, int64_t b)
{
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

static inline int64_t tsdb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* prefix id(u64be) */
static inline size_t tsdb_id_key(unsigned char *out, char prefix, uint64_t id)
{
    out[0] = (unsigned char)prefix;
    tsdb_put_u64be(out + 1, id);
    return TSDB_ID_KEY_LEN;
}

/* 'C' id tk(t): sorts before every chunk of id starting at or after t. */
static inline size_t tsdb_chunk_seek_key(unsigned char *out, uint64_t id, int64_t t)
{
    tsdb_id_key(out, 'C', id);
    tsdb_put_u64be(out + 9, tsdb_tk(t));
    return 17;
}

static inline bool tsdb_chunk_key_parse(const char *k, size_t len, uint64_t id,
                                        int64_t *start, uint8_t *kind)
{
    if ((len != 18 && len != 26) || k[0] != 'C' || tsdb_get_u64be(k + 1) != id)
        return false;
    *start = tsdb_tk_inv(tsdb_get_u64be(k + 9));
    *kind = (uint8_t)k[17];
    return (*kind == HEAD_NODE_INORDER && len == 18) || (*kind == HEAD_NODE_OOO && len == 26);
}

/* Always VG_ENOMEM (inline so that callers, and the static analyser, see that a
 * failure path never returns 0). */
static inline int tsdb_nomem(struct vg_err *err, const char *what)
{
    vg_err_set(err, VG_ENOMEM, "tsdb: out of memory %s", what);
    return VG_ENOMEM;
}

/* tsdb.c */
void tsdb_node_put(struct kv_batch *b, const struct head_series *s, struct head_node *n);
int tsdb_refs_push(struct tsdb_node_refs *r, struct head_series *s, struct head_node *n);
int tsdb_refs_write(struct tsdb *db, struct tsdb_node_refs *refs, struct kv_batch *b,
                    struct vg_err *err);
bool tsdb_disk_find(struct tsdb *db, uint64_t id, int64_t t, uint64_t *bits);
void tsdb_series_keys(struct kv_batch *batch, struct vg_buf *kb, uint64_t id,
                      const char *lbl, size_t llen, const struct label *ls, size_t n,
                      bool del);

/* tsdb_maint.c */
enum tsdb_flush_mode {
    TSDB_FLUSH_WAITING, /* only chunks already frozen */
    TSDB_FLUSH_OLD,     /* also head chunks older than TSDB_FLUSH_AGE_MS, OOO buffers */
    TSDB_FLUSH_ALL,     /* everything in memory */
};
int tsdb_flush(struct tsdb *db, int64_t now, enum tsdb_flush_mode mode, struct vg_err *err);
int tsdb_wal_truncate(struct tsdb *db, struct vg_err *err);
int tsdb_maint_start(struct tsdb *db, struct vg_err *err);
void tsdb_maint_stop(struct tsdb *db);

#endif
