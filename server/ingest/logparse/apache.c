/* apache: Apache httpd's Common Log Format and Combined Log Format, as defined by the
 * LogFormat nicknames `common` and `combined` in a stock httpd.conf:
 *
 *   common:   %h %l %u %t \"%r\" %>s %b
 *   combined: %h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"
 *
 * Fields carry the directives' meanings: remote_host (%h), remote_logname (%l, identd,
 * nearly always "-"), remote_user (%u), time (%t), request (%r; also split into method,
 * path, protocol), status (%>s), response_bytes (%b, "-" for none), and for combined
 * referer and user_agent. Apache prints an empty value as "-" (the field is left out)
 * and escapes '"' and '\' in %r and headers as \" and \\ and other bytes as \xhh, all
 * decoded. The record time defaults to time in CLF layout. Both formats share one file
 * because combined is common plus two tokens. */
#include "clf.h"

#define COMMON_TOKENS                                                                    \
    { CLF_WORD, "remote_host" }, { CLF_WORD, "remote_logname" }, { CLF_WORD, "remote_user" }, \
        { CLF_TIME, "time" }, { CLF_REQUEST, NULL }, { CLF_STATUS, "status" },              \
        { CLF_NUMBER, "response_bytes" }

static const struct clf_token common[] = { COMMON_TOKENS };
static const struct clf_token combined[] = {
    COMMON_TOKENS,
    { CLF_QUOTED, "referer" },
    { CLF_QUOTED, "user_agent" },
};

static int parse_common(const void *state, struct vg_str line, struct logparse_out *out)
{
    (void)state;
    return clf_parse(common, sizeof common / sizeof common[0], line, out);
}

static int parse_combined(const void *state, struct vg_str line, struct logparse_out *out)
{
    (void)state;
    return clf_parse(combined, sizeof combined / sizeof combined[0], line, out);
}

const struct logparse_format apache_common_format = {
    .name = "apache_common",
    .summary = "Apache httpd access log in Common Log Format (LogFormat `common`)",
    .time_field = "time",
    .time_format = "clf",
    .parse = parse_common,
};

const struct logparse_format apache_combined_format = {
    .name = "apache_combined",
    .summary = "Apache httpd access log in Combined Log Format (LogFormat `combined`)",
    .time_field = "time",
    .time_format = "clf",
    .parse = parse_combined,
};
