/* otlp_logs: see otlp_logs.h.
 *
 * Wire formats sent:
 *   ExportLogsServiceResponse: empty (0 bytes / "{}") when every record was stored, else
 *     partial_success {rejected_log_records (1, int64), error_message (2, string)}, the
 *     count being the records refused here plus the entries the store refused, the
 *     message naming the first of each.
 *
 * Memory: the decoded request, the label and metadata arrays and every string made here
 * live in the request arena (capped at OTLP_LOGS_ARENA_FACTOR x limits.max_decoded_bytes
 * while decoding and translating); string attribute values and string bodies are not
 * copied but point into the decoded request. The only heap is a scratch buffer for
 * value text and the per-record working array, both freed before returning. */
#include "otlp_logs.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../grpc.h"
#include "../http.h"
#include "ingest.h"
#include "otlp_names.h"
#include "otlp_receiver.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse pb_resp;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess pb_partial;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs pb_resource_logs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs pb_scope_logs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_record;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;

#define RECV_HTTP "otlp_logs_http"
#define RECV_GRPC "otlp_logs_grpc"
#define NS_PER_S 1000000000LL

/* Nested maps deeper than this are written as JSON text rather than flattened further. */
#define FLATTEN_MAX_DEPTH 16

const char *const OTLP_LOGS_RESOURCE_LABELS[] = {
    "cloud.availability_zone", "cloud.region", "container.name", "deployment.environment",
    "deployment.environment.name", "k8s.cluster.name", "k8s.container.name",
    "k8s.cronjob.name", "k8s.daemonset.name", "k8s.deployment.name", "k8s.job.name",
    "k8s.namespace.name", "k8s.pod.name", "k8s.replicaset.name", "k8s.statefulset.name",
    "service.instance.id", "service.name", "service.namespace", NULL,
};

static struct vg_complaint complain_invalid;
static struct vg_complaint complain_partial;
static struct vg_complaint complain_storage;

/* ---- translation ---- */

struct tr {
    const struct otlp_logs_opts *o;
    struct vg_arena *a;
    struct vg_buf text;   /* scratch for value text (heap) */
    struct label *work;   /* the metadata being gathered (heap, reused) */
    size_t nwork, capwork;
    bool overflow;        /* more pairs than any entry may carry: the store refuses it */
    bool nomem;
};

static struct vg_str arena_copy(struct tr *t, const char *p, size_t n)
{
    char *s = vg_arena_strndup(t->a, p, n);
    if (!s) {
        t->nomem = true;
        return VG_STR("");
    }
    return (struct vg_str){ s, n };
}

/* The text of an attribute value: strings point into the request, the rest is
 * OpenTelemetry's AsString text copied into the arena. */
static struct vg_str value_text(struct tr *t, const pb_any *v)
{
    if (!v)
        return VG_STR("");
    if (v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE)
        return vg_str_c(v->string_value);
    vg_buf_reset(&t->text);
    otlp_names_value(&t->text, v);
    if (vg_buf_failed(&t->text)) {
        t->nomem = true;
        return VG_STR("");
    }
    return arena_copy(t, t->text.p ? t->text.p : "", t->text.len);
}

static void push(struct tr *t, struct vg_str name, struct vg_str value)
{
    if (t->nwork > LENTRY_MAX_META) {
        t->overflow = true;
        return;
    }
    if (t->nwork == t->capwork) {
        size_t cap = t->capwork ? t->capwork * 2 : 32;
        struct label *w = vg_realloc(t->work, cap * sizeof *w);
        if (!w) {
            t->nomem = true;
            return;
        }
        t->work = w;
        t->capwork = cap;
    }
    t->work[t->nwork].name = name;
    t->work[t->nwork++].value = value;
}

static void push_c(struct tr *t, const char *name, struct vg_str value)
{
    push(t, vg_str_c(name), value);
}

static void push_u64(struct tr *t, const char *name, uint64_t v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRIu64, v);
    push_c(t, name, arena_copy(t, buf, (size_t)n));
}

