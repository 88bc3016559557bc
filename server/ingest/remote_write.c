/* remote_write: see remote_write.h.
 *
 * Wire format (Prometheus remote write 1.0): the body is one snappy block (not the
 * framed format) holding a protobuf prometheus.WriteRequest (proto/prom_remote_write.proto).
 * Headers a sender sets: Content-Encoding: snappy, Content-Type: application/x-protobuf,
 * X-Prometheus-Remote-Write-Version: 0.1.0. Like Prometheus 3 we take a missing
 * Content-Encoding or Content-Type to mean these (old clients omit them), and answer 415
 * to anything else, which is also how a remote write 2.0 sender learns to fall back to 1.0.
 *
 * Decoding: a WriteRequest is read by the small protobuf reader below rather than by
 * protobuf-c's generic unpack, which allocated and copied every Label and string and cost
 * about half of the whole ingest path. Labels, metadata strings and so on are views into
 * the decompressed buffer (no copies), and each repeated field gets one exact-size array:
 * a message's field headers are counted first, then its fields decoded. Decoding finishes
 * before any validation, so a malformed message anywhere is "malformed protobuf" and
 * counts no samples, whatever else is wrong with it. The reader accepts what protobuf-c
 * accepted: unknown fields of any valid wire type are skipped (varint up to 10 bytes,
 * lengths up to 5, field numbers 1 to 2^32 - 1), while field number 0, a known field with
 * the wrong wire type, a truncated field and group wire types are malformed; a scalar field
 * set twice keeps the last value. Strings are cut at their first NUL byte, as protobuf-c's
 * C strings were, so a NUL never reaches the index keys. A TimeSeries of labels and a few
 * samples is decoded in one pass over its fields, and labels in the form every sender
 * writes are validated as they are decoded (see "the fast label check" below); the
 * rest takes the general path and ingest_check_labels.
 *
 * Native histograms (TimeSeries field 4) are not decoded; we count them and say in the 400
 * that they were dropped, storing the float samples of the same request (a sender never
 * retries a 4xx). */
#include "remote_write.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_bytes.h"
#include "../../storage/base/vg_log.h"
#include "../compress.h"
#include "../http.h"
#include "../pb_wire.h"
#include "ingest.h"

#include "prom_remote_write.pb-c.h" /* the MetricType enum values */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RECEIVER "remote_write"
/* Prometheus's limit on an exemplar's label set (names and values, in runes). */
#define EXEMPLAR_MAX_LABEL_RUNES 128

/* Field numbers, from proto/prom_remote_write.proto. */
enum {
    WR_TIMESERIES = 1, WR_METADATA = 3,
    TS_LABELS = 1, TS_SAMPLES = 2, TS_EXEMPLARS = 3, TS_HISTOGRAMS = 4,
    LABEL_NAME = 1, LABEL_VALUE = 2,
    SAMPLE_VALUE = 1, SAMPLE_TIMESTAMP = 2,
    EX_LABELS = 1, EX_VALUE = 2, EX_TIMESTAMP = 3,
    MD_TYPE = 1, MD_NAME = 2, MD_HELP = 4, MD_UNIT = 5,
};

/* ---- the protobuf reader (fields through pb_wire.h) ---- */

#define FAST_KNOWN 16 /* label names remembered from the previous series */
#define METRIC_CACHE 16 /* valid metric names remembered (a power of two) */

/* What decoding found of a series' labels (decode's fast[]). */
enum { FAST_NO, FAST_VALID, FAST_ENC };

/* The decoder's state: where to allocate and why an allocation failed. */
struct dctx {
    struct vg_arena *a;
    const struct config_limits *lim; /* for the fast label check (dec_series_labels) */
    /* Label names and metric name of the last series that passed the fast check (views
     * into the message): the next series mostly has the same, known to be valid. */
    struct vg_str known[FAST_KNOWN];
    /* Their first 8 bytes (fewer for shorter names, the rest 0; known_m masks that
     * many) and, for longer ones, their last 8, little-endian: see known_eq. */
    uint64_t known_w[FAST_KNOWN], known_w2[FAST_KNOWN], known_m[FAST_KNOWN];
    size_t nknown;
    struct vg_str known_metric;
    struct vg_str metrics[METRIC_CACHE]; /* valid metric names, see metric_slot */
    /* Where the next canonical label encoding goes (see dec_series_fast): an arena
     * buffer of the decompressed size plus 16, which no request can outgrow, made at the
     * first series (none when the arena had no room: then no series takes that path). */
    uint8_t *canon;
    size_t raw_len;
    bool canon_tried;
    bool alloc_failed;
    bool over_budget;
};

/* Counts fields 1..5 of message r into cnt, checking that every field header is sound
 * and that the fields in msg_mask (bit = field number) are length-delimited. */
static bool count_fields(struct pb_rd r, unsigned msg_mask, size_t cnt[6])
{
    memset(cnt, 0, 6 * sizeof *cnt);
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return false;
        if (f.num <= 5) {
            if ((msg_mask >> f.num & 1) && f.wt != PB_WT_LEN)
                return false;
            cnt[f.num]++;
        }
    }
    return true;
}

static bool has_zero_byte(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL;
    return ((w - ones) & ~w & (ones << 7)) != 0;
}

/* The n bytes at p as a string cut at the first NUL. Label strings are short and hardly
 * ever hold a NUL: whole words are checked (the last one overlapping), with no call. */
static struct vg_str pb_str(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    uint32_t h0, h1;
    if (n >= 8) {
        bool zero = false;
        for (size_t i = 0; i + 8 <= n && !zero; i += 8)
            zero = (memcpy(&w, p + i, 8), has_zero_byte(w));
        if (!zero && (memcpy(&w, p + n - 8, 8), !has_zero_byte(w)))
            return (struct vg_str){ (const char *)p, n };
    } else if (n >= 4) {
        memcpy(&h0, p, 4);
        memcpy(&h1, p + n - 4, 4);
        if (!has_zero_byte(0x0101010100000000ULL | h0) &&
            !has_zero_byte(0x0101010100000000ULL | h1))
            return (struct vg_str){ (const char *)p, n };
    }
    size_t i = 0;
    while (i < n && p[i])
        i++;
    return (struct vg_str){ (const char *)p, i };
}

