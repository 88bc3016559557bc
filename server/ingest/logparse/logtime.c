/* logtime: parse log timestamps into nanoseconds since the Unix epoch. See logtime.h
 * for the layouts.
 *
 * Every layout fills the same broken-down parts (struct parts); one function turns them
 * into nanoseconds, checking ranges (month 1-12, day within the month, hour 0-23 ...)
 * and the supported span of years, so no path can overflow int64. CLF is the strftime
 * layout "%d/%b/%Y:%H:%M:%S %z"; RFC 3339 has its own scanner because its fraction and
 * offset are optional (vg_time's, with every lenient form allowed). Unix numbers are
 * converted digit by digit into integer nanoseconds, so "1700000000.123456789" is exact
 * where a double would round. Calendar arithmetic is vg_time's too. */
#include "logtime.h"

#include "../../../storage/base/vg_time.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#define NS_PER_S 1000000000LL
#define MIN_YEAR 1678
#define MAX_YEAR 2261

struct parts {
    int year, mon, day, hour, min, sec, yday, hour12;
    int64_t nsec;
    int off_s;
    bool has_year, has_mon, has_yday, has_12, pm, has_epoch;
    int64_t epoch_ns;
};

struct scan {
    const char *p;
    size_t len, i;
};

/* The year of a time in nanoseconds (UTC). */
static int year_of(int64_t ns)
{
    int64_t y;
    vg_time_civil_from_days(vg_time_floor_div(ns, VG_TIME_S_PER_DAY * NS_PER_S), &y, NULL, NULL);
    return (int)y;
}

static int64_t min_ns(void)
{
    return vg_time_days_from_civil(MIN_YEAR, 1, 1) * 86400 * NS_PER_S;
}

static int64_t max_ns(void)
{
    return vg_time_days_from_civil(MAX_YEAR + 1, 1, 1) * 86400 * NS_PER_S - 1;
}

static int to_ns(struct parts *t, int64_t ref_ns, int64_t *ns)
{
    if (t->has_epoch) {
        *ns = t->epoch_ns + (t->epoch_ns < 0 ? -t->nsec : t->nsec); /* "%s.%f" */
        return *ns >= min_ns() && *ns <= max_ns() ? 0 : VG_EINVAL;
    }
    if (t->has_12) {
        if (t->hour12 < 1 || t->hour12 > 12)
            return VG_EINVAL;
        t->hour = t->hour12 % 12 + (t->pm ? 12 : 0);
    }
    if (!t->has_year)
        t->year = year_of(ref_ns);
    if (t->year < MIN_YEAR || t->year > MAX_YEAR || t->mon < 1 || t->mon > 12 || t->day < 1 ||
        t->day > vg_time_days_in_month(t->year, t->mon) || t->hour > 23 || t->min > 59 ||
        t->sec > 60)
        return VG_EINVAL;
    int64_t days = vg_time_days_from_civil(t->year, t->mon, t->day);
    if (t->has_yday && !t->has_mon) {
        if (t->yday < 1 || t->yday > (vg_time_is_leap(t->year) ? 366 : 365))
            return VG_EINVAL;
        days = vg_time_days_from_civil(t->year, 1, 1) + t->yday - 1;
    }
    int64_t s = days * 86400 + (int64_t)t->hour * 3600 + (int64_t)t->min * 60 + t->sec - t->off_s;
    *ns = s * NS_PER_S + t->nsec;
    if (!t->has_year && *ns > ref_ns + 86400 * NS_PER_S && t->year > MIN_YEAR) {
        t->has_year = true; /* the line is from last year */
        t->year--;
        return to_ns(t, ref_ns, ns);
    }
    return 0;
}

/* ---- scanning helpers ---- */

static bool at_end(const struct scan *s)
{
    return s->i >= s->len;
}

static int peek(const struct scan *s)
{
    return at_end(s) ? -1 : (unsigned char)s->p[s->i];
}

