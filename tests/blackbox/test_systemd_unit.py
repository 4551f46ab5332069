"""systemd/chatmond.service and the template systemd/chatmond@.service:
`systemd-analyze verify` passes on each unit as installed (binaries and man
pages in place), and `systemd-analyze security` scores each at an exposure
of 1.5 or lower; the template is the single unit but for the lines that
name the instance. systemd need not be running (it is not PID 1 here); its
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
from test_install import PREFIX, SBIN, TEMPLATE, UNIT, make_install, under, unit_entries

MAX_EXPOSURE = 1.5
SRC_UNIT = os.path.join(ROOT, "systemd", "chatmond.service")
SRC_TEMPLATE = os.path.join(ROOT, "systemd", "chatmond@.service")
# what each unit is verified as: the template through an instance of it
VERIFIED = {"chatmond.service": (SRC_UNIT, UNIT), "chatmond@core0.service": (SRC_TEMPLATE, TEMPLATE)}


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
    exe = under(root, SBIN + "/chatmond")
    os.rename(exe, exe + ".away")
    try:
        r = verify(root, unit)
    finally:
        os.rename(exe + ".away", exe)
    assert r.returncode != 0 and "chatmond" in r.stdout + r.stderr, r.stdout + r.stderr


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


@pytest.mark.parametrize("path", [SRC_UNIT, SRC_TEMPLATE], ids=os.path.basename)
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
