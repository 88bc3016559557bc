/* template: a Go text/template subset (see template.h).
 *
 * Compilation builds a tree in the template's arena: a list of nodes (text, an action's
 * pipeline, an if/else chain); a pipeline is a list of commands, a command a list of
 * operands whose first, when it names a function, is called with the rest (plus the
 * previous command's result). Functions are rows of one table resolved when compiling,
 * so an unknown name or a wrong argument count fails the query up front rather than
 * each line. Values at execution are Go's basic kinds (string, bool, int, float64,
 * time.Time); strings made while executing live in the caller's scratch arena.
 *
 * regexReplaceAll calls PCRE2 directly: storage/tsdb/matcher.h (the PCRE2 wrapper)
 * offers anchored matching and first-match groups only, not a global replace over
 * one subject. The compile options follow matcher.c's Go-like ones (UTF when the
 * pattern allows, `$` at the very end only). */
#include "template.h"

#include "../../storage/base/vg_alloc.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 100 /* nesting of if and parentheses */
#define MAX_PAD 4096  /* printf width and precision are clamped to this */

enum vkind { V_NIL, V_STR, V_BOOL, V_INT, V_FLOAT, V_TIME };

struct val {
    enum vkind k;
    struct vg_str s;
    int64_t i; /* V_INT, V_TIME (ns) */
    double f;
    bool b;
};

struct tx;
struct tcmd;
typedef int (*tfunc_impl)(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                          struct val *out);

struct tfunc {
    const char *name;
    int min, max; /* argument counts; max -1: variadic */
    tfunc_impl fn;
};

enum akind { A_FIELD, A_STR, A_INT, A_FLOAT, A_BOOL, A_NIL, A_FUNC, A_PIPE };

struct tpipe;

struct targ {
    enum akind k;
    struct val v;            /* literals */
    struct vg_str name;      /* A_FIELD */
    const struct tfunc *fn;  /* A_FUNC */
    struct tpipe *pipe;      /* A_PIPE */
    struct targ *next;
};

struct tcmd {
    struct targ *args;
    size_t n;
    pcre2_code *re; /* regexReplaceAll with a literal pattern, compiled once */
    struct tcmd *next;
};

struct tpipe {
    struct tcmd *cmds;
};

enum nkind { N_TEXT, N_ACTION, N_IF };

struct tnode {
    enum nkind k;
    struct vg_str text;
    struct tpipe *pipe;
    struct tnode *then, *els;
    struct tnode *next;
};

struct rx_list {
    pcre2_code *code;
    struct rx_list *next;
};

struct template {
    struct vg_arena *a;
    struct tnode *root;
    struct rx_list *regexes;
    pcre2_general_context *gc;
    const char *name;
};

/* ---- PCRE2 memory through vg_malloc ---- */

static void *re_malloc(PCRE2_SIZE n, void *ud)
{
    (void)ud;
    return vg_malloc(n);
}

static void re_free(void *p, void *ud)
{
    (void)ud;
    vg_free(p);
}

/* ---- values ---- */

static const char *type_name(enum vkind k)
{
    switch (k) {
    case V_STR: return "string";
    case V_BOOL: return "bool";
    case V_INT: return "int";
    case V_FLOAT: return "float64";
    case V_TIME: return "time.Time";
    default: return "<nil>";
    }
}

static bool truth(const struct val *v)
{
    switch (v->k) {
    case V_STR: return v->s.len > 0;
    case V_BOOL: return v->b;
    case V_INT: return v->i != 0;
    case V_FLOAT: return v->f != 0;
    case V_TIME: return true;
    default: return false;
    }
}

/* Go's time.Time.String() in UTC: "2006-01-02 15:04:05.999999999 +0000 UTC". */
static void put_time(struct vg_buf *b, int64_t ns)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    vg_buf_printf(b, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac) {
        char f[16];
        int l = snprintf(f, sizeof f, "%09" PRId64, frac);
        while (l > 0 && f[l - 1] == '0')
            l--;
        vg_buf_putc(b, '.');
        vg_buf_append(b, f, (size_t)l);
    }
    vg_buf_puts(b, " +0000 UTC");
}

static void put_val(struct vg_buf *b, const struct val *v)
{
    switch (v->k) {
    case V_STR: vg_buf_append(b, v->s.p, v->s.len); break;
    case V_BOOL: vg_buf_puts(b, v->b ? "true" : "false"); break;
    case V_INT: vg_buf_printf(b, "%" PRId64, v->i); break;
    case V_FLOAT: vg_buf_prom_float(b, v->f); break;
    case V_TIME: put_time(b, v->i); break;
    default: vg_buf_puts(b, "<no value>"); break;
    }
}

/* ---- compilation ---- */

struct tp {
    const char *src;
    size_t n, i;
    struct template *t;
    struct vg_err *err;
    int depth;
    bool trim_next; /* the last action ended with " -}}" */
};

static const struct tfunc *find_func(struct vg_str name);

static int line_of(const struct tp *p, size_t at)
{
    int line = 1;
    for (size_t k = 0; k < at && k < p->n; k++)
        line += p->src[k] == '\n';
    return line;
}

__attribute__((format(printf, 3, 4))) static int perr(struct tp *p, size_t at, const char *fmt,
                                                      ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vg_err_set(p->err, VG_EINVAL, "template: %s:%d: %s", p->t->name, line_of(p, at), msg);
}

static void *palloc(struct tp *p, size_t n)
{
    void *m = vg_arena_calloc(p->t->a, n);
    if (!m)
        vg_err_set(p->err, VG_ENOMEM, "template: out of memory");
    return m;
}

