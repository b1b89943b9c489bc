#!/usr/bin/env python3
"""A flood of failed logins against a release server, to show that writing security
events is not the bottleneck, and that a clean shutdown stores every one of them.

Each failed login is a security event with no transaction of its own to ride in; the
server buffers them and inserts a batch at a time. This starts the server on a fresh
SQLite file with cheap bcrypt (BCRYPT_COST=4, so that hashing does not hide the database
writes) and no login rate limits, floods `login` with unknown accounts from several
keep-alive connections for a while, stops the server with SIGTERM and counts the rows.

With --compare-binary OLD, the same flood runs against OLD (a build from before security
events) in alternation, so the two rates are measured side by side.

    bench/events_flood.py target/release/auth-server [--compare-binary OLD] [--secs 10]
"""

import argparse
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary, directory):
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": f"sqlite://{directory}/flood.db?mode=rwc",
        "PORT": str(port),
        "BCRYPT_COST": "4",
        "RATE_LIMIT_LOGIN_PER_IP": "0",
        "RATE_LIMIT_LOGIN_PER_ACCOUNT": "0",
        "RUST_LOG": "warn",
    }
    proc = subprocess.Popen([binary], env=env, cwd=directory,
                            stdout=subprocess.DEVNULL, stderr=open(f"{directory}/server.log", "w"))
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit(f"{binary} did not become healthy")


def flood(port, conns, secs):
    """Failed logins (unknown accounts) from `conns` connections for `secs`; their count."""
    stop = time.time() + secs
    counts = [0] * conns
    errors = []

    def worker(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = 0
        while time.time() < stop:
            body = json.dumps({
                "query": "mutation($e:String!){login(input:{email:$e,password:\"wrong horse\"}){accessToken}}",
                "variables": {"e": f"nobody{n}-{i}@example.com"},
            })
            c.request("POST", "/graphql", body, {"content-type": "application/json"})
            answer = json.loads(c.getresponse().read())
            code = answer.get("errors", [{}])[0].get("extensions", {}).get("code")
            if code != "INVALID_CREDENTIALS":
                errors.append(code)
                return
            counts[n] += 1
            i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"unexpected answers: {errors[:3]}")
    return sum(counts)


def run(binary, conns, secs):
    with tempfile.TemporaryDirectory() as d:
        proc, port = start(binary, d)
        flood(port, conns, 1)  # warm-up (the dummy hash, connections)
        began = time.time()
        sent = flood(port, conns, secs)
        rate = sent / (time.time() - began)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        db = sqlite3.connect(f"{d}/flood.db")
        has_table = db.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'security_events'").fetchone()[0]
        stored = None
        if has_table:
            stored = db.execute(
                "SELECT count(*) FROM security_events WHERE kind = 'login' AND outcome = 'failure'"
            ).fetchone()[0]
        return rate, sent, stored


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("--compare-binary")
    p.add_argument("--secs", type=float, default=10)
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    # The servers run in temporary directories: name the binaries absolutely.
    a.binary = os.path.abspath(a.binary)
    if a.compare_binary:
        a.compare_binary = os.path.abspath(a.compare_binary)
    results = {"new": [], "old": []}
    for r in range(a.rounds):
        # The order alternates, so neither build always runs first (after the other's
        # shutdown, or on a machine that is warming up).
        turns = [("new", a.binary), ("old", a.compare_binary)]
        if r % 2:
            turns.reverse()
        for name, binary in turns:
            if not binary:
                continue
            rate, sent, stored = run(binary, a.conns, a.secs)
            results[name].append(rate)
            lost = "" if stored is None else f", events stored {stored} (+1 s warm-up) of {sent}"
            print(f"round {r + 1} {name}: {rate:.0f} failed logins/s{lost}", flush=True)
            if stored is not None and stored < sent:
                sys.exit(f"{name}: {sent - stored} events lost at shutdown")
    if results["old"]:
        pairs = sorted(n / o for n, o in zip(results["new"], results["old"]))
        print("new / old by round: " + ", ".join(f"{x:.2f}" for x in pairs))
    med = {k: sorted(v)[len(v) // 2] for k, v in results.items() if v}
    print(f"median new: {med['new']:.0f}/s")
    if "old" in med:
        print(f"median old: {med['old']:.0f}/s; new / old = {med['new'] / med['old']:.2f}")


if __name__ == "__main__":
    main()
