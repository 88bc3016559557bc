/* Fuzz target for promql_parse (server/promql/parser.c) and promql_format (ast.c):
 * arbitrary bytes as a query. A failed parse must say why with VG_EINVAL (or VG_ENOMEM
 * when allocation fails); a successful one is printed, the printed text must parse
 * again, and printing that second tree must give the same text (format_query is
 * idempotent and never produces a query it cannot read). */
#include "../../server/promql/engine.h"
#include "../../storage/base/vg_alloc.h"

#include "fuzz_check.h"
#include <stdint.h>
#include <string.h>

static char *print(const struct promql_expr *e, size_t *len)
{
    struct vg_buf b;
    vg_buf_init(&b);
    promql_format(e->root, &b);
    if (vg_buf_failed(&b)) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct promql_expr *e = promql_parse((const char *)data, size, &err);
    if (!e) {
        FUZZ_CHECK(err.code == VG_EINVAL || err.code == VG_ENOMEM);
        FUZZ_CHECK(strstr(err.msg, "parse error") || err.code == VG_ENOMEM);
        return 0;
    }
    FUZZ_CHECK(e->root);
    size_t n1 = 0, n2 = 0;
    char *t1 = print(e, &n1);
    promql_expr_free(e);
    if (!t1)
        return 0;
    struct promql_expr *e2 = promql_parse(t1, n1, &err);
    FUZZ_CHECK(e2 && "the printed query parses again");
    char *t2 = print(e2, &n2);
    promql_expr_free(e2);
    FUZZ_CHECK(t2 && n1 == n2 && memcmp(t1, t2, n1) == 0 && "printing is idempotent");
    vg_free(t1);
    vg_free(t2);
    return 0;
}
