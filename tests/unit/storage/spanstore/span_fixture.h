/* Test fixture shared by the span store's tests: builds realistic spans (HTTP server
 * and client spans with resource attributes, an exception event and a link) in storage
 * the fixture owns, so tests need no heap for their input. */
#ifndef SPAN_FIXTURE_H
#define SPAN_FIXTURE_H

#include "../../../../storage/spanstore/span.h"

#include <stdio.h>
#include <string.h>

#define FX_T0 1700000000000000000LL /* 2023-11-14, in nanoseconds */
#define FX_MS 1000000LL
#define FX_HOUR (3600LL * 1000 * FX_MS)

struct fx_span {
    struct span s;
    struct span_attr attrs[6];
    struct span_attr res[3];
    struct span_attr ev_attrs[2];
    struct span_event ev;
    struct span_link link;
    char route[32];
};

/* Trace number n as a 16-byte id (never all zero). */
static inline void fx_id(uint8_t *out, size_t len, uint64_t n)
{
    memset(out, 0, len);
    out[0] = 0xab;
    for (size_t i = 0; i < 8; i++)
        out[len - 1 - i] = (uint8_t)(n >> (8 * i));
}

/* A span of trace `trace`, id `id`, parent `parent` (0 = root). */
static inline void fx_span(struct fx_span *f, uint64_t trace, uint64_t id, uint64_t parent,
                           const char *service, const char *name, int64_t start, int64_t dur,
                           enum span_status status)
{
    memset(f, 0, sizeof *f);
    struct span *s = &f->s;
    fx_id(s->trace_id, SPAN_TRACE_ID_LEN, trace);
    fx_id(s->span_id, SPAN_ID_LEN, id);
    if (parent)
        fx_id(s->parent_span_id, SPAN_ID_LEN, parent);
    s->kind = parent ? SPAN_KIND_CLIENT : SPAN_KIND_SERVER;
    s->status = status;
    s->start_ns = start;
    s->end_ns = start + dur;
    s->name = vg_str_c(name);
    s->service = vg_str_c(service);
    s->scope_name = VG_STR("io.opentelemetry.http");
    s->scope_version = VG_STR("1.2.3");
    if (status == SPAN_STATUS_ERROR)
        s->status_message = VG_STR("upstream failed");
    snprintf(f->route, sizeof f->route, "/api/v1/items/%u", (unsigned)(id % 7));
    f->attrs[0] = (struct span_attr){ VG_STR("http.method"), SPAN_VAL_STRING,
                                      .v.s = VG_STR("GET") };
    f->attrs[1] = (struct span_attr){ VG_STR("http.status_code"), SPAN_VAL_INT,
                                      .v.i = status == SPAN_STATUS_ERROR ? 500 : 200 };
    f->attrs[2] = (struct span_attr){ VG_STR("http.route"), SPAN_VAL_STRING,
                                      .v.s = vg_str_c(f->route) };
    f->attrs[3] = (struct span_attr){ VG_STR("net.peer.port"), SPAN_VAL_INT, .v.i = 8080 };
    f->attrs[4] = (struct span_attr){ VG_STR("sampling.ratio"), SPAN_VAL_DOUBLE, .v.d = 0.25 };
    f->attrs[5] = (struct span_attr){ VG_STR("cache.hit"), SPAN_VAL_BOOL, .v.b = true };
    s->attrs = f->attrs;
    s->nattrs = 6;
    f->res[0] = (struct span_attr){ VG_STR("service.name"), SPAN_VAL_STRING,
                                    .v.s = vg_str_c(service) };
    f->res[1] = (struct span_attr){ VG_STR("host.name"), SPAN_VAL_STRING,
                                    .v.s = VG_STR("node-1") };
    f->res[2] = (struct span_attr){ VG_STR("telemetry.sdk.language"), SPAN_VAL_STRING,
                                    .v.s = VG_STR("nodejs") };
    s->resource_attrs = f->res;
    s->nresource_attrs = 3;
    if (status == SPAN_STATUS_ERROR) {
        f->ev_attrs[0] = (struct span_attr){ VG_STR("exception.type"), SPAN_VAL_STRING,
                                             .v.s = VG_STR("TypeError") };
        f->ev_attrs[1] = (struct span_attr){ VG_STR("exception.message"), SPAN_VAL_STRING,
                                             .v.s = VG_STR("x is undefined") };
        f->ev = (struct span_event){ start + dur / 2, VG_STR("exception"), f->ev_attrs, 2, 0 };
        s->events = &f->ev;
        s->nevents = 1;
    }
}

static inline void fx_set_attr(struct fx_span *f, size_t i, const char *key, const char *val)
{
    f->attrs[i] = (struct span_attr){ vg_str_c(key), SPAN_VAL_STRING, .v.s = vg_str_c(val) };
}

#endif
