/* syslog: the syslog receiver (module mod_syslog). Listens on syslog.udp_addr (one
 * message per datagram) and syslog.tcp_addr (RFC 6587 octet counting or newline
 * framing, detected per connection), parses with syslog_parse.h and writes the messages
 * to the log store in small batches through ingest_store_logs, so the global
 * `log_processors` (logproc.h, receiver name "syslog") see every message first. Both
 * addresses are empty by default: the module then starts nothing.
 *
 * Label rule (what a Loki user gets from promtail's syslog target after the usual
 * relabelling of __syslog_message_*):
 *   stream labels      job="syslog", plus every field listed in syslog.labels that the
 *                      message has (default: hostname, app_name, facility, severity,
 *                      level); fields a message lacks (nil "-") are left out.
 *   structured metadata the fields not listed (proc_id and msg_id by default), and each
 *                      RFC 5424 structured-data parameter as sd_<SD-ID>_<name> with
 *                      bytes outside [A-Za-z0-9_] turned into '_' (promtail's
 *                      label_structured_data naming), e.g. sd_timeQuality_isSynced.
 *   line               MSG (RFC 5424, BOM removed) or CONTENT (RFC 3164).
 * Field values: hostname and app_name as sent (for RFC 3164 app_name is the TAG and
 * proc_id the [PID]); facility is the keyword ("auth", "local3", ...); severity is
 * promtail's name ("informational", "warning", ...); level is the severity on Loki's
 * scale (critical, error, warn, info, debug) so Grafana colours lines by it without a
 * relabel rule. level is derived from severity, so it adds no streams; when left out of
 * syslog.labels it is not stored at all.
 * An unparsable message is stored whole as the line of the stream {job="syslog"} with
 * metadata parse_error=<reason> (syslog_error_name), and counted.
 *
 * Time: the message's own timestamp when it has one and syslog.use_message_timestamp
 * is on, else the receive time. A timestamp more than 10 minutes ahead of the receive
 * time is replaced by the receive time (and counted); one older than the store accepts
 * is dropped by the store as "too_old" (counted).
 *
 * Durability: syslog has no acknowledgement. Messages wait in memory for at most
 * syslog.flush_interval (or until a batch of 1000 messages / 1 MiB fills) before one
 * synchronous write; a crash loses at most that unflushed batch (and whatever
 * the kernel's socket buffers held). Graceful shutdown (vigil_stop) flushes it. If the
 * store falls behind so far that 8 batches' worth is waiting, newer messages are
 * dropped and counted ("overload") rather than growing memory without bound.
 *
 * /metrics:
 *   vigil_syslog_messages_received_total{transport}   framed messages ("udp", "tcp")
 *   vigil_syslog_messages_stored_total                 accepted by the log store (messages
 *                                                      a log processor drops are counted
 *                                                      by logproc.h, not here)
 *   vigil_syslog_messages_unparsable_total{reason}     stored raw (a subset of stored)
 *   vigil_syslog_messages_dropped_total{reason}        too_large, overload, bad_framing,
 *                                                      out_of_memory, store_error, and the
 *                                                      store's reasons (too_old, ...)
 *   vigil_syslog_future_timestamps_total               replaced by the receive time
 *   vigil_syslog_connections_total{event}              accepted, refused (over
 *                                                      max_connections), idle_timeout
 *   vigil_syslog_connections_open                      gauge
 * and, as every log receiver, vigil_ingest_lines_*{receiver="syslog"} (ingest.h).
 *
 * Threads: "syslog-udp" and "syslog-tcp" (one poll/epoll loop each, started only for a
 * configured address) and "syslog-flush" (writes batches), all stopped and joined by
 * the module's free hook. */
#ifndef SYSLOG_H
#define SYSLOG_H

#include "../vigil.h"

#include <stdint.h>

extern const struct vigil_module mod_syslog;

/* The ports actually bound (useful when the address asked for port 0); 0 when that
 * listener is off. Thread-safe (fixed after init). */
uint16_t syslog_udp_port(const struct vigil *v);
uint16_t syslog_tcp_port(const struct vigil *v);

/* Writes what is waiting now instead of at the next flush interval and returns when it
 * is in the store (for tests and shutdown). Thread-safe. */
void syslog_flush(struct vigil *v);

#endif