static double pb_double(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* n elements of size sz from the arena (NULL, and no allocation, when n is 0); notes why
 * an allocation failed: the arena refuses at its cap or because vg_malloc failed, and a
 * probe of the same size tells which. */
static void *dalloc(struct dctx *c, size_t n, size_t sz)
{
    if (n == 0)
        return NULL;
    void *p = vg_arena_alloc(c->a, n * sz);
    if (!p && !c->alloc_failed) {
        c->alloc_failed = true;
        void *probe = vg_malloc(n * sz);
        c->over_budget = probe != NULL;
        vg_free(probe);
    }
    return p;
}

static bool dec_label(struct pb_rd r, struct label *l)
{
    /* What every sender writes: name (tag 0x0a) then value (0x12), lengths under 128. */
    const uint8_t *p = r.p;
    size_t len = (size_t)(r.end - p);
    if (len >= 4 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 4 <= len) {
        const uint8_t *q = p + 2 + p[1];
        if (q[0] == 0x12 && q[1] < 0x80 && q + 2 + q[1] == r.end) {
            l->name = pb_str(p + 2, p[1]);
            l->value = pb_str(q + 2, q[1]);
            return true;
        }
    }
    l->name = l->value = (struct vg_str){ "", 0 };
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return false;
        if (f.num == LABEL_NAME || f.num == LABEL_VALUE) {
            if (f.wt != PB_WT_LEN)
                return false;
            *(f.num == LABEL_NAME ? &l->name : &l->value) =
                pb_str(f.sub.p, (size_t)(f.sub.end - f.sub.p));
        }
    }
    return true;
}

/* ---- the fast label check ----
 *
 * Nearly every series arrives in the form senders write: each Label exactly name (tag
 * 0x0a) then value (0x12) with lengths under 128, names strictly increasing, no empty
 * value, values ASCII. Such a label set is checked while it is decoded, in one pass over
 * its bytes, and when it passes it is exactly what ingest_check_labels would accept and
 * return unchanged (nothing dropped, nothing reordered), so validation skips that call:
 * decoding plus validating the labels cost about half of the ingest path. Anything else
 * (a NUL, non-ASCII, unsorted, an empty value, over a limit, no __name__) is decoded as
 * before and goes through ingest_check_labels, which also words the 400. */
#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/* Eight bytes at a time, for bytes below 0x80 (no sum below carries into the next byte):
 * bit 7 of each byte set where that byte is >= c (c <= 0x80), or == c. */
static inline uint64_t swar_ge(uint64_t w, unsigned c)
{
    return (w + (0x80 - c) * ONES) & HIGH;
}

static inline uint64_t swar_eq(uint64_t w, unsigned c)
{
    return ~((w ^ (c * ONES)) + 0x7f * ONES) & HIGH;
}

/* Whether all eight bytes of w are name bytes: [A-Za-z0-9_], and ':' when colon. */
static bool name_word(uint64_t w, bool colon)
{
    if (w & HIGH)
        return false;
    uint64_t lw = w | 0x20 * ONES; /* letters to lower case; no other byte becomes one */
    uint64_t ok = (swar_ge(lw, 'a') & ~swar_ge(lw, 'z' + 1)) |
                  (swar_ge(w, '0') & ~swar_ge(w, '9' + 1)) | swar_eq(w, '_') |
                  (colon ? swar_eq(w, ':') : 0);
    return ok == HIGH;
}

/* Whether p[0, n) is a label name (colon false) or metric name (true): [a-zA-Z_] then
 * [a-zA-Z0-9_], ':' too in metric names. Words at a time, the last one overlapping. */
static bool fast_name(const uint8_t *p, size_t n, bool colon)
{
    if (n == 0 || (unsigned)(p[0] - '0') < 10)
        return false;
    uint64_t w;
    if (n >= 8) {
        for (size_t i = 0; i + 8 <= n; i += 8)
            if ((memcpy(&w, p + i, 8), !name_word(w, colon)))
                return false;
        memcpy(&w, p + n - 8, 8);
        return name_word(w, colon);
    }
    if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + n - 4, 4);
        return name_word((uint64_t)hi << 32 | lo, colon);
    }
    w = 'a' * ONES; /* short names: their bytes over a valid filler */
    for (size_t i = 0; i < n; i++)
        w = (w & ~(0xffULL << (8 * i))) | (uint64_t)p[i] << (8 * i);
    return name_word(w, colon);
}

/* Whether p[0, n) is ASCII without NUL (so valid UTF-8 that pb_str leaves whole). */
static bool fast_ascii(const uint8_t *p, size_t n)
{
    if (n < 8) {
        unsigned bad = 0;
        for (size_t i = 0; i < n; i++)
            bad |= (uint8_t)(p[i] - 1) >= 0x7f; /* 0 wraps to 0xff */
        return !bad;
    }
    uint64_t w;
    for (size_t i = 0; i + 8 <= n; i += 8)
        if ((memcpy(&w, p + i, 8), (w & 0x8080808080808080ULL) || has_zero_byte(w)))
            return false;
    memcpy(&w, p + n - 8, 8);
    return !(w & 0x8080808080808080ULL) && !has_zero_byte(w);
}

/* Whether a[0, n) == b[0, n): short strings, so words (the last one overlapping). */
static inline bool bytes_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint64_t x, y;
    if (n >= 8) {
        for (size_t i = 0; i + 8 <= n; i += 8)
            if ((memcpy(&x, a + i, 8), memcpy(&y, b + i, 8), x != y))
                return false;
        return memcpy(&x, a + n - 8, 8), memcpy(&y, b + n - 8, 8), x == y;
    }
    if (n >= 4) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4), memcpy(&a1, a + n - 4, 4);
        memcpy(&b0, b, 4), memcpy(&b1, b + n - 4, 4);
        return a0 == b0 && a1 == b1;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static bool str_eq(struct vg_str s, const uint8_t *p, size_t n)
{
    return s.len == n && bytes_eq((const uint8_t *)s.p, p, n);
}

