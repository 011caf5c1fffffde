"""The local mode renders a workflow's ``on_failure`` rule as CDK does (both from the
description: tests/infrastructure/test_failure_rule.py checks the CDK side against the same
``Platform.failure_pattern``): on the default bus, where Step Functions puts its status change
events (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html), targeting the
function's ``live`` alias with the platform's dead-letter queue and retry policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infrastructure.local.deploy import LIVE_ALIAS, LocalNames, deploy
from infrastructure.platform import PLATFORM
from infrastructure.platform.spec import FAILURE_MAX_EVENT_AGE_SECONDS, FAILURE_RETRY_ATTEMPTS

RECORDED = [w for w in PLATFORM.workflows if w.on_failure]


@pytest.fixture(scope="module")
def local() -> Iterator[Any]:
    with mock_aws():
        secrets = {source.name: "whsec_cGFyaXR5" for source in PLATFORM.sources}
        deploy(PLATFORM, None, secrets=secrets)  # type: ignore[arg-type]
        yield boto3.Session(region_name=LocalNames().region)


@pytest.mark.parametrize("workflow", RECORDED, ids=lambda w: w.name)
def test_the_failure_rule_is_the_descriptions_on_the_default_bus(local: Any, workflow: Any) -> None:
    names = LocalNames()
    events = local.client("events")

    rule = events.describe_rule(Name=names.failure_rule(workflow.name))
    (target,) = events.list_targets_by_rule(Rule=names.failure_rule(workflow.name))["Targets"]

    assert rule["EventBusName"] == "default" and rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == PLATFORM.failure_pattern(
        names.state_machine_arn(workflow.name)
    )
    assert target["Arn"] == f"{names.function_arn(workflow.on_failure)}:{LIVE_ALIAS}"
    dlq = local.client("sqs").get_queue_url(QueueName=names.dead_letter_queue)["QueueUrl"]
    dlq_arn = local.client("sqs").get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])
    assert target["DeadLetterConfig"] == {"Arn": dlq_arn["Attributes"]["QueueArn"]}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": FAILURE_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": FAILURE_MAX_EVENT_AGE_SECONDS,
    }
    # ... and nothing on the platform bus starts from a status change.
    on_bus = events.list_rules(EventBusName=names.bus(PLATFORM.bus.name))["Rules"]
    assert all("aws.states" not in rule.get("EventPattern", "") for rule in on_bus)
