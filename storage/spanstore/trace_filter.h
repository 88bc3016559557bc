/* trace_filter: which trace ids may have a summary in the span store.
 *
 * Every write reads the summary of each of its traces ('T' trace id) to merge late
 * spans into it; nearly all of those reads are for new traces and find nothing, yet
 * LevelDB answers "not found" only after walking its memtable (a 32 MiB skip list:
 * a cache miss per level) and checking every table's filter: 9% of the server's CPU
 * while ingesting spans (perf, 1 M spans over gRPC). This filter answers most of them
 * from one cache line.
 *
 * A blocked Bloom filter (each id sets 4 bits of one 512-bit block) of every trace id
 * the store holds: no false negatives (an id it has never been given may still answer
 * "maybe", about 3% of them; the store then reads as before). It is filled twice over:
 * the store adds each trace id before writing its summary, and a scan of the stored
 * summaries (started at open, from a snapshot taken after the filter existed) adds the
 * ones written before; until that scan ends, trace_filter_maybe answers "maybe" for
 * every id. When full it adds a part four times larger (lookups check every part, so at
 * most TRACE_FILTER_PARTS); past the last part it answers "maybe" for everything until
 * the next open, which sizes the first part from the store's trace count. Trace ids
 * retention deletes stay in the filter (costing only reads) until the next open.
 *
 * Thread safety: add and maybe may run from any threads at once (atomic bit sets);
 * whoever adds an id before another thread's lookup of it is ordered by the caller (the
 * span store holds the trace's stripe lock). trace_filter_ready and free are the
 * store's. */
#ifndef TRACE_FILTER_H
#define TRACE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACE_FILTER_PARTS 6

struct trace_filter;

/* A filter sized for about `expect` ids (at least a minimum), not yet ready. NULL when
 * out of memory. */
struct trace_filter *trace_filter_new(uint64_t expect);
/* The same with at most max_parts parts (1..TRACE_FILTER_PARTS; tests of overflow). */
struct trace_filter *trace_filter_new_parts(uint64_t expect, size_t max_parts);
void trace_filter_free(struct trace_filter *f); /* accepts NULL */

/* Adds a 16-byte trace id. */
void trace_filter_add(struct trace_filter *f, const uint8_t *tid);
/* False only when the filter is ready and tid was never added. */
bool trace_filter_maybe(const struct trace_filter *f, const uint8_t *tid);
/* Marks the filter complete: every stored id has been added. */
void trace_filter_set_ready(struct trace_filter *f);
/* Bytes of filter memory (stats and tests). */
size_t trace_filter_bytes(const struct trace_filter *f);

#endif
