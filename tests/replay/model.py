#!/usr/bin/python3
"""An independent model of `chatmon replay`, written from the semantics only
(docs/configuration.md, include/chatmon/sla.h, design.md "SLA semantics");
it neither calls nor ports the tool's code (service time is walked window by
window, deadlines are found by a scan). The .expected files beside it were
computed with it and checked by hand, so that the goldens do not copy the tool.

    tests/replay/model.py NAME.yaml NAME.jsonl > NAME.expected

It knows the rule set the goldens use (tests/blackbox/rules_live) only as
plain-text patterns: the logs are written so that no evasion and no
normalisation is involved. A line that breaks several rules is one alert
(docs/alerts.md, schema v2): the strongest hit's fields on top, every hit
in "hits", strongest first. It refuses a log
where two conversations have an event due at the same millisecond (the
tool's order between them is not part of the contract).

test_replay.py does not run this file; regenerate an .expected with it only
after deciding, from the semantics, that the new output is right.
"""

import json
import re
import sys
from datetime import datetime, timezone

import yaml

DAY = 86400000

# tests/blackbox/rules_live/live.yaml, as plain patterns: (rule, category,
# severity, action, roles, pattern, unless, message)
RULES = [
    ("offplatform.test_contact", "offplatform", "critical", "block", ("agent",),
     "加我?(?:微信|威信|薇信|v信|vx)", None, "亲,平台规定只能在旺旺上沟通哦。"),
    ("stock.test_none", "stock", "warn", "warn", ("agent",), "没货|缺货", "有货",
     "亲,这款有现货的,我帮您确认一下库存。"),
    ("etiquette.test_unsure", "etiquette", "info", "flag", ("agent",), "不知道", None, ""),
    ("complaint_risk.test_threat", "complaint_risk", "warn", "warn", ("customer",),
     "投诉|差评", None, "买家提到投诉或差评,请先安抚并及时处理。"),
]


