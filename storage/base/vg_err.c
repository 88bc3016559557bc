/* vg_err: see vg_err.h. */
#include "vg_err.h"

/* vg_err.h wraps these two in analyser-only macros for its callers; here the real
 * functions are defined, so the wrappers must not rewrite their definitions. */
#undef vg_err_set
#undef vg_err_prefix

#include <stdio.h>
#include <string.h>

int vg_err_vset(struct vg_err *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

int vg_err_set(struct vg_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vg_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int vg_err_prefix(struct vg_err *err, const char *fmt, ...)
{
    if (!err)
        return VG_EINTERNAL;
    char old[VG_ERR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n + 2 < sizeof err->msg) {
        size_t room = sizeof err->msg - (size_t)n;
        err->msg[n] = ':';
        err->msg[n + 1] = ' ';
        size_t ol = strnlen(old, sizeof old);
        if (ol > room - 3)
            ol = room - 3;
        memcpy(err->msg + n + 2, old, ol);
        err->msg[n + 2 + ol] = '\0';
    }
    return err->code;
}

void vg_err_clear(struct vg_err *err)
{
    if (err) {
        err->code = VG_OK;
        err->msg[0] = '\0';
    }
}

const char *vg_code_name(int code)
{
    switch (code) {
    case VG_OK: return "ok";
    case VG_EINVAL: return "invalid";
    case VG_ETOOLARGE: return "too_large";
    case VG_ENOMEM: return "no_memory";
    case VG_EIO: return "io";
    case VG_ENOTFOUND: return "not_found";
    case VG_EMEDIA: return "unsupported_media";
    case VG_EOVERLOAD: return "overload";
    case VG_ECONFLICT: return "conflict";
    case VG_EMETHOD: return "method";
    default: return "internal";
    }
}
