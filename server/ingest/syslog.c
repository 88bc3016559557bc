/* syslog: see syslog.h for the label rule, durability and metrics.
 *
 * Data flow: a receiving thread (syslog-udp or syslog-tcp) frames and parses each
 * message with its own parse arena, turns it into labels, metadata and a line, and
 * copies that into the current batch under s->mu. The flusher (syslog-flush) swaps the
 * two batches under the lock and writes the full one with one logstore_push outside it,
 * so a slow synchronous write never stalls the sockets: receivers keep filling the
 * other batch meanwhile (up to the overload bound). Entries of one batch are grouped
 * into streams by sorting on (label hash, labels, arrival order), which keeps each
 * stream's entries in arrival order.
 *
 * Locking: s->mu guards the batches, s->cur, the flush request counters and stopping;
 * s->cv wakes the flusher, s->done wakes syslog_flush callers. Sockets, connections and
 * parse arenas belong to their thread alone. */
#include "syslog.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/tsdb/labels.h"
#include "../metrics.h"
#include "../netaddr.h"
#include "syslog_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH_ENTRIES ((size_t)1000)
#define BATCH_BYTES ((size_t)1 << 20)
#define OVERLOAD_FACTOR ((size_t)8)
#define MAX_FUTURE_NS (10LL * 60 * 1000000000LL)
#define TCP_READ_BYTES 65536
#define UDP_DRAIN 64      /* datagrams read per wake before polling again */
#define TCP_READS 16      /* reads per connection per wake, for fairness */
#define COMPLAIN_MS 60000 /* one log line per minute per kind of client trouble */

enum field { F_HOSTNAME, F_APP_NAME, F_FACILITY, F_SEVERITY, F_LEVEL, F_PROC_ID, F_MSG_ID,
             F_COUNT };
static const char *const field_names[F_COUNT] = {
    "hostname", "app_name", "facility", "severity", "level", "proc_id", "msg_id",
};

/* One message waiting in a batch; every pointer is into the batch's arena (or static). */
struct pending {
    int64_t t;
    uint64_t hash;
    uint32_t seq;
    uint32_t nlabels, nmeta;
    struct label *labels; /* sorted */
    struct label *meta;
    struct vg_str line;
};

struct batch {
    struct vg_arena *arena;
    struct pending *v;
    size_t n, cap;
    size_t bytes;
};

struct syslog_server {
    struct vigil *v;
    unsigned label_mask; /* bit per enum field: a stream label, else metadata */
    size_t max_msg;
    int64_t idle_ms, flush_ms;
    size_t max_conns;
    bool use_msg_time;

    int udp_fd, tcp_fd;
    uint16_t udp_port, tcp_port;
    int stop_pipe[2];
    pthread_t udp_thr, tcp_thr, flush_thr;
    bool udp_started, tcp_started, flush_started;

    pthread_mutex_t mu;
    pthread_cond_t cv, done;
    struct batch b[2];
    int cur;
    uint64_t flush_req, flushed;
    bool stopping;

    struct metric_family *received, *stored, *unparsable, *dropped, *future, *conns, *open;
    struct vg_complaint store_complaint, socket_complaint;
};

