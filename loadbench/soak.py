#!/usr/bin/env python3
"""The soak: a service held at about 80% of its saturated throughput for a minute, under a mix
of valid and invalid requests, watched for errors, for latency that creeps up, and for memory
that grows.

It builds the release binaries, starts the service on 127.0.0.1 (pinned to one CPU, the load
generator to another, as the load benchmark does), measures its saturated throughput with the
same mix for a few seconds, then sends the mix at --load of that rate for --duration seconds
with loadbench's soak-load, which checks every answer: valid requests must be answered 200 with
the right body, each invalid one with its own 4xx and a JSON error. Every --interval seconds it
reports requests per second, p50 and p99 latency, wrong answers, and the service's RSS.

It fails (exit 1) if any valid request was answered wrongly or not at all, if an invalid one got
anything but its 4xx, or if RSS at the end exceeds RSS after the first interval by more than 25%
and 2 MiB.

Usage: scripts/soak [--service stringsvc2] [--duration 60] [--load 0.8] [--connections 32]
Services: stringsvc1, stringsvc2, stringsvc3 (an instance), proxy (stringsvc3's proxy in front
of three instances, rate limits lifted).
Results: a table on stdout, and JSON in target/bench/soak.json.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (the load benchmark's servers, CPUs and paths)

SERVICES = {
    "stringsvc1": lambda w: [run.start("stringsvc1", "stringsvc1", [], w)],
    "stringsvc2": lambda w: [run.start("stringsvc2", "stringsvc2", [], w)],
    "stringsvc3": lambda w: [run.start("stringsvc3", "stringsvc3", run.UNLIMITED, w)],
    "proxy": lambda w: run.fleet(w, run.UNLIMITED),
}

# Extra growth RSS may show between the first interval and the end before it counts as growth.
RSS_SLACK_RATIO, RSS_SLACK_MIB = 1.25, 2.0


def soak_load(port, rate, seconds, connections, interval):
    command = run.pinned(run.LOAD_CPUS, [
        str(run.RELEASE / "soak-load"), f"127.0.0.1:{port}", "--rate", str(rate),
        "--duration", str(seconds), "--connections", str(connections),
        "--interval", str(interval)])
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def lines(process):
    output, _ = process.communicate()
    if process.returncode != 0:
        sys.exit(f"soak-load failed with {process.returncode}")
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", choices=sorted(SERVICES), default="stringsvc2")
    parser.add_argument("--duration", type=int, default=60, help="seconds under load (60)")
    parser.add_argument("--load", type=float, default=0.8,
                        help="share of the saturated throughput to send (0.8)")
    parser.add_argument("--connections", type=int, default=32, help="connections (32)")
    parser.add_argument("--interval", type=int, default=5, help="seconds per report line (5)")
    parser.add_argument("--saturation-seconds", type=int, default=5,
                        help="seconds to measure the saturated throughput (5)")
    parser.add_argument("--no-build", action="store_true", help="use the binaries already built")
    parser.add_argument("--out", default=str(run.TARGET / "bench" / "soak.json"))
    args = parser.parse_args()

    if not args.no_build:
        run.log("building release binaries")
        subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "stringsvc1", "-p",
                        "stringsvc2", "-p", "stringsvc3", "-p", "loadbench"],
                       cwd=run.ROOT, check=True)

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        servers = SERVICES[args.service](Path(tmp))
        try:
            port = servers[0].port
            run.log(f"{args.service}: measuring the saturated throughput "
                    f"({args.saturation_seconds}s)")
            saturated = lines(soak_load(port, 0, args.saturation_seconds, args.connections,
                                        args.saturation_seconds))[-1]
            rate = max(1, int(saturated["rps"] * args.load))
            run.log(f"saturated at {saturated['rps']:.0f} req/s; soaking at {rate} req/s "
                    f"for {args.duration}s")
            load = soak_load(port, rate, args.duration, args.connections, args.interval)
            rss = []
            started = time.monotonic()
            while load.poll() is None:
                rss.append((round(time.monotonic() - started, 1),
                            round(sum(s.memory_mib("VmRSS") for s in servers), 2)))
                time.sleep(args.interval / 5)
            reports = lines(load)
            rss_end = round(sum(s.memory_mib("VmRSS") for s in servers), 2)
        finally:
            for server in servers:
                server.stop()

    intervals, total = reports[:-1], reports[-1]
    print(f"\n{args.service} at {rate} req/s ({args.load:.0%} of {saturated['rps']:.0f}), "
          f"{args.connections} connections, {args.duration}s")
    print(f"{'from s':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'valid':>8} {'wrong':>6} {'invalid':>8} {'wrong':>6} {'RSS MiB':>8}")
    for report in intervals:
        begin = report["interval"] * args.interval
        end = begin + args.interval
        during = [mib for t, mib in rss if begin <= t < end]
        print(f"{begin:>6} {report['rps']:>8.0f} {report['p50_us'] / 1000:>7.2f} "
              f"{report['p99_us'] / 1000:>7.2f} {report['max_us'] / 1000:>7.1f} "
              f"{report['valid']:>8} {report['valid_wrong']:>6} {report['invalid']:>8} "
              f"{report['invalid_wrong']:>6} {max(during) if during else float('nan'):>8.1f}")

    first = [mib for t, mib in rss if t < args.interval] or [rss_end]
    rss_start = max(first)
    problems = []
    if total["valid_wrong"]:
        problems.append(f"{total['valid_wrong']} valid requests answered wrongly or not at all")
    if total["invalid_wrong"]:
        problems.append(f"{total['invalid_wrong']} invalid requests not refused as they must be")
    if rss_end > rss_start * RSS_SLACK_RATIO + RSS_SLACK_MIB:
        problems.append(f"RSS grew from {rss_start} to {rss_end} MiB")
    print(f"\ntotal: {total['requests']} requests, {total['valid']} valid "
          f"({total['valid_wrong']} wrong), {total['invalid']} invalid "
          f"({total['invalid_wrong']} wrong); p99 {total['p99_us'] / 1000:.2f} ms; "
          f"RSS {rss_start} MiB after the first {args.interval}s, {rss_end} MiB at the end")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": run.machine(),
        "service": args.service,
        "parameters": {"duration_s": args.duration, "load": args.load, "rate": rate,
                       "connections": args.connections, "interval_s": args.interval},
        "saturated": saturated,
        "intervals": intervals,
        "total": total,
        "rss_mib": {"samples": rss, "start": rss_start, "end": rss_end},
        "problems": problems,
    }, indent=2))
    print(f"JSON: {out}")
    if problems:
        print("FAILED: " + "; ".join(problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
