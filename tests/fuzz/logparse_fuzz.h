/* Shared body of the logparse_* fuzz targets: parse the input as one line with a
 * configured parser and check the result's invariants (a parsed line has no reason; an
 * unparsable one has a reason and no fields; every field's bytes are readable). The
 * arena is capped so a huge input cannot exhaust memory. */
#ifndef LOGPARSE_FUZZ_H
#define LOGPARSE_FUZZ_H

#include "../../server/ingest/logparse/logparse.h"

#include <stdint.h>
#include <stdlib.h>

#define LOGPARSE_FUZZ_ARENA ((size_t)8 << 20)

static inline void logparse_fuzz_check(const struct logparse_result *r)
{
    if (r->status == LOGPARSE_PARSED) {
        if (r->reason)
            abort();
    } else if (!r->reason || r->nfields || r->time != LOGPARSE_TIME_NONE) {
        abort();
    }
    unsigned sum = 0; /* touching every byte lets ASan check the pointers */
    for (size_t i = 0; i < r->nfields; i++) {
        const struct logparse_field *f = &r->fields[i];
        if (!f->name.len)
            abort(); /* every format names its fields */
        for (size_t k = 0; k < f->name.len; k++)
            sum += (unsigned char)f->name.p[k];
        for (size_t k = 0; k < f->value.len; k++)
            sum += (unsigned char)f->value.p[k];
    }
    if (sum == 0xFFFFFFFFu && r->nfields == 0)
        abort(); /* cannot happen; keeps sum used */
}

static inline void logparse_fuzz_run(const struct logparse_config *cfg, const uint8_t *data,
                                     size_t size)
{
    struct vg_err err;
    struct logparse *p = logparse_new(cfg, &err);
    struct vg_arena *a = vg_arena_new(4096);
    if (!p || !a)
        abort();
    vg_arena_set_limit(a, LOGPARSE_FUZZ_ARENA);
    struct logparse_result r;
    int rc = logparse_line(p, (const char *)data, size, 1709992931000000000LL, a, &r);
    if (rc != 0 && rc != VG_ENOMEM)
        abort();
    logparse_fuzz_check(&r);
    vg_arena_free(a);
    logparse_free(p);
}

#endif
