/* Tests server/rules/slack.c: the incoming-webhook body, default title and text, and
 * the template subset (check and expansion). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "../../../../server/rules/slack.h"
#include "render_fixture.h"

static json_t *render(const struct route_notification *n, const struct route_integration *it)
{
    struct webhook_ctx c = { .external_url = "http://vigil:4318" };
    struct vg_buf b;
    vg_buf_init(&b);
    slack_render(n, it, &c, &b);
    json_t *o = json_loadb(b.p, b.len, 0, NULL);
    cr_assert_not_null(o, "invalid JSON: %s", b.p);
    vg_buf_free(&b);
    return o;
}

Test(slack, default_body)
{
    struct route_notification n = fx_notification();
    struct route_integration it = { .kind = ROUTE_SLACK, .channel = "#ops" };
    json_t *o = render(&n, &it);
    cr_assert_str_eq(json_string_value(json_object_get(o, "channel")), "#ops");
    cr_assert_null(json_object_get(o, "username"));
    json_t *a = json_array_get(json_object_get(o, "attachments"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "color")), "danger");
    cr_assert_str_eq(json_string_value(json_object_get(a, "title")),
                     "[FIRING:1] HighLoad (alertname=\"HighLoad\")");
    cr_assert_str_eq(json_string_value(json_object_get(a, "fallback")),
                     json_string_value(json_object_get(a, "title")));
    cr_assert_str_eq(json_string_value(json_object_get(a, "title_link")), "http://vigil:4318");
    cr_assert_str_eq(json_string_value(json_object_get(a, "text")),
                     "*firing* HighLoad: load \"high\" on a:1 `instance=\"a:1\" job=\"api\" "
                     "severity=\"page\"`\n*resolved* HighLoad: load on b:2 `instance=\"b:2\" "
                     "job=\"api\" severity=\"page\"`");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(a, "mrkdwn_in"), 0)),
                     "text");
    json_decref(o);
    n.nfiring = 0;
    o = render(&n, &it);
    a = json_array_get(json_object_get(o, "attachments"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "color")), "good");
    cr_assert_str_eq(json_string_value(json_object_get(a, "title")),
                     "[RESOLVED] HighLoad (alertname=\"HighLoad\")");
    json_decref(o);
}

Test(slack, templates)
{
    struct route_notification n = fx_notification();
    struct route_integration it = {
        .kind = ROUTE_SLACK, .username = "vigil",
        .title = "{{ toUpper .Status }} {{ .CommonLabels.job }}: {{ len .Alerts.Firing }}/{{ len .Alerts }}",
        .text = "{{.GroupLabels.alertname}} for {{ .Receiver }} {{ .CommonAnnotations.runbook }}"
                "{{ .CommonLabels.instance }}.",
    };
    struct vg_err err;
    cr_assert_eq(slack_template_check(it.title, &err), 0, "%s", err.msg);
    cr_assert_eq(slack_template_check(it.text, &err), 0, "%s", err.msg);
    json_t *o = render(&n, &it);
    cr_assert_str_eq(json_string_value(json_object_get(o, "username")), "vigil");
    json_t *a = json_array_get(json_object_get(o, "attachments"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "title")), "FIRING api: 1/2");
    cr_assert_str_eq(json_string_value(json_object_get(a, "text")),
                     "HighLoad for team http://wiki/x.", "a label not common is empty");
    json_decref(o);
}

Test(slack, template_errors)
{
    struct vg_err err;
    cr_assert_eq(slack_template_check("no actions", &err), 0);
    cr_assert_eq(slack_template_check("{{ range .Alerts }}", &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "unsupported action \"{{ range .Alerts }}\" at offset 0"), "%s",
              err.msg);
    cr_assert_eq(slack_template_check("ab {{ .Status", &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "template: unclosed action at offset 3");
    cr_assert_eq(slack_template_check("{{ .CommonLabels.a-b }}", &err), VG_EINVAL);
    cr_assert_eq(slack_template_check("{{ len .Nope }}", &err), VG_EINVAL);
}
