#!/usr/bin/python3
"""demo_backend: a pretend shop chat backend for `make run`, demos and the tests.

Every agent that connects (through chatmond, ws://HOST:PORT/...?agent=NAME) is
given simulated buyers, in Chinese, played from a scenario file
(tools/demo_scenario.yaml by default, written from the training material in
shared/seeds/: pre-sale questions, shipping, invoices, returns, quality
problems, a buyer who keeps writing 在吗, one who threatens a 差评 unless
paid...). A few buyers talk at a time and new ones keep arriving, each
pausing like people do (thinking, typing, waiting for an answer, nudging);
--speed divides every pause (--speed 20 for tests).

It speaks chatmon's default protocol, one JSON object per text frame:
  buyer -> agent  {"type":"message","conversation":"c-1","text":"在吗","nick":"小鱼爱吃鱼丸"}
  agent -> buyer  {"type":"message","conversation":"c-1","text":"亲,在的","id":"m-1"}
  either way      {"type":"end","conversation":"c-1"}
and, for the workbench page, frames chatmond relays untouched:
  {"type":"conversation","conversation":"c-1","buyer":"小鱼爱吃鱼丸","label":"售前 · 保温杯",
   "scenario":"presale-cup"}
                  a buyer arrives (before its first message)
  {"type":"typing","conversation":"c-1"}            the buyer is typing
  {"type":"delivered","conversation":"c-1","id":"m-1"}
                  the agent's message with that "id" reached the buyer (a
                  message chatmond blocked never arrives, so is never acknowledged)
It prints the conversations, agents' replies included, on stdout.

On the same port it serves the agent workbench page (web/workbench/) over
plain HTTP: GET / (index.html), /workbench.js, /workbench.css, /favicon.svg
and /config.json, which tells the page where chatmond is, the SLA
thresholds and the zone times are shown in (--chatmond, --first-response,
--reply, --warn-at, --timezone; ?ws=URL in the page's address overrides
--chatmond). So, with chatmond listening on
127.0.0.1:8080 in front of this backend on :9000, open
http://127.0.0.1:9000/?agent=alice in a browser. SIGTERM or SIGINT closes the
agents' connections (1001) and exits 0.

  --scenario FILE --check   load and check a scenario file, print a summary, exit
                            (status 2 and FILE:LINE: reason on stderr when it is bad)
"""

import argparse
import asyncio
import http
import itertools
import json
import os
import random
import re
import signal
import sys
from urllib.parse import parse_qs, urlsplit

import websockets
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCENARIO = os.path.join(HERE, "demo_scenario.yaml")
DEFAULT_WEB = os.path.normpath(os.path.join(HERE, "..", "web", "workbench"))

conversation_ids = itertools.count(1)


# --------------------------------------------------------------------------
# The scenario file

class ScenarioError(Exception):
    """A bad scenario file: str() is 'FILE:LINE: reason' (LINE when known)."""


class _ConstructError(Exception):
    """A mapping the loader cannot take (a duplicate key...): line, reason."""

    def __init__(self, line, msg):
        super().__init__(msg)
        self.line = line


class Map(dict):
    """A YAML mapping that remembers where it and each of its keys were."""
    line = 0
    key_lines = None


class Seq(list):
    """A YAML sequence that remembers where it and each item were."""
    line = 0
    item_lines = None


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader, node):
    loader.flatten_mapping(node)
    m = Map()
    m.line = node.start_mark.line + 1
    m.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise _ConstructError(line, "a key must be a plain word")
        if key in m:
            raise _ConstructError(line, f"duplicate key '{key}'")
        m[key] = loader.construct_object(value_node, deep=True)
        m.key_lines[key] = line
    return m


def _construct_seq(loader, node):
    s = Seq(loader.construct_object(child, deep=True) for child in node.value)
    s.line = node.start_mark.line + 1
    s.item_lines = [child.start_mark.line + 1 for child in node.value]
    return s


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


class Pause:
    """A duration: [lo, hi] seconds, drawn uniformly."""

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def draw(self, rnd):
        return rnd.uniform(self.lo, self.hi)

    def __repr__(self):
        return f"Pause({self.lo:g}, {self.hi:g})"


class Step:
    def __init__(self, kind, **kw):
        self.kind = kind
        self.__dict__.update(kw)

    def __repr__(self):
        return f"Step({self.kind}, {self.__dict__})"


