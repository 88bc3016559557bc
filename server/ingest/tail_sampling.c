/* tail_sampling: see tail_sampling.h.
 *
 * Buffer: one entry per undecided trace, in a hash table by trace id and on a list in
 * order of first arrival, which is also deadline order (every trace waits the same
 * decision_wait), so expiry and early decisions both take from the list's old end. An
 * entry owns the spans it holds as copies in span.h's encoding, each prefixed by its
 * length as a uvarint: the receivers' spans borrow request memory that is gone when the
 * request ends.
 *
 * A decision is made under the lock: the entry leaves the table, its spans are decoded
 * into a scratch arena, the policies run, and the decision goes into the decided-id LRU
 * before the lock is dropped, so a span of the trace arriving afterwards already finds
 * the decision. Kept entries are then decoded again and handed to the sink without the
 * lock, up to WRITE_BATCH spans per call (one durable store write for many traces).
 * Decisions are made in chunks of DECIDE_CHUNK traces per lock hold so a long flush
 * does not stall the receivers. */
#include "tail_sampling.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/base/vg_ticker.h"
#include "../config.h"
#include "sampling.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define MAX_DEPTH 8           /* and/or nesting */
#define SVC_SLOTS 4096        /* per service_rate_limiting policy; power of two */
#define DECIDE_CHUNK 256      /* traces decided per lock hold */
#define WRITE_BATCH 4096      /* spans per sink call */
#define DEF_SALT 0x5eed5a3b1e5a17ULL /* probabilistic hash seed without hash_salt */

/* ---- policies ---- */

enum pol_type {
    P_ALWAYS, P_STATUS, P_LATENCY, P_STRING, P_NUMERIC, P_PROB, P_RATE, P_SVC_RATE, P_AND,
    P_OR,
};

static const char *const no_keys[] = { NULL };
static const char *const status_keys[] = { "status_codes", NULL };
static const char *const latency_keys[] = { "threshold_ms", "upper_threshold_ms", NULL };
static const char *const string_keys[] = { "key", "values", "enabled_regex_matching", NULL };
static const char *const numeric_keys[] = { "key", "min_value", "max_value", NULL };
static const char *const prob_keys[] = { "sampling_percentage", "hash_salt", NULL };
static const char *const rate_keys[] = { "spans_per_second", NULL };
static const char *const svc_keys[] = { "traces_per_second", NULL };
static const char *const and_keys[] = { "and_sub_policy", NULL };
static const char *const or_keys[] = { "or_sub_policy", NULL };

static const struct {
    const char *name;
    enum pol_type type;
    const char *const *keys; /* allowed in the options map named like the type */
} TYPES[] = {
    { "always_sample", P_ALWAYS, no_keys },
    { "status_code", P_STATUS, status_keys },
    { "latency", P_LATENCY, latency_keys },
    { "string_attribute", P_STRING, string_keys },
    { "numeric_attribute", P_NUMERIC, numeric_keys },
    { "probabilistic", P_PROB, prob_keys },
    { "rate_limiting", P_RATE, rate_keys },
    { "service_rate_limiting", P_SVC_RATE, svc_keys },
    { "and", P_AND, and_keys },
    { "or", P_OR, or_keys },
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])
#define VALID_TYPES                                                                        \
    "always_sample, status_code, latency, string_attribute, numeric_attribute, "           \
    "probabilistic, rate_limiting, service_rate_limiting, and, or"

struct svc_slot {
    char *name; /* NULL = free */
    size_t len;
    double tokens;
    int64_t last_ns;
};

struct policy {
    char *name;
    enum pol_type type;
    unsigned status_mask;            /* 1 << enum span_status */
    int64_t lat_min_ns, lat_max_ns;  /* max 0 = no upper bound */
    char *key;
    char **values;
    regex_t *re;                     /* nvalues compiled patterns when regex */
    size_t nvalues, nre;
    int64_t num_min, num_max;
    uint64_t prob_limit, salt;       /* keep when (hash >> 11) < prob_limit */
    int64_t limit;                   /* spans or traces per second */
    int64_t win_s, win_count;        /* rate_limiting: the current second and its spans */
    struct svc_slot *svc;
    size_t nsvc;
    struct policy *subs;
    size_t nsubs;
};

static void policy_clear(struct policy *p)
{
    vg_free(p->name);
    vg_free(p->key);
    for (size_t i = 0; i < p->nvalues; i++)
        vg_free(p->values[i]);
    vg_free(p->values);
    for (size_t i = 0; i < p->nre; i++)
        regfree(&p->re[i]);
    vg_free(p->re);
    if (p->svc)
        for (size_t i = 0; i < SVC_SLOTS; i++)
            vg_free(p->svc[i].name);
    vg_free(p->svc);
    for (size_t i = 0; i < p->nsubs; i++)
        policy_clear(&p->subs[i]);
    vg_free(p->subs);
    memset(p, 0, sizeof *p);
}

static int nomem(struct vg_err *err)
{
    return vg_err_set(err, VG_ENOMEM, "out of memory reading tail_sampling");
}

