"""Fixtures for chatmond's black-box tests: the real daemon, real backends
(tests/peers/backend.py as separate processes) and real clients.

Every wait is bounded. SLOW stretches the bounds for the ASan/UBSan build.
"""

import asyncio
import base64
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest
import redis
import websockets

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHATMOND = os.environ.get("CHATMOND") or os.path.join(ROOT, "build", "chatmond")
CHATMON = os.environ.get("CHATMON") or os.path.join(ROOT, "build", "chatmon")
PEERS = os.path.join(ROOT, "tests", "peers")
PYTHON = "/usr/bin/python3"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"

SAN = "build-san" in CHATMOND or bool(os.environ.get("CHATMON_SAN"))
SLOW = 3 if SAN else 1
T = 5 * SLOW                 # the default bound on one await

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")

sys.path.insert(0, PEERS)
import backend as peer  # noqa: E402  (tests/peers/backend.py)
pattern_bytes, pattern_text = peer.pattern_bytes, peer.pattern_text  # the peers' generators


_given_ports = set()
# Under pytest-xdist (`make blackbox` runs two workers) each worker takes
# only its own share of the ports, so a port one worker was handed and has
# not bound yet is never handed to the other. By port // 2: Linux gives
# bind() to port 0 odd ports only (connect() takes the even ones).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
_WORKER = int((os.environ.get("PYTEST_XDIST_WORKER") or "gw0")[2:] or 0)


def free_port():
    """A port nothing listens on now, never the same twice in a run: the
    kernel may hand out a port just closed again, and two servers of one
    test (a daemon's listen and admin) would then collide."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port // 2 % _WORKERS == _WORKER and port not in _given_ports:
            _given_ports.add(port)
            return port


def sha(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def run(coro, timeout=60):
    """Run one test's coroutine, never longer than timeout (scaled)."""
    return asyncio.run(asyncio.wait_for(coro, timeout * SLOW))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def sla_bucket(conv):
    """The bucket of a conversation's state in Redis (src/convstore.c: FNV-1a
    of its id, 16 buckets; docs/operations.md)."""
    h = 2166136261
    for ch in conv.encode():
        h = ((h ^ ch) * 16777619) & 0xffffffff
    return h % 16


def wait_for(pred, timeout, what, poll=0.05):
    """pred() until truthy (returned), at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(poll)


# --------------------------------------------------------------------------
# A real redis-server


class RedisServer:
    """One redis-server process of a test's own: TCP on 127.0.0.1 (a free port)
    and a unix socket, or the socket only (unix=True); optionally a password,
    an AOF that survives SIGKILL, and extra redis-server arguments."""

    def __init__(self, port=None, unix=False, password=None, aof=False, extra=()):
        # short: a unix socket path has at most 107 bytes
        self.dir = tempfile.mkdtemp(prefix="cm-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.unix = unix
        self.port = 0 if unix else (port or free_port())
        self.password = password
        self.aof = aof
        self.extra = list(extra)
        self.proc = None

    def url(self, db=None):
        if self.unix:
            return f"unix:{self.sock}"
        return f"redis://127.0.0.1:{self.port}" + (f"/{db}" if db is not None else "")

    def client(self, db=0, timeout=5):
        kw = dict(db=db, password=self.password, decode_responses=True,
                  socket_timeout=timeout, socket_connect_timeout=timeout)
        if self.unix:
            return redis.Redis(unix_socket_path=self.sock, **kw)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--save", "", "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log"),
                "--unixsocket", self.sock, "--unixsocketperm", "700"]
        # fsync always: what Redis acknowledged survives its SIGKILL
        args += ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else \
            ["--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args + self.extra, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout * SLOW
        c = self.client(timeout=1)
        try:
            while True:
                try:
                    if c.ping():
                        return self
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                        redis.exceptions.BusyLoadingError):
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"redis-server did not start ({self.proc.poll()}):\n"
                                         f"{self.log()[-2000:]}")
                time.sleep(0.05)
        finally:
            c.close()

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        """SIGKILL (a stopped one too); start() may bring it back on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisProxy:
    """A TCP proxy to a Redis on 127.0.0.1:target_port. While `stall` is
    set, what the client sends is dropped (a path that loses its packets,
    until redis.timeout gives the connection up); while `delay` is set,
    Redis's answers on a connection that sent a script (EVAL: the writes)
    wait that many seconds (a slow link for the writes alone)."""

    def __init__(self, target_port):
        self.target = target_port
        self.stall = False
        self.delay = 0.0
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.target))
            seen = {"eval": False}
            for a, b, up in ((c, s, True), (s, c, False)):
                threading.Thread(target=self._pump, args=(a, b, up, seen),
                                 daemon=True).start()

    def _pump(self, a, b, up, seen):
        try:
            while (d := a.recv(65536)):
                if up and b"EVAL" in d:
                    seen["eval"] = True
                if not up and seen["eval"] and self.delay:
                    time.sleep(self.delay)
                if not (up and self.stall):
                    b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.ls.close()


