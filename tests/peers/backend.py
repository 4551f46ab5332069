#!/usr/bin/python3
"""A scriptable WebSocket chat backend for chatmond's black-box tests.

It listens on 127.0.0.1 (port 0 = any free port) and prints one JSON object per
line on stdout for every event, so the test that started it can see what
chatmond sent it:

  {"ev": "listening", "port": 41234}
  {"ev": "open", "conn": 1, "path": "/echo?agent=alice", "headers": [[k, v], ...],
   "offered": "a, b", "subprotocol": "a"}
  {"ev": "msg", "conn": 1, "kind": "text"|"binary", "len": 5, "sha": "...", "head": "hello"}
  {"ev": "close", "conn": 1, "code": 4000, "reason": "bye"}      (the code chatmond sent)
  {"ev": "refused", "path": "/refuse"}
  {"ev": "pong", "conn": 1, "ok": true}
  {"ev": "flood", "conn": 1, "sent": 1048576}   {"ev": "flood_done", "conn": 1, "sent": N}

What a connection does depends on the first path segment that names a
behaviour (so "/v2/echo" and "/base/close" work behind a prefix); the query
string tunes it:

  echo (default)  send every message back
  delay?ms=500    answer the handshake late (process_request sleeps), then echo
                  (echo=0: only record, so that a reply never races chatmond's close)
  refuse          answer the handshake with HTTP 403
  redirect?to=URL&code=302  answer the handshake with that redirect to URL
  close?after=N&code=C&reason=R   echo N messages, then close with (C, R)
  badutf8         after the first message, send a text frame that is not UTF-8
  gen             each text message "text N" | "binary N" | "fragtext N K" |
                  "fragbinary N K" is answered by a generated message of N
                  bytes (pattern_text/pattern_bytes), in K-byte fragments
  say?script=FILE send the frames listed in the JSON file FILE
                  ([{"text": "..."} | {"binary": "hex"}]), then echo if then=echo
  stall           accept, then never read (start with --max-queue 1 --read-limit 4096)
  flood?total=N   send 64 KiB binary messages until N bytes are sent or sending blocks
                  ({"ev": "flood_closed", ..., "code": C, "reason": R} if chatmond closes)
  ping            ping chatmond, report the pong, then echo
  raw?hex=H&mute=1  on open write the bytes H as they are (a frame chatmond must
                  refuse); mute: stop reading, so chatmond's close is never
                  answered; otherwise record the close chatmond sent
  trickle?n=N&ms=T  on the first message, send a text frame header for N bytes,
                  then one payload byte every T ms
  tabs?agent=A    an agent with several tabs: a text message {"show": S} sends
                  the string S to every open tabs connection of agent A, in the
                  order they opened (a customer message shown on each tab)
--quiet leaves out the msg events (for benchmarks).
--tls-cert FILE --tls-key FILE: wss:// instead of ws://; each TLS handshake
reports the server name the client asked for: {"ev": "sni", "name": "localhost"}.
Any path: pick=NAME answers the handshake with subprotocol NAME (pick=none:
no subprotocol); without pick the first offered one is chosen.
"""

import argparse
import asyncio
import hashlib
import http
import json
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.legacy.server import WebSocketServerProtocol

BEHAVIOURS = ("echo", "delay", "refuse", "redirect", "close", "badutf8", "gen", "say",
              "stall", "flood", "ping", "raw", "rawfile", "trickle", "tabs")

TABS = {}   # agent: its open tabs connections, in the order they opened


