"""The ASL sources' named fragments: how they expand, how they fail, and that all are used."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aios.lineage import LineageRecord
from infrastructure.platform import PLATFORM
from infrastructure.platform.asl import FragmentError, expand_file, format_source
from infrastructure.platform.spec import STATEMACHINES_DIR

SOURCES = sorted(STATEMACHINES_DIR.glob("*.json"))
POLICIES = json.loads((STATEMACHINES_DIR / "policies.json").read_text())


def write(directory: Path, name: str, value: Any) -> Path:
    path = directory / name
    path.write_text(json.dumps(value))
    return path


def test_a_reference_is_replaced_by_what_it_points_at_here_or_in_another_file(tmp_path: Path) -> None:
    write(
        tmp_path, "fragments.json", {"rules": {"one": {"A": 1}}, "list": [{"$ref": "#/rules/one"}, {"B": 2}]}
    )
    source = write(
        tmp_path,
        "x.asl.json",
        {"Retry": {"$ref": "fragments.json#/list"}, "Keep": {"$ref": "#/Other"}, "Other": 3},
    )

    assert expand_file(source) == {"Retry": [{"A": 1}, {"B": 2}], "Keep": 3, "Other": 3}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"X": {"$ref": "missing.json#/a"}}, "names a file that is not there"),
        ({"X": {"$ref": "#/nowhere"}}, "nothing at 'nowhere'"),
        ({"X": {"$ref": "#/X"}}, "refers to itself"),
        ({"X": {"$ref": "no-pointer"}}, "'file.json#/pointer'"),
        ({"X": {"$ref": "#/Y", "extra": 1}, "Y": 1}, "no other keys"),
        ({"X": {"$include": "a"}}, "unknown fragment keys ['$include']"),
    ],
)
def test_a_reference_that_does_not_resolve_fails_with_its_reason(
    tmp_path: Path, value: Any, message: str
) -> None:
    with pytest.raises(FragmentError, match=re.escape(message)):
        expand_file(write(tmp_path, "x.asl.json", value))


def test_a_lineage_item_takes_its_keys_from_the_context_object_and_its_fields_from_the_record_model(
    tmp_path: Path,
) -> None:
    fields = {
        "business_key.$": "$.key",
        "workflow": "intake",
        "input_digest.$": "$.digest",
        "outcome": "received",
    }
    item = expand_file(write(tmp_path, "x.asl.json", {"Item": {"$lineage": fields}}))["Item"]

    assert item["pk"] == {"S.$": "$$.Execution.Id"}
    assert item["sk"] == {"S.$": "States.Format('{}#{}', $$.State.EnteredTime, $$.State.Name)"}
    assert item["workflow"] == {"S": "intake"}
    assert item["business_key"] == {"S.$": "$.key"}
    # What the row becomes once Step Functions fills the paths is a valid record.
    LineageRecord.model_validate({name: f"value of {name}" for name in item})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"business_key": "k", "workflow": "w", "input_digest": "d", "payload": "x"}, "no field 'payload'"),
        (
            {"business_key": "k", "workflow": "w", "input_digest": "d", "pk": "x"},
            "comes from the context object",
        ),
        ({"business_key": "k", "workflow": "w"}, "needs ['input_digest']"),
        ({"business_key": "k", "workflow": "w", "input_digest": {"S": "d"}}, "a string or a path"),
    ],
)
def test_a_lineage_item_the_record_model_would_refuse_fails_when_read(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        expand_file(write(tmp_path, "x.asl.json", {"Item": {"$lineage": fields}}))


def _references(value: Any) -> set[str]:
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    if not isinstance(value, dict):
        return set()
    found = {value["$ref"]} if "$ref" in value else set()
    return found.union(*map(_references, value.values()))


def test_every_named_policy_is_used_by_a_workflow_and_every_retrier_by_a_policy() -> None:
    used = set().union(*(_references(json.loads(w.asl_path.read_text())) for w in PLATFORM.workflows))
    named = {
        f"policies.json#/{group}/{name}" for group in ("retry", "lineage-context") for name in POLICIES[group]
    }
    assert named <= used, f"policies nobody uses: {sorted(named - used)}"
    in_policies = {ref.removeprefix("#/retriers/") for ref in _references(POLICIES["retry"])}
    assert in_policies == set(POLICIES["retriers"]) == set(POLICIES["why"])


def test_no_workflow_writes_a_retry_list_or_a_lineage_block_out() -> None:
    for workflow in PLATFORM.workflows:
        source = json.loads(workflow.asl_path.read_text())
        written_out = [
            key
            for key, value in _walk(source)
            if (key == "Retry" and isinstance(value, list)) or (key == "lineage" and "$ref" not in value)
        ]
        assert not written_out, f"{workflow.asl}: {written_out} written out instead of named in policies.json"


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_sources_are_in_the_one_layout(path: Path) -> None:
    text = path.read_text()
    assert text == format_source(json.loads(text)), "run: python -m infrastructure.asl_source"
