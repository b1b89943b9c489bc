"""A local cluster of auth-server instances behind HAProxy, with a private Redis and a fresh
database on the machine's PostgreSQL or MariaDB: started, described by a JSON state file,
driven (kill, restart, drain) and stopped.

`deploy/local-cluster` is the command line over this module; the scenarios in
tests/cluster/ import it (`Cluster.load(os.environ["CLUSTER_STATE"])`) for the verbs a test
needs: kill -9 or SIGTERM an instance and start it again on its port, stop and restart
Redis on its port, read and change HAProxy's view of the servers through its admin socket,
and query the database.

Every process is started in a session of its own, so that `up` can return while they run;
the state file names each one (pid and command line), and `down` stops exactly those
processes, drops the database and removes the working directory. Standard library only.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_URLS = {
    "postgres": ("TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    "mysql": ("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql"),
}

# The quotas every instance gets (per minute), written to the state file for the scenarios.
LIMITS = {
    "RATE_LIMIT_LOGIN_PER_IP": 20,
    "RATE_LIMIT_LOGIN_PER_ACCOUNT": 10,
    "RATE_LIMIT_REGISTER_PER_IP": 10,
    # Mail quotas are not what the cluster checks: off, so that registrations under load
    # and 20 registrations of one address meet only the limits above.
    "RATE_LIMIT_MAIL_PER_ADDRESS": 0,
    "RATE_LIMIT_MAIL_PER_IP": 0,
}

# HAProxy: active checks every 500 ms, two failures take a server out, two passes put it
# back; a connection that cannot be made is retried on another server (never a request
# that may have reached one: a replayed refreshToken would be reuse).
HAPROXY_CFG = """\
global
    maxconn 4096
    log stdout format raw local0 info
    stats socket {socket} mode 600 level admin
    stats timeout 10s

defaults
    mode http
    log global
    option httplog
    option forwardfor
    # A new server connection per request: a request never goes out on a kept-alive
    # connection the server has just closed (or died with), which HAProxy could not retry.
    option http-server-close
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    timeout check 2s
    retries 3
    retry-on conn-failure
    option redispatch 1

frontend auth_in
    bind 127.0.0.1:{port}
    default_backend auth

backend auth
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
    # Which server answered, for the scenarios that check the spread and the drain.
    http-response set-header X-Served-By %s
{servers}
"""


def log(msg):
    print(f"==> local-cluster: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (OSError, ValueError):
        return 0, ""


def process_alive(pid, needle=None):
    """Whether `pid` runs (not a zombie) and, given `needle`, its command line holds it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        if needle is not None:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return needle.encode() in f.read()
        return True
    except (OSError, IndexError):
        return False


def reap(pid):
    """Collects `pid` if it is our child (no zombie left behind); ignores it otherwise."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_gone(pid, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(pid)
        if not process_alive(pid, needle):
            return True
        time.sleep(0.05)
    return False


def stop_pid(pid, needle, timeout=15.0):
    """SIGTERM, then SIGKILL after `timeout`; only if `pid` still runs `needle`."""
    if not pid or not process_alive(pid, needle):
        reap(pid) if pid else None
        return
    os.kill(pid, signal.SIGTERM)
    if not wait_gone(pid, needle, timeout):
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid, needle, 5)


def spawn(cmd, env, log_path, cwd):
    """Starts `cmd` in its own session (it outlives `up`), output appended to `log_path`."""
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid



def tcp_sockets():
    """IPv4 TCP sockets from /proc/net/tcp: (local port, remote port, state, rx queue)."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            rx = int(fields[4].split(":")[1], 16)
            out.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state, rx))
    return out


def server_has_read(port, client_ports):
    """Whether the server on `port` has accepted every connection from `client_ports` and
    read everything they sent so far (its accept queue and their receive queues are empty)."""
    socks = tcp_sockets()
    listening = [rx for lp, _, st, rx in socks if lp == port and st == "0A"]
    if any(listening):
        return False
    pending = set(client_ports)
    for lp, rp, st, rx in socks:
        if lp == port and rp in pending and st == "01" and rx == 0:
            pending.discard(rp)
    return not pending

# --- the database ---

