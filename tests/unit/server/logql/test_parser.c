/* Tests server/logql/parser.c and server/logql/ast.c: Loki 3's LogQL grammar (stream
 * selectors, line filters with `or` and ip(), parsers, typed label filters and their
 * precedence, formatting stages, unwrap, range and vector aggregations, binary operators
 * with modifiers and constant folding), Loki's error messages with their positions, the
 * String() printer (exact text and round trips), Prettify for format_query, limits and
 * allocation failure. Expected texts follow Loki's parser_test.go where it has them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/logql/parser.h"
#include "../../../../storage/base/vg_alloc.h"

struct case_ {
    const char *in;
    const char *out; /* the String() form, or the error message */
};

static const struct case_ good[] = {
    { "{foo=\"bar\"}",
      "{foo=\"bar\"}" },
    { "{ foo = \"bar\" }",
      "{foo=\"bar\"}" },
    { "{ namespace=\"buzz\", foo != \"bar\" }",
      "{namespace=\"buzz\", foo!=\"bar\"}" },
    { "{ foo =~ \"bar\" }",
      "{foo=~\"bar\"}" },
    { "{ namespace=\"buzz\", foo !~ \"bar\" }",
      "{namespace=\"buzz\", foo!~\"bar\"}" },
    { "{job=\"varlogs\", filename=~\"/var/log/.+\\\\.log\"}",
      "{job=\"varlogs\", filename=~\"/var/log/.+\\\\.log\"}" },
    { "{app=\"api\"} |= \"error\"",
      "{app=\"api\"} |= \"error\"" },
    { "{app=\"api\"} != \"debug\"",
      "{app=\"api\"} != \"debug\"" },
    { "{app=\"api\"} |~ \"(?i)timeout\"",
      "{app=\"api\"} |~ \"(?i)timeout\"" },
    { "{app=\"api\"} !~ \"health.*\"",
      "{app=\"api\"} !~ \"health.*\"" },
    { "{app=\"api\"} |> \"<_> level=error <_>\"",
      "{app=\"api\"} |> \"<_> level=error <_>\"" },
    { "{app=\"api\"} !> \"GET /health <_>\"",
      "{app=\"api\"} !> \"GET /health <_>\"" },
    { "{app=\"api\"} |= \"a\" or \"b\" or \"c\"",
      "{app=\"api\"} |= \"a\" or \"b\" or \"c\"" },
    { "{app=\"api\"} != \"a\" or \"b\"",
      "{app=\"api\"} != \"a\" != \"b\"" },
    { "{app=\"api\"} |~ \"x\" or \"y\" !~ \"z\" or \"w\"",
      "{app=\"api\"} |~ \"x\" or \"y\" !~ \"z\" !~ \"w\"" },
    { "{foo=\"bar\"} |= \"baz\" |~ \"blip\" != \"flip\" !~ \"flap\"",
      "{foo=\"bar\"} |= \"baz\" |~ \"blip\" != \"flip\" !~ \"flap\"" },
    { "{foo=\"bar\"} |= \"baz\" |= ip(\"123.123.123.123\")",
      "{foo=\"bar\"} |= \"baz\" |= ip(\"123.123.123.123\")" },
    { "{foo=\"bar\"} != ip(\"10.0.0.0/8\") |= \"x\"",
      "{foo=\"bar\"} != ip(\"10.0.0.0/8\") |= \"x\"" },
    { "{foo=\"bar\"} |= ip(\"::1\") or \"localhost\"",
      "{foo=\"bar\"} |= ip(\"::1\") or \"localhost\"" },
    { "{app=\"api\"} |= `raw \\d string`",
      "{app=\"api\"} |= \"raw \\\\d string\"" },
    { "{app=\"api\"} |= \"tab\\tnew\\nline \\\"q\\\" \\u00e9\"",
      "{app=\"api\"} |= \"tab\\tnew\\nline \\\"q\\\" \xc3\xa9""\"" },
    { "{app=\"api\"} | json",
      "{app=\"api\"} | json" },
    { "{app=\"api\"} | json first_server=\"servers[0]\", ua=\"request.headers[\\\"User-Agent\\\"]\"",
      "{app=\"api\"} | json first_server=\"servers[0]\",ua=\"request.headers[\\\"User-Agent\\\"]\"" },
    { "{app=\"api\"} | json status, method",
      "{app=\"api\"} | json status=\"status\",method=\"method\"" },
    { "{app=\"api\"} | logfmt",
      "{app=\"api\"} | logfmt" },
    { "{app=\"api\"} | logfmt --strict",
      "{app=\"api\"} | logfmt --strict" },
    { "{app=\"api\"} | logfmt --keep-empty --strict",
      "{app=\"api\"} | logfmt --strict --keep-empty" },
    { "{app=\"api\"} | logfmt --strict host, level=\"lvl\"",
      "{app=\"api\"} | logfmt --strict host=\"host\",level=\"lvl\"" },
    { "{app=\"api\"} | regexp \"(?P<method>\\\\w+) (?P<path>[\\\\w|/]+) \\\\((?P<status>\\\\d+?)\\\\)\"",
      "{app=\"api\"} | regexp \"(?P<method>\\\\w+) (?P<path>[\\\\w|/]+) \\\\((?P<status>\\\\d+?)\\\\)\"" },
    { "{job=\"nginx\"} | pattern \"<ip> - - <_> \\\"<method> <uri> <_>\\\" <status> <size> <_> \\\"<agent>\\\" <_>\"",
      "{job=\"nginx\"} | pattern \"<ip> - - <_> \\\"<method> <uri> <_>\\\" <status> <size> <_> \\\"<agent>\\\" <_>\"" },
    { "{app=\"api\"} | unpack",
      "{app=\"api\"} | unpack" },
    { "{app=\"api\"} | decolorize",
      "{app=\"api\"} | decolorize" },
    { "{app=\"api\"} | line_format \"{{.level}}: {{.msg}}\"",
      "{app=\"api\"} | line_format \"{{.level}}: {{.msg}}\"" },
    { "{app=\"api\"} | label_format dst=src",
      "{app=\"api\"} | label_format dst=src" },
    { "{app=\"api\"} | label_format level=\"{{ .lvl | ToUpper }}\", svc=service",
      "{app=\"api\"} | label_format level=\"{{ .lvl | ToUpper }}\",svc=service" },
    { "{app=\"api\"} | drop level, method=\"GET\", path=~\"/api.*\"",
      "{app=\"api\"} | drop level,method=\"GET\",path=~\"/api.*\"" },
    { "{app=\"api\"} | keep level, status",
      "{app=\"api\"} | keep level,status" },
    { "{app=\"api\"} | logfmt | level=\"error\"",
      "{app=\"api\"} | logfmt | level=\"error\"" },
    { "{app=\"api\"} | logfmt | level!=\"debug\"",
      "{app=\"api\"} | logfmt | level!=\"debug\"" },
    { "{app=\"api\"} | logfmt | level=~\"err.*|warn\"",
      "{app=\"api\"} | logfmt | level=~\"err.*|warn\"" },
    { "{app=\"api\"} | logfmt | level!~\"info\"",
      "{app=\"api\"} | logfmt | level!~\"info\"" },
    { "{app=\"api\"} | json | status >= 400",
      "{app=\"api\"} | json | status>=400" },
    { "{app=\"api\"} | json | status == 200",
      "{app=\"api\"} | json | status==200" },
    { "{app=\"api\"} | json | status = 200",
      "{app=\"api\"} | json | status==200" },
    { "{app=\"api\"} | json | status != 500",
      "{app=\"api\"} | json | status!=500" },
    { "{app=\"api\"} | json | status < 500 and status > 200",
      "{app=\"api\"} | json | ( status<500 , status>200 )" },
    { "{app=\"api\"} | json | ratio > -0.5",
      "{app=\"api\"} | json | ratio>-0.5" },
    { "{app=\"api\"} | json | ratio < +1.5",
      "{app=\"api\"} | json | ratio<1.5" },
    { "{app=\"api\"} | logfmt | duration > 10s",
      "{app=\"api\"} | logfmt | duration>10s" },
    { "{app=\"api\"} | logfmt | duration >= 1.5s",
      "{app=\"api\"} | logfmt | duration>=1.5s" },
    { "{app=\"api\"} | logfmt | duration < 250ms",
      "{app=\"api\"} | logfmt | duration<250ms" },
    { "{app=\"api\"} | logfmt | duration <= 1h30m",
      "{app=\"api\"} | logfmt | duration<=1h30m0s" },
    { "{app=\"api\"} | logfmt | duration == 100us",
      "{app=\"api\"} | logfmt | duration==100\xc2\xb5""s" },
    { "{app=\"api\"} | logfmt | duration != 2d",
      "{app=\"api\"} | logfmt | duration!=48h0m0s" },
    { "{app=\"api\"} | logfmt | size > 5KB",
      "{app=\"api\"} | logfmt | size>5.0kB" },
    { "{app=\"api\"} | logfmt | size >= 1MiB",
      "{app=\"api\"} | logfmt | size>=1.0MB" },
    { "{app=\"api\"} | logfmt | size < 20B",
      "{app=\"api\"} | logfmt | size<20B" },
    { "{app=\"api\"} | logfmt | size == 1.5GB",
      "{app=\"api\"} | logfmt | size==1.5GB" },
    { "{app=\"api\"} | logfmt | addr = ip(\"192.168.0.0/16\")",
      "{app=\"api\"} | logfmt | addr=ip(\"192.168.0.0/16\")" },
    { "{app=\"api\"} | logfmt | addr != ip(\"10.0.0.1-10.0.0.9\")",
      "{app=\"api\"} | logfmt | addr!=ip(\"10.0.0.1-10.0.0.9\")" },
    { "{app=\"foo\"} |= \"bar\" | json | latency >= 250ms or ( status_code < 500 and status_code > 200)",
      "{app=\"foo\"} |= \"bar\" | json | ( latency>=250ms or ( status_code<500 , status_code>200 ) )" },
    { "{app=\"foo\"} |= \"bar\" | json | (duration > 1s or status!= 200) and method!=\"POST\"",
      "{app=\"foo\"} |= \"bar\" | json | ( ( duration>1s or status!=200 ) , method!=\"POST\" )" },
    { "{app=\"foo\"} |= \"bar\" | json |  status_code < 500 or status_code > 200 and latency >= 250ms",
      "{app=\"foo\"} |= \"bar\" | json | ( status_code<500 or ( status_code>200 , latency>=250ms ) )" },
    { "{app=\"foo\"} | json | foo=\"bar\" buzz!=\"blip\", blop=~\"boop\" or fuzz==5",
      "{app=\"foo\"} | json | ( foo=\"bar\" , ( buzz!=\"blip\" , ( blop=~\"boop\" or fuzz==5 ) ) )" },
    { "{app=\"foo\"} | logfmt | a=\"1\", b=\"2\", c=\"3\"",
      "{app=\"foo\"} | logfmt | ( a=\"1\" , ( b=\"2\" , c=\"3\" ) )" },
    { "{app=\"foo\"} | logfmt | __error__=\"\"",
      "{app=\"foo\"} | logfmt | __error__=\"\"" },
    { "{ foo = \"bar\" }|logfmt|rate=\"a\"",
      "{foo=\"bar\"} | logfmt | rate=\"a\"" },
    { "{ foo = \"bar\" }|logfmt|ip=\"2.3.4.5\"|ip=\"abc\"|ipaddr=ip(\"4.5.6.7\")|ip=ip(\"6.7.8.9\")",
      "{foo=\"bar\"} | logfmt | ip=\"2.3.4.5\" | ip=\"abc\" | ipaddr=ip(\"4.5.6.7\") | ip=ip(\"6.7.8.9\")" },
    { "{app=\"api\"} |= \"x\" | json | line_format \"{{.msg}}\" | label_format a=b | drop c | keep d",
      "{app=\"api\"} |= \"x\" | json | line_format \"{{.msg}}\" | label_format a=b | drop c | keep d" },
    { "{app=\"api\"} # trailing comment",
      "{app=\"api\"}" },
    { "{app=\"api\"} /* block */ |= \"x\" // line comment",
      "{app=\"api\"} |= \"x\"" },
    { "(({app=\"api\"} |= \"x\"))",
      "{app=\"api\"} |= \"x\"" },
    { "count_over_time({foo=\"bar\"}[5m])",
      "count_over_time({foo=\"bar\"}[5m])" },
    { "count_over_time({ foo = \"bar\" }[12m])",
      "count_over_time({foo=\"bar\"}[12m])" },
    { "bytes_over_time({ foo = \"bar\" }[12m])",
      "bytes_over_time({foo=\"bar\"}[12m])" },
    { "bytes_rate({ foo = \"bar\" }[12m])",
      "bytes_rate({foo=\"bar\"}[12m])" },
    { "rate({ foo = \"bar\" }[5h])",
      "rate({foo=\"bar\"}[5h])" },
    { "rate({ foo = \"bar\" }[5d])",
      "rate({foo=\"bar\"}[5d])" },
    { "count_over_time({ foo = \"bar\" }[1w])",
      "count_over_time({foo=\"bar\"}[1w])" },
    { "absent_over_time({ foo = \"bar\" }[1w])",
      "absent_over_time({foo=\"bar\"}[1w])" },
    { "rate({ foo = \"bar\" }[1y])",
      "rate({foo=\"bar\"}[1y])" },
    { "count_over_time({foo=~`bar\\w+`}[12h] |~ `error\\`)",
      "count_over_time({foo=~\"bar\\\\w+\"} |~ \"error\\\\\"[12h])" },
    { "count_over_time({foo=\"bar\"}[12h] |= \"error\")",
      "count_over_time({foo=\"bar\"} |= \"error\"[12h])" },
    { "count_over_time({foo=\"bar\"} |= \"error\" [12h])",
      "count_over_time({foo=\"bar\"} |= \"error\"[12h])" },
    { "count_over_time(({foo=\"bar\"} |= \"baz\" |~ \"blip\" != \"flip\" !~ \"flap\")[5m])",
      "count_over_time({foo=\"bar\"} |= \"baz\" |~ \"blip\" != \"flip\" !~ \"flap\"[5m])" },
    { "count_over_time({foo=\"bar\"}[5m] offset 1h)",
      "count_over_time({foo=\"bar\"}[5m] offset 1h0m0s)" },
    { "count_over_time({foo=\"bar\"} |= \"x\" [5m] offset 30m)",
      "count_over_time({foo=\"bar\"} |= \"x\"[5m] offset 30m0s)" },
    { "count_over_time({foo=\"bar\"}[5m] offset -2h)",
      "count_over_time({foo=\"bar\"}[5m] offset -2h0m0s)" },
    { "count_over_time(({foo=\"bar\"})[5m] offset 1d)",
      "count_over_time({foo=\"bar\"}[5m] offset 24h0m0s)" },
    { "rate({foo=\"bar\"}[1m30s])",
      "rate({foo=\"bar\"}[1m30s])" },
    { "rate({foo=\"bar\"}[500ms])",
      "rate({foo=\"bar\"}[500ms])" },
    { "sum_over_time({app=\"api\"} | logfmt | unwrap bytes_sent [5m])",
      "sum_over_time({app=\"api\"} | logfmt | unwrap bytes_sent[5m])" },
    { "avg_over_time({app=\"api\"} | json | unwrap duration(latency) [5m])",
      "avg_over_time({app=\"api\"} | json | unwrap duration(latency)[5m])" },
    { "max_over_time({app=\"api\"} | logfmt | unwrap bytes(size) | __error__=\"\" [1m]) by (pod)",
      "max_over_time({app=\"api\"} | logfmt | unwrap bytes(size) | __error__=\"\"[1m]) by (pod)" },
    { "min_over_time({app=\"api\"} | unwrap duration_seconds(d) | __error__=\"\" | x > 1 [1m]) without (x)",
      "min_over_time({app=\"api\"} | unwrap duration_seconds(d) | __error__=\"\" | x>1[1m]) without (x)" },
    { "stdvar_over_time({app=\"api\"} | unwrap x [1m])",
      "stdvar_over_time({app=\"api\"} | unwrap x[1m])" },
    { "stddev_over_time({app=\"api\"} | unwrap x [1m]) by ()",
      "stddev_over_time({app=\"api\"} | unwrap x[1m]) by ()" },
    { "quantile_over_time(0.99, {app=\"api\"} | json | unwrap latency [5m]) by (route)",
      "quantile_over_time(0.99,{app=\"api\"} | json | unwrap latency[5m]) by (route)" },
    { "quantile_over_time(.5, {app=\"api\"} | unwrap latency [5m])",
      "quantile_over_time(0.5,{app=\"api\"} | unwrap latency[5m])" },
    { "first_over_time({app=\"api\"} | unwrap x [5m])",
      "first_over_time({app=\"api\"} | unwrap x[5m])" },
    { "last_over_time({app=\"api\"} | unwrap x [5m] offset 5m)",
      "last_over_time({app=\"api\"} | unwrap x[5m] offset 5m0s)" },
    { "rate({app=\"api\"} | unwrap x [5m])",
      "rate({app=\"api\"} | unwrap x[5m])" },
    { "rate_counter({app=\"api\"} | unwrap x [5m])",
      "rate_counter({app=\"api\"} | unwrap x[5m])" },
    { "absent_over_time({app=\"api\"} | unwrap x [5m])",
      "absent_over_time({app=\"api\"} | unwrap x[5m])" },
    { "sum_over_time({app=\"api\"}[5m] | logfmt | unwrap x)",
      "sum_over_time({app=\"api\"} | logfmt | unwrap x[5m])" },
    { "sum_over_time({app=\"api\"}[5m] offset 1h | logfmt | unwrap x)",
      "sum_over_time({app=\"api\"} | logfmt | unwrap x[5m] offset 1h0m0s)" },
    { "sum_over_time(({app=\"api\"})[5m] | unwrap x)",
      "sum_over_time({app=\"api\"} | unwrap x[5m])" },
    { "sum_over_time(({app=\"api\"} | unwrap x)[5m])",
      "sum_over_time({app=\"api\"} | unwrap x[5m])" },
    { "sum_over_time(({app=\"api\"} | logfmt | unwrap x)[5m] offset 1m)",
      "sum_over_time({app=\"api\"} | logfmt | unwrap x[5m] offset 1m0s)" },
    { "sum(rate({ foo = \"bar\" }[5h]))",
      "sum(rate({foo=\"bar\"}[5h]))" },
    { "avg(count_over_time({ foo = \"bar\" }[5h])) by (bar,foo)",
      "avg by (bar,foo)(count_over_time({foo=\"bar\"}[5h]))" },
    { "max without (bar) (count_over_time({ foo = \"bar\" }[5h]))",
      "max without (bar)(count_over_time({foo=\"bar\"}[5h]))" },
    { "max without () (count_over_time({ foo = \"bar\" }[5h]))",
      "max without ()(count_over_time({foo=\"bar\"}[5h]))" },
    { "avg(count_over_time({ foo = \"bar\" }[5h])) by ()",
      "avg(count_over_time({foo=\"bar\"}[5h]))" },
    { "topk(10,count_over_time({ foo = \"bar\" }[5h])) without (bar)",
      "topk without (bar)(10,count_over_time({foo=\"bar\"}[5h]))" },
    { "bottomk(30 ,sum(rate({ foo = \"bar\" }[5h])) by (foo))",
      "bottomk(30,sum by (foo)(rate({foo=\"bar\"}[5h])))" },
    { "max( sum(count_over_time({ foo = \"bar\" }[5h])) without (foo,bar) ) by (foo)",
      "max by (foo)(sum without (foo,bar)(count_over_time({foo=\"bar\"}[5h])))" },
    { "count(rate({a=\"b\"}[1m]))",
      "count(rate({a=\"b\"}[1m]))" },
    { "stddev(rate({a=\"b\"}[1m]))",
      "stddev(rate({a=\"b\"}[1m]))" },
    { "stdvar by (x) (rate({a=\"b\"}[1m]))",
      "stdvar by (x)(rate({a=\"b\"}[1m]))" },
    { "min(rate({a=\"b\"}[1m]))",
      "min(rate({a=\"b\"}[1m]))" },
    { "sort(sum by (a) (rate({a=\"b\"}[1m])))",
      "sort(sum by (a)(rate({a=\"b\"}[1m])))" },
    { "sort_desc(sum by (a) (rate({a=\"b\"}[1m])))",
      "sort_desc(sum by (a)(rate({a=\"b\"}[1m])))" },
    { "sum(5)",
      "sum(5)" },
    { "sum by (level) (count_over_time({job=\"x\"} | json | __error__=\"\" [5m]))",
      "sum by (level)(count_over_time({job=\"x\"} | json | __error__=\"\"[5m]))" },
    { "sum by (status) (count_over_time({job=\"nginx\"} | json [1m]))",
      "sum by (status)(count_over_time({job=\"nginx\"} | json[1m]))" },
    { "label_replace(rate({job=\"api-server\",service=\"a:c\"}[5m]), \"foo\", \"$1\", \"service\", \"(.*):.*\")",
      "label_replace(rate({job=\"api-server\", service=\"a:c\"}[5m]),\"foo\",\"$1\",\"service\",\"(.*):.*\")" },
    { "avg(label_replace(count_over_time({ foo = \"bar\" }[5h]), \"bar\", \"$1$2\", \"foo\", \"(.*).(.*)\")) by (bar,foo)",
      "avg by (bar,foo)(label_replace(count_over_time({foo=\"bar\"}[5h]),\"bar\",\"$1$2\",\"foo\",\"(.*).(.*)\"))" },
    { "vector(1)+vector(1)",
      "(vector(1.000000) + vector(1.000000))" },
    { "vector(1)",
      "vector(1.000000)" },
    { "vector(0.5) * 2",
      "(vector(0.500000) * 2)" },
    { "1",
      "1" },
    { "-1.5",
      "-1.5" },
    { "+2",
      "2" },
    { "1 + 1",
      "2" },
    { "1 + -2 / 1",
      "-1" },
    { "1 + 1 - -1",
      "3" },
    { "2 ^ 3 ^ 2",
      "512" },
    { "(1 + 2) * 3",
      "9" },
    { "7 % 4",
      "3" },
    { "5 > 3",
      "1" },
    { "1 == bool 1",
      "1" },
    { "0 / 0",
      "(0 / 0)" },
    { "sum(count_over_time({foo=\"bar\"}[5m])) by (foo) + 1 / 2",
      "(sum by (foo)(count_over_time({foo=\"bar\"}[5m])) + 0.5)" },
    { "sum(count_over_time({foo=\"bar\"}[5m])) by (foo) / sum(count_over_time({foo=\"bar\"}[5m])) by (foo) / sum(count_over_time({foo=\"bar\"}[5m])) by (foo)",
      "((sum by (foo)(count_over_time({foo=\"bar\"}[5m])) / sum by (foo)(count_over_time({foo=\"bar\"}[5m]))) / sum by (foo)(count_over_time({foo=\"bar\"}[5m])))" },
    { "sum(count_over_time({foo=\"bar\"}[5m])) by (foo) ^ sum(count_over_time({foo=\"bar\"}[5m])) by (foo) / sum(count_over_time({foo=\"bar\"}[5m])) by (foo)",
      "((sum by (foo)(count_over_time({foo=\"bar\"}[5m])) ^ sum by (foo)(count_over_time({foo=\"bar\"}[5m]))) / sum by (foo)(count_over_time({foo=\"bar\"}[5m])))" },
    { "sum(count_over_time({foo=\"bar\"}[5m])) by (foo) + sum(count_over_time({foo=\"bar\"}[5m])) by (foo) / sum(count_over_time({foo=\"bar\"}[5m])) by (foo)",
      "(sum by (foo)(count_over_time({foo=\"bar\"}[5m])) + (sum by (foo)(count_over_time({foo=\"bar\"}[5m])) / sum by (foo)(count_over_time({foo=\"bar\"}[5m]))))" },
    { "sum by (job) (count_over_time({namespace=\"tns\"} |= \"level=error\"[5m]) / count_over_time({namespace=\"tns\"}[5m])) * 100",
      "(sum by (job)((count_over_time({namespace=\"tns\"} |= \"level=error\"[5m]) / count_over_time({namespace=\"tns\"}[5m]))) * 100)" },
    { "rate({a=\"b\"}[5m]) > 10",
      "(rate({a=\"b\"}[5m]) > 10)" },
    { "rate({a=\"b\"}[5m]) >= bool 10",
      "(rate({a=\"b\"}[5m]) >= bool 10)" },
    { "rate({a=\"b\"}[5m]) or vector(0)",
      "(rate({a=\"b\"}[5m]) or vector(0.000000))" },
    { "rate({a=\"b\"}[5m]) and rate({c=\"d\"}[5m])",
      "(rate({a=\"b\"}[5m]) and rate({c=\"d\"}[5m]))" },
    { "rate({a=\"b\"}[5m]) unless on (x) rate({c=\"d\"}[5m])",
      "(rate({a=\"b\"}[5m]) unless on (x)  rate({c=\"d\"}[5m]))" },
    { "rate({a=\"b\"}[5m]) / on (x, y) group_left (z) rate({c=\"d\"}[5m])",
      "(rate({a=\"b\"}[5m]) / on (x,y) group_left (z) rate({c=\"d\"}[5m]))" },
    { "rate({a=\"b\"}[5m]) / ignoring (x) group_right rate({c=\"d\"}[5m])",
      "(rate({a=\"b\"}[5m]) / ignoring (x) group_right rate({c=\"d\"}[5m]))" },
    { "rate({a=\"b\"}[5m]) * on () rate({c=\"d\"}[5m])",
      "(rate({a=\"b\"}[5m]) * on ()  rate({c=\"d\"}[5m]))" },
    { "rate({a=\"b\"}[5m]) - ignoring () rate({c=\"d\"}[5m])",
      "(rate({a=\"b\"}[5m]) - rate({c=\"d\"}[5m]))" },
    { "rate({a=\"b\"}[5m]) % 2 != 0",
      "((rate({a=\"b\"}[5m]) % 2) != 0)" },
    { "SUM(RATE({a=\"b\"}[5m]))",
      "sum(rate({a=\"b\"}[5m]))" },
    { "Sum By (a) (Rate({a=\"b\"}[5m]))",
      "sum by (a)(rate({a=\"b\"}[5m]))" },
    { "sum(count_over_time({a=\"b\"} | logfmt | level=\"error\" [1m])) / sum(count_over_time({a=\"b\"}[1m]))",
      "(sum(count_over_time({a=\"b\"} | logfmt | level=\"error\"[1m])) / sum(count_over_time({a=\"b\"}[1m])))" },
};

