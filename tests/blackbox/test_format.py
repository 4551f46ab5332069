"""`chatmon scan` and `chatmon replay` --format: a readable table for a person
at a terminal, JSON for everything else. Run under a real pseudo-terminal
(os.openpty) where the default must be the table, and through pipes where it
must stay the JSON the golden tests pin; times follow sla.timezone, category
names are the dashboard's Chinese ones, and a bad --format is a usage error."""

import json
import os
import re
import select
import subprocess
import time
import unicodedata

import pytest

from conftest import CHATMON, ROOT, SANITIZER_MARKS, T

RULES = os.path.join(ROOT, "tests", "blackbox", "rules_live")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

# A customer waits, the agent hits a block rule (not an answer), then answers
# late: a rule hit and SLA events at 23:30 UTC, which is 07:30 the next day at +08:00.
LOG = [
    {"ts": "2026-11-22T23:30:00.000Z", "conversation": "c-1", "role": "customer",
     "agent": "小美", "text": "在吗"},
    {"ts": "2026-11-22T23:30:02.000Z", "conversation": "c-1", "role": "agent",
     "agent": "小美", "text": "加我微信,给你便宜"},
    {"ts": "2026-11-22T23:31:30.000Z", "conversation": "c-1", "role": "agent",
     "agent": "小美", "text": "亲,在的"},
    {"ts": "2026-11-22T23:32:00.000Z", "conversation": "c-2", "role": "customer",
     "agent": "bob", "text": "这个没货了吗"},
    {"ts": "2026-11-22T23:32:05.000Z", "conversation": "c-2", "role": "agent",
     "agent": "bob", "text": "亲,这款没货了"},
]

SCAN = [
    {"role": "agent", "text": "加我微信,给你便宜"},
    {"role": "agent", "text": "亲,欢迎光临"},
    {"role": "customer", "text": "再不发货我就投诉"},
    "not json",
    {"role": "agent", "text": "ctl\x1b[2Jx 没货"},
]


