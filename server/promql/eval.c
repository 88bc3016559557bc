/* eval: the evaluator's core: values, the output builder, label helpers, hashing,
 * selectors, range vectors, subqueries and the dispatch over node kinds. See
 * eval_int.h for the model. Semantics follow Prometheus 3's engine.go:
 *
 * - Instant selector at step t: the newest sample with t' in (te - lookback, te],
 *   te = (@ time or t) - offset; none when that sample is a staleness marker.
 * - Range selector: the samples in (te - range, te] (left-open, Prometheus 3), with
 *   staleness markers dropped.
 * - Subquery expr[range:step]: the inner expression is evaluated at the absolute
 *   multiples of step from the first one strictly after (first te - range) up to the
 *   last te; the points form a range vector with the same window rule.
 * - @ start() / @ end() are the query's start and end, also inside subqueries.
 * - Each selector loads its series once for the whole query: [first te - lookback (or
 *   range) + 1, last te]. */
#include "eval_int.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- errors, deadline, annotations ---- */

int ev_fail(struct ev *ev, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vg_err_vset(ev->err, code, fmt, ap);
    va_end(ap);
    return code;
}

int ev_nomem(struct ev *ev)
{
    /* A constant return (not ev_fail's) lets the analyzer see that callers bail out. */
    (void)ev_fail(ev, VG_ENOMEM, "out of memory in query execution");
    return VG_ENOMEM;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int check_now(struct ev *ev)
{
    if (ev->deadline_ns && now_ns() >= ev->deadline_ns)
        return ev_fail(ev, VG_EOVERLOAD, "query timed out in expression evaluation");
    return 0;
}

int ev_check(struct ev *ev)
{
    /* reading the clock costs ~20ns; every 64th call is often enough */
    if (!ev->deadline_ns || (ev->tick++ & 63))
        return 0;
    return check_now(ev);
}

int ev_annotate(struct ev *ev, bool warning, const char *fmt, ...)
{
    char buf[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char ***list = warning ? &ev->warn : &ev->info;
    size_t *n = warning ? &ev->nwarn : &ev->ninfo, *cap = warning ? &ev->capwarn : &ev->capinfo;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*list)[i], buf))
            return 0; /* annotations are a set, as in Prometheus */
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        char **nl = vg_arena_alloc(ev->arena, nc * sizeof *nl);
        if (!nl)
            return ev_nomem(ev);
        if (*n)
            memcpy(nl, *list, *n * sizeof *nl);
        *list = nl;
        *cap = nc;
    }
    char *s = vg_arena_strndup(ev->arena, buf, strlen(buf));
    if (!s)
        return ev_nomem(ev);
    (*list)[(*n)++] = s;
    return 0;
}

const char *ev_g(double v, char *buf)
{
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_prom_float(&b, v);
    size_t n = vg_buf_failed(&b) ? 0 : b.len < 31 ? b.len : 31;
    if (n)
        memcpy(buf, b.p, n);
    buf[n] = 0;
    vg_buf_free(&b);
    return buf;
}

int ev_warn_quantile(struct ev *ev, double q)
{
    char g[32];
    if (isnan(q) || q < 0 || q > 1)
        return ev_annotate(ev, true, "PromQL warning: quantile value should be between 0 and 1, "
                                     "got %s", ev_g(q, g));
    return 0;
}

static const char too_many[] =
    "query processing would load too many samples into memory in query execution";

int ev_account(struct ev *ev, struct ev_val *v)
{
    if (v->type != PT_VECTOR || v->counted)
        return 0;
    uint64_t c = 0;
    size_t cells = v->n * v->nsteps;
    for (size_t i = 0; i < cells; i++)
        c += v->ok[i];
    v->counted = c;
    ev->live += c;
    if (ev->o->max_samples && ev->live > ev->o->max_samples)
        return ev_fail(ev, VG_ETOOLARGE, too_many);
    return 0;
}

/* ---- hashing: xxHash64 (seed 0), streaming ---- */

#define XP1 11400714785074694791ULL
#define XP2 14029467366897019727ULL
#define XP3 1609587929392839161ULL
#define XP4 9650029242287828579ULL
#define XP5 2870177450012600261ULL

struct xxh {
    uint64_t v[4];
    uint8_t buf[32];
    size_t bl;
    uint64_t total;
};

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only, as everything Vigil runs on */
}
static inline uint64_t xround(uint64_t acc, uint64_t lane)
{
    return rotl(acc + lane * XP2, 31) * XP1;
}

static void xxh_init(struct xxh *h)
{
    h->v[0] = XP1 + XP2;
    h->v[1] = XP2;
    h->v[2] = 0;
    h->v[3] = -XP1;
    h->bl = 0;
    h->total = 0;
}

static void xxh_stripe(struct xxh *h, const uint8_t *p)
{
    for (int i = 0; i < 4; i++)
        h->v[i] = xround(h->v[i], rd64(p + (size_t)8 * i));
}

