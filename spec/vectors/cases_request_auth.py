"""request-auth.json: signing and verifying relay requests (spec/relay-api.md, AUTH-1 .. AUTH-16).

Everything is fixed: the clock (``principals.NOW``), the keys (the test
principals), the nonces (BLAKE2b of a label) and the relay id.  Ed25519
signatures are deterministic, so every signature here can be recomputed from
the published seeds.  Hostile credentials are built from the library's pieces
(the signed bytes, the canonical codec, base64url), never by patching it.

:func:`build` runs the library's :class:`~ncb_relay.request_auth.RequestVerifier`
on every case and raises if it disagrees with the expected outcome.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from principals import CAST, NOW, OUTSIDER, A, C, Principal, S, derive, principals_json
from vectorfile import JSON, document

from ncb_relay import codec
from ncb_relay.directory import StaticDirectory
from ncb_relay.errors import NcbRelayError
from ncb_relay.request_auth import (
    MAX_AUTHORIZATION_BYTES,
    PERSON_REQUEST_BODY,
    REQUEST_SIGNATURE_LABEL,
    TOKEN_LIMITS,
    NonceCache,
    RequestCredentials,
    RequestVerifier,
    request_body_hash,
    request_signature_input,
    sign_request,
)

MAX_SKEW = 60
RELAY = "XP.relay-lyon"
OTHER_RELAY = "XP.relay-singapore"
PERSON_TV_NONCE = b"NCBR1 tv nonce"
D = CAST["DE.ncb-wiesbaden"]  # a longer id: its credentials end in a partial base64 group
PRINCIPALS = (S, A, C, D, OUTSIDER)
DIRECTORY = StaticDirectory(p.identity.public for p in PRINCIPALS if p.in_directory)

MAILBOX = "/v1/mailbox?limit=10"
SUBMIT = "/v1/envelopes"
BODY = bytes.fromhex("93c4b5") + b"an envelope would be here" + bytes(range(16))

NOTES: JSON = {
    "Valid": "A request signed as AUTH-3 to AUTH-5 say, verified at 'now'.",
    "Boundary": "At the edge of what is allowed (and allowed).",
    "Misdirected": "Signed for another relay (AUTH-9).",
    "RequestChanged": "The method, target or body received differs from the one signed; the "
    "relay rebuilds the signed bytes from what it received, so the signature fails (AUTH-14).",
    "Freshness": "Dated outside the window of AUTH-10.",
    "Replay": "A nonce already accepted, or a request the relay cannot prove it has not seen "
    "(AUTH-11, AUTH-12).",
    "UnknownKey": "A key id the directory does not list (AUTH-13).",
    "KeyBinding": "A key id of another principal, or not a signing key (AUTH-13).",
    "BadSignature": "The signature does not verify with the listed key (AUTH-14).",
    "Size": "The field or the decoded credentials exceed their limit (AUTH-6, AUTH-8).",
    "NonCanonical": "Not the single canonical base64url or msgpack encoding (AUTH-7, AUTH-8).",
    "Syntax": "Not the NCBR1 scheme, one space and a token (AUTH-1, AUTH-7).",
    "Version": "Another version of the scheme (AUTH-7).",
    "Layout": "The credentials array has the wrong shape or field types (AUTH-8).",
}


def nonce(label: str) -> bytes:
    return derive(label, PERSON_TV_NONCE)[:16]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Request:
    """A request as signed: what the client sent."""

    method: str
    target: str
    body: bytes
    timestamp: int
    nonce_label: str
    principal: Principal = S
    relay: str = RELAY

    @property
    def nonce(self) -> bytes:
        return nonce(self.nonce_label)

    def sign(self, signer: Principal | None = None) -> RequestCredentials:
        rng_values = [self.nonce]
        return sign_request(
            principal=self.principal.id,
            signer=(signer or self.principal).signing,
            relay=self.relay,
            method=self.method,
            target=self.target,
            body=self.body,
            now=self.timestamp,
            rng=lambda n: rng_values.pop(0),
        )

    def signature_input(self, key_id: bytes) -> bytes:
        return request_signature_input(
            method=self.method,
            target=self.target,
            body_hash=request_body_hash(self.body),
            timestamp=self.timestamp,
            nonce=self.nonce,
            relay=self.relay,
            principal=self.principal.id,
            key_id=key_id,
        )


GET = Request("GET", MAILBOX, b"", NOW, "mailbox")
POST = Request("POST", SUBMIT, BODY, NOW, "submit")
ACK = Request("DELETE", "/v1/mailbox/" + "ab" * 32, b"", NOW - 7, "ack", principal=D)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def sign_group() -> list[JSON]:
    tests: list[JSON] = []
    for comment, request in (
        ("fetch a mailbox: GET with a query and an empty body", GET),
        ("submit an envelope: POST with a body", POST),
        (
            "acknowledge: DELETE by another bureau, a long target",
            ACK,
        ),
    ):
        credentials = request.sign()
        key_id = request.principal.signing_key_id
        signed = request.signature_input(key_id)
        if credentials.signature != request.principal.signing.sign(signed):
            raise AssertionError(f"sign_request and the piecewise signature differ: {comment}")
        tests.append(
            {
                "comment": comment,
                "flags": ["Valid"],
                "requirements": ["AUTH-2", "AUTH-3", "AUTH-4", "AUTH-5"],
                "principal": request.principal.id,
                "relay": request.relay,
                "method": request.method,
                "target": request.target,
                "body": request.body.hex(),
                "timestamp": request.timestamp,
                "nonce": request.nonce.hex(),
                "bodyHash": request_body_hash(request.body).hex(),
                "signatureInput": signed.hex(),
                "signature": credentials.signature.hex(),
                "credentials": credentials.token.hex(),
                "authorization": credentials.authorization,
                "result": "valid",
            }
        )
    return tests


@dataclass
class Received:
    """A request as the relay receives it, with the relay's state."""

    method: str
    target: str
    body: bytes
    authorization: str | None
    now: int = NOW
    since: int | None = None
    accepted: list[tuple[str, bytes, int, int]] = field(default_factory=list)


