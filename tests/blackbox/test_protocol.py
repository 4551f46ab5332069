"""WebSocket protocol behaviour of the relay: close codes, upstream failures,
protocol violations, pings, subprotocols, headers, path and query."""

import asyncio
import struct
import time

import pytest

from conftest import SLOW, T, RawWS, agent, closed, free_port, recv, run


def header(event, name):
    values = [v for k, v in event["headers"] if k.lower() == name.lower()]
    assert len(values) <= 1, (name, values)
    return values[0] if values else None


# ---------------------------------------------------------------- close codes

def test_close_code_agent_to_backend(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?t=agent-closes") as ws:
            conn = b.opened("t=agent-closes")["conn"]
            await ws.send("hello")
            assert await recv(ws) == "hello"
            await asyncio.wait_for(ws.close(4000, "bye"), T)
        c = b.closed(conn)
        assert (c["code"], c["reason"]) == (4000, "bye")
    run(main())


def test_close_code_backend_to_agent(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/close?after=2&code=4001&reason=later") as ws:
            for m in ("one", "two"):
                await ws.send(m)
            assert await recv(ws) == "one"
            assert await recv(ws) == "two"
            assert await closed(ws) == (4001, "later")
        async with agent(d, "/close?after=0&code=1000&reason=done") as ws:
            assert await closed(ws) == (1000, "done")
    run(main())


def test_registered_close_codes_pass_both_ways(daemon, backend):
    """1012-1014 are registered (Service Restart, Try Again Later, Bad
    Gateway; chatmond itself sends 1013): passed on with their reason, and
    the sender's own code echoed back, not 1002 (lws rewrote them)."""
    b = backend()
    d = daemon(b.port)
    for code in (1012, 1013, 1014):
        raw = RawWS(d.port, f"/echo?t=reg-{code}")
        conn = b.opened(f"t=reg-{code}")["conn"]
        raw.send_frame(0x8, struct.pack("!H", code) + b"later")
        assert raw.recv_close() == (code, "later"), code
        raw.close()
        c = b.closed(conn)
        assert (c["code"], c["reason"]) == (code, "later"), c

    async def main():
        for code in (1012, 1013, 1014):
            async with agent(d, f"/close?after=0&code={code}&reason=try+again+later") as ws:
                assert await closed(ws) == (code, "try again later"), code
    run(main())


def test_close_without_code_agent_to_backend(daemon, backend):
    """An empty close frame from the agent reaches the backend as an empty
    close (no status, RFC 6455 7.1.5: 1005), not as status 0, which 7.4
    forbids and python3-websockets fails on (it reported 1006)."""
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, "/echo?t=nocode-agent")
    conn = b.opened("t=nocode-agent")["conn"]
    raw.send_frame(0x1, b"hi")
    assert raw.recv_frame() == (True, 0x1, b"hi")
    raw.send_frame(0x8, b"")
    assert raw.recv_frame() == (True, 0x8, b"")     # lws answers it in kind
    raw.close()
    c = b.closed(conn)
    assert (c["code"], c["reason"]) == (1005, ""), c


def test_close_without_code_backend_to_agent(daemon, backend):
    """The backend's empty close frame reaches the agent as an empty close."""
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, "/raw?t=nocode-backend&hex=8800")
    while True:
        fin, opcode, payload = raw.recv_frame()
        if opcode == 0x8:
            break
    assert (fin, payload) == (True, b""), payload   # was b"\x00\x00": status 0
    raw.send_frame(0x8, b"")
    raw.close()
    assert b.closed(b.opened("t=nocode-backend")["conn"])["code"] == 1005


def test_agent_vanishing_closes_upstream(daemon, backend):
    """An agent whose TCP connection just drops: chatmond closes the upstream too."""
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, "/echo?t=vanish")
    conn = b.opened("t=vanish")["conn"]
    raw.close()
    assert b.closed(conn)["code"] in (1001, 1006, 1000), b.closed(conn)


# ---------------------------------------------------------------- upstream failures

def test_backend_down(daemon):
    d = daemon(free_port())     # nothing listens there

    async def main():
        async with agent(d, "/echo?agent=alice") as ws:
            code, reason = await closed(ws, 15 * SLOW)
            assert code == 1013 and reason.startswith("upstream"), (code, reason)
    run(main())
    assert d.stop() == 0
    s = d.stats()
    assert s["upstream_failures"] == 1 and s["agents_total"] == 1, s


