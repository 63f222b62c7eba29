"""Black-box tests of a relay reachable by URL (harness.md, "Relays")."""
