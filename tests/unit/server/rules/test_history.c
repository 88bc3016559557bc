/* Tests server/rules/history.c: the entry JSON, the ring bound (newest kept, newest
 * first), and reloading from kv with old keys deleted. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/rules/history.h"
#include "../../../../storage/kv.h"

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s, (void)f, (void)w;
    return remove(p);
}

static void add(struct history *h, int i)
{
    char recv[16];
    snprintf(recv, sizeof recv, "r%d", i);
    uint64_t fps[] = { 0xff, (uint64_t)i };
    struct history_attempt a = { .receiver = recv, .integration = "webhook[0]",
                                 .group_key = "{}:{a=\"b\"}", .fingerprints = fps,
                                 .nfingerprints = 2, .status = i % 2 ? "retry" : "success",
                                 .attempt = i, .error = i % 2 ? "HTTP 500" : NULL,
                                 .time_ms = 1700000000000LL + i };
    history_add(h, &a);
}

static json_t *list(struct history *h, size_t limit)
{
    struct vg_buf b;
    vg_buf_init(&b);
    history_json(h, limit, &b);
    json_t *arr = json_loadb(b.p, b.len, 0, NULL);
    cr_assert(json_is_array(arr), "%s", b.p);
    vg_buf_free(&b);
    return arr;
}

Test(history, entry_fields_and_ring_bound)
{
    struct vg_err err;
    struct history *h = history_new(NULL, 3, &err);
    cr_assert_not_null(h);
    add(h, 1);
    json_t *arr = list(h, 0);
    json_t *e = json_array_get(arr, 0);
    cr_assert_str_eq(json_string_value(json_object_get(e, "time")), "2023-11-14T22:13:20.001Z");
    cr_assert_str_eq(json_string_value(json_object_get(e, "receiver")), "r1");
    cr_assert_str_eq(json_string_value(json_object_get(e, "integration")), "webhook[0]");
    cr_assert_str_eq(json_string_value(json_object_get(e, "groupKey")), "{}:{a=\"b\"}");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(e, "fingerprints"), 0)),
                     "00000000000000ff");
    cr_assert_str_eq(json_string_value(json_object_get(e, "status")), "retry");
    cr_assert_eq(json_integer_value(json_object_get(e, "attempt")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(e, "error")), "HTTP 500");
    json_decref(arr);
    for (int i = 2; i <= 5; i++)
        add(h, i);
    cr_assert_eq(history_len(h), 3);
    arr = list(h, 0);
    cr_assert_eq(json_array_size(arr), 3);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "receiver")), "r5");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 2), "receiver")), "r3");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 1), "error")), "");
    json_decref(arr);
    arr = list(h, 2);
    cr_assert_eq(json_array_size(arr), 2);
    json_decref(arr);
    history_free(h);
}

Test(history, persisted_ring)
{
    char dir[] = "/tmp/vigil-history-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct vg_err err;
    struct kv *kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct history *h = history_new(kv, 4, &err);
    for (int i = 1; i <= 10; i++)
        add(h, i);
    history_free(h);
    h = history_new(kv, 4, &err);
    cr_assert_not_null(h, "%s", err.msg);
    json_t *arr = list(h, 0);
    cr_assert_eq(json_array_size(arr), 4);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "receiver")), "r10");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 3), "receiver")), "r7");
    json_decref(arr);
    add(h, 11);
    arr = list(h, 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "receiver")), "r11",
                     "new entries continue the sequence");
    json_decref(arr);
    history_free(h);
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    int n = 0;
    for (kv_iter_seek(it, "h/", 2); kv_iter_has_prefix(it, "h/", 2); kv_iter_next(it))
        n++;
    kv_iter_free(it);
    cr_assert_eq(n, 4, "older keys are deleted as the ring moves");
    kv_close(kv);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
