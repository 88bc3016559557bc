/* Tests storage/base/vg_time.c: leap years and month lengths, day numbers both ways over
 * thousands of years (including before 1970 and year 0), floor division, and the RFC 3339
 * scanner: the strict grammar, each flag's variants refused without it, range checks,
 * prefixes and truncation at every byte. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_time.h"

#define ALL (VG_TIME_LOWER_CASE | VG_TIME_LEAP_SECOND | VG_TIME_LONG_FRACTION | VG_TIME_ISO_FORMS)

Test(vg_time, leap_years_and_month_lengths)
{
    cr_assert(vg_time_is_leap(2000));
    cr_assert(vg_time_is_leap(2024));
    cr_assert(vg_time_is_leap(0));
    cr_assert(vg_time_is_leap(-4));
    cr_assert_not(vg_time_is_leap(1900));
    cr_assert_not(vg_time_is_leap(2023));
    cr_assert_not(vg_time_is_leap(-1));
    cr_assert_eq(vg_time_days_in_month(2024, 2), 29);
    cr_assert_eq(vg_time_days_in_month(2100, 2), 28);
    cr_assert_eq(vg_time_days_in_month(2023, 1), 31);
    cr_assert_eq(vg_time_days_in_month(2023, 4), 30);
    cr_assert_eq(vg_time_days_in_month(2023, 12), 31);
}

Test(vg_time, known_day_numbers)
{
    cr_assert_eq(vg_time_days_from_civil(1970, 1, 1), 0);
    cr_assert_eq(vg_time_days_from_civil(1969, 12, 31), -1);
    cr_assert_eq(vg_time_days_from_civil(2000, 3, 1), 11017);
    cr_assert_eq(vg_time_days_from_civil(2024, 3, 9), 19791); /* 1709992931 s */
    cr_assert_eq(vg_time_days_from_civil(0, 3, 1), -719468);
    cr_assert_eq(vg_time_days_from_civil(1, 1, 1), -719162);
    cr_assert_eq(vg_time_days_from_civil(-1, 12, 31), -719529);
    int64_t y;
    int m, d;
    vg_time_civil_from_days(-719529, &y, &m, &d);
    cr_assert(y == -1 && m == 12 && d == 31, "%lld-%d-%d", (long long)y, m, d);
    vg_time_civil_from_days(19791, &y, &m, &d);
    cr_assert(y == 2024 && m == 3 && d == 9, "%lld-%d-%d", (long long)y, m, d);
    vg_time_civil_from_days(59, NULL, &m, NULL); /* any output may be left out */
    cr_assert_eq(m, 3);
}

/* Every day of about 5,500 years, both signs: the inverse is exact and consecutive day
 * numbers are consecutive dates. */
Test(vg_time, day_numbers_round_trip)
{
    int64_t py = 0;
    int pm = 0, pd = 0;
    for (int64_t n = -1000000; n <= 1000000; n++) {
        int64_t y;
        int m, d;
        vg_time_civil_from_days(n, &y, &m, &d);
        cr_assert(m >= 1 && m <= 12 && d >= 1 && d <= vg_time_days_in_month(y, m));
        if (vg_time_days_from_civil(y, m, d) != n)
            cr_assert_fail("day %lld -> %lld-%d-%d -> %lld", (long long)n, (long long)y, m, d,
                           (long long)vg_time_days_from_civil(y, m, d));
        if (n > -1000000) {
            bool next_day = y == py && m == pm && d == pd + 1;
            bool next_month = y == py && m == pm + 1 && d == 1 &&
                              pd == vg_time_days_in_month(py, pm);
            bool next_year = y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31;
            if (!next_day && !next_month && !next_year)
                cr_assert_fail("day %lld: %lld-%d-%d after %lld-%d-%d", (long long)n,
                               (long long)y, m, d, (long long)py, pm, pd);
        }
        py = y;
        pm = m;
        pd = d;
    }
}

Test(vg_time, floor_division)
{
    cr_assert_eq(vg_time_floor_div(0, 86400), 0);
    cr_assert_eq(vg_time_floor_div(86399, 86400), 0);
    cr_assert_eq(vg_time_floor_div(86400, 86400), 1);
    cr_assert_eq(vg_time_floor_div(-1, 86400), -1);
    cr_assert_eq(vg_time_floor_div(-86400, 86400), -1);
    cr_assert_eq(vg_time_floor_div(-86401, 86400), -2);
    cr_assert_eq(vg_time_floor_div(INT64_MIN, VG_TIME_NS_PER_S), -9223372037LL);
}

/* Scans s (copied to a buffer of exactly its length, so a read past it is a sanitizer
 * report) with flags; returns the count. */
static size_t scan(const char *s, unsigned flags, struct vg_time_tm *tm)
{
    size_t len = strlen(s);
    char *buf = vg_malloc(len ? len : 1);
    cr_assert_not_null(buf);
    memcpy(buf, s, len);
    struct vg_time_tm scratch;
    size_t n = vg_time_rfc3339_scan(buf, len, flags, tm ? tm : &scratch);
    vg_free(buf);
    return n;
}

static int64_t seconds(const char *s, unsigned flags)
{
    struct vg_time_tm tm;
    cr_assert_eq(scan(s, flags, &tm), strlen(s), "\"%s\" refused", s);
    return vg_time_tm_seconds(&tm);
}

