#!/usr/bin/python3
"""A soak of chatmond under bad peers and a failing Redis (make soak, make soak-smoke).

One chatmond with the default rule pack, its own redis-server (AOF, fsync
always, so what Redis acknowledged survives its SIGKILL) and an echo backend
(tests/peers/backend.py), all on 127.0.0.1 with their own ports and temp dir.
For --seconds:

- good agents chat as agents do: one frame at a time, each a clean line, a
  line that warns or one that blocks (classified by `chatmon scan` first),
  and each must come back (its echo) or be answered with the block warning,
  unchanged, in order, within --bound seconds;
- bad peers, side by side, do what broken or hostile clients do: garbage
  before and during the handshake, handshakes that never end, malformed
  and hostile JSON, broken UTF-8, frames over the size limit, frames cut
  short, protocol violations, ping floods, readers that never read, ends
  and acknowledgements for conversations that are not theirs, and
  connections whose backend closes or refuses;
- the operator and the machine do what they do: SIGHUP every few seconds,
  Redis stopped (SIGSTOP) for 3 s, Redis killed and started again;
- /healthz is asked every half second and must answer within --bound.

At the end chatmond gets SIGTERM and must exit 0 with no sanitizer report,
no alert lost (alerts_dropped 0, and every alert Redis acknowledged is in
its stream) and every good agent's every frame accounted for. The figures
(frames, round trips, worst waits, RSS) are printed; the exit status is 1
on any failure, with the reasons.
"""

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))

import websockets  # noqa: E402

from conftest import (SANITIZER_MARKS, Backend, RedisServer,  # noqa: E402
                      free_port, rss_kib)
from conftest import ws_frame as frame  # noqa: E402

CHATMOND = os.environ.get("CHATMOND") or os.path.join(ROOT, "build", "chatmond")
CHATMON = os.environ.get("CHATMON") or os.path.join(ROOT, "build", "chatmon")
RULES = os.path.join(ROOT, "conf", "rules.d")
FRAMES = os.path.join(ROOT, "tests", "bench", "relay_frames.jsonl")

# Lines that break a rule, classified by `chatmon scan` at start (warn or block).
RULE_LINES = [
    "亲，给个好评返现5元哦",
    "加我微信 abc123 详聊，给您便宜",
    "你是不是傻，听不懂人话吗",
    "亲，五星好评截图发我，返您十元红包",
    "这个不支持退货的哦亲，拆了吊牌就不给退",
    "我们是全网最低价，国家级产品",
    "亲这边可以走对公转账，不用走平台",
    "不好意思亲，仓库里一件都不剩了",
]

MAX_MESSAGE = 65536


class Failures:
    def __init__(self):
        self.items = []

    def add(self, what):
        if len(self.items) < 50:
            self.items.append(what)
        print(f"soak: FAIL {what}", flush=True)


def classify(lines):
    """{text: 'clean'|'warn'|'block'} by chatmon scan with the default pack."""
    src = "".join(json.dumps({"role": "agent", "text": t}, ensure_ascii=False) + "\n"
                  for t in lines)
    out = subprocess.run([CHATMON, "scan", "--rules", RULES, "--format", "json"],
                         input=src, capture_output=True, text=True, check=True).stdout
    kinds = {}
    for text, line in zip(lines, out.splitlines()):
        actions = {h["action"] for h in json.loads(line)["hits"]}
        kinds[text] = "block" if "block" in actions else "warn" if "warn" in actions else "clean"
    return kinds


class Stats:
    def __init__(self):
        self.frames = 0
        self.blocked = 0
        self.rtts = []
        self.bad = {}
        self.health = []
        self.reconnects = 0

    def bad_done(self, kind):
        self.bad[kind] = self.bad.get(kind, 0) + 1


# --------------------------------------------------------------------------
# Good agents

