/* otlp_json: see otlp_json.h for the mapping.
 *
 * Decoding parses the whole body with jansson, then walks the tree next to the message
 * descriptor, writing into protobuf-c structs the way protobuf_c_message_unpack would:
 * every message is arena memory initialised with its descriptor's message_init; a
 * repeated field is an arena array plus its n_ count; a oneof member sets the case word
 * at quantifier_offset; a proto2 optional scalar sets its has_ word. The JSON path of the
 * value being decoded is kept in a buffer so every error can name it. Recursion follows
 * the JSON nesting, which a byte scan caps at OTLP_JSON_MAX_DEPTH before jansson runs. */
#include "otlp_json.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 480 /* leaves room for the reason inside VG_ERR_MSG_MAX */

struct dec {
    struct vg_arena *a;
    struct vg_err *err;
    size_t path_len;
    char path[PATH_MAX_LEN];
};

/* ---- field names ---- */

/* proto3's JSON name: underscores dropped, the letter after one upper-cased. */
static char camel_char(const char *name, size_t *i)
{
    if (name[*i] == '_' && name[*i + 1]) {
        (*i)++;
        char c = name[*i];
        return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
    }
    return name[*i];
}

static int key_is_camel(const char *key, size_t klen, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; name[i]; i++, k++) {
        if (k >= klen || key[k] != camel_char(name, &i))
            return 0;
    }
    return k == klen;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key, size_t klen)
{
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((strlen(f->name) == klen && memcmp(f->name, key, klen) == 0) ||
            key_is_camel(key, klen, f->name))
            return f;
    }
    return NULL;
}

/* OTLP sends these ids as hex; returns the decoded size they must have, or 0. */
static size_t hex_id_size(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_BYTES)
        return 0;
    if (strcmp(f->name, "trace_id") == 0)
        return 16;
    if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0)
        return 8;
    return 0;
}

/* ---- errors and paths ---- */

static size_t path_push(struct dec *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the path, returning the length to restore; a path too long to hold keeps
 * its head (the part that locates the record) and ends in "...". */
static size_t path_push(struct dec *c, const char *fmt, ...)
{
    size_t old = c->path_len;
    size_t room = sizeof c->path - c->path_len;
    if (room <= 4)
        return old;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + c->path_len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= room) {
        memcpy(c->path + sizeof c->path - 4, "...", 4);
        c->path_len = sizeof c->path - 1;
    } else {
        c->path_len += (size_t)n;
    }
    return old;
}

static void path_pop(struct dec *c, size_t old)
{
    c->path_len = old;
    c->path[old] = '\0';
}

static int fail(struct dec *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct dec *c, int code, const char *fmt, ...)
{
    char reason[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return vg_err_set(c->err, code, "%s: %s", c->path_len ? c->path : "(top level)", reason);
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

static int wrong_type(struct dec *c, const char *want, const json_t *v)
{
    return fail(c, VG_EINVAL, "expected %s, got %s", want, json_kind(v));
}

static void *arena_get(struct dec *c, size_t n)
{
    void *p = vg_arena_calloc(c->a, n);
    if (!p)
        fail(c, VG_ETOOLARGE, "request memory limit reached (%zu bytes of decoded data)",
             vg_arena_used(c->a));
    return p;
}

/* ---- scalars ---- */

/* A decimal integer string: optional '-', then digits only. Returns 0 or -1 (syntax)
 * or -2 (out of int64/uint64 range for the sign). */
static int parse_decimal(const char *s, size_t len, int *neg, uint64_t *mag)
{
    size_t i = 0;
    *neg = 0;
    *mag = 0;
    if (len > 0 && s[0] == '-') {
        *neg = 1;
        i = 1;
    }
    if (i == len)
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (*mag > (UINT64_MAX - d) / 10)
            return -2;
        *mag = *mag * 10 + d;
    }
    return 0;
}

/* The value as the client wrote it, for range errors. */
static const char *show(const json_t *v, char *buf, size_t n)
{
    if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%g", json_real_value(v));
    else
        snprintf(buf, n, "\"%.40s\"", json_string_value(v));
    return buf;
}

/* Reads an integral number or decimal string as sign and magnitude. */
static int get_integer(struct dec *c, const json_t *v, int *neg, uint64_t *mag)
{
    char shown[64];
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        *neg = x < 0;
        *mag = *neg ? 0 - (uint64_t)x : (uint64_t)x;
        return 0;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x != trunc(x))
            return fail(c, VG_EINVAL, "expected an integer, got %g", x);
        if (!(fabs(x) < 18446744073709551616.0))
            return fail(c, VG_EINVAL, "integer %g out of range", x);
        *neg = x < 0;
        *mag = (uint64_t)fabs(x);
        return 0;
    }
    if (!json_is_string(v))
        return wrong_type(c, "an integer", v);
    int syntax = parse_decimal(json_string_value(v), json_string_length(v), neg, mag);
    if (syntax == -1)
        return fail(c, VG_EINVAL, "expected an integer, got the string \"%.40s\"",
                    json_string_value(v));
    if (syntax == -2)
        return fail(c, VG_EINVAL, "integer %s out of range", show(v, shown, sizeof shown));
    return 0;
}

