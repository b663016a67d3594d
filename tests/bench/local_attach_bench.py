"""The local attach phase of `make bench` (issue 14), run by compare.py.

What it measures, ns per increment, and the issue's three targets:
  - the local path (tests/bench/local_bench): processes attached to a running
    countersd (defaults, fresh data directory) increment its live table with
    no RPC; hot key and 1,000 keys, 1 and 2 processes, --local-seconds each
    (default 2), the totals checked exactly; wall time and CPU time per
    increment;
  - table_bench's in-process figures for the same keys (BM_IncrementHotKey,
    BM_IncrementSpreadKeys/1000: a table the benchmark created itself, no
    daemon), run in this phase just before local_bench so that both see the
    same machine load (their ratio is the target; the table phase's own
    figures can be minutes away, under another load);
  - countersd unary RPC and Redis INCRBY unary, both at one call in flight on
    one connection: the comparison's unary1 cells (median of its runs) when
    that phase ran, else one run each here;
  - Redis INCRBY pipelined, -P 16 on one connection (`redis-benchmark -c 1
    -P 16`, keys uniform over --keys as in the comparison), one run here
    against a redis-server of its own (no persistence); per increment =
    1 / increments per second.
Targets (issue 14): local <= 3x table_bench; local >= 1,000x faster than Redis
unary; local >= 50x faster than Redis at -P 16, per increment. One process
against one Redis connection is the like-for-like figure, so the verdicts use
the one-process cells (hot key and 1,000 keys); the two-process ones are
reported beside them.
"""

import json
import os
import subprocess

# compare.py's helpers (Countersd, run_json, log, ...): set by compare.py,
# which runs as __main__ (see transport_bench.py).
c = None

TABLE_BENCH_FOR = {1: "BM_IncrementHotKey", 1000: "BM_IncrementSpreadKeys/1000"}
UNARY = dict(conc=1, conns=1, batch=1)
PIPELINED = dict(conc=1, conns=1, batch=16)


def ns_per(ops):
    return 1e9 / ops if ops else None


def table_bench_now(cfg, tmp):
    """table_bench's two increment figures, wall and CPU ns per increment."""
    names = "|".join(f"^{n}$" for n in TABLE_BENCH_FOR.values())
    r = subprocess.run([cfg.table_bench, "--benchmark_format=json",
                        f"--benchmark_filter={names}"], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, TMPDIR=tmp))
    if r.returncode != 0:
        raise c.BenchError(f"table_bench exited {r.returncode}: {r.stderr[-300:]}")
    scale = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
    out = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        f = scale[b.get("time_unit", "ns")]
        out[b["name"]] = dict(ns=b["real_time"] * f, cpu_ns=b["cpu_time"] * f)
    return out


def run_local(cfg, procs, tmp, results):
    d = f"{tmp}/local"
    os.makedirs(d)
    out = results.setdefault("local", {})
    cd = c.Countersd(procs, cfg.countersd, f"{d}/data", f"{d}/countersd.log")
    _, redis_port = c.start_redis(procs, "redis-local", d)
    seconds = cfg.local_seconds

    c.log(f"local: table_bench {', '.join(TABLE_BENCH_FOR.values())} (load {c.loadavg()})")
    out["table_bench"] = table_bench_now(cfg, tmp)
    c.log(f"local: local_bench, {seconds} s per cell (load {c.loadavg()})")
    # Every cell is ~seconds + warm-up; a failed total check exits 1 (BenchError).
    out["local_bench"] = c.run_json([cfg.local_bench, f"--data-dir={d}/data",
                                     f"--seconds={seconds}"], timeout=4 * seconds + 120)
    out["load"] = c.loadavg()

    # Redis at -P 16, and the unary figures the comparison did not measure.
    calibrated = {}
    meter = c.CpuMeter([])
    c.log(f"local: Redis INCRBY -c 1 -P 16 (load {c.loadavg()})")
    r = c.bench_redis(cfg, redis_port, PIPELINED, seconds, calibrated, meter)
    out["redis_pipelined16"] = dict(ops=r["ops"], source="measured here")
    med = c.cell_medians(results.get("cells", {}))
    for name, cell, measure in (
            ("redis_unary", "unary1/redis",
             lambda: c.bench_redis(cfg, redis_port, UNARY, seconds, calibrated, meter)),
            ("countersd_unary", "unary1/countersd",
             lambda: c.bench_countersd(cfg, cd.address, UNARY, seconds))):
        m = med.get(cell)
        if m and m["ops"]:
            out[name] = dict(ops=m["ops"], source=f"comparison {cell}, median of {m['n']}")
        else:
            c.log(f"local: {name} (the comparison did not run; one run here)")
            out[name] = dict(ops=measure()["ops"], source="measured here, one run")
    cd.stop()


