/* Fuzz target: the YAML config loader (config_load_buf), which reads files users write by
 * hand. Every input must give a config or a "name:line: ..." error, never a crash; and a
 * loaded config must dump without trouble. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../server/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct config *c = config_load_buf("fuzz.yml", (const char *)data, size, &err);
    if (!c) {
        if (strncmp(err.msg, "fuzz.yml", 8) != 0 && err.code != VG_ENOMEM)
            __builtin_trap(); /* every refusal must name the file */
        return 0;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    config_dump(c, &b);
    vg_buf_free(&b);
    config_free(c);
    return 0;
}
