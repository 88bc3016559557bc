/* Tests server/ingest/logproc.c: every processor step on single records (labels and
 * fields added, renamed, dropped; min_level and drop_levels over metadata and labels;
 * keep/drop on the line and on a field; redaction of the line, of every field and of
 * chosen fields, with the default and a custom replacement and empty matches; the
 * token-bucket rate limit per source and its drop counts in /metrics), the global
 * chain run by ingest_store_logs on a Loki-style push into a real log store, config
 * errors with file:line, and allocation failure. */
#include "log_fixture.h"

#include "../../../../server/config_node.h"
#include "../../../../server/ingest/logproc.h"

TestSuite(logproc, .init = logfx_setup, .fini = logfx_teardown, .timeout = 60);

static struct config *pcfg;   /* the config a chain was compiled from */
static struct logproc *chain;

/* Compiles the `log_processors` block of yaml; the chain counts into fx's metrics. */
static int compile(const char *yaml)
{
    config_free(pcfg);
    logproc_free(chain);
    chain = NULL;
    pcfg = config_load_buf("p.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(pcfg, "%s", err.msg);
    return logproc_new(config_block(pcfg, "log_processors"), "log_processors", fx.v.metrics,
                       &chain, &err);
}

static void compile_ok(const char *yaml)
{
    cr_assert_eq(compile(yaml), 0, "%s", err.msg);
    cr_assert_not_null(chain);
}

static void done(void)
{
    logproc_free(chain);
    chain = NULL;
    config_free(pcfg);
    pcfg = NULL;
}

/* A record with labels "a=1,b=2"-style text and metadata the same way. */
static struct logproc_record rec(const char *line, const char *labels, const char *meta)
{
    struct logproc_record r = { .t = 1, .line = vg_str_c(line) };
    struct label *ls = vg_arena_alloc(arena, 16 * sizeof *ls);
    struct label *ms = vg_arena_alloc(arena, 16 * sizeof *ms);
    const char *src[2] = { labels, meta };
    struct label *dst[2] = { ls, ms };
    size_t cnt[2] = { 0, 0 };
    for (int k = 0; k < 2; k++) {
        char *s = vg_arena_strndup(arena, src[k], strlen(src[k]));
        for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            cr_assert_not_null(eq);
            *eq = 0;
            dst[k][cnt[k]++] = (struct label){ vg_str_c(tok), vg_str_c(eq + 1) };
        }
    }
    labels_sort(ls, cnt[0]);
    r.labels = ls;
    r.nlabels = cnt[0];
    r.meta = ms;
    r.nmeta = cnt[1];
    return r;
}

/* "labels|meta|line" of a record, labels sorted, metadata in order. */
static const char *show(const struct logproc_record *r)
{
    static char out[2048];
    size_t n = 0;
    for (size_t i = 0; i < r->nlabels; i++)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%.*s=%.*s", i ? "," : "",
                              (int)r->labels[i].name.len, r->labels[i].name.p,
                              (int)r->labels[i].value.len, r->labels[i].value.p);
    n += (size_t)snprintf(out + n, sizeof out - n, "|");
    for (size_t i = 0; i < r->nmeta; i++)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%.*s=%.*s", i ? "," : "",
                              (int)r->meta[i].name.len, r->meta[i].name.p,
                              (int)r->meta[i].value.len, r->meta[i].value.p);
    snprintf(out + n, sizeof out - n, "|%.*s", (int)r->line.len, r->line.p);
    return out;
}

/* Runs the chain; returns 1 kept / 0 dropped and leaves the result in *r. */
static int run(struct logproc_record *r)
{
    return logproc_run(chain, "test", r, 1000000000LL, arena);
}

Test(logproc, no_block_means_no_chain)
{
    cr_assert_eq(compile("server:\n  log_level: info\n"), 0);
    cr_assert_null(chain);
    cr_assert_eq(compile("log_processors: []\n"), 0);
    cr_assert_null(chain);
    done();
}

Test(logproc, labels_added_renamed_dropped_and_sorted)
{
    compile_ok("log_processors:\n"
               "  - add_labels: {env: prod, job: overwritten}\n"
               "  - rename_labels: {app: service, host: env}\n"
               "  - drop_labels: [pod]\n");
    struct logproc_record r = rec("x", "app=web,host=h1,job=a,pod=p-1", "");
    const struct label *before = r.labels;
    cr_assert_eq(run(&r), 1);
    /* host renamed onto env replaces the env added before */
    cr_assert_str_eq(show(&r), "env=h1,job=overwritten,service=web||x");
    cr_assert_str_eq(before[0].name.p, "app", "the caller's labels are untouched");
    done();
}

Test(logproc, fields_added_renamed_dropped)
{
    compile_ok("log_processors:\n"
               "  - add_fields: {team: core}\n"
               "  - rename_fields: {msg: message}\n"
               "  - drop_fields: [password, missing]\n");
    struct logproc_record r = rec("x", "job=a", "msg=hi,password=secret,team=old");
    cr_assert_eq(run(&r), 1);
    cr_assert_str_eq(show(&r), "job=a|message=hi,team=core|x");
    done();
}

