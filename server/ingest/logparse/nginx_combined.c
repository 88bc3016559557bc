/* nginx_combined: nginx's predefined `combined` log_format, the access-log format of a
 * stock nginx (Debian's included):
 *
 *   $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
 *   "$http_referer" "$http_user_agent"
 *
 * Fields carry the variable names: remote_addr, remote_user, time_local, request (also
 * split into method, path, protocol), status, body_bytes_sent, http_referer,
 * http_user_agent. nginx prints an empty variable as "-", which leaves the field out
 * (clf.h), and escapes '"', '\' and bytes outside 0x20-0x7E as \xHH, which are decoded.
 * The record time defaults to time_local in CLF layout. Lines in a custom log_format need
 * the regex format. */
#include "clf.h"

static const struct clf_token layout[] = {
    { CLF_WORD, "remote_addr" },   { CLF_SKIP, NULL },
    { CLF_WORD, "remote_user" },   { CLF_TIME, "time_local" },
    { CLF_REQUEST, NULL },         { CLF_STATUS, "status" },
    { CLF_NUMBER, "body_bytes_sent" }, { CLF_QUOTED, "http_referer" },
    { CLF_QUOTED, "http_user_agent" },
};

static int parse(const void *state, struct vg_str line, struct logparse_out *out)
{
    (void)state;
    return clf_parse(layout, sizeof layout / sizeof layout[0], line, out);
}

const struct logparse_format nginx_combined_format = {
    .name = "nginx_combined",
    .summary = "nginx access log in the predefined `combined` log_format",
    .time_field = "time_local",
    .time_format = "clf",
    .parse = parse,
};
