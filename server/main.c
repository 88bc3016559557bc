/* main: flags and subcommands, signals, graceful shutdown. The server itself is the
 * library behind vigil.h; this file only wires it.
 *
 *   vigil [serve] [--config FILE] [--data-dir DIR] [--http-addr HOST:PORT]
 *                 [--grpc-addr HOST:PORT] [--log-level LEVEL] [--retention DURATION]
 *   vigil check-config FILE
 *   vigil check-rules [--lint-fatal] FILE...
 *   vigil tsdb dump [--data-dir DIR] [--match SELECTOR] [--config FILE]
 *   vigil logs dump [--data-dir DIR] [--match SELECTOR] [--config FILE]
 *   vigil version */
#include "../storage/base/vg_buf.h"
#include "../storage/base/vg_log.h"
#include "config.h"
#include "dump.h"
#include "logs_dump.h"
#include "rules/rulefile.h"
#include "rules/rules.h"
#include "scrape/scrape.h"
#include "vigil.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* How often the idle main thread hands freed heap pages back to the system. Short,
 * because what a burst of requests freed stays resident until the next trim (measured
 * right after a 50k-series load: 1-5 MB of VmRSS); one trim took 1-8 ms during that
 * load on a busy 2-core machine, i.e. well under 1% of a core. */
#define TRIM_INTERVAL_S 2

static void usage(FILE *out)
{
    fprintf(out,
            "Vigil %s: metrics, logs and traces in one server.\n\n"
            "Usage:\n"
            "  vigil [serve] [flags]          run the server (the default)\n"
            "  vigil check-config FILE        validate a config file\n"
            "  vigil check-rules FILE...      validate Prometheus rule files (as promtool;\n"
            "                                 --lint-fatal first: duplicate rules exit 3)\n"
            "  vigil tsdb dump [flags]        print stored samples (server stopped)\n"
            "  vigil logs dump [flags]        print stored log lines (server stopped)\n"
            "  vigil version                  print the version\n\n"
            "Flags (override the config file):\n"
            "  --config FILE          YAML config; without it the embedded defaults apply\n"
            "  --data-dir DIR         storage.data_dir (default ./data)\n"
            "  --http-addr HOST:PORT  server.http_addr (default 0.0.0.0:4318)\n"
            "  --grpc-addr HOST:PORT  server.grpc_addr (default 0.0.0.0:4317)\n"
            "  --log-level LEVEL      server.log_level: debug, info, warn, error\n"
            "  --retention DURATION   storage.retention (default 15d)\n"
            "  --match SELECTOR       with tsdb or logs dump: only matching series or streams\n\n"
            "Config keys:\n",
            VIGIL_VERSION);
    struct vg_buf b;
    vg_buf_init(&b);
    config_reference(&b);
    if (b.p)
        fputs(b.p, out);
    vg_buf_free(&b);
}

struct flags {
    const char *config;
    const char *match;
    /* config overrides as "section.key" = value, applied in order after the file */
    const char *keys[8];
    const char *values[8];
    int n;
};

static int parse_flags(int argc, char **argv, struct flags *f)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "data-dir", required_argument, NULL, 'd' },
        { "http-addr", required_argument, NULL, 'H' },
        { "grpc-addr", required_argument, NULL, 'G' },
        { "log-level", required_argument, NULL, 'l' },
        { "retention", required_argument, NULL, 'r' },
        { "match", required_argument, NULL, 'm' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        const char *key = NULL;
        switch (c) {
        case 'c': f->config = optarg; break;
        case 'm': f->match = optarg; break;
        case 'd': key = "storage.data_dir"; break;
        case 'H': key = "server.http_addr"; break;
        case 'G': key = "server.grpc_addr"; break;
        case 'l': key = "server.log_level"; break;
        case 'r': key = "storage.retention"; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
        if (key && f->n < 8) {
            f->keys[f->n] = key;
            f->values[f->n++] = optarg;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil: unexpected argument \"%s\"\n", argv[optind]);
        return 2;
    }
    return 0;
}

