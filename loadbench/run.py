#!/usr/bin/env python3
"""The load benchmark: every service of the tutorial under the same HTTP load, against a bare
axum handler doing the same JSON work, the ceiling that kit-core's cost is measured against.

It builds the release binaries, starts each scenario's servers on 127.0.0.1, drives them with
wrk (installed from Debian's packages if missing) for a fixed time and number of connections,
and reports requests/s, latency percentiles, non-2xx answers, in-band errors ("err" in the
body) and each server's peak RSS. Scenarios are run several times, interleaved, and the median
is reported with the spread (min to max). Servers run on CPU 0 and wrk on CPU 1 (taskset) when
the machine has two CPUs or more.

profilesvc has scenarios of its own: GET of an existing profile and POST of new ones, with the
profiles in memory and in a SQLite file. `--only profilesvc` runs just those (any text matched
against scenario names).

Usage: scripts/loadbench [--duration 10] [--connections 64] [--runs 5] [--quick] [--only TEXT]
Results: a table on stdout, and JSON in target/bench/load.json.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
RELEASE = TARGET / "release"
WRK_SCRIPT = ROOT / "loadbench" / "wrk" / "uppercase.lua"
PROFILESVC_SCRIPT = ROOT / "loadbench" / "wrk" / "profilesvc.lua"
PATIENCE = 30.0
UNLIMITED = ["--rate", "1000000", "--burst", "1000000"]

TARGETS = {
    "stringsvc1 / bare axum (requests/s)": 0.90,
    "stringsvc2 / stringsvc1 (requests/s)": 0.85,
    "stringsvc1 / bare axum (requests per CPU second)": 0.90,
    "stringsvc2 / stringsvc1 (requests per CPU second)": 0.85,
    "proxy hop at half saturation (p50, ms)": 0.3,
    "RSS of any service after the load (MiB)": 6.0,
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("wrk is missing: installing Debian's package")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run(prefix + ["apt-get", "install", "-y", "-qq", "wrk"], check=False,
                   stdout=subprocess.DEVNULL)
    if not shutil.which("wrk"):
        subprocess.run(prefix + ["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(prefix + ["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       stdout=subprocess.DEVNULL)


def build():
    log("building release binaries")
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "-p", "stringsvc1", "-p", "stringsvc2",
         "-p", "stringsvc3", "-p", "profilesvc", "-p", "loadbench"],
        cwd=ROOT, check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpus():
    """CPU lists for the servers and for wrk: apart when there are two CPUs or more."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:
        available = list(range(os.cpu_count() or 1))
    if len(available) >= 2 and shutil.which("taskset"):
        return str(available[0]), str(available[1])
    return None, None


SERVER_CPUS, LOAD_CPUS = cpus()


def pinned(cpu_list, command):
    return (["taskset", "-c", cpu_list] + command) if cpu_list else command


class Server:
    def __init__(self, name, command, log_path):
        self.name = name
        self.port = None
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(pinned(SERVER_CPUS, command), stdin=subprocess.DEVNULL,
                                        stdout=self.log, stderr=self.log)

    def wait_for(self, port):
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                self.port = port
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not listen on {port}")

    def cpu_seconds(self):
        """User and system CPU time the process has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mib(self, field):
        """A memory figure of the process from /proc, in MiB: VmHWM is the most it has held
        resident, VmRSS what it holds now, RssAnon the part that is its own rather than pages
        of the binary and of shared libraries mapped from disk."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def peak_rss_mib(self):
        return self.memory_mib("VmHWM")

    def stop(self):
        if self.process.poll() is not None:
            self.log.close()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def start(name, binary, args, workdir):
    port = free_port()
    listen = ["--listen", f"127.0.0.1:{port}"] if binary != "bare-axum" else [f"127.0.0.1:{port}"]
    server = Server(name, [str(RELEASE / binary)] + listen + args, workdir / f"{name}.log")
    try:
        return server.wait_for(port)
    except Exception:
        server.stop()
        raise


