/* logparse_int: what the format files share with logparse.c, not for other modules.
 *
 * A format's parse function appends fields through logparse_out_add and gives up with
 * logparse_out_fail. Strings it builds (unescaped values, joined keys) come from the
 * line's arena through the helpers below. Each format file exports exactly its row(s);
 * the registry in logparse.c lists them. */
#ifndef LOGPARSE_INT_H
#define LOGPARSE_INT_H

#include "logparse.h"

#include <stdbool.h>

struct logparse_out {
    struct vg_arena *arena;
    struct logparse_field *fields;
    size_t n, cap, max;
    const char *reason; /* set by logparse_out_fail */
    size_t offset;
};

/* 0; LOGPARSE_UNPARSABLE past max fields ("too many fields"); VG_ENOMEM. */
int logparse_out_add(struct logparse_out *o, struct vg_str name, struct vg_str value);
/* Records why and where the line is unparsable; returns LOGPARSE_UNPARSABLE. */
int logparse_out_fail(struct logparse_out *o, const char *reason, size_t offset);

/* raw with backslash escapes decoded: \" \\ \/ \' \a \b \f \n \r \t \v, \xHH, \ooo,
 * \uHHHH (JSON surrogate pairs joined; a lone surrogate becomes U+FFFD), \UHHHHHHHH.
 * An unknown or malformed escape stays as written. Returns raw itself when it has no
 * backslash; {NULL, 0} with *nomem set when the arena is exhausted. */
struct vg_str logparse_unescape(struct logparse_out *o, struct vg_str raw, bool *nomem);

/* prefix + "_" + key (just key when prefix is empty), key sanitised as Loki does it:
 * surrounding spaces trimmed, each character outside [A-Za-z0-9_] (a whole UTF-8
 * sequence, or a single invalid byte) becomes '_', and the result gets a leading '_'
 * when it would start with a digit. Returns key itself when nothing changes; an empty
 * vg_str for an empty key; {NULL, 0} with *nomem set when the arena is exhausted. */
struct vg_str logparse_key(struct logparse_out *o, struct vg_str prefix, struct vg_str key,
                           bool *nomem);

/* The rows, defined in their own files. */
extern const struct logparse_format nginx_combined_format;
extern const struct logparse_format apache_common_format;
extern const struct logparse_format apache_combined_format;
extern const struct logparse_format json_lines_format;
extern const struct logparse_format logfmt_format;
extern const struct logparse_format regex_format;

#endif