class Buyer:
    def __init__(self, id, name, label, pauses, steps, line):
        self.id, self.name, self.label = id, name, label
        self.pauses, self.steps, self.line = pauses, steps, line


class Scenario:
    def __init__(self, path, settings, buyers):
        self.path, self.settings, self.buyers = path, settings, buyers


DEFAULT_SETTINGS = {"start": 3, "start_gap": Pause(3, 8), "arrival": Pause(35, 70),
                    "max_open": 5, "order": "shuffle"}
DEFAULT_PAUSES = {"think": Pause(1.5, 4), "type_per_char": 0.3, "burst": Pause(0.3, 1.2)}
STEP_KINDS = ("say", "wait", "nudge", "pause", "end")


class _Checker:
    """Turns the loaded YAML into a Scenario; every error names a line."""

    def __init__(self, path):
        self.path = path

    def fail(self, line, msg):
        where = f"{self.path}:{line}" if line else self.path
        raise ScenarioError(f"{where}: {msg}")

    @staticmethod
    def line_of(parent, key, default=0):
        if isinstance(parent, Map) and parent.key_lines and key in parent.key_lines:
            return parent.key_lines[key]
        if isinstance(parent, Seq) and parent.item_lines and isinstance(key, int) \
                and key < len(parent.item_lines):
            return parent.item_lines[key]
        return getattr(parent, "line", default)

    def mapping(self, value, line, what, allowed):
        if not isinstance(value, dict):
            self.fail(line, f"{what} must be a mapping (key: value lines), not {kind(value)}")
        for k in value:
            if k not in allowed:
                self.fail(self.line_of(value, k, line),
                          f"{what}: unknown key '{k}' (expected {', '.join(allowed)})")
        return value

    def text(self, value, line, what):
        if not isinstance(value, str):
            self.fail(line, f"{what} must be text, not {kind(value)} (quote it)")
        if not value.strip():
            self.fail(line, f"{what} is empty")
        return value

    def texts(self, value, line, what):
        """One text or a list of them."""
        if isinstance(value, list):
            if not value:
                self.fail(line, f"{what} is an empty list")
            return [self.text(v, self.line_of(value, i, line), f"{what} (item {i + 1})")
                    for i, v in enumerate(value)]
        return [self.text(value, line, what)]

    def number(self, value, line, what, minimum=0, integer=False):
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            self.fail(line, f"{what} must be {'a whole number' if integer else 'a number of seconds'}"
                            f", not {kind(value)}")
        if value < minimum:
            self.fail(line, f"{what} must be at least {minimum}, not {value}")
        return value

    def pause(self, value, line, what):
        if isinstance(value, list):
            if len(value) != 2:
                self.fail(line, f"{what}: a range is [MIN, MAX], two numbers")
            lo = self.number(value[0], line, f"{what} (MIN)")
            hi = self.number(value[1], line, f"{what} (MAX)")
            if lo > hi:
                self.fail(line, f"{what}: MIN {lo} is more than MAX {hi}")
            return Pause(lo, hi)
        n = self.number(value, line, what)
        return Pause(0.7 * n, 1.3 * n)

    def pauses(self, value, line, base):
        value = self.mapping(value, line, "pauses", list(DEFAULT_PAUSES))
        out = dict(base)
        for k, v in value.items():
            kl = self.line_of(value, k, line)
            out[k] = self.number(v, kl, f"pauses.{k}") if k == "type_per_char" else \
                self.pause(v, kl, f"pauses.{k}")
        return out

    def settings(self, value, line):
        value = self.mapping(value, line, "settings", list(DEFAULT_SETTINGS))
        out = dict(DEFAULT_SETTINGS)
        for k, v in value.items():
            kl = self.line_of(value, k, line)
            if k in ("start", "max_open"):
                out[k] = self.number(v, kl, f"settings.{k}", minimum=1, integer=True)
            elif k == "order":
                if v not in ("shuffle", "in_order"):
                    self.fail(kl, f"settings.order must be shuffle or in_order, not {v!r}")
                out[k] = v
            else:
                out[k] = self.pause(v, kl, f"settings.{k}")
        if out["start"] > out["max_open"]:
            self.fail(line, f"settings: start ({out['start']}) is more than max_open "
                            f"({out['max_open']})")
        return out

    def reacts(self, value, line, what):
        if not isinstance(value, list):
            self.fail(line, f"{what}.react must be a list of {{match: REGEX, say: TEXT}}")
        out = []
        for i, r in enumerate(value):
            rl = self.line_of(value, i, line)
            r = self.mapping(r, rl, f"{what}.react item {i + 1}", ["match", "say"])
            for k in ("match", "say"):
                if k not in r:
                    self.fail(rl, f"{what}.react item {i + 1}: '{k}' is missing")
            ml = self.line_of(r, "match", rl)
            try:
                rx = re.compile(self.text(r["match"], ml, f"{what}.react match"))
            except re.error as e:
                self.fail(ml, f"{what}.react match: bad regular expression: {e}")
            out.append((rx, self.text(r["say"], self.line_of(r, "say", rl), f"{what}.react say")))
        return out

    def waiting(self, value, line, what, nudge):
        """The options shared by wait and nudge (the long forms)."""
        keys = ["say", "every", "times", "timeout", "give_up", "react"] if nudge else \
            ["patience", "timeout", "give_up", "react"]
        value = self.mapping(value, line, what, keys)
        for k in (("say", "every", "times") if nudge else ("patience",)):
            if k not in value:
                self.fail(line, f"{what}: '{k}' is missing")
        opts = {"timeout": "leave", "give_up": None, "react": []}
        for k, v in value.items():
            kl = self.line_of(value, k, line)
            if k == "patience" or k == "every":
                opts[k] = self.number(v, kl, f"{what}.{k}")
            elif k == "times":
                opts[k] = self.number(v, kl, f"{what}.times", integer=True)
            elif k == "say":
                opts["texts"] = self.texts(v, kl, f"{what}.say")
            elif k == "timeout":
                if v not in ("leave", "continue"):
                    self.fail(kl, f"{what}.timeout must be leave or continue, not {v!r}")
                opts[k] = v
            elif k == "give_up":
                opts[k] = self.text(v, kl, f"{what}.give_up")
            elif k == "react":
                opts[k] = self.reacts(v, kl, what)
        return opts

    def step(self, value, line, what):
        if value == "end":
            return Step("end", text=None)
        if not isinstance(value, dict) or len(value) != 1:
            self.fail(line, f"{what} must be one of {', '.join(STEP_KINDS)} "
                            f"(one 'key: value' a step), not {describe(value)}")
        (k, v), = value.items()
        if k not in STEP_KINDS:
            self.fail(line, f"{what}: unknown step '{k}' (expected {', '.join(STEP_KINDS)})")
        if k == "say":
            return Step("say", texts=self.texts(v, line, f"{what}: say"))
        if k == "pause":
            return Step("pause", pause=self.pause(v, line, f"{what}: pause"))
        if k == "end":
            if v is None or v is True:
                return Step("end", text=None)
            return Step("end", text=self.text(v, line, f"{what}: end"))
        if k == "wait":
            if isinstance(v, dict):
                return Step("wait", **self.waiting(v, line, f"{what}: wait", nudge=False))
            return Step("wait", patience=self.number(v, line, f"{what}: wait"),
                        timeout="leave", give_up=None, react=[])
        return Step("nudge", **self.waiting(v, line, f"{what}: nudge", nudge=True))

    def buyer(self, value, line, index, pauses, seen):
        what = f"buyer {index + 1}"
        value = self.mapping(value, line, what, ["id", "name", "label", "pauses", "steps"])
        for k in ("id", "name", "steps"):
            if k not in value:
                self.fail(line, f"{what}: '{k}' is missing")
        il = self.line_of(value, "id", line)
        bid = self.text(value["id"], il, f"{what}: id")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", bid):
            self.fail(il, f"{what}: id '{bid}' may hold only letters, digits, '-' and '_'")
        if bid in seen:
            self.fail(il, f"{what}: id '{bid}' is already used on line {seen[bid]}")
        seen[bid] = il
        what = f"buyer '{bid}'"
        name = self.text(value["name"], self.line_of(value, "name", line), f"{what}: name")
        label = ""
        if "label" in value:
            label = self.text(value["label"], self.line_of(value, "label", line), f"{what}: label")
        if "pauses" in value:
            pauses = self.pauses(value["pauses"], self.line_of(value, "pauses", line), pauses)
        sl = self.line_of(value, "steps", line)
        steps = value["steps"]
        if not isinstance(steps, list) or not steps:
            self.fail(sl, f"{what}: steps must be a non-empty list")
        out = [self.step(s, self.line_of(steps, i, sl), f"{what}, step {i + 1}")
               for i, s in enumerate(steps)]
        if not any(s.kind == "say" for s in out):
            self.fail(sl, f"{what}: the buyer never says anything (no 'say' step)")
        return Buyer(bid, name, label, pauses, out, line)

    def scenario(self, doc):
        if doc is None:
            self.fail(0, "the file is empty")
        doc = self.mapping(doc, 1, "the file", ["settings", "pauses", "buyers"])
        settings = self.settings(doc["settings"], self.line_of(doc, "settings")) \
            if "settings" in doc else dict(DEFAULT_SETTINGS)
        pauses = self.pauses(doc["pauses"], self.line_of(doc, "pauses"), DEFAULT_PAUSES) \
            if "pauses" in doc else dict(DEFAULT_PAUSES)
        if "buyers" not in doc:
            self.fail(0, "no 'buyers': the list of buyers is missing")
        bl = self.line_of(doc, "buyers")
        buyers = doc["buyers"]
        if not isinstance(buyers, list) or not buyers:
            self.fail(bl, "buyers must be a non-empty list")
        seen = {}
        out = [self.buyer(b, self.line_of(buyers, i, bl), i, pauses, seen)
               for i, b in enumerate(buyers)]
        return Scenario(self.path, settings, out)