def fleet(workdir, limit_args):
    instances = []
    try:
        for n in range(3):
            instances.append(start(f"instance{n}", "stringsvc3", limit_args, workdir))
        proxy_to = ",".join(f"127.0.0.1:{i.port}" for i in instances)
        proxy = start("proxy", "stringsvc3", ["--proxy", proxy_to] + limit_args, workdir)
    except Exception:
        for server in instances:
            server.stop()
        raise
    return [proxy] + instances


SCENARIOS = {
    "bare axum": lambda w: [start("bare-axum", "bare-axum", [], w)],
    "stringsvc1": lambda w: [start("stringsvc1", "stringsvc1", [], w)],
    "stringsvc2": lambda w: [start("stringsvc2", "stringsvc2", [], w)],
    "stringsvc3 proxy, 3 instances": lambda w: fleet(w, UNLIMITED),
    "stringsvc3 proxy, default limit": lambda w: fleet(w, []),
}

def profilesvc(workdir, db):
    """A profilesvc, in memory or on a SQLite file in the scenario's folder, holding profile
    1234 for the GET scenarios."""
    args = ["--db", str(workdir / "profiles.db")] if db else []
    server = start("profilesvc", "profilesvc", args, workdir)
    body = b'{"id":"1234","name":"Go Kit","addresses":[{"id":"home","location":"Here"}]}'
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/profiles/", data=body,
                                     method="POST")
    with urllib.request.urlopen(request, timeout=PATIENCE) as answer:
        answer.read()
    return [server]


# profilesvc's scenarios: name -> (servers, wrk mode). They run after the string services'.
PROFILESVC = {
    "profilesvc GET, memory": (lambda w: profilesvc(w, db=False), "get"),
    "profilesvc GET, SQLite": (lambda w: profilesvc(w, db=True), "get"),
    "profilesvc POST, memory": (lambda w: profilesvc(w, db=False), "post"),
    "profilesvc POST, SQLite": (lambda w: profilesvc(w, db=True), "post"),
}

# For the proxy hop: one instance called directly, and the same behind a proxy.
HOP = {
    "hop: stringsvc3 instance": lambda w: [start("instance", "stringsvc3", UNLIMITED, w)],
    "hop: through the proxy": lambda w: fleet(w, UNLIMITED),
}


