/* rule_template: see template.h.
 *
 * A template is parsed once into a tree in its own arena: text nodes, actions
 * (pipelines to print or to assign to a variable), and if/with nodes with a body and an
 * else body ("else if" nests an if node in the else body). A pipeline is a list of
 * commands joined by '|'; a command is a function name with arguments, or one operand
 * (literal, variable with field chain, .Field chain, parenthesised pipeline). Expansion
 * walks the tree with a per-call arena for the strings functions produce.
 *
 * Error wording follows Go's text/template where users see it (promtool and the rules
 * API show it): "template: NAME:LINE: function \"foo\" not defined",
 * "template: NAME:LINE: unexpected EOF", "template: NAME:LINE: executing \"NAME\" at
 * <humanize>: error calling humanize: ...". */
#include "rule_template.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_time.h"
#include "../config.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64   /* nesting of if/with and parentheses */
#define MAX_VARS 64    /* variables in scope at once */

/* ---- tree ---- */

enum targ_kind { TA_FUNC, TA_FIELD, TA_VAR, TA_STR, TA_NUM, TA_BOOL, TA_NIL, TA_PIPE };

struct tpipe;

struct targ {
    enum targ_kind kind;
    const char *name;    /* TA_FUNC: function; TA_VAR: variable without '$' ("" for $) */
    const char **fields; /* TA_FIELD, TA_VAR, TA_PIPE: field chain */
    size_t nfields;
    const char *s;       /* TA_STR */
    size_t slen;
    double num;          /* TA_NUM */
    bool is_int;         /* TA_NUM written without '.', exponent or inf */
    bool b;              /* TA_BOOL */
    struct tpipe *pipe;  /* TA_PIPE */
};

struct tcmd {
    struct targ *args;
    size_t n;
};

struct tpipe {
    const char *decl; /* variable assigned, or NULL */
    bool redefine;    /* '=' rather than ':=' */
    struct tcmd *cmds;
    size_t n;
};

enum tnode_kind { TN_TEXT, TN_ACTION, TN_IF, TN_WITH };

struct tnode;
struct tlist {
    struct tnode **v;
    size_t n, cap;
};

struct tnode {
    enum tnode_kind kind;
    unsigned line;
    const char *text; /* TN_TEXT */
    size_t len;
    struct tpipe *pipe;
    struct tlist body, other; /* TN_IF / TN_WITH: then and else */
};

struct rule_template {
    struct vg_arena *arena;
    const char *name;
    struct tlist root;
};

/* ---- values ---- */

enum tv_kind { TV_NIL, TV_STR, TV_FLOAT, TV_INT, TV_BOOL, TV_MAP, TV_DATA };

struct tval {
    enum tv_kind kind;
    const char *s;
    size_t len;
    double f;
    int64_t i;
    bool b;
    const struct label *ls;
    size_t n;
};

static const char *kind_name(enum tv_kind k)
{
    static const char *const names[] = { "nil", "string", "float64", "int", "bool",
                                         "map[string]string", "template.Data" };
    return names[k];
}

/* ---- parser ---- */

enum tok { T_EOF, T_IDENT, T_FIELD, T_VAR, T_STR, T_NUM, T_LP, T_RP, T_PIPE, T_DECL,
           T_ASSIGN, T_DOT, T_BAD };

struct parser {
    struct rule_template *t;
    struct vg_err *err;
    const char *src;     /* whole template */
    size_t len, pos;     /* position in src (text scanning) */
    unsigned line;
    /* the current action's contents */
    const char *a;
    size_t alen, apos;
    bool trim_next;      /* the previous action ended with -}} */
    const char *vars[MAX_VARS];
    size_t nvars;
    int depth;
    /* current token */
    enum tok tk;
    const char *tp;
    size_t tlen;
};

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vg_err_set(p->err, VG_EINVAL, "template: %s:%u: %s", p->t->name, p->line, msg);
}

