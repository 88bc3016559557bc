/* webhook: the body Alertmanager's webhook receiver posts (webhook_configs), built from
 * one route notification, and the helpers the other receivers share (status, common
 * labels).
 *
 * Body (Alertmanager's webhook format, version "4"), fields in this order:
 *   {"version":"4","groupKey":"<key>","truncatedAlerts":N,"status":"firing|resolved",
 *    "receiver":"<name>","groupLabels":{...},"commonLabels":{...},
 *    "commonAnnotations":{...},"externalURL":"<url>",
 *    "alerts":[{"status":"firing|resolved","labels":{...},"annotations":{...},
 *               "startsAt":"<RFC 3339>","endsAt":"<RFC 3339>","generatorURL":"<url>",
 *               "fingerprint":"<16 hex digits>"}, ...]}
 * status is "firing" when any alert in the notification fires. endsAt is the alert's
 * ends_at ("0001-01-01T00:00:00Z" when it has none). max_alerts > 0 keeps the first
 * max_alerts alerts and reports the rest in truncatedAlerts. Pure functions. */
#ifndef RULES_WEBHOOK_H
#define RULES_WEBHOOK_H

#include "../../storage/base/vg_buf.h"
#include "route.h"

/* What every renderer needs besides the notification itself. */
struct webhook_ctx {
    const char *external_url;
    int64_t max_alerts;       /* webhook only; 0 = all */
};

/* "firing" when n has a firing alert, else "resolved". */
const char *webhook_status(const struct route_notification *n);

/* The labels (annotations when annotations is true) whose name and value every alert of
 * n shares, sorted: *out is vg_malloc'd (the caller frees it with vg_free; NULL when out
 * of memory) and points into n's alerts. Returns the count. */
size_t webhook_common(const struct route_notification *n, bool annotations, struct label **out);

/* Appends the webhook JSON body. The buffer's failed flag reports out of memory. */
void webhook_render(const struct route_notification *n, const struct webhook_ctx *c,
                    struct vg_buf *out);

#endif
