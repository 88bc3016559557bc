/* syslog_parse: see syslog_parse.h for the grammar accepted and the framing rules.
 *
 * The parser is a hand-written scanner over [p, end): every step checks the bound
 * before reading, so truncated input at any byte is an unparsable message, never a
 * read past the end. Strings in the result point into the input; only escaped
 * structured-data values are copied (into the caller's arena). */
#include "syslog_parse.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_time.h"

#include <string.h>

#define NS_PER_S 1000000000LL

/* RFC 5424 section 6 field limits. */
#define MAX_HOSTNAME 255
#define MAX_APP_NAME 48
#define MAX_PROCID 128
#define MAX_MSGID 32
/* RFC 3164 gives 32 for TAG; real tags are longer ("systemd-networkd-wait-online"). */
#define MAX_TAG MAX_APP_NAME

static const char *const error_names[SYSLOG_ERR_COUNT] = {
    "ok", "empty", "no_pri", "bad_pri", "bad_version", "bad_timestamp", "bad_header",
    "bad_structured_data",
};

const char *syslog_error_name(enum syslog_error e)
{
    return (unsigned)e < SYSLOG_ERR_COUNT ? error_names[e] : "unknown";
}

const char *syslog_facility_name(int facility)
{
    static const char *const names[24] = {
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
        "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
    };
    return facility >= 0 && facility < 24 ? names[facility] : NULL;
}

const char *syslog_severity_name(int severity)
{
    static const char *const names[8] = {
        "emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug",
    };
    return severity >= 0 && severity < 8 ? names[severity] : NULL;
}

const char *syslog_level_name(int severity)
{
    static const char *const names[8] = {
        "critical", "critical", "critical", "error", "warn", "info", "info", "debug",
    };
    return severity >= 0 && severity < 8 ? names[severity] : NULL;
}

/* ---- time ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* n digits at p (bounds checked by the caller) as a number. */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (p[i] - '0');
    return v;
}

static bool all_digits(const char *p, const char *end, int n)
{
    if (end - p < n)
        return false;
    for (int i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return true;
}

/* hh:mm:ss at p; returns the seconds of the day or -1. */
static int64_t parse_hms(const char *p, const char *end)
{
    if (end - p < 8 || !all_digits(p, end, 2) || p[2] != ':' || !all_digits(p + 3, end, 2) ||
        p[5] != ':' || !all_digits(p + 6, end, 2))
        return -1;
    int h = digits(p, 2), mi = digits(p + 3, 2), s = digits(p + 6, 2);
    /* 60 is a leap second; it rolls over into the next minute */
    if (h > 23 || mi > 59 || s > 60)
        return -1;
    return (int64_t)h * 3600 + (int64_t)mi * 60 + s;
}

/* ".d{1,9}" at *p: adds the fraction's nanoseconds to *ns and advances *p. */
static void parse_fraction(const char **p, const char *end, int64_t *ns)
{
    const char *q = *p;
    if (q >= end || *q != '.' || q + 1 >= end || !is_digit(q[1]))
        return;
    q++;
    int64_t frac = 0, scale = NS_PER_S;
    for (; q < end && is_digit(*q); q++) {
        if (scale > 1) {
            scale /= 10;
            frac += (*q - '0') * scale;
        } /* digits past nanoseconds are read and dropped */
    }
    *ns += frac;
    *p = q;
}

/* "hh:mm:ss[.frac]" at *p: seconds of the day and nanoseconds; advances *p. */
static bool time_of_day(const char **p, const char *end, int64_t *sod, int64_t *frac)
{
    *sod = parse_hms(*p, end);
    *frac = 0;
    if (*sod < 0)
        return false;
    *p += 8;
    parse_fraction(p, end, frac);
    return true;
}

/* RFC 3339 "YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm)" at p ('t', 'z', second 60 and
 * long fractions accepted, as senders write them). Returns the bytes consumed (0 if it
 * is not one) with *ns set. Years 1900..2200 only, which int64 ns hold with room to
 * spare. */
static size_t parse_rfc3339(const char *p, const char *end, int64_t *ns)
{
    struct vg_time_tm tm;
    size_t n = vg_time_rfc3339_scan(
        p, (size_t)(end - p), VG_TIME_LOWER_CASE | VG_TIME_LEAP_SECOND | VG_TIME_LONG_FRACTION,
        &tm);
    if (!n || tm.year < 1900 || tm.year > 2200)
        return 0;
    *ns = vg_time_tm_seconds(&tm) * NS_PER_S + tm.nsec;
    return n;
}

static int month_of(const char *p)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    char m[3];
    for (int i = 0; i < 3; i++)
        m[i] = (char)(p[i] | 0x20); /* ASCII lower case; non-letters never match */
    for (int i = 0; i < 12; i++)
        if (memcmp(names + (size_t)3 * (size_t)i, m, 3) == 0)
            return i + 1;
    return 0;
}

