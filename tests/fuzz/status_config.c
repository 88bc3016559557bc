/* Fuzz target: the config writer of /api/v1/status/config (status_config_yaml) over any
 * config the loader accepts. Properties: writing never crashes and fails only with
 * VG_ENOMEM or VG_EINTERNAL (a key value with a line break); what it writes loads back
 * as a config, and writing that again gives the same text (masking and quoting are
 * stable). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../server/api/status_config.h"
#include "../../storage/base/vg_alloc.h"
#include "fuzz_check.h"

/* YAML text after its first line (the "# source:" comment, which names the file). */
static const char *body(const char *y)
{
    const char *nl = strchr(y, '\n');
    return nl ? nl + 1 : y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct config *c = config_load_buf("fuzz.yml", (const char *)data, size, &err);
    if (!c)
        return 0;
    struct vg_buf y1, y2;
    vg_buf_init(&y1);
    vg_buf_init(&y2);
    int rc = status_config_yaml(c, &y1, &err);
    FUZZ_CHECK(rc == 0 || rc == VG_ENOMEM || rc == VG_EINTERNAL);
    if (rc == 0 && vg_buf_cstr(&y1)) {
        struct config *back = config_load_buf("back.yml", y1.p, y1.len, &err);
        FUZZ_CHECK(back != NULL || err.code == VG_ENOMEM);
        if (back && status_config_yaml(back, &y2, &err) == 0 && vg_buf_cstr(&y2))
            FUZZ_CHECK(strcmp(body(y1.p), body(y2.p)) == 0);
        config_free(back);
    }
    vg_buf_free(&y1);
    vg_buf_free(&y2);
    config_free(c);
    return 0;
}
