"""`chatmon tail` against a real redis-server started here (its own port and
directory, no persistence): the test plays chatmond's part and XADDs alert
objects itself, so no daemon is needed. Covers the history (--since -N,
an alert id, a stream id), following, de-duplication by alert id, the
filters, the readable format, bad entries, configuration (prefix, password,
database, unix socket) and Redis outages."""

import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import CHATMON, SANITIZER_MARKS, SLOW, T

STREAM = "chatmon:alerts:log"
INSTANCE = "8ebe0f0b"


# --------------------------------------------------------------------------
# chatmon tail as a subprocess


class Tail:
    def __init__(self, args, env=None):
        e = dict(os.environ, TZ="UTC")
        e.pop("NO_COLOR", None)
        e.update(env or {})
        self.proc = subprocess.Popen([CHATMON, "tail", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        self.out, self.err = [], []
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._read, args=(f, dst), daemon=True)
                        for f, dst in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for th in self.threads:
            th.start()

    def _read(self, f, dst):
        for line in f:
            with self.cond:
                dst.append(line.decode("utf-8").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def _wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout * SLOW
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"tail: no {what} within {timeout}s; "
                                         f"stdout {self.out[-10:]}, stderr {self.err[-10:]}")
                self.cond.wait(min(left, 0.1))

    def lines(self, n, timeout=T):
        """The first n lines of stdout, waiting for them."""
        self._wait(lambda: len(self.out) >= n, timeout, f"{n} lines")
        with self.cond:
            return list(self.out[:n])

    def alerts(self, n, timeout=T):
        return [json.loads(line) for line in self.lines(n, timeout)]

    def ids(self, n, timeout=T):
        return [a["id"] for a in self.alerts(n, timeout)]

    def wait_err(self, pattern, timeout=T):
        rx = re.compile(pattern)
        self._wait(lambda: any(rx.search(line) for line in self.err), timeout,
                   f"stderr line matching {pattern!r}")

    def quiet(self, n, seconds=1.5):
        """Asserts stdout still has n lines after a while (nothing more came)."""
        time.sleep(seconds * SLOW)
        with self.cond:
            assert len(self.out) == n, self.out[n:]

    def settle(self, seconds=0.8):
        """Waits until stdout has been quiet for a while; its lines."""
        n = -1
        while True:
            with self.cond:
                if len(self.out) == n:
                    return list(self.out)
                n = len(self.out)
            time.sleep(seconds * SLOW)

    def stop(self, sig=signal.SIGINT, timeout=5):
        """Signal, wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"tail did not exit on {sig!r}; stderr {self.err}")
        for th in self.threads:
            th.join(5)
        return code


@pytest.fixture
def tail():
    """tail(*args, env=None) starts `chatmon tail`; all are killed at teardown."""
    started = []

    def start(*args, env=None):
        t = Tail(args, env)
        started.append(t)
        return t
    yield start
    problems = []
    for t in started:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait(5)
        for th in t.threads:
            th.join(5)
        found = [m for m in SANITIZER_MARKS if any(m in line for line in t.err)]
        if found:
            problems.append(f"sanitizer report {found}:\n" + "\n".join(t.err[-60:]))
    if problems:
        pytest.fail("\n".join(problems))


def run_tail(*args, timeout=10):
    """A run that is expected to end by itself: (code, stdout, stderr)."""
    r = subprocess.run([CHATMON, "tail", *args], capture_output=True, timeout=timeout * SLOW,
                       env=dict(os.environ, TZ="UTC"))
    err = r.stderr.decode()
    assert not [m for m in SANITIZER_MARKS if m in err], err
    return r.returncode, r.stdout.decode(), err


# --------------------------------------------------------------------------
# Alerts as chatmond makes them

_seq = [0]


def alert_id(ms=None):
    _seq[0] += 1
    if ms is None:
        ms = int(time.time() * 1000)
    return f"{ms:013d}-{INSTANCE}-{_seq[0]:010d}"


def rule_hit(**kw):
    a = {"v": 2, "id": alert_id(), "ts": "2026-11-22T10:00:05.000Z", "type": "rule.hit",
         "severity": "critical", "agent": "alice", "conversation": "c-1", "role": "agent",
         "category": "offplatform", "rule": "offplatform.add_contact_app", "action": "block",
         "text": "加我薇信 abc123", "match": {"start": 0, "end": 4}, "matched": "加我薇信",
         "message": "亲,平台规定只能在旺旺上沟通"}
    a.update(kw)
    if "hits" not in a:
        a["hits"] = [{k: a[k] for k in ("rule", "category", "severity", "action", "match",
                                        "matched", "message")}]
    return a


def sla(kind="breach", **kw):
    a = {"v": 2, "id": alert_id(), "ts": "2026-11-22T10:00:35.000Z", "type": f"sla.{kind}",
         "severity": {"warn": "info", "breach": "warn", "escalate": "critical"}[kind],
         "agent": "bob", "conversation": "c-2", "waited_ms": 31200, "threshold_ms": 30000,
         "first": True}
    a.update(kw)
    return a


def dump(a):
    return json.dumps(a, ensure_ascii=False, separators=(",", ":"))


def xadd(r, a, key=STREAM):
    """XADD as chatmond does; the stream entry id."""
    return r.xadd(key, {"alert": a if isinstance(a, str) else dump(a)},
                  maxlen=100000, approximate=True)


ANSI = re.compile(r"\x1b\[")


# --------------------------------------------------------------------------
# History


def test_since_last_n_oldest_first_then_follows(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    sent = [rule_hit(conversation=f"c-{i}") for i in range(15)]
    for a in sent:
        xadd(r, a)
    t = tail("--redis", srv.url(), "--since", "-5", "--json")
    assert t.ids(5) == [a["id"] for a in sent[10:]]
    t.quiet(5, 0.5)
    live = [sla(), rule_hit(agent="carol")]
    for a in live:
        xadd(r, a)
    got = t.alerts(7)
    assert got[5:] == live
    assert t.stop() == 0
    assert t.err == []


def test_since_default_is_last_ten(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    sent = [rule_hit() for _ in range(12)]
    for a in sent:
        xadd(r, a)
    t = tail("--redis", srv.url(), "--json")
    assert t.ids(10) == [a["id"] for a in sent[2:]]
    t.quiet(10, 0.5)
    assert t.stop() == 0


def test_since_last_n_on_empty_stream_and_zero(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    t = tail("--redis", srv.url(), "--since", "-5", "--json")     # no stream yet
    time.sleep(0.3 * SLOW)
    first = rule_hit()
    xadd(r, first)
    assert t.ids(1) == [first["id"]]
    # -0: nothing from the history, only what comes next
    t0 = tail("--redis", srv.url(), "--since", "-0", "--json")
    time.sleep(0.5 * SLOW)
    nxt = sla()
    xadd(r, nxt)
    assert t0.ids(1) == [nxt["id"]]
    assert t.ids(2) == [first["id"], nxt["id"]]
    assert t.stop() == 0 and t0.stop() == 0


def test_since_last_n_at_the_largest_count(redis_server, tail):
    """-N up to INT64_MAX, the largest COUNT Redis takes: the whole stream."""
    srv = redis_server()
    r = srv.client()
    sent = [rule_hit(conversation=f"m-{i}") for i in range(3)]
    for a in sent:
        xadd(r, a)
    t = tail("--redis", srv.url(), "--since", "-9223372036854775807", "--json")
    assert t.ids(3) == [a["id"] for a in sent]
    assert t.stop() == 0
    assert t.err == []

def test_since_alert_id(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    sent = [rule_hit(conversation=f"c-{i}") for i in range(8)]
    for a in sent:
        xadd(r, a)
    # a copy of an alert from before the one named, re-sent after a reconnect:
    # the supervisor saw it already
    xadd(r, sent[1])
    t = tail("--redis", srv.url(), "--since", sent[3]["id"], "--json")
    assert t.ids(4) == [a["id"] for a in sent[4:8]]
    t.quiet(4, 0.5)
    live = sla()
    xadd(r, live)
    assert t.ids(5)[4] == live["id"]
    assert t.stop() == 0
    assert t.err == []


def test_since_alert_id_stored_late(redis_server, tail):
    """An alert held in the outbox during an outage is stored long after its
    id's time, behind newer entries: it is still found."""
    srv = redis_server()
    r = srv.client()
    old_ms = int(time.time() * 1000) - 3_600_000
    late = rule_hit(id=alert_id(old_ms), conversation="late")
    before = [rule_hit() for _ in range(3)]
    after = [sla(), rule_hit()]
    for a in before + [late] + after:
        xadd(r, a)
    t = tail("--redis", srv.url(), "--since", late["id"], "--json")
    assert t.ids(2) == [a["id"] for a in after]
    t.quiet(2, 0.5)
    assert t.stop() == 0


def test_since_alert_id_not_in_stream(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    for _ in range(3):
        xadd(r, rule_hit())
    gone = alert_id(int(time.time() * 1000) - 10_000_000)    # trimmed long ago
    t = tail("--redis", srv.url(), "--since", gone, "--json")
    # its time is before everything in the stream: all of it follows
    assert len(t.ids(3)) == 3
    t.wait_err(r"alert .* is not in chatmon:alerts:log")
    assert t.stop() == 0


def test_since_stream_id(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    sent = [rule_hit(conversation=f"c-{i}") for i in range(6)]
    sids = [xadd(r, a) for a in sent]
    t = tail("--redis", srv.url(), "--since", sids[2], "--json")
    assert t.ids(3) == [a["id"] for a in sent[3:]]
    t.quiet(3, 0.5)
    live = sla()
    xadd(r, live)
    assert t.ids(4)[3] == live["id"]
    assert t.stop() == 0
    # "0" is before everything: the whole stream
    t0 = tail("--redis", srv.url(), "--since", "0", "--json")
    assert t0.ids(7) == [a["id"] for a in sent] + [live["id"]]
    assert t0.stop() == 0


# --------------------------------------------------------------------------
# De-duplication


def test_duplicates_printed_once(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    a1, a2, a3, a4 = rule_hit(), sla(), rule_hit(agent="carol"), sla("escalate")
    for a in (a1, a2, a1, a3):
        xadd(r, a)
    t = tail("--redis", srv.url(), "--since", "-4", "--json")
    assert t.ids(3) == [a1["id"], a2["id"], a3["id"]]
    for a in (a2, a3, a4, a1):                  # re-sent after a reconnect
        xadd(r, a)
    assert t.ids(4)[3] == a4["id"]
    t.quiet(4, 1)
    assert t.stop() == 0


def test_dedup_memory_is_bounded(redis_server, tail):
    """The last 10 000 ids are remembered: a recent copy is dropped, a copy of
    one older than that is shown again (and nothing breaks on the way)."""
    srv = redis_server()
    r = srv.client()
    sent = [rule_hit(conversation=f"c-{i}") for i in range(10_050)]
    p = r.pipeline(transaction=False)
    for a in sent:
        p.xadd(STREAM, {"alert": dump(a)})
    p.execute()
    t = tail("--redis", srv.url(), "--since", f"-{len(sent)}", "--json")
    assert t.ids(len(sent), timeout=30) == [a["id"] for a in sent]
    xadd(r, sent[-1])
    xadd(r, sent[0])
    assert t.ids(len(sent) + 1)[-1] == sent[0]["id"]
    t.quiet(len(sent) + 1, 1)
    assert t.stop() == 0


# --------------------------------------------------------------------------
# Filters


def filtered(redis_server, tail, *args):
    srv = redis_server()
    r = srv.client()
    alerts = [
        rule_hit(severity="info", action="flag", agent="alice"),
        rule_hit(severity="warn", action="warn", agent="bob"),
        rule_hit(severity="critical", action="block", agent="alice"),
        sla("warn", agent="alice"),
        sla("breach", agent="bob"),
        sla("escalate", agent="alice"),
    ]
    for a in alerts:
        xadd(r, a)
    end = rule_hit(agent="zz-end", severity="critical", type="rule.hit")
    t = tail("--redis", srv.url(), "--since", "-100", "--json", *args)
    time.sleep(0.3 * SLOW)
    for a in alerts:                            # live too: copies with new ids
        xadd(r, dict(a, id=alert_id()))
    xadd(r, end)
    got = [json.loads(x) for x in t.settle()]
    assert t.stop() == 0
    return alerts, got


def kinds(got):
    return [(a["type"], a["severity"], a["agent"]) for a in got]


def test_filter_severity(redis_server, tail):
    alerts, got = filtered(redis_server, tail, "--severity", "warn")
    want = [a for a in alerts if a["severity"] in ("warn", "critical")]
    assert kinds(got) == kinds(want) * 2 + [("rule.hit", "critical", "zz-end")]


def test_filter_agent(redis_server, tail):
    alerts, got = filtered(redis_server, tail, "--agent", "bob")
    want = [a for a in alerts if a["agent"] == "bob"]
    assert kinds(got) == kinds(want) * 2


def test_filter_type_exact_and_prefix(redis_server, tail):
    alerts, got = filtered(redis_server, tail, "--type", "sla.breach")
    assert kinds(got) == [("sla.breach", "warn", "bob")] * 2
    alerts, got = filtered(redis_server, tail, "--type", "sla")
    want = [a for a in alerts if a["type"].startswith("sla.")]
    assert kinds(got) == kinds(want) * 2


def test_filters_combine(redis_server, tail):
    alerts, got = filtered(redis_server, tail, "--type", "rule.hit", "--agent", "alice",
                           "--severity", "critical")
    assert kinds(got) == [("rule.hit", "critical", "alice")] * 2


def test_since_last_n_counts_what_the_filter_lets_through(redis_server, tail):
    """--since -5 --type sla: the last five SLA alerts, however many rule hits
    came after them (more than a page of the stream), a re-sent copy
    counted once."""
    srv = redis_server()
    r = srv.client()
    slas = [sla(conversation=f"s-{i}") for i in range(8)]
    for a in slas[:6]:
        xadd(r, a)
    xadd(r, slas[5])                      # a re-sent copy: same id
    for a in slas[6:]:
        xadd(r, a)
    pipe = r.pipeline()
    for i in range(2500):                 # two and a half pages of XREVRANGE
        pipe.xadd(STREAM, {"alert": dump(rule_hit(conversation=f"r-{i}"))})
    pipe.execute()
    t = tail("--redis", srv.url(), "--since", "-5", "--type", "sla", "--json")
    assert t.ids(5) == [a["id"] for a in slas[3:]]
    t.quiet(5, 0.5)
    # and it follows from the newest entry, not from the last one shown
    live = sla(conversation="live")
    xadd(r, rule_hit())
    xadd(r, live)
    assert t.ids(6)[5] == live["id"]
    # the stream holds fewer than asked: all of them
    t2 = tail("--redis", srv.url(), "--since", "-50", "--type", "sla.breach", "--agent", "bob",
              "--json")
    assert t2.ids(9) == [a["id"] for a in slas] + [live["id"]]
    t2.quiet(9, 0.5)
    assert t.stop() == 0 and t2.stop() == 0


# --------------------------------------------------------------------------
# Output


def test_json_is_the_stored_bytes(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    # spaces and key order as some other producer wrote them: kept as they are
    raw = ('{"id": "%s", "type": "sla.breach",  "severity": "warn", "agent": "bob", '
           '"text": "亲\\u4eb2"}' % alert_id())
    xadd(r, raw)
    t = tail("--redis", srv.url(), "--since", "-1", "--json")
    assert t.lines(1) == [raw]
    assert t.stop() == 0


def test_readable_format(redis_server, tail):
    """Times in sla.timezone (+08:00 by default, whatever TZ says), known
    categories by the dashboard's Chinese names."""
    srv = redis_server()
    r = srv.client()
    xadd(r, rule_hit(ts="2025-03-04T10:00:05.000Z", count=3))
    xadd(r, rule_hit(ts="2025-03-04T10:00:06.250Z", severity="warn", action="warn",
                     role="customer", category="privacy", rule="ask_phone",
                     text="亲，加我vx abc", match={"start": 2, "end": 5}, matched="加我v"))
    xadd(r, sla("breach", ts="2025-03-04T10:00:35.000Z"))
    xadd(r, sla("escalate", ts="2025-03-04T16:03:05.000Z", waited_ms=185000,
                threshold_ms=180000, first=False, count=2))
    xadd(r, rule_hit(ts="2025-03-04T10:00:07.000Z", category="gifts", rule="gifts.coupon"))
    t = tail("--redis", srv.url(), "--since", "-5")
    lines = t.lines(5)
    assert t.stop() == 0
    for line in lines:
        assert not ANSI.search(line), line          # piped: no colour
    assert lines[0] == ("03-04 18:00:05 critical alice c-1 站外引流 offplatform.add_contact_app "
                        "BLOCKED agent: »加我薇信« abc123 ×3")
    assert lines[1] == ("03-04 18:00:06 warn     alice c-1 泄露隐私 ask_phone warned "
                        "customer: 亲，»加我v«x abc")
    assert lines[2] == ("03-04 18:00:35 warn     bob c-2 SLA breach: waited 31.2s "
                        "(threshold 30s), first response")
    # 16:03 UTC is past midnight at +08:00: the next day there
    assert lines[3] == ("03-05 00:03:05 critical bob c-2 SLA escalate: waited 3m05s "
                        "(threshold 3m), reply ×2")
    # a category the dashboard does not know: its id, as it is
    assert lines[4].startswith("03-04 18:00:07 critical alice c-1 gifts.coupon BLOCKED "), lines[4]


def test_two_rules_one_line(redis_server, tail):
    """A v2 alert of a turn that broke two rules is one line naming both,
    the strongest first; --lang en names the categories as the dashboard's
    English page does, the rule ids stay; --json is the stored object."""
    srv = redis_server()
    r = srv.client()
    weak = {"rule": "etiquette.test_unsure", "category": "etiquette", "severity": "info",
            "action": "flag", "match": {"start": 1, "end": 4}, "matched": "不知道",
            "message": ""}
    a = rule_hit(ts="2025-03-04T10:00:05.000Z", severity="warn", action="warn",
                 category="stock", rule="stock.test_none", text="我不知道,应该没货了",
                 match={"start": 7, "end": 9}, matched="没货", message="m")
    a["hits"].append(weak)
    xadd(r, a)
    t = tail("--redis", srv.url(), "--since", "-1")
    assert t.lines(1) == ["03-04 18:00:05 warn     alice c-1 声称无货 stock.test_none warned "
                          "agent: 我不知道,应该»没货«了 + 服务用语 etiquette.test_unsure flagged"]
    assert t.stop() == 0
    t = tail("--redis", srv.url(), "--since", "-1", "--lang", "en")
    assert t.lines(1) == ["03-04 18:00:05 warn     alice c-1 Out-of-stock claim stock.test_none "
                          "warned agent: 我不知道,应该»没货«了 + Etiquette etiquette.test_unsure "
                          "flagged"]
    assert t.stop() == 0
    t = tail("--redis", srv.url(), "--since", "-1", "--json", "--lang", "en")
    assert t.lines(1) == [dump(a)]
    assert t.stop() == 0


def test_readable_time_zone_is_the_configured_one(redis_server, tail, tmp_path):
    """sla.timezone of the configuration, not the process's TZ."""
    srv = redis_server()
    r = srv.client()
    xadd(r, sla("breach", ts="2025-03-04T10:00:35.000Z"))
    got = {}
    for zone in ("UTC", "'+08:00'", "'-05:30'"):
        conf = tmp_path / "chatmond.yaml"
        conf.write_text(f"redis:\n  url: {srv.url()}\nsla:\n  timezone: {zone}\n")
        t = tail("-c", str(conf), "--since", "-1", env={"TZ": "America/New_York"})
        got[zone] = t.lines(1)[0]
        assert t.stop() == 0
    assert got["UTC"].startswith("03-04 10:00:35 warn "), got
    assert got["'+08:00'"].startswith("03-04 18:00:35 warn "), got
    assert got["'-05:30'"].startswith("03-04 04:30:35 warn "), got


def test_readable_today_is_time_only(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    xadd(r, sla(ts=ts))
    t = tail("--redis", srv.url(), "--since", "-1")
    line = t.lines(1)[0]
    assert t.stop() == 0
    # today at +08:00 (the default sla.timezone), shown there
    there = time.gmtime(now + 8 * 3600)
    assert line.startswith(time.strftime("%H:%M:%S warn     bob c-2 SLA breach", there)), line


def test_readable_escapes_control_characters(redis_server, tail):
    """A customer's text cannot drive the supervisor's terminal nor break the line."""
    srv = redis_server()
    r = srv.client()
    xadd(r, rule_hit(text="加我薇信\n\x1b]0;pwned\x07\x1b[2J\u202eabc\u0085\x00z", agent="a\x1bb"))
    t = tail("--redis", srv.url(), "--since", "-1")
    lines = t.lines(1)
    t.quiet(1, 0.5)
    assert t.stop() == 0
    line = lines[0]
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert line.endswith("»加我薇信«\\n\\x1b]0;pwned\\x07\\x1b[2J\\u202eabc\\u0085\\x00z")
    assert " a\\x1bb c-1 " in line


def test_readable_long_text_is_cut_around_the_match(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    text = "好" * 300 + "加我薇信" + "的" * 300
    xadd(r, rule_hit(text=text, match={"start": 300, "end": 304}))
    t = tail("--redis", srv.url(), "--since", "-1")
    line = t.lines(1)[0]
    assert t.stop() == 0
    shown = line.split("agent: ", 1)[1]
    assert shown.startswith("…" + "好" * 40 + "»加我薇信«")
    assert shown.endswith("的…")
    assert len(shown) < 200


def test_colour_only_on_a_terminal(redis_server, tmp_path):
    """On a TTY: ANSI colour, the match in reverse video; NO_COLOR turns it off."""
    import pty
    srv = redis_server()
    r = srv.client()
    xadd(r, rule_hit())

    def run_on_pty(env):
        master, slave = pty.openpty()
        e = dict(os.environ, TZ="UTC")
        e.pop("NO_COLOR", None)
        e.update(env)
        p = subprocess.Popen([CHATMON, "tail", "--redis", srv.url(), "--since", "-1"],
                             stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL,
                             env=e)
        os.close(slave)
        out = b""
        deadline = time.monotonic() + T
        while b"\n" not in out and time.monotonic() < deadline:
            out += os.read(master, 4096)
        p.send_signal(signal.SIGINT)
        assert p.wait(5 * SLOW) == 0
        os.close(master)
        return out.decode()

    coloured = run_on_pty({"TERM": "xterm"})
    assert "\x1b[1;7m加我薇信\x1b[0m" in coloured, repr(coloured)
    assert "\x1b[1;31mBLOCKED\x1b[0m" in coloured, repr(coloured)
    plain = run_on_pty({"TERM": "xterm", "NO_COLOR": "1"})
    assert "\x1b" not in plain and "»加我薇信«" in plain, repr(plain)


def test_bad_entries_are_skipped_with_a_warning(redis_server, tail):
    srv = redis_server()
    r = srv.client()
    good1, good2 = rule_hit(), sla()
    xadd(r, good1)
    bad1 = xadd(r, "not json {")
    bad2 = r.xadd(STREAM, {"other": "x"})
    bad3 = xadd(r, "[1,2]")
    bad4 = xadd(r, "\x1b[2J")                   # the byte jansson quotes: escaped (review)
    xadd(r, good2)
    t = tail("--redis", srv.url(), "--since", "-10", "--json")
    assert t.ids(2) == [good1["id"], good2["id"]]
    t.wait_err(rf"entry {bad1}: not JSON")
    t.wait_err(rf"entry {bad4}: not JSON \(.*near '\\x1b'\): skipped")
    t.wait_err(rf"entry {bad2}: no alert field")
    t.wait_err(rf"entry {bad3}: not a JSON object")
    xadd(r, "{{{")
    good3 = rule_hit()
    xadd(r, good3)
    assert t.ids(3)[2] == good3["id"]
    assert t.stop() == 0


# --------------------------------------------------------------------------
# Configuration


def test_config_prefix_password_and_database(redis_server, tail, tmp_path):
    srv = redis_server(password="s3cret")
    r = srv.client(db=3)
    conf = tmp_path / "chatmond.yaml"
    conf.write_text(f"redis:\n  url: {srv.url()}/3\n  password: s3cret\n"
                    f"  prefix: 'shop7:'\n  stream: alerts\n")
    decoy, a = rule_hit(), sla()
    xadd(r, decoy)                              # the unprefixed default name: not ours
    xadd(r, a, key="shop7:alerts")
    t = tail("-c", str(conf), "--since", "-5", "--json")
    assert t.ids(1) == [a["id"]]
    live = rule_hit()
    xadd(r, live, key="shop7:alerts")
    assert t.ids(2)[1] == live["id"]
    t.quiet(2, 0.5)
    assert t.stop() == 0


def test_wrong_password_is_fatal(redis_server, tmp_path):
    srv = redis_server(password="s3cret")
    conf = tmp_path / "chatmond.yaml"
    conf.write_text(f"redis:\n  url: {srv.url()}\n  password: wrong\n")
    code, out, err = run_tail("-c", str(conf))
    assert code == 1 and out == ""
    assert re.search(r"chatmon: tail: redis .*AUTH: .*(WRONGPASS|invalid)", err), err


def test_redis_url_overrides_config(redis_server, tail, tmp_path):
    srv = redis_server()
    conf = tmp_path / "chatmond.yaml"
    conf.write_text("redis:\n  url: redis://127.0.0.1:1\n  stream: mine\n")
    a = rule_hit()
    xadd(srv.client(), a, key="mine")
    t = tail("-c", str(conf), "--redis", srv.url(), "--json")
    assert t.ids(1) == [a["id"]]
    assert t.stop() == 0


def test_unix_socket(redis_server, tail):
    srv = redis_server()
    a = sla()
    xadd(srv.client(), a)
    t = tail("--redis", f"unix:{srv.sock}", "--json")
    assert t.ids(1) == [a["id"]]
    assert t.stop() == 0


def test_key_of_the_wrong_type_is_fatal(redis_server):
    srv = redis_server()
    srv.client().set(STREAM, "not a stream")
    code, out, err = run_tail("--redis", srv.url())
    assert code == 1 and "WRONGTYPE" in err, err


@pytest.mark.parametrize("args", [
    ["--since", "yesterday"], ["--since", "-x"], ["--since", "1-zz-3"],
    # past INT64_MAX (Redis's COUNT), and past UINT64_MAX (found by review)
    ["--since", "-9223372036854775808"], ["--since", "-18446744073709551615"],
    ["--since", "-99999999999999999999"],
    ["--severity", "fatal"], ["--type", ""], ["--redis", "http://x"], ["extra"],
    ["--bogus"], ["--lang", "fr"], ["--lang"],
])
def test_usage_errors(args):
    code, out, err = run_tail(*args)
    assert code == 2 and out == "" and err, (code, err)


def test_help():
    code, out, err = run_tail("--help")
    assert code == 0 and out.startswith("usage: chatmon tail") and err == ""


def test_missing_config_without_redis_url(tmp_path):
    code, out, err = run_tail("-c", str(tmp_path / "nope.yaml"))
    assert code == 1 and "nope.yaml" in err, err


# --------------------------------------------------------------------------
# Outages and signals


def test_redis_down_at_start_then_up(redis_server, tail):
    srv = redis_server(start=False)
    t = tail("--redis", srv.url(), "--json")
    t.wait_err(rf"^chatmon: tail: redis {re.escape(srv.url())}: .*: retrying$")
    time.sleep(2.2 * SLOW)
    assert len([e for e in t.err if "retrying" in e]) == 1, t.err   # one line per outage
    srv.start()
    a = rule_hit()
    xadd(srv.client(), a)
    assert t.ids(1, timeout=10) == [a["id"]]
    t.wait_err(r"connected")
    assert t.stop() == 0


def test_redis_restart_while_following(redis_server, tail):
    srv = redis_server()
    t = tail("--redis", srv.url(), "--json")
    a = rule_hit()
    xadd(srv.client(), a)
    assert t.ids(1) == [a["id"]]
    srv.kill()
    t.wait_err(r"retrying$")
    srv.start()
    b = sla()
    xadd(srv.client(), b)
    assert t.ids(2, timeout=10) == [a["id"], b["id"]]
    assert t.stop() == 0


def test_catches_up_after_an_outage_without_repeats(redis_server, tail):
    """Entries added while tail was cut off are shown once it is back; the
    re-sent copies that come with them are not."""
    srv = redis_server(extra=["--timeout", "0"])
    r = srv.client()
    t = tail("--redis", srv.url(), "--json")
    a = rule_hit()
    xadd(r, a)
    assert t.ids(1) == [a["id"]]
    r.client_kill_filter(_type="normal", skipme=True)     # drop tail's connection
    b, c = sla(), rule_hit()
    xadd(r, b)
    xadd(r, a)                                  # a copy re-sent by chatmond
    xadd(r, c)
    assert t.ids(3, timeout=10) == [a["id"], b["id"], c["id"]]
    t.quiet(3, 1)
    assert t.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_exits_zero_at_once(redis_server, tail, sig):
    srv = redis_server()
    t = tail("--redis", srv.url())
    time.sleep(0.5 * SLOW)                      # inside XREAD BLOCK
    start = time.monotonic()
    assert t.stop(sig) == 0
    assert time.monotonic() - start < 0.5 * SLOW
    assert t.err == []


def test_signal_while_redis_is_down(redis_server, tail):
    srv = redis_server(start=False)
    t = tail("--redis", srv.url())
    t.wait_err(r"retrying")
    assert t.stop(signal.SIGTERM) == 0