/* RFC 3164 "Mmm dd hh:mm:ss" (day space-padded or not; an optional fraction after the
 * seconds as some devices add). Returns bytes consumed or 0; *has_time is false when
 * the date fits none of the candidate years (Feb 29). The year rule: see the header. */
static size_t parse_bsd_time(const char *p, const char *end, const struct syslog_parse_opts *o,
                             bool *has_time, int64_t *ns)
{
    const char *q = p;
    if (end - q < 4 || q[3] != ' ')
        return 0;
    int mo = month_of(q);
    if (!mo)
        return 0;
    q += 4;
    if (q < end && *q == ' ')
        q++;
    int d = 0, nd = 0;
    while (q < end && is_digit(*q) && nd < 2) {
        d = d * 10 + (*q++ - '0');
        nd++;
    }
    if (!nd || d < 1 || d > 31 || q >= end || *q != ' ')
        return 0;
    q++;
    int64_t sod, frac;
    if (!time_of_day(&q, end, &sod, &frac))
        return 0;

    int64_t off = o->local_offset_s;
    int64_t now_s = vg_time_floor_div(o->now_ns, NS_PER_S);
    int64_t year;
    vg_time_civil_from_days(vg_time_floor_div(now_s + off, 86400), &year, NULL, NULL);
    bool found = false;
    int64_t best = 0, best_diff = 0;
    for (int64_t y = year - 1; y <= year + 1; y++) {
        if (d > vg_time_days_in_month(y, mo))
            continue;
        int64_t t = (vg_time_days_from_civil(y, mo, d) * 86400 + sod - off) * NS_PER_S + frac;
        int64_t diff = t > o->now_ns ? t - o->now_ns : o->now_ns - t;
        if (!found || diff < best_diff) {
            found = true;
            best = t;
            best_diff = diff;
        }
    }
    *has_time = found;
    *ns = best;
    return (size_t)(q - p);
}

/* ---- fields ---- */

static bool is_print(char c)
{
    return c > ' ' && c < 0x7f;
}

/* A header field and the SP after it: "-" gives an empty string. false if empty,
 * longer than max, not printable ASCII or not followed by SP. */
static bool header_field(const char **p, const char *end, size_t max, struct vg_str *out)
{
    const char *q = *p;
    while (q < end && *q != ' ') {
        if (!is_print(*q))
            return false;
        q++;
    }
    size_t n = (size_t)(q - *p);
    if (n == 0 || n > max || q >= end)
        return false;
    *out = n == 1 && **p == '-' ? (struct vg_str){ NULL, 0 } : (struct vg_str){ *p, n };
    *p = q + 1;
    return true;
}

/* SD-NAME: 1..32 printable ASCII except '=', SP, ']', '"' (not counting the 32). */
static bool sd_name(const char **p, const char *end, struct vg_str *out)
{
    const char *q = *p;
    while (q < end && is_print(*q) && *q != '=' && *q != ']' && *q != '"')
        q++;
    if (q == *p)
        return false;
    *out = (struct vg_str){ *p, (size_t)(q - *p) };
    *p = q;
    return true;
}

