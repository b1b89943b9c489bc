"""The cluster scenarios (issue 16): each drives the running cluster of CLUSTER_STATE
through HAProxy or instance by instance, and asserts exact outcomes. A scenario that
stops a process starts it again before it returns, so they run in any order.
"""

import os
import re
import secrets
import threading
import time

import client as c
import cluster as local_cluster  # deploy/cluster.py; run.py puts deploy/ on the path

ALL = []


def scenario(group="core"):
    def register(fn):
        fn.group = group
        ALL.append(fn)
        return fn
    return register


def check(ok, what):
    if not ok:
        raise AssertionError(what)


def email(tag):
    return f"{tag}-{secrets.token_hex(5)}@example.com"


def every_instance(cluster):
    return [(inst["name"], inst["url"]) for inst in cluster.instances]


# --- start-up ---

@scenario()
def three_instances_started_at_once_migrate_once_and_are_all_healthy(cluster):
    rows = cluster.db.query("SELECT version FROM seaql_migrations")
    versions = [r[0] for r in rows]
    check(versions, "seaql_migrations is empty")
    check(len(versions) == len(set(versions)), f"a migration is recorded twice: {versions}")
    migrators, applied, key_makers = [], {}, []
    for inst in cluster.instances:
        with open(inst["log"], errors="replace") as f:
            text = f.read()
        names = re.findall(r"Applying migration '([^']+)'", text)
        if names:
            migrators.append(inst["name"])
            applied[inst["name"]] = names
        if "no signing key was stored; made one" in text:
            key_makers.append(inst["name"])
    check(len(migrators) == 1, f"instances that applied migrations: {migrators} (want one)")
    # The first signing key is made under the same lock (development): one between them.
    check(len(key_makers) == 1, f"instances that made a signing key: {key_makers} (want one)")
    keys = cluster.db.query("SELECT kid FROM signing_keys")
    check(len(keys) == 1, f"signing_keys holds {len(keys)} keys (want one)")
    names = applied[migrators[0]]
    check(sorted(names) == sorted(versions),
          f"{migrators[0]} applied {names}, the table holds {versions}")
    for inst in cluster.instances:
        status, body = c_health(inst["health"])
        check(status == 200 and '"database":"up"' in body.replace(" ", ""),
              f"{inst['name']} /health: {status} {body}")
    states = cluster.server_states()
    check(all(v == "UP" for v in states.values()) and len(states) == len(cluster.instances),
          f"HAProxy's view: {states}")


def c_health(url):
    return local_cluster.http_get(url, timeout=3)


# --- sessions across instances ---

@scenario()
def a_logout_through_one_instance_is_seen_by_every_instance(cluster):
    lb = cluster.balancer
    t = c.register_ok(lb, email("logout"))
    for name, url in every_instance(cluster):
        a = c.me(url, t.access)
        check(a.ok, f"before logout, me on {name}: {a}")
    first_name, first_url = every_instance(cluster)[0]
    a = c.logout(first_url, bearer=t.access)
    check(a.ok and a.data("logout") is True, f"logout on {first_name}: {a}")
    for name, url in every_instance(cluster):
        a = c.me(url, t.access)
        check(a.code == "UNAUTHENTICATED", f"after logout, me on {name}: {a}")
    a = c.refresh(lb, t.refresh)
    check(a.code == "INVALID_REFRESH_TOKEN", f"the logged-out refresh token: {a}")


@scenario()
def a_logout_of_all_sessions_through_one_instance_is_seen_by_every_instance(cluster):
    lb = cluster.balancer
    address = email("logout-all")
    sessions = [c.register_ok(lb, address)] + [c.login_ok(lb, address) for _ in range(2)]
    other = c.register_ok(lb, email("bystander"))
    for name, url in every_instance(cluster):
        for s in sessions + [other]:
            a = c.me(url, s.access)
            check(a.ok, f"before logout, me on {name}: {a}")
    last_name, last_url = every_instance(cluster)[-1]
    a = c.logout(last_url, bearer=sessions[1].access, all_sessions=True)
    check(a.ok and a.data("logout") is True, f"logout allSessions on {last_name}: {a}")
    for name, url in every_instance(cluster):
        for n, s in enumerate(sessions):
            a = c.me(url, s.access)
            check(a.code == "UNAUTHENTICATED", f"after logout of all, session {n} on {name}: {a}")
        a = c.me(url, other.access)
        check(a.ok, f"another user's session on {name} after the logout: {a}")
    for n, s in enumerate(sessions):
        a = c.refresh(lb, s.refresh)
        check(a.code == "INVALID_REFRESH_TOKEN", f"session {n}'s refresh token: {a}")


