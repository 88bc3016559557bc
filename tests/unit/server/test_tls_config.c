/* Tests server/tls_config.c: a tls_config section read as Prometheus does (relative
 * files under the config's directory, each readable at load, cert and key together,
 * min_version by name) with "file:line: where.tls_config.key: ..." errors, and its
 * server_name applied as a request to that name connected to the URL's own host. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "../../../server/config.h"
#include "../../../server/config_node.h"
#include "../../../server/tls_config.h"

/* Parses "job:\n  tls_config: <yaml>" from the block scrape_configs' first item. */
static int parse(const char *tls_yaml, const char *base, struct tls_config *t, struct vg_err *err)
{
    char doc[512];
    snprintf(doc, sizeof doc, "scrape_configs:\n  - job_name: j\n    tls_config: %s\n", tls_yaml);
    struct vg_err lerr = { 0 };
    struct config *c = config_load_buf("t.yml", doc, strlen(doc), &lerr);
    cr_assert_not_null(c, "%s", lerr.msg);
    const struct config_node *job = config_block(c, "scrape_configs")->items[0];
    memset(t, 0, sizeof *t);
    int rc = tls_config_parse(job, "scrape_configs[0]", base, t, err);
    config_free(c);
    return rc;
}

Test(tls_config, keys_paths_and_versions)
{
    struct tls_config t;
    struct vg_err err = { 0 };
    cr_assert_eq(parse("{ca_file: null, cert_file: /dev/null, key_file: zero, server_name: "
                       "example.test, insecure_skip_verify: true, min_version: TLS12}",
                       "/dev", &t, &err), 0, "%s", err.msg);
    cr_assert_str_eq(t.ca_file, "/dev/null", "relative: under the config's directory");
    cr_assert_str_eq(t.cert_file, "/dev/null");
    cr_assert_str_eq(t.key_file, "/dev/zero");
    cr_assert_str_eq(t.server_name, "example.test");
    cr_assert(t.insecure);
    cr_assert_eq(t.min_version, CURL_SSLVERSION_TLSv1_2);
    tls_config_free(&t);
    cr_assert_null(t.ca_file);
}

Test(tls_config, bad_sections_name_the_key_and_line)
{
    struct tls_config t;
    struct vg_err err = { 0 };
    cr_assert_lt(parse("{ca_file: /nonexistent/ca.pem}", NULL, &t, &err), 0);
    cr_assert(strstr(err.msg, "t.yml:3: scrape_configs[0].tls_config.ca_file: cannot read "
                              "\"/nonexistent/ca.pem\""), "%s", err.msg);
    tls_config_free(&t);
    cr_assert_lt(parse("{cert_file: /dev/null}", NULL, &t, &err), 0);
    cr_assert(strstr(err.msg, "tls_config: cert_file and key_file go together"), "%s", err.msg);
    tls_config_free(&t);
    cr_assert_lt(parse("{min_version: TLS9}", NULL, &t, &err), 0);
    cr_assert(strstr(err.msg, "min_version: \"TLS9\" is not TLS10, TLS11, TLS12 or TLS13"),
              "%s", err.msg);
    tls_config_free(&t);
    cr_assert_lt(parse("{ciphers: [a]}", NULL, &t, &err), 0);
    cr_assert(strstr(err.msg, "unknown key \"ciphers\""), "%s", err.msg);
    tls_config_free(&t);
}

Test(tls_config, server_name_keeps_the_connection_on_the_urls_host)
{
    struct tls_config t = { .server_name = "vigil-test" };
    CURL *c = curl_easy_init();
    char *url = NULL;
    struct curl_slist *conn = NULL;
    cr_assert(tls_config_apply(c, &t, false, "https://127.0.0.1:8443/api/v2/alerts?x=1", &url,
                               &conn));
    cr_assert_str_eq(url, "https://vigil-test:8443/api/v2/alerts?x=1");
    cr_assert_str_eq(conn->data, "vigil-test:8443:127.0.0.1:8443");
    curl_free(url);
    curl_slist_free_all(conn);
    cr_assert(tls_config_apply(c, &t, false, "https://[::1]/x", &url, &conn));
    cr_assert_str_eq(conn->data, "vigil-test:443:[::1]:443", "default port filled in");
    curl_free(url);
    curl_slist_free_all(conn);
    cr_assert_not(tls_config_apply(c, &t, false, "not a url", &url, &conn));
    cr_assert_null(url);
    cr_assert_null(conn);
    t.server_name = NULL;
    cr_assert(tls_config_apply(c, &t, true, "https://h/", &url, &conn));
    cr_assert_null(url, "no server_name: nothing rewritten");
    curl_easy_cleanup(c);
}