static int parse_policy(const struct config_node *n, const char *where, int depth,
                        struct policy *p, struct vg_err *err);

/* A non-empty list of policies (policies, and_sub_policy, or_sub_policy). */
static int parse_list(const struct config_node *seq, const struct config_node *owner,
                      const char *where, int depth, struct policy **out, size_t *nout,
                      struct vg_err *err)
{
    if (!seq)
        return config_node_err(err, owner, "%s: missing (a list of policies)", where);
    if (seq->type != CONFIG_NODE_SEQ || seq->n == 0)
        return config_node_err(err, seq, "%s: expected a non-empty list of policies", where);
    if (depth > MAX_DEPTH)
        return config_node_err(err, seq, "%s: policies nest deeper than %d levels", where,
                               MAX_DEPTH);
    struct policy *ps = vg_calloc(seq->n, sizeof *ps);
    if (!ps)
        return nomem(err);
    *out = ps;
    for (size_t i = 0; i < seq->n; i++) {
        char w[256];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        int rc = parse_policy(seq->items[i], w, depth, &ps[i], err);
        *nout = i + 1; /* so the caller frees what was parsed */
        if (rc < 0)
            return rc;
        if (depth == 0 && !strcmp(ps[i].name, "none")) /* the label of a drop */
            return config_node_err(err, seq->items[i], "%s: the name \"none\" is reserved", w);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ps[j].name, ps[i].name))
                return config_node_err(err, seq->items[i], "%s: name \"%s\" is used twice",
                                       w, ps[i].name);
    }
    return 0;
}

/* A required option. */
static const struct config_node *need(const struct config_node *opts, const char *where,
                                      const char *key, struct vg_err *err)
{
    const struct config_node *v = config_node_get(opts, key);
    if (!v)
        config_node_err(err, opts, "%s.%s: missing", where, key);
    return v;
}

/* A number from a scalar (strtod): probabilistic's percentage. */
static int parse_number(const struct config_node *opts, const char *where, const char *key,
                        double min, double max, double *out, struct vg_err *err)
{
    const char *s = NULL;
    int rc = config_node_str(opts, where, key, &s, err);
    if (rc < 0 || !s)
        return rc;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || *end || errno || !(d >= min && d <= max))
        return config_node_err(err, config_node_get(opts, key),
                               "%s.%s: expected a number from %g to %g, got \"%s\"", where, key,
                               min, max, s);
    *out = d;
    return 0;
}

static int parse_status(const struct config_node *opts, const char *where, struct policy *p,
                        struct vg_err *err)
{
    const char **codes = NULL;
    size_t n = 0;
    if (!need(opts, where, "status_codes", err))
        return VG_EINVAL;
    int rc = config_node_strlist(opts, where, "status_codes", &codes, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!strcmp(codes[i], "ERROR"))
            p->status_mask |= 1u << SPAN_STATUS_ERROR;
        else if (!strcmp(codes[i], "OK"))
            p->status_mask |= 1u << SPAN_STATUS_OK;
        else if (!strcmp(codes[i], "UNSET"))
            p->status_mask |= 1u << SPAN_STATUS_UNSET;
        else
            rc = config_node_err(err, config_node_get(opts, "status_codes"),
                                 "%s.status_codes: unknown status \"%s\" (valid: ERROR, OK, "
                                 "UNSET)", where, codes[i]);
    }
    vg_free(codes);
    if (rc == 0 && !p->status_mask)
        rc = config_node_err(err, opts, "%s.status_codes: empty", where);
    return rc;
}

static int parse_string(const struct config_node *opts, const char *where, struct policy *p,
                        struct vg_err *err)
{
    const char *key = NULL;
    const char **vals = NULL;
    size_t n = 0;
    bool regex = false;
    if (!need(opts, where, "key", err) || !need(opts, where, "values", err))
        return VG_EINVAL;
    int rc = config_node_str(opts, where, "key", &key, err);
    if (rc == 0)
        rc = config_node_bool(opts, where, "enabled_regex_matching", &regex, err);
    if (rc == 0)
        rc = config_node_strlist(opts, where, "values", &vals, &n, err);
    if (rc < 0)
        return rc;
    const struct config_node *vn = config_node_get(opts, "values");
    if (!*key)
        rc = config_node_err(err, opts, "%s.key: empty", where);
    else if (n == 0)
        rc = config_node_err(err, vn, "%s.values: empty", where);
    else if (!(p->key = vg_strdup(key)) || !(p->values = vg_calloc(n, sizeof *p->values)) ||
             (regex && !(p->re = vg_calloc(n, sizeof *p->re))))
        rc = nomem(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!(p->values[i] = vg_strdup(vals[i]))) {
            rc = nomem(err);
            break;
        }
        p->nvalues = i + 1;
        if (!regex)
            continue;
        int rerr = regcomp(&p->re[i], vals[i], REG_EXTENDED | REG_NOSUB);
        if (rerr != 0) {
            char m[128];
            regerror(rerr, &p->re[i], m, sizeof m);
            rc = config_node_err(err, vn, "%s.values[%zu]: invalid regular expression \"%s\": %s",
                                 where, i, vals[i], m);
            break;
        }
        p->nre = i + 1;
    }
    vg_free(vals);
    return rc;
}

