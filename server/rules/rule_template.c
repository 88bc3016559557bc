/* rule_template: Prometheus's alert template functions and data on the shared engine
 * (see rule_template.h). A struct rule_template is a struct gotmpl parsed with this
 * file's language. Function errors read as Prometheus's do, after the engine's
 * "template: NAME:LINE: executing \"NAME\" at <f>: error calling f: " prefix. */
#include "rule_template.h"

#include "../../storage/base/vg_time.h"
#include "../../storage/tsdb/matcher.h"
#include "../config.h"
#include "../template/gotmpl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static bool field(void *data, struct vg_str name, struct gotmpl_val *out)
{
    const struct rule_template_data *d = data;
    if (vg_str_eq_c(name, "Labels") || vg_str_eq_c(name, "ExternalLabels")) {
        bool l = name.p[0] == 'L';
        *out = (struct gotmpl_val){ .k = GOTMPL_MAP, .ls = l ? d->labels : d->external,
                                    .n = l ? d->nlabels : d->nexternal };
    } else if (vg_str_eq_c(name, "Value")) {
        *out = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = d->value };
    } else if (vg_str_eq_c(name, "ExternalURL")) {
        const char *u = d->external_url ? d->external_url : "";
        *out = gotmpl_str(u, strlen(u));
    } else {
        return false;
    }
    return true;
}

void rule_template_fmt_4g(struct vg_buf *out, double v)
{
    if (isnan(v))
        vg_buf_puts(out, "NaN");
    else if (isinf(v))
        vg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else
        vg_buf_printf(out, "%.4g", v);
}

void rule_template_fmt_time(struct vg_buf *b, int64_t ms, char sep)
{
    int64_t s = vg_time_floor_div(ms, 1000);
    gotmpl_put_time(b, s, (ms - s * 1000) * 1000000, sep);
}

/* Prometheus's convertToFloat: numbers, and strings through strconv.ParseFloat. */
static int to_float(struct gotmpl_call *c, const struct gotmpl_val *v, double *out)
{
    char buf[128], *end;
    switch (v->k) {
    case GOTMPL_FLOAT: *out = v->f; return 0;
    case GOTMPL_INT: *out = (double)v->i; return 0;
    case GOTMPL_STR:
        if (v->s.len > 0 && v->s.len < sizeof buf) {
            memcpy(buf, v->s.p, v->s.len);
            buf[v->s.len] = '\0';
            const char *s = buf + (buf[0] == '+' || buf[0] == '-');
            bool word = !strcasecmp(s, "inf") || !strcasecmp(s, "infinity") || !strcasecmp(s, "nan");
            *out = strtod(buf, &end);
            if (!*end && (word || isdigit((unsigned char)*s) || *s == '.'))
                return 0;
        }
        return gotmpl_fail(c, "strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
                           (int)(v->s.len > 64 ? 64 : v->s.len), v->s.p);
    default:
        return gotmpl_fail(c, "can't convert %s to float", gotmpl_kind_name(v->k));
    }
}

/* v with SI prefixes (1000 steps) or IEC ones (1024 steps, only above 1), as %.4g. */
static void prefixed(struct vg_buf *b, double v, bool iec)
{
    static const char *const big[] = { "k", "M", "G", "T", "P", "E", "Z", "Y" };
    static const char *const bin[] = { "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi" };
    static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
    const char *prefix = "";
    double step = iec ? 1024 : 1000;
    if (v != 0 && isfinite(v) && fabs(v) >= 1) {
        for (size_t i = 0; i < 8 && fabs(v) >= step; i++) {
            prefix = iec ? bin[i] : big[i];
            v /= step;
        }
    } else if (v != 0 && isfinite(v) && !iec) {
        for (size_t i = 0; i < 8 && fabs(v) < 1; i++) {
            prefix = small[i];
            v *= 1000;
        }
    }
    rule_template_fmt_4g(b, v);
    vg_buf_puts(b, prefix);
}

