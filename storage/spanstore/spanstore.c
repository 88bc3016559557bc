/* spanstore: opening, writing, retention and counters of the span store (queries are in
 * spanstore_query.c, key building in span_index.c).
 *
 * Key layout of the LevelDB database, byte by byte. "str" = uvarint length + bytes;
 * integers in keys are big-endian so byte order is numeric order.
 *
 *   chunk database (<dir>/chunks, a LevelDB of its own):
 *   chunk id (8, BE)                             -> a chunk of spans (span.h)
 *        The trace's new spans of one write as one chunk: version 3, which stores the
 *        resource and scope part of a trace's spans once per distinct part (a third of
 *        the bytes); version-2 chunks of earlier stores are read alike. The database's
 *        tables use 32 KiB snappy blocks (kv_opts.block_bytes). Ids come from one counter
 *        (the largest stored id + 1 at open), so the keys arrive in ascending order
 *        and LevelDB moves its tables down the levels without merging them: the span
 *        bytes (70% of what a write stores) are written once to a table instead of
 *        being rewritten by every compaction, as they were under random trace-id keys.
 *   'S' | trace id (16) | span id (8)            -> a chunk or a version-1 span
 *        Only in stores written before the chunk database (summary version 1, or the
 *        legacy flag of version 2): read, deduplicated against and deleted, never
 *        written. A span id seen again for its trace is ignored (first write wins), so
 *        client retries are idempotent.
 *   'T' | trace id (16)                          -> trace summary (span_index.c)
 *        Root service and name, start, end, span/error counts, encoded bytes and the
 *        ids of the trace's chunks; merged under the trace's lock stripe as spans
 *        arrive, late spans included. Trace by id is one get of the summary, then one
 *        get per chunk (one per write that carried spans of the trace).
 *   'C' | slot (2, BE)                           -> counters (uvarint spans, traces,
 *        bytes; modulo 2^64), written in the same batch as the summaries, one record
 *        per write (the write's slot of 16), so the totals survive a crash exactly; the
 *        open sums every record (stores of earlier versions kept one per trace stripe,
 *        up to 256).
 *   'X' | bucket (4, BE, hours since the epoch of the span start) | kind (1) | ...
 *        Everything time-bound lives under its hour: retention deletes 'X'+bucket as one
 *        contiguous range. Index terms are listed here by kind; their postings live in
 *        the index database (below). Postings are ~(start_ns XOR 2^63) (8, BE: newest
 *        first) | trace id (16), 24 bytes each, in lists sorted by their bytes, under
 *        list keys: the term key, then ~(newest XOR 2^63) (8, BE) | a list id (8, BE).
 *        A list's postings lie in one slot of 2^36 ns (t >> 36 equal, about 69 s), so a
 *        search bounded by `to` seeks straight to the lists newer than at most
 *        to + 2^36 ns. Lists in this database were written by stores before the index
 *        database (one per term and write) and by retention, which re-files a live
 *        trace as a one-posting 'a' list; they are read alongside the segments.
 *          'a'                                   every trace
 *          's' str service
 *          'n' str service, str span name
 *          'e' u8 status code
 *          'd' u8 duration bucket (bit length of duration_ns >> 10)
 *          't' u8 scope ('s' span, 'r' resource), str key, str value text
 *              (keys matching the configured rules; values up to 256 bytes)
 *        One posting per term, trace and write batch, timed by the earliest start among
 *        the batch's spans of that trace carrying the term. Registry kinds (value empty,
 *        capped per hour as configured so a high-cardinality key cannot grow it):
 *          'S' str service
 *          'O' str service, str span name, u8 span kind
 *          'K' u8 scope, str key                  (attribute keys seen)
 *          'V' u8 scope, str key, u8 value type, value text (rest of the key)
 *
 *   index database (<dir>/index): segments, each one flush of the postings that wait
 *        in memory (span_head.h, layout in span_index.h): 'G' segment id | bucket |
 *        kind term | list suffix -> postings, and 'G' segment id -> the segment's
 *        directory record (its buckets and the replay watermark). Segment ids come from
 *        the chunk counter, so each flush's keys sort after every stored key and
 *        LevelDB moves its tables down without merging them.
 *
 * The span database (everything but chunks) is written without snappy: postings of
 * random trace ids do not compress, and keys are prefix-compressed by LevelDB anyway.
 * Either database opens tables written with or without compression alike, so stores of
 * earlier versions are read as they are; only new tables follow the new options.
 *
 * Write path: validate, sort the batch by (trace id, span id), lock the stripes of its
 * traces in ascending order, read the existing summaries (and, for existing traces, the
 * stored span ids, to drop repeats), build a batch of chunks for the chunk database and
 * one of summaries, counters and registry entries not written before, collect the
 * index postings (terms deduplicated by a hash table as they are built, each collecting
 * one posting per trace), write the chunks, then the rest, each with sync, and hand the
 * postings to the head before unlocking. The head is written out as a segment by the
 * maintenance thread (every index_flush_ms, or when it holds index_flush_postings);
 * after a crash the open replays the chunks from the newest segment's watermark (every
 * chunk below it has its postings in a segment), so acknowledged spans are found by
 * search again. Storing a list per term and write instead, scattered over the key
 * space, took half of the server's CPU at 1 M spans (5.1 -> 3.5 s per million spans
 * over gRPC, bench/traces_bench.sh's data). A crash between the two writes leaves chunks no
 * summary names: invisible, and never deleted (at most one batch per writer at the
 * time of the crash); retention deletes a trace's summary first, then its chunks.
 * Registry entries already written are remembered in memory (a bounded hash set,
 * re-checked against LevelDB on a miss) so steady traffic writes none;
 * they are marked before the batch is written, so when a write fails the memory is
 * cleared (the registry is a listing aid: an entry can at worst go missing until the
 * value is seen again). Full families are known in memory and cost no lookup. The
 * scratch of a write (key sets, buffers, LevelDB batches) comes from a small pool in
 * the store, so a steady stream of writes allocates almost nothing.
 *
 * Cost (callgrind, spanstore_bench --spans 200000 --write-only --nosync, instructions
 * per span, the store and LevelDB's threads): 30,200 before chunk version 3, the
 * uncompressed span database, 32 KiB chunk blocks, the write pool, the resource memo,
 * per-term postings and the inlined span sort; 21,000 after (1M spans: disk 244 -> 203
 * bytes per span). Half of what is left is LevelDB's: a memtable insert per index list
 * (about 4,000 instructions each, one per distinct term and write, which seeking by
 * term requires; 8 MiB memtables cost more in compaction than they save) and the log
 * checksum per byte. */
#include "span_pack.h"
#include "trace_filter.h"
#include "spanstore_int.h"

#include "../base/vg_alloc.h"
#include "../base/vg_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_SLOTS (1u << 16) /* per table; cleared when half full */
#define HINT_SLOTS (1u << 16)
#define DEFAULT_MAX_VALUES 200
#define DEFAULT_MAX_KEYS 2000
/* Every segment costs a directory record in memory and a look per searched term: at a
 * low rate time triggers the flushes (a few hundred segments a day), at a high one the
 * size limit does (and bounds what a restart after a crash replays). */
#define DEFAULT_FLUSH_MS ((int64_t)5 * 60 * 1000)
#define DEFAULT_FLUSH_POSTINGS ((size_t)1 << 20)
#define INDEX_DIR "index" /* the index database, inside the store's directory */
#define REPLAY_BATCH 256  /* chunks replayed per head add */
#define CHUNK_DIR "chunks" /* the chunk database, inside the store's directory */
/* LevelDB memtable of the span database: 4x kv's default. Span batches are large (about
 * 650 bytes of keys and values per span), and with 8 MiB memtables LevelDB's compaction
 * took half of the store's CPU; 32 MiB halves the number of level-0 tables and the merges
 * they cause (spanstore_bench --write-only: 54k -> 63-68k spans per CPU second, compaction
 * included) for at most 64 MiB of memtables. 64 MiB measured no better. With index lists
 * (1M spans over gRPC, server CPU per span): 8 MiB 14-15 us, 4 MiB 15-19 us, 32 MiB
 * 9-11 us, 96 MiB no better than 32. */
#define WRITE_BUFFER ((size_t)32 << 20)
#define CHUNK_BLOCK ((size_t)32 << 10) /* table block size of the chunk database */

static const char *const default_rules[] = { "http.*", "db.system", "rpc.*", "error" };

/* ---- the registry cache ---- */

struct fam_slot {
    uint64_t h;
    uint64_t count;
};

struct spanstore_cache {
    uint64_t seen[CACHE_SLOTS]; /* hashes of registry keys known to be stored; 0 = free */
    struct fam_slot fam[CACHE_SLOTS]; /* registry families (capped prefixes) and sizes */
    size_t nseen, nfam;
};

static void cache_clear(struct spanstore_cache *c)
{
    memset(c, 0, sizeof *c);
}

/* ---- hints: registry work skipped before any key is built ----
 *
 * Every span repeats the registry entries of the spans before it (the same attribute
 * keys, mostly the same values), and building, hashing and looking up those keys was a
 * third of the store's CPU. A hint is a hash of the fields of an entry (bucket, kind,
 * scope, attribute key, value type and raw value bytes: the text form is a function of
 * those) in a direct-mapped table of atomics: a hit means "stored, or refused because
 * its family is full" and the entry is not built at all; a miss (collisions just evict)
 * takes the checked path below. Hints are set only after the batch that stored the
 * entries was written, so a hint never claims an entry a failed write lost. */

static uint64_t hint_mix(uint64_t h, const void *p, size_t n)
{
    return ((h ^ span_head_hash(p, n)) * 0x9fb21c651e98df25ULL) | 1;
}

