"""The window of a speaker's last turns in the live relay (docs/rules.md,
"Across turns"): which turns enter it. A customer message shown on two tabs
of one agent is one turn (and one history item), an agent's window is that
agent's alone, a robot's turns are nobody's, conversation "" has one like
any other, it ages on the monotonic clock, and a reload keeps it."""

import asyncio
import json
import os

import pytest

from conftest import REDIS_SERVER, T, agent, recv, run, wait_for

WINDOW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules_window")


def msg(conv, text, **kw):
    return json.dumps(dict({"type": "message", "conversation": conv, "text": text}, **kw),
                      ensure_ascii=False)


def show(frame):
    """To the tabs backend: show frame on every tab of the agent."""
    return json.dumps({"show": frame}, ensure_ascii=False)


async def drain(ws, t=0.3):
    got = []
    try:
        while True:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), t)))
    except asyncio.TimeoutError:
        return got


def rule_alerts(d):
    return [json.loads(line.split("alert: ", 1)[1]) for line in d.log().splitlines()
            if ": debug: alert: {" in line]


@pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="no redis-server")
def test_customer_message_on_two_tabs_is_one_turn(daemon, backend, redis_server):
    """不退款 / 嗯 / 我就差评, each shown on both of alice's tabs: the window
    counts each once (window.turns 3 still spans the three), as replay does
    with each message once; the history holds each once too."""
    r = redis_server()
    b = backend()
    d = daemon(upstream=f"ws://127.0.0.1:{b.port}/tabs?agent=alice", rules=WINDOW,
               redis=r.url(), extra="window: {turns: 3, time: 60s}\n")
    d.wait_log(r"history_on_state: redis \S+ connected", T)

    async def main():
        async with agent(d, "/x?agent=alice&tab=1") as t1, \
                agent(d, "/x?agent=alice&tab=2") as t2:
            b.opened("tab=1")
            b.opened("tab=2")
            for text in ("不退款", "嗯", "我就差评"):
                await t1.send(show(msg("c-tabs", text)))
                assert json.loads(await recv(t1))["text"] == text
                assert json.loads(await recv(t2))["text"] == text
            await drain(t1)
            await drain(t2)
    run(main())
    hits = [a for a in rule_alerts(d) if a["type"] == "rule.hit"]
    assert [(a["rule"], a.get("turns", 1), a["text"]) for a in hits] == \
        [("complaint_risk.test_threat", 3, "不退款\n嗯\n我就差评")], hits
    c = r.client()
    wait_for(lambda: c.llen("chatmon:hist:c-tabs") >= 3, T, "history items")
    import time
    time.sleep(0.2)
    texts = [json.loads(x)["text"] for x in reversed(c.lrange("chatmon:hist:c-tabs", 0, -1))]
    assert texts == ["不退款", "嗯", "我就差评"], texts


def test_agent_window_is_one_agents(daemon, backend):
    """alice says 加我 in c-t, then bob (the conversation transferred to him)
    says `v abc12345`: bob broke nothing, and alice's turn is quoted in no
    alert of his. bob's own 加我 / v abc12345 is blocked, his turns alone."""
    b = backend()
    d = daemon(b.port, rules=WINDOW)

    async def main():
        async with agent(d, "/echo?agent=alice") as alice, \
                agent(d, "/echo?agent=bob") as bob:
            await alice.send(msg("c-t", "加我"))
            assert json.loads(await recv(alice))["text"] == "加我"
            await bob.send(msg("c-t", "v abc12345"))
            f = json.loads(await recv(bob))
            assert f.get("type") == "message" and f["text"] == "v abc12345", f
            await bob.send(msg("c-t", "加我"))
            assert json.loads(await recv(bob))["text"] == "加我"
            await bob.send(msg("c-t", "v abc12345"))
            f = json.loads(await recv(bob))
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
            assert f["alert"]["agent"] == "bob" and f["alert"]["text"] == "加我\nv abc12345", f
    run(main())
    hits = [a for a in rule_alerts(d) if a["type"] == "rule.hit"]
    assert [(a["agent"], a["text"]) for a in hits] == [("bob", "加我\nv abc12345")], hits


def test_robot_turns_join_no_window(daemon, backend):
    """The platform robot's 【系统消息】定制商品不退款 (robot: true), then the
    customer's 那我差评: the customer said no threat. The robot's turn is
    still inspected alone, and the customer's own split still counts."""
    b = backend()
    d = daemon(upstream=f"ws://127.0.0.1:{b.port}/tabs?agent=alice", rules=WINDOW,
               args=["-o", "protocol.robot=/robot"])

    async def main():
        async with agent(d, "/x?agent=alice") as ws:
            for text, robot in (("【系统消息】定制商品不退款", True), ("那我差评", False),
                                ("定制商品不退款就差评", True), ("不退款", False),
                                ("我就差评", False)):
                await ws.send(show(msg("r-1", text, **({"robot": True} if robot else {}))))
                assert json.loads(await recv(ws))["text"] == text
            await asyncio.sleep(0.2)
    run(main())
    hits = [a for a in rule_alerts(d) if a["type"] == "rule.hit"]
    assert [(a["role"], a.get("turns", 1), a["text"]) for a in hits] == \
        [("customer", 1, "定制商品不退款就差评"), ("customer", 2, "不退款\n我就差评")], hits


def test_empty_conversation_id_has_a_window(daemon, backend):
    """Conversation "" is a conversation (the SLA times it, the history keeps
    it): 加我 / v abc12345 in it is blocked as in any other."""
    b = backend()
    d = daemon(b.port, rules=WINDOW)

    async def main():
        async with agent(d, "/echo?agent=alice") as ws:
            for conv in ("", "x"):
                await ws.send(msg(conv, "加我"))
                assert json.loads(await recv(ws))["text"] == "加我"
                await ws.send(msg(conv, "v abc12345"))
                f = json.loads(await recv(ws))
                assert f["type"] == "chatmon.warning" and f["blocked"] is True, (conv, f)
                assert f["conversation"] == conv and f["alert"]["turns"] == 2, f
    run(main())