static void xxh_update(struct xxh *h, const void *data, size_t len)
{
    const uint8_t *p = data;
    h->total += len;
    if (h->bl) {
        size_t take = 32 - h->bl < len ? 32 - h->bl : len;
        memcpy(h->buf + h->bl, p, take);
        h->bl += take;
        p += take;
        len -= take;
        if (h->bl < 32)
            return;
        xxh_stripe(h, h->buf);
        h->bl = 0;
    }
    while (len >= 32) {
        xxh_stripe(h, p);
        p += 32;
        len -= 32;
    }
    if (len) {
        memcpy(h->buf, p, len);
        h->bl = len;
    }
}

static uint64_t xxh_digest(const struct xxh *h)
{
    uint64_t a;
    if (h->total >= 32) {
        a = rotl(h->v[0], 1) + rotl(h->v[1], 7) + rotl(h->v[2], 12) + rotl(h->v[3], 18);
        for (int i = 0; i < 4; i++) {
            a ^= xround(0, h->v[i]);
            a = a * XP1 + XP4;
        }
    } else {
        a = XP5;
    }
    a += h->total;
    const uint8_t *p = h->buf;
    size_t len = h->bl;
    while (len >= 8) {
        a ^= xround(0, rd64(p));
        a = rotl(a, 27) * XP1 + XP4;
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        a ^= (uint64_t)w * XP1;
        a = rotl(a, 23) * XP2 + XP3;
        p += 4;
        len -= 4;
    }
    while (len--) {
        a ^= (uint64_t)(*p++) * XP5;
        a = rotl(a, 11) * XP1;
    }
    a ^= a >> 33;
    a *= XP2;
    a ^= a >> 29;
    a *= XP3;
    a ^= a >> 32;
    return a;
}

static void xxh_label(struct xxh *h, const struct label *l)
{
    static const uint8_t sep = 0xff;
    xxh_update(h, l->name.p, l->name.len);
    xxh_update(h, &sep, 1);
    xxh_update(h, l->value.p, l->value.len);
    xxh_update(h, &sep, 1);
}

/* Label bytes gathered into one buffer before they are hashed: feeding xxh_update four
 * short pieces per label cost more than the hashing itself (a tenth of an instant
 * query's evaluation over 20,000 series). The digest is the same, as xxh64 does not
 * depend on how its input is split. */
struct xcat {
    struct xxh h;
    size_t n;
    uint8_t b[512];
};

static void xcat_label(struct xcat *c, const struct label *l)
{
    size_t need = l->name.len + l->value.len + 2;
    if (c->n + need > sizeof c->b) {
        xxh_update(&c->h, c->b, c->n);
        c->n = 0;
        if (need > sizeof c->b) {
            xxh_label(&c->h, l);
            return;
        }
    }
    if (l->name.len) /* an empty string's pointer may be NULL */
        memcpy(c->b + c->n, l->name.p, l->name.len);
    c->n += l->name.len;
    c->b[c->n++] = 0xff;
    if (l->value.len)
        memcpy(c->b + c->n, l->value.p, l->value.len);
    c->n += l->value.len;
    c->b[c->n++] = 0xff;
}

static uint64_t xcat_digest(struct xcat *c)
{
    xxh_update(&c->h, c->b, c->n);
    return xxh_digest(&c->h);
}

uint64_t ev_labels_hash(const struct label *ls, size_t n)
{
    struct xcat c;
    xxh_init(&c.h);
    c.n = 0;
    for (size_t i = 0; i < n; i++)
        xcat_label(&c, &ls[i]);
    return xcat_digest(&c);
}

bool ev_names_has(const struct promql_strings *names, struct vg_str name)
{
    for (size_t i = 0; names && i < names->n; i++)
        if (vg_str_eq_c(name, names->v[i]))
            return true;
    return false;
}

static bool is_name(struct vg_str s)
{
    return vg_str_eq_c(s, "__name__");
}

uint64_t ev_sig_hash(const struct label *ls, size_t n, const struct promql_strings *names, bool on)
{
    struct xcat c;
    xxh_init(&c.h);
    c.n = 0;
    for (size_t i = 0; i < n; i++) {
        bool listed = ev_names_has(names, ls[i].name);
        if (on ? listed : (!listed && !is_name(ls[i].name)))
            xcat_label(&c, &ls[i]);
    }
    return xcat_digest(&c);
}

