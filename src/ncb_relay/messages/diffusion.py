"""Information for many bureaus at once: diffusions and notices (spec/messages.md).

A :class:`Diffusion` goes from one bureau to several or all bureaus.  Sent
directly, its envelope lists the recipients; sent through the coordinator's
review gate (:mod:`ncb_relay.messages.review`), it is addressed to the
coordinator alone and its :class:`Distribution` says who it is for.  A
:class:`Notice` is published by the coordinator, after review, at a bureau's
request.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from .assistance import Offence, RequestedAction
from .body import Body
from .fields import (
    MAX_RECIPIENT_IDS,
    BodyPart,
    Label,
    PrincipalId,
    Text,
    Time,
    check_unique,
)
from .subjects import Subjects

__all__ = ["Diffusion", "DiffusionKind", "Distribution", "Notice", "NoticeKind"]

DiffusionKind = Literal[
    "alert",
    "request-for-information",
    "information",
    "wanted-person",
    "missing-person",
]
NoticeKind = Literal["red", "yellow", "blue", "black", "green", "orange", "purple", "special"]


class Distribution(BodyPart):
    """Who a diffusion is for: every bureau, or the bureaus listed."""

    scope: Literal["all", "selected"]
    bureaus: tuple[PrincipalId, ...] = Field(
        default=(), max_length=MAX_RECIPIENT_IDS, validate_default=True
    )

    @field_validator("bureaus")
    @classmethod
    def _listed_iff_selected(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if (info.data.get("scope") == "selected") != bool(value):
            raise ValueError('bureaus are listed exactly when the scope is "selected"')
        return check_unique(value)

    @classmethod
    def to(cls, *bureaus: str) -> Distribution:
        return cls(scope="selected", bureaus=bureaus)


class Diffusion(Body):
    schema_id = "ncbr.diffusion"

    kind: DiffusionKind
    title: Label
    text: Text
    distribution: Distribution
    case_reference: Label | None = None
    offences: tuple[Offence, ...] = Field(default=(), max_length=8)
    subjects: Subjects = Subjects()
    requested_actions: tuple[RequestedAction, ...] = Field(default=(), max_length=7)
    valid_until: Time | None = None

    _unique = field_validator("requested_actions")(check_unique)


class Notice(Body):
    """A notice the coordinator publishes; only the coordinator may send one (MSG-9)."""

    schema_id = "ncbr.notice"

    kind: NoticeKind
    reference: Label
    title: Label
    summary: Text
    requested_by: PrincipalId
    offences: tuple[Offence, ...] = Field(default=(), max_length=8)
    subjects: Subjects = Subjects()
    requested_actions: tuple[RequestedAction, ...] = Field(default=(), max_length=7)
    valid_until: Time | None = None

    _unique = field_validator("requested_actions")(check_unique)
