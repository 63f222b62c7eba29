"""``python -m bench``: measure, then write docs/benchmarks.json and docs/benchmarks.md.

Modes: the default short run (under two minutes on a quiet machine), ``--full`` (more and
longer rounds) and ``--smoke`` (a handful of calls, for the test suite: the
figures are meaningless, the files and round trips are not).  Progress goes to
stderr.  The exit status is 0 whatever the targets say.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nacl.bindings as sodium

from .envelope import EnvelopeWorld

try:
    from .jose import JoseWorld
except ImportError as exc:  # pragma: no cover - the bench extra is not installed
    raise SystemExit(f"python -m bench needs joserfc: pip install -e '.[bench]' ({exc})") from exc
from .lower_bound import LowerBound
from .relay import run_relay_bench
from .report import RELAY_NOT_MEASURED, check, machine_info, write_json, write_markdown
from .timing import Plan, Stats, measure

ROOT = Path(__file__).resolve().parents[1]
PAYLOADS = (1024, 64 * 1024)
RECIPIENTS = (1, 10, 195)
PLANS = {
    "smoke": Plan(rounds=2, batch_ns=0, warmup=0),
    "short": Plan(rounds=9, batch_ns=40_000_000, warmup=10),  # 15 before the relay grew
    "full": Plan(rounds=41, batch_ns=100_000_000, warmup=50),
}
PROFILE_NS = {"smoke": 2_000_000, "short": 500_000_000, "full": 4_000_000_000}
PROFILE_LINES = 45
# The audit of a relay's log (bench/log_audit.py; issue #7: 100,000 messages in under a minute)
AUDIT_ENTRIES = {"smoke": 500, "short": 100_000, "full": 100_000}
AUDIT_BATCH = 64  # entries a checkpoint
AUDIT_SAMPLE = 64  # inclusion proofs the audit checks
AUDIT_TIMEOUT = 600.0
# Issue #9's reference figures for this kind of machine (one core, medians), in µs.
REFERENCE_US = {
    "Ed25519 sign (96 B)": 16.0,
    "Ed25519 verify (96 B)": 37.0,
    "X25519": 27.0,
    "XChaCha20-Poly1305 encrypt 1 KiB": 3.4,
    "BLAKE2b 1 KiB": None,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="the long run (several minutes)")
    mode.add_argument("--smoke", action="store_true", help="a handful of calls (for tests)")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "docs" / "benchmarks.json", help="JSON result path"
    )
    parser.add_argument(
        "--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md", help="Markdown path"
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="do not profile the missed timing targets"
    )
    parser.add_argument(
        "--relay",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the relay node (default: on, off with --smoke)",
    )
    parser.add_argument(
        "--audit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time the audit of a 100,000-entry relay log (default: on, off with --smoke)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


class _Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{time.monotonic() - self.start:6.1f}s] {message}", file=sys.stderr, flush=True)


def _stats(stats: Stats) -> dict[str, Any]:
    return asdict(stats)


def _primitives(plan: Plan) -> list[dict[str, Any]]:
    public, secret = sodium.crypto_sign_seed_keypair(bytes(32))
    message = bytes(96)
    signature = sodium.crypto_sign(message, secret)[:64]
    x_secret, x_peer = os.urandom(32), sodium.crypto_scalarmult_base(os.urandom(32))
    kib, key, nonce = os.urandom(1024), os.urandom(32), bytes(24)

    candidates: dict[str, Callable[[], object]] = {
        "Ed25519 sign (96 B)": lambda: sodium.crypto_sign(message, secret),
        "Ed25519 verify (96 B)": lambda: sodium.crypto_sign_open(signature + message, public),
        "X25519": lambda: sodium.crypto_scalarmult(x_secret, x_peer),
        "XChaCha20-Poly1305 encrypt 1 KiB": lambda: (
            sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(kib, b"", nonce, key)
        ),
        "BLAKE2b 1 KiB": lambda: hashlib.blake2b(kib, digest_size=32).digest(),
    }
    measured = measure(candidates, plan)
    return [
        {"name": name, "stats": _stats(measured[name]), "reference_us": REFERENCE_US[name]}
        for name in candidates
    ]


def profile_text(function: Callable[[], object], duration_ns: int) -> tuple[str, str]:
    """Run ``function`` repeatedly for about ``duration_ns``; the profiler's name and text."""
    try:
        from pyinstrument import Profiler  # noqa: PLC0415
    except ImportError:
        profiler = cProfile.Profile()
        deadline = time.perf_counter_ns() + duration_ns
        profiler.enable()
        while time.perf_counter_ns() < deadline:
            function()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        return "cProfile (sorted by own time)", out.getvalue()
    sampler = Profiler(interval=0.0001)
    deadline = time.perf_counter_ns() + duration_ns
    sampler.start()
    while time.perf_counter_ns() < deadline:
        function()
    sampler.stop()
    text = sampler.output_text(unicode=False, color=False, show_all=False)
    return "pyinstrument", text


