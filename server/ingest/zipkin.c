/* zipkin: see zipkin.h.
 *
 * The mapping (the OpenTelemetry Collector's zipkin receiver, pkg/translator/zipkin/zipkinv2,
 * with its default ParseStringTags = false):
 *   traceId        1 to 32 hex digits, left-padded with zeros to 16 bytes (64-bit ids)
 *   id, parentId   1 to 16 hex digits, left-padded to 8 bytes; a parentId equal to id or
 *                  empty means no parent
 *   name           span name
 *   kind           CLIENT, SERVER, PRODUCER, CONSUMER to the same SpanKind; otherwise
 *                  INTERNAL when the tag span.kind is "internal", else UNSPECIFIED (the
 *                  span.kind tag is consumed when kind is absent)
 *   timestamp      microseconds since the epoch -> start; + duration (microseconds) -> end.
 *                  The collector stores a missing timestamp as 0 with a marker attribute;
 *                  the store needs a start time, so such a span is refused here.
 *   localEndpoint  serviceName -> resource service.name; ipv4 / ipv6 -> net.host.ip,
 *                  port > 0 -> net.host.port (int)
 *   remoteEndpoint serviceName -> peer.service; ipv4 / ipv6 -> net.peer.ip,
 *                  port > 0 -> net.peer.port (int)
 *   tags           string attributes, except:
 *                  w3c.tracestate -> trace state;
 *                  otel.status_code (STATUS_CODE_OK / _ERROR / _UNSET, and the
 *                  specification's OK / ERROR / UNSET) -> status, with
 *                  otel.status_description -> status message;
 *                  error = "true" -> status ERROR; any other value but "" and
 *                  "false" -> status ERROR with the value as message (as Brave and
 *                  zipkin-js write it) and stays an attribute too;
 *                  otel.library.name / otel.library.version (or otel.scope.*) -> scope;
 *                  the resource semantic-convention keys of semconv 1.6.1 (RESOURCE_KEYS
 *                  below) and the OpenCensus ones -> resource attributes;
 *                  otlp.link.<i> ("traceid|spanid|tracestate|{json attributes}|dropped")
 *                  -> links, in order of i from 0
 *   annotations    events: timestamp -> time, value -> name; a value
 *                  "name|{json attributes}|dropped" (as the collector's exporter writes it)
 *                  also gives the attributes and dropped count
 *   shared, debug  accepted (booleans) and not kept, as the collector does.
 * Where the collector moves resource tags from the first span of each service only, every
 * span here keeps its own. */
#include "zipkin.h"

#include "../../storage/base/vg_log.h"
#include "../http.h"
#include "ingest.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RECV "zipkin"

static struct vg_complaint complain_invalid;
static struct vg_complaint complain_storage;

/* Resource attribute keys of semantic conventions 1.6.1, plus OpenCensus's. */
static const char *const RESOURCE_KEYS[] = {
    "cloud.provider", "cloud.account.id", "cloud.region", "cloud.availability_zone",
    "cloud.platform", "aws.ecs.container.arn", "aws.ecs.cluster.arn", "aws.ecs.launchtype",
    "aws.ecs.task.arn", "aws.ecs.task.family", "aws.ecs.task.revision", "aws.eks.cluster.arn",
    "aws.log.group.names", "aws.log.group.arns", "aws.log.stream.names", "aws.log.stream.arns",
    "container.name", "container.id", "container.runtime", "container.image.name",
    "container.image.tag", "deployment.environment", "device.id", "device.model.identifier",
    "device.model.name", "device.manufacturer", "faas.name", "faas.id", "faas.version",
    "faas.instance", "faas.max_memory", "host.id", "host.name", "host.type", "host.arch",
    "host.image.name", "host.image.id", "host.image.version", "k8s.cluster.name",
    "k8s.node.name", "k8s.node.uid", "k8s.namespace.name", "k8s.pod.uid", "k8s.pod.name",
    "k8s.container.name", "k8s.container.restart_count", "k8s.replicaset.uid",
    "k8s.replicaset.name", "k8s.deployment.uid", "k8s.deployment.name", "k8s.statefulset.uid",
    "k8s.statefulset.name", "k8s.daemonset.uid", "k8s.daemonset.name", "k8s.job.uid",
    "k8s.job.name", "k8s.cronjob.uid", "k8s.cronjob.name", "os.type", "os.description",
    "os.name", "os.version", "process.pid", "process.executable.name",
    "process.executable.path", "process.command", "process.command_line",
    "process.command_args", "process.owner", "process.runtime.name", "process.runtime.version",
    "process.runtime.description", "service.name", "service.namespace", "service.instance.id",
    "service.version", "telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version",
    "telemetry.auto.version", "webengine.name", "webengine.version", "webengine.description",
    "opencensus.starttime", "opencensus.exporterversion", "opencensus.resourcetype",
};

