#!/usr/bin/env python3
"""Prints the statements the server sends for one `me` and one `refreshToken`, as the
database received them: the source of the SQL in guard.pgbench, rotation.pgbench and
limits.lua. Needs the release build of `bench/run` (target/release/auth-server and the
bench_tool example) and runs on this machine's database servers:

    bench/dblimits/capture.py postgres://postgres@127.0.0.1:5432/postgres
    bench/dblimits/capture.py mysql://root@127.0.0.1:3306/mysql

PostgreSQL: `log_statement = all` is set on a database made for the capture (only its
sessions log), and the server's log file is read (pg_current_logfile(), or
/var/log/postgresql/ when the log goes to stderr). MariaDB/MySQL: the general query log is
switched on globally for the second or so of the requests (log_output=TABLE), then
switched back; only the capture database's connections are printed.
"""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, BENCH)
sys.dont_write_bytecode = True
import bench  # noqa: E402  (bench/bench.py: Server, TOOL)


from dblimits import post  # noqa: E402  (one GraphQL request)


def requests(srv, tokens):
    with open(tokens.access) as f:
        access = f.readline().strip()
    refresh = tokens.refresh[0]
    post(srv.port, {"query": "{ me { id } }"}, access)
    post(srv.port, {"query": "{ me { id } }"}, access)
    post(srv.port, {"query": "mutation($t: String!) { refreshToken(refreshToken: $t) "
                             "{ refreshToken } }", "variables": {"t": refresh}})


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atc", sql], check=True, text=True,
                          capture_output=True).stdout.strip()


def mysql(url, sql):
    u = urllib.parse.urlsplit(url)
    cmd = ["mysql", "-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306),
           "-u", u.username or "root", "-N", "-B", "-e", sql]
    if u.password:
        cmd.insert(1, f"-p{u.password}")
    return subprocess.run(cmd, check=True, text=True, capture_output=True).stdout


def main():
    admin = sys.argv[1]
    out = os.path.join(BENCH, "out", f"capture-{time.strftime('%Y%m%dT%H%M%S')}")
    os.makedirs(out, exist_ok=True)
    name = f"bench_capture_{secrets.token_hex(3)}"
    base, _, _ = admin.rpartition("/")
    url = f"{base}/{name}"
    env = dict(os.environ, DATABASE_URL=admin)
    bench.sh([bench.TOOL, "createdb", name], 120, env=env)
    pg = admin.startswith("postgres")
    try:
        if pg:
            psql(admin, f"ALTER DATABASE {name} SET log_statement = 'all'")
            logfile = psql(admin, "SELECT pg_current_logfile()") or None
            if logfile and not logfile.startswith("/"):
                logfile = os.path.join(psql(admin, "SHOW data_directory"), logfile)
            if not logfile:
                version = psql(admin, "SHOW server_version_num")[:2]
                logfile = f"/var/log/postgresql/postgresql-{version}-main.log"
        srv = bench.Server(out, "capture", url)
        try:
            tokens = srv.seed(sys.argv[2] if len(sys.argv) > 2 else "x", 4, 0, 0, "seed")
            if pg:
                start = os.path.getsize(logfile)
                requests(srv, tokens)
                time.sleep(0.5)
                with open(logfile, errors="replace") as f:
                    f.seek(start)
                    lines = [l.rstrip() for l in f if f"@{name} " in l]
                print("\n".join(lines))
            else:
                saved = mysql(admin, "SELECT @@global.log_output, @@global.general_log").split()
                mysql(admin, "SET GLOBAL log_output = 'TABLE'; TRUNCATE mysql.general_log; "
                      "SET GLOBAL general_log = 1")
                try:
                    requests(srv, tokens)
                finally:
                    mysql(admin, f"SET GLOBAL general_log = {saved[1]}; "
                          f"SET GLOBAL log_output = '{saved[0]}'")
                print(mysql(admin, "SELECT thread_id, command_type, "
                            "REPLACE(CONVERT(argument USING utf8mb4), '\\n', ' ') "
                            "FROM mysql.general_log WHERE thread_id IN (SELECT id FROM "
                            f"information_schema.processlist WHERE db = '{name}') "
                            "ORDER BY event_time"))
        finally:
            srv.stop()
    finally:
        bench.sh([bench.TOOL, "dropdb", name], 120, env=env)


if __name__ == "__main__":
    main()
