/* Tests server/rules/silence.c: create, match, list, expire, update, validation errors
 * naming the field, persistence in kv across a reopen, and garbage collection. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../server/rules/silence.h"
#include "../../../../storage/kv.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }
#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */

static const char *const body =
    "{\"matchers\":[{\"name\":\"alertname\",\"value\":\"HighLoad\",\"isRegex\":false},"
    "{\"name\":\"instance\",\"value\":\"a:.*\",\"isRegex\":true},"
    "{\"name\":\"env\",\"value\":\"dev\",\"isEqual\":false}],"
    "\"startsAt\":\"2023-11-14T22:13:20Z\",\"endsAt\":\"2023-11-14T23:13:20Z\","
    "\"createdBy\":\"ops\",\"comment\":\"deploy\"}";

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s, (void)f, (void)w;
    return remove(p);
}

Test(silence, create_match_list_expire)
{
    struct vg_err err;
    struct silences *s = silences_new(NULL, &err);
    cr_assert_not_null(s);
    char id[SILENCE_ID_LEN + 1];
    cr_assert_eq(silences_create_json(s, body, strlen(body), T0 - 1000, id, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(strlen(id), 36);
    cr_assert_eq(id[14], '4', "UUID version 4");
    struct label hit[] = { L("alertname", "HighLoad"), L("env", "prod"), L("instance", "a:1") };
    struct label other_env[] = { L("alertname", "HighLoad"), L("env", "dev"), L("instance", "a:1") };
    struct label other_inst[] = { L("alertname", "HighLoad"), L("instance", "b:1") };
    struct label no_env[] = { L("alertname", "HighLoad"), L("instance", "a:9") };
    cr_assert_not(silences_mutes(s, hit, 3, T0 - 1), "pending");
    cr_assert(silences_mutes(s, hit, 3, T0));
    cr_assert(silences_mutes(s, no_env, 2, T0), "a missing label is \"\", which != dev");
    cr_assert_not(silences_mutes(s, other_env, 3, T0));
    cr_assert_not(silences_mutes(s, other_inst, 2, T0));
    cr_assert_not(silences_mutes(s, hit, 3, T0 + 3600000), "ended");

    struct vg_buf b;
    vg_buf_init(&b);
    silences_list_json(s, T0 + 1, &b);
    json_t *arr = json_loadb(b.p, b.len, 0, NULL);
    cr_assert_eq(json_array_size(arr), 1, "%s", b.p);
    json_t *o = json_array_get(arr, 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "status"), "state")),
                     "active");
    cr_assert_str_eq(json_string_value(json_object_get(o, "startsAt")), "2023-11-14T22:13:20.000Z");
    cr_assert_str_eq(json_string_value(json_object_get(o, "endsAt")), "2023-11-14T23:13:20.000Z");
    cr_assert_str_eq(json_string_value(json_object_get(o, "createdBy")), "ops");
    cr_assert_str_eq(json_string_value(json_object_get(o, "comment")), "deploy");
    json_t *m1 = json_array_get(json_object_get(o, "matchers"), 1);
    cr_assert(json_is_true(json_object_get(m1, "isRegex")));
    cr_assert(json_is_true(json_object_get(m1, "isEqual")), "isEqual defaults to true");
    json_decref(arr);

    cr_assert_eq(silences_expire(s, id, T0 + 10, &err), 0);
    cr_assert_not(silences_mutes(s, hit, 3, T0 + 11));
    cr_assert_eq(silences_expire(s, id, T0 + 20, &err), VG_ECONFLICT);
    cr_assert_eq(silences_expire(s, "nope", T0, &err), VG_ENOTFOUND);
    size_t c[3];
    silences_count(s, T0 + 20, c);
    cr_assert_eq(c[2], 1);
    cr_assert_eq(silences_gc(s, T0 + 20), 0, "kept for 5 days");
    cr_assert_eq(silences_gc(s, T0 + SILENCE_RETENTION_MS + 100), 1);
    vg_buf_free(&b);
    silences_free(s);
}

static void expect_bad(struct silences *s, const char *json, int code, const char *want)
{
    char id[SILENCE_ID_LEN + 1];
    struct vg_err err;
    cr_assert_eq(silences_create_json(s, json, strlen(json), T0, id, &err), code, "%s", json);
    cr_assert(strstr(err.msg, want), "[%s] lacks [%s]", err.msg, want);
}

