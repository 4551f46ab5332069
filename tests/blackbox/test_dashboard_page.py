"""The supervisors' page (web/dashboard, docs/dashboard.md "The page") in a
real headless Chromium, fed by the real stack: redis-server, chatmond
instances with the default rule pack relaying scripted customers
(tests/peers/customer.py) to agents, and `chatmon dashboard`. The hooks
the tests read are the table at the end of docs/dashboard.md.

- the live page: rule hits, blocked or not, with the match marked (code
  points, emoji before the match), an SLA breach, who waits with a
  running counter, the agents' figures over two instances and an earlier
  one, the filters, the language switch; the README's screenshot
  (build/screenshots/dashboard.png);
- a lost feed: the banner, the counter going on by itself, then a new
  dashboard on the same address, and the page goes on from the last alert
  it saw, nothing twice;
- a flood of 1 000 alerts a second: the list stays capped and current,
  the page keeps drawing and answering;
- dashboard.token: refused without it, data with it (and ?lang=en); Redis
  away: its banner;
- dashboard.users: the login form instead of data, a wrong password, the
  login, live alerts, the cookie out of the script's reach, logout back to
  the form.

The page must never write to the feed: a probe added before the page's own
script records every WebSocket it opens and everything sent on one.
"""

import asyncio
import datetime
import glob
import json
import math
import os
import random
import re
import socket
import subprocess
import threading
import time
from urllib.parse import quote

import pytest
import yaml

from conftest import (CHATMON, DEFAULT_RULES, SLOW, agent, browser_log, recv, run, screenshot,
                      wait_for)

STREAM = "chatmon:alerts:log"
TZ_MIN = 480                    # sla.timezone below: the business day's zone
SLA = ("sla:\n  first_response: 10s\n  reply: 30s\n  warn_at: 0.8\n  escalate: 60s\n"
       "  timezone: \"+08:00\"\n")
SNAPSHOT = ["-o", "redis.snapshot=200ms"]

Select = pytest.importorskip("selenium.webdriver.support.ui").Select

# Runs before the page's script: observes, changes nothing. `shown` is when
# (wall ms) each alert row and waiting row was first in the page.
PROBE = """
window.__probe = { sockets: [], sent: [], shown: {} };
document.addEventListener('DOMContentLoaded', () => {
  const shown = window.__probe.shown;
  new MutationObserver((records) => {
    const now = Date.now();
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (!n.dataset) continue;
        const key = n.classList.contains('alert') ? n.dataset.id
          : n.classList.contains('waiting') ? 'waiting:' + n.dataset.conversation : null;
        if (key && !(key in shown)) shown[key] = now;
      }
    }
  }).observe(document.body, { childList: true, subtree: true });
});
const NativeWS = window.WebSocket;
window.WebSocket = class extends NativeWS {
  constructor(url, protocols) {
    super(url, protocols);
    window.__probe.sockets.push(String(url));
  }
  send(data) {
    window.__probe.sent.push(String(data));
    return super.send(data);
  }
};
"""

ROWS = """
return [...document.querySelectorAll(arguments[0])].map((e) => {
  const m = e.querySelector('mark');
  return Object.assign({}, e.dataset, {
    mark: m ? m.textContent : null,
    text: e.textContent,
    wait: (e.querySelector('.wait') || {}).textContent,
  });
});
"""


# ------------------------------------------------------------------ helpers

def open_page(driver, url):
    if not driver.__dict__.get("probed"):
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        driver.probed = True
    driver.get(url)


def rows(driver, selector):
    return driver.execute_script(ROWS, selector)


def until(driver, pred, what, timeout=10):
    """pred(driver) until truthy, within timeout (scaled) seconds."""
    return wait_for(lambda: pred(driver), timeout * SLOW, what, poll=0.1)


def js(driver, script, *args):
    return driver.execute_script(script, *args)


def banner(driver):
    return js(driver, "const b = document.getElementById('banner');"
                      "return b.hidden ? null : b.dataset.state;")


def forgive_feed_errors(driver, port):
    """Chromium logs a refused or failed WebSocket as a SEVERE console entry,
    whatever the page does; the tests that cause one on purpose drop those
    entries (and only those) before the fixture's check. Returns them."""
    seen = browser_log(driver)
    mine = [e for e in seen if e.get("level") == "SEVERE" and
            f"WebSocket connection to 'ws://127.0.0.1:{port}/feed" in e.get("message", "")]
    driver.chatmon_log[:] = [e for e in seen if e not in mine]
    return mine


def probe(driver):
    return js(driver, "return window.__probe;")


def own_files_only(driver, url):
    """The page loaded nothing but its own files (no CDN, works offline)."""
    names = js(driver, "return performance.getEntriesByType('resource').map((e) => e.name);")
    assert names and all(n.startswith(url + "/") for n in names), names


def xadd(c, a):
    return c.xadd(STREAM, {"alert": json.dumps(a, ensure_ascii=False)})


def stream_alerts(c):
    return [(sid, json.loads(f["alert"])) for sid, f in c.xrange(STREAM)]


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def local(t):
    """time.struct_time in the business day's zone."""
    return time.gmtime(t + TZ_MIN * 60)


def clock_s(text):
    """Seconds of a waiting counter, "0:07", "1:02:05"."""
    s = 0
    for part in text.strip().split(":"):
        s = s * 60 + int(part)
    return s


def customers(tmp_path, name, turns):
    """A customer.py script: turns are (ms after the agent connects, conversation, text)."""
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps([{"at": at, "text": json.dumps(
        {"type": "message", "conversation": conv, "text": text}, ensure_ascii=False)}
        for at, conv, text in turns], ensure_ascii=False), encoding="utf-8")
    return path


def say(conv, text):
    return json.dumps({"type": "message", "conversation": conv, "text": text},
                      ensure_ascii=False)


