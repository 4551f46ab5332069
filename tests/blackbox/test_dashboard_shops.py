"""Many shops on one dashboard (issue 18; docs/dashboard.md "Shops" and
"Scope"): the agents' figures split by (shop, queue, agent) from the rounds
chatmond logged, each shop judged by its own settings; who waits with its
shop; GET /api/alerts?shop=&queue=; a login limited to some shops
(`chatmon passwd --shops`) that sees only those in the feed and every
/api/ route, and is refused 403 on another shop's alert or conversation.
Real redis-server, real chatmond and `chatmon dashboard`, plain HTTP and
WebSocket clients."""

import asyncio
import calendar
import json
import os
import shutil
import subprocess
import tempfile
import time

from conftest import CHATMON, SLOW, T, agent, recv, run, sla_bucket, wait_for
from test_dashboard import Page
from test_dashboard_api import STREAM, alert, login, request, xadd

SHOPS = """shop_id: query:shop
queue_id: query:queue
sla:
  first_response: 30s
  reply: 60s
  timezone: "+08:00"
shops:
  tm:
    name: 天猫旗舰店
    sla:
      first_response: 20s
    queues:
      presale:
        sla:
          first_response: 10s
  jd:
    sla:
      cap: 300s
"""


def passwd(path, argv, password, check=True):
    """chatmon passwd -f path ARGV... with password on its standard input."""
    p = subprocess.run([CHATMON, "passwd", "-f", str(path), *argv],
                       input=password + "\n", capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def shop_alert(n, shop=None, queue=None, conversation=None, agent_id="alice", ms=None):
    a = alert(n, ms=ms, agent=agent_id, conversation=conversation)
    # as chatmond writes them: right after "conversation", only when set
    out = {}
    for k, v in a.items():
        out[k] = v
        if k == "conversation":
            if shop:
                out["shop"] = shop
            if queue:
                out["queue"] = queue
    return out


def test_figures_and_waiting_split_by_shop(dashboard, daemon, backend, redis_server, tmp_path):
    """One agent serves no shop, tm's presale queue and jd: the dashboard's
    agents message has a row for each, with its shop and queue, from the
    rounds Redis logged; a customer left waiting in tm is listed with its
    shop and queue and judged by presale's own first response (10 s)."""
    r = redis_server()
    b = backend(script="customer.py")
    args = ["-o", "redis.snapshot=200ms"]
    one = daemon(b.port, extra=SHOPS, redis=r.url(), args=args, name="one")
    users = tmp_path / "users"
    passwd(users, ["boss"], "boss-pw")
    passwd(users, ["--shops", "jd", "jdview"], "jd-pw")
    dash = dashboard(r.url(), extra=f"  users: {users}\n" + SHOPS)
    boss, jd = login(dash, "boss", "boss-pw"), login(dash, "jdview", "jd-pw")

    # short paths: chatmond's shop_id refuses (400) an agent whose query has
    # any argument longer than a shop id, as pytest's temporary paths are
    # (src/session.c, session_id_source; reported to the lead)
    short = tempfile.mkdtemp(prefix="cm-")

    def script(name, convs):
        p = os.path.join(short, f"{name}.json")
        with open(p, "w", encoding="utf-8") as f:
            f.write(json.dumps([{"at": 0, "text": json.dumps(
                {"type": "message", "conversation": c, "text": "请问包邮吗"},
                ensure_ascii=False)} for c in convs]))
        return p

    async def answer(path, n, leave=0):
        """Answer n customers of the script, leave `leave` more waiting."""
        ws = await agent(one, path).__aenter__()
        for _ in range(n):
            f = json.loads(await recv(ws))
            await ws.send(json.dumps({"type": "message", "conversation": f["conversation"],
                                      "text": "亲,全国包邮的哦"}, ensure_ascii=False))
        for _ in range(leave):
            await recv(ws)
        await asyncio.sleep(0.3)
        return ws

    async def main():
        held = [await answer(f"/script?agent=gail&file={script('none', ['n-1'])}", 1),
                await answer("/script?shop=tm&queue=presale&agent=gail&file="
                             f"{script('tm', ['t-1', 't-2', 't-3'])}", 2, leave=1),
                await answer(f"/script?shop=jd&agent=gail&file={script('jd', ['j-1'])}", 1)]
        async with dash.feed(extra_headers={"Cookie": f"chatmon_session={boss}"}) as feed:
            p = Page(feed)
            hello = await p.next("hello")
            assert {"id": "tm", "name": "天猫旗舰店", "queues": ["presale"]} in hello["shops"]
            assert {"id": "jd", "queues": []} in hello["shops"]
            deadline = time.monotonic() + 5 * SLOW
            while True:
                ag = await p.next("agents")
                rows = {(x.get("shop", ""), x.get("queue", ""), x["agent"]): x
                        for x in ag["agents"]}
                if len(rows) == 3 and sum(x["rounds"] for x in rows.values()) == 4:
                    break
                assert time.monotonic() < deadline, ag
            # no shop first, then the shops in order; "shop"/"queue" only when set
            assert list(rows) == [("", "", "gail"), ("jd", "", "gail"),
                                  ("tm", "presale", "gail")], ag
            assert "shop" not in ag["agents"][0] and "queue" not in ag["agents"][1]
            assert rows[("tm", "presale", "gail")]["rounds"] == 2
            assert rows[("tm", "presale", "gail")]["answered"] == 2
            assert rows[("jd", "", "gail")]["rounds"] == 1
            assert rows[("", "", "gail")]["rounds"] == 1
            deadline = time.monotonic() + 5 * SLOW
            while True:
                w = await p.next("waiting")
                if w["rounds"]:
                    break
                assert time.monotonic() < deadline, w
            (t3,) = w["rounds"]
            assert t3["conversation"] == "t-3" and t3["shop"] == "tm", w
            assert t3["queue"] == "presale" and t3["threshold_ms"] == 10000, w
        # a login of jd: its row only, and nobody of its shop waits
        async with dash.feed(extra_headers={"Cookie": f"chatmon_session={jd}"}) as feed:
            p = Page(feed)
            assert [s["id"] for s in (await p.next("hello"))["shops"]] == ["jd"]
            ag = await p.next("agents")
            assert [(x.get("shop"), x["agent"], x["rounds"]) for x in ag["agents"]] == \
                [("jd", "gail", 1)], ag
            w = await p.next("waiting")
            assert w["rounds"] == [] and w["total"] == 0, w
        for ws in held:
            await ws.close()
    try:
        run(main())
    finally:
        shutil.rmtree(short)


def test_alerts_filtered_by_shop_and_queue(dashboard, redis_server):
    r = redis_server()
    c = r.client()
    d = dashboard(r.url(), extra="  token: tok-1\n")
    for n, shop, queue in ((1, None, None), (2, "tm", None), (3, "tm", "presale"), (4, "jd", None)):
        xadd(c, shop_alert(n, shop, queue))

    def ids(path):
        st, _, doc = request(d, "GET", path, bearer="tok-1")
        assert st == 200, doc
        return [int(x["alert"]["id"][-2:]) for x in doc["alerts"]]

    wait_for(lambda: len(ids("/api/alerts")) == 4, 5 * SLOW, "the alerts read")
    assert ids("/api/alerts?shop=tm") == [2, 3]
    assert ids("/api/alerts?shop=tm&queue=presale") == [3]
    assert ids("/api/alerts?queue=presale") == [3]
    assert ids("/api/alerts?shop=jd") == [4]
    assert ids("/api/alerts?shop=") == [1]              # those of no shop
    assert ids("/api/alerts?shop=nope") == []
    # a past day's alerts (read from the stream) take the same filters
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    st, _, doc = request(d, "GET", f"/api/alerts?day={day}&shop=tm&queue=presale",
                         bearer="tok-1")
    if st == 200 and doc.get("alerts"):
        assert [x["alert"].get("queue") for x in doc["alerts"]] == ["presale"]


def test_a_login_of_one_shop(dashboard, redis_server, tmp_path):
    """tmsup (--shops tm) sees tm's alerts only, in the feed and the API,
    cannot widen that with ?shop=, and is refused 403 on jd's alert and
    conversation; boss (no shops) sees all. The users file of before shops
    stays valid; passwd keeps a user's shops when only the password changes."""
    r = redis_server()
    c = r.client()
    users = tmp_path / "users"
    passwd(users, ["boss", "supervisor"], "boss-pw")          # a line of three fields
    passwd(users, ["--shops", "tm", "tmsup", "supervisor"], "tm-pw")
    lines = users.read_text().splitlines()
    assert lines[0].count(":") == 2 and lines[1].startswith("tmsup:supervisor:$argon2id$")
    assert lines[1].endswith(":tm")
    # a new password keeps the shops; --all-shops lifts them; bad lists are refused
    passwd(users, ["tmsup", "supervisor"], "tm-pw")
    assert users.read_text().splitlines()[1].endswith(":tm")
    p = passwd(users, ["--shops", "tm,,jd", "x"], "pw", check=False)
    assert p.returncode == 2 and "bad --shops" in p.stderr
    passwd(users, ["--shops", "jd,other", "jdview"], "jd-pw")
    assert users.read_text().splitlines()[2].endswith(":jd,other")
    passwd(users, ["--all-shops", "jdview"], "jd-pw")
    assert users.read_text().splitlines()[2].count(":") == 2

    d = dashboard(r.url(), extra=f"  users: {users}\n" + "shops:\n  tm:\n    name: 天猫\n  jd: {}\n")
    sent = [shop_alert(1, None, None, conversation="c-none"),
            shop_alert(2, "tm", None, conversation="c-tm"),
            shop_alert(3, "tm", "presale", conversation="c-tm2"),
            shop_alert(4, "jd", None, conversation="c-jd")]
    for a in sent:
        xadd(c, a)
    boss = login(d, "boss", "boss-pw")
    tm = login(d, "tmsup", "tm-pw")
    st, _, me = request(d, "GET", "/api/me", cookie=tm)
    assert me == {"user": "tmsup", "role": "supervisor", "shops": ["tm"]}
    assert request(d, "GET", "/api/login", cookie=tm)[2] == {
        "logins": True, "user": "tmsup", "role": "supervisor", "shops": ["tm"]}
    assert request(d, "GET", "/api/me", cookie=boss)[2] == {"user": "boss", "role": "supervisor"}

    def ids(path, cookie):
        st, _, doc = request(d, "GET", path, cookie=cookie)
        assert st == 200, doc
        return [int(x["alert"]["id"][-2:]) for x in doc["alerts"]]

    wait_for(lambda: len(ids("/api/alerts", boss)) == 4, 5 * SLOW, "the alerts read")
    assert ids("/api/alerts", tm) == [2, 3]
    assert ids("/api/alerts?shop=jd", tm) == []          # no widening
    assert ids("/api/alerts?shop=", tm) == []
    assert ids("/api/alerts?queue=presale", tm) == [3]
    # actions: its shop's alert yes, another's 403 (and nothing written)
    jd_id = sent[3]["id"]
    tm_id = sent[1]["id"]
    st, _, doc = request(d, "POST", f"/api/alerts/{jd_id}", {"state": "acked"}, cookie=tm)
    assert st == 403 and "shop" in doc["error"], doc
    assert c.hget("chatmon:alerts:handling", jd_id) is None
    st, _, doc = request(d, "POST", f"/api/alerts/{tm_id}", {"state": "acked"}, cookie=tm)
    assert st == 200, doc
    st, _, doc = request(d, "POST", f"/api/alerts/{jd_id}", {"state": "acked"}, cookie=boss)
    assert st == 200, doc
    # conversations and notes: another shop's 403, an unknown one 403, its own served
    assert request(d, "GET", "/api/conversations/c-jd", cookie=tm)[0] == 403
    assert request(d, "GET", "/api/conversations/c-none", cookie=tm)[0] == 403
    assert request(d, "GET", "/api/conversations/c-tm", cookie=tm)[0] == 200
    assert request(d, "GET", "/api/conversations/c-jd", cookie=boss)[0] == 200
    # one the dashboard holds nothing of: its SLA record in Redis says whose
    for conv, shop in (("c-quiet", "tm"), ("c-quiet-jd", "jd")):
        c.hset("chatmon:sla:{%d}:c:%s" % (sla_bucket(conv), conv),
               mapping={"op": "0", "sh": shop, "qu": ""})
    # let through (404: no turns of it kept here), where another shop's is refused
    assert request(d, "GET", "/api/conversations/c-quiet", cookie=tm)[0] == 404
    assert request(d, "GET", "/api/conversations/c-quiet-jd", cookie=tm)[0] == 403
    assert request(d, "GET", "/api/conversations/c-gone", cookie=tm)[0] == 403
    st, _, doc = request(d, "POST", "/api/agents/alice/notes",
                         {"conversation": "c-quiet", "text": "注意用语"}, cookie=tm)
    assert st == 403, doc           # a whisper needs what the page shows of it
    st, _, doc = request(d, "POST", "/api/agents/alice/notes",
                         {"conversation": "c-jd", "text": "注意用语"}, cookie=tm)
    assert st == 403, doc
    # the stored days sum every shop: a login of some reads one of its shops only
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 8 * 3600))
    assert request(d, "GET", f"/api/report?from={day}", cookie=tm)[0] == 403
    assert request(d, "GET", f"/api/report?from={day}&shop=jd", cookie=tm)[0] == 403
    st, _, doc = request(d, "GET", f"/api/report?from={day}&shop=tm", cookie=tm)
    assert st == 200 and doc.get("shop") == "tm", doc
    assert set(doc.get("shops", {})) <= {"tm"}, doc
    st, _, doc = request(d, "GET", f"/api/report?from={day}&shop=jd&queue=x", cookie=boss)
    assert st == 200 and doc.get("shop") == "jd" and doc.get("queue") == "x", doc
    assert request(d, "GET", f"/api/report?from={day}&queue=x", cookie=boss)[0] == 400

    async def feed(cookie):
        """hello, the shops of the alerts, and the handling reset a page gets."""
        async with d.feed(extra_headers={"Cookie": f"chatmon_session={cookie}"}) as ws:
            msgs = []
            # waiting and agents come every poll: what a second brings
            end = time.monotonic() + 1.0 * SLOW
            try:
                while time.monotonic() < end:
                    msgs.append(json.loads(await asyncio.wait_for(
                        ws.recv(), end - time.monotonic())))
            except asyncio.TimeoutError:
                pass
            of = lambda t: [m for m in msgs if m["type"] == t]
            alerts = [x["alert"] for m in of("alerts") for x in m["alerts"]]
            return of("hello")[0], [a.get("shop") for a in alerts], of("handling")[0]

    hello, shops, h = run(feed(tm))
    assert [s["id"] for s in hello["shops"]] == ["tm"]
    assert shops == ["tm", "tm"], shops
    assert list(h["alerts"]) == [tm_id], h               # jd's handling is not told
    hello, shops, h = run(feed(boss))
    assert sorted(s["id"] for s in hello["shops"]) == ["jd", "tm"]
    assert shops == [None, "tm", "tm", "jd"], shops
    assert sorted(h["alerts"]) == sorted([tm_id, jd_id]), h


