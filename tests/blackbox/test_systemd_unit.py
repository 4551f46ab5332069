"""systemd/chatmond.service, the template systemd/chatmond@.service and the
units of the long-running tool commands, systemd/chatmon-dashboard.service
and systemd/chatmon-notify.service: `systemd-analyze verify` passes on each
unit as installed (binaries and man pages in place), and `systemd-analyze
security` scores each at an exposure of 1.5 or lower; the template is the
single unit but for the lines that name the instance, and the tool units
carry chatmond's sandbox but for the lines that do not apply to them.
systemd need not be running (it is not PID 1 here), so no unit is started
(nor is `chatmon notify` run: verify only needs the binary in place); its
tools must be installed: a missing systemd-analyze is a failure, not a
skip."""

import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT
from test_install import (BIN, DASH_UNIT, NOTIFY_UNIT, PREFIX, SBIN, TEMPLATE, UNIT,
                          make_install, under, unit_entries)

MAX_EXPOSURE = 1.5
SRC_UNIT = os.path.join(ROOT, "systemd", "chatmond.service")
SRC_TEMPLATE = os.path.join(ROOT, "systemd", "chatmond@.service")
SRC_DASH = os.path.join(ROOT, "systemd", "chatmon-dashboard.service")
SRC_NOTIFY = os.path.join(ROOT, "systemd", "chatmon-notify.service")
# what each unit is verified as: the template through an instance of it
VERIFIED = {"chatmond.service": (SRC_UNIT, UNIT), "chatmond@core0.service": (SRC_TEMPLATE, TEMPLATE),
            "chatmon-dashboard.service": (SRC_DASH, DASH_UNIT),
            "chatmon-notify.service": (SRC_NOTIFY, NOTIFY_UNIT)}
# the program each one runs
BINARY = {"chatmond.service": SBIN + "/chatmond", "chatmond@core0.service": SBIN + "/chatmond",
          "chatmon-dashboard.service": BIN + "/chatmon", "chatmon-notify.service": BIN + "/chatmon"}
TOOL_UNITS = {SRC_DASH: "dashboard", SRC_NOTIFY: "notify"}


def analyze():
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing: install the systemd package (tools/deps.sh)")
    return exe


