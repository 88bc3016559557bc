/* gotmpl: a Go text/template subset shared by LogQL and alerting rules (see gotmpl.h).
 *
 * Parsing copies the source into the template's arena and builds a tree there: a list
 * of nodes (text, action, if, with, range, break, continue; "else if" nests an if node
 * as the else branch); an
 * action holds a pipeline, a list of commands joined by '|'; a command is a function
 * with its operands, or one operand. Actions are found first (the first "}}" outside a
 * quoted string), then tokenised. Functions are resolved while parsing, so an unknown
 * name fails up front; a function's prepare hook may compile a literal argument once.
 *
 * Execution walks the tree with a dot value, a stack of variables and the caller's
 * arena for the strings functions make. Errors carry the line of the action that
 * failed, computed while parsing from the source position. {{break}} and {{continue}}
 * travel up to their range as the positive codes BRK and CONT. */
#include "gotmpl.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_time.h"
#include "../../storage/tsdb/matcher.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64  /* nesting of if/with and parentheses */
#define MAX_VARS 64   /* variables in scope at once */
#define MAX_ARGS 32   /* operands of one command */
#define MAX_PAD 4096  /* printf width and precision are clamped to this */

/* ---- tree ---- */

enum akind { A_FUNC, A_FIELD, A_VAR, A_LIT, A_PIPE };

struct pipe;

struct arg {
    enum akind k;
    struct gotmpl_val v;          /* A_LIT (GOTMPL_NIL for nil) */
    const struct gotmpl_func *fn; /* A_FUNC */
    struct vg_str name;           /* A_VAR: without '$' ("" for $) */
    struct vg_str *fields;        /* the field chain applied to the operand */
    size_t nfields;
    struct pipe *pipe;            /* A_PIPE */
    struct arg *next;
};

struct cmd {
    struct arg *args;
    size_t n;
    void *state; /* from args->fn->prepare */
    struct cmd *next;
};

struct pipe {
    struct cmd *cmds;
    struct vg_str decl;  /* variable assigned when decl.p */
    struct vg_str decl2; /* range $i, $e: the element's variable (decl is the index's) */
    bool redefine;       /* '=' rather than ':=' */
    bool range;          /* a range's pipeline: the loop sets the variables */
};

enum nkind { N_TEXT, N_ACTION, N_IF, N_WITH, N_RANGE, N_BREAK, N_CONTINUE };

struct node {
    enum nkind k;
    unsigned line;
    struct vg_str text;
    struct pipe *pipe;
    struct node *then, *els, *next;
};

struct prepared {
    void *state;
    void (*release)(void *state);
    struct prepared *next;
};

struct gotmpl {
    struct vg_arena *a;
    const struct gotmpl_lang *lang;
    const char *name;
    struct node *root;
    struct prepared *prepared;
};

/* ---- values ---- */

const char *gotmpl_kind_name(enum gotmpl_kind k)
{
    static const char *const names[] = { "<nil>", "string", "bool", "int", "float64",
                                         "time.Time", "map[string]string", "data",
                                         "[]interface {}", "*template.sample" };
    return names[k];
}

bool gotmpl_truth(const struct gotmpl_val *v)
{
    switch (v->k) {
    case GOTMPL_STR: return v->s.len > 0;
    case GOTMPL_BOOL: return v->b;
    case GOTMPL_INT: return v->i != 0;
    case GOTMPL_FLOAT: return v->f != 0;
    case GOTMPL_MAP: case GOTMPL_LIST: return v->n > 0;
    case GOTMPL_TIME: case GOTMPL_DATA: case GOTMPL_SAMPLE: return true;
    default: return false;
    }
}

void gotmpl_put_time(struct vg_buf *b, int64_t sec, int64_t nsec, char sep)
{
    sec += vg_time_floor_div(nsec, 1000000000);
    nsec -= vg_time_floor_div(nsec, 1000000000) * 1000000000;
    int64_t days = vg_time_floor_div(sec, VG_TIME_S_PER_DAY), sod = sec - days * VG_TIME_S_PER_DAY;
    int64_t y;
    int mo, d;
    vg_time_civil_from_days(days, &y, &mo, &d);
    vg_buf_printf(b, "%04lld-%02d-%02d%c%02lld:%02lld:%02lld", (long long)y, mo, d, sep,
                  (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60));
    if (nsec) {
        char f[16];
        int l = snprintf(f, sizeof f, "%09lld", (long long)nsec);
        while (l > 0 && f[l - 1] == '0')
            l--;
        vg_buf_putc(b, '.');
        vg_buf_append(b, f, (size_t)l);
    }
}

/* v as Go prints it: an action prints nil as "<no value>", fmt as "<nil>". */
static void put_val(struct vg_buf *b, const struct gotmpl_val *v, bool fmt)
{
    switch (v->k) {
    case GOTMPL_STR: vg_buf_append(b, v->s.p, v->s.len); break;
    case GOTMPL_BOOL: vg_buf_puts(b, v->b ? "true" : "false"); break;
    case GOTMPL_INT: vg_buf_printf(b, "%" PRId64, v->i); break;
    case GOTMPL_FLOAT: vg_buf_prom_float(b, v->f); break;
    case GOTMPL_TIME: /* time.Time.String() */
        gotmpl_put_time(b, 0, v->i, ' ');
        vg_buf_puts(b, " +0000 UTC");
        break;
    case GOTMPL_MAP: case GOTMPL_SAMPLE: /* a sample as Go prints a *sample: &{map[..] v} */
        vg_buf_puts(b, v->k == GOTMPL_SAMPLE ? "&{map[" : "map[");
        for (size_t i = 0; i < v->n; i++) {
            vg_buf_printf(b, "%s%.*s:", i ? " " : "", (int)v->ls[i].name.len, v->ls[i].name.p);
            vg_buf_append(b, v->ls[i].value.p, v->ls[i].value.len);
        }
        vg_buf_putc(b, ']');
        if (v->k == GOTMPL_SAMPLE) {
            vg_buf_putc(b, ' ');
            vg_buf_prom_float(b, v->f);
            vg_buf_putc(b, '}');
        }
        break;
    case GOTMPL_LIST:
        vg_buf_puts(b, v->keys ? "map[" : "[");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                vg_buf_putc(b, ' ');
            if (v->keys)
                vg_buf_printf(b, "%.*s:", (int)v->keys[i].len, v->keys[i].p);
            put_val(b, &v->items[i], true);
        }
        vg_buf_putc(b, ']');
        break;
    case GOTMPL_DATA: vg_buf_puts(b, "{...}"); break;
    default: vg_buf_puts(b, fmt ? "<nil>" : "<no value>"); break;
    }
}

/* ---- parser ---- */

enum tok { T_EOF, T_IDENT, T_FIELD, T_DOT, T_VAR, T_STR, T_NUM, T_LP, T_RP, T_PIPE, T_DECL,
           T_ASSIGN, T_COMMA, T_BAD };

