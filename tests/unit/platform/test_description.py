"""The platform description rejects what would deploy broken."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aios.config import Settings
from infrastructure.platform import PLATFORM
from infrastructure.platform.spec import Access, FunctionSpec, HttpRouteSpec, WorkflowSpec


def test_default_platform_has_one_source_per_scheme_named_after_it() -> None:
    assert {(s.name, s.scheme) for s in PLATFORM.sources} == {
        ("stripe", "stripe"),
        ("github", "github"),
        ("slack", "slack"),
        ("standard", "standard"),
    }


def test_every_function_code_folder_has_its_handler() -> None:
    for function in PLATFORM.functions:
        module_file = function.code_path / f"{function.handler.rpartition('.')[0]}.py"
        assert module_file.is_file(), f"{function.name}: {module_file} missing"


def test_function_environment_names_come_from_the_shared_constants() -> None:
    for function in PLATFORM.functions:
        for name in PLATFORM.function_environment(function):
            assert name in set(Settings.variables().values())


def test_unknown_table_is_rejected() -> None:
    bad = FunctionSpec(name="bad-fn", description="x", code="x", tables={"nope": Access.READ})
    with pytest.raises(ValidationError, match="unknown tables"):
        type(PLATFORM).model_validate({**PLATFORM.model_dump(), "functions": [bad.model_dump()]})


def test_duplicate_workflow_is_rejected() -> None:
    workflow = PLATFORM.workflows[0]
    with pytest.raises(ValidationError, match="declared twice"):
        type(PLATFORM).model_validate({**PLATFORM.model_dump(), "workflows": [workflow.model_dump()] * 2})


def test_route_to_unknown_function_is_rejected() -> None:
    route = HttpRouteSpec(method="POST", path="/x", function="missing-fn")
    with pytest.raises(ValidationError, match="unknown function"):
        type(PLATFORM).model_validate({**PLATFORM.model_dump(), "routes": [route.model_dump()]})


def test_substitutions_offer_only_what_a_workflow_declares() -> None:
    workflow = WorkflowSpec(name="solo", description="x", asl="intake.asl.json", type="EXPRESS")
    assert PLATFORM.substitutions(workflow) == {}
