#!/usr/bin/env python3
"""Turns the raw output of bench/run into results: JSON, a markdown table,
the goals, and the BENCHMARKS.md section. Standard library only.

    report.py line DIR                      one scenario, one line (progress)
    report.py h2load DIR                    an h2load run as the line scenario.lua prints
    report.py grpc-body NAME                a GetOperationRequest for NAME, framed for gRPC
    report.py summary OUT [--smoke] [--write REPO]
"""

import datetime
import json
import os
import re
import sys
from pathlib import Path

# What each scenario answers when all is well. PATCH may also answer 409
# (percentComplete may not decrease): counted, shown, tolerated.
EXPECTED = {"face": 200, "devcenter": 200, "sphere": 200, "google": 200, "googlegrpc": 200, "devcenter304": 304,
            "devcentercold": 200, "patch": 200, "create": 201}
TOLERATED = {"patch": {409}}
LABELS = {
    "face": "Face GET",
    "devcenter": "Dev Center GET",
    "sphere": "Sphere GET",
    "google": "Google GetOperation (REST)",
    "googlegrpc": "Google GetOperation (gRPC)",
    "devcenter304": "Dev Center GET → 304",
    "devcentercold": "Dev Center GET, uncached",
    "patch": "PATCH progress",
    "create": "POST create",
}
ORDER = list(LABELS)
MARK_BEGIN = "<!-- bench:results:begin (written by bench/run; edits inside are overwritten) -->"
MARK_END = "<!-- bench:results:end -->"


def read(path, default=None):
    try:
        return Path(path).read_text().strip()
    except FileNotFoundError:
        return default


def scenario(directory):
    """One load-generator run, from the files `load` in bench/run left."""
    d = Path(directory)
    line = next(l for l in read(d / "wrk.txt").splitlines() if l.startswith("WRK_RESULT "))
    wrk = json.loads(line[len("WRK_RESULT "):])
    seconds = wrk["duration_us"] / 1e6
    statuses = {int(k): v for k, v in wrk["statuses"].items()}
    rss = [int(x) for x in (read(d / "rss_kib", "") or "").split()]
    before, after, tck = (int(x) for x in read(d / "server_cpu").split())
    user, system = (float(x) for x in read(d / "client_cpu").split())
    errors = wrk["errors"]
    # Every core's busy time over the run (/proc/stat, before and after):
    # what neither the server nor wrk used went to PostgreSQL or to
    # something else on the machine.
    machine = None
    stat = (read(d / "machine_cpu", "") or "").splitlines()
    if len(stat) == 2:
        a, b = ([int(x) for x in line.split()[1:]] for line in stat)
        busy = sum(b[i] - a[i] for i in (0, 1, 2, 5, 6))  # user nice system irq softirq
        machine = round(busy / tck / seconds, 2)
    return {
        "requests": wrk["requests"],
        "seconds": round(seconds, 3),
        "rps": round(wrk["requests"] / seconds, 1),
        "p50_ms": wrk["latency_us"]["p50"] / 1000,
        "p90_ms": wrk["latency_us"]["p90"] / 1000,
        "p99_ms": wrk["latency_us"]["p99"] / 1000,
        "p999_ms": wrk["latency_us"]["p999"] / 1000,
        "max_ms": wrk["latency_us"]["max"] / 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non2xx": {str(k): v for k, v in sorted(statuses.items()) if not 200 <= k < 300},
        "socket_errors": {k: v for k, v in errors.items() if k != "status" and v},
        "rss_max_mib": round(max(rss) / 1024, 1) if rss else None,
        "hwm_mib": round(int(read(d / "hwm_kib")) / 1024, 1) if read(d / "hwm_kib") else None,
        "server_cpu_cores": round((after - before) / tck / seconds, 2),
        "client_cpu_cores": round((user + system) / seconds, 2),
        "machine_busy_cores": machine,
        "other_cpu_cores": None if machine is None else round(max(0.0, machine - (after - before) / tck / seconds - (user + system) / seconds), 2),
    }


