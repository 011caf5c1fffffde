"""A second model is one ``ModelSpec`` and the function that declares it: the models stack
serves both, and each function may invoke exactly the endpoints of the models it declares.

The second model (``vendor-risk``) reuses the anomaly package's built artifacts, so this needs
``make model`` and nothing else. Grants are evaluated the way IAM would
(``infrastructure.iam.policy``) against the endpoints' own ARNs, resolved from the models
stack's template. ``sagemaker:InvokeEndpoint`` is authorized on the ``endpoint`` resource type
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infrastructure.app import AiosStacks
from infrastructure.iam.policy import Request, allows, statements_of
from infrastructure.local.deploy import LocalNames, function_environment
from infrastructure.platform import PLATFORM
from infrastructure.platform.models import INVOICE_ANOMALY, artifact_version
from infrastructure.platform.spec import Access, FunctionSpec, ModelSpec, Platform
from tests.infrastructure.policy_contracts import ACCOUNT, PARTITION, REGION, DeployedPolicies
from tests.infrastructure.synth import synthesize

VENDOR_RISK = ModelSpec(
    name="vendor-risk",
    description="vendor risk scorer (test: the anomaly package's artifacts)",
    package=INVOICE_ANOMALY.package,
    stages=INVOICE_ANOMALY.stages,
)
VENDOR_SCORE = FunctionSpec(
    name="vendor-score",
    description="Scores vendors with the vendor risk endpoint.",
    code="model_invoke",
    timeout_seconds=180,
    tables={"circuit": Access.READ_WRITE, "lineage": Access.WRITE},
    model=VENDOR_RISK.name,
)
TWO_MODELS = Platform.model_validate(
    {
        **dict(PLATFORM),
        "models": (*PLATFORM.models, VENDOR_RISK),
        "functions": (*PLATFORM.functions, VENDOR_SCORE),
    }
)
ENDPOINTS = {"invoice-anomaly": "aios-dev-invoice-anomaly", "vendor-risk": "aios-dev-vendor-risk"}


class Built:
    def __init__(self, outdir: Path, stacks: AiosStacks) -> None:
        self.outdir = outdir
        self.stacks = stacks
        self.templates = {
            path.stem.removesuffix(".template"): json.loads(path.read_text())
            for path in outdir.glob("*.template.json")
        }
        self.policies = DeployedPolicies(self.templates)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    synthesized = synthesize(tmp_path_factory.mktemp("cdk.out"), platform=TWO_MODELS)
    return Built(synthesized.outdir, synthesized.stacks)


def _endpoint_arns(built: Built) -> dict[str, str]:
    """Endpoint name -> ARN, as the models stack's endpoints resolve (``Ref``)."""
    arns = {}
    for stack, logical_id, resource in built.policies.resources("AWS::SageMaker::Endpoint"):
        name = resource["Properties"]["EndpointName"]
        arns[name] = str(built.policies.resolve(stack, {"Ref": logical_id}))
    return arns


def test_the_models_stack_serves_every_declared_model(built: Built) -> None:
    assert set(_endpoint_arns(built)) == set(ENDPOINTS.values())
    template = built.templates["aios-dev-models"]
    # The first model keeps the ids it had alone; the second's start with its name
    assert {"EndpointName", "VendorRiskEndpointName"} <= set(template["Outputs"])
    assert set(template["Mappings"]) == {"ServingImages", "VendorRiskServingImages"}
    groups = [
        resource["Properties"]["ModelPackageGroupName"]
        for _, _, resource in built.policies.resources("AWS::SageMaker::ModelPackageGroup")
    ]
    assert sorted(groups) == sorted(ENDPOINTS.values())
    capture = sorted(
        built.policies.resolve(
            "aios-dev-models", resource["Properties"]["DataCaptureConfig"]["DestinationS3Uri"]
        )
        for _, _, resource in built.policies.resources("AWS::SageMaker::EndpointConfig")
    )
    bucket = f"s3://aios-dev-model-capture-{ACCOUNT}-{REGION}"
    assert capture == [f"{bucket}/invoice-anomaly", f"{bucket}/vendor-risk"]


