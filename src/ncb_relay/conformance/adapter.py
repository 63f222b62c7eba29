"""The reference implementation's conformance adapter (``interop_tests/harness.md``).

Run as ``python -m ncb_relay.conformance.adapter``: it reads one JSON request per
line on stdin and writes one JSON response per line on stdout, until end of
input.  Every operation is stateless: the keys, the directory, the clock and
(for sealing) the random bytes come in the request, so one request can be
replayed alone to reproduce a failure.  A failure of the implementation under
test is ``{"error": CODE}`` with the wire code of ERR-1 (``decryption-failed``
for every decryption failure, OPEN-11); a request the adapter cannot serve is
``{"error": "unsupported-op"}`` or ``{"error": "bad-request"}``.

:class:`Adapter` is the dispatch table; ``tests/broken_adapter.py`` subclasses
it to seed bugs.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from .. import (
    AnchorChain,
    CodecLimits,
    DirectoryKeys,
    DirectoryPolicy,
    Disclosure,
    EncryptionKeyPair,
    EncryptionPublicKey,
    EnvelopeLimits,
    FreshnessPolicy,
    HeldEncryptionKey,
    KdfBounds,
    KdfParameters,
    Keyring,
    NcbRelayError,
    NonceCache,
    PrivateIdentity,
    PublicIdentity,
    ReplayGuard,
    RequestVerifier,
    SigningKeyPair,
    SigningPublicKey,
    StaticDirectory,
    __version__,
    codec,
    load_directory,
    lock_keyring,
    merkle,
    open_envelope,
    seal,
    sign_request,
    unlock_keyring,
    verify_directory,
    verify_disclosure,
    verify_routing,
)
from ..bureau.delivery import check_receipt, delivery_state
from ..bureau.store import Direction, JournalRow, RowState
from ..checkpoint import LogKey, LogView, WitnessKey, verify_checkpoint
from ..codec import Value
from ..envelope import SealedEnvelope, VerifiedEnvelope
from ..errors import InvalidBody
from ..keyring import parse_keystore_header
from ..log_audit import LogAuditor, ServedEntry
from ..messages import (
    DEFAULT_RECEIPT_POLICY,
    AssistanceRequest,
    Conversations,
    Delivery,
    DeliveryReceipt,
    Disposition,
    Forward,
    OpaqueBody,
    ReceiptPolicy,
    ReviewGate,
    decode_body,
    encode_body,
    read_message,
    seal_forward,
    seal_message,
    verify_forward,
)
from ..messages.message import Message, check_context
from ..receipt import log_origin, verify_receipt
from ..witness import Witness

__all__ = ["Adapter", "main", "typed", "untyped"]

JSON = dict[str, Any]
Handler = Callable[[JSON], JSON]


class BadRequest(Exception):
    """The request does not follow the harness protocol (not the implementation's fault)."""


def untyped(t: JSON) -> Value:
    """The value of a typed JSON value (spec/vectors.md, "Typed values")."""
    kind = t["type"]
    if kind == "nil":
        return None
    if kind == "bool":
        return bool(t["value"])
    if kind == "int":
        return int(t["value"])
    if kind == "bin":
        return bytes.fromhex(t["value"])
    if kind == "str":
        return str(t["value"])
    if kind == "array":
        return [untyped(item) for item in t["value"]]
    if kind == "map":
        return {str(untyped(k)): untyped(v) for k, v in t["value"]}
    raise BadRequest(f"unknown type {kind!r}")


def typed(value: Value) -> JSON:
    """The typed JSON form of a decoded value."""
    if value is None:
        return {"type": "nil"}
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": str(value)}
    if isinstance(value, bytes):
        return {"type": "bin", "value": value.hex()}
    if isinstance(value, str):
        return {"type": "str", "value": value}
    if isinstance(value, list):
        return {"type": "array", "value": [typed(item) for item in value]}
    return {"type": "map", "value": [[typed(k), typed(v)] for k, v in value.items()]}


def _hex(value: str | None) -> bytes | None:
    return None if value is None else bytes.fromhex(value)


def private_identity(p: JSON) -> PrivateIdentity:
    return PrivateIdentity(
        p["id"],
        SigningKeyPair(bytes.fromhex(p["signingSeed"])),
        [EncryptionKeyPair(bytes.fromhex(p["encryptionSecret"]))],
    )


def public_identity(p: JSON) -> PublicIdentity:
    return PublicIdentity(
        p["id"],
        SigningPublicKey(bytes.fromhex(p["signingPublicKey"])),
        EncryptionPublicKey(bytes.fromhex(p["encryptionPublicKey"])),
    )


def recorded(data: bytes | None) -> Callable[[int], bytes]:
    """The random source of ``seal``: the given bytes in order, or the OS's."""
    if data is None:
        return os.urandom
    queue = bytearray(data)

    def draw(n: int) -> bytes:
        if len(queue) < n:
            raise BadRequest("not enough random bytes for this seal")
        out = bytes(queue[:n])
        del queue[:n]
        return out

    return draw


def _message(m: VerifiedEnvelope) -> JSON:
    return {
        "body": m.body.hex(),
        "sender": m.sender,
        "recipients": list(m.recipients),
        "seq": m.seq,
        "created": m.created,
        "expires": m.expires,
        "replyTo": None if m.reply_to is None else m.reply_to.hex(),
        "messageHash": m.message_hash.hex(),
    }


class Adapter:
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

    def error_code(self, exc: NcbRelayError) -> str:
        return exc.wire_code

    def directory(self, request: JSON) -> StaticDirectory:
        return StaticDirectory(public_identity(p) for p in request["directory"])

    @staticmethod
    def listed(request: JSON, principals: list[str]) -> list[PublicIdentity]:
        """The public identities of ``principals``, as the request's directory lists them."""
        known = {p["id"]: p for p in request["directory"]}
        return [public_identity(known[p]) for p in principals]

    @staticmethod
    def freshness(request: JSON) -> FreshnessPolicy:
        """``maxSkew``, or the implementation's own default when absent (FRESH-3: 300)."""
        return FreshnessPolicy(request["maxSkew"]) if "maxSkew" in request else FreshnessPolicy()

    def replay_guard(self, request: JSON) -> ReplayGuard:
        return ReplayGuard(policy=self.freshness(request))

    @staticmethod
    def envelope_limits(request: JSON) -> EnvelopeLimits:
        limits = request.get("limits", {})
        return EnvelopeLimits(
            max_envelope_bytes=limits.get("maxEnvelopeBytes", 8 * 1024 * 1024),
            max_recipients=limits.get("maxRecipients", 256),
        )

    @staticmethod
    def codec_limits(request: JSON) -> CodecLimits:
        limits = request.get("limits", {})
        default = CodecLimits()
        return CodecLimits(
            max_bytes=limits.get("maxBytes", default.max_bytes),
            max_str_bytes=limits.get("maxStrBytes", default.max_str_bytes),
            max_bin_bytes=limits.get("maxBinBytes", default.max_bin_bytes),
            max_array_items=limits.get("maxArrayItems", default.max_array_items),
            max_map_items=limits.get("maxMapItems", default.max_map_items),
            max_depth=limits.get("maxDepth", default.max_depth),
        )

    # -- operations ---------------------------------------------------------------

    def hello(self, request: JSON) -> JSON:
        return {
            "implementation": f"ncb_relay {__version__} (reference)",
            "protocol": "NCBR/1",
            "ops": sorted(self.ops),
        }

    def decode(self, request: JSON) -> JSON:
        data = bytes.fromhex(request["data"])
        return {"value": typed(codec.decode(data, limits=self.codec_limits(request)))}

    def encode(self, request: JSON) -> JSON:
        value = untyped(request["value"])
        return {"data": codec.encode(value, limits=self.codec_limits(request)).hex()}

    def seal_envelope(self, request: JSON) -> SealedEnvelope:
        return seal(
            bytes.fromhex(request["body"]),
            sender=private_identity(request["sender"]),
            recipients=[public_identity(p) for p in request["recipients"]],
            now=request["now"],
            seq=request["seq"],
            ttl=request["ttl"],
            reply_to=_hex(request.get("replyTo")),
            rng=recorded(_hex(request.get("random"))),
        )

    def seal(self, request: JSON) -> JSON:
        sealed = self.seal_envelope(request)
        return {
            "envelope": sealed.data.hex(),
            "messageId": sealed.message_id.hex(),
            "messageHash": sealed.message_hash.hex(),
        }

    def route(self, request: JSON) -> JSON:
        routed = verify_routing(
            bytes.fromhex(request["envelope"]),
            directory=self.directory(request),
            now=request["now"],
            policy=self.freshness(request),
            limits=self.envelope_limits(request),
        )
        return {
            "sender": routed.sender,
            "recipients": list(routed.recipients),
            "messageId": routed.message_id.hex(),
            "messageHash": routed.message_hash.hex(),
        }

    def open_one(
        self, request: JSON, data: bytes, guard: ReplayGuard, directory: StaticDirectory
    ) -> VerifiedEnvelope:
        return open_envelope(
            data,
            recipient=private_identity(request["recipient"]),
            directory=directory,
            now=request["now"],
            replay=guard,
            limits=self.envelope_limits(request),
        )

    def open(self, request: JSON) -> JSON:
        guard = self.replay_guard(request)
        directory = self.directory(request)
        prior: list[JSON] = []
        for data in request.get("prior", []):
            try:
                prior.append(
                    _message(self.open_one(request, bytes.fromhex(data), guard, directory))
                )
            except NcbRelayError as exc:
                prior.append({"error": self.error_code(exc)})
        try:
            message = self.open_one(request, bytes.fromhex(request["envelope"]), guard, directory)
        except NcbRelayError as exc:
            return {"error": self.error_code(exc), "prior": prior}
        return {**_message(message), "prior": prior}

    def verify_disclosure(self, request: JSON) -> JSON:
        proven = verify_disclosure(
            Disclosure(bytes.fromhex(request["envelope"]), bytes.fromhex(request["contentKey"])),
            directory=self.directory(request),
            limits=self.envelope_limits(request),
        )
        return {
            "body": proven.body.hex(),
            "sender": proven.sender,
            "recipients": list(proven.recipients),
            "created": proven.created,
            "messageHash": proven.message_hash.hex(),
        }

    def check_reply(self, request: JSON) -> JSON:
        directory = self.directory(request)
        data = bytes.fromhex(request["request"])
        routed = verify_routing(
            data,
            directory=directory,
            now=request["now"],
            policy=self.freshness(request),
        )
        original = SealedEnvelope(data, routed.message_id, routed.message_hash, routed.header)
        response = self.open_one(
            request, bytes.fromhex(request["response"]), self.replay_guard(request), directory
        )
        response.require_reply_to(original)
        return {"requestMessageHash": routed.message_hash.hex()}

    def sign_request(self, request: JSON) -> JSON:
        principal = private_identity(request["principal"])
        nonce = bytes.fromhex(request["nonce"])
        made = sign_request(
            principal=principal.principal,
            signer=principal.signer,
            relay=request["relay"],
            method=request["method"],
            target=request["target"],
            body=bytes.fromhex(request["body"]),
            now=request["timestamp"],
            rng=lambda n: nonce,
        )
        return {"authorization": made.authorization}

    def verify_request(self, request: JSON) -> JSON:
        nonces = NonceCache(since=request["since"], max_skew=request["maxSkew"])
        for pair in request.get("accepted", []):
            nonces.record(
                pair["principal"], bytes.fromhex(pair["nonce"]), pair["timestamp"], pair["now"]
            )
        relay = RequestVerifier(
            relay=request["relay"], directory=self.directory(request), nonces=nonces
        )

        def verify() -> JSON:
            result = relay.verify(
                method=request["method"],
                target=request["target"],
                body=bytes.fromhex(request["body"]),
                authorization=request["authorization"],
                now=request["now"],
            )
            return {"principal": result.principal, "keyId": result.key_id.hex()}

        first = verify()
        try:  # AUTH-11: the same request a second time, in the same state
            verify()
        except NcbRelayError as exc:
            return {**first, "again": self.error_code(exc)}
        return {**first, "again": None}

    # -- message bodies (spec/messages.md) ----------------------------------------

    def decode_body(self, request: JSON) -> JSON:
        data = bytes.fromhex(request["body"])
        body = decode_body(data)
        if isinstance(body, OpaqueBody):
            return {
                "schema": body.schema_id,
                "version": body.schema_version,
                "opaque": True,
                "data": body.data.hex(),
            }
        content = codec.decode(data)["content"]  # type: ignore[index, call-overload]
        return {
            "schema": body.schema_id,
            "version": body.schema_version,
            "opaque": False,
            "value": typed(content),
            "encoding": encode_body(body).hex(),
        }

    def check_body(self, request: JSON) -> JSON:
        check_context(
            decode_body(bytes.fromhex(request["body"])),
            sender=request["sender"],
            created=request["created"],
            reply_to=_hex(request.get("replyTo")),
            coordinator=request["coordinator"],
        )
        return {"accepted": True}

    def read_as(self, request: JSON, who: str, data: str, now: int) -> Message:
        """``data`` opened as ``request[who]`` at ``now`` with a fresh replay state, then read."""
        envelope = self.open_one(
            {**request, "recipient": request[who], "now": now},
            bytes.fromhex(data),
            self.replay_guard(request),
            self.directory(request),
        )
        return read_message(envelope, coordinator=request["coordinator"])

    def follow_conversation(self, request: JSON) -> JSON:
        # Each envelope has a replay state of its own: a message delivered again reaches the
        # conversation, whose own duplicate and replay checks (CONV-5) are what is followed.
        first = self.read_as(request, "observer", request["request"], request["now"])
        if not isinstance(first.body, AssistanceRequest):
            raise BadRequest("the request is not an ncbr.assistance-request")
        routed = "maxHeld" in request  # CONV-6: routed as a party following many requests
        conversations = Conversations(max_parked=request["maxHeld"] if routed else 0)
        conversation, _ = conversations.start(first.envelope, first.body)
        replies: list[JSON] = []
        for reply in request["replies"]:
            try:
                message = self.read_as(request, "observer", reply["envelope"], reply["now"])
                if reply.get("forward", False):
                    forwarded = verify_forward(
                        message,
                        directory=self.directory(request),
                        coordinator=request["coordinator"],
                    )
                    released = conversations.add_forward(forwarded)
                    replies.append({"released": [self._delivery(d) for d in released]})
                elif routed:
                    replies.append(self._delivery(conversations.receive(message)))
                else:
                    step = conversation.receive(message)
                    outcome: JSON = {"state": conversation.state.value}
                    replies.append(outcome if step is not None else {**outcome, "duplicate": True})
            except NcbRelayError as exc:
                replies.append({"error": self.error_code(exc)})
        return {"replies": replies}

    def _delivery(self, delivery: Delivery) -> JSON:
        if delivery.disposition is Disposition.PARKED:
            return {"held": True}
        if delivery.disposition is Disposition.REFUSED:
            assert delivery.error is not None
            return {"error": self.error_code(delivery.error)}
        if delivery.conversation is None:  # a duplicate of a held message
            return {"held": True, "duplicate": True}
        if delivery.disposition is Disposition.DUPLICATE:
            return {"state": delivery.conversation.state.value, "duplicate": True}
        assert delivery.step is not None
        return {"state": delivery.step.after.value}

    def verify_forward(self, request: JSON) -> JSON:
        directory = self.directory(request)
        envelope = self.open_one(
            request, bytes.fromhex(request["envelope"]), self.replay_guard(request), directory
        )
        coordinator = request["coordinator"]
        message = read_message(envelope, coordinator=coordinator)
        forwarded = verify_forward(message, directory=directory, coordinator=coordinator)
        return {
            "author": forwarded.author,
            "forwarder": forwarded.forwarder,
            "originalSchema": forwarded.original_body.schema_id,
            "originalHandling": str(forwarded.original_body.handling.code),
            "permission": forwarded.permission is not None,
        }

    @staticmethod
    def _sealed(sealed: SealedEnvelope) -> JSON:
        return {
            "envelope": sealed.data.hex(),
            "messageId": sealed.message_id.hex(),
            "messageHash": sealed.message_hash.hex(),
        }

    def seal_message(self, request: JSON) -> JSON:
        body = decode_body(bytes.fromhex(request["body"]))
        if isinstance(body, OpaqueBody):
            return self.seal(request)  # the application's own schema: sealed as it is (MSG-5)
        sealed = seal_message(
            body,
            sender=private_identity(request["sender"]),
            recipients=[public_identity(p) for p in request["recipients"]],
            now=request["now"],
            seq=request["seq"],
            ttl=request["ttl"],
            reply_to=_hex(request.get("replyTo")),
            rng=recorded(_hex(request.get("random"))),
        )
        return self._sealed(sealed)

    def seal_forward(self, request: JSON) -> JSON:
        guard, directory = self.replay_guard(request), self.directory(request)
        as_sender = {**request, "recipient": request["sender"]}
        original = self.open_one(as_sender, bytes.fromhex(request["original"]), guard, directory)
        permission = None
        if request.get("permission") is not None:
            data = bytes.fromhex(request["permission"])
            permission = self.open_one(as_sender, data, guard, directory)
        forward = seal_forward(
            original,
            sender=private_identity(request["sender"]),
            recipients=[public_identity(p) for p in request["recipients"]],
            now=request["now"],
            seq=request["seq"],
            ttl=request["ttl"],
            rng=recorded(_hex(request.get("random"))),
            coordinator=request["coordinator"],
            permission=permission,
        )
        return self._sealed(forward.sealed)

    # -- delivery receipts (spec/messages.md, "Delivery receipts") -------------------

    @staticmethod
    def sent_row(sender: str, position: int, sent: JSON) -> JournalRow:
        """A sent message as the sender's journal holds it (what MSG-15 and MSG-16 read)."""
        return JournalRow(
            pos=position,
            direction=Direction.OUT,
            message_id=bytes.fromhex(sent["messageId"]),
            message_hash=bytes.fromhex(sent["messageHash"]),
            sender=sender,
            recipients=tuple(sent["recipients"]),
            schema=sent.get("schema", ""),
            created=sent.get("created", 0),
            at=sent.get("created", 0),
            reply_to=None,
            refers_to=None,
            envelope=b"",
            body=None,
            state=RowState(sent["submission"]),
            detail=None,
        )

    def check_delivery(self, request: JSON) -> JSON:
        sender = request["sender"]["id"]
        rows = [self.sent_row(sender, i, m) for i, m in enumerate(request["sent"])]
        by_id = {row.message_id: row for row in rows}
        receipted: dict[bytes, set[str]] = {row.message_id: set() for row in rows}
        results: list[JSON] = []
        for item in request["receipts"]:
            try:
                message = self.read_as(request, "sender", item["envelope"], item["now"])
                if not isinstance(message.body, DeliveryReceipt):
                    raise BadRequest("a receipt is an ncbr.delivery-receipt")
                body = check_receipt(message, by_id.get(message.body.message_id))
            except NcbRelayError as exc:
                results.append({"error": self.error_code(exc)})
                continue
            receipted[body.message_id].add(message.sender)
            results.append({"messageId": body.message_id.hex(), "recipient": message.sender})
        states = [
            delivery_state(
                submission=row.state,
                recipients=row.recipients,
                receipted=receipted[row.message_id],
                expects=sent["expectsReceipts"],
                deadline=sent["deadline"],
                now=request["now"],
            ).value
            for row, sent in zip(rows, request["sent"], strict=True)
        ]
        return {"receipts": results, "states": states}

    def receive_messages(self, request: JSON) -> JSON:
        """A recipient's side of delivery receipts (MSG-13, MSG-14): what it receipts."""
        me, coordinator = request["recipient"], request["coordinator"]
        policy = DEFAULT_RECEIPT_POLICY
        if "receiptsOff" in request:
            policy = ReceiptPolicy(off=frozenset(request["receiptsOff"]))
        guard, directory = self.replay_guard(request), self.directory(request)
        rows = [
            self.sent_row(me["id"], i, {"submission": "accepted", **m})
            for i, m in enumerate(request.get("sent", []))
        ]
        sent = {row.message_id: row for row in rows}
        taken: set[bytes] = set()
        seq = request["seq"]
        results: list[JSON] = []
        for item in request["messages"]:
            data, now = bytes.fromhex(item["envelope"]), item["now"]
            if data in taken:  # a copy delivered again: known, not receipted again
                results.append({"known": True})
                continue
            try:
                envelope = self.open_one({**request, "now": now}, data, guard, directory)
                message = read_message(envelope, coordinator=coordinator)
                if isinstance(message.body, Forward):
                    verify_forward(message, directory=directory, coordinator=coordinator)
                if isinstance(message.body, DeliveryReceipt):
                    check_receipt(message, sent.get(message.body.message_id))
            except NcbRelayError as exc:
                results.append({"error": self.error_code(exc)})
                continue
            taken.add(data)
            if not policy.wants(message.body.schema_id):
                results.append({"receipt": None})
                continue
            receipt = seal_message(
                DeliveryReceipt.of(message.message_id, message.message_hash, now),
                sender=private_identity(me),
                recipients=self.listed(request, [message.sender]),
                now=now,
                seq=seq,
                ttl=request["ttl"],
                reply_to=message.message_hash,
                rng=os.urandom,
            )
            seq += 1
            results.append({"receipt": receipt.data.hex()})
        return {"messages": results}

    # -- the coordinator's review gate (spec/messages.md, "Review gate") -------------

    def review_gate(self, request: JSON) -> JSON:
        gate = ReviewGate(under_review=request["underReview"])
        steps: list[JSON] = []
        for step in request["steps"]:
            try:
                steps.append(self.gate_step(request, gate, step))
            except NcbRelayError as exc:
                steps.append({"error": self.error_code(exc)})
        return {"steps": steps}

    def gate_step(self, request: JSON, gate: ReviewGate, step: JSON) -> JSON:
        me = request["coordinator"]
        if "submit" in step:
            as_me = {**request, "recipient": me, "coordinator": me["id"]}
            message = self.read_as(as_me, "recipient", step["submit"], step["now"])
            return {"status": gate.submit(message).status.value}
        if "approve" in step:
            approved = gate.approve(bytes.fromhex(step["approve"]), now=step["now"])
            return {"status": approved.status.value}
        if "reject" in step:
            message_hash = bytes.fromhex(step["reject"])
            return {"status": gate.reject(message_hash, now=step["now"], reason="").status.value}
        if "forward" in step:
            submission = gate.submission(bytes.fromhex(step["forward"]))
            forward = seal_forward(
                submission.message.envelope,
                sender=private_identity(me),
                recipients=self.listed(request, list(submission.targets([]))),
                now=step["now"],
                seq=step["seq"],
                ttl=step["ttl"],
                rng=recorded(_hex(step.get("random"))),
                coordinator=me["id"],
            )
            moved = gate.mark_forwarded(submission.message_hash)  # else never sent
            return {"status": moved.status.value, "envelope": forward.sealed.data.hex()}
        raise BadRequest("a step is submit, approve, reject or forward")

    # -- the transparency log (spec/log.md) ---------------------------------------

    @staticmethod
    def _hashes(values: list[str]) -> list[bytes]:
        return [bytes.fromhex(v) for v in values]

    @staticmethod
    def log_key(request: JSON) -> LogKey:
        key = request["log"]
        return LogKey(key["name"], SigningPublicKey(bytes.fromhex(key["publicKey"])))

    def log_hash(self, request: JSON) -> JSON:
        if request["kind"] == "leaf":
            return {"hash": merkle.leaf_hash(bytes.fromhex(request["entry"])).hex()}
        if request["kind"] == "node":
            left, right = bytes.fromhex(request["left"]), bytes.fromhex(request["right"])
            return {"hash": merkle.node_hash(left, right).hex()}
        raise BadRequest(f"unknown kind {request['kind']!r}")

    def log_root(self, request: JSON) -> JSON:
        leaves = [merkle.leaf_hash(bytes.fromhex(e)) for e in request["entries"]]
        return {"root": merkle.tree_root(leaves).hex()}

    def verify_inclusion(self, request: JSON) -> JSON:
        merkle.verify_inclusion(
            bytes.fromhex(request["leafHash"]),
            request["leafIndex"],
            request["treeSize"],
            self._hashes(request["proof"]),
            bytes.fromhex(request["root"]),
        )
        return {"valid": True}

    def verify_consistency(self, request: JSON) -> JSON:
        merkle.verify_consistency(
            request["oldSize"],
            request["newSize"],
            bytes.fromhex(request["oldRoot"]),
            bytes.fromhex(request["newRoot"]),
            self._hashes(request["proof"]),
        )
        return {"valid": True}

    @staticmethod
    def witness_keys(request: JSON) -> list[WitnessKey]:
        return [
            WitnessKey(w["name"], SigningPublicKey(bytes.fromhex(w["publicKey"])))
            for w in request.get("witnesses", [])
        ]

    def verify_checkpoint(self, request: JSON) -> JSON:
        verified = verify_checkpoint(
            bytes.fromhex(request["note"]),
            log=self.log_key(request),
            witnesses=self.witness_keys(request),
            threshold=request.get("threshold", 0),
        )
        return {
            "origin": verified.origin,
            "size": verified.size,
            "root": verified.root.hex(),
            "extensions": list(verified.checkpoint.extensions),
            "cosigned": dict(verified.cosigned),
        }

    def follow_log(self, request: JSON) -> JSON:
        view = LogView(self.log_key(request))
        steps: list[JSON] = []
        for step in request["steps"]:
            outcome: JSON = {}
            try:
                view.update(bytes.fromhex(step["note"]), self._hashes(step["proof"]))
            except NcbRelayError as exc:
                outcome["error"] = self.error_code(exc)
            outcome["latestSize"] = None if view.latest is None else view.latest.size
            steps.append(outcome)
        return {"steps": steps, "forks": self._forks(view)}

    @staticmethod
    def _forks(view: LogView) -> list[JSON]:
        return [
            {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason}
            for f in view.forks
        ]

    def check_log(self, request: JSON) -> JSON:
        view = LogView(
            self.log_key(request),
            witnesses=self.witness_keys(request),
            threshold=request.get("threshold", 0),
        )
        steps: list[JSON] = []
        for step in request["steps"]:
            outcome: JSON = {}
            try:
                view.check(bytes.fromhex(step["note"]), self._hashes(step["proof"]))
            except NcbRelayError as exc:
                outcome["error"] = self.error_code(exc)
            outcome["latestSize"] = None if view.latest is None else view.latest.size
            steps.append(outcome)
        return {"steps": steps, "forks": self._forks(view)}

    def verify_receipt(self, request: JSON) -> JSON:
        relay_id = request["relay"]["id"]
        relay_key = SigningPublicKey(bytes.fromhex(request["relay"]["publicKey"]))
        verified = verify_receipt(
            bytes.fromhex(request["receipt"]),
            bytes.fromhex(request["checkpoint"]),
            self._hashes(request["inclusion"]),
            relay_id=relay_id,
            relay_key=relay_key,
            log=LogKey(log_origin(relay_id), relay_key),  # LOG-20
            message_id=bytes.fromhex(request["messageId"]),
            message_hash=bytes.fromhex(request["messageHash"]),
        )
        return {
            "relay": verified.receipt.relay,
            "logIndex": verified.receipt.log_index,
            "acceptedAt": verified.receipt.accepted_at,
            "checkpointSize": verified.checkpoint.size,
        }

    def witness_log(self, request: JSON) -> JSON:
        key = request["witness"]
        signer = SigningKeyPair(bytes.fromhex(key["signingSeed"]))
        held = request.get("held")
        witness = Witness(
            log=self.log_key(request),
            key=WitnessKey(key["name"], signer.public_key),
            signer=signer,
            held=None if held is None else bytes.fromhex(held),
        )
        steps: list[JSON] = []
        for step in request["steps"]:
            outcome: JSON = {}
            try:
                note = bytes.fromhex(step["note"])
                outcome["note"] = witness.cosign(
                    note, self._hashes(step["proof"]), now=step["now"]
                ).hex()
            except NcbRelayError as exc:
                outcome["error"] = self.error_code(exc)
            outcome["heldSize"] = None if witness.held is None else witness.held.size
            steps.append(outcome)
        forks = [
            {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason}
            for f in witness.forks
        ]
        return {"steps": steps, "forks": forks}

    def audit_log(self, request: JSON) -> JSON:
        windows = {
            (w["name"], bytes.fromhex(w["publicKey"])): (w.get("notBefore"), w.get("notAfter"))
            for w in request.get("witnesses", [])
        }

        def valid_at(key: WitnessKey, at: int) -> bool:
            not_before, not_after = windows[key.name, key.public_key.raw]
            return (not_before is None or not_before <= at) and (
                not_after is None or at < not_after
            )

        auditor = LogAuditor(
            log_keys=[self.log_key(request)],
            witnesses=self.witness_keys(request),
            threshold=request.get("threshold", 0),
            witness_valid_at=valid_at,
        )
        auditor.add_checkpoints([bytes.fromhex(note) for note in request["checkpoints"]])
        auditor.add_entries(
            [
                ServedEntry(e["index"], e["kind"], bytes.fromhex(e["hash"]))
                for e in request["entries"]
            ]
        )
        signed = {size for size, _root in auditor.checkpoints if size <= auditor.size}
        for p in request.get("inclusion", []):  # an auditor asks only for proofs it can check
            if p["size"] in signed and 0 <= p["index"] < p["size"]:
                auditor.check_inclusion(p["index"], p["size"], self._hashes(p["proof"]))
        for p in request.get("consistency", []):
            if {p["oldSize"], p["newSize"]} <= signed and 0 < p["oldSize"] < p["newSize"]:
                auditor.check_consistency(p["oldSize"], p["newSize"], self._hashes(p["proof"]))
        report = auditor.finish()
        return {
            "verified": report.ok,
            "size": report.size,
            "root": report.root.hex(),
            "problems": [
                {"code": p.code, "index": p.index, "size": p.size} for p in report.problems
            ],
        }

    # -- the directory and its trust anchors (spec/directory.md) -------------------

    @staticmethod
    def anchor_chain(request: JSON) -> AnchorChain:
        files = [bytes.fromhex(a) for a in request["anchors"]]
        if not files:
            raise BadRequest("at least one anchor is needed")
        chain = AnchorChain.trust(files[0])
        for data in files[1:]:
            chain = chain.extend(data)
        return chain

    def verify_anchors(self, request: JSON) -> JSON:
        chain = self.anchor_chain(request)
        return {"currentSerial": chain.current.serial, "fingerprint": chain.fingerprint.hex()}

    def verify_directory(self, request: JSON) -> JSON:
        chain = self.anchor_chain(request)
        policy = DirectoryPolicy(grace=request["grace"], max_skew=request["maxSkew"])
        previous = None
        if request.get("previous") is not None:
            previous = load_directory(
                bytes.fromhex(request["previous"]), anchors=chain, policy=policy
            )
        verified = verify_directory(
            bytes.fromhex(request["document"]),
            anchors=chain,
            now=request["now"],
            previous=previous,
            intermediates=[bytes.fromhex(d) for d in request.get("intermediates", [])],
            policy=policy,
        )
        return {
            "serial": verified.serial,
            "hash": verified.hash.hex(),
            "inGrace": verified.in_grace,
        }

    def look_up_key(self, request: JSON) -> JSON:
        verified = load_directory(
            bytes.fromhex(request["document"]),
            anchors=self.anchor_chain(request),
            policy=DirectoryPolicy(grace=request["grace"]),
        )
        if request["view"] not in ("live", "historical"):
            raise BadRequest(f"unknown view {request['view']!r}")
        view: DirectoryKeys = verified.live if request["view"] == "live" else verified.historical
        lookup, principal, at = request["lookup"], request["principal"], request["at"]
        if lookup == "signingKey":
            key_id = bytes.fromhex(request["keyId"])
            return {"key": view.signing_key(principal, key_id, at).raw.hex()}
        if lookup == "checkEncryptionKey":
            view.check_encryption_key(principal, bytes.fromhex(request["keyId"]), at)
            return {}
        if lookup == "encryptionKeyFor":
            return {"key": view.encryption_key(principal, at).raw.hex()}
        raise BadRequest(f"unknown lookup {lookup!r}")

    # -- keystores (spec/keystore.md) -----------------------------------------------

    @staticmethod
    def kdf_bounds(request: JSON) -> KdfBounds:
        b = request["bounds"]
        return KdfBounds(b["minOps"], b["minMemKib"], b["maxOps"], b["maxMemKib"])

    @staticmethod
    def _key_ids(keyring: Keyring) -> list[str]:
        return [k.key_id.hex() for k in keyring.encryption_keys]

    def lock_keystore(self, request: JSON) -> JSON:
        k = request["keyring"]
        keys = [
            HeldEncryptionKey(
                EncryptionKeyPair(bytes.fromhex(e["secret"])), e["notBefore"], e["notAfter"]
            )
            for e in k["encryptionKeys"]
        ]
        keyring = Keyring(k["principal"], SigningKeyPair(bytes.fromhex(k["signingSeed"])), keys)
        data = lock_keyring(
            keyring,
            request["passphrase"],
            rng=recorded(_hex(request.get("random"))),
            kdf=KdfParameters(request["kdf"]["ops"], request["kdf"]["memKib"]),
            bounds=self.kdf_bounds(request),
        )
        return {"file": data.hex()}

    def unlock_keystore(self, request: JSON) -> JSON:
        keyring = unlock_keyring(
            bytes.fromhex(request["file"]), request["passphrase"], bounds=self.kdf_bounds(request)
        )
        return {
            "principal": keyring.principal,
            "signingPublicKey": keyring.signing.public_key.raw.hex(),
            "keyIds": self._key_ids(keyring),
        }

    def prune_keystore(self, request: JSON) -> JSON:
        data, bounds = bytes.fromhex(request["file"]), self.kdf_bounds(request)
        keyring = unlock_keyring(data, request["passphrase"], bounds=bounds)
        now, retention = request["now"], request["retention"]
        removed = keyring.expired_keys(now, retention)
        kept = keyring.without_expired(now, retention)
        new = lock_keyring(
            kept,
            request["passphrase"],
            rng=recorded(_hex(request.get("random"))),
            kdf=parse_keystore_header(data, bounds=bounds).kdf,
            bounds=bounds,
        )
        return {
            "removedKeyIds": [k.key_id.hex() for k in removed],
            "keptKeyIds": self._key_ids(kept),
            "file": new.hex(),
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
