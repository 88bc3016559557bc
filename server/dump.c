/* dump: see dump.h. */
#include "dump.h"

#include "../storage/base/vg_alloc.h"
#include "../storage/tsdb/tsdb.h"
#include "api/exposition.h"
#include "promql/selector.h"
#include "vigil.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

int vigil_dump(const struct config *cfg, const char *selector, FILE *out, struct vg_err *err)
{
    const char *sel = selector ? selector : "{__name__=~\".+\"}";
    struct selector s = { 0 };
    if (selector_parse(sel, strlen(sel), &s, err) < 0)
        return err->code;
    char path[PATH_MAX];
    if (vigil_tsdb_path(cfg, path, sizeof path) < 0) {
        selector_free(&s);
        return vg_err_set(err, VG_EINVAL, "data directory path too long");
    }
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = path;
    o.retention_ms = 0; /* a dump never deletes anything */
    o.maint_interval_ms = INT64_MAX / 2;
    struct tsdb *db = tsdb_open(&o, err);
    if (!db) {
        selector_free(&s);
        return err->code;
    }
    struct tsdb_series_set *set = NULL;
    int rc = tsdb_select(db, s.ms, s.n, INT64_MIN, INT64_MAX, &set, err);
    struct vg_buf b;
    vg_buf_init(&b);
    for (size_t i = 0; rc == 0 && i < set->n; i++) {
        const struct tsdb_series *ser = &set->v[i];
        struct tsdb_sample *smp = NULL;
        size_t n = 0;
        rc = tsdb_read(db, ser->id, INT64_MIN, INT64_MAX, &smp, &n, err);
        if (rc < 0)
            break;
        struct vg_str name = labels_get(ser->labels, ser->nlabels, "__name__");
        for (size_t k = 0; k < n; k++) {
            vg_buf_reset(&b);
            exposition_write_sample(&b, name, ser->labels, ser->nlabels, smp[k].v, true, smp[k].t);
            if (vg_buf_failed(&b)) {
                rc = vg_err_set(err, VG_ENOMEM, "out of memory");
                break;
            }
            /* A full disk under `vigil tsdb dump > file` must not pass as success. */
            if (fwrite(b.p, 1, b.len, out) != b.len) {
                rc = vg_err_set(err, VG_EIO, "writing the dump: %s", strerror(errno));
                break;
            }
        }
        vg_free(smp);
    }
    if (rc == 0 && fflush(out) != 0)
        rc = vg_err_set(err, VG_EIO, "writing the dump: %s", strerror(errno));
    vg_buf_free(&b);
    tsdb_series_set_free(set);
    tsdb_close(db);
    selector_free(&s);
    return rc;
}
