/* pipeline: runs the stages of a LogQL log query on one entry at a time (pipeline.h).
 *
 * Labels live in a small builder modelled on Loki's LabelsBuilder: one entry per name
 * with a category (stream, structured metadata, parsed). Setting a parsed label
 * replaces whatever had that name; metadata does not replace a parsed label; a stream
 * label value only changes stream labels. __error__ and __error_details__ are kept
 * apart (as Loki does) and added to the output. A name that a parser extracts and that
 * the entry's stream labels already hold gets "_extracted" appended (Loki compares
 * against the stream labels only, even after a drop).
 *
 * Memory: strings made for an entry (unescaped values, joined keys, formatted lines)
 * come from the pipeline's arena, reset at the start of each entry; the label arrays
 * grow once and are reused. A pipeline of line filters alone allocates nothing per
 * entry: filters compare in place and the output labels are the inputs' pointers.
 * Line filters that are regexes without metacharacters become substring searches
 * (case-insensitive for a leading (?i)), as Loki simplifies them. */
#include "pipeline.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/tsdb/matcher.h"
#include "pipeline_scan.h"
#include "template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK ((size_t)64 * 1024)
#define MAX_JSON_STEPS 32

static const struct vg_str ERROR_LABEL = { "__error__", 9 };
static const struct vg_str DETAILS_LABEL = { "__error_details__", 17 };
static const struct vg_str EXTRACTED = { "_extracted", 10 };

enum cat { CAT_STREAM, CAT_META, CAT_PARSED };

struct lent {
    struct vg_str name, value;
    enum cat cat;
};

enum alt_kind { ALT_LIT, ALT_LIT_CI, ALT_REGEX, ALT_IP, ALT_PATTERN };

struct alt {
    enum alt_kind kind;
    struct vg_str lit; /* ALT_LIT; ALT_LIT_CI lower-cased, owned */
    struct matcher_regex *re;
    struct lqscan_ip ip;
    struct lqscan_pattern *pat;
};

/* A compiled label filter (the tree's shape, with ip() parsed once). */
struct lf {
    const struct logql_label_filter *f;
    struct lf *l, *r;
    struct lqscan_ip ip;
};

/* A `name="expr"` parameter of | json or | logfmt. */
struct param {
    struct vg_str name, name_ext; /* name_ext: name + "_extracted", owned */
    struct vg_str path;           /* logfmt: the key */
    struct lqscan_json_step steps[MAX_JSON_STEPS];
    size_t nsteps;
};

struct stage {
    const struct logql_stage *src;
    bool negated;
    struct alt *alts;
    size_t nalts;
    struct matcher_regex *re;    /* | regexp */
    struct lqscan_pattern *pat;  /* | pattern */
    struct param *params;        /* | json / | logfmt with parameters */
    size_t nparams;
    struct lf *filter;           /* label filter */
    struct template *tmpl;       /* line_format */
    struct template **tmpls;     /* label_format, one per named entry (NULL: rename) */
    bool hinted;                 /* parser: extract only the names in need (hints) */
};

struct logql_pipeline {
    struct stage *stages;
    size_t nstages;
    const struct logql_unwrap *unwrap;
    struct lf **post;
    size_t npost;
    bool filters_only;
    struct vg_str *need;         /* logql_pipeline_hint's names (pointing into the tree) */
    size_t nneed, capneed;

    /* per entry */
    struct vg_arena *arena;
    const struct label *base;
    size_t nbase;
    struct lent *ents;
    size_t nents, ents_cap;
    struct vg_str err, details;
    struct vg_str line;
    int64_t t;
    struct vg_buf keybuf, tbuf;
    struct lent *pend; /* unpack's labels, set only once _entry is found */
    size_t npend, pend_cap;
    struct label *outl, *outp;
    size_t outl_cap, outp_cap;
    bool packed; /* unpack found _entry */
    bool hinting; /* the running stage is hinted */
};

/* ---- label builder ---- */