static void humanize_duration(struct vg_buf *b, double v)
{
    if (!isfinite(v) || v == 0 || fabs(v) < 1) {
        if (v == 0)
            vg_buf_puts(b, "0s");
        else
            prefixed(b, v, false), vg_buf_puts(b, isfinite(v) ? "s" : "");
        return;
    }
    const char *sign = v < 0 ? "-" : "";
    v = fabs(v);
    int64_t d = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
    long long s = d % 60, m = d / 60 % 60, h = d / 3600 % 24, days = d / 86400;
    if (days)
        vg_buf_printf(b, "%s%lldd %lldh %lldm %llds", sign, days, h, m, s);
    else if (h)
        vg_buf_printf(b, "%s%lldh %lldm %llds", sign, h, m, s);
    else if (m)
        vg_buf_printf(b, "%s%lldm %llds", sign, m, s);
    else {
        vg_buf_puts(b, sign);
        rule_template_fmt_4g(b, v);
        vg_buf_putc(b, 's');
    }
}

enum { H_SI, H_IEC, H_DURATION, H_PERCENT, H_TIMESTAMP };

/* The humanize family; arg picks the member. */
static int f_humanize(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                      struct gotmpl_val *out)
{
    (void)n;
    double v = 0;
    if (to_float(c, &a[0], &v) < 0)
        return VG_EINVAL;
    struct vg_buf b;
    vg_buf_init(&b);
    switch (c->fn->arg) {
    case H_SI: case H_IEC: prefixed(&b, v, c->fn->arg == H_IEC); break;
    case H_DURATION: humanize_duration(&b, v); break;
    case H_PERCENT:
        rule_template_fmt_4g(&b, v * 100);
        vg_buf_putc(&b, '%');
        break;
    case H_TIMESTAMP: /* Go's time.Time.String() in UTC, via Prometheus's floatToTime */
        if (!isfinite(v)) {
            rule_template_fmt_4g(&b, v);
            break;
        }
        if (v * 1e9 >= 9223372036854775807.0 || v * 1e9 < -9223372036854775808.0) {
            vg_buf_free(&b);
            return gotmpl_fail(c, "%g cannot be represented as a nanoseconds timestamp since "
                                  "it overflows int64", v);
        }
        rule_template_fmt_time(&b, (int64_t)(v * 1e9) / 1000000, ' ');
        vg_buf_puts(&b, " +0000 UTC");
        break;
    }
    return gotmpl_buf_val(c, &b, out);
}

/* match pattern text: Go's regexp.MatchString (unanchored). */
static int f_match(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    void *re;
    struct vg_err e;
    size_t s, end;
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    int rc = gotmpl_regex_prepare(a[0].s, &re, &e);
    if (rc < 0)
        return rc == VG_ENOMEM ? gotmpl_oom(c) : gotmpl_fail(c, "%s", e.msg);
    rc = matcher_regex_find(re, a[1].s, 0, &s, &end);
    matcher_regex_free(re);
    *out = (struct gotmpl_val){ .k = GOTMPL_BOOL, .b = rc == 1 };
    return rc < 0 ? gotmpl_oom(c) : 0;
}

/* host and port of "host:port" / "[v6]:port" as net.SplitHostPort; false when it is
 * not of that form. */
static bool split_host_port(struct vg_str s, struct vg_str *host, struct vg_str *port)
{
    const char *colon = NULL;
    for (size_t i = s.len; i > 0 && !colon; i--)
        if (s.p[i - 1] == ':')
            colon = s.p + i - 1;
    if (!colon)
        return false;
    *port = (struct vg_str){ colon + 1, (size_t)(s.p + s.len - colon - 1) };
    if (s.p[0] == '[') {
        *host = (struct vg_str){ s.p + 1, (size_t)(colon - s.p - 2) };
        return colon != s.p && colon[-1] == ']';
    }
    *host = (struct vg_str){ s.p, (size_t)(colon - s.p) };
    return memchr(host->p, ':', host->len) == NULL;
}

static bool is_ip(struct vg_str h)
{
    char buf[64];
    unsigned char addr[16];
    if (h.len >= sizeof buf)
        return false;
    memcpy(buf, h.p, h.len);
    buf[h.len] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

/* stripPort (arg 0) and stripDomain (arg 1) of "host[:port]". */
static int f_strip(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    struct vg_str host, port;
    bool hp = split_host_port(a[0].s, &host, &port);
    if (!hp)
        host = a[0].s;
    if (!c->fn->arg || is_ip(host)) {
        *out = !c->fn->arg && hp ? gotmpl_str(host.p, host.len) : a[0];
        return 0;
    }
    const char *dot = memchr(host.p, '.', host.len);
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_append(&b, host.p, dot ? (size_t)(dot - host.p) : host.len);
    if (hp) {
        vg_buf_putc(&b, ':');
        vg_buf_append(&b, port.p, port.len);
    }
    return gotmpl_buf_val(c, &b, out);
}

static int f_parse_duration(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                            struct gotmpl_val *out)
{
    char buf[64];
    int64_t ms;
    struct vg_err de;
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    snprintf(buf, sizeof buf, "%.*s", (int)a[0].s.len, a[0].s.p);
    if (config_parse_duration(buf, &ms, &de) < 0)
        return gotmpl_fail(c, "not a valid duration string: \"%s\"", buf);
    *out = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = (double)ms / 1000.0 };
    return 0;
}