/* A quoted PARAM-VALUE after '"': the value up to the closing unescaped '"'. Escaped
 * values are copied without their escaping backslashes. 1 ok, 0 malformed, VG_ENOMEM. */
static int sd_value(const char **p, const char *end, struct vg_arena *a, struct vg_str *out)
{
    const char *q = *p;
    bool escaped = false;
    while (q < end && *q != '"') {
        if (*q == '\\' && q + 1 < end) {
            escaped = true;
            q++;
        }
        q++;
    }
    if (q >= end)
        return 0;
    size_t n = (size_t)(q - *p);
    if (!escaped) {
        *out = (struct vg_str){ *p, n };
    } else {
        char *d = vg_arena_alloc(a, n ? n : 1);
        if (!d)
            return VG_ENOMEM;
        size_t k = 0;
        for (const char *s = *p; s < q; s++) {
            if (*s == '\\' && s + 1 < q && (s[1] == '"' || s[1] == '\\' || s[1] == ']'))
                s++;
            d[k++] = *s;
        }
        *out = (struct vg_str){ d, k };
    }
    *p = q + 1;
    return 1;
}

/* STRUCTURED-DATA at *p. 1 ok, 0 malformed, VG_ENOMEM. */
static int parse_sd(const char **p, const char *end, struct vg_arena *a, struct syslog_msg *m)
{
    const char *q = *p;
    if (q < end && *q == '-') {
        *p = q + 1;
        return 1;
    }
    if (q >= end || *q != '[')
        return 0;
    struct syslog_sd_param *params = NULL;
    size_t n = 0;
    while (q < end && *q == '[') {
        q++;
        struct vg_str id;
        if (!sd_name(&q, end, &id))
            return 0;
        while (q < end && *q == ' ') {
            q++;
            struct vg_str name, value;
            if (!sd_name(&q, end, &name) || end - q < 2 || q[0] != '=' || q[1] != '"')
                return 0;
            q += 2;
            int rc = sd_value(&q, end, a, &value);
            if (rc <= 0)
                return rc;
            if (n == SYSLOG_MAX_SD_PARAMS)
                return 0;
            if (!params) {
                params = vg_arena_alloc(a, SYSLOG_MAX_SD_PARAMS * sizeof *params);
                if (!params)
                    return VG_ENOMEM;
            }
            params[n++] = (struct syslog_sd_param){ id, name, value };
        }
        if (q >= end || *q != ']')
            return 0;
        q++;
    }
    m->sd = params;
    m->nsd = n;
    *p = q;
    return 1;
}

static struct vg_str strip_bom(struct vg_str s)
{
    if (s.len >= 3 && memcmp(s.p, "\xEF\xBB\xBF", 3) == 0)
        return (struct vg_str){ s.p + 3, s.len - 3 };
    return s;
}

/* <PRI> at p: returns bytes consumed (3..5) with *pri set, or 0. */
static size_t parse_pri(const char *p, const char *end, int *pri)
{
    const char *q = p + 1;
    int v = 0, n = 0;
    while (q < end && is_digit(*q) && n < 3) {
        v = v * 10 + (*q++ - '0');
        n++;
    }
    if (!n || q >= end || *q != '>' || v > 191 || (n > 1 && p[1] == '0'))
        return 0;
    *pri = v;
    return (size_t)(q + 1 - p);
}

