/* statsd_parse: the StatsD line protocol (Etsy StatsD with the DogStatsD extensions), as
 * a pure function over bytes.
 *
 * One line (several per packet, separated by '\n'; a trailing '\r' is ignored):
 *   <name>:<value>[:<value>...]|<type>[|@<rate>][|#<tag>[,<tag>...]][|c:<id>][|T<ts>][|e:<id>]
 *   type   c (counter), g (gauge), ms (timer), h (histogram), d (distribution), s (set)
 *   value  a decimal number ([+-]digits[.digits][e[+-]digits]; no NaN, Inf or hex);
 *          for gauges a leading '+' or '-' makes it a delta to the current value (the
 *          Etsy rule: "-5" lowers the gauge by 5, it does not set it to -5); for sets any
 *          bytes but '|' and ':' (the distinct member). Several ':'-separated values
 *          (DogStatsD 1.1 packing) count as that many lines with one value each
 *          (packed gauge values are all deltas or all settings); sets take one member.
 *   rate   sample rate in (0, 1]: a counter adds value/rate, a timer or histogram
 *          observation counts 1/rate times.
 *   tag    "key:value" (DogStatsD) becomes a label; a tag without ':' has no value and
 *          is ignored (a label with an empty value is absent in Prometheus).
 *   c:, T, e:  DogStatsD container id, timestamp and external data: accepted, ignored
 *          (aggregates are stamped with the flush time).
 * DogStatsD events ("_e{...") and service checks ("_sc|...") are refused as
 * STATSD_ERR_UNSUPPORTED. Every pointer in a parsed line points into the input.
 * Thread-safe, no allocation. */
#ifndef STATSD_PARSE_H
#define STATSD_PARSE_H

#include "../../storage/base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>

#define STATSD_MAX_TAGS 32
#define STATSD_MAX_VALUES 64

enum statsd_type {
    STATSD_COUNTER,
    STATSD_GAUGE,
    STATSD_TIMER,        /* "ms": milliseconds */
    STATSD_HISTOGRAM,    /* "h" */
    STATSD_DISTRIBUTION, /* "d": aggregated like a histogram */
    STATSD_SET,          /* "s" */
};

/* Why a line was refused; statsd_error_name gives the metric label. */
enum statsd_error {
    STATSD_OK,
    STATSD_ERR_FORMAT,      /* "malformed_line": no ':' before the first '|', no type */
    STATSD_ERR_NAME,        /* "bad_name": empty name */
    STATSD_ERR_VALUE,       /* "bad_value": not a finite decimal number, or empty */
    STATSD_ERR_TYPE,        /* "unknown_type" */
    STATSD_ERR_RATE,        /* "bad_sample_rate": not a number in (0, 1] */
    STATSD_ERR_TAG,         /* "bad_tag": empty key */
    STATSD_ERR_TOO_MANY,    /* "too_many_tags_or_values": over STATSD_MAX_TAGS / _VALUES */
    STATSD_ERR_SECTION,     /* "unknown_section": a |section this parser does not know */
    STATSD_ERR_NEGATIVE,    /* "negative_counter": Prometheus counters only go up */
    STATSD_ERR_UNSUPPORTED, /* "event_or_service_check": DogStatsD _e / _sc */
    STATSD_ERR_COUNT
};

struct statsd_tag {
    struct vg_str key;
    struct vg_str value; /* non-empty */
};

struct statsd_line {
    struct vg_str name;             /* raw, non-empty */
    enum statsd_type type;
    double values[STATSD_MAX_VALUES]; /* not for sets */
    size_t nvalues;                 /* >= 1 */
    bool delta;                     /* gauge written with a sign: add, do not set */
    struct vg_str member;           /* sets: the member */
    double rate;                    /* 1 when absent */
    struct statsd_tag tags[STATSD_MAX_TAGS]; /* in the order written */
    size_t ntags;
};

/* Parses one line (without its '\n'). STATSD_OK with *out filled, or the reason. */
enum statsd_error statsd_parse_line(const char *p, size_t n, struct statsd_line *out);

/* Splits a packet: sets *line to the next non-empty line at or after *pos (without the
 * '\n' and a trailing '\r') and advances *pos past it. false when none is left. */
bool statsd_next_line(const char *buf, size_t len, size_t *pos, struct vg_str *line);

/* "malformed_line", "bad_name", ... (the label values of vigil_statsd_malformed_total). */
const char *statsd_error_name(enum statsd_error e);
/* "c", "g", "ms", "h", "d", "s". */
const char *statsd_type_name(enum statsd_type t);

#endif
