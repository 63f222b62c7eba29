"""Verifying directory versions and looking keys up in them (DIR-6 .. DIR-13)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory_world import (
    ANCHOR,
    CHAIN,
    DAY,
    ROOTS,
    SCHEDULE,
    T0,
    entry_for,
    genesis,
    loaded,
    member,
    mutable,
    rotated,
    sign_value,
    sign_with,
    signed,
)
from fixtures import seeded_rng
from ncb_relay import (
    AnchorChain,
    BadSignature,
    BelowThreshold,
    BindingMismatch,
    BrokenChain,
    DirectoryArchive,
    DirectoryDocument,
    DirectoryExpired,
    DirectoryPolicy,
    EncryptionKeyRecord,
    EncryptionPublicKey,
    Fork,
    FutureDated,
    InvalidPeerKey,
    MalformedInput,
    NcbRelayError,
    ProtocolError,
    ReplayGuard,
    Rollback,
    RootKey,
    SignedDocument,
    SigningKeyRecord,
    StatusChange,
    UnknownKey,
    UsageError,
    VerifiedDirectory,
    check_successor,
    codec,
    endorse_signing_key,
    load_directory,
    open_envelope,
    primitives,
    seal,
    verify_directory,
    verify_disclosure,
    verify_history,
)
from ncb_relay.entries import KEY_RETENTION
from ncb_relay.lifecycle import (
    add_encryption_key,
    next_version,
    prune_encryption_keys,
    reenrol,
    revoke_key,
    revoke_principal,
    suspend,
)
from ncb_relay.signatures import DIRECTORY_KIND

DOCUMENT, MEMBERS = genesis()
DATA = signed(DOCUMENT)
SEOUL, RABAT, PARIS = (MEMBERS[p] for p in ("KR.ncb-seoul", "MA.ncb-rabat", "FR.ncb-paris"))
V2, SEOUL_2 = rotated(DOCUMENT, SEOUL, 1, issued=T0 + 5 * DAY)
V3 = revoke_key(
    next_version(V2, issued=T0 + 10 * DAY),
    "FR.ncb-paris",
    PARIS.signer.public_key.key_id,
    at=T0 + 8 * DAY,
)
HISTORY = [signed(DOCUMENT), signed(V2), signed(V3)]


def verify(data: bytes, now: int = T0 + 1, **kwargs: Any) -> VerifiedDirectory:
    return verify_directory(data, anchors=CHAIN, now=now, **kwargs)


# --- DIR-8: the order of checks and the threshold -------------------------------------------


@pytest.mark.req("DIR-8")
def test_a_directory_signed_by_a_threshold_verifies() -> None:
    verified = verify(DATA)
    assert verified.serial == 1
    assert verified.hash == DOCUMENT.hash
    assert verified.data == DATA
    assert verified.document == DOCUMENT
    assert verified.anchor is CHAIN.current
    assert set(verified.signer_ids) == {r.public_key.key_id for r in ROOTS[:2]}
    assert not verified.in_grace
    shown = verified.to_json()
    assert shown["signedBy"] == [k.hex() for k in verified.signer_ids]
    assert "principals=5" in repr(verified)
    with pytest.raises(UsageError):
        VerifiedDirectory()  # type: ignore[call-arg]
    with pytest.raises(UsageError):
        verify_directory(DATA, anchors=None, now=T0)  # type: ignore[arg-type]


@pytest.mark.req("DIR-8")
def test_below_threshold_is_refused_even_with_distinct_copies() -> None:
    with pytest.raises(BelowThreshold, match="1 of the required 2"):
        verify(signed(DOCUMENT, ROOTS[0]))
    with pytest.raises(BelowThreshold):
        verify(SignedDocument(DIRECTORY_KIND, DOCUMENT.encode()).encode())
    # one root key cannot count twice: the signed file refuses a repeated key id
    one = DOCUMENT.draft().sign(ROOTS[0])
    doubled: dict[str, Any] = {
        "document": one.document,
        "signatures": [[s.key_id, s.signature] for s in one.signatures] * 2,
    }

    with pytest.raises(MalformedInput, match="each key once"):
        verify(codec.encode(doubled))


@pytest.mark.req("DIR-8")
def test_signatures_by_other_keys_or_bad_signatures_are_refused() -> None:
    with pytest.raises(UnknownKey, match="not a root key"):
        verify(signed(DOCUMENT, ROOTS[0], ROOTS[1], ROOTS[4]))
    good = SignedDocument.decode(DIRECTORY_KIND, DATA)
    other = V2.draft().sign(ROOTS[2])
    mixed = SignedDocument(DIRECTORY_KIND, good.document, (*good.signatures, *other.signatures))
    with pytest.raises(BadSignature, match="fails"):
        verify(mixed.encode())


@pytest.mark.req("DIR-8")
def test_the_anchor_must_be_in_the_chain() -> None:
    value = mutable(DOCUMENT)
    value["anchor"] = bytes(32)
    with pytest.raises(UnknownKey, match="not in the chain"):
        verify(sign_value(value))


@pytest.mark.req("DIR-8")
def test_only_authenticated_documents_are_parsed_in_depth() -> None:
    value = mutable(DOCUMENT)
    entries = value["entries"]
    assert isinstance(entries, list)
    assert isinstance(entries[0], dict)
    entries[0]["name"] = ""  # malformed deep inside
    forged = SignedDocument(DIRECTORY_KIND, codec.encode(value))
    # unsigned: refused for the signatures before the entry is read
    with pytest.raises(BelowThreshold):
        verify(forged.encode())
    with pytest.raises(MalformedInput, match="display name"):
        verify(sign_value(value))


@pytest.mark.req("DIR-8", "DIR-4")
def test_a_root_key_cannot_be_a_principal_key() -> None:
    m = member("QZ.root-holder")
    m.signer = ROOTS[0]

    document = DOCUMENT.with_entry(entry_for(m, T0))
    with pytest.raises(InvalidPeerKey, match="root key"):
        verify(signed(document))


@pytest.mark.req("DIR-8")
@given(index=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))
def test_no_single_byte_change_is_accepted(index: int, mask: int) -> None:
    i = index % len(DATA)
    tampered = DATA[:i] + bytes([DATA[i] ^ mask]) + DATA[i + 1 :]
    with pytest.raises(ProtocolError):
        verify(tampered)


# --- DIR-10: freshness and grace ---------------------------------------------------------------


@pytest.mark.req("DIR-10")
def test_expiry_gives_a_grace_period_then_refuses() -> None:
    expires = DOCUMENT.expires
    assert verify(DATA, now=expires - 1).in_grace is False
    in_grace = verify(DATA, now=expires)
    assert in_grace.in_grace is True
    assert in_grace.freshness(expires) == "grace"
    assert in_grace.freshness(expires - 1) == "current"
    assert verify(DATA, now=expires + 7 * DAY - 1).in_grace
    with pytest.raises(DirectoryExpired, match="grace of 604800 s is over"):
        verify(DATA, now=expires + 7 * DAY)
    with pytest.raises(DirectoryExpired):
        in_grace.freshness(expires + 7 * DAY)
    short = DirectoryPolicy(grace=0)
    with pytest.raises(DirectoryExpired):
        verify(DATA, now=expires, policy=short)
    longest = DirectoryPolicy(grace=30 * DAY)
    assert verify(DATA, now=expires + 29 * DAY, policy=longest).in_grace


@pytest.mark.req("DIR-10")
def test_a_directory_from_the_future_is_refused() -> None:
    assert verify(DATA, now=T0 - 300)
    with pytest.raises(FutureDated):
        verify(DATA, now=T0 - 301)
    with pytest.raises(FutureDated):
        loaded(DOCUMENT).freshness(T0 - 301)


@pytest.mark.req("DIR-10")
@pytest.mark.parametrize(("grace", "skew"), [(-1, 300), (30 * DAY + 1, 300), (0, 901), (0, -1)])
def test_policy_bounds(grace: int, skew: int) -> None:
    with pytest.raises(UsageError):
        DirectoryPolicy(grace=grace, max_skew=skew)


@pytest.mark.req("DIR-10", "DIR-9")
def test_lookups_vouch_for_nothing_after_expiry_plus_grace() -> None:
    verified = loaded(DOCUMENT)
    key_id = SEOUL.signer.public_key.key_id
    last = DOCUMENT.expires + 7 * DAY
    assert verified.signing_key("KR.ncb-seoul", key_id, last)
    with pytest.raises(UnknownKey, match="vouches for nothing after"):
        verified.signing_key("KR.ncb-seoul", key_id, last + 1)
    with pytest.raises(UnknownKey, match="vouches"):
        verified.historical.signing_key("KR.ncb-seoul", key_id, last + 1)


# --- DIR-12: rollback and fork; DIR-6: the chain -----------------------------------------------


@pytest.mark.req("DIR-12")
def test_a_lower_serial_is_a_rollback() -> None:
    held = verify(HISTORY[1], now=V2.issued, previous=verify(DATA), intermediates=())
    with pytest.raises(Rollback, match="older than version 2"):
        verify(DATA, now=V2.issued, previous=held)


@pytest.mark.req("DIR-12")
def test_the_same_serial_with_other_bytes_is_a_fork() -> None:
    held = verify(DATA)
    again = verify(DATA, previous=held)
    assert again.hash == held.hash
    other = replace(DOCUMENT, expires=DOCUMENT.expires - 1)
    with pytest.raises(Fork):
        verify(signed(other), previous=held)
    # the same document signed by another pair of roots is the same version
    assert verify(signed(DOCUMENT, ROOTS[1], ROOTS[2]), previous=held).hash == held.hash


@pytest.mark.req("DIR-6")
def test_an_update_must_link_to_the_version_held() -> None:
    v1 = verify(DATA)
    v2 = verify(HISTORY[1], now=V2.issued, previous=v1)
    assert v2.serial == 2
    v3 = verify(HISTORY[2], now=V3.issued, previous=v1, intermediates=[HISTORY[1]])
    assert v3.serial == 3
    with pytest.raises(BrokenChain, match=r"2\.\.2 are missing"):
        verify(HISTORY[2], now=V3.issued, previous=v1)
    with pytest.raises(BrokenChain, match="increasing order"):
        verify(HISTORY[2], now=V3.issued, previous=v1, intermediates=[HISTORY[1], HISTORY[0]])
    with pytest.raises(UsageError):
        verify(DATA, intermediates=[DATA])
    unlinked = replace(V2, previous=bytes(32))
    with pytest.raises(BrokenChain, match="does not name version 1"):
        verify(signed(unlinked), now=V2.issued, previous=v1)


@pytest.mark.req("DIR-6", "DIR-7")
def test_an_audit_checks_every_link() -> None:
    chain = verify_history(HISTORY, anchors=CHAIN)
    assert [v.serial for v in chain] == [1, 2, 3]
    with pytest.raises(BrokenChain):
        verify_history([HISTORY[0], HISTORY[2]], anchors=CHAIN)
    with pytest.raises(UsageError):
        verify_history([], anchors=CHAIN)
    earlier = replace(next_version(V2, issued=V2.issued), issued=V2.issued - 1)
    with pytest.raises(BrokenChain, match="issued before"):
        check_successor(V2, V2.hash, earlier)


# --- DIR-7: the history is append-only -----------------------------------------------------------


def successor_with(change: Any) -> None:
    draft = next_version(DOCUMENT, issued=T0 + DAY)
    check_successor(DOCUMENT, DOCUMENT.hash, change(draft))


@pytest.mark.req("DIR-7")
def test_a_successor_cannot_drop_a_principal_or_change_its_role() -> None:
    with pytest.raises(BrokenChain, match="drops"):
        successor_with(lambda d: replace(d, entries=d.entries[1:]))
    with pytest.raises(BrokenChain, match="role"):
        successor_with(lambda d: d.with_entry(replace(d.entry("KR.ncb-seoul"), role="relay")))


@pytest.mark.req("DIR-7")
def test_a_successor_cannot_rewrite_or_reopen_keys() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    key = seoul.signing_keys[0]
    enc = seoul.encryption_keys[0]

    def with_keys(signing: Any = None, encryption: Any = None) -> Any:
        return lambda d: d.with_entry(
            replace(
                d.entry("KR.ncb-seoul"),
                signing_keys=signing or seoul.signing_keys,
                encryption_keys=encryption if encryption is not None else seoul.encryption_keys,
            )
        )

    with pytest.raises(BrokenChain, match="dropped"):
        successor_with(with_keys(encryption=()))
    with pytest.raises(BrokenChain, match="replaced or changed"):
        successor_with(with_keys(signing=(replace(key, not_before=T0 - 1),)))
    # closing a window is allowed, and so is a backdated revocation
    successor_with(with_keys(signing=(replace(key, not_after=T0 + 1),)))
    successor_with(with_keys(signing=(replace(key, revoked=T0),)))
    closed = replace(
        DOCUMENT,
        entries=tuple(
            replace(e, signing_keys=(replace(e.signing_keys[0], not_after=T0 + 10),))
            if e.principal == "KR.ncb-seoul"
            else e
            for e in DOCUMENT.entries
        ),
    )
    reopened = next_version(closed, issued=T0 + DAY)
    reopened = reopened.with_entry(
        replace(reopened.entry("KR.ncb-seoul"), signing_keys=seoul.signing_keys)
    )
    with pytest.raises(BrokenChain, match="extended"):
        check_successor(closed, closed.hash, reopened)
    revoked = replace(
        DOCUMENT,
        entries=tuple(
            replace(e, encryption_keys=(replace(e.encryption_keys[0], revoked=T0),))
            if e.principal == "KR.ncb-seoul"
            else e
            for e in DOCUMENT.entries
        ),
    )
    unrevoked = next_version(revoked, issued=T0 + DAY)
    unrevoked = unrevoked.with_entry(
        replace(unrevoked.entry("KR.ncb-seoul"), encryption_keys=(enc,))
    )
    with pytest.raises(BrokenChain, match="revocation changed"):
        check_successor(revoked, revoked.hash, unrevoked)


@pytest.mark.req("DIR-7")
def test_a_successor_cannot_backdate_a_new_key_or_a_reinstatement() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    key = member("QZ.spare").encryption[0].public_key
    early = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, T0 + 1)

    def add_early(d: Any) -> Any:
        return d.with_entry(replace(seoul, encryption_keys=(*seoul.encryption_keys, early)))

    with pytest.raises(BrokenChain, match="valid before the version"):
        successor_with(add_early)
    newcomer = genesis(("QZ.newcomer",), issued=T0 + 1)[0].entries[0]
    with pytest.raises(BrokenChain, match="valid before the version"):
        successor_with(lambda d: d.with_entry(newcomer))
    with pytest.raises(BrokenChain, match="status history"):
        successor_with(
            lambda d: d.with_entry(replace(seoul, status=(StatusChange("active", T0 - 5),)))
        )
    suspended = suspend(next_version(DOCUMENT, issued=T0 + DAY), "KR.ncb-seoul", since=T0 + 10)
    back = next_version(suspended, issued=T0 + 2 * DAY)
    entry = back.entry("KR.ncb-seoul")
    back = back.with_entry(replace(entry, status=(*entry.status, StatusChange("active", T0 + 20))))
    with pytest.raises(BrokenChain, match="reinstated"):
        check_successor(suspended, suspended.hash, back)


# --- DIR-9, DIR-11: look-ups, live and historical ---------------------------------------------


@pytest.mark.req("DIR-9")
def test_lookups_as_of_a_time_follow_the_windows() -> None:
    v3 = loaded(V3)
    old, new = SEOUL.signer.public_key, SEOUL_2.signer.public_key
    rotation = V2.issued
    overlap_end = rotation + 7 * DAY
    assert v3.signing_key("KR.ncb-seoul", old.key_id, T0) == old
    assert v3.signing_key("KR.ncb-seoul", old.key_id, overlap_end - 1) == old
    with pytest.raises(UnknownKey, match="not valid at"):
        v3.signing_key("KR.ncb-seoul", old.key_id, overlap_end)
    with pytest.raises(UnknownKey, match="not valid at"):
        v3.signing_key("KR.ncb-seoul", new.key_id, rotation - 1)
    assert v3.signing_key("KR.ncb-seoul", new.key_id, rotation) == new
    assert v3.live.current_signing_key("KR.ncb-seoul", rotation) == new
    assert v3.live.current_signing_key("KR.ncb-seoul", rotation - 1) == old
    with pytest.raises(UnknownKey):
        v3.live.current_signing_key("KR.ncb-seoul", T0 - 1)


@pytest.mark.req("DIR-9")
def test_lookups_name_the_wrong_owner_or_kind() -> None:
    v1 = loaded(DOCUMENT)
    seoul_sign = SEOUL.signer.public_key.key_id
    seoul_enc = SEOUL.encryption[0].public_key.key_id
    with pytest.raises(UnknownKey, match="not in the directory"):
        v1.signing_key("KR.ncb-seoul", bytes(16), T0)
    with pytest.raises(BindingMismatch, match=r"belongs to KR\.ncb-seoul"):
        v1.signing_key("MA.ncb-rabat", seoul_sign, T0)
    with pytest.raises(BindingMismatch, match="not a signing key"):
        v1.signing_key("KR.ncb-seoul", seoul_enc, T0)
    with pytest.raises(BindingMismatch, match="not an encryption key"):
        v1.check_encryption_key("KR.ncb-seoul", seoul_sign, T0)
    v1.check_encryption_key("KR.ncb-seoul", seoul_enc, T0)
    with pytest.raises(UnknownKey, match="not in the directory"):
        v1.encryption_key("QZ.nobody", T0)


@pytest.mark.req("DIR-9", "DIR-11", "ROT-6")
def test_a_revoked_key_is_refused_live_and_after_revocation_historically() -> None:
    v3 = loaded(V3)
    key_id = PARIS.signer.public_key.key_id
    revoked_at = T0 + 8 * DAY
    # historical: valid before the revocation time, refused from it
    assert v3.historical.signing_key("FR.ncb-paris", key_id, revoked_at - 1)
    with pytest.raises(UnknownKey, match="revoked from"):
        v3.historical.signing_key("FR.ncb-paris", key_id, revoked_at)
    # live: refused whatever the message's created says, even a backdated one
    with pytest.raises(UnknownKey, match="revoked from"):
        v3.signing_key("FR.ncb-paris", key_id, T0)
    # the version before the revocation still accepted it live
    assert loaded(V2).signing_key("FR.ncb-paris", key_id, revoked_at + 1)


@pytest.mark.req("DIR-9", "DIR-11", "ROT-5")
def test_suspension_and_revocation_of_a_principal() -> None:
    draft = next_version(V3, issued=T0 + 12 * DAY)
    draft = suspend(draft, "MA.ncb-rabat", since=T0 + 11 * DAY)
    draft = revoke_principal(draft, "FR.ncb-paris")
    verified = loaded(draft)
    rabat_sign = RABAT.signer.public_key.key_id
    rabat_enc = RABAT.encryption[0].public_key.key_id
    # live: a suspended principal's keys are refused whatever the time
    with pytest.raises(UnknownKey, match=r"MA\.ncb-rabat is suspended"):
        verified.signing_key("MA.ncb-rabat", rabat_sign, T0)
    with pytest.raises(UnknownKey, match="suspended"):
        verified.check_encryption_key("MA.ncb-rabat", rabat_enc, T0)
    with pytest.raises(UnknownKey, match="no encryption key usable"):
        verified.encryption_key("MA.ncb-rabat", T0 + 12 * DAY)
    # historical: what was signed while active verifies; not during the suspension
    assert verified.historical.signing_key("MA.ncb-rabat", rabat_sign, T0 + 11 * DAY - 1)
    with pytest.raises(UnknownKey, match="was suspended at"):
        verified.historical.signing_key("MA.ncb-rabat", rabat_sign, T0 + 11 * DAY)
    with pytest.raises(UnknownKey, match="not valid at"):
        verified.historical.signing_key("MA.ncb-rabat", rabat_sign, T0 - 1)


@pytest.mark.req("DIR-11")
@given(at=st.integers(min_value=T0 - DAY, max_value=T0 + 40 * DAY))
def test_the_live_view_never_accepts_what_the_historical_view_refuses(at: int) -> None:
    verified = LOADED_V3
    for m in (SEOUL, SEOUL_2, RABAT, PARIS):
        key_id = m.signer.public_key.key_id
        try:
            verified.signing_key(m.principal, key_id, at)
        except UnknownKey:
            continue
        assert verified.historical.signing_key(m.principal, key_id, at)


LOADED_V3 = loaded(V3)


# --- DIR-13: which key to seal to ---------------------------------------------------------------


@pytest.mark.req("DIR-13")
def test_the_newest_usable_encryption_key_is_chosen() -> None:
    seoul = SEOUL.identity
    key = member("KR.ncb-seoul", 7).encryption[0].public_key
    ahead = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, T0 + 3 * DAY)
    draft = add_encryption_key(next_version(DOCUMENT, issued=T0 + DAY), "KR.ncb-seoul", ahead)
    verified = loaded(draft)
    first = seoul.encryption_keys[0].public_key
    assert verified.encryption_key("KR.ncb-seoul", T0 + 3 * DAY - 1) == first
    assert verified.encryption_key("KR.ncb-seoul", T0 + 3 * DAY) == key
    identity = verified.identity("KR.ncb-seoul", T0 + 3 * DAY)
    assert identity.encryption_key == key
    assert identity.signing_key == SEOUL.signer.public_key
    # beyond the last window there is nothing to seal to
    with pytest.raises(UnknownKey):
        verified.encryption_key("KR.ncb-seoul", ahead.not_after)


@pytest.mark.req("DIR-12")
def test_load_directory_skips_only_freshness() -> None:
    stale = load_directory(DATA, anchors=CHAIN)
    assert stale.serial == 1
    assert not stale.in_grace
    with pytest.raises(NcbRelayError):
        load_directory(DATA[:-1], anchors=CHAIN)


@pytest.mark.req("DIR-9", "DIR-7")
def test_an_archive_verifies_messages_to_dropped_encryption_keys() -> None:
    v1 = loaded(DOCUMENT)
    sealed = seal(
        b"to Rabat",
        sender=SEOUL.identity,
        recipients=[v1.identity("MA.ncb-rabat", T0 + 3600)],
        now=T0 + 3600,
        seq=1,
        rng=seeded_rng(b"archive"),
    )
    opened = open_envelope(
        sealed.data, recipient=RABAT.identity, directory=v1, now=T0 + 7200, replay=ReplayGuard()
    )
    free = DOCUMENT.entry("MA.ncb-rabat").encryption_keys[0].not_after + KEY_RETENTION
    later = prune_encryption_keys(next_version(DOCUMENT, issued=free))
    assert later.entry("MA.ncb-rabat").encryption_keys == ()
    history = verify_history([signed(DOCUMENT), signed(later)], anchors=CHAIN)
    with pytest.raises(UnknownKey, match="not in the directory"):
        verify_disclosure(opened.disclose(), directory=history[-1].historical)
    archive = DirectoryArchive(history)
    assert archive.newest is history[-1]
    assert verify_disclosure(opened.disclose(), directory=archive).body == b"to Rabat"
    with pytest.raises(UnknownKey, match="no version of the archive"):
        archive.check_encryption_key("MA.ncb-rabat", bytes(16), T0)
    with pytest.raises(UnknownKey):
        archive.encryption_key("MA.ncb-rabat", T0)
    with pytest.raises(UsageError, match="consecutive"):
        DirectoryArchive(history[::-1])
    with pytest.raises(UsageError):
        DirectoryArchive([])


# --- DIR-15: a new key's endorser is valid and unrevoked when the new key starts ---------------


def with_encryption_key(
    document: DirectoryDocument, principal: str, record: EncryptionKeyRecord
) -> DirectoryDocument:
    """``document`` with ``record`` added for ``principal``, bypassing the lifecycle's checks."""
    entry = document.entry(principal)
    return document.with_entry(replace(entry, encryption_keys=(*entry.encryption_keys, record)))