def test_each_function_may_invoke_exactly_the_endpoints_it_declared(built: Built) -> None:
    arns = _endpoint_arns(built)
    unknown = f"arn:{PARTITION}:sagemaker:{REGION}:{ACCOUNT}:endpoint/aios-dev-someone-elses"
    checked = 0
    for function in TWO_MODELS.functions:
        statements = built.policies.role_policy(f"aios-dev-{function.name}")
        may = {
            name
            for name, arn in arns.items()
            if allows(statements, Request(action="sagemaker:InvokeEndpoint", resource=arn))
        }
        declared = {ENDPOINTS[function.model]} if function.model else set()
        assert may == declared, function.name
        assert not allows(statements, Request(action="sagemaker:InvokeEndpoint", resource=unknown))
        checked += 1
    assert checked == len(TWO_MODELS.functions)
    # The two that call a model, named: each its own endpoint, not the other's
    invoke = built.policies.role_policy("aios-dev-model-invoke")
    vendor = built.policies.role_policy("aios-dev-vendor-score")
    for statements, own, other in (
        (invoke, "aios-dev-invoice-anomaly", "aios-dev-vendor-risk"),
        (vendor, "aios-dev-vendor-risk", "aios-dev-invoice-anomaly"),
    ):
        assert allows(statements, Request(action="sagemaker:InvokeEndpoint", resource=arns[own]))
        assert not allows(statements, Request(action="sagemaker:InvokeEndpoint", resource=arns[other]))


def test_each_function_is_told_its_own_endpoint_and_version_in_both_renderings(built: Built) -> None:
    functions = {
        resource["Properties"]["FunctionName"]: resource["Properties"]
        for _, _, resource in built.policies.resources("AWS::Lambda::Function")
        if isinstance(resource["Properties"].get("FunctionName"), str)
    }
    version = artifact_version(INVOICE_ANOMALY)
    names = LocalNames()
    for function, endpoint in (("model-invoke", "invoice-anomaly"), ("vendor-score", "vendor-risk")):
        variables: dict[str, Any] = functions[f"aios-dev-{function}"]["Environment"]["Variables"]
        assert (variables["AIOS_MODEL_ENDPOINT"], variables["AIOS_MODEL_VERSION"]) == (
            f"aios-dev-{endpoint}",
            version,
        )
        local = function_environment(TWO_MODELS, TWO_MODELS.function(function), names)
        assert local["AIOS_MODEL_ENDPOINT"] == names.name(endpoint)
    assert "AIOS_MODEL_ENDPOINT" not in functions["aios-dev-webhook-ingest"]["Environment"]["Variables"]


def test_each_execution_role_reads_only_its_models_artifacts(built: Built) -> None:
    artifacts = f"aios-dev-model-artifacts-{ACCOUNT}-{REGION}"
    capture = f"aios-dev-model-capture-{ACCOUNT}-{REGION}"
    version = artifact_version(INVOICE_ANOMALY)
    roles = {
        resource["Properties"]["Description"]: [
            statement
            for policy in resource["Properties"]["Policies"]
            for statement in statements_of(built.policies.resolve(stack, policy["PolicyDocument"]))
        ]
        for stack, _, resource in built.policies.resources("AWS::IAM::Role")
        if "SageMaker execution role" in str(resource["Properties"].get("Description", ""))
    }
    assert len(roles) == 2
    for endpoint, model, other in (
        ("aios-dev-invoice-anomaly", "invoice-anomaly", "vendor-risk"),
        ("aios-dev-vendor-risk", "vendor-risk", "invoice-anomaly"),
    ):
        statements = roles[f"aios SageMaker execution role of {endpoint}"]

        def can(action: str, resource: str, statements: list[dict[str, Any]] = statements) -> bool:
            return allows(statements, Request(action=action, resource=resource))

        assert can("s3:GetObject", f"arn:aws:s3:::{artifacts}/{model}/{version}/cpu/model.tar.gz")
        assert not can("s3:GetObject", f"arn:aws:s3:::{artifacts}/{other}/{version}/cpu/model.tar.gz")
        assert can("s3:PutObject", f"arn:aws:s3:::{capture}/{model}/AllTraffic/x.jsonl")
        assert not can("s3:PutObject", f"arn:aws:s3:::{capture}/{other}/AllTraffic/x.jsonl")
