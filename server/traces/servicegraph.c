/* servicegraph: see servicegraph.h.
 *
 * The waiting spans live in a preallocated array of struct edge: a free list, a chained
 * hash on the 24-byte key (trace id, span id of the client side) and a queue in arrival
 * order, so expiry pops from the head and stops at the first edge still within its
 * wait. Links are indexes (NIL = none). Service names are interned in a small chained
 * set; an edge points at the interned names, so it owns no memory. */
#include "servicegraph.h"

#include "../../storage/base/vg_alloc.h"

#include <pthread.h>
#include <string.h>

#define NIL UINT32_MAX
#define KEY_LEN (SPAN_TRACE_ID_LEN + SPAN_ID_LEN)

enum conn { CONN_NONE, CONN_MESSAGING, CONN_DATABASE, CONN_VIRTUAL };
static const struct vg_str CONN_NAME[] = {
    { "", 0 }, { "messaging_system", 16 }, { "database", 8 }, { "virtual_node", 12 },
};

struct svc {
    struct svc *next;
    uint64_t hash;
    struct vg_str name; /* bytes follow the struct */
};

struct edge {
    uint8_t key[KEY_LEN];
    uint32_t hnext, qprev, qnext;
    int64_t t_ms;                     /* arrival of the first side */
    bool has_client, has_server;
    bool failed;                      /* a side had status ERROR */
    bool messaging;                   /* a side was PRODUCER or CONSUMER */
    double client_s, server_s;
    const struct svc *client, *server;
    const struct svc *peer;           /* virtual server of a client-only edge, or NULL */
    enum conn peer_conn;
};

struct servicegraph {
    pthread_mutex_t mu;
    struct dtable *t;
    int64_t wait_ms;
    size_t max_names, max_value_len;
    struct edge *edges;
    uint32_t nedges, free_head, qhead, qtail;
    uint32_t nfresh; /* edges[nfresh..] were never used (not on the free list) */
    uint32_t *heads;
    size_t mask;
    struct svc **names;
    size_t names_mask, nnames;
    struct servicegraph_stats st;
};

static const struct vg_str USER = { "user", 4 };


static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n && p < ((size_t)1 << 26))
        p <<= 1;
    return p;
}

struct servicegraph *servicegraph_new(const struct servicegraph_opts *o, struct vg_err *err)
{
    if (o->max_items < 1 || o->max_items >= NIL || o->wait_ms < 0) {
        vg_err_set(err, VG_EINVAL, "service graph: max_items must be 1 to %u", NIL - 1);
        return NULL;
    }
    static const char *const labels[] = { "client", "server", "connection_type" };
    static const char *const counters[] = { SERVICEGRAPH_REQUESTS, SERVICEGRAPH_FAILED };
    static const char *const hists[] = { SERVICEGRAPH_SERVER, SERVICEGRAPH_CLIENT };
    struct dtable_def def = {
        .label_names = labels, .nlabels = 3,
        .counter_names = counters, .ncounters = 2,
        .hist_names = hists, .nhists = 2,
        .bounds = o->bounds, .nbounds = o->nbounds,
        .max_series = o->max_series, .max_value_len = o->max_value_len,
        .idle_ms = o->idle_ms,
    };
    struct servicegraph *sg = vg_calloc(1, sizeof *sg);
    if (!sg) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&sg->mu, NULL);
    sg->wait_ms = o->wait_ms;
    sg->max_names = o->max_series;
    sg->max_value_len = o->max_value_len;
    sg->nedges = (uint32_t)o->max_items;
    size_t nheads = pow2_at_least(o->max_items * 2);
    sg->mask = nheads - 1;
    sg->names_mask = pow2_at_least(o->max_series) - 1;
    sg->edges = vg_calloc(o->max_items, sizeof *sg->edges);
    sg->heads = vg_malloc(nheads * sizeof *sg->heads);
    sg->names = vg_calloc(sg->names_mask + 1, sizeof *sg->names);
    if (!sg->edges || !sg->heads || !sg->names) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        servicegraph_free(sg);
        return NULL;
    }
    if (!(sg->t = dtable_new(&def, err))) {
        servicegraph_free(sg);
        return NULL;
    }
    for (size_t i = 0; i < nheads; i++)
        sg->heads[i] = NIL;
    /* The edges are handed out in order first (nfresh), so that an idle server never
     * touches the table's pages (about 1 MB at the default max_items). */
    sg->free_head = NIL;
    sg->qhead = sg->qtail = NIL;
    return sg;
}

void servicegraph_free(struct servicegraph *sg)
{
    if (!sg)
        return;
    if (sg->names)
        for (size_t i = 0; i <= sg->names_mask; i++)
            for (struct svc *s = sg->names[i], *nx; s; s = nx) {
                nx = s->next;
                vg_free(s);
            }
    vg_free(sg->names);
    vg_free(sg->edges);
    vg_free(sg->heads);
    dtable_free(sg->t);
    pthread_mutex_destroy(&sg->mu);
    vg_free(sg);
}

