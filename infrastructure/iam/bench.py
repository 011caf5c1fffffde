"""What enforcement costs per AWS call: ``python -m infrastructure.iam.bench [policy.json]``.

Prints the decision alone (mapping the call to IAM requests and evaluating them against the
policy) and a whole boto3 call on in-process moto with and without the enforcer, as
microseconds per call (decision: median of rounds; whole call: best of interleaved rounds).
Without an argument it uses a policy of the same size as a platform function's (9 statements).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ACCOUNT, REGION = "123456789012", "us-east-1"
TABLE = "aios-local-idempotency"
_TABLE_ACTIONS = ["BatchGetItem", "BatchWriteItem", "ConditionCheckItem", "DeleteItem", "DescribeTable",
                  "GetItem", "GetRecords", "GetShardIterator", "PutItem", "Query", "Scan",
                  "UpdateItem"]  # fmt: skip


def _default_policy() -> dict[str, Any]:
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
    statements = [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "arn:aws:logs:*:*:*",
        },
        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"},
        {"Effect": "Allow", "Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": [f"dynamodb:{a}" for a in _TABLE_ACTIONS],
            "Resource": table,
        },
        {
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "arn:aws:kms:*:*:key/k",
        },
        {"Effect": "Allow", "Action": ["s3:Abort*", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"},
        {
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/x",
        },
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "arn:aws:secretsmanager:*:*:secret:s-??????",
        },
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "arn:aws:kms:*:*:key/k",
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}},
        },
    ]
    return {"function": "bench", "role_arn": f"arn:aws:iam::{ACCOUNT}:role/bench", "account": ACCOUNT,
            "region": REGION, "statements": statements}  # fmt: skip


def _per_call_us(call: Callable[[], Any], *, calls: int, rounds: int = 5) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(samples)


def main() -> None:
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from infrastructure.iam import enforce  # noqa: PLC0415
    from infrastructure.iam.enforce import Enforcer, FunctionPolicy  # noqa: PLC0415

    data = json.loads(Path(sys.argv[1]).read_text()) if len(sys.argv) > 1 else _default_policy()
    policy = FunctionPolicy(
        **{k: data[k] for k in ("function", "role_arn", "account", "region", "statements")}
    )
    checker = Enforcer(policy)
    params: dict[str, Any] = {"TableName": TABLE, "Key": {"pk": {"S": "a"}}}
    assert checker.check("dynamodb", "GetItem", params, REGION) is None
    decision = _per_call_us(lambda: checker.check("dynamodb", "GetItem", params, REGION), calls=2000)

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        plain: Any = boto3.client("dynamodb", region_name=REGION)
        plain.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        enforce.install(Enforcer(policy))
        try:
            enforced: Any = boto3.client("dynamodb", region_name=REGION)
        finally:
            enforce.uninstall()
        # Interleaved rounds, best of each: the machine's load is the same for both.
        pairs = [
            (_per_call_us(lambda: plain.get_item(**params), calls=200, rounds=1),
             _per_call_us(lambda: enforced.get_item(**params), calls=200, rounds=1))
            for _ in range(7)
        ]  # fmt: skip
        without, with_iam = min(p[0] for p in pairs), min(p[1] for p in pairs)
    print(f"statements={len(policy.statements)}")
    print(f"decision_only_us={decision:.1f}")
    print(f"get_item_moto_us without={without:.1f} enforced={with_iam:.1f} overhead={with_iam - without:.1f}")


if __name__ == "__main__":
    main()
