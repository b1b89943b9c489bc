#!/usr/bin/env python3
"""Runs the cluster scenarios against the cluster of CLUSTER_STATE (started by
`deploy/local-cluster run -- python3 tests/cluster/run.py`). Prints one line per scenario
and exits non-zero when any failed.

    run.py [--only SUBSTRING ...] [--skip-group limits]

Groups: core (sessions, races, migrations), disruptive (kill -9, SIGTERM), limits (the
shared rate limits; need RATE_LIMIT_STORE=redis in the server).
"""

import argparse
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "deploy"))

import cluster as local_cluster  # noqa: E402
import scenarios  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--only", action="append", default=[])
    p.add_argument("--skip-group", action="append", default=[])
    args = p.parse_args()
    state = os.environ.get("CLUSTER_STATE")
    if not state:
        sys.exit("CLUSTER_STATE is not set: run me under deploy/local-cluster run")
    cluster = local_cluster.Cluster.load(state)
    # Core first (the migration check reads the logs of the first start), then the limits,
    # then what kills and restarts instances.
    order = {"core": 0, "limits": 1, "disruptive": 2}
    chosen = [s for s in sorted(scenarios.ALL, key=lambda s: order[s.group])
              if s.group not in args.skip_group
              and (not args.only or any(o in s.__name__ for o in args.only))]
    failed = []
    started = time.monotonic()
    for s in chosen:
        t0 = time.monotonic()
        try:
            s(cluster)
            print(f"ok   {s.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception as e:  # report and go on with the next scenario
            failed.append(s.__name__)
            print(f"FAIL {s.__name__} ({time.monotonic() - t0:.1f} s): {e}", flush=True)
            traceback.print_exc(limit=3)
        cluster = local_cluster.Cluster.load(state)
    print(f"cluster ({cluster.state['backend']}): {len(chosen) - len(failed)} passed, "
          f"{len(failed)} failed in {time.monotonic() - started:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