def _trim(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    banner = [i for i, line in enumerate(lines) if line.startswith("Profile at ")]
    if banner:  # pyinstrument: keep the sample count, drop the logo
        samples = re.search(r"Samples:\s+(\d+).*Duration:\s+([\d.]+)", " ".join(lines[: banner[0]]))
        lines = lines[banner[0] + 1 :]
        if samples:
            lines.insert(0, f"{samples[1]} samples over {samples[2]} s")
    if len(lines) > PROFILE_LINES:
        lines = [*lines[:PROFILE_LINES], f"... ({len(lines) - PROFILE_LINES} more lines)"]
    return "\n".join(lines)


def log_audit(mode: str, progress: Callable[[str], None]) -> dict[str, Any]:
    """bench/log_audit.py in a child process (its own interpreter): its figures and verdict."""
    entries, batch, sample = AUDIT_ENTRIES[mode], AUDIT_BATCH, AUDIT_SAMPLE
    progress(f"log audit: {entries:,} entries, a checkpoint every {batch}, {sample} sampled")
    argv = [sys.executable, "-m", "bench.log_audit", "--entries", str(entries)]
    argv += ["--batch", str(batch), "--sample", str(sample)]
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        argv, cwd=ROOT, capture_output=True, text=True, check=False, timeout=AUDIT_TIMEOUT
    )
    for line in done.stderr.splitlines():
        progress(line)
    try:
        audit: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        return {"error": f"exit status {done.returncode}: {done.stderr.strip()[-500:]}"}
    outcome = check("log_audit_s", float(audit["auditSeconds"]))
    outcome["pass"] = bool(outcome["pass"] and audit["ok"])
    progress(
        f"log audit: {audit['entries']:,} entries in {audit['auditSeconds']:.1f} s "
        f"({'PASS' if outcome['pass'] else 'MISS'})"
    )
    return {**audit, "batch": batch, "sample": sample, "check": outcome}


