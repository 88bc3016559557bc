/* alertmanager: the client that pushes alerts to Alertmanagers, configured like
 * Prometheus's `alerting` section:
 *
 *   alerting:
 *     alertmanagers:
 *       - static_configs: [{targets: ['127.0.0.1:9093']}]
 *         scheme: http             # or https
 *         path_prefix: /           # prepended to /api/v2/alerts
 *         timeout: 10s             # per POST
 *         api_version: v2          # the only one Alertmanager still serves (v1: error)
 *         basic_auth: {username, password | password_file}
 *         authorization: {type: Bearer, credentials | credentials_file}
 *         bearer_token | bearer_token_file # legacy form of authorization
 *         tls_config: {ca_file, cert_file, key_file, server_name, insecure_skip_verify}
 *         alert_relabel_configs: [...]     # relabel.h rules, for this entry's targets
 *     alert_relabel_configs: [...] # for every Alertmanager, before the per-entry ones
 *     queue_capacity: 10000        # Vigil's: alerts waiting per Alertmanager
 *
 * As in Prometheus: at most one of basic_auth, authorization and bearer_token(_file);
 * a secret inline or from a file, not both; files must be readable at start and are
 * read again (white space trimmed) for every POST, so rotated secrets are picked up.
 * Relabelling works on the alert's labels (a dropped alert is not sent to that entry's
 * targets; the fingerprint is of the relabelled set) and reuses the scraper's
 * relabel.h. A target listed in two entries gets one queue with the first's settings.
 *
 * Each target gets its own outbox (outbox.h) holding one alert per item, sent in
 * batches of up to 64 as Prometheus does: POST <scheme>://<target><path_prefix>/api/v2/alerts
 * with the JSON array of the items. One alert (Alertmanager's PostableAlert):
 *   {"labels":{...},"annotations":{...},"startsAt":"<RFC 3339>","endsAt":"<RFC 3339>",
 *    "generatorURL":"<url>"}
 * endsAt is omitted when the alert has none. Metrics, labelled alertmanager=<URL>:
 * prometheus_notifications_sent_total, _errors_total, _dropped_total,
 * prometheus_notifications_queue_length, and prometheus_notifications_alertmanagers_discovered.
 * Thread-safe. */
#ifndef RULES_ALERTMANAGER_H
#define RULES_ALERTMANAGER_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "alert.h"
#include "route.h"

#include <stdatomic.h>

struct config_node;
struct kv;
struct history;
struct metrics;
struct outbox;

#define ALERTMANAGER_BATCH 64

/* Validates the alerting section (NULL = none). 0 or VG_EINVAL "file:line: ...". */
int alertmanager_check(const struct config_node *alerting, struct vg_err *err);

/* Appends one alert as Alertmanager's PostableAlert JSON. */
void alertmanager_alert_json(const struct alert *a, struct vg_buf *out);

struct alertmanagers;

/* Starts one outbox per target (retries per d). kv, hist and m may be NULL; seq is the
 * notifier's shared kv sequence. NULL with err. */
struct alertmanagers *alertmanagers_new(const struct config_node *alerting,
                                        const struct route_delivery *d, struct kv *kv,
                                        _Atomic uint64_t *seq, struct history *hist,
                                        struct metrics *m, struct vg_err *err);
void alertmanagers_free(struct alertmanagers *a); /* accepts NULL */

/* Queues the alerts for every Alertmanager. */
void alertmanagers_send(struct alertmanagers *a, const struct alert *alerts, size_t n,
                        int64_t now_ms);

/* The outboxes (for restoring persisted items and status). */
size_t alertmanagers_count(const struct alertmanagers *a);
struct outbox *alertmanagers_outbox(struct alertmanagers *a, size_t i);

#endif
