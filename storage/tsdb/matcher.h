/* matcher: a label matcher as in PromQL: name = "v", != "v", =~ "re", !~ "re".
 *
 * Regexes are fully anchored (Prometheus semantics) and compiled once with PCRE2 (whose
 * syntax accepts the RE2 subset Prometheus users write). A matcher owns copies of its
 * name and value and its compiled regex: create with matcher_new, free with
 * matcher_free. matcher_matches is thread-safe (it uses per-call match data). Like
 * Prometheus, a missing label is matched as the empty string. */
#ifndef MATCHER_H
#define MATCHER_H

#include "../base/vg_buf.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"

#include <stdbool.h>

enum matcher_op { MATCH_EQ, MATCH_NEQ, MATCH_RE, MATCH_NRE };

struct matcher {
    enum matcher_op op;
    char *name;
    char *value;
    size_t value_len;
    void *re; /* pcre2_code_8 *, for MATCH_RE and MATCH_NRE */
    /* Cheap facts the index uses to pick a plan: */
    bool matches_empty; /* does the empty string match? */
};

/* NULL with VG_EINVAL naming the regex error and its offset. */
struct matcher *matcher_new(enum matcher_op op, struct vg_str name, struct vg_str value,
                            struct vg_err *err);
void matcher_free(struct matcher *m);
bool matcher_matches(const struct matcher *m, struct vg_str value);
const char *matcher_op_str(enum matcher_op op); /* "=", "!=", "=~", "!~" */

/* For a MATCH_RE or MATCH_NRE matcher: matches value against the (fully anchored)
 * regex and, on a match, appends tmpl expanded as Go's regexp.Expand to out: $1 or ${1}
 * is a numbered group, $name or ${name} a named one (a name is the longest run of
 * letters, digits and '_', so "$1x" names the group "1x"), a group that does not exist
 * or did not take part expands to nothing, $$ is '$', and a '$' not followed by a valid
 * reference stays as is. Used by PromQL's label_replace. Returns 1 on a match, 0 on no
 * match (out untouched), VG_ENOMEM (out may be marked failed), VG_EINVAL for other
 * matcher kinds. Thread-safe. */
int matcher_expand(const struct matcher *m, struct vg_str value, struct vg_str tmpl,
                   struct vg_buf *out);

#endif
