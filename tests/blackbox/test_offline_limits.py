"""The offline tools' input limits (issue 10): `chatmon scan` and `chatmon
replay` read at most --max-line bytes of a line (default 4 MiB), report a
longer one as `FILE:LINE: line longer than N bytes, skipped` and go on, and
their memory stays bounded whatever the input. Any bad line makes the exit
status 1 while the good lines' results are still written; 2 is a usage error.

Peak memory is the tool's own, as GNU time reports it (see measured())."""

import json
import os
import subprocess
import tempfile
import time

import pytest

from conftest import CHATMON, DEFAULT_RULES, MINIMAL_RULES, SAN, SLOW

MiB = 1 << 20
BIG = 100 * MiB                     # the line of the issue
DEFAULT_MAX = 4 * MiB
# What a skipped 100 MB line may add to the tool's peak over the same input
# without it: the rules and sanitizers' own memory are the baseline's (under
# ASan, loading the default pack alone is about 300 MB).
RSS_MARGIN_KIB = (64 if SAN else 32) * 1024
T0 = 1795341600000                  # 2026-11-22T10:00:00Z


def measured(argv, cwd=None, stdin=None, timeout=120):
    """Runs argv to its end: (exit status, stdout, stderr, peak RSS in KiB).

    The peak is GNU time's (%M): a child forked from this large Python process
    would carry Python's resident size into its own ru_maxrss across exec."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss:
        p = subprocess.Popen(["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *argv],
                             cwd=cwd, stdin=stdin or subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError(f"{argv[:2]} still running after {timeout}s")
        out.seek(0)
        err.seek(0)
        return (p.returncode, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"), int(rss.read().split()[-1]))


def bounded(rss, argv, path, before, after):
    """rss (with the big line) stays within RSS_MARGIN_KIB of the peak of the
    same command on a file of the other lines only."""
    small = str(path) + ".small"
    with open(small, "wb") as f:
        f.write(before + after)
    try:
        base = measured([*argv, small])[3]
    finally:
        os.unlink(small)
    assert rss < base + RSS_MARGIN_KIB, f"peak RSS {rss} KiB, {base} KiB without the big line"


def write_with_big_line(path, before, big_prefix, big_suffix, after, size=BIG):
    """before, then one line of size bytes (prefix, 'a'..., suffix), then after;
    written 1 MiB at a time: the big line never exists whole in Python."""
    fill = b"a" * MiB
    left = size - len(big_prefix) - len(big_suffix)
    with open(path, "wb") as f:
        f.write(before)
        f.write(big_prefix)
        while left > 0:
            f.write(fill if left >= MiB else fill[:left])
            left -= MiB
        f.write(big_suffix + b"\n")
        f.write(after)
    assert os.path.getsize(path) == len(before) + size + 1 + len(after)


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.jsonl"
    yield path
    if path.exists():
        path.unlink()               # 100 MB: not left behind with pytest's kept tmp dirs


def jl(o):
    return (json.dumps(o, ensure_ascii=False) + "\n").encode("utf-8")


def turn(ts, role, text, conv="c-1", agent="alice"):
    return jl({"ts": ts, "conversation": conv, "role": role, "agent": agent, "text": text})


def replay_conf(tmp_path):
    conf = tmp_path / "replay.yaml"
    conf.write_text(f"rules: {MINIMAL_RULES}\n"
                    "sla:\n  first_response: 10s\n  reply: 20s\n  warn_at: 0.5\n"
                    "  escalate: 60s\n  timezone: UTC\n")
    return str(conf)


def too_long(n):
    return f"line longer than {n} bytes, skipped"


# --------------------------------------------------------------------------


def test_scan_100mb_line_is_skipped_in_bounded_memory(big_file):
    before = jl({"role": "agent", "text": "加我薇信 abc123"})
    after = jl({"role": "customer", "text": "再不发货我就去投诉"})
    write_with_big_line(big_file, before, b'{"role":"agent","text":"', b'"}', after)
    argv = [CHATMON, "scan", "--rules", DEFAULT_RULES]
    code, out, err, rss = measured([*argv, str(big_file)])
    assert code == 1, (code, err)
    assert err == f"{big_file}:2: {too_long(DEFAULT_MAX)}\n", err
    res = [json.loads(x) for x in out.splitlines()]
    assert [o["line"] for o in res] == [1, 2, 3], out[:500]
    assert any(h["category"] == "offplatform" for h in res[0]["hits"]), res[0]
    assert res[1] == {"line": 2, "error": too_long(DEFAULT_MAX)}, res[1]
    assert any(h["category"] == "complaint_risk" for h in res[2]["hits"]), res[2]
    bounded(rss, argv, big_file, before, after)


def test_replay_100mb_line_is_skipped_in_bounded_memory(tmp_path, big_file):
    before = turn(T0, "customer", "在吗")
    after = turn(T0 + 1000, "agent", "你滚出去") + turn(T0 + 2000, "agent", "亲,在的")
    write_with_big_line(big_file, before, turn(T0 + 500, "customer", "", conv="c-big")[:-3],
                        b'"}', after)
    argv = [CHATMON, "replay", "-c", replay_conf(tmp_path)]
    code, out, err, rss = measured([*argv, str(big_file)])
    assert code == 1, (code, err)
    assert err == f"{big_file}:2: {too_long(DEFAULT_MAX)}\n", err
    res = [json.loads(x) for x in out.splitlines()]
    # the lines after the long one still count: line 3's hit, line 4's answer
    assert [(o["type"], o.get("rule")) for o in res] == \
        [("rule.hit", "abuse.test_phrase"), ("summary", None)], out[:500]
    assert res[-1]["conversations"] == 1, res[-1]      # c-big was never read
    assert res[-1]["agents"]["alice"]["answered"] == 1, res[-1]
    bounded(rss, argv, big_file, before, after)


def test_scan_max_line_is_honoured(tmp_path):
    f = tmp_path / "s.jsonl"
    # 16 bytes, 17, 16 with a CRLF end, 17 with no end at all
    f.write_bytes(b'{"text":"abcde"}\n{"text":"abcdef"}\n{"text":"abcde"}\r\n{"text":"abcdef"}')
    code, out, err, _ = measured([CHATMON, "scan", "--rules", MINIMAL_RULES,
                                  "--max-line", "16", str(f)])
    assert code == 1, (code, err)
    assert err == f"{f}:2: {too_long(16)}\n{f}:4: {too_long(16)}\n", err
    assert [json.loads(x) for x in out.splitlines()] == [
        {"line": 1, "hits": []}, {"line": 2, "error": too_long(16)},
        {"line": 3, "hits": []}, {"line": 4, "error": too_long(16)}], out

    # sizes as in the configuration
    code, out, err, _ = measured([CHATMON, "scan", "--rules", MINIMAL_RULES,
                                  "--max-line=1KiB", str(f)])
    assert (code, err) == (0, ""), (code, err)
    assert [json.loads(x)["hits"] for x in out.splitlines()] == [[]] * 4

    # standard input is read the same way; its name is "-"
    with open(f, "rb") as fin:
        code, out, err, _ = measured([CHATMON, "scan", "--rules", MINIMAL_RULES,
                                      "--max-line", "16"], stdin=fin)
    assert code == 1 and err == f"-:2: {too_long(16)}\n-:4: {too_long(16)}\n", (code, err)
    assert len(out.splitlines()) == 4, out

    for bad in ("0", "4XB", "-1", "2GiB", ""):
        code, out, err, _ = measured([CHATMON, "scan", "--rules", MINIMAL_RULES,
                                      "--max-line", bad, str(f)])
        assert code == 2 and "--max-line" in err and out == "", (bad, code, out, err)


def test_replay_max_line_and_bad_lines(tmp_path):
    good = [turn(T0, "customer", "在吗"), turn(T0 + 1000, "agent", "亲,在的")]
    log = tmp_path / "r.jsonl"
    log.write_bytes(good[0] + b"{not json\n" + turn(T0 + 500, "customer", "x" * 200) + good[1])
    n = max(len(x) for x in good) - 1          # the longest good line, without its \n
    code, out, err, _ = measured([CHATMON, "replay", "-c", replay_conf(tmp_path),
                                  "--max-line", str(n), str(log)])
    assert code == 1, (code, err)
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{log}:2: "), err
    assert lines[1] == f"{log}:3: {too_long(n)}", err
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["agents"]["alice"]["answered"] == 1, out

    # one byte less and the good lines are too long as well
    code, out, err, _ = measured([CHATMON, "replay", "-c", replay_conf(tmp_path),
                                  "--max-line", str(n - 1), str(log)])
    assert code == 1 and f"{log}:3: {too_long(n - 1)}" in err, (code, err)
    assert err.count("line longer than") >= 2, err

    code, out, err, _ = measured([CHATMON, "replay", "-c", replay_conf(tmp_path),
                                  "--max-line", "4XB", str(log)])
    assert code == 2 and "--max-line" in err and out == "", (code, out, err)


def test_scan_bad_lines_exit_1_good_lines_still_scanned(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_bytes(jl({"role": "agent", "text": "加我薇信 abc123"}) + b"not json\n" +
                  jl({"text": 5}) + jl({"role": "boss", "text": "x"}) +
                  jl({"role": "customer", "text": "再不发货我就去投诉"}))
    code, out, err, _ = measured([CHATMON, "scan", "--rules", DEFAULT_RULES, str(f)])
    assert code == 1, (code, err)
    res = [json.loads(x) for x in out.splitlines()]
    assert [o["line"] for o in res] == [1, 2, 3, 4, 5], out
    assert res[0]["hits"] and res[4]["hits"], out
    assert all("error" in o for o in res[1:4]), out
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert lines[0].startswith(f"{f}:2: invalid JSON"), err
    assert lines[1].startswith(f"{f}:3: text"), err
    assert lines[2].startswith(f"{f}:4: role"), err

    # all good: 0, nothing on stderr
    g = tmp_path / "g.jsonl"
    g.write_bytes(jl({"role": "agent", "text": "您好"}))
    code, out, err, _ = measured([CHATMON, "scan", "--rules", DEFAULT_RULES, str(g)])
    assert (code, err) == (0, ""), (code, err)


def test_unreadable_input_is_an_error(tmp_path):
    """A file that opens but cannot be read (a directory) is not an empty one."""
    g = tmp_path / "g.jsonl"
    g.write_bytes(jl({"role": "agent", "text": "您好"}))
    code, out, err, _ = measured([CHATMON, "scan", "--rules", MINIMAL_RULES,
                                  str(tmp_path), str(g)])
    assert code == 1 and f"chatmon: {tmp_path}: " in err, (code, err)
    assert [json.loads(x) for x in out.splitlines()] == [{"line": 1, "hits": []}], out

    g.write_bytes(turn(T0, "customer", "在吗"))
    code, out, err, _ = measured([CHATMON, "replay", "-c", replay_conf(tmp_path),
                                  str(tmp_path), str(g)])
    assert code == 1 and f"chatmon: {tmp_path}: " in err, (code, err)
    assert json.loads(out.splitlines()[-1])["conversations"] == 1, out


def test_every_verb_has_help():
    for verb in (["scan"], ["rules"], ["rules", "test"], ["replay"], ["tail"], ["dashboard"]):
        for flag in ("--help", "-h"):
            r = subprocess.run([CHATMON, *verb, flag], capture_output=True, text=True,
                               timeout=10 * SLOW, stdin=subprocess.DEVNULL)
            assert (r.returncode, r.stderr) == (0, ""), (verb, flag, r.returncode, r.stderr)
            assert r.stdout.startswith(f"usage: chatmon {verb[0]}"), (verb, flag, r.stdout)
            if verb[0] in ("scan", "replay"):
                assert "--max-line" in r.stdout and "4MiB" in r.stdout, r.stdout
