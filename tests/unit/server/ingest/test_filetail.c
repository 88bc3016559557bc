/* Tests server/ingest/filetail.c, the file collector module, in-process: a real log
 * store and data dir in a temporary directory, files written by the test, the module's
 * init/free hooks (a free and a new init is a restart) and filetail_sync to wait for a
 * complete poll. Checks parsing (nginx_combined fields as metadata, labels_from_fields,
 * the filename label, unparsable lines stored raw and counted), start_at, partial lines
 * (waiting, then the timeout), multiline records, rotation by rename and by copy-truncate
 * while lines are being written, restarts that neither lose nor repeat lines (with
 * partial lines and unfinished records pending at the stop, and a file rotated while
 * stopped), per-source processors, the positions file, and config errors with lines. */
#include "log_fixture.h"

#include "../../../../server/ingest/filetail.h"

#include <fcntl.h>
#include <sys/stat.h>

static char files[128];    /* <fx.dir>/files: where the tailed files live */
static bool running;

/* Starts the module with yaml (printf format; "@" stands for the files directory). */
static void start_cfg(const char *yaml)
{
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "storage:\n  data_dir: %s\n", fx.dir);
    for (const char *p = yaml; *p; p++) {
        if (*p == '@')
            n += (size_t)snprintf(text + n, sizeof text - n, "%s", files);
        else
            text[n++] = *p;
        cr_assert_lt(n, sizeof text - 1);
    }
    text[n] = 0;
    config_free(fx.cfg);
    fx.cfg = config_load_buf("t.yml", text, n, &err);
    cr_assert_not_null(fx.cfg, "%s", err.msg);
    fx.v.cfg = fx.cfg;
    ingest_metrics_free(&fx.v);
    cr_assert_eq(ingest_metrics_init(&fx.v, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_filetail.check(fx.cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_filetail.init(&fx.v, &err), 0, "%s", err.msg);
    running = true;
}

static void stop(void)
{
    if (running)
        mod_filetail.free(&fx.v);
    running = false;
}

static void setup(void)
{
    logfx_setup();
    snprintf(files, sizeof files, "%s/files", fx.dir);
    cr_assert_eq(mkdir(files, 0755), 0);
    running = false;
}

static void teardown(void)
{
    stop();
    logfx_teardown();
}

TestSuite(filetail_mod, .init = setup, .fini = teardown, .timeout = 60);

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", files, name);
}

