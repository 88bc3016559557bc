/* relabel: Prometheus's relabel rules (see relabel.h for the config shape and the
 * semantics matched). Regexes are matchers from storage/tsdb/matcher.h, which compile
 * patterns fully anchored with DOTALL exactly as Prometheus does ("^(?s:re)$") and expand
 * replacement templates as Go's regexp.Expand. hashmod needs MD5 (RFC 1321), written
 * out below so no crypto library is pulled in for 16 bytes. */
#include "relabel.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/tsdb/matcher.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const action_names[] = {
    [RELABEL_REPLACE] = "replace",     [RELABEL_KEEP] = "keep",
    [RELABEL_DROP] = "drop",           [RELABEL_KEEPEQUAL] = "keepequal",
    [RELABEL_DROPEQUAL] = "dropequal", [RELABEL_HASHMOD] = "hashmod",
    [RELABEL_LABELMAP] = "labelmap",   [RELABEL_LABELDROP] = "labeldrop",
    [RELABEL_LABELKEEP] = "labelkeep", [RELABEL_LOWERCASE] = "lowercase",
    [RELABEL_UPPERCASE] = "uppercase",
};
#define NACTIONS (sizeof action_names / sizeof action_names[0])

const char *relabel_action_name(enum relabel_action a)
{
    return (unsigned)a < NACTIONS ? action_names[a] : NULL;
}

bool relabel_valid_label_name(struct vg_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Prometheus's check for a replace target: label-name characters and $-references
 * ("$1", "${1}", "$name", "${name}") that expand into a name. */
static bool valid_replace_target(const char *t)
{
    if (!*t)
        return false;
    for (const char *p = t; *p;) {
        if (*p == '$') {
            p++;
            if (*p == '{') {
                const char *q = p + 1;
                while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                       (*q >= '0' && *q <= '9') || *q == '_')
                    q++;
                if (q == p + 1 || *q != '}')
                    return false;
                p = q + 1;
                continue;
            }
            const char *q = p;
            while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                   (*q >= '0' && *q <= '9') || *q == '_')
                q++;
            if (q == p)
                return false;
            p = q;
            continue;
        }
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (p > t && c >= '0' && c <= '9')))
            return false;
        p++;
    }
    return true;
}

/* ---------------------------------------------------------------- parsing */

static void rule_free(struct relabel_rule *r)
{
    for (size_t i = 0; i < r->nsource; i++)
        vg_free(r->source[i]);
    vg_free(r->source);
    vg_free(r->separator);
    vg_free(r->regex);
    matcher_free(r->re);
    vg_free(r->target);
    vg_free(r->replacement);
}

void relabel_rules_free(struct relabel_rules *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        rule_free(&r->v[i]);
    vg_free(r->v);
    r->v = NULL;
    r->n = 0;
}

static const char *const rule_keys[] = { "source_labels", "separator", "regex", "target_label",
                                         "replacement", "modulus", "action", NULL };

