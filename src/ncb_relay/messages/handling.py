"""Handling information: what a recipient may do with what it was told (spec/messages.md).

Every body carries it, inside the signed plaintext, so the originator's
restrictions travel with the information and cannot be stripped by anyone
who passes it on.  The vocabulary is the one European and INTERPOL channels
use: a handling code, the source's reliability and the information's accuracy
(the "4x4" evaluation).

==== ===========================================================================
Code Meaning
==== ===========================================================================
H0   no restriction beyond the law of the receiving country
H1   not to be used in judicial proceedings without the originator's permission
H2   not to be disseminated further without the originator's permission
H3   other restrictions, stated in ``conditions``
==== ===========================================================================

Source reliability: A (no doubt of authenticity, trustworthiness or competence,
or a history of complete reliability), B (source from whom information received
has in most instances proved reliable), C (has in most instances proved
unreliable), X (reliability cannot be assessed).  Information accuracy: 1 (known
to be true without reservation), 2 (known personally to the source but not to
the official passing it on), 3 (not known personally to the source but
corroborated by information already recorded), 4 (cannot be judged).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from .fields import MAX_CONDITIONS, BodyPart, Text

__all__ = ["Handling", "HandlingCode", "InformationAccuracy", "SourceReliability"]

HandlingCode = Literal["H0", "H1", "H2", "H3"]
SourceReliability = Literal["A", "B", "C", "X"]
InformationAccuracy = Annotated[int, Field(ge=1, le=4)]


class Handling(BodyPart):
    """The originator's handling code, conditions and evaluation of the information."""

    code: HandlingCode
    source_reliability: SourceReliability
    information_accuracy: InformationAccuracy
    conditions: tuple[Text, ...] = Field(
        default=(), max_length=MAX_CONDITIONS, validate_default=True
    )

    @field_validator("conditions")
    @classmethod
    def _h3_states_its_conditions(
        cls, value: tuple[str, ...], info: ValidationInfo
    ) -> tuple[str, ...]:
        if info.data.get("code") == "H3" and not value:
            raise ValueError("handling code H3 needs at least one condition")
        return value

    @property
    def forbids_dissemination(self) -> bool:
        """H2: no onward dissemination without the originator's signed permission."""
        return self.code == "H2"

    @property
    def forbids_judicial_use(self) -> bool:
        """H1: not for judicial proceedings without the originator's permission."""
        return self.code == "H1"