def with_signing_key(
    document: DirectoryDocument, principal: str, record: SigningKeyRecord
) -> DirectoryDocument:
    """``document`` with ``record`` added for ``principal``, bypassing the lifecycle's checks."""
    entry = document.entry(principal)
    return document.with_entry(replace(entry, signing_keys=(*entry.signing_keys, record)))


def stolen_and_reenrolled() -> tuple[DirectoryDocument, Any]:
    """Version 2: Seoul's signing key revoked as stolen, and a fresh one re-enrolled (ROT-3)."""
    draft = next_version(DOCUMENT, issued=T0 + DAY)
    draft = revoke_key(draft, "KR.ncb-seoul", SEOUL.signer.public_key.key_id, at=T0 + DAY)
    fresh = member("KR.ncb-seoul", 1)
    return reenrol(draft, "KR.ncb-seoul", key=fresh.signer.public_key), fresh


@pytest.mark.req("DIR-15", "ROT-4")
def test_a_revoked_signing_key_cannot_endorse_a_new_encryption_key() -> None:
    v2, fresh = stolen_and_reenrolled()
    held = verify(signed(v2), now=T0 + DAY, previous=verify(DATA))
    # a root threshold and the thief of the revoked key publish an encryption key for Seoul
    thief = member("QZ.thief").encryption[0].public_key
    stolen = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", thief, T0 + 2 * DAY)
    v3 = with_encryption_key(next_version(v2, issued=T0 + 2 * DAY), "KR.ncb-seoul", stolen)
    with pytest.raises(BadSignature, match="revoked"):
        verify(signed(v3), now=T0 + 2 * DAY, previous=held)
    with pytest.raises(BadSignature, match="revoked"):
        verify_history([DATA, signed(v2), signed(v3)], anchors=CHAIN)
    with pytest.raises(BadSignature, match="revoked"):
        check_successor(v2, v2.hash, v3)
    # the re-enrolled key endorses Seoul's new encryption keys
    own = member("KR.ncb-seoul", 2).encryption[0].public_key
    good = SCHEDULE.record(fresh.signer, "KR.ncb-seoul", own, T0 + 2 * DAY)
    v3 = with_encryption_key(next_version(v2, issued=T0 + 2 * DAY), "KR.ncb-seoul", good)
    accepted = verify(signed(v3), now=T0 + 2 * DAY, previous=held)
    assert accepted.encryption_key("KR.ncb-seoul", T0 + 2 * DAY) == own


