#!/usr/bin/env python3
"""The benchmark behind `bench/run` (standard library only).

Builds the release server and the bench helpers, runs the server on fresh databases,
seeds them, drives it with wrk over loopback, and rewrites BENCHMARKS.md and
bench/latency.svg from the measurements. Every figure is a ratio of two measurements
taken in the same run; the report gives the median of the runs with min and max.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
# BENCH_BUILD=debug (for --smoke only, which times nothing): the debug build, which CI's
# test step has mostly compiled already, instead of a release build of its own.
BUILD = "debug" if os.environ.get("BENCH_BUILD") == "debug" else "release"
RELEASE = os.path.join(ROOT, "target", BUILD)
SERVER = os.path.join(RELEASE, "auth-server")
TOOL = os.path.join(RELEASE, "examples", "bench_tool")
BASELINE = os.path.join(RELEASE, "examples", "bench_baseline")
LUA = os.path.join(BENCH, "load.lua")
CORES = os.cpu_count() or 1

PROFILES = {
    "full": dict(
        runs=3, secs=8, light_secs=8, login_secs=12, sweep=[1, 4, 16, 64, 256], sweep_secs=4,
        soak_secs=60, large_users=1_000_000, small_users=1_000, bcrypt_rounds=5, startups=5,
        alternations=3, metrics_alternations=5,
    ),
    "smoke": dict(
        runs=1, secs=2, light_secs=2, login_secs=3, sweep=[1, 16, 256], sweep_secs=1,
        soak_secs=4, large_users=20_000, small_users=1_000, bcrypt_rounds=2, startups=1,
        alternations=1, metrics_alternations=1,
    ),
}
HOT = 1_000            # sessions whose tokens the load uses (all of the small database)
LOGIN_ACCOUNTS = 64    # accounts the login load cycles through
THROUGHPUT_CONNS = 32  # connections of the flat-out me / refresh / baseline loads
LIGHT_CONNS, LIGHT_DELAY_MS = 4, 10   # the fixed, light `me` load of figure 2
P50_CONNS = 8          # connections of the small-vs-large database comparison
CHUNK = 80             # refresh tokens per refresh load (each is spent once)
WRK_THREADS = 1
# The signing comparison: HS256 (the algorithm before issue 14) against ES256 (the default
# since), and a cold-cache `me` whose tokens outnumber the verified-token cache
# (VERIFIED_CAPACITY = 1,024 in src/auth/tokens/access.rs), so every request verifies.
ALGORITHMS = ("HS256", "ES256")
COLD_TOKENS = 4_096
# The rotation comparison (issue 17): refreshToken at these connection counts, on this
# build and on a build from before SQLite group commit, in turns.
REFRESH_SWEEP = (1, 8, 32)
# The metrics figure: how often the server with METRICS_ADDR is scraped during its turns
# (Prometheus's default is 1 m, a common setting 15 s; 1 s is on the costly side).
SCRAPE_EVERY_S = 1.0


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(cmd, timeout, **kw):
    return subprocess.run(cmd, check=True, timeout=timeout, text=True, capture_output=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path, timeout=1.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def wait_healthy(port, proc, limit=60.0):
    """Seconds until GET /health answers 200; polls every 2 ms, gives up after `limit`."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; see its log")
        try:
            if http_get(port, "/health", timeout=0.5) == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.002)
    raise RuntimeError("server not healthy within the limit")


def rss_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Server:
    """One auth-server process on its own port and database."""

    def __init__(self, out, name, database_url, spawn_time=None, binary=None, env=None,
                 tool=None):
        self.out, self.name = out, name
        # The seeding tool: this build's, or the one built with `binary` when its schema
        # is older than this build's (see --before-tool).
        self.tool_path = tool or TOOL
        self.port = free_port()
        self.dir = os.path.join(out, name)
        os.makedirs(self.dir, exist_ok=True)
        self.env = dict(os.environ)
        self.env.update({
            "DATABASE_URL": database_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "JWT_ACCESS_SECRET": secrets.token_hex(32),
            "JWT_REFRESH_SECRET": secrets.token_hex(32),
            # Signing keys stored in the database, so the seeding tool signs with them too.
            "KEY_ENCRYPTION_KEY": secrets.token_hex(32),
            "BCRYPT_COST": "12",
            "RATE_LIMIT_LOGIN_PER_IP": "0",
            "RATE_LIMIT_LOGIN_PER_ACCOUNT": "0",
            "RATE_LIMIT_REGISTER_PER_IP": "0",
            "RATE_LIMIT_MAIL_PER_IP": "0",
            "RATE_LIMIT_MAIL_PER_ADDRESS": "0",
        })
        for var in ("RUST_LOG", "PASSWORD_HASH_WORKERS", "DATABASE_MAX_CONNECTIONS",
                    "JWT_ALGORITHM", "METRICS_ADDR"):
            self.env.pop(var, None)
        self.env.update(env or {})
        self.logfile = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen([binary or SERVER, "serve"], env=self.env, cwd=self.dir,
                                     stdout=self.logfile, stderr=subprocess.STDOUT)
        self.startup = wait_healthy(self.port, self.proc)
        self.url = f"http://127.0.0.1:{self.port}/graphql"

    def tool(self, *args, timeout=900):
        return sh([self.tool_path, *map(str, args)], timeout, env=self.env, cwd=self.dir)

    def seed(self, hash_, hot, login, filler, tag):
        d = os.path.join(self.dir, tag)
        os.makedirs(d, exist_ok=True)
        if login and os.path.exists(os.path.join(self.dir, "login.txt")):
            shutil.copy(os.path.join(self.dir, "login.txt"), d)
        r = self.tool("seed", d, hash_, hot, login, filler)
        log(f"{self.name}: {r.stderr.strip()}")
        if login and not os.path.exists(os.path.join(self.dir, "login.txt")):
            shutil.copy(os.path.join(d, "login.txt"), self.dir)
        return Tokens(d)

    def rss(self, field="VmRSS"):
        return rss_kb(self.proc.pid, field) / 1024.0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.logfile.close()


