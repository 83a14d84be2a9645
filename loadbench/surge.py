#!/usr/bin/env python3
"""Memory after a surge: how much a service holds while thousands of keep-alive connections are
open, and how much it gives back once they close.

It starts the service (release build, on one CPU), opens --connections keep-alive connections
that each send one request and stay open, closes them, then runs --surges more waves of as many
short connections, reading the service's RSS from /proc at each step and a few seconds after.

Usage: scripts/surge [--service stringsvc1] [--connections 5000] [--surges 4] [--no-build]
"""

import argparse
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the load benchmark's servers and paths)

REQUEST = (b'POST /uppercase HTTP/1.1\r\nHost: surge\r\nContent-Length: 20\r\n\r\n'
           b'{"s":"hello, world"}')


def answered(sock):
    data = b""
    while not data.endswith(b"}\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.startswith(b"HTTP/1.1 200")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", default="stringsvc1",
                        choices=["stringsvc1", "stringsvc2", "stringsvc3"])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--surges", type=int, default=4)
    parser.add_argument("--no-build", action="store_true", help="use the binaries already built")
    args = parser.parse_args()

    # The client needs a descriptor per connection too.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = args.connections + 100
    if hard != resource.RLIM_INFINITY and hard < wanted:
        sys.exit(f"this shell allows {hard} open files; {wanted} are needed (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    if not args.no_build:
        run.log("building release binaries")
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", args.service],
                       cwd=run.ROOT, check=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="surge-") as tmp:
        server = run.start(args.service, args.service, run.UNLIMITED
                           if args.service == "stringsvc3" else [], Path(tmp))
        try:
            def note(what):
                rows.append((what, round(server.memory_mib("VmRSS"), 1)))

            time.sleep(0.5)
            note("idle")
            socks = []
            for _ in range(args.connections):
                sock = socket.create_connection(("127.0.0.1", server.port))
                sock.sendall(REQUEST)
                socks.append(sock)
            failed = sum(not answered(sock) for sock in socks)
            time.sleep(0.5)
            note(f"{args.connections} keep-alive connections open")
            for sock in socks:
                sock.close()
            time.sleep(1)
            note("1 s after they close")
            time.sleep(4)
            note("5 s after")
            for _ in range(args.surges):
                socks = []
                for _ in range(args.connections):
                    sock = socket.create_connection(("127.0.0.1", server.port))
                    sock.sendall(REQUEST)
                    socks.append(sock)
                failed += sum(not answered(sock) for sock in socks)
                for sock in socks:
                    sock.close()
            time.sleep(1)
            note(f"1 s after {args.surges} more surges of {args.connections}")
            time.sleep(4)
            note("5 s after")
        finally:
            server.stop()

    print(f"\n{args.service}: RSS in MiB")
    for what, mib in rows:
        print(f"  {what:45} {mib:>7.1f}")
    if failed:
        print(f"{failed} requests were not answered 200")
        sys.exit(1)


if __name__ == "__main__":
    main()
