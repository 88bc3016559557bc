/* syslog: see syslog.h for the label rule, durability and metrics.
 *
 * Data flow: a receiving thread (syslog-udp or syslog-tcp) frames and parses each
 * message with its own parse arena, turns it into labels, metadata and a line, and
 * copies that into the current batch (log_batch.h) under s->mu. The flusher
 * (syslog-flush) swaps the two batches under the lock and writes the full one with one
 * ingest_store_logs outside it (the global log_processors, then one logstore_push), so
 * a slow synchronous write never stalls the sockets: receivers keep filling the other
 * batch meanwhile (up to the overload bound).
 *
 * Sockets, threads and connections are listener.h's; the receivers here are its
 * callbacks, with a struct receiver (parse arena, cached zone offset) per thread and a
 * framer per TCP connection.
 *
 * Locking: s->mu guards the batches, s->cur, the flush request counters and stopping;
 * s->cv wakes the flusher, s->done wakes syslog_flush callers. Parse arenas and framers
 * belong to their thread alone. */
#include "syslog.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/tsdb/labels.h"
#include "../metrics.h"
#include "ingest.h"
#include "listener.h"
#include "log_batch.h"
#include "syslog_parse.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BATCH_ENTRIES ((size_t)1000)
#define BATCH_BYTES ((size_t)1 << 20)
#define OVERLOAD_FACTOR ((size_t)8)
#define MAX_FUTURE_NS (10LL * 60 * 1000000000LL)
#define COMPLAIN_MS 60000 /* one log line per minute per kind of client trouble */
#define RECEIVER "syslog"  /* vigil_ingest_*{receiver} and log_processors' receiver */

enum field { F_HOSTNAME, F_APP_NAME, F_FACILITY, F_SEVERITY, F_LEVEL, F_PROC_ID, F_MSG_ID,
             F_COUNT };
static const char *const field_names[F_COUNT] = {
    "hostname", "app_name", "facility", "severity", "level", "proc_id", "msg_id",
};

struct syslog_server {
    struct vigil *v;
    unsigned label_mask; /* bit per enum field: a stream label, else metadata */
    size_t max_msg;
    int64_t flush_ms;
    bool use_msg_time;

    struct listener *listener; /* sockets and the receiving threads */
    pthread_t flush_thr;
    bool flush_started;

    pthread_mutex_t mu;
    pthread_cond_t cv, done;
    struct log_batch b[2];
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
    pthread_mutex_lock(&s->mu);
    struct log_batch *b = &s->b[s->cur];
    const char *why = NULL;
    if (b->n >= BATCH_ENTRIES * OVERLOAD_FACTOR || b->bytes >= BATCH_BYTES * OVERLOAD_FACTOR)
        why = "overload";
    else if (log_batch_add(b, t, labels, nl, meta, nm, m->msg) < 0)
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

/* Stores b through ingest_store_logs (so the global log_processors apply, and the
 * lines count under vigil_ingest_*{receiver="syslog"}) and empties it. */
static void write_batch(struct syslog_server *s, struct log_batch *b)
{
    size_t n = b->n;
    struct logstore_stream_in *st;
    size_t ns;
    if (!n)
        return;
    if (log_batch_streams(b, &st, &ns) < 0) {
        drop(s, "out_of_memory", n);
        log_batch_clear(b);
        return;
    }
    struct logstore_push_result res;
    struct vg_err err;
    vg_err_clear(&err);
    int rc = ingest_store_logs(s->v, RECEIVER, st, ns, &res, &err);
    log_batch_clear(b);
    if (rc < 0) {
        drop(s, "store_error", n);
        vg_complain(&s->store_complaint, COMPLAIN_MS, VG_LOG_ERROR, "syslog",
                    "log store write failed; batch dropped", err.msg);
        return;
    }
    if (res.accepted)
        metric_add(s->stored, (double)res.accepted);
    uint64_t refused = 0;
    for (int r = 0; r < LOGSTORE_REJECT_COUNT; r++) {
        drop(s, logstore_reject_name((enum logstore_reject)r), res.rejected[r]);
        refused += res.rejected[r];
    }
    if (refused)
        vg_complain(&s->store_complaint, COMPLAIN_MS, VG_LOG_WARN, "syslog",
                    "log store refused some messages", err.msg);
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
            const struct log_batch *c = &s->b[s->cur];
            if (s->stopping || s->flush_req > s->flushed || c->n >= BATCH_ENTRIES ||
                c->bytes >= BATCH_BYTES)
                break;
            if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) == ETIMEDOUT)
                break;
        }
        struct log_batch *full = &s->b[s->cur];
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

/* ---- receivers (listener.h callbacks) ---- */

