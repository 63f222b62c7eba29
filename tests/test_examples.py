"""The examples (examples/*.py) run as their README says, each in its own Python process.

Each example runs with no arguments (it makes a deployment and starts its own
relay) and with ``--relay URL --anchor FILE --keys DIR`` against the
playground relay that ``examples/example_relay.py DIR`` serves.  A test checks
the exit code, the lines that show the exchange happened, and that nothing was
written to stderr but the web server's log line.  Timeouts only bound a hung
run; nothing here measures time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PASSPHRASE = "correct horse battery staple"
HUNG = 120  # seconds after which a run is considered hung

FINDINGS = "Seoul:  findings (completed): The operator"
EXPECTED = {
    "skymanga_trio.py": [
        "GS:     forwarded the request of KR.ncb-seoul to MA.ncb-rabat",
        "Rabat:  request of KR.ncb-seoul, forwarded by XP.interpol-gs",
        "Seoul:  the request is answered; its steps:",
        "accept    from MA.ncb-rabat",
        "answer    from MA.ncb-rabat",
        FINDINGS,
    ],
    "bureau_service_asyncio.py": [
        "Rabat:  answered KR-MCST-SKYMANGA-01 from KR.ncb-seoul",
        "Seoul:  KR-MCST-SKYMANGA-01 is answered",
        'GET /cases -> 200 {"cases":[{"case":"KR-MCST-SKYMANGA-01","from":"KR.ncb-seoul"',
    ],
    "blocking_script.py": [
        "Rabat:  request from KR.ncb-seoul; acknowledging and answering",
        "Seoul:  the request is answered",
        FINDINGS,
        "out ncbr.assistance-request    KR.ncb-seoul   accepted",
        "in  ncbr.assistance-response   MA.ncb-rabat",
    ],
}


def run_example(name: str, *args: str) -> str:
    """Run ``examples/name`` with warnings as errors; return its output once it exits 0."""
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=HUNG,
        env={**os.environ, "NCB_KEYSTORE_PASSPHRASE": PASSPHRASE},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    noise = [line for line in done.stderr.splitlines() if "[INFO] Running on http" not in line]
    assert noise == []
    return done.stdout


def check_output(name: str, output: str) -> None:
    lines = output.splitlines()
    for expected in EXPECTED[name]:
        assert any(expected in line for line in lines), (expected, output)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_example_runs_with_its_own_relay(name: str) -> None:
    output = run_example(name)
    assert output.startswith("relay XP.relay-lyon at http://127.0.0.1:")
    check_output(name, output)


class Serving:
    """``examples/name`` running in its own process; :meth:`stop` sends SIGTERM."""

    def __init__(self, name: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-W", "error", str(EXAMPLES / name), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NCB_KEYSTORE_PASSPHRASE": PASSPHRASE},
        )
        self.guard = threading.Timer(HUNG, self.process.kill)  # killed, it closes its pipes
        self.guard.start()
        self.stopped: tuple[int, str, str] | None = None

    def lines(self) -> Iterator[str]:
        assert self.process.stdout is not None
        return iter(self.process.stdout.readline, "")

    def stop(self) -> tuple[int, str, str]:
        """Its exit code and the rest of its stdout and stderr."""
        self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=HUNG)
        self.guard.cancel()
        return self.process.returncode, out, err


@contextmanager
def serving(name: str, *args: str) -> Iterator[Serving]:
    running = Serving(name, *args)
    try:
        yield running
    finally:
        running.stopped = running.stop()


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[list[str]]:
    """``example_relay.py DIR`` serving; the arguments that join it; stopped with SIGTERM."""
    with serving("example_relay.py", str(tmp_path / "pg")) as relay:
        lines = relay.lines()
        first = next(lines)
        assert first.startswith("relay XP.relay-lyon at http://127.0.0.1:"), first
        arguments = next(lines).split()
        assert arguments[0::2] == ["--relay", "--anchor", "--keys"]
        yield arguments
    assert relay.stopped == (0, "stopped\n", "")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_an_example_joins_a_relay_by_url(playground: list[str], name: str) -> None:
    check_output(name, run_example(name, *playground))


def test_the_examples_run_again_and_again_on_one_relay(playground: list[str]) -> None:
    """The journals (in --keys DIR) persist: each run goes on where the last one stopped.

    The service's request, with the coordinator in copy, waits in the coordinator's
    mailbox; the trio example's coordinator then only routes requests addressed to it.
    """
    for name in ["bureau_service_asyncio.py", "skymanga_trio.py", "skymanga_trio.py"]:
        output = run_example(name, *playground)
        check_output(name, output)
        assert output.count("GS:     forwarded") == (1 if name == "skymanga_trio.py" else 0)


def test_the_bureau_service_keeps_serving_its_cases() -> None:
    with serving("bureau_service_asyncio.py", "--keep-serving") as service:
        lines = service.lines()
        web = next(line for line in lines if "web interface is at" in line).split()[-1]
        assert any(line.startswith("serving until") for line in lines)
        answer = httpx.get(web, timeout=HUNG)
        assert answer.status_code == 200
        assert [case["case"] for case in answer.json()["cases"]] == ["KR-MCST-SKYMANGA-01"]
    assert service.stopped is not None
    assert service.stopped[0] == 0


def test_joining_a_relay_needs_the_anchor_and_the_keys() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "blocking_script.py"), "--relay", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=HUNG,
        check=False,
    )
    assert done.returncode == 1
    assert "--relay needs --anchor FILE and --keys DIR" in done.stderr