def test_a_login_of_one_shop_cannot_borrow_another_shops_ids(dashboard, redis_server, tmp_path):
    """A login of tm must not reach jd's conversation c-x through a tm alert
    of conversation "c-x\\u0000" (chatmond keeps U+0000 in an id: it is
    another conversation, never c-x), nor whisper to jd's agent bob by
    naming a conversation of tm's."""
    r = redis_server()
    c = r.client()
    users = tmp_path / "users"
    passwd(users, ["boss", "supervisor"], "boss-pw")
    passwd(users, ["--shops", "tm", "tmsup", "supervisor"], "tm-pw")
    d = dashboard(r.url(), extra=f"  users: {users}\n" + "shops:\n  tm: {}\n  jd: {}\n")
    sent = [shop_alert(1, "jd", None, conversation="c-x", agent_id="bob"),
            shop_alert(2, "tm", None, conversation="c-x\u0000", agent_id="eve"),
            shop_alert(3, "tm", None, conversation="c-tm", agent_id="alice")]
    for a in sent:
        xadd(c, a)
    boss = login(d, "boss", "boss-pw")
    tm = login(d, "tmsup", "tm-pw")

    def ids(path, cookie):
        st, _, doc = request(d, "GET", path, cookie=cookie)
        assert st == 200, doc
        return [int(x["alert"]["id"][-2:]) for x in doc["alerts"]]

    wait_for(lambda: len(ids("/api/alerts", boss)) == 3, 5 * SLOW, "the alerts read")
    assert ids("/api/alerts?conversation=c-x", boss) == [1]
    assert ids("/api/alerts?conversation=c-x", tm) == []
    assert ids("/api/alerts", tm) == [2, 3]
    st, _, doc = request(d, "GET", "/api/conversations/c-x", cookie=tm)
    assert st == 403, doc
    st, _, doc = request(d, "GET", "/api/conversations/c-x", cookie=boss)
    assert st == 200 and [a["alert"]["id"] for a in doc["alerts"]] == [sent[0]["id"]], doc
    # a whisper goes to the agent of a conversation the login sees, no other
    st, _, doc = request(d, "POST", "/api/agents/bob/notes",
                         {"conversation": "c-tm", "text": "注意用语"}, cookie=tm)
    assert st == 403 and "agent" in doc["error"], doc
    assert c.zcard("chatmon:notes:pending:bob") == 0
    st, _, doc = request(d, "POST", "/api/agents/alice/notes",
                         {"conversation": "c-tm", "text": "注意用语"}, cookie=tm)
    assert st == 202, doc
    st, _, doc = request(d, "POST", "/api/agents/bob/notes",
                         {"conversation": "c-x", "text": "注意用语"}, cookie=boss)
    assert st == 202, doc


