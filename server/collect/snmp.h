/* snmp: the SNMP collector (module mod_snmp). Polls SNMP v2c and v3 devices with
 * net-snmp (<net-snmp/...> is included only by snmp.c), walks or gets the configured
 * OIDs and stores them as gauges and counters, like Prometheus's snmp_exporter.
 *
 * Config (config block `snmp`):
 *
 *   snmp:
 *     devices:
 *       - name: core1                  # required, unique; label device="core1"
 *         address: 192.0.2.1:161       # host:port ([v6]:port); port 161 when absent
 *         version: 2c                  # 2c (default) or 3
 *         community: public            # v2c; default "public"
 *         v3:                          # version 3 only
 *           username: monitor          # required
 *           security_level: authPriv   # noAuthNoPriv, authNoPriv, authPriv (default)
 *           auth_protocol: SHA         # MD5, SHA (default), SHA-224, SHA-256, SHA-384,
 *                                      #   SHA-512
 *           auth_password: "..."       # at least 8 characters (RFC 3414 key derivation)
 *           priv_protocol: AES         # DES, AES (default; AES-128)
 *           priv_password: "..."       # at least 8 characters
 *           context_name: ""           # SNMPv3 context; default none
 *         interval: 30s                # between polls (default 30s, at least 100ms)
 *         timeout: 5s                  # per request (default 5s)
 *         retries: 1                   # per request (0-10, default 1)
 *         max_repetitions: 25          # GETBULK size in a walk (1-1000, default 25)
 *         walk_limit: 10000            # OIDs one walk reads at most (default 10000);
 *                                      #   a walk cut there is counted, what it read kept
 *         metrics:
 *           - name: ifHCInOctets       # metric name; valid Prometheus name; required
 *             oid: 1.3.6.1.2.1.31.1.1.1.6   # numeric OID (no MIB names); required
 *             type: counter            # gauge (default) or counter
 *             walk: true               # walk the subtree (default false: GET the OID)
 *             index_label: ifIndex     # walks: label holding the OID suffix after
 *                                      #   `oid` ("3", or "1.2.3" for longer indexes);
 *                                      #   default "index"
 *             labels_from:             # walks: labels from other columns of the table,
 *               - {oid: 1.3.6.1.2.1.2.2.1.2, label: ifDescr}  # walked, matched by index
 *
 * Samples: one per OID read, named by the metric, with labels device and (walks) the
 * index label and labels_from labels; all samples of one poll carry the poll's start
 * time. Values: Integer32, Counter32, Gauge32, TimeTicks (hundredths of a second, as
 * sent), Counter64 and Unsigned32 as numbers; an OCTET STRING whose whole text is a
 * number (what `extend` scripts print) as that number; any other value type is skipped
 * and counted (reason "non_numeric"). Label values: text for printable UTF-8 strings,
 * "0x" + hex for other bytes, dotted text for OIDs and IP addresses, decimal for numbers.
 *
 * Per device and poll, also stored: snmp_up{device} (1 when every request was
 * answered, 0 otherwise), snmp_scrape_duration_seconds{device}, snmp_scrape_samples{device}.
 * At most 100000 samples per poll. /metrics:
 *   vigil_snmp_polls_total{device}
 *   vigil_snmp_errors_total{device,reason}   timeout, error (an SNMP or transport error),
 *       non_numeric, walk_limit, too_many_samples, store
 *
 * Threads: one poller per device ("snmp:<name>"), each with its own net-snmp session
 * (the single-session API), so a device that does not answer delays only itself. The
 * library is initialised once per process; sessions are opened under one process-wide
 * lock (opening a v3 session discovers the engine ID and edits net-snmp's global user
 * and engine lists). Stop waits for a request under way: at most timeout * (retries+1).
 * No persistent net-snmp files are read or written and no MIBs are needed.
 * net-snmp keeps one set of v3 keys per (engine ID, user name) in a process: two devices
 * that reach the same agent (one engine ID) under one user name must use the same
 * passwords, or one of them fails authentication. */
#ifndef COLLECT_SNMP_H
#define COLLECT_SNMP_H

#include "../config_node.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const struct vigil_module mod_snmp;

