"""Re-verify the published NCBR/1 test vectors (spec/vectors/*.json) against the library.

These tests read only the JSON files and the library: keys come from the
published seeds, randomness from the recorded values.  The last tests run the
generator in-process and fail if regenerating would change any file, so a code
change that alters bytes cannot land without new vectors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ncb_relay import (
    CodecLimits,
    DecryptionFailed,
    Disclosure,
    EncryptionKeyPair,
    EnvelopeLimits,
    FreshnessPolicy,
    PrivateIdentity,
    ProtocolError,
    ReplayGuard,
    SigningKeyPair,
    StaticDirectory,
    codec,
    open_envelope,
    primitives,
    seal,
    verify_disclosure,
    verify_routing,
)
from ncb_relay.codec import Value
from ncb_relay.conformance.operations.values import typed
from ncb_relay.envelope import (
    INNER_SIGNATURE_LABEL,
    OUTER_SIGNATURE_LABEL,
    PAYLOAD_NONCE,
    PERSON_BODY,
    PERSON_PAYLOAD,
    SealedEnvelope,
    commitment,
    header_hash,
    message_hash,
    payload_key,
    wrap_pad,
)
from ncb_relay.header import parse_envelope

JSON = dict[str, Any]

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "spec" / "vectors"


def load(name: str) -> JSON:
    data: JSON = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


CODEC = load("codec.json")
ENVELOPE = load("envelope.json")
DISCLOSURE = load("disclosure.json")
ACCUMULATED = load("accumulated.json")

# ---------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------


def group(doc: JSON, kind: str) -> list[JSON]:
    for g in doc["testGroups"]:
        if g["type"] == kind:
            tests: list[JSON] = g["tests"]
            return tests
    raise KeyError(kind)


def params(doc: JSON, kind: str) -> list[Any]:
    return [
        pytest.param(case, id=f"tc{case['tcId']}", marks=pytest.mark.req(*case["requirements"]))
        for case in group(doc, kind)
    ]


def identities(doc: JSON) -> dict[str, PrivateIdentity]:
    return {
        p["id"]: PrivateIdentity(
            p["id"],
            SigningKeyPair(bytes.fromhex(p["signingSeed"])),
            [EncryptionKeyPair(bytes.fromhex(p["encryptionSecret"]))],
        )
        for p in doc["principals"]
    }


def directory(doc: JSON, ids: dict[str, PrivateIdentity]) -> StaticDirectory:
    return StaticDirectory(ids[p["id"]].public for p in doc["principals"] if p["inDirectory"])


IDS = identities(ENVELOPE)
DIRECTORY = directory(ENVELOPE, IDS)
DEFAULTS: JSON = ENVELOPE["defaults"]
POLICY = FreshnessPolicy(DEFAULTS["maxSkew"])


def envelope_limits(case: JSON) -> EnvelopeLimits:
    limits = {**DEFAULTS, **case.get("limits", {})}
    return EnvelopeLimits(
        max_envelope_bytes=limits["maxEnvelopeBytes"], max_recipients=limits["maxRecipients"]
    )


def recorded(*values: bytes) -> Callable[[int], bytes]:
    queue = list(values)

    def rng(n: int) -> bytes:
        value = queue.pop(0)
        assert len(value) == n
        return value

    return rng


def untyped(t: JSON) -> Value:
    """The library value of a typed JSON value (spec/vectors.md, "Typed values")."""
    kind = t["type"]
    if kind == "nil":
        return None
    if kind == "bool":
        assert isinstance(t["value"], bool)
        return bool(t["value"])
    if kind == "int":
        return int(t["value"])
    if kind == "bin":
        return bytes.fromhex(t["value"])
    if kind == "str":
        return str(t["value"])
    if kind == "array":
        return [untyped(item) for item in t["value"]]
    assert kind == "map"
    out: dict[str, Value] = {}
    for key, item in t["value"]:
        assert key["type"] == "str"
        out[key["value"]] = untyped(item)
    return out


def input_bytes(spec: JSON) -> bytes:
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    count: int = spec["count"]
    return bytes.fromhex(spec["repeat"]) * count + bytes.fromhex(spec["then"])


def codec_limits(case: JSON) -> CodecLimits:
    limits = {**CODEC["limits"], **case.get("limits", {})}
    return CodecLimits(
        max_bytes=limits["maxBytes"],
        max_str_bytes=limits["maxStrBytes"],
        max_bin_bytes=limits["maxBinBytes"],
        max_array_items=limits["maxArrayItems"],
        max_map_items=limits["maxMapItems"],
        max_depth=limits["maxDepth"],
    )


def open_as(
    data: bytes, recipient: str, now: int, limits: EnvelopeLimits, guard: ReplayGuard
) -> bytes:
    body: bytes = open_envelope(
        data,
        recipient=IDS[recipient],
        directory=DIRECTORY,
        now=now,
        replay=guard,
        limits=limits,
    ).body
    return body


def h(data: bytes) -> str:
    return data.hex()


# ---------------------------------------------------------------------------------
# the files themselves
# ---------------------------------------------------------------------------------


@pytest.mark.req("KEY-2", "KEY-3")
@pytest.mark.parametrize(
    "doc", [ENVELOPE, DISCLOSURE, ACCUMULATED], ids=["envelope", "disclosure", "accumulated"]
)
def test_principals_match_their_seeds(doc: JSON) -> None:
    ids = identities(doc)
    for p in doc["principals"]:
        identity = ids[p["id"]]
        signing = identity.signer.public_key
        encryption = identity.encryption_keys[-1].public_key
        assert signing.raw.hex() == p["signingPublicKey"]
        assert encryption.raw.hex() == p["encryptionPublicKey"]
        assert signing.fingerprint.hex() == p["signingFingerprint"]
        assert encryption.fingerprint.hex() == p["encryptionFingerprint"]
        assert (
            h(primitives.blake2b(signing.raw, person=b"NCBR1 fp sign")) == p["signingFingerprint"]
        )
        assert (
            h(primitives.blake2b(encryption.raw, person=b"NCBR1 fp encrypt"))
            == p["encryptionFingerprint"]
        )
        assert p["signingKeyId"] == p["signingFingerprint"][:32]
        assert p["encryptionKeyId"] == p["encryptionFingerprint"][:32]


def test_files_are_well_formed() -> None:
    for doc in (CODEC, ENVELOPE, DISCLOSURE):
        ids = [case["tcId"] for g in doc["testGroups"] for case in g["tests"]]
        assert ids == list(range(1, len(ids) + 1))
        assert doc["numberOfTests"] == len(ids)
        for g in doc["testGroups"]:
            for case in g["tests"]:
                assert case["result"] in {"valid", "invalid"}
                assert ("error" in case) == (case["result"] == "invalid")
                assert set(case["flags"]) <= set(doc["notes"])
    assert len(group(CODEC, "CodecValid")) + len(group(CODEC, "CodecInvalid")) >= 40
    invalid_opens = [c for c in group(ENVELOPE, "EnvelopeOpen") if c["result"] == "invalid"]
    assert len(invalid_opens) >= 25
    disclosures = group(DISCLOSURE, "Disclosure")
    assert len(disclosures) >= len(group(ENVELOPE, "EnvelopeSeal")) + 10
    assert {c["envelope"] for c in disclosures} >= {
        c["envelope"] for c in group(ENVELOPE, "EnvelopeSeal")
    }


def declared(test: Callable[..., None]) -> set[str]:
    """The requirement ids named by a test function's own ``req`` marker."""
    marks = getattr(test, "pytestmark", [])
    return {rid for mark in marks if mark.name == "req" for rid in mark.args}


