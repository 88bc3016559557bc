/* dump: `vigil tsdb dump`, every stored sample of the matching series as
 *   <metric>{<labels>} <value> <timestamp ms>
 * one per line in the text exposition form, read straight from the store (run it while
 * the server is stopped: LevelDB allows one process at a time). */
#ifndef DUMP_H
#define DUMP_H

#include "../storage/base/vg_err.h"
#include "config.h"

#include <stdio.h>

/* selector NULL dumps every series. 0, or a vg_code with err filled. */
int vigil_dump(const struct config *cfg, const char *selector, FILE *out, struct vg_err *err);

#endif
