#!/usr/bin/python3
"""chatmond as a relay against HAProxy and nginx (issue 13): what each costs
per chat frame relayed, in CPU, latency, system calls and memory.

Everything runs on 127.0.0.1 with configurations and ports of its own,
written to a temporary directory:

  echo      a WebSocket echo backend (tests/bench/node/echo.js, node `ws`);
  haproxy   Debian's HAProxy, `mode http`, `nbthread 1`, `timeout tunnel`,
            one server: the echo;
  nginx     Debian's nginx (nginx-light), `worker_processes 1`, the
            Upgrade and Connection headers passed on, logging off, in the
            foreground (`daemon off`);
  chatmond  $CHATMOND (build/chatmond) with the default rule pack
            (conf/rules.d), log.level warn, limits.max_connections_per_ip 0,
            upstream: the echo.

Each proxy does its work in one single-threaded process (nginx's master
only supervises its one worker; both are counted), so their CPU compares.
Every process gets RLIMIT_NOFILE 65536, or the hard limit where it cannot
be raised (a container without CAP_SYS_RESOURCE: 20 000 on the development
machine, room for 9 000 idle pairs; HAProxy's maxconn and nginx's
worker_connections are sized from the idle counts so that both start
within it). One load generator drives them all:
node `ws` from npm (tests/bench/node/load.js: Python cannot load the
proxies, it would be the bottleneck), installed with `npm ci` from the
pinned tests/bench/node/package-lock.json into build/bench-node/, once.
permessage-deflate is off everywhere.

The frames are ~160-byte chat turns in Chinese that break no rule
({"type":"message","conversation":"c-N","seq":S,"text":"亲，您好，这款保温杯是304不锈钢的…"}),
one conversation per connection; the echo sends each back unchanged, so
chatmond reads every frame twice: the agent's turn going up, the same frame
as the customer's turn coming down (codec, rules, windows, SLA round opened
and closed). `seq` tags a frame so that its echo gives its round trip.
Before closing, each connection ends its conversation, so that no round
stays open to raise SLA alerts later.

For each rate (frames/s, total) and connection count, and each target in
turn (direct to the echo, haproxy, nginx, chatmond: interleaved, so all
see the same machine), load.js opens the connections, sends for --warmup
seconds (not counted), then --seconds measured, open loop (a frame never
waits for an echo), spread round-robin over the connections; --reps times.
Reported, as the range over the repetitions:

  - CPU per round trip of the proxy process: utime+stime from /proc/PID/stat
    over the measured window, divided by the frames echoed in it, in µs
    (the clock tick is 10 ms: 0.8 µs a round trip over 6 s at 2 000/s);
    each repetition's line on stderr also gives the user part alone (the
    kernel's part is about the same for every proxy: the same reads and
    writes);
  - added p50 and p99: the target's round-trip percentile minus direct's
    in the same repetition and cell;
  - the ratios chatmond ÷ HAProxy, each taken within one repetition.

Then, once, a shorter pass per proxy and cell counting the system calls
of the proxy process (the worker for nginx) over the frames alone
(load.js --control: no handshakes, no closes), per round trip. They are
counted by `perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_… -p
PID`: the kernel's tracepoints count in place and the process runs at its
normal speed.
`strace -c -f -p PID` is used only where perf cannot count (no
linux-perf, no permission), and the table says so: strace stops the
process at every call, it falls behind, reads several frames a call and
the count comes out lower than in normal running (HAProxy and nginx
under strace: ~1 call per round trip at 5 000 frames/s over one
connection), and chatmond loses frames to the drain timeout. Nothing
else is taken from that pass.

Then, per repetition, memory: each proxy started afresh (so that memory
the load left in its allocator does not hide what the connections take),
the --idle counts of idle agent connections opened through it (each is a
pair: the agent's and its upstream one, checked in /proc/net/tcp), and the
growth of VmRSS (/proc/PID/status) divided by the count, in KiB per pair.

chatmond's Redis: a redis-server of its own on a unix socket (benchlib),
with redis.takeover 0, redis.snapshot 0 and history.turns 0, so that
chatmond does the relay and the inspection and nothing per turn in Redis.
The defaults are --state-in-redis (takeover 1s: a Lua script per turn,
tests/bench/state_cost.py measures it) and --history (each turn kept for
the dashboard's conversation view: a MULTI of three commands per turn);
Redis's own CPU is not counted either way. The
n-gram model (conf/chatmond.yaml's `model`) is off, as write_conf has it.

The load generator, the echo and the proxy share the same two cores; the
load generator's lateness against its schedule is reported. With --pin
each proxy runs on the last CPU and the echo and the load generator on
the others (sched_setaffinity, inherited by nginx's worker), as on a
server where the proxy's core is its own and the peers are elsewhere on
the network: the peers then no longer evict the proxy's code and data
from that core's caches between frames. Every proxy is pinned alike.

Markdown tables out. Exits non-zero if anything failed: a process that
did not start or died, a frame lost, changed or unexpected (chatmond's
warning), a connection refused or dropped, any chatmond alert.

usage: CHATMOND=build/chatmond tests/bench/relay.py [--reps 3] [--seconds 6]
       [--warmup 2] [--rates 2000,5000] [--conns 1,10,100] [--idle 1000,5000]
       [--syscall-seconds 3] [--calls-tool perf|strace] [--state-in-redis] [--history]
       [--pin] [--quick]

--quick is a smoke run (1 repetition, 2 s cells, 500 frames/s over 10
connections, 100 idle agents, one system-call pass per proxy): well under a
minute.
"""

