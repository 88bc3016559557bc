/* transport: see transport.h. Every transfer uses a fresh easy handle: notifications are
 * rare enough that connection reuse buys nothing, and a fresh handle carries no state
 * from a previous failure. CURLOPT_NOSIGNAL keeps libcurl's resolver timeouts from
 * using signals (we run in worker threads). */
#include "transport.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../config_node.h"

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

/* Sets the TLS options of t (may be NULL) on c. With a server_name, the request names
 * that host (so libcurl checks it in the certificate and sends it as SNI) while
 * CURLOPT_CONNECT_TO sends the connection to the URL's own host and port: *url_out gets
 * the rewritten URL (free with curl_free) and *conn the list (free with
 * curl_slist_free_all). Both stay NULL otherwise. false when out of memory or the URL
 * does not parse. */
static bool apply_tls(CURL *c, const struct transport_tls *t, bool insecure, const char *url,
                      char **url_out, struct curl_slist **conn)
{
    *url_out = NULL;
    *conn = NULL;
    if (insecure || (t && t->insecure)) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!t)
        return true;
    if (t->ca_file && *t->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
    if (t->cert_file && *t->cert_file)
        curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert_file);
    if (t->key_file && *t->key_file)
        curl_easy_setopt(c, CURLOPT_SSLKEY, t->key_file);
    if (!t->server_name || !*t->server_name)
        return true;
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK &&
              curl_url_set(u, CURLUPART_HOST, t->server_name, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_URL, url_out, 0) == CURLUE_OK;
    if (ok) {
        char line[600];
        snprintf(line, sizeof line, "%s:%s:%s:%s", t->server_name, port, host, port);
        ok = (*conn = curl_slist_append(NULL, line)) != NULL;
    }
    if (ok) {
        curl_easy_setopt(c, CURLOPT_URL, *url_out);
        curl_easy_setopt(c, CURLOPT_CONNECT_TO, *conn);
    } else {
        curl_free(*url_out);
        *url_out = NULL;
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
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
    if (!apply_tls(c, req->tls, false, req->url, &tls_url, &conn)) {
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
    if (!apply_tls(c, m->tls, m->tls_insecure, url, &tls_url, &conn)) {
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

int transport_tls_parse(const struct config_node *parent, const char *where,
                        struct transport_tls_conf *c, struct vg_err *err)
{
    const struct config_node *t = config_node_get(parent, "tls_config");
    if (!t)
        return 0;
    static const char *const keys[] = { "ca_file", "cert_file", "key_file", "server_name",
                                        "insecure_skip_verify", NULL };
    char sub[160];
    snprintf(sub, sizeof sub, "%s.tls_config", where);
    int rc;
    if ((rc = config_node_check_keys(t, sub, keys, err)) < 0 ||
        (rc = config_node_strdup(t, sub, "server_name", &c->server_name, err)) < 0 ||
        (rc = config_node_bool(t, sub, "insecure_skip_verify", &c->tls.insecure, err)) < 0 ||
        (rc = config_node_file(t, sub, "ca_file", &c->ca_file, err)) < 0 ||
        (rc = config_node_file(t, sub, "cert_file", &c->cert_file, err)) < 0 ||
        (rc = config_node_file(t, sub, "key_file", &c->key_file, err)) < 0)
        return rc;
    if (!c->cert_file != !c->key_file)
        return config_node_err(err, t, "%s: cert_file and key_file go together", sub);
    c->tls.ca_file = c->ca_file;
    c->tls.cert_file = c->cert_file;
    c->tls.key_file = c->key_file;
    c->tls.server_name = c->server_name;
    return 0;
}

void transport_tls_conf_free(struct transport_tls_conf *c)
{
    vg_free(c->ca_file);
    vg_free(c->cert_file);
    vg_free(c->key_file);
    vg_free(c->server_name);
    memset(c, 0, sizeof *c);
}
