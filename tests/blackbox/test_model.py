"""The n-gram model as a second opinion (docs/rules.md, "A second opinion"),
with the shipped model file: it only flags, for a category no rule reported,
offline (chatmon scan --model) and in the live relay (model: in the
configuration), and a file that is not a model is refused with its reason.

The rules here are the one-rule set of the relay tests, so what the model
adds is not hidden by the default pack."""

import json
import os
import subprocess

from conftest import (CHATMON, CHATMOND, DEFAULT_RULES, MINIMAL_RULES, ROOT, agent, config_text,
                      free_port, recv, replay_hits, run)

MODEL = os.path.join(ROOT, "conf", "model", "chatmon-ngram.model")

# violations written as a new writer would, which no rule of MINIMAL_RULES names
LEAKS = [
    ("agent", "亲,跟您拼单的那位叫周婷,地址在闵行区七宝镇,您俩离得挺近的"),
    ("agent", "加我微信吧,我发您实拍图"),
    ("agent", "好评返现五元,截图发我就行"),
]
CLEAN = [
    ("agent", "好的亲,已经给您备注了,今天下午就发货"),
    ("customer", "收到了,谢谢,质量挺好的"),
    ("agent", "亲,在的,请问有什么可以帮您"),
]


def scan(lines, *extra):
    inp = "".join(json.dumps({"role": r, "text": t}, ensure_ascii=False) + "\n" for r, t in lines)
    r = subprocess.run([CHATMON, "scan", "--rules", MINIMAL_RULES, *extra], input=inp,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(x)["hits"] for x in r.stdout.splitlines()]


def test_scan_model_flags_only():
    without = scan(LEAKS + CLEAN)
    assert all(h == [] for h in without)           # the rules alone see nothing
    hits = scan(LEAKS + CLEAN, "--model", MODEL)
    for h in hits[:len(LEAKS)]:
        assert h, hits
        for x in h:
            assert x["rule"] == "model." + x["category"], x
            assert x["action"] == "flag" and x["severity"] == "info", x
    assert {x["category"] for x in hits[0]} >= {"privacy"}
    assert {x["category"] for x in hits[1]} >= {"offplatform"}
    assert {x["category"] for x in hits[2]} >= {"review_bait"}
    assert all(h == [] for h in hits[len(LEAKS):]), hits[len(LEAKS):]


def test_bad_model_file_is_refused(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model at all\n" * 10)
    r = subprocess.run([CHATMON, "scan", "--rules", MINIMAL_RULES, "--model", str(bad)],
                       input="", capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and str(bad) in r.stderr, r.stderr


def turn(text, conv="c-1"):
    return json.dumps({"type": "message", "conversation": conv, "text": text},
                      ensure_ascii=False)


def test_relay_model_flags_and_forwards(daemon, backend):
    b = backend()
    d = daemon(b.port, extra=f"model: {MODEL}\n")

    async def main():
        async with agent(d, "/echo?t=model&agent=alice") as ws:
            conn = b.opened("t=model")["conn"]
            for _, text in (LEAKS[0], CLEAN[0]):
                await ws.send(turn(text))
                # a flag tells the agent nothing: the echo is the next frame
                assert json.loads(await recv(ws))["text"] == text
            assert [m["head"] for m in b.messages(conn, 2)] == \
                [turn(LEAKS[0][1]), turn(CLEAN[0][1])]
    run(main())
    alerts = [json.loads(l.split("alert: ", 1)[1]) for l in d.log().splitlines()
              if ": debug: alert: " in l]
    # one alert for the turn, every category the model found in its hits
    assert len(alerts) == 1, alerts
    a = alerts[0]
    assert a["v"] == 2 and a["text"] == LEAKS[0][1], a
    assert all(h["action"] == "flag" and h["rule"] == "model." + h["category"]
               for h in a["hits"]), a
    assert (a["rule"], a["category"]) == (a["hits"][0]["rule"], a["hits"][0]["category"])
    assert {h["category"] for h in a["hits"]} >= {"privacy"}
    assert d.stop() == 0


def test_relay_refuses_a_bad_model(tmp_path):
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\0" * 64)
    conf = tmp_path / "c.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:1/", extra=f"model: {bad}\n"))
    r = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and str(bad) in r.stderr, r.stderr
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:1/", extra=f"model: {MODEL}\n"))
    r = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr


