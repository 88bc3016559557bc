/* alert: one alert as the rule engine hands it to the notifiers, in the shape of
 * Prometheus's notifier.Alert (what it posts to Alertmanager's /api/v2/alerts).
 *
 * The rule engine sends every firing alert again on each evaluation (at most every
 * resend delay, 1m like Prometheus) with ends_at = now + 4 * max(resend delay,
 * evaluation interval), and a resolved alert with ends_at = the time it resolved
 * (resolved alerts keep being sent for 15 minutes, as Prometheus does). Labels include
 * alertname, the rule's labels and the external labels; annotations are templated. */
#ifndef RULES_ALERT_H
#define RULES_ALERT_H

#include "../../storage/tsdb/labels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct alert {
    const struct label *labels;      /* sorted, names unique */
    size_t nlabels;
    const struct label *annotations; /* sorted */
    size_t nannotations;
    int64_t starts_at_ms;            /* when it started firing (active_at + for) */
    int64_t ends_at_ms;              /* see above; <= now means resolved */
    const char *generator_url;       /* link back to the expression; may be "" */
};

static inline bool alert_resolved(const struct alert *a, int64_t now_ms)
{
    return a->ends_at_ms > 0 && a->ends_at_ms <= now_ms;
}

#endif