static int poom(struct parser *p)
{
    return vg_err_set(p->err, VG_ENOMEM, "out of memory");
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* Reads the next token of the action into p->tk. */
static void next(struct parser *p)
{
    while (p->apos < p->alen && isspace((unsigned char)p->a[p->apos])) {
        if (p->a[p->apos] == '\n')
            p->line++;
        p->apos++;
    }
    p->tp = p->a + p->apos;
    p->tlen = 0;
    if (p->apos >= p->alen) {
        p->tk = T_EOF;
        return;
    }
    const char *s = p->a + p->apos;
    size_t rem = p->alen - p->apos, n = 1;
    char c = s[0];
    if (c == '(') p->tk = T_LP;
    else if (c == ')') p->tk = T_RP;
    else if (c == '|') p->tk = T_PIPE;
    else if (c == '=') p->tk = T_ASSIGN;
    else if (c == ':' && rem > 1 && s[1] == '=') { p->tk = T_DECL; n = 2; }
    else if (c == '"' || c == '`') {
        p->tk = T_BAD;
        for (; n < rem; n++) {
            if (c == '"' && s[n] == '\\' && n + 1 < rem) { n++; continue; }
            if (s[n] == c) { n++; p->tk = T_STR; break; }
            if (c == '"' && s[n] == '\n')
                break;
        }
    } else if (c == '$' || c == '.') {
        /* $name, $, .Field, . and chains of .Field after either */
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
    } else if (isdigit((unsigned char)c) || ((c == '-' || c == '+') && rem > 1 &&
                                             (isdigit((unsigned char)s[1]) || s[1] == '.'))) {
        p->tk = T_NUM;
        while (n < rem && (isalnum((unsigned char)s[n]) || s[n] == '.' || s[n] == '_' ||
                           ((s[n] == '-' || s[n] == '+') && (s[n - 1] == 'e' || s[n - 1] == 'E'))))
            n++;
    } else if (isalpha((unsigned char)c) || c == '_') {
        p->tk = T_IDENT;
        while (n < rem && ident_char(s[n]))
            n++;
    } else {
        p->tk = T_BAD;
    }
    p->tlen = n;
    p->apos += n;
}

static bool tok_is(const struct parser *p, const char *word)
{
    return p->tk == T_IDENT && p->tlen == strlen(word) && !memcmp(p->tp, word, p->tlen);
}

static char *pdup(struct parser *p, const char *s, size_t n)
{
    return vg_arena_strndup(p->t->arena, s, n);
}

/* Splits "a.b.c" (after the leading '$' or '.') into the arena. */
static int split_chain(struct parser *p, const char *s, size_t n, struct targ *a, bool var)
{
    size_t nf = 0;
    for (size_t i = 0; i < n; i++)
        nf += s[i] == '.';
    a->fields = vg_arena_calloc(p->t->arena, (nf + 1) * sizeof *a->fields);
    if (!a->fields)
        return poom(p);
    size_t i = 0;
    if (var) {
        while (i < n && s[i] != '.')
            i++;
        if (!(a->name = pdup(p, s, i)))
            return poom(p);
    }
    while (i < n) {
        size_t st = ++i; /* skip '.' */
        while (i < n && s[i] != '.')
            i++;
        if (!(a->fields[a->nfields++] = pdup(p, s + st, i - st)))
            return poom(p);
    }
    return 0;
}

/* Go string literal to bytes (escapes \n \t \\ \" \' \xHH \uHHHH are enough here). */
static int unquote(struct parser *p, const char *s, size_t n, struct targ *a)
{
    char *out = vg_arena_alloc(p->t->arena, n + 1);
    if (!out)
        return poom(p);
    size_t k = 0;
    if (s[0] == '`') {
        memcpy(out, s + 1, n - 2);
        k = n - 2;
    } else {
        for (size_t i = 1; i + 1 < n; i++) {
            if (s[i] != '\\') {
                out[k++] = s[i];
                continue;
            }
            char e = s[++i];
            switch (e) {
            case 'n': out[k++] = '\n'; break;
            case 't': out[k++] = '\t'; break;
            case 'r': out[k++] = '\r'; break;
            case '\\': case '"': case '\'': out[k++] = e; break;
            case 'x':
                if (i + 2 < n - 1 && isxdigit((unsigned char)s[i + 1]) &&
                    isxdigit((unsigned char)s[i + 2])) {
                    char h[3] = { s[i + 1], s[i + 2], 0 };
                    out[k++] = (char)strtol(h, NULL, 16);
                    i += 2;
                    break;
                }
                return perr(p, "invalid syntax: %.*s", (int)n, s);
            default:
                return perr(p, "invalid syntax: %.*s", (int)n, s);
            }
        }
    }
    out[k] = '\0';
    a->s = out;
    a->slen = k;
    return 0;
}

static bool func_known(const char *name, size_t n);
static int parse_pipe(struct parser *p, bool decl_ok, enum tok end, struct tpipe **out);

static bool var_known(const struct parser *p, const char *name)
{
    static const char *const pre[] = { "", "labels", "value", "externalLabels", "externalURL" };
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (!strcmp(pre[i], name))
            return true;
    for (size_t i = 0; i < p->nvars; i++)
        if (!strcmp(p->vars[i], name))
            return true;
    return false;
}

/* One operand (or function name) at the current token, which it consumes. */
static int parse_arg(struct parser *p, struct targ *a, bool first)
{
    memset(a, 0, sizeof *a);
    const char *s = p->tp;
    size_t n = p->tlen;
    switch (p->tk) {
    case T_IDENT:
        if (tok_is(p, "true") || tok_is(p, "false")) {
            a->kind = TA_BOOL;
            a->b = tok_is(p, "true");
        } else if (tok_is(p, "nil")) {
            a->kind = TA_NIL;
        } else {
            if (!func_known(s, n))
                return perr(p, "function \"%.*s\" not defined", (int)n, s);
            a->kind = TA_FUNC;
            if (!(a->name = pdup(p, s, n)))
                return poom(p);
            (void)first;
        }
        break;
    case T_DOT:
        a->kind = TA_FIELD;
        break;
    case T_FIELD:
        a->kind = TA_FIELD;
        if (split_chain(p, s, n, a, false) < 0)
            return p->err->code;
        break;
    case T_VAR: {
        a->kind = TA_VAR;
        if (split_chain(p, s + 1, n - 1, a, true) < 0)
            return p->err->code;
        if (!var_known(p, a->name))
            return perr(p, "undefined variable \"$%s\"", a->name);
        break;
    }
    case T_STR:
        a->kind = TA_STR;
        if (unquote(p, s, n, a) < 0)
            return p->err->code;
        break;
    case T_NUM: {
        char buf[64];
        if (n >= sizeof buf)
            return perr(p, "bad number syntax: \"%.*s\"", (int)n, s);
        memcpy(buf, s, n);
        buf[n] = '\0';
        char *end;
        errno = 0;
        a->kind = TA_NUM;
        a->is_int = !strpbrk(buf, ".eEpP") || (strstr(buf, "0x") && !strpbrk(buf, ".pP"));
        if (a->is_int) {
            long long v = strtoll(buf, &end, 0);
            a->num = (double)v;
        } else {
            a->num = strtod(buf, &end);
        }
        if (*end || errno)
            return perr(p, "bad number syntax: \"%s\"", buf);
        break;
    }
    case T_LP: {
        if (++p->depth > MAX_DEPTH)
            return perr(p, "nesting deeper than %d", MAX_DEPTH);
        next(p);
        a->kind = TA_PIPE;
        if (parse_pipe(p, false, T_RP, &a->pipe) < 0)
            return p->err->code;
        p->depth--;
        /* a field chain right after ')' applies to the pipeline's value */
        if (p->apos < p->alen && p->a[p->apos] == '.') {
            next(p);
            if (p->tk == T_FIELD && split_chain(p, p->tp, p->tlen, a, false) < 0)
                return p->err->code;
        }
        break;
    }
    case T_EOF:
        return perr(p, "missing value for command");
    default:
        return perr(p, "unexpected \"%.*s\" in operand", (int)(n ? n : 1), s);
    }
    next(p);
    return 0;
}

static int parse_cmd(struct parser *p, struct tcmd *c)
{
    struct targ args[16];
    size_t n = 0;
    while (p->tk != T_EOF && p->tk != T_PIPE && p->tk != T_RP) {
        if (n == sizeof args / sizeof args[0])
            return perr(p, "too many arguments");
        if (parse_arg(p, &args[n], n == 0) < 0)
            return p->err->code;
        n++;
    }
    if (n == 0)
        return perr(p, "missing value for command");
    for (size_t i = 1; i < n; i++)
        if (args[0].kind != TA_FUNC)
            return perr(p, "can't give argument to non-function %s",
                        args[0].kind == TA_VAR ? "variable" : "value");
    c->args = vg_arena_alloc(p->t->arena, n * sizeof *c->args);
    if (!c->args)
        return poom(p);
    memcpy(c->args, args, n * sizeof *args);
    c->n = n;
    return 0;
}

/* A pipeline up to end (T_EOF for a whole action, T_RP inside parentheses). */
static int parse_pipe(struct parser *p, bool decl_ok, enum tok end, struct tpipe **out)
{
    struct tpipe *pp = vg_arena_calloc(p->t->arena, sizeof *pp);
    if (!pp)
        return poom(p);
    /* $x := ... / $x = ... */
    if (decl_ok && p->tk == T_VAR) {
        size_t save = p->apos;
        const char *vs = p->tp;
        size_t vn = p->tlen;
        unsigned line = p->line;
        next(p);
        if (p->tk == T_DECL || p->tk == T_ASSIGN) {
            bool redefine = p->tk == T_ASSIGN;
            if (!(pp->decl = pdup(p, vs + 1, vn - 1)))
                return poom(p);
            pp->redefine = redefine;
            if (redefine && !var_known(p, pp->decl))
                return perr(p, "undefined variable \"$%s\"", pp->decl);
            next(p);
        } else {
            p->apos = save;
            p->line = line;
            p->tp = vs;
            p->tlen = vn;
            p->tk = T_VAR;
        }
    }
    struct tcmd cmds[16];
    size_t n = 0;
    for (;;) {
        if (n == sizeof cmds / sizeof cmds[0])
            return perr(p, "pipeline too long");
        if (parse_cmd(p, &cmds[n++]) < 0)
            return p->err->code;
        if (p->tk == T_PIPE) {
            next(p);
            continue;
        }
        break;
    }
    if (p->tk != end) {
        if (end == T_RP && p->tk == T_EOF)
            return perr(p, "unclosed left paren");
        return perr(p, "unexpected \"%.*s\" in %s", (int)(p->tlen ? p->tlen : 1), p->tp,
                    end == T_RP ? "parenthesized pipeline" : "command");
    }
    pp->cmds = vg_arena_alloc(p->t->arena, n * sizeof *pp->cmds);
    if (!pp->cmds)
        return poom(p);
    memcpy(pp->cmds, cmds, n * sizeof *cmds);
    pp->n = n;
    if (pp->decl && !pp->redefine && !var_known(p, pp->decl)) {
        if (p->nvars == MAX_VARS)
            return perr(p, "too many variables");
        p->vars[p->nvars++] = pp->decl;
    }
    *out = pp;
    return 0;
}

static int list_add(struct parser *p, struct tlist *l, struct tnode *n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct tnode **v = vg_arena_alloc(p->t->arena, cap * sizeof *v);
        if (!v)
            return poom(p);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
    return 0;
}

static struct tnode *new_node(struct parser *p, enum tnode_kind k)
{
    struct tnode *n = vg_arena_calloc(p->t->arena, sizeof *n);
    if (n) {
        n->kind = k;
        n->line = p->line;
    }
    return n;
}

/* Finds the next action: appends the text before it to l, sets p->a/alen to its
 * contents. Returns 1 when an action was found, 0 at the end of the template. */
static int next_action(struct parser *p, struct tlist *l)
{
    const char *s = p->src + p->pos;
    size_t rem = p->len - p->pos;
    const char *open = NULL;
    for (size_t i = 0; i + 1 < rem; i++)
        if (s[i] == '{' && s[i + 1] == '{') {
            open = s + i;
            break;
        }
    size_t tlen = open ? (size_t)(open - s) : rem;
    bool trim_left = open && open + 3 < p->src + p->len && open[2] == '-' &&
                     (open[3] == ' ' || open[3] == '\t' || open[3] == '\n' || open[3] == '\r');
    const char *ts = s;
    if (p->trim_next)
        while (tlen && isspace((unsigned char)*ts))
            ts++, tlen--;
    if (trim_left)
        while (tlen && isspace((unsigned char)ts[tlen - 1]))
            tlen--;
    if (tlen) {
        struct tnode *n = new_node(p, TN_TEXT);
        if (!n)
            return poom(p);
        n->text = ts;
        n->len = tlen;
        if (list_add(p, l, n) < 0)
            return p->err->code;
    }
    for (const char *c = s; c < (open ? open : s + rem); c++)
        p->line += *c == '\n';
    if (!open) {
        p->pos = p->len;
        return 0;
    }
    const char *body = open + 2 + (trim_left ? 2 : 0);
    const char *end = p->src + p->len;
    /* The action ends at the first "}}" outside a string or comment. */
    const char *q = body;
    char quote = 0;
    bool comment = false;
    while (q + 1 < end) {
        if (comment) {
            if (q[0] == '*' && q[1] == '/') { comment = false; q += 2; continue; }
        } else if (quote) {
            if (quote == '"' && q[0] == '\\') { q += 2; continue; }
            if (q[0] == quote) quote = 0;
        } else if (q[0] == '"' || q[0] == '`') {
            quote = q[0];
        } else if (q[0] == '/' && q[1] == '*') {
            comment = true;
            q += 2;
            continue;
        } else if (q[0] == '}' && q[1] == '}') {
            break;
        }
        q++;
    }
    if (q + 1 >= end)
        return perr(p, "unclosed action");
    const char *aend = q;
    p->trim_next = aend - body >= 2 && aend[-1] == '-' &&
                   (aend[-2] == ' ' || aend[-2] == '\t' || aend[-2] == '\n' || aend[-2] == '\r');
    if (p->trim_next)
        aend--;
    p->a = body;
    p->alen = (size_t)(aend - body);
    p->apos = 0;
    p->pos = (size_t)(q + 2 - p->src);
    return 1;
}

/* Parses actions into l until {{end}} or {{else}} (returned in *stop as "end"/"else")
 * or the end of the template (*stop NULL). */
static int parse_list(struct parser *p, struct tlist *l, const char **stop)
{
    *stop = NULL;
    for (;;) {
        unsigned line0 = p->line;
        int r = next_action(p, l);
        if (r <= 0)
            return r;
        /* a comment action: only the comment */
        size_t i = 0;
        while (i < p->alen && isspace((unsigned char)p->a[i]))
            i++;
        if (i + 1 < p->alen && p->a[i] == '/' && p->a[i + 1] == '*') {
            for (size_t k = 0; k < p->alen; k++)
                p->line += p->a[k] == '\n';
            continue;
        }
        (void)line0;
        unsigned line = p->line;
        next(p);
        if (tok_is(p, "end") || tok_is(p, "else")) {
            *stop = tok_is(p, "end") ? "end" : "else";
            return 0;
        }
        if (tok_is(p, "range") || tok_is(p, "define") || tok_is(p, "template") ||
            tok_is(p, "block") || tok_is(p, "break") || tok_is(p, "continue"))
            return perr(p, "%.*s is not supported in Vigil's rule templates", (int)p->tlen, p->tp);
        if (tok_is(p, "if") || tok_is(p, "with")) {
            if (++p->depth > MAX_DEPTH)
                return perr(p, "nesting deeper than %d", MAX_DEPTH);
            struct tnode *n = new_node(p, tok_is(p, "if") ? TN_IF : TN_WITH);
            if (!n)
                return poom(p);
            n->line = line;
            if (list_add(p, l, n) < 0)
                return p->err->code;
            size_t vars = p->nvars;
            for (;;) {
                next(p);
                if (parse_pipe(p, true, T_EOF, &n->pipe) < 0)
                    return p->err->code;
                const char *st;
                if (parse_list(p, &n->body, &st) < 0)
                    return p->err->code;
                if (!st)
                    return perr(p, "unexpected EOF");
                if (!strcmp(st, "end"))
                    break;
                /* else: plain, or "else if ..." which nests */
                next(p);
                if (tok_is(p, "if") && n->kind == TN_IF) {
                    struct tnode *in = new_node(p, TN_IF);
                    if (!in || list_add(p, &n->other, in) < 0)
                        return poom(p);
                    n = in;
                    continue;
                }
                if (p->tk != T_EOF)
                    return perr(p, "unexpected \"%.*s\" in else", (int)p->tlen, p->tp);
                if (parse_list(p, &n->other, &st) < 0)
                    return p->err->code;
                if (!st || strcmp(st, "end") != 0)
                    return perr(p, st ? "expected end; found {{else}}" : "unexpected EOF");
                break;
            }
            p->nvars = vars; /* variables end with their control structure */
            p->depth--;
            continue;
        }
        struct tnode *n = new_node(p, TN_ACTION);
        if (!n)
            return poom(p);
        n->line = line;
        if (p->tk == T_EOF)
            return perr(p, "missing value for command");
        if (parse_pipe(p, true, T_EOF, &n->pipe) < 0 || list_add(p, l, n) < 0)
            return p->err->code;
    }
}

struct rule_template *rule_template_parse(const char *name, const char *text, struct vg_err *err)
{
    struct vg_arena *a = vg_arena_new(1024);
    struct rule_template *t = a ? vg_arena_calloc(a, sizeof *t) : NULL;
    if (!t) {
        vg_arena_free(a);
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    t->arena = a;
    size_t len = strlen(text);
    t->name = vg_arena_strndup(a, name, strlen(name));
    char *src = vg_arena_strndup(a, text, len);
    if (!t->name || !src) {
        vg_arena_free(a);
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    struct parser p = { .t = t, .err = err, .src = src, .len = len, .line = 1 };
    const char *stop;
    if (parse_list(&p, &t->root, &stop) < 0 ||
        (stop && perr(&p, "unexpected {{%s}}", stop) < 0)) {
        vg_arena_free(a);
        return NULL;
    }
    return t;
}

void rule_template_free(struct rule_template *t)
{
    if (t)
        vg_arena_free(t->arena);
}

/* ---- number formatting ---- */

void rule_template_fmt_4g(struct vg_buf *out, double v)
{
    if (isnan(v))
        vg_buf_puts(out, "NaN");
    else if (isinf(v))
        vg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else
        vg_buf_printf(out, "%.4g", v);
}

/* ---- evaluation ---- */

struct ev {
    const struct rule_template *t;
    const struct rule_template_data *d;
    struct vg_arena *arena;
    struct vg_err *err;
    unsigned line;
    struct { const char *name; struct tval v; } vars[MAX_VARS];
    size_t nvars;
    struct tval dot;
};

static int eerr(struct ev *e, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int eerr(struct ev *e, const char *at, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vg_err_set(e->err, VG_EINVAL, "template: %s:%u: executing \"%s\" at <%s>: %s",
                      e->t->name, e->line, e->t->name, at, msg);
}

static struct tval vstr(const char *s, size_t n)
{
    return (struct tval){ .kind = TV_STR, .s = s, .len = n };
}

static struct tval vfloat(double f)
{
    return (struct tval){ .kind = TV_FLOAT, .f = f };
}

static struct tval vbool(bool b)
{
    return (struct tval){ .kind = TV_BOOL, .b = b };
}

/* Appends v as Go's fmt %v prints it. */
static void print_val(struct vg_buf *b, const struct tval *v)
{
    switch (v->kind) {
    case TV_NIL: vg_buf_puts(b, "<nil>"); break;
    case TV_STR: vg_buf_append(b, v->s, v->len); break;
    case TV_FLOAT: vg_buf_prom_float(b, v->f); break;
    case TV_INT: vg_buf_printf(b, "%lld", (long long)v->i); break;
    case TV_BOOL: vg_buf_puts(b, v->b ? "true" : "false"); break;
    case TV_MAP:
        vg_buf_puts(b, "map[");
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                vg_buf_putc(b, ' ');
            vg_buf_append(b, v->ls[i].name.p, v->ls[i].name.len);
            vg_buf_putc(b, ':');
            vg_buf_append(b, v->ls[i].value.p, v->ls[i].value.len);
        }
        vg_buf_putc(b, ']');
        break;
    case TV_DATA: vg_buf_puts(b, "{...}"); break;
    }
}

/* The string of a value built in a buffer, copied into the expansion arena. */
static int arena_str(struct ev *e, struct vg_buf *b, struct tval *out)
{
    if (vg_buf_failed(b)) {
        vg_buf_free(b);
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    }
    char *s = vg_arena_strndup(e->arena, b->p ? b->p : "", b->len);
    size_t n = b->len;
    vg_buf_free(b);
    if (!s)
        return vg_err_set(e->err, VG_ENOMEM, "out of memory");
    *out = vstr(s, n);
    return 0;
}

static bool truth(const struct tval *v)
{
    switch (v->kind) {
    case TV_NIL: return false;
    case TV_STR: return v->len > 0;
    case TV_FLOAT: return v->f != 0;
    case TV_INT: return v->i != 0;
    case TV_BOOL: return v->b;
    case TV_MAP: return v->n > 0;
    case TV_DATA: return true;
    }
    return false;
}

/* Prometheus's convertToFloat: numbers, and strings through strconv.ParseFloat. */
static int to_float(struct ev *e, const char *fn, const struct tval *v, double *out)
{
    switch (v->kind) {
    case TV_FLOAT: *out = v->f; return 0;
    case TV_INT: *out = (double)v->i; return 0;
    case TV_STR: {
        char buf[128];
        if (v->len > 0 && v->len < sizeof buf) {
            memcpy(buf, v->s, v->len);
            buf[v->len] = '\0';
            char *end;
            const char *s = buf + (buf[0] == '+' || buf[0] == '-');
            bool word = !strcasecmp(s, "inf") || !strcasecmp(s, "infinity") || !strcasecmp(s, "nan");
            *out = strtod(buf, &end);
            if (!*end && (word || isdigit((unsigned char)*s) || *s == '.'))
                return 0;
        }
        return eerr(e, fn, "error calling %s: strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
                    fn, (int)(v->len > 64 ? 64 : v->len), v->s);
    }
    default:
        return eerr(e, fn, "error calling %s: can't convert %s to float", fn, kind_name(v->kind));
    }
}

static int need_str(struct ev *e, const char *fn, const struct tval *v)
{
    if (v->kind == TV_STR)
        return 0;
    return eerr(e, fn, "wrong type for value; expected string; got %s", kind_name(v->kind));
}

/* SI prefixes applied as Prometheus's humanize does. */
static void humanize(struct vg_buf *b, double v, bool duration)
{
    static const char *const big[] = { "k", "M", "G", "T", "P", "E", "Z", "Y" };
    static const char *const small[] = { "m", "u", "n", "p", "f", "a", "z", "y" };
    const char *prefix = "";
    if (fabs(v) >= 1) {
        for (size_t i = 0; i < 8 && fabs(v) >= 1000; i++) {
            prefix = big[i];
            v /= 1000;
        }
    } else {
        for (size_t i = 0; i < 8 && fabs(v) < 1; i++) {
            prefix = small[i];
            v *= 1000;
        }
    }
    rule_template_fmt_4g(b, v);
    vg_buf_puts(b, prefix);
    if (duration)
        vg_buf_putc(b, 's');
}

static void humanize_duration(struct vg_buf *b, double v)
{
    if (isnan(v) || isinf(v)) {
        rule_template_fmt_4g(b, v);
        return;
    }
    if (v == 0) {
        vg_buf_puts(b, "0s");
        return;
    }
    if (fabs(v) < 1) {
        humanize(b, v, true);
        return;
    }
    const char *sign = v < 0 ? "-" : "";
    v = fabs(v);
    int64_t d = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
    int64_t s = d % 60, m = d / 60 % 60, h = d / 3600 % 24, days = d / 86400;
    if (days)
        vg_buf_printf(b, "%s%lldd %lldh %lldm %llds", sign, (long long)days, (long long)h,
                      (long long)m, (long long)s);
    else if (h)
        vg_buf_printf(b, "%s%lldh %lldm %llds", sign, (long long)h, (long long)m, (long long)s);
    else if (m)
        vg_buf_printf(b, "%s%lldm %llds", sign, (long long)m, (long long)s);
    else {
        vg_buf_puts(b, sign);
        rule_template_fmt_4g(b, v);
        vg_buf_putc(b, 's');
    }
}

void rule_template_fmt_time(struct vg_buf *b, int64_t ms, char sep)
{
    int64_t s = vg_time_floor_div(ms, 1000), frac = ms - s * 1000;
    int64_t days = vg_time_floor_div(s, VG_TIME_S_PER_DAY), sod = s - days * VG_TIME_S_PER_DAY;
    int64_t y;
    int mo, d;
    vg_time_civil_from_days(days, &y, &mo, &d);
    vg_buf_printf(b, "%04lld-%02d-%02d%c%02lld:%02lld:%02lld", (long long)y, mo, d, sep,
                  (long long)(sod / 3600), (long long)(sod / 60 % 60), (long long)(sod % 60));
    if (frac) {
        char f[8];
        snprintf(f, sizeof f, "%03d", (int)frac);
        size_t n = 3;
        while (f[n - 1] == '0')
            n--;
        vg_buf_putc(b, '.');
        vg_buf_append(b, f, n);
    }
}

/* Go's time.Time.String() in UTC: "2006-01-02 15:04:05.999999999 +0000 UTC". */
static int humanize_timestamp(struct ev *e, struct vg_buf *b, double v)
{
    if (isnan(v) || isinf(v)) {
        rule_template_fmt_4g(b, v);
        return 0;
    }
    /* Prometheus's floatToTime: nanoseconds, then model.Time's milliseconds. */
    double t = v * 1e9;
    if (t >= 9223372036854775807.0 || t < -9223372036854775808.0)
        return eerr(e, "humanizeTimestamp",
                    "error calling humanizeTimestamp: %g cannot be represented as a nanoseconds "
                    "timestamp since it overflows int64", v);
    rule_template_fmt_time(b, (int64_t)t / 1000000, ' ');
    vg_buf_puts(b, " +0000 UTC");
    return 0;
}

/* Go's printf for the verbs rule templates use: %v %s %q %d %f %F %e %E %g %G %x %X %t
 * with flags, width and precision; %% for a percent sign. Numbers of either kind are
 * accepted by the float and integer verbs (Go would print "%!d(float64=...)"). */
static int go_printf(struct ev *e, struct tval *args, size_t n, struct vg_buf *b)
{
    if (need_str(e, "printf", &args[0]) < 0)
        return e->err->code;
    const char *f = args[0].s, *end = f + args[0].len;
    size_t ai = 1;
    while (f < end) {
        if (*f != '%') {
            vg_buf_putc(b, *f++);
            continue;
        }
        const char *spec = f++;
        while (f < end && strchr("+-# 0", *f))
            f++;
        while (f < end && (isdigit((unsigned char)*f) || *f == '.'))
            f++;
        if (f >= end) {
            vg_buf_puts(b, "%!(NOVERB)");
            break;
        }
        char verb = *f++;
        if (verb == '%') {
            vg_buf_putc(b, '%');
            continue;
        }
        char cf[32];
        size_t sl = (size_t)(f - 1 - spec);
        if (sl > 20)
            sl = 20;
        memcpy(cf, spec, sl);
        if (ai >= n) {
            vg_buf_printf(b, "%%!%c(MISSING)", verb);
            continue;
        }
        struct tval *a = &args[ai++];
        double num = a->kind == TV_INT ? (double)a->i : a->f;
        bool numeric = a->kind == TV_INT || a->kind == TV_FLOAT;
        switch (verb) {
        case 'd': case 'x': case 'X':
            if (numeric) {
                memcpy(cf + sl, verb == 'd' ? "lld" : verb == 'x' ? "llx" : "llX", 4);
                vg_buf_printf(b, cf, (long long)num);
                continue;
            }
            break;
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G':
            if (numeric) {
                if (isnan(num) || isinf(num)) {
                    vg_buf_puts(b, isnan(num) ? "NaN" : num > 0 ? "+Inf" : "-Inf");
                    continue;
                }
                cf[sl] = verb;
                cf[sl + 1] = '\0';
                vg_buf_printf(b, cf, num);
                continue;
            }
            break;
        case 't':
            if (a->kind == TV_BOOL) {
                vg_buf_puts(b, a->b ? "true" : "false");
                continue;
            }
            break;
        case 'q':
            if (a->kind == TV_STR) {
                vg_buf_json_str(b, a->s, a->len);
                continue;
            }
            break;
        case 's': case 'v':
            if (a->kind == TV_STR && sl > 1) { /* flags, width or precision */
                char *tmp = vg_arena_strndup(e->arena, a->s, a->len);
                if (!tmp)
                    return vg_err_set(e->err, VG_ENOMEM, "out of memory");
                cf[sl] = 's';
                cf[sl + 1] = '\0';
                vg_buf_printf(b, cf, tmp);
                continue;
            }
            print_val(b, a);
            continue;
        default:
            break;
        }
        vg_buf_printf(b, "%%!%c(%s=", verb, kind_name(a->kind));
        print_val(b, a);
        vg_buf_putc(b, ')');
    }
    if (ai < n) {
        vg_buf_puts(b, "%!(EXTRA ");
        for (size_t i = ai; i < n; i++) {
            vg_buf_printf(b, "%s%s=", i > ai ? ", " : "", kind_name(args[i].kind));
            print_val(b, &args[i]);
        }
        vg_buf_putc(b, ')');
    }
    return 0;
}

/* regexp.ReplaceAllString / MatchString through PCRE2 (whose syntax covers the RE2
 * subset users write; $1 and ${name} in the replacement as in Go). */
static int regex_call(struct ev *e, const char *fn, const struct tval *pat, const struct tval *repl,
                      const struct tval *text, struct tval *out)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat->s, pat->len, PCRE2_UTF,
                                   &ec, &eo, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return eerr(e, fn, "error calling %s: error parsing regexp: %s at offset %zu", fn,
                    (const char *)msg, (size_t)eo);
    }
    int rc = 0;
    if (!repl) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md) {
            rc = vg_err_set(e->err, VG_ENOMEM, "out of memory");
        } else {
            int m = pcre2_match(re, (PCRE2_SPTR)text->s, text->len, 0, 0, md, NULL);
            *out = vbool(m >= 0);
            pcre2_match_data_free(md);
        }
        pcre2_code_free(re);
        return rc;
    }
    PCRE2_SIZE cap = text->len * 2 + repl->len + 64;
    for (int attempt = 0; attempt < 8; attempt++) {
        PCRE2_UCHAR *buf = vg_arena_alloc(e->arena, cap + 1);
        if (!buf) {
            rc = vg_err_set(e->err, VG_ENOMEM, "out of memory");
            break;
        }
        PCRE2_SIZE olen = cap;
        int m = pcre2_substitute(re, (PCRE2_SPTR)text->s, text->len, 0,
                                 PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH |
                                     PCRE2_SUBSTITUTE_UNSET_EMPTY | PCRE2_SUBSTITUTE_UNKNOWN_UNSET,
                                 NULL, NULL, (PCRE2_SPTR)repl->s, repl->len, buf, &olen);
        if (m == PCRE2_ERROR_NOMEMORY) {
            cap = olen;
            continue;
        }
        if (m < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = eerr(e, fn, "error calling %s: %s", fn, (const char *)msg);
            break;
        }
        *out = vstr((const char *)buf, olen);
        break;
    }
    pcre2_code_free(re);
    return rc;
}