async def good_agent(n, port, lines, kinds, stop, stats, fails, bound):
    """One agent: frames one at a time over a few conversations; every one
    must come back unchanged, or, when a rule blocks it, be answered by the
    block warning, within bound."""
    seq = 0
    while not stop.is_set():
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/echo?agent=good{n}",
                                          max_size=None, ping_interval=None,
                                          open_timeout=bound, close_timeout=bound) as ws:
                while not stop.is_set():
                    seq += 1
                    text = random.choice(lines)
                    conv = f"c-good{n}-{seq % 5}"
                    frame = json.dumps({"type": "message", "conversation": conv,
                                        "seq": seq, "text": text}, ensure_ascii=False)
                    t0 = time.monotonic()
                    await ws.send(frame)
                    await await_echo(ws, frame, conv, kinds[text] == "block", bound)
                    stats.rtts.append(time.monotonic() - t0)
                    stats.frames += 1
                    stats.blocked += kinds[text] == "block"
                    await asyncio.sleep(random.uniform(0, 0.03))
        except asyncio.TimeoutError:
            fails.add(f"good{n}: frame {seq} neither echoed nor blocked within {bound}s")
            stats.reconnects += 1
        except (OSError, websockets.WebSocketException) as e:
            fails.add(f"good{n}: connection failed at frame {seq}: {e!r}")
            stats.reconnects += 1
            await asyncio.sleep(0.2)


async def await_echo(ws, frame, conv, blocked, bound):
    """Frames from chatmond until this one's echo (or its block warning);
    the other warnings chatmond sends on the way are skipped."""
    deadline = time.monotonic() + bound
    while True:
        msg = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
        if msg == frame and not blocked:
            return
        doc = json.loads(msg)
        if doc.get("type", "").startswith("chatmon."):
            if blocked and doc.get("blocked") and doc.get("conversation") == conv:
                return
            continue
        raise AssertionError(f"unexpected frame {msg[:200]!r}, waiting for {frame[:200]!r}")


# --------------------------------------------------------------------------
# Bad peers: each returns once it has done its harm; none may hang chatmond.

def tcp(port, timeout=3):
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.settimeout(timeout)
    return s


def handshake(path, port, extra=""):
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def upgraded(port, path):
    """A raw socket past a successful upgrade (the 101 read), or None."""
    s = tcp(port)
    s.sendall(handshake(path, port))
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            s.close()
            return None
        buf += chunk
    if not buf.startswith(b"HTTP/1.1 101"):
        s.close()
        return None
    return s


def drain_until_close(s, seconds):
    """Read until chatmond closes: its close frame or the end of the
    stream (True), or seconds pass (False)."""
    s.settimeout(seconds)
    buf = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
            buf += chunk
            while len(buf) >= 2:            # chatmond's frames are not masked
                n, at = buf[1] & 0x7F, 2
                if n == 126:
                    n, at = (struct.unpack("!H", buf[2:4])[0], 4) if len(buf) >= 4 else (-1, 0)
                elif n == 127:
                    n, at = (struct.unpack("!Q", buf[2:10])[0], 10) if len(buf) >= 10 else (-1, 0)
                if n < 0 or len(buf) < at + n:
                    break
                if buf[0] & 0x0F == 0x8:
                    return True
                buf = buf[at + n:]
    except socket.timeout:
        return False
    except OSError:
        return True
    finally:
        s.close()


def bad_garbage(port, n):
    s = tcp(port)
    s.sendall(os.urandom(random.randint(1, 3000)))
    s.close()


def bad_half_handshake(port, n):
    s = tcp(port)
    req = handshake(f"/echo?agent=bad{n}", port)
    s.sendall(req[:random.randint(1, len(req) - 1)])
    time.sleep(random.uniform(0, 0.5))
    s.close()


def bad_slow_headers(port, n):
    s = tcp(port)
    req = handshake(f"/echo?agent=bad{n}", port, "X-Slow: " + "a" * 40 + "\r\n")
    for i in range(0, 30):
        try:
            s.sendall(req[i:i + 1])
        except OSError:
            break
        time.sleep(0.05)
    s.close()


def bad_huge_request(port, n):
    s = tcp(port)
    extra = "".join(f"X-H{i}: {'v' * 200}\r\n" for i in range(60))
    try:
        s.sendall(handshake(f"/echo?agent=bad{n}&q={'x' * 6000}", port, extra))
    except OSError:
        pass
    drain_until_close(s, 2)


def bad_frames(port, n):
    """One protocol violation on an upgraded connection; chatmond must close it."""
    s = upgraded(port, f"/echo?agent=bad{n}")
    if s is None:
        return
    data = random.choice([
        frame(0x1, b'{"type":"message","conversation":"c","text":"\xff\xfe"}'),  # not UTF-8
        frame(0x0, b"continuation with nothing before it"),
        frame(0x3, b"reserved opcode"),
        frame(0x1, b"rsv bits", rsv=0x40),
        frame(0x1, b"unmasked", mask=False),
        frame(0x9, b"p" * 200),                                          # control frame over 125
        frame(0x1, b"{", fin=False) + frame(0x1, b"}"),                  # new message inside one
        frame(0x8, b"\x03\xe8" + b"\xff"),                              # close reason not UTF-8
        frame(0x2, b"x" * (MAX_MESSAGE + 1)),                           # over max_message
    ])
    try:
        s.sendall(data)
    except OSError:
        s.close()
        return
    if not drain_until_close(s, 5):
        raise AssertionError(f"a protocol violation was not closed within 5s: {data[:24]!r}")


