"""What PostgreSQL and MariaDB serve themselves, for the statements the server sends.

`bench/run` compares the server's `me` and `refreshToken` rates on PostgreSQL and
MySQL/MariaDB with the rate at which the database itself runs the same statements, over
loopback, at the same concurrency, driven by its own benchmark tool:

- PostgreSQL: `pgbench -M prepared` with `guard.pgbench` (the guard's query) and
  `rotation.pgbench` (the statements of one successful refresh);
- MariaDB/MySQL: `sysbench` with `limits.lua` (the same statements, prepared).

The statements were captured from the server (see README.md). Both tools run on the
database the bench seeded for the server, with its session ids (from the access tokens'
`sid` claims). Rotations use sessions whose refresh tokens the server's own loads never
present (the last RESERVED of the seeded ones), so that neither spends the other's tokens.

Also here: `round_trips`, the server's round trips to the database per request, counted
as data segments it sent on its database sockets (`ss -ti`, `data_segs_out`).
"""

import base64
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
RESERVED = 32  # seeded sessions kept for the databases' own rotations (one per client)


def _sids(access_file):
    """The session ids of the seeded access tokens (their `sid` claims), in file order."""
    sids = []
    with open(access_file) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            payload = line.split(".")[1]
            payload += "=" * (-len(payload) % 4)
            sids.append(json.loads(base64.urlsafe_b64decode(payload))["sid"])
    return sids


def split_sessions(access_file):
    """(sessions for the guard's query, sessions for the databases' rotations): the first
    are all seeded sessions, the second the last RESERVED, whose refresh tokens the
    server's loads must not use (bench.py takes its refresh chunks from the start)."""
    sids = _sids(access_file)
    return sids, sids[-RESERVED:]


def _now():
    """An instant for the statements' time parameters (the server binds the current time)."""
    return datetime.datetime.now(datetime.timezone.utc)


def pgbench_binary():
    found = shutil.which("pgbench")
    if found:
        return found
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return found[-1] if found else None


