#!/usr/bin/python3
"""Makes the seed corpora tests/fuzz/corpus/<harness>/ from the project's tests.

usage: tests/fuzz/mkseeds.py        (from anywhere; rewrites the corpus dirs)

Sources: the C string literals of tests/unit/test_*.c (golden rows, good and
bad files), tests/corpus/messages.jsonl, conf/rules.d/, conf/chatmond.yaml,
tests/replay/*.yaml and tests/blackbox/rules*/; for fuzz_detect, the turns
test_detect.c splits a violation over; for fuzz_jwt, headers and claims
the harness signs itself (and key files with public keys only); for
fuzz_alertline and fuzz_pushmsg, the alerts of docs/alerts.md and
test_alertline.c. The seeds are few and small
(tens per harness, plain files); libFuzzer grows its own work corpus under
build-fuzz/ from them. Deterministic: the same tree makes the same seeds.
"""

import hashlib
import json
import os
import re
import shutil
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(TOP, "tests", "fuzz", "corpus")


def src(*p):
    return os.path.join(TOP, *p)


def read(*p):
    with open(src(*p), "rb") as f:
        return f.read()


# --- C string literals ------------------------------------------------------

def c_unescape(body):
    """The bytes of one C string literal's body (between the quotes)."""
    out = bytearray()
    i = 0
    simple = {"n": 10, "t": 9, "r": 13, "\\": 92, '"': 34, "'": 39, "?": 63,
              "a": 7, "b": 8, "f": 12, "v": 11}
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        c = body[i + 1]
        if c == "x":
            j = i + 2
            while j < len(body) and body[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(body[i + 2:j], 16) & 0xff)
            i = j
        elif c in "uU":
            n = 4 if c == "u" else 8
            out += chr(int(body[i + 2:i + 2 + n], 16)).encode()
            i += 2 + n
        elif c in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(int(body[i + 1:j], 8) & 0xff)
            i = j
        else:
            out.append(simple[c])
            i += 2
    return bytes(out)


TOKEN = re.compile(r'"((?:[^"\\\n]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*)|([{},;])|(/\*.*?\*/)|(\s+)|(.)',
                   re.S)


def c_tokens(text, macros):
    """Strings (adjacent literals and macros joined), names and punctuation."""
    toks = []
    for m in TOKEN.finditer(text):
        s, name, punct = m.group(1), m.group(2), m.group(3)
        if s is not None or (name is not None and name in macros):
            b = c_unescape(s) if s is not None else macros[name]
            if toks and isinstance(toks[-1], bytes):
                toks[-1] += b
            else:
                toks.append(b)
        elif name is not None:
            toks.append(("name", name))
        elif punct is not None:
            toks.append(punct)
    return toks


def c_macros(text):
    macros = {}
    for m in re.finditer(r'^#define\s+([A-Z_]+)\s+((?:"(?:[^"\\]|\\.)*"\s*)+)$', text, re.M):
        macros[m.group(1)] = b"".join(c_unescape(s) for s in
                                       re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2)))
    return macros


def c_array_rows(path, name):
    """The rows of `static const ... name[] = { {...}, ... };` as lists of byte strings."""
    text = read(path).decode()
    start = re.search(r"\b%s\[\]\s*=\s*\{" % re.escape(name), text)
    if start is None:
        sys.exit("mkseeds: no array %s in %s" % (name, path))
    end = text.index("\n};", start.end())
    toks = c_tokens(text[start.end():end], c_macros(text))
    rows, row, depth = [], None, 0
    for t in toks:
        if t == "{":
            depth += 1
            if depth == 1:
                row = []
        elif t == "}":
            if depth == 1:
                rows.append(row)
            depth -= 1
        elif isinstance(t, bytes) and depth == 1:
            row.append(t)
    return rows


def c_string(path, name, nth=0):
    """The value of the nth `static const char name[] = "..." ...;` in path."""
    text = read(path).decode()
    ms = list(re.finditer(r"\b%s\[\]\s*=" % re.escape(name), text))
    m = ms[nth]
    end = text.index(";", m.end())
    toks = c_tokens(text[m.end():end], c_macros(text))
    return next(t for t in toks if isinstance(t, bytes))


# --- the project's data -----------------------------------------------------

