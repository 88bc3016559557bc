/* logproc: see logproc.h for the config shape and the semantics of each step.
 *
 * A chain is an array of compiled steps. Running it never changes the caller's arrays:
 * a step that edits labels or metadata first copies the array into the record's arena
 * (copy on write), and redaction writes new strings there too, so the input of a push
 * can stay const. Labels are re-sorted once at the end when a label step ran.
 *
 * Rate-limit buckets are the only mutable state: a small array searched linearly under
 * one mutex (sources are few: the receivers, or one file source). At most MAX_BUCKETS
 * sources get a bucket of their own; any further source shares the last one. */
#include "logproc.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/tsdb/matcher.h"
#include "../metrics.h"
#include "ingest.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_BUCKETS 256
#define DEFAULT_REPLACEMENT "<redacted>"

enum kind {
    K_ADD_LABELS, K_RENAME_LABELS, K_DROP_LABELS,
    K_ADD_FIELDS, K_RENAME_FIELDS, K_DROP_FIELDS,
    K_MIN_LEVEL, K_DROP_LEVELS, K_KEEP, K_DROP, K_REDACT, K_RATE_LIMIT,
};

struct step {
    enum kind kind;
    struct label *pairs;        /* add: name/value; rename: old/new; drop: name/"" */
    size_t npairs;
    int min_rank;               /* K_MIN_LEVEL */
    unsigned level_mask;        /* K_DROP_LEVELS: bit per rank */
    struct matcher_regex *re;   /* keep, drop, redact */
    char *field;                /* keep/drop: NULL for the line */
    char *replacement;          /* redact */
    bool redact_line;           /* redact */
    bool redact_all_fields;     /* redact: no `fields` given */
    double rate, burst;         /* rate_limit */
};

struct bucket {
    char *source;
    double tokens;
    int64_t last_ns;
};

struct logproc {
    struct step *steps;
    size_t n;
    struct metric_family *dropped; /* NULL when built for validation only */
    pthread_mutex_t mu;            /* guards buckets */
    struct bucket *buckets;
    size_t nbuckets;
};

/* ---- levels ---- */

static const struct { const char *name; int rank; } level_names[] = {
    { "trace", 0 }, { "debug", 1 }, { "dbg", 1 }, { "info", 2 }, { "information", 2 },
    { "informational", 2 }, { "notice", 2 }, { "warn", 3 }, { "warning", 3 }, { "error", 4 },
    { "err", 4 }, { "critical", 5 }, { "crit", 5 }, { "fatal", 5 }, { "panic", 5 },
    { "alert", 5 }, { "emerg", 5 }, { "emergency", 5 },
};

int logproc_level_rank(struct vg_str name)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        const char *n = level_names[i].name;
        if (strlen(n) == name.len && name.len && strncasecmp(n, name.p, name.len) == 0)
            return level_names[i].rank;
    }
    return -1;
}

static const char *const level_meta[] = { "level", "detected_level", "severity",
                                          "severity_text", "lvl", "loglevel" };
static const char *const level_labels[] = { "level", "detected_level", "severity" };

static const struct vg_str *find_pair(const struct label *ls, size_t n, struct vg_str name)
{
    for (size_t i = 0; i < n; i++)
        if (vg_str_eq(ls[i].name, name))
            return &ls[i].value;
    return NULL;
}

static int record_rank(const struct logproc_record *r)
{
    for (size_t i = 0; i < sizeof level_meta / sizeof level_meta[0]; i++) {
        const struct vg_str *v = find_pair(r->meta, r->nmeta, vg_str_c(level_meta[i]));
        int rank = v ? logproc_level_rank(*v) : -1;
        if (rank >= 0)
            return rank;
    }
    for (size_t i = 0; i < sizeof level_labels / sizeof level_labels[0]; i++) {
        const struct vg_str *v = find_pair(r->labels, r->nlabels, vg_str_c(level_labels[i]));
        int rank = v ? logproc_level_rank(*v) : -1;
        if (rank >= 0)
            return rank;
    }
    return -1;
}

/* ---- compiling ---- */

static void step_free(struct step *s)
{
    for (size_t i = 0; i < s->npairs; i++) {
        vg_free((char *)s->pairs[i].name.p);
        vg_free((char *)s->pairs[i].value.p);
    }
    vg_free(s->pairs);
    matcher_regex_free(s->re);
    vg_free(s->field);
    vg_free(s->replacement);
}

