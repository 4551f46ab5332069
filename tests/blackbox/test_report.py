"""`chatmon report` (docs/report.md) against a real redis-server, real
chatmond instances and a real `chatmon dashboard`: today's figures equal the
dashboard's, to the unit; CSV for Excel and a self-contained HTML page; a
past day stored as one aggregate with its TTL and read back instead of the
logs; --agent; the errors and exit codes. With --log, exported chat logs
through replay's engine instead of Redis: the figures of replay's summary."""

import asyncio
import calendar
import csv
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import CHATMON, ROOT, SLOW, T, agent, recv, run

from test_dashboard import LIVE, Page

STREAM = "chatmon:alerts:log"
TZ = 8 * 3600
SLA = ("sla:\n  first_response: 1s\n  reply: 1s\n  warn_at: 0.5\n  escalate: 60s\n"
       "  timezone: \"+08:00\"\n")
FIGURES = ("rounds", "answered", "mean_ms", "p90_ms", "first_rounds", "first_mean_ms",
           "breaches", "escalations", "within_rate")


def local_day(t=None):
    return time.strftime("%Y-%m-%d", time.gmtime((time.time() if t is None else t) + TZ))


def day_start_ms(day):
    """When local day `day` starts, wall ms."""
    return (calendar.timegm(time.strptime(day, "%Y-%m-%d")) - TZ) * 1000


def conf(tmp_path, redis, extra=""):
    p = tmp_path / "report.yaml"
    p.write_text(f"redis:\n  url: {redis}\n{SLA}{extra}", encoding="utf-8")
    return str(p)


def report(cfg, *args, code=0):
    p = subprocess.run([CHATMON, "report", "-c", cfg, *args], capture_output=True,
                       timeout=30 * SLOW)
    assert p.returncode == code, (p.returncode, p.stdout[-2000:], p.stderr.decode())
    return p


def report_json(cfg, *args):
    return json.loads(report(cfg, *args).stdout)


