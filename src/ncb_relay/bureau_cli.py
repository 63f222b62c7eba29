"""``ncb-relay bureau send|watch|show``: a bureau's user on a real relay (an adapter).

``send`` and ``watch`` open the bureau's keystore (passphrase from a prompt or
``--passphrase-env``, never an argument), check the relay's directory against
the trust anchors given with ``--anchor`` and run the bureau client
(:class:`ncb_relay.bureau.Bureau`) on trio, with its journal in the SQLite file
``--journal``.  ``send`` seals one message whose body is a JSON file::

    {"schema": "ncbr.assistance-request", "version": 1, "content": {...}}

(``version`` defaults to 1; byte-string fields such as a SHA-256 are written in
hex).  The content is validated strictly against the body's model before
anything is opened, and a fault names the field (``content.summary: is
required``).  It then submits the message and reports its state: ``accepted``,
``queued`` or ``unknown`` (both are submitted again by the next ``send`` or by
``watch``), or an error if the relay refused it.  ``send`` does not run the
inbox: messages waiting at the relay stay there for ``watch``.

``watch`` runs the inbox and prints each verified message as it is handed
over, one line each (JSON lines with ``--json``), until ``--count`` messages,
``--timeout`` seconds or Ctrl-C; messages that fail verification are refused,
kept in the journal as evidence and reported on stderr, never printed as
messages.  A verified message of a schema this client does not know (an
agency's own) is printed too, without its body.

``show`` reads the journal alone (no keys, no network): the metadata of every
message sent and received, or of one request's conversation.  No command ever
prints a key or a passphrase; only ``watch --body`` prints what a message says.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.abc
from pydantic import ValidationError

from .admin_files import about, read_json
from .admin_keystores import add_passphrase_option, open_keystore, require_principal_keyring
from .admin_options import (
    SubParsers,
    add_anchor_option,
    add_command,
    add_json_option,
    load_anchor_chain,
    warn,
)
from .admin_times import show_time
from .anchor import AnchorChain
from .bureau import Bureau, BureauStore, Direction, Incoming, JournalRow, Outgoing, RowState
from .client import RelayClient
from .errors import InvalidBody, NcbRelayError, UsageError
from .exception_groups import leaf_errors
from .identity import PrivateIdentity, check_principal_id
from .messages import DEFAULT_REGISTRY, Body, DeliveryReceipt, Forward, OpaqueBody, encode_body
from .messages.fields import describe_validation_error, field_path

__all__ = ["load_body", "register"]

T = TypeVar("T")

MIN_HASH_PREFIX = 8  # hex digits: a shorter prefix of a message hash is refused
MAX_HEX_FIXES = 64  # byte-string fields read from hex in one body, at most
_NOT_DONE = (RowState.FAILED, RowState.UNKNOWN, RowState.QUEUED)  # show their detail


# --- the body file ------------------------------------------------------------------------------


def _tuples(value: Any) -> Any:
    """JSON arrays as tuples, the form the frozen body models hold."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


def _hex_field(content: dict[str, Any], loc: tuple[int | str, ...], schema: str) -> None:
    """Replace the hex text at ``loc`` in ``content`` (JSON values) by its bytes."""
    holder: Any = content
    for part in loc[:-1]:
        holder = holder[part]
    text = holder[loc[-1]]
    try:
        holder[loc[-1]] = bytes.fromhex(text)
    except ValueError:
        field = field_path(("content", *loc))
        raise InvalidBody(
            f"{schema}: {field}: a byte string is written in hex", field=field, reason="wrong-type"
        ) from None


