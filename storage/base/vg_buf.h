/* vg_buf: a growable byte buffer that owns its bytes (heap from vg_malloc).
 *
 * Used to build response bodies, keys and encodings. After an allocation failure the
 * buffer is marked failed: further appends are no-ops and vg_buf_failed() says so, so a
 * writer can append freely and check once at the end. p is always NUL-terminated when
 * len > 0 or after vg_buf_cstr(). Not thread-safe; owner frees with vg_buf_free. */
#ifndef VG_BUF_H
#define VG_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vg_buf {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

void vg_buf_init(struct vg_buf *b);
void vg_buf_free(struct vg_buf *b);
void vg_buf_reset(struct vg_buf *b); /* len = 0, keeps capacity */
bool vg_buf_reserve(struct vg_buf *b, size_t extra);
void vg_buf_append(struct vg_buf *b, const void *data, size_t n);
void vg_buf_puts(struct vg_buf *b, const char *s);
void vg_buf_putc(struct vg_buf *b, char c);
void vg_buf_printf(struct vg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal with quotes and escapes (invalid UTF-8 bytes become
 * U+FFFD so the output is always valid JSON). */
void vg_buf_json_str(struct vg_buf *b, const char *s, size_t n);
/* Appends a double as Prometheus's text exposition prints it (Go strconv 'g', shortest
 * round-trip digits): "1.5", "1e+06", "NaN", "+Inf", "-Inf". */
void vg_buf_prom_float(struct vg_buf *b, double v);
/* Appends a double as Prometheus's JSON API prints sample values (Go strconv 'f',
 * shortest round-trip digits, no exponent): "1000000", "0.00001", "NaN", "+Inf". The
 * caller adds the quotes the API puts around it. */
void vg_buf_json_float(struct vg_buf *b, double v);
void vg_buf_put_u64be(struct vg_buf *b, uint64_t v);
void vg_buf_put_uvarint(struct vg_buf *b, uint64_t v);
/* Makes p a NUL-terminated string (even when empty) and returns it; NULL if failed. */
const char *vg_buf_cstr(struct vg_buf *b);
/* Hands the bytes to the caller (free with vg_free) and resets b. */
char *vg_buf_steal(struct vg_buf *b, size_t *len);
static inline bool vg_buf_failed(const struct vg_buf *b) { return b->failed; }

#endif
