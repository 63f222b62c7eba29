"""The relay the examples run against: a throw-away one of their own, or an existing one.

Run with no arguments, an example makes a deployment in a temporary folder
(:func:`ncb_relay.demo.deployment.make_deployment`: root keys, trust anchor,
signed directory, fresh keys for every principal) and runs its relay on a free
loopback port.  With ``--relay URL`` it joins an existing deployment that lists
the three principals below: ``--relay-id`` names the relay, ``--anchor`` is the
trust anchor file, and ``--keys DIR`` holds ``<principal>.keystore`` for each
principal the example plays, unlocked with the passphrase in the environment
variable ``NCB_KEYSTORE_PASSPHRASE``; the bureaus' journals are kept there too
(``<principal>.db``), so sequence numbers keep growing from one run to the next.

Run as a script, it sets up such a deployment to join and serves its relay
until interrupted (a playground, not a production setup: real keys are made
with ``ncb-relay keys`` and ``ncb-relay root``, each by its holder)::

    NCB_KEYSTORE_PASSPHRASE=... python examples/example_relay.py DIR
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread

from ncb_relay.anchor import AnchorChain
from ncb_relay.bureau import BlockingBureau, Bureau, Handler, SyncHandler
from ncb_relay.demo.deployment import Deployment, Member, make_deployment, running_relay
from ncb_relay.identity import PrivateIdentity, SigningKeyPair
from ncb_relay.keyring import HeldEncryptionKey, Keyring
from ncb_relay.keystore import read_keystore, write_keystore
from ncb_relay.messages import Body
from ncb_relay.relay.launch import wait_for_stop_signal
from ncb_relay.verified_directory import load_directory

SEOUL, RABAT, GS = "KR.ncb-seoul", "MA.ncb-rabat", "XP.interpol-gs"
MEMBERS = (
    Member(GS, "INTERPOL General Secretariat", role="coordinator"),
    Member(SEOUL, "NCB Seoul"),
    Member(RABAT, "NCB Rabat"),
)
UNLOCK_ENV = "NCB_KEYSTORE_PASSPHRASE"


def add_relay_arguments(parser: argparse.ArgumentParser) -> None:
    join = parser.add_argument_group("joining an existing relay (default: start a throw-away one)")
    join.add_argument("--relay", metavar="URL", help="the relay's URL")
    join.add_argument("--relay-id", default="XP.relay-lyon", help="the relay's principal id")
    join.add_argument("--anchor", type=Path, metavar="FILE", help="the trust anchor file")
    join.add_argument(
        "--keys",
        type=Path,
        metavar="DIR",
        help=f"<principal>.keystore files (passphrase in ${UNLOCK_ENV}) and journals",
    )


@dataclass(frozen=True)
class World:
    """A relay to talk through and the keys of the principals an example plays."""

    relay_url: str
    relay_id: str
    anchors: AnchorChain
    identities: Mapping[str, PrivateIdentity]
    journals: Path

    def _options(self, principal: str) -> dict[str, Any]:
        return {
            "relay_url": self.relay_url,
            "relay_id": self.relay_id,
            "store": self.journals / f"{principal}.db",
            "coordinator": GS,
            "anchors": self.anchors,
        }

    def connect(
        self, principal: str, handlers: dict[type[Body] | str, Handler] | None = None
    ) -> AbstractAsyncContextManager[Bureau]:
        """``Bureau.connect`` for ``principal``."""
        return Bureau.connect(
            self.identities[principal], handlers=handlers, **self._options(principal)
        )

    def blocking(
        self, principal: str, handlers: dict[type[Body] | str, SyncHandler] | None = None
    ) -> BlockingBureau:
        """A :class:`BlockingBureau` for ``principal``."""
        return BlockingBureau(
            self.identities[principal], handlers=handlers, **self._options(principal)
        )


@asynccontextmanager
async def local_relay(folder: Path) -> AsyncIterator[tuple[Deployment, str]]:
    """A new deployment in ``folder`` and its relay, running; yield both and the relay's URL."""
    deployment = make_deployment(folder, MEMBERS, now=int(time.time()))
    async with running_relay(deployment) as relay:
        yield deployment, relay.api.url


@asynccontextmanager
async def joined(args: argparse.Namespace, principals: Iterable[str]) -> AsyncIterator[World]:
    """The world ``args`` describe: an existing relay (``--relay``) or a new local one."""
    if args.relay is not None:
        if args.anchor is None or args.keys is None:
            raise SystemExit("--relay needs --anchor FILE and --keys DIR")
        passphrase = os.environ.get(UNLOCK_ENV)
        if passphrase is None:
            raise SystemExit(f"set {UNLOCK_ENV} to the keystores' passphrase")
        yield World(
            relay_url=args.relay,
            relay_id=args.relay_id,
            anchors=AnchorChain.trust(args.anchor.read_bytes()),
            identities={
                p: read_keystore(args.keys / f"{p}.keystore", passphrase).identity
                for p in principals
            },
            journals=args.keys,
        )
        return
    with tempfile.TemporaryDirectory(prefix="ncb-example-") as folder:
        async with local_relay(Path(folder)) as (deployment, url):
            print(f"relay {deployment.relay_id} at {url} (deployment in {folder})")
            yield World(
                relay_url=url,
                relay_id=deployment.relay_id,
                anchors=deployment.anchors,
                identities=deployment.identities,
                journals=Path(folder),
            )


@contextmanager
def joined_blocking(args: argparse.Namespace, principals: Iterable[str]) -> Iterator[World]:
    """:func:`joined` for blocking code: a local relay runs in a background thread."""
    with (
        anyio.from_thread.start_blocking_portal("trio") as portal,
        portal.wrap_async_context_manager(joined(args, principals)) as world,
    ):
        yield world


def write_keystores(deployment: Deployment, folder: Path, passphrase: str) -> None:
    """Every member's private keys as ``folder/<principal>.keystore``, for ``--keys``."""
    directory = load_directory(deployment.directory_file.read_bytes(), anchors=deployment.anchors)
    for principal, identity in deployment.identities.items():
        assert isinstance(identity.signer, SigningKeyPair)
        windows = {r.key.key_id: r for r in directory.entry(principal).encryption_keys}
        held = []
        for pair in identity.encryption_keys:
            window = windows[pair.public_key.key_id]
            held.append(HeldEncryptionKey(pair, window.not_before, window.not_after))
        keyring = Keyring(principal, identity.signer, held)
        write_keystore(folder / f"{principal}.keystore", keyring, passphrase)


async def serve_playground(folder: Path, passphrase: str) -> None:
    """Set up a deployment in the new ``folder``, print how to join it, serve until SIGINT/TERM."""
    folder.mkdir(parents=True)
    async with local_relay(folder) as (deployment, url):
        write_keystores(deployment, folder, passphrase)
        print(f"relay {deployment.relay_id} at {url}; run the examples against it with")
        print(f"  --relay {url} --anchor {deployment.anchor_file} --keys {folder}", flush=True)
        await wait_for_stop_signal()
    print("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve a playground relay for the examples.")
    parser.add_argument("folder", type=Path, help="a new folder for the deployment's files")
    folder = parser.parse_args().folder
    passphrase = os.environ.get(UNLOCK_ENV)
    if passphrase is None:
        sys.exit(f"set {UNLOCK_ENV} to the passphrase for the keystores")
    if folder.exists():
        sys.exit(f"{folder} exists: give a new folder")
    anyio.run(serve_playground, folder, passphrase, backend="trio")
