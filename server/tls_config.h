/* tls_config: the `tls_config` section of Prometheus's and Alertmanager's HTTP client
 * settings (scrape jobs, alerting.alertmanagers[], e-mail receivers), read once and
 * applied to a libcurl handle once, for every client Vigil runs.
 *
 *   tls_config: {ca_file, cert_file, key_file, server_name, insecure_skip_verify,
 *                min_version: TLS10 | TLS11 | TLS12 | TLS13}
 *
 * File names relative to base_dir (the config file's directory, as Prometheus resolves
 * them) are joined to it; each must be readable when the config is read (its content is
 * read at each use, so a rotated certificate is picked up). server_name: the name the
 * server's certificate must carry and the SNI sent, while the connection still goes to
 * the URL's own host and port. */
#ifndef VIGIL_TLS_CONFIG_H
#define VIGIL_TLS_CONFIG_H

#include "../storage/base/vg_err.h"

#include <stdbool.h>

struct config_node;
struct curl_slist;

struct tls_config {
    char *ca_file, *cert_file, *key_file, *server_name; /* vg_malloc'd; NULL = unset */
    long min_version;                                   /* CURL_SSLVERSION_*; 0 = default */
    bool insecure;                                      /* skip certificate and name checks */
};

/* Reads parent's "tls_config" into *t (absent: *t stays as it is, 0). 0 or a config
 * error naming where.tls_config and the key. Free with tls_config_free (also after a
 * failure). */
int tls_config_parse(const struct config_node *parent, const char *where, const char *base_dir,
                     struct tls_config *t, struct vg_err *err);
void tls_config_free(struct tls_config *t);

/* Sets t's options (t may be NULL; insecure adds to t->insecure) on the libcurl easy
 * handle curl (a CURL *; void here so this header does not pull in curl.h), whose URL is url.
 * With a server_name the request names that host while CURLOPT_CONNECT_TO sends the
 * connection to the URL's host and port: *url_out (free with curl_free) and *conn (free
 * with curl_slist_free_all) must outlive the transfers; both stay NULL otherwise.
 * false when out of memory or the URL does not parse. */
bool tls_config_apply(void *curl, const struct tls_config *t, bool insecure, const char *url,
                      char **url_out, struct curl_slist **conn);

#endif