def test_requirement_markers_cover_the_cases() -> None:
    """Each test function's literal ``req`` marker names every id its cases list."""
    for doc, kind, test in (
        (CODEC, "CodecValid", test_codec_valid),
        (CODEC, "CodecInvalid", test_codec_invalid),
        (ENVELOPE, "EnvelopeSeal", test_seal),
        (ENVELOPE, "EnvelopeOpen", test_open),
        (ENVELOPE, "ReplyBinding", test_reply_binding),
        (DISCLOSURE, "Disclosure", test_disclosure),
    ):
        for case in group(doc, kind):
            assert case["requirements"], case["tcId"]
            assert set(case["requirements"]) <= declared(test), (kind, case["tcId"])


# ---------------------------------------------------------------------------------
# codec.json
# ---------------------------------------------------------------------------------


@pytest.mark.req(
    "CODEC-1", "CODEC-2", "CODEC-3", "CODEC-4", "CODEC-5", "CODEC-6", "CODEC-7", "ERR-1"
)
@pytest.mark.parametrize("case", params(CODEC, "CodecValid"))
def test_codec_valid(case: JSON) -> None:
    data = input_bytes(case["input"])
    limits = codec_limits(case)
    assert typed(codec.decode(data, limits=limits)) == case["value"]
    assert codec.encode(untyped(case["value"]), limits=limits) == data


