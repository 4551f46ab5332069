"""Supervisors acting on the page (issue 15; docs/dashboard.md, "Acting on
alerts (the page)"), in real headless Chromiums against a real
redis-server and a real `chatmon dashboard` with logins: what chatmond
would have written (alerts v2 in the stream, conversation history, the
waiting and agents documents, note acknowledgements) the tests write into
Redis themselves, as the shared contract says chatmond writes them.

- a supervisor acknowledges, assigns and marks a false positive on one
  page; a viewer's page (another browser, another login) sees each change
  live, and has no buttons; every hit of a grouped alert shows, strongest
  first; a v1 alert falls back to its one rule;
- unhandled criticals stay pinned until handled, and the tab title counts
  them;
- the conversation view: turns both ways, oldest first, nick, blocked
  turns, who waits (counting), the conversation's alerts; chat text shows
  as text, whatever it holds;
- a whisper note: in Redis as the contract says, then delivered and read
  on the page as chatmond's acknowledgements come;
- the at-a-glance strip; the opt-in beep and notification.
"""

import json
import subprocess
import time

import pytest

from conftest import CHATMON, CHROMEDRIVER, CHROMIUM, SLOW, browser_log, screenshot, wait_for
from test_demo import demo  # noqa: F401 (a fixture: the demo backend and its workbench page)

STREAM = "chatmon:alerts:log"
TZ_MIN = 480
SLA = "sla:\n  first_response: 10s\n  reply: 30s\n  warn_at: 0.8\n  escalate: 60s\n  timezone: \"+08:00\"\n"
INSTANCE = "9e1d2c3b"

# Runs before the page's script: records beeps and notifications (the page
# must not need either to work), changes nothing else.
PROBE = """
window.__probe = { beeps: 0, notes: [], asked: 0 };
const RealCtx = window.AudioContext;
if (RealCtx) {
  const make = RealCtx.prototype.createOscillator;
  RealCtx.prototype.createOscillator = function () { window.__probe.beeps++; return make.call(this); };
}
window.Notification = class {
  constructor(title, opts) { window.__probe.notes.push({ title, body: (opts || {}).body }); }
  close() {}
  static get permission() { return 'granted'; }
  static requestPermission() { window.__probe.asked++; return Promise.resolve('granted'); }
};
"""

ROWS = """
return [...document.querySelectorAll(arguments[0])].map((e) => Object.assign({}, e.dataset, {
  text: e.textContent,
  buttons: [...e.querySelectorAll('button[data-act]')].map((b) => b.dataset.act),
}));
"""


# ------------------------------------------------------------------ helpers

def js(drv, script, *args):
    return drv.execute_script(script, *args)


def rows(drv, selector):
    return js(drv, ROWS, selector)


def until(drv, pred, what, timeout=10):
    return wait_for(lambda: pred(drv), timeout * SLOW, what, poll=0.1)


def text_of(drv, selector):
    return js(drv, "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
              selector)


def shown(drv, id_):
    return js(drv, "const e = document.getElementById(arguments[0]); return !!e && !e.hidden;", id_)


def fresh(drv, selector, act):
    """act(element) on what selector finds now: the page redraws rows as
    the feed brings news, so an element found a moment before may be gone
    (stale); then it is found again."""
    from selenium.common.exceptions import StaleElementReferenceException
    for attempt in range(5):
        try:
            return act(drv.find_element("css selector", selector))
        except StaleElementReferenceException:
            if attempt == 4:
                raise
            time.sleep(0.1)


def click(drv, selector):
    """A click, found and made in one step in the page: the waiting list is
    redrawn at each of the feed's messages (every 0.2 s here), faster than a
    find then a click through the driver can be sure of."""
    assert js(drv, "const e = document.querySelector(arguments[0]);"
                   "if (!e) return false; e.scrollIntoView({block: 'center'}); e.click(); return true;",
              selector), f"nothing to click at {selector}"


def type_into(drv, selector, text):
    fresh(drv, selector, lambda e: e.send_keys(text))


def ms(t=None):
    return int((time.time() if t is None else t) * 1000)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def alert_id(t, n):
    """As chatmond makes them: the alert's ms first (the dashboard prunes
    handling by it, contract section 4)."""
    return f"{ms(t)}-{INSTANCE}-{n:010d}"


def hit(rule, category, severity, action, start, end, matched, message):
    return {"rule": rule, "category": category, "severity": severity, "action": action,
            "match": {"start": start, "end": end}, "matched": matched, "message": message}


TEXT = "亲😊加我微信 abc123，不能开发票哦"
HITS = [hit("offplatform.add_contact_app", "offplatform", "critical", "block", 2, 6, "加我微信",
            "亲,平台规定只能在旺旺上沟通。"),
        hit("invoice.refuse", "invoice", "critical", "warn", 14, 19, "不能开发票",
            "发票是买家的权利，不能拒开。"),
        hit("etiquette.cold", "etiquette", "info", "flag", 19, 20, "哦", "注意语气")]


