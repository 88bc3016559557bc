/* route: the built-in notifiers' configuration (the `notifications` section, shaped like
 * Alertmanager's alertmanager.yml) and the dispatcher that routes alerts through the
 * route tree into aggregation groups and decides when a group is notified, with
 * Alertmanager's group_wait / group_interval / repeat_interval semantics, silences and
 * inhibition applied at flush time, and escalation.
 *
 *   notifications:
 *     external_url: http://vigil.example:4318     # externalURL in webhook bodies
 *     route:
 *       receiver: team            # required on the root; children inherit
 *       group_by: [alertname]     # ['...'] groups by all labels; inherited
 *       group_wait: 30s           # defaults 30s / 5m / 4h like Alertmanager; inherited
 *       group_interval: 5m
 *       repeat_interval: 4h
 *       matchers: ['severity="critical"', 'team=~"db|web"']   # also match / match_re maps
 *       continue: false
 *       escalate: {after: 30m, receiver: pager}
 *       routes: [ ...same shape... ]
 *     receivers:
 *       - name: team
 *         webhook_configs: [{url, send_resolved (true), max_alerts (0 = all)}]
 *         slack_configs: [{api_url, channel, username, title, text, send_resolved (false)}]
 *         email_configs: [{to, from, smarthost, hello, auth_username, auth_password,
 *                          require_tls (true), tls_insecure_skip_verify, tls_config (tls_config.h), headers,
 *                          send_resolved (false)}]
 *     inhibit_rules:
 *       - {source_matchers: [...], target_matchers: [...], equal: [alertname]}
 *     delivery:                   # Vigil's: retries and queues of the receivers
 *       timeout: 10s  initial_backoff: 1s  max_backoff: 5m  max_attempts: 10
 *       queue_capacity: 1024  history_size: 1000  tick: 1s
 *
 * Matchers use Alertmanager's syntax: name, one of = != =~ !~, then a value in double
 * quotes (Go escapes \" \\ \n) or bare; regexes are fully anchored.
 *
 * Group keys look like Alertmanager's: the route's path of matcher sets, ':', then the
 * group labels, e.g. {}/{severity="critical"}:{alertname="HighLoad"}. Escalation groups
 * append "/escalate". Fingerprints are Alertmanager's (FNV-1a 64 over the sorted labels,
 * 0xff after each name and value), printed as 16 hex digits.
 *
 * A route_config is immutable after parsing. A route_dispatcher is not thread-safe: its
 * owner (notify.c) serialises calls. */
#ifndef RULES_ROUTE_H
#define RULES_ROUTE_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "alert.h"
#include "transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_node;
struct matcher;

enum route_kind { ROUTE_WEBHOOK, ROUTE_SLACK, ROUTE_EMAIL };

struct route_header {
    char *name;
    char *value;
};

/* One configured integration of a receiver (webhook_configs[i] and so on). */
struct route_integration {
    enum route_kind kind;
    size_t index;             /* position within its *_configs list */
    bool send_resolved;
    char *url;                /* webhook url, slack api_url */
    int64_t max_alerts;       /* webhook: 0 = all */
    char *channel, *username, *title, *text; /* slack; NULL = default */
    char *to, *from, *smarthost, *hello, *auth_username, *auth_password; /* email */
    bool require_tls, tls_insecure;
    struct tls_config tls;    /* email tls_config (its insecure_skip_verify adds to tls_insecure) */
    struct route_header *headers; /* email headers (Subject overrides the default) */
    size_t nheaders;
};

struct route_receiver {
    char *name;
    struct route_integration *ints;
    size_t nints;
};

struct route_node {
    char *id;                 /* {}/{severity="critical"} */
    char *receiver;
    char **group_by;
    size_t ngroup_by;
    bool group_by_all;        /* group_by: ['...'] */
    int64_t group_wait_ms, group_interval_ms, repeat_interval_ms;
    struct matcher **matchers;
    size_t nmatchers;
    bool cont;
    char *esc_receiver;       /* NULL = no escalation */
    int64_t esc_after_ms;
    struct route_node *children;
    size_t nchildren;
};

struct route_inhibit {
    struct matcher **source, **target;
    size_t nsource, ntarget;
    char **equal;
    size_t nequal;
};

struct route_delivery {
    int64_t timeout_ms, initial_backoff_ms, max_backoff_ms, tick_ms;
    int64_t max_attempts, queue_capacity, history_size;
};

