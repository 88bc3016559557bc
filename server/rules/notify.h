/* notify: delivery of alerts from the rule engine to Alertmanagers (Prometheus's
 * `alerting.alertmanagers` section) and to Vigil's built-in notifiers (the
 * `notifications` section: Alertmanager-shaped route tree and receivers of type webhook,
 * slack and email, grouping, silences, escalation), with retries, a history of attempts
 * and a queue that survives restarts.
 *
 * notifier_send never blocks on the network: it copies the alerts into queues that
 * worker threads deliver. Thread-safe. */
#ifndef RULES_NOTIFY_H
#define RULES_NOTIFY_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "alert.h"

#include <stddef.h>

struct config;
struct metrics;
struct notifier;

/* Validates the alerting and notifications sections (file:line errors). */
int notifier_check_config(const struct config *cfg, struct vg_err *err);

/* Starts the delivery threads. state_dir holds the persistent queue, silences and
 * history (created if missing). NULL with err on failure. */
struct notifier *notifier_new(const struct config *cfg, const char *state_dir,
                              struct metrics *m, struct vg_err *err);
/* Stops the threads after a bounded final flush; pending notifications stay on disk. */
void notifier_free(struct notifier *n); /* accepts NULL */

/* Queues copies of alerts (the caller keeps ownership of its array). */
void notifier_send(struct notifier *n, const struct alert *alerts, size_t nalerts);

/* ---- added by the notifier's implementation (compatible with the above) ---- */
/* Silences (silence.h): create or update from the API's JSON body (id_out gets the id,
 * 37 bytes), expire by id, list as a JSON array. Codes as in silence.h. Thread-safe. */
int notifier_silence_create(struct notifier *n, const char *body, size_t len, char *id_out,
                            struct vg_err *err);
int notifier_silence_expire(struct notifier *n, const char *id, struct vg_err *err);
void notifier_silences_json(struct notifier *n, struct vg_buf *out);

/* GET /api/v1/notifications's data: {"attempts":[history, newest first, at most limit
 * (0 = all)],"queues":[one status per Alertmanager and receiver integration],
 * "groups":N,"alerts":N}. */
void notifier_status_json(struct notifier *n, size_t limit, struct vg_buf *out);

/* Runs the dispatcher once at now_ms (the ticker thread does this every
 * notifications.delivery.tick; tests call it to move time on). */
void notifier_tick(struct notifier *n, int64_t now_ms);

#endif
