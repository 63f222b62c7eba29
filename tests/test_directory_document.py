"""The directory document and its entries: shape and consistency (DIR-2 .. DIR-5, DIR-14)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from directory_world import (
    ANCHOR,
    COORDINATOR,
    DAY,
    SCHEDULE,
    T0,
    entry_for,
    genesis,
    member,
    mutable,
    signing_key,
)
from ncb_relay import (
    BadSignature,
    DirectoryDocument,
    EncryptionKeyRecord,
    EncryptionPublicKey,
    InvalidPeerKey,
    LimitExceeded,
    MalformedInput,
    PrincipalEntry,
    SigningKeyRecord,
    StatusChange,
    UnknownKey,
    UnsupportedVersion,
    UsageError,
    codec,
    endorse_encryption_key,
    endorse_signing_key,
    primitives,
)
from ncb_relay.endorsements import encryption_endorsement_message, signing_endorsement_message

DOCUMENT, MEMBERS = genesis()
SEOUL = MEMBERS["KR.ncb-seoul"]
SMALL_ORDER = bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000")


def entry_value(document: DirectoryDocument, principal: str) -> dict[str, Any]:
    value = mutable(document)
    entries = value["entries"]
    assert isinstance(entries, list)
    for item in entries:
        assert isinstance(item, dict)
        if item["id"] == principal:
            return item
    raise KeyError(principal)


def decode_changed(change: Any) -> DirectoryDocument:
    value = mutable(DOCUMENT)
    change(value)
    return DirectoryDocument.decode(codec.encode(value))


# --- DIR-2: the document -----------------------------------------------------------------


@pytest.mark.req("DIR-2")
def test_a_document_round_trips_exactly() -> None:
    data = DOCUMENT.encode()
    again = DirectoryDocument.decode(data)
    assert again == DOCUMENT
    assert again.encode() == data
    assert again.hash == DOCUMENT.hash
    assert DOCUMENT.principals == tuple(sorted(DOCUMENT.principals))
    shown = DOCUMENT.to_json()
    assert shown["serial"] == 1
    assert shown["previous"] is None
    assert shown["anchor"] == ANCHOR.hash.hex()
    assert [e["id"] for e in shown["entries"]] == list(DOCUMENT.principals)


@pytest.mark.req("DIR-2")
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"type": "trust-anchor"}, MalformedInput),
        ({"version": 2}, UnsupportedVersion),
        ({"serial": 0}, MalformedInput),
        ({"serial": 2}, MalformedInput),  # serial 2 needs a previous hash
        ({"previous": bytes(32)}, MalformedInput),  # serial 1 has none
        ({"previous": bytes(31)}, MalformedInput),
        ({"anchor": bytes(31)}, MalformedInput),
        ({"anchor": "x" * 32}, MalformedInput),
        ({"entries": {}}, MalformedInput),
        ({"issued": True}, MalformedInput),
        ({"comment": "hello"}, MalformedInput),
    ],
)
def test_bad_documents_are_refused(change: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        decode_changed(lambda value: value.update(change))


@pytest.mark.req("DIR-2")
def test_entries_must_be_sorted_and_unique() -> None:
    def unsorted(value: dict[str, Any]) -> None:
        value["entries"] = value["entries"][::-1]

    def twice(value: dict[str, Any]) -> None:
        value["entries"] = value["entries"][:1] * 2

    for change in (unsorted, twice):
        with pytest.raises(MalformedInput, match="sorted"):
            decode_changed(change)
    with pytest.raises(UsageError, match="twice"):
        replace(DOCUMENT, entries=DOCUMENT.entries[:1] * 2)
    with pytest.raises(UnknownKey):
        DOCUMENT.entry("QZ.nobody")


# --- DIR-3: entries ------------------------------------------------------------------------


@pytest.mark.req("DIR-3")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "kr.ncb-seoul"),
        ("country", "KP"),
        ("name", ""),
        ("name", "x" * 129),
        ("name", "tab\there"),
        ("role", "observer"),
        ("status", []),
        ("status", [["suspended", T0]]),
        ("status", [["active", T0], ["active", T0 + 1]]),
        ("status", [["active", T0], ["revoked", T0 + 1], ["active", T0 + 2]]),
        ("status", [["active", T0 + 1], ["suspended", T0]]),
        ("status", [["active"]]),
        ("status", [["asleep", T0]]),
        ("signing_keys", []),
        ("signing_keys", "none"),
        ("extra", 1),
    ],
)
def test_bad_entries_are_malformed(field: str, value: Any) -> None:
    def change(doc: dict[str, Any]) -> None:
        entry_value_ = doc["entries"][1]
        entry_value_[field] = value

    with pytest.raises(MalformedInput):
        decode_changed(change)


@pytest.mark.req("DIR-3")
def test_key_windows_must_be_ordered() -> None:
    record = DOCUMENT.entry("KR.ncb-seoul").signing_keys[0]
    with pytest.raises(UsageError, match="later than its not_before"):
        replace(record, not_after=record.not_before)
    with pytest.raises(UsageError, match="revoked before"):
        replace(record, revoked=record.not_before - 1)
    enc = DOCUMENT.entry("KR.ncb-seoul").encryption_keys[0]
    with pytest.raises(UsageError):
        replace(enc, not_after=None)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="64-byte"):
        replace(enc, endorsement=b"short")
    entry = DOCUMENT.entry("KR.ncb-seoul")
    with pytest.raises(UsageError, match="strictly increasing"):
        replace(entry, encryption_keys=(enc, replace(enc, key=SCHEDULE_KEY)))
    with pytest.raises(UsageError, match="no signing key"):
        replace(entry, signing_keys=())


SCHEDULE_KEY = member("QZ.spare").encryption[0].public_key


@pytest.mark.req("DIR-3")
def test_status_history_reads_as_of_a_time() -> None:
    entry = replace(
        DOCUMENT.entry("KR.ncb-seoul"),
        status=(
            StatusChange("active", T0),
            StatusChange("suspended", T0 + 10),
            StatusChange("active", T0 + 20),
            StatusChange("revoked", T0 + 30),
        ),
    )
    assert [entry.state_at(t) for t in (T0 - 1, T0, T0 + 10, T0 + 25, T0 + 99)] == [
        None,
        "active",
        "suspended",
        "active",
        "revoked",
    ]
    assert entry.current_state == "revoked"
    assert entry.country == "KR"
    with pytest.raises(UsageError):
        StatusChange("asleep", T0)  # type: ignore[arg-type]


# --- DIR-4: keys -----------------------------------------------------------------------------


@pytest.mark.req("DIR-4", "KEY-4")
def test_a_low_order_encryption_key_is_refused() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["entries"][1]["encryption_keys"][0]["key"] = SMALL_ORDER

    with pytest.raises(InvalidPeerKey, match="small order"):
        decode_changed(change)


@pytest.mark.req("DIR-4", "KEY-4")
def test_a_malformed_signing_key_is_refused() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["entries"][1]["signing_keys"][0]["key"] = bytes(32)

    with pytest.raises(InvalidPeerKey):
        decode_changed(change)


@pytest.mark.req("DIR-4")
def test_the_same_key_under_two_principals_is_refused() -> None:
    paris = DOCUMENT.entry("FR.ncb-paris")
    # Rabat lists Paris's signing key as its own, and endorses its encryption key with it
    m = member("MA.ncb-rabat")
    key = m.encryption[0].public_key
    stolen = PrincipalEntry(
        "MA.ncb-rabat",
        "NCB Rabat",
        "bureau",
        (StatusChange("active", T0),),
        (SigningKeyRecord(paris.signing_keys[0].key, T0),),
        (SCHEDULE.record(MEMBERS["FR.ncb-paris"].signer, "MA.ncb-rabat", key, T0),),
    )
    with pytest.raises(InvalidPeerKey, match="already listed"):
        DOCUMENT.with_entry(stolen)
    # and an encryption key shared with another principal
    shared = SCHEDULE.record(
        MEMBERS["MA.ncb-rabat"].signer,
        "MA.ncb-rabat",
        paris.encryption_keys[0].key,
        T0 + 1,
    )
    rabat = DOCUMENT.entry("MA.ncb-rabat")
    with pytest.raises(InvalidPeerKey, match="already listed"):
        DOCUMENT.with_entry(replace(rabat, encryption_keys=(*rabat.encryption_keys, shared)))


@pytest.mark.req("DIR-4", "KEY-3")
def test_an_encryption_key_that_is_a_signing_key_converted_is_refused() -> None:
    rabat = DOCUMENT.entry("MA.ncb-rabat")
    signer = MEMBERS["MA.ncb-rabat"].signer
    own = EncryptionPublicKey(primitives.ed25519_public_key_to_x25519(signer.public_key.raw))
    record = SCHEDULE.record(signer, "MA.ncb-rabat", own, T0 + 1)
    with pytest.raises(InvalidPeerKey, match="KEY-3"):
        replace(rabat, encryption_keys=(*rabat.encryption_keys, record))
    # the same across principals: Paris's signing key converted, as Rabat's encryption key
    paris_key = DOCUMENT.entry("FR.ncb-paris").signing_keys[0].key
    theirs = EncryptionPublicKey(primitives.ed25519_public_key_to_x25519(paris_key.raw))
    record = SCHEDULE.record(signer, "MA.ncb-rabat", theirs, T0 + 1)
    with pytest.raises(InvalidPeerKey, match="KEY-3"):
        DOCUMENT.with_entry(replace(rabat, encryption_keys=(*rabat.encryption_keys, record)))


# --- DIR-5: dates ----------------------------------------------------------------------------


@pytest.mark.req("DIR-5")
@pytest.mark.parametrize(
    ("issued", "expires"), [(T0, T0), (T0, T0 - 1), (T0, T0 + 90 * DAY + 1), (T0, 2**41)]
)
def test_validity_is_positive_and_at_most_90_days(issued: int, expires: int) -> None:
    with pytest.raises(UsageError):
        replace(DOCUMENT, issued=issued, expires=expires)
    assert replace(DOCUMENT, expires=T0 + 90 * DAY).expires == T0 + 90 * DAY


@pytest.mark.req("DIR-5")
def test_changes_cannot_be_dated_after_issue() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    later = replace(seoul, status=(*seoul.status, StatusChange("suspended", T0 + 1)))
    with pytest.raises(UsageError, match="dated after issue"):
        DOCUMENT.with_entry(later)
    revoked = replace(seoul, signing_keys=(replace(seoul.signing_keys[0], revoked=T0 + 1),))
    with pytest.raises(UsageError, match="dated after issue"):
        DOCUMENT.with_entry(revoked)
    # a key may start after issue (published ahead of its use)
    ahead = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", SCHEDULE_KEY, T0 + 5 * DAY)
    assert DOCUMENT.with_entry(replace(seoul, encryption_keys=(*seoul.encryption_keys, ahead)))


# --- endorsements (ROT-2 .. ROT-4) at the entry level ------------------------------------------


@pytest.mark.req("ROT-2")
def test_a_signing_key_needs_its_predecessors_endorsement() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    new = signing_key("seoul next")
    good = endorse_signing_key(SEOUL.signer, "KR.ncb-seoul", new.public_key, T0 + 5)
    first = replace(seoul.signing_keys[0], not_after=T0 + 10)
    ok = replace(seoul, signing_keys=(first, SigningKeyRecord(new.public_key, T0 + 5, None, good)))
    assert ok.signing_keys[1].endorsement == good
    message = signing_endorsement_message(
        "KR.ncb-seoul", SEOUL.signer.public_key, new.public_key, T0 + 5
    )
    assert message.startswith(b"NCBR/1 signing key endorsement\x00")
    assert message.endswith(b"KR.ncb-seoul")
    assert len(message) == 31 + 32 + 32 + 8 + 12
    for endorsement in (
        None,
        bytes(64),
        endorse_signing_key(SEOUL.signer, "KR.ncb-seoul", new.public_key, T0 + 6),
        endorse_signing_key(SEOUL.signer, "MA.ncb-rabat", new.public_key, T0 + 5),
        endorse_signing_key(new, "KR.ncb-seoul", new.public_key, T0 + 5),
    ):
        with pytest.raises(BadSignature, match="endorsement"):
            replace(
                seoul,
                signing_keys=(first, SigningKeyRecord(new.public_key, T0 + 5, None, endorsement)),
            )
    with pytest.raises(UsageError, match="first signing key"):
        replace(seoul, signing_keys=(replace(seoul.signing_keys[0], endorsement=good),))


@pytest.mark.req("ROT-3")
def test_an_unendorsed_key_is_allowed_only_after_every_earlier_key_is_revoked() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    new = signing_key("seoul re-enrolled")
    revoked = replace(seoul.signing_keys[0], revoked=T0 + 1)
    again = replace(seoul, signing_keys=(revoked, SigningKeyRecord(new.public_key, T0 + 5)))
    assert again.signing_keys[1].endorsement is None
    with pytest.raises(BadSignature, match="lacks the endorsement"):
        replace(
            seoul, signing_keys=(seoul.signing_keys[0], SigningKeyRecord(new.public_key, T0 + 5))
        )


@pytest.mark.req("ROT-4")
def test_an_encryption_key_needs_the_principals_endorsement() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    record = seoul.encryption_keys[0]
    assert seoul.encryption_key_endorser(record) == seoul.signing_keys[0]
    message = encryption_endorsement_message(
        "KR.ncb-seoul", SEOUL.signer.public_key, record.key, record.not_before, record.not_after
    )
    SEOUL.signer.public_key.verify(message, record.endorsement)
    coordinator = MEMBERS[COORDINATOR].signer
    for endorsement in (
        bytes(64),
        endorse_encryption_key(coordinator, "KR.ncb-seoul", record.key, T0, record.not_after),
        endorse_encryption_key(SEOUL.signer, "KR.ncb-seoul", record.key, T0, record.not_after + 1),
    ):
        with pytest.raises(BadSignature, match="encryption key"):
            replace(seoul, encryption_keys=(replace(record, endorsement=endorsement),))
    # an encryption key starting before any signing key has no possible endorser
    early = EncryptionKeyRecord(
        SCHEDULE_KEY,
        T0 - 10,
        T0 + DAY,
        endorse_encryption_key(SEOUL.signer, "KR.ncb-seoul", SCHEDULE_KEY, T0 - 10, T0 + DAY),
    )
    with pytest.raises(BadSignature):
        replace(seoul, encryption_keys=(early,))


@pytest.mark.req("ROT-4")
def test_the_endorsement_survives_a_later_rotation_of_the_signing_key() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    ahead = SCHEDULE.record(SEOUL.signer, "KR.ncb-seoul", SCHEDULE_KEY, T0 + 5 * DAY)
    new = signing_key("seoul rotated early")
    endorsement = endorse_signing_key(SEOUL.signer, "KR.ncb-seoul", new.public_key, T0 + DAY)
    rotated = replace(
        seoul,
        signing_keys=(
            replace(seoul.signing_keys[0], not_after=T0 + 2 * DAY),
            SigningKeyRecord(new.public_key, T0 + DAY, None, endorsement),
        ),
        encryption_keys=(*seoul.encryption_keys, ahead),
    )
    assert rotated.encryption_key_endorser(ahead) == rotated.signing_keys[0]


@pytest.mark.req("DIR-15")
def test_an_entry_names_the_endorser_of_each_of_its_keys() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    first, enc = seoul.signing_keys[0], seoul.encryption_keys[0]
    assert seoul.endorser(first) is None  # the first key carries no endorsement (ROT-1)
    assert seoul.endorser(enc) == first
    seoul.check_new_key(enc)
    assert first.may_endorse(T0)
    assert not first.may_endorse(T0 - 1)
    assert not replace(first, revoked=T0 + 5).may_endorse(T0 + 5)
    assert not replace(first, not_after=T0 + 5).may_endorse(T0 + 5)
    rabat = DOCUMENT.entry("MA.ncb-rabat")
    with pytest.raises(UsageError, match="does not list"):
        seoul.endorser(rabat.signing_keys[0])
    with pytest.raises(UsageError, match="does not list"):
        seoul.check_new_key(rabat.encryption_keys[0])


# --- DIR-14: limits ------------------------------------------------------------------------


@pytest.mark.req("DIR-14")
def test_documents_are_decoded_under_limits() -> None:
    def deep(value: dict[str, Any]) -> None:
        value["entries"][0]["name"] = [[[[[["x"]]]]]]

    with pytest.raises(LimitExceeded):
        decode_changed(deep)

    def long_name(value: dict[str, Any]) -> None:
        value["entries"][0]["name"] = "x" * 257

    with pytest.raises(LimitExceeded):
        decode_changed(long_name)

    def long_key(value: dict[str, Any]) -> None:
        value["entries"][0]["signing_keys"][0]["key"] = bytes(65)

    with pytest.raises(LimitExceeded):
        decode_changed(long_key)


@pytest.mark.req("DIR-14")
def test_a_principal_holds_at_most_1024_keys_of_a_kind() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    with pytest.raises(UsageError, match="at most 1024"):
        replace(seoul, status=tuple(StatusChange("active", T0 + i) for i in range(1025)))


@pytest.mark.req("DIR-3")
def test_value_objects_refuse_wrong_types() -> None:
    seoul = DOCUMENT.entry("KR.ncb-seoul")
    enc = seoul.encryption_keys[0]
    with pytest.raises(UsageError):
        SigningKeyRecord(enc.key, T0)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        EncryptionKeyRecord(seoul.signing_keys[0].key, T0, T0 + 1, bytes(64))  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        replace(seoul, signing_keys=[seoul.signing_keys[0]])  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        replace(DOCUMENT, entries=("KR.ncb-seoul",))  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        entry_for(member("kr.lower"), T0)
