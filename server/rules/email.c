/* email: see email.h. */
#include "email.h"

#include "../../storage/base/vg_alloc.h"
#include "slack.h"
#include "transport.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A header value on one line. */
static void put_hval(struct vg_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vg_buf_putc(b, s[i] == '\r' || s[i] == '\n' ? ' ' : s[i]);
}

static void put_b64(struct vg_buf *b, const unsigned char *s, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        vg_buf_putc(b, tab[v >> 18 & 63]);
        vg_buf_putc(b, tab[v >> 12 & 63]);
        vg_buf_putc(b, i + 1 < n ? tab[v >> 6 & 63] : '=');
        vg_buf_putc(b, i + 2 < n ? tab[v & 63] : '=');
    }
}

static void put_subject(struct vg_buf *b, const char *s, size_t n)
{
    bool ascii = true;
    for (size_t i = 0; i < n; i++)
        ascii &= (unsigned char)s[i] < 0x80 && s[i] != '\r' && s[i] != '\n';
    if (ascii) {
        vg_buf_append(b, s, n);
        return;
    }
    vg_buf_puts(b, "=?UTF-8?B?");
    put_b64(b, (const unsigned char *)s, n);
    vg_buf_puts(b, "?=");
}

static void put_kv_lines(struct vg_buf *b, const char *title, const struct label *ls, size_t n)
{
    if (!n)
        return;
    vg_buf_printf(b, "%s:\r\n", title);
    for (size_t i = 0; i < n; i++) {
        vg_buf_printf(b, "  %.*s: ", (int)ls[i].name.len, ls[i].name.p);
        /* keep multi-line annotations readable: indent continuation lines */
        for (size_t k = 0; k < ls[i].value.len; k++) {
            char c = ls[i].value.p[k];
            if (c == '\n')
                vg_buf_puts(b, "\r\n    ");
            else if (c != '\r')
                vg_buf_putc(b, c);
        }
        vg_buf_puts(b, "\r\n");
    }
}

static void put_time_line(struct vg_buf *b, const char *what, int64_t ms)
{
    vg_buf_printf(b, "%s: ", what);
    route_rfc3339(b, ms);
    vg_buf_puts(b, "\r\n");
}

static void put_body(struct vg_buf *b, const struct route_notification *n)
{
    vg_buf_printf(b, "%s%zu alert%s for", n->escalation ? "Escalated: " : "", n->nalerts,
                  n->nalerts == 1 ? "" : "s");
    for (size_t i = 0; i < n->ngroup_labels; i++)
        vg_buf_printf(b, " %.*s=%.*s", (int)n->group_labels[i].name.len,
                      n->group_labels[i].name.p, (int)n->group_labels[i].value.len,
                      n->group_labels[i].value.p);
    vg_buf_puts(b, "\r\n");
    for (size_t i = 0; i < n->nalerts; i++) {
        const struct alert *a = &n->alerts[i];
        struct vg_str name = labels_get(a->labels, a->nlabels, "alertname");
        vg_buf_printf(b, "\r\n[%s] %.*s\r\n", i < n->nfiring ? "FIRING" : "RESOLVED",
                      (int)name.len, name.p ? name.p : "");
        put_kv_lines(b, "Labels", a->labels, a->nlabels);
        put_kv_lines(b, "Annotations", a->annotations, a->nannotations);
        put_time_line(b, "Started", a->starts_at_ms);
        if (i >= n->nfiring)
            put_time_line(b, "Ended", a->ends_at_ms);
        if (a->generator_url && *a->generator_url)
            vg_buf_printf(b, "Source: %s\r\n", a->generator_url);
    }
}