def bad_cut_frame(port, n):
    s = upgraded(port, f"/echo?agent=bad{n}")
    if s is None:
        return
    whole = frame(0x1, json.dumps({"type": "message", "conversation": f"c-bad{n}",
                                   "text": "亲" * 300}).encode())
    s.sendall(whole[:random.randint(1, len(whole) - 1)])
    time.sleep(random.uniform(0, 0.3))
    s.close()


def bad_ping_flood(port, n):
    s = upgraded(port, f"/echo?agent=bad{n}")
    if s is None:
        return
    try:
        for _ in range(300):
            s.sendall(frame(0x9, b"ping"))
    except OSError:
        pass
    s.close()


HOSTILE_JSON = [
    "{",
    "[" * 10000 + "]" * 10000,
    '{"type":"message","conversation":"c","text":"a","text":"b"}',
    '{"type":"message","conversation":"c","seq":1e400,"text":"a"}',
    '{"type":"message","conversation":"c\\u0000x","text":"a"}',
    '{"type":"message","conversation":"' + "c" * 600 + '","text":"a"}',
    '{"type":"message","conversation":"c","text":"\\ud800"}',
    '{"type":"message","conversation":"c","text":["not","a","string"]}',
    '{"type":"message","conversation":7,"text":"x"}',
    '{"type":"end","conversation":"c-good0-1"}',
    '{"type":"chatmon.note_ack","id":"n-x","state":"read"}',
    '{"type":"chatmon.note_ack","id":' + '"' + "n" * 5000 + '"}',
    '{"type":"message","conversation":"c","shop":"' + "s" * 100 + '","text":"x"}',
    '"just a string"',
    "null",
]


async def bad_json(port, n):
    """Hostile JSON then a good frame: the connection must still work."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/echo?agent=bad{n}",
                                  max_size=None, ping_interval=None, open_timeout=5,
                                  close_timeout=2) as ws:
        for text in random.sample(HOSTILE_JSON, 5):
            await ws.send(text)
        probe = json.dumps({"type": "message", "conversation": f"c-bad{n}",
                            "text": "亲，请问还有什么可以帮您"}, ensure_ascii=False)
        await ws.send(probe)
        deadline = time.monotonic() + 5
        while True:
            msg = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            if msg == probe:
                return


async def bad_never_reads(port, n):
    """Asks the backend for large messages and never reads them."""
    async with websockets.connect(f"ws://127.0.0.1:{port}/gen?agent=bad{n}",
                                  max_size=None, ping_interval=None, open_timeout=5,
                                  close_timeout=1, max_queue=1) as ws:
        ws.transport.pause_reading()
        for _ in range(20):
            await ws.send("binary 60000")
        await asyncio.sleep(random.uniform(0.2, 1.0))


async def bad_upstream_drops(port, n):
    """The backend closes (or refuses) this agent's connection."""
    path = random.choice(["/close?after=1&code=4000&reason=bye", "/refuse", "/badutf8"])
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}{path}&agent=bad{n}"
                                      if "?" in path else
                                      f"ws://127.0.0.1:{port}{path}?agent=bad{n}",
                                      ping_interval=None, open_timeout=5,
                                      close_timeout=2) as ws:
            for i in range(3):
                await ws.send(json.dumps({"type": "message", "conversation": f"c-bad{n}",
                                          "text": f"hello {i}"}))
            await asyncio.wait_for(ws.wait_closed(), 5)
    except (websockets.InvalidStatus, websockets.InvalidHandshake):
        pass


SYNC_BAD = [bad_garbage, bad_half_handshake, bad_slow_headers, bad_huge_request,
            bad_frames, bad_cut_frame, bad_ping_flood]
ASYNC_BAD = [bad_json, bad_never_reads, bad_upstream_drops]


