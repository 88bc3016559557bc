/* Tests server/ingest/loki_push.c as promtail, Alloy and curl meet it: POST
 * /loki/api/v1/push with Loki's JSON and with snappy-compressed logproto.PushRequest
 * (no Content-Type means protobuf, as in Loki), against a real log store in a temporary
 * directory, then read back: labels (JSON objects and `{a="b"}` strings with PromQL
 * quoting and escapes), lines (JSON escapes, surrogate pairs, bytes kept as sent),
 * nanosecond times and structured metadata. Validation: streams with invalid labels and
 * entries too far in the future or before 1970 are refused while the rest is stored
 * (400 naming the first reason, as Loki), store refusals (line too long) likewise;
 * malformed bodies of every kind (JSON grammar, shapes, times, labels strings, snappy,
 * protobuf) are 400 and store nothing; 415, 413 over the memory cap, 503 when
 * allocation fails at any step; the /metrics counters. */
#include "log_fixture.h"

#include "../../../../server/compress.h"
#include "../../../../server/ingest/loki_push.h"

#include "loki_push.pb-c.h"

TestSuite(loki_push, .init = logfx_setup, .fini = logfx_teardown, .timeout = 60);

/* ---- requests ---- */

static void post(const char *ct, const char *ce, struct vg_str body)
{
    fixture_post(&fx, &mod_loki_push, "/loki/api/v1/push", ct, ce, body, arena, &resp);
}

static void post_json(struct vg_str body)
{
    post("application/json", NULL, body);
}

/* A PushRequest built stream by stream, entry by entry, in the arena. */
static Logproto__PushRequest preq;

static void pb_reset(void)
{
    logproto__push_request__init(&preq);
}

static ProtobufCBinaryData bin(const char *s, size_t n)
{
    return (ProtobufCBinaryData){ n, (uint8_t *)s };
}

static void pb_stream(const char *labels)
{
    Logproto__StreamAdapter **v = vg_arena_alloc(arena, (preq.n_streams + 1) * sizeof *v);
    if (preq.n_streams)
        memcpy(v, preq.streams, preq.n_streams * sizeof *v);
    Logproto__StreamAdapter *s = vg_arena_calloc(arena, sizeof *s);
    logproto__stream_adapter__init(s);
    s->labels = bin(labels, strlen(labels));
    v[preq.n_streams++] = s;
    preq.streams = v;
}

/* An entry of the last stream; mk/mv a metadata pair or NULL. */
static void pb_entry(int64_t t, const char *line, size_t len, const char *mk, const char *mv)
{
    Logproto__StreamAdapter *s = preq.streams[preq.n_streams - 1];
    Logproto__EntryAdapter **v = vg_arena_alloc(arena, (s->n_entries + 1) * sizeof *v);
    if (s->n_entries)
        memcpy(v, s->entries, s->n_entries * sizeof *v);
    Logproto__EntryAdapter *e = vg_arena_calloc(arena, sizeof *e);
    logproto__entry_adapter__init(e);
    Logproto__Timestamp *ts = vg_arena_calloc(arena, sizeof *ts);
    logproto__timestamp__init(ts);
    ts->seconds = t / 1000000000LL;
    ts->nanos = (int32_t)(t % 1000000000LL);
    e->timestamp = ts;
    e->line = bin(line, len);
    if (mk) {
        Logproto__LabelPairAdapter *p = vg_arena_calloc(arena, sizeof *p);
        logproto__label_pair_adapter__init(p);
        p->name = bin(mk, strlen(mk));
        p->value = bin(mv, strlen(mv));
        e->structuredmetadata = vg_arena_alloc(arena, sizeof *e->structuredmetadata);
        e->structuredmetadata[0] = p;
        e->n_structuredmetadata = 1;
    }
    v[s->n_entries++] = e;
    s->entries = v;
}

