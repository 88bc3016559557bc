/* clf: a table-driven parser for nginx and Apache access-log lines. See clf.h.
 *
 * Quoted values end at the first '"' not escaped by a backslash: Apache writes a quote
 * inside a value as \" and nginx as \x22, so both read back right. A request line is
 * split at its first and last space, which keeps a target with stray spaces whole and
 * handles HTTP/0.9's "GET /" (no protocol) and garbage such as "\x16\x03\x01" (no split;
 * only the request field). */
#include "clf.h"

#include <string.h>

static bool all_digits(struct vg_str v)
{
    for (size_t i = 0; i < v.len; i++)
        if (v.p[i] < '0' || v.p[i] > '9')
            return false;
    return v.len > 0;
}

static bool is_dash(struct vg_str v)
{
    return v.len == 1 && v.p[0] == '-';
}

static int add(struct logparse_out *o, const char *name, struct vg_str v)
{
    return logparse_out_add(o, vg_str_c(name), v);
}

static int add_request(struct logparse_out *o, struct vg_str req)
{
    int rc = add(o, "request", req);
    const char *sp1 = req.len ? memchr(req.p, ' ', req.len) : NULL;
    if (rc || !sp1)
        return rc;
    const char *end = req.p + req.len, *sp2 = end;
    while (sp2 > sp1 && sp2[-1] != ' ')
        sp2--;
    sp2--; /* the last space (== sp1 when there is only one) */
    struct vg_str method = { req.p, (size_t)(sp1 - req.p) };
    struct vg_str proto = { sp2 + 1, (size_t)(end - sp2 - 1) };
    bool has_proto = sp2 > sp1 && proto.len > 5 && memcmp(proto.p, "HTTP/", 5) == 0;
    const char *path_end = has_proto ? sp2 : end;
    struct vg_str path = { sp1 + 1, (size_t)(path_end - sp1 - 1) };
    if (method.len && (rc = add(o, "method", method)) != 0)
        return rc;
    if (path.len && (rc = add(o, "path", path)) != 0)
        return rc;
    return has_proto ? add(o, "protocol", proto) : 0;
}

/* Reads one token at line[*i] into *v (raw, escapes still in). */
static int token(struct vg_str line, size_t *i, enum clf_kind kind, struct vg_str *v,
                 struct logparse_out *o)
{
    size_t s = *i, e;
    if (kind == CLF_TIME) {
        if (line.p[s] != '[')
            return logparse_out_fail(o, "expected '[' before the time", s);
        const char *close = memchr(line.p + s, ']', line.len - s);
        if (!close)
            return logparse_out_fail(o, "unterminated [time]", s);
        e = (size_t)(close - line.p);
        *v = (struct vg_str){ line.p + s + 1, e - s - 1 };
        *i = e + 1;
        return 0;
    }
    if (kind == CLF_QUOTED || kind == CLF_REQUEST) {
        if (line.p[s] != '"')
            return logparse_out_fail(o, "expected a quoted value", s);
        for (e = s + 1; e < line.len && line.p[e] != '"'; e++)
            if (line.p[e] == '\\')
                e++;
        if (e >= line.len)
            return logparse_out_fail(o, "unterminated quoted value", s);
        *v = (struct vg_str){ line.p + s + 1, e - s - 1 };
        *i = e + 1;
        return 0;
    }
    for (e = s; e < line.len && line.p[e] != ' '; e++)
        ;
    *v = (struct vg_str){ line.p + s, e - s };
    *i = e;
    if (kind == CLF_STATUS && !is_dash(*v) && !(v->len == 3 && all_digits(*v)))
        return logparse_out_fail(o, "status is not three digits", s);
    if (kind == CLF_NUMBER && !is_dash(*v) && !all_digits(*v))
        return logparse_out_fail(o, "expected a number or '-'", s);
    return 0;
}

int clf_parse(const struct clf_token *layout, size_t n, struct vg_str line,
              struct logparse_out *out)
{
    size_t i = 0;
    for (size_t k = 0; k < n; k++) {
        if (k > 0) {
            if (i >= line.len || line.p[i] != ' ')
                return logparse_out_fail(out, i >= line.len ? "line ends early"
                                                            : "expected a space",
                                         i);
            while (i < line.len && line.p[i] == ' ')
                i++;
        }
        if (i >= line.len)
            return logparse_out_fail(out, "line ends early", i);
        struct vg_str v = { NULL, 0 }; /* set by token() when it returns 0 */
        int rc = token(line, &i, layout[k].kind, &v, out);
        if (rc)
            return rc;
        if (layout[k].kind == CLF_SKIP || is_dash(v))
            continue;
        if (layout[k].kind == CLF_QUOTED || layout[k].kind == CLF_REQUEST) {
            bool nomem = false;
            v = logparse_unescape(out, v, &nomem);
            if (nomem)
                return VG_ENOMEM;
        }
        rc = layout[k].kind == CLF_REQUEST ? add_request(out, v) : add(out, layout[k].name, v);
        if (rc)
            return rc;
    }
    while (i < line.len && line.p[i] == ' ')
        i++;
    return i < line.len ? logparse_out_fail(out, "unexpected text after the last field", i)
                        : 0;
}
