/* route: the notifications config, matchers and the route tree (see route.h). The
 * dispatcher (groups, timers, escalation) lives in route_group.c. */
#include "route.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/tsdb/matcher.h"
#include "../config_node.h"
#include "slack.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WHERE_MAX 160
#define MAX_DEPTH 16

/* Formats a config path for messages ("notifications.route.routes[2]"); long paths are
 * cut, which only shortens a message. */
static void wfmt(char out[WHERE_MAX], const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wfmt(char out[WHERE_MAX], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, WHERE_MAX, fmt, ap);
    va_end(ap);
}

/* ---- matchers ---- */

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

/* Undoes Go string escapes of a double-quoted value starting after the quote. Returns
 * the bytes consumed including the closing quote, or 0 when it is not closed. */
static size_t unquote(const char *s, char *out, size_t *olen)
{
    size_t i = 0, o = 0;
    for (; s[i]; i++) {
        if (s[i] == '"') {
            *olen = o;
            return i + 1;
        }
        if (s[i] == '\\') {
            char e = s[++i];
            if (!e)
                return 0;
            out[o++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
        } else {
            out[o++] = s[i];
        }
    }
    return 0;
}

struct matcher *route_matcher_parse(const char *s, struct vg_err *err)
{
    const char *p = s;
    while (*p == ' ')
        p++;
    const char *name = p;
    if (*p == '"') /* quoted label names are legal in Alertmanager 0.27 syntax */
        name++;
    const char *q = name;
    while (name_char(*q, q == name))
        q++;
    size_t nlen = (size_t)(q - name);
    if (!nlen)
        return vg_err_set(err, VG_EINVAL, "matcher \"%s\": expected a label name", s), NULL;
    if (*p == '"' && *q++ != '"')
        return vg_err_set(err, VG_EINVAL, "matcher \"%s\": unclosed label name", s), NULL;
    while (*q == ' ')
        q++;
    enum matcher_op op;
    if (!strncmp(q, "=~", 2))
        op = MATCH_RE, q += 2;
    else if (!strncmp(q, "!~", 2))
        op = MATCH_NRE, q += 2;
    else if (!strncmp(q, "!=", 2))
        op = MATCH_NEQ, q += 2;
    else if (*q == '=')
        op = MATCH_EQ, q += 1;
    else
        return vg_err_set(err, VG_EINVAL,
                          "matcher \"%s\": expected one of = != =~ !~ after the name", s),
               NULL;
    while (*q == ' ')
        q++;
    size_t vcap = strlen(q) + 1, vlen = 0;
    char *val = vg_malloc(vcap);
    if (!val)
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    const char *end;
    if (*q == '"') {
        size_t used = unquote(q + 1, val, &vlen);
        if (!used) {
            vg_free(val);
            return vg_err_set(err, VG_EINVAL, "matcher \"%s\": unclosed quoted value", s),
                   NULL;
        }
        end = q + 1 + used;
    } else {
        vlen = strlen(q);
        while (vlen && q[vlen - 1] == ' ')
            vlen--;
        memcpy(val, q, vlen);
        end = q + vlen;
    }
    while (*end == ' ')
        end++;
    if (*end) {
        vg_free(val);
        return vg_err_set(err, VG_EINVAL, "matcher \"%s\": unexpected text after the value",
                          s),
               NULL;
    }
    struct matcher *m = matcher_new(op, (struct vg_str){ name, nlen },
                                    (struct vg_str){ val, vlen }, err);
    vg_free(val);
    if (!m)
        vg_err_prefix(err, "matcher \"%s\"", s);
    return m;
}

bool route_matchers_match(struct matcher *const *ms, size_t n, const struct label *ls,
                          size_t nls)
{
    for (size_t i = 0; i < n; i++) {
        struct vg_str v = labels_get(ls, nls, ms[i]->name);
        if (!matcher_matches(ms[i], v.p ? v : VG_STR("")))
            return false;
    }
    return true;
}

uint64_t route_fingerprint(const struct label *ls, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++) {
        const struct vg_str parts[2] = { ls[i].name, ls[i].value };
        for (int k = 0; k < 2; k++) {
            for (size_t j = 0; j < parts[k].len; j++) {
                h ^= (unsigned char)parts[k].p[j];
                h *= 1099511628211ULL;
            }
            h ^= 0xff;
            h *= 1099511628211ULL;
        }
    }
    return h;
}

