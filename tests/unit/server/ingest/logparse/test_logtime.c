/* Tests server/ingest/logparse/logtime.c: every named layout, strftime-like layouts as
 * loggers use them, the missing-year rule, range and overflow limits, bad specs. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../../server/ingest/logparse/logtime.h"

#define T0 1709992931000000000LL /* 2024-03-09T14:02:11Z */

static int parse(const char *spec, const char *s, int64_t ref, int64_t *ns)
{
    struct logtime t;
    struct vg_err err;
    cr_assert_eq(logtime_init(&t, vg_str_c(spec), &err), 0, "%s: %s", spec, err.msg);
    return logtime_parse(&t, vg_str_c(s), ref, ns);
}

static void ok(const char *spec, const char *s, int64_t want)
{
    int64_t ns = 0;
    cr_assert_eq(parse(spec, s, T0, &ns), 0, "%s: \"%s\" refused", spec, s);
    cr_assert_eq(ns, want, "%s: \"%s\": %lld, want %lld", spec, s, (long long)ns,
                 (long long)want);
}

static void bad(const char *spec, const char *s)
{
    int64_t ns;
    cr_assert_eq(parse(spec, s, T0, &ns), VG_EINVAL, "%s: \"%s\" accepted", spec, s);
}

Test(logtime, rfc3339)
{
    ok("rfc3339", "2024-03-09T14:02:11Z", T0);
    ok("RFC3339Nano", "2024-03-09T14:02:11.418Z", T0 + 418000000);
    ok("rfc3339nano", "2024-03-09T14:02:11.123456789Z", T0 + 123456789);
    ok("rfc3339", "2024-03-09T14:02:11.1234567891234Z", T0 + 123456789); /* truncated */
    ok("rfc3339", "2024-03-09T16:02:11+02:00", T0);
    ok("rfc3339", "2024-03-09T08:32:11.5-0530", T0 + 500000000);
    ok("rfc3339", "2024-03-09 14:02:11", T0); /* no offset: UTC */
    ok("rfc3339", "2024-03-09t14:02:11z", T0);
    ok("rfc3339", "  2024-03-09T14:02:11Z\t", T0);
    ok("rfc3339", "2024-02-29T00:00:00Z", 1709164800000000000LL);
    bad("rfc3339", "2023-02-29T00:00:00Z"); /* not a leap year */
    bad("rfc3339", "2024-13-01T00:00:00Z");
    bad("rfc3339", "2024-03-09T24:00:00Z");
    bad("rfc3339", "2024-03-09T14:02Z");
    bad("rfc3339", "2024-03-09T14:02:11.Z");
    bad("rfc3339", "2024-03-09T14:02:11+2");
    bad("rfc3339", "2024-03-09T14:02:11Z trailing");
    bad("rfc3339", "2024-03-09");
    bad("rfc3339", "");
    bad("rfc3339", "1600-01-01T00:00:00Z"); /* outside int64 nanoseconds */
    bad("rfc3339", "2262-06-01T00:00:00Z");
}

Test(logtime, clf_as_nginx_and_apache_print_it)
{
    ok("clf", "10/Oct/2000:13:55:36 -0700", 971211336000000000LL);
    ok("nginx", "09/Mar/2024:14:02:11 +0000", T0);
    ok("apache", "09/mar/2024:19:32:11 +0530", T0);
    bad("clf", "09/Foo/2024:14:02:11 +0000");
    bad("clf", "09/Mar/2024:14:02:11");
    bad("clf", "32/Mar/2024:14:02:11 +0000");
}

Test(logtime, unix_numbers_are_exact)
{
    ok("unix", "1709992931", T0);
    ok("Unix", "1709992931.123456789", T0 + 123456789);
    ok("unix", "1709992931.1234567899", T0 + 123456789);
    ok("unix", "1.709992931e9", T0);
    ok("unix", "1.7099929315E+09", T0 + 500000000);
    ok("unix", "-1.5", -1500000000LL);
    ok("unix", "0", 0);
    ok("unix_ms", "1709992931418", T0 + 418000000);
    ok("UnixMs", "1709992931418.5", T0 + 418500000);
    ok("unix_us", "1709992931418123", T0 + 418123000);
    ok("unix_ns", "1709992931418123456", T0 + 418123456);
    bad("unix", "");
    bad("unix", "abc");
    bad("unix", "1e");
    bad("unix", "1.2.3");
    bad("unix", "17099929310000000000"); /* beyond int64 nanoseconds */
    bad("unix_ns", "99999999999999999999");
    bad("unix", "1e99999999");
    ok("unix", "1e-99999999", 0);
}

