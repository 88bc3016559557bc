/* syslog_parse: the syslog codec. Pure functions over bytes: one message (RFC 5424 or
 * RFC 3164, told apart automatically) into its fields, and the TCP framer (RFC 6587
 * octet counting or non-transparent newline framing) that cuts a byte stream into
 * messages. No sockets, no storage: server/ingest/syslog.c glues them to both.
 *
 * Detection: after "<PRI>", a VERSION ("1".."999") followed by a space means RFC 5424;
 * anything else is read as RFC 3164 (BSD). A message that does not start with a valid
 * PRI, or an RFC 5424 message that breaks the grammar, is "unparsable": the result
 * carries a reason (syslog_error_name) and the whole input as msg, so the caller can
 * store it raw. Nothing is ever dropped here.
 *
 * RFC 5424 (section 6): PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
 * MSGID SP STRUCTURED-DATA [SP MSG]. "-" is the nil value of each header field.
 * TIMESTAMP is RFC 3339 with optional fraction (up to 9 digits kept to the nanosecond)
 * and "Z" or "+hh:mm"/"-hh:mm". STRUCTURED-DATA is "-" or "[ID name="value" ...]..."
 * where a value escapes '"', '\' and ']' with '\' (a '\' before any other byte stays a
 * literal '\'). A UTF-8 BOM opening MSG is removed.
 *
 * RFC 3164 (section 4.1): PRI TIMESTAMP SP HOSTNAME SP TAG[PID]: CONTENT, read leniently
 * as real senders write it:
 *  - TIMESTAMP "Mmm dd hh:mm:ss" (dd may be space-padded) carries no year and no zone.
 *    It is read in the zone opts->local_offset_s east of UTC (the receiver's local
 *    zone), and the year is the one of year-1, year, year+1 (year of opts->now_ns)
 *    that puts the time closest to now_ns. So "Dec 31 23:59:59" received at 00:00:05
 *    on January 1st lands in the old year, and a sender whose clock runs a little ahead
 *    over new year lands in the new year. A Feb 29 that fits none of the three years
 *    leaves the message without a timestamp. rsyslog's high-precision form (an RFC
 *    3339 timestamp in place of the BSD one) is accepted too.
 *  - Without a recognisable timestamp, everything after PRI is CONTENT (RFC 3164 4.3.3).
 *  - HOSTNAME is the next word unless that word already looks like a TAG ("sshd[42]:"
 *    or "cron:"), since some senders leave the hostname out.
 *  - TAG is the word up to '[' or ':', accepted only when it ends with ':' or "[PID]"
 *    (then an optional ':'); otherwise there is no tag and the word belongs to CONTENT.
 * Trailing LF, CR and NUL bytes are trimmed from both formats' message text.
 *
 * Bytes are kept as sent: MSG/CONTENT may be invalid UTF-8 (RFC 5424 only requires UTF-8
 * when the BOM is present); the header fields the parser accepts are printable ASCII.
 *
 * Framing (RFC 6587): on a TCP connection the first byte decides. A digit means octet
 * counting, "LEN SP MSG" with LEN in decimal (at most 10 digits, no leading zero); any
 * other byte means non-transparent framing, each message ending at LF (or NUL, which
 * some senders use); a CR before the LF is trimmed and empty lines are skipped. A
 * message longer than max_bytes is skipped whole (its bytes are consumed, never kept)
 * and reported as SYSLOG_FRAME_TOO_LARGE. An octet-counting length that is not digits
 * followed by a space desynchronises the stream: syslog_framer_feed then fails and the
 * connection should be closed. The framer buffers at most max_bytes per connection.
 *
 * Thread safety: syslog_parse is reentrant (the arena is the caller's); a framer
 * belongs to one connection and one thread. */
#ifndef SYSLOG_PARSE_H
#define SYSLOG_PARSE_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum syslog_format { SYSLOG_RAW, SYSLOG_RFC5424, SYSLOG_RFC3164 };

/* Why a message was unparsable (stored raw). SYSLOG_OK for a parsed message. */
enum syslog_error {
    SYSLOG_OK,
    SYSLOG_ERR_EMPTY,           /* no bytes at all (after trimming) */
    SYSLOG_ERR_NO_PRI,          /* does not start with '<' */
    SYSLOG_ERR_BAD_PRI,         /* "<>" , "<01>", "<192>", no '>' within 5 bytes, ... */
    SYSLOG_ERR_BAD_VERSION,     /* RFC 5424 VERSION not 1 */
    SYSLOG_ERR_BAD_TIMESTAMP,   /* RFC 5424 TIMESTAMP not RFC 3339 nor "-" */
    SYSLOG_ERR_BAD_HEADER,      /* RFC 5424 HOSTNAME/APP-NAME/PROCID/MSGID missing, too
                                   long or not printable ASCII */
    SYSLOG_ERR_BAD_SD,          /* RFC 5424 STRUCTURED-DATA malformed */
    SYSLOG_ERR_COUNT
};
/* Stable snake_case name for metrics labels and metadata: "ok", "empty", "no_pri",
 * "bad_pri", "bad_version", "bad_timestamp", "bad_header", "bad_structured_data". */