class Tokens:
    """Seeded token files; refresh tokens are handed out in disjoint chunks (single use)."""

    def __init__(self, d):
        self.dir = d
        self.access = os.path.join(d, "access.txt")
        self.login = os.path.join(d, "login.txt")
        with open(os.path.join(d, "refresh.txt")) as f:
            self.refresh = [line.strip() for line in f if line.strip()]
        self.next_chunk = 0

    def refresh_chunk(self, n=CHUNK):
        chunk = self.refresh[self.next_chunk:self.next_chunk + n]
        if len(chunk) < n:
            raise RuntimeError("out of seeded refresh tokens")
        path = os.path.join(self.dir, f"refresh-{self.next_chunk}.txt")
        with open(path, "w") as f:
            f.write("\n".join(chunk) + "\n")
        self.next_chunk += n
        return path


def wrk(url, mode, file, conns, secs, delay_ms=0):
    """Runs wrk for `secs` seconds; returns its BENCH summary (latencies in ms)."""
    threads = min(WRK_THREADS, conns)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{secs}s", "--timeout", "10s", "-s", LUA,
           url, "--", mode, file, str(delay_ms), str(threads)]
    r = sh(cmd, timeout=secs + 60)
    line = next((l for l in r.stdout.splitlines() if l.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{r.stdout}\n{r.stderr}")
    s = json.loads(line[6:])
    for k in ("p50", "p90", "p99", "p999", "max", "mean"):
        s[k] = s[k] / 1000.0
    s["rps"] = s["ok"] / s["secs"] if s["secs"] else 0.0
    s["conns"] = conns
    return s


def check(s, what, allow_errors=False):
    if s["ok"] == 0 or (s["errors"] and not allow_errors):
        raise RuntimeError(f"{what}: {s['ok']} ok, {s['errors']} errors, "
                           f"{s['socket_errors']} socket errors")
    return s


def run_once(i, cfg, out, large, large_tokens_for_run, hash_, verify):
    """One run: every figure on a fresh small database, plus the large-database pair."""
    log(f"run {i}: starting the server on a fresh SQLite database")
    small = Server(out, f"run{i}-small", f"sqlite://{out}/run{i}-small/auth.db?mode=rwc")
    r = {"startup_s": small.startup}
    try:
        tk = small.seed(hash_, HOT, LOGIN_ACCOUNTS, 0, "seed")
        secs = cfg["secs"]
        # Warm-up: connections, statement caches, page cache.
        wrk(small.url, "me", tk.access, THROUGHPUT_CONNS, 1)

        # (3) me vs a bare axum JSON endpoint, same script, same load.
        bport = free_port()
        with open(os.path.join(small.dir, "baseline.log"), "w") as blog:
            base = subprocess.Popen([BASELINE, str(bport)], stdout=blog, stderr=subprocess.STDOUT)
            try:
                wait_healthy(bport, base)
                burl = f"http://127.0.0.1:{bport}/graphql"
                wrk(burl, "me", tk.access, THROUGHPUT_CONNS, 1)
                r["baseline"] = check(wrk(burl, "me", tk.access, THROUGHPUT_CONNS, secs), "baseline")
            finally:
                base.terminate()
                base.wait(timeout=10)
        r["me"] = check(wrk(small.url, "me", tk.access, THROUGHPUT_CONNS, secs), "me")
        r["me_vs_baseline"] = r["me"]["rps"] / r["baseline"]["rps"]

        # (4) refreshToken, flat out.
        r["refresh"] = check(wrk(small.url, "refresh", tk.refresh_chunk(), THROUGHPUT_CONNS, secs),
                             "refresh")
        r["refresh_vs_me"] = r["refresh"]["rps"] / r["me"]["rps"]

        # (1) login throughput against what the cores can do at this bcrypt cost.
        login_conns = 4 * CORES
        r["login"] = check(wrk(small.url, "login", tk.login, login_conns, cfg["login_secs"]),
                           "login")
        r["verify_s"] = verify()
        r["login_ideal_rps"] = CORES / r["verify_s"]
        r["login_ratio"] = r["login"]["rps"] / r["login_ideal_rps"]

        # (2) me p99 under a light fixed load, alone and during a login flood.
        light = cfg["light_secs"]
        r["me_light"] = check(wrk(small.url, "me", tk.access, LIGHT_CONNS, light, LIGHT_DELAY_MS),
                              "me light")
        flood_out = {}
        flood = threading.Thread(target=lambda: flood_out.update(
            s=wrk(small.url, "login", tk.login, login_conns, light + 4)))
        flood.start()
        time.sleep(2)
        r["me_flood"] = check(wrk(small.url, "me", tk.access, LIGHT_CONNS, light, LIGHT_DELAY_MS),
                              "me during flood")
        flood.join(timeout=light + 90)
        r["flood"] = flood_out.get("s")
        r["flood_ratio"] = r["me_flood"]["p99"] / r["me_light"]["p99"]

        # Latency against concurrency (the plot), and (6) peak RSS with 256 connections.
        r["sweep"] = {}
        for c in cfg["sweep"]:
            r["sweep"][c] = check(wrk(small.url, "me", tk.access, c, cfg["sweep_secs"]),
                                  f"me sweep c={c}")
        r["rss_peak_mb"] = small.rss("VmHWM")

        # (5) p50 of me and refreshToken: 1,000 users vs the large database, back to back.
        ltk = large_tokens_for_run
        for name, srv, tokens in (("small", small, tk), ("large", large, ltk)):
            wrk(srv.url, "me", tokens.access, P50_CONNS, 1)
            r[f"p50_me_{name}"] = check(wrk(srv.url, "me", tokens.access, P50_CONNS, secs),
                                        f"me {name}")["p50"]
            r[f"p50_refresh_{name}"] = check(
                wrk(srv.url, "refresh", tokens.refresh_chunk(), P50_CONNS, secs),
                f"refresh {name}")["p50"]
        r["p50_me_ratio"] = r["p50_me_large"] / r["p50_me_small"]
        r["p50_refresh_ratio"] = r["p50_refresh_large"] / r["p50_refresh_small"]
        r["_server"] = small
        r["_tokens"] = tk
        return r
    except BaseException:
        small.stop()
        raise


def soak(server, tokens, secs):
    """me (32 connections) and refreshToken (4) flat out for `secs`; RSS every second."""
    samples = []
    done = threading.Event()

    def sample():
        start = time.monotonic()
        while not done.is_set() and time.monotonic() - start < secs + 30:
            samples.append((time.monotonic() - start, server.rss()))
            done.wait(1.0)

    refresh_file = tokens.refresh_chunk(CHUNK)
    results = {}
    t_sample = threading.Thread(target=sample)
    t_refresh = threading.Thread(target=lambda: results.update(
        refresh=wrk(server.url, "refresh", refresh_file, 4, secs)))
    t_sample.start()
    t_refresh.start()
    results["me"] = wrk(server.url, "me", tokens.access, THROUGHPUT_CONNS, secs)
    t_refresh.join(timeout=secs + 90)
    done.set()
    t_sample.join(timeout=5)
    return {"samples": samples, **results}


def startup_times(out, n):
    """Start-up to a healthy /health on empty SQLite databases (migrations included)."""
    times = []
    for k in range(n):
        s = Server(out, f"startup{k}", f"sqlite://{out}/startup{k}/auth.db?mode=rwc")
        times.append(s.startup)
        s.stop()
    return times


def other_backend(out, kind, admin_url, cfg, hash_):
    """`me` and `refreshToken` on MySQL or PostgreSQL (a database of its own), each beside
    what the database itself serves for the same statements (bench/dblimits).

    One server on a fresh database seeded with HOT sessions. A turn measures, back to back
    at THROUGHPUT_CONNS connections (clients), `me` through the server, the guard's query
    by the database's own tool, `refreshToken` through the server and the refresh's
    statements by the tool; every other turn in the reverse order, cfg["alternations"]
    turns. The tool's rotations use sessions kept out of the server's
    refresh chunks. Before the turns, the server's round trips to the database per request
    are counted on requests sent one at a time (dblimits.round_trips)."""
    import dblimits
    name = f"bench_{secrets.token_hex(4)}"
    base, _, _ = admin_url.rpartition("/")
    url = f"{base}/{name}"
    tool_env = dict(os.environ, DATABASE_URL=admin_url)
    sh([TOOL, "createdb", name], 120, env=tool_env)
    try:
        srv = Server(out, kind, url)
        try:
            tk = srv.seed(hash_, HOT, 0, 0, "seed")
            guard_sids, rotation_sids = dblimits.split_sessions(tk.access)
            tk.refresh = tk.refresh[:-dblimits.RESERVED]
            work = os.path.join(srv.dir, "dblimits")
            secs = cfg["secs"]
            with open(tk.access) as f:
                access = [line.strip() for line in f if line.strip()]
            trips = dblimits.round_trips(srv.proc.pid, srv.port, url, access,
                                         tk.refresh[-20:])
            tk.refresh = tk.refresh[:-20]
            log(f"{kind}: round trips to the database per request, one at a time: "
                f"me {trips['me']:.2f}, refresh {trips['refresh']:.2f}")
            wrk(srv.url, "me", tk.access, THROUGHPUT_CONNS, 1)
            dblimits.run(kind, url, "guard", guard_sids, THROUGHPUT_CONNS, 1, work)
            turns = []
            for k in range(cfg["alternations"]):
                t = {}

                def server_me():
                    t["me"] = check(wrk(srv.url, "me", tk.access, THROUGHPUT_CONNS, secs),
                                    f"{kind} me")

                def db_guard():
                    t["db_guard"] = dblimits.run(kind, url, "guard", guard_sids,
                                                 THROUGHPUT_CONNS, secs, work)

                def server_refresh():
                    t["refresh"] = check(wrk(srv.url, "refresh", tk.refresh_chunk(),
                                             THROUGHPUT_CONNS, secs), f"{kind} refresh")

                def db_rotation():
                    t["db_rotation"] = dblimits.run(kind, url, "rotation", rotation_sids,
                                                    THROUGHPUT_CONNS, secs, work)
                steps = [server_me, db_guard, server_refresh, db_rotation]
                if k % 2:
                    steps = [db_guard, server_me, db_rotation, server_refresh]
                for step in steps:
                    step()
                t["me_ratio"] = t["me"]["rps"] / t["db_guard"]["rps"]
                t["refresh_ratio"] = t["refresh"]["rps"] / t["db_rotation"]["rps"]
                t["refresh_vs_me"] = t["refresh"]["rps"] / t["me"]["rps"]
                turns.append(t)
                log(f"{kind}, turn {k + 1}: me {t['me']['rps']:.0f}/s vs "
                    f"{t['db_guard']['tool']} {t['db_guard']['rps']:.0f}/s "
                    f"({t['me_ratio']:.2f}); refresh "
                    f"{t['refresh']['rps']:.0f}/s vs {t['db_rotation']['rps']:.0f}/s "
                    f"({t['refresh_ratio']:.2f})")
            mid = sorted(turns, key=lambda t: t["me"]["rps"])[len(turns) // 2]
            return {"startup_s": srv.startup, "me": mid["me"], "refresh": mid["refresh"],
                    "refresh_vs_me": statistics.median(t["refresh_vs_me"] for t in turns),
                    "turns": turns, "round_trips": trips, "conns": THROUGHPUT_CONNS,
                    "secs": secs}
        finally:
            srv.stop()
    finally:
        sh([TOOL, "dropdb", name], 120, env=tool_env)


def backend_urls():
    return [(kind, os.environ[var]) for kind, var in
            (("MySQL/MariaDB", "BENCH_MYSQL_URL"), ("PostgreSQL", "BENCH_POSTGRES_URL"))
            if os.environ.get(var)]


def signing(out, cfg, hash_, compare=None):
    """`me` on servers that differ only in how access tokens are signed, interleaved.

    The release binary with `JWT_ALGORITHM=HS256` and with its default (ES256), each on a
    fresh SQLite database, and with `compare` = (path, label) also that binary (HS256: the
    server before issue 14 knew nothing else; the seeding tool mints its tokens with the
    same secret). Each server is seeded with the HOT tokens of the main `me` figure (cache
    hits after the first pass) and COLD_TOKENS more, used round-robin, so that each token
    has left the verified-token cache before it comes round again. The servers take turns,
    the order reversed every alternation; each turn is a 1 s warm-up and the measurement
    (THROUGHPUT_CONNS connections, cfg["secs"]), first with the hot tokens, then the cold.
    """
    plan = [(alg, None, {"JWT_ALGORITHM": alg}) for alg in ALGORITHMS]
    if compare:
        # The old server ignores JWT_ALGORITHM; the seeding tool reads it.
        plan.append(("compare", compare[0], {"JWT_ALGORITHM": "HS256"}))
    servers = {}
    try:
        for name, binary, env in plan:
            srv = Server(out, f"signing-{name}", f"sqlite://{out}/signing-{name}/auth.db?mode=rwc",
                         binary=binary, env=env)
            servers[name] = (srv, srv.seed(hash_, HOT, 0, 0, "hot"),
                             srv.seed(hash_, COLD_TOKENS, 0, 0, "cold"))
        res = {name: {"hot": [], "cold": []} for name in servers}
        names = list(servers)
        for k in range(cfg["alternations"]):
            for name in (names if k % 2 == 0 else names[::-1]):
                srv, hot, cold = servers[name]
                for kind, tokens in (("hot", hot), ("cold", cold)):
                    wrk(srv.url, "me", tokens.access, THROUGHPUT_CONNS, 1)
                    res[name][kind].append(check(
                        wrk(srv.url, "me", tokens.access, THROUGHPUT_CONNS, cfg["secs"]),
                        f"signing {name} me {kind}"))
            log(f"signing, alternation {k + 1}: " + ", ".join(
                f"{name} {res[name]['hot'][-1]['rps']:.0f}/s hot, "
                f"{res[name]['cold'][-1]['rps']:.0f}/s cold" for name in names))
        return {"servers": res, "compare": compare[1] if compare else None,
                "alternations": cfg["alternations"], "cold_tokens": COLD_TOKENS}
    finally:
        for srv, _, _ in servers.values():
            srv.stop()


def refresh_latency(out, cfg, hash_, before=None, before_tool=None):
    """`refreshToken` at 1, 8 and 32 connections, interleaved with `before` if given.

    This release binary and, with `before` = (path, label), that binary (a build from
    before SQLite group commit), each on a fresh SQLite database seeded with 2 × HOT
    sessions. The servers take turns, the order reversed every alternation; a turn is a
    1 s warm-up at 32 connections, then cfg["secs"] at each connection count in
    REFRESH_SWEEP, every load on fresh rotation chains (CHUNK tokens, spent in turn);
    before those, `me` at 32 connections on the same server.
    """
    plan = [("this", None, None)] + ([("before", before[0], before_tool)] if before else [])
    servers = {}
    try:
        for name, binary, tool in plan:
            srv = Server(out, f"refresh-{name}",
                         f"sqlite://{out}/refresh-{name}/auth.db?mode=rwc", binary=binary,
                         tool=tool)
            tokens = srv.seed(hash_, 2 * HOT, 0, 0, "hot")
            # `me` with HOT of them, as the main figure does (each in the verified-token
            # cache after the first pass).
            with open(tokens.access) as f:
                lines = f.readlines()[:HOT]
            tokens.access = os.path.join(tokens.dir, "access-hot.txt")
            with open(tokens.access, "w") as f:
                f.writelines(lines)
            servers[name] = (srv, tokens)
        res = {name: {c: [] for c in (*REFRESH_SWEEP, "me")} for name in servers}
        names = list(servers)
        for k in range(cfg["alternations"]):
            for name in (names if k % 2 == 0 else names[::-1]):
                srv, tokens = servers[name]
                wrk(srv.url, "refresh", tokens.refresh_chunk(), THROUGHPUT_CONNS, 1)
                # `me` on the same server, for refresh ÷ me side by side (figure 4's ratio).
                res[name]["me"].append(check(
                    wrk(srv.url, "me", tokens.access, THROUGHPUT_CONNS, cfg["secs"]),
                    f"me {name}"))
                for c in REFRESH_SWEEP:
                    res[name][c].append(check(
                        wrk(srv.url, "refresh", tokens.refresh_chunk(), c, cfg["secs"]),
                        f"refresh {name} c={c}"))
            log(f"refresh, alternation {k + 1}: " + "; ".join(
                f"{name} " + ", ".join(f"c={c} {res[name][c][-1]['rps']:.0f}/s "
                                       f"p50 {res[name][c][-1]['p50']:.2f} ms"
                                       for c in REFRESH_SWEEP) for name in names))
        return {"servers": {n: {str(c): v for c, v in r.items()} for n, r in res.items()},
                "before": before[1] if before else None, "alternations": cfg["alternations"],
                "sweep": list(REFRESH_SWEEP)}
    finally:
        for srv, _ in servers.values():
            srv.stop()


def metrics_cost(out, cfg, hash_):
    """`me` on two servers that differ only in `METRICS_ADDR`, interleaved.

    The release binary on two fresh SQLite databases, one without `METRICS_ADDR` (no
    recorder: every metric is a no-op) and one with it, scraped every SCRAPE_EVERY_S while
    it is measured. Each is seeded with the HOT tokens of the main `me` figure. The servers
    take turns, the order reversed every alternation; a turn is a 1 s warm-up and the
    measurement (THROUGHPUT_CONNS connections, cfg["secs"]).
    """
    servers = {}
    scrapes = {"count": 0, "bytes": 0, "failed": 0}
    try:
        for name in ("off", "on"):
            env = {"METRICS_ADDR": f"127.0.0.1:{free_port()}"} if name == "on" else {}
            srv = Server(out, f"metrics-{name}", f"sqlite://{out}/metrics-{name}/auth.db?mode=rwc",
                         env=env)
            srv.metrics_port = int(env["METRICS_ADDR"].rsplit(":", 1)[1]) if env else None
            servers[name] = (srv, srv.seed(hash_, HOT, 0, 0, "hot"))
        res = {name: [] for name in servers}
        names = list(servers)
        for k in range(cfg["metrics_alternations"]):
            for name in (names if k % 2 == 0 else names[::-1]):
                srv, tokens = servers[name]
                wrk(srv.url, "me", tokens.access, THROUGHPUT_CONNS, 1)
                stop = threading.Event()

                def scrape(port=srv.metrics_port):
                    while port and not stop.wait(SCRAPE_EVERY_S):
                        try:
                            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                            conn.request("GET", "/metrics")
                            resp = conn.getresponse()
                            body = resp.read()
                            conn.close()
                            scrapes["count"] += 1
                            scrapes["bytes"] = len(body)
                            if resp.status != 200:
                                scrapes["failed"] += 1
                        except OSError:
                            scrapes["failed"] += 1
                scraper = threading.Thread(target=scrape)
                scraper.start()
                try:
                    res[name].append(check(
                        wrk(srv.url, "me", tokens.access, THROUGHPUT_CONNS, cfg["secs"]),
                        f"metrics {name} me"))
                finally:
                    stop.set()
                    scraper.join(timeout=10)
            log(f"metrics, alternation {k + 1}: off {res['off'][-1]['rps']:.0f}/s, "
                f"on {res['on'][-1]['rps']:.0f}/s")
        if scrapes["count"] == 0 or scrapes["failed"]:
            raise RuntimeError(f"metrics: {scrapes['count']} scrapes, {scrapes['failed']} failed")
        return {"servers": res, "alternations": cfg["metrics_alternations"],
                "scrape_every_s": SCRAPE_EVERY_S, "scrapes": scrapes["count"],
                "scrape_bytes": scrapes["bytes"]}
    finally:
        for srv, _ in servers.values():
            srv.stop()


def proc_cpu_secs(pids):
    """CPU seconds (user + system) the processes `pids` have used so far; gone ones count 0."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            pass
    return total / hz


def pids_named(comm):
    """Every process whose name (comm) is `comm`: PostgreSQL's backends come and go."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == comm:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def cluster_figure(out, cfg, hash_, admin_url):
    """`me` and `refreshToken` through HAProxy with 1, 2 and 3 instances on PostgreSQL.

    deploy/local-cluster's cluster (three release instances with shared secrets, a private
    Redis for the rate limits, HAProxy with active health checks) on a fresh database on
    the PostgreSQL of `admin_url`, seeded with HOT sessions. The number of instances in
    service is set through HAProxy's admin socket (the others in `maint`), so the same
    processes and the same database serve every count. A pass measures 1, 2 and 3
    instances (the order reversed every other pass); each count is a 1 s warm-up, `me` and
    then `refreshToken` at THROUGHPUT_CONNS connections through the balancer. The CPU each
    kind of process used during each measurement is read from /proc.
    """
    sys.path.insert(0, os.path.join(ROOT, "deploy"))
    import cluster as local_cluster  # deploy/cluster.py
    # Cluster.up finds the PostgreSQL server through TEST_POSTGRES_URL.
    saved = os.environ.get("TEST_POSTGRES_URL")
    os.environ["TEST_POSTGRES_URL"] = admin_url
    try:
        c = local_cluster.Cluster.up("postgres", 3, SERVER,
                                     state_path=os.path.join(out, "cluster-state.json"))
    finally:
        if saved is None:
            os.environ.pop("TEST_POSTGRES_URL", None)
        else:
            os.environ["TEST_POSTGRES_URL"] = saved
    try:
        d = os.path.join(out, "cluster-seed")
        os.makedirs(d, exist_ok=True)
        r = sh([TOOL, "seed", d, hash_, str(HOT), "0", "0"], 900, env=c.instance_env(0), cwd=d)
        log(f"cluster: {r.stderr.strip()}")
        tokens = Tokens(d)
        counts = (1, 2, 3)
        res = {n: [] for n in counts}
        for k in range(cfg["alternations"]):
            for n in (counts if k % 2 == 0 else counts[::-1]):
                for i in range(3):
                    answer = c.set_server_state(i, "ready" if i < n else "maint")
                    if answer:
                        raise RuntimeError(f"HAProxy refused a state change: {answer}")
                names = [inst["name"] for inst in c.instances]
                c.wait_servers(lambda st: all(st.get(names[i]) == ("UP" if i < n else "MAINT")
                                              for i in range(3)),
                               timeout=30, what=f"{n} instance(s) in service")
                wrk(c.balancer, "me", tokens.access, THROUGHPUT_CONNS, 1)
                m = {}
                for mode, file in (("me", tokens.access), ("refresh", tokens.refresh_chunk())):
                    groups = {
                        "instances": [c.instances[i]["pid"] for i in range(3)],
                        "haproxy": [c.state["balancer"]["pid"]],
                        "postgres": pids_named("postgres"),
                        "redis": [c.state["redis"]["pid"]],
                    }
                    before = {g: proc_cpu_secs(p) for g, p in groups.items()}
                    wrk_before = os.times()
                    t0 = time.monotonic()
                    s = check(wrk(c.balancer, mode, file, THROUGHPUT_CONNS, cfg["secs"]),
                              f"cluster {n} {mode}")
                    wall = time.monotonic() - t0
                    groups["postgres"] = sorted(set(groups["postgres"]) | set(pids_named("postgres")))
                    wrk_after = os.times()
                    s["cores"] = {g: (proc_cpu_secs(p) - before[g]) / wall
                                  for g, p in groups.items()}
                    s["cores"]["wrk"] = ((wrk_after.children_user + wrk_after.children_system)
                                         - (wrk_before.children_user + wrk_before.children_system)
                                         ) / wall
                    m[mode] = s
                res[n].append(m)
                log(f"cluster, pass {k + 1}, {n} instance(s): me {m['me']['rps']:.0f}/s, "
                    f"refresh {m['refresh']['rps']:.0f}/s")
        return {"counts": {str(n): v for n, v in res.items()},
                "alternations": cfg["alternations"]}
    finally:
        c.down()


def cpu_clock():
    """(CPU seconds the machine spent busy, stolen seconds, CPU seconds of this process and
    its waited-for children, monotonic time). Busy counts interrupts too: the loopback
    traffic's softirq time shows there in /proc/stat but in the processes' own times."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    t = os.times()
    # user nice system idle iowait irq softirq steal
    return ((v[0] + v[1] + v[2] + v[5] + v[6]) / hz, (v[7] if len(v) > 7 else 0) / hz,
            t.user + t.system + t.children_user + t.children_system, time.monotonic())


def other_cores(start, end):
    """Average cores used by other programs between two cpu_clock()s, and cores stolen."""
    wall = max(end[3] - start[3], 1e-9)
    return max(0.0, (end[0] - start[0]) - (end[2] - start[2])) / wall, (end[1] - start[1]) / wall


def stats(values):
    values = [v for v in values if v is not None]
    return statistics.median(values), min(values), max(values)


def build():
    flags = ["--release"] if BUILD == "release" else []
    log(f"building the {BUILD} server and bench helpers (cargo build {' '.join(flags)})")
    t = time.monotonic()
    subprocess.run(["cargo", "build", *flags, "--features", "bench", "--bin", "auth-server",
                    "--example", "bench_tool", "--example", "bench_baseline"],
                   cwd=ROOT, check=True, timeout=3600)
    log(f"build took {time.monotonic() - t:.0f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="a short run that checks it all works")
    ap.add_argument("--runs", type=int, help="override the number of runs")
    ap.add_argument("--no-build", action="store_true", help="use the existing release build")
    ap.add_argument("--report", help="where to write the report (default: BENCHMARKS.md; "
                    "with --smoke, the run's directory under bench/out/)")
    ap.add_argument("--plot", help="where to write the plot (default: bench/latency.svg, "
                    "or the run's directory with --smoke)")
    ap.add_argument("--compare-binary", metavar="PATH",
                    help="another auth-server binary (e.g. a release build of an older commit; "
                    "it must accept this build's seeded rows and HS256 tokens) to measure "
                    "`me` on, interleaved with the HS256/ES256 comparison")
    ap.add_argument("--compare-label", metavar="TEXT",
                    help="how the report names --compare-binary (default: its path)")
    ap.add_argument("--before-binary", metavar="PATH",
                    help="an auth-server binary from before SQLite group commit (issue 17) to "
                    "measure `refreshToken` at 1, 8 and 32 connections on, in turns with this "
                    "build")
    ap.add_argument("--before-tool", metavar="PATH",
                    help="the bench_tool example built with --before-binary (cargo build "
                    "--release --features bench --example bench_tool), to seed its database: "
                    "needed when that build's schema is older than this one's")
    ap.add_argument("--before-label", metavar="TEXT",
                    help="how the report names --before-binary (default: its path)")
    ap.add_argument("--only-refresh", action="store_true",
                    help="measure only `refreshToken` at 1, 8 and 32 connections (and on "
                    "--before-binary); prints the section and writes it to the run's directory "
                    "(BENCHMARKS.md is left alone)")
    ap.add_argument("--only-cluster", action="store_true",
                    help="measure only the cluster figure (1, 2, 3 instances behind HAProxy on "
                    "the PostgreSQL of BENCH_POSTGRES_URL); prints the section and writes it to "
                    "the run's directory (BENCHMARKS.md is left alone)")
    ap.add_argument("--only-metrics", action="store_true",
                    help="measure only `me` with metrics on and off; prints the section and "
                    "writes it to the run's directory (BENCHMARKS.md is left alone)")
    ap.add_argument("--only-backends", action="store_true",
                    help="measure only `me` and `refreshToken` on MySQL/MariaDB and PostgreSQL "
                    "(BENCH_MYSQL_URL, BENCH_POSTGRES_URL) beside the databases' own rates for "
                    "the same statements (pgbench, sysbench); prints the section and writes it "
                    "to the run's directory (BENCHMARKS.md is left alone)")
    args = ap.parse_args()
    def other_binary(flag, path, label):
        """(path, label) of another build given with `flag`, checked; None without it."""
        if not path:
            return None
        path = os.path.abspath(path)
        if not os.access(path, os.X_OK):
            sys.exit(f"{flag} {path}: not an executable file")
        return path, label or path

    compare = other_binary("--compare-binary", args.compare_binary, args.compare_label)
    before = other_binary("--before-binary", args.before_binary, args.before_label)
    before_tool = other_binary("--before-tool", args.before_tool, None)
    before_tool = before_tool[0] if before_tool else None
    if BUILD != "release" and not args.smoke:
        sys.exit("BENCH_BUILD=debug is for --smoke only: figures are measured on release builds")
    profile = "smoke" if args.smoke else "full"
    cfg = dict(PROFILES[profile])
    if args.runs:
        cfg["runs"] = args.runs
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (bench/run installs it)")
    started = time.monotonic()
    if not args.no_build:
        build()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = os.path.join(BENCH, "out", f"{stamp}-{profile}")
    os.makedirs(out, exist_ok=True)
    log(f"working directory {out}")
    report_path = args.report or (os.path.join(out, "BENCHMARKS.md") if args.smoke
                                  else os.path.join(ROOT, "BENCHMARKS.md"))
    plot_path = args.plot or (os.path.join(out, "latency.svg") if args.smoke
                              else os.path.join(BENCH, "latency.svg"))
    load_before = os.getloadavg()[0]
    clock_before = cpu_clock()

    # bcrypt at the default cost, timed single-threaded by the same code the server runs.
    def verify():
        r = sh([TOOL, "bcrypt", "12", str(cfg["bcrypt_rounds"])], 300)
        return statistics.median(json.loads(r.stdout)["verify_secs"])
    first = json.loads(sh([TOOL, "bcrypt", "12", "1"], 300).stdout)
    hash_ = first["hash"]

    def only(name, measured, section):
        """Ends an --only-* run: prints its section and writes it and the raw results to
        the run's directory; BENCHMARKS.md is left alone."""
        others, stolen = other_cores(clock_before, cpu_clock())
        section += (f"\nOther programs used {others:.2f} cores on average during the run, "
                    f"{stolen:.2f} stolen; load average {load_before:.1f} at the start.\n")
        with open(os.path.join(out, f"{name}.md"), "w") as f:
            f.write(section)
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump({"cfg": cfg, name: measured}, f, indent=1, default=str)
        print(section)
        log(f"done in {(time.monotonic() - started) / 60:.1f} min: {out}/{name}.md")

    import report  # bench/report.py
    if args.only_cluster:
        admin = os.environ.get("BENCH_POSTGRES_URL")
        if not admin:
            sys.exit("--only-cluster needs BENCH_POSTGRES_URL (e.g. "
                     "postgres://postgres@127.0.0.1:5432/postgres)")
        log(f"cluster: 1, 2 and 3 instances behind HAProxy, {cfg['alternations']} pass(es)")
        measured = cluster_figure(out, cfg, hash_, admin)
        only("cluster", measured, report.cluster_section(measured, cfg, stats)[1])
        return

    if args.only_refresh:
        log(f"refresh: 1, 8 and 32 connections{' and ' + before[1] if before else ''}, "
            f"{cfg['alternations']} alternation(s)")
        measured = refresh_latency(out, cfg, hash_, before, before_tool)
        only("refresh", measured, report.refresh_section(measured, cfg, stats)[1])
        return

    if args.only_metrics:
        log(f"metrics: `me` with METRICS_ADDR and without, {cfg['metrics_alternations']} "
            f"alternation(s)")
        measured = metrics_cost(out, cfg, hash_)
        only("metrics", measured, report.metrics_section(measured, cfg, stats)[1])
        return

    if args.only_backends:
        if not backend_urls():
            sys.exit("--only-backends needs BENCH_POSTGRES_URL and/or BENCH_MYSQL_URL (e.g. "
                     "postgres://postgres@127.0.0.1:5432/postgres, mysql://root@127.0.0.1:3306/mysql)")
        measured = {}
        for kind, admin in backend_urls():
            log(f"{kind}: {admin.split('@')[-1]}, {cfg['alternations']} turn(s)")
            measured[kind] = other_backend(out, kind, admin, cfg, hash_)
        rows, section = report.backends_section(measured, cfg, stats)
        only("backends", measured, "| # | figure | median (min–max) | goal | |\n"
             "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n" + section)
        return

    log("start-up times on empty databases")
    startups = startup_times(out, cfg["startups"])

    log(f"large database: {cfg['large_users']:,} users and sessions")
    large = Server(out, "large", f"sqlite://{out}/large/auth.db?mode=rwc")
    startups.append(large.startup)
    runs, last = [], None
    try:
        filler = cfg["large_users"] - (cfg["runs"] + 1) * HOT - LOGIN_ACCOUNTS
        t = time.monotonic()
        large.seed(hash_, HOT, LOGIN_ACCOUNTS, filler, "seed0")
        seed_secs = time.monotonic() - t
        plans = large.tool("plans").stdout
        large_tokens = [large.seed(hash_, HOT, 0, 0, f"seed{i + 1}") for i in range(cfg["runs"])]
        counts = large.tool("counts").stdout.strip()
        for i in range(cfg["runs"]):
            if last is not None:
                last["_server"].stop()
            last = run_once(i + 1, cfg, out, large, large_tokens[i], hash_, verify)
            runs.append(last)
            log(f"run {i + 1}: me {last['me']['rps']:.0f}/s, baseline {last['baseline']['rps']:.0f}/s, "
                f"refresh {last['refresh']['rps']:.0f}/s, login ratio {last['login_ratio']:.2f}, "
                f"flood ratio {last['flood_ratio']:.2f}, p50 ratios {last['p50_me_ratio']:.2f}/"
                f"{last['p50_refresh_ratio']:.2f}, peak RSS {last['rss_peak_mb']:.1f} MB")
        log(f"soak: {cfg['soak_secs']} s")
        soaked = soak(last["_server"], last["_tokens"], cfg["soak_secs"])
    finally:
        if last is not None:
            last["_server"].stop()
        large.stop()

    log(f"signing: `me` on HS256 and ES256{' and ' + compare[1] if compare else ''}, "
        f"{cfg['alternations']} alternation(s)")
    signed = signing(out, cfg, hash_, compare)

    log(f"metrics: `me` with METRICS_ADDR and without, {cfg['metrics_alternations']} "
        f"alternation(s)")
    measured = metrics_cost(out, cfg, hash_)

    log(f"refresh: 1, 8 and 32 connections{' and ' + before[1] if before else ''}, "
        f"{cfg['alternations']} alternation(s)")
    rotations = refresh_latency(out, cfg, hash_, before, before_tool)

    backends = {}
    for kind, admin in backend_urls():
        log(f"{kind}: {admin.split('@')[-1]}")
        backends[kind] = other_backend(out, kind, admin, cfg, hash_)

    clustered = None
    if os.environ.get("BENCH_POSTGRES_URL"):
        log(f"cluster: 1, 2 and 3 instances behind HAProxy, {cfg['alternations']} pass(es)")
        clustered = cluster_figure(out, cfg, hash_, os.environ["BENCH_POSTGRES_URL"])

    elapsed = time.monotonic() - started
    others, stolen = other_cores(clock_before, cpu_clock())
    log(f"other programs used {others:.2f} cores on average, {stolen:.2f} stolen")
    report.write(report_path, plot_path, profile=profile, cfg=cfg, runs=runs, startups=startups,
                 soak=soaked, plans=plans, counts=counts, seed_secs=seed_secs, backends=backends,
                 signing=signed, metrics=measured, cluster=clustered, refresh=rotations,
                 elapsed=elapsed, cores=CORES, stats=stats,
                 load_before=load_before, load_after=os.getloadavg()[0],
                 others=others, stolen=stolen)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"cfg": cfg, "runs": [{k: v for k, v in r.items() if not k.startswith("_")}
                                        for r in runs],
                   "startups": startups, "soak": soaked, "backends": backends,
                   "signing": signed, "metrics": measured, "cluster": clustered,
                   "refresh": rotations}, f, indent=1,
                  default=str)
    log(f"done in {elapsed / 60:.1f} min: {report_path}, {plot_path}")


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.path.insert(0, BENCH)
    main()