def load_body(path: str | os.PathLike[str]) -> Body:
    """The typed body in the JSON file ``path``; :class:`InvalidBody` names the field at fault."""
    value = read_json(path, "a message body (JSON)")
    for key in value:
        if key not in ("schema", "version", "content"):
            field = field_path((key,))
            raise InvalidBody(
                f"{field}: is not a key of a body file (schema, version, content)",
                field=field,
                reason="unexpected",
            )
    schema, version, content = value.get("schema"), value.get("version", 1), value.get("content")
    if not isinstance(schema, str):
        raise InvalidBody("schema: is required, a schema id such as ncbr.assistance-request")
    if type(version) is not int:
        raise InvalidBody("version: is an integer", field="version", reason="wrong-type")
    if not isinstance(content, dict):
        raise InvalidBody("content: is required, a JSON object", field="content", reason="missing")
    model = DEFAULT_REGISTRY.lookup(schema, version)
    if model is None:
        models = DEFAULT_REGISTRY.models.values()
        known = ", ".join(sorted({m.schema_id for m in models if m is not Forward}))
        shown = schema[:128].encode("ascii", "replace").decode()
        raise InvalidBody(
            f"schema: {shown!r} version {version} is not a body this command knows ({known})",
            field="schema",
            reason="unknown",
        )
    if model is Forward:
        raise UsageError("a forward is made from a received message by the coordinator's client")
    for _ in range(MAX_HEX_FIXES):
        try:
            body = model.model_validate(_tuples(content))
            break
        except ValidationError as exc:
            hex_texts = [
                error["loc"]
                for error in exc.errors(include_url=False)
                if error["type"] == "bytes_type" and isinstance(error.get("input"), str)
            ]
            if not hex_texts:
                field, reason, message = describe_validation_error(exc, ("content",))
                raise InvalidBody(f"{schema}: {message}", field=field, reason=reason) from None
            for loc in hex_texts:
                _hex_field(content, tuple(loc), schema)
    else:
        raise InvalidBody(f"{schema}: too many byte-string fields", field="content")
    encode_body(body)  # within the body limits (LimitExceeded otherwise), before any network
    return body


# --- showing ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A body's content as JSON values: bytes in hex, tuples as lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _row_json(row: JournalRow) -> dict[str, Any]:
    return {
        "pos": row.pos,
        "direction": row.direction.value,
        "at": row.at,
        "created": row.created,
        "sender": row.sender,
        "recipients": list(row.recipients),
        "schema": row.schema,
        "messageId": row.message_id.hex(),
        "hash": row.message_hash.hex(),
        "replyTo": _hex(row.reply_to),
        "request": _hex(row.refers_to),
        "state": row.state.value,
        "detail": row.detail,
    }


def _row_line(row: JournalRow) -> str:
    line = (
        f"{row.pos:>4}  {row.direction.value:<3}  {show_time(row.at)}  "
        f"{row.sender} -> {','.join(row.recipients)}  {row.schema}  {row.state.value}"
    )
    if row.detail and row.state in _NOT_DONE:
        line += f" ({row.detail})"
    line += f"  hash {row.message_hash.hex()}"
    if row.reply_to is not None:
        line += f"  reply-to {row.reply_to.hex()}"
    return line


def _incoming_json(bureau: Bureau, incoming: Incoming, *, body: bool) -> dict[str, Any]:
    message = incoming.message
    request = _request_of(bureau, incoming)
    state = bureau.conversations.get(request).state if request is not None else None
    shown: dict[str, Any] = {
        "sender": message.sender,
        "author": incoming.author,
        "schema": incoming.body.schema_id,
        "messageId": message.message_id.hex(),
        "hash": incoming.handle.message_hash.hex(),
        "replyTo": _hex(message.reply_to),
        "created": message.created,
        "request": _hex(request),
        "conversation": None if state is None else state.value,
    }
    if incoming.forwarded is not None:
        shown["forwardedBy"] = incoming.forwarded.forwarder
    if body:
        if isinstance(incoming.body, OpaqueBody):
            shown["body"] = None
        else:
            shown["body"] = _plain(incoming.body.model_dump(mode="python"))
    return shown


def _request_of(bureau: Bureau, incoming: Incoming) -> bytes | None:
    """The request whose conversation ``incoming`` belongs to, if this bureau follows it."""
    if incoming.conversation is not None:
        return incoming.conversation.request_hash
    candidates = [incoming.handle.message_hash, incoming.message.message_hash]
    if incoming.forwarded is not None:
        candidates.insert(0, incoming.forwarded.original_hash)
    return next((c for c in candidates if c in bureau.conversations), None)


def _incoming_line(shown: dict[str, Any]) -> str:
    sender = shown["sender"]
    if shown["author"] != sender:
        sender = f"{shown['author']} (forwarded by {sender})"
    line = (
        f"{show_time(shown['created'])}  from {sender}  {shown['schema']}  "
        f"id {shown['messageId']}  hash {shown['hash']}"
    )
    if shown["replyTo"] is not None:
        line += f"  reply-to {shown['replyTo']}"
    if shown["conversation"] is not None:
        line += f"  conversation {shown['conversation']}"
    return line


def _say(text: str) -> None:
    print(text, flush=True)


