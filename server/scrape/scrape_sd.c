/* scrape_sd: file_sd_configs target files (see scrape_sd.h). The files are parsed into
 * the config tree type (config_node_from_yaml from config_int.h) so that messages carry
 * "file:line" like the main config's. The watch is inotify on each glob's directory, as
 * Prometheus watches filepath.Dir of each pattern; it asks only for events that end a
 * change (IN_CLOSE_WRITE, moves, deletions), not IN_MODIFY, so a file is not read while
 * its writer is half way through it. */
#include "scrape_sd.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../config_int.h"

#include <errno.h>
#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

#define SD_MAX_FILE_BYTES (64u << 20)

void scrape_sd_groups_free(struct scrape_sd_group *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        scrape_group_free(&v[i].g);
        vg_free(v[i].filepath);
    }
    vg_free(v);
}

int scrape_sd_parse(const char *name, const char *buf, size_t len, struct scrape_sd_group **out,
                    size_t *n, struct vg_err *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = vg_err_set(err, VG_EINVAL, "%s:%zu: %s", name, parser.problem_mark.line + 1,
                            parser.problem ? parser.problem : "invalid YAML or JSON");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    struct config_node *tree = NULL;
    int rc = 0;
    if (root) {
        tree = config_node_from_yaml(&doc, root, name, 0, err);
        if (!tree)
            rc = err->code ? err->code : VG_EINVAL;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (rc < 0 || !tree)
        return rc;
    if (tree->type != CONFIG_NODE_SEQ) {
        rc = config_node_err(err, tree, "expected a list of target groups");
        config_node_free(tree);
        return rc;
    }
    struct scrape_sd_group *v = vg_realloc(*out, (*n + tree->n + 1) * sizeof *v);
    if (!v) {
        config_node_free(tree);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    *out = v;
    for (size_t i = 0; i < tree->n && rc == 0; i++) {
        char w[32];
        snprintf(w, sizeof w, "[%zu]", i);
        struct scrape_sd_group *sg = &v[*n];
        memset(sg, 0, sizeof *sg);
        rc = scrape_group_parse(tree->items[i], w, &sg->g, err);
        if (rc == 0 && !(sg->filepath = vg_strdup(name)))
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
        if (rc < 0) {
            scrape_group_free(&sg->g);
            vg_free(sg->filepath);
            break;
        }
        (*n)++;
    }
    config_node_free(tree);
    return rc;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct vg_buf b;
    vg_buf_init(&b);
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < SD_MAX_FILE_BYTES)
        vg_buf_append(&b, chunk, r);
    (void)fclose(f); /* opened read-only: a failed close loses nothing */
    if (vg_buf_failed(&b) || b.len >= SD_MAX_FILE_BYTES) {
        vg_buf_free(&b);
        return NULL;
    }
    vg_buf_cstr(&b);
    return vg_buf_steal(&b, len);
}

/* ---------------------------------------------------------------- last good files */

struct keep_file {
    char *path;
    char *buf;      /* the last contents that parsed, NUL-terminated */
    size_t len;
    bool seen;      /* looked at since the last prune */
};

struct scrape_sd_keep {
    pthread_mutex_t mu;
    struct keep_file *v;
    size_t n;
};

struct scrape_sd_keep *scrape_sd_keep_new(void)
{
    struct scrape_sd_keep *k = vg_calloc(1, sizeof *k);
    if (k)
        pthread_mutex_init(&k->mu, NULL);
    return k;
}

void scrape_sd_keep_free(struct scrape_sd_keep *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->n; i++) {
        vg_free(k->v[i].path);
        vg_free(k->v[i].buf);
    }
    vg_free(k->v);
    pthread_mutex_destroy(&k->mu);
    vg_free(k);
}

void scrape_sd_keep_prune(struct scrape_sd_keep *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    size_t m = 0;
    for (size_t i = 0; i < k->n; i++) {
        if (!k->v[i].seen) {
            vg_free(k->v[i].path);
            vg_free(k->v[i].buf);
            continue;
        }
        k->v[i].seen = false;
        k->v[m++] = k->v[i];
    }
    k->n = m;
    pthread_mutex_unlock(&k->mu);
}

/* The entry of path, NULL when there is none. Under k->mu. */
static struct keep_file *keep_find(struct scrape_sd_keep *k, const char *path)
{
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->v[i].path, path))
            return &k->v[i];
    return NULL;
}

