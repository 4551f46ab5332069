"""Signals: SIGTERM/SIGINT shut down cleanly, SIGHUP re-reads the configuration."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import (CHATMOND, DEFAULT_RULES, MINIMAL_RULES, SAN, SLOW, T, agent, closed,
                      config_text, free_port, recv, run)
from test_cli import macro_bomb


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_closes_agents_with_1001(daemon, backend, sig):
    b = backend()
    d = daemon(b.port, limits={"shutdown_grace": "2s"})

    async def main():
        conns = [await agent(d, f"/echo?agent=a{i}&t=shut{i}") for i in range(3)]
        for ws in conns:
            await ws.send("hi")
            assert await recv(ws) == "hi"
        t0 = time.monotonic()
        d.signal(sig)
        results = await asyncio.gather(*(closed(ws, 5 * SLOW) for ws in conns))
        assert [code for code, _ in results] == [1001] * 3, results
        for i in range(3):
            assert b.closed(b.opened(f"t=shut{i}")["conn"])["code"] in (1001, 1000)
        # exits 0 within a few seconds
        while d.proc.poll() is None and time.monotonic() - t0 < 5 * SLOW:
            await asyncio.sleep(0.05)
        assert d.proc.poll() == 0, (d.proc.poll(), d.log()[-2000:])
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", d.port), 1).close()
    run(main())
    s = d.stats()
    assert s["agents_total"] == 3 and s["messages_up"] == 3 and s["messages_down"] == 3, s


def test_shutdown_idle_is_quick(daemon, backend):
    b = backend()
    d = daemon(b.port)
    t0 = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t0 < 2 * SLOW
    assert d.stats()["agents_total"] == 0


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGUSR2])
def test_sigusr_is_logged_and_ignored(daemon, backend, sig):
    """SIGUSR1 (sent out of habit, to reopen logs) and SIGUSR2 leave the
    relay running: their default action ended chatmond without its drain
    (found by review: exit by signal, agents dropped without a close)."""
    b = backend()
    d = daemon(b.port)

    async def main():
        async with agent(d, "/echo?agent=u1") as ws:
            mark = len(d.log())
            d.signal(sig)
            await asyncio.to_thread(d.wait_log, rf"main: signal {int(sig)} ignored", T, mark)
            await ws.send("still here")
            assert await recv(ws) == "still here"
    run(main())
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_signals_during_the_last_of_the_exit_do_not_kill_it(daemon, backend):
    """SIGTERMs sent over and over while chatmond exits (a service manager's
    and an operator's at once) end it with 0, however late one comes: when
    the loop's signal events were freed the signal had its default action
    back, and one arriving then killed a clean exit (-15; seen in a test
    that sent its SIGTERM as the drain ended)."""
    b = backend()
    for _ in range(5):
        d = daemon(b.port)
        deadline = time.monotonic() + 15 * SLOW
        while d.proc.poll() is None and time.monotonic() < deadline:
            try:
                d.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                break
            time.sleep(0.0005)
        d.proc.wait(5 * SLOW)
        assert d.proc.returncode == 0, (d.proc.returncode, d.log()[-2000:])
        d.exit_code = 0


def sig_mask(pid, field):
    """The signal set `field` (SigBlk, SigCgt) of a process, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    raise AssertionError(f"no {field} for {pid}")


def test_signals_during_start_up_do_not_kill_it(daemon, backend):
    """SIGHUP, SIGUSR1 and SIGUSR2 while chatmond loads the configuration
    and compiles the rules (seconds with the default pack), before the loop
    handles them: they wait (chatmond(8): a stray SIGUSR1 must not end the
    service), and the SIGHUP is a reload once it listens. Their default
    action ended it silently (exit by signal 1, 10, 12)."""
    sigs = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
    bits = sum(1 << (int(s) - 1) for s in sigs)
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES, wait=False)
    # once main has them blocked (past the dynamic loader); a build that
    # never blocks them gets them half a second in, while it compiles
    deadline = time.monotonic() + 0.5
    while sig_mask(d.pid, "SigBlk") & bits != bits and time.monotonic() < deadline:
        time.sleep(0.002)
    early = sig_mask(d.pid, "SigCgt") & bits == 0      # no handler yet: the window
    for s in sigs:
        d.signal(s)
    d.wait_ready()
    d.wait_log(r"main: reload: configuration reloaded", 30 * SLOW)
    for s in sigs[1:]:
        d.wait_log(rf"main: signal {int(s)} ignored")
    assert early, "the signals came after the handlers: nothing was tested"
    assert d.stop() == 0


def reload(d, text):
    """Rewrite the config and SIGHUP; returns the log offset before the reload."""
    mark = len(d.log())
    d.write_config(text)
    d.signal(signal.SIGHUP)
    return mark