def report_local(results):
    loc = results.get("local")
    if not loc:
        return ""
    cells = {(x["keys"], x["processes"]): x for x in loc["local_bench"]["cells"]}
    tb = loc["table_bench"]
    redis1 = ns_per(loc["redis_unary"]["ops"])
    redis16 = ns_per(loc["redis_pipelined16"]["ops"])
    rpc = ns_per(loc["countersd_unary"]["ops"])
    f = lambda x: "n/a" if x is None else (f"{x:,.1f} ns" if x < 1e4 else f"{x / 1e3:,.1f} µs")
    out = ["## Local attach (issue 14)", "",
           "ns per increment. Local: tests/bench/local_bench against a running countersd, each "
           "process attached itself, round-robin over the keys, totals read back and exact; "
           "aggregate = wall time ÷ all processes' increments. CPU = the processes' CPU time ÷ "
           f"increments. Load average after local_bench: {loc['load']}.", "",
           "| path | ns per increment (wall) | CPU ns per increment | note |",
           "|---|---:|---:|---|"]
    for (k, p), x in sorted(cells.items()):
        per = ", ".join(f"{q['ns_per_increment']:.1f}" for q in x["per_process"])
        out.append(f"| local, {'hot key' if k == 1 else f'{k:,} keys'}, {p} process"
                   f"{'es' if p > 1 else ''} | {f(x['ns_per_increment'])} | "
                   f"{f(x['cpu_ns_per_increment'])} | {x['increments']:,} increments in "
                   f"{x['wall_ns'] / 1e9:.2f} s; per process {per} ns |")
    for name, b in tb.items():
        out.append(f"| table_bench {name} (in-process) | {f(b['ns'])} | {f(b['cpu_ns'])} | "
                   "run just before local_bench |")
    out.append(f"| countersd unary RPC, 1 in flight | {f(rpc)} | | "
               f"{loc['countersd_unary']['source']} |")
    out.append(f"| Redis INCRBY unary, 1 connection | {f(redis1)} | | "
               f"{loc['redis_unary']['source']} |")
    out.append(f"| Redis INCRBY -P 16, 1 connection, per increment | {f(redis16)} | | "
               f"{loc['redis_pipelined16']['source']} |")
    out += ["", "| target | measured | verdict |", "|---|---|---|"]

    one = [(k, cells[(k, 1)]) for k in sorted(TABLE_BENCH_FOR) if (k, 1) in cells]
    label = lambda k: "hot key" if k == 1 else f"{k:,} keys"
    # local <= 3x table_bench, wall and CPU, like for like (same keys, one process).
    parts, ok_wall, ok_cpu = [], True, True
    for k, x in one:
        b = tb.get(TABLE_BENCH_FOR[k])
        if not b:
            ok_wall = ok_cpu = False
            continue
        rw, rc = x["ns_per_increment"] / b["ns"], x["cpu_ns_per_increment"] / b["cpu_ns"]
        ok_wall &= rw <= 3
        ok_cpu &= rc <= 3
        parts.append(f"{label(k)}: {rw:.2f}× wall ({x['ns_per_increment']:.1f} vs "
                     f"{b['ns']:.1f} ns), {rc:.2f}× CPU ({x['cpu_ns_per_increment']:.1f} vs "
                     f"{b['cpu_ns']:.1f} ns)")
    out.append(f"| local ≤ 3× table_bench (one process) | {'; '.join(parts)} | "
               f"{c.verdict(ok_wall, bool(parts))} on wall time; "
               f"{c.verdict(ok_cpu, bool(parts))} on CPU time |")
    for title, ref, need in (("Redis unary INCRBY", redis1, 1000),
                             ("Redis -P 16, per increment", redis16, 50)):
        parts = [f"{label(k)}, {p} proc.: {ref / x['ns_per_increment']:,.0f}×"
                 for (k, p), x in sorted(cells.items()) if ref]
        cpu = [f"{label(k)}: {ref / x['cpu_ns_per_increment']:,.0f}×" for k, x in one if ref]
        ok = bool(ref) and all(ref / x["ns_per_increment"] >= need for _, x in one)
        out.append(f"| local ≥ {need:,}× faster than {title} ({f(ref)}) | wall: {'; '.join(parts)}"
                   f" (against local's CPU time per increment, one process: {'; '.join(cpu)}) | "
                   f"{c.verdict(ok, bool(ref) and bool(one))} (one process, wall) |")
    out.append("")
    return "\n".join(out) + "\n"