/* hint_mix of one byte without hashing a buffer (several per attribute of every span). */
static uint64_t hint_byte(uint64_t h, uint8_t b)
{
    h = (h ^ ((uint64_t)b + 1) * 0xff51afd7ed558ccdULL) * 0x9fb21c651e98df25ULL;
    return (h ^ (h >> 31)) | 1;
}

static uint64_t hint_start(uint32_t bucket, uint8_t kind, uint8_t scope)
{
    uint8_t x[6] = { (uint8_t)(bucket >> 24), (uint8_t)(bucket >> 16), (uint8_t)(bucket >> 8),
                     (uint8_t)bucket, kind, scope };
    return hint_mix(0, x, sizeof x);
}

static bool hint_has(const struct spanstore *ss, uint64_t h)
{
    return atomic_load_explicit(&ss->hints[h & (HINT_SLOTS - 1)], memory_order_relaxed) == h;
}

static void hint_set(struct spanstore *ss, uint64_t h)
{
    if (h)
        atomic_store_explicit(&ss->hints[h & (HINT_SLOTS - 1)], h, memory_order_relaxed);
}

static void hints_clear(struct spanstore *ss)
{
    for (size_t i = 0; i < HINT_SLOTS; i++)
        atomic_store_explicit(&ss->hints[i], 0, memory_order_relaxed);
}

void spanstore_forget_registry(struct spanstore *ss)
{
    hints_clear(ss);
    pthread_mutex_lock(&ss->reg_mu);
    cache_clear(ss->cache);
    pthread_mutex_unlock(&ss->reg_mu);
}

/* The raw bytes of an attribute value (its text form is a function of type and these). */
static struct vg_str raw_value(const struct span_attr *a)
{
    switch (a->type) {
    case SPAN_VAL_INT:
        return (struct vg_str){ (const char *)&a->v.i, sizeof a->v.i };
    case SPAN_VAL_DOUBLE:
        return (struct vg_str){ (const char *)&a->v.d, sizeof a->v.d };
    case SPAN_VAL_BOOL:
        return (struct vg_str){ a->v.b ? "1" : "0", 1 };
    default:
        return a->v.s;
    }
}

/* The slot of h in a table of hashes (the first field of each element). */
static size_t slot_of(const void *table, size_t stride, uint64_t h)
{
    const char *t = table;
    size_t i = (size_t)h & (CACHE_SLOTS - 1);
    for (;;) {
        uint64_t x;
        memcpy(&x, t + i * stride, sizeof x);
        if (x == h || x == 0)
            return i;
        i = (i + 1) & (CACHE_SLOTS - 1);
    }
}

/* ---- small helpers ---- */

unsigned spanstore_stripe(const uint8_t *trace_id)
{
    return (unsigned)(trace_id[0] ^ trace_id[7] ^ trace_id[15]) % SPANSTORE_STRIPES;
}

bool spanstore_is_indexed(const struct spanstore *ss, struct vg_str key)
{
    /* Called for every attribute of every span: lengths are precomputed at open. */
    for (size_t i = 0; i < ss->nrules; i++) {
        size_t n = ss->rule_len[i];
        if ((ss->rule_prefix[i] ? key.len >= n : key.len == n) &&
            (n == 0 || (key.p[0] == ss->rules[i][0] && memcmp(key.p, ss->rules[i], n) == 0)))
            return true;
    }
    return false;
}