struct parser {
    struct gotmpl *t;
    struct vg_err *err;
    const char *src;
    size_t len, pos;       /* text scanning */
    size_t line_pos;       /* line_at's cache: src[0, line_pos) holds line_no - 1 newlines */
    unsigned line_no;
    bool trim_next;        /* the previous action ended with " -}}" */
    const char *a;         /* the current action's inside */
    size_t alen, apos;
    enum tok tk;           /* the current token */
    const char *tp;
    size_t tlen;
    struct vg_str vars[MAX_VARS];
    size_t nvars;
    int depth;
    int in_range;          /* ranges around the current action (for break/continue) */
    bool range_decl;       /* the next pipeline is a range's: "$i, $e :=" allowed */
};

static bool flat(const struct parser *p) { return p->t->lang->flags & GOTMPL_FLAT; }
static bool tsp(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || (unsigned char)c >= 0x80;
}

/* c in set; unlike strchr, a NUL byte (possible in a format string) is in no set. */
static bool in_set(const char *set, char c)
{
    return c && strchr(set, c);
}

static unsigned line_at(struct parser *p, const char *at)
{
    size_t pos = (size_t)(at - p->src);
    if (pos < p->line_pos)
        p->line_pos = 0, p->line_no = 1;
    for (; p->line_pos < pos && p->line_pos < p->len; p->line_pos++)
        p->line_no += p->src[p->line_pos] == '\n';
    return p->line_no;
}

__attribute__((format(printf, 3, 4))) static int perr(struct parser *p, const char *at,
                                                      const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vg_err_set(p->err, VG_EINVAL, "template: %s:%u: %s", p->t->name, line_at(p, at), msg);
}

static void *palloc(struct parser *p, size_t n)
{
    void *m = vg_arena_calloc(p->t->a, n);
    if (!m)
        vg_err_set(p->err, VG_ENOMEM, "template: out of memory");
    return m;
}

/* Reads the next token of the action into p->tk. */
static void next(struct parser *p)
{
    while (p->apos < p->alen && tsp(p->a[p->apos]))
        p->apos++;
    const char *s = p->a + p->apos;
    size_t rem = p->alen - p->apos, n = 1;
    p->tp = s;
    p->tlen = 0;
    if (!rem) {
        p->tk = T_EOF;
        return;
    }
    char c = s[0];
    if (c == '(') p->tk = T_LP;
    else if (c == ')') p->tk = T_RP;
    else if (c == '|') p->tk = T_PIPE;
    else if (c == '=') p->tk = T_ASSIGN;
    else if (c == ',') p->tk = T_COMMA;
    else if (c == ':' && rem > 1 && s[1] == '=') p->tk = T_DECL, n = 2;
    else if (c == '"' || c == '`') { /* next_action saw it closed */
        for (p->tk = T_STR; n < rem && s[n] != c; n++)
            n += c == '"' && s[n] == '\\';
        n++;
    } else if (c == '$' || c == '.') { /* $name, $, .Field, . and .a.b chains after either */
        p->tk = c == '$' ? T_VAR : T_FIELD;
        while (n < rem && ident_char(s[n]))
            n++;
        if (c == '.' && n == 1)
            p->tk = T_DOT;
        while (n + 1 < rem && s[n] == '.' && ident_char(s[n + 1])) {
            p->tk = p->tk == T_DOT ? T_FIELD : p->tk;
            for (n++; n < rem && ident_char(s[n]); n++)
                ;
        }
    } else if ((c >= '0' && c <= '9') ||
               ((c == '-' || c == '+') && rem > 1 && ((s[1] >= '0' && s[1] <= '9') || s[1] == '.'))) {
        p->tk = T_NUM;
        while (n < rem && (ident_char(s[n]) || s[n] == '.' ||
                           ((s[n] == '-' || s[n] == '+') && (s[n - 1] | 0x20) == 'e')))
            n++;
    } else if (ident_char(c) && !(c >= '0' && c <= '9')) {
        p->tk = T_IDENT;
        while (n < rem && ident_char(s[n]))
            n++;
    } else {
        p->tk = T_BAD;
    }
    p->tlen = n > rem ? rem : n;
    p->apos += p->tlen;
}

static bool is_kw(const struct parser *p, const char *w)
{
    return p->tk == T_IDENT && p->tlen == strlen(w) && !memcmp(p->tp, w, p->tlen);
}

/* The chain ".a.b" in s[0, n) as fields of a. */
static int chain(struct parser *p, const char *s, size_t n, struct arg *a)
{
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
        nf += s[i] == '.';
    if (!nf)
        return 0;
    if (flat(p) && (a->k != A_FIELD || nf > 1))
        return perr(p, s, "unsupported field reference");
    if (!(a->fields = palloc(p, nf * sizeof *a->fields)))
        return VG_ENOMEM;
    for (size_t i = 0; i < n;) {
        size_t st = ++i;
        while (i < n && s[i] != '.')
            i++;
        a->fields[a->nfields++] = (struct vg_str){ s + st, i - st };
    }
    return 0;
}

/* A Go string literal (the token with its quotes) into the arena. */
static int unquote(struct parser *p, const char *s, size_t n, struct gotmpl_val *v)
{
    static const char from[] = "ntrabfv\\\"'", to[] = "\n\t\r\a\b\f\v\\\"'";
    char *o = palloc(p, n);
    if (!o)
        return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        const char *m;
        if (s[0] == '`' || s[i] != '\\') {
            o[k++] = s[i];
        } else if (s[++i] && (m = strchr(from, s[i])) != NULL) {
            o[k++] = to[m - from];
        } else if (s[i] == 'x' && i + 2 < n - 1 && in_set("0123456789abcdefABCDEF", s[i + 1]) &&
                   in_set("0123456789abcdefABCDEF", s[i + 2])) {
            char h[3] = { s[i + 1], s[i + 2], 0 };
            o[k++] = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            return perr(p, s + i, "invalid syntax in quoted string");
        }
    }
    *v = gotmpl_str(o, k);
    return 0;
}

static int number(struct parser *p, struct gotmpl_val *v)
{
    char buf[64], *end;
    if (p->tlen >= sizeof buf)
        return perr(p, p->tp, "bad number syntax: \"%.*s\"", (int)p->tlen, p->tp);
    memcpy(buf, p->tp, p->tlen);
    buf[p->tlen] = 0;
    bool hex = strpbrk(buf, "xX") != NULL;
    errno = 0;
    if (!strpbrk(buf, hex ? ".pP" : ".eE"))
        *v = (struct gotmpl_val){ .k = GOTMPL_INT, .i = (int64_t)strtoll(buf, &end, 0) };
    else
        *v = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = strtod(buf, &end) };
    if (*end || errno)
        return perr(p, p->tp, "bad number syntax: \"%s\"", buf);
    return 0;
}

typedef int builtin_fn(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                       struct gotmpl_val *out);
static builtin_fn f_compare, f_logic, f_len, f_index, f_print, f_printf;

