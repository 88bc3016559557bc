/* Fuzz target for server/ingest/syslog_parse.c's syslog_parse: arbitrary bytes as one
 * syslog message. Whatever comes in, the result must be well formed: a parsed message
 * has facility 0..23 and severity 0..7, its header strings lie inside the input and are
 * printable ASCII, structured-data names lie inside the input; an unparsable message
 * carries a reason and the whole input (minus trailing line ends) as its text. The
 * first byte, when present, also moves the receive time and zone so the RFC 3164 year
 * rule is exercised around new year. Any violation aborts. */
#include "../../server/ingest/syslog_parse.h"

#include <stdint.h>
#include <stdlib.h>

static const char *lo, *hi;

static void inside(struct vg_str s)
{
    if (s.len && (s.p < lo || s.p + s.len > hi))
        abort();
}

static void printable(struct vg_str s)
{
    inside(s);
    for (size_t i = 0; i < s.len; i++)
        if (s.p[i] <= ' ' || s.p[i] >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    lo = (const char *)data;
    hi = lo + size;
    /* 2025-12-31T12:00:00Z plus up to a day and a half, zone -12h..+12h */
    int64_t now = 1767182400LL * 1000000000LL;
    int32_t off = 0;
    if (size) {
        now += (int64_t)data[0] * 500 * 1000000000LL;
        off = ((int32_t)data[0] - 128) * 337;
    }
    struct syslog_parse_opts o = { .now_ns = now, .local_offset_s = off };
    struct syslog_msg m;
    struct vg_err err;
    if (syslog_parse(lo, size, &o, a, &m, &err) == 0) {
        if (m.format == SYSLOG_RAW) {
            if (m.error == SYSLOG_OK || m.facility != -1 || m.nsd)
                abort();
            inside(m.msg);
            if (m.error != SYSLOG_ERR_EMPTY && m.msg.p != lo)
                abort();
        } else {
            if (m.error != SYSLOG_OK || m.facility < 0 || m.facility > 23 || m.severity < 0 ||
                m.severity > 7 || !syslog_facility_name(m.facility))
                abort();
            printable(m.hostname);
            printable(m.app_name);
            printable(m.procid);
            printable(m.msgid);
            inside(m.msg);
            if (m.nsd > SYSLOG_MAX_SD_PARAMS)
                abort();
            for (size_t i = 0; i < m.nsd; i++) {
                printable(m.sd[i].id);
                printable(m.sd[i].name);
                if (m.sd[i].value.len > size)
                    abort();
            }
        }
    }
    vg_arena_free(a);
    return 0;
}
