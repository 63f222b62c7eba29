"""A relay that accepts a message and then withholds it (issue #7: drops are detected).

The relay answers ``202`` with a valid receipt, so the sender holds signed
evidence that the relay took the message into its log; the recipient is never
handed it, so no delivery receipt comes back and the sender's evidence turns
``overdue``.  The receipt, the checkpoint and the inclusion proof the sender
kept convince a third party on their own: the relay cannot deny it had the
message.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bureau_world import Tamper, bureau, relay_node, until
from directory_world import CHAIN
from message_samples import H0, RABAT, SEOUL, request
from ncb_relay.bureau import RowState
from ncb_relay.bureau.delivery import DeliveryState
from ncb_relay.log_keys import relay_log_key
from ncb_relay.receipt import verify_receipt
from ncb_relay.verified_directory import load_directory
from relay_node_world import GUARD, RELAY

pytestmark = pytest.mark.anyio


@pytest.mark.req("LOG-18", "MSG-16")
async def test_a_message_the_relay_accepted_and_withheld_is_overdue_with_proof(
    tmp_path: Path,
) -> None:
    withholding = Tamper()
    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, RABAT, tmp_path, transport=withholding) as rabat,
        bureau(url, clock, SEOUL, tmp_path) as seoul,
    ):
        dropped = await seoul.send(request(handling=H0), to=[RABAT])
        withholding.withheld.add(dropped.message_id.hex())
        delivered = await seoul.send(request(handling=H0), to=[RABAT])
        with anyio.fail_after(GUARD):
            await until(
                lambda: seoul.evidence(delivered.message_id).state is DeliveryState.RECEIPTED
            )
        assert dropped.state is RowState.ACCEPTED
        evidence = seoul.evidence(dropped.message_id)
        assert evidence.state is DeliveryState.ACCEPTED  # the relay has it; no receipt
        due = evidence.deadline
        assert [e.message_id for e in seoul.overdue(now=due)] == [dropped.message_id]
        assert seoul.overdue(now=due)[0].missing == (RABAT,)
        assert [r.message_id for r in rabat.inbox()] == [delivered.message_id]

        kept = seoul.log.receipt(dropped.message_id)  # what the sender shows a third party
        assert kept is not None
        directory = load_directory(
            (tmp_path / "relay" / "directory.signed").read_bytes(), anchors=CHAIN
        )
        log = relay_log_key(directory, RELAY, clock.now)
        proven = verify_receipt(
            kept.receipt,
            kept.checkpoint,
            kept.inclusion,
            relay_id=RELAY,
            relay_key=log.public_key,
            log=log,
            message_id=dropped.message_id,
            message_hash=dropped.message_hash,
        )
        assert proven.receipt.log_index == kept.log_index
