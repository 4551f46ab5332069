"""Flow: messages queued before the upstream exists, and backpressure when one
side stops reading (bounded memory, other sessions unaffected)."""

import asyncio
import json
import os
import socket
import struct
import time

import pytest

from conftest import (SAN, SLOW, T, RawWS, agent, free_port, pattern_bytes, recv, rss_kib,
                      run, wait_for, ws_frame)
from test_ops import metrics

# ASan keeps freed memory in quarantine (256 MB by default), which would hide
# an unbounded queue behind its own growth: keep it small for these tests.
SAN_ENV = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                   "quarantine_size_mb=16"]))}
RSS_LIMIT_KIB = 80 * 1024            # absolute, for the normal build
RSS_GROWTH_LIMIT_KIB = 64 * 1024     # growth over the idle daemon, for the ASan build


def check_rss(d, rss0, peak):
    print(f"chatmond RSS: idle {rss0} KiB, peak {peak} KiB")
    if SAN:
        assert peak - rss0 < RSS_GROWTH_LIMIT_KIB, f"RSS grew from {rss0} to {peak} KiB"
    else:
        assert peak < RSS_LIMIT_KIB, f"RSS {peak} KiB (idle {rss0} KiB)"


async def echo_latencies(ws, n=20):
    worst = 0.0
    for i in range(n):
        t0 = time.monotonic()
        await ws.send(f"ping {i}")
        assert await recv(ws, 5 * SLOW) == f"ping {i}"
        worst = max(worst, time.monotonic() - t0)
    return worst


async def send_until_blocked(d, ws, msg, most, every, peak):
    """Sends msg until a send does not complete within 2 * SLOW (chatmond
    stopped reading the sender) or most sends did: (sends completed, the
    send still pending or None, the peak RSS seen every `every` sends)."""
    sent, task = 0, None
    deadline = time.monotonic() + 20 * SLOW
    while sent < most and time.monotonic() < deadline:
        task = asyncio.ensure_future(ws.send(msg))
        done, _ = await asyncio.wait({task}, timeout=2 * SLOW)
        if not done:
            return sent, task, peak                 # blocked: backpressure works
        task.result()
        task = None
        sent += 1
        if sent % every == 0:
            peak = max(peak, rss_kib(d.pid))
    return sent, None, peak


def test_messages_before_upstream_are_queued(daemon, backend):
    b = backend()
    d = daemon(b.port)
    msgs = [f"early {i}" for i in range(20)] + [pattern_bytes(200000), "汉字 last"]

    async def main():
        async with agent(d, "/delay?ms=700&t=early") as ws:
            t0 = time.monotonic()
            for m in msgs:
                await ws.send(m)
            sent_after = time.monotonic() - t0
            for m in msgs:
                assert await recv(ws) == m
            assert time.monotonic() - t0 >= 0.6      # the upstream really was late
            assert sent_after < 0.6, sent_after      # and the agent was not held up
        conn = b.opened("t=early")["conn"]
        got = b.messages(conn, len(msgs))
        assert [g["len"] for g in got] == [len(m.encode()) if isinstance(m, str) else len(m)
                                           for m in msgs]
    run(main())


@pytest.mark.parametrize("how", ["close", "drop"])
def test_early_messages_outlive_the_agent(daemon, backend, how):
    """An agent that sends before the backend has answered and then closes
    (or its TCP connection drops) still has its messages delivered, in
    order, then its close code (1001 "agent went away" for a drop). They
    were lost with the aborted connect: the backend saw the upgrade, then
    EOF, while the rules and the counters had taken them as sent."""
    b = backend()
    d = daemon(b.port)
    msgs = [f'{{"type":"message","conversation":"c1","text":"early {i}"}}' for i in range(3)]
    raw = RawWS(d.port, f"/delay?ms={700 * SLOW}&echo=0&t=early-{how}")
    for m in msgs:
        raw.send_frame(0x1, m.encode())
    if how == "close":
        raw.send_frame(0x8, struct.pack("!H", 1000) + b"bye")
        assert raw.recv_close() == (1000, "bye")
    raw.close()
    conn = b.opened(f"t=early-{how}", 2 * T)["conn"]
    assert [m["head"] for m in b.messages(conn, 3)] == msgs
    c = b.closed(conn)
    want = (1000, "bye") if how == "close" else (1001, "agent went away")
    assert (c["code"], c["reason"]) == want, c


