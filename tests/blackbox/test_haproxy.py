"""conf/haproxy.cfg.example, run as shipped by a real haproxy (Debian's
package) with only its ports and its log target replaced, in front of two
real chatmond (their own ports, one Redis, the test backend): chat relays end
to end through both, every tab of an agent lands on the same chatmond, and
when one chatmond is killed its agents' new connections go to the other at
once (retry and redispatch), then come back when it is up again (consistent
hashing on the agent's id); a SIGTERM (a deploy) moves them the same way."""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import ROOT, SLOW, T, closed, free_port, recv, run, wait_for
from test_reuseport import admin_port

import websockets

EXAMPLE = os.path.join(ROOT, "conf", "haproxy.cfg.example")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

AGENTS = [f"agent{i}" for i in range(16)]
TABS = 3


def configure(front, a, b):
    """The example with its addresses replaced: each must occur exactly once."""
    text = open(EXAMPLE, encoding="utf-8").read()
    for old, new in ((r"^\tbind :8080$", f"\tbind 127.0.0.1:{front}"),
                     (r"\b127\.0\.0\.1:8101 check port 9101$",
                      f"127.0.0.1:{a.port} check port {admin_port(a)}"),
                     (r"\b127\.0\.0\.1:8102 check port 9102$",
                      f"127.0.0.1:{b.port} check port {admin_port(b)}"),
                     # no /dev/log here: HAProxy's log goes to its stderr, kept in a file
                     (r"^\tlog /dev/log local0$", "\tlog stderr format short local0")):
        text, n = re.subn(old, new, text, flags=re.M)
        assert n == 1, f"{EXAMPLE}: {old!r} found {n} times"
    return text


