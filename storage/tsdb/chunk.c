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
 *
 * Encoding 2 (byte offsets from the start of the chunk):
 *   byte 3-10   t0 as u64be (as in encoding 0, so chunk_enc_first_t reads it in place;
 *               it must equal the first decoded timestamp)
 *   byte 11-12  u16be L, the length of the embedded chunk
 *   byte 13..   a complete encoding-1 chunk of L bytes holding samples 0..k-1 (its own
 *               header gives k, 2 <= k <= n)
 *   byte 13+L.. samples k..n-1 as encoding 0 codes them for i>0, continuing from the
 *               timestamp, last delta and value of sample k-1, with no XOR window set.
 *   Why: a head chunk lives in memory until it is cut, and encoding 0 costs 2-4 bytes
 *   per sample for integer counters that encoding 1 stores in a few bits. Appends stay
 *   O(1) on the encoding-0 tail; chunk_enc_pack now and then folds the tail into the
 *   encoding-1 part. chunk_bytes still returns encoding 1 whenever it is smaller, so
 *   encoding 2 reaches disk only when it is the smallest.
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

enum { TMODE_DELTA, TMODE_GRID, TMODE_DOD, TMODE_COUNT };
enum { VMODE_CONST, VMODE_XOR, VMODE_DEC_DELTA, VMODE_DEC_DOD };

static const double pow10_tab[MAX_SCALE + 1] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

static const unsigned dod_width[6] = { 0, 7, 12, 20, 32, 64 };

/* ---- bits ---- */

/* Bytes a writer may touch past its last bit: put_bits stores whole 64-bit words. */
#define WRITE_SLACK 8

static uint64_t load_be64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return __builtin_bswap64(w);
}

static void store_be64(unsigned char *p, uint64_t w)
{
    w = __builtin_bswap64(w);
    memcpy(p, &w, 8);
}

struct bw {
    unsigned char *p; /* NULL: only count bits */
    size_t pos;
};

/* Writes the low n bits of v (n <= 64) with one 64-bit read-modify-write of the word
 * holding them: the bits already written in that word are kept and everything after
 * the new ones is zeroed (the buffer's tail may hold stale bytes, and the last byte
 * must end zero-padded). The buffer needs WRITE_SLACK bytes past the last bit. */
static inline void put_bits(struct bw *w, uint64_t v, unsigned n)
{
    if (!w->p || n == 0) {
        w->pos += n;
        return;
    }
    unsigned off = w->pos & 7;
    if (off + n > 64) { /* only n > 57: split so each half fits one word */
        put_bits(w, v >> 32, n - 32);
        put_bits(w, v & 0xffffffffu, 32);
        return;
    }
    unsigned char *p = w->p + (w->pos >> 3);
    uint64_t keep = off ? load_be64(p) & (~(uint64_t)0 << (64 - off)) : 0;
    uint64_t bits = n == 64 ? v : v & (((uint64_t)1 << n) - 1);
    store_be64(p, keep | bits << (64 - off - n));
    w->pos += n;
}

