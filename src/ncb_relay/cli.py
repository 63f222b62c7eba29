"""The ``ncb-relay`` command line (an adapter: it may use the clock, randomness and stdout).

``demo`` plays the SkyManga case.  The administrators' commands live in the
``admin_*`` modules, each registering its own sub-commands: ``keys`` and
``root`` (:mod:`ncb_relay.admin_keys`, :mod:`ncb_relay.admin_root`), ``anchor``
(:mod:`ncb_relay.admin_anchor`), ``directory``
(:mod:`ncb_relay.admin_directory`, :mod:`ncb_relay.admin_principals`), ``sign`` and
``merge``
(:mod:`ncb_relay.admin_signing`), ``verify``, ``audit`` and ``show``
(:mod:`ncb_relay.admin_verify`); ``relay`` (:mod:`ncb_relay.admin_relay`).  ``bureau``
(send, watch, show) is a bureau's user on a relay (:mod:`ncb_relay.bureau_cli`).
``log`` (audit, witness) checks a relay's log and cosigns its checkpoints
(:mod:`ncb_relay.log_cli`).
``conformance`` runs ``interop_tests/`` against an adapter
(:mod:`ncb_relay.conformance.runner`).

Exit status: 0 on success; 1 when the work failed, after one line on stderr
that names the command, the file at fault (if any), the problem and its error
code (none for a local fault such as an existing output file); 2 for a usage
error found by argparse.  No traceback is shown for an
:class:`~ncb_relay.errors.NcbRelayError` and no secret is ever printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import partial

from . import (
    __version__,
    admin_anchor,
    admin_directory,
    admin_keys,
    admin_relay,
    admin_root,
    admin_signing,
    admin_verify,
    bureau_cli,
    log_cli,
)
from .conformance import runner as conformance
from .demo.play import run_demo
from .errors import NcbRelayError, UsageError

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    run_demo(quiet=args.quiet, as_json=args.json, out=partial(print, flush=True))
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
        help="play the SkyManga case through a real relay on this machine",
        description=(
            "Start a relay on a free loopback port with a temporary SQLite store, connect the "
            "INTERPOL General Secretariat and five bureaus, and play the SkyManga case over "
            "HTTP: NCB Seoul's request for the Korean ministry, the coordinator's forward to "
            "NCB Rabat, the acknowledgement, status updates and findings, and a diffusion "
            "about linked sites held at the review gate, approved and forwarded. Each step "
            "says who did what and how the receiver verified it. Nothing is kept."
        ),
    )
    demo.add_argument("--quiet", action="store_true", help="print only the final verdict")
    demo.add_argument(
        "--json", action="store_true", help="print the transcript as one JSON document"
    )
    demo.set_defaults(run=_demo, command_name="demo")
    admin_keys.register(commands)
    admin_root.register(commands)
    admin_anchor.register(commands)
    admin_directory.register(commands)
    admin_signing.register(commands)
    admin_verify.register(commands)
    admin_relay.register(commands)
    bureau_cli.register(commands)
    log_cli.register(commands)
    conformance.register(commands)
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
