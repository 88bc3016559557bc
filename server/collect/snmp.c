/* snmp: see snmp.h. The one file that includes net-snmp.
 *
 * A poll of one device: the GET metrics in PDUs of at most GET_BATCH varbinds, then each
 * walk metric as a series of GETBULK requests (max_repetitions each) that ends at the
 * first OID outside the subtree, at endOfMibView, or at walk_limit. A walk whose agent
 * returns an OID not after the one asked for is cut (a broken agent must not loop us).
 * labels_from columns are walked once per poll however many metrics use them, and their
 * values found by index with a binary search. */
#include "snmp.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../ingest/ingest.h"
#include "../metrics.h"
#include "poller.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECEIVER "snmp"
#define GET_BATCH 32              /* varbinds in one GET PDU */
#define MAX_SAMPLES 100000        /* per device and poll */
#define MAX_LABEL_VALUE 256       /* label text taken from a value, bytes */
#define MAX_LABELS_FROM 16        /* labels_from entries per metric */

/* ---- configuration ---- */

static const char *const top_keys[] = { "devices", NULL };
static const char *const dev_keys[] = {
    "name", "address", "version", "community", "v3", "interval", "timeout", "retries",
    "max_repetitions", "walk_limit", "metrics", NULL,
};
static const char *const v3_keys[] = {
    "username", "security_level", "auth_protocol", "auth_password", "priv_protocol",
    "priv_password", "context_name", NULL,
};
static const char *const metric_keys[] = {
    "name", "oid", "type", "walk", "index_label", "labels_from", NULL,
};
static const char *const lf_keys[] = { "oid", "label", NULL };

static const char *const auth_names[] = { "MD5", "SHA", "SHA-224", "SHA-256", "SHA-384",
                                          "SHA-512", NULL };
static const char *const priv_names[] = { "DES", "AES", NULL };
static const char *const level_names[] = { "noAuthNoPriv", "authNoPriv", "authPriv", NULL };

/* Index of s in names (case-insensitive), or -1. */
static int name_index(const char *const *names, const char *s)
{
    for (int i = 0; names[i]; i++)
        if (!strcasecmp(names[i], s))
            return i;
    return -1;
}

/* map[key] as a vg_strdup'd string, def when absent. */
static int dup_str(const struct config_node *map, const char *where, const char *key,
                   const char *def, char **out, struct vg_err *err)
{
    const char *s = def;
    int rc = config_node_str(map, where, key, &s, err);
    if (rc < 0)
        return rc;
    *out = vg_strdup(s ? s : "");
    return *out ? 0 : vg_err_set(err, VG_ENOMEM, "%s.%s: out of memory", where, key);
}

static int parse_oid_key(const struct config_node *map, const char *where, const char *key,
                         struct snmp_oid *out, struct vg_err *err)
{
    const char *s = NULL;
    int rc = config_node_str(map, where, key, &s, err);
    if (rc < 0)
        return rc;
    if (!s)
        return config_node_err(err, map, "%s: %s is required", where, key);
    struct vg_err e;
    if (snmp_oid_parse(s, out, &e) < 0)
        return config_node_err(err, config_node_get(map, key), "%s.%s: %s", where, key, e.msg);
    return 0;
}

static int need_label_name(const struct config_node *map, const char *where, const char *key,
                           const char *v, struct vg_err *err)
{
    if (!ingest_valid_label_name(vg_str_c(v)) || !strncmp(v, "__", 2))
        return config_node_err(err, config_node_get(map, key),
                               "%s.%s: \"%s\" is not a valid label name", where, key, v);
    return 0;
}

static int parse_metric(const struct config_node *m, const char *where, struct snmp_metric *out,
                        struct vg_err *err)
{
    int rc = config_node_check_keys(m, where, metric_keys, err);
    if (rc < 0)
        return rc;
    if ((rc = dup_str(m, where, "name", NULL, &out->name, err)) < 0)
        return rc;
    if (!out->name[0])
        return config_node_err(err, m, "%s: name is required", where);
    if (!ingest_valid_metric_name(vg_str_c(out->name)))
        return config_node_err(err, config_node_get(m, "name"),
                               "%s.name: \"%s\" is not a valid metric name", where, out->name);
    if ((rc = parse_oid_key(m, where, "oid", &out->oid, err)) < 0)
        return rc;
    const char *type = "gauge";
    if ((rc = config_node_str(m, where, "type", &type, err)) < 0)
        return rc;
    if (strcmp(type, "gauge") != 0 && strcmp(type, "counter") != 0)
        return config_node_err(err, config_node_get(m, "type"),
                               "%s.type: \"%s\" is not gauge or counter", where, type);
    out->counter = !strcmp(type, "counter");
    if ((rc = config_node_bool(m, where, "walk", &out->walk, err)) < 0 ||
        (rc = dup_str(m, where, "index_label", "index", &out->index_label, err)) < 0 ||
        (rc = need_label_name(m, where, "index_label", out->index_label, err)) < 0)
        return rc;
    const struct config_node *lf = config_node_get(m, "labels_from");
    if (!lf)
        return 0;
    if (lf->type != CONFIG_NODE_SEQ)
        return config_node_err(err, lf, "%s.labels_from: expected a list", where);
    if (!out->walk)
        return config_node_err(err, lf, "%s.labels_from: only walks (walk: true) have an index "
                               "to match labels by", where);
    if (lf->n > MAX_LABELS_FROM)
        return config_node_err(err, lf, "%s.labels_from: %zu entries, more than the limit of %d",
                               where, lf->n, MAX_LABELS_FROM);
    out->labels_from = vg_calloc(lf->n ? lf->n : 1, sizeof *out->labels_from);
    if (!out->labels_from)
        return vg_err_set(err, VG_ENOMEM, "%s: out of memory", where);
    for (size_t i = 0; i < lf->n; i++) {
        char w[256];
        snprintf(w, sizeof w, "%s.labels_from[%zu]", where, i);
        struct snmp_label_from *l = &out->labels_from[out->nlabels_from++];
        if ((rc = config_node_check_keys(lf->items[i], w, lf_keys, err)) < 0 ||
            (rc = parse_oid_key(lf->items[i], w, "oid", &l->oid, err)) < 0 ||
            (rc = dup_str(lf->items[i], w, "label", "", &l->label, err)) < 0)
            return rc;
        if (!l->label[0])
            return config_node_err(err, lf->items[i], "%s: label is required", w);
        if ((rc = need_label_name(lf->items[i], w, "label", l->label, err)) < 0)
            return rc;
        if (!strcmp(l->label, "device") || !strcmp(l->label, out->index_label))
            return config_node_err(err, lf->items[i], "%s.label: \"%s\" is already used by "
                                   "the device or index label", w, l->label);
    }
    return 0;
}