static int parse_rule(const struct config_node *m, const char *where, struct relabel_rule *r,
                      struct vg_err *err)
{
    int rc;
    if ((rc = config_node_check_keys(m, where, rule_keys, err)) < 0)
        return rc;
    const char *sep = ";", *regex = "(.*)", *target = "", *repl = "$1", *action = "replace";
    int64_t modulus = 0;
    const char **src = NULL;
    size_t nsrc = 0;
    if ((rc = config_node_str(m, where, "separator", &sep, err)) < 0 ||
        (rc = config_node_str(m, where, "regex", &regex, err)) < 0 ||
        (rc = config_node_str(m, where, "target_label", &target, err)) < 0 ||
        (rc = config_node_str(m, where, "replacement", &repl, err)) < 0 ||
        (rc = config_node_str(m, where, "action", &action, err)) < 0 ||
        (rc = config_node_int(m, where, "modulus", 0, INT64_MAX, &modulus, err)) < 0 ||
        (rc = config_node_strlist(m, where, "source_labels", &src, &nsrc, err)) < 0)
        return rc;
    const struct config_node *at = config_node_get(m, "action");
    size_t a = 0;
    while (a < NACTIONS && strcmp(action_names[a], action) != 0)
        a++;
    /* Prometheus lower-cases the action before matching it. */
    if (a == NACTIONS) {
        char low[32];
        size_t k = 0;
        for (; action[k] && k + 1 < sizeof low; k++)
            low[k] = (char)(action[k] >= 'A' && action[k] <= 'Z' ? action[k] + 32 : action[k]);
        low[k] = '\0';
        a = 0;
        while (a < NACTIONS && strcmp(action_names[a], low) != 0)
            a++;
    }
    if (a == NACTIONS) {
        vg_free(src);
        return config_node_err(err, at, "%s.action: unknown relabel action \"%s\" (valid: "
                               "replace, keep, drop, keepequal, dropequal, hashmod, labelmap, "
                               "labeldrop, labelkeep, lowercase, uppercase)", where, action);
    }
    r->action = (enum relabel_action)a;
    for (size_t i = 0; i < nsrc; i++)
        if (!relabel_valid_label_name(vg_str_c(src[i]))) {
            int rc2 = config_node_err(err, config_node_get(m, "source_labels"),
                                      "%s.source_labels: \"%s\" is not a valid label name",
                                      where, src[i]);
            vg_free(src);
            return rc2;
        }
    const struct config_node *where_node = at ? at : m;
    bool needs_target = r->action == RELABEL_REPLACE || r->action == RELABEL_HASHMOD ||
                        r->action == RELABEL_LOWERCASE || r->action == RELABEL_UPPERCASE ||
                        r->action == RELABEL_KEEPEQUAL || r->action == RELABEL_DROPEQUAL;
    const char *msg = NULL;
    if (needs_target && !*target)
        msg = "action requires 'target_label'";
    else if (r->action == RELABEL_REPLACE && !valid_replace_target(target))
        msg = "target_label is not a valid label name or template";
    else if (needs_target && r->action != RELABEL_REPLACE &&
             !relabel_valid_label_name(vg_str_c(target)))
        msg = "target_label is not a valid label name";
    else if (r->action == RELABEL_HASHMOD && modulus == 0)
        msg = "action requires a non-zero 'modulus'";
    else if ((r->action == RELABEL_LABELDROP || r->action == RELABEL_LABELKEEP) &&
             (nsrc || *target || modulus || strcmp(sep, ";") != 0 || strcmp(repl, "$1") != 0))
        msg = "action requires only 'regex', and no other fields";
    else if ((r->action == RELABEL_KEEPEQUAL || r->action == RELABEL_DROPEQUAL) &&
             (strcmp(regex, "(.*)") != 0 || modulus || strcmp(sep, ";") != 0 ||
              strcmp(repl, "$1") != 0))
        msg = "action requires only 'source_labels' and 'target_label', and no other fields";
    if (msg) {
        vg_free(src);
        return config_node_err(err, where_node, "%s: %s %s", where, action_names[a], msg);
    }
    r->modulus = (uint64_t)modulus;
    r->source = nsrc ? vg_calloc(nsrc, sizeof *r->source) : NULL;
    r->nsource = r->source ? nsrc : 0;
    r->separator = vg_strdup(sep);
    r->regex = vg_strdup(regex);
    r->target = vg_strdup(target);
    r->replacement = vg_strdup(repl);
    bool oom = (nsrc && !r->source) || !r->separator || !r->regex || !r->target ||
               !r->replacement;
    for (size_t i = 0; !oom && i < nsrc; i++)
        oom = !(r->source[i] = vg_strdup(src[i]));
    vg_free(src);
    if (oom)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    struct vg_err merr;
    r->re = matcher_new(MATCH_RE, VG_STR("relabel"), vg_str_c(regex), &merr);
    if (!r->re) {
        if (merr.code == VG_ENOMEM)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        return config_node_err(err, config_node_get(m, "regex"), "%s.regex: %s", where,
                               merr.msg);
    }
    return 0;
}

