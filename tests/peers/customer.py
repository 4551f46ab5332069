#!/usr/bin/python3
"""A chat backend whose customers write on a schedule, for the SLA tests and
benchmarks. It listens on 127.0.0.1 and prints one JSON event per line, like
backend.py: listening, open, sent, msg, gen_done, close. The path names what
a connection does (the query tunes it; the agent's own query rides along):

  /script?file=FILE   send the frames of the JSON file FILE,
                      [{"at": ms after the open, "text": "<frame>"}, ...],
                      each at its time; record what the agent sends, echo nothing
  /gen?n=N&conv=P&spread=MS   N customer turns in conversations P-0 .. P-(N-1),
                      evenly over MS ms, each with "t": its send time
                      (time.monotonic()); then record, echo nothing
  /ack (or any other) answer each message with a non-chat {"type":"ack"} frame

--quiet leaves out the msg and sent events (benchmarks).
"""

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import parse_qs, urlsplit

import websockets

QUIET = False


def emit(**event):
    sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
    sys.stdout.flush()


async def record(ws, conn, answer=None):
    try:
        async for message in ws:
            if not QUIET:
                emit(ev="msg", conn=conn, t=time.monotonic(),
                     head=message[:300] if isinstance(message, str) else message[:64].hex())
            if answer is not None:
                await ws.send(answer)
    except websockets.ConnectionClosed:
        pass
    rcvd = ws.close_rcvd
    emit(ev="close", conn=conn, code=rcvd.code if rcvd else 1006)


async def script(ws, conn, path):
    with open(path, encoding="utf-8") as f:
        steps = json.load(f)
    start = time.monotonic()
    for step in steps:
        await asyncio.sleep(max(0.0, start + step["at"] / 1000 - time.monotonic()))
        await ws.send(step["text"])
        if not QUIET:
            emit(ev="sent", conn=conn, at=step["at"], late_ms=round(
                (time.monotonic() - start) * 1000 - step["at"], 1))


async def generate(ws, conn, n, prefix, spread_ms):
    start = time.monotonic()
    for i in range(n):
        due = start + spread_ms / 1000 * i / max(n, 1)
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        # t: when it left, on the machine-wide monotonic clock (time.monotonic)
        await ws.send(json.dumps({"type": "message", "conversation": f"{prefix}-{i}",
                                  "text": "在吗,这款还有货吗", "t": time.monotonic()},
                                 ensure_ascii=False))
    emit(ev="gen_done", conn=conn, sent=n, secs=round(time.monotonic() - start, 3))


class Counter:
    n = 0


async def handler(ws):
    Counter.n += 1
    conn = Counter.n
    url = urlsplit(ws.path)
    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
    what = url.path.rstrip("/").rsplit("/", 1)[-1]
    emit(ev="open", conn=conn, path=ws.path, t=time.monotonic())
    if what in ("script", "gen"):
        reader = asyncio.create_task(record(ws, conn))
        try:
            if what == "script":
                await script(ws, conn, query["file"])
            else:
                await generate(ws, conn, int(query["n"]), query.get("conv", f"g{conn}"),
                               float(query.get("spread", "1000")))
        except websockets.ConnectionClosed:
            pass            # the agent left before the script's end
        await reader
    else:
        await record(ws, conn, answer='{"type":"ack"}')


async def main():
    global QUIET
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    QUIET = args.quiet
    async with websockets.serve(handler, "127.0.0.1", args.port, max_size=None,
                                ping_interval=None, close_timeout=5) as server:
        emit(ev="listening", port=server.sockets[0].getsockname()[1])
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
