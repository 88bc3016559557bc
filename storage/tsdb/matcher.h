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

/* ---- extraction regexes (log parsers) ----
 * A matcher_regex is a PCRE2 pattern compiled once for pulling named groups out of a
 * line, with Go's regexp.FindSubmatch semantics as Promtail's regex stage and LogQL's
 * `| regexp` use them: unanchored, leftmost match, `.` does not match "\n" and `$`
 * only matches at the very end. UTF-8 handling and memory as for matchers above.
 * Immutable after matcher_regex_new, so matching is thread-safe. */
struct matcher_regex;

/* NULL with VG_EINVAL naming the regex error and its offset, or VG_ENOMEM. Caller
 * frees with matcher_regex_free (accepts NULL). */
struct matcher_regex *matcher_regex_new(struct vg_str pattern, struct vg_err *err);
void matcher_regex_free(struct matcher_regex *re);
/* Number of named groups ((?<name>...) or (?P<name>...)) in the pattern. */
size_t matcher_regex_named_count(const struct matcher_regex *re);

/* Called once per named group that took part in the match, in group-number order;
 * value points into the subject. A negative return stops the walk and is returned. */
typedef int (*matcher_group_fn)(void *ud, struct vg_str name, struct vg_str value);

/* Searches subject; returns 1 on a match (after calling fn for the named groups), 0 on
 * no match or a PCRE2 match/depth limit hit, VG_ENOMEM without match data, or the
 * negative value fn returned. Thread-safe. */
int matcher_regex_groups(const struct matcher_regex *re, struct vg_str subject,
                         matcher_group_fn fn, void *ud);

/* Searches subject from byte offset start (lookbehind and `^` still see the bytes
 * before it). 1 with the whole match in [*mstart, *mend), 0 on no match or a PCRE2
 * limit hit, VG_ENOMEM without match data. For replacing every match (redaction).
 * Thread-safe. */
int matcher_regex_find(const struct matcher_regex *re, struct vg_str subject, size_t start,
                       size_t *mstart, size_t *mend);

/* Appends subject to out with every match replaced, as Go's Regexp.ReplaceAllString
 * (literal false: repl expanded per match as matcher_expand does: $1, ${1}, $name, $$)
 * or ReplaceAllLiteralString (literal true): non-overlapping matches left to right, and
 * an empty match right after the previous match is not replaced ("a*" on "baaac" with
 * "x" gives "xbxcx"). A PCRE2 limit hit ends the search; the rest is copied as is.
 * 0, or VG_ENOMEM (out may be marked failed, partly written). Go's MatchString is
 * matcher_regex_find with start 0. Thread-safe. */
int matcher_regex_replace_all(const struct matcher_regex *re, struct vg_str subject,
                              struct vg_str repl, bool literal, struct vg_buf *out);

#endif
