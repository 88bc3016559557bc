/* Tests server/rules/webhook.c: Alertmanager's webhook JSON, field by field. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "../../../../server/rules/webhook.h"
#include "../../../../storage/base/vg_alloc.h"
#include "render_fixture.h"

static json_t *render(const struct route_notification *n, int64_t max_alerts)
{
    struct webhook_ctx c = { .external_url = "http://vigil:4318", .max_alerts = max_alerts };
    struct vg_buf b;
    vg_buf_init(&b);
    webhook_render(n, &c, &b);
    cr_assert_not(vg_buf_failed(&b));
    json_error_t je;
    json_t *o = json_loadb(b.p, b.len, 0, &je);
    cr_assert_not_null(o, "invalid JSON (%s): %s", je.text, b.p);
    vg_buf_free(&b);
    return o;
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    cr_assert_not_null(s, "field %s missing", k);
    return s;
}

Test(webhook, body_fields)
{
    struct route_notification n = fx_notification();
    json_t *o = render(&n, 0);
    cr_assert_str_eq(str(o, "version"), "4");
    cr_assert_str_eq(str(o, "groupKey"), "{}:{alertname=\"HighLoad\"}");
    cr_assert_eq(json_integer_value(json_object_get(o, "truncatedAlerts")), 0);
    cr_assert_str_eq(str(o, "status"), "firing");
    cr_assert_str_eq(str(o, "receiver"), "team");
    cr_assert_str_eq(str(o, "externalURL"), "http://vigil:4318");
    json_t *gl = json_object_get(o, "groupLabels");
    cr_assert_eq(json_object_size(gl), 1);
    cr_assert_str_eq(str(gl, "alertname"), "HighLoad");
    json_t *cl = json_object_get(o, "commonLabels");
    cr_assert_eq(json_object_size(cl), 3, "instance differs");
    cr_assert_str_eq(str(cl, "job"), "api");
    cr_assert_str_eq(str(cl, "severity"), "page");
    cr_assert_null(json_object_get(cl, "instance"));
    json_t *ca = json_object_get(o, "commonAnnotations");
    cr_assert_eq(json_object_size(ca), 1);
    cr_assert_str_eq(str(ca, "runbook"), "http://wiki/x");

    json_t *as = json_object_get(o, "alerts");
    cr_assert_eq(json_array_size(as), 2);
    json_t *a = json_array_get(as, 0);
    cr_assert_str_eq(str(a, "status"), "firing");
    cr_assert_str_eq(str(json_object_get(a, "labels"), "instance"), "a:1");
    cr_assert_str_eq(str(json_object_get(a, "annotations"), "summary"), "load \"high\" on a:1");
    cr_assert_str_eq(str(a, "startsAt"), "2023-11-14T22:13:20.000Z");
    cr_assert_str_eq(str(a, "endsAt"), "2023-11-14T22:17:20.000Z");
    cr_assert_str_eq(str(a, "generatorURL"), "http://vigil/graph?g0.expr=up");
    cr_assert_str_eq(str(a, "fingerprint"), "0123456789abcdef");
    json_t *b = json_array_get(as, 1);
    cr_assert_str_eq(str(b, "status"), "resolved");
    cr_assert_str_eq(str(b, "fingerprint"), "fedcba9876543210");
    cr_assert_str_eq(str(b, "generatorURL"), "");
    json_decref(o);
}

Test(webhook, resolved_status_and_truncation)
{
    struct route_notification n = fx_notification();
    n.nfiring = 0;
    json_t *o = render(&n, 1);
    cr_assert_str_eq(str(o, "status"), "resolved");
    cr_assert_eq(json_integer_value(json_object_get(o, "truncatedAlerts")), 1);
    cr_assert_eq(json_array_size(json_object_get(o, "alerts")), 1);
    json_decref(o);
}

Test(webhook, field_order_is_alertmanagers)
{
    struct route_notification n = fx_notification();
    struct webhook_ctx c = { .external_url = "" };
    struct vg_buf b;
    vg_buf_init(&b);
    webhook_render(&n, &c, &b);
    const char *p = vg_buf_cstr(&b);
    const char *order[] = { "\"version\"", "\"groupKey\"", "\"truncatedAlerts\"", "\"status\"",
                            "\"receiver\"", "\"groupLabels\"", "\"commonLabels\"",
                            "\"commonAnnotations\"", "\"externalURL\"", "\"alerts\"" };
    const char *last = p;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *q = strstr(p, order[i]);
        cr_assert(q && q >= last, "%s out of order in %s", order[i], p);
        last = q;
    }
    vg_buf_free(&b);
}

Test(webhook, out_of_memory_marks_the_buffer)
{
    struct route_notification n = fx_notification();
    struct webhook_ctx c = { .external_url = "" };
    struct vg_buf b;
    vg_buf_init(&b);
    vg_alloc_fail_after(1);
    webhook_render(&n, &c, &b);
    vg_alloc_fail_after(0);
    cr_assert(vg_buf_failed(&b));
    vg_buf_free(&b);
}
