/* email: the message an email_configs receiver sends, and its delivery over SMTP
 * (through transport.h).
 *
 * Message (RFC 5322, CRLF line ends, UTF-8 plain text):
 *   From: <from>  To: <to>  Subject: <title>  Date: <RFC 5322 date>
 *   Message-Id: <group key hash.time@vigil>  MIME-Version: 1.0
 *   Content-Type: text/plain; charset=UTF-8  Content-Transfer-Encoding: 8bit
 *   <configured headers; a configured Subject replaces the default one>
 *
 *   <count> alert(s) for <group labels>            (or "escalated:" for escalations)
 *
 *   [FIRING] <alertname>
 *   Labels: name=value, ...
 *   Annotations: name=value, ...            (one "  name: value" line each)
 *   Started: <RFC 3339>   Ended: <RFC 3339>  (resolved only)
 *   Source: <generatorURL>
 *   (blank line between alerts)
 *
 * The default subject is slack_default_title's text. Header values have CR and LF
 * replaced by spaces; a non-ASCII subject is RFC 2047 encoded (=?UTF-8?B?...?=).
 * libcurl dot-stuffs the body on the wire. Pure functions except email_send. */
#ifndef RULES_EMAIL_H
#define RULES_EMAIL_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "route.h"
#include "webhook.h"

#include <stdatomic.h>

/* Appends the whole message for n to out; now_ms dates it. */
void email_render(const struct route_notification *n, const struct route_integration *it,
                  const struct webhook_ctx *c, int64_t now_ms, struct vg_buf *out);

/* The bare addresses of a comma-separated address list ("Ops <ops@x>, b@y"): *out is a
 * vg_malloc'd array of vg_malloc'd strings (free with email_addrs_free). 0, VG_EINVAL
 * when the list holds no address or one without '@', or VG_ENOMEM. */
int email_addrs(const char *list, char ***out, size_t *n, struct vg_err *err);
void email_addrs_free(char **a, size_t n);

/* Sends message (as rendered) to it->to through it->smarthost. 0 or VG_EIO naming the
 * server's reason. Thread-safe. */
int email_send(const struct route_integration *it, const char *message, size_t len,
               int64_t timeout_ms, const atomic_bool *stop, struct vg_err *err);

#endif
