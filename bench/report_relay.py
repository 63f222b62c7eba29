"""The relay's sections of docs/benchmarks.md (bench/relay.py's result): tables and their prose."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "RELAY_NOT_MEASURED",
    "lines_diffusion",
    "lines_log_cost",
    "lines_relay",
    "lines_scaling",
    "relay_misses",
]

RELAY_NOT_MEASURED = (
    "Relay throughput and scaling (issue #9, items 2 and 3) are not measured yet: "
    "the suite has no relay benchmark, and no figures are given for them."
)


def _verdict(result: dict[str, Any], digits: int = 2) -> str:
    word = "PASS" if result["pass"] else "**MISS**"
    return f"{result['value']:.{digits}f}x {word}"


def _ms(value: float) -> str:
    return f"{value:,.2f}"


def _busy(row: dict[str, Any], name: str) -> str:
    return " / ".join(f"{row[kind][name]:.0%}" for kind in ("bare", "submit", "e2e"))


def lines_relay(relay: dict[str, Any]) -> Iterable[str]:
    if not relay.get("measured"):
        yield relay.get("note", RELAY_NOT_MEASURED)
        return
    plan = relay["plan"]
    yield (
        "One relay node (`bench/relay_node.py`: "
        f"{relay['server']}; {relay['storage']}) serves, in the same process and run, "
        "the relay API and a bare endpoint (`POST /bench/bare`, 202 once it has read the "
        "body, behind the same middleware): the *bare* columns are the ceiling of that "
        "server with these settings. "
        f"Load generator: {relay['load_generator']}; closed loop, one connection per sender. "
        f"Bare, submit and end-to-end runs alternate, {plan['rounds']} round(s) per "
        "concurrency; rates are medians over rounds, latencies pooled over rounds. "
        "*submit* is `POST /v1/messages` of a fresh 1 KiB envelope to one recipient; "
        "*end-to-end* is a cycle of submit, fetch (`GET /v1/mailbox`) and acknowledge by the "
        "recipient, its latency the whole cycle's. The bare ceiling is also a floor for the "
        "load generator's own ceiling: it sent at that rate. The per-bureau rate limit "
        "(50 requests/s) is lifted and the quotas raised in the benchmark's node only. "
        "The CPU columns are the busy fraction of one core over each run (median over rounds): "
        "the relay process (all its threads, from /proc) and the busiest load process; a load "
        "process well under 100% was not the bottleneck."
    )
    yield ""
    yield (
        "| Senders | bare req/s | bare p50 / p99 ms | submit req/s | submit p50 / p99 ms "
        "| submit / bare (≥ 0.70) | end-to-end cycles/s | end-to-end p50 / p99 ms "
        "| end-to-end p99 (< 25 ms) | errors | relay CPU bare / submit / e2e "
        "| load CPU bare / submit / e2e |"
    )
    yield "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for row in relay["rows"]:
        bare, submit, e2e, checks = row["bare"], row["submit"], row["e2e"], row["checks"]
        p99 = checks.get("e2e_p99_ms")
        p99_text = ""
        if p99 is not None:
            p99_text = f"{p99['value']:.1f} ms {'PASS' if p99['pass'] else '**MISS**'}"
        errors = bare["errors"] + submit["errors"] + e2e["errors"]
        yield (
            f"| {row['senders']} | {bare['rate']:,.0f} | {_ms(bare['p50_ms'])} / "
            f"{_ms(bare['p99_ms'])} | {submit['rate']:,.0f} | {_ms(submit['p50_ms'])} / "
            f"{_ms(submit['p99_ms'])} | {_verdict(checks['relay_vs_bare'])} "
            f"| {e2e['rate']:,.0f} | {_ms(e2e['p50_ms'])} / {_ms(e2e['p99_ms'])} "
            f"| {p99_text} | {errors} | {_busy(row, 'server_cpu')} | {_busy(row, 'load_cpu')} |"
        )
    yield ""
    yield from _lines_servers(relay)
    yield ""
    yield "Not measured: scaling over several relay processes."


def _mb(value: float) -> str:
    return f"{value / 2**20:,.0f}"


def _lines_servers(relay: dict[str, Any]) -> Iterable[str]:
    servers = relay["servers"]
    yield (
        "The same relay application, store and settings on two servers, side by side in this "
        f"run: *anycorn* ({servers['anycorn']}, the relay's own) and *uvicorn* "
        f"({servers['uvicorn']}, passed to `run_relay` as its `server`). Each node has a fresh "
        "store of its own; at each concurrency and kind, a run on one then the same run on the "
        "other, the order alternating, so only one node is loaded at a time. The table above is "
        "the anycorn node's. *per core* is the submit rate divided by the relay process's busy "
        "fraction of one core (CPU time of all its threads over the run, from /proc; median "
        "over rounds): what one core would do if the relay kept it busy."
    )
    yield ""
    yield (
        "| Server, senders | bare req/s | submit req/s | submit p50 / p99 ms "
        "| submit / bare (≥ 0.70) | end-to-end cycles/s | end-to-end p50 / p99 ms "
        "| relay CPU bare / submit / e2e | relay CPU µs / submit | submits/s per core "
        "| per core (≥ 10,000/s) | errors |"
    )
    yield "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for row in relay["rows"]:
        senders = f"{row['senders']} sender{'s' if row['senders'] != 1 else ''}"
        for server, figures, checks in (
            ("anycorn", row, row["checks"]),
            ("uvicorn", row["uvicorn"], row["uvicorn"]["checks"]),
        ):
            bare, submit, e2e = figures["bare"], figures["submit"], figures["e2e"]
            per_core = checks.get("uvicorn_per_core")
            verdict = ""
            if per_core is not None:
                word = "PASS" if per_core["pass"] else "**MISS**"
                verdict = f"{per_core['value']:,.0f}/s {word}"
            errors = bare["errors"] + submit["errors"] + e2e["errors"]
            ratio = (
                _verdict(checks["relay_vs_bare"])
                if "relay_vs_bare" in checks
                else f"{submit['rate'] / bare['rate']:.2f}x"
            )
            yield (
                f"| {server}, {senders} | {bare['rate']:,.0f} | {submit['rate']:,.0f} "
                f"| {_ms(submit['p50_ms'])} / {_ms(submit['p99_ms'])} | {ratio} "
                f"| {e2e['rate']:,.0f} | {_ms(e2e['p50_ms'])} / {_ms(e2e['p99_ms'])} "
                f"| {_busy(figures, 'server_cpu')} | {submit['server_cpu_us']:,.0f} "
                f"| {submit['per_core']:,.0f} | {verdict} | {errors} |"
            )


def lines_diffusion(relay: dict[str, Any]) -> Iterable[str]:
    """The diffusion's table: 1 recipient beside ``width``."""
    diffusion = relay.get("diffusion") if relay.get("measured") else None
    if not diffusion:
        yield "Not measured in this run (the relay benchmark did not run)."
        return
    width, level = diffusion["width"], diffusion["level"]
    yield (
        f"On the anycorn node above, after its rounds, in each of {diffusion['rounds']} "
        f"round(s): {diffusion['requests']} submissions by {level} senders of a 1 KiB "
        f"envelope to one recipient, and the same to {width} bureaus (mailboxes nobody "
        "reads), in adjacent runs; then "
        f"{diffusion['fanouts']} fan-out(s) to {width} bureaus and as many to one: one "
        "sender submits, then every recipient, each on its own connection and all at once, "
        "fetches its mailbox and acknowledges the message (one load process drives them all). "
        "*last fetch* is the time from the start of the submission until the last recipient "
        "had its fetch answered; *last ack* until its acknowledgement was. Submit figures "
        "are medians over rounds (latencies pooled); fan-out figures are over all fan-outs. "
        f"A {width}-recipient submission runs at {diffusion['rate_ratio']:.2f}x the rate of a "
        "one-recipient one."
    )
    yield ""
    yield (
        f"| Recipients | submit req/s ({level} senders) | submit p50 / p99 ms "
        "| relay CPU µs / submit | writer CPU µs / submit | fan-out: submit p50 ms "
        "| last fetch p50 / max ms | last ack p50 / max ms | errors |"
    )
    yield "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    for label, submit, fanout in (
        ("1 recipient", diffusion["one"], diffusion["fanout"]["1"]),
        (f"{width} recipients", diffusion["many"], diffusion["fanout"][str(width)]),
    ):
        errors = submit["errors"] + fanout["errors"]
        yield (
            f"| {label} | {submit['rate']:,.0f} | {_ms(submit['p50_ms'])} / "
            f"{_ms(submit['p99_ms'])} | {submit['server_cpu_us']:,.0f} "
            f"| {submit['writer_cpu_us']:,.0f} | {_ms(fanout['submitted_p50_ms'])} "
            f"| {_ms(fanout['p50_ms'])} / {_ms(fanout['max_ms'])} "
            f"| {_ms(fanout['acknowledged_p50_ms'])} / {_ms(fanout['acknowledged_max_ms'])} "
            f"| {errors} |"
        )