def _percentiles(latencies_ms):
    if not latencies_ms:
        return 0.0, 0.0
    latencies_ms.sort()
    n = len(latencies_ms)
    return latencies_ms[n // 2], latencies_ms[min(n - 1, int(n * 0.99))]


def _script(name, **subst):
    with open(os.path.join(HERE, name)) as f:
        text = f.read()
    for key, value in subst.items():
        text = text.replace(f"@{key}@", value)
    return text


def pgbench(url, mode, sids, conns, secs, work_dir, threads=2):
    """Runs `pgbench -M prepared` with the `mode` script ("guard" or "rotation") for `secs`
    seconds at `conns` clients; returns {"rps", "p50", "p99", "tx", "failed"} (ms)."""
    binary = pgbench_binary()
    if binary is None:
        raise RuntimeError("pgbench not found (it comes with PostgreSQL)")
    os.makedirs(work_dir, exist_ok=True)
    script = os.path.join(work_dir, f"{mode}.pgbench")
    with open(script, "w") as f:
        f.write(_script(f"{mode}.pgbench"))
    prefix = os.path.join(work_dir, f"{mode}-log")
    for old in glob.glob(prefix + "*"):
        os.remove(old)
    now = _now()
    cmd = [binary, "-n", "-M", "prepared", "-c", str(conns), "-j", str(min(threads, conns)),
           "-T", str(secs), "-f", script, "--log", f"--log-prefix={prefix}",
           "-D", "init=0", "-D", "one=1", "-D", "ip=127.0.0.1", "-D", f"nsids={len(sids)}", "-D", "sids={" + ",".join(sids) + "}",
           "-D", f"now={now.isoformat(sep=' ')}",
           "-D", f"expires={(now + datetime.timedelta(days=30)).isoformat(sep=' ')}",
           url]
    r = subprocess.run(cmd, text=True, capture_output=True, timeout=secs + 120)
    if r.returncode != 0:
        raise RuntimeError(f"pgbench {mode} failed:\n{r.stdout}\n{r.stderr}")
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", r.stdout)
    lat = []
    for path in glob.glob(prefix + "*"):
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    lat.append(int(fields[2]) / 1000.0)
    p50, p99 = _percentiles(lat)
    return {"rps": float(m.group(1)) if m else 0.0, "p50": p50, "p99": p99, "tx": len(lat),
            "failed": int(failed.group(1)) if failed else 0, "tool": "pgbench"}


def _mysql_args(url):
    u = urllib.parse.urlsplit(url)
    args = [f"--mysql-host={u.hostname or '127.0.0.1'}", f"--mysql-port={u.port or 3306}",
            f"--mysql-user={urllib.parse.unquote(u.username or 'root')}",
            f"--mysql-db={u.path.lstrip('/')}"]
    if u.password:
        args.append(f"--mysql-password={urllib.parse.unquote(u.password)}")
    return args


def sysbench(url, mode, sids, conns, secs, work_dir, extra=()):
    """Runs `sysbench limits.lua` in `mode` ("guard" or "rotation") for `secs` seconds at
    `conns` threads (one connection each); returns as `pgbench` does."""
    if shutil.which("sysbench") is None:
        raise RuntimeError("sysbench is not installed (bench/run installs it)")
    os.makedirs(work_dir, exist_ok=True)
    ids = os.path.join(work_dir, f"{mode}-sids.txt")
    with open(ids, "w") as f:
        f.write("\n".join(s.replace("-", "") for s in sids) + "\n")
    now = _now().replace(tzinfo=None)
    cmd = ["sysbench", os.path.join(HERE, "limits.lua"), "--db-driver=mysql",
           *_mysql_args(url), f"--threads={conns}", f"--time={secs}", "--events=0",
           "--percentile=99", "--histogram=on", f"--mode={mode}", f"--sids={ids}",
           f"--now={now.isoformat(sep=' ')}",
           f"--expires={(now + datetime.timedelta(days=30)).isoformat(sep=' ')}", *extra, "run"]
    r = subprocess.run(cmd, text=True, capture_output=True, timeout=secs + 120)
    if r.returncode != 0:
        raise RuntimeError(f"sysbench {mode} failed:\n{r.stdout}\n{r.stderr}")
    m = re.search(r"transactions:\s+(\d+)\s+\(([0-9.]+) per sec", r.stdout)
    errors = re.search(r"ignored errors:\s+(\d+)", r.stdout)
    # The histogram: "value |**** count" lines, values in ms.
    hist = []
    for line in r.stdout.splitlines():
        hm = re.match(r"\s*([0-9.]+)\s+\|\**\s+(\d+)\s*$", line)
        if hm:
            hist.append((float(hm.group(1)), int(hm.group(2))))
    total = sum(c for _, c in hist)

    def pct(q):
        seen = 0
        for value, count in hist:
            seen += count
            if seen >= q * total:
                return value
        return 0.0
    p99 = re.search(r"99th percentile:\s+([0-9.]+)", r.stdout)
    return {"rps": float(m.group(2)) if m else 0.0, "p50": pct(0.5),
            "p99": float(p99.group(1)) if p99 else pct(0.99), "tx": int(m.group(1)) if m else 0,
            "failed": int(errors.group(1)) if errors else 0, "tool": "sysbench"}


def run(kind, url, mode, sids, conns, secs, work_dir):
    """The database's own rate for `mode`: "guard" or "rotation" (the server's statements);
    the experiments "rotation_transaction" (PostgreSQL: the rotation as the transaction
    the server sent before issue 17) and "rotation_set_per_txn" (MariaDB/MySQL: the
    isolation level set before every BEGIN, as the server did before issue 17)."""
    if kind == "PostgreSQL":
        return pgbench(url, mode, sids, conns, secs, work_dir)
    if mode == "rotation_set_per_txn":
        return sysbench(url, "rotation", sids, conns, secs, work_dir, ["--set_per_txn=on"])
    return sysbench(url, mode, sids, conns, secs, work_dir)


def _db_port(url):
    return urllib.parse.urlsplit(url).port or (5432 if url.startswith("postgres") else 3306)


def segments_to(pid, port):
    """Data segments process `pid` has sent on its TCP connections to local port `port`."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return 0
    r = subprocess.run(["ss", "-tinoe", "state", "established", f"( dport = :{port} )"],
                       text=True, capture_output=True, timeout=30)
    total, mine = 0, False
    for line in r.stdout.splitlines():
        if not line.startswith(("\t", " ")):
            im = re.search(r"ino:(\d+)", line)
            mine = bool(im and im.group(1) in inodes)
        elif mine:
            dm = re.search(r"data_segs_out:(\d+)", line)
            if dm:
                total += int(dm.group(1))
    return total


def post(port, body, token=None):
    """POSTs one GraphQL request to the server on `port`; its answer, or an error if it
    has any."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", "/graphql", json.dumps(body), headers)
    answer = json.loads(conn.getresponse().read())
    conn.close()
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer}")
    return answer


def round_trips(pid, port, url, access, refresh, n=20):
    """The server's round trips to the database per `me` and per `refreshToken`: `n` of
    each, one at a time (with a few milliseconds between them, well under the pool's idle
    ping threshold), counting the data segments the server sent on its database sockets
    (`ss -ti`: every statement, ping, BEGIN and COMMIT is one flush and one segment).
    `access`: access tokens; `refresh`: at least `n` unused refresh tokens. One at a time,
    because under load segments of one socket can be merged and connections come and go."""
    import time
    db_port = _db_port(url)
    result = {}
    for mode in ("me", "refresh"):
        before = segments_to(pid, db_port)
        for i in range(n):
            if mode == "me":
                post(port, {"query": "{ me { id } }"}, access[i % len(access)])
            else:
                post(port, {"query": "mutation($t: String!) { refreshToken(refreshToken: $t) "
                                      "{ refreshToken } }", "variables": {"t": refresh[i]}})
            time.sleep(0.005)
        time.sleep(0.2)  # the pool's ping on release runs after the answer
        result[mode] = (segments_to(pid, db_port) - before) / n
    return result
