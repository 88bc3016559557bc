/* alerts_admin: the HTTP API of the notifier (module mod_notify), which also starts and
 * stops the notifier itself (v->notifier, state in data_dir/notify) and validates the
 * `alerting` and `notifications` config sections.
 *
 *   GET    /api/v1/silences          JSON array of Alertmanager GettableSilences
 *                                    (silence.h), newest update first
 *   POST   /api/v1/silences          body: a PostableSilence -> 200 {"silenceID":"<id>"};
 *                                    400 naming the bad field, 404 for an unknown "id"
 *   DELETE /api/v1/silence/<id>      expires it -> 200 {"status":"success"}; 404 unknown,
 *                                    400 already expired
 *   GET    /api/v1/notifications     {"status":"success","data":{"attempts":[...],
 *                                    "queues":[...],"groups":N,"alerts":N}}
 *                                    (notify.h); ?limit=N caps the attempts (default 100)
 * Errors use the Prometheus-style JSON body. Handlers are thread-safe.
 *
 * Module order: mod_notify must come before the rule engine's module in modules.c so
 * the notifier exists when the rules start and outlives them at stop. */
#ifndef ALERTS_ADMIN_H
#define ALERTS_ADMIN_H

#include "../vigil.h"

extern const struct vigil_module mod_notify;

#endif