static bool tsp(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool tident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static void skip_sp(struct tp *p)
{
    while (p->i < p->n && tsp(p->src[p->i]))
        p->i++;
}

/* At the end of an action: "}}" or " -}}" (the dash needs a space before it). */
static bool at_close(struct tp *p, bool consume)
{
    size_t i = p->i;
    bool trim = false;
    if (i + 3 <= p->n && p->src[i] == '-' && i > 0 && tsp(p->src[i - 1]) &&
        p->src[i + 1] == '}' && p->src[i + 2] == '}') {
        trim = true;
        i++;
    }
    if (i + 2 > p->n || p->src[i] != '}' || p->src[i + 1] != '}')
        return false;
    if (consume) {
        p->i = i + 2;
        p->trim_next = trim;
    }
    return true;
}

static int expect_close(struct tp *p)
{
    skip_sp(p);
    if (!at_close(p, true))
        return perr(p, p->i, p->i >= p->n ? "unclosed action" : "unexpected \"%c\" in command",
                    p->i < p->n ? p->src[p->i] : ' ');
    return 0;
}

/* A Go string literal at p->i ('"' or '`'), unescaped into the arena. */
static int parse_string(struct tp *p, struct vg_str *out)
{
    char q = p->src[p->i];
    size_t start = ++p->i;
    while (p->i < p->n && p->src[p->i] != q) {
        if (q == '"' && (p->src[p->i] == '\\'))
            p->i++;
        else if (q == '"' && p->src[p->i] == '\n')
            break;
        p->i++;
    }
    if (p->i >= p->n || p->src[p->i] != q)
        return perr(p, start, "unterminated quoted string");
    size_t len = p->i - start;
    p->i++;
    char *s = palloc(p, len + 1);
    if (!s)
        return VG_ENOMEM;
    size_t w = 0;
    for (size_t k = start; k < start + len; k++) {
        char c = p->src[k];
        if (q == '`' || c != '\\') {
            s[w++] = c;
            continue;
        }
        c = p->src[++k];
        switch (c) {
        case 'n': s[w++] = '\n'; break;
        case 't': s[w++] = '\t'; break;
        case 'r': s[w++] = '\r'; break;
        case 'a': s[w++] = '\a'; break;
        case 'b': s[w++] = '\b'; break;
        case 'f': s[w++] = '\f'; break;
        case 'v': s[w++] = '\v'; break;
        case '\\': case '"': case '\'': s[w++] = c; break;
        case 'x': {
            unsigned v = 0;
            int d;
            for (d = 0; d < 2 && k + 1 < start + len; d++) {
                char h = p->src[k + 1];
                if (!((h >= '0' && h <= '9') || ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')))
                    break;
                v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                k++;
            }
            if (d != 2)
                return perr(p, k, "invalid syntax in quoted string");
            s[w++] = (char)v;
            break;
        }
        default:
            return perr(p, k, "invalid syntax in quoted string");
        }
    }
    *out = (struct vg_str){ s, w };
    return 0;
}

static int parse_number(struct tp *p, struct targ *a)
{
    char tmp[64];
    size_t start = p->i, l = 0;
    bool flt = false;
    while (p->i < p->n && (tident(p->src[p->i]) || p->src[p->i] == '.' ||
                           ((p->src[p->i] == '+' || p->src[p->i] == '-') &&
                            (p->i == start || (p->src[p->i - 1] | 0x20) == 'e')))) {
        char c = p->src[p->i++];
        flt |= c == '.' || ((c | 0x20) == 'e' && !(l > 1 && (tmp[1] | 0x20) == 'x'));
        if (l < sizeof tmp - 1)
            tmp[l++] = c;
    }
    tmp[l] = 0;
    char *end = NULL;
    if (flt) {
        a->k = A_FLOAT;
        a->v = (struct val){ .k = V_FLOAT, .f = strtod(tmp, &end) };
    } else {
        a->k = A_INT;
        a->v = (struct val){ .k = V_INT, .i = (int64_t)strtoll(tmp, &end, 0) };
    }
    if (!end || *end || l == sizeof tmp - 1)
        return perr(p, start, "bad number syntax: \"%s\"", tmp);
    return 0;
}

static int parse_pipe(struct tp *p, struct tpipe **out, bool in_paren);

static int parse_operand(struct tp *p, struct targ *a)
{
    char c = p->src[p->i];
    size_t at = p->i;
    if (c == '"' || c == '`') {
        a->k = A_STR;
        a->v.k = V_STR;
        return parse_string(p, &a->v.s);
    }
    if (c == '.') {
        size_t s0 = ++p->i;
        while (p->i < p->n && tident(p->src[p->i]))
            p->i++;
        if (p->i == s0 || (p->i < p->n && p->src[p->i] == '.'))
            return perr(p, at, "unsupported field reference");
        a->k = A_FIELD;
        a->name = (struct vg_str){ p->src + s0, p->i - s0 };
        return 0;
    }
    if ((c >= '0' && c <= '9') || c == '-' || c == '+')
        return parse_number(p, a);
    if (c == '(') {
        if (++p->depth > MAX_DEPTH)
            return perr(p, at, "nesting too deep");
        p->i++;
        a->k = A_PIPE;
        int rc = parse_pipe(p, &a->pipe, true);
        p->depth--;
        return rc;
    }
    if (c == '$')
        return perr(p, at, "variables are not supported");
    if (tident(c)) {
        size_t s0 = p->i;
        while (p->i < p->n && tident(p->src[p->i]))
            p->i++;
        struct vg_str w = { p->src + s0, p->i - s0 };
        if (vg_str_eq_c(w, "true") || vg_str_eq_c(w, "false")) {
            a->k = A_BOOL;
            a->v = (struct val){ .k = V_BOOL, .b = w.p[0] == 't' };
            return 0;
        }
        if (vg_str_eq_c(w, "nil")) {
            a->k = A_NIL;
            return 0;
        }
        a->fn = find_func(w);
        if (!a->fn)
            return perr(p, at, "function \"%.*s\" not defined", (int)w.len, w.p);
        a->k = A_FUNC;
        return 0;
    }
    return perr(p, at, "unexpected \"%c\" in command", c);
}

static int compile_regex(struct tp *p, size_t at, struct vg_str re, pcre2_code **out);

/* Reads operands up to '|', ')' or the end of the action; checks the command. */
static int parse_cmd(struct tp *p, struct tcmd *c, size_t stage, bool in_paren)
{
    struct targ **tail = &c->args;
    size_t at = p->i;
    for (;;) {
        skip_sp(p);
        if (p->i >= p->n)
            return perr(p, p->i, "unclosed action");
        char ch = p->src[p->i];
        if (ch == '|' || (in_paren && ch == ')') || (!in_paren && at_close(p, false)))
            break;
        struct targ *a = palloc(p, sizeof *a);
        if (!a)
            return VG_ENOMEM;
        int rc = parse_operand(p, a);
        if (rc)
            return rc;
        *tail = a;
        tail = &a->next;
        c->n++;
    }
    if (c->n == 0)
        return perr(p, at, "missing value for command");
    for (const struct targ *a = c->args->next; a; a = a->next)
        if (a->k == A_FUNC && a->fn->min > 0)
            return perr(p, at, "wrong number of args for %s: want %d got 0", a->fn->name,
                        a->fn->min);
    size_t nargs = c->n - 1 + (stage > 0);
    if (c->args->k != A_FUNC) {
        if (stage > 0)
            return perr(p, at, "non executable command in pipeline stage %zu", stage + 1);
        if (c->n > 1)
            return perr(p, at, "can't give argument to non-function");
        if (c->args->k == A_NIL)
            return perr(p, at, "nil is not a command");
        return 0;
    }
    const struct tfunc *f = c->args->fn;
    if ((int)nargs < f->min || (f->max >= 0 && (int)nargs > f->max))
        return perr(p, at, "wrong number of args for %s: want %d got %zu", f->name, f->min,
                    nargs);
    if (strncmp(f->name, "regexReplaceAll", 15) == 0 && c->n > 1 && c->args->next->k == A_STR)
        return compile_regex(p, at, c->args->next->v.s, &c->re);
    return 0;
}

static int parse_pipe(struct tp *p, struct tpipe **out, bool in_paren)
{
    struct tpipe *pp = palloc(p, sizeof *pp);
    if (!pp)
        return VG_ENOMEM;
    struct tcmd **tail = &pp->cmds;
    for (size_t stage = 0;; stage++) {
        struct tcmd *c = palloc(p, sizeof *c);
        if (!c)
            return VG_ENOMEM;
        int rc = parse_cmd(p, c, stage, in_paren);
        if (rc)
            return rc;
        *tail = c;
        tail = &c->next;
        if (p->src[p->i] == '|') {
            p->i++;
            continue;
        }
        if (in_paren)
            p->i++; /* ')' */
        break;
    }
    *out = pp;
    return 0;
}

enum term { T_EOF, T_ELSE, T_ELSE_IF, T_END };

static int parse_list(struct tp *p, struct tnode **out, enum term *term);

/* After "{{if" or "{{else if": the condition, branches and the shared {{end}}. */
static int parse_if(struct tp *p, struct tnode *nd, size_t at)
{
    if (++p->depth > MAX_DEPTH)
        return perr(p, at, "nesting too deep");
    nd->k = N_IF;
    enum term t;
    int rc = parse_pipe(p, &nd->pipe, false);
    if (!rc)
        rc = expect_close(p);
    if (!rc)
        rc = parse_list(p, &nd->then, &t);
    if (rc)
        return rc;
    if (t == T_ELSE) {
        rc = parse_list(p, &nd->els, &t);
        if (rc)
            return rc;
        if (t != T_END)
            return perr(p, p->i, t == T_EOF ? "unexpected EOF" : "expected end; found else");
    } else if (t == T_ELSE_IF) {
        struct tnode *e = palloc(p, sizeof *e);
        if (!e)
            return VG_ENOMEM;
        nd->els = e;
        if ((rc = parse_if(p, e, p->i)) != 0)
            return rc;
    } else if (t != T_END) {
        return perr(p, p->i, "unexpected EOF");
    }
    p->depth--;
    return 0;
}

static bool keyword(struct tp *p, const char *kw)
{
    size_t l = strlen(kw);
    if (p->n - p->i < l || memcmp(p->src + p->i, kw, l) != 0 ||
        (p->i + l < p->n && tident(p->src[p->i + l])))
        return false;
    p->i += l;
    return true;
}

static int parse_list(struct tp *p, struct tnode **out, enum term *term)
{
    struct tnode **tail = out;
    *term = T_EOF;
    for (;;) {
        size_t start = p->i;
        if (p->trim_next)
            while (start < p->n && tsp(p->src[start]))
                start++;
        p->trim_next = false;
        const char *open = NULL;
        for (size_t k = start; k + 1 < p->n; k++)
            if (p->src[k] == '{' && p->src[k + 1] == '{') {
                open = p->src + k;
                break;
            }
        size_t end = open ? (size_t)(open - p->src) : p->n;
        size_t act = end + 2;
        bool trim_left = open && act + 1 < p->n && p->src[act] == '-' && tsp(p->src[act + 1]);
        size_t tend = end;
        if (trim_left)
            while (tend > start && tsp(p->src[tend - 1]))
                tend--;
        if (tend > start) {
            struct tnode *nd = palloc(p, sizeof *nd);
            if (!nd)
                return VG_ENOMEM;
            nd->k = N_TEXT;
            nd->text = (struct vg_str){ p->src + start, tend - start };
            *tail = nd;
            tail = &nd->next;
        }
        if (!open) {
            p->i = p->n;
            return 0;
        }
        p->i = act + (trim_left ? 2 : 0);
        if (p->i + 1 < p->n && p->src[p->i] == '/' && p->src[p->i + 1] == '*') {
            const char *e = NULL;
            for (size_t k = p->i + 2; k + 1 < p->n; k++)
                if (p->src[k] == '*' && p->src[k + 1] == '/') {
                    e = p->src + k;
                    break;
                }
            if (!e)
                return perr(p, p->i, "unclosed comment");
            p->i = (size_t)(e - p->src) + 2;
            if (!at_close(p, false) && !(p->i + 1 < p->n && tsp(p->src[p->i]) &&
                                         (p->i++, at_close(p, false))))
                return perr(p, p->i, "comment ends before closing delimiter");
            at_close(p, true);
            continue;
        }
        skip_sp(p);
        size_t at = p->i;
        if (keyword(p, "if")) {
            struct tnode *nd = palloc(p, sizeof *nd);
            if (!nd)
                return VG_ENOMEM;
            int rc = parse_if(p, nd, at);
            if (rc)
                return rc;
            *tail = nd;
            tail = &nd->next;
            continue;
        }
        if (keyword(p, "else")) {
            skip_sp(p);
            if (keyword(p, "if")) {
                *term = T_ELSE_IF;
                return 0;
            }
            *term = T_ELSE;
            return expect_close(p);
        }
        if (keyword(p, "end")) {
            *term = T_END;
            return expect_close(p);
        }
        static const char *const unsupported[] = { "range", "with", "define", "template",
                                                   "block", "break", "continue" };
        for (size_t k = 0; k < sizeof unsupported / sizeof unsupported[0]; k++)
            if (keyword(p, unsupported[k]))
                return perr(p, at, "\"%s\" actions are not supported", unsupported[k]);
        struct tnode *nd = palloc(p, sizeof *nd);
        if (!nd)
            return VG_ENOMEM;
        nd->k = N_ACTION;
        int rc = parse_pipe(p, &nd->pipe, false);
        if (!rc)
            rc = expect_close(p);
        if (rc)
            return rc;
        *tail = nd;
        tail = &nd->next;
    }
}

static pcre2_code *re_compile(pcre2_general_context *gc, struct vg_str re, int *ec, size_t *off)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(gc);
    if (!cc) {
        *ec = PCRE2_ERROR_NOMEMORY;
        return NULL;
    }
    uint32_t base = PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C;
    PCRE2_SIZE o = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)(re.p ? re.p : ""), re.len,
                                     base | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, ec, &o, cc);
    if (!code && *ec >= PCRE2_ERROR_UTF8_ERR21 && *ec <= PCRE2_ERROR_UTF8_ERR1)
        code = pcre2_compile((PCRE2_SPTR)(re.p ? re.p : ""), re.len, base, ec, &o, cc);
    pcre2_compile_context_free(cc);
    *off = o;
    return code;
}

