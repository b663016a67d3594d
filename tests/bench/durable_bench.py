"""The write-guarantees phase of `make bench` (issue 16), run by compare.py.

What it measures, in one run, the rounds interleaved (--reps, median
reported):
  - the disk's own fdatasync latency on the file system of the data
    directory (tests/bench/fdatasync_bench: an append, then fdatasync, as
    the log of durable writes does);
  - durable Increment (WriteOptions.durable) against one countersd
    (defaults, fresh data directory): p50 and p99 at 1 in flight (1
    connection) and at 64 in flight (8 connections), and writes per second
    at 64 in flight (`counterctl bench --durable=on`);
  - durable IncrementStream messages (every message durable): STREAMS
    streams of messages of STREAM_BATCH increments (`counterctl bench
    --rpc=stream --durable=on`), increments acknowledged per second: the
    route for many durable increments (a message's increments share its
    record, the messages in flight share a sync);
  - Redis INCRBY with `--appendonly yes --appendfsync always` on the same
    file system, at 1 and at 64 in flight (`redis-benchmark -c 1`, `-c 64`),
    and pipelined (`-c 16 -P 16`), beside the stream;
  - the cost of session tracking on ordinary (not durable) writes: the
    unary Increment at 64 in flight without and with `--session=on` (every
    call slot writing under its own exactly-once session).
Targets (issue 16): durable p50 at 1 in flight <= 2x one fdatasync;
durable writes per second at 64 in flight >= 20 / fdatasync latency (group
commit working); >= 1.0x Redis appendfsync always; session tracking costs
<= 10% on unary writes.
"""

import os

# compare.py's helpers: set by compare.py, which runs as __main__.
c = None

ONE = dict(conc=1, conns=1, batch=1)
SIXTY_FOUR = dict(conc=64, conns=8, batch=1)
STREAMS = 8
STREAM_BATCH = 100
REDIS_PIPELINED = dict(conc=16, conns=16, batch=16)


def durable_stream_cell(cfg, address, seconds):
    argv = [cfg.counterctl, f"--addr={address}", "--output=json", "--timeout=10s", "bench",
            "--rpc=stream", f"--streams={STREAMS}", f"--batch={STREAM_BATCH}",
            f"--keys={cfg.keys}", f"--key-prefix={c.KEY_PREFIX}", "--durable=on",
            f"--duration={seconds}s", "--warmup=1s"]
    j = c.run_json(argv, timeout=seconds + 120)
    if j.get("failed") or j.get("unknown"):
        raise c.BenchError(f"durable stream bench: {j.get('failed')} failed, "
                           f"{j.get('unknown')} unknown messages ({j.get('first_error', '')})")
    return dict(ops=j["increments_per_second"], p50_us=j["latency_us"]["p50"],
                p99_us=j["latency_us"]["p99"], detail=j)


def countersd_cell(cfg, address, w, seconds, session, durable):
    argv = [cfg.counterctl, f"--addr={address}", "--output=json", "--timeout=10s", "bench",
            "--rpc=increment", f"--keys={cfg.keys}", f"--key-prefix={c.KEY_PREFIX}",
            f"--connections={w['conns']}", f"--concurrency={w['conc']}",
            f"--duration={seconds}s", "--warmup=1s",
            f"--session={'on' if session else 'off'}", f"--durable={'on' if durable else 'off'}"]
    j = c.run_json(argv, timeout=seconds + 90)
    if j.get("errors"):
        raise c.BenchError(f"durable bench: {j['errors']} calls failed ({j.get('first_error', '')})")
    return dict(ops=j["ops_per_second"], p50_us=j["latency_us"]["p50"],
                p99_us=j["latency_us"]["p99"], detail=j)


def fdatasync_cell(cfg, d):
    j = c.run_json([cfg.fdatasync_bench, f"--dir={d}", "--count=300"], timeout=120)
    return dict(p50_us=j["p50_us"], p99_us=j["p99_us"], mean_us=j["mean_us"])


def run_durable(cfg, procs, tmp, results):
    d = f"{tmp}/durable"
    os.makedirs(d)
    out = results.setdefault("durable", {})
    cd = c.Countersd(procs, cfg.countersd, f"{d}/data", f"{d}/countersd.log")
    redis_dir = f"{d}/redis"
    os.makedirs(redis_dir)
    redis, redis_port = c.start_redis(procs, "redis-always", redis_dir,
                                      persistence=("--appendonly", "yes", "--appendfsync",
                                                   "always"))
    seconds = cfg.seconds
    calibrated = {}
    # The two cells of the session's cost run back to back, first (a
    # durable run's syncs and snapshots do not linger into them), in
    # alternating order.
    cells = {
        "plain64": lambda: countersd_cell(cfg, cd.address, SIXTY_FOUR, seconds, False, False),
        "session64": lambda: countersd_cell(cfg, cd.address, SIXTY_FOUR, seconds, True, False),
        "fdatasync": lambda: fdatasync_cell(cfg, f"{d}/data"),
        "durable1": lambda: countersd_cell(cfg, cd.address, ONE, seconds, False, True),
        "durable64": lambda: countersd_cell(cfg, cd.address, SIXTY_FOUR, seconds, False, True),
        "durable_stream": lambda: durable_stream_cell(cfg, cd.address, seconds),
        "redis_always1": lambda: c.bench_redis(cfg, redis_port, ONE, seconds, calibrated,
                                               c.CpuMeter([redis.pid])),
        "redis_always64": lambda: c.bench_redis(cfg, redis_port, SIXTY_FOUR, seconds,
                                                calibrated, c.CpuMeter([redis.pid])),
        "redis_always_p16": lambda: c.bench_redis(cfg, redis_port, REDIS_PIPELINED, seconds,
                                                  calibrated, c.CpuMeter([redis.pid])),
    }
    runs = {}
    for rep in range(cfg.reps):
        c.log(f"durable: round {rep + 1}/{cfg.reps} (load {c.loadavg()})")
        order = list(cells)
        if rep % 2:
            order[0], order[1] = order[1], order[0]
        for name in order:
            r = cells[name]()
            runs.setdefault(name, []).append(r)
            if "ops" in r:
                c.log(f"  {name:16s} {r['ops']:>12,.0f}/s  p50 {r['p50_us']:,.0f} us  "
                      f"p99 {r['p99_us']:,.0f} us")
            else:
                c.log(f"  {name:16s} p50 {r['p50_us']:,.0f} us  p99 {r['p99_us']:,.0f} us")
    out["runs"] = runs
    out["load"] = c.loadavg()
    cd.stop()


