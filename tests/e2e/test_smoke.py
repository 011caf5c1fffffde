"""``aios smoke`` against ``aios local up``: every hop holds on a fresh platform, and a broken
hop is named with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from infrastructure.local.harness import REPO_ROOT, LocalProcess
from infrastructure.smoke import SMOKE_EVENT_TYPE
from tests.e2e.conftest import start_local

HOPS = ("signing secret", "ingest", "bus -> intake", "lineage", "dead letters", "connector secrets")


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local()


def smoke(local: LocalProcess, *target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "infrastructure.cli",
            "smoke",
            *(target or ("--api-url", local.api)),
            "--endpoint-url",
            local.aws,
            "--timeout",
            "20",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_smoke_passes_on_a_fresh_local_platform(local: LocalProcess) -> None:
    result = smoke(local)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for hop in HOPS:
        [line] = [line for line in lines if line[5:].startswith(hop)]
        assert line.startswith("ok "), line
        assert " ms " in line, line  # each hop prints its time
    assert lines[-1] == "smoke passed"
    # The test delivery pays nothing: it was recorded by intake and started no payables run.
    rows = local.client("dynamodb").scan(TableName="aios-local-lineage")["Items"]
    smoke_rows = [r for r in rows if r.get("event_type", {}).get("S") == SMOKE_EVENT_TYPE]
    assert [r["workflow"]["S"] for r in smoke_rows] == ["intake"]
    assert local.executions("accounts-payable") == []


def test_smoke_finds_a_stage_from_its_platform_stack_outputs(local: LocalProcess) -> None:
    # Given a platform stack whose outputs name the deployment, as `cdk deploy` leaves them
    queue = local.client("sqs").get_queue_url(QueueName="aios-local-dead-letters")["QueueUrl"]
    outputs = {"ApiUrl": local.api, "LineageTableName": "aios-local-lineage", "DeadLetterQueueUrl": queue}
    template = {
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation = local.client("cloudformation")
    cloudformation.create_stack(StackName="aios-smoke-platform", TemplateBody=json.dumps(template))
    try:
        # When the check is given the stage only
        result = smoke(local, "--stage", "smoke")
    finally:
        cloudformation.delete_stack(StackName="aios-smoke-platform")
    # Then it found the API, table and queue there and every hop held
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "smoke passed"


def test_a_stage_without_a_platform_stack_fails_naming_it(local: LocalProcess) -> None:
    result = smoke(local, "--stage", "nowhere")
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL stack outputs") and "aios-nowhere-platform" in result.stdout


def test_a_dead_letter_fails_the_dead_letters_hop(local: LocalProcess) -> None:
    sqs = local.client("sqs")
    queue = sqs.get_queue_url(QueueName="aios-local-dead-letters")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"undeliverable": True}))
    try:
        result = smoke(local)
    finally:
        sqs.purge_queue(QueueUrl=queue)
    assert result.returncode == 1, result.stdout
    assert "FAIL dead letters" in result.stdout
    assert result.stdout.splitlines()[-1] == "smoke failed at: dead letters"


def test_an_unset_connector_secret_fails_its_hop(local: LocalProcess) -> None:
    secrets = local.client("secretsmanager")
    name = "aios/connectors/erp"
    original = secrets.get_secret_value(SecretId=name)["SecretString"]
    secrets.put_secret_value(
        SecretId=name, SecretString=json.dumps({"base_url": "https://replace-me.invalid"})
    )
    try:
        result = smoke(local)
    finally:
        secrets.put_secret_value(SecretId=name, SecretString=original)
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines()[-1] == "smoke failed at: connector secrets"
    assert name in result.stdout


def test_an_unusable_signing_secret_stops_the_path_at_its_hop(local: LocalProcess) -> None:
    # Given the standard source's stored signing secret is not a Standard Webhooks secret
    secrets = local.client("secretsmanager")
    name = "aios/webhooks/standard"
    original = secrets.get_secret_value(SecretId=name)["SecretString"]
    secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"current": "not base64!"}))
    try:
        result = smoke(local)
    finally:
        secrets.put_secret_value(SecretId=name, SecretString=original)
    # Then that hop fails, no delivery is sent, and the independent checks still run
    assert result.returncode == 1, result.stdout
    assert "FAIL signing secret" in result.stdout
    assert "ingest" not in result.stdout.split("FAIL signing secret", 1)[1].split("dead letters", 1)[0]
    assert "ok   dead letters" in result.stdout
    assert result.stdout.splitlines()[-1] == "smoke failed at: signing secret"
