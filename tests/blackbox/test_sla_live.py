"""The SLA clock in the live relay, with thresholds short enough to watch:
sla.warn and sla.breach reach the agent as chatmon.warning frames at their
moments (measured from the customer turn's arrival at the agent), escalation
goes to the log only, a reply cancels what is still to come, a burst is one
round, first and later rounds have their thresholds, robot replies, blocked
replies, end frames and disconnects, and the per-agent figures at exit.

Customers write on a schedule through tests/peers/customer.py."""

import asyncio
import json
import os
import re
import time

import pytest

from conftest import SLOW, T, agent, recv, run

LIVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules_live")

FIRST, REPLY, WARN_AT, ESCALATE = 600, 800, 0.5, 2000     # ms
SLA = ("sla:\n  first_response: 600ms\n  reply: 800ms\n  warn_at: 0.5\n"
       "  escalate: 2s\n  timezone: UTC\n")
TOL = 150 * SLOW            # ms either side of an event's moment
QUIET_AFTER = (ESCALATE + 300) / 1000     # s: by then every event would have come


def frame(conv, text, **extra):
    return json.dumps(dict({"type": "message", "conversation": conv, "text": text}, **extra),
                      ensure_ascii=False)


def end(conv):
    return json.dumps({"type": "end", "conversation": conv})


