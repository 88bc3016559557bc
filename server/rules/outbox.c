/* outbox: see outbox.h. The worker moves a batch out of the ring before sending, so
 * pushes (and drop-oldest) never touch items in flight; the batch stays with the worker
 * across retries. */
#include "outbox.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/kv.h"
#include "../metrics.h"
#include "history.h"
#include "route.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct outbox {
    struct outbox_opts o;
    char *id, *receiver, *integration;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    struct outbox_item **ring;  /* capacity slots, head..head+len */
    size_t head, len;
    /* the batch in flight (worker-owned; read for status under mu) */
    size_t inflight;
    int attempt;
    int64_t next_attempt_ms;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_of(const struct outbox *ob)
{
    return ob->o.clock_ms ? ob->o.clock_ms() : wall_ms();
}

int64_t outbox_backoff_ms(int attempt, int64_t initial_ms, int64_t max_ms, uint32_t rnd)
{
    int64_t d = initial_ms;
    for (int i = 1; i < attempt && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    return d / 2 + (int64_t)(rnd % (uint64_t)(d / 2 + 1));
}

static void key_of(uint64_t seq, char out[10])
{
    out[0] = 'q';
    out[1] = '/';
    for (int i = 0; i < 8; i++)
        out[2 + i] = (char)(seq >> (56 - 8 * i));
}

static void item_free(struct outbox_item *it)
{
    if (!it)
        return;
    vg_free(it->payload);
    vg_free(it->group_key);
    vg_free(it->fps);
    vg_free(it);
}

static void kv_forget(struct kv *kv, struct outbox_item *const *items, size_t n)
{
    if (!kv || !n)
        return;
    struct kv_batch *b = kv_batch_new();
    if (!b)
        return;
    for (size_t i = 0; i < n; i++) {
        char key[10];
        key_of(items[i]->seq, key);
        kv_batch_delete(b, key, sizeof key);
    }
    struct vg_err err;
    if (kv_write(kv, b, false, &err) < 0)
        vg_log(VG_LOG_WARN, "notify", "cannot delete delivered notifications", "error",
               err.msg, NULL);
    kv_batch_free(b);
}

void outbox_item_discard(struct kv *kv, struct outbox_item *it)
{
    kv_forget(kv, &it, 1);
    item_free(it);
}

static void record(struct outbox *ob, struct outbox_item *const *items, size_t n,
                   const char *status, int attempt, const char *error)
{
    if (!ob->o.hist)
        return;
    size_t nfps = 0;
    for (size_t i = 0; i < n; i++)
        nfps += items[i]->nfps;
    uint64_t *fps = vg_malloc((nfps + 1) * sizeof *fps);
    if (!fps)
        return;
    nfps = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(fps + nfps, items[i]->fps, items[i]->nfps * sizeof *fps);
        nfps += items[i]->nfps;
    }
    struct history_attempt a = {
        .receiver = ob->receiver, .integration = ob->integration,
        .group_key = n == 1 ? items[0]->group_key : "", .fingerprints = fps,
        .nfingerprints = nfps, .status = status, .attempt = attempt, .error = error,
        .time_ms = now_of(ob),
    };
    history_add(ob->o.hist, &a);
    vg_free(fps);
}

static void count(struct metric_family *f, double v, const struct outbox *ob)
{
    if (f)
        metric_add(f, v, ob->receiver, ob->integration);
}

static void gauge_len(struct outbox *ob)
{
    if (ob->o.queue_len)
        metric_set(ob->o.queue_len, (double)ob->len, ob->receiver, ob->integration);
}

/* Waits on cv until deadline (ms, wall clock of the outbox) or a signal. */
static void wait_until(struct outbox *ob, int64_t deadline_ms)
{
    int64_t left = deadline_ms - now_of(ob);
    if (left <= 0)
        return;
    if (left > 1000)
        left = 1000; /* a fake clock in tests moves on its own: look again every second */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (long)(left % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&ob->cv, &ob->mu, &ts);
}

