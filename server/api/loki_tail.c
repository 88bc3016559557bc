/* loki_tail: see loki_tail.h.
 *
 * The handler checks the handshake and the parameters on the worker thread and hands a
 * struct tail (heap, owned by the upgrade thread from then on) to the front end; the
 * upgrade thread (tail_run) parses the query again, sends the first frame and loops:
 * wait for a client frame for up to LOKI_TAIL_INTERVAL_MS, then one round of store
 * reads. The set of sent entries holds a 64-bit hash of (time, final labels, line) for
 * each entry sent at or after cursor - LOKI_TAIL_LATE_NS. */
#include "loki_tail.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../logql/engine.h"
#include "../logql/parser.h"
#include "loki.h"
#include "prometheus.h"
#include "websocket.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEND_TIMEOUT_MS 5000
#define MAX_CLIENT_FRAME 4096

struct sent {
    int64_t t;
    uint64_t h;
};

struct tail {
    struct vigil *v;
    char *query;
    size_t limit;
    int64_t start_ns, delay_ns;
    /* upgrade thread state */
    struct logql_expr *e;
    struct logql_limits lim;
    int64_t cursor;
    struct sent *sent;
    size_t nsent, capsent;
    struct vg_buf frame;
    size_t frame_entries;
};

static void tail_free(void *cls)
{
    struct tail *t = cls;
    if (!t)
        return;
    logql_expr_free(t->e);
    vg_free(t->sent);
    vg_buf_free(&t->frame);
    vg_free(t->query);
    vg_free(t);
}

/* ---- the sent set ---- */

static uint64_t entry_hash(const struct logql_stream *s, const struct logql_entry *e)
{
    uint64_t h = labels_hash(s->labels, s->nlabels) ^ ((uint64_t)e->t * 0x9E3779B97F4A7C15ULL);
    for (size_t i = 0; i < e->line.len; i++)
        h = (h ^ (unsigned char)e->line.p[i]) * 1099511628211ULL;
    return h;
}

static int cmp_sent(const void *a, const void *b)
{
    uint64_t x = ((const struct sent *)a)->h, y = ((const struct sent *)b)->h;
    return (x > y) - (x < y);
}

/* Keeps what may still be read again (t >= the late window) and sorts it by hash. */
static void sent_prune(struct tail *t)
{
    size_t w = 0;
    for (size_t i = 0; i < t->nsent; i++)
        if (t->sent[i].t >= t->cursor - LOKI_TAIL_LATE_NS)
            t->sent[w++] = t->sent[i];
    t->nsent = w;
    if (w > 1)
        qsort(t->sent, t->nsent, sizeof *t->sent, cmp_sent);
}

static bool sent_has(const struct tail *t, size_t sorted, uint64_t h)
{
    struct sent key = { 0, h };
    return sorted && bsearch(&key, t->sent, sorted, sizeof *t->sent, cmp_sent) != NULL;
}

static int sent_add(struct tail *t, int64_t ts, uint64_t h)
{
    if (t->nsent == t->capsent) {
        size_t cap = t->capsent ? t->capsent * 2 : 256;
        struct sent *ns = vg_realloc(t->sent, cap * sizeof *ns);
        if (!ns)
            return VG_ENOMEM;
        t->sent = ns;
        t->capsent = cap;
    }
    t->sent[t->nsent++] = (struct sent){ ts, h };
    return 0;
}

/* ---- frames ---- */

static void frame_begin(struct tail *t)
{
    vg_buf_reset(&t->frame);
    t->frame_entries = 0;
    vg_buf_puts(&t->frame, "{\"streams\":[");
}

/* Appends the streams of r with the entries not sent yet (in time order: r's streams
 * are walked backwards when backward) and remembers them as sent. */