/* Per receiving thread: the parse arena and the cached local UTC offset. */
struct receiver {
    struct syslog_server *s;
    const char *transport;
    struct vg_arena *arena;
    int64_t tz_minute;
    int32_t tz_off;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drop(struct syslog_server *s, const char *reason, uint64_t n)
{
    if (n)
        metric_add(s->dropped, (double)n, reason);
}

/* ---- turning a parsed message into an entry ---- */

/* Offset of the local zone, recomputed once a minute (zone changes are rare). */
static int32_t local_offset(struct receiver *r, int64_t now)
{
    time_t sec = (time_t)(now / 1000000000LL);
    if (sec / 60 != r->tz_minute) {
        struct tm tm;
        r->tz_off = localtime_r(&sec, &tm) ? (int32_t)tm.tm_gmtoff : 0;
        r->tz_minute = sec / 60;
    }
    return r->tz_off;
}

/* "sd_<id>_<name>" with bytes outside [A-Za-z0-9_] made '_'. */
static struct vg_str sd_meta_name(struct vg_arena *a, const struct syslog_sd_param *p)
{
    size_t n = 3 + p->id.len + 1 + p->name.len;
    char *d = vg_arena_alloc(a, n);
    if (!d)
        return (struct vg_str){ NULL, 0 };
    memcpy(d, "sd_", 3);
    memcpy(d + 3, p->id.p, p->id.len);
    d[3 + p->id.len] = '_';
    memcpy(d + 4 + p->id.len, p->name.p, p->name.len);
    for (size_t i = 3; i < n; i++) {
        char c = d[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            d[i] = '_';
    }
    return (struct vg_str){ d, n };
}

static struct vg_str cstr_or_empty(const char *s)
{
    return s ? vg_str_c(s) : (struct vg_str){ NULL, 0 };
}

/* Fills labels (job first, then the chosen fields; sorted) and meta. false when the
 * parse arena is out of memory. */
static bool build(const struct syslog_server *s, struct vg_arena *a, const struct syslog_msg *m,
                  struct label *labels, size_t *nl, struct label *meta, size_t *nm)
{
    *nl = *nm = 0;
    labels[(*nl)++] = (struct label){ VG_STR("job"), VG_STR("syslog") };
    if (m->format == SYSLOG_RAW) {
        meta[(*nm)++] = (struct label){ VG_STR("parse_error"),
                                        vg_str_c(syslog_error_name(m->error)) };
        return true;
    }
    struct vg_str val[F_COUNT] = {
        [F_HOSTNAME] = m->hostname,
        [F_APP_NAME] = m->app_name,
        [F_FACILITY] = cstr_or_empty(syslog_facility_name(m->facility)),
        [F_SEVERITY] = cstr_or_empty(syslog_severity_name(m->severity)),
        [F_LEVEL] = cstr_or_empty(syslog_level_name(m->severity)),
        [F_PROC_ID] = m->procid,
        [F_MSG_ID] = m->msgid,
    };
    for (int f = 0; f < F_COUNT; f++) {
        if (!val[f].len)
            continue;
        struct label l = { vg_str_c(field_names[f]), val[f] };
        if (s->label_mask & (1u << f))
            labels[(*nl)++] = l;
        else if (f != F_LEVEL)
            meta[(*nm)++] = l;
    }
    for (size_t i = 0; i < m->nsd; i++) {
        struct vg_str name = sd_meta_name(a, &m->sd[i]);
        if (!name.p)
            return false;
        meta[(*nm)++] = (struct label){ name, m->sd[i].value };
    }
    labels_sort(labels, *nl);
    return true;
}

static bool copy_str(struct vg_arena *a, struct vg_str *s)
{
    if (!s->len)
        return true;
    char *d = vg_arena_alloc(a, s->len);
    if (!d)
        return false;
    memcpy(d, s->p, s->len);
    s->p = d;
    return true;
}

static bool copy_labels(struct vg_arena *a, const struct label *src, size_t n, struct label **out)
{
    struct label *d = vg_arena_alloc(a, (n ? n : 1) * sizeof *d);
    if (!d)
        return false;
    for (size_t i = 0; i < n; i++) {
        d[i] = src[i];
        if (!copy_str(a, &d[i].name) || !copy_str(a, &d[i].value))
            return false;
    }
    *out = d;
    return true;
}

/* Adds one entry to the current batch. The caller holds s->mu. */
static bool batch_add(struct batch *b, int64_t t, uint64_t hash, const struct label *labels,
                      size_t nl, const struct label *meta, size_t nm, struct vg_str line,
                      size_t bytes)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct pending *v = vg_realloc(b->v, cap * sizeof *v);
        if (!v)
            return false;
        b->v = v;
        b->cap = cap;
    }
    struct pending *p = &b->v[b->n];
    *p = (struct pending){ .t = t, .hash = hash, .seq = (uint32_t)b->n,
                           .nlabels = (uint32_t)nl, .nmeta = (uint32_t)nm, .line = line };
    if (!copy_labels(b->arena, labels, nl, &p->labels) ||
        !copy_labels(b->arena, meta, nm, &p->meta) || !copy_str(b->arena, &p->line))
        return false;
    b->n++;
    b->bytes += bytes;
    return true;
}

