/* Helpers shared by the logparse tests: parse one line with a format and look fields up
 * as C strings. Each test file includes this once; everything is static. */
#ifndef LP_TEST_H
#define LP_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../../server/ingest/logparse/logparse.h"
#include "../../../../../storage/base/vg_alloc.h"

static struct vg_arena *lp_arena;

static inline void lp_setup(void)
{
    lp_arena = vg_arena_new(0);
}

static inline void lp_teardown(void)
{
    vg_arena_free(lp_arena);
}

/* A parser for format with an optional pattern (regex) and time settings. */
static inline struct logparse *lp_new_full(const char *format, const char *pattern,
                                    const char *time_field, const char *time_format)
{
    struct logparse_config cfg = { .format = format,
                                   .pattern = vg_str_c(pattern),
                                   .time_field = vg_str_c(time_field),
                                   .time_format = vg_str_c(time_format) };
    struct vg_err err;
    struct logparse *p = logparse_new(&cfg, &err);
    cr_assert_not_null(p, "%s: %s", format, err.msg);
    return p;
}

static inline struct logparse *lp_new(const char *format)
{
    return lp_new_full(format, NULL, NULL, NULL);
}

/* Parses a C-string line; asserts logparse_line returned 0. */
static inline struct logparse_result lp_parse(const struct logparse *p, const char *line)
{
    struct logparse_result res;
    int rc = logparse_line(p, line, strlen(line), 0, lp_arena, &res);
    cr_assert_eq(rc, 0, "logparse_line: %d", rc);
    return res;
}

/* The value of field name as a C string (static buffer), or NULL when absent. */
static inline const char *lp_get(const struct logparse_result *res, const char *name)
{
    static char buf[8192];
    const struct vg_str *v = logparse_get(res, vg_str_c(name));
    if (!v)
        return NULL;
    cr_assert_lt(v->len, sizeof buf);
    memcpy(buf, v->p, v->len);
    buf[v->len] = 0;
    return buf;
}

/* All fields as "name=value;" in order, for whole-result comparisons. */
static inline const char *lp_dump(const struct logparse_result *res)
{
    static char buf[8192];
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < res->nfields && n < sizeof buf; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%.*s=%.*s;",
                              (int)res->fields[i].name.len, res->fields[i].name.p,
                              (int)res->fields[i].value.len, res->fields[i].value.p);
    return buf;
}

static inline void lp_assert_parsed(const struct logparse_result *res)
{
    cr_assert_eq(res->status, LOGPARSE_PARSED, "unparsable: %s at %zu", res->reason,
                 res->offset);
}

static inline void lp_assert_unparsable(const struct logparse_result *res, const char *reason)
{
    cr_assert_eq(res->status, LOGPARSE_UNPARSABLE, "parsed: %s", lp_dump(res));
    cr_assert_eq(res->nfields, 0);
    if (reason)
        cr_assert_str_eq(res->reason, reason);
}

#endif
