/* Fuzz target for server/scrape/relabel.c: the input is "YAML rules\n---\nlabels", the
 * rules a list in relabel_configs' shape (parsed through the config loader like a real
 * config) and the labels "name=value" lines. Rules that parse are applied; the result
 * must keep unique names and never hold an empty value. */
#include "../../server/config.h"
#include "../../server/scrape/relabel.h"
#include "../../storage/base/vg_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *sep = NULL;
    for (size_t i = 0; i + 5 <= size && !sep; i++)
        if (!memcmp(p + i, "\n---\n", 5))
            sep = p + i;
    size_t rlen = sep ? (size_t)(sep - p) : size;
    char *doc = vg_malloc(rlen + 32);
    if (!doc)
        return 0;
    memcpy(doc, "scrape_configs:\n", 16);
    memcpy(doc + 16, p, rlen);
    struct vg_err err;
    struct config *cfg = config_load_buf("fuzz.yml", doc, rlen + 16, &err);
    vg_free(doc);
    if (!cfg)
        return 0;
    struct relabel_rules rules;
    if (relabel_parse(config_block(cfg, "scrape_configs"), "r", &rules, &err) == 0) {
        struct vg_arena *a = vg_arena_new(1024);
        vg_arena_set_limit(a, 16u << 20);
        struct relabel_set s;
        relabel_set_init(&s, a);
        const char *q = sep ? sep + 5 : p + size, *end = p + size;
        while (q < end) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            const char *le = nl ? nl : end;
            const char *eq = memchr(q, '=', (size_t)(le - q));
            if (eq)
                (void)relabel_set_put(&s, (struct vg_str){ q, (size_t)(eq - q) },
                                      (struct vg_str){ eq + 1, (size_t)(le - eq - 1) });
            q = le + 1;
        }
        if (relabel_apply(&rules, &s) == 1) {
            for (size_t i = 0; i < s.n; i++) {
                if (s.v[i].value.len == 0)
                    abort();
                for (size_t k = i + 1; k < s.n; k++)
                    if (vg_str_eq(s.v[i].name, s.v[k].name))
                        abort();
            }
        }
        vg_arena_free(a);
        relabel_rules_free(&rules);
    }
    config_free(cfg);
    return 0;
}