static void enqueue(struct receiver *r, const struct syslog_msg *m, int64_t now)
{
    struct syslog_server *s = r->s;
    struct label labels[1 + F_COUNT];
    struct label meta[F_COUNT + SYSLOG_MAX_SD_PARAMS + 1];
    size_t nl, nm;
    if (!build(s, r->arena, m, labels, &nl, meta, &nm)) {
        drop(s, "out_of_memory", 1);
        return;
    }
    int64_t t = now;
    if (s->use_msg_time && m->has_time) {
        if (m->time_ns > now + MAX_FUTURE_NS)
            metric_add(s->future, 1);
        else
            t = m->time_ns;
    }
    size_t bytes = m->msg.len;
    for (size_t i = 0; i < nl; i++)
        bytes += labels[i].name.len + labels[i].value.len;
    for (size_t i = 0; i < nm; i++)
        bytes += meta[i].name.len + meta[i].value.len;
    uint64_t hash = labels_hash(labels, nl);

    pthread_mutex_lock(&s->mu);
    struct batch *b = &s->b[s->cur];
    const char *why = NULL;
    if (b->n >= BATCH_ENTRIES * OVERLOAD_FACTOR || b->bytes >= BATCH_BYTES * OVERLOAD_FACTOR)
        why = "overload";
    else if (!batch_add(b, t, hash, labels, nl, meta, nm, m->msg, bytes))
        why = "out_of_memory";
    if (!why && (b->n >= BATCH_ENTRIES || b->bytes >= BATCH_BYTES))
        pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (why)
        drop(s, why, 1);
}

/* One framed message from either transport. */
static void handle(struct receiver *r, const char *p, size_t n)
{
    struct syslog_server *s = r->s;
    metric_add(s->received, 1, r->transport);
    vg_arena_reset(r->arena);
    int64_t now = now_ns();
    struct syslog_parse_opts o = { .now_ns = now, .local_offset_s = local_offset(r, now) };
    struct syslog_msg m;
    struct vg_err err;
    if (syslog_parse(p, n, &o, r->arena, &m, &err) < 0) {
        drop(s, "out_of_memory", 1);
        return;
    }
    if (m.format == SYSLOG_RAW) {
        if (m.error == SYSLOG_ERR_EMPTY) {
            drop(s, "empty", 1);
            return;
        }
        metric_add(s->unparsable, 1, syslog_error_name(m.error));
    }
    enqueue(r, &m, now);
}

/* ---- writing batches ---- */