/* Prometheus 3 accepts any non-empty valid UTF-8 label name. */
bool ev_label_name_ok(struct vg_str s)
{
    if (!s.len)
        return false;
    const unsigned char *p = (const unsigned char *)s.p;
    for (size_t i = 0; i < s.len;) {
        unsigned c = p[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!n || i + n > s.len)
            return false;
        uint32_t cp = n == 1 ? c : c & (0x7f >> n);
        for (size_t j = 1; j < n; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

/* ---- map ---- */

int ev_map_init(struct ev *ev, struct ev_map *m, size_t hint)
{
    size_t cap = 16;
    while (cap < hint * 2)
        cap *= 2;
    m->keys = vg_malloc(cap * sizeof *m->keys);
    m->vals = vg_calloc(cap, sizeof *m->vals);
    m->cap = cap;
    m->n = 0;
    if (!m->keys || !m->vals) {
        ev_map_free(m);
        return ev_nomem(ev);
    }
    return 0;
}

void ev_map_free(struct ev_map *m)
{
    vg_free(m->keys);
    vg_free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

static size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 17) & (cap - 1);
}

static int map_grow(struct ev *ev, struct ev_map *m)
{
    struct ev_map nm;
    if (ev_map_init(ev, &nm, m->cap))
        return VG_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->vals[i])
            continue;
        size_t s = slot_of(m->keys[i], nm.cap);
        while (nm.vals[s])
            s = (s + 1) & (nm.cap - 1);
        nm.keys[s] = m->keys[i];
        nm.vals[s] = m->vals[i];
    }
    nm.n = m->n;
    ev_map_free(m);
    *m = nm;
    return 0;
}

long ev_map_get(struct ev *ev, struct ev_map *m, uint64_t key, size_t idx, bool add)
{
    size_t s = slot_of(key, m->cap);
    while (m->vals[s]) {
        if (m->keys[s] == key)
            return (long)m->vals[s] - 1;
        s = (s + 1) & (m->cap - 1);
    }
    if (!add)
        return -1;
    if ((m->n + 1) * 2 > m->cap) {
        if (map_grow(ev, m))
            return VG_ENOMEM - 1;
        return ev_map_get(ev, m, key, idx, add);
    }
    m->keys[s] = key;
    m->vals[s] = (uint32_t)idx + 1;
    m->n++;
    return (long)idx;
}

/* ---- labels ---- */

static struct label *lbl_alloc(struct ev *ev, size_t n)
{
    return vg_arena_alloc(ev->arena, (n ? n : 1) * sizeof(struct label));
}

int ev_lbl_drop_name(struct ev *ev, const struct label *ls, size_t n, const struct label **out,
                     size_t *nout)
{
    size_t i;
    for (i = 0; i < n && !is_name(ls[i].name); i++)
        ;
    if (i == n) {
        *out = ls;
        *nout = n;
        return 0;
    }
    struct label *o = lbl_alloc(ev, n);
    if (!o)
        return ev_nomem(ev);
    memcpy(o, ls, i * sizeof *o);
    memcpy(o + i, ls + i + 1, (n - i - 1) * sizeof *o);
    *out = o;
    *nout = n - 1;
    return 0;
}

int ev_lbl_filter(struct ev *ev, const struct label *ls, size_t n,
                  const struct promql_strings *names, bool keep, bool also_name,
                  const struct label **out, size_t *nout)
{
    struct label *o = lbl_alloc(ev, n);
    if (!o)
        return ev_nomem(ev);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool listed = ev_names_has(names, ls[i].name);
        bool take = keep ? listed : (!listed && !(also_name && is_name(ls[i].name)));
        if (take)
            o[m++] = ls[i];
    }
    *out = o;
    *nout = m;
    return 0;
}

int ev_lbl_set(struct ev *ev, const struct label *ls, size_t n, struct vg_str name,
               struct vg_str value, const struct label **out, size_t *nout)
{
    struct label *o = lbl_alloc(ev, n + 1);
    if (!o)
        return ev_nomem(ev);
    char *nm = vg_arena_strndup(ev->arena, name.p ? name.p : "", name.len);
    char *vv = vg_arena_strndup(ev->arena, value.p ? value.p : "", value.len);
    if (!nm || !vv)
        return ev_nomem(ev);
    name.p = nm; /* the copies are never NULL, unlike a {NULL, 0} argument */
    value.p = vv;
    size_t m = 0;
    bool placed = value.len == 0;
    for (size_t i = 0; i < n; i++) {
        int c = vg_str_cmp(ls[i].name, name);
        if (c == 0)
            continue;
        if (c > 0 && !placed) {
            o[m++] = (struct label){ { nm, name.len }, { vv, value.len } };
            placed = true;
        }
        o[m++] = ls[i];
    }
    if (!placed)
        o[m++] = (struct label){ { nm, name.len }, { vv, value.len } };
    *out = o;
    *nout = m;
    return 0;
}

int ev_ser_dropname(struct ev *ev, const struct ev_series *in, struct ev_series *out)
{
    *out = *in;
    if (ev->delayed) {
        out->drop_name = true;
        return 0;
    }
    out->drop_name = false;
    return ev_lbl_drop_name(ev, in->ls, in->nls, &out->ls, &out->nls);
}

