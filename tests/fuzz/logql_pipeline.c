/* Fuzz target for the LogQL pipeline (server/logql/pipeline.c, pipeline_scan.c and
 * template.c): the input's first line is a query, every further line a log line run
 * through the query's pipeline (a log query's, or a range aggregation's with its
 * unwrap). Checks: building fails only with VG_EINVAL or VG_ENOMEM and a message;
 * processing returns 1, 0 or VG_ENOMEM; kept entries carry sorted unique labels whose
 * hash is labels_hash, parsed labels are a sorted subset, and a value only with an
 * unwrap. */
#include "../../server/logql/parser.h"
#include "../../server/logql/pipeline.h"

#include "fuzz_check.h"
#include <stdint.h>
#include <string.h>

static void check_out(const struct logql_pipeline_out *o, bool unwrap)
{
    for (size_t i = 1; i < o->nlabels; i++)
        FUZZ_CHECK(vg_str_cmp(o->labels[i - 1].name, o->labels[i].name) < 0);
    for (size_t i = 1; i < o->nparsed; i++)
        FUZZ_CHECK(vg_str_cmp(o->parsed[i - 1].name, o->parsed[i].name) < 0);
    FUZZ_CHECK(o->nparsed <= o->nlabels + 1);
    FUZZ_CHECK(o->labels_hash == labels_hash(o->labels, o->nlabels));
    FUZZ_CHECK(unwrap || !o->has_value);
    for (size_t i = 0; i < o->nlabels; i++)
        FUZZ_CHECK(o->labels[i].name.len > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t qlen = nl ? (size_t)(nl - s) : size;
    struct vg_err err;
    struct logql_expr *e = logql_parse(s, qlen, &err);
    if (!e)
        return 0;
    const struct logql_node *n = e->root;
    const struct logql_unwrap *u = NULL;
    if (n->kind == LQ_RANGE_AGG) {
        u = n->range.unwrap;
        n = n->range.log;
    }
    if (n->kind != LQ_LOG) {
        logql_expr_free(e);
        return 0;
    }
    struct vg_str needles[8];
    FUZZ_CHECK(logql_pipeline_needles(n, needles, 8) <= 8);
    struct logql_pipeline *p = logql_pipeline_new(n, u, &err);
    if (!p) {
        FUZZ_CHECK(err.code == VG_EINVAL || err.code == VG_ENOMEM);
        FUZZ_CHECK(err.msg[0] != 0);
        logql_expr_free(e);
        return 0;
    }
    static const struct label stream[] = {
        { { "app", 3 }, { "api", 3 } },
        { { "level", 5 }, { "info", 4 } },
    };
    static const struct label meta[] = {
        { { "trace_id", 8 }, { "abc", 3 } },
        { { "app", 3 }, { "m", 1 } },
    };
    size_t pos = nl ? qlen + 1 : size;
    int64_t t = 1700000000000000000LL;
    while (pos <= size && nl) {
        const char *end = memchr(s + pos, '\n', size - pos);
        size_t len = end ? (size_t)(end - (s + pos)) : size - pos;
        struct logql_pipeline_out o;
        int rc = logql_pipeline_process(p, t++, (struct vg_str){ s + pos, len }, stream, 2, meta,
                                        (len & 1) ? 2 : 0, &o);
        FUZZ_CHECK(rc == 0 || rc == 1 || rc == VG_ENOMEM);
        if (rc == 1)
            check_out(&o, u != NULL);
        if (!end)
            break;
        pos += len + 1;
    }
    logql_pipeline_free(p);
    logql_expr_free(e);
    return 0;
}
