"""Per-bureau quotas and the mailbox cap, through the relay application (API-22, API-23).

The store's side (atomicity, counters, expiry, restart) is checked by the
conformance suite (``check_storage_backend``); here, what a bureau sees: 429
with ``Retry-After``, one answer for either limit, nothing stored, dedupe
first, and settings and configuration that reach the store.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ncb_relay.errors import UsageError
from ncb_relay.header import EnvelopeLimits
from ncb_relay.relay.app_settings import AppSettings
from ncb_relay.relay.config import config_from_mapping
from ncb_relay.relay.launch import app_settings
from ncb_relay.relay.storage import Quota
from relay_app_world import PARIS, RABAT, SEOUL, problem, relay_world

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _quota_refusal(response: httpx.Response, retry_after: str) -> tuple[int, dict[str, object]]:
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == retry_after
    body = problem(response)
    assert body["code"] == "limit-exceeded"
    return response.status_code, body


@pytest.mark.req("API-22", "API-20")
async def test_a_bureau_over_its_quota_gets_429_and_nothing_is_stored(tmp_path: Path) -> None:
    settings = AppSettings(sender_max_messages=2, quota_retry_after=30)
    async with relay_world(tmp_path, settings=settings) as w:
        first, second, third = (w.seal(SEOUL, RABAT, PARIS) for _ in range(3))
        accepted = await w.submit(SEOUL, first.data)
        assert accepted.status_code == 202
        assert (await w.submit(SEOUL, second.data)).status_code == 202
        before = await w.snapshot()
        _quota_refusal(await w.submit(SEOUL, third.data), "30")
        assert await w.snapshot() == before == {RABAT: 2, PARIS: 2}
        again = await w.submit(SEOUL, first.data)  # dedupe comes before the quota
        assert again.status_code == 202
        record = ("sender", "messageId", "messageHash", "acceptedAt", "logIndex", "receipt")
        assert {k: again.json()[k] for k in record} == {k: accepted.json()[k] for k in record}
        other = w.seal(PARIS, RABAT)
        assert (await w.submit(PARIS, other.data)).status_code == 202  # its own quota
        # held until every recipient has acknowledged
        assert (await w.ack(RABAT, first.message_id)).status_code == 204
        _quota_refusal(await w.submit(SEOUL, third.data), "30")
        assert (await w.ack(PARIS, first.message_id)).status_code == 204
        assert (await w.submit(SEOUL, third.data)).status_code == 202  # a refused id may return


@pytest.mark.req("API-22")
async def test_the_byte_quota_counts_envelope_bytes(tmp_path: Path) -> None:
    tight = AppSettings(
        envelope_limits=EnvelopeLimits(max_envelope_bytes=1024), sender_max_bytes=1024
    )
    async with relay_world(tmp_path, settings=tight) as w:
        one, two = (w.seal(SEOUL, RABAT, body=b"x" * 400) for _ in range(2))
        assert len(one.data) + len(two.data) > 1024 >= len(one.data)
        assert (await w.submit(SEOUL, one.data)).status_code == 202
        _quota_refusal(await w.submit(SEOUL, two.data), "60")
        assert await w.snapshot() == {RABAT: 1}
        assert (await w.ack(RABAT, one.message_id)).status_code == 204
        assert (await w.submit(SEOUL, two.data)).status_code == 202


@pytest.mark.req("API-23", "API-13")
async def test_a_full_mailbox_refuses_with_the_answer_of_a_sender_quota(tmp_path: Path) -> None:
    full_mailbox = AppSettings(mailbox_max_messages=1)
    async with relay_world(tmp_path / "mailbox", settings=full_mailbox) as w:
        assert (await w.submit(SEOUL, w.seal(SEOUL, RABAT).data)).status_code == 202
        to_both = w.seal(PARIS, SEOUL, RABAT)
        mailbox_refusal = _quota_refusal(await w.submit(PARIS, to_both.data), "60")
        assert await w.snapshot() == {RABAT: 1}  # nothing for SEOUL either
        assert (await w.submit(PARIS, w.seal(PARIS, SEOUL).data)).status_code == 202
    own_quota = AppSettings(sender_max_messages=1)
    async with relay_world(tmp_path / "sender", settings=own_quota) as w:
        assert (await w.submit(PARIS, w.seal(PARIS, SEOUL).data)).status_code == 202
        sender_refusal = _quota_refusal(await w.submit(PARIS, w.seal(PARIS, RABAT).data), "60")
    assert mailbox_refusal == sender_refusal  # the sender cannot tell which limit it hit
    no_cap = AppSettings(mailbox_max_messages=0)
    assert no_cap.quota.mailbox_messages is None
    async with relay_world(tmp_path / "off", settings=no_cap) as w:
        for _ in range(3):
            assert (await w.submit(SEOUL, w.seal(SEOUL, RABAT).data)).status_code == 202


@pytest.mark.req("API-22", "API-23")
def test_quota_settings_come_from_the_configuration(tmp_path: Path) -> None:
    defaults = AppSettings()
    assert defaults.quota == Quota(
        sender_messages=10_000, sender_bytes=1024**3, mailbox_messages=100_000
    )
    config = config_from_mapping(
        {
            "relay_id": "XP.relay-lyon",
            "database": "relay.db",
            "keystore": "relay.keystore",
            "directory": "directory.signed",
            "anchors": ["anchor.signed"],
            "quota": {
                "sender_max_messages": 5,
                "sender_max_bytes": 16 * 1024 * 1024,
                "mailbox_max_messages": 0,
                "retry_after": 7,
            },
        },
        base=tmp_path,
    )
    settings = app_settings(config)
    assert settings.quota == Quota(sender_messages=5, sender_bytes=16 * 1024 * 1024)
    assert settings.quota_retry_after == 7
    with pytest.raises(UsageError, match="sender_max_bytes"):
        AppSettings(sender_max_bytes=1024)  # below the envelope limit: nothing would pass
    with pytest.raises(UsageError, match=r"quota\.sender_max_messages"):
        config_from_mapping(
            {
                "relay_id": "XP.relay-lyon",
                "database": "relay.db",
                "keystore": "k",
                "directory": "d",
                "anchors": ["a"],
                "quota": {"sender_max_messages": 0},
            }
        )
