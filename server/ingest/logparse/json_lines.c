/* json_lines: the "json" format: one JSON object per line, as written by structured
 * loggers (logrus, zap, zerolog, slog, pino, bunyan, Serilog, python-json-logger,
 * Docker's json-file driver).
 *
 * Fields follow Loki's `| json` with no arguments: every member of the top-level object
 * becomes a field, nested objects are flattened with their keys joined by '_'
 * ({"req":{"method":"GET"}} gives req_method), and keys are sanitised (logparse.h).
 * Where Loki drops arrays, we keep them: an array is one field holding its JSON text as
 * written. Strings are unescaped (\uXXXX to UTF-8, surrogate pairs joined); numbers keep
 * their literal text; true and false are "true" and "false"; null is the empty string.
 * Members with an empty key and empty nested objects add nothing.
 *
 * A line is unparsable unless it is exactly one JSON object (surrounding whitespace
 * allowed) nested at most MAX_DEPTH deep. Leniencies, because loggers write them: raw
 * control characters inside strings, unknown escapes (kept as written), bytes that are
 * not UTF-8. Values point into the line when they need no unescaping. */
#include "logparse_int.h"

#include <string.h>

#define MAX_DEPTH 64

struct jp {
    struct vg_str s;
    size_t i;
    int depth;
    struct logparse_out *o;
};

static int fail(struct jp *j, const char *why)
{
    return logparse_out_fail(j->o, why, j->i);
}

static void ws(struct jp *j)
{
    while (j->i < j->s.len && (j->s.p[j->i] == ' ' || j->s.p[j->i] == '\t' ||
                               j->s.p[j->i] == '\n' || j->s.p[j->i] == '\r'))
        j->i++;
}

static int peek(const struct jp *j)
{
    return j->i < j->s.len ? (unsigned char)j->s.p[j->i] : -1;
}

/* A string at j->i (on its '"'); *raw gets its bytes between the quotes, escapes in. */
static int string(struct jp *j, struct vg_str *raw)
{
    size_t start = ++j->i;
    while (j->i < j->s.len && j->s.p[j->i] != '"')
        j->i += j->s.p[j->i] == '\\' ? 2 : 1;
    if (j->i >= j->s.len) {
        j->i = start - 1;
        return fail(j, "unterminated string");
    }
    *raw = (struct vg_str){ j->s.p + start, j->i - start };
    j->i++;
    return 0;
}

static bool digit(int c)
{
    return c >= '0' && c <= '9';
}

static int number(struct jp *j)
{
    if (peek(j) == '-')
        j->i++;
    if (peek(j) == '0') {
        j->i++;
    } else if (digit(peek(j))) {
        while (digit(peek(j)))
            j->i++;
    } else {
        return fail(j, "invalid number");
    }
    if (peek(j) == '.') {
        j->i++;
        if (!digit(peek(j)))
            return fail(j, "invalid number");
        while (digit(peek(j)))
            j->i++;
    }
    if (peek(j) == 'e' || peek(j) == 'E') {
        j->i++;
        if (peek(j) == '+' || peek(j) == '-')
            j->i++;
        if (!digit(peek(j)))
            return fail(j, "invalid number");
        while (digit(peek(j)))
            j->i++;
    }
    return 0;
}

/* true, false or null at j->i; *text gets the literal. */
static int literal(struct jp *j, struct vg_str *text)
{
    static const char *const words[] = { "true", "false", "null" };
    for (size_t k = 0; k < 3; k++) {
        size_t l = strlen(words[k]);
        if (j->s.len - j->i >= l && memcmp(j->s.p + j->i, words[k], l) == 0) {
            *text = (struct vg_str){ j->s.p + j->i, k == 2 ? 0 : l };
            j->i += l;
            return 0;
        }
    }
    return fail(j, "invalid value");
}

static int object(struct jp *j, struct vg_str prefix, bool emit);
static int skip(struct jp *j);

