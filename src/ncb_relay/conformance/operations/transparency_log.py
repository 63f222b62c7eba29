"""The transparency log operations (spec/log.md).

Merkle hashes and proofs, checkpoints followed and checked by a client, relay
receipts, a witness's cosignatures and an auditor's report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ... import NcbRelayError, SigningKeyPair, SigningPublicKey, merkle
from ...checkpoint import LogKey, LogView, WitnessKey, verify_checkpoint
from ...errors import LogFork
from ...log_audit import LogAuditor, ServedEntry
from ...receipt import log_origin, verify_receipt
from ...witness import Witness
from .base import OperationsBase
from .values import JSON, BadRequest


class LogOperations(OperationsBase):
    """log-hash to audit-log: what a client, a witness and an auditor check of a log."""

    @staticmethod
    def _hashes(values: list[str]) -> list[bytes]:
        return [bytes.fromhex(v) for v in values]

    @staticmethod
    def log_key(request: JSON) -> LogKey:
        key = request["log"]
        return LogKey(key["name"], SigningPublicKey(bytes.fromhex(key["publicKey"])))

    def log_hash(self, request: JSON) -> JSON:
        if request["kind"] == "leaf":
            return {"hash": merkle.leaf_hash(bytes.fromhex(request["entry"])).hex()}
        if request["kind"] == "node":
            left, right = bytes.fromhex(request["left"]), bytes.fromhex(request["right"])
            return {"hash": merkle.node_hash(left, right).hex()}
        raise BadRequest(f"unknown kind {request['kind']!r}")

    def log_root(self, request: JSON) -> JSON:
        leaves = [merkle.leaf_hash(bytes.fromhex(e)) for e in request["entries"]]
        return {"root": merkle.tree_root(leaves).hex()}

    def verify_inclusion(self, request: JSON) -> JSON:
        merkle.verify_inclusion(
            bytes.fromhex(request["leafHash"]),
            request["leafIndex"],
            request["treeSize"],
            self._hashes(request["proof"]),
            bytes.fromhex(request["root"]),
        )
        return {"valid": True}

    def verify_consistency(self, request: JSON) -> JSON:
        merkle.verify_consistency(
            request["oldSize"],
            request["newSize"],
            bytes.fromhex(request["oldRoot"]),
            bytes.fromhex(request["newRoot"]),
            self._hashes(request["proof"]),
        )
        return {"valid": True}

    @staticmethod
    def witness_keys(request: JSON) -> list[WitnessKey]:
        return [
            WitnessKey(w["name"], SigningPublicKey(bytes.fromhex(w["publicKey"])))
            for w in request.get("witnesses", [])
        ]

    def verify_checkpoint(self, request: JSON) -> JSON:
        verified = verify_checkpoint(
            bytes.fromhex(request["note"]),
            log=self.log_key(request),
            witnesses=self.witness_keys(request),
            threshold=request.get("threshold", 0),
        )
        return {
            "origin": verified.origin,
            "size": verified.size,
            "root": verified.root.hex(),
            "extensions": list(verified.checkpoint.extensions),
            "cosigned": dict(verified.cosigned),
        }

    def follow_log(self, request: JSON) -> JSON:
        view = LogView(self.log_key(request))
        return self._follow(view, view.update, request["steps"])

    def _follow(
        self, view: LogView, offer: Callable[[bytes, Sequence[bytes]], object], steps: list[JSON]
    ) -> JSON:
        """Each step's checkpoint offered to ``view`` in turn (by ``update`` or ``check``)."""
        outcomes: list[JSON] = []
        for step in steps:
            outcome: JSON = {}
            try:
                offer(bytes.fromhex(step["note"]), self._hashes(step["proof"]))
            except NcbRelayError as exc:
                outcome["error"] = self.error_code(exc)
            outcome["latestSize"] = None if view.latest is None else view.latest.size
            outcomes.append(outcome)
        return {"steps": outcomes, "forks": self._forks(view.forks)}

    @staticmethod
    def _forks(forks: Sequence[LogFork]) -> list[JSON]:
        return [
            {"held": f.held.hex(), "offered": f.offered.hex(), "reason": f.reason} for f in forks
        ]

    def check_log(self, request: JSON) -> JSON:
        view = LogView(
            self.log_key(request),
            witnesses=self.witness_keys(request),
            threshold=request.get("threshold", 0),
        )
        return self._follow(view, view.check, request["steps"])

    def verify_receipt(self, request: JSON) -> JSON:
        relay_id = request["relay"]["id"]
        relay_key = SigningPublicKey(bytes.fromhex(request["relay"]["publicKey"]))
        verified = verify_receipt(
            bytes.fromhex(request["receipt"]),
            bytes.fromhex(request["checkpoint"]),
            self._hashes(request["inclusion"]),
            relay_id=relay_id,
            relay_key=relay_key,
            log=LogKey(log_origin(relay_id), relay_key),  # LOG-20
            message_id=bytes.fromhex(request["messageId"]),
            message_hash=bytes.fromhex(request["messageHash"]),
        )
        return {
            "relay": verified.receipt.relay,
            "logIndex": verified.receipt.log_index,
            "acceptedAt": verified.receipt.accepted_at,
            "checkpointSize": verified.checkpoint.size,
        }

    def witness_log(self, request: JSON) -> JSON:
        key = request["witness"]
        signer = SigningKeyPair(bytes.fromhex(key["signingSeed"]))
        held = request.get("held")
        witness = Witness(
            log=self.log_key(request),
            key=WitnessKey(key["name"], signer.public_key),
            signer=signer,
            held=None if held is None else bytes.fromhex(held),
        )
        steps: list[JSON] = []
        for step in request["steps"]:
            outcome: JSON = {}
            try:
                note = bytes.fromhex(step["note"])
                outcome["note"] = witness.cosign(
                    note, self._hashes(step["proof"]), now=step["now"]
                ).hex()
            except NcbRelayError as exc:
                outcome["error"] = self.error_code(exc)
            outcome["heldSize"] = None if witness.held is None else witness.held.size
            steps.append(outcome)
        return {"steps": steps, "forks": self._forks(witness.forks)}

    def audit_log(self, request: JSON) -> JSON:
        windows = {
            (w["name"], bytes.fromhex(w["publicKey"])): (w.get("notBefore"), w.get("notAfter"))
            for w in request.get("witnesses", [])
        }

        def valid_at(key: WitnessKey, at: int) -> bool:
            not_before, not_after = windows[key.name, key.public_key.raw]
            return (not_before is None or not_before <= at) and (
                not_after is None or at < not_after
            )

        auditor = LogAuditor(
            log_keys=[self.log_key(request)],
            witnesses=self.witness_keys(request),
            threshold=request.get("threshold", 0),
            witness_valid_at=valid_at,
        )
        auditor.add_checkpoints([bytes.fromhex(note) for note in request["checkpoints"]])
        auditor.add_entries(
            [
                ServedEntry(e["index"], e["kind"], bytes.fromhex(e["hash"]))
                for e in request["entries"]
            ]
        )
        signed = {size for size, _root in auditor.checkpoints if size <= auditor.size}
        for p in request.get("inclusion", []):  # an auditor asks only for proofs it can check
            if p["size"] in signed and 0 <= p["index"] < p["size"]:
                auditor.check_inclusion(p["index"], p["size"], self._hashes(p["proof"]))
        for p in request.get("consistency", []):
            if {p["oldSize"], p["newSize"]} <= signed and 0 < p["oldSize"] < p["newSize"]:
                auditor.check_consistency(p["oldSize"], p["newSize"], self._hashes(p["proof"]))
        report = auditor.finish()
        return {
            "verified": report.ok,
            "size": report.size,
            "root": report.root.hex(),
            "problems": [
                {"code": p.code, "index": p.index, "size": p.size} for p in report.problems
            ],
        }
