/* query: see query.h.
 *
 * Behaviour matched (Prometheus 3 web/api/v1/api.go):
 * - query: limit, then time (default now; errors `invalid parameter "time": invalid time
 *   value for 'time': cannot parse "x" to a valid timestamp`), timeout, lookback_delta,
 *   then the query itself (`invalid parameter "query": 1:3: parse error: ...`).
 * - query_range: start and end are required (`invalid parameter "start": cannot parse ""
 *   to a valid timestamp`), "end timestamp must not be before start time", step as float
 *   seconds or a duration, "zero or negative query resolution step widths are not
 *   accepted. Try a positive integer", at most 11,000 points per series, and only scalar
 *   or instant-vector expressions (`invalid expression type "range vector" for range
 *   query, must be Scalar or instant Vector`).
 * - timeout: a deadline for this query; it can only shorten query.timeout from the
 *   config. A timeout of zero or less has already passed: the answer is the timeout
 *   error once the query parsed.
 * - limit > 0 keeps the first limit series of a vector or matrix and adds the warning
 *   "results truncated due to limit".
 * - Errors out of evaluation are errorType "execution" (422) unless they are a timeout
 *   ("timeout", 503) or a storage failure ("internal", 500); parameter and parse errors
 *   are "bad_data" (400). "canceled" (499) exists for completeness: the HTTP front end
 *   does not tell handlers that a client went away, so queries run to their deadline.
 * - Numbers: timestamps are seconds with three decimals when the milliseconds are not
 *   zero (jsonutil.MarshalTimestamp); values are strings in Go's 'f' format, 'e' below
 *   1e-6 and from 1e21 (jsonutil.MarshalValue).
 * - query_exemplars: the union of the exemplars of every series any selector in the
 *   query matches, in [start, end]: [{"seriesLabels":{..},"exemplars":[{"labels":{..},
 *   "value":"1","timestamp":1700000000.5}]}], series sorted by labels. A query without
 *   selectors answers {"status":"success"} (Prometheus returns no data then).
 * - status/tsdb: Prometheus reports its head block; Vigil keeps every series in one
 *   index, so the figures cover every series known (tsdb_cardinality).
 * - status/flags: Vigil has config keys rather than flags; they are listed as
 *   "section.key": "value", the effective values (config_dump).
 * - Not supported: stats=all (Prometheus then adds a "stats" object with timings and
 *   sample counts) and per-step stats. When the same parameter comes both in the URL
 *   and in a form body, the URL's wins (Go's FormValue prefers the body).
 * - format_query prints Prometheus's Prettify layout (promql_prettify): one line up to
 *   100 characters, longer expressions split over indented lines. */
#include "query.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/tsdb/tsdb.h"
#include "../promql/functions.h"
#include "prometheus.h"

#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TRUNCATED "results truncated due to limit"
#define MAX_POINTS 11000
#define NS_PER_MS 1000000LL
#define TSDB_STATUS_LIMIT 10

/* ---- errors ---- */

static const struct {
    const char *name;
    int status;
} error_types[] = {
    [QUERY_BAD_DATA] = { "bad_data", 400 },
    [QUERY_EXECUTION] = { "execution", 422 },
    [QUERY_TIMEOUT] = { "timeout", 503 },
    [QUERY_CANCELED] = { "canceled", 499 }, /* nginx's "client closed request", as Prometheus */
    [QUERY_INTERNAL] = { "internal", 500 },
};
#define NERROR_TYPES (sizeof error_types / sizeof error_types[0])

const char *query_error_type_name(enum query_error_type t)
{
    return (size_t)t < NERROR_TYPES ? error_types[t].name : "internal";
}

int query_error_status(enum query_error_type t)
{
    return (size_t)t < NERROR_TYPES ? error_types[t].status : 500;
}

enum query_error_type query_error_type(int code)
{
    switch (code) {
    case VG_EOVERLOAD: return QUERY_TIMEOUT;
    case VG_EIO:
    case VG_ENOMEM:
    case VG_EINTERNAL: return QUERY_INTERNAL;
    default: return QUERY_EXECUTION;
    }
}

void query_resp_error(struct http_response *resp, enum query_error_type t, const char *msg)
{
    resp->status = query_error_status(t);
    resp->content_type = "application/json";
    vg_buf_reset(&resp->body);
    vg_buf_puts(&resp->body, "{\"status\":\"error\",\"errorType\":");
    const char *name = query_error_type_name(t);
    vg_buf_json_str(&resp->body, name, strlen(name));
    vg_buf_puts(&resp->body, ",\"error\":");
    vg_buf_json_str(&resp->body, msg, strlen(msg));
    vg_buf_putc(&resp->body, '}');
}

static void bad_data(struct http_response *resp, const struct vg_err *err)
{
    query_resp_error(resp, QUERY_BAD_DATA, err->msg);
}

/* A failed handler's answer for err: bad_data for VG_EINVAL, else per the code. */
static void resp_for(struct http_response *resp, const struct vg_err *err)
{
    enum query_error_type t = err->code == VG_EINVAL ? QUERY_BAD_DATA : query_error_type(err->code);
    if (t == QUERY_INTERNAL)
        vg_log(VG_LOG_ERROR, "query", "query failed", "error", err->msg, NULL);
    query_resp_error(resp, t, err->msg);
}

/* Finishes resp with the body in b (or an internal error when b failed). */
static void send(struct http_response *resp, struct vg_buf *b)
{
    if (vg_buf_failed(b)) {
        vg_buf_free(b);
        query_resp_error(resp, QUERY_INTERNAL, "out of memory writing the response");
        return;
    }
    vg_buf_free(&resp->body);
    resp->body = *b;
    resp->status = 200;
    resp->content_type = "application/json";
}

/* ---- parameters ---- */

/* Go's strconv.ParseFloat accepts decimal forms and the words inf, infinity and nan
 * (any case, optionally signed); the API takes those as seconds. Hex floats need a 'p'
 * exponent in Go and make no sense as durations: left to the duration syntax (which
 * refuses them). */