/* Remembers buf (taken) as path's last good contents. Without memory the old contents
 * stay: a later failure then falls back to older targets, never to wrong memory. */
static void keep_store(struct scrape_sd_keep *k, const char *path, char *buf, size_t len)
{
    pthread_mutex_lock(&k->mu);
    struct keep_file *f = keep_find(k, path);
    if (!f) {
        struct keep_file *v = vg_realloc(k->v, (k->n + 1) * sizeof *v);
        char *p = vg_strdup(path);
        if (v)
            k->v = v;
        if (!v || !p) {
            vg_free(p);
            vg_free(buf);
            pthread_mutex_unlock(&k->mu);
            return;
        }
        f = &k->v[k->n++];
        *f = (struct keep_file){ .path = p };
    }
    vg_free(f->buf);
    f->buf = buf;
    f->len = len;
    f->seen = true;
    pthread_mutex_unlock(&k->mu);
}

/* Parses path's last good contents into out (a file that fails now). 1 when there were
 * some, 0 when none, VG_ENOMEM. */
static int keep_parse(struct scrape_sd_keep *k, const char *path, struct scrape_sd_group **out,
                      size_t *n, struct vg_err *err)
{
    pthread_mutex_lock(&k->mu);
    struct keep_file *f = keep_find(k, path);
    int rc = 0;
    if (f) {
        f->seen = true;
        rc = scrape_sd_parse(path, f->buf, f->len, out, n, err);
        rc = rc == VG_ENOMEM ? rc : 1; /* it parsed when it was kept */
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* Drops the groups from index before on (a failed file is all or nothing). */
static void groups_truncate(struct scrape_sd_group *v, size_t *n, size_t before)
{
    for (size_t k = before; k < *n; k++) {
        scrape_group_free(&v[k].g);
        vg_free(v[k].filepath);
    }
    *n = before;
}

/* Reads one file into out. 0 (a failure is logged and counted in *nerr), VG_ENOMEM. */
static int read_one(const struct scrape_job *job, struct scrape_sd_keep *keep, const char *path,
                    struct scrape_sd_group **out, size_t *n, uint64_t *nerr)
{
    size_t len = 0, before = *n;
    struct vg_err ferr;
    char *buf = read_file(path, &len);
    int rc = buf ? scrape_sd_parse(path, buf, len, out, n, &ferr)
                 : vg_err_set(&ferr, VG_EINVAL, "%s: cannot read the file (or it is over "
                              "%u MiB)", path, SD_MAX_FILE_BYTES >> 20);
    if (rc == 0 && keep) {
        keep_store(keep, path, buf, len);
        return 0;
    }
    vg_free(buf);
    if (rc == VG_ENOMEM)
        return rc;
    if (rc == 0)
        return 0;
    groups_truncate(*out, n, before);
    (*nerr)++;
    int kept = keep ? keep_parse(keep, path, out, n, &ferr) : 0;
    if (kept == VG_ENOMEM)
        return kept;
    vg_log(VG_LOG_WARN, "scrape", kept ? "bad file_sd file; keeping its previous targets"
                                       : "bad file_sd file", "job", job->name, "error",
           ferr.msg, NULL);
    return 0;
}

int scrape_sd_read_keep(const struct scrape_job *job, struct scrape_sd_keep *keep,
                        struct scrape_sd_group **out, size_t *n, uint64_t *nerrors,
                        struct vg_err *err)
{
    *out = NULL;
    *n = 0;
    uint64_t nerr = 0;
    for (size_t gi = 0; gi < job->nsd_globs; gi++) {
        glob_t gl;
        if (glob(job->sd_globs[gi], 0, NULL, &gl) != 0)
            continue;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            if (read_one(job, keep, gl.gl_pathv[i], out, n, &nerr) == VG_ENOMEM) {
                globfree(&gl);
                scrape_sd_groups_free(*out, *n);
                *out = NULL;
                *n = 0;
                return vg_err_set(err, VG_ENOMEM, "out of memory");
            }
        }
        globfree(&gl);
    }
    if (nerrors)
        *nerrors = nerr;
    return 0;
}

int scrape_sd_read(const struct scrape_job *job, struct scrape_sd_group **out, size_t *n,
                   struct vg_err *err)
{
    return scrape_sd_read_keep(job, NULL, out, n, NULL, err);
}

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

uint64_t scrape_sd_fingerprint(const struct scrape_job *job)
{
    uint64_t h = 0;
    for (size_t gi = 0; gi < job->nsd_globs; gi++) {
        glob_t gl;
        if (glob(job->sd_globs[gi], 0, NULL, &gl) != 0)
            continue;
        for (size_t i = 0; i < gl.gl_pathc; i++) {
            /* the name with its NUL, then the length and bytes (or a marker for a file
             * that cannot be read), so no two file sets hash alike by concatenation */
            uint64_t x = fnv(FNV_OFFSET, gl.gl_pathv[i], strlen(gl.gl_pathv[i]) + 1);
            size_t len = 0;
            char *buf = read_file(gl.gl_pathv[i], &len);
            x = fnv(x, &len, sizeof len);
            x = buf ? fnv(x, buf, len) : fnv(x, "\xff", 1);
            vg_free(buf);
            h = h * 31 + x;
        }
        globfree(&gl);
    }
    return h;
}

/* ---------------------------------------------------------------- watch */

struct scrape_sd_watch {
    int fd;     /* inotify, or -1 */
    int *wds;   /* watch descriptors added since the last clear */
    size_t nwds, cap;
};

struct scrape_sd_watch *scrape_sd_watch_new(struct vg_err *err)
{
    struct scrape_sd_watch *w = vg_calloc(1, sizeof *w);
    if (!w) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    w->fd = -1;
#ifdef __linux__
    /* without inotify (out of instances, say) the refresh re-read still finds changes */
    if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        vg_log(VG_LOG_WARN, "scrape", "cannot watch file_sd directories; files are re-read "
               "only every refresh_interval", "error", strerror(errno), NULL);
#endif
    return w;
}

void scrape_sd_watch_free(struct scrape_sd_watch *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    vg_free(w->wds);
    vg_free(w);
}

int scrape_sd_watch_fd(const struct scrape_sd_watch *w) { return w->fd; }

#ifdef __linux__
/* Watches one directory; 1 when it is watched. */
static int watch_dir(struct scrape_sd_watch *w, const char *dir, const char *job)
{
    int wd = inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
                                               IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |
                                               IN_ONLYDIR);
    if (wd < 0) {
        vg_log(VG_LOG_WARN, "scrape", "cannot watch file_sd directory", "job", job, "dir", dir,
               "error", strerror(errno), NULL);
        return 0;
    }
    for (size_t i = 0; i < w->nwds; i++)
        if (w->wds[i] == wd)
            return 1; /* inotify hands back the same wd for a directory watched already */
    if (w->nwds == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        int *v = vg_realloc(w->wds, cap * sizeof *v);
        if (!v) {
            inotify_rm_watch(w->fd, wd); /* untracked, it would outlive the next clear */
            return 0;
        }
        w->wds = v;
        w->cap = cap;
    }
    w->wds[w->nwds++] = wd;
    return 1;
}
#endif