void rule_template_query_escape(struct vg_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')
            vg_buf_putc(b, (char)ch);
        else if (ch == ' ')
            vg_buf_putc(b, '+');
        else
            vg_buf_printf(b, "%%%02X", ch);
    }
}

static const char *ext_url(const struct gotmpl_call *c)
{
    const struct rule_template_data *d = c->data;
    return d->external_url ? d->external_url : "";
}

/* query expr: the result as a list of samples. */
static int f_query(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    const struct rule_template_data *d = c->data;
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    if (!d->query)
        return gotmpl_fail(c, "no query engine");
    char *expr = vg_arena_strndup(c->arena, a[0].s.p, a[0].s.len);
    if (!expr)
        return gotmpl_oom(c);
    struct rule_template_sample *res = NULL;
    size_t nres = 0;
    struct vg_err qe = { 0 };
    int rc = d->query(d->query_ctx, expr, c->arena, &res, &nres, &qe);
    if (rc < 0)
        return rc == VG_ENOMEM ? gotmpl_oom(c) : gotmpl_fail(c, "%s", qe.msg);
    struct gotmpl_val *items = vg_arena_alloc(c->arena, (nres ? nres : 1) * sizeof *items);
    if (!items)
        return gotmpl_oom(c);
    for (size_t i = 0; i < nres; i++)
        items[i] = (struct gotmpl_val){ .k = GOTMPL_SAMPLE, .ls = res[i].labels,
                                        .n = res[i].nlabels, .f = res[i].v };
    *out = (struct gotmpl_val){ .k = GOTMPL_LIST, .items = items, .n = nres };
    return 0;
}

static int want(struct gotmpl_call *c, const struct gotmpl_val *v, enum gotmpl_kind k)
{
    if (v->k == k && !(k == GOTMPL_LIST && v->keys))
        return 0;
    return gotmpl_fail(c, "wrong type for value; expected %s; got %s",
                       k == GOTMPL_LIST ? "template.queryResult" : "*template.sample",
                       v->k == GOTMPL_LIST && v->keys ? "map[string]interface {}"
                                                       : gotmpl_kind_name(v->k));
}

static struct vg_str label_of(const struct gotmpl_val *smp, const char *name, size_t len)
{
    for (size_t i = 0; i < smp->n; i++)
        if (smp->ls[i].name.len == len && !memcmp(smp->ls[i].name.p, name, len))
            return smp->ls[i].value;
    return (struct vg_str){ "", 0 };
}

enum { S_FIRST, S_LABEL, S_VALUE, S_STRVALUE };

/* first list; label name sample; value sample; strvalue sample. */
static int f_sample(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    const struct gotmpl_val *v = &a[n - 1];
    if (c->fn->arg == S_FIRST) {
        if (want(c, v, GOTMPL_LIST) < 0)
            return VG_EINVAL;
        if (!v->n)
            return gotmpl_fail(c, "first() called on vector with no elements");
        *out = v->items[0];
        return 0;
    }
    if (want(c, v, GOTMPL_SAMPLE) < 0 || (n == 2 && gotmpl_want_str(c, a, 1) < 0))
        return VG_EINVAL;
    struct vg_str s;
    switch (c->fn->arg) {
    case S_LABEL: s = label_of(v, a[0].s.p, a[0].s.len); break;
    case S_STRVALUE: s = label_of(v, "__value__", 9); break;
    default: *out = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = v->f }; return 0;
    }
    *out = gotmpl_str(s.p, s.len);
    return 0;
}

struct keyed {
    struct gotmpl_val v;
    struct vg_str key;
    size_t idx;
};

