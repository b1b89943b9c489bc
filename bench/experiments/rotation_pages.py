"""WAL frames written per rotation by the SQLite group writer's three statements, for
today's `refresh_tokens` and for other layouts of it (bench/FINDINGS.md, issue 17 part 6).

    python3 bench/experiments/rotation_pages.py current no_sess_index blob_hash hash_pk hash_pk_blob chain

Each variant gets a fresh file under /tmp (WAL, synchronous=FULL): 2,000 sessions with 150
tokens each (ROTATION_SEED=750 for a file grown as far as the bench's rotation section
grows it), then ROTATIONS rotations on 32 chains, BATCH per transaction (ROTATION_BATCH),
with the automatic checkpoint off, and prints WAL frames ÷ rotations and the rate on one
thread.
`chain` keeps no token rows at all: the session row holds its chain (a generation, the
current and the previous hash), and a rotation is one UPDATE of it (issue 17 part 10).
`chain_row` is what the server does since part 11: one `refresh_tokens` row per session
(its chain: a generation and when it last moved), and a rotation is one UPDATE of it and
one of the session.
"""
import os
import secrets
import sqlite3
import sys
import time
import uuid

ROTATIONS, CHAINS, BATCH = 16_000, 32, 8
# Tokens seeded per session (ROTATION_SEED=750 for a file grown like the bench's), and
# rotations per transaction (ROTATION_BATCH).
SEED = int(os.environ.get("ROTATION_SEED", "150"))
BATCH = int(os.environ.get("ROTATION_BATCH", str(BATCH)))


