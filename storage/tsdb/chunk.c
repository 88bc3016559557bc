/* chunk: compressed samples of one series. See chunk.h for the API.
 *
 * Why two encodings: appends must be O(1) and resumable from the state kept in struct
 * chunk_enc, which is what Gorilla's bitstream (encoding 0) gives. But Gorilla spends
 * 9+ bits per timestamp as soon as scrapes jitter by a few milliseconds, and 10-60 bits
 * per value for gauges with decimal values. When chunk_bytes is asked for the bytes
 * (typically when the chunk is sealed), it also builds encoding 1, which sees the whole
 * chunk and can pick per-chunk parameters, and returns whichever is smaller. Both
 * decode to bit-identical samples; chunk_enc_from_bytes re-appends decoded samples, so
 * an encoder never needs to resume encoding 1.
 *
 * Byte layout (all bit fields MSB first, the last byte zero-padded):
 *   byte 0-1  u16be sample count n
 *   byte 2    encoding: 0 or 1
 *   byte 3..  bitstream
 *
 * Encoding 0:
 *   sample 0: t0 as 64 raw bits, v0 as 64 raw bits (IEEE-754 bits, so NaN payloads such
 *             as the staleness marker 0x7ff0000000000002 survive).
 *   sample i>0: timestamp, then value.
 *     timestamp: dod = (t[i]-t[i-1]) - (t[i-1]-t[i-2]) (with t[-1] = t0, i.e. the first
 *       delta counts as a dod from 0), in two's complement, mod 2^64:
 *         '0'                      dod == 0
 *         '10'    + 7 bits         -64 .. 63
 *         '110'   + 12 bits        -2048 .. 2047
 *         '1110'  + 20 bits        -2^19 .. 2^19-1
 *         '11110' + 32 bits        -2^31 .. 2^31-1
 *         '11111' + 64 bits        anything
 *     value: x = bits(v[i]) XOR bits(v[i-1]):
 *         '0'                      x == 0
 *         '10' + m bits            x >> trailing, reusing the previous window
 *                                  (m = 64 - leading - trailing); invalid before a
 *                                  window was set
 *         '11' + 5 bits leading (clz(x) capped at 31) + 6 bits m (0 means 64) + m bits,
 *                                  setting the window
 *       The encoder reuses the window only when that is not longer than a new one.
 *
 * Encoding 1:
 *   header: 2 bits tmode, 2 bits vmode, t0 as VB(zigzag(t0));
 *     if n > 1: tmode 0/1: interval I as VB(I); tmode 1: grid offset g as
 *               VB(zigzag(g)); then 6 bits kt (Rice parameter)
 *     vmode 0 (constant) and 1 (XOR): v0 as 64 raw bits
 *     vmode 2/3 (decimal): 4 bits scale s, 6 bits kv, m0 as VB(zigzag(m0))
 *   sample i>0: R(zigzag(r), kt) then the value:
 *     tmode 0: r = (t[i]-t[i-1]) - I        (regular interval, jitter as a random walk)
 *     tmode 1: r = t[i] - (t0 + g + i*I)     (fixed grid, independent jitter; g
 *                                             centres the residuals)
 *     tmode 2: r = delta-of-delta as in encoding 0
 *     vmode 0: nothing, every value has v0's bits
 *     vmode 1: XOR exactly as in encoding 0
 *     vmode 2: R(zigzag(m[i]-m[i-1]), kv)    value = (double)m / 10^s
 *     vmode 3: R(zigzag(dd), kv), dd = (m[i]-m[i-1]) - (m[i-1]-m[i-2]), first from 0
 *   Decimal modes are chosen only when every value satisfies bits((double)m/10^s) ==
 *   bits(v), checked while encoding, so the round trip is exact.
 *   VB(z): 7 bits L (0..64) then z in L bits.  R(z, k): q = z >> k; if q < 20: q ones,
 *   a zero, then the low k bits of z; else 20 ones then VB(z).
 *   All arithmetic on timestamps and integers is mod 2^64; decoded timestamps must be
 *   non-decreasing, anything else is malformed.
 */
#include "chunk.h"

#include "../base/vg_alloc.h"
#include "../base/vg_err.h"

#include <assert.h>
#include <math.h>
#include <string.h>

