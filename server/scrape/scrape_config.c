/* scrape_config: parsing `scrape_configs` and building target labels (see the header for
 * the shape and the rules, which follow Prometheus 2.x's config and PopulateLabels). */
#include "scrape_config.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../config_node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const job_keys[] = {
    "job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "params",
    "honor_labels", "honor_timestamps", "basic_auth", "authorization", "bearer_token",
    "bearer_token_file", "tls_config", "static_configs", "file_sd_configs", "relabel_configs",
    "metric_relabel_configs", "sample_limit", "label_limit", "label_name_length_limit",
    "label_value_length_limit", "body_size_limit", "follow_redirects", "enable_http2",
    "scrape_protocols", "target_limit", NULL,
};

void scrape_group_free(struct scrape_group *g)
{
    for (size_t i = 0; i < g->ntargets; i++)
        vg_free(g->targets[i]);
    vg_free(g->targets);
    for (size_t i = 0; i < g->nlabels; i++) {
        vg_free((char *)g->labels[i].name.p);
        vg_free((char *)g->labels[i].value.p);
    }
    vg_free(g->labels);
    memset(g, 0, sizeof *g);
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vg_free(v[i]);
    vg_free(v);
}

static void job_free(struct scrape_job *j)
{
    vg_free(j->name);
    vg_free(j->metrics_path);
    vg_free(j->scheme);
    for (size_t i = 0; i < j->nparams; i++) {
        vg_free(j->params[i].name);
        free_strv(j->params[i].values, j->params[i].nvalues);
    }
    vg_free(j->params);
    vg_free(j->basic_user);
    vg_free(j->basic_pass);
    vg_free(j->auth_header);
    tls_config_free(&j->tls);
    for (size_t i = 0; i < j->ngroups; i++)
        scrape_group_free(&j->groups[i]);
    vg_free(j->groups);
    free_strv(j->sd_globs, j->nsd_globs);
    relabel_rules_free(&j->relabel);
    relabel_rules_free(&j->metric_relabel);
}

void scrape_config_free(struct scrape_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->njobs; i++)
        if (c->jobs)
            job_free(&c->jobs[i]);
    vg_free(c->jobs);
    vg_free(c->base_dir);
    vg_free(c);
}

static bool empty_node(const struct config_node *n)
{
    return !n || (n->type == CONFIG_NODE_SCALAR && !*n->value && !n->quoted);
}

/* A path relative to the config file's directory. vg_malloc'd or NULL. */
static char *resolve(const struct scrape_config *c, const char *path)
{
    if (path[0] == '/' || !c->base_dir)
        return vg_strdup(path);
    size_t n = strlen(c->base_dir) + strlen(path) + 2;
    char *p = vg_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", c->base_dir, path);
    return p;
}

/* The contents of a secret file, trailing newlines removed (as Prometheus trims spaces). */
static int read_secret(const struct scrape_config *c, const struct config_node *at,
                       const char *where, const char *path, char **out, struct vg_err *err)
{
    char *full = resolve(c, path);
    if (!full)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    FILE *f = fopen(full, "rb");
    if (!f) {
        int e = errno;
        vg_free(full);
        return config_node_err(err, at, "%s: cannot read \"%s\": %s", where, path, strerror(e));
    }
    vg_free(full);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    (void)fclose(f); /* read-only */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    *out = vg_strndup(buf, n);
    return *out ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
}

static int dup_into(char **dst, const char *s, struct vg_err *err)
{
    vg_free(*dst);
    *dst = vg_strdup(s);
    return *dst ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
}