async def bad_peer(n, port, stop, stats, fails):
    while not stop.is_set():
        kind = random.choice(SYNC_BAD + ASYNC_BAD)
        try:
            if kind in SYNC_BAD:
                await asyncio.to_thread(kind, port, n)
            else:
                await asyncio.wait_for(kind(port, n), 15)
            stats.bad_done(kind.__name__)
        except AssertionError as e:
            fails.add(f"bad{n} {kind.__name__}: {e}")
        except asyncio.TimeoutError:
            fails.add(f"bad{n} {kind.__name__}: chatmond did not answer within its bound")
        except (OSError, websockets.WebSocketException, ValueError):
            stats.bad_done(kind.__name__)   # chatmond closing on them is fine
        await asyncio.sleep(random.uniform(0, 0.05))


# --------------------------------------------------------------------------
# The operator, the machine and the watch

async def chaos(proc, rds, seconds, stop, log, hup=True, redis_chaos="pause,kill"):
    t0 = time.monotonic()
    plan = [(at, what) for at, what in [(0.3, "pause"), (0.55, "kill")]
            if what in redis_chaos.split(",")]
    next_hup = 3.0 if hup else float("inf")
    while not stop.is_set():
        el = time.monotonic() - t0
        if plan and el >= plan[0][0] * seconds:
            what = plan.pop(0)[1]
            if what == "pause":
                log("soak: Redis stopped (SIGSTOP) for 3 s")
                rds.pause()
                await asyncio.sleep(3)
                rds.resume()
            else:
                log("soak: Redis killed (SIGKILL), started again in 2 s")
                rds.kill()
                await asyncio.sleep(2)
                await asyncio.to_thread(rds.start)
        if el >= next_hup:
            proc.send_signal(signal.SIGHUP)
            next_hup += random.uniform(4, 8)
        await asyncio.sleep(0.2)


async def health(admin, stop, stats, fails, bound):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://{admin}/healthz", timeout=bound).read())
            stats.health.append(time.monotonic() - t0)
        except OSError as e:
            fails.add(f"/healthz did not answer within {bound}s: {e!r}")
        await asyncio.sleep(0.5)


