/* tempo_search: see tempo_search.h. TraceQL runs through server/traceql (parse, plan,
 * search); this file reads parameters and writes Tempo's JSON. */
#include "tempo_search.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/spanstore/spanstore.h"
#include "../traceql/lexer.h"
#include "../traceql/parser.h"
#include "../traceql/plan.h"
#include "../traceql/search.h"
#include "trace_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NO_ROOT "<root span not yet received>"
#define TAG_VALUES_Q_TRACES 100 /* traces a q filter of tag values looks at */

static const char *const intrinsics[] = {
    "duration", "kind", "name", "rootName", "rootServiceName", "span:duration", "span:kind",
    "span:name", "span:status", "span:statusMessage", "status", "statusMessage",
    "trace:duration", "trace:rootName", "trace:rootService", "traceDuration",
};
#define NINTRINSICS (sizeof intrinsics / sizeof intrinsics[0])

static void fail(struct http_response *resp, struct vg_err *err)
{
    vg_buf_reset(&resp->body);
    http_resp_error_text(resp, err);
}

/* ---- parameters ---- */

/* An integer parameter in [min, max]; def when absent or empty. */
static int arg_int(struct http_request *req, const char *key, int64_t def, int64_t min,
                   int64_t max, int64_t *out, struct vg_err *err)
{
    const char *s = http_arg_get(req, key);
    *out = def;
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return vg_err_set(err, VG_EINVAL, "invalid %s \"%.64s\": expected an integer from "
                          "%" PRId64 " to %" PRId64, key, s, min, max);
    *out = v;
    return 0;
}

static int arg_duration(struct http_request *req, const char *key, int64_t *ns,
                        struct vg_err *err)
{
    const char *s = http_arg_get(req, key);
    *ns = 0;
    if (!s || !*s)
        return 0;
    if (traceql_parse_duration(s, strlen(s), ns) < 0 || *ns < 0)
        return vg_err_set(err, VG_EINVAL, "invalid %s \"%.64s\": expected a duration such "
                          "as 100ms or 1.5s", key, s);
    return 0;
}