/* Compares two values for eq/lt/...: numbers numerically, strings bytewise, bools
 * for equality. *c is <0, 0, >0. */
static int compare(struct ev *e, const char *fn, const struct tval *a, const struct tval *b,
                   bool order, int *c)
{
    bool an = a->kind == TV_INT || a->kind == TV_FLOAT, bn = b->kind == TV_INT || b->kind == TV_FLOAT;
    if (an && bn) {
        double x = a->kind == TV_INT ? (double)a->i : a->f, y = b->kind == TV_INT ? (double)b->i : b->f;
        *c = x < y ? -1 : x > y;
        return 0;
    }
    if (a->kind == TV_STR && b->kind == TV_STR) {
        *c = vg_str_cmp((struct vg_str){ a->s, a->len }, (struct vg_str){ b->s, b->len });
        return 0;
    }
    if (!order && a->kind == b->kind && (a->kind == TV_BOOL || a->kind == TV_NIL)) {
        *c = a->kind == TV_BOOL ? (a->b != b->b) : 0;
        return 0;
    }
    return eerr(e, fn, "error calling %s: incompatible types for comparison", fn);
}

enum fid { F_HUMANIZE, F_HUMANIZE1024, F_HUMANIZE_DURATION, F_HUMANIZE_PERCENTAGE,
           F_HUMANIZE_TIMESTAMP, F_PRINTF, F_TOUPPER, F_TOLOWER, F_TITLE, F_REREPLACEALL,
           F_MATCH, F_STRIPPORT, F_STRIPDOMAIN, F_PARSEDURATION, F_INDEX, F_LEN, F_EQ, F_NE,
           F_LT, F_LE, F_GT, F_GE, F_AND, F_OR, F_NOT, F_PRINT, F_PRINTLN };