static size_t put_quoted(char *b, size_t cap, size_t at, struct vg_str s)
{
    static const char hex[] = "0123456789abcdef";
#define PUT(c)                                                                                 \
    do {                                                                                       \
        if (at + 1 < cap)                                                                      \
            b[at] = (c);                                                                       \
        at++;                                                                                  \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        switch (c) {
        case '"': PUT('\\'); PUT('"'); break;
        case '\\': PUT('\\'); PUT('\\'); break;
        case '\n': PUT('\\'); PUT('n'); break;
        case '\t': PUT('\\'); PUT('t'); break;
        case '\r': PUT('\\'); PUT('r'); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                PUT('\\');
                PUT('x');
                PUT(hex[c >> 4]);
                PUT(hex[c & 15]);
            } else {
                PUT((char)c);
            }
        }
    }
    PUT('"');
#undef PUT
    return at;
}

static bool legacy_name(struct vg_str s)
{
    if (!s.len)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        bool ok = c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

void ev_lbl_str(const struct label *ls, size_t n, char *b, size_t cap)
{
    size_t at = 0;
    if (!cap)
        return;
#define PUTS(str)                                                                              \
    for (const char *q_ = (str); *q_; q_++) {                                                  \
        if (at + 1 < cap)                                                                      \
            b[at] = *q_;                                                                       \
        at++;                                                                                  \
    }
    PUTS("{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUTS(", ");
        if (legacy_name(ls[i].name)) {
            for (size_t j = 0; j < ls[i].name.len; j++) {
                if (at + 1 < cap)
                    b[at] = ls[i].name.p[j];
                at++;
            }
        } else {
            at = put_quoted(b, cap, at, ls[i].name);
        }
        PUTS("=");
        at = put_quoted(b, cap, at, ls[i].value);
    }
    PUTS("}");
#undef PUTS
    b[at < cap ? at : cap - 1] = 0;
}

/* ---- values ---- */

struct ev_val *ev_val_new(struct ev *ev, enum promql_type t, size_t nsteps)
{
    struct ev_val *v = vg_calloc(1, sizeof *v);
    if (!v) {
        ev_nomem(ev);
        return NULL;
    }
    v->type = t;
    v->nsteps = nsteps;
    return v;
}

struct ev_val *ev_scalar_new(struct ev *ev, size_t nsteps, double fill)
{
    struct ev_val *v = ev_val_new(ev, PT_SCALAR, nsteps);
    if (!v)
        return NULL;
    v->v = vg_malloc((nsteps ? nsteps : 1) * sizeof *v->v);
    if (!v->v) {
        ev_val_free(ev, v);
        ev_nomem(ev);
        return NULL;
    }
    for (size_t k = 0; k < nsteps; k++)
        v->v[k] = fill;
    return v;
}

void ev_val_free(struct ev *ev, struct ev_val *v)
{
    if (!v)
        return;
    ev->live -= v->counted;
    ev_range_free(ev, v->rng);
    vg_free(v->s);
    vg_free(v->v);
    vg_free(v->ok);
    vg_free(v);
}

void ev_range_free(struct ev *ev, struct ev_range *r)
{
    if (!r)
        return;
    ev->live -= r->counted;
    vg_free(r->v);
    vg_free(r->mem);
    vg_free(r);
}

long ev_val_add(struct ev *ev, struct ev_val *v, const struct label *ls, size_t nls,
                bool drop_name)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 8;
        size_t ns = v->nsteps ? v->nsteps : 1;
        if (ev->o->max_samples && (uint64_t)nc * ns > ev->o->max_samples &&
            (uint64_t)(v->n + 1) * ns > ev->o->max_samples)
            return ev_fail(ev, VG_ETOOLARGE, too_many);
        struct ev_series *s = vg_realloc(v->s, nc * sizeof *s);
        if (!s)
            return ev_nomem(ev);
        v->s = s;
        double *vv = vg_realloc(v->v, nc * ns * sizeof *vv);
        if (!vv)
            return ev_nomem(ev);
        v->v = vv;
        uint8_t *ok = vg_realloc(v->ok, nc * ns);
        if (!ok)
            return ev_nomem(ev);
        v->ok = ok;
        v->cap = nc;
    }
    size_t i = v->n++;
    v->s[i] = (struct ev_series){ ls, nls, drop_name };
    memset(ev_okrow(v, i), 0, v->nsteps);
    return (long)i;
}

void ev_val_compact(struct ev_val *v)
{
    size_t m = 0, ns = v->nsteps;
    for (size_t i = 0; i < v->n; i++) {
        const uint8_t *ok = ev_okrow(v, i);
        bool any = false;
        for (size_t k = 0; k < ns && !any; k++)
            any = ok[k];
        if (!any)
            continue;
        if (m != i) {
            v->s[m] = v->s[i];
            memcpy(ev_row(v, m), ev_row(v, i), ns * sizeof(double));
            memcpy(ev_okrow(v, m), ok, ns);
        }
        m++;
    }
    v->n = m;
}

/* ---- builder ---- */

int ev_build_init(struct ev *ev, struct ev_build *b, size_t nsteps, size_t hint)
{
    memset(b, 0, sizeof *b);
    b->val = ev_val_new(ev, PT_VECTOR, nsteps);
    if (!b->val)
        return VG_ENOMEM;
    size_t cap = 16;
    while (cap < hint * 2)
        cap *= 2;
    b->keys = vg_malloc(cap * sizeof *b->keys);
    b->slots = vg_calloc(cap, sizeof *b->slots);
    b->nslots = cap;
    if (!b->keys || !b->slots) {
        ev_build_abort(ev, b);
        return ev_nomem(ev);
    }
    return 0;
}

