"""Freshness and the replay guard (FRESH-1 .. FRESH-3, REPLAY-1 .. REPLAY-3, OPEN-3, OPEN-7)."""

from __future__ import annotations

import inspect

import pytest

from fixtures import NOW, PRINCIPALS, seeded_rng, world
from ncb_relay import (
    BadSignature,
    DecryptionFailed,
    FreshnessPolicy,
    FutureDated,
    LimitExceeded,
    Replay,
    ReplayGuard,
    SealedEnvelope,
    StaleMessage,
    StaticDirectory,
    UnknownKey,
    UsageError,
    VerifiedEnvelope,
    open_envelope,
    seal,
    verify_routing,
)

ALICE, BOB, CAROL, DAVE, _ = PRINCIPALS
IDS, DIRECTORY = world()
TTL = 3600
EXPIRES = NOW + TTL


def sealed(seq: int = 1, *, sender: str = ALICE, now: int = NOW, ttl: int = TTL) -> SealedEnvelope:
    return seal(
        b"message %d" % seq,
        sender=IDS[sender],
        recipients=[IDS[BOB].public, IDS[CAROL].public],
        now=now,
        seq=seq,
        rng=seeded_rng(b"freshness %d %d" % (seq, now)),
        ttl=ttl,
    )


def open_at(
    data: bytes,
    now: int,
    guard: ReplayGuard | None = None,
    policy: FreshnessPolicy | None = None,
    who: str = BOB,
) -> VerifiedEnvelope:
    if guard is None:
        guard = ReplayGuard(policy=policy or FreshnessPolicy())
    elif policy is not None:
        assert guard.policy == policy
    return open_envelope(data, recipient=IDS[who], directory=DIRECTORY, now=now, replay=guard)


# --- FRESH-1 .. FRESH-3 --------------------------------------------------------------------


@pytest.mark.req("FRESH-1", "FRESH-2", "FRESH-3")
@pytest.mark.parametrize("skew", [0, 1, 300, 900])
def test_policy_boundaries(skew: int) -> None:
    policy = FreshnessPolicy(max_skew=skew)
    created, expires = 1000, 2000
    # FRESH-1: created = now + skew is accepted, one second later is not
    policy.check(created, expires, now=created - skew)
    with pytest.raises(FutureDated):
        policy.check(created, expires, now=created - skew - 1)
    # FRESH-2: now = expires + skew - 1 is accepted, expires + skew is not
    policy.check(created, expires, now=expires + skew - 1)
    with pytest.raises(StaleMessage):
        policy.check(created, expires, now=expires + skew)
    with pytest.raises(StaleMessage):
        policy.check(created, expires, now=expires + skew + 10**6)
    assert policy.forget_after(expires) == expires + skew


@pytest.mark.req("FRESH-3")
def test_max_skew_bound() -> None:
    assert FreshnessPolicy().max_skew == 300
    assert FreshnessPolicy(900).max_skew == 900
    assert FreshnessPolicy(0).max_skew == 0
    for bad in (901, 3600, -1):
        with pytest.raises(UsageError):
            FreshnessPolicy(bad)


@pytest.mark.req("FRESH-1", "FRESH-2", "OPEN-3")
@pytest.mark.parametrize("skew", [0, 300, 900])
def test_envelope_boundaries(skew: int) -> None:
    policy = FreshnessPolicy(max_skew=skew)
    data = sealed().data
    assert open_at(data, NOW - skew, policy=policy).created == NOW
    with pytest.raises(FutureDated):
        open_at(data, NOW - skew - 1, policy=policy)
    assert open_at(data, EXPIRES + skew - 1, policy=policy).expires == EXPIRES
    with pytest.raises(StaleMessage):
        open_at(data, EXPIRES + skew, policy=policy)
    # the relay applies the same window
    verify_routing(data, directory=DIRECTORY, now=NOW - skew, policy=policy)
    with pytest.raises(FutureDated):
        verify_routing(data, directory=DIRECTORY, now=NOW - skew - 1, policy=policy)
    with pytest.raises(StaleMessage):
        verify_routing(data, directory=DIRECTORY, now=EXPIRES + skew, policy=policy)