def metrics(admin):
    text = urllib.request.urlopen(f"http://{admin}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(chatmon_\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


async def main_async(args, port, admin, proc, rds, kinds, lines, fails):
    stats = Stats()
    stop = asyncio.Event()
    t0 = time.monotonic()
    tasks = [asyncio.create_task(good_agent(i, port, lines, kinds, stop, stats, fails,
                                            args.bound)) for i in range(args.good)]
    tasks += [asyncio.create_task(bad_peer(i, port, stop, stats, fails))
              for i in range(args.bad)]
    tasks.append(asyncio.create_task(chaos(proc, rds, args.seconds, stop, print,
                                           not args.no_hup, args.redis_chaos)))
    tasks.append(asyncio.create_task(health(admin, stop, stats, fails, args.bound)))
    rss = []
    while time.monotonic() - t0 < args.seconds:
        await asyncio.sleep(1)
        if proc.poll() is not None:
            fails.add(f"chatmond exited with {proc.returncode} during the soak")
            break
        rss.append(rss_kib(proc.pid))
        if args.verbose:
            print(f"soak: {time.monotonic() - t0:5.1f} s RSS {rss[-1] // 1024} MiB", flush=True)
    stop.set()
    await asyncio.wait(tasks, timeout=15)
    return stats, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--good", type=int, default=8, help="good agents")
    ap.add_argument("--bad", type=int, default=6, help="bad peers at once")
    ap.add_argument("--bound", type=float, default=0,
                    help="the longest wait allowed, s (default 2; 10 under ASan, several times slower)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--no-hup", action="store_true", help="no SIGHUP reloads")
    ap.add_argument("--redis-chaos", default="pause,kill",
                    help="what befalls Redis: pause (SIGSTOP 3 s), kill (SIGKILL, started again), "
                         "both (the default) or none")
    ap.add_argument("--log-level", default="info", help="chatmond's (debug: every turn)")
    args = ap.parse_args()
    san = "build-san" in CHATMOND
    args.bound = args.bound or (10.0 if san else 2.0)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    print(f"soak: {CHATMOND}, {args.seconds:.0f} s, {args.good} good agents, "
          f"{args.bad} bad peers, bound {args.bound} s, seed {seed}", flush=True)

    with open(FRAMES, encoding="utf-8") as f:
        clean = sorted({json.loads(line)["text"] for line in f if line.strip()})
    kinds = classify(clean + RULE_LINES)
    lines = clean * 3 + RULE_LINES      # most chat is clean
    print("soak: rule lines: " + ", ".join(f"{kinds[t]}" for t in RULE_LINES), flush=True)

    tmp = tempfile.mkdtemp(prefix="chatmon-soak-")
    fails = Failures()
    rds = RedisServer(unix=True, aof=True).start()
    be = Backend(("--quiet",))
    port, admin_port = free_port(), free_port()
    admin = f"127.0.0.1:{admin_port}"
    conf = os.path.join(tmp, "chatmond.yaml")
    with open(conf, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\n"
                f"admin: {admin}\n"
                f"upstream: ws://127.0.0.1:{be.port}/\n"
                f"rules: {RULES}\n"
                "agent_id: query:agent\n"
                f"log:\n  level: {args.log_level}\n"
                f"limits:\n  max_message: {MAX_MESSAGE}\n  queue_bytes: 256KiB\n"
                "  handshake_timeout: 2s\n  message_timeout: 3s\n"
                "  max_connections_per_ip: 0\n"
                f"redis:\n  url: unix:{rds.sock}\n  spool: {tmp}/spool.jsonl\n")
    errfile = os.path.join(tmp, "chatmond.stderr")
    err = open(errfile, "wb")
    proc = subprocess.Popen([CHATMOND, "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=err)
    code = 1
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chatmond did not start")
                time.sleep(0.1)
        stats, rss = asyncio.run(main_async(args, port, admin, proc, rds, kinds, lines, fails))
        if proc.poll() is None:
            m = metrics(admin)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                fails.add("chatmond did not exit within 30 s of SIGTERM")
                proc.kill()
                proc.wait()
            if proc.returncode != 0:
                fails.add(f"chatmond exited with {proc.returncode} on SIGTERM")
        else:
            m = {}
        err.close()
        with open(errfile, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        for mark in SANITIZER_MARKS:
            if mark in log:
                fails.add(f"sanitizer report ({mark}) in {errfile}")
        final = re.findall(r"main: stats: (.*)$", log, re.M)
        st = dict(kv.split("=", 1) for kv in final[-1].split()) if final else {}
        if not st:
            fails.add("no stats line at exit")
        if int(st.get("alerts_dropped", 0)):
            fails.add(f"{st['alerts_dropped']} alerts lost")
        # at least once: an XADD whose answer a kill or a stop lost is sent again
        c = rds.client()
        ids = {json.loads(f["alert"])["id"] for _, f in c.xrange("chatmon:alerts:log")}
        xlen = c.xlen("chatmon:alerts:log")
        c.close()
        sent = int(st.get("alerts_sent", -1))
        if st and len(ids) != sent:
            fails.add(f"Redis acknowledged {sent} alerts, its stream holds {len(ids)}")
        rtts = sorted(stats.rtts) or [0]
        hl = sorted(stats.health) or [0]
        print(f"soak: good frames {stats.frames} ({stats.blocked} blocked), "
              f"round trip p50 {rtts[len(rtts) // 2] * 1e3:.1f} ms, "
              f"p99 {rtts[int(len(rtts) * 0.99)] * 1e3:.1f} ms, "
              f"max {rtts[-1] * 1e3:.1f} ms; /healthz max {hl[-1] * 1e3:.1f} ms", flush=True)
        print("soak: bad peers: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.bad.items())),
              flush=True)
        if rss:
            print(f"soak: chatmond RSS {rss[0] // 1024}-{max(rss) // 1024} MiB, "
                  f"{rss[-1] // 1024} MiB at the end", flush=True)
        print(f"soak: alerts {st.get('alerts_total')} ({st.get('alerts_sent')} acknowledged, "
              f"{st.get('alerts_spooled')} spooled, {st.get('alerts_dropped')} lost), "
              f"stream {len(ids)} ({xlen - len(ids)} sent twice); protocol errors {st.get('protocol_errors_agent')}, "
              f"too big {st.get('closes_too_big')}, malformed {st.get('frames_malformed')}, "
              f"reloads {st.get('reloads_ok')} applied ({st.get('reload_failures')} rejected), "
              f"Redis reconnects {m.get('chatmon_redis_reconnects_total', '?')}", flush=True)
        if stats.frames == 0:
            fails.add("no good frame went through")
        if not fails.items:
            code = 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        be.stop()
        rds.close()
    if fails.items:
        print(f"soak: FAILED ({len(fails.items)} reasons shown); log {errfile}, seed {seed}")
    else:
        print("soak: passed")
        subprocess.run(["rm", "-rf", tmp])
    return code


if __name__ == "__main__":
    sys.exit(main())