/* An integer in [lo, hi], from a number or a decimal string. */
static int get_int(struct dec *c, const json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    int neg = 0;
    uint64_t mag = 0;
    char shown[64];
    int rc = get_integer(c, v, &neg, &mag);
    if (rc < 0)
        return rc;
    if (neg ? mag > (uint64_t)-(lo + 1) + 1 : mag > (uint64_t)hi)
        return fail(c, VG_EINVAL, "integer %s out of range for %s", show(v, shown, sizeof shown),
                    hi == INT32_MAX ? "int32" : "int64");
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static int get_uint(struct dec *c, const json_t *v, uint64_t hi, uint64_t *out)
{
    int neg = 0;
    uint64_t mag = 0;
    char shown[64];
    int rc = get_integer(c, v, &neg, &mag);
    if (rc < 0)
        return rc;
    if ((neg && mag) || mag > hi)
        return fail(c, VG_EINVAL, "integer %s out of range for %s", show(v, shown, sizeof shown),
                    hi == UINT32_MAX ? "uint32" : "uint64");
    *out = mag;
    return 0;
}

/* A string that reads as a JSON number, so strtod's extras (hex, "inf") stay out. */
static int numeric_string(const char *s, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!strchr("0123456789+-.eE", s[i]))
            return 0;
    }
    return 1;
}

static int get_double(struct dec *c, const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return wrong_type(c, "a number", v);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
    } else if (strcmp(s, "Infinity") == 0) {
        *out = INFINITY;
    } else if (strcmp(s, "-Infinity") == 0) {
        *out = -INFINITY;
    } else {
        char *end = NULL;
        if (!numeric_string(s, len) || (*out = strtod(s, &end), end != s + len))
            return fail(c, VG_EINVAL, "expected a number, got the string \"%.40s\"", s);
    }
    return 0;
}