static const struct gotmpl_func builtins[] = {
    { "and", 1, -1, f_logic, 0, NULL, NULL },
    { "eq", 2, -1, f_compare, 0, NULL, NULL },
    { "ge", 2, 2, f_compare, 0, NULL, NULL },
    { "gt", 2, 2, f_compare, 0, NULL, NULL },
    { "index", 2, 2, f_index, 0, NULL, NULL },
    { "le", 2, 2, f_compare, 0, NULL, NULL },
    { "len", 1, 1, f_len, 0, NULL, NULL },
    { "lt", 2, 2, f_compare, 0, NULL, NULL },
    { "ne", 2, 2, f_compare, 0, NULL, NULL },
    { "not", 1, 1, f_logic, 0, NULL, NULL },
    { "or", 1, -1, f_logic, 0, NULL, NULL },
    { "print", 0, -1, f_print, 0, NULL, NULL },
    { "printf", 1, -1, f_printf, 0, NULL, NULL },
    { "println", 0, -1, f_print, 1, NULL, NULL },
};

static const struct gotmpl_func *find_func(const struct gotmpl_lang *l, struct vg_str name)
{
    for (size_t i = 0; i < l->nfuncs; i++)
        if (vg_str_eq_c(name, l->funcs[i].name))
            return &l->funcs[i];
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (vg_str_eq_c(name, builtins[i].name))
            return &builtins[i];
    return NULL;
}

static bool var_known(const struct parser *p, struct vg_str name)
{
    if (!name.len)
        return true;
    for (size_t i = 0; i < p->t->lang->nvars; i++)
        if (vg_str_eq_c(name, p->t->lang->vars[i][0]))
            return true;
    for (size_t i = 0; i < p->nvars; i++)
        if (vg_str_eq(p->vars[i], name))
            return true;
    return false;
}

static int parse_pipe(struct parser *p, bool decl_ok, enum tok end, struct pipe **out);

/* One operand at the current token, which it consumes. */
static int parse_arg(struct parser *p, struct arg *a)
{
    const char *s = p->tp;
    size_t n = p->tlen;
    int rc = 0;
    a->k = A_LIT;
    switch (p->tk) {
    case T_IDENT:
        if (is_kw(p, "true") || is_kw(p, "false")) {
            a->v = (struct gotmpl_val){ .k = GOTMPL_BOOL, .b = s[0] == 't' };
        } else if (!is_kw(p, "nil")) {
            a->k = A_FUNC;
            if (!(a->fn = find_func(p->t->lang, (struct vg_str){ s, n })))
                return perr(p, s, "function \"%.*s\" not defined", (int)n, s);
        }
        break;
    case T_DOT:
        if (flat(p))
            return perr(p, s, "unsupported field reference");
        a->k = A_FIELD;
        break;
    case T_FIELD:
        a->k = A_FIELD;
        rc = chain(p, s, n, a);
        break;
    case T_VAR: {
        if (flat(p))
            return perr(p, s, "variables are not supported");
        const char *dot = memchr(s, '.', n);
        a->k = A_VAR;
        a->name = (struct vg_str){ s + 1, (size_t)((dot ? dot : s + n) - s - 1) };
        if (!var_known(p, a->name))
            return perr(p, s, "undefined variable \"$%.*s\"", (int)a->name.len, a->name.p);
        rc = chain(p, s + 1 + a->name.len, n - 1 - a->name.len, a);
        break;
    }
    case T_STR:
        rc = unquote(p, s, n, &a->v);
        break;
    case T_NUM:
        rc = number(p, &a->v);
        break;
    case T_LP:
        if (++p->depth > MAX_DEPTH)
            return perr(p, s, "nesting deeper than %d", MAX_DEPTH);
        next(p);
        a->k = A_PIPE;
        if ((rc = parse_pipe(p, false, T_RP, &a->pipe)) < 0)
            return rc;
        p->depth--;
        if (p->apos < p->alen && p->a[p->apos] == '.') { /* (pipeline).Field */
            next(p);
            if (p->tk != T_FIELD)
                return perr(p, p->tp, "unexpected . after term");
            rc = chain(p, p->tp, p->tlen, a);
        }
        break;
    default:
        return perr(p, s, "unexpected \"%.*s\" in command", (int)(n ? n : 1), s);
    }
    if (rc < 0)
        return rc;
    next(p);
    return 0;
}

static int arity(struct parser *p, const char *at, const struct gotmpl_func *f, size_t n)
{
    if ((int)n < f->min || (f->max >= 0 && (int)n > f->max))
        return perr(p, at, "wrong number of args for %s: want %d got %zu", f->name, f->min, n);
    return 0;
}

