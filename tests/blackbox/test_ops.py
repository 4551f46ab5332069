"""Operations (issue 6): sd_notify against a real notify socket (a path and
an abstract name), the admin HTTP endpoints (/healthz, /readyz, /metrics in
the Prometheus text format, the bearer token), SIGHUP with 20 agents
connected, and the log formats (json, journald's <N> prefixes, no secrets).

The Prometheus text is read by a small strict parser written here (HELP and
TYPE lines, samples, escaped label values, counter/gauge/histogram rules).
The reload test prints its figures (run with -s to see them)."""

import asyncio
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import websockets

from conftest import (CHATMON, CHATMOND, DEFAULT_RULES, SLOW, T, RawWS, agent, closed, config_text, free_port,
                      recv, run, wait_for)

LIVE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules_live")
FAIL_WORDS = {"down", "fail", "failed", "failing", "disconnected", "unreachable", "error",
              "no", "not ready", "not_ready"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """The daemon fixture copies os.environ: none of systemd's variables may leak in."""
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM",
              "LISTEN_FDS", "LISTEN_PID"):
        monkeypatch.delenv(k, raising=False)


def admin_args(port, host="127.0.0.1"):
    return ["-o", f"admin.listen={host}:{port}"]


def turn(text, conv="c-1", type_="message"):
    return json.dumps({"type": type_, "conversation": conv, "text": text}, ensure_ascii=False)


# --------------------------------------------------------------------------
# sd_notify: a real AF_UNIX datagram socket, read by a thread


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)     # Linux; SCM_TIMESTAMPNS is the same


class Msg:
    def __init__(self, t, raw, kt=None):
        self.t = t                      # time.monotonic() at receipt (CLOCK_MONOTONIC)
        self.kt = kt                    # the kernel's arrival time (CLOCK_REALTIME), if given
        self.raw = raw
        self.lines = [l for l in raw.split("\n") if l]
        self.fields = {}
        for l in self.lines:
            k, _, v = l.partition("=")
            self.fields[k] = v
        self.port_ok = None             # READY: did the listen port accept right then?

    def __contains__(self, k):
        return k in self.fields

    def __repr__(self):
        return f"<{self.t:.3f} {self.raw!r}>"


class Notify:
    """NOTIFY_SOCKET for chatmond: kind "path" (a socket file) or "abstract" ("@name")."""

    def __init__(self, kind):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.dir = None
        if kind == "path":
            # short: sun_path holds 107 bytes
            self.dir = tempfile.mkdtemp(prefix="cm-notify-")
            self.env = os.path.join(self.dir, "notify.sock")
            self.sock.bind(self.env)
        else:
            name = f"chatmon-test-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        # the kernel stamps each datagram on arrival: periods are measured from
        # that, not from when this thread got round to reading it
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.1)
        self.msgs = []
        self.cond = threading.Condition()
        self.check_port = None          # on READY=1, try connecting here at once
        self.done = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.done:
            try:
                data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            except OSError:
                return
            kt = None
            for level, type_, cdata in anc:
                if level == socket.SOL_SOCKET and type_ == SO_TIMESTAMPNS and len(cdata) >= 16:
                    sec, nsec = struct.unpack("qq", cdata[:16])
                    kt = sec + nsec / 1e9
            m = Msg(time.monotonic(), data.decode("utf-8", "replace"), kt)
            if m.fields.get("READY") == "1" and self.check_port:
                try:
                    socket.create_connection(("127.0.0.1", self.check_port), 1).close()
                    m.port_ok = True
                except OSError:
                    m.port_ok = False
            with self.cond:
                self.msgs.append(m)
                self.cond.notify_all()

    def all(self):
        with self.cond:
            return list(self.msgs)

    def wait(self, pred, timeout=T, start=0, what="datagram"):
        """(index, Msg) of the first message at or after start matching pred."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.msgs)):
                    if pred(self.msgs[i]):
                        return i, self.msgs[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; got {self.msgs[-8:]}")
                self.cond.wait(min(left, 0.1))

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    made = []

    def make(kind="path"):
        n = Notify(kind)
        made.append(n)
        return n
    yield make
    for n in made:
        n.close()


def is_ready(m):
    return m.fields.get("READY") == "1"


def status_of(m):
    """The STATUS= figures as a dict of ints ({} when none)."""
    s = m.fields.get("STATUS")
    if s is None:
        return None
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", s)}


STATUS_KEYS = ("agents", "conversations", "open_rounds", "alerts_queued")


# --------------------------------------------------------------------------
# HTTP and the Prometheus text format


def fetch(port, path, method="GET", headers=None, host="127.0.0.1", source=None,
          timeout=T):
    """(status, {lower-case header: value}, body bytes)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout, source_address=source)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def fetch_json(port, path, **kw):
    status, headers, body = fetch(port, path, **kw)
    try:
        doc = json.loads(body)
    except ValueError:
        raise AssertionError(f"{path}: not JSON ({status}): {body[:300]!r}")
    assert isinstance(doc, dict), doc
    return status, doc