static int frame_add(struct tail *t, const struct logql_result *r, bool backward)
{
    size_t sorted = t->nsent;
    for (size_t i = 0; i < r->nstreams; i++) {
        const struct logql_stream *s = &r->streams[i];
        size_t w = 0;
        for (size_t j = 0; j < s->nentries; j++) {
            const struct logql_entry *e = &s->entries[backward ? s->nentries - 1 - j : j];
            uint64_t h = entry_hash(s, e);
            if (sent_has(t, sorted, h))
                continue;
            if (w++ == 0) {
                vg_buf_puts(&t->frame, t->frame_entries ? ",{\"stream\":" : "{\"stream\":");
                prometheus_json_labels(&t->frame, s->labels, s->nlabels);
                vg_buf_puts(&t->frame, ",\"values\":[");
            } else {
                vg_buf_putc(&t->frame, ',');
            }
            vg_buf_printf(&t->frame, "[\"%lld\",", (long long)e->t);
            vg_buf_json_str(&t->frame, e->line.p, e->line.len);
            vg_buf_putc(&t->frame, ']');
            t->frame_entries++;
            if (e->t >= t->cursor - LOKI_TAIL_LATE_NS && sent_add(t, e->t, h) < 0)
                return VG_ENOMEM;
        }
        if (w)
            vg_buf_puts(&t->frame, "]}");
    }
    return vg_buf_failed(&t->frame) ? VG_ENOMEM : 0;
}

/* Sends the frame when it has entries. */
static int frame_send(struct tail *t, int fd, struct vg_err *err)
{
    if (t->frame_entries == 0)
        return 0;
    vg_buf_puts(&t->frame, "],\"dropped_entries\":null}");
    struct vg_buf out;
    vg_buf_init(&out);
    ws_frame_encode(&out, WS_OP_TEXT, t->frame.p, t->frame.len);
    int rc = vg_buf_failed(&t->frame) || vg_buf_failed(&out)
                 ? vg_err_set(err, VG_ENOMEM, "out of memory writing a tail frame")
                 : ws_send(fd, out.p, out.len, SEND_TIMEOUT_MS, err);
    vg_buf_free(&out);
    return rc;
}

/* ---- store reads ---- */

/* The entries of [from, to) (at most limit), forward or backward. */
static int read_window(struct tail *t, int64_t from, int64_t to, bool backward,
                       struct logql_result **r, struct vg_err *err)
{
    *r = NULL;
    if (to <= from)
        return 0;
    struct logql_params p = { .start_ns = from, .end_ns = to, .step_ns = 1000000000LL,
                              .backward = backward, .limit = t->limit };
    return logql_exec(t->v->logs, t->e, &p, &t->lim, r, err);
}

static int64_t newest(const struct logql_result *r)
{
    int64_t m = INT64_MIN;
    for (size_t i = 0; r && i < r->nstreams; i++)
        for (size_t j = 0; j < r->streams[i].nentries; j++)
            if (r->streams[i].entries[j].t > m)
                m = r->streams[i].entries[j].t;
    return m;
}

static size_t count_entries(const struct logql_result *r)
{
    size_t n = 0;
    for (size_t i = 0; r && i < r->nstreams; i++)
        n += r->streams[i].nentries;
    return n;
}

/* The first frame: the newest limit entries in [start, now - delay). */
static int first_round(struct tail *t, int fd, struct vg_err *err)
{
    int64_t to = loki_now_ns() - t->delay_ns;
    struct logql_result *r = NULL;
    int rc = read_window(t, t->start_ns, to, true, &r, err);
    t->cursor = to > t->start_ns ? to : t->start_ns;
    frame_begin(t);
    if (rc == 0 && r)
        rc = frame_add(t, r, true);
    logql_result_free(r);
    if (rc == 0)
        rc = frame_send(t, fd, err);
    return rc;
}

