/* Tests server/scrape/scrape_sd.c: file_sd target files in JSON and YAML, errors with
 * file:line, reading a job's globs (bad files skipped), the content fingerprint behind
 * the refresh_interval re-read, and the directory watch (inotify) behind prompt pick-up. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../../server/scrape/scrape_sd.h"
#include "../../../../storage/base/vg_alloc.h"

static char dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vg_sd_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(scrape_sd, .init = setup, .fini = teardown, .timeout = 30);

static void put(const char *name, const char *text)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(text, f);
    fclose(f);
}

/* A job with one glob under dir (pattern relative to dir). */
struct job1 {
    struct scrape_job j;
    char *globs[1];
    char glob[160];
};

static void job_init(struct job1 *x, const char *pattern)
{
    memset(x, 0, sizeof *x);
    snprintf(x->glob, sizeof x->glob, "%s/%s", dir, pattern);
    x->globs[0] = x->glob;
    x->j.name = "sd";
    x->j.sd_globs = x->globs;
    x->j.nsd_globs = 1;
}

Test(scrape_sd, parses_json_and_yaml_groups)
{
    const char *json = "[{\"targets\": [\"a:1\", \"b:2\"], \"labels\": {\"env\": \"prod\"}},\n"
                       " {\"targets\": [\"c:3\"]}]";
    const char *yaml = "- targets: [d:4]\n  labels: {zone: eu}\n";
    struct scrape_sd_group *g = NULL;
    size_t n = 0;
    struct vg_err err;
    cr_assert_eq(scrape_sd_parse("x.json", json, strlen(json), &g, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(scrape_sd_parse("y.yml", yaml, strlen(yaml), &g, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    cr_assert_eq(g[0].g.ntargets, 2);
    cr_assert_str_eq(g[0].g.targets[1], "b:2");
    cr_assert_eq(g[0].g.nlabels, 1);
    cr_assert_str_eq(g[0].filepath, "x.json");
    cr_assert_eq(g[1].g.nlabels, 0);
    cr_assert_str_eq(g[2].g.targets[0], "d:4");
    cr_assert_str_eq(g[2].filepath, "y.yml");
    scrape_sd_groups_free(g, n);
    /* an empty file is no groups, not an error */
    g = NULL;
    n = 0;
    cr_assert_eq(scrape_sd_parse("e.yml", "", 0, &g, &n, &err), 0);
    cr_assert_eq(n, 0);
    scrape_sd_groups_free(g, n);
}

Test(scrape_sd, bad_files_name_the_file_and_line)
{
    struct scrape_sd_group *g = NULL;
    size_t n = 0;
    struct vg_err err;
    const char *broken = "[{\"targets\": [\"a:1\"]},\n {\"targets\": [\"b:2\"";
    cr_assert_eq(scrape_sd_parse("t.json", broken, strlen(broken), &g, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "t.json:"), "%s", err.msg);
    const char *map = "targets: [a:1]\n";
    cr_assert_eq(scrape_sd_parse("m.yml", map, strlen(map), &g, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "m.yml:1"), "%s", err.msg);
    cr_assert(strstr(err.msg, "list of target groups"), "%s", err.msg);
    const char *key = "- targets: [a:1]\n  lables: {a: b}\n";
    cr_assert_eq(scrape_sd_parse("k.yml", key, strlen(key), &g, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "k.yml:"), "%s", err.msg);
    cr_assert_eq(n, 0);
    scrape_sd_groups_free(g, n);
}

Test(scrape_sd, read_skips_bad_files_and_fails_cleanly_without_memory)
{
    put("good.json", "[{\"targets\": [\"a:1\"]}]");
    put("bad.json", "[{\"targets\": [\"a:1\"]}, {\"targets\": ");
    struct job1 x;
    job_init(&x, "*.json");
    struct scrape_sd_group *g;
    size_t n;
    struct vg_err err;
    cr_assert_eq(scrape_sd_read(&x.j, &g, &n, &err), 0);
    cr_assert_eq(n, 1, "bad.json is all or nothing");
    cr_assert(strstr(g[0].filepath, "/good.json"));
    scrape_sd_groups_free(g, n);
    size_t live = vg_alloc_live_bytes();
    for (uint64_t k = 1; k < 60; k++) {
        vg_alloc_fail_after(k);
        int rc = scrape_sd_read(&x.j, &g, &n, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "%d", rc);
        if (rc == 0)
            scrape_sd_groups_free(g, n);
        cr_assert_eq(vg_alloc_live_bytes(), live, "leak after failing allocation %llu",
                     (unsigned long long)k);
    }
}

/* The targets of the groups read, joined by ",". */
static void targets_of(const struct scrape_sd_group *g, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g[i].g.ntargets; k++)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? "," : "",
                     g[i].g.targets[k]);
}

/* Reads x with keep; the targets in want, the failed files in nerr_want. */
static void read_expect(struct job1 *x, struct scrape_sd_keep *keep, const char *want,
                        uint64_t nerr_want)
{
    struct scrape_sd_group *g;
    size_t n;
    uint64_t nerr = 99;
    struct vg_err err;
    cr_assert_eq(scrape_sd_read_keep(&x->j, keep, &g, &n, &nerr, &err), 0, "%s", err.msg);
    char got[256];
    targets_of(g, n, got, sizeof got);
    cr_assert_str_eq(got, want);
    cr_assert_eq(nerr, nerr_want);
    scrape_sd_groups_free(g, n);
}

Test(scrape_sd, a_file_that_turns_bad_keeps_its_last_good_groups)
{
    struct scrape_sd_keep *keep = scrape_sd_keep_new();
    cr_assert_not_null(keep);
    struct job1 x;
    job_init(&x, "*.json");
    put("a.json", "[{\"targets\": [\"a:1\"]}]");
    put("other.json", "[{\"targets\": [\"o:1\"]}]");
    read_expect(&x, keep, "a:1,o:1", 0);
    /* half-written: a's previous targets stay, and the failure is counted */
    put("a.json", "[{\"targets\": [\"a:1\"]}, {\"targets\": ");
    read_expect(&x, keep, "a:1,o:1", 1);
    /* without a keep the bad file gives nothing, as before */
    struct scrape_sd_group *g;
    size_t n;
    struct vg_err err;
    cr_assert_eq(scrape_sd_read(&x.j, &g, &n, &err), 0);
    cr_assert_eq(n, 1);
    scrape_sd_groups_free(g, n);
    /* fixed: its new targets apply */
    put("a.json", "[{\"targets\": [\"b:2\", \"c:3\"]}]");
    read_expect(&x, keep, "b:2,c:3,o:1", 0);
    /* a file gone from the globs is forgotten at the prune after it was not read, so a
     * bad file of the same name later has nothing to fall back to */
    scrape_sd_keep_prune(keep);
    char p[160];
    snprintf(p, sizeof p, "%s/a.json", dir);
    cr_assert_eq(unlink(p), 0);
    read_expect(&x, keep, "o:1", 0);
    scrape_sd_keep_prune(keep);
    put("a.json", "{{{");
    read_expect(&x, keep, "o:1", 1);
    scrape_sd_keep_free(keep);
    scrape_sd_keep_free(NULL);
    scrape_sd_keep_prune(NULL);
}

Test(scrape_sd, keep_fails_cleanly_without_memory)
{
    struct job1 x;
    job_init(&x, "*.json");
    put("a.json", "[{\"targets\": [\"a:1\"]}]");
    size_t live = vg_alloc_live_bytes();
    for (uint64_t k = 1; k < 80; k++) {
        struct scrape_sd_keep *keep = scrape_sd_keep_new();
        cr_assert_not_null(keep);
        put("a.json", "[{\"targets\": [\"a:1\"]}]");
        read_expect(&x, keep, "a:1", 0);
        put("a.json", "garbage: [");
        struct scrape_sd_group *g;
        size_t n;
        uint64_t nerr = 0;
        struct vg_err err;
        vg_alloc_fail_after(k);
        int rc = scrape_sd_read_keep(&x.j, keep, &g, &n, &nerr, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "%d", rc);
        if (rc == 0)
            scrape_sd_groups_free(g, n);
        scrape_sd_keep_free(keep);
        cr_assert_eq(vg_alloc_live_bytes(), live, "leak after failing allocation %llu",
                     (unsigned long long)k);
    }
}

Test(scrape_sd, fingerprint_follows_contents)
{
    struct job1 x;
    job_init(&x, "*.json");
    cr_assert_eq(scrape_sd_fingerprint(&x.j), 0, "no files");
    put("a.json", "[{\"targets\": [\"127.0.0.1:1\"]}]");
    uint64_t a = scrape_sd_fingerprint(&x.j);
    cr_assert_neq(a, 0);
    cr_assert_eq(scrape_sd_fingerprint(&x.j), a, "stable");
    /* same size, same modification time, other contents: what a stat would miss */
    char p[160];
    snprintf(p, sizeof p, "%s/a.json", dir);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    put("a.json", "[{\"targets\": [\"127.0.0.2:1\"]}]");
    struct timespec times[2] = { st.st_atim, st.st_mtim };
    cr_assert_eq(utimensat(AT_FDCWD, p, times, 0), 0);
    uint64_t b = scrape_sd_fingerprint(&x.j);
    cr_assert_neq(b, a);
    /* a second file, and the name counts */
    put("b.json", "");
    uint64_t c = scrape_sd_fingerprint(&x.j);
    cr_assert_neq(c, b);
    char q[160];
    snprintf(q, sizeof q, "%s/c.json", dir);
    snprintf(p, sizeof p, "%s/b.json", dir);
    cr_assert_eq(rename(p, q), 0);
    cr_assert_neq(scrape_sd_fingerprint(&x.j), c);
}

static bool readable(struct scrape_sd_watch *w, int ms)
{
    struct pollfd pf = { .fd = scrape_sd_watch_fd(w), .events = POLLIN };
    return poll(&pf, 1, ms) == 1;
}

Test(scrape_sd, watch_reports_finished_writes_renames_and_deletions)
{
    struct vg_err err;
    struct scrape_sd_watch *w = scrape_sd_watch_new(&err);
    cr_assert_not_null(w, "%s", err.msg);
    cr_assert_geq(scrape_sd_watch_fd(w), 0);
    struct job1 x;
    job_init(&x, "*.json");
    cr_assert_eq(scrape_sd_watch_add(w, &x.j), 1);
    cr_assert_eq(scrape_sd_watch_add(w, &x.j), 1, "twice is once");
    cr_assert_not(scrape_sd_watch_drain(w), "nothing happened yet");
    put("a.json", "[]");
    cr_assert(readable(w, 1000));
    cr_assert(scrape_sd_watch_drain(w));
    cr_assert_not(scrape_sd_watch_drain(w), "drained");
    char p[160], q[160];
    snprintf(p, sizeof p, "%s/a.json", dir);
    snprintf(q, sizeof q, "%s/b.json", dir);
    cr_assert_eq(rename(p, q), 0);
    cr_assert(readable(w, 1000));
    cr_assert(scrape_sd_watch_drain(w));
    cr_assert_eq(unlink(q), 0);
    cr_assert(readable(w, 1000));
    cr_assert(scrape_sd_watch_drain(w));
    /* cleared: no more events */
    scrape_sd_watch_clear(w);
    scrape_sd_watch_drain(w); /* IN_IGNORED of the removed watch */
    put("c.json", "[]");
    cr_assert_not(readable(w, 200));
    cr_assert_not(scrape_sd_watch_drain(w));
    scrape_sd_watch_free(w);
    scrape_sd_watch_free(NULL);
}

Test(scrape_sd, watch_expands_directory_wildcards_and_skips_missing_ones)
{
    struct vg_err err;
    struct scrape_sd_watch *w = scrape_sd_watch_new(&err);
    cr_assert_not_null(w, "%s", err.msg);
    struct job1 x;
    job_init(&x, "missing/*.json");
    cr_assert_eq(scrape_sd_watch_add(w, &x.j), 0);
    char p[160];
    snprintf(p, sizeof p, "%s/d1", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/d2", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    job_init(&x, "d*/*.json");
    cr_assert_eq(scrape_sd_watch_add(w, &x.j), 2);
    put("d2/t.json", "[]");
    cr_assert(readable(w, 1000));
    cr_assert(scrape_sd_watch_drain(w));
    scrape_sd_watch_free(w);
}
