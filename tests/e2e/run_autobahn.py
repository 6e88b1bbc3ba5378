"""Run Autobahn's fuzzing-client cases against trio-asgi, with the ``kosoku`` package.

Usage::

    python tests/e2e/run_autobahn.py                      # every case (1 to 13)
    python tests/e2e/run_autobahn.py -x '12.*' -x '13.*'  # all but compression (CI)
    python tests/e2e/run_autobahn.py -i '9.*' --report build/autobahn

It starts ``autobahn_app.py`` (an echo app on 127.0.0.1, free port) in a subprocess,
so the server has its own interpreter and GIL, runs the selected cases against it,
prints how many cases got each verdict (OK, NON-STRICT, INFORMATIONAL,
UNIMPLEMENTED, FAILED) and details of every failed case, and exits 1 if any case
failed. A case fails when kosoku says it did not pass: its message exchange or its
closing handshake was wrong, or it could not be run (ERROR).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kosoku import FailureError, run_fuzzingclient

HERE = Path(__file__).resolve().parent
#: The verdicts in the order they are reported; ``FAILED`` counts every case that did not pass.
VERDICTS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")
#: How long the echo server may take to print its address.
STARTUP_TIMEOUT = 30.0


@dataclass
class Summary:
    """The outcome of one run: cases per verdict, and a line for each failed case."""

    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def render(self) -> str:
        lines = [f"Autobahn: {self.total} cases in {self.seconds:.1f}s"]
        lines += [f"  {verdict:<14} {self.counts[verdict]}" for verdict in VERDICTS]
        if self.failures:
            lines.append("Failed cases:")
            lines += [f"  {line}" for line in self.failures]
        return "\n".join(lines)


@contextmanager
def echo_server() -> Iterator[str]:
    """Serve ``autobahn_app.py`` in a subprocess; yields its ``host:port``."""
    # The server must import this checkout's trio_asgi, however this script was started.
    pythonpath = [str(HERE.parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "autobahn_app.py")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield _read_address(process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # graceful: closes what is left with 1012
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _read_address(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    # A blocking readline, bounded by a timer that kills a server that never starts.
    timer = threading.Timer(STARTUP_TIMEOUT, process.kill)
    timer.start()
    try:
        line = process.stdout.readline().strip()
    finally:
        timer.cancel()
    if not line:
        raise RuntimeError(f"the echo server exited ({process.wait()}) before printing its address")
    return line


def run(
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    *,
    concurrency: int = 1,
    report_dir: Path | None = None,
) -> Summary:
    """Run the selected cases (``None``: all) against a fresh echo server.

    kosoku patches the interpreter it runs in (``sys.path``, ``binascii``) for Autobahn's
    Python 2 era case files: call this in a process of its own, as the script does.

    Args:
        include: Case ids or ``*`` globs to run, such as ``["1.*", "9.7.1"]``.
        exclude: Case ids or globs to leave out.
        concurrency: How many cases kosoku runs at once.
        report_dir: Write Autobahn's HTML and JSON reports here.
    """
    summary = Summary()
    started = time.monotonic()
    with echo_server() as address:
        try:
            results = asyncio.run(
                run_fuzzingclient(f"ws://{address}/", include, exclude, concurrency=concurrency)
            )
        except FailureError as failure:
            results = failure.results
    summary.seconds = time.monotonic() - started
    for result in results:
        if result.passed:
            summary.counts[result.behavior.value] += 1
            continue
        summary.counts["FAILED"] += 1
        summary.failures.append(
            f"{result.case_id}: {result.behavior.value} ({result.result}); "
            f"close {result.behavior_close.value} ({result.result_close})"
        )
    if report_dir is not None:
        # kosoku's own report writer, as its command line uses it.
        from kosoku._report import write_reports

        write_reports(results, str(report_dir))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--include", action="append", metavar="CASE", help="repeatable")
    parser.add_argument("-x", "--exclude", action="append", metavar="CASE", help="repeatable")
    parser.add_argument("-p", "--parallelism", type=int, default=1, metavar="N")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write Autobahn's reports")
    parser.add_argument(
        "--summary-json", type=Path, metavar="FILE", help="write the counts and failures as JSON"
    )
    args = parser.parse_args(argv)
    try:
        summary = run(
            args.include, args.exclude, concurrency=args.parallelism, report_dir=args.report
        )
    except ValueError as exc:  # kosoku's answer to a selection that matches no case
        parser.error(str(exc))
    print(summary.render())
    if args.summary_json is not None:
        data = {"counts": dict(summary.counts), "failures": summary.failures}
        args.summary_json.write_text(json.dumps(data, indent=2) + "\n")
    print("command:", shlex.join(["python", "tests/e2e/run_autobahn.py", *(argv or sys.argv[1:])]))
    return 1 if summary.counts["FAILED"] or not summary.total else 0


if __name__ == "__main__":
    sys.exit(main())
