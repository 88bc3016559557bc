/* notify: the notifier of notify.h. It owns
 *  - the Alertmanager client (alertmanager.h), one outbox per Alertmanager;
 *  - the dispatcher (route.h) behind one mutex, ticked by a thread every
 *    notifications.delivery.tick, with silences (silence.h) as its mute callback;
 *  - one outbox (outbox.h) per receiver integration, each with its own worker thread,
 *    so a hanging receiver delays only itself;
 *  - the attempt history (history.h);
 *  - one LevelDB (kv.h) in state_dir holding, by key prefix:
 *      "q/" + u64be seq   queued notifications (outbox.h's format)
 *      "h/" + u64be seq   attempt history (history.h)
 *      "s/" + silence id  silences (silence.h)
 *      "n/log"            the dispatcher's notification log (route_dispatcher_export),
 *                         rewritten after every tick that notified
 *
 * Lock order: notifier mutex -> outbox mutex -> history mutex; the silences mutex is
 * taken alone or under the notifier mutex. */
#include "notify.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/base/vg_ticker.h"
#include "../../storage/kv.h"
#include "../config.h"
#include "../config_node.h"
#include "../metrics.h"
#include "alertmanager.h"
#include "email.h"
#include "history.h"
#include "outbox.h"
#include "route.h"
#include "silence.h"
#include "slack.h"
#include "transport.h"
#include "webhook.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define NFLOG_KEY "n/log"
#define MAX_DISPATCH_ALERTS 100000

struct integ {
    const struct route_receiver *recv;
    const struct route_integration *it;
    int64_t timeout_ms;
    struct outbox *ob;
};

