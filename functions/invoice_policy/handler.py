"""Invoice policy: validate, decide (automatic or human), complete (outcome metrics).

Operations (``{"operation": ..., ...}`` from the accounts-payable workflow):

- ``claim`` ``{business_key, execution}`` -> ``{business_key, claimed, execution}``: the first
  execution for a business key holds it (``claimed`` is false for any other one)
- ``validate`` ``{business_key, invoice: Invoice}`` -> ``{business_key, outcome: "valid",
  duplicate_of, features}``; totals that do not add up raise ``Validation.Failed``
- ``decide`` ``{business_key, invoice, duplicate_of?, score?}`` -> ``{route: "auto"|"human",
  reasons, ladder: {remind_after_seconds, escalate_after_seconds, expire_after_seconds},
  summary}``
- ``complete`` ``{business_key, outcome, route?, received_at?, error?}`` -> ``{business_key,
  outcome, route, error, error_cause}`` and the outcome's metrics

And, from the workflow's failure rule (default bus), Step Functions' "Execution Status
Change" event of an execution that ended FAILED, TIMED_OUT or ABORTED -> ``record_failure``:
``{execution, recorded, business_key, outcome, error, error_cause}`` and its closing lineage row.

Lambda loads this file as the top-level ``handler`` module, so it imports only ``aios``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aios import payables
from aios.steps import Operations, step_handler

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

_step = step_handler(Operations(payables.REQUEST, payables.handle))


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _step(dict(payables.as_request(event)), context)
