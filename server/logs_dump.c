/* logs_dump: see logs_dump.h. Without a selector every stream is listed first
 * (logstore_series) and each is read with equality matchers on all its labels, keeping
 * only entries of that very stream (a superset stream matches the same matchers). */
#include "logs_dump.h"

#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_buf.h"
#include "../storage/logstore/logstore.h"
#include "promql/selector.h"
#include "vigil.h"

#include <errno.h>
#include <stdbool.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

static void put_escaped(struct vg_buf *b, struct vg_str s, bool quote)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '\n')
            vg_buf_puts(b, "\\n");
        else if (c == '\r')
            vg_buf_puts(b, "\\r");
        else if (c == '\t')
            vg_buf_puts(b, "\\t");
        else if (c == '\\' || (quote && c == '"'))
            vg_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            vg_buf_printf(b, "\\x%02x", c);
        else
            vg_buf_putc(b, (char)c);
    }
}

static void put_pairs(struct vg_buf *b, const struct label *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_append(b, ls[i].name.p, ls[i].name.len);
        vg_buf_puts(b, "=\"");
        put_escaped(b, ls[i].value, true);
        vg_buf_putc(b, '"');
    }
}

/* Writes every entry of the query; with one_stream only those of stream (ids start
 * at 0, so the flag says whether to filter). */
static int dump_query(struct logstore *ls, struct matcher *const *ms, size_t nms,
                      bool one_stream, uint64_t stream, struct vg_buf *b, FILE *out,
                      struct vg_err *err)
{
    struct logstore_query q = { .matchers = ms, .nmatchers = nms, .start = INT64_MIN,
                                .end = INT64_MAX };
    struct logstore_iter *it = logstore_query(ls, &q, err);
    if (!it)
        return err->code;
    struct logstore_entry e;
    int rc;
    while ((rc = logstore_iter_next(it, &e, err)) == 1) {
        if (one_stream && e.stream != stream)
            continue;
        vg_buf_reset(b);
        vg_buf_printf(b, "%lld {", (long long)e.t);
        put_pairs(b, e.labels, e.nlabels);
        vg_buf_puts(b, "} ");
        put_escaped(b, e.line, false);
        if (e.nmeta) {
            vg_buf_puts(b, " | ");
            put_pairs(b, e.meta, e.nmeta);
        }
        vg_buf_putc(b, '\n');
        if (vg_buf_failed(b)) {
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
            break;
        }
        /* A full disk under `vigil logs dump > file` must not pass as success. */
        if (fwrite(b->p, 1, b->len, out) != b->len) {
            rc = vg_err_set(err, VG_EIO, "writing the dump: %s", strerror(errno));
            break;
        }
    }
    logstore_iter_free(it);
    return rc < 0 ? rc : 0;
}

static int dump_all(struct logstore *ls, struct vg_buf *b, FILE *out, struct vg_err *err)
{
    struct logstore_series_set *set = NULL;
    int rc = logstore_series(ls, NULL, 0, INT64_MIN, INT64_MAX, &set, err);
    for (size_t i = 0; rc == 0 && i < set->n; i++) {
        const struct logstore_series *s = &set->v[i];
        struct matcher **ms = vg_calloc(s->nlabels ? s->nlabels : 1, sizeof *ms);
        if (!ms) {
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
            break;
        }
        size_t n = 0;
        for (; n < s->nlabels; n++)
            if (!(ms[n] = matcher_new(MATCH_EQ, s->labels[n].name, s->labels[n].value, err)))
                break;
        if (n == s->nlabels && n > 0)
            rc = dump_query(ls, ms, n, true, s->id, b, out, err);
        else if (n < s->nlabels)
            rc = err->code;
        for (size_t k = 0; k < n; k++)
            matcher_free(ms[k]);
        vg_free(ms);
    }
    logstore_series_set_free(set);
    return rc;
}

int vigil_logs_dump(const struct config *cfg, const char *selector, FILE *out,
                    struct vg_err *err)
{
    struct selector s = { 0 };
    if (selector && selector_parse(selector, strlen(selector), &s, err) < 0)
        return err->code;
    char path[PATH_MAX];
    if (vigil_store_path(cfg, "logs", path, sizeof path) < 0) {
        selector_free(&s);
        return vg_err_set(err, VG_EINVAL, "data directory path too long");
    }
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = path;
    o.retention_ns = 0;      /* a dump never deletes anything */
    o.maint_interval_ms = 0; /* nor runs maintenance */
    struct logstore *ls = logstore_open(&o, err);
    if (!ls) {
        selector_free(&s);
        return err->code;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = selector ? dump_query(ls, s.ms, s.n, false, 0, &b, out, err)
                      : dump_all(ls, &b, out, err);
    if (rc == 0 && fflush(out) != 0)
        rc = vg_err_set(err, VG_EIO, "writing the dump: %s", strerror(errno));
    vg_buf_free(&b);
    logstore_close(ls);
    selector_free(&s);
    return rc;
}