def pattern_bytes(n):
    """n deterministic bytes covering every byte value (the tests use the same)."""
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def pattern_text(n):
    """n ASCII characters = n UTF-8 bytes."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
    return (alphabet * (n // len(alphabet) + 1))[:n]


def emit(**event):
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def parse(path):
    """(behaviour, query dict with single values) of a request path."""
    url = urlsplit(path)
    query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    for segment in url.path.split("/"):
        if segment in BEHAVIOURS:
            return segment, query
    return "echo", query


def describe(message):
    if isinstance(message, str):
        data = message.encode("utf-8")
        return {"kind": "text", "len": len(data),
                "sha": hashlib.sha256(data).hexdigest(), "head": message[:300]}
    return {"kind": "binary", "len": len(message),
            "sha": hashlib.sha256(message).hexdigest(), "head": message[:64].hex()}


class Protocol(WebSocketServerProtocol):
    """Chooses the subprotocol from the request's query (self.path is set by now)."""

    def select_subprotocol(self, client_subprotocols, server_subprotocols):
        _, query = parse(self.path)
        pick = query.get("pick")
        if pick == "none":
            return None
        if pick:
            return pick
        return client_subprotocols[0] if client_subprotocols else None


async def process_request(path, headers):
    behaviour, query = parse(path)
    if behaviour == "refuse":
        emit(ev="refused", path=path)
        return http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain")], b"forbidden\n"
    if behaviour == "redirect":
        emit(ev="redirected", path=path)
        return (http.HTTPStatus(int(query.get("code", "302"))),
                [("Location", query["to"]), ("Content-Length", "0")], b"")
    if behaviour == "delay":
        await asyncio.sleep(int(query.get("ms", "500")) / 1000)
    return None


class Conn:
    counter = 0
    quiet = False

    def __init__(self, ws):
        Conn.counter += 1
        self.id = Conn.counter
        self.ws = ws
        self.received = 0

    async def reader(self, on_message=None):
        """Record every message until the connection closes, then the close code."""
        try:
            async for message in self.ws:
                self.received += 1
                if not self.quiet:
                    emit(ev="msg", conn=self.id, **describe(message))
                if on_message:
                    await on_message(message)
        except websockets.ConnectionClosed:
            pass
        rcvd = self.ws.close_rcvd
        emit(ev="close", conn=self.id,
             code=rcvd.code if rcvd else 1006, reason=rcvd.reason if rcvd else "")


async def generate(ws, command):
    words = command.split()
    kind, size = words[0], int(words[1])
    chunk = int(words[2]) if len(words) > 2 else 0
    data = pattern_text(size) if kind.endswith("text") else pattern_bytes(size)
    if not kind.startswith("frag"):
        await ws.send(data)
        return
    # Frame by frame: when the peer closes half-way (a message over its
    # limit), ws.send(iterable) would fail the connection and never record
    # the close code the peer sent; write_frame just stops.
    raw = data.encode() if isinstance(data, str) else data
    opcode = 0x1 if isinstance(data, str) else 0x2
    try:
        for i in range(0, max(len(raw), 1), chunk):
            await ws.write_frame(i + chunk >= len(raw), opcode if i == 0 else 0x0,
                                 raw[i:i + chunk])
    except (websockets.ConnectionClosed, websockets.InvalidState):
        pass


async def flood(conn, total):
    block = pattern_bytes(65536)
    sent = 0
    try:
        while sent < total:
            await conn.ws.send(block)
            sent += len(block)
            if sent % (1 << 20) == 0:
                emit(ev="flood", conn=conn.id, sent=sent)
        emit(ev="flood_done", conn=conn.id, sent=sent)
    except websockets.ConnectionClosed as e:
        emit(ev="flood_closed", conn=conn.id, sent=sent,
             code=e.rcvd.code if e.rcvd else 1006, reason=e.rcvd.reason if e.rcvd else "")


