/* Fuzz target for the Jaeger API's parameter parsers and trace writer (server/api/jaeger.c):
 * the input is parsed as a tags parameter (JSON map or key:value pairs), as one tag
 * parameter (key:value) and as a duration. A parse either succeeds with at most the
 * allowed pairs, each with a non-empty key, or fails with VG_EINVAL / VG_ETOOLARGE /
 * VG_ENOMEM. When the input also decodes as a stored span (span.h encoding), the span is
 * written as a Jaeger trace, which must be valid JSON (its array and map attributes are
 * unpacked from arbitrary blobs on the way). The check reads strings with NUL bytes
 * (\u0000, valid JSON that jansson refuses by default) and integer-looking numbers as
 * reals (Go writes float64 values below 1e21 without exponent; jansson would call one
 * above INT64_MAX an overflowing integer). */
#include "../../server/api/jaeger.h"

#include "fuzz_check.h"
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#define MAX 8

static void check_tags(const uint8_t *data, size_t size, enum jaeger_tags_form form,
                       struct vg_arena *a)
{
    struct jaeger_tag t[MAX];
    size_t n = 0;
    struct vg_err err;
    vg_err_clear(&err);
    int rc = jaeger_parse_tags((const char *)data, size, form, a, t, MAX, &n, &err);
    FUZZ_CHECK(rc == 0 || rc == VG_EINVAL || rc == VG_ETOOLARGE || rc == VG_ENOMEM);
    FUZZ_CHECK(rc == 0 || err.msg[0]);
    FUZZ_CHECK(n <= MAX);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(t[i].key.len > 0 && t[i].key.p);
        FUZZ_CHECK(t[i].value.p);
        for (size_t j = 0; j < i; j++) /* a repeated key replaces the earlier pair */
            FUZZ_CHECK(!vg_str_eq(t[i].key, t[j].key));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_arena *a = vg_arena_new(0);
    if (!a)
        return 0;
    check_tags(data, size, JAEGER_TAGS_ANY, a);
    check_tags(data, size, JAEGER_TAG_PAIR, a);
    int64_t ns = -1;
    int rc = jaeger_parse_duration((const char *)data, size, &ns);
    FUZZ_CHECK(rc == 0 || rc == -1);

    struct span s;
    struct vg_err err;
    if (span_decode(data, size, a, &s, &err) == 0) {
        struct vg_buf b;
        vg_buf_init(&b);
        if (jaeger_write_trace(&s, 1, a, &b, &err) == 0) {
            json_error_t je;
            json_t *j = json_loadb(b.p, b.len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &je);
            FUZZ_CHECK(j != NULL);
            json_decref(j);
        }
        vg_buf_free(&b);
    }
    vg_arena_free(a);
    return 0;
}
