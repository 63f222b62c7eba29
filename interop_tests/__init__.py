"""NCBR/1 conformance suite (issue #8); see harness.md and ``ncb-relay conformance``."""