def test_backend_refuses(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/refuse?agent=alice") as ws:
            code, reason = await closed(ws)
            assert code == 1011 and reason.startswith("upstream"), (code, reason)
        b.wait(lambda e: e["ev"] == "refused")
    run(main())
    assert d.stop() == 0
    # an HTTP refusal is the backend up and saying no: counted apart
    s = d.stats()
    assert s["upstream_refused"] == 1 and s["upstream_failures"] == 0, s


def test_backend_handshake_timeout(daemon, backend):
    """A backend that never finishes its handshake is given up on after
    limits.connect_timeout; the agent is told why."""
    b = backend()
    d = daemon(b.port, limits={"connect_timeout": "1s"})

    async def main():
        async with agent(d, "/delay?ms=8000") as ws:
            t0 = time.monotonic()
            code, reason = await closed(ws, 6 * SLOW)
            assert code in (1011, 1013) and reason.startswith("upstream"), (code, reason)
            assert time.monotonic() - t0 < 4 * SLOW
    run(main())


# ---------------------------------------------------------------- protocol violations

def test_invalid_utf8_from_agent(daemon, backend):
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, "/echo?t=badutf8-agent")
    conn = b.opened("t=badutf8-agent")["conn"]
    raw.send_frame(0x1, "valid 汉字".encode())
    _, opcode, payload = raw.recv_frame()
    assert (opcode, payload) == (0x1, "valid 汉字".encode())
    raw.send_frame(0x1, b"\xff\xfe")
    assert raw.recv_close()[0] == 1007
    raw.close()
    b.closed(conn)          # the upstream goes too
    assert len(b.messages(conn)) == 1


def test_invalid_utf8_split_across_fragments(daemon, backend):
    """A valid character split between two fragments is fine; a truncated one is not."""
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, "/echo?t=badutf8-frag")
    zh = "汉".encode()
    raw.send_frame(0x1, zh[:2], fin=False)
    raw.send_frame(0x0, zh[2:], fin=True)
    _, opcode, payload = raw.recv_frame()
    assert (opcode, payload) == (0x1, zh)
    raw.send_frame(0x1, b"ok" + zh[:2], fin=False)
    raw.send_frame(0x0, b"", fin=True)
    assert raw.recv_close()[0] == 1007
    raw.close()


# Invalid bytes right after long valid runs (ASCII, then 3-byte characters):
# lws patch 0016 passes such runs at once and must still stop at the first
# byte that is not UTF-8, whatever the run before it.
RUN = b"order 12345678 " + "亲您好这款保温杯今天发货".encode()
BAD_AFTER_RUNS = {
    "surrogate": RUN + b"\xed\xa0\x80" + "哦".encode(),
    "overlong_three_bytes": RUN + b"\xe0\x80\x80" + "哦".encode(),
    "lone_continuation": RUN + b"\x80" + "哦".encode(),
    "past_u10ffff": RUN + b"\xf4\x90\x80\x80",
    "five_byte_lead": RUN + b"\xf8\x88\x80\x80\x80",
    "cut_character_at_the_end": RUN + "汉".encode()[:2],
    "ascii_then_cut": b"abcdefghijklmnop" + b"\xe6",
}
GOOD_EDGES = (RUN + "\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff".encode()
              + b"12345678")


@pytest.mark.parametrize("case", sorted(BAD_AFTER_RUNS))
def test_invalid_utf8_after_valid_runs(daemon, backend, case):
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, f"/echo?t=badrun-{case}")
    conn = b.opened(f"t=badrun-{case}")["conn"]
    raw.send_frame(0x1, GOOD_EDGES)
    assert raw.recv_frame()[1:] == (0x1, GOOD_EDGES)
    raw.send_frame(0x1, BAD_AFTER_RUNS[case])
    assert raw.recv_close()[0] == 1007
    raw.close()
    b.closed(conn)
    assert len(b.messages(conn)) == 1


def test_every_length_relayed_exactly(daemon, backend):
    """chatmond masks what it sends the backend eight bytes at a time (lws
    patch 0017): every length and phase of the mask's four bytes comes back
    byte for byte."""
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, "/echo?t=lengths")
    b.opened("t=lengths")
    text = ("a汉" * 1400).encode()
    for n in list(range(0, 40)) + [125, 126, 127, 4095, 4099]:
        chunk = text[:n].decode(errors="ignore").encode()
        raw.send_frame(0x1, chunk)
        assert raw.recv_frame()[1:] == (0x1, chunk), n
    raw.close()


