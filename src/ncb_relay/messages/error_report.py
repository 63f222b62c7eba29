"""Telling a sender that its message could not be used (spec/messages.md, "ErrorReport")."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from .body import Body
from .fields import Digest, Label, Text

__all__ = ["ErrorReport"]

ErrorCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]


class ErrorReport(Body):
    """An error about a received message: its wire code and, for a body, the field at fault.

    It is sent with ``reply_to`` set to the message hash of the message it is
    about when that message was verified; ``message_id`` names it otherwise.
    ``detail`` is for people and, like every error message, never quotes the
    refused plaintext (ERR-2).
    """

    schema_id = "ncbr.error-report"

    code: ErrorCode
    field: Label | None = None
    message_id: Digest | None = None
    detail: Text | None = None