/* Operands up to '|', ')' or the end of the action; checks what Go checks. */
static int parse_cmd(struct parser *p, struct cmd *c, size_t stage)
{
    const char *at = p->tp;
    struct arg **tail = &c->args;
    while (p->tk != T_EOF && p->tk != T_PIPE && p->tk != T_RP) {
        struct arg *a = palloc(p, sizeof *a);
        if (!a)
            return VG_ENOMEM;
        if (c->n == MAX_ARGS)
            return perr(p, p->tp, "too many arguments");
        int rc = parse_arg(p, a);
        if (rc < 0)
            return rc;
        *tail = a;
        tail = &a->next;
        c->n++;
    }
    if (!c->n)
        return perr(p, at, "missing value for command");
    const struct arg *h = c->args;
    if (h->k != A_FUNC) {
        if (stage)
            return perr(p, at, "non executable command in pipeline stage %zu", stage + 1);
        if (c->n > 1)
            return perr(p, at, "can't give argument to non-function");
        if (h->k == A_LIT && h->v.k == GOTMPL_NIL)
            return perr(p, at, "nil is not a command");
        return 0;
    }
    if (p->t->lang->flags & GOTMPL_EARLY_ARITY) {
        for (const struct arg *a = h->next; a; a = a->next)
            if (a->k == A_FUNC && arity(p, at, a->fn, 0) < 0)
                return p->err->code;
        if (arity(p, at, h->fn, c->n - 1 + (stage > 0)) < 0)
            return p->err->code;
    }
    if (h->fn->prepare && h->next && h->next->k == A_LIT && h->next->v.k == GOTMPL_STR) {
        struct prepared *pr = palloc(p, sizeof *pr);
        if (!pr)
            return VG_ENOMEM;
        int rc = h->fn->prepare(h->next->v.s, &c->state, p->err);
        if (rc == VG_EINVAL) {
            char msg[VG_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", p->err->msg);
            return perr(p, at, "%s", msg);
        }
        if (rc < 0)
            return rc;
        *pr = (struct prepared){ c->state, h->fn->release, p->t->prepared };
        p->t->prepared = pr;
    }
    return 0;
}

/* A pipeline up to end (T_EOF for a whole action, T_RP inside parentheses), with an
 * optional "$x :=" / "$x =" in front when decl_ok. */
static int parse_pipe(struct parser *p, bool decl_ok, enum tok end, struct pipe **out)
{
    struct pipe *pp = palloc(p, sizeof *pp);
    if (!pp)
        return VG_ENOMEM;
    pp->range = p->range_decl;
    p->range_decl = false;
    if (decl_ok && p->tk == T_VAR && !flat(p) && !memchr(p->tp, '.', p->tlen)) {
        size_t save = p->apos;
        struct vg_str v = { p->tp + 1, p->tlen - 1 };
        next(p);
        if (pp->range && p->tk == T_COMMA) { /* range $i, $e := */
            next(p);
            if (p->tk != T_VAR || memchr(p->tp, '.', p->tlen) || p->tlen < 2)
                return perr(p, p->tp, "range can only initialize variables");
            pp->decl2 = (struct vg_str){ p->tp + 1, p->tlen - 1 };
            next(p);
            if (p->tk != T_DECL)
                return perr(p, p->tp, "expected := after range variables");
        }
        if (p->tk == T_DECL || p->tk == T_ASSIGN) {
            pp->decl = v;
            pp->redefine = p->tk == T_ASSIGN;
            if (pp->redefine && !var_known(p, v))
                return perr(p, v.p, "undefined variable \"$%.*s\"", (int)v.len, v.p);
            next(p);
        } else {
            p->apos = save - (v.len + 1);
            next(p);
        }
    }
    struct cmd **tail = &pp->cmds;
    for (size_t stage = 0;; stage++) {
        struct cmd *c = palloc(p, sizeof *c);
        if (!c)
            return VG_ENOMEM;
        int rc = parse_cmd(p, c, stage);
        if (rc < 0)
            return rc;
        *tail = c;
        tail = &c->next;
        if (p->tk != T_PIPE)
            break;
        next(p);
    }
    if (p->tk != end) {
        if (end == T_RP && p->tk == T_EOF)
            return perr(p, p->tp, "unclosed left paren");
        return perr(p, p->tp, "unexpected \"%.*s\" in %s", (int)(p->tlen ? p->tlen : 1), p->tp,
                    end == T_RP ? "parenthesized pipeline" : "command");
    }
    for (int k = 0; k < 2; k++) {
        struct vg_str d = k ? pp->decl2 : pp->decl;
        if (!d.p || pp->redefine || var_known(p, d))
            continue;
        if (p->nvars == MAX_VARS)
            return perr(p, p->tp, "too many variables");
        p->vars[p->nvars++] = d;
    }
    *out = pp;
    return 0;
}

static struct node *add_node(struct parser *p, struct node ***tail, enum nkind k, const char *at)
{
    struct node *n = palloc(p, sizeof *n);
    if (n) {
        n->k = k;
        n->line = line_at(p, at);
        **tail = n;
        *tail = &n->next;
    }
    return n;
}

/* Appends the text up to the next action to *tail, skipping comment actions, and makes
 * the next action current. 1 for an action, 0 at the end of the source. */
static int next_action(struct parser *p, struct node ***tail)
{
    const char *s = p->src, *lim = s + p->len;
    for (;;) {
        size_t start = p->pos;
        while (p->trim_next && start < p->len && tsp(s[start]))
            start++;
        p->trim_next = false;
        const char *open = NULL;
        for (size_t k = start; k + 1 < p->len && !open; k++)
            if (s[k] == '{' && s[k + 1] == '{')
                open = s + k;
        size_t end = open ? (size_t)(open - s) : p->len, tend = end;
        bool trim_left = open && end + 3 < p->len && s[end + 2] == '-' && tsp(s[end + 3]);
        while (trim_left && tend > start && tsp(s[tend - 1]))
            tend--;
        if (tend > start) {
            struct node *n = add_node(p, tail, N_TEXT, s + start);
            if (!n)
                return VG_ENOMEM;
            n->text = (struct vg_str){ s + start, tend - start };
        }
        if (!open) {
            p->pos = p->len;
            return 0;
        }
        const char *body = open + 2 + (trim_left ? 2 : 0), *q = body;
        while (q < lim && tsp(*q))
            q++;
        if (q + 1 < lim && q[0] == '/' && q[1] == '*') { /* a comment: nothing else */
            const char *ce = NULL;
            for (const char *k = q + 2; k + 1 < lim && !ce; k++)
                if (k[0] == '*' && k[1] == '/')
                    ce = k;
            if (!ce)
                return perr(p, q, "unclosed comment");
            for (q = ce + 2; q < lim && tsp(*q); q++)
                ;
            bool trim = q + 1 < lim && q[0] == '-' && tsp(q[-1]);
            q += trim;
            if (q + 1 >= lim || q[0] != '}' || q[1] != '}')
                return perr(p, q, "comment ends before closing delimiter");
            p->trim_next = trim;
            p->pos = (size_t)(q + 2 - s);
            continue;
        }
        char quote = 0;
        const char *qs = NULL;
        for (q = body; q < lim; q++) {
            if (quote == '"' && *q == '\n')
                break; /* unterminated */
            if (quote == '"' && *q == '\\' && q + 1 < lim)
                q++;
            else if (quote)
                quote = *q == quote ? 0 : quote;
            else if (*q == '"' || *q == '`')
                quote = *(qs = q);
            else if (*q == '}' && q + 1 < lim && q[1] == '}')
                break;
        }
        if (quote)
            return perr(p, qs, "unterminated quoted string");
        if (q >= lim)
            return perr(p, open, "unclosed action");
        const char *aend = q;
        p->trim_next = aend - body >= 2 && aend[-1] == '-' && tsp(aend[-2]);
        p->a = body;
        p->alen = (size_t)(aend - body) - p->trim_next;
        p->apos = 0;
        p->pos = (size_t)(q + 2 - s);
        return 1;
    }
}

enum stop { S_EOF, S_END, S_ELSE };

static int parse_list(struct parser *p, struct node **head, enum stop *stop);

/* At "if" or "with": the pipeline, the branches and the shared {{end}}. */
static int parse_control(struct parser *p, struct node *n)
{
    if (++p->depth > MAX_DEPTH)
        return perr(p, p->tp, "nesting deeper than %d", MAX_DEPTH);
    size_t vars = p->nvars; /* variables end with their control structure */
    int rc;
    for (;;) {
        enum stop st;
        next(p);
        p->range_decl = n->k == N_RANGE;
        if ((rc = parse_pipe(p, !flat(p), T_EOF, &n->pipe)) < 0)
            return rc;
        p->in_range += n->k == N_RANGE; /* break and continue: not in range's else */
        rc = parse_list(p, &n->then, &st);
        p->in_range -= n->k == N_RANGE;
        if (rc < 0)
            return rc;
        if (st == S_EOF)
            return perr(p, p->src + p->len, "unexpected EOF");
        if (st == S_END)
            break;
        if (is_kw(p, "if") && n->k == N_IF) { /* else if: an if as the else branch */
            struct node **tail = &n->els;
            if (!(n = add_node(p, &tail, N_IF, p->tp)))
                return VG_ENOMEM;
            continue;
        }
        if (p->tk != T_EOF)
            return perr(p, p->tp, "unexpected \"%.*s\" in else", (int)p->tlen, p->tp);
        if ((rc = parse_list(p, &n->els, &st)) < 0)
            return rc;
        if (st != S_END)
            return perr(p, st == S_EOF ? p->src + p->len : p->a,
                        st == S_EOF ? "unexpected EOF" : "expected end; found {{else}}");
        break;
    }
    p->nvars = vars;
    p->depth--;
    return 0;
}

/* Nodes up to {{end}}, {{else}} (the token after "else" current) or the end. */
static int parse_list(struct parser *p, struct node **head, enum stop *stop)
{
    static const char *const unsupported[] = { "define", "template", "block", "range",
                                               "break", "continue", "with" };
    struct node **tail = head;
    for (;;) {
        int rc = next_action(p, &tail);
        if (rc <= 0) {
            *stop = S_EOF;
            return rc;
        }
        next(p);
        if (is_kw(p, "end") || is_kw(p, "else")) {
            *stop = is_kw(p, "end") ? S_END : S_ELSE;
            next(p);
            if (*stop == S_END && p->tk != T_EOF)
                return perr(p, p->tp, "unexpected \"%.*s\" in end", (int)p->tlen, p->tp);
            return 0;
        }
        for (size_t k = 0; k < (flat(p) ? sizeof unsupported / sizeof *unsupported : 3); k++)
            if (is_kw(p, unsupported[k]))
                return perr(p, p->tp, "\"%s\" actions are not supported", unsupported[k]);
        if (is_kw(p, "break") || is_kw(p, "continue")) {
            const char *kw = p->tp;
            struct node *n = add_node(p, &tail, kw[0] == 'b' ? N_BREAK : N_CONTINUE, kw);
            if (!n)
                return VG_ENOMEM;
            if (!p->in_range)
                return perr(p, kw, "{{%s}} outside {{range}}", kw[0] == 'b' ? "break" : "continue");
            next(p);
            if (p->tk != T_EOF)
                return perr(p, p->tp, "unexpected \"%.*s\" in %s", (int)p->tlen, p->tp,
                            kw[0] == 'b' ? "break" : "continue");
            continue;
        }
        enum nkind k = is_kw(p, "if") ? N_IF : is_kw(p, "with") ? N_WITH
                     : is_kw(p, "range") ? N_RANGE : N_ACTION;
        struct node *n = add_node(p, &tail, k, p->tp);
        if (!n)
            return VG_ENOMEM;
        rc = k != N_ACTION ? parse_control(p, n) : parse_pipe(p, !flat(p), T_EOF, &n->pipe);
        if (rc < 0)
            return rc;
    }
}

struct gotmpl *gotmpl_new(const struct gotmpl_lang *lang, const char *name, struct vg_str src,
                          struct vg_err *err)
{
    name = name ? name : "template";
    struct vg_arena *a = vg_arena_new(1024 + src.len);
    struct gotmpl *t = a ? vg_arena_calloc(a, sizeof *t) : NULL;
    char *copy = t ? vg_arena_strndup(a, src.p ? src.p : "", src.len) : NULL;
    if (copy)
        *t = (struct gotmpl){ .a = a, .lang = lang, .name = vg_arena_strndup(a, name, strlen(name)) };
    if (!copy || !t->name) {
        vg_arena_free(a);
        vg_err_set(err, VG_ENOMEM, "template: out of memory");
        return NULL;
    }
    struct parser p = { .t = t, .err = err, .src = copy, .len = src.len, .line_no = 1 };
    enum stop st = S_EOF;
    int rc = parse_list(&p, &t->root, &st);
    if (!rc && st != S_EOF)
        rc = perr(&p, p.a, "unexpected {{%s}}", st == S_END ? "end" : "else");
    if (rc) {
        gotmpl_free(t);
        return NULL;
    }
    return t;
}

void gotmpl_free(struct gotmpl *t)
{
    if (!t)
        return;
    for (struct prepared *r = t->prepared; r; r = r->next)
        if (r->release)
            r->release(r->state);
    vg_arena_free(t->a);
}

bool gotmpl_is_text(const struct gotmpl *t)
{
    for (const struct node *n = t->root; n; n = n->next)
        if (n->k != N_TEXT)
            return false;
    return true;
}

/* ---- execution ---- */

struct gotmpl_exec {
    const struct gotmpl *t;
    void *data;
    struct vg_arena *a;
    struct vg_err *err;
    unsigned line;
    struct { struct vg_str name; struct gotmpl_val v; } vars[MAX_VARS];
    size_t nvars;
    struct gotmpl_val dot;
    long iterations;      /* range iterations so far */
};

enum { BRK = 1, CONT = 2 }; /* exec_list's results for {{break}} and {{continue}} */

/* "template: NAME:LINE: executing \"NAME\" at <at>: " + pre + the formatted message. */
static int vxerr(struct gotmpl_exec *x, struct vg_str at, const char *pre, const char *fmt,
                 va_list ap)
{
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return vg_err_set(x->err, VG_EINVAL, "template: %s:%u: executing \"%s\" at <%.*s>: %s%s",
                      x->t->name, x->line, x->t->name, (int)at.len, at.p, pre, msg);
}

__attribute__((format(printf, 3, 4))) static int xerr(struct gotmpl_exec *x, struct vg_str at,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vxerr(x, at, "", fmt, ap);
    va_end(ap);
    return rc;
}

int gotmpl_fail(struct gotmpl_call *c, const char *fmt, ...)
{
    char pre[80];
    snprintf(pre, sizeof pre, "error calling %s: ", c->fn->name);
    va_list ap;
    va_start(ap, fmt);
    int rc = vxerr(c->x, vg_str_c(c->fn->name), pre, fmt, ap);
    va_end(ap);
    return rc;
}

int gotmpl_oom(struct gotmpl_call *c)
{
    return vg_err_set(c->x->err, VG_ENOMEM, "template: out of memory");
}

int gotmpl_want_str(struct gotmpl_call *c, const struct gotmpl_val *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].k != GOTMPL_STR)
            return gotmpl_fail(c, "wrong type for value; expected string; got %s",
                               gotmpl_kind_name(a[i].k));
    return 0;
}