size_t scrape_sd_watch_add(struct scrape_sd_watch *w, const struct scrape_job *job)
{
    size_t n = 0;
#ifdef __linux__
    for (size_t gi = 0; w->fd >= 0 && gi < job->nsd_globs; gi++) {
        const char *g = job->sd_globs[gi];
        const char *slash = strrchr(g, '/');
        char *dir = slash ? vg_strndup(g, slash == g ? 1 : (size_t)(slash - g)) : vg_strdup(".");
        if (!dir)
            continue;
        glob_t gl;
        if (glob(dir, GLOB_ONLYDIR, NULL, &gl) == 0) {
            for (size_t i = 0; i < gl.gl_pathc; i++)
                n += (size_t)watch_dir(w, gl.gl_pathv[i], job->name);
            globfree(&gl);
        }
        vg_free(dir);
    }
#else
    (void)w;
    (void)job;
#endif
    return n;
}

void scrape_sd_watch_clear(struct scrape_sd_watch *w)
{
#ifdef __linux__
    for (size_t i = 0; i < w->nwds; i++)
        inotify_rm_watch(w->fd, w->wds[i]); /* EINVAL for one already gone: fine */
#endif
    w->nwds = 0;
}

bool scrape_sd_watch_drain(struct scrape_sd_watch *w)
{
    bool any = false;
    if (w->fd < 0)
        return false;
    /* aligned as inotify_event requires */
    char buf[4096] __attribute__((aligned(__alignof__(long))));
    for (;;) {
        ssize_t r = read(w->fd, buf, sizeof buf);
        if (r > 0) {
            any = true;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        return any; /* EAGAIN: drained */
    }
}