@pytest.fixture
def redis_server():
    """redis_server(start=True, **kw) -> RedisServer; all are killed at teardown."""
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("no redis-server")
    made = []

    def make(start=True, **kw):
        r = RedisServer(**kw)
        made.append(r)
        return r.start() if start else r
    yield make
    for r in made:
        r.close()


# --------------------------------------------------------------------------
# Backend processes


class Backend:
    """One tests/peers/backend.py process and the events it printed."""

    def __init__(self, args=(), script="backend.py"):
        self.proc = subprocess.Popen([PYTHON, os.path.join(PEERS, script), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, encoding="utf-8")
        self.events = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        ev = self.wait(lambda e: e["ev"] == "listening", timeout=10 * SLOW)
        self.port = ev["port"]

    def _read(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(event)
                self.cond.notify_all()

    def wait(self, pred, timeout=T, what="event"):
        """The first event matching pred, waiting up to timeout seconds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self.thread.is_alive():
                    raise AssertionError(f"backend: no {what} within {timeout}s; "
                                         f"last events: {self.events[-5:]}")
                self.cond.wait(min(left, 0.2))

    def select(self, pred):
        with self.cond:
            return [e for e in self.events if pred(e)]

    def opened(self, needle, timeout=T):
        """The open event of the connection whose path contains needle."""
        return self.wait(lambda e: e["ev"] == "open" and needle in e["path"], timeout,
                         f"connection with {needle!r} in its path")

    def count(self, pred, n, timeout=T, what="events"):
        """Wait until at least n events match pred; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.select(pred)
            if len(found) >= n:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"backend: {len(found)} {what}, expected {n}; "
                                     f"last events: {self.events[-5:]}")
            time.sleep(0.02)

    def messages(self, conn, n=0, timeout=T):
        """The messages received on connection conn (waiting until there are n)."""
        return self.count(lambda e: e["ev"] == "msg" and e["conn"] == conn, n, timeout,
                          f"messages on connection {conn}")

    def closed(self, conn, timeout=T):
        return self.wait(lambda e: e["ev"] == "close" and e["conn"] == conn, timeout,
                         f"close of connection {conn}")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.thread.join(5)


@pytest.fixture
def backend():
    """backend(*args) starts a backend process; all are killed at teardown."""
    started = []

    def start(*args, script="backend.py"):
        b = Backend(args, script)
        started.append(b)
        return b
    yield start
    for b in started:
        b.stop()


# --------------------------------------------------------------------------
# The daemon

# The relay tests run with a one-rule set; the rules tests name conf/rules.d.
MINIMAL_RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules")
DEFAULT_RULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "rules.d")


def config_text(port, upstream, level="debug", agent_id="query:agent", limits=None, extra="",
                rules=MINIMAL_RULES, redis="redis://127.0.0.1:1"):
    limits = dict({"max_message": "1MiB", "queue_bytes": "4MiB",
                   "connect_timeout": "10s", "shutdown_grace": "5s"}, **(limits or {}))
    lines = [
        f"listen: 127.0.0.1:{port}",
        f"upstream: {upstream}",
        f"agent_id: {agent_id}",
        "protocol:",
        "  type: /type",
        "  conversation: /conversation",
        "  text: /text",
        "  message_types: [message]",
        "  end_types: [end]",
        "limits:",
        *[f"  {k}: {v}" for k, v in limits.items()],
        "log:",
        f"  level: {level}",
        f"rules: {os.path.abspath(rules)}",
        # every daemon its own admin port: tests run side by side
        f"admin: 127.0.0.1:{free_port()}",
        # no Redis unless a test starts one: port 1 refuses at once
        *([f"redis:\n  url: {redis}"] if redis else []),
    ]
    return "\n".join(lines) + "\n" + extra


class LineReader:
    """The lines a process writes to a text pipe, read in a thread as they come."""

    def __init__(self, stream):
        self.lines = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream):
        for line in stream:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def output(self):
        with self.lock:
            return list(self.lines)