def write_lines(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")
    return str(path)


@pytest.fixture
def files(tmp_path):
    """Paths: the log, the scan input, and a configuration per time zone."""
    out = {"log": write_lines(tmp_path / "day.jsonl", LOG),
           "scan": write_lines(tmp_path / "lines.jsonl", SCAN)}
    for name, zone in (("utc", "UTC"), ("cn", "'+08:00'")):
        conf = tmp_path / f"{name}.yaml"
        conf.write_text(f"rules: {RULES}\nsla:\n  first_response: 10s\n  reply: 20s\n"
                        f"  escalate: 60s\n  timezone: {zone}\n")
        out[name] = str(conf)
    return out


def env_for(extra=None):
    e = dict(os.environ, TERM="xterm", TZ="UTC")
    e.pop("NO_COLOR", None)
    e.update(extra or {})
    return e


def on_pty(*args, env=None, cwd=None):
    """chatmon ARGS with stdout on a pseudo-terminal: (code, stdout, stderr).
    The terminal's "\\r\\n" is read back as "\\n"."""
    master, slave = os.openpty()
    p = subprocess.Popen([CHATMON, *args], stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE, env=env_for(env), cwd=cwd)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 4 * T
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:         # EIO: the program exited, the terminal is closed
                break
            if not chunk:
                break
            out += chunk
        code = p.wait(T)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
        os.close(master)
    err = p.stderr.read().decode("utf-8", "replace")
    p.stderr.close()
    assert not [m for m in SANITIZER_MARKS if m in err], err
    return code, out.decode("utf-8").replace("\r\n", "\n"), err


def piped(*args, env=None):
    r = subprocess.run([CHATMON, *args], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=4 * T, env=env_for(env))
    err = r.stderr.decode("utf-8", "replace")
    assert not [m for m in SANITIZER_MARKS if m in err], err
    return r.returncode, r.stdout.decode("utf-8"), err


def width(s):
    """Terminal columns, as a terminal counts them: CJK two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


# --------------------------------------------------------------------------
# scan


def test_scan_table_is_the_default_on_a_terminal(files):
    # a short name: a path as long as pytest's temporary ones (past 74
    # columns) is left out of the column's width on purpose
    name = os.path.basename(files["scan"])
    code, out, err = on_pty("scan", "--rules", RULES, name, env={"NO_COLOR": "1"},
                            cwd=os.path.dirname(files["scan"]))
    assert code == 1, err                           # the line that is not JSON
    assert f"{name}:4: invalid JSON" in err
    lines = out.splitlines()
    assert lines[0].split() == ["FILE:LINE", "SEVERITY", "WHAT"], lines
    assert not any(line.startswith("{") for line in lines), out
    assert "\x1b" not in out, repr(out)              # NO_COLOR
    rows = {line.split()[0]: line for line in lines[1:-1]}
    files = dict(files, scan=name)
    assert set(rows) == {f"{files['scan']}:1", f"{files['scan']}:3", f"{files['scan']}:5"}, lines
    # the category by the dashboard's name, the rule, what was done, whose turn, the match set off
    assert re.search(r":1 +critical 站外引流 offplatform\.test_contact BLOCKED agent: "
                     r"»加我微信«,给你便宜$", rows[f"{files['scan']}:1"]), rows
    assert re.search(r":3 +warn +投诉风险 complaint_risk\.\S+ warned customer: "
                     r"再不发货我就»投诉«$", rows[f"{files['scan']}:3"]), rows
    # what was typed cannot drive the terminal
    assert rows[f"{files['scan']}:5"].endswith("agent: ctl\\x1b[2Jx »没货«"), rows
    assert lines[-1] == "5 lines, 3 hits, 1 bad", lines
    # the rows line up under the header
    col = lines[0].index("SEVERITY")
    for line in lines[1:-1]:
        sev = re.search(r" (critical|warn|info) ", line)
        assert width(line[:sev.start(1)]) == col, (line, lines[0])


def test_scan_colour_on_a_terminal(files):
    code, out, err = on_pty("scan", "--rules", RULES, files["scan"])
    assert "\x1b[1;7m加我微信\x1b[0m" in out, repr(out)
    assert "\x1b[1;31mBLOCKED\x1b[0m" in out, repr(out)
    # the colour replaces the marks; the text is the same
    assert "»" not in out and "加我微信\x1b[0m,给你便宜" in out, repr(out)
    assert "站外引流 offplatform.test_contact BLOCKED" in ANSI.sub("", out)


def test_scan_json_on_a_terminal_when_asked(files):
    code, out, err = on_pty("scan", "--rules", RULES, "--format", "json", files["scan"])
    _, want, _ = piped("scan", "--rules", RULES, files["scan"])
    assert code == 1 and out == want
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["line"] for r in results] == [1, 2, 3, 4, 5]
    assert results[0]["hits"][0]["category"] == "offplatform"


def test_scan_pipe_is_json_by_default(files):
    code, out, err = piped("scan", "--rules", RULES, files["scan"])
    code_j, out_j, err_j = piped("scan", "--rules", RULES, "--format", "json", files["scan"])
    assert (code, out, err) == (code_j, out_j, err_j)
    assert code == 1
    assert [json.loads(line)["line"] for line in out.splitlines()] == [1, 2, 3, 4, 5]
    assert "站外引流" not in out


def test_scan_table_through_a_pipe_when_asked(files):
    code, out, err = piped("scan", "--rules", RULES, "--format", "table", files["scan"])
    assert code == 1 and out.startswith("FILE:LINE")
    assert "站外引流 offplatform.test_contact BLOCKED" in out
    assert "\x1b" not in out                         # a pipe: no colour


# --------------------------------------------------------------------------
# replay


def test_replay_table_is_the_default_on_a_terminal(files):
    code, out, err = on_pty("replay", "-c", files["utc"], files["log"], env={"NO_COLOR": "1"})
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "SEVERITY", "AGENT", "CONVERSATION", "WHAT"], lines
    assert not any(line.startswith("{") for line in lines), out
    body = lines[1:lines.index("")]
    assert any(re.fullmatch(r"11-22 23:30:02 critical 小美 +c-1 +站外引流 offplatform\.test_contact "
                            r"BLOCKED agent: »加我微信«,给你便宜", line) for line in body), body
    assert any("声称无货 stock.test_none warned agent: 亲,这款»没货«了" in line for line in body), body
    assert any("SLA breach: waited" in line for line in body), body
    # the alert rows line up: the conversation starts in one terminal column
    col = width(lines[0][:lines[0].index("CONVERSATION")])
    for line in body:
        conv = re.search(r" (c-\d) ", line)
        assert width(line[:conv.start(1)]) == col, (line, lines[0])
    # then each agent's figures, aligned (CJK agent ids count two columns), then the count
    summary = lines[lines.index("") + 1:]
    assert summary[0].split()[:3] == ["AGENT", "ROUNDS", "ANSWERED"], summary
    assert {row.split()[0] for row in summary[1:-1]} == {"bob", "小美"}, summary
    assert len({width(row) for row in summary[:-1]}) == 1, summary
    assert summary[-1] == "2 conversations", summary


def test_replay_times_follow_sla_timezone(files):
    """23:30 UTC: 23:30 on the 22nd in UTC, 07:30 on the 23rd at +08:00, whatever TZ says."""
    _, utc, _ = on_pty("replay", "-c", files["utc"], files["log"], env={"TZ": "Asia/Tokyo"})
    _, cn, _ = on_pty("replay", "-c", files["cn"], files["log"], env={"TZ": "UTC"})
    assert "\x1b[2m11-22 23:30:02\x1b[0m" in utc, repr(utc)    # a terminal: coloured
    utc, cn = ANSI.sub("", utc), ANSI.sub("", cn)
    hit = r"^{} critical 小美 +c-1 +站外引流"
    assert re.search(hit.format("11-22 23:30:02"), utc, re.M), utc
    assert re.search(hit.format("11-23 07:30:02"), cn, re.M), cn

    def stamps(out):
        return [line[:14] for line in out.splitlines()[1:] if line[:2] == "11"]
    assert len(stamps(utc)) == len(stamps(cn)) > 2
    # every alert's hour differs by the 8 hours between the zones
    assert all((int(a[6:8]) + 8) % 24 == int(b[6:8]) for a, b in zip(stamps(utc), stamps(cn)))


def test_replay_json_on_a_terminal_when_asked(files):
    code, out, err = on_pty("replay", "-c", files["cn"], "--format", "json", files["log"])
    _, want, _ = piped("replay", "-c", files["cn"], files["log"])
    assert (code, err) == (0, "") and out == want
    alerts = [json.loads(line) for line in out.splitlines()]
    assert alerts[-1]["type"] == "summary"
    assert alerts[0]["ts"].endswith("Z")             # JSON keeps UTC, whatever the zone


def test_replay_pipe_is_json_by_default(files):
    code, out, err = piped("replay", "-c", files["cn"], files["log"])
    assert (code, err) == (0, "")
    assert piped("replay", "-c", files["cn"], "--format", "json", files["log"]) == (code, out, err)
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[-1]["type"] == "summary" and set(rows[-1]["agents"]) == {"bob", "小美"}
    assert any(r.get("category") == "offplatform" for r in rows)
    assert "站外引流" not in out


def test_replay_golden_unchanged_through_a_pipe():
    """The golden files' bytes, by default through a pipe."""
    golden = os.path.join(ROOT, "tests", "replay")
    r = subprocess.run([CHATMON, "replay", "-c", "rules.yaml", "rules.jsonl"], cwd=golden,
                       capture_output=True, timeout=4 * T)
    with open(os.path.join(golden, "rules.expected"), "rb") as f:
        assert r.stdout == f.read()


# --------------------------------------------------------------------------
# usage


@pytest.mark.parametrize("cmd", [["scan", "--rules", RULES], ["replay"]])
@pytest.mark.parametrize("value", ["bogus", "", "TABLE"])
def test_bad_format_is_a_usage_error(cmd, value, files):
    code, out, err = piped(*cmd, "--format", value, files["scan"])
    assert code == 2 and out == "", (code, out)
    assert f"--format: table or json, not '{value}'" in err, err


@pytest.mark.parametrize("cmd", ["scan", "replay"])
def test_help_names_format(cmd):
    code, out, err = piped(cmd, "--help")
    assert code == 0 and "--format" in out and "table" in out, out
