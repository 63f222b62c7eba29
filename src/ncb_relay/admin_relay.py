"""``ncb-relay serve`` and ``ncb-relay relay ...``: running, setting up and backing up a relay.

``serve`` runs the relay node of a configuration
(:func:`ncb_relay.relay.launch.run_relay`) on trio until SIGTERM or SIGINT,
logging JSON lines to standard error (:mod:`ncb_relay.relay.logs`).

``relay init`` writes a commented starter configuration
(:mod:`ncb_relay.relay.config`) and the relay's keys (a keystore, as ``keys
generate`` writes one) into a new directory.  ``relay backup`` copies the
relay's SQLite store while the relay runs: SQLite's online backup reads a
consistent snapshot, the copy goes to a temporary file in the target's
directory, is checked and flushed to disk, and only then appears under its
name (never over an existing file unless ``--force``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sqlite3
import time
from functools import partial
from pathlib import Path

import anyio

from .admin_files import about, write_bytes
from .admin_keystores import add_kdf_option, add_passphrase_option, save_keystore
from .admin_options import SubParsers, add_command, add_force_option
from .errors import NcbRelayError, UsageError
from .exception_groups import leaf_errors
from .identity import EncryptionKeyPair, SigningKeyPair, check_principal_id
from .keyring import HeldEncryptionKey, Keyring
from .lifecycle import EncryptionKeySchedule
from .relay.config import RelayConfig, load_config
from .relay.launch import RunningRelay, load_trusted_directory, run_relay, wait_for_stop_signal
from .relay.logs import configure_logging

__all__ = ["CONFIG_NAME", "KEYSTORE_NAME", "register", "starter_config"]

CONFIG_NAME = "relay.toml"
KEYSTORE_NAME = "relay.keystore"


def starter_config(relay_id: str) -> str:
    """The commented starter configuration for ``relay_id`` (paths relative to the file)."""
    return f"""\
# ncb_relay relay configuration (TOML).  Every setting can be overridden by an
# environment variable: NCB_RELAY_<KEY>, or NCB_RELAY_<SECTION>__<KEY> inside a
# section (NCB_RELAY_LISTEN__PORT=8080).  Relative paths are relative to this file.

# The relay's principal id, as listed in the directory.
relay_id = "{relay_id}"
# The mailbox store (SQLite, WAL, synchronous=FULL); back it up with
# `ncb-relay relay backup --config THIS_FILE --out COPY.db`.
database = "relay.db"
# The signed directory the relay serves and checks senders against, and the
# coordinator's trust anchors that sign it (oldest first).  Copy them here
# (`ncb-relay directory ...` produces them); a new directory version takes
# effect when the relay restarts.
directory = "directory.signed"
anchors = ["anchor.signed"]
# The relay's private keys; the passphrase is read from the environment
# variable named by passphrase_env when the relay starts (never stored here).
keystore = "{KEYSTORE_NAME}"
passphrase_env = "NCB_RELAY_PASSPHRASE"

[listen]
# Plain HTTP: terminate TLS in front of the relay, or keep it on loopback.
host = "127.0.0.1"
port = 8443
# After a shutdown signal: seconds in-flight requests get to finish.
shutdown_timeout = 10.0
keep_alive_timeout = 5.0

[limits]
# A larger body is refused with 413 before it is read (the largest envelope
# the relay accepts, 8 MiB by default, must fit).
max_body_bytes = 8388608
# A body must arrive in full within this many seconds of the request (else 408).
body_deadline = 30.0
# Header fields: total bytes and count (else 431).
max_header_bytes = 16384
max_header_count = 100
# Longest wait of a long-poll fetch, in seconds, and how many one bureau may hold.
long_poll_max_wait = 30
max_long_polls_per_bureau = 4
# Seconds a fetched message stays handed out; unacknowledged, it is handed out
# again after this (delivery is at least once).  At most 60 (API-21).
lease = 60

[quota]
# What one bureau may keep at the relay awaiting delivery (not yet acknowledged
# by every recipient, not expired): messages and envelope bytes (at least the
# largest envelope, 8 MiB).  Over it, a submission is refused with 429 and
# Retry-After (retry_after seconds) and nothing is stored.
sender_max_messages = 10000
sender_max_bytes = 1073741824
# Copies waiting in one mailbox.  A submission to a full mailbox gets the same
# 429, which tells its sender that some recipient is full; 0 turns the cap off
# (then only the senders' quotas bound the store).
mailbox_max_messages = 100000
retry_after = 60

[metrics]
# Prometheus metrics at /metrics on the operator's own listener, never on the
# bureaus' API (they name mailboxes).  Off unless a port is set; keep the host
# on loopback or an operator-only network.
host = "127.0.0.1"
# port = 9464

[purge]
# Every `interval` seconds, expired messages are deleted, `batch` (at most
# 1000) per transaction, again at once while a batch comes back full.
interval = 60.0
batch = 1000