def duration(v):
    """docs/configuration.md durations: 15, 15s, 600ms, 2m, 1.5s (rounded up)."""
    s = str(v)
    m = re.fullmatch(r"(\d*\.?\d+)(ms|s|m|h)?", s)
    assert m, s
    mult = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, None: 1000}[m.group(2)]
    from fractions import Fraction
    x = Fraction(m.group(1)) * mult
    return int(-(-x.numerator // x.denominator))


PROFILES = {
    "taobao": dict(first_response=15000, reply=30000, escalate=180000, rate=180000,
                   cap=600000, hours=["08:00-23:00"]),
    "jd": dict(first_response=30000, reply=30000, escalate=180000, rate=30000,
               cap=600000, hours=["09:00-23:00"]),
    "pdd": dict(first_response=30000, reply=180000, escalate=300000, rate=180000,
                cap=600000, hours=["08:00-23:00"]),
}


class Config:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        sla = doc.get("sla") or {}
        base = dict(first_response=15000, reply=30000, escalate=180000, rate=180000,
                    cap=600000, hours=[])
        base.update(PROFILES.get(sla.get("profile", "custom"), {}))
        for k in ("first_response", "reply", "escalate", "rate", "cap"):
            if k in sla:
                base[k] = duration(sla[k])
        if "hours" in sla:
            base["hours"] = sla["hours"] or []
        self.first = base["first_response"]
        self.reply = base["reply"]
        self.escalate = base["escalate"]
        self.rate = base["rate"]
        self.cap = base["cap"]
        self.warn_at = float(sla.get("warn_at", 0.8))
        self.idle = duration(sla.get("idle", "30m"))
        tz = str(sla.get("timezone", "+08:00"))
        if tz == "UTC":
            self.off = 0
        elif tz.startswith("Asia/"):
            self.off = 8 * 3600000
        else:
            m = re.fullmatch(r"([+-])(\d\d):(\d\d)", tz)
            self.off = (1 if m.group(1) == "+" else -1) * (int(m.group(2)) * 60 +
                                                            int(m.group(3))) * 60000
        wins = []
        for h in base["hours"]:
            a, b = h.split("-")
            f = int(a[:2]) * 60 + int(a[3:])
            t = int(b[:2]) * 60 + int(b[3:])
            if f < t:
                wins.append((f * 60000, t * 60000))
            elif f > t:
                wins.append((f * 60000, DAY))
                if t:
                    wins.append((0, t * 60000))
        self.windows = sorted(wins)     # local ms of a day; overlaps are harmless below

    # -- service time: the clock runs only inside the windows (local time) --

    def _spans(self, start_day):
        """Service intervals in wall ms, from local day start_day on, in order."""
        day = start_day
        while True:
            merged = []
            for f, t in self.windows:
                if merged and f <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], t)
                else:
                    merged.append([f, t])
            for f, t in merged:
                yield day * DAY + f - self.off, day * DAY + t - self.off
            day += 1

    def service_ms(self, a, b):
        if b <= a:
            return 0
        if not self.windows:
            return b - a
        total = 0
        for f, t in self._spans((a + self.off) // DAY - 1):
            if f >= b:
                return total
            lo, hi = max(f, a), min(t, b)
            if hi > lo:
                total += hi - lo

    def service_add(self, a, ms):
        """The earliest wall time with ms of service after a."""
        if ms == 0:
            return a
        if not self.windows:
            return a + ms
        for f, t in self._spans((a + self.off) // DAY - 1):
            if t <= a:
                continue
            start = max(f, a)
            if ms <= t - start:
                return start + ms
            ms -= t - start


def ts_text(ms):
    d = datetime.fromtimestamp(ms // 1000, timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def parse_ts(v):
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if not isinstance(v, str):
        raise ValueError("ts: epoch milliseconds or an RFC 3339 time")
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                     r"(?:([Zz])|([+-])(\d\d):(\d\d))", v)
    if not m:
        raise ValueError("ts: epoch milliseconds or an RFC 3339 time")
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac = int((m.group(7) or "0")[:3].ljust(3, "0"))
    t = int(datetime(y, mo, d, h, mi, s, tzinfo=timezone.utc).timestamp()) * 1000 + frac
    if m.group(9):
        off = (int(m.group(10)) * 60 + int(m.group(11))) * 60000
        t -= off if m.group(9) == "+" else -off
    return t


class Agent:
    def __init__(self):
        self.rounds = self.answered = self.sum = self.first_rounds = 0
        self.first_sum = self.breaches = self.escalations = self.within = 0
        self.secs = []


class Conv:
    def __init__(self, cid):
        self.id = cid
        self.agent = ""
        self.open = False
        self.had_round = False
        self.first = False
        self.opened = 0
        self.idle_at = None
        self.ragent = ""
        self.pending = []       # [(due, order, type, waited, threshold)]


class Model:
    def __init__(self, cfg):
        self.cfg = cfg
        self.convs = {}
        self.agents = {}
        self.seq = 0
        self.out = []
        self.nconv = 0

    def agent(self, name):
        return self.agents.setdefault(name, Agent())

    def alert_id(self, ms):
        self.seq += 1
        return "%013d-%08x-%010d" % (ms, 0, self.seq)

    def emit(self, c, ev):
        due, _, typ, waited, thr = ev
        a = self.agent(c.agent)
        if typ == "sla.breach":
            a.breaches += 1
        elif typ == "sla.escalate":
            a.escalations += 1
        sev = {"sla.warn": "info", "sla.breach": "warn", "sla.escalate": "critical"}[typ]
        self.out.append(dict(v=2, id=self.alert_id(due), ts=ts_text(due), type=typ,
                             severity=sev, agent=c.agent, conversation=c.id,
                             waited_ms=waited, threshold_ms=thr, first=c.first))

    def record(self, c, answered, ms):
        # answered: the agent who closed it; unanswered: who had it when it opened
        a = self.agent(c.agent if answered else c.ragent)
        v = min(ms, self.cfg.cap) if answered else self.cfg.cap
        a.rounds += 1
        a.sum += v
        if answered:
            a.answered += 1
            if ms <= self.cfg.rate:
                a.within += 1
        if c.first:
            a.first_rounds += 1
            a.first_sum += v
        a.secs.append(-(-v // 1000))

    def advance(self, now):
        """Everything due at or before now, in time order: events and idle ends."""
        while True:
            nxt = []
            for c in self.convs.values():
                ev = min(c.pending, default=None)
                if ev is not None and ev[0] <= c.idle_at:
                    nxt.append((ev[0], 0, c, ev))
                else:
                    nxt.append((c.idle_at, 1, c, None))
            nxt = [x for x in nxt if x[0] <= now]
            if not nxt:
                return
            t = min(x[0] for x in nxt)
            evs = [x for x in nxt if x[0] == t and x[1] == 0]
            if len(evs) > 1:
                raise SystemExit("model: events of %s tie at %d"
                                 % (", ".join(x[2].id for x in evs), t))
            _, kind, c, ev = evs[0] if evs else next(x for x in nxt if x[0] == t)
            if kind == 0:
                c.pending.remove(ev)
                self.emit(c, ev)
            else:
                # idle: it ended at idle_at; an open round is unanswered
                if c.open:
                    self.record(c, False, 0)
                del self.convs[c.id]

    def rule_hits(self, role, text):
        hits = []
        for rule, cat, sev, action, roles, pat, unless, msg in RULES:
            if role not in roles:
                continue
            if unless and re.search(unless, text):
                continue
            m = re.search(pat, text)
            if m:
                if role == "customer" and action == "block":
                    action = "warn"
                hits.append((rule, cat, sev, action, m.start(), m.end(), m.group(0), msg))
        # docs/alerts.md: action, then severity, then the longer match, the
        # earlier start, the rule id
        act = {"block": 2, "warn": 1, "flag": 0}
        sev = {"critical": 2, "warn": 1, "info": 0}
        hits.sort(key=lambda h: (-act[h[3]], -sev[h[2]], -(h[5] - h[4]), h[4], h[0]))
        return hits

    def line(self, ts, conv, role, agent, text, robot):
        self.advance(ts)
        hits = self.rule_hits(role, text)
        blocked = any(h[3] == "block" for h in hits)
        if hits:
            each = [{"rule": rule, "category": cat, "severity": sev, "action": action,
                     "match": {"start": s, "end": e}, "matched": matched, "message": msg}
                    for rule, cat, sev, action, s, e, matched, msg in hits]
            top = each[0]
            self.out.append({"v": 2, "id": self.alert_id(ts), "ts": ts_text(ts),
                             "type": "rule.hit", "severity": top["severity"],
                             "agent": agent, "conversation": conv, "role": role,
                             "category": top["category"], "rule": top["rule"],
                             "action": top["action"], "text": text,
                             "match": top["match"], "matched": top["matched"],
                             "message": top["message"], "hits": each})
        if blocked:
            return                      # never reached the customer: answers nothing
        c = self.convs.get(conv)
        if c is None:
            c = self.convs[conv] = Conv(conv)
            self.nconv += 1
        if agent:
            c.agent = agent
        c.idle_at = self.cfg.service_add(ts, self.cfg.idle)   # idle is service time too
        cfg = self.cfg
        if role == "customer":
            if not c.open:
                c.first = not c.had_round
                c.had_round = c.open = True
                c.opened = ts
                c.ragent = c.agent
                thr = cfg.first if c.first else cfg.reply
                w = int(cfg.warn_at * thr + 0.5)
                c.pending = [(cfg.service_add(ts, w), 0, "sla.warn", w, thr),
                             (cfg.service_add(ts, thr), 1, "sla.breach", thr, thr),
                             (cfg.service_add(ts, cfg.escalate), 2, "sla.escalate",
                              cfg.escalate, cfg.escalate)]
        elif not robot and c.open:
            self.record(c, True, cfg.service_ms(c.opened, ts))
            c.open = False
            c.pending = []

    def summary(self):
        agents = {}
        for name in sorted(self.agents, key=lambda s: s.encode("utf-8")):
            a = self.agents[name]
            if not (a.rounds or a.breaches or a.escalations):
                continue
            p90 = 0
            if a.rounds:
                secs = sorted(a.secs)
                cum = 0
                for v in range(0, max(secs) + 1):
                    cum += secs.count(v)
                    if cum * 10 >= a.rounds * 9:
                        p90 = min(v * 1000, self.cfg.cap)
                        break
            rate = a.within / a.rounds if a.rounds else 0.0
            agents[name or "-"] = {
                "rounds": a.rounds, "answered": a.answered,
                "mean_ms": (a.sum + a.rounds // 2) // a.rounds if a.rounds else 0,
                "p90_ms": p90, "first_rounds": a.first_rounds,
                "first_mean_ms": (a.first_sum + a.first_rounds // 2) // a.first_rounds
                if a.first_rounds else 0,
                "breaches": a.breaches, "escalations": a.escalations,
                "within_rate": a.within, "rate": Real(rate)}
        return {"type": "summary", "agents": agents, "conversations": self.nconv}


class Real(float):
    """jansson's %.6g real, always with a '.' or an exponent."""


def dumps(o):
    if isinstance(o, Real):
        s = "%.6g" % o
        return s if ("." in s or "e" in s) else s + ".0"
    if isinstance(o, dict):
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + dumps(v)
                              for k, v in o.items()) + "}"
    return json.dumps(o, ensure_ascii=False, separators=(",", ":"))


def main():
    cfg = Config(sys.argv[1])
    m = Model(cfg)
    last = None
    rc = 0
    for name in sys.argv[2:]:
        with open(name, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                raw = raw.rstrip("\r\n")
                if not raw:
                    continue
                try:
                    o = json.loads(raw)
                    if not isinstance(o, dict):
                        raise ValueError("not a JSON object")
                    ts = parse_ts(o.get("ts"))
                    conv = o.get("conversation")
                    if isinstance(conv, int) and not isinstance(conv, bool):
                        conv = str(conv)
                    if not isinstance(conv, str):
                        raise ValueError("conversation missing or not a string")
                    role = o.get("role")
                    if role not in ("customer", "agent"):
                        raise ValueError('role must be "customer" or "agent"')
                    agent = o.get("agent") if isinstance(o.get("agent"), str) else ""
                    if not isinstance(o.get("text"), str):
                        raise ValueError("text missing or not a string")
                    if last is not None and ts < last:
                        raise ValueError("ts goes back in time: a log must be in time order")
                except (ValueError, TypeError, AttributeError) as e:
                    print(f"{name}:{n}: {e}", file=sys.stderr)
                    rc = 1
                    continue
                last = ts
                m.line(ts, conv, role, agent, o["text"], o.get("robot") is True)
    for a in m.out:
        print(dumps(a))
    print(dumps(m.summary()))
    return rc


if __name__ == "__main__":
    sys.exit(main())