static const struct { const char *name; enum fid id; int min, max; } funcs[] = {
    { "humanize", F_HUMANIZE, 1, 1 },
    { "humanize1024", F_HUMANIZE1024, 1, 1 },
    { "humanizeDuration", F_HUMANIZE_DURATION, 1, 1 },
    { "humanizePercentage", F_HUMANIZE_PERCENTAGE, 1, 1 },
    { "humanizeTimestamp", F_HUMANIZE_TIMESTAMP, 1, 1 },
    { "printf", F_PRINTF, 1, -1 },
    { "toUpper", F_TOUPPER, 1, 1 },
    { "toLower", F_TOLOWER, 1, 1 },
    { "title", F_TITLE, 1, 1 },
    { "reReplaceAll", F_REREPLACEALL, 3, 3 },
    { "match", F_MATCH, 2, 2 },
    { "stripPort", F_STRIPPORT, 1, 1 },
    { "stripDomain", F_STRIPDOMAIN, 1, 1 },
    { "parseDuration", F_PARSEDURATION, 1, 1 },
    { "index", F_INDEX, 2, 2 },
    { "len", F_LEN, 1, 1 },
    { "eq", F_EQ, 2, -1 },
    { "ne", F_NE, 2, 2 },
    { "lt", F_LT, 2, 2 },
    { "le", F_LE, 2, 2 },
    { "gt", F_GT, 2, 2 },
    { "ge", F_GE, 2, 2 },
    { "and", F_AND, 1, -1 },
    { "or", F_OR, 1, -1 },
    { "not", F_NOT, 1, 1 },
    { "print", F_PRINT, 0, -1 },
    { "println", F_PRINTLN, 0, -1 },
};
#define NFUNCS (sizeof funcs / sizeof funcs[0])