def open_round(c, conv, shop, agent_id, opened):
    """A customer of conv waiting since opened, as chatmond's convstore keeps it."""
    b = sla_bucket(conv)
    c.zadd("chatmon:sla:{%d}:open" % b, {conv: opened})
    c.hset("chatmon:sla:{%d}:c:%s" % (b, conv),
           mapping={"op": "1", "f": "0", "x": "0", "m1": "30000", "a": agent_id,
                    "w": "inst1", "sh": shop, "qu": ""})


def test_a_login_of_one_shop_sees_its_own_waiting_customers(dashboard, redis_server, tmp_path):
    """250 of jd's customers have waited 10 minutes, 205 of tm's one: a
    login of tm is shown tm's 200 longest and told all 205 wait (not the
    200 longest of every shop, all jd's, cut to its scope: none), and may
    whisper to the agent of its own waiting customer, one listed or the one
    past the 200 (its record in Redis names tm and that agent); boss is
    shown the 200 longest of all and told 455."""
    r = redis_server()
    c = r.client()
    users = tmp_path / "users"
    passwd(users, ["boss", "supervisor"], "boss-pw")
    passwd(users, ["--shops", "tm", "tmsup", "supervisor"], "tm-pw")
    d = dashboard(r.url(), extra=f"  users: {users}\n" + "shops:\n  tm: {}\n  jd: {}\n")
    now = int(time.time() * 1000)
    for i in range(250):
        open_round(c, f"jd-{i}", "jd", "bob", now - 600000 + i)
    for i in range(205):
        open_round(c, f"tm-{i}", "tm", "alice", now - 60000 + i)
    boss = login(d, "boss", "boss-pw")
    tm = login(d, "tmsup", "tm-pw")

    async def waiting(cookie, want):
        """The first waiting message that counts want (within a few polls), else
        the last: a poll under way while the rounds were written counts part
        of them, and its message may be the first a new feed gets."""
        async with d.feed(extra_headers={"Cookie": f"chatmon_session={cookie}"}) as ws:
            end, last = time.monotonic() + 3 * SLOW, None
            while time.monotonic() < end:
                m = json.loads(await recv(ws))
                if m["type"] == "waiting":
                    last = m
                    if m["total"] == want:
                        break
            assert last is not None, "no waiting message"
            return last

    w = run(waiting(tm, 205))
    assert w["total"] == 205, w["total"]
    assert len(w["rounds"]) == 200
    assert {x["shop"] for x in w["rounds"]} == {"tm"}
    assert w["rounds"][0]["conversation"] == "tm-0"
    assert w.get("shops") == {"tm": 205}, w.get("shops")        # jd's count is not told
    w = run(waiting(boss, 455))
    assert w["total"] == 455 and len(w["rounds"]) == 200, (w["total"], len(w["rounds"]))
    assert {x["shop"] for x in w["rounds"]} == {"jd"}
    # its own customers: listed, and past the 200 its page lists
    for conv in ("tm-0", "tm-204"):
        st, _, doc = request(d, "POST", "/api/notes?agent=alice",
                             {"conversation": conv, "text": "快回复"}, cookie=tm)
        assert st == 202, (conv, doc)
    st, _, doc = request(d, "GET", "/api/conversation?id=tm-0", cookie=tm)
    assert st == 200 and doc["waiting"]["conversation"] == "tm-0", doc
    # another shop's still refused, and another agent than the record's
    st, _, doc = request(d, "POST", "/api/notes?agent=bob",
                         {"conversation": "jd-0", "text": "快回复"}, cookie=tm)
    assert st == 403, doc
    st, _, doc = request(d, "POST", "/api/notes?agent=bob",
                         {"conversation": "tm-204", "text": "快回复"}, cookie=tm)
    assert st == 403, doc
    assert request(d, "GET", "/api/conversation?id=jd-0", cookie=tm)[0] == 403


