/* filetail: see filetail.h for the config, the rotation and offset rules and metrics.
 *
 * One thread does everything in a fixed order each poll: scan (glob, open new files,
 * mark files that left the globs), read every file (records go into the batch, which
 * is pushed whenever it fills), push what is left, close rotated-away files that are
 * done, save positions. Because one thread reads, pushes and commits, a file's
 * offsets need no lock: `offset` is the next byte to read, `emitted` the end of the
 * last record put in the batch, `committed` the end of the last record stored. A push
 * that stores sets committed = emitted for every file; a push that fails rewinds every
 * file to committed (and forgets its pending bytes), so they are read again.
 *
 * s->mu guards only the sync counters and `stopping` (filetail_sync, free). */
#include "filetail.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/tsdb/labels.h"
#include "../config_node.h"
#include "../metrics.h"
#include "filetail_lines.h"
#include "ingest.h"
#include "log_batch.h"
#include "logparse/logparse.h"
#include "logproc.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECEIVER "filetail"
#define POLL_MS 250
#define ROTATE_WAIT_MS 1000
#define BATCH_ENTRIES ((size_t)1000)
#define BATCH_BYTES ((size_t)1 << 20)
#define READ_BUF ((size_t)65536)
#define READ_CAP ((uint64_t)4 << 20)
#define MAX_FILES 4096
#define MAX_LABEL_FIELDS 8
#define COMPLAIN_MS 60000
#define DEFAULT_MAX_LINE ((int64_t)256 * 1024)
#define POSITIONS_HEADER "vigil-filetail-positions 1"

/* ---- sources (the config) ---- */

struct source {
    char *name;
    char **paths;
    size_t npaths;
    struct label *labels;      /* the configured ones; strings owned */
    size_t nlabels;
    char **label_fields;
    size_t nlabel_fields;
    struct logparse *parser;   /* NULL for parser none */
    struct matcher_regex *start;
    struct filetail_lines_opts lo;
    bool start_end;
    struct logproc *procs;
};

static void source_free(struct source *s)
{
    vg_free(s->name);
    for (size_t i = 0; i < s->npaths; i++)
        vg_free(s->paths[i]);
    vg_free(s->paths);
    for (size_t i = 0; i < s->nlabels; i++) {
        vg_free((char *)s->labels[i].name.p);
        vg_free((char *)s->labels[i].value.p);
    }
    vg_free(s->labels);
    for (size_t i = 0; i < s->nlabel_fields; i++)
        vg_free(s->label_fields[i]);
    vg_free(s->label_fields);
    logparse_free(s->parser);
    matcher_regex_free(s->start);
    logproc_free(s->procs);
}

static void sources_free(struct source *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        source_free(&v[i]);
    vg_free(v);
}

static int oom(struct vg_err *err)
{
    return vg_err_set(err, VG_ENOMEM, "out of memory");
}

/* Copies a list of strings (config_node_strlist) into owned strings. */
static int own_list(const char **in, size_t n, char ***out, struct vg_err *err)
{
    *out = vg_calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return oom(err);
    for (size_t i = 0; i < n; i++)
        if (!((*out)[i] = vg_strdup(in[i])))
            return oom(err);
    return 0;
}

static int parse_labels(struct source *s, const struct config_node *src, const char *w,
                        struct vg_err *err)
{
    const struct config_node *ln = config_node_get(src, "labels");
    if (!ln)
        return 0;
    char where[96];
    snprintf(where, sizeof where, "%s.labels", w);
    if (config_node_check_strmap(ln, where, err) < 0)
        return VG_EINVAL;
    if (!(s->labels = vg_calloc(ln->n ? ln->n : 1, sizeof *s->labels)))
        return oom(err);
    for (size_t i = 0; i < ln->n; i++) {
        const char *k = ln->keys[i], *v = ln->items[i]->value;
        if (!ingest_valid_label_name(vg_str_c(k)) || !strcmp(k, "filename"))
            return config_node_err(err, ln->items[i], "%s: \"%s\" is not a valid label name%s",
                                   where, k, strcmp(k, "filename") ? "" : " here (filename is "
                                   "set to each file's path)");
        if (!*v)
            return config_node_err(err, ln->items[i], "%s.%s: empty value", where, k);
        char *kk = vg_strdup(k), *vv = vg_strdup(v);
        s->labels[s->nlabels++] = (struct label){ vg_str_c(kk), vg_str_c(vv) };
        if (!kk || !vv)
            return oom(err);
    }
    return 0;
}