def lines_scaling(relay: dict[str, Any]) -> Iterable[str]:
    """Per-message cost, start-up time and memory at each number of stored messages."""
    scaling = relay.get("scaling") if relay.get("measured") else None
    if not scaling:
        yield "Not measured in this run (the relay benchmark did not run)."
        return
    sizes = ", ".join(f"{size:,}" for size in scaling["sizes"])
    yield (
        f"A store per size ({sizes} messages, 1 KiB each, queued for 195 mailboxes nobody "
        "reads) is filled before its relay starts, through the store's own `accept` with the "
        "log (`bench/relay_fill.py`: 2,000 messages and one signed checkpoint per "
        "transaction); then one anycorn relay node per store. *start* is the time from the "
        "node's launch to its listening: the interpreter and imports (about a second), and "
        "the store's opening, which replays and checks the whole log. The nodes stay up and "
        f"only one is loaded at a time: in each of {scaling['rounds']} round(s), at "
        f"{scaling['level']} senders, {scaling['requests']} submissions then "
        f"{scaling['cycles']} end-to-end cycles on each node in turn. The cost of a message "
        "is the relay process's CPU time per submission and per end-to-end cycle (submit, "
        "fetch, acknowledge); *vs fewest* is the median over rounds of its ratio to the "
        "smallest store's in the same round. *fetch p50* is the fetch step of the "
        f"cycles. Requests are dated {scaling['dated']} s ahead (AUTH-12: a relay "
        "restarted on an existing store refuses requests dated before its start plus the "
        "skew). 1,000,000 stored messages are in `--full` only: filling that store takes "
        "2-2.5 minutes here, more than the short run's whole budget."
    )
    yield ""
    yield (
        "| Stored messages | fill s | relay start s | relay peak RSS MB | submit req/s "
        "| submit p50 / p99 ms | relay CPU µs / submit | vs fewest (≤ 1.2x) "
        "| end-to-end cycles/s | fetch p50 ms | relay CPU µs / cycle | vs fewest (≤ 1.2x) "
        "| errors |"
    )
    yield "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for row in scaling["rows"]:
        submit, e2e, checks = row["submit"], row["e2e"], row["checks"]
        marks = {
            kind: _verdict(checks[kind]) if kind in checks else "(baseline)"
            for kind in ("submit", "e2e")
        }
        fetch = e2e.get("steps_p50_ms", [0.0, 0.0])[1]
        yield (
            f"| {row['stored']:,} | {row['fill_s']:.1f} | {row['start_s']:.1f} "
            f"| {_mb(row['peak_bytes'])} | {submit['rate']:,.0f} | {_ms(submit['p50_ms'])} / "
            f"{_ms(submit['p99_ms'])} | {submit['server_cpu_us']:,.0f} | {marks['submit']} "
            f"| {e2e['rate']:,.0f} | {_ms(fetch)} | {e2e['server_cpu_us']:,.0f} "
            f"| {marks['e2e']} | {submit['errors'] + e2e['errors']} |"
        )
    nodes = relay.get("nodes", {})
    if nodes:
        yield ""
        memory = "; ".join(
            f"{server} {_mb(node['peak_bytes'])} MB (started in {node['start_s']:.1f} s)"
            for server, node in nodes.items()
        )
        yield (
            "Peak memory (`VmHWM` from /proc, read before each node stops) of the two nodes "
            f"of the throughput table, after all their runs (anycorn's include the diffusion): "
            f"{memory}."
        )