static struct config *load_config(const struct flags *f)
{
    struct vg_err err;
    struct config *cfg = f->config ? config_load_file(f->config, &err) : config_default();
    if (!cfg) {
        fprintf(stderr, "vigil: %s\n", f->config ? err.msg : "out of memory");
        return NULL;
    }
    for (int i = 0; i < f->n; i++) {
        if (config_set(cfg, f->keys[i], f->values[i], &err) < 0) {
            fprintf(stderr, "vigil: flag: %s\n", err.msg);
            config_free(cfg);
            return NULL;
        }
    }
    enum vg_log_level lvl;
    if (vg_log_parse_level(cfg->log_level, &lvl) < 0) {
        fprintf(stderr, "vigil: server.log_level: unknown level \"%s\" (debug, info, warn, error)\n",
                cfg->log_level);
        config_free(cfg);
        return NULL;
    }
    vg_log_set_level(lvl);
    return cfg;
}

/* glibc's allocator gives every thread that contends for a lock an arena of its own,
 * up to 8 per core, and keeps the pages freed in each: with 8 HTTP + 4 gRPC worker
 * threads, LevelDB's memtables (allocated by whichever writer leads a group commit)
 * and per-request buffers left tens of MiB resident per arena after the load moved
 * on (measured: 50k series x 480 samples, RSS 116 MiB with the default, 67 MiB with
 * two arenas, same ingest rate). One arena is smaller again: with two, which threads
 * share an arena is chance, and each arena keeps its own free chunks (50k series x 480
 * samples, VmRSS after the load, two runs each: 52.3 / 52.8 MB with one arena, 56.8 /
 * 58.3 MB with two; no measurable change in samples/s on 2 cores, where the ingest
 * path holds the head mutex for most of an append anyway). A user's own
 * GLIBC_TUNABLES arena setting wins.
 *
 * Fixed mmap and trim thresholds: by default glibc raises both each time a block it had
 * mmapped is freed (the trim threshold to twice that block, up to 64 MiB), so after
 * LevelDB freed a few MiB once, the free memory at the top of the heap, where each
 * request's buffers end up, stayed resident until the next malloc_trim. Blocks under
 * 256 KiB (a remote-write request's largest are about 150 KiB) stay on the heap, so a
 * request costs no mmap; a free top of more than 128 KiB goes back at once. Measured
 * (50k series x 160 samples x 3 rounds, right after the load): heap 19.7-24.4 MB, mean
 * 21.3 over 5 runs, instead of 21.2-27.0 MB, mean 24.3 over 6; server CPU for the load
 * 9.5-10.7 s against 9.2-11.9 s. GLIBC_TUNABLES settings of either win. */
static void tune_malloc(void)
{
#ifdef __GLIBC__
    const char *t = getenv("GLIBC_TUNABLES");
    if (!t || !strstr(t, "arena_max"))
        mallopt(M_ARENA_MAX, 1);
    if (!t || (!strstr(t, "mmap_threshold") && !strstr(t, "trim_threshold"))) {
        mallopt(M_MMAP_THRESHOLD, 256 << 10);
        mallopt(M_TRIM_THRESHOLD, 128 << 10);
    }
#endif
}

/* Returns freed heap pages to the system (the top of each arena and whole free pages
 * inside it). glibc only trims the top of the main heap by itself. */
static void trim_heap(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static int cmd_serve(int argc, char **argv)
{
    struct flags f = { 0 };
    int rc = parse_flags(argc, argv, &f);
    if (rc)
        return rc == 1 ? 0 : 2;
    struct config *cfg = load_config(&f);
    if (!cfg)
        return 2;

    /* Signals are taken synchronously by this thread; every other thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    tune_malloc();
    struct vg_err err;
    struct vigil *v = vigil_start(cfg, &err);
    if (!v) {
        vg_log(VG_LOG_ERROR, "vigil", "cannot start", "error", err.msg, NULL);
        config_free(cfg);
        return 1;
    }
    const struct timespec tick = { .tv_sec = TRIM_INTERVAL_S };
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig < 0) {
            trim_heap(); /* timeout (or EINTR): nothing to stop for */
            continue;
        }
        if (sig == SIGHUP) {
            struct vg_err rerr; /* rules_reload logs the outcome itself */
            if (v->rules)
                (void)rules_reload(v->rules, &rerr);
            if (v->scrape_state)
                (void)scrape_reload(v->scrape_state, &rerr);
            continue;
        }
        vg_log(VG_LOG_INFO, "vigil", "shutting down", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM", NULL);
        break;
    }
    vigil_stop(v);
    config_free(cfg);
    vg_log(VG_LOG_INFO, "vigil", "stopped", NULL);
    return 0;
}