#define HDR 3
#define NO_WINDOW 0xff
#define RICE_QMAX 20
#define MAX_SCALE 15
#define MAX_COUNT 0xffff
/* Worst case bits of one encoding-0 sample: 5+64 for the timestamp, 2+5+6+64 value. */
#define MAX_SAMPLE_BITS 146

enum { TMODE_DELTA, TMODE_GRID, TMODE_DOD, TMODE_COUNT };
enum { VMODE_CONST, VMODE_XOR, VMODE_DEC_DELTA, VMODE_DEC_DOD };

static const double pow10_tab[MAX_SCALE + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

static const unsigned dod_width[6] = { 0, 7, 12, 20, 32, 64 };

/* ---- bits ---- */

struct bw {
    unsigned char *p; /* NULL: only count bits */
    size_t pos;
};

static void put_bits(struct bw *w, uint64_t v, unsigned n)
{
    if (!w->p) {
        w->pos += n;
        return;
    }
    while (n) {
        size_t byte = w->pos >> 3;
        unsigned off = w->pos & 7, take = 8 - off < n ? 8 - off : n;
        assert(take <= 8); /* off < 8, so every shift below is narrower than a byte */
        unsigned piece = (unsigned)(v >> (n - take)) & ((1u << take) - 1);
        if (off == 0)
            w->p[byte] = 0; /* the buffer's tail may hold stale bytes */
        w->p[byte] |= (unsigned char)(piece << (8 - off - take));
        w->pos += take;
        n -= take;
    }
}

static uint64_t get_bits(struct chunk_iter *it, unsigned n)
{
    if (it->err || n > it->len_bits - it->pos) {
        it->err = true;
        return 0;
    }
    uint64_t v = 0;
    while (n) {
        unsigned off = it->pos & 7, take = 8 - off < n ? 8 - off : n;
        assert(take <= 8); /* as in put_bits */
        unsigned byte = it->buf[HDR + (it->pos >> 3)];
        v = (v << take) | ((byte >> (8 - off - take)) & ((1u << take) - 1));
        it->pos += take;
        n -= take;
    }
    return v;
}

static unsigned bitlen(uint64_t z) { return z ? 64 - (unsigned)__builtin_clzll(z) : 0; }
static uint64_t zigzag(uint64_t v) { return (v << 1) ^ (uint64_t)-(int64_t)(v >> 63); }
static uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1); }

static uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double bits2d(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void put_vb(struct bw *w, uint64_t z)
{
    put_bits(w, bitlen(z), 7);
    put_bits(w, z, bitlen(z));
}

static uint64_t get_vb(struct chunk_iter *it)
{
    unsigned l = (unsigned)get_bits(it, 7);
    if (l > 64) {
        it->err = true;
        return 0;
    }
    return get_bits(it, l);
}

static size_t rice_cost(uint64_t z, unsigned k)
{
    uint64_t q = z >> k;
    return q < RICE_QMAX ? q + 1 + k : RICE_QMAX + 7 + bitlen(z);
}

static void put_rice(struct bw *w, uint64_t z, unsigned k)
{
    uint64_t q = z >> k;
    if (q >= RICE_QMAX) {
        put_bits(w, (1u << RICE_QMAX) - 1, RICE_QMAX);
        put_vb(w, z);
        return;
    }
    put_bits(w, ((uint64_t)1 << (q + 1)) - 2, (unsigned)q + 1); /* q ones, a zero */
    put_bits(w, k ? z & (~(uint64_t)0 >> (64 - k)) : 0, k);
}

static uint64_t get_rice(struct chunk_iter *it, unsigned k)
{
    uint64_t q = 0;
    while (q < RICE_QMAX && get_bits(it, 1))
        q++;
    if (q == RICE_QMAX)
        return get_vb(it);
    return (q << k) | get_bits(it, k);
}

/* ---- encoding-0 pieces, shared with encoding 1's XOR mode ---- */

static void put_dod(struct bw *w, uint64_t dod)
{
    int64_t d = (int64_t)dod;
    for (unsigned b = 0; b < 5; b++) {
        unsigned wd = dod_width[b];
        if (wd == 0 ? d == 0 : (d >= -((int64_t)1 << (wd - 1)) && d < ((int64_t)1 << (wd - 1)))) {
            put_bits(w, ((uint64_t)1 << (b + 1)) - 2, b + 1);
            put_bits(w, wd ? dod & (((uint64_t)1 << wd) - 1) : 0, wd);
            return;
        }
    }
    put_bits(w, 0x1f, 5);
    put_bits(w, dod, 64);
}

static uint64_t get_dod(struct chunk_iter *it)
{
    unsigned b = 0;
    while (b < 5 && get_bits(it, 1))
        b++;
    unsigned wd = dod_width[b];
    uint64_t raw = get_bits(it, wd);
    if (wd == 0 || wd == 64)
        return raw;
    if (raw >> (wd - 1)) /* sign-extend */
        raw |= ~(uint64_t)0 << wd;
    return raw;
}

static void put_xor(struct bw *w, uint8_t *leading, uint8_t *trailing, uint64_t prev,
                    uint64_t cur)
{
    uint64_t x = prev ^ cur;
    if (x == 0) {
        put_bits(w, 0, 1);
        return;
    }
    unsigned l = (unsigned)__builtin_clzll(x), t = (unsigned)__builtin_ctzll(x);
    if (l > 31)
        l = 31;
    if (*leading != NO_WINDOW && l >= *leading && t >= *trailing &&
        64u - *leading - *trailing <= 11u + 64 - l - t) {
        put_bits(w, 2, 2);
        put_bits(w, x >> *trailing, 64 - *leading - *trailing);
        return;
    }
    unsigned sig = 64 - l - t;
    put_bits(w, 3, 2);
    put_bits(w, l, 5);
    put_bits(w, sig & 63, 6);
    put_bits(w, x >> t, sig);
    *leading = (uint8_t)l;
    *trailing = (uint8_t)t;
}

static void get_xor(struct chunk_iter *it)
{
    if (!get_bits(it, 1))
        return;
    if (!get_bits(it, 1)) {
        if (it->leading == NO_WINDOW) {
            it->err = true;
            return;
        }
    } else {
        unsigned l = (unsigned)get_bits(it, 5), sig = (unsigned)get_bits(it, 6);
        if (sig == 0)
            sig = 64;
        if (l + sig > 64) {
            it->err = true;
            return;
        }
        it->leading = (uint8_t)l;
        it->trailing = (uint8_t)(64 - l - sig);
    }
    it->vbits ^= get_bits(it, 64u - it->leading - it->trailing) << it->trailing;
}

/* ---- encoder ---- */

void chunk_enc_init(struct chunk_enc *e)
{
    memset(e, 0, sizeof *e);
    e->leading = NO_WINDOW;
}

void chunk_enc_free(struct chunk_enc *e)
{
    vg_free(e->buf);
    chunk_enc_init(e);
}

static bool reserve(struct chunk_enc *e, size_t need)
{
    if (need <= e->cap)
        return true;
    size_t cap = e->cap ? e->cap : 64;
    while (cap < need)
        cap *= 2;
    unsigned char *p = vg_realloc(e->buf, cap);
    if (!p)
        return false;
    e->buf = p;
    e->cap = cap;
    return true;
}

int chunk_append(struct chunk_enc *e, int64_t t, double v)
{
    if (e->failed)
        return VG_ENOMEM;
    if (e->count == MAX_COUNT)
        return VG_ETOOLARGE;
    if (e->count > 0 && t < e->t)
        return VG_EINVAL;
    if (!reserve(e, HDR + (e->bits + MAX_SAMPLE_BITS + 7) / 8)) {
        e->failed = true;
        return VG_ENOMEM;
    }
    struct bw w = { e->buf + HDR, e->bits };
    uint64_t vb = dbits(v);
    if (e->count == 0) {
        put_bits(&w, (uint64_t)t, 64);
        put_bits(&w, vb, 64);
        e->tdelta = 0;
    } else {
        uint64_t delta = (uint64_t)t - (uint64_t)e->t;
        put_dod(&w, delta - (uint64_t)e->tdelta);
        put_xor(&w, &e->leading, &e->trailing, e->vbits, vb);
        e->tdelta = (int64_t)delta;
    }
    e->t = t;
    e->vbits = vb;
    e->count++;
    e->bits = w.pos;
    e->buf[0] = (unsigned char)(e->count >> 8);
    e->buf[1] = (unsigned char)e->count;
    e->buf[2] = 0;
    return 0;
}

/* ---- encoding 1: planning and writing ---- */

struct plan {
    size_t n;
    const int64_t *ts;
    const uint64_t *vs;
    int64_t *ms; /* decimal mantissas, for vmode 2/3 */
    unsigned tmode, vmode, kt, kv, scale;
    uint64_t interval, grid_off;
};

/* Residual of sample i >= 1 under timestamp mode mode. */
static uint64_t t_resid(const struct plan *p, unsigned mode, size_t i)
{
    uint64_t d = (uint64_t)p->ts[i] - (uint64_t)p->ts[i - 1];
    switch (mode) {
    case TMODE_DELTA:
        return d - p->interval;
    case TMODE_GRID:
        return (uint64_t)p->ts[i] -
               ((uint64_t)p->ts[0] + p->grid_off + (uint64_t)i * p->interval);
    default:
        return d - (i >= 2 ? (uint64_t)p->ts[i - 1] - (uint64_t)p->ts[i - 2] : 0);
    }
}

static uint64_t v_resid(const struct plan *p, unsigned mode, size_t i)
{
    uint64_t d = (uint64_t)p->ms[i] - (uint64_t)p->ms[i - 1];
    if (mode == VMODE_DEC_DELTA)
        return d;
    return d - (i >= 2 ? (uint64_t)p->ms[i - 1] - (uint64_t)p->ms[i - 2] : 0);
}

/* Best Rice parameter for the zigzagged residuals of one mode; returns its cost. */
static size_t best_rice(const struct plan *p, bool values, unsigned mode, unsigned *k_out)
{
    size_t best = SIZE_MAX;
    uint64_t maxz = 0;
    for (unsigned k = 0; k < 64; k++) {
        size_t cost = 0;
        for (size_t i = 1; i < p->n; i++) {
            uint64_t z = zigzag(values ? v_resid(p, mode, i) : t_resid(p, mode, i));
            if (k == 0 && z > maxz)
                maxz = z;
            cost += rice_cost(z, k);
        }
        if (cost < best) {
            best = cost;
            *k_out = k;
        }
        if (k > bitlen(maxz))
            break; /* larger k only adds bits */
    }
    return best;
}

/* Smallest decimal scale at which every value round-trips exactly; fills ms. */
static bool find_scale(struct plan *p)
{
    unsigned s = 0;
    for (size_t i = 0; i < p->n; i++) {
        double v = bits2d(p->vs[i]);
        for (;; s++) {
            if (s > MAX_SCALE)
                return false;
            double x = v * pow10_tab[s];
            if (!(fabs(x) < 9007199254740992.0)) /* 2^53; also rejects NaN and Inf */
                return false;
            int64_t m = (int64_t)llround(x);
            if (dbits((double)m / pow10_tab[s]) == p->vs[i])
                break;
        }
    }
    for (size_t i = 0; i < p->n; i++) { /* values checked at smaller scales: recheck */
        double x = bits2d(p->vs[i]) * pow10_tab[s];
        if (!(fabs(x) < 9007199254740992.0))
            return false;
        p->ms[i] = (int64_t)llround(x);
        if (dbits((double)p->ms[i] / pow10_tab[s]) != p->vs[i])
            return false;
    }
    p->scale = s;
    return true;
}

static void write_enc1(struct bw *w, const struct plan *p)
{
    put_bits(w, p->tmode, 2);
    put_bits(w, p->vmode, 2);
    put_vb(w, zigzag((uint64_t)p->ts[0]));
    if (p->n > 1) {
        if (p->tmode != TMODE_DOD)
            put_vb(w, p->interval);
        if (p->tmode == TMODE_GRID)
            put_vb(w, zigzag(p->grid_off));
        put_bits(w, p->kt, 6);
    }
    if (p->vmode == VMODE_CONST || p->vmode == VMODE_XOR) {
        put_bits(w, p->vs[0], 64);
    } else {
        put_bits(w, p->scale, 4);
        put_bits(w, p->kv, 6);
        put_vb(w, zigzag((uint64_t)p->ms[0]));
    }
    uint8_t leading = NO_WINDOW, trailing = 0;
    for (size_t i = 1; i < p->n; i++) {
        put_rice(w, zigzag(t_resid(p, p->tmode, i)), p->kt);
        if (p->vmode == VMODE_XOR)
            put_xor(w, &leading, &trailing, p->vs[i - 1], p->vs[i]);
        else if (p->vmode != VMODE_CONST)
            put_rice(w, zigzag(v_resid(p, p->vmode, i)), p->kv);
    }
}

static void choose_plan(struct plan *p)
{
    size_t n = p->n;
    uint64_t span = (uint64_t)p->ts[n - 1] - (uint64_t)p->ts[0];
    p->interval = span / (n - 1) + ((span % (n - 1)) * 2 >= n - 1);
    /* Grid offset: the mean residual, so jitter around the grid costs the fewest bits. */
    double sum = 0;
    for (size_t i = 1; i < n; i++)
        sum += (double)(int64_t)t_resid(p, TMODE_GRID, i);
    double mean = sum / (double)(n - 1);
    p->grid_off = fabs(mean) < 1e15 ? (uint64_t)llround(mean) : 0;
    size_t best = SIZE_MAX;
    for (unsigned mode = 0; mode < TMODE_COUNT; mode++) {
        unsigned k = 0;
        size_t cost = best_rice(p, false, mode, &k);
        if (cost < best) {
            best = cost;
            p->tmode = mode;
            p->kt = k;
        }
    }
    bool constant = true;
    for (size_t i = 1; i < n && constant; i++)
        constant = p->vs[i] == p->vs[0];
    if (constant) {
        p->vmode = VMODE_CONST;
        return;
    }
    struct bw count = { NULL, 0 };
    uint8_t leading = NO_WINDOW, trailing = 0;
    for (size_t i = 1; i < n; i++)
        put_xor(&count, &leading, &trailing, p->vs[i - 1], p->vs[i]);
    p->vmode = VMODE_XOR;
    best = count.pos + 64;
    if (!p->ms || !find_scale(p))
        return;
    for (unsigned mode = VMODE_DEC_DELTA; mode <= VMODE_DEC_DOD; mode++) {
        unsigned k = 0;
        size_t cost = best_rice(p, true, mode, &k) + 10 + 7 + bitlen(zigzag((uint64_t)p->ms[0]));
        if (cost < best) {
            best = cost;
            p->vmode = mode;
            p->kv = k;
        }
    }
}

/* Builds encoding 1 behind the encoding-0 bytes if it is smaller; returns its offset in
 * e->buf and sets *len, or returns 0 to use encoding 0. An allocation failure just keeps
 * encoding 0. */
static size_t build_enc1(struct chunk_enc *e, size_t *len)
{
    size_t n = e->count, enc0_bytes = HDR + (e->bits + 7) / 8, off = 0;
    if (n < 2)
        return 0;
    int64_t *ts = vg_malloc(n * sizeof *ts);
    uint64_t *vs = vg_malloc(n * sizeof *vs);
    int64_t *ms = vg_malloc(n * sizeof *ms);
    if (!ts || !vs)
        goto out;
    struct chunk_iter it;
    chunk_iter_init(&it, e->buf, enc0_bytes);
    double v;
    for (size_t i = 0; i < n; i++) {
        /* Our own bytes are always well-formed; should that ever break, encoding 0
         * is still a correct answer. */
        bool ok = chunk_next(&it, &ts[i], &v);
        assert(ok);
        if (!ok)
            goto out;
        vs[i] = dbits(v);
    }
    struct plan p = { .n = n, .ts = ts, .vs = vs, .ms = ms };
    choose_plan(&p);
    struct bw w = { NULL, 0 };
    write_enc1(&w, &p);
    size_t enc1_bytes = HDR + (w.pos + 7) / 8;
    if (enc1_bytes >= enc0_bytes || !reserve(e, enc0_bytes + enc1_bytes))
        goto out;
    off = enc0_bytes;
    *len = enc1_bytes;
    unsigned char *h = e->buf + off;
    h[0] = (unsigned char)(n >> 8);
    h[1] = (unsigned char)n;
    h[2] = 1;
    w = (struct bw){ h + HDR, 0 };
    write_enc1(&w, &p);
out:
    vg_free(ts);
    vg_free(vs);
    vg_free(ms);
    return off;
}

const unsigned char *chunk_bytes(struct chunk_enc *e, size_t *len)
{
    static const unsigned char empty[HDR] = { 0, 0, 0 };
    if (e->failed) {
        *len = 0;
        return NULL;
    }
    if (e->count == 0) {
        *len = HDR;
        return empty;
    }
    size_t off = build_enc1(e, len);
    if (off)
        return e->buf + off;
    *len = HDR + (e->bits + 7) / 8;
    return e->buf;
}

int chunk_enc_from_bytes(struct chunk_enc *e, const unsigned char *buf, size_t len)
{
    chunk_enc_init(e);
    struct chunk_iter it;
    chunk_iter_init(&it, buf, len);
    int64_t t;
    double v;
    while (chunk_next(&it, &t, &v)) {
        int rc = chunk_append(e, t, v);
        if (rc) {
            chunk_enc_free(e);
            return rc;
        }
    }
    if (it.err) {
        chunk_enc_free(e);
        return VG_EINVAL;
    }
    return 0;
}

/* ---- iterator ---- */

uint16_t chunk_count(const unsigned char *buf, size_t len)
{
    return len < 2 ? 0 : (uint16_t)(buf[0] << 8 | buf[1]);
}

void chunk_iter_init(struct chunk_iter *it, const unsigned char *buf, size_t len)
{
    memset(it, 0, sizeof *it);
    it->buf = buf;
    it->leading = NO_WINDOW;
    if (len < HDR || buf[2] > 1) {
        it->err = true;
        return;
    }
    it->count = chunk_count(buf, len);
    it->enc = buf[2];
    it->len_bits = (len - HDR) * 8;
}

static void next_enc0(struct chunk_iter *it)
{
    if (it->read == 0) {
        it->t = (int64_t)get_bits(it, 64);
        it->vbits = get_bits(it, 64);
        return;
    }
    uint64_t delta = (uint64_t)it->tdelta + get_dod(it);
    int64_t t = (int64_t)((uint64_t)it->t + delta);
    if (t < it->t)
        it->err = true;
    it->t = t;
    it->tdelta = (int64_t)delta;
    get_xor(it);
}

static void set_decimal(struct chunk_iter *it)
{
    it->vbits = dbits((double)it->m / pow10_tab[it->scale]);
}

static void enc1_header(struct chunk_iter *it)
{
    it->tmode = (uint8_t)get_bits(it, 2);
    it->vmode = (uint8_t)get_bits(it, 2);
    it->t0 = it->t = (int64_t)unzigzag(get_vb(it));
    if (it->tmode >= TMODE_COUNT)
        it->err = true;
    if (it->count > 1) {
        if (it->tmode != TMODE_DOD)
            it->interval = get_vb(it);
        if (it->tmode == TMODE_GRID) /* t0 becomes the grid origin t0 + g */
            it->t0 = (int64_t)((uint64_t)it->t0 + unzigzag(get_vb(it)));
        it->kt = (uint8_t)get_bits(it, 6);
    }
    if (it->vmode == VMODE_CONST || it->vmode == VMODE_XOR) {
        it->vbits = get_bits(it, 64);
    } else {
        it->scale = (uint8_t)get_bits(it, 4);
        it->kv = (uint8_t)get_bits(it, 6);
        it->m = (int64_t)unzigzag(get_vb(it));
        set_decimal(it);
    }
}

static void next_enc1(struct chunk_iter *it)
{
    if (it->read == 0) {
        enc1_header(it);
        return;
    }
    uint64_t r = unzigzag(get_rice(it, it->kt)), t;
    if (it->tmode == TMODE_DELTA)
        t = (uint64_t)it->t + it->interval + r;
    else if (it->tmode == TMODE_GRID)
        t = (uint64_t)it->t0 + (uint64_t)it->read * it->interval + r;
    else
        t = (uint64_t)it->t + (uint64_t)it->tdelta + r;
    if ((int64_t)t < it->t)
        it->err = true;
    it->tdelta = (int64_t)(t - (uint64_t)it->t);
    it->t = (int64_t)t;
    if (it->vmode == VMODE_XOR) {
        get_xor(it);
    } else if (it->vmode != VMODE_CONST) {
        uint64_t d = unzigzag(get_rice(it, it->kv));
        if (it->vmode == VMODE_DEC_DOD)
            d += (uint64_t)it->mdelta;
        it->mdelta = (int64_t)d;
        it->m = (int64_t)((uint64_t)it->m + d);
        set_decimal(it);
    }
}

bool chunk_next(struct chunk_iter *it, int64_t *t, double *v)
{
    if (it->err || it->read >= it->count)
        return false;
    if (it->enc == 0)
        next_enc0(it);
    else
        next_enc1(it);
    if (it->err)
        return false;
    it->read++;
    *t = it->t;
    *v = bits2d(it->vbits);
    return true;
}