/* The request packed and snappy-compressed, in the arena. */
static struct vg_str pb_body(void)
{
    size_t n = logproto__push_request__get_packed_size(&preq);
    uint8_t *p = vg_arena_alloc(arena, n + 1);
    logproto__push_request__pack(&preq, p);
    struct vg_buf out;
    vg_buf_init(&out);
    cr_assert_eq(compress_snappy_encode(p, n, &out, &err), 0, "%s", err.msg);
    char *s = vg_arena_strndup(arena, out.p, out.len);
    struct vg_str r = { s, out.len };
    vg_buf_free(&out);
    return r;
}

static void expect_status(int status, const char *needle)
{
    cr_assert_eq(resp.status, status, "%d %.*s", resp.status, (int)resp.body.len, resp.body.p);
    if (needle)
        cr_assert(vg_buf_cstr(&resp.body) && strstr(resp.body.p, needle), "%s lacks \"%s\"",
                  resp.body.p, needle);
}

/* ---- JSON ---- */

Test(loki_push, json_streams_are_stored_with_metadata)
{
    int64_t t = now - 3000000000LL;
    post_json(logfx_json("{'streams':[{'stream':{'job':'api','env':'prod'},'values':["
                         "['%" PRId64 "','GET /a 200'],"
                         "['%" PRId64 "','GET /b 500',{'trace_id':'abc','user':'u1'}]]},"
                         "{'values':[['%" PRId64 "','first']],'stream':{'job':'db'}}]}",
                         t, t + 1, t + 2));
    expect_status(204, NULL);
    cr_assert_eq(resp.body.len, 0);
    logfx_expect("env=prod,job=api %" PRId64 " GET /a 200|\n"
                 "env=prod,job=api %" PRId64 " GET /b 500|trace_id=abc,user=u1\n"
                 "job=db %" PRId64 " first|\n",
                 t, t + 1, t + 2);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_accepted_total{receiver=\"loki_push\"} 3"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_streams_created_total{receiver=\"loki_push\"} 2"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"loki_push\",code=\"204\"} 1"));
}

Test(loki_push, json_escapes_and_unknown_members)
{
    int64_t t = now - 1000;
    /* \u00e9 is é; \ud83d\ude00 a surrogate pair (U+1F600); a lone surrogate becomes
     * U+FFFD; the time may also be a bare integer; unknown members of any shape skip. */
    static const char body[] =
        "{\"x\":{\"a\":[1,-2.5e3,true,false,null,{\"b\":\"c\"}]},\"streams\":[{\"extra\":[],"
        "\"stream\":{\"job\":\"j\\u00e9\"},\"values\":[[%" PRId64 ","
        "\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t \\u00e9\\ud83d\\ude00 \\udc00\"]]}]}  \n";
    char buf[512];
    snprintf(buf, sizeof buf, body, t);
    post_json(vg_str_c(buf));
    expect_status(204, NULL);
    logfx_expect("job=j\xc3\xa9 %" PRId64 " q\"b\\s/\b\f\n\r\t \xc3\xa9\xf0\x9f\x98\x80 \xef\xbf\xbd|\n",
                 t);
}

Test(loki_push, empty_pushes_are_fine)
{
    post_json(VG_STR("{}"));
    expect_status(204, NULL);
    post_json(VG_STR("{\"streams\":[]}"));
    expect_status(204, NULL);
    post_json(VG_STR("{\"streams\":[{\"stream\":{\"job\":\"x\"},\"values\":[]}]}"));
    expect_status(204, NULL);
    cr_assert_eq(logfx_count(&fx), 0);
}

