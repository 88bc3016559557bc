/* clf: the Common Log Format family (NCSA common/combined as nginx and Apache write it),
 * described as a layout table of tokens, shared by the nginx_combined and apache_*
 * formats. Internal to server/ingest/logparse.
 *
 * Tokens are separated by one or more spaces; after the last one only spaces may
 * follow. Kinds:
 *   CLF_WORD     a run of non-space bytes (IPv6 addresses, user names)
 *   CLF_SKIP     a run of non-space bytes that is not kept (nginx's literal "-")
 *   CLF_TIME     "[...]": the bracketed time, kept without the brackets
 *   CLF_QUOTED   "\"...\"": backslash escapes decoded (\" and \\ from Apache, \xHH from
 *                both servers)
 *   CLF_REQUEST  a CLF_QUOTED request line, also split into method, path and protocol
 *                (protocol only when the last word starts with "HTTP/")
 *   CLF_STATUS   exactly three digits
 *   CLF_NUMBER   one or more digits
 * A value of "-" (how both servers print an empty value) leaves the field out; CLF_STATUS
 * and CLF_NUMBER accept it too. */
#ifndef CLF_H
#define CLF_H

#include "logparse_int.h"

enum clf_kind { CLF_WORD, CLF_SKIP, CLF_TIME, CLF_QUOTED, CLF_REQUEST, CLF_STATUS, CLF_NUMBER };

struct clf_token {
    enum clf_kind kind;
    const char *name; /* the field name; NULL for CLF_SKIP and CLF_REQUEST */
};

/* Parses line by the n tokens of layout into out. 0, LOGPARSE_UNPARSABLE (with the
 * reason and offset in out), VG_ENOMEM. Thread-safe. */
int clf_parse(const struct clf_token *layout, size_t n, struct vg_str line,
              struct logparse_out *out);

#endif