def kind(value):
    return {dict: "a mapping", Map: "a mapping", list: "a list", Seq: "a list",
            bool: "true/false", int: "a number", float: "a number",
            type(None): "nothing"}.get(type(value), "text")


def describe(value):
    if isinstance(value, dict):
        return "a mapping with keys " + ", ".join(map(str, value)) if value else "an empty mapping"
    if isinstance(value, str):
        return f"'{value}'"
    return kind(value)


def load_scenario(path):
    """The Scenario in path; ScenarioError('FILE:LINE: reason') when it is bad."""
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{path}: cannot read: {e}") from None
    try:
        doc = yaml.load(source, Loader=_Loader)
    except _ConstructError as e:
        raise ScenarioError(f"{path}:{e.line}: {e}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        what = e.problem or e.context or "syntax error"
        if e.context and e.problem and e.context_mark:
            what += f" ({e.context} on line {e.context_mark.line + 1})"
        raise ScenarioError(f"{where}: not valid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{path}: not valid YAML: {e}") from None
    return _Checker(path).scenario(doc)


# --------------------------------------------------------------------------
# Buyers and agents


def frame(kind, conversation, text=None, **extra):
    f = {"type": kind, "conversation": conversation}
    if text is not None:
        f["text"] = text
    f.update(extra)
    return json.dumps(f, ensure_ascii=False)


class Conversation:
    def __init__(self, cid, buyer):
        self.id = cid
        self.buyer = buyer
        self.replied = asyncio.Event()    # the agent wrote since the buyer's last message
        self.replies = []                 # what the agent wrote since then
        self.closed = False               # the agent ended it


class Session:
    """One connected agent and the buyers talking to it."""

    def __init__(self, ws, name, scenario, speed, rnd, max_open=None):
        self.ws = ws
        self.name = name
        self.scenario = scenario
        self.speed = speed
        self.rnd = rnd
        self.settings = dict(scenario.settings)
        if max_open:
            self.settings["max_open"] = max_open
            self.settings["start"] = min(self.settings["start"], max_open)
        self.conversations = {}           # id -> Conversation
        self.tasks = set()
        self.changed = asyncio.Event()    # a conversation ended

    def log(self, conversation, who, text):
        print(f"[{self.name} {conversation}] {who}: {text}", flush=True)

    async def sleep(self, seconds):
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def send(self, text):
        await self.ws.send(text)

    def order(self):
        """The buyers, forever: shuffled rounds or as listed."""
        buyers = list(self.scenario.buyers)
        while True:
            if self.settings["order"] == "shuffle":
                self.rnd.shuffle(buyers)
            yield from buyers

    def open_count(self):
        return len(self.conversations)

    async def arrivals(self):
        order = self.order()
        s = self.settings
        for i in range(s["start"]):
            if i:
                await self.sleep(s["start_gap"].draw(self.rnd))
            self.spawn(next(order))
        while True:
            gap = s["start_gap"] if self.open_count() < s["start"] else s["arrival"]
            await self.sleep(gap.draw(self.rnd))
            while self.open_count() >= s["max_open"]:
                self.changed.clear()
                await self.changed.wait()
                await self.sleep(s["start_gap"].draw(self.rnd))
            self.spawn(next(order))

    def spawn(self, buyer):
        cid = f"c-{next(conversation_ids)}"
        conv = Conversation(cid, buyer)
        self.conversations[cid] = conv
        t = asyncio.create_task(self.play(conv))
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    # -- one buyer

    async def say(self, conv, text, think):
        """Think (a Pause), type (per character), then send text."""
        p = conv.buyer.pauses
        await self.sleep(think.draw(self.rnd))
        if conv.closed:
            return
        await self.send(frame("typing", conv.id))
        await self.sleep(p["type_per_char"] * len(text) * self.rnd.uniform(0.8, 1.2))
        if conv.closed:
            return
        conv.replied.clear()
        conv.replies.clear()
        self.log(conv.id, "买家", text)
        # the buyer's nickname rides on each turn, as platforms' frames do
        # (conf/demo.yaml's protocol.nickname keeps it in the history)
        await self.send(frame("message", conv.id, text, nick=conv.buyer.name))

    async def say_all(self, conv, texts):
        p = conv.buyer.pauses
        for i, text in enumerate(texts):
            await self.say(conv, text, p["think"] if i == 0 else p["burst"])

    async def replied(self, conv, seconds):
        """True when the agent answers within seconds (scaled)."""
        try:
            await asyncio.wait_for(conv.replied.wait(), seconds / self.speed)
            return True
        except asyncio.TimeoutError:
            return False

    async def react(self, conv, step):
        said = "\n".join(conv.replies)
        for rx, text in step.react:
            if rx.search(said):
                await self.say(conv, text, conv.buyer.pauses["think"])
                return

    async def timed_out(self, conv, step):
        """The buyer ran out of patience: True when it leaves."""
        if step.give_up:
            await self.say(conv, step.give_up, Pause(0.5, 1.5))
        if step.timeout == "leave":
            self.log(conv.id, "系统", "买家等不及了,离开")
            return True
        return False

    async def play(self, conv):
        b = conv.buyer
        self.log(conv.id, "系统", f"买家进入会话 ({b.name} · {b.label})" if b.label
                 else f"买家进入会话 ({b.name})")
        try:
            await self.send(frame("conversation", conv.id, buyer=b.name, label=b.label,
                                  scenario=b.id))
            farewell = None
            for step in b.steps:
                if conv.closed:
                    break
                if step.kind == "say":
                    await self.say_all(conv, step.texts)
                elif step.kind == "pause":
                    await self.sleep(step.pause.draw(self.rnd))
                elif step.kind == "end":
                    farewell = step.text
                    break
                elif step.kind == "wait":
                    if await self.replied(conv, step.patience):
                        await self.react(conv, step)
                    elif await self.timed_out(conv, step):
                        break
                elif step.kind == "nudge":
                    n = 0
                    while not await self.replied(conv, step.every):
                        if conv.closed:
                            break
                        if n == step.times:
                            break
                        await self.say(conv, step.texts[n % len(step.texts)], Pause(0.2, 0.8))
                        n += 1
                    else:
                        await self.react(conv, step)
                        continue
                    if not conv.closed and await self.timed_out(conv, step):
                        break
            if conv.closed:
                return
            if farewell:
                await self.say(conv, farewell, b.pauses["think"])
            await self.sleep(self.rnd.uniform(1, 3))
            if not conv.closed:
                self.log(conv.id, "系统", "会话结束")
                await self.send(frame("end", conv.id))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.conversations.pop(conv.id, None)
            self.changed.set()

    # -- the agent's side

    async def read(self):
        """Route the agent's frames to the buyers waiting for them."""
        async for message in self.ws:
            try:
                f = json.loads(message)
                cid = f["conversation"]
                if not isinstance(cid, (str, int)) or isinstance(cid, bool):
                    raise TypeError
                cid = str(cid)
            except (ValueError, TypeError, KeyError, RecursionError):
                # RecursionError: JSON nested deeper than Python's parser goes
                print(f"[{self.name}] (not a chat frame) {message!r:.200}", flush=True)
                continue
            conv = self.conversations.get(cid)
            kind = f.get("type")
            if kind == "message":
                text = f.get("text", "")
                text = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False)
                self.log(cid, "客服", text)
                if "id" in f:
                    await self.send(json.dumps({"type": "delivered", "conversation": f["conversation"],
                                                "id": f["id"]}, ensure_ascii=False))
                if conv is not None:
                    conv.replies.append(text)
                    conv.replied.set()
            elif kind == "end":
                self.log(cid, "系统", "客服结束了会话")
                if conv is not None:
                    conv.closed = True
                    conv.replied.set()
            else:
                self.log(cid, "客服", f"<{kind}>")