def names_failing(doc, name):
    """True when the readyz body names check `name` as failing
    (e.g. {"upstream": "down"} or {"checks": {"upstream": "down"}})."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if name in k.lower() and (v is False or isinstance(v, str) and
                                      v.lower() in FAIL_WORDS):
                return True
            if names_failing(v, name):
                return True
    elif isinstance(doc, list):
        return any(names_failing(x, name) or (isinstance(x, str) and name in x.lower())
                   for x in doc)
    return False


class PromError(AssertionError):
    pass


METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
VALUE = re.compile(r"[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class Family:
    def __init__(self, name):
        self.name, self.help, self.type, self.samples = name, None, None, []


class Prom:
    """Text format 0.0.4, strictly: every family has HELP and TYPE before its
    samples, a family's samples are contiguous, no series twice, counters end
    in _total and are finite and >= 0, histograms have cumulative buckets
    with le="+Inf" equal to _count, and a _sum."""

    def __init__(self, text):
        self.families = {}
        seen = set()
        current = None
        done = set()
        lines = text.split("\n")
        if text and not text.endswith("\n"):
            raise PromError("the exposition does not end with a newline")
        for no, line in enumerate(lines, 1):
            if line.strip() == "":
                continue
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                    name = parts[2]
                    if not METRIC_NAME.fullmatch(name):
                        raise PromError(f"line {no}: bad metric name {name!r}")
                    fam = self.families.setdefault(name, Family(name))
                    if fam.samples or name in done:
                        raise PromError(f"line {no}: {parts[1]} after {name}'s samples")
                    rest = parts[3] if len(parts) > 3 else ""
                    if parts[1] == "HELP":
                        if fam.help is not None:
                            raise PromError(f"line {no}: second HELP for {name}")
                        fam.help = self._unescape(rest, no, help_text=True)
                    else:
                        if fam.type is not None:
                            raise PromError(f"line {no}: second TYPE for {name}")
                        if rest not in TYPES:
                            raise PromError(f"line {no}: bad type {rest!r}")
                        fam.type = rest
                continue
            name, labels, value = self._sample(line, no)
            fam = self._family_of(name, no)
            if current is not fam:
                if current is not None:
                    done.add(current.name)
                if fam.name in done:
                    raise PromError(f"line {no}: {fam.name}'s samples are not contiguous")
                current = fam
            key = (name, tuple(sorted(labels.items())))
            if key in seen:
                raise PromError(f"line {no}: series given twice: {line}")
            seen.add(key)
            fam.samples.append((name, labels, value))
        for fam in self.families.values():
            self._check(fam)

    @staticmethod
    def _unescape(s, no, help_text=False):
        out, i = [], 0
        while i < len(s):
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s):
                    raise PromError(f"line {no}: trailing backslash")
                n = s[i + 1]
                if n == "n":
                    out.append("\n")
                elif n == "\\":
                    out.append("\\")
                elif n == '"' and not help_text:
                    out.append('"')
                else:
                    raise PromError(f"line {no}: bad escape \\{n}")
                i += 2
            else:
                out.append(c)
                i += 1
        return "".join(out)

    def _sample(self, line, no):
        m = METRIC_NAME.match(line)
        if not m:
            raise PromError(f"line {no}: no metric name: {line!r}")
        name, i = m.group(), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            i += 1
            while True:
                while i < len(line) and line[i] == " ":
                    i += 1
                if i < len(line) and line[i] == "}":
                    i += 1
                    break
                lm = LABEL_NAME.match(line, i)
                if not lm:
                    raise PromError(f"line {no}: bad label name at {i}: {line!r}")
                lname, i = lm.group(), lm.end()
                if line[i:i + 2] != '="':
                    raise PromError(f"line {no}: expected =\" after {lname}: {line!r}")
                i += 2
                raw = []
                while True:
                    if i >= len(line):
                        raise PromError(f"line {no}: unterminated label value: {line!r}")
                    c = line[i]
                    if c == "\\":
                        raw.append(line[i:i + 2])
                        i += 2
                        continue
                    if c == '"':
                        i += 1
                        break
                    raw.append(c)
                    i += 1
                if lname in labels:
                    raise PromError(f"line {no}: label {lname} twice")
                labels[lname] = self._unescape("".join(raw), no)
                if i < len(line) and line[i] == ",":
                    i += 1
                elif i < len(line) and line[i] == "}":
                    i += 1
                    break
                else:
                    raise PromError(f"line {no}: expected , or }} in {line!r}")
        rest = line[i:]
        if not rest.startswith(" "):
            raise PromError(f"line {no}: no space before the value: {line!r}")
        toks = rest.split()
        if len(toks) not in (1, 2) or not VALUE.fullmatch(toks[0]) or \
                len(toks) == 2 and not re.fullmatch(r"-?\d+", toks[1]):
            raise PromError(f"line {no}: bad value/timestamp: {line!r}")
        return name, labels, float(toks[0])

    def _family_of(self, name, no):
        fam = self.families.get(name)
        if fam is not None and fam.type not in ("histogram", "summary"):
            if fam.type is None or fam.help is None:
                raise PromError(f"line {no}: sample of {name} before its HELP and TYPE")
            return fam
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix):
                base = self.families.get(name[:-len(suffix)])
                if base is not None and base.type in ("histogram", "summary"):
                    if base.help is None:
                        raise PromError(f"line {no}: {base.name} has no HELP")
                    return base
        raise PromError(f"line {no}: sample {name} belongs to no family with a TYPE")

    @staticmethod
    def _check(fam):
        if fam.help is None or fam.type is None:
            raise PromError(f"{fam.name}: HELP {fam.help!r} TYPE {fam.type!r}")
        if fam.type == "counter":
            if not fam.name.endswith("_total"):
                raise PromError(f"counter {fam.name} does not end in _total")
            for _, labels, v in fam.samples:
                if not (math.isfinite(v) and v >= 0):
                    raise PromError(f"counter {fam.name}{labels} = {v}")
        if fam.type == "histogram":
            groups = {}
            for name, labels, v in fam.samples:
                rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
                if name == fam.name + "_bucket":
                    if "le" not in labels:
                        raise PromError(f"{fam.name}: bucket without le")
                    g["buckets"].append((float(labels["le"]), v))
                elif name == fam.name + "_sum":
                    g["sum"] = v
                elif name == fam.name + "_count":
                    g["count"] = v
                else:
                    raise PromError(f"{fam.name}: stray sample {name}")
            for rest, g in groups.items():
                b = sorted(g["buckets"])
                if not b or b[-1][0] != math.inf:
                    raise PromError(f"{fam.name}{rest}: no le=\"+Inf\" bucket")
                for (l1, c1), (l2, c2) in zip(b, b[1:]):
                    if c2 < c1:
                        raise PromError(f"{fam.name}{rest}: buckets not cumulative: "
                                        f"le={l1} {c1} > le={l2} {c2}")
                if g["count"] is None or g["sum"] is None:
                    raise PromError(f"{fam.name}{rest}: _sum or _count missing")
                if g["count"] != b[-1][1]:
                    raise PromError(f"{fam.name}{rest}: _count {g['count']} != +Inf "
                                    f"bucket {b[-1][1]}")

    # -- queries
    def value(self, name, **labels):
        """The value of the series name{labels} (exactly those labels); None if absent."""
        want = {k: str(v) for k, v in labels.items()}
        for fam in self.families.values():
            for n, l, v in fam.samples:
                if n == name and l == want:
                    return v
        return None

    def series(self, name):
        return [(l, v) for fam in self.families.values() for n, l, v in fam.samples
                if n == name]

    def buckets(self, name, **labels):
        want = {k: str(v) for k, v in labels.items()}
        return sorted((float(l["le"]), v) for l, v in self.series(name + "_bucket")
                      if {k: x for k, x in l.items() if k != "le"} == want)


def scrape(port):
    status, headers, body = fetch(port, "/metrics")
    assert status == 200, (status, body[:300])
    ctype = headers.get("content-type", "")
    return ctype, Prom(body.decode("utf-8"))


def metrics(port):
    return scrape(port)[1]


def delta(m1, m0, name, **labels):
    v1, v0 = m1.value(name, **labels), m0.value(name, **labels)
    assert v1 is not None, f"{name}{labels} missing"
    return v1 - (v0 or 0)


def test_prom_parser_self_check():
    """The parser reads escaped label values and refuses what Prometheus refuses."""
    good = ('# HELP x_total A counter with a \\\\ and a \\n in its help\n'
            '# TYPE x_total counter\n'
            'x_total{agent="a\\"b\\\\c\\nd",k="v"} 3\n'
            'x_total{agent="plain"} 0\n'
            '# TYPE h histogram\n# HELP h A histogram\n'
            'h_bucket{le="0.5"} 1\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 3\n'
            'h_sum 2.5\nh_count 3\n'
            '# HELP g A gauge\n# TYPE g gauge\ng -1.5e3\n')
    p = Prom(good)
    assert p.value("x_total", agent='a"b\\c\nd', k="v") == 3
    assert p.families["x_total"].help == "A counter with a \\ and a \n in its help"
    assert p.buckets("h") == [(0.5, 1), (1.0, 2), (math.inf, 3)]
    assert p.value("g") == -1500
    bad = {
        "no TYPE": "# HELP y Y\ny 1\n",
        "no HELP": "# TYPE y gauge\ny 1\n",
        "counter name": "# HELP y Y\n# TYPE y counter\ny 1\n",
        "negative counter": "# HELP y_total Y\n# TYPE y_total counter\ny_total -1\n",
        "not cumulative": "# HELP h H\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                          "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "no +Inf": "# HELP h H\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "count": "# HELP h H\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",
        "bad escape": "# HELP y Y\n# TYPE y gauge\ny{a=\"\\x\"} 1\n",
        "unterminated": "# HELP y Y\n# TYPE y gauge\ny{a=\"x} 1\n",
        "twice": "# HELP y Y\n# TYPE y gauge\ny{a=\"1\"} 1\ny{a=\"1\"} 2\n",
        "split": "# HELP y Y\n# TYPE y gauge\n# HELP z Z\n# TYPE z gauge\n"
                 "y{a=\"1\"} 1\nz 1\ny{a=\"2\"} 1\n",
        "value": "# HELP y Y\n# TYPE y gauge\ny 1_000\n",
        "no newline": "# HELP y Y\n# TYPE y gauge\ny 1",
    }
    for what, text in bad.items():
        with pytest.raises(PromError):
            Prom(text)
            print("accepted:", what)


# --------------------------------------------------------------------------
# 1. sd_notify


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_notify_ready_reload_stopping(daemon, backend, notify, kind):
    """READY=1 (with STATUS) only once the port accepts; RELOADING=1 with
    MONOTONIC_USEC then READY=1 around a good and a rejected reload;
    STOPPING=1 on SIGTERM before the sessions are closed; no WATCHDOG=1
    without WATCHDOG_USEC."""
    b = backend()
    n = notify(kind)
    port = free_port()
    n.check_port = None
    d = daemon(b.port, wait=False, env={"NOTIFY_SOCKET": n.env},
               args=admin_args(port), limits={"shutdown_grace": "1s"})
    n.check_port = d.port
    i_ready, ready = n.wait(is_ready, 10 * SLOW, what="READY=1")
    assert ready.port_ok is True, "READY=1 came before the listen port accepted connections"
    d.wait_ready()
    # STATUS at READY: in the same datagram, or one right beside it
    st = [m for m in n.all() if "STATUS" in m and abs(m.t - ready.t) < 0.5]
    assert st, f"no STATUS= at READY: {n.all()}"
    fig = status_of(st[0])
    assert all(k in fig for k in STATUS_KEYS), st[0]
    assert (fig["agents"], fig["conversations"], fig["open_rounds"]) == (0, 0, 0), st[0]
    assert not any("RELOADING" in m or "STOPPING" in m for m in n.all()[:i_ready + 1])

    # a good reload
    start = len(n.all())
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    d.signal(signal.SIGHUP)
    i_rel, rel = n.wait(lambda m: m.fields.get("RELOADING") == "1", T, start, "RELOADING=1")
    t1 = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert "MONOTONIC_USEC" in rel, f"RELOADING=1 without MONOTONIC_USEC in its datagram: {rel}"
    usec = int(rel.fields["MONOTONIC_USEC"])
    assert t0 <= usec <= t1, (t0, usec, t1)
    n.wait(is_ready, T, i_rel + 1, "READY=1 after the reload")
    d.wait_log(r"configuration reloaded")

    # a rejected reload: READY=1 again all the same
    good = open(d.conf, encoding="utf-8").read()
    d.write_config(good.replace("level: debug", "level: shouting"))
    start = len(n.all())
    d.signal(signal.SIGHUP)
    i_rel, rel = n.wait(lambda m: m.fields.get("RELOADING") == "1", T, start,
                        "RELOADING=1 (bad config)")
    assert "MONOTONIC_USEC" in rel
    n.wait(is_ready, T, i_rel + 1, "READY=1 after a rejected reload")
    d.wait_log(r"reload rejected")
    d.write_config(good)

    # SIGTERM with an agent that never answers the close: STOPPING=1 comes
    # before its close frame, not at exit (1 s of grace later)
    raw = RawWS(d.port, "/echo?agent=stopper&t=stop")
    b.opened("t=stop")
    start = len(n.all())
    d.signal(signal.SIGTERM)
    code, _ = raw.recv_close()
    t_close = time.time()
    assert code == 1001, code
    _, stopping = n.wait(lambda m: m.fields.get("STOPPING") == "1", T, start, "STOPPING=1")
    assert stopping.kt is not None and stopping.kt <= t_close + 0.1, \
        f"STOPPING=1 arrived {stopping.kt - t_close:.3f}s after the close frame"
    d.proc.wait(10 * SLOW)
    raw.close()
    assert d.stop() == 0
    msgs = n.all()
    i_stop = msgs.index(stopping)
    assert not any(is_ready(m) for m in msgs[i_stop:]), msgs[i_stop:]
    assert sum(is_ready(m) for m in msgs) == 3, msgs
    assert not any("WATCHDOG" in m for m in msgs), "WATCHDOG=1 without WATCHDOG_USEC"
    for m in msgs:
        for line in m.lines:
            assert re.fullmatch(r"[A-Z_]+=.*", line), f"not an assignment: {line!r} in {m}"


@pytest.mark.parametrize("kind", ["abstract", "path"])
def test_notify_watchdog_period(daemon, backend, notify, kind):
    """WATCHDOG_USEC=400000 (WATCHDOG_PID unset): WATCHDOG=1 every 200 ms."""
    b = backend()
    n = notify(kind)
    d = daemon(b.port, wait=False, args=admin_args(free_port()),
               env={"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "400000"})
    _, ready = n.wait(is_ready, 10 * SLOW, what="READY=1")
    d.wait_ready()

    async def chat():               # the loop has work to do meanwhile
        async with agent(d, "/echo?agent=w") as ws:
            for i in range(40):
                await ws.send(turn(f"w{i}", "w-1"))
                await recv(ws)
                await asyncio.sleep(0.04)
    t0 = time.time()
    run(chat())
    time.sleep(max(0.0, t0 + 2.0 - time.time()))
    t1 = time.time()
    time.sleep(0.1)                 # what arrived before t1 has been read
    assert all(m.kt is not None for m in n.all()), "no SO_TIMESTAMPNS on the datagrams"
    pings = [m.kt for m in n.all() if m.fields.get("WATCHDOG") == "1" and t0 <= m.kt <= t1]
    # one every 200 ms, about 5 a second over the span measured: 2 s, or
    # more when the chat took longer (a loaded machine, the sanitizer build)
    span = t1 - t0
    assert 3 * span - 0.5 <= len(pings) <= 7 * span + 0.5, \
        f"{len(pings)} WATCHDOG=1 in {span:.2f}s (expected ~{5 * span:.0f})"
    gaps = sorted(b2 - a for a, b2 in zip(pings, pings[1:]))
    median = gaps[len(gaps) // 2]
    assert 0.12 <= median <= 0.3, f"median gap {median:.3f}s, gaps {gaps}"
    # systemd would restart it after WATCHDOG_USEC without a ping
    assert max(gaps) < 0.4 * SLOW, gaps
    print(f"\nwatchdog[{kind}]: {len(pings)} pings in {span:.2f}s, median gap "
          f"{median * 1000:.0f} ms, max {max(gaps) * 1000:.0f} ms")


def test_notify_status_updates(daemon, backend, notify):
    """STATUS= follows agents, conversations, open rounds and queued alerts,
    rate-limited, and says nothing while nothing changes."""
    b = backend()
    n = notify("path")
    d = daemon(b.port, wait=False, rules=LIVE, args=admin_args(free_port()),
               env={"NOTIFY_SOCKET": n.env})
    i_ready, ready = n.wait(is_ready, 10 * SLOW, what="READY=1")
    d.wait_ready()

    def unsolicited():
        """STATUS datagrams that are not part of a READY/RELOADING/STOPPING one
        (nor sent right beside one)."""
        msgs = n.all()
        marks = [m.t for m in msgs if any(k in m for k in ("READY", "RELOADING", "STOPPING"))]
        return [m for m in msgs if "STATUS" in m and
                not any(k in m for k in ("READY", "RELOADING", "STOPPING")) and
                not any(abs(m.t - t) < 0.5 for t in marks)]
    time.sleep(1.5)
    assert unsolicited() == [], f"STATUS while nothing changed: {unsolicited()}"

    async def main():
        # churn: agents come and go every 100 ms for 1.5 s
        for i in range(8):
            async with agent(d, f"/echo?agent=churn{i}") as ws:
                await ws.send("hi")
                await recv(ws)
            await asyncio.sleep(0.1)
        conns = [await agent(d, f"/echo?agent=s{i}") for i in range(3)]
        for i, ws in enumerate(conns):
            await ws.send(turn("亲,在的" if i else "我不知道", f"st-{i}"))
            assert json.loads(await recv(ws))["type"] == "message"
        want = {"agents": 3, "conversations": 3, "open_rounds": 3}
        _, m = await asyncio.to_thread(
            n.wait, lambda m: (status_of(m) or {}).get("agents") == 3 and
            all(status_of(m).get(k) == v for k, v in want.items()) and
            status_of(m).get("alerts_queued", 0) >= 1, 6 * SLOW, 0,
            "STATUS with 3 agents, 3 conversations, 3 open rounds, an alert queued")
        for ws in conns:
            await ws.close()
        # the customers still wait: their conversations outlive the sessions
        await asyncio.to_thread(
            n.wait, lambda m: status_of(m) is not None and status_of(m).get("agents") == 0 and
            status_of(m).get("open_rounds") == 3 and status_of(m).get("conversations") == 3
            , 6 * SLOW, n.all().index(m) + 1,
            "STATUS back to 0 agents")
    run(main())
    ts = [m.t for m in unsolicited()]
    gaps = [b2 - a for a, b2 in zip(ts, ts[1:])]
    assert all(g >= 0.9 for g in gaps), f"STATUS more often than every second: {gaps}"
    for m in unsolicited():
        assert all(k in status_of(m) for k in STATUS_KEYS), m


def test_no_notify_socket_is_a_noop(daemon, backend):
    """Without NOTIFY_SOCKET (WATCHDOG_USEC alone is set): serves, reloads,
    stops with 0, and says nothing about notify."""
    b = backend()
    d = daemon(b.port, args=admin_args(free_port()), env={"WATCHDOG_USEC": "200000"})

    async def main():
        async with agent(d, "/echo?agent=n") as ws:
            await ws.send("one")
            assert await recv(ws) == "one"
            d.signal(signal.SIGHUP)
            d.wait_log(r"configuration reloaded")
            await ws.send("two")
            assert await recv(ws) == "two"
    run(main())
    time.sleep(0.5)
    assert d.stop() == 0
    bad = [l for l in d.log().splitlines()
           if re.search(r"notify|sd_|watchdog", l, re.I) and re.search(r"error|warn", l)]
    assert bad == [], bad


# --------------------------------------------------------------------------
# 2. Admin HTTP


def test_healthz_readyz_and_http_errors(daemon, backend, tmp_path):
    """The `admin: HOST:PORT` shorthand; /healthz, /readyz (Redis down but a
    spool set: ready); 404 for an unknown path, 405 for other methods."""
    b = backend()
    d = daemon(b.port, args=["-o", f"redis.spool={tmp_path / 'spool.jsonl'}"])
    # conftest's config_text gives every daemon "admin: 127.0.0.1:PORT" (the shorthand)
    m = re.search(r"^admin: 127\.0\.0\.1:(\d+)$", open(d.conf, encoding="utf-8").read(), re.M)
    assert m, "conftest no longer writes the admin: shorthand"
    ap = int(m.group(1))
    status, doc = fetch_json(ap, "/healthz")
    assert status == 200 and doc.get("status") == "ok", (status, doc)
    status, doc = fetch_json(ap, "/readyz")
    assert status == 200 and doc.get("ready") is True, (status, doc)
    for path in ("/nope", "/metrics/x", "/", "/healthzz"):
        status, _, body = fetch(ap, path)
        assert status == 404, (path, status, body[:200])
    for method, path in (("POST", "/metrics"), ("PUT", "/healthz"), ("DELETE", "/readyz"),
                         ("POST", "/healthz")):
        status, _, body = fetch(ap, path, method=method)
        assert status == 405, (method, path, status, body[:200])
    # keep-alive: two requests on one connection, the second after a 405
    c = http.client.HTTPConnection("127.0.0.1", ap, timeout=T)
    try:
        c.request("POST", "/healthz")
        r = c.getresponse()
        r.read()
        assert r.status == 405
        if not r.will_close:
            c.request("GET", "/healthz")
            r = c.getresponse()
            assert r.status == 200 and json.loads(r.read())["status"] == "ok"
    finally:
        c.close()
    # a query string is still the same path
    assert fetch(ap, "/healthz?verbose=1")[0] == 200
    # the relay still works
    async def main():
        async with agent(d, "/echo?agent=h") as ws:
            await ws.send("x")
            assert await recv(ws) == "x"
    run(main())


def raw_http(port, request):
    """Send request bytes, read until the server closes: (status, head, body)."""
    with socket.create_connection(("127.0.0.1", port), T) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"])
def test_admin_non_get_is_405(daemon, backend, method):
    """Every method but GET is 405 on every endpoint; nothing in the body of a HEAD."""
    b = backend()
    ap = free_port()
    daemon(b.port, args=admin_args(ap))
    for path in ("/healthz", "/readyz", "/metrics"):
        req = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
               + ("Content-Length: 0\r\n" if method in ("POST", "PUT", "PATCH") else "")
               + "\r\n").encode()
        status, head, body = raw_http(ap, req)
        if method == "HEAD":
            assert body == b"", (path, head, body[:200])
        assert status == 405, (method, path, head, body[:200])


def test_readyz_503_while_draining(daemon, backend, tmp_path):
    """From SIGTERM on the listener is closed, so /readyz says 503 and
    "listening": false while sessions drain (found by review: it said ready
    for the whole grace, and a load balancer kept sending agents)."""
    b = backend()
    ap = free_port()
    # no Redis here: a spool keeps it ready
    d = daemon(b.port, args=admin_args(ap) + ["-o", f"redis.spool={tmp_path / 'spool'}"],
               limits={"shutdown_grace": "10s"})
    assert fetch_json(ap, "/readyz")[0] == 200
    # an agent that never reads while its backend floods it: the drain waits
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", d.port))
    try:
        s.sendall(b"GET /flood?agent=slow&total=50000000 HTTP/1.1\r\nHost: x\r\n"
                  b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 101"), "no upgrade"
        wait_for(lambda: (metrics(ap).value("chatmon_flow_pauses_total") or 0) > 0,
                 5 * SLOW, "the backend paused: the agent's queue is full")
        mark = len(d.log())
        d.signal(signal.SIGTERM)
        d.wait_log(r"closing 1 sessions", 5 * SLOW, mark)
        status, doc = fetch_json(ap, "/readyz")
        assert status == 503 and doc["ready"] is False and doc["listening"] is False, doc
        assert d.proc.poll() is None, "the drain did not wait for the agent"
    finally:
        s.close()
    assert d.stop() == 0


def test_readyz_redis(daemon, backend, redis_server):
    """Redis down and no spool: 503 naming redis; a Redis that is up: 200."""
    b = backend()
    ap = free_port()
    daemon(b.port, args=admin_args(ap))           # redis://127.0.0.1:1, no spool
    status, doc = fetch_json(ap, "/readyz")
    assert status == 503 and doc.get("ready") is False, (status, doc)
    assert names_failing(doc, "redis"), doc
    assert not names_failing(doc, "upstream"), doc
    assert metrics(ap).value("chatmon_redis_connected") == 0

    r = redis_server()
    ap2 = free_port()
    daemon(b.port, args=admin_args(ap2), redis=f"redis://127.0.0.1:{r.port}")
    wait_for(lambda: fetch_json(ap2, "/readyz")[0] == 200, 5 * SLOW, "/readyz 200 with Redis up")
    status, doc = fetch_json(ap2, "/readyz")
    assert doc.get("ready") is True, doc
    assert metrics(ap2).value("chatmon_redis_connected") == 1


def test_readyz_upstream_down_then_back(daemon, backend, tmp_path):
    """The upstream at a closed port: ready until tried; 503 naming the
    upstream once an agent's upstream connect failed; ready again once the
    next try succeeds."""
    up_port = free_port()
    ap = free_port()
    d = daemon(upstream=f"ws://127.0.0.1:{up_port}/", args=admin_args(ap) + [
        "-o", f"redis.spool={tmp_path / 'spool.jsonl'}"])
    status, doc = fetch_json(ap, "/readyz")
    assert status == 200 and doc.get("ready") is True, ("not tried yet", status, doc)
    m0 = metrics(ap)

    async def try_agent():
        try:
            async with agent(d, "/echo?agent=u") as ws:
                await ws.send("x")
                return await recv(ws)
        except (websockets.ConnectionClosed, websockets.InvalidStatusCode,
                websockets.InvalidHandshake, OSError) as e:
            return e
    got = run(try_agent())
    assert not isinstance(got, str), got
    wait_for(lambda: fetch_json(ap, "/readyz")[0] == 503, 5 * SLOW, "/readyz 503")
    status, doc = fetch_json(ap, "/readyz")
    assert doc.get("ready") is False and names_failing(doc, "upstream"), doc
    assert not names_failing(doc, "redis"), doc           # the spool covers Redis
    m1 = metrics(ap)
    assert delta(m1, m0, "chatmon_upstream_failures_total") >= 1
    assert m1.value("chatmon_upstream_connected") == 0

    b = backend("--port", str(up_port))
    assert run(try_agent()) == "x"
    assert b.opened("agent=u")
    status, doc = fetch_json(ap, "/readyz")
    assert status == 200 and doc.get("ready") is True, doc


def test_readyz_after_a_reload_to_another_upstream(daemon, backend, tmp_path):
    """Found by review: /readyz said 503 "upstream down" after a reload to
    a working upstream until an agent got through it (behind a load
    balancer, none would: out of the pool for good), and a connect to the
    old upstream failing after the reload said the new one was down. A
    reload to another upstream makes it "not tried yet"; what the old one
    does says nothing of it."""
    dead = free_port()
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)                      # accepts, never answers
    ap = free_port()
    args = admin_args(ap) + ["-o", f"redis.spool={tmp_path / 'spool.jsonl'}",
                             "-o", "limits.connect_timeout=2s"]
    d = daemon(upstream=f"ws://127.0.0.1:{dead}/", args=args)

    async def try_agent(path):
        try:
            async with agent(d, path) as ws:
                await ws.send("x")
                return await recv(ws)
        except (websockets.ConnectionClosed, websockets.InvalidStatusCode,
                websockets.InvalidHandshake, OSError) as e:
            return e
    assert not isinstance(run(try_agent("/echo?agent=u1")), str)
    wait_for(lambda: fetch_json(ap, "/readyz")[0] == 503, 5 * SLOW, "/readyz 503")

    def reload_to(port):
        d.reload_with(lambda t: re.sub(r"upstream: \S+", f"upstream: ws://127.0.0.1:{port}/", t))

    b = backend()
    reload_to(b.port)
    status, doc = fetch_json(ap, "/readyz")
    assert status == 200 and doc["ready"] is True and doc["upstream"] == "unknown", doc

    # an agent's connect to an upstream that hangs, then a reload away from it
    reload_to(hang.getsockname()[1])

    async def hanging():
        try:
            async with agent(d, "/echo?agent=u2") as ws:
                await ws.send("x")
                return await recv(ws, 10 * SLOW)
        except (websockets.ConnectionClosed, websockets.InvalidStatusCode,
                websockets.InvalidHandshake, OSError) as e:
            return e

    async def main():
        t = asyncio.ensure_future(hanging())
        await asyncio.sleep(0.5)
        await asyncio.get_running_loop().run_in_executor(None, reload_to, b.port)
        assert await try_agent("/echo?agent=u3") == "x"
        assert not isinstance(await t, str)             # its connect timed out
    run(main())
    d.wait_log(r"session_up_failed: agent=u2: the upstream before the reload")
    status, doc = fetch_json(ap, "/readyz")
    assert status == 200 and doc["ready"] is True and doc["upstream"] == "ok", doc
    hang.close()


def test_a_backend_refusing_one_agent_leaves_the_upstream_up(daemon, backend, tmp_path):
    """Found by review: the backend answering one agent's upgrade 403 (its
    path) counted as the upstream down, and /readyz said 503 until another
    agent got through: behind a load balancer the instance left the
    rotation and no agent came to bring it back. A refusal is counted
    apart; the upstream stays up."""
    b = backend()
    ap = free_port()
    d = daemon(b.port, args=admin_args(ap) + ["-o", f"redis.spool={tmp_path / 'spool.jsonl'}"])

    async def refused():
        async with agent(d, "/refuse?agent=r") as ws:
            return await closed(ws, 5 * SLOW)
    code, reason = run(refused())
    assert code == 1011 and reason.startswith("upstream refused"), (code, reason)
    d.wait_log(r"session_cb: agent=r: upstream 127\.0\.0\.1:\d+: .*: HTTP 403")
    m = metrics(ap)
    assert m.value("chatmon_upstream_refusals_total") == 1
    assert m.value("chatmon_upstream_failures_total") == 0
    status, doc = fetch_json(ap, "/readyz")
    assert status == 200 and doc.get("ready") is True, doc


def test_a_backend_redirect_is_a_refusal_not_followed(daemon, backend):
    """Found by review: lws followed a backend's redirect to whatever host
    its Location named and sent that host the agent's request again, its
    Authorization and Cookie with it. A redirect is a refusal: 1011 to the
    agent, nothing goes to the other host, the upstream stays up."""
    other = backend()
    b = backend()
    ap = free_port()
    d = daemon(b.port, args=admin_args(ap))
    for code in (301, 302, 307, 308):
        to = f"http://127.0.0.1:{other.port}/echo?stolen={code}"

        async def redirected():
            async with agent(d, f"/redirect?code={code}&to={to}&agent=r",
                             extra_headers={"Cookie": "sid=secret"}) as ws:
                return await closed(ws, 5 * SLOW)
        got, reason = run(redirected())
        assert got == 1011 and reason.startswith("upstream refused"), (code, got, reason)
        b.wait(lambda e: e["ev"] == "redirected" and f"code={code}" in e["path"])
    time.sleep(0.5 * SLOW)
    assert not other.select(lambda e: e["ev"] == "open"), other.select(lambda e: True)
    m = metrics(ap)
    assert m.value("chatmon_upstream_refusals_total") == 4
    assert m.value("chatmon_upstream_failures_total") == 0


def non_loopback_ipv4():
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                             timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for a in out.split():
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a) and not a.startswith("127."):
            return a
    return None


def test_admin_token(daemon, backend):
    """admin.token: a non-loopback client needs Authorization: Bearer <token>
    (401 otherwise, on every path); loopback is always let in; the token never
    reaches the log."""
    token = "Tok-9f3b2c1d7e"
    b = backend()
    ap = free_port()
    d = daemon(b.port, args=admin_args(ap, "0.0.0.0") + ["-o", f"admin.token={token}"])
    # loopback: no token, a wrong one, the right one: all let in
    for hdr in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {token}"}):
        status, _, body = fetch(ap, "/healthz", headers=hdr)
        assert status == 200, (hdr, status, body)
    assert fetch(ap, "/metrics")[0] == 200
    ip = non_loopback_ipv4()
    if ip is None:
        pytest.skip("no non-loopback address here: the 401 path cannot be reached "
                    "(loopback with a wrong token was accepted, as it must be)")
    src = (ip, 0)
    for path in ("/healthz", "/readyz", "/metrics", "/nope"):
        for hdr in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": f"Bearer {token}x"}, {"Authorization": f"Bearer {token[:-1]}"},
                    {"Authorization": "Bearer "}, {"Authorization": token}):
            status, _, body = fetch(ap, path, headers=hdr, host=ip, source=src)
            assert status == 401, (path, hdr, status, body[:200])
    auth = {"Authorization": f"Bearer {token}"}
    assert fetch(ap, "/healthz", headers=auth, host=ip, source=src)[0] == 200
    for scheme in ("bearer", "BEARER"):          # RFC 7235: any case
        hdr = {"Authorization": f"{scheme} {token}"}
        assert fetch(ap, "/healthz", headers=hdr, host=ip, source=src)[0] == 200, scheme
    assert fetch(ap, "/nope", headers=auth, host=ip, source=src)[0] == 404
    status, headers, body = fetch(ap, "/metrics", headers=auth, host=ip, source=src)
    assert status == 200 and b"chatmon_build_info" in body
    assert d.stop() == 0
    assert token not in d.log()


COUNTERS = """agent_connections_total upstream_failures_total upstream_refusals_total messages_total bytes_total
binary_messages_total turns_total conversations_ended_total frames_untouched_total
closes_too_big_total flow_pauses_total rule_hits_total rule_alerts_total rule_blocks_total rule_warnings_total
rule_vetoes_total
sla_events_total sla_timer_fires_total alerts_total alerts_sent_total alerts_spooled_total
alerts_dropped_total alerts_folded_total redis_reconnects_total reloads_total""".split()
GAUGES = """agents_connected upstream_connected queued_bytes sla_open_rounds sla_conversations
sla_agents redis_state_calls_waiting
sla_timer_late_max_seconds alerts_queued alerts_spool_bytes redis_connected
build_info""".split()
AGENT_COUNTERS = """agent_rounds_total agent_answered_total agent_breaches_total
agent_escalations_total""".split()
AGENT_GAUGES = """agent_response_mean_seconds agent_response_p90_seconds
agent_first_response_mean_seconds agent_reply_rate""".split()
LABELS = {
    "messages_total": ("direction", {"up", "down"}),
    "bytes_total": ("direction", {"up", "down"}),
    "turns_total": ("role", {"agent", "customer"}),
    "frames_untouched_total": ("reason", {"other", "invalid", "malformed"}),
    "sla_events_total": ("type", {"warn", "breach", "escalate"}),
    "reloads_total": ("result", {"ok", "failed"}),
}


def check_families(p, with_agents):
    f = p.families
    names = [("counter", n) for n in COUNTERS] + [("gauge", n) for n in GAUGES] + \
        [("histogram", "sla_response_seconds")]
    if with_agents:
        names += [("counter", n) for n in AGENT_COUNTERS] + [("gauge", n) for n in AGENT_GAUGES]
    missing = [n for _, n in names if "chatmon_" + n not in f]
    assert not missing, f"missing metrics: {missing}"
    wrong = [(n, f["chatmon_" + n].type, t) for t, n in names if f["chatmon_" + n].type != t]
    assert not wrong, f"wrong TYPE (name, got, want): {wrong}"
    for n, (label, values) in LABELS.items():
        got = {l.get(label) for l, _ in p.series("chatmon_" + n)}
        assert got == values, (n, got)
        assert all(set(l) == {label} for l, _ in p.series("chatmon_" + n)), p.series("chatmon_" + n)
    for n in ("rule_hits_total",):
        for l, _ in p.series("chatmon_" + n):
            assert set(l) == {"category", "severity", "action"}, l
    if with_agents:
        for n in AGENT_COUNTERS + AGENT_GAUGES:
            ser = p.series("chatmon_" + n)
            assert ser and all(set(l) == {"agent"} for l, _ in ser), (n, ser)


def test_metrics_exposition(daemon, backend):
    """/metrics: text/plain; version=0.0.4, parses, every family of the
    contract with HELP and TYPE, build_info{version} 1."""
    b = backend()
    ap = free_port()
    daemon(b.port, args=admin_args(ap))
    ctype, p = scrape(ap)
    assert re.fullmatch(r"text/plain;\s*version=0\.0\.4(;\s*charset=utf-8)?", ctype, re.I), ctype
    check_families(p, with_agents=False)
    version = subprocess.run([CHATMOND, "-V"], capture_output=True, text=True,
                             timeout=10).stdout.split()[-1]
    bi = p.series("chatmon_build_info")
    assert bi == [({"version": version}, 1.0)], bi
    for n in COUNTERS:
        for l, v in p.series("chatmon_" + n):
            assert v == 0 or n == "redis_reconnects_total" or n == "alerts_total", (n, l, v)
    assert p.value("chatmon_agents_connected") == 0
    assert p.value("chatmon_sla_response_seconds_count") == 0


def test_metrics_relay_and_rules_move(daemon, backend, tmp_path):
    """Counters follow the traffic: messages and bytes by direction, binary,
    turns by role, untouched frames by reason, a rule block and a warning with
    their labels, alerts, open conversations and rounds, end frames, 1009."""
    b = backend()
    ap = free_port()
    d = daemon(b.port, rules=LIVE, limits={"max_message": "64KiB"},
               args=admin_args(ap) + ["-o", "sla.first_response=60s", "-o", "sla.reply=60s",
                                      "-o", "sla.escalate=120s", "-o", "redis.fold=0",
                                      "-o", f"redis.spool={tmp_path / 'spool.jsonl'}"])
    m0 = metrics(ap)

    async def drain(ws, quiet=0.4):
        out = []
        while True:
            try:
                out.append(await asyncio.wait_for(ws.recv(), quiet))
            except asyncio.TimeoutError:
                return out

    async def main():
        async with agent(d, "/echo?agent=alice&t=m1") as ws:
            await asyncio.to_thread(b.opened, "t=m1")
            m = await asyncio.to_thread(metrics, ap)
            assert m.value("chatmon_agents_connected") == 1
            assert m.value("chatmon_upstream_connected") == 1
            assert delta(m, m0, "chatmon_agent_connections_total") == 1

            # phase A: plain relay
            sent = [turn(f"你好 {i}", "t-1") for i in range(5)]
            sent += [b"\x00\x01" * 50, json.dumps({"type": "typing", "conversation": "t-1"}),
                     "not json at all", json.dumps({"type": "message", "text": "no conv"})]
            for x in sent:
                await ws.send(x)
                assert await recv(ws) == x
            nbytes = sum(len(x if isinstance(x, bytes) else x.encode()) for x in sent)
            mA = await asyncio.to_thread(metrics, ap)
            dA = lambda n, **l: delta(mA, m, n, **l)    # noqa: E731
            assert dA("chatmon_messages_total", direction="up") == 9
            assert dA("chatmon_messages_total", direction="down") == 9
            assert dA("chatmon_bytes_total", direction="up") == nbytes
            assert dA("chatmon_bytes_total", direction="down") == nbytes
            assert dA("chatmon_binary_messages_total") == 2
            assert dA("chatmon_turns_total", role="agent") == 5
            assert dA("chatmon_turns_total", role="customer") == 5
            for reason in ("other", "invalid", "malformed"):
                assert dA("chatmon_frames_untouched_total", reason=reason) == 2, reason
            assert mA.value("chatmon_sla_conversations") == 1
            assert mA.value("chatmon_sla_open_rounds") == 1     # the last echo's round
            assert sum(v for _, v in mA.series("chatmon_rule_hits_total")) == 0

            # phase B: a block (agent side only), then a warn (both sides)
            await ws.send(turn("好的,加我微信吧", "t-2"))
            f = json.loads(await recv(ws))
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
            mB = await asyncio.to_thread(metrics, ap)
            dB = lambda n, **l: delta(mB, mA, n, **l)   # noqa: E731
            assert dB("chatmon_rule_hits_total", category="offplatform", severity="critical",
                      action="block") == 1
            assert dB("chatmon_rule_blocks_total") == 1
            assert dB("chatmon_rule_warnings_total") == 1
            assert dB("chatmon_messages_total", direction="up") == 0     # never forwarded
            assert dB("chatmon_alerts_total") == 1

            await ws.send(turn("亲,这款没货了", "t-2"))
            frames = [json.loads(x) for x in await drain(ws)]
            warns = [x for x in frames if x["type"] == "chatmon.warning"]
            assert [x["type"] for x in frames].count("message") == 1, frames
            assert warns and all(x["alert"]["rule"] == "stock.test_none" and
                                 x["blocked"] is False for x in warns), frames
            mC = await asyncio.to_thread(metrics, ap)
            dC = lambda n, **l: delta(mC, mB, n, **l)   # noqa: E731
            assert dC("chatmon_rule_hits_total", category="stock", severity="warn",
                      action="warn") == len(warns)
            assert dC("chatmon_rule_warnings_total") == len(warns)
            assert dC("chatmon_rule_blocks_total") == 0
            assert dC("chatmon_alerts_total") == len(warns)
            assert dC("chatmon_messages_total", direction="down") == 1   # warnings are not relayed
            hits = {(l["category"], l["severity"], l["action"]): v
                    for l, v in mC.series("chatmon_rule_hits_total")}
            assert hits == {("offplatform", "critical", "block"): 1,
                            ("stock", "warn", "warn"): len(warns)}, hits

            # phase C: end both conversations
            for conv in ("t-1", "t-2"):
                await ws.send(json.dumps({"type": "end", "conversation": conv}))
                assert json.loads(await recv(ws))["type"] == "end"
            mD = await asyncio.to_thread(metrics, ap)
            assert delta(mD, mC, "chatmon_conversations_ended_total") >= 2
            assert mD.value("chatmon_sla_conversations") == 0
            assert mD.value("chatmon_sla_open_rounds") == 0
            assert delta(mD, mC, "chatmon_frames_untouched_total", reason="other") == 0

        async with agent(d, "/echo?agent=big") as ws:          # 1009
            await ws.send("x" * 70000)
            assert (await closed(ws))[0] == 1009
        await asyncio.sleep(0.2)
    run(main())
    wait_for(lambda: metrics(ap).value("chatmon_agents_connected") == 0, 3 * SLOW,
             "agents_connected back to 0")
    mE = metrics(ap)
    assert delta(mE, m0, "chatmon_closes_too_big_total") == 1
    assert mE.value("chatmon_upstream_connected") == 0
    assert delta(mE, m0, "chatmon_agent_connections_total") == 2
    check_families(mE, with_agents=True)      # the echo rounds made per-agent figures
    # the exit stats line agrees with the last scrape
    assert d.stop() == 0
    st = d.stats()
    assert st["messages_up"] == mE.value("chatmon_messages_total", direction="up")
    assert st["rule_hits"] == sum(v for _, v in mE.series("chatmon_rule_hits_total"))


SHORT_SLA = ["-o", "sla.first_response=300ms", "-o", "sla.reply=300ms", "-o", "sla.warn_at=0.5",
             "-o", "sla.escalate=1s", "-o", "sla.cap=2s", "-o", "sla.timezone=UTC",
             "-o", "redis.fold=0"]
# every punctuation an agent id may hold (docs/security.md): a quote or a
# backslash, which the label would have to escape, is refused at the door
WEIRD_AGENT = "cs.q@shop:1~a+b_c-d"


def test_metrics_large_figures_are_exact(daemon, backend, tmp_path):
    """Figures past six digits are written with every digit: 12 rounds ended
    unanswered under a cap of 24 h are 1 036 800 s, not 1.0368e+06 (a
    response-time sum that moved in steps of 10 s and more once a busy
    shop's day had passed 10^6 s)."""
    n = 12
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"at": 0, "text": turn("在吗", f"x-{i}")} for i in range(n)],
                                 ensure_ascii=False), encoding="utf-8")
    b = backend(script="customer.py")
    ap = free_port()
    d = daemon(b.port, args=admin_args(ap) + ["-o", "sla.cap=24h", "-o", "sla.timezone=UTC"])

    async def main():
        async with agent(d, f"/script?file={script}&agent=ivy") as ws:
            for _ in range(n):
                assert json.loads(await recv(ws))["type"] == "message"
            for i in range(n):
                await ws.send(json.dumps({"type": "end", "conversation": f"x-{i}"}))
            await asyncio.sleep(0.3)
    run(main())
    text = fetch(ap, "/metrics")[2].decode("utf-8")
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines()
                 if line and not line.startswith("#"))
    assert lines["chatmon_sla_response_seconds_count"] == str(n)
    assert lines["chatmon_sla_response_seconds_sum"] == "1036800.000", text
    assert lines['chatmon_agent_rounds_total{agent="ivy"}'] == str(n)
    assert lines['chatmon_agent_response_mean_seconds{agent="ivy"}'] == "86400.000"
    assert lines['chatmon_agent_reply_rate{agent="ivy"}'] == "0.000000"
    d.stop()