static void *worker(void *arg)
{
    struct outbox *ob = arg;
    struct outbox_item **batch = vg_calloc(ob->o.batch, sizeof *batch);
    if (!batch) {
        vg_log(VG_LOG_ERROR, "notify", "out of memory starting a delivery worker", "target",
               ob->id, NULL);
        return NULL;
    }
    pthread_mutex_lock(&ob->mu);
    while (!atomic_load(&ob->stop)) {
        if (!ob->inflight) {
            if (!ob->len) {
                pthread_cond_wait(&ob->cv, &ob->mu);
                continue;
            }
            while (ob->inflight < ob->o.batch && ob->len) {
                batch[ob->inflight++] = ob->ring[ob->head];
                ob->head = (ob->head + 1) % ob->o.capacity;
                ob->len--;
            }
            ob->attempt = 0;
            ob->next_attempt_ms = 0;
            gauge_len(ob);
        }
        if (ob->next_attempt_ms > now_of(ob)) {
            wait_until(ob, ob->next_attempt_ms);
            continue;
        }
        size_t n = ob->inflight;
        int attempt = ++ob->attempt;
        pthread_mutex_unlock(&ob->mu);
        struct vg_err err;
        vg_err_clear(&err);
        int rc = ob->o.send(ob->o.ctx, batch, n, &ob->stop, &err);
        if (rc < 0 && atomic_load(&ob->stop)) {
            pthread_mutex_lock(&ob->mu); /* shutdown: the batch stays in kv for the restart */
            break;
        }
        if (rc == 0) {
            record(ob, batch, n, "success", attempt, NULL);
            count(ob->o.sent, (double)n, ob);
        } else {
            bool give_up = attempt >= ob->o.max_attempts;
            record(ob, batch, n, give_up ? "failed" : "retry", attempt, err.msg);
            count(ob->o.failed, 1, ob);
            if (give_up)
                count(ob->o.dropped, (double)n, ob);
            vg_log(give_up ? VG_LOG_ERROR : VG_LOG_WARN, "notify",
                   give_up ? "notification failed, giving up" : "notification failed, will retry",
                   "target", ob->id, "error", err.msg, NULL);
            if (!give_up) {
                uint32_t rnd = 0;
                if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
                    rnd = (uint32_t)now_of(ob);
                pthread_mutex_lock(&ob->mu);
                ob->next_attempt_ms = now_of(ob) + outbox_backoff_ms(attempt,
                                                                     ob->o.initial_backoff_ms,
                                                                     ob->o.max_backoff_ms, rnd);
                continue;
            }
        }
        kv_forget(ob->o.kv, batch, n);
        for (size_t i = 0; i < n; i++)
            item_free(batch[i]);
        pthread_mutex_lock(&ob->mu);
        ob->inflight = 0;
    }
    /* stop: whatever the worker still holds is freed here; kv keeps it */
    for (size_t i = 0; i < ob->inflight; i++)
        item_free(batch[i]);
    ob->inflight = 0;
    pthread_mutex_unlock(&ob->mu);
    vg_free(batch);
    return NULL;
}

struct outbox *outbox_new(const struct outbox_opts *o, struct vg_err *err)
{
    struct outbox *ob = vg_calloc(1, sizeof *ob);
    if (!ob)
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    ob->o = *o;
    if (!ob->o.batch)
        ob->o.batch = 1;
    if (ob->o.capacity < ob->o.batch)
        ob->o.capacity = ob->o.batch;
    if (ob->o.max_attempts < 1)
        ob->o.max_attempts = 1;
    pthread_mutex_init(&ob->mu, NULL);
    pthread_cond_init(&ob->cv, NULL);
    atomic_init(&ob->stop, false);
    ob->id = vg_strdup(o->id);
    ob->receiver = vg_strdup(o->receiver);
    ob->integration = vg_strdup(o->integration);
    ob->ring = vg_calloc(ob->o.capacity, sizeof *ob->ring);
    if (!ob->id || !ob->receiver || !ob->integration || !ob->ring) {
        outbox_free(ob);
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    }
    int e = pthread_create(&ob->thread, NULL, worker, ob);
    if (e) {
        outbox_free(ob);
        return vg_err_set(err, VG_EINTERNAL, "cannot start a delivery thread: %s",
                          strerror(e)), NULL;
    }
    ob->started = true;
    return ob;
}