def test_backpressure_agent_to_stalled_backend(daemon, backend):
    """An agent floods a backend that never reads: chatmond stops reading the
    agent (its sends stop completing) instead of queueing without bound."""
    b = backend("--max-queue", "1", "--read-limit", "4096")
    d = daemon(b.port, limits={"queue_bytes": "256KiB"}, env=SAN_ENV if SAN else None)
    cap = 128 << 20

    async def main():
        async with agent(d, "/echo?t=bystander") as other:
            await other.send("warm up")
            await recv(other)
            rss0 = peak = rss_kib(d.pid)
            async with agent(d, "/stall?t=producer") as ws:
                b.opened("t=producer")
                block = pattern_bytes(65536)
                n, task, peak = await send_until_blocked(d, ws, block, cap // len(block),
                                                         (4 << 20) // len(block), peak)
                sent = n * len(block)
                assert task is not None, f"agent never blocked after {sent >> 20} MiB"
                print(f"agent blocked after {sent >> 10} KiB")
                for _ in range(3):
                    peak = max(peak, rss_kib(d.pid))
                    worst = await echo_latencies(other)
                    assert worst < 1.0 * SLOW, f"echo took {worst:.3f}s while one session is stalled"
                peak = max(peak, rss_kib(d.pid))
                check_rss(d, rss0, peak)
                task.cancel()
                ws.transport.abort()
            assert await echo_latencies(other, 3) < 1.0 * SLOW
    run(main(), timeout=90)


def test_backpressure_backend_to_stalled_agent(daemon, backend):
    """A backend floods an agent that never reads: chatmond stops reading the
    backend (its sends block) instead of queueing without bound."""
    b = backend()
    d = daemon(b.port, limits={"queue_bytes": "256KiB"}, env=SAN_ENV if SAN else None)
    total = 128 << 20

    async def main():
        async with agent(d, "/echo?t=bystander") as other:
            await other.send("warm up")
            await recv(other)
            rss0 = peak = rss_kib(d.pid)
            # this agent never reads: websockets buffers one message, then stops too
            ws = await agent(d, f"/flood?t=flood&total={total}", max_queue=1, read_limit=4096)
            conn = b.opened("t=flood")["conn"]
            last, since = -1, time.monotonic()
            deadline = time.monotonic() + 20 * SLOW
            while time.monotonic() < deadline:
                assert not b.select(lambda e: e["ev"] == "flood_done"), \
                    "the backend sent everything: nobody pushed back"
                progress = b.select(lambda e: e["ev"] == "flood" and e["conn"] == conn)
                sent = progress[-1]["sent"] if progress else 0
                peak = max(peak, rss_kib(d.pid))
                if sent != last:
                    last, since = sent, time.monotonic()
                elif time.monotonic() - since > 2 * SLOW:
                    break                        # the backend is blocked
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"the backend never blocked ({last >> 20} MiB sent)")
            assert last < total
            print(f"backend blocked after {last >> 10} KiB")
            worst = await echo_latencies(other)
            assert worst < 1.0 * SLOW, f"echo took {worst:.3f}s while one session is stalled"
            peak = max(peak, rss_kib(d.pid))
            check_rss(d, rss0, peak)
            ws.transport.abort()        # not close(): it would wait for the unread queue
            await asyncio.wait_for(ws.wait_closed(), T)
            assert await echo_latencies(other, 3) < 1.0 * SLOW
    run(main(), timeout=90)


