"""Command line of chatmond and chatmon: -V, -t, -o, usage errors."""

import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import (CHATMON, CHATMOND, MINIMAL_RULES, SLOW, T, agent, closed, config_text,
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


def test_check_puts_a_files_error_on_the_line_naming_it(tmp_path):
    """A file the configuration names that cannot be read (the rules, the
    model, the certificate, the key, a CA, the token keys) is reported as
    FILE:LINE: KEY: PATH: why, at the line that names it; one named by -o
    is reported without a line, as the override is."""
    conf = tmp_path / "c.yaml"
    text = (f"listen: 127.0.0.1:{free_port()}\n"
            "upstream: wss://127.0.0.1:9/\n"
            "rules: /nonexistent/rules.d\n"
            "model: /nonexistent/model.bin\n"
            "tls:\n"
            "  cert: /nonexistent/cert.pem\n"
            "  key: /nonexistent/key.pem\n"
            "upstream_tls:\n"
            "  ca: /nonexistent/ca.pem\n"
            "agent_id: jwt:query:token\n"
            "auth:\n"
            "  jwt_key: /nonexistent/keys.json\n")
    conf.write_text(text)
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 1, r.stderr
    for line, key, path in ((3, "rules", "/nonexistent/rules.d"),
                            (4, "model", "/nonexistent/model.bin"),
                            (6, "tls.cert", "/nonexistent/cert.pem"),
                            (9, "upstream_tls.ca", "/nonexistent/ca.pem"),
                            (12, "auth.jwt_key", "/nonexistent/keys.json")):
        assert re.search(rf"^{re.escape(str(conf))}:{line}: {re.escape(key)}: "
                         rf"{re.escape(path)}: .*No such file", r.stderr, re.M), (key, r.stderr)
    r = sh(CHATMOND, "-c", str(conf), "-t", "-o", "model=/elsewhere/m.bin")
    assert re.search(r"^(chatmond: error: )?/elsewhere/m.bin: cannot read", r.stderr, re.M), r.stderr


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


def test_override_admin_as_a_section(daemon, backend):
    """-o admin=HOST:PORT is the shorthand for admin.listen, as in a file; a
    mapping is the section, as in a file too (it was taken for an address)."""
    b = backend()
    port = free_port()
    d = daemon(b.port, args=["-o", f"admin={{listen: 127.0.0.1:{port}, token: s3cret}}"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=T) as r:
        assert r.status == 200
    assert d.proc.poll() is None
    port2 = free_port()
    d2 = daemon(b.port, args=["-o", f"admin=127.0.0.1:{port2}"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port2}/healthz", timeout=T) as r:
        assert r.status == 200
    assert d2.proc.poll() is None


@pytest.mark.parametrize("name", ["a.yml", "ab.yml", "a.yaml"])
def test_a_short_rule_file_name_is_loaded(tmp_path, name):
    """Every NAME.yaml or NAME.yml of the rules directory is loaded, however
    short NAME is (a.yml was passed over: only names of 6 bytes or more)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(os.path.join(MINIMAL_RULES, "minimal.yaml"), rules / name)
    conf = tmp_path / "c.yaml"
    conf.write_text(f"rules: {rules}\n", encoding="utf-8")
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- hostile files

def macro_bomb(levels=26):
    """A 1 KB rule file whose macros double at every level (gigabytes expanded)."""
    lines = ["- macro: m0\n  pattern: 'ab'\n"]
    for i in range(1, levels + 1):
        lines.append(f"- macro: m{i}\n  pattern: '${{m{i - 1}}}${{m{i - 1}}}'\n")
    lines.append(f"- rule: abuse.bomb\n  category: abuse\n  severity: warn\n  action: flag\n"
                 f"  pattern: '${{m{levels}}}'\n  message: x\n")
    return "".join(lines)


def rules_dir(tmp_path, name, text):
    d = tmp_path / name
    d.mkdir()
    (d / "r.yaml").write_text(text)
    return d


def test_check_refuses_a_macro_bomb_at_once(tmp_path):
    """Doubling macros are refused while expanding, with the rule's FILE:LINE,
    in well under a second (they took 10-16 s and 1.9 GB)."""
    d = rules_dir(tmp_path, "bomb", macro_bomb())
    conf = tmp_path / "c.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/", rules=str(d)))
    t0 = time.monotonic()
    r = sh(CHATMOND, "-c", str(conf), "-t")
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    line = 2 * 27 + 5          # the rule's "pattern:" line, after 27 two-line macros
    assert re.search(rf"{re.escape(str(d))}/r\.yaml:{line}: pattern expands past \d+ bytes",
                     r.stderr), r.stderr
    assert took < 2 * SLOW, took
    # the offline tool refuses it the same way
    r = sh(CHATMON, "rules", "test", "--rules", str(d))
    assert r.returncode != 0 and "pattern expands past" in r.stderr, r.stderr


def test_a_list_that_expands_too_far_is_refused(tmp_path):
    words = "".join(f"  - 词{i:06d}甲乙丙丁\n" for i in range(20000))
    text = ("- list: many\n  items:\n" + words +
            "- rule: abuse.many\n  category: abuse\n  severity: warn\n  action: flag\n"
            "  pattern: '${many}|${many}'\n  message: x\n")
    d = rules_dir(tmp_path, "list", text)
    r = sh(CHATMON, "rules", "test", "--rules", str(d))
    assert r.returncode != 0 and "pattern expands past" in r.stderr, r.stderr


@pytest.mark.parametrize("shape", ["flow", "block_map", "flow_map"])
@pytest.mark.parametrize("where", ["config", "rules", "override"])
def test_deep_yaml_is_refused_at_once(tmp_path, shape, where):
    """YAML nested 100 000 deep (libyaml took 28-51 s on it) is refused at the
    line where it passes the bound, in well under a second."""
    n = 100000 if where != "override" else 20000     # an argument is at most 128 KiB
    if shape == "flow":
        deep = "[" * n + "]" * n
    elif shape == "flow_map":
        deep = "{a: " * n + "1" + "}" * n
    else:                       # block nesting: 40 levels are enough to pass 32
        deep = "\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(40)) + "  " * 41 + "x\n"
    conf = tmp_path / "c.yaml"
    base = config_text(free_port(), "ws://127.0.0.1:9/")
    args = []
    if where == "config":
        conf.write_text(base + "extra: " + deep + "\n")
        want = rf"{re.escape(str(conf))}:\d+: nested deeper than \d+ levels"
    elif where == "rules":
        d = rules_dir(tmp_path, "deep", "- list: x\n  items: " + deep + "\n")
        conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/", rules=str(d)))
        want = rf"{re.escape(str(d))}/r\.yaml:\d+: nested deeper than \d+ levels"
    else:
        if shape == "block_map":
            pytest.skip("an override is one line")
        conf.write_text(base)
        args = ["-o", "limits=" + deep]
        want = r"-o limits=.{0,80}: nested deeper than \d+ levels"
    t0 = time.monotonic()
    r = sh(CHATMOND, "-c", str(conf), "-t", *args)
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stderr[-2000:]
    assert re.search(want, r.stderr), r.stderr[-2000:]
    assert took < 2 * SLOW, took


RULE = "- rule: abuse.x\n  category: abuse\n  severity: warn\n  action: flag\n"


@pytest.mark.parametrize("case", ["long_items", "macro_chain", "two_documents", "bad_utf8",
                                  "within_wraps", "nul_in_pattern", "aliases", "many_keys",
                                  "many_defs"])
def test_hostile_rule_files_are_refused_with_their_line(tmp_path, case):
    """Rule files that crashed the loader (a list of long items sharing a
    prefix, a chain of 45 000 macros: the stack), were read in part (a
    second YAML document), blamed line 1 (a byte that is not UTF-8 at line
    7), took a wrapped number (within: 4294967297 as 1), a pattern cut at
    a NUL ("abc\\0|.*" as "abc"), or copied one list per alias until
    memory ran out: each is refused with FILE:LINE, quickly."""
    if case == "long_items":
        text = ("- list: deep\n  items: ['" + "a" * 60000 + "', '" + "a" * 60000 + "z']\n" +
                RULE + "  pattern: '${deep}'\n")
        want = r"r\.yaml:\d+: (bad pattern .*too large|pattern expands past)"
    elif case == "macro_chain":
        text = "".join(f"- macro: m{i}\n  pattern: '${{m{i + 1}}}'\n" for i in range(200)) + \
            "- macro: m200\n  pattern: x\n" + RULE + "  pattern: '${m0}'\n"
        want = r"r\.yaml:\d+: macros nested more than 64 deep"
    elif case == "two_documents":
        text = RULE + "  pattern: a\n---\n" + RULE.replace("abuse.x", "abuse.y") + \
            "  pattern: forbidden\n"
        want = r"r\.yaml:6: more than one YAML document"
    elif case == "bad_utf8":
        text = RULE + "  pattern: a\n  message: ok\n  # \udcff\n"
        want = r"r\.yaml:7: YAML: invalid leading UTF-8 octet"
    elif case == "within_wraps":
        text = RULE + "  pattern: a\n  near: {pattern: b, within: 4294967297}\n"
        want = r"r\.yaml:6: rule abuse\.x: near: within must be a number of characters"
    elif case == "nul_in_pattern":
        text = RULE + '  pattern: "abc\\0|.*"\n'
        want = r"r\.yaml:5: pattern: holds a NUL character"
    elif case == "many_keys":       # each key checked against those before it
        text = RULE + "  pattern: a\n" + "".join(f"  k{i}: 1\n" for i in range(5000))
        want = r"r\.yaml:4097: a mapping of more than 4096 keys"
    elif case == "many_defs":       # each looked up among the others
        text = "".join(f"- macro: m{i}\n  pattern: x\n" for i in range(5000)) + \
            RULE + "  pattern: '${m0}'\n"
        want = r"r\.yaml:8193: more than 4096 lists and macros\n(?!.*more than 4096)"
    else:
        text = "- list: base\n  items: &i [甲, 乙, 丙]\n" + "".join(
            f"- list: l{i}\n  items: *i\n" for i in range(150)) + RULE + "  pattern: '${l1}'\n"
        want = r"r\.yaml:\d+: more than 100 aliases"
    d = tmp_path / "r"
    d.mkdir()
    (d / "r.yaml").write_bytes(text.encode("utf-8", "surrogateescape"))
    t0 = time.monotonic()
    r = sh(CHATMON, "rules", "test", "--rules", str(d))
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert re.search(want, r.stderr), r.stderr[-2000:]
    assert time.monotonic() - t0 < 5 * SLOW


def test_a_config_mapping_of_too_many_keys_is_refused_at_once(tmp_path):
    conf = tmp_path / "c.yaml"
    base = config_text(free_port(), "ws://127.0.0.1:9/")
    conf.write_text(base + "extra:\n" + "".join(f"  k{i}: 1\n" for i in range(60000)))
    t0 = time.monotonic()
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 1 and re.search(
        rf"{re.escape(str(conf))}:\d+: a mapping of more than 4096 keys", r.stderr), r.stderr
    assert time.monotonic() - t0 < 2 * SLOW


def test_a_config_of_aliases_is_refused_and_its_errors_are_bounded(tmp_path):
    conf = tmp_path / "c.yaml"
    base = config_text(free_port(), "ws://127.0.0.1:9/")
    keys = "".join(f"  k{i}: 1\n" for i in range(500))
    conf.write_text(base + "x: &a\n" + keys + "".join(f"y{i}: *a\n" for i in range(150)))
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 1 and re.search(rf"{re.escape(str(conf))}:\d+: more than 100 aliases",
                                           r.stderr), r.stderr[-2000:]
    # fewer aliases, each of 500 unknown keys: 50 000 errors, 100 of them listed
    conf.write_text(base + "x: &a\n" + keys + "".join(f"y{i}: *a\n" for i in range(100)))
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 1
    assert "more than 100 errors: the rest are not listed" in r.stderr
    assert r.stderr.count("\n") < 120, r.stderr[-2000:]


def test_oversized_config_and_rule_files_are_refused(tmp_path):
    conf = tmp_path / "big.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/") + "#" * (2 << 20) + "\n")
    r = sh(CHATMOND, "-c", str(conf), "-t")
    assert r.returncode == 1 and f"{conf}: larger than" in r.stderr, r.stderr
    d = rules_dir(tmp_path, "bigrules", "#" * (5 << 20) + "\n")
    r = sh(CHATMON, "rules", "test", "--rules", str(d))
    assert r.returncode != 0 and f"{d}/r.yaml: larger than" in r.stderr, r.stderr


def test_check_touches_neither_spool_nor_redis(tmp_path, redis_server):
    """chatmond -t only loads and checks: systemd runs it on every start and
    reload next to the running daemon, which owns the spool."""
    r = redis_server()
    spool = tmp_path / "alerts.spool"
    conf = tmp_path / "c.yaml"
    conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/", redis=r.url()) +
                    f"  spool: {spool}\n")
    c = r.client()
    before = c.info("stats")["total_connections_received"]
    res = sh(CHATMOND, "-c", str(conf), "-t")
    assert res.returncode == 0, res.stderr
    time.sleep(0.3)
    assert c.info("stats")["total_connections_received"] == before + 0
    assert not spool.exists()


def test_check_refuses_a_spool_that_cannot_be_opened(tmp_path):
    """-t says so when the daemon could not open its spool (a directory that
    is not there, or a directory given as the spool), so that ExecStartPre stops a start that would fail at
    once, for ever under Restart=on-failure (found by review); a spool not
    made yet in a directory that takes it passes, and is not made."""
    conf = tmp_path / "c.yaml"
    (tmp_path / "adir").mkdir()
    for spool, ok in ((tmp_path / "none" / "alerts.spool", False),
                      (tmp_path / "adir", False),
                      (tmp_path / "alerts.spool", True)):
        conf.write_text(config_text(free_port(), "ws://127.0.0.1:9/") +
                        f"  spool: {spool}\n")
        res = sh(CHATMOND, "-c", str(conf), "-t")
        if ok:
            assert res.returncode == 0, res.stderr
            assert not spool.exists()
        else:
            why = "Is a directory" if spool.is_dir() else "No such file or directory"
            assert res.returncode == 1, res.stderr
            assert f"{spool}: cannot open the alert spool: {why}" in res.stderr, res.stderr


def test_second_instance_on_the_same_spool_refuses_to_start(daemon, backend, tmp_path):
    b = backend()
    spool = tmp_path / "shared.spool"
    first = daemon(b.port, args=["-o", f"redis.spool={spool}"])
    second = daemon(b.port, args=["-o", f"redis.spool={spool}"], wait=False, name="second")
    assert second.proc.wait(10 * SLOW) != 0
    assert f"{spool}: the alert spool is in use by another chatmond" in second.log()
    second.exit_code = second.proc.returncode
    assert first.proc.poll() is None


@pytest.mark.parametrize("argv", [
    [CHATMON], [CHATMON, "scan"], [CHATMON, "replay"], [CHATMON, "tail"],
    [CHATMON, "dashboard"], [CHATMON, "rules"], [CHATMON, "rules", "test"],
    [CHATMON, "rules", "normalize"], [CHATMOND],
])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_verb_has_help(argv, flag):
    """--help and -h anywhere a newcomer tries them: the usage on standard
    output, nothing on standard error, exit 0."""
    p = subprocess.run([*argv, flag], capture_output=True, text=True, timeout=10 * SLOW,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, (p.returncode, p.stderr)
    assert p.stderr == "", p.stderr
    assert p.stdout.startswith("usage: "), p.stdout


def test_rules_test_fails_when_stdout_cannot_be_written():
    """A table nobody got is no pass: `rules test > /dev/full` exits 1 with
    the reason on stderr, as scan, replay, report and tail do (found by
    review: it exited 0)."""
    with open("/dev/full", "w") as full:
        p = subprocess.run([CHATMON, "rules", "test", "--rules", MINIMAL_RULES],
                           stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=10 * SLOW, stdin=subprocess.DEVNULL)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "cannot write the output" in p.stderr, p.stderr
    # the same rules pass when the table can be written
    assert sh(CHATMON, "rules", "test", "--rules", MINIMAL_RULES).returncode == 0