static bool is_resource_key(const char *k)
{
    for (size_t i = 0; i < sizeof RESOURCE_KEYS / sizeof RESOURCE_KEYS[0]; i++)
        if (!strcmp(k, RESOURCE_KEYS[i]))
            return true;
    return false;
}

struct zctx {
    const struct config *cfg;
    struct vg_arena *a;
    bool oom;
    char *why;
    size_t cap;
    const char *where;
};

static int refuse(struct zctx *c, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(struct zctx *c, int r, const char *fmt, ...)
{
    int n = snprintf(c->why, c->cap, "%s: ", c->where);
    if (n >= 0 && (size_t)n < c->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why + n, c->cap - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return r;
}

static struct vg_str astr(struct zctx *c, const char *s, size_t n)
{
    if (!n)
        return VG_STR("");
    char *p = vg_arena_strndup(c->a, s, n);
    if (!p)
        c->oom = true;
    return (struct vg_str){ p ? p : "", p ? n : 0 };
}

static struct vg_str jstr(struct zctx *c, const json_t *v)
{
    return astr(c, json_string_value(v), json_string_length(v));
}

/* The id member key of o: -1 when absent or null or "" (allowed only when optional), 1
 * when parsed, 0 when malformed. */
static int get_id(const json_t *o, const char *key, uint8_t *out, size_t n)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return -1;
    if (!json_is_string(v))
        return 0;
    return otlp_traces_parse_id(json_string_value(v), json_string_length(v), out, n);
}

/* A non-negative integer member in microseconds as nanoseconds; 0 when absent. False when
 * it is of another type, negative, or too large. */
static bool get_micros(const json_t *o, const char *key, int64_t *ns)
{
    const json_t *v = json_object_get(o, key);
    *ns = 0;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_integer(v))
        return false;
    json_int_t us = json_integer_value(v);
    if (us < 0 || us > INT64_MAX / 1000)
        return false;
    *ns = (int64_t)us * 1000;
    return true;
}

static struct span_attr *add_attr(struct span_attr *arr, size_t *n, struct vg_str key)
{
    struct span_attr *at = &arr[(*n)++];
    memset(at, 0, sizeof *at);
    at->key = key;
    return at;
}

static void add_str(struct span_attr *arr, size_t *n, struct vg_str key, struct vg_str v)
{
    struct span_attr *at = add_attr(arr, n, key);
    at->type = SPAN_VAL_STRING;
    at->v.s = v;
}

/* The collector's piped encoding: "<head>|{json attributes}|<dropped>". Fills attrs and
 * dropped from the part after the first '|' when there are at least three parts; false
 * when that part is malformed. */
