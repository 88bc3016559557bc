/* Tests server/api/websocket.c: SHA-1 and base64 against published vectors, the
 * handshake key of RFC 6455's own example, frame decoding (every length form, masking,
 * partial input, each protocol error), encoding, and the socket reader and sender over
 * a socketpair, including a peer that closes and allocation failure. */
#include "../../../../server/api/websocket.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void expect_sha1(const char *msg, size_t n, const char *want)
{
    uint8_t d[20];
    char h[41];
    ws_sha1(msg, n, d);
    hex(d, 20, h);
    cr_assert_str_eq(h, want, "sha1 of %zu bytes", n);
}

Test(websocket, sha1_vectors)
{
    expect_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    expect_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* 56 bytes: the length no longer fits the first padding block. */
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_sha1(m, strlen(m), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char big[1000];
    memset(big, 'a', sizeof big);
    /* 1000 'a's (several blocks) */
    expect_sha1(big, sizeof big, "291e9a6c66994949b57ba5e650361e98fc36b1ba");
}

Test(websocket, base64)
{
    char out[16];
    cr_assert_eq(ws_base64((const uint8_t *)"f", 1, out), 4);
    cr_assert_str_eq(out, "Zg==");
    ws_base64((const uint8_t *)"fo", 2, out);
    cr_assert_str_eq(out, "Zm8=");
    ws_base64((const uint8_t *)"foobar", 6, out);
    cr_assert_str_eq(out, "Zm9vYmFy");
    cr_assert_eq(ws_base64((const uint8_t *)"", 0, out), 0);
    cr_assert_str_eq(out, "");
}

Test(websocket, accept_key_rfc_example)
{
    char out[WS_ACCEPT_LEN + 1];
    struct vg_err err;
    cr_assert_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out, &err), 0);
    cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(websocket, accept_key_refuses_bad_keys)
{
    char out[WS_ACCEPT_LEN + 1];
    struct vg_err err;
    cr_assert_eq(ws_accept_key(NULL, out, &err), VG_EINVAL);
    cr_assert_eq(ws_accept_key("", out, &err), VG_EINVAL);
    cr_assert_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ", out, &err), VG_EINVAL);
    cr_assert_eq(ws_accept_key("dGhlIHNhbXBsZSBub25j*Q==", out, &err), VG_EINVAL);
    cr_assert_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==x", out, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "Sec-WebSocket-Key"), "%s", err.msg);
}