@pytest.mark.req(
    "CODEC-1", "CODEC-2", "CODEC-3", "CODEC-4", "CODEC-5", "CODEC-6", "CODEC-7", "ERR-1"
)
@pytest.mark.parametrize("case", params(CODEC, "CodecInvalid"))
def test_codec_invalid(case: JSON) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode(input_bytes(case["input"]), limits=codec_limits(case))
    assert info.value.code == case["error"]


# ---------------------------------------------------------------------------------
# envelope.json
# ---------------------------------------------------------------------------------


@pytest.mark.req(
    "ENV-1",
    "ENV-2",
    "ENV-5",
    "ENV-6",
    "ENV-7",
    "ENV-9",
    "SEAL-1",
    "SEAL-2",
    "SEAL-3",
    "SEAL-4",
    "SEAL-5",
    "SEAL-6",
    "CODEC-6",
    "CODEC-8",
    "KEY-2",
    "OPEN-8",
    "OPEN-9",
    "OPEN-10",
    "BIND-2",
)
@pytest.mark.parametrize("case", params(ENVELOPE, "EnvelopeSeal"))
def test_seal(case: JSON) -> None:
    sender = IDS[case["sender"]]
    body = bytes.fromhex(case["body"])
    content_key = bytes.fromhex(case["contentKey"])
    secret = bytes.fromhex(case["ephemeralSecret"])
    reply_to = None if case["replyTo"] is None else bytes.fromhex(case["replyTo"])
    sealed = seal(
        body,
        sender=sender,
        recipients=[IDS[r].public for r in case["recipients"]],
        now=case["created"],
        seq=case["seq"],
        ttl=case["ttl"],
        reply_to=reply_to,
        rng=recorded(content_key, secret),
    )
    assert h(sealed.data) == case["envelope"]
    assert h(sealed.header.encode()) == case["header"]
    assert h(sealed.message_id) == case["messageId"]
    assert h(sealed.message_hash) == case["messageHash"]
    assert case["expires"] == case["created"] + case["ttl"]

    # every intermediate value, recomputed from the primitives (SEAL-2 .. SEAL-6, ENV-9)
    message_id = commitment(content_key)
    ephemeral = primitives.x25519_public_key(secret)
    assert h(message_id) == case["messageId"]
    assert h(ephemeral) == case["ephemeralPublicKey"]
    assert [w["recipient"] for w in case["wraps"]] == case["recipients"]
    for wrap, entry in zip(case["wraps"], sealed.header.recipients, strict=True):
        recipient_key = IDS[wrap["recipient"]].public.encryption_key
        shared = primitives.x25519(secret, recipient_key.raw)
        pad = wrap_pad(shared, ephemeral, recipient_key.raw, message_id)
        assert h(recipient_key.raw) == wrap["encryptionPublicKey"]
        assert h(recipient_key.key_id) == wrap["keyId"] == h(entry.key_id)
        assert h(shared) == wrap["sharedSecret"]
        assert h(pad) == wrap["pad"]
        assert h(bytes(a ^ b for a, b in zip(content_key, pad, strict=True))) == wrap["wrappedKey"]
        assert h(entry.wrapped_key) == wrap["wrappedKey"]
    header = bytes.fromhex(case["header"])
    h_digest = header_hash(header)
    b_digest = primitives.blake2b(body, person=PERSON_BODY)
    assert h(h_digest) == case["headerHash"]
    assert h(b_digest) == case["bodyHash"]
    inner = sender.signer.sign(INNER_SIGNATURE_LABEL + h_digest + b_digest)
    assert h(inner) == case["innerSignature"]
    assert h(payload_key(content_key)) == case["payloadKey"]
    payload = primitives.aead_encrypt(
        payload_key(content_key), PAYLOAD_NONCE, inner + body, h_digest
    )
    assert h(payload) == case["payload"]
    p_digest = primitives.blake2b(payload, person=PERSON_PAYLOAD)
    assert h(p_digest) == case["payloadHash"]
    outer = sender.signer.sign(OUTER_SIGNATURE_LABEL + h_digest + p_digest)
    assert h(outer) == case["outerSignature"]
    assert h(message_hash(h_digest, p_digest)) == case["messageHash"]
    assert h(codec.encode([header, payload, outer])) == case["envelope"]
    parsed = parse_envelope(sealed.data)
    assert (parsed.header_bytes, parsed.payload, parsed.signature) == (header, payload, outer)
    assert parsed.header == sealed.header

    # every recipient opens it and gets the body; the relay's check passes
    limits = envelope_limits(case)
    routed = verify_routing(
        sealed.data, directory=DIRECTORY, now=case["now"], policy=POLICY, limits=limits
    )
    assert h(routed.message_hash) == case["messageHash"]
    for recipient in case["recipients"]:
        assert open_as(sealed.data, recipient, case["now"], limits, ReplayGuard()) == body


