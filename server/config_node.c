/* config_node: see config_node.h. The tree is built by config.c from libyaml's document
 * (config_node_from_yaml, declared in config_int.h so only config.c builds trees). */
#include "config_node.h"

/* config_node.h gives the analyser a macro for this; here is the real function. */
#undef config_node_err

#include "../storage/base/vg_alloc.h"
#include "config.h"
#include "config_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_node_free(struct config_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; n->items && i < n->n; i++) {
        config_node_free(n->items[i]);
        if (n->keys)
            vg_free(n->keys[i]);
    }
    vg_free(n->items);
    vg_free(n->keys);
    vg_free(n->value);
    vg_free(n);
}

/* Aliases could make a document exponentially large; the depth cap also bounds
 * recursion. */
#define MAX_DEPTH 64

struct config_node *config_node_from_yaml(yaml_document_t *doc, yaml_node_t *y,
                                          const char *source, int depth, struct vg_err *err)
{
    if (depth > MAX_DEPTH) {
        vg_err_set(err, VG_EINVAL, "%s:%zu: nesting deeper than %d levels", source,
                   y->start_mark.line + 1, MAX_DEPTH);
        return NULL;
    }
    struct config_node *n = vg_calloc(1, sizeof *n);
    if (!n)
        goto oom;
    n->line = (unsigned)y->start_mark.line + 1;
    n->source = source;
    switch (y->type) {
    case YAML_SCALAR_NODE:
        n->type = CONFIG_NODE_SCALAR;
        n->value = vg_strndup((const char *)y->data.scalar.value, y->data.scalar.length);
        n->quoted = y->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    y->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if (!n->value)
            goto oom;
        return n;
    case YAML_SEQUENCE_NODE: {
        n->type = CONFIG_NODE_SEQ;
        size_t cnt = (size_t)(y->data.sequence.items.top - y->data.sequence.items.start);
        n->items = vg_calloc(cnt ? cnt : 1, sizeof *n->items);
        if (!n->items)
            goto oom;
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_t *it = yaml_document_get_node(doc, y->data.sequence.items.start[i]);
            if (!it || !(n->items[i] = config_node_from_yaml(doc, it, source, depth + 1, err)))
                goto fail;
            n->n = i + 1;
        }
        return n;
    }
    case YAML_MAPPING_NODE: {
        n->type = CONFIG_NODE_MAP;
        size_t cnt = (size_t)(y->data.mapping.pairs.top - y->data.mapping.pairs.start);
        n->items = vg_calloc(cnt ? cnt : 1, sizeof *n->items);
        n->keys = vg_calloc(cnt ? cnt : 1, sizeof *n->keys);
        if (!n->items || !n->keys)
            goto oom;
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_pair_t *p = &y->data.mapping.pairs.start[i];
            yaml_node_t *kn = yaml_document_get_node(doc, p->key);
            yaml_node_t *vn = yaml_document_get_node(doc, p->value);
            if (!kn || !vn || kn->type != YAML_SCALAR_NODE) {
                vg_err_set(err, VG_EINVAL, "%s:%zu: keys must be plain names", source,
                           (kn ? kn : y)->start_mark.line + 1);
                goto fail;
            }
            const char *k = (const char *)kn->data.scalar.value;
            for (size_t j = 0; j < i; j++) {
                if (!strcmp(n->keys[j], k)) {
                    vg_err_set(err, VG_EINVAL, "%s:%zu: key \"%s\" given twice", source,
                               kn->start_mark.line + 1, k);
                    goto fail;
                }
            }
            if (!(n->keys[i] = vg_strdup(k)))
                goto oom;
            n->n = i + 1; /* keys[i] owned from here; items[i] may still be NULL */
            if (!(n->items[i] = config_node_from_yaml(doc, vn, source, depth + 1, err)))
                goto fail;
        }
        return n;
    }
    default:
        vg_err_set(err, VG_EINVAL, "%s:%zu: empty YAML node", source, y->start_mark.line + 1);
        goto fail;
    }
oom:
    vg_err_set(err, VG_ENOMEM, "out of memory");
fail:
    config_node_free(n);
    return NULL;
}

const struct config_node *config_node_get(const struct config_node *map, const char *key)
{
    if (!map || map->type != CONFIG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key))
            return map->items[i];
    return NULL;
}

int config_node_err(struct vg_err *err, const struct config_node *n, const char *fmt, ...)
{
    char msg[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vg_err_set(err, VG_EINVAL, "%s:%u: %s", n && n->source ? n->source : "config",
                      n ? n->line : 0, msg);
}

int config_node_check_keys(const struct config_node *map, const char *where,
                           const char *const *allowed, struct vg_err *err)
{
    if (!map || map->type != CONFIG_NODE_MAP)
        return config_node_err(err, map, "%s: expected a mapping", where);
    for (size_t i = 0; i < map->n; i++) {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, map->keys[i]);
        if (ok)
            continue;
        char valid[400] = "";
        size_t len = 0;
        for (const char *const *a = allowed; *a; a++) {
            int w = snprintf(valid + len, sizeof valid - len, "%s%s", a == allowed ? "" : ", ", *a);
            if (w < 0 || (size_t)w >= sizeof valid - len)
                break;
            len += (size_t)w;
        }
        return config_node_err(err, map->items[i], "%s: unknown key \"%s\" (valid keys: %s)",
                               where, map->keys[i], valid);
    }
    return 0;
}