static bool base_has(const struct logql_pipeline *p, struct vg_str name)
{
    size_t lo = 0, hi = p->nbase;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = vg_str_cmp(p->base[mid].name, name);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static long lb_find(const struct logql_pipeline *p, struct vg_str name)
{
    for (size_t i = 0; i < p->nents; i++)
        if (vg_str_eq(p->ents[i].name, name))
            return (long)i;
    return -1;
}

static bool grow(void **v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *m = vg_realloc(*v, n * size);
    if (!m)
        return false;
    *v = m;
    *cap = n;
    return true;
}

static int lb_set(struct logql_pipeline *p, enum cat cat, struct vg_str name, struct vg_str value)
{
    long i = lb_find(p, name);
    if (i >= 0) {
        struct lent *e = &p->ents[i];
        if ((cat == CAT_META && e->cat == CAT_PARSED) || (cat == CAT_STREAM && e->cat != CAT_STREAM))
            return 0;
        e->value = value;
        e->cat = cat;
        return 0;
    }
    if (!grow((void **)&p->ents, &p->ents_cap, p->nents + 1, sizeof *p->ents))
        return VG_ENOMEM;
    p->ents[p->nents++] = (struct lent){ name, value, cat };
    return 0;
}

static void lb_del(struct logql_pipeline *p, struct vg_str name)
{
    if (vg_str_eq(name, ERROR_LABEL)) {
        p->err = (struct vg_str){ NULL, 0 };
        return;
    }
    if (vg_str_eq(name, DETAILS_LABEL)) {
        p->details = (struct vg_str){ NULL, 0 };
        return;
    }
    long i = lb_find(p, name);
    if (i >= 0)
        p->ents[i] = p->ents[--p->nents];
}

static bool lb_get(const struct logql_pipeline *p, struct vg_str name, struct vg_str *v)
{
    if (vg_str_eq(name, ERROR_LABEL) || vg_str_eq(name, DETAILS_LABEL)) {
        *v = vg_str_eq(name, ERROR_LABEL) ? p->err : p->details;
        return v->len > 0;
    }
    long i = lb_find(p, name);
    if (i < 0)
        return false;
    *v = p->ents[i].value;
    return true;
}

static bool tmpl_field(void *ud, struct vg_str name, struct vg_str *value)
{
    return lb_get(ud, name, value);
}

static char *adup(struct logql_pipeline *p, const char *s, size_t n)
{
    char *m = vg_arena_alloc(p->arena, n ? n : 1);
    if (m && n)
        memcpy(m, s, n);
    return m;
}

/* name + "_extracted" in the arena, when the stream labels hold name. */
static int dedup_name(struct logql_pipeline *p, struct vg_str *name)
{
    if (!base_has(p, *name))
        return 0;
    char *m = vg_arena_alloc(p->arena, name->len + EXTRACTED.len);
    if (!m)
        return VG_ENOMEM;
    memcpy(m, name->p, name->len);
    memcpy(m + name->len, EXTRACTED.p, EXTRACTED.len);
    *name = (struct vg_str){ m, name->len + EXTRACTED.len };
    return 0;
}

static int set_error(struct logql_pipeline *p, const char *what, const char *details)
{
    p->err = vg_str_c(what);
    if (!details)
        return 0;
    size_t n = strlen(details);
    char *d = adup(p, details, n);
    if (!d)
        return VG_ENOMEM;
    p->details = (struct vg_str){ d, n };
    return 0;
}

/* ---- line filters ---- */

static bool plain_literal(struct vg_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (strchr("\\.+*?()|[]{}^$", s.p[i]) && s.p[i])
            return false;
    return true;
}

static long find_ci(struct vg_str hay, struct vg_str lower)
{
    if (lower.len == 0)
        return 0;
    for (size_t i = 0; i + lower.len <= hay.len; i++) {
        size_t k = 0;
        while (k < lower.len) {
            char c = hay.p[i + k];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
            if (c != lower.p[k])
                break;
            k++;
        }
        if (k == lower.len)
            return (long)i;
    }
    return -1;
}

static bool contains(struct vg_str hay, struct vg_str needle)
{
    if (needle.len == 0)
        return true;
    if (hay.len < needle.len)
        return false;
    const char *end = hay.p + hay.len - needle.len;
    for (const char *s = hay.p; s <= end; s++) {
        s = memchr(s, needle.p[0], (size_t)(end - s) + 1);
        if (!s)
            return false;
        if (memcmp(s, needle.p, needle.len) == 0)
            return true;
    }
    return false;
}

static int no_group(void *ud, struct vg_str name, struct vg_str value)
{
    (void)ud, (void)name, (void)value;
    return 0;
}

static int alt_matches(const struct alt *a, struct vg_str line)
{
    switch (a->kind) {
    case ALT_LIT: return contains(line, a->lit);
    case ALT_LIT_CI: return find_ci(line, a->lit) >= 0;
    case ALT_IP: return lqscan_ip_search(&a->ip, line);
    case ALT_PATTERN: return lqscan_pattern_test(a->pat, line);
    default: return matcher_regex_groups(a->re, line, no_group, NULL);
    }
}

static int build_alt(struct alt *x, enum logql_line_op op, const struct logql_line_alt *a,
                     struct vg_err *err)
{
    struct vg_str v = { a->value.p, a->value.len };
    bool regex = op == LQ_LINE_MATCH || op == LQ_LINE_NOT_MATCH;
    x->lit = v;
    if (a->ip) {
        if (op != LQ_LINE_CONTAINS && op != LQ_LINE_NOT_CONTAINS)
            return vg_err_set(err, VG_EINVAL, "ip: invalid operation %s", logql_line_op_str(op));
        x->kind = ALT_IP;
        return lqscan_ip_parse(v, &x->ip, err);
    }
    if (op == LQ_LINE_PATTERN || op == LQ_LINE_NOT_PATTERN) {
        x->kind = ALT_PATTERN;
        x->pat = lqscan_pattern_new(v, false, err);
        return x->pat ? 0 : err->code;
    }
    if (!regex)
        return 0;
    if (plain_literal(v))
        return 0;
    struct vg_str rest = { v.p + 4, v.len >= 4 ? v.len - 4 : 0 };
    if (v.len > 4 && memcmp(v.p, "(?i)", 4) == 0 && plain_literal(rest)) {
        bool ascii = true;
        for (size_t i = 0; i < rest.len; i++)
            ascii &= (unsigned char)rest.p[i] < 0x80;
        if (ascii) {
            char *low = vg_malloc(rest.len);
            if (!low)
                return vg_err_set(err, VG_ENOMEM, "pipeline: out of memory");
            for (size_t i = 0; i < rest.len; i++)
                low[i] = rest.p[i] >= 'A' && rest.p[i] <= 'Z' ? (char)(rest.p[i] + 32) : rest.p[i];
            x->kind = ALT_LIT_CI;
            x->lit = (struct vg_str){ low, rest.len };
            return 0;
        }
    }
    x->kind = ALT_REGEX;
    x->re = matcher_regex_new(v, err);
    return x->re ? 0 : err->code;
}

/* ---- parsers ---- */

/* A JSON or logfmt value ready for a label: unescaped, invalid UTF-8 made spaces. */
static int clean_value(struct logql_pipeline *p, struct vg_str raw, bool escaped,
                       struct vg_str *out)
{
    bool high = false;
    for (size_t i = 0; i < raw.len && !high; i++)
        high = (unsigned char)raw.p[i] >= 0x80;
    if (!escaped && !high) {
        *out = raw;
        return 0;
    }
    char *m = vg_arena_alloc(p->arena, raw.len ? raw.len : 1);
    if (!m)
        return VG_ENOMEM;
    long n = (long)raw.len;
    if (escaped)
        n = lqscan_json_unescape(raw, m);
    else
        memcpy(m, raw.p, raw.len);
    if (n < 0) {
        *out = (struct vg_str){ "", 0 };
        return 1; /* a malformed escape */
    }
    *out = (struct vg_str){ m, lqscan_fix_utf8(m, (size_t)n) };
    return 0;
}

/* Whether a hinted parser must set the label it would name key (key, or key +
 * "_extracted" when the stream has key). __error__ and __error_details__ are always set:
 * a line that names them must fail a metric query either way. */
static bool wanted(const struct logql_pipeline *p, struct vg_str key)
{
    if (!p->hinting || vg_str_eq(key, ERROR_LABEL) || vg_str_eq(key, DETAILS_LABEL))
        return true;
    bool ext = base_has(p, key);
    for (size_t i = 0; i < p->nneed; i++) {
        struct vg_str n = p->need[i];
        if (!ext ? vg_str_eq(n, key)
                 : n.len == key.len + EXTRACTED.len && memcmp(n.p, key.p, key.len) == 0 &&
                       memcmp(n.p + key.len, EXTRACTED.p, EXTRACTED.len) == 0)
            return true;
    }
    return false;
}

static int set_parsed_copy(struct logql_pipeline *p, struct vg_str key, struct vg_str value)
{
    char *k = adup(p, key.p, key.len);
    if (!k)
        return VG_ENOMEM;
    struct vg_str name = { k, key.len };
    if (dedup_name(p, &name))
        return VG_ENOMEM;
    return lb_set(p, CAT_PARSED, name, value);
}

static int json_member(void *ud, struct vg_str key, enum lqscan_json_kind kind, struct vg_str raw)
{
    struct logql_pipeline *p = ud;
    struct vg_str v = raw;
    if (!wanted(p, key))
        return 0;
    if (kind == LQJ_STRING && clean_value(p, raw, memchr(raw.p, '\\', raw.len) != NULL, &v) < 0)
        return VG_ENOMEM;
    return set_parsed_copy(p, key, v);
}

static int json_value_of(struct logql_pipeline *p, enum lqscan_json_kind kind, struct vg_str raw,
                         struct vg_str *v)
{
    *v = raw;
    if (kind == LQJ_NULL)
        *v = (struct vg_str){ "", 0 };
    else if (kind == LQJ_STRING && clean_value(p, raw, memchr(raw.p, '\\', raw.len) != NULL, v) < 0)
        return VG_ENOMEM;
    return 0;
}

static int run_json(struct logql_pipeline *p, const struct stage *s)
{
    struct vg_err e;
    vg_err_clear(&e);
    if (s->nparams == 0) {
        int rc = lqscan_json_flatten(p->line, &p->keybuf, json_member, p, &e);
        if (rc == LQSCAN_SYNTAX)
            return set_error(p, "JSONParserErr", e.msg);
        return rc;
    }
    if (p->line.len == 0)
        return 0;
    char c0 = p->line.p[0];
    if (c0 != '"' && c0 != '{' && c0 != '[')
        return set_error(p, "JSONParserErr", NULL);
    for (size_t i = 0; i < s->nparams; i++) {
        const struct param *pr = &s->params[i];
        enum lqscan_json_kind kind;
        struct vg_str raw, v;
        int rc = lqscan_json_path(p->line, pr->steps, pr->nsteps, &kind, &raw, &e);
        if (rc == LQSCAN_SYNTAX) {
            if ((rc = set_error(p, "JSONParserErr", e.msg)) != 0)
                return rc;
            continue;
        }
        struct vg_str name = base_has(p, pr->name) ? pr->name_ext : pr->name;
        if (rc == 0) {
            if (!lb_get(p, pr->name, &v) && (rc = lb_set(p, CAT_PARSED, pr->name, VG_STR(""))))
                return rc;
            continue;
        }
        if ((rc = json_value_of(p, kind, raw, &v)) != 0 ||
            (rc = lb_set(p, CAT_PARSED, name, v)) != 0)
            return rc;
    }
    return 0;
}

static int run_logfmt(struct logql_pipeline *p, const struct stage *s)
{
    const struct logql_stage *st = s->src;
    struct lqscan_logfmt d;
    bool failed = false;
    int rc;
    lqscan_logfmt_init(&d, p->line);
    for (size_t i = 0; i < s->nparams; i++)
        if (!base_has(p, s->params[i].name) &&
            (rc = lb_set(p, CAT_PARSED, s->params[i].name, VG_STR(""))) != 0)
            return rc;
    for (;;) {
        int r = lqscan_logfmt_next(&d);
        if (r == 0)
            break;
        struct vg_str v;
        if (r > 0 && (rc = clean_value(p, d.value, d.escaped, &v)) != 0) {
            if (rc < 0)
                return rc;
            d.why = "invalid quoted value";
            d.err_pos = d.pos;
            r = -1;
        }
        if (r < 0) {
            failed = true;
            if (st->named.strict)
                break;
            continue;
        }
        vg_buf_reset(&p->keybuf);
        lqscan_sanitize(&p->keybuf, d.key);
        if (vg_buf_failed(&p->keybuf))
            return VG_ENOMEM;
        struct vg_str key = { p->keybuf.p, p->keybuf.len };
        if (key.len == 0)
            continue;
        if (s->nparams) {
            const struct param *pr = NULL;
            for (size_t i = 0; i < s->nparams && !pr; i++)
                if (vg_str_eq(s->params[i].path, key))
                    pr = &s->params[i];
            if (!pr)
                continue;
            rc = lb_set(p, CAT_PARSED, base_has(p, pr->name) ? pr->name_ext : pr->name, v);
        } else {
            if ((!st->named.keep_empty && v.len == 0) || !wanted(p, key))
                continue;
            rc = set_parsed_copy(p, key, v);
        }
        if (rc)
            return rc;
    }
    if (failed && st->named.strict) {
        char msg[128];
        snprintf(msg, sizeof msg, "logfmt syntax error at pos %zu : %s", d.err_pos, d.why);
        return set_error(p, "LogfmtParserErr", msg);
    }
    return 0;
}

static int set_capture(void *ud, struct vg_str name, struct vg_str value)
{
    struct logql_pipeline *p = ud;
    if (dedup_name(p, &name))
        return VG_ENOMEM;
    return lb_set(p, CAT_PARSED, name, value);
}

static int unpack_member(void *ud, struct vg_str key, enum lqscan_json_kind kind,
                         struct vg_str raw)
{
    struct logql_pipeline *p = ud;
    if (kind != LQJ_STRING)
        return 0;
    struct vg_str v;
    int rc = clean_value(p, raw, memchr(raw.p, '\\', raw.len) != NULL, &v);
    if (rc < 0)
        return rc;
    if (vg_str_eq_c(key, "_entry")) {
        if (rc > 0)
            return LQSCAN_SYNTAX + 1; /* a bad escape in the packed line */
        p->line = v;
        p->packed = true;
        return 0;
    }
    if (dedup_name(p, &key))
        return VG_ENOMEM;
    vg_buf_reset(&p->keybuf);
    lqscan_sanitize(&p->keybuf, key);
    char *k = vg_buf_failed(&p->keybuf) ? NULL : adup(p, p->keybuf.p, p->keybuf.len);
    if (!k)
        return VG_ENOMEM;
    if (!grow((void **)&p->pend, &p->pend_cap, p->npend + 1, sizeof *p->pend))
        return VG_ENOMEM;
    p->pend[p->npend++] = (struct lent){ { k, p->keybuf.len }, v, CAT_PARSED };
    return 0;
}

static int run_unpack(struct logql_pipeline *p)
{
    if (p->line.len == 0)
        return 0;
    if (p->line.p[0] != '{')
        return set_error(p, "JSONParserErr", "expecting json object(6), but it is not");
    struct vg_err e;
    vg_err_clear(&e);
    struct vg_str before = p->line;
    p->npend = 0;
    p->packed = false;
    int rc = lqscan_json_members(p->line, unpack_member, p, &e);
    bool packed = p->packed;
    if (rc == LQSCAN_SYNTAX || rc == LQSCAN_SYNTAX + 1) {
        p->line = before;
        return set_error(p, "JSONParserErr", rc == LQSCAN_SYNTAX ? e.msg : "invalid escape in _entry");
    }
    if (rc)
        return rc;
    for (size_t i = 0; packed && i < p->npend; i++)
        if ((rc = lb_set(p, CAT_PARSED, p->pend[i].name, p->pend[i].value)) != 0)
            return rc;
    return 0;
}

/* ---- label filters ---- */

static int cmp_num(enum logql_cmp c, double a, double b)
{
    switch (c) {
    case LQ_CMP_EQ: return a == b;
    case LQ_CMP_NE: return a != b;
    case LQ_CMP_GT: return a > b;
    case LQ_CMP_GE: return a >= b;
    case LQ_CMP_LT: return a < b;
    default: return a <= b;
    }
}

static int cmp_int(enum logql_cmp c, int64_t a, int64_t b)
{
    return cmp_num(c, (double)(a > b) - (double)(a < b), 0);
}

/* 1 keep, 0 drop, or VG_ENOMEM. */
static int eval_filter(struct logql_pipeline *p, const struct lf *lf)
{
    const struct logql_label_filter *f = lf->f;
    struct vg_str v = { "", 0 };
    int rc;
    switch (f->kind) {
    case LQ_LF_AND:
    case LQ_LF_OR:
        rc = eval_filter(p, lf->l);
        if (rc < 0 || (f->kind == LQ_LF_OR && rc == 1) || (f->kind == LQ_LF_AND && rc == 0))
            return rc;
        return eval_filter(p, lf->r);
    case LQ_LF_STRING:
        lb_get(p, vg_str_c(f->m->name), &v);
        return matcher_matches(f->m, v);
    case LQ_LF_IP:
        if (p->err.len)
            return 1;
        if (!lb_get(p, vg_str_c(f->cmp.name), &v))
            return 0;
        return lqscan_ip_search(&lf->ip, v) == (f->cmp.cmp == LQ_CMP_EQ);
    default:
        break;
    }
    if (!lb_get(p, vg_str_c(f->cmp.name), &v))
        return 0;
    struct vg_err e;
    vg_err_clear(&e);
    double d = 0;
    int64_t ns = 0;
    uint64_t b = 0;
    if (f->kind == LQ_LF_NUMBER)
        rc = lqscan_float(v, &d, &e);
    else if (f->kind == LQ_LF_DURATION)
        rc = lqscan_duration(v, &ns, &e);
    else
        rc = lqscan_bytes(v, &b, &e);
    if (rc) {
        if (!p->err.len && (rc = set_error(p, "LabelFilterErr", e.msg)) != 0)
            return rc;
        return 1;
    }
    if (f->kind == LQ_LF_NUMBER)
        return cmp_num(f->cmp.cmp, d, f->cmp.number);
    if (f->kind == LQ_LF_DURATION)
        return cmp_int(f->cmp.cmp, ns, f->cmp.duration_ns);
    return cmp_int(f->cmp.cmp, b > f->cmp.bytes ? 1 : 0, b < f->cmp.bytes ? 1 : 0);
}

static void lf_free(struct lf *lf)
{
    if (!lf)
        return;
    lf_free(lf->l);
    lf_free(lf->r);
    vg_free(lf);
}

static struct lf *lf_build(const struct logql_label_filter *f, struct vg_err *err)
{
    struct lf *lf = vg_calloc(1, sizeof *lf);
    if (!lf) {
        vg_err_set(err, VG_ENOMEM, "pipeline: out of memory");
        return NULL;
    }
    lf->f = f;
    if (f->kind == LQ_LF_AND || f->kind == LQ_LF_OR) {
        if (!(lf->l = lf_build(f->bin.lhs, err)) || !(lf->r = lf_build(f->bin.rhs, err))) {
            lf_free(lf);
            return NULL;
        }
    } else if (f->kind == LQ_LF_IP &&
               lqscan_ip_parse((struct vg_str){ f->cmp.ip.p, f->cmp.ip.len }, &lf->ip, err)) {
        lf_free(lf);
        return NULL;
    }
    return lf;
}

/* ---- formatting stages ---- */

static int run_template(struct logql_pipeline *p, const struct template *t, struct vg_str *out)
{
    struct template_data d = { tmpl_field, p, p->line, p->t };
    struct vg_err e;
    vg_err_clear(&e);
    vg_buf_reset(&p->tbuf);
    int rc = template_exec(t, &d, p->arena, &p->tbuf, &e);
    if (rc == VG_ENOMEM)
        return rc;
    if (rc)
        return set_error(p, "TemplateFormatErr", e.msg) ? VG_ENOMEM : 1;
    char *m = adup(p, p->tbuf.p, p->tbuf.len);
    if (!m)
        return VG_ENOMEM;
    *out = (struct vg_str){ m, p->tbuf.len };
    return 0;
}

static int run_label_format(struct logql_pipeline *p, const struct stage *s)
{
    const struct logql_stage *st = s->src;
    for (size_t i = 0; i < st->named.n; i++) {
        const struct logql_named *nm = &st->named.v[i];
        struct vg_str dst = vg_str_c(nm->name), v;
        int rc;
        if (nm->rename) {
            struct vg_str src = { nm->value.p, nm->value.len };
            long k = lb_find(p, src);
            if (k < 0)
                continue;
            v = p->ents[k].value;
            enum cat c = p->ents[k].cat;
            lb_del(p, src);
            lb_del(p, dst);
            if ((rc = lb_set(p, c, dst, v)) != 0)
                return rc;
            continue;
        }
        rc = run_template(p, s->tmpls[i], &v);
        if (rc < 0)
            return rc;
        if (rc == 0 && (rc = lb_set(p, CAT_PARSED, dst, v)) != 0)
            return rc;
    }
    return 0;
}

static bool name_matches(const struct logql_name_or_matcher *nm, struct vg_str name)
{
    return vg_str_eq_c(name, nm->m ? nm->m->name : nm->name);
}

static void run_drop(struct logql_pipeline *p, const struct logql_stage *st)
{
    for (size_t i = 0; i < st->names.n; i++) {
        const struct logql_name_or_matcher *nm = &st->names.v[i];
        struct vg_str name = vg_str_c(nm->m ? nm->m->name : nm->name), v = { "", 0 };
        if (nm->m) {
            lb_get(p, name, &v);
            if (!matcher_matches(nm->m, v))
                continue;
        }
        lb_del(p, name);
    }
}

static void run_keep(struct logql_pipeline *p, const struct logql_stage *st)
{
    for (size_t i = 0; i < p->nents;) {
        bool keep = false;
        for (size_t k = 0; k < st->names.n && !keep; k++) {
            const struct logql_name_or_matcher *nm = &st->names.v[k];
            keep = name_matches(nm, p->ents[i].name) &&
                   (!nm->m || matcher_matches(nm->m, p->ents[i].value));
        }
        if (keep)
            i++;
        else
            p->ents[i] = p->ents[--p->nents];
    }
}

/* ---- unwrap ---- */

static int run_unwrap(struct logql_pipeline *p, struct logql_pipeline_out *out)
{
    const struct logql_unwrap *u = p->unwrap;
    struct vg_str v;
    if (!lb_get(p, vg_str_c(u->label), &v) || v.len == 0)
        return 0; /* no value: no sample, as Loki */
    struct vg_err e;
    vg_err_clear(&e);
    int rc;
    int64_t ns;
    uint64_t b;
    double d = 0;
    if (u->conv == LQ_CONV_BYTES) {
        rc = lqscan_bytes(v, &b, &e);
        d = (double)b;
    } else if (u->conv == LQ_CONV_DURATION || u->conv == LQ_CONV_DURATION_SECONDS) {
        rc = lqscan_duration(v, &ns, &e);
        d = (double)ns / 1e9;
    } else {
        rc = lqscan_float(v, &d, &e);
    }
    if (rc) {
        d = 0;
        if (set_error(p, "SampleExtractionErr", e.msg))
            return VG_ENOMEM;
    }
    out->has_value = true;
    out->value = d;
    for (size_t i = 0; i < p->npost; i++)
        if ((rc = eval_filter(p, p->post[i])) != 1)
            return rc;
    return 1;
}

/* ---- building ---- */

static void stage_free(struct stage *s)
{
    for (size_t j = 0; j < s->nalts; j++) {
        matcher_regex_free(s->alts[j].re);
        lqscan_pattern_free(s->alts[j].pat);
        if (s->alts[j].kind == ALT_LIT_CI)
            vg_free((void *)s->alts[j].lit.p);
    }
    vg_free(s->alts);
    matcher_regex_free(s->re);
    lqscan_pattern_free(s->pat);
    for (size_t j = 0; j < s->nparams; j++)
        vg_free((void *)s->params[j].name_ext.p);
    vg_free(s->params);
    lf_free(s->filter);
    template_free(s->tmpl);
    if (s->tmpls)
        for (size_t j = 0; j < s->src->named.n; j++)
            template_free(s->tmpls[j]);
    vg_free(s->tmpls);
}

void logql_pipeline_free(struct logql_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->stages && i < p->nstages; i++)
        stage_free(&p->stages[i]);
    vg_free(p->stages);
    for (size_t i = 0; p->post && i < p->npost; i++)
        lf_free(p->post[i]);
    vg_free(p->post);
    vg_free(p->need);
    vg_arena_free(p->arena);
    vg_free(p->ents);
    vg_free(p->pend);
    vg_free(p->outl);
    vg_free(p->outp);
    vg_buf_free(&p->keybuf);
    vg_buf_free(&p->tbuf);
    vg_free(p);
}