/* start and end (unix seconds) into a span start window in ns (0 = open). */
static int arg_window(struct http_request *req, int64_t *from, int64_t *to, struct vg_err *err)
{
    const int64_t max_s = INT64_MAX / 1000000000;
    int64_t s, e;
    int rc = arg_int(req, "start", 0, 0, max_s, &s, err);
    if (!rc)
        rc = arg_int(req, "end", 0, 0, max_s, &e, err);
    if (!rc && e && s > e)
        rc = vg_err_set(err, VG_EINVAL, "invalid start and end: start %" PRId64
                        " is after end %" PRId64, s, e);
    if (rc)
        return rc;
    *from = s * 1000000000;
    /* end is inclusive of its whole second */
    *to = e ? (e < max_s ? (e + 1) * 1000000000 - 1 : INT64_MAX) : 0;
    return 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool blank(const char *s)
{
    while (s && is_space(*s))
        s++;
    return !s || !*s;
}

/* ---- legacy tags (logfmt) to a query ---- */

/* One logfmt value at s (quoted with escapes or bare), unescaped into the arena. */
static const char *logfmt_value(struct vg_arena *a, const char *s, struct vg_str *out)
{
    if (*s != '"') {
        const char *e = s;
        while (*e && !is_space(*e))
            e++;
        *out = (struct vg_str){ s, (size_t)(e - s) };
        return e;
    }
    char *buf = vg_arena_alloc(a, strlen(s) + 1);
    if (!buf)
        return NULL;
    size_t n = 0;
    for (s++; *s && *s != '"'; s++) {
        if (*s == '\\' && s[1])
            s++;
        buf[n++] = *s;
    }
    if (*s != '"')
        return NULL;
    *out = (struct vg_str){ buf, n };
    return s + 1;
}

static int tag_cond(struct traceql_query *q, struct vg_str key, struct vg_str val,
                    struct traceql_field **out, struct vg_err *err)
{
    static const char *const statuses[] = { "unset", "ok", "error" };
    bool name = vg_str_eq_c(key, "name"), status = vg_str_eq_c(key, "status");
    int code = -1;
    for (int i = 0; status && i < 3; i++)
        if (vg_str_eq_c(val, statuses[i]))
            code = i;
    if (status && code < 0)
        return vg_err_set(err, VG_EINVAL, "invalid tags: status must be ok, error or unset");
    if (!name && !status) {
        *out = traceql_field_text_eq(q, TQ_SCOPE_ANY, key, val);
    } else {
        struct traceql_field *l = traceql_field_new(q, TQ_FIELD_INTRINSIC, 0);
        struct traceql_field *r = traceql_field_new(q, TQ_FIELD_STATIC, 0);
        char *copy = r ? vg_arena_strndup(q->arena, val.p, val.len) : NULL;
        *out = l && copy ? traceql_field_binary(q, TQ_OP_EQ, l, r, 0) : NULL;
        if (*out) {
            l->u.intrinsic = name ? TQ_I_NAME : TQ_I_STATUS;
            r->u.value.type = name ? TQ_STRING : TQ_STATUS;
            if (name)
                r->u.value.v.s = (struct vg_str){ copy, val.len };
            else
                r->u.value.v.i = code;
        }
    }
    return *out ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory reading tags");
}

/* `a=1 b="x y"` as one spanset whose conditions all hold on one span. */
static struct traceql_query *query_from_tags(const char *tags, struct vg_err *err)
{
    struct traceql_query *q = traceql_query_new(err);
    struct traceql_field *all = NULL;
    const char *s = tags ? tags : "";
    int rc = q ? 0 : VG_ENOMEM;
    while (!rc) {
        while (is_space(*s))
            s++;
        if (!*s)
            break;
        const char *eq = s;
        while (*eq && *eq != '=' && !is_space(*eq))
            eq++;
        if (*eq != '=' || eq == s) {
            rc = vg_err_set(err, VG_EINVAL, "invalid tags \"%.64s\": expected key=value pairs",
                            tags);
            break;
        }
        struct vg_str key = { s, (size_t)(eq - s) }, val;
        if (!(s = logfmt_value(q->arena, eq + 1, &val))) {
            rc = vg_err_set(err, VG_EINVAL, "invalid tags \"%.64s\": unterminated quote", tags);
            break;
        }
        struct traceql_field *c;
        rc = tag_cond(q, key, val, &c, err);
        if (!rc && all && !(c = traceql_field_binary(q, TQ_OP_AND, all, c, 0)))
            rc = vg_err_set(err, VG_ENOMEM, "out of memory reading tags");
        all = c;
    }
    if (!rc)
        rc = traceql_query_set_filter(q, all, err);
    if (rc) {
        traceql_query_free(q);
        return NULL;
    }
    return q;
}

/* The query of a request: q (TraceQL) when given, else the tags. */
static struct traceql_query *request_query(struct http_request *req, struct vg_err *err)
{
    const char *text = http_arg_get(req, "q");
    if (blank(text))
        return query_from_tags(http_arg_get(req, "tags"), err);
    struct traceql_query *q = traceql_parse(text, strlen(text), err);
    if (!q && err->code == VG_EINVAL)
        vg_err_prefix(err, "invalid TraceQL query");
    return q;
}

/* ---- /api/search ---- */

struct hit {
    int64_t start_ns;
    uint8_t trace_id[SPAN_TRACE_ID_LEN];
    size_t off, len; /* the trace's JSON object in the scratch buffer */
};

struct collect {
    const struct traceql_query *q;
    size_t spss;
    struct vg_buf out; /* every trace's JSON, one after the other */
    struct hit *hits;
    size_t n, cap;
};

static void put_span(struct collect *c, const struct span *s)
{
    struct vg_buf *b = &c->out;
    vg_buf_puts(b, "{\"spanID\":");
    trace_json_hex(b, s->span_id, SPAN_ID_LEN, false);
    vg_buf_puts(b, ",\"name\":");
    vg_buf_json_str(b, s->name.p ? s->name.p : "", s->name.len);
    vg_buf_puts(b, ",\"startTimeUnixNano\":");
    trace_json_i64(b, s->start_ns);
    vg_buf_puts(b, ",\"durationNanos\":");
    trace_json_i64(b, s->end_ns - s->start_ns);
    vg_buf_puts(b, ",\"attributes\":[");
    struct vg_str svc = VG_STR("service.name");
    const struct span_attr *sa = traceql_span_attr(s, TQ_SCOPE_RESOURCE, svc);
    struct span_attr fallback = { .key = svc, .type = SPAN_VAL_STRING, .v.s = s->service };
    bool any = false;
    if (sa || s->service.len)
        any = trace_json_keyvalue(b, svc, sa ? sa : &fallback);
    for (size_t i = 0; i < c->q->nattrs; i++) {
        const struct traceql_field *f = c->q->attrs[i];
        if (f->u.attr.scope != TQ_SCOPE_SPAN && vg_str_eq(f->u.attr.name, svc))
            continue;
        const struct span_attr *a = traceql_span_attr(s, f->u.attr.scope, f->u.attr.name);
        size_t mark = b->len;
        if (any)
            vg_buf_putc(b, ',');
        if (a && trace_json_keyvalue(b, f->u.attr.name, a))
            any = true;
        else
            b->len = mark;
    }
    vg_buf_puts(b, "]}");
}

static int on_hit(void *ud, const struct spanstore_trace_summary *sum, const struct span *spans,
                  size_t n, const struct traceql_match *m)
{
    struct collect *c = ud;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        struct hit *nv = vg_realloc(c->hits, nc * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        c->hits = nv;
        c->cap = nc;
    }
    struct hit *h = &c->hits[c->n++];
    struct vg_buf *b = &c->out;
    h->start_ns = sum->start_ns;
    memcpy(h->trace_id, sum->trace_id, SPAN_TRACE_ID_LEN);
    h->off = b->len;
    vg_buf_puts(b, "{\"traceID\":");
    trace_json_hex(b, sum->trace_id, SPAN_TRACE_ID_LEN, true);
    vg_buf_puts(b, ",\"rootServiceName\":");
    if (sum->has_root) {
        vg_buf_json_str(b, sum->root_service.p, sum->root_service.len);
        vg_buf_puts(b, ",\"rootTraceName\":");
        vg_buf_json_str(b, sum->root_name.p, sum->root_name.len);
    } else {
        vg_buf_puts(b, "\"" NO_ROOT "\"");
    }
    vg_buf_puts(b, ",\"startTimeUnixNano\":");
    trace_json_i64(b, sum->start_ns);
    vg_buf_printf(b, ",\"durationMs\":%" PRId64, (sum->end_ns - sum->start_ns) / 1000000);
    size_t set_off = b->len;
    vg_buf_puts(b, ",\"spanSet\":{\"spans\":[");
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < c->spss; i++) {
        if (!m->in[i])
            continue;
        if (shown++)
            vg_buf_putc(b, ',');
        put_span(c, &spans[i]);
    }
    vg_buf_printf(b, "],\"matched\":%zu}", m->matched);
    /* spanSets repeats the one spanset (Tempo keeps spanSet for older clients) */
    size_t set_len = b->len - set_off - strlen(",\"spanSet\":");
    vg_buf_puts(b, ",\"spanSets\":[");
    if (vg_buf_reserve(b, set_len)) {
        memcpy(b->p + b->len, b->p + set_off + strlen(",\"spanSet\":"), set_len);
        b->len += set_len;
    }
    vg_buf_puts(b, "]}");
    h->len = b->len - h->off;
    return vg_buf_failed(b) ? VG_ENOMEM : 0;
}