import argparse
import json
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import ROOT, RULES, cpu_s, cpu_split, free_port, redis_start, wait_listening, write_conf

TARGETS = ("direct", "haproxy", "nginx", "chatmond")
PROXIES = TARGETS[1:]
NOFILE = 65536
NODE_SRC = os.path.join(ROOT, "tests", "bench", "node")
NODE_DIR = os.path.join(ROOT, "build", "bench-node")
# The system calls perf counts one by one (the rest are "other", from the
# total): a tracepoint each, and closing each costs perf ~25 ms, so not all
# ~360 of them.
CALLS = ("read write readv writev recvfrom sendto recvmsg sendmsg recvmmsg sendmmsg "
         "epoll_wait epoll_pwait epoll_ctl timerfd_settime clock_gettime gettimeofday "
         "futex poll ppoll accept4 close setsockopt getsockopt ioctl brk mmap munmap "
         "madvise splice rt_sigprocmask getpid getrusage").split()


class Failed(Exception):
    pass


# --pin: the CPUs of each role ("proxy", "peer"); empty: no pinning
PIN = {}


def preexec(role):
    """A child's set-up: the descriptor limit, and its CPUs under --pin."""
    def f():
        raise_nofile()
        if role in PIN:
            os.sched_setaffinity(0, PIN[role])
    return f


def raise_nofile():
    """preexec_fn: every process started here may hold NOFILE descriptors, or
    as many as the hard limit allows when it cannot be raised (no
    CAP_SYS_RESOURCE: not root, or a container)."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, NOFILE), hard))


def need(prog, hint):
    path = shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        raise Failed(f"{prog} not found: {hint}")
    return path


def node_install(npm):
    """The pinned ws into build/bench-node/ (npm ci), unless it is there from
    the same package-lock.json."""
    lock = os.path.join(NODE_SRC, "package-lock.json")
    have = os.path.join(NODE_DIR, "package-lock.json")
    if (os.path.exists(os.path.join(NODE_DIR, "node_modules", "ws", "package.json"))
            and os.path.exists(have) and open(have, "rb").read() == open(lock, "rb").read()):
        return
    os.makedirs(NODE_DIR, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copyfile(os.path.join(NODE_SRC, f), os.path.join(NODE_DIR, f))
    print("relay.py: npm ci into build/bench-node/", file=sys.stderr)
    r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel", "error"],
                       cwd=NODE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        os.unlink(os.path.join(NODE_DIR, "package-lock.json"))    # try again next time
        raise Failed(f"npm ci failed: {r.stderr.strip()[-500:]}")


# --- processes ---------------------------------------------------------------

class Procs:
    """Every process started, stopped by its PID at the end whatever happens."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.all = []

    def start(self, name, argv, role="proxy", **kw):
        log = open(os.path.join(self.tmp, f"{name}.log"), "ab")
        kw.setdefault("stdout", log)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, stderr=log, preexec_fn=preexec(role), **kw)
        p.name, p.logpath = name, log.name
        log.close()
        self.all.append(p)
        return p

    def log(self, p):
        try:
            with open(p.logpath, errors="replace") as f:
                return f.read()[-1500:].strip()
        except OSError:
            return ""

    def stop(self, p, sig=signal.SIGTERM, wait=5):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.all:
            self.all.remove(p)

    def stop_all(self):
        for p in reversed(list(self.all)):
            self.stop(p)


