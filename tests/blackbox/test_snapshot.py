"""chatmond's snapshots for dashboards in a real Redis (docs/dashboard.md):
who is waiting now, under chatmon:waiting:INSTANCE with a time to live of
three intervals, and each agent's sums of the day under
chatmon:agents:DAY:INSTANCE; what a reply changes, what a stopped
instance leaves behind, redis.prefix, redis.snapshot 0, and a Redis that
comes up late."""

import asyncio
import json
import re
import time

from conftest import SLOW, agent, recv, run, wait_for

SLA = "sla:\n  first_response: 5s\n  reply: 10s\n  timezone: \"+08:00\"\n"
# the waiting document is written when who waits is not in Redis already
# (redis.takeover 0: test_convstate.py and test_dashboard.py read it there)
FAST = ["-o", "redis.snapshot=200ms", "-o", "redis.takeover=0"]


def customers(tmp_path, steps):
    path = tmp_path / "script.json"
    path.write_text(json.dumps([{"at": at, "text": json.dumps(
        {"type": "message", "conversation": conv, "text": text}, ensure_ascii=False)}
        for at, conv, text in steps], ensure_ascii=False), encoding="utf-8")
    return path


def keys(r, pattern):
    return sorted(r.scan_iter(match=pattern))


def doc(r, key):
    v = r.get(key)
    return json.loads(v) if v is not None else None


def waiting_key(r, prefix=""):
    ks = wait_for(lambda: keys(r, f"{prefix}chatmon:waiting:*"), 5 * SLOW,
                  "a waiting document")
    assert len(ks) == 1, ks
    assert re.fullmatch(re.escape(prefix) + r"chatmon:waiting:[0-9a-f]{8}", ks[0]), ks
    return ks[0]


def today():
    return time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))


def test_waiting_and_agents(daemon, backend, redis_server, tmp_path):
    r = redis_server()
    c = r.client()
    b = backend(script="customer.py")
    script = customers(tmp_path, [(0, "s-1", "在吗"), (0, "s-2", "请问发货了吗")])
    d = daemon(b.port, extra=SLA, redis=r.url(), args=FAST)

    async def main():
        async with agent(d, f"/script?file={script}&agent=alice") as ws:
            for _ in range(2):
                await recv(ws)
            key = waiting_key(c)
            instance = key.rsplit(":", 1)[1]
            w = wait_for(lambda: (doc(c, key) or {}).get("total") == 2 and doc(c, key),
                         5 * SLOW, "both customers waiting")
            assert w["v"] == 1 and w["instance"] == instance and isinstance(w["pid"], int), w
            assert {x["conversation"] for x in w["rounds"]} == {"s-1", "s-2"}, w
            for x in w["rounds"]:
                assert x["agent"] == "alice" and x["threshold_ms"] == 5000, x
                assert x["first"] is True and x["state"] == "open", x
                assert 0 <= x["waited_ms"] < 5000, x
            assert 0 < c.pttl(key) <= 1000, c.pttl(key)    # three intervals, at least 1 s
            # the reply closes s-1: it leaves the list, and counts for the day
            await ws.send(json.dumps({"type": "message", "conversation": "s-1",
                                      "text": "亲,在的"}, ensure_ascii=False))
            w = wait_for(lambda: (doc(c, key) or {}).get("total") == 1 and doc(c, key),
                         5 * SLOW, "one customer waiting")
            assert [x["conversation"] for x in w["rounds"]] == ["s-2"], w
            akey = f"chatmon:agents:{today()}:{instance}"
            a = wait_for(lambda: doc(c, akey), 5 * SLOW, "the agents document")
            assert a["day"] == today() and a["instance"] == instance, a
            alice = a["agents"]["alice"]
            assert alice["rounds"] == 1 and alice["answered"] == 1, alice
            assert alice["first_rounds"] == 1 and alice["breaches"] == 0, alice
            assert 0 < alice["sum_ms"] < 5000, alice
            assert sum(n for _, n in alice["hist"]) == 1, alice
            hour = time.gmtime(time.time() + 8 * 3600).tm_hour
            assert [h for h, _, _ in alice["hours"]] in ([hour], [(hour - 1) % 24]), alice
            assert 172000 < c.ttl(akey) <= 172800
            return key, akey
    key, akey = run(main())
    # a stopped instance: its waiting customers go with the TTL, its day stays
    assert d.stop() == 0
    wait_for(lambda: not c.exists(key), 3 * SLOW, "the waiting document expired")
    assert c.exists(akey)