static bool float_syntax(const char *s)
{
    const char *p = s + (*s == '+' || *s == '-');
    if (!strcasecmp(p, "inf") || !strcasecmp(p, "infinity") || !strcasecmp(p, "nan"))
        return true;
    size_t nd = 0;
    while (isdigit((unsigned char)*p))
        p++, nd++;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            nd++;
    if (nd == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '+' || *p == '-';
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

int query_parse_duration(const char *s, int64_t *ns, struct vg_err *err)
{
    *ns = 0; /* defined on every path, so no caller can read garbage after an error */
    if (float_syntax(s)) {
        double d = strtod(s, NULL) * 1e9;
        if (isnan(d))
            return vg_err_set(err, VG_EINVAL, "cannot parse \"%.64s\" to a valid duration", s);
        if (d >= 9223372036854775807.0 || d < -9223372036854775808.0)
            return vg_err_set(err, VG_EINVAL,
                              "cannot parse \"%.64s\" to a valid duration. It overflows int64", s);
        *ns = (int64_t)d;
        return 0;
    }
    int64_t ms;
    struct vg_err ignored;
    if (*s && config_parse_duration(s, &ms, &ignored) == 0 && ms <= INT64_MAX / NS_PER_MS) {
        *ns = ms * NS_PER_MS;
        return 0;
    }
    return vg_err_set(err, VG_EINVAL, "cannot parse \"%.64s\" to a valid duration", s);
}

static const char *arg(const struct http_request *req, const char *name)
{
    const char *s = http_arg_get(req, name);
    return s ? s : "";
}

/* A required time: `invalid parameter "start": cannot parse "" to a valid timestamp`. */
static int time_required(const struct http_request *req, const char *name, int64_t *ms,
                         struct vg_err *err)
{
    if (prometheus_parse_time(arg(req, name), ms, err) < 0)
        return vg_err_prefix(err, "invalid parameter \"%s\"", name);
    return 0;
}

/* An optional time as Prometheus's parseTimeParam reads it, with its wording. */
static int time_optional(const struct http_request *req, const char *name, int64_t def,
                         int64_t *ms, struct vg_err *err)
{
    const char *s = arg(req, name);
    if (!*s) {
        *ms = def;
        return 0;
    }
    if (prometheus_parse_time(s, ms, err) < 0)
        return vg_err_prefix(err, "invalid parameter \"%s\": invalid time value for '%s'", name,
                             name);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Engine options from the config, then the request's timeout and lookback_delta.
 * *expired is set when the request's deadline has already passed. */
static int engine_opts(const struct vigil *v, const struct http_request *req,
                       struct promql_opts *o, bool *expired, struct vg_err *err)
{
    promql_opts_default(o);
    if (v->cfg) {
        o->timeout_ms = v->cfg->query_timeout_ms;
        o->max_samples = (uint64_t)v->cfg->query_max_samples;
        o->lookback_ms = v->cfg->query_lookback_delta_ms;
    }
    *expired = false;
    const char *to = arg(req, "timeout");
    int64_t ns;
    if (*to) {
        if (query_parse_duration(to, &ns, err) < 0)
            return vg_err_prefix(err, "invalid parameter \"timeout\"");
        int64_t ms = ns / NS_PER_MS + (ns % NS_PER_MS > 0); /* round up: 1ns is not 0 */
        if (ns <= 0)
            *expired = true;
        else if (o->timeout_ms == 0 || ms < o->timeout_ms)
            o->timeout_ms = ms;
    }
    const char *lb = arg(req, "lookback_delta");
    if (*lb) {
        if (query_parse_duration(lb, &ns, err) < 0)
            return vg_err_prefix(err, "error parsing lookback delta duration");
        /* Prometheus: zero (or less) means the engine's default. */
        if (ns / NS_PER_MS > 0)
            o->lookback_ms = ns / NS_PER_MS;
    }
    return 0;
}

/* The query parameter parsed; errors read `invalid parameter "query": ...`. */
static struct promql_expr *parse_query_param(const struct http_request *req, struct vg_err *err)
{
    const char *q = arg(req, "query");
    struct promql_expr *e = promql_parse(q, strlen(q), err);
    if (!e) {
        if (err->code == VG_EINVAL)
            vg_err_prefix(err, "invalid parameter \"query\"");
        else
            vg_err_prefix(err, "parsing the query");
    }
    return e;
}

/* ---- JSON ---- */

/* Seconds, and the milliseconds as three decimals when not zero ("1795674840",
 * "12.500"), without printf: a range answer writes one per point, and two
 * vg_buf_printf calls were most of the cost of a point. */
void query_json_time(struct vg_buf *b, int64_t ms)
{
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    char tmp[32];
    size_t i = sizeof tmp;
    unsigned frac = (unsigned)(u % 1000);
    if (frac) {
        for (int k = 0; k < 3; k++, frac /= 10)
            tmp[--i] = (char)('0' + frac % 10);
        tmp[--i] = '.';
    }
    uint64_t sec = u / 1000;
    do {
        tmp[--i] = (char)('0' + sec % 10);
        sec /= 10;
    } while (sec);
    if (ms < 0)
        tmp[--i] = '-';
    vg_buf_append(b, tmp + i, sizeof tmp - i);
}

void query_json_value(struct vg_buf *b, double v)
{
    double a = fabs(v);
    vg_buf_putc(b, '"');
    /* Go's 'g' with shortest digits is the 'e' form in exactly these ranges. */
    if (a != 0 && isfinite(a) && (a < 1e-6 || a >= 1e21))
        vg_buf_prom_float(b, v);
    else
        vg_buf_json_float(b, v);
    vg_buf_putc(b, '"');
}

static void json_point(struct vg_buf *b, const struct promql_point *p)
{
    vg_buf_putc(b, '[');
    query_json_time(b, p->t);
    vg_buf_putc(b, ',');
    query_json_value(b, p->v);
    vg_buf_putc(b, ']');
}

/* Whether s can go into a JSON string as it is: printable ASCII without '"' or '\\'. */
static bool json_plain(struct vg_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

/* The label set as prometheus_json_labels writes it, in one reservation and without a
 * call per byte run when nothing needs escaping (label sets almost never do): that
 * writer was a third of the answer's cost, and the answer a tenth of an instant
 * selector over 800 series. */
static void json_labels(struct vg_buf *b, const struct label *ls, size_t n)
{
    size_t need = 2;
    for (size_t i = 0; i < n; i++) {
        if (!json_plain(ls[i].name) || !json_plain(ls[i].value)) {
            prometheus_json_labels(b, ls, n);
            return;
        }
        need += ls[i].name.len + ls[i].value.len + 6; /* "name":"value", */
    }
    if (!vg_buf_reserve(b, need))
        return;
    char *p = b->p + b->len;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ',';
        *p++ = '"';
        if (ls[i].name.len)
            memcpy(p, ls[i].name.p, ls[i].name.len);
        p += ls[i].name.len;
        memcpy(p, "\":\"", 3);
        p += 3;
        if (ls[i].value.len)
            memcpy(p, ls[i].value.p, ls[i].value.len);
        p += ls[i].value.len;
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    b->len = (size_t)(p - b->p);
}

static void json_series(struct vg_buf *b, const struct promql_series *s, bool matrix)
{
    vg_buf_puts(b, "{\"metric\":");
    json_labels(b, s->labels, s->nlabels);
    if (matrix) {
        vg_buf_puts(b, ",\"values\":[");
        for (size_t i = 0; i < s->npoints; i++) {
            if (i)
                vg_buf_putc(b, ',');
            json_point(b, &s->points[i]);
        }
        vg_buf_puts(b, "]}");
    } else {
        vg_buf_puts(b, ",\"value\":");
        if (s->npoints)
            json_point(b, &s->points[0]);
        else
            vg_buf_puts(b, "null");
        vg_buf_putc(b, '}');
    }
}

void query_json_result(struct vg_buf *b, const struct promql_result *r, size_t limit,
                       bool *truncated)
{
    *truncated = false;
    vg_buf_puts(b, "{\"resultType\":\"");
    vg_buf_puts(b, promql_type_name(r->type));
    vg_buf_puts(b, "\",\"result\":");
    switch (r->type) {
    case PT_SCALAR:
        json_point(b, &r->scalar);
        break;
    case PT_STRING:
        vg_buf_putc(b, '[');
        query_json_time(b, r->string_t);
        vg_buf_putc(b, ',');
        vg_buf_json_str(b, r->string ? r->string : "", r->string ? strlen(r->string) : 0);
        vg_buf_putc(b, ']');
        break;
    default: {
        size_t n = r->nseries;
        if (limit && n > limit) {
            n = limit;
            *truncated = true;
        }
        vg_buf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                vg_buf_putc(b, ',');
            json_series(b, &r->series[i], r->type == PT_MATRIX);
        }
        vg_buf_putc(b, ']');
    }
    }
    vg_buf_putc(b, '}');
}

/* ,"name":["a","b"] when n > 0 (plus extra when given). */
static void json_notes(struct vg_buf *b, const char *name, char *const *v, size_t n,
                       const char *extra)
{
    if (n == 0 && !extra)
        return;
    vg_buf_printf(b, ",\"%s\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_json_str(b, v[i], strlen(v[i]));
    }
    if (extra) {
        if (n)
            vg_buf_putc(b, ',');
        vg_buf_json_str(b, extra, strlen(extra));
    }
    vg_buf_putc(b, ']');
}

/* The whole success body of a query result. */
static void json_answer(struct vg_buf *b, const struct promql_result *r, size_t limit)
{
    bool truncated;
    prometheus_json_begin(b);
    query_json_result(b, r, limit, &truncated);
    json_notes(b, "warnings", r->warnings, r->nwarnings, truncated ? TRUNCATED : NULL);
    json_notes(b, "infos", r->infos, r->ninfos, NULL);
    vg_buf_putc(b, '}');
}

/* ---- the syntax tree as JSON (Prometheus's translateAST; Go sorts map keys) ---- */

static void key(struct vg_buf *b, const char *k, bool first)
{
    if (!first)
        vg_buf_putc(b, ',');
    vg_buf_putc(b, '"');
    vg_buf_puts(b, k);
    vg_buf_puts(b, "\":");
}

static void json_cstr(struct vg_buf *b, const char *s)
{
    vg_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void kv_str(struct vg_buf *b, const char *k, const char *s, bool first)
{
    key(b, k, first);
    json_cstr(b, s);
}

static void kv_int(struct vg_buf *b, const char *k, int64_t v)
{
    key(b, k, false);
    vg_buf_printf(b, "%lld", (long long)v);
}

static void kv_node(struct vg_buf *b, const char *k, const struct promql_node *n, bool first)
{
    key(b, k, first);
    query_json_ast(b, n);
}

static void json_strings(struct vg_buf *b, const struct promql_strings *s)
{
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        json_cstr(b, s->v[i]);
    }
    vg_buf_putc(b, ']');
}

static void json_matchers(struct vg_buf *b, struct matcher *const *ms, size_t n)
{
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_putc(b, '{');
        kv_str(b, "name", ms[i]->name, true);
        kv_str(b, "type", matcher_op_str(ms[i]->op), false);
        key(b, "value", false);
        vg_buf_json_str(b, ms[i]->value, ms[i]->value_len);
        vg_buf_putc(b, '}');
    }
    vg_buf_putc(b, ']');
}

/* "startOrEnd":..,["step":..,]"timestamp":.. of an @ modifier (after the caller's
 * previous key); a subquery's step sorts between the two. */
static void json_at(struct vg_buf *b, enum promql_at at, int64_t at_ms, const int64_t *step)
{
    key(b, "startOrEnd", false);
    vg_buf_puts(b, at == AT_START ? "\"start\"" : at == AT_END ? "\"end\"" : "null");
    if (step)
        kv_int(b, "step", *step);
    key(b, "timestamp", false);
    if (at == AT_TIMESTAMP)
        vg_buf_printf(b, "%lld", (long long)at_ms);
    else
        vg_buf_puts(b, "null");
}

static void json_type_end(struct vg_buf *b, const char *type)
{
    kv_str(b, "type", type, false);
    vg_buf_putc(b, '}');
}

static void json_selector(struct vg_buf *b, const struct promql_node *vs, const int64_t *range)
{
    vg_buf_putc(b, '{');
    key(b, "matchers", true);
    json_matchers(b, vs->sel.ms, vs->sel.nms);
    kv_str(b, "name", vs->sel.name, false);
    kv_int(b, "offset", vs->sel.offset_ms);
    if (range)
        kv_int(b, "range", *range);
    json_at(b, vs->sel.at, vs->sel.at_ms, NULL);
    json_type_end(b, range ? "matrixSelector" : "vectorSelector");
}

static void json_call(struct vg_buf *b, const struct promql_node *n)
{
    const struct promql_function *f = n->call.fn;
    vg_buf_putc(b, '{');
    key(b, "args", true);
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < n->call.nargs; i++) {
        if (i)
            vg_buf_putc(b, ',');
        query_json_ast(b, n->call.args[i]);
    }
    vg_buf_putc(b, ']');
    key(b, "func", false);
    vg_buf_putc(b, '{');
    key(b, "argTypes", true);
    vg_buf_putc(b, '[');
    for (int i = 0; f && i < f->nargs; i++) {
        if (i)
            vg_buf_putc(b, ',');
        json_cstr(b, promql_type_name(f->args[i]));
    }
    vg_buf_putc(b, ']');
    kv_str(b, "name", f ? f->name : "", false);
    kv_str(b, "returnType", promql_type_name(f ? f->ret : PT_NONE), false);
    kv_int(b, "variadic", f ? f->variadic : 0);
    vg_buf_putc(b, '}');
    json_type_end(b, "call");
}

static const char *card_name(enum promql_card c)
{
    switch (c) {
    case CARD_ONE_TO_ONE: return "one-to-one";
    case CARD_MANY_TO_ONE: return "many-to-one";
    case CARD_ONE_TO_MANY: return "one-to-many";
    case CARD_MANY_TO_MANY: return "many-to-many";
    }
    return "one-to-one";
}

static void json_binary(struct vg_buf *b, const struct promql_node *n)
{
    vg_buf_putc(b, '{');
    key(b, "bool", true);
    vg_buf_puts(b, n->bin.return_bool ? "true" : "false");
    kv_node(b, "lhs", n->bin.lhs, false);
    key(b, "matching", false);
    const struct promql_matching *m = n->bin.matching;
    if (m) {
        vg_buf_putc(b, '{');
        kv_str(b, "card", card_name(m->card), true);
        key(b, "include", false);
        json_strings(b, &m->include);
        key(b, "labels", false);
        json_strings(b, &m->labels);
        key(b, "on", false);
        vg_buf_puts(b, m->on ? "true" : "false");
        vg_buf_putc(b, '}');
    } else {
        vg_buf_puts(b, "null");
    }
    kv_str(b, "op", promql_binop_str(n->bin.op), false);
    kv_node(b, "rhs", n->bin.rhs, false);
    json_type_end(b, "binaryExpr");
}

void query_json_ast(struct vg_buf *b, const struct promql_node *n)
{
    if (!n) {
        vg_buf_puts(b, "null");
        return;
    }
    switch (n->kind) {
    case PN_NUMBER:
        vg_buf_puts(b, "{\"type\":\"numberLiteral\",\"val\":\"");
        vg_buf_json_float(b, n->number);
        vg_buf_puts(b, "\"}");
        return;
    case PN_STRING:
        vg_buf_puts(b, "{\"type\":\"stringLiteral\",\"val\":");
        vg_buf_json_str(b, n->string.p, n->string.len);
        vg_buf_putc(b, '}');
        return;
    case PN_VECTOR_SELECTOR:
        json_selector(b, n, NULL);
        return;
    case PN_MATRIX_SELECTOR:
        json_selector(b, n->msel.vs, &n->msel.range_ms);
        return;
    case PN_SUBQUERY:
        vg_buf_putc(b, '{');
        kv_node(b, "expr", n->subq.expr, true);
        kv_int(b, "offset", n->subq.offset_ms);
        kv_int(b, "range", n->subq.range_ms);
        json_at(b, n->subq.at, n->subq.at_ms, &n->subq.step_ms);
        json_type_end(b, "subquery");
        return;
    case PN_CALL:
        json_call(b, n);
        return;
    case PN_AGGREGATE:
        vg_buf_putc(b, '{');
        kv_node(b, "expr", n->agg.expr, true);
        key(b, "grouping", false);
        json_strings(b, &n->agg.grouping);
        kv_str(b, "op", promql_aggop_str(n->agg.op), false);
        kv_node(b, "param", n->agg.param, false);
        kv_str(b, "type", "aggregation", false);
        key(b, "without", false);
        vg_buf_puts(b, n->agg.without ? "true}" : "false}");
        return;
    case PN_BINARY:
        json_binary(b, n);
        return;
    case PN_UNARY:
        vg_buf_putc(b, '{');
        kv_node(b, "expr", n->unary.expr, true);
        kv_str(b, "op", n->unary.negate ? "-" : "+", false);
        json_type_end(b, "unaryExpr");
        return;
    case PN_PAREN:
        vg_buf_putc(b, '{');
        kv_node(b, "expr", n->paren.expr, true);
        json_type_end(b, "parenExpr");
        return;
    case PN_STEP_INVARIANT:
        break;
    }
    vg_buf_puts(b, "null");
}

void query_format_duration(struct vg_buf *b, int64_t ms)
{
    /* model.Duration.String: years and weeks only when they divide exactly. */
    static const struct {
        const char *unit;
        int64_t ms;
        bool exact;
    } units[] = {
        { "y", 365LL * 86400000, true }, { "w", 7LL * 86400000, true },
        { "d", 86400000, false },        { "h", 3600000, false },
        { "m", 60000, false },           { "s", 1000, false },
        { "ms", 1, false },
    };
    if (ms <= 0) { /* Prometheus durations are never negative */
        vg_buf_puts(b, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (units[i].exact && ms % units[i].ms)
            continue;
        if (ms / units[i].ms > 0) {
            vg_buf_printf(b, "%lld%s", (long long)(ms / units[i].ms), units[i].unit);
            ms %= units[i].ms;
        }
    }
}

/* ---- metrics ---- */

static const double duration_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                           1, 2.5, 5, 10, 30, 60, 120 };

/* Counts one answered request: outcome "success" or the errorType its status stands for. */
static void count(struct vigil *v, const char *endpoint, int status, double seconds)
{
    static const char *const es[] = { "endpoint", "status" };
    static const char *const e[] = { "endpoint" };
    if (!v->metrics)
        return;
    struct metric_family *reqs = metrics_family(
        v->metrics, "vigil_query_requests_total",
        "PromQL API requests, by endpoint and outcome (success or Prometheus's errorType).",
        METRIC_COUNTER, es, 2, NULL, 0);
    struct metric_family *dur = metrics_family(
        v->metrics, "vigil_query_duration_seconds",
        "Time to answer a PromQL API request, by endpoint.", METRIC_HISTOGRAM, e, 1,
        duration_buckets, sizeof duration_buckets / sizeof duration_buckets[0]);
    const char *outcome = status == 200 ? "success" : "internal";
    for (size_t i = 0; status != 200 && i < NERROR_TYPES; i++)
        if (error_types[i].status == status)
            outcome = error_types[i].name;
    if (reqs)
        metric_add(reqs, 1, endpoint, outcome);
    if (dur)
        metric_observe(dur, seconds, endpoint);
}

static void counted(struct vigil *v, struct http_request *req, struct http_response *resp,
                    const char *endpoint, http_handler_fn fn)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    fn(v, req, resp);
    clock_gettime(CLOCK_MONOTONIC, &b);
    count(v, endpoint, resp->status,
          (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
}

/* ---- query and query_range ---- */

#define EXPIRED_MSG "query timed out in query execution"

/* VG_EOVERLOAD with the timeout message when the deadline has already passed, else 0.
 * The constant return shows the analyzer (and the reader) that r stays unread then. */
static int expired_rc(bool expired, struct vg_err *err)
{
    if (!expired)
        return 0;
    (void)vg_err_set(err, VG_EOVERLOAD, EXPIRED_MSG);
    return VG_EOVERLOAD;
}

/* Sends r (or the evaluation error) and frees e and r. */
static void answer(struct http_response *resp, struct promql_expr *e, struct promql_result *r,
                   int rc, const struct vg_err *err, size_t limit)
{
    if (rc < 0) {
        enum query_error_type t = query_error_type(err->code);
        if (t == QUERY_INTERNAL)
            vg_log(VG_LOG_ERROR, "query", "query failed", "error", err->msg, NULL);
        query_resp_error(resp, t, err->msg);
    } else {
        struct vg_buf b;
        vg_buf_init(&b);
        json_answer(&b, r, limit);
        send(resp, &b);
    }
    promql_result_free(r);
    promql_expr_free(e);
}

static void do_query(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    size_t limit;
    int64_t t;
    struct promql_opts o;
    bool expired;
    if (prometheus_limit_param(req, &limit, &err) < 0 ||
        time_optional(req, "time", now_ms(), &t, &err) < 0 ||
        engine_opts(v, req, &o, &expired, &err) < 0) {
        bad_data(resp, &err);
        return;
    }
    struct promql_expr *e = parse_query_param(req, &err);
    if (!e) {
        resp_for(resp, &err);
        return;
    }
    struct promql_result *r = NULL;
    int rc = expired_rc(expired, &err);
    if (rc == 0) {
        struct querier q;
        querier_tsdb(v->tsdb, &q);
        rc = promql_eval_instant(&o, &q, e, t, &r, &err);
    }
    answer(resp, e, r, rc, &err, limit);
}

/* Prometheus's parser.DocumentedType. */
static const char *documented_type(enum promql_type t)
{
    switch (t) {
    case PT_VECTOR: return "instant vector";
    case PT_MATRIX: return "range vector";
    default: return promql_type_name(t);
    }
}

/* start, end and step of a range query, checked as Prometheus checks them. */
static int range_params(const struct http_request *req, int64_t *start, int64_t *end,
                        int64_t *step_ms, struct vg_err *err)
{
    int64_t step_ns;
    if (time_required(req, "start", start, err) < 0 || time_required(req, "end", end, err) < 0)
        return VG_EINVAL;
    if (*end < *start)
        return vg_err_set(err, VG_EINVAL, "end timestamp must not be before start time");
    if (query_parse_duration(arg(req, "step"), &step_ns, err) < 0)
        return vg_err_prefix(err, "invalid parameter \"step\"");
    if (step_ns <= 0)
        return vg_err_set(err, VG_EINVAL, "invalid parameter \"step\": zero or negative query "
                                          "resolution step widths are not accepted. Try a "
                                          "positive integer");
    /* end.Sub(start)/step in Go: nanoseconds, saturating at the int64 range. */
    long double span = ((long double)*end - (long double)*start) * NS_PER_MS;
    if (span > (long double)INT64_MAX)
        span = (long double)INT64_MAX;
    if (floorl(span / step_ns) > MAX_POINTS)
        return vg_err_set(err, VG_EINVAL, "exceeded maximum resolution of 11,000 points per "
                                          "timeseries. Try decreasing the query resolution "
                                          "(?step=XX)");
    /* The engine steps in whole milliseconds (Prometheus truncates the same way); a
     * sub-millisecond step can only get here with start == end or a tiny range. */
    *step_ms = step_ns / NS_PER_MS > 0 ? step_ns / NS_PER_MS : 1;
    return 0;
}

static void do_query_range(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    size_t limit;
    int64_t start = 0, end = 0, step = 0;
    struct promql_opts o;
    bool expired;
    if (prometheus_limit_param(req, &limit, &err) < 0 ||
        range_params(req, &start, &end, &step, &err) < 0 ||
        engine_opts(v, req, &o, &expired, &err) < 0) {
        bad_data(resp, &err);
        return;
    }
    struct promql_expr *e = parse_query_param(req, &err);
    if (!e) {
        resp_for(resp, &err);
        return;
    }
    enum promql_type type = promql_node_type(e->root);
    if (type != PT_SCALAR && type != PT_VECTOR) {
        vg_err_set(&err, VG_EINVAL, "invalid parameter \"query\": invalid expression type "
                                    "\"%s\" for range query, must be Scalar or instant Vector",
                   documented_type(type));
        promql_expr_free(e);
        bad_data(resp, &err);
        return;
    }
    struct promql_result *r = NULL;
    int rc = expired_rc(expired, &err);
    if (rc == 0) {
        struct querier q;
        querier_tsdb(v->tsdb, &q);
        rc = promql_eval_range(&o, &q, e, start, end, step, &r, &err);
    }
    answer(resp, e, r, rc, &err, limit);
}

/* ---- format_query and parse_query ---- */

static void do_format_or_parse(struct http_request *req, struct http_response *resp, bool ast)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct promql_expr *e = parse_query_param(req, &err);
    if (!e) {
        resp_for(resp, &err);
        return;
    }
    struct vg_buf b, text;
    vg_buf_init(&b);
    vg_buf_init(&text);
    prometheus_json_begin(&b);
    if (ast) {
        query_json_ast(&b, e->root);
    } else {
        promql_prettify(e->root, &text);
        vg_buf_json_str(&b, text.p ? text.p : "", text.len);
        if (vg_buf_failed(&text))
            b.failed = true;
    }
    vg_buf_putc(&b, '}');
    vg_buf_free(&text);
    promql_expr_free(e);
    send(resp, &b);
}

static void do_format_query(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    do_format_or_parse(req, resp, false);
}

static void do_parse_query(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    do_format_or_parse(req, resp, true);
}

/* ---- query_exemplars ---- */

struct nodes {
    const struct promql_node **v;
    size_t n, cap;
    bool failed;
};

/* Every vector selector of the tree (also those inside matrix selectors), in order. */
static void collect_selectors(const struct promql_node *n, struct nodes *out)
{
    if (!n || out->failed)
        return;
    switch (n->kind) {
    case PN_VECTOR_SELECTOR:
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 8;
            const struct promql_node **nv = vg_realloc(out->v, cap * sizeof *nv);
            if (!nv) {
                out->failed = true;
                return;
            }
            out->v = nv;
            out->cap = cap;
        }
        out->v[out->n++] = n;
        return;
    case PN_MATRIX_SELECTOR: collect_selectors(n->msel.vs, out); return;
    case PN_SUBQUERY: collect_selectors(n->subq.expr, out); return;
    case PN_CALL:
        for (size_t i = 0; i < n->call.nargs; i++)
            collect_selectors(n->call.args[i], out);
        return;
    case PN_AGGREGATE:
        collect_selectors(n->agg.param, out);
        collect_selectors(n->agg.expr, out);
        return;
    case PN_BINARY:
        collect_selectors(n->bin.lhs, out);
        collect_selectors(n->bin.rhs, out);
        return;
    case PN_UNARY: collect_selectors(n->unary.expr, out); return;
    case PN_PAREN: collect_selectors(n->paren.expr, out); return;
    default: return;
    }
}

