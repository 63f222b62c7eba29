"""The directory and trust-anchor operations (spec/directory.md)."""

from __future__ import annotations

from ... import AnchorChain, DirectoryKeys, DirectoryPolicy, load_directory, verify_directory
from .base import OperationsBase
from .values import JSON, BadRequest


class DirectoryOperations(OperationsBase):
    """verify-anchors, verify-directory and look-up-key."""

    @staticmethod
    def anchor_chain(request: JSON) -> AnchorChain:
        files = [bytes.fromhex(a) for a in request["anchors"]]
        if not files:
            raise BadRequest("at least one anchor is needed")
        chain = AnchorChain.trust(files[0])
        for data in files[1:]:
            chain = chain.extend(data)
        return chain

    def verify_anchors(self, request: JSON) -> JSON:
        chain = self.anchor_chain(request)
        return {"currentSerial": chain.current.serial, "fingerprint": chain.fingerprint.hex()}

    def verify_directory(self, request: JSON) -> JSON:
        chain = self.anchor_chain(request)
        policy = DirectoryPolicy(grace=request["grace"], max_skew=request["maxSkew"])
        previous = None
        if request.get("previous") is not None:
            previous = load_directory(
                bytes.fromhex(request["previous"]), anchors=chain, policy=policy
            )
        verified = verify_directory(
            bytes.fromhex(request["document"]),
            anchors=chain,
            now=request["now"],
            previous=previous,
            intermediates=[bytes.fromhex(d) for d in request.get("intermediates", [])],
            policy=policy,
        )
        return {
            "serial": verified.serial,
            "hash": verified.hash.hex(),
            "inGrace": verified.in_grace,
        }

    def look_up_key(self, request: JSON) -> JSON:
        verified = load_directory(
            bytes.fromhex(request["document"]),
            anchors=self.anchor_chain(request),
            policy=DirectoryPolicy(grace=request["grace"]),
        )
        if request["view"] not in ("live", "historical"):
            raise BadRequest(f"unknown view {request['view']!r}")
        view: DirectoryKeys = verified.live if request["view"] == "live" else verified.historical
        lookup, principal, at = request["lookup"], request["principal"], request["at"]
        if lookup == "signingKey":
            key_id = bytes.fromhex(request["keyId"])
            return {"key": view.signing_key(principal, key_id, at).raw.hex()}
        if lookup == "checkEncryptionKey":
            view.check_encryption_key(principal, bytes.fromhex(request["keyId"]), at)
            return {}
        if lookup == "encryptionKeyFor":
            return {"key": view.encryption_key(principal, at).raw.hex()}
        raise BadRequest(f"unknown lookup {lookup!r}")