def run(
    mode: str,
    progress: Callable[[str], None],
    profile: bool,
    relay: bool = False,
    audit: bool = False,
) -> dict[str, Any]:
    """Measure everything; the result as a JSON-ready dictionary."""
    plan = PLANS[mode]
    progress(f"{mode} run: {plan.rounds} rounds, batches of {plan.batch_ns / 1e6:g} ms")
    progress("primitives")
    primitives = _primitives(plan)
    envelope_rows: list[dict[str, Any]] = []
    size_rows: list[dict[str, Any]] = []
    ours_callables: dict[tuple[str, int, int], Callable[[], object]] = {}
    groups = [(size, count) for count in RECIPIENTS for size in PAYLOADS]
    world: EnvelopeWorld | None = None
    for index, (size, count) in enumerate(groups, 1):
        if world is None or len(world.recipients) != count:
            world = EnvelopeWorld.build(count)
        jose = JoseWorld(
            world.signing_seed,
            [(r.principal, r.encryption_keys[-1].secret) for r in world.recipients],
        )
        body = os.urandom(size)
        ours_seal = world.sealer(body)
        envelope = ours_seal()
        header_length = len(world_header(envelope))
        lower = LowerBound(
            world.signing_seed,
            [r.encryption_keys[-1].secret for r in world.recipients],
            header_length=header_length,
        )
        lower_sealed = lower.seal(body)
        jose_sealed = jose.seal(body)
        ours_open = world.opener_of(envelope)
        if (
            ours_open() != body
            or lower.open(lower_sealed) != body
            or jose.open(jose_sealed) != body
        ):
            raise AssertionError(f"a round trip failed at {size} bytes x {count} recipients")
        sizes = {"ours": len(envelope), "lower_bound": lower_sealed.size, "jose": len(jose_sealed)}
        size_rows.append(
            {
                "payload_bytes": size,
                "recipients": count,
                "sizes": sizes,
                "check": check("size_vs_jose", sizes["ours"] / sizes["jose"]),
            }
        )
        operations: dict[str, dict[str, Callable[[], object]]] = {
            "seal": {
                "ours": ours_seal,
                "lower_bound": lower.sealer(body),
                "jose": jose.sealer(body),
            },
            "open": {
                "ours": ours_open,
                "lower_bound": lower.opener_of(lower_sealed),
                "jose": jose.opener_of(jose_sealed),
            },
        }
        for operation, candidates in operations.items():
            measured = measure(candidates, plan)
            ours, floor, baseline = measured["ours"], measured["lower_bound"], measured["jose"]
            checks = {
                "vs_lower_bound": check("vs_lower_bound", ours.median_ns / floor.median_ns),
                "vs_jose": check("vs_jose", baseline.median_ns / ours.median_ns),
            }
            envelope_rows.append(
                {
                    "operation": operation,
                    "payload_bytes": size,
                    "recipients": count,
                    "times": {name: _stats(stats) for name, stats in measured.items()},
                    "sizes": sizes,
                    "checks": checks,
                }
            )
            ours_callables[operation, size, count] = candidates["ours"]
            verdict = ", ".join(
                f"{name} {'PASS' if c['pass'] else 'MISS'}" for name, c in checks.items()
            )
            progress(
                f"[{index}/{len(groups)}] {operation} {size // 1024} KiB x {count}: "
                f"ours {ours.median_us:,.1f} us, lower bound {floor.median_us:,.1f} us, "
                f"joserfc {baseline.median_us:,.1f} us ({verdict})"
            )
    profiles: list[dict[str, Any]] = []
    if profile:
        for row in envelope_rows:
            if all(c["pass"] for c in row["checks"].values()):
                continue
            key = (row["operation"], row["payload_bytes"], row["recipients"])
            case = f"{key[0]} {key[1] // 1024} KiB x {key[2]} recipients"
            progress(f"profiling {case}")
            profiler, text = profile_text(ours_callables[key], PROFILE_NS[mode])
            profiles.append({"case": case, "profiler": profiler, "text": _trim(text)})
    relay_result: dict[str, Any] = {"measured": False, "note": RELAY_NOT_MEASURED}
    if relay:
        relay_result, relay_profiles = run_relay_bench(mode, progress, profile)
        for case, text in relay_profiles:
            profiles.append({"case": case, "profiler": "pyinstrument", "text": _trim(text)})
    audit_result = log_audit(mode, progress) if audit else None
    return {
        "schema": 1,
        "mode": mode,
        "plan": asdict(plan),
        "machine": machine_info(),
        "primitives": primitives,
        "envelope": envelope_rows,
        "sizes": size_rows,
        "relay": relay_result,
        "log_audit": audit_result,
        "profiles": profiles,
    }


def world_header(envelope: bytes) -> bytes:
    """The encoded header of an envelope (for the lower bound's header length)."""
    from ncb_relay.header import DEFAULT_LIMITS, parse_envelope  # noqa: PLC0415

    return parse_envelope(envelope, DEFAULT_LIMITS).header_bytes


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    mode = "full" if args.full else "smoke" if args.smoke else "short"
    progress = _Progress(args.quiet)
    relay = mode != "smoke" if args.relay is None else bool(args.relay)
    audit = mode != "smoke" if args.audit is None else bool(args.audit)
    result = run(mode, progress, profile=not args.no_profile, relay=relay, audit=audit)
    json_path: Path = args.json
    markdown_path: Path = args.markdown
    try:
        result["json_name"] = os.path.relpath(json_path, markdown_path.parent)
    except ValueError:  # another drive on Windows
        result["json_name"] = str(json_path)
    write_json(result, json_path)
    write_markdown(result, markdown_path)
    progress(f"wrote {json_path} and {markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
