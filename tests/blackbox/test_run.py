"""`make run` (tools/run.sh with conf/demo.yaml): the demo as a newcomer starts it.

The terminal shows the banner and then one line per alert (chatmon tail), the
daemons' logs go to files beside the Redis socket, every kind of alert shows
up (a blocked reply, the SLA warning, breach and escalation), SIGTERM stops
everything it started, and a part that cannot start ends the demo with the
end of its log. The demo's own configuration is checked against the
scenario: its escalation comes before the simulated buyers give up."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time

import websockets
import yaml

from conftest import CHATMON, CHATMOND, DEFAULT_RULES, ROOT, SLOW, LineReader, free_port, wait_for

RUN = os.path.join(ROOT, "tools", "run.sh")
DEMO_CONF = os.path.join(ROOT, "conf", "demo.yaml")
SCENARIO = os.path.join(ROOT, "tools", "demo_scenario.yaml")
BLOCKED = "加我微信 abc12345"


def seconds(v):
    """'45s', '1.5m', '500ms', 90 -> seconds."""
    m = re.fullmatch(r"([0-9.]+)(ms|s|m|h)?", str(v))
    assert m, v
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def write_config(tmp_path, ports, sla, listen_port=None):
    """A copy of conf/demo.yaml with its own ports and Redis socket, and sla."""
    conf = yaml.safe_load(open(DEMO_CONF, encoding="utf-8"))
    conf["listen"] = f"127.0.0.1:{listen_port or ports['listen']}"
    conf["upstream"] = f"ws://127.0.0.1:{ports['backend']}/"
    conf["redis"]["url"] = "unix:run/redis.sock"      # relative to the file, as the demo's
    conf["redis"]["spool"] = "run/alerts.spool"
    conf["sla"].update(sla)
    conf["rules"] = os.path.abspath(DEFAULT_RULES)
    conf["model"] = os.path.join(ROOT, "conf", "model", "chatmon-ngram.model")
    conf["admin"] = f"127.0.0.1:{ports['admin']}"
    conf["dashboard"] = {"listen": f"127.0.0.1:{ports['dashboard']}",
                         "root": os.path.join(ROOT, "web", "dashboard"),
                         "users": "run/users",    # as the demo's, relative to the file
                         "public_url": f"http://127.0.0.1:{ports['dashboard']}/"}
    # the demo's route to its stand-in robot, on free ports
    conf["notify"]["admin"] = f"127.0.0.1:{ports['notify']}"
    route = conf["notify"]["routes"][0]
    route["url"] = re.sub(r":\d+/", f":{ports['robot']}/", route["url"], count=1)
    path = tmp_path / "demo.yaml"
    # run.sh reads a few keys line by line: keep the file block-style
    path.write_text(yaml.safe_dump(conf, default_flow_style=False, allow_unicode=True),
                    encoding="utf-8")
    return str(path)


class Run:
    """tools/run.sh in a process group of its own; its terminal output is kept."""

    def __init__(self, config, backend_port):
        env = dict(os.environ, CHATMON_DEMO_PORT=str(backend_port))
        # As from a terminal: SIGINT not ignored. A suite started in the
        # background (`make test &`, nohup) inherits it ignored, and a shell
        # cannot trap a signal ignored when it started, so Ctrl-C would do
        # nothing; exec keeps an ignored signal ignored, a handled one is reset.
        was = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.proc = subprocess.Popen(["sh", RUN, CHATMOND, CHATMON, config],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, encoding="utf-8",
                                         env=env, start_new_session=True)
        finally:
            signal.signal(signal.SIGINT, was)
        self.out = LineReader(self.proc.stdout)

    def output(self):
        return self.out.output()

    def has(self, pattern):
        return any(re.search(pattern, line) for line in self.output())

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20 * SLOW)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.thread.join(5)


def ports():
    return {k: free_port() for k in ("listen", "backend", "admin", "dashboard", "notify", "robot")}


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def pids_of(pattern):
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


async def agent_blocks_one(url, timeout):
    """Connects as alice; to the first buyer message, replies with a blocked phrase."""
    deadline = time.monotonic() + timeout
    async with websockets.connect(url) as ws:
        while time.monotonic() < deadline:
            frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            if frame.get("type") == "message":
                await ws.send(json.dumps({"type": "message", "id": "m1",
                                          "conversation": frame["conversation"],
                                          "text": BLOCKED}, ensure_ascii=False))
                break
        # stay connected while the other buyers wait: their rounds warn, breach, escalate
        await asyncio.sleep(8 * SLOW)


def test_demo_shows_every_kind_of_alert_and_stops_clean(tmp_path):
    p = ports()
    # the demo's thresholds, ten times faster, so the test takes seconds
    conf = write_config(tmp_path, p, {"first_response": "1.5s", "reply": "3s",
                                      "escalate": "4.5s", "warn_at": 0.8})
    run = Run(conf, p["backend"])
    try:
        wait_for(lambda: run.has(r"The alerts, one line each"), 15 * SLOW, "the banner")
        rundir = tmp_path / "run"
        assert run.has(rf"logs: +{re.escape(str(rundir))}/\{{chatmond,dashboard,notify,demo_backend,redis,robot\}}\.log")
        assert run.has(rf"tail -c {re.escape(conf)} --since 0")
        # the demo's one supervisor, written the first time, so the page can act
        assert run.has(r"supervisors' dashboard: +http://\S+/  \(log in: demo / demo\)")
        users = (rundir / "users").read_text(encoding="utf-8")
        assert users.startswith("demo:supervisor:$argon2id$"), users
        wait_for(lambda: accepts(p["listen"]), 10 * SLOW, "chatmond listening")
        asyncio.run(agent_blocks_one(f"ws://127.0.0.1:{p['listen']}/?agent=alice", 15 * SLOW))
        for pattern, what in ((r" alice c-\d+ .*BLOCKED agent: ", "the blocked reply"),
                              (r" SLA warn: waited ", "an SLA warning"),
                              (r" SLA breach: waited ", "a breach"),
                              (r" SLA escalate: waited ", "an escalation")):
            wait_for(lambda: run.has(pattern), 10 * SLOW, what)
        # chatmon notify pushed the critical ones to the stand-in robot, which
        # checked DingTalk's signature (a bad one is printed as such)
        for pattern, what in ((r"^robot: dingtalk demo-robot: 【chatmon】严重 · 站外引流 \| 客服 alice",
                               "the blocked reply pushed"),
                              (r"^robot: dingtalk demo-robot: 【chatmon】严重 · 严重超时", "the escalation pushed")):
            wait_for(lambda: run.has(pattern), 10 * SLOW, what)
        assert not run.has(r"^robot: .*BAD SIGNATURE"), run.output()
        # the daemons speak to their logs, not to the terminal
        log = (rundir / "chatmond.log").read_text(encoding="utf-8")
        assert "chatmond" in log and "listening" in log, log[:2000]
        assert (rundir / "dashboard.log").exists() and (rundir / "demo_backend.log").exists()
        assert not any(line.startswith(("chatmond", "chatmon:", "demo_backend", "[")) for line in run.output()), \
            run.output()
        assert pids_of(conf), "the demo's processes run"
    finally:
        run.stop()
    assert run.proc.returncode == 0, run.output()
    wait_for(lambda: not pids_of(conf), 10 * SLOW, "every process of the demo gone")
    assert not (tmp_path / "run" / "redis.sock").exists()


def test_demo_stops_clean_on_ctrl_c(tmp_path):
    """Ctrl-C in the terminal: SIGINT to the whole foreground process group.
    The demo stops every part, chatmond before Redis, and exits 0 without
    taking a part's exit for a failure (found by review: every part got
    the SIGINT, Redis went at once, and `make run` said chatmond stopped
    and failed)."""
    p = ports()
    conf = write_config(tmp_path, p, {})
    run = Run(conf, p["backend"])
    try:
        wait_for(lambda: run.has(r"The alerts, one line each"), 15 * SLOW, "the banner")
        wait_for(lambda: accepts(p["listen"]), 10 * SLOW, "chatmond listening")
        os.killpg(run.proc.pid, signal.SIGINT)
        run.proc.wait(30 * SLOW)
    finally:
        run.stop()
    assert run.proc.returncode == 0, run.output()
    assert not run.has(r"stopped; the end of"), run.output()
    wait_for(lambda: not pids_of(conf), 10 * SLOW, "every process of the demo gone")
    log = (tmp_path / "run" / "chatmond.log").read_text(encoding="utf-8")
    assert "signal 15" in log, log[-2000:]


def demo_with_a_port_taken(tmp_path, part, why, taken):
    """The demo with one of its ports (taken(busy port, ports) -> config)
    held by another process: it ends (exit 1) with the end of part's log,
    which says why, and leaves nothing running."""
    p = ports()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        conf = taken(busy.getsockname()[1], p)
        run = Run(conf, p["backend"])
        try:
            run.proc.wait(30 * SLOW)
        finally:
            run.stop()
        assert run.proc.returncode == 1, run.output()
        out = "\n".join(run.output())
        assert re.search(rf"{part} stopped; the end of .*/run/{part}\.log:", out), out
        assert re.search(rf"^    .*({why})", out, re.M | re.I), out
        wait_for(lambda: not pids_of(conf), 10 * SLOW, "every process of the demo gone")
    finally:
        busy.close()


def test_demo_part_that_cannot_start_ends_it_with_its_log(tmp_path):
    demo_with_a_port_taken(tmp_path, "chatmond", "bind|listen|in use",
                           lambda port, p: write_config(tmp_path, p, {}, listen_port=port))


def test_demo_robot_that_cannot_start_ends_it_with_its_log(tmp_path):
    """The stand-in robot is a part like the others: its port taken, the
    demo stops and shows the end of robot.log."""
    demo_with_a_port_taken(tmp_path, "robot", "in use|Errno 98",
                           lambda port, p: write_config(tmp_path, dict(p, robot=port), {}))


def test_a_second_demo_leaves_the_running_one_alone(tmp_path):
    """`make run` twice: the second says a demo is running and exits 2
    before it touches anything; the first keeps its Redis socket and its
    logs."""
    p = ports()
    conf = write_config(tmp_path, p, {})
    first = Run(conf, p["backend"])
    try:
        wait_for(lambda: first.has(r"The alerts, one line each"), 15 * SLOW, "the banner")
        rundir = tmp_path / "run"
        log = wait_for(lambda: (rundir / "chatmond.log").read_bytes(), 10 * SLOW,
                       "chatmond's first log line")
        assert log.startswith(b"chatmond"), log[:200]
        second = Run(conf, free_port())
        try:
            second.proc.wait(15 * SLOW)
        finally:
            second.stop()
        assert second.proc.returncode == 2, second.output()
        assert second.has(r"a demo is already running"), second.output()
        assert (rundir / "redis.sock").is_socket()
        r = subprocess.run(["redis-cli", "-s", str(rundir / "redis.sock"), "ping"],
                           capture_output=True, text=True)
        assert r.stdout.strip() == "PONG", r
        assert (rundir / "chatmond.log").read_bytes().startswith(log)
        assert first.proc.poll() is None, first.output()
    finally:
        first.stop()
    assert first.proc.returncode == 0, first.output()
    wait_for(lambda: not pids_of(conf), 10 * SLOW, "every process of the demo gone")


def test_demo_config_escalates_before_buyers_give_up(tmp_path):
    """Every kind of alert within minutes: the escalation comes before the
    most impatient simulated buyer leaves, and the file is valid as it is
    (its spool's directory, build/run/, is made by run.sh: -t checks that
    the spool could be opened, so it is pointed at one that can)."""
    r = subprocess.run([CHATMOND, "-t", "-c", DEMO_CONF,
                        "-o", f"redis.spool={tmp_path}/alerts.spool"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sla = yaml.safe_load(open(DEMO_CONF, encoding="utf-8"))["sla"]
    scenario = yaml.safe_load(open(SCENARIO, encoding="utf-8"))
    waits = []
    for buyer in scenario["buyers"]:
        for step in buyer["steps"]:
            w = step.get("wait") if isinstance(step, dict) else None
            if isinstance(w, dict):
                w = w.get("patience")
            if isinstance(w, (int, float)):
                waits.append(float(w))
    assert waits, "the scenario's waits"
    assert seconds(sla["escalate"]) < min(waits), (sla, min(waits))
    assert seconds(sla["first_response"]) < seconds(sla["escalate"])
