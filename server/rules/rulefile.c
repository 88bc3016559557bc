/* rulefile: see rulefile.h.
 *
 * The YAML is read into a config_node tree (the config's own reader, so line numbers and
 * duplicate-key errors are the same as the config file's), then walked group by group.
 * Validation keeps going after an error so `vigil check-rules` lists every problem, as
 * promtool does; the first error is also returned in err. Messages follow promtool's
 * wording (Prometheus rulefmt): `group "a", rule 2, "X": could not parse expression:
 * 1:7: parse error: ...`, `groupname: "a" is repeated in the same file`, `one of
 * 'record' or 'alert' must be set`, `only one of 'record' and 'alert' must be set`,
 * `invalid recording rule name: x y`, `invalid label name: a-b`, with "file:line: "
 * in front where promtool puts the YAML position.
 *
 * Everything a parsed file holds lives in one arena (priv); the parsed PromQL/LogQL
 * expressions and templates are freed one by one in rulefile_free. */
#include "rulefile.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../config.h"
#include "../config_int.h"
#include "../config_node.h"
#include "../logql/ast.h"
#include "../logql/parser.h"
#include "../promql/ast.h"
#include "../promql/engine.h"
#include "rule_template.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A rule file larger than this is refused (Prometheus has no limit; this keeps a
 * mistaken path such as a log file from being parsed whole). */
#define RULEFILE_MAX_BYTES (64u << 20)

struct rf_ctx {
    struct rule_file *f;
    struct vg_arena *arena;
    struct vg_buf *errors;
    struct vg_err *err;
    int rc;         /* first error's code */
    size_t nerrors;
};

/* Records one error: the first goes into err, each into errors. */
static void __attribute__((format(printf, 3, 4)))
add_err(struct rf_ctx *c, const struct config_node *at, const char *fmt, ...)
{
    char msg[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->nerrors++ == 0) {
        c->rc = VG_EINVAL;
        if (at)
            vg_err_set(c->err, VG_EINVAL, "%s:%u: %s", c->f->path, at->line, msg);
        else
            vg_err_set(c->err, VG_EINVAL, "%s: %s", c->f->path, msg);
    }
    if (c->errors) {
        if (at)
            vg_buf_printf(c->errors, "%s:%u: %s\n", c->f->path, at->line, msg);
        else
            vg_buf_printf(c->errors, "%s: %s\n", c->f->path, msg);
    }
}

/* An error already formatted by config_node (it carries "file:line: "). */
static void add_node_err(struct rf_ctx *c, const struct vg_err *e)
{
    if (c->nerrors++ == 0) {
        c->rc = e->code;
        *c->err = *e;
    }
    if (c->errors)
        vg_buf_printf(c->errors, "%s\n", e->msg);
}

static void oom(struct rf_ctx *c)
{
    if (c->rc != VG_ENOMEM) {
        c->rc = VG_ENOMEM;
        vg_err_set(c->err, VG_ENOMEM, "%s: out of memory", c->f->path);
    }
}