static int hex_val(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int get_hex_id(struct dec *c, const json_t *v, size_t want, ProtobufCBinaryData *out)
{
    if (!json_is_string(v))
        return wrong_type(c, "a hex string", v);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    out->len = 0;
    out->data = NULL;
    if (len == 0)
        return 0; /* an empty id means "no id", as in the binary encoding */
    if (len != want * 2)
        return fail(c, VG_EINVAL, "expected %zu hex digits, got %zu characters", want * 2, len);
    uint8_t *p = arena_get(c, want);
    if (!p)
        return VG_ETOOLARGE;
    for (size_t i = 0; i < want; i++) {
        int hi = hex_val(s[2 * i]), lo = hex_val(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(c, VG_EINVAL, "invalid hex digit at character %zu",
                        hi < 0 ? 2 * i : 2 * i + 1);
        p[i] = (uint8_t)(hi << 4 | lo);
    }
    out->data = p;
    out->len = want;
    return 0;
}

static int b64_val(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

static int get_base64(struct dec *c, const json_t *v, ProtobufCBinaryData *out)
{
    if (!json_is_string(v))
        return wrong_type(c, "a base64 string", v);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    while (len > 0 && s[len - 1] == '=' && json_string_length(v) - len < 2)
        len--;
    if (len % 4 == 1)
        return fail(c, VG_EINVAL, "invalid base64 length %zu", json_string_length(v));
    uint8_t *p = arena_get(c, len / 4 * 3 + 3);
    if (!p)
        return VG_ETOOLARGE;
    size_t n = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < len; i++) {
        int x = b64_val(s[i]);
        if (x < 0)
            return fail(c, VG_EINVAL, "invalid base64 character at %zu", i);
        acc = acc << 6 | (uint32_t)x;
        if (i % 4 == 3) {
            p[n++] = (uint8_t)(acc >> 16);
            p[n++] = (uint8_t)(acc >> 8);
            p[n++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) {
        p[n++] = (uint8_t)(acc >> 4);
    } else if (len % 4 == 3) {
        p[n++] = (uint8_t)(acc >> 10);
        p[n++] = (uint8_t)(acc >> 2);
    }
    out->data = p;
    out->len = n;
    return 0;
}

static int get_enum(struct dec *c, const ProtobufCFieldDescriptor *f, const json_t *v, int *out)
{
    if (json_is_string(v)) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(v));
        if (!ev)
            return fail(c, VG_EINVAL, "unknown %s value \"%.60s\"",
                        ((const ProtobufCEnumDescriptor *)f->descriptor)->short_name,
                        json_string_value(v));
        *out = ev->value;
        return 0;
    }
    if (!json_is_number(v))
        return wrong_type(c, "an enum name or integer", v);
    /* proto3 enums are open: unknown numbers are kept, as the binary decoder does. */
    int64_t x = 0;
    int rc = get_int(c, v, INT32_MIN, INT32_MAX, &x);
    if (rc == 0)
        *out = (int)x;
    return rc;
}

/* ---- messages ---- */

static int decode_message(struct dec *c, const ProtobufCMessageDescriptor *d, const json_t *obj,
                          ProtobufCMessage *msg);

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Decodes one value of field f's type into dst (the member, or one array element). */
static int decode_value(struct dec *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                        void *dst)
{
    int64_t i64 = 0;
    uint64_t u64 = 0;
    int rc = 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = get_int(c, v, INT32_MIN, INT32_MAX, &i64)) == 0)
            *(int32_t *)dst = (int32_t)i64;
        return rc;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = get_uint(c, v, UINT32_MAX, &u64)) == 0)
            *(uint32_t *)dst = (uint32_t)u64;
        return rc;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return get_int(c, v, INT64_MIN, INT64_MAX, (int64_t *)dst);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return get_uint(c, v, UINT64_MAX, (uint64_t *)dst);
    case PROTOBUF_C_TYPE_FLOAT: {
        double x = 0;
        if ((rc = get_double(c, v, &x)) == 0)
            *(float *)dst = (float)x;
        return rc;
    }
    case PROTOBUF_C_TYPE_DOUBLE:
        return get_double(c, v, (double *)dst);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v))
            return wrong_type(c, "true or false", v);
        *(protobuf_c_boolean *)dst = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(c, f, v, (int *)dst);
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return wrong_type(c, "a string", v);
        /* jansson (without JSON_ALLOW_NUL) refuses \u0000, so the C string is whole. */
        size_t n = json_string_length(v);
        char *s = arena_get(c, n + 1);
        if (!s)
            return VG_ETOOLARGE;
        memcpy(s, json_string_value(v), n + 1);
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        size_t id = hex_id_size(f);
        return id ? get_hex_id(c, v, id, dst) : get_base64(c, v, dst);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage *sub = arena_get(c, md->sizeof_message);
        if (!sub)
            return VG_ETOOLARGE;
        md->message_init(sub);
        if ((rc = decode_message(c, md, v, sub)) == 0)
            *(ProtobufCMessage **)dst = sub;
        return rc;
    }
    }
    return fail(c, VG_EINTERNAL, "field type %d not supported", (int)f->type);
}