/* host:port, [v6]:port, host or [v6]: checks the port. */
static int check_address(const struct config_node *d, const char *where, const char *a,
                         struct vg_err *err)
{
    const char *n = "address";
    const struct config_node *at = config_node_get(d, "address");
    if (!a[0])
        return config_node_err(err, d, "%s: address is required", where);
    const char *colon = NULL;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close || close == a + 1 || (close[1] && close[1] != ':'))
            return config_node_err(err, at, "%s.%s: \"%s\" is not [ipv6]:port", where, n, a);
        colon = close[1] ? close + 1 : NULL;
    } else {
        colon = strrchr(a, ':');
        if (colon && strchr(a, ':') != colon)
            return config_node_err(err, at, "%s.%s: \"%s\": write IPv6 addresses as "
                                   "[addr]:port", where, n, a);
        if (colon == a)
            return config_node_err(err, at, "%s.%s: \"%s\" has no host", where, n, a);
    }
    if (colon) {
        char *end;
        errno = 0;
        long port = strtol(colon + 1, &end, 10);
        if (!colon[1] || *end || errno || port < 1 || port > 65535)
            return config_node_err(err, at, "%s.%s: \"%s\": port must be 1-65535", where, n, a);
    }
    return 0;
}

static int parse_v3(const struct config_node *d, const char *where, struct snmp_device *out,
                    struct vg_err *err)
{
    const struct config_node *v3 = config_node_get(d, "v3");
    char w[128];
    snprintf(w, sizeof w, "%s.v3", where);
    if (!v3)
        return config_node_err(err, d, "%s: version 3 needs a v3 section (username, ...)", where);
    int rc = config_node_check_keys(v3, w, v3_keys, err);
    const char *level = "authPriv";
    if (rc < 0 || (rc = dup_str(v3, w, "username", "", &out->username, err)) < 0 ||
        (rc = config_node_str(v3, w, "security_level", &level, err)) < 0 ||
        (rc = dup_str(v3, w, "auth_password", "", &out->auth_password, err)) < 0 ||
        (rc = dup_str(v3, w, "priv_password", "", &out->priv_password, err)) < 0 ||
        (rc = dup_str(v3, w, "context_name", "", &out->context_name, err)) < 0)
        return rc;
    if (!out->username[0])
        return config_node_err(err, v3, "%s: username is required", w);
    int li = name_index(level_names, level);
    if (li < 0)
        return config_node_err(err, config_node_get(v3, "security_level"),
                               "%s.security_level: \"%s\" is not noAuthNoPriv, authNoPriv or "
                               "authPriv", w, level);
    out->level = (enum snmp_seclevel)li;
    const char *auth = "SHA", *priv = "AES";
    if ((rc = config_node_str(v3, w, "auth_protocol", &auth, err)) < 0 ||
        (rc = config_node_str(v3, w, "priv_protocol", &priv, err)) < 0)
        return rc;
    int ai = name_index(auth_names, auth), pi = name_index(priv_names, priv);
    if (ai < 0)
        return config_node_err(err, config_node_get(v3, "auth_protocol"),
                               "%s.auth_protocol: \"%s\" is not one of MD5, SHA, SHA-224, "
                               "SHA-256, SHA-384, SHA-512", w, auth);
    if (pi < 0)
        return config_node_err(err, config_node_get(v3, "priv_protocol"),
                               "%s.priv_protocol: \"%s\" is not DES or AES", w, priv);
    out->auth_protocol = vg_strdup(auth_names[ai]);
    out->priv_protocol = vg_strdup(priv_names[pi]);
    if (!out->auth_protocol || !out->priv_protocol)
        return vg_err_set(err, VG_ENOMEM, "%s: out of memory", w);
    /* RFC 3414 A.2.1: net-snmp refuses to derive keys from shorter passphrases */
    if (out->level >= SNMP_SEC_AUTHNOPRIV && strlen(out->auth_password) < 8)
        return config_node_err(err, v3, "%s.auth_password: at least 8 characters are needed "
                               "for security_level %s", w, level_names[out->level]);
    if (out->level == SNMP_SEC_AUTHPRIV && strlen(out->priv_password) < 8)
        return config_node_err(err, v3, "%s.priv_password: at least 8 characters are needed "
                               "for security_level authPriv", w);
    return 0;
}

