"""Every function with a circuit breaker may make exactly the calls the breaker makes on the
circuit table (Powertools' DynamoDB persistence: GetItem, PutItem, UpdateItem) and no other
call on it; ``tests/integration/connectors/test_connector_breaker.py`` shows the breaker needs
no more. The local mode enforces these synthesized statements, so a missing action shows as
AccessDenied in the e2e tests. Actions: https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html"""

from __future__ import annotations

import json
from typing import Any

from aios.connectors.breaker import TABLE_ACTIONS
from infrastructure.platform.default import PLATFORM
from tests.infrastructure.synth import Synthesized


def _circuit_actions(template: dict[str, Any], role: str) -> set[str]:
    """The actions of ``role``'s statements whose resources name the circuit table."""
    actions: set[str] = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role} not in resource["Properties"].get("Roles", []):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if ":table/aios-dev-circuit" in json.dumps(statement["Resource"]):
                listed = statement["Action"]
                actions |= {listed} if isinstance(listed, str) else set(listed)
    return actions


def test_breaker_functions_get_exactly_the_breakers_calls_on_the_circuit_table(
    synthesized: Synthesized,
) -> None:
    template = synthesized.platform.to_json()
    functions = {
        resource["Properties"]["FunctionName"]: resource["Properties"]["Role"]["Fn::GetAtt"][0]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function" and "FunctionName" in resource["Properties"]
    }
    with_breaker = [f.name for f in PLATFORM.functions if "circuit" in f.tables]
    assert with_breaker
    for name in with_breaker:
        assert _circuit_actions(template, functions[f"aios-dev-{name}"]) == set(TABLE_ACTIONS), name
    for name in {f.name for f in PLATFORM.functions} - set(with_breaker):
        assert _circuit_actions(template, functions[f"aios-dev-{name}"]) == set(), name
