"""Submitting an envelope (API-4 to API-7, API-22, API-23).

The relay authenticates the request, checks the envelope's routing against
its directory and clock without decrypting anything (verify_routing), makes
sure the authenticated bureau is the envelope's sender, and answers 202 only
once the store has durably accepted the envelope.  The store enforces the
bureau's quota and the recipients' mailbox cap in the same atomic step as the
insert; a refusal is ``429`` with ``Retry-After``, stores nothing, and reads
the same whichever limit was hit.  Then it wakes every
recipient's waiting fetches.
"""

from __future__ import annotations

import base64
import json

from starlette.requests import Request
from starlette.responses import Response

from ..envelope import verify_routing
from ..errors import LimitExceeded, NcbRelayError
from ..receipt import Receipt, sign_receipt
from ..verified_directory import VerifiedDirectory
from .context import RelayContext
from .http_auth import authenticate
from .log_routes import parse_query
from .problems import Problem, envelope_problem
from .storage import Acceptance, Submission

__all__ = ["ENVELOPE_MEDIA_TYPE", "acceptance_json", "submit_envelope"]

ENVELOPE_MEDIA_TYPE = "application/octet-stream"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def acceptance_json(acceptance: Acceptance, ctx: RelayContext | None = None) -> dict[str, object]:
    """The 202 body: the acceptance record and, when the relay signs, its evidence."""
    value: dict[str, object] = {
        "sender": acceptance.sender,
        "messageId": acceptance.message_id.hex(),
        "messageHash": acceptance.message_hash.hex(),
        "acceptedAt": acceptance.accepted_at,
    }
    if acceptance.log_index is None:
        return value
    value["logIndex"] = acceptance.log_index
    if ctx is None or ctx.signer is None or acceptance.checkpoint is None:
        return value
    receipt = Receipt(
        ctx.relay_id,
        acceptance.message_id,
        acceptance.message_hash,
        acceptance.log_index,
        acceptance.accepted_at,
    )
    value["receipt"] = _b64url(sign_receipt(receipt, ctx.signer))
    value["checkpoint"] = acceptance.checkpoint.decode("utf-8")
    value["inclusion"] = [h.hex() for h in acceptance.inclusion]
    if acceptance.consistency is not None:
        value["consistency"] = {
            "from": acceptance.consistency.old,
            "to": acceptance.consistency.new,
            "proof": [h.hex() for h in acceptance.consistency.proof],
        }
    return value


async def submit_envelope(request: Request, ctx: RelayContext) -> Response:
    auth, body = await authenticate(
        request, ctx, max_body=ctx.settings.max_envelope_bytes, media_type=ENVELOPE_MEDIA_TYPE
    )
    known: int | None = parse_query(request, {"known": -1})["known"]  # API-3: after authentication
    known = None if known == -1 else known
    now = ctx.clock()
    directory = ctx.current_directory()
    try:
        if isinstance(directory, VerifiedDirectory):
            directory.freshness(now)
        routed = verify_routing(
            body,
            directory=directory,
            now=now,
            policy=ctx.settings.freshness,
            limits=ctx.settings.envelope_limits,
        )
    except NcbRelayError as exc:
        raise envelope_problem(exc) from exc
    request.state.message_id = routed.message_id.hex()  # for the request's log line
    if routed.sender != auth.principal:
        raise Problem(403, "binding-mismatch")
    try:
        acceptance = await ctx.store.accept(
            Submission.from_routed(routed), now=now, quota=ctx.settings.quota, known=known
        )
    except LimitExceeded as exc:  # a quota (API-22, API-23): one answer for either limit
        retry_after = str(ctx.settings.quota_retry_after)
        raise Problem(429, "limit-exceeded", {"Retry-After": retry_after}) from exc
    except NcbRelayError as exc:
        raise envelope_problem(exc) from exc
    ctx.signals.notify(routed.recipients)
    ctx.metrics.submissions.inc()
    return Response(
        json.dumps(acceptance_json(acceptance, ctx), separators=(",", ":")).encode(),
        status_code=202,
        media_type="application/json",
    )