static int parse_device(const struct config_node *d, const char *where, struct snmp_device *out,
                        struct vg_err *err)
{
    int rc = config_node_check_keys(d, where, dev_keys, err);
    if (rc < 0 || (rc = dup_str(d, where, "name", "", &out->name, err)) < 0 ||
        (rc = dup_str(d, where, "address", "", &out->address, err)) < 0 ||
        (rc = dup_str(d, where, "community", "public", &out->community, err)) < 0)
        return rc;
    if (!out->name[0])
        return config_node_err(err, d, "%s: name is required", where);
    if ((rc = check_address(d, where, out->address, err)) < 0)
        return rc;
    const char *ver = "2c";
    if ((rc = config_node_str(d, where, "version", &ver, err)) < 0)
        return rc;
    if (!strcmp(ver, "2c"))
        out->version = SNMP_V2C;
    else if (!strcmp(ver, "3"))
        out->version = SNMP_V3;
    else
        return config_node_err(err, config_node_get(d, "version"),
                               "%s.version: \"%s\" is not 2c or 3 (SNMPv1 is not supported)",
                               where, ver);
    if (out->version == SNMP_V3 && (rc = parse_v3(d, where, out, err)) < 0)
        return rc;
    if (out->version == SNMP_V2C && config_node_get(d, "v3"))
        return config_node_err(err, config_node_get(d, "v3"),
                               "%s.v3: only used with version: 3", where);
    out->interval_ms = 30000;
    out->timeout_ms = 5000;
    out->retries = 1;
    out->repetitions = 25;
    out->walk_limit = 10000;
    if ((rc = config_node_duration(d, where, "interval", 100, &out->interval_ms, err)) < 0 ||
        (rc = config_node_duration(d, where, "timeout", 10, &out->timeout_ms, err)) < 0 ||
        (rc = config_node_int(d, where, "retries", 0, 10, &out->retries, err)) < 0 ||
        (rc = config_node_int(d, where, "max_repetitions", 1, 1000, &out->repetitions,
                              err)) < 0 ||
        (rc = config_node_int(d, where, "walk_limit", 1, 1000000, &out->walk_limit, err)) < 0)
        return rc;
    const struct config_node *ms = config_node_get(d, "metrics");
    if (!ms || ms->type != CONFIG_NODE_SEQ || !ms->n)
        return config_node_err(err, ms ? ms : d, "%s.metrics: expected a non-empty list", where);
    out->metrics = vg_calloc(ms->n, sizeof *out->metrics);
    if (!out->metrics)
        return vg_err_set(err, VG_ENOMEM, "%s: out of memory", where);
    for (size_t i = 0; i < ms->n; i++) {
        char w[128];
        snprintf(w, sizeof w, "%s.metrics[%zu]", where, i);
        if ((rc = parse_metric(ms->items[i], w, &out->metrics[out->nmetrics++], err)) < 0)
            return rc;
    }
    return 0;
}

int snmp_config_parse(const struct config_node *block, struct snmp_config **out,
                      struct vg_err *err)
{
    *out = NULL;
    struct snmp_config *c = vg_calloc(1, sizeof *c);
    if (!c)
        return vg_err_set(err, VG_ENOMEM, "snmp: out of memory");
    int rc = 0;
    const struct config_node *ds = block ? config_node_get(block, "devices") : NULL;
    if (block && (rc = config_node_check_keys(block, "snmp", top_keys, err)) < 0)
        goto fail;
    if (ds && ds->type != CONFIG_NODE_SEQ) {
        rc = config_node_err(err, ds, "snmp.devices: expected a list");
        goto fail;
    }
    if (ds && ds->n) {
        if (!(c->devices = vg_calloc(ds->n, sizeof *c->devices))) {
            rc = vg_err_set(err, VG_ENOMEM, "snmp: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < ds->n; i++) {
            char w[64];
            snprintf(w, sizeof w, "snmp.devices[%zu]", i);
            struct snmp_device *d = &c->devices[c->ndevices++];
            if ((rc = parse_device(ds->items[i], w, d, err)) < 0)
                goto fail;
            for (size_t j = 0; j < i; j++)
                if (!strcmp(c->devices[j].name, d->name)) {
                    rc = config_node_err(err, ds->items[i], "%s.name: \"%s\" is used by "
                                         "snmp.devices[%zu] too", w, d->name, j);
                    goto fail;
                }
        }
    }
    *out = c;
    return 0;
fail:
    snmp_config_free(c);
    return rc;
}

void snmp_config_free(struct snmp_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; c->devices && i < c->ndevices; i++) {
        struct snmp_device *d = &c->devices[i];
        for (size_t j = 0; d->metrics && j < d->nmetrics; j++) {
            struct snmp_metric *m = &d->metrics[j];
            for (size_t k = 0; k < m->nlabels_from; k++)
                vg_free(m->labels_from[k].label);
            vg_free(m->labels_from);
            vg_free(m->name);
            vg_free(m->index_label);
        }
        vg_free(d->metrics);
        char *strs[] = { d->name, d->address, d->community, d->username, d->auth_protocol,
                         d->auth_password, d->priv_protocol, d->priv_password,
                         d->context_name };
        for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
            vg_free(strs[k]);
    }
    vg_free(c->devices);
    vg_free(c);
}

/* ---- OIDs and values ---- */

int snmp_oid_parse(const char *s, struct snmp_oid *out, struct vg_err *err)
{
    out->n = 0;
    const char *p = s;
    if (*p == '.')
        p++;
    for (;;) {
        if (*p < '0' || *p > '9')
            return vg_err_set(err, VG_EINVAL, "\"%s\" is not a numeric OID (digits at offset "
                              "%zu expected; MIB names are not supported)", s, (size_t)(p - s));
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (uint64_t)(*p++ - '0');
            if (v > UINT32_MAX)
                return vg_err_set(err, VG_EINVAL, "\"%s\": sub-identifier %zu is over "
                                  "4294967295", s, out->n + 1);
        }
        if (out->n == SNMP_OID_MAX)
            return vg_err_set(err, VG_EINVAL, "\"%s\" has more than %d sub-identifiers", s,
                              SNMP_OID_MAX);
        out->arcs[out->n++] = (uint32_t)v;
        if (!*p)
            break;
        if (*p != '.')
            return vg_err_set(err, VG_EINVAL, "\"%s\": unexpected '%c' at offset %zu", s, *p,
                              (size_t)(p - s));
        p++;
    }
    if (out->n < 2)
        return vg_err_set(err, VG_EINVAL, "\"%s\": an OID has at least two sub-identifiers", s);
    return 0;
}