def test_backpressure_agent_whose_warnings_pile_up(daemon, backend):
    """An agent sends messages a rule blocks and never reads: each is
    dropped, but chatmond tells the agent of each (a warning frame with the
    alert): those count against the agent's queue, so chatmond stops
    reading the agent instead of keeping warnings without bound."""
    b = backend()
    d = daemon(b.port, limits={"queue_bytes": "256KiB"}, env=SAN_ENV if SAN else None)
    blocked = json.dumps({"type": "message", "conversation": "c-1",
                          "text": "你滚出去" + "啊" * 20000}, ensure_ascii=False)
    cap = 4000      # 4000 warnings of 60 KB would be 240 MB

    async def main():
        async with agent(d, "/echo?t=bystander") as other:
            await other.send("warm up")
            await recv(other)
            rss0 = peak = rss_kib(d.pid)
            ws = await agent(d, "/echo?t=blocked", max_queue=1, read_limit=4096)
            conn = b.opened("t=blocked")["conn"]
            sent, task, peak = await send_until_blocked(d, ws, blocked, cap, 50, peak)
            assert task is not None, f"agent never blocked after {sent} blocked messages"
            print(f"agent blocked after {sent} blocked messages")
            peak = max(peak, rss_kib(d.pid))
            check_rss(d, rss0, peak)
            assert await echo_latencies(other, 3) < 1.0 * SLOW
            assert b.select(lambda e: e["ev"] == "msg" and e["conn"] == conn) == [], \
                "a blocked message reached the backend"
            task.cancel()
            ws.transport.abort()
    run(main(), timeout=90)


def test_a_message_bigger_than_the_queue_is_relayed(daemon, backend):
    """limits.queue_bytes below limits.max_message is a valid setting: a
    message larger than the queue (but allowed) goes through, instead of
    pausing its sender for a write that never comes."""
    b = backend()
    d = daemon(b.port, limits={"queue_bytes": "64KiB", "max_message": "1MiB",
                               "message_timeout": "5s"})
    big = pattern_bytes(200 * 1024)

    async def main():
        async with agent(d, "/echo?t=big", max_size=None) as ws:
            for _ in range(3):
                await ws.send(big)
                assert await recv(ws, 5 * SLOW) == big
    run(main())
    assert "message not complete" not in d.log()


def stall_daemon(daemon, b, **limits):
    """A chatmond whose stalls show within a second; its admin port."""
    ap = free_port()
    lim = dict({"queue_bytes": "256KiB", "stall_timeout": "1s"}, **limits)
    return daemon(b.port, limits=lim, args=["-o", f"admin.listen=127.0.0.1:{ap}"]), ap