static int cmp_keyed(const void *x, const void *y)
{
    const struct keyed *a = x, *b = y;
    int c = vg_str_cmp(a->key, b->key);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx); /* stable, as sort.Stable */
}

static int f_sort_by_label(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                           struct gotmpl_val *out)
{
    (void)n;
    if (gotmpl_want_str(c, a, 1) < 0 || want(c, &a[1], GOTMPL_LIST) < 0)
        return VG_EINVAL;
    size_t cnt = a[1].n;
    struct keyed *k = vg_arena_alloc(c->arena, (cnt ? cnt : 1) * sizeof *k);
    struct gotmpl_val *items = vg_arena_alloc(c->arena, (cnt ? cnt : 1) * sizeof *items);
    if (!k || !items)
        return gotmpl_oom(c);
    for (size_t i = 0; i < cnt; i++) {
        const struct gotmpl_val *v = &a[1].items[i];
        k[i] = (struct keyed){ *v, v->k == GOTMPL_SAMPLE ? label_of(v, a[0].s.p, a[0].s.len)
                                                         : (struct vg_str){ "", 0 }, i };
    }
    if (cnt > 1)
        qsort(k, cnt, sizeof *k, cmp_keyed);
    for (size_t i = 0; i < cnt; i++)
        items[i] = k[i].v;
    *out = (struct gotmpl_val){ .k = GOTMPL_LIST, .items = items, .n = cnt };
    return 0;
}

enum { U_SAFE_HTML, U_QUERY_ESCAPE, U_EXTERNAL_URL, U_PATH_PREFIX, U_NOW, U_GRAPH, U_TABLE };

/* The string and URL helpers: safeHtml s, urlQueryEscape s, externalURL, pathPrefix, now,
 * graphLink expr and tableLink expr (Prometheus's strutil links to its /graph page). */
static int f_misc(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    const struct rule_template_data *d = c->data;
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    const char *u = ext_url(c);
    switch (c->fn->arg) {
    case U_SAFE_HTML: *out = a[0]; return 0; /* html/template.HTML prints as it is */
    case U_QUERY_ESCAPE: case U_GRAPH: case U_TABLE: {
        struct vg_buf b;
        vg_buf_init(&b);
        if (c->fn->arg != U_QUERY_ESCAPE)
            vg_buf_puts(&b, "/graph?g0.expr=");
        rule_template_query_escape(&b, a[0].s.p, a[0].s.len);
        if (c->fn->arg != U_QUERY_ESCAPE)
            vg_buf_puts(&b, c->fn->arg == U_GRAPH ? "&g0.tab=0" : "&g0.tab=1");
        return gotmpl_buf_val(c, &b, out);
    }
    case U_EXTERNAL_URL: *out = gotmpl_str(u, strlen(u)); return 0;
    case U_PATH_PREFIX: { /* url.URL.Path: after scheme://host, before ? or # */
        const char *h = strstr(u, "://");
        const char *path = h ? strchr(h + 3, '/') : (*u == '/' ? u : NULL);
        size_t len = path ? strcspn(path, "?#") : 0;
        *out = path ? gotmpl_str(path, len) : gotmpl_str("", 0);
        return 0;
    }
    default: *out = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = (double)d->ts_ms / 1000.0 }; return 0;
    }
}

/* toTime v: Prometheus's floatToTime (seconds to a time.Time of millisecond precision). */
static int f_to_time(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    (void)n;
    double v = 0;
    if (to_float(c, &a[0], &v) < 0)
        return VG_EINVAL;
    if (isnan(v) || isinf(v))
        return gotmpl_fail(c, "value is NaN or Inf");
    if (!(v * 1e9 < 9223372036854775807.0 && v * 1e9 >= -9223372036854775808.0))
        return gotmpl_fail(c, "%g cannot be represented as a nanoseconds timestamp since it "
                              "overflows int64", v);
    /* model.TimeFromUnixNano: milliseconds, truncated */
    *out = (struct gotmpl_val){ .k = GOTMPL_TIME, .i = (int64_t)(v * 1e9) / 1000000 * 1000000 };
    return 0;
}

