/* logs_dump: `vigil logs dump`, every stored log entry of the matching streams as
 *   <t ns> {<labels>} <line> | <metadata>
 * one per line: labels as name="value" pairs in sorted order, the metadata as
 * name="value" pairs in stored order (the " | ..." part only when there is any).
 * Label and metadata values, and the line, escape '\', '"' (values only), newline, CR,
 * tab and bytes below 0x20 or 0x7f as \n, \r, \t, \xHH, so each entry is one line of
 * text; other bytes (UTF-8 or not) are written as stored. Streams come one after the
 * other, each in time order. Reads the store directly: run it while the server is
 * stopped (LevelDB allows one process at a time). Until a log query API exists this is
 * how tests and users look at what the log receivers stored. */
#ifndef LOGS_DUMP_H
#define LOGS_DUMP_H

#include "../storage/base/vg_err.h"
#include "config.h"

#include <stdio.h>

/* selector NULL dumps every stream. 0, or a vg_code with err filled. */
int vigil_logs_dump(const struct config *cfg, const char *selector, FILE *out,
                    struct vg_err *err);

#endif
