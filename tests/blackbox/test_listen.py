"""chatmond listens exactly where `listen` says, not on every address."""

import socket
import subprocess
import sys
import time

from conftest import SLOW, agent, free_port, recv, run


def listening_sockets(port):
    """(family, local address) of the sockets listening on port, from /proc."""
    found = []
    for fam, path in (("tcp", "/proc/net/tcp"), ("tcp6", "/proc/net/tcp6")):
        with open(path) as f:
            next(f)
            for line in f:
                cols = line.split()
                addr, hexport = cols[1].split(":")
                if int(hexport, 16) == port and cols[3] == "0A":     # LISTEN
                    found.append((fam, addr))
    return found


def test_ipv4_loopback_only(daemon, backend):
    b = backend()
    d = daemon(b.port)
    # 127.0.0.1 in /proc's hex: on an IPv4 socket, or v4-mapped on an IPv6 one
    assert listening_sockets(d.port) in ([("tcp", "0100007F")],
                                         [("tcp6", "0000000000000000FFFF00000100007F")]), \
        listening_sockets(d.port)

    async def main():
        async with agent(d, "/echo?agent=a") as ws:
            await ws.send("hello")
            assert await recv(ws) == "hello"
    run(main())


def test_not_reachable_on_another_address(daemon, backend):
    b = backend()
    d = daemon(b.port)
    # any local address that is not loopback must be refused
    others = [a for a in socket.gethostbyname_ex(socket.gethostname())[2]
              if not a.startswith("127.")]
    for a in others:
        s = socket.socket()
        s.settimeout(2)
        try:
            assert s.connect_ex((a, d.port)) != 0, f"reachable on {a}"
        finally:
            s.close()


ECHO6 = """
import asyncio, sys, websockets
async def echo(ws, path):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "::1", int(sys.argv[1])):
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def test_ipv4_listen_with_an_ipv6_upstream(daemon):
    """Binding the IPv4 listen address exactly must not cost the IPv6 upstream."""
    port = free_port()
    peer = subprocess.Popen(["/usr/bin/python3", "-c", ECHO6, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert peer.stdout.readline().strip() == "ready"
        d = daemon(upstream=f"ws://[::1]:{port}/")

        async def main():
            async with agent(d, "/?agent=v6") as ws:
                await ws.send("over IPv6")
                assert await recv(ws) == "over IPv6"
        run(main())
    finally:
        peer.terminate()
        peer.wait(5)


# 192.0.2.1 (TEST-NET-1, RFC 5737) is no host's own address
NOT_LOCAL = "192.0.2.1"


def exits(d, timeout=10):
    """The exit code of a daemon or dashboard that must not start, and its log."""
    d.exit_code = d.proc.wait(timeout * SLOW)
    return d.exit_code, d.log()


def test_an_address_that_cannot_be_bound_fails_the_start(daemon, backend, dashboard):
    """chatmond(8): exit 1 when the listen or admin address cannot be bound.
    lws used to defer such a listener: the daemon said "listening on" and
    READY, /readyz said listening, and nothing listened."""
    b = backend()
    port = free_port()
    code, log = exits(daemon(b.port, args=["-o", f"listen={NOT_LOCAL}:{port}"], wait=False))
    assert code == 1, log
    assert f"cannot listen on {NOT_LOCAL}:{port}: no local interface has that address" in log
    assert "listening on" not in log
    code, log = exits(daemon(b.port, args=["-o", "listen=nosuchhost.invalid:8080"],
                             wait=False))
    assert code == 1 and "nosuchhost.invalid:8080: the name does not resolve" in log, log
    code, log = exits(daemon(b.port, args=["-o", f"admin.listen={NOT_LOCAL}:{port}"],
                             wait=False))
    assert code == 1, log
    assert f"cannot listen on {NOT_LOCAL}:{port} (admin.listen): Cannot assign" in log
    # chatmon dashboard alike (dashboard.listen)
    code, log = exits(dashboard("redis://127.0.0.1:1", args=["--listen", f"{NOT_LOCAL}:{port}"],
                                wait=False))
    assert code == 1, log
    assert f"cannot listen on {NOT_LOCAL}:{port}: no local interface has that address" in log


def test_listen_on_a_host_name(daemon, backend):
    """A name (docs/configuration.md, "address") is resolved at start and its
    IPv4 address bound: localhost is 127.0.0.1, reachable as such."""
    b = backend()
    port = free_port()
    d = daemon(b.port, args=["-o", f"listen=localhost:{port}"], wait=False)
    d.port = port
    d.wait_ready()
    assert listening_sockets(port) in ([("tcp", "0100007F")],
                                       [("tcp6", "0000000000000000FFFF00000100007F")]), \
        listening_sockets(port)
    assert "lwsctx_new: localhost is 127.0.0.1: listening there" in d.log()

    async def main():
        async with agent(d, "/echo?agent=a") as ws:
            await ws.send("by name")
            assert await recv(ws) == "by name"
    run(main())


def test_listen_and_admin_on_one_socket_spelt_two_ways(daemon, backend):
    """listen localhost:P and admin.listen 127.0.0.1:P pass the
    configuration's check (the hosts differ as text); the start failed
    with "in use by another process" and advice to share the port: the
    other one was chatmond's own admin listener. It is named as such."""
    b = backend()
    port = free_port()
    code, log = exits(daemon(b.port, args=["-o", f"listen=localhost:{port}",
                                           "-o", f"admin.listen=127.0.0.1:{port}"],
                             wait=False))
    assert code == 1, log
    assert (f"cannot listen on localhost:{port} (127.0.0.1): the address is in use, "
            f"perhaps by this chatmond's own admin.listen (127.0.0.1:{port}): give each "
            "a port of its own") in log, log
    assert "another process" not in log
