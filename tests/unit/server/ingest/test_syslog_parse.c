/* Tests server/ingest/syslog_parse.c: RFC 5424 messages as rsyslog, logger and the RFC's
 * own examples write them (fractions, offsets, structured data with escapes, BOM, nil
 * fields), RFC 3164 messages in their real-world variations (padded days, missing
 * hostname, missing timestamp, rsyslog's high-precision timestamp, the year rule over
 * new year, the local zone, Feb 29), every unparsable reason, invalid UTF-8 and huge
 * messages kept byte-exact, allocation failure; and the TCP framer: octet counting and
 * newline framing, split at every byte, oversized frames, desynchronised lengths,
 * end of stream. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../server/ingest/syslog_parse.h"
#include "../../../../storage/base/vg_alloc.h"

/* 2025-06-15T10:00:00Z */
#define JUNE15 1749981600000000000LL
#define S 1000000000LL

static struct vg_arena *arena;
static struct syslog_msg m;
static struct vg_err err;

static void init(void)
{
    arena = vg_arena_new(0);
    vg_err_clear(&err);
}

static void fini(void)
{
    vg_arena_free(arena);
    vg_alloc_fail_after(0);
}

TestSuite(syslog_parse, .init = init, .fini = fini);

static void parse_at(const char *s, int64_t now, int32_t off)
{
    struct syslog_parse_opts o = { .now_ns = now, .local_offset_s = off };
    cr_assert_eq(syslog_parse(s, strlen(s), &o, arena, &m, &err), 0, "%s", err.msg);
}

static void parse(const char *s)
{
    parse_at(s, JUNE15, 0);
}

#define STR_EQ(v, want)                                                                   \
    do {                                                                                  \
        struct vg_str v_ = (v);                                                           \
        const char *w_ = (want);                                                          \
        cr_assert(v_.len == strlen(w_) && (v_.len == 0 || memcmp(v_.p, w_, v_.len) == 0), \
                  "%s: got [%.*s], want [%s]", #v, (int)v_.len, v_.p ? v_.p : "", w_);    \
    } while (0)

static void expect_raw(const char *s, enum syslog_error why)
{
    parse(s);
    cr_assert_eq(m.format, SYSLOG_RAW, "[%s] should be unparsable", s);
    cr_assert_eq(m.error, why, "[%s]: reason %s, want %s", s, syslog_error_name(m.error),
                 syslog_error_name(why));
    cr_assert_eq(m.facility, -1);
}

/* ---- RFC 5424 ---- */

Test(syslog_parse, rfc5424_example_with_bom)
{
    parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
          "\xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8");
    cr_assert_eq(m.format, SYSLOG_RFC5424);
    cr_assert_eq(m.facility, 4);
    cr_assert_eq(m.severity, 2);
    cr_assert(m.has_time);
    cr_assert_eq(m.time_ns, 1065910455003000000LL);
    STR_EQ(m.hostname, "mymachine.example.com");
    STR_EQ(m.app_name, "su");
    STR_EQ(m.procid, "");
    STR_EQ(m.msgid, "ID47");
    cr_assert_eq(m.nsd, 0);
    STR_EQ(m.msg, "'su root' failed for lonvick on /dev/pts/8");
}

Test(syslog_parse, rfc5424_negative_offset_and_microseconds)
{
    parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.");
    cr_assert_eq(m.facility, 20);
    cr_assert_eq(m.severity, 5);
    cr_assert_eq(m.time_ns, 1061727255000003000LL);
    STR_EQ(m.hostname, "192.0.2.1");
    STR_EQ(m.procid, "8710");
    STR_EQ(m.msgid, "");
    STR_EQ(m.msg, "%% It's time to make the do-nuts.");
}

Test(syslog_parse, rfc5424_structured_data)
{
    parse("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
          "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"]"
          "[examplePriority@32473 class=\"high\"] An application event log entry");
    cr_assert_eq(m.nsd, 4);
    STR_EQ(m.sd[0].id, "exampleSDID@32473");
    STR_EQ(m.sd[0].name, "iut");
    STR_EQ(m.sd[0].value, "3");
    STR_EQ(m.sd[1].name, "eventSource");
    STR_EQ(m.sd[1].value, "Application");
    STR_EQ(m.sd[2].value, "1011");
    STR_EQ(m.sd[3].id, "examplePriority@32473");
    STR_EQ(m.sd[3].name, "class");
    STR_EQ(m.sd[3].value, "high");
    STR_EQ(m.msg, "An application event log entry");
}

