/* status_config: see status_config.h.
 *
 * Behaviour matched (Prometheus 3 web/api/v1 /status/config and config.Secret): the body is
 * {"status":"success","data":{"yaml":"..."}}; a non-empty secret reads "<secret>", an
 * empty one stays empty, and *_file keys show the path only. Prometheus knows its secrets
 * by type (config.Secret fields); Vigil's structured sections belong to many modules, so
 * secrets are known by key name instead (status_config_secret_key), which also covers
 * keys a module adds later, and URLs carrying credentials in their userinfo or query are
 * masked wherever they appear (Go's url.Redacted masks the password the same way).
 *
 * The YAML is written with libyaml's emitter, so quoting is the YAML library's (a string
 * that reads as something else in plain style is quoted); scalars that were quoted in the
 * file stay quoted, so "true" stays a string, and multi-line strings are written as
 * literal blocks. The key sections come from config_dump's "  key: value" lines (one line
 * per key; durations as "<n>ms" are written back as Prometheus durations, "[..]" lists as
 * YAML lists); the structured sections from their config_node trees, in config.c's order.
 * config_node keeps no difference between "key:" (null) and "key: ''" unless quoted, so
 * an unquoted empty value is written as "key:". */
#include "status_config.h"

#include "../../storage/base/vg_alloc.h"
#include "../http.h"
#include "prometheus.h"
#include "query.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <yaml.h>

#define KEY_MAX 128 /* longer key names are judged by their first 127 bytes */

/* ---- what is a secret ---- */

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t l = strlen(suffix);
    return n >= l && memcmp(s + n - l, suffix, l) == 0;
}

/* key lower-cased with '-' as '_' into out (KEY_MAX bytes); returns its length. */
static size_t fold_key(const char *key, size_t n, char *out)
{
    if (n >= KEY_MAX)
        n = KEY_MAX - 1;
    for (size_t i = 0; i < n; i++) {
        char c = (char)tolower((unsigned char)key[i]);
        out[i] = c == '-' ? '_' : c;
    }
    out[n] = '\0';
    return n;
}

static bool secret_name(const char *key, size_t n)
{
    static const char *const whole[] = { "api_url", "webhook_url", "authorization", "cookie" };
    static const char *const parts[] = { "password", "passwd", "secret", "token", "api_key",
                                         "apikey", "credential", "passphrase", "community" };
    char k[KEY_MAX];
    n = fold_key(key, n, k);
    if (ends_with(k, n, "_file") || ends_with(k, n, "_files"))
        return false;
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (!strcmp(k, whole[i]))
            return true;
    if (ends_with(k, n, "_url"))
        return false;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (strstr(k, parts[i]))
            return true;
    return false;
}

bool status_config_secret_key(const char *key)
{
    return secret_name(key, strlen(key));
}

bool status_config_mask_url(const char *value, struct vg_buf *out)
{
    const char *p = value;
    if (!isalpha((unsigned char)*p))
        return false;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return false;
    const char *host = p + 3;
    const char *path = host + strcspn(host, "/?#");
    const char *at = NULL;
    for (const char *q = host; q < path; q++)
        if (*q == '@')
            at = q; /* the last '@' ends the userinfo, as url.Parse reads it */
    struct vg_buf m;
    vg_buf_init(&m);
    bool changed = false;
    if (at && at > host) {
        const char *colon = memchr(host, ':', (size_t)(at - host));
        if (colon) /* user:password -> user:<secret> */
            vg_buf_append(&m, value, (size_t)(colon + 1 - value));
        else /* a lone userinfo is a token */
            vg_buf_append(&m, value, (size_t)(host - value));
        vg_buf_puts(&m, STATUS_CONFIG_SECRET);
        p = at;
        changed = true;
    } else {
        p = value;
    }
    /* Query parameters named like secrets keep their name; their value is masked. */
    const char *query = strchr(path, '?');
    const char *frag = strchr(path, '#');
    if (query && (!frag || query < frag)) {
        const char *end = frag ? frag : query + strlen(query);
        const char *q = query + 1;
        while (q < end) {
            const char *amp = memchr(q, '&', (size_t)(end - q));
            const char *pend = amp ? amp : end;
            const char *eq = memchr(q, '=', (size_t)(pend - q));
            if (eq && eq + 1 < pend && secret_name(q, (size_t)(eq - q))) {
                vg_buf_append(&m, p, (size_t)(eq + 1 - p));
                vg_buf_puts(&m, STATUS_CONFIG_SECRET);
                p = pend;
                changed = true;
            }
            q = pend + (amp != NULL);
        }
    }
    if (changed) {
        vg_buf_puts(&m, p);
        if (vg_buf_failed(&m))
            out->failed = true; /* the caller sees the failure; nothing unmasked is written */
        else
            vg_buf_append(out, m.p, m.len);
    }
    vg_buf_free(&m);
    return changed;
}