def test_an_alert_of_a_shop_with_u0000_is_in_no_scope(dashboard, redis_server, tmp_path):
    """An alert whose shop is "tm\\u0000jd" is of no shop (docs/dashboard.md,
    "Scope"): a login of tm neither lists it nor acts on it (403, nothing
    written); the listing and POST /api/alerts/ID judge it alike."""
    r = redis_server()
    c = r.client()
    users = tmp_path / "users"
    passwd(users, ["boss", "supervisor"], "boss-pw")
    passwd(users, ["--shops", "tm", "tmsup", "supervisor"], "tm-pw")
    d = dashboard(r.url(), extra=f"  users: {users}\n" + "shops:\n  tm: {}\n  jd: {}\n")
    sent = [shop_alert(1, "tm\u0000jd", None, conversation="c-nul"),
            shop_alert(2, "tm", "pre\u0000sale", conversation="c-tm")]
    for a in sent:
        xadd(c, a)
    boss = login(d, "boss", "boss-pw")
    tm = login(d, "tmsup", "tm-pw")

    def ids(path, cookie):
        st, _, doc = request(d, "GET", path, cookie=cookie)
        assert st == 200, doc
        return [int(x["alert"]["id"][-2:]) for x in doc["alerts"]]

    wait_for(lambda: len(ids("/api/alerts", boss)) == 2, 5 * SLOW, "the alerts read")
    assert ids("/api/alerts", tm) == [2]
    st, _, doc = request(d, "POST", f"/api/alerts/{sent[0]['id']}",
                         {"state": "false_positive", "reason": "x"}, cookie=tm)
    assert st == 403 and "shop" in doc["error"], (st, doc)
    assert c.hget("chatmon:alerts:handling", sent[0]["id"]) is None
    # a queue is no part of the scope: an odd one does not hide its shop's alert
    st, _, doc = request(d, "POST", f"/api/alerts/{sent[1]['id']}", {"state": "acked"}, cookie=tm)
    assert st == 200, doc
    st, _, doc = request(d, "POST", f"/api/alerts/{sent[0]['id']}", {"state": "acked"}, cookie=boss)
    assert st == 200, doc