/* Adds attribute kv as metadata, its key under prefix (joined with "_"); maps are
 * flattened into their leaves. */
static void add_attr(struct tr *t, const char *prefix, size_t plen, const pb_kv *kv, int depth)
{
    const char *key = kv->key ? kv->key : "";
    size_t klen = strlen(key);
    if (plen) {
        char *k = vg_arena_alloc(t->a, plen + 1 + klen + 1);
        if (!k) {
            t->nomem = true;
            return;
        }
        memcpy(k, prefix, plen);
        k[plen] = '_';
        memcpy(k + plen + 1, key, klen + 1);
        key = k;
        klen += plen + 1;
    }
    const pb_any *v = kv->value;
    if (v && v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE &&
        depth < FLATTEN_MAX_DEPTH) {
        const Opentelemetry__Proto__Common__V1__KeyValueList *kl = v->kvlist_value;
        for (size_t i = 0; kl && i < kl->n_values && !t->nomem && !t->overflow; i++)
            add_attr(t, key, klen, kl->values[i], depth + 1);
        return;
    }
    const char *name = otlp_names_label(t->a, key, klen);
    if (!name)
        return; /* nothing valid left of the key (or out of memory: the value check says) */
    push(t, vg_str_c(name), value_text(t, v));
}

static void add_attrs(struct tr *t, pb_kv *const *kvs, size_t n)
{
    for (size_t i = 0; i < n && !t->nomem && !t->overflow; i++)
        add_attr(t, NULL, 0, kvs[i], 0);
}

/* Copies the working pairs into the arena, dropping each pair whose name comes again
 * later (the more specific source wins). */
static struct label *work_to_arena(struct tr *t, size_t *n)
{
    struct label *out = vg_arena_alloc(t->a, (t->nwork ? t->nwork : 1) * sizeof *out);
    if (!out) {
        t->nomem = true;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < t->nwork; i++) {
        bool later = false;
        /* Past the limit the store refuses the entry anyway: keep the count above it. */
        for (size_t j = i + 1; j < t->nwork && !later && !t->overflow; j++)
            later = vg_str_eq(t->work[i].name, t->work[j].name);
        if (!later)
            out[k++] = t->work[i];
    }
    *n = k;
    return out;
}

static bool in_list(const char *key, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n && list[i]; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

static bool is_label_key(const struct otlp_logs_opts *o, const char *key)
{
    return in_list(key, OTLP_LOGS_RESOURCE_LABELS, SIZE_MAX) ||
           in_list(key, (const char *const *)o->resource_labels, o->nresource_labels);
}

/* The stream labels of a resource (sorted, unique); its other attributes go to t->work. */
static struct label *resource_labels(struct tr *t,
                                     const Opentelemetry__Proto__Resource__V1__Resource *r,
                                     size_t *nout)
{
    size_t nattr = r ? r->n_attributes : 0;
    struct label *ls = vg_arena_alloc(t->a, (nattr + 1) * sizeof *ls);
    if (!ls) {
        t->nomem = true;
        return NULL;
    }
    size_t n = 0;
    bool have_service = false;
    for (size_t i = 0; i < nattr && !t->nomem; i++) {
        const pb_kv *kv = r->attributes[i];
        if (!kv->key || !is_label_key(t->o, kv->key)) {
            add_attr(t, NULL, 0, kv, 0);
            continue;
        }
        struct vg_str value = value_text(t, kv->value);
        const char *name = otlp_names_label(t->a, kv->key, strlen(kv->key));
        if (!name || value.len == 0)
            continue;
        struct vg_str nm = vg_str_c(name);
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = vg_str_eq(ls[k].name, nm);
        if (dup)
            continue; /* two keys that normalise alike: the first one stays */
        have_service |= vg_str_eq_c(nm, "service_name");
        ls[n].name = nm;
        ls[n++].value = value;
    }
    if (!have_service) {
        ls[n].name = VG_STR("service_name");
        ls[n++].value = VG_STR("unknown_service");
    }
    labels_sort(ls, n);
    *nout = n;
    return ls;
}

static const char *level_from_number(int n)
{
    static const char *const names[] = { "trace", "debug", "info", "warn", "error", "fatal" };
    return n >= 1 && n <= 24 ? names[(n - 1) / 4] : NULL;
}

static const char *level_from_text(const char *s)
{
    static const struct {
        const char *text, *level;
    } map[] = {
        { "trace", "trace" },     { "debug", "debug" },     { "info", "info" },
        { "information", "info" }, { "informational", "info" }, { "notice", "info" },
        { "warn", "warn" },       { "warning", "warn" },    { "error", "error" },
        { "err", "error" },       { "critical", "critical" }, { "crit", "critical" },
        { "fatal", "fatal" },     { "panic", "fatal" },     { "emerg", "fatal" },
        { "emergency", "fatal" }, { "alert", "fatal" },
    };
    for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(s, map[i].text) == 0)
            return map[i].level;
    return NULL;
}

