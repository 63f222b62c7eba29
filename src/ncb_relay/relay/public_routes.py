"""The routes that need no authentication: directory, health, readiness (API-14 to API-18)."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NcbRelayError
from ..verified_directory import VerifiedDirectory
from .context import RelayContext
from .problems import Problem

__all__ = ["DIRECTORY_MEDIA_TYPE", "get_directory", "health", "readiness"]

DIRECTORY_MEDIA_TYPE = "application/octet-stream"


def _json(value: object, status: int = 200) -> Response:
    return Response(
        json.dumps(value, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def get_directory(request: Request, ctx: RelayContext) -> Response:
    directory = ctx.directory()
    if not isinstance(directory, VerifiedDirectory):
        raise Problem(404, "not-found")
    index = ctx.directory_leaves.get(directory.hash)
    if index is None:  # logged at start: a look-up, once per version
        index = ctx.directory_leaves[directory.hash] = await ctx.store.log_directory(directory.hash)
    return Response(
        directory.data,
        media_type=DIRECTORY_MEDIA_TYPE,
        headers={
            "ETag": f'"{directory.hash.hex()}"',
            "Cache-Control": "no-cache",
            "NCBR-Log-Index": str(index),
        },
    )


async def health(request: Request, ctx: RelayContext) -> Response:
    return _json({"status": "ok"})


async def readiness(request: Request, ctx: RelayContext) -> Response:
    now = ctx.clock()
    ready_at = ctx.verifier.nonces.ready_at
    if ready_at is not None and now < ready_at:
        raise Problem(503, "not-ready", {"Retry-After": str(ready_at - now)})
    directory = ctx.directory()
    if isinstance(directory, VerifiedDirectory):
        directory.freshness(now)  # DirectoryExpired: 503 through the route wrapper
    try:
        await ctx.store.queue_depth(ctx.relay_id)
    except NcbRelayError as exc:
        raise Problem(503, "storage", {"Retry-After": "1"}) from exc
    return _json({"status": "ready"})