def test_metrics_sla_histogram_and_agent_figures(daemon, backend, tmp_path):
    """With short thresholds (300 ms, escalate 1 s, cap 2 s): a quick round, a
    round answered after 2.3 s (warn, breach, escalate; counts as the 2 s cap)
    and one ended unanswered (counts as the cap) show in sla_events_total, the
    response-time histogram and the agent's figures, with the agent id's
    quote and backslash escaped in its label."""
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"at": 0, "text": turn("在吗", "s-1")},
                                  {"at": 400, "text": turn("包邮吗", "s-1")},
                                  {"at": 3200, "text": turn("好吧", "s-1")}],
                                 ensure_ascii=False), encoding="utf-8")
    b = backend(script="customer.py")
    ap = free_port()
    d = daemon(b.port, agent_id="header:X-Agent-Id", args=admin_args(ap) + SHORT_SLA + [
        "-o", f"redis.spool={tmp_path / 'spool.jsonl'}"])
    m0 = metrics(ap)

    async def main():
        async with agent(d, f"/script?file={script}",
                         extra_headers={"X-Agent-Id": WEIRD_AGENT}) as ws:
            f = json.loads(await recv(ws))
            assert f["text"] == "在吗", f
            await ws.send(turn("亲,在的", "s-1"))               # R1: answered at once
            f = json.loads(await recv(ws))
            t2 = time.monotonic()
            assert f["text"] == "包邮吗", f                      # R2 opens
            kinds = []
            for _ in range(2):
                w = json.loads(await recv(ws))
                assert w["type"] == "chatmon.warning", w
                kinds.append(w["alert"]["type"])
            assert kinds == ["sla.warn", "sla.breach"], kinds
            await asyncio.sleep(max(0.0, t2 + 1.4 - time.monotonic()))
            mid = await asyncio.to_thread(metrics, ap)
            assert mid.value("chatmon_sla_open_rounds") == 1
            assert mid.value("chatmon_sla_conversations") == 1
            assert delta(mid, m0, "chatmon_sla_events_total", type="escalate") == 1
            await asyncio.sleep(max(0.0, t2 + 2.3 - time.monotonic()))
            await ws.send(turn("亲,包邮的,久等了", "s-1"))    # R2: 2.3 s, over the cap
            f = json.loads(await recv(ws))
            assert f["text"] == "好吧", f                        # R3 opens
            await ws.send(json.dumps({"type": "end", "conversation": "s-1"}))  # R3: unanswered
            await asyncio.sleep(0.3)
    run(main())
    m = metrics(ap)
    d_ = lambda n, **l: delta(m, m0, n, **l)    # noqa: E731
    assert d_("chatmon_sla_events_total", type="warn") == 1
    assert d_("chatmon_sla_events_total", type="breach") == 1
    assert d_("chatmon_sla_events_total", type="escalate") == 1
    assert d_("chatmon_sla_timer_fires_total") >= 3
    assert 0 <= m.value("chatmon_sla_timer_late_max_seconds") < 0.5
    assert m.value("chatmon_sla_open_rounds") == 0 and m.value("chatmon_sla_conversations") == 0

    # per agent, the id with its punctuation as it came
    a = dict(agent=WEIRD_AGENT)
    assert m.value("chatmon_agent_rounds_total", **a) == 3, m.series("chatmon_agent_rounds_total")
    assert m.value("chatmon_agent_answered_total", **a) == 2
    assert m.value("chatmon_agent_breaches_total", **a) == 1
    assert m.value("chatmon_agent_escalations_total", **a) == 1
    assert abs(m.value("chatmon_agent_reply_rate", **a) - 2 / 3) < 0.01
    mean = m.value("chatmon_agent_response_mean_seconds", **a)
    assert 1.333 <= mean <= 4.0 / 3 + 0.1 * SLOW, mean         # (~0 + 2 + 2) / 3
    assert m.value("chatmon_agent_response_p90_seconds", **a) == 2
    assert 0 <= m.value("chatmon_agent_first_response_mean_seconds", **a) < 0.2 * SLOW
    d.stop()

    # the histogram: ~0 s, 2 s (capped), 2 s (unanswered = cap)
    assert m.value("chatmon_sla_response_seconds_count") == 3
    s = m.value("chatmon_sla_response_seconds_sum")
    assert 4.0 <= s <= 4.0 + 0.2 * SLOW, s
    buckets = m.buckets("chatmon_sla_response_seconds")
    assert len(buckets) >= 3, buckets
    for le, count in buckets:
        if le >= 2:
            assert count == 3, (le, count, buckets)
        elif le >= 0.2 * SLOW:
            assert count == 1, (f"le={le}: the ~0 s round is not counted", buckets)
        else:
            assert count <= 1, (le, count, buckets)