@scenario()
def twenty_concurrent_refreshes_over_the_instances_yield_one_successor(cluster):
    lb = cluster.balancer
    t = c.register_ok(lb, email("race"))
    answers = c.at_once(20, lambda _: c.refresh(lb, t.refresh))
    successors, codes, servers = set(), {}, set()
    for a in answers:
        check(a.status == 200, f"a refresh failed at the HTTP level: {a}")
        servers.add(a.served_by)
        if a.ok:
            successors.add(a.data("refreshToken")["refreshToken"])
        else:
            codes[a.code] = codes.get(a.code, 0) + 1
    check(set(codes) <= {"INVALID_REFRESH_TOKEN"}, f"unexpected refusals: {codes}")
    check(len(successors) == 1, f"{len(successors)} distinct successors: {answers}")
    check(len(servers) == len(cluster.instances),
          f"the 20 refreshes reached only {sorted(servers)}")
    successor = successors.pop()
    check(successor != t.refresh, "the successor is the presented token")
    # The session is alive: the successor rotates once more and its access token works on
    # every instance; the original token yields nothing new.
    a = c.refresh(lb, successor)
    check(a.ok, f"the successor does not rotate: {a}")
    nxt = c.Tokens(a.data("refreshToken"))
    for name, url in every_instance(cluster):
        a = c.me(url, nxt.access)
        check(a.ok, f"after the race, me on {name}: {a}")
    a = c.refresh(lb, t.refresh)
    check(a.code == "INVALID_REFRESH_TOKEN", f"the raced token presented again: {a}")
    for name, url in every_instance(cluster):
        a = c.me(url, nxt.access)
        check(a.ok, f"the race revoked the session (me on {name}): {a}")


@scenario()
def twenty_concurrent_registrations_of_one_email_give_one_account(cluster):
    lb = cluster.balancer
    address = email("dup")
    answers = c.at_once(20, lambda _: c.register(lb, address))
    ok = [a for a in answers if a.ok]
    taken = [a for a in answers if a.code == "EMAIL_TAKEN"]
    check(all(a.status == 200 for a in answers), f"HTTP failures: {answers}")
    check(len(ok) == 1 and len(taken) == 19,
          f"{len(ok)} successes, {len(taken)} EMAIL_TAKEN of 20: "
          f"{[a.code for a in answers]}")
    servers = {a.served_by for a in answers}
    check(len(servers) == len(cluster.instances), f"the 20 reached only {sorted(servers)}")
    rows = cluster.db.query(f"SELECT COUNT(*) FROM users WHERE email = '{address}'")
    check(rows == [["1"]], f"users rows for {address}: {rows}")


# --- failures under load ---

class MixedLoad:
    """Threads that each loop register -> login -> me -> refresh on a new account, through
    the balancer; half of them keep their connection to HAProxy alive. Every answer is
    kept, with the operation and the account."""

    def __init__(self, url, threads=6):
        self.url, self.threads = url, threads
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers = []  # (op, email, Answer)
        self.workers = []

    def __enter__(self):
        for n in range(self.threads):
            t = threading.Thread(target=self.worker, args=(n % 2 == 0,), daemon=True)
            t.start()
            self.workers.append(t)
        return self

    def __exit__(self, *exc):
        self.finish()

    def finish(self):
        self.stop.set()
        for t in self.workers:
            t.join(timeout=60)

    def record(self, op, address, answer):
        with self.lock:
            self.answers.append((op, address, answer))
        return answer

    def worker(self, keep_alive):
        ka = c.KeepAlive(self.url) if keep_alive else None

        def call(query, variables=None, bearer=None):
            if ka:
                return ka.gql(query, variables, bearer=bearer)
            return c.gql(self.url, query, variables, bearer=bearer, ip=c.fresh_ip())

        while not self.stop.is_set():
            address = email("load")
            a = self.record("register", address, call(
                c.REGISTER, {"i": {"email": address, "password": c.PASSWORD}}))
            if not a.ok:
                continue
            a = self.record("login", address, call(
                c.LOGIN, {"i": {"email": address, "password": c.PASSWORD}}))
            if not a.ok:
                continue
            tokens = c.Tokens(a.data("login"))
            a = self.record("me", address, call(c.ME, bearer=tokens.access))
            if not a.ok:
                continue
            self.record("refresh", address, call(c.REFRESH, {"t": tokens.refresh}))
        if ka:
            ka.close()

    def failures(self):
        return [(op, e, a) for op, e, a in self.answers if not a.ok]

    def wait_answers(self, n, timeout=60):
        """Polls until `n` more answers than now have arrived."""
        with self.lock:
            target = len(self.answers) + n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.answers) >= target:
                    return
            time.sleep(0.02)
        raise AssertionError(f"the load made no progress: fewer than {n} answers in {timeout} s")


