/* statsd: the StatsD receiver (module mod_statsd). Listens for the StatsD line protocol
 * (statsd_parse.h: counters, gauges with +/- deltas, timers, histograms, distributions,
 * sets, sample rates, DogStatsD tags) on UDP (one or more newline-separated lines per
 * datagram) and TCP (newline-framed lines), aggregates with statsd_agg.h and writes the
 * aggregates to the TSDB every flush interval. Names and series written are documented
 * in statsd_agg.h (counters as cumulative <name>_total, gauges, sets as gauges,
 * timers/histograms as Prometheus histograms or summaries).
 *
 * Config: the structured section `statsd` (off when absent):
 *   statsd:
 *     udp_addr: ":8125"          # "" = no UDP listener; default ":8125"
 *     tcp_addr: ""               # "" = no TCP listener (the default)
 *     flush_interval: 10s        # how often aggregates are written (>= 100ms)
 *     timer_type: histogram      # histogram | summary (ms, h and d lines)
 *     buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
 *                                # histogram upper bounds, ascending (timers in seconds)
 *     quantiles: [0.5, 0.9, 0.99] # summary quantiles, each in (0, 1)
 *     max_series: 100000         # series kept at most; lines for new ones dropped beyond
 *     max_set_members: 10000     # distinct members per set per interval
 *     max_connections: 256       # open TCP connections at most
 * `vigil check-config` and start refuse unknown keys and bad values with file:line.
 *
 * Bad input: a malformed line is skipped and counted by reason; the other lines of the
 * same packet still count. A TCP line over 64 KiB is skipped up to its newline. Memory
 * is bounded by max_series (and max_set_members, the histogram buckets and the
 * t-digest's bounded size per series).
 *
 * Durability: StatsD has no acknowledgement. Aggregates live in memory until the next
 * flush; a crash loses at most one interval (plus counters' history is kept in the TSDB:
 * after a restart counters start again from 0, which rate() reads as a counter reset).
 * Graceful shutdown flushes once more.
 *
 * /metrics:
 *   vigil_statsd_lines_received_total{transport}   lines read ("udp", "tcp")
 *   vigil_statsd_malformed_total{reason}            statsd_error_name reasons, and
 *                                                   "line_too_long" (TCP)
 *   vigil_statsd_dropped_total{reason}              statsd_drop_name reasons (max_series,
 *                                                   type_conflict, set_full, bad_labels,
 *                                                   out_of_memory) and "refused_connection"
 *   vigil_statsd_series                             series kept now
 *   vigil_statsd_flushes_total{result}              "ok" or "error"
 * Samples written count under vigil_ingest_*{receiver="statsd"}.
 *
 * Threads: "statsd-udp", "statsd-tcp" (one each, only for a configured address) and
 * "statsd-flush", stopped and joined by the module's free hook. */
#ifndef STATSD_H
#define STATSD_H

#include "../vigil.h"

#include <stdint.h>

extern const struct vigil_module mod_statsd;

/* Ports actually bound (0 when that listener is off). Thread-safe. */
uint16_t statsd_udp_port(const struct vigil *v);
uint16_t statsd_tcp_port(const struct vigil *v);

/* Lines read so far over both transports (malformed ones included). Thread-safe; tests
 * use it to know a packet was processed. */
uint64_t statsd_lines_received(const struct vigil *v);

/* Writes the aggregates now (stamped now) instead of at the next interval and returns
 * once they are in the TSDB. 0, or the store's error. Thread-safe. */
int statsd_flush(struct vigil *v, struct vg_err *err);

#endif
