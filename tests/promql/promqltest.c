/* vigil-promqltest: runs PromQL test files (Prometheus's test-file format, testfile.h)
 * against Vigil's TSDB and engine (runner.h) and reports, per file,
 *
 *   FILE: N passed, M failed, K unsupported
 *     line L: <the eval command>
 *       reason: ... / expected: ... / actual: ...
 *
 * then `unsupported: K` and, alone on the last line, `N passed, M failed`.
 *
 * Arguments are test files or directories (their *.test files, sorted). Each file runs in
 * a child process, so a crash or a hang (per-case alarm) in the engine costs that file's
 * remaining cases, not the run; the child streams one record per case to the parent:
 *   "S <line>\n"                          a case starts
 *   "R <line> <P|F|U> <len>\n<len bytes>"  its outcome and details
 *   "E <len>\n<len bytes>"                 the file could not be run (no TSDB)
 *
 * Known-passing list (--known-passing FILE): lines `<file basename>:<line>`, '#' comments.
 * With it the exit status is 1 only when a listed case of a file that was run does not
 * pass (a regression); without it, when any case failed. --write-passing FILE writes the
 * cases that passed in that format. --expect-all-fail inverts the status for the runner's
 * own self-test (a file of wrong expectations). Exit 2 on bad usage or unreadable input, 77 (meson's
 * "skipped") with --skip-missing when an input path does not exist. */
#include "runner.h"
#include "testfile.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_log.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct case_rec {
    int line;
    enum case_status st;
    char *detail; /* vg_malloc'ed or NULL */
};

struct file_res {
    char *path;
    const char *base; /* inside path */
    struct case_rec *v;
    size_t n, cap;
    char *error; /* the file could not be read or run */
};

struct cli {
    struct runner_opts ro;
    const char *known_path;
    const char *write_path;
    bool skip_missing;
    bool fork;
    bool verbose;
    bool expect_all_fail; /* the runner's self-test: succeed only if no case passed */
    char **files;
    size_t nfiles, cap_files;
};

static void die_oom(void)
{
    fputs("vigil-promqltest: out of memory\n", stderr);
    exit(2);
}

static void add_case(struct file_res *fr, int line, enum case_status st, const char *detail)
{
    if (fr->n == fr->cap) {
        fr->cap = fr->cap ? fr->cap * 2 : 64;
        fr->v = vg_realloc(fr->v, fr->cap * sizeof *fr->v);
        if (!fr->v)
            die_oom();
    }
    fr->v[fr->n++] = (struct case_rec){ line, st, detail ? vg_strdup(detail) : NULL };
}

/* A whole decimal number at s, up to stop (a char or 0 for the end); advances *end. */
static bool read_long(const char *s, char stop, long min, long max, long *out, const char **end)
{
    char *e = NULL;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (e == s || errno || *e != stop || v < min || v > max)
        return false;
    *out = v;
    if (end)
        *end = e;
    return true;
}

/* ---- input files ---- */

static void add_file(struct cli *c, const char *path)
{
    if (c->nfiles == c->cap_files) {
        c->cap_files = c->cap_files ? c->cap_files * 2 : 32;
        c->files = vg_realloc(c->files, c->cap_files * sizeof *c->files);
        if (!c->files)
            die_oom();
    }
    c->files[c->nfiles] = vg_strdup(path);
    if (!c->files[c->nfiles++])
        die_oom();
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A directory stands for its *.test files in name order. Returns 0, 77 or 2. */
static int add_path(struct cli *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (c->skip_missing) {
            printf("SKIP: %s does not exist (the shared conformance data is not checked out "
                   "beside this tree), nothing to run\n", path);
            return 77;
        }
        fprintf(stderr, "vigil-promqltest: %s: %s\n", path, strerror(errno));
        return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
        add_file(c, path);
        return 0;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        fprintf(stderr, "vigil-promqltest: %s: %s\n", path, strerror(errno));
        return 2;
    }
    size_t first = c->nfiles;
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".test") == 0) {
            size_t len = strlen(path) + n + 2;
            char *full = vg_malloc(len);
            if (!full)
                die_oom();
            snprintf(full, len, "%s/%s", path, de->d_name);
            add_file(c, full);
            vg_free(full);
        }
    }
    closedir(dir);
    qsort(c->files + first, c->nfiles - first, sizeof *c->files, cmp_str);
    return 0;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct vg_buf b;
    vg_buf_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        vg_buf_append(&b, chunk, n);
    bool bad = ferror(f) || vg_buf_failed(&b);
    (void)fclose(f); /* read-only: nothing to lose */
    if (bad) {
        vg_buf_free(&b);
        return NULL;
    }
    vg_buf_cstr(&b);
    return vg_buf_steal(&b, len);
}

