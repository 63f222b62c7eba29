"""The relay's Prometheus metrics (API-19), kept in one registry per application.

Queue depth is read from the store when the metrics are scraped, not kept
in memory.  The metrics name mailboxes, so they are served only on the
operator's own listener (:func:`metrics_app`), never on the bureaus' API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import NcbRelayError

__all__ = ["RelayMetrics", "metrics_app"]


class RelayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.submissions = Counter(
            "ncbr_submissions",
            "Envelopes accepted (identical resubmissions included)",
            registry=self.registry,
        )
        self.deliveries = Counter(
            "ncbr_deliveries", "Messages handed out by fetches", registry=self.registry
        )
        self.acknowledged = Counter(
            "ncbr_acknowledgements", "Acknowledgement requests answered", registry=self.registry
        )
        self.rejections = Counter(
            "ncbr_rejections",
            "Requests refused, by error code and HTTP status",
            ["code", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ncbr_request_seconds",
            "Time to answer a request, by endpoint",
            ["endpoint"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "ncbr_queue_depth",
            "Copies waiting in a mailbox (read from the store at scrape time)",
            ["mailbox"],
            registry=self.registry,
        )

    def set_queue_depths(self, depths: Mapping[str, int]) -> None:
        self.queue_depth.clear()
        for mailbox, depth in depths.items():
            self.queue_depth.labels(mailbox).set(depth)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_app(
    metrics: RelayMetrics, queue_depths: Callable[[], Awaitable[Mapping[str, int]]]
) -> Starlette:
    """An ASGI app serving ``GET /metrics`` for the operator's own listener."""

    async def scrape(request: Request) -> Response:
        try:
            metrics.set_queue_depths(await queue_depths())
        except NcbRelayError:
            metrics.queue_depth.clear()  # the store is down: show no stale depths
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])
