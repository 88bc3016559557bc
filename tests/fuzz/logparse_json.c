/* Fuzz target for the json log format (server/ingest/logparse/json_lines.c): the input
 * is one line; "time" is the time field, detected automatically. */
#include "logparse_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct logparse_config cfg = { .format = "json", .time_field = VG_STR("time") };
    logparse_fuzz_run(&cfg, data, size);
    return 0;
}