def messages():
    rows = []
    for line in read("tests", "corpus", "messages.jsonl").decode().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def spread(xs, n):
    """n items spread evenly over xs (all of them when fewer)."""
    if len(xs) <= n:
        return list(xs)
    return [xs[i * len(xs) // n] for i in range(n)]


def yaml_items(text):
    """A rule file's top-level '- ' items, each with the comments above it dropped."""
    items, cur = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("- "):
            if cur is not None:
                items.append(cur)
            cur = line
        elif cur is not None and (line.startswith(" ") or not line.strip()):
            cur += line
        elif cur is not None and line.startswith("#"):
            items.append(cur)
            cur = None
    if cur is not None:
        items.append(cur)
    return [i.rstrip("\n") + "\n" for i in items]


def item_name(item):
    m = re.match(r"- (list|macro|rule): *(\S+)", item)
    return (m.group(1), m.group(2)) if m else (None, None)


def with_defs(item, defs):
    """item preceded by the lists and macros it uses, transitively, in file order."""
    need, todo = [], [item]
    while todo:
        for ref in re.findall(r"\$\{([A-Za-z0-9_-]+)\}", todo.pop()):
            if ref in defs and ref not in need:
                need.append(ref)
                todo.append(defs[ref])
    order = list(defs)
    return "".join(defs[n] for n in sorted(need, key=order.index)) + item


# --- writing ----------------------------------------------------------------

seeds = {}


def add(harness, name, data):
    if isinstance(data, str):
        data = data.encode()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:60]
    d = seeds.setdefault(harness, {})
    if data in d.values():
        return
    if name in d:
        name += "-" + hashlib.sha1(data).hexdigest()[:8]
    d[name] = data


def frame(text, conv="c-1", kind="message", ascii_only=False, **extra):
    obj = {"type": kind, "conversation": conv}
    if text is not None:
        obj["text"] = text
    obj.update(extra)
    return json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":"))


def codec_seeds(msgs):
    for i, m in enumerate(spread(msgs, 10)):
        add("codec", "jsonl-%d" % i, frame(m["text"], "c-%d" % i, ascii_only=i % 2 == 1))
    # test_codec.c's golden inputs: the third string of each row
    rows = c_array_rows(os.path.join("tests", "unit", "test_codec.c"), "golden")
    picked = spread([r for r in rows if len(r) >= 2], 16)
    for r in picked:
        add("codec", "unit-" + r[0].decode(errors="replace"), r[1])
    add("codec", "end", frame(None, kind="end"))
    add("codec", "int-conversation", '{"type":"message","conversation":-42,"text":"hi"}')
    add("codec", "robot", '{"type":"chat","conversation":"c","text":"t","auto":true}')
    add("codec", "nested", '{"meta":{"t":"message"},"a/b":"c","msg":{"body":{"text":"在吗"}}}')
    add("codec", "array", '{"arr":["message","c",{"~x":"t"}]}')
    add("codec", "warning", '{"type":"chatmon.warning","conversation":"c-1",'
        '"alert":{"v":1,"rule":"offplatform.contact_app"},"blocked":true}')
    # a protocol line first: the pointers come from the input
    add("codec", "pointers", "/kind\t/meta/conv~1id\t/body\t/auto\n"
        '{"kind":"message","meta":{"conv/id":7},"body":"加我微信","auto":0}')
    add("codec", "pointers-index", "/a/0\t/a/1\t/a/2/~0t\n"
        '{"a":["message","c",{"~t":"x"}]}')
    for name in ("basic", "robot", "taobao"):
        line = read("tests", "replay", name + ".jsonl").decode().splitlines()[0]
        obj = json.loads(line)
        obj["type"] = "message"
        add("codec", "replay-" + name, json.dumps(obj, ensure_ascii=False))


def normalize_seeds(msgs):
    rows = c_array_rows(os.path.join("tests", "unit", "test_normalize.c"), "golden")
    for r in spread(rows, 24):
        add("normalize", "unit-" + r[0].decode(errors="replace"), r[1])
    for i, m in enumerate(spread(msgs, 10)):
        add("normalize", "jsonl-%d" % i, m["text"])
    add("normalize", "invalid-utf8", b"\xff\xfe\xe4\xb8 \xed\xa0\x80\xf4\x90\x80\x80 \xc0\xaf ok")


