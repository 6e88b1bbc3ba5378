"""Medians, ratios and the markdown report.

Every figure is the median over the rounds of one run; ratios compare servers
within that run only (numbers move from run to run on a shared machine, ratios
much less).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from bench._servers import REF_ENV, ServerSpec
from bench._targets import target_lines
from bench._workloads import Sample, Workload

REFERENCES = ("uvicorn-h11", "hypercorn-trio", "ceiling")
EXTRA_PACKAGES = ("starlette",)
BUSY_WORTH_NOTING = 1.0  # seconds

# results[server][workload] is the list of samples, one per round.
Results = dict[str, dict[str, list[Sample]]]


@dataclass(frozen=True)
class Cell:
    """The medians of one (server, workload) pair; ``value`` None means no good sample."""

    value: float | None
    p50_ms: float | None
    p99_ms: float | None
    cpu_us: float | None
    errors: int
    note: str


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarise(samples: list[Sample]) -> Cell:
    good = [sample for sample in samples if sample.value is not None]
    notes = sorted({sample.note for sample in samples if sample.note})
    busy = max((sample.busy_s for sample in samples if sample.busy_s is not None), default=0.0)
    if busy >= BUSY_WORTH_NOTING:
        notes.append(f"busy up to {busy:.1f} s after the client closed its connections")
    note = "; ".join(notes)
    if good and len(good) < len(samples):
        note = f"{len(samples) - len(good)}/{len(samples)} rounds failed: {note}"
    return Cell(
        value=_median([sample.value for sample in good]),
        p50_ms=_median([sample.p50_ms for sample in good]),
        p99_ms=_median([sample.p99_ms for sample in good]),
        cpu_us=_median([sample.cpu_us for sample in good]),
        errors=sum(sample.errors for sample in good),
        note=note,
    )


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if value >= 10_000:
        return f"{value / 1000:.{digits}f}k"
    return f"{value:,.{digits}f}" if value < 100 else f"{value:,.0f}"


def _short(cell: Cell | None) -> str:
    """A summary-table cell: the median, or the first word of why there is none."""
    if cell is None:
        return "—"
    if cell.value is None:
        return cell.note.split(":", 1)[0] or "failed"
    return _number(cell.value)


def _ratio(value: float | None, reference: Cell | None) -> str:
    if value is None or reference is None or not reference.value:
        return "—"
    return f"{value / reference.value:.2f}x"


def _to_ceiling(cell: Cell | None, ceiling: Cell | None) -> str:
    """Server CPU per request as a multiple of the bare trio loop's on the same workload."""
    if cell is None or cell.cpu_us is None or ceiling is None or not ceiling.cpu_us:
        return "—"
    return f"{cell.cpu_us / ceiling.cpu_us:.1f}x"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def _unavailable(cell: Cell) -> bool:
    return cell.value is None and cell.note.startswith("n/a")


def _cells(results: Results) -> dict[tuple[str, str], Cell]:
    return {
        (server, workload): summarise(samples)
        for server, by_workload in results.items()
        for workload, samples in by_workload.items()
    }


def summary_tables(
    results: Results, servers: Sequence[ServerSpec], workloads: Sequence[Workload]
) -> list[str]:
    """Throughput (or KiB per idle connection) and server CPU per request, one row a server."""
    cells = _cells(results)
    lines = ["### Medians", ""]
    header = ["server", *(f"{w.key} ({w.unit})" for w in workloads)]
    rows = [[s.name, *(_short(cells.get((s.name, w.key))) for w in workloads)] for s in servers]
    lines += _table(header, rows)
    # Each server's reasons for "n/a" (one for all its rows, or one for its HTTP/2 rows).
    reasons: dict[str, list[str]] = {}
    available: set[str] = set()
    for spec in servers:
        for workload in workloads:
            cell = cells.get((spec.name, workload.key))
            if cell is not None and _unavailable(cell):
                if cell.note not in reasons.setdefault(spec.name, []):
                    reasons[spec.name].append(cell.note)
            elif cell is not None:
                available.add(spec.name)
    if reasons:
        lines += ["", *(f"- {name}: {'; '.join(notes)}" for name, notes in reasons.items())]
    timed = [w for w in workloads if w.kind != "idle"]
    if timed:
        lines += ["", "### Server CPU time per request or message (µs, lower is better)", ""]
        rows = []
        for spec in servers:
            if spec.name not in available:
                continue
            row = [spec.name]
            for workload in timed:
                cell = cells.get((spec.name, workload.key))
                row.append(_number(cell.cpu_us) if cell and cell.value is not None else "—")
            rows.append(row)
        lines += _table(["server", *(w.key for w in timed)], rows)
    return lines


