"""The one fake Lambda context of the test suite: what a handler reads of the real one
(https://docs.aws.amazon.com/lambda/latest/dg/python-context.html)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LambdaContext:
    function_name: str = "aios-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:aios-test-function"
    aws_request_id: str = "req-1"
    log_group_name: str = "/aws/lambda/aios-test-function"
    log_stream_name: str = "2026/12/02/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