static int nomem(struct vg_err *err)
{
    return vg_err_set(err, VG_ENOMEM, "pipeline: out of memory");
}

static int build_params(struct stage *s, bool json, struct vg_err *err)
{
    const struct logql_stage *st = s->src;
    if (st->named.n == 0)
        return 0;
    if (!(s->params = vg_calloc(st->named.n, sizeof *s->params)))
        return nomem(err);
    for (size_t i = 0; i < st->named.n; i++) {
        const struct logql_named *nm = &st->named.v[i];
        struct param *pr = &s->params[s->nparams++];
        pr->name = vg_str_c(nm->name);
        pr->path = (struct vg_str){ nm->value.p, nm->value.len };
        if (!lqscan_valid_label_name(pr->name))
            return vg_err_set(err, VG_EINVAL, "invalid extracted label name '%s'", nm->name);
        char *ext = vg_malloc(pr->name.len + EXTRACTED.len);
        if (!ext)
            return nomem(err);
        memcpy(ext, pr->name.p, pr->name.len);
        memcpy(ext + pr->name.len, EXTRACTED.p, EXTRACTED.len);
        pr->name_ext = (struct vg_str){ ext, pr->name.len + EXTRACTED.len };
        if (json) {
            int n = lqscan_json_path_parse(pr->path, pr->steps, MAX_JSON_STEPS, err);
            if (n < 0)
                return n;
            pr->nsteps = (size_t)n;
        }
    }
    return 0;
}

