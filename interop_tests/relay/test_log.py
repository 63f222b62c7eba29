"""The relay's log over HTTP (spec/relay-api.md, "The log": API-24 to API-30; spec/log.md).

Every answer is checked on the wire (status, media type, exact JSON members) and
then verified with the reference library: checkpoints under the relay's log key as
the directory it serves lists it (LOG-20), proofs against the checkpoints' roots.
The log grows while the suite runs (other tests submit), so each test reads the
sizes it needs first and never assumes a size beyond what it has seen; the tests
here run one at a time, so between two of a test's own requests the log changes
only by what the test itself does.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import httpx
import pytest

from ncb_relay.anchor import AnchorChain
from ncb_relay.checkpoint import (
    Checkpoint,
    LogKey,
    VerifiedCheckpoint,
    WitnessKey,
    cosign_checkpoint,
    parse_note,
    sign_checkpoint,
    verify_checkpoint,
)
from ncb_relay.identity import SigningKeyPair
from ncb_relay.log_keys import relay_log_key
from ncb_relay.merkle import leaf_hash, tree_root, verify_consistency, verify_inclusion
from ncb_relay.receipt import log_origin
from ncb_relay.verified_directory import verify_directory

from .session import RelaySession, Submitted, problem

# Only the bureaus no test reserves: foxtrot to lima are reserved for the rate limit, the
# quotas and the long-poll cap (test_limits.py, test_mailbox.py).
ALPHA, BRAVO, CHARLIE, DELTA, ECHO = (
    "QA.ncb-alpha",
    "QB.ncb-bravo",
    "QC.ncb-charlie",
    "QD.ncb-delta",
    "QE.ncb-echo",
)
CHECKPOINT_MEDIA = "text/plain"
JSON = "application/json"
MAX_PAGE = 1000


# -- reading the log ------------------------------------------------------------------------


def media(response: httpx.Response) -> list[str]:
    return [part.strip().lower() for part in response.headers.get("content-type", "").split(";")]


def read_json(relay: RelaySession, target: str, members: set[str]) -> dict[str, Any]:
    """A public log read answered ``200`` with a JSON object of exactly ``members``."""
    response = relay.request("GET", target)
    assert response.status_code == 200, f"{target}: {response.status_code} {response.text[:300]}"
    assert media(response)[0] == JSON, f"{target}: content type {media(response)}"
    body = response.json()
    assert isinstance(body, dict), f"{target}: not a JSON object"
    assert set(body) == members, f"{target}: members {sorted(body)}"
    return body


def hashes(value: object) -> list[bytes]:
    """A JSON list of 64 lower-case hex digits each, as bytes."""
    assert isinstance(value, list), "a proof is a list"
    for item in value:
        assert isinstance(item, str), f"not a string: {item!r}"
        assert len(item) == 64, f"not 32 bytes in hex: {item!r}"
        assert item == item.lower(), f"not lower-case hex: {item!r}"
    return [bytes.fromhex(item) for item in value]


def log_key(relay: RelaySession) -> LogKey:
    """The relay's log key, taken as LOG-20 says: from the directory the relay serves,
    verified under the fixture's trust anchor, the signing key of the principal of role relay."""
    response = relay.request("GET", "/v1/directory")
    assert response.status_code == 200
    anchors = AnchorChain.load([(relay.fixture.folder / "anchor.signed").read_bytes()])
    directory = verify_directory(response.content, anchors=anchors, now=relay.now())
    assert directory.entry(relay.relay_id).role == "relay"
    key = relay_log_key(directory, relay.relay_id, relay.now())
    assert key.name == log_origin(relay.relay_id) == f"{relay.relay_id}/log"
    return key


def verified(relay: RelaySession, note: str | bytes, *witnesses: WitnessKey) -> VerifiedCheckpoint:
    data = note.encode() if isinstance(note, str) else note
    return verify_checkpoint(
        data, log=log_key(relay), witnesses=witnesses, threshold=len(witnesses)
    )


def checkpoint_note(relay: RelaySession, query: str = "") -> bytes:
    """``GET /v1/log/checkpoint``: 200, ``text/plain; charset=utf-8``, the note's bytes."""
    response = relay.request("GET", "/v1/log/checkpoint" + (f"?{query}" if query else ""))
    assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    kind = media(response)
    assert kind[0] == CHECKPOINT_MEDIA, f"content type {kind}"
    assert "charset=utf-8" in kind[1:], f"content type {kind}"
    return response.content


