"""Redis failover: chatmond finds the master through Redis Sentinel
(redis.sentinels, redis.master_name), checks with ROLE that a server is the
master before it calls Redis connected, and treats READONLY, a lost
connection and a WAIT that counts too few replicas as "reconnect (through
Sentinel) and send again", never as "drop the alert".

Real processes only: redis-server x2 (a master and its replica) and
redis-sentinel x3 (Debian's redis-sentinel; `redis-server --sentinel` where
it is missing), each on a free port with its own directory, each stopped by
PID at the end. The failover figures are printed (run with -s to see them).
"""

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest
import redis

from conftest import (REDIS_SERVER, ROOT, SLOW, T, agent, free_port, recv, run, sla_bucket,
                      wait_for)
from test_alerts_redis import (FOLD0, LIVE, LONG_SLA, aid, blocked_turns, dedup,
                               expect_warning, logged, stream, turn)

REDIS_SENTINEL = shutil.which("redis-sentinel")
NAME = "chatmon-test"
RATE = 100                  # alerts a second, through a real agent
BEFORE, AFTER = 2.0, 5.0    # s of alerts before and after SENTINEL FAILOVER

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER), reason="no redis-server")


# --------------------------------------------------------------------------
# Processes


class Proc:
    """One redis-server or redis-sentinel of the test's own, stopped by PID."""

    def __init__(self, kind, args, port, directory, password=None):
        self.kind, self.port, self.dir, self.password = kind, port, directory, password
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = self.client(timeout=1)
        try:
            wait_for(lambda: self._ping(c), 10 * SLOW, f"{kind} on {port} answering")
        finally:
            c.close()

    def _ping(self, c):
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.kind} exited ({self.proc.returncode}):\n"
                                 f"{self.log()[-2000:]}")
        try:
            return c.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                redis.exceptions.BusyLoadingError):
            return False

    def client(self, timeout=5, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True,
                           password=self.password, socket_timeout=timeout,
                           socket_connect_timeout=timeout, **kw)

    def log(self):
        try:
            with open(os.path.join(self.dir, "log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def procs():
    """procs.server(replicaof=None, extra=()) and procs.sentinel(master_port,
    quorum=2): each started and answering; all killed at teardown."""
    made = []

    class Make:
        @staticmethod
        def server(replicaof=None, extra=()):
            port, d = free_port(), tempfile.mkdtemp(prefix="cm-rs-")
            args = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                    "--save", "", "--appendonly", "no", "--daemonize", "no",
                    "--logfile", os.path.join(d, "log"), *extra]
            if replicaof:
                args += ["--replicaof", "127.0.0.1", str(replicaof)]
            p = Proc("redis-server", args, port, d)
            made.append(p)
            return p

        @staticmethod
        def sentinel(master_port, quorum=2, password=None):
            port, d = free_port(), tempfile.mkdtemp(prefix="cm-sn-")
            conf = os.path.join(d, "sentinel.conf")
            # Sentinel rewrites its file: it must be its own and writable
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {d}\n"
                        f"logfile {os.path.join(d, 'log')}\n"
                        f"sentinel monitor {NAME} 127.0.0.1 {master_port} {quorum}\n"
                        f"sentinel down-after-milliseconds {NAME} 1000\n"
                        f"sentinel failover-timeout {NAME} 10000\n" +
                        (f"requirepass {password}\n" if password else ""))
            args = [REDIS_SENTINEL, conf] if REDIS_SENTINEL else \
                [REDIS_SERVER, conf, "--sentinel"]
            p = Proc("redis-sentinel", args, port, d, password)
            made.append(p)
            return p

    yield Make
    for p in made:
        p.stop()


def replica_linked(replica):
    info = replica.client().info("replication")
    return info.get("role") == "slave" and info.get("master_link_status") == "up"


def topology(procs):
    """A master, its replica, and three sentinels that know both."""
    m = procs.server()
    r = procs.server(replicaof=m.port)
    wait_for(lambda: replica_linked(r), 10 * SLOW, "the replica linked to its master")
    sentinels = [procs.sentinel(m.port) for _ in range(3)]
    for s in sentinels:
        wait_for(lambda: any(int(x.get("port", 0)) == r.port and "s_down" not in x["flags"]
                             for x in s.client().sentinel_slaves(NAME)),
                 10 * SLOW, f"sentinel {s.port} knows the replica")
    return m, r, sentinels