static int parse_parser(struct source *s, const struct config_node *src, const char *w,
                        struct vg_err *err)
{
    const char *parser = "none", *regex = NULL, *tfield = "", *tformat = "";
    const struct config_node *ts = config_node_get(src, "timestamp");
    char where[96];
    snprintf(where, sizeof where, "%s.timestamp", w);
    static const char *const tkeys[] = { "field", "format", NULL };
    if (config_node_str(src, w, "parser", &parser, err) < 0 ||
        config_node_str(src, w, "regex", &regex, err) < 0 ||
        (ts && (config_node_check_keys(ts, where, tkeys, err) < 0 ||
                config_node_str(ts, where, "field", &tfield, err) < 0 ||
                config_node_str(ts, where, "format", &tformat, err) < 0)))
        return VG_EINVAL;
    const struct config_node *at = config_node_get(src, "parser");
    if (!strcmp(parser, "none")) {
        if (regex || ts)
            return config_node_err(err, regex ? config_node_get(src, "regex") : ts,
                                   "%s.%s: needs a parser", w, regex ? "regex" : "timestamp");
        return 0;
    }
    if (!!regex != !strcmp(parser, "regex"))
        return config_node_err(err, regex ? config_node_get(src, "regex") : at,
                               regex ? "%s.regex: only for parser regex"
                                     : "%s.regex: required by parser regex", w);
    struct logparse_config pc = { .format = parser, .pattern = vg_str_c(regex),
                                  .time_field = vg_str_c(tfield),
                                  .time_format = vg_str_c(tformat) };
    struct vg_err perr;
    s->parser = logparse_new(&pc, &perr);
    if (!s->parser)
        return perr.code == VG_ENOMEM ? oom(err)
                                      : config_node_err(err, at, "%s.parser: %s", w, perr.msg);
    return 0;
}

static int parse_multiline(struct source *s, const struct config_node *src, const char *w,
                           struct vg_err *err)
{
    const struct config_node *ml = config_node_get(src, "multiline");
    s->lo.max_lines = 1;
    if (!ml)
        return 0;
    char where[96];
    snprintf(where, sizeof where, "%s.multiline", w);
    static const char *const keys[] = { "start", "max_lines", "timeout", NULL };
    const char *start = NULL;
    int64_t max_lines = 500, timeout = 3000;
    if (config_node_check_keys(ml, where, keys, err) < 0 ||
        config_node_str(ml, where, "start", &start, err) < 0 ||
        config_node_int(ml, where, "max_lines", 1, 100000, &max_lines, err) < 0 ||
        config_node_duration(ml, where, "timeout", 1, &timeout, err) < 0)
        return VG_EINVAL;
    if (!start)
        return config_node_err(err, ml, "%s: start is required", where);
    struct vg_err rerr;
    if (!(s->start = matcher_regex_new(vg_str_c(start), &rerr)))
        return rerr.code == VG_ENOMEM
                   ? oom(err)
                   : config_node_err(err, config_node_get(ml, "start"), "%s.start: %s", where,
                                     rerr.msg);
    s->lo.start = s->start;
    s->lo.max_lines = (size_t)max_lines;
    s->lo.record_timeout_ms = timeout;
    return 0;
}

static int parse_source(struct source *s, const struct config_node *src, size_t idx,
                        struct metrics *mx, struct vg_err *err)
{
    static const char *const keys[] = { "name", "paths", "labels", "parser", "regex",
                                        "timestamp", "labels_from_fields", "multiline",
                                        "start_at", "max_line_bytes", "partial_line_timeout",
                                        "processors", NULL };
    char w[64];
    snprintf(w, sizeof w, "log_files[%zu]", idx);
    if (config_node_check_keys(src, w, keys, err) < 0)
        return VG_EINVAL;
    const char *name = w, *start_at = "end";
    const char **list = NULL;
    size_t n = 0;
    int64_t max_line = DEFAULT_MAX_LINE, partial = 5000;
    if (config_node_str(src, w, "name", &name, err) < 0 ||
        config_node_str(src, w, "start_at", &start_at, err) < 0 ||
        config_node_int(src, w, "max_line_bytes", 256, 16 << 20, &max_line, err) < 0 ||
        config_node_duration(src, w, "partial_line_timeout", 0, &partial, err) < 0)
        return VG_EINVAL;
    if (!*name)
        return config_node_err(err, config_node_get(src, "name"), "%s.name: empty", w);
    if (strcmp(start_at, "end") != 0 && strcmp(start_at, "beginning") != 0)
        return config_node_err(err, config_node_get(src, "start_at"),
                               "%s.start_at: expected end or beginning, got \"%s\"", w, start_at);
    s->start_end = !strcmp(start_at, "end");
    s->lo.max_line_bytes = (size_t)max_line;
    s->lo.partial_timeout_ms = partial;
    if (!(s->name = vg_strdup(name)))
        return oom(err);
    if (config_node_strlist(src, w, "paths", &list, &n, err) < 0)
        return VG_EINVAL;
    int rc = n ? own_list(list, n, &s->paths, err)
               : config_node_err(err, src, "%s.paths: at least one path or glob is required", w);
    s->npaths = s->paths ? n : 0;
    vg_free(list);
    for (size_t i = 0; rc == 0 && i < s->npaths; i++)
        if (s->paths[i][0] != '/')
            rc = config_node_err(err, config_node_get(src, "paths"),
                                 "%s.paths[%zu]: \"%s\" is not an absolute path", w, i,
                                 s->paths[i]);
    if (rc < 0)
        return rc;
    if (config_node_strlist(src, w, "labels_from_fields", &list, &n, err) < 0)
        return VG_EINVAL;
    const struct config_node *lf = config_node_get(src, "labels_from_fields");
    rc = n > MAX_LABEL_FIELDS
             ? config_node_err(err, lf, "%s.labels_from_fields: %zu fields, more than %d", w, n,
                               MAX_LABEL_FIELDS)
             : own_list(list, n, &s->label_fields, err);
    s->nlabel_fields = s->label_fields ? n : 0;
    vg_free(list);
    for (size_t i = 0; rc == 0 && i < s->nlabel_fields; i++)
        if (!ingest_valid_label_name(vg_str_c(s->label_fields[i])) ||
            !strcmp(s->label_fields[i], "filename"))
            rc = config_node_err(err, lf, "%s.labels_from_fields[%zu]: \"%s\" cannot be a label "
                                 "name", w, i, s->label_fields[i]);
    if (rc < 0 || (rc = parse_labels(s, src, w, err)) < 0 ||
        (rc = parse_parser(s, src, w, err)) < 0 || (rc = parse_multiline(s, src, w, err)) < 0)
        return rc;
    if (s->nlabel_fields && !s->parser)
        return config_node_err(err, lf, "%s.labels_from_fields: needs a parser", w);
    char pw[80];
    snprintf(pw, sizeof pw, "%s.processors", w);
    return logproc_new(config_node_get(src, "processors"), pw, mx, &s->procs, err);
}

