/* Tests server/scrape/scrape_append.c with a fake sink that records every batch: label
 * merging (honor_labels and exported_ prefixes), metric relabelling, timestamps, limits,
 * staleness markers for vanished series and failed scrapes, the report series,
 * metadata, and the memory a scrape holds per body byte. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../server/scrape/scrape_append.h"
#include "../../../../storage/base/vg_alloc.h"

/* One recorded sample: its labels as text "{a="1",b="2"}" and its value. */
struct rec {
    char labels[512];
    int64_t t;
    double v;
    bool exemplar;
};

struct sink {
    struct rec r[512];
    size_t n;
    size_t nmeta;
    char meta0[128];
};

static int fake_sink(void *ctx, const struct tsdb_batch *b, struct tsdb_append_result *res,
                     struct vg_err *err)
{
    (void)res, (void)err;
    struct sink *s = ctx;
    for (size_t i = 0; i < b->nseries && s->n < 512; i++) {
        struct rec *r = &s->r[s->n++];
        size_t len = 0;
        r->labels[0] = '\0';
        for (size_t k = 0; k < b->series[i].nlabels; k++) {
            const struct label *l = &b->series[i].labels[k];
            len += (size_t)snprintf(r->labels + len, sizeof r->labels - len, "%s%.*s=\"%.*s\"",
                                    k ? "," : "", (int)l->name.len, l->name.p,
                                    (int)l->value.len, l->value.p);
        }
        r->t = b->series[i].samples[0].t;
        r->v = b->series[i].samples[0].v;
        r->exemplar = b->series[i].nexemplars == 1;
    }
    s->nmeta += b->nmeta;
    if (b->nmeta)
        snprintf(s->meta0, sizeof s->meta0, "%.*s %s %.*s", (int)b->meta[0].metric.len,
                 b->meta[0].metric.p, tsdb_metric_type_name(b->meta[0].type),
                 (int)b->meta[0].help.len, b->meta[0].help.p);
    return 0;
}

static const struct rec *find(const struct sink *s, const char *labels)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->r[i].labels, labels))
            return &s->r[i];
    return NULL;
}

static bool is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == TSDB_STALE_NAN_BITS;
}

static struct label target[] = {
    { VG_STR("instance"), VG_STR("h:1") },
    { VG_STR("job"), VG_STR("j") },
};

static void input(struct scrape_input *in)
{
    memset(in, 0, sizeof *in);
    in->target = target;
    in->ntarget = 2;
    in->honor_timestamps = true;
}

static void scrape(const struct scrape_input *in, const char *body, bool om, int64_t ts,
                   struct scrape_cache *c, struct sink *s, struct scrape_report *rep)
{
    memset(s, 0, sizeof *s);
    memset(rep, 0, sizeof *rep);
    rep->duration_s = 0.25;
    struct vg_err err;
    int rc = scrape_append(in, body, body ? strlen(body) : 0, om, ts, c, fake_sink, s, rep,
                           &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
}

Test(scrape_append, samples_get_target_labels_and_report_series)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\"} 5\n"
                "b 2 1000\n", false, 5000, &c, &s, &rep);
    cr_assert(rep.up);
    cr_assert_eq(rep.scraped, 2);
    cr_assert_eq(rep.post_relabel, 2);
    cr_assert_eq(rep.added, 2);
    const struct rec *r = find(&s, "__name__=\"a_total\",instance=\"h:1\",job=\"j\",x=\"1\"");
    cr_assert_not_null(r);
    cr_assert_eq(r->v, 5);
    cr_assert_eq(r->t, 5000);
    r = find(&s, "__name__=\"b\",instance=\"h:1\",job=\"j\"");
    cr_assert_not_null(r);
    cr_assert_eq(r->t, 1000, "honor_timestamps keeps the scraped time");
    r = find(&s, "__name__=\"up\",instance=\"h:1\",job=\"j\"");
    cr_assert(r && r->v == 1 && r->t == 5000);
    r = find(&s, "__name__=\"scrape_duration_seconds\",instance=\"h:1\",job=\"j\"");
    cr_assert(r && r->v == 0.25);
    r = find(&s, "__name__=\"scrape_samples_scraped\",instance=\"h:1\",job=\"j\"");
    cr_assert(r && r->v == 2);
    r = find(&s, "__name__=\"scrape_samples_post_metric_relabeling\",instance=\"h:1\","
                 "job=\"j\"");
    cr_assert(r && r->v == 2);
    r = find(&s, "__name__=\"scrape_series_added\",instance=\"h:1\",job=\"j\"");
    cr_assert(r && r->v == 2);
    cr_assert_eq(s.n, 7);
    cr_assert_eq(s.nmeta, 1);
    cr_assert_str_eq(s.meta0, "a_total counter Things.");
    cr_assert_eq(c.nmeta, 1);
    cr_assert_str_eq(c.meta[0].type, "counter");
    /* same metadata again: not rewritten; the same series: none added */
    scrape(&in, "# HELP a_total Things.\n# TYPE a_total counter\na_total{x=\"1\"} 6\n"
                "b 2 1000\n", false, 20000, &c, &s, &rep);
    cr_assert_eq(s.nmeta, 0);
    cr_assert_eq(rep.added, 0);
    scrape_cache_free(&c);
}

