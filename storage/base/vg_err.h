/* vg_err: the one error convention of Vigil.
 *
 * Fallible functions return int: 0 on success or a negative enum vg_code, and fill a
 * struct vg_err with the same code and a message that names the field, line or byte
 * offset and the limit crossed. Pointer-returning functions return NULL and fill the
 * same struct. The front ends turn codes into HTTP and gRPC statuses in one place each
 * (http_status_for, grpc_status_for). Thread-safe: no shared state. */
#ifndef VG_ERR_H
#define VG_ERR_H

#include <stdarg.h>

enum vg_code {
    VG_OK = 0,
    VG_EINVAL = -1,      /* malformed or invalid input: HTTP 400, gRPC INVALID_ARGUMENT */
    VG_ETOOLARGE = -2,   /* a configured limit was crossed: HTTP 413, RESOURCE_EXHAUSTED */
    VG_ENOMEM = -3,      /* allocation failed: HTTP 503, RESOURCE_EXHAUSTED */
    VG_EIO = -4,         /* storage failure: HTTP 500, INTERNAL */
    VG_ENOTFOUND = -5,   /* HTTP 404, NOT_FOUND */
    VG_EMEDIA = -6,      /* unsupported content type or encoding: HTTP 415 */
    VG_EOVERLOAD = -7,   /* try again later: HTTP 429, UNAVAILABLE */
    VG_ECONFLICT = -8,   /* rejected because it contradicts stored data: HTTP 400 */
    VG_EMETHOD = -9,     /* HTTP 405 */
    VG_EINTERNAL = -10,  /* our own bug or an unexpected library failure: HTTP 500 */
};

#define VG_ERR_MSG_MAX 512

struct vg_err {
    int code;
    char msg[VG_ERR_MSG_MAX];
};

/* Sets err (which may be NULL) to code and a printf-formatted message; returns code so
 * callers can write `return vg_err_set(err, VG_EINVAL, "...")`. */
int vg_err_set(struct vg_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int vg_err_vset(struct vg_err *err, int code, const char *fmt, va_list ap);
#ifdef __clang_analyzer__
/* clang-tidy's analyser does not look into other files, so it takes the result for any
 * int and reports paths where an error return would be 0. Spelled out, it sees the code
 * (the function-like macro does not expand inside itself). */
#define vg_err_set(err, code, ...) (vg_err_set((err), (code), __VA_ARGS__), (code))
#endif

/* Prepends "prefix: " to err's message, keeping its code; returns the code. */
int vg_err_prefix(struct vg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#ifdef __clang_analyzer__
/* Callers prefix errors that were set: for the analyser the result is an error code. */
#define vg_err_prefix(err, ...)                                                            \
    __extension__({                                                                        \
        int vg_rc_ = vg_err_prefix((err), __VA_ARGS__);                                    \
        vg_rc_ < 0 ? vg_rc_ : VG_EINTERNAL;                                                \
    })
#endif

void vg_err_clear(struct vg_err *err);

/* Short stable name of a code ("invalid", "too_large", ...), for metrics labels. */
const char *vg_code_name(int code);

#endif
