/* render_fixture: one notification (two alerts, one firing and one resolved) shared by
 * the renderer tests (webhook, slack, email). */
#ifndef TEST_RULES_RENDER_FIXTURE_H
#define TEST_RULES_RENDER_FIXTURE_H

#include "../../../../server/rules/route.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }
#define T0 1700000000000LL

static const struct label fx_l1[] = { L("alertname", "HighLoad"), L("instance", "a:1"),
                                      L("job", "api"), L("severity", "page") };
static const struct label fx_l2[] = { L("alertname", "HighLoad"), L("instance", "b:2"),
                                      L("job", "api"), L("severity", "page") };
static const struct label fx_a1[] = { L("runbook", "http://wiki/x"),
                                      L("summary", "load \"high\" on a:1") };
static const struct label fx_a2[] = { L("runbook", "http://wiki/x"), L("summary", "load on b:2") };
static const struct label fx_group[] = { L("alertname", "HighLoad") };

static const struct alert fx_alerts[] = {
    { fx_l1, 4, fx_a1, 2, T0, T0 + 240000, "http://vigil/graph?g0.expr=up" },
    { fx_l2, 4, fx_a2, 2, T0 - 60000, T0 + 30000, "" },
};
static const uint64_t fx_fps[] = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };

static inline struct route_notification fx_notification(void)
{
    return (struct route_notification){
        .receiver = "team", .group_key = "{}:{alertname=\"HighLoad\"}",
        .group_labels = fx_group, .ngroup_labels = 1, .alerts = fx_alerts,
        .fingerprints = fx_fps, .nalerts = 2, .nfiring = 1,
    };
}

#endif
