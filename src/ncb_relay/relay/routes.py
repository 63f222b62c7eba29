"""The relay's route table: the one place that lists every endpoint (API-1, API-19).

The Starlette routes (:mod:`.app`) and the OpenAPI document (:mod:`.openapi`)
are both generated from :data:`ENDPOINTS`, so neither can list a route the
other lacks; ``tests/test_relay_app_openapi.py`` checks the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from .context import RelayContext
from .log_routes import (
    CHECKPOINT_MEDIA_TYPE,
    get_checkpoint,
    get_checkpoints,
    get_consistency,
    get_entries,
    get_inclusion,
    post_cosignature,
)
from .mailbox_routes import acknowledge_messages, fetch_mailbox
from .public_routes import DIRECTORY_MEDIA_TYPE, get_directory, health, readiness
from .submission import ENVELOPE_MEDIA_TYPE, submit_envelope

__all__ = ["API_PREFIX", "ENDPOINTS", "Endpoint", "Handler", "QueryParameter"]

API_PREFIX = "/v1"

Handler = Callable[[Request, RelayContext], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class QueryParameter:
    name: str
    description: str
    minimum: int
    maximum: int | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    method: str
    path: str
    handler: Handler
    summary: str
    public: bool
    responses: Mapping[int, str]
    request_media: str | None = None
    request_schema: str | None = None
    response_media: str | None = "application/json"
    response_schema: str | None = None
    query: tuple[QueryParameter, ...] = field(default=())


async def serve_openapi(request: Request, ctx: RelayContext) -> Response:
    document: bytes = request.app.state.openapi
    return Response(document, media_type="application/json")


_AUTH = {
    401: "request authentication failed (AUTH-15)",
    429: "rate limit (Retry-After)",
    503: "store, directory or nonce memory unavailable",
}

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "submit",
        "POST",
        f"{API_PREFIX}/messages",
        submit_envelope,
        "Submit an envelope for its recipients",
        public=False,
        responses={
            202: "durably accepted (also for an identical resubmission)",
            400: "the envelope does not parse",
            403: "the envelope's sender is not the authenticated bureau",
            409: "the message id is held for other bytes or another sender",
            413: "body larger than the envelope limit",
            415: "not application/octet-stream",
            422: "the envelope fails its checks against the directory or the clock",
            **_AUTH,
        },
        request_media=ENVELOPE_MEDIA_TYPE,
        response_schema="Acceptance",
        query=(QueryParameter("known", "size of the checkpoint the bureau holds (API-30)", 0),),
    ),
    Endpoint(
        "fetch",
        "GET",
        f"{API_PREFIX}/mailbox",
        fetch_mailbox,
        "Fetch the authenticated bureau's own mailbox (long-poll)",
        public=False,
        responses={200: "a batch, possibly empty", 400: "bad query", 413: "a body", **_AUTH},
        response_schema="Batch",
        query=(
            QueryParameter("after", "cursor of the last batch (default 0)", 0),
            QueryParameter("limit", "most messages to return (default: the maximum)", 1),
            QueryParameter("wait", "seconds to wait for a message (default 0)", 0),
        ),
    ),
    Endpoint(
        "acknowledge",
        "POST",
        f"{API_PREFIX}/mailbox/ack",
        acknowledge_messages,
        "Acknowledge (delete) messages of the authenticated bureau's own mailbox",
        public=False,
        responses={
            204: "done, whatever the ids name",
            400: "bad body",
            413: "body too large",
            415: "not application/json",
            **_AUTH,
        },
        request_media="application/json",
        request_schema="Acknowledgement",
        response_media=None,
    ),
    Endpoint(
        "directory",
        "GET",
        f"{API_PREFIX}/directory",
        get_directory,
        "The relay's current signed directory file",
        public=True,
        responses={200: "the signed directory bytes", 404: "no signed directory"},
        response_media=DIRECTORY_MEDIA_TYPE,
    ),
    Endpoint(
        "log-checkpoint",
        "GET",
        f"{API_PREFIX}/log/checkpoint",
        get_checkpoint,
        "The latest signed checkpoint of the relay's log, with its cosignatures",
        public=True,
        responses={200: "the signed note", 400: "bad query", 404: "no checkpoint yet"},
        response_media=CHECKPOINT_MEDIA_TYPE,
        query=(QueryParameter("cosigned", "at least this many cosignatures", 0, 31),),
    ),
    Endpoint(
        "log-checkpoints",
        "GET",
        f"{API_PREFIX}/log/checkpoints",
        get_checkpoints,
        "Signed checkpoints larger than a size, smallest first",
        public=True,
        responses={200: "a page of signed notes", 400: "bad query"},
        response_schema="Checkpoints",
        query=(
            QueryParameter("after", "only checkpoints of larger sizes (default 0)", 0),
            QueryParameter("limit", "most checkpoints to return (default 100)", 1, 1000),
        ),
    ),
    Endpoint(
        "log-inclusion",
        "GET",
        f"{API_PREFIX}/log/inclusion",
        get_inclusion,
        "The inclusion proof of a leaf in the tree of a size",
        public=True,
        responses={200: "the proof", 400: "bad query, or a size beyond the log"},
        response_schema="InclusionProof",
        query=(
            QueryParameter("index", "the leaf", 0),
            QueryParameter("size", "the tree size", 1),
        ),
    ),
    Endpoint(
        "log-consistency",
        "GET",
        f"{API_PREFIX}/log/consistency",
        get_consistency,
        "The consistency proof between two sizes of the log",
        public=True,
        responses={200: "the proof", 400: "bad query, or a size beyond the log"},
        response_schema="ConsistencyProof",
        query=(
            QueryParameter("from", "the old size", 0),
            QueryParameter("to", "the new size", 0),
        ),
    ),
    Endpoint(
        "log-entries",
        "GET",
        f"{API_PREFIX}/log/entries",
        get_entries,
        "The log's entries from an index, with their kinds",
        public=True,
        responses={200: "a page of entries", 400: "bad query"},
        response_schema="Entries",
        query=(
            QueryParameter("start", "the first index (default 0)", 0),
            QueryParameter("limit", "most entries to return (default 1000)", 1, 1000),
        ),
    ),
    Endpoint(
        "log-cosignature",
        "POST",
        f"{API_PREFIX}/log/cosignature",
        post_cosignature,
        "A witness's cosignature of a checkpoint this relay signed",
        public=False,
        responses={
            204: "kept",
            400: "not a signed note",
            403: "the caller holds no valid signing key",
            413: "body too large",
            415: "not text/plain",
            422: "not a checkpoint this relay signed, or a cosignature that does not verify",
            **_AUTH,
        },
        request_media="text/plain",
        response_media=None,
    ),
    Endpoint(
        "health",
        "GET",
        f"{API_PREFIX}/health",
        health,
        "Liveness",
        public=True,
        responses={200: "the process serves requests"},
        response_schema="Status",
    ),
    Endpoint(
        "ready",
        "GET",
        f"{API_PREFIX}/ready",
        readiness,
        "Readiness: store usable, directory within grace, nonce memory window passed",
        public=True,
        responses={200: "ready", 503: "not ready"},
        response_schema="Status",
    ),
    Endpoint(
        "openapi",
        "GET",
        f"{API_PREFIX}/openapi.json",
        serve_openapi,
        "This OpenAPI document",
        public=True,
        responses={200: "the OpenAPI 3.1 document"},
    ),
)