@pytest.mark.req("OPEN-3", "OPEN-4", "OPEN-6")
def test_freshness_is_checked_before_keys_and_signatures() -> None:
    data = bytearray(sealed().data)
    data[-1] ^= 1  # the outer signature no longer verifies
    broken = bytes(data)
    with pytest.raises(BadSignature):
        open_at(broken, NOW)
    with pytest.raises(StaleMessage):
        open_at(broken, EXPIRES + 300)
    with pytest.raises(FutureDated):
        open_at(broken, NOW - 301)
    no_alice = StaticDirectory(IDS[p].public for p in PRINCIPALS if p != ALICE)
    with pytest.raises(UnknownKey):
        verify_routing(sealed().data, directory=no_alice, now=NOW)
    with pytest.raises(StaleMessage):
        verify_routing(sealed().data, directory=no_alice, now=EXPIRES + 300)


# --- the replay guard on its own ------------------------------------------------------------

MID = [bytes([i]) * 32 for i in range(8)]


@pytest.mark.req("REPLAY-1")
def test_guard_refuses_a_seen_message_id() -> None:
    guard = ReplayGuard()
    guard.check(ALICE, MID[0], 1)
    guard.record(ALICE, MID[0], 1, EXPIRES, NOW)
    assert len(guard) == 1
    with pytest.raises(Replay):
        guard.check(ALICE, MID[0], 1)
    with pytest.raises(Replay):
        guard.check(ALICE, MID[0], 2)  # the same id under another seq
    with pytest.raises(Replay):
        guard.record(ALICE, MID[0], 1, EXPIRES, NOW)
    guard.check(BOB, MID[0], 1)  # another sender's namespace
    assert len(guard) == 1


@pytest.mark.req("REPLAY-2")
def test_guard_refuses_a_reused_seq() -> None:
    guard = ReplayGuard()
    guard.record(ALICE, MID[0], 7, EXPIRES, NOW)
    with pytest.raises(Replay):
        guard.check(ALICE, MID[1], 7)
    with pytest.raises(Replay):
        guard.record(ALICE, MID[1], 7, EXPIRES, NOW)
    guard.check(ALICE, MID[1], 8)
    guard.check(BOB, MID[1], 7)
    guard.record(BOB, MID[1], 7, EXPIRES, NOW)
    assert len(guard) == 2


@pytest.mark.req("REPLAY-1", "REPLAY-3")
@pytest.mark.parametrize("skew", [0, 300, 900])
def test_guard_remembers_until_expires_plus_skew(skew: int) -> None:
    guard = ReplayGuard(policy=FreshnessPolicy(skew))
    guard.record(ALICE, MID[0], 1, EXPIRES, NOW)
    guard.prune(EXPIRES + skew - 1)
    assert len(guard) == 1
    with pytest.raises(Replay):
        guard.check(ALICE, MID[0], 1)
    with pytest.raises(Replay):
        guard.check(ALICE, MID[1], 1)
    guard.prune(EXPIRES + skew)
    assert len(guard) == 0
    guard.check(ALICE, MID[0], 1)  # forgotten: the freshness check refuses it now
    guard.check(ALICE, MID[1], 1)
    with pytest.raises(StaleMessage):
        FreshnessPolicy(skew).check(NOW, EXPIRES, EXPIRES + skew)


@pytest.mark.req("REPLAY-1", "REPLAY-3")
def test_recording_prunes_only_closed_windows() -> None:
    guard = ReplayGuard()
    guard.record(ALICE, MID[0], 1, NOW + 10, NOW)
    guard.record(ALICE, MID[1], 2, NOW + 1000, NOW)
    guard.record(ALICE, MID[2], 3, NOW + 10, NOW)
    guard.record(BOB, MID[3], 1, NOW + 310, NOW + 309)  # prunes nothing yet
    assert len(guard) == 4
    guard.record(BOB, MID[4], 2, NOW + 2000, NOW + 310)  # the two windows ending at 310 close
    assert len(guard) == 3
    guard.check(ALICE, MID[0], 1)
    guard.check(ALICE, MID[2], 3)
    for sender, message_id, seq in ((ALICE, MID[1], 2), (BOB, MID[3], 1), (BOB, MID[4], 2)):
        with pytest.raises(Replay):
            guard.check(sender, message_id, seq)


