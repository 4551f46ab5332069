"""Chat turns found in JSON text frames: the relay_turn / relay_end debug lines,
the stats counters, and frames that are not turns passing untouched."""

import json
import os
import re
import subprocess
import time

from conftest import PYTHON, ROOT, SLOW, agent, recv, run

EMOJI_RAW = r'{"type":"message","conversation":"c-emoji","text":"\ud83d\ude00 ok \u4f60\u597d"}'
EMOJI_BYTES = len("😀 ok 你好".encode())          # 14: counted unescaped

TURNS = [   # (frame, (conversation, bytes)) in agent -> backend order
    (json.dumps({"type": "message", "conversation": "c-zh", "text": "亲,在的,请问有什么可以帮您?"},
                ensure_ascii=False), ("c-zh", len("亲,在的,请问有什么可以帮您?".encode()))),
    (EMOJI_RAW, ("c-emoji", EMOJI_BYTES)),
    ('{ "text" : "hi\\n\\"there\\"" ,\n "conversation":"c-ws" , "type":"message" }',
     ("c-ws", len('hi\n"there"'))),
    ('{"type":"message","conversation":"c-empty","text":""}', ("c-empty", 0)),
]
ENDS = ['{"type":"end","conversation":"c-zh"}']
OTHERS = [   # neither turns nor ends: relayed byte for byte, counted
    '{"type":"typing","conversation":"c-zh"}',
    "hello, not JSON",
    '{"type":"message",',
    '[1, 2, 3]',
    '{"type":"messages","conversation":"c-zh","text":"near miss"}',
    b"\x89PNG\r\n\x1a\n",                 # a binary message that holds no JSON
]
# a turn in a binary message is a turn (protocol.binary: inspect), relayed as binary
BINARY = TURNS[0][0].encode()


def test_turns_logged_and_counted(daemon, backend):
    """Every frame goes agent -> echo backend -> agent; each turn is logged twice
    (role=agent, then role=customer), in order, with its unescaped byte count."""
    b = backend()
    d = daemon(b.port)
    frames = [t for t, _ in TURNS] + ENDS + OTHERS + [BINARY]

    async def main():
        async with agent(d, "/echo?agent=alice&t=turns") as ws:
            conn = b.opened("t=turns")["conn"]
            for f in frames:
                await ws.send(f)
                got = await recv(ws)
                assert got == f, (f, got)          # untouched, byte for byte
            b.messages(conn, len(frames))
    run(main())

    expected = []
    for _, (conv, n) in TURNS:
        expected += [("relay_turn", "alice", conv, "agent", n),
                     ("relay_turn", "alice", conv, "customer", n)]
    expected += [("relay_end", "alice", "c-zh", "agent", None),
                 ("relay_end", "alice", "c-zh", "customer", None)]
    conv, n = TURNS[0][1]
    expected += [("relay_turn", "alice", conv, "agent", n),
                 ("relay_turn", "alice", conv, "customer", n)]
    assert d.stop() == 0
    assert d.turns() == expected, d.log()[-3000:]

    s = d.stats()
    assert s["turns_agent"] == len(TURNS) + 1 and s["turns_customer"] == len(TURNS) + 1, s
    assert s["binary_messages"] == 2 * 2, s
    assert s["messages_up"] == len(frames) and s["messages_down"] == len(frames), s
    # every non-turn frame is counted once per direction under one of the
    # non-turn counters (ends may or may not count there too)
    others = sum(s.get(k, 0) for k in ("frames_other", "frames_invalid",
                                       "frames_malformed", "binary_messages"))
    assert 2 * len(OTHERS) <= others <= 2 * (len(OTHERS) + len(ENDS)), s
    assert s["frames_other"] >= 2 * 2, s      # "typing", "messages": other types
    assert s["frames_invalid"] >= 2 * 2, s    # "hello, not JSON", '{"type":"message",'


def test_agent_id_missing_is_dash(daemon, backend):
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?who=nobody") as ws:
            await ws.send(TURNS[0][0])
            await recv(ws)
    run(main())
    d.wait_log(r"^chatmond: debug: relay_turn: agent=- conversation=c-zh role=customer ")


