/* Tests server/traces/servicegraph.c with hand-built spans: pairing whichever side comes
 * first, failed requests, producer/consumer pairs, expiry of lone sides (unpaired, or
 * virtual database / peer.service nodes), root server spans from "user", the bound on
 * waiting spans, resent spans, and both latency histograms. */
#include "span_fixture.h"

#include "../../../../server/traces/servicegraph.h"
#include "../../../../storage/base/vg_alloc.h"

#include <math.h>

static const double BOUNDS[] = { 0.1, 1 };
static struct servicegraph *sg;
static struct dtable_out out;
static struct vg_err err;

static struct servicegraph *make(size_t max_items)
{
    struct servicegraph_opts o = { .bounds = BOUNDS, .nbounds = 2, .max_series = 100,
                                   .max_value_len = 4096, .wait_ms = 1000,
                                   .max_items = max_items };
    struct servicegraph *g = servicegraph_new(&o, &err);
    cr_assert_not_null(g, "%s", err.msg);
    return g;
}

static void setup(void)
{
    vg_err_clear(&err);
    dtable_out_init(&out);
    sg = make(100);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    dtable_out_free(&out);
    servicegraph_free(sg);
}

TestSuite(servicegraph, .init = setup, .fini = teardown);

static void collect(int64_t now)
{
    dtable_out_free(&out);
    cr_assert_eq(servicegraph_collect(sg, now, &out, &err), 0, "%s", err.msg);
}

/* The row's value: its last sample (a new series' first row also starts with a 0). */
static double value(const struct tsdb_series_in *in)
{
    cr_assert_not_null(in);
    cr_assert(in->nsamples == 1 || (in->nsamples == 2 && in->samples[0].v == 0));
    return in->samples[in->nsamples - 1].v;
}

static struct servicegraph_stats stats(void)
{
    struct servicegraph_stats st;
    servicegraph_stats(sg, &st);
    return st;
}

/* client span 5 of "web" calling server span 6 of "api" (parent 5), trace 1 */
static struct span client(void)
{
    return sf_span("web", "GET /api", SPAN_KIND_CLIENT, SPAN_STATUS_UNSET, 1, 5, 2, 300);
}

static struct span server(void)
{
    return sf_span("api", "GET /api", SPAN_KIND_SERVER, SPAN_STATUS_UNSET, 1, 6, 5, 200);
}

static void check_pair(void)
{
    collect(100);
    const struct tsdb_series_in *r = sf_row(&out, SERVICEGRAPH_REQUESTS, "client", "web",
                                            "server", "api", NULL);
    cr_assert_eq(value(r), 1);
    cr_assert_null(labels_get(r->labels, r->nlabels, "connection_type").p);
    cr_assert_eq(r->nlabels, 3);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_FAILED, "client", "web", NULL)), 0);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_SERVER "_bucket", "le", "0.1", NULL)), 0);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_SERVER "_bucket", "le", "1", NULL)), 1);
    cr_assert(fabs(value(sf_row(&out, SERVICEGRAPH_SERVER "_sum", NULL)) - 0.2) < 1e-12);
    cr_assert(fabs(value(sf_row(&out, SERVICEGRAPH_CLIENT "_sum", NULL)) - 0.3) < 1e-12);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_CLIENT "_count", NULL)), 1);
    struct servicegraph_stats st = stats();
    cr_assert_eq(st.paired, 1);
    cr_assert_eq(st.waiting, 0);
}

Test(servicegraph, client_first)
{
    struct span s[2] = { client(), server() };
    servicegraph_observe(sg, &s[0], 1, 0);
    cr_assert_eq(stats().waiting, 1);
    servicegraph_observe(sg, &s[1], 1, 10);
    check_pair();
}

Test(servicegraph, server_first)
{
    struct span s[2] = { server(), client() };
    servicegraph_observe(sg, s, 2, 0);
    check_pair();
}

Test(servicegraph, failed_when_either_side_errs)
{
    struct span s[4] = { client(), server(), client(), server() };
    s[1].status = SPAN_STATUS_ERROR;
    s[2].trace_id[0] = 9, s[3].trace_id[0] = 9;
    s[2].status = SPAN_STATUS_ERROR;
    servicegraph_observe(sg, s, 4, 0);
    collect(1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_REQUESTS, NULL)), 2);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_FAILED, NULL)), 2);
}

Test(servicegraph, different_traces_do_not_pair)
{
    struct span s[2] = { client(), server() };
    s[1].trace_id[15] = 0x77;
    servicegraph_observe(sg, s, 2, 0);
    cr_assert_eq(stats().waiting, 2);
    collect(500);
    cr_assert_eq(sf_count(&out, SERVICEGRAPH_REQUESTS), 0, "still waiting");
    collect(1001);
    struct servicegraph_stats st = stats();
    cr_assert_eq(st.unpaired_client, 1);
    cr_assert_eq(st.unpaired_server, 1);
    cr_assert_eq(st.waiting, 0);
    cr_assert_eq(sf_count(&out, SERVICEGRAPH_REQUESTS), 0);
}