static void re_message(int ec, char *buf, size_t len)
{
    if (pcre2_get_error_message(ec, (PCRE2_UCHAR *)buf, len) < 0)
        snprintf(buf, len, "unknown error");
}

static int compile_regex(struct tp *p, size_t at, struct vg_str re, pcre2_code **out)
{
    int ec;
    size_t off;
    struct rx_list *node = palloc(p, sizeof *node);
    if (!node)
        return VG_ENOMEM;
    *out = re_compile(p->t->gc, re, &ec, &off);
    if (!*out) {
        if (ec == PCRE2_ERROR_NOMEMORY || ec == PCRE2_ERROR_HEAP_FAILED)
            return vg_err_set(p->err, VG_ENOMEM, "template: out of memory");
        char msg[200];
        re_message(ec, msg, sizeof msg);
        return perr(p, at, "error parsing regexp: %s at offset %zu: `%.*s`", msg, off,
                    (int)(re.len > 100 ? 100 : re.len), re.p);
    }
    node->code = *out;
    node->next = p->t->regexes;
    p->t->regexes = node;
    return 0;
}

struct template *template_new(struct vg_str src, const char *name, struct vg_err *err)
{
    struct template *t = vg_calloc(1, sizeof *t);
    if (!t || !(t->a = vg_arena_new(src.len * 4 + 1024)) ||
        !(t->gc = pcre2_general_context_create(re_malloc, re_free, NULL))) {
        template_free(t);
        vg_err_set(err, VG_ENOMEM, "template: out of memory");
        return NULL;
    }
    char *copy = vg_arena_strndup(t->a, src.p ? src.p : "", src.len);
    t->name = vg_arena_strndup(t->a, name ? name : "template", name ? strlen(name) : 8);
    if (!copy || !t->name) {
        template_free(t);
        vg_err_set(err, VG_ENOMEM, "template: out of memory");
        return NULL;
    }
    struct tp p = { .src = copy, .n = src.len, .t = t, .err = err };
    enum term term;
    int rc = parse_list(&p, &t->root, &term);
    if (!rc && term != T_EOF)
        rc = perr(&p, p.i, "unexpected {{%s}}", term == T_END ? "end" : "else");
    if (rc) {
        template_free(t);
        return NULL;
    }
    return t;
}