def test_today_equals_the_dashboard(dashboard, daemon, backend, redis_server, tmp_path):
    """Rounds answered fast, one slow with a breach, one blocked turn then
    answered, through a real chatmond; the report of today has the figures
    the dashboard's feed shows for the day, to the unit."""
    r = redis_server()
    b = backend(script="customer.py")
    script = tmp_path / "alice.json"
    script.write_text(json.dumps([{"at": 0, "text": json.dumps(
        {"type": "message", "conversation": c, "text": "在吗"}, ensure_ascii=False)}
        for c in ("r-1", "r-2", "r-3", "r-4")]), encoding="utf-8")
    bob = tmp_path / "bob.json"
    bob.write_text(json.dumps([{"at": 0, "text": json.dumps(
        {"type": "message", "conversation": "r-9", "text": "请问包邮吗"},
        ensure_ascii=False)}]), encoding="utf-8")
    d = daemon(b.port, extra=SLA, redis=r.url(), rules=LIVE,
               args=["-o", "redis.fold=0"])
    dash = dashboard(r.url(), extra=SLA)

    def say(conv, text):
        return json.dumps({"type": "message", "conversation": conv, "text": text},
                          ensure_ascii=False)

    async def main():
        async with agent(d, f"/script?file={bob}&agent=bob") as wb:
            await recv(wb)
            await wb.send(say("r-9", "亲,包邮的"))
            async with agent(d, f"/script?file={script}&agent=alice") as a:
                for _ in range(4):
                    await recv(a)
                await a.send(say("r-1", "亲,在的"))
                await a.send(say("r-2", "您好"))
                await a.send(say("r-3", "加我微信吧"))      # blocked: the round stays open
                w = json.loads(await recv(a))
                assert w["type"] == "chatmon.warning" and w["blocked"], w
                await a.send(say("r-3", "亲,请讲"))
                # r-4 waits past the threshold: a breach, then a slow answer
                deadline = time.monotonic() + 10 * SLOW
                while True:
                    f = json.loads(await recv(a, timeout=10 * SLOW))
                    if f.get("type") == "chatmon.warning" and \
                            f["alert"]["type"] == "sla.breach":
                        break
                    assert time.monotonic() < deadline, f
                await asyncio.sleep(0.3)
                await a.send(say("r-4", "抱歉久等了"))
                await asyncio.sleep(0.5)
        async with dash.feed() as ws:
            p = Page(ws)
            deadline = time.monotonic() + 10 * SLOW
            while True:
                ag = await p.next("agents")
                by = {x["agent"]: x for x in ag["agents"]}
                if by.get("alice", {}).get("rounds") == 4 and by["alice"]["hits"] and \
                        by.get("bob", {}).get("rounds") == 1:
                    break
                assert time.monotonic() < deadline, ag
            return ag
    ag = run(main())
    dash_by = {x["agent"]: x for x in ag["agents"]}
    cfg = conf(tmp_path, r.url())
    day = ag["day"]
    assert day == local_day()
    rep = report_json(cfg, "--from", day, "--to", day, "--format", "json")
    assert rep["from"] == day and rep["to"] == day and rep["agent"] is None
    rep_by = {x["agent"]: x for x in rep["agents"]}
    assert sorted(rep_by) == ["alice", "bob"], rep_by
    for who in ("alice", "bob"):
        for k in FIGURES:
            assert rep_by[who][k] == dash_by[who][k], (who, k, rep_by[who], dash_by[who])
        assert abs(rep_by[who]["rate"] - dash_by[who]["rate"]) < 1e-9
        # the hours: the same rounds and means
        assert [(h["hour"], h["rounds"], h["mean_ms"]) for h in rep_by[who]["hours"]] == \
            [(h["hour"], h["rounds"], h["mean_ms"]) for h in dash_by[who]["hours"]]
    alice = rep_by["alice"]
    assert alice["breaches"] >= 1 and alice["answered"] == 4, alice
    assert alice["within_30s"] == 4 and alice["rate_30s"] == 1, alice
    # the rule hit: the dashboard's count per category, the block, the actions
    assert {c: v["alerts"] for c, v in alice["hits"].items() if v["alerts"]} == \
        dash_by["alice"]["hits"], (alice["hits"], dash_by["alice"]["hits"])
    assert alice["blocks"] == dash_by["alice"]["blocks"] == 1
    assert alice["hits"]["offplatform"]["block"] == 1
    # the team: everyone's rounds; the slowest wait first among the worst
    assert rep["team"]["rounds"] == 5 and rep["team"]["agents"] == 2
    assert rep["worst"][0]["conversation"] == "r-4" and rep["worst"][0]["agent"] == "alice"
    assert rep["worst"][0]["waited_ms"] >= 1000 and rep["worst"][0]["answered"] is True
    assert len(rep["hours"]) == 24 and [x["day"] for x in rep["days"]] == [day]
    # today is not stored: it is not over
    assert r.client().keys("chatmon:report:*") == []

    # CSV: the BOM, a header, one row per agent
    raw = report(cfg, "--from", day, "--format", "csv").stdout
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw[3:].decode("utf-8"))))
    assert [x["agent"] for x in rows] == ["alice", "bob"]
    assert int(rows[0]["rounds"]) == 4 and int(rows[0]["mean_ms"]) == alice["mean_ms"]
    assert int(rows[0]["p90_ms"]) == alice["p90_ms"]
    assert int(rows[0]["hits:offplatform"]) == 1

    # HTML: one page, nothing run and nothing fetched
    html = report(cfg, "--from", day, "--format", "html").stdout.decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "客服" in html
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)\s*=|url\(|https?://|@import", html, re.I), \
        re.findall(r".{30}(?:src|href|https?://|url\().{30}", html)
    assert ">alice<" in html and "r-4" in html

    # --agent: that agent only, the team is them
    only = report_json(cfg, "--from", day, "--agent", "bob")
    assert [x["agent"] for x in only["agents"]] == ["bob"] and only["agent"] == "bob"
    assert only["team"]["rounds"] == 1
    assert all(w["agent"] == "bob" for w in only["worst"])


def log_entry(cl, bucket, ms, seq, **fields):
    cl.xadd(f"chatmon:sla:{{{bucket}}}:log", {k: str(v) for k, v in fields.items()},
           id=f"{ms}-{seq}")


def test_a_past_day_is_stored_and_read_back(redis_server, tmp_path):
    """Synthetic log entries of a day three days ago (as chatmond's scripts
    write them), an alert of it marked a false positive: the report of that
    day stores its aggregate with retention_days as its TTL; the next report
    reads it, not the logs."""
    r = redis_server()
    c = r.client()
    day = local_day(time.time() - 3 * 86400)
    d0 = day_start_ms(day)
    t = d0 + 10 * 3600 * 1000           # 10:00 local
    log_entry(c, 1, t + 5000, 0, k="a", ag="alice", o=t, at=t + 5000, f=1, c="p-1")
    log_entry(c, 1, t + 65000, 0, k="b", ag="alice", at=t + 60000)
    log_entry(c, 1, t + 95000, 0, k="a", ag="alice", o=t + 10000, at=t + 95000, f=0, c="p-2")
    # the day before and the day after do not count
    log_entry(c, 2, d0 - 1000, 0, k="a", ag="bob", o=d0 - 5000, at=d0 - 1000, f=0, c="x")
    log_entry(c, 2, t + 4000, 0, k="a", ag="bob", o=t + 1000, at=t + 4000, f=1, c="p-3")
    log_entry(c, 2, d0 + 86400000 + 1000, 0, k="a", ag="bob", o=d0 + 86400000,
              at=d0 + 86400000 + 1000, f=0, c="y")
    # an instance whose clock ran 5 minutes ahead of Redis's: a round of
    # 00:02 logged with a stream id of 23:57 the day before (it was read
    # from the start of the day only, and counted on no day)
    log_entry(c, 3, d0 - 180000, 0, k="a", ag="carol", o=d0 + 60000, at=d0 + 120000, f=0,
              c="skew")
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime((t + 2000) / 1000))
    a = {"v": 2, "id": f"{t + 2000}-0000abcd-0000000001", "ts": ts, "type": "rule.hit",
         "severity": "critical", "agent": "alice", "conversation": "p-1", "role": "agent",
         "category": "offplatform", "rule": "offplatform.x", "action": "block",
         "text": "加我微信", "match": {"start": 0, "end": 4},
         "hits": [{"rule": "offplatform.x", "category": "offplatform", "action": "block"},
                  {"rule": "etiquette.y", "category": "etiquette", "action": "flag"}]}
    c.xadd(STREAM, {"alert": json.dumps(a, ensure_ascii=False)}, id=f"{t + 2000}-0")
    c.xadd(STREAM, {"alert": json.dumps(a, ensure_ascii=False)}, id=f"{t + 2001}-0")  # again
    c.hset("chatmon:alerts:handling", a["id"], json.dumps(
        {"state": "false_positive", "by": "li", "at": t + 9000, "reason": "ok",
         "rule": "offplatform.x", "category": "offplatform", "severity": "critical"}))
    cfg = conf(tmp_path, r.url(), "report:\n  retention_days: 30\n")
    first = report_json(cfg, "--from", day)
    by = {x["agent"]: x for x in first["agents"]}
    assert sorted(by) == ["alice", "bob", "carol"]
    assert by["carol"]["rounds"] == 1 and by["carol"]["mean_ms"] == 60000
    assert by["alice"]["rounds"] == 2 and by["alice"]["answered"] == 2
    assert by["alice"]["mean_ms"] == 45000 and by["alice"]["p90_ms"] == 85000
    assert by["alice"]["first_mean_ms"] == 5000 and by["alice"]["breaches"] == 1
    assert by["alice"]["within_rate"] == 2 and by["alice"]["within_30s"] == 1
    assert by["bob"]["rounds"] == 1 and by["bob"]["mean_ms"] == 3000
    assert by["alice"]["alerts"] == 1 and by["alice"]["false_positives"] == 1
    assert by["alice"]["hits"]["etiquette"]["flag"] == 1
    assert by["alice"]["hits"]["offplatform"]["false_positives"] == 1
    assert [w["conversation"] for w in first["worst"]] == ["p-2", "skew", "p-1", "p-3"]
    key = f"chatmon:report:day:{day}"
    ttl = c.ttl(key)
    assert 30 * 86400 - 60 < ttl <= 30 * 86400, ttl
    doc = json.loads(c.get(key))
    assert doc["v"] == 1 and doc["day"] == day and doc["partial"] is False
    assert doc["agents"]["alice"]["rounds"] == 2
    # the logs change (trimmed, say): the stored day is what counts now
    for b in range(16):
        c.delete(f"chatmon:sla:{{{b}}}:log")
    c.delete(STREAM)
    again = report_json(cfg, "--from", day)
    for k in ("agents", "team", "worst", "hours"):
        assert again[k] == first[k], k
    # a range: the stored day and two empty ones, a row each
    prev = local_day(time.time() - 4 * 86400)
    nxt = local_day(time.time() - 2 * 86400)
    rng = report_json(cfg, "--from", prev, "--to", nxt)
    assert [x["day"] for x in rng["days"]] == [prev, day, nxt]
    assert [x["rounds"] for x in rng["days"]] == [0, 4, 0]
    assert rng["team"]["rounds"] == 4
    assert c.exists(f"chatmon:report:day:{prev}") and c.exists(f"chatmon:report:day:{nxt}")