def relay_misses(relay: dict[str, Any]) -> list[str]:
    """One line per missed relay target, for the page's summary."""
    if not relay.get("measured"):
        return []
    misses = [
        f"relay {row['senders']} senders: {name}"
        for row in relay["rows"]
        for name, outcome in row["checks"].items()
        if not outcome["pass"]
    ]
    misses += [
        f"uvicorn {row['senders']} senders: {name}"
        for row in relay["rows"]
        for name, outcome in row.get("uvicorn", {}).get("checks", {}).items()
        if not outcome["pass"]
    ]
    misses += [
        f"log cost at {row['senders']} senders"
        for row in relay.get("log_cost", {}).get("rows", [])
        if not row["check"]["pass"]
    ]
    misses += [
        f"scaling at {row['stored']:,} stored: {kind}"
        for row in relay.get("scaling", {}).get("rows", [])
        for kind, outcome in row["checks"].items()
        if not outcome["pass"]
    ]
    return misses


def _pair(row: dict[str, Any], name: str, digits: int) -> str:
    """``with / without`` of one figure of a log-cost row (empty if either lacks it)."""
    high, low = row["with_log"].get(name), row["without_log"].get(name)
    if high is None or low is None:
        return ""
    return f"{high:,.{digits}f} / {low:,.{digits}f}"