# --------------------------------------------------------------------------
# 3. Reload with 20 agents connected

NEW_RULE = ("- rule: abuse.test_reload\n  category: abuse\n  severity: critical\n"
            "  action: block\n  pattern: '爱买不买'\n  message: 亲,请文明用语。\n"
            "  examples:\n    match: [爱买不买]\n")
SLA_OLD = "sla:\n  first_response: 20s\n  reply: 40s\n  escalate: 200s\n"
# reply 1 s: the round each agent leaves open at the end warns at 0.7 s, breaches at 1 s
SLA_NEW = "sla:\n  first_response: 25s\n  reply: 1s\n  escalate: 240s\n  warn_at: 0.7\n"


def test_reload_with_20_agents(daemon, backend, notify, tmp_path):
    """20 agents chatting through an echo backend while the config (rules
    dir, log level, SLA thresholds) is rewritten and SIGHUP sent 5 times (one
    of them a bad file): no agent dropped, no upstream reopened, the new
    rules block what the old ones let through, the new log level holds and
    the new SLA threshold times the rounds opened after the reload."""
    N = 20
    old_rules, new_rules = tmp_path / "rules_old", tmp_path / "rules_new"
    shutil.copytree(LIVE, old_rules)
    shutil.copytree(LIVE, new_rules)
    (new_rules / "reload.yaml").write_text(NEW_RULE, encoding="utf-8")
    b = backend()
    n = notify("path")
    ap = free_port()
    d = daemon(b.port, wait=False, rules=str(old_rules), level="debug", extra=SLA_OLD,
               args=admin_args(ap), env={"NOTIFY_SOCKET": n.env})
    n.wait(is_ready, 10 * SLOW, what="READY=1")
    d.wait_ready()
    up = f"ws://127.0.0.1:{b.port}/"
    new_text = config_text(d.port, up, level="info", rules=str(new_rules), extra=SLA_NEW)
    bad_text = new_text.replace("  level: info", "  level: shouting")
    assert bad_text != new_text
    sequence = [new_text, None, bad_text, new_text, None]      # None: SIGHUP alone
    fig = {}

    async def main():
        conns = [await agent(d, f"/echo?agent=r{i}&t=rl{i}") for i in range(N)]
        b.count(lambda e: e["ev"] == "open", N, what="upstream opens")
        # before: the old rules let this through
        await conns[0].send(turn("爱买不买", "c0"))
        assert json.loads(await recv(conns[0]))["text"] == "爱买不买"

        stop = asyncio.Event()
        times = [[] for _ in range(N)]
        problems = []

        async def chat(i, ws):
            k = 0
            try:
                while not stop.is_set():
                    msg = turn(f"r{i} #{k}", f"c{i}")
                    await ws.send(msg)
                    while True:
                        data = await recv(ws)
                        if json.loads(data).get("type") != "chatmon.warning":
                            break
                        problems.append((i, "warning", data))
                    if data != msg:
                        problems.append((i, "wrong echo", data, msg))
                    times[i].append(time.monotonic())
                    k += 1
                    await asyncio.sleep(0.02)
            except websockets.ConnectionClosed as e:
                problems.append((i, "closed", e.rcvd.code if e.rcvd else None))
            except asyncio.TimeoutError:
                problems.append((i, "no echo within the timeout"))
        tasks = [asyncio.create_task(chat(i, ws)) for i, ws in enumerate(conns)]
        await asyncio.sleep(0.5)
        reloads = []
        t_first = time.monotonic()
        for text in sequence:
            if text is not None:
                d.write_config(text)
            start = len(n.all())
            d.signal(signal.SIGHUP)
            i_rel, rel = await asyncio.to_thread(
                n.wait, lambda m: m.fields.get("RELOADING") == "1", T, start, "RELOADING=1")
            _, rdy = await asyncio.to_thread(n.wait, is_ready, T, i_rel + 1, "READY=1")
            # READY's arrival (kernel stamp) on the monotonic clock
            rdy_mono = rdy.kt - (time.time() - time.monotonic())
            reloads.append((rdy_mono - int(rel.fields["MONOTONIC_USEC"]) / 1e6) * 1000
                           if "MONOTONIC_USEC" in rel else None)
            await asyncio.sleep(0.25)
        t_last = time.monotonic()
        mark = len(d.log())
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        assert problems == [], problems[:10]
        during = sum(1 for ts in times for t in ts if t_first <= t <= t_last)
        after = [sum(1 for t in ts if t > t_last) for ts in times]
        assert all(x > 0 for x in after), f"agents silent after the reloads: {after}"
        # the new rules: blocked now, on every connection (a blocked reply
        # leaves the round open)
        t_open = time.monotonic()
        for i, ws in enumerate(conns):
            await ws.send(turn("爱买不买", f"c{i}"))
            f = json.loads(await recv(ws))
            assert f["type"] == "chatmon.warning" and f["blocked"] is True, f
            assert f["alert"]["rule"] == "abuse.test_reload", f
        # the new SLA thresholds: the round left open warns and breaches at 1 s, not 40 s
        for i, ws in enumerate(conns):
            got = []
            while len(got) < 2:
                f = json.loads(await recv(ws, 3 * SLOW))
                assert f["type"] == "chatmon.warning" and f["blocked"] is False, f
                got.append(f["alert"])
            assert [a["type"] for a in got] == ["sla.warn", "sla.breach"], got
            assert all(a["threshold_ms"] == 1000 for a in got), got
        assert time.monotonic() - t_open < 1.5 + 0.5 * SLOW
        m = await asyncio.to_thread(metrics, ap)
        for ws in conns:
            await ws.close()
        fig.update(agents=N, messages=sum(len(ts) for ts in times), during=during,
                   window=t_last - t_first, reloads=reloads, mark=mark, metrics=m)
    run(main(), 90)

    m = fig["metrics"]
    assert m.value("chatmon_reloads_total", result="ok") == 4
    assert m.value("chatmon_reloads_total", result="failed") == 1
    assert m.value("chatmon_agents_connected") == N
    assert m.value("chatmon_agent_connections_total") == N + 0
    # no upstream session was closed or reopened by the reloads
    assert len(b.select(lambda e: e["ev"] == "open")) == N
    log = d.log()
    assert "relay_turn" in log[:fig["mark"]] and "relay_turn" not in log[fig["mark"]:], \
        "log.level: info did not take effect"
    assert len(re.findall(r"reload rejected", log)) == 1
    times_ms = [x for x in fig["reloads"] if x is not None]
    logged = re.findall(r"reload.*?(\d+(?:\.\d+)?) ?ms", log)
    print(f"\nreload figures: agents={fig['agents']} messages={fig['messages']} "
          f"during_reloads={fig['during']} (in {fig['window']:.2f}s, 5 SIGHUPs, 1 rejected) "
          f"dropped=0 reload_ms(notify)={[round(x, 2) for x in times_ms]} "
          f"reload_ms(log)={logged}")
    assert len(times_ms) == 5