def test_a_trimmed_log_makes_a_partial_day(redis_server, tmp_path):
    """A log trimmed past the day's start has lost some of it: the day says so."""
    r = redis_server()
    c = r.client()
    day = local_day(time.time() - 2 * 86400)
    d0 = day_start_ms(day)
    for i in range(5):
        log_entry(c, 0, d0 + 3600000 + i, 0, k="a", ag="al", o=d0 + 3600000 - 1000,
                  at=d0 + 3600000 + i, f=0, c=f"t-{i}")
    c.xtrim("chatmon:sla:{0}:log", maxlen=2, approximate=False)
    rep = report_json(conf(tmp_path, r.url()), "--from", day)
    assert rep["days"][0]["partial"] is True and rep["team"]["rounds"] == 2
    assert json.loads(c.get(f"chatmon:report:day:{day}"))["partial"] is True


@pytest.mark.parametrize("args,code,words", [
    ([], 2, "--from"),
    (["--from", "2026-11-22", "--format", "xls"], 2, "--format"),
    (["--from", "2026-11-22", "--bogus"], 2, "usage"),
    (["--from", "2026-11-22", "extra"], 2, "usage"),
    (["--from", "2026-02-30"], 1, "YYYY-MM-DD"),
    (["--from", "yesterday"], 1, "YYYY-MM-DD"),
    (["--from", "2026-11-22", "--to", "2026-11-21"], 1, "after"),
])
def test_bad_arguments(args, code, words, tmp_path):
    p = report(conf(tmp_path, "redis://127.0.0.1:1"), *args, code=code)
    assert words in p.stderr.decode(), p.stderr
    assert p.stdout == b""


def test_help_and_redis_down(tmp_path):
    p = subprocess.run([CHATMON, "report", "--help"], capture_output=True, timeout=T)
    assert p.returncode == 0 and b"--from" in p.stdout
    p = report(conf(tmp_path, "redis://127.0.0.1:1"), "--from", "2026-11-22", code=1)
    assert "cannot reach Redis" in p.stderr.decode() and p.stdout == b""
    # every error is one line (docs/report.md): rconn's own warning is not another
    assert len(p.stderr.decode().splitlines()) == 1, p.stderr
    p = subprocess.run([CHATMON, "--help"], capture_output=True, timeout=T)
    assert b"chatmon report" in p.stdout


def test_a_trimmed_alert_stream_makes_a_partial_day(redis_server, tmp_path):
    """The alerts of the day trimmed away: its rule hits are missing, the day says so."""
    r = redis_server()
    c = r.client()
    day = local_day(time.time() - 2 * 86400)
    d0 = day_start_ms(day)
    for i in range(3):
        c.xadd(STREAM, {"alert": "{}"}, id=f"{d0 + 7200000 + i}-0")
    c.xtrim(STREAM, maxlen=1, approximate=False)
    rep = report_json(conf(tmp_path, r.url()), "--from", day)
    assert rep["days"][0]["partial"] is True
    # a day after the oldest alert left is whole
    later = local_day(time.time() - 86400)
    assert report_json(conf(tmp_path, r.url()), "--from", later)["days"][0]["partial"] is False



@pytest.mark.parametrize("tz", ['"+08:00"', "UTC", '"-05:00"'])
def test_the_first_day_of_1970(redis_server, tmp_path, tz):
    """1970-01-01 is a day --from accepts; east of UTC it starts before the
    epoch, and the alert stream is read from an hour before it: no stream id
    is negative, the report is an empty one (found by review: "ERR Invalid
    stream ID", exit 1)."""
    r = redis_server()
    p = tmp_path / "c70.yaml"
    p.write_text(f"redis:\n  url: {r.url()}\nsla:\n  timezone: {tz}\n", encoding="utf-8")
    rep = report_json(str(p), "--from", "1970-01-01")
    assert rep["from"] == "1970-01-01" and rep["agents"] == [], rep
    assert rep["team"]["rounds"] == 0 and rep["days"][0]["partial"] is False