void template_free(struct template *t)
{
    if (!t)
        return;
    for (struct rx_list *r = t->regexes; r; r = r->next)
        pcre2_code_free(r->code);
    pcre2_general_context_free(t->gc);
    vg_arena_free(t->a);
    vg_free(t);
}

bool template_is_text(const struct template *t)
{
    for (const struct tnode *n = t->root; n; n = n->next)
        if (n->k != N_TEXT)
            return false;
    return true;
}

/* ---- execution ---- */

struct tx {
    const struct template *t;
    const struct template_data *d;
    struct vg_arena *a;
    struct vg_err *err;
};

static int xerr(struct tx *x, const char *fn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int xerr(struct tx *x, const char *fn, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vg_err_set(x->err, VG_EINVAL, "template: %s: error calling %s: %s", x->t->name, fn,
                      msg);
}

static char *xalloc(struct tx *x, size_t n)
{
    char *p = vg_arena_alloc(x->a, n ? n : 1);
    if (!p)
        vg_err_set(x->err, VG_ENOMEM, "template: out of memory");
    return p;
}

static int want_str(struct tx *x, const struct tcmd *c, const struct val *v)
{
    if (v->k == V_STR)
        return 0;
    return xerr(x, c->args->fn->name, "wrong type for value; expected string; got %s",
                type_name(v->k));
}

static int strs(struct tx *x, const struct tcmd *c, const struct val *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = want_str(x, c, &a[i]);
        if (rc)
            return rc;
    }
    return 0;
}

static void set_str(struct val *out, const char *p, size_t len)
{
    *out = (struct val){ .k = V_STR, .s = { p, len } };
}

static int f_case(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *out,
                  int mode)
{
    int rc = strs(x, c, a, n);
    if (rc)
        return rc;
    char *s = xalloc(x, a[0].s.len);
    if (!s)
        return VG_ENOMEM;
    bool sep = true;
    for (size_t i = 0; i < a[0].s.len; i++) {
        char ch = a[0].s.p[i];
        bool lower = ch >= 'a' && ch <= 'z', upper = ch >= 'A' && ch <= 'Z';
        if ((mode == 1 || (mode == 2 && sep)) && lower)
            ch = (char)(ch - 32);
        else if (mode == 0 && upper)
            ch = (char)(ch + 32);
        sep = !(lower || upper || (ch >= '0' && ch <= '9') || ch == '_' || (ch & 0x80));
        s[i] = ch;
    }
    set_str(out, s, a[0].s.len);
    return 0;
}

