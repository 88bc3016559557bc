/* probe: synthetic monitoring (module mod_probe), shaped like Prometheus's blackbox
 * exporter. Probe modules (http, tcp, dns, icmp: prober.h) and targets come from the
 * `probes` config section (probe_config.h documents it, with the built-in modules).
 *
 * Scheduled probes: every target is probed every `interval` by a small pool of worker
 * threads ("probe-N", min(targets, 8)); first runs are spread over the interval by the
 * target's position so a restart does not fire them all at once. Each run's samples are
 * written to the TSDB at the run's start time with the labels
 *   {job="<target's job, default probe>", instance="<target>", <target labels>}
 * so alert rules can use them (e.g. `probe_success == 0`,
 * `probe_ssl_earliest_cert_expiry - time() < 86400 * 14`). Every run writes
 *   probe_success                1 or 0
 *   probe_duration_seconds       the whole probe
 * plus the prober's samples (probe_http_status_code, probe_http_duration_seconds{phase},
 * probe_ssl_earliest_cert_expiry, probe_dns_lookup_time_seconds, probe_ip_protocol,
 * probe_dns_answer_rrs, probe_icmp_duration_seconds{phase}, ...; see each prober's file).
 * Gauge metadata is written with a target's first run. A run that does not succeed logs
 * its reason at debug level (warn, rate-limited, when it changes from success to failure).
 *
 * On demand: GET /probe?module=<name>&target=<target> runs one probe on the HTTP worker
 * thread (bounded by the module's timeout) and answers with the Prometheus text
 * exposition of the same samples, as the blackbox exporter does; a failed probe is still
 * a 200 with probe_success 0. A missing target or an unknown module is a 400 with the
 * reason. Like the blackbox exporter, /probe makes Vigil connect wherever it is told:
 * put the HTTP listener behind the same access control as the rest of the API.
 *
 * /metrics: vigil_probe_runs_total{module,result} (result success or failure),
 * vigil_probe_store_errors_total.
 * Without a `probes` section nothing runs in the background and /probe still serves the
 * built-in modules. The module's free hook stops the workers (an in-flight probe is
 * abandoned within about 100 ms) and joins them. */
#ifndef PROBE_H
#define PROBE_H

#include "../../storage/base/vg_buf.h"
#include "../vigil.h"
#include "prober.h"

#include <stdatomic.h>
#include <stdint.h>

extern const struct vigil_module mod_probe;

/* Runs one probe of target with module m: the prober's samples plus probe_success and
 * probe_duration_seconds (appended last). Returns success. Thread-safe. */
bool probe_run(const struct probe_module *m, const char *target, const atomic_bool *stop,
               struct probe_result *r);

/* Appends r as the text exposition: for each metric name in order of first appearance a
 * # HELP and # TYPE gauge line, then its samples. */
void probe_write_exposition(const struct probe_result *r, struct vg_buf *out);

/* Scheduled runs completed since start (for tests waiting on the scheduler). */
uint64_t probe_runs_done(const struct vigil *v);

#endif
