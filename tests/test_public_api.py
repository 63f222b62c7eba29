"""``ncb_relay.__all__`` is exactly the public API (after httpx's test of the same name)."""

from __future__ import annotations

import ncb_relay
from ncb_relay import errors


def test_all_lists_every_public_name_and_nothing_else() -> None:
    public = {
        name
        for name, value in vars(ncb_relay).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("ncb_relay")
    }
    assert set(ncb_relay.__all__) - {"__version__"} >= public - {"__version__"}
    for name in ncb_relay.__all__:
        assert hasattr(ncb_relay, name), name


def test_every_error_is_exported() -> None:
    assert set(errors.__all__) <= set(ncb_relay.__all__)
