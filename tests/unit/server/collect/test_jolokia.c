/* Tests of server/collect/jolokia.c without a JVM: the `jmx` config block (errors name
 * file:line), the bulk request built from it, the response decoder (Jolokia 1.7's shapes
 * as a real agent sends them, errors, bounds) and the naming scheme. Polling a real JVM
 * is tests/integration/jmx_from_jolokia.sh. */
#include "../../../../server/collect/jolokia.h"
#include "../../../../server/config.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct config *load(const char *yaml)
{
    struct vg_err err = { 0 };
    struct config *c = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(c, "config loads: %s", err.msg);
    return c;
}

static int parse(const char *yaml, struct jolokia_config **out, struct vg_err *err)
{
    struct config *c = load(yaml);
    int rc = jolokia_config_parse(config_block(c, "jmx"), out, err);
    config_free(c);
    return rc;
}

#define TGT "jmx:\n  targets:\n    - name: app\n      url: http://127.0.0.1:8778/jolokia\n"

Test(jolokia_config, target_and_request)
{
    const char *y = TGT
        "      interval: 15s\n"
        "      timeout: 3s\n"
        "      username: mon\n"
        "      password: pw\n"
        "      mbeans:\n"
        "        - {mbean: 'java.lang:type=Memory', attributes: [HeapMemoryUsage]}\n"
        "        - mbean: 'java.lang:type=GarbageCollector,name=*'\n"
        "          attributes: [CollectionCount, CollectionTime]\n"
        "        - {mbean: 'java.lang:type=Threading'}\n"
        "        - {mbean: 'java.lang:type=Memory', attributes: NonHeapMemoryUsage, path: used}\n";
    struct jolokia_config *c;
    struct vg_err err = { 0 };
    cr_assert_eq(parse(y, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c->ntargets, 1);
    struct jolokia_target *t = &c->targets[0];
    cr_assert_str_eq(t->name, "app");
    cr_assert_eq(t->interval_ms, 15000);
    cr_assert_eq(t->timeout_ms, 3000);
    cr_assert_str_eq(t->username, "mon");
    cr_assert_eq(t->nmbeans, 4);
    cr_assert_str_eq(t->request,
                     "[{\"type\":\"read\",\"mbean\":\"java.lang:type=Memory\",\"attribute\":"
                     "[\"HeapMemoryUsage\"]},{\"type\":\"read\",\"mbean\":\"java.lang:type="
                     "GarbageCollector,name=*\",\"attribute\":[\"CollectionCount\","
                     "\"CollectionTime\"]},{\"type\":\"read\",\"mbean\":\"java.lang:type="
                     "Threading\"},{\"type\":\"read\",\"mbean\":\"java.lang:type=Memory\","
                     "\"attribute\":\"NonHeapMemoryUsage\",\"path\":\"used\"}]");
    jolokia_config_free(c);

    cr_assert_eq(parse("server: {}\n", &c, &err), 0);
    cr_assert_eq(c->ntargets, 0);
    jolokia_config_free(c);
}

Test(jolokia_config, errors_name_file_and_line)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        { "jmx:\n  target: []\n", "t.yml:2: jmx: unknown key \"target\"" },
        { "jmx:\n  targets: x\n", "t.yml:2: jmx.targets: expected a list" },
        { "jmx:\n  targets:\n    - url: http://h/jolokia\n      mbeans: [{mbean: 'a:b=c'}]\n",
          "t.yml:3: jmx.targets[0]: name is required" },
        { "jmx:\n  targets:\n    - name: a\n      url: ftp://h/\n      mbeans: [{mbean: 'a:b=c'}]\n",
          "t.yml:4: jmx.targets[0].url: expected an http:// or https:// URL" },
        { TGT "      mbeans: []\n", "t.yml:5: jmx.targets[0].mbeans: expected a non-empty list" },
        { TGT, "t.yml:3: jmx.targets[0].mbeans: expected a non-empty list" },
        { TGT "      mbeans: [{mbean: Memory}]\n",
          "t.yml:5: jmx.targets[0].mbeans[0].mbean: expected an MBean name" },
        { TGT "      mbeans: [{mbean: 'a:b=c', attribute: [x]}]\n",
          "t.yml:5: jmx.targets[0].mbeans[0]: unknown key \"attribute\"" },
        { TGT "      mbeans: [{mbean: 'a:b=c', attributes: [x, y], path: p}]\n",
          "t.yml:5: jmx.targets[0].mbeans[0].path: needs exactly one attribute" },
        { TGT "      mbeans: [{mbean: 'a:b=*', attributes: [x], path: p}]\n",
          "t.yml:5: jmx.targets[0].mbeans[0].path: only for a single MBean" },
        { TGT "      interval: 10\n      mbeans: [{mbean: 'a:b=c'}]\n", "t.yml:5:" },
        { TGT "      password: x\n      mbeans: [{mbean: 'a:b=c'}]\n",
          "t.yml:5: jmx.targets[0].password: set username too" },
        { TGT "      mbeans: [{mbean: 'a:b=c'}]\n    - name: app\n      url: http://h/\n"
              "      mbeans: [{mbean: 'a:b=c'}]\n",
          "t.yml:6: jmx.targets[1].name: \"app\" is used by jmx.targets[0] too" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct jolokia_config *c = (void *)1;
        struct vg_err err = { 0 };
        cr_assert_eq(parse(cases[i].yaml, &c, &err), VG_EINVAL, "case %zu fails", i);
        cr_assert_null(c);
        cr_assert(strstr(err.msg, cases[i].want), "case %zu: want [%s] in [%s]", i,
                  cases[i].want, err.msg);
    }
}

