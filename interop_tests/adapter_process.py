"""The suite's side of the harness: an adapter process spoken to in JSON lines."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

import pytest

JSON = dict[str, Any]

#: seconds to wait for one response; a hung adapter fails the test, not the run
TIMEOUT = 60.0


class AdapterFailure(Exception):
    """The adapter broke the harness protocol: it died, hung or wrote a non-JSON line."""


class AdapterProcess:
    """One running adapter; restarted on the next request after it dies."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.requests = 0

    def _start(self) -> subprocess.Popen[str]:
        process = subprocess.Popen(  # the command under test, by design
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        stdout = process.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        self._lines = lines
        return process

    def call(self, request: JSON) -> JSON:
        """Send one request and return its response (an ``error`` member on failure)."""
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        process = self._process
        assert process.stdin is not None
        self.requests += 1
        try:
            process.stdin.write(json.dumps(request, separators=(",", ":")) + "\n")
            process.stdin.flush()
            line = self._lines.get(timeout=TIMEOUT)
        except (OSError, queue.Empty) as exc:
            self.close()
            raise AdapterFailure(f"no response to {request.get('op')!r}: {exc!r}") from exc
        if line is None:
            self.close()
            raise AdapterFailure(f"the adapter exited while answering {request.get('op')!r}")
        try:
            response = json.loads(line)
        except ValueError as exc:
            raise AdapterFailure(f"not a JSON line: {line[:200]!r}") from exc
        if not isinstance(response, dict):
            raise AdapterFailure(f"not a JSON object: {line[:200]!r}")
        if response.get("error") == "unsupported-op":
            pytest.skip(f"the adapter does not support {request.get('op')!r}")
        if response.get("error") == "bad-request":
            raise AdapterFailure(f"the adapter refused the request: {response.get('detail')}")
        return response

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