static const struct config_node *scalar_of(const struct config_node *map, const char *where,
                                           const char *key, int *rc, struct vg_err *err)
{
    *rc = 0;
    const struct config_node *v = config_node_get(map, key);
    if (v && v->type != CONFIG_NODE_SCALAR) {
        *rc = config_node_err(err, v, "%s.%s: expected a single value", where, key);
        return NULL;
    }
    return v;
}

int config_node_str(const struct config_node *map, const char *where, const char *key,
                    const char **out, struct vg_err *err)
{
    int rc;
    const struct config_node *v = scalar_of(map, where, key, &rc, err);
    if (v)
        *out = v->value;
    return rc;
}

int config_node_strdup(const struct config_node *map, const char *where, const char *key,
                       char **out, struct vg_err *err)
{
    const char *s = NULL;
    int rc = config_node_str(map, where, key, &s, err);
    if (rc < 0 || !s)
        return rc;
    if (!(*out = vg_strdup(s)))
        return vg_err_set(err, VG_ENOMEM, "%s.%s: out of memory", where, key);
    return 0;
}

int config_node_file(const struct config_node *map, const char *where, const char *key,
                     char **out, struct vg_err *err)
{
    int rc = config_node_strdup(map, where, key, out, err);
    if (rc < 0 || !*out)
        return rc;
    FILE *f = fopen(*out, "r");
    if (!f)
        return config_node_err(err, config_node_get(map, key), "%s.%s: cannot read \"%s\": %s",
                               where, key, *out, strerror(errno));
    (void)fclose(f); /* opened for reading only: nothing to lose */
    return 0;
}

int config_node_int(const struct config_node *map, const char *where, const char *key,
                    int64_t min, int64_t max, int64_t *out, struct vg_err *err)
{
    int rc;
    const struct config_node *v = scalar_of(map, where, key, &rc, err);
    if (!v)
        return rc;
    char *end;
    errno = 0;
    long long x = strtoll(v->value, &end, 10);
    if (errno || end == v->value || *end)
        return config_node_err(err, v, "%s.%s: expected an integer, got \"%s\"", where, key,
                               v->value);
    if (x < min || x > max)
        return config_node_err(err, v, "%s.%s: %lld is out of range [%lld, %lld]", where, key,
                               x, (long long)min, (long long)max);
    *out = x;
    return 0;
}

int config_node_bool(const struct config_node *map, const char *where, const char *key,
                     bool *out, struct vg_err *err)
{
    int rc;
    const struct config_node *v = scalar_of(map, where, key, &rc, err);
    if (!v)
        return rc;
    if (!strcmp(v->value, "true"))
        *out = true;
    else if (!strcmp(v->value, "false"))
        *out = false;
    else
        return config_node_err(err, v, "%s.%s: expected true or false, got \"%s\"", where, key,
                               v->value);
    return 0;
}

int config_node_duration(const struct config_node *map, const char *where, const char *key,
                         int64_t min_ms, int64_t *out, struct vg_err *err)
{
    int rc;
    const struct config_node *v = scalar_of(map, where, key, &rc, err);
    if (!v)
        return rc;
    int64_t ms;
    struct vg_err derr;
    if (config_parse_duration(v->value, &ms, &derr) < 0)
        return config_node_err(err, v, "%s.%s: %s", where, key, derr.msg);
    if (ms < min_ms)
        return config_node_err(err, v, "%s.%s: %s is shorter than the minimum %lldms", where,
                               key, v->value, (long long)min_ms);
    *out = ms;
    return 0;
}

int config_node_strlist(const struct config_node *map, const char *where, const char *key,
                        const char ***out, size_t *n, struct vg_err *err)
{
    *out = NULL;
    *n = 0;
    const struct config_node *v = config_node_get(map, key);
    if (!v)
        return 0;
    size_t cnt = v->type == CONFIG_NODE_SEQ ? v->n : 1;
    if (v->type == CONFIG_NODE_MAP)
        return config_node_err(err, v, "%s.%s: expected a list of strings", where, key);
    if (v->type == CONFIG_NODE_SCALAR && v->value[0] == '\0' && !v->quoted)
        return 0; /* `key:` with nothing: an empty list */
    const char **list = vg_calloc(cnt, sizeof *list);
    if (!list)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const struct config_node *it = v->type == CONFIG_NODE_SEQ ? v->items[i] : v;
        if (it->type != CONFIG_NODE_SCALAR) {
            vg_free(list);
            return config_node_err(err, it, "%s.%s[%zu]: expected a string", where, key, i);
        }
        list[i] = it->value;
    }
    *out = list;
    *n = cnt;
    return 0;
}

int config_node_check_strmap(const struct config_node *map, const char *where,
                             struct vg_err *err)
{
    if (!map || map->type != CONFIG_NODE_MAP)
        return config_node_err(err, map, "%s: expected a mapping of names to strings", where);
    for (size_t i = 0; i < map->n; i++)
        if (map->items[i]->type != CONFIG_NODE_SCALAR)
            return config_node_err(err, map->items[i], "%s.%s: expected a string", where,
                                   map->keys[i]);
    return 0;
}