@pytest.mark.req(
    "ID-1",
    "KEY-1",
    "KEY-2",
    "KEY-4",
    "KEY-5",
    "KEY-6",
    "CODEC-2",
    "CODEC-4",
    "CODEC-5",
    "CODEC-6",
    "CODEC-8",
    "ENV-1",
    "ENV-2",
    "ENV-3",
    "ENV-4",
    "ENV-5",
    "ENV-6",
    "ENV-7",
    "ENV-8",
    "SEAL-2",
    "SEAL-3",
    "SEAL-4",
    "SEAL-6",
    "OPEN-1",
    "OPEN-2",
    "OPEN-3",
    "OPEN-4",
    "OPEN-5",
    "OPEN-6",
    "OPEN-7",
    "OPEN-8",
    "OPEN-9",
    "OPEN-10",
    "OPEN-11",
    "OPEN-12",
    "FRESH-1",
    "FRESH-2",
    "REPLAY-1",
    "REPLAY-2",
    "REPLAY-3",
    "BIND-1",
    "LIM-1",
    "LIM-2",
    "LIM-3",
    "ERR-1",
)
@pytest.mark.parametrize("case", params(ENVELOPE, "EnvelopeOpen"))
def test_open(case: JSON) -> None:
    limits = envelope_limits(case)
    now = case["now"]
    guard = ReplayGuard(policy=POLICY)
    for prior in case.get("prior", []):
        data = bytes.fromhex(prior["envelope"])
        if prior["result"] == "valid":
            open_as(data, case["recipient"], now, limits, guard)
        else:
            with pytest.raises(ProtocolError) as failed:
                open_as(data, case["recipient"], now, limits, guard)
            assert failed.value.code == prior["error"]

    data = bytes.fromhex(case["envelope"])
    if case["routingError"] is None:
        verify_routing(data, directory=DIRECTORY, now=now, policy=POLICY, limits=limits)
    else:
        with pytest.raises(ProtocolError) as routing:
            verify_routing(data, directory=DIRECTORY, now=now, policy=POLICY, limits=limits)
        assert routing.value.code == case["routingError"]

    if case["result"] == "valid":
        assert h(open_as(data, case["recipient"], now, limits, guard)) == case["body"]
        return
    entries = len(guard)
    with pytest.raises(ProtocolError) as info:
        open_as(data, case["recipient"], now, limits, guard)
    assert info.value.code == case["error"]
    assert info.value.wire_code == case["error"]
    if "localReason" in case:
        assert isinstance(info.value, DecryptionFailed)
        assert info.value.reason == case["localReason"]
    assert len(guard) == entries  # OPEN-12: a refused message is not recorded


