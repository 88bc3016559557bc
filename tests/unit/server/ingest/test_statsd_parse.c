/* Tests server/ingest/statsd_parse.c: every metric type, sample rates, DogStatsD tags and
 * packed values, the ignored DogStatsD sections, packet splitting, and each refusal
 * reason on garbage. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/ingest/statsd_parse.h"

static struct statsd_line l;

static enum statsd_error parse(const char *s)
{
    memset(&l, 0xa5, sizeof l); /* nothing may be left from an earlier parse */
    return statsd_parse_line(s, strlen(s), &l);
}

#define ASSERT_STR(vs, lit) \
    cr_assert(vg_str_eq_c((vs), (lit)), "expected \"%s\", got \"%.*s\"", (lit), \
              (int)(vs).len, (vs).p)

Test(statsd_parse, counter)
{
    cr_assert_eq(parse("page.views:1|c"), STATSD_OK);
    ASSERT_STR(l.name, "page.views");
    cr_assert_eq(l.type, STATSD_COUNTER);
    cr_assert_eq(l.nvalues, 1);
    cr_assert_eq(l.values[0], 1);
    cr_assert_eq(l.rate, 1);
    cr_assert_eq(l.ntags, 0);
    cr_assert_eq(parse("x:2.5e1|c"), STATSD_OK);
    cr_assert_eq(l.values[0], 25);
}

Test(statsd_parse, sample_rate)
{
    cr_assert_eq(parse("hits:3|c|@0.1"), STATSD_OK);
    cr_assert_float_eq(l.rate, 0.1, 1e-12);
    cr_assert_eq(parse("t:320|ms|@0.5"), STATSD_OK);
    cr_assert_float_eq(l.rate, 0.5, 1e-12);
    cr_assert_eq(parse("hits:3|c|@1"), STATSD_OK);
    cr_assert_eq(l.rate, 1);
    cr_assert_eq(parse("hits:3|c|@0"), STATSD_ERR_RATE);
    cr_assert_eq(parse("hits:3|c|@1.5"), STATSD_ERR_RATE);
    cr_assert_eq(parse("hits:3|c|@abc"), STATSD_ERR_RATE);
    cr_assert_eq(parse("hits:3|c|@"), STATSD_ERR_RATE);
}

Test(statsd_parse, gauges_and_deltas)
{
    cr_assert_eq(parse("temp:21.5|g"), STATSD_OK);
    cr_assert_eq(l.type, STATSD_GAUGE);
    cr_assert(!l.delta);
    cr_assert_eq(l.values[0], 21.5);
    cr_assert_eq(parse("temp:+3|g"), STATSD_OK);
    cr_assert(l.delta);
    cr_assert_eq(l.values[0], 3);
    cr_assert_eq(parse("temp:-4|g"), STATSD_OK);
    cr_assert(l.delta, "a signed gauge value is a delta (Etsy rule)");
    cr_assert_eq(l.values[0], -4);
    cr_assert_eq(parse("temp:+1:-2|g"), STATSD_OK);
    cr_assert_eq(l.nvalues, 2);
    cr_assert_eq(parse("temp:+1:2|g"), STATSD_ERR_VALUE, "mixed packed gauge values");
}

Test(statsd_parse, timers_histograms_distributions)
{
    cr_assert_eq(parse("req.time:320|ms"), STATSD_OK);
    cr_assert_eq(l.type, STATSD_TIMER);
    cr_assert_eq(l.values[0], 320);
    cr_assert_eq(parse("size:1024|h"), STATSD_OK);
    cr_assert_eq(l.type, STATSD_HISTOGRAM);
    cr_assert_eq(parse("lat:0.25|d"), STATSD_OK);
    cr_assert_eq(l.type, STATSD_DISTRIBUTION);
    cr_assert_eq(parse("lat:1:2:3.5|d"), STATSD_OK, "DogStatsD packed values");
    cr_assert_eq(l.nvalues, 3);
    cr_assert_eq(l.values[2], 3.5);
    cr_assert_eq(parse("t:-5|ms"), STATSD_OK, "a negative timer is a value, not refused");
}

Test(statsd_parse, sets)
{
    cr_assert_eq(parse("users:alice|s"), STATSD_OK);
    cr_assert_eq(l.type, STATSD_SET);
    ASSERT_STR(l.member, "alice");
    cr_assert_eq(parse("users:a:b|s"), STATSD_ERR_VALUE);
    cr_assert_eq(parse("users:|s"), STATSD_ERR_VALUE);
}