void route_rfc3339(struct vg_buf *b, int64_t ms)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        vg_buf_puts(b, "0001-01-01T00:00:00.000Z");
        return;
    }
    vg_buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* ---- config ---- */

static void matchers_free(struct matcher **ms, size_t n)
{
    for (size_t i = 0; i < n; i++)
        matcher_free(ms[i]);
    vg_free(ms);
}

static void strs_free(char **s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vg_free(s[i]);
    vg_free(s);
}

static void node_free(struct route_node *r)
{
    for (size_t i = 0; i < r->nchildren; i++)
        node_free(&r->children[i]);
    vg_free(r->children);
    vg_free(r->id);
    vg_free(r->receiver);
    strs_free(r->group_by, r->ngroup_by);
    matchers_free(r->matchers, r->nmatchers);
    vg_free(r->esc_receiver);
}

static void integration_free(struct route_integration *it)
{
    char *strs[] = { it->url, it->channel, it->username, it->title, it->text, it->to,
                     it->from, it->smarthost, it->hello, it->auth_username, it->auth_password };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        vg_free(strs[i]);
    tls_config_free(&it->tls);
    for (size_t i = 0; i < it->nheaders; i++) {
        vg_free(it->headers[i].name);
        vg_free(it->headers[i].value);
    }
    vg_free(it->headers);
}

void route_config_free(struct route_config *c)
{
    if (!c)
        return;
    node_free(&c->root);
    for (size_t i = 0; i < c->nreceivers; i++) {
        for (size_t j = 0; j < c->receivers[i].nints; j++)
            integration_free(&c->receivers[i].ints[j]);
        vg_free(c->receivers[i].ints);
        vg_free(c->receivers[i].name);
    }
    vg_free(c->receivers);
    for (size_t i = 0; i < c->ninhibits; i++) {
        matchers_free(c->inhibits[i].source, c->inhibits[i].nsource);
        matchers_free(c->inhibits[i].target, c->inhibits[i].ntarget);
        strs_free(c->inhibits[i].equal, c->inhibits[i].nequal);
    }
    vg_free(c->inhibits);
    vg_free(c->external_url);
    vg_free(c);
}

const struct route_receiver *route_receiver_find(const struct route_config *c,
                                                 const char *name)
{
    for (size_t i = 0; c && name && i < c->nreceivers; i++)
        if (!strcmp(c->receivers[i].name, name))
            return &c->receivers[i];
    return NULL;
}

static int oom(struct vg_err *err)
{
    return vg_err_set(err, VG_ENOMEM, "out of memory");
}

/* An optional string key copied into *out (left NULL when absent). */
static int need_str(const struct config_node *map, const char *where, const char *key,
                    char **out, struct vg_err *err)
{
    int rc = config_node_strdup(map, where, key, out, err);
    if (rc == 0 && (!*out || !**out))
        return config_node_err(err, map, "%s: %s is required", where, key);
    return rc;
}

static int dup_strlist(const struct config_node *map, const char *where, const char *key,
                       char ***out, size_t *n, struct vg_err *err)
{
    const char **list;
    int rc = config_node_strlist(map, where, key, &list, n, err);
    if (rc < 0 || !*n)
        return rc;
    *out = vg_calloc(*n, sizeof **out);
    for (size_t i = 0; *out && i < *n; i++)
        if (!((*out)[i] = vg_strdup(list[i]))) {
            strs_free(*out, i);
            *out = NULL;
        }
    vg_free(list);
    if (!*out) {
        *n = 0;
        return oom(err);
    }
    return 0;
}

