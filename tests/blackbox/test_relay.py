"""Messages relayed both ways: sizes around every frame-length boundary and
limits.max_message, text and binary, fragmented, and many agents at once."""

import asyncio
import random

import pytest

from conftest import (SLOW, T, agent, closed, pattern_bytes, pattern_text, recv, run, sha)

SMALL_MAX = 100000
SIZES = [0, 125, 126, 65535, 65536, SMALL_MAX - 1, SMALL_MAX]


def payload(kind, n):
    return pattern_text(n) if kind == "text" else pattern_bytes(n)


@pytest.fixture
def small(daemon, backend):
    """An echo backend behind a chatmond whose max_message is 100000 (by -o)."""
    b = backend()
    d = daemon(b.port, args=["-o", f"limits.max_message={SMALL_MAX}"])
    return d, b


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_sizes_agent_to_backend_and_back(small, kind):
    d, b = small

    async def main():
        async with agent(d, f"/echo?t=sizes-{kind}") as ws:
            conn = b.opened(f"t=sizes-{kind}")["conn"]
            sent = [payload(kind, n) for n in SIZES]
            if kind == "text":      # multi-byte characters, exactly max_message bytes
                sent.append("汉" * ((SMALL_MAX - 1) // 3) + "a")
                assert len(sent[-1].encode()) == SMALL_MAX
            for data in sent:
                await ws.send(data)
                got = await recv(ws)
                assert type(got) is type(data) and len(got) == len(data) and got == data, len(data)
            msgs = b.messages(conn, len(sent))
            assert [(m["kind"], m["len"], m["sha"]) for m in msgs] == \
                [(kind, len(s.encode()) if kind == "text" else len(s), sha(s)) for s in sent]
    run(main())


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_sizes_backend_to_agent(small, kind):
    d, b = small

    async def main():
        async with agent(d, f"/gen?t=gen-{kind}") as ws:
            for n in SIZES:
                await ws.send(f"{kind} {n}")
                got = await recv(ws)
                assert got == payload(kind, n), n
    run(main())


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_fragmented_both_ways(small, kind):
    """Fragments are reassembled and arrive whole; max_message applies to the whole."""
    d, b = small

    async def main():
        async with agent(d, f"/echo?t=frag-{kind}") as ws:
            conn = b.opened(f"t=frag-{kind}")["conn"]
            data = payload(kind, SMALL_MAX)       # 10 fragments of 10000 = exactly the limit
            await ws.send(data[i:i + 10000] for i in range(0, SMALL_MAX, 10000))
            assert await recv(ws) == data
            m = b.wait(lambda e: e["ev"] == "msg" and e["conn"] == conn)
            assert (m["kind"], m["len"], m["sha"]) == (kind, SMALL_MAX, sha(data))
        async with agent(d, f"/gen?t=fraggen-{kind}") as ws:
            for n, k in ((SMALL_MAX, 1000), (70000, 65536), (300, 1)):
                await ws.send(f"frag{kind} {n} {k}")
                assert await recv(ws) == payload(kind, n), (n, k)
    run(main())


async def _bystander_ok(ws, n):
    await ws.send(f"still here {n}")
    assert await recv(ws) == f"still here {n}"


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_over_max_from_agent(small, kind):
    """Agent sends max_message+1 (whole or in fragments): agent 1009, backend 1001."""
    d, b = small

    async def main():
        async with agent(d, "/echo?t=bystander") as other:
            for i, fragmented in enumerate((False, True)):
                tag = f"t=over-agent-{kind}-{i}"
                async with agent(d, f"/echo?{tag}") as ws:
                    conn = b.opened(tag)["conn"]
                    data = payload(kind, SMALL_MAX + 1)
                    if fragmented:
                        await ws.send(data[j:j + 1000] for j in range(0, len(data), 1000))
                    else:
                        await ws.send(data)
                    assert (await closed(ws))[0] == 1009
                    assert b.closed(conn)["code"] == 1001
                    assert b.messages(conn) == []
                await _bystander_ok(other, i)
    run(main())


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_over_max_from_backend(small, kind):
    """Backend sends max_message+1: backend gets 1009, the agent 1011."""
    d, b = small

    async def main():
        async with agent(d, "/echo?t=bystander") as other:
            for i, cmd in enumerate((f"{kind} {SMALL_MAX + 1}", f"frag{kind} {SMALL_MAX + 1} 4096")):
                tag = f"t=over-backend-{kind}-{i}"
                async with agent(d, f"/gen?{tag}") as ws:
                    conn = b.opened(tag)["conn"]
                    await ws.send(cmd)
                    assert (await closed(ws))[0] == 1011
                    assert b.closed(conn)["code"] == 1009
                await _bystander_ok(other, i)
    run(main())


OVER_SHAPES = [(kind, frag, size) for kind in ("text", "binary") for frag in (False, True)
               for size in (SMALL_MAX, SMALL_MAX + 1, 2 << 20, 8 << 20)]


@pytest.mark.parametrize("kind,frag,size", OVER_SHAPES)
def test_backend_message_sizes_every_shape(small, kind, frag, size):
    """Backend messages at the limit pass; past it (by one byte, or by megabytes, in
    one frame or in 64 KiB fragments) the backend gets 1009, the agent 1011, and
    chatmond lives on: lws 4.1.6 wrote past its client rx buffer on the bytes that
    follow a refused frame (third_party/libwebsockets, patch 0006)."""
    d, b = small
    cmd = f"frag{kind} {size} 65536" if frag else f"{kind} {size}"

    async def main():
        async with agent(d, "/echo?t=bystander") as other:
            tag = f"t=shape-{kind}-{int(frag)}-{size}"
            async with agent(d, f"/gen?{tag}") as ws:
                conn = b.opened(tag)["conn"]
                await ws.send(cmd)
                if size <= SMALL_MAX:
                    assert await recv(ws, 2 * T) == payload(kind, size)
                else:
                    assert (await closed(ws, 2 * T))[0] == 1011
                    assert b.closed(conn, 2 * T)["code"] == 1009
            await _bystander_ok(other, 0)
        assert d.proc.poll() is None
    run(main())


def test_default_max_message_1mib(daemon, backend):
    b = backend()
    d = daemon(b.port)          # limits.max_message: 1MiB
    mib = 1 << 20

    async def main():
        async with agent(d, "/echo?t=mib") as ws:
            data = pattern_bytes(mib)
            await ws.send(data)
            assert await recv(ws, 2 * T) == data
        async with agent(d, "/echo?t=mib-over") as ws:
            conn = b.opened("t=mib-over")["conn"]
            await ws.send(pattern_bytes(mib + 1))
            assert (await closed(ws, 2 * T))[0] == 1009
            assert b.closed(conn)["code"] == 1001
        async with agent(d, "/gen?t=mib-gen") as ws:
            await ws.send(f"text {mib}")
            assert await recv(ws, 2 * T) == pattern_text(mib)
            await ws.send(f"binary {mib + 1}")
            assert (await closed(ws, 2 * T))[0] == 1011
    run(main())


def test_100_agents_100_messages(daemon, backend):
    """100 concurrent agents, 100 messages each, mixed text/binary/turns: all echoed
    intact and in order; the stats line counts them."""
    b = backend()
    d = daemon(b.port)
    agents, per = 100, 100

    def messages(i):
        rnd = random.Random(i)
        out = []
        for j in range(per):
            if j % 10 == 0:
                out.append('{"type":"message","conversation":"c-%d","text":"第%d条"}' % (i, j))
            elif j % 2:
                out.append(pattern_bytes(rnd.randrange(0, 3000))[::-1] + bytes([i, j]))
            else:
                out.append(f"{i}:{j}:" + pattern_text(rnd.randrange(0, 3000)))
        return out

    async def one(i):
        expected = messages(i)
        async with agent(d, f"/echo?agent=a{i}", open_timeout=20 * SLOW) as ws:
            async def sender():
                for m in expected:
                    await ws.send(m)
            task = asyncio.create_task(sender())
            for j, m in enumerate(expected):
                got = await recv(ws, 20 * SLOW)
                assert got == m, f"agent {i} message {j}"
            await task

    async def main():
        await asyncio.gather(*(one(i) for i in range(agents)))
    run(main(), timeout=90)

    total = agents * per
    assert len(b.count(lambda e: e["ev"] == "msg", total, 10 * SLOW)) == total
    assert d.stop() == 0
    s = d.stats()
    assert s["agents_total"] == agents, s
    assert s["messages_up"] == total and s["messages_down"] == total, s
    assert s["turns_agent"] == agents * per // 10 and s["turns_customer"] == agents * per // 10, s
    assert s["upstream_failures"] == 0, s
    assert len([t for t in d.turns() if t[0] == "relay_turn"]) == 2 * agents * per // 10
