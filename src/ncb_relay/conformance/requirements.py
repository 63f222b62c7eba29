"""The requirements of ``spec/``: id, text, level and section, read from the Markdown.

A requirement is a list item that opens with its id in bold brackets,
``- **[ENV-3]** text...``, and runs until the next list item, blank line or
heading.  Its level is ``MUST`` when the text says MUST, SHALL or REQUIRED, or
states a definition without any keyword (a definition is binding);
``SHOULD`` when it says only SHOULD, RECOMMENDED or MAY.  Its section is the
file and the ``##`` heading it sits under, which is how the runner groups its
table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Requirement", "read_requirements"]

_ITEM = re.compile(r"^- \*\*\[([A-Z]+-\d+)\]\*\*(.*(?:\n(?!- |\n|#).*)*)", re.MULTILINE)
_HEADING = re.compile(r"^## (.+)$", re.MULTILINE)
_MUST = re.compile(r"\b(MUST|SHALL|REQUIRED)\b")
_SHOULD = re.compile(r"\b(SHOULD|RECOMMENDED|MAY)\b")


@dataclass(frozen=True)
class Requirement:
    id: str
    text: str
    level: str  # "MUST" or "SHOULD"
    section: str  # "protocol.md: The envelope"

    def quote(self, width: int = 160) -> str:
        text = self.text if len(self.text) <= width else self.text[: width - 3] + "..."
        return f'[{self.id}] "{text}"'


def _level(text: str) -> str:
    if _MUST.search(text) or not _SHOULD.search(text):
        return "MUST"
    return "SHOULD"


def read_requirements(spec: Path) -> dict[str, Requirement]:
    """Every requirement of ``spec/*.md``, in file and document order."""
    found: dict[str, Requirement] = {}
    for path in sorted(spec.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        headings = [(m.start(), m.group(1).strip()) for m in _HEADING.finditer(text)]
        for match in _ITEM.finditer(text):
            heading = next(
                (h for start, h in reversed(headings) if start < match.start()), "(preamble)"
            )
            body = " ".join(match.group(2).split())
            found[match.group(1)] = Requirement(
                match.group(1), body, _level(body), f"{path.name}: {heading}"
            )
    return found