static bool piped_attrs(struct zctx *c, const char *s, const char *first_bar,
                        const struct span_attr **attrs, size_t *nattrs, uint32_t *dropped)
{
    const char *last = strrchr(s, '|');
    if (!first_bar || last == first_bar)
        return true;
    char *end;
    unsigned long long d = strtoull(last + 1, &end, 10);
    if (*end || end == last + 1 || d > UINT32_MAX)
        return false;
    *dropped = (uint32_t)d;
    json_t *o = json_loadb(first_bar + 1, (size_t)(last - first_bar - 1), 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return false;
    }
    struct span_attr *arr = vg_arena_alloc(c->a, (json_object_size(o) + 1) * sizeof *arr);
    if (!arr) {
        c->oom = true;
        json_decref(o);
        return true;
    }
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        struct span_attr at = { .key = astr(c, k, strlen(k)) };
        if (json_is_string(v)) {
            at.type = SPAN_VAL_STRING;
            at.v.s = jstr(c, v);
        } else if (json_is_integer(v)) {
            at.type = SPAN_VAL_INT;
            at.v.i = json_integer_value(v);
        } else if (json_is_real(v)) {
            double x = json_real_value(v);
            bool whole = x == (double)(int64_t)x && x > -9.2e18 && x < 9.2e18;
            at.type = whole ? SPAN_VAL_INT : SPAN_VAL_DOUBLE;
            if (whole)
                at.v.i = (int64_t)x;
            else
                at.v.d = x;
        } else if (json_is_boolean(v)) {
            at.type = SPAN_VAL_BOOL;
            at.v.b = json_is_true(v);
        } else {
            continue;
        }
        arr[n++] = at;
    }
    json_decref(o);
    *attrs = arr;
    *nattrs = n;
    return true;
}

/* Annotations to events. -1 or a reason. */
static int events_of(struct zctx *c, const json_t *js, struct span *s)
{
    const json_t *an = json_object_get(js, "annotations");
    if (!an || json_is_null(an))
        return -1;
    if (!json_is_array(an))
        return refuse(c, OTLP_TRACES_REJECT_MALFORMED, "annotations: expected an array");
    size_t n = json_array_size(an);
    struct span_event *ev = vg_arena_calloc(c->a, (n ? n : 1) * sizeof *ev);
    if (!ev) {
        c->oom = true;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(an, i);
        const json_t *val = json_object_get(e, "value");
        if (!json_is_object(e) || !json_is_string(val) || !get_micros(e, "timestamp", &ev[i].time_ns))
            return refuse(c, OTLP_TRACES_REJECT_MALFORMED,
                          "annotations[%zu]: expected {\"timestamp\": microseconds, "
                          "\"value\": string}",
                          i);
        const char *v = json_string_value(val);
        const char *bar = strchr(v, '|');
        ev[i].name = astr(c, v, bar ? (size_t)(bar - v) : json_string_length(val));
        if (!piped_attrs(c, v, bar, &ev[i].attrs, &ev[i].nattrs, &ev[i].dropped_attrs))
            return refuse(c, OTLP_TRACES_REJECT_MALFORMED,
                          "annotations[%zu]: value \"name|{attributes}|dropped\" has malformed "
                          "attributes",
                          i);
    }
    s->events = ev;
    s->nevents = n;
    return -1;
}

/* One otlp.link.<i> tag to a link; -1 or a reason. */
static int link_of(struct zctx *c, size_t i, const char *v, struct span_link *l)
{
    memset(l, 0, sizeof *l);
    const char *p1 = strchr(v, '|');
    const char *p2 = p1 ? strchr(p1 + 1, '|') : NULL;
    const char *p3 = p2 ? strchr(p2 + 1, '|') : NULL;
    if (!p3 || !otlp_traces_parse_id(v, (size_t)(p1 - v), l->trace_id, SPAN_TRACE_ID_LEN) ||
        !otlp_traces_parse_id(p1 + 1, (size_t)(p2 - p1 - 1), l->span_id, SPAN_ID_LEN) ||
        !piped_attrs(c, v, p3, &l->attrs, &l->nattrs, &l->dropped_attrs))
        return refuse(c, OTLP_TRACES_REJECT_MALFORMED,
                      "tag otlp.link.%zu: expected \"traceid|spanid|tracestate|{attributes}|"
                      "dropped\"",
                      i);
    l->trace_state = astr(c, p2 + 1, (size_t)(p3 - p2 - 1));
    return -1;
}

