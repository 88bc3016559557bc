/* Tests server/rules/email.c: the RFC 5322 message, header injection defence, RFC 2047
 * subjects, address lists, and an SMTP failure reported with the server's reason. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/rules/email.h"
#include "../../../../storage/base/vg_alloc.h"
#include "render_fixture.h"

static char *render(const struct route_notification *n, const struct route_integration *it)
{
    struct webhook_ctx c = { .external_url = "" };
    struct vg_buf b;
    vg_buf_init(&b);
    email_render(n, it, &c, T0, &b);
    cr_assert_not(vg_buf_failed(&b));
    return vg_buf_steal(&b, NULL);
}

Test(email, message)
{
    struct route_notification n = fx_notification();
    struct route_header h[] = { { "X-Team", "db\r\nBcc: evil@x" }, { "Date", "ignored" } };
    struct route_integration it = { .kind = ROUTE_EMAIL, .to = "Ops <ops@x>", .from = "v@x",
                                    .headers = h, .nheaders = 2 };
    char *m = render(&n, &it);
    cr_assert(!strncmp(m, "From: v@x\r\nTo: Ops <ops@x>\r\n"
                          "Subject: [FIRING:1] HighLoad (alertname=\"HighLoad\")\r\n"
                          "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-Id: <", 130), "%s", m);
    cr_assert(strstr(m, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"));
    cr_assert(strstr(m, "X-Team: db  Bcc: evil@x\r\n"), "CR LF in a header value is flattened");
    cr_assert_null(strstr(m, "ignored"), "our own headers are not overridden");
    const char *body = strstr(m, "\r\n\r\n");
    cr_assert_not_null(body);
    cr_assert(!strncmp(body + 4, "2 alerts for alertname=HighLoad\r\n\r\n[FIRING] HighLoad\r\n"
                                 "Labels:\r\n  alertname: HighLoad\r\n  instance: a:1\r\n", 90),
              "%s", body + 4);
    cr_assert(strstr(body, "Started: 2023-11-14T22:13:20.000Z\r\nSource: "
                           "http://vigil/graph?g0.expr=up\r\n"));
    cr_assert(strstr(body, "[RESOLVED] HighLoad\r\n"));
    cr_assert(strstr(body, "Ended: 2023-11-14T22:13:50.000Z\r\n"));
    vg_free(m);
}

Test(email, subject_header_and_utf8)
{
    struct route_notification n = fx_notification();
    struct route_header h[] = { { "Subject", "Alarm \xc3\xa9t\xc3\xa9" } };
    struct route_integration it = { .kind = ROUTE_EMAIL, .to = "a@x", .from = "v@x",
                                    .headers = h, .nheaders = 1 };
    char *m = render(&n, &it);
    cr_assert(strstr(m, "Subject: =?UTF-8?B?QWxhcm0gw6l0w6k=?=\r\n"), "%s", m);
    vg_free(m);
}

Test(email, address_lists)
{
    char **a;
    size_t n;
    struct vg_err err;
    cr_assert_eq(email_addrs("Ops <ops@x>, b@y ,c@z", &a, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(a[0], "ops@x");
    cr_assert_str_eq(a[1], "b@y");
    cr_assert_str_eq(a[2], "c@z");
    email_addrs_free(a, n);
    cr_assert_eq(email_addrs("nobody", &a, &n, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "\"nobody\" is not an e-mail address");
    cr_assert_eq(email_addrs(" , ", &a, &n, &err), VG_EINVAL);
}

Test(email, unreachable_server_is_an_error)
{
    /* port 1 on loopback: nothing listens; the error names the smarthost */
    struct route_integration it = { .kind = ROUTE_EMAIL, .to = "a@x", .from = "v@x",
                                    .smarthost = "127.0.0.1:1" };
    struct vg_err err;
    cr_assert_eq(email_send(&it, "x", 1, 2000, NULL, &err), VG_EIO);
    cr_assert(strstr(err.msg, "SMTP 127.0.0.1:1:"), "%s", err.msg);
}