class Database:
    """A database on the server of an admin URL: created, queried, dropped (CLI clients)."""

    def __init__(self, backend, admin_url, name):
        self.backend, self.admin_url, self.name = backend, admin_url, name
        u = urllib.parse.urlsplit(admin_url)
        self.url = urllib.parse.urlunsplit((u.scheme, u.netloc, f"/{name}", u.query, ""))
        self._u = u

    def _mysql(self, sql, database=None):
        u = self._u
        args = ["mysql", "-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306),
                "-u", urllib.parse.unquote(u.username or "root"), "-N", "-B"]
        if database:
            args.append(database)
        env = dict(os.environ)
        if u.password:
            env["MYSQL_PWD"] = urllib.parse.unquote(u.password)
        return subprocess.run([*args, "-e", sql], env=env, check=True, text=True,
                              capture_output=True).stdout

    def _psql(self, url, sql):
        return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t",
                               "-c", sql], check=True, text=True, capture_output=True).stdout

    def create(self):
        if self.backend == "postgres":
            self._psql(self.admin_url, f'CREATE DATABASE "{self.name}"')
        else:
            self._mysql(f"CREATE DATABASE `{self.name}`")

    def drop(self):
        if self.backend == "postgres":
            self._psql(self.admin_url, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        else:
            self._mysql(f"DROP DATABASE IF EXISTS `{self.name}`")

    def query(self, sql):
        """Rows of `sql` on this database, each a list of strings."""
        if self.backend == "postgres":
            out = self._psql(self.url, sql)
        else:
            out = self._mysql(sql, self.name)
        return [line.split("\t") for line in out.splitlines() if line != ""]


# --- the cluster ---

class Cluster:
    """The running cluster as its state file describes it; every change is written back."""

    def __init__(self, state, path):
        self.state, self.path = state, path

    # -- state --

    @classmethod
    def load(cls, path):
        with open(path) as f:
            return cls(json.load(f), path)

    def save(self):
        tmp = f"{self.path}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(self.state, f, indent=2)
        os.replace(tmp, self.path)

    @property
    def balancer(self):
        """The GraphQL URL through HAProxy."""
        return self.state["balancer"]["url"]

    @property
    def instances(self):
        return self.state["instances"]

    def instance_url(self, i):
        return self.instances[i]["url"]

    @property
    def db(self):
        d = self.state["database"]
        return Database(d["backend"], d["admin_url"], d["name"])

    @property
    def limits(self):
        return self.state["limits"]

    # -- start --

    @classmethod
    def up(cls, backend, instances, binary, state_path=None):
        admin_env, admin_default = DEFAULT_URLS[backend]
        admin_url = os.environ.get(admin_env) or admin_default
        work = tempfile.mkdtemp(prefix=f"local-cluster-{backend}-")
        state_path = state_path or os.path.join(work, "state.json")
        name = f"cluster_{secrets.token_hex(4)}"
        state = {
            "backend": backend,
            "work": work,
            "binary": os.path.abspath(binary),
            "limits": dict(LIMITS),
            "database": {"backend": backend, "admin_url": admin_url, "name": name,
                         "url": None},
            "redis": None,
            "instances": [],
            "balancer": None,
        }
        cluster = cls(state, state_path)
        cluster.save()
        try:
            db = Database(backend, admin_url, name)
            db.create()
            state["database"]["url"] = db.url
            cluster.save()
            cluster._start_redis(port=free_port())
            cluster._write_env(db.url)
            for n in range(instances):
                port = free_port()
                state["instances"].append({
                    "name": f"s{n + 1}", "port": port, "pid": None,
                    "url": f"http://127.0.0.1:{port}/graphql",
                    "health": f"http://127.0.0.1:{port}/health",
                    "log": os.path.join(work, f"s{n + 1}.log"),
                })
            # All at once, on the empty database: they race for the migrations.
            for n in range(instances):
                cluster.start_instance(n, wait=False)
            for n in range(instances):
                cluster.wait_healthy(n)
            cluster._start_haproxy()
        except BaseException:
            cluster.down()
            raise
        return cluster

    def _write_env(self, database_url):
        """The one environment of every instance (the port aside): shared secrets and keys."""
        env = {
            "APP_ENV": "development",
            "HOST": "127.0.0.1",
            "DATABASE_URL": database_url,
            "JWT_ACCESS_SECRET": secrets.token_hex(32),
            "JWT_REFRESH_SECRET": secrets.token_hex(32),
            "KEY_ENCRYPTION_KEY": secrets.token_hex(32),
            "RATE_LIMIT_STORE": "redis",
            "REDIS_URL": f"redis://127.0.0.1:{self.state['redis']['port']}",
            "TRUSTED_PROXIES": "127.0.0.1",
            "BCRYPT_COST": "4",
            # The machine is shared: idle-priority hashing would wait behind every compile.
            "PASSWORD_HASH_PRIORITY": "normal",
            "LOG_FORMAT": "pretty",
            # On SIGTERM /health answers 503 this long before the listener closes: HAProxy
            # (two failed checks 500 ms apart) takes the instance out first.
            "SHUTDOWN_DRAIN": "3s",
            # sea_orm_migration at info: the instance that migrates says so in its log.
            "RUST_LOG": "info,sqlx=warn,sea_orm=warn,sea_orm_migration=info",
            **{k: str(v) for k, v in LIMITS.items()},
        }
        path = os.path.join(self.state["work"], "instance.env.json")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            json.dump(env, f, indent=2)
        self.state["env_file"] = path
        self.save()

    def instance_env(self, i):
        with open(self.state["env_file"]) as f:
            shared = json.load(f)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RATE_LIMIT_", "JWT_", "SMTP_", "DATABASE_", "REDIS_"))
               and k not in ("RUST_LOG", "APP_ENV", "PORT", "HOST", "KEY_ENCRYPTION_KEY",
                             "METRICS_ADDR", "SHUTDOWN_DRAIN")}
        env.update(shared)
        env["PORT"] = str(self.instances[i]["port"])
        env.update(self.state.get("extra_env", {}))
        return env

    def start_instance(self, i, wait=True):
        """Starts instance `i` (again) on its port, with the shared environment."""
        inst = self.instances[i]
        if inst["pid"] and process_alive(inst["pid"], self.state["binary"]):
            raise RuntimeError(f"{inst['name']} is already running (pid {inst['pid']})")
        inst["pid"] = spawn([self.state["binary"], "serve"], self.instance_env(i),
                            inst["log"], self.state["work"])
        self.save()
        if wait:
            self.wait_healthy(i)

    def wait_healthy(self, i, timeout=120):
        inst = self.instances[i]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reap(inst["pid"])
            if not process_alive(inst["pid"], self.state["binary"]):
                raise RuntimeError(f"{inst['name']} exited; the end of {inst['log']}:\n"
                                   + tail(inst["log"]))
            if http_get(inst["health"], timeout=1)[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{inst['name']} not healthy within {timeout} s")

    def _start_redis(self, port):
        work = self.state["work"]
        pid = spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", work],
                    dict(os.environ), os.path.join(work, "redis.log"), work)
        self.state["redis"] = {"port": port, "pid": pid, "log": os.path.join(work, "redis.log")}
        self.save()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.redis_ping():
                return
            # Our own unreaped child: its pid cannot be another process's, so no command
            # line check. (redis-server rewrites its process title as it starts; a read of
            # /proc/PID/cmdline during the rewrite missed the name, and a Redis that was
            # starting was taken for one that had exited.)
            if not process_alive(pid):
                raise RuntimeError("redis-server exited:\n" + tail(self.state["redis"]["log"]))
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    def redis_ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.state["redis"]["port"]), 1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def _start_haproxy(self):
        ensure_haproxy()
        work = self.state["work"]
        port = free_port()
        sock = os.path.join(work, "haproxy.sock")
        servers = "\n".join(f"    server {inst['name']} 127.0.0.1:{inst['port']} check"
                            for inst in self.instances)
        cfg = os.path.join(work, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG.format(socket=sock, port=port, servers=servers))
        subprocess.run(["haproxy", "-c", "-q", "-f", cfg], check=True)
        pid = spawn(["haproxy", "-db", "-f", cfg], dict(os.environ),
                    os.path.join(work, "haproxy.log"), work)
        self.state["balancer"] = {
            "url": f"http://127.0.0.1:{port}/graphql", "port": port, "pid": pid,
            "socket": sock, "config": cfg, "log": os.path.join(work, "haproxy.log"),
        }
        self.save()
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if not process_alive(pid, "haproxy") or time.monotonic() > deadline:
                raise RuntimeError("haproxy did not start:\n" + tail(self.state["balancer"]["log"]))
            time.sleep(0.05)
        n = len(self.instances)
        self.wait_servers(lambda st: len(st) == n and all(v == "UP" for v in st.values()),
                          timeout=30, what="every server UP")

    # -- verbs for the scenarios --

    def kill9(self, i):
        """SIGKILL to instance `i`; returns once its port no longer listens (the process's
        leader can look gone while its other threads still hold the sockets)."""
        inst = self.instances[i]
        os.kill(inst["pid"], signal.SIGKILL)
        wait_gone(inst["pid"], self.state["binary"], 10)
        deadline = time.monotonic() + 10
        while any(lp == inst["port"] and st == "0A" for lp, _, st, _ in tcp_sockets()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{inst['name']}'s port still listens 10 s after SIGKILL")
            time.sleep(0.001)

    def sigterm(self, i):
        os.kill(self.instances[i]["pid"], signal.SIGTERM)

    def running(self, i):
        pid = self.instances[i]["pid"]
        reap(pid)
        return process_alive(pid, self.state["binary"])

    def wait_exit(self, i, timeout=60):
        """Whether instance `i` exited within `timeout`."""
        return wait_gone(self.instances[i]["pid"], self.state["binary"], timeout)

    def stop_redis(self):
        r = self.state["redis"]
        stop_pid(r["pid"], "redis-server", timeout=10)

    def start_redis(self):
        """Starts Redis again on the same port (empty: it keeps nothing on disk)."""
        self._start_redis(self.state["redis"]["port"])

    def haproxy(self, command):
        """One command on HAProxy's admin socket; its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.state["balancer"]["socket"])
            s.sendall(command.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    def set_server_state(self, i, state):
        """`ready`, `drain` (no new requests; those under way finish) or `maint` for
        instance `i` on the balancer; HAProxy's answer (empty when it took it)."""
        return self.haproxy(f"set server auth/{self.instances[i]['name']} state {state}").strip()

    def server_stats(self):
        """HAProxy's `show stat` rows of the backend's servers, by server name."""
        lines = self.haproxy("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            if not line:
                continue
            row = dict(zip(header, line.split(",")))
            if row["pxname"] == "auth" and row["svname"] not in ("BACKEND", "FRONTEND"):
                rows[row["svname"]] = row
        return rows

    def server_states(self):
        """`UP`, `DOWN`, `MAINT`, `DRAIN`, ... of each server, by name."""
        return {name: row["status"].split(" ")[0] for name, row in self.server_stats().items()}

    def wait_servers(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        states = {}
        while time.monotonic() < deadline:
            states = self.server_states()
            if predicate(states):
                return states
            time.sleep(0.1)
        raise RuntimeError(f"HAProxy: not {what} within {timeout} s: {states}")

    # -- stop --

    def down(self):
        """Stops every process of the state, drops the database, removes the directory."""
        st = self.state
        errors = []
        if st.get("balancer"):
            stop_pid(st["balancer"]["pid"], "haproxy")
        for inst in st.get("instances", []):
            if inst.get("pid"):
                stop_pid(inst["pid"], st["binary"])
        if st.get("redis"):
            stop_pid(st["redis"]["pid"], "redis-server")
        if st["database"].get("url"):
            try:
                self.db.drop()
            except subprocess.CalledProcessError as e:
                errors.append(f"dropping {st['database']['name']}: {e.stderr.strip()}")
        keep = os.environ.get("CLUSTER_KEEP_LOGS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            for name in os.listdir(st["work"]):
                if name.endswith((".log", ".cfg")):
                    shutil.copy(os.path.join(st["work"], name), keep)
        shutil.rmtree(st["work"], ignore_errors=True)
        if os.path.dirname(os.path.abspath(self.path)) != st["work"]:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        for e in errors:
            log(e)
        return not errors


def tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return "(no log)"


def ensure_haproxy():
    if shutil.which("haproxy"):
        return
    log("installing Debian's haproxy")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "haproxy"]
    if subprocess.run(install, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def build_binary():
    """`cargo build --bin auth-server`; the debug binary's path."""
    log("cargo build --bin auth-server")
    subprocess.run(["cargo", "build", "--bin", "auth-server"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "debug", "auth-server")