/* The interned copy of name (cut to max_value_len), or NULL when the set is full. */
static const struct svc *intern(struct servicegraph *sg, struct vg_str name)
{
    if (name.len > sg->max_value_len)
        name.len = sg->max_value_len; /* the dtable cuts at a UTF-8 boundary later */
    uint64_t h = dtable_hash(name.p, name.len, 0);
    struct svc **head = &sg->names[h & sg->names_mask];
    for (struct svc *s = *head; s; s = s->next)
        if (s->hash == h && vg_str_eq(s->name, name))
            return s;
    if (sg->nnames >= sg->max_names)
        return NULL;
    struct svc *s = vg_malloc(sizeof *s + name.len + 1);
    if (!s)
        return NULL;
    char *p = (char *)(s + 1);
    if (name.len)
        memcpy(p, name.p, name.len);
    p[name.len] = '\0';
    *s = (struct svc){ .next = *head, .hash = h, .name = { p, name.len } };
    *head = s;
    sg->nnames++;
    return s;
}

/* ---- the edge store ---- */

static uint32_t *bucket_of(struct servicegraph *sg, const uint8_t *key)
{
    return &sg->heads[dtable_hash(key, KEY_LEN, 0) & sg->mask];
}

static uint32_t find(struct servicegraph *sg, const uint8_t *key)
{
    for (uint32_t i = *bucket_of(sg, key); i != NIL; i = sg->edges[i].hnext)
        if (memcmp(sg->edges[i].key, key, KEY_LEN) == 0)
            return i;
    return NIL;
}

/* Unlinks edge i from its hash chain and the queue and returns it to the free list. */
static void release(struct servicegraph *sg, uint32_t i)
{
    struct edge *e = &sg->edges[i];
    for (uint32_t *pp = bucket_of(sg, e->key); *pp != NIL; pp = &sg->edges[*pp].hnext)
        if (*pp == i) {
            *pp = e->hnext;
            break;
        }
    if (e->qprev != NIL)
        sg->edges[e->qprev].qnext = e->qnext;
    else
        sg->qhead = e->qnext;
    if (e->qnext != NIL)
        sg->edges[e->qnext].qprev = e->qprev;
    else
        sg->qtail = e->qprev;
    e->hnext = sg->free_head;
    sg->free_head = i;
    sg->st.waiting--;
}

/* Counts one edge into the output series. */
static void emit(struct servicegraph *sg, struct vg_str client, struct vg_str server,
                 enum conn conn, const struct edge *e, int64_t now_ms)
{
    struct vg_str vals[3] = { client, server, CONN_NAME[conn] };
    dtable_lock(sg->t);
    struct dseries *ds = dtable_get(sg->t, vals, now_ms);
    if (ds) {
        dtable_count(sg->t, ds, 0, 1);
        if (e->failed)
            dtable_count(sg->t, ds, 1, 1);
        if (e->has_server)
            dtable_observe(sg->t, ds, 0, e->server_s, NULL);
        if (e->has_client)
            dtable_observe(sg->t, ds, 1, e->client_s, NULL);
    }
    dtable_unlock(sg->t);
}

static void settle(struct servicegraph *sg, uint32_t i, int64_t now_ms)
{
    struct edge *e = &sg->edges[i];
    if (e->has_client && e->peer) {
        emit(sg, e->client->name, e->peer->name, e->peer_conn, e, now_ms);
        sg->st.virtual_edges++;
    } else if (e->has_client) {
        sg->st.unpaired_client++;
    } else {
        sg->st.unpaired_server++;
    }
    release(sg, i);
}

static void expire_locked(struct servicegraph *sg, int64_t now_ms)
{
    while (sg->qhead != NIL && now_ms - sg->edges[sg->qhead].t_ms > sg->wait_ms)
        settle(sg, sg->qhead, now_ms);
}

void servicegraph_expire(struct servicegraph *sg, int64_t now_ms)
{
    pthread_mutex_lock(&sg->mu);
    expire_locked(sg, now_ms);
    pthread_mutex_unlock(&sg->mu);
}

/* A free edge for key, queued at the tail; NIL when the store is full of live edges. */
static uint32_t take(struct servicegraph *sg, const uint8_t *key, int64_t now_ms)
{
    if (sg->free_head == NIL && sg->nfresh == sg->nedges)
        expire_locked(sg, now_ms);
    uint32_t i = sg->free_head;
    if (i == NIL && sg->nfresh < sg->nedges)
        i = sg->nfresh++;
    else if (i == NIL)
        return NIL;
    else
        sg->free_head = sg->edges[i].hnext;
    struct edge *e = &sg->edges[i];
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, KEY_LEN);
    uint32_t *b = bucket_of(sg, key);
    e->hnext = *b;
    *b = i;
    e->qprev = sg->qtail;
    e->qnext = NIL;
    if (sg->qtail != NIL)
        sg->edges[sg->qtail].qnext = i;
    else
        sg->qhead = i;
    sg->qtail = i;
    e->t_ms = now_ms;
    sg->st.waiting++;
    return i;
}

