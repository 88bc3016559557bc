/* vg_log: the one logger. Writes one JSON object per line to stderr:
 *   {"time":"2026-11-25T21:30:00.123Z","level":"info","module":"http","msg":"listening","addr":"0.0.0.0:4318"}
 * Extra fields are NULL-terminated key/value string pairs after the message. Thread-safe
 * (one write(2) per line). The level threshold is process-wide, set once at start. */
#ifndef VG_LOG_H
#define VG_LOG_H

#include <stdint.h>

enum vg_log_level { VG_LOG_DEBUG, VG_LOG_INFO, VG_LOG_WARN, VG_LOG_ERROR };

void vg_log_set_level(enum vg_log_level level);
/* Parses "debug", "info", "warn", "error"; returns 0 or VG_EINVAL. */
int vg_log_parse_level(const char *s, enum vg_log_level *out);

/* vg_log(VG_LOG_INFO, "http", "listening", "addr", addr, NULL) */
void vg_log(enum vg_log_level level, const char *module, const char *msg, ...)
    __attribute__((sentinel));

/* Back-off for errors caused by clients (collectd's c_complain): logs at most once per
 * interval per complaint, counting what it held back. Keep one per call site. */
struct vg_complaint {
    _Atomic int64_t last_ms;
    _Atomic uint64_t suppressed;
};
void vg_complain(struct vg_complaint *c, int64_t interval_ms, enum vg_log_level level,
                 const char *module, const char *msg, const char *detail);

#endif
