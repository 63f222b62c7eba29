"""The SkyManga case as message bodies: shared by messages.json and the tests.

One valid instance of every built-in body type, built from the case that
spec/messages.md uses as its example.  Times are relative to the vectors'
fixed "now".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from principals import NOW

from ncb_relay.messages import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Authority,
    Body,
    CryptoWallet,
    DeliveryReceipt,
    Diffusion,
    DisseminationPermission,
    Distribution,
    ErrorReport,
    EvidenceReference,
    Handling,
    IpAddress,
    Notice,
    Offence,
    Organisation,
    PaymentAccount,
    Person,
    StatusUpdate,
    Subjects,
    Urgency,
    Website,
    Withdrawal,
)

SEOUL, RABAT, GS, PARIS, TOKYO = (
    "KR.ncb-seoul",
    "MA.ncb-rabat",
    "XP.interpol-gs",
    "FR.ncb-paris",
    "JP.ncb-tokyo",
)
HOUR = 3600

H0 = Handling(code="H0", source_reliability="A", information_accuracy=1)
H1 = Handling(code="H1", source_reliability="B", information_accuracy=2)
H2 = Handling(
    code="H2",
    source_reliability="B",
    information_accuracy=2,
    conditions=("Not to be passed on without the consent of NCB Seoul.",),
)

SKYMANGA = Subjects(
    persons=(Person(name="Operator of SkyManga (unidentified)", role="operator"),),
    organisations=(Organisation(name="SkyManga", role="operator", country="MA"),),
    websites=(
        Website(
            domain="skymanga.example",
            urls=("https://skymanga.example/webtoon/",),
            description="Webtoons in Korean, Spanish and Japanese without licence.",
        ),
    ),
    ip_addresses=(IpAddress(address="192.0.2.44", port=443, observed_at=NOW - 86_400),),
    payment_accounts=(
        PaymentAccount(kind="advertising-account", identifier="pub-0000000000000001"),
        PaymentAccount(kind="donation-account", identifier="donate@skymanga.example"),
    ),
    crypto_wallets=(CryptoWallet(asset="BTC", address="bc1qexampleexampleexample0000"),),
)


def request(**changes: Any) -> AssistanceRequest:
    fields: dict[str, Any] = {
        "handling": H2,
        "case_reference": "KR-MCST-2027-0042",
        "originating_authority": Authority(
            name="Ministry of Culture, Sports and Tourism, Copyright Protection Division",
            country="KR",
            reference="MCST-CP-2027-117",
        ),
        "offences": (Offence(category="copyright-piracy"),),
        "summary": (
            "SkyManga distributes Korean webtoons without licence in Korean, Spanish and "
            "Japanese and profits from advertising and donations. The operator is believed "
            "to live in Morocco."
        ),
        "subjects": SKYMANGA,
        "requested_actions": ("identify", "locate", "preserve-evidence", "take-down"),
        "legal_basis": "Copyright Act of the Republic of Korea, Art. 136; INTERPOL RPD Art. 10",
        "urgency": Urgency.standard(),
        "languages": ("en", "fr", "ko"),
    }
    fields.update(changes)
    return AssistanceRequest(**fields)


def acknowledgement(**changes: Any) -> Acknowledgement:
    fields: dict[str, Any] = {
        "handling": H0,
        "decision": "accepted",
        "expected_answer_by": NOW + 5 * 24 * HOUR,
        "reference": "MA-DGSN-2027-0815",
    }
    fields.update(changes)
    return Acknowledgement(**fields)


def status(
    summary: str = "Hosting provider identified; subscriber data requested.",
) -> StatusUpdate:
    return StatusUpdate(handling=H0, stage="in-progress", summary=summary)


def response(**changes: Any) -> AssistanceResponse:
    fields: dict[str, Any] = {
        "handling": H2,
        "outcome": "completed",
        "findings": (
            "The operator, a Moroccan national, was identified and detained; the site was "
            "taken down and its servers seized."
        ),
        "actions_taken": ("identify", "locate", "take-down", "seize", "arrest"),
        "evidence": (
            EvidenceReference(
                reference="MA-DGSN-2027-0815/3",
                description="Server image",
                held_by="DGSN Rabat",
                sha256=bytes(range(32)),
            ),
        ),
    }
    fields.update(changes)
    return AssistanceResponse(**fields)


def diffusion(bureaus: Iterable[str], **changes: Any) -> Diffusion:
    fields: dict[str, Any] = {
        "handling": H0,
        "kind": "request-for-information",
        "title": "Sites linked to SkyManga",
        "text": "Mirror sites share SkyManga's advertising accounts; hosting is abroad.",
        "distribution": Distribution.to(*bureaus),
        "offences": (Offence(category="copyright-piracy"),),
        "subjects": Subjects(websites=(Website(domain="skymanga-mirror.example"),)),
        "requested_actions": ("identify", "take-down"),
    }
    fields.update(changes)
    return Diffusion(**fields)


def notice() -> Notice:
    return Notice(
        handling=H0,
        kind="purple",
        reference="PN-2027-0042",
        title="Modus operandi: webtoon piracy through mirror sites",
        summary="Mirror sites reuse one advertising account to fund the operation.",
        requested_by=SEOUL,
    )


def withdrawal() -> Withdrawal:
    return Withdrawal(handling=H0, reason="The matter was settled by the rights holders.")


def error_report() -> ErrorReport:
    return ErrorReport(handling=H0, code="invalid-body", field="content.summary")


def permission(original: bytes, *granted: str) -> DisseminationPermission:
    return DisseminationPermission(handling=H0, original=original, granted_to=granted)


def delivery_receipt(message_hash: bytes = bytes(range(32, 64))) -> DeliveryReceipt:
    """Rabat's receipt of a message it recorded an hour before ``NOW``."""
    return DeliveryReceipt.of(bytes(range(64, 96)), message_hash, NOW - HOUR)


def every_body() -> list[Body]:
    """One valid instance of every built-in body type (a Forward needs envelopes: see tests)."""
    return [
        request(),
        acknowledgement(),
        status(),
        response(),
        withdrawal(),
        diffusion([PARIS, TOKYO]),
        notice(),
        error_report(),
        permission(bytes(32), RABAT),
        delivery_receipt(),
    ]