/* vg_str_cmp(a, b) < 0 without the call: label names differ early. */
static bool name_before(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t m = an < bn ? an : bn;
    for (size_t i = 0; i < m; i++)
        if (a[i] != b[i])
            return a[i] < b[i];
    return an < bn;
}

/* One Label in the usual form that passes every check, after the label named prev (NULL
 * for the first), into *l; *named is set when it is a valid __name__. False otherwise
 * (then *l is untouched). *same: on entry, whether every earlier name of this series
 * equals the one at the same place in the previous series (c->known); on return,
 * whether this one does too. Such a name is valid and in order, as it was there. */
static inline __attribute__((always_inline)) bool
fast_label(struct dctx *c, struct pb_rd r, size_t k, struct label *l, bool *named, bool *same)
{
    const struct config_limits *lim = c->lim;
    const uint8_t *p = r.p;
    size_t len = (size_t)(r.end - p);
    if (len < 4 || p[0] != 0x0a || p[1] >= 0x80 || (size_t)p[1] + 4 > len)
        return false;
    const uint8_t *q = p + 2 + p[1];
    if (q[0] != 0x12 || q[1] >= 0x80 || q[1] == 0 || q + 2 + q[1] != r.end)
        return false;
    size_t nl = p[1], vl = q[1];
    const uint8_t *name = p + 2, *val = q + 2;
    if ((int64_t)vl > lim->max_label_value_length || !fast_ascii(val, vl))
        return false;
    *same = *same && k < c->nknown && str_eq(c->known[k], name, nl);
    if (!*same) {
        const struct label *prev = k ? l - 1 : NULL;
        if ((int64_t)nl > lim->max_label_name_length || !fast_name(name, nl, false) ||
            (prev && !name_before((const uint8_t *)prev->name.p, prev->name.len, name, nl)))
            return false;
    }
    if (nl == 8 && memcmp(name, "__name__", 8) == 0) {
        if (!str_eq(c->known_metric, val, vl) && !fast_name(val, vl, true))
            return false;
        *named = true;
    }
    l->name = (struct vg_str){ (const char *)name, nl };
    l->value = (struct vg_str){ (const char *)val, vl };
    return true;
}

/* Whether name[0, n) is known name k: a word or two for names up to 16 bytes. */
static inline bool known_eq(const struct dctx *c, size_t k, const uint8_t *name, size_t n)
{
    if (k >= c->nknown || c->known[k].len != n || n == 0)
        return false;
    if (n > 16)
        return bytes_eq((const uint8_t *)c->known[k].p, name, n);
    return (vg_load_le64(name) & c->known_m[k]) == c->known_w[k] &&
           (n <= 8 || vg_load_le64(name + n - 8) == c->known_w2[k]);
}

/* Labels ls[0, n) passed the fast check: the next series is compared with them. */
static void remember(struct dctx *c, const struct label *ls, size_t n)
{
    c->nknown = n < FAST_KNOWN ? n : FAST_KNOWN;
    for (size_t i = 0; i < n; i++) {
        if (i < FAST_KNOWN) {
            /* Names are views into the decompressed buffer, readable 16 bytes past its
             * end (COMPRESS_SNAPPY_SLACK), so whole words can be read. */
            const uint8_t *p = (const uint8_t *)ls[i].name.p;
            size_t len = ls[i].name.len;
            c->known[i] = ls[i].name;
            c->known_m[i] = len ? ~0ULL >> (8 * (8 - (len < 8 ? len : 8))) : 0;
            c->known_w[i] = len ? vg_load_le64(p) & c->known_m[i] : 0;
            c->known_w2[i] = len > 8 ? vg_load_le64(p + len - 8) : 0;
        }
        if (ls[i].name.len == 8 && memcmp(ls[i].name.p, "__name__", 8) == 0)
            c->known_metric = ls[i].value;
    }
}

/* The n labels of TimeSeries r into a new array *out, as dec_labels would decode them;
 * *valid says whether they passed the fast check as a whole (see above). */
static bool dec_series_labels(struct dctx *c, struct pb_rd r, size_t n, struct label **out,
                              bool *valid)
{
    struct label *ls = dalloc(c, n, sizeof *ls);
    if (n && !ls)
        return false;
    bool ok = c->lim && (int64_t)n <= c->lim->max_labels_per_series, named = false;
    bool same = true;
    size_t k = 0;
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        pb_next_field(&r, &f); /* sound: count_fields read it */
        if (f.num != TS_LABELS)
            continue;
        if (ok && fast_label(c, f.sub, k, &ls[k], &named, &same)) {
            k++;
            continue;
        }
        ok = false;
        if (!dec_label(f.sub, &ls[k++]))
            return false;
    }
    *valid = ok && named;
    if (*valid)
        remember(c, ls, n);
    *out = ls;
    return true;
}

/* The n labels (field number fnum) of message r into a new array *out. */
static bool dec_labels(struct dctx *c, struct pb_rd r, uint32_t fnum, size_t n,
                       struct label **out)
{
    struct label *ls = dalloc(c, n, sizeof *ls);
    if (n && !ls)
        return false;
    size_t k = 0;
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        pb_next_field(&r, &f); /* sound: count_fields read it */
        if (f.num == fnum && !dec_label(f.sub, &ls[k++]))
            return false;
    }
    *out = ls;
    return true;
}

/* A Sample or an Exemplar's value and timestamp (their field numbers vnum and tnum). */
static bool dec_point(struct pb_field *f, uint32_t vnum, uint32_t tnum, int64_t *t, double *v)
{
    if (f->num == vnum) {
        if (f->wt != PB_WT_I64)
            return false;
        *v = pb_double(f->v);
    } else if (f->num == tnum) {
        if (f->wt != PB_WT_VARINT)
            return false;
        *t = (int64_t)f->v;
    }
    return true;
}