Test(scrape_append, vanished_series_get_staleness_markers)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "a 1\nb 2\n", false, 1000, &c, &s, &rep);
    scrape(&in, "a 1\nc 3\n", false, 2000, &c, &s, &rep);
    cr_assert_eq(rep.stale, 1);
    cr_assert_eq(rep.added, 1);
    const struct rec *r = find(&s, "__name__=\"b\",instance=\"h:1\",job=\"j\"");
    cr_assert_not_null(r);
    cr_assert(is_stale(r->v));
    cr_assert_eq(r->t, 2000);
    /* a failed scrape marks everything stale and reports up 0 */
    scrape(&in, NULL, false, 3000, &c, &s, &rep);
    cr_assert_not(rep.up);
    cr_assert_eq(rep.stale, 2);
    r = find(&s, "__name__=\"up\",instance=\"h:1\",job=\"j\"");
    cr_assert(r && r->v == 0);
    cr_assert(is_stale(find(&s, "__name__=\"a\",instance=\"h:1\",job=\"j\"")->v));
    cr_assert(is_stale(find(&s, "__name__=\"c\",instance=\"h:1\",job=\"j\"")->v));
    /* and nothing is stale twice */
    scrape(&in, NULL, false, 4000, &c, &s, &rep);
    cr_assert_eq(rep.stale, 0);
    scrape_cache_free(&c);
}

Test(scrape_append, target_gone_marks_series_and_report_stale)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "a 1\n", false, 1000, &c, &s, &rep);
    memset(&s, 0, sizeof s);
    struct vg_err err;
    cr_assert_eq(scrape_append_gone(&in, 9000, &c, fake_sink, &s, &err), 0);
    cr_assert_eq(s.n, 6);
    for (size_t i = 0; i < s.n; i++) {
        cr_assert(is_stale(s.r[i].v));
        cr_assert_eq(s.r[i].t, 9000);
    }
    cr_assert_eq(c.n, 0);
}

Test(scrape_append, parse_errors_fail_the_whole_scrape)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "a 1\n", false, 1000, &c, &s, &rep);
    scrape(&in, "a 2\nb{x=\"unterminated 3\n", false, 2000, &c, &s, &rep);
    cr_assert_not(rep.up);
    cr_assert(strstr(rep.error, "line 2"), "%s", rep.error);
    cr_assert_eq(s.n, 6, "one stale marker and five report series");
    cr_assert(is_stale(find(&s, "__name__=\"a\",instance=\"h:1\",job=\"j\"")->v));
    scrape_cache_free(&c);
}

