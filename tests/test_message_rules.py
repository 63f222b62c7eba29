"""Bounds, errors that say where and never what, rules across fields, building bodies.

Covers MSG-3, MSG-4, MSG-10, MSG-11 (the models' side), HAND-1 and HAND-2.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from message_samples import (
    DELETE,
    H0,
    H2,
    PARIS,
    SKYMANGA,
    acknowledgement,
    diffusion,
    edited,
    every_body,
    field_of,
    refused,
    request,
    response,
)
from ncb_relay import InvalidBody, NcbRelayError, UsageError, codec
from ncb_relay.messages import (
    BUILTIN_BODIES,
    AssistanceRequest,
    Body,
    Distribution,
    Handling,
    IpAddress,
    Offence,
    OpaqueBody,
    Subjects,
    Urgency,
    decode_body,
    encode_body,
)
from ncb_relay.messages.fields import MAX_LABEL_CHARS, MAX_LONG_TEXT_CHARS, MAX_TEXT_CHARS

# --- MSG-3: bounds -------------------------------------------------------------------------

WEBSITE: dict[str, Any] = {"domain": "s.example", "urls": [], "description": None}
FRAUD: dict[str, Any] = {"category": "fraud", "other": None}
LANGS = [f"x{c}" for c in "abcdefghi"]

# (what, dotted path in a request, the largest value allowed, one too large)
BOUNDS: list[tuple[str, str, object, object]] = [
    ("a label", "content.case_reference", "é" * MAX_LABEL_CHARS, "é" * (MAX_LABEL_CHARS + 1)),
    ("a text", "content.summary", "x" * MAX_TEXT_CHARS, "x" * (MAX_TEXT_CHARS + 1)),
    ("four-byte characters", "content.legal_basis", "😀" * MAX_TEXT_CHARS, "😀" * 4001),
    ("offences", "content.offences", [FRAUD] * 8, [FRAUD] * 9),
    ("languages", "content.languages", LANGS[:8], LANGS),
    ("a subject list", "content.subjects.websites", [WEBSITE] * 64, [WEBSITE] * 65),
    ("handling conditions", "content.handling.conditions", ["c"] * 8, ["c"] * 9),
    ("aliases", "content.subjects.persons.0.aliases", ["a"] * 16, ["a"] * 17),
]  # fmt: skip


@pytest.mark.req("MSG-3")
@pytest.mark.parametrize(
    ("what", "where", "largest", "too_large"), BOUNDS, ids=[b[0] for b in BOUNDS]
)
def test_every_bound_admits_its_limit_and_refuses_one_more(
    what: str, where: str, largest: object, too_large: object
) -> None:
    assert isinstance(decode_body(edited(request(), where, largest)), AssistanceRequest)
    error = refused(edited(request(), where, too_large))
    assert (error.field, error.reason) == (field_of(where), "too-long")


@pytest.mark.req("MSG-3")
def test_long_text_allows_32000_characters() -> None:
    body = response()
    assert decode_body(edited(body, "content.findings", "f" * MAX_LONG_TEXT_CHARS))
    error = refused(edited(body, "content.findings", "f" * (MAX_LONG_TEXT_CHARS + 1)))
    assert (error.field, error.reason) == ("content.findings", "too-long")


@pytest.mark.req("MSG-3", "MSG-2")
@pytest.mark.parametrize(
    "where",
    ["content.summary", "content.offences", "content.requested_actions", "content.languages"],
)
def test_required_text_and_lists_are_not_empty(where: str) -> None:
    empty: object = "" if where == "content.summary" else []
    error = refused(edited(request(), where, empty))
    assert (error.field, error.reason) == (field_of(where), "too-short")


@pytest.mark.req("MSG-3")
def test_the_codec_bounds_hold_before_the_schema_is_read() -> None:
    huge = refused(edited(request(), "content.summary", "x" * (128 * 1024 + 1)))
    assert (huge.field, huge.reason) == (None, "limit-exceeded")
    assert refused(edited(request(), "content.languages", ["ko"] * 257)).reason == "limit-exceeded"
    many_keys = {f"k{i:03}": 1 for i in range(65)}
    assert refused(edited(request(), "content", many_keys)).reason == "limit-exceeded"


# --- MSG-4: errors say where, never what ----------------------------------------------------

SECRET = "Kim Operator 1987 passport M12345678"


@pytest.mark.req("MSG-4")
@pytest.mark.parametrize(
    "where",
    [
        "content.handling.code",
        "content.originating_authority.country",
        "content.languages.0",
        "content.subjects.ip_addresses.0.address",
        "content.summary",
    ],
)
def test_an_error_never_quotes_the_refused_value(where: str) -> None:
    value = SECRET * 2000 if where == "content.summary" else SECRET
    error = refused(edited(request(), where, value))
    assert "Kim" not in str(error)
    assert "M12345678" not in str(error)
    assert error.field == field_of(where)


@pytest.mark.req("MSG-4")
def test_an_unexpected_key_is_shown_escaped_and_cut() -> None:
    error = refused(edited(request(), "content.Kim\n" + "x" * 500, 1))
    assert error.reason == "unexpected"
    assert error.field is not None
    assert "\n" not in error.field
    assert len(error.field) < 100
    assert error.field.startswith("content.'Kim\\n")


@pytest.mark.req("MSG-4")
def test_several_faults_report_the_first_in_field_order_and_count_the_rest() -> None:
    value: Any = codec.decode(edited(request(), "content.summary", DELETE))
    value["content"]["legal_basis"] = 5
    error = refused(codec.encode(value))
    assert (error.field, error.reason) == ("content.summary", "missing")
    assert "(and 1 more)" in error.message


leaves = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.binary(max_size=40)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


@pytest.mark.req("MSG-2", "MSG-4")
@given(data=st.data())
def test_no_mutation_of_a_valid_body_escapes_as_anything_but_invalid_body(
    data: st.DataObject,
) -> None:
    value: Any = codec.decode(encode_body(data.draw(st.sampled_from(every_body()))))
    path = data.draw(st.sampled_from(_paths(value)))
    target = value
    for step in path[:-1]:
        target = target[step]
    if data.draw(st.booleans()):
        target[path[-1]] = data.draw(leaves)
    elif isinstance(target, dict):
        del target[path[-1]]
    outcome: Body | OpaqueBody | InvalidBody
    try:
        outcome = decode_body(codec.encode(value))
    except InvalidBody as exc:  # the only error that may come out
        outcome = exc
    if isinstance(outcome, InvalidBody):
        top = (outcome.field or "content").split(".")[0].split("[")[0]
        assert top in ("content", "schema", "version") or top.startswith("'")
    else:
        assert isinstance(outcome, (Body, OpaqueBody))


@pytest.mark.req("MSG-2")
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_body_or_invalid_body(data: bytes) -> None:
    error: NcbRelayError | None = None
    try:
        decode_body(data)
    except NcbRelayError as exc:
        error = exc
    assert error is None or isinstance(error, InvalidBody)


# --- MSG-10 and HAND-2: rules across fields ---------------------------------------------------

# (what, dotted path in a request, new value, the field named)
OTHER, DEADLINE = "content.offences[0].other", "content.urgency.deadline"
CROSS: list[tuple[str, str, object, str]] = [
    ("offence other, not named", "content.offences.0.category", "other", OTHER),
    ("a named offence not other", "content.offences.0.other", "piracy", OTHER),
    ("explicit urgency, no deadline", "content.urgency.level", "explicit", DEADLINE),
    ("a deadline, standard urgency", "content.urgency.deadline", 1_900_000_000, DEADLINE),
    ("an action twice", "content.requested_actions", ["arrest"] * 2, "content.requested_actions"),
    ("a language twice", "content.languages", ["ko", "ko"], "content.languages"),
]  # fmt: skip


@pytest.mark.req("MSG-10")
@pytest.mark.parametrize(("what", "where", "value", "field"), CROSS, ids=[c[0] for c in CROSS])
def test_rules_across_fields_are_enforced(what: str, where: str, value: object, field: str) -> None:
    error = refused(edited(request(), where, value))
    assert (error.field, error.reason) == (field, "invalid")


@pytest.mark.req("MSG-10")
def test_acknowledgement_rules() -> None:
    assert refused(edited(acknowledgement(), "content.decision", "declined")).field == (
        "content.reason"
    )
    value: Any = codec.decode(edited(acknowledgement(), "content.reason", "Not our competence."))
    value["content"]["decision"] = "declined"
    assert refused(codec.encode(value)).field == "content.expected_answer_by"


@pytest.mark.req("MSG-10")
def test_distribution_rules() -> None:
    body = diffusion([PARIS])
    for where, value in [
        ("content.distribution.scope", "all"),
        ("content.distribution.bureaus", []),
        ("content.distribution.bureaus", [PARIS, PARIS]),
    ]:
        assert refused(edited(body, where, value)).field == "content.distribution.bureaus"
    assert Distribution(scope="all").bureaus == ()


@pytest.mark.req("MSG-10")
@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("192.0.2.44", True),
        ("2001:db8::1", True),
        ("2001:db8:0:1::", True),
        ("2001:DB8::1", False),
        ("2001:0db8::1", False),
        ("2001:db8:0:0:0:0:0:1", False),
        ("::ffff:192.0.2.1", False),
        ("::ffff:c000:201", False),
        ("fe80::1%eth0", False),
        ("192.0.2.044", False),
        ("192.0.2", False),
        ("skymanga.example", False),
    ],
)
def test_ip_addresses_must_be_canonical(address: str, ok: bool) -> None:
    data = edited(request(), "content.subjects.ip_addresses.0.address", address)
    if ok:
        assert decode_body(data)
    else:
        assert refused(data).field == "content.subjects.ip_addresses[0].address"


@pytest.mark.req("HAND-1", "HAND-2")
def test_handling_is_required_and_h3_states_its_conditions() -> None:
    for model in BUILTIN_BODIES:
        assert model.model_fields["handling"].is_required()
    with pytest.raises(UsageError, match="H3"):
        Handling(code="H3", source_reliability="X", information_accuracy=4)
    h3 = Handling(code="H3", source_reliability="X", information_accuracy=4, conditions=("No.",))
    assert not h3.forbids_dissemination
    assert not h3.forbids_judicial_use
    assert H2.forbids_dissemination
    assert not H2.forbids_judicial_use
    assert Handling(code="H1", source_reliability="A", information_accuracy=1).forbids_judicial_use


# --- MSG-11 (the models' side): building refuses what decoding would -------------------------


@pytest.mark.req("MSG-11")
def test_building_a_bad_body_raises_usage_error_naming_the_field() -> None:
    with pytest.raises(UsageError, match=r"Offence\.other"):
        Offence(category="other")
    with pytest.raises(UsageError, match=r"Urgency\.deadline"):
        Urgency(level="explicit")
    with pytest.raises(UsageError, match=r"AssistanceRequest\.summary"):
        request(summary="x" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(UsageError, match=r"AssistanceRequest\.languages"):
        request(languages=["ko"])  # a list: the models hold tuples, strictly
    with pytest.raises(UsageError, match=r"IpAddress\.address"):
        IpAddress(address="192.0.2.044")
    with pytest.raises(UsageError) as caught:
        request(offences=())
    assert not isinstance(caught.value, ValidationError)
    assert isinstance(caught.value.__cause__, ValidationError)


@pytest.mark.req("MSG-11")
def test_bodies_are_frozen_and_hashable() -> None:
    body = request()
    with pytest.raises(UsageError, match="immutable"):
        body.summary = "changed"
    with pytest.raises(UsageError):
        H0.code = "H2"
    assert hash(body) == hash(request())
    assert body == request()
    assert SKYMANGA.count() == 7
    assert Subjects().count() == 0