static int build_stage(struct stage *s, struct vg_err *err)
{
    const struct logql_stage *st = s->src;
    switch (st->kind) {
    case LQ_STAGE_LINE_FILTER:
        s->negated = logql_line_op_negated(st->line.op);
        if (!(s->alts = vg_calloc(st->line.nalts ? st->line.nalts : 1, sizeof *s->alts)))
            return nomem(err);
        for (size_t j = 0; j < st->line.nalts; j++) {
            int rc = build_alt(&s->alts[j], st->line.op, &st->line.alts[j], err);
            s->nalts = j + 1;
            if (rc)
                return rc;
        }
        return 0;
    case LQ_STAGE_JSON:
    case LQ_STAGE_LOGFMT:
        return build_params(s, st->kind == LQ_STAGE_JSON, err);
    case LQ_STAGE_REGEXP:
        if (!(s->re = matcher_regex_new((struct vg_str){ st->arg.p, st->arg.len }, err)))
            return err->code;
        if (matcher_regex_named_count(s->re) == 0)
            return vg_err_set(err, VG_EINVAL, "at least one named capture must be supplied");
        return 0;
    case LQ_STAGE_PATTERN:
        s->pat = lqscan_pattern_new((struct vg_str){ st->arg.p, st->arg.len }, true, err);
        return s->pat ? 0 : err->code;
    case LQ_STAGE_LABEL_FILTER:
        return (s->filter = lf_build(st->filter, err)) ? 0 : err->code;
    case LQ_STAGE_LINE_FORMAT:
        s->tmpl = template_new((struct vg_str){ st->arg.p, st->arg.len }, "line", err);
        return s->tmpl ? 0 : err->code;
    case LQ_STAGE_LABEL_FORMAT:
        if (!(s->tmpls = vg_calloc(st->named.n ? st->named.n : 1, sizeof *s->tmpls)))
            return nomem(err);
        for (size_t j = 0; j < st->named.n; j++) {
            const struct logql_named *nm = &st->named.v[j];
            for (size_t k = 0; k < j; k++)
                if (strcmp(st->named.v[k].name, nm->name) == 0)
                    return vg_err_set(err, VG_EINVAL,
                                      "multiple label name '%s' not allowed in a single format "
                                      "operation", nm->name);
            if (nm->rename)
                continue;
            s->tmpls[j] = template_new((struct vg_str){ nm->value.p, nm->value.len }, "label", err);
            if (!s->tmpls[j])
                return err->code;
        }
        return 0;
    default:
        return 0;
    }
}

