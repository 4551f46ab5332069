"""Who may connect (docs/security.md): wss:// on the listening side with a
certificate that a SIGHUP rotates without dropping anyone, wss:// upstream
with the backend's certificate and name verified, Origin allow-lists (403),
agent ids validated (400), X-Forwarded-For and identity headers honoured
only from trusted proxies, and agent identities from JWTs (401 when the
token is missing, expired, forged, for another audience or unsigned).

The certificates come from a test CA made here with the openssl command;
the tokens are signed by PyJWT (python3-jwt), not by chatmond's code."""
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from conftest import CHATMOND, SLOW, T, recv, run, wait_for

# --------------------------------------------------------------------------
# A test CA and its certificates


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d, name="ca"):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
            "-subj", f"/CN=chatmon test {name}", cwd=d)
    return os.path.join(d, f"{name}.pem")


def make_cert(d, name, ca="ca", san="DNS:localhost,IP:127.0.0.1", days=2, rsa=False):
    """(cert, key) paths: a server certificate for san signed by ca (an EC
    key, or RSA: 2048 bits, or as many as rsa says)."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    bits = 2048 if rsa is True else rsa
    newkey = [f"rsa:{bits}"] if rsa else ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    openssl("req", "-newkey", *newkey, "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", str(days),
            "-extfile", f"{name}.ext", cwd=d)
    return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}.key")


@pytest.fixture
def pki(tmp_path):
    d = str(tmp_path / "pki")
    os.mkdir(d)
    make_ca(d)
    make_ca(d, "otherca")
    return d


def client_ctx(ca, maximum=None):
    ctx = ssl.create_default_context(cafile=ca)
    if maximum:
        ctx.maximum_version = maximum
    return ctx


def wss(d, ca, path="/echo?agent=alice", maximum=None, **kw):
    return websockets.connect(f"wss://localhost:{d.port}{path}", ssl=client_ctx(ca, maximum),
                              open_timeout=T, close_timeout=T, ping_interval=None, **kw)


def ws(d, path="/echo?agent=alice", **kw):
    return websockets.connect(f"ws://127.0.0.1:{d.port}{path}", open_timeout=T,
                              close_timeout=T, ping_interval=None, **kw)


async def echoes(c, text="你好"):
    await c.send(text)
    return await recv(c) == text


async def chat(d):
    """One echo through d as alice."""
    async with ws(d) as c:
        return await echoes(c)


async def refused_upstream(d):
    """The close code and reason alice is given when d's upstream is refused."""
    async with ws(d) as c:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as e:
            await c.send("x")
            await recv(c)
        return e.value.rcvd.code, e.value.rcvd.reason


def peer_cn(c):
    """The CN of the certificate the server presented on connection c."""
    cert = c.transport.get_extra_info("ssl_object").getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


def status_of(d, path, **kw):
    """The HTTP status of a ws:// handshake with chatmond (101: upgraded)."""
    async def go():
        try:
            async with ws(d, path, **kw):
                return 101
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
    return run(go())


def admin_port(d):
    return int(re.search(r"^admin: 127\.0\.0\.1:(\d+)$", open(d.conf).read(), re.M).group(1))


def refused(d, reason):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(d)}/metrics", timeout=T) as r:
        text = r.read().decode()
    m = re.search(rf'^chatmon_connections_refused_total{{reason="{reason}"}} (\S+)$', text, re.M)
    assert m, f"no refused series for {reason}"
    return float(m.group(1))


def tls_extra(cert, key, version=None):
    return f"tls:\n  cert: {cert}\n  key: {key}\n" + \
        (f"  min_version: '{version}'\n" if version else "")


# --------------------------------------------------------------------------
# 1. TLS on the listening side


def test_wss_listener_good_and_bad_certificates(daemon, backend, pki):
    """A client that trusts the test CA gets through and chats; one that trusts
    another CA, or speaks plain ws:// to the TLS port, does not; nothing of the
    failed ones reaches the backend."""
    cert, key = make_cert(pki, "srv")
    b = backend()
    d = daemon(b.port, extra=tls_extra(cert, key))

    async def main():
        async with wss(d, os.path.join(pki, "ca.pem")) as c:
            assert peer_cn(c) == "srv"
            assert await echoes(c)
        with pytest.raises(ssl.SSLCertVerificationError):
            async with wss(d, os.path.join(pki, "otherca.pem"), "/echo?agent=mallory"):
                pass
        with pytest.raises((websockets.exceptions.InvalidMessage, OSError, EOFError,
                            websockets.exceptions.InvalidHandshake)):
            async with ws(d, "/echo?agent=plain"):
                pass
    run(main())
    paths = [e["path"] for e in b.count(lambda e: e["ev"] == "open", 1)]
    assert paths == ["/echo?agent=alice"], paths


def test_tls_min_version(daemon, backend, pki):
    """The default floor is TLS 1.2; tls.min_version 1.3 turns 1.2 clients away."""
    cert, key = make_cert(pki, "srv")
    b = backend()
    d12 = daemon(b.port, extra=tls_extra(cert, key))
    d13 = daemon(b.port, extra=tls_extra(cert, key, "1.3"))
    ca = os.path.join(pki, "ca.pem")

    async def main():
        async with wss(d12, ca, maximum=ssl.TLSVersion.TLSv1_2) as c:
            assert c.transport.get_extra_info("ssl_object").version() == "TLSv1.2"
            assert await echoes(c)
        async with wss(d13, ca) as c:
            assert c.transport.get_extra_info("ssl_object").version() == "TLSv1.3"
        with pytest.raises(ssl.SSLError):
            async with wss(d13, ca, maximum=ssl.TLSVersion.TLSv1_2):
                pass
    run(main())


def test_certificate_rotation_keeps_every_agent(daemon, backend, pki):
    """SIGHUP with a new certificate in the same files: the agents already
    connected keep chatting on their connections, new handshakes get the new
    certificate. A reload whose key does not match is rejected whole and the
    certificate in use stays."""
    cert, key = make_cert(pki, "old")
    live_cert, live_key = os.path.join(pki, "live.pem"), os.path.join(pki, "live.key")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    make_cert(pki, "new")
    b = backend()
    d = daemon(b.port, extra=tls_extra(live_cert, live_key))
    ca = os.path.join(pki, "ca.pem")

    async def main():
        agents = [await wss(d, ca, f"/echo?agent=a{i}").__aenter__() for i in range(5)]
        assert all(peer_cn(c) == "old" for c in agents)
        # the new pair, written the way certbot and friends do: new file, rename
        for src, dst in (("new.pem", live_cert), ("new.key", live_key)):
            shutil.copy(os.path.join(pki, src), dst + ".tmp")
            os.rename(dst + ".tmp", dst)
        mark = len(d.log())
        d.signal(signal.SIGHUP)
        d.wait_log(r"new handshakes present the certificate", start=mark)
        assert all([await echoes(c, f"after {i}") for i, c in enumerate(agents)])
        async with wss(d, ca, "/echo?agent=late") as c:
            assert peer_cn(c) == "new"
            assert await echoes(c)
        # a key of another certificate: rejected, "new" stays
        shutil.copy(os.path.join(pki, "old.key"), live_key)
        mark = len(d.log())
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload rejected", start=mark)
        assert "not the key of the certificate" in d.log()[mark:]
        async with wss(d, ca, "/echo?agent=later") as c:
            assert peer_cn(c) == "new"
        assert all([await echoes(c, "still") for c in agents])
        for c in agents:
            await c.close()
    run(main())
    # each upstream closes after its agent: wait for the last (under ASan
    # the assertion once ran before the backend had seen it)
    b.count(lambda e: e["ev"] == "close", 5 + 2)
    assert len(b.select(lambda e: e["ev"] == "close")) == 5 + 2