static int f_lower(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *o)
{
    return f_case(x, c, a, n, o, 0);
}
static int f_upper(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *o)
{
    return f_case(x, c, a, n, o, 1);
}
static int f_title(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *o)
{
    return f_case(x, c, a, n, o, 2);
}

static bool in_cut(char ch, struct vg_str cut)
{
    return cut.len && memchr(cut.p, ch, cut.len) != NULL;
}

/* trim (spaces), trimAll (cutset, s): both ends. */
static int f_trim_set(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                      struct val *out)
{
    int rc = strs(x, c, a, n);
    if (rc)
        return rc;
    struct vg_str s = a[n - 1].s, cut = n == 2 ? a[0].s : VG_STR(" \t\n\r\v\f");
    while (s.len && in_cut(s.p[0], cut))
        s.p++, s.len--;
    while (s.len && in_cut(s.p[s.len - 1], cut))
        s.len--;
    *out = (struct val){ .k = V_STR, .s = s };
    return 0;
}

static bool has_prefix(struct vg_str s, struct vg_str pre)
{
    return s.len >= pre.len && memcmp(s.p, pre.p, pre.len) == 0;
}
static bool has_suffix(struct vg_str s, struct vg_str suf)
{
    return s.len >= suf.len && memcmp(s.p + s.len - suf.len, suf.p, suf.len) == 0;
}

/* trimPrefix p s, trimSuffix x s. */
static int f_trim_affix(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                        struct val *out)
{
    int rc = strs(x, c, a, n);
    if (rc)
        return rc;
    struct vg_str s = a[1].s, affix = a[0].s;
    bool prefix = c->args->fn->name[4] == 'P';
    if (prefix ? has_prefix(s, affix) : has_suffix(s, affix)) {
        s.len -= affix.len;
        s.p += prefix ? affix.len : 0;
    }
    *out = (struct val){ .k = V_STR, .s = s };
    return 0;
}

static long str_find(struct vg_str hay, size_t from, struct vg_str needle)
{
    if (needle.len == 0)
        return (long)from;
    for (size_t i = from; i + needle.len <= hay.len; i++)
        if (hay.p[i] == needle.p[0] && memcmp(hay.p + i, needle.p, needle.len) == 0)
            return (long)i;
    return -1;
}

static int f_contains(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                      struct val *out)
{
    int rc = strs(x, c, a, n);
    if (rc)
        return rc;
    const char *name = c->args->fn->name;
    bool r = name[0] == 'c'   ? str_find(a[1].s, 0, a[0].s) >= 0
             : name[3] == 'P' ? has_prefix(a[1].s, a[0].s)
                              : has_suffix(a[1].s, a[0].s);
    *out = (struct val){ .k = V_BOOL, .b = r };
    return 0;
}

/* replace old new s: every old in s becomes new (Go's strings.Replace with n = -1; an
 * empty old inserts new around every UTF-8 character). */
static int f_replace(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                     struct val *out)
{
    int rc = strs(x, c, a, n);
    if (rc)
        return rc;
    struct vg_str old = a[0].s, rep = a[1].s, s = a[2].s;
    struct vg_buf b;
    vg_buf_init(&b);
    size_t i = 0;
    if (old.len == 0) {
        vg_buf_append(&b, rep.p, rep.len);
        while (i < s.len) {
            size_t j = i + 1;
            while (j < s.len && ((unsigned char)s.p[j] & 0xC0) == 0x80)
                j++;
            vg_buf_append(&b, s.p + i, j - i);
            vg_buf_append(&b, rep.p, rep.len);
            i = j;
        }
    } else {
        long at;
        while ((at = str_find(s, i, old)) >= 0) {
            vg_buf_append(&b, s.p + i, (size_t)at - i);
            vg_buf_append(&b, rep.p, rep.len);
            i = (size_t)at + old.len;
        }
        vg_buf_append(&b, s.p + i, s.len - i);
    }
    char *p = vg_buf_failed(&b) ? NULL : xalloc(x, b.len);
    if (p && b.len)
        memcpy(p, b.p, b.len);
    size_t len = b.len;
    bool failed = vg_buf_failed(&b);
    vg_buf_free(&b);
    if (!p) {
        if (failed)
            vg_err_set(x->err, VG_ENOMEM, "template: out of memory");
        return VG_ENOMEM;
    }
    set_str(out, p, len);
    return 0;
}

/* Appends tmpl with $1, ${1}, $name, ${name} and $$ expanded from the match (Go's
 * regexp.Expand). */
