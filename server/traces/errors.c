/* errors: see errors.h. The normalisers write into a bounded output (struct out) and
 * never read past their input's length; both are fuzzable pure functions. */
#include "errors.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- normalisation ---- */

struct out {
    char *p;
    size_t len, cap; /* cap excludes the NUL */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (n > o->cap - o->len)
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void putc_(struct out *o, char c)
{
    put(o, &c, 1);
}

#define PUTS(o, lit) put((o), (lit), sizeof(lit) - 1)

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Characters that may sit inside a word that is classified as a whole (ids, e-mails). */
static bool is_word(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-' || c == '+' || c == '%' || c == '@';
}

static bool is_email(const char *p, size_t n)
{
    const char *at = memchr(p, '@', n);
    if (!at || at == p || memchr(at + 1, '@', (size_t)(p + n - at - 1)))
        return false;
    const char *dom = at + 1;
    size_t dn = (size_t)(p + n - dom);
    const char *dot = memchr(dom, '.', dn);
    if (!dot || dot == dom || dot == p + n - 1)
        return false;
    for (size_t i = 0; i < dn; i++)
        if (!is_alnum(dom[i]) && dom[i] != '.' && dom[i] != '-')
            return false;
    return true;
}

static bool is_uuid(const char *p, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? p[i] != '-' : !is_hex(p[i]))
            return false;
    }
    return true;
}

/* One alphanumeric run inside a word. */
static void put_run(struct out *o, const char *p, size_t n)
{
    if (n > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        size_t i = 2;
        while (i < n && is_hex(p[i]))
            i++;
        if (i == n) {
            PUTS(o, "<hex>");
            return;
        }
    }
    if (n >= 8) {
        bool hex = true, digit = false;
        for (size_t i = 0; i < n && hex; i++) {
            hex = is_hex(p[i]);
            digit |= is_digit(p[i]);
        }
        if (hex && digit) {
            PUTS(o, "<hex>");
            return;
        }
    }
    for (size_t i = 0; i < n;) {
        if (!is_digit(p[i])) {
            putc_(o, p[i++]);
            continue;
        }
        while (i < n && is_digit(p[i]))
            i++;
        PUTS(o, "<num>");
    }
}

static void put_word(struct out *o, const char *p, size_t n)
{
    if (is_email(p, n)) {
        PUTS(o, "<email>");
        return;
    }
    if (is_uuid(p, n)) {
        PUTS(o, "<uuid>");
        return;
    }
    for (size_t i = 0; i < n;) {
        if (!is_alnum(p[i])) {
            putc_(o, p[i++]);
            continue;
        }
        size_t j = i;
        while (j < n && is_alnum(p[j]))
            j++;
        put_run(o, p + i, j - i);
        i = j;
    }
}

size_t errors_normalise_message(struct vg_str msg, char *buf, size_t cap)
{
    struct out o = { buf, 0, cap - 1 };
    const char *p = msg.p;
    size_t n = msg.len;
    for (size_t i = 0; i < n && o.len < o.cap;) {
        char c = p[i];
        if (c == '\'' || c == '"' || c == '`') {
            const char *close = i + 1 < n ? memchr(p + i + 1, c, n - i - 1) : NULL;
            if (close) {
                PUTS(&o, "<str>");
                i = (size_t)(close - p) + 1;
                continue;
            }
        }
        if (is_alnum(c)) {
            size_t j = i;
            while (j < n && is_word(p[j]))
                j++;
            while (j > i && !is_alnum(p[j - 1])) /* "found." ends the sentence */
                j--;
            put_word(&o, p + i, j - i);
            i = j;
            continue;
        }
        putc_(&o, c);
        i++;
    }
    buf[o.len] = '\0';
    return o.len;
}

static bool starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

static bool is_frame(const char *p, size_t n)
{
    if (starts(p, n, "at ") || starts(p, n, "File \""))
        return true;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == ':' && is_digit(p[i + 1]))
            return true;
    return false;
}

static void put_frame(struct out *o, const char *p, size_t n)
{
    size_t start = o->len;
    for (size_t i = 0; i < n;) {
        if (p[i] == ':' && i + 1 < n && is_digit(p[i + 1])) {
            for (i++; i < n && is_digit(p[i]); i++)
                ;
            continue;
        }
        if (starts(p + i, n - i, "line ") && i + 5 < n && is_digit(p[i + 5])) {
            PUTS(o, "line");
            for (i += 5; i < n && is_digit(p[i]); i++)
                ;
            continue;
        }
        if (starts(p + i, n - i, "+0x")) {
            for (i += 3; i < n && is_hex(p[i]); i++)
                ;
            continue;
        }
        if (starts(p + i, n - i, "0x") && i + 2 < n && is_hex(p[i + 2])) {
            PUTS(o, "<hex>");
            for (i += 2; i < n && is_hex(p[i]); i++)
                ;
            continue;
        }
        putc_(o, p[i++]);
    }
    while (o->len > start && (o->p[o->len - 1] == ' ' || o->p[o->len - 1] == '\t'))
        o->len--;
}

