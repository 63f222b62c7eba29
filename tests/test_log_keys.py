"""The keys of a relay's log and of its witnesses, as the directory lists them (log_keys)."""

from __future__ import annotations

import pytest

from directory_world import BUREAUS, COORDINATOR, RELAY, T0, genesis, loaded
from ncb_relay.errors import UnknownKey
from ncb_relay.lifecycle import next_version, revoke_principal, suspend
from ncb_relay.log_keys import relay_log_key, witness_key
from ncb_relay.receipt import log_origin

SEOUL = BUREAUS[0]


@pytest.mark.req("LOG-20")
def test_the_relays_log_key_is_its_directory_signing_key_under_its_log_name() -> None:
    document, members = genesis()
    log = relay_log_key(loaded(document), RELAY, T0 + 1)
    assert log.name == log_origin(RELAY) == f"{RELAY}/log"
    assert log.public_key == members[RELAY].signer.public_key
    with pytest.raises(UnknownKey):
        relay_log_key(loaded(document), SEOUL, T0 + 1)  # a bureau is not a relay


@pytest.mark.req("LOG-20", "LOG-30")
@pytest.mark.parametrize("change", ["revoke", "suspend"])
def test_a_revoked_or_suspended_principal_has_no_log_or_witness_key(change: str) -> None:
    """As the live view (DIR-11): a key of a principal that is not active signs nothing."""
    document, _ = genesis()
    later = next_version(document, issued=T0 + 100)
    for principal in (RELAY, COORDINATOR):
        later = (
            revoke_principal(later, principal) if change == "revoke" else suspend(later, principal)
        )
    directory = loaded(later)
    with pytest.raises(UnknownKey):
        relay_log_key(directory, RELAY, T0 + 200)
    with pytest.raises(UnknownKey):
        witness_key(directory, COORDINATOR, T0 + 200)
    assert witness_key(directory, SEOUL, T0 + 200).name == SEOUL


@pytest.mark.req("LOG-30")
def test_only_the_coordinator_and_bureaus_are_witnesses() -> None:
    document, _ = genesis()
    directory = loaded(document)
    assert witness_key(directory, COORDINATOR, T0 + 1).name == COORDINATOR
    with pytest.raises(UnknownKey):
        witness_key(directory, RELAY, T0 + 1)
