/* Tests server/api/loki_detect.c: the value typing of Loki's determineType, the id test
 * of detected_labels, and both endpoints against a real log store: labels with their
 * cardinality (id-like labels left out, static ones kept), and fields found by json and
 * logfmt with types, cardinalities and parsers, metadata fields, limits and errors. */
#include "loki_fixture.h"

#include "../../../../server/api/loki_detect.h"

#define NS 1000000000LL

static int64_t T;

static void setup(void)
{
    lf_open();
    T = (lf_now_s() - 60) * NS;
    lf_push(T - 3 * NS, "app=web,req=11,pod=7", "trace_id=abc",
            "level=info status=200 took=15ms size=10KB ok=true msg=\"hi there\"");
    lf_push(T - 2 * NS, "app=web,req=12,pod=8", "trace_id=def",
            "level=error status=500 took=1.5s size=2MB ok=false");
    lf_push(T - 1 * NS, "app=api,req=13,pod=9", NULL,
            "{\"level\":\"warn\",\"latency\":0.25,\"user\":{\"id\":\"u1\"}}");
}

TestSuite(loki_detect, .init = setup, .fini = lf_close, .timeout = 60);

static void type_is(const char *v, const char *want)
{
    cr_assert_str_eq(loki_detect_type(v, strlen(v)), want, "type of [%s]", v);
}

Test(loki_detect, types_in_loki_order)
{
    type_is("42", "int");
    type_is("-7", "int");
    type_is("9223372036854775807", "int");
    type_is("9223372036854775808", "float");
    type_is("0.25", "float");
    type_is("1e3", "float");
    type_is("Inf", "float");
    type_is("0x1p-2", "float");
    type_is("true", "boolean");
    type_is("F", "boolean");
    type_is("15ms", "duration");
    type_is("1h30m", "duration");
    type_is("1.5s", "duration");
    type_is("10KB", "bytes");
    type_is("2 MiB", "bytes");
    type_is("5k", "bytes");
    type_is("hello", "string");
    type_is("", "string");
    type_is("0x10", "string");
    type_is("1.2.3", "string");
}

Test(loki_detect, ids)
{
    cr_assert(loki_detect_is_id("123", 3));
    cr_assert(loki_detect_is_id("1.5", 3));
    const char *u = "123e4567-e89b-12d3-a456-426614174000";
    cr_assert(loki_detect_is_id(u, strlen(u)));
    const char *u2 = "{123e4567-e89b-12d3-a456-426614174000}";
    cr_assert(loki_detect_is_id(u2, strlen(u2)));
    cr_assert_not(loki_detect_is_id("web", 3));
    cr_assert_not(loki_detect_is_id("123e4567-e89b-12d3-a456-42661417400g", 36));
}

Test(loki_detect, detected_labels)
{
    lf_call("/loki/api/v1/detected_labels", "since", "1h", NULL);
    /* req is all numbers: an id, left out; pod too, but pod is one of Loki's static labels. */
    cr_assert_eq(lf_len("detectedLabels"), 2, "%s", lf_resp.body.p);
    cr_assert_str_eq(lf_str("detectedLabels/0/label"), "app");
    cr_assert_eq(lf_int("detectedLabels/0/cardinality"), 2);
    cr_assert_str_eq(lf_str("detectedLabels/1/label"), "pod");
    cr_assert_eq(lf_int("detectedLabels/1/cardinality"), 3);
    cr_assert_eq(lf_len("detectedLabels/0"), 2);
    lf_call("/loki/api/v1/detected_labels", "query", "{app=\"api\"}", "since", "1h", NULL);
    cr_assert_eq(lf_len("detectedLabels"), 2, "%s", lf_resp.body.p);
    cr_assert_eq(lf_int("detectedLabels/0/cardinality"), 1);
    lf_call("/loki/api/v1/detected_labels", "query", "{app=", NULL);
    lf_expect_error(400, "parse error");
}

