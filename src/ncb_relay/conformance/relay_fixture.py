"""The relay under test's setting: a directory of published test principals and a profile.

A relay black-box test (``ncb-relay conformance --relay URL``) authenticates as
bureaus and checks the relay's receipts, so the relay under test must trust a
directory whose private keys the suite holds.  :func:`write_relay_fixture`
writes, in one folder:

- ``anchor.signed``, ``directory.signed``: a trust anchor (two of three root
  keys) and version 1 of a directory, issued at ``now - 60`` for 14 days,
  listing the coordinator, twelve bureaus, one suspended bureau and the relay
  (role ``relay``);
- ``relay.keystore``: the relay's keys, locked with :data:`PASSPHRASE`;
- ``relay.toml``: the reference relay's configuration with the profile below;
- ``conformance.json``: every principal's id, role and private keys, the
  relay's id and keys, the passphrase and the profile: what the suite reads,
  and what another relay needs to be set up the same way.

Every key is derived from :data:`SEED`, a published constant, so every
fixture holds the same keys (only the anchor and directory, which carry
times, differ).  These keys are public test keys: never trust this anchor
anywhere else.

The *profile* is the relay settings the suite's timing depends on: the spec's
defaults of API-21, except a 2-second lease (API-11 is checked by waiting it
out) and small quotas (API-22 and API-23 are checked by filling them).  An
operator may lower these limits, so a conforming relay can be set this way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..admin_keystores import KDF_PROFILES
from ..anchor import RootKey, TrustAnchor
from ..entries import Role
from ..errors import UsageError
from ..identity import EncryptionKeyPair, PrivateIdentity, SigningKeyPair
from ..keyring import HeldEncryptionKey, Keyring
from ..keystore import write_keystore
from ..lifecycle import EncryptionKeySchedule, new_directory, new_principal, suspend

__all__ = [
    "FIXTURE_FILE",
    "PASSPHRASE",
    "PROFILE",
    "SEED",
    "RelayFixture",
    "read_relay_fixture",
    "write_relay_fixture",
]

SEED = b"NCBR/1 conformance relay fixture, published test keys"
PASSPHRASE = "ncbr1 conformance relay (published test key)"  # noqa: S105 -- published on purpose
FIXTURE_FILE = "conformance.json"
DAY = 24 * 3600
VALIDITY = 14 * DAY
MAX_FIXTURE_BYTES = 1024 * 1024

RELAY_ID = "XP.relay-conformance"
COORDINATOR = "XP.gs-conformance"
BUREAUS = tuple(
    f"Q{letter}.ncb-{name}"
    for letter, name in zip(
        "ABCDEFGHIJKL",
        (
            "alpha",
            "bravo",
            "charlie",
            "delta",
            "echo",
            "foxtrot",
            "golf",
            "hotel",
            "india",
            "juliett",
            "kilo",
            "lima",
        ),
        strict=True,
    )
)
SUSPENDED = "QS.ncb-suspended"

# What the suite expects of the relay under test (spec/relay-api.md, API-21 and API-22/23).
PROFILE: dict[str, int] = {
    "maxEnvelopeBytes": 8 * 1024 * 1024,
    "maxAckBody": 128 * 1024,
    "maxAckIds": 1000,
    "maxBatch": 100,
    "maxWait": 30,
    "maxLongPollsPerBureau": 4,
    "ratePerSecond": 50,
    "rateBurst": 200,
    "lease": 2,
    "senderMaxMessages": 20,
    "mailboxMaxMessages": 30,
    "requestSkew": 300,
}


@dataclass(frozen=True, slots=True)
class FixturePrincipal:
    id: str
    role: Role
    signing_seed: bytes
    encryption_secret: bytes
    active: bool = True

    @property
    def identity(self) -> PrivateIdentity:
        return PrivateIdentity(
            self.id, SigningKeyPair(self.signing_seed), [EncryptionKeyPair(self.encryption_secret)]
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "state": "active" if self.active else "suspended",
            "signingSeed": self.signing_seed.hex(),
            "encryptionSecret": self.encryption_secret.hex(),
        }


@dataclass(frozen=True, slots=True)
class RelayFixture:
    """What ``conformance.json`` says: the principals, the relay and the profile."""

    folder: Path
    relay: FixturePrincipal
    coordinator: str
    principals: dict[str, FixturePrincipal]
    profile: dict[str, int]

    @property
    def bureaus(self) -> list[str]:
        return [p.id for p in self.principals.values() if p.role == "bureau" and p.active]

    @property
    def directory_file(self) -> Path:
        return self.folder / "directory.signed"

    @property
    def config_file(self) -> Path:
        return self.folder / "relay.toml"


def _key(label: str) -> bytes:
    return hashlib.sha256(SEED + b"\x00" + label.encode()).digest()


def _principal(principal: str, role: Role, *, active: bool = True) -> FixturePrincipal:
    return FixturePrincipal(
        principal, role, _key(f"{principal} signing"), _key(f"{principal} encryption"), active
    )


def fixture_principals() -> list[FixturePrincipal]:
    """Every listed principal, the relay last; the same keys in every fixture."""
    return [
        _principal(COORDINATOR, "coordinator"),
        *(_principal(b, "bureau") for b in BUREAUS),
        _principal(SUSPENDED, "bureau", active=False),
        _principal(RELAY_ID, "relay"),
    ]


def _config(port: int) -> str:
    return f"""# The reference relay set up for the conformance suite (interop_tests/harness.md).
