#!/usr/bin/python3
"""Round-trip latency through chatmond versus straight to the backend.

One echo backend (tests/peers/backend.py); one client sends N small text
messages one at a time, each waiting for its echo: first directly to the
backend, then through a chatmond ($CHATMOND) started here with its own
temporary config. Prints p50/p99/mean in microseconds and the ratios as a
Markdown table. Exits non-zero on any error.

usage: CHATMOND=build/chatmond tests/bench/rtt.py [--messages 10000] [--warmup 500] [--size 64]
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import websockets

from benchlib import PYTHON, ROOT, cleanup, wait_listening, write_conf


def turn(i, size):
    """A chat turn of size bytes of UTF-8 (at least the JSON around the text)."""
    head = '{"type":"message","conversation":"c-1","text":"亲,在的,订单%08d' % i
    pad = max(0, size - len(head.encode()) - 2)
    return head + "x" * pad + '"}'


async def measure(url, n, warmup, size):
    """Round-trip times in microseconds of n messages, after warmup."""
    rtts = []
    async with websockets.connect(url, ping_interval=None, open_timeout=10,
                                  close_timeout=5, compression=None) as ws:
        for i in range(warmup + n):
            # a chat turn, so chatmond runs its whole pipeline (codec, rules)
            # on the way up and on the echo coming back
            message = turn(i, size)
            t0 = time.perf_counter_ns()
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 5)
            t1 = time.perf_counter_ns()
            if echo != message:
                raise RuntimeError(f"message {i}: wrong echo {echo[:20]!r}")
            if i >= warmup:
                rtts.append((t1 - t0) / 1000)
    return rtts


def summary(rtts):
    q = statistics.quantiles(rtts, n=100, method="inclusive")
    return {"p50": q[49], "p99": q[98], "mean": statistics.fmean(rtts)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    chatmond = os.environ.get("CHATMOND") or os.path.join(ROOT, "build", "chatmond")

    backend = subprocess.Popen([PYTHON, os.path.join(ROOT, "tests", "peers", "backend.py"),
                                "--quiet"],
                               stdout=subprocess.PIPE, text=True)
    daemon = None
    tmp = tempfile.TemporaryDirectory(prefix="chatmon-bench-")
    try:
        first = json.loads(backend.stdout.readline())
        backend_port = first["port"]
        # keep draining the backend's event lines so its stdout never blocks it
        threading.Thread(target=backend.stdout.read, daemon=True).start()

        conf, port = write_conf(tmp.name, backend_port)
        log = open(os.path.join(tmp.name, "chatmond.log"), "wb")
        daemon = subprocess.Popen([chatmond, "-c", conf], stderr=log, stdout=subprocess.DEVNULL)
        wait_listening(port, daemon)

        direct = asyncio.run(measure(f"ws://127.0.0.1:{backend_port}/echo?bench=direct",
                                     args.messages, args.warmup, args.size))
        through = asyncio.run(measure(f"ws://127.0.0.1:{port}/echo?agent=bench",
                                      args.messages, args.warmup, args.size))

        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(15)
        if rc != 0:
            raise RuntimeError(f"chatmond exited with {rc}")
    finally:
        cleanup(daemon, backend, tmp)

    d, t = summary(direct), summary(through)
    print(f"round trip, {args.messages} chat turns of {args.size} bytes "
          f"(after {args.warmup} warm-up), microseconds\n")
    print("| path | p50 | p99 | mean |")
    print("|---|---:|---:|---:|")
    print(f"| direct | {d['p50']:.1f} | {d['p99']:.1f} | {d['mean']:.1f} |")
    print(f"| through chatmond | {t['p50']:.1f} | {t['p99']:.1f} | {t['mean']:.1f} |")
    print(f"| ratio | {t['p50'] / d['p50']:.2f} | {t['p99'] / d['p99']:.2f} "
          f"| {t['mean'] / d['mean']:.2f} |")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:      # any error: say so and fail
        print(f"rtt.py: error: {e}", file=sys.stderr)
        sys.exit(1)