def problems(name, s):
    """What is wrong with a scenario's answers (empty when nothing is)."""
    expected = EXPECTED.get(name, 200)
    found = []
    if s["statuses"].get(str(expected), 0) == 0:
        found.append(f"no {expected} answers at all")
    others = {k: v for k, v in s["statuses"].items() if int(k) != expected and int(k) not in TOLERATED.get(name, ())}
    if others:
        found.append(f"unexpected statuses {others}")
    if s["socket_errors"]:
        found.append(f"socket errors {s['socket_errors']}")
    return found


def config(out):
    values = {}
    for line in (read(Path(out) / "config", "") or "").splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def pgbench(path):
    text = read(path)
    if text is None:
        return None
    tps = re.search(r"^tps = ([\d.]+)", text, re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", text, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    return {
        "tps": round(float(tps.group(1)), 1),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


def profile(out):
    flat = read(Path(out) / "profile-flat.txt")
    if not flat:
        return None
    top = []
    for line in flat.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)$", line)
        if m:
            symbol = re.sub(r"(\s+-)+\s*$", "", m.group(3)).strip()
            top.append({"percent": float(m.group(1)), "dso": m.group(2), "symbol": symbol})
    children = []
    for line in (read(Path(out) / "profile-children.txt", "") or "").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+([\d.]+)%\s+(.*)$", line)
        if m:
            symbol = re.sub(r"(\s+-)+\s*$", "", m.group(3)).strip()
            children.append({"total": float(m.group(1)), "self": float(m.group(2)), "symbol": symbol})
    dsos = []
    for line in (read(Path(out) / "profile-dso.txt", "") or "").splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s*$", line)
        if m:
            dsos.append({"percent": float(m.group(1)), "dso": m.group(2)})
    backend, n, name, c = read(Path(out) / "profile-scenario").split()
    return {"backend": backend, "n": int(n), "scenario": name, "c": int(c), "by_dso": dsos, "top_self": top[:25],
            "top_inclusive": children[:25]}


def collect(out):
    out = Path(out)
    cfg = config(out)
    runs = []
    for run_dir in sorted(out.glob("run-*"), key=lambda p: (p.name.split("-")[1] != "sqlite", int(p.name.split("-")[2]))):
        _, backend, n = run_dir.name.split("-")
        seed = json.loads(read(run_dir / "seed.json"))
        scenarios = []
        for d in run_dir.iterdir():
            m = re.match(r"^([a-z0-9]+)-c(\d+)$", d.name)
            if d.is_dir() and m:
                s = {"name": m.group(1), "c": int(m.group(2)), **scenario(d)}
                s["problems"] = problems(s["name"], s)
                scenarios.append(s)
        scenarios.sort(key=lambda s: (ORDER.index(s["name"]), s["c"]))
        runs.append({
            "backend": backend,
            "n": int(n),
            "seed_seconds": round(seed["seedSeconds"], 1),
            "store_mib": round(int(read(run_dir / "store_kib")) / 1024, 1),
            "startup_ms": round(int(read(run_dir / "startup_us")) / 1000, 1),
            "startup_after_crash_ms": (round(int(read(run_dir / "after-crash/startup_us")) / 1000, 1)
                                       if (run_dir / "after-crash/startup_us").exists() else None),
            "rss_idle_mib": round(int(read(run_dir / "rss_idle_kib")) / 1024, 1),
            "rss_max_mib": max((s["rss_max_mib"] or 0) for s in scenarios) if scenarios else None,
            "hwm_mib": max((s["hwm_mib"] or 0) for s in scenarios) if scenarios else None,
            "scenarios": scenarios,
        })
    nginx = []
    for d in sorted(out.glob("nginx/c*"), key=lambda p: int(p.name[1:])):
        s = {"c": int(d.name[1:]), **scenario(d)}
        s["problems"] = problems("devcenter", s)
        nginx.append(s)
    pg = []
    for path in sorted(out.glob("pgbench/*-c*.txt")):
        script, c = re.match(r"^(\w+)-c(\d+)\.txt$", path.name).groups()
        pg.append({"script": script, "c": int(c), **pgbench(path)})
    pg.sort(key=lambda p: (p["script"] != "select", p["c"]))
    return {
        "pinned": pinned(out, max(int(x) for x in cfg.get("connections", "0").split())),
        "otlp_spans_dropped": (read(out / "pinned" / "otlp-dropped", "") or "").strip() or None,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": cfg.get("command") or "bench/run" + (" --smoke" if cfg.get("mode") == "smoke" else ""),
        "mode": cfg.get("mode"),
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "kernel": os.uname().release,
        "commit": cfg.get("commit"),
        "elapsed_seconds": int(cfg.get("elapsed", "0")),
        "loadavg_at_start": cfg.get("loadavg"),
        "loadavg_at_end": cfg.get("loadavg_end"),
        "config": {
            "seconds_per_scenario": int(cfg.get("seconds", "0")),
            "counts": [int(x) for x in cfg.get("counts", "").split()],
            "connections": [int(x) for x in cfg.get("connections", "").split()],
            "ids_sampled_per_scope": int(cfg.get("sample", "0")),
            "uncached_ids_per_scope": int(cfg.get("cold_sample", "0")),
            "build": cfg.get("build"),
            "load_generator": f"wrk {cfg.get('wrk')} (1 thread, keep-alive, bench/scenario.lua)",
        },
        "versions": {"nginx": cfg.get("nginx"), "postgres": cfg.get("postgres_version")},
        "pg_durability": read(out / "pgbench" / "durability"),
        "runs": runs,
        "ceilings": {"nginx_static": nginx, "pgbench": pg},
    }