void logproc_free(struct logproc *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        step_free(&p->steps[i]);
    vg_free(p->steps);
    for (size_t i = 0; i < p->nbuckets; i++)
        vg_free(p->buckets[i].source);
    vg_free(p->buckets);
    pthread_mutex_destroy(&p->mu);
    vg_free(p);
}

static int oom(struct vg_err *err)
{
    return vg_err_set(err, VG_ENOMEM, "out of memory");
}

static int add_pair(struct step *s, const char *name, const char *value, struct vg_err *err)
{
    struct label *v = vg_realloc(s->pairs, (s->npairs + 1) * sizeof *v);
    if (!v)
        return oom(err);
    s->pairs = v;
    char *n = vg_strdup(name), *x = vg_strdup(value);
    if (!n || !x) {
        vg_free(n);
        vg_free(x);
        return oom(err);
    }
    s->pairs[s->npairs++] = (struct label){ vg_str_c(n), vg_str_c(x) };
    return 0;
}

static int check_name(const struct config_node *at, const char *where, const char *name,
                      struct vg_err *err)
{
    if (!ingest_valid_label_name(vg_str_c(name)))
        return config_node_err(err, at, "%s: \"%s\" is not a valid label name "
                               "([a-zA-Z_][a-zA-Z0-9_]*)", where, name);
    return 0;
}

/* add_*: {name: value}; rename_*: {old: new}. Label steps check names. */
static int parse_map(struct step *s, const struct config_node *n, const char *where,
                     bool labels, struct vg_err *err)
{
    if (config_node_check_strmap(n, where, err) < 0)
        return VG_EINVAL;
    if (n->n == 0)
        return config_node_err(err, n, "%s: expected at least one entry", where);
    bool rename = s->kind == K_RENAME_LABELS || s->kind == K_RENAME_FIELDS;
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->keys[i], *v = n->items[i]->value;
        if (labels && (check_name(n->items[i], where, k, err) < 0 ||
                       (rename && check_name(n->items[i], where, v, err) < 0)))
            return VG_EINVAL;
        if (!*v)
            return config_node_err(err, n->items[i], "%s.%s: empty %s", where, k,
                                   rename ? "new name" : "value");
        if (add_pair(s, k, v, err) < 0)
            return err->code;
    }
    return 0;
}

/* drop_*: a list of names. */
static int parse_names(struct step *s, const struct config_node *n, const char *where,
                       bool labels, struct vg_err *err)
{
    if (n->type == CONFIG_NODE_MAP)
        return config_node_err(err, n, "%s: expected a list of names", where);
    size_t cnt = n->type == CONFIG_NODE_SEQ ? n->n : 1;
    if (cnt == 0)
        return config_node_err(err, n, "%s: expected at least one name", where);
    for (size_t i = 0; i < cnt; i++) {
        const struct config_node *it = n->type == CONFIG_NODE_SEQ ? n->items[i] : n;
        if (it->type != CONFIG_NODE_SCALAR || !it->value[0])
            return config_node_err(err, it, "%s[%zu]: expected a name", where, i);
        if (labels && check_name(it, where, it->value, err) < 0)
            return VG_EINVAL;
        if (add_pair(s, it->value, "", err) < 0)
            return err->code;
    }
    return 0;
}

/* The rank of the level named by scalar n (>= 0), or VG_EINVAL with err set. Returning
 * the rank rather than filling an out parameter leaves no path on which a caller could
 * read it unset (gcc -O3 could not see that the error path always returns < 0). */
static int parse_rank(const struct config_node *n, const char *where, struct vg_err *err)
{
    int rank = n->type == CONFIG_NODE_SCALAR ? logproc_level_rank(vg_str_c(n->value)) : -1;
    if (rank >= 0)
        return rank;
    config_node_err(err, n, "%s: unknown level \"%s\" (valid: trace, debug, info, notice, "
                    "warn, warning, error, critical, fatal, ...)", where,
                    n->type == CONFIG_NODE_SCALAR ? n->value : "");
    return VG_EINVAL;
}

