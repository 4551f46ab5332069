"""Rules in the live relay: warn and block reach the agent as chatmon.warning
frames, a blocked message never reaches the backend, customers are flagged,
and SIGHUP swaps the rule set (or keeps the old one) with agents connected."""

import asyncio
import json
import os
import shutil
import signal
import time

from conftest import DEFAULT_RULES, MINIMAL_RULES, agent, recv, replay_hits, run

LIVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules_live")


def turn(text, conv="c-1"):
    return json.dumps({"type": "message", "conversation": conv, "text": text},
                      ensure_ascii=False)


async def warning(ws):
    """The next frame, which must be a chatmon.warning."""
    f = json.loads(await recv(ws))
    assert f["type"] == "chatmon.warning", f
    return f


def test_block_and_warn(daemon, backend):
    b = backend()
    d = daemon(b.port, rules=LIVE)

    async def main():
        async with agent(d, "/echo?t=rules&agent=alice") as ws:
            conn = b.opened("t=rules")["conn"]
            # block: told at once, never forwarded
            await ws.send(turn("好的,加 我 薇 信吧"))
            w = await warning(ws)
            assert w["blocked"] is True and w["conversation"] == "c-1"
            a = w["alert"]
            assert a["type"] == "rule.hit" and a["v"] == 2
            assert a["rule"] == "offplatform.test_contact"
            assert a["category"] == "offplatform" and a["severity"] == "critical"
            assert a["action"] == "block" and a["agent"] == "alice" and a["role"] == "agent"
            assert a["text"] == "好的,加 我 薇 信吧"
            assert a["match"] == {"start": 3, "end": 10} and a["matched"] == "加 我 薇 信"
            assert a["message"] == "亲,平台规定只能在旺旺上沟通哦。"
            assert a["id"] and a["ts"].endswith("Z")
            assert a["hits"] == [{k: a[k] for k in ("rule", "category", "severity", "action",
                                                    "match", "matched", "message")}]
            # warn: told, and the message goes on
            await ws.send(turn("亲,这款没货了"))
            w = await warning(ws)
            assert w["blocked"] is False and w["alert"]["rule"] == "stock.test_none"
            assert json.loads(await recv(ws))["text"] == "亲,这款没货了"
            # flag: nothing for the agent, the message goes on
            await ws.send(turn("我不知道"))
            assert json.loads(await recv(ws))["text"] == "我不知道"
            # a clean message after all that
            await ws.send(turn("亲,在的"))
            assert json.loads(await recv(ws))["text"] == "亲,在的"
            msgs = b.messages(conn, 3)
            assert [m["head"] for m in msgs][:3] == [turn("亲,这款没货了"), turn("我不知道"),
                                                   turn("亲,在的")]
            await asyncio.sleep(0.2)
            assert len(b.messages(conn)) == 3       # the blocked one never arrived
    run(main())
    log = d.log()
    alerts = [json.loads(l.split("alert: ", 1)[1]) for l in log.splitlines()
              if ": debug: alert: " in l]
    assert [x["rule"] for x in alerts] == ["offplatform.test_contact", "stock.test_none",
                                           "etiquette.test_unsure"]
    assert len({x["id"] for x in alerts}) == 3 and [x["id"] for x in alerts] == \
        sorted(x["id"] for x in alerts)
    assert d.stop() == 0
    st = d.stats()
    assert st["rule_hits"] == 3 and st["rule_blocks"] == 1 and st["rule_warnings"] == 2
    assert st["rule_alerts"] == 3


