"""The failures inside an exception group, as a flat list.

A task group (trio's strictly, anyio's too) wraps whatever fails inside it in
a :class:`BaseExceptionGroup`, nested once per task group it crosses.  The
command line and the demo show one failure as itself (a relay that cannot
start, a keystore that does not open), so they look at the leaves.
"""

from __future__ import annotations

__all__ = ["leaf_errors"]


def leaf_errors(error: BaseException) -> list[BaseException]:
    """``error`` itself, or every exception inside the group, depth first, in order."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]