static int parse_levels(struct step *s, const struct config_node *n, const char *where,
                        struct vg_err *err)
{
    if (s->kind == K_MIN_LEVEL) {
        s->min_rank = parse_rank(n, where, err);
        return s->min_rank < 0 ? VG_EINVAL : 0;
    }
    if (n->type == CONFIG_NODE_MAP)
        return config_node_err(err, n, "%s: expected a list of levels", where);
    size_t cnt = n->type == CONFIG_NODE_SEQ ? n->n : 1;
    for (size_t i = 0; i < cnt; i++) {
        int rank = parse_rank(n->type == CONFIG_NODE_SEQ ? n->items[i] : n, where, err);
        if (rank < 0)
            return VG_EINVAL;
        s->level_mask |= 1u << rank;
    }
    if (!s->level_mask)
        return config_node_err(err, n, "%s: expected at least one level", where);
    return 0;
}

static int parse_regex(struct step *s, const struct config_node *n, const char *where,
                       struct vg_err *err)
{
    const struct config_node *rn = config_node_get(n, "regex");
    const char *re = NULL;
    if (config_node_str(n, where, "regex", &re, err) < 0)
        return VG_EINVAL;
    if (!rn)
        return config_node_err(err, n, "%s: regex is required", where);
    struct vg_err rerr;
    s->re = matcher_regex_new(vg_str_c(re), &rerr);
    if (!s->re)
        return rerr.code == VG_ENOMEM ? oom(err)
                                      : config_node_err(err, rn, "%s.regex: %s", where, rerr.msg);
    return 0;
}

static int parse_filter(struct step *s, const struct config_node *n, const char *where,
                        struct vg_err *err)
{
    static const char *const keys[] = { "regex", "field", NULL };
    const char *field = NULL;
    if (config_node_check_keys(n, where, keys, err) < 0 ||
        config_node_str(n, where, "field", &field, err) < 0 || parse_regex(s, n, where, err) < 0)
        return VG_EINVAL;
    if (field && !(s->field = vg_strdup(field)))
        return oom(err);
    return 0;
}

static int parse_redact(struct step *s, const struct config_node *n, const char *where,
                        struct vg_err *err)
{
    static const char *const keys[] = { "regex", "replacement", "fields", "line", NULL };
    const char *repl = DEFAULT_REPLACEMENT;
    const char **fields = NULL;
    size_t nf = 0;
    bool line = false;
    if (config_node_check_keys(n, where, keys, err) < 0 ||
        config_node_str(n, where, "replacement", &repl, err) < 0 ||
        config_node_bool(n, where, "line", &line, err) < 0 || parse_regex(s, n, where, err) < 0 ||
        config_node_strlist(n, where, "fields", &fields, &nf, err) < 0)
        return err->code;
    int rc = 0;
    s->redact_all_fields = !config_node_get(n, "fields");
    s->redact_line = s->redact_all_fields || line;
    for (size_t i = 0; i < nf && rc == 0; i++)
        rc = add_pair(s, fields[i], "", err);
    vg_free(fields);
    if (rc == 0 && !(s->replacement = vg_strdup(repl)))
        rc = oom(err);
    return rc;
}

static int parse_rate(struct step *s, const struct config_node *n, const char *where,
                      struct vg_err *err)
{
    static const char *const keys[] = { "lines_per_second", "burst", NULL };
    int64_t rate = 0, burst = 0;
    if (config_node_check_keys(n, where, keys, err) < 0 ||
        config_node_int(n, where, "lines_per_second", 1, 100000000, &rate, err) < 0 ||
        config_node_int(n, where, "burst", 1, 1000000000, &burst, err) < 0)
        return VG_EINVAL;
    if (!config_node_get(n, "lines_per_second"))
        return config_node_err(err, n, "%s: lines_per_second is required", where);
    s->rate = (double)rate;
    s->burst = (double)(burst ? burst : rate);
    return 0;
}

static const struct {
    const char *name;
    enum kind kind;
} step_names[] = {
    { "add_labels", K_ADD_LABELS },   { "rename_labels", K_RENAME_LABELS },
    { "drop_labels", K_DROP_LABELS }, { "add_fields", K_ADD_FIELDS },
    { "rename_fields", K_RENAME_FIELDS }, { "drop_fields", K_DROP_FIELDS },
    { "min_level", K_MIN_LEVEL },     { "drop_levels", K_DROP_LEVELS },
    { "keep", K_KEEP },               { "drop", K_DROP },
    { "redact", K_REDACT },           { "rate_limit", K_RATE_LIMIT },
};
#define NSTEPS (sizeof step_names / sizeof step_names[0])

