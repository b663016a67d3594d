"""The throughput phase of `make bench` (issue 15), run by compare.py.

What it measures, against one countersd (defaults, fresh data directory) and
one redis-server of its own (no persistence), the rounds interleaved
(--reps, median reported):
  - IncrementStream: `counterctl bench --rpc=stream`, STREAMS streams over as
    many connections, messages of BATCH increments (the server's default
    --max-batch), keys uniform over --keys; increments acknowledged per
    second;
  - the Accumulator: `counterctl bench --rpc=accumulate`, ACC_THREADS
    application threads calling Add over 1,000 keys, flushed every 100 ms;
    application Adds per second, and the increments the daemon acknowledged
    per second (the flushed sums); the run fails unless the daemon's values
    equal the sums exactly;
  - Redis INCRBY pipelined, `redis-benchmark -c 16 -P 16` and `-P 100`
    (keys uniform over --keys); Redis INCRBY unary at 64 in flight (`-c 64
    -P 1`);
  - the unary Increment at 64 in flight (8 connections), countersd and the
    bare gRPC reference server (async API, one thread per process, one
    process per CPU: countersd's shape): the comparison's unary64 cells when
    that phase ran, else measured here.
CPU per increment, for the server (the daemon's processes, or Redis) and
for the driver (counterctl, redis-benchmark): the CPU time each used during
the measured run (no warm-up inside it: every cell runs once unmeasured
first) divided by the increments it did (the Accumulator's: by its
application Adds, which is what it is for).
Targets (issue 15): stream >= 10x Redis -P 16 (and >= 3x -P 100); Accumulator
Adds >= 100x Redis unary at 64 in flight; unary at 64 in flight >= 0.95x the
bare gRPC server.
"""

import os
import subprocess

# compare.py's helpers (Countersd, run_json, log, ...): set by compare.py,
# which runs as __main__ (see transport_bench.py).
c = None

STREAMS = 8
BATCH = 1000
ACC_THREADS = 2
ACC_KEYS = 1000
REDIS_CONNS = 16
UNARY64 = dict(conc=64, conns=8, batch=1)


def counterctl(cfg, address, rpc_args, seconds):
    argv = [cfg.counterctl, f"--addr={address}", "--output=json", "--timeout=10s", "bench",
            *rpc_args, f"--duration={seconds}s", "--warmup=0"]
    return c.run_json(argv, timeout=seconds + 120)


def stream_cell(cfg, address, seconds):
    j = counterctl(cfg, address, ["--rpc=stream", f"--streams={STREAMS}", f"--batch={BATCH}",
                                  f"--keys={cfg.keys}", f"--key-prefix={c.KEY_PREFIX}"], seconds)
    if j.get("failed") or j.get("unknown"):
        raise c.BenchError(f"stream bench: {j.get('failed')} failed, {j.get('unknown')} unknown "
                           f"messages ({j.get('first_error', '')})")
    return dict(ops=j["increments_per_second"], msgs=j["messages_per_second"],
                p50_us=j["latency_us"]["p50"], p99_us=j["latency_us"]["p99"], detail=j)


def accumulate_cell(cfg, address, seconds):
    j = counterctl(cfg, address, ["--rpc=accumulate", f"--threads={ACC_THREADS}",
                                  f"--keys={ACC_KEYS}", "--flush-interval=100ms",
                                  "--key-prefix=acc:"], seconds)
    if not j.get("verified"):
        raise c.BenchError(f"accumulate bench: the daemon's values are not the sums "
                           f"({j.get('mismatched_keys')} keys, {j.get('first_mismatch', '')})")
    return dict(ops=j["adds_per_second"], acked=j["acked_increments_per_second"], detail=j)