static void expand(struct vg_buf *b, const pcre2_code *code, const char *subj,
                   const PCRE2_SIZE *ov, uint32_t pairs, struct vg_str tmpl)
{
    for (size_t i = 0; i < tmpl.len; i++) {
        if (tmpl.p[i] != '$' || i + 1 >= tmpl.len) {
            vg_buf_putc(b, tmpl.p[i]);
            continue;
        }
        if (tmpl.p[i + 1] == '$') {
            vg_buf_putc(b, '$');
            i++;
            continue;
        }
        bool brace = tmpl.p[i + 1] == '{';
        size_t s0 = i + 1 + brace, e = s0;
        while (e < tmpl.len && tident(tmpl.p[e]))
            e++;
        if (e == s0 || (brace && (e >= tmpl.len || tmpl.p[e] != '}'))) {
            vg_buf_putc(b, '$');
            continue;
        }
        char name[64];
        size_t nl = e - s0 < sizeof name - 1 ? e - s0 : sizeof name - 1;
        memcpy(name, tmpl.p + s0, nl);
        name[nl] = 0;
        long g = -1;
        bool numeric = true;
        for (size_t k = 0; k < nl; k++)
            numeric &= name[k] >= '0' && name[k] <= '9';
        if (numeric)
            g = nl < 10 ? strtol(name, NULL, 10) : -1;
        else
            g = pcre2_substring_number_from_name(code, (PCRE2_SPTR)name);
        if (g >= 0 && (uint32_t)g < pairs && ov[2 * g] != PCRE2_UNSET)
            vg_buf_append(b, subj + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
        i = e - 1 + brace;
    }
}

/* regexReplaceAll re s repl (repl expanded) and regexReplaceAllLiteral, as Go's
 * Regexp.ReplaceAllString: non-overlapping matches left to right, no replacement for an
 * empty match right after a previous match. */
static int f_regex_replace(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                           struct val *out)
{
    int rc = strs(x, c, a, n);
    if (rc)
        return rc;
    bool literal = strcmp(c->args->fn->name, "regexReplaceAllLiteral") == 0;
    pcre2_code *code = c->re, *own = NULL;
    if (!code) {
        int ec;
        size_t off;
        code = own = re_compile(x->t->gc, a[0].s, &ec, &off);
        if (!code) {
            char msg[200];
            re_message(ec, msg, sizeof msg);
            return xerr(x, c->args->fn->name, "error parsing regexp: %s at offset %zu", msg,
                        off);
        }
    }
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, x->t->gc);
    struct vg_buf b;
    vg_buf_init(&b);
    struct vg_str s = a[1].s, repl = a[2].s;
    const char *subj = s.p ? s.p : "";
    size_t pos = 0, last = 0;
    bool any = false;
    while (md && pos <= s.len) {
        int m = pcre2_match(code, (PCRE2_SPTR)subj, s.len, pos, 0, md, NULL);
        if (m < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        vg_buf_append(&b, subj + last, ov[0] - last);
        if (ov[1] > last || ov[0] == 0 || !any) {
            if (literal)
                vg_buf_append(&b, repl.p, repl.len);
            else
                expand(&b, code, subj, ov, pcre2_get_ovector_count(md), repl);
        }
        any = true;
        last = ov[1];
        size_t width = 1;
        while (pos + width < s.len && ((unsigned char)subj[pos + width] & 0xC0) == 0x80)
            width++;
        pos = pos + width > ov[1] ? pos + width : ov[1];
    }
    if (md)
        vg_buf_append(&b, subj + last, s.len - last);
    pcre2_match_data_free(md);
    pcre2_code_free(own);
    char *p = md && !vg_buf_failed(&b) ? xalloc(x, b.len) : NULL;
    if (p && b.len)
        memcpy(p, b.p, b.len);
    size_t len = b.len;
    vg_buf_free(&b);
    if (!p)
        return vg_err_set(x->err, VG_ENOMEM, "template: out of memory");
    set_str(out, p, len);
    return 0;
}

static bool is_empty(const struct val *v)
{
    return !truth(v) && v->k != V_TIME;
}

static int f_default(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                     struct val *out)
{
    (void)x, (void)c, (void)n;
    *out = is_empty(&a[1]) ? a[0] : a[1];
    return 0;
}

static int f_len(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *out)
{
    (void)n;
    if (a[0].k != V_STR)
        return xerr(x, c->args->fn->name, "len of type %s", type_name(a[0].k));
    *out = (struct val){ .k = V_INT, .i = (int64_t)a[0].s.len };
    return 0;
}

/* -1, 0, 1, or 2 when the kinds cannot be compared. */
static int vcmp(const struct val *l, const struct val *r)
{
    if (l->k != r->k)
        return 2;
    switch (l->k) {
    case V_STR: return vg_str_cmp(l->s, r->s) < 0 ? -1 : vg_str_cmp(l->s, r->s) > 0;
    case V_INT: case V_TIME: return (l->i > r->i) - (l->i < r->i);
    case V_FLOAT: return (l->f > r->f) - (l->f < r->f);
    case V_BOOL: return l->b == r->b ? 0 : 3;
    default: return 0;
    }
}

static int f_compare(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                     struct val *out)
{
    const char *name = c->args->fn->name;
    bool eq = strcmp(name, "eq") == 0, ne = strcmp(name, "ne") == 0, r = false;
    for (size_t i = 1; i < n; i++) {
        int k = vcmp(&a[0], &a[i]);
        if (k == 2)
            return xerr(x, name, "incompatible types for comparison");
        if (k == 3 && !eq && !ne)
            return xerr(x, name, "invalid type for comparison");
        if (eq) {
            r = k == 0;
            if (r)
                break;
            continue;
        }
        r = ne ? k != 0
            : name[0] == 'l' ? (name[1] == 't' ? k < 0 : k <= 0)
                             : (name[1] == 't' ? k > 0 : k >= 0);
    }
    *out = (struct val){ .k = V_BOOL, .b = r };
    return 0;
}

static int f_logic(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *out)
{
    (void)x;
    const char *name = c->args->fn->name;
    if (name[0] == 'n') {
        *out = (struct val){ .k = V_BOOL, .b = !truth(&a[0]) };
        return 0;
    }
    bool want = name[0] == 'o'; /* or: first true; and: first false */
    for (size_t i = 0; i < n; i++)
        if (truth(&a[i]) == want || i + 1 == n) {
            *out = a[i];
            break;
        }
    return 0;
}

static int f_epoch(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *out)
{
    (void)n;
    const char *name = c->args->fn->name;
    if (a[0].k != V_TIME)
        return xerr(x, name, "wrong type for value; expected time.Time; got %s",
                    type_name(a[0].k));
    int64_t div = strcmp(name, "unixEpoch") == 0 ? 1000000000
                  : strcmp(name, "unixEpochMillis") == 0 ? 1000000 : 1;
    int64_t v = a[0].i / div - (a[0].i % div < 0);
    char tmp[24];
    int l = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    char *s = xalloc(x, (size_t)l);
    if (!s)
        return VG_ENOMEM;
    memcpy(s, tmp, (size_t)l);
    set_str(out, s, (size_t)l);
    return 0;
}

static int f_line(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *out)
{
    (void)c, (void)a, (void)n;
    *out = (struct val){ .k = V_STR, .s = x->d->line };
    return 0;
}

static int f_timestamp(struct tx *x, const struct tcmd *c, struct val *a, size_t n,
                       struct val *out)
{
    (void)c, (void)a, (void)n;
    *out = (struct val){ .k = V_TIME, .i = x->d->ts_ns };
    return 0;
}

/* Go's %q for a string: strconv.Quote's escapes for the common cases. */
static void put_quoted(struct vg_buf *b, struct vg_str s)
{
    vg_buf_putc(b, '"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];
        switch (ch) {
        case '"': vg_buf_puts(b, "\\\""); break;
        case '\\': vg_buf_puts(b, "\\\\"); break;
        case '\n': vg_buf_puts(b, "\\n"); break;
        case '\r': vg_buf_puts(b, "\\r"); break;
        case '\t': vg_buf_puts(b, "\\t"); break;
        default:
            if (ch < 0x20 || ch == 0x7f)
                vg_buf_printf(b, "\\x%02x", ch);
            else
                vg_buf_putc(b, (char)ch);
        }
    }
    vg_buf_putc(b, '"');
}

/* Pads what was appended to b since mark to width (left-justified with '-'). */
static void pad(struct vg_buf *b, size_t mark, int width, bool left, bool zero)
{
    size_t have = b->len - mark;
    if (width <= 0 || have >= (size_t)width || vg_buf_failed(b))
        return;
    size_t add = (size_t)width - have;
    if (left) {
        for (size_t i = 0; i < add; i++)
            vg_buf_putc(b, ' ');
        return;
    }
    if (!vg_buf_reserve(b, add))
        return;
    memmove(b->p + mark + add, b->p + mark, have);
    memset(b->p + mark, zero ? '0' : ' ', add);
    b->len += add;
}

static void bad_verb(struct vg_buf *b, char verb, const struct val *v)
{
    vg_buf_printf(b, "%%!%c(", verb);
    if (v->k == V_NIL) {
        vg_buf_puts(b, "<nil>)");
        return;
    }
    vg_buf_printf(b, "%s=", type_name(v->k));
    put_val(b, v);
    vg_buf_putc(b, ')');
}

/* One printf verb with its flags; spec is "%<flags><width>.<prec>" without the verb. */
static void format_one(struct vg_buf *b, const char *flags, int width, int prec, char verb,
                       const struct val *v)
{
    bool left = strchr(flags, '-') != NULL, zero = strchr(flags, '0') != NULL && !left;
    size_t mark = b->len;
    char spec[32], tmp[512];
    if (verb == 'v' || (verb == 's' && v->k == V_STR) || (verb == 'q' && v->k == V_STR)) {
        if (v->k == V_STR && verb != 'q') {
            size_t l = prec >= 0 && (size_t)prec < v->s.len ? (size_t)prec : v->s.len;
            vg_buf_append(b, v->s.p, l);
        } else if (v->k == V_STR) {
            put_quoted(b, v->s);
        } else if (v->k == V_FLOAT && prec >= 0) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, v->f);
            vg_buf_puts(b, tmp);
        } else {
            put_val(b, v);
        }
        pad(b, mark, width, left, zero && v->k != V_STR);
        return;
    }
    if (verb == 't' && v->k == V_BOOL) {
        vg_buf_puts(b, v->b ? "true" : "false");
        pad(b, mark, width, left, false);
        return;
    }
    if (strchr("dxXoc", verb) && v->k == V_INT) {
        if (verb == 'c') {
            char u[4];
            size_t l = 0;
            unsigned cp = (unsigned)v->i;
            if (cp < 0x80)
                u[l++] = (char)cp;
            else
                l = (size_t)snprintf(u, sizeof u, "?");
            vg_buf_append(b, u, l);
            pad(b, mark, width, left, false);
            return;
        }
        if (prec < 0) { /* C ignores the 0 flag when a precision is given */
            snprintf(spec, sizeof spec, "%%%s*ll%c", flags, verb);
            snprintf(tmp, sizeof tmp, spec, width, (long long)v->i);
        } else {
            snprintf(spec, sizeof spec, "%%%s*.*ll%c", flags, verb);
            snprintf(tmp, sizeof tmp, spec, width, prec, (long long)v->i);
        }
        vg_buf_puts(b, tmp);
        return;
    }
    if (strchr("xX", verb) && v->k == V_STR) {
        for (size_t i = 0; i < v->s.len; i++)
            vg_buf_printf(b, verb == 'x' ? "%02x" : "%02X", (unsigned char)v->s.p[i]);
        pad(b, mark, width, left, false);
        return;
    }
    if (strchr("feEgG", verb) && v->k == V_FLOAT) {
        snprintf(spec, sizeof spec, "%%%s*.*%c", flags, verb);
        snprintf(tmp, sizeof tmp, spec, width, prec < 0 ? (verb == 'g' || verb == 'G' ? 17 : 6) : prec,
                 v->f);
        if ((verb == 'g' || verb == 'G') && prec < 0) { /* Go: shortest representation */
            mark = b->len;
            put_val(b, v);
            pad(b, mark, width, left, zero);
            return;
        }
        vg_buf_puts(b, tmp);
        return;
    }
    bad_verb(b, verb, v);
}

