"""chatmond listens exactly where `listen` says, not on every address."""

import socket

from conftest import agent, recv, run


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
    # 127.0.0.1 in /proc's little-endian hex, on an IPv4 socket only
    assert listening_sockets(d.port) == [("tcp", "0100007F")], listening_sockets(d.port)

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