Test(syslog_parse, rfc5424_sd_without_msg_and_element_without_params)
{
    parse("<165>1 2003-10-11T22:14:15.003Z h app - - [origin][meta sequenceId=\"7\"]");
    cr_assert_eq(m.format, SYSLOG_RFC5424);
    cr_assert_eq(m.nsd, 1);
    STR_EQ(m.sd[0].id, "meta");
    STR_EQ(m.sd[0].value, "7");
    STR_EQ(m.msg, "");
}

Test(syslog_parse, rfc5424_sd_escapes)
{
    parse("<14>1 2025-06-15T10:00:00Z h a - - [x@1 q=\"say \\\"hi\\\"\" b=\"back\\\\slash\" "
          "c=\"close\\]\" d=\"keep\\n\" e=\"\"] body");
    cr_assert_eq(m.nsd, 5);
    STR_EQ(m.sd[0].value, "say \"hi\"");
    STR_EQ(m.sd[1].value, "back\\slash");
    STR_EQ(m.sd[2].value, "close]");
    STR_EQ(m.sd[3].value, "keep\\n"); /* RFC 5424 6.3.3: other escapes stay as written */
    STR_EQ(m.sd[4].value, "");
    STR_EQ(m.msg, "body");
}

Test(syslog_parse, rfc5424_from_logger)
{
    /* util-linux logger --rfc5424 adds timeQuality */
    parse("<13>1 2025-06-15T10:00:00.123456+00:00 myhost app 4321 - [timeQuality tzKnown=\"1\" "
          "isSynced=\"1\" syncAccuracy=\"123456\"] hello world\n");
    cr_assert_eq(m.time_ns, JUNE15 + 123456000LL);
    STR_EQ(m.app_name, "app");
    STR_EQ(m.procid, "4321");
    cr_assert_eq(m.nsd, 3);
    STR_EQ(m.sd[0].id, "timeQuality");
    STR_EQ(m.msg, "hello world");
}

Test(syslog_parse, rfc5424_from_rsyslog)
{
    parse("<30>1 2025-06-15T12:00:00.5+02:00 web01 nginx 1234 - - started worker\r\n");
    cr_assert_eq(m.facility, 3);
    cr_assert_eq(m.severity, 6);
    cr_assert_eq(m.time_ns, JUNE15 + S / 2);
    STR_EQ(m.hostname, "web01");
    STR_EQ(m.msg, "started worker");
}

Test(syslog_parse, rfc5424_all_nil)
{
    parse("<0>1 - - - - - -");
    cr_assert_eq(m.format, SYSLOG_RFC5424);
    cr_assert_eq(m.facility, 0);
    cr_assert_eq(m.severity, 0);
    cr_assert_not(m.has_time);
    cr_assert_eq(m.hostname.len + m.app_name.len + m.procid.len + m.msgid.len + m.msg.len, 0);
}

Test(syslog_parse, rfc5424_fraction_past_nanoseconds_and_lowercase)
{
    parse("<13>1 2025-06-15t10:00:00.1234567891z h a - - - x");
    cr_assert_eq(m.time_ns, JUNE15 + 123456789LL);
}