void email_render(const struct route_notification *n, const struct route_integration *it,
                  const struct webhook_ctx *c, int64_t now_ms, struct vg_buf *out)
{
    (void)c;
    static const char *const own[] = { "From", "To", "Date", "Message-Id", "MIME-Version",
                                       "Content-Type", "Content-Transfer-Encoding" };
    vg_buf_puts(out, "From: ");
    put_hval(out, it->from, strlen(it->from));
    vg_buf_puts(out, "\r\nTo: ");
    put_hval(out, it->to, strlen(it->to));
    vg_buf_puts(out, "\r\nSubject: ");
    const char *subject = NULL;
    for (size_t i = 0; i < it->nheaders; i++)
        if (!strcasecmp(it->headers[i].name, "Subject"))
            subject = it->headers[i].value;
    if (subject) {
        put_subject(out, subject, strlen(subject));
    } else {
        struct vg_buf t;
        vg_buf_init(&t);
        slack_default_title(n, &t);
        put_subject(out, t.p ? t.p : "", t.len);
        out->failed |= t.failed;
        vg_buf_free(&t);
    }
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    char date[64] = "Thu, 01 Jan 1970 00:00:00 +0000";
    if (gmtime_r(&secs, &tm))
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    vg_buf_printf(out, "\r\nDate: %s\r\nMessage-Id: <%016llx.%lld@vigil>\r\n", date,
                  (unsigned long long)route_fingerprint(
                      &(struct label){ vg_str_c("k"), vg_str_c(n->group_key) }, 1),
                  (long long)now_ms);
    vg_buf_puts(out, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n");
    for (size_t i = 0; i < it->nheaders; i++) {
        bool skip = !strcasecmp(it->headers[i].name, "Subject");
        for (size_t k = 0; k < sizeof own / sizeof own[0] && !skip; k++)
            skip = !strcasecmp(it->headers[i].name, own[k]);
        if (skip)
            continue;
        vg_buf_printf(out, "%s: ", it->headers[i].name);
        put_hval(out, it->headers[i].value, strlen(it->headers[i].value));
        vg_buf_puts(out, "\r\n");
    }
    vg_buf_puts(out, "\r\n");
    put_body(out, n);
}

void email_addrs_free(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vg_free(a[i]);
    vg_free(a);
}

int email_addrs(const char *list, char ***out, size_t *n, struct vg_err *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = list; *p; p++)
        cap += *p == ',';
    char **a = vg_calloc(cap, sizeof *a);
    if (!a)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *s = p, *e = p + len;
        const char *lt = memchr(s, '<', len);
        if (lt) {
            const char *gt = memchr(lt, '>', (size_t)(e - lt));
            s = lt + 1;
            e = gt ? gt : e;
        }
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            if (!memchr(s, '@', (size_t)(e - s)) || memchr(s, ' ', (size_t)(e - s))) {
                email_addrs_free(a, *n);
                *n = 0;
                return vg_err_set(err, VG_EINVAL, "\"%.*s\" is not an e-mail address",
                                  (int)(e - s), s);
            }
            if (!(a[*n] = vg_strndup(s, (size_t)(e - s)))) {
                email_addrs_free(a, *n);
                *n = 0;
                return vg_err_set(err, VG_ENOMEM, "out of memory");
            }
            (*n)++;
        }
        p += len + (p[len] == ',');
    }
    if (!*n) {
        vg_free(a);
        return vg_err_set(err, VG_EINVAL, "\"%s\" holds no e-mail address", list);
    }
    *out = a;
    return 0;
}

int email_send(const struct route_integration *it, const char *message, size_t len,
               int64_t timeout_ms, const atomic_bool *stop, struct vg_err *err)
{
    char **to, **from;
    size_t nto, nfrom;
    int rc = email_addrs(it->to, &to, &nto, err);
    if (rc < 0)
        return rc;
    if ((rc = email_addrs(it->from, &from, &nfrom, err)) < 0) {
        email_addrs_free(to, nto);
        return rc;
    }
    struct transport_smtp m = {
        .smarthost = it->smarthost,
        .require_tls = it->require_tls,
        .tls_insecure = it->tls_insecure,
        .tls = &it->tls,
        .username = it->auth_username,
        .password = it->auth_password,
        .hello = it->hello,
        .from = from[0],
        .to = (const char *const *)to,
        .nto = nto,
        .message = message,
        .message_len = len,
        .timeout_ms = timeout_ms,
        .stop = stop,
    };
    rc = transport_smtp_send(&m, err);
    email_addrs_free(to, nto);
    email_addrs_free(from, nfrom);
    return rc;
}
