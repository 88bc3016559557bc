/* jolokia: the JMX collector (module mod_jmx). Polls JVMs through a Jolokia agent (JMX
 * over JSON/HTTP, https://jolokia.org/reference/html/protocol.html) with one bulk read per
 * target and poll, and stores the numeric MBean attributes as gauges.
 *
 * Config (config block `jmx`):
 *
 *   jmx:
 *     targets:
 *       - name: app1                       # required, unique; label target="app1"
 *         url: http://127.0.0.1:8778/jolokia   # required; the agent's base URL
 *         interval: 30s                    # default 30s, at least 100ms
 *         timeout: 10s                     # whole HTTP exchange; default 10s
 *         username: monitor                # HTTP basic auth, optional
 *         password: secret
 *         mbeans:                          # required, non-empty
 *           - mbean: java.lang:type=Memory # an ObjectName or a pattern (name=*, *:type=X)
 *             attributes: [HeapMemoryUsage]    # default: every readable attribute
 *             path: used                   # optional Jolokia inner path ("a/b")
 *
 * Request: one POST of a JSON array with one {"type":"read","mbean":M,"attribute":[A...]
 * [,"path":P]} per configured mbean (attribute left out when none are listed).
 *
 * Response decoding (jolokia_decode): the body is a JSON array of one object per request
 * (an object alone when the agent refused the whole request). An entry whose status is
 * not 200 is counted as an error and skipped. Its "value" is, for a pattern MBean
 * ("*" or "?" in the echoed request.mbean), an object of MBean name -> object of
 * attribute -> value; otherwise an object of attribute -> value (we always send
 * attribute lists, so Jolokia answers in its multi-attribute shape).
 *
 * Names, after jmx_exporter's default format: for MBean domain:k1=v1,k2=v2 and
 * attribute A the metric is  <domain>_<value of key "type">_<A>  (without the type part
 * when the MBean has no "type" key), followed by _<key> for each level of a composite
 * value (HeapMemoryUsage.used) and each segment of the request's path; every other key
 * property becomes a label (key name sanitised, value unquoted). Sanitising replaces every
 * byte outside [a-zA-Z0-9_:] (labels: [a-zA-Z0-9_]) by '_', collapses runs of '_' and
 * prefixes '_' to a leading digit. E.g.
 *   java.lang:type=Memory HeapMemoryUsage.used  -> java_lang_Memory_HeapMemoryUsage_used
 *   java.lang:name=G1 Young Generation,type=GarbageCollector CollectionCount
 *       -> java_lang_GarbageCollector_CollectionCount{name="G1 Young Generation"}
 * Values: JSON numbers as they are, true/false as 1/0; composite values (objects) are
 * walked down to 4 levels; strings, nulls and arrays are skipped (counted in
 * jolokia_stats.skipped). Every series also carries target="<name>".
 *
 * Per target and poll, also stored: jmx_up{target} (1 when the agent answered with a
 * decodable body, else 0), jmx_scrape_duration_seconds{target}, jmx_scrape_samples{target}.
 * Bounds: response bodies up to 32 MiB, 100000 samples per poll. /metrics:
 *   vigil_jmx_polls_total{target}
 *   vigil_jmx_errors_total{target,reason}   http (transport, status, timeout), decode,
 *       mbean (an entry with an error status), too_many_samples, store
 *
 * Threads: one poller per target ("jmx:<name>"); HTTP goes through rules/transport.h
 * (libcurl), so a hanging agent holds only its own thread, for at most its timeout. */
#ifndef COLLECT_JOLOKIA_H
#define COLLECT_JOLOKIA_H

#include "../../storage/tsdb/labels.h"
#include "../config_node.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const struct vigil_module mod_jmx;

struct jolokia_mbean {
    char *mbean;
    char **attributes;
    size_t nattributes;
    char *path;                     /* NULL when none */
};

struct jolokia_target {
    char *name;
    char *url;
    char *username, *password;      /* NULL when none */
    int64_t interval_ms, timeout_ms;
    struct jolokia_mbean *mbeans;
    size_t nmbeans;
    char *request;                  /* the bulk read's JSON body */
};

struct jolokia_config {
    struct jolokia_target *targets;
    size_t ntargets;
};

/* Parses the `jmx` block (NULL block: no targets) and builds each target's request.
 * *out freed with jolokia_config_free. VG_EINVAL with "source:line: jmx.targets[i].key:
 * what is wrong", VG_ENOMEM. */
int jolokia_config_parse(const struct config_node *block, struct jolokia_config **out,
                         struct vg_err *err);
void jolokia_config_free(struct jolokia_config *c); /* accepts NULL */

/* Called per decoded sample; name and labels (the MBean's, sanitised, unsorted) are valid
 * during the call only. Non-zero stops the decoding (jolokia_decode then returns 0). */
typedef int (*jolokia_sample_fn)(void *ud, const char *name, const struct label *ls,
                                 size_t nl, double v);

struct jolokia_stats {
    size_t entries;                 /* response entries seen */
    size_t errors;                  /* entries with a status other than 200 */
    size_t samples;                 /* handed to the callback */
    size_t skipped;                 /* non-numeric values, names too long */
    char first_error[256];          /* "mbean: error text" of the first error entry */
};

/* Decodes a bulk read response (see above). 0 with *st filled, or VG_EINVAL when the body
 * is not JSON or not Jolokia's shape, VG_ENOMEM. Pure: no I/O, thread-safe. */
int jolokia_decode(const char *body, size_t len, jolokia_sample_fn fn, void *ud,
                   struct jolokia_stats *st, struct vg_err *err);

/* Sanitises s into out (cap bytes, NUL-terminated) as described above; label selects the
 * label-name alphabet (no ':'). Returns the length, or 0 when it does not fit. */
size_t jolokia_sanitize(const char *s, size_t len, bool label, char *out, size_t cap);

/* Runs one poll of every target and returns when all are done (tests). */
void jolokia_sync(struct vigil *v);

/* Calls fn for every configured target as /api/v1/targets lists it: pool "jmx", the
 * agent's URL, label target, health of the last poll (poller.h). Any thread. */
struct scrape_target_status;
void jolokia_each_target(struct vigil *v,
                         void (*fn)(void *ctx, const struct scrape_target_status *st),
                         void *ctx);

#endif
