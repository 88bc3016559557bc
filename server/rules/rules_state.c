/* rules_state: alert state saved across restarts, so a restart neither resets `for`
 * timers nor re-notifies (Prometheus gets the first from ALERTS_FOR_STATE; the send
 * times it loses, which is why it re-sends after a restart; Vigil keeps both).
 *
 * File: <state_dir>/state.json, replaced atomically (state.json.tmp written, fsynced,
 * renamed over it). Format, one object:
 *   {"version":1,"saved_ms":1700000000000,"alerts":[
 *     {"file":"rules.yml","group":"g","rule":"HighLoad",
 *      "labels":{"alertname":"HighLoad","instance":"a"},"annotations":{"summary":"..."},
 *      "state":"firing","value":"0.93","active_at":..,"fired_at":..,"resolved_at":..,
 *      "last_sent_at":..,"keep_firing_since":..,"valid_until":..}]}
 * Times are milliseconds since the epoch (0 = unset); the value is a string so NaN and
 * infinities survive. A file saved more than an hour ago (Prometheus's outage
 * tolerance) is ignored, as is one that does not parse (logged). */
#include "rules_int.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_log.h"
#include "../labels_json.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct restored_alert {
    char *file, *group, *rule;
    struct alert_rt a;
    bool claimed;
};

struct restored {
    struct restored_alert *v;
    size_t n;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_str(struct vg_buf *b, const char *key, const char *s)
{
    vg_buf_printf(b, ",\"%s\":", key);
    vg_buf_json_str(b, s, strlen(s));
}

static int write_file(const char *path, const struct vg_buf *b)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, b->p + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return -e;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return -e;
    }
    return rename(tmp, path) == 0 ? 0 : -errno;
}

void rules_state_save(struct rules *r, struct generation *gen)
{
    if (!r->state_path[0])
        return;
    pthread_mutex_lock(&r->state_mu);
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_printf(&b, "{\"version\":1,\"saved_ms\":%lld,\"alerts\":[", (long long)now_ms());
    bool first = true;
    for (size_t gi = 0; gi < gen->ngroups; gi++) {
        struct group_rt *g = gen->groups[gi];
        pthread_mutex_lock(&g->mu);
        g->dirty = false;
        for (size_t ri = 0; ri < g->nrules; ri++) {
            const struct rule_rt *rr = &g->rules[ri];
            for (size_t ai = 0; ai < rr->nalerts; ai++) {
                const struct alert_rt *a = &rr->alerts[ai];
                vg_buf_puts(&b, first ? "\n{" : ",\n{");
                first = false;
                vg_buf_puts(&b, "\"file\":");
                vg_buf_json_str(&b, g->def->file, strlen(g->def->file));
                put_str(&b, "group", g->def->name);
                put_str(&b, "rule", rr->def->name);
                vg_buf_puts(&b, ",\"labels\":");
                labels_json_put(&b, a->labels, a->nlabels);
                vg_buf_puts(&b, ",\"annotations\":");
                labels_json_put(&b, a->annotations, a->nannotations);
                put_str(&b, "state", rules_alert_state_name(a->state));
                vg_buf_puts(&b, ",\"value\":\"");
                vg_buf_prom_float(&b, a->value);
                vg_buf_printf(&b, "\",\"active_at\":%lld,\"fired_at\":%lld,\"resolved_at\":%lld,"
                                  "\"last_sent_at\":%lld,\"keep_firing_since\":%lld,"
                                  "\"valid_until\":%lld}",
                              (long long)a->active_at, (long long)a->fired_at,
                              (long long)a->resolved_at, (long long)a->last_sent_at,
                              (long long)a->keep_firing_since, (long long)a->valid_until);
            }
        }
        pthread_mutex_unlock(&g->mu);
    }
    vg_buf_puts(&b, "\n]}\n");
    if (vg_buf_failed(&b)) {
        vg_log(VG_LOG_ERROR, "rules", "cannot save alert state", "error", "out of memory", NULL);
    } else {
        int rc = write_file(r->state_path, &b);
        if (rc < 0)
            vg_log(VG_LOG_ERROR, "rules", "cannot save alert state", "path", r->state_path,
                   "error", strerror(-rc), NULL);
    }
    vg_buf_free(&b);
    pthread_mutex_unlock(&r->state_mu);
}

/* A JSON object of strings to a rules_labels_copy block, sorted. */
static struct label *read_labels(json_t *obj, size_t *n)
{
    size_t cnt = json_is_object(obj) ? json_object_size(obj) : 0;
    struct label *tmp = vg_calloc(cnt ? cnt : 1, sizeof *tmp);
    if (!tmp)
        return NULL;
    size_t k = 0;
    const char *key;
    json_t *val;
    if (cnt)
        json_object_foreach(obj, key, val)
        {
            if (json_is_string(val) && k < cnt)
                tmp[k++] = (struct label){ vg_str_c(key), { json_string_value(val), json_string_length(val) } };
        }
    labels_sort(tmp, k);
    struct label *out = rules_labels_copy(tmp, k);
    vg_free(tmp);
    *n = k;
    return out;
}

