/* Tests server/pb_alloc.c: unpacking into a request arena (and its limit), and the
 * nesting check that keeps protobuf-c's recursion off a hostile body's depth. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../server/pb_alloc.h"
#include "otlp_logs_service.pb-c.h"

#define LOGS_DESC (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* The message is built inside out from the end of a buffer, each wrap prepending a
 * length-delimited field header with tag byte tag to what is there. */
struct inside_out {
    uint8_t *start, *end;
};

static void wrap(struct inside_out *m, uint8_t tag)
{
    uint8_t head[11];
    size_t h = 0;
    head[h++] = tag;
    h += put_varint(head + h, (uint64_t)(m->end - m->start));
    m->start -= h;
    memcpy(m->start, head, h);
}

/* An ExportLogsServiceRequest whose one log body is an AnyValue array nested n deep;
 * message depth is 5 + 2n (request, resource logs, scope logs, record, body, ...). */
static uint8_t *nested_logs(unsigned n, size_t *len)
{
    static uint8_t buf[1 << 20];
    struct inside_out m = {buf + sizeof buf - 3, buf + sizeof buf};
    memcpy(m.start, "\x0a\x01x", 3); /* AnyValue.string_value "x" */
    for (unsigned i = 0; i < n; i++) {
        wrap(&m, 0x0a); /* ArrayValue.values */
        wrap(&m, 0x2a); /* AnyValue.array_value */
    }
    wrap(&m, 0x2a); /* LogRecord.body */
    wrap(&m, 0x12); /* ScopeLogs.log_records */
    wrap(&m, 0x12); /* ResourceLogs.scope_logs */
    wrap(&m, 0x0a); /* request.resource_logs */
    *len = (size_t)(m.end - m.start);
    return m.start;
}

Test(pb_alloc, unpacks_into_the_arena_and_respects_its_limit)
{
    size_t len;
    uint8_t *buf = nested_logs(3, &len);
    struct vg_arena *a = vg_arena_new(256);
    ProtobufCAllocator alloc;
    pb_alloc_from_arena(a, &alloc);
    ProtobufCMessage *m = protobuf_c_message_unpack(LOGS_DESC, &alloc, len, buf);
    cr_assert_not_null(m);
    cr_assert_gt(vg_arena_used(a), 0);
    vg_arena_free(a); /* frees m and all it points to */

    a = vg_arena_new(256);
    vg_arena_set_limit(a, 300);
    pb_alloc_from_arena(a, &alloc);
    cr_assert_null(protobuf_c_message_unpack(LOGS_DESC, &alloc, len, buf));
    vg_arena_free(a);
}

Test(pb_alloc, depth_check_accepts_up_to_the_limit)
{
    struct vg_err err;
    size_t len;
    uint8_t *buf = nested_logs(10, &len); /* depth 25 */
    cr_assert_eq(pb_check_depth(LOGS_DESC, buf, len, 25, &err), 0, "%s", err.msg);
    cr_assert_eq(pb_check_depth(LOGS_DESC, buf, len, 24, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "ExportLogsServiceRequest: messages nested deeper than 24 levels "
                              "at byte offset ") != NULL, "%s", err.msg);
}

Test(pb_alloc, depth_check_stops_a_stack_overflow)
{
    struct vg_err err;
    size_t len;
    uint8_t *buf = nested_logs(100000, &len); /* unpacking this crashes protobuf-c */
    cr_assert_eq(pb_check_depth(LOGS_DESC, buf, len, PB_MAX_DEPTH, &err), VG_EINVAL);
}

Test(pb_alloc, depth_check_leaves_malformed_bytes_to_unpack)
{
    struct vg_err err;
    const uint8_t truncated[] = {0x0a, 0x05, 0x12, 0x7f};
    const uint8_t group[] = {0x0b, 0x0c};
    const uint8_t bad_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0x01};
    const uint8_t scalars[] = {0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x15, 1, 2, 3, 4, 0x10, 0x96, 0x01};
    cr_assert_eq(pb_check_depth(LOGS_DESC, truncated, sizeof truncated, 4, &err), 0);
    cr_assert_eq(pb_check_depth(LOGS_DESC, group, sizeof group, 4, &err), 0);
    cr_assert_eq(pb_check_depth(LOGS_DESC, bad_varint, sizeof bad_varint, 4, &err), 0);
    cr_assert_eq(pb_check_depth(LOGS_DESC, scalars, sizeof scalars, 4, &err), 0);
    cr_assert_eq(pb_check_depth(LOGS_DESC, scalars, 5, 4, &err), 0);
    cr_assert_eq(pb_check_depth(LOGS_DESC, NULL, 0, 1, &err), 0);
}