size_t errors_top_frames(struct vg_str stack, char *buf, size_t cap)
{
    struct out o = { buf, 0, cap - 1 };
    const char *p = stack.p, *end = stack.p + stack.len;
    bool python = false;
    for (const char *q = p; q < end; q++) {
        if (!(q = memchr(q, 'T', (size_t)(end - q))))
            break;
        if (starts(q, (size_t)(end - q), "Traceback (most recent call last)")) {
            python = true;
            break;
        }
    }
    struct vg_str frames[ERRORS_TOP_FRAMES];
    size_t nf = 0, seen = 0;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *s = p;
        while (s < le && (*s == ' ' || *s == '\t'))
            s++;
        const char *e = le;
        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s && is_frame(s, (size_t)(e - s))) {
            /* Python: keep the last frames (a ring); others: the first. */
            if (python)
                frames[seen % ERRORS_TOP_FRAMES] = (struct vg_str){ s, (size_t)(e - s) };
            else if (nf < ERRORS_TOP_FRAMES)
                frames[nf] = (struct vg_str){ s, (size_t)(e - s) };
            seen++;
            nf = seen < ERRORS_TOP_FRAMES ? seen : ERRORS_TOP_FRAMES;
            if (!python && seen >= ERRORS_TOP_FRAMES)
                break;
        }
        p = nl ? nl + 1 : NULL;
    }
    size_t first = python && seen > ERRORS_TOP_FRAMES ? seen % ERRORS_TOP_FRAMES : 0;
    for (size_t k = 0; k < nf; k++) {
        if (k)
            putc_(&o, '\n');
        const struct vg_str *f = &frames[(first + k) % ERRORS_TOP_FRAMES];
        put_frame(&o, f->p, f->len);
    }
    buf[o.len] = '\0';
    return o.len;
}

uint64_t errors_fingerprint(struct vg_str type, struct vg_str message, struct vg_str frames)
{
    uint64_t h = 1469598103934665603ULL;
    const struct vg_str parts[3] = { type, message, frames };
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < parts[k].len; i++)
            h = (h ^ (unsigned char)parts[k].p[i]) * 1099511628211ULL;
        if (k < 2)
            h = (h ^ 0) * 1099511628211ULL;
    }
    return h;
}

/* ---- pending occurrences ---- */

#define NHEADS 1024
#define TRACE_HEX 32

struct pend {
    struct pend *next;
    uint64_t fp, hour, count;
    int64_t t_ms;                 /* latest occurrence */
    char trace_id[TRACE_HEX + 1]; /* of the latest occurrence that had one */
    struct vg_str type, message, frames, service; /* bytes follow the struct */
};

struct errors {
    struct errorstore *store;
    pthread_mutex_t mu; /* guards heads, npending, st */
    struct pend *heads[NHEADS];
    size_t npending;
    struct errors_stats st;
};

struct errors *errors_new(const struct errors_opts *o, struct vg_err *err)
{
    struct errors *e = vg_calloc(1, sizeof *e);
    if (!e) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    struct errorstore_opts so = { .dir = o->dir, .max_groups = o->max_groups,
                                  .no_sync = o->no_sync,
                                  .sync_interval_ms = o->sync_interval_ms };
    if (!(e->store = errorstore_open(&so, err))) {
        vg_free(e);
        return NULL;
    }
    pthread_mutex_init(&e->mu, NULL);
    return e;
}

static void free_list(struct pend *p)
{
    for (struct pend *nx; p; p = nx) {
        nx = p->next;
        vg_free(p);
    }
}

void errors_free(struct errors *e)
{
    if (!e)
        return;
    struct vg_err err;
    if (errors_flush(e, &err) < 0)
        vg_log(VG_LOG_WARN, "errors", "final flush of error groups failed", "error", err.msg,
               NULL);
    for (size_t i = 0; i < NHEADS; i++)
        free_list(e->heads[i]);
    errorstore_close(e->store);
    pthread_mutex_destroy(&e->mu);
    vg_free(e);
}