int gotmpl_buf_val(struct gotmpl_call *c, struct vg_buf *b, struct gotmpl_val *out)
{
    char *s = vg_buf_failed(b) ? NULL : vg_arena_alloc(c->arena, b->len ? b->len : 1);
    if (s && b->len)
        memcpy(s, b->p, b->len);
    *out = gotmpl_str(s, b->len);
    vg_buf_free(b);
    return s ? 0 : gotmpl_oom(c);
}

static int field(struct gotmpl_exec *x, struct gotmpl_val *v, struct vg_str name)
{
    if (v->k == GOTMPL_LIST && v->keys) { /* map[string]interface{}: nil when missing */
        struct gotmpl_val r = { .k = GOTMPL_NIL };
        for (size_t i = 0; i < v->n; i++)
            if (vg_str_eq(v->keys[i], name))
                r = v->items[i];
        *v = r;
        return 0;
    }
    if (v->k == GOTMPL_SAMPLE && (vg_str_eq_c(name, "Labels") || vg_str_eq_c(name, "Value"))) {
        if (name.p[0] == 'L')
            *v = (struct gotmpl_val){ .k = GOTMPL_MAP, .ls = v->ls, .n = v->n };
        else
            *v = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = v->f };
        return 0;
    }
    struct gotmpl_val r = gotmpl_str("", 0); /* a missing label: missingkey=zero */
    for (size_t i = 0; v->k == GOTMPL_MAP && i < v->n; i++)
        if (vg_str_eq(v->ls[i].name, name))
            r = gotmpl_str(v->ls[i].value.p, v->ls[i].value.len);
    if (v->k == GOTMPL_MAP ||
        (v->k == GOTMPL_DATA && x->t->lang->field && x->t->lang->field(x->data, name, &r))) {
        *v = r;
        return 0;
    }
    return xerr(x, name, "can't evaluate field %.*s in type %s", (int)name.len, name.p,
                gotmpl_kind_name(v->k));
}