static bool func_known(const char *name, size_t n)
{
    for (size_t i = 0; i < NFUNCS; i++)
        if (strlen(funcs[i].name) == n && !memcmp(funcs[i].name, name, n))
            return true;
    return false;
}

/* host and port of "host:port" / "[v6]:port" as net.SplitHostPort; false when it is
 * not of that form. */
static bool split_host_port(const char *s, size_t n, struct vg_str *host, struct vg_str *port)
{
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    if (!colon)
        return false;
    *port = (struct vg_str){ colon + 1, (size_t)(s + n - colon - 1) };
    if (s[0] == '[') {
        if (colon == s || colon[-1] != ']')
            return false;
        *host = (struct vg_str){ s + 1, (size_t)(colon - s - 2) };
        return true;
    }
    *host = (struct vg_str){ s, (size_t)(colon - s) };
    return memchr(host->p, ':', host->len) == NULL;
}

static bool is_ip(struct vg_str h)
{
    char buf[64];
    unsigned char addr[16];
    if (h.len >= sizeof buf)
        return false;
    memcpy(buf, h.p, h.len);
    buf[h.len] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}

static int call(struct ev *e, size_t fi, struct tval *a, size_t n, struct tval *out)
{
    const char *fn = funcs[fi].name;
    if ((int)n < funcs[fi].min || (funcs[fi].max >= 0 && (int)n > funcs[fi].max))
        return eerr(e, fn, "wrong number of args for %s: want %d got %zu", fn, funcs[fi].min, n);
    struct vg_buf b;
    vg_buf_init(&b);
    double v;
    int c;
    switch (funcs[fi].id) {
    case F_HUMANIZE:
        if (to_float(e, fn, &a[0], &v) < 0)
            return e->err->code;
        if (v == 0 || isnan(v) || isinf(v))
            rule_template_fmt_4g(&b, v);
        else
            humanize(&b, v, false);
        return arena_str(e, &b, out);
    case F_HUMANIZE1024: {
        if (to_float(e, fn, &a[0], &v) < 0)
            return e->err->code;
        static const char *const iec[] = { "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi" };
        const char *prefix = "";
        if (!(fabs(v) <= 1 || isnan(v) || isinf(v)))
            for (size_t i = 0; i < 8 && fabs(v) >= 1024; i++) {
                prefix = iec[i];
                v /= 1024;
            }
        rule_template_fmt_4g(&b, v);
        vg_buf_puts(&b, prefix);
        return arena_str(e, &b, out);
    }
    case F_HUMANIZE_DURATION:
        if (to_float(e, fn, &a[0], &v) < 0)
            return e->err->code;
        humanize_duration(&b, v);
        return arena_str(e, &b, out);
    case F_HUMANIZE_PERCENTAGE:
        if (to_float(e, fn, &a[0], &v) < 0)
            return e->err->code;
        rule_template_fmt_4g(&b, v * 100);
        vg_buf_putc(&b, '%');
        return arena_str(e, &b, out);
    case F_HUMANIZE_TIMESTAMP:
        if (to_float(e, fn, &a[0], &v) < 0 || humanize_timestamp(e, &b, v) < 0) {
            vg_buf_free(&b);
            return e->err->code;
        }
        return arena_str(e, &b, out);
    case F_PRINTF:
        if (go_printf(e, a, n, &b) < 0) {
            vg_buf_free(&b);
            return e->err->code;
        }
        return arena_str(e, &b, out);
    case F_PRINT: case F_PRINTLN:
        for (size_t i = 0; i < n; i++) {
            /* print adds spaces between operands when neither is a string; println always */
            if (i && (funcs[fi].id == F_PRINTLN || (a[i - 1].kind != TV_STR && a[i].kind != TV_STR)))
                vg_buf_putc(&b, ' ');
            print_val(&b, &a[i]);
        }
        if (funcs[fi].id == F_PRINTLN)
            vg_buf_putc(&b, '\n');
        return arena_str(e, &b, out);
    case F_TOUPPER: case F_TOLOWER: case F_TITLE: {
        if (need_str(e, fn, &a[0]) < 0)
            return e->err->code;
        char *s = vg_arena_strndup(e->arena, a[0].s, a[0].len);
        if (!s)
            return vg_err_set(e->err, VG_ENOMEM, "out of memory");
        bool start = true;
        for (size_t i = 0; i < a[0].len; i++) {
            unsigned char ch = (unsigned char)s[i];
            if (funcs[fi].id == F_TOUPPER)
                s[i] = (char)toupper(ch);
            else if (funcs[fi].id == F_TOLOWER)
                s[i] = (char)tolower(ch);
            else {
                if (start)
                    s[i] = (char)toupper(ch);
                start = !(isalnum(ch) || ch == '_' || ch >= 0x80 || ch == '\'');
            }
        }
        *out = vstr(s, a[0].len);
        return 0;
    }
    case F_REREPLACEALL:
        for (int i = 0; i < 3; i++)
            if (need_str(e, fn, &a[i]) < 0)
                return e->err->code;
        return regex_call(e, fn, &a[0], &a[1], &a[2], out);
    case F_MATCH:
        if (need_str(e, fn, &a[0]) < 0 || need_str(e, fn, &a[1]) < 0)
            return e->err->code;
        return regex_call(e, fn, &a[0], NULL, &a[1], out);
    case F_STRIPPORT: case F_STRIPDOMAIN: {
        if (need_str(e, fn, &a[0]) < 0)
            return e->err->code;
        struct vg_str host = { a[0].s, a[0].len }, port = { NULL, 0 };
        if (!split_host_port(a[0].s, a[0].len, &host, &port)) {
            host = (struct vg_str){ a[0].s, a[0].len };
            port.p = NULL;
        }
        if (funcs[fi].id == F_STRIPPORT) {
            *out = port.p ? vstr(host.p, host.len) : a[0];
            return 0;
        }
        if (is_ip(host)) {
            *out = a[0];
            return 0;
        }
        const char *dot = memchr(host.p, '.', host.len);
        size_t hl = dot ? (size_t)(dot - host.p) : host.len;
        vg_buf_append(&b, host.p, hl);
        if (port.p) {
            vg_buf_putc(&b, ':');
            vg_buf_append(&b, port.p, port.len);
        }
        return arena_str(e, &b, out);
    }
    case F_PARSEDURATION: {
        if (need_str(e, fn, &a[0]) < 0)
            return e->err->code;
        char buf[64];
        int64_t ms;
        struct vg_err de;
        snprintf(buf, sizeof buf, "%.*s", (int)a[0].len, a[0].s);
        if (config_parse_duration(buf, &ms, &de) < 0)
            return eerr(e, fn, "error calling parseDuration: not a valid duration string: \"%s\"", buf);
        *out = vfloat((double)ms / 1000.0);
        return 0;
    }
    case F_INDEX:
        if ((a[0].kind != TV_MAP) || need_str(e, fn, &a[1]) < 0)
            return a[0].kind == TV_MAP ? e->err->code
                                       : eerr(e, fn, "error calling index: can't index item of type %s",
                                              kind_name(a[0].kind));
        {
            struct vg_str key = { a[1].s, a[1].len }, val = { "", 0 };
            for (size_t i = 0; i < a[0].n; i++)
                if (vg_str_eq(a[0].ls[i].name, key))
                    val = a[0].ls[i].value;
            *out = vstr(val.p, val.len);
        }
        return 0;
    case F_LEN:
        if (a[0].kind != TV_STR && a[0].kind != TV_MAP)
            return eerr(e, fn, "error calling len: len of type %s", kind_name(a[0].kind));
        *out = (struct tval){ .kind = TV_INT, .i = (int64_t)(a[0].kind == TV_STR ? a[0].len : a[0].n) };
        return 0;
    case F_EQ:
        for (size_t i = 1; i < n; i++) {
            if (compare(e, fn, &a[0], &a[i], false, &c) < 0)
                return e->err->code;
            if (c == 0) {
                *out = vbool(true);
                return 0;
            }
        }
        *out = vbool(false);
        return 0;
    case F_NE: case F_LT: case F_LE: case F_GT: case F_GE: {
        enum fid id = funcs[fi].id;
        if (compare(e, fn, &a[0], &a[1], id != F_NE, &c) < 0)
            return e->err->code;
        *out = vbool(id == F_NE ? c != 0 : id == F_LT ? c < 0 : id == F_LE ? c <= 0
                                         : id == F_GT ? c > 0 : c >= 0);
        return 0;
    }
    case F_AND: case F_OR: {
        /* Go's and/or return the first falsy/truthy argument, else the last. */
        bool want = funcs[fi].id == F_OR;
        for (size_t i = 0; i < n; i++)
            if (truth(&a[i]) == want || i + 1 == n) {
                *out = a[i];
                return 0;
            }
        return 0;
    }
    case F_NOT:
        *out = vbool(!truth(&a[0]));
        return 0;
    }
    return 0;
}