static uint64_t get_bits(struct chunk_iter *it, unsigned n)
{
    if (it->err || n > it->len_bits - it->pos) {
        it->err = true;
        return 0;
    }
    if (n == 0)
        return 0;
    size_t byte = it->pos >> 3;
    unsigned off = it->pos & 7;
    if (off + n <= 64 && byte + 8 <= it->len_bits >> 3) { /* one word, inside buf */
        it->pos += n;
        return (load_be64(it->buf + HDR + byte) << off) >> (64 - n);
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

static inline bool rice_word(const unsigned char *p, size_t nbytes, size_t *pos, unsigned k,
                             uint64_t *z);

static uint64_t get_rice(struct chunk_iter *it, unsigned k)
{
    /* The unary part counted with one clz rather than a get_bits call per bit. */
    uint64_t z;
    if (!it->err && rice_word(it->buf + HDR, it->len_bits >> 3, &it->pos, k, &z))
        return z;
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
            /* prefix and value in one write (at most 5 + 32 bits) */
            uint64_t prefix = ((uint64_t)1 << (b + 1)) - 2;
            put_bits(w, prefix << wd | (wd ? dod & (((uint64_t)1 << wd) - 1) : 0), b + 1 + wd);
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
        unsigned m = 64u - *leading - *trailing;
        if (m <= 62) {
            put_bits(w, (uint64_t)2 << m | x >> *trailing, m + 2);
        } else {
            put_bits(w, 2, 2);
            put_bits(w, x >> *trailing, m);
        }
        return;
    }
    unsigned sig = 64 - l - t;
    uint64_t head = (uint64_t)3 << 11 | l << 6 | (sig & 63); /* '11', 5 + 6 bits */
    if (sig <= 51) {
        put_bits(w, head << sig | x >> t, 13 + sig);
    } else {
        put_bits(w, head, 13);
        put_bits(w, x >> t, sig);
    }
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

/* The buffer size at or above cap at which glibc's 8-byte chunk header fills a 16-byte
 * multiple exactly (vg_malloc adds no header of its own). */
static size_t round_cap(size_t cap)
{
    return ((cap + 8 + 15) & ~(size_t)15) - 8;
}

/* Grows buf to at least need bytes. Growth is by an eighth plus 16 bytes rather than
 * doubling, so a head chunk wastes little. */
static bool reserve(struct chunk_enc *e, size_t need)
{
    if (need <= e->cap)
        return true;
    size_t cap = round_cap(need + (need >> 3) + 16);
    if (cap > UINT32_MAX)
        return false;
    unsigned char *p = vg_realloc(e->buf, cap);
    if (!p)
        return false;
    e->buf = p;
    e->cap = (uint32_t)cap;
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
    uint64_t vb = dbits(v), delta = (uint64_t)t - (uint64_t)e->t;
    /* The exact size of this sample (a dry run that only counts), not the worst case:
     * reserving 146 bits ahead would keep ~18 idle bytes in every head chunk. */
    struct bw dry = { NULL, 128 };
    if (e->count > 0) {
        uint8_t l = e->leading, tr = e->trailing;
        dry.pos = 0;
        put_dod(&dry, delta - (uint64_t)e->tdelta);
        put_xor(&dry, &l, &tr, e->vbits, vb);
    }
    if (!reserve(e, HDR + ((size_t)e->bits + dry.pos + 7) / 8 + WRITE_SLACK)) {
        e->failed = true;
        return VG_ENOMEM;
    }
    struct bw w = { e->buf + HDR, e->bits };
    if (e->count == 0) {
        put_bits(&w, (uint64_t)t, 64);
        put_bits(&w, vb, 64);
        e->tdelta = 0;
    } else {
        put_dod(&w, delta - (uint64_t)e->tdelta);
        put_xor(&w, &e->leading, &e->trailing, e->vbits, vb);
        e->tdelta = (int64_t)delta;
    }
    e->t = t;
    e->vbits = vb;
    e->count++;
    e->bits = (uint32_t)w.pos;
    e->buf[0] = (unsigned char)(e->count >> 8);
    e->buf[1] = (unsigned char)e->count;
    e->buf[2] = e->packed ? 2 : 0;
    return 0;
}

/* ---- encoding 1: planning and writing ---- */

struct plan {
    size_t n;
    const int64_t *ts;
    const uint64_t *vs;
    int64_t *ms;                /* decimal mantissas, for vmode 2/3 */
    uint64_t *zt[TMODE_COUNT];  /* zigzagged residuals of samples 1..n-1 per tmode */
    uint64_t *zv[2];            /* the same for vmode 2 and 3 */
    unsigned tmode, vmode, kt, kv, scale;
    uint64_t interval, grid_off;
    size_t bits;                /* exact length of the bitstream */
};

/* Residuals of samples 1..n-1 under every timestamp mode (see the top of the file). */
static void t_resids(struct plan *p)
{
    size_t n = p->n;
    uint64_t span = (uint64_t)p->ts[n - 1] - (uint64_t)p->ts[0];
    p->interval = span / (n - 1) + ((span % (n - 1)) * 2 >= n - 1);
    /* Grid offset: the mean residual, so jitter around the grid costs the fewest bits. */
    double sum = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t r = (uint64_t)p->ts[i] - ((uint64_t)p->ts[0] + (uint64_t)i * p->interval);
        p->zt[TMODE_GRID][i - 1] = r;
        sum += (double)(int64_t)r;
    }
    double mean = sum / (double)(n - 1);
    p->grid_off = fabs(mean) < 1e15 ? (uint64_t)llround(mean) : 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t d = (uint64_t)p->ts[i] - (uint64_t)p->ts[i - 1];
        uint64_t pd = i >= 2 ? (uint64_t)p->ts[i - 1] - (uint64_t)p->ts[i - 2] : 0;
        p->zt[TMODE_DELTA][i - 1] = zigzag(d - p->interval);
        p->zt[TMODE_GRID][i - 1] = zigzag(p->zt[TMODE_GRID][i - 1] - p->grid_off);
        p->zt[TMODE_DOD][i - 1] = zigzag(d - pd);
    }
}