class Daemon:
    def __init__(self, tmp_path, name, text, args=(), env=None, port=None, wrap=()):
        self.port = port
        self.conf = str(tmp_path / f"{name}.yaml")
        self.errfile = str(tmp_path / f"{name}.stderr")
        self.write_config(text)
        self.stderr = open(self.errfile, "wb")
        e = dict(os.environ)
        e.update(env or {})
        # wrap: a command that execs chatmond (prlimit ...), so the pid stays its own
        self.proc = subprocess.Popen([*wrap, CHATMOND, "-c", self.conf, *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, env=e)
        self.pid = self.proc.pid
        self.exit_code = None

    def write_config(self, text):
        tmp = self.conf + ".new"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.rename(tmp, self.conf)

    def reload_with(self, change):
        """The configuration file rewritten by change(text) -> text, SIGHUP,
        and the reload applied; returns the log's offset before it."""
        with open(self.conf, encoding="utf-8") as f:
            text = change(f.read())
        mark = len(self.log())
        self.write_config(text)
        self.signal(signal.SIGHUP)
        self.wait_log(r"main: reload: configuration reloaded", 10 * SLOW, mark)
        return mark

    def log(self):
        with open(self.errfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_ready(self, timeout=30):
        # until it listens, which is after the rules are compiled: conf/rules.d
        # takes 1 s of CPU in the plain build and 4 s under ASan/UBSan (more
        # than SLOW times), and two workers share two cores. A
        # chatmond that exits is reported at once; this only bounds a hang.
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"chatmond exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"chatmond not listening on {self.port}:\n{self.log()[-3000:]}")

    def wait_log(self, pattern, timeout=T, start=0):
        """The first match of regex pattern in the log (after offset start)."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matching {pattern!r} within {timeout}s:\n"
                                     f"{self.log()[-3000:]}")
            time.sleep(0.05)

    def signal(self, sig):
        os.kill(self.pid, sig)

    def stop(self, timeout=15):
        """SIGTERM, wait for exit; returns the exit code."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"chatmond did not exit on SIGTERM:\n{self.log()[-3000:]}")
        self.exit_code = self.proc.returncode
        return self.exit_code

    def stats(self):
        """The key=value pairs of the exit stats line (after stop())."""
        m = re.findall(r"^chatmond: info: main: stats: (.*)$", self.log(), re.M)
        assert m, f"no stats line in the log:\n{self.log()[-3000:]}"
        return {k: int(v) if v.lstrip("-").isdigit() else v
                for k, v in (kv.split("=", 1) for kv in m[-1].split())}

    def turns(self, start=0):
        """(kind, agent, conversation, role, bytes|None) of relay_turn/relay_end lines."""
        out = []
        for m in re.finditer(r"^chatmond: debug: (relay_turn|relay_end): agent=(\S+) "
                             r"conversation=(\S*) role=(\w+)(?: bytes=(\d+))?",
                             self.log()[start:], re.M):
            kind, agent, conv, role, nbytes = m.groups()
            out.append((kind, agent, conv, role, int(nbytes) if nbytes else None))
        return out

    def sanitizer_report(self):
        text = self.log()
        return [mark for mark in SANITIZER_MARKS if mark in text]


@pytest.fixture
def daemon(tmp_path):
    """daemon(upstream_port | upstream=URL, **config) starts chatmond and waits until
    it listens; at teardown it is stopped and its log checked for sanitizer reports."""
    started = []

    def start(upstream_port=None, *, upstream=None, args=(), env=None, wait=True,
              name=None, wrap=(), **cfg):
        port = free_port()
        if upstream is None:
            upstream = f"ws://127.0.0.1:{upstream_port}/"
        d = Daemon(tmp_path, name or f"chatmond{len(started)}",
                   config_text(port, upstream, **cfg), args, env, port, wrap)
        started.append(d)
        return d.wait_ready() if wait else d

    yield start
    stop_daemons(started)


def stop_daemons(started):
    """A fixture's teardown: each chatmond it started stopped by SIGTERM, exit 0
    (unless the test looked at its exit already) and no sanitizer report."""
    problems = []
    for d in started:
        try:
            checked = d.exit_code is not None       # the test looked at it already
            code = d.stop()
            if code != 0 and not checked:
                problems.append(f"chatmond exited with {code} on SIGTERM:\n{d.log()[-3000:]}")
        except AssertionError as e:
            problems.append(str(e))
        d.stderr.close()
        found = d.sanitizer_report()
        if found:
            problems.append(f"sanitizer report {found} in {d.errfile}:\n{d.log()[-6000:]}")
    if problems:
        pytest.fail("\n".join(problems))


# --------------------------------------------------------------------------
# Clients

def agent(d, path="/echo", **kw):
    """A websockets client connection to chatmond (use with `async with`)."""
    opts = dict(max_size=None, ping_interval=None, open_timeout=T, close_timeout=T)
    opts.update(kw)
    return websockets.connect(f"ws://127.0.0.1:{d.port}{path}", **opts)



def http_get(url):
    """(status, headers, body) of a plain GET; an HTTP error status is an answer too."""
    try:
        with urllib.request.urlopen(url, timeout=T) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()

async def recv(ws, timeout=T):
    return await asyncio.wait_for(ws.recv(), timeout)


async def closed(ws, timeout=T):
    """Read until the peer closes; (code, reason) it sent (1006 if none).
    Messages still in flight are discarded."""
    async def drain():
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as e:
            return (e.rcvd.code, e.rcvd.reason) if e.rcvd else (1006, "")
    return await asyncio.wait_for(drain(), timeout)


def replay_hits(tmp_path, config, lines):
    """chatmon replay -c (config, YAML text) over lines, (conversation,
    text) pairs of agent alice a second apart: its rule.hit alerts."""
    conf = tmp_path / "replay.yaml"
    conf.write_text(config, encoding="utf-8")
    log = tmp_path / "replay.jsonl"
    log.write_text("".join(json.dumps({"ts": f"2026-11-22T14:00:{i:02d}Z", "conversation": c,
                                       "role": "agent", "agent": "alice", "text": t},
                                      ensure_ascii=False) + "\n"
                           for i, (c, t) in enumerate(lines)), encoding="utf-8")
    p = subprocess.run([CHATMON, "replay", "-c", str(conf), str(log)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [h for h in map(json.loads, p.stdout.splitlines()) if h["type"] == "rule.hit"]


def ws_frame(opcode, payload, fin=True, rsv=0, mask=True, length=None):
    """A raw client frame (RFC 6455), masked unless told; length overrides
    the encoded payload length (then always in the 64-bit form)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mbit = 0x80 if mask else 0
    if n < 126 and length is None:
        head += bytes([mbit | n])
    elif n < 65536 and length is None:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(x ^ key[i % 4] for i, x in enumerate(payload))
        head += key
    return head + payload


class RawWS:
    """A hand-made WebSocket client over a plain socket, for protocol violations."""

    def __init__(self, port, path="/echo", headers=(), timeout=T):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.settimeout(timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                   + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n")
        self.sock.sendall(request.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed during handshake: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.response = head.decode("latin-1")
        assert self.response.startswith("HTTP/1.1 101"), self.response
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        assert accept in self.response, self.response

    def send_frame(self, opcode, payload, fin=True, mask=True):
        self.sock.sendall(ws_frame(opcode, payload, fin=fin, mask=mask))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_frame(self):
        """(fin, opcode, payload) of the next frame."""
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        key = self._read(4) if b1 & 0x80 else None
        payload = self._read(n)
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_close(self):
        """Read frames until a close frame: (code, reason), or (None, '') on EOF."""
        try:
            while True:
                _, opcode, payload = self.recv_frame()
                if opcode == 0x8:
                    if len(payload) >= 2:
                        return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")
                    return 1005, ""
        except (EOFError, ConnectionResetError):
            return None, ""

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# A real browser (the workbench page tests)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = os.environ.get("CHATMON_SCREENSHOTS") or os.path.join(ROOT, "build", "screenshots")


# Fixtures holding a Selenium driver whose teardown checks the page's log
# (test_dashboard_actions.py has a second one, `browser2`).
BROWSER_FIXTURES = ("browser", "browser2")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    """Before any fixture is torn down: keep the browser's log so far and
    leave the page, so that it does not reconnect to (and log errors about)
    the servers the other fixtures stop before the browser's teardown runs."""
    args = getattr(item, "funcargs", {})
    for driver in (args.get(name) for name in BROWSER_FIXTURES):
        if driver is None:
            continue
        try:
            browser_log(driver)
            driver.get("about:blank")
        except Exception:       # a dead browser is the browser fixture's to report
            pass


def browser_log(driver):
    """Every browser console entry so far (get_log drains Chromium's buffer, so
    the entries are kept on the driver for the teardown check too)."""
    seen = driver.__dict__.setdefault("chatmon_log", [])
    seen.extend(driver.get_log("browser"))
    return list(seen)


def screenshot(driver, name):
    """Save the viewport as name (e.g. "workbench.png") in $CHATMON_SCREENSHOTS
    (default build/screenshots); returns the path."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, name)
    assert driver.save_screenshot(path), f"screenshot {path} not saved"
    return path


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium through Selenium, 1280x800, zh-CN, a fresh profile.
    Skips when chromium, chromedriver or selenium are missing; at teardown the
    test fails if the page logged SEVERE console entries (favicon 404s aside)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("no selenium (Debian: python3-selenium)")
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not os.access(exe, os.X_OK):
            pytest.skip(f"no {exe} (Debian: chromium, chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                "--lang=zh-CN", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        # --window-size is the whole window: make the page itself 1280x800
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 800, "deviceScaleFactor": 1,
                                "mobile": False})
        driver.set_page_load_timeout(30 * SLOW)
        driver.set_script_timeout(30 * SLOW)
        yield driver
        entries = browser_log(driver)
    finally:
        driver.quit()
    severe = [e for e in entries if e.get("level") == "SEVERE"
              and not ("favicon" in e.get("message", "") and "404" in e.get("message", ""))]
    if severe:
        pytest.fail("the browser logged errors:\n" +
                    "\n".join(f"  {e.get('source', '')}: {e.get('message', '')}" for e in severe))


# --------------------------------------------------------------------------
# chatmon dashboard

WEB = os.path.join(ROOT, "web", "dashboard")


class Dashboard:
    """One `chatmon dashboard` process with a configuration of its own."""

    def __init__(self, tmp_path, name, redis, extra="", args=(), nofile=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = tmp_path / f"{name}.yaml"
        self.conf.write_text(f"redis:\n  url: {redis}\n  snapshot: 200ms\n"
                             f"dashboard:\n  listen: 127.0.0.1:{self.port}\n"
                             f"  root: {WEB}\n" + extra +
                             "log:\n  level: debug\n", encoding="utf-8")
        self.errfile = tmp_path / f"{name}.stderr"
        self.stderr = open(self.errfile, "wb")
        def limit():        # nofile: its RLIMIT_NOFILE, soft and hard
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([CHATMON, "dashboard", "-c", str(self.conf), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr,
                                     preexec_fn=limit if nofile is not None else None)
        self.exit_code = None

    def wait_ready(self):
        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"chatmon dashboard exited with {self.proc.returncode}:"
                                     f"\n{self.log()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        wait_for(up, 10 * SLOW, "chatmon dashboard listening")
        return self

    def wait_following(self):
        """Until it reaches Redis and has read the history (Redis must be up):
        a page that connects then is told redis:true and gets the history."""
        wait_for(lambda: "dash_status: redis up" in self.log() and
                 "dash_loaded: history read" in self.log(), 10 * SLOW,
                 f"chatmon dashboard following its stream:\n{self.log()[-2000:]}")
        return self

    def feed(self, query="", **kw):
        """A websockets connection to /feed (use with `async with`)."""
        opts = dict(max_size=None, ping_interval=None, open_timeout=T, close_timeout=T)
        opts.update(kw)
        return websockets.connect(f"ws://127.0.0.1:{self.port}/feed{query}", **opts)

    def log(self):
        with open(self.errfile, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, timeout=15):
        """SIGTERM, wait for exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"chatmon dashboard did not exit on SIGTERM:\n"
                                     f"{self.log()[-3000:]}")
        self.exit_code = self.proc.returncode
        return self.exit_code


@pytest.fixture
def dashboard(tmp_path):
    """dashboard(redis_url, extra=YAML, args=[...], wait=True, following=True,
    nofile=N) starts `chatmon dashboard` (under RLIMIT_NOFILE N if given)
    and waits until it listens and, unless
    following=False (Redis down at first), until it follows the stream. At
    teardown each is stopped (exit 0 expected) and its log checked for
    sanitizer reports."""
    started = []

    def start(redis, extra="", args=(), wait=True, name=None, following=True, nofile=None):
        d = Dashboard(tmp_path, name or f"dashboard{len(started)}", redis, extra, args,
                      nofile)
        started.append(d)
        if wait:
            d.wait_ready()
            if following:
                d.wait_following()
        return d
    yield start
    problems = []
    for d in started:
        checked = d.exit_code is not None
        code = d.stop()
        d.stderr.close()
        if code != 0 and not checked:
            problems.append(f"chatmon dashboard exited with {code}:\n{d.log()[-3000:]}")
        found = [m for m in SANITIZER_MARKS if m in d.log()]
        if found:
            problems.append(f"sanitizer report {found} in {d.errfile}:\n{d.log()[-6000:]}")
    if problems:
        pytest.fail("\n".join(problems))