/* ---- the YAML writer (libyaml's emitter into a vg_buf) ---- */

struct writer {
    yaml_emitter_t e;
    struct vg_buf *out;
    struct vg_err *err;
};

static int write_out(void *data, unsigned char *bytes, size_t n)
{
    struct vg_buf *out = data;
    vg_buf_append(out, bytes, n);
    return !vg_buf_failed(out);
}

/* Emits ev (which the emitter frees, also on failure); ok is the initialiser's result. */
static int emit(struct writer *w, yaml_event_t *ev, int ok)
{
    if (ok && yaml_emitter_emit(&w->e, ev))
        return 0;
    if (!ok)
        yaml_event_delete(ev);
    if (vg_buf_failed(w->out) || w->e.error == YAML_MEMORY_ERROR || !ok)
        return vg_err_set(w->err, VG_ENOMEM, "status/config: out of memory");
    return vg_err_set(w->err, VG_EINTERNAL, "status/config: cannot write the YAML: %s",
                      w->e.problem ? w->e.problem : "emitter error");
}

static int scalar(struct writer *w, const char *s, size_t n, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (n > INT32_MAX)
        return vg_err_set(w->err, VG_EINTERNAL, "status/config: value of %zu bytes", n);
    /* The initialiser refuses text that is not UTF-8 (a value from a flag may be). */
    int ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)n,
                                          1, 1, style);
    if (!ok)
        return vg_err_set(w->err, VG_EINTERNAL,
                          "status/config: a value is not valid UTF-8: \"%.40s\"", s);
    return emit(w, &ev, ok);
}

static int cscalar(struct writer *w, const char *s)
{
    return scalar(w, s, strlen(s), YAML_ANY_SCALAR_STYLE);
}

static int seq_start(struct writer *w)
{
    yaml_event_t ev;
    return emit(w, &ev,
                yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE));
}

static int map_start(struct writer *w)
{
    yaml_event_t ev;
    return emit(w, &ev,
                yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE));
}

static int seq_end(struct writer *w)
{
    yaml_event_t ev;
    return emit(w, &ev, yaml_sequence_end_event_initialize(&ev));
}

static int map_end(struct writer *w)
{
    yaml_event_t ev;
    return emit(w, &ev, yaml_mapping_end_event_initialize(&ev));
}

/* Multi-line text reads best as a literal block; a value quoted in the file stays quoted
 * (the emitter falls back to double quotes when single quotes cannot hold it); anything
 * else is plain when YAML allows it. */
static yaml_scalar_style_t style_for(const char *s, bool quoted)
{
    if (strchr(s, '\n'))
        return YAML_LITERAL_SCALAR_STYLE;
    return quoted ? YAML_SINGLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE;
}

/* One scalar value: STATUS_CONFIG_SECRET when masked and not empty, a URL with its
 * credentials masked, or the value itself. */
static int value(struct writer *w, const char *v, bool quoted, bool masked)
{
    if (masked && *v)
        return cscalar(w, STATUS_CONFIG_SECRET);
    struct vg_buf u;
    vg_buf_init(&u);
    if (status_config_mask_url(v, &u)) {
        int rc = vg_buf_failed(&u)
                     ? vg_err_set(w->err, VG_ENOMEM, "status/config: out of memory")
                     : scalar(w, u.p, u.len, quoted ? YAML_SINGLE_QUOTED_SCALAR_STYLE
                                                    : YAML_ANY_SCALAR_STYLE);
        vg_buf_free(&u);
        return rc;
    }
    return scalar(w, v, strlen(v), style_for(v, quoted));
}

/* Whether the value under key is masked: a secret name, except an authorization mapping
 * (Prometheus's {type, credentials}: its type is no secret, its credentials are by name). */
static bool masks(const char *key, const struct config_node *v)
{
    if (!status_config_secret_key(key))
        return false;
    char k[KEY_MAX];
    fold_key(key, strlen(key), k);
    return !(v->type == CONFIG_NODE_MAP && !strcmp(k, "authorization"));
}

