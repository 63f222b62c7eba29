"""The SkyManga case as a trio program: Seoul asks, the coordinator forwards, Rabat answers.

Korea's Ministry of Culture, Sports and Tourism asked for action against
SkyManga, a site distributing Korean webtoons without licence, run from
Morocco.  NCB Seoul asks the INTERPOL General Secretariat, which forwards the
request to NCB Rabat with Seoul in copy.  Rabat's handler acknowledges it,
reports progress and answers.  Seoul's ``request`` returns when the answer
arrives, and Seoul prints the findings.  Every message is signed, end-to-end
encrypted and verified by its recipients; the relay only ever sees ciphertext.

    python examples/skymanga_trio.py                # its own throw-away relay
    python examples/skymanga_trio.py --relay URL --anchor FILE --keys DIR
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import trio

from example_relay import GS, RABAT, SEOUL, add_relay_arguments, joined
from ncb_relay.bureau import Incoming
from ncb_relay.messages import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Authority,
    Handling,
    Offence,
    StatusUpdate,
    Subjects,
    Urgency,
    Website,
)

DAY = 24 * 3600
H0 = Handling(code="H0", source_reliability="A", information_accuracy=1)
# H1: not for use in court without Seoul's permission.  The coordinator may pass it on;
# under H2 it would need Seoul's signed dissemination permission to do so.
H1 = Handling(code="H1", source_reliability="B", information_accuracy=2)

REQUEST = AssistanceRequest(
    handling=H1,
    case_reference="KR-MCST-SKYMANGA-01",
    originating_authority=Authority(
        name="Ministry of Culture, Sports and Tourism, Copyright Protection Division",
        country="KR",
    ),
    offences=(Offence(category="copyright-piracy"),),
    summary=(
        "SkyManga distributes Korean webtoons without licence in Korean, Spanish and "
        "Japanese and profits from advertising and donations; the operator is believed "
        "to be in Morocco."
    ),
    subjects=Subjects(websites=(Website(domain="skymanga.example"),)),
    requested_actions=("identify", "locate", "preserve-evidence", "take-down"),
    legal_basis="Copyright Act of the Republic of Korea",
    urgency=Urgency.standard(),
    languages=("en", "ko"),
)


async def rabat_answers(incoming: Incoming) -> None:
    """NCB Rabat's handler for requests for assistance."""
    print(f"Rabat:  request of {incoming.author}, forwarded by {incoming.sender}")
    # Replies queued here are sent, in order, once the handler returns.  A handler never
    # waits for another bureau; an answer that takes days is sent later, from anywhere,
    # with `await bureau.reply(incoming, body)`.
    incoming.reply(
        Acknowledgement(
            handling=H0,
            decision="accepted",
            expected_answer_by=int(time.time()) + 5 * DAY,
            reference="MA-DGSN-0815",
        )
    )
    incoming.reply(
        StatusUpdate(
            handling=H0,
            stage="in-progress",
            summary="Hosting provider identified; subscriber data requested.",
        )
    )
    incoming.reply(
        AssistanceResponse(
            handling=H0,
            outcome="completed",
            findings=(
                "The operator, a Moroccan national, was identified and detained; the site is down."
            ),
            actions_taken=("identify", "locate", "take-down", "arrest"),
        )
    )


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_relay_arguments(parser)
    args = parser.parse_args(argv)

    async def coordinator_forwards(incoming: Incoming) -> None:
        # It forwards through `gs`, bound below before any message can reach this handler.
        if incoming.handle.recipients != (GS,):
            return  # the coordinator is in copy: it follows the request, nothing to route
        note = "NCB Seoul asks for assistance; please acknowledge to both."
        await gs.forward(incoming, to=[RABAT, SEOUL], note=note)
        print(f"GS:     forwarded the request of {incoming.sender} to {RABAT}")

    async with (
        joined(args, [GS, SEOUL, RABAT]) as world,
        world.connect(GS, handlers={AssistanceRequest: coordinator_forwards}) as gs,
        world.connect(RABAT, handlers={AssistanceRequest: rabat_answers}),
        world.connect(SEOUL) as seoul,
    ):
        print(f"Seoul:  asking for assistance in {REQUEST.case_reference}")
        conversation = await seoul.request(REQUEST, to=[GS], timeout=60)
        print(f"Seoul:  the request is {conversation.state}; its steps:")
        for step in conversation.steps:
            print(f"          {step.event:<9} from {step.sender}")
        for answer in (s.body for s in conversation.steps):
            if isinstance(answer, AssistanceResponse):
                print(f"Seoul:  findings ({answer.outcome}): {answer.findings}")


if __name__ == "__main__":
    trio.run(main)
