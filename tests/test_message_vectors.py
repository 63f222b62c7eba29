"""Re-verify spec/vectors/messages.json from the JSON alone (spec/vectors.md, "messages.json").

Keys come from the published seeds; nothing is taken from the generator except
in the last test, which rebuilds the file and fails if it would change.
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import (
    EncryptionKeyPair,
    NcbRelayError,
    PrivateIdentity,
    ReplayGuard,
    SigningKeyPair,
    StaticDirectory,
    codec,
    open_envelope,
)
from ncb_relay.codec import Value
from ncb_relay.messages import (
    AssistanceRequest,
    Conversation,
    OpaqueBody,
    decode_body,
    encode_body,
    read_message,
    verify_forward,
)
from ncb_relay.messages.message import check_context

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "spec" / "vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "messages.json").read_text(encoding="utf-8"))
IDS = {
    p["id"]: PrivateIdentity(
        p["id"],
        SigningKeyPair(bytes.fromhex(p["signingSeed"])),
        [EncryptionKeyPair(bytes.fromhex(p["encryptionSecret"]))],
    )
    for p in DOC["principals"]
}
DIRECTORY = StaticDirectory(i.public for i in IDS.values())
COORDINATOR: str = DOC["coordinator"]


def cases_of(kind: str) -> list[dict[str, Any]]:
    (group,) = [g for g in DOC["testGroups"] if g["type"] == kind]
    tests: list[dict[str, Any]] = group["tests"]
    return tests


def untyped(typed: dict[str, Any]) -> Value:
    """The profile value of a typed value of codec.json (spec/vectors.md, "Typed values")."""
    kind = typed["type"]
    if kind == "nil":
        return None
    value = typed["value"]
    if kind == "int":
        return int(value)
    if kind == "bin":
        return bytes.fromhex(value)
    if kind == "array":
        return [untyped(item) for item in value]
    if kind == "map":
        return {str(untyped(k)): untyped(v) for k, v in value}
    assert kind in ("bool", "str")
    result: bool | str = value
    return result


def refusal(action: Callable[[], object]) -> tuple[str, str | None, str | None] | None:
    try:
        action()
    except NcbRelayError as exc:
        return exc.code, getattr(exc, "field", None), getattr(exc, "reason", None)
    return None


def opened(hex_data: str, by: str, now: int, guard: ReplayGuard) -> Any:
    return open_envelope(
        bytes.fromhex(hex_data), recipient=IDS[by], directory=DIRECTORY, now=now, replay=guard
    )


def test_the_file_is_well_formed() -> None:
    spec_ids = set(
        re.findall(r"\*\*\[([A-Z]+-\d+)\]\*\*", (ROOT / "spec" / "messages.md").read_text())
    )
    spec_ids |= set(
        re.findall(r"\*\*\[([A-Z]+-\d+)\]\*\*", (ROOT / "spec" / "protocol.md").read_text())
    )
    ids = [t["tcId"] for g in DOC["testGroups"] for t in g["tests"]]
    assert ids == list(range(1, len(ids) + 1)) == list(range(1, DOC["numberOfTests"] + 1))
    for group in DOC["testGroups"]:
        for test in group["tests"]:
            assert set(test["flags"]) <= set(DOC["notes"]), test["tcId"]
            assert test["requirements"], test["tcId"]
            assert set(test["requirements"]) <= spec_ids, test["tcId"]
            assert test["comment"]
    assert [g["type"] for g in DOC["testGroups"]] == [
        "BodyDecode",
        "BodyContext",
        "ReplyBinding",
        "Forward",
    ]


@pytest.mark.req("MSG-1", "MSG-2", "MSG-3", "MSG-4", "MSG-5", "MSG-10", "HAND-1", "HAND-2")
@pytest.mark.parametrize("case", cases_of("BodyDecode"), ids=lambda t: f"tc{t['tcId']}")
def test_body_decode(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["body"])
    if case["result"] == "invalid":
        assert refusal(lambda: decode_body(data)) == (case["error"], case["field"], case["reason"])
        return
    body = decode_body(data)
    if case["opaque"]:
        assert isinstance(body, OpaqueBody)
        assert body.data == data
        assert (body.schema_id, body.schema_version) == (case["schema"], case["version"])
        return
    assert not isinstance(body, OpaqueBody)
    assert (body.schema_id, body.schema_version) == (case["schema"], case["version"])
    assert codec.decode(data)["content"] == untyped(case["value"])  # type: ignore[index, call-overload]
    assert encode_body(body).hex() == case["encoding"]
    assert (case["encoding"] == case["body"]) == ("OmittedOptional" not in case["flags"])


def test_every_built_in_body_has_a_valid_vector() -> None:
    valid = {
        t["schema"] for t in cases_of("BodyDecode") if t["result"] == "valid" and not t["opaque"]
    }
    assert len(valid) == 11


@pytest.mark.req("MSG-6", "MSG-7", "MSG-8", "MSG-9", "MSG-12")
@pytest.mark.parametrize("case", cases_of("BodyContext"), ids=lambda t: f"tc{t['tcId']}")
def test_body_context(case: dict[str, Any]) -> None:
    reply_to = bytes.fromhex(case["replyTo"]) if case["replyTo"] else None
    got = refusal(
        lambda: check_context(
            decode_body(bytes.fromhex(case["body"])),
            sender=case["sender"],
            created=case["created"],
            reply_to=reply_to,
            coordinator=COORDINATOR,
        )
    )
    expected = None if case["result"] == "valid" else (case["error"], case["field"], case["reason"])
    assert got == expected


@pytest.mark.req("CONV-1", "CONV-2", "CONV-3")
@pytest.mark.parametrize("case", cases_of("ReplyBinding"), ids=lambda t: f"tc{t['tcId']}")
def test_reply_binding(case: dict[str, Any]) -> None:
    guard = ReplayGuard()
    observer = case["observer"]
    request = read_message(
        opened(case["request"], observer, case["now"], guard), coordinator=COORDINATOR
    )
    assert isinstance(request.body, AssistanceRequest)
    conversation = Conversation(request.envelope, request.body)
    for reply in case["replies"]:

        def receive(reply: dict[str, Any] = reply) -> None:
            message = read_message(
                opened(reply["envelope"], observer, reply["now"], guard), coordinator=COORDINATOR
            )
            conversation.receive(message)

        got = refusal(receive)
        if reply["result"] == "valid":
            assert got is None
            assert conversation.state.value == reply["state"]
        else:
            assert got is not None
            assert got[0] == reply["error"]


@pytest.mark.req("FWD-1", "FWD-2", "FWD-3", "FWD-4", "HAND-3")
@pytest.mark.parametrize("case", cases_of("Forward"), ids=lambda t: f"tc{t['tcId']}")
def test_forward(case: dict[str, Any]) -> None:
    result: list[Any] = []

    def verify() -> None:
        envelope = opened(case["envelope"], case["recipient"], case["now"], ReplayGuard())
        message = read_message(envelope, coordinator=COORDINATOR)
        result.append(verify_forward(message, directory=DIRECTORY, coordinator=COORDINATOR))

    got = refusal(verify)
    if case["result"] == "invalid":
        assert got is not None
        assert got[0] == case["error"]
        return
    assert got is None
    (forwarded,) = result
    assert (forwarded.author, forwarded.forwarder) == (case["author"], case["forwarder"])
    assert forwarded.original_body.schema_id == case["originalSchema"]
    assert forwarded.original_body.handling.code == case["originalHandling"]
    assert (forwarded.permission is not None) == case["permission"]


def test_the_file_is_what_the_generator_writes() -> None:
    if str(VECTORS) not in sys.path:
        sys.path.insert(0, str(VECTORS))
    module = importlib.import_module("cases_messages")
    documents = module.build()
    assert list(documents) == ["messages.json"]
    text = json.dumps(documents["messages.json"], indent=2, ensure_ascii=False) + "\n"
    assert (VECTORS / "messages.json").read_text(encoding="utf-8") == text, (
        "run python spec/vectors/generate.py"
    )
