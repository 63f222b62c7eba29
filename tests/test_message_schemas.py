"""spec/schemas/ matches the models, and spec/messages.md matches the code where it can be read.

The JSON Schema files are generated (``python spec/schemas/export.py``); this
test fails when a model changes and the files were not regenerated.  The
vocabulary lists and the state table in spec/messages.md are compared with the
models and with the one table in code, so the document cannot drift either.
"""

from __future__ import annotations

import importlib.util
import json
import re
import typing
from pathlib import Path
from types import ModuleType
from typing import Any, get_args

import pytest

from ncb_relay.messages import (
    BUILTIN_BODIES,
    TRANSITIONS,
    Body,
    BodyPart,
    RequestEvent,
    RequestState,
)
from ncb_relay.messages.request_states import OPEN_STATES
from ncb_relay.messages.schemas import JSON_SCHEMA_DIALECT, body_json_schema, json_schemas

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "spec" / "schemas"
SPEC = (ROOT / "spec" / "messages.md").read_text(encoding="utf-8")


def _export_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("schema_export", SCHEMAS / "export.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spec_schemas_are_the_models_schemas() -> None:
    export = _export_script()
    files = export.rendered()
    assert sorted(files) == sorted(p.name for p in SCHEMAS.glob("*.json"))
    assert export.out_of_date(files, SCHEMAS) == [], "run python spec/schemas/export.py"
    assert export.main(["--check"]) == 0


def test_the_export_script_writes_and_reports(tmp_path: Path) -> None:
    export = _export_script()
    files = export.rendered()
    (tmp_path / "stale.json").write_text("{}", encoding="utf-8")
    assert export.out_of_date(files, tmp_path) == sorted([*files, "stale.json"])
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert export.out_of_date(files, tmp_path) == ["stale.json"]


@pytest.mark.parametrize("model", BUILTIN_BODIES, ids=lambda m: m.schema_id)
def test_each_schema_describes_the_whole_body_of_its_model(model: type[Body]) -> None:
    schema = json.loads((SCHEMAS / f"{model.schema_id}.v{model.schema_version}.json").read_text())
    assert schema == body_json_schema(model)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["required"] == ["content", "schema", "version"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["schema"] == {"const": model.schema_id}
    content = schema["$defs"][model.__name__]
    assert set(content["properties"]) == set(model.model_fields)
    assert content["additionalProperties"] is False
    for definition in schema["$defs"].values():
        assert definition.get("additionalProperties") is False, definition.get("title")
    assert "handling" in content["required"]


def test_json_schemas_covers_every_built_in_body_once() -> None:
    assert len(json_schemas()) == len(BUILTIN_BODIES) == 11


# --- spec/messages.md agrees with the code --------------------------------------------------


def _vocabularies(annotation: Any) -> list[tuple[str, ...]]:
    """Every Literal of text values reachable from a field annotation."""
    found: list[tuple[str, ...]] = []
    if typing.get_origin(annotation) is typing.Literal:
        return [tuple(get_args(annotation))]
    for arg in get_args(annotation):
        found += _vocabularies(arg)
    if isinstance(annotation, type) and issubclass(annotation, BodyPart):
        for field in annotation.model_fields.values():
            found += _vocabularies(field.annotation)
    return found


def test_every_vocabulary_of_the_models_is_spelled_out_in_the_spec() -> None:
    vocabularies = set()
    for model in BUILTIN_BODIES:
        for field in model.model_fields.values():
            vocabularies.update(_vocabularies(field.annotation))
    assert len(vocabularies) == 13  # every Literal vocabulary of the built-in bodies

    for vocabulary in vocabularies:
        for value in vocabulary:
            assert f"`{value}`" in SPEC, f"{value} of {vocabulary} is not in spec/messages.md"


def _spec_state_table() -> dict[tuple[str, str], str]:
    section = SPEC[SPEC.index("| State \\ event |") :].splitlines()
    rows = section[: next(i for i, line in enumerate(section) if not line.startswith("|"))]
    events = [cell.strip() for cell in rows[0].strip("|").split("|")][1:]
    table: dict[tuple[str, str], str] = {}
    for row in rows[2:]:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        for event, target in zip(events, cells[1:], strict=True):
            if re.fullmatch(r"[a-z-]+", target):
                table[(cells[0], event)] = target
    return table


@pytest.mark.req("CONV-1")
def test_the_state_table_in_the_spec_is_the_table_in_the_code() -> None:
    code = {(s.value, e.value): t.value for (s, e), t in TRANSITIONS.items()}
    assert _spec_state_table() == code
    assert {s.value for s in OPEN_STATES} == {"sent", "acknowledged", "in-progress"}
    assert {s.value for s in RequestState} == {s for s, _ in code}
    assert {e.value for e in RequestEvent} == {e for _, e in code}
