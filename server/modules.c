/* modules: the registry of receivers and API families. Adding one is a new file and a
 * new row here; the order is the routing order (first match wins). */
#include "vigil.h"

#include "api/alerts_admin.h"
#include "api/console.h"
#include "api/errors.h"
#include "api/federate.h"
#include "api/health.h"
#include "api/jaeger.h"
#include "api/loki.h"
#include "api/prometheus.h"
#include "api/query.h"
#include "api/rules.h"
#include "api/self_metrics.h"
#include "api/status_config.h"
#include "api/tempo.h"
#include "collect/jolokia.h"
#include "collect/snmp.h"
#include "api/targets.h"
#include "ingest/filetail.h"
#include "ingest/loki_push.h"
#include "ingest/otlp_logs.h"
#include "ingest/otlp_metrics.h"
#include "ingest/otlp_traces.h"
#include "ingest/remote_write.h"
#include "ingest/sampling.h"
#include "ingest/syslog.h"
#include "ingest/statsd.h"
#include "probe/probe.h"
#include "ingest/zipkin.h"
#include "rules/rules.h"
#include "scrape/scrape.h"
#include "traces/derive.h"

const struct vigil_module *const vigil_modules[] = {
    &mod_health,
    &mod_self_metrics,
    &mod_federate,
    &mod_prometheus_api,
    &mod_query_api,
    &mod_status_config_api,
    &mod_notify, /* before the rule engine: started first, stopped last */
    &mod_rules,
    &mod_rules_api,
    &mod_remote_write,
    &mod_scrape,
    &mod_targets_api,
    &mod_syslog,
    &mod_statsd,
    &mod_probe,
    &mod_traces_derive,
    &mod_sampling, /* before the trace receivers: stopped after them, flushes the tail buffer */
    &mod_errors_api,
    &mod_otlp_metrics,
    &mod_otlp_traces,
    &mod_zipkin,
    &mod_tempo,
    &mod_jaeger_api,
    &mod_otlp_logs,
    &mod_loki_push,
    &mod_filetail,
    &mod_snmp,
    &mod_jmx,
    &mod_loki_api,
    &mod_console, /* last: every API route wins over the console's pages */
};

const size_t vigil_nmodules = sizeof vigil_modules / sizeof vigil_modules[0];