static int decode_repeated(struct dec *c, const ProtobufCFieldDescriptor *f, const json_t *v,
                           char *base)
{
    if (!json_is_array(v))
        return wrong_type(c, "an array", v);
    size_t n = json_array_size(v), sz = elem_size(f->type);
    char *arr = NULL;
    if (n > 0 && !(arr = arena_get(c, n * sz)))
        return VG_ETOOLARGE;
    for (size_t i = 0; i < n; i++) {
        size_t mark = path_push(c, "[%zu]", i);
        const json_t *e = json_array_get(v, i);
        int rc = json_is_null(e) ? wrong_type(c, "a value", e)
                                 : decode_value(c, f, e, arr + i * sz);
        if (rc < 0)
            return rc;
        path_pop(c, mark);
    }
    *(size_t *)(base + f->quantifier_offset) = n;
    *(void **)(base + f->offset) = arr;
    return 0;
}

static const char *oneof_member_name(const ProtobufCMessageDescriptor *d, uint32_t id)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, (unsigned)id);
    return f ? f->name : "?";
}

static int decode_message(struct dec *c, const ProtobufCMessageDescriptor *d, const json_t *obj,
                          ProtobufCMessage *msg)
{
    if (!json_is_object(obj))
        return wrong_type(c, "an object", obj);
    char *base = (char *)msg;
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)obj, key, klen, v) {
        if (json_is_null(v))
            continue;
        const ProtobufCFieldDescriptor *f = find_field(d, key, klen);
        if (!f)
            continue; /* unknown fields are ignored, as the spec requires */
        size_t mark = path_push(c, "%s%.*s", c->path_len ? "." : "", (int)klen, key);
        int rc;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = decode_repeated(c, f, v, base);
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
                if (*which != 0 && *which != f->id)
                    return fail(c, VG_EINVAL, "only one of a oneof may be set, and %s is too",
                                oneof_member_name(d, *which));
                *which = f->id;
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
            }
            rc = decode_value(c, f, v, base + f->offset);
        }
        if (rc < 0)
            return rc;
        path_pop(c, mark);
    }
    return 0;
}

/* Finds nesting deeper than max without building anything, so neither jansson's parser
 * nor decode_message recurses past it. Returns the offending byte offset or -1. */
static long too_deep(const char *buf, size_t len, int max)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            if (++depth > max)
                return (long)i;
        } else if ((ch == '}' || ch == ']') && depth > 0) {
            depth--;
        }
    }
    return -1;
}

int otlp_json_decode(const ProtobufCMessageDescriptor *d, const char *buf, size_t len,
                     struct vg_arena *a, ProtobufCMessage **out, struct vg_err *err)
{
    *out = NULL;
    if (len > OTLP_JSON_MAX_BYTES)
        return vg_err_set(err, VG_ETOOLARGE, "JSON body of %zu bytes exceeds the %zu-byte limit",
                          len, OTLP_JSON_MAX_BYTES);
    long at = too_deep(buf, len, OTLP_JSON_MAX_DEPTH);
    if (at >= 0)
        return vg_err_set(err, VG_EINVAL, "JSON nested deeper than %d levels at byte offset %ld",
                          OTLP_JSON_MAX_DEPTH, at);
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    if (!root) {
        if (json_error_code(&je) == json_error_out_of_memory)
            return vg_err_set(err, VG_ENOMEM, "out of memory parsing JSON");
        return vg_err_set(err, VG_EINVAL, "invalid JSON at line %d, column %d: %s", je.line,
                          je.column, je.text);
    }
    struct dec c = {.a = a, .err = err};
    int rc = VG_ETOOLARGE;
    ProtobufCMessage *msg = arena_get(&c, d->sizeof_message);
    if (msg) {
        d->message_init(msg);
        rc = decode_message(&c, d, root, msg);
    }
    json_decref(root);
    if (rc == 0)
        *out = msg;
    return rc;
}

/* ---- encoding ---- */

static void put_key(struct vg_buf *b, const char *name, int *first)
{
    if (!*first)
        vg_buf_putc(b, ',');
    *first = 0;
    vg_buf_putc(b, '"');
    for (size_t i = 0; name[i]; i++)
        vg_buf_putc(b, camel_char(name, &i));
    vg_buf_puts(b, "\":");
}