def acknowledged_registrations_exist(cluster, answers):
    emails = sorted({e for op, e, a in answers if op == "register" and a.ok})
    check(emails, "no registration was acknowledged")
    found = set()
    for i in range(0, len(emails), 200):
        chunk = emails[i:i + 200]
        quoted = ",".join(f"'{e}'" for e in chunk)
        found |= {r[0] for r in cluster.db.query(
            f"SELECT email FROM users WHERE email IN ({quoted})")}
    lost = [e for e in emails if e not in found]
    check(not lost, f"{len(lost)} acknowledged registrations are missing: {lost[:5]}")
    return len(emails)


@scenario(group="disruptive")
def an_instance_killed_under_load_fails_only_its_requests_in_flight(cluster):
    victim = 1
    name = cluster.instances[victim]["name"]
    with MixedLoad(cluster.balancer) as load:
        load.wait_answers(60)
        killed_at = time.monotonic()
        cluster.kill9(victim)
        killed_done = time.monotonic()
        # HAProxy takes it out after two failed checks.
        cluster.wait_servers(lambda st: st.get(name) == "DOWN", timeout=10,
                             what=f"{name} DOWN")
        load.wait_answers(60)
    failures = load.failures()
    late = [(op, f"started {a.started - killed_done:.3f} s after", a)
            for op, _, a in failures if a.started > killed_done]
    check(not late, f"requests that started after the kill failed: {late[:5]}")
    http_level = [(op, a) for op, _, a in failures if a.status not in (0, 502, 503, 504)]
    check(not http_level, f"failures other than a lost connection: {http_level[:5]}")
    stray = [(op, a) for op, _, a in failures if a.served_by not in (None, name)]
    check(not stray, f"failures on a server that was not killed: {stray[:5]}")
    total = len(load.answers)
    n = acknowledged_registrations_exist(cluster, load.answers)
    after = [a for _, _, a in load.answers if a.started > killed_done]
    check(after and all(a.served_by != name for a in after if a.ok),
          f"{name} answered after it was killed")
    print(f"    {total} requests, {len(failures)} failed (in flight at the kill, "
          f"{killed_done - killed_at:.3f} s), {n} registrations all present")
    cluster.start_instance(victim)
    cluster.wait_servers(lambda st: st.get(name) == "UP", timeout=15, what=f"{name} UP again")


class Watch:
    """Polls, from a thread of its own, when HAProxy first shows instance `i` DOWN (or
    MAINT) and when its process is gone: the test's thread is busy meanwhile."""

    def __init__(self, cluster, i):
        self.cluster, self.i = cluster, i
        self.name = cluster.instances[i]["name"]
        self.down_at = self.exited_at = None
        self.states = {}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.deadline = time.monotonic() + 60
        self.thread.start()

    def run(self):
        while time.monotonic() < self.deadline:
            if self.down_at is None:
                self.states = self.cluster.server_states()
                if self.states.get(self.name) in ("DOWN", "MAINT"):
                    self.down_at = time.monotonic()
            if self.exited_at is None and not self.cluster.running(self.i):
                self.exited_at = time.monotonic()
            if self.down_at is not None and self.exited_at is not None:
                return
            time.sleep(0.02)

    def result(self, timeout):
        self.thread.join(timeout)
        return self.down_at, self.exited_at


