/* statsd_parse: see statsd_parse.h for the accepted grammar.
 *
 * The line is cut at '|' into sections: the first is "<name>:<values>", the second the
 * type, the rest optional (@rate, #tags, c:, T, e:). The name ends at the first ':' (so
 * a name cannot hold one: that is the protocol, not a choice). Numbers are checked
 * against a strict decimal grammar before strtod sees them, so "nan", "inf", "0x1p3"
 * and locale forms are refused rather than silently accepted. */
#include "statsd_parse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const error_names[STATSD_ERR_COUNT] = {
    [STATSD_OK] = "ok",
    [STATSD_ERR_FORMAT] = "malformed_line",
    [STATSD_ERR_NAME] = "bad_name",
    [STATSD_ERR_VALUE] = "bad_value",
    [STATSD_ERR_TYPE] = "unknown_type",
    [STATSD_ERR_RATE] = "bad_sample_rate",
    [STATSD_ERR_TAG] = "bad_tag",
    [STATSD_ERR_TOO_MANY] = "too_many_tags_or_values",
    [STATSD_ERR_SECTION] = "unknown_section",
    [STATSD_ERR_NEGATIVE] = "negative_counter",
    [STATSD_ERR_UNSUPPORTED] = "event_or_service_check",
};

const char *statsd_error_name(enum statsd_error e)
{
    return (unsigned)e < STATSD_ERR_COUNT ? error_names[e] : "unknown";
}