/* The collector's map lookup gives UNSET for a name it does not know. */
static enum span_status status_of(const char *v)
{
    static const char *const names[][2] = {
        { "STATUS_CODE_UNSET", "UNSET" }, { "STATUS_CODE_OK", "OK" },
        { "STATUS_CODE_ERROR", "ERROR" },
    };
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, names[i][0]) || !strcmp(v, names[i][1]))
            return (enum span_status)i;
    return SPAN_STATUS_UNSET;
}

/* otlp.link.<i> with i < nlinks: consumed as a link. */
static bool is_link_key(const char *k, size_t nlinks)
{
    if (strncmp(k, "otlp.link.", 10) != 0)
        return false;
    char *end;
    unsigned long i = strtoul(k + 10, &end, 10);
    return end != k + 10 && !*end && i < nlinks;
}

/* Tags to attributes, resource attributes, scope, status, trace state and links. -1 or a
 * reason. ra/sa have room for every tag plus the endpoint attributes. */
static int tags_of(struct zctx *c, const json_t *js, struct span *s, struct span_attr *ra,
                   struct span_attr *sa, bool kind_given)
{
    const json_t *tags = json_object_get(js, "tags");
    if (!tags || json_is_null(tags))
        return -1;
    if (!json_is_object(tags))
        return refuse(c, OTLP_TRACES_REJECT_MALFORMED, "tags: expected an object of strings");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)tags, k, v) {
        if (!json_is_string(v))
            return refuse(c, OTLP_TRACES_REJECT_MALFORMED, "tags.%.64s: expected a string", k);
    }
    size_t nlinks = 0;
    char key[32];
    for (;; nlinks++) {
        snprintf(key, sizeof key, "otlp.link.%zu", nlinks);
        if (nlinks == 128 || !json_object_get(tags, key))
            break;
    }
    struct span_link *links = nlinks ? vg_arena_alloc(c->a, nlinks * sizeof *links) : NULL;
    if (nlinks && !links) {
        c->oom = true;
        return -1;
    }
    for (size_t i = 0; i < nlinks; i++) {
        snprintf(key, sizeof key, "otlp.link.%zu", i);
        int r = link_of(c, i, json_string_value(json_object_get(tags, key)), &links[i]);
        if (r >= 0)
            return r;
    }
    s->links = links;
    s->nlinks = nlinks;
    /* The code first, then error = "true" over it, as the collector orders them. */
    const json_t *code = json_object_get(tags, "otel.status_code");
    const json_t *desc = json_object_get(tags, "otel.status_description");
    const json_t *error = json_object_get(tags, "error");
    if (code) {
        s->status = status_of(json_string_value(code));
        if (desc)
            s->status_message = jstr(c, desc);
    }
    const char *ev = error ? json_string_value(error) : NULL;
    bool error_true = ev && !strcmp(ev, "true");
    /* Zipkin's own clients (Brave, zipkin-js) put the error message in the tag's value:
     * any value but "" and "false" marks the span failed, and without an otel.status_code
     * the value is the status message. */
    if (ev && *ev && strcmp(ev, "false") != 0) {
        s->status = SPAN_STATUS_ERROR;
        if (!error_true && !code)
            s->status_message = jstr(c, error);
    }
    json_object_foreach((json_t *)tags, k, v) {
        const char *sv = json_string_value(v);
        if (!strcmp(k, "w3c.tracestate")) {
            s->trace_state = jstr(c, v);
        } else if ((code && (v == code || v == desc)) || (error_true && v == error) ||
                   is_link_key(k, nlinks)) {
            continue; /* consumed above */
        } else if (!strcmp(k, "span.kind") && !kind_given) {
            if (!strcmp(sv, "internal"))
                s->kind = SPAN_KIND_INTERNAL;
        } else if (!strcmp(k, "otel.library.name") || !strcmp(k, "otel.scope.name")) {
            s->scope_name = jstr(c, v);
        } else if (!strcmp(k, "otel.library.version") || !strcmp(k, "otel.scope.version")) {
            s->scope_version = jstr(c, v);
        } else if (is_resource_key(k)) {
            if (strcmp(k, "service.name") != 0) /* the local endpoint's name wins */
                add_str(ra, &s->nresource_attrs, astr(c, k, strlen(k)), jstr(c, v));
        } else {
            add_str(sa, &s->nattrs, astr(c, k, strlen(k)), jstr(c, v));
        }
    }
    return -1;
}

