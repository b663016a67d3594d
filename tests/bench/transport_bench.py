"""The transport phase of `make bench` (issue 12), run by compare.py.

What it measures: unary Increment at 64 in flight (8 HTTP/2 connections,
`counterctl bench`, the same workload as compare.py's unary64) against
  - countersd over plaintext TCP (127.0.0.1),
  - countersd over TLS (TCP, server certificate only, ECDSA P-256),
  - countersd over plaintext TCP with --auth-file, every call's bearer token
    checked (what authentication costs per call; the goal is under 10%),
  - countersd over its unix socket (the same daemon as plaintext TCP),
and Redis INCRBY at 64 in flight (64 connections, redis-benchmark) over
TCP and over its own unix socket (redis-server --unixsocket), side by side.
Each cell runs --reps times, the rounds interleaved so that a change of
machine load hits every cell alike; the median is reported. Certificates are
made in the run's temporary directory with openssl.
"""

import hashlib
import os
import secrets
import subprocess
import time

# compare.py's helpers (Countersd, run_json, log, ...): set by compare.py,
# which runs as __main__ (importing it again would make a second copy, whose
# BenchError its main would not catch).
c = None

CONC = dict(conc=64, conns=8, batch=1)


def make_certs(d):
    """A CA and a server certificate for 127.0.0.1; returns (ca, crt, key)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda argv: subprocess.run(["openssl", *argv], check=True, capture_output=True,
                                      timeout=60)
    run(["req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-days", "1",
         "-subj", "/CN=bench-ca"])
    run(["req", *ec, "-keyout", f"{d}/tls.key", "-out", f"{d}/tls.csr", "-subj", "/CN=127.0.0.1"])
    with open(f"{d}/san.ext", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run(["x509", "-req", "-in", f"{d}/tls.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
         "-CAcreateserial", "-days", "1", "-extfile", f"{d}/san.ext", "-out", f"{d}/tls.crt"])
    return f"{d}/ca.crt", f"{d}/tls.crt", f"{d}/tls.key"


def bench_counterctl(cfg, address, seconds, extra=()):
    argv = [cfg.counterctl, f"--addr={address}", *extra, "--output=json", "--timeout=10s",
            "bench", "--rpc=increment", f"--keys={cfg.keys}", f"--key-prefix={c.KEY_PREFIX}",
            f"--connections={CONC['conns']}", f"--concurrency={CONC['conc']}",
            f"--duration={seconds}s", "--warmup=1s"]
    j = c.run_json(argv, timeout=seconds + 90)
    return dict(ops=j["ops_per_second"], p50_us=j["latency_us"]["p50"],
                p99_us=j["latency_us"]["p99"])


def bench_redis(cfg, target, seconds, calibrated):
    """redis-benchmark INCRBY at 64 connections; `target` is -h/-p or -s arguments."""
    base = ["redis-benchmark", *target, "-c", str(CONC["conc"]), "-P", "1", "-r", str(cfg.keys),
            "--csv"]
    cmd = ["INCRBY", f"{c.KEY_PREFIX}__rand_int__", "1"]

    def once(n):
        r = subprocess.run(base + ["-n", str(n)] + cmd, capture_output=True, text=True,
                           timeout=seconds * 6 + 60)
        if r.returncode != 0:
            raise c.BenchError(f"redis-benchmark exited {r.returncode}: {r.stderr[-300:]}")
        return c.parse_redis_csv(r.stdout)

    key = tuple(target)
    if key not in calibrated:  # unmeasured: warms up and sizes -n to about `seconds`
        calibrated[key] = max(int(float(once(40000)["rps"]) * seconds), CONC["conc"] * 10)
    row = once(calibrated[key])
    calibrated[key] = max(int(float(row["rps"]) * seconds), CONC["conc"] * 10)
    return dict(ops=float(row["rps"]), p50_us=float(row["p50_latency_ms"]) * 1000,
                p99_us=float(row["p99_latency_ms"]) * 1000)


def run_transport(cfg, procs, tmp, results):
    d = f"{tmp}/transport"
    os.makedirs(d)
    ca, crt, key = make_certs(d)
    sock = f"{d}/countersd.sock"
    plain = c.Countersd(procs, cfg.countersd, f"{d}/plain-data", f"{d}/plain.log",
                        extra=[f"--listen=127.0.0.1:0,unix:{sock}"])
    tls = c.Countersd(procs, cfg.countersd, f"{d}/tls-data", f"{d}/tls.log",
                      extra=[f"--tls-cert-file={crt}", f"--tls-key-file={key}"])
    # A bearer token checked on every call (--auth-file, a write principal):
    # what authentication costs per call.
    token = secrets.token_urlsafe(32)
    with open(f"{d}/auth", "w") as f:
        f.write(f"token:sha256:{hashlib.sha256(token.encode()).hexdigest()} write\n")
    with open(f"{d}/token", "w") as f:
        f.write(token + "\n")
    authed = c.Countersd(procs, cfg.countersd, f"{d}/auth-data", f"{d}/auth.log",
                         extra=[f"--auth-file={d}/auth"])
    redis_sock = f"{d}/redis.sock"
    _, redis_port = c.start_redis(procs, "redis-transport", d,
                                  ["--unixsocket", redis_sock, "--unixsocketperm", "600"])
    end = time.monotonic() + 20
    while not os.path.exists(redis_sock) and time.monotonic() < end:
        time.sleep(0.05)

    calibrated = {}
    cells = [
        ("countersd, TCP plaintext", lambda: bench_counterctl(cfg, plain.address, cfg.seconds)),
        ("countersd, TCP TLS", lambda: bench_counterctl(cfg, tls.address, cfg.seconds,
                                                        [f"--cacert={ca}"])),
        ("countersd, TCP plaintext, token checked",
         lambda: bench_counterctl(cfg, authed.address, cfg.seconds, [f"--token-file={d}/token"])),
        ("countersd, unix socket", lambda: bench_counterctl(cfg, f"unix:{sock}", cfg.seconds)),
        ("Redis, TCP", lambda: bench_redis(cfg, ["-h", "127.0.0.1", "-p", str(redis_port)],
                                           cfg.seconds, calibrated)),
        ("Redis, unix socket", lambda: bench_redis(cfg, ["-s", redis_sock], cfg.seconds,
                                                   calibrated)),
    ]
    runs = {name: [] for name, _ in cells}
    for rep in range(cfg.reps):
        for name, fn in cells:
            c.log(f"transport: {name}, run {rep + 1}/{cfg.reps} (load {c.loadavg()})")
            runs[name].append(fn())
    results["transport"] = {
        name: dict(ops=c.median([r["ops"] for r in rs]), p50_us=c.median([r["p50_us"] for r in rs]),
                   p99_us=c.median([r["p99_us"] for r in rs]), runs=rs)
        for name, rs in runs.items()}
    plain.stop()
    tls.stop()
    authed.stop()


def report_transport(results):
    t = results.get("transport")
    if not t:
        return ""
    base = t["countersd, TCP plaintext"]["ops"]
    out = ["## Transport: plaintext, TLS, token-checked, unix socket (issue 12)", "",
           "Unary Increment, 64 in flight (countersd: 8 connections, `counterctl bench`; "
           "Redis: 64 connections, `redis-benchmark` INCRBY), median of the runs.", "",
           "| path | ops/s | vs countersd TCP plaintext | p50 µs | p99 µs |",
           "|---|---:|---:|---:|---:|"]
    for name, r in t.items():
        out.append(f"| {name} | {c.fmt_ops(r['ops'])} | {r['ops'] / base:.2f}x | "
                   f"{r['p50_us']:.0f} | {r['p99_us']:.0f} |")
    out.append("")
    return "\n".join(out) + "\n"
