/* loki_detect: see loki_detect.h.
 *
 * detected_fields reads its sample through the LogQL engine (a backward log query of
 * line_limit entries), so the query's pipeline filters the sample exactly as a query
 * would; the fields are then found with the json and logfmt parsers of the log
 * receivers (ingest/logparse), whose key sanitising and nested-object flattening are
 * Loki's. Distinct values are counted as a set of 64-bit hashes per field (exact up to
 * hash collisions; Loki estimates with HyperLogLog). */
#include "loki_detect.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/logstore/logstore.h"
#include "../ingest/logparse/logparse.h"
#include "../logql/engine.h"
#include "loki.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_LINE_LIMIT 1000
#define DEFAULT_FIELD_LIMIT 1000
#define MAX_LINE_LIMIT 5000 /* the engine's max_entries_limit */

/* ---- value types (Go's parsers, as Loki's determineType tries them) ---- */

static bool all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* strconv.ParseInt(s, 10, 64) syntax and range. */
static bool go_int(const char *s, size_t n)
{
    size_t sign = n && (s[0] == '+' || s[0] == '-');
    if (!all_digits(s + sign, n - sign))
        return false;
    size_t d = n - sign;
    while (d > 1 && s[n - d] == '0')
        d--;
    if (d < 19)
        return true;
    if (d > 19)
        return false;
    const char *lim = s[0] == '-' ? "9223372036854775808" : "9223372036854775807";
    return memcmp(s + n - d, lim, 19) <= 0;
}

/* Digits (with at most one '.', at least one digit) at s[*i]: hex when hex. */
static bool mantissa(const char *s, size_t n, size_t *i, bool hex)
{
    size_t digits = 0;
    bool dot = false;
    for (; *i < n; (*i)++) {
        char c = s[*i];
        if (c == '.' && !dot)
            dot = true;
        else if (hex ? isxdigit((unsigned char)c) : isdigit((unsigned char)c))
            digits++;
        else
            break;
    }
    return digits > 0;
}

/* strconv.ParseFloat(s, 64) syntax: decimal or hex (with a p exponent) forms, inf,
 * infinity and nan in any case, with an optional sign. */
static bool go_float(const char *s, size_t n)
{
    size_t i = n && (s[0] == '+' || s[0] == '-');
    const char *p = s + i;
    size_t rest = n - i;
    if ((rest == 3 && (!strncasecmp(p, "inf", 3) || !strncasecmp(p, "nan", 3))) ||
        (rest == 8 && !strncasecmp(p, "infinity", 8)))
        return true;
    bool hex = rest > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    if (hex)
        i += 2;
    if (!mantissa(s, n, &i, hex))
        return false;
    if (i < n && (hex ? (s[i] == 'p' || s[i] == 'P') : (s[i] == 'e' || s[i] == 'E'))) {
        i++;
        i += i < n && (s[i] == '+' || s[i] == '-');
        size_t d = i;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
        if (i == d)
            return false;
    } else if (hex) {
        return false; /* Go requires the p exponent of a hex float */
    }
    return i == n;
}

static bool go_bool(const char *s, size_t n)
{
    static const char *const words[] = { "1", "t", "T", "TRUE", "true", "True",
                                         "0", "f", "F", "FALSE", "false", "False" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0)
            return true;
    return false;
}

/* time.ParseDuration: [-+]? ("0" | (number unit)+) with units ns us µs μs ms s m h. */
static bool go_duration(const char *s, size_t n)
{
    static const char *const units[] = { "ns", "us", "\xc2\xb5s", "\xce\xbcs",
                                         "ms", "s",  "m",  "h" };
    size_t i = n && (s[0] == '+' || s[0] == '-');
    if (i == n)
        return false;
    if (n - i == 1 && s[i] == '0')
        return true;
    while (i < n) {
        if (!mantissa(s, n, &i, false))
            return false;
        size_t best = 0;
        for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
            size_t ul = strlen(units[u]);
            if (ul > best && ul <= n - i && memcmp(s + i, units[u], ul) == 0)
                best = ul;
        }
        if (!best)
            return false;
        i += best;
    }
    return true;
}

/* humanize.ParseBytes: a number (commas allowed), blanks, then an optional unit from
 * its table (b, k, kb, ki, kib, ... up to e/eib), any case. */