def wrk(port, seconds, connections, pace_ms, workdir, mode=None):
    if mode is None:
        script = WRK_SCRIPT.read_text()
    else:
        script = (PROFILESVC_SCRIPT.read_text().replace('"MODE"', f'"{mode}"')
                  .replace('"RUN"', f'"{uuid.uuid4().hex[:12]}"'))
    if pace_ms:
        script = script.replace("-- PACING", f"function delay()\n    return {pace_ms}\nend")
    script_path = workdir / "load.lua"
    script_path.write_text(script)
    command = pinned(LOAD_CPUS, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                                 "--timeout", "5s", "-s", str(script_path),
                                 f"http://127.0.0.1:{port}"])
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def steal_ticks():
    """CPU time the hypervisor gave to other machines, in clock ticks: noise worth knowing of."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return 0


def run_scenario(name, make, seconds, connections, pace_ms=None, mode=None):
    with tempfile.TemporaryDirectory(prefix="loadbench-") as tmp:
        workdir = Path(tmp)
        servers = make(workdir)
        try:
            wrk(servers[0].port, 1, connections, pace_ms, workdir, mode)  # warm-up, not recorded
            stolen = steal_ticks()
            cpu_before = sum(s.cpu_seconds() for s in servers)
            result = wrk(servers[0].port, seconds, connections, pace_ms, workdir, mode)
            cpu = sum(s.cpu_seconds() for s in servers) - cpu_before
            # Requests per second of server CPU: what a request costs, whatever share of the
            # CPU the hypervisor left the servers during the run.
            result["requests_per_cpu_second"] = result["requests"] / cpu if cpu > 0 else 0
            ticks = os.sysconf("SC_CLK_TCK")
            result["steal_percent"] = round(
                100 * (steal_ticks() - stolen) / ticks / seconds / (os.cpu_count() or 1), 1)
            result["peak_rss_mib"] = {s.name: round(s.peak_rss_mib(), 2) for s in servers}
            time.sleep(0.5)  # let the connections close and the last lines be written
            result["rss_after_mib"] = {s.name: round(s.memory_mib("VmRSS"), 2) for s in servers}
            result["anon_after_mib"] = {
                s.name: round(s.memory_mib("RssAnon"), 2) for s in servers}
        finally:
            for server in servers:
                server.stop()
    log(f"  {name}: {result['rps']:.0f} req/s, p50 {result['p50_us']}us, "
        f"non-2xx {result['non2xx']}, in-band errors {result['inband_errors']}, "
        f"steal {result['steal_percent']}%")
    return result


def summarize(runs):
    def stat(key):
        values = [r[key] for r in runs]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}
    for r in runs:
        r["socket_errors"] = (r["connect_errors"] + r["read_errors"] + r["write_errors"]
                              + r["timeouts"])
    summary = {key: stat(key) for key in
               ["rps", "requests_per_cpu_second", "p50_us", "p90_us", "p99_us", "max_us",
                "non2xx", "inband_errors", "socket_errors", "steal_percent"]}
    for key in ["peak_rss_mib", "rss_after_mib", "anon_after_mib"]:
        summary[key] = max(max(r[key].values()) for r in runs)
    summary["runs"] = runs
    return summary


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": platform.release(),
            "server_cpus": SERVER_CPUS, "load_cpus": LOAD_CPUS}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument("--runs", type=int, default=5, help="runs per scenario, interleaved (5)")
    parser.add_argument("--quick", action="store_true", help="2-second single runs, to try it out")
    parser.add_argument("--no-build", action="store_true", help="use the binaries already built")
    parser.add_argument("--only", default=None,
                        help="run only the scenarios whose name contains this text")
    parser.add_argument("--out", default=str(TARGET / "bench" / "load.json"))
    args = parser.parse_args()
    if args.quick:
        args.duration, args.runs = 2, 1

    ensure_wrk()
    if not args.no_build:
        build()

    if args.only:
        run_profilesvc_only(args)
        return
    results = {name: [] for name in list(SCENARIOS) + list(HOP) + list(PROFILESVC)}
    for run in range(args.runs):
        log(f"run {run + 1} of {args.runs}")
        # Every other run goes through the scenarios backwards, so that a machine slowly getting
        # faster or slower favours none of them.
        order = list(SCENARIOS.items())
        for name, make in (order if run % 2 == 0 else reversed(order)):
            results[name].append(run_scenario(name, make, args.duration, args.connections))
        order = list(PROFILESVC.items())
        for name, (make, mode) in (order if run % 2 == 0 else reversed(order)):
            results[name].append(
                run_scenario(name, make, args.duration, args.connections, mode=mode))

    # Half of the proxy's saturation, paced: each connection waits 2 ms between requests.
    saturation = statistics.median(r["rps"] for r in results["stringsvc3 proxy, 3 instances"])
    pace_ms = 2
    hop_connections = max(1, round(saturation / 2 * pace_ms / 1000))
    log(f"proxy hop at half saturation: {saturation / 2:.0f} req/s target, "
        f"{hop_connections} connections paced at {pace_ms} ms")
    for run in range(args.runs):
        order = list(HOP.items())
        for name, make in (order if run % 2 == 0 else reversed(order)):
            results[name].append(
                run_scenario(name, make, args.duration, hop_connections, pace_ms))

    summary = {name: summarize(runs) for name, runs in results.items()}
    hop_ms = (summary["hop: through the proxy"]["p50_us"]["median"]
              - summary["hop: stringsvc3 instance"]["p50_us"]["median"]) / 1000
    def ratio(a, b, key):
        """The median of the per-run ratios: runs next to each other in time share the
        machine's conditions, which drift over minutes on a shared host."""
        pairs = [x[key] / y[key] for x, y in zip(results[a], results[b]) if y[key] > 0]
        return statistics.median(pairs) if pairs else float("nan")

    figures = {
        "stringsvc1 / bare axum (requests/s)": ratio("stringsvc1", "bare axum", "rps"),
        "stringsvc2 / stringsvc1 (requests/s)": ratio("stringsvc2", "stringsvc1", "rps"),
        "stringsvc1 / bare axum (requests per CPU second)":
            ratio("stringsvc1", "bare axum", "requests_per_cpu_second"),
        "stringsvc2 / stringsvc1 (requests per CPU second)":
            ratio("stringsvc2", "stringsvc1", "requests_per_cpu_second"),
        "proxy hop at half saturation (p50, ms)": hop_ms,
        "RSS of any service after the load (MiB)":
            max(s["rss_after_mib"] for s in summary.values()),
    }
    checks = {}
    for name, figure in figures.items():
        limit = TARGETS[name]
        met = figure >= limit if "/" in name.split("(")[0] else figure <= limit
        checks[name] = {"figure": round(figure, 3), "target": limit, "met": met}

    print(f"\n{'scenario':32} {'req/s (min-max)':>22} {'req/CPU-s':>9} {'p50 ms':>7} "
          f"{'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'non-2xx':>8} {'in-band':>8} {'sock':>5} "
          f"{'RSS MiB':>7} {'peak':>5} {'own':>5} {'steal%':>6}")
    for name, s in summary.items():
        r = s["rps"]
        spread = f"{r['median']:.0f} ({r['min']:.0f}-{r['max']:.0f})"
        print(f"{name:32} {spread:>22} {s['requests_per_cpu_second']['median']:>9.0f} "
              f"{s['p50_us']['median'] / 1000:>7.2f} {s['p90_us']['median'] / 1000:>7.2f} "
              f"{s['p99_us']['median'] / 1000:>7.2f} {s['max_us']['median'] / 1000:>7.1f} "
              f"{s['non2xx']['median']:>8.0f} {s['inband_errors']['median']:>8.0f} "
              f"{s['socket_errors']['max']:>5.0f} "
              f"{s['rss_after_mib']:>7.1f} {s['peak_rss_mib']:>5.1f} {s['anon_after_mib']:>5.1f} "
              f"{s['steal_percent']['median']:>6.1f}")
    print(f"\n{'target':52} {'figure':>8} {'target':>8}  met")
    for name, check in checks.items():
        print(f"{name:52} {check['figure']:>8} {check['target']:>8}  "
              f"{'yes' if check['met'] else 'NO'}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine(),
        "parameters": {"duration_s": args.duration, "connections": args.connections,
                       "runs": args.runs, "hop_connections": hop_connections,
                       "hop_pace_ms": pace_ms},
        "scenarios": summary,
        "targets": checks,
    }, indent=2))
    print(f"\nJSON: {out}")