# The model vetoes a rule's block it does not back (docs/rules.md, "A block
# needs two opinions"): a block rule on the bare app name, which a real
# contact request and an innocent mention both match.
VETO_RULE = """\
- rule: offplatform.test_app
  category: offplatform
  severity: critical
  action: block
  pattern: '微信'
  message: 亲,请在平台内沟通。
  examples:
    match: [加我微信]
    no_match: [加我好友]
"""
STEERING = [("agent", "加我微信吧,我发您实拍图"), ("agent", "微信号abc123,加一下")]
MENTIONS = [("agent", "亲,平台不允许加微信的哦,有问题直接在这里跟我说就行"),
            ("agent", "亲,这款手表可以连接微信运动,步数会自动同步")]


def veto_rules(tmp_path):
    d = tmp_path / "veto-rules"
    d.mkdir()
    (d / "t.yaml").write_text(VETO_RULE)
    return str(d)


def scan_with(rules, lines, *extra):
    inp = "".join(json.dumps({"role": r, "text": t}, ensure_ascii=False) + "\n" for r, t in lines)
    r = subprocess.run([CHATMON, "scan", "--rules", rules, *extra], input=inp,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return [[(h["action"], h.get("vetoed", False)) for h in json.loads(x)["hits"]
             if h["rule"] == "offplatform.test_app"] for x in r.stdout.splitlines()]


def test_scan_model_vetoes_blocks_it_does_not_back(tmp_path):
    rules = veto_rules(tmp_path)
    lines = STEERING + MENTIONS
    assert scan_with(rules, lines) == [[("block", False)]] * 4     # the rule alone
    assert scan_with(rules, lines, "--model", MODEL) == \
        [[("block", False)]] * 2 + [[("warn", True)]] * 2
    # model_veto: 0 keeps every block; a bad value is refused with FILE:LINE
    conf = tmp_path / "c.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:1/", rules=rules,
                                extra=f"model: {MODEL}\nmodel_veto: 0\n"))
    assert scan_with(rules, lines, "-c", str(conf)) == [[("block", False)]] * 4
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:1/", rules=rules,
                                extra=f"model: {MODEL}\nmodel_veto: 1.5\n"))
    r = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True, text=True,
                       timeout=30)
    n = len(conf.read_text().splitlines())
    assert r.returncode != 0 and f"{conf}:{n}:" in r.stderr and "model_veto" in r.stderr, \
        r.stderr


def test_relay_vetoed_block_warns_and_forwards(daemon, backend, tmp_path):
    b = backend()
    d = daemon(b.port, rules=veto_rules(tmp_path), extra=f"model: {MODEL}\n")

    async def main():
        async with agent(d, "/echo?t=veto&agent=alice") as ws:
            conn = b.opened("t=veto")["conn"]
            await ws.send(turn(MENTIONS[0][1]))
            w = json.loads(await recv(ws))
            assert w["type"] == "chatmon.warning" and w["blocked"] is False, w
            assert w["alert"]["action"] == "warn" and w["alert"]["vetoed"] is True, w
            assert json.loads(await recv(ws))["text"] == MENTIONS[0][1]
            await ws.send(turn(STEERING[0][1]))
            w = json.loads(await recv(ws))
            assert w["blocked"] is True and w["alert"]["action"] == "block", w
            assert "vetoed" not in w["alert"], w
            await ws.send(turn(CLEAN[0][1]))
            assert json.loads(await recv(ws))["text"] == CLEAN[0][1]
            assert [m["head"] for m in b.messages(conn, 2)] == \
                [turn(MENTIONS[0][1]), turn(CLEAN[0][1])]       # the block never arrived
    run(main())
    assert d.stop() == 0
    st = d.stats()
    assert st["rule_blocks"] == 1 and st["rule_warnings"] == 2, st     # both told
    assert st["rule_vetoes"] == 1, st


GREETING = "亲，您好，欢迎光临本店，有什么可以帮您的吗？"


def test_replay_padding_does_not_veto_a_block(tmp_path):
    """The veto reads the match and the text next to it, not the text's
    first bytes: ~800 bytes of greeting before (or after) a contact leave
    the block standing (found by review: the model read only the greeting
    and vetoed it). The shipped rules, model and veto, as
    conf/chatmond.yaml runs them."""
    leak = "加我微信abc12345，私下给你便宜"
    lines = [("p0", leak), ("p1", GREETING * 12 + leak), ("p2", leak + GREETING * 12)]
    hits = replay_hits(tmp_path, f"rules: {DEFAULT_RULES}\nmodel: {MODEL}\nmodel_veto: 0.15\n"
                       "sla: {first_response: 1h, reply: 1h, escalate: 2h}\n", lines)
    got = {h["conversation"]: (h["category"], h["action"], h.get("vetoed", False))
           for h in hits}
    assert got == {c: ("offplatform", "block", False) for c in ("p0", "p1", "p2")}, hits