static bool eat(struct scan *s, char c)
{
    if (peek(s) != (unsigned char)c)
        return false;
    s->i++;
    return true;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void skip_space(struct scan *s)
{
    while (is_space(peek(s)))
        s->i++;
}

/* Reads min..max decimal digits into *v. */
static bool digits(struct scan *s, int min, int max, int *v)
{
    int n = 0, x = 0;
    while (n < max && is_digit(peek(s))) {
        x = x * 10 + (s->p[s->i++] - '0');
        n++;
    }
    *v = x;
    return n >= min;
}

/* A fraction's digits (at least one): the first nine make nanoseconds, more truncate. */
static bool fraction(struct scan *s, int64_t *nsec)
{
    int64_t v = 0;
    int n = 0;
    while (is_digit(peek(s))) {
        if (n < 9)
            v = v * 10 + (s->p[s->i] - '0');
        n++;
        s->i++;
    }
    for (int k = n; k < 9; k++)
        v *= 10;
    *nsec = v;
    return n > 0;
}

/* Z, z, +hh, +hhmm or +hh:mm (and '-'). */
static bool offset(struct scan *s, int *off_s)
{
    if (eat(s, 'Z') || eat(s, 'z')) {
        *off_s = 0;
        return true;
    }
    int sign = peek(s) == '-' ? -1 : 1;
    if (!eat(s, '+') && !eat(s, '-'))
        return false;
    int hh, mm = 0;
    if (!digits(s, 2, 2, &hh) || hh > 23)
        return false;
    bool colon = eat(s, ':');
    if ((colon || is_digit(peek(s))) && (!digits(s, 2, 2, &mm) || mm > 59))
        return false;
    *off_s = sign * (hh * 3600 + mm * 60);
    return true;
}

/* A case-insensitive match of one of names (full, or its first three letters). */
static bool name_of(struct scan *s, const char *const *names, int n, int *idx)
{
    for (int full = 1; full >= 0; full--) {
        for (int k = 0; k < n; k++) {
            size_t l = full ? strlen(names[k]) : 3;
            if (s->len - s->i >= l && strncasecmp(s->p + s->i, names[k], l) == 0) {
                s->i += l;
                *idx = k;
                return true;
            }
        }
    }
    return false;
}

static const char *const months[12] = { "January", "February", "March",     "April",
                                        "May",     "June",     "July",      "August",
                                        "September", "October", "November", "December" };
static const char *const weekdays[7] = { "Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday" };

/* ---- RFC 3339 ---- */

/* The lenient form of logtime.h at s; its ranges are checked again by to_ns, which also
 * bounds the year. */
static bool rfc3339(struct scan *s, struct parts *t)
{
    struct vg_time_tm tm;
    size_t n = vg_time_rfc3339_scan(s->p + s->i, s->len - s->i,
                                    VG_TIME_LOWER_CASE | VG_TIME_LEAP_SECOND |
                                        VG_TIME_LONG_FRACTION | VG_TIME_ISO_FORMS,
                                    &tm);
    if (!n)
        return false;
    s->i += n;
    t->year = tm.year;
    t->mon = tm.mon;
    t->day = tm.day;
    t->hour = tm.hour;
    t->min = tm.min;
    t->sec = tm.sec;
    t->nsec = tm.nsec;
    t->off_s = tm.off_s;
    t->has_year = t->has_mon = true;
    return true;
}

/* ---- strftime-like layouts ---- */

static bool layout(struct scan *s, const char *l, struct parts *t);

static bool directive(struct scan *s, char d, struct parts *t)
{
    int v, k;
    switch (d) {
    case 'Y':
        t->has_year = true;
        return digits(s, 4, 4, &t->year);
    case 'y':
        t->has_year = true;
        if (!digits(s, 2, 2, &v))
            return false;
        t->year = v < 69 ? 2000 + v : 1900 + v; /* POSIX strptime's pivot */
        return true;
    case 'm':
        t->has_mon = true;
        return digits(s, 1, 2, &t->mon);
    case 'e':
        eat(s, ' ');
        /* fall through */
    case 'd':
        return digits(s, 1, 2, &t->day);
    case 'j':
        t->has_yday = true;
        return digits(s, 1, 3, &t->yday);
    case 'H':
        return digits(s, 1, 2, &t->hour);
    case 'I':
        t->has_12 = true;
        return digits(s, 1, 2, &t->hour12);
    case 'p':
        if (s->len - s->i < 2 || (s->p[s->i + 1] | 0x20) != 'm')
            return false;
        v = s->p[s->i] | 0x20;
        if (v != 'a' && v != 'p')
            return false;
        t->pm = v == 'p';
        s->i += 2;
        return true;
    case 'M':
        return digits(s, 1, 2, &t->min);
    case 'S':
        return digits(s, 1, 2, &t->sec);
    case 'f':
        return fraction(s, &t->nsec);
    case 'z':
        return offset(s, &t->off_s);
    case 'Z':
        for (k = 0; k < 3; k++) {
            static const char *const utc[3] = { "UTC", "GMT", "Z" };
            size_t l = strlen(utc[k]);
            if (s->len - s->i >= l && strncasecmp(s->p + s->i, utc[k], l) == 0) {
                s->i += l;
                t->off_s = 0;
                return true;
            }
        }
        return false;
    case 'b':
    case 'h':
    case 'B':
        t->has_mon = true;
        if (!name_of(s, months, 12, &k))
            return false;
        t->mon = k + 1;
        return true;
    case 'a':
    case 'A':
        return name_of(s, weekdays, 7, &k);
    case 's': {
        bool neg = eat(s, '-');
        int64_t sec = 0;
        int n = 0;
        while (is_digit(peek(s)) && n < 12) {
            sec = sec * 10 + (s->p[s->i++] - '0');
            n++;
        }
        if (sec > INT64_MAX / NS_PER_S - 1)
            return false;
        t->has_epoch = true;
        t->epoch_ns = (neg ? -sec : sec) * NS_PER_S;
        return n > 0;
    }
    case 'T':
        return layout(s, "%H:%M:%S", t);
    case 'F':
        return layout(s, "%Y-%m-%d", t);
    case 'D':
        return layout(s, "%m/%d/%y", t);
    case 'R':
        return layout(s, "%H:%M", t);
    case 'n':
    case 't':
        skip_space(s);
        return true;
    case '%':
        return eat(s, '%');
    default:
        return false;
    }
}

static const char known_directives[] = "YymdejHIpMSfzZbhBaAsTFDRnt%";

static bool layout(struct scan *s, const char *l, struct parts *t)
{
    for (; *l; l++) {
        if (is_space((unsigned char)*l)) {
            skip_space(s);
        } else if (*l != '%') {
            if (!eat(s, *l))
                return false;
        } else if (!directive(s, *++l, t)) {
            return false;
        }
    }
    return true;
}

/* ---- Unix numbers ---- */

/* s as a decimal number times 10^shift, truncated to an integer. Accepts an optional
 * sign, digits with at most one '.', and an exponent; *int_digits gets the number of
 * digits before the point (for auto's unit guess), *has_exp whether an exponent was
 * given. */
static bool decimal(struct vg_str s, int shift, int64_t *out, int *int_digits, bool *has_exp)
{
    size_t i = 0, mstart, mend;
    bool neg = false;
    if (i < s.len && (s.p[i] == '-' || s.p[i] == '+'))
        neg = s.p[i++] == '-';
    mstart = i;
    int nint = 0, ndig = 0;
    bool point = false;
    for (; i < s.len; i++) {
        if (is_digit((unsigned char)s.p[i])) {
            ndig++;
            nint += !point;
        } else if (s.p[i] == '.' && !point) {
            point = true;
        } else {
            break;
        }
    }
    mend = i;
    if (!ndig)
        return false;
    long exp = 0;
    *has_exp = false;
    if (i < s.len && (s.p[i] == 'e' || s.p[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < s.len && (s.p[i] == '-' || s.p[i] == '+'))
            eneg = s.p[i++] == '-';
        size_t e0 = i;
        for (; i < s.len && is_digit((unsigned char)s.p[i]); i++)
            if (exp < 100000)
                exp = exp * 10 + (s.p[i] - '0');
        if (i == e0)
            return false;
        exp = eneg ? -exp : exp;
        *has_exp = true;
    }
    if (i != s.len)
        return false;
    *int_digits = nint;
    /* The k-th mantissa digit stands for 10^(nint - 1 - k + exp + shift). */
    uint64_t v = 0;
    long pos = nint - 1 + exp + shift;
    for (size_t j = mstart; j < mend; j++) {
        if (s.p[j] == '.')
            continue;
        int dgt = s.p[j] - '0';
        if (pos >= 0 && dgt) {
            if (pos > 18)
                return false;
            uint64_t add = (uint64_t)dgt;
            for (long q = 0; q < pos; q++)
                add *= 10;
            if (add > (uint64_t)INT64_MAX - v)
                return false;
            v += add;
        }
        pos--;
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static int unix_ns(struct vg_str s, enum logtime_kind kind, int64_t *ns)
{
    static const int shift[] = { [LOGTIME_UNIX_S] = 9, [LOGTIME_UNIX_MS] = 6,
                                 [LOGTIME_UNIX_US] = 3, [LOGTIME_UNIX_NS] = 0 };
    int nint;
    bool has_exp;
    int64_t v;
    if (kind == LOGTIME_AUTO) {
        /* Guess the unit from the integer digits of a plain number. */
        if (!decimal(s, 0, &v, &nint, &has_exp))
            return VG_EINVAL;
        kind = has_exp || nint <= 10   ? LOGTIME_UNIX_S
               : nint <= 13 ? LOGTIME_UNIX_MS
               : nint <= 16 ? LOGTIME_UNIX_US
                            : LOGTIME_UNIX_NS;
    }
    if (!decimal(s, shift[kind], &v, &nint, &has_exp))
        return VG_EINVAL;
    struct parts t = { .has_epoch = true, .epoch_ns = v };
    return to_ns(&t, 0, ns);
}

/* ---- entry points ---- */

static const struct {
    const char *name;
    enum logtime_kind kind;
} names[] = {
    { "auto", LOGTIME_AUTO },        { "rfc3339", LOGTIME_RFC3339 },
    { "rfc3339nano", LOGTIME_RFC3339 }, { "clf", LOGTIME_CLF },
    { "nginx", LOGTIME_CLF },        { "apache", LOGTIME_CLF },
    { "unix", LOGTIME_UNIX_S },      { "unix_s", LOGTIME_UNIX_S },
    { "unix_ms", LOGTIME_UNIX_MS },  { "unixms", LOGTIME_UNIX_MS },
    { "unix_us", LOGTIME_UNIX_US },  { "unixus", LOGTIME_UNIX_US },
    { "unix_ns", LOGTIME_UNIX_NS },  { "unixns", LOGTIME_UNIX_NS },
};

int logtime_init(struct logtime *t, struct vg_str spec, struct vg_err *err)
{
    memset(t, 0, sizeof *t);
    if (!spec.len)
        return 0; /* auto */
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (spec.len == strlen(names[i].name) &&
            strncasecmp(spec.p, names[i].name, spec.len) == 0) {
            t->kind = names[i].kind;
            return 0;
        }
    }
    if (!memchr(spec.p, '%', spec.len))
        return vg_err_set(err, VG_EINVAL,
                          "unknown time format \"%.*s\" (valid: auto, rfc3339, rfc3339nano, "
                          "clf, unix, unix_ms, unix_us, unix_ns, or a strftime layout)",
                          spec.len > 64 ? 64 : (int)spec.len, spec.p);
    if (spec.len > LOGTIME_LAYOUT_MAX)
        return vg_err_set(err, VG_EINVAL, "time layout is %zu bytes, over the limit of %d",
                          spec.len, LOGTIME_LAYOUT_MAX);
    for (size_t i = 0; i < spec.len; i++) {
        if (spec.p[i] == 0)
            return vg_err_set(err, VG_EINVAL, "time layout has a NUL byte at offset %zu", i);
        if (spec.p[i] != '%')
            continue;
        if (i + 1 == spec.len || !spec.p[i + 1] || !strchr(known_directives, spec.p[i + 1]))
            return vg_err_set(err, VG_EINVAL,
                              "time layout \"%.*s\": unknown directive at offset %zu "
                              "(known: %%%s)",
                              (int)spec.len, spec.p, i, "Y y m d e j H I p M S f z Z b h B a A "
                                                        "s T F D R n t %");
        i++;
    }
    t->kind = LOGTIME_STRFTIME;
    memcpy(t->layout, spec.p, spec.len);
    t->layout[spec.len] = 0;
    return 0;
}

static bool is_number_like(struct vg_str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!is_digit((unsigned char)s.p[i]) && !strchr("+-.eE", s.p[i]))
            return false;
    return s.len > 0;
}

int logtime_parse(const struct logtime *t, struct vg_str s, int64_t ref_ns, int64_t *ns)
{
    while (s.len && is_space((unsigned char)s.p[0]))
        s.p++, s.len--;
    while (s.len && is_space((unsigned char)s.p[s.len - 1]))
        s.len--;
    struct scan sc = { s.len ? s.p : "", s.len, 0 };
    struct parts p = { .mon = 1, .day = 1 };
    bool ok;
    switch (t->kind) {
    case LOGTIME_UNIX_S:
    case LOGTIME_UNIX_MS:
    case LOGTIME_UNIX_US:
    case LOGTIME_UNIX_NS:
        return unix_ns(s, t->kind, ns);
    case LOGTIME_AUTO:
        if (is_number_like(s))
            return unix_ns(s, LOGTIME_AUTO, ns);
        ok = rfc3339(&sc, &p);
        if (!ok) {
            sc.i = 0;
            p = (struct parts){ .mon = 1, .day = 1 };
            ok = layout(&sc, "%d/%b/%Y:%H:%M:%S %z", &p);
        }
        break;
    case LOGTIME_RFC3339:
        ok = rfc3339(&sc, &p);
        break;
    case LOGTIME_CLF:
        ok = layout(&sc, "%d/%b/%Y:%H:%M:%S %z", &p);
        break;
    default:
        ok = layout(&sc, t->layout, &p);
        break;
    }
    if (!ok || !at_end(&sc))
        return VG_EINVAL;
    return to_ns(&p, ref_ns, ns);
}
