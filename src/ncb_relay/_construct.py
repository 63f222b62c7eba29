"""Types without a public constructor (after trio's ``NoPublicConstructor``)."""

from __future__ import annotations

from typing import Any, TypeVar

from .errors import UsageError

__all__ = ["NoPublicConstructor"]

T = TypeVar("T")


class NoPublicConstructor(type):
    """A metaclass whose classes can only be built by ``Class._create(...)``.

    ncb_relay uses it for results of verification, so that no code path can
    treat unverified bytes as verified.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise UsageError(f"{cls.__module__}.{cls.__qualname__} has no public constructor")

    def _create(cls: type[T], *args: Any, **kwargs: Any) -> T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]