RELOAD_WORD_RULE = ("- rule: abuse.test_reload_thread\n  category: abuse\n  severity: critical\n"
                    "  action: block\n  pattern: 'reloadcheck'\n  message: 亲,请文明用语。\n"
                    "  examples:\n    match: [reloadcheck]\n")


def test_reload_compiles_off_the_loop(daemon, backend, tmp_path):
    """A reload reads and compiles the rules on a thread of its own: with the
    default pack (a second or more to compile) an agent's turn is relayed
    while it does, and the reload applies after. SIGHUPs while a reload is
    under way make one more reload after it, which reads the files as they
    are then; SIGTERM in the middle of a reload stops clean."""
    rules = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES, rules)
    b = backend()
    d = daemon(b.port, rules=str(rules))
    text = "好的，马上为您查询一下物流"

    async def main():
        async with agent(d, "/echo?agent=a1") as ws:
            # 1. a turn relayed while the pack compiles
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            await asyncio.to_thread(d.wait_log, r"main: reload: reading", T, mark)
            await ws.send(turn(text, "c-1"))
            assert json.loads(await recv(ws))["text"] == text
            assert "configuration reloaded" not in d.log()[mark:], \
                "the turn waited for the reload"
            await asyncio.to_thread(d.wait_log, r"configuration reloaded", 30 * SLOW, mark)

            # 2. three SIGHUPs during one reload: one more reload, which sees the new file
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            await asyncio.to_thread(d.wait_log, r"main: reload: reading", T, mark)
            (rules / "zz-reload.yaml").write_text(RELOAD_WORD_RULE, encoding="utf-8")
            d.signal(signal.SIGHUP)
            d.signal(signal.SIGHUP)
            await asyncio.to_thread(d.wait_log, r"one is under way, another follows it",
                                    T, mark)
            deadline = time.monotonic() + 60 * SLOW
            while len(re.findall(r"configuration reloaded", d.log()[mark:])) < 2:
                assert time.monotonic() < deadline, d.log()[mark:][-3000:]
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            tail = d.log()[mark:]
            assert len(re.findall(r"main: reload: reading", tail)) == 2, tail[-3000:]
            assert len(re.findall(r"configuration reloaded", tail)) == 2, tail[-3000:]
            await ws.send(turn("reloadcheck", "c-1"))
            # the echoed turn's round may have warned meanwhile (slow builds)
            while (w := json.loads(await recv(ws)))["alert"]["type"].startswith("sla."):
                pass
            assert w["type"] == "chatmon.warning" and w["blocked"] is True, w
            assert w["alert"]["rule"] == "abuse.test_reload_thread", w
    run(main(), 120)

    # 3. SIGTERM while a reload compiles: the thread is waited for, exit 0
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"main: reload: reading", T, mark)
    assert d.stop() == 0, d.log()[-3000:]