static int receiver_init(void *ctx, const char *transport, void **local)
{
    struct syslog_server *s = ctx;
    struct receiver *r = vg_malloc(sizeof *r);
    if (!r)
        return VG_ENOMEM;
    *r = (struct receiver){ .s = s, .transport = transport, .tz_minute = -1 };
    r->arena = vg_arena_new(16384);
    if (!r->arena) {
        vg_free(r);
        return VG_ENOMEM;
    }
    /* unescaped structured data never exceeds the message; the rest is small */
    vg_arena_set_limit(r->arena, 2 * s->max_msg + 65536);
    *local = r;
    return 0;
}

static void receiver_fini(void *local)
{
    struct receiver *r = local;
    vg_arena_free(r->arena);
    vg_free(r);
}

static void on_datagram(void *local, const char *p, size_t n, bool truncated)
{
    struct receiver *r = local;
    if (truncated) {
        metric_add(r->s->received, 1, "udp");
        drop(r->s, "too_large", 1);
        return;
    }
    handle(r, p, n);
}

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

static void *conn_open(void *local)
{
    struct receiver *r = local;
    struct syslog_framer *fr = vg_malloc(sizeof *fr);
    if (fr && syslog_framer_init(fr, r->s->max_msg, NULL) < 0) {
        syslog_framer_free(fr);
        vg_free(fr);
        return NULL; /* refused */
    }
    return fr;
}

static int on_data(void *local, void *conn, const char *p, size_t n)
{
    struct receiver *r = local;
    struct vg_err err;
    int rc = syslog_framer_feed(conn, p, n, on_frame, r, &err);
    if (rc < 0) {
        drop(r->s, rc == VG_ENOMEM ? "out_of_memory" : "bad_framing", 1);
        vg_complain(&r->s->socket_complaint, COMPLAIN_MS, VG_LOG_WARN, "syslog",
                    "TCP connection closed", err.msg);
    }
    return rc;
}

static void conn_close(void *local, void *conn, enum listener_event why)
{
    (void)why;
    /* a last newline-framed message without its LF still counts */
    if (syslog_framer_finish(conn, on_frame, local))
        drop(((struct receiver *)local)->s, "incomplete_frame", 1);
    syslog_framer_free(conn);
    vg_free(conn);
}

static void on_event(void *ctx, enum listener_event e, size_t open)
{
    struct syslog_server *s = ctx;
    /* a refused framing is counted as bad_framing, as before the listener was shared */
    if (e != LISTENER_SHUTDOWN)
        metric_add(s->conns, 1, e == LISTENER_REJECTED ? "bad_framing" : listener_event_name(e));
    metric_set(s->open, (double)open);
}

/* ---- start and stop ---- */

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
    listener_free(s->listener); /* no message arrives after this */
    s->listener = NULL;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->flush_started)
        pthread_join(s->flush_thr, NULL);
    for (int i = 0; i < 2; i++)
        log_batch_free(&s->b[i]);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->mu);
    vg_free(s);
    v->syslog_state = NULL;
}

/* Everything after the state exists; on failure syslog_init frees what was made. */
static int start(struct syslog_server *s, const struct config *cfg, struct vg_err *err)
{
    for (int i = 0; i < 2; i++)
        if (log_batch_init(&s->b[i], 1 << 16) < 0)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
    struct listener_opts lo = {
        .name = "syslog", .udp_key = "syslog.udp_addr", .udp_addr = cfg->syslog_udp_addr,
        .tcp_key = "syslog.tcp_addr", .tcp_addr = cfg->syslog_tcp_addr,
        .max_datagram = s->max_msg, .max_conns = (size_t)cfg->syslog_max_connections,
        .idle_ms = cfg->syslog_idle_timeout_ms, .ctx = s,
        .thread_init = receiver_init, .thread_fini = receiver_fini,
        .on_datagram = on_datagram, .conn_open = conn_open, .on_data = on_data,
        .conn_close = conn_close, .on_event = on_event,
    };
    if (!(s->listener = listener_new(&lo, err)))
        return err->code;
    register_metrics(s, s->v->metrics);
    if (pthread_create(&s->flush_thr, NULL, flush_main, s) != 0)
        return vg_err_set(err, VG_ENOMEM, "cannot start the syslog flush thread");
    s->flush_started = true;
    return listener_start(s->listener, err);
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
        .flush_ms = cfg->syslog_flush_interval_ms,
        .use_msg_time = cfg->syslog_use_message_timestamp,
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
    return 0;
}

uint16_t syslog_udp_port(const struct vigil *v)
{
    const struct syslog_server *s = v->syslog_state;
    return s ? listener_udp_port(s->listener) : 0;
}

uint16_t syslog_tcp_port(const struct vigil *v)
{
    const struct syslog_server *s = v->syslog_state;
    return s ? listener_tcp_port(s->listener) : 0;
}

const struct vigil_module mod_syslog = {
    .name = "syslog",
    .init = syslog_init,
    .free = syslog_free,
};
