"""The published vectors (spec/vectors/*.json) as the suite reads them, and their principals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import (
    EncryptionKeyPair,
    EncryptionPublicKey,
    PrivateIdentity,
    PublicIdentity,
    SigningKeyPair,
    SigningPublicKey,
    StaticDirectory,
)

JSON = dict[str, Any]

VECTORS = Path(__file__).resolve().parent.parent / "spec" / "vectors"


def load(name: str) -> JSON:
    data: JSON = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


def group(doc: JSON, kind: str) -> list[JSON]:
    tests: list[JSON] = next(g["tests"] for g in doc["testGroups"] if g["type"] == kind)
    return tests


def cases(doc: JSON, kind: str, file: str) -> list[Any]:
    """One pytest param per case, named ``file:tcN`` and marked with the case's requirements."""
    return [
        pytest.param(
            case, id=f"{file}:tc{case['tcId']}", marks=pytest.mark.req(*case["requirements"])
        )
        for case in group(doc, kind)
    ]


def private(p: JSON) -> JSON:
    """A principal with its private keys, as harness.md passes it."""
    return {
        "id": p["id"],
        "signingSeed": p["signingSeed"],
        "encryptionSecret": p["encryptionSecret"],
    }


def public(p: JSON) -> JSON:
    """What others know of a principal, as harness.md passes it."""
    return {
        "id": p["id"],
        "signingPublicKey": p["signingPublicKey"],
        "encryptionPublicKey": p["encryptionPublicKey"],
    }


class Principals:
    """The principals of one vector file and the receiver's directory (spec/vectors.md)."""

    def __init__(self, doc: JSON) -> None:
        self.by_id = {p["id"]: p for p in doc["principals"]}
        self.directory = [public(p) for p in doc["principals"] if p["inDirectory"]]

    def private(self, principal: str) -> JSON:
        return private(self.by_id[principal])

    def public(self, principal: str) -> JSON:
        return public(self.by_id[principal])

    def identity(self, principal: str) -> PrivateIdentity:
        """The principal's keys for the reference library (the suite seals with it)."""
        p = self.by_id[principal]
        return PrivateIdentity(
            principal,
            SigningKeyPair(bytes.fromhex(p["signingSeed"])),
            [EncryptionKeyPair(bytes.fromhex(p["encryptionSecret"]))],
        )

    def public_identity(self, principal: str) -> PublicIdentity:
        p = self.by_id[principal]
        return PublicIdentity(
            principal,
            SigningPublicKey(bytes.fromhex(p["signingPublicKey"])),
            EncryptionPublicKey(bytes.fromhex(p["encryptionPublicKey"])),
        )

    def static_directory(self) -> StaticDirectory:
        """The receiver's directory, for the reference library."""
        return StaticDirectory(self.public_identity(p["id"]) for p in self.directory)


def describe(case: JSON) -> str:
    return f"tc{case['tcId']} ({case['comment']})"