static bool dec_sample(struct pb_rd r, struct tsdb_sample *s)
{
    /* What senders write: value (tag 0x09, 8 bytes) then timestamp (0x10, a varint). */
    if (r.end - r.p >= 11 && r.p[0] == 0x09 && r.p[9] == 0x10) {
        struct pb_rd t = { r.p + 10, r.end };
        uint64_t v, ts;
        if (pb_get_varint(&t, &ts, 10) && t.p == r.end) {
            v = vg_load_le64(r.p + 1);
            s->v = pb_double(v);
            s->t = (int64_t)ts;
            return true;
        }
    }
    s->t = 0;
    s->v = 0;
    struct pb_field f = { 0 };
    while (r.p < r.end)
        if (!pb_next_field(&r, &f) || !dec_point(&f, SAMPLE_VALUE, SAMPLE_TIMESTAMP, &s->t, &s->v))
            return false;
    return true;
}

static bool dec_exemplar(struct dctx *c, struct pb_rd r, struct tsdb_exemplar *e)
{
    size_t cnt[6];
    if (!count_fields(r, 1u << EX_LABELS, cnt))
        return false;
    struct label *ls;
    if (!dec_labels(c, r, EX_LABELS, cnt[EX_LABELS], &ls))
        return false;
    e->labels = ls;
    e->nlabels = cnt[EX_LABELS];
    e->t = 0;
    e->v = 0;
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        pb_next_field(&r, &f);
        if (!dec_point(&f, EX_VALUE, EX_TIMESTAMP, &e->t, &e->v))
            return false;
    }
    return true;
}

/* Local room of dec_series_once: a series with more labels or samples, or with any
 * exemplar or histogram, takes the general path. */
#define ONCE_LABELS 32
#define ONCE_SAMPLES 16

/* The usual TimeSeries (labels and a few samples) in one pass over its fields, where the
 * general path makes three (count, labels, the rest). 1 when *s is decoded, 0 when the
 * general path must do it (nothing of note was changed), -1 when malformed (which the
 * general path would find too). */
static int dec_series_once(struct dctx *c, struct pb_rd r, struct tsdb_series_in *s,
                           bool *valid)
{
    struct label ls[ONCE_LABELS];
    struct tsdb_sample ss[ONCE_SAMPLES];
    size_t nl = 0, nsm = 0;
    bool ok = true, named = false, same = true;
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return -1;
        if (f.num == TS_LABELS) {
            if (f.wt != PB_WT_LEN)
                return -1;
            if (nl == ONCE_LABELS)
                return 0;
            if (ok && fast_label(c, f.sub, nl, &ls[nl], &named, &same)) {
                nl++;
                continue;
            }
            ok = false;
            if (!dec_label(f.sub, &ls[nl++]))
                return -1;
        } else if (f.num == TS_SAMPLES) {
            if (f.wt != PB_WT_LEN)
                return -1;
            if (nsm == ONCE_SAMPLES)
                return 0;
            if (!dec_sample(f.sub, &ss[nsm++]))
                return -1;
        } else if (f.num == TS_EXEMPLARS || f.num == TS_HISTOGRAMS) {
            return 0;
        }
    }
    struct label *la = dalloc(c, nl, sizeof *la);
    struct tsdb_sample *sa = dalloc(c, nsm, sizeof *sa);
    if ((nl && !la) || (nsm && !sa))
        return -1;
    if (nl)
        memcpy(la, ls, nl * sizeof *la);
    if (nsm)
        memcpy(sa, ss, nsm * sizeof *sa);
    *valid = ok && named && (int64_t)nl <= c->lim->max_labels_per_series;
    if (*valid)
        remember(c, la, nl);
    *s = (struct tsdb_series_in){ la, nl, sa, nsm, NULL, 0 };
    return 1;
}

/* ---- the canonical fast path ----
 *
 * The TimeSeries every sender writes (each field's length under 128, Labels as name then
 * value, no exemplars or histograms) whose labels pass
 * the fast check is decoded by one tight loop over its bytes, which also writes the
 * labels' canonical encoding (labels.h: uvarint len, name, uvarint len, value, pair
 * after pair) for the TSDB, so that it neither encodes them again nor reads the label
 * array. On the wire such a Label is 0x0a nl name 0x12 vl value, so its canonical bytes
 * are the two runs nl name and vl value, copied a word at a time; the value's run is
 * checked for ASCII without NUL while it is copied. A series in any other form, or
 * failing any check, is left to dec_series_once and the general path, unchanged: this is
 * only a faster way to the result they give when every check passes.
 *
 * Word copies read up to 7 bytes past a run, which stays inside the decompressed buffer
 * and its COMPRESS_SNAPPY_SLACK bytes, and write up to 7 bytes past the encoding, which
 * the next run overwrites or the buffer's 16 spare bytes absorb. */

/* Copies n >= 1 bytes from src to dst in whole words (see above); returns dst + n. */
static inline uint8_t *copy_run(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i += 8)
        memcpy(dst + i, src + i, 8);
    return dst + n;
}

/* copy_run that also ORs into *bad (bit 7 of some byte) when a byte of the run is 0 or
 * >= 0x80: in (w - ONES) | w a byte gets bit 7 from a byte >= 0x80 or from 0 - 1; a
 * borrow only ever comes from a byte that was 0, so it can add no false negative. */
static inline uint8_t *copy_run_ascii(uint8_t *dst, const uint8_t *src, size_t n,
                                      uint64_t *bad)
{
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 < n; i += 8) {
        memcpy(dst + i, src + i, 8);
        w = vg_load_le64(src + i);
        acc |= (w - ONES) | w;
    }
    memcpy(dst + i, src + i, 8);
    /* 1..8 bytes of the last word belong to the run; the others become 0x01. */
    uint64_t keep = ~0ULL >> (8 * (8 - (n - i)));
    w = (vg_load_le64(src + i) & keep) | (ONES & ~keep);
    *bad |= (acc | (w - ONES) | w) & HIGH;
    return dst + n;
}