int relabel_parse(const struct config_node *node, const char *where, struct relabel_rules *out,
                  struct vg_err *err)
{
    out->v = NULL;
    out->n = 0;
    if (!node || (node->type == CONFIG_NODE_SCALAR && !*node->value && !node->quoted))
        return 0;
    if (node->type != CONFIG_NODE_SEQ)
        return config_node_err(err, node, "%s: expected a list of relabel rules", where);
    if (node->n == 0)
        return 0;
    out->v = vg_calloc(node->n, sizeof *out->v);
    if (!out->v)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < node->n; i++) {
        char w[160];
        snprintf(w, sizeof w, "%s[%zu]", where, i);
        out->n = i + 1;
        int rc = parse_rule(node->items[i], w, &out->v[i], err);
        if (rc < 0) {
            relabel_rules_free(out);
            return rc;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- label sets */

void relabel_set_init(struct relabel_set *s, struct vg_arena *arena)
{
    memset(s, 0, sizeof *s);
    s->arena = arena;
}

void relabel_set_clear(struct relabel_set *s) { s->n = 0; }

static ssize_t find(const struct relabel_set *s, struct vg_str name)
{
    for (size_t i = 0; i < s->n; i++)
        if (vg_str_eq(s->v[i].name, name))
            return (ssize_t)i;
    return -1;
}

struct vg_str relabel_set_get(const struct relabel_set *s, struct vg_str name)
{
    ssize_t i = find(s, name);
    return i < 0 ? (struct vg_str){ NULL, 0 } : s->v[i].value;
}

void relabel_set_del(struct relabel_set *s, struct vg_str name)
{
    ssize_t i = find(s, name);
    if (i >= 0)
        s->v[i] = s->v[--s->n];
}

int relabel_set_put(struct relabel_set *s, struct vg_str name, struct vg_str value)
{
    if (value.len == 0) {
        relabel_set_del(s, name);
        return 0;
    }
    ssize_t i = find(s, name);
    if (i >= 0) {
        s->v[i].value = value;
        return 0;
    }
    if (s->n == s->cap) {
        /* The array lives in the arena: a set is rebuilt per sample, so growth by
         * doubling wastes at most half of what one label set needs. */
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct label *g = vg_arena_alloc(s->arena, cap * sizeof *g);
        if (!g)
            return VG_ENOMEM;
        if (s->n)
            memcpy(g, s->v, s->n * sizeof *g);
        s->v = g;
        s->cap = cap;
    }
    s->v[s->n++] = (struct label){ name, value };
    return 0;
}

void relabel_set_sort(struct relabel_set *s) { labels_sort(s->v, s->n); }

/* ---------------------------------------------------------------- MD5 (RFC 1321) */

static uint32_t rol(uint32_t x, unsigned c) { return (x << c) | (x >> (32 - c)); }

static void md5_block(uint32_t h[4], const unsigned char *p)
{
    static const uint32_t k[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    };
    static const unsigned char sh[16] = { 7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23,
                                          6, 10, 15, 21 };
    uint32_t w[16];
    for (size_t i = 0; i < 16; i++)
        w[i] = (uint32_t)p[i * 4] | (uint32_t)p[i * 4 + 1] << 8 | (uint32_t)p[i * 4 + 2] << 16 |
               (uint32_t)p[i * 4 + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) % 16;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) % 16;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) % 16;
        }
        uint32_t t = d;
        d = c;
        c = b;
        b = b + rol(a + f + k[i] + w[g], sh[(i / 16) * 4 + i % 4]);
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

/* The last 8 bytes of MD5(p[0..n)) as a big-endian integer, as Prometheus's hashmod. */
static uint64_t md5_tail(const char *p, size_t n)
{
    uint32_t h[4] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476 };
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        md5_block(h, (const unsigned char *)p + i);
    unsigned char last[128] = { 0 };
    size_t rest = n - i;
    memcpy(last, p + i, rest);
    last[rest] = 0x80;
    size_t total = rest + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++)
        last[total - 8 + k] = (unsigned char)(bits >> (8 * k));
    md5_block(h, last);
    if (total == 128)
        md5_block(h, last + 64);
    unsigned char d[16];
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 4; j++)
            d[k * 4 + j] = (unsigned char)(h[k] >> (8 * j));
    uint64_t v = 0;
    for (int k = 8; k < 16; k++)
        v = v << 8 | d[k];
    return v;
}

/* ---------------------------------------------------------------- applying */

static struct vg_str arena_copy(struct vg_arena *a, const char *p, size_t n)
{
    char *d = vg_arena_strndup(a, p, n);
    return (struct vg_str){ d, d ? n : 0 };
}

/* Copies the names of s (a snapshot for rules that change the set while walking it). */
static struct label *snapshot(struct relabel_set *s)
{
    struct label *c = vg_arena_alloc(s->arena, (s->n ? s->n : 1) * sizeof *c);
    if (c && s->n)
        memcpy(c, s->v, s->n * sizeof *c);
    return c;
}