/* localEndpoint / remoteEndpoint: service name into *service, address and port into the
 * span attributes ip_key and port_key. -1 or a reason. */
static int endpoint_of(struct zctx *c, const json_t *js, const char *which, struct vg_str *service,
                       struct span_attr *sa, size_t *n, const char *ip_key, const char *port_key)
{
    const json_t *ep = json_object_get(js, which);
    if (!ep || json_is_null(ep))
        return -1;
    if (!json_is_object(ep))
        return refuse(c, OTLP_TRACES_REJECT_MALFORMED, "%s: expected an object", which);
    const json_t *sn = json_object_get(ep, "serviceName");
    const json_t *v4 = json_object_get(ep, "ipv4");
    const json_t *v6 = json_object_get(ep, "ipv6");
    const json_t *port = json_object_get(ep, "port");
    if ((sn && !json_is_string(sn) && !json_is_null(sn)) ||
        (v4 && !json_is_string(v4) && !json_is_null(v4)) ||
        (v6 && !json_is_string(v6) && !json_is_null(v6)) ||
        (port && !json_is_integer(port) && !json_is_null(port)))
        return refuse(c, OTLP_TRACES_REJECT_MALFORMED,
                      "%s: serviceName, ipv4 and ipv6 must be strings, port an integer", which);
    if (json_is_string(sn) && json_string_length(sn))
        *service = jstr(c, sn);
    if (json_is_string(v6) && json_string_length(v6))
        add_str(sa, n, vg_str_c(ip_key), jstr(c, v6));
    else if (json_is_string(v4) && json_string_length(v4))
        add_str(sa, n, vg_str_c(ip_key), jstr(c, v4));
    if (json_is_integer(port) && json_integer_value(port) > 0) {
        struct span_attr *at = add_attr(sa, n, vg_str_c(port_key));
        at->type = SPAN_VAL_INT;
        at->v.i = json_integer_value(port);
    }
    return -1;
}

static enum span_kind kind_of(const char *k)
{
    static const struct { const char *name; enum span_kind kind; } kinds[] = {
        { "CLIENT", SPAN_KIND_CLIENT }, { "SERVER", SPAN_KIND_SERVER },
        { "PRODUCER", SPAN_KIND_PRODUCER }, { "CONSUMER", SPAN_KIND_CONSUMER },
    };
    for (size_t i = 0; k && i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(k, kinds[i].name))
            return kinds[i].kind;
    return SPAN_KIND_UNSPECIFIED;
}