static const struct case_ bad[] = {
    { "{foo=\"bar\"",
      "parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ," },
    { "{foo=\"bar\"} |~",
      "parse error at line 1, col 15: syntax error: unexpected $end, expecting STRING or ip" },
    { "{foo=\"bar}",
      "parse error at line 1, col 6: literal not terminated" },
    { "{foo=\"bar\"} \"foo\"",
      "parse error at line 1, col 13: syntax error: unexpected STRING" },
    { "{foo=\"bar\"} foo",
      "parse error at line 1, col 13: syntax error: unexpected IDENTIFIER" },
    { "unk({ foo = \"bar\" }[5m])",
      "parse error at line 1, col 1: syntax error: unexpected IDENTIFIER" },
    { "rate({ foo = \"bar\" }[5)",
      "parse error at line 0, col 21: missing closing ']' in duration" },
    { "min({ foo = \"bar\" }[5m])",
      "parse error at line 0, col 20: syntax error: unexpected RANGE" },
    { "stddev({ foo = \"bar\" })",
      "parse error at line 1, col 23: syntax error: unexpected )" },
    { "label_replace(rate({ foo = \"bar\" }[5m]),\"\")",
      "parse error at line 1, col 43: syntax error: unexpected ), expecting ," },
    { "{ foo = \"bar\" }|logfmt|addr>=ip(\"1.2.3.4\")",
      "parse error at line 1, col 30: syntax error: unexpected ip, expecting BYTES or NUMBER or DURATION" },
    { "{ foo = \"bar\" }|logfmt|addr>ip(\"1.2.3.4\")",
      "parse error at line 1, col 29: syntax error: unexpected ip, expecting BYTES or NUMBER or DURATION" },
    { "{ foo = \"bar\" }|logfmt|addr<=ip(\"1.2.3.4\")",
      "parse error at line 1, col 30: syntax error: unexpected ip, expecting BYTES or NUMBER or DURATION" },
    { "{ foo = \"bar\" }|logfmt|addr<ip(\"1.2.3.4\")",
      "parse error at line 1, col 29: syntax error: unexpected ip, expecting BYTES or NUMBER or DURATION" },
    { "bottomk(he,count_over_time({ foo = \"bar\" }[5h]))",
      "parse error at line 1, col 9: syntax error: unexpected IDENTIFIER" },
    { "sum(3 ,count_over_time({ foo = \"bar\" }[5h]))",
      "parse error : unsupported parameter for operation sum(3," },
    { "topk(count_over_time({ foo = \"bar\" }[5h]))",
      "parse error : parameter required for operation topk" },
    { "bottomk(1.2,count_over_time({ foo = \"bar\" }[5h]))",
      "parse error : invalid parameter bottomk(1.2," },
    { "topk(0,count_over_time({ foo = \"bar\" }[5h]))",
      "parse error : invalid parameter (must be greater than 0) topk(0" },
    { "absent_over_time({ foo = \"bar\" }[5h]) by (foo)",
      "parse error : grouping not allowed for absent_over_time aggregation" },
    { "count_over_time({a=\"b\"}[5m]) by (a)",
      "parse error : grouping not allowed for count_over_time aggregation" },
    { "rate({a=\"b\"}[5m]) without (a)",
      "parse error : grouping not allowed for rate aggregation" },
    { "count_over_time({a=\"b\"} | unwrap x [5m])",
      "parse error : invalid aggregation count_over_time with unwrap" },
    { "bytes_rate({a=\"b\"} | unwrap x [5m])",
      "parse error : invalid aggregation bytes_rate with unwrap" },
    { "sum_over_time({a=\"b\"}[5m])",
      "parse error : invalid aggregation sum_over_time without unwrap" },
    { "rate_counter({a=\"b\"}[5m])",
      "parse error : invalid aggregation rate_counter without unwrap" },
    { "rate(5, {a=\"b\"}[5m])",
      "parse error : parameter 5 not supported for operation rate" },
    { "quantile_over_time({a=\"b\"} | unwrap x [5m])",
      "parse error : parameter required for operation quantile_over_time" },
    { "sort by (a) (rate({a=\"b\"}[1m]))",
      "parse error : sort and sort_desc doesn't allow grouping by " },
    { "sort_desc without (a) (rate({a=\"b\"}[1m]))",
      "parse error : sort and sort_desc doesn't allow grouping by " },
    { "{a=\"\"}",
      "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will" },
    { "{}",
      "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will" },
    { "{a=~\".*\"} |= \"x\"",
      "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will" },
    { "sum(rate({a!=\"b\"}[5m]))",
      "parse error : queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will" },
    { "{a=\"b\"} + 1",
      "parse error : unexpected type for left leg of binary operation (+): *syntax.MatchersExpr" },
    { "1 + {a=\"b\"} |= \"x\"",
      "parse error : unexpected type for right leg of binary operation (+): *syntax.PipelineExpr" },
    { "vector(1) or 1",
      "parse error : unexpected literal for right leg of logical/set binary operation (or): 1.000000" },
    { "1 and vector(1)",
      "parse error : unexpected literal for left leg of logical/set binary operation (and): 1.000000" },
    { "{a=\"b\"} | regexp \"(\\\\d+)\"",
      "parse error : invalid regexp parser: invalid extracted label name ''" },
    { "{a=\"b\"} | regexp \"foo\"",
      "parse error : invalid regexp parser: at least one named capture must be supplied" },
    { "{a=\"b\"} | pattern \"foo\"",
      "parse error : invalid pattern parser: at least one capture is required" },
    { "{a=\"b\"} | pattern \"<_> foo\"",
      "parse error : invalid pattern parser: at least one capture is required" },
    { "{a=\"b\"} | unwrap x",
      "parse error at line 1, col 11: syntax error: unexpected unwrap" },
    { "{a=\"b\"} | json | unwrap x",
      "parse error at line 1, col 18: syntax error: unexpected unwrap" },
    { "sum({a=\"b\"}[5m])",
      "parse error at line 0, col 12: syntax error: unexpected RANGE" },
    { "{a=\"b\"} |= \"x\" or",
      "parse error at line 1, col 18: syntax error: unexpected $end, expecting STRING or ip" },
    { "{a=\"b\"} |= 5",
      "parse error at line 1, col 12: syntax error: unexpected NUMBER, expecting STRING or ip" },
    { "{a=\"b\"} | x > \"y\"",
      "parse error at line 1, col 15: syntax error: unexpected STRING, expecting BYTES or NUMBER or DURATION" },
    { "{a=\"b\"} | x == ip(\"1.2.3.4\")",
      "parse error at line 1, col 16: syntax error: unexpected ip, expecting BYTES or NUMBER or DURATION" },
    { "{a=\"b\"} | x =~ 5",
      "parse error at line 1, col 16: syntax error: unexpected NUMBER" },
    { "{a=\"b\"} | 5 > 1",
      "parse error at line 1, col 11: syntax error: unexpected NUMBER" },
    { "{a=\"b\"} | json a=",
      "parse error at line 1, col 18: syntax error: unexpected $end" },
    { "{a=\"b\"} | label_format a=",
      "parse error at line 1, col 26: syntax error: unexpected $end" },
    { "{a=\"b\"} | drop",
      "parse error at line 1, col 15: syntax error: unexpected $end" },
    { "{a=\"b\"} | line_format",
      "parse error at line 1, col 22: syntax error: unexpected $end, expecting STRING" },
    { "{a=\"b\"} | regexp",
      "parse error at line 1, col 17: syntax error: unexpected $end, expecting STRING" },
    { "{a=\"b\"} \\x",
      "parse error at line 1, col 9: syntax error: unexpected IDENTIFIER" },
    { "{a='b'}",
      "parse error at line 1, col 4: syntax error: unexpected IDENTIFIER" },
    { "{a=\"\\q\"}",
      "parse error at line 1, col 4: invalid char escape" },
    { "{a=\"b\"} /* x",
      "parse error at line 1, col 9: comment not terminated" },
    { "sum(rate({a=\"b\"}[5m])) by (a) by (b)",
      "parse error at line 1, col 31: syntax error: unexpected by" },
    { "sum by (a) (rate({a=\"b\"}[5m])) by (b)",
      "parse error at line 1, col 32: syntax error: unexpected by" },
    { "{a=\"b\"}[5m]",
      "parse error at line 0, col 8: syntax error: unexpected RANGE" },
    { "rate({a=\"b\"}[5m] offset)",
      "parse error at line 1, col 24: syntax error: unexpected ), expecting DURATION" },
    { "vector(-1)",
      "parse error at line 1, col 8: syntax error: unexpected -, expecting NUMBER" },
    { "vector(x)",
      "parse error at line 1, col 8: syntax error: unexpected IDENTIFIER, expecting NUMBER" },
    { "count_over_time((({a=\"b\"}))[5m])",
      "parse error at line 1, col 27: syntax error: unexpected )" },
    { "count_over_time({a=\"b\"})",
      "parse error at line 1, col 24: syntax error: unexpected )" },
    { "count_over_time({a=\"b\"} | unwrap x | json [5m])",
      "parse error at line 1, col 38: syntax error: unexpected json" },
    { "rate({ foo = \"bar\" }[])",
      "parse error at line 0, col 21: empty duration string" },
    { "rate({ foo = \"bar\" }[5m] offset 5)",
      "parse error at line 1, col 33: syntax error: unexpected NUMBER, expecting DURATION" },
    { "{on=\"x\"}",
      "parse error at line 1, col 2: syntax error: unexpected on" },
    { "{a=\"b\"} | json | on=\"x\"",
      "parse error at line 1, col 18: syntax error: unexpected on" },
    { "sum(rate({a=\"b\"}[5m])) + on (a b) sum(rate({a=\"b\"}[5m]))",
      "parse error at line 1, col 32: syntax error: unexpected IDENTIFIER" },
    { "sum(rate({a=\"b\"}[5m])) by (a,)",
      "parse error at line 1, col 30: syntax error: unexpected )" },
    { "{a=\"b\"} |= \"x\" | logfmt --strict --foo",
      "parse error at line 1, col 36: syntax error: unexpected IDENTIFIER, expecting NUMBER" },
    { "{a=\"b\"} |= \"x\" |",
      "parse error at line 1, col 17: syntax error: unexpected $end" },
    { "(rate({a=\"b\"}[5m])",
      "parse error at line 1, col 19: syntax error: unexpected $end" },
    { "rate({a=\"b\"}[5m]))",
      "parse error at line 1, col 18: syntax error: unexpected )" },
    { "{a=\"b\"} | (x=\"1\"",
      "parse error at line 1, col 17: syntax error: unexpected $end" },
    { "{a=\"b\"} | ! = \"1\"",
      "parse error at line 1, col 11: syntax error: unexpected IDENTIFIER" },
    { "1 +",
      "parse error at line 1, col 4: syntax error: unexpected $end" },
};

