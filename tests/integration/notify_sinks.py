#!/usr/bin/env python3
"""Loopback sinks for the notification tests: they record what Vigil delivers.

  notify_sinks.py http PORT OUT.jsonl [--tls CERT KEY]
      An HTTP server (HTTPS with --tls). Every POST is appended to OUT.jsonl as one JSON
      line {"path": ..., "time": <unix s>, "status": <answered>, "auth": <Authorization
      header or null>, "body": <parsed JSON or text>}. The path chooses the behaviour:
        /ok/...          answers 200
        /fail/N/...      answers 500 to the first N POSTs on this path, then 200
        /hang/...        never answers (sleeps 300 s; the client must time out)
        /auth/U/P/...    answers 401 unless the request carries HTTP basic auth U:P,
                         then 200
      GET /count/PATH-PREFIX answers the number of 2xx POSTs recorded under the prefix.

  notify_sinks.py smtp PORT OUT.jsonl [reject] [--tls CERT KEY] [--auth USER:PASS]
                  [--mechs PLAIN,LOGIN]
      A minimal SMTP responder (asyncio; no smtpd): EHLO/HELO, STARTTLS, AUTH, MAIL,
      RCPT, DATA, RSET, NOOP, QUIT. Each accepted message is appended as {"from":...,
      "to":[...], "data": "<message>", "tls": <after STARTTLS>, "user": <authenticated
      user or null>}. With "reject", the first DATA is answered 554 (then 250).
      --tls offers STARTTLS (python ssl with CERT/KEY, PEM). --auth offers AUTH with the
      mechanisms of --mechs (default PLAIN,LOGIN), only after STARTTLS when --tls is
      given (as real servers do), and then refuses MAIL before a successful AUTH (530).
      Every AUTH is appended as {"auth": <mechanism>, "user":..., "password":...,
      "tls":..., "ok": <accepted>}; a wrong pair is answered 535.

  notify_sinks.py cert DIR SAN
      Writes a throwaway self-signed certificate DIR/cert.pem (CN vigil-test, subject
      alternative names SAN, e.g. "DNS:vigil-test") and its key DIR/key.pem with
      openssl, valid one day, for the --tls options.

The sinks bind 127.0.0.1 only and run until killed.
"""
import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()


def append(path, obj):
    with lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj) + "\n")
        f.flush()


def run_http(port, out, tls):
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
            auth = self.headers.get("Authorization")
            if parts[0] == "auth" and len(parts) > 2:
                want = base64.b64encode(f"{parts[1]}:{parts[2]}".encode()).decode()
                if auth != "Basic " + want:
                    status = 401
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
                         "auth": auth, "body": body})
            msg = (b"ok" if status == 200 else b"unauthorized" if status == 401
                   else b"injected failure")
            self.send_response(status)
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)

    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()


def run_smtp(port, out, reject, tls, auth, mechs):
    state = {"rejects_left": 1 if reject else 0}
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])

    async def session(reader, writer):
        def send(line):
            writer.write((line + "\r\n").encode())

        async def read_line():
            return (await reader.readline()).decode("utf-8", "replace").rstrip("\r\n")

        def b64(s):
            try:
                return base64.b64decode(s).decode("utf-8", "replace")
            except ValueError:
                return None

        async def do_auth(args):
            mech = args[0].upper() if args else ""
            if mech not in mechs:
                send("504 5.5.4 mechanism not offered")
                return False
            if mech == "PLAIN":
                resp = args[1] if len(args) > 1 else None
                if resp is None:
                    send("334 ")
                    await writer.drain()
                    resp = await read_line()
                parts = (b64(resp) or "").split("\0")
                user, pw = (parts[1], parts[2]) if len(parts) == 3 else (None, None)
            else:
                send("334 VXNlcm5hbWU6")
                await writer.drain()
                user = b64(await read_line())
                send("334 UGFzc3dvcmQ6")
                await writer.drain()
                pw = b64(await read_line())
            ok = f"{user}:{pw}" == auth
            append(out, {"auth": mech, "user": user, "password": pw, "tls": sess["tls"],
                         "ok": ok})
            send("235 2.7.0 authenticated" if ok else "535 5.7.8 bad credentials")
            return ok

        sess = {"tls": False, "user": None}
        send("220 sink ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                if verb == "HELO":
                    send("250 sink")
                else:
                    ext = ["sink", "8BITMIME"]
                    if ctx and not sess["tls"]:
                        ext.append("STARTTLS")
                    if auth and (sess["tls"] or not ctx):
                        ext.append("AUTH " + " ".join(mechs))
                    for i, e in enumerate(ext):
                        send(("250 " if i == len(ext) - 1 else "250-") + e)
            elif verb == "STAR" and cmd.upper() == "STARTTLS" and ctx and not sess["tls"]:
                send("220 2.0.0 go ahead")
                await writer.drain()
                await writer.start_tls(ctx)
                sess["tls"] = True
                mail_from, rcpts = None, []
                continue
            elif verb == "AUTH" and auth and sess["user"] is None:
                args = cmd.split()[1:]
                if await do_auth(args):
                    sess["user"] = auth.split(":", 1)[0]
            elif verb == "MAIL":
                if auth and sess["user"] is None:
                    send("530 5.7.0 authentication required")
                else:
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
                    append(out, {"from": mail_from, "to": rcpts, "data": "".join(data),
                                 "tls": sess["tls"], "user": sess["user"]})
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


def make_cert(outdir, san):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=vigil-test", "-addext", "subjectAltName=" + san,
                    "-keyout", os.path.join(outdir, "key.pem"),
                    "-out", os.path.join(outdir, "cert.pem")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main(argv):
    if argv[1] == "cert":
        make_cert(argv[2], argv[3])
        return
    kind, port, out = argv[1], int(argv[2]), argv[3]
    rest = argv[4:]
    tls, auth, mechs, reject = None, None, ["PLAIN", "LOGIN"], False
    while rest:
        a = rest.pop(0)
        if a == "reject":
            reject = True
        elif a == "--tls":
            tls = (rest.pop(0), rest.pop(0))
        elif a == "--auth":
            auth = rest.pop(0)
        elif a == "--mechs":
            mechs = rest.pop(0).upper().split(",")
        else:
            sys.exit(f"notify_sinks.py: unknown argument {a}")
    if kind == "http":
        run_http(port, out, tls)
    else:
        run_smtp(port, out, reject, tls, auth, mechs)


if __name__ == "__main__":
    main(sys.argv)
