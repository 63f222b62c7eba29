"""The relay application's settings: every limit the HTTP interface enforces (API-21, API-22).

These are plain validated values; the operator's configuration file (the
server runtime's concern) maps onto them.  Defaults are the spec's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UsageError
from ..freshness import FreshnessPolicy
from ..header import MAX_TTL, EnvelopeLimits
from ..request_auth import DEFAULT_REQUEST_SKEW, MAX_REQUEST_SKEW
from .storage import MAX_FETCH, Quota

__all__ = ["AppSettings"]


def _check(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise UsageError(f"{name} must be an int between {low} and {high}")


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Limits and timings of one relay application; see spec/relay-api.md, "Limits"."""

    envelope_limits: EnvelopeLimits = field(default_factory=EnvelopeLimits)
    freshness: FreshnessPolicy = field(default_factory=FreshnessPolicy)
    request_skew: int = DEFAULT_REQUEST_SKEW
    max_nonces: int = 1_000_000
    max_wait: int = 30  # seconds a long-poll may wait at most
    lease: int = 60  # seconds a fetched message stays handed out before it comes back
    max_batch: int = 100  # messages in one fetch
    max_ack_ids: int = 1000  # message ids in one acknowledgement
    max_ack_body: int = 128 * 1024
    max_long_polls: int = 4  # concurrent waiting fetches per bureau
    rate_per_second: int = 50  # authenticated requests per bureau, sustained
    rate_burst: int = 200  # and in a burst
    log_read_rate: int = 200  # public log reads per second, all clients together (API-21)
    log_read_burst: int = 2000  # and in a burst (an audit pages through the log)
    sender_max_messages: int = 10_000  # messages one bureau holds awaiting delivery (API-22)
    sender_max_bytes: int = 1024**3  # and their envelope bytes
    mailbox_max_messages: int = 100_000  # copies waiting in one mailbox; 0: no cap (API-23)
    quota_retry_after: int = 60  # seconds, in the Retry-After of a quota refusal

    def __post_init__(self) -> None:
        if not isinstance(self.envelope_limits, EnvelopeLimits):
            raise UsageError("envelope_limits must be EnvelopeLimits")
        if not isinstance(self.freshness, FreshnessPolicy):
            raise UsageError("freshness must be a FreshnessPolicy")
        _check("request_skew", self.request_skew, 0, MAX_REQUEST_SKEW)
        _check("max_nonces", self.max_nonces, 1, 100_000_000)
        _check("max_wait", self.max_wait, 0, 300)
        _check("lease", self.lease, 1, MAX_TTL)
        _check("max_batch", self.max_batch, 1, MAX_FETCH)
        _check("max_ack_ids", self.max_ack_ids, 1, 100_000)
        _check("max_ack_body", self.max_ack_body, 1024, 64 * 1024 * 1024)
        _check("max_long_polls", self.max_long_polls, 1, 1000)
        _check("rate_per_second", self.rate_per_second, 1, 1_000_000)
        _check("rate_burst", self.rate_burst, 1, 10_000_000)
        _check("log_read_rate", self.log_read_rate, 1, 1_000_000)
        _check("log_read_burst", self.log_read_burst, 1, 10_000_000)
        _check("sender_max_messages", self.sender_max_messages, 1, 10**9)
        _check("sender_max_bytes", self.sender_max_bytes, self.max_envelope_bytes, 2**50)
        _check("mailbox_max_messages", self.mailbox_max_messages, 0, 10**9)
        _check("quota_retry_after", self.quota_retry_after, 1, 86400)

    @property
    def quota(self) -> Quota:
        """The store quota of every submission (API-22, API-23)."""
        return Quota(
            sender_messages=self.sender_max_messages,
            sender_bytes=self.sender_max_bytes,
            mailbox_messages=self.mailbox_max_messages or None,
        )

    @property
    def max_nonces_per_bureau(self) -> int:
        """Live request nonces one bureau may hold (AUTH-17).

        What its rate limit lets through in the ``2 * request_skew + 1`` seconds
        for which a nonce is remembered.
        """
        return self.rate_burst + self.rate_per_second * (2 * self.request_skew + 1)

    @property
    def max_envelope_bytes(self) -> int:
        return self.envelope_limits.max_envelope_bytes