def handshake_cn(port, ca, *openssl_args):
    """The CN `openssl s_client` is shown with these options, or None when
    the handshake fails."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                        "-CAfile", ca, *openssl_args], input=b"", capture_output=True,
                       timeout=T)
    m = re.search(rb"^subject=.*CN ?= ?(\w+)", r.stdout, re.M)
    return m.group(1).decode() if m else None


def test_rotation_to_another_key_type_serves_only_the_new_pair(daemon, backend, pki):
    """An RSA pair replaced by an EC one on SIGHUP: no new handshake gets
    the old RSA certificate any more, even from a client that offers RSA
    signatures only (TLS 1.3 RSA-PSS, TLS 1.2 ECDHE-RSA): it fails instead."""
    cert, key = make_cert(pki, "old", rsa=True)
    live_cert, live_key = os.path.join(pki, "live.pem"), os.path.join(pki, "live.key")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    make_cert(pki, "new")
    b = backend()
    d = daemon(b.port, extra=tls_extra(live_cert, live_key))
    ca = os.path.join(pki, "ca.pem")
    rsa_only = (("-sigalgs", "rsa_pss_rsae_sha256"),
                ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"))
    assert [handshake_cn(d.port, ca, *a) for a in rsa_only] == ["old", "old"]
    for src, dst in (("new.pem", live_cert), ("new.key", live_key)):
        shutil.copy(os.path.join(pki, src), dst + ".tmp")
        os.rename(dst + ".tmp", dst)
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"new handshakes present the certificate", start=mark)
    assert handshake_cn(d.port, ca) == "new"
    assert handshake_cn(d.port, ca, "-tls1_2") == "new"
    assert [handshake_cn(d.port, ca, *a) for a in rsa_only] == [None, None]

    async def main():
        async with wss(d, ca, "/echo?agent=after") as c:
            assert peer_cn(c) == "new"
            assert await echoes(c)
    run(main())


def test_check_names_the_bad_tls_file(tmp_path, pki):
    """chatmond -t reads the certificate, the key and the CA, and says which
    file is wrong and why, at the line that names it."""
    cert, key = make_cert(pki, "srv")
    other_cert, _ = make_cert(pki, "other")
    cases = [
        (tls_extra(str(tmp_path / "missing.pem"), key),
         r"c\.yaml:\d+: tls\.cert: .*missing\.pem: No such file"),
        (tls_extra(cert, cert), r"c\.yaml:\d+: tls\.key: .*srv\.pem: "),
        (tls_extra(other_cert, key),
         r"c\.yaml:\d+: tls\.key: .*srv\.key: not the key of the certificate"),
        (f"upstream_tls:\n  ca: {key}\n", r"c\.yaml:3: upstream_tls\.ca: .*srv\.key: no certificate"),
        (f"tls:\n  cert: {cert}\n", r"tls\.cert and tls\.key go together"),
    ]
    for text, want in cases:
        conf = tmp_path / "c.yaml"
        conf.write_text(f"rules: {os.path.abspath('tests/blackbox/rules')}\n" + text)
        p = subprocess.run([CHATMOND, "-t", "-c", str(conf)], capture_output=True, text=True)
        assert p.returncode != 0 and re.search(want, p.stderr), (want, p.stderr)
    conf.write_text(f"rules: {os.path.abspath('tests/blackbox/rules')}\n" + tls_extra(cert, key))
    p = subprocess.run([CHATMOND, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def reloads(d, result):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port(d)}/metrics", timeout=T) as r:
        text = r.read().decode()
    return float(re.search(rf'^chatmon_reloads_total{{result="{result}"}} (\S+)$', text,
                           re.M).group(1))


def test_a_pair_openssl_refuses_is_refused_by_check_start_and_reload(daemon, backend, pki,
                                                                     tmp_path):
    """A certificate and key that parse and match but that OpenSSL's security
    level refuses in a listener (RSA of 1024 bits: "ee key too small") is
    refused alike by chatmond -t, at start and by a reload, at tls.cert's
    line. It passed -t, failed the start as "cannot listen" naming no file,
    and a reload to it kept the old pair but applied the rest and counted
    itself done; docs/security.md: a reload whose new pair is wrong is
    rejected whole."""
    weak, weak_key = make_cert(pki, "weak", rsa=1024)
    want = r"\.yaml:\d+: tls\.cert: .*weak\.pem: refused by OpenSSL \(security level " \
        r"\d+\): ee key too small"
    conf = tmp_path / "c.yaml"
    conf.write_text(f"rules: {os.path.abspath('tests/blackbox/rules')}\n" +
                    tls_extra(weak, weak_key))
    p = subprocess.run([CHATMOND, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10 * SLOW)
    assert p.returncode == 1 and re.search(want.replace(r"\d+", "3", 1), p.stderr), p.stderr

    b = backend()
    d = daemon(b.port, extra=tls_extra(weak, weak_key), wait=False)
    assert d.proc.wait(10 * SLOW) != 0
    d.exit_code = d.proc.returncode
    assert re.search(want, d.log()) and "cannot listen" not in d.log(), d.log()

    cert, key = make_cert(pki, "srv")
    live_cert, live_key = os.path.join(pki, "live.pem"), os.path.join(pki, "live.key")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    d = daemon(b.port, extra=tls_extra(live_cert, live_key))
    with open(d.conf, encoding="utf-8") as f:
        text = f.read()
    ca = os.path.join(pki, "ca.pem")
    shutil.copy(weak, live_cert)
    shutil.copy(weak_key, live_key)
    # the same reload would also start refusing other origins
    d.write_config(text + "allowed_origins: [https://wb.example.com]\n")
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload rejected", start=mark)
    assert re.search(r"tls\.cert: .*live\.pem: refused by OpenSSL .*ee key too small",
                     d.log()[mark:]), d.log()[mark:]
    assert "configuration reloaded" not in d.log()[mark:]
    assert reloads(d, "ok") == 0 and reloads(d, "failed") == 1

    async def main():
        async with wss(d, ca, "/echo?agent=after", origin="https://evil.example") as c:
            assert peer_cn(c) == "srv"
            assert await echoes(c)
    run(main())


def test_tls_files_that_would_block_are_refused(daemon, backend, pki, tmp_path):
    """tls.cert, tls.key and upstream_tls.ca are read as the rules are: a
    FIFO nobody writes to, a directory or a huge file is refused at its
    line, at once. Opened with fopen, the FIFO hung `chatmond -t` for good,
    and a SIGHUP froze the event loop: every chat and SIGTERM with it."""
    cert, key = make_cert(pki, "srv")
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    big = tmp_path / "big.pem"
    with open(big, "wb") as f:
        f.truncate(5 << 20)
    cases = [
        (tls_extra(fifo, key), r"c\.yaml:3: tls\.cert: .*fifo: empty"),
        (tls_extra(cert, str(tmp_path)), r"c\.yaml:4: tls\.key: .*: not a regular file"),
        (f"upstream_tls:\n  ca: {big}\n", r"c\.yaml:3: upstream_tls\.ca: .*big\.pem: larger than"),
        (f"upstream_tls:\n  ca: {fifo}\n", r"c\.yaml:3: upstream_tls\.ca: .*fifo: empty"),
    ]
    conf = tmp_path / "c.yaml"
    for text, want in cases:
        conf.write_text(f"rules: {os.path.abspath('tests/blackbox/rules')}\n" + text)
        p = subprocess.run([CHATMOND, "-t", "-c", str(conf)], capture_output=True, text=True,
                           timeout=10 * SLOW)
        assert p.returncode == 1 and re.search(want, p.stderr), (want, p.stderr)
    # a reload that meets the FIFO is rejected, and the loop goes on
    live_key = os.path.join(pki, "live.key")
    shutil.copy(key, live_key)
    b = backend()
    d = daemon(b.port, extra=tls_extra(cert, live_key))
    ca = os.path.join(pki, "ca.pem")
    os.remove(live_key)
    os.mkfifo(live_key)
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload rejected", start=mark)
    assert re.search(r"tls\.key: .*live\.key: empty", d.log()[mark:]), d.log()[mark:]

    async def main():
        async with wss(d, ca, "/echo?agent=after") as c:
            assert await echoes(c)
    run(main())


# --------------------------------------------------------------------------
# 2. wss:// upstream


def test_wss_upstream_verified_by_name_and_ca(daemon, backend, pki):
    """A backend whose certificate the configured CA signed for the name in
    upstream is reached (SNI names it); one with a certificate of another CA,
    or for another name, is refused and the agent is told; verify: false
    accepts both (documented as for tests only)."""
    good = make_cert(pki, "backend")
    foreign = make_cert(pki, "foreign", ca="otherca")
    wrong_name = make_cert(pki, "elsewhere", san="DNS:elsewhere.example")
    ca = os.path.join(pki, "ca.pem")

    def up(cert):
        return backend("--tls-cert", cert[0], "--tls-key", cert[1])

    b = up(good)
    d = daemon(upstream=f"wss://localhost:{b.port}/", extra=f"upstream_tls:\n  ca: {ca}\n")
    assert run(chat(d))
    assert b.wait(lambda e: e["ev"] == "sni")["name"] == "localhost"

    # the agent and the log are told OpenSSL's reason (lws said only
    # "connect SSL err 1: error:00000001:lib(0)::reason(1)")
    for cert, why in ((foreign, "unable to get local issuer certificate"),
                      (wrong_name, "hostname mismatch")):
        bad = up(cert)
        d2 = daemon(upstream=f"wss://localhost:{bad.port}/", extra=f"upstream_tls:\n  ca: {ca}\n")
        assert run(refused_upstream(d2)) == \
            (1013, f"upstream unavailable: certificate verify failed: {why}")
        d2.wait_log(rf"session_up_failed: agent=alice: upstream localhost:{bad.port}: "
                    rf"certificate verify failed: {why}$")
        assert not bad.select(lambda e: e["ev"] == "open")
        d3 = daemon(upstream=f"wss://localhost:{bad.port}/",
                    extra=f"upstream_tls:\n  ca: {ca}\n  verify: false\n")
        assert run(chat(d3))


def test_wss_upstream_by_ipv6_address_verified(daemon, backend, pki):
    """A backend named by its IPv6 address (wss://[::1]:PORT/) is verified
    against the address in its certificate and sent no SNI (RFC 6066: an
    address is no host name); Host carries the address in brackets. lws
    4.1.6 cut the name at its first colon ("[" and nothing), so that no
    certificate matched and every agent was closed with 1013. A
    certificate for another address is still refused."""
    good = make_cert(pki, "v6", san="IP:::1")
    other = make_cert(pki, "v6other", san="IP:::2,DNS:localhost")
    ca = os.path.join(pki, "ca.pem")
    b = backend("--host", "::1", "--tls-cert", good[0], "--tls-key", good[1])
    d = daemon(upstream=f"wss://[::1]:{b.port}/", extra=f"upstream_tls:\n  ca: {ca}\n")
    assert run(chat(d))
    assert [e["name"] for e in b.select(lambda e: e["ev"] == "sni")] in ([], [None])
    headers = dict((k.lower(), v) for k, v in b.opened("agent=alice")["headers"])
    assert headers["host"] == f"[::1]:{b.port}", headers

    bad = backend("--host", "::1", "--tls-cert", other[0], "--tls-key", other[1])
    d2 = daemon(upstream=f"wss://[::1]:{bad.port}/", extra=f"upstream_tls:\n  ca: {ca}\n")
    assert run(refused_upstream(d2)) == \
        (1013, "upstream unavailable: certificate verify failed: IP address mismatch")
    assert not bad.select(lambda e: e["ev"] == "open")


def test_upstream_ca_changed_by_a_reload_is_kept_and_said(daemon, backend, pki):
    """upstream_tls.ca is read once, at start (docs/configuration.md: a
    restart): a SIGHUP that names another CA reloads the rest, logs that
    the CA is kept, and chats still reach the backend the kept CA trusts."""
    good = make_cert(pki, "backend")
    ca, other = os.path.join(pki, "ca.pem"), os.path.join(pki, "otherca.pem")
    b = backend("--tls-cert", good[0], "--tls-key", good[1])
    d = daemon(upstream=f"wss://localhost:{b.port}/", extra=f"upstream_tls:\n  ca: {ca}\n",
               level="info")
    with open(d.conf, encoding="utf-8") as f:
        text = f.read()
    assert ca in text
    mark = len(d.log())
    d.write_config(text.replace(ca, other))
    d.signal(signal.SIGHUP)
    d.wait_log(r"main: reload: configuration reloaded", T, mark)
    assert f"main: reload: upstream_tls.ca cannot change live, keeping {ca}" in d.log()[mark:]
    assert run(chat(d))


def long_name(n, tail=".example.com"):
    """A valid DNS name of n bytes (labels of at most 63) ending in tail."""
    head, i = "", 0
    while len(head) + len(tail) < n:
        label = chr(ord("a") + i % 26) * min(63, n - len(tail) - len(head) - (1 if head else 0))
        head += ("." if head else "") + label
        i += 1
    name = head + tail
    assert len(name) == n and all(0 < len(x) <= 63 for x in name.split(".")), name
    return name


def private_hosts(tmp_path, *names):
    """A wrap for daemon(): chatmond in a mount namespace of its own, where
    /etc/hosts names each of names 127.0.0.1 (nothing outside it changes).
    Needs root, as this machine's test runs have; skips without."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("a private /etc/hosts needs root and unshare")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {n}\n" for n in names))
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
    if subprocess.run([*wrap, "getent", "hosts", names[0]], capture_output=True).returncode:
        pytest.skip("unshare -m cannot give chatmond an /etc/hosts of its own here")
    return wrap


def test_upstream_names_of_any_length_go_out_whole(daemon, backend, pki, tmp_path):
    """An upstream name of up to 253 bytes (DNS's longest) is sent whole in
    Host, and over wss:// is verified and sent as SNI whole. lws cut Host at
    128 bytes with its CRLF (the backend answered 400) and verified the name
    cut to 127 bytes: a certificate for the cut name was trusted and the
    agent's chat sent to it."""
    name = long_name(253)
    cut = name[:127]
    assert not cut.endswith(".")
    wrap = private_hosts(tmp_path, name)
    ca = os.path.join(pki, "ca.pem")

    b = backend()
    d = daemon(upstream=f"ws://{name}:{b.port}/", wrap=wrap)
    assert run(chat(d))
    headers = dict((k.lower(), v) for k, v in b.opened("agent=alice")["headers"])
    assert headers["host"] == f"{name}:{b.port}" and headers["upgrade"] == "websocket"

    good = make_cert(pki, "long", san=f"DNS:{name}")
    b = backend("--tls-cert", good[0], "--tls-key", good[1])
    d = daemon(upstream=f"wss://{name}:{b.port}/", extra=f"upstream_tls:\n  ca: {ca}\n",
               wrap=wrap)
    assert run(chat(d))
    assert b.wait(lambda e: e["ev"] == "sni")["name"] == name

    evil = make_cert(pki, "cut", san=f"DNS:{cut}")
    bad = backend("--tls-cert", evil[0], "--tls-key", evil[1])
    d = daemon(upstream=f"wss://{name}:{bad.port}/", extra=f"upstream_tls:\n  ca: {ca}\n",
               wrap=wrap)

    # 1013: refused in the TLS handshake, before any request was written
    # (one sent and refused by the backend is 1011 "upstream refused")
    assert run(refused_upstream(d)) == \
        (1013, "upstream unavailable: certificate verify failed: hostname mismatch")
    assert not bad.select(lambda e: e["ev"] == "open")


# --------------------------------------------------------------------------
# 3. Origin, agent ids, proxies


def test_origin_allow_list(daemon, backend):
    """With allowed_origins set, a browser page of another origin gets 403 before
    anything goes upstream; the listed origin and non-browser clients (no
    Origin) pass. Without the list any origin passes."""
    b = backend()
    d = daemon(b.port, extra="allowed_origins: [https://wb.example.com, 'http://127.0.0.1:8000']\n")
    assert status_of(d, "/echo?agent=evil", origin="https://evil.example") == 403
    assert status_of(d, "/echo?agent=evil2", origin="https://wb.example.com.evil.example") == 403
    assert status_of(d, "/echo?agent=ok", origin="https://wb.example.com") == 101
    assert status_of(d, "/echo?agent=ok2", origin="http://127.0.0.1:8000") == 101
    assert status_of(d, "/echo?agent=cli") == 101
    assert refused(d, "origin") == 2
    opened = [e["path"] for e in b.select(lambda e: e["ev"] == "open")]
    assert not [p for p in opened if "evil" in p], opened
    any_origin = daemon(b.port)
    assert status_of(any_origin, "/echo?agent=x", origin="https://evil.example") == 101


def test_a_long_origin_reaches_the_backend_whole(daemon, backend):
    """An agent's Origin of up to 255 bytes (the longest chatmond takes) goes
    to the backend whole: lws cut it at 128 bytes with its CRLF, the next
    header (Upgrade) glued on, and the backend refused the request."""
    origin = "https://" + long_name(247)
    assert len(origin) == 255
    b = backend()
    d = daemon(b.port)

    async def main():
        async with ws(d, "/echo?agent=far", origin=origin) as c:
            assert await echoes(c)
    run(main())
    headers = dict((k.lower(), v) for k, v in b.opened("agent=far")["headers"])
    assert headers["origin"] == origin and headers["upgrade"] == "websocket"


def test_agent_ids_are_validated(daemon, backend):
    """An id that is markup, has spaces or invisible characters, or is too long
    is refused with 400 whatever its source; Chinese names are ids."""
    b = backend()
    d = daemon(b.port)
    for bad in ("%3Cimg%20src%3Dx%3E", "a%20b", "a%E2%80%AEb", "x" * 65, "%FF"):
        assert status_of(d, f"/echo?agent={bad}") == 400, bad
    assert status_of(d, "/echo?agent=%E5%AE%A2%E6%9C%8D%E5%B0%8F%E7%8E%8B") == 101
    assert refused(d, "agent_id") == 5
    h = daemon(b.port, agent_id="header:X-Agent")
    assert status_of(h, "/echo", extra_headers={"X-Agent": "<b>"}) == 400
    assert status_of(h, "/echo", extra_headers={"X-Agent": "bob"}) == 101


def test_control_characters_escaped_in_the_url_are_answered(daemon, backend):
    """A %0A, %0D or %00 in the request's path or query got no HTTP answer
    at all: libwebsockets took the decoded newline for the end of the
    request line and dropped the connection (patch 0021). It is now a 403,
    like any bad escape (%zz), and nothing goes upstream."""
    def status_line(path):
        # lws answers a request it stopped parsing in HTTP/1.0, which
        # python3-websockets will not read: the status line, by hand
        with socket.create_connection(("127.0.0.1", d.port), timeout=T) as c:
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".encode())
            got = b""
            while b"\r\n" not in got and (chunk := c.recv(4096)):
                got += chunk
            return got.split(b"\r\n")[0].decode()

    b = backend()
    d = daemon(b.port)
    for bad in ("/echo?agent=a%0Ab", "/echo?agent=a%0Db", "/echo?agent=a%00b",
                "/a%0Ab?agent=ok", "/echo?t=%09&agent=ok", "/echo?agent=a%zzb"):
        assert re.fullmatch(r"HTTP/1\.[01] 403 Forbidden", status_line(bad)), bad
    assert status_of(d, "/echo?agent=ok&t=ctl") == 101
    b.opened("t=ctl")
    opened = [e["path"] for e in b.select(lambda e: e["ev"] == "open")]
    assert len(opened) == 1 and "t=ctl" in opened[0], opened


def test_forwarded_for_and_identity_headers_only_from_trusted_proxies(daemon, backend):
    """A client's own X-Forwarded-For is dropped unless it comes from a trusted
    proxy; with trusted_proxies set, an identity header from anyone else gets 401."""
    b = backend()
    untrusted = daemon(b.port, extra="trusted_proxies: [10.0.0.0/8]\n",
                       agent_id="header:X-Agent")
    trusted = daemon(b.port, extra="trusted_proxies: [127.0.0.0/8]\n",
                     agent_id="header:X-Agent")
    xff = {"X-Forwarded-For": "203.0.113.7"}
    assert status_of(untrusted, "/echo?via=untrusted",
                     extra_headers={"X-Agent": "bob", **xff}) == 401
    assert refused(untrusted, "untrusted_proxy") == 1
    assert status_of(trusted, "/echo?via=trusted", extra_headers={"X-Agent": "bob", **xff}) == 101
    plain = daemon(b.port)
    assert status_of(plain, "/echo?via=plain&agent=bob", extra_headers=xff) == 101

    def header(path):
        o = b.wait(lambda e: e["ev"] == "open" and e["path"].startswith(path))
        return dict((k.lower(), v) for k, v in o["headers"])["x-forwarded-for"]
    assert header("/echo?via=trusted") == "203.0.113.7, 127.0.0.1"
    assert header("/echo?via=plain") == "127.0.0.1"
    assert not b.select(lambda e: e["ev"] == "open" and "untrusted" in e["path"])


def raw_status(d, path, headers):
    """The status of an upgrade request with exactly these header lines
    (name, value), repeats included."""
    import socket
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{d.port}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13"] + [f"{k}: {v}" for k, v in headers]
    with socket.create_connection(("127.0.0.1", d.port), T) as c:
        c.settimeout(T)
        c.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            more = c.recv(256)
            assert more, f"{path}: closed without an answer"
            head += more
    return int(head.split(b" ", 2)[1])


def test_identity_headers_given_twice_are_refused(daemon, backend, keys):
    """A header chatmond reads (the agent id, the token, the shop) given
    more than once is refused with 400, as a repeated query argument is:
    chatmond read the first and the backend might believe the other (found
    by review: behind a proxy that adds its X-Agent-Id after the client's
    own, "mallory" then "alice" was accepted as mallory). lws keeps each
    custom header given (patch 0028 lists them) and links a known one's
    repeats (Authorization) as fragments."""
    b = backend()
    d = daemon(b.port, agent_id="header:X-Agent-Id", extra="trusted_proxies: [127.0.0.1]\n"
               "shop_id: header:X-Shop\n")
    j = daemon(b.port, agent_id="jwt:header:Authorization",
               extra=jwt_extra(keys["dir"] / "hs.key"))
    tok = token(HS_SECRET, "HS256", sub="amy")
    for path, hdrs, want in (
            ("/echo?case=h1", [("X-Agent-Id", "mallory"), ("X-Agent-Id", "alice")], 400),
            ("/echo?case=h2", [("X-Agent-Id", "alice"), ("x-agent-id", "alice")], 400),
            ("/echo?case=h3", [("X-Agent-Id", "alice"), ("X-Shop", "a"), ("X-Shop", "b")], 400),
            ("/echo?case=h4", [("X-Agent-Id", "alice"), ("X-Other", "1"), ("X-Other", "2"),
                               ("X-Shop", "a")], 101)):
        assert raw_status(d, path, hdrs) == want, (path, hdrs)
    assert refused(d, "agent_id") == 2
    assert refused(d, "shop") == 1
    d.wait_log(r"the agent id source X-Agent-Id is given more than once")
    d.wait_log(r"bad shop id: given more than once")
    d.wait_log(r"agent=alice session=\d+ connected")
    for path, hdrs, want in (
            ("/echo?case=j1", [("Authorization", f"Bearer {tok}"),
                               ("Authorization", f"Bearer {tok}")], 400),
            ("/echo?case=j2", [("Authorization", f"Bearer {tok}")], 101)):
        assert raw_status(j, path, hdrs) == want, (path, hdrs)
    assert refused(j, "token") == 1
    j.wait_log(r"the agent id source Authorization is given more than once")
    b.opened("case=h4")
    b.opened("case=j2")
    opens = sorted(o["path"] for o in b.select(lambda e: e["ev"] == "open"))
    assert opens == ["/echo?case=h4", "/echo?case=j2"], opens


# --------------------------------------------------------------------------
# 4. Agent tokens (JWT)

# the key file's trailing line end is not the key's: a secret ending in random
# bytes that end in \r or \n would be read as another key (1 run in 128)
HS_SECRET = b"k" * 16 + os.urandom(24) + b"k"


def jwks_of(pub, kid):
    n = pub.public_numbers()

    def b64(i, size=None):
        raw = i.to_bytes(size or (i.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    if isinstance(pub, rsa.RSAPublicKey):
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(n.n), "e": b64(n.e)}
    return {"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(n.x, 32), "y": b64(n.y, 32)}


@pytest.fixture
def keys(tmp_path):
    """Key files of every kind, and the private keys that sign for them."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    d = tmp_path / "keys"
    d.mkdir()
    (d / "hs.key").write_bytes(HS_SECRET + b"\n")
    (d / "rsa.pem").write_bytes(rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (d / "keys.jwks").write_text(json.dumps({"keys": [
        jwks_of(rsa_key.public_key(), "r1"), jwks_of(ec_key.public_key(), "e1")]}))
    return {"dir": d, "rsa": rsa_key, "ec": ec_key}


def token(key, alg, sub="alice", kid=None, **claims):
    now = int(time.time())
    body = {"sub": sub, "exp": now + 300, "iat": now, **claims}
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def jwt_extra(keyfile, **auth):
    lines = [f"  jwt_key: {keyfile}"] + [f"  {k}: {v}" for k, v in auth.items()]
    return "auth:\n" + "\n".join(lines) + "\n"


def alerts_of(d):
    return [json.loads(line.split(": debug: alert: ", 1)[1]) for line in d.log().splitlines()
            if ": debug: alert: " in line]


def test_jwt_identity_in_alerts_and_not_forwarded(daemon, backend, keys):
    """A good token's sub is the agent id in the alert; the token is not passed
    on to the backend (neither the query argument nor the header)."""
    b = backend()
    q = daemon(b.port, agent_id="jwt:query:token", extra=jwt_extra(keys["dir"] / "hs.key"))
    h = daemon(b.port, agent_id="jwt:header:Authorization",
               extra=jwt_extra(keys["dir"] / "keys.jwks"))

    async def main():
        tok = token(HS_SECRET, "HS256", sub="客服小王")
        async with ws(q, f"/echo?shop=7&token={tok}") as c:
            await c.send(json.dumps({"type": "message", "conversation": "c1",
                                     "text": "你滚出去"}, ensure_ascii=False))
            warning = json.loads(await recv(c))
            assert warning["type"] == "chatmon.warning", warning
        for key, alg, kid in ((keys["rsa"], "RS256", "r1"), (keys["ec"], "ES256", "e1")):
            tok = token(key, alg, sub=f"bob-{alg}", kid=kid)
            async with ws(h, f"/echo?via={alg}",
                          extra_headers={"Authorization": f"Bearer {tok}"}) as c:
                assert await echoes(c)
    run(main())
    wait_for(lambda: alerts_of(q), 5, "the alert")
    assert alerts_of(q)[0]["agent"] == "客服小王"
    opens = b.count(lambda e: e["ev"] == "open", 3)     # the backend's log may lag
    assert [o["path"] for o in opens] == ["/echo?shop=7", "/echo?via=RS256", "/echo?via=ES256"]
    for o in opens:
        assert "authorization" not in [k.lower() for k, _ in o["headers"]], o
    assert h.wait_log(r"agent=bob-RS256") and h.wait_log(r"agent=bob-ES256")


def test_forward_token_passes_it_on(daemon, backend, keys):
    """auth.forward_token: true: a backend that wants the token gets it as sent."""
    b = backend()
    d = daemon(b.port, agent_id="jwt:header:Authorization",
               extra=jwt_extra(keys["dir"] / "hs.key", forward_token="true"))
    tok = token(HS_SECRET, "HS256", sub="carol")

    async def main():
        async with ws(d, "/echo?fwd=1", extra_headers={"Authorization": f"Bearer {tok}"}) as c:
            assert await echoes(c)
    run(main())
    o = b.wait(lambda e: e["ev"] == "open" and "fwd=1" in e["path"])
    assert dict((k.lower(), v) for k, v in o["headers"])["authorization"] == f"Bearer {tok}"


def test_a_forwarded_query_token_is_not_logged(daemon, backend, keys):
    """With forward_token the token stays in the backend's query; the debug
    line about the connection named that path whole, token and all."""
    b = backend()
    d = daemon(b.port, agent_id="jwt:query:token",
               extra=jwt_extra(keys["dir"] / "hs.key", forward_token="true"))
    tok = token(HS_SECRET, "HS256", sub="dave")

    async def main():
        async with ws(d, f"/echo?fwdq=1&token={tok}") as c:
            assert await echoes(c)
    run(main())
    o = b.wait(lambda e: e["ev"] == "open" and "fwdq=1" in e["path"])
    assert tok in o["path"]
    d.wait_log(r"agent=dave session=\d+ connected from \S+, upstream path /echo\n")
    assert tok.split(".")[2] not in d.log()


def test_bad_tokens_get_401_and_are_not_logged(daemon, backend, keys):
    """Missing, expired, not yet valid, forged, wrong-audience, wrong-issuer,
    unsigned (alg none) and alg-confused tokens: 401 before anything goes
    upstream, each counted; the log says why but never holds the token."""
    b = backend()
    d = daemon(b.port, agent_id="jwt:query:token",
               extra=jwt_extra(keys["dir"] / "keys.jwks", jwt_audience="chatmon",
                               jwt_issuer="https://sso.example", jwt_leeway="5s"))
    rsa_key = keys["rsa"]
    good = dict(aud="chatmon", iss="https://sso.example")
    now = int(time.time())
    pem = (keys["dir"] / "rsa.pem").read_bytes()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = jwt.encode({"sub": "eve", "exp": now + 300, **good}, None, algorithm="none")
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"r1"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(
        {"sub": "eve", "exp": now + 300, **good}).encode()).rstrip(b"=")
    import hashlib
    import hmac
    confused = (head + b"." + body + b"." + base64.urlsafe_b64encode(
        hmac.new(pem, head + b"." + body, hashlib.sha256).digest()).rstrip(b"=")).decode()
    bad = {
        "missing": None,
        "expired": token(rsa_key, "RS256", kid="r1", **{**good, "exp": now - 60}),
        "not yet valid": token(rsa_key, "RS256", kid="r1", nbf=now + 120, **good),
        "forged": token(other, "RS256", kid="r1", **good),
        "audience": token(rsa_key, "RS256", kid="r1", aud="billing", iss=good["iss"]),
        "issuer": token(rsa_key, "RS256", kid="r1", aud="chatmon", iss="https://evil"),
        "alg none": unsigned,
        "alg confusion": confused,
        "garbage": "not.a.token",
    }
    for name, tok in bad.items():
        path = "/echo?case=x" + (f"&token={tok}" if tok else "")
        assert status_of(d, path) == 401, name
    # within the leeway: 3 s expired, 5 s allowed (from now: making the keys
    # and the refusals above can take seconds on a loaded machine)
    assert status_of(d, "/echo?case=leeway&token=" + token(
        rsa_key, "RS256", kid="r1", **{**good, "exp": int(time.time()) - 3})) == 101
    assert refused(d, "token") == len(bad)
    assert not b.select(lambda e: e["ev"] == "open" and "case=x" in e["path"])
    log = d.log()
    for name, tok in bad.items():
        for part in (tok or "").split("."):
            assert len(part) < 8 or part not in log, (name, part)
    for why in ("expired", "not yet valid", "bad signature", "wrong audience", "wrong issuer"):
        assert f"token refused: {why}" in log, why


def test_token_keys_reload_on_sighup(daemon, backend, keys, tmp_path):
    """A new secret in the key file takes effect on SIGHUP: tokens of the old one
    are refused from then on; agents already connected stay."""
    b = backend()
    keyfile = tmp_path / "agents.key"
    keyfile.write_bytes(HS_SECRET)
    d = daemon(b.port, agent_id="jwt:query:token", extra=jwt_extra(keyfile))
    # the key file's trailing line end is not the key's: random bytes ending in
    # \r or \n would be a different key (1 run in 128 did)
    new_secret = os.urandom(39) + b"k"

    async def main():
        c = await ws(d, "/echo?token=" + token(HS_SECRET, "HS256", sub="early")).__aenter__()
        keyfile.write_bytes(new_secret)
        mark = len(d.log())
        d.signal(signal.SIGHUP)
        d.wait_log(r"configuration reloaded", start=mark)
        assert await echoes(c)
        await c.close()
    run(main())
    assert status_of(d, "/echo?token=" + token(HS_SECRET, "HS256")) == 401
    assert status_of(d, "/echo?token=" + token(new_secret, "HS256")) == 101
    # a key file that cannot be read rejects the reload; the keys in use stay
    keyfile.write_bytes(b"short")
    mark = len(d.log())
    d.signal(signal.SIGHUP)
    d.wait_log(r"reload rejected", start=mark)
    assert status_of(d, "/echo?token=" + token(new_secret, "HS256")) == 101


# --------------------------------------------------------------------------
# 5. Redis as an ACL user that may touch only chatmond's keys


def documented_acl():
    """The ACL SETUSER line of docs/security.md, as words."""
    doc = open(os.path.join(os.path.dirname(CHATMOND), "..", "docs", "security.md")).read()
    line = re.search(r"^ACL SETUSER chatmond .*$", doc, re.M).group(0)
    return line.split()[3:]


@pytest.mark.parametrize("takeover", ["1s", "0"])
def test_redis_acl_user(daemon, backend, redis_server, tmp_path, takeover):
    """chatmond logged in as the ACL user of docs/security.md (its keys, its
    channel, its commands) through a rule hit, an SLA round with warn, breach
    and escalation, and the conversations' state (takeover 1s) or the
    snapshots (takeover 0): Redis denied nothing (its ACL LOG is empty), and
    the alerts reached the stream. The snapshots' index upkeep
    (ZREMRANGEBYSCORE) was missing from the line, refused without a word."""
    from test_alerts_redis import LIVE, SHORT_SLA, turn
    r = redis_server(password="admin-pw")
    admin = r.client()
    words = [w if not w.startswith(">") else ">acl-pw" for w in documented_acl()]
    assert admin.execute_command("ACL", "SETUSER", "chatmond", *words) == "OK"
    admin.execute_command("ACL", "LOG", "RESET")
    script = tmp_path / "s.json"
    script.write_text(json.dumps([{"at": 0, "text": turn("s-1", "在吗,这款还有M码吗")}],
                                 ensure_ascii=False), encoding="utf-8")
    b = backend(script="customer.py")
    d = daemon(b.port, rules=LIVE, redis=r.url(),
               args=SHORT_SLA + ["-o", "redis.username=chatmond", "-o", "redis.password=acl-pw",
                                 "-o", f"redis.takeover={takeover}",
                                 "-o", "redis.snapshot=200ms"])

    async def main():
        async with ws(d, f"/script?file={script}&agent=alice") as c:
            sent, kinds = False, set()
            deadline = time.monotonic() + T
            while not {"rule.hit", "sla.breach"} <= kinds:
                assert time.monotonic() < deadline, kinds
                f = json.loads(await recv(c))
                if f["type"] == "message" and not sent:
                    await c.send(turn("r-1", "加我微信,给你便宜"))
                    sent = True
                elif f["type"] == "chatmon.warning":
                    kinds.add(f["alert"]["type"])
            await asyncio.sleep(1.2)        # the escalation
    run(main())
    got = wait_for(lambda: len(admin.xrange("chatmon:alerts:log")) >= 4 and
                   admin.xrange("chatmon:alerts:log"), T, "4 alerts in the stream")
    assert {json.loads(f["alert"])["type"] for _, f in got} >= \
        {"rule.hit", "sla.warn", "sla.breach", "sla.escalate"}
    if takeover == "0":
        wait_for(lambda: admin.keys("chatmon:agents:*"), T, "a snapshot")
        time.sleep(0.5)                     # a few more, each pruning its index
    else:
        assert admin.keys("chatmon:sla:*")  # the conversations' state, by the Lua scripts
    assert admin.execute_command("ACL", "LOG") == [], admin.execute_command("ACL", "LOG")
    assert "NOPERM" not in d.log()


def documented_dashboard_acl():
    """(user name, rules) of the dashboard's ACL SETUSER line of docs/security.md,
    its password CHANGE-ME made dash-pw."""
    doc = open(os.path.join(os.path.dirname(CHATMOND), "..", "docs", "security.md")).read()
    words = re.search(r"^ACL SETUSER chatmon-dashboard .*$", doc, re.M).group(0).split()
    return words[2], [w if not w.startswith(">") else ">dash-pw" for w in words[3:]]


def dashboard_as_acl_user(dashboard, redis_server, tmp_path, drop=()):
    """A Redis with the dashboard's documented ACL user (less the rules in
    drop), the alert stream and the handling hash holding what the
    dashboard reads and prunes, and `chatmon dashboard` logged in to Redis
    as that user, with a supervisor's login: (dashboard, admin client,
    supervisor's cookie, the handling field the prune must take)."""
    from test_dashboard_api import alert, alert_id, login, passwd, past_day
    r = redis_server(password="admin-pw")
    admin = r.client()
    user, rules = documented_dashboard_acl()
    rules = [w for w in rules if w not in drop]
    assert admin.execute_command("ACL", "SETUSER", user, *rules) == "OK"
    admin.execute_command("ACL", "LOG", "RESET")
    day, d0 = past_day(2)
    t = d0 + 9 * 3600 * 1000
    # a past day: a round, a rule hit (the stream's oldest entry), a handled one long gone
    admin.xadd("chatmon:sla:{4}:log", {"k": "a", "ag": "alice", "o": str(t), "at": str(t + 7000),
                                       "f": "1", "c": "k-1"}, id=f"{t + 7000}-0")
    admin.xadd("chatmon:alerts:log", {"alert": json.dumps(alert(7, ms=t + 5000))},
               id=f"{t + 5000}-0")
    gone = alert_id(978307200000, 1)                         # 2001-01-01
    admin.hset("chatmon:alerts:handling", gone,
               json.dumps({"state": "resolved", "by": "x", "at": 978307200000}))
    # the state chatmond keeps: an open round, an instance's document in the index
    now = int(time.time() * 1000)
    admin.zadd("chatmon:sla:{3}:open", {"c-open": now - 5000})
    admin.hset("chatmon:sla:{3}:c:c-open", mapping={"op": "1", "f": "1", "a": "bob",
                                                     "w": "i-1", "m1": str(now - 5000)})
    admin.zadd("chatmon:waiting", {"chatmon:snapshot:i-1:waiting": now + 3600 * 1000})
    users = tmp_path / "users"
    passwd(users, "sup", "sup-pw", "supervisor")
    d = dashboard(r.url(), extra=f"  users: {users}\n",
                  args=["-o", f"redis.username={user}", "-o", "redis.password=dash-pw"])
    return d, admin, login(d, "sup", "sup-pw"), gone, day


def test_dashboard_redis_acl_user(dashboard, redis_server, tmp_path):
    """`chatmon dashboard` logged in as the ACL user of docs/security.md
    (the line read from the page) through the page's feed and the state
    polls, an alert acted on, a whisper note, a conversation, a past day's
    alerts and report, and the prune of the handling hash: Redis denied
    nothing (its ACL LOG is empty). Found by review: the page's list lacked
    HKEYS (the prune, refused silently), SET and XINFO (the report)."""
    from test_dashboard_api import alert, request, xadd
    d, admin, sup, gone, day = dashboard_as_acl_user(dashboard, redis_server, tmp_path)
    a = alert(1)
    xadd(admin, a)

    async def page():
        async with d.feed(extra_headers={"Cookie": f"chatmon_session={sup}"}) as ws:
            seen = set()
            while not {"hello", "handling", "waiting"} <= seen:
                seen.add(json.loads(await asyncio.wait_for(ws.recv(), T))["type"])
    run(page())
    wait_for(lambda: [x for x in request(d, "GET", "/api/alerts", cookie=sup)[2]["alerts"]
                      if x["alert"]["id"] == a["id"]], T, "the alert listed")
    st, _, doc = request(d, "POST", f"/api/alerts/{a['id']}", {"state": "acked"}, cookie=sup)
    assert st == 200, (st, doc)
    st, _, doc = request(d, "POST", "/api/agents/alice/notes",
                         {"conversation": "c-1", "text": "先道歉"}, cookie=sup)
    assert st == 202, (st, doc)
    wait_for(lambda: request(d, "GET", "/api/alerts?state=acked", cookie=sup)[2]["alerts"], T,
             "the handling read back (its audit entry followed)")
    st, _, doc = request(d, "GET", "/api/conversations/c-1", cookie=sup)
    assert st == 200 and len(doc["notes"]) == 1, (st, doc)
    st, _, doc = request(d, "GET", f"/api/alerts?day={day}", cookie=sup)
    assert st == 200 and len(doc["alerts"]) == 1, (st, doc)
    st, _, doc = request(d, "GET", f"/api/report?from={day}", cookie=sup)
    assert st == 200 and doc["agents"][0]["agent"] == "alice", (st, doc)

    def done():
        return (admin.exists(f"chatmon:report:day:{day}") and
                not admin.hexists("chatmon:alerts:handling", gone))
    deadline = time.monotonic() + T     # the day stored and the old handling pruned, or not
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)                     # a few more polls of the page's state
    denied = [dict(zip(e[::2], e[1::2])) for e in admin.execute_command("ACL", "LOG")]
    assert denied == [], [(e["object"], e["reason"], e["count"]) for e in denied]
    assert admin.exists(f"chatmon:report:day:{day}")
    assert not admin.hexists("chatmon:alerts:handling", gone)
    assert "NOPERM" not in d.log()


def test_dashboard_action_refused_by_the_acl_writes_nothing(dashboard, redis_server, tmp_path):
    """A Redis user without XADD: an action is refused whole, 503 "nothing
    was written", and nothing of it is (found by review: the HSET went
    through without its audit entry, and a note was delivered unaudited,
    while the API said nothing was written)."""
    from test_dashboard_api import alert, request, xadd
    d, admin, sup, _, _ = dashboard_as_acl_user(dashboard, redis_server, tmp_path,
                                                drop=("+xadd",))
    a = alert(1)
    xadd(admin, a)
    wait_for(lambda: [x for x in request(d, "GET", "/api/alerts", cookie=sup)[2]["alerts"]
                      if x["alert"]["id"] == a["id"]], T, "the alert listed")
    st, _, doc = request(d, "POST", f"/api/alerts/{a['id']}", {"state": "acked"}, cookie=sup)
    assert st == 503 and "nothing was written" in doc["error"], (st, doc)
    assert admin.hget("chatmon:alerts:handling", a["id"]) is None
    st, _, doc = request(d, "POST", "/api/agents/alice/notes",
                         {"conversation": "c-1", "text": "先道歉"}, cookie=sup)
    assert st == 503 and "nothing was written" in doc["error"], (st, doc)
    assert not admin.exists(f"chatmon:note:{doc['note']}")
    assert not admin.exists("chatmon:notes:pending:alice")
    assert not admin.exists("chatmon:audit") and not admin.exists("chatmon:notes:log")
    assert "may not run XADD" in d.log()


def test_dashboard_prune_refused_is_logged(dashboard, redis_server, tmp_path):
    """A Redis user without HKEYS: the prune is refused, and the dashboard
    says so once, at warn, not at every prune (one each time it connects,
    then every ten minutes)."""
    d, admin, _, gone, _ = dashboard_as_acl_user(dashboard, redis_server, tmp_path,
                                                 drop=("+hkeys",))
    said = "chatmon: warn: dash_audit_prune: redis HKEYS chatmon:alerts:handling: NOPERM"

    def refused():
        """How many HKEYS Redis refused (ACL LOG counts the same refusal in one entry)."""
        for e in admin.execute_command("ACL", "LOG"):
            e = dict(zip(e[::2], e[1::2]))
            if e["object"] == "hkeys":
                return int(e["count"])
        return 0
    wait_for(lambda: said in d.log(), T, f"the refusal logged:\n{d.log()[-2000:]}")
    assert refused() == 1 and admin.hexists("chatmon:alerts:handling", gone)
    # connected again, pruned again: refused again, not said again
    admin.execute_command("CLIENT", "KILL", "USER", documented_dashboard_acl()[0])
    wait_for(lambda: refused() >= 2, 2 * T, "the prune of the next connection refused")
    time.sleep(0.2)
    assert d.log().count("dash_audit_prune:") == 1, d.log()[-3000:]


# --------------------------------------------------------------------------
# 6. The dashboard over TLS, behind logins


def test_dashboard_over_tls_with_logins(dashboard, redis_server, pki, tmp_path):
    """dashboard.tls serves the page, the API and the feed with tls.cert and
    tls.key; the session cookie is then Secure, the page's own https origin may
    open the feed, and another origin may not."""
    import http.client
    cert, key = make_cert(pki, "dash")
    ca = os.path.join(pki, "ca.pem")
    users = tmp_path / "users"
    p = subprocess.run([os.path.join(os.path.dirname(CHATMOND), "chatmon"), "passwd", "-f",
                        str(users), "sup", "supervisor"], input="sup-pw\n", text=True,
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n  tls: true\n"
                  f"tls:\n  cert: {cert}\n  key: {key}\n")
    c = http.client.HTTPSConnection("localhost", d.port, timeout=T, context=client_ctx(ca))
    c.request("POST", "/api/login", body=json.dumps({"user": "sup", "password": "sup-pw"}),
              headers={"Content-Type": "application/json"})
    resp = c.getresponse()
    assert resp.status == 200 and json.loads(resp.read()) == {"user": "sup", "role": "supervisor"}
    cookie = resp.getheader("Set-Cookie")
    attrs = [a.strip() for a in cookie.split(";")]
    assert "Secure" in attrs and "HttpOnly" in attrs and "SameSite=Strict" in attrs, cookie
    sid = attrs[0]

    async def feed(origin):
        try:
            async with websockets.connect(
                    f"wss://localhost:{d.port}/feed", ssl=client_ctx(ca), open_timeout=T,
                    extra_headers={"Cookie": sid}, origin=origin) as ws:
                return json.loads(await ws.recv())["type"]
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
    assert run(feed(f"https://localhost:{d.port}")) == "hello"
    assert run(feed("https://evil.example")) == 403
    # plain http on the TLS port gets nothing
    with pytest.raises((http.client.HTTPException, OSError)):
        plain = http.client.HTTPConnection("127.0.0.1", d.port, timeout=T)
        plain.request("GET", "/api/login")
        plain.getresponse().read()


def test_the_shop_from_a_claim_of_the_verified_token(daemon, backend, keys):
    """Issue 18: shop_id: claim:shop takes the shop from the agent's verified
    token, not from what the URL says; a token without the claim names no
    shop; under shops_unknown: refuse, a token of a shop not configured gets
    403 before anything goes upstream. A long query argument that is neither
    is no reason to refuse."""
    b = backend()
    extra = (jwt_extra(keys["dir"] / "hs.key") + "shop_id: claim:shop\n"
             "shops_unknown: refuse\nshops:\n  tm: {}\n  jd: {}\n")
    d = daemon(b.port, agent_id="jwt:query:token", extra=extra)
    say = json.dumps({"type": "message", "conversation": "c1", "text": "你滚出去"},
                     ensure_ascii=False)

    async def main():
        tok = token(HS_SECRET, "HS256", sub="amy", shop="tm")
        async with ws(d, f"/echo?shop=jd&note={'x' * 300}&token={tok}") as c:
            await c.send(say)
            assert json.loads(await recv(c))["type"] == "chatmon.warning"
            # upstream opened before the agent leaves (closing at once
            # raced the upstream handshake: seen once in 18 runs)
            b.count(lambda e: e["ev"] == "open", 1)
        tok = token(HS_SECRET, "HS256", sub="ben")
        async with ws(d, f"/echo?token={tok}") as c:
            await c.send(say.replace("c1", "c2"))
            assert json.loads(await recv(c))["type"] == "chatmon.warning"
            b.count(lambda e: e["ev"] == "open", 2)
        tok = token(HS_SECRET, "HS256", sub="cat", shop="elsewhere")
        with pytest.raises(Exception) as e:
            async with ws(d, f"/echo?token={tok}"):
                pass
        assert "403" in str(e.value), e.value
    run(main())
    wait_for(lambda: len(alerts_of(d)) == 2, 5, "the two alerts")
    by = {a["agent"]: a for a in alerts_of(d)}
    assert by["amy"]["shop"] == "tm", by
    assert "shop" not in by["ben"], by
    assert d.wait_log(r"shop elsewhere is not configured")
    assert len(b.select(lambda e: e["ev"] == "open")) == 2


def test_a_shop_claim_that_is_no_string_is_refused(daemon, backend, keys):
    """Found by review: a shop claim that is a number, a list or an object
    was taken for no shop, so that under shops_unknown: refuse such an
    agent was let in with no shop (judged by the top-level rules, seen by
    no shop's supervisors). It is refused 400 as a bad shop id; a token
    without the claim, or with "", still names none."""
    b = backend()
    extra = (jwt_extra(keys["dir"] / "hs.key") + "shop_id: claim:shop\n"
             "shops_unknown: refuse\nshops:\n  tm: {}\n")
    d = daemon(b.port, agent_id="jwt:query:token", extra=extra)
    for i, claims in enumerate(({"shop": 7}, {"shop": ["tm"]}, {"shop": {"id": "tm"}},
                                {"shop": None}, {"shop": True})):
        tok = token(HS_SECRET, "HS256", sub="amy", **claims)
        assert status_of(d, f"/echo?case=bad{i}&token={tok}") == 400, claims
    assert refused(d, "shop") == 5
    d.wait_log(r"agent refused \(400\): bad shop id: claim not a string")
    for i, claims in enumerate(({}, {"shop": ""}, {"shop": "tm"})):
        tok = token(HS_SECRET, "HS256", sub="amy", **claims)
        assert status_of(d, f"/echo?case=good{i}&token={tok}") == 101, claims
    assert not b.select(lambda e: e["ev"] == "open" and "case=bad" in e["path"])


def test_an_agents_frame_does_not_change_its_tokens_shop(daemon, backend, keys, tmp_path):
    """With shop_id: claim:shop the verified token is the agent's shop: a
    frame of its own that names another shop (protocol.shop) is not
    believed (found by review: "shop": "shopB" escaped shopA's rules and
    was charged to shopB), and the agent is told of it once in the log. The
    backend's frames still name the shop of a conversation."""
    b = backend()
    extra = (jwt_extra(keys["dir"] / "hs.key") + "shop_id: claim:shop\n"
             "shops_unknown: refuse\nshops:\n  shopA: {}\n"
             "  shopB:\n    rules_off: [abuse.test_phrase]\n")
    d = daemon(b.port, agent_id="jwt:query:token", extra=extra,
               args=["-o", "protocol.shop=/shop"])

    def say(conv, **kw):
        return json.dumps({"type": "message", "conversation": conv, "text": "你滚出去", **kw},
                          ensure_ascii=False)
    cust = tmp_path / "cust.json"
    cust.write_text(json.dumps([{"text": json.dumps(
        {"type": "message", "conversation": "c-cust", "text": "在吗", "shop": "shopB"},
        ensure_ascii=False)}], ensure_ascii=False), encoding="utf-8")

    async def main():
        tok = token(HS_SECRET, "HS256", sub="amy", shop="shopA")
        async with ws(d, f"/echo?token={tok}") as c:
            for conv, kw in (("c-own", {}), ("c-other", {"shop": "shopB"}),
                             ("c-other2", {"shop": "shopB"}), ("c-none", {"shop": "zz"})):
                await c.send(say(conv, **kw))
                f = json.loads(await recv(c))
                assert f["type"] == "chatmon.warning" and f["blocked"] is True, (conv, f)
                assert f["alert"]["shop"] == "shopA", (conv, f)
        # the backend names shopB for its conversation: the agent's reply in it is shopB's
        async with ws(d, f"/say?script={cust}&then=echo&token={tok}") as c:
            f = json.loads(await recv(c))
            assert (f["conversation"], f.get("shop")) == ("c-cust", "shopB"), f
            await c.send(say("c-cust"))
            f = json.loads(await recv(c))
            assert f["type"] == "message" and f["conversation"] == "c-cust", f
    run(main())
    wait_for(lambda: len(alerts_of(d)) == 4, 5, "the four alerts")
    assert [(a["conversation"], a.get("shop")) for a in alerts_of(d)] == \
        [("c-own", "shopA"), ("c-other", "shopA"), ("c-other2", "shopA"), ("c-none", "shopA")]
    told = [l for l in d.log().splitlines() if "its frame names shop" in l]
    assert len(told) == 1 and "agent=amy" in told[0] and '"shopB"' in told[0], told
    assert "not configured (shops_unknown: refuse)" not in d.log()


def test_query_arguments_are_checked_as_the_backend_gets_them(daemon, backend, keys):
    """Every query argument goes to the backend, so chatmond reads every
    one: an empty argument does not hide the ones after it, and the token,
    the agent id, the shop or the queue given twice is refused with 400
    (which one would the backend believe?) before anything goes upstream."""
    b = backend()
    extra = (jwt_extra(keys["dir"] / "hs.key") + "shop_id: query:shop\n"
             "queue_id: query:queue\nshops_unknown: refuse\nshops:\n  s1: {}\n")
    t = daemon(b.port, agent_id="jwt:query:token", extra=extra)
    q = daemon(b.port, agent_id="query:agent")
    tok = token(HS_SECRET, "HS256", sub="amy")
    other = token(HS_SECRET, "HS256", sub="mallory")
    for path, want in (
            (f"/echo?token={tok}&&shop=evil", 403),
            (f"/echo?token={tok}&shop=&shop=evil", 400),
            (f"/echo?token={tok}&shop=s1&shop=evil", 400),
            (f"/echo?token={tok}&shop&shop=evil", 400),
            (f"/echo?token={tok}&shop=s1&queue=a&queue=b", 400),
            (f"/echo?token={tok}&token={other}&shop=s1", 400),
            (f"/echo?&token={tok}&shop=s1&case=empty-first", 101)):
        assert status_of(t, path) == want, path
    assert refused(t, "shop") == 5
    assert refused(t, "token") == 1
    b.opened("case=empty-first")     # its upstream opens after the upgrade
    opens = [o["path"] for o in b.select(lambda e: e["ev"] == "open")]
    assert opens == ["/echo?&shop=s1&case=empty-first"], opens
    t.wait_log(r"agent=amy session=\d+ connected")
    t.wait_log(r"bad shop id: given more than once")

    for path, want in (("/echo?&agent=mallory&case=q1", 101),
                       ("/echo?agent=&agent=mallory&case=q2", 400),
                       ("/echo?agent=alice&agent=mallory&case=q3", 400)):
        assert status_of(q, path) == want, path
    assert refused(q, "agent_id") == 2
    q.wait_log(r"agent=mallory session=\d+ connected")
    b.opened("case=q1")
    opens = [o["path"] for o in b.select(lambda e: e["ev"] == "open" and "case=q" in e["path"])]
    assert opens == ["/echo?&agent=mallory&case=q1"], opens


def token_of_length(n):
    """An HS256 token of exactly n bytes (a pad claim grown to fit)."""
    for pad in range(n * 3 // 4 - 200, n * 3 // 4 + 50):
        for more in ({}, {"q": "a"}, {"q": "ab"}, {"q": "abc"}):
            t = token(HS_SECRET, "HS256", sub="amy", pad="x" * pad, **more)
            if len(t) == n:
                return t
    raise AssertionError(f"no token of {n} bytes")


def test_a_token_of_8_kib_is_taken_from_the_query_and_the_header_alike(daemon, backend,
                                                                       keys):
    """Found by review: a token of 8 186-8 192 bytes was accepted in the
    query and refused in Authorization (its "Bearer " had no room); one
    byte more is refused in both."""
    b = backend()
    q = daemon(b.port, agent_id="jwt:query:token", extra=jwt_extra(keys["dir"] / "hs.key"))
    h = daemon(b.port, agent_id="jwt:header:Authorization",
               extra=jwt_extra(keys["dir"] / "hs.key"))
    for n, want in ((8192, 101), (8193, 401)):
        t = token_of_length(n)
        assert status_of(q, "/echo?token=" + t) == want, n
        assert status_of(h, "/echo", extra_headers={"Authorization": "Bearer " + t}) == want, n


def test_a_token_in_a_header_of_its_own_is_taken_bare(daemon, backend, keys):
    """jwt:header:NAME with a header other than Authorization takes the
    token as the header's value (docs/configuration.md: only Authorization
    takes "Bearer TOKEN"); found by review: it was refused 401 "not a
    Bearer token". "Bearer " before it is taken off too; Authorization
    still wants it."""
    b = backend()
    tok = token(HS_SECRET, "HS256", sub="alice")
    d = daemon(b.port, agent_id="jwt:header:X-Chat-Token",
               extra=jwt_extra(keys["dir"] / "hs.key"))
    assert status_of(d, "/echo?c=bare", extra_headers={"X-Chat-Token": tok}) == 101
    assert status_of(d, "/echo?c=bearer", extra_headers={"X-Chat-Token": "Bearer " + tok}) == 101
    assert status_of(d, "/echo?c=bad", extra_headers={"X-Chat-Token": tok + "x"}) == 401
    a = daemon(b.port, agent_id="jwt:header:Authorization",
               extra=jwt_extra(keys["dir"] / "hs.key"))
    assert status_of(a, "/echo?c=abare", extra_headers={"Authorization": tok}) == 401
    a.wait_log(r"token refused: not a Bearer token")
    assert status_of(a, "/echo?c=abearer", extra_headers={"Authorization": "Bearer " + tok}) == 101


def test_a_token_over_8_kib_gets_401(daemon, backend, keys):
    """A token longer than 8 KiB reaches chatmond and is refused 401 and
    counted, as any bad token; a request head over 16 KiB (what lws holds)
    is answered 431 by lws (patch 0024), and chatmond goes on serving."""
    import socket
    b = backend()
    d = daemon(b.port, agent_id="jwt:query:token", extra=jwt_extra(keys["dir"] / "hs.key"))
    big = token(HS_SECRET, "HS256", sub="amy", pad="x" * 7000)
    assert 9000 < len(big) < 10000
    assert status_of(d, f"/echo?case=big&token={big}") == 401
    assert refused(d, "token") == 1
    d.wait_log(r"agent refused \(401\): the agent id source token is too long")

    c = socket.create_connection(("127.0.0.1", d.port), T)
    c.sendall(f"GET /echo?token={'x' * 17000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    c.settimeout(T)
    answer = c.recv(100)
    c.close()
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer
    d.wait_log(r"lws: Ran out of header data space")
    assert status_of(d, "/echo?case=after&token=" + token(HS_SECRET, "HS256")) == 101
    assert not b.select(lambda e: e["ev"] == "open" and "case=big" in e["path"])