def run(*argv, env=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def root():
    """A DESTDIR install plus the host's targets (sysinit.target, network-online.target,
    ...) so that --root has everything the unit's dependencies name."""
    analyze()
    d = tempfile.mkdtemp(prefix="chatmon-unit-")
    try:
        make_install(d)
        targets = glob.glob("/usr/lib/systemd/system/*.target") or \
            glob.glob("/lib/systemd/system/*.target")
        assert targets, "no systemd targets on this host: is the systemd package installed?"
        sysdir = under(d, "/usr/lib/systemd/system")
        os.makedirs(sysdir, exist_ok=True)
        for t in targets:
            shutil.copy(t, sysdir)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def verify(root, unit="chatmond.service"):
    # man: the Documentation= pages, looked up among the installed ones
    env = dict(os.environ, MANPATH=under(root, PREFIX + "/share/man"), SYSTEMD_PAGER="",
               SYSTEMD_LOG_COLOR="0")
    return run(analyze(), "verify", "--root=" + root, unit, env=env)


@pytest.mark.parametrize("unit", sorted(VERIFIED))
def test_verify(root, unit):
    r = verify(root, unit)
    # any output is a finding (unknown keys are only warnings, with status 0)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr


@pytest.mark.parametrize("unit", sorted(VERIFIED))
def test_verify_sees_a_missing_binary(root, unit):
    """The check above is real: without the binary, verify fails."""
    exe = under(root, BINARY[unit])
    os.rename(exe, exe + ".away")
    try:
        r = verify(root, unit)
    finally:
        os.rename(exe + ".away", exe)
    assert r.returncode != 0 and BINARY[unit] in r.stdout + r.stderr, r.stdout + r.stderr


def exposure(path):
    r = run(analyze(), "security", "--offline=true", "--no-pager", path)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", r.stdout)
    assert m, f"no exposure level in:\n{r.stdout}\n{r.stderr}"
    return float(m.group(1)), r.stdout


@pytest.mark.parametrize("unit", sorted(VERIFIED))
@pytest.mark.parametrize("which", ["repository", "installed"])
def test_security_exposure(root, which, unit):
    src, installed = VERIFIED[unit]
    path = src if which == "repository" else under(root, installed)
    level, out = exposure(path)
    assert level <= MAX_EXPOSURE, f"exposure {level} > {MAX_EXPOSURE}:\n{out}"


def test_unit_directives():
    text = open(SRC_UNIT).read()
    d = {}
    for k, v in unit_entries(text):
        d.setdefault(k, []).append(v)
    one = {k: v[-1] for k, v in d.items()}
    assert one["Type"] == "notify"
    assert one["NotifyAccess"] == "main"
    assert one["Restart"] == "on-failure"
    assert "/bin/kill -HUP $MAINPID" in d["ExecReload"]
    assert re.fullmatch(r"\d+s?", one["WatchdogSec"]) and one["WatchdogSec"] not in ("0", "0s")
    assert one["StateDirectory"] == "chatmon"
    # a static "chatmond" (chatmond.sysusers) when installed, else a transient one
    assert one["DynamicUser"] == "yes" and one["User"] == "chatmond"
    assert one["CapabilityBoundingSet"] == ""
    assert set("AF_INET AF_INET6 AF_UNIX".split()) <= set(one["RestrictAddressFamilies"].split())
    # PCRE2's JIT needs writable-executable memory: the directive stays out, with a comment
    assert "MemoryDenyWriteExecute" not in d
    assert re.search(r"^#.*MemoryDenyWriteExecute", text, re.M)
    assert re.search(r"^#.*-48", text, re.M)
    # the stop timeout leaves room for the default limits.shutdown_grace (5 s)
    m = re.fullmatch(r"(\d+)s?", one["TimeoutStopSec"])
    assert m and int(m.group(1)) > 5


@pytest.mark.parametrize("path", [SRC_UNIT, SRC_TEMPLATE, SRC_DASH, SRC_NOTIFY],
                         ids=os.path.basename)
def test_every_service_directive_is_explained(path):
    """Each paragraph of [Service] that sets something carries a comment."""
    text = open(path).read()
    service = text.split("[Service]", 1)[1].split("\n[", 1)[0]
    for para in re.split(r"\n\s*\n", service):
        lines = [ln for ln in para.strip().splitlines() if ln.strip()]
        sets = [ln for ln in lines if not ln.lstrip().startswith("#")]
        if sets:
            assert any(ln.lstrip().startswith("#") for ln in lines), f"unexplained: {sets}"


def test_template_is_the_unit_per_instance():
    """chatmond@NAME runs /etc/chatmon/NAME.yaml with the single unit's every other
    line: the two cannot drift apart."""
    single = unit_entries(open(SRC_UNIT).read())
    template = unit_entries(open(SRC_TEMPLATE).read())
    d = dict(template)
    assert d["Description"] == "chatmon chat monitor relay (chatmond, instance %i)"
    # the instance's own configuration, for the check, the daemon and the reload's check
    execs = [(k, v) for k, v in template if k.startswith("Exec") and "chatmond" in v]
    assert [k for k, _ in execs] == ["ExecStartPre", "ExecStart", "ExecReload"], execs
    assert all(" -c /etc/chatmon/%i.yaml" in v for _, v in execs), execs
    # one user for all instances (SO_REUSEPORT needs the same uid), the single
    # unit's, so they share the state directory and the key files' group
    assert d["DynamicUser"] == "yes" and d["User"] == "chatmond" == dict(single)["User"]
    as_single = [(k, v.replace("/etc/chatmon/%i.yaml", "/etc/chatmon/chatmond.yaml"))
                 for k, v in template if k != "Description"]
    assert as_single == [(k, v) for k, v in single if k != "Description"]


# chatmond.service's lines that a tool unit leaves out or sets its own way, and why
NOT_FOR_TOOLS = {
    "Description", "Documentation",
    "Type", "NotifyAccess", "WatchdogSec",          # no sd_notify: Type=simple, no watchdog
    "ExecStartPre", "ExecStart", "ExecReload",     # its own command; no -t, no SIGHUP
    "TimeoutStopSec",                              # no sessions to drain
    "LimitNOFILE", "CPUWeight", "MemoryMax", "TasksMax",  # chatmond's sizes
    "StateDirectory", "StateDirectoryMode",        # writes nothing
}


def directives(path):
    d = {}
    for k, v in unit_entries(open(path).read()):
        d.setdefault(k, []).append(v)
    return d


@pytest.mark.parametrize("path", sorted(TOOL_UNITS), ids=os.path.basename)
def test_tool_unit_is_chatmonds_sandbox(path):
    """chatmon-dashboard and chatmon-notify keep every other line of chatmond.service as
    it is there (a directive added to chatmond's sandbox must be added here, or listed
    in NOT_FOR_TOOLS with its reason), and add only what chatmond cannot have."""
    chatmond, tool = directives(SRC_UNIT), directives(path)
    for k, v in chatmond.items():
        if k not in NOT_FOR_TOOLS:
            assert tool.get(k) == v, (k, tool.get(k), v)
    added = set(tool) - set(chatmond)
    # PCRE2's JIT is chatmond's only reason to leave it out: neither tool compiles rules
    assert added == {"MemoryDenyWriteExecute"}, added
    assert tool["MemoryDenyWriteExecute"] == ["yes"]
    one = {k: v[-1] for k, v in tool.items()}
    # a foreground program without sd_notify, restarted when it fails
    assert one["Type"] == "simple"
    assert one["Restart"] == "on-failure"
    if path == SRC_DASH:        # pages' connections, well above the default 1024
        assert one["LimitNOFILE"] == "8192"
    for k in ("NotifyAccess", "WatchdogSec", "ExecStartPre", "ExecReload"):
        assert k not in tool, k
    assert tool["ExecStart"] == [f"/usr/local/bin/chatmon {TOOL_UNITS[path]} "
                                 "-c /etc/chatmon/chatmond.yaml"]
    # chatmond's user, reads only: no directory of its own to write, no write exception
    assert one["DynamicUser"] == "yes" and one["User"] == "chatmond"
    assert one["ProtectSystem"] == "strict"
    for k in ("StateDirectory", "RuntimeDirectory", "CacheDirectory", "LogsDirectory",
              "ConfigurationDirectory", "ReadWritePaths"):
        assert k not in tool, k
    # out to Redis and, for notify, to the robots over HTTPS
    assert {"AF_INET", "AF_INET6"} <= set(one["RestrictAddressFamilies"].split())
    assert one["CapabilityBoundingSet"] == ""
    # bounded; no CPUWeight=, so chatmond's (1000) goes first on a busy CPU
    assert "MemoryMax" in tool and "TasksMax" in tool and "CPUWeight" not in tool