void ev_build_abort(struct ev *ev, struct ev_build *b)
{
    ev_val_free(ev, b->val);
    vg_free(b->keys);
    vg_free(b->slots);
    memset(b, 0, sizeof *b);
}

long ev_build_series(struct ev *ev, struct ev_build *b, const struct label *ls, size_t nls,
                     bool drop_name)
{
    uint64_t h = ev_labels_hash(ls, nls);
    size_t s = slot_of(h, b->nslots);
    while (b->slots[s]) {
        if (b->keys[s] == h)
            return (long)b->slots[s] - 1;
        s = (s + 1) & (b->nslots - 1);
    }
    if ((b->val->n + 1) * 2 > b->nslots) {
        size_t nc = b->nslots * 2;
        uint64_t *k = vg_malloc(nc * sizeof *k);
        uint32_t *sl = vg_calloc(nc, sizeof *sl);
        if (!k || !sl) {
            vg_free(k);
            vg_free(sl);
            return ev_nomem(ev);
        }
        for (size_t i = 0; i < b->nslots; i++) {
            if (!b->slots[i])
                continue;
            size_t t = slot_of(b->keys[i], nc);
            while (sl[t])
                t = (t + 1) & (nc - 1);
            k[t] = b->keys[i];
            sl[t] = b->slots[i];
        }
        vg_free(b->keys);
        vg_free(b->slots);
        b->keys = k;
        b->slots = sl;
        b->nslots = nc;
        s = slot_of(h, nc);
        while (b->slots[s])
            s = (s + 1) & (nc - 1);
    }
    long i = ev_val_add(ev, b->val, ls, nls, drop_name);
    if (i < 0)
        return i;
    b->keys[s] = h;
    b->slots[s] = (uint32_t)i + 1;
    return i;
}

int ev_dup_labelset(struct ev *ev)
{
    return ev_fail(ev, VG_ECONFLICT, "vector cannot contain metrics with the same labelset");
}

int ev_build_set(struct ev *ev, struct ev_build *b, size_t i, size_t k, double v)
{
    uint8_t *ok = ev_okrow(b->val, i) + k;
    if (*ok)
        return ev_dup_labelset(ev);
    *ok = 1;
    ev_row(b->val, i)[k] = v;
    return 0;
}

int ev_build_put(struct ev *ev, struct ev_build *b, long *o, const struct ev_series *s, size_t k,
                 double v)
{
    if (*o < 0 && (*o = ev_build_series(ev, b, s->ls, s->nls, s->drop_name)) < 0)
        return (int)*o;
    return ev_build_set(ev, b, (size_t)*o, k, v);
}

int ev_build_copy(struct ev *ev, struct ev_build *b, const struct ev_series *s,
                  const struct ev_val *in, size_t i)
{
    long o = -1;
    const double *row = ev_row(in, i);
    const uint8_t *ok = ev_okrow(in, i);
    for (size_t k = 0; k < in->nsteps; k++)
        if (ok[k] && ev_build_put(ev, b, &o, s, k, row[k]))
            return ev->err->code ? ev->err->code : VG_EINTERNAL;
    return 0;
}

struct ev_val *ev_build_done(struct ev *ev, struct ev_build *b)
{
    struct ev_val *v = b->val;
    vg_free(b->keys);
    vg_free(b->slots);
    memset(b, 0, sizeof *b);
    ev_val_compact(v);
    if (ev_account(ev, v)) {
        ev_val_free(ev, v);
        return NULL;
    }
    return v;
}

/* ---- selectors ---- */

const struct promql_node *ev_unparen(const struct promql_node *n)
{
    while (n && n->kind == PN_PAREN)
        n = n->paren.expr;
    return n;
}

int64_t ev_at(const struct ev *ev, enum promql_at at, int64_t at_ms, int64_t offset, int64_t t)
{
    int64_t base = t;
    switch (at) {
    case AT_NONE: break;
    case AT_TIMESTAMP: base = at_ms; break;
    case AT_START: base = ev->qstart; break;
    case AT_END: base = ev->qend; break;
    }
    return base - offset;
}

static bool is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b == TSDB_STALE_NAN_BITS;
}

static int load(struct ev *ev, const struct promql_node *vs, int64_t mint, int64_t maxt,
                struct querier_set **out)
{
    *out = NULL;
    if (ev->nsets == ev->capsets) {
        size_t nc = ev->capsets ? ev->capsets * 2 : 8;
        struct querier_set **ns = vg_realloc(ev->sets, nc * sizeof *ns);
        if (!ns)
            return ev_nomem(ev);
        ev->sets = ns;
        ev->capsets = nc;
    }
    int rc = ev->q->select(ev->q->ctx, vs->sel.ms, vs->sel.nms, mint, maxt, ev->o->max_samples,
                           &ev->loaded, out, ev->err);
    if (rc) {
        if (rc == VG_ETOOLARGE)
            ev_fail(ev, VG_ETOOLARGE, too_many);
        return rc;
    }
    ev->sets[ev->nsets++] = *out;
    return check_now(ev); /* reading storage is the slow part: check right after */
}

