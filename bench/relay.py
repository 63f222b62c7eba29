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
import http.client
import json
import multiprocessing
import os
import re
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
from .relay_node import WRITER_PATH
from .report import check

ROOT = Path(__file__).resolve().parents[1]
RELAY_ID = "XP.relay-lyon"
RELAY_PASSPHRASE = "bench relay keystore (throw-away)"  # noqa: S105 - a throw-away deployment
START_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """Concurrency levels, rounds, and requests (cycles for ``e2e``) per run at each level.

    ``log_rounds`` and ``log_requests``: the log's cost (:func:`measure_log_cost`),
    submissions per run of each of the two relays at each level.
    """

    levels: tuple[int, ...]
    rounds: int
    requests: dict[int, int]  # total submissions per run of ``bare`` and ``submit``
    cycles: dict[int, int]  # total submit-fetch-acknowledge cycles per ``e2e`` run
    log_rounds: int
    log_requests: dict[int, int]


RELAY_PLANS = {
    "smoke": RelayPlan((1, 2), 1, {1: 60, 2: 80}, {1: 20, 2: 30}, 1, {1: 30, 2: 40}),
    "short": RelayPlan(
        (1, 8, 32),
        2,
        {1: 200, 8: 1200, 32: 2400},
        {1: 60, 8: 320, 32: 640},
        3,
        {1: 150, 8: 320, 32: 640},
    ),
    "full": RelayPlan(
        (1, 8, 32),
        5,
        {1: 600, 8: 4000, 32: 8000},
        {1: 200, 8: 1200, 32: 2400},
        9,
        {1: 400, 8: 2000, 32: 4000},
    ),
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

    def __init__(
        self,
        folder: Path,
        profile: Path | None = None,
        *,
        database: Path | None = None,
        log: bool = True,
    ) -> None:
        argv = [sys.executable, "-m", "bench.relay_node", str(folder)]
        if profile is not None:
            argv.append(str(profile))
        if not log:
            argv.append("--no-log")
        env = {**os.environ, "NCB_RELAY_PASSPHRASE": RELAY_PASSPHRASE}
        if database is not None:  # the configuration's is folder/relay.db
            env["NCB_RELAY_DATABASE"] = str(database.resolve())
        self.errors = folder / f"relay-{time.monotonic_ns()}.stderr"
        with self.errors.open("wb") as errors:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                argv,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env=env,
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

    def writer(self) -> dict[str, int]:
        """The store's writer thread so far: transactions, jobs, CPU and wall time (ns)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=START_TIMEOUT)
        try:
            connection.request("GET", WRITER_PATH)
            answer = connection.getresponse()
            figures: dict[str, int] = json.loads(answer.read())
        finally:
            connection.close()
        return figures

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
        writer = self.child.writer()
        server_cpu = self.child.cpu_ns()
        for index in jobs:
            self.links[index].send("go")
        parts = [self.links[index].recv() for index in jobs]
        server_cpu = self.child.cpu_ns() - server_cpu
        writer = {name: value - writer[name] for name, value in self.child.writer().items()}
        count = sum(len(p["latencies_ns"]) for p in parts)
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
            # per cycle: the relay's CPU; the store's writer thread: its CPU, its transactions
            "server_cpu_us": server_cpu / max(1, count) / 1e3,
            "writer_cpu_us": writer["cpu_ns"] / max(1, count) / 1e3,
            "commit_ms": writer["wall_ns"] / max(1, writer["batches"]) / 1e6,
            "jobs_per_commit": writer["jobs"] / max(1, writer["batches"]),
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
        **{
            name: statistics.median(run[name] for run in runs)
            for name in ("server_cpu_us", "writer_cpu_us", "commit_ms", "jobs_per_commit")
        },
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
        deployment.write_relay_keystore(RELAY_PASSPHRASE)
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


LOG_VARIANTS = ("with_log", "without_log")


def _fresh_database(folder: Path, name: str) -> Path:
    """A database path in ``folder`` that no relay has used: a fresh store (AUTH-12)."""
    return folder / f"{name}-{time.monotonic_ns()}.db"


def measure_log_cost(
    plan: RelayPlan,
    folder: Path,
    pairs: list[tuple[Any, Any, Any]],
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """The relay's submit rate with its Merkle log and with the log switched off.

    Two relay nodes of the same deployment, each on a fresh store of its own
    (``NCB_RELAY_DATABASE``): the relay as it is, and the bench-only variant
    whose store keeps no log (``--no-log``, bench/relay_node.py).  Both are up
    for the whole measurement and only one is loaded at a time: at each level
    of each round a ``submit`` run on one, then the same run on the other, the
    order alternating.  The figure of a level is the median over rounds of the
    ratio of the two adjacent runs (with / without), which cancels the drift of
    a shared machine; the rates are medians over rounds.
    """
    top = max(plan.levels)
    processes = min(load_processes(), top)
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {
        level: {variant: [] for variant in LOG_VARIANTS} for level in plan.levels
    }
    with contextlib.ExitStack() as stack:
        loads: dict[str, Load] = {}
        for variant in LOG_VARIANTS:
            database = _fresh_database(folder, f"log-cost-{variant}")
            child = RelayChild(folder, database=database, log=variant == "with_log")
            stack.callback(child.stop)
            loads[variant] = Load(child, pairs, processes)
            stack.callback(loads[variant].close)
        for variant in LOG_VARIANTS:  # a warm-up run each, not counted
            loads[variant].run("submit", top, top)
        for round_index in range(plan.log_rounds):
            for position, level in enumerate(plan.levels):
                flip = (round_index + position) % 2
                for variant in LOG_VARIANTS[flip:] + LOG_VARIANTS[:flip]:
                    run = loads[variant].run("submit", level, plan.log_requests[level])
                    runs[level][variant].append(run)
                    progress(
                        f"log cost round {round_index + 1}/{plan.log_rounds}, {level} senders, "
                        f"{variant.replace('_', ' ')}: {run['rate']:,.0f}/s, {run['errors']} errors"
                    )
    rows = []
    for level, variants in runs.items():
        with_log, without_log = variants["with_log"], variants["without_log"]
        ratios = [w["rate"] / o["rate"] for w, o in zip(with_log, without_log, strict=True)]
        rows.append(
            {
                "senders": level,
                "with_log": _summary(with_log, 1),
                "without_log": _summary(without_log, 1),
                "ratios": ratios,
                "check": check("log_cost", statistics.median(ratios)),
            }
        )
    return rows


def _profile(
    plan: RelayPlan, folder: Path, pairs: list[tuple[Any, Any, Any]], kinds: Sequence[str]
) -> tuple[str, str]:
    """Profiles of the relay process while it serves ``kinds`` at the top level.

    pyinstrument's text for the main thread, and cProfile's for the store's
    writer thread (its group-commit transactions).
    """
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
        for kind in kinds:  # a quarter of a run's requests: the profiler slows the node
            total = plan.cycles[level] if kind == "e2e" else plan.requests[level]
            errors += load.run(kind, level, max(level, total // 4))["errors"]
    finally:
        load.close()
        child.stop()
    text = output.read_text() if output.exists() else ""
    writer = output.with_suffix(".writer.txt")
    writer_text = writer.read_text() if writer.exists() else ""
    note = f"{errors} unexpected answers during the profile\n" if errors else ""
    head, banner, functions = text.partition("Profile at ")
    if banner:  # the summary goes after pyinstrument's banner, which the report drops
        banner_line, _, functions = functions.partition("\n")
        text = f"{head}{banner}{banner_line}\n{by_package(functions)}{functions}"
    return note + text, note + _writer_summary(writer_text)


def _writer_summary(text: str) -> str:
    """cProfile's text without its blank lines and directory prefixes."""
    lines = [line.replace(str(ROOT) + "/", "") for line in text.splitlines() if line.strip()]
    return "\n".join(re.sub(r"/\S*/site-packages/", "", line) for line in lines)


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
        log_rows = measure_log_cost(plan, folder, pairs, progress)
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
        top = max(plan.levels)
        log_missed = not all(row["check"]["pass"] for row in log_rows)
        if profile and log_missed:  # submit first: the relay's miss is profiled on it as well
            served = tuple(k for k in ("submit", "e2e") if k == "submit" or k in missed)
        else:
            served = tuple(k for k in ("submit", "e2e") if k in missed)
        if profile and served:
            case = f"relay node serving {' and '.join(served)} at {top} senders"
            progress(f"profiling the {case}")
            main_text, writer_text = _profile(plan, folder, pairs, served)
            if missed:
                profiles.append((case, main_text))
            if log_missed:
                case = (
                    f"log cost: the store's writer thread (cProfile) of the relay node with its "
                    f"log, serving {' and '.join(served)} at {top} senders"
                )
                profiles.append((case, writer_text))
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
            "log_cost": {
                "rounds": plan.log_rounds,
                "requests": plan.log_requests,
                "baseline": (
                    "the same relay node with its store's log switched off "
                    "(bench/relay_node.py --no-log)"
                ),
                "rows": log_rows,
            },
        }
    return result, profiles