def received(request: Request, authorization: str | None = None, **changes: Any) -> Received:
    auth = request.sign().authorization if authorization is None else authorization
    return Received(request.method, request.target, request.body, auth, **changes)


def outcome(case: Received) -> tuple[str | None, JSON]:
    nonces = NonceCache(since=case.since, max_skew=MAX_SKEW)
    for principal, used, timestamp, now in case.accepted:
        nonces.record(principal, used, timestamp, now)
    verifier = RequestVerifier(relay=RELAY, directory=DIRECTORY, nonces=nonces)
    try:
        result = verifier.verify(
            method=case.method,
            target=case.target,
            body=case.body,
            authorization=case.authorization,
            now=case.now,
        )
    except NcbRelayError as exc:
        return exc.code, {}
    return None, {"principal": result.principal, "keyId": result.key_id.hex()}


def token_with(fields: list[codec.Value]) -> str:
    return "NCBR1 " + b64(codec.encode(fields))


def verify_group() -> list[JSON]:
    tests: list[JSON] = []

    def case(
        comment: str, flags: list[str], reqs: list[str], rx: Received, error: str | None
    ) -> None:
        got, out = outcome(rx)
        if got != error:
            raise AssertionError(f"request-auth.json {comment!r}: expected {error}, got {got}")
        test: JSON = {
            "comment": comment,
            "flags": flags,
            "requirements": reqs,
            "method": rx.method,
            "target": rx.target,
            "body": rx.body.hex(),
            "authorization": rx.authorization,
            "now": rx.now,
            "since": rx.since,
            "accepted": [
                {"principal": p, "nonce": n.hex(), "timestamp": t, "now": at}
                for p, n, t, at in rx.accepted
            ],
        }
        if error is None:
            test.update(result="valid", **out)
        else:
            test.update(result="invalid", error=error)
        tests.append(test)

    get = GET.sign()
    get_auth = get.authorization
    token = get_auth.removeprefix("NCBR1 ")
    fields: list[codec.Value] = [*get.fields()]
    valid = ["Valid"]

    # --- valid requests, and the edges of the window ------------------------------------------
    case("GET a mailbox", valid, ["AUTH-1", "AUTH-14", "AUTH-15", "AUTH-16"], received(GET), None)
    case("POST an envelope", valid, ["AUTH-2", "AUTH-14"], received(POST), None)
    case("DELETE by DE.ncb-wiesbaden", valid, ["AUTH-14"], received(ACK), None)
    case(
        "the scheme in lower case",
        ["Valid", "Syntax"],
        ["AUTH-7"],
        received(GET, "ncbr1 " + token),
        None,
    )
    for offset, label in ((-MAX_SKEW, "max_skew late"), (MAX_SKEW, "max_skew early")):
        rq = Request("GET", MAILBOX, b"", NOW + offset, f"edge {offset}")
        case(f"dated {label}", ["Valid", "Boundary"], ["AUTH-10"], received(rq), None)
    case(
        "the same nonce was accepted from another principal",
        ["Valid", "Replay"],
        ["AUTH-11"],
        received(GET, accepted=[(A.id, GET.nonce, NOW, NOW)]),
        None,
    )
    case(
        "restarted max_skew seconds ago without its nonces",
        ["Valid", "Boundary"],
        ["AUTH-12"],
        received(GET, since=NOW - MAX_SKEW),
        None,
    )

    # --- the relay and the request as received ---------------------------------------------
    case(
        "signed for another relay",
        ["Misdirected"],
        ["AUTH-9"],
        received(Request("GET", MAILBOX, b"", NOW, "mailbox", relay=OTHER_RELAY)),
        "binding-mismatch",
    )
    changed = ["RequestChanged"]
    for comment, method, target, body in (
        ("signed GET, received HEAD", "HEAD", MAILBOX, b""),
        ("signed GET, received get (not a method of AUTH-3)", "get", MAILBOX, b""),
        ("another query value", "GET", "/v1/mailbox?limit=11", b""),
        ("the query dropped", "GET", "/v1/mailbox", b""),
        ("a percent-encoded path (no normalisation)", "GET", "/v1/%6dailbox?limit=10", b""),
        ("a body added to the GET", "GET", MAILBOX, b"\x00"),
    ):
        case(
            comment, changed, ["AUTH-14"], Received(method, target, body, get_auth), "bad-signature"
        )
    post_auth = POST.sign().authorization
    case(
        "a byte appended to the body",
        changed,
        ["AUTH-2", "AUTH-14"],
        Received("POST", SUBMIT, BODY + b"\x00", post_auth),
        "bad-signature",
    )
    case(
        "the body of another request",
        changed,
        ["AUTH-2", "AUTH-14"],
        Received("POST", SUBMIT, BODY[:-1] + b"\x10", post_auth),
        "bad-signature",
    )
    case(
        "a path on another endpoint",
        changed,
        ["AUTH-14"],
        Received("POST", "/v1/envelopes/check", BODY, post_auth),
        "bad-signature",
    )

    # --- time and replay ---------------------------------------------------------------------
    for offset, code, label in (
        (-MAX_SKEW - 1, "stale", "max_skew + 1 late"),
        (MAX_SKEW + 1, "future-dated", "max_skew + 1 early"),
        (-86_400, "stale", "a day old"),
    ):
        rq = Request("GET", MAILBOX, b"", NOW + offset, f"edge {offset}")
        case(f"dated {label}", ["Freshness"], ["AUTH-10"], received(rq), code)
    case(
        "the nonce was accepted before (a replay)",
        ["Replay"],
        ["AUTH-11"],
        received(GET, accepted=[(S.id, GET.nonce, NOW, NOW)]),
        "replay",
    )
    case(
        "the same request again, max_skew seconds later",
        ["Replay"],
        ["AUTH-11"],
        received(GET, now=NOW + MAX_SKEW, accepted=[(S.id, GET.nonce, NOW, NOW)]),
        "replay",
    )
    case(
        "restarted 30 seconds ago without its nonces",
        ["Replay"],
        ["AUTH-12"],
        received(GET, since=NOW - 30),
        "replay",
    )
    case(
        "the clock went back 100 seconds after a request was accepted",
        ["Freshness"],
        ["AUTH-10"],
        received(
            Request("GET", MAILBOX, b"", NOW - 10, "backwards"),
            accepted=[(A.id, nonce("later"), NOW + 100, NOW + 100)],
        ),
        "stale",
    )

    # --- keys and signatures ----------------------------------------------------------------
    outsider = Request("GET", MAILBOX, b"", NOW, "outsider", principal=OUTSIDER)
    case(
        "signed by a principal not in the directory",
        ["UnknownKey"],
        ["AUTH-13"],
        received(outsider),
        "unknown-key",
    )
    case(
        "KR.ncb-seoul's request signed with MA.ncb-rabat's key",
        ["KeyBinding"],
        ["AUTH-13"],
        received(GET, GET.sign(signer=A).authorization),
        "binding-mismatch",
    )
    enc_id = S.encryption_key_id
    wrong_kind = S.signing.sign(GET.signature_input(enc_id))
    case(
        "the key id of KR.ncb-seoul's encryption key",
        ["KeyBinding"],
        ["AUTH-13"],
        received(GET, token_with([S.id, enc_id, RELAY, NOW, GET.nonce, wrong_kind])),
        "binding-mismatch",
    )
    forged = C.signing.sign(GET.signature_input(S.signing_key_id))
    case(
        "KR.ncb-seoul's key id, signed by FR.ncb-paris",
        ["BadSignature"],
        ["AUTH-13", "AUTH-14"],
        received(GET, token_with([*fields[:5], forged])),
        "bad-signature",
    )
    flipped = bytearray(get.signature)
    flipped[10] ^= 0x01
    case(
        "one bit of the signature flipped",
        ["BadSignature"],
        ["AUTH-14"],
        received(GET, token_with([*fields[:5], bytes(flipped)])),
        "bad-signature",
    )

    # --- the field: size, syntax, encodings ---------------------------------------------------
    no_field = Received("GET", MAILBOX, b"", None)
    case("no Authorization field", ["Syntax"], ["AUTH-1"], no_field, "malformed")
    oversized = "NCBR1 " + "A" * (MAX_AUTHORIZATION_BYTES - 5)
    case("a field of 513 bytes", ["Size"], ["AUTH-6"], received(GET, oversized), "limit-exceeded")
    at_limit = "NCBR1 " + b64(bytes(379))[: MAX_AUTHORIZATION_BYTES - 6]
    case(
        "a field of 512 bytes whose credentials decode to 379 bytes",
        ["Size"],
        ["AUTH-6", "AUTH-8"],
        received(GET, at_limit),
        "limit-exceeded",
    )
    standard = base64.b64encode(get.token).rstrip(b"=").decode("ascii")
    ack_token = ACK.sign().authorization.removeprefix("NCBR1 ")
    if len(ack_token) % 4 != 2:
        raise AssertionError("the DELETE credentials should end in a group of 2 characters")
    low_bits = ack_token[:-1] + ALPHABET[ALPHABET.index(ack_token[-1]) ^ 1]
    syntax, non_canonical = ["Syntax"], ["NonCanonical"]
    for comment, value, code, flags in (
        ("scheme Bearer", "Bearer " + token, "malformed", syntax),
        ("scheme NCBR2", "NCBR2 " + token, "unsupported-version", ["Version"]),
        ("two spaces after the scheme", "NCBR1  " + token, "malformed", syntax),
        ("a trailing space", f"NCBR1 {token} ", "malformed", syntax),
        ("the scheme alone", "NCBR1", "malformed", syntax),
        ("base64url with '=' padding", f"NCBR1 {token}=", "malformed", non_canonical),
        ("standard base64 alphabet", f"NCBR1 {standard}", "malformed", non_canonical),
        ("a token of 4n + 1 characters", f"NCBR1 {token}A", "malformed", non_canonical),
    ):
        case(comment, flags, ["AUTH-7"], received(GET, value), code)
    case(
        "an unused low bit of the last character set",
        non_canonical,
        ["AUTH-7"],
        received(ACK, f"NCBR1 {low_bits}"),
        "malformed",
    )
    raw = get.token
    timestamp_at = raw.index(NOW.to_bytes(4, "big")) - 1  # the uint 32 marker 0xce
    uint64 = raw[:timestamp_at] + b"\xcf" + NOW.to_bytes(8, "big") + raw[timestamp_at + 5 :]
    case(
        "the timestamp as uint 64 (not the shortest form)",
        ["NonCanonical"],
        ["AUTH-8"],
        received(GET, "NCBR1 " + b64(uint64)),
        "malformed",
    )
    layout = ["Layout"]
    layouts: list[tuple[str, list[codec.Value], str]] = [
        ("five fields (no signature)", fields[:5], "malformed"),
        ("seven fields", [*fields, b""], "limit-exceeded"),
        ("a 15-byte nonce", [*fields[:4], GET.nonce[:15], get.signature], "malformed"),
        ("the timestamp true", [*fields[:3], True, *fields[4:]], "malformed"),
        ("the timestamp 2**40 + 1", [*fields[:3], 2**40 + 1, *fields[4:]], "malformed"),
        ("the principal id in lower case", ["kr.ncb-seoul", *fields[1:]], "malformed"),
        ("the key id as str", [fields[0], "0" * 16, *fields[2:]], "malformed"),
        ("the relay id as bin", [*fields[:2], RELAY.encode(), *fields[3:]], "malformed"),
    ]
    for comment, shape, code in layouts:
        case(comment, layout, ["AUTH-8"], received(GET, token_with(shape)), code)
    return tests


