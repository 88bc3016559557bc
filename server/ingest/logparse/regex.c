/* regex: the "regex" format: a PCRE2 pattern with named groups, compiled once per source
 * through storage/tsdb/matcher.h's extraction regexes (the one PCRE2 wrapper).
 *
 * As in Promtail's regex stage and LogQL's `| regexp`, the pattern searches the line
 * (unanchored; add ^ and $ to anchor), and each named group that took part becomes a
 * field named after the group, in group order. A line the pattern does not match (or
 * that hits PCRE2's backtracking limits) is unparsable. Bytes that are not UTF-8 match
 * no character, not even [^x] (matcher.h; Go would read them as U+FFFD), so a group
 * spanning them fails while the rest of such a line is searched normally. The pattern
 * must have at least one named group: one without could only produce empty records. */
#include "logparse_int.h"

#include "../../../storage/tsdb/matcher.h"

static int init(const struct logparse_config *cfg, void **state, struct vg_err *err)
{
    if (!cfg->pattern.len)
        return vg_err_set(err, VG_EINVAL, "pattern: the regex format needs a pattern");
    struct matcher_regex *re = matcher_regex_new(cfg->pattern, err);
    if (!re)
        return vg_err_prefix(err, "pattern");
    if (matcher_regex_named_count(re) == 0) {
        matcher_regex_free(re);
        return vg_err_set(err, VG_EINVAL,
                          "pattern: needs at least one named group such as (?P<status>\\d+)");
    }
    *state = re;
    return 0;
}

struct walk {
    struct logparse_out *out;
    int rc;
};

static int on_group(void *ud, struct vg_str name, struct vg_str value)
{
    struct walk *w = ud;
    w->rc = logparse_out_add(w->out, name, value);
    return w->rc ? -1 : 0; /* any negative stops the walk; w->rc keeps the reason */
}

static int parse(const void *state, struct vg_str line, struct logparse_out *out)
{
    struct walk w = { out, 0 };
    int rc = matcher_regex_groups(state, line, on_group, &w);
    if (rc == 1)
        return 0;
    if (rc == 0)
        return logparse_out_fail(out, "the pattern does not match", 0);
    return rc == -1 ? w.rc : rc;
}

static void release(void *state)
{
    matcher_regex_free(state);
}

const struct logparse_format regex_format = {
    .name = "regex",
    .summary = "a PCRE2 pattern whose named groups become fields",
    .init = init,
    .parse = parse,
    .free = release,
};
