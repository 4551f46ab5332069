"""listen_reuseport: two chatmond processes listen on one address and port
(SO_REUSEPORT, third_party/libwebsockets patch 0010), the kernel hands each
some of the agents, and when one stops the other takes every new agent.
Without the key the second process refuses to start and says why."""

import asyncio
import re
import signal
import urllib.request

from conftest import SLOW, T, agent, free_port, recv, run, wait_for
from test_listen import listening_sockets

N_AGENTS = 40       # both instances get some: all on one has odds 2 * 2^-40


def admin_port(d):
    """The admin port the fixture wrote into d's configuration."""
    with open(d.conf, encoding="utf-8") as f:
        return int(re.search(r"^admin: 127\.0\.0\.1:(\d+)$", f.read(), re.M).group(1))


def gauge(d, name):
    """One unlabelled series of d's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(d)}/metrics", timeout=T) as r:
        text = r.read().decode("utf-8")
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


def shared(daemon, upstream_port, port, reuseport=True, wait=True):
    """A chatmond on 127.0.0.1:port (listen_reuseport as given)."""
    args = ["-o", f"listen=127.0.0.1:{port}"]
    if reuseport:
        args += ["-o", "listen_reuseport=true"]
    d = daemon(upstream_port, args=args, wait=False)
    d.port = port
    if wait:
        # the port answers already when the other instance listens: wait for this one's line
        line = re.compile(rf"main: chatmond \S+ listening on 127\.0\.0\.1:{port} "
                          r"\(shared: SO_REUSEPORT\)")

        def up():
            if d.proc.poll() is not None:
                raise AssertionError(f"chatmond exited with {d.proc.returncode}:\n{d.log()}")
            return line.search(d.log())
        wait_for(up, 10 * SLOW, f"chatmond listening on the shared port {port}")
    return d


async def agents_echo(port, names):
    """Connect every agent at once, check each one's echo, and keep them open;
    returns the open connections (the caller closes them)."""
    class At:       # agent() wants something with a port
        pass
    at = At()
    at.port = port
    conns = await asyncio.gather(*(agent(at, f"/echo?agent={n}") for n in names))
    for n, ws in zip(names, conns):
        await ws.send(f"hello from {n}")
    for n, ws in zip(names, conns):
        assert await recv(ws) == f"hello from {n}"
    return conns


def test_two_instances_share_one_port(daemon, backend):
    b = backend()
    port = free_port()
    d1 = shared(daemon, b.port, port)
    d2 = shared(daemon, b.port, port)
    assert d1.proc.poll() is None and d2.proc.poll() is None
    assert len(listening_sockets(port)) == 2, listening_sockets(port)

    async def main():
        conns = await agents_echo(port, [f"a{i}" for i in range(N_AGENTS)])
        try:
            n1 = gauge(d1, "chatmon_agents_connected")
            n2 = gauge(d2, "chatmon_agents_connected")
            assert n1 + n2 == N_AGENTS, (n1, n2)
            assert n1 > 0 and n2 > 0, f"the kernel gave every agent to one instance: {n1}, {n2}"
        finally:
            await asyncio.gather(*(ws.close() for ws in conns))
    run(main())

    # one instance stops: its listener goes, every new agent reaches the other
    assert d1.stop() == 0
    assert len(listening_sockets(port)) == 1, listening_sockets(port)
    before = gauge(d2, "chatmon_agent_connections_total")

    async def after():
        conns = await agents_echo(port, [f"b{i}" for i in range(10)])
        await asyncio.gather(*(ws.close() for ws in conns))
    run(after())
    assert gauge(d2, "chatmon_agent_connections_total") == before + 10


def refused(daemon, backend_port, port, reuseport):
    """A second chatmond on port, which must exit non-zero; its handle (for the log)."""
    d = shared(daemon, backend_port, port, reuseport=reuseport, wait=False)
    d.proc.wait(10 * SLOW)
    assert d.stop() != 0
    return d


def test_second_instance_without_the_key_fails(daemon, backend):
    b = backend()
    d1 = daemon(b.port)
    d2 = refused(daemon, b.port, d1.port, reuseport=False)
    assert (f"lwsctx_new: cannot listen on 127.0.0.1:{d1.port}: the address is in use by "
            "another process (to run several chatmond on one port, set listen_reuseport: "
            "true in each)") in d2.log(), d2.log()
    # the first one is untouched
    assert listening_sockets(d1.port) and d1.proc.poll() is None

    async def main():
        async with agent(d1, "/echo?agent=still") as ws:
            await ws.send("here")
            assert await recv(ws) == "here"
    run(main())


def test_key_on_one_side_only_fails(daemon, backend):
    """Sharing needs the option on every socket: one set late is refused too."""
    b = backend()
    d1 = daemon(b.port)                      # listen_reuseport: false
    d2 = refused(daemon, b.port, d1.port, reuseport=True)
    assert (f"lwsctx_new: cannot listen on 127.0.0.1:{d1.port}: the address is in use by a "
            "process that does not share it (every process on it must set listen_reuseport "
            "and run as the same user)") in d2.log(), d2.log()


def test_reload_keeps_the_listener_as_it_is(daemon, backend):
    """The listening socket is made once: a reload that turns the key on says it
    is kept, and the rest of the file applies."""
    b = backend()
    d = daemon(b.port)
    with open(d.conf, encoding="utf-8") as f:
        text = f.read()
    start = len(d.log())
    d.write_config(text.replace("level: debug", "level: info") + "listen_reuseport: true\n")
    d.signal(signal.SIGHUP)
    d.wait_log(r"main: reload: listen_reuseport cannot change live, keeping false", start=start)
    d.wait_log(r"main: reload: configuration reloaded", start=start)
    assert d.proc.poll() is None

    async def main():
        async with agent(d, "/echo?agent=after") as ws:
            await ws.send("still")
            assert await recv(ws) == "still"
    run(main())
