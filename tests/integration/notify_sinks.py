#!/usr/bin/env python3
"""Loopback sinks for the notification tests: they record what Vigil delivers.

  notify_sinks.py http PORT OUT.jsonl
      An HTTP server. Every POST is appended to OUT.jsonl as one JSON line
      {"path": ..., "time": <unix s>, "status": <answered>, "body": <parsed JSON or text>}.
      The path chooses the behaviour:
        /ok/...          answers 200
        /fail/N/...      answers 500 to the first N POSTs on this path, then 200
        /hang/...        never answers (sleeps 300 s; the client must time out)
      GET /count/PATH-PREFIX answers the number of 2xx POSTs recorded under the prefix.

  notify_sinks.py smtp PORT OUT.jsonl [reject]
      A minimal SMTP responder (asyncio; no smtpd): EHLO/HELO, MAIL, RCPT, DATA, RSET,
      NOOP, QUIT. Each accepted message is appended as {"from":..., "to":[...],
      "data": "<message>"}. With "reject", the first DATA is answered 554 (then 250).

Both bind 127.0.0.1 only and run until killed.
"""
import asyncio
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()


def append(path, obj):
    with lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()


def run_http(port, out):
    fails = {}
    ok_counts = {}

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            if self.path.startswith("/count/"):
                prefix = self.path[len("/count"):]
                with lock:
                    n = sum(c for p, c in ok_counts.items() if p.startswith(prefix))
                body = str(n).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n).decode("utf-8", "replace")
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            parts = self.path.strip("/").split("/")
            status = 200
            if parts[0] == "hang":
                time.sleep(300)
                return
            if parts[0] == "fail" and len(parts) > 1:
                with lock:
                    seen = fails.get(self.path, 0)
                    fails[self.path] = seen + 1
                if seen < int(parts[1]):
                    status = 500
            if status == 200:
                with lock:
                    ok_counts[self.path] = ok_counts.get(self.path, 0) + 1
            append(out, {"path": self.path, "time": time.time(), "status": status,
                         "body": body})
            msg = b"ok" if status == 200 else b"injected failure"
            self.send_response(status)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def run_smtp(port, out, reject):
    state = {"rejects_left": 1 if reject else 0}

    async def session(reader, writer):
        def send(line):
            writer.write((line + "\r\n").encode())

        send("220 sink ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                send("250-sink" if verb == "EHLO" else "250 sink")
                if verb == "EHLO":
                    send("250 8BITMIME")
            elif verb == "MAIL":
                mail_from, rcpts = cmd.split(":", 1)[1].strip().strip("<>"), []
                send("250 ok")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                send("250 ok")
            elif verb == "DATA":
                send("354 go ahead")
                await writer.drain()
                data = []
                while True:
                    l = await reader.readline()
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    data.append(l.decode("utf-8", "replace"))
                if state["rejects_left"] > 0:
                    state["rejects_left"] -= 1
                    send("554 rejected by the test sink")
                else:
                    append(out, {"from": mail_from, "to": rcpts, "data": "".join(data)})
                    send("250 queued")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                send("250 ok")
            elif verb == "NOOP":
                send("250 ok")
            elif verb == "QUIT":
                send("221 bye")
                await writer.drain()
                break
            else:
                send("502 not implemented")
            await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(session, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__":
    kind, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "http":
        run_http(port, out)
    else:
        run_smtp(port, out, len(sys.argv) > 4 and sys.argv[4] == "reject")