@pytest.mark.req("REPLAY-3")
def test_a_full_guard_refuses_new_messages_and_forgets_nothing() -> None:
    guard = ReplayGuard(max_entries=2)
    guard.record(ALICE, MID[0], 1, EXPIRES, NOW)
    guard.record(ALICE, MID[1], 2, EXPIRES + 100, NOW)
    with pytest.raises(LimitExceeded):
        guard.record(ALICE, MID[2], 3, EXPIRES, NOW + 1)
    assert len(guard) == 2
    for message_id, seq in ((MID[0], 1), (MID[1], 2)):
        with pytest.raises(Replay):
            guard.check(ALICE, message_id, seq)
    guard.check(ALICE, MID[2], 3)  # the refused message was not recorded
    # once a window closes there is room again
    guard.record(ALICE, MID[2], 3, EXPIRES + 500, EXPIRES + 300)
    assert len(guard) == 2
    with pytest.raises(Replay):
        guard.check(ALICE, MID[1], 2)
    with pytest.raises(LimitExceeded):
        guard.record(ALICE, MID[3], 4, EXPIRES + 500, EXPIRES + 300)


@pytest.mark.req("REPLAY-3")
@pytest.mark.parametrize("max_entries", [0, -1])
def test_guard_size_must_be_positive(max_entries: int) -> None:
    with pytest.raises(UsageError):
        ReplayGuard(max_entries=max_entries)


@pytest.mark.req("REPLAY-3")
def test_a_late_message_inside_its_window_is_not_a_replay() -> None:
    guard = ReplayGuard()
    # many other messages, some already forgotten
    for i in range(50):
        guard.record(CAROL, bytes([i]) * 32, i, NOW + 10 * i, NOW)
    late_now = EXPIRES + 299
    guard.check(ALICE, MID[0], 1)
    guard.record(ALICE, MID[0], 1, EXPIRES, late_now)
    with pytest.raises(Replay):
        guard.check(ALICE, MID[0], 1)


# --- through open_envelope --------------------------------------------------------------------


@pytest.mark.req("REPLAY-1", "OPEN-7", "OPEN-12")
def test_open_refuses_a_replay_until_the_window_closes() -> None:
    guard = ReplayGuard()
    data = sealed().data
    assert open_at(data, NOW, guard).body == b"message 1"
    with pytest.raises(Replay):
        open_at(data, NOW, guard)
    # later traffic prunes the guard, but not this entry
    open_at(sealed(2, now=EXPIRES + 299 - TTL).data, EXPIRES + 299, guard)
    with pytest.raises(Replay):
        open_at(data, EXPIRES + 299, guard)
    with pytest.raises(StaleMessage):
        open_at(data, EXPIRES + 300, guard)


@pytest.mark.req("REPLAY-2", "OPEN-7")
def test_open_refuses_a_reused_seq() -> None:
    guard = ReplayGuard()
    open_at(sealed(5).data, NOW, guard)
    other = seal(
        b"another body, same seq",
        sender=IDS[ALICE],
        recipients=[IDS[BOB].public],
        now=NOW,
        seq=5,
        rng=seeded_rng(b"other"),
    )
    with pytest.raises(Replay):
        open_at(other.data, NOW, guard)
    open_at(sealed(5, sender=DAVE).data, NOW, guard)  # another sender's seq 5 is fine


