/* Tests storage/base/vg_buf.c: number formatting as Prometheus prints it, JSON escaping. */
#include <criterion/criterion.h>
#include <math.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_buf.h"

static const char *fmt_prom(double v)
{
    static struct vg_buf b;
    vg_buf_reset(&b);
    vg_buf_prom_float(&b, v);
    return vg_buf_cstr(&b);
}

static const char *fmt_json(double v)
{
    static struct vg_buf b;
    vg_buf_reset(&b);
    vg_buf_json_float(&b, v);
    return vg_buf_cstr(&b);
}

Test(vg_buf, exposition_floats_follow_go_g_format)
{
    cr_assert_str_eq(fmt_prom(1), "1");
    cr_assert_str_eq(fmt_prom(1.5), "1.5");
    cr_assert_str_eq(fmt_prom(0.1), "0.1");
    cr_assert_str_eq(fmt_prom(100000), "100000");
    cr_assert_str_eq(fmt_prom(1000000), "1e+06");
    cr_assert_str_eq(fmt_prom(1234567), "1.234567e+06");
    cr_assert_str_eq(fmt_prom(0.0001), "0.0001");
    cr_assert_str_eq(fmt_prom(0.00001), "1e-05");
    cr_assert_str_eq(fmt_prom(-2.5), "-2.5");
    cr_assert_str_eq(fmt_prom(NAN), "NaN");
    cr_assert_str_eq(fmt_prom(INFINITY), "+Inf");
    cr_assert_str_eq(fmt_prom(-INFINITY), "-Inf");
    cr_assert_str_eq(fmt_prom(0), "0");
}

Test(vg_buf, json_floats_never_use_exponents)
{
    cr_assert_str_eq(fmt_json(1234567), "1234567");
    cr_assert_str_eq(fmt_json(1e21), "1000000000000000000000");
    cr_assert_str_eq(fmt_json(0.00001), "0.00001");
    cr_assert_str_eq(fmt_json(3.25), "3.25");
    cr_assert_str_eq(fmt_json(-0.5), "-0.5");
}

Test(vg_buf, json_strings_are_escaped_and_valid_utf8)
{
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_json_str(&b, "a\"b\\c\n\x01\xff\xc3\xa9", 10);
    cr_assert_str_eq(vg_buf_cstr(&b), "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\xc3\xa9\"");
    vg_buf_free(&b);
}

Test(vg_buf, allocation_failure_marks_the_buffer_failed)
{
    struct vg_buf b;
    vg_buf_init(&b);
    vg_alloc_fail_after(1);
    vg_buf_puts(&b, "hello");
    vg_alloc_fail_after(0);
    cr_assert(vg_buf_failed(&b));
    vg_buf_puts(&b, "more");
    cr_assert_eq(b.len, 0);
    vg_buf_free(&b);
}

/* Whole numbers below 2^53 take a shortcut that must print what the digit search prints. */
Test(vg_buf, json_whole_numbers_print_as_integers)
{
    cr_assert_str_eq(fmt_json(709), "709");
    cr_assert_str_eq(fmt_json(-42), "-42");
    cr_assert_str_eq(fmt_json(100), "100");
    cr_assert_str_eq(fmt_json(1e15), "1000000000000000");
    cr_assert_str_eq(fmt_json(9007199254740991.0), "9007199254740991");
    cr_assert_str_eq(fmt_json(-9007199254740991.0), "-9007199254740991");
    cr_assert_str_eq(fmt_json(9007199254740992.0), "9007199254740992"); /* the slow path */
    cr_assert_str_eq(fmt_json(-0.0), "-0");
}