def test_sighup_live_keys(daemon, backend):
    """log.level, upstream and limits change for new sessions on SIGHUP; the
    session opened before the reload keeps working."""
    b = backend()
    d = daemon(b.port)
    turn = '{"type":"message","conversation":"%s","text":"亲"}'

    async def main():
        async with agent(d, "/echo?agent=alice&t=before") as old:
            await old.send(turn % "c-before")
            await recv(old)
            d.wait_log(r"relay_turn: agent=alice conversation=c-before role=customer")

            reload(d, config_text(d.port, f"ws://127.0.0.1:{b.port}/v2/", level="info",
                                  limits={"max_message": "1000"}))
            # new sessions go to the new upstream once the reload is done
            deadline = time.monotonic() + 5 * SLOW
            for i in range(1000):
                async with agent(d, f"/echo?agent=alice&t=probe{i}") as ws:
                    await ws.send("probe")
                    await recv(ws)
                if b.select(lambda e: e["ev"] == "open" and e["path"].startswith("/v2/")):
                    break
                assert time.monotonic() < deadline, "SIGHUP: the new upstream is never used"
                await asyncio.sleep(0.1)

            async with agent(d, "/echo?agent=alice&t=after") as ws:
                assert b.opened("t=after")["path"] == "/v2/echo?agent=alice&t=after"
                await ws.send(turn % "c-after")
                assert await recv(ws) == turn % "c-after"
                await ws.send("x" * 1000)
                assert await recv(ws) == "x" * 1000
                await ws.send("x" * 1001)                     # the new limit
                assert (await closed(ws))[0] == 1009

            await old.send(turn % "c-old-after")              # the old session lives on
            assert await recv(old) == turn % "c-old-after"
        await asyncio.sleep(0.3)
        assert "conversation=c-after" not in d.log()          # debug lines are off now
        assert "conversation=c-old-after" not in d.log()
    run(main())


def test_sighup_listen_cannot_change(daemon, backend):
    b = backend()
    d = daemon(b.port)
    new_port = free_port()
    mark = reload(d, config_text(new_port, f"ws://127.0.0.1:{b.port}/"))
    d.wait_log(r"^chatmond: warn: (.*listen.*cannot change|.*cannot change.*listen)", T, mark)

    async def main():
        async with agent(d, "/echo?t=still") as ws:
            await ws.send("same address")
            assert await recv(ws) == "same address"
    run(main())
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", new_port), 1).close()


def test_sighup_spool_cannot_change(daemon, backend, tmp_path):
    """The outbox's spool is opened at start: a reload that names another
    says it keeps the first, and nothing is written to the new one."""
    b = backend()
    d = daemon(b.port)
    new = tmp_path / "new.spool"
    text = config_text(d.port, f"ws://127.0.0.1:{b.port}/").replace(
        "  url: redis://127.0.0.1:1", f"  url: redis://127.0.0.1:1\n  spool: {new}")
    mark = reload(d, text)
    d.wait_log(r"^chatmond: warn: main: reload: redis.spool cannot change live, keeping none",
               T, mark)
    assert not new.exists()


def test_sighup_bad_config_rejected(daemon, backend):
    b = backend()
    d = daemon(b.port, limits={"max_message": "2000"})

    async def main():
        async with agent(d, "/echo?agent=alice&t=stay") as ws:
            await ws.send("before")
            assert await recv(ws) == "before"
            mark = reload(d, "listen: 127.0.0.1:%d\n"
                             "limits:\n"
                             "  max_message: lots\n"
                             "log:\n"
                             "  level: shouting\n" % d.port)
            d.wait_log(r"^chatmond: error: .*" + d.conf.replace(".", r"\.") + r":3: ", T, mark)
            d.wait_log(r"^chatmond: error: .*" + d.conf.replace(".", r"\.") + r":5: ", T, mark)
            # still connected, old config in force
            await ws.send("after")
            assert await recv(ws) == "after"
            await ws.send('{"type":"message","conversation":"c-hup","text":"在的"}')
            await recv(ws)
            d.wait_log(r"relay_turn: agent=alice conversation=c-hup role=customer bytes=6")
        async with agent(d, "/echo?t=new") as ws:               # the old upstream and limit
            assert b.opened("t=new")["path"] == "/echo?t=new"
            await ws.send(b"y" * 2000)
            assert await recv(ws) == b"y" * 2000
            await ws.send(b"y" * 2001)
            assert (await closed(ws))[0] == 1009
    run(main())
    assert d.proc.poll() is None


def test_sighup_protocol_and_agent_id(daemon, backend):
    """protocol.* and agent_id are live keys too: after the reload, frames of the
    new message type are turns and the agent id comes from the new place."""
    b = backend()
    d = daemon(b.port)
    text = config_text(d.port, f"ws://127.0.0.1:{b.port}/", agent_id="header:X-Agent-Id")
    reload(d, text.replace("message_types: [message]", "message_types: [chat]"))

    async def main():
        deadline = time.monotonic() + 5 * SLOW
        for i in range(1000):
            async with agent(d, "/echo?agent=query-id",
                             extra_headers={"X-Agent-Id": "erin"}) as ws:
                await ws.send('{"type":"chat","conversation":"c-%d","text":"你好"}' % i)
                await recv(ws)
                await ws.send('{"type":"message","conversation":"m-%d","text":"你好"}' % i)
                await recv(ws)
            await asyncio.sleep(0.1)
            # a session opened before the reload keeps its agent id: wait for one after
            if "agent=erin conversation=c-%d " % i in d.log():
                break
            assert time.monotonic() < deadline, "SIGHUP: the new protocol is never used"
        d.wait_log(r"relay_turn: agent=erin conversation=c-%d role=customer bytes=6" % i)
        assert "conversation=m-%d " % i not in d.log()
    run(main())