@pytest.mark.req("BIND-2", "ENV-9", "ERR-1")
@pytest.mark.parametrize("case", params(ENVELOPE, "ReplyBinding"))
def test_reply_binding(case: JSON) -> None:
    request = bytes.fromhex(case["request"])
    routed = verify_routing(request, directory=DIRECTORY, now=case["now"], policy=POLICY)
    assert h(routed.message_hash) == case["requestMessageHash"]
    record = SealedEnvelope(request, routed.message_id, routed.message_hash, routed.header)
    response = open_envelope(
        bytes.fromhex(case["response"]),
        recipient=IDS[case["responseOpenedBy"]],
        directory=DIRECTORY,
        now=case["now"],
        replay=ReplayGuard(policy=POLICY),
    )
    if case["result"] == "valid":
        response.require_reply_to(record)
    else:
        with pytest.raises(ProtocolError) as info:
            response.require_reply_to(record)
        assert info.value.code == case["error"]


# ---------------------------------------------------------------------------------
# disclosure.json
# ---------------------------------------------------------------------------------

DISCLOSURE_IDS = identities(DISCLOSURE)
DISCLOSURE_DIRECTORY = directory(DISCLOSURE, DISCLOSURE_IDS)
DISCLOSURE_LIMITS = EnvelopeLimits(
    max_envelope_bytes=DISCLOSURE["limits"]["maxEnvelopeBytes"],
    max_recipients=DISCLOSURE["limits"]["maxRecipients"],
)


@pytest.mark.req(
    "DISC-1", "DISC-2", "OPEN-2", "OPEN-4", "OPEN-6", "OPEN-8", "OPEN-9", "OPEN-10", "ERR-1"
)
@pytest.mark.parametrize("case", params(DISCLOSURE, "Disclosure"))
def test_disclosure(case: JSON) -> None:
    disclosure = Disclosure(bytes.fromhex(case["envelope"]), bytes.fromhex(case["contentKey"]))
    if case["result"] == "invalid":
        with pytest.raises(ProtocolError) as info:
            verify_disclosure(disclosure, directory=DISCLOSURE_DIRECTORY, limits=DISCLOSURE_LIMITS)
        assert info.value.code == case["error"]
        if "localReason" in case:
            assert isinstance(info.value, DecryptionFailed)
            assert info.value.reason == case["localReason"]
        return
    # DISC-2: no clock and no replay state, so the same disclosure verifies again
    for _ in range(2):
        proven = verify_disclosure(
            disclosure, directory=DISCLOSURE_DIRECTORY, limits=DISCLOSURE_LIMITS
        )
        assert h(proven.body) == case["body"]
        assert proven.sender == case["sender"]
        assert list(proven.recipients) == case["recipients"]
        assert proven.created == case["created"]
        assert h(proven.message_hash) == case["messageHash"]
    assert h(proven.message_id) == h(commitment(disclosure.content_key))


# ---------------------------------------------------------------------------------
# accumulated.json: an independent implementation of the definition in spec/vectors.md
# ---------------------------------------------------------------------------------


def stream(key: bytes) -> Iterator[int]:
    counter = 0
    while True:
        yield from hashlib.blake2b(counter.to_bytes(8, "little"), key=key, digest_size=64).digest()
        counter += 1