async def frames_until(ws, pred, what, timeout=10):
    """Frames from chatmond until one matches pred; returns it."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {what}"
        f = json.loads(await recv(ws, left))
        if pred(f):
            return f


# ---------------------------------------------- earlier today, for the page

# What happened this morning, as an instance that has restarted since left
# it in Redis: alerts in the stream and its agents document (its day still
# counts, docs/dashboard.md). The rule hits are what `chatmon scan` says of
# the texts with the default pack, one alert per hit as chatmond makes them.
MORNING_ID = "5f3c9a1e"
MORNING = [     # minutes ago, agent, conversation, role | SLA type, text | waited/threshold/first
    (95, "大伟", "c-10077", "agent", "亲，我们家不支持七天无理由退货哦"),
    (88, "小美", "c-10082", "sla.escalate", (60000, 30000, False)),
    (81, "婷婷", "c-20311", "agent", "这个颜色没货了，您看看别的吧"),
    (74, "阿杰", "c-10104", "agent", "这个价格不行的，已经是最低价了"),
    (66, "小林", "c-20350", "sla.breach", (10000, 10000, True)),
    (58, "小美", "c-10131", "agent", "收到货给个五星好评，好评返现5元哦🎁"),
    (47, "大伟", "c-10160", "customer", "三天了还不发货？再不发我就给差评了"),
    (39, "婷婷", "c-20388", "sla.warn", (24000, 30000, False)),
    (31, "阿杰", "c-10187", "agent", "不能用花呗哦，直接转账到我支付宝吧"),
    (22, "小林", "c-20402", "agent", "这是国家级认证的，效果绝对100%有效"),
    (14, "大伟", "c-10215", "sla.breach", (30000, 30000, False)),
    (6, "婷婷", "c-20409", "agent", "你拍下就行，我给你改价"),
]
SEVERITY = {"sla.warn": "info", "sla.breach": "warn", "sla.escalate": "critical"}


def morning_alerts(now):
    chats = [m for m in MORNING if m[3] in ("agent", "customer")]
    # compiling the default pack takes 9 s of CPU under the sanitizers
    scan = subprocess.run([CHATMON, "scan", "--rules", DEFAULT_RULES], input="".join(
        json.dumps({"role": m[3], "text": m[4]}, ensure_ascii=False) + "\n" for m in chats),
        capture_output=True, text=True, timeout=30 * SLOW, check=True)
    hits = dict(zip((m[2] for m in chats),
                    (json.loads(line)["hits"] for line in scan.stdout.splitlines())))
    messages = rule_messages()
    midnight = now - (now + TZ_MIN * 60) % 86400
    out = []
    for ago, who, conv, kind, what in MORNING:
        t = max(midnight + 60 + len(out), now - ago * 60)
        head = {"v": 1, "ts": iso(t), "agent": who, "conversation": conv}
        if kind in SEVERITY:
            made = [dict(head, type=kind, severity=SEVERITY[kind], waited_ms=what[0],
                         threshold_ms=what[1], first=what[2])]
        else:
            assert hits[conv], f"the default pack lets {what!r} through"
            made = [dict(head, type="rule.hit", severity=h["severity"], role=kind,
                         category=h["category"], rule=h["rule"],
                         action="warn" if kind == "customer" and h["action"] == "block"
                         else h["action"], text=what,
                         match={"start": h["start"], "end": h["end"]}, matched=h["match"],
                         message=messages[h["rule"]])
                    for h in hits[conv]]
        for a in made:
            a["id"] = f"{int(t * 1000)}-{MORNING_ID}-{len(out) + 1:010d}"
            out.append(dict(sorted(a.items(), key=lambda kv: ORDER.index(kv[0]))))
    return out


ORDER = ["v", "id", "ts", "type", "severity", "agent", "conversation", "role", "category", "rule",
         "action", "text", "match", "matched", "message", "waited_ms", "threshold_ms", "first"]


def rule_messages():
    """Each rule's coaching text, from the pack itself."""
    out = {}
    for path in sorted(glob.glob(os.path.join(DEFAULT_RULES, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for item in yaml.safe_load(f) or []:
                if isinstance(item, dict) and "rule" in item:
                    out[item["rule"]] = item.get("message", "")
    return out


def morning_agents(now):
    """The morning instance's agents document: sums as chatmond writes them
    (docs/dashboard.md), over made-up response times, the same every run."""
    rnd = random.Random(2026)
    day = time.strftime("%Y-%m-%d", local(now))
    hour = local(now).tm_hour
    agents = {}
    for name, typical in (("小美", 8), ("阿杰", 12), ("婷婷", 7), ("小林", 19), ("大伟", 11)):
        hist, hours = {}, []
        rounds = answered = total = within = breaches = first_n = first_sum = 0
        for h in range(max(0, hour - 10), hour):
            n, s = rnd.randint(18, 42), 0
            slow = rnd.random() < 0.15              # a busy hour
            for _ in range(n):
                secs = min(600, max(1, round(rnd.lognormvariate(
                    math.log(typical * (2.2 if slow else 1)), 0.55))))
                if rnd.random() < 0.004:
                    secs = 600                      # unanswered: counts as the cap
                else:
                    answered += 1
                    within += secs <= 180
                if rnd.random() < 0.35:             # a first response: quicker
                    first_n += 1
                    first_sum += round(rnd.lognormvariate(math.log(typical * 0.6), 0.4) * 1000)
                breaches += secs > 30
                hist[secs] = hist.get(secs, 0) + 1
                s += secs * 1000
            rounds += n
            total += s
            hours.append([h, n, s])
        agents[name] = {"rounds": rounds, "answered": answered, "sum_ms": total,
                        "first_rounds": first_n, "first_sum_ms": first_sum,
                        "within_rate": within, "breaches": breaches, "escalations": 0,
                        "hist": sorted([k, v] for k, v in hist.items()), "hours": hours}
    agents["小美"]["escalations"] = 1
    doc = {"v": 1, "instance": MORNING_ID, "ts": int(now * 1000), "day": day,
           "cap_ms": 600000, "rate_ms": 180000, "agents": agents}
    return f"chatmon:agents:{day}:{MORNING_ID}", doc


# ------------------------------------------------------------------- tests

LABELS = {"offplatform": "站外引流", "invoice": "拒开发票", "returns": "拒绝七天无理由",
          "payment": "支付方式违规", "review_bait": "好评返现", "abuse": "辱骂买家",
          "order_close": "代关订单", "stock": "声称无货", "ad_law": "广告法违禁词",
          "privacy": "泄露隐私", "etiquette": "服务用语", "complaint_risk": "投诉风险",
          "extortion": "差评勒索"}

# Who writes what, live (ms after the agent connects, conversation, text);
# the ones from 4 s on come while the test looks at the page.
PEOPLE = {
    ("小美", "cs-01"): [(0, "c-10231", "在吗？这款连衣裙有M码吗"),
                       (100, "c-10232", "能便宜点吗？别家才卖99"),
                       (200, "c-10233", "请问什么时候发货？"),
                       (4000, "c-10240", "这个颜色有现货吗？")],
    ("阿杰", "cs-01"): [(0, "c-10311", "😡😡收到的杯子是碎的，再不处理我就投诉"),
                       (300, "c-10312", "这个保温杯保温效果怎么样"),
                       (600, "c-10313", "发票能开专票吗"),
                       (7000, "c-10320", "请问能寄到新疆吗")],
    ("婷婷", "cs-02"): [(0, "c-20417", "能开发票吗？公司报销要用"),
                       (150, "c-20418", "东西坏了，不补偿就给差评"),
                       (300, "c-20419", "尺码怎么选？身高165"),
                       (900, "c-20420", "请问有优惠券吗"),
                       (9000, "c-20425", "我昨天拍的怎么还没发货")],
    ("小林", "cs-02"): [(0, "c-20502", "在吗"),
                       (500, "c-20503", "退货地址是哪里？")],
}
FIRST_REPLIES = {
    "小美": [("c-10231", "亲，在的，M码有货哦，今天下单明天发"),
            ("c-10232", "加我微信 abc12345，私下给您优惠"),
            ("c-10232", "亲，已经是活动价了哦，我帮您申请一份小礼品")],
    "阿杰": [("c-10311", "非常抱歉亲，我马上帮您申请补发"),
            ("c-10312", "这是全网最好的保温杯，保温效果第一")],
    "婷婷": [("c-20417", "特价商品不开发票哦"),
            ("c-20417", "亲，可以开的，下单时备注抬头和税号就行"),
            ("c-20418", "非常抱歉给您带来不便，我帮您申请补偿"),
            ("c-20419", "你拍下就行，我给你备注")],
}
LATER_REPLIES = {
    "小美": [("c-10233", "亲，久等了，仓库今天下午4点前发货哦")],
    "阿杰": [("c-10313", "专票开不了，只能开收据哦")],
    "婷婷": [("c-20420", "没有优惠券，爱买不买")],
}
WAITING_EARLY = {"c-10233", "c-10313", "c-20420", "c-20502", "c-20503"}
WAITING_LATER = {"c-10240", "c-10320", "c-20425"}


def test_live_page(browser, redis_server, daemon, backend, dashboard, tmp_path):
    """Agents behind two chatmond instances break rules and keep customers
    waiting; the page shows it as it happens, with the morning's figures."""
    r = redis_server()
    c = r.client()
    now = time.time()
    morning = morning_alerts(now)
    for a in morning:
        xadd(c, a)
    key, doc = morning_agents(now)
    c.set(key, json.dumps(doc, ensure_ascii=False), ex=172800)
    # and into the day's index, where the dashboard finds instances' documents
    c.zadd(key.rsplit(":", 1)[0], {key: int((now + 172800) * 1000)})

    b = backend(script="customer.py")
    cs = {name: daemon(b.port, rules=DEFAULT_RULES, redis=r.url(), extra=SLA, args=SNAPSHOT,
                       name=name) for name in ("cs-01", "cs-02")}
    dash = dashboard(r.url(), extra=SLA)
    drv = browser
    open_page(drv, dash.url + "/")
    until(drv, lambda d: len(rows(d, "#alerts .alert")) == len(morning), "the morning's alerts")
    assert js(drv, "return document.documentElement.lang") == "zh-CN"
    assert text_of(drv, "h-alerts") == "实时告警"

    async def send(socks, replies):
        for who, said in replies.items():
            for conv, text in said:
                await socks[who].send(say(conv, text))
                await asyncio.sleep(0.15)

    lag = {}

    async def main():
        socks = {}
        t_waiting = None
        try:
            for (who, instance), turns in PEOPLE.items():
                script = customers(tmp_path, f"script-{len(socks)}", turns)
                ws = await agent(cs[instance], f"/script?file={script}&agent={quote(who)}")
                socks[who] = ws
                for _ in [t for t in turns if t[0] < 2000]:
                    f = json.loads(await recv(ws))
                    assert f["type"] == "message", f
                    if f["conversation"] == "c-10233":
                        t_waiting = time.monotonic()    # chatmond's clock started before
                        wall_waiting = time.time()
            await send(socks, FIRST_REPLIES)
            # the off-platform contact never reached the customer
            w = await frames_until(socks["小美"], lambda f: f["type"] == "chatmon.warning"
                                   and f["conversation"] == "c-10232", "warning for c-10232")
            assert w["blocked"] is True and w["alert"]["category"] == "offplatform", w
            # how soon the page showed them (the browser's wall clock is ours):
            # the alert from chatmond's timestamp, the waiting customer from
            # when the agent got the message
            shown = until(drv, lambda d: (lambda p: p if w["alert"]["id"] in p and
                                          "waiting:c-10233" in p else None)(probe(d)["shown"]),
                          "the blocked hit's row and c-10233 waiting", timeout=3)
            made = datetime.datetime.strptime(w["alert"]["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
            made = made.replace(tzinfo=datetime.timezone.utc).timestamp()
            lag["alert_row_s"] = round(shown[w["alert"]["id"]] / 1000 - made, 3)
            lag["waiting_s"] = round(shown["waiting:c-10233"] / 1000 - wall_waiting, 3)
            print(f"\nDASHBOARD-LAG {json.dumps(lag)}")
            # the bound: on the page within a second. The alert's is
            # counted from chatmond's timestamp, so it holds the relay's own
            # time with the turn too: 0.1 s here alone, but 1.3 s once in a
            # fresh clone's make test, the suite's other tests on the same
            # two cores; it gets two
            assert lag["waiting_s"] <= 1.0 * SLOW and lag["alert_row_s"] <= 2.0 * SLOW, lag

            check_rows(drv, c)
            check_waiting(drv)
            check_agents(drv, c, doc)
            check_filters(drv)
            check_language(drv, len(morning))
            check_breach(drv, c, t_waiting)

            # more happens: 小美 answers at last, two agents break rules
            await send(socks, LATER_REPLIES)
            until(drv, lambda d: {"abuse", "invoice"} <= {
                x["category"] for x in rows(d, '#alerts .alert[data-blocked="true"]')[:4]}
                and "c-10233" not in {x["conversation"] for x in rows(d, "#waiting .waiting")},
                "the later replies")
            assert banner(drv) is None
            time.sleep(0.3)
            screenshot(drv, "dashboard.png")
        finally:
            for ws in socks.values():
                await ws.close()

        # read only, from its own server
        p = probe(drv)
        assert p["sent"] == [] and p["sockets"], p
        assert all(u == f"ws://127.0.0.1:{dash.port}/feed" for u in p["sockets"]), p
        own_files_only(drv, dash.url)
    run(main(), timeout=90)


def check_rows(drv, c):
    """The rule hits of the live agents: blocked or not, the match marked."""
    def hits(d):
        got = rows(d, '#alerts .alert[data-type="rule.hit"][data-agent="小美"]'
                      '[data-category="offplatform"]')
        return got if len(got) == len(stream_hits(c, "c-10232")) > 0 else None
    hit = until(drv, hits, "小美's rule hits")
    alerts = dict((a["id"], a) for _, a in stream_alerts(c))
    for row in hit:
        a = alerts[row["id"]]
        assert a["conversation"] == "c-10232", a
        assert (row["severity"], row["blocked"]) == ("critical", "true"), row
        cps = list(a["text"])
        assert row["mark"] == "".join(cps[a["match"]["start"]:a["match"]["end"]]), (row, a)
        assert row["mark"] == a["matched"] and row["mark"] in "加我微信 abc12345", row
        assert "已拦截" in row["text"] and "c-10232" in row["text"], row
    # the buyer's complaint, two emoji (two UTF-16 units each) before the match
    comp = until(drv, lambda d: rows(d, '#alerts .alert[data-category="complaint_risk"]'
                                        '[data-agent="阿杰"]'), "阿杰's complaining buyer")
    assert comp[0]["mark"] == "投诉" and comp[0]["blocked"] == "false", comp
    assert comp[0]["severity"] == "warn" and "买家" in comp[0]["text"], comp
    # critical but only flagged (a buyer's turn is never blocked)
    # (two extortion rules match that turn: one alert each, until alerts are grouped)
    ext = until(drv, lambda d: [r for r in rows(d, '#alerts .alert[data-category="extortion"]')
                                if r["mark"] == "不补偿就给差评"], "extortion")
    assert (ext[0]["severity"], ext[0]["blocked"]) == ("critical", "false"), ext
    assert ext[0]["agent"] == "婷婷", ext
    assert "已拦截" not in ext[0]["text"], ext
    # a flag: shown, not blocked
    you = until(drv, lambda d: rows(d, '#alerts .alert[data-agent="婷婷"]'
                                       '[data-severity="info"][data-type="rule.hit"]'),
                "婷婷's 你")
    assert you[0]["mark"] == "你" and you[0]["blocked"] == "false", you
    # newest first: the stream's order reversed, each alert once
    order = [x["id"] for x in rows(drv, "#alerts .alert")]
    in_stream = list(dict.fromkeys(a["id"] for _, a in stream_alerts(c)))   # repeats dropped
    assert order == [i for i in reversed(in_stream) if i in set(order)], order
    assert len(order) == len(set(order)), order


def stream_hits(c, conv):
    return [a for _, a in stream_alerts(c) if a["type"] == "rule.hit" and a["conversation"] == conv]


def check_waiting(drv):
    """Who waits: the answered ones gone, longest first, counting on."""
    def waiting(d):
        w = rows(d, "#waiting .waiting")
        convs = {x["conversation"] for x in w}
        return w if WAITING_EARLY <= convs <= WAITING_EARLY | WAITING_LATER else None
    w = until(drv, waiting, "the five customers waiting")
    secs = [clock_s(x["wait"]) for x in w]
    assert secs == sorted(secs, reverse=True), [(x["conversation"], x["wait"]) for x in w]
    mine = [x for x in w if x["conversation"] == "c-10233"][0]
    assert mine["agent"] == "小美" and "阈值 10 秒" in mine["text"], mine
    assert "2 个实例" in text_of(drv, "waiting-count")
    before = clock_s(mine["wait"])
    time.sleep(1.6)
    after = [clock_s(x["wait"])
             for x in rows(drv, '#waiting .waiting[data-conversation="c-10233"]')]
    assert after and after[0] >= before + 1, (before, after)


def check_agents(drv, c, morning):
    """小美's day: the morning's rounds and two live ones, over two instances."""
    mine = morning["agents"]["小美"]
    until(drv, lambda d: cell(d, "小美", "rounds") == str(mine["rounds"] + 2)
          and "站外引流" in (cell(d, "小美", "hits") or ""), "小美's figures")
    hits = {}
    for _, a in stream_alerts(c):
        if a["type"] == "rule.hit" and a["agent"] == "小美":
            hits[a["category"]] = hits.get(a["category"], 0) + 1
    chips = js(drv, "return [...document.querySelectorAll('#agents .agent[data-agent=\"小美\"]"
                    " .hits .chip')].map((e) => e.textContent);")
    assert sorted(chips) == sorted(f"{LABELS[k]} {n}" for k, n in hits.items()), (chips, hits)
    for col in ("mean", "p90", "first"):
        assert re.fullmatch(r"\d+\.\d 秒", cell(drv, "小美", col)), cell(drv, "小美", col)
    assert re.fullmatch(r"\d+(\.\d)?%", cell(drv, "小美", "rate")), cell(drv, "小美", "rate")
    # (the live breach may be in already on a slow machine)
    assert int(cell(drv, "小美", "breaches")) - mine["breaches"] in (0, 1)
    bars = js(drv, "return document.querySelectorAll("
                   "'#agents .agent[data-agent=\"小美\"] svg rect.bar').length;")
    assert bars == len(mine["hours"]) + 1, bars      # and this hour's
    assert len(rows(drv, "#agents .agent")) == 5     # 大伟 from the morning only


def check_filters(drv):
    def shown(d):
        return rows(d, "#alerts .alert")

    def click(box):
        js(drv, f"document.getElementById('{box}').click();")
    click("f-sev-critical")
    until(drv, lambda d: shown(d) and all(x["severity"] != "critical" for x in shown(d)),
          "critical alerts hidden")
    click("f-sev-critical")
    until(drv, lambda d: any(x["severity"] == "critical" for x in shown(d)), "critical back")
    click("f-sev-info")
    click("f-sev-warn")
    until(drv, lambda d: shown(d) and {x["severity"] for x in shown(d)} == {"critical"},
          "only critical")
    click("f-sev-info")
    click("f-sev-warn")
    cat = Select(drv.find_element("id", "f-category"))
    cat.select_by_value("sla")
    until(drv, lambda d: shown(d) and all(x["category"] == "sla" for x in shown(d)), "SLA only")
    assert {x["type"] for x in shown(drv)} >= {"sla.breach", "sla.escalate", "sla.warn"}
    cat.select_by_value("offplatform")
    until(drv, lambda d: shown(d) and all(x["category"] == "offplatform" for x in shown(d)),
          "off-platform only")
    cat.select_by_value("")
    ag = Select(drv.find_element("id", "f-agent"))
    assert {"小美", "阿杰", "婷婷", "小林", "大伟"} <= {o.get_attribute("value") for o in ag.options}
    ag.select_by_value("阿杰")
    until(drv, lambda d: shown(d) and all(x["agent"] == "阿杰" for x in shown(d)), "阿杰 only")
    assert len(shown(drv)) >= 4
    ag.select_by_value("")
    until(drv, lambda d: {x["agent"] for x in shown(d)} == {"小美", "阿杰", "婷婷", "小林", "大伟"},
          "everyone again")


def check_language(drv, n_morning):
    drv.find_element("id", "lang").click()
    until(drv, lambda d: js(d, "return document.documentElement.lang") == "en", "English")
    assert text_of(drv, "h-alerts") == "Live alerts" and text_of(drv, "lang") == "中文"
    what = js(drv, "return document.querySelector('#alerts .alert[data-category=\"offplatform\"]"
                   " .what').textContent")
    assert what == "Off-platform contact", what
    assert "Agents today" == text_of(drv, "h-agents")
    drv.refresh()                                       # remembered
    until(drv, lambda d: len(rows(d, "#alerts .alert")) > n_morning, "the page again")
    assert js(drv, "return document.documentElement.lang") == "en"
    assert text_of(drv, "h-waiting") == "Waiting now"
    drv.find_element("id", "lang").click()
    until(drv, lambda d: text_of(d, "h-alerts") == "实时告警", "Chinese again")
    assert text_of(drv, "h-agents") == "客服今日表现"


def check_breach(drv, c, t_waiting):
    """10 s after the customer wrote: the breach row, the counter in red."""
    live = f':not([data-id*="{MORNING_ID}"])'
    # c-10233's: under load the checks before this one can outlast c-10240's
    # breach too (its customer writes 4 s later), which is then the newest row
    br = until(drv, lambda d: [x for x in rows(
        d, f'#alerts .alert[data-type="sla.breach"][data-agent="小美"]{live}')
        if x["conversation"] == "c-10233"], "小美's breach of c-10233", timeout=15)
    assert time.monotonic() - t_waiting >= 10 - 0.2 * SLOW     # not before its time
    a = dict((a["id"], a) for _, a in stream_alerts(c))[br[0]["id"]]
    assert a["conversation"] == "c-10233" and a["first"] is True, a
    assert br[0]["category"] == "sla" and br[0]["severity"] == "warn", br
    assert "首次响应超时" in br[0]["text"] and "阈值 10 秒" in br[0]["text"], br
    until(drv, lambda d: js(d, "return document.querySelector("
                               "'#waiting .waiting[data-conversation=\"c-10233\"]')"
                               ".classList.contains('lvl-over');"), "c-10233 in red")
    until(drv, lambda d: len(rows(d, f'#alerts .alert[data-type="sla.breach"]{live}')) >= 5,
          "the breaches of the five early customers", timeout=10)


def text_of(drv, id_):
    return js(drv, "return document.getElementById(arguments[0]).textContent;", id_)


def cell(drv, who, name):
    return js(drv, "const e = document.querySelector("
                   "`#agents .agent[data-agent=\"${arguments[0]}\"] .${arguments[1]}`);"
                   "return e ? e.textContent : null;", who, name)


# ------------------------------------------------------------------ the feed lost

def alert(n, severity="critical", agent_id="小美", **extra):
    a = {"v": 1, "id": f"t-{n:05d}", "ts": iso(time.time()), "type": "rule.hit",
         "severity": severity, "agent": agent_id, "conversation": f"c-{n}", "role": "agent",
         "category": "offplatform", "rule": "offplatform.add_contact_app", "action": "block",
         "text": "亲😊加我微信 abc123 发您实拍图", "match": {"start": 2, "end": 6},
         "matched": "加我微信", "message": "亲,平台规定只能在旺旺上沟通。"}
    a.update(extra)
    return a


def ids(driver):
    return [x["id"] for x in rows(driver, "#alerts .alert")]


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


# no SLA alert while these run (under ASan and load they take over 10 s)
SLA_LONG = ("sla:\n  first_response: 5m\n  reply: 10m\n  escalate: 20m\n"
            "  timezone: \"+08:00\"\n")


@pytest.mark.parametrize("redis_late", [False, True], ids=["redis_up", "redis_late"])
def test_connection_lost_and_resumed(browser, redis_server, daemon, backend, dashboard,
                                     tmp_path, redis_late):
    """The dashboard goes away: the banner, the waiting counter counts on by
    itself; a new one on the same address: the page resumes after the last
    alert it saw (since=), keeping what it had before (more than the new
    server's history), nothing twice. redis_late: Redis answers the new
    dashboard only 3 s after it starts, so the page is back before the
    history is in; it is placed once it is (it was given the day's first
    alerts as they were read, found by a CI run under ASan)."""
    r = redis_server()
    c = r.client()
    for n in range(8):
        xadd(c, alert(n))
    b = backend(script="customer.py")
    d = daemon(b.port, redis=r.url(), extra=SLA_LONG, args=SNAPSHOT)
    conf = "  history: 5\n" + SLA_LONG
    dash = dashboard(r.url(), extra=conf)
    script = customers(tmp_path, "script", [(0, "c-31001", "在吗，我的快递到哪了")])
    drv = browser

    def restart():
        if redis_late:
            r.pause()
            threading.Timer(3 * SLOW, r.resume).start()
        return dashboard(r.url(), extra=conf, wait=False, name="again",
                         args=["--listen", f"127.0.0.1:{dash.port}"])

    async def main():
        async with agent(d, f"/script?file={script}&agent={quote('小美')}") as ws:
            await recv(ws)
            lost_and_back(drv, c, dash, restart)
    run(main())


def lost_and_back(drv, c, dash, restart):
    open_page(drv, dash.url + "/")
    until(drv, lambda d: ids(d) == [f"t-{n:05d}" for n in range(7, 2, -1)], "the last 5")
    xadd(c, alert(8))
    xadd(c, alert(9))
    until(drv, lambda d: ids(d)[:2] == ["t-00009", "t-00008"], "two live ones")
    until(drv, lambda d: rows(d, '#waiting .waiting[data-conversation="c-31001"]'), "the customer")
    assert banner(drv) is None

    dash.stop()
    until(drv, lambda d: banner(d) == "lost", "the lost banner", timeout=5)
    assert js(drv, "return document.getElementById('conn').dataset.state") == "lost"
    assert js(drv, "return document.body.classList.contains('stale')")    # dimmed
    # nothing comes now: the counter goes on by itself
    counter = '#waiting .waiting[data-conversation="c-31001"]'
    before = clock_s(rows(drv, counter)[0]["wait"])
    for n in range(10, 13):
        xadd(c, alert(n))
    time.sleep(2.2)
    assert clock_s(rows(drv, counter)[0]["wait"]) >= before + 2
    assert ids(drv)[0] == "t-00009"

    again = restart()
    wait_for(lambda: again.proc.poll() is not None or listening(dash.port), 10 * SLOW,
             "the new dashboard")
    assert again.proc.poll() is None, again.log()[-2000:]
    want = [f"t-{n:05d}" for n in range(12, 2, -1)]
    until(drv, lambda d: banner(d) is None and ids(d) == want, "resumed", timeout=20)
    assert not js(drv, "return document.body.classList.contains('stale')")
    xadd(c, alert(13))
    until(drv, lambda d: ids(d)[:2] == ["t-00013", "t-00012"], "live again")
    assert len(set(ids(drv))) == len(ids(drv))
    p = probe(drv)
    sid9 = [sid for sid, a in stream_alerts(c) if a["id"] == "t-00009"][0]
    assert p["sockets"][0].endswith("/feed") and f"/feed?since={sid9}" in p["sockets"][-1], p
    assert p["sent"] == [], p
    forgive_feed_errors(drv, dash.port)


# ------------------------------------------------------------------ a flood

def test_flood(browser, redis_server, dashboard):
    """1 000 alerts a second for 3 s: the page draws at most 200 rows, the
    newest on top, keeps the newest 2 000, and never stops drawing."""
    r = redis_server()
    c = r.client()
    dash = dashboard(r.url())
    drv = browser
    open_page(drv, dash.url + "/")
    until(drv, lambda d: js(d, "return document.getElementById('conn').dataset.state")
          == "live", "live")
    js(drv, """
      window.__gap = 0;
      let last = performance.now();
      const frame = (t) => { window.__gap = Math.max(window.__gap, t - last); last = t;
                             requestAnimationFrame(frame); };
      requestAnimationFrame(frame);""")
    n = 3000
    sev = ("critical", "warn", "info")
    who = ("小美", "阿杰", "婷婷", "小林", "大伟")

    def produce():
        pipe = c.pipeline(transaction=False)
        t0 = time.monotonic()
        for k in range(n):
            pipe.xadd(STREAM, {"alert": json.dumps(alert(
                k, severity=sev[k % 3], agent_id=who[k % 5],
                text="😊" * (k % 7) + "亲,加我微信 abc123 发您实拍图" + "。" * (k % 40),
                match={"start": k % 7 + 2, "end": k % 7 + 6}), ensure_ascii=False)})
            if k % 100 == 99:                       # 100 every 0.1 s
                pipe.execute()
                time.sleep(max(0, t0 + (k + 1) / 1000 - time.monotonic()))
        pipe.execute()
    producer = threading.Thread(target=produce)
    t0 = time.monotonic()
    producer.start()
    slowest = 0
    try:
        while producer.is_alive():              # the page answers while it floods
            t = time.monotonic()
            assert js(drv, "return document.querySelectorAll('#alerts .alert').length;") <= 200
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.2)
    finally:
        producer.join()
    took = time.monotonic() - t0
    newest = [f"t-{k:05d}" for k in range(n - 1, n - 201, -1)]
    until(drv, lambda d: ids(d) == newest, "the newest 200 on top", timeout=15)
    kept = js(drv, "return document.getElementById('alerts-count').textContent")
    assert "内存中 2,000 条" in kept, kept
    # only the kept ones are counted, by severity
    per = [sum(1 for k in range(n - 2000, n) if sev[k % 3] == s) for s in sev]
    assert js(drv, "return ['critical', 'warn', 'info'].map((s) =>"
                   " document.getElementById('n-' + s).textContent);") == [str(x) for x in per]
    rows0 = rows(drv, "#alerts .alert")[0]
    assert rows0["mark"] == "加我微信", rows0         # 2 emoji before it: code points
    gap = js(drv, "return window.__gap;")
    print(f"\nflood: {n} alerts in {took:.1f} s, longest frame gap {gap:.0f} ms, "
          f"slowest script round trip {slowest * 1000:.0f} ms")
    assert gap < 1000 * SLOW, gap
    # alone 0.3-0.4 s; beside the other xdist worker on two shared cores it
    # reached 2.2 s once (2026-12-06): the bound is for a page that froze
    assert slowest < 3 * SLOW, slowest
    assert probe(drv)["sent"] == []


# ------------------------------------------------------------------ the token

def test_token(browser, redis_server, dashboard):
    r = redis_server()
    c = r.client()
    xadd(c, alert(1))
    dash = dashboard(r.url(), extra="  token: s3cret-Tok\n")
    drv = browser
    for url in (dash.url + "/", dash.url + "/?token=wrong"):
        open_page(drv, url)
        until(drv, lambda d: banner(d) == "denied", f"the denied banner at {url}", timeout=10)
        assert ids(drv) == [], url
        assert js(drv, "return document.getElementById('conn').dataset.state") == "denied"
        assert "token" in js(drv, "return document.getElementById('banner').textContent")
    assert forgive_feed_errors(drv, dash.port)
    open_page(drv, dash.url + "/?token=s3cret-Tok&lang=en")
    until(drv, lambda d: ids(d) == ["t-00001"], "the alert with the token")
    # a refused page may try its feed once more before it is left: only
    # those refusals (no token, the wrong one) are forgiven again
    seen = browser_log(drv)
    drv.chatmon_log[:] = [e for e in seen if not (
        e.get("level") == "SEVERE" and "403" in e.get("message", "") and
        ("/feed?token=wrong'" in e.get("message", "") or
         f"ws://127.0.0.1:{dash.port}/feed'" in e.get("message", "")))]
    assert banner(drv) is None
    assert js(drv, "return document.getElementById('conn').dataset.state") == "live"
    assert text_of(drv, "h-alerts") == "Live alerts"            # ?lang=en
    p = probe(drv)
    assert p["sockets"] == [f"ws://127.0.0.1:{dash.port}/feed?token=s3cret-Tok"], p
    assert p["sent"] == [], p
    # Redis away: the dashboard says so, the page shows it
    r.kill()
    until(drv, lambda d: banner(d) == "redis", "the Redis banner", timeout=15)
    assert "Redis" in text_of(drv, "banner")
    assert js(drv, "return document.getElementById('conn').dataset.state") == "live"
    assert "s3cret" not in dash.log()           # the page's address holds it too


def forgive_login_errors(driver, port):
    """A refused login is an HTTP 401 (429 past the limit), which Chromium logs
    as SEVERE whatever the page does: drop those entries (and only those)
    before the check."""
    seen = browser_log(driver)
    mine = [e for e in seen if e.get("level") == "SEVERE" and
            f"http://127.0.0.1:{port}/api/login" in e.get("message", "") and
            ("401" in e.get("message", "") or "429" in e.get("message", ""))]
    driver.chatmon_log[:] = [e for e in seen if e not in mine]
    return mine


def test_login_flow(browser, redis_server, dashboard, tmp_path):
    users = tmp_path / "users"
    p = subprocess.run([CHATMON, "passwd", "-f", str(users), "alice", "supervisor"],
                       input="正确的 password\n", capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    r = redis_server()
    c = r.client()
    xadd(c, alert(1))
    dash = dashboard(r.url(), extra=f"  users: {users}\n")
    drv = browser
    shown = "return !document.getElementById(arguments[0]).hidden;"
    open_page(drv, dash.url + "/")
    until(drv, lambda d: js(d, shown, "login"), "the login form")
    assert not js(drv, shown, "app") and ids(drv) == []
    assert text_of(drv, "login-title") == "登录客服质检看板"
    assert probe(drv)["sockets"] == []              # no feed before a login
    screenshot(drv, "dashboard-login.png")
    # a wrong password: said on the form, nothing opened
    drv.find_element("id", "login-user").send_keys("alice")
    drv.find_element("id", "login-password").send_keys("wrong")
    drv.find_element("id", "login-submit").click()
    until(drv, lambda d: js(d, shown, "login-error"), "the login error")
    assert text_of(drv, "login-error") == "用户名或密码错误。"
    assert js(drv, shown, "login") and probe(drv)["sockets"] == []
    assert forgive_login_errors(drv, dash.port)
    # the right one: the data, live
    drv.find_element("id", "login-password").send_keys("正确的 password")
    drv.find_element("id", "login-submit").click()
    until(drv, lambda d: ids(d) == ["t-00001"], "the alert after the login")
    assert not js(drv, shown, "login") and js(drv, shown, "app")
    assert text_of(drv, "who") == "alice · 主管"
    assert js(drv, "return document.cookie;") == ""  # HttpOnly: out of the script's reach
    xadd(c, alert(2))
    until(drv, lambda d: ids(d) == ["t-00002", "t-00001"], "a live alert")
    assert probe(drv)["sockets"] == [f"ws://127.0.0.1:{dash.port}/feed"]
    # a feed refused to a login is not a matter of a token (the page has none):
    # the banner names what is (found by review: a proxy without public_url)
    said = js(drv, "feed.state = 'denied'; renderHeader();"
                   "const b = document.getElementById('banner').textContent;"
                   "feed.state = 'live'; renderHeader(); return b;")
    assert "token" not in said and "dashboard.public_url" in said, said
    js(drv, "document.getElementById('lang').click();")
    assert text_of(drv, "logout") == "Sign out" and text_of(drv, "who") == "alice · supervisor"
    # logout: back to the form, and a reload stays there
    drv.find_element("id", "logout").click()
    until(drv, lambda d: js(d, shown, "login"), "the login form after logout")
    assert not js(drv, shown, "app") and ids(drv) == []
    assert text_of(drv, "login-title") == "Sign in to the chat-monitor dashboard"
    open_page(drv, dash.url + "/")
    until(drv, lambda d: js(d, shown, "login"), "the login form after a reload")
    assert probe(drv)["sockets"] == []
    assert "正确的" not in dash.log() and "wrong" not in dash.log().replace("wrong user", "")
    # the rate limit, as the page says it: one failure above, four more, then 429
    def ready(d):       # the button is off while a login is under way
        return d.find_element("id", "login-submit").is_enabled()
    for n in range(5):
        until(drv, ready, "the form ready")
        js(drv, "document.getElementById('login-error').hidden = true;")
        drv.find_element("id", "login-user").clear()
        drv.find_element("id", "login-user").send_keys("alice")
        drv.find_element("id", "login-password").send_keys(f"guess {n}")
        drv.find_element("id", "login-submit").click()
        until(drv, lambda d: js(d, shown, "login-error"), f"the answer to guess {n}")
    assert re.fullmatch(r"Too many failed sign-ins: try again in 1[45] min\.",
                        text_of(drv, "login-error")), text_of(drv, "login-error")
    # the right password too, until the window has passed
    until(drv, ready, "the form ready")
    js(drv, "document.getElementById('login-error').hidden = true;")
    drv.find_element("id", "login-password").send_keys("正确的 password")
    drv.find_element("id", "login-submit").click()
    until(drv, lambda d: js(d, shown, "login-error") and "min." in text_of(d, "login-error"),
          "still limited")
    assert js(drv, shown, "login") and probe(drv)["sockets"] == []
    assert forgive_login_errors(drv, dash.port)


# ------------------------------------------------------------------ a past day, ?conv=

def test_day_picker_and_conversation_link(browser, redis_server, dashboard):
    """?conv=ID&alert=ID opens the conversation with that alert standing out
    (the link pushed alerts carry); the date picker shows a past day's
    agents (GET /api/report) and alerts (the stream by time) with the
    report's download links, and today again, live."""
    import calendar
    r = redis_server()
    c = r.client()
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + TZ_MIN * 60 - 2 * 86400))
    d0 = (calendar.timegm(time.strptime(day, "%Y-%m-%d")) - TZ_MIN * 60) * 1000
    t = d0 + 9 * 3600 * 1000
    for n, (ag, o, at) in enumerate((("bob", t + 2000, t + 3000), ("alice", t, t + 5000),
                                     ("alice", t + 1000, t + 86000))):
        c.xadd("chatmon:sla:{7}:log", {"k": "a", "ag": ag, "o": str(o), "at": str(at),
                                       "f": "1", "c": f"p-{n}"}, id=f"{at}-0")
    c.xadd("chatmon:sla:{7}:log", {"k": "b", "ag": "alice", "at": str(t + 31000)},
           id=f"{t + 90000}-0")
    old = alert(9, agent_id="alice", id="p-alert", ts=iso((t + 4000) / 1000),
                conversation="p-1")
    c.xadd(STREAM, {"alert": json.dumps(old, ensure_ascii=False)}, id=f"{t + 4000}-0")
    xadd(c, alert(1, conversation="c-1"))
    xadd(c, alert(2, conversation="c-2"))
    dash = dashboard(r.url(), extra=SLA)
    drv = browser
    open_page(drv, dash.url + "/?conv=c-1&alert=t-00001")
    until(drv, lambda d: js(d, "return !document.getElementById('conv').hidden && "
                               "document.getElementById('conv-title').textContent.includes('c-1');"),
          "the conversation view open on c-1")
    until(drv, lambda d: js(d, "const e = document.querySelector("
                               "'#conv-alerts .conv-alert[data-id=\"t-00001\"]');"
                               "return e && e.classList.contains('highlight');"),
          "the alert of the link standing out in the conversation")
    # the live list: what the feed holds (its history is of any day)
    until(drv, lambda d: sorted(ids(d)) == ["p-alert", "t-00001", "t-00002"], "the live alerts")
    assert js(drv, "return document.querySelector('#alerts .alert[data-id=\"t-00001\"]')"
                   ".classList.contains('highlight') && !document.querySelector("
                   "'#alerts .alert[data-id=\"t-00002\"]').classList.contains('highlight');")
    drv.find_element("id", "conv-close").click()
    today = js(drv, "return document.getElementById('day-pick').value;")
    assert today == time.strftime("%Y-%m-%d", time.gmtime(time.time() + TZ_MIN * 60))
    assert js(drv, "return document.getElementById('day-pick').max;") == today
    # a past day
    js(drv, "const i = document.getElementById('day-pick'); i.value = arguments[0];"
            "i.dispatchEvent(new Event('change'));", day)
    until(drv, lambda d: [x["agent"] for x in rows(d, "#agents .agent")] == ["alice", "bob"],
          "the past day's agents")
    assert cell(drv, "alice", "rounds") == "2" and cell(drv, "bob", "rounds") == "1"
    assert cell(drv, "alice", "breaches") == "1"
    until(drv, lambda d: ids(d) == ["p-alert"], "the past day's alerts")
    assert js(drv, "return document.getElementById('app').dataset.day;") == day
    assert not js(drv, "return document.getElementById('day-today').hidden;")
    assert day in text_of(drv, "agents-day") and day in text_of(drv, "alerts-day")
    csv_href = js(drv, "return document.getElementById('report-csv').href;")
    html_href = js(drv, "return document.getElementById('report-html').href;")
    assert csv_href == f"{dash.url}/api/report?from={day}&to={day}&format=csv", csv_href
    assert html_href.endswith("format=html") and f"from={day}" in html_href
    got = drv.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(async (r) => done([r.status, r.headers.get('content-type'),"
        "r.headers.get('content-disposition'), (await r.text()).split('\\r\\n').length]));",
        csv_href)
    assert got[0] == 200 and got[1].startswith("text/csv"), got
    assert got[2] == f'attachment; filename="chatmon-report-{day}.csv"' and got[3] == 4, got
    screenshot(drv, "dashboard-past-day.png")
    # back to today, live
    drv.find_element("id", "day-today").click()
    until(drv, lambda d: sorted(ids(d)) == ["p-alert", "t-00001", "t-00002"],
          "the live alerts again")
    # today: no round closed, the rule hits of today's alerts' agent only
    until(drv, lambda d: [x["agent"] for x in rows(d, "#agents .agent")] == ["小美"],
          "today's agents again")
    assert js(drv, "return document.getElementById('day-today').hidden;")
    assert js(drv, "return document.getElementById('day-pick').value;") == today
    assert f"from={today}" in js(drv, "return document.getElementById('report-csv').href;")
    assert probe(drv)["sent"] == []
    # ?day=DAY (the daily summary's link) opens that day as the picker does
    open_page(drv, dash.url + f"/?day={day}")
    until(drv, lambda d: [x["agent"] for x in rows(d, "#agents .agent")] == ["alice", "bob"],
          "the linked day's agents")
    assert js(drv, "return document.getElementById('app').dataset.day;") == day


def test_past_day_says_when_it_lists_part_of_the_day(browser, redis_server, dashboard, tmp_path):
    """A past day's alerts come from the stream, at most 1 000 of them and
    10 000 entries read (GET /api/alerts?day=): a day with more, or whose
    older entries were not read (the API's "partial", a login of one shop
    behind another shop's many), is said to be listed in part; a day read
    whole is not (found by review: the page did not say it)."""
    import calendar
    users = supervisors(tmp_path, ("boss", None), ("tmsup", "tmall"))
    r = redis_server()
    c = r.client()

    def day_at(back):
        day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + TZ_MIN * 60 - back * 86400))
        return day, (calendar.timegm(time.strptime(day, "%Y-%m-%d")) - TZ_MIN * 60) * 1000 + \
            9 * 3600 * 1000

    many, t_many = day_at(4)        # 10 050 of jd after 1 of tmall
    few, t_few = day_at(3)          # 2 of tmall
    pipe = c.pipeline(transaction=False)
    for n, (t, shop) in enumerate([(t_many, "tmall")] +
                                  [(t_many + 1 + i, "jd") for i in range(10050)] +
                                  [(t_few, "tmall"), (t_few + 1, "tmall")]):
        a = alert(n, id=f"d-{n}", ts=iso(t / 1000), shop=shop)
        pipe.xadd(STREAM, {"alert": json.dumps(a, ensure_ascii=False)}, id=f"{t}-0")
    pipe.execute()
    dash = dashboard(r.url(), extra=f"  users: {users}\n" + SLA_LONG +
                     "shops:\n  tmall: {}\n  jd: {}\n")
    drv = browser

    def said(d):
        return text_of(d, "alerts-count"), js(d, "const e = document.getElementById("
                                                 "'alerts-empty'); return e.hidden ? null : "
                                                 "e.textContent;")

    part = "only the day's latest alerts are listed"
    # every shop: more than the page asks for
    login_as(drv, dash.url + f"/?day={many}&lang=en", "boss", "boss-pw")
    until(drv, lambda d: len(ids(d)) > 0 and part in said(d)[0], "the busy day said in part")
    login_as(drv, dash.url + f"/?day={few}&lang=en", "boss", "boss-pw")
    until(drv, lambda d: sorted(ids(d)) == ["d-10051", "d-10052"], "the quiet day's alerts")
    assert part not in said(drv)[0], said(drv)
    # one shop behind another's 10 050: none found in what was read, and said so
    login_as(drv, dash.url + f"/?day={many}&lang=en", "tmsup", "tmsup-pw")
    until(drv, lambda d: part in said(d)[0] and said(d)[1] ==
          "None among the day's latest alerts (older ones not read)",
          "the one shop's day said in part, none found")
    assert ids(drv) == []


def supervisors(tmp_path, *logins):
    """A users file of supervisor logins (user, "shop,shop" or None for all),
    each with the password USER-pw."""
    users = tmp_path / "users"
    for user, shops in logins:
        argv = [CHATMON, "passwd", "-f", str(users), *(["--shops", shops] if shops else []),
                user, "supervisor"]
        p = subprocess.run(argv, input=f"{user}-pw\n", capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, p.stderr
    return users


def login_as(drv, url, user, password):
    """A fresh page at url (no cookie left from another user), signed in as user."""
    shown = "return !document.getElementById(arguments[0]).hidden;"
    drv.delete_all_cookies()
    open_page(drv, url)
    until(drv, lambda d: js(d, shown, "login"), f"the login form for {user}")
    drv.find_element("id", "login-user").send_keys(user)
    drv.find_element("id", "login-password").send_keys(password)
    drv.find_element("id", "login-submit").click()
    until(drv, lambda d: js(d, shown, "app"), f"the page for {user}")


def forgive_report_403(driver, port):
    """The report refused on purpose (403) is logged by Chromium as SEVERE."""
    seen = browser_log(driver)
    mine = [e for e in seen if e.get("level") == "SEVERE" and
            f"http://127.0.0.1:{port}/api/report" in e.get("message", "") and
            "403" in e.get("message", "")]
    driver.chatmon_log[:] = [e for e in seen if e not in mine]
    return mine


def test_past_day_of_a_shop(browser, redis_server, dashboard, tmp_path):
    """With two shops, a past day's agents follow the shop filter as the live
    ones do: a shop picked, that shop's report and its rows (the report's
    rows name no shop: the filter dropped every one), asked again when the
    shop or queue changes; a login of one shop sees its shop's day (it was
    refused the sums, and the page said "needs the supervisor role"), one
    of two shops each shop's under its heading, and a 403 for a shop is
    said as such."""
    import calendar
    users = supervisors(tmp_path, ("boss", None), ("tmsup", "tmall"), ("two", "tmall,jd"))
    r = redis_server()
    c = r.client()
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + TZ_MIN * 60 - 3 * 86400))
    d0 = (calendar.timegm(time.strptime(day, "%Y-%m-%d")) - TZ_MIN * 60) * 1000
    t = d0 + 9 * 3600 * 1000
    # alice: two rounds in tmall (one in its presale queue), bob one in jd, carol one of no shop
    for n, (ag, o, at, shop, queue) in enumerate((
            ("alice", t, t + 4000, "tmall", "presale"), ("alice", t + 60000, t + 70000, "tmall", ""),
            ("bob", t + 100000, t + 130000, "jd", ""), ("carol", t + 1000, t + 6000, "", ""))):
        f = {"k": "a", "ag": ag, "o": str(o), "at": str(at), "f": "1", "c": f"p-{n}"}
        if shop:
            f["sh"] = shop
        if queue:
            f["qu"] = queue
        c.xadd(f"chatmon:sla:{{{n + 3}}}:log", f, id=f"{at}-0")
    dash = dashboard(r.url(), extra=f"  users: {users}\n" + SLA +
                     "shops:\n  tmall:\n    name: 天猫\n    queues:\n      presale: {}\n"
                     "  jd: {}\n")
    drv = browser
    url = dash.url + f"/?day={day}"

    def agents(d):
        return [(x["agent"], x.get("shop", "")) for x in rows(d, "#agents .agent")]

    def groups(d):
        return [x["shop"] for x in rows(d, "#agents .shop-group")]

    def empty_text(d):
        return js(d, "const e = document.getElementById('agents-empty');"
                     "return e.hidden ? null : e.textContent;")

    def pick(d, id_, value):
        until(d, lambda d2: js(d2, "return [...document.getElementById(arguments[0]).options]"
                                   ".some((o) => o.value === arguments[1]);", id_, value),
              f"{value} offered in #{id_}")
        Select(d.find_element("id", id_)).select_by_value(value)

    # every shop: each agent's totals
    login_as(drv, url, "boss", "boss-pw")
    until(drv, lambda d: agents(d) == [("alice", ""), ("bob", ""), ("carol", "")],
          "the day's agents, every shop")
    assert cell(drv, "alice", "rounds") == "2"
    # a shop picked: its report, its rows, under its heading
    pick(drv, "f-shop", "tmall")
    until(drv, lambda d: agents(d) == [("alice", "tmall")], "tmall's agents that day")
    assert cell(drv, "alice", "rounds") == "2" and groups(drv) == ["tmall"]
    assert "shop=tmall&" in js(drv, "return document.getElementById('report-csv').href;")
    pick(drv, "f-queue", "presale")
    until(drv, lambda d: agents(d) == [("alice", "tmall")] and cell(d, "alice", "rounds") == "1",
          "tmall's presale queue that day")
    pick(drv, "f-shop", "jd")
    until(drv, lambda d: agents(d) == [("bob", "jd")], "jd's agents that day")
    assert cell(drv, "bob", "rounds") == "1" and empty_text(drv) is None
    # a login of one shop: that shop's day, no refusal
    login_as(drv, url, "tmsup", "tmsup-pw")
    until(drv, lambda d: agents(d) == [("alice", "tmall")], "tmsup's shop that day")
    assert cell(drv, "alice", "rounds") == "2" and empty_text(drv) is None
    assert "shop=tmall&" in js(drv, "return document.getElementById('report-csv').href;")
    pick(drv, "f-shop", "tmall")
    until(drv, lambda d: agents(d) == [("alice", "tmall")] and empty_text(d) is None,
          "tmsup's shop picked")
    # the sums refused: said as a matter of shops, not of role
    said = drv.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "api('GET', `/api/report?from=${arguments[0]}&to=${arguments[0]}`)"
        ".then((res) => done([res.status, res.error]));", day)
    assert said[0] == 403 and "店铺" in said[1] and "主管" not in said[1], said
    assert forgive_report_403(drv, dash.port)
    # a login of two shops: each one's report, under its heading
    login_as(drv, url, "two", "two-pw")
    until(drv, lambda d: agents(d) == [("bob", "jd"), ("alice", "tmall")],
          "each of two shops that day")
    assert groups(drv) == ["jd", "tmall"] and empty_text(drv) is None
    assert probe(drv)["sent"] == []


# ------------------------------------------------------------------ logout, then another login

def sign_out(drv):
    """The logout button, on the same tab: back to the login form."""
    drv.find_element("id", "logout").click()
    until(drv, lambda d: js(d, "return !document.getElementById('login').hidden;"),
          "the login form after logout")


def sign_in(drv, user, password):
    """The login form of the page as it is (no reload): the feed live for user."""
    drv.find_element("id", "login-user").clear()
    drv.find_element("id", "login-user").send_keys(user)
    drv.find_element("id", "login-password").send_keys(password)
    drv.find_element("id", "login-submit").click()
    until(drv, lambda d: js(d, "return !document.getElementById('app').hidden && "
                               "document.getElementById('conn').dataset.state === 'live';"),
          f"the live page for {user}")


def test_logout_forgets_a_past_day_and_the_filters(browser, redis_server, dashboard, tmp_path):
    """Logout, then a login of one shop on the same tab: the past day the
    last login picked, its alerts (another shop's chat text), the shops it
    was told of and its filters went with it, and so did a past day's
    answer that came after the logout. They stayed: the next login saw
    the other shop's texts its scope does not cover (found by review)."""
    import calendar
    users = supervisors(tmp_path, ("boss", None), ("jdsup", "jd"))
    r = redis_server()
    c = r.client()
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + TZ_MIN * 60 - 2 * 86400))
    t = (calendar.timegm(time.strptime(day, "%Y-%m-%d")) - TZ_MIN * 60 + 9 * 3600) * 1000
    secret = "天猫买家的手机号 13800000000"
    old = alert(9, id="p-secret", ts=iso(t / 1000), shop="tmall", conversation="c-secret",
                text=secret, match={"start": 0, "end": 2}, matched="天猫")
    c.xadd(STREAM, {"alert": json.dumps(old, ensure_ascii=False)}, id=f"{t}-0")
    xadd(c, alert(1, shop="jd"))
    dash = dashboard(r.url(), extra=f"  users: {users}\n" + SLA_LONG +
                     "shops:\n  tmall: {}\n  jd: {}\n")
    drv = browser
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() + TZ_MIN * 60))
    pick_day = ("const i = document.getElementById('day-pick'); i.value = arguments[0];"
                "i.dispatchEvent(new Event('change'));")

    def shop_options(d):
        return [o.get_attribute("value") for o in Select(d.find_element("id", "f-shop")).options]

    def forgotten(d, who):
        """What jdsup's page must show: today, jd's, unfiltered, no tmall text."""
        until(d, lambda d2: ids(d2) == ["t-00001"], f"{who}: today's alert of jd only")
        assert secret not in js(d, "return document.body.innerHTML;"), who
        assert js(d, "return document.getElementById('app').dataset.day;") == today, who
        assert js(d, "return document.getElementById('day-pick').value;") == today, who
        assert js(d, "return document.getElementById('day-today').hidden;"), who
        assert shop_options(d) == ["", "jd"], who
        assert js(d, "return document.getElementById('f-shop').value;") == "", who
        assert js(d, "return document.getElementById('f-sev-info').checked;"), who

    # boss: the past day, tmall picked, info unticked; logout; jdsup
    login_as(drv, dash.url + "/", "boss", "boss-pw")
    until(drv, lambda d: sorted(ids(d)) == ["p-secret", "t-00001"], "boss: the feed's alerts")
    js(drv, pick_day, day)
    until(drv, lambda d: ids(d) == ["p-secret"], "boss: the past day's alert of tmall")
    Select(drv.find_element("id", "f-shop")).select_by_value("tmall")
    drv.find_element("id", "f-sev-info").click()
    until(drv, lambda d: js(d, "return document.getElementById('f-shop').value;") == "tmall",
          "boss: tmall picked")
    sign_out(drv)
    assert secret not in js(drv, "return document.body.innerHTML;")
    sign_in(drv, "jdsup", "jdsup-pw")
    forgotten(drv, "after boss's past day")
    sign_out(drv)

    # boss picks the day again, and logs out before the answer comes
    sign_in(drv, "boss", "boss-pw")
    js(drv, "const f = window.fetch; window.__late = 0;"
            "window.fetch = (u, o) => f(u, o).then((res) => !String(u).includes('day=') ? res"
            "  : new Promise((ok) => setTimeout(() => { window.__late++; ok(res); }, 1500)));")
    js(drv, pick_day, day)
    sign_out(drv)
    sign_in(drv, "jdsup", "jdsup-pw")
    until(drv, lambda d: js(d, "return window.__late;") == 1, "boss's past day answered late")
    time.sleep(0.3)         # a frame or two to draw it, if it were taken
    forgotten(drv, "after boss's late answer")
    assert probe(drv)["sent"] == []


def test_logout_and_login_again_draws_the_agents(browser, redis_server, dashboard, tmp_path):
    """Logout, then a login on the same tab: the first agents message of the
    new feed is drawn, though it is the same as the last one before the
    logout. It was dropped as a repeat, and the table said 正在加载… until
    the figures changed (found by review)."""
    users = supervisors(tmp_path, ("sup", None))
    r = redis_server()
    c = r.client()
    xadd(c, alert(1))
    dash = dashboard(r.url(), extra=f"  users: {users}\n" + SLA_LONG)
    drv = browser

    def agents(d):
        return [x["agent"] for x in rows(d, "#agents .agent")]

    login_as(drv, dash.url + "/", "sup", "sup-pw")
    until(drv, lambda d: agents(d) == ["小美"], "the agents table")
    sign_out(drv)
    assert agents(drv) == []
    sign_in(drv, "sup", "sup-pw")
    until(drv, lambda d: agents(d) == ["小美"], "the agents table after a login again",
          timeout=5)
    assert js(drv, "return document.getElementById('agents-empty').hidden;")