static int parse_numeric(const struct config_node *opts, const char *where, struct policy *p,
                         struct vg_err *err)
{
    const char *key = NULL;
    p->num_min = INT64_MIN;
    p->num_max = INT64_MAX;
    if (!need(opts, where, "key", err))
        return VG_EINVAL;
    int rc = config_node_str(opts, where, "key", &key, err);
    if (rc == 0)
        rc = config_node_int(opts, where, "min_value", INT64_MIN, INT64_MAX, &p->num_min, err);
    if (rc == 0)
        rc = config_node_int(opts, where, "max_value", INT64_MIN, INT64_MAX, &p->num_max, err);
    if (rc < 0)
        return rc;
    if (!config_node_get(opts, "min_value") && !config_node_get(opts, "max_value"))
        return config_node_err(err, opts, "%s: give min_value, max_value or both", where);
    if (p->num_min > p->num_max)
        return config_node_err(err, opts, "%s: min_value is above max_value", where);
    if (!*key)
        return config_node_err(err, opts, "%s.key: empty", where);
    return (p->key = vg_strdup(key)) ? 0 : nomem(err);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* The options of p's type, already checked to be a map with known keys (or NULL). */
static int parse_options(const struct config_node *opts, const char *where, int depth,
                         struct policy *p, struct vg_err *err)
{
    char w[288];
    switch (p->type) {
    case P_ALWAYS:
        return 0;
    case P_STATUS:
        return parse_status(opts, where, p, err);
    case P_LATENCY: {
        int64_t lo = 0, hi = 0;
        if (!need(opts, where, "threshold_ms", err))
            return VG_EINVAL;
        int rc = config_node_int(opts, where, "threshold_ms", 0, INT64_MAX / 1000000, &lo, err);
        if (rc == 0)
            rc = config_node_int(opts, where, "upper_threshold_ms", 0, INT64_MAX / 1000000,
                                 &hi, err);
        if (rc == 0 && hi && hi < lo)
            rc = config_node_err(err, opts, "%s: upper_threshold_ms is below threshold_ms",
                                 where);
        p->lat_min_ns = lo * 1000000;
        p->lat_max_ns = hi * 1000000;
        return rc;
    }
    case P_STRING:
        return parse_string(opts, where, p, err);
    case P_NUMERIC:
        return parse_numeric(opts, where, p, err);
    case P_PROB: {
        double pct = -1;
        const char *salt = NULL;
        if (!need(opts, where, "sampling_percentage", err))
            return VG_EINVAL;
        int rc = parse_number(opts, where, "sampling_percentage", 0, 100, &pct, err);
        if (rc == 0)
            rc = config_node_str(opts, where, "hash_salt", &salt, err);
        p->prob_limit = (uint64_t)llround(pct / 100.0 * (double)(1ULL << 53));
        p->salt = salt ? fnv1a(salt) : DEF_SALT;
        return rc;
    }
    case P_RATE:
    case P_SVC_RATE: {
        const char *k = p->type == P_RATE ? "spans_per_second" : "traces_per_second";
        if (!need(opts, where, k, err))
            return VG_EINVAL;
        int rc = config_node_int(opts, where, k, 1, 1000000000, &p->limit, err);
        if (rc == 0 && p->type == P_SVC_RATE &&
            !(p->svc = vg_calloc(SVC_SLOTS, sizeof *p->svc)))
            rc = nomem(err);
        return rc;
    }
    case P_AND:
    case P_OR: {
        const char *k = p->type == P_AND ? "and_sub_policy" : "or_sub_policy";
        snprintf(w, sizeof w, "%s.%s", where, k);
        return parse_list(config_node_get(opts, k), opts, w, depth + 1, &p->subs, &p->nsubs,
                          err);
    }
    }
    return vg_err_set(err, VG_EINTERNAL, "unknown policy type");
}

static int parse_policy(const struct config_node *n, const char *where, int depth,
                        struct policy *p, struct vg_err *err)
{
    if (n->type != CONFIG_NODE_MAP)
        return config_node_err(err, n, "%s: expected a mapping with name and type", where);
    const char *name = NULL, *type = NULL;
    int rc = config_node_str(n, where, "name", &name, err);
    if (rc == 0)
        rc = config_node_str(n, where, "type", &type, err);
    if (rc < 0)
        return rc;
    if (!name || !*name)
        return config_node_err(err, n, "%s.name: missing (every policy needs a name)", where);
    if (!type)
        return config_node_err(err, n, "%s.type: missing (valid types: " VALID_TYPES ")",
                               where);
    size_t t = 0;
    while (t < NTYPES && strcmp(TYPES[t].name, type) != 0)
        t++;
    if (t == NTYPES)
        return config_node_err(err, config_node_get(n, "type"),
                               "%s.type: unknown type \"%s\" (valid types: " VALID_TYPES ")",
                               where, type);
    const char *const allowed[] = { "name", "type", TYPES[t].name, NULL };
    if ((rc = config_node_check_keys(n, where, allowed, err)) < 0)
        return rc;
    if (!(p->name = vg_strdup(name)))
        return nomem(err);
    p->type = TYPES[t].type;
    const struct config_node *opts = config_node_get(n, TYPES[t].name);
    char w[272];
    snprintf(w, sizeof w, "%s.%s", where, TYPES[t].name);
    bool empty = opts && opts->type == CONFIG_NODE_SCALAR && !opts->value[0];
    if (opts && !empty && (rc = config_node_check_keys(opts, w, TYPES[t].keys, err)) < 0)
        return rc; /* also "expected a mapping" */
    if (p->type != P_ALWAYS && (!opts || empty))
        return config_node_err(err, opts ? opts : n, "%s: missing (the options of a %s policy)",
                               w, TYPES[t].name);
    return parse_options(empty ? NULL : opts, w, depth, p, err);
}

/* ---- evaluation ---- */

struct tview {
    const uint8_t *id;
    const struct span *spans;
    size_t n;
    int64_t start, end;
    const struct span *root; /* or the first span */
};

static bool str_matches(const struct policy *p, struct vg_str v)
{
    for (size_t i = 0; i < p->nvalues; i++) {
        if (!p->re) {
            if (vg_str_eq_c(v, p->values[i]))
                return true;
            continue;
        }
        /* regexec needs a NUL-terminated subject; values over 4 KiB are cut */
        char buf[4096];
        size_t len = v.len < sizeof buf - 1 ? v.len : sizeof buf - 1;
        memcpy(buf, v.p, len);
        buf[len] = '\0';
        if (regexec(&p->re[i], buf, 0, NULL, 0) == 0)
            return true;
    }
    return false;
}

static bool attr_matches(const struct policy *p, const struct span_attr *a)
{
    if (!vg_str_eq_c(a->key, p->key))
        return false;
    if (p->type == P_STRING)
        return a->type == SPAN_VAL_STRING && str_matches(p, a->v.s);
    if (a->type == SPAN_VAL_INT)
        return a->v.i >= p->num_min && a->v.i <= p->num_max;
    return a->type == SPAN_VAL_DOUBLE && a->v.d >= (double)p->num_min &&
           a->v.d <= (double)p->num_max;
}

static bool any_attr(const struct policy *p, const struct tview *t)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct span *s = &t->spans[i];
        for (size_t k = 0; k < s->nattrs; k++)
            if (attr_matches(p, &s->attrs[k]))
                return true;
        for (size_t k = 0; k < s->nresource_attrs; k++)
            if (attr_matches(p, &s->resource_attrs[k]))
                return true;
    }
    return false;
}

