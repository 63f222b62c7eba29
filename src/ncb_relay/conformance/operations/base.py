"""What every group of operations reads from a request.

The directory, the freshness policy and replay state, the codec and envelope
limits, and envelopes opened (messages read) as one of the request's principals.
"""

from __future__ import annotations

from ... import (
    CodecLimits,
    EnvelopeLimits,
    FreshnessPolicy,
    NcbRelayError,
    PublicIdentity,
    ReplayGuard,
    StaticDirectory,
    open_envelope,
)
from ...envelope import VerifiedEnvelope
from ...messages import read_message
from ...messages.message import Message
from .values import JSON, private_identity, public_identity


class OperationsBase:
    """The request readings and error codes shared by every group of operations."""

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

    def read_as(self, request: JSON, who: str, data: str, now: int) -> Message:
        """``data`` opened as ``request[who]`` at ``now`` with a fresh replay state, then read."""
        envelope = self.open_one(
            {**request, "recipient": request[who], "now": now},
            bytes.fromhex(data),
            self.replay_guard(request),
            self.directory(request),
        )
        return read_message(envelope, coordinator=request["coordinator"])