static struct logql_expr *ex;
static struct vg_err err;

static void fini(void)
{
    logql_expr_free(ex);
    ex = NULL;
    vg_alloc_fail_after(0);
}

TestSuite(logql_parser, .fini = fini);

static const struct logql_node *parse(const char *q)
{
    logql_expr_free(ex);
    vg_err_clear(&err);
    ex = logql_parse(q, strlen(q), &err);
    return ex ? ex->root : NULL;
}

static const struct logql_node *parse_ok(const char *q)
{
    const struct logql_node *n = parse(q);
    cr_assert(n, "%s: %s", q, err.msg);
    return n;
}

/* The String() form of q; the caller frees it. */
static char *format(const struct logql_node *n, bool pretty)
{
    struct vg_buf b;
    vg_buf_init(&b);
    if (pretty)
        logql_prettify(n, &b);
    else
        logql_format(n, &b);
    cr_assert(!vg_buf_failed(&b));
    char *s = vg_strdup(vg_buf_cstr(&b));
    vg_buf_free(&b);
    return s;
}

static void expect_format(const char *q, const char *want)
{
    char *got = format(parse_ok(q), false);
    cr_expect_str_eq(got, want, "query %s", q);
    vg_free(got);
}

static void expect_error(const char *q, const char *want)
{
    cr_expect_null(parse(q), "query %s parsed", q);
    cr_expect_eq(err.code, VG_EINVAL, "%s", q);
    cr_expect_str_eq(err.msg, want, "query %s", q);
}