static int parse_step(struct step *s, const struct config_node *item, const char *where,
                      struct vg_err *err)
{
    if (item->type != CONFIG_NODE_MAP || item->n != 1)
        return config_node_err(err, item, "%s: expected a mapping with one processor "
                               "(add_labels, rename_labels, drop_labels, add_fields, "
                               "rename_fields, drop_fields, min_level, drop_levels, keep, "
                               "drop, redact, rate_limit)", where);
    const char *name = item->keys[0];
    const struct config_node *n = item->items[0];
    size_t k = 0;
    while (k < NSTEPS && strcmp(step_names[k].name, name) != 0)
        k++;
    if (k == NSTEPS)
        return config_node_err(err, n, "%s: unknown processor \"%s\" (valid: add_labels, "
                               "rename_labels, drop_labels, add_fields, rename_fields, "
                               "drop_fields, min_level, drop_levels, keep, drop, redact, "
                               "rate_limit)", where, name);
    s->kind = step_names[k].kind;
    char w[160];
    snprintf(w, sizeof w, "%s.%s", where, name);
    switch (s->kind) {
    case K_ADD_LABELS:
    case K_RENAME_LABELS:
    case K_ADD_FIELDS:
    case K_RENAME_FIELDS:
        return parse_map(s, n, w, s->kind == K_ADD_LABELS || s->kind == K_RENAME_LABELS, err);
    case K_DROP_LABELS:
    case K_DROP_FIELDS:
        return parse_names(s, n, w, s->kind == K_DROP_LABELS, err);
    case K_MIN_LEVEL:
    case K_DROP_LEVELS:
        return parse_levels(s, n, w, err);
    case K_KEEP:
    case K_DROP:
        return parse_filter(s, n, w, err);
    case K_REDACT:
        return parse_redact(s, n, w, err);
    case K_RATE_LIMIT:
        return parse_rate(s, n, w, err);
    }
    return 0;
}

int logproc_new(const struct config_node *list, const char *where, struct metrics *mx,
                struct logproc **out, struct vg_err *err)
{
    *out = NULL;
    if (!list || (list->type == CONFIG_NODE_SCALAR && !list->value[0] && !list->quoted))
        return 0;
    if (list->type != CONFIG_NODE_SEQ)
        return config_node_err(err, list, "%s: expected a list of processors", where);
    if (list->n == 0)
        return 0;
    struct logproc *p = vg_calloc(1, sizeof *p);
    if (!p || !(p->steps = vg_calloc(list->n, sizeof *p->steps))) {
        vg_free(p);
        return oom(err);
    }
    pthread_mutex_init(&p->mu, NULL);
    for (size_t i = 0; i < list->n; i++) {
        char w[128];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        p->n = i + 1;
        int rc = parse_step(&p->steps[i], list->items[i], w, err);
        if (rc < 0) {
            logproc_free(p);
            return rc;
        }
    }
    if (mx) {
        static const char *const sr[] = { "source", "reason" };
        p->dropped = metrics_family(mx, "vigil_logproc_dropped_total",
                                    "Log records dropped by a processor, by source and reason "
                                    "(level, filter, rate_limit).",
                                    METRIC_COUNTER, sr, 2, NULL, 0);
        if (!p->dropped) {
            logproc_free(p);
            return oom(err);
        }
    }
    *out = p;
    return 0;
}

/* ---- running ---- */

/* A copy of ls with room for extra more pairs, in the arena. */
static struct label *copy_pairs(const struct label *ls, size_t n, size_t extra, struct vg_arena *a)
{
    struct label *d = vg_arena_alloc(a, (n + extra ? n + extra : 1) * sizeof *d);
    if (d && n)
        memcpy(d, ls, n * sizeof *d);
    return d;
}