static int parse_auth(const struct scrape_config *c, const struct config_node *m,
                      const char *where, struct scrape_job *j, struct vg_err *err)
{
    char w[192];
    int rc;
    const struct config_node *ba = config_node_get(m, "basic_auth");
    const struct config_node *az = config_node_get(m, "authorization");
    const char *bt = NULL, *btf = NULL;
    if ((rc = config_node_str(m, where, "bearer_token", &bt, err)) < 0 ||
        (rc = config_node_str(m, where, "bearer_token_file", &btf, err)) < 0)
        return rc;
    int kinds = !empty_node(ba) + !empty_node(az) + (bt || btf);
    if (kinds > 1)
        return config_node_err(err, m, "%s: at most one of basic_auth, authorization and "
                               "bearer_token may be configured", where);
    if (!empty_node(ba)) {
        static const char *const keys[] = { "username", "password", "password_file", NULL };
        snprintf(w, sizeof w, "%s.basic_auth", where);
        const char *user = "", *pass = NULL, *pfile = NULL;
        if ((rc = config_node_check_keys(ba, w, keys, err)) < 0 ||
            (rc = config_node_str(ba, w, "username", &user, err)) < 0 ||
            (rc = config_node_str(ba, w, "password", &pass, err)) < 0 ||
            (rc = config_node_str(ba, w, "password_file", &pfile, err)) < 0)
            return rc;
        if (pass && pfile)
            return config_node_err(err, ba, "%s: password and password_file are mutually "
                                   "exclusive", w);
        if ((rc = dup_into(&j->basic_user, user, err)) < 0)
            return rc;
        if (pfile)
            return read_secret(c, config_node_get(ba, "password_file"), w, pfile,
                               &j->basic_pass, err);
        return dup_into(&j->basic_pass, pass ? pass : "", err);
    }
    const char *type = "Bearer", *cred = bt, *cfile = btf;
    const struct config_node *at = m;
    if (!empty_node(az)) {
        static const char *const keys[] = { "type", "credentials", "credentials_file", NULL };
        snprintf(w, sizeof w, "%s.authorization", where);
        if ((rc = config_node_check_keys(az, w, keys, err)) < 0 ||
            (rc = config_node_str(az, w, "type", &type, err)) < 0 ||
            (rc = config_node_str(az, w, "credentials", &cred, err)) < 0 ||
            (rc = config_node_str(az, w, "credentials_file", &cfile, err)) < 0)
            return rc;
        if (!strcasecmp(type, "basic"))
            return config_node_err(err, az, "%s.type: Basic is not allowed, use basic_auth",
                                   w);
        at = az;
    } else if (!bt && !btf) {
        return 0;
    } else {
        snprintf(w, sizeof w, "%s", where);
    }
    if (cred && cfile)
        return config_node_err(err, at, "%s: credentials and credentials_file are mutually "
                               "exclusive", w);
    char *secret = NULL;
    if (cfile) {
        if ((rc = read_secret(c, at, w, cfile, &secret, err)) < 0)
            return rc;
    } else {
        secret = vg_strdup(cred ? cred : "");
        if (!secret)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    size_t n = strlen(type) + strlen(secret) + 2;
    j->auth_header = vg_malloc(n);
    if (j->auth_header)
        snprintf(j->auth_header, n, "%s %s", type, secret);
    vg_free(secret);
    return j->auth_header ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
}

static int parse_params(const struct config_node *m, const char *where, struct scrape_job *j,
                        struct vg_err *err)
{
    const struct config_node *p = config_node_get(m, "params");
    if (empty_node(p))
        return 0;
    char w[192];
    snprintf(w, sizeof w, "%s.params", where);
    if (p->type != CONFIG_NODE_MAP)
        return config_node_err(err, p, "%s: expected a mapping of name to a list of values", w);
    j->params = vg_calloc(p->n ? p->n : 1, sizeof *j->params);
    if (!j->params)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < p->n; i++) {
        const char **vals;
        size_t nv;
        int rc = config_node_strlist(p, w, p->keys[i], &vals, &nv, err);
        if (rc < 0)
            return rc;
        struct scrape_param *sp = &j->params[j->nparams++];
        sp->name = vg_strdup(p->keys[i]);
        sp->values = vg_calloc(nv ? nv : 1, sizeof *sp->values);
        bool oom = !sp->name || !sp->values;
        for (size_t k = 0; !oom && k < nv; k++) {
            oom = !(sp->values[k] = vg_strdup(vals[k]));
            sp->nvalues += !oom;
        }
        vg_free(vals);
        if (oom)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    return 0;
}

int scrape_group_parse(const struct config_node *it, const char *where, struct scrape_group *g,
                       struct vg_err *err)
{
    static const char *const keys[] = { "targets", "labels", NULL };
    const char **targets;
    size_t nt;
    int rc;
    if ((rc = config_node_check_keys(it, where, keys, err)) < 0 ||
        (rc = config_node_strlist(it, where, "targets", &targets, &nt, err)) < 0)
        return rc;
    g->targets = vg_calloc(nt ? nt : 1, sizeof *g->targets);
    bool oom = !g->targets;
    for (size_t k = 0; !oom && k < nt; k++) {
        oom = !(g->targets[k] = vg_strdup(targets[k]));
        g->ntargets += !oom;
    }
    vg_free(targets);
    if (oom)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    const struct config_node *ls = config_node_get(it, "labels");
    if (empty_node(ls))
        return 0;
    char lw[224];
    snprintf(lw, sizeof lw, "%s.labels", where);
    if ((rc = config_node_check_strmap(ls, lw, err)) < 0)
        return rc;
    g->labels = vg_calloc(ls->n ? ls->n : 1, sizeof *g->labels);
    if (!g->labels)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t k = 0; k < ls->n; k++) {
        if (!relabel_valid_label_name(vg_str_c(ls->keys[k])))
            return config_node_err(err, ls->items[k], "%s: \"%s\" is not a valid label name",
                                   lw, ls->keys[k]);
        char *n = vg_strdup(ls->keys[k]), *v = vg_strdup(ls->items[k]->value);
        if (!n || !v) {
            vg_free(n);
            vg_free(v);
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        }
        g->labels[g->nlabels++] = (struct label){ vg_str_c(n), vg_str_c(v) };
    }
    return 0;
}

