#!/usr/bin/env python3
"""The load benchmark: every service of the tutorial under the same HTTP load, against a bare
axum handler doing the same JSON work (the ceiling for an HTTP framework) and a bare tokio server
doing it with no framework at all (the floor of this machine: kernel, runtime, allocator, JSON);
and addsvc over HTTP (/sum, against a bare axum /sum) and over gRPC (Sum, against a bare tonic
service doing the same addition, driven by loadbench's own gRPC load generator, grpc-load);
and profilesvc: GET of an existing profile and POST of new ones, with the profiles in memory
and in a SQLite file; and a stringsvc3 instance with request tracing on, exporting a span for
every request to loadbench's own OTLP collector (otlp-sink, on the load generator's CPU), which
counts what arrives.

It builds the release binaries, starts each scenario's servers on 127.0.0.1, drives them with
wrk (installed from Debian's packages if missing) for a fixed time and number of connections,
and reports requests/s, the server processes' CPU time per request, latency percentiles, non-2xx
answers, in-band errors ("err" in the body) and each server's RSS. When the load generator used
its whole CPU during a run, the server was not the bottleneck: the run is marked saturated and
left out of the ratios. CPU per request is compared at equal load: bare tokio, stringsvc1 and
stringsvc2 are run again at the same paced request rate, half of the slowest one's, where
neither they nor the load generator are saturated (each connection waits between requests a
random time around a mean; wrk counts that time in whole milliseconds and sends the requests due
in the same millisecond together, so they come in bursts, the same for each server); the proxy's
CPU per forwarded request is compared with an instance's at the hop's paced load. The hop's
latency is measured at that load with requests that arrive spread out as from independent
clients, sent by loadbench's own paced-load, whose waits are timed to the microsecond.
Scenarios are run several times, interleaved, and the median is reported with the spread (min
to max). Servers run on CPU 0 and wrk on CPU 1 (taskset) when
the machine has two CPUs or more.

Usage: scripts/loadbench [--duration 10] [--connections 64] [--runs 5] [--quick] [--only TEXT]...
Results: a table on stdout, and JSON in target/bench/load.json.
"""

import argparse
import json
import os
import platform
import resource
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
WRK = ROOT / "loadbench" / "wrk"
WRK_SCRIPTS = {"uppercase": WRK / "uppercase.lua", "sum": WRK / "sum.lua",
               "profilesvc": WRK / "profilesvc.lua"}
PATIENCE = 30.0
UNLIMITED = ["--rate", "1000000", "--burst", "1000000"]