def acm_seeds(msgs):
    add("acm", "classic", "he\nshe\nhis\nhers\n\nushers ahishers")
    add("acm", "nested", "a\naa\naaa\nab\nb\n\naaaabaaab")
    add("acm", "duplicates", "ab\nab\nb\n\nabab")
    add("acm", "binary", b"\x00\x01\n\xff\n\x00\n\n\x00\x01\xff\x00\x00")
    add("acm", "no-text", "x\ny\nxy\n")
    lists = read("conf", "rules.d", "00-lists.yaml").decode()
    names = re.findall(r"^- list: *(\S+)\n  items: \[(.*)\]$", lists, re.M)
    for i, (name, items) in enumerate(names):
        lits = [s.strip() for s in items.split(",")]
        texts = [m["text"] for m in msgs if any(l in m["text"].lower() for l in lits)]
        text = texts[0] if texts else msgs[i]["text"]
        add("acm", "list-" + name, "\n".join(lits) + "\n\n" + text)


def rules_seeds(msgs):
    good = c_string(os.path.join("tests", "unit", "test_rules.c"), "good")
    add("rules", "unit-good", good + b"\0" + "加我微信,这款没货了".encode())
    add("rules", "unit-good-customer", good + b"\0" + "再不发货我就投诉 ①③⑧".encode())
    add("rules", "unit-good-alone", good)
    rows = c_array_rows(os.path.join("tests", "unit", "test_rules.c"), "bad_cases")
    for r in spread(rows, 10):
        add("rules", "unit-bad-" + r[0].decode(errors="replace"), r[1])
    lists = read("conf", "rules.d", "00-lists.yaml").decode()
    defs = {}
    for path in sorted(os.listdir(src("conf", "rules.d"))):
        for item in yaml_items(read("conf", "rules.d", path).decode()):
            kind, name = item_name(item)
            if kind in ("list", "macro"):
                defs[name] = item
    by_cat = {}
    for m in msgs:
        for c in m["expect"]:
            by_cat.setdefault(c, m["text"])
    for path in sorted(os.listdir(src("conf", "rules.d"))):
        if path == "00-lists.yaml":
            continue
        rules = [i for i in yaml_items(read("conf", "rules.d", path).decode())
                 if item_name(i)[0] == "rule"]
        # the pack's first rule and its shortest, each with what it uses
        for ru in {rules[0], min(rules, key=len)}:
            cat = re.search(r"^  category: *(\S+)", ru, re.M)
            text = by_cat.get(cat.group(1) if cat else "", msgs[0]["text"])
            add("rules", "pack-" + item_name(ru)[1],
                with_defs(ru, defs).encode() + b"\0" + text.encode())
    add("rules", "pack-stock-whole", lists + read("conf", "rules.d", "stock.yaml").decode())
    for d in ("rules", "rules_live"):
        for path in sorted(os.listdir(src("tests", "blackbox", d))):
            add("rules", "blackbox-" + path, read("tests", "blackbox", d, path))


def config_seeds():
    add("config", "chatmond.yaml", read("conf", "chatmond.yaml"))
    for path in sorted(os.listdir(src("tests", "replay"))):
        if path.endswith(".yaml"):
            add("config", "replay-" + path, read("tests", "replay", path))
    unit = os.path.join("tests", "unit", "test_config.c")
    every = c_string(unit, "text", 0)
    add("config", "unit-every-key", every)
    rows = c_array_rows(unit, "bad_cases")
    for r in spread(rows, 10):
        add("config", "unit-bad-" + r[0].decode(errors="replace"), r[1])
    # overrides: after the file, NUL-separated
    ov = c_array_rows(unit, "bad_overrides")
    good_ov = [b"listen=127.0.0.1:2222", b"protocol.end_types=[end,close]",
               b"limits={max_message: 64KiB}", b"admin=[::1]:9999",
               b"redis.channel='quoted'", b"sla.escalate=1h", b"agent_id=query:who"]
    add("config", "override-good", read("conf", "chatmond.yaml") + b"\0" + b"\0".join(good_ov))
    add("config", "override-defaults", b"\0sla.profile=taobao\0sla.hours=[08:00-23:00]")
    for r in spread(ov, 6):
        add("config", "override-bad-" + r[0].decode(errors="replace"),
            b"listen: 127.0.0.1:1111\n\0" + r[0])


def detect_turns(turns):
    """fuzz_detect's input: a line a turn, its first byte bit 0 the role
    (1 the customer's) and bits 1- the conversation."""
    out = b""
    for conv, role, text in turns:
        out += bytes([conv << 1 | (role == "customer")]) + text.encode() + b"\n"
    return out