def test_extreme_times_in_the_logs(redis_server, tmp_path):
    """Anyone may write the SLA logs: rounds opened at the int64 limits are
    read in the engine's range (+-2^61 ms), the HTML page's local times do
    not overflow (found by review: UBSan in report_time, and the plain
    build printed the year -292275055)."""
    r = redis_server()
    c = r.client()
    day = local_day(time.time() - 3 * 86400)
    d0 = day_start_ms(day)
    t = d0 + 10 * 3600 * 1000
    log_entry(c, 0, t + 5000, 0, k="a", ag="alice", o=2**63 - 1, at=t + 5000, f=1, c="c1")
    log_entry(c, 0, t + 6000, 0, k="u", ag="bob", o=-2**63, at=t + 6000, f=0, c="c2")
    html = report(conf(tmp_path, r.url()), "--from", day, "--format", "html").stdout.decode()
    assert "<td>c1</td><td>alice</td>" in html and "<td>c2</td><td>bob</td>" in html
    # 2^61 ms on, and before, the epoch: no wrap-around past the int64 limits
    assert re.search(r"<td>c1</td><td>alice</td><td>73\d{6}-", html), html
    assert re.search(r"<td>c2</td><td>bob</td><td>-73\d{6}-", html), html
    assert "292275055" not in html

# --- chatmon report --log: exported chat logs through replay's engine, no Redis ---

RULES_LIVE = os.path.join(ROOT, "tests", "blackbox", "rules_live")
LOG_SLA = ("sla:\n  first_response: 10s\n  reply: 20s\n  warn_at: 0.5\n  escalate: 60s\n"
           "  timezone: \"+08:00\"\n")


def log_conf(tmp_path):
    """Redis unreachable on purpose: --log must not touch it."""
    p = tmp_path / "log.yaml"
    p.write_text(f"rules: {RULES_LIVE}\nredis:\n  url: redis://127.0.0.1:1\n{LOG_SLA}",
                 encoding="utf-8")
    return str(p)


def chat(ts, conv, role, agent, text):
    return json.dumps({"ts": ts, "conversation": conv, "role": role, "agent": agent,
                       "text": text}, ensure_ascii=False)


# Known rounds on 2026-11-22 (+08:00): alice fast (3 s) and, in c-slow, a
# first response of 8 s then a slow reply (18 s: warned, not breached);
# bob's first response 25 s (a breach), then a blocked 加我微信 that answers
# nothing and the real answer 5 s after the customer; one round on the 23rd.
LOG = [
    chat("2026-11-22T10:00:00+08:00", "c-fast", "customer", "alice", "在吗"),
    chat("2026-11-22T10:00:03+08:00", "c-fast", "agent", "alice", "亲,在的"),
    chat("2026-11-22T10:05:00+08:00", "c-slow", "customer", "alice", "这款有货吗"),
    chat("2026-11-22T10:05:08+08:00", "c-slow", "agent", "alice", "有的亲"),
    chat("2026-11-22T10:06:00+08:00", "c-slow", "customer", "alice", "什么时候发"),
    chat("2026-11-22T10:06:18+08:00", "c-slow", "agent", "alice", "今天发出"),
    chat("2026-11-22T10:10:00+08:00", "c-breach", "customer", "bob", "在不在"),
    chat("2026-11-22T10:10:25+08:00", "c-breach", "agent", "bob", "在的"),
    chat("2026-11-22T10:20:00+08:00", "c-block", "customer", "bob", "能便宜点吗"),
    chat("2026-11-22T10:20:02+08:00", "c-block", "agent", "bob", "加我微信 abc12345"),
    chat("2026-11-22T10:20:05+08:00", "c-block", "agent", "bob", "亲,店铺有满减活动"),
    chat("2026-11-23T09:00:00+08:00", "c-next", "customer", "alice", "你好"),
    chat("2026-11-23T09:00:04+08:00", "c-next", "agent", "alice", "亲,您好"),
]


def write_log(tmp_path, lines, name="day.jsonl"):
    p = tmp_path / name
    p.write_text("".join(l + "\n" for l in lines), encoding="utf-8")
    return str(p)


def replay_summary(cfg, log):
    p = subprocess.run([CHATMON, "replay", "--format", "json", "-c", cfg, log],
                       capture_output=True, timeout=30 * SLOW)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout.decode().splitlines()[-1])


def test_log_figures_equal_replay(tmp_path):
    """The same engine: each agent's figures in the report of the log's days
    are replay's summary of the same log, to the unit; the rule hits and the
    blocked turn counted; no Redis touched (it is unreachable)."""
    cfg = log_conf(tmp_path)
    log = write_log(tmp_path, LOG)
    summary = replay_summary(cfg, log)["agents"]
    rep = report_json(cfg, "--from", "2026-11-22", "--to", "2026-11-23", "--log", log)
    agents = {a["agent"]: a for a in rep["agents"]}
    assert sorted(agents) == sorted(summary) == ["alice", "bob"]
    for name, want in summary.items():
        for k in FIGURES + ("rate",):
            assert agents[name][k] == want[k], (name, k, agents[name][k], want[k])
    # the known rounds, by hand
    alice, bob = agents["alice"], agents["bob"]
    assert (alice["rounds"], alice["answered"], alice["breaches"]) == (4, 4, 0)
    assert alice["first_rounds"] == 3 and alice["first_mean_ms"] == 5000
    assert alice["mean_ms"] == round((3000 + 8000 + 18000 + 4000) / 4)
    assert (bob["rounds"], bob["breaches"], bob["first_mean_ms"]) == (2, 1, 15000)
    assert bob["p90_ms"] == 25000
    # 加我微信: one alert, blocked, under offplatform; bob's only
    assert (bob["alerts"], bob["blocks"], bob["false_positives"]) == (1, 1, 0)
    assert bob["hits"]["offplatform"] == {"alerts": 1, "block": 1, "warn": 0, "flag": 0,
                                          "false_positives": 0}
    assert alice["alerts"] == 0 and rep["team"]["alerts"] == 1
    assert rep["team"]["rounds"] == 6 and rep["team"]["breaches"] == 1
    assert [d["day"] for d in rep["days"]] == ["2026-11-22", "2026-11-23"]
    assert [d["rounds"] for d in rep["days"]] == [5, 1]
    assert not any(d["partial"] for d in rep["days"])
    worst = rep["worst"][0]
    assert (worst["agent"], worst["conversation"], worst["waited_ms"]) == ("bob", "c-breach",
                                                                          25000)


