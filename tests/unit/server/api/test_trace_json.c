/* Tests server/api/trace_json.c: hex ids with and without leading-zero trimming, every
 * attribute type as an OTLP/JSON AnyValue (64-bit integers as strings, non-finite
 * doubles as protojson's strings, bytes in base64 with padding), and KeyValue pairs. */
#include "../../../../server/api/trace_json.h"

#include <criterion/criterion.h>
#include <math.h>

static struct vg_buf b;

static void init(void)
{
    vg_buf_init(&b);
}

static void fini(void)
{
    vg_buf_free(&b);
}

TestSuite(trace_json, .init = init, .fini = fini);

static const char *text(void)
{
    const char *s = vg_buf_cstr(&b);
    cr_assert_not_null(s);
    return s;
}

Test(trace_json, hex_ids)
{
    const uint8_t id[4] = { 0x00, 0x0a, 0xbc, 0x01 };
    trace_json_hex(&b, id, 4, false);
    cr_assert_str_eq(text(), "\"000abc01\"");
    vg_buf_reset(&b);
    trace_json_hex(&b, id, 4, true);
    cr_assert_str_eq(text(), "\"abc01\"");
    vg_buf_reset(&b);
    const uint8_t zero[2] = { 0, 0 };
    trace_json_hex(&b, zero, 2, true);
    cr_assert_str_eq(text(), "\"0\"");
}

static const char *value(struct span_attr a)
{
    vg_buf_reset(&b);
    cr_assert(trace_json_value(&b, &a));
    return text();
}

Test(trace_json, values)
{
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_STRING, .v.s = VG_STR("a\"b") }),
                     "{\"stringValue\":\"a\\\"b\"}");
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_INT, .v.i = INT64_MIN }),
                     "{\"intValue\":\"-9223372036854775808\"}");
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_DOUBLE, .v.d = 1.5 }),
                     "{\"doubleValue\":1.5}");
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_DOUBLE, .v.d = NAN }),
                     "{\"doubleValue\":\"NaN\"}");
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_DOUBLE, .v.d = -INFINITY }),
                     "{\"doubleValue\":\"-Infinity\"}");
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_BOOL, .v.b = true }),
                     "{\"boolValue\":true}");
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_BYTES, .v.s = VG_STR("hi!?") }),
                     "{\"bytesValue\":\"aGkhPw==\"}");
    cr_assert_str_eq(value((struct span_attr){ .type = SPAN_VAL_BYTES, .v.s = VG_STR("ab") }),
                     "{\"bytesValue\":\"YWI=\"}");
    vg_buf_reset(&b);
    struct span_attr arr = { .type = SPAN_VAL_ARRAY, .v.s = VG_STR("\x0a\x00") };
    cr_assert(!trace_json_value(&b, &arr));
    cr_assert(!trace_json_keyvalue(&b, VG_STR("k"), &arr));
    cr_assert_eq(b.len, 0);
}

Test(trace_json, keyvalue_and_i64)
{
    struct span_attr a = { .type = SPAN_VAL_INT, .v.i = 7 };
    cr_assert(trace_json_keyvalue(&b, VG_STR("n"), &a));
    vg_buf_putc(&b, ' ');
    trace_json_i64(&b, 1700000000000000000LL);
    cr_assert_str_eq(text(), "{\"key\":\"n\",\"value\":{\"intValue\":\"7\"}} \"1700000000000000000\"");
}