static int parse_5424(const char *q, const char *end, struct vg_arena *a, struct syslog_msg *m,
                      struct vg_err *err)
{
    /* VERSION was checked by the caller: "1 " */
    q += 2;
    if (q < end && *q == '-' && (q + 1 == end || q[1] == ' ')) {
        q++;
    } else {
        size_t n = parse_rfc3339(q, end, &m->time_ns);
        if (!n)
            return SYSLOG_ERR_BAD_TIMESTAMP;
        m->has_time = true;
        q += n;
    }
    if (q >= end)
        return SYSLOG_ERR_BAD_HEADER;
    if (*q != ' ')
        return SYSLOG_ERR_BAD_TIMESTAMP;
    q++;
    if (!header_field(&q, end, MAX_HOSTNAME, &m->hostname) ||
        !header_field(&q, end, MAX_APP_NAME, &m->app_name) ||
        !header_field(&q, end, MAX_PROCID, &m->procid) ||
        !header_field(&q, end, MAX_MSGID, &m->msgid))
        return SYSLOG_ERR_BAD_HEADER;
    int rc = parse_sd(&q, end, a, m);
    if (rc < 0)
        return vg_err_set(err, VG_ENOMEM, "syslog: out of memory for structured data");
    if (rc == 0)
        return SYSLOG_ERR_BAD_SD;
    if (q < end) {
        if (*q != ' ')
            return SYSLOG_ERR_BAD_SD;
        q++;
    }
    m->msg = strip_bom((struct vg_str){ q, (size_t)(end - q) });
    return SYSLOG_OK;
}

/* "TAG:" or "TAG[PID]" or "TAG[PID]:" followed by SP or the end, at *p. */
static bool parse_tag(const char **p, const char *end, struct vg_str *tag, struct vg_str *pid)
{
    const char *q = *p;
    while (q < end && is_print(*q) && *q != '[' && *q != ':')
        q++;
    size_t n = (size_t)(q - *p);
    if (n == 0 || n > MAX_TAG || q >= end)
        return false;
    struct vg_str t = { *p, n }, id = { NULL, 0 };
    if (*q == '[') {
        const char *ps = ++q;
        while (q < end && is_print(*q) && *q != ']')
            q++;
        if (q >= end || *q != ']' || q == ps || (size_t)(q - ps) > MAX_PROCID)
            return false;
        id = (struct vg_str){ ps, (size_t)(q - ps) };
        q++;
        if (q < end && *q == ':')
            q++;
    } else if (*q == ':') {
        q++;
    } else {
        return false;
    }
    if (q < end && *q != ' ')
        return false;
    *tag = t;
    *pid = id;
    *p = q < end ? q + 1 : q;
    return true;
}

static void parse_3164(const char *q, const char *end, const struct syslog_parse_opts *o,
                       struct syslog_msg *m)
{
    size_t n = parse_bsd_time(q, end, o, &m->has_time, &m->time_ns);
    if (!n) {
        n = parse_rfc3339(q, end, &m->time_ns);
        m->has_time = n > 0;
    }
    bool stamped = n > 0 && (q + n == end || q[n] == ' ');
    if (stamped) {
        q += n;
        if (q < end)
            q++;
        /* HOSTNAME, unless the word is already the TAG */
        const char *w = q;
        if (!parse_tag(&w, end, &m->app_name, &m->procid)) {
            while (w < end && is_print(*w))
                w++;
            size_t hl = (size_t)(w - q);
            if (hl > 0 && hl <= MAX_HOSTNAME && w < end && *w == ' ') {
                m->hostname = (struct vg_str){ q, hl };
                q = w + 1;
            }
            w = q;
            if (parse_tag(&w, end, &m->app_name, &m->procid))
                q = w;
        } else {
            q = w;
        }
    } else {
        /* No timestamp (RFC 3164 4.3.3): all of it is CONTENT, though "tag: text" as
         * Python's SysLogHandler sends it still yields the tag. */
        m->has_time = false;
        m->time_ns = 0;
        const char *w = q;
        if (parse_tag(&w, end, &m->app_name, &m->procid))
            q = w;
    }
    m->msg = (struct vg_str){ q, (size_t)(end - q) };
}

