"""The bench's figures as data (docs/generated/bench.json) and the docs block rendered from them.

The bench records what it measured here as it goes; at the end `write` stores the file, with the
machine, the Python version, the date and every run, and rewrites docs/performance.md's block. The
docs quote nothing else: tests/docs/test_generated.py renders the block again and compares.
Throughput is the median of the runs with their range; a target is met only when every run met it.
"""

import datetime
import json
import os
import platform
import statistics
from pathlib import Path

from sink_dev.generated import update_block
from sink_dev.paths import ROOT

RESULTS = ROOT / "docs" / "generated" / "bench.json"
DOC = ROOT / "docs" / "performance.md"
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024  # a synchronous invocation's event, Kinesis batches included

run: dict = {}


def start(targets: dict, latency: dict, repeats: int) -> None:
    run.clear()
    run.update({
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "cpu": _cpu_model(), "system": platform.platform()},
        "latency_ms": {service: round(1000 * seconds, 3) for service, seconds in latency.items()},
        "repeats": repeats, "targets": targets, "consumer": [],
    })


def consumer(size: int, fast: dict, naive: dict) -> None:
    run["consumer"].append({
        "records": size,
        "events_per_s": [size / wall for wall in fast["runs_wall"]],
        "cpu_ms_per_event": [1000 * cpu / size for cpu in fast["runs_cpu"]],
        "requests_per_event": {api: count / size for api, count in sorted(fast["requests"].items())},
        "peak_mb": fast["peak_mb"], "check": fast["check"],
        "naive": {"records": naive["records"], "events_per_s": naive["records"] / naive["wall"], "check": naive["check"]},
    })


def webhook(size: int, result: dict) -> None:
    run["webhook"] = {"bytes": size, "events": result["events"], "deliveries": result["runs"],
                      "p50_ms": 1000 * result["p50"], "p99_ms": 1000 * result["p99"], "max_ms": 1000 * result["max"],
                      "check": result["check"]}


def cost(door: str, workload: str, result: dict, dollars: dict[str, float], history_gb: float) -> None:
    """One door's run of the cost workload: capacity units, requests and $ per event."""
    n = result["events"]
    run.setdefault("cost", {"workload": workload, "doors": {}})["doors"][door] = {
        "events": n, "invocations": result["invocations"],
        "wru_per_event": {f"{api} {kind}": units / n for api, kind, unit, units in result["capacity"] if unit == "WRU"},
        "rru_per_event": sum(units for _, _, unit, units in result["capacity"] if unit == "RRU") / n,
        "requests_per_event": sum(result["requests"].values()) / n,
        "dollars_per_million": dollars, "history_gb_per_million": history_gb, "check": result["check"],
    }


def cost_assumptions(text: str) -> None:
    run.setdefault("cost", {"workload": "", "doors": {}})["assumptions"] = text


def imports(runs: int, baseline: float, functions: dict[str, float], first: dict[str, dict[str, float]],
            first_event: str, floors: dict[str, float]) -> None:
    """Import times, each function's stack floor, and each function's import + first invocation
    (seconds: init, invocation, total)."""
    run["imports"] = {"interpreters": runs, "baseline_ms": 1000 * baseline,
                      "functions_ms": {name: 1000 * seconds for name, seconds in functions.items()},
                      "floors_ms": {name: 1000 * seconds for name, seconds in floors.items()},
                      "first_invocation": {"event": first_event, "functions_ms": {
                          name: {part: 1000 * seconds for part, seconds in parts.items()}
                          for name, parts in first.items()}}}


def record_size(event: dict, records: int) -> None:
    """Bytes per record of the bench's Kinesis event, hence how many fit in one real invocation."""
    run["kinesis_event_bytes_per_record"] = len(json.dumps(event)) / records


def write(path: Path = RESULTS, doc: Path = DOC) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1) + "\n")
    update_block(doc, "bench", render(run))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------- rendering (also used by the test)

def spread(values: list[float], digits: int = 0) -> str:
    """`median (min-max)`, or the one value."""
    fmt = f"{{:,.{digits}f}}"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def verdict(values: list[float], target: float, at_most: bool = False) -> str:
    ok = [(value <= target) if at_most else (value >= target) for value in values]
    if all(ok):
        return "met" if len(ok) == 1 else f"met in all {len(ok)} runs"
    middle = statistics.median(values)
    if (middle <= target) if at_most else (middle >= target):
        return f"**met by the median only** ({sum(ok)} of {len(ok)} runs)"
    return "**missed**" if len(ok) == 1 else f"**missed** ({sum(ok)} of {len(ok)} runs met it)"