/* Applies an add, rename or drop step to the pairs (*ls, *n). false when out of memory. */
static bool edit_pairs(const struct step *s, enum kind add, enum kind rename,
                       const struct label **ls, size_t *n, struct vg_arena *a)
{
    struct label *d = copy_pairs(*ls, *n, s->kind == add ? s->npairs : 0, a);
    if (!d)
        return false;
    size_t m = *n;
    for (size_t k = 0; k < s->npairs; k++) {
        struct vg_str name = s->pairs[k].name, value = s->pairs[k].value;
        size_t i = 0;
        while (i < m && !vg_str_eq(d[i].name, name))
            i++;
        if (s->kind == add) {
            if (i == m)
                d[m++].name = name;
            d[i].value = value;
        } else if (i < m && s->kind == rename) {
            /* a pair already called the new name is replaced by the renamed one */
            for (size_t j = 0; j < m; j++)
                if (j != i && vg_str_eq(d[j].name, value)) {
                    d[j] = d[--m];
                    if (i == m)
                        i = j;
                    break;
                }
            d[i].name = value;
        } else if (i < m) { /* drop: every pair of that name */
            for (size_t j = m; j > 0; j--)
                if (vg_str_eq(d[j - 1].name, name))
                    d[j - 1] = d[--m];
        }
    }
    *ls = d;
    *n = m;
    return true;
}

/* Searches s->re in v: 1 match, 0 none, VG_ENOMEM. */
static int search(const struct step *s, struct vg_str v)
{
    size_t b, e;
    return matcher_regex_find(s->re, v, 0, &b, &e);
}

/* Replaces every non-empty match in *v; the result lives in the arena. 0 or VG_ENOMEM. */
static int redact(const struct step *s, struct vg_str *v, struct vg_arena *a)
{
    struct vg_buf out;
    vg_buf_init(&out);
    size_t pos = 0, from = 0, b, e;
    bool changed = false;
    int rc = 0;
    while (from <= v->len && (rc = matcher_regex_find(s->re, *v, from, &b, &e)) == 1) {
        if (e <= b) { /* an empty match replaces nothing; step past it */
            from = b + 1;
            continue;
        }
        vg_buf_append(&out, v->p + pos, b - pos);
        vg_buf_puts(&out, s->replacement);
        pos = from = e;
        changed = true;
    }
    if (rc < 0) {
        vg_buf_free(&out);
        return rc;
    }
    if (changed) {
        vg_buf_append(&out, v->p + pos, v->len - pos);
        char *d = vg_buf_failed(&out) ? NULL : vg_arena_alloc(a, out.len ? out.len : 1);
        if (!d) {
            vg_buf_free(&out);
            return VG_ENOMEM;
        }
        memcpy(d, out.p, out.len);
        *v = (struct vg_str){ d, out.len };
    }
    vg_buf_free(&out);
    return 0;
}

static int run_redact(const struct step *s, struct logproc_record *r, struct vg_arena *a)
{
    int rc = 0;
    if (s->redact_line)
        rc = redact(s, &r->line, a);
    if (rc < 0 || !r->nmeta || (!s->redact_all_fields && !s->npairs))
        return rc;
    struct label *m = copy_pairs(r->meta, r->nmeta, 0, a);
    if (!m)
        return VG_ENOMEM;
    for (size_t i = 0; i < r->nmeta && rc == 0; i++)
        if (s->redact_all_fields || find_pair(s->pairs, s->npairs, m[i].name))
            rc = redact(s, &m[i].value, a);
    r->meta = m;
    return rc;
}

static bool take_token(struct logproc *p, const struct step *s, const char *source,
                       int64_t now_ns)
{
    pthread_mutex_lock(&p->mu);
    struct bucket *b = NULL;
    for (size_t i = 0; i < p->nbuckets && !b; i++)
        if (!strcmp(p->buckets[i].source, source))
            b = &p->buckets[i];
    if (!b && p->nbuckets < MAX_BUCKETS) {
        struct bucket *v = vg_realloc(p->buckets, (p->nbuckets + 1) * sizeof *v);
        char *name = v ? vg_strdup(source) : NULL;
        if (v)
            p->buckets = v;
        if (name) {
            b = &p->buckets[p->nbuckets++];
            *b = (struct bucket){ .source = name, .tokens = s->burst, .last_ns = now_ns };
        }
    }
    if (!b && p->nbuckets)
        b = &p->buckets[p->nbuckets - 1]; /* over the bound (or out of memory): shared */
    bool ok = true;
    if (b) {
        if (now_ns > b->last_ns)
            b->tokens = fmin(s->burst, b->tokens + (double)(now_ns - b->last_ns) * s->rate / 1e9);
        b->last_ns = now_ns > b->last_ns ? now_ns : b->last_ns;
        ok = b->tokens >= 1.0;
        if (ok)
            b->tokens -= 1.0;
    }
    pthread_mutex_unlock(&p->mu);
    return ok;
}

