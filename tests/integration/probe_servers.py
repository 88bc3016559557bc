"""Local servers for probes_against_local_servers.sh, all on 127.0.0.1.

Usage: probe_servers.py HTTP_PORT HTTPS_PORT TCP_PORT DNS_PORT CERT KEY
  HTTP   http.server: /ok 200 "vigil probe ok", /redirect 302 -> /ok, /error 503
  HTTPS  the same over TLS with CERT/KEY
  TCP    greets "HELLO vigil" and echoes every line back
  DNS    UDP: "example.test" A -> 192.0.2.7 (TTL 60), anything else NXDOMAIN
Runs until killed.
"""
import http.server
import socket
import socketserver
import ssl
import struct
import sys
import threading


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        code, body = (503, b"oops") if self.path == "/error" else (200, b"vigil probe ok")
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"HELLO vigil\n")
        for line in self.rfile:
            self.wfile.write(line)


def dns_answer(q):
    name = b"\x07example\x04test\x00"
    if len(q) < 12 + len(name) + 4:
        return None
    qend = 12 + len(name) + 4
    known = q[12:12 + len(name)] == name
    hdr = q[:2] + bytes([0x81, 0x80 if known else 0x83]) + struct.pack(">HHHH", 1, 1 if known else 0, 0, 0)
    out = hdr + q[12:qend]
    if known:
        out += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 7])
    return out


def dns_loop(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        q, addr = s.recvfrom(512)
        a = dns_answer(q)
        if a:
            s.sendto(a, addr)


def main():
    http_port, https_port, tcp_port, dns_port = map(int, sys.argv[1:5])
    cert, key = sys.argv[5], sys.argv[6]
    socketserver.TCPServer.allow_reuse_address = True
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", http_port), Handler)
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", https_port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", tcp_port), Echo)
    for target in (plain.serve_forever, tls.serve_forever, echo.serve_forever):
        threading.Thread(target=target, daemon=True).start()
    threading.Thread(target=dns_loop, args=(dns_port,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
