"""Shared test configuration.

Tests name the spec requirements they check with ``@pytest.mark.req("ENV-3", ...)``;
``test_spec_coverage.py`` checks that every requirement id in ``spec/`` is named
by at least one test.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    deadline=None,  # this machine is shared and noisy: no timing in tests
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("default")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): the spec requirements this test checks")
