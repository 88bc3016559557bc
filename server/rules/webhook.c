/* webhook: see webhook.h. */
#include "webhook.h"

#include "../../storage/base/vg_alloc.h"
#include "../labels_json.h"

#include <string.h>

const char *webhook_status(const struct route_notification *n)
{
    return n->nfiring ? "firing" : "resolved";
}

size_t webhook_common(const struct route_notification *n, bool annotations, struct label **out)
{
    *out = NULL;
    size_t nls = 0;
    const struct label *ls = NULL;
    if (n->nalerts) {
        const struct alert *a0 = &n->alerts[0];
        ls = annotations ? a0->annotations : a0->labels;
        nls = annotations ? a0->nannotations : a0->nlabels;
    }
    if (!(*out = vg_malloc((nls + 1) * sizeof **out)))
        return 0;
    size_t cnt = 0;
    for (size_t i = 0; i < nls; i++) {
        bool shared = true;
        for (size_t k = 1; k < n->nalerts && shared; k++) {
            const struct alert *a = &n->alerts[k];
            struct vg_str v = annotations
                                  ? labels_get(a->annotations, a->nannotations, ls[i].name.p)
                                  : labels_get(a->labels, a->nlabels, ls[i].name.p);
            shared = v.p && vg_str_eq(v, ls[i].value);
        }
        if (shared)
            (*out)[cnt++] = ls[i];
    }
    return cnt;
}

static void put_time(struct vg_buf *b, int64_t ms)
{
    vg_buf_putc(b, '"');
    if (ms > 0)
        route_rfc3339(b, ms);
    else
        vg_buf_puts(b, "0001-01-01T00:00:00Z");
    vg_buf_putc(b, '"');
}

static void put_common(struct vg_buf *b, const struct route_notification *n, bool annotations)
{
    struct label *common;
    size_t cnt = webhook_common(n, annotations, &common);
    if (!common) {
        b->failed = true;
        return;
    }
    labels_json_put(b, common, cnt);
    vg_free(common);
}

void webhook_render(const struct route_notification *n, const struct webhook_ctx *c,
                    struct vg_buf *out)
{
    size_t nsend = n->nalerts;
    if (c->max_alerts > 0 && (size_t)c->max_alerts < nsend)
        nsend = (size_t)c->max_alerts;
    vg_buf_puts(out, "{\"version\":\"4\",\"groupKey\":");
    vg_buf_json_str(out, n->group_key, strlen(n->group_key));
    vg_buf_printf(out, ",\"truncatedAlerts\":%zu,\"status\":\"%s\",\"receiver\":",
                  n->nalerts - nsend, webhook_status(n));
    vg_buf_json_str(out, n->receiver, strlen(n->receiver));
    vg_buf_puts(out, ",\"groupLabels\":");
    labels_json_put(out, n->group_labels, n->ngroup_labels);
    vg_buf_puts(out, ",\"commonLabels\":");
    put_common(out, n, false);
    vg_buf_puts(out, ",\"commonAnnotations\":");
    put_common(out, n, true);
    vg_buf_puts(out, ",\"externalURL\":");
    vg_buf_json_str(out, c->external_url, strlen(c->external_url));
    vg_buf_puts(out, ",\"alerts\":[");
    for (size_t i = 0; i < nsend; i++) {
        const struct alert *a = &n->alerts[i];
        vg_buf_printf(out, "%s{\"status\":\"%s\",\"labels\":", i ? "," : "",
                      i < n->nfiring ? "firing" : "resolved");
        labels_json_put(out, a->labels, a->nlabels);
        vg_buf_puts(out, ",\"annotations\":");
        labels_json_put(out, a->annotations, a->nannotations);
        vg_buf_puts(out, ",\"startsAt\":");
        put_time(out, a->starts_at_ms);
        vg_buf_puts(out, ",\"endsAt\":");
        put_time(out, a->ends_at_ms);
        vg_buf_puts(out, ",\"generatorURL\":");
        const char *g = a->generator_url ? a->generator_url : "";
        vg_buf_json_str(out, g, strlen(g));
        vg_buf_printf(out, ",\"fingerprint\":\"%016llx\"}",
                      (unsigned long long)n->fingerprints[i]);
    }
    vg_buf_puts(out, "]}");
}
