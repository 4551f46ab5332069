"""The default rule pack (conf/rules.d) through the real chatmon tool: every
rule's examples pass, the labelled corpus meets the precision and recall
gates, and scan reports bad lines and goes on."""

import json
import os
import subprocess
import sys

from conftest import CHATMON, DEFAULT_RULES, SLOW

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "corpus")


def test_every_example_passes():
    r = subprocess.run([CHATMON, "rules", "test", "--rules", DEFAULT_RULES],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    totals, cost = r.stdout.strip().splitlines()[-2:]
    n_rules, n_examples, n_failed = [int(w) for w in totals.replace(",", "").split() if w.isdigit()]
    assert n_failed == 0 and n_rules >= 40 and n_examples >= 300, totals
    # the pack keeps its fast paths for plain chat: one normalised view
    # read, the window pass skipped on clean turns (a rule that opts out of
    # the noise step with a plain word, 星, cost every turn both once)
    assert cost == ("a plain turn reads 1 of 2 normalised views; the window pass "
                    "is skipped when the turns' notes show nothing to find"), cost
    # every category of domain.md has rules
    cats = set()
    for line in r.stdout.splitlines()[1:-2]:
        if "/" in line:
            cats.add(line.split(".", 1)[0])
    for c in ("offplatform", "invoice", "returns", "stock", "review_bait", "payment",
              "order_close", "privacy", "etiquette", "abuse", "ad_law", "complaint_risk",
              "extortion"):
        assert c in cats, (c, sorted(cats))


def test_corpus_precision_recall():
    r = subprocess.run([sys.executable, os.path.join(CORPUS, "score.py"), "--chatmon", CHATMON,
                        "--rules", DEFAULT_RULES], capture_output=True, text=True,
                       timeout=120 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("PASS"), r.stdout


def test_scan_lines_in_order_with_errors(tmp_path):
    lines = [
        json.dumps({"role": "agent", "text": "亲,加 我 薇 信吧"}, ensure_ascii=False),
        "not json",
        json.dumps({"text": "您好,在的"}, ensure_ascii=False),
        json.dumps({"role": "customer", "text": "再不发货我就去投诉"}, ensure_ascii=False),
        json.dumps({"role": "boss", "text": "x"}),
        json.dumps({"role": "agent"}),
    ]
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = subprocess.run([CHATMON, "scan", "--rules", DEFAULT_RULES, str(f)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1, r.stderr      # bad lines make the status non-zero
    out = [json.loads(l) for l in r.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3, 4, 5, 6]
    hit = out[0]["hits"][0]
    assert hit["category"] == "offplatform" and hit["action"] == "block"
    assert hit["match"] in "亲,加 我 薇 信吧" and "薇 信" in hit["match"]
    assert "加 我 薇 信吧"[hit["start"] - 2:hit["end"] - 2] == hit["match"]
    assert "error" in out[1] and out[2]["hits"] == []
    assert out[3]["hits"] and all(h["action"] != "block" for h in out[3]["hits"])
    assert {h["category"] for h in out[3]["hits"]} >= {"complaint_risk"}
    assert "role" in out[4]["error"] and "text" in out[5]["error"]
    # stdin and --role work too
    r = subprocess.run([CHATMON, "scan", "--rules", DEFAULT_RULES, "--role", "customer"],
                       input=json.dumps({"text": "加我微信"}, ensure_ascii=False) + "\n",
                       capture_output=True, text=True, timeout=30 * SLOW)
    o = json.loads(r.stdout)
    assert o["line"] == 1 and all(h["action"] != "block" for h in o["hits"])


def scan_rules(texts):
    """Each text scanned as an agent's line against the shipped pack: its hits' rule ids."""
    lines = "".join(json.dumps({"role": "agent", "text": t}, ensure_ascii=False) + "\n"
                    for t in texts)
    r = subprocess.run([CHATMON, "scan", "--rules", DEFAULT_RULES], input=lines,
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    return [[h["rule"] for h in json.loads(l)["hits"]] for l in r.stdout.splitlines()]


def normalize(texts):
    r = subprocess.run([CHATMON, "rules", "normalize"], input="".join(t + "\n" for t in texts),
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_normalize_bounds_its_lines_and_says_what_it_cannot_read(tmp_path):
    """`chatmon rules normalize` reads lines as scan does (found by review:
    a 100 MB line took 1.8 GB, and a standard input it could not read
    exited 0 with nothing said): a line over 4 MiB is said as -:LINE and
    left out (an empty line in its place), the rest normalised, exit 1; a
    directory as standard input is an error."""
    big = "加我微信 " * (5 * 1024 * 1024 // 13 + 1)
    r = subprocess.run([CHATMON, "rules", "normalize"], input=f"ＡＢ\n{big}\n加 我\n",
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert r.returncode == 1 and "-:2: line longer than 4194304 bytes" in r.stderr, r.stderr
    assert r.stdout.splitlines() == ["ab", "", "加我"], r.stdout[:200]
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        r = subprocess.run([CHATMON, "rules", "normalize"], stdin=fd, capture_output=True,
                           text=True, timeout=30 * SLOW)
    finally:
        os.close(fd)
    assert r.returncode == 1 and "Is a directory" in r.stderr, r.stderr


def test_scan_refuses_a_shop_not_configured(tmp_path):
    """`chatmon scan --shop ID` with an ID the configuration has no shop of
    scanned as the top level, silently (found by review: a typo); it is a
    usage error now (2), and a configured one scans."""
    conf = tmp_path / "c.yaml"
    conf.write_text(f"rules: {DEFAULT_RULES}\nshops:\n  s1: {{}}\n", encoding="utf-8")
    r = subprocess.run([CHATMON, "scan", "-c", str(conf), "--shop", "s2"], input="",
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert r.returncode == 2 and "--shop s2: no such shop" in r.stderr, r.stderr
    r = subprocess.run([CHATMON, "scan", "-c", str(conf), "--shop", "s1"], input="",
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr


def test_lookalike_capital_i_is_i():
    """Greek Ι and Cyrillic І pass for I, and fold as I does, to i: ICU's
    skeleton of all three is l (found by review: ΗUΑΒΕΙ read huabel and
    passed the rule that blocks HUABEI)."""
    texts = ["不支持HUABEI", "不支持ΗUΑΒΕΙ", "不支持НUАВЕІ"]
    assert normalize(texts) == ["不支持huabei"] * 3
    assert all("payment.refuse_method" in hits for hits in scan_rules(texts))


def test_digits_of_every_script_are_digits():
    """A phone number in Arabic-Indic, Persian or Devanagari digits is the
    number (found by review: ١ read l, ٥ o and ٧ v, the others stayed
    as they were, and the shipped pack let all of them through)."""
    texts = ["我手机13812345678", "我手机١٣٨١٢٣٤٥٦٧٨", "我手机۱۳۸۱۲۳۴۵۶۷۸",
             "我手机१३८१२३४५६७८"]
    assert normalize(texts) == ["我手机13812345678"] * 4
    assert all("offplatform.phone_number" in hits for hits in scan_rules(texts))


def test_sound_view_reads_pinyin_before_an_id(tmp_path):
    """Typed pinyin followed by words that are not pinyin (an id, "ok")
    is still pinyin in the sound view, and the id stays whole (found by
    review: jia wo wei xin abc never matched, jia wo wei xin did)."""
    (tmp_path / "a.yaml").write_text(
        "- list: wechat\n  items: [微信, vx]\n"
        "- rule: t.sound\n  category: offplatform\n  severity: warn\n  action: flag\n"
        "  normalize: {sound: true}\n  pattern: '加我?${wechat}'\n"
        "  examples: {match: [加我威信, jia wo wei xin], no_match: [支持微信支付吗]}\n"
        "- rule: t.sound_id\n  category: offplatform\n  severity: warn\n  action: flag\n"
        "  normalize: {sound: true}\n  pattern: '加我?${wechat}[a-z0-9]{6,}'\n"
        "  examples: {match: [加我威信abc123], no_match: [加我威信]}\n", encoding="utf-8")
    texts = ["jia wo wei xin abc", "Jia Wo Wei-Xin ok", "加weixin abc123", "加我wei xin dgkj"]
    lines = "".join(json.dumps({"role": "agent", "text": t}, ensure_ascii=False) + "\n"
                    for t in texts)
    r = subprocess.run([CHATMON, "scan", "--rules", str(tmp_path)], input=lines,
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stderr
    hits = [{h["rule"]: h for h in json.loads(l)["hits"]} for l in r.stdout.splitlines()]
    assert all("t.sound" in h for h in hits), hits
    # offsets are what was typed: the pinyin, not the id after it
    assert [h["t.sound"]["match"] for h in hits] == ["jia wo wei xin", "Jia Wo Wei-Xin",
                                                      "加weixin", "加我wei xin"]
    assert hits[2]["t.sound_id"]["match"] == "加weixin abc123"


def test_rules_test_reports_the_cost_of_plain_turns(tmp_path):
    """A view that only emoji rules use is skipped for plain turns until one
    of its rules can be a candidate on plain words; the report says so."""
    def cost(emoji_pattern, window):
        (tmp_path / "r.yaml").write_text(
            "- rule: a.plain\n  category: abuse\n  severity: warn\n  action: flag\n"
            f"  window: {window}\n  pattern: 滚开\n"
            "  examples: {match: [滚开], no_match: [滚筒]}\n"
            "- rule: a.emoji\n  category: complaint_risk\n  severity: warn\n"
            "  action: flag\n  normalize: {noise: false}\n"
            f"  pattern: '给你们(?:1|一){emoji_pattern}'\n"
            "  examples: {match: [给你们1⭐], no_match: [给你们五⭐]}\n", encoding="utf-8")
        r = subprocess.run([CHATMON, "rules", "test", "--rules", str(tmp_path)],
                           capture_output=True, text=True, timeout=30 * SLOW)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip().splitlines()[-1]
    assert cost("(?:⭐|🌟)", "false") == ("a plain turn reads 1 of 2 normalised views; "
                                        "the window pass never runs (no window rule)")
    assert cost("(?:⭐|🌟|星)", "false").startswith("a plain turn reads 2 of 2 ")
    assert cost("(?:⭐|🌟)", "true").endswith(
        "the window pass is skipped when the turns' notes show nothing to find")


def test_rules_test_reports_rules_with_no_literal(tmp_path):
    """A pattern that starts with a (*VERB) gives the literal reader nothing:
    its rule runs on every turn, and the cost line said "0 of 0 views"."""
    (tmp_path / "r.yaml").write_text(
        "- rule: a.verb\n  category: abuse\n  severity: warn\n  action: flag\n"
        "  pattern: '(*UCP)傻瓜'\n  examples: {match: [傻瓜]}\n"
        "- rule: a.plain\n  category: abuse\n  severity: warn\n  action: flag\n"
        "  pattern: 滚开\n  examples: {match: [滚开]}\n", encoding="utf-8")
    r = subprocess.run([CHATMON, "rules", "test", "--rules", str(tmp_path)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == (
        "a plain turn reads 1 of 1 normalised views; 1 rule has no literal to look for "
        "and runs on every turn; the window pass never runs (no window rule)")


def test_rules_test_reports_failures(tmp_path):
    (tmp_path / "r.yaml").write_text(
        "- rule: a.b\n  category: abuse\n  severity: warn\n  action: flag\n"
        "  pattern: 滚开\n  examples:\n    match: [滚开, 滚]\n", encoding="utf-8")
    r = subprocess.run([CHATMON, "rules", "test", "--rules", str(tmp_path)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1
    assert f"{tmp_path}/r.yaml:7: rule a.b: example \"滚\" should match but does not" in r.stdout
    assert "1 rules, 2 examples, 1 failed" in r.stdout
    # a broken file: every error with file:line, exit 1
    (tmp_path / "r.yaml").write_text("- rule: a.b\n  category: [\n", encoding="utf-8")
    r = subprocess.run([CHATMON, "rules", "test", "--rules", str(tmp_path)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1 and f"{tmp_path}/r.yaml:" in r.stderr


def test_rules_errors_quote_values_without_their_control_characters(tmp_path):
    """An error quotes the value as written: a line feed in it made a second,
    forged FILE:LINE error line (its own journal entry), an ESC reached the
    terminal. They come escaped (C0 as \\xNN, C1 as \\uNNNN), one error a line."""
    (tmp_path / "r.yaml").write_text(
        '- rule: "t.a\\nFAKE.yaml:1: forged\\e[31mRED\\u009b"\n  category: abuse\n'
        "  severity: warn\n  action: flag\n  pattern: zz\n"
        "  examples: {match: [zz]}\n", encoding="utf-8")
    r = subprocess.run([CHATMON, "rules", "test", "--rules", str(tmp_path)],
                       capture_output=True, text=True, timeout=30 * SLOW)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"{tmp_path}/r.yaml:1: rule 't.a\\x0aFAKE.yaml:1: forged\\x1b[31mRED\\u009b': "
        "ids are letters, digits, '.', '_' and '-'"], r.stderr


def test_eval_dev_part(tmp_path):
    """make eval's measurement on the dev part: every category measured, and
    the pack holds the figures it was tuned to (a regression gate; the blind
    test part is measured by make eval, never gated or tuned on here)."""
    out = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, os.path.join(CORPUS, "eval.py"), "--chatmon", CHATMON,
                        "--rules", DEFAULT_RULES, "--part", "dev", "--json", str(out)],
                       capture_output=True, text=True, timeout=300 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    dev = json.loads(out.read_text())["dev"]
    assert dev["lines"] >= 3000 and len(dev["categories"]) == 13
    assert all(c["positives"] >= 100 for c in dev["categories"].values()), dev["categories"]
    # a floor against regressions, just under today's figures: T7-T9 joined
    # dev on 2026-12-04: 97.9/98.7 before, 99.2/99.3 after widening; T10-T21
    # joined it later that day, the pack widened on each (99.3/98.5 after)
    assert dev["recall"] >= 0.99 and dev["clean"] >= 0.98, (dev["recall"], dev["clean"])
    assert dev["block_clean"] >= 0.995, dev["block_clean"]
    assert "split" in dev["kinds"] and "homophone" in dev["kinds"]


def test_eval_test_part_is_frozen():
    """The blind test part is the one its hashes were recorded for."""
    d = os.path.join(CORPUS, "test")
    r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=d, capture_output=True,
                       text=True, timeout=30 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    names = sorted(f for f in os.listdir(d) if f.endswith(".jsonl"))
    listed = sorted(line.split()[1] for line in open(os.path.join(d, "SHA256SUMS")))
    assert names == listed and len(names) >= 3