static int newest_first(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->start_ns != y->start_ns)
        return x->start_ns > y->start_ns ? -1 : 1;
    return memcmp(x->trace_id, y->trace_id, SPAN_TRACE_ID_LEN);
}

void tempo_search(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct traceql_search_opts o = { 0 };
    int64_t limit, spss;
    int rc = arg_window(req, &o.from_ns, &o.to_ns, &err);
    if (!rc)
        rc = arg_int(req, "limit", TRACEQL_SEARCH_DEFAULT_LIMIT, 1, TRACEQL_SEARCH_MAX_LIMIT,
                     &limit, &err);
    if (!rc)
        rc = arg_int(req, "spss", 3, 1, TEMPO_SEARCH_MAX_SPSS, &spss, &err);
    if (!rc)
        rc = arg_duration(req, "minDuration", &o.min_trace_duration_ns, &err);
    if (!rc)
        rc = arg_duration(req, "maxDuration", &o.max_trace_duration_ns, &err);
    if (!rc && o.max_trace_duration_ns && o.min_trace_duration_ns > o.max_trace_duration_ns)
        rc = vg_err_set(&err, VG_EINVAL, "invalid maxDuration: it is below minDuration");
    struct traceql_query *q = rc ? NULL : request_query(req, &err);
    if (!q) {
        fail(resp, &err);
        return;
    }
    o.limit = (size_t)limit;
    struct collect c = { .q = q, .spss = (size_t)spss };
    vg_buf_init(&c.out);
    struct traceql_search_stats st;
    rc = traceql_search(v->traces, q, &o, on_hit, &c, &st, &err);
    if (rc == VG_ENOMEM && !err.msg[0])
        vg_err_set(&err, VG_ENOMEM, "out of memory writing search results");
    if (!rc) {
        if (c.n) /* no qsort of a NULL array (UBSan) */
            qsort(c.hits, c.n, sizeof *c.hits, newest_first);
        struct vg_buf *b = &resp->body;
        vg_buf_puts(b, "{\"traces\":[");
        for (size_t i = 0; i < c.n; i++) {
            if (i)
                vg_buf_putc(b, ',');
            vg_buf_append(b, c.out.p + c.hits[i].off, c.hits[i].len);
        }
        vg_buf_printf(b, "],\"metrics\":{\"inspectedTraces\":%" PRIu64 ",\"inspectedSpans\":\""
                      "%" PRIu64 "\",\"completedJobs\":1,\"totalJobs\":1%s}}",
                      st.inspected_traces, st.inspected_spans,
                      st.truncated ? ",\"truncated\":true" : "");
        resp->content_type = "application/json";
        if (vg_buf_failed(b))
            rc = vg_err_set(&err, VG_ENOMEM, "out of memory writing search results");
    }
    if (rc)
        fail(resp, &err);
    vg_buf_free(&c.out);
    vg_free(c.hits);
    traceql_query_free(q);
}