static int apply_rule(const struct relabel_rule *r, struct relabel_set *s, struct vg_buf *tmp)
{
    vg_buf_reset(tmp);
    for (size_t i = 0; i < r->nsource; i++) {
        if (i)
            vg_buf_puts(tmp, r->separator);
        struct vg_str v = relabel_set_get(s, vg_str_c(r->source[i]));
        vg_buf_append(tmp, v.p, v.len);
    }
    if (vg_buf_failed(tmp))
        return VG_ENOMEM;
    struct vg_str val = { tmp->len ? tmp->p : "", tmp->len };
    struct vg_str target = vg_str_c(r->target);
    switch (r->action) {
    case RELABEL_DROP:
        return matcher_matches(r->re, val) ? 0 : 1;
    case RELABEL_KEEP:
        return matcher_matches(r->re, val) ? 1 : 0;
    case RELABEL_DROPEQUAL:
        return vg_str_eq(relabel_set_get(s, target), val) ? 0 : 1;
    case RELABEL_KEEPEQUAL:
        return vg_str_eq(relabel_set_get(s, target), val) ? 1 : 0;
    case RELABEL_REPLACE: {
        struct vg_buf out;
        vg_buf_init(&out);
        int m = matcher_expand(r->re, val, target, &out);
        if (m <= 0 || vg_buf_failed(&out)) {
            vg_buf_free(&out);
            return m < 0 || vg_buf_failed(&out) ? VG_ENOMEM : 1;
        }
        struct vg_str name = arena_copy(s->arena, out.p ? out.p : "", out.len);
        vg_buf_reset(&out);
        m = matcher_expand(r->re, val, vg_str_c(r->replacement), &out);
        struct vg_str value = m == 1 ? arena_copy(s->arena, out.p ? out.p : "", out.len)
                                     : (struct vg_str){ "", 0 };
        bool failed = m < 0 || vg_buf_failed(&out) || !name.p || (m == 1 && !value.p);
        vg_buf_free(&out);
        if (failed)
            return VG_ENOMEM;
        if (!relabel_valid_label_name(name))
            return 1;
        return relabel_set_put(s, name, value) < 0 ? VG_ENOMEM : 1;
    }
    case RELABEL_LOWERCASE:
    case RELABEL_UPPERCASE: {
        struct vg_str c = arena_copy(s->arena, val.p, val.len);
        if (!c.p)
            return VG_ENOMEM;
        char *w = (char *)c.p;
        for (size_t i = 0; i < c.len; i++) {
            if (r->action == RELABEL_LOWERCASE && w[i] >= 'A' && w[i] <= 'Z')
                w[i] = (char)(w[i] + 32);
            else if (r->action == RELABEL_UPPERCASE && w[i] >= 'a' && w[i] <= 'z')
                w[i] = (char)(w[i] - 32);
        }
        return relabel_set_put(s, target, c) < 0 ? VG_ENOMEM : 1;
    }
    case RELABEL_HASHMOD: {
        char num[24];
        int n = snprintf(num, sizeof num, "%" PRIu64, md5_tail(val.p, val.len) % r->modulus);
        struct vg_str c = arena_copy(s->arena, num, (size_t)n);
        if (!c.p)
            return VG_ENOMEM;
        return relabel_set_put(s, target, c) < 0 ? VG_ENOMEM : 1;
    }
    case RELABEL_LABELMAP: {
        size_t n = s->n;
        struct label *snap = snapshot(s);
        if (!snap)
            return VG_ENOMEM;
        struct vg_buf out;
        vg_buf_init(&out);
        int rc = 1;
        for (size_t i = 0; i < n && rc == 1; i++) {
            vg_buf_reset(&out);
            int m = matcher_expand(r->re, snap[i].name, vg_str_c(r->replacement), &out);
            if (m < 0 || vg_buf_failed(&out)) {
                rc = VG_ENOMEM;
            } else if (m == 1) {
                struct vg_str name = arena_copy(s->arena, out.p ? out.p : "", out.len);
                if (!name.p || relabel_set_put(s, name, snap[i].value) < 0)
                    rc = VG_ENOMEM;
            }
        }
        vg_buf_free(&out);
        return rc;
    }
    case RELABEL_LABELDROP:
    case RELABEL_LABELKEEP: {
        size_t n = s->n;
        struct label *snap = snapshot(s);
        if (!snap)
            return VG_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (matcher_matches(r->re, snap[i].name) == (r->action == RELABEL_LABELDROP))
                relabel_set_del(s, snap[i].name);
        return 1;
    }
    }
    return 1;
}

int relabel_apply(const struct relabel_rules *r, struct relabel_set *s)
{
    if (!r || r->n == 0)
        return 1;
    struct vg_buf tmp;
    vg_buf_init(&tmp);
    int rc = 1;
    for (size_t i = 0; i < r->n && rc == 1; i++)
        rc = apply_rule(&r->v[i], s, &tmp);
    vg_buf_free(&tmp);
    return rc;
}