def test_agent_id_from_header(daemon, backend):
    b = backend()
    d = daemon(b.port, agent_id="header:X-Agent-Id")

    async def main():
        async with agent(d, "/echo?agent=mallory",
                         extra_headers={"X-Agent-Id": "bob"}) as ws:
            await ws.send(EMOJI_RAW)
            await recv(ws)
    run(main())
    d.wait_log(r"^chatmond: debug: relay_turn: agent=bob conversation=c-emoji role=customer "
               rf"bytes={EMOJI_BYTES}\b")
    assert {t[1] for t in d.turns()} == {"bob"}


def test_customer_speaks_first(daemon, backend, tmp_path):
    """A scripted backend writes first (customer turns), the agent answers."""
    b = backend()
    d = daemon(b.port)
    script = [
        {"text": '{"type":"message","conversation":"c-7","text":"在吗"}'},
        {"text": r'{"type":"message","conversation":"c-7","text":"\u5728\u5417\ud83d\ude00?"}'},
        {"binary": "00ff10"},
        {"text": '{"type":"system","conversation":"c-7","text":"买家正在输入"}'},
        {"text": '{"type":"end","conversation":"c-8"}'},
    ]
    path = tmp_path / "script.json"
    path.write_text(json.dumps(script))

    async def main():
        async with agent(d, f"/say?agent=carol&script={path}") as ws:
            for f in script:
                got = await recv(ws)
                assert got == (f["text"] if "text" in f else bytes.fromhex(f["binary"]))
            await ws.send('{"type":"message","conversation":"c-7","text":"亲,在的"}')
            await ws.send('{"type":"end","conversation":"c-7"}')
            conn = b.opened("agent=carol")["conn"]
            b.messages(conn, 2)
    run(main())
    assert d.stop() == 0
    assert d.turns() == [
        ("relay_turn", "carol", "c-7", "customer", 6),
        ("relay_turn", "carol", "c-7", "customer", 6 + 4 + 1),
        ("relay_end", "carol", "c-8", "customer", None),
        ("relay_turn", "carol", "c-7", "agent", len("亲,在的".encode())),
        ("relay_end", "carol", "c-7", "agent", None),
    ]
    s = d.stats()
    assert (s["turns_customer"], s["turns_agent"]) == (2, 1), s


def test_live_session_with_demo_backend(daemon):
    """tools/demo_backend.py (sped up) runs its buyers through chatmond; the agent
    answers each customer turn. Every turn each way shows up in the log."""
    demo = subprocess.Popen([PYTHON, os.path.join(ROOT, "tools", "demo_backend.py"),
                             "--listen", "127.0.0.1:0", "--speed", "200", "--seed", "7"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = demo.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert m, f"demo_backend did not start: {line!r}"
        d = daemon(int(m.group(1)))
        received, sent, ends = [], [], []

        async def main():
            async with agent(d, "/shop/ws?agent=dave") as ws:
                deadline = time.monotonic() + 40 * SLOW
                while len(ends) < 6 and time.monotonic() < deadline:
                    f = json.loads(await recv(ws, 10 * SLOW))
                    if f["type"] == "message":
                        received.append((f["conversation"], len(f["text"].encode())))
                        reply = f"亲,在的😀 关于「{f['text'][:6]}」马上为您处理"
                        await ws.send(json.dumps({"type": "message",
                                                  "conversation": f["conversation"],
                                                  "text": reply}, ensure_ascii=False))
                        sent.append((f["conversation"], len(reply.encode())))
                    elif f["type"] == "end":
                        ends.append(f["conversation"])
        run(main(), timeout=60)
        assert len(ends) == 6 and len(received) >= 20, (ends, received)
        assert d.stop() == 0
        turns = d.turns()
        assert sorted((c, n) for k, a, c, r, n in turns if r == "customer" and k == "relay_turn") \
            == sorted(received)
        assert sorted((c, n) for k, a, c, r, n in turns if r == "agent" and k == "relay_turn") \
            == sorted(sent)
        assert sorted(c for k, a, c, r, n in turns if k == "relay_end") == sorted(ends)
        assert {a for k, a, c, r, n in turns} == {"dave"}
        s = d.stats()
        assert (s["turns_customer"], s["turns_agent"]) == (len(received), len(sent)), s
    finally:
        demo.kill()
        out = demo.communicate(timeout=5)[0]
    assert "客服: 亲,在的😀" in out, out[-2000:]