static bool go_bytes(const char *s, size_t n)
{
    static const char *const units[] = { "", "b", "k", "kb", "ki", "kib", "m", "mb", "mi",
                                         "mib", "g", "gb", "gi", "gib", "t", "tb", "ti", "tib",
                                         "p", "pb", "pi", "pib", "e", "eb", "ei", "eib" };
    size_t i = 0, digits = 0;
    bool dot = false;
    for (; i < n; i++) {
        if (isdigit((unsigned char)s[i]))
            digits++;
        else if (s[i] == '.' && !dot)
            dot = true;
        else if (s[i] != ',')
            break;
    }
    if (!digits)
        return false;
    while (i < n && s[i] == ' ')
        i++;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++)
        if (strlen(units[u]) == n - i && strncasecmp(s + i, units[u], n - i) == 0)
            return true;
    return false;
}

const char *loki_detect_type(const char *s, size_t n)
{
    if (go_int(s, n))
        return "int";
    if (go_float(s, n))
        return "float";
    if (go_bool(s, n))
        return "boolean";
    if (go_duration(s, n))
        return "duration";
    if (go_bytes(s, n))
        return "bytes";
    return "string";
}

/* google/uuid.Parse forms: 36 (dashed), 38 ({dashed}), 45 (urn:uuid:dashed), 32 (hex). */
static bool is_uuid(const char *s, size_t n)
{
    if (n == 45 && !strncasecmp(s, "urn:uuid:", 9))
        s += 9, n = 36;
    else if (n == 38 && s[0] == '{' && s[37] == '}')
        s += 1, n = 36;
    if (n == 32) {
        for (size_t i = 0; i < 32; i++)
            if (!isxdigit((unsigned char)s[i]))
                return false;
        return true;
    }
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

bool loki_detect_is_id(const char *s, size_t n)
{
    return go_float(s, n) || is_uuid(s, n);
}

/* ---- detected_labels ---- */

static bool is_static_label(struct vg_str name)
{
    return vg_str_eq_c(name, "cluster") || vg_str_eq_c(name, "namespace") ||
           vg_str_eq_c(name, "instance") || vg_str_eq_c(name, "pod");
}

/* Loki's shouldRejectLabel over the sorted distinct values v[0..n). */
static bool reject_label(char *const *v, size_t n)
{
    if (n == 0)
        return true;
    if (n <= 2) {
        bool all_bool = true;
        for (size_t i = 0; i < n; i++)
            all_bool = all_bool && (!strcmp(v[i], "0") || !strcmp(v[i], "1"));
        if (all_bool)
            return false;
    }
    for (size_t i = 0; i < n; i++)
        if (!loki_detect_is_id(v[i], strlen(v[i])))
            return false;
    return true;
}

static const char *arg(const struct http_request *req, const char *name)
{
    const char *s = http_arg_get(req, name);
    return s ? s : "";
}

void loki_detected_labels(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    int64_t start, end;
    struct logql_expr *e = NULL;
    struct logstore_strings names = { 0 };
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = loki_bounds(req, loki_now_ns(), &start, &end, &err);
    if (rc == 0)
        rc = loki_selector(arg(req, "query"), &e, &err);
    struct matcher *const *ms = e ? e->root->log.ms : NULL;
    size_t nms = e ? e->root->log.nms : 0;
    if (rc == 0)
        rc = logstore_label_names(v->logs, ms, nms, start, end, &names, &err);
    vg_buf_puts(&b, "{\"detectedLabels\":[");
    for (size_t i = 0, w = 0; rc == 0 && i < names.n; i++) {
        struct logstore_strings vals = { 0 };
        struct vg_str name = vg_str_c(names.v[i]);
        rc = logstore_label_values(v->logs, name, ms, nms, start, end, &vals, &err);
        if (rc == 0 && ((is_static_label(name) && vals.n) || !reject_label(vals.v, vals.n))) {
            vg_buf_puts(&b, w++ ? ",{\"label\":" : "{\"label\":");
            vg_buf_json_str(&b, name.p, name.len);
            vg_buf_printf(&b, ",\"cardinality\":%zu}", vals.n);
        }
        logstore_strings_free(&vals);
    }
    vg_buf_puts(&b, "]}");
    logstore_strings_free(&names);
    logql_expr_free(e);
    loki_finish(resp, rc, &err, &b);
}

/* ---- detected_fields ---- */

enum { PARSER_JSON = 1, PARSER_LOGFMT = 2, PARSER_NONE = 4 /* structured metadata */ };

struct field {
    char *name;
    const char *type;
    unsigned parsers;
    uint64_t *set; /* open addressing, 0 = empty (a hash of 0 is stored as 1) */
    size_t n, cap;
};

struct fields {
    struct field *v;
    size_t n, cap, limit;
    bool failed;
};

static uint64_t hash64(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h ? h : 1;
}

static bool set_add(struct field *f, uint64_t h)
{
    if (2 * (f->n + 1) > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        uint64_t *ns = vg_calloc(cap, sizeof *ns);
        if (!ns)
            return false;
        for (size_t i = 0; i < f->cap; i++)
            if (f->set[i])
                for (size_t j = f->set[i] & (cap - 1);; j = (j + 1) & (cap - 1))
                    if (!ns[j]) {
                        ns[j] = f->set[i];
                        break;
                    }
        vg_free(f->set);
        f->set = ns;
        f->cap = cap;
    }
    for (size_t j = h & (f->cap - 1);; j = (j + 1) & (f->cap - 1)) {
        if (f->set[j] == h)
            return true;
        if (!f->set[j]) {
            f->set[j] = h;
            f->n++;
            return true;
        }
    }
}

/* Records one value of field name found by parser. */
static void fields_add(struct fields *fs, struct vg_str name, struct vg_str value, unsigned parser)
{
    if (fs->failed || name.len == 0)
        return;
    struct field *f = NULL;
    for (size_t i = 0; i < fs->n && !f; i++)
        if (strlen(fs->v[i].name) == name.len && !memcmp(fs->v[i].name, name.p, name.len))
            f = &fs->v[i];
    if (!f) {
        if (fs->n == fs->limit)
            return;
        if (fs->n == fs->cap) {
            size_t cap = fs->cap ? fs->cap * 2 : 32;
            struct field *nv = vg_realloc(fs->v, cap * sizeof *nv);
            if (!nv) {
                fs->failed = true;
                return;
            }
            fs->v = nv;
            fs->cap = cap;
        }
        f = &fs->v[fs->n];
        *f = (struct field){ .name = vg_strndup(name.p, name.len) };
        if (!f->name) {
            fs->failed = true;
            return;
        }
        fs->n++;
        /* As Loki, the type comes from the first value seen. */
        f->type = loki_detect_type(value.p, value.len);
    }
    f->parsers |= parser;
    if (!set_add(f, hash64(value.p, value.len)))
        fs->failed = true;
}

static void fields_free(struct fields *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        vg_free(fs->v[i].name);
        vg_free(fs->v[i].set);
    }
    vg_free(fs->v);
}