/* ---- tag names ---- */

enum scopes { SC_SPAN = 1, SC_RESOURCE = 2, SC_INTRINSIC = 4 };

static int arg_scopes(struct http_request *req, int def, int *out, struct vg_err *err)
{
    const char *s = http_arg_get(req, "scope");
    *out = def;
    if (!s || !*s || !strcmp(s, "all"))
        return 0;
    *out = !strcmp(s, "span") ? SC_SPAN : !strcmp(s, "resource") ? SC_RESOURCE
           : !strcmp(s, "intrinsic") ? SC_INTRINSIC : 0;
    if (!*out)
        return vg_err_set(err, VG_EINVAL, "invalid scope \"%.32s\": expected span, resource, "
                          "intrinsic or all", s);
    return 0;
}

static void put_strings(struct vg_buf *b, const struct vg_str *s, size_t n, bool *first)
{
    for (size_t i = 0; i < n; i++) {
        if (!*first)
            vg_buf_putc(b, ',');
        *first = false;
        vg_buf_json_str(b, s[i].p, s[i].len);
    }
}

static void put_intrinsics(struct vg_buf *b, bool *first)
{
    for (size_t i = 0; i < NINTRINSICS; i++) {
        struct vg_str s = vg_str_c(intrinsics[i]);
        put_strings(b, &s, 1, first);
    }
}