/* The sources of cfg's log_files block; *n = 0 when there is none. */
static int parse_sources(const struct config *cfg, struct metrics *mx, struct source **out,
                         size_t *n, struct vg_err *err)
{
    *out = NULL;
    *n = 0;
    const struct config_node *b = config_block(cfg, "log_files");
    if (!b || (b->type == CONFIG_NODE_SCALAR && !b->value[0] && !b->quoted))
        return 0;
    if (b->type != CONFIG_NODE_SEQ)
        return config_node_err(err, b, "log_files: expected a list of sources");
    if (!b->n)
        return 0;
    struct source *v = vg_calloc(b->n, sizeof *v);
    if (!v)
        return oom(err);
    for (size_t i = 0; i < b->n; i++) {
        int rc = parse_source(&v[i], b->items[i], i, mx, err);
        for (size_t j = 0; rc == 0 && j < i; j++)
            if (!strcmp(v[j].name, v[i].name))
                rc = config_node_err(err, b->items[i], "log_files[%zu].name: \"%s\" is the "
                                     "name of log_files[%zu] too", i, v[i].name, j);
        if (rc < 0) {
            sources_free(v, b->n);
            return rc;
        }
    }
    *out = v;
    *n = b->n;
    return 0;
}

static int filetail_check(const struct config *cfg, struct vg_err *err)
{
    struct source *v;
    size_t n;
    int rc = parse_sources(cfg, NULL, &v, &n, err);
    if (rc < 0)
        return rc;
    sources_free(v, n);
    struct logproc *p;
    rc = logproc_new(config_block(cfg, "log_processors"), "log_processors", NULL, &p, err);
    logproc_free(p);
    return rc;
}

/* ---- state ---- */

struct tfile {
    struct source *src;
    char *path;           /* where it was last matched */
    char *label_path;     /* the filename label: where it was opened */
    dev_t dev;
    ino_t ino;
    int fd;
    uint64_t offset, emitted, committed;
    struct filetail_lines lines;
    bool seen;            /* matched by the current scan */
    int64_t gone_ms;      /* when it left the globs; 0 while matched */
    int64_t data_ms;      /* when a read last returned bytes */
    bool at_eof;          /* the last read of this poll returned nothing */
};

struct saved {
    char *source, *path;
    uint64_t dev, ino, offset;
};

struct filetail {
    struct vigil *v;
    struct source *sources;
    size_t nsources;
    struct tfile **files;
    size_t nfiles, capfiles;
    struct saved *saved;      /* positions read at start, until the first scan is done */
    size_t nsaved;
    bool first_scan;
    bool positions_dirty;
    char positions[PATH_MAX];

    struct log_batch batch;
    struct vg_arena *rec_arena; /* one record's parse and processors */
    char *buf;                  /* READ_BUF */

    pthread_t thr;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv, done;
    uint64_t sync_req, sync_done;
    bool stopping;

    struct metric_family *m_open, *m_bytes, *m_records, *m_unparsable, *m_cut, *m_ts,
        *m_rotations, *m_errors;
    struct vg_complaint store_complaint, file_complaint;
};