Test(logproc, min_level_reads_metadata_then_labels)
{
    compile_ok("log_processors:\n  - min_level: warn\n");
    struct logproc_record r = rec("x", "job=a", "level=DEBUG");
    cr_assert_eq(run(&r), 0);
    r = rec("x", "job=a", "level=Error");
    cr_assert_eq(run(&r), 1);
    r = rec("x", "job=a,level=info", "");
    cr_assert_eq(run(&r), 0, "the level label counts when no field has one");
    r = rec("x", "job=a", "detected_level=warning");
    cr_assert_eq(run(&r), 1);
    r = rec("x", "job=a", "level=chatty");
    cr_assert_eq(run(&r), 1, "an unknown level is kept");
    r = rec("x", "job=a", "");
    cr_assert_eq(run(&r), 1, "no level is kept");
    cr_assert(logfx_counted(&fx, "vigil_logproc_dropped_total{source=\"test\",reason=\"level\"} 2"));
    done();
}

Test(logproc, drop_levels)
{
    compile_ok("log_processors:\n  - drop_levels: [debug, trace]\n");
    struct logproc_record r = rec("x", "job=a", "severity=dbg");
    cr_assert_eq(run(&r), 0);
    r = rec("x", "job=a", "severity=TRACE");
    cr_assert_eq(run(&r), 0);
    r = rec("x", "job=a", "severity=notice");
    cr_assert_eq(run(&r), 1);
    cr_assert_eq(logproc_level_rank(VG_STR("emerg")), 5);
    cr_assert_eq(logproc_level_rank(VG_STR("")), -1);
    done();
}

Test(logproc, keep_and_drop_by_regex_on_line_and_field)
{
    compile_ok("log_processors:\n"
               "  - keep: {regex: 'GET|POST'}\n"
               "  - drop: {field: path, regex: '^/health'}\n"
               "  - drop: {field: job, regex: '^noisy$'}\n");
    struct logproc_record r = rec("GET /healthz", "job=a", "path=/healthz");
    cr_assert_eq(run(&r), 0);
    r = rec("GET /api", "job=a", "path=/api");
    cr_assert_eq(run(&r), 1);
    r = rec("DELETE /api", "job=a", "path=/api");
    cr_assert_eq(run(&r), 0, "keep drops what does not match");
    r = rec("POST /x", "job=noisy", "");
    cr_assert_eq(run(&r), 0, "a field that is not metadata is looked up among the labels");
    r = rec("POST /x", "job=a", "");
    cr_assert_eq(run(&r), 1, "a missing field is the empty string");
    cr_assert(logfx_counted(&fx, "vigil_logproc_dropped_total{source=\"test\",reason=\"filter\"} 3"));
    done();
}

Test(logproc, redact_line_and_all_fields_by_default)
{
    compile_ok("log_processors:\n"
               "  - redact: {regex: '[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}'}\n"
               "  - redact: {regex: '\\b(?:\\d[ -]?){13,16}\\b', replacement: '[card]'}\n");
    struct logproc_record r = rec("mail a.b@example.com and c@d.org, card 4111 1111 1111 1111.",
                                  "job=a@b.cd", "user=x@y.io,n=1");
    cr_assert_eq(run(&r), 1);
    cr_assert_str_eq(show(&r), "job=a@b.cd|user=<redacted>,n=1|mail <redacted> and "
                               "<redacted>, card [card].");
    done();
}

Test(logproc, redact_chosen_fields_only)
{
    compile_ok("log_processors:\n"
               "  - redact: {regex: 'secret', fields: [token], replacement: '***'}\n"
               "  - redact: {regex: 'x*', fields: [other], line: true}\n");
    struct logproc_record r = rec("secret line", "job=a", "token=my-secret-secret,other=abc");
    cr_assert_eq(run(&r), 1);
    /* the empty matches of x* replace nothing */
    cr_assert_str_eq(show(&r), "job=a|token=my-***-***,other=abc|secret line");
    done();
}

Test(logproc, rate_limit_per_source_with_burst)
{
    compile_ok("log_processors:\n  - rate_limit: {lines_per_second: 2, burst: 5}\n");
    int kept = 0;
    for (int i = 0; i < 20; i++) {
        struct logproc_record r = rec("x", "job=a", "");
        kept += logproc_run(chain, "a", &r, 1000000000LL, arena);
    }
    cr_assert_eq(kept, 5, "the burst, then nothing at the same instant");
    struct logproc_record r = rec("x", "job=a", "");
    cr_assert_eq(logproc_run(chain, "b", &r, 1000000000LL, arena), 1, "b has its own bucket");
    kept = 0;
    for (int i = 0; i < 5; i++) {
        r = rec("x", "job=a", "");
        kept += logproc_run(chain, "a", &r, 2000000000LL, arena);
    }
    cr_assert_eq(kept, 2, "one second later: two more tokens");
    cr_assert(logfx_counted(&fx, "vigil_logproc_dropped_total{source=\"a\",reason=\"rate_limit\"} 18"));
    done();
}