static int apply_chain(struct gotmpl_exec *x, const struct arg *a, struct gotmpl_val *v)
{
    for (size_t i = 0; i < a->nfields; i++)
        if (field(x, v, a->fields[i]) < 0)
            return x->err->code;
    return 0;
}

static int lookup_var(struct gotmpl_exec *x, struct vg_str name, struct gotmpl_val *out)
{
    for (size_t i = x->nvars; i > 0; i--)
        if (vg_str_eq(x->vars[i - 1].name, name)) {
            *out = x->vars[i - 1].v;
            return 0;
        }
    *out = (struct gotmpl_val){ .k = GOTMPL_DATA };
    for (size_t i = 0; name.len && i < x->t->lang->nvars; i++)
        if (vg_str_eq_c(name, x->t->lang->vars[i][0]))
            return field(x, out, vg_str_c(x->t->lang->vars[i][1]));
    return 0;
}

static int call(struct gotmpl_exec *x, const struct gotmpl_func *f, void *state,
                struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    if ((int)n < f->min || (f->max >= 0 && (int)n > f->max))
        return xerr(x, vg_str_c(f->name), "wrong number of args for %s: want %d got %zu",
                    f->name, f->min, n);
    struct gotmpl_call c = { f, x->data, state, x->a, x };
    *out = (struct gotmpl_val){ .k = GOTMPL_NIL };
    return f->fn(&c, a, n, out);
}

static int eval_pipe(struct gotmpl_exec *x, const struct pipe *p, struct gotmpl_val *out);

static int eval_arg(struct gotmpl_exec *x, const struct arg *a, struct gotmpl_val *out)
{
    int rc = 0;
    switch (a->k) {
    case A_FUNC: return call(x, a->fn, NULL, NULL, 0, out);
    case A_FIELD: *out = x->dot; break;
    case A_VAR: rc = lookup_var(x, a->name, out); break;
    case A_LIT: *out = a->v; break;
    case A_PIPE: rc = eval_pipe(x, a->pipe, out); break;
    }
    return rc < 0 ? rc : apply_chain(x, a, out);
}

static int eval_pipe(struct gotmpl_exec *x, const struct pipe *p, struct gotmpl_val *out)
{
    struct gotmpl_val v = { .k = GOTMPL_NIL };
    for (const struct cmd *c = p->cmds; c; c = c->next) {
        int rc;
        if (c->args->k != A_FUNC) {
            if ((rc = eval_arg(x, c->args, &v)) < 0)
                return rc;
            continue;
        }
        struct gotmpl_val args[MAX_ARGS + 1];
        size_t n = 0;
        for (const struct arg *a = c->args->next; a; a = a->next)
            if ((rc = eval_arg(x, a, &args[n++])) < 0)
                return rc;
        if (c != p->cmds)
            args[n++] = v;
        if ((rc = call(x, c->args->fn, c->state, args, n, &v)) < 0)
            return rc;
    }
    if (p->decl.p && !p->range) {
        size_t i = x->nvars;
        while (p->redefine && i > 0 && !vg_str_eq(x->vars[i - 1].name, p->decl))
            i--;
        if (p->redefine && i > 0)
            x->vars[i - 1].v = v;
        else if (x->nvars < MAX_VARS)
            x->vars[x->nvars].name = p->decl, x->vars[x->nvars++].v = v;
    }
    *out = v;
    return 0;
}

static int exec_list(struct gotmpl_exec *x, const struct node *n, struct vg_buf *out);

static void push_var(struct gotmpl_exec *x, struct vg_str name, struct gotmpl_val v)
{
    if (x->nvars < MAX_VARS)
        x->vars[x->nvars].name = name, x->vars[x->nvars++].v = v;
}

/* Go's walkRange over a list (index or key, element) or a label map (name, value). */
static int exec_range(struct gotmpl_exec *x, const struct node *n, const struct gotmpl_val *v,
                      struct vg_buf *out)
{
    if (v->k != GOTMPL_LIST && v->k != GOTMPL_MAP && v->k != GOTMPL_NIL) {
        struct vg_buf b;
        vg_buf_init(&b);
        put_val(&b, v, true);
        const char *s = vg_buf_cstr(&b);
        int rc = xerr(x, VG_STR("range"), "range can't iterate over %s", s ? s : "value");
        vg_buf_free(&b);
        return rc;
    }
    size_t cnt = v->k == GOTMPL_NIL ? 0 : v->n, base = x->nvars;
    if (!cnt)
        return exec_list(x, n->els, out);
    for (size_t i = 0; i < cnt; i++) {
        if (++x->iterations > GOTMPL_MAX_ITERATIONS)
            return xerr(x, VG_STR("range"), "more than %d range iterations",
                        GOTMPL_MAX_ITERATIONS);
        struct gotmpl_val key, el;
        if (v->k == GOTMPL_MAP) {
            key = gotmpl_str(v->ls[i].name.p, v->ls[i].name.len);
            el = gotmpl_str(v->ls[i].value.p, v->ls[i].value.len);
        } else {
            el = v->items[i];
            key = v->keys ? gotmpl_str(v->keys[i].p, v->keys[i].len)
                          : (struct gotmpl_val){ .k = GOTMPL_INT, .i = (int64_t)i };
        }
        x->nvars = base;
        if (n->pipe->decl2.p) {
            push_var(x, n->pipe->decl, key);
            push_var(x, n->pipe->decl2, el);
        } else if (n->pipe->decl.p) {
            push_var(x, n->pipe->decl, el);
        }
        x->dot = el;
        int rc = exec_list(x, n->then, out);
        if (rc < 0)
            return rc;
        if (rc == BRK)
            break;
    }
    return 0;
}

static int exec_list(struct gotmpl_exec *x, const struct node *n, struct vg_buf *out)
{
    for (; n; n = n->next) {
        x->line = n->line;
        if (n->k == N_TEXT) {
            vg_buf_append(out, n->text.p, n->text.len);
            continue;
        }
        if (n->k == N_BREAK || n->k == N_CONTINUE)
            return n->k == N_BREAK ? BRK : CONT;
        struct gotmpl_val v, dot = x->dot;
        size_t vars = x->nvars;
        int rc = eval_pipe(x, n->pipe, &v);
        if (rc < 0)
            return rc;
        if (n->k == N_ACTION) {
            if (!n->pipe->decl.p)
                put_val(out, &v, false);
            continue;
        }
        bool t = gotmpl_truth(&v);
        if (t && n->k == N_WITH)
            x->dot = v;
        if (n->k == N_RANGE)
            rc = exec_range(x, n, &v, out);
        else
            rc = exec_list(x, t ? n->then : n->els, out);
        x->dot = dot;
        x->nvars = vars;
        if (rc) /* an error, or break / continue for the range around */
            return rc;
    }
    return 0;
}

