/* slack: see slack.h. */
#include "slack.h"

#include "../../storage/base/vg_alloc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum field {
    F_NONE, F_STATUS, F_RECEIVER, F_GROUPKEY, F_EXTURL, F_GROUPLABEL, F_COMMONLABEL,
    F_COMMONANNOT, F_NALERTS, F_NFIRING, F_NRESOLVED,
};

struct action {
    enum field f;
    bool upper;
    char name[128]; /* label name for the map fields */
};

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    return p;
}

static bool word(const char **p, const char *end, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(end - *p) < n || memcmp(*p, w, n) != 0)
        return false;
    const char *q = *p + n;
    if (q < end && !isspace((unsigned char)*q) && *q != '.')
        return false;
    *p = q;
    return true;
}

/* Parses the inside of one {{ }} into a; false when unsupported. */
static bool parse_action(const char *p, const char *end, struct action *a)
{
    static const struct { const char *s; enum field f; } plain[] = {
        { ".Status", F_STATUS }, { ".Receiver", F_RECEIVER }, { ".GroupKey", F_GROUPKEY },
        { ".ExternalURL", F_EXTURL },
    };
    static const struct { const char *s; enum field f; } maps[] = {
        { ".GroupLabels.", F_GROUPLABEL }, { ".CommonLabels.", F_COMMONLABEL },
        { ".CommonAnnotations.", F_COMMONANNOT },
    };
    memset(a, 0, sizeof *a);
    p = skip_ws(p, end);
    while (end > p && isspace((unsigned char)end[-1]))
        end--;
    if (word(&p, end, "toUpper")) {
        a->upper = true;
        p = skip_ws(p, end);
    }
    if (word(&p, end, "len")) {
        p = skip_ws(p, end);
        size_t n = (size_t)(end - p);
        if (n == 7 && !memcmp(p, ".Alerts", 7))
            a->f = F_NALERTS;
        else if (n == 14 && !memcmp(p, ".Alerts.Firing", 14))
            a->f = F_NFIRING;
        else if (n == 16 && !memcmp(p, ".Alerts.Resolved", 16))
            a->f = F_NRESOLVED;
        return a->f != F_NONE;
    }
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if ((size_t)(end - p) == strlen(plain[i].s) && !memcmp(p, plain[i].s, (size_t)(end - p)))
            return (a->f = plain[i].f), true;
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
        size_t pl = strlen(maps[i].s), n = (size_t)(end - p);
        if (n <= pl || memcmp(p, maps[i].s, pl) != 0 || n - pl >= sizeof a->name)
            continue;
        for (size_t k = pl; k < n; k++)
            if (!isalnum((unsigned char)p[k]) && p[k] != '_')
                return false;
        memcpy(a->name, p + pl, n - pl);
        a->f = maps[i].f;
        return true;
    }
    return false;
}

/* Calls back for each literal run and action; returns 0 or VG_EINVAL. */
typedef void (*piece_fn)(void *ud, const char *lit, size_t n, const struct action *a);

static int walk(const char *t, piece_fn fn, void *ud, struct vg_err *err)
{
    const char *p = t;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            if (fn && *p)
                fn(ud, p, strlen(p), NULL);
            return 0;
        }
        if (fn && open > p)
            fn(ud, p, (size_t)(open - p), NULL);
        const char *close = strstr(open + 2, "}}");
        if (!close)
            return vg_err_set(err, VG_EINVAL, "template: unclosed action at offset %zu",
                              (size_t)(open - t));
        struct action a;
        if (!parse_action(open + 2, close, &a))
            return vg_err_set(err, VG_EINVAL,
                              "template: unsupported action \"%.*s\" at offset %zu (supported: "
                              ".Status .Receiver .GroupKey .ExternalURL .GroupLabels.x "
                              ".CommonLabels.x .CommonAnnotations.x len .Alerts[.Firing|"
                              ".Resolved], toUpper)",
                              (int)(close + 2 - open), open, (size_t)(open - t));
        if (fn)
            fn(ud, NULL, 0, &a);
        p = close + 2;
    }
}

int slack_template_check(const char *tmpl, struct vg_err *err)
{
    return walk(tmpl, NULL, NULL, err);
}

struct expand {
    const struct route_notification *n;
    const struct webhook_ctx *c;
    struct vg_buf *out;
};

static void put_common_value(struct vg_buf *b, const struct route_notification *n,
                             bool annotations, const char *name)
{
    struct label *common;
    size_t cnt = webhook_common(n, annotations, &common);
    if (!common) {
        b->failed = true;
        return;
    }
    struct vg_str v = labels_get(common, cnt, name);
    vg_buf_append(b, v.p, v.len);
    vg_free(common);
}