def test_a_shop_of_another_zone_keeps_its_buyers_days(tmp_path):
    """A Pinduoduo shop at -05:00 under a top level at +08:00: a buyer who
    writes at 22:50 and again at 08:10 the next morning, shop time, has two
    buyer days (docs/sla.md: per local day of its shop), though both fall on
    2026-11-23 at +08:00; the report of the log says what replay says, and
    the rounds fall on the report's day and hours (found by review: the
    report moved the shop into its own zone, which merged the two buyer
    days and wiped out the first)."""
    cfg = tmp_path / "pdd.yaml"
    cfg.write_text(f"rules: {RULES_LIVE}\nredis:\n  url: redis://127.0.0.1:1\n"
                   "sla:\n  timezone: \"+08:00\"\n"
                   "shops:\n  pdd-us:\n    profile: pdd\n    timezone: \"-05:00\"\n",
                   encoding="utf-8")

    def line(ts, role, text):
        return json.dumps({"ts": ts, "conversation": "buyer-1", "role": role,
                           "agent": "alice", "text": text, "shop": "pdd-us"},
                          ensure_ascii=False)
    log = write_log(tmp_path, [
        line("2026-11-22T22:50:00-05:00", "customer", "在吗"),
        line("2026-11-22T22:50:05-05:00", "agent", "在的"),
        line("2026-11-23T08:10:00-05:00", "customer", "发货了吗"),
        line("2026-11-23T08:14:00-05:00", "agent", "发了"),    # over the 3-minute rate
        line("2026-11-23T09:00:00-05:00", "customer", "好的")])
    want = replay_summary(str(cfg), log)["shops"]["pdd-us"]["agents"]["alice"]
    assert (want["rounds"], want["within_rate"], want["rate"]) == (2, 1, 0.5), want
    rep = report_json(str(cfg), "--from", "2026-11-23", "--log", log)
    got = rep["shops"]["pdd-us"]["agents"]["alice"]
    assert (got["rounds"], got["within_rate"], got["rate"]) == (2, 1, 0.5), got
    # 22:50:05 and 08:14 at -05:00 are 11:50 and 21:14 at +08:00
    alice = rep["agents"][0]
    assert [h["hour"] for h in alice["hours"]] == [11, 21], alice["hours"]


def test_log_days_filter_and_agent(tmp_path):
    """--from/--to keep the rounds and hits of their local days only; --agent one agent."""
    cfg = log_conf(tmp_path)
    log = write_log(tmp_path, LOG)
    day1 = report_json(cfg, "--from", "2026-11-22", "--log", log)
    assert day1["team"]["rounds"] == 5 and day1["team"]["alerts"] == 1
    assert [d["day"] for d in day1["days"]] == ["2026-11-22"]
    # the 22nd alone is replay's summary of the 22nd's lines
    only22 = replay_summary(cfg, write_log(tmp_path, LOG[:11], "d22.jsonl"))["agents"]
    for a in day1["agents"]:
        for k in FIGURES:
            assert a[k] == only22[a["agent"]][k], (a["agent"], k)
    day2 = report_json(cfg, "--from", "2026-11-23", "--log", log)
    assert [a["agent"] for a in day2["agents"]] == ["alice"]
    assert day2["team"]["rounds"] == 1 and day2["team"]["alerts"] == 0
    none = report_json(cfg, "--from", "2026-11-24", "--to", "2026-11-26", "--log", log)
    assert none["team"]["rounds"] == 0 and len(none["days"]) == 3 and none["agents"] == []
    bob = report_json(cfg, "--from", "2026-11-22", "--to", "2026-11-23", "--agent", "bob",
                      "--log", log)
    assert [a["agent"] for a in bob["agents"]] == ["bob"] and bob["agent"] == "bob"
    assert bob["team"]["rounds"] == 2 and bob["team"]["blocks"] == 1
    # split across files in time order, and from stdin: the same report
    a, b = write_log(tmp_path, LOG[:6], "a.jsonl"), write_log(tmp_path, LOG[6:], "b.jsonl")
    split = report_json(cfg, "--from", "2026-11-22", "--log", a, "--log", b)
    assert split["agents"] == day1["agents"] and split["days"] == day1["days"]
    p = subprocess.run([CHATMON, "report", "-c", cfg, "--from", "2026-11-22", "--log", "-"],
                       input="".join(l + "\n" for l in LOG).encode(), capture_output=True,
                       timeout=30 * SLOW)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["agents"] == day1["agents"]


def test_log_csv_and_html(tmp_path):
    cfg = log_conf(tmp_path)
    log = write_log(tmp_path, LOG)
    out = report(cfg, "--from", "2026-11-22", "--format", "csv", "--log", log).stdout
    assert out.startswith(b"\xef\xbb\xbf") and b"\r\n" in out
    rows = list(csv.reader(io.StringIO(out[3:].decode("utf-8"), newline="")))
    assert rows[0][:3] == ["agent", "rounds", "answered"] and "hits:offplatform" in rows[0]
    assert [r[0] for r in rows[1:]] == ["alice", "bob"]
    assert rows[2][rows[0].index("breaches")] == "1"
    html = report(cfg, "--from", "2026-11-22", "--format", "html", "--log", log).stdout
    assert html.startswith(b"<!DOCTYPE html>") or b"<html" in html[:200]