static int cmp_field(const void *a, const void *b)
{
    return strcmp(((const struct field *)a)->name, ((const struct field *)b)->name);
}

/* Fields of one line: json when the line is a JSON object, else logfmt. */
static void parse_line(struct fields *fs, const struct logparse *json, const struct logparse *lf,
                       struct vg_str line, struct vg_arena *a)
{
    const struct logparse *ps[2] = { json, lf };
    const unsigned ids[2] = { PARSER_JSON, PARSER_LOGFMT };
    for (int k = 0; k < 2; k++) {
        struct logparse_result res;
        vg_arena_reset(a);
        if (logparse_line(ps[k], line.p, line.len, 0, a, &res) < 0) {
            fs->failed = true;
            return;
        }
        if (res.status != LOGPARSE_PARSED || res.nfields == 0)
            continue;
        for (size_t i = 0; i < res.nfields; i++)
            fields_add(fs, res.fields[i].name, res.fields[i].value, ids[k]);
        return;
    }
}

static void json_fields(struct vg_buf *b, struct fields *fs)
{
    if (fs->n > 1)
        qsort(fs->v, fs->n, sizeof *fs->v, cmp_field);
    vg_buf_puts(b, "{\"fields\":[");
    for (size_t i = 0; i < fs->n; i++) {
        const struct field *f = &fs->v[i];
        vg_buf_puts(b, i ? ",{\"label\":" : "{\"label\":");
        vg_buf_json_str(b, f->name, strlen(f->name));
        vg_buf_printf(b, ",\"type\":\"%s\",\"cardinality\":%zu,\"parsers\":", f->type, f->n);
        if (!(f->parsers & (PARSER_JSON | PARSER_LOGFMT))) {
            vg_buf_puts(b, "null}");
            continue;
        }
        vg_buf_putc(b, '[');
        if (f->parsers & PARSER_JSON)
            vg_buf_puts(b, "\"json\"");
        if (f->parsers & PARSER_LOGFMT)
            vg_buf_puts(b, f->parsers & PARSER_JSON ? ",\"logfmt\"" : "\"logfmt\"");
        vg_buf_puts(b, "]}");
    }
    vg_buf_printf(b, "],\"limit\":%zu}", fs->limit);
}