void spanstore_opts_default(struct spanstore_opts *o)
{
    memset(o, 0, sizeof *o);
    o->retention_ns = 7LL * 24 * 3600 * 1000000000LL;
    o->maint_interval_ms = (int64_t)60 * 1000;
    o->max_values_per_key = DEFAULT_MAX_VALUES;
    o->max_keys = DEFAULT_MAX_KEYS;
    o->index_flush_ms = DEFAULT_FLUSH_MS;
    o->index_flush_postings = DEFAULT_FLUSH_POSTINGS;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- open and close ---- */

static int load_counts(struct spanstore *ss, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(ss->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory opening an iterator");
    char pfx = SPAN_KEY_STATS;
    int rc = 0;
    for (kv_iter_seek(it, &pfx, 1); !rc && kv_iter_has_prefix(it, &pfx, 1); kv_iter_next(it)) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        unsigned s = klen == 3 ? ((unsigned)(uint8_t)k[1] << 8 | (uint8_t)k[2]) : 0xffff;
        if (s >= SPANSTORE_STRIPES)
            rc = vg_err_set(err, VG_EINVAL, "spanstore: counter key of %zu bytes, stripe %u",
                            klen, s);
        else
            rc = span_index_counts_decode(v, vlen, &ss->counts[s], err);
    }
    if (!rc)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    return rc;
}

static void flush_tick(void *arg, const atomic_bool *stop);
static void retain_tick(void *arg, const atomic_bool *stop);
static void pool_free(struct spanstore *ss);
static int replay_chunks(struct spanstore *ss, uint64_t from, struct vg_err *err);

/* Opens the LevelDB database <dir>/name into *out. 0 or kv_open's error code. */
static int open_sub(const char *dir, const char *name, const struct kv_opts *ko,
                    struct kv **out, struct vg_err *err)
{
    size_t n = strlen(dir), m = strlen(name);
    char *path = vg_malloc(n + m + 2);
    if (!path)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory");
    memcpy(path, dir, n);
    path[n] = '/';
    memcpy(path + n + 1, name, m + 1);
    *out = kv_open(path, ko, err);
    vg_free(path);
    return *out ? 0 : err && err->code ? err->code : VG_EIO;
}

/* Opens <dir>/index, loads its segment directory and rebuilds the head from the chunks
 * whose postings no segment holds (after a crash). A store without any segment record
 * (new, or written before the index database, when every posting went to the span
 * database) starts at the current chunk counter, recorded at once in an empty segment
 * so a crash before the first flush still knows where to replay from. */
static int open_index(struct spanstore *ss, const char *dir, const struct kv_opts *ko,
                      struct vg_err *err)
{
    int orc = open_sub(dir, INDEX_DIR, ko, &ss->ix, err);
    if (orc)
        return orc;
    uint64_t wm;
    bool any;
    int rc = spanstore_load_segments(ss, &wm, &any, err);
    if (rc)
        return rc;
    if (any)
        return replay_chunks(ss, wm, err);
    struct span_index_seg rec = { .seg = atomic_fetch_add(&ss->next_chunk, 1) };
    rec.watermark = rec.seg;
    struct vg_buf key, val;
    vg_buf_init(&key);
    vg_buf_init(&val);
    span_index_seg_rec_key(&key, rec.seg);
    span_index_seg_encode(&rec, &val);
    rc = vg_buf_failed(&key) || vg_buf_failed(&val)
             ? vg_err_set(err, VG_ENOMEM, "spanstore: out of memory")
             : kv_put(ss->ix, key.p, key.len, val.p, val.len, true, err);
    vg_buf_free(&key);
    vg_buf_free(&val);
    if (!rc) {
        pthread_mutex_lock(&ss->dir_mu);
        ss->segs = vg_malloc(sizeof *ss->segs);
        if (ss->segs) {
            ss->segs[0] = rec;
            ss->nsegs = ss->capsegs = 1;
        }
        pthread_mutex_unlock(&ss->dir_mu);
        if (!ss->segs)
            rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory");
    }
    return rc;
}

/* Opens <dir>/chunks and sets next_chunk past the largest id stored. */
static int open_chunks(struct spanstore *ss, const char *dir, const struct kv_opts *ko,
                       struct vg_err *err)
{
    int orc = open_sub(dir, CHUNK_DIR, ko, &ss->chunks, err);
    if (orc)
        return orc;
    struct kv_iter *it = kv_iter_new(ss->chunks, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory opening an iterator");
    kv_iter_seek_last(it);
    uint64_t last = 0;
    size_t klen = 0;
    const char *k = kv_iter_valid(it) ? kv_iter_key(it, &klen) : NULL;
    int rc = kv_iter_error(it, err);
    if (!rc && k && klen != SPAN_INDEX_CHUNK_ID_LEN)
        rc = vg_err_set(err, VG_EINVAL, "spanstore: chunk key of %zu bytes, want %d", klen,
                        SPAN_INDEX_CHUNK_ID_LEN);
    for (size_t i = 0; !rc && k && i < klen; i++)
        last = last << 8 | (uint8_t)k[i];
    kv_iter_free(it);
    atomic_store(&ss->next_chunk, last + 1);
    return rc;
}

/* Adds every stored summary's trace id to the filter, from a snapshot taken now (after
 * the filter took writes), then marks it ready. 0, or the iterator's error (the filter
 * then stays not ready: every write reads its summaries). */
static int scan_trace_ids(struct spanstore *ss, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(ss->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory opening an iterator");
    char pfx = SPAN_KEY_SUMMARY;
    for (kv_iter_seek(it, &pfx, 1);
         kv_iter_has_prefix(it, &pfx, 1) && !atomic_load(&ss->tscan_stop); kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        if (klen == 1 + SPAN_TRACE_ID_LEN)
            trace_filter_add(ss->tfilter, (const uint8_t *)k + 1);
    }
    int rc = kv_iter_error(it, err);
    bool done = !atomic_load(&ss->tscan_stop);
    kv_iter_free(it);
    if (!rc && done)
        trace_filter_set_ready(ss->tfilter);
    return rc;
}

static void *tscan_main(void *arg)
{
    struct spanstore *ss = arg;
    pthread_setname_np(pthread_self(), "span-tfilter");
    struct vg_err err = { 0 };
    if (scan_trace_ids(ss, &err) != 0)
        vg_log(VG_LOG_ERROR, "spanstore", "scanning trace ids failed (summaries are read "
               "for every write)", "error", err.msg, NULL);
    return NULL;
}

/* The trace filter for the store's traces; the scan of stored ids runs on its own
 * thread when the store has threads, else here. */
static int start_trace_filter(struct spanstore *ss, bool thread, struct vg_err *err)
{
    uint64_t traces = 0;
    for (int s = 0; s < SPANSTORE_STRIPES; s++)
        traces += ss->counts[s].traces; /* (modulo 2^64 sums: see spanstore_int.h) */
    ss->tfilter = trace_filter_new(traces);
    if (!ss->tfilter)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for the trace filter");
    atomic_init(&ss->tscan_stop, false);
    if (!thread)
        return scan_trace_ids(ss, err);
    if (pthread_create(&ss->tscan, NULL, tscan_main, ss) != 0)
        return vg_err_set(err, VG_EINTERNAL, "spanstore: cannot start a thread");
    ss->tscan_running = true;
    return 0;
}

static int copy_rules(struct spanstore *ss, const struct spanstore_opts *o, struct vg_err *err)
{
    const char *const *src = o->indexed_attrs ? o->indexed_attrs : default_rules;
    size_t n = o->indexed_attrs ? o->nindexed_attrs
                                : sizeof default_rules / sizeof default_rules[0];
    ss->rules = vg_calloc(n ? n : 1, sizeof *ss->rules);
    ss->rule_len = vg_calloc(n ? n : 1, sizeof *ss->rule_len);
    ss->rule_prefix = vg_calloc(n ? n : 1, sizeof *ss->rule_prefix);
    if (!ss->rules || !ss->rule_len || !ss->rule_prefix)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for %zu rules", n);
    for (size_t i = 0; i < n; i++) {
        if (!src[i] || !src[i][0] || strchr(src[i], '*') != strrchr(src[i], '*') ||
            (strchr(src[i], '*') && src[i][strlen(src[i]) - 1] != '*'))
            return vg_err_set(err, VG_EINVAL,
                              "spanstore: indexed attribute rule %zu \"%s\": want a key or "
                              "a prefix ending in '*'", i, src[i] ? src[i] : "");
        ss->rules[i] = vg_strdup(src[i]);
        if (!ss->rules[i])
            return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for rules");
        size_t len = strlen(src[i]);
        ss->rule_prefix[i] = src[i][len - 1] == '*';
        ss->rule_len[i] = len - ss->rule_prefix[i];
        ss->nrules++;
    }
    return 0;
}

struct spanstore *spanstore_open(const struct spanstore_opts *o, struct vg_err *err)
{
    if (!o || !o->dir)
        return vg_err_set(err, VG_EINVAL, "spanstore: no directory given"), NULL;
    struct spanstore *ss = vg_calloc(1, sizeof *ss);
    /* calloc, not malloc and clear: fresh zero pages stay unmapped (2 MiB of RSS) until
     * spans arrive, which on a metrics-only server is never */
    struct spanstore_cache *cache = vg_calloc(1, sizeof *cache);
    _Atomic uint64_t *hints = vg_calloc(HINT_SLOTS, sizeof *hints);
    if (!ss || !cache || !hints) {
        vg_free(ss);
        vg_free(cache);
        vg_free((void *)hints);
        vg_err_set(err, VG_ENOMEM, "spanstore: out of memory");
        return NULL;
    }
    ss->cache = cache;
    ss->hints = hints;
    ss->opts = *o;
    if (!ss->opts.max_values_per_key)
        ss->opts.max_values_per_key = DEFAULT_MAX_VALUES;
    if (!ss->opts.max_keys)
        ss->opts.max_keys = DEFAULT_MAX_KEYS;
    if (ss->opts.index_flush_ms <= 0)
        ss->opts.index_flush_ms = DEFAULT_FLUSH_MS;
    if (!ss->opts.index_flush_postings)
        ss->opts.index_flush_postings = DEFAULT_FLUSH_POSTINGS;
    ss->head_floor = UINT64_MAX;
    pthread_mutex_init(&ss->flush_mu, NULL);
    pthread_mutex_init(&ss->dir_mu, NULL);
    ss->head = span_head_new();
    ss->capinflight = 16; /* grown only past 16 writers at once */
    ss->inflight = vg_malloc(ss->capinflight * sizeof *ss->inflight);
    if (!ss->head || !ss->inflight) {
        vg_err_set(err, VG_ENOMEM, "spanstore: out of memory");
        goto fail;
    }
    for (int i = 0; i < SPANSTORE_STRIPES; i++)
        pthread_mutex_init(&ss->stripes[i], NULL);
    for (int i = 0; i < SPANSTORE_COUNT_SLOTS; i++)
        pthread_mutex_init(&ss->cnt_mu[i], NULL);
    pthread_mutex_init(&ss->reg_mu, NULL);
    pthread_mutex_init(&ss->pool_mu, NULL);
    if (copy_rules(ss, o, err))
        goto fail;
    ss->opts.dir = NULL; /* not kept: kv_path has the copy */
    ss->opts.indexed_attrs = NULL;
    /* The index database takes no snappy: its values are postings of random trace ids
     * and its keys are already prefix-compressed in each block, so snappy saved 4% of the
     * disk for 6% of the store's CPU (callgrind, spanstore_bench --write-only). Chunks
     * compress 3x, in 32 KiB blocks instead of 4 KiB: snappy's per-block hash table
     * clearing was a third of its cost, and the larger blocks find the resource
     * attributes repeated across neighbouring chunks (8% fewer bytes on disk). Options
     * apply to new tables only: tables of earlier stores are read as written. */
    struct kv_opts ko = { .cache_bytes = o->cache_bytes, .write_buffer_bytes = WRITE_BUFFER,
                          .no_compression = true, .sync_interval_ms = o->sync_interval_ms };
    struct kv_opts kc = { .cache_bytes = o->cache_bytes, .write_buffer_bytes = WRITE_BUFFER,
                          .block_bytes = CHUNK_BLOCK, .sync_interval_ms = o->sync_interval_ms };
    /* The index database takes whole segments in a few large batches whose keys only
     * grow: kv's default memtable serves, and its tables move down without merging. */
    struct kv_opts ki = { .cache_bytes = o->cache_bytes, .no_compression = true,
                          .sync_interval_ms = o->sync_interval_ms };
    ss->kv = kv_open(o->dir, &ko, err);
    if (!ss->kv || load_counts(ss, err) || open_chunks(ss, o->dir, &kc, err) ||
        open_index(ss, o->dir, &ki, err) ||
        start_trace_filter(ss, o->maint_interval_ms > 0, err))
        goto fail;
    if (o->maint_interval_ms > 0) {
        struct vg_ticker_opts fo = { "span-flush", ss->opts.index_flush_ms,
                                     ss->opts.index_flush_ms, false };
        struct vg_ticker_opts ro = { "span-retain", o->maint_interval_ms,
                                     o->maint_interval_ms, false };
        if (vg_ticker_start(&ss->flusher, &fo, flush_tick, ss, err) ||
            vg_ticker_start(&ss->retainer, &ro, retain_tick, ss, err))
            goto fail;
        ss->has_threads = true;
    }
    return ss;
fail:
    spanstore_close(ss);
    return NULL;
}

void spanstore_close(struct spanstore *ss)
{
    if (!ss)
        return;
    vg_ticker_stop(&ss->flusher); /* no-ops when they never started */
    vg_ticker_stop(&ss->retainer);
    if (ss->tscan_running) {
        atomic_store(&ss->tscan_stop, true);
        pthread_join(ss->tscan, NULL);
    }
    if (ss->ix && ss->head) { /* what waits in memory, so a restart replays nothing */
        struct vg_err err = { 0 };
        if (spanstore_flush_index(ss, &err) != 0)
            vg_log(VG_LOG_ERROR, "spanstore", "index flush at close failed", "error", err.msg,
                   NULL);
    }
    spanstore_flush_scratch_free(ss);
    kv_close(ss->ix);
    kv_close(ss->chunks);
    kv_close(ss->kv);
    span_head_free(ss->head);
    trace_filter_free(ss->tfilter);
    for (size_t i = 0; i < ss->nsegs; i++)
        vg_free(ss->segs[i].b);
    vg_free(ss->segs);
    vg_free(ss->inflight);
    pthread_mutex_destroy(&ss->flush_mu);
    pthread_mutex_destroy(&ss->dir_mu);
    for (size_t i = 0; i < ss->nrules; i++)
        vg_free(ss->rules[i]);
    vg_free(ss->rules);
    vg_free(ss->rule_len);
    vg_free(ss->rule_prefix);
    for (int i = 0; i < SPANSTORE_STRIPES; i++)
        pthread_mutex_destroy(&ss->stripes[i]);
    for (int i = 0; i < SPANSTORE_COUNT_SLOTS; i++)
        pthread_mutex_destroy(&ss->cnt_mu[i]);
    pthread_mutex_destroy(&ss->reg_mu);
    pool_free(ss);
    pthread_mutex_destroy(&ss->pool_mu);
    vg_free(ss->cache);
    vg_free((void *)ss->hints);
    vg_free(ss);
}

/* ---- collecting keys of one write ---- */

/* A key built in ks->b at [off, off+len) with its hash h; t is the entry time (index
 * entries), fam the length of the prefix whose size is capped (registry entries; 0 =
 * none), cap that cap. */
struct entry {
    size_t off, len, fam;
    int64_t t;
    size_t cap;
    uint64_t h;
    uint64_t hint, famhint; /* registry: hints set once written (0 = none) */
    bool full;              /* registry: refused, its family is full */
    uint32_t head, tail;    /* index terms: first and last posting + 1 (0 = none) */
};

/* The distinct keys of one write, in first-seen order. A hash table finds repeats as
 * they are added (most of a batch's index and registry keys are repeats: every span of
 * a trace names the same service, most attribute keys recur), so no sort is needed:
 * LevelDB takes a batch in any order. */
struct keyset {
    struct vg_buf b;
    struct entry *v;
    size_t n, cap;
    uint32_t *slots; /* entry index + 1, 0 = free; nslots is a power of two */
    size_t nslots;
    bool failed;
};

static bool ks_grow(struct keyset *ks)
{
    size_t ns = ks->nslots ? ks->nslots * 2 : 1024;
    uint32_t *nv = vg_calloc(ns, sizeof *nv);
    if (!nv)
        return false;
    for (size_t i = 0; i < ks->n; i++) {
        size_t j = (size_t)ks->v[i].h & (ns - 1);
        while (nv[j])
            j = (j + 1) & (ns - 1);
        nv[j] = (uint32_t)(i + 1);
    }
    vg_free(ks->slots);
    ks->slots = nv;
    ks->nslots = ns;
    return true;
}

/* Adds the key just built at [off, b.len): a repeat is dropped from b, a new key is
 * recorded. Returns the key's entry index, or SIZE_MAX once out of memory (failed). */
static size_t ks_add(struct keyset *ks, size_t off, size_t fam, size_t cap, uint64_t hint,
                     uint64_t famhint)
{
    if (ks->failed || vg_buf_failed(&ks->b) || ks->n >= UINT32_MAX - 1) {
        ks->failed = true;
        return SIZE_MAX;
    }
    size_t len = ks->b.len - off;
    const char *k = ks->b.p + off;
    uint64_t h = span_head_hash(k, len);
    if ((ks->n + 1) * 2 > ks->nslots && !ks_grow(ks)) {
        ks->failed = true;
        return SIZE_MAX;
    }
    size_t i = (size_t)h & (ks->nslots - 1);
    for (; ks->slots[i]; i = (i + 1) & (ks->nslots - 1)) {
        struct entry *e = &ks->v[ks->slots[i] - 1];
        if (e->h == h && e->len == len && memcmp(ks->b.p + e->off, k, len) == 0) {
            ks->b.len = off;
            return ks->slots[i] - 1;
        }
    }
    if (ks->n == ks->cap) {
        size_t nc = ks->cap ? ks->cap * 2 : 256;
        struct entry *nv = vg_realloc(ks->v, nc * sizeof *nv);
        if (!nv) {
            ks->failed = true;
            return SIZE_MAX;
        }
        ks->v = nv;
        ks->cap = nc;
    }
    ks->v[ks->n] = (struct entry){ off, len, fam, 0, cap, h, hint, famhint, false, 0, 0 };
    ks->slots[i] = (uint32_t)++ks->n;
    return ks->n - 1;
}

static void ks_free(struct keyset *ks)
{
    vg_buf_free(&ks->b);
    vg_free(ks->v);
    vg_free(ks->slots);
}

/* A resource attribute array already indexed in this write: the spans of one
 * ResourceSpans share one array, and its registry entries and index terms are the same
 * for each of them (in one bucket), so they are worked out once. The batch is sorted by
 * trace, so the spans of one resource are interleaved with others': a few arrays are
 * remembered, not just the last. [off, off+len) of res_terms holds its index term keys,
 * each as u32 length + bytes. */
struct res_memo {
    const struct span_attr *a;
    size_t n, off, len;
    uint32_t b;
};
#define RES_MEMO 16

/* A span attribute already worked out in this write, by its registry value hint (a hash
 * of bucket, scope, key, type and raw value): most recur in span after span (the same
 * method, status code, database), and a repeat then costs a hash and a compare instead
 * of three hint probes, the rule match, the text form, the term key and its hash. */
struct attr_memo {
    uint64_t h;
    const struct span_attr *a; /* the first occurrence (valid during the write) */
    uint32_t gen;
    uint32_t ix; /* its index term in the write + 1, 0 = not indexed */
};
#define ATTR_MEMO 512

/* A service or service-and-name term of the write (see span_memo_at). */
struct span_memo {
    uint64_t h;
    const struct span *s; /* the first span that carried it */
    uint32_t gen;
    uint32_t ix; /* its index term + 1, 0 = none yet */
};
#define SPAN_MEMO 256

/* The write's "every trace", status and duration terms in its first hour (+ 1). */
struct fixed_memo {
    uint32_t gen, bucket;
    uint32_t all, status[4], dur[64];
};

/* The scratch of one write, pooled in the store (spanstore_int.h) so steady writes
 * reuse their buffers, hash tables and LevelDB batches instead of growing new ones. */
/* One posting of an index term collected in a write: trace ord (the write's trace
 * number) carries the term, first at time t; next chains the term's postings. */
struct posting {
    const uint8_t *tid;
    int64_t t;
    uint32_t ord, next; /* next posting + 1, 0 = none */
};

struct write_ctx {
    struct spanstore *ss;
    struct keyset ix, reg; /* ix: index term keys (no trace id), postings chained */
    struct posting *posts;
    size_t nposts, capposts;
    struct span_head_posting *hpost; /* head_add_postings' buffer, capposts entries */
    uint32_t ord;               /* the trace being added (one per write_trace) */
    struct vg_buf text;
    struct res_memo memo[RES_MEMO];
    size_t nmemo, memo_next;
    struct vg_buf res_terms;
    struct vg_buf bufs[4];
    struct kv_batch *kb, *cb; /* the index database's batch, the chunk database's */
    struct write_ctx *next;   /* in the pool */
    struct attr_memo amemo[ATTR_MEMO];
    struct span_memo smemo[SPAN_MEMO];
    struct fixed_memo fmemo;
    uint32_t amemo_gen;       /* memo slots of other generations are free */
};

/* Adds s's posting to the index term whose key was just built at [off, ix.b.len). The
 * spans of one trace are added together (write_trace), so a repeat of the term in the
 * same trace is the term's last posting: it keeps the earlier time. */
static void entry_posting(struct write_ctx *w, size_t i, const struct span *s);

static size_t add_posting(struct write_ctx *w, size_t off, const struct span *s)
{
    size_t i = ks_add(&w->ix, off, 0, 0, 0, 0);
    if (i != SIZE_MAX)
        entry_posting(w, i, s);
    return i;
}

/* Adds s's posting to index term i of the write. */
static void entry_posting(struct write_ctx *w, size_t i, const struct span *s)
{
    struct entry *e = &w->ix.v[i];
    if (e->tail && w->posts[e->tail - 1].ord == w->ord) {
        struct posting *p = &w->posts[e->tail - 1];
        if (s->start_ns < p->t)
            p->t = s->start_ns;
        return;
    }
    if (w->nposts == w->capposts) {
        size_t nc = w->capposts ? w->capposts * 2 : 512;
        struct posting *np = nc < UINT32_MAX ? vg_realloc(w->posts, nc * sizeof *np) : NULL;
        struct span_head_posting *nr = np ? vg_realloc(w->hpost, nc * sizeof *nr) : NULL;
        if (np)
            w->posts = np;
        if (!nr) {
            w->ix.failed = true;
            return;
        }
        w->hpost = nr;
        w->capposts = nc;
    }
    w->posts[w->nposts] = (struct posting){ s->trace_id, s->start_ns, w->ord, 0 };
    uint32_t pi = (uint32_t)++w->nposts;
    if (e->tail)
        w->posts[e->tail - 1].next = pi;
    else
        e->head = pi;
    e->tail = pi;
}

static size_t add_index(struct write_ctx *w, uint32_t b, const struct span_index_term *t,
                        const struct span *s)
{
    size_t off = w->ix.b.len;
    span_index_term_key(&w->ix.b, b, t);
    return add_posting(w, off, s);
}

/* The capped family of a registry entry is every entry of its kind in the bucket, or for
 * values, every value of the same attribute key in the bucket. */
static void add_reg(struct write_ctx *w, uint32_t b, const struct span_index_term *t,
                    size_t cap, uint64_t hint, uint64_t famhint)
{
    size_t off = w->reg.b.len;
    span_index_term_key(&w->reg.b, b, t);
    size_t fam = 6; /* 'X', bucket, kind */
    if (t->kind == SPAN_REG_VALUE) {
        fam = 7 + t->a.len; /* then scope and str key */
        for (size_t n = t->a.len; ; n >>= 7) {
            fam++;
            if (n < 0x80)
                break;
        }
    }
    ks_add(&w->reg, off, fam, cap, hint, famhint);
}

/* Adds the index entry of s under a term key built before (tk, tlen bytes). */
static void add_index_raw(struct write_ctx *w, const char *tk, size_t tlen, const struct span *s)
{
    size_t off = w->ix.b.len;
    vg_buf_append(&w->ix.b, tk, tlen);
    add_posting(w, off, s);
}

static void add_attrs(struct write_ctx *w, uint32_t b, const struct span *s,
                      const struct span_attr *a, size_t n, uint8_t scope)
{
    if (!a) /* a span without attributes may carry n = 0 and no array */
        return;
    struct spanstore *ss = w->ss;
    const struct spanstore_opts *o = &ss->opts;
    uint64_t h0 = hint_start(b, SPAN_REG_KEY, scope);
    for (size_t i = 0; i < n; i++) {
        if (scope == SPAN_SCOPE_RESOURCE && vg_str_eq_c(a[i].key, "service.name"))
            continue; /* it is the service index */
        struct span_index_term t = { .kind = SPAN_REG_KEY, .byte = scope, .a = a[i].key };
        uint64_t hk = hint_mix(h0, a[i].key.p, a[i].key.len);
        if (!hint_has(ss, hk))
            add_reg(w, b, &t, o->max_keys, hk, 0);
        uint8_t vt = (uint8_t)a[i].type;
        uint64_t hf = hint_byte(hk, 'F');
        struct vg_str raw = raw_value(&a[i]);
        uint64_t hv = hint_mix(hint_byte(hk, vt), raw.p, raw.len);
        /* span attributes only: a resource attribute also goes into res_terms below */
        struct attr_memo *m = scope == SPAN_SCOPE_SPAN ? &w->amemo[hv & (ATTR_MEMO - 1)]
                                                        : &(struct attr_memo){ 0 };
        if (m->gen == w->amemo_gen && m->h == hv && m->a->type == a[i].type &&
            vg_str_eq(m->a->key, a[i].key)) {
            struct vg_str mraw = raw_value(m->a);
            if (mraw.len == raw.len && memcmp(mraw.p, raw.p, raw.len) == 0) {
                if (m->ix)
                    entry_posting(w, m->ix - 1, s);
                continue;
            }
        }
        *m = (struct attr_memo){ hv, &a[i], w->amemo_gen, 0 };
        bool reg = !hint_has(ss, hf) && !hint_has(ss, hv);
        bool ix = spanstore_is_indexed(ss, a[i].key);
        if (!reg && !ix)
            continue;
        vg_buf_reset(&w->text);
        if (!span_attr_text(&a[i], &w->text) || w->text.len > SPAN_INDEX_MAX_VALUE)
            continue;
        t.b = (struct vg_str){ w->text.p ? w->text.p : "", w->text.len };
        t.kind = SPAN_REG_VALUE;
        t.vtype = vt;
        if (reg)
            add_reg(w, b, &t, o->max_values_per_key, hv, hf);
        if (ix) {
            t.kind = SPAN_IX_ATTR;
            size_t e = add_index(w, b, &t, s);
            if (e != SIZE_MAX && scope == SPAN_SCOPE_SPAN)
                m->ix = (uint32_t)e + 1;
            if (scope == SPAN_SCOPE_RESOURCE) { /* the term key again, for res_terms */
                size_t o = w->res_terms.len;
                uint32_t tl = 0;
                vg_buf_append(&w->res_terms, &tl, sizeof tl);
                span_index_term_key(&w->res_terms, b, &t);
                tl = (uint32_t)(w->res_terms.len - o - sizeof tl);
                if (!vg_buf_failed(&w->res_terms))
                    memcpy(w->res_terms.p + o, &tl, sizeof tl);
            }
        }
    }
}

/* The resource attributes of s: worked out once per resource array and bucket. */
static void add_resource(struct write_ctx *w, uint32_t b, const struct span *s)
{
    if (!s->resource_attrs)
        return;
    for (size_t i = 0; i < w->nmemo; i++) {
        const struct res_memo *m = &w->memo[i];
        if (m->a != s->resource_attrs || m->n != s->nresource_attrs || m->b != b)
            continue;
        for (size_t o = m->off; o + sizeof(uint32_t) <= m->off + m->len;) {
            uint32_t tl;
            memcpy(&tl, w->res_terms.p + o, sizeof tl);
            add_index_raw(w, w->res_terms.p + o + sizeof tl, tl, s);
            o += sizeof tl + tl;
        }
        return;
    }
    size_t off = w->res_terms.len;
    add_attrs(w, b, s, s->resource_attrs, s->nresource_attrs, SPAN_SCOPE_RESOURCE);
    if (vg_buf_failed(&w->res_terms))
        return; /* not remembered: the next span works it out again */
    size_t i = w->nmemo < RES_MEMO ? w->nmemo++ : w->memo_next++ % RES_MEMO;
    w->memo[i] = (struct res_memo){ s->resource_attrs, s->nresource_attrs, off,
                                    w->res_terms.len - off, b };
}

/* The write's index term under key slot *slot (entry index + 1, 0 = not yet): a repeat
 * takes the posting straight; the first builds the term (add_index) and remembers it. */
static void memo_index(struct write_ctx *w, uint32_t *slot, uint32_t b,
                       const struct span_index_term *t, const struct span *s)
{
    if (*slot) {
        entry_posting(w, *slot - 1, s);
        return;
    }
    size_t e = add_index(w, b, t, s);
    if (e != SIZE_MAX)
        *slot = (uint32_t)e + 1;
}

/* A span's service or service-and-name terms already built in this write, found by
 * their registry hint (which hashes the same fields and the hour) and checked on the
 * strings: the fixed terms of a span recur across the write's spans, and a repeat then
 * costs a compare instead of building, hashing and probing the term key. */
static struct span_memo *span_memo_at(struct write_ctx *w, uint64_t h, const struct span *s,
                                      bool name, bool *hit)
{
    struct span_memo *m = &w->smemo[h & (SPAN_MEMO - 1)];
    *hit = m->gen == w->amemo_gen && m->h == h && vg_str_eq(m->s->service, s->service) &&
           (!name || (vg_str_eq(m->s->name, s->name) && m->s->kind == s->kind));
    if (!*hit)
        *m = (struct span_memo){ h, s, w->amemo_gen, 0 };
    return m;
}

static void add_span_entries(struct write_ctx *w, const struct span *s)
{
    struct spanstore *ss = w->ss;
    uint32_t b = span_index_bucket(s->start_ns);
    uint8_t dur = span_index_duration_bucket(s->end_ns - s->start_ns);
    uint8_t st = (uint8_t)s->status;
    /* the terms without strings: direct slots for the write's first hour */
    struct fixed_memo *f = &w->fmemo;
    if (f->gen != w->amemo_gen) {
        memset(f, 0, sizeof *f);
        f->gen = w->amemo_gen;
        f->bucket = b;
    }
    bool fixed = f->bucket == b && st < 4 && dur < 64;
    struct span_index_term t = { .kind = SPAN_IX_ALL };
    memo_index(w, fixed ? &f->all : &(uint32_t){ 0 }, b, &t, s);
    t = (struct span_index_term){ .kind = SPAN_IX_STATUS, .byte = st };
    memo_index(w, fixed ? &f->status[st] : &(uint32_t){ 0 }, b, &t, s);
    t = (struct span_index_term){ .kind = SPAN_IX_DURATION, .byte = dur };
    memo_index(w, fixed ? &f->dur[dur] : &(uint32_t){ 0 }, b, &t, s);

    uint64_t h = hint_mix(hint_start(b, SPAN_REG_SERVICE, 0), s->service.p, s->service.len);
    bool hit;
    struct span_memo *m = span_memo_at(w, h, s, false, &hit);
    t = (struct span_index_term){ .kind = SPAN_IX_SERVICE, .a = s->service };
    memo_index(w, &m->ix, b, &t, s);
    if (!hit && !hint_has(ss, h)) {
        t.kind = SPAN_REG_SERVICE;
        add_reg(w, b, &t, ss->opts.max_keys, h, 0);
    }
    uint8_t k = (uint8_t)s->kind;
    h = hint_byte(hint_mix(hint_mix(hint_start(b, SPAN_REG_OP, 0), s->service.p,
                                    s->service.len), s->name.p, s->name.len), k);
    m = span_memo_at(w, h, s, true, &hit);
    t = (struct span_index_term){ .kind = SPAN_IX_NAME, .a = s->service, .b = s->name };
    memo_index(w, &m->ix, b, &t, s);
    if (!hit && !hint_has(ss, h)) {
        t.kind = SPAN_REG_OP;
        t.op_kind = k;
        add_reg(w, b, &t, ss->opts.max_keys, h, 0);
    }
    add_attrs(w, b, s, s->attrs, s->nattrs, SPAN_SCOPE_SPAN);
    add_resource(w, b, s);
}

/* After the batch is written: its registry entries are stored (or refused as full). */
static void set_hints(struct write_ctx *w)
{
    for (size_t i = 0; i < w->reg.n; i++) {
        const struct entry *e = &w->reg.v[i];
        hint_set(w->ss, e->hint);
        if (e->full)
            hint_set(w->ss, e->famhint);
    }
}

/* Hands the write's postings to the head, one add per term (postings of the term's
 * chain, one per trace). Called with the head locked. false when out of memory. */
static bool head_add_postings(struct write_ctx *w)
{
    bool ok = true;
    for (size_t i = 0; ok && i < w->ix.n; i++) {
        const struct entry *e = &w->ix.v[i];
        size_t m = 0;
        for (uint32_t p = e->head; p; p = w->posts[p - 1].next) {
            struct span_head_posting *hp = &w->hpost[m++];
            hp->t = w->posts[p - 1].t;
            memcpy(hp->tid, w->posts[p - 1].tid, SPAN_TRACE_ID_LEN);
        }
        ok = span_head_add(w->ss->head, w->ix.b.p + e->off, e->len, e->h, w->hpost, m);
    }
    return ok;
}

/* ---- the in-flight writes that hold the flush watermark back (head locked) ---- */

static bool inflight_add(struct spanstore *ss, uint64_t id)
{
    if (ss->ninflight == ss->capinflight) {
        size_t nc = ss->capinflight ? ss->capinflight * 2 : 16;
        uint64_t *nv = vg_realloc(ss->inflight, nc * sizeof *nv);
        if (!nv)
            return false;
        ss->inflight = nv;
        ss->capinflight = nc;
    }
    ss->inflight[ss->ninflight++] = id;
    return true;
}

static void inflight_remove(struct spanstore *ss, uint64_t id)
{
    for (size_t i = 0; i < ss->ninflight; i++)
        if (ss->inflight[i] == id) {
            ss->inflight[i] = ss->inflight[--ss->ninflight];
            return;
        }
}

/* How many keys start with prefix, counting up to limit. */
static uint64_t count_prefix(struct spanstore *ss, const char *prefix, size_t plen,
                             uint64_t limit)
{
    struct kv_iter *it = kv_iter_new(ss->kv, NULL, false);
    uint64_t n = 0;
    if (!it)
        return limit; /* out of memory: treat the family as full */
    for (kv_iter_seek(it, prefix, plen); n < limit && kv_iter_has_prefix(it, prefix, plen);
         kv_iter_next(it))
        n++;
    kv_iter_free(it);
    return n;
}

/* Adds the registry entries not known to be stored and within their family's cap.
 * Called with reg_mu held. */
static int put_registry(struct write_ctx *w, struct kv_batch *kb, struct vg_err *err)
{
    struct spanstore *ss = w->ss;
    struct spanstore_cache *c = ss->cache;
    struct vg_buf scratch;
    vg_buf_init(&scratch);
    int rc = 0;
    for (size_t i = 0; i < w->reg.n && !rc; i++) {
        struct entry *e = &w->reg.v[i];
        const char *k = w->reg.b.p + e->off;
        uint64_t h = e->h;
        size_t si = slot_of(c->seen, sizeof c->seen[0], h);
        if (c->seen[si] == h)
            continue;
        if (c->nseen >= CACHE_SLOTS / 2 || c->nfam >= CACHE_SLOTS / 2) {
            cache_clear(c);
            si = slot_of(c->seen, sizeof c->seen[0], h);
        }
        uint64_t fh = span_head_hash(k, e->fam);
        size_t fi = slot_of(c->fam, sizeof c->fam[0], fh);
        if (c->fam[fi].h != fh) {
            c->fam[fi] = (struct fam_slot){ fh, count_prefix(ss, k, e->fam, e->cap) };
            c->nfam++;
        }
        /* A full family refuses new entries for this hour without a lookup, and the
         * refusal is remembered: high-cardinality keys cost one hash per span. */
        e->full = c->fam[fi].count >= e->cap;
        int g = e->full ? 0 : kv_get(ss->kv, NULL, k, e->len, &scratch, err);
        if (g == VG_ENOTFOUND) {
            c->fam[fi].count++;
            kv_batch_put(kb, k, e->len, "", 0);
        } else if (g != 0) {
            rc = g;
            break;
        }
        c->seen[si] = h;
        c->nseen++;
    }
    vg_buf_free(&scratch);
    return rc;
}

/* ---- writing ---- */

/* Byte order of n bytes (a multiple of 8) compared a word at a time. */
static int cmp_words(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
            x = __builtin_bswap64(x);
            y = __builtin_bswap64(y);
            return x < y ? -1 : 1;
        }
    }
    return 0;
}

/* By trace id, then span id, then position in the request (stable). */
static int span_cmp(const struct span *x, const struct span *y)
{
    int c = cmp_words(x->trace_id, y->trace_id, SPAN_TRACE_ID_LEN);
    if (!c)
        c = cmp_words(x->span_id, y->span_id, SPAN_ID_LEN);
    return c ? c : (x < y ? -1 : x > y);
}

/* Sorts v[0..n) by span_cmp, using tmp (n entries): a bottom-up merge sort with the
 * comparison inlined (qsort's indirect calls were 2% of a write). */
static void sort_spans(const struct span **v, const struct span **tmp, size_t n)
{
    const struct span **src = v, **dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = span_cmp(src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        const struct span **t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
}

static void lock_stripes(struct spanstore *ss, const uint8_t *want, bool lock)
{
    for (int i = 0; i < SPANSTORE_STRIPES; i++)
        if (want[i]) {
            if (lock)
                pthread_mutex_lock(&ss->stripes[i]);
            else
                pthread_mutex_unlock(&ss->stripes[i]);
        }
}

int spanstore_read_summary(struct spanstore *ss, const uint8_t *tid, struct vg_buf *key,
                           struct vg_buf *val, struct span_index_summary *sum, bool *found,
                           struct vg_err *err)
{
    vg_buf_reset(key);
    span_index_summary_key(key, tid);
    memset(sum, 0, sizeof *sum);
    *found = false;
    if (vg_buf_failed(key))
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for a key");
    int rc = kv_get(ss->kv, NULL, key->p, key->len, val, err);
    atomic_fetch_add(&ss->keys_read, 1);
    *found = rc == 0;
    if (rc == VG_ENOTFOUND)
        return 0;
    return rc ? rc : span_index_summary_decode(val->p, val->len, sum, err);
}

void spanstore_chunk_key(uint8_t *k, uint64_t id)
{
    for (int i = 0; i < SPAN_INDEX_CHUNK_ID_LEN; i++)
        k[i] = (uint8_t)(id >> (8 * (SPAN_INDEX_CHUNK_ID_LEN - 1 - i)));
}

/* Calls fn with each span of one stored value (a chunk or a single span). */
static int value_spans(const char *v, size_t vlen, spanstore_span_fn fn, void *arg,
                       struct vg_err *err)
{
    struct span_chunk_iter ci;
    span_chunk_iter_init(&ci, v, vlen);
    const void *enc;
    size_t elen;
    int rc;
    while ((rc = span_chunk_next(&ci, &enc, &elen, err)) == 1)
        if ((rc = fn(arg, enc, elen, err)) != 0)
            break;
    span_chunk_iter_free(&ci);
    return rc;
}

int spanstore_trace_values(struct spanstore *ss, const uint8_t *tid,
                           const struct span_index_summary *sum, spanstore_span_fn fn,
                           void *arg, uint64_t *keys, struct vg_err *err)
{
    int rc = 0;
    if (sum->legacy) {
        char pfx[1 + SPAN_TRACE_ID_LEN] = { SPAN_KEY_SPAN };
        memcpy(pfx + 1, tid, SPAN_TRACE_ID_LEN);
        struct kv_iter *it = kv_iter_new(ss->kv, NULL, true);
        if (!it)
            return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory reading a trace");
        for (kv_iter_seek(it, pfx, sizeof pfx); !rc && kv_iter_has_prefix(it, pfx, sizeof pfx);
             kv_iter_next(it)) {
            size_t vlen;
            const char *v = kv_iter_value(it, &vlen);
            ++*keys;
            rc = value_spans(v, vlen, fn, arg, err);
        }
        if (!rc)
            rc = kv_iter_error(it, err);
        kv_iter_free(it);
    }
    struct vg_buf val;
    vg_buf_init(&val);
    for (size_t i = 0; !rc && i < sum->nchunks; i++) {
        uint8_t k[SPAN_INDEX_CHUNK_ID_LEN];
        spanstore_chunk_key(k, span_index_summary_chunk(sum, i));
        ++*keys;
        rc = kv_get(ss->chunks, NULL, k, sizeof k, &val, err);
        if (rc == VG_ENOTFOUND)
            rc = 0;
        else if (!rc)
            rc = value_spans(val.p, val.len, fn, arg, err);
    }
    vg_buf_free(&val);
    return rc < 0 ? rc : 0;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SPAN_ID_LEN);
}

static int collect_id(void *arg, const void *enc, size_t elen, struct vg_err *err)
{
    struct span h;
    int rc = span_decode_header(enc, elen, &h, err);
    if (!rc)
        vg_buf_append(arg, h.span_id, SPAN_ID_LEN);
    return rc;
}

/* The span ids already stored for the trace of sum, sorted, into ids (SPAN_ID_LEN bytes
 * each). */
static int stored_ids(struct spanstore *ss, const uint8_t *tid,
                      const struct span_index_summary *sum, struct vg_buf *ids,
                      struct vg_err *err)
{
    vg_buf_reset(ids);
    uint64_t keys = 0;
    int rc = spanstore_trace_values(ss, tid, sum, collect_id, ids, &keys, err);
    atomic_fetch_add(&ss->keys_read, keys);
    if (!rc && vg_buf_failed(ids))
        rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory reading a trace");
    if (!rc && ids->len)
        qsort(ids->p, ids->len / SPAN_ID_LEN, SPAN_ID_LEN, id_cmp);
    return rc;
}

/* Adds the new spans of one trace, sorted[i0..i1), as one chunk under a new chunk id to
 * cb (the chunk database's batch), and the summary listing it to kb. */
static int write_trace(struct write_ctx *w, struct kv_batch *kb, struct kv_batch *cb,
                       const struct span **sorted,
                       size_t i0, size_t i1, struct span_index_counts *delta,
                       struct spanstore_write_result *res, struct vg_buf *bufs,
                       struct vg_err *err)
{
    struct spanstore *ss = w->ss;
    struct vg_buf *key = &bufs[0], *val = &bufs[1], *enc = &bufs[2], *chunk = &bufs[3];
    const uint8_t *tid = sorted[i0]->trace_id;
    struct span_index_summary sum;
    bool found;
    w->ord++; /* a new trace: its postings start fresh (add_posting) */
    /* Asked, then added before the summary is written, under the trace's stripe lock:
     * a later write of this trace finds it. */
    bool maybe = trace_filter_maybe(ss->tfilter, tid);
    trace_filter_add(ss->tfilter, tid);
    int rc = 0;
    if (maybe)
        rc = spanstore_read_summary(ss, tid, key, val, &sum, &found, err);
    else /* a new trace: nothing to read */
        memset(&sum, 0, sizeof sum), found = false;
    if (!rc && found)
        rc = stored_ids(ss, tid, &sum, enc, err); /* enc holds the ids until the loop */
    if (rc)
        return rc;
    size_t nids = found ? enc->len / SPAN_ID_LEN : 0;
    uint8_t(*ids)[SPAN_ID_LEN] = NULL;
    if (nids) {
        ids = vg_malloc(enc->len);
        if (!ids)
            return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for %zu ids", nids);
        memcpy(ids, enc->p, enc->len);
    }
    size_t before = sum.spans;
    const struct span *first = NULL;
    vg_buf_reset(chunk);
    struct span_chunk_w cw;
    span_chunk_w_init(&cw, chunk);
    for (size_t i = i0; i < i1; i++) {
        const struct span *s = sorted[i];
        if ((i > i0 && memcmp(s->span_id, sorted[i - 1]->span_id, SPAN_ID_LEN) == 0) ||
            (nids && bsearch(s->span_id, ids, nids, SPAN_ID_LEN, id_cmp))) {
            res->duplicates++;
            continue;
        }
        size_t elen; /* the span's version-1 length: what the counters count */
        rc = span_pack_add(&cw, s, &elen, err); /* (sorted keeps s alive, as it needs) */
        if (rc)
            break;
        first = first ? first : s;
        span_index_summary_add(&sum, s, elen);
        delta->bytes += elen;
        add_span_entries(w, s);
    }
    vg_free(ids);
    if (rc || !first)
        return rc;
    if (vg_buf_failed(chunk))
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for a chunk");
    uint8_t ck[SPAN_INDEX_CHUNK_ID_LEN];
    sum.new_chunk = atomic_fetch_add(&ss->next_chunk, 1);
    spanstore_chunk_key(ck, sum.new_chunk);
    kv_batch_put(cb, ck, sizeof ck, chunk->p, chunk->len);
    delta->spans += sum.spans - before;
    delta->traces += !found;
    res->traces_created += !found;
    res->accepted += sum.spans - before;
    vg_buf_reset(enc);
    span_index_summary_encode(&sum, enc); /* before val (sum's strings) is reused */
    vg_buf_reset(key);
    span_index_summary_key(key, tid);
    if (vg_buf_failed(key) || vg_buf_failed(enc))
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for a summary");
    kv_batch_put(kb, key->p, key->len, enc->p, enc->len);
    return 0;
}

/* Write scratch above this many bytes is freed instead of pooled (a rare huge write
 * should not stay resident). */
#define POOL_KEEP_BYTES ((size_t)1 << 20)
#define POOL_MAX 8

static void ctx_free(struct write_ctx *w)
{
    if (!w)
        return;
    ks_free(&w->ix);
    ks_free(&w->reg);
    vg_free(w->posts);
    vg_free(w->hpost);
    vg_buf_free(&w->text);
    vg_buf_free(&w->res_terms);
    for (int i = 0; i < 4; i++)
        vg_buf_free(&w->bufs[i]);
    kv_batch_free(w->kb);
    kv_batch_free(w->cb);
    vg_free(w);
}

static void pool_free(struct spanstore *ss)
{
    while (ss->pool) {
        struct write_ctx *w = ss->pool;
        ss->pool = w->next;
        ctx_free(w);
    }
}

/* A write scratch from the pool, or a new one; NULL when out of memory. */
static struct write_ctx *ctx_get(struct spanstore *ss)
{
    pthread_mutex_lock(&ss->pool_mu);
    struct write_ctx *w = ss->pool;
    if (w) {
        ss->pool = w->next;
        ss->npool--;
    }
    pthread_mutex_unlock(&ss->pool_mu);
    if (w)
        return w;
    w = vg_calloc(1, sizeof *w); /* zeroed: every vg_buf and keyset starts empty */
    if (!w)
        return NULL;
    w->ss = ss;
    w->kb = kv_batch_new();
    w->cb = kv_batch_new();
    if (!w->kb || !w->cb) {
        ctx_free(w);
        return NULL;
    }
    return w;
}

static size_t ks_bytes(const struct keyset *ks)
{
    return ks->b.cap + ks->cap * sizeof *ks->v + ks->nslots * sizeof *ks->slots;
}

static void ks_clear(struct keyset *ks)
{
    vg_buf_reset(&ks->b);
    if (ks->n && ks->slots)
        memset(ks->slots, 0, ks->nslots * sizeof *ks->slots);
    ks->n = 0;
    ks->failed = false;
}

/* Empties w and gives it back to the pool (or frees it when the pool is full or w grew
 * past POOL_KEEP_BYTES). */
static void ctx_put(struct spanstore *ss, struct write_ctx *w)
{
    size_t bytes = ks_bytes(&w->ix) + ks_bytes(&w->reg) + w->text.cap + w->res_terms.cap +
                   w->capposts * (sizeof *w->posts + sizeof *w->hpost);
    for (int i = 0; i < 4; i++)
        bytes += w->bufs[i].cap;
    if (bytes > POOL_KEEP_BYTES) {
        ctx_free(w);
        return;
    }
    ks_clear(&w->ix);
    ks_clear(&w->reg);
    vg_buf_reset(&w->text);
    vg_buf_reset(&w->res_terms);
    for (int i = 0; i < 4; i++)
        vg_buf_reset(&w->bufs[i]);
    w->nmemo = w->memo_next = 0;
    if (++w->amemo_gen == 0) { /* wrapped: no slot may look current */
        memset(w->amemo, 0, sizeof w->amemo);
        w->amemo_gen = 1;
    }
    w->nposts = 0;
    w->ord = 0;
    kv_batch_clear(w->kb);
    kv_batch_clear(w->cb);
    pthread_mutex_lock(&ss->pool_mu);
    bool keep = ss->npool < POOL_MAX;
    if (keep) {
        w->next = ss->pool;
        ss->pool = w;
        ss->npool++;
    }
    pthread_mutex_unlock(&ss->pool_mu);
    if (!keep)
        ctx_free(w);
}

void spanstore_put_counts(struct spanstore *ss, struct kv_batch *kb, unsigned slot,
                          const struct span_index_counts *d, bool subtract,
                          struct span_index_counts *c, struct vg_buf *key, struct vg_buf *val)
{
    *c = ss->counts[slot];
    c->spans += subtract ? 0 - d->spans : d->spans; /* modulo 2^64, see spanstore_int.h */
    c->traces += subtract ? 0 - d->traces : d->traces;
    c->bytes += subtract ? 0 - d->bytes : d->bytes;
    vg_buf_reset(key);
    vg_buf_reset(val);
    span_index_stats_key(key, slot);
    span_index_counts_encode(c, val);
    kv_batch_put(kb, key->p, key->len, val->p, val->len);
}

static int write_sorted(struct spanstore *ss, const struct span **sorted, size_t n,
                        struct spanstore_write_result *res, struct vg_err *err)
{
    uint8_t want[SPANSTORE_STRIPES] = { 0 };
    for (size_t i = 0; i < n; i++)
        want[spanstore_stripe(sorted[i]->trace_id)] = 1;
    struct span_index_counts delta = { 0 }, counted;
    struct write_ctx *w = ctx_get(ss);
    if (!w)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for a write");
    struct kv_batch *kb = w->kb, *cb = w->cb;
    struct vg_buf *bufs = w->bufs;
    int rc = 0;

    /* Registered as in flight before it takes chunk ids, so no flush's watermark
     * passes this write's chunks until its postings are in the head. */
    span_head_lock(ss->head);
    uint64_t write_id = atomic_fetch_add(&ss->next_chunk, 1);
    if (!inflight_add(ss, write_id))
        ss->head_floor = write_id < ss->head_floor ? write_id : ss->head_floor;
    span_head_unlock(ss->head);
    lock_stripes(ss, want, true);
    for (size_t i = 0; !rc && i < n;) {
        size_t j = i + 1;
        while (j < n && memcmp(sorted[j]->trace_id, sorted[i]->trace_id, SPAN_TRACE_ID_LEN) == 0)
            j++;
        rc = write_trace(w, kb, cb, sorted, i, j, &delta, res, bufs, err);
        i = j;
    }
    if (!rc && (w->ix.failed || w->reg.failed || vg_buf_failed(&w->ix.b) ||
                vg_buf_failed(&w->reg.b)))
        rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory building index keys");
    unsigned slot = (unsigned)(write_id % SPANSTORE_COUNT_SLOTS);
    pthread_mutex_lock(&ss->cnt_mu[slot]);
    if (!rc) {
        if (delta.spans)
            spanstore_put_counts(ss, kb, slot, &delta, false, &counted, &bufs[0], &bufs[1]);
        pthread_mutex_lock(&ss->reg_mu);
        rc = put_registry(w, kb, err);
        pthread_mutex_unlock(&ss->reg_mu);
        if (!rc && (vg_buf_failed(&bufs[0]) || vg_buf_failed(&bufs[1])))
            rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory building keys");
        /* Not under reg_mu, so concurrent writers' syncs group-commit. The chunks go
         * first: until the summaries naming them are written they are unreachable, so
         * a crash between the two writes leaves nothing of the batch visible (only
         * unreferenced chunks). */
        if (!rc && kv_batch_count(cb))
            rc = kv_write(ss->chunks, cb, !ss->opts.no_sync, err);
        if (!rc)
            rc = kv_write(ss->kv, kb, !ss->opts.no_sync, err);
        if (rc) { /* entries remembered as stored may not be: forget them all */
            pthread_mutex_lock(&ss->reg_mu);
            cache_clear(ss->cache);
            pthread_mutex_unlock(&ss->reg_mu);
        }
    }
    if (!rc) {
        set_hints(w);
        if (delta.spans)
            ss->counts[slot] = counted;
    }
    pthread_mutex_unlock(&ss->cnt_mu[slot]);
    bool flush = false;
    span_head_lock(ss->head);
    /* Postings the head could not take are lost only until a restart replays them. */
    if (!rc && !head_add_postings(w))
        ss->head_floor = write_id < ss->head_floor ? write_id : ss->head_floor;
    inflight_remove(ss, write_id);
    if (span_head_active(ss->head) >= ss->opts.index_flush_postings &&
        !atomic_exchange(&ss->flush_wanted, true))
        flush = true;
    span_head_unlock(ss->head);
    lock_stripes(ss, want, false);
    if (flush && ss->has_threads) {
        vg_ticker_kick(&ss->flusher);
    } else if (flush) {
        struct vg_err ferr = { 0 };
        if (spanstore_flush_index(ss, &ferr) != 0)
            vg_log(VG_LOG_ERROR, "spanstore", "index flush failed", "error", ferr.msg, NULL);
    }
    if (rc)
        ctx_free(w); /* after a failure (often out of memory) its memory goes back */
    else
        ctx_put(ss, w);
    return rc;
}

int spanstore_write(struct spanstore *ss, const struct span *spans, size_t n,
                    struct spanstore_write_result *res, struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    const struct span **sorted = vg_malloc((n ? 2 * n : 1) * sizeof *sorted); /* + tmp */
    if (!sorted)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for %zu spans", n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        struct vg_err verr;
        if (span_validate(&spans[i], &verr) == 0) {
            sorted[m++] = &spans[i];
            continue;
        }
        if (!res->rejected++)
            snprintf(res->first_reject, sizeof res->first_reject, "span %zu: %.200s", i, verr.msg);
    }
    sort_spans(sorted, sorted + n, m);
    int rc = m ? write_sorted(ss, sorted, m, res, err) : 0;
    if (rc) {
        uint64_t rejected = res->rejected;
        char first[sizeof res->first_reject];
        memcpy(first, res->first_reject, sizeof first);
        memset(res, 0, sizeof *res);
        res->rejected = rejected;
        memcpy(res->first_reject, first, sizeof first);
    }
    vg_free(sorted);
    return rc;
}

