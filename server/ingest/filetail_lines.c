/* filetail_lines: see filetail_lines.h. The common case (one record per line, the whole
 * line inside the chunk just read) hands the callback a slice of the chunk with no
 * copy; only an unterminated line is copied into part, and only multiline records into
 * rec. */
#include "filetail_lines.h"

#include "../../storage/base/vg_err.h"

#include <string.h>

void filetail_lines_init(struct filetail_lines *l, const struct filetail_lines_opts *o)
{
    memset(l, 0, sizeof *l);
    l->o = *o;
    if (!l->o.max_line_bytes)
        l->o.max_line_bytes = 1;
    if (!l->o.max_lines)
        l->o.max_lines = 1;
    vg_buf_init(&l->part);
    vg_buf_init(&l->rec);
}

void filetail_lines_free(struct filetail_lines *l)
{
    vg_buf_free(&l->part);
    vg_buf_free(&l->rec);
}

void filetail_lines_reset(struct filetail_lines *l)
{
    /* free, not reset: a buffer that failed an allocation stays failed until freed */
    filetail_lines_free(l);
    vg_buf_init(&l->part);
    vg_buf_init(&l->rec);
    l->has_rec = false;
    l->rec_lines = 0;
    l->rec_flags = 0;
}

bool filetail_lines_pending(const struct filetail_lines *l)
{
    return l->part.len > 0 || l->has_rec;
}

static int emit_rec(struct filetail_lines *l, filetail_lines_fn fn, void *ud)
{
    if (!l->has_rec)
        return 0;
    l->has_rec = false;
    int rc = fn(ud, (struct vg_str){ l->rec.p, l->rec.len }, l->rec_end, l->rec_flags);
    vg_buf_reset(&l->rec);
    l->rec_lines = 0;
    l->rec_flags = 0;
    return rc;
}

static int start_rec(struct filetail_lines *l, struct vg_str text, uint64_t end, unsigned flags,
                     int64_t now)
{
    vg_buf_reset(&l->rec);
    vg_buf_append(&l->rec, text.p, text.len);
    if (vg_buf_failed(&l->rec))
        return VG_ENOMEM;
    l->has_rec = true;
    l->rec_lines = 1;
    l->rec_end = end;
    l->rec_ms = now;
    l->rec_flags = flags;
    return 0;
}

/* One complete line (or a cut piece of one). */
static int line(struct filetail_lines *l, struct vg_str text, uint64_t end, unsigned flags,
                int64_t now, filetail_lines_fn fn, void *ud)
{
    if (text.len && text.p[text.len - 1] == '\r' && !(flags & FILETAIL_LINES_CUT))
        text.len--;
    if (!l->o.start)
        return fn(ud, text, end, flags);
    size_t b, e;
    int m = matcher_regex_find(l->o.start, text, 0, &b, &e);
    if (m < 0)
        return m;
    int rc;
    if (m == 1 || !l->has_rec) {
        if ((rc = emit_rec(l, fn, ud)) < 0)
            return rc;
        return start_rec(l, text, end, flags, now);
    }
    if (l->rec_lines >= l->o.max_lines || l->rec.len + 1 + text.len > l->o.max_line_bytes) {
        l->rec_flags |= FILETAIL_LINES_CUT;
        if ((rc = emit_rec(l, fn, ud)) < 0)
            return rc;
        return start_rec(l, text, end, flags, now);
    }
    vg_buf_putc(&l->rec, '\n');
    vg_buf_append(&l->rec, text.p, text.len);
    if (vg_buf_failed(&l->rec))
        return VG_ENOMEM;
    l->rec_lines++;
    l->rec_end = end;
    l->rec_ms = now;
    l->rec_flags |= flags;
    return 0;
}

/* Hands on part as a line ending at part_end. */
static int part_line(struct filetail_lines *l, unsigned flags, int64_t now,
                     filetail_lines_fn fn, void *ud)
{
    int rc = line(l, (struct vg_str){ l->part.p, l->part.len }, l->part_end, flags, now, fn, ud);
    vg_buf_reset(&l->part);
    return rc;
}

int filetail_lines_feed(struct filetail_lines *l, const char *p, size_t n, uint64_t off,
                        int64_t now_ms, filetail_lines_fn fn, void *ud)
{
    const size_t max = l->o.max_line_bytes;
    size_t i = 0;
    int rc;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t j = nl ? (size_t)(nl - p) : n; /* this line's bytes are [i, j) */
        /* too long: hand on max-byte pieces until the rest fits */
        while (l->part.len + (j - i) > max) {
            size_t take = max - l->part.len;
            if (l->part.len == 0) {
                rc = line(l, (struct vg_str){ p + i, take }, off + i + take, FILETAIL_LINES_CUT,
                          now_ms, fn, ud);
            } else {
                vg_buf_append(&l->part, p + i, take);
                if (vg_buf_failed(&l->part))
                    return VG_ENOMEM;
                l->part_end = off + i + take;
                rc = part_line(l, FILETAIL_LINES_CUT, now_ms, fn, ud);
            }
            if (rc < 0)
                return rc;
            i += take;
            if (l->part.len == 0)
                l->part_ms = now_ms;
        }
        if (!nl) {
            if (l->part.len == 0)
                l->part_ms = now_ms;
            vg_buf_append(&l->part, p + i, j - i);
            if (vg_buf_failed(&l->part))
                return VG_ENOMEM;
            l->part_end = off + j;
            break;
        }
        if (l->part.len) {
            vg_buf_append(&l->part, p + i, j - i);
            if (vg_buf_failed(&l->part))
                return VG_ENOMEM;
            l->part_end = off + j + 1;
            rc = part_line(l, 0, now_ms, fn, ud);
        } else {
            rc = line(l, (struct vg_str){ p + i, j - i }, off + j + 1, 0, now_ms, fn, ud);
        }
        if (rc < 0)
            return rc;
        i = j + 1;
    }
    return 0;
}

int filetail_lines_tick(struct filetail_lines *l, int64_t now_ms, filetail_lines_fn fn,
                        void *ud)
{
    int rc;
    if (l->part.len && l->o.partial_timeout_ms > 0 &&
        now_ms - l->part_ms >= l->o.partial_timeout_ms &&
        (rc = part_line(l, 0, now_ms, fn, ud)) < 0)
        return rc;
    if (l->has_rec && l->o.record_timeout_ms > 0 && now_ms - l->rec_ms >= l->o.record_timeout_ms)
        return emit_rec(l, fn, ud);
    return 0;
}

int filetail_lines_finish(struct filetail_lines *l, filetail_lines_fn fn, void *ud)
{
    int rc;
    if (l->part.len && (rc = part_line(l, 0, l->rec_ms, fn, ud)) < 0)
        return rc;
    return emit_rec(l, fn, ud);
}