/* Appends text to files/name (created if missing). */
static void append(const char *name, const char *text)
{
    char p[256];
    path_of(p, sizeof p, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void write_line(int fd, int i)
{
    char b[32];
    int n = snprintf(b, sizeof b, "line-%d\n", i);
    cr_assert_eq(write(fd, b, (size_t)n), n);
}

static int open_log(const char *name, int flags)
{
    char p[256];
    path_of(p, sizeof p, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | flags, 0644);
    cr_assert_geq(fd, 0);
    return fd;
}

/* Stored entries whose line is exactly text. */
static size_t count_line(const char *text)
{
    char want[64];
    snprintf(want, sizeof want, " %s|", text);
    size_t n = 0;
    for (const char *p = logfx_stored(); (p = strstr(p, want)); p++)
        n++;
    return n;
}

/* Every line-<from..to> is stored exactly once, and nothing else with "line-". */
static void expect_each_once(int from, int to)
{
    logfx_stored();
    for (int i = from; i <= to; i++) {
        char t[32];
        snprintf(t, sizeof t, "line-%d", i);
        size_t n = count_line(t);
        cr_assert_eq(n, 1, "%s stored %zu times; store:\n%s", t, n, dump.p);
    }
    size_t total = 0;
    for (const char *p = dump.p; (p = strstr(p, " line-")); p++)
        total++;
    cr_assert_eq(total, (size_t)(to - from + 1), "store:\n%s", dump.p);
}

/* An nginx combined line stamped now (CLF, UTC). */
static void nginx_line(char *out, size_t cap, const char *method, const char *path, int status)
{
    time_t t = (time_t)(now / 1000000000LL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char ts[64];
    strftime(ts, sizeof ts, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    snprintf(out, cap, "127.0.0.1 - - [%s] \"%s %s HTTP/1.1\" %d 612 \"-\" \"curl/8.1\"\n", ts,
             method, path, status);
}

Test(filetail_mod, nginx_fields_labels_and_unparsable_lines)
{
    char l1[256], l2[256], all[600];
    nginx_line(l1, sizeof l1, "GET", "/index.html", 200);
    nginx_line(l2, sizeof l2, "POST", "/api/login", 500);
    snprintf(all, sizeof all, "%s%sgarbage line\n", l1, l2);
    append("access.log", all);
    start_cfg("log_files:\n"
              "  - name: web\n"
              "    paths: ['@/*.log']\n"
              "    labels: {job: nginx}\n"
              "    parser: nginx_combined\n"
              "    labels_from_fields: [status]\n"
              "    start_at: beginning\n");
    filetail_sync(&fx.v);
    char want[4096];
    int64_t t = now;
    l1[strlen(l1) - 1] = l2[strlen(l2) - 1] = 0;
    snprintf(want, sizeof want,
             "filename=%s/access.log,job=nginx,status=200 %" PRId64 " %s|remote_addr=127.0.0.1,"
             "time_local=%.26s,request=GET /index.html HTTP/1.1,method=GET,path=/index.html,"
             "protocol=HTTP/1.1,body_bytes_sent=612,http_user_agent=curl/8.1\n"
             "filename=%s/access.log,job=nginx,status=500 %" PRId64 " %s|remote_addr=127.0.0.1,"
             "time_local=%.26s,request=POST /api/login HTTP/1.1,method=POST,path=/api/login,"
             "protocol=HTTP/1.1,body_bytes_sent=612,http_user_agent=curl/8.1\n",
             files, t, l1, strchr(l1, '[') + 1, files, t, l2, strchr(l2, '[') + 1);
    const char *got = logfx_stored();
    cr_assert(strstr(got, want), "want:\n%s\ngot:\n%s", want, got);
    cr_assert(strstr(got, " garbage line|parse_error="), "%s", got);
    cr_assert(logfx_counted(&fx, "vigil_filetail_lines_unparsable_total{source=\"web\""));
    cr_assert(logfx_counted(&fx, "vigil_filetail_records_total{source=\"web\"} 3"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_accepted_total{receiver=\"filetail\"} 3"));
    cr_assert(logfx_counted(&fx, "vigil_filetail_files_open 1"));
}

Test(filetail_mod, start_at_end_skips_what_is_there)
{
    append("a.log", "line-0\n");
    start_cfg("log_files:\n  - paths: '@/a.log'\n    labels: {job: x}\n");
    filetail_sync(&fx.v);
    append("a.log", "line-1\nline-2\n");
    filetail_sync(&fx.v);
    expect_each_once(1, 2);
}

Test(filetail_mod, new_files_after_start_are_read_from_their_beginning)
{
    start_cfg("log_files:\n  - paths: '@/*.log'\n    labels: {job: x}\n");
    filetail_sync(&fx.v);
    append("late.log", "line-1\nline-2\n");
    filetail_sync(&fx.v);
    expect_each_once(1, 2);
}

Test(filetail_mod, partial_line_waits_then_times_out)
{
    start_cfg("log_files:\n  - paths: '@/a.log'\n    labels: {job: x}\n"
              "    start_at: beginning\n    partial_line_timeout: 500ms\n");
    append("a.log", "line-1\nli");
    filetail_sync(&fx.v);
    expect_each_once(1, 1);
    append("a.log", "ne-2\nline-3");
    filetail_sync(&fx.v);
    expect_each_once(1, 2);
    usleep(600 * 1000);
    filetail_sync(&fx.v);
    expect_each_once(1, 3);
    /* what comes after a line that went out on the timeout is a line of its own */
    append("a.log", "x\n");
    filetail_sync(&fx.v);
    cr_assert_eq(count_line("x"), 1, "%s", dump.p);
}

Test(filetail_mod, multiline_records)
{
    start_cfg("log_files:\n  - paths: '@/app.log'\n    labels: {job: app}\n"
              "    start_at: beginning\n"
              "    multiline: {start: '^\\d{4}-', timeout: 500ms}\n");
    append("app.log", "2024-01-01 boom\n  at a()\n  at b()\n2024-01-01 next\n");
    filetail_sync(&fx.v);
    const char *got = logfx_stored();
    cr_assert(strstr(got, " 2024-01-01 boom\n  at a()\n  at b()|"), "%s", got);
    /* one entry so far (the next record waits): its two inner newlines and the end */
    cr_assert_eq(logfx_count(&fx), 3, "%s", got);
    usleep(600 * 1000);
    filetail_sync(&fx.v);
    filetail_sync(&fx.v);
    cr_assert(strstr(logfx_stored(), " 2024-01-01 next|"), "%s", dump.p);
}

Test(filetail_mod, rotation_by_rename_while_writing)
{
    start_cfg("log_files:\n  - paths: '@/*.log'\n    labels: {job: x}\n"
              "    start_at: beginning\n");
    int fd = open_log("a.log", 0);
    for (int i = 1; i <= 300; i++) {
        write_line(fd, i);
        if (i == 10) /* the file is known before it is rotated out of the globs */
            filetail_sync(&fx.v);
        if (i % 50 == 0)
            usleep(20 * 1000); /* let the poller catch some of it on its own */
        if (i == 150) {
            char from[256], to[256];
            path_of(from, sizeof from, "a.log");
            path_of(to, sizeof to, "a.log.1"); /* outside the glob */
            cr_assert_eq(rename(from, to), 0);
        }
        if (i == 180) { /* the writer reopens (nginx -s reopen) */
            close(fd);
            fd = open_log("a.log", 0);
        }
    }
    close(fd);
    filetail_sync(&fx.v);
    expect_each_once(1, 300);
    usleep(1200 * 1000);
    filetail_sync(&fx.v);
    filetail_sync(&fx.v);
    cr_assert(logfx_counted(&fx, "vigil_filetail_files_open 1"), "the old file is closed");
    cr_assert(logfx_counted(&fx, "vigil_filetail_rotations_total{source=\"log_files[0]\",kind=\"rename\"} 1"));
    expect_each_once(1, 300);
}

Test(filetail_mod, rotation_by_copy_truncate)
{
    start_cfg("log_files:\n  - paths: '@/a.log'\n    labels: {job: x}\n"
              "    start_at: beginning\n");
    int fd = open_log("a.log", 0);
    for (int i = 1; i <= 100; i++)
        write_line(fd, i);
    filetail_sync(&fx.v);
    char p[256];
    path_of(p, sizeof p, "a.log");
    cr_assert_eq(truncate(p, 0), 0); /* logrotate copytruncate, after copying */
    for (int i = 101; i <= 105; i++)
        write_line(fd, i); /* O_APPEND: the writer goes on at the new end */
    filetail_sync(&fx.v);
    close(fd);
    expect_each_once(1, 105);
    cr_assert(logfx_counted(&fx, "vigil_filetail_rotations_total{source=\"log_files[0]\",kind=\"truncate\"} 1"));
}

Test(filetail_mod, restart_neither_loses_nor_repeats)
{
    const char *cfg = "log_files:\n  - name: app\n    paths: '@/*.log'\n    labels: {job: x}\n"
                      "    partial_line_timeout: 0s\n";
    append("a.log", "line-0\n"); /* before the first start: start_at end skips it */
    start_cfg(cfg);
    filetail_sync(&fx.v);
    int fd = open_log("a.log", 0);
    for (int i = 1; i <= 40; i++)
        write_line(fd, i);
    cr_assert_eq(write(fd, "line-4", 6), 6); /* a partial line at the stop */
    filetail_sync(&fx.v);
    stop();
    cr_assert_eq(write(fd, "1\n", 2), 2);
    for (int i = 42; i <= 60; i++)
        write_line(fd, i);
    start_cfg(cfg); /* resumes at the saved offset, not at the end */
    filetail_sync(&fx.v);
    for (int i = 61; i <= 80; i++)
        write_line(fd, i);
    filetail_sync(&fx.v);
    stop();
    /* rotated while stopped: the new file at the known path is read from 0 */
    char from[256], to[256];
    path_of(from, sizeof from, "a.log");
    path_of(to, sizeof to, "a.log.old");
    cr_assert_eq(rename(from, to), 0);
    close(fd);
    fd = open_log("a.log", 0);
    for (int i = 81; i <= 90; i++)
        write_line(fd, i);
    close(fd);
    start_cfg(cfg);
    filetail_sync(&fx.v);
    expect_each_once(1, 90);
    char pos[256];
    snprintf(pos, sizeof pos, "%s/positions", fx.dir);
    FILE *f = fopen(pos, "r");
    cr_assert_not_null(f);
    char line[512];
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "vigil-filetail-positions 1\n");
    cr_assert_not_null(fgets(line, sizeof line, f));
    char want[300];
    snprintf(want, sizeof want, "\t%s/a.log\n", files);
    cr_assert(!strncmp(line, "app\t", 4) && strstr(line, want), "%s", line);
    fclose(f);
}

Test(filetail_mod, restart_with_an_unfinished_multiline_record)
{
    const char *cfg = "log_files:\n  - paths: '@/a.log'\n    labels: {job: x}\n"
                      "    start_at: beginning\n    multiline: {start: '^line'}\n";
    start_cfg(cfg);
    append("a.log", "line-1\nline-2\n  more\n");
    filetail_sync(&fx.v);
    stop(); /* line-2's record is unfinished: not stored, not committed */
    append("a.log", "  more\nline-3\n");
    start_cfg(cfg);
    filetail_sync(&fx.v);
    cr_assert_eq(count_line("line-1"), 1);
    cr_assert(strstr(logfx_stored(), " line-2\n  more\n  more|"), "%s", dump.p);
    cr_assert_eq(count_line("line-3"), 0, "line-3 waits for the timeout or the next start");
}

Test(filetail_mod, source_processors_drop_and_rate_limit)
{
    start_cfg("log_files:\n  - name: app\n    paths: '@/a.log'\n    labels: {job: x}\n"
              "    start_at: beginning\n    parser: logfmt\n"
              "    processors:\n"
              "      - min_level: info\n"
              "      - rate_limit: {lines_per_second: 1, burst: 3}\n");
    append("a.log", "level=debug msg=a\nlevel=info msg=b\nlevel=error msg=c\nlevel=info msg=d\n"
                    "level=info msg=e\nlevel=info msg=f\n");
    filetail_sync(&fx.v);
    cr_assert_eq(logfx_count(&fx), 3, "%s", logfx_stored());
    cr_assert(logfx_counted(&fx, "vigil_logproc_dropped_total{source=\"app\",reason=\"level\"} 1"));
    cr_assert(logfx_counted(&fx, "vigil_logproc_dropped_total{source=\"app\",reason=\"rate_limit\"} 2"));
    /* dropped records still move the offset: a restart does not read them again */
    stop();
    start_cfg("log_files:\n  - name: app\n    paths: '@/a.log'\n    labels: {job: x}\n"
              "    start_at: beginning\n    parser: logfmt\n");
    filetail_sync(&fx.v);
    cr_assert_eq(logfx_count(&fx), 3, "%s", logfx_stored());
}

Test(filetail_mod, config_errors_name_file_and_line)
{
    static const struct { const char *yaml, *want; } cases[] = {
        { "log_files:\n  - labels: {job: x}\n",
          "t.yml:2: log_files[0].paths: at least one path or glob is required" },
        { "log_files:\n  - paths: [/a]\n    parser: apache2\n",
          "t.yml:3: log_files[0].parser: " },
        { "log_files:\n  - paths: [/a]\n    parser: regex\n",
          "t.yml:3: log_files[0].regex: required by parser regex" },
        { "log_files:\n  - paths: [/a]\n    regex: '(?P<a>x)'\n",
          "t.yml:3: log_files[0].regex: needs a parser" },
        { "log_files:\n  - paths: [/a]\n    parser: regex\n    regex: 'a('\n",
          "t.yml:3: log_files[0].parser: pattern: invalid regex" },
        { "log_files:\n  - paths: [/a]\n    multiline: {start: '('}\n",
          "t.yml:3: log_files[0].multiline.start: invalid regex" },
        { "log_files:\n  - paths: [/a]\n    multiline: {max_lines: 3}\n",
          "t.yml:3: log_files[0].multiline: start is required" },
        { "log_files:\n  - paths: [a.log]\n",
          "t.yml:2: log_files[0].paths[0]: \"a.log\" is not an absolute path" },
        { "log_files:\n  - paths: [/a]\n    start_at: middle\n",
          "t.yml:3: log_files[0].start_at: expected end or beginning" },
        { "log_files:\n  - paths: [/a]\n    labels: {filename: x}\n",
          "t.yml:3: log_files[0].labels: \"filename\" is not a valid label name here" },
        { "log_files:\n  - paths: [/a]\n    labels_from_fields: [status]\n",
          "t.yml:3: log_files[0].labels_from_fields: needs a parser" },
        { "log_files:\n  - paths: [/a]\n    tail: yes\n",
          "t.yml:3: log_files[0]: unknown key \"tail\"" },
        { "log_files:\n  - paths: [/a]\n    timestamp: {field: t, format: '%Q'}\n    parser: json\n",
          "log_files[0].parser: time_format" },
        { "log_files:\n  - paths: [/a]\n  - paths: [/b]\n    name: log_files[0]\n",
          "t.yml:3: log_files[1].name: \"log_files[0]\" is the name of log_files[0] too" },
        { "log_files:\n  - paths: [/a]\n    processors:\n      - keep: {}\n",
          "t.yml:4: log_files[0].processors[0].keep: regex is required" },
        { "log_files:\n  - paths: [/a]\n    partial_line_timeout: soon\n",
          "t.yml:3: log_files[0].partial_line_timeout: " },
        { "log_processors:\n  - drop: {regex: '['}\n",
          "t.yml:2: log_processors[0].drop.regex: invalid regex" },
        { "log_files: {paths: [/a]}\n",
          "t.yml:1: log_files: expected a list of sources" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config *c = config_load_buf("t.yml", cases[i].yaml, strlen(cases[i].yaml), &err);
        cr_assert_not_null(c, "case %zu: %s", i, err.msg);
        vg_err_clear(&err);
        cr_assert_eq(mod_filetail.check(c, &err), VG_EINVAL, "case %zu passed", i);
        cr_assert(strstr(err.msg, cases[i].want), "case %zu: %s", i, err.msg);
        config_free(c);
    }
}

Test(filetail_mod, no_block_starts_nothing)
{
    cr_assert_eq(mod_filetail.check(fx.cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_filetail.init(&fx.v, &err), 0, "%s", err.msg);
    cr_assert_null(fx.v.filetail_state);
    filetail_sync(&fx.v);
    mod_filetail.free(&fx.v);
}
