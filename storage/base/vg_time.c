/* vg_time: see vg_time.h.
 *
 * The scanner reads only inside [p, p + len): each step checks the bytes it needs are
 * there, so truncated input at any byte is "not a timestamp", never a read past the
 * end. Fields are fixed-width digits, so no value can overflow an int. */
#include "vg_time.h"

bool vg_time_is_leap(int64_t year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int vg_time_days_in_month(int64_t year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return month == 2 && vg_time_is_leap(year) ? 29 : days[month - 1];
}

/* Years start in March here: the day of the era (doe, 0..146096) is 365 days a year
 * plus a leap day every 4th year, less every 100th, and the 400th is again a leap year;
 * 719468 is the day of the era count of 1970-01-01 from 0000-03-01. */
int64_t vg_time_days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void vg_time_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153; /* month counted from March, 0..11 */
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    if (year)
        *year = yoe + era * 400 + (m <= 2);
    if (month)
        *month = m;
    if (day)
        *day = (int)(doy - (153 * mp + 2) / 5 + 1);
}

int64_t vg_time_floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t vg_time_tm_seconds(const struct vg_time_tm *tm)
{
    return vg_time_days_from_civil(tm->year, tm->mon, tm->day) * VG_TIME_S_PER_DAY +
           (int64_t)tm->hour * 3600 + (int64_t)tm->min * 60 + tm->sec - tm->off_s;
}

/* ---- RFC 3339 ---- */

struct cursor {
    const char *p;
    size_t len, i;
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool at(const struct cursor *c, char ch)
{
    return c->i < c->len && c->p[c->i] == ch;
}

/* Takes the next byte if it is one of the (up to two) given characters. */
static bool take(struct cursor *c, char a, char b)
{
    if (!at(c, a) && !(b && at(c, b)))
        return false;
    c->i++;
    return true;
}

/* Exactly n digits into *v. */
static bool digits(struct cursor *c, int n, int *v)
{
    if (c->len - c->i < (size_t)n)
        return false;
    int x = 0;
    for (int k = 0; k < n; k++) {
        char d = c->p[c->i + (size_t)k];
        if (!is_digit(d))
            return false;
        x = x * 10 + (d - '0');
    }
    c->i += (size_t)n;
    *v = x;
    return true;
}

/* The digits after the decimal mark: at least one; the first nine make nanoseconds. */
static bool fraction(struct cursor *c, unsigned flags, int32_t *nsec)
{
    int32_t v = 0;
    int n = 0;
    for (; c->i < c->len && is_digit(c->p[c->i]); c->i++, n++)
        if (n < 9)
            v = v * 10 + (c->p[c->i] - '0');
    if (n == 0 || (n > 9 && !(flags & VG_TIME_LONG_FRACTION)))
        return false;
    for (; n < 9; n++)
        v *= 10;
    *nsec = v;
    return true;
}

/* Z, +hh:mm, -hh:mm; with VG_TIME_ISO_FORMS also +hh, +hhmm and none at all. */
static bool offset(struct cursor *c, unsigned flags, int32_t *off_s)
{
    bool lower = flags & VG_TIME_LOWER_CASE, iso = flags & VG_TIME_ISO_FORMS;
    *off_s = 0;
    if (take(c, 'Z', lower ? 'z' : 0))
        return true;
    int sign = at(c, '-') ? -1 : 1;
    if (!take(c, '+', '-'))
        return iso;
    int hh, mm = 0;
    if (!digits(c, 2, &hh) || hh > 23)
        return false;
    if (take(c, ':', 0) || (iso && c->i < c->len && is_digit(c->p[c->i]))) {
        if (!digits(c, 2, &mm) || mm > 59)
            return false;
    } else if (!iso) {
        return false;
    }
    *off_s = sign * (hh * 3600 + mm * 60);
    return true;
}

size_t vg_time_rfc3339_scan(const char *p, size_t len, unsigned flags, struct vg_time_tm *tm)
{
    struct cursor c = { p, len, 0 };
    bool lower = flags & VG_TIME_LOWER_CASE, iso = flags & VG_TIME_ISO_FORMS;
    struct vg_time_tm t = { 0 };
    if (!digits(&c, 4, &t.year) || !take(&c, '-', 0) || !digits(&c, 2, &t.mon) ||
        !take(&c, '-', 0) || !digits(&c, 2, &t.day))
        return 0;
    if (!take(&c, 'T', lower ? 't' : 0) && !(iso && take(&c, ' ', 0)))
        return 0;
    if (!digits(&c, 2, &t.hour) || !take(&c, ':', 0) || !digits(&c, 2, &t.min) ||
        !take(&c, ':', 0) || !digits(&c, 2, &t.sec))
        return 0;
    if (t.mon < 1 || t.mon > 12 || t.day < 1 || t.day > vg_time_days_in_month(t.year, t.mon) ||
        t.hour > 23 || t.min > 59 || t.sec > (flags & VG_TIME_LEAP_SECOND ? 60 : 59))
        return 0;
    if (take(&c, '.', iso ? ',' : 0) && !fraction(&c, flags, &t.nsec))
        return 0;
    if (!offset(&c, flags, &t.off_s))
        return 0;
    *tm = t;
    return c.i;
}