static int64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool read_alert(json_t *o, struct restored_alert *ra)
{
    const char *file = jstr(o, "file"), *group = jstr(o, "group"), *rule = jstr(o, "rule");
    const char *state = jstr(o, "state"), *value = jstr(o, "value");
    if (!file || !group || !rule || !state || !value)
        return false;
    memset(ra, 0, sizeof *ra);
    struct alert_rt *a = &ra->a;
    if (!strcmp(state, "firing"))
        a->state = RULES_FIRING;
    else if (!strcmp(state, "pending"))
        a->state = RULES_PENDING;
    else
        a->state = RULES_INACTIVE;
    a->value = !strcmp(value, "+Inf") ? INFINITY : !strcmp(value, "-Inf") ? -INFINITY : strtod(value, NULL);
    a->active_at = jint(o, "active_at");
    a->fired_at = jint(o, "fired_at");
    a->resolved_at = jint(o, "resolved_at");
    a->last_sent_at = jint(o, "last_sent_at");
    a->keep_firing_since = jint(o, "keep_firing_since");
    a->valid_until = jint(o, "valid_until");
    a->labels = read_labels(json_object_get(o, "labels"), &a->nlabels);
    a->annotations = read_labels(json_object_get(o, "annotations"), &a->nannotations);
    a->hash = a->labels ? labels_hash(a->labels, a->nlabels) : 0;
    ra->file = vg_strdup(file);
    ra->group = vg_strdup(group);
    ra->rule = vg_strdup(rule);
    if (!a->labels || !a->annotations || !ra->file || !ra->group || !ra->rule) {
        vg_free(a->labels);
        vg_free(a->annotations);
        vg_free(ra->file);
        vg_free(ra->group);
        vg_free(ra->rule);
        return false;
    }
    return true;
}

void rules_state_load(struct rules *r)
{
    if (!r->state_path[0])
        return;
    json_error_t je;
    json_t *root = json_load_file(r->state_path, 0, &je);
    if (!root) {
        if (access(r->state_path, F_OK) == 0)
            vg_log(VG_LOG_WARN, "rules", "alert state file unreadable; starting without it",
                   "path", r->state_path, "error", je.text, NULL);
        return;
    }
    int64_t saved = jint(root, "saved_ms");
    json_t *alerts = json_object_get(root, "alerts");
    if (now_ms() - saved > RULES_OUTAGE_TOLERANCE_MS || !json_is_array(alerts)) {
        vg_log(VG_LOG_INFO, "rules", "alert state older than the outage tolerance (1h); not restored",
               "path", r->state_path, NULL);
        json_decref(root);
        return;
    }
    struct restored *rs = vg_calloc(1, sizeof *rs);
    size_t cnt = json_array_size(alerts);
    if (rs)
        rs->v = vg_calloc(cnt ? cnt : 1, sizeof *rs->v);
    if (!rs || !rs->v) {
        vg_free(rs);
        json_decref(root);
        return;
    }
    for (size_t i = 0; i < cnt; i++)
        if (read_alert(json_array_get(alerts, i), &rs->v[rs->n]))
            rs->n++;
    json_decref(root);
    r->restored = rs;
    char n[32];
    snprintf(n, sizeof n, "%zu", rs->n);
    vg_log(VG_LOG_INFO, "rules", "alert state restored", "alerts", n, NULL);
}

void rules_state_claim(struct rules *r, struct group_rt *g, struct rule_rt *rr)
{
    struct restored *rs = r->restored;
    if (!rs || rr->def->kind != RULE_ALERT)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        struct restored_alert *ra = &rs->v[i];
        if (ra->claimed || strcmp(ra->file, g->def->file) != 0 || strcmp(ra->group, g->def->name) != 0 ||
            strcmp(ra->rule, rr->def->name) != 0)
            continue;
        if (rr->nalerts == rr->cap) {
            size_t cap = rr->cap ? rr->cap * 2 : 4;
            struct alert_rt *nv = vg_realloc(rr->alerts, cap * sizeof *nv);
            if (!nv)
                return;
            rr->alerts = nv;
            rr->cap = cap;
        }
        rr->alerts[rr->nalerts++] = ra->a;
        ra->claimed = true;
        ra->a.labels = ra->a.annotations = NULL;
        rr->health = RULES_UNKNOWN;
    }
}

void rules_state_free(struct rules *r)
{
    struct restored *rs = r->restored;
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        vg_free(rs->v[i].a.labels);
        vg_free(rs->v[i].a.annotations);
        vg_free(rs->v[i].file);
        vg_free(rs->v[i].group);
        vg_free(rs->v[i].rule);
    }
    vg_free(rs->v);
    vg_free(rs);
    r->restored = NULL;
}
