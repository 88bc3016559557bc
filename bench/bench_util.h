/* bench_util: what the benchmark programs share: a monotonic clock, the size of a
 * directory tree, removing one, /proc/self/status fields, and number arguments that
 * refuse junk instead of reading it as 0, and the callgrind collection toggle. Static
 * inline: each program includes it once. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The callgrind harnesses toggle collection around their measured part; without
 * valgrind's headers the toggle does nothing and they still build and run. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_TOGGLE_COLLECT
#endif

static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* nftw has no user pointer; benchmarks are single-threaded where they measure disk. */
static uint64_t bench_tree_bytes_acc;

static inline int bench_tree_add(const char *path, const struct stat *st, int type,
                                 struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F)
        bench_tree_bytes_acc += (uint64_t)st->st_size;
    return 0;
}

/* Bytes of the regular files below dir (what `du -sb` counts, without block rounding). */
static inline uint64_t bench_tree_bytes(const char *dir)
{
    bench_tree_bytes_acc = 0;
    if (nftw(dir, bench_tree_add, 16, FTW_PHYS) != 0)
        return 0;
    return bench_tree_bytes_acc;
}

static inline int bench_rm_one(const char *path, const struct stat *st, int type,
                               struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

/* rm -rf dir; 0 or -1. */
static inline int bench_rm_tree(const char *dir)
{
    return nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A "Field:   123 kB" line of /proc/self/status in kB, or -1. */
static inline long bench_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl))
            v = strtol(line + fl, NULL, 10);
    if (f)
        (void)fclose(f); /* read-only */
    return v;
}

/* Numbers from the command line or environment; junk exits with a message. */
static inline double bench_arg_double(const char *what, const char *s)
{
    char *end;
    if (!s) {
        fprintf(stderr, "%s: missing\n", what);
        exit(2);
    }
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "%s: not a number: \"%s\"\n", what, s);
        exit(2);
    }
    return v;
}

static inline long long bench_arg_int(const char *what, const char *s)
{
    char *end;
    if (!s) {
        fprintf(stderr, "%s: missing\n", what);
        exit(2);
    }
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, "%s: not an integer: \"%s\"\n", what, s);
        exit(2);
    }
    return v;
}

#endif
