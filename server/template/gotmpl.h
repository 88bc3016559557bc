/* gotmpl: the one Go text/template engine behind LogQL's line_format / label_format
 * (server/logql/template.c) and alerting-rule labels and annotations
 * (server/rules/rule_template.c). Each user is a "language": its function table, how
 * fields of its data resolve, its predeclared variables and a few flags.
 *
 * Syntax: text and {{ actions }} with the {{- / -}} trim markers and comment actions
 * (a slash-star comment alone inside the braces); pipelines `a | f b` (a command's
 * result is the last argument of the next); operands .Field and .A.B chains, `.`,
 * $var and $var.a chains, $ (the data), "strings" (Go escapes), `raw strings`,
 * integers, floats, true, false, nil and (sub pipelines), optionally followed by a
 * field chain; `{{ $x := p }}` and `{{ $x = p }}`; if / else if / else / with / end;
 * range over lists and maps (`{{ range p }}`, `{{ range $e := p }}`, `{{ range $i, $e
 * := p }}`, with {{ else }} for an empty one, {{ break }} and {{ continue }}), at most
 * GOTMPL_MAX_ITERATIONS iterations per execution. define, template and block are
 * refused when parsing; flat languages (GOTMPL_FLAT) refuse range and with too.
 *
 * Builtins (after the language's own functions, which may shadow them): eq ne lt le gt
 * ge and or not len index print printf println, as Go's. printf knows the verbs
 * %v %s %q %d %x %X %o %c %t %f %F %e %E %g %G %% with flags, width and precision, and
 * prints Go's %!v(MISSING), %!(EXTRA ...) and %!d(string=x) texts.
 *
 * Values are Go's basic kinds plus a label map (map[string]string: a field of it is
 * the label's value, "" when missing, as with missingkey=zero), the data value
 * (whose fields the language resolves), a list (a Go slice; with keys a
 * map[string]interface{}: its fields are its entries) and a sample (Prometheus's
 * template sample {Labels map[string]string; Value}: fields .Labels and .Value). Go's truth: "", 0, false, nil and an empty map
 * are false. Errors use Go's wording: "template: NAME:LINE: function \"x\" not
 * defined", "template: NAME:LINE: executing \"NAME\" at <f>: error calling f: ...".
 *
 * A parsed template is immutable: gotmpl_exec may run on it from many threads at once,
 * each with its own output buffer and arena. Languages are static tables. */
#ifndef SERVER_TEMPLATE_GOTMPL_H
#define SERVER_TEMPLATE_GOTMPL_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/labels.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gotmpl_kind { GOTMPL_NIL, GOTMPL_STR, GOTMPL_BOOL, GOTMPL_INT, GOTMPL_FLOAT,
                   GOTMPL_TIME, GOTMPL_MAP, GOTMPL_DATA, GOTMPL_LIST, GOTMPL_SAMPLE };

#define GOTMPL_MAX_ITERATIONS 100000 /* range iterations per execution, nested included */

struct gotmpl_val {
    enum gotmpl_kind k;
    bool b;                  /* GOTMPL_BOOL (beside k: no padding) */
    struct vg_str s;         /* GOTMPL_STR */
    int64_t i;               /* GOTMPL_INT; GOTMPL_TIME: ns since the epoch, UTC */
    double f;                /* GOTMPL_FLOAT; GOTMPL_SAMPLE: its value */
    const struct label *ls;  /* GOTMPL_MAP and GOTMPL_SAMPLE's labels: printed in this order */
    size_t n;                /* entries of ls, or of items */
    const struct gotmpl_val *items; /* GOTMPL_LIST */
    const struct vg_str *keys;      /* GOTMPL_LIST: NULL for a slice, else n keys (a map) */
};

struct gotmpl_exec;
struct gotmpl_func;

/* What a function sees of its call. */
struct gotmpl_call {
    const struct gotmpl_func *fn;
    void *data;               /* the data pointer given to gotmpl_exec */
    void *state;              /* what fn->prepare made for this call site, or NULL */
    struct vg_arena *arena;   /* for result strings; lives until the caller resets it */
    struct gotmpl_exec *x;    /* private to the engine */
};

/* Sets *out from a[0..n) (the piped value last). 0, or a negative vg_code made with
 * gotmpl_fail / gotmpl_oom. */
typedef int (*gotmpl_fn)(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                         struct gotmpl_val *out);