const char *syslog_error_name(enum syslog_error e);

/* RFC 5424 table 1 keywords as promtail and Grafana Alloy report them: "kern", "user",
 * "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
 * "ntp", "security", "console", "solaris-cron", "local0".."local7"; NULL out of range. */
const char *syslog_facility_name(int facility);
/* RFC 5424 table 2 as promtail's __syslog_message_severity: "emergency", "alert",
 * "critical", "error", "warning", "notice", "informational", "debug"; NULL out of range. */
const char *syslog_severity_name(int severity);
/* The severity on Loki's level scale that Grafana colours by: 0-2 "critical",
 * 3 "error", 4 "warn", 5-6 "info", 7 "debug"; NULL out of range. */
const char *syslog_level_name(int severity);

/* One STRUCTURED-DATA parameter: [id name="value"]. value is unescaped. */
struct syslog_sd_param {
    struct vg_str id, name, value;
};

/* Structured-data parameters kept per message at most (more: SYSLOG_ERR_BAD_SD). */
#define SYSLOG_MAX_SD_PARAMS 64

struct syslog_msg {
    enum syslog_format format;
    enum syslog_error error;   /* SYSLOG_OK unless format is SYSLOG_RAW */
    int facility, severity;    /* 0..23 and 0..7; -1 for SYSLOG_RAW */
    bool has_time;             /* a timestamp was present and valid */
    int64_t time_ns;           /* ns since the epoch when has_time */
    /* Absent or nil fields have len 0. Strings point into the input, except SD values
     * with escapes, which are copied into the arena. */
    struct vg_str hostname, app_name, procid, msgid;
    struct vg_str msg;         /* MSG or CONTENT; the whole (trimmed) input when raw */
    const struct syslog_sd_param *sd;
    size_t nsd;
};

struct syslog_parse_opts {
    int64_t now_ns;         /* receive time: picks the year of RFC 3164 timestamps */
    int32_t local_offset_s; /* zone of RFC 3164 timestamps, seconds east of UTC */
};

/* Parses one message of len bytes. Returns 0 with m filled (m->format tells the
 * format; an unparsable message is format SYSLOG_RAW with m->error set, still 0), or
 * VG_ENOMEM when the arena could not hold the unescaped structured data (err filled).
 * m's strings stay valid as long as the input and the arena. */
int syslog_parse(const char *p, size_t len, const struct syslog_parse_opts *opts,
                 struct vg_arena *arena, struct syslog_msg *m, struct vg_err *err);

/* ---- TCP framing ---- */

enum syslog_frame_kind {
    SYSLOG_FRAME_MSG,       /* one complete message */
    SYSLOG_FRAME_TOO_LARGE, /* a message over max_bytes was skipped; len = its size (for
                               newline framing: the bytes seen before giving up) */
};

/* Called once per message, in stream order. p/len are valid only during the call. */
typedef void (*syslog_frame_fn)(void *ctx, enum syslog_frame_kind kind, const char *p,
                                size_t len);

enum syslog_framing { SYSLOG_FRAMING_UNKNOWN, SYSLOG_FRAMING_OCTET, SYSLOG_FRAMING_NEWLINE };

struct syslog_framer {
    enum syslog_framing framing;
    size_t max_bytes;
    char *buf;          /* the message being assembled (vg_malloc, max_bytes) */
    size_t len;
    uint64_t want;      /* octet counting: bytes the current frame still needs */
    int digits;         /* octet counting: digits of LEN read so far (0 = between frames) */
    uint64_t count;     /* octet counting: LEN being read */
    bool skipping;      /* the current message is over max_bytes: consume, do not keep */
    uint64_t skipped;   /* bytes of it consumed so far */
    bool failed;        /* desynchronised: every later feed fails */
    size_t cap;         /* allocated size of buf (grows up to max_bytes) */
    uint64_t offset;    /* stream bytes consumed so far (for error messages) */
};

/* max_bytes >= 1. 0, or VG_ENOMEM (err filled). */
int syslog_framer_init(struct syslog_framer *f, size_t max_bytes, struct vg_err *err);
void syslog_framer_free(struct syslog_framer *f); /* accepts a zeroed framer */

/* Consumes n bytes of the stream, calling fn for every message they complete. 0, or
 * VG_EINVAL with err naming the bad octet-counting length and its stream offset, or
 * VG_ENOMEM when the message buffer could not grow; either way the connection should
 * be closed (messages completed before were delivered). */
int syslog_framer_feed(struct syslog_framer *f, const char *p, size_t n, syslog_frame_fn fn,
                       void *ctx, struct vg_err *err);
/* End of stream: delivers a last newline-framed message that had no LF. A partial
 * octet-counted frame is incomplete and is discarded; returns the number of bytes
 * thrown away that way (0 when the stream ended cleanly). */
size_t syslog_framer_finish(struct syslog_framer *f, syslog_frame_fn fn, void *ctx);

#endif
