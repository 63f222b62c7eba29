"""The codec, envelope, disclosure and request-authentication operations (spec/protocol.md)."""

from __future__ import annotations

from ... import (
    Disclosure,
    NcbRelayError,
    NonceCache,
    RequestVerifier,
    codec,
    seal,
    sign_request,
    verify_disclosure,
    verify_routing,
)
from ...envelope import SealedEnvelope, VerifiedEnvelope
from .base import OperationsBase
from .values import JSON, hex_or_none, private_identity, recorded, sealing_terms, typed, untyped


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


class EnvelopeOperations(OperationsBase):
    """decode, encode, seal, route, open, verify-disclosure, check-reply and request signing."""

    def decode(self, request: JSON) -> JSON:
        data = bytes.fromhex(request["data"])
        return {"value": typed(codec.decode(data, limits=self.codec_limits(request)))}

    def encode(self, request: JSON) -> JSON:
        value = untyped(request["value"])
        return {"data": codec.encode(value, limits=self.codec_limits(request)).hex()}

    def seal_envelope(self, request: JSON) -> SealedEnvelope:
        return seal(
            bytes.fromhex(request["body"]),
            **sealing_terms(request),
            reply_to=hex_or_none(request.get("replyTo")),
            rng=recorded(hex_or_none(request.get("random"))),
        )

    def seal(self, request: JSON) -> JSON:
        return self._sealed(self.seal_envelope(request))

    @staticmethod
    def _sealed(sealed: SealedEnvelope) -> JSON:
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
