/* transport: the one wrapper around libcurl (<curl/curl.h> is included nowhere else),
 * used by the notifiers for HTTP POSTs (Alertmanager, webhook, Slack) and SMTP (e-mail).
 *
 * Each call is one blocking transfer on its own easy handle, bounded by timeout_ms, and
 * aborted early when *stop becomes true (shutdown never waits out a hanging peer). Calls
 * are thread-safe; the first call initialises libcurl once per process. */
#ifndef RULES_TRANSPORT_H
#define RULES_TRANSPORT_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../tls_config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct transport_http {
    const char *url;
    const char *content_type;   /* e.g. "application/json" */
    const char *body;
    size_t body_len;
    int64_t timeout_ms;         /* whole transfer, connect included */
    const atomic_bool *stop;    /* may be NULL */
    /* Optional (collect/jolokia.c): when response is set, the whole response body is
     * appended to it (at most max_response bytes: more fails with VG_ETOOLARGE);
     * userpwd "user:password" sends HTTP basic auth. */
    struct vg_buf *response;
    size_t max_response;
    const char *userpwd;
    /* Extra request headers, each "Name: value" (e.g. "Authorization: Bearer x");
     * headers may be NULL when nheaders is 0. tls may be NULL (system CAs, verified). */
    const char *const *headers;
    size_t nheaders;
    const struct tls_config *tls;
};

/* POSTs the body. 0 on a 2xx status; otherwise VG_EIO with "POST <url>: HTTP <status>:
 * <start of the response body>" or "POST <url>: <curl's reason>" (a timeout says
 * "timed out after N ms"). *status gets the HTTP status (0 when none was received);
 * status may be NULL. */
int transport_http_post(const struct transport_http *req, long *status, struct vg_err *err);

struct transport_smtp {
    const char *smarthost;      /* "host:port" */
    bool require_tls;           /* STARTTLS required (smtp://, CURLUSESSL_ALL) */
    bool tls_insecure;          /* skip certificate checks (test servers) */
    const struct tls_config *tls; /* NULL = system CAs; its insecure adds to tls_insecure */
    const char *username;       /* NULL or "" = no AUTH */
    const char *password;
    const char *hello;          /* name sent in EHLO; NULL = "localhost" */
    const char *from;           /* envelope sender (bare address) */
    const char *const *to;      /* envelope recipients (bare addresses) */
    size_t nto;
    const char *message;        /* the whole RFC 5322 message, CRLF line ends */
    size_t message_len;
    int64_t timeout_ms;
    const atomic_bool *stop;    /* may be NULL */
};

/* Sends one message. 0 when the server accepted it; VG_EIO with "SMTP <smarthost>:
 * <reason>" (the server's last reply code when there was one) otherwise. */
int transport_smtp_send(const struct transport_smtp *m, struct vg_err *err);

#endif