async def serve_agent(ws, scenario, speed, max_open, seed):
    query = parse_qs(urlsplit(ws.path).query)
    name = query.get("agent", ["?"])[0]
    session = Session(ws, name, scenario, speed, random.Random(seed), max_open)
    print(f"[{name}] connected on {ws.path}", flush=True)
    arrivals = asyncio.create_task(session.arrivals())
    try:
        await session.read()
    except websockets.ConnectionClosed:
        pass
    finally:
        arrivals.cancel()
        for t in list(session.tasks):
            t.cancel()
        await asyncio.gather(arrivals, *session.tasks, return_exceptions=True)
        print(f"[{name}] disconnected ({ws.close_code})", flush=True)


# --------------------------------------------------------------------------
# The workbench page over plain HTTP

CSP = "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self'"
FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/workbench.js": ("workbench.js", "text/javascript; charset=utf-8"),
    "/workbench.css": ("workbench.css", "text/css; charset=utf-8"),
}
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
           '<rect width="64" height="64" rx="14" fill="#1f6feb"/>'
           '<path d="M16 20h32a4 4 0 0 1 4 4v16a4 4 0 0 1-4 4H30l-9 7v-7h-5a4 4 0 0 1-4-4V24'
           'a4 4 0 0 1 4-4z" fill="#fff"/>'
           '<circle cx="24" cy="32" r="3" fill="#1f6feb"/><circle cx="32" cy="32" r="3" '
           'fill="#1f6feb"/><circle cx="40" cy="32" r="3" fill="#1f6feb"/></svg>')