def detect_seeds(msgs):
    # test_detect.c's splits: a word, a numeral, a literal over a short
    # turn, a long gap at the junction, the emoji view
    splits = {
        "contact": ["亲，加", "我微", "信abc123"],
        "numeral": ["电话是一三", "八一二三四五六七"],
        "short-turn": ["仓库里没", "有", "了"],
        "long-gap": ["加我。。。。", "！！vabc"],
        "emoji-view": ["给个好评", "\U0001f9e7"],
        "clean": ["亲，您好，这款保温杯是304不锈钢的", "今天下单明天发货哦", "放心吧，没有问题"],
    }
    for name, texts in splits.items():
        add("detect", "split-" + name, detect_turns([(0, "agent", t) for t in texts]))
    # the corpus's lines, three at a time, each cut in two at its middle
    # character and dealt to two conversations by their own roles
    for i, k in enumerate(range(0, len(msgs) - 2, len(msgs) // 12)):
        turns = []
        for j, m in enumerate(msgs[k:k + 3]):
            t = m["text"]
            for part in (t[:len(t) // 2], t[len(t) // 2:]):
                turns.append((j % 2, m.get("role", "agent"), part))
        add("detect", "corpus-%02d" % i, detect_turns(turns))


# fuzz_jwt: "\x01 SEL HEADER \0 CLAIMS" is signed by the harness (SEL bits 0-1:
# the secret, RSA, EC, the second EC key; bit 2: ES256 in DER)
JWT_CLAIMS = '{"sub":"alice","aud":"chatmon","iss":"https://idp.example","iat":1700000000,"exp":1700000300}'
# the public half of the harness's second EC key, as a JWK
JWT_EC2_X = "yqTJMnIR37RVwfSE-KXbXJBBYAV1QAAcDouxddkTylE"
JWT_EC2_Y = "CUvCZNO34WBVCp8HwLl9FIDcLxSgMErSsrV73N40erU"
JWT_EC_PEM = ("-----BEGIN PUBLIC KEY-----\n"
              "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEy/NAX/1D378Zh6xsAFsWsouRwE9R\n"
              "942p9mIH9wWOgj2sF16frazyvMY9zZYAgH3oJ8X2YSYuPwMgQLiTFAnXxA==\n"
              "-----END PUBLIC KEY-----\n")


def b64url(b):
    import base64
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_seeds():
    def signed(name, sel, hdr, claims=JWT_CLAIMS):
        add("jwt", "signed-" + name, bytes([1, sel]) + hdr.encode() + b"\0" + claims.encode())
    signed("hs", 0, '{"alg":"HS256","typ":"JWT"}')
    signed("rs-kid", 1, '{"alg":"RS256","kid":"rsa-1"}',
           '{"sub":"alice","agent":"a-1","aud":["x","chatmon"],"iss":"https://idp.example",'
           '"exp":1700000300.5,"nbf":1699999999}')
    signed("es-kid", 2, '{"alg":"ES256","kid":"ec-1"}', '{"sub":"bob","exp":1700000000,"nbf":1700000030}')
    signed("es2-nokid", 3, '{"alg":"ES256"}', '{"sub":"a-long-agent-id","exp":1700000060}')
    signed("es-der", 6, '{"alg":"ES256"}', '{"sub":"alice","exp":1800000000}')
    signed("hs-kid-wrong", 0 | 8, '{"alg":"HS256","kid":"rsa-1","crit":[]}')
    signed("alg-mismatch", 1, '{"alg":"HS256"}')
    signed("crit", 0, '{"alg":"HS256","crit":["exp"]}')
    signed("none", 0, '{"alg":"nOnE"}')
    signed("dup", 0, '{"alg":"HS256","alg":"HS256"}')
    signed("claims-bad", 0, '{"alg":"HS256"}', '{"sub":"","exp":"soon","aud":7}')
    # tokens as they arrive, unsigned by us
    add("jwt", "token-none", b64url(b'{"alg":"none"}') + "." + b64url(JWT_CLAIMS.encode()) + ".")
    add("jwt", "token-hs", b64url(b'{"alg":"HS256","kid":"hs-1"}') + "." +
        b64url(JWT_CLAIMS.encode()) + "." + b64url(bytes(32)))
    add("jwt", "token-es", b64url(b'{"alg":"ES256"}') + "." + b64url(JWT_CLAIMS.encode()) + "." +
        b64url(bytes(range(64))))
    add("jwt", "token-jwe", "a.b.c.d.e")
    # key files (public only)
    add("jwt", "key-ec.pem", JWT_EC_PEM)
    add("jwt", "key-secret", "openssl-rand-base64-48-made-for-the-fuzz-seeds-only\n")
    add("jwt", "key-short", "short\n")
    add("jwt", "key-jwks", json.dumps({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec-2", "x": JWT_EC2_X, "y": JWT_EC2_Y},
        {"kty": "oct", "kid": "hs-1", "alg": "HS256", "k": b64url(b"k" * 40)},
        {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}]}, separators=(",", ":")))
    add("jwt", "key-jwks-private", '{"keys":[{"kty":"oct","k":"AAAA","d":"x"}]}')
    add("jwt", "key-cert", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")


def doc_alerts():
    """The example alerts of docs/alerts.md, one a line."""
    return [l for l in read("docs", "alerts.md").decode().splitlines() if l.startswith('{"v":')]


def alertline_seeds():
    for i, a in enumerate(doc_alerts()):
        add("alertline", "doc-%d" % i, a)
    add("alertline", "unit-hit", c_string(os.path.join("tests", "unit", "test_alertline.c"), "HIT"))
    add("alertline", "controls", json.dumps({
        "ts": "2025-03-04T10:00:06Z", "type": "rule.hit", "severity": "warn",
        "agent": "a\u202eb", "conversation": "c\x1b[2J", "shop": "s\n", "queue": "q\x85",
        "category": "privacy", "rule": "ask_phone", "action": "warn", "role": "customer",
        "text": "\t\r\n\x00\x7f\u2066亲" * 3, "matched": "亲", "count": -1}, ensure_ascii=False))
    add("alertline", "long-window", json.dumps({
        "ts": "1999-12-31T23:59:59Z", "type": "rule.hit", "severity": "info",
        "text": "字" * 200 + "加我微信" + "x" * 200, "match": {"start": 200, "end": 204},
        "hits": [{}, {"category": "stock", "rule": "stock.none", "action": "flag"}, 3]},
        ensure_ascii=False))
    add("alertline", "sla-odd", '{"ts":"9999-99-99T99:99:99Z","type":"sla.","waited_ms":-5,'
        '"threshold_ms":18446744073709551615,"first":true,"count":9223372036854775807}')
    add("alertline", "unknown", '{"type":"x.y","message":"m","severity":"严重","agent":""}')


def pushmsg_seeds():
    alerts = doc_alerts()
    for i, a in enumerate(alerts):
        add("pushmsg", "doc-%d" % i, a)
    add("pushmsg", "doc-burst", "\n".join(alerts * 2))
    add("pushmsg", "template", alerts[0] + "\0" +
        "{severity_zh}|{category_zh}|{agent}|{conversation}|{waited}|{time}|{link}|{id}|{nope}|{unclosed")
    add("pushmsg", "markdown-agent", json.dumps({
        "id": "1795341605000-8ebe0f0b-0000000002", "ts": "2026-11-22T10:00:05.000Z",
        "type": "rule.hit", "severity": "critical", "agent": "客服小王", "rule": "stock.none",
        "conversation": "c1\n\n### [请立即复核](https://x)" + "<" * 120, "category": "stock",
        "hits": [{"category": "offplatform"}], "message": "\u0000"}, ensure_ascii=False))
    add("pushmsg", "answer-dingtalk", '{"errcode":130101,"errmsg":"send too fast"}')
    add("pushmsg", "answer-feishu", '{"StatusCode":0,"code":9499}')
    add("pushmsg", "retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")


def main():
    msgs = messages()
    jwt_seeds()
    alertline_seeds()
    pushmsg_seeds()
    detect_seeds(msgs)
    codec_seeds(msgs)
    normalize_seeds(msgs)
    acm_seeds(msgs)
    rules_seeds(msgs)
    config_seeds()
    for harness, files in sorted(seeds.items()):
        d = os.path.join(OUT, harness)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in sorted(files.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("%s: %d seeds, %d bytes" % (d, len(files), sum(map(len, files.values()))))


if __name__ == "__main__":
    main()
