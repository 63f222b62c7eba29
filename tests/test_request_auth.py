"""Signed requests to a relay (spec/relay-api.md, "Request authentication", AUTH-1 .. AUTH-16)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from directory_world import DAY, T0, genesis, loaded, rotated
from fixtures import NOW, seeded_rng, world
from ncb_relay import (
    AuthenticatedRequest,
    BadSignature,
    BindingMismatch,
    FutureDated,
    LimitExceeded,
    MalformedInput,
    NonceCache,
    PrivateIdentity,
    ProtocolError,
    Replay,
    RequestCredentials,
    RequestVerifier,
    StaleMessage,
    UnknownKey,
    UnsupportedVersion,
    UsageError,
    authorization_field,
    codec,
    parse_authorization,
    request_body_hash,
    sign_request,
)
from ncb_relay.directory import KeyDirectory
from ncb_relay.lifecycle import next_version, revoke_key, suspend
from ncb_relay.request_auth import (
    MAX_AUTHORIZATION_BYTES,
    REQUEST_SIGNATURE_LABEL,
    request_signature_input,
)

RELAY = "XP.relay-lyon"
IDS, DIRECTORY = world()
SEOUL, RABAT = IDS["KR.ncb-seoul"], IDS["MA.ncb-rabat"]
TARGET = "/v1/mailbox?limit=10"
BODY = b"\x93\xc4\x01an envelope"


def sign(
    identity: PrivateIdentity = SEOUL,
    *,
    method: str = "POST",
    target: str = TARGET,
    body: bytes = BODY,
    now: int = NOW,
    relay: str = RELAY,
    seed: bytes = b"nonce",
    principal: str | None = None,
) -> RequestCredentials:
    return sign_request(
        principal=identity.principal if principal is None else principal,
        signer=identity.signer,
        relay=relay,
        method=method,
        target=target,
        body=body,
        now=now,
        rng=seeded_rng(seed),
    )


def verifier(
    *,
    directory: KeyDirectory = DIRECTORY,
    since: int | None = None,
    max_skew: int = 60,
    max_entries: int = 1000,
) -> RequestVerifier:
    nonces = NonceCache(since=since, max_skew=max_skew, max_entries=max_entries)
    return RequestVerifier(relay=RELAY, directory=directory, nonces=nonces)


def verify(
    authorization: str | bytes | None,
    *,
    method: str = "POST",
    target: str = TARGET,
    body: bytes = BODY,
    now: int = NOW,
    using: RequestVerifier | None = None,
) -> AuthenticatedRequest:
    return (using or verifier()).verify(
        method=method, target=target, body=body, authorization=authorization, now=now
    )


def token_of(fields: list[Any]) -> str:
    return "NCBR1 " + base64.urlsafe_b64encode(codec.encode(fields)).rstrip(b"=").decode()


# --- signing: the exact bytes ------------------------------------------------------------------


@pytest.mark.req("AUTH-2")
def test_the_body_hash_is_personalised_blake2b_of_the_exact_bytes() -> None:
    empty = "9a1265cb9eeff78d2b51cb5e97e4e43124803b488ecc0b7c7efbd3f1bd3861da"
    assert request_body_hash(b"").hex() == empty
    expected = hashlib.blake2b(BODY, digest_size=32, person=b"NCBR1 req body").digest()
    assert request_body_hash(BODY) == expected
    with pytest.raises(UsageError):
        request_body_hash("text")  # type: ignore[arg-type]


@pytest.mark.req("AUTH-3", "AUTH-5")
def test_the_signature_covers_the_label_and_one_canonical_array() -> None:
    credentials = sign()
    key_id = SEOUL.signer.public_key.key_id
    fields: list[codec.Value] = ["POST", TARGET, request_body_hash(BODY), NOW]
    fields += [credentials.nonce, RELAY]
    signed = REQUEST_SIGNATURE_LABEL + codec.encode([*fields, SEOUL.principal, key_id])
    assert REQUEST_SIGNATURE_LABEL == b"NCBR/1 request signature\x00"
    SEOUL.signer.public_key.verify(signed, credentials.signature)
    assert signed == request_signature_input(
        method="POST",
        target=TARGET,
        body_hash=request_body_hash(BODY),
        timestamp=NOW,
        nonce=credentials.nonce,
        relay=RELAY,
        principal=SEOUL.principal,
        key_id=key_id,
    )
    # AUTH-5: the token carries the six fields, in order, and nothing of the request
    token: list[codec.Value] = [SEOUL.principal, key_id, RELAY, NOW]
    token += [credentials.nonce, credentials.signature]
    assert credentials.token == codec.encode(token)
    assert credentials.authorization == token_of(token)
    assert "=" not in credentials.authorization
    assert parse_authorization(credentials.authorization) == credentials


@pytest.mark.req("AUTH-3", "AUTH-4")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "get"}, "method"),
        ({"method": ""}, "method"),
        ({"method": "A" * 17}, "method"),
        ({"target": "v1/mailbox"}, "target"),
        ({"target": "/v1/mail box"}, "target"),
        ({"target": "/v1/mailbox#top"}, "target"),
        ({"target": "/v1/mailbox?"}, "target"),
        ({"target": "/v1/s\u00e9oul"}, "target"),
        ({"target": "/" + "a" * 2048}, "target"),
        ({"now": -1}, "now"),
        ({"now": 2**40 + 1}, "now"),
        ({"now": True}, "now"),
        ({"relay": "relay-lyon"}, "principal id"),
        ({"principal": "kr.seoul"}, "principal id"),
    ],
)
def test_sign_request_refuses_what_no_relay_could_accept(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        sign(**change)


@pytest.mark.req("AUTH-3")
def test_the_longest_target_and_method_can_be_signed() -> None:
    target = "/" + "a" * 2047
    credentials = sign(method="A" * 16, target=target)
    assert verify(credentials.authorization, method="A" * 16, target=target).target == target


@pytest.mark.req("AUTH-4")
def test_every_request_draws_a_fresh_nonce_from_the_rng() -> None:
    drawn: list[int] = []

    def rng(n: int) -> bytes:
        drawn.append(n)
        return seeded_rng(b"rng")(n)

    credentials = sign_request(
        principal=SEOUL.principal,
        signer=SEOUL.signer,
        relay=RELAY,
        method="GET",
        target="/",
        body=b"",
        now=NOW,
        rng=rng,
    )
    assert drawn == [16]
    assert credentials.nonce == seeded_rng(b"rng")(16)
    assert sign(seed=b"one").nonce != sign(seed=b"two").nonce
    with pytest.raises(UsageError, match="nonce"):
        sign_request(
            principal=SEOUL.principal,
            signer=SEOUL.signer,
            relay=RELAY,
            method="GET",
            target="/",
            body=b"",
            now=NOW,
            rng=lambda n: bytes(n - 1),
        )


@pytest.mark.req("AUTH-4", "AUTH-11")
def test_a_retry_is_signed_again_because_a_signature_is_accepted_once() -> None:
    relay = verifier()
    first = sign(seed=b"attempt 1")
    verify(first.authorization, using=relay)
    with pytest.raises(Replay):
        verify(first.authorization, using=relay, now=NOW + 1)
    retry = sign(seed=b"attempt 2", now=NOW + 1)
    assert verify(retry.authorization, using=relay, now=NOW + 1).principal == SEOUL.principal


@pytest.mark.req("AUTH-5")
def test_credentials_check_their_fields_when_built() -> None:
    good = sign()
    with pytest.raises(UsageError, match="nonce"):
        RequestCredentials(
            good.principal, good.key_id, good.relay, good.timestamp, b"short", good.signature
        )
    with pytest.raises(UsageError, match="principal id"):
        RequestCredentials("x", good.key_id, good.relay, NOW, good.nonce, good.signature)


# --- verification: the field ---------------------------------------------------------------


@pytest.mark.req("AUTH-1", "AUTH-16")
def test_a_signed_request_is_authenticated_as_its_principal() -> None:
    credentials = sign()
    result = verify(credentials.authorization)
    assert result.principal == SEOUL.principal
    assert result.key_id == SEOUL.signer.public_key.key_id
    assert (result.method, result.target, result.timestamp) == ("POST", TARGET, NOW)
    assert result.nonce == credentials.nonce
    assert result.body_hash == request_body_hash(BODY)
    assert repr(result) == f"AuthenticatedRequest('KR.ncb-seoul', POST {TARGET})"
    # the field as raw bytes (ASGI) is the same
    assert verify(credentials.authorization.encode()).principal == SEOUL.principal


@pytest.mark.req("AUTH-16")
def test_only_the_verifier_makes_an_authenticated_request() -> None:
    with pytest.raises(UsageError, match="no public constructor"):
        AuthenticatedRequest(sign(), "POST", TARGET, bytes(32))


@pytest.mark.req("AUTH-1")
def test_exactly_one_authorization_field() -> None:
    value = sign().authorization.encode()
    assert authorization_field([(b"host", b"relay"), (b"Authorization", value)]) == value
    assert authorization_field([(b"host", b"relay")]) is None
    with pytest.raises(MalformedInput, match="more than one"):
        authorization_field([(b"authorization", value), (b"AUTHORIZATION", value)])
    with pytest.raises(MalformedInput, match="no Authorization"):
        verify(None)
    with pytest.raises(UsageError):
        parse_authorization(12)  # type: ignore[arg-type]


@pytest.mark.req("AUTH-6")
def test_the_size_is_checked_before_anything_is_decoded() -> None:
    too_long = b"\xff" * (MAX_AUTHORIZATION_BYTES + 1)  # not even ASCII: the size comes first
    with pytest.raises(LimitExceeded, match="513 bytes exceeds 512"):
        verify(too_long)
    with pytest.raises(MalformedInput, match="ASCII"):
        verify(too_long[:MAX_AUTHORIZATION_BYTES])
    # at the limit, a well-formed token that decodes past the credentials' limit
    at_limit = "NCBR1 " + "A" * (MAX_AUTHORIZATION_BYTES - 6)
    with pytest.raises(LimitExceeded, match="exceeds 256"):
        verify(at_limit)


@pytest.mark.req("AUTH-7")
@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda t: "ncbr1 " + t, None),
        (lambda t: "nCbR1 " + t, None),
        (lambda t: "Bearer " + t, MalformedInput),
        (lambda t: "NCBR2 " + t, UnsupportedVersion),
        (lambda t: "ncbr10 " + t, UnsupportedVersion),
        (lambda t: "NCBR " + t, MalformedInput),
        (lambda t: "NCBR1", MalformedInput),
        (lambda t: "NCBR1 ", MalformedInput),
        (lambda t: "NCBR1  " + t, MalformedInput),
        (lambda t: " NCBR1 " + t, MalformedInput),
        (lambda t: "NCBR1\t" + t, MalformedInput),
        (lambda t: "NCBR1 " + t + " ", MalformedInput),
        (lambda t: "NCBR1 " + t + "==", MalformedInput),
        (lambda t: "NCBR1 " + t + "A", MalformedInput),
        (lambda t: "NCBR1 " + t.replace("-", "+").replace("_", "/"), MalformedInput),
        (lambda t: "NCBR1 " + t + "\n", MalformedInput),
        (lambda t: "NCBR1 " + t[:-1] + "\u00e9", MalformedInput),
    ],
)
def test_the_field_syntax_is_strict(make: Any, error: type[Exception] | None) -> None:
    token = sign().authorization.removeprefix("NCBR1 ")
    assert "-" in token or "_" in token  # so that the standard-alphabet case differs
    value = make(token)
    if error is None:
        assert verify(value).principal == SEOUL.principal
    else:
        with pytest.raises(error):
            verify(value)


@pytest.mark.req("AUTH-7")
def test_base64url_is_canonical() -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for extra in (b"", b"\x00", b"\x00\x00"):  # 0, 4 and 2 unused bits at the end
        data = codec.encode([sign().token, extra])  # any bytes will do: base64 comes first
        text = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
        if len(text) % 4:
            bumped = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
            with pytest.raises(MalformedInput, match="canonical base64url"):
                verify("NCBR1 " + bumped)


@pytest.mark.req("AUTH-8")
@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda f: f[:5], MalformedInput),
        (lambda f: [*f, b""], LimitExceeded),
        (lambda f: {"a": 1}, LimitExceeded),
        (lambda f: "a string", MalformedInput),
        (lambda f: [f], LimitExceeded),
        (lambda f: ["kr.ncb-seoul", *f[1:]], MalformedInput),
        (lambda f: [f[0], f[1][:15], *f[2:]], MalformedInput),
        (lambda f: [f[0], "0" * 16, *f[2:]], MalformedInput),
        (lambda f: [*f[:2], "relay", *f[3:]], MalformedInput),
        (lambda f: [*f[:3], True, *f[4:]], MalformedInput),
        (lambda f: [*f[:3], -1, *f[4:]], MalformedInput),
        (lambda f: [*f[:3], 2**40 + 1, *f[4:]], MalformedInput),
        (lambda f: [*f[:4], f[4] + b"\x00", f[5]], MalformedInput),
        (lambda f: [*f[:5], f[5][:63]], MalformedInput),
        (lambda f: [*f[:5], f[5] + bytes(65)], LimitExceeded),
    ],
)
def test_the_credentials_have_six_typed_fields(change: Any, error: type[Exception]) -> None:
    fields = list(sign().fields())
    with pytest.raises(error):
        verify(token_of(change(fields)))


@pytest.mark.req("AUTH-8")
def test_the_credentials_are_canonical_msgpack() -> None:
    raw = sign().token
    at = raw.index(NOW.to_bytes(4, "big")) - 1
    assert raw[at] == 0xCE
    uint64 = raw[:at] + b"\xcf" + NOW.to_bytes(8, "big") + raw[at + 5 :]
    value = "NCBR1 " + base64.urlsafe_b64encode(uint64).rstrip(b"=").decode()
    with pytest.raises(MalformedInput, match="canonical"):
        verify(value)
    with pytest.raises(MalformedInput):
        verify("NCBR1 " + base64.urlsafe_b64encode(raw + b"\xc0").rstrip(b"=").decode())


# --- verification: relay, time, nonces --------------------------------------------------------


@pytest.mark.req("AUTH-9")
def test_a_request_signed_for_another_relay_is_refused() -> None:
    credentials = sign(relay="XP.relay-singapore")
    with pytest.raises(BindingMismatch, match=r"signed for relay XP\.relay-singapore"):
        verify(credentials.authorization)
    with pytest.raises(UsageError):
        RequestVerifier(relay="lyon", directory=DIRECTORY, nonces=NonceCache(since=None))
    with pytest.raises(UsageError):
        RequestVerifier(relay=RELAY, directory=DIRECTORY, nonces=set())  # type: ignore[arg-type]


@pytest.mark.req("AUTH-10")
@pytest.mark.parametrize(
    ("offset", "error"),
    [(-61, StaleMessage), (-60, None), (0, None), (60, None), (61, FutureDated)],
)
def test_the_time_window_is_max_skew_either_side(
    offset: int, error: type[Exception] | None
) -> None:
    credentials = sign(now=NOW + offset)
    if error is None:
        assert verify(credentials.authorization).timestamp == NOW + offset
    else:
        with pytest.raises(error):
            verify(credentials.authorization)


@pytest.mark.req("AUTH-10")
def test_max_skew_is_bounded_and_configurable() -> None:
    for bad in (-1, 301, True, 1.5):
        with pytest.raises(UsageError):
            NonceCache(since=None, max_skew=bad)  # type: ignore[arg-type]
    for bad_entries in (0, True):
        with pytest.raises(UsageError):
            NonceCache(since=None, max_entries=bad_entries)
    assert NonceCache(since=None).max_skew == 60
    strict = verifier(max_skew=0)
    with pytest.raises(StaleMessage):
        verify(sign(now=NOW - 1).authorization, using=strict)
    verify(sign().authorization, using=strict)


@pytest.mark.req("AUTH-10", "AUTH-11")
def test_a_clock_stepped_back_does_not_reopen_the_window() -> None:
    relay = verifier()
    verify(sign(now=NOW + 100, seed=b"late").authorization, now=NOW + 100, using=relay)
    # the relay's clock goes back 100 s: a request dated NOW - 10 is inside [now - 60, now + 60]
    # but may be one whose nonce was forgotten at the later time
    with pytest.raises(StaleMessage, match="110 s in the past"):
        verify(sign(now=NOW - 10).authorization, now=NOW, using=relay)
    verify(sign(now=NOW + 40, seed=b"ok").authorization, now=NOW, using=relay)


@pytest.mark.req("AUTH-11")
def test_nonces_are_remembered_per_principal_until_the_window_closes() -> None:
    nonces = NonceCache(since=None, max_skew=60, max_entries=10)
    n = bytes(16)
    nonces.record("KR.ncb-seoul", n, NOW, NOW)
    nonces.record("MA.ncb-rabat", n, NOW, NOW)  # another principal's nonce space
    with pytest.raises(Replay, match="already used"):
        nonces.check("KR.ncb-seoul", n, NOW, NOW + 60)
    # from NOW + 61 the window refuses the request, and the pair may go
    with pytest.raises(StaleMessage):
        nonces.check("KR.ncb-seoul", n, NOW, NOW + 61)
    nonces.record("FR.ncb-paris", n, NOW + 60, NOW + 60)
    assert len(nonces) == 3
    nonces.record("FR.ncb-paris", b"\x01" * 16, NOW + 61, NOW + 61)
    assert len(nonces) == 2  # both NOW pairs forgotten


@pytest.mark.req("AUTH-11")
def test_a_full_memory_refuses_and_never_forgets_a_live_pair() -> None:
    relay = verifier(max_entries=2)
    verify(sign(seed=b"1").authorization, using=relay)
    verify(sign(seed=b"2").authorization, using=relay)
    with pytest.raises(LimitExceeded, match="full"):
        verify(sign(seed=b"3").authorization, using=relay)
    with pytest.raises(Replay):
        verify(sign(seed=b"1").authorization, using=relay, now=NOW + 60)
    assert len(relay.nonces) == 2
    # once the window has closed on the old pairs, there is room again
    verify(sign(seed=b"3", now=NOW + 61).authorization, using=relay, now=NOW + 61)
    assert len(relay.nonces) == 1


@pytest.mark.req("AUTH-12")
def test_after_a_restart_requests_it_may_have_seen_are_refused() -> None:
    restart = NOW - 30
    relay = verifier(since=restart)
    assert relay.nonces.ready_at == restart + 60
    assert NonceCache(since=None).ready_at is None
    with pytest.raises(Replay, match="before this relay's nonce memory began"):
        verify(sign().authorization, using=relay)
    with pytest.raises(Replay):
        verify(sign(now=restart + 59).authorization, using=relay)
    ready = NOW + 30
    assert verify(sign(now=ready).authorization, now=ready, using=relay).timestamp == ready
    # a request dated before the restart is stale by then anyway
    with pytest.raises(StaleMessage):
        verify(sign(now=restart - 100).authorization, using=verifier(since=restart))
    with pytest.raises(UsageError):
        NonceCache(since=-5)


# --- verification: keys and the signature ----------------------------------------------------


@pytest.mark.req("AUTH-13")
def test_keys_come_from_the_directory_as_of_the_timestamp() -> None:
    outsider = PrivateIdentity.generate("QZ.nobody", seeded_rng(b"outsider"))
    with pytest.raises(UnknownKey):
        verify(sign(outsider).authorization)
    with pytest.raises(BindingMismatch, match=r"belongs to MA\.ncb-rabat"):
        verify(sign_with(SEOUL.principal, RABAT).authorization)
    enc_id = SEOUL.encryption_keys[0].public_key.key_id
    fields = list(sign().fields())
    with pytest.raises(BindingMismatch, match="not a signing key"):
        verify(token_of([fields[0], enc_id, *fields[2:]]))


def sign_with(principal: str, holder: PrivateIdentity, **kwargs: Any) -> RequestCredentials:
    return sign_request(
        principal=principal,
        signer=holder.signer,
        relay=RELAY,
        method=kwargs.get("method", "POST"),
        target=TARGET,
        body=BODY,
        now=kwargs.get("now", NOW),
        rng=seeded_rng(b"nonce"),
    )


@pytest.mark.req("AUTH-13")
def test_the_live_view_refuses_suspended_principals_and_revoked_keys() -> None:
    document, members = genesis()
    seoul = members["KR.ncb-seoul"].identity
    now = T0 + 2 * DAY
    assert verify(
        sign(seoul, now=now).authorization, now=now, using=verifier(directory=loaded(document))
    )
    later = suspend(next_version(document, issued=now - 20), "KR.ncb-seoul")
    relay = verifier(directory=loaded(later))
    with pytest.raises(UnknownKey, match="was suspended"):
        verify(sign(seoul, now=now).authorization, now=now, using=relay)
    # dated before the suspension: the live view refuses it all the same (DIR-11)
    with pytest.raises(UnknownKey, match="is suspended"):
        verify(sign(seoul, now=now - 30).authorization, now=now, using=relay)
    key_id = seoul.signer.public_key.key_id
    revoked = revoke_key(next_version(document, issued=now - 5), "KR.ncb-seoul", key_id, at=now - 5)
    backdated = sign(seoul, now=now - 10)  # dated before the revocation: refused all the same
    with pytest.raises(UnknownKey, match="revoked"):
        verify(backdated.authorization, now=now, using=verifier(directory=loaded(revoked)))


@pytest.mark.req("AUTH-13")
def test_a_rotated_key_is_valid_from_its_own_time() -> None:
    document, members = genesis()
    v2, seoul_2 = rotated(document, members["KR.ncb-seoul"], 1, issued=T0 + 5 * DAY)
    relay = verifier(directory=loaded(v2))
    new = seoul_2.identity
    early, start = T0 + 5 * DAY - 1, T0 + 5 * DAY
    with pytest.raises(UnknownKey, match="not valid at"):
        verify(sign(new, now=early).authorization, now=early, using=relay)
    assert verify(sign(new, now=start).authorization, now=start, using=relay)


@pytest.mark.req("AUTH-14")
@pytest.mark.parametrize(
    "received",
    [
        {"method": "PUT"},
        {"method": "post"},
        {"target": "/v1/mailbox?limit=11"},
        {"target": "/v1/mailbox"},
        {"target": "/v1/mailbox?limit=10&limit=10"},
        {"target": "/v1/%6dailbox?limit=10"},
        {"target": "/v1/./mailbox?limit=10"},
        {"target": "/v1/mailbox?limit=10\u00e9"},
        {"body": BODY + b"\x00"},
        {"body": BODY[:-1]},
        {"body": b""},
    ],
)
def test_the_signature_covers_the_request_as_received(received: dict[str, Any]) -> None:
    with pytest.raises(BadSignature):
        verify(sign().authorization, **received)


@pytest.mark.req("AUTH-14")
def test_a_signature_by_another_key_or_altered_is_refused() -> None:
    good = sign()
    fields = list(good.fields())
    forged = request_signature_input(
        method="POST",
        target=TARGET,
        body_hash=request_body_hash(BODY),
        timestamp=NOW,
        nonce=good.nonce,
        relay=RELAY,
        principal=SEOUL.principal,
        key_id=good.key_id,
    )
    with pytest.raises(BadSignature):
        verify(token_of([*fields[:5], RABAT.signer.sign(forged)]))
    flipped = bytes([good.signature[0] ^ 1]) + good.signature[1:]
    with pytest.raises(BadSignature):
        verify(token_of([*fields[:5], flipped]))
    relabelled = RABAT.signer.sign(forged[len(REQUEST_SIGNATURE_LABEL) :])
    with pytest.raises(BadSignature):
        verify(token_of([*fields[:5], relabelled]))


@pytest.mark.req("AUTH-14")
def test_verify_refuses_arguments_of_the_wrong_type() -> None:
    value = sign().authorization
    with pytest.raises(UsageError):
        verify(value, target=b"/v1")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        verify(value, body="text")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        verify(value, now=-1)


# --- the order of checks, and what a refusal leaves behind -------------------------------------


@pytest.mark.req("AUTH-15")
def test_the_first_failed_check_decides_the_code() -> None:
    outsider = PrivateIdentity.generate("QZ.nobody", seeded_rng(b"outsider"))
    cases: list[tuple[str, type[Exception]]] = [
        # misdirected and stale: the relay id comes first
        (sign(relay="XP.relay-singapore", now=NOW - 100).authorization, BindingMismatch),
        # stale and unknown key: the window comes first
        (sign(outsider, now=NOW - 100).authorization, StaleMessage),
        # future-dated before stale cannot both hold; future-dated and unknown key
        (sign(outsider, now=NOW + 100).authorization, FutureDated),
    ]
    for value, error in cases:
        with pytest.raises(error):
            verify(value)
    relay = verifier()
    verify(sign().authorization, using=relay)
    # replayed and changed body: the nonce comes before the signature
    with pytest.raises(Replay):
        verify(sign().authorization, body=b"other", using=relay)
    # unknown key and a changed body: the key comes before the signature
    with pytest.raises(UnknownKey):
        verify(sign(outsider).authorization, body=b"other")


@pytest.mark.req("AUTH-15")
def test_a_refused_request_records_nothing() -> None:
    relay = verifier()
    genuine = sign()
    with pytest.raises(BadSignature):
        verify(genuine.authorization, body=b"tampered", using=relay)
    assert len(relay.nonces) == 0
    assert verify(genuine.authorization, using=relay).principal == SEOUL.principal
    assert len(relay.nonces) == 1


@pytest.mark.req("AUTH-15")
def test_the_checks_that_need_no_body_can_run_first() -> None:
    relay = verifier()
    outsider = PrivateIdentity.generate("QZ.nobody", seeded_rng(b"outsider"))
    genuine = sign()
    assert relay.check_credentials(authorization=genuine.authorization, now=NOW) == genuine
    for value, error in (
        (None, MalformedInput),
        (sign(relay="XP.relay-singapore").authorization, BindingMismatch),
        (sign(now=NOW - 61).authorization, StaleMessage),
        (sign(outsider).authorization, UnknownKey),
    ):
        with pytest.raises(error):
            relay.check_credentials(authorization=value, now=NOW)
    assert len(relay.nonces) == 0  # nothing recorded, and the body is checked later
    with pytest.raises(BadSignature):
        verify(genuine.authorization, body=b"other", using=relay)
    verify(genuine.authorization, using=relay)
    with pytest.raises(Replay):
        relay.check_credentials(authorization=genuine.authorization, now=NOW)


@pytest.mark.req("AUTH-15", "AUTH-11")
def test_recording_repeats_the_checks() -> None:
    nonces = NonceCache(since=None)
    n = b"\x07" * 16
    nonces.check("KR.ncb-seoul", n, NOW, NOW)  # two copies both pass the first check ...
    nonces.check("KR.ncb-seoul", n, NOW, NOW)
    nonces.record("KR.ncb-seoul", n, NOW, NOW)  # ... and only the first is recorded
    with pytest.raises(Replay):
        nonces.record("KR.ncb-seoul", n, NOW, NOW)


# --- property: any single-byte change is refused ----------------------------------------------

SIGNED = sign(method="POST", target=TARGET, body=BODY)
PARTS = {
    "authorization": SIGNED.authorization.encode("ascii"),
    "method": b"POST",
    "target": TARGET.encode("ascii"),
    "body": BODY,
}


def _same_scheme(part: str, original: bytes, changed: bytes) -> bool:
    """Changing the case of a scheme letter gives the same field (RFC 9110 Section 11.1)."""
    return part == "authorization" and changed[:5].upper() == original[:5].upper() == b"NCBR1"


@pytest.mark.req("AUTH-7", "AUTH-8", "AUTH-14")
@given(
    part=st.sampled_from(sorted(PARTS)),
    where=st.integers(min_value=0),
    delta=st.integers(min_value=1, max_value=255),
)
def test_any_single_byte_change_is_refused(part: str, where: int, delta: int) -> None:
    original = PARTS[part]
    at = where % len(original)
    changed = bytearray(original)
    changed[at] = (changed[at] + delta) % 256
    if _same_scheme(part, original, bytes(changed)):
        return
    request = dict(PARTS)
    request[part] = bytes(changed)
    with pytest.raises(ProtocolError):
        verifier().verify(
            method=request["method"].decode("latin-1"),
            target=request["target"].decode("latin-1"),
            body=request["body"],
            authorization=request["authorization"],
            now=NOW,
        )


@pytest.mark.req("AUTH-6", "AUTH-7", "AUTH-8")
@given(st.binary(max_size=600))
def test_arbitrary_field_values_never_escape_the_error_tree(value: bytes) -> None:
    with pytest.raises(ProtocolError):
        verify(value)