def sentinel_yaml(sentinels):
    addrs = ", ".join(f"127.0.0.1:{s.port}" for s in sentinels)
    return f"redis:\n  sentinels: [{addrs}]\n  master_name: {NAME}\n"


# --------------------------------------------------------------------------
# chatmond's admin side


def admin_port(d):
    return int(re.search(r"^admin: 127\.0\.0\.1:(\d+)$",
                         open(d.conf, encoding="utf-8").read(), re.M).group(1))


def get(d, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(d)}{path}", timeout=T) as r:
        return r.read().decode()


def metrics(d):
    """{"name{labels}": value} of /metrics."""
    out = {}
    for line in get(d, "/metrics").splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def healthz_redis(d):
    return json.loads(get(d, "/healthz"))["redis"]


def role(p):
    return p.client().execute_command("ROLE")[0]


# --------------------------------------------------------------------------
# 1. SENTINEL FAILOVER under 100 alerts/s: nothing lost, the new master found


def test_sentinel_failover_under_load_loses_no_alert(daemon, backend, procs, tmp_path):
    m, r, sentinels = topology(procs)
    b = backend()
    d = daemon(b.port, rules=LIVE, redis=None, extra=sentinel_yaml(sentinels),
               args=FOLD0 + LONG_SLA)
    d.wait_log(rf"alert_on_state: redis 127\.0\.0\.1:{m.port} connected")
    assert healthz_redis(d) == "connected"
    # the sentinel that answered is gone: chatmond must ask the next ones
    sentinels[0].stop()
    marks, queued, rtts = {}, [], []
    stop = asyncio.Event()

    async def echo(ws):
        # chat goes on through the failover: every turn comes back
        k = 0
        while not stop.is_set():
            t = time.monotonic()
            await ws.send(turn(f"e-{k % 5}", f"亲,在的 {k}"))
            got = json.loads(await recv(ws))
            assert got["text"] == f"亲,在的 {k}", got
            rtts.append(time.monotonic() - t)
            k += 1
            await asyncio.sleep(0.02)
        return k

    def watch():
        # chatmond's own view, every 20 ms, from the failover to the new master
        while "reconnected" not in marks:
            mt = metrics(d)
            queued.append(mt["chatmon_alerts_queued"])
            if mt["chatmon_redis_master_changes_total"] >= 1 and \
                    mt["chatmon_redis_connected"] == 1:
                marks["reconnected"] = time.monotonic()
            elif time.monotonic() - marks["failover"] > 20 * SLOW:
                return
            time.sleep(0.02)

    async def orchestrate():
        await asyncio.sleep(BEFORE)
        marks["failover"] = time.monotonic()
        # not the sentinel chatmond asks first: that one learns of it by gossip
        assert await asyncio.to_thread(sentinels[2].client().sentinel_failover, NAME)
        await asyncio.to_thread(watch)
        await asyncio.sleep(AFTER)
        stop.set()

    async def main():
        async with agent(d, "/echo?agent=gen") as g, agent(d, "/echo?agent=echo") as e:
            n, k, _ = await asyncio.gather(blocked_turns(g, stop, "f", RATE), echo(e),
                                           orchestrate())
            return n, k
    n, k = run(main())
    assert "reconnected" in marks, f"chatmond never wrote to the new master:\n{d.log()[-3000:]}"
    assert role(r) == "master"
    raws = logged(d)
    want = [aid(x) for x in raws]
    assert len(raws) == n and len(set(want)) == n
    cr = r.client()
    wait_for(lambda: set(want) <= {aid(x) for x in stream(cr)}, 15 * SLOW,
             "every alert chatmond made in the new master's stream")
    got = stream(cr)
    firsts, dups = dedup(got)
    assert sorted(aid(x) for x in firsts) == sorted(want)
    assert sorted(firsts) == sorted(raws)              # the very bytes that were logged
    mt = metrics(d)
    retries = {k_.split('"')[1]: int(v) for k_, v in mt.items()
               if k_.startswith("chatmon_redis_write_retries_total")}
    # with one replica the new master has none until Sentinel demotes the old
    # one: the alerts are written at once, acknowledged once it has resynced
    again = re.search(r"alert_on_wait: redis \S+: 1 replicas have the alerts again, "
                      r"after ([\d.]+) s", d.log())
    figs = dict(sent=n, delivered=len(firsts), stream_entries=len(got), duplicates=dups,
                reconnect_s=round(marks["reconnected"] - marks["failover"], 2),
                replicated_again_s=float(again.group(1)) if again else None,
                max_queued=int(max(queued)), retries=retries,
                echo_turns=k, echo_rtt_max_ms=round(max(rtts) * 1000, 1))
    print(f"\nREDIS-FAILOVER {json.dumps(figs)}")
    assert n >= RATE * (BEFORE + AFTER) * 0.8, figs
    assert mt["chatmon_redis_master_changes_total"] == 1, figs
    assert healthz_redis(d) == "connected"
    assert re.search(rf"alert_on_state: the redis master moved from 127\.0\.0\.1:{m.port} "
                     rf"to 127\.0\.0\.1:{r.port}", d.log())
    assert d.stop() == 0
    st = d.stats()
    assert st["alerts_total"] == n and st["alerts_dropped"] == 0, st
    assert st["alerts_queued"] == 0 and st["redis_connected"] == 1, st
    # the echo chat is rounds too (the echo is the customer's turn, the next
    # turn the reply): every one counted once, and the conversations' state
    # on the new master is where the chat left it, a round open in each
    fig = re.findall(r"^chatmond: info: slaclock: agent=echo rounds=(\d+) answered=(\d+)",
                     d.log(), re.M)
    assert fig and fig[-1] == (str(k - 5), str(k - 5)), (fig, k)
    for j in range(5):
        h = cr.hgetall("chatmon:sla:{%d}:c:e-%d" % (sla_bucket(f"e-{j}"), j))
        assert h.get("op") == "1" and h.get("h") == "1", (j, h)
    # the supervisors' tail finds the new master through the same sentinels
    assert [a["id"] for a in tail_last(tmp_path, sentinel_yaml(sentinels), 3)] == \
        [aid(x) for x in got[-3:]]