Test(logql_parser, good_queries_print_as_loki)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        expect_format(good[i].in, good[i].out);
}

Test(logql_parser, bad_queries_fail_with_loki_messages)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(bad[i].in, bad[i].out);
}

/* format -> parse -> format is a fixed point, and Prettify's text parses to a tree
 * that prints the same. */
Test(logql_parser, printed_queries_parse_back)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *t1 = format(parse_ok(good[i].in), false);
        char *t2 = format(parse_ok(t1), false);
        cr_expect_str_eq(t2, t1, "round trip of %s", good[i].in);
        char *pr = format(parse_ok(good[i].in), true);
        char *t3 = format(parse_ok(pr), false);
        cr_expect_str_eq(t3, t1, "prettified %s", pr);
        vg_free(t1);
        vg_free(t2);
        vg_free(pr);
        vg_free(t3);
    }
}

Test(logql_parser, grafana_health_check)
{
    const struct logql_node *n = parse_ok("vector(1)+vector(1)");
    cr_assert_eq(n->kind, LQ_BINARY);
    cr_expect_eq(n->bin.op, LQ_BIN_ADD);
    cr_expect_eq(n->bin.lhs->kind, LQ_VECTOR);
    cr_expect_eq(n->bin.lhs->vector, 1.0);
    cr_expect_eq(n->bin.rhs->kind, LQ_VECTOR);
    cr_expect_not(logql_is_log_query(n));
}

