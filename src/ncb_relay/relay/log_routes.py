"""The relay's log over HTTP (spec/relay-api.md, "The log": API-24 to API-30).

Reads are public: the log holds only hashes (LOG-1).  Every query is parsed
strictly (each parameter once, decimal, bounded) before the store is asked,
and a size beyond the log's is refused rather than guessed at.  A witness
posts its cosignature of a checkpoint the relay signed; the relay verifies it
with the witness's directory signing key before keeping the line, so what it
serves next to its checkpoints is only ever valid evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from ..checkpoint import DEFAULT_LIMITS, parse_note, verify_checkpoint
from ..errors import LimitExceeded, NcbRelayError
from ..log_keys import relay_log_key, witness_key
from ..merkle import MAX_TREE_SIZE
from ..verified_directory import VerifiedDirectory
from .context import RelayContext
from .http_auth import authenticate
from .problems import Problem
from .rate_limit import RateLimited
from .storage import MAX_FETCH

__all__ = [
    "CHECKPOINT_MEDIA_TYPE",
    "charge_public_read",
    "get_checkpoint",
    "get_checkpoints",
    "get_consistency",
    "get_entries",
    "get_inclusion",
    "parse_query",
    "post_cosignature",
]

CHECKPOINT_MEDIA_TYPE = "text/plain; charset=utf-8"
_NUMBER = re.compile(r"[0-9]{1,19}")


def parse_query(request: Request, names: dict[str, int | None]) -> dict[str, int]:
    """The named integer parameters (``None``: required; else the default); nothing else."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    values: dict[str, int] = {}
    for part in query.split("&") if query else ():
        name, equals, value = part.partition("=")
        if name not in names or name in values or not equals or not _NUMBER.fullmatch(value):
            raise Problem(400, "malformed")
        values[name] = int(value)
        if values[name] > MAX_TREE_SIZE:
            raise Problem(400, "malformed")
    for name, default in names.items():
        if name not in values:
            if default is None:
                raise Problem(400, "malformed")
            values[name] = default
    return values


def charge_public_read(ctx: RelayContext) -> None:
    """One token of the relay-wide bucket of public log reads, or ``429`` (API-21).

    Every read runs on the store's one writer, beside the acceptances: the
    bucket bounds what unauthenticated readers can take from them.
    """
    if ctx.log_reads is None:
        return
    try:
        ctx.log_reads.charge("public log reads", ctx.clock())
    except RateLimited as exc:
        raise Problem(429, "limit-exceeded", {"Retry-After": str(exc.retry_after)}) from exc


def _json(value: object) -> Response:
    return Response(
        json.dumps(value, separators=(",", ":")).encode(),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _hex(proof: Sequence[bytes]) -> list[str]:
    return [h.hex() for h in proof]


async def get_checkpoint(request: Request, ctx: RelayContext) -> Response:
    """The latest signed checkpoint, with its cosignatures (API-24)."""
    charge_public_read(ctx)
    cosigned = parse_query(request, {"cosigned": 0})["cosigned"]
    if cosigned > 31:
        raise Problem(400, "malformed")
    note = await ctx.store.log_checkpoint(cosigned=cosigned)
    if note is None:
        raise Problem(404, "not-found")
    return Response(note, media_type=CHECKPOINT_MEDIA_TYPE, headers={"Cache-Control": "no-store"})


async def get_checkpoints(request: Request, ctx: RelayContext) -> Response:
    """The signed checkpoints above a size, smallest first (API-25)."""
    charge_public_read(ctx)
    query = parse_query(request, {"after": 0, "limit": 100})
    if not 1 <= query["limit"] <= MAX_FETCH:
        raise Problem(400, "malformed")
    notes = await ctx.store.log_checkpoints(after=query["after"], limit=query["limit"])
    return _json({"checkpoints": [note.decode("utf-8") for note in notes]})


async def get_inclusion(request: Request, ctx: RelayContext) -> Response:
    """The inclusion proof of a leaf in the tree of a size (API-26)."""
    charge_public_read(ctx)
    query = parse_query(request, {"index": None, "size": None})
    index, size = query["index"], query["size"]
    if not index < size <= await ctx.store.log_size():
        raise Problem(400, "malformed")
    proof = await ctx.store.log_inclusion(index, size)
    return _json({"index": index, "size": size, "proof": _hex(proof)})


async def get_consistency(request: Request, ctx: RelayContext) -> Response:
    """The consistency proof between two sizes (API-27)."""
    charge_public_read(ctx)
    query = parse_query(request, {"from": None, "to": None})
    old, new = query["from"], query["to"]
    if not old <= new <= await ctx.store.log_size():
        raise Problem(400, "malformed")
    proof = await ctx.store.log_consistency(old, new)
    return _json({"from": old, "to": new, "proof": _hex(proof)})


async def get_entries(request: Request, ctx: RelayContext) -> Response:
    """The log's entries from an index, with their kinds (API-28)."""
    charge_public_read(ctx)
    query = parse_query(request, {"start": 0, "limit": MAX_FETCH})
    if not 1 <= query["limit"] <= MAX_FETCH:
        raise Problem(400, "malformed")
    entries = await ctx.store.log_entries(start=query["start"], limit=query["limit"])
    return _json(
        {"entries": [{"index": e.index, "kind": e.kind, "hash": e.entry.hex()} for e in entries]}
    )


async def post_cosignature(request: Request, ctx: RelayContext) -> Response:
    """Keep a witness's cosignature of a checkpoint this relay signed (API-29)."""
    auth, body = await authenticate(
        request, ctx, max_body=DEFAULT_LIMITS.max_bytes, media_type="text/plain"
    )
    directory = ctx.current_directory()
    if not isinstance(directory, VerifiedDirectory):
        raise Problem(404, "not-found")
    now = ctx.clock()
    try:
        witness = witness_key(directory, auth.principal, now)
        log = relay_log_key(directory, ctx.relay_id, now)
    except NcbRelayError as exc:
        raise Problem(403, "unknown-key") from exc
    try:
        verified = verify_checkpoint(body, log=log, witnesses=[witness], threshold=1)
    except NcbRelayError as exc:
        raise Problem(
            400 if exc.code in ("malformed", "limit-exceeded") else 422, exc.code
        ) from exc
    text = verified.checkpoint.text()  # the one encoding of its checkpoint (LOG-6)
    own = await ctx.store.log_checkpoint_note(verified.size)
    if own is None or parse_note(own).text != text:
        raise Problem(422, "binding-mismatch")
    line = next(  # the one that verified (the threshold of one was met)
        s.line()
        for s in reversed(parse_note(body).signatures)
        if s.name == witness.name and s.key_id == witness.key_id
    )
    try:
        await ctx.store.log_add_cosignature(verified.size, witness.name, line)
    except LimitExceeded as exc:  # 31 witnesses cosigned it already (LOG-8)
        raise Problem(422, "limit-exceeded") from exc
    return Response(status_code=204)
