"""The relay's endpoints, public reads and refusals (spec/relay-api.md, "Endpoints", "Errors")."""

from __future__ import annotations

import pytest

from ncb_relay import DIRECTORY_KIND, SignedDocument

from .session import RelaySession, problem

ENDPOINTS = {
    ("POST", "/v1/messages"),
    ("GET", "/v1/mailbox"),
    ("POST", "/v1/mailbox/ack"),
    ("GET", "/v1/directory"),
    ("GET", "/v1/log/checkpoint"),
    ("GET", "/v1/log/checkpoints"),
    ("GET", "/v1/log/inclusion"),
    ("GET", "/v1/log/consistency"),
    ("GET", "/v1/log/entries"),
    ("POST", "/v1/log/cosignature"),
    ("GET", "/v1/health"),
    ("GET", "/v1/ready"),
    ("GET", "/v1/openapi.json"),
}
AUTHENTICATED = [("POST", "/v1/messages"), ("GET", "/v1/mailbox"), ("POST", "/v1/mailbox/ack")]
AUTHENTICATED.append(("POST", "/v1/log/cosignature"))


@pytest.mark.req("API-1")
def test_the_openapi_document_lists_exactly_the_endpoints(relay: RelaySession) -> None:
    response = relay.request("GET", "/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert str(document["openapi"]).startswith("3.1"), "an OpenAPI 3.1 document"
    listed = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method.lower() in {"get", "post", "put", "patch", "delete", "options", "head"}
        and not (method.lower() == "head" and ("GET", path) in ENDPOINTS)
    }
    assert listed == ENDPOINTS


@pytest.mark.req("API-1", "API-18", "API-19")
@pytest.mark.parametrize(
    "target", ["/v1/nothing", "/v1/messages/", "/v1/mailbox/", "/v2/messages", "/", "/v1"]
)
def test_an_unknown_path_is_not_found_never_redirected(relay: RelaySession, target: str) -> None:
    response = relay.request("GET", target)
    problem(response, 404, "not-found")
    assert "location" not in response.headers


@pytest.mark.req("API-1", "API-18", "API-19")
@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("DELETE", "/v1/messages"),
        ("PUT", "/v1/mailbox"),
        ("GET", "/v1/mailbox/ack"),
        ("POST", "/v1/directory"),
        ("POST", "/v1/health"),
        ("GET", "/v1/log/cosignature"),
    ],
)
def test_another_method_is_not_allowed(relay: RelaySession, method: str, target: str) -> None:
    response = relay.request(method, target)
    problem(response, 405, "method-not-allowed")
    allowed = {m.strip() for m in response.headers.get("allow", "").split(",")}
    assert {m for m, path in ENDPOINTS if path == target} <= allowed, "the Allow field"
    assert method not in allowed


@pytest.mark.req("API-2", "API-20", "API-19", "AUTH-1")
@pytest.mark.parametrize(("method", "target"), AUTHENTICATED)
def test_an_authenticated_endpoint_refuses_an_anonymous_request(
    relay: RelaySession, method: str, target: str
) -> None:
    response = relay.request(method, target)
    refused = problem(response, 401, "malformed")
    assert refused.headers.get("www-authenticate", "").split(" ")[0] == "NCBR1"


@pytest.mark.req("API-2", "API-20", "AUTH-13", "AUTH-15")
def test_a_request_signed_in_another_name_is_refused(relay: RelaySession) -> None:
    alpha, bravo = relay.bureaus[:2]
    forged = relay.authorization(alpha, "GET", "/v1/mailbox", claim=bravo)
    response = relay.request("GET", "/v1/mailbox", headers={"authorization": forged})
    # alpha's key id is listed, but for alpha: step 8 of AUTH-15 (AUTH-13)
    refused = problem(response, 401, "binding-mismatch")
    assert refused.headers.get("www-authenticate", "").startswith("NCBR1")


@pytest.mark.req("API-2", "API-20", "AUTH-11")
def test_a_replayed_request_is_refused(relay: RelaySession) -> None:
    who = relay.bureaus[1]
    credentials = relay.authorization(who, "GET", "/v1/mailbox")
    first = relay.request("GET", "/v1/mailbox", headers={"authorization": credentials})
    assert first.status_code == 200
    again = relay.request("GET", "/v1/mailbox", headers={"authorization": credentials})
    problem(again, 401, "replay")


@pytest.mark.req("API-2", "AUTH-15")
def test_a_request_for_another_relay_is_refused(relay: RelaySession) -> None:
    who = relay.bureaus[1]
    other = relay.authorization(who, "GET", "/v1/mailbox", relay="XP.relay-elsewhere")
    response = relay.request("GET", "/v1/mailbox", headers={"authorization": other})
    problem(response, 401, "binding-mismatch")


@pytest.mark.req("API-2", "AUTH-15", "ROT-5")
def test_a_suspended_principal_cannot_authenticate(relay: RelaySession) -> None:
    suspended = next(p.id for p in relay.fixture.principals.values() if not p.active)
    response = relay.request("GET", "/v1/mailbox", who=suspended)
    problem(response, 401, "unknown-key")


@pytest.mark.req("API-14", "API-28")
def test_the_directory_is_the_signed_file_with_its_hash_and_leaf(relay: RelaySession) -> None:
    response = relay.request("GET", "/v1/directory")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/octet-stream"
    data = relay.fixture.directory_file.read_bytes()
    assert response.content == data, "the exact bytes of the relay's signed directory file"
    document_hash = SignedDocument.decode(DIRECTORY_KIND, data).hash.hex()
    assert response.headers["etag"].strip('"') == document_hash, "the ETag is its hash in hex"
    index = int(response.headers["ncbr-log-index"])
    entries = relay.request("GET", f"/v1/log/entries?start={index}&limit=1").json()["entries"]
    assert entries == [{"index": index, "kind": "directory", "hash": document_hash}]


@pytest.mark.req("API-15")
def test_health(relay: RelaySession) -> None:
    response = relay.request("GET", "/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.req("API-16")
def test_ready(relay: RelaySession) -> None:
    response = relay.request("GET", "/v1/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


@pytest.mark.req("API-17", "API-1")
def test_metrics_are_not_served_on_the_api(relay: RelaySession) -> None:
    problem(relay.request("GET", "/metrics"), 404, "not-found")
    problem(relay.request("GET", "/v1/metrics"), 404, "not-found")