def test_a_login_of_one_shop_finds_its_alerts_of_a_day_behind_another_shops(
        dashboard, redis_server, tmp_path):
    """GET /api/alerts?day= for a login of tm, whose 5 alerts of that day
    came before 1 200 of jd: the day is read on past jd's until `limit` of
    tm's are found (they were lost behind the first page); past 10 pages of
    1 000 entries the answer stops and says "partial":true."""
    r = redis_server()
    c = r.client()
    users = tmp_path / "users"
    passwd(users, ["boss", "supervisor"], "boss-pw")
    passwd(users, ["--shops", "tm", "tmsup", "supervisor"], "tm-pw")
    tz = 8 * 3600
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * 86400 + tz))
    t = (calendar.timegm(time.strptime(day, "%Y-%m-%d")) - tz + 9 * 3600) * 1000

    def add(n, shop, ms):
        p.xadd(STREAM, {"alert": json.dumps(shop_alert(n, shop, ms=ms), ensure_ascii=False)},
               id=f"{ms}-0")
    p = c.pipeline(transaction=False)
    for i in range(5):
        add(i + 1, "tm", t + i)
    for i in range(1200):
        add(100 + i, "jd", t + 60000 + i)
    p.execute()
    d = dashboard(r.url(), extra=f"  users: {users}\nsla:\n  timezone: \"+08:00\"\n")
    boss = login(d, "boss", "boss-pw")
    tm = login(d, "tmsup", "tm-pw")

    def get(query, cookie):
        st, _, doc = request(d, "GET", f"/api/alerts?day={day}&{query}", cookie=cookie)
        assert st == 200, doc
        return [int(x["alert"]["id"][-4:]) for x in doc["alerts"]], doc.get("partial")

    assert get("limit=1000", tm) == ([1, 2, 3, 4, 5], False)
    assert get("limit=1000&shop=tm", tm) == ([1, 2, 3, 4, 5], False)
    assert get("limit=3", tm) == ([3, 4, 5], False)          # the newest 3, oldest first
    assert get("limit=1000&shop=jd", tm) == ([], False)      # no widening
    ids, partial = get("limit=1000", boss)
    assert ids == list(range(300, 1300)) and not partial
    assert get("limit=1000&shop=tm", boss) == ([1, 2, 3, 4, 5], False)
    # 10 200 of jd after tm's: 10 pages hold none of tm's, and the answer says so
    for i in range(9000):
        add(1300 + i, "jd", t + 120000 + i)
    p.execute()
    assert get("limit=1000", tm) == ([], True)
    assert get("limit=1", boss)[1] is False