def test_two_rules_one_turn_one_alert(daemon, backend, redis_server):
    """A reply that breaks a warn and a flag rule is one event: one alert in
    Redis with both rules in hits (the warning on top), one warning frame,
    one rule alert and two rule hits in the metrics; a block over a flag is
    one blocked warning."""
    b = backend()
    r = redis_server()
    d = daemon(b.port, rules=LIVE, redis=r.url())

    async def main():
        async with agent(d, "/echo?t=two&agent=alice") as ws:
            await ws.send(turn("我不知道,应该没货了", "c-2"))
            w = await warning(ws)
            assert w["blocked"] is False and w["conversation"] == "c-2"
            a = w["alert"]
            assert a["v"] == 2 and a["rule"] == "stock.test_none" and a["action"] == "warn"
            assert [h["rule"] for h in a["hits"]] == ["stock.test_none", "etiquette.test_unsure"]
            assert a["hits"][1] == {"rule": "etiquette.test_unsure", "category": "etiquette",
                                    "severity": "info", "action": "flag",
                                    "match": {"start": 1, "end": 4}, "matched": "不知道",
                                    "message": ""}
            # the message itself comes next: no second warning in between
            assert json.loads(await recv(ws))["text"] == "我不知道,应该没货了"
            await ws.send(turn("不知道,加我微信吧", "c-2"))
            w = await warning(ws)
            assert w["blocked"] is True and w["alert"]["action"] == "block"
            assert [h["action"] for h in w["alert"]["hits"]] == ["block", "flag"]
            await ws.send(turn("亲,在的", "c-2"))
            assert json.loads(await recv(ws))["text"] == "亲,在的"
    run(main())
    assert d.stop() == 0
    st = d.stats()
    assert st["rule_alerts"] == 2 and st["rule_hits"] == 4, st
    assert st["rule_warnings"] == 2 and st["rule_blocks"] == 1, st
    assert st["alerts_total"] == 2, st
    alerts = [json.loads(f["alert"]) for _, f in r.client().xrange("chatmon:alerts:log")]
    assert [(a["rule"], len(a["hits"])) for a in alerts] == [
        ("stock.test_none", 2), ("offplatform.test_contact", 2)], alerts


def test_customer_side_warns_never_blocks(daemon, backend, tmp_path):
    script = tmp_path / "say.json"
    script.write_text(json.dumps([{"text": turn("再不发货我就投诉你们", "c-9")}],
                                 ensure_ascii=False))
    b = backend()
    d = daemon(b.port, rules=LIVE)

    async def main():
        async with agent(d, f"/say?script={script}&then=echo&agent=bob") as ws:
            frames = [json.loads(await recv(ws)), json.loads(await recv(ws))]
            kinds = sorted(f["type"] for f in frames)
            assert kinds == ["chatmon.warning", "message"], frames
            w = next(f for f in frames if f["type"] == "chatmon.warning")
            assert w["blocked"] is False and w["conversation"] == "c-9"
            assert w["alert"]["role"] == "customer" and w["alert"]["category"] == "complaint_risk"
            # the customer's message itself reached the agent untouched
            m = next(f for f in frames if f["type"] == "message")
            assert m["text"] == "再不发货我就投诉你们"
    run(main())


def test_default_pack_blocks_offplatform(daemon, backend):
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES)

    async def main():
        async with agent(d, "/echo?t=pack&agent=carol") as ws:
            await ws.send(turn("亲,加我薇信 abc123 发你优惠券"))
            w = await warning(ws)       # one frame for the turn, however many rules
            assert w["blocked"] is True and w["alert"]["category"] == "offplatform"
            assert w["alert"]["hits"][0]["rule"] == w["alert"]["rule"]
            await ws.send(turn("亲,您的订单号是1234567890123,已经发货了哦"))
            f = json.loads(await recv(ws))
            assert f["type"] == "message", f        # an order number is not a phone number
            assert "订单号" in f["text"]
    run(main())


