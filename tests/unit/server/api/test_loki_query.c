/* Tests server/api/loki_query.c against a real log store and the LogQL engine: streams,
 * vector, matrix and scalar answers field by field, direction and limit, Grafana's
 * health-check query, the stats object, every parameter error with Loki's wording, and
 * the categorize-labels encoding (third element, merged streams, encodingFlags). */
#include "loki_fixture.h"

#include "../../../../server/api/loki_query.h"

#define NS 1000000000LL

static int64_t T;
static char start_s[32], end_s[32], at_s[32];

static void setup(void)
{
    lf_open();
    T = (lf_now_s() - 60) * NS;
    snprintf(start_s, sizeof start_s, "%lld", (long long)(T / NS - 300));
    snprintf(end_s, sizeof end_s, "%lld", (long long)(T / NS + 1));
    snprintf(at_s, sizeof at_s, "%lld", (long long)(T / NS + 1));
    lf_push(T - 2 * NS, "app=web,env=prod", "trace_id=abc", "GET /a 200");
    lf_push(T - 1 * NS, "app=web,env=prod", NULL, "GET /b 500");
    lf_push(T, "app=web,env=prod", NULL, "GET /c 200");
    lf_push(T, "app=db,env=prod", NULL, "select 1");
}

TestSuite(loki_query, .init = setup, .fini = lf_close, .timeout = 60);

Test(loki_query, streams_backward_by_default)
{
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "start", start_s, "end", end_s,
            NULL);
    cr_assert_str_eq(lf_str("status"), "success");
    cr_assert_str_eq(lf_str("data/resultType"), "streams");
    cr_assert_eq(lf_len("data/result"), 2, "%s", lf_resp.body.p);
    /* Without categorize-labels, metadata is part of the stream labels (Loki's default),
     * and streams sort by their {a="b", ...} text. */
    cr_assert_str_eq(lf_str("data/result/0/stream/trace_id"), "abc");
    cr_assert_eq(lf_len("data/result/0/values"), 1);
    cr_assert_eq(lf_len("data/result/0/values/0"), 2, "no third element without the flag");
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (long long)(T - 2 * NS));
    cr_assert_str_eq(lf_str("data/result/0/values/0/0"), ts);
    cr_assert_str_eq(lf_str("data/result/0/values/0/1"), "GET /a 200");
    cr_assert_eq(lf_len("data/result/1/stream"), 2);
    cr_assert_str_eq(lf_str("data/result/1/values/0/1"), "GET /c 200", "newest first");
    cr_assert_str_eq(lf_str("data/result/1/values/1/1"), "GET /b 500");
    cr_assert_null(lf_at("data/encodingFlags"));
}

Test(loki_query, forward_and_limit)
{
    lf_call("/loki/api/v1/query_range", "query", "{env=\"prod\"} |= \"GET\"", "start", start_s,
            "end", end_s, "direction", "FORWARD", "limit", "2", NULL);
    cr_assert_eq(lf_len("data/result"), 2, "%s", lf_resp.body.p);
    cr_assert_str_eq(lf_str("data/result/0/values/0/1"), "GET /a 200");
    cr_assert_str_eq(lf_str("data/result/1/values/0/1"), "GET /b 500");
    cr_assert_eq(lf_int("data/stats/summary/totalEntriesReturned"), 2);
}

Test(loki_query, grafana_health_check)
{
    lf_call("/loki/api/v1/query", "query", "vector(1)+vector(1)", "time", at_s, NULL);
    cr_assert_str_eq(lf_str("data/resultType"), "vector", "%s", lf_resp.body.p);
    cr_assert_eq(lf_len("data/result"), 1);
    cr_assert_eq(lf_len("data/result/0/metric"), 0);
    cr_assert_eq(json_integer_value(lf_at("data/result/0/value/0")), T / NS + 1);
    cr_assert_str_eq(lf_str("data/result/0/value/1"), "2");
}

Test(loki_query, scalar)
{
    lf_call("/loki/api/v1/query", "query", "1+1", "time", at_s, NULL);
    cr_assert_str_eq(lf_str("data/resultType"), "scalar", "%s", lf_resp.body.p);
    cr_assert_eq(json_integer_value(lf_at("data/result/0")), T / NS + 1);
    cr_assert_str_eq(lf_str("data/result/1"), "2");
}

Test(loki_query, instant_vector_and_range_matrix)
{
    lf_call("/loki/api/v1/query", "query", "sum by (app) (count_over_time({env=\"prod\"}[5m]))",
            "time", at_s, NULL);
    cr_assert_str_eq(lf_str("data/resultType"), "vector", "%s", lf_resp.body.p);
    cr_assert_eq(lf_len("data/result"), 2);
    cr_assert_str_eq(lf_str("data/result/0/metric/app"), "db");
    cr_assert_str_eq(lf_str("data/result/0/value/1"), "1");
    cr_assert_str_eq(lf_str("data/result/1/metric/app"), "web");
    cr_assert_str_eq(lf_str("data/result/1/value/1"), "3");

    char st[32];
    snprintf(st, sizeof st, "%lld", (long long)(T / NS - 2));
    lf_call("/loki/api/v1/query_range", "query", "count_over_time({app=\"db\"}[10s])", "start",
            st, "end", end_s, "step", "1", NULL);
    cr_assert_str_eq(lf_str("data/resultType"), "matrix", "%s", lf_resp.body.p);
    cr_assert_eq(lf_len("data/result"), 1);
    cr_assert_str_eq(lf_str("data/result/0/metric/app"), "db");
    cr_assert_eq(lf_len("data/result/0/values"), 2, "steps T and T+1 see the entry");
    cr_assert_eq(json_integer_value(lf_at("data/result/0/values/0/0")), T / NS);
    cr_assert_str_eq(lf_str("data/result/0/values/0/1"), "1");
}