static struct ev_val *eval_vsel(struct ev *ev, const struct promql_node *n,
                                const struct ev_steps *st, bool want_ts)
{
    const int64_t lb = ev->o->lookback_ms;
    int64_t te0 = ev_at(ev, n->sel.at, n->sel.at_ms, n->sel.offset_ms, st->start);
    int64_t te1 = ev_at(ev, n->sel.at, n->sel.at_ms, n->sel.offset_ms, ev_t(st, st->n - 1));
    struct querier_set *set = NULL;
    if (load(ev, n, te0 - lb + 1, te1, &set) || !set)
        return NULL;
    struct ev_val *v = ev_val_new(ev, PT_VECTOR, st->n);
    if (!v)
        return NULL;
    for (size_t i = 0; i < set->n; i++) {
        const struct querier_series *qs = &set->v[i];
        if (!qs->nsamples)
            continue;
        long r = ev_val_add(ev, v, qs->labels, qs->nlabels, false);
        if (r < 0 || ev_check(ev))
            goto fail;
        double *row = ev_row(v, (size_t)r);
        uint8_t *ok = ev_okrow(v, (size_t)r);
        const struct tsdb_sample *s = qs->samples;
        size_t ns = qs->nsamples, j = 0;
        bool any = false;
        for (size_t k = 0; k < st->n; k++) {
            int64_t te = ev_at(ev, n->sel.at, n->sel.at_ms, n->sel.offset_ms, ev_t(st, k));
            while (j < ns && s[j].t <= te)
                j++;
            if (!j)
                continue;
            const struct tsdb_sample *p = &s[j - 1];
            if (p->t <= te - lb || is_stale(p->v))
                continue;
            row[k] = want_ts ? (double)p->t / 1000.0 : p->v;
            ok[k] = 1;
            any = true;
        }
        if (!any)
            v->n--; /* nothing in range: drop the row just added */
    }
    if (ev_account(ev, v))
        goto fail;
    return v;
fail:
    ev_val_free(ev, v);
    return NULL;
}

/* The values of timestamp(selector): the time of the sample each step picked. */
struct ev_val *ev_eval_timestamps(struct ev *ev, const struct promql_node *vs,
                                  const struct ev_steps *st);
struct ev_val *ev_eval_timestamps(struct ev *ev, const struct promql_node *vs,
                                  const struct ev_steps *st)
{
    return eval_vsel(ev, vs, st, true);
}

static struct ev_range *range_new(struct ev *ev, size_t n)
{
    struct ev_range *r = vg_calloc(1, sizeof *r);
    if (r && n)
        r->v = vg_calloc(n, sizeof *r->v);
    if (!r || (n && !r->v)) {
        if (r)
            vg_free(r);
        ev_nomem(ev);
        return NULL;
    }
    return r;
}