static int field_params(const struct http_request *req, struct logql_params *p, size_t *limit,
                        struct vg_err *err)
{
    memset(p, 0, sizeof *p);
    p->backward = true;
    if (loki_bounds(req, loki_now_ns(), &p->start_ns, &p->end_ns, err) < 0)
        return VG_EINVAL;
    if (p->end_ns < p->start_ns)
        return vg_err_set(err, VG_EINVAL, LOKI_END_BEFORE_START);
    p->step_ns = loki_default_step(p->start_ns, p->end_ns);
    const char *ll = arg(req, "line_limit");
    struct http_arg la = { "limit", ll };
    struct http_request sub = { .args = &la, .nargs = *ll ? 1 : 0 };
    if (loki_limit(&sub, DEFAULT_LINE_LIMIT, &p->limit, err) < 0)
        return VG_EINVAL;
    if (p->limit > MAX_LINE_LIMIT)
        p->limit = MAX_LINE_LIMIT;
    const char *fl = arg(req, "limit");
    la.value = *fl ? fl : arg(req, "field_limit");
    sub.nargs = *la.value ? 1 : 0;
    return loki_limit(&sub, DEFAULT_FIELD_LIMIT, limit, err);
}

static int detect(struct vigil *v, const struct logql_expr *e, const struct logql_params *p,
                  struct fields *fs, struct vg_err *err)
{
    struct logparse_config jc = { .format = "json" }, lc = { .format = "logfmt" };
    struct logparse *json = logparse_new(&jc, err);
    struct logparse *lf = json ? logparse_new(&lc, err) : NULL;
    struct vg_arena *a = lf ? vg_arena_new(16384) : NULL;
    struct logql_limits lim;
    loki_limits(v, &lim);
    struct logql_result *r = NULL;
    int rc = !json || !lf ? (err->code < 0 ? err->code : VG_EINTERNAL)
             : !a         ? vg_err_set(err, VG_ENOMEM, "out of memory")
                          : logql_exec(v->logs, e, p, &lim, &r, err);
    for (size_t i = 0; rc == 0 && r && i < r->nstreams; i++) {
        const struct logql_stream *s = &r->streams[i];
        for (size_t k = 0; k < s->nentries; k++) {
            const struct logql_entry *en = &s->entries[k];
            for (size_t m = 0; m < en->nmeta; m++)
                fields_add(fs, en->meta[m].name, en->meta[m].value, PARSER_NONE);
            parse_line(fs, json, lf, en->line, a);
        }
    }
    if (rc == 0 && fs->failed)
        rc = vg_err_set(err, VG_ENOMEM, "out of memory detecting fields");
    logql_result_free(r);
    vg_arena_free(a);
    logparse_free(lf);
    logparse_free(json);
    return rc;
}

void loki_detected_fields(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct logql_params p;
    struct fields fs = { 0 };
    struct logql_expr *e = NULL;
    int rc = field_params(req, &p, &fs.limit, &err);
    if (rc == 0)
        rc = loki_selector(arg(req, "query"), &e, &err);
    if (rc == 0 && !e)
        rc = vg_err_set(&err, VG_EINVAL, LOKI_NEED_MATCHER);
    if (rc == 0)
        rc = detect(v, e, &p, &fs, &err);
    logql_expr_free(e);
    struct vg_buf b;
    vg_buf_init(&b);
    if (rc == 0)
        json_fields(&b, &fs);
    fields_free(&fs);
    loki_finish(resp, rc, &err, &b);
}
