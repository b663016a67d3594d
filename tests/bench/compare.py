#!/usr/bin/env python3
"""Side-by-side benchmark of countersd against Redis and memcached (issue 6).

Run by tests/bench/run.sh (and `make bench`); see that file for usage.

How it works:
  1. It starts, each on a free 127.0.0.1 port and in one temporary directory:
     countersd with its defaults (handlers = CPUs, capacity 1,000,000,
     snapshots every second) in a fresh data directory; redis-server without
     persistence (--save '' --appendonly no); redis-server with
     --appendonly yes --appendfsync everysec; memcached with as many threads
     as countersd has handlers (-t CPUs); and, as reference rows, the
     bare gRPC server (tests/bench/bare_grpc_server) with the callback API,
     and pre-forked with the async API on one thread per process. A `finally` block and handlers for
     SIGINT/SIGTERM/SIGHUP stop every process it started.
  2. It drives three workloads, the same total concurrency and the same key
     distribution (a uniformly random key among --keys, default 10,000, drawn
     afresh for every increment) against every system:
       unary1    one increment in flight: one connection, one call at a time;
       unary64   64 increments in flight: countersd 64 calls over 8 HTTP/2
                 connections; Redis and memcached 64 connections with one
                 command each (a text protocol has no multiplexing);
       batch100  16 batches of 100 in flight: countersd IncrementBatch of 100
                 over 8 connections; Redis `redis-benchmark -c 16 -P 100` of
                 INCRBY; memcached 16 connections each pipelining 100 `incr`
                 per round trip (memcached has no multi-key increment).
     Drivers: `counterctl bench` (gRPC; its default engine), `redis-benchmark`
     (single-threaded C, epoll), tests/bench/memcached_incr_bench
     (single-threaded C++, epoll). Every cell runs --reps times (default 3);
     the rounds interleave the systems so that a change of machine load hits
     all of them alike, and each figure reported is the median of its cell.
     counterctl and memcached_incr_bench warm up for 1 s before measuring;
     redis-benchmark gets an unmeasured calibration run first, which also
     sizes -n so that the measured run lasts about --seconds.
  3. While countersd is under load it samples each handler's VmRSS, RssAnon,
     RssFile, RssShmem (/proc/PID/status) and Pss (/proc/PID/smaps_rollup),
     and reads the calls each handler served (counterctl stats).
  4. Snapshots and startup, on a second countersd (--log-level=debug, so the
     aggregator logs every snapshot with its duration and the longest pause it
     imposed on increments): startup of a fresh 1,000,000-capacity table; 65,536
     counters, then 1,000,000, each under 64-in-flight increments over all of
     them for a few seconds, reading the aggregator's snapshot lines; then
     clean restarts of the full 1,000,000-counter table (exec to the "ready"
     line), and one restart after SIGKILL of the whole daemon.
  5. It runs tests/bench/table_bench (Google Benchmark) for the table-level
     figures, the local attach phase (local_attach_bench.py: processes
     attached to a daemon's table, tests/bench/local_bench, beside
     table_bench, the unary RPC and Redis unary and at -P 16), and the
     transport phase (transport_bench.py: plaintext, TLS and
     the unix socket, Redis on its own unix socket beside them), and the
     throughput phase (stream_bench.py: IncrementStream and the Accumulator
     against Redis pipelined, and unary against the bare gRPC server), then prints
     the Markdown report and writes it (and the raw
     results as JSON) to the build directory.
All traffic goes to 127.0.0.1. Every child has a deadline.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

KEY_PREFIX = "key:"


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline_s=20.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listens on 127.0.0.1:{port} after {deadline_s:.0f}s")


class Processes:
    """Every long-running child; stop_all() ends them (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, **kw):
        log(f"starting {name}: {' '.join(argv)}")
        p = subprocess.Popen(argv, **kw)
        self.procs.append((name, p))
        return p

    def stop(self, p, timeout=20.0):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [(n, q) for n, q in self.procs if q is not p]
        return p.returncode

    def stop_all(self):
        for name, p in list(reversed(self.procs)):
            rc = self.stop(p)
            log(f"stopped {name} (exit {rc})")


def run_json(argv, timeout):
    """Runs a driver that prints one JSON document; returns it (or raises)."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{argv[0]} did not finish within {timeout:.0f}s")
    if r.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout)


# ---- countersd ------------------------------------------------------------


class Countersd:
    """A countersd started on 127.0.0.1:0; the port comes from its "ready" line."""

    def __init__(self, procs, binary, data_dir, log_path, extra=()):
        self.procs = procs
        self.lines = []  # parsed JSON log lines, appended by the reader thread
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.address = None
        self.log_file = open(log_path, "a")
        # Free ports for gRPC and /metrics: the defaults (50051, 50052) may be
        # an operator's daemon's.
        argv = [binary, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                f"--data-dir={data_dir}", "--log-format=json", *extra]
        self.t_exec = time.monotonic()
        self.proc = procs.start("countersd", argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(60):
            raise BenchError(f"countersd did not log \"ready\" within 60s (log: {log_path})")
        self.startup_s = self.t_ready - self.t_exec

    def _read(self):
        for raw in self.proc.stderr:
            now = time.monotonic()
            self.log_file.write(raw)
            self.log_file.flush()
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            line["_t"] = now
            with self.lock:
                self.lines.append(line)
            if line.get("msg") == "ready" and not self.ready.is_set():
                self.t_ready = now
                self.address = line["listen"]
                self.ready.set()

    def lines_since(self, t0, msg):
        with self.lock:
            return [l for l in self.lines if l["_t"] >= t0 and l.get("msg") == msg]

    def stop(self):
        t0 = time.monotonic()
        rc = self.procs.stop(self.proc, timeout=60)
        self.reader.join(10)
        self.log_file.close()
        return rc, time.monotonic() - t0

    def kill(self):
        """SIGKILL of the supervisor; its children follow it (parent-death signal)."""
        pids = [self.proc.pid] + self.children()
        self.proc.kill()
        self.proc.wait()
        self.procs.procs = [(n, q) for n, q in self.procs.procs if q is not self.proc]
        end = time.monotonic() + 30
        while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < end:
            time.sleep(0.05)
        self.reader.join(10)
        self.log_file.close()

    def children(self):
        return children_of(self.proc.pid)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """utime + stime of the processes (all their threads), in seconds."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


