"""The demo: tools/demo_backend.py (simulated buyers from tools/demo_scenario.yaml,
and the agent workbench page over HTTP) with the real chatmond in front of it.

The scenario file loads, a bad one is refused with FILE:LINE: reason; the
backend serves the page, /config.json and the chat protocol (buyers talk,
nudge, leave; an agent message with an id is acknowledged, a blocked one
never is) and exits 0 on SIGTERM; chatmond's own frames are text frames; and
in a real browser (headless Chromium), the workbench page through chatmond
shows several buyers' messages, a blocked reply as not sent with its red
note, a warned reply delivered with a yellow note, and SLA countdowns that
turn amber and red. Screenshots (workbench.png for the README,
workbench-sla.png) go to $CHATMON_SCREENSHOTS (default build/screenshots)."""

import asyncio
import json
import os
import re
import signal
import subprocess
import time

import pytest
import websockets

from conftest import (DEFAULT_RULES, PYTHON, ROOT, SLOW, T, LineReader, agent, free_port,
                      http_get, recv, run, screenshot, wait_for)

DEMO = os.path.join(ROOT, "tools", "demo_backend.py")
SCENARIO = os.path.join(ROOT, "tools", "demo_scenario.yaml")
CSP = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'"

# the default rule pack: one phrase it blocks, one it only warns about
BLOCKED = "加我微信 abc12345"          # offplatform.* (action: block)
BLOCKED_REPLY = "亲,加我微信 abc12345,发您实拍图"
WARNED = "这个我也不太清楚"             # etiquette.dont_know (action: warn)
CLEAN = "亲,在的,请问有什么可以帮您?"


