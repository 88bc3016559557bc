/* Fuzz target: the rule-file parser (rulefile_parse), which reads Prometheus rule files
 * users write by hand, with the PromQL parser and rule templates behind it. Every input
 * must give a parsed file or errors naming the file, never a crash; a parsed file's
 * templates are expanded once to exercise the template engine on what parsed. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../server/rules/rule_template.h"
#include "../../server/rules/rulefile.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct vg_buf errs;
    vg_buf_init(&errs);
    struct rule_file *f = NULL;
    int rc = rulefile_parse("fuzz.yml", (const char *)data, size, &f, &errs, &err);
    if (rc < 0) {
        FUZZ_CHECK(err.code == VG_ENOMEM || strncmp(err.msg, "fuzz.yml", 8) == 0);
        FUZZ_CHECK(f == NULL);
        vg_buf_free(&errs);
        return 0;
    }
    static const struct label ls[] = { { VG_STR("instance"), VG_STR("a:1") } };
    struct rule_template_data d = { ls, 1, ls, 1, "http://x", 1.5 };
    for (size_t g = 0; g < f->ngroups; g++)
        for (size_t r = 0; r < f->groups[g].nrules; r++) {
            const struct rule_def *rd = &f->groups[g].rules[r];
            FUZZ_CHECK(rd->promql || rd->logql);
            for (size_t k = 0; rd->annot_tmpl && k < rd->nannotations; k++) {
                struct vg_buf b;
                vg_buf_init(&b);
                (void)rule_template_expand(rd->annot_tmpl[k], &d, &b, &err);
                vg_buf_free(&b);
            }
        }
    rulefile_free(f);
    vg_buf_free(&errs);
    return 0;
}
