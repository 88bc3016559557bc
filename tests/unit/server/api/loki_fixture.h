/* loki_fixture: what the tests of the Loki API files (loki.c, loki_query.c, loki_detect.c,
 * loki_patterns.c, loki_tail.c) share on top of fixture.h: a server fixture with a log
 * store, a push helper taking labels and metadata as "a=b,c=d" text, a call helper that
 * finds a handler in mod_loki_api's routes by path, and JSON accessors (jansson) so
 * tests check answers field by field. Everything is static inline. */
#ifndef LOKI_FIXTURE_H
#define LOKI_FIXTURE_H

#include "../fixture.h"

#include "../../../../server/api/loki.h"

#include <jansson.h>
#include <stdarg.h>

#define LF_MAX_PAIRS 16

static struct server_fixture lf;
static struct http_response lf_resp;
static json_t *lf_json;

/* Splits "a=b,c=d" (edited in place) into pairs. */
static inline size_t lf_pairs(char *s, struct label *out)
{
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < LF_MAX_PAIRS; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        cr_assert_not_null(eq, "pair %s", tok);
        *eq = '\0';
        out[n].name = vg_str_c(tok);
        out[n++].value = vg_str_c(eq + 1);
    }
    return n;
}

/* Pushes one entry at t (ns) with stream labels and metadata given as "a=b,c=d" (meta
 * may be NULL or ""). */
static inline void lf_push(int64_t t, const char *labels, const char *meta, const char *line)
{
    char lb[512], mb[512];
    snprintf(lb, sizeof lb, "%s", labels);
    snprintf(mb, sizeof mb, "%s", meta ? meta : "");
    struct label ls[LF_MAX_PAIRS], ms[LF_MAX_PAIRS];
    size_t nl = lf_pairs(lb, ls), nm = mb[0] ? lf_pairs(mb, ms) : 0;
    labels_sort(ls, nl);
    struct lentry e = { .t = t, .line = vg_str_c(line), .meta = ms, .nmeta = nm };
    struct logstore_stream_in in = { .labels = ls, .nlabels = nl, .entries = &e, .nentries = 1 };
    struct vg_err err = { 0 };
    cr_assert_eq(logstore_push(lf.v.logs, &in, 1, NULL, &err), 0, "push: %s", err.msg);
}

static inline void lf_open(void)
{
    fixture_open(&lf);
    fixture_open_logs(&lf);
    lf_json = NULL;
    memset(&lf_resp, 0, sizeof lf_resp);
}

static inline void lf_close(void)
{
    json_decref(lf_json);
    lf_json = NULL;
    vg_buf_free(&lf_resp.body);
    fixture_close(&lf);
}

/* Runs the handler of path with args (key, value pairs ending in NULL); returns the body.
 * A JSON body is also parsed into lf_json (NULL otherwise). */
static inline const char *lf_call(const char *path, ...)
{
    json_decref(lf_json);
    lf_json = NULL;
    va_list ap;
    va_start(ap, path);
    fixture_vget(&lf, &mod_loki_api, path, ap, &lf_resp);
    va_end(ap);
    if (lf_resp.status == 200 && lf_resp.content_type &&
        strstr(lf_resp.content_type, "json")) {
        json_error_t je;
        lf_json = json_loads(lf_resp.body.p, 0, &je);
        cr_assert_not_null(lf_json, "invalid JSON (%s): %s", je.text, lf_resp.body.p);
    }
    return lf_resp.body.p;
}

/* The value at a path of keys and indexes, written like "data/result/0/stream/app". */
static inline json_t *lf_at(const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *j = lf_json;
    for (char *tok = strtok(buf, "/"); tok && j; tok = strtok(NULL, "/")) {
        char *end;
        long idx = strtol(tok, &end, 10);
        j = *end == '\0' && json_is_array(j) ? json_array_get(j, (size_t)idx)
                                             : json_object_get(j, tok);
    }
    return j;
}

static inline const char *lf_str(const char *path)
{
    json_t *j = lf_at(path);
    cr_assert(json_is_string(j), "%s is not a string in %s", path, lf_resp.body.p);
    return json_string_value(j);
}

static inline json_int_t lf_int(const char *path)
{
    json_t *j = lf_at(path);
    cr_assert(json_is_integer(j), "%s is not an integer in %s", path, lf_resp.body.p);
    return json_integer_value(j);
}

static inline size_t lf_len(const char *path)
{
    json_t *j = lf_at(path);
    cr_assert(json_is_array(j) || json_is_object(j), "%s is not a container in %s", path,
              lf_resp.body.p);
    return json_is_array(j) ? json_array_size(j) : json_object_size(j);
}

/* The answer was a Loki plain-text error with this status containing needle. */
static inline void lf_expect_error(int status, const char *needle)
{
    cr_assert_eq(lf_resp.status, status, "status %d, body %s", lf_resp.status, lf_resp.body.p);
    cr_assert_str_eq(lf_resp.content_type, "text/plain; charset=utf-8");
    cr_assert(strstr(lf_resp.body.p, needle), "[%s] not in [%s]", needle, lf_resp.body.p);
}

static inline int64_t lf_now_s(void)
{
    return fixture_now_ms() / 1000;
}

#endif