class HAProxy:
    def __init__(self, tmp_path, text):
        self.cfg = str(tmp_path / "haproxy.cfg")
        with open(self.cfg, "w", encoding="utf-8") as f:
            f.write(text)
        self.errfile = str(tmp_path / "haproxy.stderr")
        self.stderr = open(self.errfile, "wb")
        # -db: foreground, no daemon
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)

    def log(self):
        with open(self.errfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)      # soft stop
            try:
                self.proc.wait(5 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()


@pytest.fixture
def haproxy(tmp_path):
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail("haproxy is missing: install the haproxy package (tools/deps.sh)")
    started = []

    def start(text, port):
        h = HAProxy(tmp_path, text)
        started.append(h)
        h.port = port

        def up():
            if h.proc.poll() is not None:
                raise AssertionError(f"haproxy exited with {h.proc.returncode}:\n{h.log()}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, 10 * SLOW, "haproxy listening")
        return h
    yield start
    for h in started:
        h.stop()


def test_example_config_is_valid():
    """haproxy -c passes on the file as shipped, with no warning."""
    if not os.access(HAPROXY, os.X_OK):
        pytest.fail("haproxy is missing: install the haproxy package (tools/deps.sh)")
    r = subprocess.run([HAPROXY, "-c", "-f", EXAMPLE], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode == 0 and "Configuration file is valid" in out, out
    assert "WARNING" not in out and "ALERT" not in out, out


def sessions(d, name):
    """How many agent sessions of name d has logged (connected)."""
    return len(re.findall(rf"session_cb: agent={re.escape(name)} session=\d+ connected",
                          d.log()))


def where(instances, name):
    """The instances that have seen the agent, as the list of their indexes."""
    return [i for i, d in enumerate(instances) if sessions(d, name) > 0]


def tab(port, name):
    return websockets.connect(f"ws://127.0.0.1:{port}/echo?agent={name}", max_size=None,
                              ping_interval=None, open_timeout=T, close_timeout=T)


async def chat(ws, name, n):
    """One chat turn there and back through chatmond and the backend."""
    frame = json.dumps({"type": "message", "conversation": f"c-{name}-{n}",
                        "text": f"亲,在的 {n}"}, ensure_ascii=False)
    await ws.send(frame)
    assert await recv(ws) == frame


def test_agents_spread_sticky_and_failover(tmp_path, daemon, backend, redis_server, haproxy):
    r = redis_server()
    b = backend()
    # behind HAProxy every agent comes from its address: the frontend limits per agent,
    # and its X-Forwarded-For is trusted (docs/operations.md)
    cfg = dict(redis=r.url(), limits={"max_connections_per_ip": 0},
               extra="trusted_proxies: [127.0.0.1]\n")
    a_, b_ = daemon(b.port, **cfg), daemon(b.port, **cfg)
    instances = [a_, b_]
    front = free_port()
    h = haproxy(configure(front, a_, b_), front)

    # every agent opens its tabs at once; each tab chats
    async def tabs():
        conns = await asyncio.gather(*(tab(front, n) for n in AGENTS for _ in range(TABS)))
        try:
            await asyncio.gather(*(chat(ws, AGENTS[i // TABS], i) for i, ws in enumerate(conns)))
        finally:
            await asyncio.gather(*(ws.close() for ws in conns))
    run(tabs())

    home = {}
    for n in AGENTS:
        at = where(instances, n)
        assert len(at) == 1, f"{n}'s tabs went to instances {at}"
        assert sessions(instances[at[0]], n) == TABS
        home[n] = at[0]
    on = [[n for n in AGENTS if home[n] == i] for i in (0, 1)]
    assert on[0] and on[1], f"one instance had every agent: {home}"

    # end to end: the backend saw each agent's path, the agent's address forwarded,
    # and chatmond read every tab's turn
    for n in AGENTS:
        opens = b.count(lambda e, n=n: e["ev"] == "open" and e["path"] == f"/echo?agent={n}",
                        TABS)
        assert len(opens) == TABS, (n, len(opens))
        xff = [v for e in opens for k, v in e["headers"] if k.lower() == "x-forwarded-for"]
        # HAProxy's header (the agent's address), then HAProxy's own address
        assert xff and all(v == "127.0.0.1, 127.0.0.1" for v in xff), xff
        turns = [t for t in instances[home[n]].turns()
                 if t[0] == "relay_turn" and t[1] == n and t[3] == "agent"]
        assert len(turns) == TABS, (n, turns)

    # a reconnect lands where the agent already is
    async def again(names, port=front):
        for n in names:
            async with tab(port, n) as ws:
                await chat(ws, n, 99)
    run(again(AGENTS))
    for n in AGENTS:
        assert where(instances, n) == [home[n]] and \
            sessions(instances[home[n]], n) == TABS + 1, n

    # an agent on B stays connected through A's death
    async def through_the_kill():
        survivor = on[1][0]
        async with tab(front, survivor) as ws:
            await chat(ws, survivor, 100)
            a_.proc.kill()                       # SIGKILL: no drain, no goodbye
            a_.proc.wait(5)
            t0 = time.monotonic()
            # A's agents reconnect at once: refused by A, HAProxy redispatches to B
            for n in on[0]:
                async with tab(front, n) as ws2:
                    await chat(ws2, n, 101)
            elapsed = time.monotonic() - t0
            await chat(ws, survivor, 102)
        return elapsed
    elapsed = run(through_the_kill())
    assert a_.stop() == -signal.SIGKILL
    for n in on[0]:
        assert sessions(b_, n) == 1, n
    # each reconnect went through without waiting for the health check to notice
    assert elapsed < 1.0 * len(on[0]) * SLOW, elapsed
    wait_for(lambda: re.search(r"Server chatmond/chatmond-a is DOWN", h.log()), 5 * SLOW,
             f"HAProxy marking chatmond-a down:\n{h.log()[-2000:]}")

    # A is back (same ports): once its /readyz passes twice, its agents return to it
    a2 = daemon(b.port, wait=False, args=("-o", f"listen=127.0.0.1:{a_.port}",
                                          "-o", f"admin.listen=127.0.0.1:{admin_port(a_)}"),
                name="chatmond-a-again", **cfg)
    a2.port = a_.port
    a2.wait_ready()
    wait_for(lambda: re.search(r"Server chatmond/chatmond-a is UP", h.log()), 10 * SLOW,
             f"HAProxy marking chatmond-a up again:\n{h.log()[-2000:]}")
    run(again(AGENTS))
    for n in AGENTS:
        back = a2 if home[n] == 0 else b_
        assert sessions(back, n) >= 1, (n, home[n])

    # a deploy: SIGTERM to B while an agent chats there; it is told 1001 (going away),
    # and B's agents reconnect to A at once (B's listener is closed as its drain starts)
    async def deploy():
        n = on[1][0]
        async with tab(front, n) as ws:
            await chat(ws, n, 200)
            b_.signal(signal.SIGTERM)
            assert (await closed(ws))[0] == 1001
        for n in on[1]:
            async with tab(front, n) as ws2:
                await chat(ws2, n, 201)
    run(deploy())
    b_.proc.wait(15 * SLOW)        # its own exit: a second SIGTERM would cut it short
    assert b_.stop() == 0
    for n in on[1]:
        assert sessions(a2, n) == 1, n
    assert h.proc.poll() is None
