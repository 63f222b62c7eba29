"""The reference implementation's conformance adapter (``interop_tests/harness.md``).

Run as ``python -m ncb_relay.conformance.adapter``: it reads one JSON request per
line on stdin and writes one JSON response per line on stdout, until end of
input.  Every operation is stateless: the keys, the directory, the clock and
(for sealing) the random bytes come in the request, so one request can be
replayed alone to reproduce a failure.  A failure of the implementation under
test is ``{"error": CODE}`` with the wire code of ERR-1 (``decryption-failed``
for every decryption failure, OPEN-11); a request the adapter cannot serve is
``{"error": "unsupported-op"}`` or ``{"error": "bad-request"}``.

:class:`Adapter` is the dispatch table over the operations of
:mod:`ncb_relay.conformance.operations` (one class per area), and :func:`serve`
the JSON-lines loop; ``tests/broken_adapter.py`` subclasses the adapter to seed bugs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import IO

from .. import NcbRelayError, __version__
from ..errors import InvalidBody
from .operations.directory import DirectoryOperations
from .operations.envelopes import EnvelopeOperations
from .operations.keystore import KeystoreOperations
from .operations.messages import MessageOperations
from .operations.receipts import ReceiptOperations
from .operations.review_gate import ReviewGateOperations
from .operations.transparency_log import LogOperations
from .operations.values import (
    JSON,
    BadRequest,
    private_identity,
    public_identity,
    recorded,
    typed,
    untyped,
)

__all__ = [
    "JSON",
    "Adapter",
    "BadRequest",
    "main",
    "private_identity",
    "public_identity",
    "recorded",
    "serve",
    "typed",
    "untyped",
]

Handler = Callable[[JSON], JSON]


class Adapter(
    MessageOperations,
    EnvelopeOperations,
    ReceiptOperations,
    ReviewGateOperations,
    LogOperations,
    DirectoryOperations,
    KeystoreOperations,
):
    """One method per harness operation; ``handle`` turns errors into responses."""

    def __init__(self) -> None:
        self.ops: dict[str, Handler] = {
            "hello": self.hello,
            "decode": self.decode,
            "encode": self.encode,
            "seal": self.seal,
            "route": self.route,
            "open": self.open,
            "verify-disclosure": self.verify_disclosure,
            "check-reply": self.check_reply,
            "sign-request": self.sign_request,
            "verify-request": self.verify_request,
            "decode-body": self.decode_body,
            "check-body": self.check_body,
            "follow-conversation": self.follow_conversation,
            "verify-forward": self.verify_forward,
            "seal-message": self.seal_message,
            "seal-forward": self.seal_forward,
            "check-delivery": self.check_delivery,
            "receive-messages": self.receive_messages,
            "review-gate": self.review_gate,
            "log-hash": self.log_hash,
            "log-root": self.log_root,
            "verify-inclusion": self.verify_inclusion,
            "verify-consistency": self.verify_consistency,
            "verify-checkpoint": self.verify_checkpoint,
            "follow-log": self.follow_log,
            "check-log": self.check_log,
            "verify-receipt": self.verify_receipt,
            "witness-log": self.witness_log,
            "audit-log": self.audit_log,
            "verify-anchors": self.verify_anchors,
            "verify-directory": self.verify_directory,
            "look-up-key": self.look_up_key,
            "lock-keystore": self.lock_keystore,
            "unlock-keystore": self.unlock_keystore,
            "prune-keystore": self.prune_keystore,
        }

    # -- plumbing -----------------------------------------------------------------

    def handle(self, request: JSON) -> JSON:
        op = self.ops.get(request.get("op", ""))
        if op is None:
            return {"error": "unsupported-op"}
        try:
            return op(request)
        except InvalidBody as exc:  # MSG-4: the field at fault and the kind of fault
            return {"error": self.error_code(exc), "field": exc.field, "reason": exc.reason}
        except NcbRelayError as exc:
            return {"error": self.error_code(exc)}
        except (BadRequest, KeyError, TypeError, ValueError) as exc:
            return {"error": "bad-request", "detail": f"{type(exc).__name__}: {exc}"}

    # -- operations ---------------------------------------------------------------

    def hello(self, request: JSON) -> JSON:
        return {
            "implementation": f"ncb_relay {__version__} (reference)",
            "protocol": "NCBR/1",
            "ops": sorted(self.ops),
        }


def serve(adapter: Adapter, stdin: IO[str], stdout: IO[str]) -> None:
    """Answer each request line with one response line, until end of input."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise BadRequest("a request is a JSON object")
        except (ValueError, BadRequest) as exc:
            response: JSON = {"error": "bad-request", "detail": str(exc)}
        else:
            response = adapter.handle(request)
            if "id" in request:
                response["id"] = request["id"]
        stdout.write(json.dumps(response, separators=(",", ":")) + "\n")
        stdout.flush()


def main(adapter: Adapter | None = None) -> None:
    serve(adapter or Adapter(), sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
