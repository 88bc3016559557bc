/* traces_limits: the config the span decoders' fuzz targets (otlp_traces, otlp_traces_pb,
 * zipkin) run under: the defaults with limits tight enough that every refusal path runs
 * (8 attributes of at most 256 bytes, 16 spans per request), made once per process,
 * and the request arena's cap. */
#ifndef FUZZ_TRACES_LIMITS_H
#define FUZZ_TRACES_LIMITS_H

#include "../../server/config.h"

#include <stdlib.h>

#define FUZZ_TRACES_ARENA_LIMIT ((size_t)8 << 20)

static inline struct config *fuzz_traces_config(void)
{
    static struct config *cfg;
    if (!cfg) {
        cfg = config_default();
        if (!cfg)
            abort();
        cfg->traces_max_attributes = 8;
        cfg->traces_max_attribute_bytes = 256;
        cfg->traces_max_spans_per_request = 16;
    }
    return cfg;
}

#endif