Test(servicegraph, messaging_pairs)
{
    struct span s[2] = {
        sf_span("orders", "publish", SPAN_KIND_PRODUCER, SPAN_STATUS_OK, 3, 1, 0, 5),
        sf_span("billing", "process", SPAN_KIND_CONSUMER, SPAN_STATUS_OK, 3, 2, 1, 50),
    };
    servicegraph_observe(sg, s, 2, 0);
    collect(1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_REQUESTS, "client", "orders", "server",
                              "billing", "connection_type", "messaging_system", NULL)), 1);
}

Test(servicegraph, virtual_nodes_on_expiry)
{
    struct span_attr db[2] = {
        { .key = VG_STR("db.system"), .type = SPAN_VAL_STRING, .v.s = VG_STR("postgresql") },
        { .key = VG_STR("db.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("orders") },
    };
    struct span_attr peer = { .key = VG_STR("peer.service"), .type = SPAN_VAL_STRING,
                              .v.s = VG_STR("payments") };
    struct span s[3] = { client(), client(), client() };
    s[0].attrs = db, s[0].nattrs = 2;
    s[1].span_id[0] = 0x10, s[1].attrs = &peer, s[1].nattrs = 1;
    s[2].span_id[0] = 0x11, s[2].attrs = db, s[2].nattrs = 1; /* no db.name */
    servicegraph_observe(sg, s, 3, 0);
    collect(2000);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_REQUESTS, "client", "web", "server", "orders",
                              "connection_type", "database", NULL)), 1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_REQUESTS, "client", "web", "server",
                              "postgresql", "connection_type", "database", NULL)), 1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_REQUESTS, "server", "payments",
                              "connection_type", "virtual_node", NULL)), 1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_CLIENT "_count", "server", "payments", NULL)),
                 1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_SERVER "_count", "server", "payments", NULL)),
                 0, "no server side was seen");
    struct servicegraph_stats st = stats();
    cr_assert_eq(st.virtual_edges, 3);
    cr_assert_eq(st.unpaired_client, 0);
}

Test(servicegraph, root_server_spans_come_from_user)
{
    struct span s = sf_span("front", "GET /", SPAN_KIND_SERVER, SPAN_STATUS_ERROR, 1, 1, 0, 10);
    servicegraph_observe(sg, &s, 1, 0);
    cr_assert_eq(stats().waiting, 0);
    collect(1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_REQUESTS, "client", "user", "server", "front",
                              "connection_type", "virtual_node", NULL)), 1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_FAILED, "client", "user", NULL)), 1);
}

Test(servicegraph, internal_spans_ignored_and_resent_side_kept_once)
{
    struct span in = sf_span("a", "work", SPAN_KIND_INTERNAL, SPAN_STATUS_OK, 1, 1, 0, 1);
    servicegraph_observe(sg, &in, 1, 0);
    struct span s[3] = { client(), client(), server() };
    s[1].service = VG_STR("other");
    servicegraph_observe(sg, s, 3, 0);
    collect(1);
    cr_assert_eq(value(sf_row(&out, SERVICEGRAPH_REQUESTS, "client", "web", NULL)), 1);
    cr_assert_null(sf_row(&out, SERVICEGRAPH_REQUESTS, "client", "other", NULL));
}

Test(servicegraph, waiting_spans_bounded)
{
    servicegraph_free(sg);
    sg = make(2);
    struct span s[3] = { client(), client(), client() };
    s[1].span_id[0] = 0x20;
    s[2].span_id[0] = 0x21;
    servicegraph_observe(sg, s, 3, 0);
    struct servicegraph_stats st = stats();
    cr_assert_eq(st.waiting, 2);
    cr_assert_eq(st.dropped, 1);
    /* after the wait the oldest are settled to make room */
    struct span late = client();
    late.span_id[0] = 0x22;
    servicegraph_observe(sg, &late, 1, 5000);
    st = stats();
    cr_assert_eq(st.waiting, 1);
    cr_assert_eq(st.unpaired_client, 2);
    cr_assert_eq(st.dropped, 1);
}

Test(servicegraph, bad_options_and_allocation_failure)
{
    struct servicegraph_opts o = { .bounds = BOUNDS, .nbounds = 2, .max_series = 10,
                                   .max_value_len = 100, .wait_ms = 1, .max_items = 0 };
    cr_assert_null(servicegraph_new(&o, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    o.max_items = 10;
    for (uint64_t n = 1; n < 40; n++) {
        vg_alloc_fail_after(n);
        struct servicegraph *g = servicegraph_new(&o, &err);
        vg_alloc_fail_after(0);
        if (g) {
            servicegraph_free(g);
            break;
        }
        cr_assert_eq(err.code, VG_ENOMEM, "%s", err.msg);
    }
    /* a new service name that cannot be interned drops the span */
    struct span s = client();
    vg_alloc_fail_after(1);
    servicegraph_observe(sg, &s, 1, 0);
    vg_alloc_fail_after(0);
    cr_assert_eq(stats().dropped, 1);
}