static void put_double(struct vg_buf *b, double x)
{
    if (isnan(x))
        vg_buf_puts(b, "\"NaN\"");
    else if (isinf(x))
        vg_buf_puts(b, x > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    else
        vg_buf_prom_float(b, x);
}

static void put_bytes(struct vg_buf *b, const ProtobufCFieldDescriptor *f,
                      const ProtobufCBinaryData *bd)
{
    static const char hex[] = "0123456789abcdef";
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    vg_buf_putc(b, '"');
    if (hex_id_size(f)) {
        for (size_t i = 0; i < bd->len; i++) {
            vg_buf_putc(b, hex[bd->data[i] >> 4]);
            vg_buf_putc(b, hex[bd->data[i] & 15]);
        }
    } else {
        for (size_t i = 0; i < bd->len; i += 3) {
            uint32_t acc = (uint32_t)bd->data[i] << 16;
            size_t left = bd->len - i;
            if (left > 1)
                acc |= (uint32_t)bd->data[i + 1] << 8;
            if (left > 2)
                acc |= bd->data[i + 2];
            char q[4] = {b64[acc >> 18 & 63], b64[acc >> 12 & 63],
                         left > 1 ? b64[acc >> 6 & 63] : '=', left > 2 ? b64[acc & 63] : '='};
            vg_buf_append(b, q, 4);
        }
    }
    vg_buf_putc(b, '"');
}

static int encode_message(const ProtobufCMessage *m, struct vg_buf *b, struct vg_err *err);

static int encode_value(const ProtobufCFieldDescriptor *f, const void *p, struct vg_buf *b,
                        struct vg_err *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: vg_buf_printf(b, "%d", (int)*(const int32_t *)p); break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: vg_buf_printf(b, "%u", (unsigned)*(const uint32_t *)p); break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        vg_buf_printf(b, "\"%lld\"", (long long)*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        vg_buf_printf(b, "\"%llu\"", (unsigned long long)*(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT: put_double(b, *(const float *)p); break;
    case PROTOBUF_C_TYPE_DOUBLE: put_double(b, *(const double *)p); break;
    case PROTOBUF_C_TYPE_BOOL:
        vg_buf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_ENUM: vg_buf_printf(b, "%d", *(const int *)p); break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        vg_buf_json_str(b, s ? s : "", s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: put_bytes(b, f, p); break;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (!sub) {
            vg_buf_puts(b, "{}");
            break;
        }
        return encode_message(sub, b, err);
    }
    default:
        return vg_err_set(err, VG_EINTERNAL, "%s: field type %d not supported", f->name,
                          (int)f->type);
    }
    return 0;
}

/* proto3 JSON leaves out fields that hold their default value. */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p == 0;
    default: {
        static const unsigned char zero[8];
        return memcmp(p, zero, elem_size(f->type)) == 0;
    }
    }
}

static int field_present(const ProtobufCFieldDescriptor *f, const char *base)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
        f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset) != 0;
    return !is_default(f, base + f->offset);
}

static int encode_message(const ProtobufCMessage *m, struct vg_buf *b, struct vg_err *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int first = 1, rc = 0;
    vg_buf_putc(b, '{');
    for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            if (field_present(f, base)) {
                put_key(b, f->name, &first);
                rc = encode_value(f, base + f->offset, b, err);
            }
            continue;
        }
        size_t n = *(const size_t *)(base + f->quantifier_offset);
        const char *arr = *(char *const *)(base + f->offset);
        if (n == 0)
            continue;
        put_key(b, f->name, &first);
        vg_buf_putc(b, '[');
        for (size_t k = 0; k < n && rc == 0; k++) {
            if (k)
                vg_buf_putc(b, ',');
            rc = encode_value(f, arr + k * elem_size(f->type), b, err);
        }
        vg_buf_putc(b, ']');
    }
    vg_buf_putc(b, '}');
    return rc;
}

int otlp_json_encode(const ProtobufCMessage *m, struct vg_buf *out, struct vg_err *err)
{
    int rc = encode_message(m, out, err);
    if (rc == 0 && vg_buf_failed(out))
        rc = vg_err_set(err, VG_ENOMEM, "out of memory encoding %s as JSON",
                        m->descriptor->short_name);
    return rc;
}