struct logql_pipeline *logql_pipeline_new(const struct logql_node *log,
                                          const struct logql_unwrap *unwrap,
                                          struct vg_err *err)
{
    struct logql_pipeline *p = vg_calloc(1, sizeof *p);
    if (!p) {
        nomem(err);
        return NULL;
    }
    vg_buf_init(&p->keybuf);
    vg_buf_init(&p->tbuf);
    p->unwrap = unwrap;
    p->filters_only = unwrap == NULL;
    size_t n = log->log.nstages;
    if (!(p->arena = vg_arena_new(ARENA_BLOCK)) ||
        (n && !(p->stages = vg_calloc(n, sizeof *p->stages)))) {
        nomem(err);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        struct stage *s = &p->stages[p->nstages++];
        s->src = &log->log.stages[i];
        if (s->src->kind != LQ_STAGE_LINE_FILTER)
            p->filters_only = false;
        if (build_stage(s, err) != 0)
            goto fail;
    }
    if (unwrap && unwrap->npost) {
        if (!(p->post = vg_calloc(unwrap->npost, sizeof *p->post))) {
            nomem(err);
            goto fail;
        }
        for (size_t i = 0; i < unwrap->npost; i++) {
            if (!(p->post[i] = lf_build(unwrap->post[i], err)))
                goto fail;
            p->npost++;
        }
    }
    return p;
fail:
    logql_pipeline_free(p);
    return NULL;
}

