"""A plain blocking script: NCB Seoul asks NCB Rabat for assistance and waits for the answer.

No async code: :class:`BlockingBureau` runs the bureau's event loop in a
background thread and makes each call block until it is done.  NCB Rabat is a
``BlockingBureau`` too; its handler is a plain function, run in a worker
thread, that acknowledges the request and answers it.  The coordinator is in
copy of the request, as the channel's rules ask.

    python examples/blocking_script.py                # its own throw-away relay
    python examples/blocking_script.py --relay URL --anchor FILE --keys DIR
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from example_relay import GS, RABAT, SEOUL, add_relay_arguments, joined_blocking
from ncb_relay.bureau import Incoming
from ncb_relay.demo import scenario
from ncb_relay.messages import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Handling,
)

DAY = 24 * 3600
H0 = Handling(code="H0", source_reliability="A", information_accuracy=1)

# the SkyManga request, as the demo sends it (examples/skymanga_trio.py builds one)
REQUEST = scenario.request()


def rabat_answers(incoming: Incoming) -> None:
    """NCB Rabat's handler: a plain function; its replies are sent once it returns."""
    print(f"Rabat:  request from {incoming.author}; acknowledging and answering")
    incoming.reply(
        Acknowledgement(
            handling=H0, decision="accepted", expected_answer_by=int(time.time()) + 5 * DAY
        )
    )
    incoming.reply(
        AssistanceResponse(
            handling=H0,
            outcome="completed",
            findings="The operator was identified and detained; the site is down.",
            actions_taken=("identify", "locate", "take-down", "arrest"),
        )
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_relay_arguments(parser)
    args = parser.parse_args(argv)
    with (
        joined_blocking(args, [SEOUL, RABAT]) as world,
        world.blocking(RABAT, handlers={AssistanceRequest: rabat_answers}),
        world.blocking(SEOUL) as seoul,
    ):
        print(f"Seoul:  asking NCB Rabat for assistance in {REQUEST.case_reference}")
        conversation = seoul.request(REQUEST, to=[RABAT, GS], timeout=60)
        print(f"Seoul:  the request is {conversation.state}")
        for step in conversation.steps:
            if isinstance(step.body, AssistanceResponse):
                print(f"Seoul:  findings ({step.body.outcome}): {step.body.findings}")
        print("Seoul:  its journal of the request:")
        for row in seoul.journal_of(conversation.request_hash):
            print(f"          {row.direction:<3} {row.schema:<26} {row.sender:<14} {row.state}")


if __name__ == "__main__":
    main()