def detail_tables(
    results: Results, servers: Sequence[ServerSpec], workloads: Sequence[Workload]
) -> list[str]:
    """One table per workload: medians, latency, CPU, ratios to the references, notes."""
    cells = _cells(results)
    lines: list[str] = []
    for workload in workloads:
        refs = {name: cells.get((name, workload.key)) for name in REFERENCES}
        better = "higher" if workload.higher_is_better else "lower"
        lines += ["", f"### {workload.title} (`{workload.key}`)", ""]
        timed = workload.kind != "idle"  # idle rows have no latency, CPU or errors
        header = [
            "server", f"{workload.unit} ({better} is better)",
            *(["p50 ms", "p99 ms", "CPU µs", "CPU x ceiling"] if timed else []),
            *(f"x {name}" for name in REFERENCES), *(["errors"] if timed else []), "note",
        ]  # fmt: skip
        rows = []
        for spec in servers:
            cell = cells.get((spec.name, workload.key))
            if cell is None or _unavailable(cell):  # listed once under the medians
                continue
            rows.append([
                spec.name, _number(cell.value),
                *([_number(cell.p50_ms, 2), _number(cell.p99_ms, 2), _number(cell.cpu_us),
                   _to_ceiling(cell, refs["ceiling"])] if timed else []),
                *(_ratio(cell.value, refs[name]) for name in REFERENCES),
                *([str(cell.errors)] if timed else []), cell.note,
            ])  # fmt: skip
        lines += _table(header, rows)
    return lines


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _wrk_version() -> str:
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return done.stdout.decode(errors="replace").split("Copyright")[0].strip() or "unknown"


def machine_lines(servers: Sequence[ServerSpec]) -> list[str]:
    packages = sorted({name for spec in servers for name in spec.packages} | set(EXTRA_PACKAGES))
    versions = ", ".join(f"{name} {_version(name)}" for name in packages)
    return [
        f"- Machine: {os.cpu_count()} CPUs ({_cpu_model()}), Linux {platform.release()}",
        f"- Python {platform.python_version()} ({sys.implementation.name}), {_wrk_version()}",
        f"- Packages: {versions}",
        *_reference_lines(servers),
    ]


def _reference_lines(servers: Sequence[ServerSpec]) -> list[str]:
    """Which checkout the ``trio-asgi-ref`` row ran, if it is in the run."""
    checkout = os.environ.get(REF_ENV)
    if not checkout or not any("{ref}" in spec.argv for spec in servers):
        return []
    try:
        done = subprocess.run(
            ["git", "-C", checkout, "log", "-1", "--format=%h %s"],
            capture_output=True,
            timeout=10,
            check=True,
        )
        commit = done.stdout.decode(errors="replace").strip()[:100]
    except (OSError, subprocess.SubprocessError):
        commit = "not a git checkout"
    return [f"- trio-asgi-ref: the checkout `{checkout}` at {commit}"]


def render(
    results: Results,
    servers: Sequence[ServerSpec],
    workloads: Sequence[Workload],
    *,
    command: str,
    settings: str,
) -> str:
    """The whole markdown document."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `bench/run.py`; do not edit by hand, run the command below again.",
        "Each server is one worker process on 127.0.0.1 running `bench/apps.py`, with access",
        "logs off; the load generator (`wrk -t1` or the clients in `bench/`) shares the",
        "machine with it. Figures are medians over interleaved rounds. Throughput moves from",
        "run to run on a shared machine: compare ratios within one run, and the server CPU",
        "time per request, which moves far less. `ceiling` is a bare trio socket loop that",
        "answers each request head with a canned response; `CPU x ceiling` is a server's CPU",
        "per request as a multiple of the ceiling's on the same workload (how close to the",
        "limit of a Python server on trio it runs). Idle connections: server RSS",
        "growth per connection after one request on each (KiB, lower is better).",
        "The `h2_*` rows are HTTP/2 by prior knowledge on cleartext (`h2load -t1`); a server",
        'that does not serve it is "n/a" there, and an h2load run with any failed,',
        "errored or non-2xx request is reported as failed, not as a figure.",
        "`trio-asgi-fifo` is a diagnostic, not a configuration: trio-asgi with trio's",
        "scheduler made to run every batch first-in, first-out (`bench/trio_fifo.py`).",
        "Run `nox -s bench` (needs `wrk`); `nox -s bench -- --quick` is a smoke run and",
        "`nox -s bench -- --help` lists the filters (`--only`, `--duration`, `--rounds`).",
        "",
        f"- Command: `{command}`",
        f"- Run: {now}; {settings}",
        *machine_lines(servers),
        "",
        *summary_tables(results, servers, workloads),
        "",
        *target_lines(_cells(results)),
        "## Per workload",
        *detail_tables(results, servers, workloads),
        "",
    ]
    return "\n".join(lines)