static int by_str(const void *a, const void *b)
{
    return vg_str_cmp(*(const struct vg_str *)a, *(const struct vg_str *)b);
}

/* Appends the attribute names of scope (a JSON list body without brackets), sorted. The
 * store keeps service.name as its service index rather than in the attribute registry,
 * so it is listed for the resource scope whenever a service was seen. */
static int put_tag_names(struct vigil *v, int64_t from, int64_t to, enum spanstore_scope scope,
                         struct vg_buf *b, bool *first, struct vg_err *err)
{
    struct spanstore_list l, svc;
    memset(&l, 0, sizeof l);
    memset(&svc, 0, sizeof svc);
    int rc = spanstore_tag_names(v->traces, from, to, scope, 0, &l, err);
    if (!rc && scope != SPANSTORE_SCOPE_SPAN)
        rc = spanstore_services(v->traces, from, to, &svc, err);
    struct vg_str *names = rc ? NULL : vg_malloc((l.n + 1) * sizeof *names);
    if (!rc && !names)
        rc = vg_err_set(err, VG_ENOMEM, "out of memory listing tags");
    size_t n = 0;
    bool have_service = false;
    for (size_t i = 0; !rc && i < l.n; i++) {
        have_service = have_service || vg_str_eq_c(l.tags[i].key, "service.name");
        if (!i || !vg_str_eq(l.tags[i].key, l.tags[i - 1].key))
            names[n++] = l.tags[i].key;
    }
    if (!rc && svc.n && !have_service)
        names[n++] = VG_STR("service.name");
    if (!rc) {
        qsort(names, n, sizeof *names, by_str);
        put_strings(b, names, n, first);
    }
    vg_free(names);
    spanstore_list_free(&l);
    spanstore_list_free(&svc);
    return rc;
}

static void tag_names(struct vigil *v, struct http_request *req, struct http_response *resp,
                      bool v2)
{
    struct vg_err err;
    vg_err_clear(&err);
    int64_t from, to;
    int sc;
    int rc = arg_window(req, &from, &to, &err);
    if (!rc)
        rc = arg_scopes(req, v2 ? SC_SPAN | SC_RESOURCE | SC_INTRINSIC : SC_SPAN | SC_RESOURCE,
                        &sc, &err);
    struct vg_buf *b = &resp->body;
    bool first = true;
    if (!rc && !v2) {
        vg_buf_puts(b, "{\"tagNames\":[");
        if (sc == SC_INTRINSIC)
            put_intrinsics(b, &first);
        else
            rc = put_tag_names(v, from, to,
                               sc == SC_SPAN ? SPANSTORE_SCOPE_SPAN
                               : sc == SC_RESOURCE ? SPANSTORE_SCOPE_RESOURCE
                                                   : SPANSTORE_SCOPE_ANY,
                               b, &first, &err);
        vg_buf_puts(b, "]}");
    } else if (!rc) {
        static const struct { int bit; const char *name; enum spanstore_scope scope; } rows[] = {
            { SC_SPAN, "span", SPANSTORE_SCOPE_SPAN },
            { SC_RESOURCE, "resource", SPANSTORE_SCOPE_RESOURCE },
            { SC_INTRINSIC, "intrinsic", SPANSTORE_SCOPE_ANY },
        };
        vg_buf_puts(b, "{\"scopes\":[");
        bool first_scope = true;
        for (size_t i = 0; !rc && i < 3; i++) {
            if (!(sc & rows[i].bit))
                continue;
            vg_buf_printf(b, "%s{\"name\":\"%s\",\"tags\":[", first_scope ? "" : ",",
                          rows[i].name);
            first_scope = false;
            first = true;
            if (rows[i].bit == SC_INTRINSIC)
                put_intrinsics(b, &first);
            else
                rc = put_tag_names(v, from, to, rows[i].scope, b, &first, &err);
            vg_buf_puts(b, "]}");
        }
        vg_buf_puts(b, "]}");
    }
    if (!rc && vg_buf_failed(b))
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory listing tags");
    if (rc)
        fail(resp, &err);
    else
        resp->content_type = "application/json";
}