/* ---- running a file in a child ---- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            _exit(4); /* the parent is gone */
        p += w;
        n -= (size_t)w;
    }
}

static void child_start(void *ctx, int line)
{
    char hdr[32];
    int n = snprintf(hdr, sizeof hdr, "S %d\n", line);
    write_all(*(int *)ctx, hdr, (size_t)n);
}

static void child_report(void *ctx, int line, enum case_status st, const char *detail)
{
    static const char codes[] = { 'P', 'F', 'U' };
    size_t dl = detail ? strlen(detail) : 0;
    char hdr[64];
    int n = snprintf(hdr, sizeof hdr, "R %d %c %zu\n", line, codes[st], dl);
    write_all(*(int *)ctx, hdr, (size_t)n);
    write_all(*(int *)ctx, detail ? detail : "", dl);
}

static void local_report(void *ctx, int line, enum case_status st, const char *detail)
{
    add_case(ctx, line, st, detail);
}

/* Reads the child's records into fr; *running gets the line of a case that started and
 * never reported. */
static void parse_records(const char *p, size_t len, struct file_res *fr, int *running)
{
    const char *end = p + len;
    *running = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || nl - p < 3 || p[1] != ' ')
            break;
        size_t avail = (size_t)(end - nl - 1);
        const char *q;
        long line = 0, dl = 0;
        if (p[0] == 'S' && read_long(p + 2, '\n', 0, INT32_MAX, &line, NULL)) {
            *running = (int)line;
            p = nl + 1;
        } else if (p[0] == 'R' && read_long(p + 2, ' ', 0, INT32_MAX, &line, &q) &&
                   (q[1] == 'P' || q[1] == 'F' || q[1] == 'U') && q[2] == ' ' &&
                   read_long(q + 3, '\n', 0, LONG_MAX, &dl, NULL) && (size_t)dl <= avail) {
            char *detail = vg_strndup(nl + 1, (size_t)dl);
            enum case_status st = q[1] == 'P' ? CASE_PASS : q[1] == 'U' ? CASE_UNSUPPORTED
                                                                         : CASE_FAIL;
            add_case(fr, (int)line, st, dl ? detail : NULL);
            vg_free(detail);
            *running = 0;
            p = nl + 1 + dl;
        } else if (p[0] == 'E' && read_long(p + 2, '\n', 0, LONG_MAX, &dl, NULL) &&
                   (size_t)dl <= avail) {
            fr->error = vg_strndup(nl + 1, (size_t)dl);
            p = nl + 1 + dl;
        } else {
            break;
        }
    }
}

static bool has_case(const struct file_res *fr, int line)
{
    for (size_t i = 0; i < fr->n; i++)
        if (fr->v[i].line == line)
            return true;
    return false;
}

static int cmp_case(const void *a, const void *b)
{
    const struct case_rec *x = a, *y = b;
    return (x->line > y->line) - (x->line < y->line);
}

/* Cases the child never reported (it died): the one running failed with the reason, the
 * rest were not run. */
static void account_missing(const struct cli *c, const struct tf_file *tf, struct file_res *fr,
                            int running, const char *why)
{
    struct vg_buf msg;
    vg_buf_init(&msg);
    for (size_t i = 0; i < tf->ncmds; i++) {
        const struct tf_cmd *cmd = &tf->cmds[i];
        if (!runner_is_case(cmd) || has_case(fr, cmd->line))
            continue;
        if (cmd->kind == TF_EVAL && c->ro.only_line && c->ro.only_line != cmd->line)
            continue;
        vg_buf_reset(&msg);
        runner_describe(cmd, &msg);
        if (cmd->line == running)
            vg_buf_printf(&msg, "    reason: %s while running this case\n", why);
        else
            vg_buf_printf(&msg, "    reason: not run: %s at line %d\n", why, running);
        add_case(fr, cmd->line, CASE_FAIL, vg_buf_cstr(&msg));
    }
    vg_buf_free(&msg);
}