static int dropped(struct logproc *p, const char *source, const char *reason)
{
    if (p->dropped)
        metric_add(p->dropped, 1, source, reason);
    return 0;
}

int logproc_run(struct logproc *p, const char *source, struct logproc_record *r,
                int64_t now_ns, struct vg_arena *a)
{
    bool relabelled = false;
    for (size_t i = 0; i < p->n; i++) {
        const struct step *s = &p->steps[i];
        int rc, rank;
        switch (s->kind) {
        case K_ADD_LABELS:
        case K_RENAME_LABELS:
        case K_DROP_LABELS:
            if (!edit_pairs(s, K_ADD_LABELS, K_RENAME_LABELS, &r->labels, &r->nlabels, a))
                return VG_ENOMEM;
            relabelled = true;
            break;
        case K_ADD_FIELDS:
        case K_RENAME_FIELDS:
        case K_DROP_FIELDS:
            if (!edit_pairs(s, K_ADD_FIELDS, K_RENAME_FIELDS, &r->meta, &r->nmeta, a))
                return VG_ENOMEM;
            break;
        case K_MIN_LEVEL:
        case K_DROP_LEVELS:
            rank = record_rank(r);
            if (rank >= 0 && (s->kind == K_MIN_LEVEL ? rank < s->min_rank
                                                     : (s->level_mask >> rank) & 1u))
                return dropped(p, source, "level");
            break;
        case K_KEEP:
        case K_DROP: {
            struct vg_str v = r->line;
            if (s->field) {
                const struct vg_str *f = find_pair(r->meta, r->nmeta, vg_str_c(s->field));
                if (!f)
                    f = find_pair(r->labels, r->nlabels, vg_str_c(s->field));
                v = f ? *f : (struct vg_str){ "", 0 };
            }
            if ((rc = search(s, v)) < 0)
                return rc;
            if ((rc == 1) != (s->kind == K_KEEP))
                return dropped(p, source, "filter");
            break;
        }
        case K_REDACT:
            if ((rc = run_redact(s, r, a)) < 0)
                return rc;
            break;
        case K_RATE_LIMIT:
            if (!take_token(p, s, source, now_ns))
                return dropped(p, source, "rate_limit");
            break;
        }
    }
    if (relabelled)
        labels_sort((struct label *)r->labels, r->nlabels); /* the arena copy */
    return 1;
}

int logproc_streams(struct logproc *p, const char *source, const struct logstore_stream_in *in,
                    size_t n, struct vg_arena *a, struct logstore_stream_in **out,
                    size_t *nout)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += in[i].nentries;
    struct logstore_stream_in *st = vg_arena_alloc(a, (n ? n : 1) * sizeof *st);
    struct lentry *es = vg_arena_alloc(a, (total ? total : 1) * sizeof *es);
    if (!st || !es)
        return VG_ENOMEM;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    size_t ns = 0, ne = 0;
    for (size_t i = 0; i < n; i++) {
        bool first = true;
        for (size_t j = 0; j < in[i].nentries; j++) {
            const struct lentry *e = &in[i].entries[j];
            struct logproc_record r = { .t = e->t, .line = e->line, .labels = in[i].labels,
                                        .nlabels = in[i].nlabels, .meta = e->meta,
                                        .nmeta = e->nmeta };
            int rc = logproc_run(p, source, &r, now, a);
            if (rc < 0)
                return rc;
            if (rc == 0)
                continue;
            /* label steps depend on the labels alone, so every entry of a stream comes
               out with the same set: the first kept entry's */
            if (first)
                st[ns++] = (struct logstore_stream_in){ .labels = r.labels, .nlabels = r.nlabels,
                                                        .entries = &es[ne] };
            first = false;
            es[ne++] = (struct lentry){ .t = r.t, .line = r.line, .meta = r.meta,
                                        .nmeta = r.nmeta };
            st[ns - 1].nentries++;
        }
    }
    *out = st;
    *nout = ns;
    return 0;
}