def test_invalid_utf8_from_backend(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/badutf8?t=badutf8-backend") as ws:
            conn = b.opened("t=badutf8-backend")["conn"]
            await ws.send("trigger")
            code, _ = await closed(ws)
            assert code != 1000, code      # the agent's session ends, not normally
        assert b.closed(conn)["code"] == 1007
    run(main())


def test_unmasked_frame_from_agent(daemon, backend):
    b = backend()
    d = daemon(b.port)
    raw = RawWS(d.port, "/echo?t=unmasked")
    conn = b.opened("t=unmasked")["conn"]
    raw.send_frame(0x1, b"masked is fine")
    assert raw.recv_frame()[1:] == (0x1, b"masked is fine")
    raw.send_frame(0x1, b"not masked", mask=False)
    assert raw.recv_close()[0] == 1002
    raw.close()
    b.closed(conn)
    assert [m["head"] for m in b.messages(conn)] == ["masked is fine"]


# ---------------------------------------------------------------- pings

def test_ping_answered_per_hop(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        # agent -> chatmond: answered while the upstream handshake is still pending,
        # so chatmond answers it itself
        async with agent(d, "/delay?ms=2500&t=ping-early") as ws:
            t0 = time.monotonic()
            waiter = await ws.ping(b"agent-ping")
            await asyncio.wait_for(waiter, 1.5 * SLOW)
            assert time.monotonic() - t0 < 2.0 * SLOW
            await ws.send("after")
            assert await recv(ws) == "after"
            waiter = await ws.ping(b"again")
            await asyncio.wait_for(waiter, T)
        # backend -> chatmond
        async with agent(d, "/ping?t=backend-ping") as ws:
            conn = b.opened("t=backend-ping")["conn"]
            assert b.wait(lambda e: e["ev"] == "pong" and e["conn"] == conn)["ok"]
            await ws.send("still relaying")
            assert await recv(ws) == "still relaying"
    run(main())


# ---------------------------------------------------------------- subprotocols

def test_subprotocol_match(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?t=sp-match", subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v2"
            o = b.opened("t=sp-match")
            assert o["offered"] == "chat.v2, chat.v1", o
            assert o["subprotocol"] == "chat.v2"
            await ws.send("x")
            assert await recv(ws) == "x"
    run(main())


def test_subprotocol_mismatch(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?t=sp-mismatch&pick=chat.v1",
                         subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v2"      # answered at once with the first
            code, reason = await closed(ws)
            assert code == 1002 and reason.startswith("subprotocol mismatch"), (code, reason)
    run(main())


@pytest.mark.parametrize("n", [255, 256, 400])
def test_a_long_subprotocol_the_backend_chose_is_compared_whole(daemon, backend, n):
    """A backend's choice of 256 bytes or more did not fit chatmond's buffer
    and was taken for no choice: the agent went on speaking one protocol
    and the backend another. It is compared whole, whatever its length."""
    b = backend()
    d = daemon(b.port)
    other = "v" * n

    async def main():
        async with agent(d, f"/echo?t=sp-long{n}&pick={other}",
                         subprotocols=["chat.v2", other]) as ws:
            assert ws.subprotocol == "chat.v2"
            code, reason = await closed(ws)
            assert code == 1002 and reason.startswith("subprotocol mismatch"), (code, reason)
    run(main())


def test_subprotocol_backend_picks_none(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?t=sp-none&pick=none", subprotocols=["chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            await ws.send("goes on")
            assert await recv(ws) == "goes on"
        d.wait_log(r"^chatmond: warn: .*subprotocol", T)
    run(main())


def test_long_subprotocol_offers_are_answered(daemon, backend):
    """An offered list of 127 bytes or more, or a name of 63 or more (a
    bearer token passed as a subprotocol), got no HTTP answer at all: lws
    copied the list into 128 bytes and each name into 64 (patch 0022). The
    agent is answered with its first choice, the backend gets the list."""
    token = "base64url.bearer.authorization.k8s.io." + "eyJhbGciOiJIUzI1NiJ9" * 10
    offers = {"sp-long-name": ["chat", token],
              "sp-long-first": [token, "chat"],
              "sp-long-list": [f"chat.v{i}.example.com" for i in range(12)]}
    b = backend()
    d = daemon(b.port)

    async def main():
        for t, offer in offers.items():
            async with agent(d, f"/echo?t={t}", subprotocols=offer) as ws:
                assert ws.subprotocol == offer[0], t
                o = b.opened(f"t={t}")
                assert o["offered"] == ", ".join(offer), o
                assert o["subprotocol"] == offer[0], o
                await ws.send(t)
                assert await recv(ws) == t
    run(main())


def test_no_subprotocol_offered(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?t=sp-absent") as ws:
            assert ws.subprotocol is None
            assert b.opened("t=sp-absent")["offered"] is None
            await ws.send("plain")
            assert await recv(ws) == "plain"
    run(main())


# ---------------------------------------------------------------- headers, path, query

def test_headers_passed_through(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?t=hdr1", origin="https://workbench.example",
                         extra_headers={"Authorization": "Bearer s3cr3t",
                                        "Cookie": "sid=abc; lang=zh-CN",
                                        "X-Private": "not forwarded?"}) as ws:
            await ws.send("x")
            await recv(ws)
        o = b.opened("t=hdr1")
        assert header(o, "Authorization") == "Bearer s3cr3t"
        assert header(o, "Cookie") == "sid=abc; lang=zh-CN"
        assert header(o, "Origin") == "https://workbench.example"
        assert header(o, "X-Forwarded-For") == "127.0.0.1"
        assert header(o, "Host") == f"127.0.0.1:{b.port}"

        async with agent(d, "/echo?t=hdr2",
                         extra_headers={"X-Forwarded-For": "203.0.113.7"}) as ws:
            await ws.send("x")
            await recv(ws)
        o = b.opened("t=hdr2")
        # anyone could write it: only a trusted proxy's is passed on
        assert header(o, "X-Forwarded-For") == "127.0.0.1"
        assert header(o, "Authorization") is None and header(o, "Cookie") is None
    run(main())


def test_a_browsers_large_cookie_and_token_reach_the_backend_whole(daemon, backend):
    """A workbench on a shop's domain carries that domain's cookies, often
    several kilobytes: chatmond passes Cookie and Authorization on, and
    lws's client wrote the whole upstream handshake into one 4 KiB buffer,
    so a larger one failed every connection (the agent got 1013)."""
    b = backend()
    d = daemon(b.port)
    # 7 KiB together; each under the 4 KiB a header line the peer
    # (python3-websockets 10) reads
    cookie = "; ".join(f"c{i}={'v' * 90}" for i in range(40))
    auth = "Bearer " + "t" * 3500

    async def main():
        async with agent(d, "/echo?t=bigcookie",
                         extra_headers={"Cookie": cookie, "Authorization": auth}) as ws:
            await ws.send("x")
            assert await recv(ws) == "x"
        o = b.opened("t=bigcookie")
        assert header(o, "Cookie") == cookie
        assert header(o, "Authorization") == auth
    run(main())


def test_path_and_query_appended(daemon, backend):
    b = backend()

    async def main(d, path, expected):
        async with agent(d, path) as ws:
            await ws.send("x")
            assert await recv(ws) == "x"
        b.wait(lambda e: e["ev"] == "open" and e["path"] == expected, T,
               f"a connection on exactly {expected!r}")

    d = daemon(b.port)
    run(main(d, "/chat/x?agent=alice&k=v", "/chat/x?agent=alice&k=v"))
    run(main(d, "/", "/"))
    d2 = daemon(upstream=f"ws://127.0.0.1:{b.port}/base/")
    run(main(d2, "/chat?agent=bob", "/base/chat?agent=bob"))


def test_long_path_and_query_whole_or_refused(daemon, backend):
    """A path and query as long as the backend's request line can carry
    (2032 bytes) arrive whole, arguments after a long one too; one byte
    more, in the query or in the path, is refused 414 before anything goes
    upstream: never cut short."""
    from test_ops import metrics
    b = backend()
    ap = free_port()
    d = daemon(b.port, args=["-o", f"admin.listen=127.0.0.1:{ap}"])
    fixed = len("/echo?t=long&note=&conv=c-1&lang=zh")
    whole = f"/echo?t=long&note={'A' * (2032 - fixed)}&conv=c-1&lang=zh"
    assert len(whole) == 2032

    async def main():
        async with agent(d, whole) as ws:
            await ws.send("x")
            assert await recv(ws) == "x"
        for path in (whole.replace("note=", "note=A"), "/" + "p" * 2100 + "?t=longpath",
                     f"/echo?t=over&note={'A' * 2100}&conv=c-1"):
            try:
                async with agent(d, path):
                    raise AssertionError(f"{path[:40]}...: upgraded")
            except Exception as e:
                assert getattr(e, "status_code", None) == 414, e
    run(main())
    assert b.opened("t=long")["path"] == whole
    assert [e["path"][:20] for e in b.select(lambda e: e["ev"] == "open")] == [whole[:20]]
    assert metrics(ap).value("chatmon_connections_refused_total", reason="uri_too_long") == 3
    d.wait_log(r"agent refused \(414\): the backend's path and query would be 2033 bytes")
