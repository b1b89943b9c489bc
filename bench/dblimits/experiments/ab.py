"""Two server binaries (BEFORE_BINARY, AFTER_BINARY) on one database, alternating, beside the
database's own tool: ab.py ADMIN_URL SECS TURNS. For bench/FINDINGS.md (issue 17)."""
import os, sys, statistics, json
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))); sys.dont_write_bytecode = True
import bench, dblimits
admin = sys.argv[1]; secs = int(sys.argv[2]); turns = int(sys.argv[3])
bins = {"before": os.environ["BEFORE_BINARY"], "after": os.environ["AFTER_BINARY"]}
kind = "PostgreSQL" if admin.startswith("postgres") else "MySQL/MariaDB"
out = os.path.join(bench.BENCH, "out", "ab"); os.makedirs(out, exist_ok=True)
name = "bench_ab_" + os.urandom(3).hex()
base = admin.rpartition("/")[0]; url = f"{base}/{name}"
env = dict(os.environ, DATABASE_URL=admin)
bench.sh([bench.TOOL, "createdb", name], 120, env=env)
srvs = {}
try:
    shared = {}
    for b, path in bins.items():
        srvs[b] = bench.Server(out, f"{b}-{name}", url, binary=path, env=shared)
        shared = {k: srvs[b].env[k] for k in ("JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET", "KEY_ENCRYPTION_KEY")}
    tk = srvs["before"].seed("x", 1000, 0, 0, "seed")
    g, r = dblimits.split_sessions(tk.access)
    tk.refresh = tk.refresh[:-32]
    access = open(tk.access).read().split()
    trips = {}
    for b in bins:
        trips[b] = dblimits.round_trips(srvs[b].proc.pid, srvs[b].port, url, access, tk.refresh[-20:])
        tk.refresh = tk.refresh[:-20]
    print(kind, "round trips", trips, flush=True)
    for b in bins: bench.wrk(srvs[b].url, "me", tk.access, 32, 1)
    res = {b: {"me": [], "refresh": [], "me_ratio": [], "refresh_ratio": []} for b in bins}
    db = {"guard": [], "rotation": []}
    names = list(bins)
    for k in range(turns):
        order = names if k % 2 == 0 else names[::-1]
        gd = dblimits.run(kind, url, "guard", g, 32, secs, out + "/w"); db["guard"].append(gd)
        for b in order:
            s = bench.wrk(srvs[b].url, "me", tk.access, 32, secs); res[b]["me"].append(s)
            res[b]["me_ratio"].append(s["rps"] / gd["rps"])
        rt = dblimits.run(kind, url, "rotation", r, 32, secs, out + "/w"); db["rotation"].append(rt)
        for b in order:
            s = bench.wrk(srvs[b].url, "refresh", tk.refresh_chunk(), 32, secs); res[b]["refresh"].append(s)
            res[b]["refresh_ratio"].append(s["rps"] / rt["rps"])
        print(kind, "turn", k + 1, "db", round(gd["rps"]), round(rt["rps"]), {b: (round(res[b]["me"][-1]["rps"]), round(res[b]["refresh"][-1]["rps"])) for b in bins}, flush=True)
    def mm(v): return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
    print(kind, "DB guard rps", mm([x["rps"] for x in db["guard"]]), "p50/p99", mm([x["p50"] for x in db["guard"]]), mm([x["p99"] for x in db["guard"]]))
    print(kind, "DB rotation rps", mm([x["rps"] for x in db["rotation"]]), "p50/p99", mm([x["p50"] for x in db["rotation"]]), mm([x["p99"] for x in db["rotation"]]))
    for b in bins:
        print(kind, b, "me rps", mm([x["rps"] for x in res[b]["me"]]), "ratio", mm(res[b]["me_ratio"]), "p50/p99", mm([x["p50"] for x in res[b]["me"]]), mm([x["p99"] for x in res[b]["me"]]))
        print(kind, b, "refresh rps", mm([x["rps"] for x in res[b]["refresh"]]), "ratio", mm(res[b]["refresh_ratio"]), "p50/p99", mm([x["p50"] for x in res[b]["refresh"]]), mm([x["p99"] for x in res[b]["refresh"]]))
    json.dump({"db": db, "res": res, "trips": trips}, open(f"{out}/{name}.json", "w"), default=str)
finally:
    for s in srvs.values(): s.stop()
    bench.sh([bench.TOOL, "dropdb", name], 120, env=env)