static struct vg_str hex(struct tr *t, ProtobufCBinaryData b)
{
    static const char digits[] = "0123456789abcdef";
    char *s = vg_arena_alloc(t->a, b.len * 2 + 1);
    if (!s) {
        t->nomem = true;
        return VG_STR("");
    }
    for (size_t i = 0; i < b.len; i++) {
        s[2 * i] = digits[b.data[i] >> 4];
        s[2 * i + 1] = digits[b.data[i] & 15];
    }
    s[b.len * 2] = 0;
    return (struct vg_str){ s, b.len * 2 };
}

/* The record's own fields, in the order of the header's list. */
static void add_record_fields(struct tr *t, const pb_record *r)
{
    const char *st = r->severity_text ? r->severity_text : "";
    if (*st)
        push_c(t, "severity_text", vg_str_c(st));
    if (r->severity_number)
        push_u64(t, "severity_number", (uint64_t)r->severity_number);
    const char *level = level_from_number((int)r->severity_number);
    if (!level)
        level = level_from_text(st);
    if (level)
        push_c(t, "detected_level", vg_str_c(level));
    if (r->trace_id.len)
        push_c(t, "trace_id", hex(t, r->trace_id));
    if (r->span_id.len)
        push_c(t, "span_id", hex(t, r->span_id));
    if (r->flags)
        push_u64(t, "flags", r->flags);
    if (r->time_unix_nano && r->observed_time_unix_nano)
        push_u64(t, "observed_timestamp", r->observed_time_unix_nano);
    if (r->event_name && *r->event_name)
        push_c(t, "event_name", vg_str_c(r->event_name));
    if (r->dropped_attributes_count)
        push_u64(t, "dropped_attributes_count", r->dropped_attributes_count);
}

static void refuse_future(struct tr *t, struct otlp_logs_batch *out, size_t res, size_t rec,
                          uint64_t time_ns)
{
    out->rejected++;
    out->rejected_future++;
    if (!out->reason[0])
        snprintf(out->reason, sizeof out->reason,
                 "resource %zu, record %zu: time %" PRIu64 " ns is more than %" PRId64
                 " s after the receive time %" PRId64 " ns (" INGEST_REJECT_FUTURE ")",
                 res, rec, time_ns, (int64_t)(t->o->max_future_ns / NS_PER_S), t->o->now_ns);
}

/* Translates one record into e, after the first nbase pairs of work (resource and
 * scope); false when refused (counted in out). */
static bool record(struct tr *t, const pb_record *r, size_t nbase, bool base_overflow,
                   size_t res, size_t rec, struct lentry *e, struct otlp_logs_batch *out)
{
    uint64_t tu = r->time_unix_nano ? r->time_unix_nano : r->observed_time_unix_nano;
    int64_t time = t->o->now_ns;
    if (tu) {
        if (tu > (uint64_t)INT64_MAX) {
            refuse_future(t, out, res, rec, tu);
            return false;
        }
        time = (int64_t)tu;
    }
    if (time > t->o->now_ns && (uint64_t)time - (uint64_t)t->o->now_ns >
                                   (uint64_t)t->o->max_future_ns) {
        refuse_future(t, out, res, rec, (uint64_t)time);
        return false;
    }
    t->nwork = nbase;
    t->overflow = base_overflow;
    add_record_fields(t, r);
    add_attrs(t, r->attributes, r->n_attributes);
    e->t = time;
    e->line = value_text(t, r->body);
    e->meta = work_to_arena(t, &e->nmeta);
    return true;
}