static int cmp_pending(const void *a, const void *b)
{
    const struct pending *x = *(struct pending *const *)a, *y = *(struct pending *const *)b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    int c = labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void write_batch(struct syslog_server *s, struct batch *b)
{
    size_t n = b->n;
    if (!n)
        return;
    struct pending **idx = vg_malloc(n * sizeof *idx);
    struct lentry *es = vg_malloc(n * sizeof *es);
    struct logstore_stream_in *st = vg_malloc(n * sizeof *st);
    if (!idx || !es || !st) {
        drop(s, "out_of_memory", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = &b->v[i];
    qsort(idx, n, sizeof *idx, cmp_pending);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        const struct pending *p = idx[i];
        es[i] = (struct lentry){ .t = p->t, .line = p->line, .meta = p->meta, .nmeta = p->nmeta };
        /* sorted: equal label sets are adjacent */
        if (i == 0 || idx[i - 1]->hash != p->hash ||
            labels_cmp(idx[i - 1]->labels, idx[i - 1]->nlabels, p->labels, p->nlabels) != 0)
            st[ns++] = (struct logstore_stream_in){ .labels = p->labels, .nlabels = p->nlabels,
                                                    .entries = &es[i] };
        st[ns - 1].nentries++;
    }
    struct logstore_push_result res = { 0 };
    struct vg_err err;
    vg_err_clear(&err);
    int rc = logstore_push(s->v->logs, st, ns, &res, &err);
    if (rc == VG_EIO || rc == VG_ENOMEM) {
        drop(s, "store_error", n);
        vg_complain(&s->store_complaint, COMPLAIN_MS, VG_LOG_ERROR, "syslog",
                    "log store write failed; batch dropped", err.msg);
        goto out;
    }
    if (res.accepted)
        metric_add(s->stored, (double)res.accepted);
    for (int r = 0; r < LOGSTORE_REJECT_COUNT; r++)
        drop(s, logstore_reject_name((enum logstore_reject)r), res.rejected[r]);
    if (rc < 0)
        vg_complain(&s->store_complaint, COMPLAIN_MS, VG_LOG_WARN, "syslog",
                    "log store refused some messages", err.msg);
out:
    vg_free(idx);
    vg_free(es);
    vg_free(st);
    vg_arena_reset(b->arena);
    b->n = 0;
    b->bytes = 0;
}

static struct timespec deadline_after(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void *flush_main(void *arg)
{
    struct syslog_server *s = arg;
    pthread_setname_np(pthread_self(), "syslog-flush");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        struct timespec dl = deadline_after(s->flush_ms);
        for (;;) {
            const struct batch *c = &s->b[s->cur];
            if (s->stopping || s->flush_req > s->flushed || c->n >= BATCH_ENTRIES ||
                c->bytes >= BATCH_BYTES)
                break;
            if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT)
                break;
        }
        struct batch *full = &s->b[s->cur];
        s->cur ^= 1;
        uint64_t req = s->flush_req;
        bool stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        write_batch(s, full);
        pthread_mutex_lock(&s->mu);
        s->flushed = req;
        pthread_cond_broadcast(&s->done);
        /* after stop the receivers are gone: leave once both batches are written */
        if (stop && s->b[s->cur].n == 0)
            break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void syslog_flush(struct vigil *v)
{
    struct syslog_server *s = v->syslog_state;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    uint64_t want = ++s->flush_req;
    pthread_cond_signal(&s->cv);
    while (s->flushed < want && s->flush_started)
        pthread_cond_wait(&s->done, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* ---- receivers ---- */

static int receiver_init(struct receiver *r, struct syslog_server *s, const char *transport)
{
    *r = (struct receiver){ .s = s, .transport = transport, .tz_minute = -1 };
    r->arena = vg_arena_new(16384);
    if (!r->arena)
        return VG_ENOMEM;
    /* unescaped structured data never exceeds the message; the rest is small */
    vg_arena_set_limit(r->arena, 2 * s->max_msg + 65536);
    return 0;
}

static void *udp_main(void *arg)
{
    struct syslog_server *s = arg;
    pthread_setname_np(pthread_self(), "syslog-udp");
    struct receiver r;
    char *buf = vg_malloc(s->max_msg + 1);
    if (receiver_init(&r, s, "udp") < 0 || !buf) {
        vg_log(VG_LOG_ERROR, "syslog", "out of memory: UDP listener stopped", NULL);
        vg_free(buf);
        vg_arena_free(r.arena);
        return NULL;
    }
    struct pollfd pf[2] = { { .fd = s->udp_fd, .events = POLLIN },
                            { .fd = s->stop_pipe[0], .events = POLLIN } };
    for (;;) {
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        for (int k = 0; k < UDP_DRAIN; k++) {
            /* MSG_TRUNC: the datagram's real length, so an oversized one is known */
            ssize_t n = recv(s->udp_fd, buf, s->max_msg + 1, MSG_DONTWAIT | MSG_TRUNC);
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    vg_complain(&s->socket_complaint, COMPLAIN_MS, VG_LOG_WARN, "syslog",
                                "UDP receive failed", strerror(errno));
                break;
            }
            if ((size_t)n > s->max_msg) {
                metric_add(s->received, 1, "udp");
                drop(s, "too_large", 1);
                continue;
            }
            handle(&r, buf, (size_t)n);
        }
    }
    vg_free(buf);
    vg_arena_free(r.arena);
    return NULL;
}

struct conn {
    int fd;
    int64_t last_ms;
    size_t slot;
    struct syslog_framer fr;
};

static void on_frame(void *ctx, enum syslog_frame_kind kind, const char *p, size_t len)
{
    struct receiver *r = ctx;
    if (kind == SYSLOG_FRAME_MSG) {
        handle(r, p, len);
    } else {
        metric_add(r->s->received, 1, "tcp");
        drop(r->s, "too_large", 1);
    }
}

struct tcp_state {
    struct syslog_server *s;
    struct receiver r;
    int ep;
    struct conn **conns; /* max_conns slots */
    size_t nconns;
    char *rbuf;
};

static void conn_close(struct tcp_state *t, struct conn *c, const char *event)
{
    /* a last newline-framed message without its LF still counts */
    size_t lost = syslog_framer_finish(&c->fr, on_frame, &t->r);
    if (lost)
        drop(t->s, "incomplete_frame", 1);
    if (event)
        metric_add(t->s->conns, 1, event);
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    syslog_framer_free(&c->fr);
    t->conns[c->slot] = t->conns[--t->nconns];
    t->conns[c->slot]->slot = c->slot;
    vg_free(c);
    metric_set(t->s->open, (double)t->nconns);
}

static void tcp_accept(struct tcp_state *t)
{
    struct syslog_server *s = t->s;
    for (;;) {
        int fd = accept4(s->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                vg_complain(&s->socket_complaint, COMPLAIN_MS, VG_LOG_WARN, "syslog",
                            "TCP accept failed", strerror(errno));
            return;
        }
        struct conn *c = t->nconns < s->max_conns ? vg_calloc(1, sizeof *c) : NULL;
        if (!c) {
            metric_add(s->conns, 1, "refused");
            close(fd);
            continue;
        }
        c->fd = fd;
        c->last_ms = mono_ms();
        c->slot = t->nconns;
        syslog_framer_init(&c->fr, s->max_msg, NULL);
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            vg_free(c);
            metric_add(s->conns, 1, "refused");
            continue;
        }
        t->conns[t->nconns++] = c;
        metric_add(s->conns, 1, "accepted");
        metric_set(s->open, (double)t->nconns);
    }
}

static void tcp_read(struct tcp_state *t, struct conn *c)
{
    for (int k = 0; k < TCP_READS; k++) {
        ssize_t n = read(c->fd, t->rbuf, TCP_READ_BYTES);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(t, c, n == 0 ? "closed" : "error");
            return;
        }
        c->last_ms = mono_ms();
        struct vg_err err;
        int rc = syslog_framer_feed(&c->fr, t->rbuf, (size_t)n, on_frame, &t->r, &err);
        if (rc < 0) {
            drop(t->s, rc == VG_ENOMEM ? "out_of_memory" : "bad_framing", 1);
            vg_complain(&t->s->socket_complaint, COMPLAIN_MS, VG_LOG_WARN, "syslog",
                        "TCP connection closed", err.msg);
            conn_close(t, c, "bad_framing");
            return;
        }
    }
}

static void *tcp_main(void *arg)
{
    struct syslog_server *s = arg;
    pthread_setname_np(pthread_self(), "syslog-tcp");
    struct tcp_state t = { .s = s, .ep = epoll_create1(EPOLL_CLOEXEC) };
    t.conns = vg_calloc(s->max_conns, sizeof *t.conns);
    t.rbuf = vg_malloc(TCP_READ_BYTES);
    /* the listener and the stop pipe are told apart from connections by these tags */
    static char listen_tag, stop_tag;
    struct epoll_event le = { .events = EPOLLIN, .data.ptr = &listen_tag };
    struct epoll_event se = { .events = EPOLLIN, .data.ptr = &stop_tag };
    if (receiver_init(&t.r, s, "tcp") < 0 || t.ep < 0 || !t.conns || !t.rbuf ||
        epoll_ctl(t.ep, EPOLL_CTL_ADD, s->tcp_fd, &le) < 0 ||
        epoll_ctl(t.ep, EPOLL_CTL_ADD, s->stop_pipe[0], &se) < 0) {
        vg_log(VG_LOG_ERROR, "syslog", "cannot run the TCP listener", "error", strerror(errno),
               NULL);
        goto out;
    }
    int64_t next_idle_check = mono_ms() + 1000;
    bool stop = false;
    while (!stop) {
        struct epoll_event evs[64];
        int n = epoll_wait(t.ep, evs, 64, s->idle_ms > 0 ? 1000 : -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n && !stop; i++) {
            if (evs[i].data.ptr == &stop_tag)
                stop = true;
            else if (evs[i].data.ptr == &listen_tag)
                tcp_accept(&t);
            else /* only this event's own connection can be closed here */
                tcp_read(&t, evs[i].data.ptr);
        }
        int64_t now = mono_ms();
        if (s->idle_ms > 0 && now >= next_idle_check) {
            next_idle_check = now + 1000;
            for (size_t i = t.nconns; i > 0; i--)
                if (now - t.conns[i - 1]->last_ms >= s->idle_ms)
                    conn_close(&t, t.conns[i - 1], "idle_timeout");
        }
    }
    while (t.nconns)
        conn_close(&t, t.conns[t.nconns - 1], NULL);
out:
    if (t.ep >= 0)
        close(t.ep);
    vg_free(t.conns);
    vg_free(t.rbuf);
    vg_arena_free(t.r.arena);
    return NULL;
}

/* ---- start and stop ---- */

/* addr (see netaddr.h) bound to a new socket of the given type; errors name key. */
static int bind_addr(const char *key, const char *addr, int type, uint16_t *port,
                     struct vg_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (netaddr_parse(addr, type, &ss, &sl, err) < 0)
        return vg_err_prefix(err, "%s", key);
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0 && type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd >= 0 && type == SOCK_DGRAM) {
        int rcvbuf = 4 << 20; /* bursts wait here while a batch is written; best effort */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
        (type == SOCK_STREAM && listen(fd, 128) < 0)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return vg_err_set(err, VG_EIO, "%s: cannot listen on \"%s\": %s", key, addr, strerror(e));
    }
    /* the port actually bound (port 0 asks the kernel for a free one) */
    struct sockaddr_in6 sa = { 0 }; /* large enough for either family; both put the
                                       port at the same offset */
    socklen_t salen = sizeof sa;
    _Static_assert(offsetof(struct sockaddr_in6, sin6_port) ==
                       offsetof(struct sockaddr_in, sin_port), "port offsets differ");
    *port = getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 ? ntohs(sa.sin6_port) : 0;
    return fd;
}

static int parse_label_fields(const struct config *cfg, unsigned *mask, struct vg_err *err)
{
    *mask = 0;
    for (size_t i = 0; i < cfg->syslog_nlabels; i++) {
        int f = 0;
        while (f < F_COUNT && strcmp(field_names[f], cfg->syslog_labels[i]) != 0)
            f++;
        if (f == F_COUNT)
            return vg_err_set(err, VG_EINVAL,
                              "syslog.labels: unknown field \"%s\" (valid: hostname, app_name, "
                              "facility, severity, level, proc_id, msg_id)",
                              cfg->syslog_labels[i]);
        *mask |= 1u << f;
    }
    return 0;
}

static void register_metrics(struct syslog_server *s, struct metrics *mx)
{
    static const char *const transport[] = { "transport" };
    static const char *const reason[] = { "reason" };
    static const char *const event[] = { "event" };
    s->received = metrics_family(mx, "vigil_syslog_messages_received_total",
                                 "Syslog messages framed, by transport.", METRIC_COUNTER,
                                 transport, 1, NULL, 0);
    s->stored = metrics_family(mx, "vigil_syslog_messages_stored_total",
                               "Syslog messages accepted by the log store.", METRIC_COUNTER,
                               NULL, 0, NULL, 0);
    s->unparsable = metrics_family(mx, "vigil_syslog_messages_unparsable_total",
                                   "Syslog messages stored raw because they did not parse, by reason.",
                                   METRIC_COUNTER, reason, 1, NULL, 0);
    s->dropped = metrics_family(mx, "vigil_syslog_messages_dropped_total",
                                "Syslog messages not stored, by reason.", METRIC_COUNTER,
                                reason, 1, NULL, 0);
    s->future = metrics_family(mx, "vigil_syslog_future_timestamps_total",
                               "Syslog timestamps over 10 minutes ahead, replaced by the receive time.",
                               METRIC_COUNTER, NULL, 0, NULL, 0);
    s->conns = metrics_family(mx, "vigil_syslog_connections_total",
                              "Syslog TCP connections by event (accepted, refused, closed, "
                              "idle_timeout, bad_framing, error).",
                              METRIC_COUNTER, event, 1, NULL, 0);
    s->open = metrics_family(mx, "vigil_syslog_connections_open",
                             "Syslog TCP connections open now.", METRIC_GAUGE, NULL, 0, NULL, 0);
}

static void syslog_free(struct vigil *v)
{
    struct syslog_server *s = v->syslog_state;
    if (!s)
        return;
    if (s->stop_pipe[1] >= 0) {
        close(s->stop_pipe[1]); /* the read end turns readable (EOF) for every poller */
        s->stop_pipe[1] = -1;
    }
    if (s->udp_started)
        pthread_join(s->udp_thr, NULL);
    if (s->tcp_started)
        pthread_join(s->tcp_thr, NULL);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->flush_started)
        pthread_join(s->flush_thr, NULL);
    for (int i = 0; i < 2; i++) {
        vg_arena_free(s->b[i].arena);
        vg_free(s->b[i].v);
    }
    if (s->stop_pipe[0] >= 0)
        close(s->stop_pipe[0]);
    if (s->udp_fd >= 0)
        close(s->udp_fd);
    if (s->tcp_fd >= 0)
        close(s->tcp_fd);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->mu);
    vg_free(s);
    v->syslog_state = NULL;
}

