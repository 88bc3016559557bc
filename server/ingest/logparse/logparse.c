/* logparse: the registry of log-line formats and what every format shares: the field
 * builder, key sanitising, backslash unescaping and the timestamp step. See logparse.h.
 *
 * Adding a format is a new file defining one const struct logparse_format and one row
 * in `formats` below (STYLE.md rule 3). The fields array lives in the caller's arena and
 * doubles when full, so a line costs one array per doubling and nothing on the heap. */
#include "logparse_int.h"
#include "logtime.h"

#include "../../../storage/base/vg_alloc.h"

#include <stdio.h>
#include <string.h>

static const struct logparse_format *const formats[] = {
    &nginx_combined_format,
    &apache_common_format,
    &apache_combined_format,
    &json_lines_format,
    &logfmt_format,
    &regex_format,
};

#define NFORMATS (sizeof formats / sizeof formats[0])

const struct logparse_format *logparse_find(const char *name)
{
    for (size_t i = 0; name && i < NFORMATS; i++)
        if (strcmp(formats[i]->name, name) == 0)
            return formats[i];
    return NULL;
}

const struct logparse_format *const *logparse_formats(size_t *n)
{
    *n = NFORMATS;
    return formats;
}

/* ---- the field builder ---- */

int logparse_out_add(struct logparse_out *o, struct vg_str name, struct vg_str value)
{
    if (o->n == o->max)
        return logparse_out_fail(o, "too many fields", 0);
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 16;
        if (cap > o->max)
            cap = o->max;
        struct logparse_field *f = vg_arena_alloc(o->arena, cap * sizeof *f);
        if (!f)
            return VG_ENOMEM;
        if (o->n)
            memcpy(f, o->fields, o->n * sizeof *f);
        o->fields = f;
        o->cap = cap;
    }
    o->fields[o->n++] = (struct logparse_field){ name, value };
    return 0;
}

int logparse_out_fail(struct logparse_out *o, const char *reason, size_t offset)
{
    o->reason = reason;
    o->offset = offset;
    return LOGPARSE_UNPARSABLE;
}