size_t snmp_oid_format(const struct snmp_oid *o, size_t from, char *out, size_t cap)
{
    size_t len = 0;
    if (!cap)
        return 0;
    out[0] = '\0';
    for (size_t i = from; i < o->n; i++) {
        int w = snprintf(out + len, cap - len, "%s%u", i > from ? "." : "", (unsigned)o->arcs[i]);
        if (w < 0 || (size_t)w >= cap - len) {
            out[len] = '\0';
            break;
        }
        len += (size_t)w;
    }
    return len;
}

/* A whole string that is a finite decimal number, with optional blanks around it. */
static int parse_number_text(const unsigned char *b, size_t len, double *out)
{
    char buf[64];
    while (len && (b[len - 1] == ' ' || b[len - 1] == '\n' || b[len - 1] == '\r' ||
                   b[len - 1] == '\t' || b[len - 1] == '\0'))
        len--;
    while (len && (*b == ' ' || *b == '\t')) {
        b++;
        len--;
    }
    if (!len || len >= sizeof buf)
        return VG_EINVAL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = b[i];
        if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' ||
              c == 'E'))
            return VG_EINVAL; /* no "inf", "nan", hex: only what a script prints as a number */
    }
    memcpy(buf, b, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end || end == buf || !isfinite(d))
        return VG_EINVAL;
    *out = d;
    return 0;
}

int snmp_value_number(const struct snmp_value *v, double *out)
{
    switch (v->type) {
    case SNMP_T_INTEGER:
        *out = (double)v->i;
        return 0;
    case SNMP_T_COUNTER32:
    case SNMP_T_GAUGE32:
    case SNMP_T_TIMETICKS:
    case SNMP_T_COUNTER64:
        *out = (double)v->u;
        return 0;
    case SNMP_T_OCTETS:
        return parse_number_text(v->bytes, v->len, out);
    default:
        return VG_EINVAL;
    }
}

/* Length of the valid UTF-8 sequence at p (0 when invalid), per RFC 3629. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
             : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!n || n > left || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && c == 0xe0 && p[1] < 0xa0) || (n == 3 && c == 0xed && p[1] > 0x9f) ||
        (n == 4 && c == 0xf0 && p[1] < 0x90) || (n == 4 && c == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

/* Printable text: valid UTF-8 with no control characters (a trailing NUL, which some
 * agents send, is allowed and dropped by the caller). */