static int start_thread(pthread_t *t, bool *started, void *(*fn)(void *), void *arg,
                        struct vg_err *err)
{
    if (pthread_create(t, NULL, fn, arg) != 0)
        return vg_err_set(err, VG_ENOMEM, "cannot start a syslog thread");
    *started = true;
    return 0;
}

/* Everything after the state exists; on failure syslog_init frees what was made. */
static int start(struct syslog_server *s, const struct config *cfg, struct vg_err *err)
{
    for (int i = 0; i < 2; i++)
        if (!(s->b[i].arena = vg_arena_new(1 << 16)))
            return vg_err_set(err, VG_ENOMEM, "out of memory");
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return vg_err_set(err, VG_EIO, "syslog: pipe: %s", strerror(errno));
    if (cfg->syslog_udp_addr[0] &&
        (s->udp_fd = bind_addr("syslog.udp_addr", cfg->syslog_udp_addr, SOCK_DGRAM,
                               &s->udp_port, err)) < 0)
        return s->udp_fd;
    if (cfg->syslog_tcp_addr[0] &&
        (s->tcp_fd = bind_addr("syslog.tcp_addr", cfg->syslog_tcp_addr, SOCK_STREAM,
                               &s->tcp_port, err)) < 0)
        return s->tcp_fd;
    register_metrics(s, s->v->metrics);
    if (start_thread(&s->flush_thr, &s->flush_started, flush_main, s, err) < 0 ||
        (s->udp_fd >= 0 && start_thread(&s->udp_thr, &s->udp_started, udp_main, s, err) < 0) ||
        (s->tcp_fd >= 0 && start_thread(&s->tcp_thr, &s->tcp_started, tcp_main, s, err) < 0))
        return err->code;
    return 0;
}

