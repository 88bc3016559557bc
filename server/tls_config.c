/* tls_config: see tls_config.h. */
#include "tls_config.h"

#include "../storage/base/vg_alloc.h"
#include "config_node.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The file named by t[key], joined to base_dir when relative, into *out; it must be
 * readable now. */
static int read_path(const struct config_node *t, const char *where, const char *key,
                     const char *base_dir, char **out, struct vg_err *err)
{
    const char *v = NULL;
    int rc = config_node_str(t, where, key, &v, err);
    if (rc < 0 || !v)
        return rc;
    vg_free(*out);
    if (v[0] == '/' || !base_dir || !*base_dir) {
        *out = vg_strdup(v);
    } else {
        size_t n = strlen(base_dir) + strlen(v) + 2;
        if ((*out = vg_malloc(n)))
            snprintf(*out, n, "%s/%s", base_dir, v);
    }
    if (!*out)
        return vg_err_set(err, VG_ENOMEM, "%s.%s: out of memory", where, key);
    FILE *f = fopen(*out, "r");
    if (!f)
        return config_node_err(err, config_node_get(t, key), "%s.%s: cannot read \"%s\": %s",
                               where, key, *out, strerror(errno));
    (void)fclose(f); /* opened for reading only */
    return 0;
}

int tls_config_parse(const struct config_node *parent, const char *where, const char *base_dir,
                     struct tls_config *t, struct vg_err *err)
{
    const struct config_node *n = config_node_get(parent, "tls_config");
    if (!n)
        return 0;
    static const char *const keys[] = { "ca_file", "cert_file", "key_file", "server_name",
                                        "insecure_skip_verify", "min_version", NULL };
    static const char *const versions[] = { "TLS10", "TLS11", "TLS12", "TLS13" };
    static const long curl_versions[] = { CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_TLSv1_1,
                                          CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_TLSv1_3 };
    char w[192];
    snprintf(w, sizeof w, "%s.tls_config", where);
    const char *mv = NULL;
    int rc;
    if ((rc = config_node_check_keys(n, w, keys, err)) < 0 ||
        (rc = config_node_strdup(n, w, "server_name", &t->server_name, err)) < 0 ||
        (rc = config_node_bool(n, w, "insecure_skip_verify", &t->insecure, err)) < 0 ||
        (rc = config_node_str(n, w, "min_version", &mv, err)) < 0 ||
        (rc = read_path(n, w, "ca_file", base_dir, &t->ca_file, err)) < 0 ||
        (rc = read_path(n, w, "cert_file", base_dir, &t->cert_file, err)) < 0 ||
        (rc = read_path(n, w, "key_file", base_dir, &t->key_file, err)) < 0)
        return rc;
    if (!t->cert_file != !t->key_file)
        return config_node_err(err, n, "%s: cert_file and key_file go together", w);
    for (size_t i = 0; mv && i < sizeof versions / sizeof versions[0]; i++)
        if (!strcmp(mv, versions[i]))
            t->min_version = curl_versions[i];
    if (mv && !t->min_version)
        return config_node_err(err, config_node_get(n, "min_version"),
                               "%s.min_version: \"%s\" is not TLS10, TLS11, TLS12 or TLS13", w,
                               mv);
    return 0;
}

void tls_config_free(struct tls_config *t)
{
    vg_free(t->ca_file);
    vg_free(t->cert_file);
    vg_free(t->key_file);
    vg_free(t->server_name);
    memset(t, 0, sizeof *t);
}

bool tls_config_apply(void *curl, const struct tls_config *t, bool insecure, const char *url,
                      char **url_out, struct curl_slist **conn)
{
    CURL *c = curl;
    *url_out = NULL;
    *conn = NULL;
    if (insecure || (t && t->insecure)) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!t)
        return true;
    if (t->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
    if (t->cert_file)
        curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert_file);
    if (t->key_file)
        curl_easy_setopt(c, CURLOPT_SSLKEY, t->key_file);
    if (t->min_version)
        curl_easy_setopt(c, CURLOPT_SSLVERSION, t->min_version);
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