def test_sighup_with_a_macro_bomb_keeps_serving(daemon, backend, tmp_path):
    """A supervisor's broken rule file on reload: refused in milliseconds with
    its FILE:LINE; the admin port keeps answering, chat keeps flowing and the
    old rules stay in force (a doubling macro froze the daemon for 19 s)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(os.path.join(MINIMAL_RULES, "minimal.yaml"), rules / "minimal.yaml")
    b = backend()
    admin = free_port()
    d = daemon(b.port, rules=str(rules), args=["-o", f"admin.listen=127.0.0.1:{admin}"])

    def healthz():
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/healthz", timeout=5) as r:
            assert r.status == 200
        return time.monotonic() - t0

    async def main():
        async with agent(d, "/echo?agent=alice&t=bomb") as ws:
            (rules / "zz-bomb.yaml").write_text(macro_bomb())
            mark = len(d.log())
            d.signal(signal.SIGHUP)
            worst = max(healthz() for _ in range(10))
            assert worst < 1 * SLOW, worst
            d.wait_log(r"zz-bomb\.yaml:59: pattern expands past \d+ bytes", T, mark)
            # the old rule still blocks; chat still flows
            await ws.send('{"type":"message","conversation":"c-b","text":"你滚出去"}')
            frame = json.loads(await recv(ws))
            assert frame["type"] == "chatmon.warning" and frame["blocked"] is True, frame
            await ws.send("still relayed")
            assert await recv(ws) == "still relayed"
    run(main())
    assert d.proc.poll() is None


@pytest.mark.skipif(SAN, reason="ASan's allocator keeps freed memory in quarantine")
def test_reloads_of_the_default_pack_do_not_grow_memory(daemon, backend):
    """Six SIGHUPs with the default pack: RSS stays within 40 MiB of where it
    stood after the first load (each reload left up to a pack mapped in the
    reload thread's malloc arena: 78 -> 162-177 MiB)."""
    from conftest import DEFAULT_RULES, rss_kib
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES, level="info")
    start = rss_kib(d.pid)
    for i in range(6):
        mark = len(d.log())
        d.signal(signal.SIGHUP)
        d.wait_log(r"main: reload: configuration reloaded", 30 * SLOW, mark)
    # what a reload replaced is freed, and the heap trimmed, on a thread after it
    time.sleep(2 * SLOW)
    grown = (rss_kib(d.pid) - start) / 1024
    print(f"\nRELOAD-RSS grown {grown:.1f} MiB")
    assert grown < 40, f"RSS grew {grown:.0f} MiB over six reloads"


@pytest.mark.skipif(SAN, reason="ASan's allocator keeps freed memory in quarantine")
def test_rejected_reloads_of_the_default_pack_give_their_memory_back(daemon, backend):
    """A reload whose pack compiles and is then refused (a model file that
    is not there) frees the pack on the reload's thread and trims the heap
    as a replaced pack's is (found by review: about 47 MiB held, 80 ->
    152 MiB, until the next good reload)."""
    from conftest import DEFAULT_RULES, rss_kib
    b = backend()
    d = daemon(b.port, rules=DEFAULT_RULES, level="info")
    start = rss_kib(d.pid)
    with open(d.conf, encoding="utf-8") as f:
        text = f.read()
    for i in range(4):
        mark = reload(d, text + "model: /nonexistent/chatmon.model\n")
        d.wait_log(r"main: reload rejected", 30 * SLOW, mark)
    time.sleep(1 * SLOW)
    grown = (rss_kib(d.pid) - start) / 1024
    print(f"\nREJECTED-RELOAD-RSS grown {grown:.1f} MiB")
    assert grown < 21, f"RSS grew {grown:.0f} MiB over four rejected reloads"  # 28-34 untrimmed


def test_a_fifo_in_the_rules_directory_holds_nothing(daemon, backend, tmp_path):
    """A FIFO named like a rule file, nobody writing to it: `chatmond -t`
    answers, a SIGHUP reloads (its open no longer blocks the reload thread
    for good: it reads as an empty file) and SIGTERM stops the daemon
    (whose exit waited for that thread)."""
    rules = tmp_path / "rules"
    shutil.copytree(MINIMAL_RULES, rules)
    os.mkfifo(rules / "zz.yaml")
    conf = tmp_path / "check.yaml"
    conf.write_text(f"rules: {rules}\n", encoding="utf-8")
    p = subprocess.run([CHATMOND, "-c", str(conf), "-t"], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert p.returncode == 0, p.stderr
    os.unlink(rules / "zz.yaml")
    b = backend()
    d = daemon(b.port, rules=str(rules), level="info")
    os.mkfifo(rules / "zz.yaml")
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"main: reload: configuration reloaded", T, mark)
    assert d.stop(timeout=T) == 0