static int64_t clock_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- positions ---- */

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\t')
            fputs("\\t", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else if (*s == '\\')
            fputs("\\\\", f);
        else
            fputc(*s, f);
    }
}

/* Undoes put_escaped in place. */
static void unescape(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *d++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
        } else {
            *d++ = *s;
        }
    }
    *d = 0;
}

static void positions_error(struct filetail *ft, const char *what)
{
    metric_add(ft->m_errors, 1, "", "positions");
    vg_complain(&ft->file_complaint, COMPLAIN_MS, VG_LOG_ERROR, "filetail", what,
                strerror(errno));
}

/* Writes every open file's committed offset: tmp file, fsync, rename, fsync dir. */
static void positions_save(struct filetail *ft)
{
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", ft->positions);
    FILE *f = fopen(tmp, "we");
    if (!f) {
        positions_error(ft, "cannot write the positions file");
        return;
    }
    fprintf(f, "%s\n", POSITIONS_HEADER);
    for (size_t i = 0; i < ft->nfiles; i++) {
        const struct tfile *t = ft->files[i];
        put_escaped(f, t->src->name);
        fprintf(f, "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t", (uint64_t)t->dev,
                (uint64_t)t->ino, t->committed);
        put_escaped(f, t->path);
        fputc('\n', f);
    }
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, ft->positions) != 0) {
        positions_error(ft, "cannot write the positions file");
        unlink(tmp);
        return;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", ft->positions);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    ft->positions_dirty = false;
}

static void saved_free(struct filetail *ft)
{
    for (size_t i = 0; i < ft->nsaved; i++) {
        vg_free(ft->saved[i].source);
        vg_free(ft->saved[i].path);
    }
    vg_free(ft->saved);
    ft->saved = NULL;
    ft->nsaved = 0;
}

/* Reads the positions file; a missing one is an empty list, a malformed line is
 * skipped with a warning (the file is rewritten after the first poll anyway). */
static int positions_load(struct filetail *ft, struct vg_err *err)
{
    FILE *f = fopen(ft->positions, "re");
    if (!f)
        return errno == ENOENT ? 0 : vg_err_set(err, VG_EIO, "%s: %s", ft->positions,
                                                 strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool header = true;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        if (len && line[len - 1] == '\n')
            line[--len] = 0;
        if (header) {
            header = false;
            if (strcmp(line, POSITIONS_HEADER) != 0) {
                vg_log(VG_LOG_WARN, "filetail", "positions file has an unknown header; ignored",
                       "path", ft->positions, NULL);
                break;
            }
            continue;
        }
        char *fields[5], *save = NULL, *p = line;
        int nf = 0;
        for (char *tok; nf < 5 && (tok = strtok_r(p, "\t", &save)); p = NULL)
            fields[nf++] = tok;
        if (nf != 5) {
            vg_log(VG_LOG_WARN, "filetail", "malformed positions line skipped", "path",
                   ft->positions, NULL);
            continue;
        }
        struct saved *v = vg_realloc(ft->saved, (ft->nsaved + 1) * sizeof *v);
        if (!v) {
            rc = oom(err);
            break;
        }
        ft->saved = v;
        unescape(fields[0]);
        unescape(fields[4]);
        struct saved *s = &ft->saved[ft->nsaved];
        *s = (struct saved){ .source = vg_strdup(fields[0]), .path = vg_strdup(fields[4]),
                             .dev = strtoull(fields[1], NULL, 10),
                             .ino = strtoull(fields[2], NULL, 10),
                             .offset = strtoull(fields[3], NULL, 10) };
        ft->nsaved++;
        if (!s->source || !s->path)
            rc = oom(err);
    }
    free(line); /* getline's buffer comes from malloc */
    (void)fclose(f); /* read-only */
    return rc;
}

/* ---- the batch ---- */

/* Sets every file back to its committed offset, forgetting pending bytes. */
static void rewind_all(struct filetail *ft)
{
    for (size_t i = 0; i < ft->nfiles; i++) {
        struct tfile *t = ft->files[i];
        if (t->offset == t->committed && !filetail_lines_pending(&t->lines))
            continue;
        t->offset = t->emitted = t->committed;
        filetail_lines_reset(&t->lines);
    }
}

/* Stores the batch (grouped into streams) and commits offsets. 0, or a negative code
 * after rewinding every file (nothing of the batch was stored). */