Test(statsd_parse, dogstatsd_tags)
{
    cr_assert_eq(parse("api.calls:1|c|#env:prod,region:eu-west,bare,url:http://x/y"), STATSD_OK);
    cr_assert_eq(l.ntags, 3, "the bare tag has no value and is left out");
    ASSERT_STR(l.tags[0].key, "env");
    ASSERT_STR(l.tags[0].value, "prod");
    ASSERT_STR(l.tags[1].key, "region");
    ASSERT_STR(l.tags[1].value, "eu-west");
    ASSERT_STR(l.tags[2].key, "url");
    ASSERT_STR(l.tags[2].value, "http://x/y"); /* a value keeps its colons */
    cr_assert_eq(parse("a:1|c|@0.5|#k:v"), STATSD_OK);
    cr_assert_eq(l.rate, 0.5);
    cr_assert_eq(l.ntags, 1);
    cr_assert_eq(parse("a:1|c|#k:v|@0.25"), STATSD_OK, "sections in any order");
    cr_assert_eq(l.rate, 0.25);
    cr_assert_eq(parse("a:1|c|#k:v,,"), STATSD_OK);
    cr_assert_eq(l.ntags, 1);
    cr_assert_eq(parse("a:1|c|#:v"), STATSD_ERR_TAG);
    cr_assert_eq(parse("a:1|c|#"), STATSD_OK);
    cr_assert_eq(l.ntags, 0);
}

Test(statsd_parse, too_many)
{
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf, "a:1|c|#");
    for (int i = 0; i <= STATSD_MAX_TAGS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "k%d:v,", i);
    cr_assert_eq(parse(buf), STATSD_ERR_TOO_MANY);
    n = (size_t)snprintf(buf, sizeof buf, "a");
    for (int i = 0; i <= STATSD_MAX_VALUES; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, ":1");
    snprintf(buf + n, sizeof buf - n, "|h");
    cr_assert_eq(parse(buf), STATSD_ERR_TOO_MANY);
}

Test(statsd_parse, ignored_dogstatsd_sections)
{
    cr_assert_eq(parse("a:1|c|c:abc123|#k:v|T1700000000|e:it-false,cn-x"), STATSD_OK);
    cr_assert_eq(l.ntags, 1);
    cr_assert_eq(parse("a:1|c|x:1"), STATSD_ERR_SECTION);
    cr_assert_eq(parse("a:1|c|"), STATSD_OK, "an empty section is nothing to read");
    cr_assert_eq(parse("a:1|c|@0.5|@0.5"), STATSD_ERR_SECTION, "a second rate");
}

Test(statsd_parse, garbage)
{
    static const struct { const char *line; enum statsd_error e; } cases[] = {
        { "no separator at all", STATSD_ERR_FORMAT },
        { "name|c", STATSD_ERR_FORMAT },
        { "name:1", STATSD_ERR_FORMAT },
        { "name:1|", STATSD_ERR_FORMAT },
        { ":1|c", STATSD_ERR_NAME },
        { "a:|c", STATSD_ERR_VALUE },
        { "a:abc|c", STATSD_ERR_VALUE },
        { "a:nan|g", STATSD_ERR_VALUE },
        { "a:inf|g", STATSD_ERR_VALUE },
        { "a:0x10|g", STATSD_ERR_VALUE },
        { "a:1e|g", STATSD_ERR_VALUE },
        { "a:.|g", STATSD_ERR_VALUE },
        { "a:1e999|g", STATSD_ERR_VALUE },
        { "a:1 |g", STATSD_ERR_VALUE },
        { "a:1|x", STATSD_ERR_TYPE },
        { "a:1|cc", STATSD_ERR_TYPE },
        { "a:-1|c", STATSD_ERR_NEGATIVE },
        { "_e{5,4}:title|text", STATSD_ERR_UNSUPPORTED },
        { "_sc|my.check|0", STATSD_ERR_UNSUPPORTED },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(parse(cases[i].line), cases[i].e, "%s: expected %s, got %s",
                     cases[i].line, statsd_error_name(cases[i].e),
                     statsd_error_name(statsd_parse_line(cases[i].line,
                                                         strlen(cases[i].line), &l)));
    /* a long number does not overflow the copy buffer */
    char big[200];
    memset(big, '1', sizeof big);
    memcpy(big, "a:", 2);
    memcpy(big + sizeof big - 3, "|g", 2);
    cr_assert_eq(statsd_parse_line(big, sizeof big - 1, &l), STATSD_ERR_VALUE);
}

Test(statsd_parse, names)
{
    cr_assert_str_eq(statsd_error_name(STATSD_ERR_RATE), "bad_sample_rate");
    cr_assert_str_eq(statsd_error_name(STATSD_ERR_COUNT), "unknown");
    cr_assert_str_eq(statsd_type_name(STATSD_TIMER), "ms");
}

Test(statsd_parse, packet_lines)
{
    const char *pkt = "a:1|c\nb:2|g\r\n\n\nc:3|ms\n";
    size_t pos = 0, n = strlen(pkt);
    struct vg_str line;
    cr_assert(statsd_next_line(pkt, n, &pos, &line));
    ASSERT_STR(line, "a:1|c");
    cr_assert(statsd_next_line(pkt, n, &pos, &line));
    ASSERT_STR(line, "b:2|g");
    cr_assert(statsd_next_line(pkt, n, &pos, &line));
    ASSERT_STR(line, "c:3|ms");
    cr_assert(!statsd_next_line(pkt, n, &pos, &line));
    pos = 0;
    cr_assert(statsd_next_line("x:1|c", 5, &pos, &line), "no trailing newline");
    ASSERT_STR(line, "x:1|c");
    pos = 0;
    cr_assert(!statsd_next_line("\n\r\n", 3, &pos, &line));
}
