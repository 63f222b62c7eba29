"""Lifecycle operations and the encryption key schedule (ROT-1 .. ROT-8)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from directory_world import (
    CHAIN,
    DAY,
    SCHEDULE,
    T0,
    entry_for,
    genesis,
    loaded,
    member,
    rotated,
    signed,
)
from ncb_relay import (
    BadSignature,
    BrokenChain,
    DirectoryDocument,
    EncryptionKeySchedule,
    UnknownKey,
    UsageError,
    check_successor,
    endorse_signing_key,
    verify_directory,
    verify_history,
)
from ncb_relay.entries import KEY_RETENTION
from ncb_relay.header import MAX_TTL
from ncb_relay.lifecycle import (
    DEFAULT_KEY_RETENTION,
    add_encryption_key,
    add_principal,
    new_directory,
    next_version,
    prune_encryption_keys,
    reenrol,
    reinstate,
    revoke_key,
    revoke_principal,
    rotate_signing_key,
    suspend,
)

DOCUMENT, MEMBERS = genesis()
SEOUL = MEMBERS["KR.ncb-seoul"]


def draft(issued: int = T0 + DAY) -> DirectoryDocument:
    return next_version(DOCUMENT, issued=issued)


def follows(new: DirectoryDocument, old: DirectoryDocument = DOCUMENT) -> DirectoryDocument:
    check_successor(old, old.hash, new)
    return new


@pytest.mark.req("ROT-1")
def test_adding_a_principal() -> None:
    newcomer = member("JP.ncb-tokyo")
    entry = entry_for(newcomer, T0 + DAY)
    added = follows(add_principal(draft(), entry))
    assert added.entry("JP.ncb-tokyo") == entry
    assert added.serial == 2
    assert added.previous == DOCUMENT.hash
    assert entry.signing_keys[0].endorsement is None
    with pytest.raises(UsageError, match="already"):
        add_principal(added, entry)
    with pytest.raises(UsageError, match="before the version"):
        add_principal(draft(T0 + 2 * DAY), entry)
    first = new_directory(anchor=DOCUMENT.anchor, issued=T0)
    assert first.serial == 1
    assert first.entries == ()
    assert first.expires == T0 + 14 * DAY


@pytest.mark.req("ROT-2")
def test_rotating_a_signing_key_keeps_an_overlap() -> None:
    rotated_doc, seoul2 = rotated(DOCUMENT, SEOUL, 1, issued=T0 + DAY)
    follows(rotated_doc)
    keys = rotated_doc.entry("KR.ncb-seoul").signing_keys
    assert keys[0].not_after == T0 + DAY + 7 * DAY
    assert keys[1].not_before == T0 + DAY
    assert keys[1].not_after is None
    # a second rotation closes only the open key and keeps earlier windows
    third = member("KR.ncb-seoul", 2).signer.public_key
    again = next_version(rotated_doc, issued=T0 + 30 * DAY)
    endorsement = endorse_signing_key(seoul2.signer, "KR.ncb-seoul", third, T0 + 30 * DAY)
    again = rotate_signing_key(again, "KR.ncb-seoul", key=third, endorsement=endorsement, overlap=1)
    follows(again, rotated_doc)
    assert [k.not_after for k in again.entry("KR.ncb-seoul").signing_keys] == [
        T0 + 8 * DAY,
        T0 + 30 * DAY + 1,
        None,
    ]
    # the coordinator cannot rotate without the old key's endorsement
    coordinator = MEMBERS["XP.interpol-gs"].signer
    forged = endorse_signing_key(coordinator, "KR.ncb-seoul", third, T0 + DAY)
    with pytest.raises(BadSignature):
        rotate_signing_key(draft(), "KR.ncb-seoul", key=third, endorsement=forged)
    for overlap in (-1, 0):  # with no overlap the old key is not valid when the new one starts
        with pytest.raises(UsageError, match="overlap"):
            rotate_signing_key(
                draft(), "KR.ncb-seoul", key=third, endorsement=forged, overlap=overlap
            )
    with pytest.raises(UsageError, match="not in the directory"):
        rotate_signing_key(draft(), "QZ.nobody", key=third, endorsement=forged)


@pytest.mark.req("ROT-3", "ROT-6")
def test_re_enrolment_after_revocation() -> None:
    lost = revoke_key(draft(), "KR.ncb-seoul", SEOUL.signer.public_key.key_id, at=T0 + 10)
    with pytest.raises(UsageError, match="already revoked"):
        revoke_key(lost, "KR.ncb-seoul", SEOUL.signer.public_key.key_id)
    fresh = member("KR.ncb-seoul", 9).signer.public_key
    with pytest.raises(UsageError, match="only for a principal"):
        reenrol(draft(), "KR.ncb-seoul", key=fresh)
    again = follows(reenrol(lost, "KR.ncb-seoul", key=fresh))
    keys = again.entry("KR.ncb-seoul").signing_keys
    assert keys[0].revoked == T0 + 10
    assert keys[1].endorsement is None
    assert loaded(again).signing_key("KR.ncb-seoul", fresh.key_id, T0 + DAY) == fresh


@pytest.mark.req("ROT-4")
def test_adding_an_encryption_key() -> None:
    key = member("KR.ncb-seoul", 1).encryption[0].public_key
    record = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, T0 + DAY)
    assert record.not_after - record.not_before == 8 * DAY
    added = follows(add_encryption_key(draft(), "KR.ncb-seoul", record))
    assert added.entry("KR.ncb-seoul").encryption_keys[-1] == record
    coordinator = MEMBERS["XP.interpol-gs"].signer
    with pytest.raises(BadSignature):
        add_encryption_key(
            draft(), "KR.ncb-seoul", SCHEDULE.record(coordinator, "KR.ncb-seoul", key, T0 + DAY)
        )
    with pytest.raises(UsageError, match="before the version"):
        add_encryption_key(draft(T0 + 2 * DAY), "KR.ncb-seoul", record)


@pytest.mark.req("DIR-15", "ROT-2", "ROT-4", "ROT-6")
def test_a_revoked_or_expired_key_endorses_nothing_new() -> None:
    revoked = revoke_key(draft(), "KR.ncb-seoul", SEOUL.signer.public_key.key_id)
    later = next_version(revoked, issued=T0 + 2 * DAY)
    key = member("KR.ncb-seoul", 1).encryption[0].public_key
    record = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, T0 + 2 * DAY)
    with pytest.raises(BadSignature, match="revoked"):
        add_encryption_key(later, "KR.ncb-seoul", record)
    new = member("KR.ncb-seoul", 1).signer.public_key
    endorsement = endorse_signing_key(SEOUL.signer, "KR.ncb-seoul", new, T0 + 2 * DAY)
    with pytest.raises(BadSignature, match="revoked"):
        rotate_signing_key(later, "KR.ncb-seoul", key=new, endorsement=endorsement)
    # re-enrolment is the way back (ROT-3), and the new key endorses the next ones
    back = follows(reenrol(later, "KR.ncb-seoul", key=new), revoked)
    fresh = member("KR.ncb-seoul", 1).signer
    follows(
        add_encryption_key(
            next_version(back, issued=T0 + 3 * DAY),
            "KR.ncb-seoul",
            SCHEDULE.record(fresh, "KR.ncb-seoul", key, T0 + 3 * DAY),
        ),
        back,
    )
    # a key whose window has closed endorses nothing that starts after it
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    closed = draft().with_entry(
        replace(seoul, signing_keys=(replace(seoul.signing_keys[0], not_after=T0 + 2 * DAY),))
    )
    after = next_version(closed, issued=T0 + 2 * DAY)
    with pytest.raises(BadSignature, match="not valid"):
        add_encryption_key(after, "KR.ncb-seoul", record)
    with pytest.raises(BadSignature, match="not valid"):
        rotate_signing_key(after, "KR.ncb-seoul", key=new, endorsement=endorsement)
    # a new principal's keys are checked alike
    joiner = member("QZ.joiner")
    entry = entry_for(joiner, T0 + DAY)
    late = replace(
        entry,
        signing_keys=(replace(entry.signing_keys[0], revoked=T0 + DAY),),
    )
    with pytest.raises(BadSignature, match="revoked"):
        add_principal(draft(), late)


@pytest.mark.req("ROT-5")
def test_suspend_reinstate_revoke() -> None:
    suspended = follows(suspend(draft(), "MA.ncb-rabat", since=T0 + 100))
    assert suspended.entry("MA.ncb-rabat").current_state == "suspended"
    with pytest.raises(UsageError, match="already suspended"):
        suspend(suspended, "MA.ncb-rabat")
    with pytest.raises(UsageError, match="latest when it is published"):
        suspend(draft(), "MA.ncb-rabat", since=T0 + 2 * DAY)
    back = reinstate(next_version(suspended, issued=T0 + 3 * DAY), "MA.ncb-rabat")
    follows(back, suspended)
    assert [s.since for s in back.entry("MA.ncb-rabat").status] == [T0, T0 + 100, T0 + 3 * DAY]
    gone = follows(revoke_principal(next_version(back, issued=T0 + 4 * DAY), "MA.ncb-rabat"), back)
    with pytest.raises(UsageError):
        reinstate(next_version(gone, issued=T0 + 5 * DAY), "MA.ncb-rabat")


@pytest.mark.req("ROT-6")
def test_revoking_one_key() -> None:
    enc_id = SEOUL.encryption[0].public_key.key_id
    revoked = follows(revoke_key(draft(), "KR.ncb-seoul", enc_id))
    assert revoked.entry("KR.ncb-seoul").encryption_keys[0].revoked == T0 + DAY
    with pytest.raises(UsageError, match="no key"):
        revoke_key(draft(), "KR.ncb-seoul", bytes(16))
    with pytest.raises(UsageError, match="latest when it is published"):
        revoke_key(draft(), "KR.ncb-seoul", enc_id, at=T0 + 2 * DAY)
    # a revocation dated before the key started counts from the key's start
    early = revoke_key(draft(), "KR.ncb-seoul", enc_id, at=T0 - DAY)
    assert early.entry("KR.ncb-seoul").encryption_keys[0].revoked == T0


@pytest.mark.req("ROT-7")
def test_next_version_can_move_to_a_new_anchor() -> None:
    moved = next_version(DOCUMENT, issued=T0 + DAY, anchor=bytes(range(32)))
    assert moved.anchor == bytes(range(32))
    assert moved.previous == DOCUMENT.hash
    with pytest.raises(UsageError):
        next_version(DOCUMENT, issued=T0 - 1)


@pytest.mark.req("ROT-8")
def test_the_schedule_says_when_to_rotate_and_what_to_delete() -> None:
    schedule = EncryptionKeySchedule(period=7 * DAY, overlap=DAY)
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    record = seoul.encryption_keys[0]
    assert schedule.next_not_before(seoul) == T0 + 7 * DAY
    assert not schedule.rotation_due(seoul, T0 + 7 * DAY - 1)
    assert schedule.rotation_due(seoul, T0 + 7 * DAY)
    end = record.not_after + MAX_TTL + 900
    assert DEFAULT_KEY_RETENTION == MAX_TTL + 900
    assert schedule.retention_end(record) == end
    assert schedule.deletable(seoul, end - 1) == ()
    assert schedule.deletable(seoul, end) == (record.key_id,)
    revoked = replace(record, revoked=T0 + 5)
    assert schedule.retention_end(revoked) == T0 + 5
    empty = replace(seoul, encryption_keys=())
    assert schedule.next_not_before(empty) == T0


@pytest.mark.req("ROT-8")
@pytest.mark.parametrize(
    ("period", "overlap"), [(DAY - 1, 0), (7 * DAY, 8 * DAY), (7 * DAY, -1), (366 * DAY, DAY)]
)
def test_schedule_bounds(period: int, overlap: int) -> None:
    with pytest.raises(UsageError):
        EncryptionKeySchedule(period=period, overlap=overlap)


@pytest.mark.req("ROT-8", "DIR-13")
def test_a_schedule_keeps_a_key_usable_at_every_moment() -> None:
    """Rotating when due leaves no gap: some key is always there to seal to."""
    document, members = DOCUMENT, MEMBERS
    seoul = members["KR.ncb-seoul"]
    history = [signed(document)]
    now = T0
    for generation in range(1, 6):
        now = SCHEDULE.next_not_before(document.entry("KR.ncb-seoul"))
        key = member("KR.ncb-seoul", generation).encryption[0].public_key
        record = SCHEDULE.record(seoul.signer, "KR.ncb-seoul", key, now)
        document = add_encryption_key(next_version(document, issued=now), "KR.ncb-seoul", record)
        history.append(signed(document))
    assert len(verify_history(history, anchors=CHAIN)) == 6
    verified = verify_directory(history[-1], anchors=CHAIN, now=now)
    for at in range(T0, now + 7 * DAY, DAY // 2):
        assert verified.encryption_key("KR.ncb-seoul", at)
    with pytest.raises(UnknownKey):
        verified.encryption_key("KR.ncb-seoul", now + 8 * DAY)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["rotate", "encrypt", "suspend", "reinstate", "revoke", "renew"]),
        st.sampled_from(["KR.ncb-seoul", "MA.ncb-rabat", "FR.ncb-paris"]),
    ),
    max_size=8,
)


@pytest.mark.req("DIR-7", "ROT-2", "ROT-4", "ROT-5")
@settings(max_examples=25)
@given(operations=OPERATIONS)
def test_every_sequence_of_operations_is_a_valid_history(
    operations: list[tuple[str, str]],
) -> None:
    document, members = DOCUMENT, dict(MEMBERS)
    history = [signed(document)]
    now = T0
    for step, (operation, principal) in enumerate(operations, start=1):
        now += DAY
        m = members[principal]
        try:
            if operation == "rotate":
                document, members[principal] = rotated(document, m, step, issued=now)
            else:
                draft = next_version(document, issued=now)
                if operation == "encrypt":
                    key = member(principal, 100 + step).encryption[0].public_key
                    record = SCHEDULE.record(m.signer, principal, key, now)
                    draft = add_encryption_key(draft, principal, record)
                elif operation == "suspend":
                    draft = suspend(draft, principal)
                elif operation == "reinstate":
                    draft = reinstate(draft, principal)
                elif operation == "revoke":
                    draft = revoke_key(draft, principal, m.signer.public_key.key_id, at=now - 1)
                document = draft
        except UsageError:
            continue  # not applicable now (already suspended, already revoked, ...)
        except BadSignature:
            continue  # rotating away from a revoked key needs re-enrolment
        history.append(signed(document))
    verified = verify_history(history, anchors=CHAIN)
    assert [v.serial for v in verified] == list(range(1, len(history) + 1))


@pytest.mark.req("DIR-7", "ROT-8")
def test_encryption_keys_are_dropped_only_after_their_retention() -> None:
    record = DOCUMENT.entry("KR.ncb-seoul").encryption_keys[0]
    free = record.not_after + KEY_RETENTION
    # one second early: nothing may be dropped, and dropping by hand breaks the chain
    early = next_version(DOCUMENT, issued=free - 1)
    assert prune_encryption_keys(early) == early
    forced = early.with_entry(replace(early.entry("KR.ncb-seoul"), encryption_keys=()))
    with pytest.raises(BrokenChain, match="dropped"):
        check_successor(DOCUMENT, DOCUMENT.hash, forced)
    # at the end of the retention every principal's first key may go
    pruned = follows(prune_encryption_keys(next_version(DOCUMENT, issued=free)))
    assert all(not e.encryption_keys for e in pruned.entries)
    assert all(e.signing_keys == DOCUMENT.entry(e.principal).signing_keys for e in pruned.entries)
    # signing keys are never dropped, however old
    seoul = pruned.entry("KR.ncb-seoul")
    other = replace(seoul.signing_keys[0], key=member("QZ.other").signer.public_key)
    with pytest.raises(BrokenChain, match="signing key"):
        check_successor(
            DOCUMENT, DOCUMENT.hash, pruned.with_entry(replace(seoul, signing_keys=(other,)))
        )


@pytest.mark.req("DIR-7")
def test_keys_are_matched_by_id_across_versions() -> None:
    key = member("KR.ncb-seoul", 3).encryption[0].public_key
    record = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, T0 + 10 * DAY)  # published ahead
    two = add_encryption_key(draft(), "KR.ncb-seoul", record)
    first, second = two.entry("KR.ncb-seoul").encryption_keys
    free = first.not_after + KEY_RETENTION
    assert prune_encryption_keys(next_version(two, issued=free)).entry(
        "KR.ncb-seoul"
    ).encryption_keys == (second,)
    # a key added later may start before one published ahead of it
    between_key = member("KR.ncb-seoul", 4).encryption[0].public_key
    between = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", between_key, T0 + 5 * DAY)
    three = add_encryption_key(next_version(two, issued=T0 + 5 * DAY), "KR.ncb-seoul", between)
    assert three.entry("KR.ncb-seoul").encryption_keys == (first, between, second)
    check_successor(two, two.hash, three)
    # but a changed endorsement of a kept key is refused
    entry = three.entry("KR.ncb-seoul")
    again = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, T0 + 10 * DAY)
    assert again == second  # Ed25519 is deterministic: the same endorsement
    changed = replace(second, not_before=second.not_before + 1)
    with pytest.raises(BadSignature):
        replace(entry, encryption_keys=(first, between, changed))