def tail_last(tmp_path, yaml, n):
    """The last n alerts as `chatmon tail --since -n --json` shows them."""
    import select
    from conftest import CHATMON
    conf = tmp_path / "tail.yaml"
    conf.write_text(yaml, encoding="utf-8")
    tail = subprocess.Popen([CHATMON, "tail", "-c", str(conf), "--since", f"-{n}", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf, out = bytearray(), []
    try:
        deadline = time.monotonic() + T
        while len(out) < n:
            while b"\n" not in buf:
                ready, _, _ = select.select([tail.stdout], [], [],
                                            max(0, deadline - time.monotonic()))
                assert ready, "tail printed nothing in time"
                chunk = os.read(tail.stdout.fileno(), 65536)
                assert chunk, f"tail ended: {tail.stderr.read()!r}"
                buf.extend(chunk)
            i = buf.index(b"\n")
            out.append(json.loads(bytes(buf[:i])))
            del buf[:i + 1]
    finally:
        tail.send_signal(signal.SIGTERM)
        assert tail.wait(10) == 0
    return out


# --------------------------------------------------------------------------
# 2. An ACL user (requirepass off): AUTH username password


def test_acl_user_authenticates_with_username_and_password(daemon, backend, procs):
    s = procs.server()
    c = s.client()
    # least privilege: the alert and snapshot keys, no @admin (so no ROLE)
    c.execute_command("ACL", "SETUSER", "chatmon", "on", ">Acl-s3cret", "~chatmon:*",
                      "&chatmon:*", "+@write", "+@read", "+@connection", "+@pubsub")
    # the commands docs/operations.md lists for chatmond, ROLE included
    listed_cmds = re.search(r"An ACL user for chatmond needs(.*?)`chatmon dashboard`",
                            open(os.path.join(ROOT, "docs", "operations.md"),
                                 encoding="utf-8").read(), re.S).group(1)
    listed_cmds = sorted(set(re.findall(r"\+[a-z]+", listed_cmds)))
    assert {"+publish", "+xadd", "+evalsha", "+hset", "+role"} <= set(listed_cmds), listed_cmds
    c.execute_command("ACL", "SETUSER", "listed", "on", ">Acl-l1st", "~chatmon:*",
                      "&chatmon:*", *listed_cmds)
    b = backend()
    url = f"redis://127.0.0.1:{s.port}"
    args = FOLD0 + LONG_SLA + ["-o", "redis.username=chatmon"]
    d = daemon(b.port, rules=LIVE, redis=url, args=args + ["-o", "redis.password=Acl-s3cret"],
               name="good")
    bad = daemon(b.port, rules=LIVE, redis=url, args=args + ["-o", "redis.password=wrong"],
                 name="bad")
    listed = daemon(b.port, rules=LIVE, redis=url + "/1",
                    args=FOLD0 + LONG_SLA + ["-o", "redis.username=listed",
                                             "-o", "redis.password=Acl-l1st"], name="listed")

    async def hits(dd, conv):
        async with agent(dd, "/echo?agent=acl") as ws:
            await ws.send(turn(conv, "加我微信,给你便宜"))
            await expect_warning(ws)
    run(hits(d, "acl-1"))
    run(hits(bad, "acl-2"))
    run(hits(listed, "acl-3"))
    wait_for(lambda: "acl-1" in [json.loads(x)["conversation"] for x in stream(c)], T,
             "the alert written by the ACL user")
    users = {cl.get("user") for cl in c.client_list() if cl.get("cmd") != "client|list"}
    assert "chatmon" in users, users
    # ROLE is @admin: the user may not ask, and chatmond says so and goes on
    assert re.search(r"rconn_on_role: alert redis 127\.0\.0\.1:\d+: cannot check that it is "
                     r"the master \(NOPERM", d.log())
    bad.wait_log(r"rconn_on_setup: alert redis 127\.0\.0\.1:\d+ refused the connection: "
                 r"WRONGPASS")
    c1 = s.client(db=1)
    wait_for(lambda: "acl-3" in [json.loads(x)["conversation"] for x in stream(c1)], T,
             "the alert written by the user with the documented commands")
    assert "cannot check" not in listed.log() and "refused" not in listed.log()
    # the conversations' state went through its scripts with those commands alone
    assert "NOPERM" not in listed.log(), listed.log()[-2000:]
    assert not [e for e in c.execute_command("ACL", "LOG") if b"listed" in e or "listed" in e], \
        c.execute_command("ACL", "LOG")
    assert healthz_redis(d) == "connected" and healthz_redis(bad) == "down"
    assert metrics(bad)["chatmon_alerts_queued"] == 1
    assert "Acl-s3cret" not in d.log() and "wrong" not in bad.log()


def test_sentinel_password_and_username_for_the_data_server(daemon, backend, procs):
    """A sentinel with requirepass (redis.sentinel_password) and a master with
    an ACL user (redis.username): chatmond authenticates to both; a wrong
    sentinel password is named in the log and nothing connects."""
    m = procs.server()
    m.client().execute_command("ACL", "SETUSER", "writer", "on", ">W-pw", "~*", "&*", "+@all")
    s = procs.sentinel(m.port, quorum=1, password="S-pw")
    b = backend()
    base = f"redis:\n  sentinels: [127.0.0.1:{s.port}]\n  master_name: {NAME}\n" \
           "  username: writer\n  password: W-pw\n"
    good = daemon(b.port, rules=LIVE, redis=None, args=FOLD0 + LONG_SLA, name="good",
                  extra=base + "  sentinel_password: S-pw\n")
    bad = daemon(b.port, rules=LIVE, redis=None, args=FOLD0 + LONG_SLA, name="bad",
                 extra=base + "  sentinel_password: nope\n")
    good.wait_log(rf"alert_on_state: redis 127\.0\.0\.1:{m.port} connected")
    bad.wait_log(r"rconn_sentinel_fail: alert sentinel 127\.0\.0\.1:\d+: refused AUTH: "
                 r"WRONGPASS")
    bad.wait_log(rf"rconn_ask_failed: alert: no sentinel named master {NAME}")
    assert healthz_redis(good) == "connected" and healthz_redis(bad) == "down"
    users = {cl.get("user") for cl in m.client().client_list()}
    assert "writer" in users, users
    for d in (good, bad):
        assert "S-pw" not in d.log() and "W-pw" not in d.log() and "nope" not in d.log()


# --------------------------------------------------------------------------
# 3. A replica is not connected; a master turned replica under chatmond is
#    noticed at the first write (READONLY), and the alert waits


def test_replica_is_not_connected_and_readonly_keeps_the_alert(daemon, backend, procs):
    a = procs.server()
    bsrv = procs.server(replicaof=a.port)
    wait_for(lambda: replica_linked(bsrv), 10 * SLOW, "the replica linked")
    be = backend()
    args = FOLD0 + LONG_SLA
    on_b = daemon(be.port, rules=LIVE, redis=f"redis://127.0.0.1:{bsrv.port}", args=args,
                  name="on_replica")
    on_a = daemon(be.port, rules=LIVE, redis=f"redis://127.0.0.1:{a.port}", args=args,
                  name="on_master")
    on_b.wait_log(rf"rconn_on_role: alert redis 127\.0\.0\.1:{bsrv.port} is replica of "
                  rf"127\.0\.0\.1:{a.port} \(\w+\), not the master")
    on_a.wait_log(rf"alert_on_state: redis 127\.0\.0\.1:{a.port} connected")
    assert healthz_redis(on_b) == "down" and metrics(on_b)["chatmon_redis_connected"] == 0

    async def hit(dd, conv):
        async with agent(dd, "/echo?agent=rep") as ws:
            await ws.send(turn(conv, "加我微信,给你便宜"))
            await expect_warning(ws)
    run(hit(on_b, "kept-1"))                    # waits: its server is a replica
    run(hit(on_a, "first-1"))                   # goes to the master
    ca, cb = a.client(), bsrv.client()
    wait_for(lambda: "first-1" in [json.loads(x)["conversation"] for x in stream(ca)], T,
             "the master's alert")
    assert metrics(on_b)["chatmon_alerts_queued"] == 1

    # a failover by hand: b is promoted, a follows it (Redis keeps a's clients)
    cb.execute_command("REPLICAOF", "NO", "ONE")
    ca.execute_command("REPLICAOF", "127.0.0.1", str(bsrv.port))
    wait_for(lambda: replica_linked(a), 10 * SLOW, "the old master following the new one")
    run(hit(on_a, "after-1"))                   # written to a: READONLY
    on_a.wait_log(r"XADD answered READONLY")
    wait_for(lambda: metrics(on_a)["chatmon_redis_connected"] == 0, T, "on_a not connected")
    on_a.wait_log(rf"rconn_on_role: alert redis 127\.0\.0\.1:{a.port} is replica of "
                  rf"127\.0\.0\.1:{bsrv.port}")
    mt = metrics(on_a)
    assert mt['chatmon_redis_write_retries_total{reason="readonly"}'] >= 1, mt
    assert mt["chatmon_alerts_queued"] == 1 and mt["chatmon_alerts_dropped_total"] == 0, mt
    assert healthz_redis(on_a) == "down"
    # the one on b is connected now, and its waiting alert delivered
    wait_for(lambda: "kept-1" in [json.loads(x)["conversation"] for x in stream(cb)],
             15 * SLOW, "the alert that waited for b to be a master")
    assert healthz_redis(on_b) == "connected"
    # pointed at the new master, on_a delivers what READONLY refused
    text = open(on_a.conf, encoding="utf-8").read()
    on_a.write_config(text.replace(f"127.0.0.1:{a.port}", f"127.0.0.1:{bsrv.port}"))
    on_a.signal(signal.SIGHUP)
    wait_for(lambda: "after-1" in [json.loads(x)["conversation"] for x in stream(cb)],
             15 * SLOW, "the alert READONLY refused, delivered to the new master")
    assert on_a.stop() == 0
    st = on_a.stats()
    assert st["alerts_dropped"] == 0 and st["alerts_queued"] == 0, st


# --------------------------------------------------------------------------
# 4. The configuration: every mistake with FILE:LINE


def test_sentinel_config_errors_have_file_and_line(tmp_path):
    from conftest import CHATMOND
    conf = tmp_path / "c.yaml"

    def check(text):
        """chatmond -t on text: it must fail; its stderr."""
        conf.write_text(text, encoding="utf-8")
        r = subprocess.run([CHATMOND, "-t", "-c", str(conf)], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode != 0
        return r

    r = check("redis:\n"
              "  url: redis://127.0.0.1:6379\n"
              "  sentinels: [127.0.0.1:26379, 'h:0']\n"
              "  username: chatmon\n"
              "  sentinel_username: mon\n")
    assert f"{conf}:3: redis.sentinels: bad address 'h:0': port out of range" in r.stderr
    assert f"{conf}:4: redis.username needs redis.password" in r.stderr
    assert f"{conf}:5: redis.sentinel_username needs redis.sentinel_password" in r.stderr
    r = check("redis:\n"
              "  url: redis://127.0.0.1:6379\n"
              "  sentinels: [127.0.0.1:26379]\n")
    assert f"{conf}:3: redis.url and redis.sentinels exclude each other" in r.stderr
    assert f"{conf}:3: redis.sentinels needs redis.master_name" in r.stderr
