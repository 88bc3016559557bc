/* trace_json: see trace_json.h. */
#include "trace_json.h"

#include <inttypes.h>
#include <math.h>

void trace_json_hex(struct vg_buf *b, const uint8_t *id, size_t n, bool trim)
{
    static const char hex[] = "0123456789abcdef";
    vg_buf_putc(b, '"');
    bool lead = trim;
    for (size_t i = 0; i < n; i++) {
        char d[2] = { hex[id[i] >> 4], hex[id[i] & 15] };
        for (int k = 0; k < 2; k++) {
            bool last = i == n - 1 && k == 1;
            if (lead && d[k] == '0' && !last)
                continue;
            lead = false;
            vg_buf_putc(b, d[k]);
        }
    }
    vg_buf_putc(b, '"');
}

void trace_json_i64(struct vg_buf *b, int64_t v)
{
    vg_buf_printf(b, "\"%" PRId64 "\"", v);
}

static void base64(struct vg_buf *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    vg_buf_putc(b, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char out[4] = { tab[(v >> 18) & 63], tab[(v >> 12) & 63],
                        i + 1 < n ? tab[(v >> 6) & 63] : '=', i + 2 < n ? tab[v & 63] : '=' };
        vg_buf_append(b, out, 4);
    }
    vg_buf_putc(b, '"');
}

bool trace_json_value(struct vg_buf *b, const struct span_attr *a)
{
    switch (a->type) {
    case SPAN_VAL_STRING:
        vg_buf_puts(b, "{\"stringValue\":");
        vg_buf_json_str(b, a->v.s.p ? a->v.s.p : "", a->v.s.len);
        break;
    case SPAN_VAL_INT:
        vg_buf_puts(b, "{\"intValue\":");
        trace_json_i64(b, a->v.i);
        break;
    case SPAN_VAL_DOUBLE:
        vg_buf_puts(b, "{\"doubleValue\":");
        if (isnan(a->v.d))
            vg_buf_puts(b, "\"NaN\"");
        else if (isinf(a->v.d))
            vg_buf_puts(b, a->v.d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        else
            vg_buf_json_float(b, a->v.d);
        break;
    case SPAN_VAL_BOOL:
        vg_buf_puts(b, a->v.b ? "{\"boolValue\":true" : "{\"boolValue\":false");
        break;
    case SPAN_VAL_BYTES:
        vg_buf_puts(b, "{\"bytesValue\":");
        base64(b, (const uint8_t *)a->v.s.p, a->v.s.len);
        break;
    default:
        return false;
    }
    vg_buf_putc(b, '}');
    return true;
}

bool trace_json_keyvalue(struct vg_buf *b, struct vg_str key, const struct span_attr *a)
{
    if (a->type == SPAN_VAL_ARRAY || a->type == SPAN_VAL_MAP)
        return false;
    vg_buf_puts(b, "{\"key\":");
    vg_buf_json_str(b, key.p ? key.p : "", key.len);
    vg_buf_puts(b, ",\"value\":");
    trace_json_value(b, a);
    vg_buf_putc(b, '}');
    return true;
}
