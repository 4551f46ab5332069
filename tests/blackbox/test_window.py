"""The window of a speaker's last turns in the live relay (docs/rules.md,
"Across turns"): which turns enter it. A customer message shown on two tabs
of one agent is one turn (and one history item), an agent's window is that
agent's alone, a robot's turns are nobody's, conversation "" has one like
any other, it ages on the monotonic clock, and a reload keeps it."""

import asyncio
import json
import os
import shutil
import signal
import subprocess

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


CLOCKSHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
/* CLOCK_REALTIME moved by the milliseconds in $SHIM_FILE, read at each call */
int
clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	char buf[32];
	long long off = 0, ns;
	const char *f;
	ssize_t n;
	int fd, rc;

	if (real == NULL)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	rc = real(id, ts);
	if (rc != 0 || id != CLOCK_REALTIME || (f = getenv("SHIM_FILE")) == NULL ||
	    (fd = open(f, O_RDONLY)) < 0)
		return rc;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = 0;
		off = atoll(buf);
	}
	ns = ts->tv_sec * 1000000000LL + ts->tv_nsec + off * 1000000LL;
	ts->tv_sec = ns / 1000000000LL;
	ts->tv_nsec = ns % 1000000000LL;
	return rc;
}
"""


def test_window_ages_on_the_monotonic_clock(daemon, backend, tmp_path):
    """window.time 2s against steps of the wall clock (NTP, an operator):
    10 minutes back between 加我 and `v abc12345` 2.5 s apart keeps nothing
    past the window; 10 minutes forward between two turns at once empties
    nothing."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no cc for the clock shim")
    src = tmp_path / "clockshim.c"
    src.write_text(CLOCKSHIM)
    shim = tmp_path / "clockshim.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(shim), str(src), "-ldl"], check=True)
    off = tmp_path / "offset"
    off.write_text("0")
    b = backend()
    # the SLA's deadlines are far: the steps raise none of its warnings
    d = daemon(b.port, rules=WINDOW, extra="window: {turns: 3, time: 2s}\n"
               "sla: {first_response: 1h, reply: 1h, escalate: 2h}\n",
               env={"LD_PRELOAD": str(shim), "SHIM_FILE": str(off),
                    # the sanitizer build's runtime must otherwise come first
                    "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
                    ":verify_asan_link_order=0"})

    async def split(ws, conv, step, wait):
        await ws.send(msg(conv, "加我"))
        assert json.loads(await recv(ws))["text"] == "加我"
        off.write_text(str(int(off.read_text()) + step))
        await asyncio.sleep(wait)
        await ws.send(msg(conv, "v abc12345"))
        return json.loads(await recv(ws))

    async def main():
        async with agent(d, "/echo?agent=alice") as ws:
            f = await split(ws, "c-back", -600000, 2.5)
            assert f["type"] == "message" and f["text"] == "v abc12345", f
            f = await split(ws, "c-forward", 600000, 0)
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
    run(main())


def test_reload_keeps_the_kept_turns(daemon, backend):
    """加我, then a SIGHUP that changes window.turns and window.bytes (3 -> 4,
    512 -> 256), then `v abc12345`: the reload forgot nothing the new
    limits keep, and the split is blocked as without it."""
    b = backend()
    d = daemon(b.port, rules=WINDOW, extra="window: {turns: 3, bytes: 512}\n")

    async def main():
        async with agent(d, "/echo?agent=alice") as ws:
            await ws.send(msg("c-r", "加我"))
            assert json.loads(await recv(ws))["text"] == "加我"
            with open(d.conf, encoding="utf-8") as f:
                text = f.read()
            d.write_config(text.replace("window: {turns: 3, bytes: 512}",
                                        "window: {turns: 4, bytes: 256}"))
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            d.wait_log(r"relay_apply: \d+ rules from", start=mark)
            await ws.send(msg("c-r", "v abc12345"))
            f = json.loads(await recv(ws))
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
            assert f["alert"]["text"] == "加我\nv abc12345", f
    run(main())


def test_a_blocked_turn_of_another_agent_gives_the_window_back(daemon, backend):
    """Found by review: alice says 加我 in c-b; bob's 加我微信 abc12345 there is
    blocked (the customer never read it); alice's `v abc12345` then completes
    her own split and is blocked. bob's blocked turn had wiped alice's 加我
    (a new speaker starts afresh) though it was never said."""
    b = backend()
    d = daemon(b.port, rules=WINDOW)

    async def main():
        async with agent(d, "/echo?agent=alice") as alice, \
                agent(d, "/echo?agent=bob") as bob:
            await alice.send(msg("c-b", "加我"))
            assert json.loads(await recv(alice))["text"] == "加我"
            await bob.send(msg("c-b", "加我微信abc12345"))
            f = json.loads(await recv(bob))
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
            await alice.send(msg("c-b", "v abc12345"))
            f = json.loads(await recv(alice))
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
            assert f["alert"]["text"] == "加我\nv abc12345", f
    run(main())


def test_a_conversation_that_comes_back_after_its_end_starts_afresh(daemon, backend):
    """Found by review: the customer's 不退款, the chat ended (an end frame),
    and the same conversation id came back with 不退款 / 我就差评 within 30 s:
    its 不退款 was taken for a copy of the ended conversation's and took no
    window slot, so the threat was missed. After an end it is new."""
    b = backend()
    d = daemon(upstream=f"ws://127.0.0.1:{b.port}/tabs?agent=alice", rules=WINDOW,
               extra="window: {turns: 3, time: 60s}\n")

    async def main():
        async with agent(d, "/x?agent=alice") as ws:
            b.opened("agent=alice")
            await ws.send(show(msg("c-e", "不退款")))
            assert json.loads(await recv(ws))["text"] == "不退款"
            await ws.send(show(json.dumps({"type": "end", "conversation": "c-e"})))
            assert json.loads(await recv(ws))["type"] == "end"
            for text in ("不退款", "我就差评"):
                await ws.send(show(msg("c-e", text)))
                assert json.loads(await recv(ws))["text"] == text
            await drain(ws)
    run(main())
    hits = [a for a in rule_alerts(d) if a["type"] == "rule.hit"]
    assert [(a.get("turns", 1), a["text"]) for a in hits] == [(2, "不退款\n我就差评")], hits


def test_an_idle_end_forgets_the_window(daemon, backend):
    """Found by review: with sla.idle (1 s) shorter than window.time (60 s),
    a conversation that ended idle kept its window: alice's `v abc12345`
    after the idle end completed the ended conversation's 加我. It is a new
    conversation: nothing of the old one is kept (docs/rules.md)."""
    b = backend()
    d = daemon(b.port, rules=WINDOW, extra="window: {turns: 3, time: 60s}\n",
               args=["-o", "sla.idle=1s"])

    async def main():
        async with agent(d, "/echo?agent=alice") as ws:
            await ws.send(msg("c-i", "加我"))
            assert json.loads(await recv(ws))["text"] == "加我"
            await asyncio.sleep(1.6)
            await ws.send(msg("c-i", "v abc12345"))
            f = json.loads(await recv(ws))
            assert f.get("type") == "message" and f["text"] == "v abc12345", f
    run(main())
    assert [a for a in rule_alerts(d) if a["type"] == "rule.hit"] == []