/* matchers: [...] plus the older match: {k: v} and match_re: {k: re} maps. */
static int parse_matchers(const struct config_node *map, const char *where, const char *key,
                          bool legacy, struct matcher ***out, size_t *n, struct vg_err *err)
{
    const struct config_node *seq = config_node_get(map, key);
    const struct config_node *eq = legacy ? config_node_get(map, "match") : NULL;
    const struct config_node *re = legacy ? config_node_get(map, "match_re") : NULL;
    if (seq && seq->type != CONFIG_NODE_SEQ)
        return config_node_err(err, seq, "%s.%s: expected a list of matchers", where, key);
    size_t cap = (seq ? seq->n : 0) + (eq && eq->type == CONFIG_NODE_MAP ? eq->n : 0) +
                 (re && re->type == CONFIG_NODE_MAP ? re->n : 0);
    int rc;
    if ((eq && (rc = config_node_check_strmap(eq, where, err)) < 0) ||
        (re && (rc = config_node_check_strmap(re, where, err)) < 0))
        return rc;
    *out = NULL;
    *n = 0;
    if (!cap)
        return 0;
    if (!(*out = vg_calloc(cap, sizeof **out)))
        return oom(err);
    for (size_t i = 0; seq && i < seq->n; i++) {
        const struct config_node *it = seq->items[i];
        if (it->type != CONFIG_NODE_SCALAR)
            return config_node_err(err, it, "%s.%s[%zu]: expected a string", where, key, i);
        struct vg_err merr;
        if (!((*out)[*n] = route_matcher_parse(it->value, &merr)))
            return merr.code == VG_ENOMEM ? oom(err)
                                          : config_node_err(err, it, "%s.%s[%zu]: %s", where,
                                                            key, i, merr.msg);
        (*n)++;
    }
    for (int k = 0; k < 2; k++) {
        const struct config_node *m = k ? re : eq;
        for (size_t i = 0; m && i < m->n; i++) {
            struct vg_err merr;
            const char *v = m->items[i]->value;
            (*out)[*n] = matcher_new(k ? MATCH_RE : MATCH_EQ, vg_str_c(m->keys[i]),
                                     vg_str_c(v), &merr);
            if (!(*out)[*n])
                return config_node_err(err, m->items[i], "%s.%s.%s: %s", where,
                                       k ? "match_re" : "match", m->keys[i], merr.msg);
            (*n)++;
        }
    }
    return 0;
}

static void matcher_text(struct vg_buf *b, struct matcher *const *ms, size_t n)
{
    vg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_printf(b, "%s%s", ms[i]->name, matcher_op_str(ms[i]->op));
        vg_buf_json_str(b, ms[i]->value, ms[i]->value_len);
    }
    vg_buf_putc(b, '}');
}