def lines_log_cost(relay: dict[str, Any]) -> Iterable[str]:
    cost = relay.get("log_cost") if relay.get("measured") else None
    if not cost:
        yield "Not measured in this run (the relay benchmark did not run)."
        return
    requests = ", ".join(f"{n:,} at {level}" for level, n in cost["requests"].items())
    yield (
        "Issue #7: appending every accepted envelope to the Merkle log, signing one checkpoint "
        "per group-commit transaction, reading an inclusion proof per acceptance and signing a "
        "receipt per 202 must not cost more than 10% of the relay's submit rate. Two more relay "
        "nodes of the same deployment, each on a fresh store of its own, run side by side in "
        f"this run: the relay as it is (*with log*) and {cost['baseline']} (*without log*: "
        "no entry, node or checkpoint written, no checkpoint or receipt signed, no proof "
        "read; the 202 carries `logIndex` alone). Only one is loaded at a time: at each "
        f"concurrency of each of {cost['rounds']} round(s), a submit run on one, then the same "
        "run on the other, the order alternating; submissions per run: "
        f"{requests} senders. *with / without* is the median over rounds of the ratio of the "
        "two adjacent runs (robust to a shared machine's drift); rates are medians over "
        "rounds, latencies pooled. The last four columns (with / without, medians over rounds) "
        "say where a difference comes from: the relay process's CPU per submission (all "
        "threads), the part of it spent in the store's writer thread (the group-commit "
        "transactions: the inserts, the log's appends, checkpoint and proofs), the wall time "
        "of one transaction including its commit (`synchronous=FULL`: an fsync) and the "
        "submissions per transaction (`GET /bench/writer`, bench/relay_node.py)."
    )
    yield ""
    yield (
        "| Senders | with log req/s | with log p50 / p99 ms | without log req/s "
        "| without log p50 / p99 ms | with / without (≥ 0.90) | ratio per round | errors "
        "| relay CPU µs / submit | writer CPU µs / submit | ms / transaction "
        "| submits / transaction |"
    )
    yield "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for row in cost["rows"]:
        with_log, without_log = row["with_log"], row["without_log"]
        senders = f"{row['senders']} sender{'s' if row['senders'] != 1 else ''}"
        ratios = " ".join(f"{ratio:.2f}" for ratio in row["ratios"])
        errors = with_log["errors"] + without_log["errors"]

        yield (
            f"| {senders} | {with_log['rate']:,.0f} | {_ms(with_log['p50_ms'])} / "
            f"{_ms(with_log['p99_ms'])} | {without_log['rate']:,.0f} "
            f"| {_ms(without_log['p50_ms'])} / {_ms(without_log['p99_ms'])} "
            f"| {_verdict(row['check'])} | {ratios} | {errors} | {_pair(row, 'server_cpu_us', 0)} "
            f"| {_pair(row, 'writer_cpu_us', 0)} | {_pair(row, 'commit_ms', 2)} "
            f"| {_pair(row, 'jobs_per_commit', 1)} |"
        )