def http_handler(web_dir, config):
    """A websockets process_request hook: plain GET requests get the page."""

    def respond(status, ctype, body):
        headers = [("Content-Type", ctype), ("Content-Security-Policy", CSP),
                   ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"),
                   ("Referrer-Policy", "no-referrer")]
        return status, headers, body

    async def process_request(path, headers):
        if "websocket" in headers.get("Upgrade", "").lower():
            return None                               # the chat: go on with the handshake
        route = urlsplit(path).path
        if route == "/config.json":
            return respond(http.HTTPStatus.OK, "application/json",
                           json.dumps(config, separators=(",", ":")).encode())
        if route in ("/favicon.svg", "/favicon.ico"):
            return respond(http.HTTPStatus.OK, "image/svg+xml", FAVICON.encode())
        if route in FILES:
            name, ctype = FILES[route]
            try:
                with open(os.path.join(web_dir, name), "rb") as f:
                    return respond(http.HTTPStatus.OK, ctype, f.read())
            except OSError as e:
                print(f"demo_backend: {route}: {e}", file=sys.stderr, flush=True)
                return respond(http.HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8",
                               f"{name}: not found\n".encode())
        return respond(http.HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    return process_request


# --------------------------------------------------------------------------


def hostport(s):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {s}")
    return host.strip("[]"), int(port)


def positive(s):
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {s}")
    return v


# chatmond's sla.timezone forms (src/config.c config_parse_timezone): China's
# names are +08:00, other names are refused rather than guessed
CN_ZONES = ("Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi",
            "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei", "PRC", "ROC")


def timezone(s):
    """sla.timezone as minutes east of UTC."""
    if s in ("UTC", "Z", "Etc/UTC"):
        return 0
    if s in CN_ZONES:
        return 480
    m = re.fullmatch(r"([+-])(\d\d):(\d\d)", s)
    if not m or int(m.group(3)) > 59 or int(m.group(2)) * 60 + int(m.group(3)) > 14 * 60:
        raise argparse.ArgumentTypeError(f"want +HH:MM, -HH:MM, UTC or a China zone name: {s}")
    v = int(m.group(2)) * 60 + int(m.group(3))
    return -v if m.group(1) == "-" else v


def fraction(s):
    v = float(s)
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1]: {s}")
    return v