/* ---- parser hints ---- */

static int need_add(struct logql_pipeline *p, const char *name)
{
    if (!grow((void **)&p->need, &p->capneed, p->nneed + 1, sizeof *p->need))
        return VG_ENOMEM;
    p->need[p->nneed++] = vg_str_c(name);
    return 0;
}

/* Adds the label names a label filter reads. */
static int need_filter(struct logql_pipeline *p, const struct logql_label_filter *f)
{
    switch (f->kind) {
    case LQ_LF_AND:
    case LQ_LF_OR: return need_filter(p, f->bin.lhs) || need_filter(p, f->bin.rhs) ? VG_ENOMEM : 0;
    case LQ_LF_STRING: return need_add(p, f->m->name);
    default: return need_add(p, f->cmp.name);
    }
}

int logql_pipeline_hint(struct logql_pipeline *p, const struct logql_strings *need)
{
    for (size_t i = 0; i < need->n; i++)
        if (need_add(p, need->v[i]))
            return VG_ENOMEM;
    if (p->unwrap && need_add(p, p->unwrap->label))
        return VG_ENOMEM;
    for (size_t i = 0; p->unwrap && i < p->unwrap->npost; i++)
        if (need_filter(p, p->unwrap->post[i]))
            return VG_ENOMEM;
    /* From the last stage back: a parser is hinted while every stage after it only
     * filters (line filters read no labels; label filters' names are added). */
    for (size_t i = p->nstages; i-- > 0;) {
        struct stage *s = &p->stages[i];
        enum logql_stage_kind k = s->src->kind;
        if (k == LQ_STAGE_LINE_FILTER)
            continue;
        if (k == LQ_STAGE_LABEL_FILTER) {
            if (need_filter(p, s->src->filter))
                return VG_ENOMEM;
            continue;
        }
        if ((k == LQ_STAGE_JSON || k == LQ_STAGE_LOGFMT) && s->nparams == 0)
            s->hinted = true;
        break;
    }
    return 0;
}