def test_a_megabyte_of_occurrences_does_not_stall_another_chat(daemon, backend):
    """Found by review: a rule walking the occurrences of its words in a
    turn searched each of its branches again from every one: the work grew
    with the square of the text, and one turn of a megabyte of
    开票是免费的,不需要补税点 held the loop, every chat, for about a minute.
    Another agent's turn sent meanwhile now comes back within seconds."""
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES,
               limits={"max_message": "2MiB", "queue_bytes": "8MiB"})
    unit = "开票是免费的,不需要补税点"
    big = turn(unit * (1000000 // len(unit.encode())), conv="big")

    async def main():
        async with agent(d, "/echo?agent=a1") as wa, agent(d, "/echo?agent=b1") as wb:
            await wa.send(big)
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            await wb.send(turn("亲,在的", conv="small"))
            f = json.loads(await recv(wb, timeout=120))
            waited = time.monotonic() - t0
            assert f["type"] == "message" and f["text"] == "亲,在的", f
            assert waited < 10, f"another chat waited {waited:.1f} s"
            f = json.loads(await recv(wa, timeout=120))
            assert f["conversation"] == "big", f
    run(main(), timeout=240)


def test_frames_the_backend_reads_are_read(daemon, backend):
    """JSON that jansson refused but JSON.parse or Python's json takes (a
    huge number, an escaped lone surrogate, an escaped NUL in a key, NaN,
    Infinity) and a conversation written as a number with a point no longer
    slip a blocked phrase through unread; JSON that nobody takes passes as
    it is."""
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES)
    frames = [
        '{"type":"message","conversation":"c-1","pad":1e400,"text":"加我微信 abc12345"}',
        '{"type":"message","conversation":"c-1","n":18446744073709551616,'
        '"text":"加我微信 abc12345"}',
        '{"type":"message","conversation":"c-1","text":"加我微信 abc12345 \\ud800"}',
        '{"type":"message","conversation":"c-1","k\\u0000":1,"text":"加我微信 abc12345"}',
        # Python's json reads NaN and the infinities as numbers
        '{"type":"message","conversation":"c-1","pad":NaN,"text":"加我微信 abc12345"}',
        '{"type":"message","conversation":"c-1","pad":[Infinity,-Infinity],'
        '"text":"加我微信 abc12345"}',
        # a conversation any reader takes as a number
        '{"type":"message","conversation":1.0,"text":"加我微信 abc12345"}',
        '{"type":"message","conversation":15e-1,"text":"加我微信 abc12345"}',
    ]

    async def main():
        async with agent(d, "/echo?agent=carol") as ws:
            for i, f in enumerate(frames):
                await ws.send(f)
                mark = json.dumps({"type": "ping", "n": i})
                await ws.send(mark)              # not a turn: comes back after the warnings
                got = []
                while (m := await recv(ws)) != mark:
                    got.append(json.loads(m))
                assert len(got) == 1 and all(w["type"] == "chatmon.warning" and
                                             w["blocked"] is True for w in got), (f, got)
                assert {w["alert"]["category"] for w in got} == {"offplatform"}, got
            bad = '{"type":"message","conversation":"c-1","text":"加我微信 abc12345",}'
            await ws.send(bad)
            assert await recv(ws) == bad            # not JSON to anyone: relayed untouched
    run(main())


def test_binary_chat_messages_are_read(daemon, backend):
    """A binary message a backend's JSON reader takes as a chat turn
    (JSON.parse of a Buffer, Python's json.loads of bytes: UTF-8, with a BOM
    or bytes that are not UTF-8, or UTF-16/32) is read as one: a blocked
    phrase in it stops there; a clean one, and a binary message that is no
    JSON object, go on as binary, unchanged. protocol.binary: pass relays
    every binary message unread, as before."""
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES)
    p = daemon(b.port, rules=DEFAULT_RULES, args=["-o", "protocol.binary=pass"])
    bad = turn("加我微信 abc12345")
    blocked = [bad.encode(), b"\xef\xbb\xbf" + bad.encode(), bad.encode().replace(b"abc12345", b"abc12345\xff"),
               bad.encode("utf-16-le"), b"\xfe\xff" + bad.encode("utf-16-be"),
               bad.encode("utf-32")]
    clean = [turn("亲,已经为您安排发货了").encode(), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
             b"[1,2,3]"]

    async def main(d, inspect):
        async with agent(d, "/echo?agent=carol") as ws:
            for i, m in enumerate(blocked + clean):
                await ws.send(m)
                mark = json.dumps({"type": "ping", "n": i})
                await ws.send(mark)              # not a turn: comes back after the rest
                got = []
                while (x := await recv(ws)) != mark:
                    got.append(x)
                if inspect and m in blocked:
                    assert len(got) == 1 and isinstance(got[0], str), (m, got)
                    w = json.loads(got[0])
                    assert w["type"] == "chatmon.warning" and w["blocked"] is True, (m, w)
                    assert w["alert"]["category"] == "offplatform", w
                else:
                    assert got == [m], (m, got)     # as binary, byte for byte
    run(main(d, True))
    run(main(p, False))