static int eval_pipe(struct ev *e, const struct tpipe *p, struct tval *out);

static int field(struct ev *e, struct tval *v, const char *name)
{
    if (v->kind == TV_MAP) {
        struct vg_str k = vg_str_c(name);
        for (size_t i = 0; i < v->n; i++)
            if (vg_str_eq(v->ls[i].name, k)) {
                *v = vstr(v->ls[i].value.p, v->ls[i].value.len);
                return 0;
            }
        *v = vstr("", 0); /* missingkey=zero */
        return 0;
    }
    if (v->kind == TV_DATA) {
        if (!strcmp(name, "Labels")) {
            *v = (struct tval){ .kind = TV_MAP, .ls = e->d->labels, .n = e->d->nlabels };
            return 0;
        }
        if (!strcmp(name, "ExternalLabels")) {
            *v = (struct tval){ .kind = TV_MAP, .ls = e->d->external, .n = e->d->nexternal };
            return 0;
        }
        if (!strcmp(name, "Value")) {
            *v = vfloat(e->d->value);
            return 0;
        }
        if (!strcmp(name, "ExternalURL")) {
            const char *u = e->d->external_url ? e->d->external_url : "";
            *v = vstr(u, strlen(u));
            return 0;
        }
    }
    return eerr(e, name, "can't evaluate field %s in type %s", name, kind_name(v->kind));
}