def test_sigterm_during_a_reload_throws_it_away(daemon, backend, notify):
    """SIGTERM while the reload compiles (the default pack, a second or
    more) and an agent that reads nothing keeps the drain going:
    the compiled reload is thrown away, not applied mid-shutdown, and
    systemd hears no READY=1 after STOPPING=1 (found by review: the reload
    was applied and READY=1 sent after STOPPING=1)."""
    b = backend()
    n = notify("abstract")
    port = free_port()
    d = daemon(b.port, rules=DEFAULT_RULES, env={"NOTIFY_SOCKET": n.env},
               args=admin_args(port), limits={"shutdown_grace": "30s"})
    # it never reads: what waits for it keeps the drain going
    raw = RawWS(d.port, "/flood?total=50000000&agent=stuck&t=reload-term")
    b.opened("t=reload-term")
    time.sleep(1)
    start = len(n.all())
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"main: reload: reading", T, mark)
    d.signal(signal.SIGTERM)
    i_stop, _ = n.wait(lambda m: m.fields.get("STOPPING") == "1", T, start, "STOPPING=1")
    d.wait_log(r"main: reload: stopping, the reload is thrown away", 30 * SLOW, mark)
    time.sleep(0.3)
    after = n.all()[i_stop + 1:]
    assert not any(m.fields.get("READY") == "1" for m in after), after
    assert "configuration reloaded" not in d.log()[mark:], d.log()[mark:][-2000:]
    assert metrics(port).value("chatmon_reloads_total", result="ok") == 0
    raw.close()
    assert d.stop() == 0, d.log()[-3000:]