int gotmpl_exec(const struct gotmpl *t, void *data, struct vg_arena *arena, struct vg_buf *out,
                struct vg_err *err)
{
    struct gotmpl_exec x = { .t = t, .data = data, .a = arena, .err = err,
                             .dot = { .k = GOTMPL_DATA } };
    int rc = exec_list(&x, t->root, out);
    if (!rc && vg_buf_failed(out))
        rc = vg_err_set(err, VG_ENOMEM, "template: out of memory");
    return rc;
}

/* ---- builtins ---- */

static bool numeric(const struct gotmpl_val *v)
{
    return v->k == GOTMPL_INT || v->k == GOTMPL_FLOAT;
}

/* Compares for eq/ne (order false) and lt/le/gt/ge: *r is <0, 0, >0. */
static int compare(struct gotmpl_call *c, const struct gotmpl_val *a, const struct gotmpl_val *b,
                   bool order, int *r)
{
    bool loose = c->x->t->lang->flags & GOTMPL_LOOSE_NUMBERS;
    if (a->k != b->k && !(loose && numeric(a) && numeric(b)))
        return gotmpl_fail(c, "incompatible types for comparison");
    if (a->k != b->k || a->k == GOTMPL_FLOAT) {
        double x = a->k == GOTMPL_INT ? (double)a->i : a->f, y = b->k == GOTMPL_INT ? (double)b->i : b->f;
        *r = (x > y) - (x < y);
    } else if (a->k == GOTMPL_STR) {
        *r = vg_str_cmp(a->s, b->s);
    } else if (a->k == GOTMPL_INT || a->k == GOTMPL_TIME) {
        *r = (a->i > b->i) - (a->i < b->i);
    } else if (!order && (a->k == GOTMPL_BOOL || a->k == GOTMPL_NIL)) {
        *r = a->k == GOTMPL_BOOL && a->b != b->b;
    } else {
        return gotmpl_fail(c, "invalid type for comparison");
    }
    return 0;
}

static int f_compare(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    const char *nm = c->fn->name;
    bool eq = !strcmp(nm, "eq"), ne = !strcmp(nm, "ne");
    int r = 1;
    for (size_t i = 1; i < n && r; i++)
        if (compare(c, &a[0], &a[i], !eq && !ne, &r) < 0)
            return c->x->err->code;
    bool res = eq ? r == 0 : ne ? r != 0 : nm[0] == 'l' ? (nm[1] == 't' ? r < 0 : r <= 0)
                                                        : (nm[1] == 't' ? r > 0 : r >= 0);
    *out = (struct gotmpl_val){ .k = GOTMPL_BOOL, .b = res };
    return 0;
}

/* and: the first false argument, or the last; or: the first true one, or the last. */
static int f_logic(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    if (c->fn->name[0] == 'n') {
        *out = (struct gotmpl_val){ .k = GOTMPL_BOOL, .b = !gotmpl_truth(&a[0]) };
        return 0;
    }
    bool want = c->fn->name[0] == 'o';
    size_t i = 0;
    while (i + 1 < n && gotmpl_truth(&a[i]) != want)
        i++;
    *out = a[i];
    return 0;
}

static int f_len(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    (void)n;
    if (a[0].k != GOTMPL_STR && a[0].k != GOTMPL_MAP && a[0].k != GOTMPL_LIST)
        return gotmpl_fail(c, "len of type %s", gotmpl_kind_name(a[0].k));
    *out = (struct gotmpl_val){ .k = GOTMPL_INT,
                                .i = (int64_t)(a[0].k == GOTMPL_STR ? a[0].s.len : a[0].n) };
    return 0;
}

static int f_index(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    (void)n;
    if (a[0].k == GOTMPL_LIST && !a[0].keys) {
        if (a[1].k != GOTMPL_INT)
            return gotmpl_fail(c, "cannot index slice/array with type %s",
                               gotmpl_kind_name(a[1].k));
        if (a[1].i < 0 || (uint64_t)a[1].i >= a[0].n)
            return gotmpl_fail(c, "index out of range: %" PRId64, a[1].i);
        *out = a[0].items[a[1].i];
        return 0;
    }
    if (a[0].k != GOTMPL_MAP && a[0].k != GOTMPL_LIST)
        return gotmpl_fail(c, "can't index item of type %s", gotmpl_kind_name(a[0].k));
    if (gotmpl_want_str(c, &a[1], 1) < 0)
        return c->x->err->code;
    *out = a[0];
    return field(c->x, out, a[1].s);
}

/* print: spaces between operands when neither is a string; println: always, and '\n'. */
static int f_print(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    bool ln = c->fn->arg;
    struct vg_buf b;
    vg_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        if (i && (ln || (a[i - 1].k != GOTMPL_STR && a[i].k != GOTMPL_STR)))
            vg_buf_putc(&b, ' ');
        put_val(&b, &a[i], true);
    }
    if (ln)
        vg_buf_putc(&b, '\n');
    return gotmpl_buf_val(c, &b, out);
}

/* Go's %q for a string: strconv.Quote's escapes for the common cases. */
static void put_quoted(struct vg_buf *b, struct vg_str s)
{
    vg_buf_putc(b, '"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        const char *e = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n"
                      : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : NULL;
        if (e)
            vg_buf_puts(b, e);
        else if (ch < 0x20 || ch == 0x7f)
            vg_buf_printf(b, "\\x%02x", ch);
        else
            vg_buf_putc(b, (char)ch);
    }
    vg_buf_putc(b, '"');
}

/* Pads what was appended to b since mark to width (on the right with '-'). */
static void pad(struct vg_buf *b, size_t mark, int width, bool left, bool zero)
{
    size_t have = b->len - mark;
    if (width <= 0 || have >= (size_t)width || vg_buf_failed(b))
        return;
    size_t add = (size_t)width - have;
    if (left) {
        for (size_t i = 0; i < add; i++)
            vg_buf_putc(b, ' ');
    } else if (vg_buf_reserve(b, add)) {
        memmove(b->p + mark + add, b->p + mark, have);
        memset(b->p + mark, zero ? '0' : ' ', add);
        b->len += add;
    }
}