static int cmd_check_config(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vigil check-config FILE\n");
        return 2;
    }
    struct vg_err err;
    struct config *cfg = config_load_file(argv[1], &err);
    if (!cfg) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    enum vg_log_level lvl;
    if (vg_log_parse_level(cfg->log_level, &lvl) < 0) {
        fprintf(stderr, "%s: server.log_level: unknown level \"%s\" (debug, info, warn, error)\n",
                argv[1], cfg->log_level);
        config_free(cfg);
        return 1;
    }
    if (vigil_check_config(cfg, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        config_free(cfg);
        return 1;
    }
    printf("%s: OK\n", argv[1]);
    config_free(cfg);
    return 0;
}

/* `vigil check-rules [--lint-fatal] FILE...`: promtool check rules's output and exit
 * status: 1 when a file has errors; duplicate rules are a lint finding, reported as
 * FAILED but exiting 0, or 3 with --lint-fatal (promtool's lint exit code). */
static int cmd_check_rules(int argc, char **argv)
{
    bool lint_fatal = argc > 1 && !strcmp(argv[1], "--lint-fatal");
    if (lint_fatal)
        argc--, argv++;
    if (argc < 2) {
        fprintf(stderr, "usage: vigil check-rules [--lint-fatal] FILE...\n");
        return 2;
    }
    int failed = 0;
    bool lint = false;
    for (int i = 1; i < argc; i++) {
        printf("Checking %s\n", argv[i]);
        (void)fflush(stdout); /* order with stderr only; nothing is lost if it fails */
        struct rule_file *f = NULL;
        struct vg_buf errs;
        struct vg_err err;
        vg_buf_init(&errs);
        if (rulefile_load(argv[i], &f, &errs, &err) == 0) {
            if (rulefile_duplicates(f, &errs)) {
                const char *e = vg_buf_cstr(&errs);
                fprintf(stderr, "  FAILED:\nlint error %s\n", e ? e : "out of memory");
                lint = true;
            } else {
                printf("  SUCCESS: %zu rules found\n\n", f->nrules);
            }
        } else {
            const char *e = vg_buf_cstr(&errs);
            fprintf(stderr, "  FAILED:\n%s\n", e && *e ? e : err.msg);
            failed = 1;
        }
        rulefile_free(f);
        vg_buf_free(&errs);
    }
    return failed ? 1 : lint && lint_fatal ? 3 : 0;
}

typedef int (*dump_fn)(const struct config *cfg, const char *selector, FILE *out,
                       struct vg_err *err);

/* `vigil tsdb dump` and `vigil logs dump`: the same flags over a different store. */
static int cmd_dump(int argc, char **argv, const char *store, dump_fn dump)
{
    if (argc < 2 || strcmp(argv[1], "dump") != 0) {
        fprintf(stderr, "usage: vigil %s dump [--data-dir DIR] [--match SELECTOR]\n", store);
        return 2;
    }
    struct flags f = { 0 };
    int rc = parse_flags(argc - 1, argv + 1, &f);
    if (rc)
        return rc == 1 ? 0 : 2;
    struct config *cfg = load_config(&f);
    if (!cfg)
        return 2;
    struct vg_err err;
    rc = dump(cfg, f.match, stdout, &err);
    if (rc < 0)
        fprintf(stderr, "vigil: %s dump: %s\n", store, err.msg);
    config_free(cfg);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("vigil %s\n", VIGIL_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "check-config"))
        return cmd_check_config(argc - 1, argv + 1);
    if (!strcmp(cmd, "check-rules"))
        return cmd_check_rules(argc - 1, argv + 1);
    if (!strcmp(cmd, "tsdb"))
        return cmd_dump(argc - 1, argv + 1, "tsdb", vigil_dump);
    if (!strcmp(cmd, "logs"))
        return cmd_dump(argc - 1, argv + 1, "logs", vigil_logs_dump);
    if (!strcmp(cmd, "serve"))
        return cmd_serve(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cmd_serve(argc, argv);
    fprintf(stderr, "vigil: unknown command \"%s\" (serve, check-config, check-rules, tsdb dump, logs dump, version)\n", cmd);
    return 2;
}