/* A masked client frame with payload p (n bytes). */
static size_t client_frame(uint8_t *out, unsigned b0, const void *p, size_t n)
{
    static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    size_t o = 0;
    out[o++] = (uint8_t)b0;
    if (n < 126) {
        out[o++] = (uint8_t)(0x80 | n);
    } else if (n <= 0xFFFF) {
        out[o++] = 0x80 | 126;
        out[o++] = (uint8_t)(n >> 8);
        out[o++] = (uint8_t)n;
    } else {
        out[o++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[o++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(out + o, key, 4);
    o += 4;
    for (size_t i = 0; i < n; i++)
        out[o + i] = ((const uint8_t *)p)[i] ^ key[i & 3];
    return o + n;
}

Test(websocket, decode_rfc_masked_hello)
{
    /* RFC 6455 section 5.7: a single-frame masked text message "Hello". */
    uint8_t b[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
    struct ws_frame f;
    size_t used;
    struct vg_err err;
    cr_assert_eq(ws_frame_decode(b, sizeof b, 1024, true, &f, &used, &err), 1);
    cr_assert_eq(used, sizeof b);
    cr_assert(f.fin);
    cr_assert_eq(f.op, WS_OP_TEXT);
    cr_assert_eq(f.len, 5);
    cr_assert_eq(memcmp(f.payload, "Hello", 5), 0);
}

Test(websocket, decode_lengths_and_partial_input)
{
    static uint8_t payload[70000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    static uint8_t b[70100];
    const size_t sizes[] = { 0, 125, 126, 65535, 65536, 70000 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = client_frame(b, 0x82, payload, sizes[k]);
        struct ws_frame f;
        size_t used;
        struct vg_err err;
        /* Every strict prefix is "need more". */
        const size_t cuts[] = { 0, 1, 2, 3, 5, 9, 13, n - 1 };
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++)
            if (cuts[c] < n)
                cr_assert_eq(ws_frame_decode(b, cuts[c], 1 << 20, true, &f, &used, &err), 0,
                             "size %zu cut %zu", sizes[k], cuts[c]);
        cr_assert_eq(ws_frame_decode(b, n, 1 << 20, true, &f, &used, &err), 1);
        cr_assert_eq(used, n);
        cr_assert_eq(f.len, sizes[k]);
        cr_assert_eq(f.op, WS_OP_BINARY);
        cr_assert(sizes[k] == 0 || memcmp(f.payload, payload, sizes[k]) == 0);
    }
}

static void expect_decode_error(const uint8_t *in, size_t n, bool mask, int code,
                                const char *needle)
{
    uint8_t b[64];
    memcpy(b, in, n);
    struct ws_frame f;
    size_t used;
    struct vg_err err;
    cr_assert_eq(ws_frame_decode(b, n, 100, mask, &f, &used, &err), code);
    cr_assert(strstr(err.msg, needle), "message: %s", err.msg);
}

Test(websocket, decode_protocol_errors)
{
    const uint8_t rsv[] = { 0xC1, 0x80, 0, 0, 0, 0 };
    expect_decode_error(rsv, sizeof rsv, true, VG_EINVAL, "reserved bits");
    const uint8_t op3[] = { 0x83, 0x80, 0, 0, 0, 0 };
    expect_decode_error(op3, sizeof op3, true, VG_EINVAL, "unknown opcode 0x3");
    const uint8_t unmasked[] = { 0x81, 0x01, 'a' };
    expect_decode_error(unmasked, sizeof unmasked, true, VG_EINVAL, "must be masked");
    const uint8_t frag_ping[] = { 0x09, 0x80, 0, 0, 0, 0 };
    expect_decode_error(frag_ping, sizeof frag_ping, true, VG_EINVAL, "control frame");
    const uint8_t long_close[] = { 0x88, 0x80 | 126, 0, 126, 0, 0, 0, 0 };
    expect_decode_error(long_close, sizeof long_close, true, VG_EINVAL, "control frame");
    const uint8_t top_bit[] = { 0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1 };
    expect_decode_error(top_bit, sizeof top_bit, true, VG_EINVAL, "most significant bit");
    const uint8_t too_big[] = { 0x82, 0x80 | 126, 0x01, 0x00 };
    expect_decode_error(too_big, sizeof too_big, true, VG_ETOOLARGE, "over the limit of 100");
    /* Unmasked frames are fine when the caller does not require a mask (server frames). */
    uint8_t ok[] = { 0x81, 0x01, 'a' };
    struct ws_frame f;
    size_t used;
    struct vg_err err;
    cr_assert_eq(ws_frame_decode(ok, sizeof ok, 100, false, &f, &used, &err), 1);
    cr_assert_eq(f.payload[0], 'a');
}

Test(websocket, encode_round_trips)
{
    static char payload[70000];
    memset(payload, 'x', sizeof payload);
    const size_t sizes[] = { 0, 5, 125, 126, 65535, 65536, 70000 };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct vg_buf b;
        vg_buf_init(&b);
        ws_frame_encode(&b, WS_OP_TEXT, payload, sizes[k]);
        cr_assert(!vg_buf_failed(&b));
        struct ws_frame f;
        size_t used;
        struct vg_err err;
        cr_assert_eq(ws_frame_decode((uint8_t *)b.p, b.len, 1 << 20, false, &f, &used, &err), 1);
        cr_assert_eq(used, b.len);
        cr_assert_eq(f.len, sizes[k]);
        cr_assert(f.fin);
        cr_assert_eq((uint8_t)b.p[0], 0x81);
        cr_assert_eq((uint8_t)b.p[1] & 0x80, 0, "server frames are not masked");
        vg_buf_free(&b);
    }
}

Test(websocket, close_frame)
{
    struct vg_buf b;
    vg_buf_init(&b);
    ws_close_encode(&b, WS_CLOSE_GOING_AWAY, "server stopping");
    cr_assert_eq(b.len, 2 + 2 + 15);
    cr_assert_eq((uint8_t)b.p[0], 0x88);
    cr_assert_eq((uint8_t)b.p[2], 0x03);
    cr_assert_eq((uint8_t)b.p[3], 0xE9);
    cr_assert_eq(memcmp(b.p + 4, "server stopping", 15), 0);
    /* A long reason is cut to fit 125 bytes, never in the middle of a UTF-8 sequence. */
    char reason[300];
    for (size_t i = 0; i + 2 < sizeof reason; i += 2) {
        reason[i] = (char)0xC3;
        reason[i + 1] = (char)0xA9; /* é */
    }
    reason[sizeof reason - 2] = '\0';
    vg_buf_reset(&b);
    ws_close_encode(&b, WS_CLOSE_NORMAL, reason);
    cr_assert_eq((uint8_t)b.p[1], 2 + 122, "payload %u", (uint8_t)b.p[1]);
    cr_assert_eq((uint8_t)b.p[b.len - 2], 0xC3);
    vg_buf_free(&b);
}

Test(websocket, reader_and_sender_over_a_socketpair)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    uint8_t f1[64], f2[64];
    size_t n1 = client_frame(f1, 0x81, "hi", 2);
    size_t n2 = client_frame(f2, 0x88, "\x03\xe8", 2);
    /* The front end read the first frame and half of the second before the upgrade. */
    uint8_t initial[128];
    memcpy(initial, f1, n1);
    memcpy(initial + n1, f2, 3);
    struct ws_reader r;
    cr_assert_eq(ws_reader_init(&r, 1024, initial, n1 + 3), 0);
    struct ws_frame f;
    struct vg_err err;
    cr_assert_eq(ws_reader_next(&r, sv[0], 10, &f, &err), 1);
    cr_assert_eq(f.op, WS_OP_TEXT);
    cr_assert_eq(memcmp(f.payload, "hi", 2), 0);
    /* Nothing more arrives: a timeout, not an error. */
    cr_assert_eq(ws_reader_next(&r, sv[0], 20, &f, &err), 0);
    cr_assert_eq(write(sv[1], f2 + 3, n2 - 3), (ssize_t)(n2 - 3));
    int rc = ws_reader_next(&r, sv[0], 1000, &f, &err);
    cr_assert_eq(rc, 1, "rc %d %s", rc, err.msg);
    cr_assert_eq(f.op, WS_OP_CLOSE);
    cr_assert_eq(f.len, 2);

    /* Server to client. */
    struct vg_buf b;
    vg_buf_init(&b);
    ws_frame_encode(&b, WS_OP_TEXT, "{\"streams\":[]}", 14);
    cr_assert_eq(ws_send(sv[0], b.p, b.len, 1000, &err), 0);
    char got[64];
    cr_assert_eq(read(sv[1], got, sizeof got), (ssize_t)b.len);
    cr_assert_eq(memcmp(got, b.p, b.len), 0);
    vg_buf_free(&b);

    /* The peer goes away. */
    close(sv[1]);
    cr_assert_eq(ws_reader_next(&r, sv[0], 1000, &f, &err), VG_EIO);
    cr_assert(strstr(err.msg, "closed"), "%s", err.msg);
    cr_assert_eq(ws_send(sv[0], "x", 1, 100, &err), VG_EIO);
    ws_reader_free(&r);
    close(sv[0]);
}

Test(websocket, reader_refuses_frames_over_its_limit)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    static uint8_t big[9000];
    static uint8_t frame[9100];
    size_t n = client_frame(frame, 0x82, big, sizeof big);
    struct ws_reader r;
    cr_assert_eq(ws_reader_init(&r, 100, NULL, 0), 0);
    cr_assert_eq(write(sv[1], frame, n), (ssize_t)n);
    struct ws_frame f;
    struct vg_err err;
    cr_assert_eq(ws_reader_next(&r, sv[0], 1000, &f, &err), VG_ETOOLARGE);
    ws_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

Test(websocket, reader_init_allocation_failure)
{
    struct ws_reader r;
    vg_alloc_fail_after(1);
    int rc = ws_reader_init(&r, 100, NULL, 0);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    ws_reader_free(&r);
}