Test(jolokia_config, allocation_failure_leaks_nothing)
{
    struct config *cfg = load(TGT "      username: u\n      mbeans:\n"
                                  "        - {mbean: 'a:b=c', attributes: [x, y]}\n"
                                  "        - {mbean: 'a:b=d', attributes: [x], path: p}\n");
    size_t live = vg_alloc_live_bytes();
    bool failed = false, ok = false;
    for (uint64_t n = 1; n < 200 && !ok; n++) {
        struct jolokia_config *c;
        struct vg_err err = { 0 };
        vg_alloc_fail_after(n);
        int rc = jolokia_config_parse(config_block(cfg, "jmx"), &c, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            ok = true;
            jolokia_config_free(c);
        } else {
            cr_assert_eq(rc, VG_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
            failed = true;
        }
        cr_assert_eq(vg_alloc_live_bytes(), live, "n=%llu leaks", (unsigned long long)n);
    }
    cr_assert(failed && ok);
    config_free(cfg);
}

/* Collects "name{k=v,...} value" lines, labels in the order given. */
struct got {
    char lines[64][256];
    size_t n;
    size_t stop_after; /* 0 = never */
};

static int collect(void *ud, const char *name, const struct label *ls, size_t nl, double v)
{
    struct got *g = ud;
    if (g->n < 64) {
        char *o = g->lines[g->n++];
        int w = snprintf(o, 256, "%s{", name);
        for (size_t i = 0; i < nl; i++)
            w += snprintf(o + w, 256 - (size_t)w, "%s%.*s=%.*s", i ? "," : "",
                          (int)ls[i].name.len, ls[i].name.p, (int)ls[i].value.len, ls[i].value.p);
        snprintf(o + w, 256 - (size_t)w, "} %g", v);
    }
    return g->stop_after && g->n >= g->stop_after;
}

static bool has(const struct got *g, const char *line)
{
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->lines[i], line))
            return true;
    return false;
}

