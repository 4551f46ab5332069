#!/usr/bin/python3
"""How late chatmond's SLA timers fire under load.

A customer backend (tests/peers/customer.py) opens 10 000 conversations in
about a second, spread over several agent connections, with
sla.first_response=1s and sla.warn_at=0.5, while a few other agents keep
chat turns flowing (each answered by a non-chat ack). Nobody answers the
customers, so every conversation has a warn at 0.5 s and a breach at 1 s:
20 000 timers. When the agents have seen them all, chatmond gets SIGTERM and
its stats line gives the timers fired and their lateness (the daemon's own
measure: wall clock at the callback minus the deadline). The agents' view
is printed beside it: each frame's arrival against the time customer.py
sent the turn (plus 0.5 s or 1 s for a warning; each agent connection is a
process of its own), and how many warnings overtook their own customer
turn. Markdown out; exits non-zero if fewer timers fired than expected, or
fewer warnings and breaches, or on any error.

The load generators are Python processes on the same two cores as
chatmond: they compete with it for the CPU. --nice N runs chatmond at that
niceness (negative needs root), the way a production host gives the daemon
the CPU before anything else on it.

With --redis a redis-server of its own holds the alerts and, unless
--takeover 0, every conversation's SLA state (docs/sla.md): each chat turn
is then a Lua script in Redis. The run also prints what Redis and
chatmond spent (commands, bytes, CPU), so that the state in Redis can be
set against per-instance snapshots (--takeover 0) in the same run.

usage: CHATMOND=build/chatmond tests/bench/sla_late.py [--conversations 10000]
       [--agents 8] [--echo-agents 4] [--spread-ms 1000] [--nice N]
       [--redis [--takeover 1s]]
"""

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import websockets

from benchlib import PYTHON, ROOT, cleanup, cpu_s, redis_info, redis_start, \
    wait_listening, write_conf
DUE = {"sla.warn": 0.5, "sla.breach": 1.0}


def customer_process(url, n):
    """One agent connection in a process of its own: Python, not chatmond,
    would otherwise be what cannot keep up with 30 000 frames a second."""
    late = {"turn": [], "sla.warn": [], "sla.breach": [], "overtook": []}
    asyncio.run(customer_agent(url, n, late))
    return late


async def customer_agent(url, n, late):
    """Reads n customer turns and their 2n warnings. Delays in ms, against the
    time customer.py sent the turn (its "t", on the shared monotonic clock):
    the turn's own relay, each warning's arrival past the turn + due."""
    sent, waiting = {}, {}
    got = 0
    async with websockets.connect(url, ping_interval=None, open_timeout=10,
                                  close_timeout=5, max_size=None) as ws:
        while got < 2 * n or len(sent) < n:
            f = json.loads(await asyncio.wait_for(ws.recv(), 30))
            t = time.monotonic()
            if f.get("type") == "message":
                conv = f["conversation"]
                sent[conv] = f["t"]
                late["turn"].append((t - f["t"]) * 1000)
                for kind, ta in waiting.pop(conv, ()):
                    late[kind].append((ta - f["t"] - DUE[kind]) * 1000)
            elif f.get("type") == "chatmon.warning":
                conv, kind = f["conversation"], f["alert"]["type"]
                got += 1
                if conv in sent:
                    late[kind].append((t - sent[conv] - DUE[kind]) * 1000)
                else:           # the warning overtook its own customer turn
                    late["overtook"].append(1)
                    waiting.setdefault(conv, []).append((kind, t))


async def echo_agent(url, stop, counter, k):
    """Chat turns one after another, each waiting for the backend's ack."""
    text = "亲,您好,这款羽绒服是白鸭绒的,充绒量两百克,今天下单明天发货,支持七天无理由退换货哦" * 2
    async with websockets.connect(url, ping_interval=None, open_timeout=10,
                                  close_timeout=5) as ws:
        i = 0
        while not stop.is_set():
            await ws.send(json.dumps({"type": "message", "conversation": f"e{k}-{i % 50}",
                                      "text": text}, ensure_ascii=False))
            await asyncio.wait_for(ws.recv(), 10)
            i += 1
            counter[0] += 1