static bool printable(const unsigned char *b, size_t len)
{
    for (size_t i = 0; i < len;) {
        if (b[i] < 0x20 || b[i] == 0x7f)
            return false;
        size_t k = utf8_seq(b + i, len - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

size_t snmp_value_label(const struct snmp_value *v, char *out, size_t cap)
{
    if (!cap)
        return 0;
    out[0] = '\0';
    int w = 0;
    switch (v->type) {
    case SNMP_T_INTEGER:
        w = snprintf(out, cap, "%lld", (long long)v->i);
        break;
    case SNMP_T_COUNTER32:
    case SNMP_T_GAUGE32:
    case SNMP_T_TIMETICKS:
    case SNMP_T_COUNTER64:
        w = snprintf(out, cap, "%llu", (unsigned long long)v->u);
        break;
    case SNMP_T_IPADDR:
        if (v->len == 4)
            w = snprintf(out, cap, "%u.%u.%u.%u", v->bytes[0], v->bytes[1], v->bytes[2],
                         v->bytes[3]);
        else
            goto hex;
        break;
    case SNMP_T_OID:
        return v->oid ? snmp_oid_format(v->oid, 0, out, cap) : 0;
    case SNMP_T_OCTETS: {
        size_t len = v->len;
        while (len && v->bytes[len - 1] == '\0')
            len--;
        if (!printable(v->bytes, len))
            goto hex;
        /* cut on a character boundary */
        size_t take = 0;
        while (take < len) {
            size_t k = utf8_seq(v->bytes + take, len - take);
            if (take + k >= cap)
                break;
            take += k;
        }
        memcpy(out, v->bytes, take);
        out[take] = '\0';
        return take;
    }
    case SNMP_T_OPAQUE:
    hex: {
        static const char hexd[] = "0123456789abcdef";
        size_t len = 0;
        if (cap < 3)
            return 0;
        out[len++] = '0';
        out[len++] = 'x';
        for (size_t i = 0; i < v->len && len + 2 < cap; i++) {
            out[len++] = hexd[v->bytes[i] >> 4];
            out[len++] = hexd[v->bytes[i] & 15];
        }
        out[len] = '\0';
        return len;
    }
    default:
        return 0;
    }
    if (w < 0)
        return 0;
    return (size_t)w < cap ? (size_t)w : cap - 1;
}

/* ---- polling ---- */

struct snmp_state;

struct dev_state {
    struct snmp_state *st;
    const struct snmp_device *d;
    void *sess;                       /* net-snmp single session; NULL until opened */
    struct poller *poller;
    struct poller_health health;
    struct vg_complaint complaint;
};

struct snmp_state {
    struct vigil *v;
    struct snmp_config *cfg;
    struct dev_state *devs;
    size_t ndevs;
    struct metric_family *m_polls, *m_errors;
};

/* A labels_from column read during one poll: index suffix -> label text, sorted. */
struct lf_entry {
    const char *suffix;
    const char *value;
};
struct lf_col {
    const struct snmp_oid *oid;
    struct lf_entry *v;
    size_t n, cap;
};

/* One poll of one device. */
struct poll {
    struct dev_state *ds;
    struct poller_samples *s;
    const atomic_bool *stop;
    struct vg_arena *arena;           /* labels_from texts */
    struct lf_col *cols;
    size_t ncols;
    bool ok;                          /* every request answered without error */
    bool dead;                        /* a request timed out or the session failed */
    bool full;                        /* MAX_SAMPLES reached */
    char error[256];                  /* the first failure's reason, for /api/v1/targets */
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
/* Opening a v3 session edits net-snmp's global user and engine lists. */
static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;

static void lib_init(void)
{
    /* Vigil's config is the only config: no snmp.conf, no persistent files under
     * /var/lib/snmp, no messages on stderr (errors come back through the session). */
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
    netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
    netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
    snmp_disable_log();
    init_snmp("vigil");
}

static void count_err(struct poll *p, const char *reason)
{
    metric_add(p->ds->st->m_errors, 1, p->ds->d->name, reason);
}

/* A request or the session failed: the poll is not up; logged with back-off. */
static void fail(struct poll *p, const char *reason, const char *why)
{
    p->ok = false;
    count_err(p, reason);
    if (!p->error[0])
        snprintf(p->error, sizeof p->error, "%s", why);
    char msg[400];
    /* precision-bounded: a long reason is cut, never the message buffer overrun */
    snprintf(msg, sizeof msg, "device %.100s (%.100s): %.180s", p->ds->d->name,
             p->ds->d->address, why);
    vg_complain(&p->ds->complaint, 60000, VG_LOG_WARN, "snmp", "poll failed", msg);
}

struct proto {
    const char *name;
    oid *oid;
    size_t len;
};

static int sess_open(struct dev_state *ds, struct vg_err *err)
{
    const struct snmp_device *d = ds->d;
    const struct proto auths[] = {
        { "MD5", usmHMACMD5AuthProtocol, OID_LENGTH(usmHMACMD5AuthProtocol) },
        { "SHA", usmHMACSHA1AuthProtocol, OID_LENGTH(usmHMACSHA1AuthProtocol) },
        { "SHA-224", usmHMAC128SHA224AuthProtocol, OID_LENGTH(usmHMAC128SHA224AuthProtocol) },
        { "SHA-256", usmHMAC192SHA256AuthProtocol, OID_LENGTH(usmHMAC192SHA256AuthProtocol) },
        { "SHA-384", usmHMAC256SHA384AuthProtocol, OID_LENGTH(usmHMAC256SHA384AuthProtocol) },
        { "SHA-512", usmHMAC384SHA512AuthProtocol, OID_LENGTH(usmHMAC384SHA512AuthProtocol) },
    };
    netsnmp_session s;
    snmp_sess_init(&s);
    char peer[300];
    snprintf(peer, sizeof peer, "%s:%s", d->address[0] == '[' ? "udp6" : "udp", d->address);
    s.peername = peer;
    s.timeout = (long)d->timeout_ms * 1000;
    s.retries = (int)d->retries;
    if (d->version == SNMP_V2C) {
        s.version = SNMP_VERSION_2c;
        s.community = (u_char *)d->community;
        s.community_len = strlen(d->community);
    } else {
        s.version = SNMP_VERSION_3;
        s.securityName = d->username;
        s.securityNameLen = strlen(d->username);
        s.securityLevel = d->level == SNMP_SEC_AUTHPRIV     ? SNMP_SEC_LEVEL_AUTHPRIV
                          : d->level == SNMP_SEC_AUTHNOPRIV ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                            : SNMP_SEC_LEVEL_NOAUTH;
        if (d->context_name[0]) {
            s.contextName = d->context_name;
            s.contextNameLen = strlen(d->context_name);
        }
        if (d->level >= SNMP_SEC_AUTHNOPRIV) {
            for (size_t i = 0; i < sizeof auths / sizeof auths[0]; i++)
                if (!strcmp(auths[i].name, d->auth_protocol)) {
                    s.securityAuthProto = auths[i].oid;
                    s.securityAuthProtoLen = auths[i].len;
                }
            s.securityAuthKeyLen = USM_AUTH_KU_LEN;
            if (generate_Ku(s.securityAuthProto, (u_int)s.securityAuthProtoLen,
                            (const u_char *)d->auth_password, strlen(d->auth_password),
                            s.securityAuthKey, &s.securityAuthKeyLen) != SNMPERR_SUCCESS)
                return vg_err_set(err, VG_EINVAL, "cannot derive the %s key from auth_password",
                                  d->auth_protocol);
        }
        if (d->level == SNMP_SEC_AUTHPRIV) {
            bool des = !strcmp(d->priv_protocol, "DES");
            s.securityPrivProto = des ? usmDESPrivProtocol : usmAESPrivProtocol;
            s.securityPrivProtoLen = des ? OID_LENGTH(usmDESPrivProtocol)
                                         : OID_LENGTH(usmAESPrivProtocol);
            s.securityPrivKeyLen = USM_PRIV_KU_LEN;
            if (generate_Ku(s.securityAuthProto, (u_int)s.securityAuthProtoLen,
                            (const u_char *)d->priv_password, strlen(d->priv_password),
                            s.securityPrivKey, &s.securityPrivKeyLen) != SNMPERR_SUCCESS)
                return vg_err_set(err, VG_EINVAL, "cannot derive the %s key from priv_password",
                                  d->priv_protocol);
        }
    }
    pthread_mutex_lock(&open_mu);
    ds->sess = snmp_sess_open(&s);
    int rc = 0;
    if (!ds->sess) {
        int liberr = 0, syserr = 0;
        char *msg = NULL;
        snmp_error(&s, &liberr, &syserr, &msg); /* malloc'd by net-snmp */
        rc = vg_err_set(err, VG_EIO, "cannot open a session to %s: %s", peer,
                        msg ? msg : "unknown error");
        free(msg);
    }
    pthread_mutex_unlock(&open_mu);
    return rc;
}

static void sess_close(struct dev_state *ds)
{
    if (!ds->sess)
        return;
    pthread_mutex_lock(&open_mu);
    snmp_sess_close(ds->sess);
    pthread_mutex_unlock(&open_mu);
    ds->sess = NULL;
}

/* Sends pdu (consumed) and waits. 0 with *resp (free with snmp_free_pdu), or -1 when
 * the request failed (counted and logged; the device is marked dead on a timeout or a
 * transport error, so the rest of the poll is skipped). */
static int request(struct poll *p, netsnmp_pdu *pdu, netsnmp_pdu **resp)
{
    *resp = NULL;
    int status = snmp_sess_synch_response(p->ds->sess, pdu, resp);
    if (status == STAT_SUCCESS && *resp && (*resp)->errstat == SNMP_ERR_NOERROR)
        return 0;
    char why[300];
    if (status == STAT_TIMEOUT) {
        snprintf(why, sizeof why, "no answer within %lld ms (%lld retries)",
                 (long long)p->ds->d->timeout_ms, (long long)p->ds->d->retries);
        fail(p, "timeout", why);
        p->dead = true;
    } else if (status == STAT_SUCCESS && *resp) {
        snprintf(why, sizeof why, "agent answered %s (error index %ld)",
                 snmp_errstring((int)(*resp)->errstat), (*resp)->errindex);
        fail(p, "error", why);
    } else {
        int liberr = 0, syserr = 0;
        char *msg = NULL;
        snmp_sess_error(p->ds->sess, &liberr, &syserr, &msg);
        snprintf(why, sizeof why, "%s", msg ? msg : "request failed");
        free(msg);
        fail(p, "error", why);
        p->dead = true;
    }
    if (*resp)
        snmp_free_pdu(*resp);
    *resp = NULL;
    return -1;
}

static void to_value(const netsnmp_variable_list *vb, struct snmp_value *out,
                     struct snmp_oid *oidbuf)
{
    memset(out, 0, sizeof *out);
    out->type = SNMP_T_NULL;
    switch (vb->type) {
    case ASN_INTEGER:
        out->type = SNMP_T_INTEGER;
        out->i = *vb->val.integer;
        break;
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
        out->type = vb->type == ASN_COUNTER ? SNMP_T_COUNTER32
                    : vb->type == ASN_GAUGE ? SNMP_T_GAUGE32 : SNMP_T_TIMETICKS;
        out->u = (uint32_t)*vb->val.integer;
        break;
    case ASN_COUNTER64:
        out->type = SNMP_T_COUNTER64;
        out->u = ((uint64_t)(vb->val.counter64->high & 0xffffffffUL) << 32) |
                 (vb->val.counter64->low & 0xffffffffUL);
        break;
    case ASN_OCTET_STR:
    case ASN_IPADDRESS:
    case ASN_OPAQUE:
        out->type = vb->type == ASN_OCTET_STR ? SNMP_T_OCTETS
                    : vb->type == ASN_IPADDRESS ? SNMP_T_IPADDR : SNMP_T_OPAQUE;
        out->bytes = vb->val.string;
        out->len = vb->val_len;
        break;
    case ASN_OBJECT_ID:
        out->type = SNMP_T_OID;
        oidbuf->n = 0;
        for (size_t i = 0; i < vb->val_len / sizeof(oid) && i < SNMP_OID_MAX; i++)
            oidbuf->arcs[oidbuf->n++] = (uint32_t)vb->val.objid[i];
        out->oid = oidbuf;
        break;
    case SNMP_NOSUCHOBJECT:
    case SNMP_NOSUCHINSTANCE:
    case SNMP_ENDOFMIBVIEW:
        out->type = SNMP_T_NOSUCH;
        break;
    default:
        break;
    }
}

static void add_sample(struct poll *p, const char *name, const struct label *ls, size_t n,
                       double v)
{
    if (p->full)
        return;
    int rc = poller_samples_add(p->s, name, ls, n, v);
    if (rc == VG_ETOOLARGE) {
        p->full = true;
        count_err(p, "too_many_samples");
    } else if (rc < 0) {
        fail(p, "error", "out of memory");
    }
}

static void oid_to_net(const struct snmp_oid *o, oid *out)
{
    for (size_t i = 0; i < o->n; i++)
        out[i] = o->arcs[i];
}

/* GETs every non-walk metric, GET_BATCH per request. */
static void poll_gets(struct poll *p)
{
    const struct snmp_device *d = p->ds->d;
    struct label dev = { VG_STR("device"), vg_str_c(d->name) };
    const struct snmp_metric *batch[GET_BATCH];
    size_t i = 0;
    while (i < d->nmetrics && !p->dead && !atomic_load(p->stop)) {
        size_t nb = 0;
        netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
        if (!pdu)
            return fail(p, "error", "out of memory");
        for (; i < d->nmetrics && nb < GET_BATCH; i++) {
            if (d->metrics[i].walk)
                continue;
            oid o[SNMP_OID_MAX];
            oid_to_net(&d->metrics[i].oid, o);
            snmp_add_null_var(pdu, o, d->metrics[i].oid.n);
            batch[nb++] = &d->metrics[i];
        }
        if (!nb) {
            snmp_free_pdu(pdu);
            return;
        }
        netsnmp_pdu *resp;
        if (request(p, pdu, &resp) < 0)
            return;
        size_t k = 0;
        for (netsnmp_variable_list *vb = resp->variables; vb && k < nb;
             vb = vb->next_variable, k++) {
            struct snmp_value val;
            struct snmp_oid ob;
            double x;
            to_value(vb, &val, &ob);
            if (val.type == SNMP_T_NOSUCH) {
                count_err(p, "no_such_object");
                continue;
            }
            if (snmp_value_number(&val, &x) < 0) {
                count_err(p, "non_numeric");
                continue;
            }
            add_sample(p, batch[k]->name, &dev, 1, x);
        }
        snmp_free_pdu(resp);
    }
}

typedef void (*walk_fn)(struct poll *p, void *ud, const char *suffix,
                        const struct snmp_value *v);

static bool in_subtree(const netsnmp_variable_list *vb, const struct snmp_oid *base)
{
    if (vb->name_length <= base->n)
        return false;
    for (size_t i = 0; i < base->n; i++)
        if (vb->name[i] != base->arcs[i])
            return false;
    return true;
}

/* Walks base's subtree with GETBULK, calling fn for each varbind. */
static void walk(struct poll *p, const struct snmp_oid *base, walk_fn fn, void *ud)
{
    const struct snmp_device *d = p->ds->d;
    oid cur[MAX_OID_LEN];
    size_t curlen = base->n;
    oid_to_net(base, cur);
    int64_t count = 0;
    bool more = true;
    while (more && !p->dead && !p->full && !atomic_load(p->stop)) {
        netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GETBULK);
        if (!pdu)
            return fail(p, "error", "out of memory");
        pdu->non_repeaters = 0;
        pdu->max_repetitions = (long)d->repetitions;
        snmp_add_null_var(pdu, cur, curlen);
        netsnmp_pdu *resp;
        if (request(p, pdu, &resp) < 0)
            return;
        more = false;
        for (netsnmp_variable_list *vb = resp->variables; vb; vb = vb->next_variable) {
            more = false;
            if (vb->type == SNMP_ENDOFMIBVIEW || vb->type == SNMP_NOSUCHOBJECT ||
                vb->type == SNMP_NOSUCHINSTANCE || !in_subtree(vb, base))
                break;
            if (snmp_oid_compare(vb->name, vb->name_length, cur, curlen) <= 0) {
                fail(p, "error", "agent returned an OID not after the one asked for");
                break;
            }
            if (count == d->walk_limit) {
                count_err(p, "walk_limit");
                break;
            }
            count++;
            char suffix[SNMP_OID_MAX * 11];
            struct snmp_oid name = { .n = 0 };
            for (size_t i = 0; i < vb->name_length && i < SNMP_OID_MAX; i++)
                name.arcs[name.n++] = (uint32_t)vb->name[i];
            snmp_oid_format(&name, base->n, suffix, sizeof suffix);
            struct snmp_value val;
            struct snmp_oid ob;
            to_value(vb, &val, &ob);
            fn(p, ud, suffix, &val);
            memcpy(cur, vb->name, vb->name_length * sizeof(oid));
            curlen = vb->name_length;
            more = true;
        }
        snmp_free_pdu(resp);
    }
}

static int lf_cmp(const void *a, const void *b)
{
    return strcmp(((const struct lf_entry *)a)->suffix, ((const struct lf_entry *)b)->suffix);
}

static void on_label_value(struct poll *p, void *ud, const char *suffix,
                           const struct snmp_value *v)
{
    struct lf_col *c = ud;
    char text[MAX_LABEL_VALUE];
    snmp_value_label(v, text, sizeof text);
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        struct lf_entry *nv = vg_realloc(c->v, cap * sizeof *nv);
        if (!nv)
            return fail(p, "error", "out of memory");
        c->v = nv;
        c->cap = cap;
    }
    const char *s = vg_arena_strndup(p->arena, suffix, strlen(suffix));
    const char *t = vg_arena_strndup(p->arena, text, strlen(text));
    if (!s || !t)
        return fail(p, "error", "out of memory");
    c->v[c->n++] = (struct lf_entry){ s, t };
}

/* The column's index -> label map, walked on first use in this poll. */
static struct lf_col *label_column(struct poll *p, const struct snmp_oid *col)
{
    for (size_t i = 0; i < p->ncols; i++)
        if (p->cols[i].oid->n == col->n &&
            !memcmp(p->cols[i].oid->arcs, col->arcs, col->n * sizeof col->arcs[0]))
            return &p->cols[i];
    struct lf_col *nc = vg_realloc(p->cols, (p->ncols + 1) * sizeof *nc);
    if (!nc) {
        fail(p, "error", "out of memory");
        return NULL;
    }
    p->cols = nc;
    struct lf_col *c = &p->cols[p->ncols++];
    memset(c, 0, sizeof *c);
    c->oid = col;
    walk(p, col, on_label_value, c);
    if (c->n)
        qsort(c->v, c->n, sizeof *c->v, lf_cmp);
    return c;
}

struct metric_walk {
    const struct snmp_metric *m;
    struct lf_col *cols[MAX_LABELS_FROM];
};

static void on_metric_value(struct poll *p, void *ud, const char *suffix,
                            const struct snmp_value *v)
{
    struct metric_walk *w = ud;
    double x;
    if (snmp_value_number(v, &x) < 0) {
        count_err(p, "non_numeric");
        return;
    }
    struct label ls[2 + MAX_LABELS_FROM];
    size_t n = 0;
    ls[n++] = (struct label){ VG_STR("device"), vg_str_c(p->ds->d->name) };
    ls[n++] = (struct label){ vg_str_c(w->m->index_label), vg_str_c(suffix) };
    for (size_t i = 0; i < w->m->nlabels_from; i++) {
        struct lf_col *c = w->cols[i];
        struct lf_entry key = { suffix, NULL };
        const struct lf_entry *e = c && c->n ? bsearch(&key, c->v, c->n, sizeof *c->v, lf_cmp)
                                             : NULL;
        if (e)
            ls[n++] = (struct label){ vg_str_c(w->m->labels_from[i].label), vg_str_c(e->value) };
    }
    add_sample(p, w->m->name, ls, n, x);
}

static void poll_walk(struct poll *p, const struct snmp_metric *m)
{
    struct metric_walk w = { .m = m };
    for (size_t i = 0; i < m->nlabels_from && !p->dead; i++)
        w.cols[i] = label_column(p, &m->labels_from[i].oid);
    walk(p, &m->oid, on_metric_value, &w);
}


static void poll_device(void *ctx, const atomic_bool *stop)
{
    struct dev_state *ds = ctx;
    const struct snmp_device *d = ds->d;
    struct snmp_state *st = ds->st;
    double t0 = poller_mono_s();
    struct poller_samples s;
    struct poll p = { .ds = ds, .s = &s, .stop = stop, .ok = true };
    metric_add(st->m_polls, 1, d->name);
    if (poller_samples_init(&s, poller_wall_ms(), MAX_SAMPLES) < 0 ||
        !(p.arena = vg_arena_new(1 << 14))) {
        poller_samples_free(&s);
        fail(&p, "store", "out of memory");
        poller_health_set(&ds->health, poller_wall_ms(), poller_mono_s() - t0, false, p.error);
        return;
    }
    struct vg_err err;
    if (!ds->sess && sess_open(ds, &err) < 0) {
        fail(&p, "error", err.msg);
    } else {
        poll_gets(&p);
        for (size_t i = 0; i < d->nmetrics && !p.dead && !atomic_load(stop); i++)
            if (d->metrics[i].walk)
                poll_walk(&p, &d->metrics[i]);
    }
    /* a session whose peer went silent is opened afresh (a v3 engine rediscovered) */
    if (p.dead)
        sess_close(ds);
    for (size_t i = 0; i < p.ncols; i++)
        vg_free(p.cols[i].v);
    vg_free(p.cols);
    vg_arena_free(p.arena);

    poller_samples_health(&s, "snmp", "device", d->name, "SNMP device", p.ok, t0);
    for (size_t i = 0; i < d->nmetrics; i++)
        poller_samples_meta(&s, d->metrics[i].name,
                            d->metrics[i].counter ? TSDB_TYPE_COUNTER : TSDB_TYPE_GAUGE,
                            "SNMP OID polled by Vigil.");
    if (poller_samples_store(st->v, RECEIVER, &s, NULL, &err) < 0)
        fail(&p, "store", err.msg);
    poller_health_set(&ds->health, s.t, poller_mono_s() - t0, p.ok, p.error);
    poller_samples_free(&s);
}

/* ---- the module ---- */

static int snmp_check(const struct config *cfg, struct vg_err *err)
{
    struct snmp_config *c;
    int rc = snmp_config_parse(config_block(cfg, "snmp"), &c, err);
    snmp_config_free(c);
    return rc;
}

static void snmp_free(struct vigil *v)
{
    struct snmp_state *st = v->snmp_state;
    if (!st)
        return;
    for (size_t i = 0; i < st->ndevs; i++)
        poller_stop(st->devs[i].poller);
    for (size_t i = 0; i < st->ndevs; i++) {
        sess_close(&st->devs[i]);
        poller_health_destroy(&st->devs[i].health);
    }
    vg_free(st->devs);
    snmp_config_free(st->cfg);
    vg_free(st);
    v->snmp_state = NULL;
}

static int snmp_init(struct vigil *v, struct vg_err *err)
{
    struct snmp_config *c;
    int rc = snmp_config_parse(config_block(v->cfg, "snmp"), &c, err);
    if (rc < 0)
        return rc;
    if (!c || !c->ndevices) {
        snmp_config_free(c);
        return 0;
    }
    struct snmp_state *st = vg_calloc(1, sizeof *st);
    if (!st || !(st->devs = vg_calloc(c->ndevices, sizeof *st->devs))) {
        vg_free(st);
        snmp_config_free(c);
        return vg_err_set(err, VG_ENOMEM, "snmp: out of memory");
    }
    st->v = v;
    st->cfg = c;
    v->snmp_state = st;
    static const char *const dl[] = { "device" };
    static const char *const dr[] = { "device", "reason" };
    st->m_polls = metrics_family(v->metrics, "vigil_snmp_polls_total",
                                 "SNMP polls started, by device.", METRIC_COUNTER, dl, 1, NULL, 0);
    st->m_errors = metrics_family(v->metrics, "vigil_snmp_errors_total",
                                  "SNMP poll errors, by device and reason.", METRIC_COUNTER, dr,
                                  2, NULL, 0);
    pthread_once(&lib_once, lib_init);
    for (size_t i = 0; i < c->ndevices; i++) {
        struct dev_state *ds = &st->devs[st->ndevs++];
        ds->st = st;
        ds->d = &c->devices[i];
        poller_health_init(&ds->health);
        char name[32];
        snprintf(name, sizeof name, "snmp:%s", ds->d->name);
        ds->poller = poller_start(name, ds->d->interval_ms,
                                  poller_offset(ds->d->name, ds->d->interval_ms), poll_device,
                                  ds, err);
        if (!ds->poller) {
            snmp_free(v);
            return err->code;
        }
    }
    char nd[24];
    snprintf(nd, sizeof nd, "%zu", c->ndevices);
    vg_log(VG_LOG_INFO, "snmp", "polling", "devices", nd, NULL);
    return 0;
}

void snmp_sync(struct vigil *v)
{
    struct snmp_state *st = v->snmp_state;
    for (size_t i = 0; st && i < st->ndevs; i++)
        poller_sync(st->devs[i].poller);
}

void snmp_each_target(struct vigil *v,
                      void (*fn)(void *ctx, const struct scrape_target_status *st), void *ctx)
{
    struct snmp_state *st = v->snmp_state;
    for (size_t i = 0; st && i < st->ndevs; i++) {
        const struct snmp_device *d = st->devs[i].d;
        char url[300];
        snprintf(url, sizeof url, "snmp://%s", d->address);
        struct poller_target t = {
            .pool = "snmp", .address = d->address, .url = url,
            .label = { VG_STR("device"), vg_str_c(d->name) },
            .interval_ms = d->interval_ms, .timeout_ms = d->timeout_ms,
        };
        poller_health_report(&st->devs[i].health, &t, fn, ctx);
    }
}

const struct vigil_module mod_snmp = {
    .name = "snmp",
    .check = snmp_check,
    .init = snmp_init,
    .free = snmp_free,
};