/* Whether metric name p[0, n) was found valid earlier in this request: the names seen
 * last in each of METRIC_CACHE slots (picked by length and two bytes) are remembered,
 * since a request holds series of a few dozen metrics in any order. */
static inline size_t metric_slot(const uint8_t *p, size_t n)
{
    return (n * 7 + (size_t)p[n - 1] * 3 + p[n / 2]) & (METRIC_CACHE - 1);
}

/* 1 when TimeSeries r is in the canonical form and passes every check dec_series_once
 * makes: *s decoded, its labels' encoding (in c->canon, which moves past it) in the
 * name of a hidden label just before s->labels (see series_enc); 0 when not (nothing
 * changed); -1 when out of arena memory. */
static int dec_series_fast(struct dctx *c, struct pb_rd r, struct tsdb_series_in *s)
{
    const struct config_limits *lim = c->lim;
    struct label ls[ONCE_LABELS];
    struct tsdb_sample ss[ONCE_SAMPLES];
    size_t nl = 0, nsm = 0;
    uint8_t *out = c->canon;
    uint64_t bad = 0;
    bool named = false, same = true;
    const uint8_t *p = r.p, *end = r.end;
    while (p < end) {
        if (end - p < 2 || p[1] >= 0x80 || (size_t)p[1] > (size_t)(end - p - 2))
            return 0;
        const uint8_t *b = p + 2, *e = b + p[1];
        if (p[0] == 0x0a) { /* Label: 0x0a nl name 0x12 vl value */
            size_t len = p[1], n = b[1];
            if (nl == ONCE_LABELS || len < 4 || b[0] != 0x0a || n >= 0x80 || n + 4 > len)
                return 0;
            const uint8_t *q = b + 2 + n, *name = b + 2, *val = q + 2;
            size_t vl = q[1];
            if (q[0] != 0x12 || vl - 1 >= 0x7f || val + vl != e ||
                (int64_t)vl > lim->max_label_value_length)
                return 0;
            same = same && known_eq(c, nl, name, n);
            if (!same &&
                ((int64_t)n > lim->max_label_name_length || !fast_name(name, n, false) ||
                 (nl && !name_before((const uint8_t *)ls[nl - 1].name.p, ls[nl - 1].name.len,
                                     name, n))))
                return 0;
            if (n == 8 && memcmp(name, "__name__", 8) == 0) {
                struct vg_str *m = &c->metrics[metric_slot(val, vl)];
                if (!str_eq(*m, val, vl)) {
                    if (!fast_name(val, vl, true))
                        return 0;
                    *m = (struct vg_str){ (const char *)val, vl };
                }
                c->known_metric = *m;
                named = true;
            }
            out = copy_run(out, b + 1, n + 1);
            out = copy_run_ascii(out, q + 1, vl + 1, &bad);
            ls[nl].name = (struct vg_str){ (const char *)name, n };
            ls[nl].value = (struct vg_str){ (const char *)val, vl };
            nl++;
        } else if (p[0] == 0x12) { /* Sample: 0x09 value(8) 0x10 timestamp varint */
            if (nsm == ONCE_SAMPLES)
                return 0;
            struct pb_rd t = { b + 10, e };
            uint64_t ts;
            if (e - b >= 11 && b[0] == 0x09 && b[9] == 0x10 && pb_get_varint(&t, &ts, 10) &&
                t.p == e) {
                ss[nsm].v = pb_double(vg_load_le64(b + 1));
                ss[nsm++].t = (int64_t)ts;
            } else if (!dec_sample((struct pb_rd){ b, e }, &ss[nsm++])) {
                return 0; /* a zero value or time is left out: dec_sample reads those */
            }
        } else {
            return 0;
        }
        p = e;
    }
    if (bad || !named || (int64_t)nl > lim->max_labels_per_series)
        return 0;
    /* One allocation for both arrays: samples (16-byte elements) first, then the
     * hidden label with the encoding, then the labels. */
    struct tsdb_sample *sa = dalloc(c, nsm * sizeof *sa + (nl + 1) * sizeof(struct label), 1);
    if (!sa)
        return -1;
    struct label *la = (struct label *)(sa + nsm) + 1;
    memcpy(la, ls, nl * sizeof *la);
    if (nsm)
        memcpy(sa, ss, nsm * sizeof *sa);
    if (!same || nl != c->nknown)
        remember(c, la, nl); /* else known[] holds these names already */
    la[-1].name = (struct vg_str){ (const char *)c->canon, (size_t)(out - c->canon) };
    la[-1].value = (struct vg_str){ NULL, 0 };
    c->canon = out;
    *s = (struct tsdb_series_in){ la, nl, sa, nsm, NULL, 0 };
    return 1;
}

/* The canonical label encoding dec_series_fast left with labels ls. */
static struct vg_str series_enc(const struct label *ls)
{
    return ls[-1].name;
}

/* One TimeSeries into *s (labels unvalidated, in wire order); *nhist gets its native
 * histograms, *fast FAST_ENC when dec_series_fast decoded it, FAST_VALID when its labels
 * passed the fast check otherwise, else FAST_NO. */
