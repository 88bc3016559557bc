/* logstore_compact: opens a stopped server's log store (DATA_DIR/logs) and compacts it:
 * every head written as a chunk, write-ahead records no longer needed dropped, then a
 * LevelDB compaction of the whole database, so that `du` measures what the data costs
 * at rest rather than deleted records LevelDB has not yet reclaimed. Used by
 * bench/logs_bench.sh for the compression figure.
 *
 *   logstore_compact DIR        (the logs store directory; the server must be stopped)
 *
 * Prints "RESULT bytes_before=<n> bytes_after=<n>" (regular files under DIR). */
#include "../storage/logstore/logstore.h"
#include "bench_util.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: logstore_compact DIR\n");
        return 2;
    }
    uint64_t before = bench_tree_bytes(argv[1]);
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = argv[1];
    o.maint_interval_ms = 0;
    o.retention_ns = 0; /* measure, never delete */
    struct vg_err err;
    struct logstore *ls = logstore_open(&o, &err);
    if (!ls) {
        fprintf(stderr, "logstore_compact: %s\n", err.msg);
        return 1;
    }
    int rc = logstore_compact(ls, &err);
    if (rc < 0)
        fprintf(stderr, "logstore_compact: %s\n", err.msg);
    logstore_close(ls);
    printf("RESULT bytes_before=%llu bytes_after=%llu\n", (unsigned long long)before,
           (unsigned long long)bench_tree_bytes(argv[1]));
    return rc < 0 ? 1 : 0;
}
