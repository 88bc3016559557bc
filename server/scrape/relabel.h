/* relabel: Prometheus's relabelling (relabel_configs, metric_relabel_configs), parsed
 * from the config tree and applied to a mutable label set.
 *
 * Config shape, one list item per rule (Prometheus's keys and defaults):
 *   - source_labels: [a, b]     values joined by separator (default ";")
 *     separator: ";"
 *     regex: "(.*)"             RE2-style, fully anchored (compiled as ^(?s:re)$)
 *     target_label: name        replace/hashmod/lowercase/uppercase/keepequal/dropequal
 *     replacement: "$1"         Go regexp.Expand template ($1, ${1}, $name, $$)
 *     modulus: N                hashmod (required, > 0)
 *     action: replace           replace keep drop keepequal dropequal hashmod labelmap
 *                               labeldrop labelkeep lowercase uppercase
 * Checks as Prometheus's: target_label required where the action needs it (for replace
 * it may hold $-references and must be a label name otherwise), labeldrop/labelkeep take
 * only regex, keepequal/dropequal only source_labels and target_label, hashmod needs a
 * modulus. Applying a rule follows Prometheus's model/relabel: a label set to "" is
 * deleted; replace does nothing when the regex does not match or the expanded target is
 * not a valid label name; hashmod is the last 8 bytes of the MD5 of the joined value
 * (big-endian) modulo the modulus; labelmap/labeldrop/labelkeep look at a snapshot of
 * the names taken before the rule runs.
 *
 * Parsed rules are immutable and may be applied from any thread at once (matchers use
 * per-call match data). A relabel_set belongs to one thread. */
#ifndef RELABEL_H
#define RELABEL_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/labels.h"
#include "../config_node.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum relabel_action {
    RELABEL_REPLACE,
    RELABEL_KEEP,
    RELABEL_DROP,
    RELABEL_KEEPEQUAL,
    RELABEL_DROPEQUAL,
    RELABEL_HASHMOD,
    RELABEL_LABELMAP,
    RELABEL_LABELDROP,
    RELABEL_LABELKEEP,
    RELABEL_LOWERCASE,
    RELABEL_UPPERCASE,
};

struct matcher;

struct relabel_rule {
    enum relabel_action action;
    char **source;          /* source label names (vg_malloc'd copies) */
    size_t nsource;
    char *separator;
    char *regex;            /* the pattern as written, for messages */
    struct matcher *re;     /* compiled, fully anchored */
    char *target;
    char *replacement;
    uint64_t modulus;
};

struct relabel_rules {
    struct relabel_rule *v;
    size_t n;
};

/* Parses node (a list of rules; NULL or an empty scalar give no rules) into out (which
 * the caller zeroes or reuses after relabel_rules_free). where names the list in
 * messages, e.g. "scrape_configs[0].relabel_configs". 0, VG_EINVAL with "file:line:
 * where[i].key: ..." or VG_ENOMEM. On failure out holds nothing. */
int relabel_parse(const struct config_node *node, const char *where, struct relabel_rules *out,
                  struct vg_err *err);
void relabel_rules_free(struct relabel_rules *r); /* leaves r empty; accepts NULL */

/* "replace", "keep", ...; NULL for an unknown action. */
const char *relabel_action_name(enum relabel_action a);

/* A label set being relabelled. Labels are unordered; names are unique; strings are
 * borrowed (they must outlive the set) or allocated from the set's arena. */
struct relabel_set {
    struct label *v;
    size_t n, cap;
    struct vg_arena *arena;   /* for produced strings and the array itself */
};

void relabel_set_init(struct relabel_set *s, struct vg_arena *arena);
/* Empties the set (keeps the arena). */
void relabel_set_clear(struct relabel_set *s);
/* The value of name, or {NULL,0} when absent. */
struct vg_str relabel_set_get(const struct relabel_set *s, struct vg_str name);
/* Sets name to value (borrowed); an empty value deletes the label. 0 or VG_ENOMEM. */
int relabel_set_put(struct relabel_set *s, struct vg_str name, struct vg_str value);
/* Removes name if present. */
void relabel_set_del(struct relabel_set *s, struct vg_str name);
/* Sorts the labels by name (for storage and hashing). */
void relabel_set_sort(struct relabel_set *s);

/* Applies the rules in order. Returns 1 when the set is kept, 0 when a rule dropped it,
 * VG_ENOMEM when the arena is exhausted (the set is then unspecified). */
int relabel_apply(const struct relabel_rules *r, struct relabel_set *s);

/* Whether s is a legacy label name ([a-zA-Z_][a-zA-Z0-9_]*). */
bool relabel_valid_label_name(struct vg_str s);

#endif
