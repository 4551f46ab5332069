"""`chatmon notify`'s daily summary (notify.daily_at, docs/notify.md): past
that time of day, yesterday's report goes to notify.daily_route, once,
whichever worker and however often they restart. Yesterday's rounds are
written to the SLA logs as chatmond's script writes them; the figures are
checked against `chatmon report` for the same day (the same data, another
program)."""

import calendar
import json
import subprocess
import time

from conftest import CHATMON, SLOW, wait_for
from test_notify import notify, pki, robot, route  # noqa: F401 (fixtures)

# sla.timezone's default, +08:00; but the summary waits for 01:00 (yesterday's
# late hour), so between 00:00 and 01:30 there the tests run at UTC-10
TZ_MIN = 480 if time.gmtime(time.time() + 480 * 60).tm_hour * 60 + \
    time.gmtime(time.time() + 480 * 60).tm_min >= 90 else -600
ZONE = 'sla:\n  timezone: "%+03d:%02d"\n' % (TZ_MIN // 60 if TZ_MIN > 0 else -(-TZ_MIN // 60),
                                            abs(TZ_MIN) % 60)


def yesterday():
    """(YYYY-MM-DD, its local midnight as epoch ms) of yesterday in the tests' zone."""
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + TZ_MIN * 60 - 86400))
    return day, (calendar.timegm(time.strptime(day, "%Y-%m-%d")) - TZ_MIN * 60) * 1000


def write_rounds(c, d0):
    """Four rounds of yesterday: alice 3 s and 200 s, bob 10 s; one breach."""
    t = d0 + 10 * 3600 * 1000
    rounds = (("alice", t, t + 3000, "c-1"), ("alice", t + 60000, t + 260000, "c-2"),
              ("bob", t + 1000, t + 11000, "c-3"))
    for ag, o, at, conv in sorted(rounds, key=lambda x: x[2]):     # stream ids grow
        c.xadd("chatmon:sla:{3}:log", {"k": "a", "ag": ag, "o": str(o), "at": str(at),
                                       "f": "0", "c": conv}, id=f"{at}-0")
    c.xadd("chatmon:sla:{3}:log", {"k": "b", "ag": "alice", "o": str(t + 60000),
                                   "at": str(t + 90000), "f": "0", "c": "c-2"},
           id=f"{t + 300000}-0")


def test_daily_summary_once_with_yesterdays_figures(redis_server, robot, notify, tmp_path):
    r = redis_server()
    c = r.client()
    day, d0 = yesterday()
    write_rounds(c, d0)
    rb = robot(daily="s3")
    routes = [route("daily", "webhook", rb, match={"type": ["none"]}, secret="s3"),
              route("ding", "dingtalk", rb, match={"type": ["none"]}, secret="d3")]
    opts = dict(daily_at='"00:00"', daily_route="daily")
    w1 = notify(r, routes, top=ZONE, **opts)
    wait_for(lambda: rb.delivered("daily"), 10 * SLOW, "the daily summary")
    got = rb.delivered("daily")
    assert len(got) == 1, rb.summary()
    e = got[0]
    assert e["sig_ok"] is True, e
    body = e["body"]
    assert body["type"] == "report.daily" and body["day"] == day, body
    assert body["id"] == f"daily-{day}"
    # the same figures as `chatmon report` gives for that day
    conf = w1.conf
    rep = json.loads(subprocess.run([CHATMON, "report", "-c", conf, "--from", day,
                                     "--to", day, "--format", "json"], check=True,
                                    capture_output=True, text=True, timeout=30).stdout)
    assert body["team"] == rep["team"], (body["team"], rep["team"])
    assert body["team"]["rounds"] == 3 and body["team"]["breaches"] == 1
    assert body["worst"][0]["conversation"] == "c-2"
    # the day's marker says sent once the worker has the robot's answer
    # (a worker stopped before that holds the day's lease an hour, as
    # docs/notify.md says; the robot logs a message before it answers)
    wait_for(lambda: c.get(f"chatmon:notify:daily:{day}") == "sent", 10 * SLOW,
             "the day marked sent")
    # restarted, and a second worker: nobody sends that day again
    w1.stop()
    notify(r, routes, top=ZONE, **opts)
    notify(r, routes, consumer="w2", top=ZONE, **opts)
    time.sleep(3 * SLOW)
    assert len(rb.delivered("daily")) == 1, rb.summary()
    assert c.get(f"chatmon:notify:daily:{day}") == "sent"


def test_the_day_held_while_its_summary_waits_keeps_its_lease(redis_server, robot, notify):
    """Found by review: the day's lease (an hour) was set once, so that a
    summary that waited longer in its route (a robot's throttle, retries),
    or a Redis restarted without persistence, let another live worker send
    the day too. The worker holding it sets the lease again at each check
    (every 30 s): here the lease is deleted, as such a Redis loses it, and
    comes back; the second worker sends nothing; the day goes once."""
    r = redis_server()
    c = r.client()
    day, d0 = yesterday()
    write_rounds(c, d0)
    rb = robot(ding="d3")
    rb.control("ding", "errcode-ratelimit", count=1000)      # throttled: it waits
    routes = [route("ding", "dingtalk", rb, match={"type": ["none"]}, secret="d3")]
    opts = dict(daily_at='"00:00"', daily_route="ding", limited_pause="2s", top=ZONE)
    notify(r, routes, **opts)
    key = f"chatmon:notify:daily:{day}"
    wait_for(lambda: rb.entries("ding"), 10 * SLOW, "the summary tried")
    assert c.get(key) == "sending"
    c.delete(key)
    wait_for(lambda: c.get(key) == "sending", 40 * SLOW, "the lease set again")
    notify(r, routes, consumer="w2", **opts)
    time.sleep(2 * SLOW)                    # its first check: the day is held
    rb.control("ding", "ok")
    wait_for(lambda: c.get(key) == "sent", 15 * SLOW, "the day marked sent")
    time.sleep(2 * SLOW)
    assert len([e for e in rb.entries("ding") if e["status"] == 200 and
                json.loads(e["answer"])["errcode"] == 0]) == 1, rb.summary("ding")