static void expand_piece(void *ud, const char *lit, size_t n, const struct action *a)
{
    struct expand *e = ud;
    if (!a) {
        vg_buf_append(e->out, lit, n);
        return;
    }
    size_t start = e->out->len;
    const struct route_notification *no = e->n;
    struct vg_str v;
    switch (a->f) {
    case F_STATUS: vg_buf_puts(e->out, webhook_status(no)); break;
    case F_RECEIVER: vg_buf_puts(e->out, no->receiver); break;
    case F_GROUPKEY: vg_buf_puts(e->out, no->group_key); break;
    case F_EXTURL: vg_buf_puts(e->out, e->c->external_url); break;
    case F_GROUPLABEL:
        v = labels_get(no->group_labels, no->ngroup_labels, a->name);
        vg_buf_append(e->out, v.p, v.len);
        break;
    case F_COMMONLABEL: put_common_value(e->out, no, false, a->name); break;
    case F_COMMONANNOT: put_common_value(e->out, no, true, a->name); break;
    case F_NALERTS: vg_buf_printf(e->out, "%zu", no->nalerts); break;
    case F_NFIRING: vg_buf_printf(e->out, "%zu", no->nfiring); break;
    case F_NRESOLVED: vg_buf_printf(e->out, "%zu", no->nalerts - no->nfiring); break;
    case F_NONE: break;
    }
    if (a->upper && !e->out->failed)
        for (size_t i = start; i < e->out->len; i++)
            e->out->p[i] = (char)toupper((unsigned char)e->out->p[i]);
}

void slack_template_expand(const char *tmpl, const struct route_notification *n,
                           const struct webhook_ctx *c, struct vg_buf *out)
{
    struct expand e = { n, c, out };
    walk(tmpl, expand_piece, &e, NULL);
}

static void put_label_list(struct vg_buf *b, const struct label *ls, size_t n,
                           const char *skip)
{
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (skip && vg_str_eq_c(ls[i].name, skip))
            continue;
        vg_buf_printf(b, "%s%.*s=\"%.*s\"", first ? "" : " ", (int)ls[i].name.len,
                      ls[i].name.p, (int)ls[i].value.len, ls[i].value.p);
        first = false;
    }
}

void slack_default_title(const struct route_notification *n, struct vg_buf *out)
{
    if (n->nfiring)
        vg_buf_printf(out, "[FIRING:%zu]", n->nfiring);
    else
        vg_buf_puts(out, "[RESOLVED]");
    struct vg_buf name;
    vg_buf_init(&name);
    put_common_value(&name, n, false, "alertname");
    if (name.len)
        vg_buf_printf(out, " %.*s", (int)name.len, name.p);
    vg_buf_free(&name);
    if (n->ngroup_labels) {
        vg_buf_puts(out, " (");
        put_label_list(out, n->group_labels, n->ngroup_labels, NULL);
        vg_buf_putc(out, ')');
    }
    if (n->escalation)
        vg_buf_puts(out, " [escalated]");
}

void slack_default_text(const struct route_notification *n, struct vg_buf *out)
{
    for (size_t i = 0; i < n->nalerts; i++) {
        const struct alert *a = &n->alerts[i];
        struct vg_str name = labels_get(a->labels, a->nlabels, "alertname");
        struct vg_str sum = labels_get(a->annotations, a->nannotations, "summary");
        if (!sum.p)
            sum = labels_get(a->annotations, a->nannotations, "description");
        vg_buf_printf(out, "%s*%s* %.*s", i ? "\n" : "", i < n->nfiring ? "firing" : "resolved",
                      (int)name.len, name.p ? name.p : "");
        if (sum.p)
            vg_buf_printf(out, ": %.*s", (int)sum.len, sum.p);
        vg_buf_puts(out, " `");
        put_label_list(out, a->labels, a->nlabels, "alertname");
        vg_buf_putc(out, '`');
    }
}

static void put_json_buf(struct vg_buf *out, struct vg_buf *s)
{
    vg_buf_json_str(out, s->p ? s->p : "", s->len);
}

void slack_render(const struct route_notification *n, const struct route_integration *it,
                  const struct webhook_ctx *c, struct vg_buf *out)
{
    struct vg_buf title, text;
    vg_buf_init(&title);
    vg_buf_init(&text);
    if (it->title)
        slack_template_expand(it->title, n, c, &title);
    else
        slack_default_title(n, &title);
    if (it->text)
        slack_template_expand(it->text, n, c, &text);
    else
        slack_default_text(n, &text);
    vg_buf_putc(out, '{');
    if (it->channel) {
        vg_buf_puts(out, "\"channel\":");
        vg_buf_json_str(out, it->channel, strlen(it->channel));
        vg_buf_putc(out, ',');
    }
    if (it->username) {
        vg_buf_puts(out, "\"username\":");
        vg_buf_json_str(out, it->username, strlen(it->username));
        vg_buf_putc(out, ',');
    }
    vg_buf_puts(out, "\"attachments\":[{\"fallback\":");
    put_json_buf(out, &title);
    vg_buf_printf(out, ",\"color\":\"%s\",\"title\":", n->nfiring ? "danger" : "good");
    put_json_buf(out, &title);
    vg_buf_puts(out, ",\"title_link\":");
    vg_buf_json_str(out, c->external_url, strlen(c->external_url));
    vg_buf_puts(out, ",\"text\":");
    put_json_buf(out, &text);
    vg_buf_puts(out, ",\"mrkdwn_in\":[\"text\"]}]}");
    if (title.failed || text.failed)
        out->failed = true;
    vg_buf_free(&title);
    vg_buf_free(&text);
}
