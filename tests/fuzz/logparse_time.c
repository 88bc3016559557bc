/* Fuzz target for server/ingest/logparse/logtime.c. The first byte picks a time spec
 * (modulo their count, so ASCII digits work in hand-written seeds); the rest is the
 * timestamp text. A parsed time must lie in the documented range. */
#include "../../server/ingest/logparse/logtime.h"

#include <stdlib.h>

static const char *const specs[] = {
    "auto", "rfc3339", "clf", "unix", "unix_ms", "unix_ns",
    "%Y-%m-%d %H:%M:%S,%f", "%b %e %T", "%a, %d %b %Y %T %Z", "%D %I:%M:%S %p %z",
    "%s.%f", "%Y%j",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct logtime t;
    struct vg_err err;
    if (logtime_init(&t, vg_str_c(specs[data[0] % (sizeof specs / sizeof specs[0])]), &err))
        abort();
    int64_t ns;
    struct vg_str s = { (const char *)data + 1, size - 1 };
    /* years 1678-2261: 1678-01-01T00:00:00Z to just before 2262-01-01T00:00:00Z */
    if (logtime_parse(&t, s, 1709992931000000000LL, &ns) == 0 &&
        (ns < -9214560000000000000LL || ns >= 9214646400000000000LL))
        abort();
    return 0;
}