/* One exemplar with the series it belongs to. */
struct ex_ref {
    const struct tsdb_series *s;
    const struct tsdb_exemplar_out *x;
};

static int cmp_series_id(const void *a, const void *b)
{
    uint64_t x = (*(const struct tsdb_series *const *)a)->id;
    uint64_t y = (*(const struct tsdb_series *const *)b)->id;
    return x < y ? -1 : x > y;
}

static int cmp_ex_ref(const void *a, const void *b)
{
    const struct ex_ref *x = a, *y = b;
    int c = labels_cmp(x->s->labels, x->s->nlabels, y->s->labels, y->s->nlabels);
    if (c)
        return c;
    if (x->x->t != y->x->t)
        return x->x->t < y->x->t ? -1 : 1;
    return (x->x->v > y->x->v) - (x->x->v < y->x->v);
}

/* Appends the exemplars of one selector's answer to refs (grown as needed). */
static int add_refs(const struct tsdb_series_set *set, const struct tsdb_exemplar_set *ex,
                    struct ex_ref **refs, size_t *n)
{
    if (ex->n == 0)
        return 0;
    const struct tsdb_series **by_id = vg_malloc((set->n ? set->n : 1) * sizeof *by_id);
    struct ex_ref *nr = vg_realloc(*refs, (*n + ex->n) * sizeof *nr);
    if (!by_id || !nr) {
        vg_free(by_id);
        if (nr)
            *refs = nr;
        return VG_ENOMEM;
    }
    *refs = nr;
    for (size_t i = 0; i < set->n; i++)
        by_id[i] = &set->v[i];
    qsort(by_id, set->n, sizeof *by_id, cmp_series_id);
    for (size_t i = 0; i < ex->n; i++) {
        struct tsdb_series key = { .id = ex->v[i].series_id };
        const struct tsdb_series *kp = &key;
        const struct tsdb_series **hit = bsearch(&kp, by_id, set->n, sizeof *by_id, cmp_series_id);
        if (hit)
            nr[(*n)++] = (struct ex_ref){ *hit, &ex->v[i] };
    }
    vg_free(by_id);
    return 0;
}