Test(loki_push, malformed_json_is_400_and_stores_nothing)
{
    static const char *const cases[][2] = {
        { "[]", "must be a JSON object" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"ok\"]]}", "expected" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"12x\",\"l\"]]}]}",
          "nanoseconds" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[1.5,\"l\"]]}]}",
          "nanoseconds" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"99999999999999999999\",\"l\"]]}]}",
          "nanoseconds" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"l\",{},1]]}]}",
          "expected ']'" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"l\",[]]]}]}",
          "third element" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"l\",{\"k\":1}]]}]}",
          "expected a string value" },
        { "{\"streams\":[{\"stream\":{\"job\":2},\"values\":[]}]}", "expected a string value" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"l\\q\"]]}]}",
          "invalid escape" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"l\\u12\"]]}]}",
          "four hex digits" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"l\x01\"]]}]}",
          "control character" },
        { "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"unterminated", "unterminated" },
        { "{\"streams\":[{\"values\":[[\"1\",\"l\"]]}]}", "needs a \"stream\"" },
        { "{\"streams\":[]} x", "after the JSON object" },
        { "{\"streams\":[],}", "expected a string" },
        { "{\"a\":tru}", "invalid value" },
        { "{\"a\":-}", "invalid number" },
        { "{\"a\":1.}", "invalid number" },
        { "{\"a\":1e}", "invalid number" },
        { "{\"a\" 1}", "expected ':'" },
        { "{\"a\":[1 2]}", "expected ',' or ']'" },
        { "", "must be a JSON object" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        post_json(vg_str_c(cases[i][0]));
        cr_assert_eq(resp.status, 400, "case %zu: %d", i, resp.status);
        cr_assert(strstr(vg_buf_cstr(&resp.body), cases[i][1]), "case %zu: %s", i, resp.body.p);
    }
    /* Nesting past LOKI_PUSH_MAX_DEPTH in an unknown member. */
    struct vg_buf deep;
    vg_buf_init(&deep);
    vg_buf_puts(&deep, "{\"x\":");
    for (int i = 0; i < 100; i++)
        vg_buf_putc(&deep, '[');
    for (int i = 0; i < 100; i++)
        vg_buf_putc(&deep, ']');
    vg_buf_puts(&deep, "}");
    post_json((struct vg_str){ deep.p, deep.len });
    vg_buf_free(&deep);
    expect_status(400, "nested deeper than 64");
    cr_assert_eq(logfx_count(&fx), 0);
}

/* ---- protobuf ---- */

Test(loki_push, protobuf_streams_are_stored)
{
    int64_t t = now - 2000000000LL;
    pb_reset();
    pb_stream("{job=\"api\", env='prod',path=`C:\\x`}");
    pb_entry(t + 123, "line one", 8, NULL, NULL);
    pb_entry(t + 456, "with\0nul", 8, "trace_id", "0af7651916cd43dd");
    pb_stream(" { job = \"q\\\"uote\\u00e9\" } ");
    pb_entry(t, "x", 1, NULL, NULL);
    post("application/x-protobuf", NULL, pb_body());
    expect_status(204, NULL);
    logfx_dump(&fx, &dump);
    char want[512];
    int n = snprintf(want, sizeof want,
                     "env=prod,job=api,path=C:\\x %" PRId64 " line one|\n"
                     "env=prod,job=api,path=C:\\x %" PRId64 " with",
                     t + 123, t + 456);
    cr_assert(dump.len > (size_t)n + 1 && memcmp(dump.p, want, (size_t)n) == 0, "%s", dump.p);
    cr_assert_eq(dump.p[n], '\0'); /* the NUL byte of the line is kept */
    char rest[256];
    snprintf(rest, sizeof rest, "nul|trace_id=0af7651916cd43dd\njob=q\"uote\xc3\xa9 %" PRId64 " x|\n",
             t);
    cr_assert_str_eq(dump.p + n + 1, rest);
}

Test(loki_push, no_content_type_means_protobuf_and_snappy_encoding_is_accepted)
{
    int64_t t = now - 1000;
    pb_reset();
    pb_stream("{job=\"a\"}");
    pb_entry(t, "one", 3, NULL, NULL);
    post(NULL, NULL, pb_body());
    expect_status(204, NULL);
    pb_entry(t + 1, "two", 3, NULL, NULL);
    post("application/x-protobuf; charset=x", "snappy", pb_body());
    expect_status(204, NULL);
    logfx_expect("job=a %" PRId64 " one|\njob=a %" PRId64 " one|\njob=a %" PRId64 " two|\n", t,
                 t, t + 1);
}

Test(loki_push, bad_labels_strings_refuse_the_request)
{
    static const char *const cases[][2] = {
        { "job=\"a\"", "expected '{'" },
        { "{job=~\"a\"}", "only operator" },
        { "{job!=\"a\"}", "only operator" },
        { "{job==\"a\"}", "only operator" },
        { "{job=\"a\"", "expected '}'" },
        { "{job=\"a\" x=\"b\"}", "expected ',' or '}'" },
        { "{1job=\"a\"}", "expected a label name" },
        { "{job=a}", "expected a quoted label value" },
        { "{job=\"a\\q\"}", "unknown escape sequence" },
        { "{job=\"a}", "unterminated quoted string" },
        { "{job=\"a\"} x", "unexpected text after" },
        { "", "expected '{'" },
    };
    int64_t t = now - 1000;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pb_reset();
        pb_stream("{job=\"fine\"}");
        pb_entry(t, "fine", 4, NULL, NULL);
        pb_stream(cases[i][0]);
        pb_entry(t, "x", 1, NULL, NULL);
        post("application/x-protobuf", NULL, pb_body());
        cr_assert_eq(resp.status, 400, "case %zu: %d", i, resp.status);
        cr_assert(strstr(vg_buf_cstr(&resp.body), cases[i][1]) &&
                      strstr(resp.body.p, "stream 1"),
                  "case %zu: %s", i, resp.body.p);
    }
    cr_assert_eq(logfx_count(&fx), 0);
}

Test(loki_push, broken_snappy_or_protobuf_is_400)
{
    post("application/x-protobuf", NULL, VG_STR("\xff\xff\xff\xff\xff garbage"));
    expect_status(400, "snappy");
    struct vg_buf out;
    vg_buf_init(&out);
    static const char junk[] = { 0x0a, 0x10, 0x0a };
    cr_assert_eq(compress_snappy_encode(junk, sizeof junk, &out, &err), 0);
    post("application/x-protobuf", NULL, (struct vg_str){ out.p, out.len });
    vg_buf_free(&out);
    expect_status(400, "malformed protobuf");
    cr_assert_eq(logfx_count(&fx), 0);
}

/* ---- validation: the valid part is stored, the answer is 400 ---- */

Test(loki_push, invalid_label_sets_refuse_their_stream_only)
{
    int64_t t = now - 1000;
    post_json(logfx_json("{'streams':["
                         "{'stream':{'job':'ok'},'values':[['%" PRId64 "','kept']]},"
                         "{'stream':{'bad-name':'x'},'values':[['%" PRId64 "','a'],['%" PRId64 "','b']]},"
                         "{'stream':{'job':'a','job':'b'},'values':[['%" PRId64 "','c']]},"
                         "{'stream':{},'values':[['%" PRId64 "','d']]},"
                         "{'stream':{'job':''},'values':[['%" PRId64 "','e']]},"
                         "{'stream':{'job':'\xff'},'values':[['%" PRId64 "','f']]}]}",
                         t, t, t, t, t, t, t));
    expect_status(400, "6 of 7 entries rejected; first: stream 1: invalid label name \"bad-name\"");
    cr_assert(strstr(resp.body.p, "the other entries were stored"), "%s", resp.body.p);
    logfx_expect("job=ok %" PRId64 " kept|\n", t);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"loki_push\","
                                 "reason=\"invalid_labels\"} 6"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"loki_push\",code=\"400\"} 1"));
}