/* The virtual server a client span names (database or peer.service), if any: db.name
 * (or db.namespace) when db.system (or db.system.name) is set, else peer.service; only
 * non-empty string attributes count, the first of each key. One pass over the span's
 * attributes (this runs for every client span). */
static void find_peer(struct servicegraph *sg, const struct span *s, struct edge *e)
{
    static const struct vg_str keys[5] = { { "db.system", 9 }, { "db.system.name", 14 },
                                           { "db.name", 7 },   { "db.namespace", 12 },
                                           { "peer.service", 12 } };
    struct vg_str found[5] = { { NULL, 0 } };
    for (size_t i = 0; i < s->nattrs; i++) {
        const struct span_attr *a = &s->attrs[i];
        if (a->type != SPAN_VAL_STRING || !a->v.s.len || a->key.len < 7 ||
            (a->key.p[0] != 'd' && a->key.p[0] != 'p'))
            continue;
        for (size_t k = 0; k < 5; k++)
            if (!found[k].len && vg_str_eq(a->key, keys[k]))
                found[k] = a->v.s;
    }
    struct vg_str v;
    if (found[0].len || found[1].len) {
        v = found[0].len ? found[0] : found[1];
        if (found[2].len || found[3].len)
            v = found[2].len ? found[2] : found[3];
        e->peer_conn = CONN_DATABASE;
    } else if (found[4].len) {
        v = found[4];
        e->peer_conn = CONN_VIRTUAL;
    } else {
        return;
    }
    e->peer = intern(sg, v);
}

static void observe_one(struct servicegraph *sg, const struct span *s, int64_t now_ms)
{
    bool client = s->kind == SPAN_KIND_CLIENT || s->kind == SPAN_KIND_PRODUCER;
    bool server = s->kind == SPAN_KIND_SERVER || s->kind == SPAN_KIND_CONSUMER;
    if ((!client && !server) || s->end_ns < s->start_ns)
        return;
    const struct svc *name = intern(sg, s->service);
    if (!name) {
        sg->st.dropped++;
        return;
    }
    double secs = (double)(s->end_ns - s->start_ns) / 1e9;
    bool failed = s->status == SPAN_STATUS_ERROR;
    bool messaging = s->kind == SPAN_KIND_PRODUCER || s->kind == SPAN_KIND_CONSUMER;
    if (server && span_is_root(s)) {
        struct edge e = { .has_server = true, .server_s = secs, .failed = failed };
        emit(sg, USER, name->name, CONN_VIRTUAL, &e, now_ms);
        sg->st.virtual_edges++;
        return;
    }
    uint8_t key[KEY_LEN];
    memcpy(key, s->trace_id, SPAN_TRACE_ID_LEN);
    memcpy(key + SPAN_TRACE_ID_LEN, client ? s->span_id : s->parent_span_id, SPAN_ID_LEN);
    uint32_t i = find(sg, key);
    if (i == NIL && (i = take(sg, key, now_ms)) == NIL) {
        sg->st.dropped++;
        return;
    }
    struct edge *e = &sg->edges[i];
    if (client ? e->has_client : e->has_server)
        return; /* the same side again (a resent span): keep the first */
    if (client) {
        e->has_client = true;
        e->client = name;
        e->client_s = secs;
        if (s->kind == SPAN_KIND_CLIENT)
            find_peer(sg, s, e);
    } else {
        e->has_server = true;
        e->server = name;
        e->server_s = secs;
    }
    e->failed |= failed;
    e->messaging |= messaging;
    if (e->has_client && e->has_server) {
        emit(sg, e->client->name, e->server->name, e->messaging ? CONN_MESSAGING : CONN_NONE,
             e, now_ms);
        sg->st.paired++;
        release(sg, i);
    }
}

void servicegraph_observe(struct servicegraph *sg, const struct span *spans, size_t n,
                          int64_t now_ms)
{
    pthread_mutex_lock(&sg->mu);
    for (size_t i = 0; i < n; i++)
        observe_one(sg, &spans[i], now_ms);
    pthread_mutex_unlock(&sg->mu);
}

int servicegraph_collect(struct servicegraph *sg, int64_t now_ms, struct dtable_out *out,
                         struct vg_err *err)
{
    servicegraph_expire(sg, now_ms);
    return dtable_collect(sg->t, now_ms, out, err);
}

void servicegraph_stats(struct servicegraph *sg, struct servicegraph_stats *st)
{
    pthread_mutex_lock(&sg->mu);
    *st = sg->st;
    pthread_mutex_unlock(&sg->mu);
    dtable_stats(sg->t, &st->series);
}
