"""Message bodies on the wire: the frame, strict content, opaque bodies (MSG-1, MSG-2, MSG-5).

Bounds, error reporting and the rules across fields are in test_message_rules.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from message_samples import (
    DELETE,
    H0,
    PARIS,
    RABAT,
    acknowledgement,
    diffusion,
    edited,
    every_body,
    field_of,
    refused,
    request,
)
from ncb_relay import UsageError, codec
from ncb_relay.codec import Value
from ncb_relay.messages import (
    BUILTIN_BODIES,
    AssistanceRequest,
    Body,
    OpaqueBody,
    Person,
    Subjects,
    decode_body,
    encode_body,
)

# --- MSG-1: the frame --------------------------------------------------------------------


@pytest.mark.req("MSG-1", "MSG-2", "HAND-1")
@pytest.mark.parametrize("body", every_body(), ids=lambda b: b.schema_id)
def test_every_body_round_trips_through_its_canonical_encoding(body: Body) -> None:
    data = encode_body(body)
    outer = codec.decode(data)
    assert isinstance(outer, dict)
    assert list(outer) == ["content", "schema", "version"]
    assert (outer["schema"], outer["version"]) == (body.schema_id, body.schema_version)
    content = outer["content"]
    assert isinstance(content, dict)
    assert set(content) == set(type(body).model_fields)  # every field written, None as nil
    assert "handling" in content
    decoded = decode_body(data)
    assert type(decoded) is type(body)
    assert decoded == body
    assert encode_body(decoded) == data


@pytest.mark.req("MSG-1")
def test_the_built_in_bodies_are_the_eleven_of_the_spec() -> None:
    assert sorted(b.schema_id for b in BUILTIN_BODIES) == [
        "ncbr.acknowledgement",
        "ncbr.assistance-request",
        "ncbr.assistance-response",
        "ncbr.delivery-receipt",
        "ncbr.diffusion",
        "ncbr.dissemination-permission",
        "ncbr.error-report",
        "ncbr.forward",
        "ncbr.notice",
        "ncbr.status-update",
        "ncbr.withdrawal",
    ]
    assert {b.schema_version for b in BUILTIN_BODIES} == {1}


@pytest.mark.req("MSG-1")
def test_optional_fields_may_be_omitted_and_are_written_back() -> None:
    data = edited(acknowledgement(), "content.reference", DELETE)
    decoded = decode_body(data)
    assert decoded == acknowledgement(reference=None)
    full = encode_body(decoded)
    assert full != data
    written: Any = codec.decode(full)
    assert written["content"]["reference"] is None
    decoded_request = decode_body(edited(request(), "content.subjects.persons", DELETE))
    assert isinstance(decoded_request, AssistanceRequest)
    assert decoded_request.subjects.persons == ()


def frame(**fields: Value) -> bytes:
    base: dict[str, Value] = {"content": {}, "schema": "ncbr.withdrawal", "version": 1}
    base.update(fields)
    return codec.encode({k: v for k, v in base.items() if v is not DELETE})


FRAMES: list[tuple[str, bytes, str | None, str]] = [
    ("an array", codec.encode([1, 2]), None, "wrong-type"),
    ("text", codec.encode("body"), None, "wrong-type"),
    ("a fourth key", frame(extra=1), "extra", "unexpected"),
    ("a strange fourth key", frame(**{"A b": 1}), "'A b'", "unexpected"),
    ("no content", frame(content=DELETE), "content", "missing"),  # type: ignore[arg-type]
    ("no schema", frame(schema=DELETE), "schema", "missing"),  # type: ignore[arg-type]
    ("no version", frame(version=DELETE), "version", "missing"),  # type: ignore[arg-type]
    ("schema as bin", frame(schema=b"ncbr.withdrawal"), "schema", "wrong-type"),
    ("schema of one label", frame(schema="withdrawal"), "schema", "bad-format"),
    ("schema in upper case", frame(schema="NCBR.Withdrawal"), "schema", "bad-format"),
    ("schema too long", frame(schema="a." + "b" * 127), "schema", "bad-format"),
    ("version as text", frame(version="1"), "version", "wrong-type"),
    ("version as a boolean", frame(version=True), "version", "wrong-type"),
    ("version 0", frame(version=0), "version", "out-of-range"),
    ("version 65536", frame(version=65536), "version", "out-of-range"),
    ("content as an array", frame(content=[]), "content", "wrong-type"),
    ("content as nil", frame(content=None), "content", "wrong-type"),
]


@pytest.mark.req("MSG-1", "MSG-4")
@pytest.mark.parametrize(("what", "data", "field", "reason"), FRAMES, ids=[f[0] for f in FRAMES])
def test_a_wrong_frame_is_refused_naming_the_key(
    what: str, data: bytes, field: str | None, reason: str
) -> None:
    error = refused(data)
    assert (error.code, error.field, error.reason) == ("invalid-body", field, reason)


@pytest.mark.req("MSG-1", "MSG-4")
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "malformed"),
        (b"\xc1", "malformed"),
        (b"\x82\xa6schema\xa1x\xa7content\x80", "malformed"),  # keys out of order
        (b"\x81\xa1a\xcb" + bytes(8), "malformed"),  # a float
        (b"\x91" * 9 + b"\x90", "limit-exceeded"),  # nested deeper than 8
    ],
)
def test_bytes_that_are_not_a_canonical_body_are_refused(data: bytes, reason: str) -> None:
    error = refused(data)
    assert (error.field, error.reason) == (None, reason)


@pytest.mark.req("MSG-1")
def test_encoding_and_decoding_take_bodies_and_bytes_only() -> None:
    with pytest.raises(UsageError):
        decode_body(bytearray(encode_body(every_body()[4])))  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        encode_body(H0)  # type: ignore[arg-type]


# --- MSG-2: strict content ---------------------------------------------------------------

# (what, dotted path in a request, new value, kind of fault); the field named is the path
WRONG: list[tuple[str, str, object, str]] = [
    ("a missing required field", "content.legal_basis", DELETE, "missing"),
    ("a missing record", "content.urgency", DELETE, "missing"),
    ("an unknown field", "content.priority", "high", "unexpected"),
    ("an unknown field in a record", "content.urgency.hours", 8, "unexpected"),
    ("an unknown field in a list item", "content.subjects.websites.0.rank", 1, "unexpected"),
    ("a handling code outside H0-H3", "content.handling.code", "H4", "not-allowed"),
    ("a reliability outside A/B/C/X", "content.handling.source_reliability", "D", "not-allowed"),
    ("an action outside the vocabulary", "content.requested_actions.1", "extradite", "not-allowed"),
    ("a role outside the vocabulary", "content.subjects.persons.0.role", "boss", "not-allowed"),
    ("a value in another case", "content.offences.0.category", "Fraud", "not-allowed"),
    ("an integer as text", "content.handling.information_accuracy", "2", "wrong-type"),
    ("an integer as a boolean", "content.subjects.ip_addresses.0.port", True, "wrong-type"),
    ("text as bin", "content.summary", b"SkyManga", "wrong-type"),
    ("text as an integer", "content.case_reference", 42, "wrong-type"),
    ("a list as a map", "content.languages", {"ko": True}, "wrong-type"),
    ("a record as a list", "content.originating_authority", ["MCST", "KR"], "wrong-type"),
    ("a required value as nil", "content.summary", None, "wrong-type"),
    ("accuracy 0", "content.handling.information_accuracy", 0, "out-of-range"),
    ("a port above 65535", "content.subjects.ip_addresses.0.port", 65536, "out-of-range"),
    ("after 2^40", "content.subjects.ip_addresses.0.observed_at", 2**40 + 1, "out-of-range"),
    ("a negative time", "content.subjects.ip_addresses.0.observed_at", -1, "out-of-range"),
    ("a country in lower case", "content.originating_authority.country", "kr", "bad-format"),
    ("a language in words", "content.languages.0", "Korean", "bad-format"),
    ("a domain in upper case", "content.subjects.websites.0.domain", "Sky.example", "bad-format"),
    ("a URL, not http(s)", "content.subjects.websites.0.urls.0", "ftp://x.example/", "bad-format"),
    ("a control character in a label", "content.case_reference", "KR\x07MCST", "bad-format"),
    ("a NUL in a text", "content.summary", "Sky\x00Manga", "bad-format"),
    ("a month 13", "content.subjects.persons.0.date_of_birth", "1990-13", "bad-format"),
]  # fmt: skip


@pytest.mark.req("MSG-2", "MSG-4")
@pytest.mark.parametrize(("what", "where", "value", "reason"), WRONG, ids=[w[0] for w in WRONG])
def test_content_that_breaks_its_schema_is_refused_naming_the_field(
    what: str, where: str, value: object, reason: str
) -> None:
    body = (
        request(subjects=Subjects(persons=(DATED_PERSON,))) if ".persons." in where else request()
    )
    error = refused(edited(body, where, value))
    assert (error.code, error.field, error.reason) == ("invalid-body", field_of(where), reason)
    assert error.message.startswith(f"ncbr.assistance-request: {field_of(where)}: ")
    assert isinstance(error.__cause__, ValidationError)  # translated, with its cause kept


@pytest.mark.req("MSG-2")
def test_a_principal_id_in_a_body_follows_id_1() -> None:
    error = refused(edited(diffusion([PARIS, RABAT]), "content.distribution.bureaus.0", "fr.x"))
    assert (error.field, error.reason) == ("content.distribution.bureaus[0]", "bad-format")


@pytest.mark.req("MSG-2")
def test_text_that_is_valid_is_taken_exactly() -> None:
    body = request(summary="Séoul\tRabat\r\n한국어 웹툰")
    assert decode_body(encode_body(body)) == body


DATED_PERSON = Person(name="Operator of SkyManga", role="operator", date_of_birth="1987-04")


@pytest.mark.req("MSG-2")
@pytest.mark.parametrize("date", ["1987", "1987-04", "1987-04-30"])
def test_partial_dates_of_birth(date: str) -> None:
    person = Person(name="Operator of SkyManga", role="operator", date_of_birth=date)
    body = request(subjects=Subjects(persons=(person,)))
    assert decode_body(encode_body(body)) == body


# --- MSG-5: opaque bodies -------------------------------------------------------------------


@pytest.mark.req("MSG-5")
@pytest.mark.parametrize(
    ("schema", "version"),
    [("kr.knpa.cyber-case", 1), ("ncbr.assistance-request", 2), ("ncbr.unknown-thing", 1)],
)
def test_an_unknown_schema_or_version_is_delivered_opaque_with_its_bytes(
    schema: str, version: int
) -> None:
    content: dict[str, Any] = {"summary": 7, "x": [b"\x00"]}
    data = codec.encode({"content": content, "schema": schema, "version": version})
    body = decode_body(data)
    assert isinstance(body, OpaqueBody)
    assert not isinstance(body, Body)
    assert (body.schema_id, body.schema_version, body.data) == (schema, version, data)
    assert "summary" not in repr(body)
    assert f"{len(data)} bytes" in repr(body)


@pytest.mark.req("MSG-5", "MSG-1")
def test_an_opaque_body_still_has_a_valid_frame() -> None:
    data = codec.encode({"content": [], "schema": "kr.knpa.cyber-case", "version": 1})
    assert refused(data).field == "content"


@pytest.mark.req("MSG-5")
def test_an_opaque_body_is_data_not_a_model() -> None:
    with pytest.raises(UsageError):
        OpaqueBody("kr.x", 1, "text")  # type: ignore[arg-type]
