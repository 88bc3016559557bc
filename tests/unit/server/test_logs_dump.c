/* Tests server/logs_dump.c (`vigil logs dump`): entries pushed into a log store in a
 * temporary data directory come back one per line as "<ns> {labels} line | metadata",
 * with escapes for quotes, backslashes and control bytes, streams one after another and
 * each in time order; a stream whose labels are a superset of another's is not printed
 * twice; --match selects streams; a bad selector is an error. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../server/config.h"
#include "../../../server/logs_dump.h"
#include "../../../storage/logstore/logstore.h"

static char dir[64];
static struct config *cfg;

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vigil-logsdump-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cfg = config_default();
    struct vg_err err;
    cr_assert_eq(config_set(cfg, "storage.data_dir", dir, &err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/logs", dir);
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = path;
    o.maint_interval_ms = 0;
    struct logstore *ls = logstore_open(&o, &err);
    cr_assert_not_null(ls, "%s", err.msg);
    struct label a[] = { { VG_STR("job"), VG_STR("a") } };
    struct label b[] = { { VG_STR("job"), VG_STR("a") }, { VG_STR("x"), VG_STR("q\"\\") } };
    struct label meta[] = { { VG_STR("trace_id"), VG_STR("abc") }, { VG_STR("k"), VG_STR("t\tab") } };
    struct lentry ea[] = {
        { .t = 20, .line = VG_STR("second") },
        { .t = 10, .line = VG_STR("first\nline \"q\" \x01"), .meta = meta, .nmeta = 2 },
    };
    struct lentry eb[] = { { .t = 15, .line = VG_STR("other") } };
    struct logstore_stream_in in[] = { { a, 1, ea, 2 }, { b, 2, eb, 1 } };
    cr_assert_eq(logstore_push(ls, in, 2, NULL, &err), 0, "%s", err.msg);
    logstore_close(ls);
}

static void teardown(void)
{
    config_free(cfg);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(logs_dump, .init = setup, .fini = teardown);

static char *dump(const char *selector, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct vg_err err;
    *rc = vigil_logs_dump(cfg, selector, f, &err);
    fclose(f);
    return buf;
}

Test(logs_dump, every_stream_in_order_with_escapes)
{
    int rc;
    char *out = dump(NULL, &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(out, "10 {job=\"a\"} first\\nline \"q\" \\x01 | trace_id=\"abc\",k=\"t\\tab\"\n"
                          "20 {job=\"a\"} second\n"
                          "15 {job=\"a\",x=\"q\\\"\\\\\"} other\n");
    free(out);
}

Test(logs_dump, match_and_bad_selector)
{
    int rc;
    char *out = dump("{x=~\"q.*\"}", &rc);
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(out, "15 {job=\"a\",x=\"q\\\"\\\\\"} other\n");
    free(out);
    out = dump("{job=", &rc);
    cr_assert_eq(rc, VG_EINVAL);
    free(out);
}