static int chain(struct ev *e, struct tval *v, const struct targ *a)
{
    for (size_t i = 0; i < a->nfields; i++)
        if (field(e, v, a->fields[i]) < 0)
            return e->err->code;
    return 0;
}

static int lookup_var(struct ev *e, const char *name, struct tval *out)
{
    for (size_t i = e->nvars; i > 0; i--)
        if (!strcmp(e->vars[i - 1].name, name)) {
            *out = e->vars[i - 1].v;
            return 0;
        }
    struct tval root = { .kind = TV_DATA };
    if (!*name)
        *out = root;
    else if (!strcmp(name, "labels"))
        return field(e, (*out = root, out), "Labels");
    else if (!strcmp(name, "value"))
        return field(e, (*out = root, out), "Value");
    else if (!strcmp(name, "externalLabels"))
        return field(e, (*out = root, out), "ExternalLabels");
    else if (!strcmp(name, "externalURL"))
        return field(e, (*out = root, out), "ExternalURL");
    else
        return eerr(e, name, "undefined variable \"$%s\"", name);
    return 0;
}

static int eval_arg(struct ev *e, const struct targ *a, struct tval *out)
{
    switch (a->kind) {
    case TA_FUNC: {
        for (size_t i = 0; i < NFUNCS; i++)
            if (!strcmp(funcs[i].name, a->name))
                return call(e, i, NULL, 0, out);
        return eerr(e, a->name, "function not defined");
    }
    case TA_FIELD:
        *out = e->dot;
        return chain(e, out, a);
    case TA_VAR:
        if (lookup_var(e, a->name, out) < 0)
            return e->err->code;
        return chain(e, out, a);
    case TA_STR: *out = vstr(a->s, a->slen); return 0;
    case TA_NUM:
        *out = a->is_int ? (struct tval){ .kind = TV_INT, .i = (int64_t)a->num } : vfloat(a->num);
        return 0;
    case TA_BOOL: *out = vbool(a->b); return 0;
    case TA_NIL: *out = (struct tval){ .kind = TV_NIL }; return 0;
    case TA_PIPE:
        if (eval_pipe(e, a->pipe, out) < 0)
            return e->err->code;
        return chain(e, out, a);
    }
    return 0;
}