static int f_printf(struct tx *x, const struct tcmd *c, struct val *a, size_t n, struct val *out)
{
    if (a[0].k != V_STR)
        return want_str(x, c, &a[0]);
    struct vg_str f = a[0].s;
    struct vg_buf b;
    vg_buf_init(&b);
    size_t next = 1;
    for (size_t i = 0; i < f.len; i++) {
        if (f.p[i] != '%') {
            vg_buf_putc(&b, f.p[i]);
            continue;
        }
        char flags[8];
        size_t fl = 0;
        while (++i < f.len && strchr("-+# 0", f.p[i]) && f.p[i])
            if (fl < sizeof flags - 1)
                flags[fl++] = f.p[i];
        flags[fl] = 0;
        int width = 0, prec = -1;
        while (i < f.len && f.p[i] >= '0' && f.p[i] <= '9')
            width = width * 10 + (f.p[i++] - '0'), width = width > MAX_PAD ? MAX_PAD : width;
        if (i < f.len && f.p[i] == '.') {
            prec = 0;
            while (++i < f.len && f.p[i] >= '0' && f.p[i] <= '9')
                prec = prec * 10 + (f.p[i] - '0'), prec = prec > MAX_PAD ? MAX_PAD : prec;
        }
        if (i >= f.len) {
            vg_buf_puts(&b, "%!(NOVERB)");
            break;
        }
        char verb = f.p[i];
        if (verb == '%') {
            vg_buf_putc(&b, '%');
            continue;
        }
        if (next >= n) {
            vg_buf_printf(&b, "%%!%c(MISSING)", verb);
            continue;
        }
        format_one(&b, flags, width, prec, verb, &a[next++]);
    }
    if (next < n) {
        vg_buf_puts(&b, "%!(EXTRA ");
        for (size_t k = next; k < n; k++) {
            vg_buf_printf(&b, "%s%s=", k > next ? ", " : "", type_name(a[k].k));
            put_val(&b, &a[k]);
        }
        vg_buf_putc(&b, ')');
    }
    char *p = vg_buf_failed(&b) ? NULL : xalloc(x, b.len);
    if (p && b.len)
        memcpy(p, b.p, b.len);
    size_t len = b.len;
    vg_buf_free(&b);
    if (!p)
        return vg_err_set(x->err, VG_ENOMEM, "template: out of memory");
    set_str(out, p, len);
    return 0;
}