@pytest.mark.req("DIR-15", "ROT-2")
def test_a_revoked_signing_key_cannot_endorse_a_new_signing_key() -> None:
    revoked = revoke_key(
        next_version(DOCUMENT, issued=T0 + DAY), "KR.ncb-seoul", SEOUL.signer.public_key.key_id
    )
    successor = member("KR.ncb-seoul", 1).signer.public_key
    # in a later version, and in the very version that revokes it
    for old, draft in ((revoked, next_version(revoked, issued=T0 + 2 * DAY)), (DOCUMENT, revoked)):
        endorsement = endorse_signing_key(SEOUL.signer, "KR.ncb-seoul", successor, draft.issued)
        rotation = with_signing_key(
            draft, "KR.ncb-seoul", SigningKeyRecord(successor, draft.issued, None, endorsement)
        )
        with pytest.raises(BadSignature, match="revoked"):
            check_successor(old, old.hash, rotation)


@pytest.mark.req("DIR-15", "ROT-2", "ROT-4")
def test_a_signing_key_outside_its_window_cannot_endorse_a_new_key() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    closing = T0 + 2 * DAY
    closed = next_version(DOCUMENT, issued=T0 + DAY).with_entry(
        replace(seoul, signing_keys=(replace(seoul.signing_keys[0], not_after=closing),))
    )
    check_successor(DOCUMENT, DOCUMENT.hash, closed)
    key = member("KR.ncb-seoul", 1).encryption[0].public_key
    successor = member("KR.ncb-seoul", 1).signer.public_key
    # a key starting while the endorser is still in its window is accepted ...
    inside = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, closing - 1)
    early = next_version(closed, issued=T0 + DAY)
    check_successor(closed, closed.hash, with_encryption_key(early, "KR.ncb-seoul", inside))
    # ... one starting once its window has closed is not
    later = next_version(closed, issued=closing)
    outside = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, closing)
    with pytest.raises(BadSignature, match="not valid"):
        check_successor(closed, closed.hash, with_encryption_key(later, "KR.ncb-seoul", outside))
    endorsement = endorse_signing_key(SEOUL.signer, "KR.ncb-seoul", successor, closing)
    rotation = with_signing_key(
        later, "KR.ncb-seoul", SigningKeyRecord(successor, closing, None, endorsement)
    )
    with pytest.raises(BadSignature, match="not valid"):
        check_successor(closed, closed.hash, rotation)


