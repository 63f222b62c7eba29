"""The JSON result and the Markdown page (docs/benchmarks.md).

The page is regenerated on every run except for the block between
``NOTES_BEGIN`` and ``NOTES_END``, which holds the hand-written explanation of
the misses and is carried over from the previous page.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "NOTES_BEGIN",
    "NOTES_END",
    "RELAY_NOT_MEASURED",
    "TARGETS",
    "machine_info",
    "render_markdown",
    "write_json",
    "write_markdown",
]

NOTES_BEGIN = "<!-- bench:notes:begin (hand-written; python -m bench keeps this block) -->"
NOTES_END = "<!-- bench:notes:end -->"
DEFAULT_NOTES = (
    "No notes yet: explain each MISS here, with the profile that shows where the time goes."
)

TARGETS: dict[str, dict[str, Any]] = {
    "vs_lower_bound": {
        "text": "seal and open within 1.25x of the lower bound",
        "bound": 1.25,
        "kind": "at most",
    },
    "vs_jose": {
        "text": "at least 1.4x faster than joserfc (joserfc time / ours)",
        "bound": 1.4,
        "kind": "at least",
    },
    "size_vs_jose": {
        "text": "at most 0.6x the size of joserfc on the wire (ours / joserfc)",
        "bound": 0.6,
        "kind": "at most",
    },
    "relay_vs_bare": {
        "text": "relay submit rate at least 70% of its server's bare ceiling (synchronous=FULL)",
        "bound": 0.7,
        "kind": "at least",
    },
    "e2e_p99_ms": {
        "text": "end-to-end (submit, deliver, acknowledge) p99 under 25 ms at 32 senders",
        "bound": 25.0,
        "kind": "at most",
    },
    "log_cost": {
        "text": (
            "log costs at most 10% of submit throughput (submit rate with the Merkle log / "
            "without it, issue #7)"
        ),
        "bound": 0.9,
        "kind": "at least",
    },
    "log_audit_s": {
        "text": (
            "the audit verifies the log of a relay that has served 100,000 messages in under "
            "a minute (issue #7)"
        ),
        "bound": 60.0,
        "kind": "at most",
    },
}

RELAY_NOT_MEASURED = (
    "Relay throughput and scaling (issue #9, items 2 and 3) are not measured yet: "
    "the suite has no relay benchmark, and no figures are given for them."
)

LIBRARIES = ("ncb-relay", "pynacl", "msgpack", "joserfc", "cryptography", "pyinstrument")


def check(target: str, value: float) -> dict[str, Any]:
    """A figure against one of :data:`TARGETS`: the value, the bound and PASS or MISS."""
    spec = TARGETS[target]
    bound = float(spec["bound"])
    passed = value <= bound if spec["kind"] == "at most" else value >= bound
    return {"value": value, "bound": bound, "kind": spec["kind"], "pass": passed}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, Python, library versions and the date of the run."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")


def _us(stats: dict[str, Any]) -> str:
    return f"{stats['median_ns'] / 1000:,.1f}"


def _spread(stats: dict[str, Any]) -> str:
    low, high = stats["p25_ns"] / 1000, stats["p75_ns"] / 1000
    return f"{low:,.1f}-{high:,.1f}"


def _verdict(result: dict[str, Any], digits: int = 2) -> str:
    word = "PASS" if result["pass"] else "**MISS**"
    return f"{result['value']:.{digits}f}x {word}"


def _payload(size: int) -> str:
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def _existing_notes(path: Path) -> str:
    try:
        text = path.read_text()
    except OSError:
        return DEFAULT_NOTES
    start, end = text.find(NOTES_BEGIN), text.find(NOTES_END)
    if start < 0 or end < start:
        return DEFAULT_NOTES
    return text[start + len(NOTES_BEGIN) : end].strip() or DEFAULT_NOTES


def _lines_machine(machine: dict[str, Any]) -> Iterable[str]:
    libraries = ", ".join(f"{k} {v}" for k, v in machine["libraries"].items() if v is not None)
    yield f"- CPU: {machine['cpu']}, {machine['cores']} cores ({machine['usable_cores']} usable)"
    yield f"- Python {machine['python']} ({machine['implementation']}) on {machine['platform']}"
    yield f"- Libraries: {libraries}"
    yield f"- Date: {machine['date']}"


def _lines_envelope(rows: list[dict[str, Any]]) -> Iterable[str]:
    yield (
        "| Operation | Payload | Recipients | ncb_relay µs | IQR µs | lower bound µs "
        "| ncb_relay / lower bound (≤ 1.25x) | joserfc µs | joserfc / ncb_relay (≥ 1.4x) |"
    )
    yield "|---|---|--:|--:|--:|--:|--:|--:|--:|"
    for row in rows:
        times = row["times"]
        yield (
            f"| {row['operation']} | {_payload(row['payload_bytes'])} | {row['recipients']} "
            f"| {_us(times['ours'])} | {_spread(times['ours'])} | {_us(times['lower_bound'])} "
            f"| {_verdict(row['checks']['vs_lower_bound'])} | {_us(times['jose'])} "
            f"| {_verdict(row['checks']['vs_jose'])} |"
        )


def _lines_sizes(rows: list[dict[str, Any]]) -> Iterable[str]:
    yield (
        "| Payload | Recipients | ncb_relay bytes | lower bound bytes | joserfc bytes "
        "| ncb_relay / joserfc (≤ 0.6x) |"
    )
    yield "|---|--:|--:|--:|--:|--:|"
    for row in rows:
        sizes = row["sizes"]
        yield (
            f"| {_payload(row['payload_bytes'])} | {row['recipients']} | {sizes['ours']:,} "
            f"| {sizes['lower_bound']:,} | {sizes['jose']:,} "
            f"| {_verdict(row['check'])} |"
        )


def _lines_primitives(rows: list[dict[str, Any]]) -> Iterable[str]:
    yield "| Primitive | µs (median) | IQR µs | reference µs |"
    yield "|---|--:|--:|--:|"
    for row in rows:
        reference = row["reference_us"]
        shown = "" if reference is None else f"{reference:g}"
        yield f"| {row['name']} | {_us(row['stats'])} | {_spread(row['stats'])} | {shown} |"


def _ms(value: float) -> str:
    return f"{value:,.2f}"


def _busy(row: dict[str, Any], name: str) -> str:
    return " / ".join(f"{row[kind][name]:.0%}" for kind in ("bare", "submit", "e2e"))


def _lines_relay(relay: dict[str, Any]) -> Iterable[str]:
    if not relay.get("measured"):
        yield relay.get("note", RELAY_NOT_MEASURED)
        return
    plan = relay["plan"]
    yield (
        "One relay node (`bench/relay_node.py`: "
        f"{relay['server']}; {relay['storage']}) serves, in the same process and run, "
        "the relay API and a bare endpoint (`POST /bench/bare`, 202 at once, behind the same "
        "middleware): the *bare* columns are the ceiling of that server with these settings. "
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
    yield (
        "Not measured: the uvicorn + uvloop variant and the 10k submits/s per core target "
        "(uvicorn is not a dependency); scaling over relay processes (item 3)."
    )


def _pair(row: dict[str, Any], name: str, digits: int) -> str:
    """``with / without`` of one figure of a log-cost row (empty if either lacks it)."""
    high, low = row["with_log"].get(name), row["without_log"].get(name)
    if high is None or low is None:
        return ""
    return f"{high:,.{digits}f} / {low:,.{digits}f}"


def _lines_log_cost(relay: dict[str, Any]) -> Iterable[str]:
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


def _lines_log_audit(audit: dict[str, Any] | None) -> Iterable[str]:
    if not audit:
        yield (
            "Not measured in this run: `python -m bench` measures it unless `--smoke`, "
            "`--no-audit` skips it."
        )
        return
    if "error" in audit:
        yield f"The audit benchmark failed: {audit['error']}"
        return
    outcome = audit["check"]
    verdict = "PASS" if outcome["pass"] else "**MISS**"
    yield (
        "`bench/log_audit.py` fills a throw-away relay's SQLite store with "
        f"{audit['filled']:,} envelope entries through the store's log (one signed checkpoint "
        f"per {audit['batch']} entries, as group commit signs them), starts the relay node and "
        "times `ncb-relay log audit --json` against it over HTTP, from its start to its report: "
        "every entry and checkpoint read, every checkpoint's signature and consistency with the "
        f"previous one checked, and inclusion proofs for a sample of {audit['sample']}. The "
        "relay and the auditor share one process (and its interpreter lock), so the figure is "
        "pessimistic."
    )
    yield ""
    yield (
        "| Entries | checkpoints checked | consistency proofs | inclusion proofs "
        "| audit verdict | fill s | audit s | audit (< 60 s) |"
    )
    yield "|--:|--:|--:|--:|---|--:|--:|--:|"
    yield (
        f"| {audit['entries']:,} | {audit['checkpointsChecked']:,} "
        f"| {audit['consistencyProofs']:,} | {audit['inclusionProofs']:,} "
        f"| {'ok' if audit['ok'] else 'FAILED'} | {audit['fillSeconds']:.1f} "
        f"| {audit['auditSeconds']:.1f} | {outcome['value']:.1f} s {verdict} |"
    )


def render_markdown(result: dict[str, Any], notes: str) -> str:
    """The whole page, with ``notes`` between the markers."""
    plan = result["plan"]
    misses = [
        f"{row['operation']} {_payload(row['payload_bytes'])} x {row['recipients']}: {name}"
        for row in result["envelope"]
        for name, outcome in row["checks"].items()
        if not outcome["pass"]
    ] + [
        f"size {_payload(row['payload_bytes'])} x {row['recipients']}"
        for row in result["sizes"]
        if not row["check"]["pass"]
    ]
    relay = result.get("relay", {})
    if relay.get("measured"):
        misses += [
            f"relay {row['senders']} senders: {name}"
            for row in relay["rows"]
            for name, outcome in row["checks"].items()
            if not outcome["pass"]
        ]
        misses += [
            f"log cost at {row['senders']} senders"
            for row in relay.get("log_cost", {}).get("rows", [])
            if not row["check"]["pass"]
        ]
    audit = result.get("log_audit")
    if audit and "check" in audit and not audit["check"]["pass"]:
        misses.append("log audit")
    lines: list[str] = [
        "# Benchmarks",
        "",
        f"Generated by `python -m bench{' --full' if result['mode'] == 'full' else ''}` "
        f"({result['mode']} run: {plan['rounds']} interleaved rounds of about "
        f"{plan['batch_ns'] / 1e6:g} ms per candidate, medians of the time per call). "
        "Everything on this page but the notes is rewritten by each run; the JSON result "
        f"is in [`{result['json_name']}`]({result['json_name']}). Targets are reported, "
        "never enforced: a MISS does not fail CI. See `bench/` for what each column runs.",
        "",
        "## Machine",
        "",
        *_lines_machine(result["machine"]),
        "",
        "## Targets",
        "",
        *(f"- {spec['text']}" for spec in TARGETS.values()),
        "",
        f"This run: {len(misses)} MISS" + (f" ({'; '.join(misses)})." if misses else "."),
        "",
        "## Envelope: seal and open",
        "",
        "*ncb_relay* is `seal` / `open_envelope` from the library (opening includes freshness, "
        "directory and replay checks); *lower bound* is the same cryptography called directly "
        "through PyNaCl and hashlib (`bench/lower_bound.py`); *joserfc* is a JWS (EdDSA, "
        "Ed25519) nested in a JWE (ECDH-ES+A256KW with X25519, A256GCM), compact for one "
        "recipient and general JSON for several (`bench/jose.py`). Open is done by one "
        "recipient. IQR is the interquartile range of the ncb_relay figure over rounds.",
        "",
        *_lines_envelope(result["envelope"]),
        "",
        "## Sizes on the wire",
        "",
        "The lower bound's size is the sum of the header, ciphertext and signature, "
        "without the outer framing.",
        "",
        *_lines_sizes(result["sizes"]),
        "",
        "## Primitives",
        "",
        "Single calls through PyNaCl, to compare this machine with the reference figures "
        "of issue #9.",
        "",
        *_lines_primitives(result["primitives"]),
        "",
        "## Relay throughput and scaling",
        "",
        *_lines_relay(relay),
        "",
        "## The log's cost to the relay",
        "",
        *_lines_log_cost(relay),
        "",
        "## Auditing a relay's log",
        "",
        *_lines_log_audit(audit),
        "",
        "## Notes on the misses",
        "",
        NOTES_BEGIN,
        notes,
        NOTES_END,
        "",
    ]
    profiles = result["profiles"]
    if profiles:
        lines += [
            "## Profiles of the misses",
            "",
            f"Generated by this run with {profiles[0]['profiler']}, one per missed timing "
            "target: the library call alone, repeated; for the relay, the whole relay "
            "process (main thread, wall clock) under the load of the missed runs.",
            "",
        ]
        for profile in profiles:
            lines += [
                f"<details><summary>{profile['case']}</summary>",
                "",
                "```text",
                profile["text"].rstrip(),
                "```",
                "",
                "</details>",
                "",
            ]
    return "\n".join(lines)


def write_markdown(result: dict[str, Any], path: Path) -> None:
    """Write the page, keeping the notes block of the page already at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(result, _existing_notes(path)))