async def handler(ws):
    conn = Conn(ws)
    behaviour, query = parse(ws.path)
    emit(ev="open", conn=conn.id, path=ws.path,
         headers=[[k, v] for k, v in ws.request_headers.raw_items()],
         offered=ws.request_headers.get("Sec-WebSocket-Protocol"),
         subprotocol=ws.subprotocol)

    async def echo(message):
        await ws.send(message)

    if behaviour in ("echo", "delay"):
        await conn.reader(echo if query.get("echo") != "0" else None)
    elif behaviour == "close":
        after = int(query.get("after", "0"))
        code, reason = int(query.get("code", "1000")), query.get("reason", "")
        if after == 0:
            await ws.close(code, reason)

        async def echo_then_close(message):
            await ws.send(message)
            if conn.received == after:
                await ws.close(code, reason)
        await conn.reader(echo_then_close)
    elif behaviour == "badutf8":
        async def bad(message):
            await ws.write_frame(True, 0x1, b"\xff\xfe")
        await conn.reader(bad)
    elif behaviour == "gen":
        await conn.reader(lambda message: generate(ws, message))
    elif behaviour == "say":
        with open(query["script"], encoding="utf-8") as f:
            script = json.load(f)
        for frame in script:
            await ws.send(frame["text"] if "text" in frame else bytes.fromhex(frame["binary"]))
        await conn.reader(echo if query.get("then") == "echo" else None)
    elif behaviour == "stall":
        emit(ev="stalled", conn=conn.id)
        await ws.wait_closed()
    elif behaviour == "flood":
        await flood(conn, int(query.get("total", str(64 << 20))))
        await ws.wait_closed()
    elif behaviour == "raw":
        ws.transport.write(bytes.fromhex(query.get("hex", "")))
        if query.get("mute"):
            ws.transport.pause_reading()
            emit(ev="muted", conn=conn.id)
            await ws.wait_closed()
            emit(ev="close", conn=conn.id, code=1006, reason="")
        else:
            await conn.reader()
    elif behaviour == "rawfile":
        # the file's bytes as they are (frames built by the test), in
        # writes of `chunk` bytes a millisecond apart (0: one write), so
        # that chatmond reads frames cut at every kind of place
        with open(query["file"], "rb") as f:
            data = f.read()
        chunk = int(query.get("chunk", "0")) or len(data)
        for i in range(0, len(data), chunk):
            ws.transport.write(data[i:i + chunk])
            await asyncio.sleep(0.001)
        await conn.reader(echo)
    elif behaviour == "trickle":
        async def trickle(message):
            n, ms = int(query.get("n", "1000")), int(query.get("ms", "100"))
            head = bytes([0x81, 126]) + n.to_bytes(2, "big") if n < 65536 else \
                bytes([0x81, 127]) + n.to_bytes(8, "big")
            ws.transport.write(head)
            for _ in range(n):
                if ws.transport.is_closing():
                    break
                ws.transport.write(b"a")
                await asyncio.sleep(ms / 1000)
        async def start(message):       # in the background: the reader must see the close
            asyncio.ensure_future(trickle(message))
        await conn.reader(start)
    elif behaviour == "tabs":
        tabs = TABS.setdefault(query.get("agent", ""), [])
        tabs.append(ws)

        async def show(message):
            for tab in list(tabs):
                await tab.send(json.loads(message)["show"])
        try:
            await conn.reader(show)
        finally:
            tabs.remove(ws)
    elif behaviour == "ping":
        try:
            waiter = await ws.ping(b"hop")
            await asyncio.wait_for(waiter, 10)
            emit(ev="pong", conn=conn.id, ok=True)
        except (asyncio.TimeoutError, websockets.ConnectionClosed):
            emit(ev="pong", conn=conn.id, ok=False)
        await conn.reader(echo)


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1", help="the address to listen on (::1: IPv6)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--max-queue", type=int, default=32)
    ap.add_argument("--read-limit", type=int, default=1 << 16)
    ap.add_argument("--quiet", action="store_true", help="no msg events (benchmarks)")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    Conn.quiet = args.quiet
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        tls.sni_callback = lambda sock, name, ctx: emit(ev="sni", name=name)
    async with websockets.serve(handler, args.host, args.port,
                                create_protocol=Protocol, subprotocols=["*"],
                                process_request=process_request,
                                max_size=None, max_queue=args.max_queue,
                                read_limit=args.read_limit, write_limit=1 << 16,
                                ping_interval=None, close_timeout=5, ssl=tls) as server:
        emit(ev="listening", port=server.sockets[0].getsockname()[1])
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