@pytest.mark.req("SEAL-1", "SEAL-2", "SEAL-3", "SEAL-4", "SEAL-5", "SEAL-6", "ENV-2", "CODEC-2")
def test_accumulated() -> None:
    doc = ACCUMULATED
    ids = identities(doc)
    pool = [ids[p["id"]] for p in doc["principals"]]
    dir_ = directory(doc, ids)
    source = stream(doc["streamKey"].encode("ascii"))

    def read(n: int) -> bytes:
        return bytes(next(source) for _ in range(n))

    def uint(n: int) -> int:
        return int.from_bytes(read(n), "little")

    checkpoints = {c["count"]: c["digest"] for c in doc["checkpoints"]}
    digest = hashlib.blake2b(digest_size=32)
    for i in range(1, max(checkpoints) + 1):
        sender = pool[uint(1) % len(pool)]
        n = 1 + uint(1) % 10
        candidates = [p for p in pool if p is not sender]
        chosen = [candidates.pop(uint(1) % len(candidates)) for _ in range(n)]
        body = read(uint(2) % (doc["maxBody"] + 1))
        shift = uint(1) % 64
        seq = (uint(8) >> 1) >> shift
        created = doc["createdBase"] - uint(4) % doc["createdSpread"]
        ttl = 1 + uint(4) % doc["maxTtl"]
        reply_to = read(32) if uint(1) & 1 else None
        data = seal(
            body,
            sender=sender,
            recipients=[p.public for p in chosen],
            now=created,
            seq=seq,
            ttl=ttl,
            reply_to=reply_to,
            rng=read,
        ).data
        if i == 1:
            assert h(data) == doc["firstEnvelope"]
        digest.update(len(data).to_bytes(4, "little") + data)
        if i in checkpoints:
            assert digest.hexdigest() == checkpoints[i], f"digest after {i} envelopes"
        if i % 10 == 1:  # a sample: every recipient opens it
            for recipient in chosen:
                opened = open_envelope(
                    data, recipient=recipient, directory=dir_, now=created, replay=ReplayGuard()
                )
                assert opened.body == body
                assert opened.seq == seq
                assert opened.reply_to == reply_to


# ---------------------------------------------------------------------------------
# the generator: the files are exactly what it produces
# ---------------------------------------------------------------------------------


def load_generator() -> ModuleType:
    name = "ncb_relay_vectors_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, VECTORS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.mark.req("CODEC-6", "CODEC-8", "SEAL-1")
def test_vector_files_are_up_to_date(tmp_path: Path) -> None:
    generator = load_generator()
    files: dict[str, str] = generator.build_all()
    assert sorted(files) == sorted(p.name for p in VECTORS.glob("*.json"))
    assert generator.stale_files(files) == [], "run: python spec/vectors/generate.py"
    # and --check notices a change
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "codec.json").write_text(
        files["codec.json"].replace("c0", "c1", 1), encoding="utf-8"
    )
    assert generator.stale_files(files, tmp_path) == ["codec.json"]


def test_the_generator_reports_broken_modules_shared_files_and_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The convention of generate.py: every cases_*.py module's build() gives its files."""
    generator = load_generator()
    modules = {
        "cases_tv_one": 'def build():\n    return {"one.json": {"a": [1]}, "both.json": []}\n',
        "cases_tv_two": 'def build():\n    return {"both.json": {}}\n',
        "cases_tv_broken": 'def build():\n    raise ValueError("no vectors today")\n',
        "not_a_case_module": "raise AssertionError('never imported')\n",
    }
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    (tmp_path / "orphan.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "one.json").write_text('{\n  "a": [\n    1\n  ]\n}\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    generated = generator.generate(tmp_path)
    assert generated.files == {"one.json": '{\n  "a": [\n    1\n  ]\n}\n', "both.json": "[]\n"}
    assert generated.errors == [
        "cases_tv_broken.py: build failed: ValueError: no vectors today",
        "both.json: produced by both cases_tv_one.py and cases_tv_two.py",
    ]
    assert generator.stale_files(generated.files, tmp_path) == ["both.json"]
    assert generator.orphan_files(generated.files, tmp_path) == ["orphan.json"]