static void run_in_child(const struct cli *c, const struct tf_file *tf, struct file_res *fr)
{
    /* The child's stores live in a directory the parent removes, so a child that dies
     * leaves nothing behind. */
    const char *base = c->ro.tmpdir ? c->ro.tmpdir : getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/vigil-promqltest-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        fr->error = vg_strdup("cannot create a temporary directory");
        return;
    }
    struct runner_opts ro = c->ro;
    ro.tmpdir = dir;
    int fds[2];
    if (pipe(fds) != 0) {
        runner_rm_tree(dir);
        fr->error = vg_strdup("pipe failed");
        return;
    }
    (void)fflush(stdout); /* so the child does not print the parent's buffer again */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        runner_rm_tree(dir);
        fr->error = vg_strdup("fork failed");
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        struct vg_err err = {0};
        if (runner_run_file(tf, &ro, child_start, child_report, &fds[1], &err) != 0) {
            char hdr[32];
            size_t ml = strlen(err.msg);
            int n = snprintf(hdr, sizeof hdr, "E %zu\n", ml);
            write_all(fds[1], hdr, (size_t)n);
            write_all(fds[1], err.msg, ml);
        }
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    struct vg_buf b;
    vg_buf_init(&b);
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        vg_buf_append(&b, chunk, (size_t)n);
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    runner_rm_tree(dir);
    int running = 0;
    parse_records(b.p ? b.p : "", b.len, fr, &running);
    vg_buf_free(&b);
    if (WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0)) {
        char why[128];
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            snprintf(why, sizeof why, "timed out (over %d s; the runner process was killed)",
                     c->ro.case_timeout_s);
        else if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "the runner process died of signal %d (%s)",
                     WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            snprintf(why, sizeof why, "the runner process exited with status %d",
                     WEXITSTATUS(status));
        account_missing(c, tf, fr, running, why);
    }
}

static void run_path(const struct cli *c, const char *path, struct file_res *fr)
{
    memset(fr, 0, sizeof *fr);
    fr->path = vg_strdup(path);
    if (!fr->path)
        die_oom();
    const char *slash = strrchr(fr->path, '/');
    fr->base = slash ? slash + 1 : fr->path;
    size_t len = 0;
    char *text = read_all(path, &len);
    if (!text) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot read: %s", strerror(errno));
        fr->error = vg_strdup(msg);
        return;
    }
    struct vg_err err = {0};
    struct tf_file *tf = tf_parse(text, len, &err);
    vg_free(text);
    if (!tf) {
        fr->error = vg_strdup(err.msg);
        return;
    }
    if (c->fork) {
        run_in_child(c, tf, fr);
    } else if (runner_run_file(tf, &c->ro, NULL, local_report, fr, &err) != 0) {
        fr->error = vg_strdup(err.msg);
    }
    qsort(fr->v, fr->n, sizeof *fr->v, cmp_case);
    tf_free(tf);
}

/* ---- known-passing list ---- */

struct known {
    char **v; /* "basename:line", sorted */
    size_t n;
};

static int load_known(const char *path, struct known *k)
{
    size_t len;
    char *text = read_all(path, &len);
    if (!text) {
        fprintf(stderr, "vigil-promqltest: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        while (*line == ' ' || *line == '\t')
            line++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n || line[0] == '#')
            continue;
        if (k->n == cap) {
            cap = cap ? cap * 2 : 256;
            k->v = vg_realloc(k->v, cap * sizeof *k->v);
            if (!k->v)
                die_oom();
        }
        k->v[k->n] = vg_strdup(line);
        if (!k->v[k->n++])
            die_oom();
    }
    vg_free(text);
    if (k->n)
        qsort(k->v, k->n, sizeof *k->v, cmp_str);
    return 0;
}

static bool known_has(const struct known *k, const char *key)
{
    return k->n && bsearch(&key, k->v, k->n, sizeof *k->v, cmp_str) != NULL;
}

static const struct case_rec *find_case(const struct file_res *fr, int line)
{
    for (size_t i = 0; i < fr->n; i++)
        if (fr->v[i].line == line)
            return &fr->v[i];
    return NULL;
}

/* Prints the regressions (listed cases of files that ran and did not pass); returns
 * their count. *unlisted gets the passing cases missing from the list. */
