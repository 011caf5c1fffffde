"""The moto bridges of the local mode, written for exactly moto 5.2.5: one module per AWS service.

moto plays AWS for ``aios local up``; the bridges fill the gaps it has offline and undo the
places where it is kinder than AWS (see ``/work/shared/LOCAL_AWS.md``). They patch moto in
the process that hosts it (``ThreadedMotoServer``), which ``aios local up`` is; the
platform's functions do not run in that process (``lambda_runtime``).

- ``lambda_runtime`` (+ ``lambda_worker``): Lambda. Each function in worker processes with
  its own environment, cold and warm starts, timeouts, errors as Lambda reports them.
- ``dynamodb``: DynamoDB. Conditional writes atomic per item (moto checks, then writes).
- ``events``: EventBridge. Step Functions and Lambda targets delivered with RetryPolicy and
  DLQ; disabled rules deliver nothing.
- ``stepfunctions``: Step Functions. Execution names, callbacks that arrive before the task
  waits, SendTaskFailure's cause, context-object time format, Express executions refused by
  the execution APIs and written to CloudWatch Logs.
- ``redrive``: Step Functions RedriveExecution (moto has none), from the unsuccessful state.
- ``versions``: Step Functions versions and aliases. Executions started on an alias follow its
  routing weights and keep their version's definition.
- ``timescale``: ``AIOS_LOCAL_TIME_SCALE`` on Wait states and Retry intervals.
- ``http_api``: API Gateway HTTP API (payload v2) in front of the routes.
- ``faults``: ``AIOS_LOCAL_FAULTS`` and ``/_aios/faults``.
- ``sagemaker``: SageMaker runtime served by the model's own inference code.

``install``/``uninstall`` switch the moto patches of all of them on and off together.
"""

from __future__ import annotations

from infrastructure.local import (
    dynamodb,
    events,
    lambda_runtime,
    redrive,
    stepfunctions,
    timescale,
    versions,
)
from infrastructure.local.lambda_runtime import LambdaRuntime


def install(runtime: LambdaRuntime, *, aws_endpoint: str, time_scale: float = 1.0) -> None:
    """Patch moto in this process. Idempotent; ``uninstall`` restores moto."""
    timescale.install(time_scale)
    dynamodb.install()
    lambda_runtime.install(runtime)
    events.install(aws_endpoint)
    stepfunctions.install()
    versions.install()  # wraps stepfunctions' start patch
    redrive.install()  # wraps the DescribeExecution answer of both


def uninstall() -> None:
    """Restore moto and stop the Lambda workers."""
    redrive.uninstall()
    versions.uninstall()
    stepfunctions.uninstall()
    events.uninstall()
    lambda_runtime.uninstall()
    dynamodb.uninstall()
    timescale.uninstall()