def test_log_bad_lines(tmp_path):
    """A bad line is FILE:LINE on stderr and exit 1; the good lines still count."""
    cfg = log_conf(tmp_path)
    lines = LOG[:2] + ["{not json"] + LOG[2:11] + [chat("2026-11-22T09:00:00+08:00", "c-x",
                                                        "customer", "", "back in time")]
    log = write_log(tmp_path, lines)
    p = report(cfg, "--from", "2026-11-22", "--log", log, code=1)
    err = p.stderr.decode()
    assert f"{log}:3: " in err and f"{log}:13: ts goes back" in err, err
    rep = json.loads(p.stdout)
    assert rep["team"]["rounds"] == 5 and rep["team"]["alerts"] == 1
    missing = str(tmp_path / "missing.jsonl")
    p = report(cfg, "--from", "2026-11-22", "--log", missing, code=1)
    assert missing in p.stderr.decode()



def test_log_extreme_ts(tmp_path):
    """A line at ts INT64_MAX that hits a rule, the report from 1970-01-01
    (a day that starts before the epoch at +08:00): the time is read in the
    engine's range, no day index overflows (found by review: UBSan in
    reportlog_day, then a negative index into the days)."""
    cfg = log_conf(tmp_path)
    log = write_log(tmp_path, [chat(2**63 - 1, "c", "agent", "a", "加我微信 abc12345")])
    rep = report_json(cfg, "--from", "1970-01-01", "--to", "1970-01-02", "--log", log)
    assert rep["agents"] == [] and rep["team"]["alerts"] == 0, rep
    assert [d["rounds"] for d in rep["days"]] == [0, 0]

@pytest.mark.parametrize("args,code,words", [
    (["--redis", "redis://127.0.0.1:1"], 2, "not both"),
    (["--max-line", "0"], 2, "--max-line"),
    (["--from", "2026-11-23", "--to", "2026-11-22"], 1, "after"),
])
def test_log_bad_arguments(args, code, words, tmp_path):
    cfg = log_conf(tmp_path)
    log = write_log(tmp_path, LOG)
    full = ["--from", "2026-11-22", *args] if "--from" not in args else args
    p = report(cfg, *full, "--log", log, code=code)
    assert words in p.stderr.decode(), p.stderr
    assert p.stdout == b""
    p = report(conf(tmp_path, "redis://127.0.0.1:1"), "--from", "2026-11-22",
               "--max-line", "1KiB", code=2)
    assert "--log" in p.stderr.decode()


def test_log_help():
    p = subprocess.run([CHATMON, "report", "--help"], capture_output=True, timeout=T)
    assert p.returncode == 0 and b"--log" in p.stdout


# --- many shops (issue 18): the figures by shop and queue ---


def test_two_shops_same_agent_split_exactly(redis_server, tmp_path):
    """alice answers in tmall (its presale queue and none) and in jd, bob in
    no shop, as chatmond's scripts log them (sh, qu); rule hits carry their
    "shop": each shop's figures are its own rounds, alice's total their sum,
    to the unit; the stored day keeps them and reads back the same."""
    r = redis_server()
    c = r.client()
    day = local_day(time.time() - 3 * 86400)
    d0 = day_start_ms(day)
    t = d0 + 9 * 3600 * 1000
    log_entry(c, 3, t + 4000, 0, k="a", ag="alice", o=t, at=t + 4000, f=1, c="t-1",
              sh="tmall", qu="presale")
    log_entry(c, 4, t + 70000, 0, k="a", ag="alice", o=t + 60000, at=t + 70000, f=1,
              c="t-2", sh="tmall")
    log_entry(c, 5, t + 111000, 0, k="b", ag="alice", at=t + 101000, sh="jd")
    log_entry(c, 5, t + 130000, 0, k="a", ag="alice", o=t + 100000, at=t + 130000, f=1,
              c="j-1", sh="jd")
    log_entry(c, 6, t + 203000, 0, k="a", ag="bob", o=t + 200000, at=t + 203000, f=1,
              c="n-1")
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime((t + 2000) / 1000))
    a = {"v": 2, "id": f"{t + 2000}-0000abcd-0000000007", "ts": ts, "type": "rule.hit",
         "severity": "critical", "agent": "alice", "conversation": "j-1", "shop": "jd",
         "role": "agent", "category": "offplatform", "rule": "offplatform.x",
         "action": "block", "text": "加我微信", "match": {"start": 0, "end": 4}}
    c.xadd(STREAM, {"alert": json.dumps(a, ensure_ascii=False)}, id=f"{t + 2000}-0")
    cfg = conf(tmp_path, r.url())
    rep = report_json(cfg, "--from", day)
    by = {x["agent"]: x for x in rep["agents"]}
    shops = rep["shops"]
    assert sorted(shops) == ["jd", "tmall"]
    tm, jd = shops["tmall"], shops["jd"]
    # the split: 2 rounds in tmall (1 of them in presale), 1 in jd; alice's total 3
    assert tm["agents"]["alice"]["rounds"] == 2 and jd["agents"]["alice"]["rounds"] == 1
    assert tm["queues"]["presale"]["agents"]["alice"]["rounds"] == 1
    assert by["alice"]["rounds"] == 3 and by["bob"]["rounds"] == 1
    assert "bob" not in tm["agents"] and "bob" not in jd["agents"]
    # to the unit: means of each shop's own rounds, the sum of them the total's
    assert tm["agents"]["alice"]["mean_ms"] == 7000          # (4 s + 10 s) / 2
    assert tm["queues"]["presale"]["agents"]["alice"]["mean_ms"] == 4000
    assert jd["agents"]["alice"]["mean_ms"] == 30000
    assert by["alice"]["mean_ms"] == round((4000 + 10000 + 30000) / 3)
    for k in ("rounds", "answered", "first_rounds", "breaches", "within_rate"):
        assert tm["agents"]["alice"][k] + jd["agents"]["alice"][k] == by["alice"][k], k
    assert jd["agents"]["alice"]["breaches"] == 1 and tm["agents"]["alice"]["breaches"] == 0
    # the rule hit: jd's, alice's
    assert jd["team"]["alerts"] == 1 and jd["agents"]["alice"]["hits"]["offplatform"][
        "block"] == 1
    assert tm["team"]["alerts"] == 0 and by["alice"]["alerts"] == 1
    assert jd["sla"] == {"cap_ms": rep["sla"]["cap_ms"], "rate_ms": rep["sla"]["rate_ms"]}
    # stored with its shops; read back, not from the logs, the same
    doc = json.loads(c.get(f"chatmon:report:day:{day}"))
    assert sorted(doc["shops"]) == ["jd", "tmall"]
    assert doc["shops"]["tmall"]["queues"]["presale"]["agents"]["alice"]["rounds"] == 1
    for b in range(16):
        c.delete(f"chatmon:sla:{{{b}}}:log")
    c.delete(STREAM)
    again = report_json(cfg, "--from", day)
    for k in ("agents", "shops", "team", "worst", "days"):
        assert again[k] == rep[k], k

    # --shop: that shop's figures only, its worst waits, its days
    only = report_json(cfg, "--from", day, "--shop", "tmall")
    assert only["shop"] == "tmall" and "queue" not in only
    assert [x["agent"] for x in only["agents"]] == ["alice"]
    assert only["agents"][0]["rounds"] == 2 and only["team"]["rounds"] == 2
    assert only["days"][0]["rounds"] == 2 and only["team"]["alerts"] == 0
    assert sorted(w["conversation"] for w in only["worst"]) == ["t-1", "t-2"]
    assert list(only["shops"]) == ["tmall"]
    q = report_json(cfg, "--from", day, "--shop", "tmall", "--queue", "presale")
    assert q["queue"] == "presale" and q["team"]["rounds"] == 1
    assert [w["conversation"] for w in q["worst"]] == ["t-1"]
    none = report_json(cfg, "--from", day, "--shop", "nowhere")
    assert none["agents"] == [] and none["team"]["rounds"] == 0
    p = report(cfg, "--from", day, "--queue", "presale", code=2)
    assert "--queue needs --shop" in p.stderr.decode()

    # CSV: the agents' table as before, then shop,queue,agent rows
    raw = report(cfg, "--from", day, "--format", "csv").stdout
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"), newline="")))
    assert rows[0][0] == "agent" and [x[0] for x in rows[1:3]] == ["alice", "bob"]
    assert rows[3] == []
    head = rows[4]
    assert head[:4] == ["shop", "queue", "agent", "rounds"]
    got = {(x[0], x[1], x[2]): int(x[3]) for x in rows[5:]}
    assert got == {("jd", "", "alice"): 1, ("tmall", "", "alice"): 2,
                   ("tmall", "presale", "alice"): 1}
    # HTML: a table of the shops, one of each agent in each shop
    html = report(cfg, "--from", day, "--format", "html").stdout.decode("utf-8")
    assert '<table id="shops">' in html and '<table id="shop_agents">' in html
    assert "<td>tmall / presale</td>" in html and "<td>jd · alice</td>" in html
    only = report(cfg, "--from", day, "--format", "html", "--shop", "jd").stdout.decode()
    assert "店铺:jd" in only


