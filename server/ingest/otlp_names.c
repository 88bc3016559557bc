/* otlp_names: see otlp_names.h. */
#include "otlp_names.h"

#include <math.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;


static bool is_metric_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == ':';
}

static bool is_label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool all_underscores(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_')
            return false;
    return true;
}

struct unit_row {
    const char *otel, *prom;
};

/* The unit map of the OpenTelemetry-to-Prometheus specification (UCUM case-sensitive). */
static const struct unit_row unit_map[] = {
    { "d", "days" }, { "h", "hours" }, { "min", "minutes" }, { "s", "seconds" },
    { "ms", "milliseconds" }, { "us", "microseconds" }, { "ns", "nanoseconds" },
    { "By", "bytes" }, { "KiBy", "kibibytes" }, { "MiBy", "mebibytes" },
    { "GiBy", "gibibytes" }, { "TiBy", "tibibytes" }, { "KBy", "kilobytes" },
    { "MBy", "megabytes" }, { "GBy", "gigabytes" }, { "TBy", "terabytes" },
    { "m", "meters" }, { "V", "volts" }, { "A", "amperes" }, { "J", "joules" },
    { "W", "watts" }, { "g", "grams" }, { "Cel", "celsius" }, { "Hz", "hertz" },
    { "1", "" }, { "%", "percent" },
};

static const struct unit_row per_unit_map[] = {
    { "s", "second" }, { "m", "minute" }, { "h", "hour" }, { "d", "day" },
    { "w", "week" }, { "mo", "month" }, { "y", "year" },
};

static struct vg_str trim_space(struct vg_str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static struct vg_str map_unit(struct vg_str u, const struct unit_row *map, size_t n)
{
    if (u.len == 0 || memchr(u.p, '{', u.len) || memchr(u.p, '}', u.len))
        return (struct vg_str){ "", 0 };
    for (size_t i = 0; i < n; i++)
        if (vg_str_eq_c(u, map[i].otel))
            return vg_str_c(map[i].prom);
    return u;
}

/* Writes s into buf with invalid characters as "_", runs of "_" collapsed and leading and
 * trailing "_" removed; returns the length. buf holds at least s.len bytes. */
static size_t clean_unit(struct vg_str s, char *buf)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++) {
        char c = is_metric_char(s.p[i]) ? s.p[i] : '_';
        if (c == '_' && (n == 0 || buf[n - 1] == '_'))
            continue;
        buf[n++] = c;
    }
    while (n && buf[n - 1] == '_')
        n--;
    return n;
}

/* The two unit suffixes ("seconds", "per_second") of a UCUM unit, cleaned; arena strings. */
static void unit_suffixes(struct vg_arena *a, const char *unit, struct vg_str *main_s,
                          struct vg_str *per_s)
{
    struct vg_str u = vg_str_c(unit ? unit : "");
    const char *slash = u.len ? memchr(u.p, '/', u.len) : NULL;
    struct vg_str m = { u.p, slash ? (size_t)(slash - u.p) : u.len };
    struct vg_str p = { slash ? slash + 1 : "", slash ? u.len - m.len - 1 : 0 };
    m = map_unit(trim_space(m), unit_map, sizeof unit_map / sizeof unit_map[0]);
    p = map_unit(trim_space(p), per_unit_map, sizeof per_unit_map / sizeof per_unit_map[0]);
    *main_s = *per_s = (struct vg_str){ "", 0 };
    char *buf = vg_arena_alloc(a, m.len + p.len + 8);
    if (!buf)
        return;
    main_s->p = buf;
    main_s->len = clean_unit(m, buf);
    if (p.len) {
        char *pb = buf + main_s->len + 1;
        memcpy(pb, "per_", 4);
        size_t n = clean_unit(p, pb + 4);
        if (n)
            *per_s = (struct vg_str){ pb, n + 4 };
    }
}

struct tokens {
    struct vg_str *v;
    size_t n;
};