def test_sighup_swaps_rules_or_keeps_them(daemon, backend, tmp_path):
    rules = tmp_path / "rules.d"
    shutil.copytree(LIVE, rules)
    b = backend()
    d = daemon(b.port, rules=str(rules))

    async def main():
        async with agent(d, "/echo?t=hup&agent=dave") as ws:
            await ws.send(turn("我们这边缺货"))
            assert (await warning(ws))["alert"]["rule"] == "stock.test_none"
            assert json.loads(await recv(ws))["type"] == "message"

            # a bad set: refused with file:line, the old rules stay, the agent stays
            (rules / "zz-bad.yaml").write_text(
                "- rule: bad.one\n  category: abuse\n  severity: warn\n  action: flag\n"
                "  pattern: '(unclosed'\n  examples:\n    match: [x]\n")
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            d.wait_log(r"zz-bad\.yaml:5: bad pattern at offset \d+", start=mark)
            d.wait_log(r"reload rejected", start=mark)
            await ws.send(turn("还是缺货"))
            assert (await warning(ws))["alert"]["rule"] == "stock.test_none"
            assert json.loads(await recv(ws))["type"] == "message"

            # a good set: swapped whole; the old stock rule is gone, a new one works
            (rules / "zz-bad.yaml").unlink()
            (rules / "live.yaml").write_text(
                "- rule: abuse.test_new\n  category: abuse\n  severity: critical\n"
                "  action: block\n  pattern: '爱买不买'\n  message: 亲,请文明用语。\n"
                "  examples:\n    match: [爱买不买]\n")
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            d.wait_log(r"relay_apply: 1 rules from", start=mark)
            await ws.send(turn("还是缺货"))
            assert json.loads(await recv(ws))["type"] == "message"     # no warning now
            await ws.send(turn("爱买不买"))
            w = await warning(ws)
            assert w["blocked"] is True and w["alert"]["rule"] == "abuse.test_new"
    run(main())


def test_check_reports_rule_errors(tmp_path):
    """chatmond -t checks the rules too: every error with file:line, exit 1."""
    import subprocess
    from conftest import CHATMOND, config_text, free_port
    rules = tmp_path / "rules.d"
    rules.mkdir()
    (rules / "a.yaml").write_text(
        "- rule: a.one\n  category: abuse\n  severity: loud\n  action: flag\n"
        "  pattern: 滚\n  examples:\n    match: [滚]\n"
        "- rule: a.two\n  category: abuse\n  severity: warn\n  action: flag\n"
        "  pattern: '${nolist}'\n  examples:\n    match: [x]\n", encoding="utf-8")
    conf = tmp_path / "c.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/", rules=str(rules)))
    r = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stderr
    assert f"{rules}/a.yaml:3: severity: 'loud' is not one of the allowed values" in r.stderr
    assert f"{rules}/a.yaml:12: unknown list or macro 'nolist'" in r.stderr