relay_id = "{RELAY_ID}"
database = "relay.db"
keystore = "relay.keystore"
directory = "directory.signed"
anchors = ["anchor.signed"]
passphrase_env = "NCB_RELAY_PASSPHRASE"

[listen]
host = "127.0.0.1"
port = {port}
shutdown_timeout = 5.0

[limits]
lease = {PROFILE["lease"]}

[quota]
sender_max_messages = {PROFILE["senderMaxMessages"]}
mailbox_max_messages = {PROFILE["mailboxMaxMessages"]}
retry_after = 1
"""


def write_relay_fixture(folder: Path, *, now: int, port: int = 0) -> RelayFixture:
    """Write the fixture into ``folder`` (created if missing; existing files are refused)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ("anchor.signed", "directory.signed", "relay.keystore", "relay.toml", FIXTURE_FILE)
    taken = [name for name in names if (folder / name).exists()]
    if taken or (folder / "relay.db").exists():
        held = ", ".join(taken) or "relay.db"
        raise UsageError(f"{folder} already holds a fixture or a relay store ({held})")
    roots = [SigningKeyPair(_key(f"root {i}")) for i in range(3)]
    anchor = TrustAnchor(
        1,
        now - DAY,
        None,
        tuple(RootKey(f"conformance root {i + 1}", key.public_key) for i, key in enumerate(roots)),
        2,
    )
    draft = anchor.draft()
    for key in roots[:2]:
        draft = draft.sign(key)
    (folder / "anchor.signed").write_bytes(draft.encode())

    issued = now - 60
    schedule = EncryptionKeySchedule()
    principals = fixture_principals()
    entries = []
    records = {}
    for member in principals:
        identity = member.identity
        record = schedule.record(
            identity.signer, member.id, identity.encryption_keys[0].public_key, issued - 60
        )
        records[member.id] = record
        entries.append(
            new_principal(
                member.id,
                name=f"Conformance {member.role} {member.id}",
                role=member.role,
                signing_key=identity.signer.public_key,
                encryption_key=record,
                since=issued - 60,
            )
        )
    document = new_directory(anchor=anchor.hash, issued=issued, validity=VALIDITY, entries=entries)
    document = suspend(document, SUSPENDED, since=issued)
    signed = document.draft()
    for key in roots[:2]:
        signed = signed.sign(key)
    (folder / "directory.signed").write_bytes(signed.encode())

    relay = principals[-1]
    record = records[relay.id]
    keyring = Keyring(
        relay.id,
        SigningKeyPair(relay.signing_seed),
        [
            HeldEncryptionKey(
                EncryptionKeyPair(relay.encryption_secret), record.not_before, record.not_after
            )
        ],
    )
    write_keystore(folder / "relay.keystore", keyring, PASSPHRASE, kdf=KDF_PROFILES["interactive"])
    (folder / "relay.toml").write_text(_config(port), encoding="utf-8")
    description = {
        "about": "NCBR/1 conformance fixture: published test keys, never trust them elsewhere",
        "relay": relay.as_json(),
        "coordinator": COORDINATOR,
        "principals": [p.as_json() for p in principals[:-1]],
        "passphrase": PASSPHRASE,
        "directoryIssued": issued,
        "directoryExpires": issued + VALIDITY,
        "profile": PROFILE,
    }
    (folder / FIXTURE_FILE).write_text(json.dumps(description, indent=1) + "\n", encoding="utf-8")
    return read_relay_fixture(folder)


def _hex32(value: object, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 64:
        raise UsageError(f"{FIXTURE_FILE}: {what} is not 64 hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise UsageError(f"{FIXTURE_FILE}: {what} is not 64 hex digits") from None


def _read_principal(item: object) -> FixturePrincipal:
    if not isinstance(item, dict):
        raise UsageError(f"{FIXTURE_FILE}: a principal is not an object")
    principal, role, state = item.get("id"), item.get("role"), item.get("state")
    if not isinstance(principal, str) or role not in ("coordinator", "bureau", "relay"):
        raise UsageError(f"{FIXTURE_FILE}: a principal has no valid id or role")
    if state not in ("active", "suspended"):
        raise UsageError(f"{FIXTURE_FILE}: {principal} has no valid state")
    return FixturePrincipal(
        principal,
        role,
        _hex32(item.get("signingSeed"), f"{principal} signingSeed"),
        _hex32(item.get("encryptionSecret"), f"{principal} encryptionSecret"),
        state == "active",
    )


def read_relay_fixture(folder: Path) -> RelayFixture:
    """Read ``conformance.json`` in ``folder``; a :class:`UsageError` says what is wrong."""
    path = folder / FIXTURE_FILE
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FIXTURE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_FIXTURE_BYTES:
        raise UsageError(f"{path} is larger than {MAX_FIXTURE_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("principals"), list):
        raise UsageError(f"{path} is not a conformance fixture")
    principals = {p.id: p for p in map(_read_principal, data["principals"])}
    relay = _read_principal(data.get("relay"))
    profile = data.get("profile")
    if not isinstance(profile, dict) or set(profile) != set(PROFILE):
        raise UsageError(f"{path}: the profile must have exactly {sorted(PROFILE)}")
    if not all(type(v) is int and v > 0 for v in profile.values()):
        raise UsageError(f"{path}: every profile value is a positive integer")
    coordinator = data.get("coordinator")
    if coordinator not in principals or principals[coordinator].role != "coordinator":
        raise UsageError(f"{path}: the coordinator is not one of the principals")
    return RelayFixture(folder, relay, coordinator, principals, profile)
