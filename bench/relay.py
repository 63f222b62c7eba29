"""Relay throughput and latency (issue #9, item 2): submit and end-to-end, beside the bare ceiling.

One relay node runs in a child process (bench/relay_node.py: the reference
relay on anycorn/trio, SQLite with ``synchronous=FULL`` and group commit, in a
fresh :func:`~ncb_relay.demo.deployment.make_deployment` folder).  The load
comes from separate worker processes (bench/relay_load.py), closed loop, one
connection per sender.  At each concurrency the three kinds of run (``bare``,
``submit``, ``e2e``) alternate on the same server, in an order that rotates
from round to round; the rate of a kind is the median over rounds, its
latencies are pooled over rounds.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ncb_relay.demo.deployment import Member, make_deployment

from .relay_load import KINDS, worker
from .report import check

ROOT = Path(__file__).resolve().parents[1]
RELAY_ID = "XP.relay-lyon"
START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """Concurrency levels, rounds, and requests (cycles for ``e2e``) per run at each level."""

    levels: tuple[int, ...]
    rounds: int
    requests: dict[int, int]  # total submissions per run of ``bare`` and ``submit``
    cycles: dict[int, int]  # total submit-fetch-acknowledge cycles per ``e2e`` run


RELAY_PLANS = {
    "smoke": RelayPlan((1, 2), 1, {1: 60, 2: 80}, {1: 20, 2: 30}),
    "short": RelayPlan((1, 8, 32), 2, {1: 200, 8: 1200, 32: 2400}, {1: 60, 8: 320, 32: 640}),
    "full": RelayPlan((1, 8, 32), 5, {1: 600, 8: 4000, 32: 8000}, {1: 200, 8: 1200, 32: 2400}),
}
E2E_P99_LEVEL = 32  # the end-to-end latency target is set at 32 senders


def load_processes() -> int:
    """Worker processes of the load generator: the cores the relay's one process leaves."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def filesystem_of(path: Path) -> str:
    """The file system type that holds ``path`` (from /proc/mounts), or ``"unknown"``."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


class RelayChild:
    """The relay node in a child process; ``url`` once it listens."""

    def __init__(self, folder: Path, profile: Path | None = None) -> None:
        argv = [sys.executable, "-m", "bench.relay_node", str(folder)]
        if profile is not None:
            argv.append(str(profile))
        self.errors = folder / f"relay-{time.monotonic_ns()}.stderr"
        with self.errors.open("wb") as errors:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if len(line) != 2 or line[0] != "listening":
            self.process.kill()
            self.process.wait()
            raise RuntimeError(f"the relay node did not start: {self.errors.read_text()[-2000:]}")
        self.url = line[1]
        host, _, port = self.url.removeprefix("http://").rpartition(":")
        self.host, self.port = host, int(port)

    def cpu_ns(self) -> int:
        """The CPU time (user and system, all threads) the relay process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])  # utime and stime
        return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), then wait; kill after the timeout."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class Load:
    """The load generator's worker processes, each with every sender's identity."""

    def __init__(
        self,
        child: RelayChild,
        pairs: Sequence[tuple[Any, Any, Any]],
        processes: int,
    ) -> None:
        self.child = child
        context = multiprocessing.get_context("spawn")
        self.links: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=worker, args=(theirs, RELAY_ID, child.host, child.port, list(pairs))
            )
            process.start()
            theirs.close()
            self.links.append(ours)
            self.processes.append(process)

    def run(self, kind: str, senders: int, cycles: int) -> dict[str, Any]:
        """One run: ``senders`` senders (sender j on worker j mod processes), ``cycles`` in all."""
        each = max(1, cycles // senders)
        jobs: dict[int, list[int]] = {}
        for sender in range(senders):
            jobs.setdefault(sender % len(self.links), []).append(sender)
        for index, members in jobs.items():
            self.links[index].send((kind, members, each))
        for index in jobs:
            if self.links[index].recv() != "ready":
                raise RuntimeError("a load worker failed")
        server_cpu = self.child.cpu_ns()
        for index in jobs:
            self.links[index].send("go")
        parts = [self.links[index].recv() for index in jobs]
        server_cpu = self.child.cpu_ns() - server_cpu
        latencies = [ns for part in parts for ns in part["latencies_ns"]]
        elapsed = max(p["end_ns"] for p in parts) - min(p["start_ns"] for p in parts)
        return {
            "cycles": len(latencies),
            "elapsed_s": elapsed / 1e9,
            "rate": len(latencies) / (elapsed / 1e9),
            "latencies_ns": latencies,
            "errors": sum(p["errors"] for p in parts),
            # busy fractions of one core over the run (several load processes: the busiest)
            "server_cpu": server_cpu / elapsed,
            "load_cpu": max(p["cpu_ns"] / (p["end_ns"] - p["start_ns"]) for p in parts),
        }

    def close(self) -> None:
        for link in self.links:
            with contextlib.suppress(OSError):
                link.send(None)
            link.close()
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


def _percentile(values: Sequence[int], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index] / 1e6


def _summary(runs: list[dict[str, Any]], requests_per_cycle: int) -> dict[str, Any]:
    latencies = [ns for run in runs for ns in run["latencies_ns"]]
    rates = [run["rate"] for run in runs]
    return {
        "rate": statistics.median(rates),
        "rates": rates,
        "requests_per_cycle": requests_per_cycle,
        "cycles": sum(run["cycles"] for run in runs),
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": max(latencies) / 1e6,
        "errors": sum(run["errors"] for run in runs),
        "server_cpu": statistics.median(run["server_cpu"] for run in runs),
        "load_cpu": statistics.median(run["load_cpu"] for run in runs),
    }


@contextlib.contextmanager
def _deployment(levels: Sequence[int]) -> Iterator[tuple[Path, list[tuple[Any, Any, Any]]]]:
    folder = Path(tempfile.mkdtemp(prefix="ncb-bench-relay-"))
    try:
        top = max(levels)
        members = [Member("XP.ncb-coordination", "Coordination", "coordinator")]
        members += [Member(f"ZZ.sender-{i}", f"Sender {i}") for i in range(top)]
        members += [Member(f"ZZ.recipient-{i}", f"Recipient {i}") for i in range(top)]
        members += [Member(f"ZZ.sink-{i}", f"Sink {i}") for i in range(top)]
        deployment = make_deployment(folder, members, now=int(time.time()), relay_id=RELAY_ID)
        ids = deployment.identities
        yield (
            folder,
            [
                (ids[f"ZZ.sender-{i}"], ids[f"ZZ.recipient-{i}"], ids[f"ZZ.sink-{i}"])
                for i in range(top)
            ],
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measure(
    plan: RelayPlan,
    folder: Path,
    pairs: list[tuple[Any, Any, Any]],
    progress: Callable[[str], None],
) -> dict[int, dict[str, dict[str, Any]]]:
    child = RelayChild(folder)
    load = Load(child, pairs, min(load_processes(), max(plan.levels)))
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {
        level: {kind: [] for kind in KINDS} for level in plan.levels
    }
    try:
        for round_index in range(plan.rounds):
            for level in plan.levels:
                shift = round_index % len(KINDS)
                for kind in KINDS[shift:] + KINDS[:shift]:
                    total = plan.cycles[level] if kind == "e2e" else plan.requests[level]
                    run = load.run(kind, level, total)
                    runs[level][kind].append(run)
                    progress(
                        f"relay round {round_index + 1}/{plan.rounds}, {level} senders, {kind}: "
                        f"{run['rate']:,.0f}/s, {run['errors']} errors"
                    )
    finally:
        load.close()
        child.stop()
    return {
        level: {
            kind: _summary(kind_runs, 3 if kind == "e2e" else 1)
            for kind, kind_runs in level_runs.items()
        }
        for level, level_runs in runs.items()
    }


def _profile(
    plan: RelayPlan, folder: Path, pairs: list[tuple[Any, Any, Any]], kinds: Sequence[str]
) -> str:
    """pyinstrument's text for the relay process while it serves ``kinds`` at the top level."""
    output = folder / "relay-profile.txt"
    # a fresh store: on an existing one a relay refuses requests dated before its start
    # plus the request skew (AUTH-12), and the profile would show refusals
    for stale in folder.glob("relay.db*"):
        stale.unlink()
    child = RelayChild(folder, profile=output)
    level = max(plan.levels)
    load = Load(child, pairs, min(load_processes(), level))
    errors = 0
    try:
        for kind in kinds:  # a third of a run's requests: the profiler slows the node
            total = plan.cycles[level] if kind == "e2e" else plan.requests[level]
            errors += load.run(kind, level, max(level, total // 3))["errors"]
    finally:
        load.close()
        child.stop()
    text = output.read_text() if output.exists() else ""
    note = f"{errors} unexpected answers during the profile\n" if errors else ""
    head, banner, functions = text.partition("Profile at ")
    if banner:  # the summary goes after pyinstrument's banner, which the report drops
        banner_line, _, functions = functions.partition("\n")
        text = f"{head}{banner}{banner_line}\n{by_package(functions)}{functions}"
    return note + text


def by_package(flat: str) -> str:
    """A flat pyinstrument profile (own time) summed by top-level package, largest first."""
    totals: dict[str, float] = {}
    for line in flat.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            seconds = float(parts[0])
        except ValueError:
            continue
        where = parts[-1]
        if where == "<built-in>":
            name = parts[1]
            group = "idle (epoll.poll)" if name == "epoll.poll" else f"built-in {name}"
        else:
            group = where.split("/", 1)[0] if "/" in where else where.split(":", 1)[0]
        totals[group] = totals.get(group, 0.0) + seconds
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:12]
    lines = [f"{seconds:8.3f} s {seconds / whole:6.1%}  {group}" for group, seconds in ranked]
    return "own time by package (main thread):\n" + "\n".join(lines) + "\nby function:\n"


def run_relay_bench(
    mode: str, progress: Callable[[str], None], profile: bool
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Measure; the JSON-ready result and the profiles of the misses (case, raw text)."""
    plan = RELAY_PLANS[mode]
    processes = min(load_processes(), max(plan.levels))
    progress(f"relay: levels {plan.levels}, {plan.rounds} rounds, {processes} load process(es)")
    rows: list[dict[str, Any]] = []
    profiles: list[tuple[str, str]] = []
    with _deployment(plan.levels) as (folder, pairs):
        measured = _measure(plan, folder, pairs, progress)
        e2e_level = E2E_P99_LEVEL if E2E_P99_LEVEL in plan.levels else max(plan.levels)
        for level, kinds in measured.items():
            bare, submit, e2e = kinds["bare"], kinds["submit"], kinds["e2e"]
            checks = {"relay_vs_bare": check("relay_vs_bare", submit["rate"] / bare["rate"])}
            if level == e2e_level:
                checks["e2e_p99_ms"] = check("e2e_p99_ms", e2e["p99_ms"])
            rows.append(
                {"senders": level, "bare": bare, "submit": submit, "e2e": e2e, "checks": checks}
            )
        missed = {
            kind
            for row in rows
            for name, outcome in row["checks"].items()
            if not outcome["pass"]
            for kind in (("submit",) if name == "relay_vs_bare" else ("e2e",))
        }
        if profile and missed:
            served = tuple(k for k in ("submit", "e2e") if k in missed)
            case = f"relay node serving {' and '.join(served)} at {max(plan.levels)} senders"
            progress(f"profiling the {case}")
            profiles.append((case, _profile(plan, folder, pairs, served)))
        result = {
            "measured": True,
            "plan": asdict(plan),
            "load_generator": (
                f"bench/relay_load.py: {processes} Python process(es) (asyncio, raw HTTP/1.1 "
                "over keep-alive connections, one per sender; requests sealed and signed "
                "before each run)"
            ),
            "load_processes": processes,
            "server": "anycorn on trio, one process (ncb_relay.relay.launch.run_relay)",
            "storage": f"SQLite, WAL, synchronous=FULL, group commit, on {filesystem_of(folder)}",
            "e2e_p99_level": e2e_level,
            "rows": rows,
        }
    return result, profiles