static bool service_take(struct policy *p, struct vg_str svc, int64_t now_ns)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < svc.len; i++)
        h = (h ^ (unsigned char)svc.p[i]) * 0x100000001b3ULL;
    size_t i = h & (SVC_SLOTS - 1);
    while (p->svc[i].name && !(p->svc[i].len == svc.len && !memcmp(p->svc[i].name, svc.p, svc.len)))
        i = (i + 1) & (SVC_SLOTS - 1);
    struct svc_slot *s = &p->svc[i];
    if (!s->name) {
        if (p->nsvc >= SVC_SLOTS * 3 / 4) {
            /* full: start over (every service gets a full bucket again) */
            for (size_t k = 0; k < SVC_SLOTS; k++) {
                vg_free(p->svc[k].name);
                p->svc[k].name = NULL;
            }
            p->nsvc = 0;
            return service_take(p, svc, now_ns);
        }
        if (!(s->name = vg_malloc(svc.len + 1)))
            return true; /* out of memory: keep rather than lose data silently */
        memcpy(s->name, svc.p, svc.len);
        s->len = svc.len;
        s->tokens = (double)p->limit;
        s->last_ns = now_ns;
        p->nsvc++;
    }
    if (now_ns > s->last_ns) {
        s->tokens += (double)(now_ns - s->last_ns) * (double)p->limit / 1e9;
        if (s->tokens > (double)p->limit)
            s->tokens = (double)p->limit;
        s->last_ns = now_ns;
    }
    if (s->tokens < 1)
        return false;
    s->tokens -= 1;
    return true;
}