Test(logtime, auto_detects_layout_and_unit)
{
    ok("auto", "2024-03-09T14:02:11.418Z", T0 + 418000000);
    ok("", "09/Mar/2024:14:02:11 +0000", T0);
    ok("auto", "1709992931", T0);
    ok("auto", "1709992931.5", T0 + 500000000);
    ok("auto", "1709992931418", T0 + 418000000);
    ok("auto", "1709992931418123", T0 + 418123000);
    ok("auto", "1709992931418123456", T0 + 418123456);
    ok("auto", "1.709992931e9", T0);
    bad("auto", "yesterday");
    bad("auto", "Mar 9 14:02:11");
}

Test(logtime, strftime_layouts)
{
    /* Python logging's default asctime */
    ok("%Y-%m-%d %H:%M:%S,%f", "2024-03-09 14:02:11,418", T0 + 418000000);
    /* RFC 1123 as in HTTP dates */
    ok("%a, %d %b %Y %H:%M:%S %Z", "Sat, 09 Mar 2024 14:02:11 GMT", T0);
    ok("%A %B %e %T %Y", "Saturday March  9 14:02:11 2024", T0);
    ok("%d/%m/%y %I:%M:%S %p", "09/03/24 02:02:11 PM", T0);
    ok("%D %I:%M %p", "03/09/24 12:00 am", 1709942400000000000LL);
    ok("%F %R:%S%z", "2024-03-09 19:32:11+05:30", T0);
    ok("%Y%j %T", "2024069 14:02:11", T0);
    ok("%s.%f", "1709992931.25", T0 + 250000000);
    ok("[%F %T]", "[2024-03-09   14:02:11]", T0); /* a space matches any run */
    ok("%Y-%m-%dT%H:%M:%S%%", "2024-03-09T14:02:11%", T0);
    bad("%Y-%m-%d", "2024-03-09 extra");
    bad("%I:%M %p", "13:00 PM");
    bad("%p", "XM");
    bad("%Z", "CEST");
    bad("%Y%j", "2023366");
    bad("%s", "99999999999");
}

Test(logtime, missing_year_comes_from_the_reference_time)
{
    int64_t ns;
    /* syslog's RFC 3164 stamp */
    cr_assert_eq(parse("%b %e %H:%M:%S", "Mar  9 14:02:11", T0, &ns), 0);
    cr_assert_eq(ns, T0);
    /* read just after new year: the line is from the year before */
    int64_t newyear = 1704067800000000000LL; /* 2024-01-01T00:10:00Z */
    cr_assert_eq(parse("%b %e %H:%M:%S", "Dec 31 23:59:00", newyear, &ns), 0);
    cr_assert_eq(ns, 1704067140000000000LL); /* 2023-12-31T23:59:00Z */
    cr_assert_eq(parse("%b %e %H:%M:%S", "Jan  1 00:09:00", newyear, &ns), 0);
    cr_assert_eq(ns, newyear - 60000000000LL);
    /* no year and 29 February in a non-leap reference year */
    cr_assert_eq(parse("%b %d", "Feb 29", 1700000000000000000LL, &ns), VG_EINVAL);
}

Test(logtime, bad_specs_name_the_problem)
{
    struct logtime t;
    struct vg_err err;
    cr_assert_eq(logtime_init(&t, VG_STR("iso8601"), &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "unknown time format \"iso8601\""), "%s", err.msg);
    cr_assert_eq(logtime_init(&t, VG_STR("%Y-%Q"), &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "offset 3"), "%s", err.msg);
    cr_assert_eq(logtime_init(&t, VG_STR("%Y%"), &err), VG_EINVAL);
    char big[LOGTIME_LAYOUT_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[0] = '%';
    big[1] = 'Y';
    big[sizeof big - 1] = 0;
    cr_assert_eq(logtime_init(&t, vg_str_c(big), &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "limit"), "%s", err.msg);
    cr_assert_eq(logtime_init(&t, (struct vg_str){ "%Y\0%m", 5 }, &err), VG_EINVAL);
    cr_assert_eq(logtime_init(&t, VG_STR(""), &err), 0);
    cr_assert_eq(t.kind, LOGTIME_AUTO);
}