def build() -> dict[str, Any]:
    """``{"request-auth.json": document}``; raises if the library disagrees with any case."""
    limits = TOKEN_LIMITS
    doc = document(
        algorithm="NCBR1-REQUEST: ED25519-BLAKE2B, base64url(msgpack)",
        header=[
            "Request authentication (spec/relay-api.md, AUTH-1 to AUTH-16): signing with fixed "
            "nonces and every intermediate value (RequestSign), and verifying requests as a "
            "relay with the exact error code (RequestVerify).",
            "The relay's id is 'relay'; its directory is the principals with inDirectory true, "
            "each with one signing key valid at every time. The keys are test keys.",
        ],
        notes=NOTES,
        fields={
            "relay": RELAY,
            "maxSkew": MAX_SKEW,
            "signatureLabel": REQUEST_SIGNATURE_LABEL.hex(),
            "bodyPersonalisation": PERSON_REQUEST_BODY.decode("ascii"),
            "maxAuthorizationBytes": MAX_AUTHORIZATION_BYTES,
            "credentialLimits": {
                "maxBytes": limits.max_bytes,
                "maxStrBytes": limits.max_str_bytes,
                "maxBinBytes": limits.max_bin_bytes,
                "maxArrayItems": limits.max_array_items,
                "maxMapItems": limits.max_map_items,
                "maxDepth": limits.max_depth,
            },
            "principals": principals_json(PRINCIPALS),
        },
        groups=[("RequestSign", sign_group()), ("RequestVerify", verify_group())],
    )
    return {"request-auth.json": doc}
