/* status_config: GET /api/v1/status/config, the running configuration as YAML with
 * every secret masked, in Prometheus's shape:
 *
 *   {"status":"success","data":{"yaml":"<the config as YAML>"}}
 *
 * The YAML holds the whole effective config: the key sections (server, storage, ...) with
 * their effective values (embedded defaults, then the file, then command-line flags, as
 * config_dump writes them) followed by every structured section the file holds
 * (global, rule_files, alerting, notifications, scrape_configs, ...), written from the
 * parsed tree so it parses back to the same structure. Secrets read "<secret>" as in
 * Prometheus's /api/v1/status/config; file paths (password_file, ...) are shown, and the
 * files are never read.
 *
 * All functions are pure over their arguments and thread-safe. */
#ifndef STATUS_CONFIG_H
#define STATUS_CONFIG_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../config.h"
#include "../config_node.h"
#include "../vigil.h"

#include <stdbool.h>

/* What replaces a secret value. */
#define STATUS_CONFIG_SECRET "<secret>"

/* True when the value of a key with this name is a secret: the name (case-insensitive,
 * '-' read as '_') contains password, passwd, secret, token, api_key, apikey, credential,
 * passphrase or community, or is api_url or webhook_url (Slack, Teams, Discord: the
 * secret is the URL itself), authorization or cookie (header values). Names ending in
 * _file or _files are paths, and other names ending in _url (token_url) are addresses:
 * neither is a secret by name. */
bool status_config_secret_key(const char *key);

/* When value is a URL ("scheme://...") whose userinfo or query carries a secret, appends
 * the masked URL to out and returns true: "https://user:pass@h/p" -> "https://user:
 * <secret>@h/p", a userinfo without a password (a token) -> "https://<secret>@h/p", and
 * the value of each query parameter whose name status_config_secret_key accepts ->
 * "?token=<secret>". Otherwise appends nothing and returns false. */
bool status_config_mask_url(const char *value, struct vg_buf *out);

/* Appends the YAML of one tree (a mapping, list or scalar) with secrets masked: a scalar
 * under a secret key reads STATUS_CONFIG_SECRET unless empty, and every scalar below a
 * secret key holding a list or mapping is masked too (except an authorization mapping,
 * whose type stays visible and whose credentials are masked by name). 0, or VG_ENOMEM /
 * VG_EINTERNAL (the YAML writer's reason, e.g. invalid UTF-8) with err. */
int status_config_node_yaml(const struct config_node *n, struct vg_buf *out,
                            struct vg_err *err);

/* Appends the whole effective config of c as YAML with secrets masked (see above),
 * starting with a "# source: <file>" comment. 0, or VG_ENOMEM / VG_EINTERNAL with err;
 * out may hold part of the YAML on failure. */
int status_config_yaml(const struct config *c, struct vg_buf *out, struct vg_err *err);

extern const struct vigil_module mod_status_config_api;

#endif