static int parse_route(const struct config_node *m, const char *where,
                       const struct route_node *parent, int depth, struct route_node *r,
                       struct vg_err *err)
{
    static const char *const keys[] = {
        "receiver", "group_by", "group_wait", "group_interval", "repeat_interval",
        "matchers", "match", "match_re", "continue", "escalate", "routes", NULL,
    };
    int rc = config_node_check_keys(m, where, keys, err);
    if (rc < 0)
        return rc;
    if (depth > MAX_DEPTH)
        return config_node_err(err, m, "%s: routes nest deeper than %d levels", where,
                               MAX_DEPTH);
    if ((rc = config_node_strdup(m, where, "receiver", &r->receiver, err)) < 0)
        return rc;
    if (!r->receiver && parent && !(r->receiver = vg_strdup(parent->receiver)))
        return oom(err);
    if (!r->receiver || !r->receiver[0])
        return config_node_err(err, m, "%s: receiver is required on the root route", where);
    if (config_node_get(m, "group_by")) {
        if ((rc = dup_strlist(m, where, "group_by", &r->group_by, &r->ngroup_by, err)) < 0)
            return rc;
        for (size_t i = 0; i < r->ngroup_by; i++)
            r->group_by_all |= !strcmp(r->group_by[i], "...");
        if (r->group_by_all && r->ngroup_by > 1)
            return config_node_err(err, config_node_get(m, "group_by"),
                                   "%s.group_by: '...' must be the only item", where);
    } else if (parent) {
        r->group_by_all = parent->group_by_all;
        if (parent->ngroup_by && !(r->group_by = vg_calloc(parent->ngroup_by, sizeof(char *))))
            return oom(err);
        for (size_t i = 0; i < parent->ngroup_by; i++, r->ngroup_by++)
            if (!(r->group_by[i] = vg_strdup(parent->group_by[i])))
                return oom(err);
    }
    r->group_wait_ms = parent ? parent->group_wait_ms : 30000;
    r->group_interval_ms = parent ? parent->group_interval_ms : 300000;
    r->repeat_interval_ms = parent ? parent->repeat_interval_ms : 4 * 3600000LL;
    if ((rc = config_node_duration(m, where, "group_wait", 0, &r->group_wait_ms, err)) < 0 ||
        (rc = config_node_duration(m, where, "group_interval", 1, &r->group_interval_ms,
                                   err)) < 0 ||
        (rc = config_node_duration(m, where, "repeat_interval", 1, &r->repeat_interval_ms,
                                   err)) < 0 ||
        (rc = config_node_bool(m, where, "continue", &r->cont, err)) < 0 ||
        (rc = parse_matchers(m, where, "matchers", true, &r->matchers, &r->nmatchers, err)) < 0)
        return rc;
    if (!parent && r->nmatchers)
        return config_node_err(err, m, "%s: the root route must not have matchers", where);
    if (!parent && r->cont)
        return config_node_err(err, m, "%s: the root route must not set continue", where);
    struct vg_buf id;
    vg_buf_init(&id);
    if (parent)
        vg_buf_printf(&id, "%s/", parent->id);
    matcher_text(&id, r->matchers, r->nmatchers);
    if (!vg_buf_cstr(&id))
        return oom(err);
    r->id = vg_buf_steal(&id, NULL);
    const struct config_node *esc = config_node_get(m, "escalate");
    if (esc) {
        static const char *const ekeys[] = { "after", "receiver", NULL };
        char ew[WHERE_MAX];
        wfmt(ew, "%s.escalate", where);
        if ((rc = config_node_check_keys(esc, ew, ekeys, err)) < 0 ||
            (rc = need_str(esc, ew, "receiver", &r->esc_receiver, err)) < 0)
            return rc;
        if (!config_node_get(esc, "after"))
            return config_node_err(err, esc, "%s: after is required", ew);
        if ((rc = config_node_duration(esc, ew, "after", 1, &r->esc_after_ms, err)) < 0)
            return rc;
    }
    const struct config_node *kids = config_node_get(m, "routes");
    if (!kids)
        return 0;
    if (kids->type != CONFIG_NODE_SEQ)
        return config_node_err(err, kids, "%s.routes: expected a list of routes", where);
    if (kids->n && !(r->children = vg_calloc(kids->n, sizeof *r->children)))
        return oom(err);
    for (size_t i = 0; i < kids->n; i++) {
        char cw[WHERE_MAX];
        wfmt(cw, "%s.routes[%zu]", where, i);
        r->nchildren++;
        if ((rc = parse_route(kids->items[i], cw, r, depth + 1, &r->children[i], err)) < 0)
            return rc;
    }
    return 0;
}

static int parse_url(const struct config_node *m, const char *where, const char *key,
                     char **out, struct vg_err *err)
{
    int rc = need_str(m, where, key, out, err);
    if (rc == 0 && strncmp(*out, "http://", 7) != 0 && strncmp(*out, "https://", 8) != 0)
        return config_node_err(err, config_node_get(m, key),
                               "%s.%s: \"%s\" is not an http:// or https:// URL", where, key,
                               *out);
    return rc;
}

static int parse_headers(const struct config_node *m, const char *where,
                         struct route_integration *it, struct vg_err *err)
{
    const struct config_node *h = config_node_get(m, "headers");
    if (!h)
        return 0;
    char hw[WHERE_MAX];
    wfmt(hw, "%s.headers", where);
    int rc = config_node_check_strmap(h, hw, err);
    if (rc < 0)
        return rc;
    if (h->n && !(it->headers = vg_calloc(h->n, sizeof *it->headers)))
        return oom(err);
    for (size_t i = 0; i < h->n; i++) {
        const char *v = h->items[i]->value;
        if (strpbrk(h->keys[i], "\r\n: ") || strpbrk(v, "\r\n"))
            return config_node_err(err, h->items[i], "%s.%s: line breaks or ':' in a header",
                                   hw, h->keys[i]);
        it->nheaders++;
        if (!(it->headers[i].name = vg_strdup(h->keys[i])) ||
            !(it->headers[i].value = vg_strdup(v)))
            return oom(err);
    }
    return 0;
}

static int parse_template(const struct config_node *m, const char *where, const char *key,
                          char **out, struct vg_err *err)
{
    int rc = config_node_strdup(m, where, key, out, err);
    struct vg_err terr;
    if (rc == 0 && *out && slack_template_check(*out, &terr) < 0)
        return config_node_err(err, config_node_get(m, key), "%s.%s: %s", where, key,
                               terr.msg);
    return rc;
}