def test_a_pack_without_an_enabled_rule_is_refused(daemon, backend, tmp_path):
    """A pack of lists only, or of disabled rules only, passed -t and a
    reload, and then left chatmond unready for good (/readyz wants a rule):
    it is refused as any bad pack is, and a reload keeps the rules in use."""
    import subprocess
    from conftest import CHATMOND, config_text, free_port
    lists = "- list: apps\n  items: [微信, qq]\n"
    off = ("- rule: a.off\n  category: abuse\n  severity: warn\n  action: flag\n"
           "  enabled: false\n  pattern: 滚\n  examples:\n    match: [滚]\n")
    for what, text in (("lists", lists), ("disabled", off)):
        rules = tmp_path / what
        rules.mkdir()
        (rules / "a.yaml").write_text(text, encoding="utf-8")
        conf = tmp_path / f"{what}.yaml"
        conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/", rules=str(rules)))
        r = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1, (what, r.stderr)
        assert f"{rules}: no enabled rule" in r.stderr, (what, r.stderr)

    rules = tmp_path / "rules.d"
    shutil.copytree(LIVE, rules)
    b = backend()
    d = daemon(b.port, rules=str(rules))
    for f in rules.iterdir():
        f.unlink()
    (rules / "a.yaml").write_text(lists + off, encoding="utf-8")
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"no enabled rule", start=mark)
    d.wait_log(r"reload rejected", start=mark)

    async def main():
        async with agent(d, "/echo?t=none&agent=erin") as ws:
            await ws.send(turn("我们这边缺货"))
            assert (await warning(ws))["alert"]["rule"] == "stock.test_none"
    run(main())


WINDOW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules_window")


def test_violation_split_across_turns(daemon, backend):
    """加我 / v / abc12345 as three messages: the third completes the violation,
    is blocked and never reaches the backend; the alert holds the three turns.
    Another conversation's turns are not mixed in, and a conversation that
    ends forgets its turns."""
    b = backend()
    d = daemon(b.port, rules=WINDOW)

    async def main():
        async with agent(d, "/echo?t=split&agent=alice") as ws:
            conn = b.opened("t=split")["conn"]
            for text, conv in (("加我", "c-w"), ("v", "c-w"), ("abc12345", "c-other")):
                await ws.send(turn(text, conv))
                assert json.loads(await recv(ws))["text"] == text
            await ws.send(turn("abc12345", "c-w"))
            w = await warning(ws)
            assert w["blocked"] is True and w["conversation"] == "c-w", w
            a = w["alert"]
            assert a["rule"] == "offplatform.test_split" and a["turns"] == 3, a
            assert a["text"] == "加我\nv\nabc12345", a
            assert a["match"] == {"start": 0, "end": 13}, a
            await asyncio.sleep(0.2)
            assert [m["head"] for m in b.messages(conn)] == \
                [turn("加我", "c-w"), turn("v", "c-w"), turn("abc12345", "c-other")]
            # the end of a conversation forgets its turns
            await ws.send(json.dumps({"type": "end", "conversation": "c-w"}))
            await recv(ws)
            await ws.send(turn("v", "c-w"))
            assert json.loads(await recv(ws))["text"] == "v"
            await ws.send(turn("abc12345", "c-w"))
            assert json.loads(await recv(ws))["text"] == "abc12345"
    run(main())


