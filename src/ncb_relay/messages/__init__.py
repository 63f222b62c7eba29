"""The message layer: typed bodies, conversations, forwarding and review (spec/messages.md).

Everything here is sans-IO, like the envelope core it builds on: bodies are
frozen, strictly validated models; a conversation, a review gate and the
routing of replies are plain state with ``now`` passed in.

Modules, from the bottom up: :mod:`.fields` (bounded field types),
:mod:`.handling` (handling codes), :mod:`.body` (the body frame and opaque
bodies), :mod:`.subjects`, :mod:`.assistance`, :mod:`.diffusion`,
:mod:`.error_report`, :mod:`.provenance` and :mod:`.delivery_receipt` (the built-in bodies),
:mod:`.registry` (encoding, decoding, extensions), :mod:`.message` (bodies
checked against their envelopes), :mod:`.forwarding`, :mod:`.request_states` (the
state table), :mod:`.conversation`, :mod:`.conversations`, :mod:`.review` and
:mod:`.schemas` (JSON Schema export).
"""

from __future__ import annotations

from .assistance import (
    STANDARD_SECONDS,
    URGENT_SECONDS,
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Authority,
    EvidenceReference,
    Offence,
    StatusUpdate,
    Urgency,
    Withdrawal,
)
from .body import Body, OpaqueBody
from .conversation import Conversation, Step
from .conversations import Conversations, Delivery, Disposition
from .delivery_receipt import DEFAULT_RECEIPT_POLICY, NO_RECEIPTS, DeliveryReceipt, ReceiptPolicy
from .diffusion import Diffusion, Distribution, Notice
from .error_report import ErrorReport
from .fields import BodyPart
from .forwarding import ForwardedMessage, SealedForward, seal_forward, verify_forward
from .handling import Handling
from .message import Message, read_message, seal_message
from .provenance import CarriedDisclosure, DisseminationPermission, Forward
from .registry import BUILTIN_BODIES, DEFAULT_REGISTRY, BodyRegistry, decode_body, encode_body
from .request_states import TRANSITIONS, RequestEvent, RequestState, next_state
from .review import ReviewGate, ReviewStatus, Submission
from .schemas import json_schemas
from .subjects import (
    CryptoWallet,
    IpAddress,
    Organisation,
    PaymentAccount,
    Person,
    Subjects,
    Website,
)

__all__ = [
    "BUILTIN_BODIES",
    "DEFAULT_RECEIPT_POLICY",
    "DEFAULT_REGISTRY",
    "NO_RECEIPTS",
    "STANDARD_SECONDS",
    "TRANSITIONS",
    "URGENT_SECONDS",
    "Acknowledgement",
    "AssistanceRequest",
    "AssistanceResponse",
    "Authority",
    "Body",
    "BodyPart",
    "BodyRegistry",
    "CarriedDisclosure",
    "Conversation",
    "Conversations",
    "CryptoWallet",
    "Delivery",
    "DeliveryReceipt",
    "Diffusion",
    "Disposition",
    "DisseminationPermission",
    "Distribution",
    "ErrorReport",
    "EvidenceReference",
    "Forward",
    "ForwardedMessage",
    "Handling",
    "IpAddress",
    "Message",
    "Notice",
    "Offence",
    "OpaqueBody",
    "Organisation",
    "PaymentAccount",
    "Person",
    "ReceiptPolicy",
    "RequestEvent",
    "RequestState",
    "ReviewGate",
    "ReviewStatus",
    "SealedForward",
    "StatusUpdate",
    "Step",
    "Subjects",
    "Submission",
    "Urgency",
    "Website",
    "Withdrawal",
    "decode_body",
    "encode_body",
    "json_schemas",
    "next_state",
    "read_message",
    "seal_forward",
    "seal_message",
    "verify_forward",
]
