/* websocket: the server side of RFC 6455 (the WebSocket protocol) that the Loki tail
 * endpoint needs: the opening handshake's accept key, the frame codec and blocking-with-
 * timeout frame I/O on an upgraded socket.
 *
 * Handshake (RFC 6455 section 4.2): a client sends Sec-WebSocket-Key, a base64 string of
 * 16 random bytes (24 characters); the server answers 101 with
 * Sec-WebSocket-Accept = base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
 *
 * Frame layout (section 5.2), bytes in network order:
 *   byte 0   FIN (0x80), RSV1-3 (0x70, must be 0: no extension is negotiated), opcode
 *   byte 1   MASK (0x80), payload length 0-125, or 126 (16-bit length follows) or 127
 *            (64-bit length follows, top bit 0)
 *   then     4-byte masking key when MASK is set (always for client frames)
 *   then     the payload, XORed with the key byte i % 4 when masked
 * Control frames (close, ping, pong) carry at most 125 bytes and are never fragmented.
 * A close payload is empty or a 2-byte status code (1000 normal, 1001 going away, 1002
 * protocol error, 1009 too big, 1011 server error) followed by a UTF-8 reason.
 *
 * Everything here is pure except ws_send and ws_reader_next, which do I/O on a socket
 * given by the caller. Thread-safe as long as one socket is used by one thread. */
#ifndef WEBSOCKET_H
#define WEBSOCKET_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_ACCEPT_LEN 28       /* base64 of a 20-byte digest */
#define WS_MAX_CONTROL 125     /* payload bytes of a control frame at most */

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL_ERROR = 1002,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_SERVER_ERROR = 1011,
};

/* SHA-1 (FIPS 180-4) of data; only for the handshake, where RFC 6455 prescribes it. */
void ws_sha1(const void *data, size_t len, uint8_t out[20]);
/* Standard base64 with padding of n bytes into out (4 * ceil(n / 3) characters and a
 * NUL); returns the characters written. */
size_t ws_base64(const uint8_t *in, size_t n, char *out);

/* The Sec-WebSocket-Accept value for the client's Sec-WebSocket-Key (NUL-terminated).
 * 0 with out filled (WS_ACCEPT_LEN characters and a NUL), or VG_EINVAL when key is not
 * 24 base64 characters ending in "==" (16 bytes), as section 4.2.1 requires. */
int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1], struct vg_err *err);

struct ws_frame {
    bool fin;
    enum ws_opcode op;
    uint8_t *payload; /* into the decoded buffer, already unmasked */
    size_t len;
};

/* Decodes the frame at the start of buf[0..len). Returns 1 with *f and *used (bytes of
 * the whole frame) set and the payload unmasked in place; 0 when buf holds only part of
 * a frame; VG_EINVAL for a protocol error (reserved bits, unknown opcode, a control
 * frame that is fragmented or longer than 125 bytes, an unmasked frame when
 * require_mask, a 64-bit length with the top bit set); VG_ETOOLARGE when the payload is
 * longer than max_payload. Messages name the byte and the rule. */
int ws_frame_decode(uint8_t *buf, size_t len, size_t max_payload, bool require_mask,
                    struct ws_frame *f, size_t *used, struct vg_err *err);

/* Appends one unmasked, final (FIN) server frame with payload[0..n). */
void ws_frame_encode(struct vg_buf *out, enum ws_opcode op, const void *payload, size_t n);
/* Appends a close frame with code and reason (cut to fit 125 bytes). */
void ws_close_encode(struct vg_buf *out, enum ws_close_code code, const char *reason);

/* Writes all of buf[0..n) to the socket fd, waiting at most timeout_ms for it to accept
 * more (the socket may be non-blocking). 0, or VG_EIO when the peer is gone or slow. */
int ws_send(int fd, const void *buf, size_t n, int timeout_ms, struct vg_err *err);

/* Reads frames from a socket. buf holds bytes received but not yet decoded. */
struct ws_reader {
    uint8_t *buf;
    size_t len, cap;
    size_t max_payload;
    size_t consumed; /* bytes of the previous frame still at the front of buf */
};

/* max_payload: longest client frame accepted. Initial bytes (those a front end read past
 * the request) are copied in. 0 or VG_ENOMEM. Free with ws_reader_free. */
int ws_reader_init(struct ws_reader *r, size_t max_payload, const void *initial, size_t n);
void ws_reader_free(struct ws_reader *r);

/* Waits at most timeout_ms for the next complete frame from fd. Returns 1 with *f (its
 * payload valid until the next call), 0 when the time passed without one, or a negative
 * code: VG_EIO when the peer closed the connection or the socket failed, VG_EINVAL /
 * VG_ETOOLARGE as ws_frame_decode, VG_ENOMEM. */
int ws_reader_next(struct ws_reader *r, int fd, int timeout_ms, struct ws_frame *f,
                   struct vg_err *err);

#endif
