/* template: LogQL's template language on the shared engine (see template.h): Loki's
 * function table, the entry's labels as the data's fields, and the Loki specials.
 * A struct template is a struct gotmpl parsed with this file's language. */
#include "template.h"

#include "../template/gotmpl.h"

#include <string.h>

static bool field(void *data, struct vg_str name, struct gotmpl_val *out)
{
    const struct template_data *d = data;
    struct vg_str v = { "", 0 };
    if (!d->field || !d->field(d->ud, name, &v))
        v = (struct vg_str){ "", 0 };
    *out = gotmpl_str(v.p, v.len);
    return true; /* every field exists: missingkey=zero */
}

static bool in_cut(char ch, struct vg_str cut)
{
    return cut.len && memchr(cut.p, ch, cut.len) != NULL;
}

/* trim s (spaces), trimAll cutset s: both ends. */
static int f_trim_set(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                      struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    struct vg_str s = a[n - 1].s, cut = n == 2 ? a[0].s : VG_STR(" \t\n\r\v\f");
    while (s.len && in_cut(s.p[0], cut))
        s.p++, s.len--;
    while (s.len && in_cut(s.p[s.len - 1], cut))
        s.len--;
    *out = gotmpl_str(s.p, s.len);
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
static int f_trim_affix(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                        struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    struct vg_str s = a[1].s, affix = a[0].s;
    bool prefix = c->fn->arg;
    if (prefix ? has_prefix(s, affix) : has_suffix(s, affix)) {
        s.len -= affix.len;
        s.p += prefix ? affix.len : 0;
    }
    *out = gotmpl_str(s.p, s.len);
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

/* contains / hasPrefix / hasSuffix needle s (arg 0, 1, 2). */
static int f_contains(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                      struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
    bool r = c->fn->arg == 0   ? str_find(a[1].s, 0, a[0].s) >= 0
             : c->fn->arg == 1 ? has_prefix(a[1].s, a[0].s)
                               : has_suffix(a[1].s, a[0].s);
    *out = (struct gotmpl_val){ .k = GOTMPL_BOOL, .b = r };
    return 0;
}

/* replace old new s: every old in s becomes new (Go's strings.Replace with n = -1; an
 * empty old inserts new around every UTF-8 character). */
static int f_replace(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                     struct gotmpl_val *out)
{
    if (gotmpl_want_str(c, a, n) < 0)
        return VG_EINVAL;
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
    return gotmpl_buf_val(c, &b, out);
}

/* default d v: d when v is empty (sprig: "", 0, false, nil; a time is never empty). */
static int f_default(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                     struct gotmpl_val *out)
{
    (void)c, (void)n;
    *out = gotmpl_truth(&a[1]) ? a[1] : a[0];
    return 0;
}

/* unixEpoch / unixEpochMillis / unixEpochNanos t: arg is the divisor from ns. */
static int f_epoch(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                   struct gotmpl_val *out)
{
    (void)n;
    if (a[0].k != GOTMPL_TIME)
        return gotmpl_fail(c, "wrong type for value; expected time.Time; got %s",
                           gotmpl_kind_name(a[0].k));
    int64_t div = c->fn->arg, v = a[0].i / div - (a[0].i % div < 0);
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_printf(&b, "%lld", (long long)v);
    return gotmpl_buf_val(c, &b, out);
}

/* __line__ (arg 0) and __timestamp__ (arg 1). */
static int f_entry(struct gotmpl_call *c, struct gotmpl_val *a, size_t n,
                   struct gotmpl_val *out)
{
    (void)a, (void)n;
    const struct template_data *d = c->data;
    *out = c->fn->arg ? (struct gotmpl_val){ .k = GOTMPL_TIME, .i = d->ts_ns }
                      : gotmpl_str(d->line.p, d->line.len);
    return 0;
}

#define RE_PREP gotmpl_regex_prepare, gotmpl_regex_release

static const struct gotmpl_func funcs[] = {
    { "ToLower", 1, 1, gotmpl_fn_case, GOTMPL_LOWER, NULL, NULL },
    { "ToUpper", 1, 1, gotmpl_fn_case, GOTMPL_UPPER, NULL, NULL },
    { "__line__", 0, 0, f_entry, 0, NULL, NULL },
    { "__timestamp__", 0, 0, f_entry, 1, NULL, NULL },
    { "contains", 2, 2, f_contains, 0, NULL, NULL },
    { "default", 2, 2, f_default, 0, NULL, NULL },
    { "hasPrefix", 2, 2, f_contains, 1, NULL, NULL },
    { "hasSuffix", 2, 2, f_contains, 2, NULL, NULL },
    { "lower", 1, 1, gotmpl_fn_case, GOTMPL_LOWER, NULL, NULL },
    { "regexReplaceAll", 3, 3, gotmpl_fn_replace_all, 0, RE_PREP },
    { "regexReplaceAllLiteral", 3, 3, gotmpl_fn_replace_all, GOTMPL_RE_LITERAL, RE_PREP },
    { "replace", 3, 3, f_replace, 0, NULL, NULL },
    { "title", 1, 1, gotmpl_fn_case, GOTMPL_TITLE, NULL, NULL },
    { "trim", 1, 1, f_trim_set, 0, NULL, NULL },
    { "trimAll", 2, 2, f_trim_set, 0, NULL, NULL },
    { "trimPrefix", 2, 2, f_trim_affix, 1, NULL, NULL },
    { "trimSuffix", 2, 2, f_trim_affix, 0, NULL, NULL },
    { "unixEpoch", 1, 1, f_epoch, 1000000000, NULL, NULL },
    { "unixEpochMillis", 1, 1, f_epoch, 1000000, NULL, NULL },
    { "unixEpochNanos", 1, 1, f_epoch, 1, NULL, NULL },
    { "upper", 1, 1, gotmpl_fn_case, GOTMPL_UPPER, NULL, NULL },
};

static const struct gotmpl_lang logql_lang = {
    funcs, sizeof funcs / sizeof funcs[0], field, NULL, 0, GOTMPL_FLAT | GOTMPL_EARLY_ARITY,
};

struct template *template_new(struct vg_str src, const char *name, struct vg_err *err)
{
    return (struct template *)gotmpl_new(&logql_lang, name, src, err);
}

void template_free(struct template *t)
{
    gotmpl_free((struct gotmpl *)t);
}

bool template_is_text(const struct template *t)
{
    return gotmpl_is_text((const struct gotmpl *)t);
}

int template_exec(const struct template *t, const struct template_data *d,
                  struct vg_arena *scratch, struct vg_buf *out, struct vg_err *err)
{
    return gotmpl_exec((const struct gotmpl *)t, (void *)d, scratch, out, err);
}