def model_file(cats):
    """A model file as tools/train_model.py writes it (conf/model/README.md),
    checksum right, with categories cats = [(name bytes, bias, threshold)]
    and no weights."""
    import hashlib
    import struct
    body = b"".join(n.ljust(24, b"\0") + struct.pack("<ff", b, t) for n, b, t in cats)
    head = b"CMNGRAM\0" + struct.pack("<6I", 1, 64 + len(body), 4, 3, len(cats), 0)
    blob = head + b"\0" * 32 + body
    return head + hashlib.blake2b(blob, digest_size=32).digest() + body


def test_category_name_is_checked_as_a_rule_category(tmp_path):
    """A model's category names go into /metrics' labels and the alerts as
    they are: a name the rules would refuse as a category (a quote, a
    brace, a space) is refused with the file and what is wrong (found by
    review: 'off"} 1' loaded and broke /metrics)."""
    good = tmp_path / "good.model"
    good.write_bytes(model_file([(b"offplatform", 0.0, 0.5), (b"ad_law.x-1", 0.0, 0.5)]))
    bad = tmp_path / "bad.model"
    bad.write_bytes(model_file([(b"offplatform", 0.0, 0.5), (b'off"} 1', 0.0, 0.5)]))
    conf = tmp_path / "c.yaml"
    for model, ok in ((good, True), (bad, False)):
        conf.write_text(config_text(free_port(), "ws://127.0.0.1:1/",
                                    extra=f"model: {model}\n"))
        r = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True,
                           text=True, timeout=30)
        if ok:
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode != 0, r.stderr
            assert f"{bad}: category 1: name 'off\"}} 1': letters, digits, '.', '_' " \
                "and '-' only" in r.stderr, r.stderr
    r = subprocess.run([CHATMON, "scan", "--rules", MINIMAL_RULES, "--model", str(bad)],
                       input="", capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and f"{bad}: category 1: name" in r.stderr, r.stderr


def test_a_shop_switches_the_models_flags_off_by_their_id(tmp_path):
    """A shop that switched a rule off (rules_off) got the model's flag on
    the same text under model.CATEGORY, and could not switch that off: the
    model's flags are now rule ids rules_off takes, checked against the
    model (an unknown category, or no model, is an error at its line)."""
    lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n"
                    for t in ("你要哪个颜色", "你拍下就行,我给你备注"))

    def conf(off, model=True):
        c = tmp_path / "c.yaml"
        c.write_text(f"listen: 127.0.0.1:{free_port()}\nupstream: ws://127.0.0.1:9/\n"
                     f"rules: {DEFAULT_RULES}\n" + (f"model: {MODEL}\n" if model else "") +
                     f"shops:\n  s1:\n    rules_off: [{off}]\n", encoding="utf-8")
        return str(c)

    def scan_shop(c):
        r = subprocess.run([CHATMON, "scan", "-c", c, "--shop", "s1"], input=lines,
                           capture_output=True, text=True, timeout=120)
        return r, [json.loads(x)["hits"] for x in r.stdout.splitlines()]

    r, hits = scan_shop(conf("etiquette.you"))
    assert r.returncode == 0, r.stderr
    assert any(x["rule"] == "model.etiquette" for h in hits for x in h), hits
    r, hits = scan_shop(conf("etiquette.you, model.etiquette"))
    assert r.returncode == 0, r.stderr
    assert not any(x["category"] == "etiquette" for h in hits for x in h), hits
    c = conf("etiquette.you, model.etiquette")
    r = subprocess.run([CHATMOND, "-c", c, "-t"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for off, model, why in (("model.nosuch", True, "the model has no such category"),
                            ("model.etiquette", False, "no model is configured (model:)")):
        c = conf(off, model)
        for cmd in ([CHATMOND, "-c", c, "-t"], [CHATMON, "scan", "-c", c]):
            r = subprocess.run(cmd, input="", capture_output=True, text=True, timeout=120)
            assert r.returncode == 1, (cmd, r.stderr)
            line = 7 if model else 6            # rules_off's line
            assert f"{c}:{line}: shops.s1: rules_off: {off}: {why}" in r.stderr, r.stderr