/* ---- unescaping ---- */

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The value of n hex digits at s, or -1. */
static long hex_n(const char *s, size_t avail, size_t n)
{
    if (avail < n)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        int h = hexval((unsigned char)s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *d, unsigned long cp)
{
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        cp = 0xFFFD;
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | (cp >> 18));
    d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static const char simple_from[] = "\"\\/'abfnrtv";
static const char simple_to[] = "\"\\/'\a\b\f\n\r\t\v";

/* Decodes the escape at s[0] == '\\' into d; returns the input bytes used (0: not an
 * escape we know, copy the backslash as is) and sets *w to the bytes written. Every
 * escape writes no more bytes than it reads, so the output fits in the input's size. */
static size_t unescape_one(const char *s, size_t avail, char *d, size_t *w)
{
    if (avail < 2)
        return 0;
    const char *hit = memchr(simple_from, s[1], sizeof simple_from - 1);
    if (hit && s[1]) {
        *d = simple_to[hit - simple_from];
        *w = 1;
        return 2;
    }
    long v;
    switch (s[1]) {
    case 'x':
        if ((v = hex_n(s + 2, avail - 2, 2)) < 0)
            return 0;
        *d = (char)v;
        *w = 1;
        return 4;
    case 'U':
        if ((v = hex_n(s + 2, avail - 2, 8)) < 0)
            return 0;
        *w = put_utf8(d, (unsigned long)v);
        return 10;
    case 'u': {
        if ((v = hex_n(s + 2, avail - 2, 4)) < 0)
            return 0;
        long lo;
        if (v >= 0xD800 && v <= 0xDBFF && avail >= 12 && s[6] == '\\' && s[7] == 'u' &&
            (lo = hex_n(s + 8, avail - 8, 4)) >= 0xDC00 && lo <= 0xDFFF) {
            *w = put_utf8(d, 0x10000 + (((unsigned long)v - 0xD800) << 10) +
                                 ((unsigned long)lo - 0xDC00));
            return 12;
        }
        *w = put_utf8(d, (unsigned long)v);
        return 6;
    }
    default:
        if (avail >= 4 && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *d = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            *w = 1;
            return 4;
        }
        return 0;
    }
}

struct vg_str logparse_unescape(struct logparse_out *o, struct vg_str raw, bool *nomem)
{
    const char *bs = raw.len ? memchr(raw.p, '\\', raw.len) : NULL;
    if (!bs)
        return raw;
    char *d = vg_arena_alloc(o->arena, raw.len);
    if (!d) {
        *nomem = true;
        return (struct vg_str){ NULL, 0 };
    }
    size_t head = (size_t)(bs - raw.p), n = head, i = head;
    memcpy(d, raw.p, head);
    while (i < raw.len) {
        if (raw.p[i] != '\\') {
            d[n++] = raw.p[i++];
            continue;
        }
        size_t w = 0, used = unescape_one(raw.p + i, raw.len - i, d + n, &w);
        if (!used) {
            d[n++] = raw.p[i++];
            continue;
        }
        i += used;
        n += w;
    }
    return (struct vg_str){ d, n };
}

/* ---- keys ---- */

static bool key_char(unsigned char c)
{
    return c == '_' || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

/* The length of the UTF-8 sequence at s (1 for an invalid byte). */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 1;
    if (s[0] < 0xC2 || n > avail)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 1;
    return n;
}

/* Writes the sanitised key to d (room for key.len + 1 bytes); returns its length. */
static size_t sanitize(char *d, struct vg_str key, bool lead)
{
    size_t n = 0;
    if (lead && key.len && key.p[0] >= '0' && key.p[0] <= '9')
        d[n++] = '_';
    for (size_t i = 0; i < key.len;) {
        unsigned char c = (unsigned char)key.p[i];
        if (key_char(c)) {
            d[n++] = (char)c;
            i++;
        } else {
            d[n++] = '_';
            i += c < 0x80 ? 1 : utf8_len((const unsigned char *)key.p + i, key.len - i);
        }
    }
    return n;
}

static struct vg_str trim_spaces(struct vg_str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

struct vg_str logparse_key(struct logparse_out *o, struct vg_str prefix, struct vg_str key,
                           bool *nomem)
{
    key = trim_spaces(key);
    if (!key.len)
        return key;
    bool clean = !prefix.len && !(key.p[0] >= '0' && key.p[0] <= '9');
    for (size_t i = 0; clean && i < key.len; i++)
        clean = key_char((unsigned char)key.p[i]);
    if (clean)
        return key;
    char *d = vg_arena_alloc(o->arena, prefix.len + key.len + 2);
    if (!d) {
        *nomem = true;
        return (struct vg_str){ NULL, 0 };
    }
    size_t n = 0;
    if (prefix.len) {
        memcpy(d, prefix.p, prefix.len);
        n = prefix.len;
        d[n++] = '_';
    }
    n += sanitize(d + n, key, !prefix.len);
    return (struct vg_str){ d, n };
}

/* ---- a configured parser ---- */

struct logparse {
    const struct logparse_format *fmt;
    void *state;
    size_t max_fields;
    char *time_field; /* sanitised like keys; NULL: no timestamp step */
    size_t time_field_len;
    struct logtime time;
};

static int unknown_format(const char *name, struct vg_err *err)
{
    char valid[256];
    size_t n = 0;
    valid[0] = 0;
    for (size_t i = 0; i < NFORMATS && n < sizeof valid; i++)
        n += (size_t)snprintf(valid + n, sizeof valid - n, "%s%s", i ? ", " : "",
                              formats[i]->name);
    return vg_err_set(err, VG_EINVAL, "format: unknown log format \"%.64s\" (valid formats: %s)",
                      name ? name : "", valid);
}

struct logparse *logparse_new(const struct logparse_config *cfg, struct vg_err *err)
{
    const struct logparse_format *fmt = logparse_find(cfg->format);
    if (!fmt) {
        unknown_format(cfg->format, err);
        return NULL;
    }
    struct vg_str field = cfg->time_field, spec = cfg->time_format;
    if (!field.len)
        field = vg_str_c(fmt->time_field);
    if (!spec.len && !cfg->time_field.len)
        spec = vg_str_c(fmt->time_format);
    if (!field.len && cfg->time_format.len) {
        vg_err_set(err, VG_EINVAL,
                   "time_format: set without time_field (format %s has no time field)",
                   fmt->name);
        return NULL;
    }
    struct logparse *p = vg_calloc(1, sizeof *p);
    if (!p) {
        vg_err_set(err, VG_ENOMEM, "logparse: out of memory");
        return NULL;
    }
    p->fmt = fmt;
    p->max_fields = cfg->max_fields ? cfg->max_fields : LOGPARSE_DEFAULT_MAX_FIELDS;
    if (logtime_init(&p->time, spec, err) != 0) {
        vg_err_prefix(err, "time_format");
        logparse_free(p);
        return NULL;
    }
    if (field.len) {
        struct vg_str f = trim_spaces(field);
        p->time_field = vg_malloc(f.len + 2);
        if (!p->time_field) {
            logparse_free(p);
            vg_err_set(err, VG_ENOMEM, "logparse: out of memory");
            return NULL;
        }
        p->time_field_len = sanitize(p->time_field, f, true);
    }
    if (fmt->init && fmt->init(cfg, &p->state, err) != 0) {
        logparse_free(p);
        return NULL;
    }
    return p;
}

void logparse_free(struct logparse *p)
{
    if (!p)
        return;
    if (p->fmt->free)
        p->fmt->free(p->state);
    vg_free(p->time_field);
    vg_free(p);
}

const struct logparse_format *logparse_format_of(const struct logparse *p)
{
    return p->fmt;
}

const struct vg_str *logparse_get(const struct logparse_result *res, struct vg_str name)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (vg_str_eq(res->fields[i].name, name))
            return &res->fields[i].value;
    return NULL;
}

int logparse_line(const struct logparse *p, const char *line, size_t len, int64_t ref_ns,
                  struct vg_arena *a, struct logparse_result *res)
{
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    memset(res, 0, sizeof *res);
    struct logparse_out o = { .arena = a, .max = p->max_fields };
    int rc = p->fmt->parse(p->state, (struct vg_str){ len ? line : "", len }, &o);
    if (rc != 0) {
        res->status = LOGPARSE_UNPARSABLE;
        res->reason = rc == VG_ENOMEM ? "out of memory" : o.reason;
        res->offset = rc == VG_ENOMEM ? 0 : o.offset;
        return rc == VG_ENOMEM ? VG_ENOMEM : 0;
    }
    res->status = LOGPARSE_PARSED;
    res->fields = o.fields;
    res->nfields = o.n;
    if (p->time_field) {
        const struct vg_str *v =
            logparse_get(res, (struct vg_str){ p->time_field, p->time_field_len });
        if (v)
            res->time = logtime_parse(&p->time, *v, ref_ns, &res->time_ns) == 0
                            ? LOGPARSE_TIME_SET
                            : LOGPARSE_TIME_INVALID;
    }
    return 0;
}