bool rulefile_valid_label_name(const char *s)
{
    if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

bool rulefile_valid_metric_name(const char *s)
{
    if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':' ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

static const char *scalar(const struct config_node *n)
{
    return n && n->type == CONFIG_NODE_SCALAR ? n->value : NULL;
}

/* A string-to-string map (labels, annotations) copied into sorted labels. what is
 * "label" or "annotation" for the name error. When tmpl is not NULL each value is
 * parsed as a template named tname. Errors are recorded; returns false on OOM only. */
static bool read_map(struct rf_ctx *c, const struct config_node *m, const char *where,
                     const char *what, const char *tname, struct label **out, size_t *n,
                     struct rule_template ***tmpl)
{
    *out = NULL;
    *n = 0;
    if (!m || (m->type == CONFIG_NODE_SCALAR && !m->quoted && !*m->value))
        return true; /* absent or `labels:` with nothing */
    struct vg_err e;
    if (config_node_check_strmap(m, where, &e) < 0) {
        add_node_err(c, &e);
        return true;
    }
    struct label *ls = vg_arena_calloc(c->arena, (m->n ? m->n : 1) * sizeof *ls);
    if (!ls)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        const char *name = m->keys[i], *val = m->items[i]->value;
        if (!rulefile_valid_label_name(name)) {
            add_err(c, m->items[i], "%s: invalid %s name: %s", where, what, name);
            continue;
        }
        char *nc = vg_arena_strndup(c->arena, name, strlen(name));
        char *vc = vg_arena_strndup(c->arena, val, strlen(val));
        if (!nc || !vc)
            return false;
        ls[k].name = vg_str_c(nc);
        ls[k++].value = vg_str_c(vc);
    }
    labels_sort(ls, k);
    *out = ls;
    *n = k;
    if (!tmpl)
        return true;
    *tmpl = vg_arena_calloc(c->arena, (k ? k : 1) * sizeof **tmpl);
    if (!*tmpl)
        return false;
    for (size_t i = 0; i < k; i++) {
        struct vg_err te;
        (*tmpl)[i] = rule_template_parse(tname, ls[i].value.p, &te);
        if (!(*tmpl)[i]) {
            if (te.code == VG_ENOMEM)
                return false;
            add_err(c, m, "%s: %s \"%s\": %s", where, what, ls[i].name.p, te.msg);
        }
    }
    return true;
}

static bool parse_expr(struct rf_ctx *c, const struct rule_group_def *g, struct rule_def *r,
                       const struct config_node *at, const char *where)
{
    struct vg_err e;
    struct vg_buf b;
    vg_buf_init(&b);
    if (g->lang == RULE_LANG_PROMQL) {
        r->promql = promql_parse(r->expr, strlen(r->expr), &e);
        if (r->promql)
            promql_format(r->promql->root, &b);
    } else {
        r->logql = logql_parse(r->expr, strlen(r->expr), &e);
        if (r->logql && logql_is_log_query(r->logql->root)) {
            add_err(c, at, "%s: a rule needs a LogQL metric query, not a log query", where);
            logql_expr_free(r->logql);
            r->logql = NULL;
            return true;
        }
        if (r->logql)
            logql_format(r->logql->root, &b);
    }
    if (!r->promql && !r->logql) {
        if (e.code == VG_ENOMEM)
            return false;
        add_err(c, at, "%s: could not parse expression: %s", where, e.msg);
        return true;
    }
    const char *q = vg_buf_cstr(&b);
    r->query = q ? vg_arena_strndup(c->arena, q, strlen(q)) : NULL;
    vg_buf_free(&b);
    return r->query != NULL;
}

static bool duration(struct rf_ctx *c, const struct config_node *m, const char *where,
                     const char *key, int64_t *out)
{
    struct vg_err e;
    if (config_node_duration(m, where, key, 0, out, &e) < 0)
        add_node_err(c, &e);
    return true;
}

static const char *const rule_keys[] = {
    "record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations", NULL,
};

static bool read_rule(struct rf_ctx *c, struct rule_group_def *g, size_t idx,
                      const struct config_node *m)
{
    struct rule_def *r = &g->rules[idx];
    r->line = m->line;
    const struct config_node *rec = config_node_get(m, "record");
    const struct config_node *al = config_node_get(m, "alert");
    const struct config_node *ex = config_node_get(m, "expr");
    const char *name = scalar(al) ? scalar(al) : scalar(rec) ? scalar(rec) : "";
    char where[300];
    snprintf(where, sizeof where, "group \"%s\", rule %zu, \"%s\"", g->name, idx + 1, name);
    struct vg_err e;
    if (config_node_check_keys(m, where, rule_keys, &e) < 0) {
        add_node_err(c, &e);
        if (m->type != CONFIG_NODE_MAP)
            return true;
    }
    r->name = vg_arena_strndup(c->arena, name, strlen(name));
    if (!r->name)
        return false;
    if ((rec && !scalar(rec)) || (al && !scalar(al)) || (ex && !scalar(ex))) {
        add_err(c, m, "%s: record, alert and expr must be strings", where);
        return true;
    }
    bool has_rec = rec && *scalar(rec), has_al = al && *scalar(al);
    if (has_rec && has_al) {
        add_err(c, rec, "%s: only one of 'record' and 'alert' must be set", where);
        return true;
    }
    if (!has_rec && !has_al) {
        add_err(c, m, "%s: one of 'record' or 'alert' must be set", where);
        return true;
    }
    r->kind = has_rec ? RULE_RECORD : RULE_ALERT;
    if (!ex || !*scalar(ex)) {
        add_err(c, m, "%s: field 'expr' must be set in rule", where);
    } else {
        r->expr = vg_arena_strndup(c->arena, scalar(ex), strlen(scalar(ex)));
        if (!r->expr || !parse_expr(c, g, r, ex, where))
            return false;
    }
    if (r->kind == RULE_RECORD) {
        if (!rulefile_valid_metric_name(name))
            add_err(c, rec, "%s: invalid recording rule name: %s", where, name);
        if (config_node_get(m, "for"))
            add_err(c, m, "%s: invalid field 'for' in recording rule", where);
        if (config_node_get(m, "keep_firing_for"))
            add_err(c, m, "%s: invalid field 'keep_firing_for' in recording rule", where);
        if (config_node_get(m, "annotations"))
            add_err(c, m, "%s: invalid field 'annotations' in recording rule", where);
    }
    duration(c, m, where, "for", &r->for_ms);
    duration(c, m, where, "keep_firing_for", &r->keep_firing_for_ms);
    /* Templates are named as Prometheus names them, so messages read alike. */
    char tname[300];
    snprintf(tname, sizeof tname, "__alert_%s", name);
    if (!read_map(c, config_node_get(m, "labels"), where, "label", tname, &r->labels,
                  &r->nlabels, r->kind == RULE_ALERT ? &r->label_tmpl : NULL))
        return false;
    if (r->kind == RULE_RECORD)
        return true;
    return read_map(c, config_node_get(m, "annotations"), where, "annotation", tname,
                    &r->annotations, &r->nannotations, &r->annot_tmpl);
}

static const char *const group_keys[] = {
    "name", "interval", "limit", "query_offset", "labels", "type", "rules", NULL,
};

static bool read_group(struct rf_ctx *c, struct rule_group_def *g, size_t gi,
                       const struct config_node *m)
{
    char where[300];
    snprintf(where, sizeof where, "groups[%zu]", gi);
    struct vg_err e;
    g->line = m->line;
    g->file = c->f->path;
    if (config_node_check_keys(m, where, group_keys, &e) < 0) {
        add_node_err(c, &e);
        if (m->type != CONFIG_NODE_MAP)
            return true;
    }
    const char *name = "";
    if (config_node_str(m, where, "name", &name, &e) < 0)
        add_node_err(c, &e);
    if (!*name)
        add_err(c, m, "Groupname must not be empty");
    for (size_t i = 0; i < gi; i++)
        if (*name && c->f->groups[i].name && !strcmp(c->f->groups[i].name, name))
            add_err(c, config_node_get(m, "name"), "groupname: \"%s\" is repeated in the same file",
                    name);
    g->name = vg_arena_strndup(c->arena, name, strlen(name));
    if (!g->name)
        return false;
    snprintf(where, sizeof where, "group \"%s\"", name);
    duration(c, m, where, "interval", &g->interval_ms);
    duration(c, m, where, "query_offset", &g->query_offset_ms);
    if (config_node_int(m, where, "limit", 0, INT64_MAX, &g->limit, &e) < 0)
        add_node_err(c, &e);
    const char *type = "promql";
    if (config_node_str(m, where, "type", &type, &e) < 0)
        add_node_err(c, &e);
    if (!strcmp(type, "logql"))
        g->lang = RULE_LANG_LOGQL;
    else if (strcmp(type, "promql") != 0)
        add_err(c, config_node_get(m, "type"), "%s: type: \"%s\" is not promql or logql", where,
                type);
    if (!read_map(c, config_node_get(m, "labels"), where, "label", NULL, &g->labels, &g->nlabels,
                  NULL))
        return false;
    const struct config_node *rules = config_node_get(m, "rules");
    if (!rules || (rules->type == CONFIG_NODE_SCALAR && !*rules->value))
        return true; /* a group without rules is allowed, as in Prometheus */
    if (rules->type != CONFIG_NODE_SEQ) {
        add_err(c, rules, "%s: rules: expected a list", where);
        return true;
    }
    g->rules = vg_arena_calloc(c->arena, (rules->n ? rules->n : 1) * sizeof *g->rules);
    if (!g->rules)
        return false;
    g->nrules = rules->n;
    c->f->nrules += rules->n;
    for (size_t i = 0; i < rules->n; i++)
        if (!read_rule(c, g, i, rules->items[i]))
            return false;
    return true;
}

static void read_file(struct rf_ctx *c, const struct config_node *root)
{
    static const char *const top_keys[] = { "groups", NULL };
    struct vg_err e;
    if (!root || (root->type == CONFIG_NODE_SCALAR && !*root->value))
        return; /* an empty file has no groups; promtool accepts it */
    if (config_node_check_keys(root, "rule file", top_keys, &e) < 0) {
        add_node_err(c, &e);
        return;
    }
    const struct config_node *gs = config_node_get(root, "groups");
    if (!gs || (gs->type == CONFIG_NODE_SCALAR && !*gs->value))
        return;
    if (gs->type != CONFIG_NODE_SEQ) {
        add_err(c, gs, "groups: expected a list");
        return;
    }
    c->f->groups = vg_arena_calloc(c->arena, (gs->n ? gs->n : 1) * sizeof *c->f->groups);
    if (!c->f->groups) {
        oom(c);
        return;
    }
    c->f->ngroups = gs->n;
    for (size_t i = 0; i < gs->n; i++) {
        if (!read_group(c, &c->f->groups[i], i, gs->items[i])) {
            oom(c);
            return;
        }
    }
}

void rulefile_free(struct rule_file *f)
{
    if (!f)
        return;
    for (size_t g = 0; g < f->ngroups; g++) {
        struct rule_group_def *gd = &f->groups[g];
        for (size_t i = 0; gd->rules && i < gd->nrules; i++) {
            struct rule_def *r = &gd->rules[i];
            promql_expr_free(r->promql);
            logql_expr_free(r->logql);
            for (size_t k = 0; r->label_tmpl && k < r->nlabels; k++)
                rule_template_free(r->label_tmpl[k]);
            for (size_t k = 0; r->annot_tmpl && k < r->nannotations; k++)
                rule_template_free(r->annot_tmpl[k]);
        }
    }
    vg_arena_free(f->priv);
}

/* Loads buf into a config_node tree (*root NULL for an empty document); 0 or the
 * error's code with err on a YAML error. */
static int load_yaml(const char *path, const char *buf, size_t len, struct config_node **root,
                     struct vg_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    *root = NULL;
    if (!yaml_parser_initialize(&parser))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        vg_err_set(err, VG_EINVAL, "%s:%zu: yaml: %s%s%s", path, parser.problem_mark.line + 1,
                   parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
                   parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return VG_EINVAL;
    }
    int rc = 0;
    yaml_node_t *y = yaml_document_get_root_node(&doc);
    if (y && !(*root = config_node_from_yaml(&doc, y, path, 0, err)))
        rc = err->code;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int rulefile_parse(const char *path, const char *buf, size_t len, struct rule_file **out,
                   struct vg_buf *errors, struct vg_err *err)
{
    *out = NULL;
    struct vg_arena *a = vg_arena_new(4096);
    struct rule_file *f = a ? vg_arena_calloc(a, sizeof *f) : NULL;
    char *p = f ? vg_arena_strndup(a, path, strlen(path)) : NULL;
    if (!p) {
        vg_arena_free(a);
        return vg_err_set(err, VG_ENOMEM, "%s: out of memory", path);
    }
    f->priv = a;
    f->path = p;
    struct config_node *root;
    int rc = load_yaml(p, buf, len, &root, err);
    if (rc < 0) {
        if (errors)
            vg_buf_printf(errors, "%s\n", err->msg);
        rulefile_free(f);
        return rc;
    }
    struct rf_ctx c = { .f = f, .arena = a, .errors = errors, .err = err };
    read_file(&c, root);
    config_node_free(root);
    if (c.rc < 0) {
        rulefile_free(f);
        return c.rc;
    }
    *out = f;
    return 0;
}

int rulefile_load(const char *path, struct rule_file **out, struct vg_buf *errors,
                  struct vg_err *err)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        vg_err_set(err, VG_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto report;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0 && b.len <= RULEFILE_MAX_BYTES)
        vg_buf_append(&b, chunk, n);
    int ferr = ferror(fp);
    (void)fclose(fp); /* read-only: nothing lost if close fails */
    if (ferr || vg_buf_failed(&b) || b.len > RULEFILE_MAX_BYTES) {
        if (ferr)
            vg_err_set(err, VG_EIO, "%s: cannot read", path);
        else if (vg_buf_failed(&b))
            vg_err_set(err, VG_ENOMEM, "%s: out of memory", path);
        else
            vg_err_set(err, VG_ETOOLARGE, "%s: larger than %u MiB", path, RULEFILE_MAX_BYTES >> 20);
        vg_buf_free(&b);
        goto report;
    }
    int rc = rulefile_parse(path, b.p ? b.p : "", b.len, out, errors, err);
    vg_buf_free(&b);
    return rc;
report:
    if (errors)
        vg_buf_printf(errors, "%s\n", err->msg);
    return err->code;
}

/* Rules of one group with equal name and labels: promtool's duplicate-rules lint. */
size_t rulefile_duplicates(const struct rule_file *f, struct vg_buf *out)
{
    size_t dups = 0;
    struct vg_buf body;
    vg_buf_init(&body);
    for (size_t gi = 0; gi < f->ngroups; gi++) {
        const struct rule_group_def *g = &f->groups[gi];
        for (size_t i = 0; i < g->nrules; i++) {
            const struct rule_def *a = &g->rules[i];
            bool seen = false; /* reported with an earlier equal rule already */
            for (size_t k = 0; k < i && !seen; k++)
                seen = !strcmp(g->rules[k].name, a->name) &&
                       !labels_cmp(g->rules[k].labels, g->rules[k].nlabels, a->labels, a->nlabels);
            if (seen)
                continue;
            size_t same = 0;
            for (size_t k = i + 1; k < g->nrules; k++) {
                const struct rule_def *b = &g->rules[k];
                if (strcmp(b->name, a->name) != 0 ||
                    labels_cmp(b->labels, b->nlabels, a->labels, a->nlabels))
                    continue;
                if (!same++)
                    vg_buf_printf(&body, "Metric: %s\nGroup: %s (%s:%u", a->name, g->name, f->path, a->line);
                vg_buf_printf(&body, ", %s:%u", f->path, b->line);
            }
            if (!same)
                continue;
            dups += same;
            vg_buf_puts(&body, ")\nLabel(s):\n");
            for (size_t l = 0; l < a->nlabels; l++)
                vg_buf_printf(&body, "\t%.*s: %.*s\n", (int)a->labels[l].name.len, a->labels[l].name.p,
                              (int)a->labels[l].value.len, a->labels[l].value.p);
        }
    }
    if (dups && out) {
        vg_buf_printf(out, "%zu duplicate rule(s) found.\n", dups);
        vg_buf_append(out, body.p, body.len);
        vg_buf_puts(out, "Might cause inconsistency while recording expressions\n");
    }
    vg_buf_free(&body);
    return dups;
}
