/* labels_json: see labels_json.h. */
#include "labels_json.h"

void labels_json_put(struct vg_buf *b, const struct label *ls, size_t n)
{
    vg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_json_str(b, ls[i].name.p, ls[i].name.len);
        vg_buf_putc(b, ':');
        vg_buf_json_str(b, ls[i].value.p, ls[i].value.len);
    }
    vg_buf_putc(b, '}');
}