/* Residuals of the mantissas for vmode 2 (delta) and 3 (delta-of-delta). */
static void v_resids(struct plan *p)
{
    for (size_t i = 1; i < p->n; i++) {
        uint64_t d = (uint64_t)p->ms[i] - (uint64_t)p->ms[i - 1];
        uint64_t pd = i >= 2 ? (uint64_t)p->ms[i - 1] - (uint64_t)p->ms[i - 2] : 0;
        p->zv[0][i - 1] = zigzag(d);
        p->zv[1][i - 1] = zigzag(d - pd);
    }
}

static size_t rice_total(const uint64_t *z, size_t m, unsigned k)
{
    size_t cost = 0;
    for (size_t i = 0; i < m; i++)
        cost += rice_cost(z[i], k);
    return cost;
}

/* Rice parameter with the lowest total cost for the m residuals z; returns that cost.
 * The total is (close to) convex in k, so instead of trying all 64 parameters this
 * starts at floor(log2(mean)), where the optimum of a geometric distribution lies, and
 * walks downhill. Any k decodes correctly; this only decides the size. */
static size_t best_rice(const uint64_t *z, size_t m, unsigned *k_out)
{
    double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += (double)z[i];
    double mean = sum / (double)m;
    unsigned k = mean >= 1 ? (unsigned)ilogb(mean) : 0;
    if (k > 63)
        k = 63;
    size_t best = rice_total(z, m, k);
    bool moved = false;
    while (k > 0) {
        size_t c = rice_total(z, m, k - 1);
        if (c >= best)
            break;
        best = c;
        k--;
        moved = true;
    }
    while (!moved && k < 63) {
        size_t c = rice_total(z, m, k + 1);
        if (c >= best)
            break;
        best = c;
        k++;
    }
    *k_out = k;
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
    const uint64_t *zt = p->zt[p->tmode];
    const uint64_t *zv = p->vmode >= VMODE_DEC_DELTA ? p->zv[p->vmode - VMODE_DEC_DELTA] : NULL;
    uint8_t leading = NO_WINDOW, trailing = 0;
    for (size_t i = 1; i < p->n; i++) {
        put_rice(w, zt[i - 1], p->kt);
        if (p->vmode == VMODE_XOR)
            put_xor(w, &leading, &trailing, p->vs[i - 1], p->vs[i]);
        else if (zv)
            put_rice(w, zv[i - 1], p->kv);
    }
}

/* Picks the modes and parameters (n >= 2) and sets p->bits to the exact length
 * write_enc1 will produce, from the same cost functions, so the stream is written once. */