/* One round: late arrivals just before the cursor, then new entries after it. */
static int next_round(struct tail *t, int fd, struct vg_err *err)
{
    int64_t to = loki_now_ns() - t->delay_ns;
    sent_prune(t);
    frame_begin(t);
    struct logql_result *late = NULL, *fresh = NULL;
    int64_t late_from = t->cursor - LOKI_TAIL_LATE_NS;
    if (late_from < t->start_ns)
        late_from = t->start_ns;
    int rc = read_window(t, late_from, t->cursor, false, &late, err);
    if (rc == 0)
        rc = read_window(t, t->cursor, to, false, &fresh, err);
    if (rc == 0 && late)
        rc = frame_add(t, late, false);
    if (rc == 0 && fresh)
        rc = frame_add(t, fresh, false);
    if (rc == 0 && to > t->cursor) {
        if (count_entries(fresh) >= t->limit) {
            /* Full page: continue from its newest entry (always a step forward). */
            int64_t n = newest(fresh);
            t->cursor = n > t->cursor ? n : t->cursor + 1;
        } else {
            t->cursor = to;
        }
    }
    logql_result_free(late);
    logql_result_free(fresh);
    if (rc == 0)
        rc = frame_send(t, fd, err);
    return rc;
}

/* ---- the connection ---- */

static void say_close(int fd, enum ws_close_code code, const char *reason)
{
    struct vg_buf b;
    struct vg_err ignored;
    vg_buf_init(&b);
    ws_close_encode(&b, code, reason);
    if (!vg_buf_failed(&b))
        (void)ws_send(fd, b.p, b.len, 1000, &ignored);
    vg_buf_free(&b);
}

/* Handles one client frame: 1 to go on, 0 when the client closed. */
static int client_frame(int fd, const struct ws_frame *f, struct vg_err *err)
{
    if (f->op == WS_OP_CLOSE) {
        /* Echo the client's status code, as section 5.5.1 suggests. */
        enum ws_close_code code = f->len >= 2
                                      ? (enum ws_close_code)(f->payload[0] << 8 | f->payload[1])
                                      : WS_CLOSE_NORMAL;
        say_close(fd, code, "");
        return 0;
    }
    if (f->op == WS_OP_PING) {
        struct vg_buf b;
        vg_buf_init(&b);
        ws_frame_encode(&b, WS_OP_PONG, f->payload, f->len);
        int rc = vg_buf_failed(&b) ? vg_err_set(err, VG_ENOMEM, "out of memory")
                                   : ws_send(fd, b.p, b.len, SEND_TIMEOUT_MS, err);
        vg_buf_free(&b);
        return rc < 0 ? rc : 1;
    }
    return 1;
}

static void tail_run(void *cls, struct http_upgraded *u)
{
    struct tail *t = cls;
    struct vg_err err;
    vg_err_clear(&err);
    struct ws_reader rd;
    int rc = ws_reader_init(&rd, MAX_CLIENT_FRAME, u->extra, u->nextra);
    if (rc == 0) {
        t->e = logql_parse(t->query, strlen(t->query), &err);
        rc = t->e ? 0 : err.code;
    }
    loki_limits(t->v, &t->lim);
    if (rc == 0)
        rc = first_round(t, u->fd, &err);
    while (rc == 0) {
        if (http_upgraded_stopping(u)) {
            say_close(u->fd, WS_CLOSE_GOING_AWAY, "server stopping");
            break;
        }
        struct ws_frame f;
        int got = ws_reader_next(&rd, u->fd, LOKI_TAIL_INTERVAL_MS, &f, &err);
        if (got < 0) {
            if (got != VG_EIO) /* a protocol error; VG_EIO: the client is gone */
                say_close(u->fd, got == VG_ETOOLARGE ? WS_CLOSE_TOO_BIG : WS_CLOSE_PROTOCOL_ERROR,
                          err.msg);
            break;
        }
        if (got > 0) {
            int c = client_frame(u->fd, &f, &err);
            if (c <= 0) {
                rc = c;
                break;
            }
            continue; /* read what else is pending before the next round */
        }
        rc = next_round(t, u->fd, &err);
    }
    if (rc < 0 && rc != VG_EIO) {
        vg_log(VG_LOG_WARN, "loki_api", "tail ended", "error", err.msg, NULL);
        say_close(u->fd, WS_CLOSE_SERVER_ERROR, err.msg);
    }
    ws_reader_free(&rd);
    tail_free(t);
}

/* ---- the handshake ---- */