static bool eval(struct policy *p, const struct tview *t, int64_t now_ns)
{
    switch (p->type) {
    case P_ALWAYS:
        return true;
    case P_STATUS:
        for (size_t i = 0; i < t->n; i++)
            if (p->status_mask & (1u << t->spans[i].status))
                return true;
        return false;
    case P_LATENCY: {
        int64_t d = t->end - t->start;
        return d >= p->lat_min_ns && (!p->lat_max_ns || d <= p->lat_max_ns);
    }
    case P_STRING:
    case P_NUMERIC:
        return any_attr(p, t);
    case P_PROB:
        return (sampling_id_hash(t->id, p->salt) >> 11) < p->prob_limit;
    case P_RATE: {
        int64_t sec = now_ns / 1000000000;
        if (sec != p->win_s) {
            p->win_s = sec;
            p->win_count = 0;
        }
        if (p->win_count + (int64_t)t->n > p->limit)
            return false;
        p->win_count += (int64_t)t->n;
        return true;
    }
    case P_SVC_RATE:
        return service_take(p, t->root->service, now_ns);
    case P_AND:
        for (size_t i = 0; i < p->nsubs; i++)
            if (!eval(&p->subs[i], t, now_ns))
                return false;
        return true;
    case P_OR:
        for (size_t i = 0; i < p->nsubs; i++)
            if (eval(&p->subs[i], t, now_ns))
                return true;
        return false;
    }
    return false;
}

/* ---- the buffer ---- */

struct tentry {
    uint8_t id[SPAN_TRACE_ID_LEN];
    struct tentry *hnext;        /* hash chain */
    struct tentry *older, *newer; /* arrival list */
    int64_t first_ns;
    size_t nspans;
    struct vg_buf buf;           /* per span: uvarint length, span.h encoding */
};

struct tail_sampling {
    pthread_mutex_t mu; /* guards everything below but the ticker */
    struct policy *policies;
    size_t npolicies;
    int64_t wait_ns;
    size_t max_traces, max_bytes;
    struct tentry **buckets;
    size_t mask;
    uint64_t seed;
    struct tentry *oldest, *newest;
    size_t ntraces, bytes;
    struct sampling_cache *decided;
    struct vg_arena *eval_arena;    /* decoded spans of the trace being decided */
    struct span *eval_spans;
    size_t eval_cap;
    struct vg_buf scratch;          /* one span's encoding while adding */
    uint64_t early, kept, dropped;
    struct tail_sampling_sink sink;
    struct metric_family *f_decisions, *f_dropped, *f_early, *f_late, *f_traces, *f_bytes;
    struct vg_ticker ticker; /* "tail-sampling"; zeroed until tail_sampling_start */
};

/* Options of the block besides the policies. */
struct block_opts {
    int64_t wait_ms, num_traces, max_bytes, cache_size;
};

static const char *const block_keys[] = {
    "decision_wait", "num_traces", "max_bytes", "decision_cache_size", "policies", NULL,
};

static int parse_block(const struct config_node *b, struct block_opts *o, struct policy **ps,
                       size_t *nps, struct vg_err *err)
{
    *ps = NULL;
    *nps = 0;
    *o = (struct block_opts){ .wait_ms = 10000, .num_traces = 50000,
                              .max_bytes = 64LL << 20, .cache_size = 100000 };
    const char *mb = NULL;
    int rc = config_node_check_keys(b, "tail_sampling", block_keys, err);
    if (rc == 0)
        rc = config_node_duration(b, "tail_sampling", "decision_wait", 1, &o->wait_ms, err);
    if (rc == 0)
        rc = config_node_int(b, "tail_sampling", "num_traces", 1, 10000000, &o->num_traces, err);
    if (rc == 0)
        rc = config_node_int(b, "tail_sampling", "decision_cache_size", 1, 10000000,
                             &o->cache_size, err);
    if (rc == 0)
        rc = config_node_str(b, "tail_sampling", "max_bytes", &mb, err);
    if (rc == 0 && mb) {
        struct vg_err serr;
        if (config_parse_size(mb, &o->max_bytes, &serr) < 0)
            rc = config_node_err(err, config_node_get(b, "max_bytes"),
                                 "tail_sampling.max_bytes: %s", serr.msg);
        else if (o->max_bytes < 1024 || o->max_bytes > (1LL << 40))
            rc = config_node_err(err, config_node_get(b, "max_bytes"),
                                 "tail_sampling.max_bytes: %s is out of range [1KiB, 1TiB]", mb);
    }
    if (rc == 0)
        rc = parse_list(config_node_get(b, "policies"), b, "tail_sampling.policies", 0, ps,
                        nps, err);
    return rc;
}

static void free_policies(struct policy *ps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        policy_clear(&ps[i]);
    vg_free(ps);
}

int tail_sampling_check(const struct config_node *block, struct vg_err *err)
{
    struct block_opts o;
    struct policy *ps;
    size_t n;
    int rc = parse_block(block, &o, &ps, &n, err);
    free_policies(ps, n);
    return rc;
}

static size_t entry_bytes(const struct tentry *e)
{
    return sizeof *e + e->buf.cap;
}

static struct tentry **chain_of(struct tail_sampling *ts, const uint8_t *id)
{
    return &ts->buckets[sampling_id_hash(id, ts->seed) & ts->mask];
}

static struct tentry *find(struct tail_sampling *ts, const uint8_t *id)
{
    struct tentry *e = *chain_of(ts, id);
    while (e && memcmp(e->id, id, SPAN_TRACE_ID_LEN) != 0)
        e = e->hnext;
    return e;
}

