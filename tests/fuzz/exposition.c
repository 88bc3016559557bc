/* Fuzz target for server/api/exposition.c: parses arbitrary bytes as text format 0.0.4;
 * whatever parses is written back with the writer and parsed again, and the two parses
 * must agree entry by entry (kind, names, help, type, labels in order, value bit-exact
 * or both NaN, timestamp). Any disagreement aborts. */
#include "../../server/api/exposition.h"
#include "../../storage/base/vg_buf.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void write_entry(struct vg_buf *out, const struct exposition_entry *e)
{
    switch (e->kind) {
    case EXPOSITION_HELP:
        exposition_write_help(out, e->name, e->help);
        break;
    case EXPOSITION_TYPE:
        exposition_write_type(out, e->name, e->type);
        break;
    case EXPOSITION_SAMPLE:
        exposition_write_sample(out, e->name, e->labels, e->nlabels, e->value, e->has_ts,
                                e->ts_ms);
        break;    case EXPOSITION_UNIT: /* OpenMetrics only: the text parser never reports one */
        break;
    }
}

static bool same_value(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

static bool same_entry(const struct exposition_entry *a, const struct exposition_entry *b)
{
    if (a->kind != b->kind || !vg_str_eq(a->name, b->name))
        return false;
    if (a->kind == EXPOSITION_HELP)
        return vg_str_eq(a->help, b->help);
    if (a->kind == EXPOSITION_TYPE)
        return a->type == b->type;
    if (a->nlabels != b->nlabels || !same_value(a->value, b->value) ||
        a->has_ts != b->has_ts || (a->has_ts && a->ts_ms != b->ts_ms))
        return false;
    for (size_t i = 0; i < a->nlabels; i++)
        if (!vg_str_eq(a->labels[i].name, b->labels[i].name) ||
            !vg_str_eq(a->labels[i].value, b->labels[i].value))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_arena *arena = vg_arena_new(4096);
    if (!arena)
        return 0;
    vg_arena_set_limit(arena, 64u << 20);
    struct exposition_entry *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    struct vg_err err;
    if (exposition_parse_all((const char *)data, size, arena, &a, &na, &err) == 0) {
        struct vg_buf out;
        vg_buf_init(&out);
        for (size_t i = 0; i < na; i++)
            write_entry(&out, &a[i]);
        if (vg_buf_failed(&out))
            abort();
        if (exposition_parse_all(out.p, out.len, arena, &b, &nb, &err) != 0 || nb != na)
            abort();
        for (size_t i = 0; i < na; i++)
            if (!same_entry(&a[i], &b[i]))
                abort();
        vg_buf_free(&out);
    }
    vg_arena_free(arena);
    return 0;
}