static int eval_cmd(struct ev *e, const struct tcmd *c, const struct tval *piped, struct tval *out)
{
    const struct targ *head = &c->args[0];
    if (head->kind != TA_FUNC) {
        if (piped)
            return eerr(e, "", "can't give argument to non-function");
        return eval_arg(e, head, out);
    }
    struct tval args[17];
    size_t n = 0;
    for (size_t i = 1; i < c->n; i++)
        if (eval_arg(e, &c->args[i], &args[n++]) < 0)
            return e->err->code;
    if (piped)
        args[n++] = *piped;
    for (size_t i = 0; i < NFUNCS; i++)
        if (!strcmp(funcs[i].name, head->name))
            return call(e, i, args, n, out);
    return eerr(e, head->name, "function not defined");
}

static int eval_pipe(struct ev *e, const struct tpipe *p, struct tval *out)
{
    struct tval v = { .kind = TV_NIL };
    for (size_t i = 0; i < p->n; i++) {
        struct tval r;
        if (eval_cmd(e, &p->cmds[i], i ? &v : NULL, &r) < 0)
            return e->err->code;
        v = r;
    }
    if (p->decl) {
        size_t i = e->nvars;
        if (p->redefine)
            for (i = e->nvars; i > 0 && strcmp(e->vars[i - 1].name, p->decl); i--)
                ;
        if (p->redefine && i > 0)
            e->vars[i - 1].v = v;
        else if (e->nvars < MAX_VARS) {
            e->vars[e->nvars].name = p->decl;
            e->vars[e->nvars++].v = v;
        }
    }
    *out = v;
    return 0;
}

static int eval_list(struct ev *e, const struct tlist *l, struct vg_buf *out)
{
    for (size_t i = 0; i < l->n; i++) {
        const struct tnode *n = l->v[i];
        e->line = n->line;
        if (n->kind == TN_TEXT) {
            vg_buf_append(out, n->text, n->len);
            continue;
        }
        struct tval v;
        size_t vars = e->nvars;
        if (eval_pipe(e, n->pipe, &v) < 0)
            return e->err->code;
        if (n->kind == TN_ACTION) {
            if (!n->pipe->decl)
                print_val(out, &v);
            continue;
        }
        struct tval dot = e->dot;
        int rc;
        if (truth(&v)) {
            if (n->kind == TN_WITH)
                e->dot = v;
            rc = eval_list(e, &n->body, out);
        } else {
            rc = eval_list(e, &n->other, out);
        }
        e->dot = dot;
        e->nvars = vars;
        if (rc < 0)
            return rc;
    }
    return 0;
}

int rule_template_expand(const struct rule_template *t, const struct rule_template_data *d, struct vg_buf *out,
                    struct vg_err *err)
{
    struct ev e = { .t = t, .d = d, .err = err, .dot = { .kind = TV_DATA } };
    e.arena = vg_arena_new(512);
    if (!e.arena)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = eval_list(&e, &t->root, out);
    vg_arena_free(e.arena);
    if (rc == 0 && vg_buf_failed(out))
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    return rc;
}