/* One ResourceLogs: its stream (when any record is accepted) goes to out. */
static void resource(struct tr *t, const pb_resource_logs *rl, size_t ri,
                     struct otlp_logs_batch *out)
{
    size_t nrec = 0;
    for (size_t s = 0; s < rl->n_scope_logs; s++)
        nrec += rl->scope_logs[s]->n_log_records;
    out->records += nrec;
    if (nrec == 0)
        return;
    t->nwork = 0;
    t->overflow = false;
    struct logstore_stream_in *st = &out->streams[out->nstreams];
    struct label *ls = resource_labels(t, rl->resource, &st->nlabels);
    struct lentry *es = vg_arena_alloc(t->a, nrec * sizeof *es);
    if (!ls || !es) {
        t->nomem = true;
        return;
    }
    size_t nres = t->nwork; /* the resource's metadata, kept at the front of work */
    bool res_overflow = t->overflow;
    size_t ne = 0, rec = 0;
    for (size_t s = 0; s < rl->n_scope_logs && !t->nomem; s++) {
        const pb_scope_logs *sl = rl->scope_logs[s];
        t->nwork = nres;
        t->overflow = res_overflow;
        const Opentelemetry__Proto__Common__V1__InstrumentationScope *sc = sl->scope;
        if (sc && sc->name && *sc->name)
            push_c(t, "scope_name", vg_str_c(sc->name));
        if (sc && sc->version && *sc->version)
            push_c(t, "scope_version", vg_str_c(sc->version));
        if (sc)
            add_attrs(t, sc->attributes, sc->n_attributes);
        size_t nbase = t->nwork;
        bool base_overflow = t->overflow;
        for (size_t i = 0; i < sl->n_log_records && !t->nomem; i++, rec++)
            if (record(t, sl->log_records[i], nbase, base_overflow, ri, rec, &es[ne], out))
                ne++;
    }
    if (ne == 0 || t->nomem)
        return;
    st->labels = ls;
    st->entries = es;
    st->nentries = ne;
    out->nstreams++;
}

int otlp_logs_translate(const otlp_logs_request *req, const struct otlp_logs_opts *o,
                        struct vg_arena *a, struct otlp_logs_batch *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    struct tr t = { .o = o, .a = a };
    vg_buf_init(&t.text);
    size_t n = req->n_resource_logs;
    out->streams = vg_arena_alloc(a, (n ? n : 1) * sizeof *out->streams);
    if (!out->streams)
        t.nomem = true;
    for (size_t i = 0; i < n && !t.nomem; i++)
        resource(&t, req->resource_logs[i], i, out);
    vg_buf_free(&t.text);
    vg_free(t.work);
    if (t.nomem) {
        out->nstreams = 0;
        return vg_err_set(err, VG_ENOMEM, "out of memory translating OTLP logs");
    }
    return 0;
}

int otlp_logs_decode(const void *body, size_t len, bool json, struct vg_arena *a,
                     otlp_logs_request **out, struct vg_err *err)
{
    ProtobufCMessage *m;
    int rc = otlp_receiver_decode(
        &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor, body,
        len, json, a, OTLP_LOGS_ARENA_FACTOR, &m, err);
    *out = rc == 0 ? (otlp_logs_request *)m : NULL;
    return rc;
}