/* One verb with its flags, width and precision (-1: none). */
static void format_one(struct vg_buf *b, const char *flags, int width, int prec, char verb,
                       struct gotmpl_val v, bool loose)
{
    bool left = strchr(flags, '-') != NULL, zero = strchr(flags, '0') != NULL && !left;
    size_t mark = b->len;
    char spec[32], tmp[MAX_PAD + 512]; /* the widest clamped number */
    if (loose && v.k == GOTMPL_FLOAT && in_set("dxXoc", verb) && fabs(v.f) < 9.2e18)
        v = (struct gotmpl_val){ .k = GOTMPL_INT, .i = (int64_t)v.f };
    else if (loose && v.k == GOTMPL_INT && in_set("fFeEgG", verb))
        v = (struct gotmpl_val){ .k = GOTMPL_FLOAT, .f = (double)v.i };
    verb = loose && verb == 's' ? 'v' : verb;
    if (verb == 'v' || ((verb == 's' || verb == 'q') && v.k == GOTMPL_STR)) {
        if (v.k == GOTMPL_STR && verb == 'q')
            put_quoted(b, v.s);
        else if (v.k == GOTMPL_STR)
            vg_buf_append(b, v.s.p, prec >= 0 && (size_t)prec < v.s.len ? (size_t)prec : v.s.len);
        else if (v.k == GOTMPL_FLOAT && prec >= 0 && isfinite(v.f))
            vg_buf_printf(b, "%.*g", prec, v.f);
        else
            put_val(b, &v, true);
        pad(b, mark, width, left, zero && v.k != GOTMPL_STR);
    } else if (verb == 't' && v.k == GOTMPL_BOOL) {
        vg_buf_puts(b, v.b ? "true" : "false");
        pad(b, mark, width, left, false);
    } else if (verb == 'c' && v.k == GOTMPL_INT) {
        vg_buf_putc(b, v.i >= 0 && v.i < 0x80 ? (char)v.i : '?');
        pad(b, mark, width, left, false);
    } else if (in_set("dxXo", verb) && v.k == GOTMPL_INT) {
        snprintf(spec, sizeof spec, prec < 0 ? "%%%s*ll%c" : "%%%s*.*ll%c", flags, verb);
        if (prec < 0)
            snprintf(tmp, sizeof tmp, spec, width, (long long)v.i);
        else /* C ignores the 0 flag when a precision is given, as Go does */
            snprintf(tmp, sizeof tmp, spec, width, prec, (long long)v.i);
        vg_buf_puts(b, tmp);
    } else if (in_set("xX", verb) && v.k == GOTMPL_STR) {
        for (size_t i = 0; i < v.s.len; i++)
            vg_buf_printf(b, verb == 'x' ? "%02x" : "%02X", (unsigned char)v.s.p[i]);
        pad(b, mark, width, left, false);
    } else if (in_set("fFeEgG", verb) && v.k == GOTMPL_FLOAT) {
        if (!isfinite(v.f) || ((verb == 'g' || verb == 'G') && prec < 0)) {
            put_val(b, &v, true); /* Go: NaN, +Inf, -Inf; %g: shortest representation */
            pad(b, mark, width, left, zero && isfinite(v.f));
            return;
        }
        snprintf(spec, sizeof spec, "%%%s*.*%c", flags, verb);
        snprintf(tmp, sizeof tmp, spec, width, prec < 0 ? 6 : prec, v.f);
        vg_buf_puts(b, tmp);
    } else {
        vg_buf_printf(b, "%%!%c(", verb);
        if (v.k != GOTMPL_NIL)
            vg_buf_printf(b, "%s=", gotmpl_kind_name(v.k));
        put_val(b, &v, true);
        vg_buf_putc(b, ')');
    }
}

static int f_printf(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, 1) < 0)
        return c->x->err->code;
    bool loose = c->x->t->lang->flags & GOTMPL_LOOSE_NUMBERS;
    struct vg_str f = a[0].s;
    struct vg_buf b;
    vg_buf_init(&b);
    size_t next_arg = 1;
    for (size_t i = 0; i < f.len; i++) {
        if (f.p[i] != '%') {
            vg_buf_putc(&b, f.p[i]);
            continue;
        }
        char flags[8];
        size_t fl = 0;
        while (++i < f.len && in_set("-+# 0", f.p[i]))
            if (fl < sizeof flags - 1)
                flags[fl++] = f.p[i];
        flags[fl] = 0;
        int width = 0, prec = -1;
        for (; i < f.len && f.p[i] >= '0' && f.p[i] <= '9'; i++)
            width = width * 10 + (f.p[i] - '0') > MAX_PAD ? MAX_PAD : width * 10 + (f.p[i] - '0');
        if (i < f.len && f.p[i] == '.')
            for (prec = 0; ++i < f.len && f.p[i] >= '0' && f.p[i] <= '9';)
                prec = prec * 10 + (f.p[i] - '0') > MAX_PAD ? MAX_PAD : prec * 10 + (f.p[i] - '0');
        if (i >= f.len) {
            vg_buf_puts(&b, "%!(NOVERB)");
            break;
        }
        if (f.p[i] == '%')
            vg_buf_putc(&b, '%');
        else if (next_arg >= n)
            vg_buf_printf(&b, "%%!%c(MISSING)", f.p[i]);
        else
            format_one(&b, flags, width, prec, f.p[i], a[next_arg++], loose);
    }
    if (next_arg < n) {
        vg_buf_puts(&b, "%!(EXTRA ");
        for (size_t k = next_arg; k < n; k++) {
            vg_buf_printf(&b, "%s%s=", k > next_arg ? ", " : "", gotmpl_kind_name(a[k].k));
            put_val(&b, &a[k], true);
        }
        vg_buf_putc(&b, ')');
    }
    return gotmpl_buf_val(c, &b, out);
}


/* ---- functions the languages share ---- */

int gotmpl_fn_case(struct gotmpl_call *c, struct gotmpl_val *a, size_t n, struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, n) < 0)
        return c->x->err->code;
    char *s = vg_arena_alloc(c->arena, a[0].s.len ? a[0].s.len : 1);
    if (!s)
        return gotmpl_oom(c);
    int mode = c->fn->arg;
    bool sep = true; /* at a word start (title) */
    for (size_t i = 0; i < a[0].s.len; i++) {
        char ch = a[0].s.p[i];
        bool lower = ch >= 'a' && ch <= 'z', upper = ch >= 'A' && ch <= 'Z';
        if ((mode == GOTMPL_UPPER || (mode >= GOTMPL_TITLE && sep)) && lower)
            ch = (char)(ch - 32);
        else if (mode == GOTMPL_LOWER && upper)
            ch = (char)(ch + 32);
        sep = !(lower || upper || (ch >= '0' && ch <= '9') || ch == '_' || (ch & 0x80) ||
                (mode == GOTMPL_TITLE_APOS && ch == '\''));
        s[i] = ch;
    }
    *out = gotmpl_str(s, a[0].s.len);
    return 0;
}

int gotmpl_regex_prepare(struct vg_str literal, void **state, struct vg_err *err)
{
    struct vg_err e;
    if ((*state = matcher_regex_new(literal, &e)) != NULL)
        return 0;
    if (e.code == VG_ENOMEM)
        return vg_err_set(err, VG_ENOMEM, "template: out of memory");
    return vg_err_set(err, VG_EINVAL, "error parsing regexp: %s", e.msg);
}

void gotmpl_regex_release(void *state)
{
    matcher_regex_free(state);
}

int gotmpl_fn_replace_all(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                          struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, n) < 0)
        return c->x->err->code;
    bool second = c->fn->arg & GOTMPL_RE_REPL_2ND;
    void *own = NULL;
    const struct matcher_regex *re = c->state;
    if (!re) {
        struct vg_err e;
        int rc = gotmpl_regex_prepare(a[0].s, &own, &e);
        if (rc < 0)
            return rc == VG_ENOMEM ? gotmpl_oom(c) : gotmpl_fail(c, "%s", e.msg);
        re = own;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    matcher_regex_replace_all(re, a[second ? 2 : 1].s, a[second ? 1 : 2].s,
                              c->fn->arg & GOTMPL_RE_LITERAL, &b);
    matcher_regex_free(own);
    return gotmpl_buf_val(c, &b, out);
}