@scenario(group="disruptive")
def sigterm_under_load_finishes_in_flight_requests_and_the_balancer_drains(cluster):
    victim = len(cluster.instances) - 1
    name = cluster.instances[victim]["name"]
    inst = cluster.instances[victim]
    with MixedLoad(cluster.balancer) as load:
        load.wait_answers(60)
        # Requests certainly in flight on the victim when SIGTERM arrives: their head and
        # half their body read by it, the rest sent after the signal. More through the
        # balancer, wherever they land.
        direct = [c.HalfSent(inst["url"], email("inflight")) for _ in range(3)]
        balanced = [c.HalfSent(cluster.balancer, email("inflight-lb")) for _ in range(6)]
        ports = [h.sock.getsockname()[1] for h in direct]
        deadline = time.monotonic() + 10
        while not local_cluster.server_has_read(inst["port"], ports):
            check(time.monotonic() < deadline, f"{name} did not read the half-sent requests")
            time.sleep(0.01)
        watch = Watch(cluster, victim)
        termed_at = time.monotonic()
        cluster.sigterm(victim)
        check(not cluster.wait_exit(victim, timeout=0.3),
              f"{name} exited with requests in flight")
        on_victim = 0
        for h in direct + balanced:
            a = h.finish()
            check(a.ok, f"a request in flight at SIGTERM failed: {a}")
            load.record("register", h.address, a)
            on_victim += h in balanced and a.served_by == name
        # SHUTDOWN_DRAIN: HAProxy takes it out while it still serves, then it exits.
        down_at, exited_at = watch.result(timeout=30)
        check(down_at is not None, f"HAProxy never marked {name} down: {watch.states}")
        check(exited_at is not None, f"{name} still runs 30 s after SIGTERM")
        check(down_at < exited_at, f"{name} exited {exited_at - termed_at:.2f} s after SIGTERM, "
                                   f"before HAProxy took it out ({down_at - termed_at:.2f} s)")
        exited_after = exited_at - termed_at
        load.wait_answers(60)
    failures = load.failures()
    check(not failures, f"{len(failures)} requests failed through the balancer: "
                        f"{[(op, a) for op, _, a in failures[:5]]}")
    late = [a for _, _, a in load.answers if a.started > down_at and a.served_by == name]
    check(not late, f"{name} was sent {len(late)} requests after HAProxy marked it down")
    served = {a.served_by for _, _, a in load.answers if a.started > down_at}
    check(served and name not in served, f"servers after the drain: {served}")
    acknowledged_registrations_exist(cluster, load.answers)
    print(f"    {len(load.answers)} requests, none failed ({len(direct)} + {on_victim} in "
          f"flight on {name} at SIGTERM); {name} exited "
          f"{exited_after:.2f} s after SIGTERM, DOWN {down_at - termed_at:.2f} s after it")
    cluster.start_instance(victim)
    cluster.wait_servers(lambda st: st.get(name) == "UP", timeout=15, what=f"{name} UP again")


@scenario(group="disruptive")
def a_server_drained_on_the_balancer_gets_no_new_requests_and_comes_back(cluster):
    victim = 0
    name = cluster.instances[victim]["name"]
    with MixedLoad(cluster.balancer, threads=4) as load:
        load.wait_answers(30)
        answer = cluster.set_server_state(victim, "drain")
        check(answer == "", f"HAProxy refused the drain: {answer!r}")
        drained_at = time.monotonic()
        check(cluster.server_states().get(name) == "DRAIN",
              f"HAProxy's view after the drain: {cluster.server_states()}")
        load.wait_answers(60)
        answer = cluster.set_server_state(victim, "ready")
        check(answer == "", f"HAProxy refused to make it ready: {answer!r}")
        ready_at = time.monotonic()
        load.wait_answers(60)
    failures = load.failures()
    check(not failures, f"{len(failures)} requests failed: {failures[:5]}")
    during = [a for _, _, a in load.answers if drained_at < a.started and a.ended < ready_at]
    check(during and all(a.served_by != name for a in during),
          f"{name} was sent requests while drained")
    after = {a.served_by for _, _, a in load.answers if a.started > ready_at}
    check(name in after, f"{name} got nothing after it was made ready: {after}")


# --- shared rate limits (RATE_LIMIT_STORE=redis) ---

def round_robin(cluster, n, fn):
    """fn(url) n times, instance after instance; the answers and the seconds it took."""
    urls = [inst["url"] for inst in cluster.instances]
    started = time.monotonic()
    answers = [fn(urls[k % len(urls)]) for k in range(n)]
    return answers, time.monotonic() - started


