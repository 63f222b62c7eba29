"""Extensions: agencies register their own bodies; none can shadow a built-in one (EXT-1, EXT-2)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import ConfigDict

from message_samples import GS, H0, RABAT, SEOUL, Post, request
from ncb_relay import InvalidBody, UsageError, codec
from ncb_relay.messages import (
    BUILTIN_BODIES,
    DEFAULT_REGISTRY,
    AssistanceRequest,
    Body,
    BodyRegistry,
    OpaqueBody,
    decode_body,
    encode_body,
)
from ncb_relay.messages.fields import Label, Text


class CyberCase(Body):
    """An extension of the Korean National Police Agency's cyber bureau (an example)."""

    schema_id = "kr.knpa.cyber-case"

    case_number: Label
    narrative: Text | None = None


class CyberCaseV2(Body):
    schema_id = "kr.knpa.cyber-case"
    schema_version = 2

    case_number: Label
    platform: Label


def cyber_case() -> CyberCase:
    return CyberCase(handling=H0, case_number="KNPA-CY-2027-9")


@pytest.mark.req("EXT-2", "MSG-5")
def test_a_registered_extension_decodes_and_an_unregistered_one_is_opaque() -> None:
    registry = DEFAULT_REGISTRY.register(CyberCase)
    data = encode_body(cyber_case())
    assert registry.decode(data) == cyber_case()
    assert isinstance(decode_body(data), OpaqueBody)  # the default registry does not know it
    assert DEFAULT_REGISTRY.lookup("kr.knpa.cyber-case", 1) is None  # register made a new one
    assert registry.lookup("kr.knpa.cyber-case", 1) is CyberCase
    v2 = encode_body(CyberCaseV2(handling=H0, case_number="KNPA-CY-2027-9", platform="webtoon"))
    assert isinstance(registry.decode(v2), OpaqueBody)
    both = registry.register(CyberCaseV2)
    assert isinstance(both.decode(v2), CyberCaseV2)
    assert isinstance(both.decode(data), CyberCase)


@pytest.mark.req("EXT-2", "MSG-2")
def test_an_extension_is_decoded_as_strictly_as_a_built_in_body() -> None:
    registry = BodyRegistry([CyberCase])
    value = codec.decode(encode_body(cyber_case()))
    assert isinstance(value, dict)
    content = value["content"]
    assert isinstance(content, dict)
    content["extra"] = 1
    with pytest.raises(InvalidBody) as caught:
        registry.decode(codec.encode(value))
    assert caught.value.field == "content.extra"
    assert caught.value.message.startswith("kr.knpa.cyber-case: ")
    del content["handling"]
    del content["extra"]
    with pytest.raises(InvalidBody, match=r"content\.handling"):
        registry.decode(codec.encode(value))


@pytest.mark.req("EXT-1")
@pytest.mark.parametrize("model", BUILTIN_BODIES, ids=lambda m: m.schema_id)
def test_no_extension_can_shadow_a_built_in_body(model: type[Body]) -> None:
    shadow = type(
        "Shadow",
        (Body,),
        {"__annotations__": {"text": "str"}, "schema_id": model.schema_id, "__module__": __name__},
    )
    with pytest.raises(UsageError, match="reserved"):
        BodyRegistry([shadow])
    with pytest.raises(UsageError, match="reserved"):
        DEFAULT_REGISTRY.register(shadow)
    assert DEFAULT_REGISTRY.lookup(model.schema_id, 1) is model


class NcbrLookalike(Body):
    schema_id = "ncbr.cyber-case"  # a new id, but in the reserved namespace

    case_number: Label


@pytest.mark.req("EXT-1")
def test_the_ncbr_namespace_is_reserved_and_each_pair_is_registered_once() -> None:
    with pytest.raises(UsageError, match="reserved"):
        BodyRegistry([NcbrLookalike])
    with pytest.raises(UsageError, match="taken"):
        BodyRegistry([CyberCase, CyberCase])
    with pytest.raises(UsageError, match="taken"):
        BodyRegistry([CyberCase]).register(CyberCase)


class Lenient(Body):
    model_config = ConfigDict(frozen=True, strict=False, extra="ignore")
    schema_id = "kr.knpa.lenient"

    number: int


class NoId(Body):
    number: int


class BadId(Body):
    schema_id = "Bad Id"


class BadVersion(Body):
    schema_id = "kr.knpa.bad-version"
    schema_version: ClassVar[int] = 0


@pytest.mark.req("EXT-2")
@pytest.mark.parametrize(
    ("model", "match"),
    [
        (Lenient, "frozen, strict and closed"),
        (NoId, "schema_id"),
        (BadId, "schema_id"),
        (BadVersion, "schema_version"),
        (AssistanceRequest.model_fields["handling"].annotation, "subclass of Body"),
        (int, "subclass of Body"),
    ],
)
def test_a_registry_refuses_a_model_that_breaks_the_rules(model: object, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        BodyRegistry([model])  # type: ignore[list-item]


@pytest.mark.req("EXT-2", "MSG-5")
def test_an_extension_travels_in_an_envelope_to_a_receiver_that_knows_it() -> None:
    post = Post(SEOUL, RABAT, GS, registry=DEFAULT_REGISTRY.register(CyberCase))
    sent = post.send(cyber_case(), SEOUL, [RABAT])
    assert post.deliver(sent, RABAT).body == cyber_case()
    plain = Post(SEOUL, RABAT, GS)
    opaque = plain.deliver(plain.send(cyber_case(), SEOUL, [RABAT]), RABAT).body
    assert isinstance(opaque, OpaqueBody)
    assert opaque.schema_id == "kr.knpa.cyber-case"
    assert isinstance(
        post.deliver(post.send(request(), SEOUL, [RABAT]), RABAT).body, AssistanceRequest
    )


def test_a_registry_lists_its_models() -> None:
    registry = BodyRegistry([CyberCase])
    assert len(registry.models) == len(BUILTIN_BODIES) + 1
    assert registry.models[("kr.knpa.cyber-case", 1)] is CyberCase
    with pytest.raises(TypeError):
        registry.models[("x.y", 1)] = CyberCase  # type: ignore[index]