/* One Zipkin span into s. -1 when it may be kept, else the reason (c->why filled). */
static int span_of(struct zctx *c, const json_t *js, struct span *s)
{
    memset(s, 0, sizeof *s);
    if (!json_is_object(js))
        return refuse(c, OTLP_TRACES_REJECT_MALFORMED, "expected a span object, got %s",
                      json_is_array(js) ? "an array" : "a scalar");
    if (get_id(js, "traceId", s->trace_id, SPAN_TRACE_ID_LEN) != 1)
        return refuse(c, OTLP_TRACES_REJECT_TRACE_ID,
                      "traceId must be 16 or 32 hex digits");
    if (get_id(js, "id", s->span_id, SPAN_ID_LEN) != 1)
        return refuse(c, OTLP_TRACES_REJECT_SPAN_ID, "id must be 16 hex digits");
    int pr = get_id(js, "parentId", s->parent_span_id, SPAN_ID_LEN);
    if (pr == 0)
        return refuse(c, OTLP_TRACES_REJECT_PARENT_ID, "parentId must be 16 hex digits");
    if (pr == 1 && !memcmp(s->parent_span_id, s->span_id, SPAN_ID_LEN))
        memset(s->parent_span_id, 0, SPAN_ID_LEN);
    const json_t *name = json_object_get(js, "name");
    const json_t *kind = json_object_get(js, "kind");
    if ((name && !json_is_string(name) && !json_is_null(name)) ||
        (kind && !json_is_string(kind) && !json_is_null(kind)))
        return refuse(c, OTLP_TRACES_REJECT_MALFORMED, "name and kind must be strings");
    for (int i = 0; i < 2; i++) {
        const json_t *b = json_object_get(js, i ? "debug" : "shared");
        if (b && !json_is_boolean(b) && !json_is_null(b))
            return refuse(c, OTLP_TRACES_REJECT_MALFORMED, "%s must be a boolean",
                          i ? "debug" : "shared");
    }
    if (json_is_string(name))
        s->name = jstr(c, name);
    s->kind = kind_of(json_string_value(kind));
    int64_t dur;
    if (!get_micros(js, "timestamp", &s->start_ns) || !get_micros(js, "duration", &dur) ||
        dur > INT64_MAX - s->start_ns)
        return refuse(c, OTLP_TRACES_REJECT_TIMESTAMPS,
                      "timestamp and duration must be microseconds between 0 and 2^63 ns");
    if (s->start_ns == 0)
        return refuse(c, OTLP_TRACES_REJECT_TIMESTAMPS, "timestamp is missing");
    s->end_ns = s->start_ns + dur;
    const json_t *tags = json_object_get(js, "tags");
    size_t room = (json_is_object(tags) ? json_object_size(tags) : 0) + 6;
    struct span_attr *ra = vg_arena_alloc(c->a, room * sizeof *ra);
    struct span_attr *sa = vg_arena_alloc(c->a, room * sizeof *sa);
    if (!ra || !sa) {
        c->oom = true;
        return -1;
    }
    s->resource_attrs = ra;
    s->attrs = sa;
    int r = tags_of(c, js, s, ra, sa, kind && !json_is_null(kind) &&
                                          s->kind != SPAN_KIND_UNSPECIFIED);
    if (r < 0)
        r = endpoint_of(c, js, "localEndpoint", &s->service, sa, &s->nattrs, "net.host.ip",
                        "net.host.port");
    struct vg_str peer = VG_STR("");
    if (r < 0)
        r = endpoint_of(c, js, "remoteEndpoint", &peer, sa, &s->nattrs, "net.peer.ip",
                        "net.peer.port");
    if (r >= 0)
        return r;
    if (peer.len)
        add_str(sa, &s->nattrs, VG_STR("peer.service"), peer);
    if (s->service.len) {
        /* service.name first, as the collector puts it into a fresh resource */
        memmove(ra + 1, ra, s->nresource_attrs * sizeof *ra);
        s->nresource_attrs++;
        ra[0] = (struct span_attr){ .key = VG_STR("service.name"), .type = SPAN_VAL_STRING,
                                    .v.s = s->service };
    }
    r = events_of(c, js, s);
    if (r >= 0 || c->oom)
        return r;
    return otlp_traces_check(c->cfg, s, c->where, c->why, c->cap);
}