struct gotmpl_func {
    const char *name;
    int min, max;  /* argument counts, the piped value included; max -1: any */
    gotmpl_fn fn;
    int arg;       /* free for implementations shared by several names */
    /* Optional: when parsing a call whose first argument is a string literal. 0 with
     * *state (may stay NULL); VG_EINVAL with err fails the parse ("template: NAME:LINE: "
     * is put before err's message), VG_ENOMEM. The template releases state when freed. */
    int (*prepare)(struct vg_str literal, void **state, struct vg_err *err);
    void (*release)(void *state);
};

enum {
    GOTMPL_FLAT = 1,          /* only `.name` of the data: no variables, chains, `.` or with */
    GOTMPL_EARLY_ARITY = 2,   /* wrong argument counts fail the parse, not the execution */
    GOTMPL_LOOSE_NUMBERS = 4, /* int and float compare with each other, fit either kind of
                               * printf verb, and %s prints any value */
};

struct gotmpl_lang {
    const struct gotmpl_func *funcs; /* looked up before the builtins */
    size_t nfuncs;
    /* A field of the data value: true with *out set, false for "can't evaluate field". */
    bool (*field)(void *data, struct vg_str name, struct gotmpl_val *out);
    const char *const (*vars)[2];    /* predeclared { "$name" without '$', data field } */
    size_t nvars;
    unsigned flags;
};

struct gotmpl;

/* Parses src (copied); name appears in messages. NULL with err: VG_EINVAL with Go's
 * wording, VG_ENOMEM. Free with gotmpl_free (accepts NULL). */
struct gotmpl *gotmpl_new(const struct gotmpl_lang *lang, const char *name, struct vg_str src,
                          struct vg_err *err);
void gotmpl_free(struct gotmpl *t);

/* True when the template has no actions: executing yields its text. */
bool gotmpl_is_text(const struct gotmpl *t);

/* Appends the result to out; data is handed to the language's field resolver and to
 * functions; intermediate strings come from arena. 0; VG_EINVAL with err (out then
 * holds partial output); VG_ENOMEM. */
int gotmpl_exec(const struct gotmpl *t, void *data, struct vg_arena *arena, struct vg_buf *out,
                struct vg_err *err);

/* ---- for the languages' functions ---- */

/* VG_EINVAL with "template: NAME:LINE: executing \"NAME\" at <fn>: error calling fn: ..." */
int gotmpl_fail(struct gotmpl_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int gotmpl_oom(struct gotmpl_call *c); /* VG_ENOMEM, "template: out of memory" */
/* 0 when a[0..n) are all strings, else gotmpl_fail with Go's "wrong type" text. */
int gotmpl_want_str(struct gotmpl_call *c, const struct gotmpl_val *a, size_t n);
/* Copies b into the arena as a string value and frees b; VG_ENOMEM when b failed. */
int gotmpl_buf_val(struct gotmpl_call *c, struct vg_buf *b, struct gotmpl_val *out);
const char *gotmpl_kind_name(enum gotmpl_kind k);
bool gotmpl_truth(const struct gotmpl_val *v);
static inline struct gotmpl_val gotmpl_str(const char *p, size_t n)
{
    return (struct gotmpl_val){ .k = GOTMPL_STR, .s = { p, n } };
}

/* Functions several languages list under their own names. */
enum { GOTMPL_LOWER, GOTMPL_UPPER, GOTMPL_TITLE, GOTMPL_TITLE_APOS /* "don't" -> "Don't" */ };
int gotmpl_fn_case(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out);
/* Go's Regexp.ReplaceAllString over storage/tsdb/matcher.h. arg bits: */
enum { GOTMPL_RE_LITERAL = 1, /* ReplaceAllLiteralString */
       GOTMPL_RE_REPL_2ND = 2 /* (pattern, replacement, text), else (pattern, text, repl) */ };
int gotmpl_fn_replace_all(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                          struct gotmpl_val *out);
/* prepare/release for it: a literal pattern compiled once; a bad one fails the parse. */
int gotmpl_regex_prepare(struct vg_str literal, void **state, struct vg_err *err);
void gotmpl_regex_release(void *state);

/* Appends sec (+ nsec) since the epoch in UTC as "YYYY-MM-DD<sep>hh:mm:ss[.fffffffff]",
 * the fraction without trailing zeros (Go's time formatting). */
void gotmpl_put_time(struct vg_buf *b, int64_t sec, int64_t nsec, char sep);

#endif
