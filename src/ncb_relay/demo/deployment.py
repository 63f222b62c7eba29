"""A whole throw-away deployment in one folder: root keys, anchor, directory, a relay.

What an operator and the coordinator's administrators set up with the
``ncb-relay`` commands, done at once for the demo, the examples and tests:
root keys (two of three sign), the trust anchor, version 1 of the directory
listing the coordinator and the bureaus with fresh keys, and a relay
configuration on a loopback port (0 by default: a free one) with a SQLite
store, all under ``root``.  The private keys stay in memory.  Nothing here is
for production: real keys are made and kept with ``ncb-relay keys`` and
``ncb-relay root``, each by its holder.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from ..admin_keystores import KDF_PROFILES
from ..anchor import AnchorChain, RootKey, TrustAnchor
from ..bureau import Bureau
from ..entries import Role
from ..errors import UsageError
from ..identity import EncryptionKeyPair, PrivateIdentity, SigningKeyPair
from ..keyring import HeldEncryptionKey, KdfParameters, Keyring
from ..keystore import write_keystore
from ..lifecycle import EncryptionKeySchedule, new_directory, new_principal
from ..primitives import RandomSource
from ..relay.config import RelayConfig, config_from_mapping
from ..relay.launch import RunningRelay, run_relay

__all__ = ["Deployment", "Member", "make_deployment", "running_relay"]

DAY = 24 * 3600


@dataclass(frozen=True, slots=True)
class Member:
    """One principal to list: its id, display name and role."""

    principal: str
    name: str
    role: Role = "bureau"


@dataclass(frozen=True, slots=True)
class Deployment:
    """The files of a deployment under ``root``, and every member's private identity."""

    root: Path
    relay_id: str
    coordinator: str
    anchor_file: Path
    directory_file: Path
    identities: dict[str, PrivateIdentity]
    config: RelayConfig
    relay_key: SigningKeyPair = field(repr=False, kw_only=True)
    """The relay's signing key, listed in the directory (role ``relay``): it signs its log."""
    relay_encryption: HeldEncryptionKey = field(repr=False, kw_only=True)

    def write_relay_keystore(
        self, passphrase: str, *, kdf: KdfParameters = KDF_PROFILES["interactive"]
    ) -> None:
        """The relay's keys in ``config.keystore``, for a relay started from the configuration.

        The default work factor is the cheapest the reader accepts: a
        deployment is throw-away; real keys come from ``ncb-relay relay init``.
        """
        keyring = Keyring(self.relay_id, self.relay_key, [self.relay_encryption])
        write_keystore(self.config.keystore, keyring, passphrase, kdf=kdf)

    @property
    def anchors(self) -> AnchorChain:
        return AnchorChain.trust(self.anchor_file.read_bytes())

    def store(self, principal: str) -> Path:
        """Where ``principal``'s journal goes in this deployment."""
        return self.root / f"{principal}.db"

    def connect(
        self, principal: str, relay_url: str, **options: Any
    ) -> AbstractAsyncContextManager[Bureau]:
        """:meth:`Bureau.connect` for ``principal`` on this deployment's relay at ``relay_url``."""
        return Bureau.connect(
            self.identities[principal],
            relay_url=relay_url,
            relay_id=self.relay_id,
            store=self.store(principal),
            coordinator=self.coordinator,
            anchors=self.anchors,
            **options,
        )


def make_deployment(
    root: Path,
    members: Sequence[Member],
    *,
    now: int,
    rng: RandomSource = os.urandom,
    relay_id: str = "XP.relay-lyon",
    port: int = 0,
) -> Deployment:
    """Create the deployment's files under ``root`` (which must exist) and return it."""
    coordinators = [m.principal for m in members if m.role == "coordinator"]
    if len(coordinators) != 1:
        raise UsageError("a deployment lists exactly one coordinator")
    roots = [SigningKeyPair(rng(32)) for _ in range(3)]
    anchor = TrustAnchor(
        1,
        now - DAY,
        None,
        tuple(RootKey(f"root holder {i + 1}", key.public_key) for i, key in enumerate(roots)),
        2,
    )
    draft = anchor.draft()
    for key in roots[:2]:
        draft = draft.sign(key)
    anchor_file = root / "anchor.signed"
    anchor_file.write_bytes(draft.encode())

    schedule = EncryptionKeySchedule()
    identities: dict[str, PrivateIdentity] = {}
    entries = []
    for member in members:
        signer, encryption = SigningKeyPair(rng(32)), EncryptionKeyPair(rng(32))
        identities[member.principal] = PrivateIdentity(member.principal, signer, [encryption])
        entries.append(
            new_principal(
                member.principal,
                name=member.name,
                role=member.role,
                signing_key=signer.public_key,
                encryption_key=schedule.record(
                    signer, member.principal, encryption.public_key, now - 60
                ),
                since=now - 60,
            )
        )
    relay_key, relay_encryption = SigningKeyPair(rng(32)), EncryptionKeyPair(rng(32))
    record = schedule.record(relay_key, relay_id, relay_encryption.public_key, now - 60)
    entries.append(
        new_principal(
            relay_id,
            name="Relay",
            role="relay",
            signing_key=relay_key.public_key,
            encryption_key=record,
            since=now - 60,
        )
    )
    document = new_directory(anchor=anchor.hash, issued=now - 60, entries=entries)
    signed = document.draft()
    for key in roots[:2]:
        signed = signed.sign(key)
    directory_file = root / "directory.signed"
    directory_file.write_bytes(signed.encode())
    config = config_from_mapping(
        {
            "relay_id": relay_id,
            "database": "relay.db",
            "keystore": "relay.keystore",
            "directory": directory_file.name,
            "anchors": [anchor_file.name],
            "listen": {"host": "127.0.0.1", "port": port, "shutdown_timeout": 5},
        },
        base=root,
    )
    return Deployment(
        root,
        relay_id,
        coordinators[0],
        anchor_file,
        directory_file,
        identities,
        config,
        relay_key=relay_key,
        relay_encryption=HeldEncryptionKey(relay_encryption, record.not_before, record.not_after),
    )


@asynccontextmanager
async def running_relay(
    deployment: Deployment, *, clock: Callable[[], int] | None = None
) -> AsyncIterator[RunningRelay]:
    """Run the deployment's relay in a task group; stop it gracefully on exit."""
    stop = anyio.Event()
    run = partial(
        run_relay, deployment.config, shutdown_trigger=stop.wait, signer=deployment.relay_key
    )
    if clock is not None:
        run = partial(run, clock=clock)
    async with anyio.create_task_group() as tasks:
        running: RunningRelay = await tasks.start(run)
        try:
            yield running
        finally:
            stop.set()
