"""A request for assistance and the messages of its life (spec/messages.md, "Assistance").

A bureau sends an :class:`AssistanceRequest`; the addressed bureau answers with
an :class:`Acknowledgement` (accepted or declined), any number of
:class:`StatusUpdate` messages and one or more :class:`AssistanceResponse`
messages; the requester may send a :class:`Withdrawal`.  Every reply sets the
envelope's ``reply_to`` to the message hash of the request (or of the forward
that delivered it), which is how it is bound to exactly that request (BIND-2).

A request's deadline is not a free-standing time: ``urgent`` means eight hours
and ``standard`` seven days after the request's signed ``created`` time, and
``explicit`` carries its own time, which must be later than ``created``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from .body import Body
from .fields import (
    MAX_ITEMS,
    BodyPart,
    CountryCode,
    Digest,
    Label,
    LanguageTag,
    LongText,
    Text,
    Time,
    check_unique,
)
from .subjects import Subjects

__all__ = [
    "STANDARD_SECONDS",
    "URGENT_SECONDS",
    "Acknowledgement",
    "AssistanceRequest",
    "AssistanceResponse",
    "Authority",
    "EvidenceReference",
    "Offence",
    "OffenceCategory",
    "RequestedAction",
    "StatusUpdate",
    "Urgency",
    "Withdrawal",
]

URGENT_SECONDS = 8 * 3600
STANDARD_SECONDS = 7 * 24 * 3600

OffenceCategory = Literal[
    "copyright-piracy",
    "trademark-counterfeiting",
    "fraud",
    "cybercrime",
    "human-trafficking",
    "drug-trafficking",
    "firearms-trafficking",
    "money-laundering",
    "other",
]
RequestedAction = Literal[
    "identify",
    "locate",
    "preserve-evidence",
    "take-down",
    "seize",
    "arrest",
    "provide-information",
]
UrgencyLevel = Literal["urgent", "standard", "explicit"]


class Offence(BodyPart):
    """An offence category; ``other`` names the offence and is set only for ``"other"``."""

    category: OffenceCategory
    other: Label | None = Field(default=None, validate_default=True)

    @field_validator("other")
    @classmethod
    def _other_iff_other(cls, value: str | None, info: ValidationInfo) -> str | None:
        if (info.data.get("category") == "other") != (value is not None):
            raise ValueError('set exactly when the category is "other"')
        return value


class Authority(BodyPart):
    """The national body a bureau acts for (a ministry, a prosecutor, a police unit)."""

    name: Label
    country: CountryCode
    reference: Label | None = None


class Urgency(BodyPart):
    """How soon an answer is needed: urgent (8 h), standard (7 days) or an explicit time."""

    level: UrgencyLevel
    deadline: Time | None = Field(default=None, validate_default=True)

    @field_validator("deadline")
    @classmethod
    def _deadline_iff_explicit(cls, value: int | None, info: ValidationInfo) -> int | None:
        if (info.data.get("level") == "explicit") != (value is not None):
            raise ValueError('set exactly when the level is "explicit"')
        return value

    @classmethod
    def urgent(cls) -> Urgency:
        return cls(level="urgent")

    @classmethod
    def standard(cls) -> Urgency:
        return cls(level="standard")

    @classmethod
    def until(cls, deadline: int) -> Urgency:
        return cls(level="explicit", deadline=deadline)

    def deadline_after(self, created: int) -> int:
        """The time by which an answer is due, for a request created at ``created``."""
        if self.level == "urgent":
            return created + URGENT_SECONDS
        if self.level == "standard":
            return created + STANDARD_SECONDS
        assert self.deadline is not None
        return self.deadline


class AssistanceRequest(Body):
    schema_id = "ncbr.assistance-request"

    case_reference: Label
    originating_authority: Authority
    offences: tuple[Offence, ...] = Field(min_length=1, max_length=8)
    summary: Text
    subjects: Subjects
    requested_actions: tuple[RequestedAction, ...] = Field(min_length=1, max_length=7)
    legal_basis: Text
    urgency: Urgency
    languages: tuple[LanguageTag, ...] = Field(min_length=1, max_length=8)

    _unique = field_validator("requested_actions", "languages")(check_unique)


class Acknowledgement(Body):
    """Receipt of a request: accepted (with an expected answer date) or declined (with a reason)."""

    schema_id = "ncbr.acknowledgement"

    decision: Literal["accepted", "declined"]
    reason: Text | None = Field(default=None, validate_default=True)
    expected_answer_by: Time | None = Field(default=None, validate_default=True)
    reference: Label | None = None

    @field_validator("reason")
    @classmethod
    def _declining_says_why(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("decision") == "declined" and value is None:
            raise ValueError("a declined request needs a reason")
        return value

    @field_validator("expected_answer_by")
    @classmethod
    def _only_when_accepted(cls, value: int | None, info: ValidationInfo) -> int | None:
        if info.data.get("decision") == "declined" and value is not None:
            raise ValueError("a declined request has no expected answer date")
        return value


class StatusUpdate(Body):
    schema_id = "ncbr.status-update"

    stage: Literal["in-progress", "information-needed", "referred"]
    summary: Text
    expected_answer_by: Time | None = None


class EvidenceReference(BodyPart):
    """Where a piece of evidence is held; ``sha256`` pins the exact file when it is shared."""

    reference: Label
    description: Label
    held_by: Label | None = None
    sha256: Digest | None = None


class AssistanceResponse(Body):
    schema_id = "ncbr.assistance-response"

    outcome: Literal["completed", "partially-completed", "not-possible"]
    findings: LongText
    actions_taken: tuple[RequestedAction, ...] = Field(default=(), max_length=7)
    evidence: tuple[EvidenceReference, ...] = Field(default=(), max_length=MAX_ITEMS)
    reference: Label | None = None

    _unique = field_validator("actions_taken")(check_unique)


class Withdrawal(Body):
    """The requester no longer needs an answer."""

    schema_id = "ncbr.withdrawal"

    reason: Text