int zipkin_decode(const char *body, size_t len, const struct config *cfg, struct vg_arena *a,
                  struct otlp_traces_result *res, struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_out_of_memory)
            return vg_err_set(err, VG_ENOMEM, "out of memory parsing JSON");
        return vg_err_set(err, VG_EINVAL, "invalid JSON at line %d, column %d: %s", je.line,
                          je.column, je.text);
    }
    if (!json_is_array(root)) {
        const char *what = json_is_object(root) ? "object" : "scalar";
        json_decref(root);
        return vg_err_set(err, VG_EINVAL,
                          "expected a JSON array of Zipkin v2 spans, got a JSON %s", what);
    }
    size_t total = json_array_size(root);
    size_t max = (size_t)cfg->traces_max_spans_per_request;
    int rc = otlp_traces_result_init(res, total < max ? total : max, a, err);
    char where[32], why[256];
    struct zctx c = { .cfg = cfg, .a = a, .why = why, .cap = sizeof why, .where = where };
    for (size_t i = 0; rc == 0 && i < total; i++) {
        res->received++;
        snprintf(where, sizeof where, "spans[%zu]", i);
        if (i >= max) {
            refuse(&c, 0,
                   "the request holds %zu spans, more than the limit of %zu "
                   "(traces.max_spans_per_request)",
                   total, max);
            otlp_traces_refuse(res, OTLP_TRACES_REJECT_SPAN_LIMIT, why);
            continue;
        }
        int r = span_of(&c, json_array_get(root, i), &res->spans[res->n]);
        if (c.oom)
            rc = vg_err_set(err, VG_ENOMEM, "out of memory decoding Zipkin spans");
        else if (r >= 0)
            otlp_traces_refuse(res, (enum otlp_traces_reject)r, why);
        else
            res->n++;
    }
    json_decref(root);
    return rc;
}

/* ---- HTTP ---- */

/* Decodes and stores a JSON body; 0 with resp filled (202), or a vg_code with err. */
static int accept_spans(struct vigil *v, struct http_request *req, struct http_response *resp,
                        struct vg_err *err)
{
    struct otlp_traces_result res;
    struct spanstore_write_result st;
    memset(&st, 0, sizeof st);
    int rc = zipkin_decode(req->body.p, req->body.len, v->cfg, req->arena, &res, err);
    if (rc < 0) {
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, RECV, "rejected a Zipkin request",
                    err->msg);
        return rc;
    }
    otlp_traces_count_refused(v, RECV, &res);
    if (res.n == 0 && res.rejected)
        return vg_err_set(err, VG_EINVAL, "all %llu spans rejected; first: %s",
                          (unsigned long long)res.rejected, res.reason);
    if (res.n && (rc = ingest_store_spans(v, RECV, res.spans, res.n, &st, err)) < 0) {
        vg_complain(&complain_storage, 10000, VG_LOG_ERROR, RECV,
                    "storing a Zipkin request failed", err->msg);
        return rc;
    }
    resp->status = 202;
    resp->content_type = "text/plain; charset=utf-8";
    vg_buf_reset(&resp->body);
    if (res.rejected || st.rejected)
        vg_buf_printf(&resp->body, "%llu of %llu spans rejected; first: %s\n",
                      (unsigned long long)res.rejected + (unsigned long long)st.rejected,
                      (unsigned long long)res.received,
                      res.rejected ? res.reason : st.first_reject);
    return 0;
}

static void handle_spans(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    const char *ct = req->content_type;
    const char *ce = req->content_encoding;
    int rc;
    if (ct && (strncasecmp(ct, "application/x-protobuf", 22) == 0 ||
               strncasecmp(ct, "application/x-thrift", 20) == 0))
        rc = vg_err_set(&err, VG_EMEDIA,
                        "unsupported Content-Type \"%.100s\": Zipkin spans must be JSON "
                        "(application/json)",
                        ct);
    else if (ce && *ce && strcasecmp(ce, "identity") != 0)
        rc = vg_err_set(&err, VG_EMEDIA,
                        "unsupported Content-Encoding \"%.100s\": use gzip or none", ce);
    else
        rc = accept_spans(v, req, resp, &err);
    if (rc < 0) {
        http_resp_error_text(resp, &err);
        if (rc == VG_ENOMEM || rc == VG_EIO)
            http_resp_header(resp, "Retry-After", "5");
    }
    ingest_count_request(v, RECV, resp->status);
}

static const struct http_route routes[] = {
    { "POST", "/api/v2/spans", false, handle_spans, "/api/v2/spans" },
};

const struct vigil_module mod_zipkin = {
    .name = "zipkin",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