Test(loki_query, stats_object)
{
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "start", start_s, "end", end_s,
            NULL);
    cr_assert_eq(lf_int("data/stats/summary/totalLinesProcessed"), 3);
    cr_assert_eq(lf_int("data/stats/summary/totalBytesProcessed"), 30);
    cr_assert_eq(lf_int("data/stats/summary/totalEntriesReturned"), 3);
    cr_assert_eq(lf_int("data/stats/summary/queueTime"), 0);
    cr_assert(json_is_number(lf_at("data/stats/summary/execTime")));
    cr_assert(json_is_integer(lf_at("data/stats/summary/bytesProcessedPerSecond")));
    cr_assert(json_is_integer(lf_at("data/stats/querier/store/totalChunksRef")));
    cr_assert_eq(lf_int("data/stats/querier/store/chunk/decompressedLines"), 3);
    cr_assert_eq(lf_int("data/stats/ingester/totalReached"), 0);
    cr_assert_eq(lf_int("data/stats/ingester/store/chunk/headChunkLines"), 0);
    cr_assert_eq(lf_len("data/stats/cache"), 8);
    cr_assert(json_is_integer(lf_at("data/stats/index/totalChunks")));
}

Test(loki_query, parameter_errors)
{
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "limit", "0", NULL);
    lf_expect_error(400, "limit must be a positive value");
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "direction", "up", NULL);
    lf_expect_error(400, "invalid direction 'up'");
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "start", end_s, "end", start_s,
            NULL);
    lf_expect_error(400, "end timestamp must not be before or equal to start time");
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "step", "-1", NULL);
    lf_expect_error(400, "zero or negative query resolution step widths are not accepted");
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "step", "x", NULL);
    lf_expect_error(400, "cannot parse \"x\" to a valid duration");
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "since", "30d", "step", "0.1",
            NULL);
    lf_expect_error(400, "exceeded maximum resolution of 11,000 points per time series");
    lf_call("/loki/api/v1/query_range", "query", "{app=\"web\"}", "interval", "-1", NULL);
    lf_expect_error(400, "interval must be >= 0");
    lf_call("/loki/api/v1/query", "query", "{app=\"web\"}", NULL);
    lf_expect_error(400, "log queries are not supported as an instant query type");
    lf_call("/loki/api/v1/query", "query", "{app=\"web\"", NULL);
    lf_expect_error(400, "parse error at line 1, col 11: syntax error: unexpected $end");
    lf_call("/loki/api/v1/query", "query", "vector(1)", "time", "noon", NULL);
    lf_expect_error(400, "strconv.ParseInt: parsing \"noon\": invalid syntax");
}

/* A hand-made result: two engine streams whose labels differ only by metadata. */
Test(loki_query, categorized_streams_merge_and_carry_metadata)
{
    struct label base_meta[] = { { VG_STR("app"), VG_STR("web") },
                                 { VG_STR("trace_id"), VG_STR("abc") } };
    struct label base[] = { { VG_STR("app"), VG_STR("web") } };
    struct label meta[] = { { VG_STR("trace_id"), VG_STR("abc") } };
    struct label parsed[] = { { VG_STR("status"), VG_STR("200") } };
    struct label base_parsed[] = { { VG_STR("app"), VG_STR("web") },
                                   { VG_STR("status"), VG_STR("200") } };
    struct logql_entry e1 = { .t = 3, .line = VG_STR("c"), .meta = meta, .nmeta = 1 };
    struct logql_entry e2[] = { { .t = 4, .line = VG_STR("d") }, { .t = 1, .line = VG_STR("a") } };
    struct logql_entry e3 = { .t = 2, .line = VG_STR("b"), .parsed = parsed, .nparsed = 1 };
    struct logql_stream ss[] = { { base_meta, 2, &e1, 1 }, { base, 1, e2, 2 },
                                 { base_parsed, 2, &e3, 1 } };
    struct logql_result r = { .type = LQ_RESULT_STREAMS, .streams = ss, .nstreams = 3 };
    struct vg_buf b;
    vg_buf_init(&b);
    loki_query_json_result(&b, &r, true, true, 1000000);
    json_error_t je;
    lf_json = json_loads(vg_buf_cstr(&b), 0, &je);
    lf_resp.body.p = b.p; /* for the messages of the accessors */
    cr_assert_not_null(lf_json, "%s: %s", je.text, b.p);
    cr_assert_eq(lf_len("data/result"), 1, "one stream {app=web}: %s", b.p);
    cr_assert_eq(lf_len("data/result/0/stream"), 1);
    cr_assert_eq(lf_len("data/result/0/values"), 4);
    cr_assert_str_eq(lf_str("data/result/0/values/0/1"), "d", "merged newest first");
    cr_assert_str_eq(lf_str("data/result/0/values/1/1"), "c");
    cr_assert_str_eq(lf_str("data/result/0/values/1/2/structuredMetadata/trace_id"), "abc");
    cr_assert_null(lf_at("data/result/0/values/1/2/parsed"));
    cr_assert_str_eq(lf_str("data/result/0/values/2/2/parsed/status"), "200");
    cr_assert_eq(lf_len("data/result/0/values/3"), 2, "no third element without either");
    cr_assert_str_eq(lf_str("data/encodingFlags/0"), "categorize-labels");
    cr_assert(json_is_real(lf_at("data/stats/summary/execTime")) ||
              json_is_integer(lf_at("data/stats/summary/execTime")));
    lf_resp.body.p = NULL;
    vg_buf_free(&b);
}