def test_no_shop_no_shops_section(redis_server, tmp_path):
    """Without a shop anywhere, no trace of shops: the report and the stored day as before."""
    r = redis_server()
    c = r.client()
    day = local_day(time.time() - 3 * 86400)
    t = day_start_ms(day) + 9 * 3600 * 1000
    log_entry(c, 1, t + 4000, 0, k="a", ag="alice", o=t, at=t + 4000, f=1, c="p-1")
    cfg = conf(tmp_path, r.url())
    for fmt in ("json", "csv", "html"):
        out = report(cfg, "--from", day, "--format", fmt).stdout.decode("utf-8")
        assert "shop" not in out and "店铺" not in out, fmt
    assert "shops" not in json.loads(c.get(f"chatmon:report:day:{day}"))


def shop_chat(ts, conv, role, agent, text, shop=None, queue=None):
    o = {"ts": ts, "conversation": conv, "role": role, "agent": agent, "text": text}
    if shop:
        o["shop"] = shop
    if queue:
        o["queue"] = queue
    return json.dumps(o, ensure_ascii=False)


SHOP_LOG = [
    shop_chat("2026-11-22T10:00:00+08:00", "t-1", "customer", "alice", "在吗", "tmall",
              "presale"),
    shop_chat("2026-11-22T10:00:03+08:00", "t-1", "agent", "alice", "亲,在的", "tmall",
              "presale"),
    shop_chat("2026-11-22T10:01:00+08:00", "j-1", "customer", "alice", "在吗", "jd"),
    shop_chat("2026-11-22T10:01:12+08:00", "j-1", "agent", "alice", "加我微信 abc12345",
              "jd"),
    shop_chat("2026-11-22T10:01:14+08:00", "j-1", "agent", "alice", "亲,您好", "jd"),
    shop_chat("2026-11-22T10:02:00+08:00", "n-1", "customer", "bob", "你好"),
    shop_chat("2026-11-22T10:02:05+08:00", "n-1", "agent", "bob", "您好"),
]


