/* logtime: timestamp layouts for log parsers; text in, nanoseconds since the epoch out.
 *
 * A spec names a layout, case-insensitively:
 *   auto                  RFC 3339, CLF, or a Unix number whose unit follows from its
 *                         integer digits (<= 10: s, 11-13: ms, 14-16: us, else ns)
 *   rfc3339, rfc3339nano  2006-01-02T15:04:05.999999999Z07:00 (fraction optional, 'T',
 *                         't' or ' ' between date and time, offset Z or +hh:mm or +hhmm;
 *                         without an offset the time is UTC)
 *   clf (nginx, apache)   02/Jan/2006:15:04:05 -0700, as in nginx $time_local and %t
 *   unix, unix_ms, unix_us, unix_ns (also Promtail's Unix, UnixMs, UnixUs, UnixNs)
 *                         a decimal number of that unit: sign, fraction and exponent
 *                         allowed ("1700000000.123456", "1.7e9"); sub-ns digits truncate
 *   anything with a '%'   a strftime-like layout: %Y %y %m %d %e %j %H %I %p %M %S %f
 *                         (fraction, 1-9 digits), %z (Z, +hh, +hhmm, +hh:mm), %Z (UTC,
 *                         GMT, Z), %b %h %B (month names), %a %A (weekday, ignored), %s
 *                         (Unix seconds), %T %F %D %R, %n %t and whitespace (any run of
 *                         whitespace), %%. Missing fields: UTC, month and day 1, time 0;
 *                         a missing year is the reference time's year, or the year before
 *                         when that would put the time more than a day after it (a line
 *                         from 31 Dec read on 1 Jan).
 * Times must lie in years 1678-2261 (what int64 nanoseconds hold). Leading and trailing
 * spaces around a value are ignored; anything else left over is an error.
 *
 * A struct logtime holds no heap memory; it is immutable after logtime_init, so
 * logtime_parse is thread-safe. */
#ifndef LOGTIME_H
#define LOGTIME_H

#include "../../../storage/base/vg_err.h"
#include "../../../storage/base/vg_str.h"

#include <stdint.h>

#define LOGTIME_LAYOUT_MAX 128

enum logtime_kind {
    LOGTIME_AUTO,
    LOGTIME_RFC3339,
    LOGTIME_CLF,
    LOGTIME_UNIX_S,
    LOGTIME_UNIX_MS,
    LOGTIME_UNIX_US,
    LOGTIME_UNIX_NS,
    LOGTIME_STRFTIME,
};

struct logtime {
    enum logtime_kind kind;
    char layout[LOGTIME_LAYOUT_MAX + 1]; /* LOGTIME_STRFTIME: the layout, NUL-terminated */
};

/* 0, or VG_EINVAL naming the spec and, for a layout, the unknown directive or the
 * length limit (LOGTIME_LAYOUT_MAX bytes). */
int logtime_init(struct logtime *t, struct vg_str spec, struct vg_err *err);

/* 0 with *ns set, or VG_EINVAL when s does not hold a valid time in t's layout.
 * ref_ns supplies a missing year (see above). */
int logtime_parse(const struct logtime *t, struct vg_str s, int64_t ref_ns, int64_t *ns);

#endif
