"""Step Functions task responses: the only code that sends a task token anywhere."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from aios import clients

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

#: The task is gone: it timed out, the execution ended, or the token was never valid.
CLOSED_TASK_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


class TaskClosed(Exception):
    """Step Functions no longer waits for this token (``code`` says why)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"task closed ({code})")
        self.code = code


class TaskResponder(Protocol):
    def succeed(self, token: str, output: dict[str, Any]) -> None: ...

    def fail(self, token: str, *, error: str, cause: dict[str, Any]) -> None: ...


class StepFunctionsResponder:
    """``SendTaskSuccess`` / ``SendTaskFailure``; a closed task raises ``TaskClosed``, any
    other failure propagates (the caller decides)."""

    def __init__(self, client: SFNClient | None = None) -> None:
        self._client = client or clients.stepfunctions()

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        self._send(lambda: self._client.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, *, error: str, cause: dict[str, Any]) -> None:
        self._send(
            lambda: self._client.send_task_failure(taskToken=token, error=error, cause=json.dumps(cause))
        )

    @staticmethod
    def _send(call: Any) -> None:
        try:
            call()
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in CLOSED_TASK_CODES:
                raise TaskClosed(code) from None
            raise