void tempo_search_tags(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    tag_names(v, req, resp, false);
}

void tempo_search_tags_v2(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    tag_names(v, req, resp, true);
}

/* ---- tag values ---- */

/* What a v2 tag names: an attribute in a scope, or an intrinsic. */
struct tag {
    bool intrinsic;
    enum traceql_intrinsic in;
    enum traceql_scope scope;
    struct vg_str name;
};

static bool parse_tag(const char *s, size_t n, bool v2, struct tag *t)
{
    memset(t, 0, sizeof *t);
    if (!n)
        return false;
    if (v2) {
        static const struct { const char *p; enum traceql_scope sc; } pre[] = {
            { "span.", TQ_SCOPE_SPAN }, { "resource.", TQ_SCOPE_RESOURCE }, { ".", TQ_SCOPE_ANY },
        };
        for (size_t i = 0; i < 3; i++) {
            size_t l = strlen(pre[i].p);
            if (n > l && !strncmp(s, pre[i].p, l)) {
                t->scope = pre[i].sc;
                t->name = (struct vg_str){ s + l, n - l };
                return true;
            }
        }
        static const struct { const char *w; enum traceql_intrinsic in; } in[] = {
            { "name", TQ_I_NAME }, { "span:name", TQ_I_NAME }, { "status", TQ_I_STATUS },
            { "span:status", TQ_I_STATUS }, { "kind", TQ_I_KIND }, { "span:kind", TQ_I_KIND },
            { "statusMessage", TQ_I_STATUS_MESSAGE },
            { "span:statusMessage", TQ_I_STATUS_MESSAGE }, { "rootName", TQ_I_ROOT_NAME },
            { "trace:rootName", TQ_I_ROOT_NAME }, { "rootServiceName", TQ_I_ROOT_SERVICE },
            { "trace:rootService", TQ_I_ROOT_SERVICE }, { "duration", TQ_I_DURATION },
            { "span:duration", TQ_I_DURATION }, { "traceDuration", TQ_I_TRACE_DURATION },
            { "trace:duration", TQ_I_TRACE_DURATION },
        };
        for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
            if (strlen(in[i].w) == n && !memcmp(s, in[i].w, n)) {
                t->intrinsic = true;
                t->in = in[i].in;
                return true;
            }
    }
    t->scope = TQ_SCOPE_ANY; /* v1, and unscoped words in v2: either attribute scope */
    t->name = (struct vg_str){ s, n };
    return true;
}

/* A value list being built: (type, text) pairs in an arena, sorted and unique at the
 * end. */
struct value {
    const char *type;
    struct vg_str text;
};

struct values {
    struct value *v;
    size_t n, cap;
    struct vg_arena *a;
    bool oom;
};

static void values_add(struct values *vs, const char *type, struct vg_str text)
{
    if (vs->oom)
        return;
    if (vs->n == vs->cap) {
        size_t nc = vs->cap ? vs->cap * 2 : 64;
        struct value *nv = vg_realloc(vs->v, nc * sizeof *nv);
        if (!nv) {
            vs->oom = true;
            return;
        }
        vs->v = nv;
        vs->cap = nc;
    }
    char *p = vg_arena_strndup(vs->a, text.p ? text.p : "", text.len);
    if (!p) {
        vs->oom = true;
        return;
    }
    vs->v[vs->n++] = (struct value){ type, { p, text.len } };
}