def test_the_last_figures_go_at_a_stop(daemon, backend, redis_server, tmp_path):
    """Found by review: the rounds closed since the last snapshot were never
    written at a stop (a deploy lost up to an interval of the day's
    figures). The interval here is a minute: only the last one, at the
    stop, can hold the second round."""
    r = redis_server()
    c = r.client()
    b = backend(script="customer.py")
    script = customers(tmp_path, [(0, "f-1", "在吗"), (0, "f-2", "请问发货了吗")])
    d = daemon(b.port, extra=SLA, redis=r.url(),
               args=["-o", "redis.snapshot=60s", "-o", "redis.takeover=0"])

    async def main():
        async with agent(d, f"/script?file={script}&agent=amy") as ws:
            for _ in range(2):
                await recv(ws)
            key = waiting_key(c)            # the snapshot at connect: nothing answered
            for conv in ("f-1", "f-2"):
                await ws.send(json.dumps({"type": "message", "conversation": conv,
                                          "text": "亲,在的"}, ensure_ascii=False))
            await asyncio.sleep(0.3)
            return key.rsplit(":", 1)[1]
    instance = run(main())
    akey = f"chatmon:agents:{today()}:{instance}"
    assert (doc(c, akey) or {}).get("agents", {}).get("amy") is None, doc(c, akey)
    assert d.stop() == 0
    amy = doc(c, akey)["agents"]["amy"]
    assert amy["rounds"] == 2 and amy["answered"] == 2, amy


def test_prefix_and_off(daemon, backend, redis_server, tmp_path):
    r = redis_server()
    c = r.client()
    b = backend(script="customer.py")
    script = customers(tmp_path, [(0, "p-1", "在吗")])
    on = daemon(b.port, extra=SLA, redis=r.url(), args=FAST + ["-o", "redis.prefix=shop1:"],
                name="on")
    off = daemon(b.port, extra=SLA, redis=r.url(),
                 args=["-o", "redis.snapshot=0", "-o", "redis.takeover=0",
                       "-o", "history.turns=0"], name="off")

    async def main():
        async with agent(on, f"/script?file={script}&agent=bob") as ws1, \
                agent(off, f"/script?file={script}&agent=carol") as ws2:
            await recv(ws1)
            await recv(ws2)
            key = waiting_key(c, "shop1:")
            assert wait_for(lambda: (doc(c, key) or {}).get("total") == 1, 5 * SLOW,
                            "bob's customer")
            await asyncio.sleep(0.6)
            # only the prefixed instance writes anything
            assert keys(c, "chatmon:*") == [], keys(c, "*")
            assert [k for k in keys(c, "*") if c.type(k) == "string" and
                    "carol" in (c.get(k) or "")] == []
    run(main())


def test_redis_up_late(daemon, backend, redis_server, tmp_path):
    r = redis_server(start=False)
    b = backend(script="customer.py")
    script = customers(tmp_path, [(0, "l-1", "在吗")])
    d = daemon(b.port, extra=SLA, redis=r.url(), args=FAST)

    async def main():
        async with agent(d, f"/script?file={script}&agent=dave") as ws:
            await recv(ws)
            await asyncio.sleep(0.5)
            r.start()
            c = r.client()
            key = waiting_key(c)
            w = wait_for(lambda: (doc(c, key) or {}).get("total") == 1 and doc(c, key),
                         15 * SLOW, "the snapshot once Redis is up")
            assert w["rounds"][0]["conversation"] == "l-1", w
            assert w["rounds"][0]["waited_ms"] >= 400, w
    run(main())
    assert "rconn_connect: snapshot redis" in d.log() or \
        "rconn_on_connect: snapshot redis" in d.log(), d.log()[-2000:]
