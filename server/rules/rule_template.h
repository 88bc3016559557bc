/* rule_template: the Go text/template dialect Prometheus expands in alert labels and
 * annotations, as a language of the shared engine (server/template/gotmpl.h).
 *
 * Data: $labels / .Labels and $externalLabels / .ExternalLabels (label maps: a missing
 * label is "", Prometheus's missingkey=zero), $value / .Value (a float64), $externalURL /
 * .ExternalURL, and $ (Prometheus's preamble `{{$labels := .Labels}}...`); user
 * variables, field chains, `.`, `with` and `range` as gotmpl allows. Numbers are loose,
 * as Vigil's rule templates always were: `gt $value 80` compares the float with the
 * int, `printf "%d" $value` prints the integer part, and %s prints any value.
 * Functions: gotmpl's builtins (printf, print, println, index, len, eq, ne, lt, le, gt,
 * ge, and, or, not) and Prometheus's: humanize, humanize1024, humanizeDuration,
 * humanizePercentage, humanizeTimestamp, toUpper, toLower, title, reReplaceAll, match,
 * stripPort, stripDomain, parseDuration, safeHtml, urlQueryEscape, graphLink,
 * tableLink, toTime, now, args, pathPrefix, externalURL, and the query family: query (an instant PromQL query at the
 * evaluation time through d->query, giving a list of samples with .Labels and .Value;
 * a scalar is one sample without labels; strvalue reads a sample's __value__ label),
 * first, label, value, strvalue, sortByLabel. Not supported: define/template/block
 * (a template using them fails to parse). Argument counts and regex patterns are
 * checked when expanding, as Prometheus does.
 *
 * Values print as Go's fmt does: floats in strconv 'g' shortest form ("1.5", "1e+06"),
 * maps as map[k:v ...]. Number formatting in the humanize family follows Prometheus's
 * template.go (%.4g with SI or IEC prefixes).
 *
 * A parsed template is immutable: expand it from any thread. */
#ifndef RULES_RULE_TEMPLATE_H
#define RULES_RULE_TEMPLATE_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"

#include <stddef.h>
#include <stdint.h>

struct rule_template;

/* One sample of a template query's result. */
struct rule_template_sample {
    struct label *labels; /* sorted */
    size_t nlabels;
    double v;
};

/* Runs the instant query expr (NUL-terminated) for `query`: 0 with *out / *n (labels,
 * strings and the array in arena a), or a negative vg_code with err (the template then
 * fails with "error calling query: <message>"). A scalar result is one sample without
 * labels; other non-vector results are errors, as Prometheus's rule query function. */
typedef int (*rule_template_query_fn)(void *ctx, const char *expr, struct vg_arena *a,
                                      struct rule_template_sample **out, size_t *n,
                                      struct vg_err *err);

struct rule_template_data {
    const struct label *labels;   /* $labels, .Labels (sorted) */
    size_t nlabels;
    const struct label *external; /* $externalLabels, .ExternalLabels (sorted) */
    size_t nexternal;
    const char *external_url;     /* $externalURL, externalURL, pathPrefix; NULL = "" */
    double value;                 /* $value, .Value */
    int64_t ts_ms;                /* the evaluation time: `now` */
    rule_template_query_fn query; /* NULL: `query` fails ("no query engine") */
    void *query_ctx;
};

/* Parses text; name appears in messages ("template: name:1: ..."). NULL with err:
 * VG_EINVAL with Go's wording for a syntax error, VG_ENOMEM. Free with rule_template_free. */
struct rule_template *rule_template_parse(const char *name, const char *text, struct vg_err *err);
void rule_template_free(struct rule_template *t); /* accepts NULL */

/* Appends the expansion to out. 0, or VG_EINVAL with "template: name:line: executing
 * ...: error calling f: ..." when a function fails (out then holds a partial expansion,
 * which the caller discards), or VG_ENOMEM. */
int rule_template_expand(const struct rule_template *t, const struct rule_template_data *d,
                    struct vg_buf *out, struct vg_err *err);

/* Go's fmt "%.4g" of v (NaN, +Inf, -Inf as Go prints them), the humanize family's base. */
void rule_template_fmt_4g(struct vg_buf *out, double v);

/* Appends ms since the epoch in UTC as "YYYY-MM-DD<sep>hh:mm:ss[.fff]", the fraction
 * without trailing zeros (Go's time formatting; the API uses sep 'T'). */
void rule_template_fmt_time(struct vg_buf *b, int64_t ms, char sep);

/* Go's url.QueryEscape of s[0, n) appended to b ('+' for space, %XX for the rest). */
void rule_template_query_escape(struct vg_buf *b, const char *s, size_t n);

#endif