const char *statsd_type_name(enum statsd_type t)
{
    static const char *const names[] = { "c", "g", "ms", "h", "d", "s" };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

bool statsd_next_line(const char *buf, size_t len, size_t *pos, struct vg_str *line)
{
    while (*pos < len) {
        const char *start = buf + *pos;
        const char *nl = memchr(start, '\n', len - *pos);
        size_t n = nl ? (size_t)(nl - start) : len - *pos;
        *pos += n + (nl != NULL);
        if (n && start[n - 1] == '\r')
            n--;
        if (n) {
            *line = (struct vg_str){ start, n };
            return true;
        }
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [+-]?(digits[.digits*]|.digits)([eE][+-]?digits)? into *out (finite). */
static bool parse_number(const char *p, size_t n, double *out)
{
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return false;
    size_t i = 0, digits = 0;
    if (p[i] == '+' || p[i] == '-')
        i++;
    while (i < n && is_digit(p[i]))
        i++, digits++;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && is_digit(p[i]))
            i++, digits++;
    }
    if (!digits)
        return false;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t exp = 0;
        while (i < n && is_digit(p[i]))
            i++, exp++;
        if (!exp)
            return false;
    }
    if (i != n)
        return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    double v = strtod(tmp, NULL);
    if (!isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_type(struct vg_str s, enum statsd_type *t)
{
    static const struct { const char *s; enum statsd_type t; } types[] = {
        { "c", STATSD_COUNTER }, { "g", STATSD_GAUGE }, { "ms", STATSD_TIMER },
        { "h", STATSD_HISTOGRAM }, { "d", STATSD_DISTRIBUTION }, { "s", STATSD_SET },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (vg_str_eq_c(s, types[i].s)) {
            *t = types[i].t;
            return true;
        }
    return false;
}

static enum statsd_error parse_tags(struct vg_str s, struct statsd_line *out)
{
    size_t i = 0;
    while (i <= s.len) {
        const char *start = s.p + i;
        const char *comma = memchr(start, ',', s.len - i);
        size_t n = comma ? (size_t)(comma - start) : s.len - i;
        i += n + 1;
        if (n == 0)
            continue; /* "#a:b,,c:d" or a trailing comma */
        const char *colon = memchr(start, ':', n);
        if (colon == start)
            return STATSD_ERR_TAG;
        if (!colon || colon == start + n - 1)
            continue; /* a bare tag or an empty value: no label */
        if (out->ntags == STATSD_MAX_TAGS)
            return STATSD_ERR_TOO_MANY;
        out->tags[out->ntags++] = (struct statsd_tag){
            { start, (size_t)(colon - start) },
            { colon + 1, n - (size_t)(colon - start) - 1 },
        };
        if (!comma)
            break;
    }
    return STATSD_OK;
}

/* The sections after the type. */
static enum statsd_error parse_options(const char *p, size_t n, struct statsd_line *out)
{
    bool have_rate = false, have_tags = false;
    size_t i = 0;
    while (i < n) {
        const char *start = p + i;
        const char *bar = memchr(start, '|', n - i);
        size_t len = bar ? (size_t)(bar - start) : n - i;
        i += len + 1;
        if (len == 0)
            continue; /* "a:1|c|" or "||": nothing to read */
        if (start[0] == '@' && !have_rate) {
            double r;
            if (!parse_number(start + 1, len - 1, &r) || !(r > 0 && r <= 1))
                return STATSD_ERR_RATE;
            out->rate = r;
            have_rate = true;
        } else if (start[0] == '#' && !have_tags) {
            enum statsd_error e = parse_tags((struct vg_str){ start + 1, len - 1 }, out);
            if (e)
                return e;
            have_tags = true;
        } else if ((len >= 2 && (start[0] == 'c' || start[0] == 'e') && start[1] == ':') ||
                   start[0] == 'T') {
            continue; /* container id, external data, client timestamp: ignored */
        } else {
            return STATSD_ERR_SECTION;
        }
    }
    return STATSD_OK;
}

enum statsd_error statsd_parse_line(const char *p, size_t n, struct statsd_line *out)
{
    out->ntags = 0;
    out->nvalues = 0;
    out->delta = false;
    out->rate = 1;
    out->member = (struct vg_str){ NULL, 0 };
    if ((n >= 3 && !memcmp(p, "_e{", 3)) || (n >= 4 && !memcmp(p, "_sc|", 4)))
        return STATSD_ERR_UNSUPPORTED;
    const char *bar = memchr(p, '|', n);
    if (!bar)
        return STATSD_ERR_FORMAT;
    size_t head = (size_t)(bar - p);
    const char *colon = memchr(p, ':', head);
    if (!colon)
        return STATSD_ERR_FORMAT;
    out->name = (struct vg_str){ p, (size_t)(colon - p) };
    if (!out->name.len)
        return STATSD_ERR_NAME;
    const char *tstart = bar + 1;
    const char *tend = memchr(tstart, '|', n - (size_t)(tstart - p));
    if (!tend)
        tend = p + n;
    if (!parse_type((struct vg_str){ tstart, (size_t)(tend - tstart) }, &out->type))
        return tstart == tend ? STATSD_ERR_FORMAT : STATSD_ERR_TYPE;
    if (tend < p + n) {
        enum statsd_error e = parse_options(tend + 1, n - (size_t)(tend + 1 - p), out);
        if (e)
            return e;
    }

    const char *v = colon + 1;
    size_t vlen = (size_t)(bar - v);
    if (out->type == STATSD_SET) {
        if (!vlen || memchr(v, ':', vlen))
            return STATSD_ERR_VALUE;
        out->member = (struct vg_str){ v, vlen };
        return STATSD_OK;
    }
    size_t i = 0;
    while (i <= vlen) {
        const char *start = v + i;
        const char *c = memchr(start, ':', vlen - i);
        size_t len = c ? (size_t)(c - start) : vlen - i;
        i += len + 1;
        if (out->nvalues == STATSD_MAX_VALUES)
            return STATSD_ERR_TOO_MANY;
        double d;
        if (!parse_number(start, len, &d))
            return STATSD_ERR_VALUE;
        bool sign = start[0] == '+' || start[0] == '-';
        if (out->type == STATSD_GAUGE && out->nvalues && sign != out->delta)
            return STATSD_ERR_VALUE; /* packed gauge values mixing deltas and settings */
        if (out->type == STATSD_GAUGE)
            out->delta = sign;
        if (out->type == STATSD_COUNTER && d < 0)
            return STATSD_ERR_NEGATIVE;
        out->values[out->nvalues++] = d;
        if (!c)
            break;
    }
    return STATSD_OK;
}