int syslog_parse(const char *p, size_t len, const struct syslog_parse_opts *opts,
                 struct vg_arena *arena, struct syslog_msg *m, struct vg_err *err)
{
    memset(m, 0, sizeof *m);
    while (len && (p[len - 1] == '\n' || p[len - 1] == '\r' || p[len - 1] == '\0'))
        len--;
    const char *end = p + len;
    int rc = SYSLOG_OK;
    int pri = 0;
    size_t n = 0;
    if (len == 0)
        rc = SYSLOG_ERR_EMPTY;
    else if (p[0] != '<')
        rc = SYSLOG_ERR_NO_PRI;
    else if (!(n = parse_pri(p, end, &pri)))
        rc = SYSLOG_ERR_BAD_PRI;
    if (rc == SYSLOG_OK) {
        const char *q = p + n;
        /* VERSION SP decides RFC 5424 (1..3 digits, not starting with 0) */
        const char *v = q;
        while (v < end && v - q < 3 && is_digit(*v))
            v++;
        bool versioned = v > q && v < end && *v == ' ' && *q != '0';
        if (versioned && !(v - q == 1 && *q == '1')) {
            rc = SYSLOG_ERR_BAD_VERSION;
        } else if (versioned) {
            m->format = SYSLOG_RFC5424;
            rc = parse_5424(q, end, arena, m, err);
            if (rc == VG_ENOMEM)
                return rc;
        } else {
            m->format = SYSLOG_RFC3164;
            parse_3164(q, end, opts, m);
        }
    }
    if (rc != SYSLOG_OK) {
        memset(m, 0, sizeof *m);
        m->format = SYSLOG_RAW;
        m->error = (enum syslog_error)rc;
        m->facility = m->severity = -1;
        m->msg = (struct vg_str){ p, len };
        return 0;
    }
    m->facility = pri / 8;
    m->severity = pri % 8;
    /* trailing bytes trimmed again: "tag: text\n" after the tag */
    while (m->msg.len && (m->msg.p[m->msg.len - 1] == '\n' || m->msg.p[m->msg.len - 1] == '\r'))
        m->msg.len--;
    return 0;
}

/* ---- framing ---- */

int syslog_framer_init(struct syslog_framer *f, size_t max_bytes, struct vg_err *err)
{
    memset(f, 0, sizeof *f);
    f->max_bytes = max_bytes ? max_bytes : 1;
    (void)err; /* the buffer is allocated on first need */
    return 0;
}

void syslog_framer_free(struct syslog_framer *f)
{
    vg_free(f->buf);
    f->buf = NULL;
    f->cap = f->len = 0;
}