@pytest.mark.req("DIR-15", "ROT-6")
def test_a_later_backdated_revocation_keeps_keys_already_published() -> None:
    # Seoul rotated in V2 with its first key; that key is revoked later, dated back to genesis
    v3 = revoke_key(
        next_version(V2, issued=T0 + 6 * DAY),
        "KR.ncb-seoul",
        SEOUL.signer.public_key.key_id,
        at=T0,
    )
    chain = verify_history([DATA, signed(V2), signed(v3)], anchors=CHAIN)
    new = SEOUL_2.signer.public_key
    assert chain[-1].signing_key("KR.ncb-seoul", new.key_id, T0 + 6 * DAY) == new
    # and the encryption key the revoked key endorsed at genesis is still listed and usable
    first = SEOUL.encryption[0].public_key
    chain[-1].historical.check_encryption_key("KR.ncb-seoul", first.key_id, T0 + 3600)


# --- DIR-16 and DIR-9: a dropped key never returns; the archive follows its owner ----------------


def dropped_then_relisted(
    principal: str = "FR.ncb-paris",
) -> tuple[DirectoryDocument, DirectoryDocument, int]:
    """Version 2 drops every first encryption key; version 3 lists Seoul's as ``principal``'s."""
    free = DOCUMENT.entry("KR.ncb-seoul").encryption_keys[0].not_after + KEY_RETENTION
    v2 = prune_encryption_keys(next_version(DOCUMENT, issued=free))
    fresh = member("KR.ncb-seoul", 2).encryption[0].public_key
    v2 = add_encryption_key(
        v2, "KR.ncb-seoul", SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", fresh, free)
    )
    owner = MEMBERS[principal]
    seoul_first = SEOUL.encryption[0].public_key
    record = SCHEDULE.record(owner.signer, principal, seoul_first, free + DAY)
    v3 = add_encryption_key(next_version(v2, issued=free + DAY), principal, record)
    return v2, v3, free