/* ---- running ---- */

static int lent_cmp(const void *a, const void *b)
{
    return vg_str_cmp(((const struct lent *)a)->name, ((const struct lent *)b)->name);
}

static int reset_labels(struct logql_pipeline *p, const struct label *stream, size_t nstream,
                        const struct label *meta, size_t nmeta)
{
    p->base = stream;
    p->nbase = nstream;
    p->err = p->details = (struct vg_str){ NULL, 0 };
    if (!grow((void **)&p->ents, &p->ents_cap, nstream + nmeta + 2, sizeof *p->ents))
        return VG_ENOMEM;
    for (size_t i = 0; i < nstream; i++)
        p->ents[i] = (struct lent){ stream[i].name, stream[i].value, CAT_STREAM };
    p->nents = nstream;
    for (size_t i = 0; i < nmeta; i++) {
        struct vg_str name = meta[i].name;
        int rc = dedup_name(p, &name);
        if (rc)
            return rc;
        if (vg_str_eq(name, ERROR_LABEL))
            p->err = meta[i].value;
        else if (vg_str_eq(name, DETAILS_LABEL))
            p->details = meta[i].value;
        else if ((rc = lb_set(p, CAT_META, name, meta[i].value)) != 0)
            return rc;
    }
    return 0;
}

static int finish(struct logql_pipeline *p, struct logql_pipeline_out *out, bool sorted)
{
    bool errs = p->err.len || p->details.len;
    if (errs) { /* label_format may have made labels with these names: ours win */
        long k;
        while ((k = lb_find(p, ERROR_LABEL)) >= 0 || (k = lb_find(p, DETAILS_LABEL)) >= 0)
            p->ents[k] = p->ents[--p->nents];
        if (p->err.len)
            p->ents[p->nents++] = (struct lent){ ERROR_LABEL, p->err, CAT_PARSED };
        if (p->details.len)
            p->ents[p->nents++] = (struct lent){ DETAILS_LABEL, p->details, CAT_PARSED };
    }
    if (!sorted || errs)
        qsort(p->ents, p->nents, sizeof *p->ents, lent_cmp);
    if (!grow((void **)&p->outl, &p->outl_cap, p->nents, sizeof *p->outl) ||
        !grow((void **)&p->outp, &p->outp_cap, p->nents, sizeof *p->outp))
        return VG_ENOMEM;
    size_t n = 0, np = 0;
    struct vg_str skip = p->unwrap ? vg_str_c(p->unwrap->label) : (struct vg_str){ NULL, 0 };
    for (size_t i = 0; i < p->nents; i++) {
        const struct lent *e = &p->ents[i];
        if (p->unwrap && vg_str_eq(e->name, skip))
            continue;
        p->outl[n++] = (struct label){ e->name, e->value };
        if (e->cat == CAT_PARSED)
            p->outp[np++] = (struct label){ e->name, e->value };
    }
    out->line = p->line;
    out->labels = p->outl;
    out->nlabels = n;
    out->parsed = p->outp;
    out->nparsed = np;
    out->labels_hash = labels_hash(p->outl, n);
    return 1;
}