def test_log_with_shops_equals_replay(tmp_path):
    """--log lines with "shop"/"queue": each shop's and queue's figures are
    replay's summary of them, to the unit; alice's total their sum; the
    rule hit is jd's; --shop keeps one."""
    cfg = log_conf(tmp_path)
    log = write_log(tmp_path, SHOP_LOG)
    summary = replay_summary(cfg, log)
    rep = report_json(cfg, "--from", "2026-11-22", "--log", log)
    shops = rep["shops"]
    want_jd = summary["shops"]["jd"]["agents"]["alice"]
    want_pre = summary["shops"]["tmall"]["queues"]["presale"]["agents"]["alice"]
    for k in FIGURES + ("rate",):
        assert shops["jd"]["agents"]["alice"][k] == want_jd[k], k
        assert shops["tmall"]["queues"]["presale"]["agents"]["alice"][k] == want_pre[k], k
        # tmall's conversations are all in presale: the shop's figures are the queue's
        assert shops["tmall"]["agents"]["alice"][k] == want_pre[k], k
    assert {a["agent"]: a["rounds"] for a in rep["agents"]} == {"alice": 2, "bob": 1}
    assert summary["agents"]["bob"]["rounds"] == 1 and "bob" not in shops["jd"]["agents"]
    assert shops["jd"]["team"]["alerts"] == 1 and shops["tmall"]["team"]["alerts"] == 0
    jd = report_json(cfg, "--from", "2026-11-22", "--log", log, "--shop", "jd")
    assert jd["shop"] == "jd" and jd["team"]["rounds"] == 1 and jd["team"]["alerts"] == 1
    assert [a["agent"] for a in jd["agents"]] == ["alice"]
    assert jd["agents"][0]["mean_ms"] == want_jd["mean_ms"]


SHOPS_CONF = ("shop_id: query:shop\nqueue_id: query:queue\nshops:\n"
              "  tmall:\n    sla:\n      cap: 60s\n      rate: 20s\n"
              "  jd:\n    timezone: \"+00:00\"\n")


def test_shops_own_settings_from_redis(redis_server, tmp_path):
    """Each shop's figures under its own settings: tmall's unanswered round
    counts at its 60 s cap, under its 20 s rate; jd keeps UTC, yet its round
    at 07:00 (+08:00, the 21st 23:00 in jd's zone) is on the report's day."""
    r = redis_server()
    c = r.client()
    day = local_day(time.time() - 3 * 86400)
    d0 = day_start_ms(day)
    t = d0 + 7 * 3600 * 1000
    log_entry(c, 1, t + 30000, 0, k="a", ag="alice", o=t, at=t + 30000, f=1, c="j-1",
              sh="jd")
    log_entry(c, 2, t + 3 * 3600000 + 4000, 0, k="a", ag="alice", o=t + 3 * 3600000,
              at=t + 3 * 3600000 + 4000, f=1, c="t-1", sh="tmall")
    log_entry(c, 2, t + 4 * 3600000 + 1800000, 0, k="u", ag="alice", o=t + 4 * 3600000,
              at=t + 4 * 3600000 + 1800000, f=1, c="t-2", sh="tmall")
    cfg = conf(tmp_path, r.url(), SHOPS_CONF)
    rep = report_json(cfg, "--from", day)
    tm, jd = rep["shops"]["tmall"], rep["shops"]["jd"]
    assert tm["sla"] == {"cap_ms": 60000, "rate_ms": 20000}
    assert tm["agents"]["alice"]["mean_ms"] == (4000 + 60000) // 2
    assert tm["agents"]["alice"]["p90_ms"] == 60000
    assert tm["agents"]["alice"]["within_rate"] == 1 and tm["agents"]["alice"]["rate"] == 0.5
    assert jd["agents"]["alice"]["rounds"] == 1 and jd["agents"]["alice"]["mean_ms"] == 30000
    assert rep["agents"][0]["rounds"] == 3
    # --shop tmall: its cap and rate are the report's
    only = report_json(cfg, "--from", day, "--shop", "tmall")
    assert only["sla"]["cap_ms"] == 60000 and only["team"]["mean_ms"] == 32000
    # read back from the stored day: the same
    assert report_json(cfg, "--from", day)["shops"] == rep["shops"]


def test_shops_through_chatmond(dashboard, daemon, backend, redis_server, tmp_path):
    """The same agent served in two shops by a real chatmond (shop_id:
    query:shop): today's report splits her rounds by shop exactly."""
    r = redis_server()
    b = backend(script="customer.py")
    files = {}
    # a short path: chatmond refuses an agent when any query argument is
    # over 64 bytes while it looks for shop_id's or queue_id's
    short = tempfile.mkdtemp(prefix="cm")
    for shop in ("tmall", "jd"):
        p = pathlib.Path(short) / f"{shop}.json"
        p.write_text(json.dumps([{"at": 0, "text": json.dumps(
            {"type": "message", "conversation": f"{shop}-{i}", "text": "在吗"},
            ensure_ascii=False)} for i in range(2 if shop == "tmall" else 1)]),
            encoding="utf-8")
        files[shop] = p
    d = daemon(b.port, extra=SLA + SHOPS_CONF, redis=r.url(), rules=LIVE,
               args=["-o", "redis.fold=0"])

    def say(conv, text):
        return json.dumps({"type": "message", "conversation": conv, "text": text},
                          ensure_ascii=False)

    async def main():
        async with agent(d, f"/script?file={files['tmall']}&agent=alice&shop=tmall") as a, \
                agent(d, f"/script?file={files['jd']}&agent=alice&shop=jd") as j:
            for _ in range(2):
                await recv(a)
            await recv(j)
            await a.send(say("tmall-0", "亲,在的"))
            await a.send(say("tmall-1", "您好"))
            await j.send(say("jd-0", "亲,您好"))
            await asyncio.sleep(0.5)
    try:
        run(main())
    finally:
        shutil.rmtree(short, ignore_errors=True)
    cfg = conf(tmp_path, r.url(), SHOPS_CONF)
    day = local_day()
    deadline = time.monotonic() + 10 * SLOW
    while True:
        rep = report_json(cfg, "--from", day)
        if rep["team"]["rounds"] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    shops = rep.get("shops", {})
    assert sorted(shops) == ["jd", "tmall"], rep
    assert shops["tmall"]["agents"]["alice"]["rounds"] == 2
    assert shops["jd"]["agents"]["alice"]["rounds"] == 1
    assert [(a["agent"], a["rounds"]) for a in rep["agents"]] == [("alice", 3)]
    assert shops["tmall"]["sla"]["cap_ms"] == 60000