def render(data: dict) -> str:
    targets = data["targets"]
    lines = [f"Last `make bench`: {data['date']}; {data['machine']['cpus']} CPUs ({data['machine']['cpu']}), "
             f"{data['machine']['system']}; Python {data['python']}. Latency per request: "
             + ", ".join(f"{service} {ms:g} ms" for service, ms in data["latency_ms"].items())
             + f". Consumer: {data['repeats']} runs per size, median (range); naive: one run.", ""]
    rows = {row["records"]: row for row in data["consumer"]}
    if rows:
        lines += ["| records | events/s | vs naive | AWS requests/event (by API) | CPU ms/event | peak RSS MB | naive events/s |",
                  "|---:|---:|---:|---|---:|---:|---:|"]
        for size, row in sorted(rows.items()):
            naive = row["naive"]["events_per_s"]
            apis = ", ".join(f"{api.split('.', 1)[-1]} {value:.3f}" for api, value in row["requests_per_event"].items())
            naive_note = "" if row["naive"]["records"] == size else f" (first {row['naive']['records']:,})"
            check = "" if row["check"] == "ok" and row["naive"]["check"] == "ok" else f" — check: {row['check']}"
            lines.append(f"| {size:,} | {spread(row['events_per_s'])} | {spread([r / naive for r in row['events_per_s']], 1)}x "
                         f"| **{sum(row['requests_per_event'].values()):.2f}**: {apis} | {spread(row['cpu_ms_per_event'], 2)} "
                         f"| {row['peak_mb']:.0f} | {naive:,.0f}{naive_note}{check} |")
        lines.append("")
    if "webhook" in data:
        hook = data["webhook"]
        lines += [f"Webhook, {hook['bytes'] // 1000} kB body ({hook['events']} events), {hook['deliveries']} deliveries: "
                  f"p50 {hook['p50_ms']:.0f} ms, p99 {hook['p99_ms']:.0f} ms, max {hook['max_ms']:.0f} ms"
                  + ("" if hook["check"] == "ok" else f" (check: {hook['check']})") + ".", ""]
    if "imports" in data:
        cold = data["imports"]
        lines += [f"Cold start as shipped (`sam build` output, no bytecode writes, CPU time; median of "
                  f"{cold['interpreters']} rounds of fresh interpreters): boto3 + Powertools Logger "
                  f"{cold['baseline_ms']:.0f} ms; " + "; ".join(
                      f"`functions/{name}/app.py` {ms:.0f} ms = {ms / cold['baseline_ms']:.2f}x"
                      + (f", {ms / cold['floors_ms'][name]:.2f}x its stack's floor ({cold['floors_ms'][name]:.0f} ms)"
                         if "floors_ms" in cold else "")
                      for name, ms in cold["functions_ms"].items()) + "."]
        if "first_invocation" in cold:
            first = cold["first_invocation"]
            lines += ["Init + first invocation (the import, then " + first["event"] + ", in the same interpreter): "
                      + "; ".join(f"`{name}` {ms['total']:.0f} ms (import {ms['init']:.0f} + invocation "
                                  f"{ms['invocation']:.0f}) = {ms['total'] / cold['baseline_ms']:.2f}x the baseline"
                                  for name, ms in first["functions_ms"].items()) + "."]
        lines.append("")
    if "cost" in data:
        lines += [data["cost"]["workload"], "",
                  "| door | events | WRU/event (by API, item kind) | RRU/event | requests/event | $ per million events (by service) |",
                  "|---|---:|---|---:|---:|---|"]
        for door, row in data["cost"]["doors"].items():
            writes = ", ".join(f"{name} {value:.2f}" for name, value in row["wru_per_event"].items())
            dollars = ", ".join(f"{service} {value:.3f}" for service, value in row["dollars_per_million"].items())
            check = "" if row["check"] == "ok" else f" — check: {row['check']}"
            lines.append(f"| {door} | {row['events']:,} | **{sum(row['wru_per_event'].values()):.2f}**: {writes} "
                         f"| {row['rru_per_event']:.2f} | {row['requests_per_event']:.2f} "
                         f"| **{sum(row['dollars_per_million'].values()):.2f}**: {dollars}{check} |")
        lines += ["", data["cost"].get("assumptions", ""), ""]
    if "kinesis_event_bytes_per_record" in data:
        per_record = data["kinesis_event_bytes_per_record"]
        lines += [f"One bench record takes {per_record:,.0f} bytes of the Lambda event, so a real invocation "
                  f"(6 MiB) holds at most {LAMBDA_PAYLOAD_BYTES // per_record:,.0f} of them.", ""]
    lines += ["| target | result | verdict |", "|---|---|---|"]
    lines += [f"| {name} | {result} | {outcome} |" for name, result, outcome in _targets(data, rows, targets)]
    return "\n".join(lines)


