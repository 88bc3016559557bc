/* modules: the registry of receivers and API families. Adding one is a new file and a
 * new row here; the order is the routing order (first match wins). */
#include "vigil.h"

#include "api/federate.h"
#include "api/health.h"
#include "api/prometheus.h"
#include "api/query.h"
#include "api/self_metrics.h"
#include "api/tempo.h"
#include "ingest/loki_push.h"
#include "ingest/otlp_logs.h"
#include "ingest/otlp_metrics.h"
#include "ingest/otlp_traces.h"
#include "ingest/remote_write.h"
#include "ingest/syslog.h"
#include "ingest/zipkin.h"

const struct vigil_module *const vigil_modules[] = {
    &mod_health,
    &mod_self_metrics,
    &mod_federate,
    &mod_prometheus_api,
    &mod_query_api,
    &mod_remote_write,
    &mod_syslog,
    &mod_otlp_metrics,
    &mod_otlp_traces,
    &mod_zipkin,
    &mod_tempo,
    &mod_otlp_logs,
    &mod_loki_push,
};

const size_t vigil_nmodules = sizeof vigil_modules / sizeof vigil_modules[0];