static int by_text(const void *a, const void *b)
{
    const struct value *x = a, *y = b;
    int c = vg_str_cmp(x->text, y->text);
    return c ? c : strcmp(x->type, y->type);
}

static const char *val_type(enum span_val_type t)
{
    switch (t) {
    case SPAN_VAL_INT: return "int";
    case SPAN_VAL_DOUBLE: return "float";
    case SPAN_VAL_BOOL: return "bool";
    default: return "string";
    }
}

static const char *const status_words[] = { "unset", "ok", "error" };
static const char *const kind_words[] = { "unspecified", "internal", "server", "client",
                                          "producer", "consumer" };

/* Values of t on one span (for a q filter). */
static void span_values(struct values *vs, const struct tag *t, const struct span *s,
                        struct vg_buf *text)
{
    if (t->intrinsic) {
        switch (t->in) {
        case TQ_I_NAME: values_add(vs, "string", s->name); break;
        case TQ_I_STATUS_MESSAGE:
            if (s->status_message.len)
                values_add(vs, "string", s->status_message);
            break;
        case TQ_I_STATUS:
            if ((unsigned)s->status <= SPAN_STATUS_MAX)
                values_add(vs, "keyword", vg_str_c(status_words[s->status]));
            break;
        case TQ_I_KIND:
            if ((unsigned)s->kind <= SPAN_KIND_MAX)
                values_add(vs, "keyword", vg_str_c(kind_words[s->kind]));
            break;
        case TQ_I_ROOT_NAME:
            if (span_is_root(s))
                values_add(vs, "string", s->name);
            break;
        case TQ_I_ROOT_SERVICE:
            if (span_is_root(s))
                values_add(vs, "string", s->service);
            break;
        default:
            break;
        }
        return;
    }
    const struct span_attr *a = traceql_span_attr(s, t->scope, t->name);
    if (!a && t->scope != TQ_SCOPE_SPAN && s->service.len &&
        vg_str_eq_c(t->name, "service.name")) {
        values_add(vs, "string", s->service);
        return;
    }
    vg_buf_reset(text);
    if (a && span_attr_text(a, text))
        values_add(vs, val_type(a->type), (struct vg_str){ text->p ? text->p : "", text->len });
    if (vg_buf_failed(text))
        vs->oom = true;
}

struct qvalues {
    struct values *vs;
    const struct tag *t;
    struct vg_buf text;
};

static int on_value_hit(void *ud, const struct spanstore_trace_summary *sum,
                        const struct span *spans, size_t n, const struct traceql_match *m)
{
    struct qvalues *qv = ud;
    (void)sum;
    for (size_t i = 0; i < n; i++)
        if (m->in[i])
            span_values(qv->vs, qv->t, &spans[i], &qv->text);
    return qv->vs->oom ? VG_ENOMEM : 0;
}

/* Values from the store's registry. */
static int registry_values(struct vigil *v, const struct tag *t, int64_t from, int64_t to,
                           struct values *vs, struct vg_err *err)
{
    struct spanstore_list l;
    memset(&l, 0, sizeof l);
    int rc = 0;
    if (t->intrinsic) {
        const char *const *words = t->in == TQ_I_STATUS ? status_words
                                   : t->in == TQ_I_KIND ? kind_words : NULL;
        size_t nw = t->in == TQ_I_STATUS ? 3 : 6;
        for (size_t i = 0; words && i < nw; i++)
            values_add(vs, "keyword", vg_str_c(words[i]));
        if (t->in == TQ_I_NAME || t->in == TQ_I_ROOT_NAME) {
            rc = spanstore_operations(v->traces, from, to, VG_STR(""), &l, err);
            for (size_t i = 0; !rc && i < l.n; i++)
                values_add(vs, "string", l.ops[i].name);
        } else if (t->in == TQ_I_ROOT_SERVICE) {
            rc = spanstore_services(v->traces, from, to, &l, err);
            for (size_t i = 0; !rc && i < l.n; i++)
                values_add(vs, "string", l.names[i]);
        }
    } else {
        rc = spanstore_tag_values(v->traces, from, to, traceql_plan_scope(t->scope), t->name,
                                  0, &l, err);
        for (size_t i = 0; !rc && i < l.n; i++)
            values_add(vs, val_type(l.tags[i].type), l.tags[i].value);
        /* the resource's service.name is the store's service index, not a registry key */
        if (!rc && t->scope != TQ_SCOPE_SPAN && vg_str_eq_c(t->name, "service.name")) {
            spanstore_list_free(&l);
            rc = spanstore_services(v->traces, from, to, &l, err);
            for (size_t i = 0; !rc && i < l.n; i++)
                values_add(vs, "string", l.names[i]);
        }
    }
    spanstore_list_free(&l);
    return rc;
}

