"""Issue #4, "done when": a 2-of-3 root, twenty bureaus, a rotation, a revocation, a new root.

Old and new messages are sealed with :func:`ncb_relay.seal`, opened live with
:func:`ncb_relay.open_envelope` against the directory of their time, and
verified later as disclosures against the newest version of the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from directory_world import (
    DAY,
    ROOTS,
    SCHEDULE,
    T0,
    Member,
    entry_for,
    make_anchor,
    member,
    sign_with,
)
from fixtures import seeded_rng
from ncb_relay import (
    AnchorChain,
    BrokenChain,
    DirectoryExpired,
    Disclosure,
    ReplayGuard,
    RootKey,
    SealedEnvelope,
    UnknownKey,
    VerifiedDirectory,
    endorse_signing_key,
    open_envelope,
    seal,
    verify_directory,
    verify_disclosure,
    verify_history,
)
from ncb_relay.lifecycle import (
    add_encryption_key,
    new_directory,
    next_version,
    revoke_key,
    rotate_signing_key,
)

COUNTRIES = (
    "AR", "AU", "BR", "CA", "DE", "EG", "ES", "FR", "IN", "IT",
    "JP", "KE", "KR", "MA", "MX", "NG", "NL", "SE", "TR", "ZA",
)  # fmt: skip
BUREAUS = tuple(f"{c}.ncb" for c in COUNTRIES)
COORDINATOR = "XP.interpol-gs"
SEOUL, RABAT, PARIS, TOKYO = "KR.ncb", "MA.ncb", "FR.ncb", "JP.ncb"
HOUR = 3600


@dataclass
class Network:
    """The coordinator's drafts and every bureau's private keys, as time goes by."""

    members: dict[str, Member] = field(default_factory=dict)
    files: list[bytes] = field(default_factory=list)
    anchors: list[bytes] = field(default_factory=list)
    seq: int = 0

    def seal(
        self, sender: str, recipients: list[str], now: int, directory: VerifiedDirectory
    ) -> SealedEnvelope:
        self.seq += 1
        return seal(
            f"message {self.seq} from {sender}".encode(),
            sender=self.members[sender].identity,
            recipients=[directory.identity(p, now) for p in recipients],
            now=now,
            seq=self.seq,
            rng=seeded_rng(f"message {self.seq}".encode()),
        )

    def open(
        self, sealed: SealedEnvelope, recipient: str, now: int, directory: VerifiedDirectory
    ) -> Disclosure:
        opened = open_envelope(
            sealed.data,
            recipient=self.members[recipient].identity,
            directory=directory,
            now=now,
            replay=ReplayGuard(),
        )
        assert opened.body == f"message {sealed.header.seq} from {sealed.header.sender}".encode()
        return opened.disclose()


@pytest.mark.req("DIR-9", "DIR-11", "DIR-12", "ANCHOR-4", "ANCHOR-6", "ROT-2", "ROT-6", "ROT-7")
def test_directory_lifecycle_end_to_end() -> None:
    net = Network()
    # --- a coordinator with a 2-of-3 root and twenty bureaus -------------------------------
    anchor_1 = make_anchor(ROOTS[:3], 2)
    net.anchors.append(sign_with(anchor_1.draft(), [ROOTS[0], ROOTS[2]]))
    chain = AnchorChain.trust(net.anchors[0])
    assert chain.fingerprint == anchor_1.hash  # compared out of band
    entries = []
    for principal in (*BUREAUS, COORDINATOR):
        net.members[principal] = member(principal)
        if principal == COORDINATOR:
            entries.append(entry_for(net.members[principal], T0, "coordinator"))
        else:
            entries.append(entry_for(net.members[principal], T0))
    v1_doc = new_directory(anchor=anchor_1.hash, issued=T0, entries=entries)
    net.files.append(sign_with(v1_doc.draft(), [ROOTS[1], ROOTS[2]]))
    v1 = verify_directory(net.files[0], anchors=chain, now=T0 + HOUR)
    assert len(v1.document.entries) == 21

    # messages under version 1
    m1 = net.seal(SEOUL, [RABAT, COORDINATOR], T0 + HOUR, v1)
    d1 = net.open(m1, RABAT, T0 + 2 * HOUR, v1)
    m3 = net.seal(PARIS, [TOKYO], T0 + DAY, v1)  # Paris, before its key is stolen
    d3 = net.open(m3, TOKYO, T0 + DAY + HOUR, v1)

    # --- version 2: Seoul rotates its signing key and its encryption key --------------------
    t2 = T0 + 2 * DAY
    seoul_old = net.members[SEOUL]
    seoul_new = member(SEOUL, 1)
    draft = next_version(v1_doc, issued=t2)
    endorsement = endorse_signing_key(seoul_old.signer, SEOUL, seoul_new.signer.public_key, t2)
    draft = rotate_signing_key(
        draft, SEOUL, key=seoul_new.signer.public_key, endorsement=endorsement
    )
    record = SCHEDULE.record(seoul_new.signer, SEOUL, seoul_new.encryption[0].public_key, t2)
    v2_doc = add_encryption_key(draft, SEOUL, record)
    net.members[SEOUL] = Member(
        SEOUL, seoul_new.signer, [*seoul_old.encryption, *seoul_new.encryption]
    )
    net.files.append(sign_with(v2_doc.draft(), [ROOTS[0], ROOTS[1]]))
    v2 = verify_directory(net.files[1], anchors=chain, now=t2 + HOUR, previous=v1)

    m2 = net.seal(SEOUL, [RABAT], t2 + HOUR, v2)  # with the new signing key
    d2 = net.open(m2, RABAT, t2 + 2 * HOUR, v2)
    assert m2.header.sender_key_id == seoul_new.signer.public_key.key_id
    # m1, signed with the old key, arrives late: inside the overlap it still opens live
    net.open(m1, COORDINATOR, t2 + 3 * HOUR, v2)
    # mail to Seoul now goes to its new encryption key, which it holds
    to_seoul = net.seal(TOKYO, [SEOUL], t2 + HOUR, v2)
    assert to_seoul.header.recipients[0].key_id == seoul_new.encryption[0].public_key.key_id
    net.open(to_seoul, SEOUL, t2 + 2 * HOUR, v2)

    # --- version 3: Paris's signing key was stolen from day 3; revoked on day 4 --------------
    stolen_from, t3 = T0 + 3 * DAY, T0 + 4 * DAY
    thief = net.members[PARIS]  # the thief holds Paris's current keys
    forged_backdated = net.seal(PARIS, [TOKYO], T0 + 2 * DAY, v2)  # claims a time before the theft
    forged_after = net.seal(PARIS, [TOKYO], stolen_from + HOUR, v2)
    d_backdated = net.open(forged_backdated, TOKYO, stolen_from + 2 * HOUR, v2)
    d_after = net.open(forged_after, TOKYO, stolen_from + 2 * HOUR, v2)  # not yet known stolen
    v3_doc = revoke_key(
        next_version(v2_doc, issued=t3), PARIS, thief.signer.public_key.key_id, at=stolen_from
    )
    net.files.append(sign_with(v3_doc.draft(), [ROOTS[0], ROOTS[2]]))
    v3 = verify_directory(net.files[2], anchors=chain, now=t3 + HOUR, previous=v2)
    # live, the stolen key is refused whatever "created" says
    for forged in (forged_backdated, forged_after, m3):
        with pytest.raises(UnknownKey, match="revoked"):
            net.open(forged, TOKYO, t3 + 2 * HOUR, v3)

    # --- the root keys are rotated: anchor 2, signed by the old and the new threshold -------
    t4 = T0 + 6 * DAY
    anchor_2 = anchor_1.successor(
        roots=[RootKey(f"new root {i}", r.public_key) for i, r in enumerate(ROOTS[3:6])],
        threshold=2,
        issued=t4,
    )
    net.anchors.append(sign_with(anchor_2.draft(), [ROOTS[1], ROOTS[2], ROOTS[3], ROOTS[5]]))
    v4_doc = next_version(v3_doc, issued=t4, anchor=anchor_2.hash)
    net.files.append(sign_with(v4_doc.draft(), [ROOTS[4], ROOTS[5]]))
    # a bureau that has not seen the new anchor cannot accept version 4 ...
    with pytest.raises(UnknownKey, match="no trust anchor in the chain"):
        verify_directory(net.files[3], anchors=chain, now=t4 + HOUR, previous=v3)
    # ... and follows the chain of anchors to accept it
    chain = chain.extend(net.anchors[1])
    v4 = verify_directory(net.files[3], anchors=chain, now=t4 + HOUR, previous=v3)
    assert v4.anchor.serial == 2
    # the old roots can no longer sign a directory
    rogue = next_version(v4_doc, issued=t4 + HOUR, anchor=anchor_1.hash)
    with pytest.raises(BrokenChain):
        verify_directory(
            sign_with(rogue.draft(), [ROOTS[0], ROOTS[1]]),
            anchors=chain,
            now=t4 + HOUR,
            previous=v4,
        )

    # a new message under version 4
    m6 = net.seal(RABAT, [SEOUL, COORDINATOR], t4 + HOUR, v4)
    d6 = net.open(m6, SEOUL, t4 + 2 * HOUR, v4)

    # --- years later: a court verifies against the newest version of the history ------------
    history = verify_history(net.files, anchors=AnchorChain.load(net.anchors))
    newest = history[-1]
    assert [v.serial for v in history] == [1, 2, 3, 4]
    for disclosure, sender in ((d1, SEOUL), (d2, SEOUL), (d3, PARIS), (d6, RABAT)):
        assert verify_disclosure(disclosure, directory=newest.historical).sender == sender
    # the thief's message dated after the theft does not verify, even historically
    with pytest.raises(UnknownKey, match="revoked"):
        verify_disclosure(d_after, directory=newest.historical)
    # one dated before the revocation time does (spec/directory.md, "The window of
    # exposure": the relay's log, not the directory, shows when it was really sent)
    assert verify_disclosure(d_backdated, directory=newest.historical).sender == PARIS
    # live, the newest version refuses every message of the stolen key
    with pytest.raises(UnknownKey):
        verify_disclosure(d3, directory=newest)
    # and an old version, once expired beyond its grace, is refused for live use
    with pytest.raises(DirectoryExpired):
        verify_directory(net.files[0], anchors=chain, now=v1_doc.expires + 7 * DAY)
