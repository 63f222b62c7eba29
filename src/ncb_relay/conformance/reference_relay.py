"""The reference relay as the relay under test: a child ``ncb-relay serve`` on a fresh fixture.

``ncb-relay conformance --relay reference`` runs the relay black-box tests
against the reference relay: :func:`reference_relay` writes a fixture
(:mod:`~ncb_relay.conformance.relay_fixture`) in a scratch folder, starts
``ncb-relay serve`` on it in a child process on a free loopback port, reads the
URL it prints, and stops it with SIGTERM (then SIGKILL after a grace period)
when the block ends.  The relay's own log (JSON lines on its standard error)
is kept in the folder as ``relay.log``.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .relay_fixture import PASSPHRASE, write_relay_fixture

__all__ = ["RunningReference", "reference_relay"]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_READY = " serving on "


@dataclass(frozen=True, slots=True)
class RunningReference:
    url: str
    fixture: Path


def _read_url(process: subprocess.Popen[str], log: Path) -> str:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = process.stdout.readline()
        if not line:
            break
        if _READY in line:  # "relay ID serving on URL; SIGTERM stops it"
            return line.split(_READY, 1)[1].split(";", 1)[0].strip()
    process.kill()
    process.wait()
    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:] if log.exists() else ""
    raise UsageError(f"the reference relay did not start: {tail.strip() or 'no output'}")


SERVE = (sys.executable, "-m", "ncb_relay.cli", "serve")


@contextmanager
def reference_relay(
    folder: Path | None = None, *, command: Sequence[str] = SERVE
) -> Iterator[RunningReference]:
    """Run the reference relay on a new fixture in ``folder`` (default: a scratch folder).

    ``command``, run with ``--config FILE`` added, is ``ncb-relay serve`` or
    another command that starts a relay from the configuration and prints
    ``serving on URL`` (a relay with a seeded bug, in the project's tests).
    """
    with tempfile.TemporaryDirectory(prefix="ncbr-conformance-") as scratch:
        where = folder if folder is not None else Path(scratch)
        fixture = write_relay_fixture(where, now=int(time.time()))
        log = where / "relay.log"
        environment = {**os.environ, "NCB_RELAY_PASSPHRASE": PASSPHRASE}
        with log.open("w", encoding="utf-8") as errors:
            process = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
                [*command, "--config", str(fixture.config_file)],
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
                env=environment,
            )
            try:
                yield RunningReference(_read_url(process, log), where)
            finally:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        process.wait(timeout=STOP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                if process.stdout is not None:
                    process.stdout.close()