class CpuMeter:
    """CPU used by the servers' processes and by our finished children (the
    drivers) between __enter__ and __exit__, and the wall time."""

    def __init__(self, server_pids):
        self.server_pids = server_pids

    def __enter__(self):
        self.t0 = time.monotonic()
        self.s0 = cpu_seconds(self.server_pids)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.c0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.server = cpu_seconds(self.server_pids) - self.s0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.client = ru.ru_utime + ru.ru_stime - self.c0

    def annotate(self, r):
        """Adds CPU use (cores busy) of server and client over the run."""
        if self.wall > 0:
            r["server_cores"] = self.server / self.wall
            r["client_cores"] = self.client / self.wall


def start_redis(procs, name, d, extra=(), persistence=("--appendonly", "no")):
    """A redis-server on a free 127.0.0.1 port, without persistence unless
    `persistence` says otherwise (e.g. AOF with appendfsync always), its
    files in `d`, serving once this returns: (process, port)."""
    port = free_port()
    p = procs.start(name, ["redis-server", "--bind", "127.0.0.1", "--port", str(port), *extra,
                           "--save", "", *persistence, "--dir", d, "--daemonize", "no",
                           "--logfile", f"{d}/redis.log"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def counterctl_stats(ctl, address):
    return run_json([ctl, f"--addr={address}", "--output=json", "stats"], timeout=30)


def read_mem(pid):
    """VmRSS/RssAnon/RssFile/RssShmem from status and Pss from smaps_rollup, in KiB."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[k] = int(v.split()[0])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                    out[k] = int(v.split()[0])
    except (OSError, ValueError):
        pass
    return out


class MemSampler:
    """Samples the memory of `pids` every 0.25 s while running; keeps the maxima."""

    def __init__(self, pids):
        self.pids = pids
        self.max = {p: {} for p in pids}
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_ev.wait(0.25):
            for p in self.pids:
                for k, v in read_mem(p).items():
                    self.max[p][k] = max(self.max[p].get(k, 0), v)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.thread.join()


# ---- the workloads ----------------------------------------------------------

WORKLOADS = [
    ("unary1", "Increment, 1 in flight", dict(conc=1, conns=1, batch=1)),
    ("unary64", "Increment, 64 in flight", dict(conc=64, conns=8, batch=1)),
    ("batch100", "Batches of 100, 16 in flight", dict(conc=16, conns=8, batch=100)),
]


def bench_countersd(cfg, address, w, seconds):
    argv = [cfg.counterctl, f"--addr={address}", "--output=json", "--timeout=10s", "bench",
            f"--rpc={'batch' if w['batch'] > 1 else 'increment'}", f"--keys={cfg.keys}",
            f"--key-prefix={KEY_PREFIX}", f"--connections={w['conns']}",
            f"--concurrency={w['conc']}", f"--duration={seconds}s", "--warmup=1s"]
    if w["batch"] > 1:
        argv.append(f"--batch={w['batch']}")
    j = run_json(argv, timeout=seconds + 90)
    return dict(ops=j["ops_per_second"], p50_us=j["latency_us"]["p50"],
                p99_us=j["latency_us"]["p99"], detail=j)


def parse_redis_csv(text):
    rows = [l for l in text.strip().splitlines() if l.startswith('"')]
    if len(rows) < 2:
        raise BenchError(f"redis-benchmark printed no result: {text[-300:]}")
    head = [h.strip('"') for h in rows[0].split('","')]
    vals = [v.strip('"') for v in rows[-1].split('","')]
    return dict(zip(head, vals))


def bench_redis(cfg, port, w, seconds, calibrated, meter):
    """redis-benchmark INCRBY key:__rand_int__ 1 with -c = in-flight round trips, -P = batch."""
    clients = w["conc"]  # one connection per round trip in flight
    base = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
            "-P", str(w["batch"]), "-r", str(cfg.keys), "--csv"]
    cmd = ["INCRBY", f"{KEY_PREFIX}__rand_int__", "1"]
    key = (port, w["conc"], w["batch"])
    if key not in calibrated:
        # Unmeasured: warms the server up and measures the rate to size -n
        # (about a second's worth at the rates seen here). Later runs are
        # sized from the previous measured run.
        n = max(clients * w["batch"] * 20, (20000 if clients == 1 else 40000) * w["batch"] // 4
                if w["batch"] > 1 else (20000 if clients == 1 else 40000))
        r = subprocess.run(base + ["-n", str(n)] + cmd, capture_output=True, text=True,
                           timeout=120)
        rate = float(parse_redis_csv(r.stdout)["rps"])
        calibrated[key] = max(int(rate * seconds), clients * w["batch"] * 10)
    n = calibrated[key]
    try:
        with meter:
            r = subprocess.run(base + ["-n", str(n)] + cmd, capture_output=True, text=True,
                               timeout=seconds * 6 + 60)
    except subprocess.TimeoutExpired:
        raise BenchError("redis-benchmark did not finish in time")
    if r.returncode != 0:
        raise BenchError(f"redis-benchmark exited {r.returncode}: {r.stderr[-300:]}")
    row = parse_redis_csv(r.stdout)
    calibrated[key] = max(int(float(row["rps"]) * seconds), clients * w["batch"] * 10)
    return dict(ops=float(row["rps"]), p50_us=float(row["p50_latency_ms"]) * 1000,
                p99_us=float(row["p99_latency_ms"]) * 1000, detail=dict(n=n, **row))


def bench_memcached(cfg, port, w, seconds):
    argv = [cfg.memcached_driver, f"--port={port}", f"--connections={w['conc']}",
            f"--pipeline={w['batch']}", f"--keys={cfg.keys}", f"--key-prefix={KEY_PREFIX}",
            f"--duration={seconds}", "--warmup=1"]
    j = run_json(argv, timeout=seconds + 90)
    return dict(ops=j["ops_per_second"], p50_us=j["latency_us"]["p50"],
                p99_us=j["latency_us"]["p99"], detail=j)


# ---- report helpers ---------------------------------------------------------


def fmt_ops(x):
    if x is None:
        return "n/a"
    return f"{x:,.0f}"


def fmt_us(x):
    if x is None:
        return "n/a"
    if x >= 1000:
        return f"{x / 1000:.2f} ms"
    return f"{x:.0f} µs"


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}×"


def fmt_cores(x):
    return "n/a" if x is None else f"{x:.2f}"


def fmt_cpu_per_op(cores, ops):
    if not cores or not ops:
        return "n/a"
    ns = cores / ops * 1e9
    return f"{ns / 1000:.1f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def median_of(runs, field):
    """The median of `field` over the runs that have it (None: none has)."""
    return median([r.get(field) for r in runs])


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def verdict(ok, measured=True):
    if not measured:
        return "n/a (not measured)"
    return "**met**" if ok else "**not met**"


# ---- phases -------------------------------------------------------------------


def run_comparison(cfg, procs, tmp, results):
    ncpu = os.cpu_count() or 1
    cd = Countersd(procs, cfg.countersd, f"{tmp}/countersd-data", f"{tmp}/countersd.log")
    results["countersd_startup_default_s"] = cd.startup_s
    log(f"countersd ready on {cd.address} after {cd.startup_s * 1000:.0f} ms")

    systems = [("countersd", cd.address)]
    redis_plain = free_port()
    redis_aof = free_port()
    memcached = free_port()
    for name, port, persist in (("redis", redis_plain, ["--appendonly", "no"]),
                                ("redis-aof", redis_aof,
                                 ["--appendonly", "yes", "--appendfsync", "everysec"])):
        d = f"{tmp}/{name}"
        os.makedirs(d)
        procs.start(name, ["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                           "--save", "", *persist, "--dir", d, "--daemonize", "no",
                           "--protected-mode", "yes", "--logfile", f"{tmp}/{name}.log"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.start("memcached", ["memcached", "-l", "127.0.0.1", "-p", str(memcached), "-U", "0",
                              "-t", str(ncpu), "-u", "root" if os.geteuid() == 0 else
                              os.environ.get("USER", "nobody")],
                stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/memcached.log", "w"))
    for port in (redis_plain, redis_aof, memcached):
        wait_port(port)
    systems += [("redis", redis_plain), ("redis-aof", redis_aof), ("memcached", memcached)]
    for name, flags in (("grpc-bare", []),
                        ("grpc-bare-async", ["--api=async", "--threads=1",
                                             f"--processes={ncpu}"])):
        bare = procs.start(name, [cfg.bare_server, "--listen=127.0.0.1:0", *flags],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        first = bare.stdout.readline().strip()
        m = re.fullmatch(r"listening on (\S+)", first)
        if not m:
            raise BenchError(f"bare_grpc_server {' '.join(flags)} did not start: {first!r}")
        systems.append((name, m.group(1)))
    server_pids = {"countersd": lambda: [cd.proc.pid] + cd.children()}
    for name, p in procs.procs:
        if name in ("redis", "redis-aof", "memcached", "grpc-bare", "grpc-bare-async"):
            server_pids[name] = (lambda pid: lambda: [pid] + children_of(pid))(p.pid)

    versions = {}
    versions["redis"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                       text=True).stdout.strip()
    versions["memcached"] = subprocess.run(["memcached", "-V"], capture_output=True,
                                           text=True).stdout.strip()
    results["versions"] = versions

    stats0 = counterctl_stats(cfg.counterctl, cd.address)
    handler_pids = [h["pid"] for h in stats0["handlers"]]
    agg_pids = [p for p in cd.children() if p not in handler_pids]
    results["handler_pids"] = handler_pids

    cells = {}  # (workload, system) -> list of runs
    calibrated = {}
    mem = {}
    spread = []
    results["load_during"] = []
    for rep in range(cfg.reps):
        results["load_during"].append(loadavg())
        log(f"round {rep + 1}/{cfg.reps}, load average {loadavg()}")
        for wname, _, w in WORKLOADS:
            for sname, target in systems:
                meter = CpuMeter(server_pids[sname]())
                try:
                    if sname == "countersd":
                        before = counterctl_stats(cfg.counterctl, target)
                        with MemSampler(handler_pids + agg_pids + [cd.proc.pid]) as ms, meter:
                            r = bench_countersd(cfg, target, w, cfg.seconds)
                        after = counterctl_stats(cfg.counterctl, target)
                        calls = {h["pid"]: h["calls"] for h in after["handlers"]}
                        for h in before["handlers"]:
                            calls[h["pid"]] = calls.get(h["pid"], 0) - h["calls"]
                        spread.append(dict(workload=wname, calls=calls))
                        for p, m in ms.max.items():
                            cur = mem.setdefault(p, {})
                            for k, v in m.items():
                                cur[k] = max(cur.get(k, 0), v)
                    elif sname.startswith("grpc-bare"):
                        with meter:
                            r = bench_countersd(cfg, target, w, cfg.seconds)
                    elif sname.startswith("redis"):
                        r = bench_redis(cfg, target, w, cfg.seconds, calibrated, meter)
                    else:
                        with meter:
                            r = bench_memcached(cfg, target, w, cfg.seconds)
                    meter.annotate(r)
                except (BenchError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
                    log(f"{wname} {sname}: FAILED: {e}")
                    r = dict(ops=None, p50_us=None, p99_us=None, error=str(e))
                cells.setdefault((wname, sname), []).append(r)
                log(f"  {wname:9s} {sname:10s} {fmt_ops(r['ops']):>12s} ops/s  "
                    f"p50 {fmt_us(r['p50_us']):>9s}  p99 {fmt_us(r['p99_us']):>9s}  "
                    f"cores busy: server {r.get('server_cores', 0):.2f}, "
                    f"client {r.get('client_cores', 0):.2f}")
    results["cells"] = {f"{w}/{s}": runs for (w, s), runs in cells.items()}
    results["handler_spread"] = spread
    results["memory_kib"] = {
        "handlers": {str(p): mem.get(p, {}) for p in handler_pids},
        "aggregator": {str(p): mem.get(p, {}) for p in agg_pids},
        "supervisor": mem.get(cd.proc.pid, {}),
    }
    results["systems"] = [s for s, _ in systems]
    rc, t = cd.stop()
    results["countersd_stop"] = dict(exit=rc, seconds=t)


def snapshot_lines(cd, t0):
    out = []
    for l in cd.lines_since(t0, "snapshot written"):
        out.append(dict(counters=l.get("counters"), micros=l.get("micros"),
                        max_pause_ns=l.get("max_pause_ns"), bytes=l.get("bytes")))
    return out


def snapshots_under_load(cfg, cd, n, handler_pids):
    """Loads n counters, then runs 64-in-flight increments over all of them and
    collects the aggregator's "snapshot written" lines meanwhile."""
    f = run_json([cfg.fill, f"--addr={cd.address}", f"--counters={n}", "--prefix=counter:"],
                 timeout=300)
    log(f"filled {n:,} counters in {f['seconds']:.2f}s; 64-in-flight increments over them "
        f"for {cfg.snapshot_seconds}s")
    t0 = time.monotonic()
    with MemSampler(handler_pids) as ms:
        b = run_json([cfg.counterctl, f"--addr={cd.address}", "--output=json", "--timeout=10s",
                      "bench", "--rpc=increment", f"--keys={n}", "--key-prefix=counter:",
                      "--connections=8", "--concurrency=64",
                      f"--duration={cfg.snapshot_seconds}s", "--warmup=0"],
                     timeout=cfg.snapshot_seconds + 90)
    time.sleep(1.5)  # let the snapshot that was running finish and log
    snaps = [s for s in snapshot_lines(cd, t0) if s["counters"] and s["counters"] >= n]
    return dict(fill_seconds=f["seconds"], snapshots=snaps,
                load=dict(ops=b["ops_per_second"], p50_us=b["latency_us"]["p50"],
                          p99_us=b["latency_us"]["p99"], max_us=b["latency_us"]["max"]),
                memory_kib={str(p): m for p, m in ms.max.items()})


def run_snapshots_and_startup(cfg, procs, tmp, results):
    out = results.setdefault("big", {})
    # 65,536 counters in a table sized for them (capacity 81,920, as table_bench).
    cd = Countersd(procs, cfg.countersd, f"{tmp}/small-data", f"{tmp}/countersd-small.log",
                   ["--log-level=debug", "--capacity=81920"])
    stats = counterctl_stats(cfg.counterctl, cd.address)
    out["snapshots_65536_cap81920"] = snapshots_under_load(
        cfg, cd, 65536, [h["pid"] for h in stats["handlers"]])
    cd.stop()

    data = f"{tmp}/big-data"
    extra = ["--log-level=debug", "--capacity=1000000"]
    cd = Countersd(procs, cfg.countersd, data, f"{tmp}/countersd-big.log", extra)
    out["startup_fresh_s"] = cd.startup_s
    log(f"fresh 1,000,000-capacity countersd ready after {cd.startup_s * 1000:.0f} ms")
    st = os.stat(f"{data}/counters.map")
    out["map_file_bytes"] = st.st_size
    out["capacity"] = 1000000
    stats = counterctl_stats(cfg.counterctl, cd.address)
    handler_pids = [h["pid"] for h in stats["handlers"]]
    for n in (65536, 1000000):
        out[f"snapshots_{n}"] = snapshots_under_load(cfg, cd, n, handler_pids)
    st = os.stat(f"{data}/counters.map")
    out["map_file_allocated_bytes_full"] = st.st_blocks * 512
    snap = f"{data}/counters.snap"
    if os.path.exists(snap):
        out["snapshot_file_bytes"] = os.stat(snap).st_size
    rc, t = cd.stop()
    out["clean_stop"] = dict(exit=rc, seconds=t)
    log(f"clean stop of the full table: exit {rc} after {t:.2f}s")
    restarts = []
    for i in range(3):
        cd = Countersd(procs, cfg.countersd, data, f"{tmp}/countersd-big.log", extra)
        ready = [l for l in cd.lines if l.get("msg") == "ready"]
        counters = ready[-1].get("counters") if ready else None
        restarts.append(dict(seconds=cd.startup_s, counters=counters))
        log(f"restart {i + 1} of the 1,000,000-counter table: ready after "
            f"{cd.startup_s * 1000:.0f} ms ({counters} counters)")
        if i < 2:
            cd.stop()
    out["restart_clean"] = restarts
    cd.kill()
    cd = Countersd(procs, cfg.countersd, data, f"{tmp}/countersd-big.log", extra)
    ready = [l for l in cd.lines if l.get("msg") == "ready"]
    out["restart_after_sigkill"] = dict(seconds=cd.startup_s,
                                        counters=ready[-1].get("counters") if ready else None)
    log(f"restart after SIGKILL: ready after {cd.startup_s * 1000:.0f} ms")
    cd.stop()


def run_table_bench(cfg, tmp, results):
    log("table microbenchmarks (table_bench)")
    # table_bench keeps its map files (~500 MB) in a directory under TMPDIR
    # that it does not remove: give it ours, which is removed at the end.
    env = dict(os.environ, TMPDIR=tmp)
    try:
        r = subprocess.run([cfg.table_bench, "--benchmark_format=json"], capture_output=True,
                           text=True, timeout=600, env=env)
    except subprocess.TimeoutExpired:
        results["table_bench_error"] = "did not finish within 600s"
        return
    if r.returncode != 0:
        results["table_bench_error"] = f"exit {r.returncode}: {r.stderr[-500:]}"
        return
    results["table_bench"] = {b["name"]: b for b in json.loads(r.stdout)["benchmarks"]}
    # The wall-clock scaling of two processes needs two idle cores, which a
    # shared machine rarely has. CPU time per increment does not: run the
    # two process benchmarks again alone and divide the CPU their forked
    # children used (folded into ours by wait4) by the increments they did.
    cpu = {}
    for name in ("BM_OneProcess", "BM_TwoProcessesDifferentStripes"):
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        r = subprocess.run([cfg.table_bench, "--benchmark_format=json",
                            f"--benchmark_filter=^{name}/"], capture_output=True, text=True,
                           timeout=300, env=env)
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.returncode != 0:
            continue
        b = json.loads(r.stdout)["benchmarks"][0]
        scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b.get("time_unit", "ns")]
        items = b["items_per_second"] * b["real_time"] * scale * b["iterations"]
        used = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        cpu[name] = dict(cpu_seconds=used, increments=items, cpu_ns_per_increment=used / items * 1e9,
                         cores_used=used / wall)
    results["table_bench_cpu"] = cpu


# ---- the report ---------------------------------------------------------------


def ratio(a, b):
    return a / b if a and b else None


def cell_medians(cells):
    """The median of each cell's runs, by field."""
    med = {}
    for k, runs in cells.items():
        med[k] = dict(ops=median([r["ops"] for r in runs]),
                      p50_us=median([r["p50_us"] for r in runs]),
                      p99_us=median([r["p99_us"] for r in runs]),
                      server_cores=median([r.get("server_cores") for r in runs]),
                      client_cores=median([r.get("client_cores") for r in runs]),
                      n=sum(1 for r in runs if r["ops"] is not None))
    return med


def report_header(cfg, results):
    """The title, the machine, the peers and the key distribution."""
    lines = []
    add = lines.append
    host = platform.node()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    add(f"# countersd vs Redis vs memcached — {results['started']}")
    add("")
    add(f"Machine: {host}, {os.cpu_count()} vCPU ({cpu}), {mem_gib:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}. Load average at start {results['load_start']}, "
        f"at the start of each round {', '.join(results.get('load_during', []))}, "
        f"at the end {results.get('load_end', '?')}.")
    add("")
    add(f"**The load generators run on the same {os.cpu_count()} cores as the servers** "
        "(all traffic over 127.0.0.1), so every figure is client + server sharing the CPUs.")
    v = results.get("versions", {})
    add(f"Peers: {v.get('redis', 'redis')}; {v.get('memcached', 'memcached')} "
        f"(-t {os.cpu_count()}). countersd: defaults "
        f"({len(results.get('handler_pids', []))} handlers, snapshot every 1 s, "
        "capacity 1,000,000).")
    add(f"Keys: uniform over {cfg.keys:,} keys, a fresh draw per increment. "
        f"Each cell: {cfg.reps} runs of ~{cfg.seconds} s, median shown.")
    add("")
    return lines


def report_comparison(results, med):
    """The side-by-side table, what drove each system, and the calls per handler."""
    cells = results.get("cells", {})
    lines = []
    add = lines.append
    add("| workload | system | increments/s | p50 | p99 | countersd ÷ system, throughput | "
        "countersd ÷ system, p50 | cores busy, server / client | server CPU per increment |")
    add("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    names = {"countersd": "countersd", "redis": "Redis (no persistence)",
             "redis-aof": "Redis (AOF, fsync everysec)", "memcached": "memcached",
             "grpc-bare": "bare gRPC, callback API (reference)",
             "grpc-bare-async": f"bare gRPC, async API, 1 thread × {os.cpu_count()} processes "
                                "(reference)"}
    drivers = {
        "unary1": "countersd: 1 connection, 1 call; Redis/memcached: 1 connection",
        "unary64": "countersd: 64 calls over 8 connections; Redis/memcached: 64 connections",
        "batch100": "countersd: IncrementBatch(100) ×16 over 8 connections; Redis: -c 16 -P 100 "
                    "INCRBY; memcached: 16 connections × 100 pipelined incr",
    }
    for wname, wtitle, _ in WORKLOADS:
        c = med.get(f"{wname}/countersd")
        for s in results.get("systems", []):
            m = med.get(f"{wname}/{s}")
            if m is None:
                continue
            rt = rl = None
            if c and s != "countersd" and c["ops"] and m["ops"]:
                rt = c["ops"] / m["ops"]
            if c and s != "countersd" and c["p50_us"] and m["p50_us"]:
                rl = c["p50_us"] / m["p50_us"]
            add(f"| {wtitle} | {names[s]} | {fmt_ops(m['ops'])} | {fmt_us(m['p50_us'])} | "
                f"{fmt_us(m['p99_us'])} | {'—' if s == 'countersd' else fmt_ratio(rt)} | "
                f"{'—' if s == 'countersd' else fmt_ratio(rl)} | "
                f"{fmt_cores(m['server_cores'])} / {fmt_cores(m['client_cores'])} | "
                f"{fmt_cpu_per_op(m['server_cores'], m['ops'])} |")
    add("")
    drv = next((r["detail"] for r in cells.get("unary64/countersd", []) if r.get("detail")), {})
    drv_api = f"gRPC {drv.get('api', '?')} API, {drv.get('threads', '?')} polling thread(s)" \
        if drv.get("api") else "gRPC"
    add(f"Drivers: countersd `counterctl bench` ({drv_api}); Redis `redis-benchmark "
        "INCRBY key:__rand_int__ 1 -r KEYS`; memcached `memcached_incr_bench` (text protocol, "
        "keys pre-created with `set`, since `incr` needs them to exist). Latency of a "
        "pipelined/batched row is the round trip of its batch. memcached has no multi-key "
        "increment: its batch row is 100 `incr` pipelined per round trip. Cores busy: CPU "
        "seconds per wall second over each driver run (warm-up included) of the server's "
        "processes and of the driver; server CPU per increment = server cores busy ÷ "
        "increments/s. The bare gRPC rows (tests/bench/bare_grpc_server: same proto, a "
        "mutex-guarded in-process hash map behind it, nothing else) are not peers but floors of "
        "the gRPC path, driven by the same `counterctl bench`: one process with the callback API "
        "as countersd's handlers use it, and pre-forked processes each running the "
        "completion-queue API on one thread that polls and handles. "
        "Per workload: " + "; ".join(f"{k}: {d}" for k, d in drivers.items()) + ".")
    add("")
    spread = results.get("handler_spread", [])
    if spread:
        parts = []
        for s in spread[: len(WORKLOADS)]:
            tot = sum(s["calls"].values()) or 1
            parts.append(f"{s['workload']}: " + "/".join(
                f"{100 * v / tot:.0f}%" for v in sorted(s["calls"].values(), reverse=True)))
        add("Calls per handler (first round; SO_REUSEPORT spreads connections, not calls): "
            + "; ".join(parts) + ".")
        add("")
    return lines


def report_targets(results, med):
    """The targets of issue 6, each with its measured figure and verdict."""
    tb = results.get("table_bench", {})
    big = results.get("big", {})
    lines = []
    add = lines.append

    def tbv(name, field):
        b = tb.get(name)
        return None if b is None else b.get(field)

    add("## Targets (issue 6)")
    add("")
    add("| # | target | measured | verdict |")
    add("|---|---|---|---|")
    r1 = ratio((med.get("unary64/countersd") or {}).get("ops"),
               (med.get("unary64/redis") or {}).get("ops"))
    add(f"| 1 | unary Increment, 64 in flight ≥ 1.0× Redis (no persistence) | {fmt_ratio(r1)} "
        f"| {verdict(r1 is not None and r1 >= 1.0, r1 is not None)} |")
    r2 = ratio((med.get("unary1/countersd") or {}).get("p50_us"),
               (med.get("unary1/redis") or {}).get("p50_us"))
    add(f"| 2 | unary Increment at 1 in flight, p50 ≤ 1.2× Redis's | {fmt_ratio(r2)} "
        f"({fmt_us((med.get('unary1/countersd') or {}).get('p50_us'))} vs "
        f"{fmt_us((med.get('unary1/redis') or {}).get('p50_us'))}) "
        f"| {verdict(r2 is not None and r2 <= 1.2, r2 is not None)} |")
    r3 = ratio((med.get("batch100/countersd") or {}).get("ops"),
               (med.get("batch100/redis") or {}).get("ops"))
    add(f"| 3 | batches ≥ 3× Redis pipelined (-P 100) increments/s | {fmt_ratio(r3)} "
        f"| {verdict(r3 is not None and r3 >= 3.0, r3 is not None)} |")
    hot, atomic = tbv("BM_IncrementHotKey", "real_time"), tbv("BM_AtomicFetchAdd", "real_time")
    r4a = ratio(hot, atomic)
    one = tbv("BM_OneProcess/iterations:3/manual_time", "items_per_second")
    two = tbv("BM_TwoProcessesDifferentStripes/iterations:3/manual_time", "items_per_second")
    r4b = ratio(two, one)
    add(f"| 4a | hot-key table increment ≤ 6× a bare atomic fetch_add | {fmt_ratio(r4a)} "
        f"({hot or 0:.1f} ns vs {atomic or 0:.1f} ns) | {verdict(r4a is not None and r4a <= 6, r4a is not None)} |")
    tcpu = results.get("table_bench_cpu", {})
    c1 = tcpu.get("BM_OneProcess", {}).get("cpu_ns_per_increment")
    c2 = tcpu.get("BM_TwoProcessesDifferentStripes", {}).get("cpu_ns_per_increment")
    cpu_note = ""
    if c1 and c2:
        par = tcpu["BM_TwoProcessesDifferentStripes"].get("cores_used", 0)
        cpu_note = (f"; CPU per increment {c2:.1f} ns with two processes vs {c1:.1f} ns with one, "
                    f"so with two idle cores they would do {2 * c1 / c2:.2f}× (the wall-clock "
                    "ratio is bounded by the cores the machine's other load leaves free; the two "
                    f"processes kept {par:.2f} cores busy, so they overlapped "
                    f"{'little' if par < 1.3 else 'much'} of the time and the CPU-time check is "
                    f"{'weak' if par < 1.3 else 'meaningful'})")
    add(f"| 4b | two processes on different stripes ≥ 1.8× one process | {fmt_ratio(r4b)} wall "
        f"({(two or 0) / 1e6:.1f} M/s vs {(one or 0) / 1e6:.1f} M/s){cpu_note} "
        f"| {verdict(r4b is not None and r4b >= 1.8, r4b is not None)} on wall time"
        f"{'' if not (c1 and c2) else ('; **met** on CPU time' if 2 * c1 / c2 >= 1.8 else '; **not met** on CPU time')} |")
    p65 = tbv("BM_SnapshotPause/65536", "max_pause_us")
    s65 = big.get("snapshots_65536_cap81920", {}).get("snapshots", [])
    d_p65 = [s["max_pause_ns"] / 1000 for s in s65 if s.get("max_pause_ns") is not None]
    d_p65_med = median(d_p65)
    d_p65_max = max(d_p65) if d_p65 else None
    ok5 = p65 is not None and p65 <= 2000 and (d_p65_max is None or d_p65_max <= 2000)
    add(f"| 5 | snapshot pause ≤ 2 ms at 65,536 counters | table_bench max {fmt_us(p65)}; daemon "
        f"(capacity 81,920) under load: median {fmt_us(d_p65_med)}, max "
        f"{fmt_us(max(d_p65) if d_p65 else None)} over {len(d_p65)} snapshots; snapshot time "
        f"{fmt_us(tbv('BM_SnapshotPause/65536', 'real_time') and tbv('BM_SnapshotPause/65536', 'real_time') * 1000)} "
        f"(table_bench copy) | {verdict(ok5, p65 is not None)} (needs both maxima ≤ 2 ms) |")
    p1m = tbv("BM_SnapshotPause/1000000", "max_pause_us")
    s1m_snaps = big.get("snapshots_1000000", {}).get("snapshots", [])
    add(f"| 5b | (report) pause and snapshot time at 1,000,000 counters | table_bench: pause "
        f"{fmt_us(p1m)}, copy "
        f"{fmt_us(tbv('BM_SnapshotPause/1000000', 'real_time') and tbv('BM_SnapshotPause/1000000', 'real_time') * 1000)}; "
        f"daemon under load: pause median "
        f"{fmt_us(median([x['max_pause_ns'] / 1000 for x in s1m_snaps if x.get('max_pause_ns') is not None]))}, "
        f"snapshot (copy + write + msync) median "
        f"{fmt_us(median([x['micros'] for x in s1m_snaps if x.get('micros') is not None]))} | — |")
    hm = list(results.get("memory_kib", {}).get("handlers", {}).values())
    hm += list(big.get("snapshots_1000000", {}).get("memory_kib", {}).values())

    def worst(field):
        xs = [m.get(field) for m in hm if m.get(field)]
        return max(xs) / 1024 if xs else None

    w_rss, w_anon, w_pss = worst("VmRSS"), worst("RssAnon"), worst("Pss")
    w_file, w_shm = worst("RssFile"), worst("RssShmem")
    if w_rss is not None and w_rss <= 32:
        v6a = verdict(True)
    elif w_anon is not None and w_anon <= 32:
        v6a = ("**met** for the handler's own memory (RssAnon); **not met** if the shared "
               "mappings are counted in every process (VmRSS)")
    else:
        v6a = verdict(False, w_anon is not None)
    mib = lambda x: "n/a" if x is None else f"{x:.1f} MiB"
    add(f"| 6a | resident memory per handler ≤ 32 MiB under load | RssAnon (private) max "
        f"{mib(w_anon)}; VmRSS max {mib(w_rss)}, of which shared file pages (the table) "
        f"{mib(w_file)} and shared memory (snapshot staging) {mib(w_shm)}, one copy in RAM for "
        f"all processes; Pss max {mib(w_pss)} | {v6a} |")
    bpc = ratio(big.get("map_file_bytes"), big.get("capacity"))
    add(f"| 6b | map file ≤ 256 B per counter of capacity | "
        f"{'n/a' if bpc is None else f'{bpc:.1f} B'} ({big.get('map_file_bytes', 0):,} B for "
        f"{big.get('capacity', 0):,}) | {verdict(bpc is not None and bpc <= 256, bpc is not None)} |")
    rs = [r["seconds"] for r in big.get("restart_clean", [])]
    fresh = big.get("startup_fresh_s")
    slowest = max([x for x in rs + [fresh] if x is not None], default=None)
    add(f"| 6c | startup of a 1,000,000-counter table ≤ 1 s | fresh "
        f"{fmt_us(fresh * 1e6 if fresh else None)}; restart with 1,000,000 counters median "
        f"{fmt_us(median(rs) * 1e6 if rs else None)}, max {fmt_us(max(rs) * 1e6 if rs else None)} "
        f"| {verdict(slowest is not None and slowest <= 1.0, slowest is not None)} |")
    add("")
    return lines


def report_table_bench(results):
    """tests/bench/table_bench's figures, one row per benchmark."""
    tb = results.get("table_bench", {})
    lines = []
    add = lines.append
    add("## Table microbenchmarks (tests/bench/table_bench)")
    add("")
    if tb:
        add("| benchmark | time | rate | note |")
        add("|---|---:|---:|---|")
        for name, b in tb.items():
            unit = b.get("time_unit", "ns")
            ips = b.get("items_per_second")
            note = ""
            if "max_pause_us" in b:
                note = f"longest pause of increments {fmt_us(b['max_pause_us'])}; " \
                       f"time = one whole snapshot copy"
            add(f"| {name} | {b.get('real_time', 0):.3g} {unit} | "
                f"{'' if ips is None else f'{ips / 1e6:.2f} M/s'} | {note} |")
    else:
        add(f"table_bench failed: {results.get('table_bench_error', 'not run')}")
    add("")
    return lines


def report_daemon_snapshots(results):
    """The aggregator's snapshot lines under load, one row per table size."""
    big = results.get("big", {})
    lines = []
    add = lines.append
    add("## Snapshots in the daemon (aggregator's own log lines, increments running)")
    add("")
    add("| counters | capacity | snapshots | snapshot time (copy + write + msync), median / max | "
        "longest pause of increments, median / max | increments/s during | p99 / max latency |")
    add("|---:|---:|---:|---:|---:|---:|---:|")
    for key, n, cap in (("snapshots_65536_cap81920", 65536, 81920),
                        ("snapshots_65536", 65536, 1000000),
                        ("snapshots_1000000", 1000000, 1000000)):
        s = big.get(key)
        if not s:
            continue
        snaps = s["snapshots"]
        mic = [x["micros"] for x in snaps if x.get("micros") is not None]
        pau = [x["max_pause_ns"] / 1000 for x in snaps if x.get("max_pause_ns") is not None]
        ld = s["load"]
        add(f"| {n:,} | {cap:,} | {len(snaps)} | {fmt_us(median(mic))} / {fmt_us(max(mic) if mic else None)} | "
            f"{fmt_us(median(pau))} / {fmt_us(max(pau) if pau else None)} | {fmt_ops(ld['ops'])} | "
            f"{fmt_us(ld['p99_us'])} / {fmt_us(ld['max_us'])} |")
    add("")
    return lines


MEMORY_FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Pss", "Pss_Anon")


def memory_table(rows):
    """A table of memory figures (KiB), one row per (process name, figures)."""
    lines = ["| process | " + " | ".join(MEMORY_FIELDS) + " |",
             "|---|" + "---:|" * len(MEMORY_FIELDS)]
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(f"{m.get(k, 0):,}" for k in MEMORY_FIELDS)
                     + " |")
    return lines