/* What Jolokia 1.7.1 answered to the integration test's request (abridged). */
static const char real_response[] =
    "[{\"request\":{\"mbean\":\"java.lang:type=Memory\",\"attribute\":\"HeapMemoryUsage\","
    "\"type\":\"read\"},\"value\":{\"HeapMemoryUsage\":{\"init\":67108864,\"committed\":"
    "57671680,\"max\":67108864,\"used\":6497856}},\"timestamp\":1795656406,\"status\":200},"
    "{\"request\":{\"mbean\":\"java.lang:name=*,type=GarbageCollector\",\"attribute\":"
    "[\"CollectionCount\",\"CollectionTime\"],\"type\":\"read\"},\"value\":{\"java.lang:name=G1 "
    "Young Generation,type=GarbageCollector\":{\"CollectionTime\":182,\"CollectionCount\":56},"
    "\"java.lang:name=G1 Old Generation,type=GarbageCollector\":{\"CollectionTime\":47,"
    "\"CollectionCount\":1}},\"timestamp\":1795656406,\"status\":200},"
    "{\"request\":{\"mbean\":\"vigil.test:name=fixed,type=Demo\",\"type\":\"read\"},\"value\":"
    "{\"Usage\":{\"max\":4096,\"used\":1024},\"Label\":\"text\",\"Enabled\":true,\"Ratio\":0.5,"
    "\"Count\":42,\"Nothing\":null,\"List\":[1,2]},\"timestamp\":1795656406,\"status\":200},"
    "{\"request\":{\"path\":\"used\",\"mbean\":\"java.lang:type=Memory\",\"attribute\":"
    "\"NonHeapMemoryUsage\",\"type\":\"read\"},\"value\":9231544,\"status\":200},"
    "{\"request\":{\"mbean\":\"nope:type=X\",\"attribute\":\"A\",\"type\":\"read\"},"
    "\"error_type\":\"javax.management.InstanceNotFoundException\",\"error\":"
    "\"javax.management.InstanceNotFoundException : nope:type=X\",\"status\":404}]";

Test(jolokia_decode, real_agent_response)
{
    struct got g = { .n = 0 };
    struct jolokia_stats st;
    struct vg_err err = { 0 };
    cr_assert_eq(jolokia_decode(real_response, strlen(real_response), collect, &g, &st, &err),
                 0, "%s", err.msg);
    cr_assert_eq(st.entries, 5);
    cr_assert_eq(st.errors, 1);
    cr_assert(strstr(st.first_error, "nope:type=X: javax.management.InstanceNotFound"), "%s",
              st.first_error);
    cr_assert(strstr(st.first_error, "(status 404)"));
    cr_assert_eq(st.skipped, 3, "Label, Nothing and List are not numbers");
    cr_assert_eq(st.samples, g.n);
    cr_assert_eq(g.n, 14);
    cr_assert(has(&g, "java_lang_Memory_HeapMemoryUsage_used{} 6.49786e+06"));
    cr_assert(has(&g, "java_lang_Memory_HeapMemoryUsage_max{} 6.71089e+07"));
    cr_assert(has(&g, "java_lang_GarbageCollector_CollectionCount{name=G1 Young Generation} 56"));
    cr_assert(has(&g, "java_lang_GarbageCollector_CollectionTime{name=G1 Old Generation} 47"));
    cr_assert(has(&g, "vigil_test_Demo_Usage_used{name=fixed} 1024"));
    cr_assert(has(&g, "vigil_test_Demo_Enabled{name=fixed} 1"));
    cr_assert(has(&g, "vigil_test_Demo_Ratio{name=fixed} 0.5"));
    cr_assert(has(&g, "vigil_test_Demo_Count{name=fixed} 42"));
    cr_assert(has(&g, "java_lang_Memory_NonHeapMemoryUsage_used{} 9.23154e+06"));
}