static void choose_plan(struct plan *p)
{
    size_t n = p->n, m = n - 1;
    t_resids(p);
    size_t best = SIZE_MAX;
    for (unsigned mode = 0; mode < TMODE_COUNT; mode++) {
        unsigned k = 0;
        size_t cost = best_rice(p->zt[mode], m, &k);
        if (cost < best) {
            best = cost;
            p->tmode = mode;
            p->kt = k;
        }
    }
    size_t bits = 2 + 2 + 7 + bitlen(zigzag((uint64_t)p->ts[0])) + 6 + best;
    if (p->tmode != TMODE_DOD)
        bits += 7 + bitlen(p->interval);
    if (p->tmode == TMODE_GRID)
        bits += 7 + bitlen(zigzag(p->grid_off));
    bool constant = true;
    for (size_t i = 1; i < n && constant; i++)
        constant = p->vs[i] == p->vs[0];
    if (constant) {
        p->vmode = VMODE_CONST;
        p->bits = bits + 64;
        return;
    }
    struct bw count = { NULL, 0 };
    uint8_t leading = NO_WINDOW, trailing = 0;
    for (size_t i = 1; i < n; i++)
        put_xor(&count, &leading, &trailing, p->vs[i - 1], p->vs[i]);
    p->vmode = VMODE_XOR;
    best = count.pos + 64;
    if (find_scale(p)) {
        v_resids(p);
        for (unsigned mode = VMODE_DEC_DELTA; mode <= VMODE_DEC_DOD; mode++) {
            unsigned k = 0;
            size_t cost = best_rice(p->zv[mode - VMODE_DEC_DELTA], m, &k) + 4 + 6 + 7 +
                          bitlen(zigzag((uint64_t)p->ms[0]));
            if (cost < best) {
                best = cost;
                p->vmode = mode;
                p->kv = k;
            }
        }
    }
    p->bits = bits + best;
}

/* Builds encoding 1 behind the encoding-0 bytes if it is smaller; returns its offset in
 * e->buf and sets *len, or returns 0 to use encoding 0. An allocation failure just keeps
 * encoding 0. Cost: one decode of the chunk, a few passes over the residual arrays per
 * mode, one write. */
static size_t enc_bytes(const struct chunk_enc *e)
{
    return HDR + ((size_t)e->bits + 7) / 8;
}

/* Decodes e's samples (n >= 2) into one scratch block (ts, vs, ms, three timestamp and
 * two value residual arrays) and plans encoding 1 over them. Returns the block, which
 * p points into and the caller frees, or NULL when out of memory. */
static uint64_t *plan_enc1(const struct chunk_enc *e, struct plan *p)
{
    size_t n = e->count;
    uint64_t *mem = vg_malloc(8 * n * sizeof *mem);
    if (!mem)
        return NULL;
    int64_t *ts = (int64_t *)mem;
    uint64_t *vs = mem + n;
    *p = (struct plan){ .n = n, .ts = ts, .vs = vs, .ms = (int64_t *)(mem + 2 * n) };
    for (unsigned i = 0; i < TMODE_COUNT; i++)
        p->zt[i] = mem + (3 + i) * n;
    p->zv[0] = mem + 6 * n;
    p->zv[1] = mem + 7 * n;
    struct chunk_iter it;
    chunk_iter_init(&it, e->buf, enc_bytes(e));
    double v;
    for (size_t i = 0; i < n; i++) {
        /* Our own bytes are always well-formed; should that ever break, the encoding
         * at hand is still a correct answer. */
        bool ok = chunk_next(&it, &ts[i], &v);
        assert(ok);
        if (!ok) {
            vg_free(mem);
            return NULL;
        }
        vs[i] = dbits(v);
    }
    choose_plan(p);
    return mem;
}

/* Writes the encoding-1 chunk planned in p at h (HDR + (p->bits + 7) / 8 bytes plus
 * WRITE_SLACK writable). */
static void put_enc1(unsigned char *h, const struct plan *p)
{
    h[0] = (unsigned char)(p->n >> 8);
    h[1] = (unsigned char)p->n;
    h[2] = 1;
    struct bw w = { h + HDR, 0 };
    write_enc1(&w, p);
    assert(w.pos == p->bits);
}

static size_t build_enc1(struct chunk_enc *e, size_t *len)
{
    size_t n = e->count, cur_bytes = enc_bytes(e), off = 0;
    if (n < 2)
        return 0;
    struct plan p;
    uint64_t *mem = plan_enc1(e, &p);
    if (!mem)
        return 0;
    size_t enc1_bytes = HDR + (p.bits + 7) / 8;
    if (enc1_bytes < cur_bytes && reserve(e, cur_bytes + enc1_bytes + WRITE_SLACK)) {
        off = cur_bytes;
        *len = enc1_bytes;
        put_enc1(e->buf + off, &p);
    }
    vg_free(mem);
    return off;
}

/* Encoding 2's fixed part: header, raw t0, u16 length of the embedded chunk. */
#define ENC2_FIXED (HDR + 8 + 2)

/* chunk_enc_pack and chunk_enc_seal: room is the bytes left free past the packed
 * part for the appends to come. */
