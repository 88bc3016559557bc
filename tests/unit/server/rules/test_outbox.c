/* Tests server/rules/outbox.c: the backoff formula, retries after failures (recorded in
 * the history), giving up after max_attempts, a hanging peer bounded by the timeout and
 * unblocked by shutdown, drop-oldest when full, and restore after a restart. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "../../../../server/rules/history.h"
#include "../../../../server/rules/outbox.h"
#include "../../../../server/rules/transport.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/kv.h"
#include "sink.h"

Test(outbox, backoff_is_exponential_with_equal_jitter)
{
    cr_assert_eq(outbox_backoff_ms(1, 1000, 60000, 0), 500);
    cr_assert_eq(outbox_backoff_ms(1, 1000, 60000, 500), 1000);
    cr_assert_eq(outbox_backoff_ms(1, 1000, 60000, 501), 500, "rnd wraps within [d/2, d]");
    cr_assert_eq(outbox_backoff_ms(2, 1000, 60000, 0), 1000);
    cr_assert_eq(outbox_backoff_ms(3, 1000, 60000, 0), 2000);
    cr_assert_eq(outbox_backoff_ms(7, 1000, 60000, 0), 30000, "2^6 s capped at 60 s");
    cr_assert_eq(outbox_backoff_ms(50, 1000, 60000, 30000), 60000, "no overflow");
    for (uint32_t r = 0; r < 5000; r += 7) {
        int64_t d = outbox_backoff_ms(3, 1000, 60000, r);
        cr_assert(d >= 2000 && d <= 4000);
    }
}

struct post_ctx {
    char url[128];
    int64_t timeout_ms;
};

static int post(void *ctx, struct outbox_item *const *items, size_t n, const atomic_bool *stop,
                struct vg_err *err)
{
    struct post_ctx *p = ctx;
    cr_assert_eq(n, 1);
    struct transport_http r = { .url = p->url, .content_type = "application/json",
                                .body = items[0]->payload, .body_len = items[0]->len,
                                .timeout_ms = p->timeout_ms, .stop = stop };
    return transport_http_post(&r, NULL, err);
}

static struct outbox *open_ob(struct post_ctx *pc, struct sink *s, struct kv *kv,
                              struct history *h, _Atomic uint64_t *seq, int attempts)
{
    snprintf(pc->url, sizeof pc->url, "http://127.0.0.1:%u/hook", s->port);
    if (!pc->timeout_ms)
        pc->timeout_ms = 2000;
    struct outbox_opts o = {
        .id = "webhook/t/0", .receiver = "t", .integration = "webhook[0]", .capacity = 4,
        .batch = 1, .initial_backoff_ms = 20, .max_backoff_ms = 50, .max_attempts = attempts,
        .send = post, .ctx = pc, .kv = kv, .seq = seq, .hist = h,
    };
    struct vg_err err;
    struct outbox *ob = outbox_new(&o, &err);
    cr_assert_not_null(ob, "%s", err.msg);
    return ob;
}

static int rm_cb(const char *p, const struct stat *s, int f, struct FTW *w)
{
    (void)s, (void)f, (void)w;
    return remove(p);
}

Test(outbox, retries_until_the_peer_recovers)
{
    struct sink s;
    sink_start(&s);
    s.fail_first = 2;
    struct vg_err err;
    struct history *h = history_new(NULL, 16, &err);
    _Atomic uint64_t seq = 1;
    struct post_ctx pc = { 0 };
    struct outbox *ob = open_ob(&pc, &s, NULL, h, &seq, 5);
    uint64_t fp = 0xabc;
    cr_assert(outbox_push(ob, "{\"n\":1}", 7, "gk", &fp, 1, 0));
    cr_assert_eq(sink_wait(&s, 1, 5000), 1);
    cr_assert_str_eq(s.bodies[0], "{\"n\":1}");
    cr_assert_eq(s.requests, 3, "two failures, then delivered");
    usleep(50000);
    struct vg_buf b;
    vg_buf_init(&b);
    history_json(h, 0, &b);
    json_t *arr = json_loadb(b.p, b.len, 0, NULL);
    cr_assert_eq(json_array_size(arr), 3, "%s", b.p);
    json_t *last = json_array_get(arr, 0), *first = json_array_get(arr, 2);
    cr_assert_str_eq(json_string_value(json_object_get(last, "status")), "success");
    cr_assert_eq(json_integer_value(json_object_get(last, "attempt")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(first, "status")), "retry");
    cr_assert(strstr(json_string_value(json_object_get(first, "error")), "HTTP 500"));
    cr_assert_str_eq(json_string_value(json_object_get(first, "groupKey")), "gk");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(first, "fingerprints"), 0)),
                     "0000000000000abc");
    json_decref(arr);
    vg_buf_free(&b);
    outbox_free(ob);
    history_free(h);
    sink_stop(&s);
}

Test(outbox, gives_up_after_max_attempts)
{
    struct sink s;
    sink_start(&s);
    s.fail_first = 100;
    struct vg_err err;
    struct history *h = history_new(NULL, 16, &err);
    _Atomic uint64_t seq = 1;
    struct post_ctx pc = { 0 };
    struct outbox *ob = open_ob(&pc, &s, NULL, h, &seq, 2);
    cr_assert(outbox_push(ob, "x", 1, "", NULL, 0, 0));
    for (int i = 0; i < 300 && history_len(h) < 2; i++)
        usleep(10000);
    cr_assert(outbox_push(ob, "y", 1, "", NULL, 0, 0), "the queue moves on");
    for (int i = 0; i < 300 && history_len(h) < 4; i++)
        usleep(10000);
    struct vg_buf b;
    vg_buf_init(&b);
    history_json(h, 0, &b);
    cr_assert(strstr(vg_buf_cstr(&b), "\"status\":\"failed\",\"attempt\":2"), "%s", b.p);
    cr_assert_eq(s.requests, 4);
    vg_buf_free(&b);
    outbox_free(ob);
    history_free(h);
    sink_stop(&s);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Test(outbox, hanging_peer_times_out_and_shutdown_aborts)
{
    struct sink hang, ok;
    sink_start(&hang);
    sink_start(&ok);
    hang.hang = true;
    struct vg_err err;
    struct history *h = history_new(NULL, 16, &err);
    _Atomic uint64_t seq = 1;
    struct post_ctx p1 = { .timeout_ms = 300 }, p2 = { 0 };
    struct outbox *slow = open_ob(&p1, &hang, NULL, h, &seq, 100);
    struct outbox *fast = open_ob(&p2, &ok, NULL, h, &seq, 3);
    cr_assert(outbox_push(slow, "a", 1, "", NULL, 0, 0));
    usleep(50000);
    cr_assert(outbox_push(fast, "b", 1, "", NULL, 0, 0));
    cr_assert_eq(sink_wait(&ok, 1, 2000), 1, "the hanging peer does not block the other");
    usleep(600000);
    struct vg_buf b;
    vg_buf_init(&b);
    history_json(h, 0, &b);
    cr_assert(strstr(vg_buf_cstr(&b), "timed out after 300 ms"), "%s", b.p);
    vg_buf_free(&b);
    /* drop-oldest while the worker holds "a": capacity 4 */
    for (int i = 0; i < 6; i++)
        cr_assert(outbox_push(slow, "q", 1, "", NULL, 0, 0));
    cr_assert_eq(outbox_len(slow), 4);
    p1.timeout_ms = 60000; /* the next attempt would hang for a minute... */
    usleep(100000);
    int64_t t = mono_ms();
    outbox_free(slow);     /* ...but shutdown aborts it at once */
    cr_assert_lt(mono_ms() - t, 2000);
    outbox_free(fast);
    history_free(h);
    sink_stop(&hang);
    sink_stop(&ok);
}