Test(logql_parser, selector_and_line_filters)
{
    const struct logql_node *n =
        parse_ok("{app=\"api\", env=~\"prod|staging\"} |= \"a\" or ip(\"10.0.0.0/8\") != \"x\" or \"y\"");
    cr_assert(logql_is_log_query(n));
    cr_assert_eq(n->log.nms, 2);
    cr_expect_str_eq(n->log.ms[1]->name, "env");
    cr_expect_eq(n->log.ms[1]->op, MATCH_RE);
    cr_assert_eq(n->log.nstages, 3);
    const struct logql_stage *s = n->log.stages;
    cr_expect_eq(s[0].kind, LQ_STAGE_LINE_FILTER);
    cr_expect_eq(s[0].line.op, LQ_LINE_CONTAINS);
    cr_assert_eq(s[0].line.nalts, 2);
    cr_expect_not(s[0].line.alts[0].ip);
    cr_expect(s[0].line.alts[1].ip);
    cr_expect_str_eq(s[0].line.alts[1].value.p, "10.0.0.0/8");
    /* a negated `or` becomes one filter per alternative */
    cr_expect_eq(s[1].line.op, LQ_LINE_NOT_CONTAINS);
    cr_expect_eq(s[1].line.nalts, 1);
    cr_expect_str_eq(s[2].line.alts[0].value.p, "y");
    cr_expect(logql_line_op_negated(s[2].line.op));
}

