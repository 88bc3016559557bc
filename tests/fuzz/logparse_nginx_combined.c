/* Fuzz target for the nginx_combined log format (server/ingest/logparse): the input is one
 * access-log line; the record time comes from the format's default field. */
#include "logparse_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct logparse_config cfg = { .format = "nginx_combined" };
    logparse_fuzz_run(&cfg, data, size);
    return 0;
}
