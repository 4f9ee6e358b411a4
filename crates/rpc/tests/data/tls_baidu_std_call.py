#!/usr/bin/env python3
"""One baidu_std call over TLS made with Python's ssl module, for
crates/rpc/tests/tls_interop.rs.

usage: tls_baidu_std_call.py HOST PORT CA_FILE REQUEST_HEX

Connects to HOST:PORT over TLS (verifying the server against CA_FILE and
HOST), sends the request frame REQUEST_HEX (a golden frame captured from
bRPC), reads one whole response frame and prints it as hex. Exits 1 with
the reason on any failure.
"""

import socket
import ssl
import struct
import sys


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(out), n))
        out += chunk
    return out


def main():
    host, port, ca_file, request_hex = sys.argv[1:5]
    ctx = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(bytes.fromhex(request_hex))
            head = recv_exact(tls, 12)
            if head[:4] != b"PRPC":
                raise ValueError("not a baidu_std frame: %r" % head)
            (body_size,) = struct.unpack(">I", head[4:8])
            body = recv_exact(tls, body_size)
            print((head + body).hex())
            print("version=%s" % tls.version(), file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the test prints it
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
