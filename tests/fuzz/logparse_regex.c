/* Fuzz target for the regex log format (server/ingest/logparse/regex.c). The first byte
 * picks one of a few patterns as users write them (modulo their count, so ASCII digits
 * work in hand-written seeds); the rest is the line. Patterns are fixed because the
 * target is our group extraction, not PCRE2's compiler. */
#include "logparse_fuzz.h"

#define ACCESS_LOG                                                                       \
    "^(?P<ip>\\S+) \\S+ (?P<user>\\S+) \\[(?P<ts>[^\\]]+)\\] \"(?P<method>\\S+) "          \
    "(?P<path>\\S+)[^\"]*\" (?P<status>\\d{3}) (?P<size>\\d+|-)"

static const char *const patterns[] = {
    ACCESS_LOG,
    "(?<level>[A-Z]+) \\[(?<logger>[^\\]]+)\\](?: req=(?<req>\\d+))? (?<msg>.*)$",
    "(?<a>a*)(?<b>b+)?(?<c>[^x]*)x",
    "^(?<ts>\\S+ \\S+) (?<word>\\w+)",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *pattern = patterns[data[0] % (sizeof patterns / sizeof patterns[0])];
    struct logparse_config cfg = { .format = "regex", .pattern = vg_str_c(pattern),
                                   .time_field = VG_STR("ts") };
    logparse_fuzz_run(&cfg, data + 1, size - 1);
    return 0;
}
