/* Tests server/ingest/logparse/json_lines.c with lines as common structured loggers
 * write them (logrus, zap, pino, Serilog, python-json-logger, Docker json-file, ECS),
 * flattening, arrays, escapes, and malformed, truncated, deep and odd input. */
#include "lp_test.h"

#include <stdlib.h>

TestSuite(json_lines, .init = lp_setup, .fini = lp_teardown);

#define T0 1709992931000000000LL /* 2024-03-09T14:02:11Z */

static struct logparse_result parse(const char *line)
{
    struct logparse *p = lp_new("json");
    struct logparse_result r = lp_parse(p, line);
    logparse_free(p); /* fields live in the arena and the line, not the parser */
    return r;
}

Test(json_lines, logrus_and_zerolog)
{
    struct logparse_result r = parse("{\"level\":\"info\",\"msg\":\"A group of walrus emerges "
                                     "from the ocean\",\"size\":10,\"time\":\"2024-03-09T14:"
                                     "02:11Z\"}");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "level=info;msg=A group of walrus emerges from the ocean;"
                                  "size=10;time=2024-03-09T14:02:11Z;");
    cr_assert_eq(r.time, LOGPARSE_TIME_NONE); /* json has no default time field */
}

Test(json_lines, zap_with_epoch_seconds)
{
    struct logparse *p = lp_new_full("json", NULL, "ts", "unix");
    struct logparse_result r = lp_parse(
        p, "{\"level\":\"info\",\"ts\":1709992931.418123,\"caller\":\"server/main.go:42\","
           "\"msg\":\"request handled\",\"method\":\"GET\",\"status\":200,\"latency\":1.234e-3,"
           "\"ok\":true,\"err\":null}");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "ts"), "1709992931.418123");
    cr_assert_str_eq(lp_get(&r, "latency"), "1.234e-3");
    cr_assert_str_eq(lp_get(&r, "ok"), "true");
    cr_assert_str_eq(lp_get(&r, "err"), "");
    cr_assert_eq(r.time, LOGPARSE_TIME_SET);
    cr_assert_eq(r.time_ns, T0 + 418123000);
    logparse_free(p);
}

Test(json_lines, pino_nested_objects_are_flattened)
{
    struct logparse *p = lp_new_full("json", NULL, "time", "unix_ms");
    struct logparse_result r = lp_parse(
        p, "{\"level\":30,\"time\":1709992931418,\"pid\":4321,\"hostname\":\"web-1\",\"req\":"
           "{\"id\":1,\"method\":\"GET\",\"url\":\"/\",\"headers\":{\"host\":\"localhost:3000\","
           "\"user-agent\":\"curl/8.5.0\"}},\"empty\":{},\"msg\":\"request completed\"}");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "level=30;time=1709992931418;pid=4321;hostname=web-1;"
                                  "req_id=1;req_method=GET;req_url=/;"
                                  "req_headers_host=localhost:3000;"
                                  "req_headers_user_agent=curl/8.5.0;msg=request completed;");
    cr_assert_eq(r.time_ns, T0 + 418000000);
    logparse_free(p);
}

Test(json_lines, arrays_keep_their_json_text)
{
    struct logparse_result r =
        parse("{\"@timestamp\":\"2024-03-09T14:02:11.418Z\",\"log.level\":\"info\","
              "\"tags\":[\"a\", \"b\"],\"spans\":[{\"id\":1},[2,3]],\"none\":[]}");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "_timestamp=2024-03-09T14:02:11.418Z;log_level=info;"
                                  "tags=[\"a\", \"b\"];spans=[{\"id\":1},[2,3]];none=[];");
}

Test(json_lines, serilog_python_and_docker)
{
    struct logparse_result r = parse(
        "{\"@t\":\"2024-03-09T14:02:11.4181234Z\",\"@mt\":\"Processed {@Position} in "
        "{Elapsed:000} ms.\",\"Position\":{\"Latitude\":25,\"Longitude\":134},\"Elapsed\":34}");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "_mt"), "Processed {@Position} in {Elapsed:000} ms.");
    cr_assert_str_eq(lp_get(&r, "Position_Longitude"), "134");

    struct logparse *p = lp_new_full("json", NULL, "asctime", "%Y-%m-%d %H:%M:%S,%f");
    r = lp_parse(p, "{\"asctime\": \"2024-03-09 14:02:11,418\", \"levelname\": \"INFO\", "
                    "\"message\": \"started\", \"taskName\": null}");
    lp_assert_parsed(&r);
    cr_assert_eq(r.time_ns, T0 + 418000000);
    cr_assert_str_eq(lp_get(&r, "levelname"), "INFO");
    logparse_free(p);

    p = lp_new_full("json", NULL, "time", NULL);
    r = lp_parse(p, "{\"log\":\"GET / 200 \\\"ok\\\"\\n\",\"stream\":\"stdout\","
                    "\"time\":\"2024-03-09T14:02:11.418123456Z\"}");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_get(&r, "log"), "GET / 200 \"ok\"\n");
    cr_assert_eq(r.time_ns, T0 + 418123456);
    logparse_free(p);
}