static int syslog_init(struct vigil *v, struct vg_err *err)
{
    const struct config *cfg = v->cfg;
    v->syslog_state = NULL;
    if (!cfg->syslog_udp_addr[0] && !cfg->syslog_tcp_addr[0])
        return 0;
    unsigned mask;
    if (parse_label_fields(cfg, &mask, err) < 0)
        return err->code;
    struct syslog_server *s = vg_calloc(1, sizeof *s);
    if (!s)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    *s = (struct syslog_server){
        .v = v, .label_mask = mask, .max_msg = (size_t)cfg->syslog_max_message_bytes,
        .idle_ms = cfg->syslog_idle_timeout_ms, .flush_ms = cfg->syslog_flush_interval_ms,
        .max_conns = (size_t)cfg->syslog_max_connections,
        .use_msg_time = cfg->syslog_use_message_timestamp,
        .udp_fd = -1, .tcp_fd = -1, .stop_pipe = { -1, -1 },
    };
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->done, NULL);
    v->syslog_state = s;
    int rc = start(s, cfg, err);
    if (rc < 0) {
        /* vigil_stop frees only modules whose init succeeded */
        syslog_free(v);
        return rc;
    }
    char up[8], tp[8];
    snprintf(up, sizeof up, "%u", s->udp_port);
    snprintf(tp, sizeof tp, "%u", s->tcp_port);
    vg_log(VG_LOG_INFO, "syslog", "listening", "udp_addr", cfg->syslog_udp_addr, "udp_port",
           up, "tcp_addr", cfg->syslog_tcp_addr, "tcp_port", tp, NULL);
    return 0;
}

uint16_t syslog_udp_port(const struct vigil *v)
{
    const struct syslog_server *s = v->syslog_state;
    return s ? s->udp_port : 0;
}

uint16_t syslog_tcp_port(const struct vigil *v)
{
    const struct syslog_server *s = v->syslog_state;
    return s ? s->tcp_port : 0;
}

const struct vigil_module mod_syslog = {
    .name = "syslog",
    .init = syslog_init,
    .free = syslog_free,
};