Test(logql_parser, strings_are_unescaped)
{
    const struct logql_node *n = parse_ok("{a=\"b\\\"c\"} |= `x\\ny` |~ \"\\x41\\u00e9\\t\"");
    cr_expect_str_eq(n->log.ms[0]->value, "b\"c");
    cr_expect_str_eq(n->log.stages[0].line.alts[0].value.p, "x\\ny");
    cr_expect_str_eq(n->log.stages[1].line.alts[0].value.p, "A\xc3\xa9\t");
    cr_expect_eq(n->log.stages[1].line.alts[0].value.len, 4);
}

Test(logql_parser, parser_stages)
{
    const struct logql_node *n = parse_ok(
        "{a=\"b\"} | json x=\"y.z\", w | logfmt --keep-empty --strict | regexp \"(?P<n>\\\\d+)\""
        " | pattern \"<ip> <_>\" | unpack | line_format \"{{.x}}\" | label_format a=b, c=\"{{.d}}\""
        " | drop a, b=\"c\" | keep k | decolorize");
    const struct logql_stage *s = n->log.stages;
    cr_assert_eq(n->log.nstages, 10);
    cr_expect_eq(s[0].kind, LQ_STAGE_JSON);
    cr_assert_eq(s[0].named.n, 2);
    cr_expect_str_eq(s[0].named.v[0].value.p, "y.z");
    cr_expect_str_eq(s[0].named.v[1].name, "w");
    cr_expect_str_eq(s[0].named.v[1].value.p, "w");
    cr_expect_eq(s[1].kind, LQ_STAGE_LOGFMT);
    cr_expect(s[1].named.strict && s[1].named.keep_empty);
    cr_expect_eq(s[1].named.n, 0);
    cr_expect_eq(s[2].kind, LQ_STAGE_REGEXP);
    cr_expect_str_eq(s[2].arg.p, "(?P<n>\\d+)");
    cr_expect_eq(s[3].kind, LQ_STAGE_PATTERN);
    cr_expect_eq(s[4].kind, LQ_STAGE_UNPACK);
    cr_expect_eq(s[5].kind, LQ_STAGE_LINE_FORMAT);
    cr_expect_eq(s[6].kind, LQ_STAGE_LABEL_FORMAT);
    cr_expect(s[6].named.v[0].rename);
    cr_expect_not(s[6].named.v[1].rename);
    cr_expect_eq(s[7].kind, LQ_STAGE_DROP);
    cr_expect_null(s[7].names.v[0].m);
    cr_expect_not_null(s[7].names.v[1].m);
    cr_expect_eq(s[8].kind, LQ_STAGE_KEEP);
    cr_expect_eq(s[9].kind, LQ_STAGE_DECOLORIZE);
}

Test(logql_parser, typed_label_filters)
{
    const struct logql_node *n =
        parse_ok("{a=\"b\"} | d > 1.5s | s <= 5KiB | n != -2 | i = ip(\"1.2.3.4\") | e=\"\"");
    const struct logql_stage *s = n->log.stages;
    cr_assert_eq(n->log.nstages, 5);
    cr_expect_eq(s[0].filter->kind, LQ_LF_DURATION);
    cr_expect_eq(s[0].filter->cmp.cmp, LQ_CMP_GT);
    cr_expect_eq(s[0].filter->cmp.duration_ns, 1500000000LL);
    cr_expect_eq(s[1].filter->kind, LQ_LF_BYTES);
    cr_expect_eq(s[1].filter->cmp.bytes, 5120);
    cr_expect_eq(s[1].filter->cmp.cmp, LQ_CMP_LE);
    cr_expect_eq(s[2].filter->kind, LQ_LF_NUMBER);
    cr_expect_eq(s[2].filter->cmp.number, -2.0);
    cr_expect_eq(s[3].filter->kind, LQ_LF_IP);
    cr_expect_eq(s[3].filter->cmp.cmp, LQ_CMP_EQ);
    cr_expect_eq(s[4].filter->kind, LQ_LF_STRING);
    cr_expect(s[4].filter->m->matches_empty);
}

