"""Message bodies, conversations, forwards and sealing operations (spec/messages.md)."""

from __future__ import annotations

from ... import NcbRelayError, codec
from ...messages import (
    AssistanceRequest,
    Conversations,
    Delivery,
    Disposition,
    OpaqueBody,
    decode_body,
    encode_body,
    read_message,
    seal_forward,
    seal_message,
    verify_forward,
)
from ...messages.message import check_context
from .envelopes import EnvelopeOperations
from .values import JSON, BadRequest, hex_or_none, recorded, sealing_terms, typed


class MessageOperations(EnvelopeOperations):
    """decode-body, check-body, follow-conversation, verify-forward, seal-message, seal-forward."""

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
            reply_to=hex_or_none(request.get("replyTo")),
            coordinator=request["coordinator"],
        )
        return {"accepted": True}

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

    def seal_message(self, request: JSON) -> JSON:
        body = decode_body(bytes.fromhex(request["body"]))
        if isinstance(body, OpaqueBody):
            return self.seal(request)  # the application's own schema: sealed as it is (MSG-5)
        sealed = seal_message(
            body,
            **sealing_terms(request),
            reply_to=hex_or_none(request.get("replyTo")),
            rng=recorded(hex_or_none(request.get("random"))),
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
            **sealing_terms(request),
            rng=recorded(hex_or_none(request.get("random"))),
            coordinator=request["coordinator"],
            permission=permission,
        )
        return self._sealed(forward.sealed)