Test(scrape_append, honor_labels_false_renames_clashes_with_exported_prefix)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "a{job=\"other\",instance=\"x\",exported_job=\"taken\"} 1\n", false, 1000, &c,
           &s, &rep);
    cr_assert_not_null(find(&s, "__name__=\"a\",exported_exported_job=\"other\","
                                "exported_instance=\"x\",exported_job=\"taken\","
                                "instance=\"h:1\",job=\"j\""),
                       "%s", s.r[0].labels);
    scrape_cache_free(&c);
    in.honor_labels = true;
    scrape(&in, "a{job=\"other\"} 1\n", false, 1000, &c, &s, &rep);
    cr_assert_not_null(find(&s, "__name__=\"a\",instance=\"h:1\",job=\"other\""), "%s",
                       s.r[0].labels);
    scrape_cache_free(&c);
}

Test(scrape_append, honor_timestamps_false_uses_the_scrape_time)
{
    struct scrape_input in;
    input(&in);
    in.honor_timestamps = false;
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "a 1 12345\n", false, 777, &c, &s, &rep);
    cr_assert_eq(find(&s, "__name__=\"a\",instance=\"h:1\",job=\"j\"")->t, 777);
    scrape_cache_free(&c);
}

Test(scrape_append, metric_relabel_drops_and_rewrites)
{
    const char *yaml = "scrape_configs:\n"
                       "  - {source_labels: [__name__], regex: 'go_.*', action: drop}\n"
                       "  - {source_labels: [__name__], regex: 'x_(.*)', target_label: __name__,"
                       " replacement: 'y_$1'}\n";
    struct vg_err err;
    struct config *cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg);
    struct relabel_rules rules;
    cr_assert_eq(relabel_parse(config_block(cfg, "scrape_configs"), "m", &rules, &err), 0);
    struct scrape_input in;
    input(&in);
    in.metric_relabel = &rules;
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "go_gc 1\nx_a 2\nz 3\n", false, 1000, &c, &s, &rep);
    cr_assert_eq(rep.scraped, 3);
    cr_assert_eq(rep.post_relabel, 2);
    cr_assert_not_null(find(&s, "__name__=\"y_a\",instance=\"h:1\",job=\"j\""));
    cr_assert_null(find(&s, "__name__=\"go_gc\",instance=\"h:1\",job=\"j\""));
    scrape_cache_free(&c);
    relabel_rules_free(&rules);
    config_free(cfg);
}

Test(scrape_append, limits_fail_the_scrape)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    in.sample_limit = 2;
    scrape(&in, "a 1\nb 1\nc 1\n", false, 1000, &c, &s, &rep);
    cr_assert_not(rep.up);
    cr_assert(strstr(rep.error, "sample limit exceeded"), "%s", rep.error);
    cr_assert_eq(s.n, 5, "only the report series");
    in.sample_limit = 0;
    in.label_limit = 3;
    scrape(&in, "a{x=\"1\",y=\"2\"} 1\n", false, 1000, &c, &s, &rep);
    cr_assert(strstr(rep.error, "label_limit exceeded"), "%s", rep.error);
    in.label_limit = 0;
    in.label_name_length_limit = 4;
    scrape(&in, "a{longname=\"1\"} 1\n", false, 1000, &c, &s, &rep);
    cr_assert(strstr(rep.error, "label_name_length_limit"), "%s", rep.error);
    in.label_name_length_limit = 0;
    in.label_value_length_limit = 3;
    scrape(&in, "a{x=\"long\"} 1\n", false, 1000, &c, &s, &rep);
    cr_assert(strstr(rep.error, "label_value_length_limit"), "%s", rep.error);
    /* the server's own limits through ingest_check_labels */
    in.label_value_length_limit = 0;
    struct config *cfg = config_default();
    in.limits = &cfg->limits;
    scrape(&in, "a{x=\"1\"} 1\n", false, 1000, &c, &s, &rep);
    cr_assert(rep.up, "%s", rep.error);
    scrape_cache_free(&c);
    config_free(cfg);
}