Test(loki_push, each_label_problem_is_named)
{
    static const char *const cases[][2] = {
        { "{'stream':{'job':'a','job':'b'}", "duplicate label name \"job\"" },
        { "{'stream':{}", "at least one label pair" },
        { "{'stream':{'a':''}", "at least one label pair" },
        { "{'stream':{'job':'\xff'}", "not valid UTF-8" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        post_json(logfx_json("{'streams':[%s,'values':[['1','x']]}]}", cases[i][0]));
        cr_assert_eq(resp.status, 400, "case %zu", i);
        cr_assert(strstr(vg_buf_cstr(&resp.body), cases[i][1]), "case %zu: %s", i, resp.body.p);
    }
}

Test(loki_push, store_label_limits_refuse_the_stream)
{
    /* 16 labels (the store allows 15, Loki's default) and a 3000-byte value (2048). */
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(&b, "{\"streams\":[{\"stream\":{");
    for (int i = 0; i < 16; i++)
        vg_buf_printf(&b, "%s\"l%02d\":\"v\"", i ? "," : "", i);
    vg_buf_printf(&b, "},\"values\":[[\"%" PRId64 "\",\"x\"]]},{\"stream\":{\"job\":\"", now);
    for (int i = 0; i < 3000; i++)
        vg_buf_putc(&b, 'v');
    vg_buf_printf(&b, "\"},\"values\":[[\"%" PRId64 "\",\"y\"]]}]}", now);
    post_json((struct vg_str){ b.p, b.len });
    vg_buf_free(&b);
    expect_status(400, "2 entries rejected by the store; first: stream has 16 labels (at most 15)");
    cr_assert_eq(logfx_count(&fx), 0);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"loki_push\","
                                 "reason=\"invalid_labels\"} 2"));
}