/* Takes e out of the table and the arrival list. */
static void detach(struct tail_sampling *ts, struct tentry *e)
{
    struct tentry **p = chain_of(ts, e->id);
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        ts->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        ts->newest = e->older;
    e->hnext = e->older = e->newer = NULL;
    ts->ntraces--;
    ts->bytes -= entry_bytes(e);
}

static void entry_free(struct tentry *e)
{
    if (e) {
        vg_buf_free(&e->buf);
        vg_free(e);
    }
}

/* Decodes e's spans into spans (cap entries) from arena. The count, or -1 when a span
 * does not decode (our own bytes: a bug, logged). */
static ssize_t decode_entry(const struct tentry *e, struct vg_arena *arena, struct span *spans)
{
    struct span_rd r;
    span_rd_init(&r, e->buf.p, e->buf.len);
    size_t k = 0;
    while (r.ok && r.off < r.len && k < e->nspans) {
        uint64_t len = span_rd_uvarint(&r, "length");
        const uint8_t *p = span_rd_bytes(&r, (size_t)len, "span");
        struct vg_err err;
        if (!p || span_decode(p, (size_t)len, arena, &spans[k], &err) < 0) {
            vg_log(VG_LOG_ERROR, "sampling", "a buffered span does not decode; trace dropped",
                   "error", p ? err.msg : "truncated buffer", NULL);
            return -1;
        }
        k++;
    }
    return (ssize_t)k;
}

/* A chain of kept entries waiting to be written without the lock. */
struct kept {
    struct tentry *head, *tail;
};

/* Under ts->mu: decides the detached e at now_ns (early: the buffer was full), records
 * and counts the decision; kept entries join *k, dropped ones are freed. */
static void decide(struct tail_sampling *ts, struct tentry *e, int64_t now_ns, bool early,
                   struct kept *k)
{
    if (e->nspans > ts->eval_cap) {
        struct span *ns = vg_realloc(ts->eval_spans, e->nspans * sizeof *ns);
        if (ns) {
            ts->eval_spans = ns;
            ts->eval_cap = e->nspans;
        }
    }
    vg_arena_reset(ts->eval_arena);
    ssize_t n = -1;
    if (e->nspans <= ts->eval_cap)
        n = decode_entry(e, ts->eval_arena, ts->eval_spans);
    else
        vg_log(VG_LOG_ERROR, "sampling", "out of memory deciding a trace; it is dropped", NULL);
    const char *by = NULL;
    if (n > 0) {
        struct tview t = { .id = e->id, .spans = ts->eval_spans, .n = (size_t)n,
                           .start = INT64_MAX, .end = INT64_MIN, .root = &ts->eval_spans[0] };
        for (size_t i = 0; i < t.n; i++) {
            const struct span *s = &t.spans[i];
            if (s->start_ns < t.start)
                t.start = s->start_ns;
            if (s->end_ns > t.end)
                t.end = s->end_ns;
            if (span_is_root(s))
                t.root = s;
        }
        for (size_t i = 0; i < ts->npolicies && !by; i++)
            if (eval(&ts->policies[i], &t, now_ns))
                by = ts->policies[i].name;
    }
    sampling_cache_put(ts->decided, e->id, by != NULL);
    if (early) {
        ts->early++;
        if (ts->f_early)
            metric_add(ts->f_early, 1);
    }
    if (ts->f_decisions)
        metric_add(ts->f_decisions, 1, "tail", by ? by : "none", by ? "keep" : "drop");
    if (!by) {
        ts->dropped++;
        if (ts->f_dropped)
            metric_add(ts->f_dropped, (double)e->nspans, "tail");
        entry_free(e);
        return;
    }
    ts->kept++;
    if (k->tail)
        k->tail->newer = e;
    else
        k->head = e;
    k->tail = e;
}

/* Under ts->mu. */
static void update_gauges(struct tail_sampling *ts)
{
    if (ts->f_traces) {
        metric_set(ts->f_traces, (double)ts->ntraces);
        metric_set(ts->f_bytes, (double)ts->bytes);
    }
}

/* Without the lock: writes the kept entries through the sink and frees them. */
static void write_kept(struct tail_sampling *ts, struct kept *k)
{
    if (!k->head)
        return;
    struct vg_arena *a = vg_arena_new(1 << 16);
    struct span *spans = NULL;
    size_t n = 0, cap = 0;
    struct tentry *batch = k->head; /* the first entry whose spans are not written yet */
    for (struct tentry *e = k->head, *next; e; e = next) {
        next = e->newer;
        if (n + e->nspans > cap) {
            size_t nc = n + e->nspans > WRITE_BATCH ? n + e->nspans : WRITE_BATCH;
            struct span *ns = vg_realloc(spans, nc * sizeof *ns);
            if (ns) {
                spans = ns;
                cap = nc;
            }
        }
        ssize_t got = a && n + e->nspans <= cap ? decode_entry(e, a, spans + n) : -1;
        if (got < 0)
            vg_log(VG_LOG_ERROR, "sampling", "out of memory writing a kept trace; it is lost",
                   NULL);
        else
            n += (size_t)got;
        if (n < WRITE_BATCH && next)
            continue;
        if (n)
            ts->sink.write(ts->sink.ctx, spans, n);
        n = 0;
        if (a)
            vg_arena_reset(a);
        while (batch != next) { /* their bytes backed the spans just written */
            struct tentry *bn = batch->newer;
            entry_free(batch);
            batch = bn;
        }
    }
    vg_free(spans);
    vg_arena_free(a);
    k->head = k->tail = NULL;
}

