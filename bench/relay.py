"""Relay throughput and latency (issue #9, items 2 and 3), each beside the bare ceiling.

Two relay nodes run in child processes (bench/relay_node.py, SQLite with
``synchronous=FULL`` and group commit, each on a fresh store of one
:func:`~ncb_relay.demo.deployment.make_deployment` folder): the reference
relay on anycorn/trio, and the same relay on uvicorn with httptools and
uvloop (bench/uvicorn_server.py).  The load comes from separate worker
processes (bench/relay_load.py), closed loop, one connection per sender.  At
each concurrency the three kinds of run (``bare``, ``submit``, ``e2e``)
alternate, in an order that rotates from round to round, each on one server
then the other (the order alternating); only one node is loaded at a time.
The rate of a kind is the median over rounds, its latencies are pooled over
rounds.  The diffusion to 195 bureaus (bench/relay_scaling.py) runs on the
anycorn node after the rounds; the scaling over stored messages and the log's
cost run on nodes of their own.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ncb_relay.demo.deployment import Member, make_deployment

from .relay_child import (
    RELAY_ID,
    RELAY_PASSPHRASE,
    ROOT,
    Load,
    RelayChild,
    filesystem_of,
    load_processes,
    summary,
)
from .relay_load import KINDS
from .relay_scaling import Diffusion, World, measure_diffusion, measure_scaling
from .report import check

SERVERS = ("anycorn", "uvicorn")
SERVER_NAMES = {
    "anycorn": "anycorn on trio (ncb_relay.relay.runtime.serve)",
    "uvicorn": "uvicorn with httptools on uvloop, under asyncio (bench/uvicorn_server.py)",
}


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """Concurrency levels, rounds, and requests (cycles for ``e2e``) per run at each level.

    ``log_rounds`` and ``log_requests``: the log's cost (:func:`measure_log_cost`),
    submissions per run of each of the two relays at each level.  ``scaling``
    and ``diffusion``: bench/relay_scaling.py.
    """

    levels: tuple[int, ...]
    rounds: int
    requests: dict[int, int]  # total submissions per run of ``bare`` and ``submit``
    cycles: dict[int, int]  # total submit-fetch-acknowledge cycles per ``e2e`` run
    log_rounds: int
    log_requests: dict[int, int]
    scaling: dict[str, Any]  # sizes, level, rounds, requests, cycles
    diffusion: dict[str, Any]  # width, level, requests, fanouts


RELAY_PLANS = {
    "smoke": RelayPlan(
        (1, 2),
        1,
        {1: 60, 2: 80},
        {1: 20, 2: 30},
        1,
        {1: 30, 2: 40},
        {"sizes": (100, 1000), "level": 2, "rounds": 1, "requests": 40, "cycles": 20},
        {"width": 5, "level": 2, "requests": 20, "fanouts": 2},
    ),
    "short": RelayPlan(  # cut to stay near two minutes since uvicorn, scaling and diffusion
        (1, 8, 32),
        2,
        {1: 150, 8: 400, 32: 800},
        {1: 40, 8: 120, 32: 240},
        2,
        {1: 150, 8: 240, 32: 480},
        {"sizes": (1000, 30_000), "level": 8, "rounds": 2, "requests": 240, "cycles": 80},
        {"width": 195, "level": 8, "requests": 48, "fanouts": 2},
    ),
    "full": RelayPlan(
        (1, 8, 32),
        5,
        {1: 600, 8: 4000, 32: 8000},
        {1: 200, 8: 1200, 32: 2400},
        9,
        {1: 400, 8: 2000, 32: 4000},
        {
            "sizes": (1000, 100_000, 1_000_000),
            "level": 8,
            "rounds": 5,
            "requests": 1000,
            "cycles": 400,
        },
        {"width": 195, "level": 8, "requests": 400, "fanouts": 10},
    ),
}
E2E_P99_LEVEL = 32  # the end-to-end latency target is set at 32 senders


@contextlib.contextmanager
def _deployment(levels: Sequence[int], width: int) -> Iterator[World]:
    """A throw-away deployment: senders, their recipients and sinks, and 2 x ``width`` bureaus.

    The *audience* bureaus receive the fan-outs and read them; the *archive*
    bureaus receive the diffusions of the rate runs and are never read.
    """
    folder = Path(tempfile.mkdtemp(prefix="ncb-bench-relay-"))
    try:
        top = max(levels)
        members = [Member("XP.ncb-coordination", "Coordination", "coordinator")]
        members += [Member(f"ZZ.sender-{i}", f"Sender {i}") for i in range(top)]
        members += [Member(f"ZZ.recipient-{i}", f"Recipient {i}") for i in range(top)]
        members += [Member(f"ZZ.sink-{i}", f"Sink {i}") for i in range(top)]
        members += [Member(f"ZZ.audience-{i}", f"Audience {i}") for i in range(width)]
        members += [Member(f"ZZ.archive-{i}", f"Archive {i}") for i in range(width)]
        deployment = make_deployment(folder, members, now=int(time.time()), relay_id=RELAY_ID)
        deployment.write_relay_keystore(RELAY_PASSPHRASE)
        ids = deployment.identities
        yield World(
            folder=folder,
            pairs=[
                (ids[f"ZZ.sender-{i}"], ids[f"ZZ.recipient-{i}"], ids[f"ZZ.sink-{i}"])
                for i in range(top)
            ],
            audience=[ids[f"ZZ.audience-{i}"] for i in range(width)],
            archive=[ids[f"ZZ.archive-{i}"] for i in range(width)],
            relay_key=deployment.relay_key,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _measure(
    plan: RelayPlan, world: World, progress: Callable[[str], None]
) -> tuple[dict[str, dict[int, dict[str, dict[str, Any]]]], dict[str, Any], dict[str, Any]]:
    """Both servers side by side; then the diffusion on anycorn.

    Returns the summaries (server, level, kind), the diffusion's figures and,
    per server, the node's start-up time and peak memory.
    """
    processes = min(load_processes(), max(plan.levels))
    runs: dict[str, dict[int, dict[str, list[dict[str, Any]]]]] = {
        server: {level: {kind: [] for kind in KINDS} for level in plan.levels} for server in SERVERS
    }
    nodes: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        loads: dict[str, Load] = {}
        children: dict[str, RelayChild] = {}
        for server in SERVERS:
            database = _fresh_database(world.folder, server)
            child = RelayChild(world.folder, database=database, server=server)
            stack.callback(child.stop)
            children[server] = child
            loads[server] = Load(
                child, world.pairs, processes, audience=world.audience, archive=world.archive
            )
            stack.callback(loads[server].close)
        for round_index in range(plan.rounds):
            for position, level in enumerate(plan.levels):
                shift = round_index % len(KINDS)
                for kind in KINDS[shift:] + KINDS[:shift]:
                    flip = (round_index + position) % 2
                    for server in SERVERS[flip:] + SERVERS[:flip]:
                        total = plan.cycles[level] if kind == "e2e" else plan.requests[level]
                        run = loads[server].run(kind, level, total)
                        runs[server][level][kind].append(run)
                        progress(
                            f"relay round {round_index + 1}/{plan.rounds}, {server}, "
                            f"{level} senders, {kind}: {run['rate']:,.0f}/s, "
                            f"{run['errors']} errors"
                        )
        diffusion = measure_diffusion(
            loads["anycorn"], Diffusion(**plan.diffusion), plan.rounds, progress
        )
        for server, child in children.items():
            nodes[server] = {"start_s": child.start_s, "peak_bytes": child.peak_memory()}
    summaries = {
        server: {
            level: {
                kind: summary(kind_runs, 3 if kind == "e2e" else 1)
                for kind, kind_runs in level_runs.items()
            }
            for level, level_runs in server_runs.items()
        }
        for server, server_runs in runs.items()
    }
    return summaries, diffusion, nodes


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
                "with_log": summary(with_log, 1),
                "without_log": summary(without_log, 1),
                "ratios": ratios,
                "check": check("log_cost", statistics.median(ratios)),
            }
        )
    return rows


def _profile(
    plan: RelayPlan,
    folder: Path,
    pairs: list[tuple[Any, Any, Any]],
    kinds: Sequence[str],
    server: str = "anycorn",
) -> tuple[str, str]:
    """Profiles of the relay process (on ``server``) while it serves ``kinds`` at the top level.

    pyinstrument's text for the main thread, and cProfile's for the store's
    writer thread (its group-commit transactions).
    """
    output = folder / f"relay-profile-{server}.txt"
    # a fresh store: on an existing one a relay refuses requests dated before its start
    # plus the request skew (AUTH-12), and the profile would show refusals
    database = _fresh_database(folder, f"profile-{server}")
    child = RelayChild(folder, profile=output, database=database, server=server)
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
    return note + text, note + _writersummary(writer_text)


def _writersummary(text: str) -> str:
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


def _rows(
    measured: dict[str, dict[int, dict[str, dict[str, Any]]]], e2e_level: int, top: int
) -> list[dict[str, Any]]:
    rows = []
    for level, kinds in measured["anycorn"].items():
        bare, submit, e2e = kinds["bare"], kinds["submit"], kinds["e2e"]
        checks = {"relay_vs_bare": check("relay_vs_bare", submit["rate"] / bare["rate"])}
        if level == e2e_level:
            checks["e2e_p99_ms"] = check("e2e_p99_ms", e2e["p99_ms"])
        uvicorn = measured["uvicorn"][level]
        uvicorn_checks = {
            "relay_vs_bare": check(
                "relay_vs_bare", uvicorn["submit"]["rate"] / uvicorn["bare"]["rate"]
            )
        }
        if level == top:
            uvicorn_checks["uvicorn_per_core"] = check(
                "uvicorn_per_core", uvicorn["submit"]["per_core"]
            )
        rows.append(
            {
                "senders": level,
                "bare": bare,
                "submit": submit,
                "e2e": e2e,
                "checks": checks,
                "uvicorn": {**uvicorn, "checks": uvicorn_checks},
            }
        )
    return rows


def run_relay_bench(
    mode: str, progress: Callable[[str], None], profile: bool
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Measure; the JSON-ready result and the profiles of the misses (case, raw text)."""
    plan = RELAY_PLANS[mode]
    processes = min(load_processes(), max(plan.levels))
    progress(f"relay: levels {plan.levels}, {plan.rounds} rounds, {processes} load process(es)")
    profiles: list[tuple[str, str]] = []
    top = max(plan.levels)
    with _deployment(plan.levels, plan.diffusion["width"]) as world:
        folder, pairs = world.folder, world.pairs
        measured, diffusion, nodes = _measure(plan, world, progress)
        log_rows = measure_log_cost(plan, folder, pairs, progress)
        scaling = measure_scaling(plan.scaling, world, progress)
        e2e_level = E2E_P99_LEVEL if E2E_P99_LEVEL in plan.levels else top
        rows = _rows(measured, e2e_level, top)
        missed = {
            kind
            for row in rows
            for name, outcome in row["checks"].items()
            if not outcome["pass"]
            for kind in (("submit",) if name == "relay_vs_bare" else ("e2e",))
        }
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
        per_core = rows[-1]["uvicorn"]["checks"]["uvicorn_per_core"]
        if profile and not per_core["pass"]:
            case = f"relay node on uvicorn + uvloop serving submit at {top} senders"
            progress(f"profiling the {case}")
            main_text, writer_text = _profile(plan, folder, pairs, ("submit",), "uvicorn")
            profiles.append((case, main_text))
            profiles.append((f"{case}: the store's writer thread (cProfile)", writer_text))
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
            "servers": SERVER_NAMES,
            "storage": f"SQLite, WAL, synchronous=FULL, group commit, on {filesystem_of(folder)}",
            "e2e_p99_level": e2e_level,
            "rows": rows,
            "nodes": nodes,
            "diffusion": diffusion,
            "scaling": scaling,
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
