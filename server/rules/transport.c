/* transport: see transport.h. Every transfer uses a fresh easy handle: notifications are
 * rare enough that connection reuse buys nothing, and a fresh handle carries no state
 * from a previous failure. CURLOPT_NOSIGNAL keeps libcurl's resolver timeouts from
 * using signals (we run in worker threads). */
#include "transport.h"

#include "../../storage/base/vg_buf.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc;

static void global_init(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Response bodies are kept only for the error message; the first 256 bytes do. */
#define KEEP_BODY 256

struct sink {
    char buf[KEEP_BODY + 1];
    size_t len;
    struct vg_buf *all;     /* transport_http.response */
    size_t max_all;
    bool too_large;
};

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    struct sink *s = ud;
    size_t n = size * nmemb, room = KEEP_BODY - s->len;
    if (s->all) {
        if (s->all->len + n > s->max_all) {
            s->too_large = true;
            return 0; /* aborts the transfer */
        }
        vg_buf_append(s->all, p, n);
    }
    size_t take = n < room ? n : room;
    memcpy(s->buf + s->len, p, take);
    s->len += take;
    s->buf[s->len] = '\0';
    return n;
}

static int progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const atomic_bool *stop = ud;
    return stop && atomic_load(stop) ? 1 : 0; /* non-zero aborts the transfer */
}

static CURL *easy_new(int64_t timeout_ms, const atomic_bool *stop, char *errbuf)
{
    pthread_once(&init_once, global_init);
    if (init_rc != CURLE_OK)
        return NULL;
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 10000));
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop);
    return c;
}

static const char *reason(CURLcode rc, const char *errbuf)
{
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return "aborted by shutdown";
    return errbuf[0] ? errbuf : curl_easy_strerror(rc);
}

int transport_http_post(const struct transport_http *req, long *status, struct vg_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    long code = 0;
    if (status)
        *status = 0;
    CURL *c = easy_new(req->timeout_ms, req->stop, errbuf);
    if (!c)
        return vg_err_set(err, VG_ENOMEM, "POST %s: cannot create a libcurl handle", req->url);
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", req->content_type);
    struct curl_slist *hdrs = curl_slist_append(NULL, ct);
    struct curl_slist *h2 = hdrs ? curl_slist_append(hdrs, "User-Agent: Vigil/0.1") : NULL;
    if (!h2) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        return vg_err_set(err, VG_ENOMEM, "POST %s: out of memory", req->url);
    }
    hdrs = h2;
    for (size_t i = 0; i < req->nheaders && h2; i++)
        if ((h2 = curl_slist_append(hdrs, req->headers[i])))
            hdrs = h2;
    if (!h2) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        return vg_err_set(err, VG_ENOMEM, "POST %s: out of memory", req->url);
    }
    struct sink s = { .len = 0, .all = req->response, .max_all = req->max_response };
    s.buf[0] = '\0';
    if (req->userpwd && req->userpwd[0]) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, req->userpwd);
    }
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    char *tls_url;
    struct curl_slist *conn;
    if (!tls_config_apply(c, req->tls, false, req->url, &tls_url, &conn)) {
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(c);
        return vg_err_set(err, VG_EINVAL, "POST %s: cannot apply tls_config.server_name \"%s\"",
                          req->url, req->tls->server_name);
    }
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int ret = 0;
    if (s.too_large)
        ret = vg_err_set(err, VG_ETOOLARGE, "POST %s: response over %zu bytes", req->url,
                         req->max_response);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        ret = vg_err_set(err, VG_EIO, "POST %s: timed out after %lld ms", req->url,
                         (long long)req->timeout_ms);
    else if (rc != CURLE_OK)
        ret = vg_err_set(err, VG_EIO, "POST %s: %s", req->url, reason(rc, errbuf));
    else if (code < 200 || code > 299)
        ret = vg_err_set(err, VG_EIO, "POST %s: HTTP %ld: %.*s", req->url, code,
                         (int)strcspn(s.buf, "\r\n"), s.buf);
    if (status)
        *status = code;
    curl_free(tls_url);
    curl_slist_free_all(conn);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return ret;
}

struct reader {
    const char *p;
    size_t left;
};

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *ud)
{
    struct reader *r = ud;
    size_t n = size * nmemb;
    if (n > r->left)
        n = r->left;
    memcpy(buf, r->p, n);
    r->p += n;
    r->left -= n;
    return n;
}

int transport_smtp_send(const struct transport_smtp *m, struct vg_err *err)
{
    char errbuf[CURL_ERROR_SIZE];
    CURL *c = easy_new(m->timeout_ms, m->stop, errbuf);
    if (!c)
        return vg_err_set(err, VG_ENOMEM, "SMTP %s: cannot create a libcurl handle",
                          m->smarthost);
    struct curl_slist *rcpt = NULL;
    for (size_t i = 0; i < m->nto; i++) {
        struct curl_slist *nr = curl_slist_append(rcpt, m->to[i]);
        if (!nr) {
            curl_slist_free_all(rcpt);
            curl_easy_cleanup(c);
            return vg_err_set(err, VG_ENOMEM, "SMTP %s: out of memory", m->smarthost);
        }
        rcpt = nr;
    }
    char url[512], from[320];
    snprintf(url, sizeof url, "smtp://%s/%s", m->smarthost, m->hello ? m->hello : "localhost");
    snprintf(from, sizeof from, "<%s>", m->from);
    struct reader r = { m->message, m->message_len };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &r);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->message_len);
    curl_easy_setopt(c, CURLOPT_USE_SSL, m->require_tls ? (long)CURLUSESSL_ALL
                                                        : (long)CURLUSESSL_NONE);
    char *tls_url;
    struct curl_slist *conn;
    if (!tls_config_apply(c, m->tls, m->tls_insecure, url, &tls_url, &conn)) {
        curl_slist_free_all(rcpt);
        curl_easy_cleanup(c);
        return vg_err_set(err, VG_EINVAL, "SMTP %s: cannot apply tls_config.server_name",
                          m->smarthost);
    }
    if (m->username && m->username[0]) {
        curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, m->password ? m->password : "");
    }
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int ret = 0;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        ret = vg_err_set(err, VG_EIO, "SMTP %s: timed out after %lld ms", m->smarthost,
                         (long long)m->timeout_ms);
    else if (rc != CURLE_OK && code)
        ret = vg_err_set(err, VG_EIO, "SMTP %s: server replied %ld: %s", m->smarthost, code,
                         reason(rc, errbuf));
    else if (rc != CURLE_OK)
        ret = vg_err_set(err, VG_EIO, "SMTP %s: %s", m->smarthost, reason(rc, errbuf));
    curl_free(tls_url);
    curl_slist_free_all(conn);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    return ret;
}
