"""The relay node in a child process and the load generator's processes, for bench/relay*.py.

:class:`RelayChild` starts ``python -m bench.relay_node`` and reads what the
bench needs from the outside (its CPU time and peak memory from /proc, its
writer thread's clock from ``GET /bench/writer``); :class:`Load` drives the
worker processes of bench/relay_load.py and turns one run into figures;
:func:`summary` pools the runs of one kind.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .relay_load import Job, worker
from .relay_node import WRITER_PATH

ROOT = Path(__file__).resolve().parents[1]
RELAY_ID = "XP.relay-lyon"
RELAY_PASSPHRASE = "bench relay keystore (throw-away)"  # noqa: S105 - a throw-away deployment
START_TIMEOUT = 30.0


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
    """The relay node in a child process; ``url`` once it listens.

    ``start_s`` is the wall time from the process's launch to its ``listening``
    line: the interpreter and imports, the directory and keystore checks, the
    store's opening (its log replayed and checked, one pass over every entry)
    and the server's start.
    """

    def __init__(
        self,
        folder: Path,
        profile: Path | None = None,
        *,
        database: Path | None = None,
        log: bool = True,
        server: str = "anycorn",
    ) -> None:
        argv = [sys.executable, "-m", "bench.relay_node", str(folder)]
        if profile is not None:
            argv.append(str(profile))
        argv += ["--server", server]
        if not log:
            argv.append("--no-log")
        self.server = server
        started = time.perf_counter()
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
        self.start_s = time.perf_counter() - started
        self.url = line[1]
        host, _, port = self.url.removeprefix("http://").rpartition(":")
        self.host, self.port = host, int(port)

    def cpu_ns(self) -> int:
        """The CPU time (user and system, all threads) the relay process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        ticks = int(fields[11]) + int(fields[12])  # utime and stime
        return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")

    def peak_memory(self) -> int:
        """The relay process's peak resident set so far, in bytes (``VmHWM``, /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

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
        *,
        audience: Sequence[Any] = (),
        archive: Sequence[Any] = (),
    ) -> None:
        self.child = child
        context = multiprocessing.get_context("spawn")
        self.links: list[Connection] = []
        self.processes: list[Any] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=worker,
                args=(theirs, RELAY_ID, child.host, child.port, list(pairs)),
                kwargs={"audience": list(audience), "archive": list(archive)},
            )
            process.start()
            theirs.close()
            self.links.append(ours)
            self.processes.append(process)

    def run(
        self, kind: str, senders: int, cycles: int, *, dated: int = 0, width: int = 0
    ) -> dict[str, Any]:
        """One run: ``senders`` senders (sender j on worker j mod processes), ``cycles`` in all.

        ``dated`` and ``width``: see :class:`~bench.relay_load.Job` (a ``fanout``
        run has one sender).
        """
        each = max(1, cycles // senders)
        jobs: dict[int, list[int]] = {}
        for sender in range(senders):
            jobs.setdefault(sender % len(self.links), []).append(sender)
        for index, members in jobs.items():
            self.links[index].send(Job(kind, tuple(members), each, dated, width))
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
        steps = [
            [ns for part in parts for ns in part["steps_ns"][index]]
            for index in range(max(len(part["steps_ns"]) for part in parts))
        ]
        elapsed = max(p["end_ns"] for p in parts) - min(p["start_ns"] for p in parts)
        return {
            "cycles": len(latencies),
            "elapsed_s": elapsed / 1e9,
            "rate": len(latencies) / (elapsed / 1e9),
            "latencies_ns": latencies,
            "steps_ns": steps,
            "submitted_ns": [ns for part in parts for ns in part.get("submitted_ns", [])],
            "acknowledged_ns": [ns for part in parts for ns in part.get("acknowledged_ns", [])],
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


def percentile(values: Sequence[int], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (ns), in ms."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index] / 1e6


def summary(runs: list[dict[str, Any]], requests_per_cycle: int) -> dict[str, Any]:
    """The runs of one kind: the median rate, pooled latencies (ms), medians of the rest."""
    latencies = [ns for run in runs for ns in run["latencies_ns"]]
    rates = [run["rate"] for run in runs]
    steps = [
        [ns for run in runs for ns in run["steps_ns"][index]]
        for index in range(min(len(run["steps_ns"]) for run in runs))
    ]
    extra: dict[str, Any] = {}
    if steps:  # e2e: each step's p50 (submit, fetch, acknowledge)
        extra["steps_p50_ms"] = [percentile(step, 0.50) for step in steps]
    for name in ("submitted_ns", "acknowledged_ns"):  # fanout
        pooled = [ns for run in runs for ns in run[name]]
        if pooled:
            extra[name.replace("_ns", "_p50_ms")] = percentile(pooled, 0.50)
            extra[name.replace("_ns", "_max_ms")] = max(pooled) / 1e6
    return {
        **extra,
        "rate": statistics.median(rates),
        "rates": rates,
        "requests_per_cycle": requests_per_cycle,
        "cycles": sum(run["cycles"] for run in runs),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies) / 1e6,
        "errors": sum(run["errors"] for run in runs),
        "server_cpu": statistics.median(run["server_cpu"] for run in runs),
        # the rate per core of the relay process: rate / its busy fraction of one core
        "per_core": statistics.median(run["rate"] / max(run["server_cpu"], 1e-9) for run in runs),
        "load_cpu": statistics.median(run["load_cpu"] for run in runs),
        **{
            name: statistics.median(run[name] for run in runs)
            for name in ("server_cpu_us", "writer_cpu_us", "commit_ms", "jobs_per_commit")
        },
    }