/* Splits s at every character for which keep() is false. */
static bool tokenize(struct vg_arena *a, struct vg_str s, bool (*keep)(char), size_t extra,
                     struct tokens *t)
{
    t->n = 0;
    t->v = vg_arena_alloc(a, (s.len / 2 + 1 + extra) * sizeof *t->v);
    if (!t->v)
        return false;
    size_t i = 0;
    while (i < s.len) {
        while (i < s.len && !keep(s.p[i]))
            i++;
        size_t start = i;
        while (i < s.len && keep(s.p[i]))
            i++;
        if (i > start)
            t->v[t->n++] = (struct vg_str){ s.p + start, i - start };
    }
    return true;
}

static bool not_underscore(char c)
{
    return c != '_';
}

static bool metric_or_underscore(char c)
{
    return is_metric_char(c) || c == '_';
}

/* True when the "_"-separated words of suffix appear in a row among the name tokens. */
static bool has_words(const struct tokens *name, struct vg_str suffix, struct vg_arena *a)
{
    struct tokens w;
    if (!tokenize(a, suffix, not_underscore, 0, &w) || w.n == 0)
        return false;
    for (size_t i = 0; i + w.n <= name->n; i++) {
        size_t k = 0;
        while (k < w.n && vg_str_eq(name->v[i + k], w.v[k]))
            k++;
        if (k == w.n)
            return true;
    }
    return false;
}

static void move_to_end(struct tokens *t, const char *word)
{
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!vg_str_eq_c(t->v[i], word))
            t->v[k++] = t->v[i];
    t->v[k++] = vg_str_c(word);
    t->n = k;
}

/* Joins tokens with "_", prefixing "_" when the result starts with a digit. */
static const char *join_tokens(struct vg_arena *a, const struct tokens *t)
{
    size_t len = 2;
    for (size_t i = 0; i < t->n; i++)
        len += t->v[i].len + 1;
    char *out = vg_arena_alloc(a, len);
    if (!out)
        return NULL;
    size_t n = 0;
    if (t->n && t->v[0].len && is_digit(t->v[0].p[0]))
        out[n++] = '_';
    for (size_t i = 0; i < t->n; i++) {
        if (i)
            out[n++] = '_';
        memcpy(out + n, t->v[i].p, t->v[i].len);
        n += t->v[i].len;
    }
    out[n] = 0;
    return out;
}

const char *otlp_names_metric(struct vg_arena *a, const char *name, const char *unit,
                             enum tsdb_metric_type kind, bool from_sum, bool add_suffixes)
{
    struct vg_str s = vg_str_c(name ? name : "");
    struct tokens t;
    if (!add_suffixes) {
        if (!tokenize(a, s, metric_or_underscore, 0, &t))
            return NULL;
    } else {
        if (!tokenize(a, s, is_metric_char, 4, &t))
            return NULL;
        struct vg_str m, p;
        unit_suffixes(a, unit, &m, &p);
        if (m.len && !has_words(&t, m, a))
            t.v[t.n++] = m;
        if (p.len && !has_words(&t, p, a))
            t.v[t.n++] = p;
        if (kind == TSDB_TYPE_COUNTER)
            move_to_end(&t, "total");
        if (kind == TSDB_TYPE_GAUGE && !from_sum && unit && strcmp(unit, "1") == 0)
            move_to_end(&t, "ratio");
    }
    const char *out = join_tokens(a, &t);
    if (!out || all_underscores(out, strlen(out)))
        return NULL;
    return out;
}

struct vg_str otlp_names_unit(struct vg_arena *a, const char *unit)
{
    struct vg_str m, p;
    unit_suffixes(a, unit, &m, &p);
    if (!p.len)
        return m;
    if (!m.len)
        return p;
    char *s = vg_arena_alloc(a, m.len + p.len + 2);
    if (!s)
        return (struct vg_str){ "", 0 };
    memcpy(s, m.p, m.len);
    s[m.len] = '_';
    memcpy(s + m.len + 1, p.p, p.len);
    s[m.len + 1 + p.len] = 0;
    return (struct vg_str){ s, m.len + 1 + p.len };
}