/* The index of field name in the answer, or -1. */
static int field(const char *name)
{
    json_t *fs = lf_at("fields");
    for (size_t i = 0; i < json_array_size(fs); i++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(fs, i), "label")), name))
            return (int)i;
    return -1;
}

static void expect_field(const char *name, const char *type, int card, const char *parsers)
{
    int i = field(name);
    cr_assert_geq(i, 0, "no field %s in %s", name, lf_resp.body.p);
    char p[64];
    snprintf(p, sizeof p, "fields/%d/type", i);
    cr_assert_str_eq(lf_str(p), type, "type of %s", name);
    snprintf(p, sizeof p, "fields/%d/cardinality", i);
    cr_assert_eq(lf_int(p), card, "cardinality of %s", name);
    snprintf(p, sizeof p, "fields/%d/parsers", i);
    json_t *ps = lf_at(p);
    if (!parsers) {
        cr_assert(json_is_null(ps), "parsers of %s", name);
        return;
    }
    char *got = json_dumps(ps, JSON_COMPACT);
    cr_assert_str_eq(got, parsers, "parsers of %s", name);
    free(got);
}

Test(loki_detect, detected_fields)
{
    lf_call("/loki/api/v1/detected_fields", "query", "{app=~\".+\"}", "since", "1h", NULL);
    cr_assert_eq(lf_int("limit"), 1000);
    expect_field("level", "string", 3, "[\"json\",\"logfmt\"]");
    expect_field("status", "int", 2, "[\"logfmt\"]");
    expect_field("took", "duration", 2, "[\"logfmt\"]");
    expect_field("size", "bytes", 2, "[\"logfmt\"]");
    expect_field("ok", "boolean", 2, "[\"logfmt\"]");
    expect_field("msg", "string", 1, "[\"logfmt\"]");
    expect_field("latency", "float", 1, "[\"json\"]");
    expect_field("user_id", "string", 1, "[\"json\"]");
    expect_field("trace_id", "string", 2, NULL);
    cr_assert_eq(lf_len("fields"), 9, "%s", lf_resp.body.p);
    cr_assert_eq(lf_len("fields/0"), 4, "label, type, cardinality, parsers");
    /* Sorted by name. */
    cr_assert_str_eq(lf_str("fields/0/label"), "latency");

    /* The pipeline filters the sample; limit caps the fields; line_limit the lines. */
    lf_call("/loki/api/v1/detected_fields", "query", "{app=\"web\"} |= \"error\"", "since", "1h",
            NULL);
    expect_field("status", "int", 1, "[\"logfmt\"]");
    cr_assert_eq(field("latency"), -1);
    lf_call("/loki/api/v1/detected_fields", "query", "{app=~\".+\"}", "since", "1h", "limit", "2",
            NULL);
    cr_assert_eq(lf_len("fields"), 2);
    cr_assert_eq(lf_int("limit"), 2);
    lf_call("/loki/api/v1/detected_fields", "query", "{app=~\".+\"}", "since", "1h",
            "line_limit", "1", NULL);
    cr_assert_eq(field("status"), -1, "only the newest (JSON) line: %s", lf_resp.body.p);
    lf_call("/loki/api/v1/detected_fields", "since", "1h", NULL);
    lf_expect_error(400, "at least one regexp or equality matcher");
    lf_call("/loki/api/v1/detected_fields", "query", "{app=\"web\"}", "limit", "0", NULL);
    lf_expect_error(400, "limit must be a positive value");
}

Test(loki_detect, allocation_failure)
{
    for (uint64_t n = 1; n < 200; n += 3) {
        lf.fail_after = n;
        lf_call("/loki/api/v1/detected_fields", "query", "{app=~\".+\"}", "since", "1h", NULL);
        lf.fail_after = 0;
        cr_assert(lf_resp.status == 200 || lf_resp.status >= 500, "fail %llu: %d %s",
                  (unsigned long long)n, lf_resp.status, lf_resp.body.p);
    }
}