static int pack(struct chunk_enc *e, size_t room)
{
    if (e->failed || e->nopack || e->count < 2 || e->count == e->packed)
        return 0;
    struct plan p;
    uint64_t *mem = plan_enc1(e, &p);
    if (!mem)
        return VG_ENOMEM;
    size_t enc1_bytes = HDR + (p.bits + 7) / 8, total = ENC2_FIXED + enc1_bytes;
    size_t cur = enc_bytes(e);
    if (enc1_bytes > UINT16_MAX || total > cur - cur / 8) {
        e->nopack = true;
        vg_free(mem);
        return 0;
    }
    size_t cap = round_cap(total + room + WRITE_SLACK);
    /* Without room, the buffer is cut to the bytes themselves (8 bytes less on average,
     * one chunk per series): the bit writer's slack is then a scratch copy's. */
    unsigned char tight[512 + WRITE_SLACK];
    bool via_tight = room == 0 && enc1_bytes + WRITE_SLACK <= sizeof tight;
    if (via_tight)
        cap = round_cap(total);
    unsigned char *nb = vg_malloc(cap);
    if (!nb) {
        vg_free(mem);
        return VG_ENOMEM;
    }
    nb[0] = (unsigned char)(e->count >> 8);
    nb[1] = (unsigned char)e->count;
    nb[2] = 2;
    memcpy(nb + HDR, e->buf + HDR, 8); /* t0, the same raw bits in encodings 0 and 2 */
    nb[HDR + 8] = (unsigned char)(enc1_bytes >> 8);
    nb[HDR + 9] = (unsigned char)enc1_bytes;
    if (via_tight) {
        put_enc1(tight, &p);
        memcpy(nb + ENC2_FIXED, tight, enc1_bytes);
        memset(nb + total, 0, cap - total);
    } else {
        put_enc1(nb + ENC2_FIXED, &p);
    }
    vg_free(mem);
    vg_free(e->buf);
    e->buf = nb;
    e->cap = (uint32_t)cap;
    e->bits = (uint32_t)(total - HDR) * 8;
    e->packed = e->count;
    e->leading = NO_WINDOW;
    e->trailing = 0;
    return 0;
}

int chunk_enc_pack(struct chunk_enc *e)
{
    /* Room for a few more appends, so the next one does not reallocate at once. */
    return pack(e, 16);
}