struct tail_sampling *tail_sampling_new(const struct config_node *block, struct metrics *m,
                                        const struct tail_sampling_sink *sink,
                                        struct vg_err *err)
{
    struct block_opts o;
    struct policy *ps;
    size_t nps;
    if (parse_block(block, &o, &ps, &nps, err) < 0) {
        free_policies(ps, nps);
        return NULL;
    }
    struct tail_sampling *ts = vg_calloc(1, sizeof *ts);
    size_t nb = 16;
    while (nb < (size_t)o.num_traces)
        nb <<= 1;
    if (ts) {
        ts->policies = ps;
        ts->npolicies = nps;
        ts->buckets = vg_calloc(nb, sizeof *ts->buckets);
        ts->decided = sampling_cache_new((size_t)o.cache_size);
        ts->eval_arena = vg_arena_new(1 << 16);
    }
    if (!ts || !ts->buckets || !ts->decided || !ts->eval_arena) {
        if (ts) {
            vg_free(ts->buckets);
            sampling_cache_free(ts->decided);
            vg_arena_free(ts->eval_arena);
            vg_free(ts);
        }
        free_policies(ps, nps);
        vg_err_set(err, VG_ENOMEM, "out of memory creating the tail sampler");
        return NULL;
    }
    ts->mask = nb - 1;
    ts->seed = (uint64_t)sampling_now_ns() ^ (uint64_t)(uintptr_t)ts; /* mixed in use */
    ts->wait_ns = o.wait_ms * 1000000;
    ts->max_traces = (size_t)o.num_traces;
    ts->max_bytes = (size_t)o.max_bytes;
    ts->sink = *sink;
    vg_buf_init(&ts->scratch);
    pthread_mutex_init(&ts->mu, NULL);
    if (m) {
        static const char *const late[] = { "decision" };
        ts->f_decisions = sampling_decisions_family(m);
        ts->f_dropped = sampling_dropped_family(m);
        ts->f_early = metrics_family(m, "vigil_sampling_early_decisions_total",
                                     "Tail decisions made before decision_wait because the "
                                     "buffer was full.", METRIC_COUNTER, NULL, 0, NULL, 0);
        ts->f_late = metrics_family(m, "vigil_sampling_late_spans_total",
                                    "Spans that arrived after their trace's tail decision.",
                                    METRIC_COUNTER, late, 1, NULL, 0);
        ts->f_traces = metrics_family(m, "vigil_sampling_tail_traces",
                                      "Traces waiting for a tail decision.", METRIC_GAUGE, NULL,
                                      0, NULL, 0);
        ts->f_bytes = metrics_family(m, "vigil_sampling_tail_bytes",
                                     "Bytes held by traces waiting for a tail decision.",
                                     METRIC_GAUGE, NULL, 0, NULL, 0);
        if (!ts->f_decisions || !ts->f_dropped || !ts->f_early || !ts->f_late ||
            !ts->f_traces || !ts->f_bytes) {
            tail_sampling_free(ts);
            vg_err_set(err, VG_ENOMEM, "out of memory registering the tail sampler's metrics");
            return NULL;
        }
        update_gauges(ts);
    }
    return ts;
}

/* Appends span s to entry e. 0 or VG_ENOMEM (e unchanged). Under ts->mu. */
static int entry_add(struct tail_sampling *ts, struct tentry *e, const struct span *s)
{
    vg_buf_reset(&ts->scratch);
    if (span_encode(s, &ts->scratch, NULL) < 0)
        return VG_ENOMEM; /* s passed span_validate: only memory can fail */
    size_t before = e->buf.cap;
    if (!vg_buf_reserve(&e->buf, ts->scratch.len + 10)) {
        e->buf.failed = false; /* the reserve failed as a whole: p and len are intact */
        return VG_ENOMEM;
    }
    vg_buf_put_uvarint(&e->buf, ts->scratch.len);
    vg_buf_append(&e->buf, ts->scratch.p, ts->scratch.len);
    ts->bytes += e->buf.cap - before;
    e->nspans++;
    return 0;
}

