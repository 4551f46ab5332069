"""What the benchmark scripts share: paths, free ports, chatmond's config,
waiting for a server, a redis-server of their own, what a process and Redis
spent, and cleaning up."""

import os
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = "/usr/bin/python3"
RULES = os.path.join(ROOT, "conf", "rules.d")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(dir, backend_port, extra="", log_level="info", rules=RULES):
    """dir/chatmond.yaml: a free listen and admin port, the rules (the default
    pack unless told), the backend on 127.0.0.1, logs at log_level and extra
    YAML. Returns (path, listen port)."""
    port = free_port()
    conf = os.path.join(dir, "chatmond.yaml")
    with open(conf, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\n"
                f"admin: 127.0.0.1:{free_port()}\n"
                f"upstream: ws://127.0.0.1:{backend_port}/\n"
                f"rules: {rules}\n"
                f"log:\n  level: {log_level}\n" + extra)
    return conf, port


def wait_listening(port, proc, timeout=10):
    """Until something accepts on 127.0.0.1:port; fails if proc exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_split(pid):
    """(user, system) CPU seconds of process pid so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tck, int(fields[12]) / tck


def cpu_s(pid):
    """User + system CPU seconds of process pid so far."""
    return sum(cpu_split(pid))


def redis_start(tmp):
    """A redis-server on a unix socket in tmp, nothing saved: (process, socket path)."""
    sock = os.path.join(tmp, "redis.sock")
    proc = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                             "--save", "", "--appendonly", "no", "--dir", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(sock):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return proc, sock


def redis_info(sock):
    """Redis's counters so far (commands, bytes in and out, CPU seconds, the
    seconds spent inside commands) and the memory it holds now."""
    import redis
    r = redis.Redis(unix_socket_path=sock)
    i = r.info()
    # the time spent inside commands (scripts whole); the rest of the CPU is I/O
    stats = r.info("commandstats")
    return {"cmds": i["total_commands_processed"], "in": i["total_net_input_bytes"],
            "out": i["total_net_output_bytes"],
            "cpu": i["used_cpu_user"] + i["used_cpu_sys"], "mem": i["used_memory"],
            "cmd_s": sum(v["usec"] for v in stats.values()) / 1e6,
            "stats": {k.removeprefix("cmdstat_"): (v["calls"], v["usec"])
                      for k, v in stats.items()}}


def cleanup(daemon, backend, tmp):
    """Whatever a benchmark started, stopped whatever happened."""
    if daemon and daemon.poll() is None:
        daemon.kill()
    backend.kill()
    backend.wait()
    tmp.cleanup()