static int batch_push(struct filetail *ft)
{
    int rc = 0;
    struct vg_err err;
    vg_err_clear(&err);
    struct logstore_stream_in *st;
    size_t ns;
    if (log_batch_streams(&ft->batch, &st, &ns) < 0) {
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory for a push of %zu lines",
                        ft->batch.n);
    } else if (ns) {
        struct logstore_push_result res;
        rc = ingest_store_logs(ft->v, RECEIVER, st, ns, &res, &err);
        if (rc == 0 && err.msg[0])
            vg_complain(&ft->store_complaint, COMPLAIN_MS, VG_LOG_WARN, "filetail",
                        "the log store refused some lines", err.msg);
    }
    log_batch_clear(&ft->batch);
    if (rc < 0) {
        metric_add(ft->m_errors, 1, "", "store");
        vg_complain(&ft->store_complaint, COMPLAIN_MS, VG_LOG_ERROR, "filetail",
                    "storing lines failed; they will be read again", err.msg);
        rewind_all(ft);
        return rc;
    }
    for (size_t i = 0; i < ft->nfiles; i++) {
        struct tfile *t = ft->files[i];
        if (t->committed != t->emitted) {
            t->committed = t->emitted;
            ft->positions_dirty = true;
        }
    }
    return 0;
}

/* ---- records ---- */

struct rec_ctx {
    struct filetail *ft;
    struct tfile *t;
};

/* The first field called name, or NULL. */
static const struct vg_str *field_of(const struct logparse_result *res, const char *name)
{
    return res->nfields ? logparse_get(res, vg_str_c(name)) : NULL;
}

static bool is_label_field(const struct source *s, struct vg_str name)
{
    for (size_t i = 0; i < s->nlabel_fields; i++)
        if (vg_str_eq_c(name, s->label_fields[i]))
            return true;
    return false;
}

/* Builds the record of one line (or multiline record) and adds it to the batch; pushes
 * when the batch is full. Called by filetail_lines for every record. */
static int on_record(void *ud, struct vg_str text, uint64_t end, unsigned flags)
{
    struct rec_ctx *c = ud;
    struct filetail *ft = c->ft;
    struct tfile *t = c->t;
    struct source *s = t->src;
    t->emitted = end;
    if (flags & FILETAIL_LINES_CUT)
        metric_add(ft->m_cut, 1, s->name);
    if (!text.len)
        return 0; /* an empty line: nothing to store, but the offset moves past it */
    metric_add(ft->m_records, 1, s->name);
    struct vg_arena *a = ft->rec_arena;
    vg_arena_reset(a);
    int64_t now = clock_ns(CLOCK_REALTIME);
    size_t nl = s->nlabels + 1 + s->nlabel_fields;
    struct label *labels = vg_arena_alloc(a, nl * sizeof *labels);
    if (!labels)
        return VG_ENOMEM;
    memcpy(labels, s->labels, s->nlabels * sizeof *labels);
    nl = s->nlabels;
    labels[nl++] = (struct label){ VG_STR("filename"), vg_str_c(t->label_path) };
    struct logproc_record r = { .t = now, .line = text };
    struct logparse_result res = { 0 };
    if (s->parser) {
        logparse_line(s->parser, text.p, text.len, now, a, &res);
        for (size_t i = 0; i < s->nlabel_fields; i++) {
            const struct vg_str *v = field_of(&res, s->label_fields[i]);
            if (v && v->len)
                labels[nl++] = (struct label){ vg_str_c(s->label_fields[i]), *v };
        }
        struct label *meta = vg_arena_alloc(a, (res.nfields + 1) * sizeof *meta);
        if (!meta)
            return VG_ENOMEM;
        size_t nm = 0;
        for (size_t i = 0; i < res.nfields && nm < LENTRY_MAX_META - 1; i++)
            if (!is_label_field(s, res.fields[i].name) && res.fields[i].value.len)
                meta[nm++] = (struct label){ res.fields[i].name, res.fields[i].value };
        if (res.status == LOGPARSE_UNPARSABLE) {
            metric_add(ft->m_unparsable, 1, s->name, res.reason);
            meta[nm++] = (struct label){ VG_STR("parse_error"), vg_str_c(res.reason) };
        }
        if (res.time == LOGPARSE_TIME_SET && res.time_ns > now + INGEST_LOG_MAX_FUTURE_NS)
            metric_add(ft->m_ts, 1, s->name, "future");
        else if (res.time == LOGPARSE_TIME_SET)
            r.t = res.time_ns;
        else if (res.time == LOGPARSE_TIME_INVALID)
            metric_add(ft->m_ts, 1, s->name, "invalid");
        r.meta = meta;
        r.nmeta = nm;
    }
    labels_sort(labels, nl);
    r.labels = labels;
    r.nlabels = nl;
    if (s->procs) {
        int rc = logproc_run(s->procs, s->name, &r, clock_ns(CLOCK_MONOTONIC), a);
        if (rc <= 0)
            return rc; /* dropped (counted by logproc), or out of memory */
    }
    if (log_batch_add(&ft->batch, r.t, r.labels, r.nlabels, r.meta, r.nmeta, r.line) < 0)
        return VG_ENOMEM;
    if (ft->batch.n >= BATCH_ENTRIES || ft->batch.bytes >= BATCH_BYTES)
        return batch_push(ft);
    return 0;
}

/* ---- files ---- */

