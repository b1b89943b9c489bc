"""Two or more dblimits modes alternating on one seeded database: variants.py ADMIN_URL SECS
TURNS MODE,MODE (e.g. rotation,rotation_transaction). For bench/FINDINGS.md (issue 17)."""
import os, sys, statistics
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))); sys.dont_write_bytecode = True
import bench, dblimits
admin = sys.argv[1]; secs = int(sys.argv[2]); turns = int(sys.argv[3]); modes = sys.argv[4].split(",")
kind = "PostgreSQL" if admin.startswith("postgres") else "MySQL/MariaDB"
out = os.path.join(bench.BENCH, "out", "variants"); os.makedirs(out, exist_ok=True)
name = "bench_var_" + os.urandom(3).hex()
base = admin.rpartition("/")[0]; url = f"{base}/{name}"
env = dict(os.environ, DATABASE_URL=admin)
bench.sh([bench.TOOL, "createdb", name], 120, env=env)
try:
    srv = bench.Server(out, "var", url)
    try:
        tk = srv.seed("x", 1000, 0, 0, "seed")
    finally:
        srv.stop()
    g, r = dblimits.split_sessions(tk.access)
    res = {m: [] for m in modes}
    for k in range(turns):
        for m in (modes if k % 2 == 0 else modes[::-1]):
            x = dblimits.run(kind, url, m, g if m == "guard" else r, 32, secs, out + "/w")
            res[m].append((round(x["rps"]), round(x["p50"], 2), round(x["p99"], 2)))
    for m in modes:
        print(kind, m, "median rps", statistics.median(v[0] for v in res[m]), res[m], flush=True)
finally:
    bench.sh([bench.TOOL, "dropdb", name], 120, env=env)
