/* modules: the registry of receivers and API families. Adding one is a new file and a
 * new row here; the order is the routing order (first match wins). */
#include "vigil.h"

#include "api/federate.h"
#include "api/health.h"
#include "api/prometheus.h"
#include "api/query.h"
#include "api/self_metrics.h"
#include "ingest/otlp_metrics.h"
#include "ingest/remote_write.h"

const struct vigil_module *const vigil_modules[] = {
    &mod_health,
    &mod_self_metrics,
    &mod_federate,
    &mod_prometheus_api,
    &mod_query_api,
    &mod_remote_write,
    &mod_otlp_metrics,
};

const size_t vigil_nmodules = sizeof vigil_modules / sizeof vigil_modules[0];
