/* history: see history.h. The ring holds each entry's JSON text, exactly what is stored
 * and listed, so listing is concatenation. */
#include "history.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/kv.h"
#include "route.h"

#include <pthread.h>
#include <string.h>

struct history {
    pthread_mutex_t mu;
    struct kv *kv;
    char **ring;         /* ring[seq % cap] */
    size_t cap;
    uint64_t next_seq;   /* sequence of the next entry */
    uint64_t first_seq;  /* oldest held */
};

static void key_of(uint64_t seq, char out[10])
{
    out[0] = 'h';
    out[1] = '/';
    for (int i = 0; i < 8; i++)
        out[2 + i] = (char)(seq >> (56 - 8 * i));
}

static uint64_t seq_of(const char *key)
{
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s = s << 8 | (unsigned char)key[2 + i];
    return s;
}

static void put(struct history *h, uint64_t seq, char *text)
{
    size_t slot = (size_t)(seq % h->cap);
    vg_free(h->ring[slot]);
    h->ring[slot] = text;
    if (seq + 1 > h->next_seq)
        h->next_seq = seq + 1;
    if (h->next_seq - h->first_seq > h->cap)
        h->first_seq = h->next_seq - h->cap;
}

struct history *history_new(struct kv *kv, size_t cap, struct vg_err *err)
{
    struct history *h = vg_calloc(1, sizeof *h);
    if (!h || !(h->ring = vg_calloc(cap ? cap : 1, sizeof *h->ring))) {
        vg_free(h);
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->kv = kv;
    h->cap = cap ? cap : 1;
    if (!kv)
        return h;
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    if (!it) {
        history_free(h);
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    }
    bool first = true;
    for (kv_iter_seek(it, "h/", 2); kv_iter_has_prefix(it, "h/", 2); kv_iter_next(it)) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        char *text = klen == 10 ? vg_strndup(v, vlen) : NULL;
        if (!text)
            continue;
        uint64_t seq = seq_of(k);
        if (first)
            h->first_seq = seq;
        first = false;
        put(h, seq, text);
    }
    int rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (rc < 0) {
        history_free(h);
        return NULL;
    }
    return h;
}

void history_free(struct history *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->cap; i++)
        vg_free(h->ring[i]);
    vg_free(h->ring);
    pthread_mutex_destroy(&h->mu);
    vg_free(h);
}

static void encode(const struct history_attempt *a, struct vg_buf *b)
{
    vg_buf_puts(b, "{\"time\":\"");
    route_rfc3339(b, a->time_ms);
    vg_buf_puts(b, "\",\"receiver\":");
    vg_buf_json_str(b, a->receiver, strlen(a->receiver));
    vg_buf_puts(b, ",\"integration\":");
    vg_buf_json_str(b, a->integration, strlen(a->integration));
    vg_buf_puts(b, ",\"groupKey\":");
    const char *gk = a->group_key ? a->group_key : "";
    vg_buf_json_str(b, gk, strlen(gk));
    vg_buf_puts(b, ",\"fingerprints\":[");
    for (size_t i = 0; i < a->nfingerprints; i++)
        vg_buf_printf(b, "%s\"%016llx\"", i ? "," : "", (unsigned long long)a->fingerprints[i]);
    vg_buf_printf(b, "],\"status\":\"%s\",\"attempt\":%d,\"error\":", a->status, a->attempt);
    const char *e = a->error ? a->error : "";
    vg_buf_json_str(b, e, strlen(e));
    vg_buf_putc(b, '}');
}

void history_add(struct history *h, const struct history_attempt *a)
{
    struct vg_buf b;
    vg_buf_init(&b);
    encode(a, &b);
    char *text = vg_buf_failed(&b) ? NULL : vg_buf_steal(&b, NULL);
    vg_buf_free(&b);
    if (!text)
        return;
    pthread_mutex_lock(&h->mu);
    uint64_t seq = h->next_seq;
    if (h->kv) {
        struct kv_batch *kb = kv_batch_new();
        char key[10], old[10];
        key_of(seq, key);
        struct vg_err err;
        if (kb) {
            kv_batch_put(kb, key, sizeof key, text, strlen(text));
            if (seq >= h->cap) {
                key_of(seq - h->cap, old);
                kv_batch_delete(kb, old, sizeof old);
            }
            if (kv_write(h->kv, kb, false, &err) < 0)
                vg_log(VG_LOG_WARN, "notify", "cannot store a notification attempt", "error",
                       err.msg, NULL);
        }
        kv_batch_free(kb);
    }
    put(h, seq, text);
    pthread_mutex_unlock(&h->mu);
}

void history_json(struct history *h, size_t limit, struct vg_buf *out)
{
    pthread_mutex_lock(&h->mu);
    vg_buf_putc(out, '[');
    size_t n = 0;
    for (uint64_t s = h->next_seq; s > h->first_seq && (!limit || n < limit); s--) {
        const char *t = h->ring[(s - 1) % h->cap];
        if (!t)
            continue;
        if (n++)
            vg_buf_putc(out, ',');
        vg_buf_puts(out, t);
    }
    vg_buf_putc(out, ']');
    pthread_mutex_unlock(&h->mu);
}

size_t history_len(struct history *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = 0;
    for (size_t i = 0; i < h->cap; i++)
        n += h->ring[i] != NULL;
    pthread_mutex_unlock(&h->mu);
    return n;
}
