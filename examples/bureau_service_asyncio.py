"""A bureau's system as an asyncio web service: NCB Rabat answers requests and lists its cases.

One asyncio event loop runs both halves of the service: a :class:`Bureau` for
NCB Rabat, whose handler acknowledges and answers each request for assistance
and records it as a case, and a small Starlette application, served by anycorn,
that shows the cases at ``GET /cases``.  ``main`` demonstrates it: it starts
a relay (or joins one), the service, and NCB Seoul, which sends a request with
the coordinator in copy, waits for the answer, then asks the service for its
cases.

    python examples/bureau_service_asyncio.py                # its own throw-away relay
    python examples/bureau_service_asyncio.py --keep-serving --port 8080
    python examples/bureau_service_asyncio.py --relay URL --anchor FILE --keys DIR
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio
import httpx
from anycorn import Config, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from example_relay import GS, RABAT, SEOUL, World, add_relay_arguments, joined
from ncb_relay.bureau import Incoming
from ncb_relay.demo import scenario
from ncb_relay.messages import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Handling,
)
from ncb_relay.relay.launch import wait_for_stop_signal

DAY = 24 * 3600
H0 = Handling(code="H0", source_reliability="A", information_accuracy=1)


def web_app(cases: list[dict[str, Any]]) -> Starlette:
    """The service's web interface: ``GET /cases`` lists the cases handled so far."""

    async def list_cases(request: Request) -> JSONResponse:
        return JSONResponse({"cases": cases})

    return Starlette(routes=[Route("/cases", list_cases)])


@asynccontextmanager
async def bureau_service(world: World, *, port: int = 0) -> AsyncIterator[str]:
    """Run NCB Rabat's bureau and its web interface; yield the web interface's URL."""
    cases: list[dict[str, Any]] = []

    async def on_request(incoming: Incoming) -> None:
        request = incoming.body
        assert isinstance(request, AssistanceRequest)  # the handler is registered for these
        incoming.reply(
            Acknowledgement(
                handling=H0,
                decision="accepted",
                expected_answer_by=int(time.time()) + 5 * DAY,
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
        cases.append(
            {
                "case": request.case_reference,
                "from": incoming.author,
                "summary": request.summary,
                "outcome": "completed",
            }
        )
        print(f"Rabat:  answered {request.case_reference} from {incoming.author}")

    app: Any = web_app(cases)  # Starlette is an ASGI app; anycorn's type for one is stricter
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    stop = anyio.Event()
    async with (
        world.connect(RABAT, handlers={AssistanceRequest: on_request}),
        anyio.create_task_group() as tasks,
    ):
        binds = await tasks.start(partial(serve, app, config, shutdown_trigger=stop.wait))
        try:
            yield binds[0]
        finally:
            stop.set()


# the SkyManga request, as the demo sends it (examples/skymanga_trio.py builds one)
REQUEST = scenario.request()


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="the web interface's port")
    parser.add_argument(
        "--keep-serving", action="store_true", help="keep serving until interrupted"
    )
    add_relay_arguments(parser)
    args = parser.parse_args(argv)
    async with (
        joined(args, [SEOUL, RABAT]) as world,
        bureau_service(world, port=args.port) as url,
        world.connect(SEOUL) as seoul,
    ):
        print(f"Rabat:  the bureau's web interface is at {url}/cases")
        conversation = await seoul.request(REQUEST, to=[RABAT, GS], timeout=60)
        print(f"Seoul:  {REQUEST.case_reference} is {conversation.state}")
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{url}/cases")
        print(f"GET /cases -> {answer.status_code} {answer.text}")
        if args.keep_serving:
            print("serving until Ctrl-C (SIGINT) or SIGTERM", flush=True)
            await wait_for_stop_signal()


if __name__ == "__main__":
    asyncio.run(main())