static int parse_integration(const struct config_node *m, const char *where,
                             struct route_integration *it, struct vg_err *err)
{
    static const char *const wkeys[] = { "url", "send_resolved", "max_alerts", NULL };
    static const char *const skeys[] = { "api_url", "channel", "username", "title", "text",
                                         "send_resolved", NULL };
    static const char *const ekeys[] = { "to", "from", "smarthost", "hello", "auth_username",
                                         "auth_password", "require_tls",
                                         "tls_insecure_skip_verify", "tls_config",
                                         "headers", "send_resolved", NULL };
    int rc;
    switch (it->kind) {
    case ROUTE_WEBHOOK:
        it->send_resolved = true;
        if ((rc = config_node_check_keys(m, where, wkeys, err)) < 0 ||
            (rc = parse_url(m, where, "url", &it->url, err)) < 0 ||
            (rc = config_node_int(m, where, "max_alerts", 0, 1000000, &it->max_alerts, err)) < 0)
            return rc;
        break;
    case ROUTE_SLACK:
        if ((rc = config_node_check_keys(m, where, skeys, err)) < 0 ||
            (rc = parse_url(m, where, "api_url", &it->url, err)) < 0 ||
            (rc = config_node_strdup(m, where, "channel", &it->channel, err)) < 0 ||
            (rc = config_node_strdup(m, where, "username", &it->username, err)) < 0 ||
            (rc = parse_template(m, where, "title", &it->title, err)) < 0 ||
            (rc = parse_template(m, where, "text", &it->text, err)) < 0)
            return rc;
        break;
    case ROUTE_EMAIL:
        it->require_tls = true;
        if ((rc = config_node_check_keys(m, where, ekeys, err)) < 0 ||
            (rc = need_str(m, where, "to", &it->to, err)) < 0 ||
            (rc = need_str(m, where, "from", &it->from, err)) < 0 ||
            (rc = need_str(m, where, "smarthost", &it->smarthost, err)) < 0 ||
            (rc = config_node_strdup(m, where, "hello", &it->hello, err)) < 0 ||
            (rc = config_node_strdup(m, where, "auth_username", &it->auth_username, err)) < 0 ||
            (rc = config_node_strdup(m, where, "auth_password", &it->auth_password, err)) < 0 ||
            (rc = config_node_bool(m, where, "require_tls", &it->require_tls, err)) < 0 ||
            (rc = config_node_bool(m, where, "tls_insecure_skip_verify", &it->tls_insecure,
                                   err)) < 0 ||
            (rc = tls_config_parse(m, where, NULL, &it->tls, err)) < 0 ||
            (rc = parse_headers(m, where, it, err)) < 0)
            return rc;
        const char *colon = strrchr(it->smarthost, ':');
        if (!colon || colon == it->smarthost || !colon[1] ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1))
            return config_node_err(err, config_node_get(m, "smarthost"),
                                   "%s.smarthost: \"%s\" is not host:port", where,
                                   it->smarthost);
        break;
    }
    return config_node_bool(m, where, "send_resolved", &it->send_resolved, err);
}

static int parse_receiver(const struct config_node *m, const char *where,
                          struct route_receiver *r, struct vg_err *err)
{
    static const char *const keys[] = { "name", "webhook_configs", "slack_configs",
                                        "email_configs", NULL };
    static const char *const lists[] = { "webhook_configs", "slack_configs", "email_configs" };
    int rc;
    if ((rc = config_node_check_keys(m, where, keys, err)) < 0 ||
        (rc = need_str(m, where, "name", &r->name, err)) < 0)
        return rc;
    size_t total = 0;
    for (int k = 0; k < 3; k++) {
        const struct config_node *l = config_node_get(m, lists[k]);
        if (l && l->type != CONFIG_NODE_SEQ)
            return config_node_err(err, l, "%s.%s: expected a list", where, lists[k]);
        total += l ? l->n : 0;
    }
    if (total && !(r->ints = vg_calloc(total, sizeof *r->ints)))
        return oom(err);
    for (int k = 0; k < 3; k++) {
        const struct config_node *l = config_node_get(m, lists[k]);
        for (size_t i = 0; l && i < l->n; i++) {
            char iw[WHERE_MAX];
            wfmt(iw, "%s.%s[%zu]", where, lists[k], i);
            struct route_integration *it = &r->ints[r->nints++];
            it->kind = (enum route_kind)k;
            it->index = i;
            if ((rc = parse_integration(l->items[i], iw, it, err)) < 0)
                return rc;
        }
    }
    return 0;
}