static void tag_values(struct vigil *v, struct http_request *req, struct http_response *resp,
                       bool v2)
{
    struct vg_err err;
    vg_err_clear(&err);
    const char *prefix = v2 ? TEMPO_TAG_VALUES_V2_PREFIX : TEMPO_TAG_VALUES_PREFIX;
    const char *s = req->path + strlen(prefix);
    size_t n = strlen(s);
    struct tag t;
    int64_t from = 0, to = 0;
    int rc = 0;
    if (n < 7 || strcmp(s + n - 7, "/values") != 0 || !parse_tag(s, n - 7, v2, &t))
        rc = vg_err_set(&err, VG_EINVAL, "invalid tag in \"%.128s\": expected %s<tag>/values",
                        req->path, prefix);
    if (!rc)
        rc = arg_window(req, &from, &to, &err);
    struct values vs = { .a = vg_arena_new(4096) };
    if (!rc && !vs.a)
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory listing tag values");
    const char *qtext = v2 ? http_arg_get(req, "q") : NULL;
    bool filtered = !blank(qtext) && strcmp(qtext, "{}") != 0;
    if (!rc && filtered) {
        struct traceql_query *q = request_query(req, &err);
        struct qvalues qv = { .vs = &vs, .t = &t };
        vg_buf_init(&qv.text);
        struct traceql_search_opts o = { .from_ns = from, .to_ns = to,
                                         .limit = TAG_VALUES_Q_TRACES };
        struct traceql_search_stats st;
        rc = q ? traceql_search(v->traces, q, &o, on_value_hit, &qv, &st, &err) : err.code;
        vg_buf_free(&qv.text);
        traceql_query_free(q);
    } else if (!rc) {
        rc = registry_values(v, &t, from, to, &vs, &err);
    }
    if (!rc && vs.oom)
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory listing tag values");
    struct vg_buf *b = &resp->body;
    if (!rc) {
        if (vs.n)
            qsort(vs.v, vs.n, sizeof *vs.v, by_text);
        vg_buf_puts(b, "{\"tagValues\":[");
        for (size_t i = 0, k = 0; i < vs.n; i++) {
            /* v1 lists bare strings: the same text of two types is one value */
            if (i && (v2 ? !by_text(&vs.v[i], &vs.v[i - 1])
                         : vg_str_eq(vs.v[i].text, vs.v[i - 1].text)))
                continue;
            if (k++)
                vg_buf_putc(b, ',');
            if (v2)
                vg_buf_printf(b, "{\"type\":\"%s\",\"value\":", vs.v[i].type);
            vg_buf_json_str(b, vs.v[i].text.p, vs.v[i].text.len);
            if (v2)
                vg_buf_putc(b, '}');
        }
        vg_buf_puts(b, "]}");
        resp->content_type = "application/json";
        if (vg_buf_failed(b))
            rc = vg_err_set(&err, VG_ENOMEM, "out of memory listing tag values");
    }
    if (rc)
        fail(resp, &err);
    vg_free(vs.v);
    vg_arena_free(vs.a);
}

void tempo_tag_values(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    tag_values(v, req, resp, false);
}

void tempo_tag_values_v2(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    tag_values(v, req, resp, true);
}
