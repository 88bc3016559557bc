/* template: LogQL's line_format and label_format templates, as Loki runs them: the
 * shared Go text/template engine (server/template/gotmpl.h) with Loki's functions.
 *
 * Syntax is gotmpl's, restricted as Vigil's LogQL always was: fields are `.name` only
 * (the entry's labels, "" when missing: Loki's missingkey=zero); variables, field
 * chains, `.` and `with` are refused when compiling, as are unknown functions and wrong
 * argument counts (so a query fails up front rather than on each line).
 * Functions: gotmpl's builtins (eq ne lt le gt ge and or not len index print printf
 * println) and the Loki/sprig names ToUpper ToLower upper lower title trim trimAll
 * trimPrefix trimSuffix replace contains hasPrefix hasSuffix regexReplaceAll
 * regexReplaceAllLiteral default unixEpoch unixEpochMillis unixEpochNanos, and the Loki
 * specials __line__ (the current line) and __timestamp__ (the entry's time, printed as
 * Go prints a time.Time in UTC). A literal regexReplaceAll pattern is compiled once, and
 * a bad one fails compilation. Case-changing functions work on ASCII letters only.
 *
 * A compiled template is immutable: template_exec may run on it from many threads at
 * once, each with its own output buffer and scratch arena. */
#ifndef LOGQL_TEMPLATE_H
#define LOGQL_TEMPLATE_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"

#include <stdbool.h>
#include <stdint.h>

struct template;

/* Resolves `.name`: true with *value set (valid until template_exec returns) when the
 * field exists; false makes it "". */
typedef bool (*template_field_fn)(void *ud, struct vg_str name, struct vg_str *value);

struct template_data {
    template_field_fn field;
    void *ud;
    struct vg_str line; /* __line__ */
    int64_t ts_ns;      /* __timestamp__, ns since the epoch */
};

/* Compiles src; name appears in error messages ("template: name:1: ..."). NULL with
 * err: VG_EINVAL for a syntax error, an unsupported action, an unknown function, a
 * wrong argument count or a bad literal regex; VG_ENOMEM. Free with template_free. */
struct template *template_new(struct vg_str src, const char *name, struct vg_err *err);
void template_free(struct template *t); /* accepts NULL */

/* True when src has no actions: executing yields the text itself. */
bool template_is_text(const struct template *t);

/* Appends the result to out. Intermediate strings come from scratch (the caller resets
 * it when it likes). 0; VG_EINVAL with err (Go's execution error text, e.g. a wrong
 * argument type) and out holding partial output; VG_ENOMEM. */
int template_exec(const struct template *t, const struct template_data *d,
                  struct vg_arena *scratch, struct vg_buf *out, struct vg_err *err);

#endif
