"""A Redis that answers what it should not: chatmond drops the connection
and goes on relaying; it neither aborts nor stalls (docs/operations.md,
"What a bad Redis cannot do"). The server is tests/peers/badredis.py."""

import time
import urllib.request

from conftest import SLOW, T, Backend, agent, free_port, recv, run


def healthz_worst(port, seconds):
    """The slowest /healthz answer over seconds (the loop's stalls)."""
    worst, end = 0.0, time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
            r.read()
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.1)
    return worst


def start(daemon, backend, mode):
    b = backend()
    bad = Backend((mode,), script="badredis.py")
    admin = free_port()
    d = daemon(b.port, redis=f"redis://127.0.0.1:{bad.port}",
               args=["-o", f"admin.listen=127.0.0.1:{admin}", "-o", "redis.timeout=1s"])
    return d, bad, admin


def relays(d):
    async def main():
        async with agent(d, "/echo?agent=alice") as ws:
            await ws.send("still relayed")
            assert await recv(ws) == "still relayed"
    run(main())


def test_a_reply_to_no_command_drops_the_connection_not_the_daemon(daemon, backend):
    """hiredis 0.14 asserts (SIGABRT) on a reply with no command waiting."""
    d, bad, admin = start(daemon, backend, "extra")
    try:
        d.wait_log(r"connection lost: a reply to no command", 5 * SLOW)
        assert healthz_worst(admin, 1) < 1 * SLOW
        relays(d)
        assert d.proc.poll() is None
    finally:
        bad.stop()


def test_an_array_header_of_millions_does_not_stall_the_loop(daemon, backend):
    """`*50000000` allocated 400 MB before one element came, and freeing it at
    redis.timeout stalled the loop for seconds, at every reconnect."""
    d, bad, admin = start(daemon, backend, "arrayhdr")
    try:
        d.wait_log(r"connection lost: an array of over 4194304 elements", 5 * SLOW)
        assert healthz_worst(admin, 3) < 0.5 * SLOW
        relays(d)
    finally:
        bad.stop()