def test_a_login_of_one_shop_is_not_told_of_other_shops_alerts(dashboard, redis_server, tmp_path):
    """While only jd has alerts, a page of tm gets no `alerts` message (an
    empty one said when jd had one), and GET /api/alerts's `last` is the id
    of tm's newest alert, not of jd's; reading on from it finds tm's next.
    A login of every shop reads on from the stream's last."""
    r = redis_server()
    c = r.client()
    users = tmp_path / "users"
    passwd(users, ["boss", "supervisor"], "boss-pw")
    passwd(users, ["--shops", "tm", "tmsup", "supervisor"], "tm-pw")
    d = dashboard(r.url(), extra=f"  users: {users}\n" + "shops:\n  tm: {}\n  jd: {}\n")
    first = xadd(c, shop_alert(1, "tm", conversation="c-tm"))
    boss = login(d, "boss", "boss-pw")
    tm = login(d, "tmsup", "tm-pw")

    def api(query, cookie):
        st, _, doc = request(d, "GET", "/api/alerts" + query, cookie=cookie)
        assert st == 200, doc
        return [int(x["alert"]["id"][-2:]) for x in doc["alerts"]], doc["last"]

    wait_for(lambda: api("", tm)[0] == [1], 5 * SLOW, "the alert read")

    async def main():
        async with d.feed(extra_headers={"Cookie": f"chatmon_session={tm}"}) as ws:
            p = Page(ws)
            assert [sid for sid, _ in await p.alerts(1)] == [first]
            for n in range(2, 7):
                xadd(c, shop_alert(n, "jd", conversation=f"c-jd{n}"))
                await asyncio.sleep(0.1)
            jd_last = c.xrevrange(STREAM, count=1)[0][0]
            wait_for(lambda: api("", boss)[1] == jd_last, 5 * SLOW, "jd's alerts read")
            # what an alerts message would have said is out by now (100 ms batches)
            end = time.monotonic() + 1.0 * SLOW
            try:
                while time.monotonic() < end:
                    p.msgs.append(json.loads(await asyncio.wait_for(
                        ws.recv(), end - time.monotonic())))
            except asyncio.TimeoutError:
                pass
            told = [m for m in p.msgs if m["type"] == "alerts"]
            assert len(told) == 1, told          # the reset of the history only
            # the API: tm's last is its own alert's; reading on finds nothing new
            assert api("", tm) == ([1], first)
            assert api(f"?since={first}", tm) == ([], first)
            assert api("", boss)[1] == jd_last
            assert api(f"?since={first}", boss) == ([2, 3, 4, 5, 6], jd_last)
            # tm's next alert comes, and is found from tm's last
            sid = xadd(c, shop_alert(7, "tm", conversation="c-tm"))
            m = await p.next("alerts")
            assert [x["sid"] for x in m["alerts"]] == [sid], m
            assert api(f"?since={first}", tm) == ([7], sid)

    run(main())


