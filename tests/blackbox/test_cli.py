"""Command line of chatmond and chatmon: -V, -t, -o, usage errors."""

import os
import re
import shutil
import subprocess

from conftest import (CHATMON, CHATMOND, MINIMAL_RULES, SLOW, agent, closed, config_text,
                      free_port, recv, run)


def sh(*argv, timeout=10):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout * SLOW,
                          stdin=subprocess.DEVNULL)


def test_version():
    r = sh(CHATMOND, "-V")
    assert r.returncode == 0, r.stderr
    assert re.match(r"^chatmond \S+\n?$", r.stdout), (r.stdout, r.stderr)

    r = sh(CHATMON, "--version")
    assert r.returncode == 0, r.stderr
    assert re.match(r"^chatmon \S+\n?$", r.stdout), (r.stdout, r.stderr)


def test_usage_errors():
    r = sh(CHATMOND, "-Z")
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "usage" in r.stderr.lower(), r.stderr

    r = sh(CHATMON)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "usage" in r.stderr.lower(), r.stderr


def test_check_good_config(tmp_path):
    conf = tmp_path / "good.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/"))
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 0, r.stderr
    assert ": error:" not in r.stderr, r.stderr

    # every key has a default; the rules are then rules.d beside the file
    empty = tmp_path / "empty.yaml"
    empty.write_text("# every key has a default\n")
    r = sh(CHATMOND, "-c", str(empty), "-t")
    assert r.returncode == 1, r.stderr
    assert f"{tmp_path}/rules.d: cannot open the rules directory" in r.stderr, r.stderr
    (tmp_path / "rules.d").mkdir()
    shutil.copy(os.path.join(MINIMAL_RULES, "minimal.yaml"), tmp_path / "rules.d")
    r = sh(CHATMOND, "-c", str(empty), "-t")
    assert r.returncode == 0, r.stderr


def test_check_bad_config_reports_every_error(tmp_path):
    conf = tmp_path / "bad.yaml"
    conf.write_text(
        "listen: not-an-address\n"          # 1
        "upstream: http://127.0.0.1:9/\n"   # 2: not ws://
        "limits:\n"                         # 3
        "  max_message: lots\n"             # 4
        "  queue_bytes: 4MiB\n"             # 5
        "agent_id: cookie:agent\n"          # 6
        "protocol:\n"                       # 7
        "  message_types: [message]\n"      # 8
        "  end_types: [end]\n"              # 9
        "log:\n"                            # 10
        "  level: chatty\n"                 # 11
    )
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = set(int(n) for n in re.findall(re.escape(str(conf)) + r":(\d+): ", r.stderr))
    for expected in (1, 2, 4, 6, 11):
        assert expected in lines, f"no error reported for line {expected}:\n{r.stderr}"


def test_check_bad_override(tmp_path):
    conf = tmp_path / "good.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/"))
    r = sh(CHATMOND, "-c", str(conf), "-t", "-o", "limits.max_message=banana")
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "max_message" in r.stderr, r.stderr


def test_override_wins(daemon, backend):
    """The file says 1MiB; -o limits.max_message=1000 is what the daemon enforces."""
    b = backend()
    d = daemon(b.port, args=["-o", "limits.max_message=1000", "-o", "log.level=info"])

    async def main():
        async with agent(d, "/echo?t=ok&agent=alice") as ws:
            await ws.send(b"x" * 1000)
            assert await recv(ws) == b"x" * 1000
            turn = '{"type":"message","conversation":"c-1","text":"hi"}'
            await ws.send(turn)
            assert await recv(ws) == turn
        async with agent(d, "/echo?t=big") as ws:
            await ws.send(b"x" * 1001)
            assert (await closed(ws))[0] == 1009
    run(main())
    assert "relay_turn" not in d.log()          # the second -o counts as well