static struct ev_range *range_msel(struct ev *ev, const struct promql_node *n,
                                   const struct ev_steps *st)
{
    const struct promql_node *vs = n->msel.vs;
    int64_t range = n->msel.range_ms;
    int64_t te0 = ev_at(ev, vs->sel.at, vs->sel.at_ms, vs->sel.offset_ms, st->start);
    int64_t te1 = ev_at(ev, vs->sel.at, vs->sel.at_ms, vs->sel.offset_ms, ev_t(st, st->n - 1));
    struct querier_set *set;
    if (load(ev, vs, te0 - range + 1, te1, &set))
        return NULL;
    size_t stale = 0;
    for (size_t i = 0; i < set->n; i++)
        for (size_t j = 0; j < set->v[i].nsamples; j++)
            stale += is_stale(set->v[i].samples[j].v);
    struct ev_range *r = range_new(ev, set->n);
    if (!r)
        return NULL;
    r->range = range;
    r->offset = vs->sel.offset_ms;
    r->at = vs->sel.at;
    r->at_ms = vs->sel.at_ms;
    struct tsdb_sample *mem = NULL;
    if (stale) {
        size_t total = 0;
        for (size_t i = 0; i < set->n; i++)
            total += set->v[i].nsamples;
        mem = r->mem = vg_malloc((total - stale + 1) * sizeof *mem);
        if (!mem) {
            ev_range_free(ev, r);
            ev_nomem(ev);
            return NULL;
        }
    }
    for (size_t i = 0; i < set->n; i++) {
        const struct querier_series *qs = &set->v[i];
        struct ev_rser *rs = &r->v[r->n];
        rs->ls = qs->labels;
        rs->nls = qs->nlabels;
        if (!stale) {
            rs->s = qs->samples;
            rs->n = qs->nsamples;
        } else {
            rs->s = mem;
            for (size_t j = 0; j < qs->nsamples; j++)
                if (!is_stale(qs->samples[j].v))
                    *mem++ = qs->samples[j];
            rs->n = (size_t)(mem - rs->s);
        }
        if (rs->n)
            r->n++;
    }
    return r;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

static struct ev_range *range_subq(struct ev *ev, const struct promql_node *n,
                                   const struct ev_steps *st)
{
    int64_t step = n->subq.step_ms > 0 ? n->subq.step_ms : ev->o->default_subquery_step_ms;
    if (step <= 0)
        step = 60000;
    int64_t range = n->subq.range_ms, off = n->subq.offset_ms;
    int64_t te0 = ev_at(ev, n->subq.at, n->subq.at_ms, off, st->start);
    int64_t te1 = ev_at(ev, n->subq.at, n->subq.at_ms, off, ev_t(st, st->n - 1));
    /* Prometheus: the first multiple of step strictly after te0 - range. */
    int64_t first = (floor_div(te0 - range, step) + 1) * step;
    struct ev_steps in = { first, step, 0 };
    if (first <= te1)
        in.n = (size_t)((te1 - first) / step) + 1;
    if (ev->o->max_samples && in.n > ev->o->max_samples) {
        ev_fail(ev, VG_ETOOLARGE, too_many);
        return NULL;
    }
    struct ev_val *iv = NULL;
    if (in.n) {
        iv = ev_eval(ev, n->subq.expr, &in);
        if (!iv)
            return NULL;
    }
    size_t ns = iv ? iv->n : 0;
    struct ev_range *r = range_new(ev, ns);
    if (!r) {
        ev_val_free(ev, iv);
        return NULL;
    }
    r->range = range;
    r->offset = off;
    r->at = n->subq.at;
    r->at_ms = n->subq.at_ms;
    if (iv && iv->type == PT_VECTOR) {
        size_t total = 0;
        for (size_t c = 0; c < iv->n * iv->nsteps; c++)
            total += iv->ok[c];
        struct tsdb_sample *mem = r->mem = vg_malloc((total + 1) * sizeof *mem);
        if (!mem) {
            ev_val_free(ev, iv);
            ev_range_free(ev, r);
            ev_nomem(ev);
            return NULL;
        }
        for (size_t i = 0; i < iv->n; i++) {
            struct ev_rser *rs = &r->v[r->n];
            rs->ls = iv->s[i].ls;
            rs->nls = iv->s[i].nls;
            rs->drop_name = iv->s[i].drop_name;
            rs->s = mem;
            const double *row = ev_row(iv, i);
            const uint8_t *ok = ev_okrow(iv, i);
            for (size_t k = 0; k < in.n; k++)
                if (ok[k])
                    *mem++ = (struct tsdb_sample){ ev_t(&in, k), row[k] };
            rs->n = (size_t)(mem - rs->s);
            if (rs->n)
                r->n++;
        }
        r->counted = total;
        ev->live += total;
    }
    ev_val_free(ev, iv);
    if (ev->o->max_samples && ev->live > ev->o->max_samples) {
        ev_range_free(ev, r);
        ev_fail(ev, VG_ETOOLARGE, too_many);
        return NULL;
    }
    return r;
}

struct ev_range *ev_eval_range(struct ev *ev, const struct promql_node *n,
                               const struct ev_steps *st)
{
    n = ev_unparen(n);
    if (n->kind == PN_MATRIX_SELECTOR)
        return range_msel(ev, n, st);
    if (n->kind == PN_SUBQUERY)
        return range_subq(ev, n, st);
    ev_fail(ev, VG_EINTERNAL, "expected a range vector, got %s",
            promql_type_name(promql_node_type(n)));
    return NULL;
}

/* ---- dispatch ---- */

static struct ev_val *eval_unary(struct ev *ev, const struct promql_node *n,
                                 const struct ev_steps *st)
{
    struct ev_val *c = ev_eval(ev, n->unary.expr, st);
    if (!c || !n->unary.negate)
        return c;
    if (c->type == PT_SCALAR) {
        for (size_t k = 0; k < st->n; k++)
            c->v[k] = -c->v[k];
        return c;
    }
    struct ev_build b;
    if (ev_build_init(ev, &b, st->n, c->n)) {
        ev_val_free(ev, c);
        return NULL;
    }
    for (size_t i = 0; i < c->n; i++) {
        struct ev_series s;
        double *row = ev_row(c, i);
        for (size_t k = 0; k < st->n; k++)
            row[k] = -row[k];
        if (ev_ser_dropname(ev, &c->s[i], &s) || ev_build_copy(ev, &b, &s, c, i))
            goto fail;
    }
    ev_val_free(ev, c);
    return ev_build_done(ev, &b);
fail:
    ev_val_free(ev, c);
    ev_build_abort(ev, &b);
    return NULL;
}

/* Prometheus's step invariance (PreprocessExpr): a subtree whose selectors and
 * subqueries are all pinned with @ and that calls no function depending on the
 * evaluation time gives the same answer at every step, so a range query evaluates it
 * once and repeats the result. */
static bool time_dependent(enum promql_fn_id id)
{
    switch (id) {
    case FN_DAYS_IN_MONTH: case FN_DAY_OF_MONTH: case FN_DAY_OF_WEEK: case FN_DAY_OF_YEAR:
    case FN_HOUR: case FN_MINUTE: case FN_MONTH: case FN_YEAR: case FN_PREDICT_LINEAR:
    case FN_TIME: case FN_TIMESTAMP:
        return true;
    default:
        return false;
    }
}

static bool invariant(const struct promql_node *n)
{
    switch (n->kind) {
    case PN_NUMBER:
    case PN_STRING:
        return true;
    case PN_VECTOR_SELECTOR:
        return n->sel.at != AT_NONE;
    case PN_MATRIX_SELECTOR:
        return n->msel.vs->sel.at != AT_NONE;
    case PN_SUBQUERY:
        return n->subq.at != AT_NONE;
    case PN_PAREN:
        return invariant(n->paren.expr);
    case PN_UNARY:
        return invariant(n->unary.expr);
    case PN_AGGREGATE:
        return invariant(n->agg.expr) && (!n->agg.param || invariant(n->agg.param));
    case PN_BINARY:
        return invariant(n->bin.lhs) && invariant(n->bin.rhs);
    case PN_CALL:
        if (time_dependent(n->call.fn->id))
            return false;
        for (size_t i = 0; i < n->call.nargs; i++)
            if (!invariant(n->call.args[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* v evaluated at one step, repeated over ns steps. Consumes v. */
static struct ev_val *broadcast(struct ev *ev, struct ev_val *v, size_t ns)
{
    if (!v || v->type == PT_STRING || v->type == PT_MATRIX)
        return v;
    struct ev_val *o = v->type == PT_SCALAR ? ev_scalar_new(ev, ns, v->v[0])
                                            : ev_val_new(ev, PT_VECTOR, ns);
    if (!o || v->type == PT_SCALAR) {
        ev_val_free(ev, v);
        return o;
    }
    for (size_t i = 0; i < v->n; i++) {
        if (ev_val_add(ev, o, v->s[i].ls, v->s[i].nls, v->s[i].drop_name) < 0) {
            ev_val_free(ev, v);
            ev_val_free(ev, o);
            return NULL;
        }
        double x = ev_row(v, i)[0];
        uint8_t ok = ev_okrow(v, i)[0];
        for (size_t k = 0; k < ns; k++) {
            ev_row(o, i)[k] = x;
            ev_okrow(o, i)[k] = ok;
        }
    }
    ev_val_free(ev, v);
    if (ev_account(ev, o)) {
        ev_val_free(ev, o);
        return NULL;
    }
    return o;
}

static struct ev_val *eval_node(struct ev *ev, const struct promql_node *n,
                                const struct ev_steps *st);

struct ev_val *ev_eval(struct ev *ev, const struct promql_node *n, const struct ev_steps *st)
{
    if (st->n > 1 && n->kind != PN_NUMBER && n->kind != PN_STRING && n->kind != PN_PAREN &&
        invariant(n)) {
        struct ev_steps one = { st->start, st->step, 1 };
        return broadcast(ev, eval_node(ev, n, &one), st->n);
    }
    return eval_node(ev, n, st);
}

static struct ev_val *eval_node(struct ev *ev, const struct promql_node *n,
                                const struct ev_steps *st)
{
    if (ev_check(ev))
        return NULL;
    switch (n->kind) {
    case PN_NUMBER:
        return ev_scalar_new(ev, st->n, n->number);
    case PN_STRING: {
        struct ev_val *v = ev_val_new(ev, PT_STRING, st->n);
        if (v) {
            v->str = n->string.p;
            v->slen = n->string.len;
        }
        return v;
    }
    case PN_PAREN:
        return ev_eval(ev, n->paren.expr, st);
    case PN_UNARY:
        return eval_unary(ev, n, st);
    case PN_VECTOR_SELECTOR:
        return eval_vsel(ev, n, st, false);
    case PN_MATRIX_SELECTOR:
    case PN_SUBQUERY: {
        struct ev_range *r = ev_eval_range(ev, n, st);
        if (!r)
            return NULL;
        struct ev_val *v = ev_val_new(ev, PT_MATRIX, st->n);
        if (!v) {
            ev_range_free(ev, r);
            return NULL;
        }
        v->rng = r;
        return v;
    }
    case PN_CALL:
        return ev_call(ev, n, st);
    case PN_AGGREGATE:
        return ev_aggregate(ev, n, st);
    case PN_BINARY:
        return ev_binary(ev, n, st);
    case PN_STEP_INVARIANT:
        break;
    }
    ev_fail(ev, VG_EINTERNAL, "unexpected node kind %d", (int)n->kind);
    return NULL;
}
