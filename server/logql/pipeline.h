/* pipeline: the stages of a LogQL log query (line filters, parsers, label filters,
 * line_format, label_format, drop/keep, decolorize, and the unwrap of a range
 * aggregation) applied to one log entry at a time.
 *
 * Labels of an entry, as Loki builds them: the stream's labels, then its structured
 * metadata, then labels extracted by parsers (a parsed name that already exists gets
 * the suffix "_extracted", as Loki does). Parser and conversion failures set the label
 * __error__ (JSONParserErr, LogfmtParserErr, LabelFilterErr, SampleExtractionErr, ...)
 * and __error_details__ as Loki does; such entries are kept unless a label filter
 * drops them (`| __error__=""`), and entries that still carry __error__ at the end of a
 * metric query's pipeline are dropped, as Loki does.
 *
 * A pipeline is built once per query from a parsed tree and is NOT thread-safe: it owns
 * scratch buffers reused from entry to entry. Build one per evaluating thread. */
#ifndef LOGQL_PIPELINE_H
#define LOGQL_PIPELINE_H

#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/labels.h"
#include "ast.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logql_pipeline;

/* log: an LQ_LOG node of a parsed expr (which must outlive the pipeline); unwrap: the
 * range aggregation's unwrap or NULL. NULL with err: VG_EINVAL when a stage cannot be
 * built (a bad line_format template, a pattern without captures, an ip() that is not
 * an address, range or CIDR), VG_ENOMEM. */
struct logql_pipeline *logql_pipeline_new(const struct logql_node *log,
                                          const struct logql_unwrap *unwrap,
                                          struct vg_err *err);
void logql_pipeline_free(struct logql_pipeline *p); /* accepts NULL */

/* Parser hints (Loki's): tells the pipeline that its consumer reads only the labels
 * named in need (a `by` grouping applied to every output) and __error__. A `| json` or
 * `| logfmt` without parameters that only filters follow then sets only the labels
 * named in need, read by those label filters or by the unwrap; everything they would
 * have decided (errors, which entries are kept, the line, the value) is unchanged,
 * only the other parsed labels are missing from the output. need's strings must
 * outlive the pipeline. 0 or VG_ENOMEM (the pipeline then stays usable, unhinted or
 * partly hinted, and correct). */
int logql_pipeline_hint(struct logql_pipeline *p, const struct logql_strings *need);

/* The result of one entry. Everything points into the pipeline's scratch space and is
 * valid until the next logql_pipeline_process call on the same pipeline. */
struct logql_pipeline_out {
    struct vg_str line;          /* after line_format (else the input line) */
    const struct label *labels;  /* the entry's final label set, sorted, names unique */
    size_t nlabels;
    uint64_t labels_hash;        /* labels_hash of that set, to group entries by it */
    const struct label *parsed;  /* the subset of labels the stages extracted or set (Loki's
                                    "parsed" category, __error__ and __error_details__
                                    included), sorted */
    size_t nparsed;
    bool has_value;              /* unwrap ran and produced value (0 with __error__=
                                    SampleExtractionErr when the label did not convert);
                                    with an unwrap the unwrapped label itself is left out
                                    of labels, as Loki's sample extractor drops it */
    double value;
};

/* Runs the stages on one entry. stream: the stream's sorted labels; meta: its
 * structured metadata pairs (any order). Returns 1 when the entry is kept (out
 * filled), 0 when a stage dropped it, VG_ENOMEM on allocation failure. */
int logql_pipeline_process(struct logql_pipeline *p, int64_t t, struct vg_str line,
                           const struct label *stream, size_t nstream,
                           const struct label *meta, size_t nmeta,
                           struct logql_pipeline_out *out);

/* True when the pipeline only has line filters (no parser, label stage or format), so
 * an entry's output labels are its stream labels plus metadata. */
bool logql_pipeline_filters_only(const struct logql_pipeline *p);

/* Literal substrings every kept line must contain, as stored (exactly, case included),
 * for logstore_query's chunk skipping and line needles: the strings of positive `|=`
 * stages with a single alternative, and `|~` regexes that are plain literals, among
 * the stages before the first one that changes the line (line_format, decolorize,
 * unpack). Up to cap needles go into out (pointing into the tree); returns how many. */
size_t logql_pipeline_needles(const struct logql_node *log, struct vg_str *out, size_t cap);
/* True when the needles above are the whole pipeline: every stage is such a filter and
 * there are at most cap of them (none also qualifies). A store that keeps only the lines
 * holding every needle has then applied the pipeline exactly, and a kept entry's output
 * labels are its stream labels plus metadata. */
bool logql_pipeline_needles_exact(const struct logql_node *log, size_t cap);

#endif
