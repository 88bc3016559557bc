/* websocket: see websocket.h.
 *
 * SHA-1 is written here rather than taken from a crypto library because it is needed
 * only for the 20-byte handshake digest (no security rests on it: RFC 6455 uses it to
 * prove the server read the key) and no library already linked exposes it. */
#include "websocket.h"

#include "../../storage/base/vg_alloc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- SHA-1 (FIPS 180-4 section 6.1) ---- */

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (size_t i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0 };
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    /* Padding: 0x80, zeros, then the length in bits as 64-bit big-endian, filling one or
     * two final blocks. */
    uint8_t tail[128] = { 0 };
    if (left)
        memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, tail);
    if (tl == 128)
        sha1_block(h, tail + 64);
    for (size_t i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

/* ---- base64 (RFC 4648 section 4) ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ws_base64(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1], struct vg_err *err)
{
    size_t n = key ? strnlen(key, 64) : 0;
    bool ok = n == 24 && key[22] == '=' && key[23] == '=';
    for (size_t i = 0; ok && i < 22; i++)
        ok = strchr(b64, key[i]) != NULL && key[i] != '\0';
    if (!ok)
        return vg_err_set(err, VG_EINVAL, "Sec-WebSocket-Key must be the base64 form of 16 "
                                          "bytes (24 characters), got \"%.64s\"",
                          key ? key : "");
    char buf[24 + sizeof WS_GUID];
    memcpy(buf, key, 24);
    memcpy(buf + 24, WS_GUID, sizeof WS_GUID - 1);
    uint8_t d[20];
    ws_sha1(buf, 24 + sizeof WS_GUID - 1, d);
    ws_base64(d, sizeof d, out);
    return 0;
}

/* ---- frames ---- */

static bool is_control(unsigned op)
{
    return op >= 0x8;
}

int ws_frame_decode(uint8_t *buf, size_t len, size_t max_payload, bool require_mask,
                    struct ws_frame *f, size_t *used, struct vg_err *err)
{
    if (len < 2)
        return 0;
    unsigned b0 = buf[0], b1 = buf[1];
    unsigned op = b0 & 0x0F;
    if (b0 & 0x70)
        return vg_err_set(err, VG_EINVAL, "websocket frame: reserved bits set in byte 0 "
                                          "(0x%02x) but no extension was negotiated", b0);
    if (op != WS_OP_CONTINUATION && op != WS_OP_TEXT && op != WS_OP_BINARY &&
        op != WS_OP_CLOSE && op != WS_OP_PING && op != WS_OP_PONG)
        return vg_err_set(err, VG_EINVAL, "websocket frame: unknown opcode 0x%x", op);
    bool fin = b0 & 0x80, masked = b1 & 0x80;
    if (require_mask && !masked)
        return vg_err_set(err, VG_EINVAL, "websocket frame: client frames must be masked "
                                          "(RFC 6455 section 5.1)");
    size_t p = 2;
    uint64_t plen = b1 & 0x7F;
    if (plen == 126) {
        if (len < 4)
            return 0;
        plen = (uint64_t)buf[2] << 8 | buf[3];
        p = 4;
    } else if (plen == 127) {
        if (len < 10)
            return 0;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | buf[2 + i];
        if (plen >> 63)
            return vg_err_set(err, VG_EINVAL, "websocket frame: 64-bit length with the most "
                                              "significant bit set");
        p = 10;
    }
    if (is_control(op) && (!fin || plen > WS_MAX_CONTROL))
        return vg_err_set(err, VG_EINVAL, "websocket frame: control frame (opcode 0x%x) "
                                          "fragmented or longer than 125 bytes", op);
    if (plen > max_payload)
        return vg_err_set(err, VG_ETOOLARGE, "websocket frame: payload of %llu bytes is over "
                                             "the limit of %zu",
                          (unsigned long long)plen, max_payload);
    const uint8_t *mask = NULL;
    if (masked) {
        if (len < p + 4)
            return 0;
        mask = buf + p;
        p += 4;
    }
    if (len - p < plen)
        return 0;
    uint8_t *pl = buf + p;
    if (mask)
        for (size_t i = 0; i < plen; i++)
            pl[i] ^= mask[i & 3];
    f->fin = fin;
    f->op = (enum ws_opcode)op;
    f->payload = pl;
    f->len = (size_t)plen;
    *used = p + (size_t)plen;
    return 1;
}

void ws_frame_encode(struct vg_buf *out, enum ws_opcode op, const void *payload, size_t n)
{
    uint8_t h[10];
    size_t hl = 2;
    h[0] = (uint8_t)(0x80 | op);
    if (n < 126) {
        h[1] = (uint8_t)n;
    } else if (n <= 0xFFFF) {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (8 * (7 - i)));
        hl = 10;
    }
    vg_buf_append(out, h, hl);
    if (n)
        vg_buf_append(out, payload, n);
}

