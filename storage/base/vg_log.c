/* vg_log: see vg_log.h. */
#include "vg_log.h"

#include "vg_buf.h"
#include "vg_err.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Process-wide by design: the level is configuration read by every thread. */
static _Atomic int min_level = VG_LOG_INFO;

static const char *level_names[] = { "debug", "info", "warn", "error" };

void vg_log_set_level(enum vg_log_level level)
{
    atomic_store(&min_level, (int)level);
}

int vg_log_parse_level(const char *s, enum vg_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum vg_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = VG_LOG_WARN;
        return 0;
    }
    return VG_EINVAL;
}

static void put_field(struct vg_buf *b, const char *k, const char *v)
{
    vg_buf_putc(b, ',');
    vg_buf_json_str(b, k, strlen(k));
    vg_buf_putc(b, ':');
    vg_buf_json_str(b, v ? v : "", v ? strlen(v) : 0);
}

static void vlog(enum vg_log_level level, const char *module, const char *msg, va_list ap)
{
    if ((int)level < atomic_load(&min_level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[40];
    size_t tl = strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tbuf + tl, sizeof tbuf - tl, ".%03ldZ", ts.tv_nsec / 1000000);

    char stack[1024];
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_printf(&b, "{\"time\":\"%s\",\"level\":\"%s\"", tbuf, level_names[level]);
    put_field(&b, "module", module);
    put_field(&b, "msg", msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        put_field(&b, k, v);
    }
    vg_buf_puts(&b, "}\n");
    if (vg_buf_failed(&b)) {
        /* Out of memory: still say something, without allocating. */
        int n = snprintf(stack, sizeof stack,
                         "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"log\",\"msg\":\"out of memory while logging\"}\n",
                         tbuf, level_names[level]);
        if (n > 0 && write(STDERR_FILENO, stack, (size_t)n) < 0) {
            /* nowhere left to report */
        }
    } else if (write(STDERR_FILENO, b.p, b.len) < 0) {
        /* nowhere left to report */
    }
    vg_buf_free(&b);
}

void vg_log(enum vg_log_level level, const char *module, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    vlog(level, module, msg, ap);
    va_end(ap);
}

void vg_complain(struct vg_complaint *c, int64_t interval_ms, enum vg_log_level level,
                 const char *module, const char *msg, const char *detail)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t last = atomic_load(&c->last_ms);
    if (last != 0 && now - last < interval_ms) {
        atomic_fetch_add(&c->suppressed, 1);
        return;
    }
    if (!atomic_compare_exchange_strong(&c->last_ms, &last, now)) {
        atomic_fetch_add(&c->suppressed, 1);
        return;
    }
    char n[32];
    snprintf(n, sizeof n, "%llu", (unsigned long long)atomic_exchange(&c->suppressed, 0));
    vg_log(level, module, msg, "detail", detail, "suppressed_since_last", n, NULL);
}
