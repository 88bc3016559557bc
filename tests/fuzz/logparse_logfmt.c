/* Fuzz target for the logfmt log format (server/ingest/logparse/logfmt.c): the input is
 * one line; "ts" is the time field, in RFC 3339. */
#include "logparse_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct logparse_config cfg = { .format = "logfmt", .time_field = VG_STR("ts"),
                                   .time_format = VG_STR("rfc3339") };
    logparse_fuzz_run(&cfg, data, size);
    return 0;
}