static bool dec_series(struct dctx *c, struct pb_rd r, struct tsdb_series_in *s, size_t *nhist,
                       uint8_t *fast)
{
    *nhist = 0;
    *fast = FAST_NO;
    if (c->lim && !c->canon_tried) {
        /* Outside dalloc: when the budget has no room for it, decoding goes on
         * without the fast path rather than failing. */
        c->canon_tried = true;
        c->canon = vg_arena_alloc(c->a, c->raw_len + 16);
    }
    int once = c->lim && c->canon ? dec_series_fast(c, r, s) : 0;
    if (once) {
        *fast = FAST_ENC;
        return once > 0;
    }
    bool valid = false;
    once = c->lim ? dec_series_once(c, r, s, &valid) : 0;
    *fast = valid ? FAST_VALID : FAST_NO;
    if (once)
        return once > 0;
    size_t cnt[6];
    if (!count_fields(r, 1u << TS_LABELS | 1u << TS_SAMPLES | 1u << TS_EXEMPLARS, cnt))
        return false;
    *nhist = cnt[TS_HISTOGRAMS];
    struct label *ls;
    if (!dec_series_labels(c, r, cnt[TS_LABELS], &ls, &valid))
        return false;
    *fast = valid ? FAST_VALID : FAST_NO;
    struct tsdb_sample *ss = dalloc(c, cnt[TS_SAMPLES], sizeof *ss);
    struct tsdb_exemplar *es = dalloc(c, cnt[TS_EXEMPLARS], sizeof *es);
    if ((cnt[TS_SAMPLES] && !ss) || (cnt[TS_EXEMPLARS] && !es))
        return false;
    *s = (struct tsdb_series_in){ ls, cnt[TS_LABELS], ss, cnt[TS_SAMPLES], es,
                                  cnt[TS_EXEMPLARS] };
    size_t ns = 0, ne = 0;
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        pb_next_field(&r, &f);
        if (f.num == TS_SAMPLES && !dec_sample(f.sub, &ss[ns++]))
            return false;
        if (f.num == TS_EXEMPLARS && !dec_exemplar(c, f.sub, &es[ne++]))
            return false;
    }
    return true;
}

static enum tsdb_metric_type meta_type(uint32_t t)
{
    switch (t) {
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER: return TSDB_TYPE_COUNTER;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE: return TSDB_TYPE_GAUGE;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM: return TSDB_TYPE_HISTOGRAM;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM: return TSDB_TYPE_GAUGEHISTOGRAM;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY: return TSDB_TYPE_SUMMARY;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO: return TSDB_TYPE_INFO;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET: return TSDB_TYPE_STATESET;
    default: return TSDB_TYPE_UNKNOWN; /* a type newer than this file: keep the row */
    }
}

static bool dec_metadata(struct pb_rd r, struct tsdb_metadata *md)
{
    struct vg_str empty = { "", 0 };
    *md = (struct tsdb_metadata){ empty, TSDB_TYPE_UNKNOWN, empty, empty };
    uint32_t type = 0;
    struct pb_field f = { 0 };
    while (r.p < r.end) {
        if (!pb_next_field(&r, &f))
            return false;
        if (f.num == MD_TYPE) {
            if (f.wt != PB_WT_VARINT)
                return false;
            type = (uint32_t)f.v; /* an enum is an int32 on the wire */
        } else if (f.num == MD_NAME || f.num == MD_HELP || f.num == MD_UNIT) {
            if (f.wt != PB_WT_LEN)
                return false;
            struct vg_str s = pb_str(f.sub.p, (size_t)(f.sub.end - f.sub.p));
            if (f.num == MD_NAME)
                md->metric = s;
            else if (f.num == MD_HELP)
                md->help = s;
            else
                md->unit = s;
        }
    }
    md->type = meta_type(type);
    return true;
}

/* Decodes the WriteRequest in raw into out->batch (series and metadata unvalidated) and
 * its counts; (*fast)[i] says whether series i's labels passed the fast check under lim
 * (FAST_VALID, or FAST_ENC with their encoding, see series_enc) or not (FAST_NO). */
static int decode(struct vg_str raw, const struct config_limits *lim, struct vg_arena *a,
                  struct rw_request *out, uint8_t **fast, struct vg_err *err)
{
    struct dctx c = { .a = a, .lim = lim, .raw_len = raw.len };
    struct pb_rd r = { (const uint8_t *)raw.p, (const uint8_t *)raw.p + raw.len };
    size_t cnt[6];
    bool ok = count_fields(r, 1u << WR_TIMESERIES | 1u << WR_METADATA, cnt);
    struct tsdb_series_in *series = NULL;
    struct tsdb_metadata *meta = NULL;
    if (ok) {
        series = dalloc(&c, cnt[WR_TIMESERIES], sizeof *series);
        meta = dalloc(&c, cnt[WR_METADATA], sizeof *meta);
        *fast = dalloc(&c, cnt[WR_TIMESERIES], sizeof **fast);
        ok = (series && *fast) || !cnt[WR_TIMESERIES];
        ok = ok && (meta || !cnt[WR_METADATA]);
    }
    size_t ns = 0, nm = 0, nhist = 0;
    const char *in = NULL; /* what is being decoded, for the error message */
    struct pb_field f = { 0 };
    while (ok && r.p < r.end) {
        pb_next_field(&r, &f);
        if (f.num == WR_TIMESERIES) {
            size_t h = 0;
            in = "timeseries";
            /* count_fields counted these fields: the checks only state it */
            ok = series && *fast && ns < cnt[WR_TIMESERIES] &&
                 dec_series(&c, f.sub, &series[ns], &h, &(*fast)[ns]);
            ns++;
            nhist += h;
        } else if (f.num == WR_METADATA) {
            in = "metadata";
            ok = meta && nm < cnt[WR_METADATA] && dec_metadata(f.sub, &meta[nm]);
            nm++;
        }
    }
    if (!ok && c.alloc_failed && c.over_budget)
        return vg_err_set(err, VG_ETOOLARGE,
                          "request too large to decode: a %zu-byte message may use at most "
                          "%d times its size in memory", raw.len, RW_ARENA_FACTOR);
    if (!ok && c.alloc_failed)
        return vg_err_set(err, VG_ENOMEM, "out of memory decoding the request");
    if (!ok) {
        vg_err_set(err, VG_EINVAL,
                   "malformed protobuf: the %zu-byte body (after snappy) is not a "
                   "prometheus.WriteRequest", raw.len);
        return in ? vg_err_prefix(err, "%s[%zu]", in, (in[0] == 't' ? ns : nm) - 1)
                  : VG_EINVAL;
    }
    for (size_t i = 0; i < ns; i++) {
        out->nsamples += series[i].nsamples;
        out->nexemplars += series[i].nexemplars;
    }
    out->nhistograms = nhist;
    out->batch = (struct tsdb_batch){ series, ns, meta, nm };
    return 0;
}