/* True when the comma-separated header value h lists token (any case). */
static bool header_has_token(const char *h, const char *token)
{
    size_t tl = strlen(token);
    while (h && *h) {
        h += strspn(h, " \t,");
        size_t n = strcspn(h, ",");
        size_t e = n;
        while (e && (h[e - 1] == ' ' || h[e - 1] == '\t'))
            e--;
        if (e == tl && !strncasecmp(h, token, tl))
            return true;
        h += n;
    }
    return false;
}

static const char *header(struct http_request *req, const char *name)
{
    return req->conn ? http_header_get(req, name) : NULL;
}

static int check_handshake(struct http_request *req, struct vg_err *err)
{
    if (!header_has_token(header(req, "Connection"), "upgrade"))
        return vg_err_set(err, VG_EINVAL, "websocket: the client is not using the websocket "
                                          "protocol: 'upgrade' token not found in 'Connection' "
                                          "header");
    if (!header_has_token(header(req, "Upgrade"), "websocket"))
        return vg_err_set(err, VG_EINVAL, "websocket: the client is not using the websocket "
                                          "protocol: 'websocket' token not found in 'Upgrade' "
                                          "header");
    const char *ver = header(req, "Sec-WebSocket-Version");
    if (!ver || strcmp(ver, "13") != 0)
        return vg_err_set(err, VG_EINVAL, "websocket: unsupported version: 13 not found in "
                                          "'Sec-Websocket-Version' header");
    return 0;
}

static int tail_params(struct http_request *req, struct tail *t, struct vg_err *err)
{
    const char *s = http_arg_get(req, "delay_for");
    int64_t delay = 0;
    if (s && *s) {
        char *end;
        long long d = strtoll(s, &end, 10);
        if (*end || end == s)
            return vg_err_set(err, VG_EINVAL, "strconv.Atoi: parsing \"%.64s\": invalid syntax", s);
        delay = d;
    }
    if (delay > LOKI_TAIL_MAX_DELAY_S)
        return vg_err_set(err, VG_EINVAL, "delay_for can't be greater than %d",
                          LOKI_TAIL_MAX_DELAY_S);
    t->delay_ns = delay > 0 ? delay * 1000000000LL : 0;
    if (loki_limit(req, LOKI_DEFAULT_LIMIT, &t->limit, err) < 0)
        return VG_EINVAL;
    if (t->limit > LOKI_TAIL_MAX_FRAME_ENTRIES)
        t->limit = LOKI_TAIL_MAX_FRAME_ENTRIES;
    s = http_arg_get(req, "start");
    t->start_ns = loki_now_ns() - LOKI_DEFAULT_SINCE_NS;
    if (s && *s && loki_parse_time(s, &t->start_ns, err) < 0)
        return VG_EINVAL;
    const char *q = http_arg_get(req, "query");
    struct logql_expr *e = logql_parse(q ? q : "", q ? strlen(q) : 0, err);
    if (!e)
        return err->code;
    bool log = logql_is_log_query(e->root);
    logql_expr_free(e);
    if (!log)
        return vg_err_set(err, VG_EINVAL, "tail is only supported for log queries");
    t->query = vg_strdup(q);
    return t->query ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
}

void loki_tail(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct tail *t = vg_calloc(1, sizeof *t);
    char *accept = vg_arena_alloc(req->arena, WS_ACCEPT_LEN + 1);
    int rc = t && accept ? 0 : vg_err_set(&err, VG_ENOMEM, "out of memory");
    if (rc == 0)
        rc = tail_params(req, t, &err);
    if (rc == 0)
        rc = check_handshake(req, &err);
    if (rc == 0)
        rc = ws_accept_key(header(req, "Sec-WebSocket-Key"), accept, &err);
    if (rc < 0) {
        tail_free(t);
        loki_resp_error(resp, &err);
        return;
    }
    t->v = v;
    vg_buf_init(&t->frame);
    resp->status = 101;
    http_resp_header(resp, "Upgrade", "websocket");
    http_resp_header(resp, "Sec-WebSocket-Accept", accept);
    resp->upgrade = tail_run;
    resp->upgrade_free = tail_free;
    resp->upgrade_cls = t;
}