async def serve(args, scenario):
    host, port = args.listen
    config = {"chatmond": args.chatmond,
              "first_response_ms": round(args.first_response * 1000),
              "reply_ms": round(args.reply * 1000),
              "warn_at": args.warn_at,
              "tz_offset_min": args.timezone}

    async def handler(ws):
        await serve_agent(ws, scenario, args.speed, args.conversations, args.seed)

    # SIGTERM and SIGINT: close the agents' connections (1001) and exit 0
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def on_signal():
        if not stop.done():
            stop.set_result(None)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    async with websockets.serve(handler, host or None, port,
                                ping_interval=None, close_timeout=2,
                                process_request=http_handler(args.web, config)) as server:
        addr = server.sockets[0].getsockname()
        print(f"demo_backend: listening on {addr[0]}:{addr[1]}", flush=True)
        print(f"demo_backend: {len(scenario.buyers)} buyers from {scenario.path}; "
              f"the workbench page: http://{addr[0]}:{addr[1]}/?agent=alice "
              f"(through chatmond at {args.chatmond})", flush=True)
        await stop
    print("demo_backend: stopped", flush=True)


def main():
    ap = argparse.ArgumentParser(
        description="pretend chat backend (simulated buyers) and agent workbench page "
                    "for chatmon demos and tests")
    ap.add_argument("--listen", type=hostport, default="127.0.0.1:9000", metavar="HOST:PORT",
                    help="the chat WebSocket and the page over HTTP, on one port "
                         "(default 127.0.0.1:9000; port 0: any)")
    ap.add_argument("--speed", type=positive, default=1.0, help="divide every pause by this")
    ap.add_argument("--scenario", default=DEFAULT_SCENARIO, metavar="FILE",
                    help="the buyers (default: demo_scenario.yaml next to this script)")
    ap.add_argument("--check", action="store_true",
                    help="check the scenario file, print a summary and exit")
    ap.add_argument("--conversations", type=int, default=None, metavar="N",
                    help="at most N buyers at a time per agent (default: the scenario's max_open)")
    ap.add_argument("--seed", type=int, default=None, help="make the pauses and order repeatable")
    ap.add_argument("--web", default=DEFAULT_WEB, metavar="DIR",
                    help="the workbench page's directory (default: web/workbench)")
    ap.add_argument("--chatmond", default="ws://127.0.0.1:8080/", metavar="URL",
                    help="where the page connects: chatmond, in front of this backend "
                         "(default ws://127.0.0.1:8080/; ?ws=URL on the page overrides it)")
    ap.add_argument("--first-response", type=positive, default=15.0, metavar="S",
                    help="first-response SLA the page counts down, seconds "
                         "(chatmond's sla.first_response)")
    ap.add_argument("--reply", type=positive, default=30.0, metavar="S",
                    help="reply SLA, seconds (chatmond's sla.reply)")
    ap.add_argument("--warn-at", type=fraction, default=0.8, metavar="F",
                    help="the page turns amber at this fraction of the threshold (sla.warn_at)")
    ap.add_argument("--timezone", type=timezone, default=480, metavar="ZONE",
                    help="the zone the page shows times in, chatmond's sla.timezone "
                         "(default +08:00)")
    args = ap.parse_args()
    if args.conversations is not None and args.conversations < 1:
        ap.error("--conversations must be at least 1")
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as e:
        print(f"demo_backend: {e}", file=sys.stderr)
        sys.exit(2)
    if args.check:
        steps = sum(len(b.steps) for b in scenario.buyers)
        print(f"{args.scenario}: ok: {len(scenario.buyers)} buyers, {steps} steps")
        for b in scenario.buyers:
            print(f"  {b.id}: {b.name} ({b.label}), {len(b.steps)} steps")
        return
    try:
        asyncio.run(serve(args, scenario))
    except KeyboardInterrupt:
        pass
    except OSError as e:
        print(f"demo_backend: cannot listen on {args.listen[0]}:{args.listen[1]}: "
              f"{e.strerror or e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