@pytest.mark.req("REPLAY-3", "OPEN-12")
def test_open_with_a_full_guard() -> None:
    guard = ReplayGuard(max_entries=1)
    open_at(sealed(1).data, NOW, guard)
    with pytest.raises(LimitExceeded):
        open_at(sealed(2).data, NOW, guard)
    assert len(guard) == 1
    with pytest.raises(Replay):
        open_at(sealed(1).data, NOW, guard)
    # after the first window closes, the second message (still fresh) gets in
    later = sealed(2, now=NOW + TTL)
    assert open_at(later.data, EXPIRES + 300, guard).seq == 2


@pytest.mark.req("REPLAY-3", "FRESH-2")
def test_open_accepts_a_late_message_inside_its_window() -> None:
    guard = ReplayGuard()
    for seq in range(1, 20):
        open_at(sealed(seq, sender=CAROL, now=NOW + 10 * seq, ttl=60).data, NOW + 10 * seq, guard)
    late = sealed(1)
    assert open_at(late.data, EXPIRES + 299, guard).body == b"message 1"


@pytest.mark.req("OPEN-7", "OPEN-8", "OPEN-11")
def test_replay_is_checked_before_decryption() -> None:
    guard = ReplayGuard()
    data = sealed().data
    open_at(data, NOW, guard, who=BOB)
    with pytest.raises(Replay):  # Dave is no recipient, but the replay is found first
        open_at(data, NOW, guard, who=DAVE)
    with pytest.raises(DecryptionFailed):
        open_at(data, NOW, ReplayGuard(), who=DAVE)


@pytest.mark.req("OPEN-12")
def test_only_fully_verified_messages_are_recorded() -> None:
    guard = ReplayGuard()
    data = sealed().data
    with pytest.raises(DecryptionFailed):
        open_at(data, NOW, guard, who=DAVE)
    assert len(guard) == 0
    with pytest.raises(FutureDated):
        open_at(data, NOW - 301, guard)
    assert len(guard) == 0
    with pytest.raises(BadSignature):
        open_at(data[:-1] + bytes([data[-1] ^ 1]), NOW, guard)
    assert len(guard) == 0
    assert open_at(data, NOW, guard).body == b"message 1"
    assert len(guard) == 1


@pytest.mark.req("REPLAY-1", "FRESH-3")
def test_the_guard_remembers_as_long_as_its_window_accepts() -> None:
    """open_envelope takes the window from the guard, so the two cannot disagree.

    When the window came from a separate ``policy`` argument, a guard that
    forgot at expires + 300 s served a policy accepting until + 900 s, and the
    message below was accepted twice: once at ``NOW`` and again at
    ``EXPIRES + 600``, after later traffic had pruned it.
    """
    assert "policy" not in inspect.signature(open_envelope).parameters
    wide_guard = ReplayGuard(policy=FreshnessPolicy(900))
    data = sealed().data
    open_at(data, NOW, wide_guard)
    open_at(sealed(2, now=EXPIRES + 600 - TTL).data, EXPIRES + 600, wide_guard)
    with pytest.raises(Replay):
        open_at(data, EXPIRES + 600, wide_guard)
    with pytest.raises(StaleMessage):
        open_at(data, EXPIRES + 900, wide_guard)


def test_a_message_the_receiver_could_not_take_is_forgotten_and_taken_later() -> None:
    """A bureau that defers a message it opened (its own state, not the message) forgets it."""
    guard = ReplayGuard()
    guard.record("KR.ncb-seoul", b"\x01" * 32, 7, expires=NOW + 3600, now=NOW)
    guard.forget("KR.ncb-seoul", b"\x01" * 32, 7)
    assert len(guard) == 0
    guard.record("KR.ncb-seoul", b"\x01" * 32, 7, expires=NOW + 3600, now=NOW + 60)
    with pytest.raises(Replay):
        guard.check("KR.ncb-seoul", b"\x01" * 32, 7)
    guard.forget("KR.ncb-seoul", b"\x02" * 32, 7)  # another message under that seq: kept
    with pytest.raises(Replay):
        guard.check("KR.ncb-seoul", b"\x03" * 32, 7)