void outbox_free(struct outbox *ob)
{
    if (!ob)
        return;
    if (ob->started) {
        pthread_mutex_lock(&ob->mu);
        atomic_store(&ob->stop, true);
        pthread_cond_broadcast(&ob->cv);
        pthread_mutex_unlock(&ob->mu);
        pthread_join(ob->thread, NULL);
    }
    for (size_t i = 0; ob->ring && i < ob->len; i++)
        item_free(ob->ring[(ob->head + i) % ob->o.capacity]);
    vg_free(ob->ring);
    vg_free(ob->id);
    vg_free(ob->receiver);
    vg_free(ob->integration);
    pthread_cond_destroy(&ob->cv);
    pthread_mutex_destroy(&ob->mu);
    vg_free(ob);
}

const char *outbox_id(const struct outbox *ob)
{
    return ob->id;
}

static void put_fps(struct vg_buf *b, const uint64_t *fps, size_t n)
{
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++)
        vg_buf_printf(b, "%s\"%016llx\"", i ? "," : "", (unsigned long long)fps[i]);
    vg_buf_putc(b, ']');
}

static void persist(struct outbox *ob, const struct outbox_item *it)
{
    if (!ob->o.kv)
        return;
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(&b, "{\"target\":");
    vg_buf_json_str(&b, ob->id, strlen(ob->id));
    vg_buf_puts(&b, ",\"groupKey\":");
    vg_buf_json_str(&b, it->group_key, strlen(it->group_key));
    vg_buf_puts(&b, ",\"fingerprints\":");
    put_fps(&b, it->fps, it->nfps);
    vg_buf_printf(&b, ",\"created\":%lld,\"payload\":", (long long)it->created_ms);
    vg_buf_json_str(&b, it->payload, it->len);
    vg_buf_putc(&b, '}');
    char key[10];
    key_of(it->seq, key);
    struct vg_err err;
    if (vg_buf_failed(&b) || kv_put(ob->o.kv, key, sizeof key, b.p, b.len, false, &err) < 0)
        vg_log(VG_LOG_WARN, "notify", "cannot persist a queued notification", "target",
               ob->id, "error", vg_buf_failed(&b) ? "out of memory" : err.msg, NULL);
    vg_buf_free(&b);
}

/* Appends it to the ring (mu held), dropping the oldest waiting item when full. */
static void enqueue(struct outbox *ob, struct outbox_item *it)
{
    if (ob->len == ob->o.capacity) {
        struct outbox_item *old = ob->ring[ob->head];
        ob->head = (ob->head + 1) % ob->o.capacity;
        ob->len--;
        record(ob, &old, 1, "dropped", 0, "queue full: dropped the oldest notification");
        count(ob->o.dropped, 1, ob);
        outbox_item_discard(ob->o.kv, old);
    }
    ob->ring[(ob->head + ob->len) % ob->o.capacity] = it;
    ob->len++;
    gauge_len(ob);
    pthread_cond_signal(&ob->cv);
}

bool outbox_push(struct outbox *ob, const char *payload, size_t len, const char *group_key,
                 const uint64_t *fps, size_t nfps, int64_t now_ms)
{
    struct outbox_item *it = vg_calloc(1, sizeof *it);
    if (it) {
        it->payload = vg_malloc(len + 1);
        it->group_key = vg_strdup(group_key ? group_key : "");
        it->fps = vg_malloc((nfps + 1) * sizeof *it->fps);
    }
    if (!it || !it->payload || !it->group_key || !it->fps) {
        item_free(it);
        count(ob->o.dropped, 1, ob);
        return false;
    }
    memcpy(it->payload, payload, len);
    it->payload[len] = '\0';
    it->len = len;
    if (nfps)
        memcpy(it->fps, fps, nfps * sizeof *fps);
    it->nfps = nfps;
    it->created_ms = now_ms;
    it->seq = atomic_fetch_add(ob->o.seq, 1);
    persist(ob, it);
    pthread_mutex_lock(&ob->mu);
    enqueue(ob, it);
    pthread_mutex_unlock(&ob->mu);
    return true;
}