def _targets(data: dict, rows: dict, targets: dict) -> list[tuple[str, str, str]]:
    missing = "not measured in the last run"
    out = []
    thousand = rows.get(1000)
    if thousand:
        ratios = [rate / thousand["naive"]["events_per_s"] for rate in thousand["events_per_s"]]
        requests = sum(thousand["requests_per_event"].values())
        out += [(f"≥ {targets['events_per_s']:,} events/s (1,000-record batch)", spread(thousand["events_per_s"]),
                 verdict(thousand["events_per_s"], targets["events_per_s"])),
                (f"≥ {targets['vs_naive']}x the naive handler", spread(ratios, 1) + "x", verdict(ratios, targets["vs_naive"])),
                (f"≤ {targets['requests_per_event']} AWS requests/event (seed mix)", f"{requests:.2f}",
                 verdict([requests], targets["requests_per_event"], at_most=True))]
    else:
        out += [(f"≥ {targets['events_per_s']:,} events/s and ≥ {targets['vs_naive']}x naive", "—", missing)]
    if "webhook" in data:
        p99 = data["webhook"]["p99_ms"] / 1000
        out.append((f"webhook {data['webhook']['bytes'] // 1000} kB p99 ≤ {targets['webhook_p99_s']} s",
                    f"{1000 * p99:.0f} ms", verdict([p99], targets["webhook_p99_s"], at_most=True)))
    else:
        out.append(("webhook p99", "—", missing))
    if "imports" in data:
        cold = data["imports"]
        ratios = [ms / cold["baseline_ms"] for ms in cold["functions_ms"].values()]
        result = " / ".join(f"{ratio:.2f}x" for ratio in ratios)
        if "first_invocation" in cold:  # the true cost beside the target's figure, so that none reads it alone
            result += " (init + first invocation: " + " / ".join(
                f"{ms['total'] / cold['baseline_ms']:.2f}x" for ms in cold["first_invocation"]["functions_ms"].values()) + ")"
        out.append((f"each function's import ≤ {targets['import_ratio']}x boto3 + Logger (the earlier target)", result,
                    verdict([max(ratios)], targets["import_ratio"], at_most=True)))
        if "floors_ms" in cold:
            floor_ratios = [ms / cold["floors_ms"][name] for name, ms in cold["functions_ms"].items()]
            out.append((f"each event-facing function's import ≤ {targets['floor_ratio']}x its stack's floor",
                        " / ".join(f"{ratio:.2f}x" for ratio in floor_ratios),
                        verdict([max(floor_ratios)], targets["floor_ratio"], at_most=True)))
    else:
        out.append(("import time", "—", missing))
    if "cost" in data:
        for door, row in data["cost"]["doors"].items():
            wru, dollars = sum(row["wru_per_event"].values()), sum(row["dollars_per_million"].values())
            out += [(f"≤ {targets['wru_per_event']} WRU/event ({door})", f"{wru:.2f}",
                     verdict([wru], targets["wru_per_event"], at_most=True)),
                    (f"≤ ${targets['dollars_per_million']:.2f} per million events ({door})", f"${dollars:.2f}",
                     verdict([dollars], targets["dollars_per_million"], at_most=True))]
    else:
        out.append(("WRU and $ per event", "—", missing))
    if 10000 in rows:
        out.append((f"10,000-record batch peak memory ≤ {targets['peak_mb_10000']} MB", f"{rows[10000]['peak_mb']:.0f} MB",
                    verdict([rows[10000]["peak_mb"]], targets["peak_mb_10000"], at_most=True)))
    else:
        out.append(("10,000-record batch peak memory", "—", missing))
    return out