def latest(relay: RelaySession) -> VerifiedCheckpoint:
    return verified(relay, checkpoint_note(relay))


def entries(relay: RelaySession, start: int, limit: int = MAX_PAGE) -> list[dict[str, Any]]:
    body = read_json(relay, f"/v1/log/entries?start={start}&limit={limit}", {"entries"})
    found: list[dict[str, Any]] = body["entries"]
    for offset, entry in enumerate(found):
        assert set(entry) == {"index", "kind", "hash"}, f"entry members {sorted(entry)}"
        assert entry["index"] == start + offset, "entries in order from start"
        assert entry["kind"] in ("envelope", "directory"), f"kind {entry['kind']!r}"
        hashes([entry["hash"]])
    return found


def all_entries(relay: RelaySession, size: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while len(found) < size:
        page = entries(relay, len(found))
        assert page, f"the log has {len(found)} entries, its checkpoint says {size}"
        found.extend(page)
    return found[:size]


def submit(relay: RelaySession, sender: str, recipient: str, query: str = "") -> Submitted:
    envelope = relay.seal(sender, [recipient])
    return relay.accepted(relay.post_envelope(sender, envelope.data, query=query), envelope)


def settle(relay: RelaySession, recipient: str, *submitted: Submitted) -> None:
    done = relay.ack(recipient, [s.message_id for s in submitted])
    assert done.status_code == 204, done.text[:300]


def witness(relay: RelaySession, who: str) -> WitnessKey:
    return WitnessKey(who, relay.ids[who].signer.public_key)


def post_cosignature(
    relay: RelaySession, who: str, note: bytes, content_type: str = "text/plain; charset=utf-8"
) -> httpx.Response:
    return relay.request(
        "POST", "/v1/log/cosignature", who=who, body=note, content_type=content_type
    )


def cosigned_by(relay: RelaySession, who: str, note: bytes) -> bytes:
    return cosign_checkpoint(
        note, witness=witness(relay, who), signer=relay.ids[who].signer, now=relay.now()
    )


# -- API-24: the evidence of a 202 ----------------------------------------------------------


@pytest.mark.req("API-24", "API-30", "LOG-15", "LOG-16", "LOG-17", "LOG-19", "LOG-20")
def test_every_acceptance_carries_evidence_that_verifies(relay: RelaySession) -> None:
    sender, recipient = ECHO, ALPHA
    relay.drain(recipient)
    accepted = submit(relay, sender, recipient)  # verify_receipt checks LOG-17 in order
    body = accepted.body
    assert type(body["logIndex"]) is int
    assert body["logIndex"] >= 0
    assert isinstance(body["receipt"], str)
    assert "=" not in body["receipt"], "base64url, no pad"
    assert set(body["receipt"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    # the checkpoint verifies under the key the directory lists for the relay (API-30)
    checkpoint = verified(relay, body["checkpoint"])
    assert checkpoint.size > body["logIndex"]
    verify_inclusion(
        leaf_hash(accepted.envelope.message_hash),
        body["logIndex"],
        checkpoint.size,
        hashes(body["inclusion"]),
        checkpoint.root,
    )
    # the leaf is the envelope's message hash (LOG-1)
    assert entries(relay, body["logIndex"], 1) == [
        {"index": body["logIndex"], "kind": "envelope", "hash": body["messageHash"]}
    ]
    settle(relay, recipient, accepted)


@pytest.mark.req("API-24", "LOG-4", "LOG-11")
def test_a_known_size_brings_a_consistency_proof(relay: RelaySession) -> None:
    sender, recipient = ALPHA, BRAVO
    relay.drain(recipient)
    held = latest(relay)
    accepted = submit(relay, sender, recipient, f"known={held.size}")
    body = accepted.body
    assert "consistency" in body, "known=M at most the log's size needs a consistency proof"
    assert set(body["consistency"]) == {"from", "to", "proof"}
    checkpoint = verified(relay, body["checkpoint"])
    assert (body["consistency"]["from"], body["consistency"]["to"]) == (
        min(held.size, checkpoint.size),
        max(held.size, checkpoint.size),
    )
    assert checkpoint.size > held.size, "the new envelope's checkpoint extends the one held"
    verify_consistency(
        held.size, checkpoint.size, held.root, checkpoint.root, hashes(body["consistency"]["proof"])
    )
    # known=0: from the empty tree, an empty proof
    zero = submit(relay, sender, recipient, "known=0")
    size = verified(relay, zero.body["checkpoint"]).size
    assert zero.body["consistency"] == {"from": 0, "to": size, "proof": []}
    settle(relay, recipient, accepted, zero)


@pytest.mark.req("API-24", "API-19", "API-20", "LOG-1")
@pytest.mark.parametrize(
    "query", ["known=x", "known=-1", "known=", "known=1&known=1", "other=1", "known=1&other=2"]
)
def test_any_other_submission_query_is_malformed(relay: RelaySession, query: str) -> None:
    sender, recipient = BRAVO, ECHO
    relay.drain(recipient)
    before = latest(relay).size
    envelope = relay.seal(sender, [recipient])
    problem(relay.post_envelope(sender, envelope.data, query=query), 400, "malformed")
    assert relay.batch(recipient)["messages"] == [], "a refused envelope was stored"
    assert latest(relay).size == before, "a refused envelope was logged"


@pytest.mark.req("LOG-1", "API-20")
def test_a_refused_envelope_appends_nothing(relay: RelaySession) -> None:
    sender, recipient = ECHO, BRAVO
    relay.drain(recipient)
    before = latest(relay)
    envelope = relay.seal(sender, [recipient])
    data = bytearray(envelope.data)
    data[-1] ^= 0x80
    problem(relay.post_envelope(sender, bytes(data)), 422, "bad-signature")
    problem(relay.post_envelope(recipient, envelope.data), 403, "binding-mismatch")
    after = latest(relay)
    assert (after.size, after.root) == (before.size, before.root), "a refusal changed the log"
    tail = entries(relay, max(0, after.size - MAX_PAGE))
    hashes_logged = {e["hash"] for e in tail}
    assert envelope.message_hash.hex() not in hashes_logged


# -- API-25, API-26: checkpoints ------------------------------------------------------------


@pytest.mark.req("API-25", "API-30", "LOG-6", "LOG-8", "LOG-20")
def test_the_latest_checkpoint_verifies_under_the_directory_key(relay: RelaySession) -> None:
    note = checkpoint_note(relay)
    checkpoint = verified(relay, note)
    assert checkpoint.origin == f"{relay.relay_id}/log"
    # it is the relay's directory signing key that signs (LOG-20): the fixture's relay key.
    # API-30's other half (refusing to start with another key, rebuilding the tree after a
    # restart) concerns the relay's start-up and is not testable from outside: not checked.
    assert log_key(relay).public_key == relay.ids[relay.relay_id].signer.public_key
    # with cosigned=0 the answer is the latest too
    assert parse_note(checkpoint_note(relay, "cosigned=0")).text == parse_note(note).text


@pytest.mark.req("API-25", "API-19")
def test_a_checkpoint_with_more_cosignatures_than_there_are_witnesses_is_not_found(
    relay: RelaySession,
) -> None:
    # the fixture lists 13 possible witnesses (the coordinator and 12 active bureaus)
    problem(relay.request("GET", "/v1/log/checkpoint?cosigned=31"), 404, "not-found")


@pytest.mark.req("API-19")
@pytest.mark.parametrize("query", ["cosigned=x", "cosigned=", "other=1", "cosigned=1&cosigned=1"])
def test_a_bad_checkpoint_query_is_malformed(relay: RelaySession, query: str) -> None:
    problem(relay.request("GET", f"/v1/log/checkpoint?{query}"), 400, "malformed")


@pytest.mark.req("API-26", "API-24", "LOG-11")
def test_the_checkpoints_after_a_size_smallest_first(relay: RelaySession) -> None:
    sender, recipient = BRAVO, ALPHA
    relay.drain(recipient)
    first = submit(relay, sender, recipient)
    second = submit(relay, sender, recipient)
    given = [verified(relay, s.body["checkpoint"]) for s in (first, second)]
    after = given[0].size - 1
    body = read_json(relay, f"/v1/log/checkpoints?after={after}", {"checkpoints"})
    notes = body["checkpoints"]
    assert isinstance(notes, list)
    assert notes, "at least the checkpoints given out above"
    assert all(isinstance(n, str) for n in notes)
    listed = [verified(relay, note) for note in notes]
    sizes = [c.size for c in listed]
    assert all(size > after for size in sizes), "only checkpoints larger than after"
    assert sizes == sorted(set(sizes)), "smallest first, each size once"
    texts = {parse_note(c.data).text for c in listed}
    for checkpoint in given:  # every checkpoint given out is listed
        assert parse_note(checkpoint.data).text in texts
    # limit bounds the page; the smallest comes first
    one = read_json(relay, f"/v1/log/checkpoints?after={after}&limit=1", {"checkpoints"})
    assert len(one["checkpoints"]) == 1
    assert verified(relay, one["checkpoints"][0]).size == sizes[0]
    # consecutive checkpoints are consistent (LOG-11)
    for old, new in itertools.pairwise(listed):
        proof = read_json(
            relay, f"/v1/log/consistency?from={old.size}&to={new.size}", {"from", "to", "proof"}
        )
        verify_consistency(old.size, new.size, old.root, new.root, hashes(proof["proof"]))
    settle(relay, recipient, first, second)


@pytest.mark.req("API-26", "API-19")
@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=x", "after=-1", "after=1&after=2", "other=1"]
)
def test_a_bad_checkpoints_query_is_malformed(relay: RelaySession, query: str) -> None:
    problem(relay.request("GET", f"/v1/log/checkpoints?{query}"), 400, "malformed")


@pytest.mark.req("API-26")
def test_the_checkpoints_page_limits_at_the_bounds(relay: RelaySession) -> None:
    assert read_json(relay, "/v1/log/checkpoints?limit=1000", {"checkpoints"})["checkpoints"]
    beyond = latest(relay).size
    page = read_json(relay, f"/v1/log/checkpoints?after={beyond}", {"checkpoints"})
    for note in page["checkpoints"]:  # another test's checkpoint may be newer; none older
        assert verified(relay, note).size > beyond


# -- API-27, API-28: proofs and entries -----------------------------------------------------


@pytest.mark.req("API-27", "LOG-3", "LOG-4")
def test_inclusion_and_consistency_proofs_verify(relay: RelaySession) -> None:
    sender, recipient = ECHO, ALPHA
    relay.drain(recipient)
    old = latest(relay)
    accepted = submit(relay, sender, recipient)
    index = accepted.body["logIndex"]
    new = latest(relay)
    assert new.size > index
    leaf = leaf_hash(accepted.envelope.message_hash)
    proof = read_json(
        relay, f"/v1/log/inclusion?index={index}&size={new.size}", {"index", "size", "proof"}
    )
    assert (proof["index"], proof["size"]) == (index, new.size)
    verify_inclusion(leaf, index, new.size, hashes(proof["proof"]), new.root)
    for earlier in {0, new.size // 2, new.size - 2} - {index}:  # leaves inside the tree too
        entry = entries(relay, earlier, 1)[0]
        target = f"/v1/log/inclusion?index={earlier}&size={new.size}"
        inner = read_json(relay, target, {"index", "size", "proof"})
        assert (inner["index"], inner["size"]) == (earlier, new.size)
        entry_leaf = leaf_hash(bytes.fromhex(entry["hash"]))
        verify_inclusion(entry_leaf, earlier, new.size, hashes(inner["proof"]), new.root)
    consistency = read_json(
        relay, f"/v1/log/consistency?from={old.size}&to={new.size}", {"from", "to", "proof"}
    )
    assert (consistency["from"], consistency["to"]) == (old.size, new.size)
    verify_consistency(old.size, new.size, old.root, new.root, hashes(consistency["proof"]))
    same = read_json(
        relay, f"/v1/log/consistency?from={new.size}&to={new.size}", {"from", "to", "proof"}
    )
    assert same["proof"] == []
    settle(relay, recipient, accepted)


@pytest.mark.req("API-27", "API-19")
def test_proof_requests_out_of_bounds_are_malformed(relay: RelaySession) -> None:
    size = latest(relay).size
    beyond = size + 1_000_000
    for target in (
        f"/v1/log/inclusion?index={size - 1}&size={size - 1}",  # I >= N
        f"/v1/log/inclusion?index={size}&size={size - 1}",
        f"/v1/log/inclusion?index=0&size={beyond}",  # beyond the log
        f"/v1/log/inclusion?index={size}&size={beyond}",
        f"/v1/log/consistency?from={size}&to={size - 1}",  # M > N
        f"/v1/log/consistency?from=1&to={beyond}",
        "/v1/log/inclusion?index=0",  # a missing parameter
        f"/v1/log/inclusion?size={size}",
        "/v1/log/inclusion",
        "/v1/log/consistency?from=0",
        f"/v1/log/consistency?to={size}",
        "/v1/log/consistency",
        f"/v1/log/inclusion?index=x&size={size}",  # not a decimal number
        f"/v1/log/inclusion?index=-1&size={size}",
        f"/v1/log/consistency?from=0&to={size}&to={size}",  # a parameter twice
        f"/v1/log/consistency?from=0&to={size}&other=1",  # another parameter
    ):
        problem(relay.request("GET", target), 400, "malformed")


@pytest.mark.req("API-28", "LOG-1")
def test_entries_are_the_hashes_of_what_was_accepted(relay: RelaySession) -> None:
    sender, recipient = ALPHA, ECHO
    relay.drain(recipient)
    accepted = [submit(relay, sender, recipient) for _ in range(3)]
    start = accepted[0].body["logIndex"]
    found = entries(relay, start, 1000)
    by_index = {e["index"]: e for e in found}
    for item in accepted:
        assert by_index[item.body["logIndex"]] == {
            "index": item.body["logIndex"],
            "kind": "envelope",
            "hash": item.envelope.message_hash.hex(),
        }
    assert len(entries(relay, start, 2)) == 2, "limit bounds the page"
    assert entries(relay, latest(relay).size + 1_000_000) == [], "no entries past the end"
    first = read_json(relay, "/v1/log/entries?limit=1", {"entries"})["entries"]
    assert [e["index"] for e in first] == [0], "start defaults to 0"
    settle(relay, recipient, *accepted)


@pytest.mark.req("API-28", "API-19")
@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "start=x", "start=-1", "start=0&start=0", "other=1"]
)
def test_a_bad_entries_query_is_malformed(relay: RelaySession, query: str) -> None:
    problem(relay.request("GET", f"/v1/log/entries?{query}"), 400, "malformed")


@pytest.mark.req("LOG-1", "LOG-2", "LOG-11", "API-26", "API-28", "API-14")
def test_every_checkpoint_is_the_root_of_the_entries(relay: RelaySession) -> None:
    # an auditor's replay (LOG-31 is the auditor's duty; this checks the relay's side)
    size = latest(relay).size
    logged = all_entries(relay, size)
    leaves = [leaf_hash(bytes.fromhex(e["hash"])) for e in logged]
    notes: list[str] = []
    after = 0
    while True:
        page = read_json(relay, f"/v1/log/checkpoints?after={after}&limit=1000", {"checkpoints"})
        if not page["checkpoints"]:
            break
        notes.extend(page["checkpoints"])
        after = verified(relay, page["checkpoints"][-1]).size
    sizes = []
    for note in notes:
        checkpoint = verified(relay, note)
        sizes.append(checkpoint.size)
        if checkpoint.size <= size:
            assert checkpoint.root == tree_root(leaves[: checkpoint.size]), checkpoint.size
    assert sizes == sorted(set(sizes)), "strictly increasing sizes"
    assert size in sizes, "the latest checkpoint is listed"
    # the directory the relay serves is logged as a directory entry
    index = int(relay.request("GET", "/v1/directory").headers["ncbr-log-index"])
    assert logged[index]["kind"] == "directory"


# -- API-29: cosignatures -------------------------------------------------------------------


@pytest.mark.req("API-29", "API-25", "LOG-10")
def test_a_bureau_and_the_coordinator_cosign_the_latest_checkpoint(relay: RelaySession) -> None:
    bureau, coordinator = BRAVO, relay.fixture.coordinator
    note = checkpoint_note(relay)
    text = parse_note(note).text
    for who in (bureau, coordinator):
        response = post_cosignature(relay, who, cosigned_by(relay, who, note))
        assert response.status_code == 204, f"{who}: {response.status_code} {response.text[:300]}"
        assert response.content == b""
    both = (witness(relay, bureau), witness(relay, coordinator))
    shown = checkpoint_note(relay, "cosigned=2")
    checkpoint = verified(relay, shown, *both)
    assert parse_note(shown).text == text, "the checkpoint they cosigned"
    assert set(checkpoint.cosigned) == {bureau, coordinator}
    one = checkpoint_note(relay, "cosigned=1")
    assert parse_note(one).text == text
    verified(relay, one, *both)
    # the latest checkpoint carries every cosignature line held for it
    current = checkpoint_note(relay)
    if parse_note(current).text == text:
        verified(relay, current, *both)
    # a later cosignature replaces the earlier: one line per witness and checkpoint
    again = cosign_checkpoint(
        note, witness=both[0], signer=relay.ids[bureau].signer, now=relay.now() + 1
    )
    assert post_cosignature(relay, bureau, again).status_code == 204
    lines = parse_note(checkpoint_note(relay, "cosigned=2")).signatures
    assert [s.name for s in lines].count(bureau) == 1, "one line per witness"


def _resigned(relay: RelaySession, note: bytes, *, key: SigningKeyPair, root: bytes) -> bytes:
    parsed = Checkpoint.parse(parse_note(note).text)
    other = Checkpoint(parsed.origin, parsed.size, root, parsed.extensions)
    return sign_checkpoint(other, log=LogKey(parsed.origin, key.public_key), signer=key)


@pytest.mark.req("API-29", "API-19", "LOG-9")
def test_a_cosignature_of_a_checkpoint_the_relay_did_not_sign_is_refused(
    relay: RelaySession,
) -> None:
    who = ALPHA
    note = checkpoint_note(relay)
    relay_key = relay.ids[relay.relay_id].signer
    assert isinstance(relay_key, SigningKeyPair)
    # the relay's key on a tree it never signed: verifies, but is not its checkpoint
    forged = _resigned(relay, note, key=relay_key, root=os.urandom(32))
    problem(post_cosignature(relay, who, cosigned_by(relay, who, forged)), 422, "binding-mismatch")
    # another key under the log's name: the relay's key did not sign it
    stranger = _resigned(relay, note, key=SigningKeyPair(os.urandom(32)), root=os.urandom(32))
    problem(post_cosignature(relay, who, cosigned_by(relay, who, stranger)), 422, "unknown-key")
    # the text altered under the relay's signature line
    parsed = parse_note(note)
    lines = parsed.text.decode().split("\n")
    lines[1] = str(int(lines[1]) + 1)
    altered = "\n".join(lines).encode() + b"\n" + b"".join(s.line() for s in parsed.signatures)
    problem(post_cosignature(relay, who, cosigned_by(relay, who, altered)), 422, "bad-signature")


@pytest.mark.req("API-29", "API-19", "LOG-10")
def test_a_cosignature_that_does_not_verify_is_refused(relay: RelaySession) -> None:
    who = ECHO
    note = checkpoint_note(relay)
    # no cosignature of the caller at all
    problem(post_cosignature(relay, who, note), 422, "below-threshold")
    # the caller's line with a flipped bit
    signed = parse_note(cosigned_by(relay, who, note))
    last = signed.signatures[-1]
    bad = bytearray(last.signature)
    bad[-1] ^= 0x01
    broken = type(signed)(
        signed.text, (*signed.signatures[:-1], type(last)(last.name, last.key_id, bytes(bad)))
    )
    problem(post_cosignature(relay, who, broken.data), 422, "bad-signature")
    # another bureau's cosignature, posted by this one: its own is missing
    other = DELTA
    problem(post_cosignature(relay, who, cosigned_by(relay, other, note)), 422, "below-threshold")


@pytest.mark.req("API-29", "API-19")
@pytest.mark.parametrize("case", ["garbage", "no-signature", "not-utf8"])
def test_a_cosignature_note_that_does_not_parse_is_400(relay: RelaySession, case: str) -> None:
    who = DELTA
    text = parse_note(checkpoint_note(relay)).text
    body = {
        "garbage": b"not a signed note\n",
        "no-signature": text + b"\n",
        "not-utf8": text + b"\n\xff\xfe\n",
    }[case]
    problem(post_cosignature(relay, who, body), 400, "malformed")


@pytest.mark.req("API-29", "API-3", "API-19")
def test_a_cosignature_of_another_media_type_is_415(relay: RelaySession) -> None:
    who = DELTA
    note = cosigned_by(relay, who, checkpoint_note(relay))
    problem(post_cosignature(relay, who, note, "application/octet-stream"), 415, "malformed")


@pytest.mark.req("API-29", "API-19")
def test_the_relay_itself_cannot_cosign(relay: RelaySession) -> None:
    # the relay principal authenticates (it is listed and active), but is no witness
    who = relay.relay_id
    note = cosigned_by(relay, who, checkpoint_note(relay))
    problem(post_cosignature(relay, who, note), 403, "unknown-key")


@pytest.mark.req("API-29", "API-19")
def test_a_cosignature_from_a_principal_that_is_not_active_is_refused(
    relay: RelaySession,
) -> None:
    suspended = next(p.id for p in relay.fixture.principals.values() if not p.active)
    note = cosigned_by(relay, suspended, checkpoint_note(relay))
    # it cannot even authenticate (AUTH-13): 401 before the cosignature is looked at
    problem(post_cosignature(relay, suspended, note), 401, "unknown-key")
