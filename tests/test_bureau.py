"""The Bureau API (ncb_relay.bureau) end to end on a real relay, under trio and asyncio.

Seoul asks through the coordinator; the coordinator forwards to Rabat with
provenance; Rabat's handler acknowledges, reports and answers; Seoul's
``request`` returns the answered conversation.  Every message crosses the
relay over TCP and is verified before a handler sees it.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from bureau_world import GS, bureau, relay_node
from message_samples import H0, RABAT, SEOUL, acknowledgement, request, response, status
from ncb_relay.bureau import Incoming, RowState
from ncb_relay.messages import AssistanceRequest, AssistanceResponse, RequestState


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_a_request_is_forwarded_answered_and_bound(tmp_path: Path) -> None:
    async def coordinator_forwards(incoming: Incoming) -> None:
        if incoming.forwarded is None and incoming.sender == SEOUL:
            await gs.forward(incoming, to=[RABAT, SEOUL], note="Please assist NCB Seoul.")

    async def rabat_answers(incoming: Incoming) -> None:
        assert incoming.forwarded is not None
        assert incoming.author == SEOUL
        incoming.reply(acknowledgement(handling=H0))
        incoming.reply(status())
        incoming.reply(response(handling=H0))

    async with (
        relay_node(tmp_path) as (url, clock),
        bureau(url, clock, GS, tmp_path, handlers={AssistanceRequest: coordinator_forwards}) as gs,
        bureau(url, clock, RABAT, tmp_path, handlers={AssistanceRequest: rabat_answers}),
        bureau(url, clock, SEOUL, tmp_path) as seoul,
    ):
        with anyio.fail_after(30):
            conversation = await seoul.request(request(handling=H0), to=[GS], timeout=25)
        assert conversation.state is RequestState.ANSWERED
        answer = [s for s in conversation.steps if isinstance(s.body, AssistanceResponse)]
        assert answer
        assert answer[0].sender == RABAT
        assert [r.state for r in seoul.outbox()] == [RowState.ACCEPTED]
        assert all(r.state is RowState.HANDLED for r in seoul.inbox())
