"""How the harness writes values in JSON: typed values, hex, identities and random bytes."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypedDict

from ... import (
    EncryptionKeyPair,
    EncryptionPublicKey,
    PrivateIdentity,
    PublicIdentity,
    SigningKeyPair,
    SigningPublicKey,
)
from ...codec import Value

JSON = dict[str, Any]


class BadRequest(Exception):
    """The request does not follow the harness protocol (not the implementation's fault)."""


def untyped(t: JSON) -> Value:
    """The value of a typed JSON value (spec/vectors.md, "Typed values")."""
    kind = t["type"]
    if kind == "nil":
        return None
    if kind == "bool":
        return bool(t["value"])
    if kind == "int":
        return int(t["value"])
    if kind == "bin":
        return bytes.fromhex(t["value"])
    if kind == "str":
        return str(t["value"])
    if kind == "array":
        return [untyped(item) for item in t["value"]]
    if kind == "map":
        return {str(untyped(k)): untyped(v) for k, v in t["value"]}
    raise BadRequest(f"unknown type {kind!r}")


def typed(value: Value) -> JSON:
    """The typed JSON form of a decoded value."""
    if value is None:
        return {"type": "nil"}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, bytes):
        return {"type": "bin", "value": value.hex()}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, list):
        return {"type": "array", "value": [typed(item) for item in value]}
    return {"type": "map", "value": [[typed(k), typed(v)] for k, v in value.items()]}


def hex_or_none(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def private_identity(p: JSON) -> PrivateIdentity:
    return PrivateIdentity(
        p["id"],
        SigningKeyPair(bytes.fromhex(p["signingSeed"])),
        [EncryptionKeyPair(bytes.fromhex(p["encryptionSecret"]))],
    )


def public_identity(p: JSON) -> PublicIdentity:
    return PublicIdentity(
        p["id"],
        SigningPublicKey(bytes.fromhex(p["signingPublicKey"])),
        EncryptionPublicKey(bytes.fromhex(p["encryptionPublicKey"])),
    )


class SealingTerms(TypedDict):
    """Who seals to whom, when, and the sequence number and lifetime: every seal's terms."""

    sender: PrivateIdentity
    recipients: list[PublicIdentity]
    now: int
    seq: int
    ttl: int


def sealing_terms(request: JSON) -> SealingTerms:
    """The terms of a ``seal``, ``seal-message`` or ``seal-forward`` request."""
    return SealingTerms(
        sender=private_identity(request["sender"]),
        recipients=[public_identity(p) for p in request["recipients"]],
        now=request["now"],
        seq=request["seq"],
        ttl=request["ttl"],
    )


def recorded(data: bytes | None) -> Callable[[int], bytes]:
    """The random source of ``seal``: the given bytes in order, or the OS's."""
    if data is None:
        return os.urandom
    queue = bytearray(data)

    def draw(n: int) -> bytes:
        if len(queue) < n:
            raise BadRequest("not enough random bytes for this seal")
        out = bytes(queue[:n])
        del queue[:n]
        return out

    return draw
