"""make install / make uninstall into a DESTDIR: every file where the man
pages and the unit say, an operator's configuration never overwritten, man
pages that pass mandoc's lint, and a configuration page that names every key
of docs/configuration.md."""

import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import CHATMOND, DEFAULT_RULES, MINIMAL_RULES, ROOT, SAN, SLOW

PREFIX = "/usr/local"
SBIN = PREFIX + "/sbin"
BIN = PREFIX + "/bin"
MANDIR = PREFIX + "/share/man"
DOCDIR = PREFIX + "/share/doc/chatmon"
PAGEDIR = PREFIX + "/share/chatmon/dashboard"
UNIT = PREFIX + "/lib/systemd/system/chatmond.service"
TEMPLATE = PREFIX + "/lib/systemd/system/chatmond@.service"
# the long-running tool commands, run as chatmond's user: unit -> subcommand
DASH_UNIT = PREFIX + "/lib/systemd/system/chatmon-dashboard.service"
NOTIFY_UNIT = PREFIX + "/lib/systemd/system/chatmon-notify.service"
TOOL_UNITS = {DASH_UNIT: "dashboard", NOTIFY_UNIT: "notify"}
ETC = "/etc/chatmon"
PAGES = {"chatmon.1": "man1", "chatmond.yaml.5": "man5", "chatmond.8": "man8"}


def make_env():
    """The environment for a make of our own: none of a calling make's flags or jobserver."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(k, None)
    return env


def make(target, destdir, *extra, user=None, timeout=600, top=None):
    """Runs `make -s TARGET DESTDIR=… PREFIX=/usr/local` at the top of the tree."""
    argv = ["make", "-s", "-C", top or ROOT, *extra, target, "DESTDIR=" + str(destdir),
            "PREFIX=" + PREFIX]
    if SAN:
        argv.append("SAN=1")      # the sanitizer pass installs the binaries it already built
    if user is not None:          # (uid, gid)
        argv = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups"] + argv
    r = subprocess.run(argv, capture_output=True, text=True, env=make_env(),
                       stdin=subprocess.DEVNULL, timeout=timeout * SLOW)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def make_install(destdir):
    return make("install", destdir)


def under(destdir, path):
    return os.path.join(str(destdir), path.lstrip("/"))


def man_source(destdir, page):
    return under(destdir, f"{MANDIR}/{PAGES[page]}/{page}")


def section(text, name):
    """The mdoc source of section NAME (.Sh NAME up to the next .Sh)."""
    m = re.search(r"^\.Sh " + re.escape(name) + r"\n(.*?)(?=^\.Sh |\Z)", text, re.M | re.S)
    return m.group(1) if m else ""


def files_section_paths(text):
    """Every `.It Pa PATH` of the FILES section."""
    return re.findall(r"^\.It Pa (\S+)", section(text, "FILES"), re.M)


def unit_entries(text):
    """[(key, value)] of the unit's directives, comments and section headers left out."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        k, _, v = line.partition("=")
        out.append((k.strip(), v.strip()))
    return out