def run(variant, nsess=2000, seed_tokens=SEED, rot=ROTATIONS, chains=CHAINS, batch=BATCH):
    path = f"/tmp/rotation-pages-{variant}.db"
    for suf in ("", "-wal", "-shm"):
        if os.path.exists(path + suf):
            os.unlink(path + suf)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("pragma journal_mode=wal")
    c.execute("pragma synchronous=FULL")
    c.execute("create table sessions (id blob primary key, user_id blob, created_at text, expires_at text, revoked_at text, last_used_at text, created_ip text, created_user_agent text, last_ip text, last_user_agent text, amr text)")
    if variant == "current":
        c.execute("create table rt (id blob primary key, session_id blob not null, token_hash char(64) not null, created_at text, expires_at text, spent_at text)")
        c.execute("create unique index rt_hash on rt(token_hash)")
        c.execute("create index rt_sess on rt(session_id)")
    elif variant in ("no_sess_index", "blob_hash"):
        c.execute("create table rt (id blob primary key, session_id blob not null, token_hash not null, created_at text, expires_at text, spent_at text)")
        c.execute("create unique index rt_hash on rt(token_hash)")
        if variant == "blob_hash":
            c.execute("create index rt_sess on rt(session_id)")
    elif variant == "chain_row":
        c.execute("create table rt (id blob primary key, session_id blob not null, token_hash varchar(64) not null, created_at text, expires_at text, spent_at text, generation integer, rotated_at text)")
        c.execute("create unique index rt_hash on rt(token_hash)")
        c.execute("create index rt_sess on rt(session_id)")
    elif variant == "chain":
        # No token rows: the session holds its chain's current hash and generation.
        c.execute("alter table sessions add column gen integer not null default 0")
        c.execute("alter table sessions add column token_hash char(64)")
        c.execute("alter table sessions add column prev_hash char(64)")
    elif variant == "hash_pk":
        c.execute("create table rt (token_hash char(64) primary key, id blob not null, session_id blob not null, created_at text, expires_at text, spent_at text) without rowid")
        c.execute("create index rt_sess on rt(session_id)")
    elif variant == "hash_pk_blob":
        c.execute("create table rt (token_hash blob primary key, id blob not null, session_id blob not null, created_at text, expires_at text, spent_at text) without rowid")
        c.execute("create index rt_sess on rt(session_id)")
    ts = "2026-12-03T13:00:00.000000+00:00"
    sess = [uuid.uuid4().bytes for _ in range(nsess)]
    c.execute("begin")
    for s in sess:
        c.execute("insert into sessions (id, user_id, created_at, expires_at, revoked_at, last_used_at, created_ip, created_user_agent, last_ip, last_user_agent, amr) values (?,?,?,?,NULL,?,?,?,?,?,?)", (s, uuid.uuid4().bytes, ts, ts, ts, "127.0.0.1", "ua", "127.0.0.1", None, "pwd"))
    live = {}
    if variant == "chain_row":
        for s in sess:
            i = uuid.uuid4().bytes
            c.execute("insert into rt values (?,?,?,?,?,NULL,0,NULL)", (i, s, secrets.token_bytes(32).hex(), ts, ts))
            live[s] = (i, 0)
    def h():
        b = secrets.token_bytes(32)
        return b if variant in ("hash_pk_blob", "blob_hash") else b.hex()
    for k in range(0 if variant in ("chain", "chain_row") else seed_tokens):
        for s in sess:
            hh = h(); i = uuid.uuid4().bytes
            if variant in ("current", "no_sess_index", "blob_hash"):
                c.execute("insert into rt values (?,?,?,?,?,?)", (i, s, hh, ts, ts, ts))
            else:
                c.execute("insert into rt values (?,?,?,?,?,?)", (hh, i, s, ts, ts, ts))
            live[s] = (i, hh)
    c.execute("commit")
    c.execute("pragma wal_checkpoint(TRUNCATE)")
    c.execute("pragma wal_autocheckpoint=0")
    hot = sess[:chains]
    def uuid7():
        return (int(time.time()*1000).to_bytes(6, "big") + secrets.token_bytes(10))
    t = time.perf_counter(); n = 0
    while n < rot:
        c.execute("begin immediate")
        for _ in range(batch):
            s = hot[n % chains]; i, hh = live.get(s, (None, None))
            if variant == "chain_row":
                c.execute("update rt set generation = ?1 + 1, rotated_at = ?2, expires_at = ?3 where id = ?4 and generation = ?1 and spent_at is null", (hh, ts, ts, i))
                c.execute("update sessions set expires_at=?, last_used_at=?, last_ip=?, last_user_agent=? where id=? and revoked_at is null", (ts, ts, "127.0.0.1", None, s))
                live[s] = (i, hh + 1); n += 1
                continue
            if variant == "chain":
                nh = h()
                c.execute("update sessions set gen=gen+1, prev_hash=token_hash, token_hash=?, expires_at=?, last_used_at=?, last_ip=?, last_user_agent=? where id=? and revoked_at is null", (nh, ts, ts, "127.0.0.1", None, s))
                n += 1
                continue
            if variant in ("current", "no_sess_index", "blob_hash"):
                c.execute("update rt set spent_at=? where id=? and spent_at is null", (ts, i))
            else:
                c.execute("update rt set spent_at=? where token_hash=? and spent_at is null", (ts, hh))
            c.execute("update sessions set expires_at=?, last_used_at=?, last_ip=?, last_user_agent=? where id=? and revoked_at is null", (ts, ts, "127.0.0.1", None, s))
            ni = uuid7(); nh = h()
            if variant in ("current", "no_sess_index", "blob_hash"):
                c.execute("insert into rt values (?,?,?,?,?,NULL)", (ni, s, nh, ts, ts))
            else:
                c.execute("insert into rt values (?,?,?,?,?,NULL)", (nh, ni, s, ts, ts))
            live[s] = (ni, nh); n += 1
        c.execute("commit")
    dt = time.perf_counter() - t
    frames = os.path.getsize(path + "-wal") // (4096 + 24)
    print(f"{variant}: {rot} rotations in {dt:.2f}s ({rot/dt:.0f}/s, batch {batch}); WAL frames/rotation {frames/rot:.2f}; file pages {c.execute('pragma page_count').fetchone()[0]}", flush=True)
    c.close()
    for suf in ("", "-wal", "-shm"):
        if os.path.exists(path + suf):
            os.unlink(path + suf)
VARIANTS = ("current", "no_sess_index", "blob_hash", "hash_pk", "hash_pk_blob", "chain", "chain_row")
for v in sys.argv[1:] or VARIANTS:
    if v not in VARIANTS:
        sys.exit(f"unknown variant {v}; one of {', '.join(VARIANTS)}")
    run(v)
