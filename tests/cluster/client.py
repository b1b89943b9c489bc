"""A small GraphQL client for the cluster scenarios: one new HTTP connection per request,
an explicit client address (X-Forwarded-For, believed because the instances trust the
loopback balancer and the test client sits on loopback too), and answers that record
which server HAProxy chose and when the request started and ended.
"""

import http.client
import itertools
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

PASSWORD = "correct horse battery"
PAIR = "accessToken refreshToken user { id email }"

REGISTER = f"mutation($i: RegisterInput!) {{ register(input: $i) {{ {PAIR} }} }}"
LOGIN = f"mutation($i: LoginInput!) {{ login(input: $i) {{ {PAIR} }} }}"
REFRESH = f"mutation($t: String!) {{ refreshToken(refreshToken: $t) {{ {PAIR} }} }}"
LOGOUT = "mutation($t: String, $all: Boolean!) { logout(refreshToken: $t, allSessions: $all) }"
ME = "{ me { id email } }"

_ips = itertools.count(1)
_ips_lock = threading.Lock()


def fresh_ip():
    """A client address no other request of this run has used (10.0.0.0/8)."""
    with _ips_lock:
        n = next(_ips)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Answer:
    """One HTTP exchange: status (0 when no HTTP answer came), body, server, timing."""

    def __init__(self, status, body, served_by, started, ended, error=None):
        self.status, self.body, self.served_by = status, body, served_by
        self.started, self.ended, self.error = started, ended, error

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def code(self):
        """The first error's `extensions.code`; None without errors."""
        doc = self.json or {}
        errors = doc.get("errors") or []
        if not errors:
            return None
        return (errors[0].get("extensions") or {}).get("code", "NO_CODE")

    @property
    def ok(self):
        """An HTTP 200 GraphQL answer without errors."""
        doc = self.json
        return self.status == 200 and doc is not None and not doc.get("errors")

    def data(self, field):
        return self.json["data"][field]

    def __repr__(self):
        what = self.error or self.body[:300]
        return f"<{self.status} via {self.served_by}: {what}>"


def gql(url, query, variables=None, bearer=None, ip=None, timeout=15):
    headers = {"content-type": "application/json"}
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"
    if ip:
        headers["x-forwarded-for"] = ip
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            text = resp.read().decode()
            return Answer(resp.status, text, resp.headers.get("x-served-by"), started,
                          time.monotonic())
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        return Answer(e.code, text, e.headers.get("x-served-by"), started, time.monotonic())
    except (OSError, ValueError) as e:  # refused, reset, timed out: no HTTP answer
        return Answer(0, "", None, started, time.monotonic(), error=repr(e))


def register(url, email, ip=None, password=PASSWORD):
    return gql(url, REGISTER, {"i": {"email": email, "password": password}},
               ip=ip or fresh_ip())


def login(url, email, password=PASSWORD, ip=None):
    return gql(url, LOGIN, {"i": {"email": email, "password": password}}, ip=ip or fresh_ip())


def refresh(url, token, ip=None):
    return gql(url, REFRESH, {"t": token}, ip=ip or fresh_ip())


def logout(url, bearer=None, token=None, all_sessions=False):
    return gql(url, LOGOUT, {"t": token, "all": all_sessions}, bearer=bearer, ip=fresh_ip())


def me(url, bearer):
    return gql(url, ME, bearer=bearer, ip=fresh_ip())


class Tokens:
    def __init__(self, payload):
        self.access = payload["accessToken"]
        self.refresh = payload["refreshToken"]
        self.user_id = payload["user"]["id"]
        self.email = payload["user"]["email"]


def register_ok(url, email):
    a = register(url, email)
    if not a.ok:
        raise AssertionError(f"register {email} failed: {a}")
    return Tokens(a.data("register"))


def login_ok(url, email):
    a = login(url, email)
    if not a.ok:
        raise AssertionError(f"login {email} failed: {a}")
    return Tokens(a.data("login"))


def at_once(n, fn):
    """Runs fn(i) for i in range(n) on n threads released together; the results in order."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def worker(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class KeepAlive:
    """A client that keeps one connection to the balancer open across its requests (as
    browsers and mobile apps do), so HAProxy may send them over kept-alive server
    connections too."""

    def __init__(self, url, timeout=15):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.timeout = timeout
        self.conn = None

    def gql(self, query, variables=None, bearer=None, ip=None):
        headers = {"content-type": "application/json"}
        if bearer:
            headers["authorization"] = f"Bearer {bearer}"
        headers["x-forwarded-for"] = ip or fresh_ip()
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        started = time.monotonic()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port,
                                                       timeout=self.timeout)
            self.conn.request("POST", self.path, body=body, headers=headers)
            resp = self.conn.getresponse()
            text = resp.read().decode(errors="replace")
            if resp.getheader("connection", "").lower() == "close":
                self.close()
            return Answer(resp.status, text, resp.getheader("x-served-by"), started,
                          time.monotonic())
        except (OSError, http.client.HTTPException) as e:
            self.close()
            return Answer(0, "", None, started, time.monotonic(), error=repr(e))

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class HalfSent:
    """A registration whose request head and first half of body are sent at once, and the
    rest only at `finish()`: a request certainly in flight in between."""

    def __init__(self, url, address):
        parts = urllib.parse.urlsplit(url)
        self.address = address
        body = json.dumps({"query": REGISTER,
                           "variables": {"i": {"email": address, "password": PASSWORD}}}).encode()
        head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-Forwarded-For: {fresh_ip()}\r\nConnection: close\r\n\r\n").encode()
        self.rest = body[len(body) // 2:]
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
        self.started = time.monotonic()
        self.sock.sendall(head + body[:len(body) // 2])

    def finish(self):
        try:
            self.sock.sendall(self.rest)
            resp = http.client.HTTPResponse(self.sock)
            resp.begin()
            text = resp.read().decode(errors="replace")
            return Answer(resp.status, text, resp.getheader("x-served-by"), self.started,
                          time.monotonic())
        except (OSError, http.client.HTTPException) as e:
            return Answer(0, "", None, self.started, time.monotonic(), error=repr(e))
        finally:
            self.sock.close()