Test(syslog_parse, rfc5424_bad_timestamps)
{
    expect_raw("<13>1 2025-13-01T00:00:00Z h a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
    expect_raw("<13>1 2025-02-30T00:00:00Z h a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
    expect_raw("<13>1 yesterday h a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
    expect_raw("<13>1 2025-06-15T10:00:00 h a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
    expect_raw("<13>1 2025-06-15T24:00:00Z h a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
    expect_raw("<13>1 2025-06-15T10:00:00+25:00 h a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
    expect_raw("<13>1 1066-10-14T10:00:00Z h a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
    expect_raw("<13>1 2025-06-15T10:00:00Zh a p m - x", SYSLOG_ERR_BAD_TIMESTAMP);
}

Test(syslog_parse, rfc5424_missing_fields)
{
    expect_raw("<13>1 2025-06-15T10:00:00Z host app", SYSLOG_ERR_BAD_HEADER);
    expect_raw("<13>1 -", SYSLOG_ERR_BAD_HEADER);
    expect_raw("<13>1 - h a p m", SYSLOG_ERR_BAD_HEADER);
    expect_raw("<13>1 - h  a p m - x", SYSLOG_ERR_BAD_HEADER);
    /* an app name over 48 bytes, a control byte in the hostname */
    expect_raw("<13>1 - h aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa p m - x",
               SYSLOG_ERR_BAD_HEADER);
    expect_raw("<13>1 - h\x01 a p m - x", SYSLOG_ERR_BAD_HEADER);
}

Test(syslog_parse, rfc5424_bad_structured_data)
{
    expect_raw("<13>1 - h a p m [id a=\"b\"", SYSLOG_ERR_BAD_SD);
    expect_raw("<13>1 - h a p m [id a=b] x", SYSLOG_ERR_BAD_SD);
    expect_raw("<13>1 - h a p m [id a=\"b\"]x", SYSLOG_ERR_BAD_SD);
    expect_raw("<13>1 - h a p m [ ] x", SYSLOG_ERR_BAD_SD);
    expect_raw("<13>1 - h a p m [id a=\"unterminated] x", SYSLOG_ERR_BAD_SD);
    expect_raw("<13>1 - h a p m x y", SYSLOG_ERR_BAD_SD);
    expect_raw("<13>1 - h a p m -x", SYSLOG_ERR_BAD_SD);
}

Test(syslog_parse, rfc5424_too_many_sd_params)
{
    char buf[4096] = "<13>1 - h a - - [many";
    for (int i = 0; i <= SYSLOG_MAX_SD_PARAMS; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " p%d=\"v\"", i);
    strcat(buf, "] x");
    expect_raw(buf, SYSLOG_ERR_BAD_SD);
}

Test(syslog_parse, bad_version)
{
    expect_raw("<13>2 2025-06-15T10:00:00Z h a p m - x", SYSLOG_ERR_BAD_VERSION);
    expect_raw("<13>999 - h a p m - x", SYSLOG_ERR_BAD_VERSION);
}

Test(syslog_parse, rfc5424_sd_out_of_memory)
{
    vg_arena_set_limit(arena, 1);
    const char *s = "<13>1 - h a - - [x q=\"a\\\"b\"] m";
    struct syslog_parse_opts o = { .now_ns = JUNE15 };
    cr_assert_eq(syslog_parse(s, strlen(s), &o, arena, &m, &err), VG_ENOMEM);
    cr_assert(strstr(err.msg, "memory"));
}

/* ---- RFC 3164 ---- */

Test(syslog_parse, rfc3164_rfc_example)
{
    parse_at("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
             1065910455LL * S + 3600 * S, 0);
    cr_assert_eq(m.format, SYSLOG_RFC3164);
    cr_assert_eq(m.facility, 4);
    cr_assert_eq(m.severity, 2);
    cr_assert(m.has_time);
    cr_assert_eq(m.time_ns, 1065910455LL * S);
    STR_EQ(m.hostname, "mymachine");
    STR_EQ(m.app_name, "su");
    STR_EQ(m.procid, "");
    STR_EQ(m.msg, "'su root' failed for lonvick on /dev/pts/8");
}

Test(syslog_parse, rfc3164_padded_day_and_pid)
{
    parse("<38>Jun  5 08:30:00 bastion sshd[1234]: Accepted publickey for deploy from 192.0.2.7");
    cr_assert_eq(m.facility, 4);
    cr_assert_eq(m.severity, 6);
    STR_EQ(m.hostname, "bastion");
    STR_EQ(m.app_name, "sshd");
    STR_EQ(m.procid, "1234");
    STR_EQ(m.msg, "Accepted publickey for deploy from 192.0.2.7");
    /* 2025-06-05T08:30:00Z */
    cr_assert_eq(m.time_ns, JUNE15 - 10 * 86400 * S - 5400 * S);
}

Test(syslog_parse, rfc3164_from_logger)
{
    parse("<13>Jun 15 10:00:00 myhost app: hello from logger\n");
    cr_assert_eq(m.time_ns, JUNE15);
    STR_EQ(m.hostname, "myhost");
    STR_EQ(m.app_name, "app");
    STR_EQ(m.msg, "hello from logger");
    parse("<13>Jun 15 10:00:00 myhost app[999]: with --id");
    STR_EQ(m.procid, "999");
    STR_EQ(m.msg, "with --id");
}

Test(syslog_parse, rfc3164_without_hostname)
{
    parse("<78>Jun 15 10:00:00 CRON[42]: (root) CMD (run-parts /etc/cron.hourly)");
    cr_assert_eq(m.facility, 9);
    STR_EQ(m.hostname, "");
    STR_EQ(m.app_name, "CRON");
    STR_EQ(m.procid, "42");
    STR_EQ(m.msg, "(root) CMD (run-parts /etc/cron.hourly)");
    parse("<13>Jun 15 10:00:00 kernel: eth0 up");
    STR_EQ(m.hostname, "");
    STR_EQ(m.app_name, "kernel");
}

Test(syslog_parse, rfc3164_without_tag)
{
    parse("<13>Jun 15 10:00:00 myhost just some text: with a colon");
    STR_EQ(m.hostname, "myhost");
    STR_EQ(m.app_name, "");
    STR_EQ(m.msg, "just some text: with a colon");
    parse("<13>Jun 15 10:00:00 lonely");
    STR_EQ(m.hostname, "");
    STR_EQ(m.msg, "lonely");
    parse("<13>Jun 15 10:00:00");
    cr_assert(m.has_time);
    STR_EQ(m.msg, "");
}

Test(syslog_parse, rfc3164_without_timestamp)
{
    /* Python's SysLogHandler */
    parse("<14>myapp: hello");
    cr_assert_eq(m.format, SYSLOG_RFC3164);
    cr_assert_not(m.has_time);
    STR_EQ(m.app_name, "myapp");
    STR_EQ(m.msg, "hello");
    parse("<14>no tag here at all");
    STR_EQ(m.app_name, "");
    STR_EQ(m.msg, "no tag here at all");
    parse("<14>");
    cr_assert_eq(m.format, SYSLOG_RFC3164);
    STR_EQ(m.msg, "");
    parse("<14>Jun 15 1O:00:00 h t: letter O");
    cr_assert_not(m.has_time);
    STR_EQ(m.msg, "Jun 15 1O:00:00 h t: letter O");
}

Test(syslog_parse, rfc3164_rsyslog_high_precision)
{
    parse("<30>2025-06-15T12:00:00.250+02:00 web01 nginx[77]: GET / 200");
    cr_assert_eq(m.format, SYSLOG_RFC3164);
    cr_assert_eq(m.time_ns, JUNE15 + S / 4);
    STR_EQ(m.hostname, "web01");
    STR_EQ(m.app_name, "nginx");
    STR_EQ(m.procid, "77");
    STR_EQ(m.msg, "GET / 200");
}

Test(syslog_parse, rfc3164_year_rule_over_new_year)
{
    /* received at 2025-01-01T00:00:05Z: December belongs to 2024 */
    parse_at("<13>Dec 31 23:59:59 h t: x", 1735689605LL * S, 0);
    cr_assert_eq(m.time_ns, 1735689599LL * S);
    /* received at 2025-12-31T23:59:50Z from a sender a minute ahead: 2026 */
    parse_at("<13>Jan  1 00:00:30 h t: x", 1767225630LL * S - 40 * S, 0);
    cr_assert_eq(m.time_ns, 1767225630LL * S);
    /* mid-year: the current year */
    parse_at("<13>Mar  1 00:00:00 h t: x", JUNE15, 0);
    cr_assert_eq(m.time_ns, 1740787200LL * S); /* 2025-03-01 */
}

Test(syslog_parse, rfc3164_local_zone)
{
    /* 10:00 at UTC+2 is 08:00Z */
    parse_at("<13>Jun 15 10:00:00 h t: x", JUNE15 - 1800 * S, 7200);
    cr_assert_eq(m.time_ns, JUNE15 - 7200 * S);
    parse_at("<13>Jun 15 10:00:00.5 h t: x", JUNE15, -3600);
    cr_assert_eq(m.time_ns, JUNE15 + 3600 * S + S / 2);
}

Test(syslog_parse, rfc3164_feb29)
{
    parse_at("<13>Feb 29 12:00:00 h t: leap", 1709208000LL * S + 86400 * S, 0);
    cr_assert(m.has_time);
    cr_assert_eq(m.time_ns, 1709208000LL * S);
    /* in 2026 none of 2025..2027 has a Feb 29: parsed, but no time */
    parse_at("<13>Feb 29 12:00:00 h t: leap", 1772323200LL * S, 0);
    cr_assert_eq(m.format, SYSLOG_RFC3164);
    cr_assert_not(m.has_time);
    STR_EQ(m.app_name, "t");
    STR_EQ(m.msg, "leap");
}

Test(syslog_parse, rfc3164_invalid_utf8_kept)
{
    parse("<13>Jun 15 10:00:00 h t: caf\xe9 \xff\xfe end");
    STR_EQ(m.msg, "caf\xe9 \xff\xfe end");
    parse("<13>1 - h a - - - \xc3\x28 broken");
    cr_assert_eq(m.format, SYSLOG_RFC5424);
    STR_EQ(m.msg, "\xc3\x28 broken");
}

Test(syslog_parse, huge_message)
{
    size_t n = 1 << 20;
    char *buf = malloc(n + 64);
    cr_assert_not_null(buf);
    int h = sprintf(buf, "<13>Jun 15 10:00:00 h t: ");
    memset(buf + h, 'a', n);
    buf[h + n] = '\0';
    parse(buf);
    cr_assert_eq(m.msg.len, n);
    cr_assert_eq(m.msg.p, buf + h);
    /* and a huge unparsable one comes back whole */
    buf[0] = 'x';
    parse(buf);
    cr_assert_eq(m.format, SYSLOG_RAW);
    cr_assert_eq(m.msg.len, n + (size_t)h);
    free(buf);
}

/* ---- PRI and garbage ---- */

Test(syslog_parse, bad_pri)
{
    expect_raw("<>x", SYSLOG_ERR_BAD_PRI);
    expect_raw("<192>Jun 15 10:00:00 h t: x", SYSLOG_ERR_BAD_PRI);
    expect_raw("<01>x", SYSLOG_ERR_BAD_PRI);
    expect_raw("<1234>x", SYSLOG_ERR_BAD_PRI);
    expect_raw("<12", SYSLOG_ERR_BAD_PRI);
    expect_raw("<", SYSLOG_ERR_BAD_PRI);
    expect_raw("<-1>x", SYSLOG_ERR_BAD_PRI);
    expect_raw("no pri at all", SYSLOG_ERR_NO_PRI);
    STR_EQ(m.msg, "no pri at all");
    expect_raw("", SYSLOG_ERR_EMPTY);
    expect_raw("\r\n\n", SYSLOG_ERR_EMPTY);
    parse("<191>x");
    cr_assert_eq(m.facility, 23);
    cr_assert_eq(m.severity, 7);
}

Test(syslog_parse, raw_keeps_bytes_after_nul)
{
    const char s[] = "\x00\x01garbage\x00more";
    struct syslog_parse_opts o = { .now_ns = JUNE15 };
    cr_assert_eq(syslog_parse(s, sizeof s - 1, &o, arena, &m, &err), 0);
    cr_assert_eq(m.format, SYSLOG_RAW);
    cr_assert_eq(m.error, SYSLOG_ERR_NO_PRI);
    cr_assert_eq(m.msg.len, sizeof s - 1);
}

Test(syslog_parse, names)
{
    cr_assert_str_eq(syslog_facility_name(0), "kern");
    cr_assert_str_eq(syslog_facility_name(10), "authpriv");
    cr_assert_str_eq(syslog_facility_name(15), "solaris-cron");
    cr_assert_str_eq(syslog_facility_name(23), "local7");
    cr_assert_null(syslog_facility_name(24));
    cr_assert_null(syslog_facility_name(-1));
    cr_assert_str_eq(syslog_severity_name(0), "emergency");
    cr_assert_str_eq(syslog_severity_name(6), "informational");
    cr_assert_null(syslog_severity_name(8));
    cr_assert_str_eq(syslog_level_name(1), "critical");
    cr_assert_str_eq(syslog_level_name(3), "error");
    cr_assert_str_eq(syslog_level_name(4), "warn");
    cr_assert_str_eq(syslog_level_name(5), "info");
    cr_assert_str_eq(syslog_level_name(7), "debug");
    cr_assert_null(syslog_level_name(-1));
    cr_assert_str_eq(syslog_error_name(SYSLOG_ERR_BAD_SD), "bad_structured_data");
    cr_assert_str_eq(syslog_error_name(SYSLOG_ERR_COUNT), "unknown");
}

/* ---- framing ---- */

#define MAX_FRAMES 64

struct frames {
    char *msg[MAX_FRAMES];
    size_t len[MAX_FRAMES];
    enum syslog_frame_kind kind[MAX_FRAMES];
    size_t n;
};

static void on_frame(void *ctx, enum syslog_frame_kind kind, const char *p, size_t len)
{
    struct frames *fr = ctx;
    cr_assert_lt(fr->n, MAX_FRAMES);
    fr->kind[fr->n] = kind;
    fr->len[fr->n] = len;
    fr->msg[fr->n] = kind == SYSLOG_FRAME_MSG ? strndup(p, len) : NULL;
    fr->n++;
}

static void frames_free(struct frames *fr)
{
    for (size_t i = 0; i < fr->n; i++)
        free(fr->msg[i]);
    fr->n = 0;
}

/* Feeds s in pieces of `step` bytes (0 = all at once), then finishes. Returns the
 * feed status; *lost gets finish's count. */
static int frame(const char *s, size_t n, size_t max, size_t step, struct frames *fr,
                 size_t *lost)
{
    struct syslog_framer f;
    cr_assert_eq(syslog_framer_init(&f, max, &err), 0);
    int rc = 0;
    size_t st = step ? step : n;
    for (size_t i = 0; i < n && rc == 0; i += st)
        rc = syslog_framer_feed(&f, s + i, n - i < st ? n - i : st, on_frame, fr, &err);
    size_t l = syslog_framer_finish(&f, on_frame, fr);
    if (lost)
        *lost = l;
    syslog_framer_free(&f);
    return rc;
}

static void expect_frames_n(const char *s, size_t n, size_t max, const char *const *want,
                            size_t nwant)
{
    for (size_t step = 0; step <= n; step++) {
        struct frames fr = { 0 };
        cr_assert_eq(frame(s, n, max, step, &fr, NULL), 0, "step %zu: %s", step, err.msg);
        cr_assert_eq(fr.n, nwant, "step %zu: %zu frames, want %zu", step, fr.n, nwant);
        for (size_t i = 0; i < nwant; i++) {
            if (want[i][0] == '!') { /* "!N": a skipped oversized frame of N bytes */
                cr_assert_eq(fr.kind[i], SYSLOG_FRAME_TOO_LARGE, "step %zu frame %zu", step, i);
                cr_assert_eq(fr.len[i], (size_t)atoi(want[i] + 1));
            } else {
                cr_assert_eq(fr.kind[i], SYSLOG_FRAME_MSG);
                cr_assert_str_eq(fr.msg[i], want[i], "step %zu frame %zu", step, i);
            }
        }
        frames_free(&fr);
    }
}

static void expect_frames(const char *s, size_t max, const char *const *want, size_t nwant)
{
    expect_frames_n(s, strlen(s), max, want, nwant);
}

Test(syslog_parse, framing_octet_counting)
{
    const char *want[] = { "<13>1 - h a - - - one", "<13>two\nlines", "<14>x" };
    expect_frames("21 <13>1 - h a - - - one13 <13>two\nlines5 <14>x", 64, want, 3);
}

Test(syslog_parse, framing_octet_counting_tolerates_line_ends_between_frames)
{
    const char *want[] = { "<13>a", "<13>b" };
    expect_frames("5 <13>a\n\r\n5 <13>b\n", 64, want, 2);
}

Test(syslog_parse, framing_octet_counting_too_large)
{
    const char *want[] = { "<13>a", "!20", "<13>b" };
    expect_frames("5 <13>a20 <13>0123456789abcdef5 <13>b", 10, want, 3);
}

Test(syslog_parse, framing_octet_counting_bad_length)
{
    struct frames fr = { 0 };
    const char *bad[] = { "5 <13>aX", "5 <13>a05 <13>b", "12345678901 x", "5x<13>a", "5 <13>a -1 " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(frame(bad[i], strlen(bad[i]), 64, 0, &fr, NULL), VG_EINVAL, "%s", bad[i]);
        cr_assert(strstr(err.msg, "offset"), "%s", err.msg);
        frames_free(&fr);
    }
    /* the frame before the bad length was delivered */
    cr_assert_eq(frame("5 <13>aX", 8, 64, 0, &fr, NULL), VG_EINVAL);
    cr_assert_eq(fr.n, 1);
    cr_assert_str_eq(fr.msg[0], "<13>a");
    frames_free(&fr);
    /* and a desynchronised framer stays failed */
    struct syslog_framer f;
    syslog_framer_init(&f, 64, &err);
    cr_assert_eq(syslog_framer_feed(&f, "x1", 2, on_frame, &fr, &err), 0); /* newline mode */
    syslog_framer_free(&f);
    syslog_framer_init(&f, 64, &err);
    cr_assert_eq(syslog_framer_feed(&f, "1x", 2, on_frame, &fr, &err), VG_EINVAL);
    cr_assert_eq(syslog_framer_feed(&f, "1 a", 3, on_frame, &fr, &err), VG_EINVAL);
    syslog_framer_free(&f);
    frames_free(&fr);
}

Test(syslog_parse, framing_octet_counting_partial_at_end)
{
    struct frames fr = { 0 };
    size_t lost = 0;
    cr_assert_eq(frame("5 <13>a9 <13>b", 14, 64, 0, &fr, &lost), 0);
    cr_assert_eq(fr.n, 1);
    cr_assert_eq(lost, 5);
    frames_free(&fr);
    cr_assert_eq(frame("5 <13>a12", 9, 64, 0, &fr, &lost), 0);
    cr_assert_eq(lost, 2);
    frames_free(&fr);
}

Test(syslog_parse, framing_newline)
{
    const char *want[] = { "<13>a", "<13>b", "<13>c", "<13>d" };
    static const char s[] = "<13>a\n<13>b\r\n\n\r\n<13>c\0<13>d";
    expect_frames_n(s, sizeof s - 1, 64, want, 4);
}

Test(syslog_parse, framing_newline_too_large)
{
    const char *want[] = { "<13>a", "!12", "<13>b", "!12" };
    expect_frames("<13>a\n<13>toolong!\n<13>b\n<13>tooolong", 8, want, 4);
    /* exactly the limit passes */
    const char *want2[] = { "<13>1234" };
    expect_frames("<13>1234\n", 8, want2, 1);
}

Test(syslog_parse, framing_out_of_memory)
{
    struct syslog_framer f;
    struct frames fr = { 0 };
    cr_assert_eq(syslog_framer_init(&f, 64, &err), 0);
    vg_alloc_fail_after(1);
    cr_assert_eq(syslog_framer_feed(&f, "<13>partial", 11, on_frame, &fr, &err), VG_ENOMEM);
    vg_alloc_fail_after(0);
    cr_assert_eq(fr.n, 0);
    syslog_framer_free(&f);
    /* a message in one piece needs no buffer at all */
    cr_assert_eq(syslog_framer_init(&f, 64, &err), 0);
    vg_alloc_fail_after(1);
    cr_assert_eq(syslog_framer_feed(&f, "7 <13>one<13>two\n", 9, on_frame, &fr, &err), 0);
    vg_alloc_fail_after(0);
    cr_assert_eq(fr.n, 1);
    syslog_framer_free(&f);
    frames_free(&fr);
}