struct errorstore *errors_store(struct errors *e)
{
    return e->store;
}

void errors_stats(struct errors *e, struct errors_stats *st)
{
    pthread_mutex_lock(&e->mu);
    *st = e->st;
    pthread_mutex_unlock(&e->mu);
}

static char *copy_str(char *p, struct vg_str s, struct vg_str *out)
{
    if (s.len)
        memcpy(p, s.p, s.len);
    *out = (struct vg_str){ p, s.len };
    return p + s.len;
}

/* One occurrence, normalised and fingerprinted, into the pending set. */
static void add(struct errors *e, struct vg_str type, struct vg_str message,
                struct vg_str stack, struct vg_str service, const char *trace_hex,
                int64_t t_ms)
{
    char nmsg[ERRORS_MAX_MESSAGE], frames[ERRORS_MAX_FRAMES];
    struct vg_str nm = { nmsg, errors_normalise_message(message, nmsg, sizeof nmsg) };
    struct vg_str fr = { frames, errors_top_frames(stack, frames, sizeof frames) };
    if (type.len > ERRORSTORE_MAX_TEXT)
        type.len = ERRORSTORE_MAX_TEXT;
    if (message.len > ERRORS_MAX_MESSAGE)
        message.len = ERRORS_MAX_MESSAGE;
    if (service.len > 256)
        service.len = 256;
    uint64_t fp = errors_fingerprint(type, nm, fr);
    uint64_t hour = t_ms <= 0 ? 0 : (uint64_t)(t_ms / ERRORSTORE_HOUR_MS);
    uint64_t h = fp ^ (hour * 0x9E3779B97F4A7C15ULL);
    for (size_t i = 0; i < service.len; i++)
        h = (h ^ (unsigned char)service.p[i]) * 1099511628211ULL;
    pthread_mutex_lock(&e->mu);
    e->st.occurrences++;
    struct pend **head = &e->heads[h % NHEADS], *p;
    for (p = *head; p; p = p->next)
        if (p->fp == fp && p->hour == hour && vg_str_eq(p->service, service))
            break;
    if (!p) {
        if (e->npending >= ERRORS_MAX_PENDING ||
            !(p = vg_malloc(sizeof *p + type.len + message.len + fr.len + service.len))) {
            e->st.dropped_pending++;
            pthread_mutex_unlock(&e->mu);
            return;
        }
        memset(p, 0, sizeof *p);
        char *d = (char *)(p + 1);
        d = copy_str(d, type, &p->type);
        d = copy_str(d, message, &p->message);
        d = copy_str(d, fr, &p->frames);
        copy_str(d, service, &p->service);
        p->fp = fp;
        p->hour = hour;
        p->t_ms = t_ms;
        p->next = *head;
        *head = p;
        e->npending++;
    }
    p->count++;
    if (t_ms >= p->t_ms) {
        p->t_ms = t_ms;
        if (trace_hex)
            memcpy(p->trace_id, trace_hex, TRACE_HEX + 1);
    } else if (trace_hex && !p->trace_id[0]) {
        memcpy(p->trace_id, trace_hex, TRACE_HEX + 1);
    }
    pthread_mutex_unlock(&e->mu);
}

static void hex_id(char *out, const uint8_t *id)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < SPAN_TRACE_ID_LEN; i++) {
        out[2 * i] = d[id[i] >> 4];
        out[2 * i + 1] = d[id[i] & 15];
    }
    out[TRACE_HEX] = '\0';
}

static struct vg_str attr(const struct span_attr *a, size_t n, const char *key)
{
    struct vg_str k = vg_str_c(key);
    for (size_t i = 0; i < n; i++)
        if (a[i].type == SPAN_VAL_STRING && vg_str_eq(a[i].key, k))
            return a[i].v.s;
    return (struct vg_str){ "", 0 };
}

void errors_observe_spans(struct errors *e, const struct span *spans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct span *s = &spans[i];
        for (size_t k = 0; k < s->nevents; k++) {
            const struct span_event *ev = &s->events[k];
            if (!vg_str_eq(ev->name, VG_STR("exception")))
                continue;
            char tid[TRACE_HEX + 1];
            hex_id(tid, s->trace_id);
            add(e, attr(ev->attrs, ev->nattrs, "exception.type"),
                attr(ev->attrs, ev->nattrs, "exception.message"),
                attr(ev->attrs, ev->nattrs, "exception.stacktrace"), s->service, tid,
                (ev->time_ns ? ev->time_ns : s->end_ns) / 1000000);
        }
    }
}