def run_stream(cfg, procs, tmp, results):
    d = f"{tmp}/stream"
    os.makedirs(d)
    out = results.setdefault("stream", {})
    cd = c.Countersd(procs, cfg.countersd, f"{d}/data", f"{d}/countersd.log")
    redis, redis_port = c.start_redis(procs, "redis-stream", d)
    server = {"countersd": lambda: [cd.proc.pid] + cd.children(), "redis": lambda: [redis.pid]}
    seconds = cfg.seconds
    calibrated = {}
    cells = {
        "stream": ("countersd", lambda: stream_cell(cfg, cd.address, seconds)),
        "accumulate": ("countersd", lambda: accumulate_cell(cfg, cd.address, seconds)),
        "redis_p16": ("redis", lambda m: c.bench_redis(
            cfg, redis_port, dict(conc=REDIS_CONNS, conns=REDIS_CONNS, batch=16), seconds,
            calibrated, m)),
        "redis_p100": ("redis", lambda m: c.bench_redis(
            cfg, redis_port, dict(conc=REDIS_CONNS, conns=REDIS_CONNS, batch=100), seconds,
            calibrated, m)),
        "redis_unary64": ("redis", lambda m: c.bench_redis(
            cfg, redis_port, UNARY64, seconds, calibrated, m)),
    }
    med = c.cell_medians(results.get("cells", {}))
    need_unary = not (med.get("unary64/countersd") and med.get("unary64/grpc-bare-async"))
    if need_unary:
        bare_port = c.free_port()
        bare = procs.start("grpc-bare-async-stream",
                           [cfg.bare_server, f"--listen=127.0.0.1:{bare_port}", "--api=async",
                            "--threads=1", f"--processes={os.cpu_count() or 1}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c.wait_port(bare_port)
        # No CPU figures for these two: counterctl's 1 s warm-up is inside the run.
        cells["unary64_countersd"] = (None, lambda: c.bench_countersd(
            cfg, cd.address, UNARY64, seconds))
        cells["unary64_bare"] = (None, lambda: c.bench_countersd(
            cfg, f"127.0.0.1:{bare_port}", UNARY64, seconds))
    # One unmeasured run of each countersd cell first (Redis's calibration
    # run is its warm-up): connections made, pools and caches warm.
    c.log(f"stream: warming up (load {c.loadavg()})")
    stream_cell(cfg, cd.address, 1)
    accumulate_cell(cfg, cd.address, 1)
    runs = {}
    for rep in range(cfg.reps):
        c.log(f"stream: round {rep + 1}/{cfg.reps} (load {c.loadavg()})")
        for name, (system, run) in cells.items():
            if system is None:
                r = run()
                runs.setdefault(name, []).append(r)
                c.log(f"  {name:18s} {r['ops']:>14,.0f}/s")
                continue
            meter = c.CpuMeter(server[system]())
            if system == "redis":
                r = run(meter)
            else:
                with meter:
                    r = run()
            r["server_cpu_s"], r["driver_cpu_s"], r["wall_s"] = meter.server, meter.client, meter.wall
            # The increments of the run (the Accumulator's: its application
            # Adds): what the driver reports per second times the measured
            # window (~ the run's wall time, no warm-up).
            done = r["ops"] * meter.wall
            r["server_cpu_ns_per_inc"] = meter.server / done * 1e9 if done else None
            r["driver_cpu_ns_per_inc"] = meter.client / done * 1e9 if done else None
            runs.setdefault(name, []).append(r)
            c.log(f"  {name:18s} {r['ops']:>14,.0f}/s  server CPU {r['server_cpu_ns_per_inc'] or 0:,.0f}"
                  f" ns/inc, driver {r['driver_cpu_ns_per_inc'] or 0:,.0f} ns/inc")
    out["runs"] = runs
    out["load"] = c.loadavg()
    if not need_unary:
        out["unary_source"] = "comparison unary64 cells"
        for name, cell in (("unary64_countersd", "unary64/countersd"),
                           ("unary64_bare", "unary64/grpc-bare-async")):
            runs[name] = [dict(ops=med[cell]["ops"])]
    else:
        out["unary_source"] = "measured here"
    cd.stop()


def report_stream(results):
    st = results.get("stream")
    if not st:
        return ""
    runs = st["runs"]
    m = lambda name, field="ops": c.median_of(runs.get(name, []), field)
    f = lambda x: "n/a" if x is None else f"{x:,.0f}"
    ns = lambda x: "" if x is None else f"{x:,.0f} ns"
    ratio = lambda a, b: (a / b) if a and b else None
    rf = lambda x: "n/a" if x is None else f"{x:,.2f}×"
    out = ["## Throughput: IncrementStream and the Accumulator (issue 15)", "",
           f"Medians of {len(runs.get('stream', []))} interleaved runs; one countersd "
           f"(defaults), one redis-server (no persistence). Stream: {STREAMS} streams, messages "
           f"of {BATCH} increments. Accumulator: {ACC_THREADS} threads calling Add over "
           f"{ACC_KEYS:,} keys, flushed every 100 ms, the totals read back and exact. Redis: "
           f"{REDIS_CONNS} connections for -P 16 and -P 100, 64 for unary. CPU per increment: "
           "each process's CPU time during the measured run ÷ the increments it did. "
           f"Load average after the phase: {st['load']}.", "",
           "| workload | increments/s | server CPU per increment | driver CPU per increment | note |",
           "|---|---:|---:|---:|---|"]
    rows = (("countersd IncrementStream", "stream",
             lambda: f"{f(m('stream', 'msgs'))} messages/s, p99 {f(m('stream', 'p99_us'))} µs per message"),
            ("countersd Accumulator, application Adds", "accumulate",
             lambda: f"per Add; acknowledged {f(m('accumulate', 'acked'))} increments/s (the "
                     f"sums of {ACC_KEYS:,} keys, 10 flushes a second)"),
            ("Redis INCRBY -P 16", "redis_p16", lambda: ""),
            ("Redis INCRBY -P 100", "redis_p100", lambda: ""),
            ("Redis INCRBY unary, 64 in flight", "redis_unary64", lambda: ""),
            ("countersd unary Increment, 64 in flight", "unary64_countersd",
             lambda: st["unary_source"]),
            ("bare gRPC server, 64 in flight", "unary64_bare", lambda: st["unary_source"]))
    for title, name, note in rows:
        out.append(f"| {title} | {f(m(name))} | {ns(m(name, 'server_cpu_ns_per_inc'))} | "
                   f"{ns(m(name, 'driver_cpu_ns_per_inc'))} | {note()} |")
    s16, s100 = ratio(m("stream"), m("redis_p16")), ratio(m("stream"), m("redis_p100"))
    acc = ratio(m("accumulate"), m("redis_unary64"))
    un = ratio(m("unary64_countersd"), m("unary64_bare"))
    unr = ratio(m("unary64_countersd"), m("redis_unary64"))
    out += ["", "| target | measured | verdict |", "|---|---|---|",
            f"| IncrementStream ≥ 10× Redis -P 16 | {rf(s16)} | {c.verdict(s16 and s16 >= 10, s16 is not None)} |",
            f"| IncrementStream ≥ 3× Redis -P 100 | {rf(s100)} | {c.verdict(s100 and s100 >= 3, s100 is not None)} |",
            f"| Accumulator Adds ≥ 100× Redis unary at 64 in flight | {rf(acc)} | "
            f"{c.verdict(acc and acc >= 100, acc is not None)} |",
            f"| unary Increment at 64 in flight ≥ 0.95× the bare gRPC server | {rf(un)} "
            f"(against Redis unary at 64 in flight: {rf(unr)}) | {c.verdict(un and un >= 0.95, un is not None)} |",
            ""]
    return "\n".join(out) + "\n"
