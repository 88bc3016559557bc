/* vg_time: calendar arithmetic and the RFC 3339 timestamp scanner shared by every
 * parser of written times (the query API's time parameters, syslog headers, log lines).
 *
 * Dates are proleptic Gregorian; day numbers count from 1970-01-01 (day 0) and go
 * negative before it. The arithmetic (Howard Hinnant's "days from civil" and its inverse)
 * counts years from March, so the leap day falls at the end of a 400-year era of 146097
 * days, and works for any year that fits the int64 day count.
 *
 * RFC 3339 ("date-time" of section 5.6):
 *     YYYY-MM-DD T hh:mm:ss [.fraction] (Z | +hh:mm | -hh:mm)
 * Flags admit the variants that real senders write:
 *   VG_TIME_LOWER_CASE     't' and 'z' (section 5.6 NOTE allows them)
 *   VG_TIME_LEAP_SECOND    second 60; it counts as second 0 of the next minute
 *   VG_TIME_LONG_FRACTION  more than nine fraction digits (the rest are dropped)
 *   VG_TIME_ISO_FORMS      ' ' for 'T', ',' for '.', no offset (UTC), and the offsets
 *                          +hh and +hhmm
 * Without flags the grammar is exactly the one Go's time.RFC3339Nano layout parses,
 * except that Go also takes more than nine fraction digits.
 *
 * Everything here is pure and thread-safe; nothing allocates. */
#ifndef VG_TIME_H
#define VG_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_TIME_NS_PER_S 1000000000LL
#define VG_TIME_S_PER_DAY 86400LL

/* True for the leap years of the Gregorian calendar (also for negative years). */
bool vg_time_is_leap(int64_t year);

/* Days in month (1-12) of year: 28..31. month outside 1-12 is a caller bug. */
int vg_time_days_in_month(int64_t year, int month);

/* Days from 1970-01-01 to year-month-day. month 1-12 and day 1-31 are not checked
 * against each other (day 31 of a 30-day month is the 1st of the next). */
int64_t vg_time_days_from_civil(int64_t year, int month, int day);

/* The inverse: the date of day number days (any of the three pointers may be NULL). */
void vg_time_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* a / b rounded toward negative infinity (b > 0): seconds or nanoseconds to days. */
int64_t vg_time_floor_div(int64_t a, int64_t b);

/* A date and time as written, with the UTC offset it carries. */
struct vg_time_tm {
    int year;   /* 0-9999 from vg_time_rfc3339_scan */
    int mon;    /* 1-12 */
    int day;    /* 1 to the days of that month */
    int hour;   /* 0-23 */
    int min;    /* 0-59 */
    int sec;    /* 0-59, or 60 with VG_TIME_LEAP_SECOND */
    int32_t nsec;  /* 0-999999999 */
    int32_t off_s; /* seconds east of UTC; 0 when the time carried no offset */
};

/* Seconds since the Unix epoch of tm (its offset applied, nsec left out). Exact for
 * every year 0-9999; the caller multiplies into ns or ms where the range allows. */
int64_t vg_time_tm_seconds(const struct vg_time_tm *tm);

enum vg_time_flags {
    VG_TIME_LOWER_CASE = 1 << 0,
    VG_TIME_LEAP_SECOND = 1 << 1,
    VG_TIME_LONG_FRACTION = 1 << 2,
    VG_TIME_ISO_FORMS = 1 << 3,
};

/* Scans an RFC 3339 date-time at the start of p[0..len) (flags: see above). Returns the
 * bytes it took, with *tm filled and every field range checked (month, day of that
 * month, hour, minute, second, offset hours 0-23 and minutes 0-59), or 0 when p does
 * not start with one. What follows is the caller's: a caller that wants the whole
 * string checks the count against len. */
size_t vg_time_rfc3339_scan(const char *p, size_t len, unsigned flags, struct vg_time_tm *tm);

#endif