/* ---- rebuilding the head after a crash ---- */

/* Whether sum lists chunk id. */
static bool summary_has_chunk(const struct span_index_summary *sum, uint64_t id)
{
    for (size_t i = sum->nchunks; i-- > 0;)
        if (span_index_summary_chunk(sum, i) == id)
            return true;
    return false;
}

struct replay {
    struct vg_arena *a;
    struct span *spans;
    size_t n, cap;
};

static int replay_span(void *arg, const void *enc, size_t elen, struct vg_err *err)
{
    struct replay *r = arg;
    char *copy = vg_arena_alloc(r->a, elen ? elen : 1);
    if (!copy)
        return vg_err_set(err, VG_ENOMEM, "spanstore replay: out of memory");
    memcpy(copy, enc, elen);
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 64;
        struct span *nv = vg_arena_alloc(r->a, nc * sizeof *nv);
        if (!nv)
            return vg_err_set(err, VG_ENOMEM, "spanstore replay: out of memory");
        if (r->n)
            memcpy(nv, r->spans, r->n * sizeof *nv);
        r->spans = nv;
        r->cap = nc;
    }
    return span_decode(copy, elen, r->a, &r->spans[r->n++], err);
}

/* Hands the postings collected in w to the head and starts w afresh. */
static struct write_ctx *replay_commit(struct spanstore *ss, struct write_ctx *w,
                                       struct vg_arena *a, struct vg_err *err)
{
    span_head_lock(ss->head);
    bool ok = !w->ix.failed && !vg_buf_failed(&w->ix.b) && head_add_postings(w);
    span_head_unlock(ss->head);
    ctx_put(ss, w);
    vg_arena_reset(a);
    if (!ok) {
        vg_err_set(err, VG_ENOMEM, "spanstore replay: out of memory");
        return NULL;
    }
    w = ctx_get(ss);
    if (!w)
        vg_err_set(err, VG_ENOMEM, "spanstore replay: out of memory");
    return w;
}