int chunk_enc_seal(struct chunk_enc *e)
{
    return pack(e, 0);
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
    if (e->packed == e->count) {
        /* Encoding 2 without a tail: its embedded encoding-1 chunk is all of it, and
         * smaller by the fixed part. */
        *len = (size_t)e->buf[HDR + 8] << 8 | e->buf[HDR + 9];
        return e->buf + ENC2_FIXED;
    }
    size_t off = build_enc1(e, len);
    if (off)
        return e->buf + off;
    *len = HDR + ((size_t)e->bits + 7) / 8;
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
    if (len < HDR || buf[2] > 2) {
        it->err = true;
        return;
    }
    it->count = it->seg = chunk_count(buf, len);
    it->enc = buf[2];
    it->len_bits = (len - HDR) * 8;
    if (it->enc == 2) {
        size_t l = len < ENC2_FIXED ? 0 : (size_t)buf[HDR + 8] << 8 | buf[HDR + 9];
        const unsigned char *in = buf + ENC2_FIXED;
        if (l < HDR || l > len - ENC2_FIXED || in[2] != 1 || chunk_count(in, l) < 2 ||
            chunk_count(in, l) > it->count) {
            it->err = true;
            return;
        }
        it->seg = chunk_count(in, l);
        it->pos = (size_t)(ENC2_FIXED + HDR - HDR) * 8; /* the embedded chunk's bitstream */
        it->cont = (ENC2_FIXED + l - HDR) * 8;   /* the encoding-0 continuation */
    }
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
    if (it->seg > 1) {
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

/* One Rice code at bit *pos of the stream at p (nbytes long) when it lies in the word
 * there: true with *z and *pos moved; false (nothing moved) for anything else, which
 * the caller leaves to next_enc1. */
static inline bool rice_word(const unsigned char *p, size_t nbytes, size_t *pos, unsigned k,
                             uint64_t *z)
{
    size_t byte = *pos >> 3;
    unsigned off = *pos & 7, q;
    if (k <= 36 && byte + 8 <= nbytes) {
        /* The common case, kept short: a whole word is there, and k <= 36 keeps a code
         * with a short unary part within its 57 or more valid bits. */
        uint64_t w = load_be64(p + byte) << off;
        q = (unsigned)__builtin_clzll(~w | 1);
        if (q >= RICE_QMAX)
            return false;
        *pos += q + 1 + k;
        *z = ((uint64_t)q << k) | (w << q << 1) >> (63 - k) >> 1;
        return true;
    }
    if (byte >= nbytes || nbytes < 8)
        return false;
    /* Near the end, the stream's last word shifted up, zero-filled. */
    size_t at = byte + 8 <= nbytes ? byte : nbytes - 8;
    uint64_t w = load_be64(p + at) << (8 * (byte - at)) << off;
    size_t have = nbytes * 8 - *pos;
    q = ~w ? (unsigned)__builtin_clzll(~w) : 64;
    if (q >= RICE_QMAX || q + 1 + k > 64 - off || q + 1 + k > have)
        return false;
    *pos += q + 1 + k;
    *z = ((uint64_t)q << k) | (k ? (w << (q + 1)) >> (64 - k) : 0);
    return true;
}

void chunk_iter_skip_before(struct chunk_iter *it, int64_t mint)
{
    /* Exactly next_enc1 for the modes handled, with the state in locals; it stops
     * before the first sample at or after mint, before anything unusual (a decreasing
     * time, a long Rice code, the stream's last word) and at the end of the encoding-1
     * part, leaving those to chunk_next. */
    if (it->err || it->enc == 0 || it->read == 0 || it->read >= it->seg ||
        it->vmode == VMODE_XOR)
        return;
    const unsigned char *p = it->buf + HDR;
    size_t nbytes = it->len_bits >> 3, pos = it->pos;
    uint16_t read = it->read;
    uint64_t t = (uint64_t)it->t, tdelta = (uint64_t)it->tdelta;
    uint64_t m = (uint64_t)it->m, mdelta = (uint64_t)it->mdelta;
    while (read < it->seg) {
        size_t at = pos;
        uint64_t z, nt;
        if (!rice_word(p, nbytes, &at, it->kt, &z))
            break;
        uint64_t r = unzigzag(z);
        if (it->tmode == TMODE_DELTA)
            nt = t + it->interval + r;
        else if (it->tmode == TMODE_GRID)
            nt = (uint64_t)it->t0 + (uint64_t)read * it->interval + r;
        else
            nt = t + tdelta + r;
        if ((int64_t)nt < (int64_t)t || (int64_t)nt >= mint)
            break;
        if (it->vmode != VMODE_CONST) {
            if (!rice_word(p, nbytes, &at, it->kv, &z))
                break;
            uint64_t d = unzigzag(z);
            if (it->vmode == VMODE_DEC_DOD)
                d += mdelta;
            mdelta = d;
            m += d;
        }
        tdelta = nt - t;
        t = nt;
        pos = at;
        read++;
    }
    if (read == it->read)
        return;
    it->pos = pos;
    it->read = read;
    it->t = (int64_t)t;
    it->tdelta = (int64_t)tdelta;
    it->m = (int64_t)m;
    it->mdelta = (int64_t)mdelta;
    if (it->vmode != VMODE_CONST)
        set_decimal(it);
}

bool chunk_next(struct chunk_iter *it, int64_t *t, double *v)
{
    if (it->err || it->read >= it->count)
        return false;
    if (it->enc == 0) {
        next_enc0(it);
    } else if (it->read < it->seg) {
        next_enc1(it);
        if (it->enc == 2 && it->read == 0 && (uint64_t)it->t != load_be64(it->buf + HDR))
            it->err = true; /* the raw t0 disagrees with the embedded chunk */
    } else { /* encoding 2's continuation */
        if (it->read == it->seg) {
            it->pos = it->cont;
            it->leading = NO_WINDOW;
        }
        next_enc0(it);
    }
    if (it->err)
        return false;
    it->read++;
    *t = it->t;
    *v = bits2d(it->vbits);
    return true;
}