static struct vg_str find(const struct label *ls, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (vg_str_eq_c(ls[i].name, name))
            return ls[i].value;
    return (struct vg_str){ NULL, 0 };
}

static bool error_word(struct vg_str v)
{
    static const char *const words[] = { "error", "err", "critical", "crit", "fatal",
                                         "panic", "emerg", "emergency", "alert" };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (v.len == strlen(words[i]) && strncasecmp(v.p, words[i], v.len) == 0)
            return true;
    return false;
}

static bool error_level(const struct label *ls, size_t n)
{
    static const char *const names[] = { "detected_level", "level", "severity_text" };
    for (size_t i = 0; i < 3; i++) {
        struct vg_str v = find(ls, n, names[i]);
        if (v.p)
            return error_word(v);
    }
    struct vg_str num = find(ls, n, "severity_number");
    if (num.p && num.len > 0 && num.len < 4) {
        int x = 0;
        for (size_t i = 0; i < num.len; i++)
            x = is_digit(num.p[i]) ? x * 10 + (num.p[i] - '0') : -1000;
        return x >= 17;
    }
    return false;
}

/* A trace id as 32 lowercase hex digits, shorter ones left-padded with zeros. */
static bool trace_hex(struct vg_str v, char *out)
{
    if (!v.p || v.len == 0 || v.len > TRACE_HEX)
        return false;
    memset(out, '0', TRACE_HEX - v.len);
    for (size_t i = 0; i < v.len; i++) {
        char c = v.p[i];
        if (!is_hex(c))
            return false;
        out[TRACE_HEX - v.len + i] = (char)(c >= 'A' && c <= 'F' ? c + 32 : c);
    }
    out[TRACE_HEX] = '\0';
    return true;
}

void errors_observe_logs(struct errors *e, const struct logstore_stream_in *streams, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct logstore_stream_in *st = &streams[i];
        bool stream_error = error_level(st->labels, st->nlabels);
        struct vg_str service = find(st->labels, st->nlabels, "service_name");
        if (!service.p)
            service = find(st->labels, st->nlabels, "service");
        if (!service.p)
            service = find(st->labels, st->nlabels, "job");
        if (!service.p)
            service = (struct vg_str){ "", 0 };
        for (size_t k = 0; k < st->nentries; k++) {
            const struct lentry *en = &st->entries[k];
            char tid[TRACE_HEX + 1];
            struct vg_str t = find(en->meta, en->nmeta, "trace_id");
            if (!t.p)
                t = find(en->meta, en->nmeta, "traceID");
            if (!trace_hex(t, tid))
                continue;
            if (!error_level(en->meta, en->nmeta) && !stream_error)
                continue;
            struct vg_str type = find(en->meta, en->nmeta, "exception_type");
            struct vg_str msg = find(en->meta, en->nmeta, "exception_message");
            struct vg_str stack = find(en->meta, en->nmeta, "exception_stacktrace");
            add(e, type.p ? type : VG_STR("log"), msg.p ? msg : en->line,
                stack.p ? stack : (struct vg_str){ "", 0 }, service, tid, en->t / 1000000);
        }
    }
}

int errors_flush(struct errors *e, struct vg_err *err)
{
    struct pend *all = NULL;
    size_t n = 0;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < NHEADS; i++)
        for (struct pend *p = e->heads[i], *nx; p; p = nx) {
            nx = p->next;
            p->next = all;
            all = p;
            n++;
        }
    memset(e->heads, 0, sizeof e->heads);
    e->npending = 0;
    pthread_mutex_unlock(&e->mu);
    if (n == 0)
        return 0;
    int rc;
    struct errorstore_record_result res;
    struct errorstore_occurrence *occ = vg_malloc(n * sizeof *occ);
    if (!occ) {
        rc = vg_err_set(err, VG_ENOMEM, "out of memory flushing error groups");
    } else {
        size_t k = 0;
        for (struct pend *p = all; p; p = p->next)
            occ[k++] = (struct errorstore_occurrence){
                .fingerprint = p->fp, .type = p->type, .message = p->message,
                .frames = p->frames, .service = p->service,
                .trace_id = vg_str_c(p->trace_id), .t_ms = p->t_ms, .count = p->count,
            };
        rc = errorstore_record(e->store, occ, n, &res, err);
    }
    vg_free(occ);
    free_list(all);
    pthread_mutex_lock(&e->mu);
    if (rc < 0)
        e->st.flush_failures++;
    else
        e->st.dropped_full += res.dropped_full;
    pthread_mutex_unlock(&e->mu);
    return rc;
}