Test(loki_push, times_too_far_ahead_or_before_1970_are_refused)
{
    int64_t t = now - 1000, late = now + 11 * 60 * 1000000000LL, soon = now + 60 * 1000000000LL;
    pb_reset();
    pb_stream("{job=\"t\"}");
    pb_entry(t, "ok", 2, NULL, NULL);
    pb_entry(late, "late", 4, NULL, NULL);
    pb_entry(soon, "soon", 4, NULL, NULL);
    pb_entry(-5, "old", 3, NULL, NULL);
    preq.streams[0]->entries[3]->timestamp->seconds = -1;
    pb_entry(0, "huge", 4, NULL, NULL);
    preq.streams[0]->entries[4]->timestamp->seconds = INT64_MAX;
    post("application/x-protobuf", NULL, pb_body());
    expect_status(400, "3 of 5 entries rejected; first: stream 0, entry 1: time");
    cr_assert(strstr(resp.body.p, "too_far_in_future"), "%s", resp.body.p);
    logfx_expect("job=t %" PRId64 " ok|\njob=t %" PRId64 " soon|\n", t, soon);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"loki_push\","
                                 "reason=\"too_far_in_future\"} 2"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"loki_push\","
                                 "reason=\"too_old\"} 1"));
}

Test(loki_push, store_refusals_are_reported)
{
    int64_t t = now - 1000;
    size_t n = 300 * 1024;
    char *big = vg_arena_alloc(arena, n);
    memset(big, 'z', n);
    pb_reset();
    pb_stream("{job=\"s\"}");
    pb_entry(t, big, n, NULL, NULL);
    pb_entry(t + 1, "small", 5, NULL, NULL);
    post("application/x-protobuf", NULL, pb_body());
    expect_status(400, "1 entries rejected by the store; first: ");
    cr_assert(strstr(resp.body.p, "line of 307200 bytes"), "%s", resp.body.p);
    logfx_expect("job=s %" PRId64 " small|\n", t + 1);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"loki_push\","
                                 "reason=\"line_too_long\"} 1"));
}

/* ---- transport errors ---- */

Test(loki_push, other_media_types_and_encodings_are_415)
{
    post("text/plain", NULL, VG_STR("x"));
    expect_status(415, "Content-Type");
    post("application/json", "snappy", VG_STR("{}"));
    expect_status(415, "Content-Encoding");
    post("application/x-protobuf", "br", VG_STR("x"));
    expect_status(415, "always snappy");
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"loki_push\",code=\"415\"} 3"));
}