static void file_close(struct filetail *ft, size_t i)
{
    struct tfile *t = ft->files[i];
    if (t->fd >= 0)
        close(t->fd);
    filetail_lines_free(&t->lines);
    vg_free(t->path);
    vg_free(t->label_path);
    vg_free(t);
    ft->files[i] = ft->files[--ft->nfiles];
    ft->positions_dirty = true;
    metric_set(ft->m_open, (double)ft->nfiles);
}

static struct tfile *file_find(struct filetail *ft, const struct source *s, dev_t dev, ino_t ino)
{
    for (size_t i = 0; i < ft->nfiles; i++) {
        struct tfile *t = ft->files[i];
        if (t->src == s && t->dev == dev && t->ino == ino)
            return t;
    }
    return NULL;
}

/* Where a file seen for the first time starts (filetail.h, "Offsets"). */
static uint64_t start_offset(const struct filetail *ft, const struct source *s, const char *path,
                             const struct stat *st)
{
    uint64_t size = (uint64_t)st->st_size;
    bool path_known = false;
    for (size_t i = 0; i < ft->nsaved; i++) {
        const struct saved *p = &ft->saved[i];
        if (strcmp(p->source, s->name) != 0)
            continue;
        if (p->dev == (uint64_t)st->st_dev && p->ino == (uint64_t)st->st_ino)
            return p->offset <= size ? p->offset : 0;
        path_known |= !strcmp(p->path, path);
    }
    return ft->first_scan && s->start_end && !path_known ? size : 0;
}

