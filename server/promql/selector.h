/* selector: parses a PromQL series selector, `metric{label="v", l2=~"re", l3!="x"}`, as
 * used by match[] parameters of the Prometheus HTTP API and by /federate.
 *
 * Grammar (as PromQL): an optional metric name, then an optional brace list of matchers
 * `name op "value"` separated by commas (trailing comma allowed), ops = != =~ !~, strings
 * in double quotes, single quotes or backticks with Go escape rules; `{__name__="x"}`
 * works too. At least one matcher must not match the empty string (Prometheus's rule),
 * else VG_EINVAL. Errors name the byte position. Pure and thread-safe. */
#ifndef SELECTOR_H
#define SELECTOR_H

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/matcher.h"

#include <stddef.h>

struct selector {
    struct matcher **ms; /* vg_malloc'ed array of matchers */
    size_t n;
};

int selector_parse(const char *s, size_t len, struct selector *out, struct vg_err *err);
void selector_free(struct selector *s); /* frees the matchers; accepts a zeroed struct */

#endif
