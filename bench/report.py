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

from .report_relay import (
    RELAY_NOT_MEASURED,
    lines_diffusion,
    lines_log_cost,
    lines_relay,
    lines_scaling,
    relay_misses,
)

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
    "uvicorn_per_core": {
        "text": (
            "at least 10k submits/s per core on uvicorn with uvloop (submit rate / the relay "
            "process's busy fraction of one core, at the top concurrency)"
        ),
        "bound": 10_000.0,
        "kind": "at least",
    },
    "scaling": {
        "text": (
            "per-message cost at 1M messages stored within 1.2x of 1k (relay CPU per submission "
            "and per end-to-end cycle; the short run stops at 30k)"
        ),
        "bound": 1.2,
        "kind": "at most",
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

LIBRARIES = (
    "ncb-relay",
    "pynacl",
    "msgpack",
    "joserfc",
    "cryptography",
    "pyinstrument",
    "anycorn",
    "trio",
    "uvicorn",
    "uvloop",
    "httptools",
)


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
    misses += relay_misses(relay)
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
        *lines_relay(relay),
        "",
        "## Diffusion to 195 bureaus",
        "",
        *lines_diffusion(relay),
        "",
        "## Stored messages: scaling and start-up",
        "",
        *lines_scaling(relay),
        "",
        "## The log's cost to the relay",
        "",
        *lines_log_cost(relay),
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