def admitted(answers, refused="RATE_LIMITED"):
    bad = [a for a in answers if a.status not in (200, 429)]
    check(not bad, f"HTTP failures: {bad[:3]}")
    internal = [a for a in answers if a.code == "INTERNAL_SERVER_ERROR"]
    check(not internal, f"internal errors: {internal[:3]}")
    return sum(1 for a in answers if a.code != refused)


def quota_window(quota):
    """Seconds within which a GCRA quota of `quota`/minute refills less than one attempt."""
    return 60.0 / quota


@scenario(group="limits")
def login_attempts_for_one_account_over_the_instances_meet_one_quota(cluster):
    quota = cluster.limits["RATE_LIMIT_LOGIN_PER_ACCOUNT"]
    address = email("limit-account")
    c.register_ok(cluster.balancer, address)
    answers, took = round_robin(cluster, quota + 2 * len(cluster.instances),
                                lambda url: c.login(url, address, "not the password"))
    check(took < quota_window(quota), f"too slow to be exact: {took:.1f} s")
    n = admitted(answers)
    check(n == quota, f"{n} login attempts admitted for one account over "
                      f"{len(cluster.instances)} instances, quota {quota}")
    check(all(a.code == "RATE_LIMITED" for a in answers[quota:]),
          f"answers past the quota: {[a.code for a in answers]}")


@scenario(group="limits")
def login_attempts_from_one_address_over_the_instances_meet_one_quota(cluster):
    quota = cluster.limits["RATE_LIMIT_LOGIN_PER_IP"]
    ip = c.fresh_ip()
    answers, took = round_robin(cluster, quota + 2 * len(cluster.instances),
                                lambda url: c.login(url, email("nobody"), "not the password",
                                                    ip=ip))
    check(took < quota_window(quota), f"too slow to be exact: {took:.1f} s")
    n = admitted(answers)
    check(n == quota, f"{n} logins admitted from one address, quota {quota}")


@scenario(group="limits")
def registrations_from_one_address_over_the_instances_meet_one_quota(cluster):
    quota = cluster.limits["RATE_LIMIT_REGISTER_PER_IP"]
    ip = c.fresh_ip()
    answers, took = round_robin(cluster, quota + 2 * len(cluster.instances),
                                lambda url: c.register(url, email("reg-limit"), ip=ip))
    check(took < quota_window(quota), f"too slow to be exact: {took:.1f} s")
    n = admitted(answers)
    check(n == quota, f"{n} registrations admitted from one address, quota {quota}")
    check(sum(1 for a in answers if a.ok) == quota, f"{[a.code for a in answers]}")


def shared_quota_holds(cluster):
    """One fresh account's attempts over every instance: whether exactly the quota passed."""
    quota = cluster.limits["RATE_LIMIT_LOGIN_PER_ACCOUNT"]
    address = email("probe")
    answers, took = round_robin(cluster, quota + len(cluster.instances),
                                lambda url: c.login(url, address, "not the password"))
    return admitted(answers) == quota and took < quota_window(quota), answers


@scenario(group="limits")
def limits_resume_after_redis_restarts_under_load(cluster):
    ok, answers = shared_quota_holds(cluster)
    check(ok, f"the shared quota does not hold before the restart: {[a.code for a in answers]}")
    with MixedLoad(cluster.balancer, threads=4) as load:
        load.wait_answers(30)
        cluster.stop_redis()
        stopped_at = time.monotonic()
        load.wait_answers(30)
        cluster.start_redis()
        restarted_at = time.monotonic()
        load.wait_answers(30)
    slow = [a for _, _, a in load.answers if a.ended - a.started > 3]
    check(not slow, f"{len(slow)} requests took over 3 s while Redis was away: {slow[:3]}")
    bad = [(op, a) for op, _, a in load.failures()
           if a.status != 200 or a.code not in ("RATE_LIMITED",)]
    check(not bad, f"failures other than RATE_LIMITED around the restart: {bad[:5]}")
    # Polled, not slept: each probe uses a fresh account.
    deadline = time.monotonic() + 30
    while True:
        ok, answers = shared_quota_holds(cluster)
        if ok or time.monotonic() > deadline:
            break
    check(ok, f"the shared quota did not come back within 30 s: {[a.code for a in answers]}")
    print(f"    Redis away {restarted_at - stopped_at:.2f} s; shared limits back "
          f"{time.monotonic() - restarted_at:.2f} s after its restart")