Test(silence, validation)
{
    struct vg_err err;
    struct silences *s = silences_new(NULL, &err);
    expect_bad(s, "{", VG_EINVAL, "invalid JSON");
    expect_bad(s, "{\"endsAt\":\"2030-01-01T00:00:00Z\"}", VG_EINVAL,
               "matchers: expected a non-empty list");
    expect_bad(s, "{\"matchers\":[{\"name\":\"a\",\"value\":\"b\"}]}", VG_EINVAL,
               "endsAt: expected an RFC 3339 time string");
    expect_bad(s, "{\"matchers\":[{\"name\":\"a\",\"value\":\"b\"}],\"endsAt\":\"tomorrow\"}",
               VG_EINVAL, "endsAt: \"tomorrow\" is not an RFC 3339 time");
    expect_bad(s, "{\"matchers\":[{\"name\":\"a\",\"value\":\"b\"}],"
                  "\"startsAt\":\"2019-01-01T00:00:00Z\",\"endsAt\":\"2020-01-01T00:00:00Z\"}",
               VG_EINVAL, "endsAt: lies in the past");
    expect_bad(s, "{\"matchers\":[{\"name\":\"a\",\"value\":\"b\"}],"
                  "\"startsAt\":\"2031-01-01T00:00:00Z\",\"endsAt\":\"2030-01-01T00:00:00Z\"}",
               VG_EINVAL, "endsAt: must be after startsAt");
    expect_bad(s, "{\"matchers\":[{\"name\":\"a\",\"value\":\".*\",\"isRegex\":true}],"
                  "\"endsAt\":\"2030-01-01T00:00:00Z\"}", VG_EINVAL,
               "at least one matcher must not match the empty string");
    expect_bad(s, "{\"matchers\":[{\"name\":\"a\",\"value\":\"(\",\"isRegex\":true}],"
                  "\"endsAt\":\"2030-01-01T00:00:00Z\"}", VG_EINVAL, "matchers[0]");
    expect_bad(s, "{\"matchers\":[{\"name\":\"a\",\"value\":\"b\",\"isRegex\":1}],"
                  "\"endsAt\":\"2030-01-01T00:00:00Z\"}", VG_EINVAL,
               "matchers[0].isRegex: expected true or false");
    expect_bad(s, "{\"id\":\"00000000-0000-4000-8000-000000000000\",\"matchers\":[{\"name\":"
                  "\"a\",\"value\":\"b\"}],\"endsAt\":\"2030-01-01T00:00:00Z\"}",
               VG_ENOTFOUND, "not found");
    size_t c[3];
    silences_count(s, T0, c);
    cr_assert_eq(c[0] + c[1] + c[2], 0, "nothing was created");
    silences_free(s);
}

Test(silence, persisted_and_updated)
{
    char dir[] = "/tmp/vigil-silence-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct vg_err err;
    struct kv *kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct silences *s = silences_new(kv, &err);
    char id[SILENCE_ID_LEN + 1];
    cr_assert_eq(silences_create_json(s, body, strlen(body), T0, id, &err), 0, "%s", err.msg);
    char upd[600];
    snprintf(upd, sizeof upd, "{\"id\":\"%s\",\"matchers\":[{\"name\":\"job\",\"value\":"
             "\"x\"}],\"endsAt\":\"2023-11-15T00:00:00Z\",\"comment\":\"longer\"}", id);
    char id2[SILENCE_ID_LEN + 1];
    cr_assert_eq(silences_create_json(s, upd, strlen(upd), T0 + 5, id2, &err), 0, "%s", err.msg);
    cr_assert_str_eq(id2, id, "updated in place");
    silences_free(s);
    kv_close(kv);

    kv = kv_open(dir, NULL, &err);
    s = silences_new(kv, &err);
    cr_assert_not_null(s, "%s", err.msg);
    struct label job[] = { L("job", "x") };
    cr_assert(silences_mutes(s, job, 1, T0 + 3600000 + 10), "the update survived the reopen");
    struct vg_buf b;
    vg_buf_init(&b);
    silences_list_json(s, T0 + 10, &b);
    cr_assert(strstr(vg_buf_cstr(&b), "\"comment\":\"longer\""), "%s", b.p);
    vg_buf_free(&b);
    silences_free(s);
    kv_close(kv);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