def pinned(out, c):
    """The pinned per-core runs (all at the top `c`): per server, the median round by req/s."""
    rounds = {}
    for d in sorted(out.glob("pinned/*-r*")):
        name, _ = d.name.rsplit("-r", 1)
        s = {"c": c, **scenario(d)}
        s["problems"] = problems("devcenter" if name in ("nginx", "devcenterotlp") else name, s)
        rounds.setdefault(name, []).append(s)
    medians = {}
    for name, runs in rounds.items():
        runs.sort(key=lambda s: s["rps"])
        medians[name] = {**runs[(len(runs) - 1) // 2], "rounds": len(runs), "all_rps": [round(s["rps"]) for s in runs]}
    return medians


def cpu_model():
    for line in (read("/proc/cpuinfo", "") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return None


def find(results, backend, n, name, c):
    for run in results["runs"]:
        if run["backend"] == backend and run["n"] == n:
            for s in run["scenarios"]:
                if s["name"] == name and s["c"] == c:
                    return s
    return None


def ceiling(results, kind, c, script=None):
    if kind == "nginx":
        return next((s["rps"] for s in results["ceilings"]["nginx_static"] if s["c"] == c), None)
    return next((p["tps"] for p in results["ceilings"]["pgbench"] if p["script"] == script and p["c"] == c), None)


def ratios(results):
    """Each scenario against the ceiling it is compared to, where it has one."""
    for run in results["runs"]:
        for s in run["scenarios"]:
            against = None
            if s["name"] in ("devcenter", "face", "sphere", "google", "googlegrpc", "devcenter304", "devcentercold"):
                if run["backend"] == "postgres":
                    against = ("pgbench SELECT", ceiling(results, "pg", s["c"], "select"))
                else:
                    against = ("nginx", ceiling(results, "nginx", s["c"]))
            elif s["name"] == "create":
                against = ("pgbench INSERT", ceiling(results, "pg", s["c"], "insert"))
            if against and against[1]:
                s["ratio"] = {"to": against[0], "value": round(s["rps"] / against[1], 3)}


def goals(results):
    """The goals of the brief, each with what was measured and whether it holds."""
    cs = results["config"]["connections"]
    top = max(cs) if cs else None
    counts = sorted(results["config"]["counts"])
    evaluated = []

    def goal(text, holds, measured):
        evaluated.append({"goal": text, "holds": holds, "measured": measured})

    nginx = ceiling(results, "nginx", top)
    rows = [(n, find(results, "sqlite", n, "devcenter", top)) for n in counts]
    rows = [(n, s) for n, s in rows if s]
    if nginx and rows:
        ok = all(s["rps"] >= 0.6 * nginx and s["p99_ms"] <= 2.0 for _, s in rows)
        goal(f"SQLite status GET at c={top} ≥ 60 % of nginx req/s, p99 ≤ 2 ms", ok,
             "; ".join(f"N={n:,}: {s['rps'] / nginx:.0%} of nginx ({s['rps']:,.0f} vs {nginx:,.0f}/s), p99 {s['p99_ms']:.2f} ms"
                       for n, s in rows))
    select = ceiling(results, "pg", top, "select")
    rows = [(n, find(results, "postgres", n, "devcenter", top)) for n in counts]
    rows = [(n, s) for n, s in rows if s]
    if select and rows:
        goal(f"PostgreSQL status GET at c={top} ≥ 80 % of pgbench SELECT tps", all(s["rps"] >= 0.8 * select for _, s in rows),
             "; ".join(f"N={n:,}: {s['rps'] / select:.0%} ({s['rps']:,.0f} vs {select:,.0f}/s)" for n, s in rows))
    # Each backend against its own smallest and largest N (BENCH_LARGE
    # adds 10^7 on SQLite only).
    for backend in ("sqlite", "postgres"):
        ns = sorted({r["n"] for r in results["runs"] if r["backend"] == backend})
        if len(ns) < 2:
            continue
        lo, hi = ns[0], ns[-1]
        small, large = find(results, backend, lo, "devcenter", top), find(results, backend, hi, "devcenter", top)
        if small and large:
            goal(f"{backend}: GET req/s at N={hi:,} ≥ 90 % of N={lo:,}", large["rps"] >= 0.9 * small["rps"],
                 f"{large['rps'] / small['rps']:.0%} ({large['rps']:,.0f} vs {small['rps']:,.0f}/s, Dev Center, c={top})")
        # The stricter reading: ids spread over every stored operation, so
        # at large N nearly every read misses the hot-operation cache.
        large = find(results, backend, hi, "devcentercold", top)
        if small and large:
            goal(f"{backend}: uncached GET req/s at N={hi:,} ≥ 90 % of cached N={lo:,} (stricter)",
                 large["rps"] >= 0.9 * small["rps"],
                 f"{large['rps'] / small['rps']:.0%} ({large['rps']:,.0f} vs {small['rps']:,.0f}/s, c={top})")
    insert = ceiling(results, "pg", top, "insert")
    rows = [(n, find(results, "sqlite", n, "create", top)) for n in counts]
    rows = [(n, s) for n, s in rows if s]
    if insert and rows:
        goal(f"durable creates at c={top} on SQLite ≥ pgbench fsync'd INSERT tps", all(s["rps"] >= insert for _, s in rows),
             "; ".join(f"N={n:,}: {s['rps']:,.0f} vs {insert:,.0f}/s ({s['rps'] / insert:.0%})" for n, s in rows))
    pin = results.get("pinned") or {}
    if pin.get("nginx") and all(pin.get(d) for d in ("face", "devcenter", "sphere")):
        ceiling_rps = pin["nginx"]["rps"]
        goal(f"per core (server on CPU 0, wrk on another): status GET at c={top} ≥ 75 % of nginx pinned alike, every dialect",
             all(pin[d]["rps"] >= 0.75 * ceiling_rps for d in ("face", "devcenter", "sphere")),
             "; ".join(f"{LABELS[d]} {pin[d]['rps'] / ceiling_rps:.0%} ({pin[d]['rps']:,.0f} vs {ceiling_rps:,.0f}/s)"
                       for d in ("face", "devcenter", "sphere")))
    if pin.get("devcenter") and pin.get("devcenterotlp"):
        off, on = pin["devcenter"], pin["devcenterotlp"]
        dropped = results.get("otlp_spans_dropped") or "?"
        goal(f"OTLP on with the collector down: Dev Center GET at c={top} ≥ 95 % of OTLP off (pinned alike)",
             on["rps"] >= 0.95 * off["rps"],
             f"{on['rps'] / off['rps']:.0%} ({on['rps']:,.0f} vs {off['rps']:,.0f}/s); max VmRSS {on['rss_max_mib']} vs "
             f"{off['rss_max_mib']} MiB; {dropped} spans dropped and counted")
    lo = counts[0] if counts else None
    sqlite_get, pg_get = find(results, "sqlite", lo, "devcenter", top), find(results, "postgres", lo, "devcenter", top)
    if sqlite_get and pg_get:
        goal(f"PostgreSQL status GET at c={top} ≥ 80 % of the SQLite node's (N={lo:,})", pg_get["rps"] >= 0.8 * sqlite_get["rps"],
             f"{pg_get['rps'] / sqlite_get['rps']:.0%} ({pg_get['rps']:,.0f} vs {sqlite_get['rps']:,.0f}/s)")
    rows = [(n, find(results, "postgres", n, "create", top)) for n in counts]
    rows = [(n, s) for n, s in rows if s]
    if insert and rows:
        goal(f"durable creates at c={top} on PostgreSQL ≥ pgbench fsync'd INSERT tps", all(s["rps"] >= insert for _, s in rows),
             "; ".join(f"N={n:,}: {s['rps']:,.0f} vs {insert:,.0f}/s ({s['rps'] / insert:.0%})" for n, s in rows))
    rows = [(n, find(results, "postgres", n, "patch", top)) for n in counts]
    rows = [(n, s) for n, s in rows if s]
    if rows and top == 64:
        # 3 × the 3.0k/s PostgreSQL PATCH of the 2026-11-23 runs, before group commit.
        goal(f"PostgreSQL PATCH at c={top} ≥ 9,000/s (3 × the 3,000/s before group commit)",
             all(s["rps"] >= 9000 for _, s in rows), "; ".join(f"N={n:,}: {s['rps']:,.0f}/s" for n, s in rows))
    million = [r for r in results["runs"] if r["n"] == 1_000_000] or [r for r in results["runs"] if r["n"] == counts[-1]]
    if million:
        goal(f"RSS ≤ 150 MiB at N={million[0]['n']:,} under load", all(r["rss_max_mib"] <= 150 for r in million),
             "; ".join(f"{r['backend']}: max VmRSS {r['rss_max_mib']} MiB (VmHWM {r['hwm_mib']} MiB)" for r in million))
    if results["runs"]:
        def startups(r):
            after_crash = r.get("startup_after_crash_ms")
            return [r["startup_ms"]] + ([after_crash] if after_crash is not None else [])

        def described(r):
            after_crash = r.get("startup_after_crash_ms")
            crash = f", {after_crash:.0f} ms after a crash" if after_crash is not None else ""
            return f"{r['backend']} N={r['n']:,}: {r['startup_ms']:.0f} ms{crash}"

        goal("start-up to ready (/healthz) ≤ 1 s, after a clean stop and after a crash",
             all(ms <= 1000 for r in results["runs"] for ms in startups(r)),
             "; ".join(described(r) for r in results["runs"]))
    return evaluated


def cores(value):
    return "" if value is None else f"{value:.2f}"


def fmt_non2xx(name, s):
    shown = {k: v for k, v in s["non2xx"].items() if not (name == "devcenter304" and k == "304")}
    return ", ".join(f"{v:,}×{k}" for k, v in shown.items()) or "0"


def markdown(results):
    lines = []
    cfg = results["config"]
    lines.append(f"Run {results['date']} · `{results['command']}` · nproc {results['nproc']} ({results['cpu']}) · "
                 f"commit {results['commit']} · {cfg['seconds_per_scenario']} s per scenario · "
                 f"{results['elapsed_seconds'] // 60} min {results['elapsed_seconds'] % 60} s in all · "
                 f"load average at start {results['loadavg_at_start']}, at end {results['loadavg_at_end']}")
    lines.append("")
    lines.append(f"Load: {cfg['load_generator']}, random existing ids from {cfg['ids_sampled_per_scope']:,} per scope "
                 f"(the uncached scenario: from up to {cfg.get('uncached_ids_per_scope', 0):,}, spread over all N); "
                 f"server built `{cfg['build']}`; PostgreSQL {results['versions'].get('postgres') or '(not run)'}, "
                 f"nginx {results['versions'].get('nginx')}.")
    lines.append("")
    lines.append("| store | N | scenario | c | req/s | p50 ms | p99 ms | non-2xx | vs ceiling | server CPU | other CPU | RSS max MiB |")
    lines.append("|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for run in results["runs"]:
        for s in run["scenarios"]:
            ratio = f"{s['ratio']['value']:.0%} of {s['ratio']['to']}" if s.get("ratio") else ""
            lines.append(
                f"| {run['backend']} | {run['n']:,} | {LABELS.get(s['name'], s['name'])} | {s['c']} | {s['rps']:,.0f} | "
                f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {fmt_non2xx(s['name'], s)} | {ratio} | "
                f"{s['server_cpu_cores']:.2f} | {cores(s['other_cpu_cores'])} | {s['rss_max_mib']} |")
    lines.append("")
    lines.append("non-2xx: answers outside 200–299 (in the 304 scenario, 304 is the success answer and is not counted). "
                 f"server CPU: cores the longrun process used on average (of {results['nproc']}). other CPU: cores used by "
                 "neither longrun nor wrk: PostgreSQL's backends on the PostgreSQL rows; on the SQLite rows, more than a few "
                 "hundredths means something else was running and the row is suspect.")
    lines.append("")
    lines.append("| store | N | seed | store size | start-up to ready | after a crash | RSS idle | RSS max under load | VmHWM |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in results["runs"]:
        crash = run.get("startup_after_crash_ms")
        lines.append(f"| {run['backend']} | {run['n']:,} | {run['seed_seconds']} s | {run['store_mib']} MiB | "
                     f"{run['startup_ms']:.0f} ms | {'' if crash is None else f'{crash:.0f} ms'} | "
                     f"{run['rss_idle_mib']} MiB | {run['rss_max_mib']} MiB | {run['hwm_mib']} MiB |")
    lines.append("")
    lines.append("start-up to ready: from exec to the first /healthz answer after a clean stop (SQLite skips its "
                 "integrity check when the file is exactly as the clean stop left it). after a crash: the same after "
                 "SIGKILL, with the full `quick_check` and WAL recovery.")
    lines.append("")
    if results["ceilings"]["nginx_static"] or results["ceilings"]["pgbench"]:
        lines.append("Ceilings, same machine, same run:")
        lines.append("")
        lines.append("| ceiling | c | req/s or tps | p50 ms | p99 ms | latency avg ms | server CPU | wrk CPU |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for s in results["ceilings"]["nginx_static"]:
            lines.append(f"| nginx, 1 worker, the Dev Center body as a static file | {s['c']} | {s['rps']:,.0f} | "
                         f"{s['p50_ms']:.2f} | {s['p99_ms']:.2f} | | {s['server_cpu_cores']:.2f} | {s['client_cpu_cores']:.2f} |")
        for p in results["ceilings"]["pgbench"]:
            what = "primary-key SELECT" if p["script"] == "select" else "INSERT, autocommit"
            lines.append(f"| pgbench {what} (`-M prepared`) | {p['c']} | {p['tps']:,.0f} | | | {p['latency_avg_ms']} | | |")
        if results.get("pg_durability"):
            fsync, sync_commit = (results["pg_durability"].split() + ["?", "?"])[:2]
            lines.append("")
            lines.append(f"PostgreSQL ran with fsync={fsync}, synchronous_commit={sync_commit}.")
        lines.append("")
    pin = results.get("pinned") or {}
    if pin:
        lines.append("Per core: longrun (SQLite, N=1,000, every thread) and nginx (one worker) pinned to CPU 0, "
                     "wrk to the last CPU, taking turns; the median of the rounds:")
        lines.append("")
        lines.append("| server | c | req/s | rounds' req/s | p50 ms | p99 ms | server CPU | wrk CPU | vs nginx |")
        lines.append("|---|---:|---:|---|---:|---:|---:|---:|---:|")
        nginx_rps = pin.get("nginx", {}).get("rps")
        for name in ("nginx", "face", "devcenter", "sphere", "devcenterotlp"):
            if name not in pin:
                continue
            p = pin[name]
            label = {"nginx": "nginx, the Dev Center body as a static file",
                     "devcenterotlp": f"longrun {LABELS['devcenter']}, OTLP on, collector down"}.get(name)
            label = label or f"longrun {LABELS[name]}"
            versus = f"{p['rps'] / nginx_rps:.0%}" if nginx_rps and name != "nginx" else ""
            lines.append(f"| {label} | {p['c']} | {p['rps']:,.0f} | {', '.join(f'{r:,}' for r in p['all_rps'])} | "
                         f"{p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {cores(p['server_cpu_cores'])} | "
                         f"{cores(p['client_cpu_cores'])} | {versus} |")
        lines.append("")
    if results.get("goals"):
        lines.append("| goal | holds | measured |")
        lines.append("|---|---|---|")
        for g in results["goals"]:
            lines.append(f"| {g['goal']} | {'yes' if g['holds'] else '**no**'} | {g['measured']} |")
        lines.append("")
    prof = results.get("profile")
    if prof:
        lines.append(f"CPU profile of the server during {LABELS[prof['scenario']]} at c={prof['c']} ({prof['backend']}, "
                     f"N={prof['n']:,}; `perf record -e cpu-clock -g`, an extra run not in the table), top symbols by self time:")
        lines.append("")
        if prof["by_dso"]:
            lines.append("By binary: " + ", ".join(f"{d['dso']} {d['percent']:.0f} %" for d in prof["by_dso"][:5]) + ".")
            lines.append("")
        lines.append("| self % | where | symbol |")
        lines.append("|---:|---|---|")
        for t in prof["top_self"][:15]:
            symbol = t["symbol"].replace("|", "\\|")
            if len(symbol) > 90:
                symbol = symbol[:87] + "…"
            lines.append(f"| {t['percent']:.1f} | {t['dso']} | `{symbol}` |")
        lines.append("")
    return "\n".join(lines)


def update_benchmarks(repo, text):
    path = Path(repo) / "BENCHMARKS.md"
    doc = path.read_text()
    begin, end = doc.find(MARK_BEGIN), doc.find(MARK_END)
    if begin < 0 or end < begin:
        raise SystemExit(f"{path}: the results markers are missing; not touching it")
    path.write_text(doc[: begin + len(MARK_BEGIN)] + "\n" + text + "\n" + doc[end:])


def grpc_body(name):
    """A google.longrunning.GetOperationRequest {name} in a gRPC frame: no
    compression flag, a 4-byte length, then field 1 (the name)."""
    encoded = name.encode()
    length, varint = len(encoded), b""
    while True:
        varint += bytes([(length & 0x7F) | (0x80 if length > 0x7F else 0)])
        length >>= 7
        if not length:
            break
    message = b"\x0a" + varint + encoded
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load_result(directory):
    """h2load's per-call log (start µs, HTTP status, µs to the end) and its
    summary as the WRK_RESULT line scenario.lua prints. A call whose
    answer carried no message (a gRPC refusal is trailers only) counts as
    status 0, so the run's problems name it."""
    d = Path(directory)
    calls = [line.split("\t") for line in read(d / "calls.tsv", "").splitlines() if line]
    summary = read(d / "h2load.txt", "")
    seconds = float(re.search(r"finished in ([0-9.]+)(m?s)", summary).group(1))
    if re.search(r"finished in [0-9.]+ms", summary):
        seconds /= 1000
    done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", summary).group(1))
    data = int(re.search(r"traffic: .* \((\d+)\) data", summary).group(1))
    errored = sum(int(x) for x in re.search(r"(\d+) errored, (\d+) timeout", summary).groups())
    latencies = sorted(int(c[2]) for c in calls)
    if not latencies:
        raise SystemExit(f"{d}: h2load logged no calls")
    statuses = {}
    for c in calls:
        statuses[c[1]] = statuses.get(c[1], 0) + 1
    if done and data / done < 16:  # a GetOperation answer is ~100 bytes or more
        statuses = {"0": done}

    def pct(p):
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))]

    result = {
        "requests": len(calls), "duration_us": int(seconds * 1e6), "bytes": data,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": errored},
        "latency_us": {"mean": sum(latencies) / len(latencies), "max": latencies[-1], "p50": pct(50), "p90": pct(90),
                       "p99": pct(99), "p999": pct(99.9)},
        "statuses": statuses,
    }
    return "WRK_RESULT " + json.dumps(result)


def main(argv):
    if argv[:1] == ["grpc-body"]:
        sys.stdout.buffer.write(grpc_body(argv[1]))
        return 0
    if argv[:1] == ["h2load"]:
        print(h2load_result(argv[1]))
        return 0
    if argv[:1] == ["line"]:
        d = Path(argv[1])
        s = scenario(d)
        name = d.name if "-c" not in d.name else d.name.rsplit("-c", 1)[0]
        issues = problems(name if name in EXPECTED else "devcenter", s)
        print(f"    {d.parent.name}/{d.name}: {s['rps']:,.0f} req/s, p50 {s['p50_ms']:.2f} ms, p99 {s['p99_ms']:.2f} ms, "
              f"statuses {s['statuses']}, server {s['server_cpu_cores']} cores, RSS ≤ {s['rss_max_mib']} MiB"
              + (f"  !! {'; '.join(issues)}" if issues else ""))
        return 0
    if argv[:1] != ["summary"]:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    smoke = "--smoke" in argv
    results = collect(out)
    ratios(results)
    results["goals"] = [] if smoke else goals(results)
    results["profile"] = profile(out)
    text = markdown(results)
    print(text)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    failures = [f"{r['backend']} N={r['n']} {s['name']} c={s['c']}: {p}"
                for r in results["runs"] for s in r["scenarios"] for p in s["problems"]]
    failures += [f"nginx c={s['c']}: {p}" for s in results["ceilings"]["nginx_static"] for p in s["problems"]]
    failures += [f"pinned {name}: {p}" for name, s in (results.get("pinned") or {}).items() for p in s["problems"]]
    failures += [f"pgbench {p['script']} c={p['c']}: {p['failed']} failed transactions"
                 for p in results["ceilings"]["pgbench"] if p["failed"]]

    if "--write" in argv:
        repo = Path(argv[argv.index("--write") + 1])
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H%M")
        target = repo / "bench" / "results" / f"{stamp}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(results, indent=2) + "\n")
        update_benchmarks(repo, text)
        print(f"\nwrote {target.relative_to(repo)} and the results section of BENCHMARKS.md", file=sys.stderr)

    if failures:
        print("\nproblems:\n  " + "\n  ".join(failures), file=sys.stderr)
        # A smoke run exists to catch a broken harness or server: any wrong
        # answer fails it. A full run reports them and fails only when a
        # scenario got no right answer at all.
        if smoke or any("no " in f and "answers at all" in f for f in failures):
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
