"""The SkyManga case as the demo plays it: the cast and every message body.

The story (from INTERPOL's public account of the case): SkyManga, a website
run from Morocco, distributed Korean webtoons without licence in Korean,
Spanish and Japanese and lived off advertising and donations.  At the request
of Korea's Ministry of Culture, Sports and Tourism, NCB Seoul asked for help
through INTERPOL; the General Secretariat coordinated with NCB Rabat, Moroccan
law enforcement identified and detained the operator, a Moroccan national,
and the site was shut down.  INTERPOL then worked with member countries on the
linked sites hosted elsewhere, under the Stop Online Piracy project (I-SOP).

Everything here is data: the bodies take ``now`` (the time they are written)
where a field is a time.  Domains are under ``.example`` and references are
made up; no real site, account or person is named.
"""

from __future__ import annotations

from ..entries import Role
from ..messages import (
    Acknowledgement,
    AssistanceRequest,
    AssistanceResponse,
    Authority,
    Diffusion,
    DisseminationPermission,
    Distribution,
    EvidenceReference,
    Handling,
    Offence,
    Organisation,
    PaymentAccount,
    Person,
    StatusUpdate,
    Subjects,
    Urgency,
    Website,
)
from ..walkthrough import COORDINATOR, H0, H2, PARIS, RABAT, SEOUL
from .deployment import Member

__all__ = [
    "CAST",
    "COORDINATOR",
    "LINKED_SITES_TO",
    "MADRID",
    "PARIS",
    "RABAT",
    "SEOUL",
    "TOKYO",
    "acknowledgement",
    "linked_sites",
    "permission",
    "progress",
    "request",
    "response",
]

DAY = 24 * 3600

TOKYO = "JP.ncb-tokyo"
MADRID = "ES.ncb-madrid"

_ROLES: tuple[tuple[str, str, Role], ...] = (
    (COORDINATOR, "INTERPOL General Secretariat, Lyon", "coordinator"),
    (SEOUL, "NCB Seoul", "bureau"),
    (RABAT, "NCB Rabat", "bureau"),
    (PARIS, "NCB Paris", "bureau"),
    (TOKYO, "NCB Tokyo", "bureau"),
    (MADRID, "NCB Madrid", "bureau"),
)
CAST: tuple[Member, ...] = tuple(Member(p, name, role) for p, name, role in _ROLES)

# SkyManga's pages were in Korean, Spanish and Japanese: the linked sites concern those
# bureaus, and Paris (where the coordinator sits) follows I-SOP cases.
LINKED_SITES_TO: tuple[str, ...] = (SEOUL, TOKYO, MADRID, PARIS)

CASE = "KR-MCST-SKYMANGA-01"
SEOUL_H2 = H2  # the walk-through's: not to be passed on without the consent of NCB Seoul
RABAT_H2 = Handling(
    code="H2",
    source_reliability="A",
    information_accuracy=1,
    conditions=("Not to be passed on without the consent of NCB Rabat.",),
)
PIRACY = (Offence(category="copyright-piracy"),)

SKYMANGA = Subjects(
    persons=(Person(name="Operator of SkyManga (unidentified)", role="operator"),),
    organisations=(Organisation(name="SkyManga", role="operator", country="MA"),),
    websites=(
        Website(
            domain="skymanga.example",
            urls=("https://skymanga.example/webtoon/",),
            description="Korean webtoons without licence, in Korean, Spanish and Japanese.",
        ),
    ),
    payment_accounts=(
        PaymentAccount(kind="advertising-account", identifier="pub-0000000000000001"),
        PaymentAccount(kind="donation-account", identifier="donate@skymanga.example"),
    ),
)


def request() -> AssistanceRequest:
    """NCB Seoul's request, on behalf of the ministry (H2: no passing on without consent)."""
    return AssistanceRequest(
        handling=SEOUL_H2,
        case_reference=CASE,
        originating_authority=Authority(
            name="Ministry of Culture, Sports and Tourism, Copyright Protection Division",
            country="KR",
            reference="MCST-CP-SKYMANGA",
        ),
        offences=PIRACY,
        summary=(
            "SkyManga distributes Korean webtoons without licence in Korean, Spanish and "
            "Japanese and profits from advertising and donations. The operator is believed "
            "to live in Morocco. Request under the I-SOP project."
        ),
        subjects=SKYMANGA,
        requested_actions=("identify", "locate", "preserve-evidence", "take-down"),
        legal_basis="Copyright Act of the Republic of Korea; INTERPOL Rules on the Processing "
        "of Data",
        urgency=Urgency.standard(),
        languages=("en", "fr", "ko"),
    )


def permission(request_hash: bytes) -> DisseminationPermission:
    """Seoul's signed consent that the coordinator pass its H2 request on to NCB Rabat."""
    return DisseminationPermission(
        handling=H0,
        original=request_hash,
        granted_to=(RABAT,),
        conditions=("For the investigation of SkyManga only.",),
    )


def acknowledgement(now: int) -> Acknowledgement:
    return Acknowledgement(
        handling=H0,
        decision="accepted",
        expected_answer_by=now + 30 * DAY,
        reference="MA-DGSN-SKYMANGA",
    )


def progress(now: int) -> tuple[StatusUpdate, ...]:
    """Rabat's two status updates, in the order sent."""
    return (
        StatusUpdate(
            handling=H0,
            stage="in-progress",
            summary="Hosting provider and advertising account traced to Morocco; "
            "subscriber data requested.",
        ),
        StatusUpdate(
            handling=H0,
            stage="in-progress",
            summary="Operator located by Moroccan law enforcement; evidence preserved.",
            expected_answer_by=now + 7 * DAY,
        ),
    )


def response() -> AssistanceResponse:
    """Rabat's findings (H2: Rabat's own information)."""
    return AssistanceResponse(
        handling=RABAT_H2,
        outcome="completed",
        findings=(
            "The operator of SkyManga, a Moroccan national, was identified, located and "
            "detained by Moroccan law enforcement; the site was shut down and its server "
            "seized. Advertising and donation income was traced to the operator."
        ),
        actions_taken=("identify", "locate", "preserve-evidence", "take-down", "seize", "arrest"),
        evidence=(
            EvidenceReference(
                reference="MA-DGSN-SKYMANGA/3",
                description="Image of the SkyManga server",
                held_by="DGSN Rabat",
            ),
        ),
        reference="MA-DGSN-SKYMANGA",
    )


def linked_sites() -> Diffusion:
    """Rabat's diffusion about the mirror sites, for the bureaus in ``LINKED_SITES_TO``."""
    return Diffusion(
        handling=H0,
        kind="request-for-information",
        title="Sites linked to SkyManga",
        text=(
            "Two mirror sites share SkyManga's advertising account and keep publishing "
            "its webtoons in Korean, Spanish and Japanese; their hosting is outside Morocco. "
            "Please identify the operators and hosting in your countries."
        ),
        distribution=Distribution.to(*LINKED_SITES_TO),
        case_reference=CASE,
        offences=PIRACY,
        subjects=Subjects(
            websites=(
                Website(domain="skymanga-mirror.example"),
                Website(domain="sky-manga-es.example"),
            ),
            payment_accounts=(
                PaymentAccount(kind="advertising-account", identifier="pub-0000000000000001"),
            ),
        ),
        requested_actions=("identify", "take-down"),
    )