def lines_of(pipe):
    """A queue the lines of pipe arrive on (None at its end)."""
    q = queue.Queue()

    def read():
        for line in pipe:
            q.put(line)
        q.put(None)
    threading.Thread(target=read, daemon=True).start()
    return q


def next_json(q, timeout, what):
    try:
        line = q.get(timeout=timeout)
    except queue.Empty:
        raise Failed(f"{what}: no answer in {timeout:.0f} s")
    if line is None:
        raise Failed(f"{what}: exited")
    return json.loads(line)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            total += int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))
    return total


def pairs_to(port):
    """Established TCP connections to 127.0.0.1:port (the proxies' upstream
    connections to the echo)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except OSError:
            pass
    return n


class Target:
    """A proxy (or the echo itself, for direct): its URL and the PIDs whose
    CPU and memory count (nginx: master and worker) and whose system calls
    are counted (nginx: the worker)."""

    def __init__(self, name, port, proc, pids, calls_pid, admin=None):
        self.name, self.port, self.proc = name, port, proc
        self.pids, self.calls_pid, self.admin = pids, calls_pid, admin
        self.url = f"ws://127.0.0.1:{port}/echo"

    def alive(self, procs):
        for pid in self.pids:
            if not os.path.exists(f"/proc/{pid}"):
                raise Failed(f"{self.name} (pid {pid}) died: {procs.log(self.proc)}")

    def cpu(self):
        return sum(cpu_s(pid) for pid in self.pids)

    def user(self):
        return sum(cpu_split(pid)[0] for pid in self.pids)


def start_echo(procs, node, env):
    p = procs.start("echo", [node, os.path.join(NODE_SRC, "echo.js"), "0"], role="peer",
                    stdout=subprocess.PIPE, env=env, text=True)
    q = lines_of(p.stdout)
    port = next_json(q, 10, "echo.js")["port"]
    return Target("echo", port, p, [p.pid], p.pid)


def start_haproxy(procs, haproxy, dir, echo_port, maxconn):
    port = free_port()
    cfg = os.path.join(dir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
	nbthread 1
	maxconn {maxconn}
defaults
	mode http
	timeout connect 5s
	timeout http-request 10s
	timeout client 30s
	timeout server 30s
	timeout tunnel 1h
frontend agents
	bind 127.0.0.1:{port}
	default_backend echo
backend echo
	server echo 127.0.0.1:{echo_port}
""")
    p = procs.start("haproxy", [haproxy, "-db", "-f", cfg])
    try:
        wait_listening(port, p)
    except RuntimeError as e:
        raise Failed(f"haproxy did not start: {e}: {procs.log(p)}")
    return Target("haproxy", port, p, [p.pid], p.pid)


