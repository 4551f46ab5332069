"""What the benchmark scripts share: free ports and waiting for a server."""

import socket
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
