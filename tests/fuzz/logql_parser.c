/* Fuzz target for logql_parse (server/logql/parser.c) and the printers (ast.c):
 * arbitrary bytes as a query. A failed parse must say why ("parse error ..." with
 * VG_EINVAL, or VG_ENOMEM); a successful one is printed with logql_format, the text
 * must parse again and print the same (String() is a fixed point), and the Prettify
 * text of format_query must parse to a tree that prints the same String(). */
#include "../../server/logql/parser.h"
#include "../../storage/base/vg_alloc.h"

#include "fuzz_check.h"
#include <stdint.h>
#include <string.h>

static char *print(const struct logql_node *n, bool pretty, size_t *len)
{
    struct vg_buf b;
    vg_buf_init(&b);
    if (pretty)
        logql_prettify(n, &b);
    else
        logql_format(n, &b);
    if (vg_buf_failed(&b)) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b, len);
}

/* Parses text, which a printer made, and returns its String() form. */
static char *reprint(const char *text, size_t n, size_t *len)
{
    struct vg_err err;
    struct logql_expr *e = logql_parse(text, n, &err);
    /* Too long or too deeply nested (printing adds a level of parentheses to every
     * binary operation) are the only reasons a printed query may be refused. */
    FUZZ_CHECK((e || err.code == VG_ENOMEM || n >= LOGQL_MAX_QUERY_LEN ||
            strstr(err.msg, "nesting too deep")) &&
           "a printed query parses again");
    if (!e)
        return NULL;
    char *t = print(e->root, false, len);
    logql_expr_free(e);
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct logql_expr *e = logql_parse((const char *)data, size, &err);
    if (!e) {
        FUZZ_CHECK(err.code == VG_EINVAL || err.code == VG_ENOMEM);
        FUZZ_CHECK(strncmp(err.msg, "parse error", 11) == 0);
        return 0;
    }
    size_t n1 = 0, n2 = 0, np = 0, n3 = 0;
    char *t1 = print(e->root, false, &n1);
    char *pr = print(e->root, true, &np);
    logql_expr_free(e);
    char *t2 = t1 ? reprint(t1, n1, &n2) : NULL;
    if (t1 && t2)
        FUZZ_CHECK(n1 == n2 && memcmp(t1, t2, n1) == 0 && "printing is idempotent");
    char *t3 = pr ? reprint(pr, np, &n3) : NULL;
    if (t1 && t3)
        FUZZ_CHECK(n1 == n3 && memcmp(t1, t3, n1) == 0 && "prettified text means the same");
    vg_free(t1);
    vg_free(t2);
    vg_free(pr);
    vg_free(t3);
    return 0;
}
