/* silence: see silence.h. The set is a plain array: silences number in the tens, and
 * matching walks them all anyway. */
#include "silence.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/base/vg_time.h"
#include "../../storage/kv.h"
#include "../../storage/tsdb/matcher.h"
#include "route.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#define KEY_PREFIX "s/"
#define MAX_MATCHERS 64
#define MAX_TEXT 4096

struct smatcher {
    char *name, *value;
    bool is_regex, is_equal;
    struct matcher *m;
};

struct silence {
    char id[SILENCE_ID_LEN + 1];
    struct smatcher *ms;
    size_t nms;
    int64_t starts_at, ends_at, updated_at;
    char *created_by, *comment;
};

struct silences {
    pthread_mutex_t mu;
    struct kv *kv;
    struct silence *v;
    size_t n, cap;
};

static void silence_clear(struct silence *s)
{
    for (size_t i = 0; i < s->nms; i++) {
        vg_free(s->ms[i].name);
        vg_free(s->ms[i].value);
        matcher_free(s->ms[i].m);
    }
    vg_free(s->ms);
    vg_free(s->created_by);
    vg_free(s->comment);
    memset(s, 0, sizeof *s);
}

int silence_parse_time(const char *s, int64_t *ms, struct vg_err *err)
{
    struct vg_time_tm tm;
    size_t len = strlen(s);
    if (vg_time_rfc3339_scan(s, len, 0, &tm) != len || !len)
        return vg_err_set(err, VG_EINVAL, "\"%.64s\" is not an RFC 3339 time", s);
    *ms = vg_time_tm_seconds(&tm) * 1000 + tm.nsec / 1000000;
    return 0;
}

static int get_time(json_t *o, const char *key, int64_t *ms, bool required, struct vg_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v && !required)
        return 0;
    if (!json_is_string(v))
        return vg_err_set(err, VG_EINVAL, "%s: expected an RFC 3339 time string", key);
    int rc = silence_parse_time(json_string_value(v), ms, err);
    return rc < 0 ? vg_err_prefix(err, "%s", key) : 0;
}