class Demo:
    """One tools/demo_backend.py process; its stdout lines are kept."""

    def __init__(self, *args, port=None):
        self.port = port or free_port()
        self.proc = subprocess.Popen([PYTHON, DEMO, "--listen", f"127.0.0.1:{self.port}", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, encoding="utf-8")
        self.out = LineReader(self.proc.stdout)
        self.thread = self.out.thread
        self.wait_line(r"^demo_backend: listening on ", 10 * SLOW)

    def output(self):
        return self.out.output()

    def wait_line(self, pattern, timeout=T):
        rx = re.compile(pattern)

        def found():
            if self.proc.poll() is not None and not self.thread.is_alive():
                raise AssertionError(f"demo_backend exited with {self.proc.returncode}:\n"
                                     f"{self.proc.stderr.read()}\n" + "\n".join(self.output()))
            return next((ln for ln in self.output() if rx.search(ln)), None)
        return wait_for(found, timeout, f"demo_backend line {pattern!r}; got:\n" +
                        "\n".join(self.output()[-20:]))

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        """SIGTERM (SIGKILL after 5 s); the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.thread.join(5)
        self.proc.stderr.close()
        return self.proc.returncode


@pytest.fixture
def demo():
    """demo(*args, port=None) starts tools/demo_backend.py; all are stopped at teardown."""
    started = []

    def start(*args, port=None):
        d = Demo(*args, port=port)
        started.append(d)
        return d
    yield start
    for d in started:
        d.stop()


def check(path):
    return subprocess.run([PYTHON, DEMO, "--scenario", str(path), "--check"],
                          capture_output=True, text=True, timeout=30)


def write(tmp_path, text, name="scenario.yaml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p




# --------------------------------------------------------------------------
# The scenario file


def test_scenario_loads():
    r = check(SCENARIO)
    assert r.returncode == 0, r.stderr
    m = re.search(r": ok: (\d+) buyers, (\d+) steps", r.stdout)
    assert m and int(m.group(1)) >= 10, r.stdout
    # the situations the brief and the seeds call for are all there
    for needle in ("售前", "发票", "退货", "质量问题", "差评", "催回复", "物流"):
        assert needle in r.stdout, (needle, r.stdout)
    text = open(SCENARIO, encoding="utf-8").read()
    assert text.startswith("# "), "the format is documented at the top"
    for needle in ("在吗", "七天无理由", "差评", "发票", "nudge:", "give_up:", "react:"):
        assert needle in text, needle


BAD = [
    # (file content, line, what the message says)
    ("buyers:\n  - id: a\n    name: 买家\n    steps:\n      - say: 在吗\n      - sya: 在吗\n",
     6, "unknown step 'sya'"),
    ("buyers:\n  - id: a\n    name: 买家\n    steps:\n      - say: [在吗, 人呢\n",
     6, "not valid YAML"),
    ("buyers:\n  - id: a\n    name: 买家\n    steps:\n      - say: 在吗\n"
     "      - wait:\n          patience: soon\n", 7, "wait.patience must be a number"),
    ("settings:\n  start: 2\n  start: 3\nbuyers: []\n", 3, "duplicate key 'start'"),
    ("buyers:\n  - id: a\n    name: 买家\n    steps: [end]\n", 4, "never says anything"),
    ("buyers:\n  - id: a\n    name: x\n    steps:\n      - say: hi\n"
     "  - id: a\n    name: y\n    steps:\n      - say: hi\n", 6, "already used on line 2"),
    ("buyers:\n  - id: a\n    name: 买家\n    steps:\n      - say: 在吗\n      - nudge:\n"
     "          say: 在吗\n          every: 20\n          times: 3\n          timeout: later\n",
     10, "timeout must be leave or continue"),
    ("buyers:\n  - id: a\n    name: 买家\n    steps:\n      - say: 在吗\n      - wait:\n"
     "          patience: 9\n          react:\n            - match: '(('\n              say: 好\n",
     9, "bad regular expression"),
    ("settings:\n  order: random\nbuyers:\n  - id: a\n    name: 买家\n    steps: [{say: 在吗}]\n",
     2, "settings.order"),
    ("pauses:\n  think: [5, 1]\nbuyers:\n  - id: a\n    name: 买家\n    steps: [{say: 在吗}]\n",
     2, "MIN 5 is more than MAX 1"),
    ("buyers:\n  - id: a\n    steps:\n      - say: 在吗\n", 2, "'name' is missing"),
    ("buyers:\n  - id: a\n    name: 买家\n    steps:\n      - say: yes\n", 5, "must be text"),
]


@pytest.mark.parametrize("text,line,message", BAD, ids=[b[2] for b in BAD])
def test_scenario_errors(tmp_path, text, line, message):
    p = write(tmp_path, text, "bad.yaml")
    r = check(p)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    err = r.stderr.strip()
    assert err.startswith(f"demo_backend: {p}:{line}:"), err
    assert message in err, err
    assert "Traceback" not in err and err.count("\n") == 0, err


def test_scenario_error_refuses_to_serve(tmp_path):
    p = write(tmp_path, "buyers: 3\n", "bad.yaml")
    r = subprocess.run([PYTHON, DEMO, "--listen", f"127.0.0.1:{free_port()}", "--scenario", str(p)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and f"{p}:1: buyers must be a non-empty list" in r.stderr, r.stderr
    for text, message in (("", "the file is empty"), ("[1, 2]\n", "must be a mapping")):
        r = check(write(tmp_path, text, "bad2.yaml"))
        assert r.returncode == 2 and message in r.stderr, r.stderr
    r = check(tmp_path / "missing.yaml")
    assert r.returncode == 2 and "cannot read" in r.stderr, r.stderr


# --------------------------------------------------------------------------
# The backend: page, config, protocol


def test_serves_page_and_config(demo):
    d = demo("--chatmond", "ws://127.0.0.1:18080/", "--first-response", "7", "--reply", "20.5",
             "--warn-at", "0.5", "--timezone=-05:30")
    for path, ctype, needle in (("/", "text/html", b'src="/workbench.js"'),
                                ("/index.html", "text/html", b"<!DOCTYPE html>"),
                                ("/workbench.js", "text/javascript", b"chatmon.warning"),
                                ("/workbench.css", "text/css", b".countdown"),
                                ("/favicon.svg", "image/svg+xml", b"<svg"),
                                ("/?agent=bob&chatmond=ws://x/", "text/html", b"id=\"convs\"")):
        status, headers, body = http_get(d.url(path))
        assert status == 200, (path, status, body[:200])
        assert headers["Content-Type"].startswith(ctype), (path, headers["Content-Type"])
        assert headers["Content-Security-Policy"] == CSP, path
        assert needle in body, path
    status, headers, body = http_get(d.url("/config.json"))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"chatmond": "ws://127.0.0.1:18080/", "first_response_ms": 7000,
                                "reply_ms": 20500, "warn_at": 0.5, "tz_offset_min": -330}
    status, _, _ = http_get(d.url("/nothing-here"))
    assert status == 404
    status, _, _ = http_get(d.url("/../tools/demo_backend.py"))
    assert status == 404
    # the defaults are chatmond's
    d2 = demo()
    assert json.loads(http_get(d2.url("/config.json"))[2]) == {
        "chatmond": "ws://127.0.0.1:8080/", "first_response_ms": 15000, "reply_ms": 30000,
        "warn_at": 0.8, "tz_offset_min": 480}
    # the page obeys its own CSP: no inline script or style, no innerHTML
    html = http_get(d.url("/"))[2].decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert not re.search(r"\sstyle=|<style|\son[a-z]+=", html), "inline style or handler"
    js = http_get(d.url("/workbench.js"))[2].decode()
    assert not re.search(r"\.(?:inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", js)
    # SIGTERM: a clean exit
    assert d.stop() == 0 and d.output()[-1] == "demo_backend: stopped", d.output()


SMALL = """\
settings:
  start: 1
  max_open: 1
  start_gap: 0.1
  arrival: 0.1
  order: in_order
pauses:
  think: 0.2
  type_per_char: 0.01
  burst: 0.1
buyers:
  - id: ask
    name: 测试买家
    label: 售前 · 测试
    steps:
      - say: 在吗
      - wait: 30
      - say: 这款有货吗?
      - wait: 30
      - end: 好的,谢谢
  - id: nudger
    name: 催催
    label: 售前 · 催回复
    steps:
      - say: 在吗
      - nudge:
          say:
            - 在吗?
            - 人呢?
          every: 0.4
          times: 2
          give_up: 算了
"""


def test_protocol_through_chatmond(tmp_path, daemon, demo):
    """An agent (a websockets client) through the real chatmond: the buyer's
    frames arrive, replies with an id are acknowledged, a blocked one is not,
    the buyer waits for a real answer, nudges, gives up; stdout has it all."""
    bport = free_port()
    d = daemon(bport, rules=DEFAULT_RULES)
    b = demo("--scenario", str(write(tmp_path, SMALL)), "--speed", "2", port=bport)

    async def frames(ws, want, timeout=T):
        """Frames until one of type want (returned last)."""
        got = []
        while True:
            f = json.loads(await recv(ws, timeout))
            got.append(f)
            if f["type"] == want:
                return got

    async def main():
        async with agent(d, "/?agent=alice") as ws:
            got = await frames(ws, "message")
            assert got[0]["type"] == "conversation", got
            conv = got[0]["conversation"]
            assert got[0]["buyer"] == "测试买家" and got[0]["label"] == "售前 · 测试", got
            assert got[-1] == {"type": "message", "conversation": conv, "text": "在吗",
                               "nick": "测试买家"}
            # blocked by chatmond: told at once, never reaches the buyer
            await ws.send(json.dumps({"type": "message", "conversation": conv,
                                      "text": BLOCKED, "id": "m-1"}, ensure_ascii=False))
            w = json.loads(await recv(ws))
            assert w["type"] == "chatmon.warning" and w["blocked"] is True, w
            assert w["alert"]["category"] == "offplatform" and w["alert"]["text"] == BLOCKED
            # a clean reply: acknowledged, and the buyer goes on
            await ws.send(json.dumps({"type": "message", "conversation": conv,
                                      "text": CLEAN, "id": "m-2"}, ensure_ascii=False))
            got = await frames(ws, "message")
            acks = [f for f in got if f["type"] == "delivered"]
            assert acks == [{"type": "delivered", "conversation": conv, "id": "m-2"}], got
            assert got[-1]["text"] == "这款有货吗?"
            # a warned reply: the warning, then the acknowledgement
            await ws.send(json.dumps({"type": "message", "conversation": conv,
                                      "text": WARNED, "id": "m-3"}, ensure_ascii=False))
            got = await frames(ws, "end", timeout=T + 5)
            kinds = [f["type"] for f in got]
            assert kinds.index("chatmon.warning") < kinds.index("delivered"), kinds
            w = got[kinds.index("chatmon.warning")]
            assert w["blocked"] is False and w["alert"]["rule"] == "etiquette.dont_know", w
            assert {"type": "delivered", "conversation": conv, "id": "m-3"} in got
            assert any(f.get("text") == "好的,谢谢" for f in got), got
            assert got[-1] == {"type": "end", "conversation": conv}
            assert not any(f.get("id") == "m-1" for f in got if f["type"] == "delivered")
            # the next buyer arrives (max_open 1), nudges twice, gives up and leaves
            got = await frames(ws, "end", timeout=T + 10)
            texts = [f["text"] for f in got if f["type"] == "message"]
            assert texts == ["在吗", "在吗?", "人呢?", "算了"], got
            assert got[0]["type"] == "conversation" and got[0]["buyer"] == "催催", got
            # a message without an id is not acknowledged; one for an ended
            # conversation with an id is (the backend got it)
            await ws.send(json.dumps({"type": "message", "conversation": conv, "text": "亲"},
                                     ensure_ascii=False))
            await ws.send(json.dumps({"type": "message", "conversation": conv, "text": "亲,还在吗",
                                      "id": "m-4"}, ensure_ascii=False))
            got = await frames(ws, "delivered")
            assert got[-1]["id"] == "m-4", got

    run(main(), 60)
    out = "\n".join(b.output())
    assert re.search(r"^\[alice c-\d+\] 买家: 在吗$", out, re.M), out
    assert re.search(r"^\[alice c-\d+\] 客服: " + re.escape(CLEAN) + "$", out, re.M), out
    assert BLOCKED not in out, "a blocked message reached the backend"
    assert re.search(r"^\[alice c-\d+\] 系统: 买家等不及了,离开$", out, re.M), out


def test_a_frame_nested_too_deep_is_skipped_not_fatal(tmp_path, demo):
    """An agent's frame nested deeper than Python's JSON parser goes (it
    raises RecursionError, not ValueError) is logged and skipped like any
    other bad frame; the agent's session, and its buyers, stay."""
    d = demo("--scenario", str(write(tmp_path, SMALL)))
    deep = ('{"type":"message","conversation":"c-1","text":"ok","x":' + "[" * 1500 +
            "]" * 1500 + "}")

    async def main():
        async with websockets.connect(d.url("/?agent=bob").replace("http:", "ws:")) as ws:
            await ws.send(deep)
            pong = await ws.ping()
            await asyncio.wait_for(pong, T)
            f = json.loads(await asyncio.wait_for(ws.recv(), T))
            assert f["type"] in ("conversation", "message"), f
    run(main())
    d.wait_line(r"\(not a chat frame\)")
    assert not any("Traceback" in ln or "RecursionError" in ln for ln in d.output()), d.output()


def test_default_scenario_keeps_going(daemon, demo):
    """The real scenario through chatmond, fast: a few buyers at a time, each
    conversation opened before its first message, more arriving as others end."""
    bport = free_port()
    d = daemon(bport, rules=DEFAULT_RULES)
    demo("--speed", "40", "--seed", "7", port=bport)

    async def main():
        opened, ended, messages = set(), set(), 0
        async with agent(d, "/?agent=bob") as ws:
            deadline = time.monotonic() + 20 * SLOW
            while len(ended) < 4 and time.monotonic() < deadline:
                f = json.loads(await recv(ws, T))
                c = f.get("conversation")
                if f["type"] == "conversation":
                    opened.add(c)
                    assert f["buyer"] and f["label"], f
                elif f["type"] == "message":
                    assert c in opened, f
                    messages += 1
                    assert len(opened - ended) <= 5, (opened, ended)
                elif f["type"] == "end":
                    ended.add(c)
        return opened, ended, messages

    opened, ended, messages = run(main(), 40)
    assert len(ended) >= 4 and len(opened) >= 5 and messages >= 6, (opened, ended, messages)


SLA_SCENARIO = """\
settings:
  start: 1
  max_open: 1
  order: in_order
pauses:
  think: [1, 1.2]
  type_per_char: 0.01
buyers:
  - id: waiting
    name: 等回复的买家
    label: 售前 · 时效
    steps:
      - say: 在吗
      - wait: 60
      - say: 这款还有货吗?
      - wait: 60
"""


def sla_options(first, reply, warn_at):
    """chatmond's -o options for these SLA thresholds (seconds)."""
    return ["-o", f"sla.first_response={round(first * 1000)}ms",
            "-o", f"sla.reply={round(reply * 1000)}ms", "-o", f"sla.warn_at={warn_at}"]


def test_sla_warning_is_a_text_frame(tmp_path, daemon, demo):
    """chatmond's chatmon.warning frames are text frames, the SLA ones too, here
    after three backend frames (conversation, typing, message): an odd count of
    backend frames before an injected one once made chatmond send it as binary
    (fixed in c5d4d33)."""
    bport = free_port()
    d = daemon(bport, rules=DEFAULT_RULES, args=["-o", "sla.first_response=400ms"])
    demo("--scenario", str(write(tmp_path, SLA_SCENARIO)), port=bport)

    async def main():
        got = []                      # (frame or alert type, sent as text)
        async with agent(d, "/?agent=dave") as ws:
            while not got or got[-1][0] != "sla.breach":
                data = await recv(ws)
                f = json.loads(data)
                kind = f["alert"]["type"] if f["type"] == "chatmon.warning" else f["type"]
                got.append((kind, isinstance(data, str)))
        return got
    got = run(main(), 30)
    assert [k for k, _ in got] == ["conversation", "typing", "message", "sla.warn",
                                   "sla.breach"], got
    assert all(text for _, text in got), f"binary frames: {got}"


# --------------------------------------------------------------------------
# The workbench page in a real browser


def page_state(driver):
    """What the page shows, read in one script (no stale elements)."""
    return driver.execute_script("""
        const q = (s, r) => Array.from((r || document).querySelectorAll(s));
        const status = document.getElementById('status');
        const timer = document.getElementById('chat-timer');
        return {
          status: status.dataset.state, binary: +status.dataset.binary,
          timer: {state: timer.dataset.state, text: timer.textContent},
          wait: document.getElementById('info-wait').textContent,
          convs: q('#convs .conv').map(li => ({
            id: li.dataset.conversation, unread: +li.dataset.unread,
            name: li.querySelector('.conv-name b').textContent,
            label: li.querySelector('.conv-name .tag').textContent,
            ended: li.dataset.ended === 'true', selected: li.classList.contains('selected'),
            countdown: li.querySelector('.countdown').dataset.state,
            open: li.querySelector('.countdown').dataset.open === 'true',
            text: li.querySelector('.countdown').textContent})),
          msgs: q('#messages .msg').map(m => {
            const r = m.parentElement.querySelector('.receipt');
            return {role: m.dataset.role, state: m.dataset.state || null, id: m.dataset.id || null,
                    text: m.textContent, receipt: r ? r.textContent : null};
          }),
          notes: q('#messages .note').map(n => ({kind: n.dataset.kind, rule: n.dataset.rule || null,
                                                 category: n.dataset.category || null,
                                                 type: n.dataset.type || null, text: n.textContent})),
          reply: document.getElementById('reply').disabled,
        };""")


def until(driver, pred, what, timeout=10):
    """page_state(driver) once pred(state) is true, within timeout (scaled)."""
    last = {}

    def ok():
        last["s"] = page_state(driver)
        return pred(last["s"])
    try:
        wait_for(ok, timeout * SLOW, what, poll=0.1)
    except AssertionError as e:
        raise AssertionError(f"{e}\npage: {json.dumps(last.get('s'), ensure_ascii=False)[:3000]}")
    return last["s"]


def type_reply(driver, text):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    box = driver.find_element(By.ID, "reply")
    box.clear()
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def select(driver, conv):
    from selenium.webdriver.common.by import By
    driver.find_element(By.CSS_SELECTOR, f'#convs .conv[data-conversation="{conv}"]').click()
    return until(driver, lambda s: any(c["selected"] and c["id"] == conv and c["unread"] == 0
                                       for c in s["convs"]), f"conversation {conv} selected, read")


def rgb(driver, selector, prop):
    """The computed colour of the first element matching selector, read in one
    script: the page redraws its lists every second, so an element looked up
    first and read later can be gone (a stale element) by the time it is read."""
    value = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? getComputedStyle(e).getPropertyValue(arguments[1]) : null;", selector, prop)
    assert value, f"nothing on the page matches {selector}"
    return tuple(int(x) for x in re.findall(r"\d+", value)[:3])


def agent_states(s):
    return [m["state"] for m in s["msgs"] if m["role"] == "agent"]


def test_workbench_page(tmp_path, daemon, demo, browser):
    """The page through the real chatmond in front of the demo backend (the real
    scenario, five buyers at once, short SLAs): buyers' messages arrive, a clean
    reply is delivered, a warned one is delivered with a yellow note, a blocked
    one is marked not sent with its red note and never reaches the buyer; the
    countdowns turn amber and red; then the screenshot workbench.png."""
    from selenium.webdriver.common.by import By
    scenario = open(SCENARIO, encoding="utf-8").read()
    assert "\n  start: 3\n" in scenario
    scenario = write(tmp_path, scenario.replace("\n  start: 3\n", "\n  start: 5\n"))
    first, reply, warn_at = 6, 10, 0.5
    bport = free_port()
    d = daemon(bport, rules=DEFAULT_RULES, args=sla_options(first, reply, warn_at))
    b = demo("--scenario", str(scenario), "--speed", "6", "--seed", "3",
             "--chatmond", f"ws://127.0.0.1:{d.port}/", "--first-response", str(first),
             "--reply", str(reply), "--warn-at", str(warn_at), port=bport)
    browser.get(b.url("/?agent=alice"))
    assert "客服工作台" in browser.title
    until(browser, lambda s: s["status"] == "open", "connected to chatmond")
    b.wait_line(r"^\[alice\] connected on /\?agent=alice")
    # a buyer writes; the first conversation is selected by itself
    s = until(browser, lambda s: any(m["role"] == "customer" for m in s["msgs"]),
              "a buyer's message in the selected conversation")
    assert s["convs"] and s["convs"][0]["selected"] and not s["reply"], s
    first_id = s["convs"][0]["id"]
    names = re.findall(r"^    name: (.+)$", open(SCENARIO, encoding="utf-8").read(), re.M)
    assert s["convs"][0]["name"] in names and s["convs"][0]["label"], s["convs"]
    # clean: delivered
    type_reply(browser, CLEAN)
    s = until(browser, lambda s: any(m["text"] == CLEAN and m["state"] == "delivered"
                                     for m in s["msgs"]), "the clean reply delivered")
    assert not [n for n in s["notes"] if n["kind"] != "sla"], s["notes"]
    # warned: a yellow note, and the message is delivered all the same
    type_reply(browser, WARNED)
    s = until(browser, lambda s: any(n["kind"] == "warn" and n["rule"] == "etiquette.dont_know"
                                     for n in s["notes"])
              and any(m["text"] == WARNED and m["state"] == "delivered" for m in s["msgs"]),
              "the warn note and the delivered message")
    note = next(n for n in s["notes"] if n["kind"] == "warn")
    assert "服务用语" in note["text"] and "不太清楚" in note["text"], note
    assert "我帮您确认一下" in note["text"], note      # the rule's coaching text
    assert "etiquette." not in note["text"], note     # names for the agent, never rule ids
    r, g, bl = rgb(browser, '#messages .note[data-kind="warn"]', "background-color")
    assert r > 240 and g > 230 and bl < 235, f"the warn note is not yellow: {(r, g, bl)}"
    # blocked: marked not sent, with one block note (for all the rules it broke)
    type_reply(browser, BLOCKED_REPLY)
    # one warning for the message, every rule it broke in the one note
    s = until(browser, lambda s: any(m["state"] == "blocked" for m in s["msgs"])
              and any(n["kind"] == "block" and "offplatform.add_contact_app" in
                      n["rule"].split() for n in s["notes"]),
              "the blocked message and its note")
    m = [m for m in s["msgs"] if m["state"] == "blocked"]
    assert len(m) == 1 and m[0]["text"] == BLOCKED_REPLY, s
    assert m[0]["receipt"] == "未发送", m
    blocks = [n for n in s["notes"] if n["kind"] == "block"]
    assert len(blocks) == 1 and "offplatform" in blocks[0]["category"].split(), blocks
    assert "站外引流" in blocks[0]["text"] and "平台规定" in blocks[0]["text"], blocks
    assert "offplatform.add_contact_app" in blocks[0]["rule"].split(), blocks
    assert "offplatform." not in blocks[0]["text"], blocks
    # times in sla.timezone (the backend's default, +08:00), and the page says so
    assert "时间 UTC+08:00" in browser.find_element(By.ID, "sla-info").text
    r, g, bl = rgb(browser, '#messages .msg[data-state="blocked"]', "color")
    assert r > 140 and g < 80 and bl < 80, f"the blocked message is not red: {(r, g, bl)}"
    # the other buyers: listed, with unread marks; answer one of them
    s = until(browser, lambda s: len(s["convs"]) >= 4 and
              any(c["unread"] and not c["ended"] for c in s["convs"]),
              "four conversations, one with unread messages")
    other = next(c for c in s["convs"] if c["unread"] and not c["ended"])
    s = select(browser, other["id"])
    assert any(m["role"] == "customer" for m in s["msgs"]), s
    SORRY = "亲,非常抱歉让您久等了,我马上为您查看。"
    type_reply(browser, SORRY)
    until(browser, lambda s: any(m["text"] == SORRY and m["state"] == "delivered"
                                 for m in s["msgs"]), "delivered")
    # that reply went through chatmond and the backend after the blocked one: had
    # the blocked one got there, it would have been printed and acknowledged first
    b.wait_line(r"^\[alice c-\d+\] 客服: " + re.escape(SORRY) + "$")
    out = "\n".join(b.output())
    assert WARNED in out and CLEAN in out and "abc12345" not in out, out
    # back to the first one: still delivered, delivered, not sent
    s = select(browser, first_id)
    assert agent_states(s) == ["delivered", "delivered", "blocked"], s["msgs"]
    # a reply being typed, while buyers wait: amber and red countdowns at once
    browser.find_element(By.ID, "reply").send_keys("亲,我帮您确认一下,请稍等哦")
    def colours(s):
        states = [c["countdown"] for c in s["convs"]]
        return states.count("breach") >= 2 and states.count("warn") >= 1
    s = until(browser, colours, "two red countdowns and an amber one at once", 40)
    cd = {c["countdown"]: c for c in s["convs"]}
    assert cd["breach"]["open"] and re.fullmatch(r"超时 [1-9]\d*s", cd["breach"]["text"]), cd
    assert cd["warn"]["open"] and re.fullmatch(r"\d+s", cd["warn"]["text"]), cd
    # scrolled up a little, as an agent would, to show the warned reply too
    browser.execute_script("""
        const m = Array.from(document.querySelectorAll('#messages .msg')).find(
            m => m.textContent === arguments[0]);
        m.closest('.row').scrollIntoView({block: 'start'});""", WARNED)
    r, g, bl = rgb(browser, '#convs .countdown[data-state="warn"]', "background-color")
    assert r > 240 and g > 200 and bl < 220, f"the amber countdown: {(r, g, bl)}"
    r, g, bl = rgb(browser, '#convs .countdown[data-state="breach"]', "background-color")
    assert r > 200 and g < 100 and bl < 100, f"the red countdown: {(r, g, bl)}"
    path = screenshot(browser, "workbench.png")
    assert os.path.getsize(path) > 20000
    # what is on the screen in the screenshot: the first conversation, its notes
    s = page_state(browser)
    assert any(c["selected"] and c["id"] == first_id for c in s["convs"]), s["convs"]
    assert {"warn", "block"} <= {n["kind"] for n in s["notes"]}, s["notes"]
    assert s["binary"] == 0, "chatmond sent binary frames"


def test_workbench_sla_countdown(tmp_path, daemon, demo, browser):
    """Short SLAs (chatmond and the page alike; the page finds chatmond from
    ?ws=): unanswered, the countdown turns amber at warn_at x the threshold and
    red at it, with chatmond's sla.warn and sla.breach notes; the reply closes
    the round; the next round is judged against the reply threshold."""
    first, reply, warn_at = 3, 4, 0.5
    bport = free_port()
    d = daemon(bport, rules=DEFAULT_RULES, args=sla_options(first, reply, warn_at))
    # no --chatmond: /config.json names a wrong one, ?ws= wins
    b = demo("--scenario", str(write(tmp_path, SLA_SCENARIO)), "--first-response", str(first),
             "--reply", str(reply), "--warn-at", str(warn_at), port=bport)
    browser.get(b.url(f"/?agent=carol&ws=ws://127.0.0.1:{d.port}/"))
    s = until(browser, lambda s: any(m["role"] == "customer" for m in s["msgs"]), "the buyer's 在吗")
    cd = s["convs"][0]
    assert cd["open"] and cd["countdown"] == "ok", cd
    assert s["wait"].endswith(" / 3s") and s["timer"]["text"].startswith("首次响应剩余"), s
    s = until(browser, lambda s: s["convs"][0]["countdown"] == "warn", "amber", 5)
    assert s["convs"][0]["open"] and int(s["convs"][0]["text"].rstrip("s")) <= 2, s["convs"]
    assert s["timer"]["state"] == "warn", s["timer"]
    s = until(browser, lambda s: s["convs"][0]["countdown"] == "breach", "red", 5)
    assert re.fullmatch(r"超时 [1-9]\d*s", s["convs"][0]["text"]), s["convs"][0]
    assert s["timer"]["state"] == "breach" and "已超时" in s["timer"]["text"], s["timer"]
    r, g, bl = rgb(browser, "#convs .conv .countdown", "background-color")
    assert r > 200 and g < 100 and bl < 100, f"the countdown is not red: {(r, g, bl)}"
    # chatmond's own warnings, as notes
    s = until(browser, lambda s: {n["type"] for n in s["notes"] if n["kind"] == "sla"}
              >= {"sla.warn", "sla.breach"}, "the sla.warn and sla.breach notes")
    assert any("响应超时" in n["text"] and "首次响应标准 3 秒" in n["text"]
               for n in s["notes"] if n["type"] == "sla.breach"), s["notes"]
    screenshot(browser, "workbench-sla.png")
    # the reply closes the round
    type_reply(browser, CLEAN)
    s = until(browser, lambda s: not s["convs"][0]["open"] and s["convs"][0]["countdown"] == "ok",
              "the round closed")
    assert s["convs"][0]["text"] == "已回复", s["convs"][0]
    # the buyer's next message opens a round against the reply threshold
    s = until(browser, lambda s: s["convs"][0]["open"], "the next round", 5)
    assert s["wait"].endswith(" / 4s") and s["timer"]["text"].startswith("回复剩余"), s
    s = until(browser, lambda s: s["convs"][0]["countdown"] == "breach", "red again", 8)
    s = until(browser, lambda s: sum(1 for n in s["notes"] if n["type"] == "sla.breach") == 2,
              "chatmond's second breach")
    assert "回复标准 4 秒" in [n for n in s["notes"] if n["type"] == "sla.breach"][-1]["text"], s
    assert s["binary"] == 0, "chatmond sent binary frames"


def whispers(driver):
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('#messages .whisper')).map(w => ({
          id: w.dataset.id, from: w.dataset.from, state: w.dataset.state,
          text: w.querySelector('.whisper-body').textContent,
          title: w.querySelector('.whisper-title').textContent}));""")


def test_workbench_whisper_note(tmp_path, daemon, demo, browser, redis_server):
    """A supervisor's note (written to Redis as the dashboard writes it) reaches the
    page through chatmond: a 主管提示 box in the conversation it names, not a chat
    message; delivered on receipt, read once on screen; one box per id however
    often it comes; in a conversation not on screen it waits, unread, until the
    agent opens it. The backend never sees the note or the acks."""
    from selenium.webdriver.common.by import By
    from test_notes import following, send_note
    r = redis_server()
    c = r.client()
    bport = free_port()
    d = daemon(bport, rules=DEFAULT_RULES, redis=r.url(), args=sla_options(60, 60, 0.8))
    b = demo("--scenario", str(write(tmp_path, SLA_SCENARIO)), port=bport)
    following(d)
    browser.get(b.url(f"/?agent=carol&ws=ws://127.0.0.1:{d.port}/"))
    s = until(browser, lambda s: any(m["role"] == "customer" for m in s["msgs"]), "the buyer's 在吗")
    conv = s["convs"][0]["id"]
    nid = send_note(c, "carol", conv, "先别承诺退款,等我确认库存")
    key = f"chatmon:note:{nid}"
    wait_for(lambda: c.hget(key, "state") == "read", T, "the note read")
    w = whispers(browser)
    assert [(x["id"], x["from"], x["state"], x["text"]) for x in w] == \
        [(nid, "sup1", "read", "先别承诺退款,等我确认库存")], w
    assert "主管提示" in w[0]["title"]
    # not a chat message
    assert "先别承诺退款" not in " ".join(m["text"] for m in page_state(browser)["msgs"])
    assert c.hget(key, "delivered_at") and c.hget(key, "read_at")
    # the same note again (at least once delivery): still one box
    c.xadd("chatmon:notes:log", {"note": c.hget(key, "json")})
    other = send_note(c, "carol", "elsewhere", "这个买家是老客户")
    wait_for(lambda: c.hget(f"chatmon:note:{other}", "state") == "delivered", T,
             "the other note delivered")
    assert [x["id"] for x in whispers(browser)] == [nid]
    time.sleep(0.3)
    assert c.hget(f"chatmon:note:{other}", "state") == "delivered"   # not on screen
    s = until(browser, lambda s: any(x["id"] == "elsewhere" and x["unread"] for x in s["convs"]),
              "the other conversation listed, unread")
    screenshot(browser, "workbench-note.png")
    browser.find_element(By.CSS_SELECTOR, '#convs .conv[data-conversation="elsewhere"]').click()
    wait_for(lambda: c.hget(f"chatmon:note:{other}", "state") == "read", T, "read once opened")
    assert [(x["id"], x["state"]) for x in whispers(browser)] == [(other, "read")]
    out = "\n".join(b.output())
    assert "note_ack" not in out and "先别承诺退款" not in out and "老客户" not in out, out