/* Adds the postings of every chunk from id `from` on to the head: the chunks written
 * after the newest segment's watermark, whose postings were only in memory when the
 * store stopped. A chunk its trace's summary does not list (the summary write of its
 * batch never happened) is skipped, as readers skip it. Each chunk holds one trace's
 * spans of one write, so its postings are the ones that write made. */
static int replay_chunks(struct spanstore *ss, uint64_t from, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(ss->chunks, NULL, false);
    struct vg_arena *a = vg_arena_new((size_t)256 * 1024);
    struct write_ctx *w = ctx_get(ss);
    struct vg_buf key, val;
    vg_buf_init(&key);
    vg_buf_init(&val);
    int rc = it && a && w ? 0 : vg_err_set(err, VG_ENOMEM, "spanstore replay: out of memory");
    uint8_t ck[SPAN_INDEX_CHUNK_ID_LEN];
    spanstore_chunk_key(ck, from);
    uint64_t nchunks = 0, nspans = 0, pending = 0;
    for (kv_iter_seek(it, ck, sizeof ck); !rc && kv_iter_valid(it); kv_iter_next(it)) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        uint64_t id = 0;
        for (size_t i = 0; i < klen && i < SPAN_INDEX_CHUNK_ID_LEN; i++)
            id = id << 8 | (uint8_t)k[i];
        struct replay r = { .a = a };
        struct span_chunk_iter ci;
        span_chunk_iter_init(&ci, v, vlen);
        const void *enc;
        size_t elen;
        while (!rc && (rc = span_chunk_next(&ci, &enc, &elen, err)) == 1)
            rc = replay_span(&r, enc, elen, err);
        span_chunk_iter_free(&ci);
        if (rc) {
            vg_err_prefix(err, "spanstore replay: chunk %llu", (unsigned long long)id);
            break;
        }
        if (!r.n)
            continue;
        struct span_index_summary sum;
        bool found;
        rc = spanstore_read_summary(ss, r.spans[0].trace_id, &key, &val, &sum, &found, err);
        if (rc || !found || !summary_has_chunk(&sum, id))
            continue;
        w->ord++;
        for (size_t i = 0; i < r.n; i++)
            add_span_entries(w, &r.spans[i]);
        nchunks++;
        nspans += r.n;
        if (++pending == REPLAY_BATCH) {
            w = replay_commit(ss, w, a, err);
            rc = w ? 0 : VG_ENOMEM;
            pending = 0;
        }
    }
    if (!rc && it)
        rc = kv_iter_error(it, err);
    if (!rc && pending) {
        w = replay_commit(ss, w, a, err);
        rc = w ? 0 : VG_ENOMEM;
    }
    if (!rc && nchunks) {
        char msg[96];
        snprintf(msg, sizeof msg, "%llu chunks, %llu spans", (unsigned long long)nchunks,
                 (unsigned long long)nspans);
        vg_log(VG_LOG_INFO, "spanstore", "index postings rebuilt from the chunks after the "
               "last flush", "replayed", msg, NULL);
    }
    kv_iter_free(it);
    vg_arena_free(a);
    if (w)
        ctx_put(ss, w);
    vg_buf_free(&key);
    vg_buf_free(&val);
    return rc;
}