/* ---- export ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Fills the partial success; false when everything was stored. */
static bool partial(const struct otlp_logs_batch *b, const struct logstore_push_result *pr,
                    const char *store_reason, pb_partial *ps, char *msg, size_t cap)
{
    uint64_t stored_refused = 0;
    for (int r = 0; r < LOGSTORE_REJECT_COUNT; r++)
        stored_refused += pr->rejected[r];
    if (!b->rejected && !stored_refused)
        return false;
    size_t n = 0;
    msg[0] = 0;
    if (b->rejected)
        n = (size_t)snprintf(msg, cap, "%" PRIu64 " of %" PRIu64 " log records rejected; first: %s",
                             b->rejected, b->records, b->reason);
    if (stored_refused && n < cap)
        snprintf(msg + n, cap - n, "%s%" PRIu64 " log records rejected by the store; first: %s",
                 n ? "; " : "", stored_refused, store_reason);
    ps->rejected_log_records = (int64_t)(b->rejected + stored_refused);
    ps->error_message = msg;
    return true;
}

int otlp_logs_export(struct vigil *v, const char *receiver, const void *body, size_t len,
                     bool json, struct vg_arena *a, struct vg_buf *out, struct vg_err *err)
{
    const struct config *cfg = v->cfg;
    size_t outer = otlp_receiver_cap_arena(cfg, a, OTLP_LOGS_ARENA_FACTOR);
    size_t cap = vg_arena_get_limit(a);
    otlp_logs_request *req;
    struct otlp_logs_batch b = { 0 };
    int rc = otlp_logs_decode(body, len, json, a, &req, err);
    if (rc == 0) {
        struct otlp_logs_opts o = {
            .resource_labels = cfg->logs_otlp_resource_labels,
            .nresource_labels = cfg->logs_notlp_resource_labels,
            .now_ns = now_ns(),
            .max_future_ns = INGEST_LOG_MAX_FUTURE_NS,
        };
        rc = otlp_receiver_cap_or_nomem(otlp_logs_translate(req, &o, a, &b, err), cap != 0,
                                        OTLP_LOGS_ARENA_FACTOR, err);
    }
    vg_arena_set_limit(a, outer);
    if (rc < 0) {
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, receiver,
                    "rejected an OTLP logs request", err->msg);
        return rc;
    }
    ingest_count_lines_rejected(v, receiver, INGEST_REJECT_FUTURE, b.rejected_future);
    struct logstore_push_result pr;
    memset(&pr, 0, sizeof pr);
    struct vg_err serr;
    vg_err_clear(&serr);
    if (b.nstreams) {
        rc = ingest_store_logs(v, receiver, b.streams, b.nstreams, &pr, &serr);
        if (rc < 0) {
            *err = serr;
            vg_complain(&complain_storage, 10000, VG_LOG_ERROR, receiver,
                        "storing an OTLP logs request failed", err->msg);
            return rc;
        }
    }
    pb_resp resp = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
    pb_partial ps = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
    char msg[2 * VG_ERR_MSG_MAX];
    if (partial(&b, &pr, serr.msg, &ps, msg, sizeof msg)) {
        resp.partial_success = &ps;
        vg_complain(&complain_partial, 60000, VG_LOG_WARN, receiver,
                    "stored part of an OTLP logs request", msg);
    }
    return otlp_receiver_encode(&resp.base, json, out, err);
}

/* ---- HTTP and gRPC ---- */

static void handle_http(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    otlp_receiver_http(v, req, resp, RECV_HTTP, "OTLP/HTTP logs", otlp_logs_export);
}

int otlp_logs_grpc_export(struct vigil *v, const unsigned char *req, size_t len,
                          struct vg_buf *resp, struct vg_err *err)
{
    return otlp_receiver_grpc(v, RECV_GRPC, otlp_logs_export, req, len, resp, err);
}

static const struct http_route routes[] = {
    { "POST", "/v1/logs", false, handle_http, "/v1/logs" },
};

static const struct grpc_method methods[] = {
    { "/opentelemetry.proto.collector.logs.v1.LogsService/Export", otlp_logs_grpc_export },
};

const struct vigil_module mod_otlp_logs = {
    .name = "otlp_logs",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
    .grpc_methods = methods,
    .ngrpc = sizeof methods / sizeof methods[0],
};