def test_reload_counters_only_rise(daemon, backend):
    """chatmon_reloads_total counts a reload once it is applied or
    rejected: one rejected while the default pack compiles (a second or
    more) never shows as ok, not even while it runs (found by review: ok
    rose when the reload began and fell back when it was rejected, a
    counter going down)."""
    port = free_port()
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES, args=admin_args(port))
    with open(d.conf, encoding="utf-8") as f:
        good = f.read()
    d.write_config(good + "model: /nonexistent.model\n")
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    seen = []
    deadline = time.monotonic() + 30 * SLOW
    while True:
        m = metrics(port)
        seen.append((m.value("chatmon_reloads_total", result="ok"),
                     m.value("chatmon_reloads_total", result="failed")))
        if seen[-1][1] == 1:
            break
        assert time.monotonic() < deadline, seen[-5:]
        time.sleep(0.05)
    assert "reload rejected" in d.log()[mark:]
    assert len(seen) > 2, "the reload was over before a scrape saw it run"
    assert {ok for ok, _ in seen} == {0}, seen
    d.write_config(good)
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded", 30 * SLOW, mark)
    m = metrics(port)
    assert (m.value("chatmon_reloads_total", result="ok"),
            m.value("chatmon_reloads_total", result="failed")) == (1, 1)


# --------------------------------------------------------------------------
# 4. Logs


def log_every_level(d, aid, text):
    """Make a debug-level daemon log at every level: a chat turn (debug), a
    reload that cannot change listen (warn) and a rejected one (error)."""
    async def main():
        async with agent(d, f"/echo?agent={aid}") as ws:
            await ws.send(turn(text, f"{aid}-1"))
            await recv(ws)
    run(main())
    good = open(d.conf, encoding="utf-8").read()
    d.write_config(good.replace(f"listen: 127.0.0.1:{d.port}", f"listen: 127.0.0.1:{free_port()}"))
    d.signal(signal.SIGHUP)
    d.wait_log(r"cannot change")
    d.write_config(good.replace("level: debug", "level: shouting"))
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload rejected")
    d.write_config(good)


def test_log_json(daemon, backend):
    """log.format: json: every stderr line is one JSON object with ts, level, msg,
    at every level (debug turn, info, warn, error)."""
    b = backend()
    d = daemon(b.port, args=admin_args(free_port()) + ["-o", "log.format=json"], level="debug")
    log_every_level(d, "j", "你好\"\\\n")
    assert d.stop() == 0
    levels = set()
    lines = d.log().splitlines()
    assert len(lines) > 5
    for line in lines:
        try:
            o = json.loads(line)
        except ValueError:
            raise AssertionError(f"not JSON: {line!r}")
        assert isinstance(o, dict), line
        for k in ("ts", "level", "msg"):
            assert k in o, (k, line)
        assert isinstance(o["msg"], str) and o["ts"], line
        levels.add(o["level"])
    assert {"debug", "info", "error"} <= levels and levels & {"warn", "warning"}, levels
    assert any("relay_turn" in json.loads(l)["msg"] for l in lines)


def journal_daemon(daemon, b, tmp_path, name, stream):
    """Start a daemon whose stderr file is tmp_path/<name>.stderr; stream(st)
    gives JOURNAL_STREAM from that file's stat (None: unset)."""
    errfile = tmp_path / f"{name}.stderr"
    errfile.write_bytes(b"")
    st = os.stat(errfile)
    env = {}
    js = stream(st)
    if js is not None:
        env["JOURNAL_STREAM"] = js
    d = daemon(b.port, name=name, env=env, level="debug", args=admin_args(free_port()))
    assert os.stat(d.errfile).st_ino == st.st_ino      # truncated in place, same file
    log_every_level(d, "jr", "在的")
    assert d.stop() == 0
    return d.log().splitlines()


def test_log_journal_stream_prefixes(daemon, backend, tmp_path):
    """JOURNAL_STREAM naming our stderr: <N> syslog priorities, no
    "chatmond: LEVEL:" prefix; naming another file, or unset: as today."""
    b = backend()
    lines = journal_daemon(daemon, b, tmp_path, "journal",
                           lambda st: f"{st.st_dev}:{st.st_ino}")
    bad = [l for l in lines if not re.match(r"<[3467]>", l)]
    assert not bad, f"lines without a <N> prefix: {bad[:5]}"
    bad = [l for l in lines if re.match(r"<\d>chatmond: (error|warn|info|debug): ", l)]
    assert not bad, f"<N> lines still carrying the level prefix: {bad[:5]}"
    prio = lambda rx: {l[1] for l in lines if re.search(rx, l)}    # noqa: E731
    assert prio(r"relay_turn") == {"7"}, prio(r"relay_turn")
    assert prio(r"listening on") == {"6"}
    assert prio(r"cannot change") == {"4"}
    assert prio(r"reload rejected") == {"3"}

    for name, stream in (("other", lambda st: f"{st.st_dev}:{st.st_ino + 1}"),
                         ("garbage", lambda st: "nonsense"), ("unset", lambda st: None)):
        lines = journal_daemon(daemon, b, tmp_path, name, stream)
        bad = [l for l in lines if not re.match(r"chatmond: (error|warn|info|debug): ", l)]
        assert not bad, (name, bad[:5])


def test_start_up_failures_reach_the_journal_as_errors(backend, tmp_path):
    """Under systemd (JOURNAL_STREAM naming stderr) every line of a failed
    start is at the journal's error priority, so `journalctl -u chatmond -p
    warning` shows why: the FILE:LINE lines of a bad configuration, a spool
    that cannot be opened, a rules directory that is not there, and a
    summary line after them (found by review: those lines had no <N> and
    were stored at info)."""
    b = backend()
    base = config_text(free_port(), f"ws://127.0.0.1:{b.port}/")
    cases = {
        "config": (base + "nonsense: 1\n", r"unknown key .nonsense."),
        "spool": (base.replace("redis:\n", f"redis:\n  spool: {tmp_path}/none/alerts.spool\n", 1),
                  r"cannot open the alert spool"),
        "rules": (re.sub(r"(?m)^rules: .*$", f"rules: {tmp_path}/no-rules.d", base),
                  r"cannot open the rules directory"),
    }
    for name, (text, why) in cases.items():
        conf = tmp_path / f"{name}.yaml"
        conf.write_text(text, encoding="utf-8")
        errfile = tmp_path / f"{name}.stderr"
        with open(errfile, "wb") as err:
            st = os.fstat(err.fileno())
            env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
            rc = subprocess.run([CHATMOND, "-c", str(conf)], stderr=err, stdout=subprocess.DEVNULL,
                                env=env, timeout=60 * SLOW).returncode
        assert rc == 1, (name, rc)
        lines = errfile.read_text(encoding="utf-8").splitlines()
        assert any(re.search(why, l) for l in lines), (name, lines)
        bad = [l for l in lines if re.search(why, l) and not l.startswith("<3>")]
        assert not bad, (name, bad)
        assert lines and lines[-1].startswith("<3>main: "), (name, lines)
    # and the services chatmon runs (dashboard, notify): a bad file's lines too
    for cmd in ("dashboard", "notify"):
        errfile = tmp_path / f"{cmd}.stderr"
        with open(errfile, "wb") as err:
            st = os.fstat(err.fileno())
            env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
            rc = subprocess.run([CHATMON, cmd, "-c", str(tmp_path / "config.yaml")], stderr=err,
                                stdout=subprocess.DEVNULL, env=env, timeout=60 * SLOW).returncode
        assert rc != 0, (cmd, rc)
        lines = errfile.read_text(encoding="utf-8").splitlines()
        assert any(l.startswith("<3>") and re.search(r"unknown key .nonsense.", l)
                   for l in lines), (cmd, lines)