int tail_sampling_add(struct tail_sampling *ts, const struct span *spans, size_t n,
                      int64_t now_ns, struct span *pass, size_t *npass,
                      struct tail_sampling_add_result *res, struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    struct kept k = {0};
    size_t np = 0;
    int rc = 0;
    pthread_mutex_lock(&ts->mu);
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct span *s = &spans[i];
        int known = sampling_cache_get(ts->decided, s->trace_id);
        if (known >= 0) {
            if (known) {
                pass[np++] = *s;
                res->late_kept++;
            } else {
                res->late_dropped++;
            }
            continue;
        }
        struct tentry *e = find(ts, s->trace_id);
        if (!e) {
            if (!(e = vg_calloc(1, sizeof *e))) {
                rc = VG_ENOMEM;
                break;
            }
            memcpy(e->id, s->trace_id, SPAN_TRACE_ID_LEN);
            vg_buf_init(&e->buf);
            e->first_ns = now_ns;
            struct tentry **c = chain_of(ts, e->id);
            e->hnext = *c;
            *c = e;
            e->older = ts->newest;
            if (ts->newest)
                ts->newest->newer = e;
            else
                ts->oldest = e;
            ts->newest = e;
            ts->ntraces++;
            ts->bytes += entry_bytes(e);
        }
        if ((rc = entry_add(ts, e, s)) < 0) {
            if (e->nspans == 0) {
                detach(ts, e);
                entry_free(e);
            }
            break;
        }
        res->buffered++;
        /* over a bound: decide the oldest traces now, with what they have */
        while (ts->oldest && (ts->ntraces > ts->max_traces || ts->bytes > ts->max_bytes)) {
            struct tentry *o = ts->oldest;
            detach(ts, o);
            decide(ts, o, now_ns, true, &k);
        }
    }
    update_gauges(ts);
    pthread_mutex_unlock(&ts->mu);
    if (ts->f_late) {
        if (res->late_kept)
            metric_add(ts->f_late, (double)res->late_kept, "keep");
        if (res->late_dropped) {
            metric_add(ts->f_late, (double)res->late_dropped, "drop");
            metric_add(ts->f_dropped, (double)res->late_dropped, "tail");
        }
    }
    write_kept(ts, &k);
    *npass = np;
    if (rc < 0)
        return vg_err_set(err, rc, "out of memory buffering spans for tail sampling");
    return 0;
}

/* Decides traces in chunks until none is left that is due (all: every trace). */
static size_t decide_due(struct tail_sampling *ts, int64_t now_ns, bool all)
{
    size_t total = 0;
    for (;;) {
        struct kept k = {0};
        size_t got = 0;
        pthread_mutex_lock(&ts->mu);
        while (got < DECIDE_CHUNK && ts->oldest &&
               (all || now_ns - ts->oldest->first_ns >= ts->wait_ns)) {
            struct tentry *e = ts->oldest;
            detach(ts, e);
            decide(ts, e, now_ns, false, &k);
            got++;
        }
        update_gauges(ts);
        pthread_mutex_unlock(&ts->mu);
        write_kept(ts, &k);
        total += got;
        if (got < DECIDE_CHUNK)
            return total;
    }
}

size_t tail_sampling_tick(struct tail_sampling *ts, int64_t now_ns)
{
    return decide_due(ts, now_ns, false);
}

size_t tail_sampling_flush(struct tail_sampling *ts, int64_t now_ns)
{
    return decide_due(ts, now_ns, true);
}

void tail_sampling_get_stats(struct tail_sampling *ts, struct tail_sampling_stats *st)
{
    pthread_mutex_lock(&ts->mu);
    *st = (struct tail_sampling_stats){ .traces = ts->ntraces, .bytes = ts->bytes,
                                        .early = ts->early, .kept = ts->kept,
                                        .dropped = ts->dropped };
    pthread_mutex_unlock(&ts->mu);
}

/* ---- the thread ---- */

static void tick_round(void *arg, const atomic_bool *stop)
{
    (void)stop; /* tail_sampling_free decides everything left after the stop anyway */
    tail_sampling_tick(arg, sampling_now_ns());
}

int tail_sampling_start(struct tail_sampling *ts, struct vg_err *err)
{
    /* a tenth of the wait, 10 ms to 1 s: a decision is at most that late */
    int64_t period_ms = ts->wait_ns / 10 / 1000000;
    if (period_ms < 10)
        period_ms = 10;
    if (period_ms > 1000)
        period_ms = 1000;
    struct vg_ticker_opts o = { .name = "tail-sampling", .interval_ms = period_ms,
                                .first_ms = period_ms };
    return vg_ticker_start(&ts->ticker, &o, tick_round, ts, err);
}

void tail_sampling_free(struct tail_sampling *ts)
{
    if (!ts)
        return;
    vg_ticker_stop(&ts->ticker);
    size_t left = ts->ntraces;
    if (left) {
        tail_sampling_flush(ts, sampling_now_ns());
        char nb[32];
        snprintf(nb, sizeof nb, "%zu", left);
        vg_log(VG_LOG_INFO, "sampling", "decided the traces waiting for tail sampling",
               "traces", nb, NULL);
    }
    free_policies(ts->policies, ts->npolicies);
    vg_free(ts->buckets);
    sampling_cache_free(ts->decided);
    vg_arena_free(ts->eval_arena);
    vg_free(ts->eval_spans);
    vg_buf_free(&ts->scratch);
    pthread_mutex_destroy(&ts->mu);
    vg_free(ts);
}