static void json_exemplars(struct vg_buf *b, struct ex_ref *refs, size_t n)
{
    if (n > 1)
        qsort(refs, n, sizeof *refs, cmp_ex_ref);
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        bool new_series = i == 0 || refs[i].s->id != refs[i - 1].s->id;
        if (!new_series && refs[i].x->t == refs[i - 1].x->t)
            continue; /* the same exemplar found through two selectors */
        if (new_series) {
            if (i)
                vg_buf_puts(b, "]},");
            vg_buf_puts(b, "{\"seriesLabels\":");
            prometheus_json_labels(b, refs[i].s->labels, refs[i].s->nlabels);
            vg_buf_puts(b, ",\"exemplars\":[");
        } else {
            vg_buf_putc(b, ',');
        }
        vg_buf_puts(b, "{\"labels\":");
        prometheus_json_labels(b, refs[i].x->labels, refs[i].x->nlabels);
        vg_buf_puts(b, ",\"value\":");
        query_json_value(b, refs[i].x->v);
        vg_buf_puts(b, ",\"timestamp\":");
        query_json_time(b, refs[i].x->t);
        vg_buf_putc(b, '}');
    }
    if (n)
        vg_buf_puts(b, "]}");
    vg_buf_putc(b, ']');
}

/* The exemplars of every selector in sels, written as data into b. */
static int exemplars_answer(struct vigil *v, const struct nodes *sels, int64_t start,
                            int64_t end, struct vg_buf *b, struct vg_err *err)
{
    struct tsdb_series_set **sets = vg_calloc(sels->n, sizeof *sets);
    struct tsdb_exemplar_set **exs = vg_calloc(sels->n, sizeof *exs);
    struct ex_ref *refs = NULL;
    size_t nrefs = 0;
    int rc = 0;
    if (!sets || !exs) {
        (void)vg_err_set(err, VG_ENOMEM, "out of memory");
        rc = VG_ENOMEM; /* constant, so the loop below evidently never runs without them */
    }
    for (size_t i = 0; rc == 0 && i < sels->n; i++) {
        const struct promql_node *s = sels->v[i];
        /* Labels of every matching series: an exemplar may be older than the samples
         * kept in [start, end]. */
        rc = tsdb_select(v->tsdb, s->sel.ms, s->sel.nms, INT64_MIN, INT64_MAX, &sets[i], err);
        if (rc == 0)
            rc = tsdb_exemplars(v->tsdb, s->sel.ms, s->sel.nms, start, end, &exs[i], err);
        if (rc == 0 && add_refs(sets[i], exs[i], &refs, &nrefs) < 0)
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    if (rc == 0) {
        prometheus_json_begin(b);
        json_exemplars(b, refs, nrefs);
        vg_buf_putc(b, '}');
    }
    vg_free(refs);
    for (size_t i = 0; i < sels->n; i++) {
        if (sets)
            tsdb_series_set_free(sets[i]);
        if (exs)
            tsdb_exemplar_set_free(exs[i]);
    }
    vg_free(sets);
    vg_free(exs);
    return rc;
}

static void do_query_exemplars(struct vigil *v, struct http_request *req,
                               struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    int64_t start, end;
    if (time_optional(req, "start", PROMETHEUS_MIN_TIME_MS, &start, &err) < 0 ||
        time_optional(req, "end", PROMETHEUS_MAX_TIME_MS, &end, &err) < 0) {
        bad_data(resp, &err);
        return;
    }
    if (end < start) {
        vg_err_set(&err, VG_EINVAL, "end timestamp must not be before start timestamp");
        bad_data(resp, &err);
        return;
    }
    const char *q = arg(req, "query");
    struct promql_expr *e = promql_parse(q, strlen(q), &err);
    if (!e) {
        resp_for(resp, &err); /* Prometheus adds no "invalid parameter" prefix here */
        return;
    }
    struct nodes sels = { 0 };
    collect_selectors(e->root, &sels);
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = 0;
    if (sels.failed)
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory");
    else if (sels.n == 0)
        vg_buf_puts(&b, "{\"status\":\"success\"}");
    else
        rc = exemplars_answer(v, &sels, start, end, &b, &err);
    vg_free(sels.v);
    promql_expr_free(e);
    if (rc < 0) {
        vg_buf_free(&b);
        resp_for(resp, &err);
        return;
    }
    send(resp, &b);
}

/* ---- status ---- */

/* RFC 3339 in UTC with the fraction trimmed as Go's RFC3339Nano prints it. */
static void json_rfc3339(struct vg_buf *b, int64_t ms)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    char s[64];
    if (!gmtime_r(&secs, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        vg_buf_puts(b, "\"0001-01-01T00:00:00Z\"");
        return;
    }
    vg_buf_printf(b, "\"%s", s);
    if (frac > 0 && frac < 1000) {
        /* milliseconds with trailing zeros trimmed: .5, .25, .125 */
        char f[5] = { '.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                      (char)('0' + frac % 10), '\0' };
        size_t l = 4;
        while (l > 1 && f[l - 1] == '0')
            l--;
        vg_buf_append(b, f, l);
    }
    vg_buf_puts(b, "Z\"");
}

static long count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void do_runtimeinfo(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    char cwd[4096], host[256];
    if (!getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    if (gethostname(host, sizeof host) != 0)
        host[0] = '\0';
    host[sizeof host - 1] = '\0';
    struct vg_buf b;
    vg_buf_init(&b);
    prometheus_json_begin(&b);
    /* Prometheus's RuntimeInfo fields in its order; the Go runtime's figures become
     * their nearest C counterparts (threads for goroutines, CPUs for GOMAXPROCS). */
    vg_buf_puts(&b, "{\"startTime\":");
    json_rfc3339(&b, v->start_time_ms);
    vg_buf_puts(&b, ",\"CWD\":");
    json_cstr(&b, cwd);
    vg_buf_puts(&b, ",\"hostname\":");
    json_cstr(&b, host);
    vg_buf_puts(&b, ",\"serverTime\":");
    json_rfc3339(&b, now_ms());
    vg_buf_puts(&b, ",\"reloadConfigSuccess\":true,\"lastConfigTime\":");
    json_rfc3339(&b, v->start_time_ms);
    vg_buf_printf(&b, ",\"corruptionCount\":0,\"goroutineCount\":%ld,\"GOMAXPROCS\":%ld,"
                      "\"GOMEMLIMIT\":9223372036854775807,\"GOGC\":\"\",\"GODEBUG\":\"\","
                      "\"storageRetention\":\"",
                  count_threads(), sysconf(_SC_NPROCESSORS_ONLN));
    query_format_duration(&b, v->cfg ? v->cfg->retention_ms : 0);
    vg_buf_puts(&b, "\"}}");
    send(resp, &b);
}

struct flag {
    const char *key, *value; /* into the pairs buffer */
};

static int cmp_flag(const void *a, const void *b)
{
    return strcmp(((const struct flag *)a)->key, ((const struct flag *)b)->key);
}

/* The effective config as "section.key" / value pairs: the dump's lines
 * "section:" and "  key: value" become "section.key\0value\0" in pairs; returns how many. */
static size_t flag_pairs(const struct config *cfg, struct vg_buf *pairs)
{
    struct vg_buf dump;
    vg_buf_init(&dump);
    if (cfg)
        config_dump(cfg, &dump);
    const char *p = vg_buf_cstr(&dump), *section = "";
    size_t n = 0, slen = 0;
    while (p && *p) {
        size_t len = strcspn(p, "\n");
        const char *sep = memchr(p, ':', len);
        if (p[0] != '#' && p[0] != ' ' && sep) {
            section = p;
            slen = (size_t)(sep - p);
        } else if (p[0] == ' ' && sep && sep + 1 < p + len && sep[1] == ' ') {
            const char *k = p + strspn(p, " ");
            vg_buf_printf(pairs, "%.*s.%.*s", (int)slen, section, (int)(sep - k), k);
            vg_buf_putc(pairs, '\0');
            vg_buf_append(pairs, sep + 2, (size_t)(p + len - (sep + 2)));
            vg_buf_putc(pairs, '\0');
            n++;
        }
        p += len + (p[len] == '\n');
    }
    if (!p)
        pairs->failed = true;
    vg_buf_free(&dump);
    return n;
}

static void do_flags(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct vg_buf pairs, b;
    vg_buf_init(&pairs);
    vg_buf_init(&b);
    size_t n = flag_pairs(v->cfg, &pairs);
    struct flag *fl = vg_malloc((n ? n : 1) * sizeof *fl);
    if (!fl || vg_buf_failed(&pairs)) {
        vg_free(fl);
        vg_buf_free(&pairs);
        query_resp_error(resp, QUERY_INTERNAL, "out of memory");
        return;
    }
    const char *p = pairs.p;
    for (size_t i = 0; i < n; i++) {
        fl[i].key = p;
        fl[i].value = p + strlen(p) + 1;
        p = fl[i].value + strlen(fl[i].value) + 1;
    }
    qsort(fl, n, sizeof *fl, cmp_flag); /* Go writes map keys sorted */
    prometheus_json_begin(&b);
    vg_buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(&b, ',');
        json_cstr(&b, fl[i].key);
        vg_buf_putc(&b, ':');
        json_cstr(&b, fl[i].value);
    }
    vg_buf_puts(&b, "}}");
    vg_free(fl);
    vg_buf_free(&pairs);
    send(resp, &b);
}

static void json_stats(struct vg_buf *b, const char *name, const struct tsdb_stat_list *l)
{
    vg_buf_printf(b, ",\"%s\":[", name);
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_puts(b, "{\"name\":");
        json_cstr(b, l->v[i].name);
        vg_buf_printf(b, ",\"value\":%llu}", (unsigned long long)l->v[i].value);
    }
    vg_buf_putc(b, ']');
}

static void do_tsdb_status(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    long long limit = TSDB_STATUS_LIMIT;
    const char *s = arg(req, "limit");
    if (*s) {
        char *end;
        limit = strtoll(s, &end, 10);
        if (*end || end == s || limit < 1 || isspace((unsigned char)*s)) {
            query_resp_error(resp, QUERY_BAD_DATA, "limit must be a positive number");
            return;
        }
    }
    struct tsdb_cardinality c;
    if (tsdb_cardinality(v->tsdb, (size_t)limit, &c, &err) < 0) {
        resp_for(resp, &err);
        return;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    prometheus_json_begin(&b);
    vg_buf_printf(&b, "{\"headStats\":{\"numSeries\":%llu,\"numLabelPairs\":%llu,"
                      "\"chunkCount\":%llu,\"minTime\":%lld,\"maxTime\":%lld}",
                  (unsigned long long)c.num_series, (unsigned long long)c.num_label_pairs,
                  (unsigned long long)c.chunk_count, (long long)c.min_time,
                  (long long)c.max_time);
    json_stats(&b, "seriesCountByMetricName", &c.series_by_metric);
    json_stats(&b, "labelValueCountByLabelName", &c.values_by_name);
    json_stats(&b, "memoryInBytesByLabelName", &c.bytes_by_name);
    json_stats(&b, "seriesCountByLabelValuePair", &c.series_by_pair);
    vg_buf_puts(&b, "}}");
    tsdb_cardinality_free(&c);
    send(resp, &b);
}

/* ---- routes ---- */

/* The query endpoints, counted in /metrics under the name after /api/v1/. */
static const struct {
    const char *path;
    http_handler_fn fn;
} endpoints[] = {
    { "/api/v1/query", do_query },
    { "/api/v1/query_range", do_query_range },
    { "/api/v1/format_query", do_format_query },
    { "/api/v1/parse_query", do_parse_query },
    { "/api/v1/query_exemplars", do_query_exemplars },
};

static void handle_counted(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        if (strcmp(req->path, endpoints[i].path) == 0) {
            counted(v, req, resp, endpoints[i].path + strlen("/api/v1/"), endpoints[i].fn);
            return;
        }
    }
    query_resp_error(resp, QUERY_INTERNAL, "no handler for this path");
}

static const struct http_route routes[] = {
    { "GET,POST", "/api/v1/query", false, handle_counted, "/api/v1/query" },
    { "GET,POST", "/api/v1/query_range", false, handle_counted, "/api/v1/query_range" },
    { "GET,POST", "/api/v1/format_query", false, handle_counted, "/api/v1/format_query" },
    { "GET,POST", "/api/v1/parse_query", false, handle_counted, "/api/v1/parse_query" },
    { "GET,POST", "/api/v1/query_exemplars", false, handle_counted, "/api/v1/query_exemplars" },
    { "GET", "/api/v1/status/runtimeinfo", false, do_runtimeinfo, "/api/v1/status/runtimeinfo" },
    { "GET", "/api/v1/status/flags", false, do_flags, "/api/v1/status/flags" },
    { "GET", "/api/v1/status/tsdb", false, do_tsdb_status, "/api/v1/status/tsdb" },
};

const struct vigil_module mod_query_api = {
    .name = "query_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