/* Recursion is bounded: config_node trees are at most 64 levels deep (config_node.c). */
static int node(struct writer *w, const struct config_node *n, bool masked)
{
    int rc = 0;
    switch (n->type) {
    case CONFIG_NODE_SCALAR: return value(w, n->value ? n->value : "", n->quoted, masked);
    case CONFIG_NODE_SEQ:
        if ((rc = seq_start(w)) < 0)
            return rc;
        for (size_t i = 0; i < n->n && rc == 0; i++)
            rc = node(w, n->items[i], masked);
        return rc < 0 ? rc : seq_end(w);
    case CONFIG_NODE_MAP:
        if ((rc = map_start(w)) < 0)
            return rc;
        for (size_t i = 0; i < n->n && rc == 0; i++) {
            if ((rc = cscalar(w, n->keys[i])) == 0)
                rc = node(w, n->items[i], masked || masks(n->keys[i], n->items[i]));
        }
        return rc < 0 ? rc : map_end(w);
    }
    return vg_err_set(w->err, VG_EINTERNAL, "status/config: unknown node type %d", (int)n->type);
}

static int writer_open(struct writer *w, struct vg_buf *out, struct vg_err *err)
{
    w->out = out;
    w->err = err;
    if (!yaml_emitter_initialize(&w->e))
        return vg_err_set(err, VG_ENOMEM, "status/config: out of memory");
    yaml_emitter_set_output(&w->e, write_out, out);
    yaml_emitter_set_unicode(&w->e, 1);
    yaml_emitter_set_width(&w->e, -1); /* never fold long values over lines */
    yaml_emitter_set_indent(&w->e, 2);
    yaml_event_t ev;
    int rc = emit(w, &ev, yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING));
    if (rc == 0)
        rc = emit(w, &ev, yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1));
    return rc;
}

static int writer_close(struct writer *w, int rc)
{
    yaml_event_t ev;
    if (rc == 0)
        rc = emit(w, &ev, yaml_document_end_event_initialize(&ev, 1));
    if (rc == 0)
        rc = emit(w, &ev, yaml_stream_end_event_initialize(&ev));
    if (rc == 0 && !yaml_emitter_flush(&w->e))
        rc = vg_err_set(w->err, VG_ENOMEM, "status/config: out of memory");
    yaml_emitter_delete(&w->e);
    return rc;
}

int status_config_node_yaml(const struct config_node *n, struct vg_buf *out, struct vg_err *err)
{
    struct writer w;
    int rc = writer_open(&w, out, err);
    if (rc == 0)
        rc = node(&w, n, false);
    return writer_close(&w, rc);
}

/* ---- the key sections, from config_dump ---- */

/* "[\"a\", \"b\"]" (config_dump's lists, JSON strings) as a YAML list; 1 when v is not
 * such a list (then it is written as a string), else 0 or the error. */
