"""chatmond listens exactly where `listen` says, not on every address."""

import socket
import subprocess
import sys
import time

from conftest import agent, free_port, recv, run


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
