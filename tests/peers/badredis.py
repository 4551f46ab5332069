#!/usr/bin/python3
"""A server that speaks Redis's protocol (RESP) badly, for chatmond's tests.

It listens on 127.0.0.1 (port 0 = any free port), prints
{"ev": "listening", "port": N} on stdout, and answers every connection as a
master would (+OK, ROLE as a master, :1, $-1), except for one thing, the mode:

  extra     after its first answer, a reply to no command (+OK)
  arrayhdr  ROLE is answered by the header of an array of 50 million
            elements, one element, then nothing
"""

import json
import socket
import sys
import threading


def commands(buf):
    """The whole commands (RESP arrays of bulk strings) at the front of buf, and the rest."""
    out = []
    while buf.startswith(b"*"):
        try:
            end = buf.index(b"\r\n")
            n, p, args = int(buf[1:end]), end + 2, []
            for _ in range(n):
                j = buf.index(b"\r\n", p)
                size = int(buf[p + 1:j])
                p = j + 2
                if len(buf) < p + size + 2:
                    return out, buf
                args.append(buf[p:p + size])
                p += size + 2
        except ValueError:
            return out, buf
        out.append(args)
        buf = buf[p:]
    return out, buf


def answer(name):
    if name == b"ROLE":
        return b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"
    if name in (b"AUTH", b"SELECT", b"CLIENT", b"PING", b"SET"):
        return b"+OK\r\n"
    if name in (b"GET", b"HGET", b"EVALSHA", b"XREAD", b"XREVRANGE"):
        return b"$-1\r\n" if name not in (b"XREVRANGE",) else b"*0\r\n"
    return b":1\r\n"


def serve(conn, mode):
    buf, answered = b"", 0
    with conn:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            cmds, buf = commands(buf + data)
            for args in cmds:
                name = args[0].upper() if args else b""
                if mode == "arrayhdr" and name == b"ROLE":
                    conn.sendall(b"*50000000\r\n:1\r\n")
                    continue
                out = answer(name)
                if mode == "extra" and answered == 0:
                    out += b"+OK\r\n"
                answered += 1
                try:
                    conn.sendall(out)
                except OSError:
                    return


def main():
    mode = sys.argv[1]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[2]) if len(sys.argv) > 2 else 0))
    srv.listen(64)
    print(json.dumps({"ev": "listening", "port": srv.getsockname()[1]}), flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