static int flat_list(struct writer *w, const char *v, size_t n, bool masked)
{
    if (n < 2 || v[0] != '[' || v[n - 1] != ']')
        return 1;
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        return vg_err_set(w->err, VG_ENOMEM, "status/config: out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)v, n);
    if (!yaml_parser_load(&p, &doc)) {
        yaml_parser_delete(&p);
        return 1;
    }
    yaml_parser_delete(&p);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = root && root->type == YAML_SEQUENCE_NODE ? 0 : 1;
    const yaml_node_item_t *first = rc ? NULL : root->data.sequence.items.start;
    const yaml_node_item_t *top = rc ? NULL : root->data.sequence.items.top;
    for (const yaml_node_item_t *it = first; it && it < top; it++) {
        const yaml_node_t *item = yaml_document_get_node(&doc, *it);
        if (!item || item->type != YAML_SCALAR_NODE)
            rc = 1;
    }
    if (rc == 0)
        rc = seq_start(w);
    for (const yaml_node_item_t *it = first; rc == 0 && it && it < top; it++) {
        const yaml_node_t *item = yaml_document_get_node(&doc, *it);
        rc = item ? value(w, (const char *)item->data.scalar.value, false, masked)
                  : vg_err_set(w->err, VG_EINTERNAL, "status/config: a list item is missing");
    }
    if (rc == 0)
        rc = seq_end(w);
    yaml_document_delete(&doc);
    return rc;
}

static bool is_ms(const char *v, size_t n)
{
    if (n < 3 || !ends_with(v, n, "ms"))
        return false;
    for (size_t i = 0; i + 2 < n; i++)
        if (!isdigit((unsigned char)v[i]))
            return false;
    return true;
}

static int flat_value(struct writer *w, const char *key, char *v, size_t n)
{
    bool masked = status_config_secret_key(key);
    if (is_ms(v, n)) {
        struct vg_buf d;
        vg_buf_init(&d);
        query_format_duration(&d, strtoll(v, NULL, 10));
        int rc = vg_buf_failed(&d) ? vg_err_set(w->err, VG_ENOMEM, "status/config: out of memory")
                                   : scalar(w, d.p, d.len, YAML_ANY_SCALAR_STYLE);
        vg_buf_free(&d);
        return rc;
    }
    int rc = flat_list(w, v, n, masked);
    if (rc <= 0)
        return rc;
    /* An empty string is written '' so it reads back as a string, not as null. */
    return *v ? value(w, v, false, masked) : scalar(w, "", 0, YAML_SINGLE_QUOTED_SCALAR_STYLE);
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == c;
    return n;
}

/* config_dump writes "# source: <source>", then "section:" lines, each followed by
 * "  key: value" lines. A string value holding a line break would split its line and
 * could pass for a key or a section; config_reference writes exactly one line per
 * section and key from the same tables, so a dump with more lines than that is refused
 * rather than misread. */
static int flat_sections(struct writer *w, const struct config *c)
{
    struct vg_buf dump, ref;
    vg_buf_init(&dump);
    vg_buf_init(&ref);
    config_dump(c, &dump);
    config_reference(&ref);
    int rc = 0;
    if (vg_buf_failed(&dump) || !vg_buf_cstr(&dump) || vg_buf_failed(&ref) || !vg_buf_cstr(&ref))
        rc = vg_err_set(w->err, VG_ENOMEM, "status/config: out of memory");
    size_t head = 1 + count_char(c->source, '\n');
    if (rc == 0 && count_char(dump.p, '\n') != head + count_char(ref.p, '\n'))
        rc = vg_err_set(w->err, VG_EINTERNAL,
                        "status/config: a value holds a line break, so the key sections "
                        "cannot be listed");
    vg_buf_free(&ref);
    char *line = rc == 0 ? dump.p : NULL;
    for (size_t i = 0; line && i < head; i++) {
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    bool open = false;
    for (; rc == 0 && line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        size_t len = strlen(line);
        if (line[0] == ' ') {
            char *k = line + strspn(line, " ");
            char *sep = strstr(k, ": ");
            if (open && sep) {
                *sep = '\0';
                if ((rc = cscalar(w, k)) == 0)
                    rc = flat_value(w, k, sep + 2, (size_t)(line + len - (sep + 2)));
            }
        } else if (len > 1 && line[len - 1] == ':') {
            if (open)
                rc = map_end(w);
            line[len - 1] = '\0';
            if (rc == 0 && (rc = cscalar(w, line)) == 0)
                rc = map_start(w);
            open = rc == 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (rc == 0 && open)
        rc = map_end(w);
    vg_buf_free(&dump);
    return rc;
}

int status_config_yaml(const struct config *c, struct vg_buf *out, struct vg_err *err)
{
    /* Where it came from, as a comment (control characters would end the comment). */
    vg_buf_puts(out, "# source: ");
    for (const char *s = c->source ? c->source : ""; *s; s++)
        vg_buf_putc(out, (unsigned char)*s < 0x20 ? '?' : *s);
    vg_buf_putc(out, '\n');
    struct writer w;
    int rc = writer_open(&w, out, err);
    if (rc == 0)
        rc = map_start(&w);
    if (rc == 0)
        rc = flat_sections(&w, c);
    for (size_t i = 0; rc == 0 && config_block_name(i); i++) {
        const char *name = config_block_name(i);
        const struct config_node *b = config_block(c, name);
        if (b && (rc = cscalar(&w, name)) == 0)
            rc = node(&w, b, masks(name, b));
    }
    if (rc == 0)
        rc = map_end(&w);
    rc = writer_close(&w, rc);
    if (rc == 0 && vg_buf_failed(out))
        rc = vg_err_set(err, VG_ENOMEM, "status/config: out of memory");
    return rc;
}

/* ---- GET /api/v1/status/config ---- */

static void do_config(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct vg_err err;
    vg_err_clear(&err);
    struct vg_buf yaml;
    vg_buf_init(&yaml);
    int rc = v->cfg ? status_config_yaml(v->cfg, &yaml, &err)
                    : vg_err_set(&err, VG_EINTERNAL, "status/config: no configuration loaded");
    if (rc == 0) {
        prometheus_json_begin(&resp->body);
        vg_buf_puts(&resp->body, "{\"yaml\":");
        vg_buf_json_str(&resp->body, yaml.p ? yaml.p : "", yaml.len);
        vg_buf_puts(&resp->body, "}}");
        if (vg_buf_failed(&resp->body))
            rc = vg_err_set(&err, VG_ENOMEM, "status/config: out of memory");
    }
    vg_buf_free(&yaml);
    if (rc < 0)
        http_resp_error(resp, &err);
}

static const struct http_route routes[] = {
    { "GET", "/api/v1/status/config", false, do_config, "/api/v1/status/config" },
};

const struct vigil_module mod_status_config_api = {
    .name = "status_config_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