#define SNMP_OID_MAX 128 /* sub-identifiers in one OID (RFC 2578: at most 128) */

struct snmp_oid {
    uint32_t arcs[SNMP_OID_MAX];
    size_t n;
};

enum snmp_version { SNMP_V2C, SNMP_V3 }; /* not SNMP_VERSION_*: net-snmp macros */
enum snmp_seclevel { SNMP_SEC_NOAUTH, SNMP_SEC_AUTHNOPRIV, SNMP_SEC_AUTHPRIV };

struct snmp_label_from {
    struct snmp_oid oid;
    char *label;
};

struct snmp_metric {
    char *name;
    struct snmp_oid oid;
    bool counter;                   /* else gauge */
    bool walk;
    char *index_label;
    struct snmp_label_from *labels_from;
    size_t nlabels_from;
};

struct snmp_device {
    char *name;
    char *address;                  /* as configured */
    enum snmp_version version;
    char *community;
    /* v3 */
    char *username;
    enum snmp_seclevel level;
    char *auth_protocol;            /* canonical: "MD5", "SHA", "SHA-224", ... */
    char *auth_password;
    char *priv_protocol;            /* "DES" or "AES" */
    char *priv_password;
    char *context_name;
    int64_t interval_ms, timeout_ms;
    int64_t retries, repetitions, walk_limit; /* repetitions: max_repetitions */
    struct snmp_metric *metrics;
    size_t nmetrics;
};

struct snmp_config {
    struct snmp_device *devices;
    size_t ndevices;
};

/* Parses the `snmp` block (NULL block: no devices). *out freed with snmp_config_free.
 * VG_EINVAL with "source:line: snmp.devices[i].key: what is wrong", VG_ENOMEM. */
int snmp_config_parse(const struct config_node *block, struct snmp_config **out,
                      struct vg_err *err);
void snmp_config_free(struct snmp_config *c); /* accepts NULL */

/* Numeric OID "1.3.6.1.2.1.1.3.0" (a leading dot allowed), at least two arcs, each
 * 0..4294967295. 0 or VG_EINVAL naming the offending part. */
int snmp_oid_parse(const char *s, struct snmp_oid *out, struct vg_err *err);
/* Dotted text of arcs [from, o->n) into out (cap bytes, NUL-terminated, cut when it does
 * not fit). Returns the length written. */
size_t snmp_oid_format(const struct snmp_oid *o, size_t from, char *out, size_t cap);

/* A value as received, independent of net-snmp's types. */
enum snmp_vtype {
    SNMP_T_INTEGER, SNMP_T_COUNTER32, SNMP_T_GAUGE32, SNMP_T_TIMETICKS, SNMP_T_COUNTER64,
    SNMP_T_OCTETS, SNMP_T_OID, SNMP_T_IPADDR, SNMP_T_OPAQUE, SNMP_T_NULL,
    SNMP_T_NOSUCH,        /* noSuchObject, noSuchInstance, endOfMibView */
};
struct snmp_value {
    enum snmp_vtype type;
    int64_t i;                      /* INTEGER */
    uint64_t u;                     /* Counter32, Gauge32, TimeTicks, Counter64 */
    const unsigned char *bytes;     /* OCTETS, IPADDR, OPAQUE */
    size_t len;
    const struct snmp_oid *oid;     /* OID */
};

/* The value as a sample. 0, or VG_EINVAL when it is not numeric (see above). */
int snmp_value_number(const struct snmp_value *v, double *out);
/* The value as label text into out (cap bytes, NUL-terminated, cut to fit). Returns the
 * length written. */
size_t snmp_value_label(const struct snmp_value *v, char *out, size_t cap);

/* Runs one poll of every device and returns when all are done (tests). */
void snmp_sync(struct vigil *v);

/* Calls fn for every configured device as /api/v1/targets lists it: pool "snmp", URL
 * "snmp://<address>", label device, health of the last poll (poller.h). Any thread. */
struct scrape_target_status;
void snmp_each_target(struct vigil *v,
                      void (*fn)(void *ctx, const struct scrape_target_status *st), void *ctx);

#endif