def test_split_across_turns_in_replay(tmp_path):
    """chatmon replay finds the same split violation (the pipeline is one),
    and only within window.time."""
    import subprocess
    from conftest import CHATMON
    conf = tmp_path / "w.yaml"
    conf.write_text(f"rules: {WINDOW}\nwindow: {{turns: 3, time: 60s}}\n"
                    "sla: {first_response: 1h, reply: 1h, escalate: 2h}\n")
    lines = [
        ("2026-11-22T14:00:00Z", "c-1", "agent", "加我"),
        ("2026-11-22T14:00:02Z", "c-1", "customer", "好的"),
        ("2026-11-22T14:00:04Z", "c-1", "agent", "v"),
        ("2026-11-22T14:00:06Z", "c-1", "agent", "abc12345"),
        ("2026-11-22T14:10:00Z", "c-2", "agent", "加我"),
        ("2026-11-22T14:12:00Z", "c-2", "agent", "vxshop8888"),   # 2 minutes apart
        ("2026-11-22T14:20:00Z", "c-3", "customer", "不退款"),
        ("2026-11-22T14:20:05Z", "c-3", "customer", "我就差评"),
    ]
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps({"ts": ts, "conversation": c, "role": r,
                                       "agent": "alice", "text": t},
                                      ensure_ascii=False) + "\n"
                           for ts, c, r, t in lines))
    p = subprocess.run([CHATMON, "replay", "-c", str(conf), str(log)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    hits = [json.loads(l) for l in p.stdout.splitlines()]
    hits = [h for h in hits if h["type"] == "rule.hit"]
    assert [(h["conversation"], h["rule"], h["turns"], h["action"]) for h in hits] == [
        ("c-1", "offplatform.test_split", 3, "block"),
        ("c-3", "complaint_risk.test_threat", 2, "flag")], hits
    assert hits[0]["text"] == "加我\nv\nabc12345" and hits[0]["matched"] == "加我\nv\nabc12345"
    assert hits[1]["text"] == "不退款\n我就差评"


def test_blocked_turn_leaves_the_window(daemon, backend):
    """A blocked message never reached the customer, so it is no part of the
    agent's earlier turns: sending it again (or another id) after 加我
    completes the violation again and is blocked again (found by review:
    the resend passed as the tail of a match already reported)."""
    b = backend()
    d = daemon(b.port, rules=WINDOW)

    async def main():
        async with agent(d, "/echo?t=resend&agent=alice") as ws:
            conn = b.opened("t=resend")["conn"]
            await ws.send(turn("加我", "c-r"))
            assert json.loads(await recv(ws))["text"] == "加我"
            for text in ("v abc12345", "v abc12345", "vx zzz99999"):
                await ws.send(turn(text, "c-r"))
                w = await warning(ws)
                assert w["blocked"] is True, (text, w)
                assert w["alert"]["text"] == "加我\n" + text, w
                assert w["alert"]["turns"] == 2, w
            await ws.send(turn("好的", "c-r"))
            assert json.loads(await recv(ws))["text"] == "好的"
            await asyncio.sleep(0.2)
            assert [m["head"] for m in b.messages(conn)] == \
                [turn("加我", "c-r"), turn("好的", "c-r")]
    run(main())


WINDOW_REPLAY = (f"rules: {WINDOW}\nwindow: {{turns: 3, time: 60s}}\n"
                 "sla: {first_response: 1h, reply: 1h, escalate: 2h}\n")


def test_blocked_turn_leaves_the_window_in_replay(tmp_path):
    """chatmon replay agrees with the relay: a resent blocked turn is
    blocked again."""
    lines = [("c-1", "加我"), ("c-1", "v abc12345"), ("c-1", "v abc12345"),
             ("c-2", "加我"), ("c-2", "v abc12345"), ("c-2", "vx zzz99999")]
    hits = replay_hits(tmp_path, WINDOW_REPLAY, lines)
    assert [(h["conversation"], h["text"], h["action"], h["turns"])
            for h in hits] == [
        ("c-1", "加我\nv abc12345", "block", 2),
        ("c-1", "加我\nv abc12345", "block", 2),
        ("c-2", "加我\nv abc12345", "block", 2),
        ("c-2", "加我\nvx zzz99999", "block", 2)], hits


def scan_results(lines):
    """chatmon scan's results of (conversation, text) lines with the WINDOW pack."""
    import subprocess
    from conftest import CHATMON
    p = subprocess.run([CHATMON, "scan", "--rules", WINDOW, "--format", "json"],
                       input="".join(json.dumps({"conversation": c, "text": t},
                                                ensure_ascii=False) + "\n"
                                     for c, t in lines),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines()]


def test_blocked_turn_leaves_the_window_in_scan():
    """chatmon scan agrees with the relay and replay: a line its rules
    block is forgotten, so a resent blocked line is blocked again rather
    than taken for the tail of the violation already reported."""
    lines = [("c-1", "加我"), ("c-1", "v abc12345"), ("c-1", "v abc12345"),
             ("c-1", "vx zzz99999")]
    got = [(r["line"], h.get("text"), h["action"])
           for r in scan_results(lines) for h in r["hits"]]
    assert got == [(2, "加我\nv abc12345", "block"),
                   (3, "加我\nv abc12345", "block"),
                   (4, "加我\nvx zzz99999", "block")], got


def test_turns_counts_the_turns_text_holds(tmp_path):
    """An alert's text holds the turns its match spans and turns counts
    them, from the window's own turns: a turn may hold newlines, and an
    earlier turn the match does not reach is not in the text (found by
    review: 加\\n\\n我 / v abc12345 said turns 4; 你好 / 加我 / v abc12345
    held 3 turns and said 2). chatmon scan says the same of each hit."""
    lines = [("c-1", "加\n\n我"), ("c-1", "v abc12345"),
             ("c-2", "你好"), ("c-2", "加我"), ("c-2", "v abc12345")]
    hits = replay_hits(tmp_path, WINDOW_REPLAY, lines)
    assert [(h["conversation"], h["text"], h["turns"], h["hits"][0]["turns"],
             h["matched"]) for h in hits] == [
        ("c-1", "加\n\n我\nv abc12345", 2, 2, "加\n\n我\nv abc12345"),
        ("c-2", "加我\nv abc12345", 2, 2, "加我\nv abc12345")], hits
    got = [(h["text"], h["turns"]) for r in scan_results(lines) for h in r["hits"]]
    assert got == [("加\n\n我\nv abc12345", 2), ("加我\nv abc12345", 2)], got


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def test_window_memory_grows_with_what_it_holds(daemon, backend):
    """One agent opens 30 000 conversations of one 1-byte turn each, with the
    largest window allowed (16 turns of 64 KiB): a speaker's ring grows with
    what it holds, so the window adds about what was said, not window.turns
    x window.bytes a conversation (found by review: RSS 12 -> 204 MB, VmSize
    32 GB). The window's share is the growth less that of the same flood
    with no rule marked window (no turns kept)."""
    import pytest
    from conftest import SAN
    if SAN:
        pytest.skip("ASan's allocator and shadow memory make RSS meaningless here")
    n = 30000
    b = backend()
    growth = {}
    for rules in (MINIMAL_RULES, WINDOW):
        d = daemon(b.port, rules=rules, level="info",
                   extra="window: {turns: 16, time: 60s, bytes: 64KiB}\n")

        async def main():
            async with agent(d, "/echo?t=flood&agent=mallory") as ws:
                await ws.send(turn("x", "warm"))
                await recv(ws)
                rss0, vm0 = vm_kib(d.pid, "VmRSS"), vm_kib(d.pid, "VmSize")
                for i in range(n):
                    await ws.send(turn("a", f"flood-{i}"))
                for i in range(n):
                    await recv(ws)
                growth[rules] = (vm_kib(d.pid, "VmRSS") - rss0,
                                 vm_kib(d.pid, "VmSize") - vm0)
        run(main())
        d.stop()
    rss = growth[WINDOW][0] - growth[MINIMAL_RULES][0]
    vm = growth[WINDOW][1] - growth[MINIMAL_RULES][1]
    print(f"{n} conversations: growth {growth}; the window's: RSS {rss} KiB, "
          f"VmSize {vm} KiB")
    # measured: 1.4 KiB a conversation (note, turn, the conversation's entry);
    # 18 KiB before, when a ring was allocated whole at the first turn
    assert rss < n * 2, growth
    assert vm < n * 2, growth
