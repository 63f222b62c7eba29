"""Interleaved, repeated timing of several callables in one process.

Every callable is warmed up, then given a batch size so that one batch lasts
about ``batch_ns``.  Each round times one batch of every callable, in an order
rotated from round to round, so that drift in the machine's speed (other jobs,
frequency scaling) lands on all candidates alike.  The garbage collector runs
once before each round and is off while a batch runs.  The result of a
callable is the median over rounds of its time per call, with the quartiles
and the minimum as the spread.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Plan", "Stats", "measure"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How hard to measure: rounds, the length of one batch and the warm-up calls."""

    rounds: int
    batch_ns: int
    warmup: int


@dataclass(frozen=True, slots=True)
class Stats:
    """Nanoseconds per call over ``rounds`` batches of ``batch`` calls each."""

    median_ns: float
    p25_ns: float
    p75_ns: float
    min_ns: float
    rounds: int
    batch: int

    @property
    def median_us(self) -> float:
        return self.median_ns / 1000

    def spread_percent(self) -> float:
        """The interquartile range as a percentage of the median."""
        return 100 * (self.p75_ns - self.p25_ns) / self.median_ns if self.median_ns else 0.0


def _once_ns(function: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    function()
    return time.perf_counter_ns() - start


def _summary(samples: list[float], batch: int) -> Stats:
    if len(samples) >= 2:
        p25, _, p75 = statistics.quantiles(samples, n=4, method="inclusive")
    else:
        p25 = p75 = samples[0]
    return Stats(
        median_ns=statistics.median(samples),
        p25_ns=p25,
        p75_ns=p75,
        min_ns=min(samples),
        rounds=len(samples),
        batch=batch,
    )


def measure(candidates: Mapping[str, Callable[[], object]], plan: Plan) -> dict[str, Stats]:
    """Time every candidate, interleaved; return its statistics by name."""
    names = list(candidates)
    batches: dict[str, int] = {}
    for name in names:
        function = candidates[name]
        for _ in range(plan.warmup):
            function()
        if plan.batch_ns <= 0:  # one call per batch: no calibration needed
            batches[name] = 1
            continue
        single = min(_once_ns(function) for _ in range(3))
        batches[name] = max(1, math.ceil(plan.batch_ns / max(single, 1)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    enabled = gc.isenabled()
    try:
        for round_index in range(plan.rounds):
            shift = round_index % len(names)
            gc.collect()
            for name in names[shift:] + names[:shift]:
                function, batch = candidates[name], batches[name]
                gc.disable()
                start = time.perf_counter_ns()
                for _ in range(batch):
                    function()
                elapsed = time.perf_counter_ns() - start
                if enabled:
                    gc.enable()
                samples[name].append(elapsed / batch)
    finally:
        if enabled:
            gc.enable()
    return {name: _summary(samples[name], batches[name]) for name in names}