def test_a_login_of_many_shops_is_told_its_shops(dashboard, redis_server, tmp_path):
    """POST /api/login, GET /api/login and GET /api/me say every shop of a
    login, however long its list (as long as the users file takes: 1023
    bytes, about three times that quoted), not nothing and not a closed
    connection."""
    r = redis_server()
    users = tmp_path / "users"
    thirty = [f"shop-number-{i:02d}" for i in range(1, 31)]
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    most = [a + b for a in chars for b in chars][:341]      # 1022 bytes joined
    assert len(",".join(most)) == 1022
    name = "u" * 64
    passwd(users, ["--shops", ",".join(thirty), "bigsup", "supervisor"], "big-pw")
    passwd(users, ["--shops", ",".join(most), name, "viewer"], "most-pw")
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    for user, pw, role, shops in (("bigsup", "big-pw", "supervisor", thirty),
                                  (name, "most-pw", "viewer", most)):
        me = {"user": user, "role": role, "shops": shops}
        st, h, doc = request(d, "POST", "/api/login", {"user": user, "password": pw})
        assert st == 200 and doc == me, (st, doc)
        cookie = h["set-cookie"].split(";")[0].split("=", 1)[1]
        assert request(d, "GET", "/api/me", cookie=cookie)[::2] == (200, me)
        assert request(d, "GET", "/api/login", cookie=cookie)[::2] == (
            200, {"logins": True, **me})