Test(json_lines, escapes_unicode_and_odd_keys)
{
    struct logparse_result r = parse(
        " {\"msg\":\"caf\\u00e9 \\ud83d\\ude00 \\t\\\\ \\/\",\"k\\u0065y\":1,\"\":\"no key\","
        "\"dup\":1,\"dup\":2,\"raw\":\"tab\there\",\"utf\":\"\xe6\x97\xa5\xff\"} \r\n");
    lp_assert_parsed(&r);
    cr_assert_str_eq(lp_dump(&r), "msg=caf\xc3\xa9 \xf0\x9f\x98\x80 \t\\ /;key=1;dup=1;dup=2;"
                                  "raw=tab\there;utf=\xe6\x97\xa5\xff;");
}

Test(json_lines, malformed_lines_are_unparsable)
{
    struct { const char *line, *reason; } cases[] = {
        { "", "not a JSON object" },
        { "plain text line", "not a JSON object" },
        { "[1,2]", "not a JSON object" },
        { "\"str\"", "not a JSON object" },
        { "{\"a\":1", "expected ',' or '}' in object" },
        { "{\"a\":\"trunc", "unterminated string" },
        { "{\"a\":1}{\"b\":2}", "unexpected text after the object" },
        { "{\"a\":1} trailing", "unexpected text after the object" },
        { "{a:1}", "expected a string key" },
        { "{\"a\" 1}", "expected ':' after a key" },
        { "{\"a\":01}", "expected ',' or '}' in object" },
        { "{\"a\":-}", "invalid number" },
        { "{\"a\":1.}", "invalid number" },
        { "{\"a\":1e}", "invalid number" },
        { "{\"a\":tru}", "invalid value" },
        { "{\"a\":[1,2}", "expected ',' or ']' in array" },
        { "{\"a\":[1,]}", "invalid value" },
        { "{\"a\":{\"b\":[{\"c\":}]}}", "invalid value" },
        { "{\"a\":1,}", "expected a string key" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct logparse_result r = parse(cases[i].line);
        cr_assert_eq(r.status, LOGPARSE_UNPARSABLE, "%s", cases[i].line);
        cr_assert_str_eq(r.reason, cases[i].reason, "%s", cases[i].line);
    }
    struct logparse_result r = parse("{}");
    lp_assert_parsed(&r);
    cr_assert_eq(r.nfields, 0);
}

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 8 + 16);
    cr_assert_not_null(s);
    size_t n = 0;
    n += (size_t)sprintf(s, "{\"x\":");
    for (int i = 0; i < depth; i++)
        n += (size_t)sprintf(s + n, open == '{' ? "{\"k\":" : "[");
    s[n++] = '1';
    for (int i = 0; i < depth; i++)
        s[n++] = close;
    s[n++] = '}';
    s[n] = 0;
    return s;
}

Test(json_lines, nesting_is_bounded)
{
    char *ok = nested(62, '{', '}'), *deep = nested(64, '{', '}'),
         *deep_array = nested(200000, '[', ']');
    struct logparse_result r = parse(ok);
    lp_assert_parsed(&r);
    cr_assert_eq(r.nfields, 1);
    cr_assert_null(logparse_get(&r, VG_STR("x"))); /* flattened to x_k_k_..._k */
    cr_assert_eq(r.fields[0].name.len, 1 + 62 * 2);
    r = parse(deep);
    lp_assert_unparsable(&r, "nested too deeply");
    r = parse(deep_array);
    lp_assert_unparsable(&r, "nested too deeply");
    free(ok);
    free(deep);
    free(deep_array);
}

Test(json_lines, huge_value)
{
    size_t big = 4 << 20;
    char *line = malloc(big + 32);
    memcpy(line, "{\"msg\":\"", 8);
    memset(line + 8, 'x', big);
    memcpy(line + 8 + big, "\\n\"}", 5);
    struct logparse_result r = parse(line);
    lp_assert_parsed(&r);
    cr_assert_eq(logparse_get(&r, VG_STR("msg"))->len, big + 1);
    free(line);
}