Test(scrape_append, openmetrics_bodies_with_exemplars_and_created)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "# TYPE req counter\n# UNIT req requests\n# HELP req Requests.\n"
                "req_total 7 1.5 # {trace_id=\"abc\"} 1 1.25\nreq_created 1.0\n# EOF\n",
           true, 9000, &c, &s, &rep);
    cr_assert(rep.up, "%s", rep.error);
    const struct rec *r = find(&s, "__name__=\"req_total\",instance=\"h:1\",job=\"j\"");
    cr_assert_not_null(r);
    cr_assert_eq(r->t, 1500);
    cr_assert(r->exemplar);
    cr_assert_not_null(find(&s, "__name__=\"req_created\",instance=\"h:1\",job=\"j\""));
    cr_assert_eq(c.nmeta, 1);
    cr_assert_str_eq(c.meta[0].unit, "requests");
    cr_assert_str_eq(c.meta[0].help, "Requests.");
    /* without # EOF the scrape fails */
    scrape(&in, "a 1\n", true, 10000, &c, &s, &rep);
    cr_assert_not(rep.up);
    cr_assert(strstr(rep.error, "EOF"), "%s", rep.error);
    scrape_cache_free(&c);
}

Test(scrape_append, repeated_series_are_stored_once_in_the_cache)
{
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct sink s;
    struct scrape_report rep;
    scrape(&in, "a 1\na 2\n", false, 1000, &c, &s, &rep);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(rep.added, 1);
    scrape_cache_free(&c);
}

Test(scrape_append, allocation_failures_are_clean)
{
    struct scrape_input in;
    input(&in);
    for (uint64_t n = 1; n < 120; n++) {
        struct scrape_cache c = { 0 };
        struct sink s;
        struct scrape_report rep;
        scrape(&in, "# TYPE a gauge\na{x=\"1\"} 1\nb 2\n", false, 1000, &c, &s, &rep);
        memset(&rep, 0, sizeof rep);
        struct vg_err err;
        vg_alloc_fail_after(n);
        int rc = scrape_append(&in, "a{x=\"1\"} 1\nc 3\n", 15, false, 2000, &c, fake_sink, &s,
                               &rep, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "%d", rc);
        scrape_cache_free(&c);
    }
}

/* The most heap the scrape held: measured when the sink gets the batch (everything is
 * held then). */
static size_t peak_bytes;

static int measuring_sink(void *ctx, const struct tsdb_batch *b, struct tsdb_append_result *res,
                          struct vg_err *err)
{
    (void)ctx, (void)b, (void)res, (void)err;
    size_t live = vg_alloc_live_bytes();
    if (live > peak_bytes)
        peak_bytes = live;
    return 0;
}

Test(scrape_append, memory_is_a_bounded_multiple_of_the_body)
{
    /* the shortest sample lines Prometheus accepts cost the most per body byte; what a
     * scrape holds must stay a fixed multiple of the body, which body_size_limit caps */
    enum { N = 100000 };
    size_t cap = (size_t)N * 16 + 1, len = 0;
    char *body = vg_malloc(cap);
    cr_assert_not_null(body);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(body + len, cap - len, "m%d 1\n", i);
    struct scrape_input in;
    input(&in);
    struct scrape_cache c = { 0 };
    struct scrape_report rep;
    memset(&rep, 0, sizeof rep);
    struct vg_err err;
    size_t base = vg_alloc_live_bytes();
    peak_bytes = 0;
    cr_assert_eq(scrape_append(&in, body, len, false, 1000, &c, measuring_sink, NULL, &rep,
                               &err), 0, "%s", err.msg);
    cr_assert_eq(rep.scraped, N);
    size_t per_byte = (peak_bytes - base) / len;
    cr_log_info("scrape_append held %zu bytes for a %zu-byte body (%zux)", peak_bytes - base,
                len, per_byte);
    cr_assert_lt(per_byte, 64, "%zu bytes held per body byte", per_byte);
    scrape_cache_free(&c);
    vg_free(body);
}