struct route_config {
    char *external_url;
    bool has_route;           /* a notifications section with a route was given */
    struct route_node root;
    struct route_receiver *receivers;
    size_t nreceivers;
    struct route_inhibit *inhibits;
    size_t ninhibits;
    struct route_delivery delivery;
};

/* Parses the notifications section (NULL = none: no route, defaults only).
 * default_external_url is used when the section has none. NULL with err
 * "file:line: notifications.route.routes[1].matchers[0]: ..." on a bad config. Free with
 * route_config_free. */
struct route_config *route_config_parse(const struct config_node *sec,
                                        const char *default_external_url, struct vg_err *err);
void route_config_free(struct route_config *c); /* accepts NULL */

const struct route_receiver *route_receiver_find(const struct route_config *c,
                                                 const char *name);

/* Parses one matcher in Alertmanager's syntax. NULL with VG_EINVAL naming what is wrong;
 * the caller frees with matcher_free. */
struct matcher *route_matcher_parse(const char *s, struct vg_err *err);
/* True when every matcher matches the sorted labels (a missing label is ""). */
bool route_matchers_match(struct matcher *const *ms, size_t n, const struct label *ls,
                          size_t nls);

/* The routes an alert with these labels goes to, in tree order (continue honoured);
 * at most max are stored, the count is returned (at least 1 when the config has a
 * route: the root catches what no child matches). */
size_t route_match(const struct route_config *c, const struct label *ls, size_t n,
                   const struct route_node **out, size_t max);

/* Alertmanager's fingerprint of a sorted label set. */
uint64_t route_fingerprint(const struct label *ls, size_t n);

/* Appends an RFC 3339 UTC timestamp with milliseconds: 2024-05-01T10:00:00.000Z. */
void route_rfc3339(struct vg_buf *b, int64_t ms);

/* ---- the dispatcher ---- */

/* One notification the dispatcher decided to send: firing alerts first, then resolved
 * ones (resolved only if they were in the group's last notification as firing). Every
 * pointer is valid only during the emit callback. */
struct route_notification {
    const struct route_node *route;
    const char *receiver;
    const char *group_key;
    const struct label *group_labels;
    size_t ngroup_labels;
    const struct alert *alerts;
    const uint64_t *fingerprints;     /* per alert */
    size_t nalerts;
    size_t nfiring;                   /* alerts[0..nfiring) fire */
    bool escalation;
};

/* Whether an alert is muted (silenced) at now. */
typedef bool (*route_muted_fn)(void *ctx, const struct alert *a, int64_t now_ms);
typedef void (*route_emit_fn)(void *ctx, const struct route_notification *n, int64_t now_ms);

struct route_dispatcher;

/* cfg must outlive the dispatcher. max_alerts bounds the alerts held over all groups
 * (further new alerts are refused and counted). NULL when out of memory. */
struct route_dispatcher *route_dispatcher_new(const struct route_config *cfg,
                                              size_t max_alerts);
void route_dispatcher_free(struct route_dispatcher *d); /* accepts NULL */

/* Routes copies of the alerts into their groups (a newer copy of the same alert replaces
 * the older). A new group flushes first at now + group_wait. Returns how many alert
 * copies were refused for the max_alerts bound (or out of memory). */
size_t route_dispatcher_add(struct route_dispatcher *d, const struct alert *alerts,
                            size_t n, int64_t now_ms);

/* Flushes every group whose time has come and checks escalations, calling emit for each
 * notification to send; muted may be NULL. Resolved alerts leave their group after the
 * flush that considered them; an empty group is removed. */
void route_dispatcher_tick(struct route_dispatcher *d, int64_t now_ms, route_muted_fn muted,
                           void *mctx, route_emit_fn emit, void *ectx);

/* Groups and alerts held (for tests and /metrics). */
size_t route_dispatcher_groups(const struct route_dispatcher *d);
size_t route_dispatcher_alerts(const struct route_dispatcher *d);

/* The notification log: what each group last sent, so a restart neither re-notifies
 * alerts already notified nor forgets to notify their resolution (Alertmanager's nflog).
 * Export appends one JSON object per group, one per line:
 *   {"key":"...","sent":<ms>,"firing":["<fp hex>",...],"esc_sent":<ms>,"esc":[...]}
 * Import reads the same lines back (unknown or malformed lines are skipped and counted
 * in the return value); entries apply to groups created later with the same key. */
void route_dispatcher_export(const struct route_dispatcher *d, struct vg_buf *out);
size_t route_dispatcher_import(struct route_dispatcher *d, const char *buf, size_t len);

#endif
