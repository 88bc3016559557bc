/* logparse: log-line parsers selectable per source (file collector, syslog receivers).
 *
 * A parser is a pure codec: line bytes in, name/value fields and an optional timestamp
 * out, no I/O and no storage. Formats are rows in one table (logparse.c): nginx_combined,
 * apache_common, apache_combined, json, logfmt and regex; logparse_find looks one up by
 * name. A source's configuration (struct logparse_config) is compiled once by
 * logparse_new into a struct logparse (for regex: the PCRE2 pattern; for all: the
 * timestamp field and layout, logtime.h); logparse_line then parses each line.
 *
 * Outcome of a line: "parsed" (fields filled) or "unparsable" (a short static reason and
 * the byte offset where parsing gave up). An unparsable line is not an error: the caller
 * keeps it as a raw line and counts it. The timestamp is reported separately: set (the
 * record time), none (no time field configured or present: use the receive time) or
 * invalid (the field is there but does not parse: use the receive time and count it).
 *
 * Field names and values point into the line itself or into the caller's arena, so they
 * are valid while both live. Names are what the format defines (nginx variable names,
 * Apache's, regex group names) or, for json and logfmt, keys sanitised the way Loki's
 * `| json` and `| logfmt` do it (characters outside [A-Za-z0-9_] become '_', a leading
 * digit gets a '_' prefix). Fields come in line order; a key may repeat. Values are byte
 * strings: parsers do not validate UTF-8 and never fail a line for it.
 *
 * Thread safety: a struct logparse is immutable after logparse_new; logparse_line may run
 * on it from many threads at once, each with its own arena. */
#ifndef LOGPARSE_H
#define LOGPARSE_H

#include "../../../storage/base/vg_arena.h"
#include "../../../storage/base/vg_err.h"
#include "../../../storage/base/vg_str.h"

#include <stddef.h>
#include <stdint.h>

#define LOGPARSE_DEFAULT_MAX_FIELDS 256

struct logparse_config {
    const char *format;       /* a row name: "nginx_combined", "json", ... (required) */
    struct vg_str pattern;    /* regex format only: PCRE2 pattern with named groups */
    struct vg_str time_field; /* field holding the record time; empty: the format's
                                 default (nginx: time_local, apache: time, else none) */
    struct vg_str time_format; /* logtime.h spec ("rfc3339", "clf", "unix_ms", a strftime
                                  layout, ...); empty: the format's default, else "auto" */
    size_t max_fields;        /* more fields make the line unparsable; 0: the default */
};

struct logparse_field {
    struct vg_str name;
    struct vg_str value;
};

enum logparse_status { LOGPARSE_PARSED = 0, LOGPARSE_UNPARSABLE = 1 };

enum logparse_time { LOGPARSE_TIME_NONE = 0, LOGPARSE_TIME_SET, LOGPARSE_TIME_INVALID };

struct logparse_result {
    enum logparse_status status;
    const char *reason;      /* unparsable: static text ("unterminated quoted value") */
    size_t offset;           /* unparsable: byte offset in the line where it gave up */
    struct logparse_field *fields; /* in the arena; NULL when nfields == 0 */
    size_t nfields;          /* 0 for an unparsable line */
    enum logparse_time time; /* see the top of this file */
    int64_t time_ns;         /* nanoseconds since the Unix epoch when time is SET */
};

/* Builds fields while a format parses a line (see logparse_int.h for its helpers). */
struct logparse_out;

/* A format: one row of the registry. */
struct logparse_format {
    const char *name;
    const char *summary;             /* one line, for --help and the docs */
    const char *time_field;          /* default time field, NULL for none */
    const char *time_format;         /* default layout for it, NULL for "auto" */
    /* Compiles cfg into *state (may stay NULL). 0, or VG_EINVAL / VG_ENOMEM with err
     * naming the key ("pattern: ..."). NULL for formats with nothing to compile. */
    int (*init)(const struct logparse_config *cfg, void **state, struct vg_err *err);
    /* Appends the fields of line to out. 0 when parsed; LOGPARSE_UNPARSABLE after
     * logparse_out_fail; VG_ENOMEM when the arena is exhausted. Thread-safe. */
    int (*parse)(const void *state, struct vg_str line, struct logparse_out *out);
    void (*free)(void *state); /* NULL when init is NULL; accepts NULL */
};

/* The row named name (exact, case-sensitive), or NULL. */
const struct logparse_format *logparse_find(const char *name);
/* The rows, for --help and "valid formats: ..." messages; *n is set to their count. */
const struct logparse_format *const *logparse_formats(size_t *n);

struct logparse;

/* Compiles a source's parser. NULL with err: VG_EINVAL naming the key (format:, pattern:,
 * time_format:) and listing valid formats for an unknown one; VG_ENOMEM. Caller frees
 * with logparse_free (accepts NULL). */
struct logparse *logparse_new(const struct logparse_config *cfg, struct vg_err *err);
void logparse_free(struct logparse *p);
const struct logparse_format *logparse_format_of(const struct logparse *p);

/* Parses one line (without its line terminator; a trailing "\r" is ignored). ref_ns is
 * the receive time, used only to fill in a year that the time layout lacks. Fills *res
 * and returns 0 whether the line parsed or not; VG_ENOMEM when the arena ran out (res
 * then says unparsable with reason "out of memory", so the caller can still keep the
 * raw line). Thread-safe on a shared p with a per-thread arena. */
int logparse_line(const struct logparse *p, const char *line, size_t len, int64_t ref_ns,
                  struct vg_arena *a, struct logparse_result *res);

/* The value of the first field called name in res, or NULL. */
const struct vg_str *logparse_get(const struct logparse_result *res, struct vg_str name);

#endif
