"""The local RedriveExecution: the unsuccessful step runs again, the steps that succeeded do not.

AWS: "it continues the failed execution from the unsuccessful step and uses the same input.
Step Functions preserves the results and execution history of the successful steps, and
doesn't rerun these steps ... Redriven executions use the same state machine definition and
execution ARN" (https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html).
moto 5.2.5 answers RedriveExecution with nothing at all.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infrastructure.local.faults import Fault
from tests.integration.local.conftest import ROLE, Aws

PROBE = "arn:aws:lambda:us-east-1:123456789012:function:aios-test-probe"
DEFINITION = {
    "StartAt": "Before",
    "States": {
        "Before": {"Type": "Pass", "Result": {"step": "before"}, "ResultPath": "$.before", "Next": "Work"},
        "Work": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": PROBE, "Payload.$": "$"},
            "ResultSelector": {"invocations.$": "$.Payload.invocations"},
            "ResultPath": "$.work",
            "End": True,
        },
    },
}


def _ended(aws: Aws, arn: str) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + 20
    while True:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.1)


def test_a_redrive_runs_the_failed_step_again_under_the_same_arn(aws: Aws) -> None:
    # Given an execution whose second step failed (the function's first call failed)
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name="redriven", roleArn=ROLE, definition=json.dumps(DEFINITION))
    aws.runtime.faults.replace({"probe": Fault(error="Boom", times=1)})
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input='{"n": 1}')["executionArn"]
    failed = _ended(aws, arn)
    assert (failed["status"], failed["error"]) == ("FAILED", "Boom")

    # When it is redriven
    sfn.redrive_execution(executionArn=arn)

    # Then the same execution succeeds from the failed step, with that step's input
    redriven = _ended(aws, arn)
    assert redriven["status"] == "SUCCEEDED" and redriven["redriveCount"] == 1
    output = json.loads(redriven["output"])
    assert output["n"] == 1 and output["before"] == {"step": "before"} and "work" in output
    history = sfn.get_execution_history(executionArn=arn)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered == ["Before", "Work", "Work"]  # "Before" succeeded: not run again
    types = [e["type"] for e in history]
    assert (
        types.index("ExecutionFailed") < types.index("ExecutionRedriven") < types.index("ExecutionSucceeded")
    )
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))

    # ... and a succeeded execution is not redrivable
    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn)
    assert refused.value.response["Error"]["Code"] == "ExecutionNotRedrivable"