def report_memory(cfg, results):
    """Memory per process: under the comparison load, and with 1,000,000 counters."""
    big = results.get("big", {})
    lines = []
    add = lines.append
    add("## Resources")
    add("")
    add("Memory per process, maximum sampled every 0.25 s under the comparison load "
        f"({cfg.keys:,} keys), KiB:")
    add("")
    memk = results.get("memory_kib", {})
    rows = [(f"handler {p}", m) for p, m in memk.get("handlers", {}).items()]
    rows += [(f"aggregator {p}", m) for p, m in memk.get("aggregator", {}).items()]
    rows.append(("supervisor", memk.get("supervisor", {})))
    lines += memory_table(rows)
    s1m = big.get("snapshots_1000000", {}).get("memory_kib", {})
    if s1m:
        add("")
        add("Handlers under 64-in-flight increments spread over all 1,000,000 counters (KiB; "
            "RssFile/RssShmem is the shared table, counted once per process in VmRSS, split "
            "between them in Pss):")
        add("")
        lines += memory_table([(f"handler {p}", m) for p, m in s1m.items()])
    add("")
    return lines


def report_files_and_startup(results):
    """The closing list: file sizes, startup, stop and fill times."""
    big = results.get("big", {})
    lines = []
    add = lines.append
    if big:
        bpc = ratio(big.get("map_file_bytes"), big.get("capacity"))
        add(f"- Map file: {big.get('map_file_bytes', 0):,} bytes for a capacity of "
            f"{big.get('capacity', 0):,} = {bpc or 0:.1f} B per counter; "
            f"{big.get('map_file_allocated_bytes_full', 0):,} bytes allocated on disk when full. "
            f"Snapshot file: {big.get('snapshot_file_bytes', 0):,} bytes "
            f"({(big.get('snapshot_file_bytes', 0)) / big.get('capacity', 1):.1f} B per counter).")
        add(f"- Startup (exec to the \"ready\" line): fresh 1,000,000-capacity table "
            f"{fmt_us((big.get('startup_fresh_s') or 0) * 1e6)}; the comparison daemon "
            f"{fmt_us((results.get('countersd_startup_default_s') or 0) * 1e6)}; clean restart of "
            f"the full 1,000,000-counter table: "
            + ", ".join(fmt_us(r["seconds"] * 1e6) for r in big.get("restart_clean", []))
            + f"; restart after SIGKILL of the whole daemon: "
            f"{fmt_us((big.get('restart_after_sigkill', {}).get('seconds') or 0) * 1e6)}.")
        cs = big.get("clean_stop", {})
        add(f"- Clean stop (SIGTERM: drain, final snapshot of 1,000,000 counters): "
            f"{cs.get('seconds', 0):.2f} s, exit {cs.get('exit')}.")
        for n in (65536, 1000000):
            s = big.get(f"snapshots_{n}")
            if s:
                add(f"- Loading {n:,} counters with IncrementBatch(1000), one call at a time: "
                    f"{s['fill_seconds']:.2f} s.")
        add("- table_bench's snapshot figures are the table alone (copy into the staging area, "
            "no file write); the daemon's are the aggregator's own log (\"snapshot written\": "
            "micros = copy + write + msync, max_pause_ns = longest stop of increments it "
            "caused) while 64 increments are in flight over all the counters.")
    add("")
    return lines


