"""The coordinator's review gate operation (spec/messages.md, "Review gate")."""

from __future__ import annotations

from ... import NcbRelayError
from ...messages import ReviewGate, seal_forward
from .base import OperationsBase
from .values import JSON, BadRequest, hex_or_none, private_identity, recorded


class ReviewGateOperations(OperationsBase):
    """review-gate: a coordinator submits, approves, rejects and forwards diffusions."""

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
                rng=recorded(hex_or_none(step.get("random"))),
                coordinator=me["id"],
            )
            moved = gate.mark_forwarded(submission.message_hash)  # else never sent
            return {"status": moved.status.value, "envelope": forward.sealed.data.hex()}
        raise BadRequest("a step is submit, approve, reject or forward")