def customers(tmp_path, steps, name="script"):
    """A script file for customer.py: steps are (at_ms, frame text)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps([{"at": at, "text": text} for at, text in steps],
                               ensure_ascii=False), encoding="utf-8")
    return path


def start(daemon, backend, **cfg):
    b = backend(script="customer.py")
    d = daemon(b.port, extra=SLA, **cfg)
    return b, d


def path(script, agent_id, **q):
    extra = "".join(f"&{k}={v}" for k, v in q.items())
    return f"/script?file={script}&agent={agent_id}{extra}"


async def next_frame(ws, timeout=T):
    """(arrival time in s on the monotonic clock, decoded frame)."""
    data = await recv(ws, timeout)
    # the backend's frames here are text, and so are chatmond's own
    assert isinstance(data, str), f"a binary frame: {data[:200]!r}"
    return time.monotonic(), json.loads(data)


async def customer_turn(ws, conv=None):
    t, f = await next_frame(ws)
    assert f["type"] == "message", f
    if conv is not None:
        assert f["conversation"] == conv, f
    return t, f


async def sla_frame(ws, kind, since, due_ms, conv, first, threshold, timeout=T):
    """The next frame must be the chatmon.warning of an SLA alert of kind,
    arriving due_ms (within TOL) after since; returns its alert."""
    t, f = await next_frame(ws, timeout)
    assert f["type"] == "chatmon.warning" and f["blocked"] is False, f
    a = f["alert"]
    assert f["conversation"] == conv and a["conversation"] == conv, f
    assert a["type"] == kind, f
    assert a["severity"] == {"sla.warn": "info", "sla.breach": "warn"}[kind], a
    assert a["first"] is first, a
    assert a["threshold_ms"] == threshold, a
    assert a["waited_ms"] == (round(threshold * WARN_AT) if kind == "sla.warn" else threshold), a
    assert a["v"] == 2 and a["id"] and a["ts"].endswith("Z"), a
    got = (t - since) * 1000
    assert abs(got - due_ms) <= TOL, f"{kind} after {got:.0f} ms, expected {due_ms} ± {TOL}"
    return a


async def silence(ws, seconds):
    """Nothing may reach the agent for this long."""
    try:
        data = await asyncio.wait_for(ws.recv(), seconds)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"unexpected frame: {data}")


def alerts(d, conv=None):
    out = []
    for line in d.log().splitlines():
        if ": debug: alert: " in line:
            a = json.loads(line.split(": debug: alert: ", 1)[1])
            if conv is None or a.get("conversation") == conv:
                out.append(a)
    return out


def sla_types(d, conv):
    return [a["type"] for a in alerts(d, conv) if a["type"].startswith("sla.")]


def figures(d, agent_id):
    m = re.findall(rf"^chatmond: info: slaclock: agent={re.escape(agent_id)} (.*)$",
                   d.log(), re.M)
    assert m, f"no slaclock line for {agent_id}:\n{d.log()[-3000:]}"
    return {k: float(v) if "." in v else int(v)
            for k, v in (kv.split("=", 1) for kv in m[-1].split())}


def test_warn_and_breach_on_time_escalation_for_supervisors_only(daemon, backend, tmp_path):
    s = customers(tmp_path, [(0, frame("s-1", "在吗,这款还有M码吗"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "alice")) as ws:
            t0, _ = await customer_turn(ws, "s-1")
            w = await sla_frame(ws, "sla.warn", t0, FIRST * WARN_AT, "s-1", True, FIRST)
            assert w["agent"] == "alice"
            br = await sla_frame(ws, "sla.breach", t0, FIRST, "s-1", True, FIRST)
            assert br["agent"] == "alice" and br["id"] != w["id"]
            # the escalation at 2 s is not the agent's business
            await silence(ws, QUIET_AFTER - FIRST / 1000)
    run(main())
    a = [x for x in alerts(d, "s-1")]
    assert [x["type"] for x in a] == ["sla.warn", "sla.breach", "sla.escalate"]
    esc = a[2]
    assert esc["severity"] == "critical" and esc["waited_ms"] == ESCALATE
    assert esc["threshold_ms"] == ESCALATE and esc["first"] is True and esc["agent"] == "alice"
    assert d.stop() == 0
    st = d.stats()
    assert (st["sla_warnings"], st["sla_breaches"], st["sla_escalations"]) == (1, 1, 1)
    assert st["sla_timer_fires"] >= 3
    for k in ("sla_timer_late_max_us", "sla_timer_late_sum_us", "sla_timer_late_over_10ms"):
        assert k in st


def test_reply_before_warn_cancels_everything(daemon, backend, tmp_path):
    s = customers(tmp_path, [(0, frame("s-2", "请问发什么快递"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "bob")) as ws:
            await customer_turn(ws, "s-2")
            await asyncio.sleep(0.1)
            await ws.send(frame("s-2", "亲,默认发中通哦"))
            await silence(ws, QUIET_AFTER)
    run(main())
    assert sla_types(d, "s-2") == []
    assert b.wait(lambda e: e["ev"] == "msg" and "中通" in e["head"])


def test_reply_between_warn_and_breach_cancels_breach(daemon, backend, tmp_path):
    s = customers(tmp_path, [(0, frame("s-3", "能开发票吗"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "carol")) as ws:
            t0, _ = await customer_turn(ws, "s-3")
            await sla_frame(ws, "sla.warn", t0, FIRST * WARN_AT, "s-3", True, FIRST)
            await ws.send(frame("s-3", "亲,可以开的"))
            await silence(ws, QUIET_AFTER - FIRST * WARN_AT / 1000)
    run(main())
    assert sla_types(d, "s-3") == ["sla.warn"]


def test_burst_opens_one_round_from_its_first_turn(daemon, backend, tmp_path):
    s = customers(tmp_path, [(0, frame("s-4", "在吗")), (150, frame("s-4", "在吗")),
                             (250, frame("s-4", "在吗???"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "dave")) as ws:
            t0, _ = await customer_turn(ws, "s-4")
            await customer_turn(ws, "s-4")
            await customer_turn(ws, "s-4")
            # timed from the first turn: a restart at the last would warn at 550 ms
            await sla_frame(ws, "sla.warn", t0, FIRST * WARN_AT, "s-4", True, FIRST)
            await sla_frame(ws, "sla.breach", t0, FIRST, "s-4", True, FIRST)
            await ws.send(frame("s-4", "亲,在的,不好意思久等了"))
            await silence(ws, 0.8)
    run(main())
    assert sla_types(d, "s-4") == ["sla.warn", "sla.breach"]


def test_first_and_later_rounds_have_their_thresholds(daemon, backend, tmp_path):
    s = customers(tmp_path, [(0, frame("s-5", "你好")), (500, frame("s-5", "包邮吗"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "erin")) as ws:
            await customer_turn(ws, "s-5")
            await ws.send(frame("s-5", "亲,您好"))          # the first round: answered at once
            t1, f = await customer_turn(ws, "s-5")
            assert f["text"] == "包邮吗"
            await sla_frame(ws, "sla.warn", t1, REPLY * WARN_AT, "s-5", False, REPLY)
            await sla_frame(ws, "sla.breach", t1, REPLY, "s-5", False, REPLY)
            await ws.send(frame("s-5", "亲,全国包邮"))
            await silence(ws, 0.5)
    run(main())
    assert [(a["type"], a["first"]) for a in alerts(d, "s-5")] == \
        [("sla.warn", False), ("sla.breach", False)]


def test_robot_reply_leaves_the_round_open(daemon, backend, tmp_path):
    s = customers(tmp_path, [(0, frame("s-6", "在吗")), (20, frame("s-7", "在吗"))])
    b, d = start(daemon, backend, args=("-o", "protocol.robot=/auto"))

    async def main():
        async with agent(d, path(s, "fay")) as ws:
            t6, _ = await customer_turn(ws, "s-6")
            await customer_turn(ws, "s-7")
            await ws.send(frame("s-6", "亲,欢迎光临,客服马上为您服务~", auto=True))
            await ws.send(frame("s-7", "亲,在的", auto=False))      # a person: closes s-7
            await sla_frame(ws, "sla.warn", t6, FIRST * WARN_AT, "s-6", True, FIRST)
            await sla_frame(ws, "sla.breach", t6, FIRST, "s-6", True, FIRST)
            await ws.send(frame("s-6", "亲,在的,请问有什么可以帮您"))
            await silence(ws, QUIET_AFTER - FIRST / 1000)
    run(main())
    assert sla_types(d, "s-6") == ["sla.warn", "sla.breach"]
    assert sla_types(d, "s-7") == []
    # the robot's reply was relayed like any other
    assert b.wait(lambda e: e["ev"] == "msg" and "欢迎光临" in e["head"])


def test_a_reply_that_says_nothing_leaves_the_round_open(daemon, backend, tmp_path):
    """Found by review: an agent's "" or "   " closed the round, so an agent
    could stop every customer's clock by sending nothing. It answers
    nothing: the warning and the breach come as if it had not been sent
    (it is still relayed: what the backend does with it is its business)."""
    s = customers(tmp_path, [(0, frame("s-8", "在吗")), (20, frame("s-9", "在吗"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "gil")) as ws:
            t8, _ = await customer_turn(ws, "s-8")
            t9, _ = await customer_turn(ws, "s-9")
            await ws.send(frame("s-8", ""))
            await ws.send(frame("s-9", " \u3000 "))
            await sla_frame(ws, "sla.warn", t8, FIRST * WARN_AT, "s-8", True, FIRST)
            await sla_frame(ws, "sla.warn", t9, FIRST * WARN_AT, "s-9", True, FIRST)
            await sla_frame(ws, "sla.breach", t8, FIRST, "s-8", True, FIRST)
            await sla_frame(ws, "sla.breach", t9, FIRST, "s-9", True, FIRST)
            await ws.send(frame("s-8", "亲,在的"))
            await ws.send(frame("s-9", "亲,在的"))
            await silence(ws, QUIET_AFTER - FIRST / 1000)
    run(main())
    assert sla_types(d, "s-8") == ["sla.warn", "sla.breach"]
    assert sla_types(d, "s-9") == ["sla.warn", "sla.breach"]
    assert b.wait(lambda e: e["ev"] == "msg" and "s-9" in e["head"])


@pytest.mark.parametrize("with_redis", [False, True], ids=["memory", "redis"])
def test_robot_greeting_from_the_backend_opens_no_round(daemon, backend, redis_server,
                                                        tmp_path, with_redis):
    """The platform's robot greets the buyer (a backend frame marked by
    protocol.robot): no buyer waits yet, so no round opens; the buyer's own
    message 700 ms later opens the first round, timed from it."""
    s = customers(tmp_path, [(0, frame("s-r", "亲,欢迎光临本店,有什么可以帮您?", auto=True)),
                             (700, frame("s-r", "在吗,这个有货吗"))])
    cfg = {"redis": redis_server().url()} if with_redis else {}
    b, d = start(daemon, backend, args=("-o", "protocol.robot=/auto"), **cfg)

    async def main():
        async with agent(d, path(s, "ivy")) as ws:
            await customer_turn(ws, "s-r")              # the greeting, relayed
            t, _ = await customer_turn(ws, "s-r")       # the buyer
            await sla_frame(ws, "sla.warn", t, FIRST * WARN_AT, "s-r", True, FIRST)
            await ws.send(frame("s-r", "亲,有货的"))
            await silence(ws, QUIET_AFTER)
    run(main())
    assert sla_types(d, "s-r") == ["sla.warn"]
    assert d.stop() == 0
    f = figures(d, "ivy")
    assert (f["rounds"], f["answered"], f["breaches"], f["escalations"]) == (1, 1, 0, 0), f
    assert FIRST * WARN_AT <= f["mean_ms"] < FIRST, f


def test_end_frame_ends_the_round(daemon, backend, tmp_path):
    # s-8 ends from the backend side, s-9 from the agent's
    s = customers(tmp_path, [(0, frame("s-8", "不买了")), (100, end("s-8")),
                             (150, frame("s-9", "算了"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "gus")) as ws:
            await customer_turn(ws, "s-8")
            _, f = await next_frame(ws)
            assert f == {"type": "end", "conversation": "s-8"}
            await customer_turn(ws, "s-9")
            await ws.send(end("s-9"))
            await silence(ws, QUIET_AFTER)
    run(main())
    assert sla_types(d, "s-8") == [] and sla_types(d, "s-9") == []
    assert d.stop() == 0
    f = figures(d, "gus")           # both ended with their round open: unanswered
    assert (f["rounds"], f["answered"], f["breaches"]) == (2, 0, 0)
    assert f["mean_ms"] == 600000


def test_disconnect_leaves_the_round_open(daemon, backend, tmp_path):
    """The agent's tab closes while the customer waits: the customer still
    waits, so the round stays open and its events still reach the
    supervisors; nothing is charged as unanswered (issue 12)."""
    s = customers(tmp_path, [(0, frame("s-10", "在吗"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "hana")) as ws:
            await customer_turn(ws, "s-10")
        await asyncio.sleep(QUIET_AFTER)
    run(main())
    assert sla_types(d, "s-10") == ["sla.warn", "sla.breach", "sla.escalate"]
    assert d.stop() == 0
    f = figures(d, "hana")
    assert (f["rounds"], f["answered"], f["breaches"], f["escalations"]) == (0, 0, 1, 1)
    st = d.stats()
    assert st["sla_warnings"] == 1 and st["sla_breaches"] == 1


def test_blocked_reply_does_not_close_the_round(daemon, backend, tmp_path):
    s = customers(tmp_path, [(0, frame("s-11", "能便宜点吗"))])
    b, d = start(daemon, backend, rules=LIVE)

    async def main():
        async with agent(d, path(s, "ivan")) as ws:
            t0, _ = await customer_turn(ws, "s-11")
            await ws.send(frame("s-11", "加我微信,给你便宜"))
            _, f = await next_frame(ws)
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
            assert f["alert"]["type"] == "rule.hit"
            # the customer never saw it: the round is still open
            await sla_frame(ws, "sla.warn", t0, FIRST * WARN_AT, "s-11", True, FIRST)
            await sla_frame(ws, "sla.breach", t0, FIRST, "s-11", True, FIRST)
            await ws.send(frame("s-11", "亲,店铺首页可以领优惠券哦"))
            await silence(ws, QUIET_AFTER - FIRST / 1000)
    run(main())
    assert sla_types(d, "s-11") == ["sla.warn", "sla.breach"]
    heads = [e["head"] for e in b.select(lambda e: e["ev"] == "msg")]
    assert not any("微信" in h for h in heads) and any("优惠券" in h for h in heads)


def test_figures_at_exit(daemon, backend, tmp_path):
    """One agent, three conversations: answered at once, answered after its
    breach, never answered (escalated; the shutdown leaves its round open
    for whoever serves the conversation next, and charges nothing)."""
    s = customers(tmp_path, [(0, frame("f-1", "在吗")), (50, frame("f-2", "在吗")),
                             (100, frame("f-3", "在吗"))])
    b, d = start(daemon, backend)

    async def main():
        async with agent(d, path(s, "judy")) as ws:
            await customer_turn(ws, "f-1")
            await ws.send(frame("f-1", "亲,在的"))
            t2, _ = await customer_turn(ws, "f-2")
            t3, _ = await customer_turn(ws, "f-3")
            await sla_frame(ws, "sla.warn", t2, FIRST * WARN_AT, "f-2", True, FIRST)
            await sla_frame(ws, "sla.warn", t3, FIRST * WARN_AT, "f-3", True, FIRST)
            await sla_frame(ws, "sla.breach", t2, FIRST, "f-2", True, FIRST)
            await ws.send(frame("f-2", "亲,不好意思久等了"))
            await sla_frame(ws, "sla.breach", t3, FIRST, "f-3", True, FIRST)
            await silence(ws, QUIET_AFTER - FIRST / 1000)
    run(main())
    assert sla_types(d, "f-3") == ["sla.warn", "sla.breach", "sla.escalate"]
    assert d.stop() == 0
    f = figures(d, "judy")
    assert (f["rounds"], f["answered"], f["breaches"], f["escalations"]) == (2, 2, 2, 1)
    # f-1 ~0 s, f-2 ~0.6 s: the mean is about 0.3 s
    assert 300 <= f["mean_ms"] <= 300 + 500 * SLOW, f
    assert f["first_mean_ms"] == f["mean_ms"] and f["p90_ms"] == 1000
    assert f["rate"] == 1.0
    st = d.stats()
    assert (st["sla_warnings"], st["sla_breaches"], st["sla_escalations"]) == (2, 2, 1)
