#!/usr/bin/env python3
"""Writes each service crate's hot-code.txt: the functions its release binary runs, found by
running the load benchmark's scenarios under callgrind, for the linker to lay out side by side
at the start of the binary's code (see build-support/hot_code.rs).

A process holds resident every 64 KiB block of its binary's code in which it ran a function:
the kernel maps code in blocks around each page touched. The functions a service runs are
spread over its whole binary, so nearly every block ends up resident; laid out together, they
fill a third as many.

The symbols in a list are those of the benchmark's build (run.build()): a build that compiles
the dependencies with other features (one service alone, `cargo build --release -p NAME`)
renames part of them, and only the rest of the list applies to it.

Run it again when the services change much: a function missing from a list is only laid out
among the others, and `scripts/hot-code --check` (CI) fails when too few of the functions a
list names are still in the binary it was written for (a new toolchain renames them all).

Usage: scripts/hot-code [--seconds 3] [--check]
"""

import argparse
import bisect
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import run
from run import LOAD, RELEASE, ROOT, SCENARIOS, log

# The crates whose binaries are laid out, and the scenarios run for each: the binary of that
# name, under the load the benchmark gives it.
CRATES = {
    "stringsvc1": ["stringsvc1"],
    "stringsvc2": ["stringsvc2"],
    "stringsvc3": ["stringsvc3 instance", "stringsvc3 instance, traced",
                   "stringsvc3 proxy, 3 instances", "stringsvc3 proxy, default limit"],
    "addsvc": ["addsvc HTTP /sum", "addsvc gRPC Sum"],
    "profilesvc": ["profilesvc GET, memory", "profilesvc POST, memory",
                   "profilesvc GET, SQLite", "profilesvc POST, SQLite"],
}

# The least share of a list's functions that must still be in the binary (--check).
FRESH = 0.9

# Connections the load is sent on: as many as the benchmark's, whose code paths (a pool
# opening connections while others are busy, the tables that grow with them) differ from
# those of a few.
CONNECTIONS = 64

# How long the servers are left idle after their load before they stop: past what the
# benchmark waits before reading their memory (run.SETTLE), with a tick of each idle timer
# to spare.
IDLE = run.SETTLE + 1.5

# How long the quiet client waits before it closes its connection: long enough for a server
# under callgrind to start serving it, well within the time it gives a client's first bytes.
QUIET = 1.0

HEADER = """\
# The functions this crate's service runs, for the linker to put side by side (lld's
# --symbol-ordering-file; see build-support/hot_code.rs). Written by scripts/hot-code from
# callgrind runs of the load benchmark's scenarios; '#' starts a comment.
"""


def symbols(binary):
    """The binary's functions, as (address, size, name), sorted by address."""
    out = subprocess.run(["nm", "-S", "--defined-only", str(binary)], capture_output=True,
                         text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            found.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
    return sorted(found)


def executed(profile, binary):
    """The addresses of the instructions of `binary` that ran, from a callgrind profile
    written with --dump-instr=yes --compress-pos=no --compress-strings=no."""
    addresses, current = set(), None
    with open(profile) as lines:
        for line in lines:
            if line.startswith("ob="):
                current = Path(line[3:].strip()).resolve()
            elif line.startswith("0x") and current == binary:
                addresses.add(int(line.split(None, 1)[0], 16))
    return addresses


def functions_at(addresses, table):
    """The names of the functions of `table` that hold any of `addresses`, by address."""
    starts = [start for start, _, _ in table]
    hit = {}
    for address in addresses:
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and table[i][0] <= address < table[i][0] + table[i][1]:
            hit[table[i][2]] = table[i][0]
    return [name for name, _ in sorted(hit.items(), key=lambda item: item[1])]


def quiet_client(port):
    """A client that connects and sends nothing for a while. Outside callgrind, some of a
    load's connections are served before their first bytes arrive, and the server runs the
    code of a connection it waits on (its first bytes' deadline, the drain's signal); under
    callgrind the server is so slow that the bytes are always there first, and that code would
    run only outside the layout (about 230 KiB more of profilesvc's code held resident)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30):
        time.sleep(QUIET)


def profile(crate, names, seconds, profiles):
    """Runs the crate's scenarios (their servers under callgrind, writing into `profiles`);
    returns the functions of its binary that ran, in the binary's address order."""
    binary = (RELEASE / crate).resolve()
    addresses = set()
    for name in names:
        log(f"{crate}: {name}")
        load = LOAD.get(name, "uppercase")
        with tempfile.TemporaryDirectory(prefix="hot-code-") as tmp:
            servers = SCENARIOS[name](Path(tmp))
            try:
                if load != "grpc":
                    quiet_client(servers[0].port)
                run.wrk(servers[0].port, seconds, CONNECTIONS, None, Path(tmp), load)
                # What a service runs once a load is over (a worker's cache handed back, a
                # pool's surplus connections closed, a database thread's cache released) is
                # code it holds resident as much as the rest.
                time.sleep(IDLE)
                if load != "grpc":
                    try:
                        with urllib.request.urlopen(
                                f"http://127.0.0.1:{servers[0].port}/metrics", timeout=30) as r:
                            r.read()
                    except OSError:
                        pass
            finally:
                for server in servers:
                    server.stop()
        for out in profiles.glob("*.out"):
            addresses |= executed(out, binary)
            out.unlink()
    return functions_at(addresses, symbols(binary))


def check():
    """Fails when a list names too few functions its binary still has."""
    stale = []
    for crate in CRATES:
        path = ROOT / crate / "hot-code.txt"
        if not path.is_file():
            log(f"{path} is missing; run scripts/hot-code to write it")
            stale.append(crate)
            continue
        listed = [line.strip() for line in path.read_text().splitlines()
                  if line.strip() and not line.startswith("#")]
        present = {name for _, _, name in symbols(RELEASE / crate)}
        share = sum(name in present for name in listed) / max(len(listed), 1)
        log(f"{crate}/hot-code.txt: {len(listed)} functions, {share:.0%} of them in "
            f"{RELEASE / crate}")
        if share < FRESH:
            stale.append(crate)
    if stale:
        log(f"out of date: {', '.join(stale)}; run scripts/hot-code to write them again")
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3,
                        help="how long each scenario is loaded under callgrind (default 3)")
    parser.add_argument("--check", action="store_true",
                        help="only check that the lists still name the binaries' functions")
    parser.add_argument("--valgrind", default="valgrind", help="the valgrind to run")
    args = parser.parse_args()
    run.build()
    if args.check:
        return check()
    run.ensure_wrk()
    run.PATIENCE = 120.0
    # Under callgrind a call through the proxy takes tens of times as long, and with the
    # load's connections queued its attempts would all outlast their deadline (250 ms): the
    # proxy would run its timeout's code instead of forwarding's.
    run.UNLIMITED = run.UNLIMITED + ["--retry-timeout", "60s"]
    with tempfile.TemporaryDirectory(prefix="hot-code-profiles-") as tmp:
        # Every server the scenarios start runs under callgrind, one profile per process.
        run.Server.wrapper = [args.valgrind, "--tool=callgrind", "--dump-instr=yes",
                              "--compress-pos=no", "--compress-strings=no",
                              f"--callgrind-out-file={tmp}/%p.out"]
        for crate, names in CRATES.items():
            hot = profile(crate, names, args.seconds, Path(tmp))
            (ROOT / crate / "hot-code.txt").write_text(HEADER + "".join(f"{n}\n" for n in hot))
            log(f"{crate}/hot-code.txt: {len(hot)} functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