Test(loki_push, over_the_memory_cap_is_413)
{
    cr_assert_eq(config_set(fx.cfg, "limits.max_decoded_bytes", "1024", &err), 0, "%s", err.msg);
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(&b, "{\"streams\":[{\"stream\":{\"job\":\"m\"},\"values\":[");
    for (int i = 0; i < 400; i++)
        vg_buf_printf(&b, "%s[\"%d\",\"l\"]", i ? "," : "", i + 1);
    vg_buf_puts(&b, "]}]}");
    struct vg_arena *keep = arena;
    arena = vg_arena_new(64);
    post_json((struct vg_str){ b.p, b.len });
    vg_arena_free(arena);
    arena = keep;
    vg_buf_free(&b);
    expect_status(413, "max_decoded_bytes");
    /* Decompressing past the limit is refused too. */
    char *zeros = vg_arena_calloc(arena, 4096);
    pb_reset();
    pb_stream("{job=\"m\"}");
    pb_entry(now, zeros, 4096, NULL, NULL);
    post("application/x-protobuf", NULL, pb_body());
    expect_status(413, NULL);
    cr_assert_eq(logfx_count(&fx), 0);
}

Test(loki_push, allocation_failure_is_503_or_413_and_stores_nothing)
{
    int64_t t = now - 1000;
    struct vg_str body = logfx_json("{'streams':[{'stream':{'job':'a','env':'e'},'values':["
                                    "['%" PRId64 "','one\\n'],['%" PRId64 "','two',{'k':'v'}]]}]}",
                                    t, t + 1);
    struct vg_arena *keep = arena;
    bool saw_503 = false;
    uint64_t n;
    for (n = 1; n < 100000; n++) {
        arena = vg_arena_new(0);
        vg_alloc_fail_after(n);
        post_json(body);
        vg_alloc_fail_after(0);
        vg_arena_free(arena);
        arena = keep;
        if (resp.status == 204)
            break;
        cr_assert(resp.status == 503 || resp.status == 413, "n=%" PRIu64 ": %d %s", n,
                  resp.status, vg_buf_cstr(&resp.body));
        saw_503 |= resp.status == 503;
        cr_assert_eq(logfx_count(&fx), 0, "n=%" PRIu64, n);
    }
    cr_assert_eq(resp.status, 204);
    cr_assert(saw_503);
    /* The first acknowledged push may have been durable without reaching the store's
     * memory (logstore.h); the receiver itself must be none the worse: */
    struct vg_str again = logfx_json("{'streams':[{'stream':{'job':'b'},'values':[['%" PRId64
                                     "','three']]}]}", t);
    post_json(again);
    expect_status(204, NULL);
    cr_assert(strstr(logfx_stored(), " three|\n"), "%s", dump.p);
}

/* ---- the pure decoder ---- */

Test(loki_push, decoder_reports_counts_and_sorted_labels)
{
    struct loki_push_opts o = { .now_ns = 1000, .max_future_ns = 10 };
    struct loki_push_batch b;
    static const char body[] = "{\"streams\":[{\"stream\":{\"z\":\"1\",\"a\":\"2\"},"
                               "\"values\":[[\"5\",\"a\"],[\"2000\",\"b\"],[\"1010\",\"c\"]]}]}";
    cr_assert_eq(loki_push_decode(body, sizeof body - 1, true, &o, arena, &b, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(b.entries, 3);
    cr_assert_eq(b.rejected, 1);
    cr_assert_eq(b.rejected_by[LOKI_PUSH_REJECT_FUTURE], 1);
    cr_assert_eq(b.nstreams, 1);
    cr_assert_eq(b.streams[0].nentries, 2);
    cr_assert(vg_str_eq_c(b.streams[0].labels[0].name, "a"));
    cr_assert(vg_str_eq_c(b.streams[0].labels[1].name, "z"));
    cr_assert_str_eq(loki_push_reject_name(LOKI_PUSH_REJECT_LABELS), "invalid_labels");
    cr_assert_str_eq(loki_push_reject_name(LOKI_PUSH_REJECT_TOO_OLD), "too_old");
    cr_assert_str_eq(loki_push_reject_name(LOKI_PUSH_REJECT_COUNT), "unknown");
}