@pytest.mark.req("DIR-9")
def test_an_archive_checks_the_version_in_which_the_principal_owns_the_key() -> None:
    v2, v3, free = dropped_then_relisted()
    # loaded one by one, the versions are consecutive even though v3 breaks DIR-16
    archive = DirectoryArchive([loaded(DOCUMENT), loaded(v2), loaded(v3)])
    key_id = SEOUL.encryption[0].public_key.key_id
    archive.check_encryption_key("KR.ncb-seoul", key_id, T0 + 3600)
    archive.check_encryption_key("FR.ncb-paris", key_id, free + DAY + 1)
    with pytest.raises(BindingMismatch, match=r"belongs to"):
        archive.check_encryption_key("MA.ncb-rabat", key_id, T0 + 3600)
    signing_id = SEOUL.signer.public_key.key_id
    with pytest.raises(BindingMismatch, match="not an encryption key"):
        archive.check_encryption_key("KR.ncb-seoul", signing_id, T0 + 3600)


@pytest.mark.req("DIR-16", "DIR-7")
@pytest.mark.parametrize("principal", ["FR.ncb-paris", "KR.ncb-seoul"])
def test_a_dropped_key_never_returns(principal: str) -> None:
    v2, v3, free = dropped_then_relisted(principal)
    files = [DATA, signed(v2), signed(v3)]
    with pytest.raises(BrokenChain, match="listed before"):
        verify_history(files, anchors=CHAIN)
    held = load_directory(DATA, anchors=CHAIN)
    with pytest.raises(BrokenChain, match="listed before"):
        verify(files[2], now=free + DAY, previous=held, intermediates=[files[1]])
    # the pair alone cannot tell; told what earlier versions listed, it can
    check_successor(v2, v2.hash, v3)
    listed = {r.key.raw for e in DOCUMENT.entries for r in e.all_keys()}
    with pytest.raises(BrokenChain, match="listed before"):
        check_successor(v2, v2.hash, v3, listed_before=listed)


