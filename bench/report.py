"""Writes BENCHMARKS.md and the latency plot (SVG, standard library only) for bench.py."""

import datetime
import os
import platform
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(*args):
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _rustc():
    try:
        return subprocess.run(["rustc", "--version"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def svg(path, sweep, title):
    """Latency percentiles (log scale) against connections (log scale)."""
    w, h, ml, mr, mt, mb = 720, 420, 70, 150, 40, 60
    conns = sorted(sweep)
    series = [("p50", "#1f77b4"), ("p90", "#ff7f0e"), ("p99", "#d62728")]
    import math
    ys = [sweep[c][k] for c in conns for k, _ in series if sweep[c][k] > 0]
    lo = 10 ** math.floor(math.log10(min(ys)))
    hi = 10 ** math.ceil(math.log10(max(ys)))
    if hi <= lo:
        hi = lo * 10
    xl, xh = math.log2(conns[0]), math.log2(conns[-1]) if len(conns) > 1 else 1

    def x(c):
        return ml + (math.log2(c) - xl) / max(xh - xl, 1e-9) * (w - ml - mr)

    def y(v):
        return mt + (1 - (math.log10(max(v, lo)) - math.log10(lo)) /
                     (math.log10(hi) - math.log10(lo))) * (h - mt - mb)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    decade = lo
    while decade <= hi * 1.0001:
        for m in (1, 2, 5):
            v = decade * m
            if lo <= v <= hi:
                out.append(f'<line x1="{ml}" x2="{w - mr}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                           f'stroke="#ddd"/>')
                out.append(f'<text x="{ml - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
                           f'{v:g}</text>')
        decade *= 10
    for c in conns:
        out.append(f'<line x1="{x(c):.1f}" x2="{x(c):.1f}" y1="{mt}" y2="{h - mb}" stroke="#eee"/>')
        out.append(f'<text x="{x(c):.1f}" y="{h - mb + 16}" text-anchor="middle">{c}</text>')
        out.append(f'<text x="{x(c):.1f}" y="{h - mb + 30}" text-anchor="middle" fill="#666" '
                   f'font-size="10">{sweep[c]["rps"]:.0f}/s</text>')
    out.append(f'<text x="{(ml + w - mr) / 2}" y="{h - 12}" text-anchor="middle">'
               f'concurrent connections (requests/s below)</text>')
    out.append(f'<text x="16" y="{(mt + h - mb) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(mt + h - mb) / 2})">latency (ms, log scale)</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" '
               f'fill="none" stroke="#333"/>')
    for i, (k, color) in enumerate(series):
        pts = " ".join(f"{x(c):.1f},{y(sweep[c][k]):.1f}" for c in conns)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        for c in conns:
            out.append(f'<circle cx="{x(c):.1f}" cy="{y(sweep[c][k]):.1f}" r="3" fill="{color}"/>')
        ly = mt + 20 + i * 20
        out.append(f'<line x1="{w - mr + 15}" x2="{w - mr + 40}" y1="{ly}" y2="{ly}" '
                   f'stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{w - mr + 46}" y="{ly + 4}">{k}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def _signing(signing, cfg, stats, fmt):
    """Rows for the figures table and the section on ES256 against HS256."""
    res = signing["servers"]
    n = signing["alternations"]
    cold_n = f"{signing['cold_tokens']:,}"

    def per(name, kind, key):
        return [s[key] for s in res[name][kind]]

    def ratio(a, b, kind):
        return stats([x / y for x, y in zip(per(a, kind, "rps"), per(b, kind, "rps"))])

    def cell(name, kind, key, digits):
        return fmt(stats(per(name, kind, key)), digits)

    def lat(name, kind):
        return f"{cell(name, kind, 'p50', 2)} / {cell(name, kind, 'p99', 2)}"

    kinds = (("hot", "1,000 tokens (cache hits)"),
             ("cold", f"{cold_n} tokens (every request verifies)"))
    hot = ratio("ES256", "HS256", "hot")
    cold = ratio("ES256", "HS256", "cold")
    rows = [f"| 8 | `me` req/s, ES256 ÷ HS256, same binary, 1,000 tokens (issue 14) | "
            f"{fmt(hot)} | ≥ 0.9 | {'met' if hot[0] >= 0.9 else '**not met**'} |",
            f"| 8 | the same, {cold_n} tokens (no cache hits) | {fmt(cold)} | (reported) | — |"]
    lines = ["| `me`, 32 connections | HS256 | ES256 | ES256 ÷ HS256 |",
             "| --- | --- | --- | --- |"]
    for kind, label in kinds:
        lines.append(f"| {label}, req/s | {cell('HS256', kind, 'rps', 0)} | "
                     f"{cell('ES256', kind, 'rps', 0)} | {fmt(ratio('ES256', 'HS256', kind))} |")
        lines.append(f"| {label}, p50 / p99 ms | {lat('HS256', kind)} | {lat('ES256', kind)} | |")
    compare_md = ""
    if signing.get("compare"):
        label = signing["compare"]
        old = ratio("ES256", "compare", "hot")
        rows.append(f"| 8 | `me` req/s, this build (ES256) ÷ {label} (HS256), 1,000 tokens | "
                    f"{fmt(old)} | ≥ 0.9 | {'met' if old[0] >= 0.9 else '**not met**'} |")
        cl = ["| `me`, 32 connections | " + label + " (HS256) | this build, HS256 | "
              "this build, ES256 | ES256 ÷ before | HS256 ÷ before |",
              "| --- | --- | --- | --- | --- | --- |"]
        for kind, label_k in kinds:
            cl.append(f"| {label_k}, req/s | {cell('compare', kind, 'rps', 0)} | "
                      f"{cell('HS256', kind, 'rps', 0)} | {cell('ES256', kind, 'rps', 0)} | "
                      f"{fmt(ratio('ES256', 'compare', kind))} | "
                      f"{fmt(ratio('HS256', 'compare', kind))} |")
            cl.append(f"| {label_k}, p50 / p99 ms | {lat('compare', kind)} | {lat('HS256', kind)} "
                      f"| {lat('ES256', kind)} | | |")
        compare_md = f"""
The server from before issue 14 ({label}, passed as `--compare-binary`) took its turns in
the same rotation, on its own fresh database, seeded by this build's bench tool with
HS256 tokens under the same kind of secret (the rows and claims did not change):

{chr(10).join(cl)}
"""
    md = f"""
## `me`: ES256 against HS256 (issue 14)

The same release binary on two fresh SQLite databases, one server with
`JWT_ALGORITHM=HS256` (the only algorithm before issue 14) and one with the default,
ES256. The servers take turns, {n} time{'' if n == 1 else 's'}, the order reversed each
time; a turn is a 1 s warm-up and 32 connections for {cfg['secs']} s, first with the 1,000
tokens of the figures above, then with {cold_n} others. With 1,000 tokens each request
after the first pass finds its token in the cache of verified tokens (1,024 entries, least
recently used); {cold_n} tokens taken round-robin have each left that cache before they
come round again, so every request decodes the token and checks its signature. Each
figure is the median (min–max) over the turns; a ratio pairs the two servers'
measurements of the same turn.

{chr(10).join(lines)}
{compare_md}"""
    return rows, md


def median_range(t, digits=2, unit=""):
    """A (median, min, max) triple as the report writes it: **median** (min–max)."""
    med, lo, hi = t
    return f"**{med:.{digits}f}{unit}** ({lo:.{digits}f}–{hi:.{digits}f})"


def metrics_section(metrics, cfg, stats):
    """The figures-table row and the section on the cost of metrics (issue 15)."""
    res = metrics["servers"]
    n = metrics["alternations"]

    fmt = median_range

    def per(name, key):
        return [s[key] for s in res[name]]

    ratio = stats([on / off for on, off in zip(per("on", "rps"), per("off", "rps"))])
    cost = (1 - ratio[0]) * 100
    row = (f"| 9 | `me` req/s, `METRICS_ADDR` set (scraped every {metrics['scrape_every_s']:g} s)"
           f" ÷ unset, same binary (issue 15) | {fmt(ratio)} | ≥ 0.95 | "
           f"{'met' if ratio[0] >= 0.95 else '**not met**'} |")
    lines = ["| `me`, 32 connections | metrics off | metrics on | on ÷ off |",
             "| --- | --- | --- | --- |",
             f"| req/s | {fmt(stats(per('off', 'rps')), 0)} | {fmt(stats(per('on', 'rps')), 0)} "
             f"| {fmt(ratio)} |",
             f"| p50 / p99 ms | {fmt(stats(per('off', 'p50')))} / {fmt(stats(per('off', 'p99')))} "
             f"| {fmt(stats(per('on', 'p50')))} / {fmt(stats(per('on', 'p99')))} | |"]
    md = f"""
## `me` with metrics on and off (issue 15)

The same release binary on two fresh SQLite databases, one server without `METRICS_ADDR`
(no recorder is installed: every metric is a no-op) and one with it, whose `/metrics` a
thread of the benchmark scrapes every {metrics['scrape_every_s']:g} s while it is measured
({metrics['scrapes']} scrapes, the last {metrics['scrape_bytes']:,} bytes). Both seeded with
the 1,000 tokens of the figures above. The servers take turns, {n} time{'' if n == 1 else 's'},
the order reversed each time; a turn is a 1 s warm-up and 32 connections for
{cfg['secs']} s. Each figure is the median (min–max) over the turns; the ratio pairs the
two servers' measurements of the same alternation. Cost: **{cost:.1f} %** of `me`
throughput (goal: under 5 %).

{chr(10).join(lines)}
"""
    return [row], md


def refresh_section(refresh, cfg, stats):
    """The figures-table rows and the section on `refreshToken` against concurrency, this
    build and (when measured) the build before SQLite group commit (issue 17)."""
    res = refresh["servers"]
    n = refresh["alternations"]
    before = refresh["before"]
    conns = [str(c) for c in refresh["sweep"]]
    fmt = median_range

    def per(name, c, key):
        return [s[key] for s in res[name][c]]

    def ratio(c, key):
        return stats([a / b for a, b in zip(per("this", c, key), per("before", c, key))])

    rows = []
    if before:
        p50 = ratio("1", "p50")
        rows.append(f"| 12 | `refreshToken` p50 at 1 connection, this build ÷ {before} "
                    f"(issue 17: a lone rotation must not wait) | {fmt(p50)} | ≤ 1.05 | "
                    f"{'met' if p50[0] <= 1.05 else '**not met**'} |")
        gain = ratio("32", "rps")
        rows.append(f"| 12 | `refreshToken` req/s at 32 connections, this build ÷ {before} "
                    f"| {fmt(gain)} | (reported) | — |")
    for name in [k for k in ("before", "this") if k in res]:
        label = before if name == "before" else "this build"
        rvm = stats([r / m for r, m in zip(per(name, "32", "rps"), per(name, "me", "rps"))])
        rows.append(f"| 4 | `refreshToken` req/s ÷ `me` req/s at 32 connections, {label} "
                    f"(same server, turns of this section) | {fmt(rvm)} | "
                    f"{'≥ 0.3' if name == 'this' else '(reported)'} | "
                    f"{('met' if rvm[0] >= 0.3 else '**not met**') if name == 'this' else '—'} |")
    head = "| connections | build | req/s | p50 ms | p99 ms |"
    lines = [head, "| --- | --- | --- | --- | --- |"]
    for c in conns + ["me"]:
        for name in [k for k in ("before", "this") if k in res]:
            label = before if name == "before" else "this build"
            lines.append(f"| {'`me`, 32' if c == 'me' else c} | {label} | {fmt(stats(per(name, c, 'rps')), 0)} | "
                         f"{fmt(stats(per(name, c, 'p50')))} | "
                         f"{fmt(stats(per(name, c, 'p99')))} |")
    compared = (f" and on {before} (the server before SQLite group commit), taking turns "
                f"{n} time{'' if n == 1 else 's'}, the order reversed each time"
                if before else f", {n} time{'' if n == 1 else 's'}")
    md = f"""
## `refreshToken` against concurrency (issue 17)

`refreshToken` rotation chains at 1, 8 and 32 connections on this build{compared}. Each
server runs on its own fresh SQLite file (WAL, `synchronous=FULL`) seeded with 2,000
sessions; a turn is a 1 s warm-up, then {cfg['secs']} s at each connection count, every
load on fresh chains. Each figure is the median (min–max) over the turns.

{chr(10).join(lines)}
"""
    return rows, md


def cluster_section(cluster, cfg, stats):
    """The figures-table row and the section on 1, 2 and 3 instances behind HAProxy (issue 16)."""
    counts = cluster["counts"]
    n = cluster["alternations"]

    def fmt(t, digits=0):
        return median_range(t, digits)

    def per(count, mode, key):
        return [m[mode][key] for m in counts[count]]

    def cores(count, mode, group):
        return stats([m[mode]["cores"][group] for m in counts[count]])[0]

    scale = stats([three / one for three, one in zip(per("3", "me", "rps"), per("1", "me", "rps"))])
    row = (f"| 10 | `me` req/s, 3 instances ÷ 1 behind HAProxy on PostgreSQL (issue 16) | "
           f"{fmt(scale, 2)} | (reported: 2 cores) | — |")
    lines = ["| instances in service | `me` req/s | `me` p50 / p99 ms | `refreshToken` req/s | "
             "`refreshToken` p50 / p99 ms |",
             "| --- | --- | --- | --- | --- |"]
    for c in ("1", "2", "3"):
        lines.append(
            f"| {c} | {fmt(stats(per(c, 'me', 'rps')))} | "
            f"{fmt(stats(per(c, 'me', 'p50')), 2)} / {fmt(stats(per(c, 'me', 'p99')), 2)} | "
            f"{fmt(stats(per(c, 'refresh', 'rps')))} | "
            f"{fmt(stats(per(c, 'refresh', 'p50')), 2)} / "
            f"{fmt(stats(per(c, 'refresh', 'p99')), 2)} |")
    groups = ("instances", "haproxy", "postgres", "redis", "wrk")
    cpu = ["| instances in service, load | " + " | ".join(groups) + " | sum |",
           "| --- | " + " | ".join("---" for _ in groups) + " | --- |"]
    for c in ("1", "2", "3"):
        for mode, label in (("me", "`me`"), ("refresh", "`refreshToken`")):
            used = [cores(c, mode, g) for g in groups]
            cpu.append(f"| {c}, {label} | " + " | ".join(f"{u:.2f}" for u in used)
                       + f" | {sum(used):.2f} |")
    md = f"""
## Several instances behind a load balancer (issue 16)

`deploy/local-cluster`'s cluster, started by the benchmark: three release instances with
shared secrets on one fresh PostgreSQL database (the machine's own server), a private Redis
holding the rate limits, and HAProxy (round robin, active `/health` checks, a new server
connection per request) in front. The database is seeded with 1,000 sessions. How many
instances are in service is set through HAProxy's admin socket (the others in `maint`), so
every count uses the same processes and the same database. A pass measures 1, 2 and 3
instances, the order reversed every other pass ({n} pass{'' if n == 1 else 'es'}); each
count is a 1 s warm-up, then `me` and then `refreshToken`, 32 connections for {cfg['secs']} s
through the balancer. Each figure is the median (min–max) over the passes.

{chr(10).join(lines)}

CPU used during each measurement, in cores (median over the passes; from `/proc`, user +
system; the instances' column sums all three, idle ones included). The machine has
{os.cpu_count()} cores, so every count shares the same two: this measures what a second and
third instance cost and where the CPU goes, not how a cluster of separate machines scales.

{chr(10).join(cpu)}
"""
    return [row], md


def backends_section(backends, cfg, stats):
    """The figures-table rows and the section on MySQL/MariaDB and PostgreSQL against
    their own rates for the same statements (issue 17)."""
    rows = []
    table = ["| database | load | server req/s | database's own rate (tool) | server ÷ database "
             "| server p50 / p99 ms | database p50 / p99 ms | round trips per request |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    n = 0
    for kind, b in backends.items():
        if "turns" not in b:
            continue
        turns = b["turns"]
        n = len(turns)
        for load, label, server, db, ratio, trips in (
                ("me", "`me` / the guard's query", "me", "db_guard", "me_ratio", "me"),
                ("refresh", "`refreshToken` / the refresh's statements", "refresh",
                 "db_rotation", "refresh_ratio", "refresh")):
            r = stats([t[ratio] for t in turns])
            tool = turns[0][db]["tool"]
            table.append(
                f"| {kind} | {label} | {median_range(stats([t[server]['rps'] for t in turns]), 0)} "
                f"| {median_range(stats([t[db]['rps'] for t in turns]), 0)} ({tool}) "
                f"| {median_range(r)} "
                f"| {median_range(stats([t[server]['p50'] for t in turns]))} / "
                f"{median_range(stats([t[server]['p99'] for t in turns]))} "
                f"| {median_range(stats([t[db]['p50'] for t in turns]))} / "
                f"{median_range(stats([t[db]['p99'] for t in turns]))} "
                f"| {b['round_trips'][trips]:.2f} |")
            what = ("`me` req/s ÷ its own rate for the guard's query" if load == "me" else
                    "`refreshToken` req/s ÷ its own rate for the refresh's statements")
            rows.append(f"| 11 | {kind}: {what} ({tool}, {b['conns']} connections; issue 17) "
                        f"| {median_range(r)} | ≥ 0.5 | {'met' if r[0] >= 0.5 else '**not met**'} |")
    overview = ["| database | start-up | `me` req/s | `me` p50 | `refreshToken` req/s | "
                "refresh ÷ me |", "| --- | --- | --- | --- | --- | --- |"]
    for kind, b in backends.items():
        overview.append(f"| {kind} | {b['startup_s'] * 1000:.0f} ms | {b['me']['rps']:.0f} | "
                        f"{b['me']['p50']:.2f} ms | {b['refresh']['rps']:.0f} | "
                        f"{b['refresh_vs_me']:.2f} |")
    md = ("\n## MySQL/MariaDB and PostgreSQL\n\nThe same loads as above (32 connections), on a "
          "database created for the run and dropped after it (the median turn below).\n\n"
          + "\n".join(overview) + "\n")
    if n:
        md += f"""
### Against the databases' own rates (issue 17)

Each database's own benchmark tool runs the statements the server sends (captured from
it; `bench/dblimits/`) on the database the server uses, seeded the same, over loopback, at
the same concurrency: `pgbench -M prepared` on PostgreSQL, `sysbench` with a Lua script of
prepared statements on MariaDB/MySQL. "The guard's query" is `me`'s one read; "the
refresh's statements" are those of one successful `refreshToken`: the session's
refresh-token chain, its session and its account by the chain's hash, then the write that
moves the chain on a generation and refreshes the session (one statement on PostgreSQL, a
transaction on MariaDB/MySQL). A turn measures, back to back, the server's `me`, the
tool's guard query, the server's `refreshToken` and the tool's refresh statements, each
32 connections (clients) for {cfg['secs']} s, the order reversed every other turn ({n}
turn{'' if n == 1 else 's'}); median (min–max) over the turns. Round trips per request:
data segments the server sent on its database sockets (`ss -ti`) ÷ requests, over 20
requests of each kind sent one at a time before the turns (the tool's scripts make one
per statement: 1 for the guard's query; for the refresh's, 2 on PostgreSQL and 5 on
MariaDB/MySQL, BEGIN and COMMIT included).

{chr(10).join(table)}
"""
    return rows, md


def write(report, plot, *, profile, cfg, runs, startups, soak, plans, counts, seed_secs,
          backends, elapsed, cores, stats, load_before=None, load_after=None, signing=None,
          others=None, stolen=None, metrics=None, cluster=None, refresh=None):
    def fig(key_fn):
        return stats([key_fn(r) for r in runs])

    fmt = median_range

    rows = []

    def row(num, what, t, goal, met, digits=2, unit=""):
        mark = "—" if met is None else ("met" if met else "**not met**")
        rows.append(f"| {num} | {what} | {fmt(t, digits, unit)} | {goal} | {mark} |")

    login = fig(lambda r: r["login_ratio"])
    row(1, "login/s at bcrypt cost 12 ÷ (cores ÷ one verify)", login, "≥ 0.9", login[0] >= 0.9)
    flood = fig(lambda r: r["flood_ratio"])
    row(2, "`me` p99 during a login flood ÷ without", flood, "≤ 2", flood[0] <= 2)
    base = fig(lambda r: r["me_vs_baseline"])
    row(3, "`me` req/s ÷ bare axum JSON req/s", base, "≥ 0.4", base[0] >= 0.4)
    rvm = fig(lambda r: r["refresh_vs_me"])
    row(4, "`refreshToken` req/s ÷ `me` req/s (issue 17)", rvm, "≥ 0.3", rvm[0] >= 0.3)
    p50me = fig(lambda r: r["p50_me_ratio"])
    large_label = f"{cfg['large_users']:,}"
    row(5, f"`me` p50, {large_label} users ÷ 1,000 users", p50me, "≤ 1.3", p50me[0] <= 1.3)
    p50rf = fig(lambda r: r["p50_refresh_ratio"])
    row(5, f"`refreshToken` p50, {large_label} ÷ 1,000", p50rf, "≤ 1.3", p50rf[0] <= 1.3)
    rss = fig(lambda r: r["rss_peak_mb"])
    row(6, "peak RSS, up to 256 connections", rss, "≤ 64 MB", rss[0] <= 64, 1, " MB")
    samples = soak["samples"]
    early = next((v for t, v in samples if t >= min(10, cfg["soak_secs"] / 2)), samples[0][1])
    final = samples[-1][1]
    growth = final - early
    rows.append(f"| 6 | RSS growth during the {cfg['soak_secs']} s soak (from "
                f"{early:.1f} MB at {min(10, cfg['soak_secs'] // 2)} s to {final:.1f} MB) | "
                f"**{growth:+.1f} MB** | no growth (< 5 %) | "
                f"{'met' if growth < 0.05 * early else '**not met**'} |")
    signing_md = ""
    if signing:
        sig_rows, signing_md = _signing(signing, cfg, stats, fmt)
    st = stats(startups)
    rows.append(f"| 7 | start-up to a healthy `/health`, empty SQLite, migrations included | "
                f"**{st[0] * 1000:.0f} ms** ({st[1] * 1000:.0f}–{st[2] * 1000:.0f}, "
                f"{len(startups)} starts) | (reported) | — |")
    if signing:
        rows.extend(sig_rows)
    metrics_md = ""
    if metrics:
        metrics_rows, metrics_md = metrics_section(metrics, cfg, stats)
        rows.extend(metrics_rows)
    refresh_md = ""
    if refresh:
        refresh_rows, refresh_md = refresh_section(refresh, cfg, stats)
        rows.extend(refresh_rows)
    cluster_md = ""
    if cluster:
        cluster_rows, cluster_md = cluster_section(cluster, cfg, stats)
        rows.extend(cluster_rows)

    def absolute(label, fn, digits=0, unit=""):
        return f"| {label} | {fmt(fig(fn), digits, unit)} |"

    abs_rows = [
        absolute("bare axum JSON endpoint, req/s (32 connections)", lambda r: r["baseline"]["rps"]),
        absolute("`me`, req/s (32 connections)", lambda r: r["me"]["rps"]),
        absolute("`me` p50 / p99 at 32 connections, ms", lambda r: r["me"]["p50"], 2),
        absolute("`refreshToken`, req/s (32 connections)", lambda r: r["refresh"]["rps"]),
        absolute("`refreshToken` p50 at 32 connections, ms", lambda r: r["refresh"]["p50"], 2),
        absolute(f"login, successful logins/s ({4 * cores} connections)",
                 lambda r: r["login"]["rps"], 2),
        absolute("one bcrypt verify at cost 12, ms (single thread)",
                 lambda r: r["verify_s"] * 1000, 1),
        absolute("ideal logins/s = cores ÷ verify time", lambda r: r["login_ideal_rps"], 2),
        absolute(f"`me` p99 at a light load ({4} connections, 10 ms pauses), ms",
                 lambda r: r["me_light"]["p99"], 2),
        absolute("the same during the login flood, ms", lambda r: r["me_flood"]["p99"], 2),
        absolute("logins/s during that flood",
                 lambda r: (r["flood"] or {"rps": 0})["rps"], 2),
        absolute("`me` p50 at 8 connections, 1,000 users, ms", lambda r: r["p50_me_small"], 3),
        absolute(f"`me` p50 at 8 connections, {large_label} users, ms",
                 lambda r: r["p50_me_large"], 3),
        absolute("`refreshToken` p50 at 8 connections, 1,000 users, ms",
                 lambda r: r["p50_refresh_small"], 3),
        absolute(f"`refreshToken` p50 at 8 connections, {large_label} users, ms",
                 lambda r: r["p50_refresh_large"], 3),
    ]
    abs_rows[2] = (f"| `me` p50 / p99 at 32 connections, ms | {fmt(fig(lambda r: r['me']['p50']))}"
                   f" / {fmt(fig(lambda r: r['me']['p99']))} |")

    sweep = {}
    for c in cfg["sweep"]:
        sweep[c] = {k: stats([r["sweep"][c][k] for r in runs])[0]
                    for k in ("p50", "p90", "p99", "rps")}
    plot_name = os.path.relpath(plot, os.path.dirname(os.path.abspath(report)))
    svg(plot, sweep, "me: latency percentiles against concurrency (median of runs)")
    sweep_rows = [f"| {c} | {sweep[c]['rps']:.0f} | {sweep[c]['p50']:.2f} | "
                  f"{sweep[c]['p90']:.2f} | {sweep[c]['p99']:.2f} |" for c in cfg["sweep"]]

    backend_md = ""
    if backends:
        backend_rows, backend_md = backends_section(backends, cfg, stats)
        rows.extend(backend_rows)

    findings_path = os.path.join(ROOT, "bench", "FINDINGS.md")
    findings = open(findings_path).read().strip() if os.path.exists(findings_path) else ""
    note = os.environ.get("BENCH_NOTE", "").strip()
    busy = ""
    noisy = (load_before is not None and load_before > 0.5 * cores) or \
        (others is not None and others > 0.25 * cores)
    if noisy:
        during = ""
        if others is not None:
            during = (f"; during the run, other processes (kernel threads included) used "
                      f"{others:.2f} of the {cores} cores on average (`/proc/stat` less this "
                      f"benchmark's own processes, "
                      f"whose load alone keeps the load average near the core count), and "
                      f"the hypervisor stole {stolen:.2f}")
        busy = (f"\n> **Noisy machine:** the 1-minute load average was {load_before:.1f} on "
                f"{cores} cores when the run began{during}. The ratios compare measurements "
                f"taken side by side, but read absolute numbers with care.\n")
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = " (with uncommitted changes)" if _git("status", "--porcelain", "--", "src",
                                                    "migration", "Cargo.toml") else ""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    smoke = ("\n> **Smoke run** (`bench/run --smoke`): a few seconds per figure and a small "
             "\"large\" database; it checks that the benchmark works, the figures mean "
             "little.\n" if profile == "smoke" else "")

    md = f"""# Benchmarks

Generated by `bench/run` on {now} from commit `{commit}`{dirty}; it rewrites this file and
[`{plot_name}`]({plot_name}) on every run. {len(runs)} run(s); each figure is the
**median** with (min–max) over the runs, and each is a ratio of two measurements taken
back to back in the same run, so that a shared, noisy machine moves both sides alike.
{smoke}{busy}{(chr(10) + '> ' + note + chr(10)) if note else ''}
Machine: {_cpu()}, {cores} cores, Linux {platform.release()}; {_rustc()}; load generator
`wrk` (1 thread) over loopback, on the same cores as the server. Server: the release build,
SQLite (WAL, `synchronous=FULL`), default settings except rate limits off
(`RATE_LIMIT_*=0`) so the login figures measure bcrypt; `PASSWORD_HASH_WORKERS` is the
core count (its default), `BCRYPT_COST=12` (the default). Total time {elapsed / 60:.1f} min.

## The figures

| # | figure | median (min–max) | goal | |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

## The measurements behind them

| measurement | median (min–max) |
| --- | --- |
{chr(10).join(abs_rows)}

## `me` latency against concurrency

![me latency percentiles against concurrency]({plot_name})

| connections | req/s | p50 ms | p90 ms | p99 ms |
| --- | --- | --- | --- | --- |
{chr(10).join(sweep_rows)}
{backend_md}{signing_md}{metrics_md}{refresh_md}{cluster_md}
## How each figure is measured

1. **Login throughput.** `wrk` sends `login` mutations for {4 * cores} connections
   ({cfg['login_secs']} s), cycling through 64 accounts whose hashes have cost 12. The
   ideal is cores ÷ the time of one `bcrypt::verify` at cost 12, timed single-threaded
   by the bench helper in the same run. Only successful logins count.
2. **`me` under a login flood.** A light, fixed `me` load (4 connections, each pausing
   10 ms between requests, {cfg['light_secs']} s) is measured alone, then again while the
   login load of (1) keeps every hashing worker busy. The figure is the ratio of the p99s.
3. **`me` against bare axum.** The same `wrk` script and token file (32 connections,
   {cfg['secs']} s) against `me` and against `bench/src/baseline.rs`: axum with one route
   that parses a JSON body and returns a JSON body shaped like the `me` response, with no
   middleware, GraphQL or database.
4. **`refreshToken`.** 32 connections, each spending the refresh token the previous
   response returned (a rotation chain, as a client does), so every request rotates. On
   SQLite the rotations waiting at one moment commit together, one `fsync` for all
   (issue 17), and each moves its session's refresh-token chain on in place rather than
   adding a row (issue 17 part 11); the section on `refreshToken` against concurrency gives 1, 8 and 32
   connections, beside the build before that change.
5. **Scale.** The small database holds {1000 + 64:,} accounts; the large one
   ({counts}) was filled by bulk SQL in {seed_secs:.0f} s. The same `me` and
   `refreshToken` loads (8 connections, {cfg['secs']} s) run against both servers back to
   back; the figure is the ratio of the p50s. The query plans are below.
6. **Memory.** Peak RSS (`VmHWM`) of the server after every load above, the last at 256
   connections. The soak runs `me` (32 connections) and `refreshToken` (4) flat out for
   {cfg['soak_secs']} s, sampling `VmRSS` each second.
7. **Start-up.** From spawning `auth-server serve` on a new, empty SQLite file to the
   first `200` from `/health` (polled every 2 ms), migrations included.
8. **Signing (issue 14).** `me` with the load of (3) on servers that differ only in
   `JWT_ALGORITHM`, taking turns; see the section on ES256 against HS256 above.
9. **Metrics (issue 15).** `me` with the load of (3) on servers that differ only in
   `METRICS_ADDR` (the one with it scraped every second), taking turns; see the section
   on metrics above.

## Query plans of the hot queries (SQLite, large database)

```
{plans.strip()}
```

{findings}
"""
    with open(report, "w") as f:
        f.write(md)