/* Appends to the assembly buffer, growing it up to max_bytes (callers check the bound). */
static int keep(struct syslog_framer *f, const char *p, size_t n, struct vg_err *err)
{
    if (n == 0)
        return 0;
    if (f->len + n > f->cap) {
        size_t cap = f->cap ? f->cap : 4096;
        while (cap < f->len + n)
            cap *= 2;
        if (cap > f->max_bytes)
            cap = f->max_bytes;
        char *b = vg_realloc(f->buf, cap);
        if (!b)
            return vg_err_set(err, VG_ENOMEM, "syslog: out of memory for a %zu-byte message",
                              f->len + n);
        f->buf = b;
        f->cap = cap;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return 0;
}

/* Delivers one non-transparent message (CR trimmed, empty ones skipped). */
static void deliver_line(const char *p, size_t n, syslog_frame_fn fn, void *ctx)
{
    if (n && p[n - 1] == '\r')
        n--;
    if (n)
        fn(ctx, SYSLOG_FRAME_MSG, p, n);
}

static int feed_octet(struct syslog_framer *f, const char *p, size_t n, size_t *used,
                      syslog_frame_fn fn, void *ctx, struct vg_err *err)
{
    size_t i = 0;
    if (f->want == 0) {
        /* between frames or inside LEN; stray line ends between frames are tolerated */
        for (; i < n; i++) {
            char c = p[i];
            if (f->digits == 0 && (c == '\n' || c == '\r' || c == '\0'))
                continue;
            if (is_digit(c) && f->digits < 10 && !(f->digits == 0 && c == '0')) {
                f->count = f->count * 10 + (uint64_t)(c - '0');
                f->digits++;
                continue;
            }
            if (c == ' ' && f->digits > 0)
                break;
            f->failed = true;
            return vg_err_set(err, VG_EINVAL,
                              "syslog octet counting: expected a frame length (digits, then a "
                              "space) at stream offset %llu, got byte 0x%02x",
                              (unsigned long long)f->offset + i, (unsigned char)c);
        }
        if (i == n) {
            *used = n;
            return 0;
        }
        i++; /* the space */
        f->want = f->count;
        f->count = 0;
        f->digits = 0;
        f->skipping = f->want > f->max_bytes;
        f->skipped = 0;
        f->len = 0;
    }
    size_t take = (size_t)(f->want < n - i ? f->want : n - i);
    bool whole = f->len == 0 && take == f->want;
    if (f->skipping)
        f->skipped += take;
    else if (!whole && keep(f, p + i, take, err) < 0)
        return err->code;
    f->want -= take;
    i += take;
    if (f->want == 0) {
        if (f->skipping)
            fn(ctx, SYSLOG_FRAME_TOO_LARGE, NULL, (size_t)f->skipped);
        else if (whole)
            fn(ctx, SYSLOG_FRAME_MSG, p + i - take, take);
        else
            fn(ctx, SYSLOG_FRAME_MSG, f->buf, f->len);
        f->skipping = false;
        f->len = 0;
    }
    *used = i;
    return 0;
}

static int feed_newline(struct syslog_framer *f, const char *p, size_t n, size_t *used,
                        syslog_frame_fn fn, void *ctx, struct vg_err *err)
{
    size_t j = 0;
    while (j < n && p[j] != '\n' && p[j] != '\0')
        j++;
    bool ended = j < n;
    if (f->skipping) {
        f->skipped += j;
    } else if (f->len + j > f->max_bytes) {
        /* over the limit (counting a CR before the LF, so the rule does not depend on
         * where the stream was split) */
        f->skipping = true;
        f->skipped = f->len + j;
        f->len = 0;
    } else if (ended && f->len == 0) {
        deliver_line(p, j, fn, ctx);
    } else {
        if (keep(f, p, j, err) < 0)
            return err->code;
        if (ended) {
            deliver_line(f->buf, f->len, fn, ctx);
            f->len = 0;
        }
    }
    if (ended && f->skipping) {
        fn(ctx, SYSLOG_FRAME_TOO_LARGE, NULL, (size_t)f->skipped);
        f->skipping = false;
    }
    *used = ended ? j + 1 : j;
    return 0;
}

int syslog_framer_feed(struct syslog_framer *f, const char *p, size_t n, syslog_frame_fn fn,
                       void *ctx, struct vg_err *err)
{
    if (f->failed)
        return vg_err_set(err, VG_EINVAL, "syslog framing: stream already desynchronised");
    size_t i = 0;
    while (i < n) {
        if (f->framing == SYSLOG_FRAMING_UNKNOWN)
            f->framing = is_digit(p[i]) ? SYSLOG_FRAMING_OCTET : SYSLOG_FRAMING_NEWLINE;
        size_t used = 0;
        int rc = f->framing == SYSLOG_FRAMING_OCTET
                     ? feed_octet(f, p + i, n - i, &used, fn, ctx, err)
                     : feed_newline(f, p + i, n - i, &used, fn, ctx, err);
        if (rc < 0) {
            f->failed = true;
            return rc;
        }
        i += used;
        f->offset += used;
    }
    return 0;
}

size_t syslog_framer_finish(struct syslog_framer *f, syslog_frame_fn fn, void *ctx)
{
    size_t lost = 0;
    if (f->framing == SYSLOG_FRAMING_NEWLINE) {
        if (f->skipping)
            fn(ctx, SYSLOG_FRAME_TOO_LARGE, NULL, (size_t)f->skipped);
        else if (f->len)
            deliver_line(f->buf, f->len, fn, ctx);
    } else if (f->framing == SYSLOG_FRAMING_OCTET) {
        lost = (size_t)(f->skipping ? f->skipped : f->len) + (size_t)f->digits;
    }
    f->len = 0;
    f->skipping = false;
    f->skipped = 0;
    f->want = 0;
    f->digits = 0;
    f->count = 0;
    return lost;
}
