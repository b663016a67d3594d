#!/usr/bin/env python3
"""Checks the Grafana dashboard (deploy/grafana/countersd-dashboard.json).

    check_dashboard.py DASHBOARD.json [METRICS.md]

How it works, step by step:
 1. The file must be JSON with a `panels` list and a template variable of
    type `datasource` (query `prometheus`), and every panel that queries must
    use that variable as its data source, so the dashboard imports into any
    Grafana whatever its Prometheus is called.
 2. Every panel but a row has at least one target with a PromQL `expr`.
 3. The metric names each expr uses (identifiers not followed by "(", once
    strings, label matchers, ranges and by/without lists are taken out) must
    be metrics countersd exports: the names in METRICS.md (docs/metrics.md)
    if it is given and exists, else the list below. A histogram's _bucket,
    _sum and _count series count as its name.
 4. With promtool on the PATH, every expr (Grafana's $__rate_interval and
    $instance replaced by plain values) is parsed by Prometheus itself:
    `promtool check rules` on a rules file holding one recording rule per
    expr. promtool has no command that checks a bare expression.
Prints one line per problem and exits 1 if there is any, 0 otherwise.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Until docs/metrics.md exists: the metrics of issue 13.
KNOWN_METRICS = {
    "countersd_requests_total", "countersd_request_duration_seconds",
    "countersd_counters", "countersd_capacity", "countersd_snapshot_duration_seconds",
    "countersd_last_snapshot_timestamp_seconds", "countersd_snapshot_failures_total",
    "countersd_process_restarts_total", "countersd_stripes_force_released_total",
    "countersd_build_info", "countersd_counter_value", "countersd_counter_values_omitted",
    "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
    "process_open_fds", "process_max_fds", "process_start_time_seconds",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
                "$instance": ".*"}


def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)          # strings
    e = re.sub(r"\{[^}]*\}", "", e)                         # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                        # ranges
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or m.group(0).lower() in KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def known_metrics(doc):
    if doc and os.path.exists(doc):
        with open(doc, encoding="utf-8") as f:
            names = set(re.findall(r"\b(?:countersd|process)_[a-z0-9_]+\b", f.read()))
        return names, doc
    return KNOWN_METRICS, "the list in check_dashboard.py"


def grafana_free(expr):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.split("\n\n")[1].strip(), file=sys.stderr)
        return 2
    problems = []
    try:
        with open(argv[1], encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"dashboard: {argv[1]}: {e}")
        return 1
    known, source = known_metrics(argv[2] if len(argv) == 3 else None)

    variables = dash.get("templating", {}).get("list", [])
    ds = [v for v in variables if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    if not ds:
        problems.append("no template variable of type datasource (query prometheus)")
    ds_ref = "${%s}" % ds[0]["name"] if ds else None

    exprs = []
    panels = dash.get("panels")
    if not isinstance(panels, list) or not panels:
        problems.append("no panels")
        panels = []
    for p in panels:
        title = p.get("title", f"panel {p.get('id')}")
        if p.get("type") == "row":
            continue
        if ds_ref and p.get("datasource", {}).get("uid") != ds_ref:
            problems.append(f"panel {title!r}: data source is not {ds_ref}")
        targets = [t for t in p.get("targets", []) if t.get("expr")]
        if not targets:
            problems.append(f"panel {title!r}: no target with an expr")
        for t in targets:
            if ds_ref and t.get("datasource", {}).get("uid", ds_ref) != ds_ref:
                problems.append(f"panel {title!r} {t.get('refId')}: data source is not {ds_ref}")
            for name in sorted(metric_names(t["expr"])):
                base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
                if name not in known and base not in known:
                    problems.append(f"panel {title!r}: {name} is not a metric in {source}")
            exprs.append((title, t["expr"]))

    promtool = shutil.which("promtool")
    if promtool and exprs:
        with tempfile.TemporaryDirectory() as tmp:
            rules = os.path.join(tmp, "rules.yml")
            with open(rules, "w", encoding="utf-8") as f:
                f.write("groups:\n  - name: dashboard\n    rules:\n")
                for i, (_, expr) in enumerate(exprs):
                    f.write(f"      - record: dashboard:expr_{i}\n")
                    f.write(f"        expr: {json.dumps(grafana_free(expr))}\n")
            out = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
            if out.returncode != 0:
                for line in (out.stdout + out.stderr).splitlines():
                    m = re.search(r"expr_(\d+)", line)
                    where = f"panel {exprs[int(m.group(1))][0]!r}: " if m else ""
                    if line.strip() and not re.match(r"(Checking|FAILED|SUCCESS)", line.strip()):
                        problems.append(f"promtool: {where}{line.strip()}")
    parsed = "parsed by promtool" if promtool else "not parsed (no promtool)"
    for p in problems:
        print(f"dashboard: {p}")
    print(f"dashboard: {len(exprs)} exprs, metric names from {source}, {parsed}; "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