static size_t check_known(const struct known *k, const struct file_res *frs, size_t nfr,
                          size_t *unlisted)
{
    size_t regressions = 0;
    *unlisted = 0;
    for (size_t i = 0; i < k->n; i++) {
        const char *colon = strrchr(k->v[i], ':');
        if (!colon)
            continue;
        size_t blen = (size_t)(colon - k->v[i]);
        long line = 0;
        if (!read_long(colon + 1, 0, 1, INT32_MAX, &line, NULL))
            continue; /* not a <file>:<line> entry */
        for (size_t f = 0; f < nfr; f++) {
            if (strlen(frs[f].base) != blen || memcmp(frs[f].base, k->v[i], blen) != 0)
                continue;
            const struct case_rec *cr = find_case(&frs[f], (int)line);
            if (cr && cr->st == CASE_PASS)
                continue;
            printf("REGRESSION: %s (known to pass) %s\n", k->v[i],
                   !cr ? "is no longer a case (file changed? regenerate the list)"
                   : cr->st == CASE_FAIL ? "failed" : "is now unsupported");
            regressions++;
        }
    }
    for (size_t f = 0; f < nfr; f++) {
        for (size_t i = 0; i < frs[f].n; i++) {
            char key[512];
            snprintf(key, sizeof key, "%s:%d", frs[f].base, frs[f].v[i].line);
            if (frs[f].v[i].st == CASE_PASS && !known_has(k, key))
                (*unlisted)++;
        }
    }
    return regressions;
}

static int write_passing(const char *path, const struct file_res *frs, size_t nfr)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "vigil-promqltest: %s: %s\n", path, strerror(errno));
        return -1;
    }
    fputs("# PromQL conformance cases known to pass: <test file>:<line of the eval>.\n"
          "# Generated by vigil-promqltest --write-passing; CI fails when one of these fails.\n",
          f);
    for (size_t i = 0; i < nfr; i++)
        for (size_t k = 0; k < frs[i].n; k++)
            if (frs[i].v[k].st == CASE_PASS)
                fprintf(f, "%s:%d\n", frs[i].base, frs[i].v[k].line);
    return fclose(f) == 0 ? 0 : -1;
}

/* ---- output ---- */

static void print_file(const struct cli *c, const struct file_res *fr, size_t counts[3])
{
    size_t n[3] = { 0, 0, 0 };
    for (size_t i = 0; i < fr->n; i++)
        n[fr->v[i].st]++;
    if (fr->error)
        n[CASE_FAIL]++;
    printf("%s: %zu passed, %zu failed, %zu unsupported\n", fr->path, n[CASE_PASS],
           n[CASE_FAIL], n[CASE_UNSUPPORTED]);
    if (fr->error)
        printf("  error: %s\n", fr->error);
    for (size_t i = 0; i < fr->n; i++) {
        const struct case_rec *cr = &fr->v[i];
        if (cr->st == CASE_FAIL || (c->verbose && cr->st == CASE_UNSUPPORTED))
            printf("  line %d: %s%s", cr->line, cr->st == CASE_UNSUPPORTED ? "(unsupported) " : "",
                   cr->detail ? cr->detail : "\n");
        else if (c->verbose)
            printf("  line %d: passed\n", cr->line);
    }
    for (int k = 0; k < 3; k++)
        counts[k] += n[k];
}

static void usage(void)
{
    puts("usage: vigil-promqltest [options] FILE|DIR...\n"
         "Runs PromQL test files (Prometheus's promqltest format) against Vigil's TSDB and\n"
         "engine. A directory stands for its *.test files.\n"
         "  --known-passing FILE  fail (exit 1) only when a case listed in FILE stops passing\n"
         "  --write-passing FILE  write the cases that passed to FILE (<file>:<line> lines)\n"
         "  --skip-missing        exit 77 (skipped) when an input path does not exist\n"
         "  --line N              run only the eval on line N (loads and clears still run)\n"
         "  --timeout SECONDS     per case (default 60; 0 = none)\n"
         "  --no-at-variants      skip the harness's @-modifier variants of instant cases\n"
         "  --no-range-mode       skip the harness's range-mode check of instant cases\n"
         "  --compact             compact the TSDB after each load (queries read chunks)\n"
         "  --delayed-name-removal  keep __name__ until the end of the query, as Prometheus's\n"
         "                        own test engine does for its shared test files\n"
         "  --no-fork             run in this process (for debuggers; no crash isolation)\n"
         "  --expect-all-fail     exit 0 only when every case failed (the runner's self-test)\n"
         "  -v, --verbose         also list passing and unsupported cases");
}