def build_report(cfg, results):
    """The Markdown report of a run's results; also stores the cells' medians in
    results["medians"]."""
    med = cell_medians(results.get("cells", {}))
    results["medians"] = med
    lines = (report_header(cfg, results)
             + report_comparison(results, med)
             + report_targets(results, med)
             + report_table_bench(results)
             + report_daemon_snapshots(results)
             + report_memory(cfg, results)
             + report_files_and_startup(results))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("build", help="CMake build directory (holds server/countersd etc.)")
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 5)))
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", 3)))
    ap.add_argument("--keys", type=int, default=int(os.environ.get("BENCH_KEYS", 10000)))
    ap.add_argument("--snapshot-seconds", type=int, default=5)
    ap.add_argument("--local-seconds", type=float,
                    default=float(os.environ.get("BENCH_LOCAL_SECONDS", 2)),
                    help="measured seconds per local_bench cell and per run of the local phase")
    ap.add_argument("--report", default=None, help="default: BUILD/bench-report.md")
    ap.add_argument("--skip", default=os.environ.get("BENCH_SKIP", ""),
                    help="comma-separated phases to skip: "
                         "compare,snapshots,table,local,transport,stream,durable")
    cfg = ap.parse_args()
    b = os.path.abspath(cfg.build)
    cfg.countersd = f"{b}/server/countersd"
    cfg.counterctl = f"{b}/client/counterctl"
    cfg.table_bench = f"{b}/tests/bench/table_bench"
    cfg.memcached_driver = f"{b}/tests/bench/memcached_incr_bench"
    cfg.fill = f"{b}/tests/bench/fill_counters"
    cfg.bare_server = f"{b}/tests/bench/bare_grpc_server"
    cfg.local_bench = f"{b}/tests/bench/local_bench"
    cfg.fdatasync_bench = f"{b}/tests/bench/fdatasync_bench"
    cfg.report = cfg.report or f"{b}/bench-report.md"
    skip = set(x for x in cfg.skip.split(",") if x)

    results = dict(started=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                   load_start=loadavg(),
                   config=dict(seconds=cfg.seconds, reps=cfg.reps, keys=cfg.keys))
    procs = Processes()
    tmp = tempfile.mkdtemp(prefix="countersd-bench-")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    t_start = time.monotonic()
    try:
        if "compare" not in skip:
            run_comparison(cfg, procs, tmp, results)
        if "snapshots" not in skip:
            run_snapshots_and_startup(cfg, procs, tmp, results)
        if "table" not in skip:
            run_table_bench(cfg, tmp, results)
        if "local" not in skip:
            import local_attach_bench
            local_attach_bench.c = sys.modules[__name__]
            local_attach_bench.run_local(cfg, procs, tmp, results)
        if "transport" not in skip:
            import transport_bench
            transport_bench.c = sys.modules[__name__]
            transport_bench.run_transport(cfg, procs, tmp, results)
        if "stream" not in skip:
            import stream_bench
            stream_bench.c = sys.modules[__name__]
            stream_bench.run_stream(cfg, procs, tmp, results)
        if "durable" not in skip:
            import durable_bench
            durable_bench.c = sys.modules[__name__]
            durable_bench.run_durable(cfg, procs, tmp, results)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}); stopping everything")
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        return 130
    except BenchError as e:
        procs.stop_all()
        # Keep the logs for a post-mortem, not the big table and snapshot files.
        for root, _, files in os.walk(tmp):
            for name in files:
                path = os.path.join(root, name)
                if os.path.getsize(path) > 16 << 20:
                    os.remove(path)
        log(f"FAILED: {e} (logs kept in {tmp})")
        return 1
    finally:
        procs.stop_all()
    results["load_end"] = loadavg()
    results["wall_seconds"] = time.monotonic() - t_start
    report = build_report(cfg, results)
    if "local" in results:
        import local_attach_bench
        local_attach_bench.c = sys.modules[__name__]
        report += local_attach_bench.report_local(results)
    if "transport" in results:
        import transport_bench
        transport_bench.c = sys.modules[__name__]
        report += transport_bench.report_transport(results)
    if "stream" in results:
        import stream_bench
        stream_bench.c = sys.modules[__name__]
        report += stream_bench.report_stream(results)
    if "durable" in results:
        import durable_bench
        durable_bench.c = sys.modules[__name__]
        report += durable_bench.report_durable(results)
    report += f"Whole run: {results['wall_seconds']:.0f} s.\n"
    with open(cfg.report, "w") as f:
        f.write(report)
    with open(os.path.splitext(cfg.report)[0] + ".json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(report)
    log(f"report written to {cfg.report} (raw results: {os.path.splitext(cfg.report)[0]}.json)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