static const struct tfunc funcs[] = {
    { "ToLower", 1, 1, f_lower },
    { "ToUpper", 1, 1, f_upper },
    { "__line__", 0, 0, f_line },
    { "__timestamp__", 0, 0, f_timestamp },
    { "and", 1, -1, f_logic },
    { "contains", 2, 2, f_contains },
    { "default", 2, 2, f_default },
    { "eq", 2, -1, f_compare },
    { "ge", 2, 2, f_compare },
    { "gt", 2, 2, f_compare },
    { "hasPrefix", 2, 2, f_contains },
    { "hasSuffix", 2, 2, f_contains },
    { "le", 2, 2, f_compare },
    { "len", 1, 1, f_len },
    { "lower", 1, 1, f_lower },
    { "lt", 2, 2, f_compare },
    { "ne", 2, 2, f_compare },
    { "not", 1, 1, f_logic },
    { "or", 1, -1, f_logic },
    { "printf", 1, -1, f_printf },
    { "regexReplaceAll", 3, 3, f_regex_replace },
    { "regexReplaceAllLiteral", 3, 3, f_regex_replace },
    { "replace", 3, 3, f_replace },
    { "title", 1, 1, f_title },
    { "trim", 1, 1, f_trim_set },
    { "trimAll", 2, 2, f_trim_set },
    { "trimPrefix", 2, 2, f_trim_affix },
    { "trimSuffix", 2, 2, f_trim_affix },
    { "unixEpoch", 1, 1, f_epoch },
    { "unixEpochMillis", 1, 1, f_epoch },
    { "unixEpochNanos", 1, 1, f_epoch },
    { "upper", 1, 1, f_upper },
};

static const struct tfunc *find_func(struct vg_str name)
{
    for (size_t i = 0; i < sizeof funcs / sizeof funcs[0]; i++)
        if (vg_str_eq_c(name, funcs[i].name))
            return &funcs[i];
    return NULL;
}

static int eval_pipe(struct tx *x, const struct tpipe *p, struct val *out);

#define MAX_ARGS 32

static int eval_arg(struct tx *x, const struct targ *a, struct val *out)
{
    switch (a->k) {
    case A_FIELD: {
        struct vg_str v = { "", 0 };
        if (!x->d->field || !x->d->field(x->d->ud, a->name, &v))
            v = (struct vg_str){ "", 0 };
        *out = (struct val){ .k = V_STR, .s = v };
        return 0;
    }
    case A_PIPE:
        return eval_pipe(x, a->pipe, out);
    case A_NIL:
        *out = (struct val){ .k = V_NIL };
        return 0;
    case A_FUNC:
        return a->fn->fn(x, &(struct tcmd){ .args = (struct targ *)a, .n = 1 }, NULL, 0, out);
    default:
        *out = a->v;
        return 0;
    }
}

static int eval_pipe(struct tx *x, const struct tpipe *p, struct val *out)
{
    struct val prev = { .k = V_NIL };
    size_t stage = 0;
    for (const struct tcmd *c = p->cmds; c; c = c->next, stage++) {
        if (c->args->k != A_FUNC) {
            int rc = eval_arg(x, c->args, &prev);
            if (rc)
                return rc;
            continue;
        }
        struct val args[MAX_ARGS];
        size_t n = 0;
        for (const struct targ *a = c->args->next; a; a = a->next) {
            if (n == MAX_ARGS - 1)
                return xerr(x, c->args->fn->name, "too many arguments");
            int rc = eval_arg(x, a, &args[n++]);
            if (rc)
                return rc;
        }
        if (stage > 0)
            args[n++] = prev;
        int rc = c->args->fn->fn(x, c, args, n, &prev);
        if (rc)
            return rc;
    }
    *out = prev;
    return 0;
}

static int exec_list(struct tx *x, const struct tnode *n, struct vg_buf *out)
{
    for (; n; n = n->next) {
        struct val v;
        int rc;
        switch (n->k) {
        case N_TEXT:
            vg_buf_append(out, n->text.p, n->text.len);
            break;
        case N_ACTION:
            if ((rc = eval_pipe(x, n->pipe, &v)) != 0)
                return rc;
            put_val(out, &v);
            break;
        case N_IF:
            if ((rc = eval_pipe(x, n->pipe, &v)) != 0)
                return rc;
            if ((rc = exec_list(x, truth(&v) ? n->then : n->els, out)) != 0)
                return rc;
            break;
        }
    }
    return 0;
}

int template_exec(const struct template *t, const struct template_data *d,
                  struct vg_arena *scratch, struct vg_buf *out, struct vg_err *err)
{
    struct tx x = { t, d, scratch, err };
    int rc = exec_list(&x, t->root, out);
    if (!rc && vg_buf_failed(out))
        rc = vg_err_set(err, VG_ENOMEM, "template: out of memory");
    return rc;
}
