"""What the benchmark scripts share: paths, free ports, chatmond's config,
waiting for a server and cleaning up."""

import os
import socket
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PYTHON = "/usr/bin/python3"
RULES = os.path.join(ROOT, "conf", "rules.d")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_conf(dir, backend_port, extra=""):
    """dir/chatmond.yaml: a free listen and admin port, the default rules, the
    backend on 127.0.0.1, info logs and extra YAML. Returns (path, listen port)."""
    port = free_port()
    conf = os.path.join(dir, "chatmond.yaml")
    with open(conf, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\n"
                f"admin: 127.0.0.1:{free_port()}\n"
                f"upstream: ws://127.0.0.1:{backend_port}/\n"
                f"rules: {RULES}\n"
                "log:\n  level: info\n" + extra)
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


def cleanup(daemon, backend, tmp):
    """Whatever a benchmark started, stopped whatever happened."""
    if daemon and daemon.poll() is None:
        daemon.kill()
    backend.kill()
    backend.wait()
    tmp.cleanup()
