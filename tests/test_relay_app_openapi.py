"""The served OpenAPI document matches the app's routes, both ways (API-1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from relay_app_world import relay_world

pytestmark = pytest.mark.anyio

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.req("API-1", "API-2")
async def test_openapi_documents_exactly_the_routes(tmp_path: Path) -> None:
    async with relay_world(tmp_path) as w:
        response = await w.client.get("/v1/openapi.json")
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        assert document["openapi"] == "3.1.0"
        documented = {
            (path, method.upper())
            for path, item in document["paths"].items()
            for method in item
            if method in METHODS
        }
        served = set()
        for route in w.app.routes:
            assert isinstance(route, Route)
            served |= {(route.path, m) for m in route.methods or () if m != "HEAD"}
        assert documented == served
        for path, item in document["paths"].items():
            for operation in item.values():
                public = operation["security"] == []
                assert public == (
                    path in {"/v1/directory", "/v1/health", "/v1/ready", "/v1/openapi.json"}
                    or (path.startswith("/v1/log/") and path != "/v1/log/cosignature")
                )
                for status, answer in operation["responses"].items():
                    if int(status) >= 400:
                        assert "application/problem+json" in answer["content"]
                if not public:
                    assert "401" in operation["responses"]
        for name in document["components"]["schemas"]:
            assert name in response.text