def test_daily_summary_given_up_is_a_whole_dead_letter(redis_server, robot, notify):
    """A summary the route never takes goes to the dead letters with the
    report in it, as an alert's holds the alert (found by review: it was
    "{}"), and the day is marked dead: nobody sends it again."""
    r = redis_server()
    c = r.client()
    day, d0 = yesterday()
    write_rounds(c, d0)
    rb = robot(daily="s3")
    rb.control("daily", "500")
    notify(r, [route("daily", "webhook", rb, match={"type": ["none"]}, secret="s3")],
           daily_at='"00:00"', daily_route="daily", attempts="2", top=ZONE)
    wait_for(lambda: c.xlen("chatmon:notify:dead") == 1, 10 * SLOW, "the dead letter")
    (_, f), = c.xrange("chatmon:notify:dead")
    assert f["route"] == "daily" and f["id"] == f"daily-{day}", f
    rep = json.loads(f["alert"])
    assert rep["from"] == rep["to"] == day and rep["team"]["rounds"] == 3, rep
    wait_for(lambda: c.get(f"chatmon:notify:daily:{day}") == "dead", 5 * SLOW,
             "the day marked dead")


def test_daily_summary_text_for_a_robot(redis_server, robot, notify):
    r = redis_server()
    c = r.client()
    day, d0 = yesterday()
    write_rounds(c, d0)
    rb = robot(ding="d3")
    routes = [route("ding", "dingtalk", rb, match={"type": ["none"]}, secret="d3")]
    notify(r, routes, daily_at='"00:00"', daily_route="ding",
           top=ZONE + "dashboard:\n  public_url: https://cs.example.com/\n")
    wait_for(lambda: rb.delivered("ding"), 10 * SLOW, "the daily summary")
    e = rb.delivered("ding")[0]
    assert e["sig_ok"] is True, e
    text = e["text"]
    assert text.startswith(f"【chatmon】日报 {day}"), text
    assert "接待 3 轮" in text and "超时 1 次" in text, text
    assert "最长等待 3分20秒 · 客服 alice · 会话 c-2" in text, text
    assert f"https://cs.example.com/?day={day}" in text, text
    assert text.rstrip().endswith(f"id: daily-{day}"), text


def test_daily_summary_defuses_the_chat_sides_ids(redis_server, robot, notify):
    """Found by review: the summary's slowest agent and longest wait (its
    agent and conversation) went into the DingTalk markdown raw, so a
    conversation id with newlines and markdown put a heading and a phishing
    link into the supervisors' group. They are shown as in an alert
    (docs/notify.md): control characters as U+FFFD, link and HTML
    characters full-width."""
    r = redis_server()
    c = r.client()
    day, d0 = yesterday()
    t = d0 + 10 * 3600 * 1000
    evil = "tb-1\n\n### [⚠ 请立即复核: 点此登录](https://evil.example/login) <font color=red>x</font>"
    agent = "eve\n# [me](https://evil.example/)"
    c.xadd("chatmon:sla:{3}:log", {"k": "a", "ag": agent, "o": str(t), "at": str(t + 500000),
                                   "f": "0", "c": evil}, id=f"{t + 500000}-0")
    rb = robot(ding="d3")
    notify(r, [route("ding", "dingtalk", rb, match={"type": ["none"]}, secret="d3")],
           daily_at='"00:00"', daily_route="ding", top=ZONE)
    wait_for(lambda: rb.delivered("ding"), 10 * SLOW, "the daily summary")
    e = rb.delivered("ding")[0]
    assert e["sig_ok"] is True, e
    text = e["body"]["markdown"]["text"]
    # (cut at 96 bytes, as an alert's)
    assert "会话 tb-1\ufffd\ufffd### ［⚠ 请立即复核: 点此登录］（https∶//evil․example/login） " \
        "＜font color=red＞x＜/fon…\n" in text, text
    assert "客服 eve\ufffd# ［me］（https∶//evil․example/）" in text, text
    assert "](" not in text and "\n#" not in text and "<font" not in text, text
    assert text.rstrip().endswith(f"id: daily-{day}"), text


def test_not_before_yesterdays_late_hour(redis_server, robot, notify):
    """daily_at before 01:00: the summary waits for 01:00, when yesterday's
    logs are complete (a round closed at 23:59:59 is logged a moment
    later; chatmon report reads an hour past the day). At 00:30 local it
    went out, without what those last moments logged."""
    r = redis_server()
    rb = robot(daily="s3")
    routes = [route("daily", "webhook", rb, match={"type": ["none"]}, secret="s3")]
    now_min = int(time.time() // 60) % 1440
    off = (30 - now_min) % 1440                     # local 00:30 now
    if off > 840:
        off -= 1440
    zone = 'sla:\n  timezone: "%s%02d:%02d"\n' % ("+" if off >= 0 else "-", abs(off) // 60,
                                                abs(off) % 60)
    notify(r, routes, daily_at='"00:00"', daily_route="daily", top=zone)
    time.sleep(3 * SLOW)
    assert rb.delivered("daily") == [], rb.summary()
