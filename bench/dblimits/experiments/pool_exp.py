"""The release server at several DATABASE_MAX_CONNECTIONS on one database, alternating:
pool_exp.py ADMIN_URL 4,10,32 SECS TURNS. For bench/FINDINGS.md (issue 17)."""
import os, sys, statistics
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))); sys.dont_write_bytecode = True
import bench, dblimits
admin = sys.argv[1]; pools = sys.argv[2].split(","); secs = int(sys.argv[3]); turns = int(sys.argv[4])
kind = "PostgreSQL" if admin.startswith("postgres") else "MySQL/MariaDB"
out = os.path.join(bench.BENCH, "out", "poolexp"); os.makedirs(out, exist_ok=True)
name = "bench_pool_" + os.urandom(3).hex()
base = admin.rpartition("/")[0]; url = f"{base}/{name}"
env = dict(os.environ, DATABASE_URL=admin)
bench.sh([bench.TOOL, "createdb", name], 120, env=env)
srvs = {}
try:
    shared = {}
    for p in pools:
        srvs[p] = bench.Server(out, f"pool{p}", url, env=dict(shared, DATABASE_MAX_CONNECTIONS=p))
        shared = {k: srvs[p].env[k] for k in ("JWT_ACCESS_SECRET", "JWT_REFRESH_SECRET", "KEY_ENCRYPTION_KEY")}
    tk = srvs[pools[0]].seed("x", 1000, 0, 0, "seed")
    g, r = dblimits.split_sessions(tk.access)
    tk.refresh = tk.refresh[:-32]
    res = {p: {"me": [], "refresh": []} for p in pools}; db = {"guard": [], "rotation": []}
    for p in pools: bench.wrk(srvs[p].url, "me", tk.access, 32, 1)
    for k in range(turns):
        order = pools if k % 2 == 0 else pools[::-1]
        db["guard"].append(dblimits.run(kind, url, "guard", g, 32, secs, out + "/w")["rps"])
        for p in order:
            res[p]["me"].append(bench.wrk(srvs[p].url, "me", tk.access, 32, secs)["rps"])
        db["rotation"].append(dblimits.run(kind, url, "rotation", r, 32, secs, out + "/w")["rps"])
        for p in order:
            res[p]["refresh"].append(bench.wrk(srvs[p].url, "refresh", tk.refresh_chunk(), 32, secs)["rps"])
    print(kind, "db guard", [round(x) for x in db["guard"]], "db rotation", [round(x) for x in db["rotation"]])
    for p in pools:
        print(kind, "pool", p, "me", [round(x) for x in res[p]["me"]], "refresh", [round(x) for x in res[p]["refresh"]])
finally:
    for s in srvs.values(): s.stop()
    bench.sh([bench.TOOL, "dropdb", name], 120, env=env)