/* ---- validation ---- */

static size_t utf8_runes(struct vg_str s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.p[i] & 0xC0) != 0x80;
    return n;
}

static bool time_ok(int64_t t)
{
    return t >= RW_MIN_TIME_MS && t <= RW_MAX_TIME_MS;
}

static int bad_time(struct vg_err *err, int64_t t)
{
    return vg_err_set(err, VG_EINVAL,
                      "timestamp %lld ms is outside years 0001-9999 (a NaN or uninitialised "
                      "time converted to an integer?)", (long long)t);
}

/* Prints at most 64 bytes of s for an error message. */
#define SHOW(s) (int)((s).len > 64 ? 64 : (s).len), (s).p

/* The label arrays were allocated by decode() in our arena: validation may rewrite them. */
static struct label *mut_labels(const struct label *ls)
{
    return (struct label *)ls;
}

static int check_exemplar(struct tsdb_exemplar *ex, struct vg_err *err)
{
    struct label *ls = mut_labels(ex->labels);
    size_t n = 0, runes = 0;
    for (size_t k = 0; k < ex->nlabels; k++) {
        struct label l = ls[k];
        if (l.value.len == 0)
            continue; /* absent, as for series labels */
        if (!ingest_valid_label_name(l.name))
            return vg_err_set(err, VG_EINVAL, "invalid exemplar label name \"%.*s\"",
                              SHOW(l.name));
        if (!ingest_valid_utf8(l.value))
            return vg_err_set(err, VG_EINVAL, "value of exemplar label %.*s is not valid UTF-8",
                              SHOW(l.name));
        runes += utf8_runes(l.name) + utf8_runes(l.value);
        ls[n++] = l;
    }
    if (runes > EXEMPLAR_MAX_LABEL_RUNES)
        return vg_err_set(err, VG_EINVAL,
                          "exemplar labels are %zu characters long, more than Prometheus's "
                          "limit of %d", runes, EXEMPLAR_MAX_LABEL_RUNES);
    labels_sort(ls, n);
    if (labels_check_unique(ls, n, err) < 0)
        return vg_err_prefix(err, "exemplar");
    if (!time_ok(ex->t))
        return bad_time(err, ex->t);
    ex->nlabels = n;
    return 0;
}

/* Validates series *si in place (labels normalised, sorted); fast: its labels passed the
 * fast check, which is all ingest_check_labels would find. */
static int check_series(const struct config_limits *lim, struct tsdb_series_in *si, bool fast,
                        struct vg_err *err)
{
    if (!fast) {
        int n = ingest_check_labels(lim, mut_labels(si->labels), si->nlabels, err);
        if (n < 0)
            return n;
        si->nlabels = (size_t)n;
    }
    for (size_t j = 0; j < si->nsamples; j++) {
        if (!time_ok(si->samples[j].t)) {
            bad_time(err, si->samples[j].t);
            return vg_err_prefix(err, "sample[%zu]", j);
        }
    }
    for (size_t j = 0; j < si->nexemplars; j++) {
        int rc = check_exemplar((struct tsdb_exemplar *)&si->exemplars[j], err);
        if (rc < 0)
            return vg_err_prefix(err, "exemplar[%zu]", j);
    }
    return 0;
}

static int check_metadata(struct tsdb_metadata *md, struct vg_err *err)
{
    if (!ingest_valid_metric_name(md->metric))
        return vg_err_set(err, VG_EINVAL, "invalid metric family name \"%.*s\"",
                          SHOW(md->metric));
    if (!ingest_valid_utf8(md->help) || !ingest_valid_utf8(md->unit))
        return vg_err_set(err, VG_EINVAL, "help or unit of %.*s is not valid UTF-8",
                          SHOW(md->metric));
    return 0;
}

static int decode_validated(struct vg_str raw, const struct config_limits *lim,
                            struct vg_arena *a, struct rw_request *out, struct vg_err *err)
{
    uint8_t *fast = NULL;
    int rc = decode(raw, lim, a, out, &fast, err);
    if (rc < 0)
        return rc;
    struct tsdb_batch *b = &out->batch;
    if (lim->max_series_per_request > 0 &&
        b->nseries > (uint64_t)lim->max_series_per_request)
        return vg_err_set(err, VG_ETOOLARGE,
                          "request has %zu series, more than the limit of %lld "
                          "(limits.max_series_per_request)",
                          b->nseries, (long long)lim->max_series_per_request);
    struct tsdb_series_in *series = (struct tsdb_series_in *)b->series;
    size_t ns = 0, nenc = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        rc = check_series(lim, &series[i], fast[i] != FAST_NO, err);
        if (rc < 0)
            return vg_err_prefix(err, "timeseries[%zu]", i);
        if (series[i].nsamples || series[i].nexemplars) {
            nenc += fast[i] == FAST_ENC;
            fast[ns] = fast[i];
            series[ns++] = series[i]; /* one with nothing to store would only create an
                                          empty entry */
        }
    }
    b->nseries = ns;
    /* The encodings for tsdb_append_enc, when there are any and there is room (each kept
     * series holds a sample or an exemplar, so this is small next to the message);
     * without it the store encodes the labels itself. */
    out->enc = nenc ? vg_arena_alloc(a, ns * sizeof *out->enc) : NULL;
    for (size_t i = 0; out->enc && i < ns; i++)
        out->enc[i] = fast[i] == FAST_ENC ? series_enc(series[i].labels)
                                          : (struct vg_str){ NULL, 0 };
    struct tsdb_metadata *meta = (struct tsdb_metadata *)b->meta;
    for (size_t i = 0; i < b->nmeta; i++) {
        rc = check_metadata(&meta[i], err);
        if (rc < 0)
            return vg_err_prefix(err, "metadata[%zu]", i);
    }
    return 0;
}