[log]
# JSON lines on standard error: debug, info, warning or error.  The log never
# holds a message body, a header value, a key or a passphrase.
level = "info"
"""


def _init(args: argparse.Namespace) -> int:
    relay_id = check_principal_id(args.relay_id, error=UsageError)
    directory = Path(args.dir)
    config_path, keystore_path = directory / CONFIG_NAME, directory / KEYSTORE_NAME
    with about(directory):
        directory.mkdir(parents=True, exist_ok=True)
        for path in (config_path, keystore_path):
            if os.path.lexists(path):
                raise UsageError(f"{path} exists; relay init never overwrites a file")
    now = int(args.now) if args.now is not None else int(time.time())
    schedule = EncryptionKeySchedule()
    held = HeldEncryptionKey(
        EncryptionKeyPair.generate(os.urandom), now, now + schedule.period + schedule.overlap
    )
    keyring = Keyring(relay_id, SigningKeyPair.generate(os.urandom), [held])
    with about(keystore_path):
        save_keystore(args, str(keystore_path), keyring)
    with about(config_path):
        write_bytes(config_path, starter_config(relay_id).encode("utf-8"), replace=False)
        load_config(config_path)  # the starter file must load as written
    print(f"wrote the keys of {relay_id} to {keystore_path} (mode 0600)")
    print(f"wrote a starter configuration to {config_path}")
    print(f"next: ncb-relay keys export --keystore {keystore_path} --out IDENTITY.json")
    return 0


def backup_database(source: Path, target: Path, *, replace: bool) -> None:
    """Copy the SQLite database ``source`` to ``target`` consistently, while it is in use."""
    if not source.is_file():
        raise UsageError(f"{source} is not a database file")
    if not replace and os.path.lexists(target):
        raise UsageError(f"{target} exists; pass --force to replace it")
    temporary = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    try:
        reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            writer = sqlite3.connect(temporary)
            try:
                reader.backup(writer)
                writer.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                (verdict,) = writer.execute("PRAGMA integrity_check").fetchone()
                if verdict != "ok":
                    raise UsageError(f"the copy of {source} failed its integrity check")
            finally:
                writer.close()
        finally:
            reader.close()
        fd = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temporary, target)
        else:
            os.link(temporary, target)  # fails if the target appeared meanwhile
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot back up {source}: {exc}") from None
    except FileExistsError:
        raise UsageError(f"{target} appeared meanwhile; nothing was replaced") from None
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or type(exc).__name__}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _backup(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    target = Path(args.out)
    with about(target):
        backup_database(config.database, target, replace=args.force)
    print(f"backed up {config.database} to {target}")
    return 0


async def _serve_until_signal(config: RelayConfig) -> None:
    async with anyio.create_task_group() as tasks:
        running: RunningRelay = await tasks.start(
            partial(run_relay, config, shutdown_trigger=wait_for_stop_signal)
        )
        metrics = f"; metrics on {running.metrics.url}/metrics" if running.metrics else ""
        print(
            f"relay {config.relay_id} serving on {running.api.url}{metrics}; SIGTERM stops it",
            flush=True,
        )
    print(f"relay {config.relay_id} stopped", flush=True)


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    load_trusted_directory(config, now=int(time.time()))  # fail before anything starts
    configure_logging(config.log.level)  # JSON lines on stderr
    try:
        anyio.run(_serve_until_signal, config, backend="trio")
    except BaseExceptionGroup as group:  # one failure at start-up: show it as itself
        leaves = leaf_errors(group)
        if len(leaves) == 1 and isinstance(leaves[0], NcbRelayError):
            raise leaves[0] from group
        if len(leaves) == 1 and isinstance(leaves[0], OSError):
            where = f"{config.listen.host}:{config.listen.port}"
            reason = leaves[0].strerror or type(leaves[0]).__name__
            raise UsageError(f"cannot serve on {where}: {reason}") from group
        raise
    return 0


def register(commands: SubParsers) -> None:
    serve = add_command(
        commands,
        "serve",
        _serve,
        summary="run the relay node from its configuration",
        description=(
            "Verify the configured directory against the trust anchors, open the store and "
            "serve the relay's HTTP API (plain HTTP, on trio) until SIGTERM or SIGINT, which "
            "stop it gracefully: no new connection is accepted and requests in flight finish "
            "within listen.shutdown_timeout. NCB_RELAY_* environment variables override the "
            "file."
        ),
    )
    serve.add_argument("--config", required=True, help="the relay's TOML configuration")
    relay = commands.add_parser(
        "relay",
        help="set up and back up a relay node",
        description="Write a relay's starter configuration and keys; back up its store.",
    )
    group = relay.add_subparsers(
        dest="relay_command",
        required=True,
        metavar="COMMAND",
        help="the relay command to run; ncb-relay relay COMMAND --help explains it",
    )
    init = add_command(
        group,
        "init",
        _init,
        parent="relay",
        summary="write a starter configuration and the relay's keys into a directory",
        description=(
            f"Write DIR/{CONFIG_NAME} (commented; every setting explained) and "
            f"DIR/{KEYSTORE_NAME} (the relay's signing and encryption keys, locked under "
            "a passphrase). Refuses to overwrite either file."
        ),
    )
    init.add_argument("--dir", required=True, help="the directory to write into")
    init.add_argument("--relay-id", required=True, help="the relay's principal id (XP.relay-lyon)")
    init.add_argument(
        "--now", type=int, default=None, help="start of the first key's window (epoch seconds)"
    )
    add_passphrase_option(init)
    add_kdf_option(init)
    backup = add_command(
        group,
        "backup",
        _backup,
        parent="relay",
        summary="copy the relay's store while it runs",
        description=(
            "Copy the SQLite store named by the configuration to OUT with SQLite's online "
            "backup: a consistent snapshot, checked, flushed and then moved into place."
        ),
    )
    backup.add_argument("--config", required=True, help="the relay's TOML configuration")
    backup.add_argument("--out", required=True, help="the file to write the copy to")
    add_force_option(backup, "replace OUT if it exists")