Test(logproc, global_chain_runs_in_ingest_store_logs)
{
    const char *yaml = "log_processors:\n"
                       "  - add_labels: {env: prod}\n"
                       "  - drop: {regex: 'healthz'}\n"
                       "  - redact: {regex: 'pw=\\S+', replacement: 'pw=?'}\n";
    config_free(fx.cfg);
    fx.cfg = config_load_buf("g.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(fx.cfg, "%s", err.msg);
    fx.v.cfg = fx.cfg;
    ingest_metrics_free(&fx.v);
    cr_assert_eq(ingest_metrics_init(&fx.v, &err), 0, "%s", err.msg);

    struct label ls[] = { { VG_STR("job"), VG_STR("app") } };
    struct lentry es[] = { { .t = now, .line = VG_STR("GET /healthz") },
                           { .t = now + 1, .line = VG_STR("login pw=hunter2 ok") } };
    struct label ls2[] = { { VG_STR("job"), VG_STR("probe") } };
    struct lentry es2[] = { { .t = now, .line = VG_STR("healthz only") } };
    struct logstore_stream_in in[] = { { ls, 1, es, 2 }, { ls2, 1, es2, 1 } };
    struct logstore_push_result res;
    cr_assert_eq(ingest_store_logs(&fx.v, "loki_push", in, 2, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.accepted, 1);
    logfx_expect("env=prod,job=app %" PRId64 " login pw=? ok|\n", now + 1);
    cr_assert(logfx_counted(&fx, "vigil_logproc_dropped_total{source=\"loki_push\",reason=\"filter\"} 2"));
    cr_assert_str_eq(es[1].line.p, "login pw=hunter2 ok", "the caller's entries are untouched");
}

Test(logproc, config_errors_name_file_and_line)
{
    static const struct { const char *yaml, *want; } cases[] = {
        { "log_processors:\n  - add_labels: {env: prod}\n  - frobnicate: [x]\n",
          "p.yml:3: log_processors[1]: unknown processor \"frobnicate\"" },
        { "log_processors:\n  - keep: {regex: 'a('}\n",
          "p.yml:2: log_processors[0].keep.regex: invalid regex" },
        { "log_processors:\n  - keep: {field: x}\n",
          "p.yml:2: log_processors[0].keep: regex is required" },
        { "log_processors:\n  - drop: {regex: a, line: true}\n",
          "p.yml:2: log_processors[0].drop: unknown key \"line\"" },
        { "log_processors:\n  - add_labels: {0bad: x}\n",
          "p.yml:2: log_processors[0].add_labels: \"0bad\" is not a valid label name" },
        { "log_processors:\n  - add_fields: {a: ''}\n",
          "p.yml:2: log_processors[0].add_fields.a: empty value" },
        { "log_processors:\n\n  - min_level: loud\n",
          "p.yml:3: log_processors[0].min_level: unknown level \"loud\"" },
        { "log_processors:\n  - rate_limit: {burst: 3}\n",
          "p.yml:2: log_processors[0].rate_limit: lines_per_second is required" },
        { "log_processors:\n  - rate_limit: {lines_per_second: 0}\n",
          "p.yml:2: log_processors[0].rate_limit.lines_per_second: 0 is out of range" },
        { "log_processors:\n  - {keep: {regex: a}, drop: {regex: b}}\n",
          "p.yml:2: log_processors[0]: expected a mapping with one processor" },
        { "log_processors:\n  add_labels: {a: b}\n",
          "p.yml:2: log_processors: expected a list of processors" },
        { "log_processors:\n  - drop_labels: {a: b}\n",
          "p.yml:2: log_processors[0].drop_labels: expected a list of names" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        vg_err_clear(&err);
        cr_assert_eq(compile(cases[i].yaml), VG_EINVAL, "case %zu compiled", i);
        cr_assert_null(chain);
        cr_assert(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
    }
    done();
}

Test(logproc, allocation_failure_is_reported)
{
    const char *yaml = "log_processors:\n  - add_labels: {env: prod}\n"
                       "  - redact: {regex: 'a'}\n";
    for (uint64_t n = 1; n < 40; n++) {
        config_free(pcfg);
        pcfg = config_load_buf("p.yml", yaml, strlen(yaml), &err);
        vg_alloc_fail_after(n);
        int rc = logproc_new(config_block(pcfg, "log_processors"), "log_processors", NULL,
                             &chain, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "n=%" PRIu64 ": %d", n, rc);
        if (rc == 0) {
            struct vg_arena *small = vg_arena_new(64);
            vg_arena_set_limit(small, 64);
            struct logproc_record r = rec("aaaa", "job=a", "k=a");
            int got = logproc_run(chain, "x", &r, 0, small);
            cr_assert(got == 1 || got == VG_ENOMEM);
            vg_arena_free(small);
            logproc_free(chain);
            chain = NULL;
            break;
        }
        cr_assert_null(chain);
    }
    done();
}
