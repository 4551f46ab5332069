"""The dashboard behind logins (issue 14, part 4; docs/dashboard.md "Logins"):
`chatmon passwd` writing the users file, POST /api/login and its session
cookie, /api/me, logout, 401 for the feed and /api/ without a session, the
rate limit on failed logins per address and per user name, the wallboard
token beside logins, the session's lifetime, the users file read again,
and all that behind a TLS reverse proxy (dashboard.public_url).
Real redis-server, real `chatmon dashboard`, plain HTTP and WebSocket
clients on 127.0.0.1 (and 127.0.0.2/3 as other addresses), through a
small TLS-terminating proxy in Python for the last.
"""

import asyncio
import http.client
import json
import os
import socket
import ssl
import stat
import subprocess
import threading
import time

import pytest
import websockets

from conftest import CHATMON, SLOW, T, free_port, run, wait_for


def passwd(path, user, password, *role, check=True):
    p = subprocess.run([CHATMON, "passwd", "-f", str(path), user, *role],
                       input=password + "\n", capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users"
    passwd(path, "alice", "alice-pw 密码")
    passwd(path, "bob", "bob-pw", "supervisor")
    return path


def request(d, method, path, body=None, cookie=None, ctype="application/json", source="127.0.0.1",
            origin=None):
    """(status, headers as a dict of lists, parsed JSON body or None)."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=T, source_address=(source, 0))
    h = {"Origin": origin} if origin else {}
    if cookie:
        h["Cookie"] = f"chatmon_session={cookie}"
    data = None
    if body is not None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        h["Content-Type"] = ctype
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    raw = r.read()
    hdrs = {}
    for k, v in r.getheaders():
        hdrs.setdefault(k.lower(), []).append(v)
    c.close()
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return r.status, hdrs, doc


def login(d, user, password, source="127.0.0.1"):
    return request(d, "POST", "/api/login", {"user": user, "password": password}, source=source)


def session_of(headers):
    (cookie,) = headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    assert name == "chatmon_session"
    return rest.split(";")[0], [a.strip() for a in cookie.split(";")[1:]]


async def feed_status(d, cookie=None, query=""):
    """The HTTP status of a /feed upgrade (101 when it opened, and its hello)."""
    kw = {"extra_headers": {"Cookie": f"chatmon_session={cookie}"}} if cookie else {}
    try:
        async with d.feed(query, **kw) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            return 101
    except websockets.InvalidStatusCode as e:
        return e.status_code


# ------------------------------------------------------------------ chatmon passwd

def test_passwd(tmp_path):
    path = tmp_path / "users"
    path.write_text("# the shop's dashboard users\n", encoding="utf-8")
    os.chmod(path, 0o600)
    passwd(path, "alice", "one")
    passwd(path, "bob@shop.example", "two", "supervisor")
    first = path.read_text().splitlines()
    assert first[0] == "# the shop's dashboard users"           # kept
    assert first[1].startswith("alice:viewer:$argon2id$v=19$m=65536,t=2,p=1$")
    assert first[2].startswith("bob@shop.example:supervisor:$argon2id$")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "one" not in path.read_text() and "two" not in path.read_text()
    # replace: alice's line only, in its place, new salt
    p = passwd(path, "alice", "three", "supervisor")
    assert "replaced alice" in p.stderr
    second = path.read_text().splitlines()
    assert len(second) == 3 and second[0] == first[0] and second[2] == first[2]
    assert second[1].startswith("alice:supervisor:$argon2id$") and second[1] != first[1]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [f for f in os.listdir(tmp_path)] == ["users"]        # no temporary left
    # refusals change nothing
    before = path.read_bytes()
    for args, password, code, words in (
            (["bad name"], "x", 2, "bad user name"),
            (["a:b"], "x", 2, "bad user name"),
            (["x" * 65], "x", 2, "bad user name"),
            (["carol", "admin"], "x", 2, "unknown role"),
            (["carol"], "", 1, "empty password")):
        p = passwd(path, *args, password, check=False)
        assert p.returncode == code and words in p.stderr, (args, p.returncode, p.stderr)
    assert path.read_bytes() == before
    # an operator's root:GROUP 0640 (the dashboard's user reads it through its
    # group, docs/security.md) is kept; anything for others is not
    os.chown(path, 0, 4)                      # adm: any group other than root's
    os.chmod(path, 0o644)
    passwd(path, "dave", "four")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == 4 and st.st_uid == 0
    # a new file is made, 0600
    fresh = tmp_path / "sub-users"
    passwd(fresh, "x.y_z-1", "pw")
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o600
    # a broken file: said as FILE:LINE, not rewritten
    broken = tmp_path / "broken"
    broken.write_text("alice:viewer:$argon2id$x\nnonsense\n")
    p = passwd(broken, "bob", "pw", check=False)
    assert p.returncode == 1 and f"{broken}:2: want USER:ROLE:HASH" in p.stderr, p.stderr
    assert broken.read_text() == "alice:viewer:$argon2id$x\nnonsense\n"


def test_passwd_runs_at_once_keep_each_others_lines(tmp_path):
    """Found by review: passwd read the file before the password and wrote
    it back with its own line after argon2id, so that three runs at once
    each said "added" and the file held one of them (an edit made while a
    password was typed was undone the same way). The directory is locked
    and the file read again under the lock."""
    path = tmp_path / "users"
    passwd(path, "base", "pw")
    procs = [subprocess.Popen([CHATMON, "passwd", "-f", str(path), f"u{i}"],
                              stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    for p in procs:
        p.stdin.write("pw\n")
        p.stdin.close()
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    names = sorted(line.split(":")[0] for line in path.read_text().splitlines())
    assert names == ["base", "u0", "u1", "u2", "u3"], names
    # a standard input that cannot be read is said so, not "an empty password"
    fd = os.open(tmp_path, os.O_RDONLY)             # a directory: read() fails
    try:
        p = subprocess.run([CHATMON, "passwd", "-f", str(path), "zz"], stdin=fd,
                           capture_output=True, text=True, timeout=30)
    finally:
        os.close(fd)
    assert p.returncode == 1 and "cannot read the password" in p.stderr, p.stderr


def test_every_password_passwd_takes_can_log_in(dashboard, redis_server, tmp_path):
    """chatmon passwd takes what a login can send, and no more: 1 024 bytes
    at most, even of characters JSON escapes six bytes long (they log in),
    UTF-8 without U+0000 only; a longer or unsendable one is refused with
    the reason, not stored to fail at every login (413)."""
    path = tmp_path / "users"
    longest = "\x01" * 1022 + "é"               # é: two bytes
    assert len(longest.encode()) == 1024
    passwd(path, "carol", longest)
    p = passwd(path, "dave", "x" * 1025, check=False)
    assert p.returncode == 1 and "longer than 1024 bytes" in p.stderr, p.stderr
    p = subprocess.run([CHATMON, "passwd", "-f", str(path), "erin"], input=b"pw\xff\n",
                       capture_output=True, timeout=30)
    assert p.returncode == 1 and b"not UTF-8" in p.stderr, p.stderr
    assert "dave" not in path.read_text() and "erin" not in path.read_text()
    d = dashboard(redis_server().url(), extra=f"  users: {path}\n")
    st, _, doc = login(d, "carol", longest)
    assert st == 200 and doc["user"] == "carol", (st, doc)
    st, _, doc = login(d, "carol", longest[:-1])
    assert st == 401, (st, doc)


def test_bad_users_file(dashboard, redis_server, tmp_path):
    r = redis_server()
    bad = tmp_path / "users"
    bad.write_text("alice:viewer:$argon2id$x\nbob:root:$argon2id$y\n")
    d = dashboard(r.url(), extra=f"  users: {bad}\n", wait=False)
    d.exit_code = d.proc.wait(10 * SLOW)
    assert d.exit_code == 1
    assert f"{bad}:2: user bob: unknown role 'root'" in d.log()
    d2 = dashboard(r.url(), extra=f"  users: {tmp_path / 'none'}\n", wait=False)
    d2.exit_code = d2.proc.wait(10 * SLOW)
    assert d2.exit_code == 1
    assert "none: No such file or directory" in d2.log()


# ------------------------------------------------------------------ logins

def test_login_cookie_me_logout(dashboard, redis_server, users):
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    # without a session: /api/ and the feed answer 401; the page still loads
    assert request(d, "GET", "/api/me")[0] == 401
    assert request(d, "GET", "/api/anything")[0] == 401
    assert request(d, "POST", "/api/logout", {})[0] == 401
    assert request(d, "GET", "/api/login")[2] == {"logins": True}
    assert run(feed_status(d)) == 401
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=T)
    c.request("GET", "/")
    assert c.getresponse().status == 200

    # wrong password and unknown user: the same answer
    s1, h1, b1 = login(d, "alice", "wrong")
    s2, h2, b2 = login(d, "mallory", "alice-pw 密码")
    assert (s1, b1) == (s2, b2) == (401, {"error": "wrong user or password"})
    assert "set-cookie" not in h1 and "set-cookie" not in h2
    # the CSRF defence: JSON only
    assert request(d, "POST", "/api/login", '{"user":"alice","password":"alice-pw 密码"}',
                   ctype="text/plain")[0] == 415
    assert request(d, "POST", "/api/login", "user=alice&password=x",
                   ctype="application/x-www-form-urlencoded")[0] == 415
    assert request(d, "POST", "/api/login", "not json")[0] == 400
    assert request(d, "GET", "/api/login")[2] == {"logins": True}

    status, h, body = login(d, "alice", "alice-pw 密码")
    assert status == 200 and body == {"user": "alice", "role": "viewer"}
    sid, attrs = session_of(h)
    assert len(sid) == 43 and all(ch.isalnum() or ch in "-_" for ch in sid)
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
    assert "Max-Age=43200" in attrs                     # dashboard.session_ttl's 12 h
    assert "Secure" not in attrs                        # plain http
    assert request(d, "GET", "/api/me", cookie=sid)[2] == {"user": "alice", "role": "viewer"}
    assert request(d, "GET", "/api/login", cookie=sid)[2] == {
        "logins": True, "user": "alice", "role": "viewer"}
    assert request(d, "GET", "/api/anything", cookie=sid)[0] == 404
    assert request(d, "GET", "/api/me", cookie=sid[:-1] + ("A" if sid[-1] != "A" else "B"))[0] == 401
    status, h, body = login(d, "bob", "bob-pw")
    bob = session_of(h)[0]
    assert body == {"user": "bob", "role": "supervisor"}
    assert request(d, "GET", "/api/me", cookie=bob)[2]["role"] == "supervisor"

    async def main():
        assert await feed_status(d, cookie=sid) == 101
        assert await feed_status(d, cookie="x" * 43) == 401
        # an open feed closes when its login ends
        async with d.feed(extra_headers={"Cookie": f"chatmon_session={sid}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            st, h, body = request(d, "POST", "/api/logout", {}, cookie=sid)
            assert st == 200 and body == {"ok": True}
            assert "Max-Age=0" in h["set-cookie"][0]
            with pytest.raises(websockets.ConnectionClosed) as e:
                while True:
                    await ws.recv()
            assert e.value.rcvd is not None and e.value.rcvd.code == 1008
        assert await feed_status(d, cookie=sid) == 401
        assert await feed_status(d, cookie=bob) == 101     # bob's session is his own
    run(main())
    assert request(d, "GET", "/api/me", cookie=sid)[0] == 401
    log = d.log()
    assert "alice (viewer) logged in from" in log and "alice logged out" in log
    assert "a failed login for alice from" in log and "a failed login for mallory" in log
    assert "alice-pw" not in log and "wrong" not in log.replace("wrong user", "")
    assert sid not in log


def with_cookies(d, method, path, *cookies):
    """(status, parsed body) of a request with each of cookies as a Cookie header of its own."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=T)
    c.putrequest(method, path)
    for v in cookies:
        c.putheader("Cookie", v)
    if method == "POST":
        c.putheader("Content-Type", "application/json")
        c.putheader("Content-Length", "2")
    c.endheaders(b"{}" if method == "POST" else None)
    r = c.getresponse()
    raw = r.read()
    c.close()
    return r.status, json.loads(raw) if raw else None


def test_session_among_other_cookies(dashboard, redis_server, users):
    """The session is found whichever value of chatmon_session is live (a
    browser sends those of other paths too, a stale one may come first),
    after kilobytes of other cookies (lws takes 8 KiB of headers), and in a
    second Cookie header; the feed and logout read it the same way."""
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    sid = session_of(login(d, "alice", "alice-pw 密码")[1])[0]
    me = {"user": "alice", "role": "viewer"}
    for cookie in (f"chatmon_session=AAAA; chatmon_session={sid}",
                   f"chatmon_session={sid}; chatmon_session=AAAA",
                   f"chatmon_session={'x' * 43}; a=1; chatmon_session={sid}",
                   f"chatmon_session={'y' * 200}; chatmon_session={sid}",
                   "x=" + "A" * 5000 + f"; chatmon_session={sid}",
                   "; ".join(f"c{i}=v" for i in range(300)) + f"; chatmon_session={sid}"):
        assert with_cookies(d, "GET", "/api/me", cookie) == (200, me), cookie[:60]
    assert with_cookies(d, "GET", "/api/me", "a=b", f"chatmon_session={sid}") == (200, me)
    assert with_cookies(d, "GET", "/api/me", "chatmon_session=AAAA; a=b") == (
        401, {"error": "not logged in"})

    async def main():
        async with d.feed(extra_headers={"Cookie": f"chatmon_session=AAAA; chatmon_session={sid}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
    run(main())
    assert with_cookies(d, "POST", "/api/logout", "x=" + "A" * 5000,
                        f"chatmon_session=AAAA; chatmon_session={sid}") == (200, {"ok": True})
    assert request(d, "GET", "/api/me", cookie=sid)[0] == 401


def test_a_users_logins_end_only_their_own_sessions(dashboard, redis_server, users):
    """At most 20 sessions per user: a 21st login ends that user's least
    used one, never another user's (found by review: 1 000 logins of a
    viewer of one shop emptied the shared table of the boss's session
    too; tests/unit/test_websess.c has the bound's details)."""
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    bob = session_of(login(d, "bob", "bob-pw")[1])[0]
    mine = [session_of(login(d, "alice", "alice-pw 密码")[1])[0] for _ in range(22)]
    assert [request(d, "GET", "/api/me", cookie=s)[0] for s in mine] == [401] * 2 + [200] * 20
    assert request(d, "GET", "/api/me", cookie=bob)[0] == 200
    assert "alice has 20 sessions: their least used one ended" in d.log()


def test_login_and_logout_check_origin(dashboard, redis_server, users):
    """POST /api/login and /api/logout check Origin as the API's other
    POSTs do (docs/security.md, found by review: they did not): a page of
    another site can neither log a browser in as an account of its choice
    nor log its user out. The page's own origin and no Origin pass."""
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    body = {"user": "alice", "password": "alice-pw 密码"}
    st, h, doc = request(d, "POST", "/api/login", body, origin="http://evil.example")
    assert st == 403 and doc == {"error": "origin refused"} and "set-cookie" not in h
    st, h, _ = request(d, "POST", "/api/login", body, origin=f"http://127.0.0.1:{d.port}")
    assert st == 200
    sid = session_of(h)[0]
    st, h, doc = request(d, "POST", "/api/logout", {}, cookie=sid, origin="http://evil.example")
    assert st == 403 and doc == {"error": "origin refused"} and "set-cookie" not in h
    assert request(d, "GET", "/api/me", cookie=sid)[0] == 200        # still logged in
    st, _, _ = request(d, "POST", "/api/logout", {}, cookie=sid, origin=f"http://127.0.0.1:{d.port}")
    assert st == 200
    assert request(d, "GET", "/api/me", cookie=sid)[0] == 401
    assert "login or logout from a foreign origin refused" in d.log()


def test_rate_limit(dashboard, redis_server, users):
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    for i in range(5):
        assert login(d, "alice", f"guess-{i}")[0] == 401
    st, h, body = login(d, "alice", "guess-5")
    assert st == 429 and body == {"error": "too many failed logins"}
    assert 850 <= int(h["retry-after"][0]) <= 900      # the first failure leaves the window
    # the right password does not get through either, from here...
    assert login(d, "alice", "alice-pw 密码")[0] == 429
    # ...nor for alice from another address (per user name)
    assert login(d, "alice", "alice-pw 密码", source="127.0.0.2")[0] == 429
    # another user from another address is not affected
    assert login(d, "bob", "bob-pw", source="127.0.0.2")[0] == 200
    # bob from the guessing address is (per address)
    assert login(d, "bob", "bob-pw")[0] == 429
    # an address that sprays user names is stopped too
    for i in range(5):
        assert login(d, f"user{i}", "x", source="127.0.0.3")[0] == 401
    assert login(d, "user9", "x", source="127.0.0.3")[0] == 429
    log = d.log()
    assert "refused: too many failed logins" in log
    assert "guess-" not in log


def test_token_with_logins(dashboard, redis_server, users):
    """dashboard.token stays for read-only wallboards: the feed, nothing of /api/."""
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n  token: wall-Tok\n")

    async def main():
        assert await feed_status(d, query="?token=wall-Tok") == 101
        assert await feed_status(d, query="?token=wrong") == 401
        assert await feed_status(d) == 401
    run(main())
    assert request(d, "GET", "/api/me?token=wall-Tok")[0] == 401
    assert "wall-Tok" not in d.log()


def test_without_logins(dashboard, redis_server):
    """dashboard.users unset: the feed as before, /api/login says logins are off."""
    r = redis_server()
    d = dashboard(r.url())
    assert request(d, "GET", "/api/login") == (200, request(d, "GET", "/api/login")[1],
                                               {"logins": False})
    assert request(d, "GET", "/api/me")[0] == 404
    assert login(d, "alice", "x")[0] == 404
    assert run(feed_status(d)) == 101
    # the API's own routes answer as "Who may" says, not 404 (docs/dashboard.md)
    assert request(d, "GET", "/api/alerts")[0] == 200
    assert request(d, "POST", "/api/alerts/x", {"state": "acked"})[0] == 403
    assert request(d, "GET", "/api/nosuch")[0] == 404
    t = dashboard(r.url(), extra="  token: tok-123\n")
    assert request(t, "GET", "/api/alerts")[0] == 403
    assert request(t, "GET", "/api/login")[2] == {"logins": False}


def test_session_lifetime_and_users_file_changes(dashboard, redis_server, users):
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n  session_ttl: 3s\n")
    st, h, _ = login(d, "alice", "alice-pw 密码")
    sid, attrs = session_of(h)
    assert "Max-Age=3" in attrs
    assert request(d, "GET", "/api/me", cookie=sid)[0] == 200
    time.sleep(3.2)
    assert request(d, "GET", "/api/me", cookie=sid)[0] == 401      # however busy, 3 s
    # chatmon passwd while it runs: a new user logs in, a changed role shows.
    # On a dashboard of the default session_ttl: bob's session must outlive
    # a passwd (argon2id) and the next look at the file, which on a loaded
    # machine took more than 3 s (the session ended first, and the role
    # could not be seen; and a 401 there proved nothing about the removal)
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    passwd(users, "carol", "carol-pw")
    wait_for(lambda: login(d, "carol", "carol-pw")[0] == 200, 10 * SLOW, "carol's login")
    bob = session_of(login(d, "bob", "bob-pw")[1])[0]
    assert request(d, "GET", "/api/me", cookie=bob)[2]["role"] == "supervisor"
    # the role changed in the file, the password not (a new password ends
    # the session: test_password_change_ends_sessions)
    users.write_text(users.read_text().replace("bob:supervisor:", "bob:viewer:"))
    wait_for(lambda: request(d, "GET", "/api/me", cookie=bob)[2] == {"user": "bob", "role": "viewer"},
             10 * SLOW, "bob's new role")
    # a user taken out of the file loses the session at once
    lines = [x for x in users.read_text().splitlines() if not x.startswith("bob:")]
    users.write_text("\n".join(lines) + "\n")
    wait_for(lambda: request(d, "GET", "/api/me", cookie=bob)[0] == 401, 10 * SLOW,
             "bob logged out")
    assert "read again" in d.log()



def test_password_change_ends_sessions(dashboard, redis_server, users):
    """A new password (chatmon passwd) ends every session of the old one,
    its open feeds closed, as for a removed user: a stolen cookie must not
    outlive the password change meant to lock its thief out (session_ttl
    is 12 h). The sessions of the new password and other users stay."""
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    a1 = session_of(login(d, "alice", "alice-pw 密码")[1])[0]
    a2 = session_of(login(d, "alice", "alice-pw 密码")[1])[0]
    bob = session_of(login(d, "bob", "bob-pw")[1])[0]

    async def go():
        async with d.feed(extra_headers={"Cookie": f"chatmon_session={a1}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            passwd(users, "alice", "alice-new")
            wait_for(lambda: request(d, "GET", "/api/me", cookie=a2)[0] == 401, 10 * SLOW,
                     "alice's old session ended")
            # the feed of the old password's session is closed too
            deadline = time.monotonic() + 10 * SLOW
            with pytest.raises(websockets.ConnectionClosed):
                while time.monotonic() < deadline:
                    await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
    run(go())
    assert request(d, "GET", "/api/me", cookie=a1)[0] == 401
    assert request(d, "GET", "/api/alerts", cookie=a1)[0] == 401
    assert run(feed_status(d, a1)) == 401
    assert login(d, "alice", "alice-pw 密码")[0] == 401
    st, h, _ = login(d, "alice", "alice-new")
    assert st == 200
    new = session_of(h)[0]
    time.sleep(2.5)     # past the dashboard's next look at its sessions
    assert request(d, "GET", "/api/me", cookie=new)[2] == {"user": "alice", "role": "viewer"}
    assert request(d, "GET", "/api/me", cookie=bob)[0] == 200
    assert "alice's password changed" in d.log()


# ------------------------------------------------------------------ behind a TLS proxy

class TLSProxy:
    """A TLS-terminating reverse proxy in front of the dashboard, as
    docs/dashboard.md sets one up: https:// on its own port, plain http to
    the dashboard, Host passed on (host=None) or rewritten to host. One
    request (or one feed) per connection: only its head is rewritten."""

    def __init__(self, tmp_path, port, upstream, host=None):
        self.cert = str(tmp_path / "proxy.pem")
        key = str(tmp_path / "proxy.key")
        if not os.path.exists(self.cert):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out",
                            self.cert, "-days", "2", "-subj", "/CN=qc.example.com",
                            "-addext", "subjectAltName=DNS:qc.example.com"],
                           check=True, capture_output=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(self.cert, key)
        self.upstream, self.host = upstream, host
        self.port = port
        self.listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return          # closed
            threading.Thread(target=self.one, args=(raw,), daemon=True).start()

    def one(self, raw):
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as c, \
                    socket.create_connection(("127.0.0.1", self.upstream)) as u:
                head = b""
                while b"\r\n\r\n" not in head:
                    got = c.recv(65536)
                    if not got:
                        return
                    head += got
                if self.host is not None:
                    lines = head.split(b"\r\n")
                    head = b"\r\n".join(f"Host: {self.host}".encode()
                                         if line.lower().startswith(b"host:") else line
                                         for line in lines)
                u.sendall(head)
                threading.Thread(target=self.pipe, args=(u, c), daemon=True).start()
                self.pipe(c, u)
        except OSError:
            pass

    @staticmethod
    def pipe(src, dst):
        try:
            while (got := src.recv(65536)):
                dst.sendall(got)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def client_ctx(self):
        return ssl.create_default_context(cafile=self.cert)

    def request(self, method, path, body=None, cookie=None, origin=None):
        """(status, headers as a dict of lists, parsed JSON or None) from
        https://qc.example.com:PORT, as a browser there sends it."""
        c = http.client.HTTPConnection("qc.example.com", self.port, timeout=T)
        c.sock = self.client_ctx().wrap_socket(      # the name verified, not looked up
            socket.create_connection(("127.0.0.1", self.port), T),
            server_hostname="qc.example.com")
        h = {"Host": f"qc.example.com:{self.port}", "Connection": "close"}
        if cookie:
            h["Cookie"] = f"chatmon_session={cookie}"
        if origin:
            h["Origin"] = origin
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            hdrs.setdefault(k.lower(), []).append(v)
        c.close()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return r.status, hdrs, doc

    async def feed(self, cookie, origin):
        """The HTTP status of wss://qc.example.com:PORT/feed (101 with its hello)."""
        sock = socket.create_connection(("127.0.0.1", self.port), T)
        try:
            async with websockets.connect(
                    f"wss://qc.example.com:{self.port}/feed", sock=sock, ssl=self.client_ctx(),
                    server_hostname="qc.example.com",
                    origin=origin, open_timeout=T, close_timeout=T,
                    extra_headers={"Cookie": f"chatmon_session={cookie}"}) as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                return 101
        except websockets.InvalidStatusCode as e:
            return e.status_code

    def close(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)    # wakes the accept()
        except OSError:
            pass
        self.listener.close()


def test_behind_a_tls_proxy(dashboard, redis_server, users, tmp_path):
    """Behind a TLS reverse proxy set up as docs/dashboard.md says
    (dashboard.public_url: https://qc.example.com:PORT/, Host passed on or
    rewritten to the dashboard's address) the page's Origin is
    https://qc.example.com:PORT while the dashboard speaks http: the feed
    and every action were refused 403 "foreign origin" (the dashboard took
    only http:// + Host as its own), and the session cookie lacked Secure
    though the browser's side is https. Found by review."""
    r = redis_server()
    c = r.client()
    a = {"v": 1, "id": "t-00001", "ts": "2026-01-01T09:00:00.000Z", "type": "rule.hit",
         "severity": "critical", "agent": "alice", "conversation": "c-1", "role": "agent",
         "category": "offplatform", "rule": "offplatform.add_contact_app", "action": "block",
         "text": "加我微信", "match": {"start": 0, "end": 4}, "matched": "加我微信"}
    c.xadd("chatmon:alerts:log", {"alert": json.dumps(a, ensure_ascii=False)})
    pport = free_port()
    d = dashboard(r.url(), extra=f"  users: {users}\n"
                  f"  public_url: https://qc.example.com:{pport}/\n")
    own, evil = f"https://qc.example.com:{pport}", "https://evil.example"
    proxy = TLSProxy(tmp_path, pport, d.port)
    try:
        for host in (None, f"127.0.0.1:{d.port}"):      # Host passed on, or rewritten
            proxy.host = host
            status, h, body = proxy.request("POST", "/api/login",
                                            {"user": "bob", "password": "bob-pw"}, origin=own)
            assert status == 200 and body["user"] == "bob", (host, status, body)
            sid, attrs = session_of(h)
            assert "Secure" in attrs, (host, attrs)
            assert run(proxy.feed(sid, own)) == 101, host
            status, _, body = proxy.request("POST", "/api/alerts/t-00001", {"state": "acked"},
                                            cookie=sid, origin=own)
            assert status == 200 and body["handling"]["state"] == "acked", (host, status, body)
            # another site's page still may not
            assert run(proxy.feed(sid, evil)) == 403, host
            assert proxy.request("POST", "/api/alerts/t-00001", {"state": "acked"},
                                 cookie=sid, origin=evil)[0] == 403, host
            assert run(proxy.feed(sid, f"http://qc.example.com:{pport + 1}")) == 403, host
    finally:
        proxy.close()
    # logout clears it as Secure too
    assert "Secure" in request(d, "POST", "/api/logout", {}, cookie=sid)[1]["set-cookie"][0]


def test_users_file_gone_and_back_is_said_once_each(dashboard, redis_server, users):
    """docs/dashboard.md: a change that does not load is logged and the users
    read before stay. A deleted file is such a change: it was passed over
    in silence. Gone, it is said once (the users stay); back, once; a bad
    line's warning is one line (it ended in an escaped newline, \\x0a)."""
    r = redis_server()
    d = dashboard(r.url(), extra=f"  users: {users}\n")
    good = users.read_text()
    users.unlink()
    gone = f"dashauth_reload: {users}: No such file or directory; keeping the 2 users read before"
    wait_for(lambda: gone in d.log(), 10 * SLOW, "the warning that the users file is gone")
    assert login(d, "alice", "alice-pw 密码")[0] == 200
    time.sleep(2.5)                 # more looks at the file: still one line
    assert d.log().count(gone) == 1, d.log()
    users.write_text("alice:root:$argon2id$x\n")
    os.chmod(users, 0o600)
    bad = (f"dashauth_reload: {users} changed and does not load, keeping the users "
           f"read before: {users}:1: user alice: unknown role 'root' (viewer or supervisor)\n")
    wait_for(lambda: bad in d.log(), 10 * SLOW, "the warning that the users file is bad")
    assert d.log().count(f"dashauth_reload: {users} is back") == 1, d.log()
    assert "\\x0a" not in d.log()
    assert login(d, "bob", "bob-pw")[0] == 200
    users.write_text(good)
    wait_for(lambda: "read again, 2 users" in d.log(), 10 * SLOW, "the users file read again")
