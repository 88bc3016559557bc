/* Fuzz target for the shared Go text/template engine (server/template/gotmpl.c) through
 * both of its languages: the input is parsed as a LogQL line_format template
 * (server/logql/template.c: flat fields, early arity checks) and as an alerting-rule
 * template (server/rules/rule_template.c: variables, chains, with, range, loose numbers,
 * the query family on a fake query function), and
 * whatever parses is executed once. Checks: parsing fails only with VG_EINVAL or
 * VG_ENOMEM and a "template: " message; execution returns 0, VG_EINVAL with a
 * "template: " message, or VG_ENOMEM. */
#include "../../server/logql/template.h"
#include "../../server/rules/rule_template.h"
#include "../../storage/base/vg_alloc.h"

#include "fuzz_check.h"
#include <stdint.h>
#include <string.h>

static bool field(void *ud, struct vg_str name, struct vg_str *v)
{
    (void)ud;
    if (!vg_str_eq_c(name, "app") && !vg_str_eq_c(name, "level"))
        return false;
    *v = VG_STR("api");
    return true;
}

/* The rule language's `query`: "fail" fails, "none" is empty, anything else gives two
 * samples (so range, first, sortByLabel and friends run on real lists). */
static int fake_query(void *ctx, const char *expr, struct vg_arena *a,
                      struct rule_template_sample **out, size_t *n, struct vg_err *err)
{
    static struct label s1[] = { { VG_STR("__name__"), VG_STR("up") }, { VG_STR("instance"), VG_STR("b") } };
    static struct label s2[] = { { VG_STR("__value__"), VG_STR("v") }, { VG_STR("instance"), VG_STR("a") } };
    (void)ctx;
    if (!strcmp(expr, "fail"))
        return vg_err_set(err, VG_EINVAL, "bad query");
    struct rule_template_sample *r = vg_arena_alloc(a, 2 * sizeof *r);
    if (!r)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    r[0] = (struct rule_template_sample){ s1, 2, 1 };
    r[1] = (struct rule_template_sample){ s2, 2, 2.5 };
    *out = r;
    *n = strcmp(expr, "none") ? 2 : 0;
    return 0;
}

static void check_err(int rc, const struct vg_err *err)
{
    FUZZ_CHECK(rc == VG_EINVAL || rc == VG_ENOMEM);
    FUZZ_CHECK(rc == VG_ENOMEM || strncmp(err->msg, "template: ", 10) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct vg_buf out;
    vg_buf_init(&out);
    struct template *t = template_new((struct vg_str){ (const char *)data, size }, "line", &err);
    if (!t) {
        check_err(err.code, &err);
    } else {
        struct vg_arena *a = vg_arena_new(1024);
        struct template_data d = { field, NULL, VG_STR("the line"), 1700000000123000000LL };
        int rc = a ? template_exec(t, &d, a, &out, &err) : 0;
        if (rc)
            check_err(rc, &err);
        vg_arena_free(a);
        template_free(t);
    }
    char *text = vg_malloc(size + 1);
    if (text) {
        memcpy(text, data, size);
        text[size] = 0;
        struct rule_template *r = rule_template_parse("fuzz", text, &err);
        if (!r) {
            check_err(err.code, &err);
        } else {
            static const struct label ls[] = { { VG_STR("instance"), VG_STR("db1.example.com:9100") },
                                               { VG_STR("job"), VG_STR("node") } };
            struct rule_template_data d = { ls, 2, ls + 1, 1, "http://vigil/p", 1234.5,
                                            1700000000123, fake_query, NULL };
            vg_buf_reset(&out);
            int rc = rule_template_expand(r, &d, &out, &err);
            if (rc)
                check_err(rc, &err);
            rule_template_free(r);
        }
        vg_free(text);
    }
    vg_buf_free(&out);
    return 0;
}
