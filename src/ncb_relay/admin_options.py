"""Options shared by the administrators' commands, and the clock (an adapter).

Each command module registers its own sub-commands; the options that several
of them take (``--force``, ``--anchor``, ``--now``, ``--json``) are defined
here once, so that they mean the same everywhere.  This is also the one place
the commands read the clock.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .admin_files import about, read_bytes
from .admin_times import parse_time
from .anchor import AnchorChain
from .errors import UsageError
from .signatures import ANCHOR_KIND

__all__ = [
    "Command",
    "add_anchor_option",
    "add_command",
    "add_force_option",
    "add_json_option",
    "add_now_option",
    "clock",
    "load_anchor_chain",
    "warn",
]

Command = Callable[[argparse.Namespace], int]
SubParsers = Any  # argparse's _SubParsersAction is private; its type is not exported


def add_command(
    group: SubParsers,
    name: str,
    run: Command,
    *,
    summary: str,
    description: str,
    parent: str | None = None,
) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` shows ``description``; ``run`` does its work.

    ``parent`` is the name of the command group (``keys``), if any, for messages.
    """
    parser: argparse.ArgumentParser = group.add_parser(name, help=summary, description=description)
    parser.set_defaults(run=run, command_name=name if parent is None else f"{parent} {name}")
    return parser


def add_force_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--force", action="store_true", help=what)


def add_anchor_option(parser: argparse.ArgumentParser, *, required: bool, why: str) -> None:
    parser.add_argument(
        "--anchor",
        dest="anchors",
        metavar="ANCHOR",
        action="append",
        required=required,
        default=[],
        help=(
            f"a signed trust anchor file, {why}; repeat it for every anchor since the first "
            "one received out of band, oldest first (after a root key rotation)"
        ),
    )


def add_now_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--now",
        type=parse_time,
        metavar="TIME",
        help=f"{what} as of TIME (ISO 8601 UTC) instead of the system clock",
    )


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON (keys and signatures in hex, times in seconds since 1970) instead of text",
    )


def clock(args: argparse.Namespace, name: str = "now") -> int:
    """The time given with the option ``name``, or the system clock in whole seconds."""
    given: int | None = getattr(args, name, None)
    return int(time.time()) if given is None else given


def load_anchor_chain(paths: Sequence[str]) -> AnchorChain:
    """The trust anchors in ``paths``, oldest first, each verified against the one before.

    The first must meet its own threshold (ANCHOR-3); each later one must
    extend the chain (ANCHOR-4, ANCHOR-5).
    """
    chain: AnchorChain | None = None
    for path in paths:
        with about(path):
            data = read_bytes(path, max_bytes=ANCHOR_KIND.outer_limits.max_bytes)
            chain = AnchorChain.trust(data) if chain is None else chain.extend(data)
    if chain is None:
        raise UsageError("give the trust anchor with --anchor")
    return chain


def warn(message: str) -> None:
    """A warning for the operator, on stderr (the command still succeeds)."""
    print(f"warning: {message}", file=sys.stderr)