/* Walks the array or object at j->i (on its opening bracket) up to close, calling item
 * for each element; the depth bound keeps the recursion off the end of the stack. */
static int container(struct jp *j, char close, int (*item)(struct jp *, void *), void *ctx,
                     const char *bad_separator)
{
    if (++j->depth > MAX_DEPTH)
        return fail(j, "nested too deeply");
    j->i++;
    ws(j);
    bool more = peek(j) != (unsigned char)close; /* after a ',' an element must follow */
    while (more) {
        ws(j);
        int rc = item(j, ctx);
        if (rc)
            return rc;
        ws(j);
        more = peek(j) == ',';
        if (!more && peek(j) != (unsigned char)close)
            return fail(j, bad_separator);
        j->i += more;
    }
    j->i++;
    j->depth--;
    return 0;
}

static int array_item(struct jp *j, void *ctx)
{
    (void)ctx;
    return skip(j);
}

/* An array or, with emit false, any value: checked and skipped. */
static int skip(struct jp *j)
{
    struct vg_str unused = { NULL, 0 };
    int c = peek(j);
    if (c == '{')
        return object(j, (struct vg_str){ "", 0 }, false);
    if (c == '[')
        return container(j, ']', array_item, NULL, "expected ',' or ']' in array");
    if (c == '"')
        return string(j, &unused);
    if (c == '-' || digit(c))
        return number(j);
    return literal(j, &unused);
}

/* The value of member name at j->i: flattened, or added as one field. */
static int member(struct jp *j, struct vg_str name)
{
    int c = peek(j), rc;
    if (c == '{')
        return object(j, name, true);
    size_t start = j->i;
    struct vg_str v = { NULL, 0 };
    if (c == '"') {
        if ((rc = string(j, &v)) != 0)
            return rc;
        bool nomem = false;
        v = logparse_unescape(j->o, v, &nomem);
        if (nomem)
            return VG_ENOMEM;
    } else if (c == '[' || c == '-' || digit(c)) {
        if ((rc = skip(j)) != 0)
            return rc;
        v = (struct vg_str){ j->s.p + start, j->i - start };
    } else if ((rc = literal(j, &v)) != 0) {
        return rc;
    }
    return logparse_out_add(j->o, name, v);
}

struct object_ctx {
    struct vg_str prefix;
    bool emit;
};

/* One "key": value of an object. */
static int object_item(struct jp *j, void *ctx)
{
    const struct object_ctx *oc = ctx;
    if (peek(j) != '"')
        return fail(j, "expected a string key");
    struct vg_str key = { NULL, 0 };
    int rc = string(j, &key);
    if (rc)
        return rc;
    ws(j);
    if (peek(j) != ':')
        return fail(j, "expected ':' after a key");
    j->i++;
    ws(j);
    struct vg_str name = { NULL, 0 };
    bool nomem = false;
    if (oc->emit) {
        key = logparse_unescape(j->o, key, &nomem);
        if (!nomem)
            name = logparse_key(j->o, oc->prefix, key, &nomem);
        if (nomem)
            return VG_ENOMEM;
    }
    return name.len ? member(j, name) : skip(j);
}

/* An object at j->i; its members become fields named prefix_key when emit is set. */
static int object(struct jp *j, struct vg_str prefix, bool emit)
{
    struct object_ctx oc = { prefix, emit };
    return container(j, '}', object_item, &oc, "expected ',' or '}' in object");
}

static int parse(const void *state, struct vg_str line, struct logparse_out *out)
{
    (void)state;
    struct jp j = { .s = line, .o = out };
    ws(&j);
    if (peek(&j) != '{')
        return fail(&j, "not a JSON object");
    int rc = object(&j, (struct vg_str){ "", 0 }, true);
    if (rc)
        return rc;
    ws(&j);
    return j.i < line.len ? fail(&j, "unexpected text after the object") : 0;
}

const struct logparse_format json_lines_format = {
    .name = "json",
    .summary = "JSON lines: one object per line, nested keys joined with '_'",
    .parse = parse,
};