int rw_decode(const void *body, size_t len, const struct config_limits *lim,
              struct vg_arena *a, struct rw_request *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return vg_err_set(err, VG_EINVAL,
                          "empty body: expected a snappy-compressed prometheus.WriteRequest");
    /* Capped so that the arena budget below cannot overflow. */
    size_t max_out = SIZE_MAX / ((size_t)4 * RW_ARENA_FACTOR);
    if (lim->max_decoded_bytes > 0 && (uint64_t)lim->max_decoded_bytes < max_out)
        max_out = (size_t)lim->max_decoded_bytes;
    struct vg_str raw;
    int rc = compress_snappy_decode(body, len, max_out, a, &raw, err);
    if (rc < 0)
        return rc;
    size_t outer = vg_arena_get_limit(a);
    size_t cap = vg_arena_used(a) + RW_ARENA_FACTOR * raw.len + RW_ARENA_SLACK;
    vg_arena_set_limit(a, outer && outer < cap ? outer : cap);
    rc = decode_validated(raw, lim, a, out, err);
    vg_arena_set_limit(a, outer);
    if (rc < 0) {
        memset(&out->batch, 0, sizeof out->batch);
        out->enc = NULL;
    }
    return rc;
}

/* ---- the HTTP module ---- */

static bool token_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* 0 when the Content-Type names remote write 1.0 (or is absent), else VG_EMEDIA. */
static int check_content_type(const char *ct, struct vg_err *err)
{
    if (!ct || !*ct)
        return 0;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (!token_eq(ct, n, "application/x-protobuf"))
        return vg_err_set(err, VG_EMEDIA,
                          "unsupported Content-Type \"%s\": remote write expects "
                          "application/x-protobuf", ct);
    for (const char *p = semi; p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, "proto=", 6) != 0)
            continue;
        q += 6;
        size_t m = strcspn(q, "; \t");
        if (!token_eq(q, m, "prometheus.WriteRequest"))
            return vg_err_set(err, VG_EMEDIA,
                              "unsupported remote write message \"%.*s\": this server accepts "
                              "remote write 1.0 (proto=prometheus.WriteRequest) only",
                              (int)(m > 64 ? 64 : m), q);
    }
    return 0;
}

static int check_encoding(const char *enc, struct vg_err *err)
{
    if (!enc || !*enc || strcasecmp(enc, "snappy") == 0)
        return 0;
    return vg_err_set(err, VG_EMEDIA,
                      "unsupported Content-Encoding \"%s\": remote write bodies must be snappy "
                      "(block format)", enc);
}

/* 400 naming what the store or this receiver left out, as Prometheus answers a partly
 * refused write (the accepted part stays stored). */
static void partial(struct http_response *resp, const struct rw_request *rq,
                    const struct tsdb_append_result *res)
{
    uint64_t rejected = 0;
    for (int r = 0; r < TSDB_REJECT_COUNT; r++)
        rejected += res->rejected[r];
    struct vg_buf *b = &resp->body;
    if (rejected) {
        vg_buf_printf(b, "%llu of %llu samples rejected (", (unsigned long long)rejected,
                      (unsigned long long)rq->nsamples);
        for (int r = 0; r < TSDB_REJECT_COUNT; r++)
            vg_buf_printf(b, "%s%s: %llu", r ? ", " : "", tsdb_reject_name((enum tsdb_reject)r),
                          (unsigned long long)res->rejected[r]);
        vg_buf_printf(b, "); first: %s", res->first_reject);
    }
    if (rq->nhistograms)
        vg_buf_printf(b, "%s%llu native histogram samples dropped: Vigil stores float samples "
                      "only (send classic histograms)", rejected ? "; " : "",
                      (unsigned long long)rq->nhistograms);
    vg_buf_putc(b, '\n');
    resp->status = 400;
    resp->content_type = "text/plain; charset=utf-8";
}

static struct vg_complaint complain_invalid;
static struct vg_complaint complain_storage;

static void handle_write(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct rw_request rq;
    memset(&rq, 0, sizeof rq);
    int rc = check_encoding(req->content_encoding, &err);
    if (rc == 0)
        rc = check_content_type(req->content_type, &err);
    if (rc == 0)
        rc = rw_decode(req->body.p, req->body.len, &v->cfg->limits, req->arena, &rq, &err);
    if (rc < 0) {
        ingest_count_rejected(v, RECEIVER, vg_code_name(rc), rq.nsamples);
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, RECEIVER, "rejected a write request",
                    err.msg);
        http_resp_error_text(resp, &err);
        ingest_count_request(v, RECEIVER, resp->status);
        return;
    }
    if (rq.nhistograms)
        ingest_count_rejected(v, RECEIVER, "native_histogram", rq.nhistograms);
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    if (rq.batch.nseries || rq.batch.nmeta) {
        rc = ingest_store_enc(v, RECEIVER, &rq.batch, rq.enc, &res, &err);
        if (rc < 0) {
            vg_complain(&complain_storage, 10000, VG_LOG_ERROR, RECEIVER,
                        "storing a write request failed", err.msg);
            http_resp_error_text(resp, &err);
            ingest_count_request(v, RECEIVER, resp->status);
            return;
        }
    }
    bool refused = rq.nhistograms > 0;
    for (int r = 0; r < TSDB_REJECT_COUNT; r++)
        refused |= res.rejected[r] > 0;
    if (refused)
        partial(resp, &rq, &res);
    else
        resp->status = 204;
    ingest_count_request(v, RECEIVER, resp->status);
}

static const struct http_route routes[] = {
    { "POST", "/api/v1/write", false, handle_write, "/api/v1/write" },
};

const struct vigil_module mod_remote_write = {
    .name = "remote_write",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