static void file_open(struct filetail *ft, struct source *s, const char *path)
{
    if (ft->nfiles >= MAX_FILES) {
        vg_complain(&ft->file_complaint, COMPLAIN_MS, VG_LOG_WARN, "filetail",
                    "too many open files; not tailing more", path);
        return;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd < 0 || !S_ISREG(st.st_mode))
            metric_add(ft->m_errors, 1, s->name, "open");
        if (fd < 0)
            vg_complain(&ft->file_complaint, COMPLAIN_MS, VG_LOG_WARN, "filetail",
                        "cannot open a log file", strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    struct tfile *have = file_find(ft, s, st.st_dev, st.st_ino);
    if (have) { /* raced with a rename: the same file under another name */
        close(fd);
        have->seen = true;
        return;
    }
    if (ft->nfiles == ft->capfiles) {
        size_t cap = ft->capfiles ? ft->capfiles * 2 : 16;
        struct tfile **v = vg_realloc(ft->files, cap * sizeof *v);
        if (!v) {
            close(fd);
            return;
        }
        ft->files = v;
        ft->capfiles = cap;
    }
    struct tfile *t = vg_calloc(1, sizeof *t);
    char *p1 = vg_strdup(path), *p2 = vg_strdup(path);
    if (!t || !p1 || !p2) {
        vg_free(t);
        vg_free(p1);
        vg_free(p2);
        close(fd);
        return;
    }
    uint64_t off = start_offset(ft, s, path, &st);
    *t = (struct tfile){ .src = s, .path = p1, .label_path = p2, .dev = st.st_dev,
                         .ino = st.st_ino, .fd = fd, .offset = off, .emitted = off,
                         .committed = off, .seen = true, .data_ms = clock_ms(CLOCK_MONOTONIC) };
    filetail_lines_init(&t->lines, &s->lo);
    ft->files[ft->nfiles++] = t;
    ft->positions_dirty = true;
    metric_set(ft->m_open, (double)ft->nfiles);
    char o[24];
    snprintf(o, sizeof o, "%" PRIu64, off);
    vg_log(VG_LOG_INFO, "filetail", "tailing", "source", s->name, "path", path, "offset", o,
           NULL);
}

/* Expands every glob, opens new files, marks files that left the globs. */
static void scan(struct filetail *ft, int64_t now_ms)
{
    for (size_t i = 0; i < ft->nfiles; i++)
        ft->files[i]->seen = false;
    for (size_t si = 0; si < ft->nsources; si++) {
        struct source *s = &ft->sources[si];
        for (size_t pi = 0; pi < s->npaths; pi++) {
            glob_t g;
            if (glob(s->paths[pi], GLOB_NOSORT, NULL, &g) != 0) {
                globfree(&g);
                continue;
            }
            for (size_t k = 0; k < g.gl_pathc; k++) {
                const char *path = g.gl_pathv[k];
                struct stat st;
                if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                    continue;
                struct tfile *t = file_find(ft, s, st.st_dev, st.st_ino);
                if (!t) {
                    file_open(ft, s, path);
                    continue;
                }
                t->seen = true;
                t->gone_ms = 0;
                if (strcmp(t->path, path) != 0) {
                    char *p = vg_strdup(path);
                    if (p) {
                        vg_free(t->path);
                        t->path = p;
                        ft->positions_dirty = true;
                    }
                }
            }
            globfree(&g);
        }
    }
    for (size_t i = 0; i < ft->nfiles; i++) {
        struct tfile *t = ft->files[i];
        if (!t->seen && !t->gone_ms) {
            t->gone_ms = now_ms;
            metric_add(ft->m_rotations, 1, t->src->name, "rename");
        }
    }
    if (ft->first_scan) {
        ft->first_scan = false;
        saved_free(ft); /* positions of files not found now are forgotten */
        ft->positions_dirty = true;
    }
}

/* Hands on everything pending in t and stores it (the file will not continue). */
static int file_finish(struct filetail *ft, struct tfile *t)
{
    struct rec_ctx c = { ft, t };
    int rc = filetail_lines_finish(&t->lines, on_record, &c);
    if (rc == VG_ENOMEM) {
        rewind_all(ft);
        return rc;
    }
    return rc < 0 ? rc : batch_push(ft);
}

/* Reads what t has gained since the last poll (up to READ_CAP). */
static void read_file(struct filetail *ft, struct tfile *t, int64_t now_ms)
{
    struct rec_ctx c = { ft, t };
    struct stat st;
    t->at_eof = false;
    if (fstat(t->fd, &st) == 0 && (uint64_t)st.st_size < t->offset) {
        /* copy-truncate: what was pending belongs to the old content */
        metric_add(ft->m_rotations, 1, t->src->name, "truncate");
        file_finish(ft, t);
        t->offset = t->emitted = t->committed = 0;
        filetail_lines_reset(&t->lines);
        ft->positions_dirty = true;
    }
    uint64_t total = 0;
    int rc = 0;
    while (total < READ_CAP) {
        ssize_t n = pread(t->fd, ft->buf, READ_BUF, (off_t)t->offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            metric_add(ft->m_errors, 1, t->src->name, "read");
            vg_complain(&ft->file_complaint, COMPLAIN_MS, VG_LOG_WARN, "filetail",
                        "cannot read a log file", strerror(errno));
            return;
        }
        if (n == 0) {
            t->at_eof = true;
            break;
        }
        metric_add(ft->m_bytes, (double)n, t->src->name);
        t->data_ms = now_ms;
        uint64_t off = t->offset;
        t->offset += (uint64_t)n;
        total += (uint64_t)n;
        rc = filetail_lines_feed(&t->lines, ft->buf, (size_t)n, off, now_ms, on_record, &c);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = filetail_lines_tick(&t->lines, now_ms, on_record, &c);
    if (rc == VG_ENOMEM)
        rewind_all(ft); /* a failed push has rewound already */
}

/* One poll: scan, read, push, close what is done, save positions. */
static void poll_once(struct filetail *ft)
{
    int64_t now_ms = clock_ms(CLOCK_MONOTONIC);
    scan(ft, now_ms);
    for (size_t i = 0; i < ft->nfiles; i++)
        read_file(ft, ft->files[i], now_ms);
    batch_push(ft);
    for (size_t i = ft->nfiles; i > 0; i--) {
        struct tfile *t = ft->files[i - 1];
        if (t->gone_ms && t->at_eof && now_ms - t->gone_ms >= ROTATE_WAIT_MS &&
            now_ms - t->data_ms >= ROTATE_WAIT_MS && file_finish(ft, t) == 0)
            file_close(ft, i - 1);
    }
    if (ft->positions_dirty)
        positions_save(ft);
}

static void *filetail_main(void *arg)
{
    struct filetail *ft = arg;
    pthread_setname_np(pthread_self(), "filetail");
    pthread_mutex_lock(&ft->mu);
    while (!ft->stopping) {
        uint64_t want = ft->sync_req;
        pthread_mutex_unlock(&ft->mu);
        poll_once(ft);
        pthread_mutex_lock(&ft->mu);
        ft->sync_done = want;
        pthread_cond_broadcast(&ft->done);
        if (ft->stopping || ft->sync_req > want)
            continue;
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += POLL_MS * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (!ft->stopping && ft->sync_req == want &&
               pthread_cond_timedwait(&ft->cv, &ft->mu, &dl) == 0)
            ;
    }
    pthread_mutex_unlock(&ft->mu);
    return NULL;
}

void filetail_sync(struct vigil *v)
{
    struct filetail *ft = v->filetail_state;
    if (!ft || !ft->started)
        return;
    pthread_mutex_lock(&ft->mu);
    /* a poll already running may have started before the request: wait for the next */
    uint64_t want = ++ft->sync_req;
    pthread_cond_signal(&ft->cv);
    while (ft->sync_done < want && !ft->stopping)
        pthread_cond_wait(&ft->done, &ft->mu);
    pthread_mutex_unlock(&ft->mu);
}

/* ---- start and stop ---- */

static void register_metrics(struct filetail *ft, struct metrics *mx)
{
    static const char *const src[] = { "source" };
    static const char *const sr[] = { "source", "reason" };
    static const char *const sk[] = { "source", "kind" };
    static const char *const so[] = { "source", "op" };
    ft->m_open = metrics_family(mx, "vigil_filetail_files_open", "Log files being tailed.",
                                METRIC_GAUGE, NULL, 0, NULL, 0);
    ft->m_bytes = metrics_family(mx, "vigil_filetail_bytes_read_total",
                                 "Bytes read from tailed files, by source.", METRIC_COUNTER, src,
                                 1, NULL, 0);
    ft->m_records = metrics_family(mx, "vigil_filetail_records_total",
                                   "Records (lines, or multiline records) read from tailed "
                                   "files, by source.", METRIC_COUNTER, src, 1, NULL, 0);
    ft->m_unparsable = metrics_family(mx, "vigil_filetail_lines_unparsable_total",
                                      "Tailed lines stored raw because the parser refused "
                                      "them, by source and reason.", METRIC_COUNTER, sr, 2,
                                      NULL, 0);
    ft->m_cut = metrics_family(mx, "vigil_filetail_lines_cut_total",
                               "Tailed lines or records cut at max_line_bytes or max_lines.",
                               METRIC_COUNTER, src, 1, NULL, 0);
    ft->m_ts = metrics_family(mx, "vigil_filetail_timestamps_replaced_total",
                              "Parsed timestamps replaced by the receive time (invalid, "
                              "future).", METRIC_COUNTER, sr, 2, NULL, 0);
    ft->m_rotations = metrics_family(mx, "vigil_filetail_rotations_total",
                                     "Tailed files rotated, by source and kind (rename, "
                                     "truncate).", METRIC_COUNTER, sk, 2, NULL, 0);
    ft->m_errors = metrics_family(mx, "vigil_filetail_errors_total",
                                  "File collector errors, by source and operation (open, "
                                  "read, store, positions).", METRIC_COUNTER, so, 2, NULL, 0);
}

static void filetail_free(struct vigil *v)
{
    struct filetail *ft = v->filetail_state;
    if (!ft)
        return;
    pthread_mutex_lock(&ft->mu);
    ft->stopping = true;
    pthread_cond_broadcast(&ft->cv);
    pthread_cond_broadcast(&ft->done);
    pthread_mutex_unlock(&ft->mu);
    if (ft->started)
        pthread_join(ft->thr, NULL);
    /* pending partial lines and records stay uncommitted: the next start reads them */
    if (ft->started && ft->positions_dirty)
        positions_save(ft);
    while (ft->nfiles)
        file_close(ft, ft->nfiles - 1);
    vg_free(ft->files);
    log_batch_free(&ft->batch);
    vg_arena_free(ft->rec_arena);
    vg_free(ft->buf);
    saved_free(ft);
    sources_free(ft->sources, ft->nsources);
    pthread_cond_destroy(&ft->cv);
    pthread_cond_destroy(&ft->done);
    pthread_mutex_destroy(&ft->mu);
    vg_free(ft);
    v->filetail_state = NULL;
}

static int filetail_init(struct vigil *v, struct vg_err *err)
{
    v->filetail_state = NULL;
    struct source *sources;
    size_t n;
    int rc = parse_sources(v->cfg, v->metrics, &sources, &n, err);
    if (rc < 0 || n == 0)
        return rc;
    struct filetail *ft = vg_calloc(1, sizeof *ft);
    if (!ft) {
        sources_free(sources, n);
        return oom(err);
    }
    ft->v = v;
    ft->sources = sources;
    ft->nsources = n;
    ft->first_scan = true;
    pthread_mutex_init(&ft->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ft->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&ft->done, NULL);
    v->filetail_state = ft;
    register_metrics(ft, v->metrics);
    int brc = log_batch_init(&ft->batch, 1 << 16);
    ft->rec_arena = vg_arena_new(1 << 16);
    ft->buf = vg_malloc(READ_BUF);
    if (brc < 0 || !ft->rec_arena || !ft->buf) {
        filetail_free(v);
        return oom(err);
    }
    if (snprintf(ft->positions, sizeof ft->positions, "%s/positions", v->cfg->data_dir) >=
        (int)sizeof ft->positions) {
        filetail_free(v);
        return vg_err_set(err, VG_EINVAL, "storage.data_dir: path too long");
    }
    if ((rc = positions_load(ft, err)) < 0) {
        filetail_free(v);
        return rc;
    }
    if (pthread_create(&ft->thr, NULL, filetail_main, ft) != 0) {
        filetail_free(v);
        return vg_err_set(err, VG_ENOMEM, "cannot start the filetail thread");
    }
    ft->started = true;
    char ns[24];
    snprintf(ns, sizeof ns, "%zu", n);
    vg_log(VG_LOG_INFO, "filetail", "started", "sources", ns, "positions", ft->positions, NULL);
    return 0;
}

const struct vigil_module mod_filetail = {
    .name = "filetail",
    .check = filetail_check,
    .init = filetail_init,
    .free = filetail_free,
};
