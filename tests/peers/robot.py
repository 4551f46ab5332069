#!/usr/bin/python3
"""A stand-in for the chat robots `chatmon notify` pushes to: DingTalk, WeCom,
Feishu and Slack incoming-webhook robots and a generic webhook, over HTTP or
HTTPS, on one port.

Routes are paths: POST /KIND/NAME[?query], KIND one of dingtalk, wecom,
feishu, slack, webhook. Signatures are checked as docs/notify (the issue 16
contract) says, with the secret of NAME given by --secret NAME=SECRET:

  dingtalk  query timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256(key=secret,
            msg="<ms>\\n<secret>")>, the timestamp within one hour of now, the
            sign's '+' and '=' percent-encoded;
            a bad one is answered {"errcode":310000,...} (HTTP 200, as DingTalk)
  feishu    body "timestamp" (s) and "sign" = base64 HMAC-SHA256(key="<s>\\n<secret>",
            msg=""), within one hour; bad: {"code":19021,...} (HTTP 200)
  webhook   X-Chatmon-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>; bad: 401
  wecom, slack: no signature (sig_ok null)

Without a secret for NAME nothing is checked and sig_ok is null; a route with a
secret that gets no signature at all fails the check (sig_ok false).

Answers, the robots' own way: dingtalk/wecom {"errcode":0,"errmsg":"ok"},
feishu {"code":0,"msg":"success"}, slack "ok", webhook 200 {}.

Run-time behaviour of a NAME: POST /_control {"name":NAME, "mode":M,
"count":N, "retry_after":S, "delay":S}; M is
  ok                 answer as above
  500                HTTP 500
  302                HTTP 302 to https://login.example/ (a moved URL, a login page)
  429                HTTP 429 (Retry-After: S when retry_after is given)
  hang               read the request, answer nothing, hold the connection 60 s
  slow               answer as "ok" after `delay` seconds (default 2)
  stream             answer as "ok", then send whitespace after the body for
                     ever (chunked), until the client goes
  stall              answer as "ok" with a Content-Length 1000 bytes longer
                     than the body sent, then hold the connection 60 s
  errcode-ratelimit  HTTP 200 with the robot's rate-limit code: dingtalk errcode
                     130101, wecom errcode 45009, feishu code 9499; slack and
                     webhook HTTP 429
With count, only the next N requests of NAME behave so, then it is "ok" again.
The answer is the current state of every name. GET /_log: every request
logged so far, JSON Lines.

Each request received is one JSON line in --log FILE (appended) and in
/_log: time, path, query, kind, name, headers (those of interest), body
(parsed JSON, or null), raw (the body as text), text (the message text of a
robot), sig_ok, ids (the alert ids the message carries: a webhook's alert id
or folded list; a robot text's last line `id: X` / `ids: X,Y`), folded
(true when it carries a folded list / an `ids:` line), mode (what this
request was given), status (the HTTP status answered; null for hang), and
answer (the body answered).

--print writes one readable line per message to stdout for a demo:
`robot: dingtalk crit: <text>`. Once listening it prints
`robot: listening on PORT` (and writes PORT to --ready-file F).
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("dingtalk", "wecom", "feishu", "slack", "webhook")
MODES = ("ok", "500", "302", "429", "hang", "slow", "stream", "stall", "errcode-ratelimit")
HOUR_MS = 3600 * 1000
HANG_SECONDS = 60
INTERESTING = ("content-type", "content-length", "user-agent", "x-chatmon-signature",
               "x-chatmon-alert-id", "expect", "transfer-encoding")

ID_LINE = re.compile(r"^\s*(ids?):\s*(.*?)\s*$")


def dingtalk_sign(secret, ts_ms):
    mac = hmac.new(secret.encode(), f"{ts_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def feishu_sign(secret, ts_s):
    mac = hmac.new(f"{ts_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def webhook_sign(secret, body):
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def message_text(kind, body):
    """The text a robot message shows, or None."""
    if not isinstance(body, dict):
        return None
    try:
        if kind == "dingtalk":
            return body["markdown"]["text"] if body.get("msgtype") == "markdown" \
                else body["text"]["content"]
        if kind == "wecom":
            return body["markdown"]["content"] if body.get("msgtype") == "markdown" \
                else body["text"]["content"]
        if kind == "feishu":
            return body["content"]["text"]
        if kind == "slack":
            return body["text"]
    except (KeyError, TypeError):
        return None
    return None


def text_ids(text):
    """(ids, folded) from the last non-empty line of a robot text."""
    if not isinstance(text, str):
        return [], False
    lines = text.rstrip().split("\n")
    m = ID_LINE.match(lines[-1]) if lines else None
    if not m:
        return [], False
    ids = [i.strip() for i in m.group(2).split(",") if i.strip()]
    return ids, m.group(1) == "ids"


class State:
    def __init__(self, secrets, logfile, echo):
        self.secrets = secrets
        self.logfile = logfile
        self.echo = echo
        self.lock = threading.Lock()
        self.modes = {}          # name -> dict(mode, count, retry_after, delay)
        self.entries = []

    def take_mode(self, name):
        """The behaviour for this request of name (counting it down)."""
        with self.lock:
            st = self.modes.get(name)
            if not st or st["mode"] == "ok":
                return {"mode": "ok"}
            got = dict(st)
            if st.get("count") is not None:
                st["count"] -= 1
                if st["count"] <= 0:
                    self.modes[name] = {"mode": "ok"}
            return got

    def control(self, req):
        name, mode = req.get("name"), req.get("mode", "ok")
        if not isinstance(name, str) or mode not in MODES:
            raise ValueError("need name and a mode of " + ", ".join(MODES))
        count = req.get("count")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count: a positive integer")
        with self.lock:
            self.modes[name] = {"mode": mode, "count": count,
                                "retry_after": req.get("retry_after"),
                                "delay": req.get("delay", 2)}
            return dict(self.modes)

    def record(self, entry):
        line = json.dumps(entry, ensure_ascii=False)
        with self.lock:
            self.entries.append(line)
            if self.logfile:
                with open(self.logfile, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
        if self.echo and entry.get("kind"):
            what = entry.get("text")
            if what is None and isinstance(entry.get("body"), dict):
                b = entry["body"]
                what = f"{b.get('type')} {b.get('severity', '')} " \
                       f"{b.get('agent', '')} {b.get('conversation', '')}".strip()
                if b.get("type") == "notify.folded":
                    what = f"notify.folded count={b.get('count')}"
            what = " | ".join(l for l in str(what).split("\n") if l.strip())
            flag = "" if entry["sig_ok"] is not False else " [BAD SIGNATURE]"
            st = entry["status"]
            st = " (no answer: hang)" if st is None else "" if 200 <= st < 300 else f" ({st})"
            print(f"robot: {entry['kind']} {entry['name']}: {what}{flag}{st}", flush=True)

    def log_text(self):
        with self.lock:
            return "".join(l + "\n" for l in self.entries)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "robot/1"
    timeout = 120                        # an idle kept-alive connection

    def log_message(self, fmt, *args):   # quiet: the JSON log says it all
        pass

    @property
    def state(self):
        return self.server.state

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, body, ctype="application/json", extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        if urllib.parse.urlsplit(self.path).path == "/_log":
            return self.answer(200, self.state.log_text(), "application/x-ndjson")
        self.answer(404, '{"error":"not found"}')

    def do_POST(self):
        now = time.time()
        raw = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_control":
            try:
                st = self.state.control(json.loads(raw))
            except (ValueError, AttributeError) as e:
                return self.answer(400, json.dumps({"error": str(e)}))
            return self.answer(200, json.dumps(st))
        parts = url.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in KINDS or not parts[1]:
            return self.answer(404, '{"error":"no such route"}')
        kind, name = parts
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            body = None
        sig_ok, why = self.check_signature(kind, name, query, body, raw, now)
        text = message_text(kind, body)
        if kind == "webhook":
            if isinstance(body, dict) and body.get("type") == "notify.folded":
                ids, folded = [i for i in body.get("folded") or [] if isinstance(i, str)], True
            elif isinstance(body, dict) and isinstance(body.get("id"), str):
                ids, folded = [body["id"]], False
            else:
                ids, folded = [], False
        else:
            ids, folded = text_ids(text)
        behaviour = self.state.take_mode(name)
        mode = behaviour["mode"]
        entry = {
            "time": now,
            "iso": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
                   .isoformat(timespec="milliseconds"),
            "path": url.path, "query": {k: v[0] if len(v) == 1 else v for k, v in query.items()},
            "kind": kind, "name": name,
            "headers": {k: self.headers[k] for k in INTERESTING if self.headers.get(k) is not None},
            "body": body, "raw": raw.decode("utf-8", "replace"), "text": text,
            "sig_ok": sig_ok, "sig_error": why, "ids": ids, "folded": folded,
            "mode": mode, "status": None, "answer": None,
        }
        if mode == "hang":
            self.state.record(entry)
            self.close_connection = True
            time.sleep(HANG_SECONDS)
            return
        if mode == "slow":
            time.sleep(float(behaviour.get("delay") or 2))
        status, answer, extra = self.reply(kind, mode, sig_ok, behaviour)
        entry["status"], entry["answer"] = status, answer
        entry["answered"] = time.time()
        # logged before the answer goes out: a test that sees the answer's
        # effect (an ack, a marker) also finds the line
        self.state.record(entry)
        ctype = "text/plain" if answer == "ok" else "application/json"
        try:
            if mode == "stream":
                self.endless(status, answer, ctype)
            elif mode == "stall":
                self.stall(status, answer, ctype)
            else:
                self.answer(status, answer, ctype, extra)
        except OSError:
            pass

    def endless(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = body.encode() + b" " * 8192
        self.close_connection = True
        deadline = time.time() + HANG_SECONDS
        while time.time() < deadline:        # until the client closes (OSError)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            chunk = b" " * 8192

    def stall(self, status, body, ctype):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data) + 1000))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        self.close_connection = True
        time.sleep(HANG_SECONDS)

    def reply(self, kind, mode, sig_ok, behaviour):
        extra = []
        if mode == "500":
            return 500, '{"error":"internal error"}', extra
        if mode == "302":
            extra.append(("Location", "https://login.example/"))
            return 302, "", extra
        if mode == "429" or mode == "errcode-ratelimit" and kind in ("slack", "webhook"):
            if behaviour.get("retry_after") is not None:
                extra.append(("Retry-After", str(behaviour["retry_after"])))
            return 429, '{"error":"too many requests"}', extra
        if mode == "errcode-ratelimit":
            if kind == "dingtalk":
                return 200, '{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}', extra
            if kind == "wecom":
                return 200, '{"errcode":45009,"errmsg":"api freq out of limit"}', extra
            return 200, '{"code":9499,"msg":"too many request","data":{}}', extra
        if kind in ("dingtalk", "wecom"):
            if sig_ok is False:
                return 200, '{"errcode":310000,"errmsg":"sign not match"}', extra
            return 200, '{"errcode":0,"errmsg":"ok"}', extra
        if kind == "feishu":
            if sig_ok is False:
                return 200, '{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time","data":{}}', extra
            return 200, '{"code":0,"msg":"success","data":{}}', extra
        if kind == "slack":
            return 200, "ok", extra
        if sig_ok is False:
            return 401, '{"error":"bad signature"}', extra
        return 200, "{}", extra

    def check_signature(self, kind, name, query, body, raw, now):
        """(True|False|None, reason)."""
        secret = self.state.secrets.get(name)
        if secret is None or kind in ("wecom", "slack"):
            return None, None
        if kind == "dingtalk":
            ts, sign = query.get("timestamp", [None])[0], query.get("sign", [None])[0]
            if ts is None or sign is None:
                return False, "no timestamp/sign in the query"
            if not ts.isdigit():
                return False, "timestamp not an integer of ms"
            if abs(int(ts) - now * 1000) > HOUR_MS:
                return False, "timestamp not within one hour"
            if not hmac.compare_digest(sign, dingtalk_sign(secret, ts)):
                return False, "sign does not match"
            # "urlencoded": base64's '+' and '=' must come escaped (a bare '+'
            # reads as a space; 32 bytes of HMAC always end in one '=')
            raw_sign = [v for k, _, v in (p.partition("=") for p in
                        urllib.parse.urlsplit(self.path).query.split("&")) if k == "sign"]
            if not raw_sign or "+" in raw_sign[-1] or "=" in raw_sign[-1]:
                return False, "sign not urlencoded"
            return True, None
        if kind == "feishu":
            if not isinstance(body, dict):
                return False, "body not JSON"
            ts, sign = body.get("timestamp"), body.get("sign")
            if not isinstance(ts, str) or not isinstance(sign, str):
                return False, "no timestamp/sign strings in the body"
            if not ts.isdigit():
                return False, "timestamp not an integer of seconds"
            if abs(int(ts) - now) > 3600:
                return False, "timestamp not within one hour"
            if not hmac.compare_digest(sign, feishu_sign(secret, ts)):
                return False, "sign does not match"
            return True, None
        got = self.headers.get("X-Chatmon-Signature")
        if got is None:
            return False, "no X-Chatmon-Signature"
        if not hmac.compare_digest(got, webhook_sign(secret, raw)):
            return False, "X-Chatmon-Signature does not match"
        return True, None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, state, tls):
        self.state = state
        self.tls = tls
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        self.address_family = fam
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread: a client that
        # connects and says nothing holds up no one else
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
            request.settimeout(None)
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.tls is not None:
                try:
                    request.close()
                except OSError:
                    pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any)")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--log", help="append one JSON line per request to this file")
    ap.add_argument("--print", action="store_true", dest="echo",
                    help="one readable line per message on stdout")
    ap.add_argument("--ready-file", help="write the port here once listening")
    ap.add_argument("--secret", action="append", default=[], metavar="NAME=SECRET")
    a = ap.parse_args(argv)
    host, _, port = a.listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    secrets = {}
    for s in a.secret:
        n, eq, v = s.partition("=")
        if not eq or not n:
            ap.error(f"--secret {s!r}: NAME=SECRET")
        secrets[n] = v
    tls = None
    if a.tls_cert or a.tls_key:
        if not (a.tls_cert and a.tls_key):
            ap.error("--tls-cert and --tls-key go together")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls_cert, a.tls_key)
    srv = Server((host, int(port)), State(secrets, a.log, a.echo), tls)
    bound = srv.server_address[1]
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{bound}\n")
        os.rename(tmp, a.ready_file)
    print(f"robot: listening on {bound}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
