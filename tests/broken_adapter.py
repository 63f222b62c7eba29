"""A deliberately broken conformance adapter: the reference one with one seeded bug.

``python tests/broken_adapter.py --bug NAME`` serves interop_tests/harness.md
like ``python -m ncb_relay.conformance.adapter``, except for the one bug named;
``tests/test_conformance.py`` checks that the suite catches each of them and
names the requirement it breaks.  Each bug is a mistake a real implementation
could make; it is seeded by patching the library inside this process only.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import msgpack

from ncb_relay import (
    AnchorChain,
    FreshnessPolicy,
    ReplayGuard,
    SigningPublicKey,
    StaticDirectory,
    checkpoint,
    codec,
    directory_document,
    disclosure,
    envelope,
    header,
    keyring,
    log_audit,
    merkle,
    primitives,
    receipt,
    witness,
)
from ncb_relay.bureau import delivery
from ncb_relay.conformance.adapter import (
    JSON,
    Adapter,
    main,
    private_identity,
    public_identity,
    recorded,
    typed,
)
from ncb_relay.conformance.operations import keystore as keystore_operations
from ncb_relay.conformance.operations import receipts as receipt_operations
from ncb_relay.envelope import SealedEnvelope, VerifiedEnvelope
from ncb_relay.errors import (
    BelowThreshold,
    BindingMismatch,
    DecryptionFailed,
    Fork,
    FutureDated,
    InvalidBody,
    InvalidProof,
    MalformedInput,
    NcbRelayError,
    Rollback,
    StaleMessage,
)
from ncb_relay.messages import (
    Forward,
    conversation,
    conversations,
    decode_body,
    encode_body,
    handling,
    request_states,
    review,
)
from ncb_relay.messages.delivery_receipt import RECEIPT_HANDLING, ReceiptPolicy
from ncb_relay.messages.provenance import CarriedDisclosure


@dataclass(frozen=True)
class Bug:
    name: str
    what: str
    breaks: str  # the requirement the suite must report as failed
    seed: Callable[[], Adapter]
    only: str | None = None  # the one file of interop_tests/ to run: the only one sending its op


BUGS: dict[str, Bug] = {}


def bug(
    name: str, what: str, breaks: str, *, only: str | None = None
) -> Callable[[Callable[[], Adapter]], None]:
    def register(seed: Callable[[], Adapter]) -> None:
        BUGS[name] = Bug(name, what, breaks, seed, only)

    return register


def _skip_signature(label: bytes) -> None:
    verify = SigningPublicKey.verify

    def lax(self: SigningPublicKey, message: bytes, signature: bytes) -> None:
        if not message.startswith(label):
            verify(self, message, signature)

    SigningPublicKey.verify = lax  # type: ignore[method-assign]


@bug("skip-outer-signature", "never checks the outer signature", "OPEN-6")
def _() -> Adapter:
    _skip_signature(envelope.OUTER_SIGNATURE_LABEL)
    return Adapter()


@bug("skip-inner-signature", "never checks the inner signature", "OPEN-10")
def _() -> Adapter:
    _skip_signature(envelope.INNER_SIGNATURE_LABEL)
    return Adapter()


@bug(
    "lenient-signature-scalar",
    "reduces a signature's S mod L before verifying (accepts S + L)",
    "KEY-6",
    only="test_envelope.py",
)
def _() -> Adapter:
    order = 2**252 + 27742317777372353535851937790883648493
    verify = primitives.ed25519_verify

    def lax(public_key: bytes, message: bytes, signature: bytes) -> None:
        s = int.from_bytes(signature[32:], "little") % order
        verify(public_key, message, signature[:32] + s.to_bytes(32, "little"))

    primitives.ed25519_verify = lax
    return Adapter()


@bug("reencode-before-verify", "decodes the header leniently, hashes its re-encoding", "CODEC-8")
def _() -> Adapter:
    class LenientCodec:
        def __getattr__(self, name: str) -> Any:
            return getattr(codec, name)

        @staticmethod
        def decode(data: bytes, **limits: Any) -> Any:
            try:
                value = msgpack.unpackb(data, raw=False, strict_map_key=False)
            except Exception as exc:
                raise MalformedInput("not msgpack") from exc
            if isinstance(value, list) and len(value) == 11:  # a header: taken as it comes
                return value
            return codec.decode(data, **limits)

    digest = envelope.header_hash

    def header_hash(header_bytes: bytes) -> bytes:
        return digest(codec.encode(LenientCodec.decode(header_bytes)))

    header.codec = LenientCodec()  # type: ignore[attr-defined,assignment]
    envelope.header_hash = header_hash
    return Adapter()


class DuplicateKeys(Adapter):
    def decode(self, request: JSON) -> JSON:
        pairs: list[list[tuple[Any, Any]]] = []

        def hook(items: list[tuple[Any, Any]]) -> dict[Any, Any]:
            pairs.append(items)
            return dict(items)

        try:
            value = msgpack.unpackb(
                bytes.fromhex(request["data"]), raw=False, object_pairs_hook=hook
            )
        except Exception:
            return super().decode(request)
        if any(len({k for k, _ in items}) < len(items) for items in pairs):
            return {"value": typed(value)}  # the last value of a repeated key wins
        return super().decode(request)


@bug("duplicate-map-keys", "accepts a map with a repeated key (the last one wins)", "CODEC-3")
def _() -> Adapter:
    return DuplicateKeys()


class TrailingBytes(Adapter):
    def decode(self, request: JSON) -> JSON:
        data = bytes.fromhex(request["data"])
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(data)
        try:
            unpacker.unpack()
        except Exception:
            return super().decode(request)
        return super().decode({**request, "data": data[: unpacker.tell()].hex()})


@bug("trailing-bytes", "decodes the first value and ignores what follows", "CODEC-5")
def _() -> Adapter:
    return TrailingBytes()


@bug("ignore-expiry", "never refuses an expired envelope", "FRESH-2")
def _() -> Adapter:
    def check(self: FreshnessPolicy, created: int, expires: int, now: int) -> None:
        if created > now + self.max_skew:
            raise FutureDated("future")

    FreshnessPolicy.check = check  # type: ignore[method-assign]
    return Adapter()


@bug("ignore-future", "accepts envelopes created after now + max_skew", "FRESH-1")
def _() -> Adapter:
    def check(self: FreshnessPolicy, created: int, expires: int, now: int) -> None:
        if now >= expires + self.max_skew:
            raise StaleMessage("stale")

    FreshnessPolicy.check = check  # type: ignore[method-assign]
    return Adapter()


@bug(
    "unbounded-skew",
    "takes any max_skew it is configured with, even above 900 s",
    "FRESH-3",
    only="test_envelope.py",
)
def _() -> Adapter:
    FreshnessPolicy.__post_init__ = lambda self: None  # type: ignore[method-assign]
    return Adapter()


class UncheckedRecipientKeys(Adapter):
    def seal_envelope(self, request: JSON) -> SealedEnvelope:
        check = primitives.x25519_check_public_key
        primitives.x25519_check_public_key = lambda public_key: None
        try:
            return super().seal_envelope(request)
        finally:
            primitives.x25519_check_public_key = check


@bug(
    "seal-to-small-order-key",
    "seals to a recipient key of small order, with the all-zero shared secret",
    "KEY-5",
    only="test_envelope.py",
)
def _() -> Adapter:
    x25519 = primitives.x25519

    def unchecked(secret: bytes, public_key: bytes) -> bytes:
        try:
            return x25519(secret, public_key)
        except NcbRelayError:
            return bytes(32)  # what X25519 computes for a small-order point

    primitives.x25519 = unchecked
    return UncheckedRecipientKeys()


@bug("no-replay-check", "keeps no replay state", "REPLAY-1")
def _() -> Adapter:
    ReplayGuard.check = lambda self, sender, message_id, seq: None  # type: ignore[method-assign]
    return Adapter()


@bug("no-key-commitment", "never checks message_id against the content key", "OPEN-8")
def _() -> Adapter:
    def open_payload(routed: Any, content_key: bytes) -> bytes:
        plaintext = primitives.aead_decrypt(
            envelope.payload_key(content_key),
            envelope.PAYLOAD_NONCE,
            routed.payload,
            routed.header_digest,
        )
        inner, body = plaintext[:64], plaintext[64:]
        digest = primitives.blake2b(body, person=envelope.PERSON_BODY)
        try:
            routed.sender_key.verify(
                envelope.INNER_SIGNATURE_LABEL + routed.header_digest + digest, inner
            )
        except NcbRelayError as exc:
            raise DecryptionFailed("inner-signature") from exc
        return body

    envelope.open_payload = open_payload
    disclosure.open_payload = open_payload  # type: ignore[attr-defined]
    return Adapter()


@bug("wrong-recipient-binding", "accepts a recipient entry naming anyone's key id", "OPEN-5")
def _() -> Adapter:
    check = StaticDirectory.check_encryption_key

    def lax(self: StaticDirectory, principal: str, key_id: bytes, at: int) -> None:
        if key_id not in self._owner:
            check(self, principal, key_id, at)

    StaticDirectory.check_encryption_key = lax  # type: ignore[method-assign]
    return Adapter()


@bug("wrong-sender-binding", "takes the signing key by key id, whoever the sender is", "OPEN-4")
def _() -> Adapter:
    lookup = StaticDirectory.signing_key

    def lax(self: StaticDirectory, principal: str, key_id: bytes, at: int) -> SigningPublicKey:
        owner = self._owner.get(key_id, principal)
        return lookup(self, owner, key_id, at)

    StaticDirectory.signing_key = lax  # type: ignore[method-assign]
    return Adapter()


class LimitAsMalformed(Adapter):
    def error_code(self, exc: NcbRelayError) -> str:
        code = super().error_code(exc)
        return "malformed" if code == "limit-exceeded" else code


@bug("limit-as-malformed", "reports every limit as malformed", "CODEC-7")
def _() -> Adapter:
    return LimitAsMalformed()


@bug("reply-hash-only", "checks a reply's reply_to but not who answers whom", "BIND-2")
def _() -> Adapter:
    def lax(self: VerifiedEnvelope, request: VerifiedEnvelope | SealedEnvelope) -> None:
        if self.reply_to != request.message_hash:
            raise BindingMismatch("another request")

    VerifiedEnvelope.require_reply_to = lax  # type: ignore[method-assign]
    return Adapter()


class ReusedRandomness(Adapter):
    def seal_envelope(self, request: JSON) -> SealedEnvelope:
        draw = recorded(None if request.get("random") is None else bytes.fromhex(request["random"]))
        first: list[bytes] = []

        def again(n: int) -> bytes:
            if not first:
                first.append(draw(n))
            return first[0]

        return envelope.seal(
            bytes.fromhex(request["body"]),
            sender=private_identity(request["sender"]),
            recipients=[public_identity(p) for p in request["recipients"]],
            now=request["now"],
            seq=request["seq"],
            ttl=request["ttl"],
            reply_to=None if request.get("replyTo") is None else bytes.fromhex(request["replyTo"]),
            rng=again,
        )


@bug("reused-randomness", "uses one random value as both K and e", "SEAL-1")
def _() -> Adapter:
    return ReusedRandomness()


def _without(value: Any, path: list[str]) -> Any:
    """``value`` (a decoded body) without the field at ``path`` (names and ``[i]`` indices)."""
    if not path:
        return value
    step, rest = path[0], path[1:]
    name, _, index = step.partition("[")
    if not rest and not index:
        return {k: v for k, v in value.items() if k != name}
    inner = value[name]
    if index:
        i = int(index.rstrip("]"))
        inner = [*inner[:i], _without(inner[i], rest), *inner[i + 1 :]]
    else:
        inner = _without(inner, rest)
    return {**value, name: inner}


class UnknownFields(Adapter):
    def decode_body(self, request: JSON) -> JSON:
        data = bytes.fromhex(request["body"])
        for _ in range(8):
            try:
                return super().decode_body({**request, "body": data.hex()})
            except InvalidBody as exc:
                if exc.reason != "unexpected" or exc.field is None:
                    raise
                data = codec.encode(_without(codec.decode(data), exc.field.split(".")))
        return super().decode_body(request)


@bug(
    "unknown-body-field",
    "skips a body field its type does not have",
    "MSG-2",
    only="test_messages.py",
)
def _() -> Adapter:
    return UnknownFields()


@bug(
    "h2-forward-without-permission",
    "lets an H2 message be forwarded unasked",
    "FWD-4",
    only="test_messages.py",
)
def _() -> Adapter:
    handling.Handling.forbids_dissemination = property(lambda self: False)  # type: ignore[method-assign,assignment]
    return Adapter()


@bug(
    "any-late-reply",
    "lets a late reply overwrite a settled request",
    "CONV-1",
    only="test_messages.py",
)
def _() -> Adapter:
    def lax(state: request_states.RequestState, event: request_states.RequestEvent) -> Any:
        try:
            return request_states.TRANSITIONS[(state, event)]
        except KeyError:
            return state  # the table has no such move: kept as it was, without complaint

    conversation.next_state = lax  # type: ignore[attr-defined]
    return Adapter()


@bug(
    "inclusion-any-length",
    "walks an inclusion proof without checking its length",
    "LOG-3",
    only="test_log.py",
)
def _() -> Adapter:
    def walk(leaf: bytes, index: int, size: int, proof: Any) -> bytes:
        if not 0 <= index < size:
            raise InvalidProof("the leaf index is not below the tree size")
        fn, sn, r = index, size - 1, leaf
        for p in proof:  # RFC 9162 2.1.3.2, without "sn == 0" at each step and at the end
            if fn & 1 or fn == sn:
                r = merkle.node_hash(p, r)
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
            else:
                r = merkle.node_hash(r, p)
            fn, sn = fn >> 1, sn >> 1
        return r

    merkle.root_from_inclusion_proof = walk
    return Adapter()


class CosignatureLines(Adapter):
    def verify_checkpoint(self, request: JSON) -> JSON:
        try:
            return super().verify_checkpoint(request)
        except BelowThreshold:
            lines = bytes.fromhex(request["note"]).decode().split("\n\n", 1)[1].splitlines()
            names = {w["name"] for w in request.get("witnesses", [])}
            count = sum(line.split(" ")[1] in names for line in lines if " " in line)
            if count < request["threshold"]:
                raise
            return super().verify_checkpoint({**request, "threshold": 0})


@bug(
    "count-cosignature-lines",
    "counts witness lines, not distinct witness keys",
    "LOG-10",
    only="test_log.py",
)
def _() -> Adapter:
    return CosignatureLines()


@bug(
    "ignore-smaller-tree",
    "keeps the held checkpoint when offered a smaller tree",
    "LOG-13",
    only="test_log.py",
)
def _() -> Adapter:
    update = checkpoint.LogView.update

    def lax(self: checkpoint.LogView, data: bytes, proof: Any = ()) -> Any:
        held = self.latest
        if held is not None and checkpoint.verify_checkpoint(data, log=self.log).size < held.size:
            return held  # an old checkpoint, it seems: no fork recorded
        return update(self, data, proof)

    checkpoint.LogView.update = lax  # type: ignore[method-assign]
    return Adapter()


class _MerkleWithoutInclusion:
    """The merkle module as the receipt code sees it, but every inclusion proof passes."""

    def __getattr__(self, name: str) -> Any:
        return getattr(merkle, name)

    @staticmethod
    def verify_inclusion(*args: Any) -> None:
        return None


@bug(
    "receipt-skip-inclusion",
    "trusts a receipt's log index without checking its inclusion proof",
    "LOG-17",
    only="test_log.py",
)
def _() -> Adapter:
    receipt.merkle = _MerkleWithoutInclusion()  # type: ignore[attr-defined,assignment]
    return Adapter()


@bug(
    "receipt-skip-signature",
    "never checks the signature of a receipt",
    "LOG-16",
    only="test_log.py",
)
def _() -> Adapter:
    _skip_signature(receipt.RECEIPT_LABEL)
    return Adapter()


@bug(
    "older-checkpoint-without-proof",
    "takes a checkpoint smaller than the one held as consistent without a proof",
    "LOG-18",
    only="test_log.py",
)
def _() -> Adapter:
    check = checkpoint.LogView.check

    def lax(self: checkpoint.LogView, data: bytes, proof: Any = ()) -> Any:
        held = self.latest
        offered = checkpoint.verify_checkpoint(data, log=self.log)
        if held is not None and offered.size < held.size:
            return offered  # an older checkpoint, surely a prefix of the one held
        return check(self, data, proof)

    checkpoint.LogView.check = lax  # type: ignore[method-assign]
    return Adapter()


class ForgetfulDirectory(Adapter):
    def verify_directory(self, request: JSON) -> JSON:
        try:
            return super().verify_directory(request)
        except Rollback:  # "an older file, perhaps a cached copy": checked as if nothing were held
            return super().verify_directory({**request, "previous": None})


@bug(
    "ignore-directory-rollback",
    "accepts an older directory than the one held",
    "DIR-12",
    only="test_directory.py",
)
def _() -> Adapter:
    return ForgetfulDirectory()


class LaxAnchors(Adapter):
    @staticmethod
    def anchor_chain(request: JSON) -> AnchorChain:
        files = [bytes.fromhex(a) for a in request["anchors"]]
        chain = AnchorChain.trust(files[0])
        for data in files[1:]:
            try:
                chain = chain.extend(data)
            except (Fork, Rollback):
                continue  # another anchor for a serial already held: ignored, no alarm
        return chain


@bug(
    "ignore-anchor-fork",
    "ignores a second, different anchor for a serial it holds",
    "ANCHOR-5",
    only="test_directory.py",
)
def _() -> Adapter:
    return LaxAnchors()


@bug(
    "directory-generic-limits",
    "decodes a directory document under the codec's general limits, not DIR-14's",
    "DIR-14",
    only="test_directory.py",
)
def _() -> Adapter:
    directory_document.DOCUMENT_LIMITS = codec.CodecLimits()
    return Adapter()


@bug(
    "directory-any-validity",
    "takes a directory valid for any period after its issue time",
    "DIR-5",
    only="test_directory.py",
)
def _() -> Adapter:
    directory_document.MAX_VALIDITY = 2**40
    return Adapter()


class TrailingKeystoreBytes(Adapter):
    def unlock_keystore(self, request: JSON) -> JSON:
        data = bytes.fromhex(request["file"])
        if len(data) >= 62:  # read the box its header announces, ignore anything after it
            data = data[: 62 + int.from_bytes(data[58:62], "big")]
        return super().unlock_keystore({**request, "file": data.hex()})


@bug(
    "keystore-trailing-bytes",
    "reads the box its header announces and ignores bytes after it",
    "KS-10",
    only="test_keystore.py",
)
def _() -> Adapter:
    return TrailingKeystoreBytes()


@bug(
    "keystore-no-size-limit",
    "reads a keystore file of any size",
    "KS-8",
    only="test_keystore.py",
)
def _() -> Adapter:
    unbounded = functools.partial(keyring.unlock_keyring, max_bytes=2**32)
    keystore_operations.unlock_keyring = unbounded  # type: ignore[attr-defined]
    return Adapter()


@bug(
    "duplicate-by-id",
    "takes a message whose id it applied or holds as a duplicate, whatever its hash",
    "CONV-5",
    only="test_parties.py",
)
def _() -> Adapter:
    def seen(self: conversation.Conversation, message_id: bytes, message_hash: bytes) -> bool:
        return message_id in self._seen

    def held(self: conversations.Conversations, message: Any) -> bool:
        return any(m.message_id == message.message_id for m in self.parked)

    conversation.Conversation._is_duplicate = seen  # type: ignore[method-assign]
    conversations.Conversations._is_held = held  # type: ignore[method-assign]
    return Adapter()


@bug(
    "forget-oldest-held",
    "makes room for a new early reply by forgetting the oldest one held",
    "CONV-6",
    only="test_parties.py",
)
def _() -> Adapter:
    receive = conversations.Conversations.receive

    def evicting(self: conversations.Conversations, message: Any) -> Any:
        if self.max_parked and self.parked_count >= self.max_parked:
            oldest = next(iter(self._parked))
            self._parked[oldest].pop(0)
            if not self._parked[oldest]:
                del self._parked[oldest]
        return receive(self, message)

    conversations.Conversations.receive = evicting  # type: ignore[method-assign]
    return Adapter()


class SealAnyBody(Adapter):
    def seal_message(self, request: JSON) -> JSON:
        return self.seal(request)  # the body as it comes, without the receiver's envelope rules


@bug(
    "seal-any-body",
    "seals a body without checking it against its envelope (reply_to, times, receipts)",
    "MSG-11",
    only="test_sealing.py",
)
def _() -> Adapter:
    return SealAnyBody()


class SealAnyForward(Adapter):
    def seal_forward(self, request: JSON) -> JSON:
        guard, directory = self.replay_guard(request), self.directory(request)
        as_sender = {**request, "recipient": request["sender"]}
        original = self.open_one(as_sender, bytes.fromhex(request["original"]), guard, directory)
        permission = None
        if request.get("permission") is not None:
            data = bytes.fromhex(request["permission"])
            opened = self.open_one(as_sender, data, guard, directory)
            permission = CarriedDisclosure.of(opened.disclose())
        body = decode_body(original.body)
        forward = Forward(
            handling=getattr(body, "handling", RECEIPT_HANDLING),
            original=CarriedDisclosure.of(original.disclose()),
            permission=permission,
        )
        return self.seal({**request, "body": encode_body(forward).hex(), "replyTo": None})


@bug(
    "seal-any-forward",
    "seals a forward of whatever it opened, without FWD-2 to FWD-4's checks",
    "FWD-5",
    only="test_sealing.py",
)
def _() -> Adapter:
    return SealAnyForward()


@bug(
    "receipt-by-id-only",
    "takes a delivery receipt naming a message it sent by id, whatever hash it names",
    "MSG-15",
    only="test_parties.py",
)
def _() -> Adapter:
    check = delivery.check_receipt

    def lax(message: Any, sent: Any) -> Any:
        if sent is not None:
            sent = dataclasses.replace(sent, message_hash=message.body.message_hash)
        return check(message, sent)

    receipt_operations.check_receipt = lax  # type: ignore[attr-defined]
    return Adapter()


@bug(
    "failed-message-overdue",
    "reports a message the relay refused as overdue once its receipt deadline passed",
    "MSG-16",
    only="test_parties.py",
)
def _() -> Adapter:
    state = delivery.delivery_state

    def lax(**facts: Any) -> Any:
        missing = set(facts["recipients"]) - set(facts["receipted"])
        if missing and facts["expects"] and facts["now"] >= facts["deadline"]:
            return delivery.DeliveryState.OVERDUE  # even when the relay refused the message
        return state(**facts)

    receipt_operations.delivery_state = lax  # type: ignore[attr-defined]
    return Adapter()


@bug(
    "witness-cosigns-any",
    "cosigns every checkpoint the log signed, without checking it against the one held",
    "LOG-30",
    only="test_witness.py",
)
def _() -> Adapter:
    witness.Witness._check = lambda self, held, offered, proof: None  # type: ignore[method-assign]
    return Adapter()


class ReceiptsToAll(Adapter):
    @staticmethod
    def listed(request: JSON, principals: list[str]) -> list[Any]:
        me = request["recipient"]["id"]  # every other principal it knows, the sender among them
        return [public_identity(p) for p in request["directory"] if p["id"] != me]


@bug(
    "receipt-to-everyone",
    "sends each delivery receipt to every principal it knows, not to the sender alone",
    "MSG-13",
    only="test_receipts.py",
)
def _() -> Adapter:
    return ReceiptsToAll()


@bug(
    "receipt-of-a-receipt",
    "receipts delivery receipts too when its policy names every schema",
    "MSG-14",
    only="test_receipts.py",
)
def _() -> Adapter:
    ReceiptPolicy.wants = lambda self, schema_id: self.enabled and schema_id not in self.off  # type: ignore[method-assign]
    return Adapter()


@bug(
    "gate-releases-everything",
    "releases every diffusion at once, even from a bureau under review",
    "GATE-1",
    only="test_gate.py",
)
def _() -> Adapter:
    init = review.ReviewGate.__init__

    def lax(self: review.ReviewGate, *, under_review: Iterable[str] = ()) -> None:
        init(self, under_review=())

    review.ReviewGate.__init__ = lax  # type: ignore[method-assign]
    return Adapter()


@bug(
    "gate-forwards-twice",
    "lets a forwarded diffusion be forwarded again",
    "GATE-2",
    only="test_gate.py",
)
def _() -> Adapter:
    moves = dict(review.REVIEW_MOVES)
    moves[review.ReviewStatus.FORWARDED, review.ReviewAction.FORWARD] = (
        review.ReviewStatus.FORWARDED
    )
    review.REVIEW_MOVES = MappingProxyType(moves)
    return Adapter()


@bug(
    "audit-skips-roots",
    "verifies each checkpoint's signature but never compares its root with the entries'",
    "LOG-31",
    only="test_audit.py",
)
def _() -> Adapter:
    def count_only(self: log_audit.LogAuditor, size: int) -> None:
        self.report.checkpoints_checked += 1

    log_audit.LogAuditor._check_root = count_only  # type: ignore[method-assign]
    return Adapter()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bug", required=True, choices=sorted(BUGS))
    main(BUGS[parser.parse_args().bug].seed())