async def load(port, args):
    late = {"turn": [], "sla.warn": [], "sla.breach": [], "overtook": []}
    counter = [0]
    stop = asyncio.Event()
    per = [args.conversations // args.agents + (1 if i < args.conversations % args.agents else 0)
           for i in range(args.agents)]
    echoes = [asyncio.create_task(echo_agent(f"ws://127.0.0.1:{port}/ack?agent=echo{k}",
                                             stop, counter, k))
              for k in range(args.echo_agents)]
    await asyncio.sleep(0.3)            # the other traffic is flowing first
    t0 = time.monotonic()
    c0 = counter[0]
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(len(per), mp_context=ctx) as pool:
        parts = await asyncio.gather(*(asyncio.wrap_future(pool.submit(
            customer_process,
            f"ws://127.0.0.1:{port}/gen?n={n}&conv=a{k}&spread={args.spread_ms}&agent=agent{k}",
            n)) for k, n in enumerate(per)))
    secs = time.monotonic() - t0
    for part in parts:
        for kind, v in part.items():
            late[kind].extend(v)
    echoed = counter[0] - c0
    stop.set()
    await asyncio.gather(*echoes)
    return late, secs, echoed


def stats_line(log):
    m = re.findall(r"^chatmond: info: main: stats: (.*)$", log, re.M)
    if not m:
        raise RuntimeError("no stats line in chatmond's log")
    return {k: int(v) if v.isdigit() else v for k, v in
            (kv.split("=", 1) for kv in m[-1].split())}