@pytest.mark.req("DIR-16", "DIR-7")
def test_a_key_cannot_move_to_another_principal_in_one_step() -> None:
    free = DOCUMENT.entry("KR.ncb-seoul").encryption_keys[0].not_after + KEY_RETENTION
    seoul_first = SEOUL.encryption[0].public_key
    record = SCHEDULE.record(PARIS.signer, "FR.ncb-paris", seoul_first, free)
    moved = add_encryption_key(
        prune_encryption_keys(next_version(DOCUMENT, issued=free)), "FR.ncb-paris", record
    )
    with pytest.raises(BrokenChain, match="listed before"):
        check_successor(DOCUMENT, DOCUMENT.hash, moved)


# --- DIR-8: the signatures are checked before the document is decoded ---------------------------


@pytest.mark.req("DIR-8")
def test_signatures_are_checked_before_the_document_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    garbage = b"\xc1" * 4096  # never valid msgpack
    with pytest.raises(BelowThreshold):
        verify(SignedDocument(DIRECTORY_KIND, garbage).encode())
    with pytest.raises(BelowThreshold):
        verify(sign_with(SignedDocument(DIRECTORY_KIND, garbage), [ROOTS[0]]))
    with pytest.raises(UnknownKey, match="not a root key"):
        verify(sign_with(SignedDocument(DIRECTORY_KIND, garbage), [ROOTS[0], ROOTS[5]]))
    with pytest.raises(MalformedInput):  # authenticated, then decoded and refused
        verify(sign_with(SignedDocument(DIRECTORY_KIND, garbage), ROOTS[:2]))
    # an unsigned copy of a real document: its bytes never reach the decoder
    decoded: list[bytes] = []
    real_decode = codec.decode

    def spy(data: bytes, **kwargs: Any) -> Any:
        decoded.append(data)
        return real_decode(data, **kwargs)

    monkeypatch.setattr(codec, "decode", spy)
    with pytest.raises(BelowThreshold):
        verify(SignedDocument(DIRECTORY_KIND, DOCUMENT.encode()).encode())
    assert DOCUMENT.encode() not in decoded
    assert verify(DATA).serial == 1
    assert DOCUMENT.encode() in decoded


