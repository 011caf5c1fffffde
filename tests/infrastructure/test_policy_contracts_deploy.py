"""Deploy-time contracts: what CloudFormation, Lambda, S3 and SES refuse on a first deploy,
a redeploy or a ``cdk destroy``, checked on the synthesized templates.

Each test names the documented rule it stands for. The SES contract needs a platform that
deploys the email connector (the default one does not), so it synthesizes that platform.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infrastructure.app import AiosStacks, build_app
from infrastructure.iam.policy import Request, evaluate
from infrastructure.platform import PLATFORM
from infrastructure.settings import DeploymentSettings, cdk_json_context
from tests.infrastructure.policy_contracts import ACCOUNT, OTHER_ACCOUNT, REGION, DeployedPolicies
from tests.infrastructure.synth import Synthesized, synthesize
from tests.integration.local.catalog_platform import PLATFORM as CATALOG_PLATFORM

STATEFUL = (
    "AWS::KMS::Key",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
)


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # The reservation arrives as the CLI passes it: -c reservedConcurrency='{"webhook-ingest": 50}'
    return synthesize(
        tmp_path_factory.mktemp("prod"),
        context={"stage": "prod", "reservedConcurrency": json.dumps({"webhook-ingest": 50})},
    )


def _resources(synthesized: Synthesized, resource_type: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for template in synthesized.templates().values():
        found |= {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}
    return found


# -- Lambda concurrency -----------------------------------------------------------------------
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html: a reservation
# must leave at least 100 unreserved executions; new accounts' quota can be far lower
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), so any default
# reservation can fail a first deploy.


def test_no_function_reserves_concurrency_by_default(synthesized: Synthesized) -> None:
    functions = _resources(synthesized, "AWS::Lambda::Function")
    reserved = {
        name: f["Properties"]["ReservedConcurrentExecutions"]
        for name, f in functions.items()
        if "ReservedConcurrentExecutions" in f["Properties"]
    }
    assert reserved == {}


def test_reserved_concurrency_is_a_deployment_choice(production: Synthesized) -> None:
    production.platform.has_resource_properties(
        "AWS::Lambda::Function",
        {"FunctionName": "aios-prod-webhook-ingest", "ReservedConcurrentExecutions": 50},
    )


def test_reserving_for_an_unknown_function_fails_at_synth(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no-such-function"):
        build_app(outdir=tmp_path, context={"reservedConcurrency": {"no-such-function": 5}})


# -- CloudFormation: redeploy after a failed first deploy ---------------------------------------
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html:
# with "Retain", a rolled-back create leaves the resource behind and the next deploy collides
# with its fixed name; "RetainExceptOnCreate" deletes it on a create rollback only.


def test_production_keeps_stateful_resources_except_after_a_failed_create(production: Synthesized) -> None:
    for resource_type in STATEFUL:
        resources = _resources(production, resource_type)
        assert resources, resource_type
        for logical_id, resource in resources.items():
            assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", (resource_type, logical_id)
            assert resource.get("UpdateReplacePolicy") == "Retain", (resource_type, logical_id)


def test_production_buckets_are_never_emptied_by_the_stack(production: Synthesized) -> None:
    assert _resources(production, "Custom::S3AutoDeleteObjects") == {}


# -- S3: deleting versioned buckets -----------------------------------------------------------
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/delete-bucket.html: a bucket must be
# empty, every object version and delete marker included, before it can be deleted.


def test_dev_empties_every_versioned_bucket_before_destroy(synthesized: Synthesized) -> None:
    buckets = _resources(synthesized, "AWS::S3::Bucket")
    emptied = {
        resource["Properties"]["BucketName"]["Ref"]
        for resource in _resources(synthesized, "Custom::S3AutoDeleteObjects").values()
    }
    versioned = {
        logical_id
        for logical_id, bucket in buckets.items()
        if bucket["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    }
    assert versioned and versioned <= emptied
    for logical_id in versioned:
        assert buckets[logical_id]["DeletionPolicy"] == "Delete"


def test_the_trail_stops_before_its_bucket_is_emptied(synthesized: Synthesized) -> None:
    # Deletion runs in reverse dependency order: the trail depends on the audit bucket's
    # emptier, so no log file lands after the bucket was emptied.
    [trail] = synthesized.data.find_resources("AWS::CloudTrail::Trail").values()
    emptiers = synthesized.data.find_resources("Custom::S3AutoDeleteObjects")
    bucket_ref = trail["Properties"]["S3BucketName"]
    [audit_emptier] = [k for k, v in emptiers.items() if v["Properties"]["BucketName"] == bucket_ref]
    assert audit_emptier in trail["DependsOn"]


# -- Functions that nothing invokes -----------------------------------------------------------


def test_every_deployed_function_is_invoked_by_a_route_or_a_workflow() -> None:
    invoked = (
        {route.function for route in PLATFORM.routes}
        | {name for workflow in PLATFORM.workflows for name in workflow.functions}
        | {f.name for f in PLATFORM.functions if f.schedule}
    )
    assert {f.name for f in PLATFORM.functions} - invoked == set()


# -- SES --------------------------------------------------------------------------------------
# https://docs.aws.amazon.com/ses/latest/dg/control-user-access.html: SendEmail is authorized
# against the identities it sends from (and, in the sandbox, to) and against the
# configuration set the request names; the email connector names the one its secret sets.


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> DeployedPolicies:
    outdir = tmp_path_factory.mktemp("catalog")
    app = cdk.App(outdir=str(outdir), context=cdk_json_context())
    AiosStacks(app, platform=CATALOG_PLATFORM, settings=DeploymentSettings.from_app(app))
    app.synth()
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    return DeployedPolicies(templates)


@pytest.mark.parametrize(
    ("resource", "allowed"),
    [
        (f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/example.com", True),
        (f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/vendor@example.org", True),
        (f"arn:aws:ses:{REGION}:{ACCOUNT}:configuration-set/aios-mail", True),
        (f"arn:aws:ses:{REGION}:{OTHER_ACCOUNT}:identity/example.com", False),
        (f"arn:aws:ses:{REGION}:{OTHER_ACCOUNT}:configuration-set/aios-mail", False),
    ],
)
def test_email_connector_may_send_with_its_configuration_set(
    catalog: DeployedPolicies, resource: str, allowed: bool
) -> None:
    statements = catalog.role_policy("aios-dev-email-connector")
    decision = evaluate(statements, Request(action="ses:SendEmail", resource=resource))
    assert (decision == "Allow") is allowed, (resource, decision)