def test_page_shop_filters(browser, redis_server, dashboard):
    """The page in Chromium: the shop and queue selects (the configured shops
    by name), the shop on the alert rows, the filter over the alerts and the
    agents, the agents table grouped by shop and queue."""
    from test_dashboard_page import Select, ids, js, open_page, rows, until
    r = redis_server()
    c = r.client()
    for n, shop, queue in ((1, None, None), (2, "tm", None), (3, "tm", "presale"), (4, "jd", None)):
        a = shop_alert(n, shop, queue)
        a["id"] = f"t-{n:05d}"
        xadd(c, a)
    # rounds as chatmond logs them: one of no shop, two of tm's presale
    now = int(time.time() * 1000)
    for conv, sh, qu in (("c-1", None, None), ("c-3", "tm", "presale"), ("c-5", "tm", "presale")):
        f = {"k": "a", "ag": "gail", "o": now - 5000, "at": now - 1000, "f": 1}
        if sh:
            f.update(sh=sh, qu=qu)
        c.xadd("chatmon:sla:{0}:log", f)
    dash = dashboard(r.url(), extra="  token: tok-2\n" + SHOPS)
    drv = browser
    open_page(drv, dash.url + "/?token=tok-2&lang=en")
    until(drv, lambda d: len(ids(d)) == 4, "the four alerts")
    assert js(drv, "return document.getElementById('shop-pick').hidden") is False
    shop = Select(drv.find_element("id", "f-shop"))
    labels = {o.get_attribute("value"): o.text for o in shop.options}
    assert labels["tm"] == "天猫旗舰店 (tm)" and labels["jd"] == "jd", labels
    by_id = {x["id"]: x for x in rows(drv, "#alerts .alert")}
    assert by_id["t-00003"]["shop"] == "tm" and by_id["t-00003"]["queue"] == "presale"
    assert "天猫旗舰店 (tm) · presale" in by_id["t-00003"]["text"]
    # gail's rounds, alice's hits: a row for each (shop, queue, agent), grouped
    until(drv, lambda d: len(rows(d, "#agents .agent")) == 6, "the agents' rows")
    groups = rows(drv, "#agents .shop-group")
    assert [(g["shop"], g["queue"]) for g in groups] == [
        ("", ""), ("jd", ""), ("tm", ""), ("tm", "presale")], groups
    assert [(x["agent"], x.get("shop"), x.get("queue")) for x in rows(drv, "#agents .agent")
            if x["agent"] == "gail"] == [("gail", None, None), ("gail", "tm", "presale")]
    shop.select_by_value("tm")
    until(drv, lambda d: sorted(ids(d)) == ["t-00002", "t-00003"], "tm's alerts")
    assert {x["shop"] for x in rows(drv, "#agents .agent")} == {"tm"}
    queue = Select(drv.find_element("id", "f-queue"))
    assert [o.get_attribute("value") for o in queue.options] == ["", "presale"]
    queue.select_by_value("presale")
    until(drv, lambda d: ids(d) == ["t-00003"], "tm's presale alert")
    shop.select_by_value(" ")
    until(drv, lambda d: ids(d) == ["t-00001"], "the alert of no shop")
    assert [x.get("shop") for x in rows(drv, "#agents .agent")] == [None, None]
    shop.select_by_value("")
    until(drv, lambda d: len(ids(d)) == 4, "all again")


def test_who_waits_reads_a_rounds_record_once_and_the_longest_again(dashboard, redis_server,
                                                                   tmp_path):
    """1 000 of jd's customers and 205 of tm's wait. Each round's shop is read
    once: later polls read only the rounds opened since and the 200 longest
    of each shop (a quarter of the records at 6 000 waiting), not every
    record every poll. What the page is told stays exact across polls: the
    counts of each shop, a longest round answered meanwhile gone, a new one
    counted, a transfer of a listed round shown."""
    r = redis_server()
    c = r.client()
    d = dashboard(r.url(), extra="shops:\n  tm: {}\n  jd: {}\n")
    now = int(time.time() * 1000)
    for i in range(1000):
        open_round(c, f"jd-{i}", "jd", "bob", now - 600000 + i)
    for i in range(205):
        open_round(c, f"tm-{i}", "tm", "alice", now - 60000 + i)

    def hmgets():
        return c.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)

    async def waiting(ws, want, check=lambda m: True):
        end = time.monotonic() + 4 * SLOW
        while time.monotonic() < end:
            m = json.loads(await recv(ws))
            if m["type"] == "waiting" and m["total"] == want and check(m):
                return m
        raise AssertionError(f"no waiting message of {want}")

    async def main():
        async with d.feed() as ws:
            m = await waiting(ws, 1205)
            assert m.get("shops") == {"jd": 1000, "tm": 205}, m.get("shops")
            await waiting(ws, 1205)                 # a whole poll after the first read
            h0 = hmgets()
            for _ in range(3):                      # a message a poll, after its reads
                await waiting(ws, 1205)
            assert hmgets() - h0 <= 3 * (2 * 200 + 50), hmgets() - h0   # was 1 205 a poll
            # jd-0 answered, jd-1 handed to carol, a new jd round opens
            b = sla_bucket("jd-0")
            c.zrem("chatmon:sla:{%d}:open" % b, "jd-0")
            c.hset("chatmon:sla:{%d}:c:jd-0" % b, "op", "0")
            c.hset("chatmon:sla:{%d}:c:jd-1" % sla_bucket("jd-1"), "a", "carol")
            open_round(c, "jd-new", "jd", "bob", now)
            m = await waiting(ws, 1205, lambda m: m["rounds"][0]["conversation"] == "jd-1")
            assert m.get("shops") == {"jd": 1000, "tm": 205}, m.get("shops")
            assert m["rounds"][0]["agent"] == "carol", m["rounds"][0]
            convs = [x["conversation"] for x in m["rounds"]]
            assert "jd-0" not in convs and len(convs) == 200, convs[:3]
    run(main())