int logql_pipeline_process(struct logql_pipeline *p, int64_t t, struct vg_str line,
                           const struct label *stream, size_t nstream,
                           const struct label *meta, size_t nmeta,
                           struct logql_pipeline_out *out)
{
    out->has_value = false;
    out->value = 0;
    size_t i = 0;
    /* Leading line filters first: most entries stop here, before any label work. */
    for (; i < p->nstages && p->stages[i].src->kind == LQ_STAGE_LINE_FILTER; i++) {
        const struct stage *s = &p->stages[i];
        bool any = false;
        for (size_t j = 0; j < s->nalts && !any; j++) {
            int r = alt_matches(&s->alts[j], line);
            if (r < 0)
                return r;
            any = r > 0;
        }
        if (any == s->negated)
            return 0;
    }
    vg_arena_reset(p->arena);
    p->line = line;
    p->t = t;
    int rc = reset_labels(p, stream, nstream, meta, nmeta);
    if (rc)
        return rc;
    for (; i < p->nstages; i++) {
        const struct stage *s = &p->stages[i];
        const struct logql_stage *st = s->src;
        switch (st->kind) {
        case LQ_STAGE_LINE_FILTER: {
            bool any = false;
            for (size_t j = 0; j < s->nalts && !any; j++) {
                int r = alt_matches(&s->alts[j], p->line);
                if (r < 0)
                    return r;
                any = r > 0;
            }
            if (any == s->negated)
                return 0;
            break;
        }
        case LQ_STAGE_JSON:
        case LQ_STAGE_LOGFMT:
            p->hinting = s->hinted;
            rc = st->kind == LQ_STAGE_JSON ? run_json(p, s) : run_logfmt(p, s);
            p->hinting = false;
            break;
        case LQ_STAGE_REGEXP:
            rc = matcher_regex_groups(s->re, p->line, set_capture, p);
            rc = rc > 0 ? 0 : rc;
            break;
        case LQ_STAGE_PATTERN: rc = lqscan_pattern_match(s->pat, p->line, set_capture, p); break;
        case LQ_STAGE_UNPACK: rc = run_unpack(p); break;
        case LQ_STAGE_LABEL_FILTER:
            rc = eval_filter(p, s->filter);
            if (rc == 0)
                return 0;
            rc = rc < 0 ? rc : 0;
            break;
        case LQ_STAGE_LINE_FORMAT: {
            struct vg_str v;
            rc = run_template(p, s->tmpl, &v);
            if (rc == 0)
                p->line = v;
            rc = rc < 0 ? rc : 0;
            break;
        }
        case LQ_STAGE_LABEL_FORMAT: rc = run_label_format(p, s); break;
        case LQ_STAGE_DECOLORIZE: {
            char *m = vg_arena_alloc(p->arena, p->line.len ? p->line.len : 1);
            if (!m)
                return VG_ENOMEM;
            p->line = (struct vg_str){ m, lqscan_decolorize(p->line, m) };
            break;
        }
        case LQ_STAGE_DROP: run_drop(p, st); break;
        case LQ_STAGE_KEEP: run_keep(p, st); break;
        }
        if (rc)
            return rc < 0 ? rc : VG_ENOMEM;
    }
    if (p->unwrap && (rc = run_unwrap(p, out)) != 1)
        return rc;
    if (!grow((void **)&p->ents, &p->ents_cap, p->nents + 2, sizeof *p->ents))
        return VG_ENOMEM;
    return finish(p, out, p->filters_only && nmeta == 0);
}

bool logql_pipeline_filters_only(const struct logql_pipeline *p)
{
    return p->filters_only;
}

size_t logql_pipeline_needles(const struct logql_node *log, struct vg_str *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < log->log.nstages && n < cap; i++) {
        const struct logql_stage *st = &log->log.stages[i];
        if (st->kind == LQ_STAGE_LINE_FORMAT || st->kind == LQ_STAGE_DECOLORIZE ||
            st->kind == LQ_STAGE_UNPACK)
            break; /* later filters see another line than the stored one */
        if (st->kind != LQ_STAGE_LINE_FILTER || st->line.nalts != 1 || st->line.alts[0].ip)
            continue;
        struct vg_str v = { st->line.alts[0].value.p, st->line.alts[0].value.len };
        if (v.len && (st->line.op == LQ_LINE_CONTAINS ||
                      (st->line.op == LQ_LINE_MATCH && plain_literal(v))))
            out[n++] = v;
    }
    return n;
}

bool logql_pipeline_needles_exact(const struct logql_node *log, size_t cap)
{
    struct vg_str tmp[16];
    size_t n = log->log.nstages;
    if (n > cap || n > sizeof tmp / sizeof tmp[0])
        return false;
    return logql_pipeline_needles(log, tmp, n) == n;
}