Test(logql_parser, label_filter_precedence)
{
    /* or < and; ',' and juxtaposition group everything after them */
    const struct logql_label_filter *f =
        parse_ok("{a=\"b\"} | x=\"1\" or y=\"2\" and z=\"3\"")->log.stages[0].filter;
    cr_assert_eq(f->kind, LQ_LF_OR);
    cr_expect_eq(f->bin.lhs->kind, LQ_LF_STRING);
    cr_expect_eq(f->bin.rhs->kind, LQ_LF_AND);
    f = parse_ok("{a=\"b\"} | x=\"1\" and y=\"2\" or z=\"3\"")->log.stages[0].filter;
    cr_assert_eq(f->kind, LQ_LF_OR);
    cr_expect_eq(f->bin.lhs->kind, LQ_LF_AND);
    f = parse_ok("{a=\"b\"} | x=\"1\", y=\"2\" or z=\"3\"")->log.stages[0].filter;
    cr_assert_eq(f->kind, LQ_LF_AND);
    cr_expect_eq(f->bin.rhs->kind, LQ_LF_OR);
}

Test(logql_parser, range_aggregation_fields)
{
    const struct logql_node *n = parse_ok(
        "quantile_over_time(0.95, {a=\"b\"} | logfmt | unwrap duration(took) | __error__=\"\""
        " [5m] offset 1h) by (pod, ns)");
    cr_assert_eq(n->kind, LQ_RANGE_AGG);
    cr_expect_eq(n->range.op, LQ_RANGE_QUANTILE);
    cr_expect(n->range.has_param);
    cr_expect_eq(n->range.param, 0.95);
    cr_expect_eq(n->range.range_ns, 300000000000LL);
    cr_expect_eq(n->range.offset_ns, 3600000000000LL);
    cr_assert_not_null(n->range.unwrap);
    cr_expect_str_eq(n->range.unwrap->label, "took");
    cr_expect_eq(n->range.unwrap->conv, LQ_CONV_DURATION);
    cr_expect_eq(n->range.unwrap->npost, 1);
    cr_expect_eq(n->range.log->log.nstages, 1);
    cr_assert_not_null(n->range.grouping);
    cr_expect_not(n->range.grouping->without);
    cr_assert_eq(n->range.grouping->labels.n, 2);
    cr_expect_str_eq(n->range.grouping->labels.v[1], "ns");
    /* a range aggregation without by/without has no grouping */
    cr_expect_null(parse_ok("rate({a=\"b\"}[1m])")->range.grouping);
}

Test(logql_parser, vector_aggregation_and_binary_fields)
{
    const struct logql_node *n = parse_ok(
        "topk by (a) (5, rate({a=\"b\"}[1m])) / on (a) group_left (b) count(rate({c=\"d\"}[1m]))"
        " > bool 2");
    cr_assert_eq(n->kind, LQ_BINARY);
    cr_expect_eq(n->bin.op, LQ_BIN_GT);
    cr_expect(n->bin.return_bool);
    const struct logql_node *d = n->bin.lhs;
    cr_assert_eq(d->kind, LQ_BINARY);
    cr_expect_eq(d->bin.op, LQ_BIN_DIV);
    cr_expect(d->bin.on);
    cr_expect_eq(d->bin.card, LQ_CARD_MANY_TO_ONE);
    cr_expect_str_eq(d->bin.include.v[0], "b");
    cr_assert_eq(d->bin.lhs->kind, LQ_VECTOR_AGG);
    cr_expect_eq(d->bin.lhs->vec.op, LQ_VEC_TOPK);
    cr_expect_eq(d->bin.lhs->vec.param, 5);
    cr_expect_str_eq(d->bin.lhs->vec.grouping.labels.v[0], "a");
    cr_expect(logql_binop_is_comparison(LQ_BIN_GT));
    cr_expect(logql_binop_is_set(LQ_BIN_UNLESS));
    cr_expect_str_eq(logql_binop_str(LQ_BIN_POW), "^");
}

Test(logql_parser, constant_folding)
{
    const struct logql_node *n = parse_ok("2 * 3 + 4 ^ 0.5");
    cr_assert_eq(n->kind, LQ_LITERAL);
    cr_expect_eq(n->literal, 8.0);
    cr_expect(isnan(parse_ok("1 / 0")->literal)); /* Loki: division by zero is NaN */
    cr_expect(isnan(parse_ok("1 % 0")->literal));
    cr_expect_eq(parse_ok("3 >= 4")->literal, 0.0);
    cr_expect(isinf(parse_ok("1e308 * 10")->literal));
    expect_format("1e308 * 10", "(1e308 * 10)");
    expect_format("-1e308 * 10", "(-1e308 * 10)");
    expect_format("1e6", "1e+06");
    /* fuzz regression: "-0" reads as a (Go) duration, so negative zero prints as 0 */
    expect_format("-0000", "0");
    expect_format("{a=\"b\"} | x > - 0", "{a=\"b\"} | x>0");
    expect_format("{a=\"b\"} | x > -0", "{a=\"b\"} | x>0s");
}

Test(logql_parser, keywords_and_functions_by_context)
{
    /* function words are identifiers unless a '(' follows */
    expect_format("{rate=\"1\", sum=\"2\", vector=\"3\", bytes=\"4\"}",
                  "{rate=\"1\", sum=\"2\", vector=\"3\", bytes=\"4\"}");
    expect_format("sum by(a)(rate({a=\"b\"}[1m]))", "sum by (a)(rate({a=\"b\"}[1m]))");
    expect_format("sum\n  without (a)\n  (rate({a=\"b\"}[1m]))", "sum without (a)(rate({a=\"b\"}[1m]))");
    expect_format("{a=\"b\"} | logfmt | label_replace=\"x\"", "{a=\"b\"} | logfmt | label_replace=\"x\"");
    expect_error("{a=\"b\"} | json | by=\"x\"",
                 "parse error at line 1, col 18: syntax error: unexpected by");
}

Test(logql_parser, durations_and_bytes_in_the_lexer)
{
    /* "5mb" is the duration 5m followed by the identifier b (a second filter that
     * lacks its operator), as in Loki */
    expect_error("{a=\"b\"} | x > 5mb",
                 "parse error at line 1, col 18: syntax error: unexpected $end");
    expect_format("{a=\"b\"} | x > 5MB", "{a=\"b\"} | x>5.0MB");
    expect_format("{a=\"b\"} | x > 1.5us", "{a=\"b\"} | x>1.5\xc2\xb5s");
    expect_format("{a=\"b\"} | x > 90s", "{a=\"b\"} | x>1m30s");
    expect_format("{a=\"b\"} | x > 1y", "{a=\"b\"} | x>8760h0m0s");
    expect_format("{a=\"b\"} | x < 3ns", "{a=\"b\"} | x<3ns");
    expect_format("{a=\"b\"} | x < 0s", "{a=\"b\"} | x<0s");
    expect_format("{a=\"b\"} | x > -1.5h", "{a=\"b\"} | x>-1h30m0s");
    expect_format("{a=\"b\"} | x > 1000PB", "{a=\"b\"} | x>1000PB");
    expect_format("{a=\"b\"} | x > 7B", "{a=\"b\"} | x>7B");
    expect_format("{a=\"b\"} | x > 12345", "{a=\"b\"} | x>12345");
    expect_format("rate({a=\"b\"}[90m])", "rate({a=\"b\"}[1h30m])");
}