static int parse_inhibit(const struct config_node *m, const char *where,
                         struct route_inhibit *ih, struct vg_err *err)
{
    static const char *const keys[] = { "source_matchers", "target_matchers", "equal",
                                        "source_match", "target_match", "source_match_re",
                                        "target_match_re", NULL };
    int rc;
    if ((rc = config_node_check_keys(m, where, keys, err)) < 0 ||
        (rc = parse_matchers(m, where, "source_matchers", false, &ih->source, &ih->nsource,
                             err)) < 0 ||
        (rc = parse_matchers(m, where, "target_matchers", false, &ih->target, &ih->ntarget,
                             err)) < 0 ||
        (rc = dup_strlist(m, where, "equal", &ih->equal, &ih->nequal, err)) < 0)
        return rc;
    if (config_node_get(m, "source_match") || config_node_get(m, "target_match") ||
        config_node_get(m, "source_match_re") || config_node_get(m, "target_match_re"))
        return config_node_err(err, m, "%s: use source_matchers and target_matchers", where);
    if (!ih->nsource || !ih->ntarget)
        return config_node_err(err, m, "%s: source_matchers and target_matchers are required",
                               where);
    return 0;
}

static int check_receivers_exist(const struct route_config *c, const struct route_node *r,
                                 const struct config_node *rm, struct vg_err *err)
{
    const char *names[2] = { r->receiver, r->esc_receiver };
    for (int k = 0; k < 2; k++)
        if (names[k] && !route_receiver_find(c, names[k]))
            return config_node_err(err, rm, "notifications.route: receiver \"%s\" (route %s) "
                                   "is not defined in receivers", names[k], r->id);
    for (size_t i = 0; i < r->nchildren; i++) {
        const struct config_node *kids = config_node_get(rm, "routes");
        int rc = check_receivers_exist(c, &r->children[i], kids->items[i], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_delivery(const struct config_node *sec, struct route_delivery *d,
                          struct vg_err *err)
{
    static const char *const keys[] = { "timeout", "initial_backoff", "max_backoff",
                                        "max_attempts", "queue_capacity", "history_size",
                                        "tick", NULL };
    *d = (struct route_delivery){
        .timeout_ms = 10000, .initial_backoff_ms = 1000, .max_backoff_ms = 300000,
        .tick_ms = 1000, .max_attempts = 10, .queue_capacity = 1024, .history_size = 1000,
    };
    const struct config_node *m = config_node_get(sec, "delivery");
    if (!m)
        return 0;
    const char *w = "notifications.delivery";
    int rc;
    if ((rc = config_node_check_keys(m, w, keys, err)) < 0 ||
        (rc = config_node_duration(m, w, "timeout", 10, &d->timeout_ms, err)) < 0 ||
        (rc = config_node_duration(m, w, "initial_backoff", 1, &d->initial_backoff_ms, err)) < 0 ||
        (rc = config_node_duration(m, w, "max_backoff", 1, &d->max_backoff_ms, err)) < 0 ||
        (rc = config_node_duration(m, w, "tick", 10, &d->tick_ms, err)) < 0 ||
        (rc = config_node_int(m, w, "max_attempts", 1, 1000, &d->max_attempts, err)) < 0 ||
        (rc = config_node_int(m, w, "queue_capacity", 1, 1000000, &d->queue_capacity, err)) < 0 ||
        (rc = config_node_int(m, w, "history_size", 1, 1000000, &d->history_size, err)) < 0)
        return rc;
    if (d->max_backoff_ms < d->initial_backoff_ms)
        return config_node_err(err, config_node_get(m, "max_backoff"),
                               "%s.max_backoff: shorter than initial_backoff", w);
    return 0;
}

static int parse_all(const struct config_node *sec, struct route_config *c, struct vg_err *err)
{
    static const char *const keys[] = { "route", "receivers", "inhibit_rules", "delivery",
                                        "external_url", "templates", NULL };
    const char *w = "notifications";
    int rc;
    if ((rc = config_node_check_keys(sec, w, keys, err)) < 0 ||
        (rc = parse_delivery(sec, &c->delivery, err)) < 0)
        return rc;
    if (config_node_get(sec, "templates"))
        return config_node_err(err, config_node_get(sec, "templates"),
                               "notifications.templates: Go template files are not supported; "
                               "set title/text on the receiver");
    char *url = NULL;
    if ((rc = config_node_strdup(sec, w, "external_url", &url, err)) < 0)
        return rc;
    if (url) {
        vg_free(c->external_url);
        c->external_url = url;
    }
    const struct config_node *recv = config_node_get(sec, "receivers");
    if (recv && recv->type != CONFIG_NODE_SEQ)
        return config_node_err(err, recv, "notifications.receivers: expected a list");
    if (recv && recv->n && !(c->receivers = vg_calloc(recv->n, sizeof *c->receivers)))
        return oom(err);
    for (size_t i = 0; recv && i < recv->n; i++) {
        char rw[WHERE_MAX];
        wfmt(rw, "notifications.receivers[%zu]", i);
        c->nreceivers++;
        if ((rc = parse_receiver(recv->items[i], rw, &c->receivers[i], err)) < 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(c->receivers[j].name, c->receivers[i].name))
                return config_node_err(err, recv->items[i], "%s: receiver name \"%s\" is "
                                       "already used by receivers[%zu]", rw,
                                       c->receivers[i].name, j);
    }
    const struct config_node *ih = config_node_get(sec, "inhibit_rules");
    if (ih && ih->type != CONFIG_NODE_SEQ)
        return config_node_err(err, ih, "notifications.inhibit_rules: expected a list");
    if (ih && ih->n && !(c->inhibits = vg_calloc(ih->n, sizeof *c->inhibits)))
        return oom(err);
    for (size_t i = 0; ih && i < ih->n; i++) {
        char iw[WHERE_MAX];
        wfmt(iw, "notifications.inhibit_rules[%zu]", i);
        c->ninhibits++;
        if ((rc = parse_inhibit(ih->items[i], iw, &c->inhibits[i], err)) < 0)
            return rc;
    }
    const struct config_node *rt = config_node_get(sec, "route");
    if (!rt) {
        if (c->nreceivers)
            return config_node_err(err, sec, "notifications: receivers without a route");
        return 0;
    }
    c->has_route = true;
    if ((rc = parse_route(rt, "notifications.route", NULL, 0, &c->root, err)) < 0)
        return rc;
    return check_receivers_exist(c, &c->root, rt, err);
}

struct route_config *route_config_parse(const struct config_node *sec,
                                        const char *default_external_url, struct vg_err *err)
{
    struct route_config *c = vg_calloc(1, sizeof *c);
    if (!c || !(c->external_url = vg_strdup(default_external_url ? default_external_url : ""))) {
        vg_free(c);
        return oom(err), NULL;
    }
    int rc = 0;
    if (sec)
        rc = parse_all(sec, c, err);
    else
        rc = parse_delivery(NULL, &c->delivery, err);
    if (rc < 0) {
        route_config_free(c);
        return NULL;
    }
    return c;
}

/* ---- the tree ---- */

/* Alertmanager's Route.Match: children in order, stopping at the first match unless it
 * says continue; a node no child matched takes the alert itself. */
static size_t match_node(const struct route_node *r, const struct label *ls, size_t n,
                         const struct route_node **out, size_t max, size_t cnt)
{
    if (!route_matchers_match(r->matchers, r->nmatchers, ls, n))
        return cnt;
    size_t before = cnt;
    for (size_t i = 0; i < r->nchildren; i++) {
        size_t got = match_node(&r->children[i], ls, n, out, max, cnt);
        bool matched = got > cnt ||
                       route_matchers_match(r->children[i].matchers, r->children[i].nmatchers,
                                            ls, n);
        cnt = got;
        if (matched && !r->children[i].cont)
            break;
    }
    if (cnt == before && cnt < max)
        out[cnt++] = r;
    return cnt;
}

size_t route_match(const struct route_config *c, const struct label *ls, size_t n,
                   const struct route_node **out, size_t max)
{
    if (!c->has_route || !max)
        return 0;
    return match_node(&c->root, ls, n, out, max, 0);
}