Test(outbox, pending_items_survive_a_restart)
{
    char dir[] = "/tmp/vigil-outbox-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    struct vg_err err;
    struct kv *kv = kv_open(dir, NULL, &err);
    struct sink s;
    sink_start(&s);
    s.hang = true;
    _Atomic uint64_t seq = 7;
    struct post_ctx pc = { .timeout_ms = 100 };
    struct outbox *ob = open_ob(&pc, &s, kv, NULL, &seq, 100);
    uint64_t fps[2] = { 1, 2 };
    cr_assert(outbox_push(ob, "{\"first\":true}", 14, "g1", fps, 2, 1234));
    cr_assert(outbox_push(ob, "second", 6, "g2", NULL, 0, 1235));
    usleep(100000);
    outbox_free(ob); /* "crash": nothing was delivered */
    sink_stop(&s);

    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    int n = 0;
    sink_start(&s);
    ob = open_ob(&pc, &s, kv, NULL, &seq, 100);
    for (kv_iter_seek(it, "q/", 2); kv_iter_has_prefix(it, "q/", 2); kv_iter_next(it)) {
        size_t vlen;
        const char *v = kv_iter_value(it, &vlen);
        char *target;
        struct outbox_item item;
        cr_assert_eq(outbox_restore_json(v, vlen, 7 + (uint64_t)n, &target, &item, &err), 0);
        cr_assert_str_eq(target, "webhook/t/0");
        if (n == 0) {
            cr_assert_str_eq(item.payload, "{\"first\":true}");
            cr_assert_str_eq(item.group_key, "g1");
            cr_assert_eq(item.nfps, 2);
            cr_assert_eq(item.fps[1], 2);
            cr_assert_eq(item.created_ms, 1234);
        }
        outbox_push_restored(ob, &item);
        vg_free(target);
        n++;
    }
    kv_iter_free(it);
    cr_assert_eq(n, 2);
    cr_assert_eq(sink_wait(&s, 2, 3000), 2);
    cr_assert_str_eq(s.bodies[1], "second");
    usleep(100000);
    outbox_free(ob);
    it = kv_iter_new(kv, NULL, false);
    kv_iter_seek(it, "q/", 2);
    cr_assert_not(kv_iter_has_prefix(it, "q/", 2), "delivered items are deleted");
    kv_iter_free(it);
    char *t;
    struct outbox_item bad;
    cr_assert_eq(outbox_restore_json("{}", 2, 1, &t, &bad, &err), VG_EINVAL);
    kv_close(kv);
    sink_stop(&s);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}