static int parse_args(int argc, char **argv, struct cli *c)
{
    runner_opts_default(&c->ro);
    c->fork = true;
    char **paths = vg_calloc((size_t)argc, sizeof *paths);
    size_t npaths = 0;
    if (!paths)
        die_oom();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--known-passing") == 0 && has_val)
            c->known_path = argv[++i];
        else if (strcmp(a, "--write-passing") == 0 && has_val)
            c->write_path = argv[++i];
        else if ((strcmp(a, "--line") == 0 || strcmp(a, "--timeout") == 0) && has_val) {
            long v;
            if (!read_long(argv[++i], 0, 0, INT32_MAX, &v, NULL)) {
                fprintf(stderr, "vigil-promqltest: %s needs a whole number, got %s\n", a, argv[i]);
                return 2;
            }
            if (a[2] == 'l')
                c->ro.only_line = (int)v;
            else
                c->ro.case_timeout_s = (int)v;
        }
        else if (strcmp(a, "--skip-missing") == 0)
            c->skip_missing = true;
        else if (strcmp(a, "--no-at-variants") == 0)
            c->ro.at_variants = false;
        else if (strcmp(a, "--no-range-mode") == 0)
            c->ro.range_mode = false;
        else if (strcmp(a, "--delayed-name-removal") == 0)
            c->ro.engine.delayed_name_removal = true;
        else if (strcmp(a, "--compact") == 0)
            c->ro.compact = true;
        else if (strcmp(a, "--expect-all-fail") == 0)
            c->expect_all_fail = true;
        else if (strcmp(a, "--no-fork") == 0)
            c->fork = false;
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
            c->verbose = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            exit(0);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "vigil-promqltest: unknown option %s (see --help)\n", a);
            return 2;
        } else
            paths[npaths++] = argv[i];
    }
    if (!c->fork)
        c->ro.case_timeout_s = 0; /* the alarm would end the whole run */
    if (npaths == 0) {
        usage();
        return 2;
    }
    /* Check every path first so --skip-missing skips before anything runs. */
    int rc = 0;
    for (size_t i = 0; i < npaths && rc == 0; i++)
        rc = add_path(c, paths[i]);
    vg_free(paths);
    return rc;
}

int main(int argc, char **argv)
{
    struct cli c;
    memset(&c, 0, sizeof c);
    int rc = parse_args(argc, argv, &c);
    if (rc != 0)
        return rc;
    vg_log_set_level(VG_LOG_WARN);
    (void)setvbuf(stdout, NULL, _IOLBF, 0); /* best effort: progress shows per file */

    struct known known = { 0 };
    if (c.known_path && load_known(c.known_path, &known) != 0)
        return 2;

    struct file_res *frs = vg_calloc(c.nfiles ? c.nfiles : 1, sizeof *frs);
    if (!frs)
        die_oom();
    size_t counts[3] = { 0, 0, 0 };
    for (size_t i = 0; i < c.nfiles; i++) {
        run_path(&c, c.files[i], &frs[i]);
        print_file(&c, &frs[i], counts);
    }

    int status = counts[CASE_FAIL] ? 1 : 0;
    if (c.known_path) {
        size_t unlisted = 0;
        size_t reg = check_known(&known, frs, c.nfiles, &unlisted);
        printf("known-passing: %zu listed, %zu regressions, %zu passing cases not listed%s\n",
               known.n, reg, unlisted,
               unlisted ? " (regenerate the list with --write-passing)" : "");
        status = reg ? 1 : 0;
    }
    if (c.expect_all_fail)
        status = counts[CASE_PASS] || counts[CASE_UNSUPPORTED] || !counts[CASE_FAIL] ? 1 : 0;
    if (c.write_path && write_passing(c.write_path, frs, c.nfiles) != 0)
        status = 2;
    printf("unsupported: %zu\n", counts[CASE_UNSUPPORTED]);
    printf("%zu passed, %zu failed\n", counts[CASE_PASS], counts[CASE_FAIL]);

    for (size_t i = 0; i < c.nfiles; i++) {
        for (size_t k = 0; k < frs[i].n; k++)
            vg_free(frs[i].v[k].detail);
        vg_free(frs[i].v);
        vg_free(frs[i].path);
        vg_free(frs[i].error);
        vg_free(c.files[i]);
    }
    for (size_t i = 0; i < known.n; i++)
        vg_free(known.v[i]);
    vg_free(known.v);
    vg_free(frs);
    vg_free(c.files);
    return status;
}