const char *otlp_names_label(struct vg_arena *a, const char *key, size_t len)
{
    bool reserved = len >= 4 && key[0] == '_' && key[1] == '_' && key[len - 2] == '_' &&
                    key[len - 1] == '_';
    const char *body = reserved ? key + 2 : key;
    size_t blen = reserved ? len - 4 : len;
    char *out = vg_arena_alloc(a, blen + 10);
    if (!out)
        return NULL;
    size_t n = 4; /* room for a "key_" prefix */
    if (reserved) {
        memcpy(out + n, "__", 2);
        n += 2;
    }
    bool prev_us = false;
    for (size_t i = 0; i < blen; i++) {
        if (is_label_char(body[i])) {
            out[n++] = body[i];
            prev_us = false;
        } else if (!prev_us) {
            out[n++] = '_';
            prev_us = true;
        }
    }
    if (reserved) {
        memcpy(out + n, "__", 2);
        n += 2;
    }
    out[n] = 0;
    char *s = out + 4;
    size_t slen = n - 4;
    if (slen == 0 || all_underscores(s, slen))
        return NULL;
    if (is_digit(s[0])) {
        s -= 4;
        memcpy(s, "key_", 4);
    } else if (s[0] == '_' && s[1] == '_') {
        s -= 3;
        memcpy(s, "key", 3);
    }
    return s;
}



static void put_any_json(struct vg_buf *b, const pb_any *v, int depth);

static void put_base64(struct vg_buf *b, const uint8_t *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            w |= p[i + 2];
        char q[4] = { tab[(w >> 18) & 63], tab[(w >> 12) & 63],
                      i + 1 < n ? tab[(w >> 6) & 63] : '=', i + 2 < n ? tab[w & 63] : '=' };
        vg_buf_append(b, q, 4);
    }
}

/* A double as JavaScript and Go's encoding/json print it: plain digits in [1e-6, 1e21). */
static void put_double(struct vg_buf *b, double d)
{
    double m = fabs(d);
    if (m != 0 && (m < 1e-6 || m >= 1e21))
        vg_buf_prom_float(b, d);
    else
        vg_buf_json_float(b, d);
}

/* The text of an attribute value (as pcommon's AsString). */
static void put_any(struct vg_buf *b, const pb_any *v, int depth)
{
    if (!v)
        return;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        vg_buf_puts(b, v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        vg_buf_puts(b, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        vg_buf_printf(b, "%lld", (long long)v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        put_double(b, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        put_base64(b, v->bytes_value.data, v->bytes_value.len);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        put_any_json(b, v, depth);
        break;
    default:
        break;
    }
}

static void put_any_json(struct vg_buf *b, const pb_any *v, int depth)
{
    if (!v || depth > 16) {
        vg_buf_puts(b, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        vg_buf_json_str(b, v->string_value, strlen(v->string_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        vg_buf_putc(b, '"');
        put_base64(b, v->bytes_value.data, v->bytes_value.len);
        vg_buf_putc(b, '"');
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isfinite(v->double_value))
            put_double(b, v->double_value);
        else
            vg_buf_puts(b, "null");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const Opentelemetry__Proto__Common__V1__ArrayValue *arr = v->array_value;
        vg_buf_putc(b, '[');
        for (size_t i = 0; arr && i < arr->n_values; i++) {
            if (i)
                vg_buf_putc(b, ',');
            put_any_json(b, arr->values[i], depth + 1);
        }
        vg_buf_putc(b, ']');
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const Opentelemetry__Proto__Common__V1__KeyValueList *kl = v->kvlist_value;
        vg_buf_putc(b, '{');
        for (size_t i = 0; kl && i < kl->n_values; i++) {
            if (i)
                vg_buf_putc(b, ',');
            vg_buf_json_str(b, kl->values[i]->key, strlen(kl->values[i]->key));
            vg_buf_putc(b, ':');
            put_any_json(b, kl->values[i]->value, depth + 1);
        }
        vg_buf_putc(b, '}');
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
        vg_buf_puts(b, "null");
        break;
    default:
        put_any(b, v, depth);
        break;
    }
}

void otlp_names_value(struct vg_buf *b, const pb_any *v)
{
    put_any(b, v, 0);
}