void outbox_push_restored(struct outbox *ob, struct outbox_item *it)
{
    struct outbox_item *own = vg_malloc(sizeof *own);
    if (!own) {
        vg_free(it->payload);
        vg_free(it->group_key);
        vg_free(it->fps);
        return;
    }
    *own = *it;
    pthread_mutex_lock(&ob->mu);
    enqueue(ob, own);
    pthread_mutex_unlock(&ob->mu);
}

int outbox_restore_json(const char *val, size_t len, uint64_t seq, char **target,
                        struct outbox_item *it, struct vg_err *err)
{
    memset(it, 0, sizeof *it);
    *target = NULL;
    json_t *o = json_loadb(val, len, 0, NULL);
    const char *t = json_string_value(json_object_get(o, "target"));
    const char *gk = json_string_value(json_object_get(o, "groupKey"));
    json_t *pl = json_object_get(o, "payload");
    json_t *fps = json_object_get(o, "fingerprints");
    if (!o || !t || !gk || !json_is_string(pl) || !json_is_array(fps)) {
        json_decref(o);
        return vg_err_set(err, VG_EINVAL, "stored notification %llu does not parse",
                          (unsigned long long)seq);
    }
    size_t n = json_array_size(fps);
    it->seq = seq;
    it->len = json_string_length(pl);
    it->payload = vg_malloc(it->len + 1);
    it->group_key = vg_strdup(gk);
    it->fps = vg_malloc((n + 1) * sizeof *it->fps);
    *target = vg_strdup(t);
    it->created_ms = json_integer_value(json_object_get(o, "created"));
    int rc = 0;
    if (!it->payload || !it->group_key || !it->fps || !*target) {
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    } else {
        memcpy(it->payload, json_string_value(pl), it->len);
        it->payload[it->len] = '\0';
        for (size_t i = 0; i < n; i++) {
            const char *h = json_string_value(json_array_get(fps, i));
            it->fps[it->nfps++] = h ? strtoull(h, NULL, 16) : 0;
        }
    }
    json_decref(o);
    if (rc < 0) {
        vg_free(it->payload);
        vg_free(it->group_key);
        vg_free(it->fps);
        vg_free(*target);
        memset(it, 0, sizeof *it);
        *target = NULL;
    }
    return rc;
}

size_t outbox_len(struct outbox *ob)
{
    pthread_mutex_lock(&ob->mu);
    size_t n = ob->len;
    pthread_mutex_unlock(&ob->mu);
    return n;
}

void outbox_status_json(struct outbox *ob, struct vg_buf *out)
{
    pthread_mutex_lock(&ob->mu);
    vg_buf_puts(out, "{\"id\":");
    vg_buf_json_str(out, ob->id, strlen(ob->id));
    vg_buf_puts(out, ",\"receiver\":");
    vg_buf_json_str(out, ob->receiver, strlen(ob->receiver));
    vg_buf_puts(out, ",\"integration\":");
    vg_buf_json_str(out, ob->integration, strlen(ob->integration));
    vg_buf_printf(out, ",\"queued\":%zu,\"inflight\":%zu,\"attempt\":%d,\"nextAttempt\":",
                  ob->len, ob->inflight, ob->attempt);
    if (ob->inflight && ob->next_attempt_ms) {
        vg_buf_putc(out, '"');
        route_rfc3339(out, ob->next_attempt_ms);
        vg_buf_putc(out, '"');
    } else {
        vg_buf_puts(out, "null");
    }
    vg_buf_putc(out, '}');
    pthread_mutex_unlock(&ob->mu);
}