def q(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conversations", type=int, default=10000)
    ap.add_argument("--agents", type=int, default=8)
    ap.add_argument("--echo-agents", type=int, default=4)
    ap.add_argument("--spread-ms", type=int, default=1000)
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--redis", action="store_true")
    ap.add_argument("--takeover", default="1s")
    args = ap.parse_args()
    chatmond = os.environ.get("CHATMOND") or os.path.join(ROOT, "build", "chatmond")
    expected = 2 * args.conversations

    backend = subprocess.Popen([PYTHON, os.path.join(ROOT, "tests", "peers", "customer.py"),
                                "--quiet"], stdout=subprocess.PIPE, text=True)
    daemon = rproc = None
    tmp = tempfile.TemporaryDirectory(prefix="chatmon-sla-late-")
    gen = []
    cost = None
    redis_events = []
    try:
        extra = ""
        if args.redis:
            rproc, sock = redis_start(tmp.name)
            extra = (f"redis:\n  url: unix:{sock}\n  snapshot: 2s\n"
                     f"  takeover: {args.takeover}\n")
        backend_port = json.loads(backend.stdout.readline())["port"]

        def drain():
            for line in backend.stdout:
                ev = json.loads(line)
                if ev.get("ev") == "gen_done":
                    gen.append(ev["secs"])
        threading.Thread(target=drain, daemon=True).start()

        conf, port = write_conf(tmp.name, backend_port, "sla:\n  first_response: 1s\n"
                                "  warn_at: 0.5\n  timezone: UTC\n" + extra)
        logpath = os.path.join(tmp.name, "chatmond.log")
        with open(logpath, "wb") as log:
            prefix = ["nice", "-n", str(args.nice)] if args.nice else []
            daemon = subprocess.Popen([*prefix, chatmond, "-c", conf], stderr=log,
                                      stdout=subprocess.DEVNULL)
            wait_listening(port, daemon)
            time.sleep(0.5)
            t0, c0 = time.monotonic(), cpu_s(daemon.pid)
            r0 = redis_info(sock) if args.redis else None
            late, secs, echoed = asyncio.run(asyncio.wait_for(load(port, args), 50))
            time.sleep(2.5)     # a snapshot interval and more, with every customer waiting
            wall = time.monotonic() - t0
            if args.redis:
                r1 = redis_info(sock)
                cost = (wall, cpu_s(daemon.pid) - c0,
                        {k: r1[k] - r0[k] for k in r0 if k != "stats"})
            daemon.send_signal(signal.SIGTERM)
            rc = daemon.wait(20)
        with open(logpath, encoding="utf-8", errors="replace") as f:
            text = f.read()
            st = stats_line(text)
        # a connection to Redis lost or resent during the run is part of the figure
        redis_events = [ln for ln in text.splitlines()
                        if re.search(r"warn: (rconn|convstore|alert)_", ln) or "sent again" in ln]
        if rc != 0:
            raise RuntimeError(f"chatmond exited with {rc}")
    finally:
        if rproc is not None:
            rproc.kill()
            rproc.wait()
        cleanup(daemon, backend, tmp)

    fires = st["sla_timer_fires"]
    print(f"SLA timers under load (chatmond at nice {args.nice}): "
          f"{args.conversations} conversations opened over "
          f"{max(gen) if gen else float('nan'):.2f} s on {args.agents} agent connections, "
          f"{args.echo_agents} other agents exchanging {echoed} chat turns "
          f"({echoed / secs:.0f}/s) meanwhile\n")
    print("| chatmond's timers | value |")
    print("|---|---:|")
    print(f"| timers fired (expected {expected}) | {fires} |")
    print(f"| warnings / breaches / escalations | {st['sla_warnings']} / "
          f"{st['sla_breaches']} / {st['sla_escalations']} |")
    events = st["sla_warnings"] + st["sla_breaches"] + st["sla_escalations"]
    print(f"| wake-ups with nothing due yet (fires - events) | {fires - events} |")
    print(f"| mean lateness (over all fires) | "
          f"{st['sla_timer_late_sum_us'] / max(fires, 1) / 1000:.2f} ms |")
    print(f"| max lateness | {st['sla_timer_late_max_us'] / 1000:.2f} ms |")
    print(f"| fired more than 10 ms late | {st['sla_timer_late_over_10ms']} "
          f"({100 * st['sla_timer_late_over_10ms'] / max(fires, 1):.2f} %) |")
    print("\nEnd to end, at the agents (Python peers on the same machine: their own"
          " delays count too)\n")
    print("| from the customer's send | frames | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for kind, what in (("turn", "customer turn relayed"), ("sla.warn", "sla.warn past due"),
                       ("sla.breach", "sla.breach past due")):
        v = late[kind]
        if v:
            print(f"| {what} | {len(v)} | {statistics.median(v):.1f} | {q(v, 99):.1f} "
                  f"| {max(v):.1f} |")
    print(f"\nwarnings that reached the agent before their own customer turn: "
          f"{len(late['overtook'])}")
    if args.redis:
        print(f"\nRedis events in chatmond's log: {len(redis_events)}")
        for ln in redis_events[:5]:
            print(f"    {ln[:160]}")
    if cost is not None:
        wall, ccpu, d = cost
        how = "snapshots only" if args.takeover in ("0", "0s", "0ms") else \
            f"conversation state in Redis (takeover {args.takeover})"
        print(f"\nCost over the {wall:.1f} s of the run, {how}\n")
        print("| what | value |")
        print("|---|---:|")
        print(f"| chatmond CPU | {ccpu:.2f} s ({100 * ccpu / wall:.1f} % of a core) |")
        print(f"| Redis commands | {d['cmds']} ({d['cmds'] / wall:.0f}/s) |")
        print(f"| Redis bytes in | {d['in'] / 1024:.0f} KiB ({d['in'] / 1024 / wall:.0f} KiB/s) |")
        print(f"| Redis bytes out | {d['out'] / 1024:.0f} KiB ({d['out'] / 1024 / wall:.0f} KiB/s) |")
        print(f"| Redis CPU | {d['cpu']:.2f} s ({100 * d['cpu'] / wall:.1f} % of a core) |")
    if fires < expected or st["sla_warnings"] + st["sla_breaches"] < expected:
        print(f"sla_late.py: only {fires} timers fired and {st['sla_warnings']} warnings, "
              f"{st['sla_breaches']} breaches, expected {expected} in all", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:      # any error: say so and fail
        print(f"sla_late.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
