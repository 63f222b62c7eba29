"""The ``ncb-relay`` command line (an adapter: it may use the clock, randomness and stdout).

``demo`` plays the SkyManga case.  The administrators' commands live in the
``admin_*`` modules, each registering its own sub-commands: ``keys`` and
``root`` (:mod:`ncb_relay.admin_keys`, :mod:`ncb_relay.admin_root`), ``anchor``
(:mod:`ncb_relay.admin_anchor`), ``directory``
(:mod:`ncb_relay.admin_directory`, :mod:`ncb_relay.admin_principals`), ``sign`` and
``merge``
(:mod:`ncb_relay.admin_signing`), ``verify``, ``audit`` and ``show``
(:mod:`ncb_relay.admin_verify`); ``relay`` (:mod:`ncb_relay.admin_relay`).

Exit status: 0 on success; 1 when the work failed, after one line on stderr
that names the command, the file at fault (if any), the problem and its error
code (none for a local fault such as an existing output file); 2 for a usage
error found by argparse.  No traceback is shown for an
:class:`~ncb_relay.errors.NcbRelayError` and no secret is ever printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from . import (
    __version__,
    admin_anchor,
    admin_directory,
    admin_keys,
    admin_relay,
    admin_root,
    admin_signing,
    admin_verify,
)
from .errors import NcbRelayError, UsageError
from .walkthrough import run_core_walkthrough

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    out = (lambda _line: None) if args.quiet else print
    steps = run_core_walkthrough(now=int(time.time()), rng=os.urandom, say=out)
    print(f"demo: {steps} checks passed")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncb-relay",
        description=(
            "ncb_relay: signed, end-to-end encrypted messaging between national bureaus. "
            "Besides the demo, the commands manage keys, trust anchors and the signed "
            "directory (spec/directory.md, 'Command line'). Times are ISO 8601 UTC "
            "(2027-01-15T08:00:00Z); durations are 14d, 12h, 30m, 45s or seconds."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ncb-relay {__version__}")
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="the command to run; ncb-relay COMMAND --help explains it",
    )
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
    demo.set_defaults(run=_demo, command_name="demo")
    admin_keys.register(commands)
    admin_root.register(commands)
    admin_anchor.register(commands)
    admin_directory.register(commands)
    admin_signing.register(commands)
    admin_verify.register(commands)
    admin_relay.register(commands)
    return parser


def _one_line(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    name: str = args.command_name
    try:
        status: int = args.run(args)
    except NcbRelayError as exc:
        where = "".join(f"{note}: " for note in getattr(exc, "__notes__", ()))
        code = "" if isinstance(exc, UsageError) else f" ({exc.code})"
        print(_one_line(f"ncb-relay {name}: {where}{exc.message}{code}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ncb-relay {name}: interrupted; no file was changed", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