def start_nginx(procs, nginx, dir, echo_port, maxconn, nofile):
    port = free_port()
    prefix = os.path.join(dir, "nginx")
    os.makedirs(prefix, exist_ok=True)
    os.chmod(dir, 0o755)        # the worker runs as nobody when started as root
    os.chmod(prefix, 0o755)
    temp = "\n".join(f"\t{k}_temp_path {prefix}/{k};"
                     for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
	worker_connections {maxconn};
}}
http {{
	access_log off;
{temp}
	map $http_upgrade $connection_upgrade {{
		default upgrade;
		'' close;
	}}
	server {{
		listen 127.0.0.1:{port};
		location / {{
			proxy_pass http://127.0.0.1:{echo_port};
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_read_timeout 1h;
			proxy_send_timeout 1h;
		}}
	}}
}}
""")
    p = procs.start("nginx", [nginx, "-p", prefix + "/", "-c", conf, "-e", f"{prefix}/error.log"])
    try:
        wait_listening(port, p)
        deadline = time.monotonic() + 10
        while not children(p.pid):
            if time.monotonic() > deadline:
                raise RuntimeError("no worker")
            time.sleep(0.05)
    except RuntimeError as e:
        err = open(f"{prefix}/error.log", errors="replace").read()[-1500:] \
            if os.path.exists(f"{prefix}/error.log") else ""
        raise Failed(f"nginx did not start: {e}: {procs.log(p)} {err}")
    worker = children(p.pid)[0]
    return Target("nginx", port, p, [p.pid, worker], worker)


def start_chatmond(procs, chatmond, dir, echo_port, redis_sock, maxconn, state_in_redis,
                   history, rules):
    extra = (f"redis:\n  url: unix:{redis_sock}\n"
             f"  takeover: {'1s' if state_in_redis else '0'}\n"
             f"  snapshot: 0\n"
             f"history:\n  turns: {50 if history else 0}\n"
             f"limits:\n  max_connections_per_ip: 0\n  max_connections: {maxconn}\n")
    conf, port = write_conf(dir, echo_port, extra, log_level="warn", rules=rules)
    admin = int(re.search(r"^admin: 127\.0\.0\.1:(\d+)$", open(conf).read(), re.M).group(1))
    p = procs.start("chatmond", [chatmond, "-c", conf])
    try:
        wait_listening(port, p)
    except RuntimeError as e:
        raise Failed(f"chatmond did not start: {e}: {procs.log(p)}")
    return Target("chatmond", port, p, [p.pid], p.pid, admin)


def chatmond_metrics(t):
    """chatmond's counters that must stay 0 or match the load."""
    with urllib.request.urlopen(f"http://127.0.0.1:{t.admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    m = {}
    for name in ("alerts_total", "rule_warnings_total", "rule_blocks_total",
                 "connections_refused_total", "protocol_errors_total"):
        m[name] = sum(float(v) for v in re.findall(rf"^chatmon_{name}(?:{{[^}}]*}})? (\S+)$",
                                                   text, re.M))
    return m


# --- one load run ---------------------------------------------------------------

def run_load(node, env, target, echo, rate, conns, seconds, warmup, control=None):
    """load.js against target; the proxy's and the echo's CPU over the
    measured window. control: a callable run once the connections are up,
    returning a stop callable run after the result (the system-call pass)."""
    argv = [node, os.path.join(NODE_SRC, "load.js"), "--url", target.url,
            "--conns", str(conns), "--rate", str(rate), "--seconds", str(seconds),
            "--warmup", str(warmup), "--agent", f"{target.name}"]
    if control:
        argv += ["--control", "1"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec("peer"))
    q = lines_of(p.stdout)
    what = f"load.js to {target.name} ({rate}/s, {conns} conn)"
    stop = None
    try:
        ev = next_json(q, 30 + conns * 0.1, what)
        if ev.get("event") != "open":
            raise Failed(f"{what}: connections failed: {p.stderr.read()[-500:]}")
        if control:
            stop = control()
            p.stdin.write("go\n")
            p.stdin.flush()
        ev = next_json(q, warmup + 10, what)
        assert ev["event"] == "measure", ev
        c0, e0, t0 = target.cpu() if target.pids else 0.0, echo.cpu(), time.monotonic()
        u0 = target.user() if target.pids else 0.0
        ev = next_json(q, seconds + 30, what)
        assert ev["event"] == "done", ev
        c1, e1, t1 = target.cpu() if target.pids else 0.0, echo.cpu(), time.monotonic()
        u1 = target.user() if target.pids else 0.0
        res = next_json(q, 10, what)
        if stop:
            res["calls"] = stop()
            stop = None
        p.stdin.close()
        p.wait(10)
    finally:
        if stop:
            stop()
        if p.poll() is None:
            p.kill()
            p.wait()
    res["cpu_s"], res["echo_cpu_s"], res["wall_s"] = c1 - c0, e1 - e0, t1 - t0
    res["user_s"] = u1 - u0
    return res


def perf_works(perf):
    """Whether perf can count system calls here (linux-perf installed, and
    the tracepoints open: root, or perf_event_paranoid allows)."""
    if perf is None:
        return False
    r = subprocess.run([perf, "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return r.returncode == 0 and re.search(r"^\d+,,raw_syscalls:sys_enter", r.stderr, re.M)


def calls_control(tool, path, pid, out):
    """Starts counting the system calls of pid (all its threads) with tool
    ("perf" or "strace", at path); returns the stop callable that ends the
    count and returns {syscall: calls}."""
    def start():
        if tool == "perf":
            events = ",".join(["raw_syscalls:sys_enter"] +
                              [f"syscalls:sys_enter_{c}" for c in CALLS])
            argv = [path, "stat", "-x,", "-o", out, "-e", events, "-p", str(pid)]
        else:
            argv = [path, "-c", "-f", "-U", "name,calls", "-o", out, "-p", str(pid)]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        if tool == "strace":
            # "strace: Process N attached" once per thread
            line = p.stderr.readline()
            if "attached" not in line:
                p.kill()
                p.wait()
                raise Failed(f"strace -p {pid}: {line.strip()} {p.stderr.read()[-300:]}")
        threading.Thread(target=p.stderr.read, daemon=True).start()
        time.sleep(0.3)

        def stop():
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            calls = {}
            with open(out) as f:
                for line in f:
                    if tool == "perf":      # count,unit,event,...
                        m = re.match(r"^(\d+),[^,]*,(?:raw_)?syscalls:sys_enter_?(\w*),", line)
                        if m and int(m.group(1)):
                            calls[m.group(2) or "total"] = int(m.group(1))
                    else:                   # name calls
                        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
                        if m and m.group(1) != "total":
                            calls[m.group(1)] = int(m.group(2))
            if not calls:
                raise Failed(f"{tool} counted no system call of pid {pid}")
            if "total" in calls:        # perf: the total, and those not listed
                other = calls.pop("total") - sum(calls.values())
                if other > 0:
                    calls["other"] = other
            return calls
        return stop
    return start


# --- the idle agents ----------------------------------------------------------

def idle_rss(procs, node, env, target, echo_port, counts, settle):
    """VmRSS growth per idle pair at each count (opened cumulatively)."""
    p = subprocess.Popen([node, os.path.join(NODE_SRC, "idle.js"), "--url", target.url,
                          "--count", "0", "--parallel", "50"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=env, preexec_fn=preexec("peer"))
    q = lines_of(p.stdout)
    out = {}
    try:
        next_json(q, 10, "idle.js")
        time.sleep(settle)
        base_pairs = pairs_to(echo_port)
        base = rss_kib(target.pids)
        have = 0
        for n in counts:
            p.stdin.write(f"add {n - have}\n")
            p.stdin.flush()
            ev = next_json(q, 60 + n / 50, f"idle.js through {target.name}")
            if ev.get("event") != "open" or ev["count"] != n or ev.get("dropped"):
                raise Failed(f"idle agents through {target.name}: {ev}")
            have = n
            time.sleep(settle)
            target.alive(procs)
            pairs = pairs_to(echo_port) - base_pairs
            if pairs < n:
                raise Failed(f"{target.name}: {n} idle agents but {pairs} upstream connections")
            out[n] = (rss_kib(target.pids) - base) / n
        p.stdin.write("close\n")
        p.stdin.close()
        p.wait(20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out


# --- the report ---------------------------------------------------------------

def num(v, nd=1):
    s = f"{abs(v):,.{nd}f}".replace(",", " ")
    return ("−" if v < 0 and float(s.replace(" ", "")) != 0 else "") + s


def rng(vs, nd=1, unit=""):
    vs = [v for v in vs if v is not None]
    if not vs:
        return "—"
    lo, hi = min(vs), max(vs)
    if num(lo, nd) == num(hi, nd):
        return num(lo, nd) + unit
    return f"{num(lo, nd)}-{num(hi, nd)}{unit}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) and b > 0 and a >= 0 else None


def report(args, cells, res, sysc, rss, echo_cpu, late, metrics):
    reps = args.reps
    s = "s" if reps > 1 else ""
    print(f"relay against HAProxy and nginx: {reps} repetition{s}, {args.warmup} s warm-up "
          f"+ {args.seconds} s measured per cell, targets interleaved; ranges over the "
          f"repetitions; chatmond ÷ HAProxy taken within each repetition"
          f"{'; each proxy pinned to a CPU of its own (--pin)' if args.pin else ''}\n")

    def pick(t, cell, key):
        return [r[key] if r else None for r in res[t][cell]]

    print("CPU per round trip of the proxy process (utime+stime ÷ frames echoed), µs\n")
    print("| frames/s | connections | HAProxy | nginx | chatmond | chatmond ÷ HAProxy |")
    print("|---:|---:|---:|---:|---:|---:|")
    for cell in cells:
        cpu = {t: [r["cpu_s"] * 1e6 / r["received"] if r and r["received"] else None
                   for r in res[t][cell]] for t in PROXIES}
        rt = [ratio(c, h) for c, h in zip(cpu["chatmond"], cpu["haproxy"])]
        print(f"| {num(cell[0], 0)} | {cell[1]} | {rng(cpu['haproxy'])} | {rng(cpu['nginx'])} "
              f"| {rng(cpu['chatmond'])} | {rng(rt, 2, '×')} |")

    for pct in ("p50", "p99"):
        print(f"\nround trip {pct}: direct, and what each proxy adds to it (its {pct} minus "
              f"direct's in the same repetition), µs\n")
        print(f"| frames/s | connections | direct {pct} | HAProxy + | nginx + | chatmond + "
              f"| chatmond ÷ HAProxy |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for cell in cells:
            d = pick("direct", cell, f"{pct}_us")
            add = {t: [x - y if x is not None and y is not None else None
                       for x, y in zip(pick(t, cell, f"{pct}_us"), d)] for t in PROXIES}
            rt = [ratio(c, h) for c, h in zip(add["chatmond"], add["haproxy"])]
            print(f"| {num(cell[0], 0)} | {cell[1]} | {rng(d, 0)} | {rng(add['haproxy'], 0)} "
                  f"| {rng(add['nginx'], 0)} | {rng(add['chatmond'], 0)} | {rng(rt, 1, '×')} |")

    if sysc:
        how = ("perf stat -e raw_syscalls:sys_enter" if args.calls_tool == "perf" else
               "strace -c -f, which slows the process: lower than in normal running")
        print(f"\nsystem calls per round trip ({how}; the proxy process, the nginx "
              f"worker; one pass of {args.syscall_seconds:g} s per cell, frames only), and "
              f"the most frequent\n")
        print("| frames/s | connections | HAProxy | nginx | chatmond | chatmond ÷ HAProxy |")
        print("|---:|---:|---:|---:|---:|---:|")
        for cell in cells:
            per = {t: sysc[t][cell] for t in PROXIES}
            r = ratio(per["chatmond"]["total"], per["haproxy"]["total"])
            print(f"| {num(cell[0], 0)} | {cell[1]} | "
                  + " | ".join(f"{num(per[t]['total'])} ({per[t]['top']})" for t in PROXIES)
                  + f" | {rng([r], 2, '×')} |")

    if rss:
        print("\nmemory per idle pair (an agent connection and its upstream one): growth "
              "of VmRSS ÷ agents, each proxy started afresh, KiB\n")
        print("| idle agents | HAProxy | nginx | chatmond | chatmond ÷ HAProxy |")
        print("|---:|---:|---:|---:|---:|")
        for n in args.idle:
            v = {t: [r[n] for r in rss[t]] for t in PROXIES}
            rt = [ratio(c, h) for c, h in zip(v["chatmond"], v["haproxy"])]
            print(f"| {num(n, 0)} | {rng(v['haproxy'])} | {rng(v['nginx'])} "
                  f"| {rng(v['chatmond'])} | {rng(rt, 1, '×')} |")

    sent = sum(r["sent"] for t in TARGETS for c in cells for r in res[t][c] if r)
    got = sum(r["received"] for t in TARGETS for c in cells for r in res[t][c] if r)
    print(f"\nframes measured: {num(sent, 0)} sent, {num(got, 0)} echoed; echo backend CPU "
          f"per round trip {rng(echo_cpu)} µs (all targets); load generator behind its "
          f"schedule at worst {num(late)} ms; chatmond: {metrics}")


# --- main -----------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--rates", default="2000,5000")
    ap.add_argument("--conns", default="1,10,100")
    ap.add_argument("--idle", default="1000,5000")
    ap.add_argument("--syscall-seconds", type=float, default=3)
    ap.add_argument("--calls-tool", choices=("perf", "strace"),
                    help="what counts the system calls (default: perf where it can)")
    ap.add_argument("--state-in-redis", action="store_true")
    ap.add_argument("--history", action="store_true")
    ap.add_argument("--rules", default=RULES,
                    help="chatmond's rules (default: the default pack); a one-rule "
                         "pack shows what relaying costs without inspecting")
    ap.add_argument("--pin", action="store_true",
                    help="each proxy on the last CPU, the echo and the load on the others")
    ap.add_argument("--quick", action="store_true", help="a smoke run, well under a minute")
    args = ap.parse_args()
    if args.quick:
        args.reps, args.seconds, args.warmup = 1, 2, 0.5
        args.rates, args.conns, args.idle, args.syscall_seconds = "500", "10", "100", 1.5
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise Failed("--pin needs two CPUs or more")
        PIN.update(proxy={cpus[-1]}, peer=set(cpus[:-1]))
    rates = [int(x) for x in args.rates.split(",")]
    conns = [int(x) for x in args.conns.split(",")]
    args.idle = sorted(int(x) for x in args.idle.split(",") if x)
    cells = [(r, c) for r in rates for c in conns]

    chatmond = os.environ.get("CHATMOND") or os.path.join(ROOT, "build", "chatmond")
    if not os.access(chatmond, os.X_OK):
        raise Failed(f"{chatmond} not found: make first")
    node = need("node", "Node.js 18 or later (not installed by tools/deps.sh)")
    npm = need("npm", "npm comes with Node.js")
    haproxy = need("haproxy", "apt-get install haproxy (tools/deps.sh)")
    nginx = need("nginx", "apt-get install nginx-light (tools/deps.sh)")
    perf = shutil.which("perf")
    if args.calls_tool != "strace" and perf_works(perf):
        args.calls_tool, calls_path = "perf", perf
    elif args.calls_tool == "perf":
        raise Failed("perf cannot count system calls here (linux-perf, root or "
                     "kernel.perf_event_paranoid)")
    else:
        args.calls_tool = "strace"
        calls_path = need("strace", "apt-get install linux-perf or strace (tools/deps.sh)")
        print("relay.py: system calls counted by strace (its counts are low: it slows "
              "the proxy)", file=sys.stderr)
    need("redis-server", "apt-get install redis-server (tools/deps.sh)")
    node_install(npm)
    env = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
    agents = max(args.idle + [100]) + 1000     # agents at once, with room
    raise_nofile()
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if 2 * agents + 100 > nofile:
        raise Failed(f"RLIMIT_NOFILE is {nofile}: too few descriptors for {agents - 1000} "
                     f"idle agents through a proxy (two each)")

    tmp = tempfile.mkdtemp(prefix="chatmon-relay-")
    os.chmod(tmp, 0o755)        # nginx's worker runs as nobody when started as root
    procs = Procs(tmp)
    redis = None
    failures = []
    try:
        redis, redis_sock = redis_start(tmp)
        echo = start_echo(procs, node, env)

        def start(name, sub):
            d = os.path.join(tmp, sub)
            os.makedirs(d, exist_ok=True)
            if name == "haproxy":
                return start_haproxy(procs, haproxy, d, echo.port, agents)
            if name == "nginx":     # worker_connections counts both sides
                return start_nginx(procs, nginx, d, echo.port, 2 * agents, nofile)
            return start_chatmond(procs, chatmond, d, echo.port, redis_sock, agents,
                                  args.state_in_redis, args.history, args.rules)

        tg = {"direct": Target("direct", echo.port, echo.proc, [], None)}
        for t in PROXIES:
            tg[t] = start(t, t)

        # the load, interleaved
        res = {t: {c: [] for c in cells} for t in TARGETS}
        echo_cpu, late = [], 0.0
        for rep in range(args.reps):
            for cell in cells:
                for t in TARGETS:
                    r = run_load(node, env, tg[t], echo, cell[0], cell[1], args.seconds,
                                 args.warmup)
                    tg[t].alive(procs)
                    echo.alive(procs)
                    if r["errors"] or r["other_frames"]:
                        failures.append(f"{t} {cell[0]}/s {cell[1]} conn: {r['errors']} errors "
                                        f"({r['lost']} lost): {r['error_samples']}")
                    res[t][cell].append(r)
                    if r["received"]:
                        echo_cpu.append(r["echo_cpu_s"] * 1e6 / r["received"])
                    late = max(late, r["late_ms"])
                    print(f"relay.py: rep {rep + 1} {t} {cell[0]}/s {cell[1]} conn: "
                          f"p50 {r['p50_us']} p99 {r['p99_us']} µs, "
                          f"cpu {r['cpu_s'] * 1e6 / max(1, r['received']):.1f} µs/rt "
                          f"(user {r['user_s'] * 1e6 / max(1, r['received']):.1f}), "
                          f"load.js late {r['late_ms']} ms",
                          file=sys.stderr)
        metrics = chatmond_metrics(tg["chatmond"])
        if metrics["alerts_total"] or metrics["rule_warnings_total"] or \
                metrics["rule_blocks_total"] or metrics["connections_refused_total"] or \
                metrics["protocol_errors_total"]:
            failures.append(f"chatmond counted what should not be: {metrics}")
        metrics_s = ", ".join(f"{k} {v:.0f}" for k, v in metrics.items())

        # system calls, one pass
        sysc = {t: {} for t in PROXIES}
        for cell in cells:
            for t in PROXIES:
                out = os.path.join(tmp, f"calls-{t}.txt")
                r = run_load(node, env, tg[t], echo, cell[0], cell[1], args.syscall_seconds, 0,
                             control=calls_control(args.calls_tool, calls_path,
                                                   tg[t].calls_pid, out))
                tg[t].alive(procs)
                if (r["errors"] or r["other_frames"]) and args.calls_tool == "perf":
                    failures.append(f"system-call pass {t} {cell[0]}/s {cell[1]} conn: "
                                    f"{r['errors']} errors: {r['error_samples']}")
                calls = r["calls"]
                n = max(1, r["received"])
                top = sorted(calls.items(), key=lambda kv: -kv[1])[:3]
                sysc[t][cell] = {"total": sum(calls.values()) / n,
                                 "top": ", ".join(f"{k} {v / n:.1f}" for k, v in top)}
                print(f"relay.py: {args.calls_tool} {t} {cell[0]}/s {cell[1]} conn: "
                      f"{sysc[t][cell]['total']:.3f} calls/rt over {r['received']} round "
                      f"trips: {calls}", file=sys.stderr)

        # memory per idle pair: fresh processes
        for t in PROXIES:
            procs.stop(tg[t].proc)
        rss = {t: [] for t in PROXIES}
        settle = 0.5 if args.quick else 1.5
        for rep in range(args.reps):
            for t in PROXIES:
                fresh = start(t, f"{t}-idle-{rep}")
                try:
                    rss[t].append(idle_rss(procs, node, env, fresh, echo.port, args.idle, settle))
                finally:
                    procs.stop(fresh.proc)
                print(f"relay.py: rep {rep + 1} {t} idle: {rss[t][-1]}", file=sys.stderr)
    finally:
        procs.stop_all()
        if redis:
            redis.kill()
            redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    report(args, cells, res, sysc, rss, echo_cpu, late, metrics_s)
    if failures:
        for f in failures:
            print(f"relay.py: FAILED: {f}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        main()
    except (Failed, RuntimeError, OSError, AssertionError, subprocess.SubprocessError) as e:
        print(f"relay.py: error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        print(f"relay.py: {time.monotonic() - t0:.1f} s", file=sys.stderr)