@pytest.fixture(scope="module")
def dest():
    d = tempfile.mkdtemp(prefix="chatmon-install-")
    try:
        make_install(d)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sysusers_makes_the_units_user(dest):
    """The user the units name (User=chatmond) is what systemd-sysusers makes of the
    installed file: files only chatmond may read are given to its group."""
    conf = under(dest, PREFIX + "/lib/sysusers.d/chatmond.conf")
    r = subprocess.run(["systemd-sysusers", "--root=" + str(dest), conf], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    users = [ln.split(":") for ln in open(under(dest, "/etc/passwd"))]
    me = [u for u in users if u[0] == "chatmond"]
    assert me and me[0][2] != "0" and me[0][6].strip().endswith("nologin"), me
    assert [g for g in open(under(dest, "/etc/group")) if g.startswith("chatmond:")]


def test_binaries_and_config(dest):
    for path in (SBIN + "/chatmond", BIN + "/chatmon"):
        st = os.stat(under(dest, path))
        assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o755, path
    assert open(under(dest, ETC + "/chatmond.yaml"), "rb").read() == \
        open(os.path.join(ROOT, "conf", "chatmond.yaml"), "rb").read()
    shipped = sorted(f for f in os.listdir(os.path.join(ROOT, "conf", "rules.d"))
                     if f.endswith(".yaml"))
    assert sorted(os.listdir(under(dest, ETC + "/rules.d"))) == shipped
    # the model the configuration turns on, beside it like the rules
    assert open(under(dest, ETC + "/model/chatmon-ngram.model"), "rb").read() == \
        open(os.path.join(ROOT, "conf", "model", "chatmon-ngram.model"), "rb").read()
    # the dashboard's page, where the binary looks for it by default
    web = os.path.join(ROOT, "web", "dashboard")
    assert sorted(os.listdir(under(dest, PAGEDIR))) == sorted(os.listdir(web))
    for f in os.listdir(web):
        assert open(under(dest, f"{PAGEDIR}/{f}"), "rb").read() == \
            open(os.path.join(web, f), "rb").read(), f
    # the binaries run, and the configuration as installed is good (its rules.d and
    # model are relative)
    r = subprocess.run([under(dest, SBIN + "/chatmond"), "-V"], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert r.returncode == 0 and r.stdout.startswith("chatmond "), (r.stdout, r.stderr)
    r = subprocess.run([under(dest, SBIN + "/chatmond"), "-c", under(dest, ETC + "/chatmond.yaml"),
                        "-t"], capture_output=True, text=True, timeout=60 * SLOW)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([under(dest, BIN + "/chatmon"), "rules", "test", "-c",
                        under(dest, ETC + "/chatmond.yaml")], capture_output=True, text=True,
                       timeout=60 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr


def test_files_where_the_man_pages_say(dest):
    named = {}
    for page in PAGES:
        src = man_source(dest, page)
        st = os.stat(src)
        assert st.st_mode & 0o777 == 0o644, src
        text = open(src, encoding="utf-8").read()
        named[page] = files_section_paths(text)
        assert named[page], f"{page}: no FILES section"
        # FILES, and every other absolute path the page names that install owns
        paths = set(named[page]) | set(re.findall(r"^\.(?:It )?Pa (/\S+)", text, re.M))
        for p in sorted(paths):
            if p.startswith("/var/lib/"):
                continue          # the service's state directory: made by systemd (below)
            if not p.startswith((PREFIX + "/", ETC)):
                continue          # /metrics and the like: not files
            full = under(dest, p)
            if p.endswith("/"):
                assert os.path.isdir(full) and os.listdir(full), f"{page} names {p}: no such dir"
            else:
                assert os.path.isfile(full), f"{page} names {p}: not installed"
    # each page names what it is about
    assert SBIN + "/chatmond" in named["chatmond.8"]
    assert UNIT in named["chatmond.8"]
    assert BIN + "/chatmon" in named["chatmon.1"]
    assert ETC + "/chatmond.yaml" in named["chatmond.yaml.5"]
    assert ETC + "/rules.d/" in named["chatmond.yaml.5"]
    # /var/lib/chatmon is the unit's StateDirectory
    unit = dict(unit_entries(open(under(dest, UNIT)).read()))
    for page, paths in named.items():
        for p in paths:
            if p.startswith("/var/lib/"):
                assert unit.get("StateDirectory") == p[len("/var/lib/"):].split("/")[0], (page, p)
    # the docs
    assert os.path.isfile(under(dest, DOCDIR + "/README.md"))
    for f in os.listdir(os.path.join(ROOT, "docs")):
        if f.endswith(".md"):
            assert os.path.isfile(under(dest, f"{DOCDIR}/docs/{f}")), f


@pytest.mark.parametrize("unit,conf", [(UNIT, ETC + "/chatmond.yaml"),
                                       (TEMPLATE, ETC + "/%i.yaml")],
                         ids=["chatmond.service", "chatmond@.service"])
def test_unit_points_at_the_installed_binaries(dest, unit, conf):
    path = under(dest, unit)
    assert os.stat(path).st_mode & 0o777 == 0o644
    entries = unit_entries(open(path).read())
    execs = [(k, v) for k, v in entries if k in ("ExecStartPre", "ExecStart", "ExecReload")]
    assert {k for k, _ in execs} == {"ExecStartPre", "ExecStart", "ExecReload"}, execs
    for k, v in execs:
        argv = v.lstrip("-@:+!").split()
        if argv[0] in ("/bin/kill", "/usr/bin/kill"):
            assert argv[1:] == ["-HUP", "$MAINPID"], (k, v)
            continue
        assert argv[0] == SBIN + "/chatmond", (k, v)
        assert os.access(under(dest, argv[0]), os.X_OK), (k, v)
        assert argv[1] == "-c" and argv[2] == conf, (k, v)
        if "%i" not in conf:
            assert os.path.isfile(under(dest, argv[2])), (k, v)
        assert ("-t" in argv) == (k != "ExecStart"), (k, v)


@pytest.mark.parametrize("unit", sorted(TOOL_UNITS), ids=os.path.basename)
def test_tool_unit_points_at_the_installed_chatmon(dest, unit):
    """chatmon-dashboard and chatmon-notify run the installed chatmon on the installed
    configuration, and nothing else (no check before start, no reload). Only the
    path is checked, never run: `chatmon notify` may be newer than this tree."""
    path = under(dest, unit)
    assert os.stat(path).st_mode & 0o777 == 0o644
    entries = unit_entries(open(path).read())
    execs = [(k, v) for k, v in entries if k.startswith("Exec")]
    assert [k for k, _ in execs] == ["ExecStart"], execs
    argv = execs[0][1].split()
    assert argv == [BIN + "/chatmon", TOOL_UNITS[unit], "-c", ETC + "/chatmond.yaml"], argv
    assert os.access(under(dest, argv[0]), os.X_OK)
    assert os.path.isfile(under(dest, argv[3]))
    # chatmond's user: the files given to its group are readable
    assert dict(entries)["User"] == dict(unit_entries(open(under(dest, UNIT)).read()))["User"]


def test_man_pages_lint(dest):
    mandoc = shutil.which("mandoc")
    assert mandoc, "mandoc is missing: apt-get install mandoc (tools/deps.sh lists it)"
    for page in PAGES:
        src = man_source(dest, page)
        # warnings and worse; STYLE notes depend on which other manuals the host has
        r = subprocess.run([mandoc, "-T", "lint", "-W", "warning", src], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
            r.stdout + r.stderr
        r = subprocess.run([mandoc, "-T", "utf8", src], capture_output=True, text=True,
                           timeout=30)
        shown = re.sub(".\b", "", r.stdout)          # no overstrike bold
        assert r.returncode == 0 and "NAME" in shown and "FILES" in shown, r.stderr
        if shutil.which("groff"):
            # -k: preconv, as man(1) does, for the Chinese examples
            r = subprocess.run(["groff", "-k", "-Tutf8", "-mdoc", "-z", "-ww", src],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_config_page_has_every_key():
    """Every key of docs/configuration.md's table is in chatmond.yaml(5) with its default
    and whether a reload applies it."""
    doc = open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    keys = []
    for line in doc.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if line.startswith("|") and len(cells) == 5 and re.fullmatch(r"`[a-z_.]+`", cells[0]):
            keys.append(cells[0].strip("`"))
    assert len(keys) >= 39, keys
    page = open(os.path.join(ROOT, "man", "chatmond.yaml.5"), encoding="utf-8").read()
    entries = {}
    for m in re.finditer(r"^\.It Cm ([a-z_.]+) :(.*?)(?=^\.It |^\.El)", page, re.M | re.S):
        entries[m.group(1)] = m.group(2)
    missing = [k for k in keys if k not in entries]
    assert not missing, f"chatmond.yaml.5 lacks {missing}"
    for k in keys:
        assert "Default" in entries[k] and "Reload:" in entries[k], k


def test_documented_values_are_accepted(tmp_path):
    """What docs/configuration.md writes, chatmond takes: each end of a
    duration key's range ("1s to 720h") is a duration, and the shops:
    example (its packs stubbed) passes `chatmond -t` (found by review: "1s to
    30d" and "10 min" are no durations, and the example switched off a rule
    the shipped pack does not have)."""
    doc = open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    conf = tmp_path / "c.yaml"
    conf.write_text(f"rules: {MINIMAL_RULES}\n")
    ends = []
    for m in re.finditer(r"^\| `([a-z_.]+)` \| duration \|.*$", doc, re.M):
        for r in re.finditer(r"(\d[\d.]*\s?[a-z]+) to (\d[\d.]*\s?[a-z]+)", m.group(0)):
            ends += [(m.group(1), r.group(1)), (m.group(1), r.group(2))]
    assert any(k == "history.ttl" for k, _ in ends), ends
    for key, value in ends:
        r = subprocess.run([CHATMOND, "-t", "-c", str(conf), "-o", f"{key}={value}"],
                           capture_output=True, text=True, timeout=30 * SLOW)
        assert "bad duration" not in r.stderr and "out of range" not in r.stderr, \
            (key, value, r.stderr)
    i = doc.index("\nshops:\n", doc.index("## Many shops"))
    example = doc[doc.rindex("```yaml\n", 0, i) + 8:doc.index("```", i)]
    (tmp_path / "packs").mkdir()
    for n, pack in enumerate(re.findall(r"rules: \[(packs/[^]]+)\]", example)):
        (tmp_path / pack).write_text(
            f"- rule: stub.r{n}\n  category: stock\n  severity: info\n"
            "  action: flag\n  pattern: 'zzqq'\n  message: x\n"
            "  examples:\n    match: [zzqq]\n    no_match: [qqzz]\n")
    conf.write_text(f"rules: {DEFAULT_RULES}\n" + example, encoding="utf-8")
    r = subprocess.run([CHATMOND, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=60 * SLOW)
    assert r.returncode == 0, example + r.stderr


def test_second_install_keeps_the_operators_files(dest):
    conf = under(dest, ETC + "/chatmond.yaml")
    rules = under(dest, ETC + "/rules.d")
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    edited = open(conf).read()
    first = sorted(os.listdir(rules))
    os.remove(os.path.join(rules, first[-1]))          # the operator dropped a rule file
    with open(os.path.join(rules, "local.yaml"), "w") as f:
        f.write("[]\n")
    model = under(dest, ETC + "/model/chatmon-ngram.model")
    with open(model, "ab") as f:
        f.write(b"retrained")                          # the operator's own model
    retrained = open(model, "rb").read()
    chatmon = under(dest, BIN + "/chatmon")
    with open(chatmon, "wb") as f:
        f.write(b"stale")                              # a program, unlike a config, is replaced

    make_install(dest)

    assert open(conf).read() == edited
    assert sorted(os.listdir(rules)) == sorted(first[:-1] + ["local.yaml"])
    assert open(model, "rb").read() == retrained
    assert os.path.getsize(chatmon) > 1000


def test_uninstall_keeps_config():
    """Its own tree: it must not depend on what the tests above edited."""
    dest = tempfile.mkdtemp(prefix="chatmon-uninstall-")
    try:
        make_install(dest)
        with open(under(dest, ETC + "/chatmond.yaml"), "a") as f:
            f.write("# edited by the operator\n")
        make("uninstall", dest)
        for p in (SBIN + "/chatmond", BIN + "/chatmon", UNIT, TEMPLATE, *TOOL_UNITS, DOCDIR,
                  PAGEDIR,
                  *(f"{MANDIR}/{sec}/{page}" for page, sec in PAGES.items())):
            assert not os.path.exists(under(dest, p)), p
        assert os.path.isfile(under(dest, ETC + "/chatmond.yaml"))
        assert "# edited by the operator" in open(under(dest, ETC + "/chatmond.yaml")).read()
        assert os.listdir(under(dest, ETC + "/rules.d"))
        assert os.path.isfile(under(dest, ETC + "/model/chatmon-ngram.model"))
    finally:
        shutil.rmtree(dest, ignore_errors=True)


def readable_by_others(path):
    """Whether a user with no relation to the tree's owner can read it."""
    p = os.path.abspath(path)
    while True:
        if os.stat(p).st_mode & 0o005 != 0o005:
            return False
        if p == "/":
            return True
        p = os.path.dirname(p)


def test_install_as_non_root():
    """DESTDIR installs need no privilege: no chown, no systemctl."""
    d = tempfile.mkdtemp(prefix="chatmon-install-user-")
    try:
        if os.geteuid() == 0:
            assert shutil.which("setpriv"), "setpriv (util-linux) is missing"
            top = ROOT
            os.chmod(d, 0o755)
            if not readable_by_others(ROOT):
                # a clone in a private directory (mktemp's 0700): nobody
                # installs from a readable copy of what install reads
                top = os.path.join(d, "tree")
                os.makedirs(os.path.join(top, SAN and "build-san" or "build"))
                for item in ("Makefile", "README.md", "conf", "docs", "man", "systemd",
                             "tools", "web"):
                    src = os.path.join(ROOT, item)
                    (shutil.copytree if os.path.isdir(src) else shutil.copy)(
                        src, os.path.join(top, item))
                for b in ("chatmond", "chatmon"):
                    shutil.copy(os.path.join(ROOT, SAN and "build-san" or "build", b),
                                os.path.join(top, SAN and "build-san" or "build", b))
                assert readable_by_others(top)
            nobody = pwd.getpwnam("nobody")
            dest = os.path.join(d, "dest")
            os.makedirs(dest)
            os.chown(dest, nobody.pw_uid, nobody.pw_gid)
            # -o all: the tree is built (by root); nobody may not write build/
            make("install", os.path.join(dest, "root"), "-o", "all",
                 user=(nobody.pw_uid, nobody.pw_gid), top=top)
            d_root = os.path.join(dest, "root")
        else:
            make("install", os.path.join(d, "root"))
            d_root = os.path.join(d, "root")
        for p in (SBIN + "/chatmond", BIN + "/chatmon", UNIT, *TOOL_UNITS,
                  ETC + "/chatmond.yaml", f"{MANDIR}/man8/chatmond.8"):
            assert os.path.isfile(under(d_root, p)), p
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_install_to_another_prefix_rebuilds_the_paths_compiled_in(tmp_path):
    """`make && make install PREFIX=/opt/cm SYSCONFDIR=/opt/cm/etc`: the
    binaries installed look for the configuration and the dashboard's page
    where install put them (found by review: the objects were not built
    again, so chatmon looked in /usr/local/share for its page, and
    chatmon-dashboard.service would fail for ever). Done in a copy of the
    built tree, so that the tests' own binaries stay as they are."""
    if SAN:
        pytest.skip("the Makefile's paths, not the binaries: the plain pass checks them")
    top = tmp_path / "tree"
    top.mkdir()
    for item in ("Makefile", "README.md", "conf", "docs", "include", "man", "src", "systemd",
                 "third_party", "tools", "web"):
        src = os.path.join(ROOT, item)
        if os.path.isdir(src):
            shutil.copytree(src, top / item, symlinks=True)
        else:
            shutil.copy2(src, top / item)
    # the objects, with their times; libwebsockets (build/deps) is only read
    shutil.copytree(os.path.join(ROOT, "build"), top / "build", symlinks=True,
                    ignore=lambda d, names: ["deps"] if os.path.samefile(d, os.path.join(ROOT, "build")) else [])
    os.symlink(os.path.join(ROOT, "build", "deps"), top / "build" / "deps")
    dest = tmp_path / "dest"
    argv = ["make", "-s", "-C", str(top), "install", "DESTDIR=" + str(dest),
            "PREFIX=/opt/cm", "SYSCONFDIR=/opt/cm/etc"]
    r = subprocess.run(argv, capture_output=True, text=True, env=make_env(),
                       stdin=subprocess.DEVNULL, timeout=600 * SLOW)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    chatmon = under(dest, "/opt/cm/bin/chatmon")
    chatmond = under(dest, "/opt/cm/sbin/chatmond")
    assert os.path.isfile(under(dest, "/opt/cm/share/chatmon/dashboard/index.html"))
    assert os.path.isfile(under(dest, "/opt/cm/etc/chatmon/chatmond.yaml"))
    blob = open(chatmon, "rb").read()
    assert b"/opt/cm/share/chatmon/dashboard" in blob
    assert b"/usr/local/share/chatmon" not in blob
    assert b"/opt/cm/etc/chatmon/chatmond.yaml" in blob
    assert b"/opt/cm/share/chatmon/dashboard" in open(chatmond, "rb").read()
    # the tree's own build is untouched: still /usr/local
    assert b"/usr/local/share/chatmon/dashboard" in open(
        os.path.join(ROOT, "build", "chatmon"), "rb").read()
