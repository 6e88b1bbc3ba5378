"""Run trio-asgi and its peers side by side and write docs/benchmarks.md.

    python -m bench.run                      # every server and workload, 3 rounds of 5 s
    python -m bench.run --quick              # a smoke run, under a minute
    python -m bench.run --only uvicorn-h11,trio-asgi,hello_64 --rounds 5

Run from the repository root (``nox -s bench`` does, with the peers installed).
Each round takes the servers in an order rotated from round to round, starts
each one for the load workloads and once more, fresh, for the idle-connection
ones; the report shows the medians over the rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

from bench import _h2, _report, _workloads
from bench._proc import raise_open_files_limit
from bench._servers import REPO, SERVERS, ServerSpec, StartFailure, start
from bench._workloads import WORKLOADS, Sample, Workload

HOST = "127.0.0.1"
QUICK_WORKLOADS = ("hello_64", "ws_50", "idle_1k")
T = TypeVar("T")


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__.split("\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="servers: " + ", ".join(s.name for s in SERVERS)
        + "\nworkloads: " + ", ".join(w.key for w in WORKLOADS),
    )  # fmt: skip
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up load")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated server names and/or workload keys (globs) to run",
    )
    parser.add_argument("--servers", default="", help="comma-separated server names (globs)")
    parser.add_argument("--workloads", default="", help="comma-separated workload keys (globs)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"1 round of 1 s, no warm-up load, workloads {','.join(QUICK_WORKLOADS)} "
        "unless --workloads/--only name some",
    )
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.warmup = 1.0, 1, 0.0
    if args.duration <= 0 or args.rounds < 1 or args.duration > 600:
        parser.error("--duration must be in (0, 600] and --rounds at least 1")
    return args


def _patterns(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _select(names: Sequence[str], patterns: Sequence[str]) -> set[str]:
    return {name for name in names if any(fnmatch.fnmatch(name, p) for p in patterns)}


def choose(args: argparse.Namespace) -> tuple[list[ServerSpec], list[Workload]]:
    """The servers and workloads the filters select, in their table order."""
    server_names = [spec.name for spec in SERVERS]
    workload_keys = [workload.key for workload in WORKLOADS]
    only = _patterns(args.only)
    server_patterns = _patterns(args.servers) + [p for p in only if _select(server_names, [p])]
    workload_patterns = _patterns(args.workloads) + [p for p in only if _select(workload_keys, [p])]
    unknown = [p for p in only if not _select(server_names + workload_keys, [p])]
    if unknown:
        sys.exit(f"--only: {', '.join(unknown)} match no server or workload")
    if not workload_patterns and args.quick:
        workload_patterns = list(QUICK_WORKLOADS)
    servers = _select(server_names, server_patterns or ["*"])
    workloads = _select(workload_keys, workload_patterns or ["*"])
    if not servers or not workloads:
        sys.exit("the filters select no server or no workload")
    return (
        [spec for spec in SERVERS if spec.name in servers],
        [workload for workload in WORKLOADS if workload.key in workloads],
    )


def _rotated(items: Sequence[T], by: int) -> list[T]:
    shift = by % len(items) if items else 0
    return [*items[shift:], *items[:shift]]


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _describe(sample: Sample, workload: Workload) -> str:
    if sample.value is None:
        return sample.note
    cpu = f", CPU {sample.cpu_us:.0f} µs" if sample.cpu_us is not None else ""
    note = f" ({sample.note})" if sample.note else ""
    return f"{sample.value:,.1f} {workload.unit}{cpu}{note}"


@dataclasses.dataclass
class _Round:
    """What every server start in one round shares."""

    index: int
    args: argparse.Namespace
    results: _report.Results
    log_dir: Path
    unavailable: dict[str, str]  # server name -> why it cannot start (same every round)

    def record(self, spec: ServerSpec, workload: Workload, sample: Sample) -> None:
        self.results.setdefault(spec.name, {}).setdefault(workload.key, []).append(sample)
        prefix = f"[round {self.index + 1}/{self.args.rounds}] {spec.name}"
        _progress(f"{prefix} {workload.key}: {_describe(sample, workload)}")


def _run_phase(round_: _Round, spec: ServerSpec, workloads: Sequence[Workload]) -> None:
    """Start the server, run the workloads against it in order, stop it."""
    try:
        server = start(spec, HOST, round_.log_dir, known_failure=round_.unavailable.get(spec.name))
    except StartFailure as failure:
        note = str(failure)
        if note.startswith("n/a"):  # not installed or not supported: the same next round
            round_.unavailable[spec.name] = note
        for workload in workloads:
            round_.record(spec, workload, Sample(None, note=note))
        return
    missing = {"wrk": _workloads.wrk_missing(), "h2load": _h2.h2load_missing()}
    try:
        if spec.probe != "h2" and any(not w.http2 and w.kind != "idle" for w in workloads):
            _workloads.warm_up(server, round_.args.warmup)
        if any(workload.kind == "h2load" for workload in workloads):
            _workloads.warm_up_h2(server, round_.args.warmup)
        for workload in workloads:
            tool_note = missing.get(workload.kind)
            if tool_note is not None:
                sample = Sample(None, note=tool_note)
            else:
                sample = _workloads.run(workload, server, round_.args.duration)
            if server.note:
                note = f"{sample.note}; {server.note}" if sample.note else server.note
                sample = dataclasses.replace(sample, note=note)
            round_.record(spec, workload, sample)
    finally:
        server.stop()


def run_round(round_: _Round, servers: Sequence[ServerSpec], workloads: Sequence[Workload]) -> None:
    """Each server in rotated order: one start for the HTTP/1.1 and WebSocket loads, one
    for the HTTP/2 loads, one for the idle workloads.

    The idle workloads get a fresh server, without the warm-up: memory freed by
    earlier loads would otherwise be reused for the idle connections and hide
    their cost, and a server still tearing down connections would slow the loads.
    The HTTP/2 loads get their own too: a peer whose worker dies under h2load
    (Hypercorn's trio worker does) would otherwise fail every row after its warm-up.
    """
    for spec in _rotated(servers, round_.index):
        wanted = []
        for workload in (workload for workload in workloads if spec.runs(workload.key)):
            note = spec.h2_note(workload.key)
            if note is None:
                wanted.append(workload)
            else:  # an HTTP/2 row it cannot run: "n/a", without starting it
                round_.record(spec, workload, Sample(None, note=note))
        loads = [workload for workload in wanted if workload.kind not in ("idle", "h2load")]
        h2_loads = [workload for workload in wanted if workload.kind == "h2load"]
        idle = [workload for workload in wanted if workload.kind == "idle"]
        for phase in (loads, h2_loads, idle):
            if phase:
                _run_phase(round_, spec, phase)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    servers, workloads = choose(args)
    limit = raise_open_files_limit()
    wrk_note = _workloads.wrk_missing()
    if wrk_note is not None:
        _progress(f"warning: {wrk_note}; the HTTP workloads are skipped")
    _progress(f"open-files limit {limit}; {len(servers)} servers x {len(workloads)} workloads")
    results: _report.Results = {}
    unavailable: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as log_dir:
        for index in range(args.rounds):
            run_round(_Round(index, args, results, Path(log_dir), unavailable), servers, workloads)
    command = os.environ.get("BENCH_COMMAND") or shlex.join(["python", "-m", "bench.run", *(
        sys.argv[1:] if argv is None else argv)])  # fmt: skip
    settings = (
        f"{args.rounds} round(s) of {args.duration:g} s per workload, "
        f"{args.warmup:g} s warm-up, wrk -t1"
    )
    report = _report.render(results, servers, workloads, command=command, settings=settings)
    print(report)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report)
        _progress(f"wrote {args.output}")


if __name__ == "__main__":
    main()