@pytest.mark.req("DIR-8", "ANCHOR-6")
def test_the_named_anchor_must_be_the_one_whose_roots_signed() -> None:
    rotated_anchor = ANCHOR.successor(
        roots=[RootKey(f"new holder {i}", r.public_key) for i, r in enumerate(ROOTS[2:5])],
        threshold=2,
        issued=T0 - DAY // 2,
    )
    chain = CHAIN.extend(sign_with(rotated_anchor.draft(), ROOTS[:4]))
    assert isinstance(chain, AnchorChain)
    under_new = replace(DOCUMENT, anchor=rotated_anchor.hash)
    # a threshold of the old roots signs a version naming the new anchor, and the reverse
    for document, signers in ((under_new, ROOTS[:2]), (DOCUMENT, ROOTS[3:5])):
        with pytest.raises(UnknownKey, match="not a root"):
            verify_directory(signed(document, *signers), anchors=chain, now=T0 + 1)
    # one root of each anchor: no anchor lists both signers
    with pytest.raises(UnknownKey, match="not all roots of one trust anchor"):
        verify_directory(signed(under_new, ROOTS[0], ROOTS[3]), anchors=chain, now=T0 + 1)
    # roots of both anchors, but only the old one's threshold ... naming the new one
    with pytest.raises(UnknownKey, match="not a root"):
        verify_directory(signed(under_new, ROOTS[1], ROOTS[2]), anchors=chain, now=T0 + 1)
    assert verify_directory(signed(under_new, ROOTS[2], ROOTS[3]), anchors=chain, now=T0 + 1)


# --- DIR-4: root keys are not principal keys, in any form ---------------------------------------


@pytest.mark.req("DIR-4", "KEY-3")
def test_a_root_key_cannot_be_reused_as_an_encryption_key() -> None:
    root = ROOTS[0].public_key
    converted = primitives.ed25519_public_key_to_x25519(root.raw)
    for raw, reason in ((converted, "X25519 form"), (root.raw, "also a principal")):
        key = EncryptionPublicKey(raw)
        record = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", key, T0 + DAY)
        document = add_encryption_key(DOCUMENT, "KR.ncb-seoul", record)
        with pytest.raises(InvalidPeerKey, match=reason):
            loaded(document)
    # a root key that signs nothing here (another anchor's) is not checked
    other = ROOTS[5].public_key
    record = SCHEDULE.record(
        SEOUL.signer,
        "KR.ncb-seoul",
        EncryptionPublicKey(primitives.ed25519_public_key_to_x25519(other.raw)),
        T0 + DAY,
    )
    assert loaded(add_encryption_key(DOCUMENT, "KR.ncb-seoul", record))