def test_check_and_start_errors_name_the_line_and_are_summed_up(backend, tmp_path):
    """chatmond -t and a failed start end with a `main:` line summing the
    errors up (docs/operations.md, "Logs"): -t said nothing after a bad
    rules directory, spool or TLS file, nor did a start whose admin address
    could not be bound. A spool that cannot be opened is at the line that
    names it, as the other files are (it was `PATH: ...` alone)."""
    b = backend()
    base = config_text(free_port(), f"ws://127.0.0.1:{b.port}/")
    spool = base.replace("redis:\n", f"redis:\n  spool: {tmp_path}/none/alerts.spool\n", 1)
    line = spool.splitlines().index(f"  spool: {tmp_path}/none/alerts.spool") + 1
    rules = re.sub(r"(?m)^rules: .*$", f"rules: {tmp_path}/no-rules.d", base)
    admin = re.sub(r"(?m)^admin: .*$", "admin: 192.0.2.1:9", base)
    cases = [
        (["-t"], spool, rf"^\S*spool\.yaml:{line}: redis\.spool: \S*alerts\.spool: cannot open "
                        r"the alert spool: No such file",
         "chatmond: error: main: 1 error in the configuration"),
        ([], spool, rf"^\S*spool\.yaml:{line}: redis\.spool: \S*alerts\.spool: cannot open "
                    r"the alert spool",
         "chatmond: error: main: cannot start: 1 error"),
        (["-t"], rules, r"rules: \S*no-rules\.d: cannot open the rules directory",
         "chatmond: error: main: 1 error in the configuration"),
        ([], admin, r"cannot listen on 192\.0\.2\.1:9 \(admin\.listen\)",
         "chatmond: error: main: cannot start: 1 error"),
    ]
    for args, text, why, last in cases:
        name = "spool" if text is spool else "rules" if text is rules else "admin"
        conf = tmp_path / f"{name}.yaml"
        conf.write_text(text, encoding="utf-8")
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        p = subprocess.run([CHATMOND, "-c", str(conf), *args], capture_output=True, text=True,
                           env=env, timeout=60 * SLOW)
        lines = p.stderr.splitlines()
        assert p.returncode == 1, (args, name, p.stderr)
        assert any(re.search(why, l) for l in lines), (args, name, lines)
        assert lines[-1] == last, (args, name, lines)


def test_a_rules_directory_without_rule_files_is_blamed_on_its_line(backend, tmp_path):
    """Found by review: a rules directory with no *.yaml in it was said as
    `DIR: no *.yaml rule files`, the one configuration error without
    FILE:LINE (one that is not there had its line). The top level's and a
    shop's are each said at the line that names them."""
    b = backend()
    empty = tmp_path / "empty-rules.d"
    empty.mkdir()
    (empty / "README").write_text("not a rule file\n")
    base = config_text(free_port(), f"ws://127.0.0.1:{b.port}/")
    top = re.sub(r"(?m)^rules: .*$", f"rules: {empty}", base)
    line = top.splitlines().index(f"rules: {empty}") + 1
    shop = base + f"shops:\n  tm:\n    rules: [{empty}]\n"
    sline = shop.splitlines().index(f"    rules: [{empty}]") + 1
    for name, text, why in (
            ("top", top, rf"^\S*top\.yaml:{line}: rules: \S*empty-rules\.d: no \*\.yaml rule files$"),
            ("shop", shop, rf"^\S*shop\.yaml:{sline}: shops\.tm: rules: \S*empty-rules\.d: "
                           r"no \*\.yaml rule files$")):
        conf = tmp_path / f"{name}.yaml"
        conf.write_text(text, encoding="utf-8")
        p = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True, text=True,
                           timeout=60 * SLOW)
        assert p.returncode == 1, (name, p.stderr)
        assert any(re.search(why, l) for l in p.stderr.splitlines()), (name, p.stderr)


def test_service_start_errors_reach_the_journal_as_errors(tmp_path):
    """chatmon dashboard and chatmon notify that cannot start for a reason
    other than their file (a port taken, found by review: a plain line, at
    the journal's info priority) say why at error priority under systemd,
    and in the same words as before on a terminal."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    conf = tmp_path / "svc.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:1/"), encoding="utf-8")
    root = os.path.join(os.path.dirname(DEFAULT_RULES), "..", "web", "dashboard")
    cases = {"dashboard": (["-o", f"dashboard.listen=127.0.0.1:{port}", "-o", f"dashboard.root={root}"],
                           rf"^chatmon: dashboard: .*cannot listen on 127\.0\.0\.1:{port}"),
             "notify": (["-o", f"notify.admin=127.0.0.1:{port}"],
                        rf"^chatmon: notify: notify\.admin 127\.0\.0\.1:{port}: cannot listen")}
    try:
        for cmd, (args, why) in cases.items():
            for journal in (False, True):
                errfile = tmp_path / f"{cmd}-{journal}.stderr"
                with open(errfile, "wb") as err:
                    st = os.fstat(err.fileno())
                    env = dict(os.environ)
                    env.pop("JOURNAL_STREAM", None)
                    if journal:
                        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
                    rc = subprocess.run([CHATMON, cmd, "-c", str(conf), *args], stderr=err,
                                        stdout=subprocess.DEVNULL, env=env,
                                        timeout=60 * SLOW).returncode
                assert rc == 1, (cmd, journal, rc)
                lines = errfile.read_text(encoding="utf-8").splitlines()
                want = ("<3>" if journal else "") + why[1:]
                assert any(re.match(want, l) for l in lines), (cmd, journal, lines)
    finally:
        taken.close()


def test_no_secrets_in_logs(daemon, backend, redis_server, tmp_path):
    """redis.password (refused by a Redis that wants another one) and
    admin.token never appear on stderr, at debug level, through alerts,
    reconnects and a reload; nor in -t's output."""
    password, token = "Pw-S3cret-7c1e9a", "Tok-S3cret-4d2b8f"
    r = redis_server(password="the-right-one")
    b = backend()
    args = admin_args(free_port()) + ["-o", f"redis.password={password}",
                                      "-o", f"admin.token={token}", "-o", "redis.timeout=300ms"]
    d = daemon(b.port, rules=LIVE, redis=f"redis://127.0.0.1:{r.port}", level="debug", args=args)

    async def main():
        async with agent(d, "/echo?agent=sec") as ws:
            await ws.send(turn("加我微信", "sec-1"))          # an alert for Redis
            f = json.loads(await recv(ws))
            assert f["type"] == "chatmon.warning"
            await asyncio.sleep(1.0)
    run(main())
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded")
    time.sleep(0.5)
    assert d.stop() == 0
    log = d.log()
    assert re.search(r"(?i)redis", log), "nothing about Redis in the log?"
    assert password not in log and token not in log
    assert "S3cret" not in log
    out = subprocess.run([CHATMOND, "-c", d.conf, "-t", *args], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout + out.stderr and token not in out.stdout + out.stderr


def test_info_log_names_alerts_without_chat_text(daemon, backend):
    """Chat text is personal data (a buyer's phone number, an address): at the
    default log.level info a rule hit is logged by id, type, rule, agent and
    conversation; the text (and the whole alert) appears at debug only."""
    b = backend()
    secret = "13912345678 杭州市西湖区文三路99号"
    d = daemon(b.port, rules=LIVE, level="info")

    async def main():
        async with agent(d, "/echo?agent=alice&t=priv") as ws:
            await ws.send(turn(f"亲,这款没货了 {secret}", conv="c-priv"))
            await recv(ws)
            await recv(ws)
    run(main())
    log = d.log()
    m = d.wait_log(r"^chatmond: info: alert: id=(\S+) type=rule\.hit "
                   r"rule=stock\.test_none agent=alice conversation=c-priv$")
    assert len(m.group(1)) > 20, m.group(0)
    assert secret not in log and "没货" not in log, log[-2000:]


def test_log_line_cannot_be_forged_by_a_conversation_id(daemon, backend, tmp_path):
    """A conversation id is any string (docs/protocol.md): one holding a
    newline, a CR, U+2028 or a C1 control is logged escaped on the alert's
    own line. In the journal no line of the agent's making appears, so no
    entry at a priority of its choosing (docs/operations.md, "Logs")."""
    b = backend()
    errfile = tmp_path / "forge.stderr"
    errfile.write_bytes(b"")
    st = os.stat(errfile)
    d = daemon(b.port, name="forge", level="info",
               env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    forged = "c1\n<2>chatmond: main: FORGED critical line from an agent\r\u2028x\x85y"

    async def main():
        async with agent(d, "/echo?agent=alice") as ws:
            await ws.send(turn("你滚出去", conv=forged))
            f = json.loads(await recv(ws))
            assert f["type"] == "chatmon.warning" and f["conversation"] == forged, f
    run(main())
    d.wait_log(r"alert: id=")
    assert d.stop() == 0
    lines = open(d.errfile, "rb").read().decode("utf-8").split("\n")
    assert lines.pop() == ""
    bad = [l for l in lines if not re.match(r"<[3467]>", l) or "FORGED" in l and "alert:" not in l]
    assert not bad, f"lines not chatmond's own: {bad}"
    alert = [l for l in lines if "alert: id=" in l]
    assert len(alert) == 1 and alert[0].startswith("<6>alert: id="), alert
    assert alert[0].endswith(" agent=alice conversation=c1\\x0a<2>chatmond: main: FORGED "
                             "critical line from an agent\\x0d\\u2028x\\u0085y"), alert


def test_log_json_lines_stay_json_whatever_the_origin(daemon, backend):
    """log.format: json writes one JSON object per line even when a refused
    Origin is not UTF-8 (each bad byte is U+FFFD) or is cut at its 100
    bytes inside a character (the cut falls between two characters)."""
    b = backend()
    d = daemon(b.port, level="info", args=admin_args(free_port()) + ["-o", "log.format=json"],
               extra="allowed_origins: [https://ok.example]\n")

    def handshake(origin):
        with socket.create_connection(("127.0.0.1", d.port), timeout=T) as s:
            s.sendall(b"GET /echo?agent=a HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nOrigin: " + origin + b"\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      b"Sec-WebSocket-Version: 13\r\n\r\n")
            return s.recv(100).split(b"\r\n")[0]
    assert b" 403 " in handshake(b"https://\xff\xfe.example")
    assert b" 403 " in handshake(("https://" + "中" * 60).encode())
    d.wait_log(r"Origin https://中")
    assert d.stop() == 0
    msgs = []
    for line in open(d.errfile, "rb").read().split(b"\n")[:-1]:
        try:
            msgs.append(json.loads(line.decode("utf-8"))["msg"])
        except ValueError as e:
            raise AssertionError(f"not a JSON line ({e}): {line[:200]!r}")
    refused = [m for m in msgs if "is not in allowed_origins" in m]
    assert refused == [
        "session_allow: 127.0.0.1: agent refused (403): "
        "Origin https://\ufffd\ufffd.example is not in allowed_origins",
        "session_allow: 127.0.0.1: agent refused (403): "
        "Origin https://" + "中" * 30 + " is not in allowed_origins"], refused