Test(jolokia_decode, names_and_labels)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        /* quoted value with ',' and '=' inside, no type key, odd characters */
        { "[{\"request\":{\"mbean\":\"com.acme:name=\\\"a,b=c\\\",kind=x-y\"},\"status\":200,"
          "\"value\":{\"Hit Rate\":2}}]",
          "com_acme_Hit_Rate{name=a,b=c,kind=x-y} 2" },
        /* label names sanitised, leading digit, a "target" key dropped */
        { "[{\"request\":{\"mbean\":\"d:type=T,9k=v,my-key=w,target=t\"},\"status\":200,"
          "\"value\":{\"a\":false}}]",
          "d_T_a{_9k=v,my_key=w} 0" },
        /* pattern with a one-attribute string request and a bare value */
        { "[{\"request\":{\"mbean\":\"d:type=T,name=*\",\"attribute\":\"A\"},\"status\":200,"
          "\"value\":{\"d:name=x,type=T\":{\"A\":3}}}]",
          "d_T_A{name=x} 3" },
        { "[{\"request\":{\"mbean\":\"d:type=T,name=*\",\"attribute\":\"A\"},\"status\":200,"
          "\"value\":{\"d:name=x,type=T\":5}}]",
          "d_T_A{name=x} 5" },
        /* a path with an escaped slash and two levels */
        { "[{\"request\":{\"mbean\":\"d:type=T\",\"attribute\":\"A\",\"path\":\"x/y\\\\/z\"},"
          "\"status\":200,\"value\":7}]",
          "d_T_A_x_y_z{} 7" },
        /* a whole refused request answers with an object, not an array */
        { "{\"error\":\"forbidden\",\"status\":403}", NULL },
        /* deep composites stop at 4 levels */
        { "[{\"request\":{\"mbean\":\"d:type=T\"},\"status\":200,\"value\":{\"a\":{\"b\":{\"c\":"
          "{\"d\":{\"e\":{\"f\":1}}},\"c2\":2}}}}]",
          "d_T_a_b_c2{} 2" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct got g = { .n = 0 };
        struct jolokia_stats st;
        struct vg_err err = { 0 };
        cr_assert_eq(jolokia_decode(cases[i].body, strlen(cases[i].body), collect, &g, &st,
                                    &err), 0, "case %zu: %s", i, err.msg);
        if (!cases[i].want) {
            cr_assert_eq(g.n, 0);
            cr_assert_eq(st.errors, 1);
            cr_assert(strstr(st.first_error, "forbidden (status 403)"), "%s", st.first_error);
            continue;
        }
        cr_assert_eq(g.n, 1, "case %zu: %zu samples (%s)", i, g.n, g.n ? g.lines[0] : "");
        cr_assert_str_eq(g.lines[0], cases[i].want, "case %zu", i);
    }
}

Test(jolokia_decode, malformed_and_stopping)
{
    static const char *const bad[] = { "", "not json", "[1]", "\"x\"", "[{\"status\":200}]x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct got g = { .n = 0 };
        struct jolokia_stats st;
        struct vg_err err = { 0 };
        cr_assert_eq(jolokia_decode(bad[i], strlen(bad[i]), collect, &g, &st, &err), VG_EINVAL,
                     "[%s] refused", bad[i]);
        cr_assert(err.msg[0]);
    }
    /* entries without a status or an mbean are errors, not crashes */
    const char *odd = "[{},{\"status\":200},{\"request\":{\"mbean\":\"no-colon\"},\"status\":200,"
                      "\"value\":{\"a\":1}},{\"request\":{\"mbean\":\"d:type=*\"},\"status\":200,"
                      "\"value\":3}]";
    struct got g = { .n = 0 };
    struct jolokia_stats st;
    struct vg_err err = { 0 };
    cr_assert_eq(jolokia_decode(odd, strlen(odd), collect, &g, &st, &err), 0);
    cr_assert_eq(st.errors, 2);
    cr_assert_eq(g.n, 0);
    cr_assert_eq(st.skipped, 2);
    /* the callback stops the decoding */
    struct got h = { .n = 0, .stop_after = 3 };
    cr_assert_eq(jolokia_decode(real_response, strlen(real_response), collect, &h, &st, &err), 0);
    cr_assert_eq(h.n, 3);
}

Test(jolokia_sanitize, rules)
{
    char out[16];
    cr_assert_eq(jolokia_sanitize("java.lang", 9, false, out, sizeof out), 9);
    cr_assert_str_eq(out, "java_lang");
    jolokia_sanitize("a..b::c", 7, false, out, sizeof out);
    cr_assert_str_eq(out, "a_b::c");
    jolokia_sanitize("a:b", 3, true, out, sizeof out);
    cr_assert_str_eq(out, "a_b");
    jolokia_sanitize("1x", 2, true, out, sizeof out);
    cr_assert_str_eq(out, "_1x");
    jolokia_sanitize("G1 Young\xc3\xa9", 10, false, out, sizeof out);
    cr_assert_str_eq(out, "G1_Young_");
    cr_assert_eq(jolokia_sanitize("0123456789abcdefgh", 18, false, out, sizeof out), 0);
    cr_assert_str_eq(out, "");
}
