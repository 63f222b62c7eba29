"""Disclosure: a third party verifies what a sender sent, with the directory and K alone."""

from __future__ import annotations

import pytest

from fixtures import NOW, seeded_rng, world
from ncb_relay import (
    DecryptionFailed,
    DisclosedMessage,
    Disclosure,
    MalformedInput,
    NcbRelayError,
    ReplayGuard,
    UsageError,
    open_envelope,
    seal,
    verify_disclosure,
)
from ncb_relay.header import MAX_TTL

IDS, DIRECTORY = world()
SEOUL, RABAT, GS, PARIS = "KR.ncb-seoul", "MA.ncb-rabat", "XP.interpol-gs", "FR.ncb-paris"


def _opened(body: bytes = b"request for assistance", seq: int = 1) -> Disclosure:
    sealed = seal(
        body,
        sender=IDS[SEOUL],
        recipients=[IDS[RABAT].public, IDS[GS].public],
        now=NOW,
        seq=seq,
        rng=seeded_rng(b"disclosure %d" % seq),
    )
    message = open_envelope(
        sealed.data, recipient=IDS[GS], directory=DIRECTORY, now=NOW, replay=ReplayGuard()
    )
    return message.disclose()


@pytest.mark.req("DISC-1", "DISC-2")
def test_a_non_recipient_verifies_a_disclosed_message_years_later() -> None:
    disclosure = _opened()
    proven = verify_disclosure(disclosure, directory=DIRECTORY)
    assert isinstance(proven, DisclosedMessage)
    assert proven.body == b"request for assistance"
    assert proven.sender == SEOUL
    assert proven.recipients == (RABAT, GS)  # Paris verifies, but was not addressed
    assert PARIS not in proven.recipients
    assert proven.created == NOW
    # no freshness: the same disclosure verifies long after the message expired
    assert verify_disclosure(disclosure, directory=DIRECTORY).created < NOW + 10 * MAX_TTL


@pytest.mark.req("DISC-1")
def test_the_content_key_of_another_message_is_refused() -> None:
    first, second = _opened(seq=1), _opened(b"another", seq=2)
    with pytest.raises(DecryptionFailed) as exc:
        verify_disclosure(Disclosure(first.envelope, second.content_key), directory=DIRECTORY)
    assert exc.value.reason == "key-commitment"


@pytest.mark.req("DISC-1")
@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_a_content_key_of_the_wrong_length_is_refused(length: int) -> None:
    disclosure = _opened()
    with pytest.raises(DecryptionFailed):
        verify_disclosure(Disclosure(disclosure.envelope, bytes(length)), directory=DIRECTORY)


@pytest.mark.req("DISC-1")
def test_every_bit_flip_of_a_disclosed_envelope_is_refused() -> None:
    disclosure = _opened(b"x")
    for position in range(0, len(disclosure.envelope) * 8, 7):
        tampered = bytearray(disclosure.envelope)
        tampered[position // 8] ^= 1 << (position % 8)
        with pytest.raises(NcbRelayError):
            verify_disclosure(
                Disclosure(bytes(tampered), disclosure.content_key), directory=DIRECTORY
            )


@pytest.mark.req("DISC-1")
def test_a_disclosure_is_bytes_and_hides_its_key() -> None:
    disclosure = _opened()
    assert disclosure.content_key.hex() not in repr(disclosure)
    with pytest.raises(UsageError):
        Disclosure("envelope", b"k" * 32)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        verify_disclosure(disclosure.envelope, directory=DIRECTORY)  # type: ignore[arg-type]
    with pytest.raises(MalformedInput):
        verify_disclosure(Disclosure(b"\xc1", disclosure.content_key), directory=DIRECTORY)


def test_disclosed_messages_have_no_public_constructor() -> None:
    with pytest.raises(UsageError):
        DisclosedMessage(None, b"")  # type: ignore[arg-type]
