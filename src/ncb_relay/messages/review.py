"""The coordinator's review gate for diffusions (spec/messages.md, "Review gate").

Theory of operation.  The coordinator can put a bureau's diffusions under
review, as INTERPOL does for a bureau whose diffusions must be checked before
they circulate.  Such a bureau addresses each diffusion to the coordinator
alone, with the intended bureaus in the body's ``distribution``; the
coordinator submits it to its :class:`ReviewGate`.  A diffusion from a bureau
under review is ``HELD`` until a reviewer approves or rejects it; one from any
other bureau is ``RELEASED`` at once.  Approved and released diffusions are
then forwarded by the coordinator, with provenance, to the bureaus the
distribution names (:func:`~ncb_relay.messages.forwarding.seal_forward`), and
marked ``FORWARDED`` so that none is sent twice.  The moves are the table
:data:`REVIEW_MOVES`; any other raises.  The gate is pure state: it does no
I/O, and times are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from ..errors import UsageError
from ..identity import check_principal_id
from .diffusion import Diffusion
from .message import Message

__all__ = ["REVIEW_MOVES", "ReviewAction", "ReviewGate", "ReviewStatus", "Submission"]


class ReviewStatus(StrEnum):
    HELD = "held"
    RELEASED = "released"
    APPROVED = "approved"
    REJECTED = "rejected"
    FORWARDED = "forwarded"


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    FORWARD = "forward"


REVIEW_MOVES: Mapping[tuple[ReviewStatus, ReviewAction], ReviewStatus] = MappingProxyType(
    {
        (ReviewStatus.HELD, ReviewAction.APPROVE): ReviewStatus.APPROVED,
        (ReviewStatus.HELD, ReviewAction.REJECT): ReviewStatus.REJECTED,
        (ReviewStatus.APPROVED, ReviewAction.FORWARD): ReviewStatus.FORWARDED,
        (ReviewStatus.RELEASED, ReviewAction.FORWARD): ReviewStatus.FORWARDED,
    }
)


@dataclass(frozen=True, slots=True)
class Submission:
    """A diffusion at the gate, its status, and the reviewer's decision."""

    message: Message
    body: Diffusion
    status: ReviewStatus
    decided_at: int | None = None
    reason: str | None = None

    @property
    def message_hash(self) -> bytes:
        return self.message.message_hash

    def targets(self, every_bureau: Iterable[str]) -> tuple[str, ...]:
        """The bureaus to forward to: those listed, or ``every_bureau`` for scope "all".

        The author and the coordinator (who hold the diffusion already) are left out.
        """
        distribution = self.body.distribution
        names = every_bureau if distribution.scope == "all" else distribution.bureaus
        skip = {self.message.sender, *self.message.recipients}
        return tuple(sorted({name for name in names if name not in skip}))


class ReviewGate:
    """Holds diffusions from the bureaus under review until a reviewer decides."""

    def __init__(self, *, under_review: Iterable[str] = ()) -> None:
        self._under_review = {check_principal_id(p, error=UsageError) for p in under_review}
        self._submissions: dict[bytes, Submission] = {}

    @property
    def under_review(self) -> frozenset[str]:
        return frozenset(self._under_review)

    def hold_diffusions_from(self, bureau: str) -> None:
        self._under_review.add(check_principal_id(bureau, error=UsageError))

    def release_diffusions_from(self, bureau: str) -> None:
        """Stop reviewing ``bureau``; diffusions already held still wait for a decision."""
        self._under_review.discard(bureau)

    def submit(self, message: Message) -> Submission:
        """Take a diffusion in; a second submission of the same message returns the first."""
        if not isinstance(message, Message) or not isinstance(message.body, Diffusion):
            raise UsageError("only a Message with a Diffusion body goes through the review gate")
        known = self._submissions.get(message.message_hash)
        if known is not None:
            return known
        held = message.sender in self._under_review
        status = ReviewStatus.HELD if held else ReviewStatus.RELEASED
        submission = Submission(message, message.body, status)
        self._submissions[message.message_hash] = submission
        return submission

    def approve(self, message_hash: bytes, *, now: int, note: str | None = None) -> Submission:
        return self._move(message_hash, ReviewAction.APPROVE, now=now, reason=note)

    def reject(self, message_hash: bytes, *, now: int, reason: str) -> Submission:
        return self._move(message_hash, ReviewAction.REJECT, now=now, reason=reason)

    def mark_forwarded(self, message_hash: bytes) -> Submission:
        """Record that the coordinator forwarded an approved or released diffusion."""
        return self._move(message_hash, ReviewAction.FORWARD, now=None, reason=None)

    def submission(self, message_hash: bytes) -> Submission:
        try:
            return self._submissions[message_hash]
        except KeyError:
            raise UsageError("no diffusion with that message hash was submitted") from None

    def with_status(self, *statuses: ReviewStatus) -> tuple[Submission, ...]:
        """The submissions in any of ``statuses``, in the order they were submitted."""
        return tuple(s for s in self._submissions.values() if s.status in statuses)

    @property
    def held(self) -> tuple[Submission, ...]:
        return self.with_status(ReviewStatus.HELD)

    @property
    def ready_to_forward(self) -> tuple[Submission, ...]:
        return self.with_status(ReviewStatus.RELEASED, ReviewStatus.APPROVED)

    def _move(
        self, message_hash: bytes, action: ReviewAction, *, now: int | None, reason: str | None
    ) -> Submission:
        submission = self.submission(message_hash)
        status = REVIEW_MOVES.get((submission.status, action))
        if status is None:
            raise UsageError(f"a {submission.status} diffusion cannot be given {action}")
        if action is ReviewAction.FORWARD:
            moved = replace(submission, status=status)
        else:
            moved = replace(submission, status=status, decided_at=now, reason=reason)
        self._submissions[message_hash] = moved
        return moved