# --- running the client -------------------------------------------------------------------------


def _run(function: Callable[[], Awaitable[T]]) -> T:
    """Run ``function`` on trio; one failure from inside a task group is shown as itself."""
    try:
        return anyio.run(function, backend="trio")
    except BaseExceptionGroup as group:
        leaves = leaf_errors(group)
        if all(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
            raise KeyboardInterrupt from group
        errors = [leaf for leaf in leaves if isinstance(leaf, NcbRelayError)]
        if len(leaves) == 1 and errors:
            raise errors[0] from group
        raise


class _Reporter(logging.Handler):
    """The bureau client's warnings (a refused message, a relay out of reach) on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        code = getattr(record, "code", None)
        sender = getattr(record, "sender", None)
        extra = ", ".join(
            f"{name} {value}" for name, value in (("code", code), ("sender", sender)) if value
        )
        warn(f"{record.getMessage()}" + (f" ({extra})" if extra else ""))


@contextmanager
def _reported() -> Iterator[None]:
    logger = logging.getLogger("ncb_relay.bureau")
    handler = _Reporter(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _identity(args: argparse.Namespace) -> PrivateIdentity:
    with about(args.keystore):
        keyring, _ = open_keystore(args, args.keystore)
        return require_principal_keyring(keyring, args.keystore).identity


def _principal(text: str, option: str) -> str:
    try:
        return check_principal_id(text, error=UsageError)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc.message}") from None


@asynccontextmanager
async def _started(
    args: argparse.Namespace, identity: PrivateIdentity, anchors: AnchorChain
) -> AsyncIterator[Bureau]:
    """The bureau on its relay and journal, started (directory, rebuild) but not running."""
    with about(args.journal):
        store = BureauStore(Path(args.journal), principal=identity.principal)
    try:
        async with RelayClient(args.relay, relay_id=args.relay_id, identity=identity) as client:
            bureau = Bureau(
                identity,
                relay=client,
                store=store,
                coordinator=args.coordinator,
                anchors=anchors,
            )
            yield bureau
    finally:
        store.close()


def _prepare(args: argparse.Namespace) -> tuple[PrivateIdentity, AnchorChain]:
    _principal(args.coordinator, "--coordinator")
    _principal(args.relay_id, "--relay-id")
    anchors = load_anchor_chain(args.anchors)
    return _identity(args), anchors


# --- send ---------------------------------------------------------------------------------------


def _find_hash(rows: list[JournalRow], text: str, option: str) -> tuple[bytes, JournalRow | None]:
    """The message hash given (in full or as a prefix of one in the journal) and its row."""
    wanted = "".join(text.split()).lower()
    if len(wanted) < MIN_HASH_PREFIX or any(c not in "0123456789abcdef" for c in wanted):
        raise UsageError(
            f"{option}: a message hash in hex (at least its first {MIN_HASH_PREFIX} digits)"
        )
    found = {row.message_hash: row for row in rows if row.message_hash.hex().startswith(wanted)}
    if len(found) > 1:
        raise UsageError(f"{option}: {wanted} is the start of {len(found)} hashes; give more")
    if found:
        ((digest, row),) = found.items()
        return digest, row
    if len(wanted) == 64:
        return bytes.fromhex(wanted), None
    raise UsageError(f"{option}: no message in the journal has a hash starting {wanted}")


def _outgoing_json(outgoing: Outgoing) -> dict[str, Any]:
    header = outgoing.sealed.header
    acceptance = outgoing.acceptance
    return {
        "messageId": outgoing.message_id.hex(),
        "hash": outgoing.message_hash.hex(),
        "state": outgoing.state.value,
        "to": [r.principal for r in header.recipients],
        "replyTo": _hex(header.reply_to),
        "acceptedAt": None if acceptance is None else acceptance.accepted_at,
        "detail": outgoing.detail,
    }


def _send(args: argparse.Namespace) -> int:
    with about(args.body):
        body = load_body(args.body)
    to = [_principal(name, "--to") for name in args.to]
    if not to and args.reply_to is None:
        raise UsageError("name the recipients with --to (or answer a message with --reply-to)")
    identity, anchors = _prepare(args)

    async def send() -> tuple[list[Outgoing], Outgoing]:
        async with _started(args, identity, anchors) as bureau:
            await bureau.start()
            earlier = await bureau.flush()  # what an earlier run could not submit
            if args.reply_to is None:
                return earlier, await bureau.send(body, to=to)
            digest, row = _find_hash(bureau.store.rows(), args.reply_to, "--reply-to")
            if row is not None and row.direction is Direction.IN:
                incoming = bureau.received(row.message_id)
                return earlier, await bureau.reply(incoming, body, to=to or None)
            if not to:
                raise UsageError("--to: name the recipients of a reply to a message sent")
            return earlier, await bureau.send(body, to=to, reply_to=digest)

    with _reported():
        earlier, outgoing = _run(send)
    if args.json:
        shown = {"schema": body.schema_id, **_outgoing_json(outgoing)}
        shown["resubmitted"] = [_outgoing_json(o) for o in earlier]
        print(json.dumps(shown, indent=2))
    else:
        for old in earlier:
            print(f"resubmitted {old.message_id.hex()}: {old.state.value}")
        recipients = ", ".join(r.principal for r in outgoing.sealed.header.recipients)
        print(f"sent {body.schema_id} to {recipients}: {outgoing.state.value}")
        print(f"  message id  {outgoing.message_id.hex()}")
        print(f"  hash        {outgoing.message_hash.hex()}")
    if outgoing.state in (RowState.QUEUED, RowState.UNKNOWN):
        warn(
            f"the message is {outgoing.state.value} in {args.journal}; the next "
            "'ncb-relay bureau send' or 'bureau watch' submits it again"
        )
    return 0


# --- watch --------------------------------------------------------------------------------------


def _watch(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise UsageError("--count is at least 1")
    if args.timeout is not None and not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise UsageError("--timeout is a positive number of seconds")
    identity, anchors = _prepare(args)
    seen = 0

    async def watch() -> None:
        done = anyio.Event()

        async def show(incoming: Incoming) -> None:
            nonlocal seen
            shown = _incoming_json(bureau, incoming, body=args.body)
            if args.json:
                _say(json.dumps(shown))
            else:
                _say(_incoming_line(shown))
                if args.body:
                    _say("  " + json.dumps(shown["body"], ensure_ascii=False))
            seen += 1
            if args.count is not None and seen >= args.count:
                bureau.stop()  # the inbox takes no further message; they stay at the relay
                done.set()

        with about(args.journal):  # a journal that does not open is reported with its name
            BureauStore(Path(args.journal), principal=identity.principal).close()
        # every body, those of schemas this library does not know too; what an earlier run
        # had not finished is handed over again first (Bureau.connect)
        async with (
            Bureau.connect(
                identity,
                relay_url=args.relay,
                relay_id=args.relay_id,
                store=args.journal,
                coordinator=args.coordinator,
                anchors=anchors,
                handlers={"*": show},
            ) as bureau,
            anyio.create_task_group() as tasks,
        ):
            if threading.current_thread() is threading.main_thread():
                await tasks.start(_until_interrupted, done)
            with anyio.move_on_after(math.inf if args.timeout is None else args.timeout):
                await done.wait()
            tasks.cancel_scope.cancel()

    with _reported():
        _run(watch)
    if not args.json:
        print(f"watched: {seen} message{'' if seen == 1 else 's'}", file=sys.stderr)
    return 0


async def _until_interrupted(
    done: anyio.Event, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Set ``done`` at Ctrl-C (SIGINT), which then stops the watch gracefully."""
    with anyio.open_signal_receiver(signal.SIGINT) as signals:
        task_status.started()
        async for _ in signals:
            done.set()
            return


# --- show ---------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    principal = _principal(args.principal, "--principal")
    path = Path(args.journal)
    if not path.is_file():
        raise UsageError(f"{path} is not a bureau journal (no such file)")
    with about(path):
        store = BureauStore(path, principal=principal)
        try:
            rows = store.rows()
            refused = store.refused()
        finally:
            store.close()
    request: bytes | None = None
    if args.request is not None:
        request, _ = _find_hash(rows, args.request, "--request")
        rows = [row for row in rows if request in (row.message_hash, row.refers_to)]
    rows = [row for row in rows if row.schema != DeliveryReceipt.schema_id]  # evidence, not mail
    if args.json:
        shown: dict[str, Any] = {
            "principal": principal,
            "request": _hex(request),
            "messages": [_row_json(row) for row in rows],
            "refused": [
                {"at": at, "sender": sender, "code": code, "reason": reason}
                for at, sender, code, reason in refused
            ],
        }
        print(json.dumps(shown, indent=2))
        return 0
    what = f"request {request.hex()}" if request is not None else f"journal of {principal}"
    count = f"{len(rows)} message{'' if len(rows) == 1 else 's'}"
    print(f"{what}: {count}, {len(refused)} refused (kept as evidence)")
    for row in rows:
        print(_row_line(row))
    if args.request is None:
        for at, sender, code, _reason in refused:
            print(f"     refused  {show_time(at)}  from {sender or '?'}  {code}")
    return 0


# --- registering --------------------------------------------------------------------------------


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keystore", required=True, help="the bureau's keystore")
    add_passphrase_option(parser)
    parser.add_argument(
        "--relay", required=True, metavar="URL", help="the relay's origin (https://relay.example)"
    )
    parser.add_argument(
        "--relay-id", required=True, metavar="ID", help="the relay's principal id (XP.relay-lyon)"
    )
    add_anchor_option(parser, required=True, why="against which the relay's directory is checked")
    parser.add_argument(
        "--coordinator",
        required=True,
        metavar="ID",
        help="the coordinator's principal id (XP.interpol-gs)",
    )
    parser.add_argument(
        "--journal",
        required=True,
        metavar="DB",
        help="the bureau's journal (SQLite; created on first use; one process at a time)",
    )


def register(commands: SubParsers) -> None:
    bureau = commands.add_parser(
        "bureau",
        help="send, receive and look up a bureau's messages on a relay",
        description=(
            "A bureau's messages on a real relay: send one from a JSON file, watch the inbox, "
            "show the journal. send and watch need the bureau's keystore and the trust "
            "anchors; show reads the journal alone."
        ),
    )
    group = bureau.add_subparsers(
        dest="bureau_command",
        required=True,
        metavar="COMMAND",
        help="the bureau command to run; ncb-relay bureau COMMAND --help explains it",
    )
    send = add_command(
        group,
        "send",
        _send,
        parent="bureau",
        summary="seal and submit one message whose body is a JSON file",
        description=(
            'BODY is a JSON file {"schema": "ncbr.assistance-request", "version": 1, '
            '"content": {...}} (version defaults to 1; byte strings in hex), validated '
            "against the body's model. The message is sealed to the recipients' keys in the "
            "verified directory, recorded in the journal, submitted, and its state printed: "
            "accepted, queued or unknown (submitted again by the next send or by watch). "
            "The inbox is not read."
        ),
    )
    send.add_argument("body", metavar="BODY", help="the message body, a JSON file")
    _add_connection_options(send)
    send.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="ID",
        help="a recipient's principal id; repeat it for each (a reply defaults to the sender "
        "and the other recipients of the message answered)",
    )
    send.add_argument(
        "--reply-to",
        metavar="HASH",
        help="the hash of the message answered (as watch and show print it; a unique prefix "
        f"of at least {MIN_HASH_PREFIX} hex digits will do)",
    )
    add_json_option(send)
    watch = add_command(
        group,
        "watch",
        _watch,
        parent="bureau",
        summary="print each verified incoming message as it arrives",
        description=(
            "Run the inbox: each message is verified (signatures, recipient binding, "
            "freshness, replay, body, conversation), recorded in the journal, acknowledged to "
            "the relay and printed, one line each; refused messages are reported on stderr. "
            "Messages left queued are submitted again. Stops after --count messages, after "
            "--timeout seconds or at Ctrl-C, and exits 0."
        ),
    )
    _add_connection_options(watch)
    watch.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    watch.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    watch.add_argument(
        "--body", action="store_true", help="also print what each message says (its content)"
    )
    watch.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object a line (ids and hashes in hex, times in seconds since 1970)",
    )
    show = add_command(
        group,
        "show",
        _show,
        parent="bureau",
        summary="list the messages in a bureau's journal (offline, no keys)",
        description=(
            "Read the journal alone: direction, time, sender, recipients, schema, state and "
            "hash of every message sent and received, and the refused ones; with --request, "
            "the messages of one request's conversation. Needs no key and no network; the "
            "journal must not be in use by watch or send."
        ),
    )
    show.add_argument("--journal", required=True, metavar="DB", help="the bureau's journal")
    show.add_argument(
        "--principal", required=True, metavar="ID", help="the bureau whose journal it is"
    )
    show.add_argument(
        "--request",
        metavar="HASH",
        help="only the messages of this request (its hash, or a unique prefix of it)",
    )
    add_json_option(show)
