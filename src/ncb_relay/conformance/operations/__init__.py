"""The reference adapter's operations, one module per area of the harness.

:class:`~ncb_relay.conformance.adapter.Adapter` inherits every group; each group
is a class whose methods answer the harness operations of its area:

- :mod:`.values`: how the harness writes values in JSON (typed values, hex, identities).
- :mod:`.base`: what every group reads from a request (directory, freshness, limits).
- :mod:`.envelopes`: the codec, envelopes, disclosures and request authentication.
- :mod:`.messages`: message bodies, conversations, forwards and sealing.
- :mod:`.receipts`: delivery receipts, from the sender's and the recipient's side.
- :mod:`.review_gate`: the coordinator's review gate.
- :mod:`.transparency_log`: Merkle proofs, checkpoints, receipts, witnesses and audits.
- :mod:`.directory`: trust anchors and the directory.
- :mod:`.keystore`: keyring files.
"""