Test(logql_parser, error_positions_count_lines_and_runes)
{
    expect_error("{a=\"\xc3\xa9\"}\n  | json\n  | x >",
                 "parse error at line 3, col 8: syntax error: unexpected $end, expecting BYTES or NUMBER or DURATION");
    /* after a two-character operator Loki's scanner reports line 0 */
    expect_error("{a=\"b\"}\n|= |=",
                 "parse error at line 0, col 4: syntax error: unexpected |=, expecting STRING or ip");
    expect_error("{a=\"b\"} |= \"\xff\"",
                 "parse error at line 1, col 12: invalid UTF-8 encoding");
    expect_error("{a\xff=\"b\"}", "parse error at line 1, col 2: invalid UTF-8 encoding");
    expect_error("{a=\"b\"} | x > 1e", "parse error at line 1, col 16: exponent has no digits");
    expect_error("{a=\"b\"}\n/* never closed", "parse error at line 2, col 1: comment not terminated");
    expect_error("{a=\"b\"} |= 'ab'", "parse error at line 1, col 12: invalid char literal");
    expect_error("{a=\"b\"} |= 'a", "parse error at line 1, col 12: literal not terminated");
    expect_error("{a=\"b\"} |= \"x\" `", "parse error at line 1, col 16: literal not terminated");
    /* fuzz regression: a NUL byte is refused as Go's scanner does */
    cr_expect_null(logql_parse("{a=\"b\"} |\0>0", 13, &err));
    cr_expect_str_eq(err.msg, "parse error at line 1, col 10: invalid character NUL");
}

Test(logql_parser, semantic_errors_from_matchers)
{
    cr_expect_null(parse("{a=~\"(\"}"));
    cr_expect_eq(err.code, VG_EINVAL);
    cr_expect(strncmp(err.msg, "parse error : invalid regex", 27) == 0, "%s", err.msg);
    cr_expect_null(parse("{a=\"b\"} | x!~\"[\""));
    cr_expect(strstr(err.msg, "invalid regex") != NULL, "%s", err.msg);
    cr_expect_null(parse("label_replace(rate({a=\"b\"}[1m]), \"d\", \"r\", \"s\", \"(\")"));
    cr_expect(strncmp(err.msg, "parse error : invalid regex in label_replace: ", 46) == 0,
              "%s", err.msg);
    cr_expect_null(parse("{a=\"b\"} | regexp \"(?P<x>a\""));
    cr_expect(strstr(err.msg, "invalid regex") != NULL, "%s", err.msg);
    /* named groups in both syntaxes, non-capturing groups and lookarounds are fine */
    parse_ok("{a=\"b\"} | regexp \"(?<x>a)(?:b)(?P<y>[(]c)\"");
}

Test(logql_parser, limits)
{
    char big[LOGQL_MAX_QUERY_LEN + 1];
    memset(big, ' ', sizeof big);
    memcpy(big, "{a=\"b\"}", 7);
    cr_expect_null(logql_parse(big, LOGQL_MAX_QUERY_LEN, &err));
    cr_expect_str_eq(err.msg, "parse error : input size too long (5120 > 5120)");
    cr_expect_not_null(ex = logql_parse(big, LOGQL_MAX_QUERY_LEN - 1, &err));

    char deep[3 * LOGQL_MAX_DEPTH + 16], want[80];
    snprintf(want, sizeof want, "parse error : query nesting too deep (more than %d levels)",
             LOGQL_MAX_DEPTH);
    size_t k = 0;
    for (int i = 0; i < LOGQL_MAX_DEPTH + 5; i++)
        deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < LOGQL_MAX_DEPTH + 5; i++)
        deep[k++] = ')';
    deep[k] = '\0';
    expect_error(deep, want);
    /* the label filter and the range forms count too */
    k = 0;
    k += (size_t)sprintf(deep, "{a=\"b\"} | ");
    for (int i = 0; i < LOGQL_MAX_DEPTH + 5; i++)
        deep[k++] = '(';
    deep[k] = '\0';
    expect_error(deep, want);
}

Test(logql_parser, allocation_failure)
{
    const char *q = "sum by (a) (rate({a=\"b\", c=~\"d.*\"} |= \"x\" or \"y\" | json k=\"v\" | "
                    "k > 5 or k < 2 | line_format \"{{.k}}\" [5m])) / on (a) group_left (b) "
                    "quantile_over_time(0.9, {a=\"b\"} | unwrap x [1m]) by (a)";
    size_t before = vg_alloc_live_bytes();
    bool done = false;
    for (uint64_t n = 1; n < 10000 && !done; n++) {
        vg_alloc_fail_after(n);
        struct logql_expr *e = logql_parse(q, strlen(q), &err);
        vg_alloc_fail_after(0);
        if (e) {
            done = true;
            logql_expr_free(e);
        } else {
            cr_assert_eq(err.code, VG_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
        }
        cr_assert_eq(vg_alloc_live_bytes(), before, "leak at n=%llu", (unsigned long long)n);
    }
    cr_expect(done);
}

Test(logql_parser, prettify_splits_long_queries)
{
    const struct logql_node *n = parse_ok(
        "sum by (cluster, namespace) (rate({namespace=\"loki-ops\", container=\"query-frontend\"}"
        " |= \"metrics.go\" |= \"some long filter text here\" | logfmt | duration > 10s [5m]))");
    char *got = format(n, true);
    cr_expect_str_eq(got,
                     "sum by (cluster, namespace)(\n"
                     "  rate(\n"
                     "    {namespace=\"loki-ops\", container=\"query-frontend\"}\n"
                     "      |= \"metrics.go\" |= \"some long filter text here\"\n"
                     "      | logfmt\n"
                     "      | duration>10s [5m]\n"
                     "  )\n"
                     ")");
    vg_free(got);
    n = parse_ok("sum(rate({app=\"a-very-long-application-name\"}[5m])) / on (app) group_left "
                 "sum(rate({app=\"another-very-long-application\"}[5m]))");
    got = format(n, true);
    cr_expect_str_eq(got,
                     "  sum(rate({app=\"a-very-long-application-name\"}[5m]))\n"
                     "/ on (app) group_left\n"
                     "  sum(rate({app=\"another-very-long-application\"}[5m]))");
    vg_free(got);
    /* fuzz regression: a split leg that is a binary operation keeps its parentheses
     * (Loki drops them, and `(a - b) * 2` would read back as a - b * 2) */
    n = parse_ok("(sum(rate({app=\"a-very-long-application-name\"}[5m])) - "
                 "sum(rate({app=\"another-very-long-application\"}[5m]))) * 2");
    got = format(n, true);
    cr_expect_str_eq(got,
                     "  (\n"
                     "      sum(rate({app=\"a-very-long-application-name\"}[5m]))\n"
                     "    -\n"
                     "      sum(rate({app=\"another-very-long-application\"}[5m]))\n"
                     "  )\n"
                     "*\n"
                     "  2");
    vg_free(got);
    /* short queries print as String() */
    got = format(parse_ok("{a=\"b\"} |= \"x\""), true);
    cr_expect_str_eq(got, "{a=\"b\"} |= \"x\"");
    vg_free(got);
}

Test(logql_parser, go_durations)
{
    static const struct {
        int64_t ns;
        const char *s;
    } c[] = {
        { 0, "0s" }, { 1, "1ns" }, { 1500, "1.5\xc2\xb5s" }, { 2000000, "2ms" },
        { 1000000000, "1s" }, { 61500000000LL, "1m1.5s" }, { 3600000000000LL, "1h0m0s" },
        { -90000000000LL, "-1m30s" }, { INT64_MIN, "-2562047h47m16.854775808s" },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        logql_format_go_duration(&b, c[i].ns);
        cr_expect_str_eq(vg_buf_cstr(&b), c[i].s);
        vg_buf_free(&b);
    }
}