Test(vg_time, rfc3339_strict)
{
    struct vg_time_tm tm;
    cr_assert_eq(scan("2023-11-14T22:13:20.123456789+01:30", 0, &tm), 35);
    cr_assert(tm.year == 2023 && tm.mon == 11 && tm.day == 14 && tm.hour == 22 &&
              tm.min == 13 && tm.sec == 20);
    cr_assert_eq(tm.nsec, 123456789);
    cr_assert_eq(tm.off_s, 5400);
    cr_assert_eq(vg_time_tm_seconds(&tm), 1700000000 - 5400);
    cr_assert_eq(seconds("1970-01-01T00:00:00Z", 0), 0);
    cr_assert_eq(seconds("2023-11-14T20:43:20-01:30", 0), 1700000000);
    cr_assert_eq(seconds("1969-12-31T23:59:59Z", 0), -1);
    cr_assert_eq(seconds("0000-01-01T00:00:00Z", 0), -62167219200LL);
    cr_assert_eq(seconds("9999-12-31T23:59:59Z", 0), 253402300799LL);
    cr_assert_eq(scan("2024-02-29T00:00:00.5Z", 0, &tm), 22);
    cr_assert_eq(tm.nsec, 500000000);
    /* a prefix: what follows is the caller's */
    cr_assert_eq(scan("2023-11-14T22:13:20Z host app", 0, NULL), 20);
}

Test(vg_time, rfc3339_out_of_range)
{
    static const char *const bad[] = {
        "2023-00-01T00:00:00Z", "2023-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z", "2023-04-31T00:00:00Z", "2023-01-00T00:00:00Z",
        "2023-01-01T24:00:00Z", "2023-01-01T00:60:00Z", "2023-01-01T00:00:60Z",
        "2023-01-01T00:00:00+24:00", "2023-01-01T00:00:00+00:60",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(scan(bad[i], ALL & ~VG_TIME_LEAP_SECOND, NULL), 0, "%s", bad[i]);
}

Test(vg_time, rfc3339_malformed)
{
    static const char *const bad[] = {
        "", "2023", "23-11-14T22:13:20Z", "2023-1-14T22:13:20Z", "2023/11/14T22:13:20Z",
        "2023-11-14X22:13:20Z", "2023-11-14T22:13Z", "2023-11-14T22-13-20Z",
        "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20.", "2023-11-14T22:13:20+1",
        "2023-11-14T22:13:20+01:", "2023-11-14T22:13:20+01:3", "2023-11-14T22:13:20+013",
        "2023-11-14T22:13:2aZ", "-023-11-14T22:13:20Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(scan(bad[i], ALL, NULL), 0, "%s", bad[i]);
}

/* Each flag admits its variant, and the strict grammar refuses it. */
Test(vg_time, rfc3339_flags)
{
    static const struct {
        const char *s;
        unsigned flag;
        int64_t sec;
    } cases[] = {
        { "2023-11-14t22:13:20Z", VG_TIME_LOWER_CASE, 1700000000 },
        { "2023-11-14T22:13:20z", VG_TIME_LOWER_CASE, 1700000000 },
        { "2023-11-14T22:13:60Z", VG_TIME_LEAP_SECOND, 1700000040 },
        { "2016-12-31T23:59:60Z", VG_TIME_LEAP_SECOND, 1483228800 },
        { "2023-11-14T22:13:20.1234567891Z", VG_TIME_LONG_FRACTION, 1700000000 },
        { "2023-11-14 22:13:20Z", VG_TIME_ISO_FORMS, 1700000000 },
        { "2023-11-14T22:13:20,5Z", VG_TIME_ISO_FORMS, 1700000000 },
        { "2023-11-14T22:13:20", VG_TIME_ISO_FORMS, 1700000000 },
        { "2023-11-14T23:13:20+01", VG_TIME_ISO_FORMS, 1700000000 },
        { "2023-11-14T16:43:20-0530", VG_TIME_ISO_FORMS, 1700000000 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(scan(cases[i].s, ALL & ~cases[i].flag, NULL) == strlen(cases[i].s), false,
                     "%s taken without its flag", cases[i].s);
        cr_assert_eq(seconds(cases[i].s, cases[i].flag), cases[i].sec, "%s", cases[i].s);
    }
    struct vg_time_tm tm;
    cr_assert_eq(scan("2023-11-14T22:13:20.1234567891Z", VG_TIME_LONG_FRACTION, &tm), 31);
    cr_assert_eq(tm.nsec, 123456789, "digits past nanoseconds dropped");
    cr_assert_eq(scan("2023-11-14T22:13:20,25", VG_TIME_ISO_FORMS, &tm), 22);
    cr_assert_eq(tm.nsec, 250000000);
    cr_assert_eq(tm.off_s, 0, "no offset is UTC");
    /* without an offset, ISO forms stop before whatever follows */
    cr_assert_eq(scan("2023-11-14T22:13:20 rest", VG_TIME_ISO_FORMS, NULL), 19);
    cr_assert_eq(scan("2023-11-14T22:13:20+05:x", VG_TIME_ISO_FORMS, NULL), 0,
                 "a started offset must be whole");
}

/* Every proper prefix of a valid time is refused (offset required) and reads nothing
 * past its end. */
Test(vg_time, rfc3339_truncated_at_every_byte)
{
    const char *s = "2023-11-14T22:13:20.123456789+01:30";
    size_t len = strlen(s);
    for (size_t n = 0; n < len; n++) {
        char *buf = vg_malloc(n ? n : 1);
        memcpy(buf, s, n);
        struct vg_time_tm tm;
        size_t got = vg_time_rfc3339_scan(buf, n, VG_TIME_LONG_FRACTION, &tm);
        vg_free(buf);
        cr_assert_eq(got, 0, "prefix of %zu bytes taken as %zu", n, got);
    }
    cr_assert_eq(scan(s, 0, NULL), len);
}
