"""The ``ncb-relay`` command line (an adapter: it may use the clock, randomness and stdout)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from . import __version__
from .walkthrough import run_core_walkthrough

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncb-relay",
        description="ncb_relay: signed, end-to-end encrypted messaging between national bureaus.",
    )
    parser.add_argument("--version", action="version", version=f"ncb-relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="play the SkyManga case through the protocol core",
        description=(
            "Seal a request for assistance from NCB Seoul to NCB Rabat and the coordinator, "
            "open it as each recipient, show what a relay and an outsider see, and reject a "
            "tampered copy, a replay and a misbound reply. No network, no files."
        ),
    )
    demo.add_argument("--quiet", action="store_true", help="print only the final verdict")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        out = (lambda _line: None) if args.quiet else print
        steps = run_core_walkthrough(now=int(time.time()), rng=os.urandom, say=out)
        print(f"demo: {steps} checks passed")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