def rule_hit(t, n, conv, agent="小美", hits=None, severity="critical", v=2, text=TEXT):
    """A rule.hit alert: v2 with hits (top level = the strongest), or v1."""
    hits = hits if hits is not None else [dict(HITS[0], severity=severity)]
    top = hits[0]
    a = {"v": v, "id": alert_id(t, n), "ts": iso(t), "type": "rule.hit",
         "severity": top["severity"], "agent": agent, "conversation": conv, "role": "agent",
         "category": top["category"], "rule": top["rule"], "action": top["action"], "text": text,
         "match": top["match"], "matched": top["matched"], "message": top["message"]}
    if v == 2:
        a["hits"] = hits
    return a


def sla_alert(t, n, conv, kind="sla.escalate", agent="阿杰"):
    sev = {"sla.warn": "info", "sla.breach": "warn", "sla.escalate": "critical"}[kind]
    return {"v": 2, "id": alert_id(t, n), "ts": iso(t), "type": kind, "severity": sev,
            "agent": agent, "conversation": conv, "waited_ms": 60000, "threshold_ms": 30000,
            "first": False}


def xadd(c, a):
    return c.xadd(STREAM, {"alert": json.dumps(a, ensure_ascii=False)})


def handling(c, alert):
    raw = c.hget("chatmon:alerts:handling", alert)
    return json.loads(raw) if raw else None


def audit(c):
    return [json.loads(f["e"]) for _, f in c.xrange("chatmon:audit")]