/* ---- counters ---- */

void spanstore_stats(struct spanstore *ss, struct spanstore_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int s = 0; s < SPANSTORE_STRIPES; s++) {
        bool slot = s < SPANSTORE_COUNT_SLOTS; /* the others never change after open */
        if (slot)
            pthread_mutex_lock(&ss->cnt_mu[s]);
        out->spans += ss->counts[s].spans;
        out->traces += ss->counts[s].traces;
        out->bytes += ss->counts[s].bytes;
        if (slot)
            pthread_mutex_unlock(&ss->cnt_mu[s]);
    }
    out->disk_bytes = kv_approximate_size(ss->kv, "", 0, "\xff", 1) +
                      kv_approximate_size(ss->ix, "", 0, "\xff", 1) +
                      kv_approximate_size(ss->chunks, "", 0, "\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    out->keys_read = atomic_load(&ss->keys_read);
}

void spanstore_sync_stats(struct spanstore *ss, struct kv_sync_stats *out)
{
    struct kv_sync_stats c;
    kv_sync_stats(ss->kv, out);
    kv_sync_stats(ss->chunks, &c);
    out->syncs += c.syncs;
    out->failures += c.failures;
    kv_sync_stats(ss->ix, &c);
    out->syncs += c.syncs;
    out->failures += c.failures;
}

/* The background runs: the index flush (every index_flush_ms, or when a writer kicks
 * it because the head passed its limit) and retention (every maint_interval_ms). */
static void flush_tick(void *arg, const atomic_bool *stop)
{
    (void)stop;
    struct spanstore *ss = arg;
    struct vg_err err = { 0 };
    if (spanstore_flush_index(ss, &err) != 0)
        vg_log(VG_LOG_ERROR, "spanstore", "index flush failed", "error", err.msg, NULL);
}

static void retain_tick(void *arg, const atomic_bool *stop)
{
    (void)stop;
    struct spanstore *ss = arg;
    struct vg_err err = { 0 };
    uint64_t n = 0;
    if (ss->opts.retention_ns > 0 &&
        spanstore_retain(ss, now_ns() - ss->opts.retention_ns, &n, &err) != 0)
        vg_log(VG_LOG_ERROR, "spanstore", "retention failed", "error", err.msg, NULL);
}
