/* loki_tail: /loki/api/v1/tail of mod_loki_api (loki.h), Loki's live tail over a
 * WebSocket (RFC 6455, websocket.h), as logcli --tail and Grafana's live mode use it.
 *
 * Request: GET with the WebSocket handshake headers and the parameters query (a log
 * query; its pipeline filters and reshapes lines), delay_for (seconds, 0-5: entries are
 * sent once they are that old), limit (default 100: entries of the first frame, and at
 * most per frame afterwards) and start (default an hour ago; Loki's time rules).
 * Refusals before the upgrade are Loki's plain-text 400s ("delay_for can't be greater
 * than 5", a parse error, "tail is only supported for log queries", not a WebSocket
 * handshake).
 *
 * After the 101 the connection sends text frames
 *   {"streams":[{"stream":{labels},"values":[["<ns>","<line>"],...]},...],
 *    "dropped_entries":null}
 * first with the newest `limit` entries since start, then about every
 * LOKI_TAIL_INTERVAL_MS with the entries that arrived (none: no frame). It reads the log
 * store from a cursor: each round asks for entries in [cursor, now - delay_for) and,
 * to catch pushes whose timestamps are a little in the past, again in the
 * LOKI_TAIL_LATE_NS before the cursor, skipping entries already sent (remembered by
 * hash while inside that window). Entries older than that when they are pushed are not
 * tailed. A round that fills `limit` moves the cursor only to its newest entry, so
 * nothing is skipped under load.
 *
 * The connection ends when the client sends a close frame (answered with a close),
 * when it disappears, on a protocol error (close 1002) or when the server stops (close
 * 1001, within a second). Pings are answered with pongs; other client frames are
 * ignored. Concurrent tails are bounded by the front end's HTTP_MAX_UPGRADED.
 * Thread-safe: each tail runs on its own thread (http.h). */
#ifndef LOKI_TAIL_H
#define LOKI_TAIL_H

#include "../http.h"
#include "../vigil.h"

#define LOKI_TAIL_INTERVAL_MS 1000
#define LOKI_TAIL_LATE_NS (10LL * 1000000000LL)
#define LOKI_TAIL_MAX_DELAY_S 5
#define LOKI_TAIL_MAX_FRAME_ENTRIES 5000

void loki_tail(struct vigil *v, struct http_request *req, struct http_response *resp);

#endif