static int parse_static(const struct config_node *m, const char *where, struct scrape_job *j,
                        struct vg_err *err)
{
    const struct config_node *sc = config_node_get(m, "static_configs");
    if (empty_node(sc))
        return 0;
    if (sc->type != CONFIG_NODE_SEQ)
        return config_node_err(err, sc, "%s.static_configs: expected a list", where);
    j->groups = vg_calloc(sc->n ? sc->n : 1, sizeof *j->groups);
    if (!j->groups)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < sc->n; i++) {
        char w[192];
        snprintf(w, sizeof w, "%s.static_configs[%zu]", where, i);
        int rc = scrape_group_parse(sc->items[i], w, &j->groups[j->ngroups++], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_file_sd(const struct scrape_config *c, const struct config_node *m,
                         const char *where, struct scrape_job *j, struct vg_err *err)
{
    const struct config_node *fs = config_node_get(m, "file_sd_configs");
    j->sd_refresh_ms = 5LL * 60 * 1000;
    if (empty_node(fs))
        return 0;
    if (fs->type != CONFIG_NODE_SEQ)
        return config_node_err(err, fs, "%s.file_sd_configs: expected a list", where);
    static const char *const keys[] = { "files", "refresh_interval", NULL };
    for (size_t i = 0; i < fs->n; i++) {
        char w[192];
        snprintf(w, sizeof w, "%s.file_sd_configs[%zu]", where, i);
        const char **files;
        size_t nf;
        int rc;
        int64_t refresh = j->sd_refresh_ms;
        if ((rc = config_node_check_keys(fs->items[i], w, keys, err)) < 0 ||
            (rc = config_node_duration(fs->items[i], w, "refresh_interval", 1, &refresh,
                                       err)) < 0 ||
            (rc = config_node_strlist(fs->items[i], w, "files", &files, &nf, err)) < 0)
            return rc;
        if (refresh < j->sd_refresh_ms)
            j->sd_refresh_ms = refresh;
        if (nf == 0) {
            vg_free(files);
            return config_node_err(err, fs->items[i], "%s.files: at least one file glob is "
                                   "required", w);
        }
        char **g = vg_realloc(j->sd_globs, (j->nsd_globs + nf) * sizeof *g);
        if (!g) {
            vg_free(files);
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        }
        j->sd_globs = g;
        for (size_t k = 0; k < nf; k++) {
            const char *f = files[k];
            size_t fl = strlen(f);
            bool ext = (fl > 5 && !strcmp(f + fl - 5, ".json")) ||
                       (fl > 4 && !strcmp(f + fl - 4, ".yml")) ||
                       (fl > 5 && !strcmp(f + fl - 5, ".yaml"));
            if (!ext) {
                vg_free(files);
                return config_node_err(err, config_node_get(fs->items[i], "files"),
                                       "%s.files[%zu]: \"%s\" must end in .json, .yml or "
                                       ".yaml", w, k, f);
            }
            if (!(j->sd_globs[j->nsd_globs] = resolve(c, f))) {
                vg_free(files);
                return vg_err_set(err, VG_ENOMEM, "out of memory");
            }
            j->nsd_globs++;
        }
        vg_free(files);
    }
    return 0;
}

static int parse_size(const struct config_node *m, const char *where, const char *key,
                      int64_t *out, struct vg_err *err)
{
    const struct config_node *v = config_node_get(m, key);
    if (!v)
        return 0;
    struct vg_err serr;
    if (v->type != CONFIG_NODE_SCALAR || config_parse_size(v->value, out, &serr) < 0 || *out < 0)
        return config_node_err(err, v, "%s.%s: expected a size such as \"10MiB\"", where, key);
    return 0;
}

/* The limit keys, which global and a job share (global's are the jobs' defaults). */
static int parse_limits(const struct config_node *m, const char *where, struct scrape_job *j,
                        struct vg_err *err)
{
    int rc;
    if ((rc = config_node_int(m, where, "sample_limit", 0, INT64_MAX, &j->sample_limit,
                              err)) < 0 ||
        (rc = config_node_int(m, where, "label_limit", 0, INT64_MAX, &j->label_limit, err)) < 0 ||
        (rc = config_node_int(m, where, "label_name_length_limit", 0, INT64_MAX,
                              &j->label_name_length_limit, err)) < 0 ||
        (rc = config_node_int(m, where, "label_value_length_limit", 0, INT64_MAX,
                              &j->label_value_length_limit, err)) < 0)
        return rc;
    return parse_size(m, where, "body_size_limit", &j->body_size_limit, err);
}

/* A job's 0 (unset) limit takes global's, as Prometheus; the body size then the built-in
 * ceiling. */
static void inherit_limits(struct scrape_job *j, const struct scrape_job *g)
{
    if (!j->sample_limit)
        j->sample_limit = g->sample_limit;
    if (!j->label_limit)
        j->label_limit = g->label_limit;
    if (!j->label_name_length_limit)
        j->label_name_length_limit = g->label_name_length_limit;
    if (!j->label_value_length_limit)
        j->label_value_length_limit = g->label_value_length_limit;
    if (!j->body_size_limit)
        j->body_size_limit = g->body_size_limit;
    if (!j->body_size_limit)
        j->body_size_limit = SCRAPE_DEFAULT_BODY_SIZE_LIMIT;
}

static int parse_job(const struct scrape_config *c, const struct config_node *m,
                     const char *where, int64_t gint, int64_t gtimeout, struct scrape_job *j,
                     struct vg_err *err)
{
    int rc;
    if ((rc = config_node_check_keys(m, where, job_keys, err)) < 0)
        return rc;
    const char *name = NULL, *path = "/metrics", *scheme = "http";
    j->interval_ms = gint;
    j->timeout_ms = -1;
    j->honor_timestamps = true;
    if ((rc = config_node_str(m, where, "job_name", &name, err)) < 0 ||
        (rc = config_node_str(m, where, "metrics_path", &path, err)) < 0 ||
        (rc = config_node_str(m, where, "scheme", &scheme, err)) < 0 ||
        (rc = config_node_duration(m, where, "scrape_interval", 1, &j->interval_ms, err)) < 0 ||
        (rc = config_node_duration(m, where, "scrape_timeout", 1, &j->timeout_ms, err)) < 0 ||
        (rc = config_node_bool(m, where, "honor_labels", &j->honor_labels, err)) < 0 ||
        (rc = config_node_bool(m, where, "honor_timestamps", &j->honor_timestamps, err)) < 0 ||
        (rc = parse_limits(m, where, j, err)) < 0)
        return rc;
    if (!name || !*name)
        return config_node_err(err, m, "%s: job_name is required", where);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        return config_node_err(err, config_node_get(m, "scheme"),
                               "%s.scheme: \"%s\" is not http or https", where, scheme);
    if (j->timeout_ms < 0) {
        j->timeout_ms = gtimeout < j->interval_ms ? gtimeout : j->interval_ms;
    } else if (j->timeout_ms > j->interval_ms) {
        return config_node_err(err, config_node_get(m, "scrape_timeout"),
                               "%s.scrape_timeout: greater than scrape_interval", where);
    }
    if ((rc = dup_into(&j->name, name, err)) < 0 ||
        (rc = dup_into(&j->metrics_path, path, err)) < 0 ||
        (rc = dup_into(&j->scheme, scheme, err)) < 0 ||
        (rc = parse_params(m, where, j, err)) < 0 ||
        (rc = parse_auth(c, m, where, j, err)) < 0 || (rc = tls_config_parse(m, where, c->base_dir, &j->tls, err)) < 0 ||
        (rc = parse_static(m, where, j, err)) < 0 ||
        (rc = parse_file_sd(c, m, where, j, err)) < 0)
        return rc;
    char w[192];
    snprintf(w, sizeof w, "%s.relabel_configs", where);
    if ((rc = relabel_parse(config_node_get(m, "relabel_configs"), w, &j->relabel, err)) < 0)
        return rc;
    snprintf(w, sizeof w, "%s.metric_relabel_configs", where);
    return relabel_parse(config_node_get(m, "metric_relabel_configs"), w, &j->metric_relabel,
                         err);
}

static char *config_dir(const struct config *cfg)
{
    const char *src = cfg->source;
    if (!src || src[0] == '<')
        return vg_strdup(".");
    const char *slash = strrchr(src, '/');
    if (!slash)
        return vg_strdup(".");
    return slash == src ? vg_strdup("/") : vg_strndup(src, (size_t)(slash - src));
}

int scrape_config_parse(const struct config *cfg, struct scrape_config **out,
                        struct vg_err *err)
{
    *out = NULL;
    struct scrape_config *c = vg_calloc(1, sizeof *c);
    if (!c || !(c->base_dir = config_dir(cfg))) {
        vg_free(c);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    int64_t gint = SCRAPE_DEFAULT_INTERVAL_MS, gtimeout = SCRAPE_DEFAULT_TIMEOUT_MS;
    const struct config_node *g = config_block(cfg, "global");
    struct scrape_job glim;   /* only the limits are used */
    memset(&glim, 0, sizeof glim);
    int rc = 0;
    if (!empty_node(g) && g->type == CONFIG_NODE_MAP &&
        ((rc = config_node_duration(g, "global", "scrape_interval", 1, &gint, err)) < 0 ||
         (rc = config_node_duration(g, "global", "scrape_timeout", 1, &gtimeout, err)) < 0 ||
         (rc = parse_limits(g, "global", &glim, err)) < 0)) {
        scrape_config_free(c);
        return rc;
    }
    if (gtimeout > gint && !config_node_get(g, "scrape_timeout")) {
        gtimeout = gint; /* the default timeout never exceeds the interval */
    } else if (gtimeout > gint) {
        scrape_config_free(c);
        return config_node_err(err, config_node_get(g, "scrape_timeout"),
                               "global.scrape_timeout: greater than scrape_interval");
    }
    const struct config_node *sc = config_block(cfg, "scrape_configs");
    if (empty_node(sc)) {
        *out = c;
        return 0;
    }
    if (sc->type != CONFIG_NODE_SEQ) {
        scrape_config_free(c);
        return config_node_err(err, sc, "scrape_configs: expected a list of scrape configs");
    }
    c->jobs = vg_calloc(sc->n ? sc->n : 1, sizeof *c->jobs);
    if (!c->jobs) {
        scrape_config_free(c);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < sc->n; i++) {
        char w[64];
        snprintf(w, sizeof w, "scrape_configs[%zu]", i);
        c->njobs = i + 1;
        if ((rc = parse_job(c, sc->items[i], w, gint, gtimeout, &c->jobs[i], err)) < 0)
            break;
        inherit_limits(&c->jobs[i], &glim);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(c->jobs[k].name, c->jobs[i].name)) {
                rc = config_node_err(err, config_node_get(sc->items[i], "job_name"),
                                     "%s.job_name: \"%s\" is used by scrape_configs[%zu] too",
                                     w, c->jobs[i].name, k);
                break;
            }
        if (rc < 0)
            break;
    }
    if (rc < 0) {
        scrape_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------- targets */

static int put_default(struct relabel_set *s, const char *name, const char *value)
{
    if (relabel_set_get(s, vg_str_c(name)).p)
        return 0;
    return relabel_set_put(s, vg_str_c(name), vg_str_c(value));
}

/* A sorted copy of s with every string copied too: group labels may come from a file_sd
 * file whose parsed groups are freed once the targets are built. */
static struct label *copy_sorted(struct relabel_set *s, struct vg_arena *a, size_t *n)
{
    relabel_set_sort(s);
    *n = s->n;
    struct label *v = vg_arena_alloc(a, (s->n ? s->n : 1) * sizeof *v);
    for (size_t i = 0; v && i < s->n; i++) {
        char *nm = vg_arena_strndup(a, s->v[i].name.p, s->v[i].name.len);
        char *vl = vg_arena_strndup(a, s->v[i].value.p, s->v[i].value.len);
        if (!nm || !vl)
            return NULL;
        v[i] = (struct label){ { nm, s->v[i].name.len }, { vl, s->v[i].value.len } };
    }
    return v;
}

void scrape_format_duration(char *out, size_t cap, int64_t ms)
{
    static const struct { const char *u; int64_t ms; } units[] = {
        { "y", 365LL * 86400000 }, { "w", 7LL * 86400000 }, { "d", 86400000 },
        { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
    };
    size_t len = 0;
    out[0] = '\0';
    if (ms == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0] && len < cap; i++) {
        if (ms >= units[i].ms) {
            len += (size_t)snprintf(out + len, cap - len, "%lld%s",
                                    (long long)(ms / units[i].ms), units[i].u);
            ms %= units[i].ms;
        }
    }
}

/* Appends s percent-encoded as Go's url.QueryEscape does. */
static void query_escape(struct vg_buf *b, struct vg_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            vg_buf_putc(b, (char)c);
        else if (c == ' ')
            vg_buf_putc(b, '+');
        else
            vg_buf_printf(b, "%%%02X", c);
    }
}

struct qparam {
    struct vg_str name, value;
    size_t order;
};

static int cmp_qparam(const void *a, const void *b)
{
    const struct qparam *x = a, *y = b;
    int c = vg_str_cmp(x->name, y->name);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* scheme://address/path?params as Prometheus's target URL (params sorted by name). */
static const char *build_url(const struct scrape_job *job, const struct relabel_set *s,
                             struct vg_arena *a)
{
    size_t cap = 8;
    for (size_t i = 0; i < job->nparams; i++)
        cap += job->params[i].nvalues;
    cap += s->n;
    struct qparam *q = vg_arena_alloc(a, cap * sizeof *q);
    if (!q)
        return NULL;
    size_t nq = 0;
    for (size_t i = 0; i < job->nparams; i++) {
        struct vg_str name = vg_str_c(job->params[i].name);
        char pl[256];
        snprintf(pl, sizeof pl, "__param_%s", job->params[i].name);
        struct vg_str over = relabel_set_get(s, vg_str_c(pl));
        for (size_t k = 0; k < job->params[i].nvalues; k++, nq++) {
            size_t at = nq; /* its position, so the sort below keeps the given order */
            q[at] = (struct qparam){ name, k == 0 && over.p ? over
                                                            : vg_str_c(job->params[i].values[k]),
                                     at };
        }
    }
    for (size_t i = 0; i < s->n; i++) {
        struct vg_str n = s->v[i].name;
        if (n.len <= 8 || memcmp(n.p, "__param_", 8) != 0)
            continue;
        struct vg_str pn = { n.p + 8, n.len - 8 };
        bool have = false;
        for (size_t k = 0; k < job->nparams && !have; k++)
            have = vg_str_eq_c(pn, job->params[k].name) && job->params[k].nvalues;
        if (!have) {
            size_t at = nq;
            q[at] = (struct qparam){ pn, s->v[i].value, at };
            nq++;
        }
    }
    qsort(q, nq, sizeof *q, cmp_qparam);
    struct vg_buf b;
    vg_buf_init(&b);
    struct vg_str scheme = relabel_set_get(s, VG_STR("__scheme__"));
    struct vg_str addr = relabel_set_get(s, VG_STR("__address__"));
    struct vg_str path = relabel_set_get(s, VG_STR("__metrics_path__"));
    vg_buf_append(&b, scheme.p, scheme.len);
    vg_buf_puts(&b, "://");
    vg_buf_append(&b, addr.p, addr.len);
    if (path.len && path.p[0] != '/')
        vg_buf_putc(&b, '/');
    vg_buf_append(&b, path.p, path.len);
    for (size_t i = 0; i < nq; i++) {
        vg_buf_putc(&b, i ? '&' : '?');
        query_escape(&b, q[i].name);
        vg_buf_putc(&b, '=');
        query_escape(&b, q[i].value);
    }
    const char *r = vg_buf_failed(&b) ? NULL : vg_arena_strndup(a, b.p ? b.p : "", b.len);
    vg_buf_free(&b);
    return r;
}

static int label_duration(struct relabel_set *s, const char *name, int64_t *out,
                          struct vg_err *err)
{
    struct vg_str v = relabel_set_get(s, vg_str_c(name));
    char z[64];
    if (!v.p || v.len >= sizeof z)
        return v.p ? vg_err_set(err, VG_EINVAL, "%s: invalid duration", name) : 0;
    memcpy(z, v.p, v.len);
    z[v.len] = '\0';
    struct vg_err derr;
    if (config_parse_duration(z, out, &derr) < 0 || *out <= 0)
        return vg_err_set(err, VG_EINVAL, "error parsing %s \"%s\"", name, z);
    return 0;
}

int scrape_target_build(const struct scrape_job *job, const struct scrape_group *g, size_t ti,
                        const struct label *extra, size_t nextra, struct vg_arena *a,
                        struct scrape_target_def *def, struct vg_err *err)
{
    memset(def, 0, sizeof *def);
    struct relabel_set s;
    relabel_set_init(&s, a);
    char iv[32], to[32];
    scrape_format_duration(iv, sizeof iv, job->interval_ms);
    scrape_format_duration(to, sizeof to, job->timeout_ms);
    char *ivc = vg_arena_strndup(a, iv, strlen(iv)), *toc = vg_arena_strndup(a, to, strlen(to));
    if (!ivc || !toc)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < nextra && rc == 0; i++)
        rc = relabel_set_put(&s, extra[i].name, extra[i].value);
    for (size_t i = 0; i < g->nlabels && rc == 0; i++)
        rc = relabel_set_put(&s, g->labels[i].name, g->labels[i].value);
    if (rc == 0)
        rc = relabel_set_put(&s, VG_STR("__address__"), vg_str_c(g->targets[ti]));
    if (rc == 0 && (put_default(&s, "job", job->name) < 0 ||
                    put_default(&s, "__scrape_interval__", ivc) < 0 ||
                    put_default(&s, "__scrape_timeout__", toc) < 0 ||
                    put_default(&s, "__metrics_path__", job->metrics_path) < 0 ||
                    put_default(&s, "__scheme__", job->scheme) < 0))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < job->nparams && rc == 0; i++) {
        if (!job->params[i].nvalues)
            continue;
        size_t n = strlen(job->params[i].name) + 9;
        char *pn = vg_arena_alloc(a, n);
        if (!pn)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        snprintf(pn, n, "__param_%s", job->params[i].name);
        rc = put_default(&s, pn, job->params[i].values[0]);
    }
    if (rc < 0)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    /* the discovered labels: a sorted copy taken before relabelling changes s */
    if (!(def->discovered = copy_sorted(&s, a, &def->ndiscovered)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    rc = relabel_apply(&job->relabel, &s);
    if (rc < 0)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    if (rc == 0) {
        def->dropped = true;
        return 0;
    }
    struct vg_str addr = relabel_set_get(&s, VG_STR("__address__"));
    if (!addr.len)
        return vg_err_set(err, VG_EINVAL, "no address");
    if (memchr(addr.p, '/', addr.len) || memchr(addr.p, '@', addr.len) ||
        memchr(addr.p, '?', addr.len))
        return vg_err_set(err, VG_EINVAL, "invalid address \"%.*s\"", (int)addr.len, addr.p);
    /* A port by scheme when the address has none (Prometheus 2.x). "[::1]" counts as
     * having none; "[::1]:80" and "host:80" have one. */
    const char *close = memchr(addr.p, ']', addr.len);
    const char *colon = NULL;
    for (size_t i = addr.len; i-- > 0;)
        if (addr.p[i] == ':') {
            colon = addr.p + i;
            break;
        }
    bool has_port = close ? (colon && colon > close) : colon != NULL;
    if (!has_port) {
        struct vg_str scheme = relabel_set_get(&s, VG_STR("__scheme__"));
        const char *port = vg_str_eq_c(scheme, "https") ? ":443" : ":80";
        char *na = vg_arena_alloc(a, addr.len + 5);
        if (!na)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        memcpy(na, addr.p, addr.len);
        memcpy(na + addr.len, port, strlen(port) + 1);
        if (relabel_set_put(&s, VG_STR("__address__"), vg_str_c(na)) < 0)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        addr = vg_str_c(na);
    }
    def->interval_ms = job->interval_ms;
    def->timeout_ms = job->timeout_ms;
    if ((rc = label_duration(&s, "__scrape_interval__", &def->interval_ms, err)) < 0 ||
        (rc = label_duration(&s, "__scrape_timeout__", &def->timeout_ms, err)) < 0)
        return rc;
    if (def->timeout_ms > def->interval_ms)
        return vg_err_set(err, VG_EINVAL, "scrape timeout cannot be greater than scrape "
                          "interval (\"%s\" > \"%s\")", to, iv);
    if (!(def->url = build_url(job, &s, a)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    /* the public labels: no "__" ones, instance defaulting to the address */
    struct relabel_set pub;
    relabel_set_init(&pub, a);
    for (size_t i = 0; i < s.n; i++)
        if (!(s.v[i].name.len >= 2 && s.v[i].name.p[0] == '_' && s.v[i].name.p[1] == '_') &&
            relabel_set_put(&pub, s.v[i].name, s.v[i].value) < 0)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
    if ((!relabel_set_get(&pub, VG_STR("instance")).p &&
         relabel_set_put(&pub, VG_STR("instance"), addr) < 0))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    if (!(def->labels = copy_sorted(&pub, a, &def->nlabels)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    uint64_t h = labels_hash(def->labels, def->nlabels);
    for (const char *p = def->url; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    def->hash = h;
    return 1;
}