def run_profilesvc_only(args):
    """The scenarios whose names contain --only (profilesvc's, typically): a table of
    requests/s and latencies, and the JSON, without the ratios the full run checks."""
    chosen = {name: spec for name, spec in PROFILESVC.items() if args.only in name}
    chosen.update({name: (make, None) for name, make in SCENARIOS.items() if args.only in name})
    if not chosen:
        sys.exit(f"no scenario matches {args.only!r}")
    results = {name: [] for name in chosen}
    for run in range(args.runs):
        log(f"run {run + 1} of {args.runs}")
        order = list(chosen.items())
        for name, (make, mode) in (order if run % 2 == 0 else reversed(order)):
            results[name].append(
                run_scenario(name, make, args.duration, args.connections, mode=mode))
    summary = {name: summarize(runs) for name, runs in results.items()}
    print(f"\n{'scenario':32} {'req/s (min-max)':>22} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'non-2xx':>8} {'errors':>7} {'sock':>5} {'RSS MiB':>7}")
    for name, s in summary.items():
        r = s["rps"]
        spread = f"{r['median']:.0f} ({r['min']:.0f}-{r['max']:.0f})"
        print(f"{name:32} {spread:>22} {s['p50_us']['median'] / 1000:>7.2f} "
              f"{s['p99_us']['median'] / 1000:>7.2f} {s['non2xx']['median']:>8.0f} "
              f"{s['inband_errors']['median']:>7.0f} {s['socket_errors']['max']:>5.0f} "
              f"{s['rss_after_mib']:>7.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine(),
        "parameters": {"duration_s": args.duration, "connections": args.connections,
                       "runs": args.runs, "only": args.only},
        "scenarios": summary,
    }, indent=2))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
