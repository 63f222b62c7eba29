"""Scaling (issue #9, item 3): stored messages, a diffusion to 195 bureaus.

Stored messages (:func:`measure_scaling`).  For each size (1,000 and 30,000
in the short run; 1,000, 100,000 and 1,000,000 in ``--full``) a store is filled before its
relay starts (bench/relay_fill.py: through the store's own ``accept``, the log
included), then one relay node (anycorn/trio) is started on each; its
start-up time (launch to listening, the log's replay included) is kept.  All
nodes stay up and only one is loaded at a time: in each round, at one
concurrency, a ``submit`` run then an ``e2e`` run on each node in turn, the
order of the nodes rotating.  The per-message cost is the relay process's CPU
time per submission and per end-to-end cycle (submit, fetch, acknowledge),
robust to a shared machine's load; its ratio to the smallest store's is taken
per round (adjacent runs) and the median over rounds is checked against the
target.  The requests are dated ``request_skew`` seconds ahead: a relay
restarted on an existing store refuses requests dated before its start plus
the skew (AUTH-12).

Diffusion (:func:`measure_diffusion`).  On the anycorn node of the main
measurement, in each round: the submit rate of a 1 KiB envelope to one
recipient and to 195 (the *archive*, mailboxes nobody reads) at one
concurrency, in adjacent runs; then *fan-outs*: one envelope to 195 bureaus of
the *audience* (and, beside it, to one), after which every recipient fetches
and acknowledges it at once, each on its own connection: the time from the
start of the submission until the last recipient has fetched it.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ncb_relay.identity import Signer
from ncb_relay.relay.app_settings import AppSettings

from .relay_child import RELAY_ID, Load, RelayChild, load_processes, summary
from .relay_fill import fill_store
from .report import check

__all__ = ["Diffusion", "World", "measure_diffusion", "measure_scaling"]


@dataclass(frozen=True, slots=True)
class World:
    """The bench's deployment: its folder, the senders' triples, the diffusion's bureaus."""

    folder: Path
    pairs: list[tuple[Any, Any, Any]]
    audience: list[Any]
    archive: list[Any]
    relay_key: Signer


@dataclass(frozen=True, slots=True)
class Diffusion:
    """The diffusion's plan: recipients, senders and submissions per rate run, fan-outs."""

    width: int
    level: int
    requests: int
    fanouts: int


def measure_diffusion(
    load: Load, plan: Diffusion, rounds: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Submit rates to 1 and ``width`` recipients, and fan-outs to 1 and ``width`` (see above)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in ("one", "many")}
    fanouts: dict[int, list[dict[str, Any]]] = {1: [], plan.width: []}
    kinds = (("one", "submit"), ("many", "diffusion"))
    for round_index in range(rounds):
        flip = round_index % 2
        for name, kind in kinds[flip:] + kinds[:flip]:
            run = load.run(kind, plan.level, plan.requests)
            runs[name].append(run)
            progress(
                f"diffusion round {round_index + 1}/{rounds}, {plan.level} senders, "
                f"{kind}: {run['rate']:,.0f}/s, {run['errors']} errors"
            )
        for width, width_runs in fanouts.items():
            run = load.run("fanout", 1, plan.fanouts, width=width)
            width_runs.append(run)
            progress(
                f"diffusion round {round_index + 1}/{rounds}, fan-out to {width}: "
                f"last fetch after {statistics.median(run['latencies_ns']) / 1e6:,.1f} ms "
                f"(median), {run['errors']} errors"
            )
    one, many = summary(runs["one"], 1), summary(runs["many"], 1)
    return {
        "width": plan.width,
        "level": plan.level,
        "requests": plan.requests,
        "fanouts": plan.fanouts,
        "rounds": rounds,
        "one": one,
        "many": many,
        "rate_ratio": many["rate"] / one["rate"],
        "fanout": {str(width): summary(width_runs, 1) for width, width_runs in fanouts.items()},
    }


SCALED = ("submit", "e2e")


def measure_scaling(
    scaling: dict[str, Any], world: World, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Per-message cost on stores of each size (see the module docstring)."""
    sizes: Sequence[int] = scaling["sizes"]
    level, rounds = int(scaling["level"]), int(scaling["rounds"])
    dated = AppSettings().request_skew
    fills: dict[int, float] = {}
    databases: dict[int, Path] = {}
    for size in sizes:
        databases[size] = world.folder / f"scale-{size}.db"
        progress(f"scaling: filling a store with {size:,} messages")
        fills[size] = fill_store(
            databases[size], relay_id=RELAY_ID, signer=world.relay_key, count=size
        )
        progress(f"scaling: {size:,} messages stored in {fills[size]:.1f} s")
    runs: dict[int, dict[str, list[dict[str, Any]]]] = {
        size: {kind: [] for kind in SCALED} for size in sizes
    }
    nodes: dict[int, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        loads: dict[int, Load] = {}
        children: dict[int, RelayChild] = {}
        for size in sizes:
            child = RelayChild(world.folder, database=databases[size])
            stack.callback(child.stop)
            children[size] = child
            progress(
                f"scaling: the relay on {size:,} stored messages started in {child.start_s:.1f} s"
            )
            loads[size] = Load(child, world.pairs, min(load_processes(), level))
            stack.callback(loads[size].close)
        for round_index in range(rounds):
            shift = round_index % len(sizes)
            for size in (*sizes[shift:], *sizes[:shift]):
                for kind in SCALED:
                    total = scaling["requests"] if kind == "submit" else scaling["cycles"]
                    run = loads[size].run(kind, level, total, dated=dated)
                    runs[size][kind].append(run)
                    progress(
                        f"scaling round {round_index + 1}/{rounds}, {size:,} stored, {kind}: "
                        f"{run['rate']:,.0f}/s, {run['server_cpu_us']:,.0f} us relay CPU each, "
                        f"{run['errors']} errors"
                    )
        for size, child in children.items():
            nodes[size] = {"start_s": child.start_s, "peak_bytes": child.peak_memory()}
    base = sizes[0]
    rows = []
    for size in sizes:
        row: dict[str, Any] = {
            "stored": size,
            "fill_s": fills[size],
            **nodes[size],
            **{kind: summary(runs[size][kind], 3 if kind == "e2e" else 1) for kind in SCALED},
        }
        ratios = {
            kind: [
                run["server_cpu_us"] / first["server_cpu_us"]
                for run, first in zip(runs[size][kind], runs[base][kind], strict=True)
            ]
            for kind in SCALED
        }
        row["ratios"] = ratios
        row["checks"] = (
            {}
            if size == base
            else {kind: check("scaling", statistics.median(ratios[kind])) for kind in SCALED}
        )
        rows.append(row)
    return {
        "sizes": list(sizes),
        "level": level,
        "rounds": rounds,
        "requests": scaling["requests"],
        "cycles": scaling["cycles"],
        "dated": dated,
        "rows": rows,
    }