def report_durable(results):
    du = results.get("durable")
    if not du:
        return ""
    runs = du["runs"]
    m = lambda name, field="ops": c.median_of(runs.get(name, []), field)
    f = lambda x: "n/a" if x is None else f"{x:,.0f}"
    rf = lambda x: "n/a" if x is None else f"{x:,.2f}×"
    ratio = lambda a, b: (a / b) if a and b else None
    sync = m("fdatasync", "p50_us")
    out = ["## Write guarantees: durable writes and exactly-once sessions (issue 16)", "",
           f"Medians of {len(runs.get('durable1', []))} interleaved runs; one countersd "
           "(defaults), one redis-server with `appendonly yes`, `appendfsync always`, both on "
           f"the file system of the bench's data directory. Load average after the phase: "
           f"{du['load']}.", "",
           f"The disk's own fdatasync (an append, then fdatasync): p50 {f(sync)} µs, p99 "
           f"{f(m('fdatasync', 'p99_us'))} µs.", "",
           "| workload | writes/s | p50 | p99 |", "|---|---:|---:|---:|"]
    for title, name in (("countersd durable Increment, 1 in flight", "durable1"),
                        ("countersd durable Increment, 64 in flight", "durable64"),
                        ("Redis INCRBY, appendfsync always, 1 in flight", "redis_always1"),
                        ("Redis INCRBY, appendfsync always, 64 in flight", "redis_always64"),
                        (f"countersd durable IncrementStream, {STREAMS} streams x "
                         f"{STREAM_BATCH} increments a message (increments/s)", "durable_stream"),
                        ("Redis INCRBY, appendfsync always, -c 16 -P 16", "redis_always_p16"),
                        ("countersd Increment, 64 in flight", "plain64"),
                        ("countersd Increment with a session, 64 in flight", "session64")):
        out.append(f"| {title} | {f(m(name))} | {f(m(name, 'p50_us'))} µs | "
                   f"{f(m(name, 'p99_us'))} µs |")
    p50_ratio = ratio(m("durable1", "p50_us"), sync)
    floor = (20 / (sync * 1e-6)) if sync else None
    group = ratio(m("durable64"), floor)
    vs_redis = ratio(m("durable64"), m("redis_always64"))
    vs_redis1 = ratio(m("durable1"), m("redis_always1"))
    stream_floor = ratio(m("durable_stream"), floor)
    stream_vs_redis = ratio(m("durable_stream"), m("redis_always_p16"))
    cost = (1 - m("session64") / m("plain64")) if m("session64") and m("plain64") else None
    out += ["", "| target | measured | verdict |", "|---|---|---|",
            f"| durable p50 at 1 in flight ≤ 2× one fdatasync | {rf(p50_ratio)} | "
            f"{c.verdict(p50_ratio is not None and p50_ratio <= 2, p50_ratio is not None)} |",
            f"| durable writes/s at 64 in flight ≥ 20 ÷ fdatasync ({f(floor)}/s) | "
            f"{rf(group)} | {c.verdict(group is not None and group >= 1, group is not None)} |",
            f"| ≥ 1.0× Redis appendfsync always (64 in flight) | {rf(vs_redis)} (1 in flight: "
            f"{rf(vs_redis1)}) | {c.verdict(vs_redis is not None and vs_redis >= 1, vs_redis is not None)} |",
            f"| durable increments/s over IncrementStream ≥ 20 ÷ fdatasync | "
            f"{rf(stream_floor)} | "
            f"{c.verdict(stream_floor is not None and stream_floor >= 1, stream_floor is not None)} |",
            f"| durable IncrementStream ≥ 1.0× Redis appendfsync always, pipelined (-P 16) | "
            f"{rf(stream_vs_redis)} | "
            f"{c.verdict(stream_vs_redis is not None and stream_vs_redis >= 1, stream_vs_redis is not None)} |",
            f"| session tracking ≤ 10% on unary writes (64 in flight) | "
            f"{'n/a' if cost is None else f'{cost * 100:.1f}%'} | "
            f"{c.verdict(cost is not None and cost <= 0.10, cost is not None)} |",
            ""]
    return "\n".join(out) + "\n"