void ws_close_encode(struct vg_buf *out, enum ws_close_code code, const char *reason)
{
    uint8_t p[WS_MAX_CONTROL];
    size_t rl = reason ? strnlen(reason, WS_MAX_CONTROL - 2) : 0;
    /* Do not cut a UTF-8 sequence in two: back off over continuation bytes. */
    if (reason && reason[rl] != '\0')
        while (rl > 0 && ((unsigned char)reason[rl] & 0xC0) == 0x80)
            rl--;
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    if (rl)
        memcpy(p + 2, reason, rl);
    ws_frame_encode(out, WS_OP_CLOSE, p, 2 + rl);
}

/* ---- socket I/O ---- */

int ws_send(int fd, const void *buf, size_t n, int timeout_ms, struct vg_err *err)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            int r = poll(&pf, 1, timeout_ms);
            if (r > 0)
                continue;
            if (r < 0 && errno == EINTR)
                continue;
            return vg_err_set(err, VG_EIO, "websocket peer accepted no data for %d ms",
                              timeout_ms);
        }
        return vg_err_set(err, VG_EIO, "websocket send failed: %s",
                          w < 0 ? strerror(errno) : "connection closed");
    }
    return 0;
}

int ws_reader_init(struct ws_reader *r, size_t max_payload, const void *initial, size_t n)
{
    memset(r, 0, sizeof *r);
    r->max_payload = max_payload;
    r->cap = n > 4096 ? n : 4096;
    r->buf = vg_malloc(r->cap);
    if (!r->buf)
        return VG_ENOMEM;
    if (n)
        memcpy(r->buf, initial, n);
    r->len = n;
    return 0;
}

void ws_reader_free(struct ws_reader *r)
{
    vg_free(r->buf);
    memset(r, 0, sizeof *r);
}

int ws_reader_next(struct ws_reader *r, int fd, int timeout_ms, struct ws_frame *f,
                   struct vg_err *err)
{
    if (r->consumed) { /* drop the frame handed out last time */
        memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
        r->len -= r->consumed;
        r->consumed = 0;
    }
    for (bool waited = false;;) {
        size_t used;
        int rc = ws_frame_decode(r->buf, r->len, r->max_payload, true, f, &used, err);
        if (rc != 0) {
            if (rc > 0)
                r->consumed = used;
            return rc;
        }
        if (waited) /* one wait per call: the caller gets control back on time */
            return 0;
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        int pr = poll(&pf, 1, timeout_ms);
        if (pr < 0 && errno != EINTR)
            return vg_err_set(err, VG_EIO, "websocket poll failed: %s", strerror(errno));
        if (pr <= 0)
            return 0;
        if (r->len == r->cap) {
            /* Room for the longest frame allowed plus its header. */
            size_t ncap = r->cap * 2;
            if (ncap > r->max_payload + 14 && r->cap >= r->max_payload + 14)
                return vg_err_set(err, VG_ETOOLARGE, "websocket frame over %zu bytes",
                                  r->max_payload);
            uint8_t *nb = vg_realloc(r->buf, ncap);
            if (!nb)
                return vg_err_set(err, VG_ENOMEM, "out of memory reading a websocket frame");
            r->buf = nb;
            r->cap = ncap;
        }
        ssize_t got = recv(fd, r->buf + r->len, r->cap - r->len, 0);
        if (got == 0)
            return vg_err_set(err, VG_EIO, "websocket peer closed the connection");
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return vg_err_set(err, VG_EIO, "websocket recv failed: %s", strerror(errno));
        }
        r->len += (size_t)got;
        waited = true;
    }
}
