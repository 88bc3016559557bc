/* Fuzz target for the WebSocket frame decoder (server/api/websocket.c, ws_frame_decode)
 * as the Loki tail endpoint runs it on what a client sends: the input is a stream of
 * client frames, decoded one after another with masks required and a small payload
 * limit. Each decoded frame must lie inside the input, control frames must be final and
 * at most 125 bytes, and decoding the same bytes twice from a fresh copy must agree
 * (unmasking in place must not leak into a frame that is not complete yet). */
#include "../../server/api/websocket.h"
#include "fuzz_check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAYLOAD 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    uint8_t *again = malloc(size ? size : 1);
    if (!buf || !again) {
        free(buf);
        free(again);
        return 0;
    }
    if (size)
        memcpy(buf, data, size);
    size_t off = 0;
    for (;;) {
        struct ws_frame f;
        struct vg_err err;
        size_t used = 0;
        size_t left = size - off;
        if (left)
            memcpy(again, buf + off, left);
        int rc = ws_frame_decode(buf + off, left, MAX_PAYLOAD, true, &f, &used, &err);
        if (rc <= 0) {
            FUZZ_CHECK(rc == 0 || rc == VG_EINVAL || rc == VG_ETOOLARGE);
            FUZZ_CHECK(rc == 0 || err.msg[0] != '\0');
            /* an incomplete frame leaves the bytes as they were */
            FUZZ_CHECK(rc != 0 || left == 0 || memcmp(again, buf + off, left) == 0);
            break;
        }
        FUZZ_CHECK(used >= 6 && used <= left);
        FUZZ_CHECK(f.len <= MAX_PAYLOAD);
        FUZZ_CHECK(f.payload >= buf + off && f.payload + f.len == buf + off + used);
        if (f.op >= WS_OP_CLOSE)
            FUZZ_CHECK(f.fin && f.len <= WS_MAX_CONTROL);
        struct ws_frame g;
        size_t used2 = 0;
        FUZZ_CHECK(ws_frame_decode(again, left, MAX_PAYLOAD, true, &g, &used2, &err) == 1);
        FUZZ_CHECK(used2 == used && g.len == f.len && g.op == f.op &&
                   (f.len == 0 || memcmp(g.payload, f.payload, f.len) == 0));
        off += used;
    }
    free(buf);
    free(again);
    return 0;
}
