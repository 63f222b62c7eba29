"""The relay under test: ``--relay URL`` and the fixture it was set up with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ncb_relay.conformance.relay_fixture import read_relay_fixture

from .session import RelaySession


@pytest.fixture(scope="session")
def relay(pytestconfig: pytest.Config) -> Iterator[RelaySession]:
    url = pytestconfig.getoption("--relay")
    folder = pytestconfig.getoption("--relay-fixture")
    if not url:
        pytest.skip("no relay under test (--relay URL)")
    if not folder:
        raise pytest.UsageError("--relay needs --relay-fixture DIR (harness.md, Relays)")
    session = RelaySession(url, read_relay_fixture(Path(folder)))
    try:
        yield session
    finally:
        session.close()