struct notifier {
    struct route_config *rc;
    struct kv *kv;
    struct history *hist;
    struct silences *sil;
    struct alertmanagers *ams;
    struct integ *integs;
    size_t ninteg;
    _Atomic uint64_t seq;
    pthread_mutex_t mu;           /* guards disp and nflog_dirty */
    struct route_dispatcher *disp;
    bool nflog_dirty;
    struct vg_ticker ticker;      /* "notifier"; zeroed until notifier_new's end */
    int64_t last_gc;              /* the ticker's alone: when silences were last collected */
    struct metric_family *m_alerts, *m_groups, *m_silences;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *default_external_url(const struct config *cfg)
{
    struct vg_buf b;
    vg_buf_init(&b);
    const char *addr = cfg && cfg->http_addr ? cfg->http_addr : "localhost:4318";
    vg_buf_printf(&b, "http://%s%s", addr[0] == ':' ? "localhost" : "", addr);
    return vg_buf_cstr(&b) ? vg_buf_steal(&b, NULL) : NULL;
}

int notifier_check_config(const struct config *cfg, struct vg_err *err)
{
    int rc = alertmanager_check(config_block(cfg, "alerting"), err);
    if (rc < 0)
        return rc;
    char *url = default_external_url(cfg);
    struct route_config *c = route_config_parse(config_block(cfg, "notifications"), url, err);
    vg_free(url);
    if (!c)
        return err->code;
    /* e-mail address lists are checked here, where email.h is at hand */
    for (size_t i = 0; i < c->nreceivers && rc == 0; i++) {
        for (size_t k = 0; k < c->receivers[i].nints && rc == 0; k++) {
            const struct route_integration *it = &c->receivers[i].ints[k];
            char **a;
            size_t na;
            if (it->kind != ROUTE_EMAIL)
                continue;
            const char *lists[2] = { it->to, it->from };
            for (int j = 0; j < 2 && rc == 0; j++) {
                if ((rc = email_addrs(lists[j], &a, &na, err)) == 0)
                    email_addrs_free(a, na);
                else
                    vg_err_prefix(err, "notifications.receivers[%zu].email_configs[%zu].%s", i,
                                  it->index, j ? "from" : "to");
            }
        }
    }
    route_config_free(c);
    return rc;
}

/* ---- delivery to receivers ---- */

static const char *kind_name(enum route_kind k)
{
    return k == ROUTE_WEBHOOK ? "webhook" : k == ROUTE_SLACK ? "slack" : "email";
}

static int send_integ(void *ctx, struct outbox_item *const *items, size_t n,
                      const atomic_bool *stop, struct vg_err *err)
{
    const struct integ *g = ctx;
    (void)n; /* batch is 1 */
    if (g->it->kind == ROUTE_EMAIL)
        return email_send(g->it, items[0]->payload, items[0]->len, g->timeout_ms, stop, err);
    struct transport_http req = {
        .url = g->it->url, .content_type = "application/json", .body = items[0]->payload,
        .body_len = items[0]->len, .timeout_ms = g->timeout_ms, .stop = stop,
    };
    return transport_http_post(&req, NULL, err);
}

struct emit_ctx {
    struct notifier *n;
};

static void emit(void *ctx, const struct route_notification *rn, int64_t now)
{
    struct notifier *n = ((struct emit_ctx *)ctx)->n;
    struct webhook_ctx wc = { .external_url = n->rc->external_url };
    struct vg_buf body;
    vg_buf_init(&body);
    n->nflog_dirty = true;
    for (size_t i = 0; i < n->ninteg; i++) {
        struct integ *g = &n->integs[i];
        if (strcmp(g->recv->name, rn->receiver) != 0 || !g->ob)
            continue;
        struct route_notification f = *rn;
        if (!g->it->send_resolved) {
            f.nalerts = f.nfiring;
            if (!f.nalerts)
                continue;
        }
        vg_buf_reset(&body);
        wc.max_alerts = g->it->max_alerts;
        switch (g->it->kind) {
        case ROUTE_WEBHOOK: webhook_render(&f, &wc, &body); break;
        case ROUTE_SLACK: slack_render(&f, g->it, &wc, &body); break;
        case ROUTE_EMAIL: email_render(&f, g->it, &wc, now, &body); break;
        }
        if (vg_buf_failed(&body)) {
            vg_log(VG_LOG_ERROR, "notify", "out of memory rendering a notification",
                   "receiver", rn->receiver, NULL);
            continue;
        }
        outbox_push(g->ob, body.p, body.len, rn->group_key, f.fingerprints, f.nalerts, now);
    }
    vg_buf_free(&body);
}

static bool muted(void *ctx, const struct alert *a, int64_t now)
{
    return silences_mutes(ctx, a->labels, a->nlabels, now);
}

static void save_nflog(struct notifier *n)
{
    struct vg_buf b;
    vg_buf_init(&b);
    route_dispatcher_export(n->disp, &b);
    struct vg_err err;
    if (vg_buf_failed(&b) ||
        kv_put(n->kv, NFLOG_KEY, sizeof NFLOG_KEY - 1, b.p ? b.p : "", b.len, false, &err) < 0)
        vg_log(VG_LOG_WARN, "notify", "cannot store the notification log", "error",
               vg_buf_failed(&b) ? "out of memory" : err.msg, NULL);
    vg_buf_free(&b);
    n->nflog_dirty = false;
}

void notifier_tick(struct notifier *n, int64_t now)
{
    if (!n)
        return;
    struct emit_ctx ec = { n };
    pthread_mutex_lock(&n->mu);
    route_dispatcher_tick(n->disp, now, muted, n->sil, emit, &ec);
    if (n->nflog_dirty)
        save_nflog(n);
    size_t groups = route_dispatcher_groups(n->disp), alerts = route_dispatcher_alerts(n->disp);
    pthread_mutex_unlock(&n->mu);
    if (n->m_alerts) {
        metric_set(n->m_alerts, (double)alerts);
        metric_set(n->m_groups, (double)groups);
        size_t c[3];
        silences_count(n->sil, now, c);
        metric_set(n->m_silences, (double)c[0], "pending");
        metric_set(n->m_silences, (double)c[1], "active");
        metric_set(n->m_silences, (double)c[2], "expired");
    }
}

/* One round of the ticker: fixed delay, the first at start, then delivery.tick after
 * each returned; expired silences are collected at the first round and hourly after. */
static void tick_round(void *arg, const atomic_bool *stop)
{
    struct notifier *n = arg;
    (void)stop; /* one round is short; notifier_free saves the log after the stop */
    int64_t now = now_ms();
    notifier_tick(n, now);
    if (now - n->last_gc > 3600000) {
        silences_gc(n->sil, now);
        n->last_gc = now;
    }
}

/* ---- start and stop ---- */

static int start_integs(struct notifier *n, struct metrics *m, struct vg_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n->rc->nreceivers; i++)
        total += n->rc->receivers[i].nints;
    if (total && !(n->integs = vg_calloc(total, sizeof *n->integs)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    static const char *const lab[] = { "receiver", "integration" };
    struct metric_family *sent = NULL, *failed = NULL, *dropped = NULL, *qlen = NULL;
    if (m) {
        sent = metrics_family(m, "vigil_notifications_sent_total",
                              "Notifications delivered to built-in receivers.", METRIC_COUNTER,
                              lab, 2, NULL, 0);
        failed = metrics_family(m, "vigil_notifications_failed_total",
                                "Failed delivery attempts to built-in receivers.",
                                METRIC_COUNTER, lab, 2, NULL, 0);
        dropped = metrics_family(m, "vigil_notifications_dropped_total",
                                 "Notifications given up after retries or dropped from a full "
                                 "queue.", METRIC_COUNTER, lab, 2, NULL, 0);
        qlen = metrics_family(m, "vigil_notifications_queue_length",
                              "Notifications waiting per receiver integration.", METRIC_GAUGE,
                              lab, 2, NULL, 0);
    }
    const struct route_delivery *d = &n->rc->delivery;
    for (size_t i = 0; i < n->rc->nreceivers; i++) {
        const struct route_receiver *r = &n->rc->receivers[i];
        for (size_t k = 0; k < r->nints; k++) {
            struct integ *g = &n->integs[n->ninteg++];
            g->recv = r;
            g->it = &r->ints[k];
            g->timeout_ms = d->timeout_ms;
            char id[256], integ[32];
            snprintf(id, sizeof id, "%s/%s/%zu", kind_name(g->it->kind), r->name, g->it->index);
            snprintf(integ, sizeof integ, "%s[%zu]", kind_name(g->it->kind), g->it->index);
            struct outbox_opts o = {
                .id = id, .receiver = r->name, .integration = integ,
                .capacity = (size_t)d->queue_capacity, .batch = 1,
                .initial_backoff_ms = d->initial_backoff_ms, .max_backoff_ms = d->max_backoff_ms,
                .max_attempts = (int)d->max_attempts, .send = send_integ, .ctx = g,
                .kv = n->kv, .seq = &n->seq, .hist = n->hist, .sent = sent, .failed = failed,
                .dropped = dropped, .queue_len = qlen,
            };
            if (!(g->ob = outbox_new(&o, err)))
                return err->code;
        }
    }
    return 0;
}

static struct outbox *find_outbox(struct notifier *n, const char *id)
{
    for (size_t i = 0; i < n->ninteg; i++)
        if (!strcmp(outbox_id(n->integs[i].ob), id))
            return n->integs[i].ob;
    for (size_t i = 0; i < alertmanagers_count(n->ams); i++)
        if (!strcmp(outbox_id(alertmanagers_outbox(n->ams, i)), id))
            return alertmanagers_outbox(n->ams, i);
    return NULL;
}

/* The highest stored queue sequence number + 1 (before any outbox pushes). */
static int scan_seq(struct notifier *n, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(n->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    uint64_t next = 1;
    for (kv_iter_seek(it, "q/", 2); kv_iter_has_prefix(it, "q/", 2); kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        if (klen != 10)
            continue;
        uint64_t s = 0;
        for (int i = 0; i < 8; i++)
            s = s << 8 | (unsigned char)k[2 + i];
        if (s + 1 > next)
            next = s + 1;
    }
    int rc = kv_iter_error(it, err);
    kv_iter_free(it);
    atomic_store(&n->seq, next);
    return rc;
}

/* Re-queues what was pending at the last stop; items for targets no longer configured
 * are dropped (recorded in the history). */
static int restore_queue(struct notifier *n, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(n->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    size_t restored = 0, dropped = 0;
    for (kv_iter_seek(it, "q/", 2); kv_iter_has_prefix(it, "q/", 2); kv_iter_next(it)) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        uint64_t s = 0;
        for (size_t i = 2; i < klen && i < 10; i++)
            s = s << 8 | (unsigned char)k[i];
        char *target;
        struct outbox_item item;
        struct vg_err perr;
        struct outbox *ob = NULL;
        if (outbox_restore_json(v, vlen, s, &target, &item, &perr) < 0) {
            vg_log(VG_LOG_WARN, "notify", "dropping a stored notification", "error", perr.msg,
                   NULL);
            struct outbox_item bad = { .seq = s };
            struct outbox_item *bp = vg_malloc(sizeof *bp);
            if (bp) {
                *bp = bad;
                outbox_item_discard(n->kv, bp);
            }
            dropped++;
            continue;
        }
        if ((ob = find_outbox(n, target))) {
            outbox_push_restored(ob, &item);
            restored++;
        } else {
            struct history_attempt a = {
                .receiver = target, .integration = "", .group_key = item.group_key,
                .fingerprints = item.fps, .nfingerprints = item.nfps, .status = "dropped",
                .error = "target no longer configured", .time_ms = now_ms(),
            };
            history_add(n->hist, &a);
            struct outbox_item *bp = vg_malloc(sizeof *bp);
            if (bp) {
                *bp = item;
                outbox_item_discard(n->kv, bp);
            }
            dropped++;
        }
        vg_free(target);
    }
    int rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (restored || dropped) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%zu", restored);
        snprintf(b, sizeof b, "%zu", dropped);
        vg_log(VG_LOG_INFO, "notify", "restored pending notifications", "restored", a,
               "dropped", b, NULL);
    }
    return rc;
}

static int load_nflog(struct notifier *n, struct vg_err *err)
{
    struct vg_buf v;
    vg_buf_init(&v);
    int rc = kv_get(n->kv, NULL, NFLOG_KEY, sizeof NFLOG_KEY - 1, &v, err);
    if (rc == 0 && route_dispatcher_import(n->disp, v.p ? v.p : "", v.len))
        vg_log(VG_LOG_WARN, "notify", "some notification log entries did not parse", NULL);
    vg_buf_free(&v);
    return rc == VG_ENOTFOUND ? 0 : rc;
}

struct notifier *notifier_new(const struct config *cfg, const char *state_dir,
                              struct metrics *m, struct vg_err *err)
{
    struct notifier *n = vg_calloc(1, sizeof *n);
    if (!n)
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    pthread_mutex_init(&n->mu, NULL);
    char *url = default_external_url(cfg);
    n->rc = route_config_parse(config_block(cfg, "notifications"), url, err);
    vg_free(url);
    if (!n->rc)
        goto fail;
    if (mkdir(state_dir, 0755) != 0 && errno != EEXIST) {
        vg_err_set(err, VG_EIO, "%s: cannot create: %s", state_dir, strerror(errno));
        goto fail;
    }
    struct kv_opts ko = { .cache_bytes = 1 << 20, .write_buffer_bytes = 1 << 20 };
    if (!(n->kv = kv_open(state_dir, &ko, err)) ||
        !(n->hist = history_new(n->kv, (size_t)n->rc->delivery.history_size, err)) ||
        !(n->sil = silences_new(n->kv, err)) || scan_seq(n, err) < 0)
        goto fail;
    if (!(n->disp = route_dispatcher_new(n->rc, MAX_DISPATCH_ALERTS))) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    if (load_nflog(n, err) < 0 ||
        !(n->ams = alertmanagers_new(config_block(cfg, "alerting"), &n->rc->delivery, n->kv,
                                     &n->seq, n->hist, m, err)) ||
        start_integs(n, m, err) < 0 || restore_queue(n, err) < 0)
        goto fail;
    if (m) {
        n->m_alerts = metrics_family(m, "vigil_notifier_alerts",
                                     "Alerts held in notification groups.", METRIC_GAUGE, NULL,
                                     0, NULL, 0);
        n->m_groups = metrics_family(m, "vigil_notifier_groups", "Notification groups.",
                                     METRIC_GAUGE, NULL, 0, NULL, 0);
        static const char *const st[] = { "state" };
        n->m_silences = metrics_family(m, "vigil_silences", "Silences by state.", METRIC_GAUGE,
                                       st, 1, NULL, 0);
    }
    struct vg_ticker_opts to = { .name = "notifier", .interval_ms = n->rc->delivery.tick_ms };
    if (vg_ticker_start(&n->ticker, &to, tick_round, n, err) < 0)
        goto fail;
    vg_log(VG_LOG_INFO, "notify", "notifier started", "state_dir", state_dir, NULL);
    return n;
fail:
    notifier_free(n);
    return NULL;
}

void notifier_free(struct notifier *n)
{
    if (!n)
        return;
    vg_ticker_stop(&n->ticker);
    /* workers first: they write history and kv */
    for (size_t i = 0; i < n->ninteg; i++)
        outbox_free(n->integs[i].ob);
    vg_free(n->integs);
    alertmanagers_free(n->ams);
    if (n->disp && n->kv)
        save_nflog(n);
    route_dispatcher_free(n->disp);
    silences_free(n->sil);
    history_free(n->hist);
    kv_close(n->kv);
    route_config_free(n->rc);
    pthread_mutex_destroy(&n->mu);
    vg_free(n);
}

void notifier_send(struct notifier *n, const struct alert *alerts, size_t nalerts)
{
    if (!n || !nalerts)
        return;
    int64_t now = now_ms();
    alertmanagers_send(n->ams, alerts, nalerts, now);
    if (!n->rc->has_route)
        return;
    pthread_mutex_lock(&n->mu);
    size_t refused = route_dispatcher_add(n->disp, alerts, nalerts, now);
    pthread_mutex_unlock(&n->mu);
    if (refused) {
        static struct vg_complaint c;
        vg_complain(&c, 60000, VG_LOG_WARN, "notify", "alerts refused by the dispatcher",
                    "more than 100000 alerts held, or out of memory");
    }
}

int notifier_silence_create(struct notifier *n, const char *body, size_t len, char *id_out,
                            struct vg_err *err)
{
    return silences_create_json(n->sil, body, len, now_ms(), id_out, err);
}

int notifier_silence_expire(struct notifier *n, const char *id, struct vg_err *err)
{
    return silences_expire(n->sil, id, now_ms(), err);
}

void notifier_silences_json(struct notifier *n, struct vg_buf *out)
{
    silences_list_json(n->sil, now_ms(), out);
}

void notifier_status_json(struct notifier *n, size_t limit, struct vg_buf *out)
{
    vg_buf_puts(out, "{\"attempts\":");
    history_json(n->hist, limit, out);
    vg_buf_puts(out, ",\"queues\":[");
    size_t k = 0;
    for (size_t i = 0; i < alertmanagers_count(n->ams); i++, k++) {
        if (k)
            vg_buf_putc(out, ',');
        outbox_status_json(alertmanagers_outbox(n->ams, i), out);
    }
    for (size_t i = 0; i < n->ninteg; i++, k++) {
        if (k)
            vg_buf_putc(out, ',');
        outbox_status_json(n->integs[i].ob, out);
    }
    pthread_mutex_lock(&n->mu);
    vg_buf_printf(out, "],\"groups\":%zu,\"alerts\":%zu}", route_dispatcher_groups(n->disp),
                  route_dispatcher_alerts(n->disp));
    pthread_mutex_unlock(&n->mu);
}