# Each target: its limit, and whether the figure must be at least ("min") or at most ("max") it.
TARGETS = {
    "stringsvc1 / bare tokio (CPU us per request)": (1.35, "max"),
    "stringsvc2 / stringsvc1 (CPU us per request)": (1.10, "max"),
    "proxy forwarding / instance serving (CPU us per request)": (2.5, "max"),
    "stringsvc1 / bare axum (requests/s)": (0.90, "min"),
    "stringsvc2 / stringsvc1 (requests/s)": (0.85, "min"),
    "proxy hop at half saturation (p50, ms)": (0.3, "max"),
    "RSS of any service after the load (MiB)": (6.0, "max"),
    "addsvc HTTP /sum / bare axum /sum (requests/s)": (0.90, "min"),
    "addsvc gRPC Sum / bare tonic Sum (requests/s)": (0.85, "min"),
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
         "-p", "stringsvc3", "-p", "addsvc", "-p", "profilesvc", "-p", "loadbench"],
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
    # What every server's command runs under, if anything (scripts/hot-code: callgrind).
    wrapper = []

    def __init__(self, name, command, log_path, helper=False):
        self.name = name
        self.port = None
        # A helper (the traced instance's collector) is not one of the servers measured: it
        # stands for another machine, so it runs on the load generator's CPU, with no wrapper,
        # and its CPU and memory are not the scenario's.
        self.helper = helper
        self.log_path = log_path
        self.log = open(log_path, "wb")
        command = command if helper else self.wrapper + command
        cpus = LOAD_CPUS if helper else SERVER_CPUS
        self.process = subprocess.Popen(pinned(cpus, command), stdin=subprocess.DEVNULL,
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


def start(name, binary, args, workdir, helper=False):
    port = free_port()
    bare = binary in ("bare-axum", "bare-tonic", "bare-tokio", "otlp-sink")
    listen = [f"127.0.0.1:{port}"] if bare else ["--listen", f"127.0.0.1:{port}"]
    server = Server(name, [str(RELEASE / binary)] + listen + args, workdir / f"{name}.log",
                    helper)
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


def addsvc(workdir, transport):
    """addsvc with its five listeners on free ports; the one measured is `transport`'s."""
    ports = {flag: free_port() for flag in
             ["-debug.addr", "-http-addr", "-grpc-addr", "-thrift-addr", "-jsonrpc-addr"]}
    args = [x for flag, port in ports.items() for x in (flag, f"127.0.0.1:{port}")]
    server = Server("addsvc", [str(RELEASE / "addsvc")] + args, workdir / "addsvc.log")
    try:
        return [server.wait_for(ports[transport])]
    except Exception:
        server.stop()
        raise


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


def traced(workdir):
    """A stringsvc3 instance exporting a span for every request to loadbench's OTLP collector
    (otlp-sink, which counts the spans and lets them go), as a traced service is deployed."""
    collector = start("collector", "otlp-sink", [], workdir, helper=True)
    try:
        endpoint = f"--otlp-endpoint=http://127.0.0.1:{collector.port}"
        return [start("instance", "stringsvc3", UNLIMITED + [endpoint], workdir), collector]
    except Exception:
        collector.stop()
        raise


SCENARIOS = {
    "bare tokio": lambda w: [start("bare-tokio", "bare-tokio", [], w)],
    "bare axum": lambda w: [start("bare-axum", "bare-axum", [], w)],
    "stringsvc1": lambda w: [start("stringsvc1", "stringsvc1", [], w)],
    "stringsvc2": lambda w: [start("stringsvc2", "stringsvc2", [], w)],
    "stringsvc3 instance": lambda w: [start("instance", "stringsvc3", UNLIMITED, w)],
    # Request tracing on, every request a span, exported to a collector: what tracing costs a
    # service, beside the row above.
    "stringsvc3 instance, traced": traced,
    "stringsvc3 proxy, 3 instances": lambda w: fleet(w, UNLIMITED),
    "stringsvc3 proxy, default limit": lambda w: fleet(w, []),
    "bare axum /sum": lambda w: [start("bare-axum", "bare-axum", [], w)],
    "addsvc HTTP /sum": lambda w: addsvc(w, "-http-addr"),
    "bare tonic Sum": lambda w: [start("bare-tonic", "bare-tonic", [], w)],
    "addsvc gRPC Sum": lambda w: addsvc(w, "-grpc-addr"),
    "profilesvc GET, memory": lambda w: profilesvc(w, db=False),
    "profilesvc GET, SQLite": lambda w: profilesvc(w, db=True),
    "profilesvc POST, memory": lambda w: profilesvc(w, db=False),
    "profilesvc POST, SQLite": lambda w: profilesvc(w, db=True),
}

# The load each scenario gets: wrk with a script, or grpc-load; uppercase unless named here.
LOAD = {"bare axum /sum": "sum", "addsvc HTTP /sum": "sum",
        "bare tonic Sum": "grpc", "addsvc gRPC Sum": "grpc",
        "profilesvc GET, memory": "profilesvc get", "profilesvc GET, SQLite": "profilesvc get",
        "profilesvc POST, memory": "profilesvc post", "profilesvc POST, SQLite": "profilesvc post"}

# Scenarios whose service keeps what it is sent: its memory grows with the data, by design, so
# it says nothing of what serving costs.
STORING = {"profilesvc POST, memory"}

# CPU per request compared at equal load: the same request rate offered to each, half of what
# the slowest of them answered at full load, so that neither the servers nor the load generator
# are saturated. (At full load wrk, which costs about what a lean server does per request, may
# use its whole CPU first: such runs say so and give no ratio.)
EQUAL_LOAD = {
    "equal load: bare tokio": lambda w: [start("bare-tokio", "bare-tokio", [], w)],
    "equal load: stringsvc1": lambda w: [start("stringsvc1", "stringsvc1", [], w)],
    "equal load: stringsvc2": lambda w: [start("stringsvc2", "stringsvc2", [], w)],
}

# For the proxy hop: one instance called directly, and the same behind a proxy, paced by wrk
# (whose paced requests come in bursts, see `pacing`): the proxy's CPU per forwarded request
# against an instance's per request served.
HOP = {
    "hop: stringsvc3 instance": lambda w: [start("instance", "stringsvc3", UNLIMITED, w)],
    "hop: through the proxy": lambda w: fleet(w, UNLIMITED),
}

# The same at the same load, the requests spread out as from independent clients (paced-load):
# the latency the hop adds.
HOP_SPREAD = {
    "hop, spread: stringsvc3 instance": HOP["hop: stringsvc3 instance"],
    "hop, spread: through the proxy": HOP["hop: through the proxy"],
}
LOAD.update({name: "spread uppercase" for name in HOP_SPREAD})


def run_load(command):
    """Runs a load generator (wrk with the benchmark's script, grpc-load, paced-load) and reads
    the JSON line each prints last, in the same shape: requests, duration, latency, errors."""
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def grpc_load(port, seconds, connections):
    """grpc-load with as many calls in flight as wrk has connections, over 4 HTTP/2
    connections (gRPC clients multiplex; one connection per call would measure handshakes)."""
    streams = max(1, connections // 4)
    command = pinned(LOAD_CPUS, [str(RELEASE / "grpc-load"), f"127.0.0.1:{port}",
                                 "--connections", "4", "--streams", str(streams),
                                 "--duration", str(seconds)])
    return run_load(command)


def pacing(pace_ms):
    """The wrk `delay()` that paces each connection: between two requests it waits a time drawn
    at random, exponentially distributed with a mean of `pace_ms`, rounded to wrk's whole
    milliseconds.

    A fixed wait would keep the connections in step: they would all send within the same few
    microseconds. Random waits do not undo that entirely: wrk's event loop fires every timer due
    in the same millisecond together, so the requests still leave in bursts on millisecond
    ticks (at 12 000 requests a second, 70 % of the gaps between two are under 10 µs). Each
    server gets the same bursts, which is fair for comparing CPU per request; latency is
    measured with `paced_load` instead."""
    return (f"function delay()\n"
            f"    return math.floor(-{pace_ms} * math.log(1 - math.random()) + 0.5)\nend")


def paced_load(port, seconds, connections, pace_ms):
    """loadbench's paced-load: `connections` clients posting /uppercase, each waiting a time
    drawn at random around `pace_ms` between an answer and its next request, timed to the
    microsecond, so that requests arrive spread out as from independent clients."""
    command = pinned(LOAD_CPUS, [str(RELEASE / "paced-load"), f"127.0.0.1:{port}",
                                 "--connections", str(connections),
                                 "--mean-us", str(round(pace_ms * 1000)),
                                 "--duration", str(seconds)])
    return run_load(command)


def wrk(port, seconds, connections, pace_ms, workdir, load="uppercase"):
    if load == "grpc":
        return grpc_load(port, seconds, connections)
    if load == "spread uppercase":
        return paced_load(port, seconds, connections, pace_ms)
    if load.startswith("profilesvc "):
        # One script for both: its mode, and a run id that keeps POSTed ids new in every run.
        script = (WRK_SCRIPTS["profilesvc"].read_text()
                  .replace('"MODE"', f'"{load.split()[1]}"')
                  .replace('"RUN"', f'"{uuid.uuid4().hex[:12]}"'))
    else:
        script = WRK_SCRIPTS[load].read_text()
    # The scenario's script loads report.lua from beside it: both go to the run's folder.
    script_path = workdir / "load.lua"
    script_path.write_text(script)
    report = (WRK / "report.lua").read_text()
    if pace_ms:
        report = report.replace("-- PACING", pacing(pace_ms))
    (workdir / "report.lua").write_text(report)
    command = pinned(LOAD_CPUS, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                                 "--timeout", "5s", "-s", str(script_path),
                                 f"http://127.0.0.1:{port}"])
    return run_load(command)


# How long after a run its servers' memory is read: what a service holds once the load is
# over, its connections closed, its last lines written, and the memory they used given back.
# kit-core's allocator keeps freed pages a second for reuse (kit_core::allocator::
# RETURN_AFTER_MS), and a service returns them, with its worker's cache, at the next tick of
# a task that runs once a second; the proxy's pool closes its surplus connections a second
# after the load. Read at half a second, stringsvc2 held 7.3 MiB, of which 0.9 were pages it
# was about to give back.
SETTLE = 2.5

# The share of its CPU above which the load generator may have been the bottleneck.
LOAD_SATURATED = 0.9


def children_cpu_seconds():
    """User and system CPU time of the finished child processes (the load generator's runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def steal_ticks():
    """CPU time the hypervisor gave to other machines, in clock ticks: noise worth knowing of."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
        return int(fields[8])
    except (OSError, IndexError, ValueError):
        return 0


def run_scenario(name, make, seconds, connections, pace_ms=None):
    load = LOAD.get(name, "uppercase")
    with tempfile.TemporaryDirectory(prefix="loadbench-") as tmp:
        workdir = Path(tmp)
        started = make(workdir)
        servers = [s for s in started if not s.helper]
        helpers = [s for s in started if s.helper]
        try:
            # A warm-up, not recorded.
            warm_up = wrk(servers[0].port, 1, connections, pace_ms, workdir, load)
            stolen = steal_ticks()
            cpu_before = sum(s.cpu_seconds() for s in servers)
            first_before = servers[0].cpu_seconds()
            # The load generator's CPU is shared with the helpers, if any.
            load_before = children_cpu_seconds() + sum(s.cpu_seconds() for s in helpers)
            result = wrk(servers[0].port, seconds, connections, pace_ms, workdir, load)
            load_cpu = (children_cpu_seconds() + sum(s.cpu_seconds() for s in helpers)
                        - load_before)
            cpu = sum(s.cpu_seconds() for s in servers) - cpu_before
            first = servers[0].cpu_seconds() - first_before
            # CPU microseconds a request costs: all the scenario's servers together, and the
            # one the load talks to (the proxy, where there are instances behind it).
            requests = max(result["requests"], 1)
            result["cpu_us_per_request"] = cpu * 1e6 / requests
            result["front_cpu_us_per_request"] = first * 1e6 / requests
            # The load generator runs on one CPU: using nearly all of it, it may have been the
            # limit rather than the server.
            result["load_cpu_share"] = round(load_cpu / seconds, 3)
            result["load_saturated"] = load_cpu / seconds > LOAD_SATURATED
            # Requests per second of server CPU: what a request costs, whatever share of the
            # CPU the hypervisor left the servers during the run.
            result["requests_per_cpu_second"] = result["requests"] / cpu if cpu > 0 else 0
            ticks = os.sysconf("SC_CLK_TCK")
            result["steal_percent"] = round(
                100 * (steal_ticks() - stolen) / ticks / seconds / (os.cpu_count() or 1), 1)
            result["peak_rss_mib"] = {s.name: round(s.peak_rss_mib(), 2) for s in servers}
            time.sleep(SETTLE)
            result["rss_after_mib"] = {s.name: round(s.memory_mib("VmRSS"), 2) for s in servers}
            result["anon_after_mib"] = {
                s.name: round(s.memory_mib("RssAnon"), 2) for s in servers}
            for collector in (s for s in helpers if s.name == "collector"):
                # Every request's span should have reached the collector (the warm-up's too):
                # a ratio well under 1 means the row measured spans dropped, not exported.
                collector.stop()
                received = json.loads(collector.log_path.read_text().strip().splitlines()[-1])
                answered = warm_up["requests"] + result["requests"]
                result["spans_per_request"] = round(received["spans"] / max(answered, 1), 4)
                if result["spans_per_request"] < 0.99:
                    log(f"  warning: the collector received {result['spans_per_request']} "
                        f"spans a request: the service dropped spans")
        finally:
            for server in started:
                server.stop()
    spans = (f", spans exported a request {result['spans_per_request']}"
             if "spans_per_request" in result else "")
    log(f"  {name}: {result['rps']:.0f} req/s, p50 {result['p50_us']}us, "
        f"non-2xx {result['non2xx']}, in-band errors {result['inband_errors']}, "
        f"steal {result['steal_percent']}%{spans}")
    return result


def summarize(runs):
    def stat(key):
        values = [r[key] for r in runs]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}
    for r in runs:
        r["socket_errors"] = (r["connect_errors"] + r["read_errors"] + r["write_errors"]
                              + r["timeouts"])
    summary = {key: stat(key) for key in
               ["rps", "requests_per_cpu_second", "cpu_us_per_request",
                "front_cpu_us_per_request", "load_cpu_share", "p50_us", "p90_us", "p99_us",
                "max_us", "non2xx", "inband_errors", "socket_errors", "steal_percent"]}
    summary["load_saturated_runs"] = sum(1 for r in runs if r["load_saturated"])
    if all("spans_per_request" in r for r in runs):
        summary["spans_per_request"] = min(r["spans_per_request"] for r in runs)
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
    parser.add_argument("--out", default=str(TARGET / "bench" / "load.json"))
    parser.add_argument("--only", action="append", default=[],
                        help="run only the scenarios whose names contain this (repeatable)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.runs = 2, 1

    ensure_wrk()
    if not args.no_build:
        build()

    chosen = {name: make for name, make in SCENARIOS.items()
              if not args.only or any(part in name for part in args.only)}
    hop = "stringsvc3 proxy, 3 instances" in chosen
    equal = [name for name in EQUAL_LOAD if name.removeprefix("equal load: ") in chosen]
    results = {name: [] for name in list(chosen) + equal
               + (list(HOP) + list(HOP_SPREAD) if hop else [])}
    for run in range(args.runs):
        log(f"run {run + 1} of {args.runs}")
        # Every other run goes through the scenarios backwards, so that a machine slowly getting
        # faster or slower favours none of them.
        order = list(chosen.items())
        for name, make in (order if run % 2 == 0 else reversed(order)):
            results[name].append(run_scenario(name, make, args.duration, args.connections))

    # Equal load: half of the slowest one's full-load rate, each connection waiting 1 ms between
    # requests on average (see `pacing`).
    equal_connections = 0
    if equal:
        slowest = min(statistics.median(r["rps"] for r in results[name.removeprefix("equal load: ")])
                      for name in equal)
        equal_connections = max(1, round(slowest / 2 * 1 / 1000))
        log(f"equal load: {slowest / 2:.0f} req/s target, {equal_connections} connections paced "
            f"at 1 ms")
        for run in range(args.runs):
            order = [(name, EQUAL_LOAD[name]) for name in equal]
            for name, make in (order if run % 2 == 0 else reversed(order)):
                results[name].append(
                    run_scenario(name, make, args.duration, equal_connections, 1))

    # Half of the proxy's saturation, paced: each connection waits 2 ms between requests on
    # average; by wrk (for CPU per request) and by paced-load (for latency), in turn.
    pace_ms, hop_connections = 2, 0
    if hop:
        saturation = statistics.median(r["rps"] for r in results["stringsvc3 proxy, 3 instances"])
        hop_connections = max(1, round(saturation / 2 * pace_ms / 1000))
        log(f"proxy hop at half saturation: {saturation / 2:.0f} req/s target, "
            f"{hop_connections} connections paced at {pace_ms} ms")
        for run in range(args.runs):
            order = list(HOP.items()) + list(HOP_SPREAD.items())
            for name, make in (order if run % 2 == 0 else reversed(order)):
                results[name].append(
                    run_scenario(name, make, args.duration, hop_connections, pace_ms))

    summary = {name: summarize(runs) for name, runs in results.items()}

    def ratio(a, b, key, key_b=None):
        """The median of the per-run ratios: runs next to each other in time share the
        machine's conditions, which drift over minutes on a shared host. Runs where the load
        generator was the bottleneck say nothing of the servers and are left out."""
        pairs = [x[key] / y[key_b or key] for x, y in zip(results[a], results[b])
                 if y[key_b or key] > 0 and not x["load_saturated"] and not y["load_saturated"]]
        return statistics.median(pairs) if pairs else float("nan")

    pairs = {
        "stringsvc1 / bare tokio (CPU us per request)":
            ("equal load: stringsvc1", "equal load: bare tokio", "cpu_us_per_request"),
        "stringsvc2 / stringsvc1 (CPU us per request)":
            ("equal load: stringsvc2", "equal load: stringsvc1", "cpu_us_per_request"),
        # At the same paced load (the hop's), neither saturated: the proxy's own CPU per
        # forwarded request against an instance's per request served.
        "proxy forwarding / instance serving (CPU us per request)":
            ("hop: through the proxy", "hop: stringsvc3 instance",
             "front_cpu_us_per_request", "cpu_us_per_request"),
        "stringsvc1 / bare axum (requests/s)": ("stringsvc1", "bare axum", "rps"),
        "stringsvc2 / stringsvc1 (requests/s)": ("stringsvc2", "stringsvc1", "rps"),
        "addsvc HTTP /sum / bare axum /sum (requests/s)":
            ("addsvc HTTP /sum", "bare axum /sum", "rps"),
        "addsvc gRPC Sum / bare tonic Sum (requests/s)":
            ("addsvc gRPC Sum", "bare tonic Sum", "rps"),
    }
    figures = {name: ratio(*pair) for name, pair in pairs.items()
               if pair[0] in results and pair[1] in results}
    def hop_p50(direct, proxied):
        return (summary[proxied]["p50_us"]["median"] - summary[direct]["p50_us"]["median"]) / 1000

    # Not a target: the hop as wrk's bursts make it, for comparison with earlier runs.
    informational = {}
    if hop:
        figures["proxy hop at half saturation (p50, ms)"] = hop_p50(
            "hop, spread: stringsvc3 instance", "hop, spread: through the proxy")
        informational["proxy hop at half saturation, wrk's bursts (p50, ms)"] = round(hop_p50(
            "hop: stringsvc3 instance", "hop: through the proxy"), 3)
    figures["RSS of any service after the load (MiB)"] = max(
        s["rss_after_mib"] for name, s in summary.items() if name not in STORING)
    checks = {}
    for name, figure in figures.items():
        limit, direction = TARGETS[name]
        met = figure >= limit if direction == "min" else figure <= limit
        checks[name] = {"figure": round(figure, 3), "target": limit,
                        "direction": direction, "met": met}

    print(f"\n{'scenario':32} {'req/s (min-max)':>22} {'CPU us':>7} {'p50 ms':>7} "
          f"{'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} {'non-2xx':>8} {'in-band':>8} {'sock':>5} "
          f"{'RSS MiB':>7} {'peak':>5} {'own':>5} {'steal%':>6} {'load':>5}")
    for name, s in summary.items():
        r = s["rps"]
        spread = f"{r['median']:.0f} ({r['min']:.0f}-{r['max']:.0f})"
        # The load generator's CPU share; "sat" when it was the bottleneck in some run.
        load = "sat" if s["load_saturated_runs"] else f"{s['load_cpu_share']['median']:.2f}"
        print(f"{name:32} {spread:>22} {s['cpu_us_per_request']['median']:>7.2f} "
              f"{s['p50_us']['median'] / 1000:>7.2f} {s['p90_us']['median'] / 1000:>7.2f} "
              f"{s['p99_us']['median'] / 1000:>7.2f} {s['max_us']['median'] / 1000:>7.1f} "
              f"{s['non2xx']['median']:>8.0f} {s['inband_errors']['median']:>8.0f} "
              f"{s['socket_errors']['max']:>5.0f} "
              f"{s['rss_after_mib']:>7.1f} {s['peak_rss_mib']:>5.1f} {s['anon_after_mib']:>5.1f} "
              f"{s['steal_percent']['median']:>6.1f} {load:>5}")
    print(f"\n{'target':58} {'figure':>8} {'target':>8}  met")
    for name, check in checks.items():
        bound = (">=" if check["direction"] == "min" else "<=") + f"{check['target']}"
        if check["figure"] != check["figure"]:  # NaN: every pair of runs was left out
            print(f"{name:58} {'n/a':>8} {bound:>8}  no figure: the load generator was "
                  f"saturated in every run")
            continue
        print(f"{name:58} {check['figure']:>8} {bound:>8}  "
              f"{'yes' if check['met'] else 'NO'}")
    for name, figure in informational.items():
        print(f"{name:58} {figure:>8} {'':>8}  (not a target)")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine(),
        "parameters": {"duration_s": args.duration, "connections": args.connections,
                       "runs": args.runs, "equal_load_connections": equal_connections,
                       "hop_connections": hop_connections,
                       "hop_pace_ms": pace_ms},
        "scenarios": summary,
        "targets": checks,
        "informational": informational,
    }, indent=2))
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
