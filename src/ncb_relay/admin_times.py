"""Times and durations as administrators type and read them (an adapter of the command line).

The core counts time in whole seconds since the Unix epoch.  On the command
line a time is ISO 8601 with an explicit offset (``2027-01-15T08:00:00Z`` or
``...+02:00``), converted to UTC; a time without an offset is refused because
it would depend on the machine's time zone.  Times are shown in UTC with a
``Z``.  A duration is a whole number followed by ``s``, ``m``, ``h`` or ``d``
(``14d``), or a bare number of seconds.  The parsers are ``argparse`` types:
what they refuse is a usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime

from .header import MAX_TIME

__all__ = ["parse_duration", "parse_time", "show_duration", "show_time"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"([0-9]{1,12})([smhd]?)")
_LAST_SHOWABLE = 253402300799  # 9999-12-31T23:59:59Z, the last time datetime can show


def parse_time(text: str) -> int:
    """``2027-01-15T08:00:00Z`` (or any explicit UTC offset) as seconds since the epoch."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2027-01-15T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; write it in UTC with a Z, e.g. 2027-01-15T08:00:00Z"
        )
    if moment.microsecond:
        raise argparse.ArgumentTypeError(f"{text!r}: times are whole seconds")
    seconds = int(moment.timestamp())
    if not 0 <= seconds <= MAX_TIME:
        raise argparse.ArgumentTypeError(f"{text!r} is before 1970")
    return seconds


def parse_duration(text: str) -> int:
    """``14d``, ``12h``, ``30m``, ``45s`` or ``3600`` (seconds) as seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration such as 14d, 12h, 30m, 45s or 3600"
        )
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def show_time(seconds: int | None) -> str:
    """A time in ISO 8601 UTC (``2027-01-15T08:00:00Z``); ``-`` for none."""
    if seconds is None:
        return "-"
    if not 0 <= seconds <= _LAST_SHOWABLE:
        return f"@{seconds}"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def show_duration(seconds: int) -> str:
    """The largest whole unit: ``14d``, ``36h``, ``90s``."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
