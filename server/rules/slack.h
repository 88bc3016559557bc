/* slack: the JSON a Slack incoming webhook takes (slack_configs), and the small template
 * language of title and text.
 *
 * Body:
 *   {"channel":"#ops","username":"vigil",          (each only when configured)
 *    "attachments":[{"fallback":"<title>","color":"danger|good","title":"<title>",
 *                    "title_link":"<externalURL>","text":"<text>","mrkdwn_in":["text"]}]}
 * color is "danger" while something fires, "good" when all alerts resolved.
 * Default title: [FIRING:2] HighLoad (job="api" severity="page"): the status, the firing
 * count, the common alertname and the group labels. Default text: one line per alert,
 * "*firing* HighLoad: <summary or description annotation> `label="value" ...`".
 *
 * Templates: text with actions in {{ }}, a subset of Alertmanager's Go templates:
 *   .Status .Receiver .GroupKey .ExternalURL
 *   .GroupLabels.<name> .CommonLabels.<name> .CommonAnnotations.<name>
 *   len .Alerts | len .Alerts.Firing | len .Alerts.Resolved
 *   toUpper <any of the above>
 * Anything else is a config error (slack_template_check). Pure functions. */
#ifndef RULES_SLACK_H
#define RULES_SLACK_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "route.h"
#include "webhook.h"

/* 0 or VG_EINVAL naming the first unsupported or unclosed action. */
int slack_template_check(const char *tmpl, struct vg_err *err);

/* Appends tmpl expanded for n (tmpl must have passed slack_template_check; unsupported
 * actions expand to nothing). */
void slack_template_expand(const char *tmpl, const struct route_notification *n,
                           const struct webhook_ctx *c, struct vg_buf *out);

/* The default title and text described above. */
void slack_default_title(const struct route_notification *n, struct vg_buf *out);
void slack_default_text(const struct route_notification *n, struct vg_buf *out);

/* Appends the body; it is->title / it->text override the defaults. */
void slack_render(const struct route_notification *n, const struct route_integration *it,
                  const struct webhook_ctx *c, struct vg_buf *out);

#endif