/* args a b ...: map[arg0:a arg1:b ...]. */
static int f_args(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    struct vg_str *keys = vg_arena_alloc(c->arena, (n ? n : 1) * sizeof *keys);
    struct gotmpl_val *items = vg_arena_alloc(c->arena, (n ? n : 1) * sizeof *items);
    if (!keys || !items)
        return gotmpl_oom(c);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        int len = snprintf(k, sizeof k, "arg%zu", i);
        char *p = vg_arena_strndup(c->arena, k, (size_t)len);
        if (!p)
            return gotmpl_oom(c);
        keys[i] = (struct vg_str){ p, (size_t)len };
        items[i] = a[i];
    }
    *out = (struct gotmpl_val){ .k = GOTMPL_LIST, .items = items, .keys = keys, .n = n };
    return 0;
}

static const struct gotmpl_func funcs[] = {
    { "humanize", 1, 1, f_humanize, H_SI, NULL, NULL },
    { "humanize1024", 1, 1, f_humanize, H_IEC, NULL, NULL },
    { "humanizeDuration", 1, 1, f_humanize, H_DURATION, NULL, NULL },
    { "humanizePercentage", 1, 1, f_humanize, H_PERCENT, NULL, NULL },
    { "humanizeTimestamp", 1, 1, f_humanize, H_TIMESTAMP, NULL, NULL },
    { "toUpper", 1, 1, gotmpl_fn_case, GOTMPL_UPPER, NULL, NULL },
    { "toLower", 1, 1, gotmpl_fn_case, GOTMPL_LOWER, NULL, NULL },
    { "title", 1, 1, gotmpl_fn_case, GOTMPL_TITLE_APOS, NULL, NULL },
    { "reReplaceAll", 3, 3, gotmpl_fn_replace_all, GOTMPL_RE_REPL_2ND, NULL, NULL },
    { "match", 2, 2, f_match, 0, NULL, NULL },
    { "stripPort", 1, 1, f_strip, 0, NULL, NULL },
    { "stripDomain", 1, 1, f_strip, 1, NULL, NULL },
    { "parseDuration", 1, 1, f_parse_duration, 0, NULL, NULL },
    { "query", 1, 1, f_query, 0, NULL, NULL },
    { "first", 1, 1, f_sample, S_FIRST, NULL, NULL },
    { "label", 2, 2, f_sample, S_LABEL, NULL, NULL },
    { "value", 1, 1, f_sample, S_VALUE, NULL, NULL },
    { "strvalue", 1, 1, f_sample, S_STRVALUE, NULL, NULL },
    { "sortByLabel", 2, 2, f_sort_by_label, 0, NULL, NULL },
    { "safeHtml", 1, 1, f_misc, U_SAFE_HTML, NULL, NULL },
    { "urlQueryEscape", 1, 1, f_misc, U_QUERY_ESCAPE, NULL, NULL },
    { "graphLink", 1, 1, f_misc, U_GRAPH, NULL, NULL },
    { "tableLink", 1, 1, f_misc, U_TABLE, NULL, NULL },
    { "externalURL", 0, 0, f_misc, U_EXTERNAL_URL, NULL, NULL },
    { "pathPrefix", 0, 0, f_misc, U_PATH_PREFIX, NULL, NULL },
    { "now", 0, 0, f_misc, U_NOW, NULL, NULL },
    { "toTime", 1, 1, f_to_time, 0, NULL, NULL },
    { "args", 0, -1, f_args, 0, NULL, NULL },
};

static const char *const vars[][2] = {
    { "labels", "Labels" }, { "value", "Value" },
    { "externalLabels", "ExternalLabels" }, { "externalURL", "ExternalURL" },
};

static const struct gotmpl_lang rules_lang = {
    funcs, sizeof funcs / sizeof funcs[0], field, vars, sizeof vars / sizeof vars[0],
    GOTMPL_LOOSE_NUMBERS,
};

struct rule_template *rule_template_parse(const char *name, const char *text, struct vg_err *err)
{
    return (struct rule_template *)gotmpl_new(&rules_lang, name, vg_str_c(text), err);
}

void rule_template_free(struct rule_template *t)
{
    gotmpl_free((struct gotmpl *)t);
}

int rule_template_expand(const struct rule_template *t, const struct rule_template_data *d,
                         struct vg_buf *out, struct vg_err *err)
{
    struct vg_arena *a = vg_arena_new(512);
    if (!a)
        return vg_err_set(err, VG_ENOMEM, "template: out of memory");
    int rc = gotmpl_exec((const struct gotmpl *)t, (void *)d, a, out, err);
    vg_arena_free(a);
    return rc;
}