static int get_text(json_t *o, const char *key, char **out, struct vg_err *err)
{
    json_t *v = json_object_get(o, key);
    const char *s = v ? json_string_value(v) : "";
    if (!s)
        return vg_err_set(err, VG_EINVAL, "%s: expected a string", key);
    if (strlen(s) > MAX_TEXT)
        return vg_err_set(err, VG_ETOOLARGE, "%s: longer than %d bytes", key, MAX_TEXT);
    if (!(*out = vg_strdup(s)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    return 0;
}

static int get_bool(json_t *o, const char *key, bool *out, const char *where,
                    struct vg_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return vg_err_set(err, VG_EINVAL, "%s.%s: expected true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

static int parse_matchers(json_t *arr, struct silence *s, struct vg_err *err)
{
    if (!json_is_array(arr) || !json_array_size(arr))
        return vg_err_set(err, VG_EINVAL, "matchers: expected a non-empty list");
    size_t n = json_array_size(arr);
    if (n > MAX_MATCHERS)
        return vg_err_set(err, VG_ETOOLARGE, "matchers: more than %d", MAX_MATCHERS);
    if (!(s->ms = vg_calloc(n, sizeof *s->ms)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    bool all_empty = true;
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(arr, i);
        char where[32];
        snprintf(where, sizeof where, "matchers[%zu]", i);
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *value = json_string_value(json_object_get(m, "value"));
        struct smatcher *sm = &s->ms[s->nms];
        sm->is_equal = true;
        if (!json_is_object(m) || !name || !*name || !value)
            return vg_err_set(err, VG_EINVAL, "%s: expected {\"name\", \"value\"} strings "
                              "with a non-empty name", where);
        int rc;
        if ((rc = get_bool(m, "isRegex", &sm->is_regex, where, err)) < 0 ||
            (rc = get_bool(m, "isEqual", &sm->is_equal, where, err)) < 0)
            return rc;
        s->nms++;
        if (!(sm->name = vg_strdup(name)) || !(sm->value = vg_strdup(value)))
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        enum matcher_op op = sm->is_regex ? (sm->is_equal ? MATCH_RE : MATCH_NRE)
                                          : (sm->is_equal ? MATCH_EQ : MATCH_NEQ);
        if (!(sm->m = matcher_new(op, vg_str_c(name), vg_str_c(value), err)))
            return vg_err_prefix(err, "%s", where);
        all_empty &= matcher_matches(sm->m, VG_STR(""));
    }
    if (all_empty)
        return vg_err_set(err, VG_EINVAL,
                          "matchers: at least one matcher must not match the empty string");
    return 0;
}

static void new_id(char out[SILENCE_ID_LEN + 1])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* no entropy source: time and address still make ids unique enough */
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof r; i++)
            r[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)(i * 37);
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* variant 10 */
    snprintf(out, SILENCE_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

/* Parses a silence object (the POST body or a stored record) into s. */
static int parse_silence(json_t *o, struct silence *s, int64_t now, struct vg_err *err)
{
    if (!json_is_object(o))
        return vg_err_set(err, VG_EINVAL, "expected a JSON object");
    s->starts_at = now;
    int rc;
    if ((rc = parse_matchers(json_object_get(o, "matchers"), s, err)) < 0 ||
        (rc = get_time(o, "startsAt", &s->starts_at, false, err)) < 0 ||
        (rc = get_time(o, "endsAt", &s->ends_at, true, err)) < 0 ||
        (rc = get_text(o, "createdBy", &s->created_by, err)) < 0 ||
        (rc = get_text(o, "comment", &s->comment, err)) < 0)
        return rc;
    s->updated_at = now;
    return get_time(o, "updatedAt", &s->updated_at, false, err);
}

static const char *state(const struct silence *s, int64_t now)
{
    return now < s->starts_at ? "pending" : now < s->ends_at ? "active" : "expired";
}

static void put_time(struct vg_buf *b, const char *key, int64_t ms)
{
    vg_buf_printf(b, ",\"%s\":\"", key);
    route_rfc3339(b, ms);
    vg_buf_putc(b, '"');
}

static void put_silence(struct vg_buf *b, const struct silence *s, bool with_status,
                        int64_t now)
{
    vg_buf_printf(b, "{\"id\":\"%s\"", s->id);
    if (with_status)
        vg_buf_printf(b, ",\"status\":{\"state\":\"%s\"}", state(s, now));
    put_time(b, "updatedAt", s->updated_at);
    vg_buf_puts(b, ",\"matchers\":[");
    for (size_t i = 0; i < s->nms; i++) {
        vg_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        vg_buf_json_str(b, s->ms[i].name, strlen(s->ms[i].name));
        vg_buf_puts(b, ",\"value\":");
        vg_buf_json_str(b, s->ms[i].value, strlen(s->ms[i].value));
        vg_buf_printf(b, ",\"isRegex\":%s,\"isEqual\":%s}", s->ms[i].is_regex ? "true" : "false",
                      s->ms[i].is_equal ? "true" : "false");
    }
    vg_buf_putc(b, ']');
    put_time(b, "startsAt", s->starts_at);
    put_time(b, "endsAt", s->ends_at);
    vg_buf_puts(b, ",\"createdBy\":");
    vg_buf_json_str(b, s->created_by, strlen(s->created_by));
    vg_buf_puts(b, ",\"comment\":");
    vg_buf_json_str(b, s->comment, strlen(s->comment));
    vg_buf_putc(b, '}');
}

static int store(struct silences *ss, const struct silence *s, struct vg_err *err)
{
    if (!ss->kv)
        return 0;
    struct vg_buf b;
    vg_buf_init(&b);
    put_silence(&b, s, false, 0);
    char key[sizeof KEY_PREFIX + SILENCE_ID_LEN];
    int klen = snprintf(key, sizeof key, KEY_PREFIX "%s", s->id);
    int rc = vg_buf_failed(&b) ? vg_err_set(err, VG_ENOMEM, "out of memory")
                               : kv_put(ss->kv, key, (size_t)klen, b.p, b.len, true, err);
    vg_buf_free(&b);
    return rc;
}

static struct silence *find(struct silences *ss, const char *id)
{
    for (size_t i = 0; i < ss->n; i++)
        if (!strcmp(ss->v[i].id, id))
            return &ss->v[i];
    return NULL;
}

static bool grow(struct silences *ss)
{
    if (ss->n < ss->cap)
        return true;
    size_t nc = ss->cap ? ss->cap * 2 : 8;
    struct silence *nv = vg_realloc(ss->v, nc * sizeof *nv);
    if (!nv)
        return false;
    ss->v = nv;
    ss->cap = nc;
    return true;
}

static int load(struct silences *ss, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(ss->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    for (kv_iter_seek(it, KEY_PREFIX, 2); kv_iter_has_prefix(it, KEY_PREFIX, 2);
         kv_iter_next(it)) {
        size_t vlen, klen;
        const char *val = kv_iter_value(it, &vlen);
        const char *key = kv_iter_key(it, &klen);
        struct silence s = { 0 };
        struct vg_err perr;
        json_t *o = json_loadb(val, vlen, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (!o || !id || strlen(id) != SILENCE_ID_LEN ||
            parse_silence(o, &s, 0, &perr) < 0) {
            vg_log(VG_LOG_WARN, "notify", "skipping a stored silence that does not parse",
                   "key", klen > 2 ? key + 2 : "", NULL);
            silence_clear(&s);
            json_decref(o);
            continue;
        }
        memcpy(s.id, id, SILENCE_ID_LEN + 1);
        json_decref(o);
        if (!grow(ss)) {
            silence_clear(&s);
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
            break;
        }
        ss->v[ss->n++] = s;
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    return rc;
}

struct silences *silences_new(struct kv *kv, struct vg_err *err)
{
    struct silences *ss = vg_calloc(1, sizeof *ss);
    if (!ss)
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    pthread_mutex_init(&ss->mu, NULL);
    ss->kv = kv;
    if (kv && load(ss, err) < 0) {
        silences_free(ss);
        return NULL;
    }
    return ss;
}

void silences_free(struct silences *ss)
{
    if (!ss)
        return;
    for (size_t i = 0; i < ss->n; i++)
        silence_clear(&ss->v[i]);
    vg_free(ss->v);
    pthread_mutex_destroy(&ss->mu);
    vg_free(ss);
}

int silences_create_json(struct silences *ss, const char *body, size_t len, int64_t now_ms,
                         char id_out[SILENCE_ID_LEN + 1], struct vg_err *err)
{
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);
    if (!o)
        return vg_err_set(err, VG_EINVAL, "invalid JSON at line %d column %d: %s", je.line,
                          je.column, je.text);
    struct silence s = { 0 };
    int rc = parse_silence(o, &s, now_ms, err);
    s.updated_at = now_ms;
    json_t *idv = json_object_get(o, "id");
    const char *id = json_string_value(idv);
    if (rc == 0 && idv && !json_is_null(idv) && (!id || (*id && strlen(id) != SILENCE_ID_LEN)))
        rc = vg_err_set(err, VG_EINVAL, "id: expected a silence id string");
    if (rc == 0 && s.ends_at <= s.starts_at)
        rc = vg_err_set(err, VG_EINVAL, "endsAt: must be after startsAt");
    if (rc == 0 && s.ends_at <= now_ms)
        rc = vg_err_set(err, VG_EINVAL, "endsAt: lies in the past");
    pthread_mutex_lock(&ss->mu);
    struct silence *old = rc == 0 && id && *id ? find(ss, id) : NULL;
    if (rc == 0 && id && *id && !old)
        rc = vg_err_set(err, VG_ENOTFOUND, "silence %s not found", id);
    if (rc == 0 && !old && !grow(ss))
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    if (rc == 0) {
        if (old)
            memcpy(s.id, old->id, sizeof s.id);
        else
            new_id(s.id);
        rc = store(ss, &s, err);
    }
    if (rc == 0) {
        if (old) {
            silence_clear(old);
            *old = s;
        } else {
            ss->v[ss->n++] = s;
        }
        memcpy(id_out, s.id, SILENCE_ID_LEN + 1);
    } else {
        silence_clear(&s);
    }
    pthread_mutex_unlock(&ss->mu);
    json_decref(o);
    return rc;
}

int silences_expire(struct silences *ss, const char *id, int64_t now_ms, struct vg_err *err)
{
    pthread_mutex_lock(&ss->mu);
    struct silence *s = find(ss, id);
    int rc = 0;
    if (!s) {
        rc = vg_err_set(err, VG_ENOTFOUND, "silence %.64s not found", id);
    } else if (now_ms >= s->ends_at) {
        rc = vg_err_set(err, VG_ECONFLICT, "silence %s already expired", id);
    } else {
        struct silence saved = *s;
        if (now_ms < s->starts_at)
            s->starts_at = now_ms;
        s->ends_at = now_ms;
        s->updated_at = now_ms;
        if ((rc = store(ss, s, err)) < 0) {
            s->starts_at = saved.starts_at;
            s->ends_at = saved.ends_at;
            s->updated_at = saved.updated_at;
        }
    }
    pthread_mutex_unlock(&ss->mu);
    return rc;
}

void silences_list_json(struct silences *ss, int64_t now_ms, struct vg_buf *out)
{
    pthread_mutex_lock(&ss->mu);
    bool *done = vg_calloc(ss->n + 1, sizeof *done);
    vg_buf_putc(out, '[');
    for (size_t k = 0; done && k < ss->n; k++) {
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < ss->n; i++)
            if (!done[i] && (best == SIZE_MAX || ss->v[i].updated_at > ss->v[best].updated_at))
                best = i;
        done[best] = true;
        if (k)
            vg_buf_putc(out, ',');
        put_silence(out, &ss->v[best], true, now_ms);
    }
    vg_buf_putc(out, ']');
    if (!done)
        out->failed = true;
    vg_free(done);
    pthread_mutex_unlock(&ss->mu);
}

bool silences_mutes(struct silences *ss, const struct label *ls, size_t n, int64_t now_ms)
{
    bool muted = false;
    pthread_mutex_lock(&ss->mu);
    for (size_t i = 0; i < ss->n && !muted; i++) {
        const struct silence *s = &ss->v[i];
        if (now_ms < s->starts_at || now_ms >= s->ends_at)
            continue;
        muted = true;
        for (size_t k = 0; k < s->nms && muted; k++) {
            struct vg_str v = labels_get(ls, n, s->ms[k].name);
            muted = matcher_matches(s->ms[k].m, v.p ? v : VG_STR(""));
        }
    }
    pthread_mutex_unlock(&ss->mu);
    return muted;
}

size_t silences_gc(struct silences *ss, int64_t now_ms)
{
    size_t dropped = 0, w = 0;
    pthread_mutex_lock(&ss->mu);
    for (size_t i = 0; i < ss->n; i++) {
        struct silence *s = &ss->v[i];
        if (now_ms - s->ends_at <= SILENCE_RETENTION_MS) {
            ss->v[w++] = *s;
            continue;
        }
        if (ss->kv) {
            char key[sizeof KEY_PREFIX + SILENCE_ID_LEN];
            int klen = snprintf(key, sizeof key, KEY_PREFIX "%s", s->id);
            struct vg_err err;
            if (kv_delete(ss->kv, key, (size_t)klen, false, &err) < 0)
                vg_log(VG_LOG_WARN, "notify", "cannot delete an old silence", "error", err.msg,
                       NULL);
        }
        silence_clear(s);
        dropped++;
    }
    ss->n = w;
    pthread_mutex_unlock(&ss->mu);
    return dropped;
}

void silences_count(struct silences *ss, int64_t now_ms, size_t out[3])
{
    out[0] = out[1] = out[2] = 0;
    pthread_mutex_lock(&ss->mu);
    for (size_t i = 0; i < ss->n; i++) {
        const char *st = state(&ss->v[i], now_ms);
        out[st[0] == 'p' ? 0 : st[0] == 'a' ? 1 : 2]++;
    }
    pthread_mutex_unlock(&ss->mu);
}