USERS = {"bob": ("bob-pw 主管", "supervisor"), "alice": ("alice-pw", "viewer"),
         "carol": ("carol-pw", "supervisor")}


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users"
    for name, (password, role) in USERS.items():
        p = subprocess.run([CHATMON, "passwd", "-f", str(path), name, role], input=password + "\n",
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
    return path


def chrome(profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,800",
                "--lang=zh-CN", f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                        {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    drv.set_page_load_timeout(30 * SLOW)
    drv.set_script_timeout(30 * SLOW)
    return drv


@pytest.fixture
def browser2(tmp_path):
    """A second browser (its own profile, so its own login) beside `browser`;
    fails the test like `browser` when its page logged errors. conftest's
    teardown hook leaves its page before any fixture stops, as `browser`'s:
    a workbench page left open would reconnect to a stopped chatmond and log
    the refusal (seen once in CI)."""
    drv = chrome(tmp_path / "chromium-profile-2")
    try:
        yield drv
        entries = browser_log(drv)
        drv.get("about:blank")
    finally:
        drv.quit()
    severe = [e for e in entries if e.get("level") == "SEVERE"
              and not ("favicon" in e.get("message", "") and "404" in e.get("message", ""))]
    if severe:
        pytest.fail("the second browser logged errors:\n" +
                    "\n".join(f"  {e.get('message', '')}" for e in severe))


def login(drv, url, user):
    if not drv.__dict__.get("probed"):
        drv.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        drv.probed = True
    drv.get(url + "/")
    until(drv, lambda d: shown(d, "login"), "the login form")
    drv.find_element("id", "login-user").send_keys(user)
    drv.find_element("id", "login-password").send_keys(USERS[user][0])
    click(drv, "#login-submit")
    until(drv, lambda d: shown(d, "app") and
          js(d, "return document.getElementById('conn').dataset.state") == "live", f"{user} logged in")


def row(drv, where, id_):
    got = rows(drv, f'{where} .alert[data-id="{id_}"]')
    return got[0] if got else None


def state_of(drv, where, id_):
    r = row(drv, where, id_)
    return r["state"] if r else None


def pinned(drv):
    return [x["id"] for x in rows(drv, "#pinned .alert")]


def glance(drv):
    return js(drv, "return Object.fromEntries([...document.querySelectorAll('#glance .g')]"
                   ".map((g) => [g.id.slice(2), g.querySelector('.g-value').textContent]));")


def clock_s(text):
    s = 0
    for part in text.strip().split(":"):
        s = s * 60 + int(part)
    return s


def dashboard_with_logins(dashboard, r, users, extra=""):
    return dashboard(r.url(), extra=f"  users: {users}\n" + extra + SLA)


# ------------------------------------------------------------------ tests

def test_handled_on_one_page_seen_on_another(browser, redis_server, dashboard, users, browser2):
    r = redis_server()
    c = r.client()
    now = time.time() - 30
    grouped = rule_hit(now, 1, "c-501", hits=HITS)                   # three hits, one alert
    v1 = rule_hit(now + 1, 2, "c-502", agent="阿杰", severity="warn", v=1,
                  hits=[hit("stock.none", "stock", "warn", "warn", 0, 2, "没货", "先查库存再回复")],
                  text="没货了亲")
    crit = rule_hit(now + 2, 3, "c-503", agent="婷婷")
    for a in (grouped, v1, crit):
        xadd(c, a)
    dash = dashboard_with_logins(dashboard, r, users)
    bob, alice = browser, browser2
    login(bob, dash.url, "bob")
    login(alice, dash.url, "alice")
    for drv in (bob, alice):
        until(drv, lambda d: len(rows(d, "#alerts .alert")) == 3, "the three alerts")

    # every hit of the grouped alert, the strongest (the block) on top
    hits = js(bob, "return [...document.querySelectorAll(arguments[0])].map((h) => h.dataset.rule);",
              f'#alerts .alert[data-id="{grouped["id"]}"] .hits-list .hit')
    assert hits == [h["rule"] for h in HITS], hits
    g = row(bob, "#alerts", grouped["id"])
    assert (g["hits"], g["blocked"], g["category"]) == ("3", "true", "offplatform"), g
    assert "不能开发票" in g["text"] and "注意语气" in g["text"], g
    assert text_of(bob, f'#alerts .alert[data-id="{grouped["id"]}"] mark') == "加我微信"
    # the category filter finds it by any of its hits
    js(bob, "const s = document.getElementById('f-category'); s.value = 'invoice';"
            "s.dispatchEvent(new Event('change'));")
    until(bob, lambda d: [x["id"] for x in rows(d, "#alerts .alert")] == [grouped["id"]],
          "the invoice filter")
    js(bob, "const s = document.getElementById('f-category'); s.value = '';"
            "s.dispatchEvent(new Event('change'));")
    # a v1 alert: its one rule, no list
    one = row(bob, "#alerts", v1["id"])
    assert one["hits"] == "1" and one["category"] == "stock", one
    assert not js(bob, "return !!document.querySelector(arguments[0]);",
                  f'#alerts .alert[data-id="{v1["id"]}"] .hits-list')

    # buttons for the supervisor, none for the viewer, who sees the states
    assert row(bob, "#alerts", crit["id"])["buttons"] == ["ack", "assign", "resolve", "fp"]
    assert js(alice, "return document.querySelectorAll('button[data-act]').length;") == 0
    assert sorted(pinned(alice)) == sorted([grouped["id"], crit["id"]])

    # acknowledge on bob's page: alice's page changes, the alert leaves the pinned block
    click(bob, f'#alerts .alert[data-id="{grouped["id"]}"] .act-ack')
    until(alice, lambda d: state_of(d, "#alerts", grouped["id"]) == "acked", "acked on alice's page")
    until(alice, lambda d: pinned(d) == [crit["id"]], "only the other critical pinned")
    assert "bob" in text_of(alice, f'#alerts .alert[data-id="{grouped["id"]}"] .h-status')
    assert state_of(bob, "#alerts", grouped["id"]) == "acked"
    h = handling(c, grouped["id"])
    assert h["state"] == "acked" and h["by"] == "bob", h
    assert h["rules"] == [x["rule"] for x in HITS], h

    # assign, through the small form
    click(bob, f'#alerts .alert[data-id="{v1["id"]}"] .act-assign')
    form = f'#alerts .alert[data-id="{v1["id"]}"] .h-form'
    type_into(bob, form + " .h-input", "carol")
    click(bob, form + " .h-submit")
    until(alice, lambda d: state_of(d, "#alerts", v1["id"]) == "assigned", "assigned on alice's page")
    assert "carol" in text_of(alice, f'#alerts .alert[data-id="{v1["id"]}"] .h-status')
    until(bob, lambda d: not js(d, "return !!document.querySelector(arguments[0]);", form),
          "the form closed")

    # a false positive needs a reason: the form does not go without one
    click(bob, f'#pinned .alert[data-id="{crit["id"]}"] .act-fp')
    form = f'#pinned .alert[data-id="{crit["id"]}"] .h-form'
    click(bob, form + " .h-submit")
    time.sleep(0.5)
    assert handling(c, crit["id"]) is None and pinned(bob) == [crit["id"]]
    reason = "客户的原话 <b>不是</b> 引流"
    type_into(bob, form + " .h-input", reason)
    click(bob, form + " .h-submit")
    until(alice, lambda d: state_of(d, "#alerts", crit["id"]) == "false_positive", "the false positive")
    until(alice, lambda d: pinned(d) == [] and not shown(d, "pinned-block"), "nothing pinned")
    shown_reason = js(alice, "const e = document.querySelector(arguments[0]);"
                             "return [e.textContent, e.children.length];",
                      f'#alerts .alert[data-id="{crit["id"]}"] .h-reason')
    assert reason in shown_reason[0] and shown_reason[1] == 0, shown_reason     # text, not markup
    # handled: no acknowledging again, the rest may still change it
    assert row(bob, "#alerts", crit["id"])["buttons"] == ["assign", "resolve", "fp"]
    h = handling(c, crit["id"])
    assert h["state"] == "false_positive" and h["reason"] == reason, h
    what = [(e["what"], e.get("alert"), e.get("state"), e["who"]) for e in audit(c)]
    assert what == [("alert.state", grouped["id"], "acked", "bob"),
                    ("alert.state", v1["id"], "assigned", "bob"),
                    ("alert.state", crit["id"], "false_positive", "bob")], what

    # a page opened now gets the states with the history
    alice.refresh()
    until(alice, lambda d: state_of(d, "#alerts", crit["id"]) == "false_positive"
          and state_of(d, "#alerts", v1["id"]) == "assigned", "the states after a reload")
    screenshot(bob, "dashboard-actions.png")


def test_pinned_until_handled_and_the_title(browser, redis_server, dashboard, users):
    r = redis_server()
    c = r.client()
    now = time.time() - 60
    crits = [rule_hit(now + n, n, f"c-61{n}") for n in range(2)] + [sla_alert(now + 2, 2, "c-612")]
    warn = rule_hit(now + 3, 3, "c-613", severity="warn")
    for a in crits + [warn]:
        xadd(c, a)
    dash = dashboard_with_logins(dashboard, r, users)
    drv = browser
    login(drv, dash.url, "bob")
    newest_first = [a["id"] for a in reversed(crits)]
    until(drv, lambda d: pinned(d) == newest_first, "three criticals pinned, newest first")
    assert drv.title == "(3) 客服质检看板"
    assert glance(drv)["critical"] == "3"
    # pinned rows stay in the list below too, in their place
    assert [x["id"] for x in rows(drv, "#alerts .alert")] == [warn["id"]] + newest_first

    # resolved with a note: it leaves the pinned block, the title counts down
    target = crits[1]["id"]
    click(drv, f'#pinned .alert[data-id="{target}"] .act-resolve')
    form = f'#pinned .alert[data-id="{target}"] .h-form'
    type_into(drv, form + " .h-input", "已电话回访买家")
    click(drv, form + " .h-submit")
    until(drv, lambda d: target not in pinned(d), "the resolved one unpinned")
    assert pinned(drv) == [crits[2]["id"], crits[0]["id"]]
    until(drv, lambda d: d.title == "(2) 客服质检看板", "the title's count")
    assert glance(drv)["critical"] == "2"
    assert "已电话回访买家" in text_of(drv, f'#alerts .alert[data-id="{target}"] .h-note')
    assert state_of(drv, "#alerts", target) == "resolved"
    assert handling(c, target)["note"] == "已电话回访买家"

    # a new critical comes: pinned on top; a handling made elsewhere (another
    # supervisor's page, through the API) unpins it here
    fresh = rule_hit(time.time(), 9, "c-619", agent="大伟")
    xadd(c, fresh)
    until(drv, lambda d: pinned(d)[:1] == [fresh["id"]] and d.title == "(3) 客服质检看板",
          "the new critical pinned")
    js(drv, "document.getElementById('lang').click();")
    until(drv, lambda d: d.title == "(3) chatmon — supervisor dashboard", "the English title")
    js(drv, "document.getElementById('lang').click();")
    ack_elsewhere(dash, fresh["id"])
    until(drv, lambda d: fresh["id"] not in pinned(d) and d.title == "(2) 客服质检看板",
          "unpinned by carol's acknowledgement")
    assert "carol" in text_of(drv, f'#alerts .alert[data-id="{fresh["id"]}"] .h-status')
    # Redis refuses the write: the page says the server's reason, not
    # "cannot reach Redis" (it can), and the alert stays pinned
    c.config_set("min-replicas-to-write", "1")
    try:
        click(drv, f'#pinned .alert[data-id="{crits[0]["id"]}"] .act-ack')
        until(drv, lambda d: text_of(d, f'#pinned .alert[data-id="{crits[0]["id"]}"] .act-error'),
              "the refusal shown")
        said = text_of(drv, f'#pinned .alert[data-id="{crits[0]["id"]}"] .act-error')
        assert said.startswith("看板服务器暂时做不到：redis refused it, nothing was written"), said
        assert crits[0]["id"] in pinned(drv) and handling(c, crits[0]["id"]) is None
        assert "nothing was written" in dash.log()
    finally:
        c.config_set("min-replicas-to-write", "0")
    # Chromium logs the 503 itself: forgiven, that one only
    drv.chatmon_log[:] = [e for e in browser_log(drv) if not (
        e.get("level") == "SEVERE" and "503" in e.get("message", "") and
        f"/api/alerts/{crits[0]['id']}" in e.get("message", ""))]
    # everything handled: no count, no block
    for a in (crits[0], crits[2]):
        click(drv, f'#pinned .alert[data-id="{a["id"]}"] .act-ack')
        until(drv, lambda d, i=a["id"]: i not in pinned(d), "acknowledged")
    until(drv, lambda d: d.title == "客服质检看板" and not shown(d, "pinned-block"), "none pinned")
    assert glance(drv)["critical"] == "0"


def ack_elsewhere(dash, alert):
    """carol acknowledges through the API, as her own page would."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", dash.port, timeout=5 * SLOW)
    conn.request("POST", "/api/login", body=json.dumps({"user": "carol", "password": "carol-pw"}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 200
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    conn.request("POST", f"/api/alerts/{alert}", body=json.dumps({"state": "acked"}),
                 headers={"Content-Type": "application/json", "Cookie": cookie,
                          "Origin": dash.url})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 200 and body["handling"]["state"] == "acked", body
    conn.close()


def history(c, conv, turns, ttl_ms=86400000):
    """Contract section 2, as chatmond writes it: LPUSH (newest first), LTRIM, PEXPIRE."""
    key = f"chatmon:hist:{conv}"
    for t in turns:
        c.lpush(key, json.dumps(t, ensure_ascii=False))
    c.ltrim(key, 0, 49)
    c.pexpire(key, ttl_ms)


def waiting_doc(c, rounds, total=None):
    """An instance's waiting snapshot (docs/dashboard.md), in its index."""
    key = f"chatmon:waiting:{INSTANCE}"
    doc = {"v": 1, "instance": INSTANCE, "host": "cs-01", "pid": 4242, "ts": ms(),
           "total": len(rounds) if total is None else total, "rounds": rounds}
    c.set(key, json.dumps(doc, ensure_ascii=False), px=600000)
    c.zadd("chatmon:waiting", {key: ms() + 600000})


def test_conversation_and_notes(browser, redis_server, dashboard, users, browser2):
    r = redis_server()
    c = r.client()
    t0 = time.time() - 120
    # "/../" in the id: the page asks with ?id=, or it would be shown c-702 (found by review)
    conv = "c-701/../c-702"
    blocked = rule_hit(t0 + 30, 1, conv, text="加我微信 abc123 私聊", hits=[
        hit("offplatform.add_contact_app", "offplatform", "critical", "block", 0, 4, "加我微信",
            "亲,平台规定只能在旺旺上沟通。")])
    breach = sla_alert(t0 + 75, 2, conv, kind="sla.breach", agent="小美")
    other = rule_hit(t0 + 80, 3, "c-702", agent="阿杰")
    for a in (blocked, breach, other):
        xadd(c, a)
    nasty = "<img src=x onerror=\"window.__pwned=1\">还在吗\u202e？"
    turns = [
        {"ts": ms(t0), "role": "customer", "agent": "小美", "text": "在吗？这款有M码吗", "nick": "小王<script>"},
        {"ts": ms(t0 + 20), "role": "agent", "agent": "小美", "text": "亲，在的"},
        {"ts": ms(t0 + 30), "role": "agent", "agent": "小美", "text": blocked["text"],
         "blocked": True, "alert": blocked["id"]},
        {"ts": ms(t0 + 45), "role": "customer", "agent": "小美", "text": nasty, "nick": "小王<script>"},
        # the shop's robot, on the agent's side (review: it was drawn as the buyer's)
        {"ts": ms(t0 + 50), "role": "customer", "agent": "小美", "text": "亲,客服正在赶来",
         "robot": True, "nick": "小王<script>"},
        # a long turn kept cut: the page says so
        {"ts": ms(t0 + 55), "role": "agent", "agent": "小美", "text": "好" * 10, "cut": 90000},
    ]
    history(c, conv, turns)
    waiting_doc(c, [{"conversation": conv, "agent": "小美", "opened": ms(t0 + 45),
                     "waited_ms": 75000, "threshold_ms": 30000, "first": False, "state": "breach"}])
    dash = dashboard_with_logins(dashboard, r, users)
    bob, alice = browser, browser2
    login(bob, dash.url, "bob")
    login(alice, dash.url, "alice")
    until(bob, lambda d: len(rows(d, "#alerts .alert")) == 3, "the alerts")

    # an alert row opens its conversation
    click(bob, f'#alerts .alert[data-id="{blocked["id"]}"] .c-body')
    until(bob, lambda d: shown(d, "conv") and len(rows(d, "#conv-turns .turn")) == 6, "the turns")
    got = rows(bob, "#conv-turns .turn")
    assert [x["role"] for x in got] == ["customer", "agent", "agent", "customer", "robot",
                                        "agent"], got   # oldest first
    assert [x["blocked"] for x in got] == ["false", "false", "true", "false", "false",
                                           "false"], got
    assert "机器人" in got[4]["text"] and "小王" not in got[4]["text"], got[4]
    assert "共 90000 字节" in got[5]["text"], got[5]
    assert got[2].get("alert") == blocked["id"] and "已拦截" in got[2]["text"], got
    assert "小王<script>" in got[0]["text"] and "小美" in got[1]["text"], got
    assert nasty.replace("\u202e", "\\u202e") in got[3]["text"], got    # as text, bidi shown
    assert js(bob, "return window.__pwned === undefined && "
                   "document.querySelectorAll('#conv img, #conv script').length === 0;")
    assert text_of(bob, "#conv-title") == f"会话 {conv}"
    assert "小王<script>" in text_of(bob, "#conv-nick")
    assert "小美" in text_of(bob, "#conv-agent")
    # who waits, counting on from 75 s
    wait1 = text_of(bob, "#conv-wait")
    assert wait1.startswith("买家已等待 1:") and "小美" in wait1, wait1
    time.sleep(1.2)
    assert clock_s(text_of(bob, "#conv-wait").split()[1]) > clock_s(wait1.split()[1])
    # the conversation's alerts, with their state
    ca = rows(bob, "#conv-alerts .conv-alert")
    assert [x["id"] for x in ca] == [breach["id"], blocked["id"]], ca
    assert all(x["state"] == "unhandled" for x in ca), ca
    click(bob, f'#conv-alerts .conv-alert[data-id="{blocked["id"]}"] .act-ack')
    until(bob, lambda d: rows(d, f'#conv-alerts .conv-alert[data-id="{blocked["id"]}"]')[0]["state"]
          == "acked", "acked in the view")
    until(bob, lambda d: state_of(d, "#alerts", blocked["id"]) == "acked", "acked in the list too")

    # a whisper note: sent, in Redis as the contract says
    type_into(bob, "#note-text", "先道歉，再说明只能在平台内沟通")
    click(bob, "#note-send")
    until(bob, lambda d: rows(d, "#conv-notes .note"), "the note on the page")
    note = rows(bob, "#conv-notes .note")[0]
    assert note["state"] == "sent" and "先道歉" in note["text"] and "bob" in note["text"], note
    nid = note["id"]
    log = [json.loads(f["note"]) for _, f in c.xrange("chatmon:notes:log")]
    assert len(log) == 1 and log[0]["id"] == nid, log
    assert (log[0]["agent"], log[0]["conversation"], log[0]["from"]) == ("小美", conv, "bob"), log
    assert log[0]["text"] == "先道歉，再说明只能在平台内沟通"
    assert c.hget(f"chatmon:note:{nid}", "state") == "sent"
    assert c.zscore("chatmon:notes:pending:小美", nid) is not None
    assert c.lrange(f"chatmon:notes:conv:{conv}", 0, -1) == [nid]
    assert [e["what"] for e in audit(c)][-1] == "note.send"

    # chatmond acknowledges (contract section 3): delivered, then read
    def ack(state):
        now = ms()
        c.hsetnx(f"chatmon:note:{nid}", "delivered_at", now)
        if state == "read":
            c.hsetnx(f"chatmon:note:{nid}", "read_at", now)
        c.hset(f"chatmon:note:{nid}", "state", state)
        c.zrem("chatmon:notes:pending:小美", nid)
        c.xadd("chatmon:audit", {"e": json.dumps({"ts": now, "who": "agent:小美", "what": "note.state",
                                                  "note": nid, "state": state}, ensure_ascii=False)})
    ack("delivered")
    until(bob, lambda d: rows(d, "#conv-notes .note")[0]["state"] == "delivered", "delivered")
    assert "已送达" in rows(bob, "#conv-notes .note")[0]["text"]
    ack("read")
    until(bob, lambda d: rows(d, "#conv-notes .note")[0]["state"] == "read", "read")
    assert "已读" in rows(bob, "#conv-notes .note")[0]["text"]
    screenshot(bob, "dashboard-conversation.png")

    # the viewer: the same conversation from its waiting row, the states, no form
    click(alice, f'#waiting .waiting[data-conversation="{conv}"]')
    until(alice, lambda d: len(rows(d, "#conv-turns .turn")) == 6 and
          [x["state"] for x in rows(d, "#conv-notes .note")] == ["read"], "alice's view")
    assert not shown(alice, "note-form")
    assert [x["state"] for x in rows(alice, "#conv-alerts .conv-alert")] == ["unhandled", "acked"]
    assert js(alice, "return document.querySelectorAll('#conv button[data-act]').length;") == 0
    # Escape closes it; another row opens another conversation
    from selenium.webdriver.common.keys import Keys
    alice.find_element("tag name", "body").send_keys(Keys.ESCAPE)
    until(alice, lambda d: not shown(d, "conv"), "closed")
    click(bob, f'#alerts .alert[data-id="{other["id"]}"] .conv-link')
    until(bob, lambda d: text_of(d, "#conv-title") == "会话 c-702" and
          [x["id"] for x in rows(d, "#conv-alerts .conv-alert")] == [other["id"]], "c-702")
    assert rows(bob, "#conv-notes .note") == []

    # tooltips carry chat text too: shown as the text is, controls and bidi
    # escaped, line breaks kept (found by review: five held a raw U+202E)
    rlo = "\u202e"
    long_text = "订单 " * 60 + "加我微信 wx123 " + rlo + "evil"
    coach = "第一行" + rlo + "x\n第二行"
    one = rule_hit(time.time(), 4, "c-704" + rlo + "gpj.exe", agent="小美" + rlo, text=long_text,
                   hits=[hit("offplatform.x" + rlo, "offplatform", "critical", "block", 180, 184,
                             "加我微信", coach)])
    one.update(shop="s" + rlo, queue="q" + rlo)
    two = rule_hit(time.time(), 5, "c-705", text=long_text,
                   hits=[hit("offplatform.x", "offplatform", "critical", "block", 180, 184,
                             "加我微信", coach),
                         hit("etiquette.cold", "etiquette", "info", "flag", 0, 1, "订", coach)])
    for a, h in ((one, {"state": "resolved", "note": "n" + rlo + "a\nb"}),
                 (two, {"state": "false_positive", "reason": "r" + rlo + "c"})):
        xadd(c, a)
        c.hset("chatmon:alerts:handling", a["id"],
               json.dumps(dict(h, by="carol", at=ms(), rule="r"), ensure_ascii=False))
        c.xadd("chatmon:audit", {"e": json.dumps({"ts": ms(), "who": "carol", "what": "alert.state",
                                                  "alert": a["id"], "state": h["state"]})})

    def titles(d):
        return js(d, "return [...document.querySelectorAll('#alerts .alert')].filter("
                     "r => r.dataset.id === arguments[0] || r.dataset.id === arguments[1])"
                     ".map(r => [...r.querySelectorAll('[title]')].map(e => e.title));",
                  one["id"], two["id"])
    until(bob, lambda d: js(d, "return document.querySelectorAll('#alerts .alert .h-note[title], "
                               "#alerts .alert .h-reason[title]').length;") == 2,
          "both rows with their handling")
    got = [x for row in titles(bob) for x in row]
    assert not [x for x in got if rlo in x], got
    assert js(bob, "return [...document.querySelectorAll('[title]')].filter("
                   "e => e.title.includes('\\u202e')).length;") == 0
    esc = coach.replace(rlo, "\\u202e")
    assert got.count(esc) == 3, got                        # the coach line, each hit's
    assert "n\\u202ea\nb" in got and "r\\u202ec" in got, got  # the handling's note, reason
    assert long_text.replace(rlo, "\\u202e") in got, got  # the whole text, cut short on screen
    assert "offplatform.x\\u202e" in got, got               # the rule
    assert any(x.startswith("小美\\u202e · c-704\\u202egpj.exe · s\\u202e · q\\u202e") for x in got), got


def test_at_a_glance_sound_and_notification(browser, redis_server, dashboard, users):
    r = redis_server()
    c = r.client()
    now = time.time()
    day = time.strftime("%Y-%m-%d", time.gmtime(now + TZ_MIN * 60))
    midnight = now - (now + TZ_MIN * 60) % 86400
    old = max(midnight - 3600, now - 86400)               # yesterday, business day's zone
    alerts = [rule_hit(old, 1, "c-801"),                                   # blocked, yesterday
              rule_hit(max(midnight + 1, now - 50), 2, "c-802"),            # blocked, today
              rule_hit(max(midnight + 2, now - 40), 3, "c-803",
                       hits=[dict(HITS[1], severity="warn")]),                # warned
              rule_hit(max(midnight + 3, now - 30), 4, "c-804", hits=HITS)]  # blocked (grouped)
    for a in alerts:
        xadd(c, a)
    waiting_doc(c, [{"conversation": "c-811", "agent": "小美", "opened": ms(now - 95),
                     "waited_ms": 95000, "threshold_ms": 30000, "first": False, "state": "breach"},
                    {"conversation": "c-812", "agent": "阿杰", "opened": ms(now - 4),
                     "waited_ms": 4000, "threshold_ms": 10000, "first": True, "state": "open"}],
                total=7)
    key = f"chatmon:agents:{day}:{INSTANCE}"
    # rounds, answered, within 3 min, breaches, what the rate counts: 阿明's
    # counts fewer than his rounds (a JD shop's first questions): the
    # team's rate is (15 + 9 + 6) / (20 + 12 + 8), not / (20 + 12 + 10)
    figures = {"小美": (20, 18, 15, 2, None), "阿杰": (12, 12, 9, 1, None),
               "阿明": (10, 10, 6, 0, 8)}
    doc = {"v": 1, "instance": INSTANCE, "ts": ms(now), "day": day, "tz_offset_min": TZ_MIN,
           "cap_ms": 600000, "rate_ms": 180000,
           "agents": {name: {"rounds": n, "answered": a, "sum_ms": n * 9000, "first_rounds": 0,
                             "first_sum_ms": 0, "within_rate": w, "breaches": b, "escalations": 0,
                             "hist": [[9, n]], "hours": [],
                             **({"rate_base": rb} if rb is not None else {})}
                      for name, (n, a, w, b, rb) in figures.items()}}
    c.set(key, json.dumps(doc, ensure_ascii=False), ex=172800)
    c.zadd(f"chatmon:agents:{day}", {key: ms(now + 172800)})
    dash = dashboard_with_logins(dashboard, r, users)
    drv = browser
    login(drv, dash.url, "alice")                 # a viewer sees the strip too
    want = {"waiting": "7", "breaches": "3", "blocks": "2", "rate": "75%", "critical": "3"}
    until(drv, lambda d: {k: glance(d)[k] for k in want} == want, f"the strip: {want}")
    first = clock_s(glance(drv)["longest"])
    assert 95 <= first <= 95 + 10 * SLOW, glance(drv)
    time.sleep(1.5)
    assert clock_s(glance(drv)["longest"]) > first          # live
    assert js(drv, "return document.getElementById('g-longest').classList.contains('bad');")
    assert text_of(drv, "#g-rate .g-label") == "团队3分钟回复率"
    assert drv.title == "(3) 客服质检看板"

    # sound and notification: off until asked
    assert not js(drv, "return document.getElementById('notify').checked;")
    xadd(c, rule_hit(time.time(), 5, "c-805"))
    until(drv, lambda d: glance(d)["critical"] == "4", "a new critical")
    assert js(drv, "return window.__probe;")["beeps"] == 0
    assert js(drv, "return window.__probe;")["notes"] == []
    click(drv, "#notify")
    assert js(drv, "return localStorage.getItem('chatmon.dashboard.notify');") == "on"
    time.sleep(1.1)                                           # one ring a second at most
    xadd(c, rule_hit(time.time(), 6, "c-806", agent="婷婷"))
    until(drv, lambda d: js(d, "return window.__probe;")["notes"], "a notification")
    p = js(drv, "return window.__probe;")
    assert p["beeps"] == 1 and len(p["notes"]) == 1, p
    assert "婷婷" in p["notes"][0]["body"] and "c-806" in p["notes"][0]["body"], p
    # a warning does not ring; a breach does
    time.sleep(1.1)
    xadd(c, rule_hit(time.time(), 7, "c-807", severity="warn", hits=[dict(HITS[1], severity="warn")]))
    time.sleep(1.1)
    assert js(drv, "return window.__probe;")["beeps"] == 1
    xadd(c, sla_alert(time.time(), 8, "c-808", kind="sla.breach"))
    until(drv, lambda d: js(d, "return window.__probe;")["beeps"] == 2, "the breach's beep")
    # remembered: on after a reload, and the history does not ring
    drv.refresh()
    until(drv, lambda d: glance(d)["critical"] == "5", "the page again")
    assert js(drv, "return document.getElementById('notify').checked;")
    time.sleep(0.5)
    assert js(drv, "return window.__probe;")["notes"] == []
    assert drv.title == "(5) 客服质检看板"


def test_note_from_the_page_reaches_the_workbench(tmp_path, browser, redis_server, dashboard,
                                                  users, browser2, daemon, demo):
    """The whole whisper loop with every real part: a buyer waits on the
    workbench page (the demo backend through a real chatmond); the
    supervisor opens that conversation from the dashboard's waiting list,
    reads the buyer's turn from the history chatmond wrote, and sends a
    note from the page; chatmond delivers it to the workbench page, which
    shows it as 主管提示 and acknowledges it; the dashboard shows it read.
    The backend never sees the note."""
    from test_demo import SLA_SCENARIO, page_state, sla_options, whispers, write
    from test_notes import following
    from conftest import DEFAULT_RULES, free_port
    r = redis_server()
    c = r.client()
    bport = free_port()
    d = daemon(bport, rules=DEFAULT_RULES, redis=r.url(), args=sla_options(60, 60, 0.8))
    b = demo("--scenario", str(write(tmp_path, SLA_SCENARIO)), port=bport)
    following(d)
    agent_page, bob = browser2, browser
    agent_page.get(b.url(f"/?agent=carol&ws=ws://127.0.0.1:{d.port}/"))
    wait_for(lambda: any(m["role"] == "customer" for m in page_state(agent_page)["msgs"]), 10 * SLOW,
             "the buyer's first message on the workbench")
    conv = page_state(agent_page)["convs"][0]["id"]

    dash = dashboard_with_logins(dashboard, r, users)
    login(bob, dash.url, "bob")
    until(bob, lambda d: rows(d, f'#waiting .waiting[data-conversation="{conv}"]'),
          "the waiting buyer on the dashboard")
    click(bob, f'#waiting .waiting[data-conversation="{conv}"]')
    until(bob, lambda d: [x["role"] for x in rows(d, "#conv-turns .turn")][:1] == ["customer"],
          "the buyer's turn, from chatmond's history")
    type_into(bob, "#note-text", "先别承诺退款,等我确认库存")
    click(bob, "#note-send")

    w = wait_for(lambda: whispers(agent_page), 10 * SLOW, "the note on the workbench")
    assert [(x["from"], x["text"]) for x in w] == [("bob", "先别承诺退款,等我确认库存")], w
    assert "主管提示" in w[0]["title"]
    until(bob, lambda d: [x["state"] for x in rows(d, "#conv-notes .note")] == ["read"],
          "read, on the dashboard")
    assert [x["what"] for x in audit(c) if x["what"].startswith("note.")] == \
        ["note.send", "note.state", "note.state"]
    out = "\n".join(b.output())
    assert "先别承诺退款" not in out and "note_ack" not in out, out
    # the same words again are a second note: the page sends each note with
    # a key of its own (the server makes one note of one key's retries)
    type_into(bob, "#note-text", "先别承诺退款,等我确认库存")
    click(bob, "#note-send")
    w = wait_for(lambda: len(whispers(agent_page)) == 2 and whispers(agent_page), 10 * SLOW,
                 "the second note on the workbench")
    assert [x["text"] for x in w] == ["先别承诺退款,等我确认库存"] * 2, w
    until(bob, lambda d: [x["state"] for x in rows(d, "#conv-notes .note")] == ["read", "read"],
          "both read, on the dashboard")
    assert len(c.xrange("chatmon:notes:log")) == 2