def test_stalled_backend_frees_a_gone_agents_session(daemon, backend):
    """The agent fills the queue to a backend that never reads, so chatmond
    stops reading the agent, and then leaves. chatmond did not read that
    hang-up and kept the session, its queue and its place in the limits for
    ever: the agent coming back got 503 (found by review). Now the backend,
    which took nothing for limits.stall_timeout, is dropped and the session
    freed."""
    b = backend("--max-queue", "1", "--read-limit", "4096")
    d, ap = stall_daemon(daemon, b, max_connections_per_ip=1)
    # wait_ready's probe may still be in the listen backlog: accepted in one
    # burst with the agent's connection, it holds the one place and the
    # agent is closed at accept (where the limit is checked). A plain
    # request answered 426 was accepted with the place free: the probe is
    # gone, and so is this one once its answer has ended.
    deadline = time.monotonic() + 5 * SLOW
    while True:
        with socket.create_connection(("127.0.0.1", d.port), T) as c:
            c.settimeout(T)
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            try:
                while (more := c.recv(4096)):
                    answer += more
            except ConnectionResetError:
                pass
        if answer.startswith(b"HTTP/1.1 426"):
            break
        assert time.monotonic() < deadline, "the place never came free"
        time.sleep(0.05)
    raw = RawWS(d.port, "/stall?t=gone")
    b.opened("t=gone")
    raw.sock.settimeout(0.3)                 # well within stall_timeout
    frame = ws_frame(0x2, b"z" * 65536)
    try:
        for _ in range(200):                 # 12.5 MiB: far more than the buffers hold
            raw.sock.sendall(frame)
        raise AssertionError("chatmond never stopped reading the agent")
    except socket.timeout:
        pass                                 # paused
    raw.close()                              # the agent leaves
    t0 = time.monotonic()
    # both sides gone (the upstream's socket is closed a loop turn after the agent's)
    m = wait_for(lambda: (lambda m: m if m.value("chatmon_agents_connected") == 0 and
                          m.value("chatmon_upstream_connected") == 0 else None)(
        metrics(ap)), 5 * SLOW, "the gone agent's session freed")
    print(f"freed after {time.monotonic() - t0:.1f}s")
    assert m.value("chatmon_timeouts_total", kind="stall") == 1
    assert m.value("chatmon_queued_bytes") == 0
    d.wait_log(r"session_stalled: agent=-: upstream took nothing for 1000 ms, dropped")

    async def main():                        # its place in the limits is free again
        async with agent(d, "/echo?t=back") as ws:
            await ws.send("back")
            assert await recv(ws) == "back"
    run(main())


def test_a_reload_judges_a_stall_under_way_by_the_new_stall_timeout(daemon, backend):
    """limits.stall_timeout reloads "at once" (docs/configuration.md):
    found by review, a stall watched under 30 s was dropped 30 s on after
    a reload to 1 s, and the log named 1 000 ms. A stall under way is now
    judged again by the new limit when the reload applies."""
    b = backend("--max-queue", "1", "--read-limit", "4096")
    d, ap = stall_daemon(daemon, b, stall_timeout="30s")
    raw = RawWS(d.port, "/stall?t=reload")
    b.opened("t=reload")
    raw.sock.settimeout(0.3)
    frame = ws_frame(0x2, b"z" * 65536)
    try:
        for _ in range(200):
            raw.sock.sendall(frame)
        raise AssertionError("chatmond never stopped reading the agent")
    except socket.timeout:
        pass                                 # paused: the backend's stall is watched
    mark = d.reload_with(lambda t: t.replace("stall_timeout: 30s", "stall_timeout: 1s"))
    t0 = time.monotonic()
    d.wait_log(r"session_stalled: agent=-: upstream took nothing for 1000 ms, dropped",
               5 * SLOW, mark)
    assert time.monotonic() - t0 < 3 * SLOW
    raw.close()


def test_stalled_agent_is_dropped_and_the_backend_told(daemon, backend):
    """The other way: a backend floods an agent that never reads. Once the
    agent took nothing for limits.stall_timeout it is dropped and the
    backend closed (1001 "agent stalled")."""
    b = backend()
    d, ap = stall_daemon(daemon, b)
    raw = RawWS(d.port, "/flood?t=deaf")
    conn = b.opened("t=deaf")["conn"]
    c = b.wait(lambda e: e["ev"] == "flood_closed" and e["conn"] == conn, 15 * SLOW,
               "the flooding backend closed")
    assert (c["code"], c["reason"]) == (1001, "agent stalled"), c
    t0 = time.monotonic()
    m = wait_for(lambda: (lambda m: m if m.value("chatmon_agents_connected") == 0 else None)(
        metrics(ap)), 5 * SLOW, "the stalled agent dropped")
    print(f"agent dropped {time.monotonic() - t0:.1f}s after the backend's close")
    assert m.value("chatmon_timeouts_total", kind="stall") == 1
    d.wait_log(r"session_stalled: agent=-: agent took nothing for 1000 ms, dropped")
    raw.sock.settimeout(5 * SLOW)
    try:
        while raw.sock.recv(1 << 20):        # what it never read, then the end
            pass
    except ConnectionResetError:
        pass
    raw.close()
