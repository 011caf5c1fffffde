"""CloudFormation intrinsics resolved as CloudFormation documents them.

Intrinsic functions: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html
Pseudo parameters: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html
Return values of Ref / Fn::GetAtt: each resource type's page in
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-template-resource-type-ref.html
"""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.iam.template import UnresolvedError, exports_of, physical_name, resolve_intrinsics

ACCOUNT, REGION = "123456789012", "eu-west-1"

TEMPLATE: dict[str, Any] = {
    "Parameters": {"Stage": {"Type": "String", "Default": "dev"}, "NoDefault": {"Type": "String"}},
    "Mappings": {"Images": {"eu-west-1": {"uri": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/x"}}},
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
        "Both": {"Fn::And": [{"Condition": "NotProd"}, {"Fn::Equals": ["a", "a"]}]},
        "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "NotProd"}]},
    },
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "aios-dev-lineage"}},
        "NamedByJoin": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": {"Fn::Join": ["-", ["aios-dev-docs", {"Ref": "AWS::AccountId"}]]}},
        },
        "Unnamed": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "aios-dev-dead-letters"}},
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "aios-dev-intake"}},
        "Machine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {"StateMachineName": "aios-dev-ap"},
        },
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "aios-dev-aios"}},
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {"Name": "r1", "EventBusName": {"Ref": "Bus"}}},
        "DefaultRule": {"Type": "AWS::Events::Rule", "Properties": {"Name": "r2"}},
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "/aws/lambda/aios-dev-intake"},
        },
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": "r", "Path": "/service/"}},
        "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "aios/webhooks/stripe"}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
        "Endpoint": {"Type": "AWS::SageMaker::Endpoint", "Properties": {"EndpointName": "aios-dev-Anomaly"}},
        "Group": {"Type": "AWS::SageMaker::ModelPackageGroup", "Properties": {"ModelPackageGroupName": "g"}},
        "Target": {"Type": "AWS::ApplicationAutoScaling::ScalableTarget", "Properties": {}},
    },
}


def resolve(value: Any, **kwargs: Any) -> Any:
    return resolve_intrinsics(value, TEMPLATE, account=ACCOUNT, region=REGION, **kwargs)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"Ref": "AWS::AccountId"}, ACCOUNT),
        ({"Ref": "AWS::Region"}, REGION),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Ref": "Stage"}, "dev"),  # a parameter's Default
        ({"Ref": "Table"}, "aios-dev-lineage"),
        ({"Fn::GetAtt": ["Table", "Arn"]}, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/aios-dev-lineage"),
        ({"Fn::GetAtt": "Table.Arn"}, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/aios-dev-lineage"),
        ({"Ref": "NamedByJoin"}, f"aios-dev-docs-{ACCOUNT}"),  # name properties are resolved too
        ({"Fn::GetAtt": ["NamedByJoin", "Arn"]}, f"arn:aws:s3:::aios-dev-docs-{ACCOUNT}"),
        ({"Ref": "Unnamed"}, "Unnamed"),  # no name property: the logical id
        ({"Ref": "Queue"}, f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/aios-dev-dead-letters"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, f"arn:aws:sqs:{REGION}:{ACCOUNT}:aios-dev-dead-letters"),
        ({"Fn::GetAtt": ["Queue", "QueueName"]}, "aios-dev-dead-letters"),
        ({"Ref": "Fn"}, "aios-dev-intake"),
        ({"Fn::GetAtt": ["Fn", "Arn"]}, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aios-dev-intake"),
        ({"Ref": "Machine"}, f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:aios-dev-ap"),  # Ref is the ARN
        ({"Fn::GetAtt": ["Machine", "Name"]}, "aios-dev-ap"),
        ({"Ref": "Bus"}, "aios-dev-aios"),
        ({"Fn::GetAtt": ["Bus", "Arn"]}, f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/aios-dev-aios"),
        ({"Fn::GetAtt": ["Rule", "Arn"]}, f"arn:aws:events:{REGION}:{ACCOUNT}:rule/aios-dev-aios/r1"),
        ({"Fn::GetAtt": ["DefaultRule", "Arn"]}, f"arn:aws:events:{REGION}:{ACCOUNT}:rule/r2"),
        (
            {"Fn::GetAtt": ["Logs", "Arn"]},
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/aios-dev-intake:*",
        ),
        ({"Fn::GetAtt": ["Role", "Arn"]}, f"arn:aws:iam::{ACCOUNT}:role/service/r"),
        ({"Ref": "Secret"}, f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:aios/webhooks/stripe-??????"),
        ({"Ref": "Endpoint"}, f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/aios-dev-anomaly"),
        ({"Fn::GetAtt": ["Endpoint", "EndpointName"]}, "aios-dev-Anomaly"),
        (
            {"Fn::GetAtt": ["Group", "ModelPackageGroupArn"]},
            f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/g",
        ),
        ({"Ref": "Target"}, "Target"),  # other types: Ref is the physical id
    ],
)
def test_ref_and_get_att(value: Any, expected: str) -> None:
    assert resolve(value) == expected


def test_kms_key_arn_is_stable_and_overridable() -> None:
    arn = resolve({"Fn::GetAtt": ["Key", "Arn"]})
    assert arn.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    assert arn == resolve({"Fn::GetAtt": ["Key", "Arn"]})
    assert resolve({"Fn::GetAtt": ["Key", "Arn"]}, physical_ids={"Key": "k-1"}).endswith(":key/k-1")


def test_physical_ids_override_the_name_property() -> None:
    ids = {"Table": "aios-local-lineage", "Secret": "arn:aws:secretsmanager:x:1:secret:s-AbCdEf"}
    assert resolve({"Fn::GetAtt": ["Table", "Arn"]}, physical_ids=ids).endswith(":table/aios-local-lineage")
    assert resolve({"Ref": "Secret"}, physical_ids=ids) == "arn:aws:secretsmanager:x:1:secret:s-AbCdEf"
    assert (
        physical_name(TEMPLATE, "Table", account=ACCOUNT, region=REGION, physical_ids=ids)
        == "aios-local-lineage"
    )


def test_partition_and_url_suffix_follow_the_partition() -> None:
    assert resolve({"Fn::GetAtt": ["Fn", "Arn"]}, partition="aws-cn").startswith("arn:aws-cn:lambda:")
    assert resolve({"Ref": "AWS::URLSuffix"}, partition="aws-cn") == "amazonaws.com.cn"


def test_join_select_split() -> None:
    joined = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::b/", {"Ref": "AWS::AccountId"}]]}
    assert resolve(joined) == f"arn:aws:s3:::b/{ACCOUNT}"
    assert resolve({"Fn::Select": [1, ["a", {"Ref": "AWS::Region"}]]}) == REGION
    assert resolve({"Fn::Split": [":", {"Fn::GetAtt": ["Fn", "Arn"]}]})[3] == REGION
    assert (
        resolve({"Fn::Select": ["6", {"Fn::Split": [":", {"Fn::GetAtt": ["Fn", "Arn"]}]}]})
        == "aios-dev-intake"
    )


def test_sub_string_form() -> None:
    assert resolve({"Fn::Sub": "cdk-${AWS::AccountId}-${AWS::Region}"}) == f"cdk-{ACCOUNT}-{REGION}"
    assert resolve({"Fn::Sub": "${Table}|${Table.Arn}"}) == (
        f"aios-dev-lineage|arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/aios-dev-lineage"
    )
    assert resolve({"Fn::Sub": "${!Literal}-${AWS::Region}"}) == f"${{Literal}}-{REGION}"


def test_sub_with_variable_map() -> None:
    value = {"Fn::Sub": ["${Name}/${AWS::Region}", {"Name": {"Ref": "Bus"}}]}
    assert resolve(value) == f"aios-dev-aios/{REGION}"


def test_import_value_from_exports_of_other_stacks() -> None:
    producer = {
        "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {}}},
        "Outputs": {
            "KeyArn": {
                "Value": {"Fn::GetAtt": ["Key", "Arn"]},
                "Export": {"Name": {"Fn::Sub": "${AWS::StackName}:key"}},
            }
        },
    }
    exports = exports_of({"data": producer}, account=ACCOUNT, region=REGION, physical_ids={"Key": "k-1"})
    assert exports == {"data:key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1"}
    assert (
        resolve({"Fn::ImportValue": "data:key"}, exports=exports) == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1"
    )
    with pytest.raises(UnresolvedError, match="no export"):
        resolve({"Fn::ImportValue": "data:other"}, exports=exports)


def test_find_in_map() -> None:
    assert resolve({"Fn::FindInMap": ["Images", {"Ref": "AWS::Region"}, "uri"]}).endswith("/x")
    with pytest.raises(UnresolvedError):
        resolve({"Fn::FindInMap": ["Images", "us-east-1", "uri"]})


def test_conditions_and_no_value() -> None:
    assert resolve({"Fn::If": ["IsProd", "p", "d"]}) == "d"
    assert resolve({"Fn::If": ["IsProd", "p", "d"]}, parameters={"Stage": "prod"}) == "p"
    assert resolve({"Fn::If": ["Both", "yes", "no"]}) == "yes"
    assert resolve({"Fn::If": ["Either", "yes", "no"]}) == "yes"
    removed = {"A": 1, "B": {"Fn::If": ["IsProd", 2, {"Ref": "AWS::NoValue"}]}}
    assert resolve(removed) == {"A": 1}
    assert resolve(["x", {"Ref": "AWS::NoValue"}]) == ["x"]


def test_base64() -> None:
    assert resolve({"Fn::Base64": "hi"}) == "aGk="


def test_nested_statement_is_resolved_throughout() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem"],
        "Resource": [
            {"Fn::GetAtt": ["Table", "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": ["Table", "Arn"]}, "/index/*"]]},
        ],
        "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
    }
    resolved = resolve(statement)
    assert resolved["Resource"][1] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/aios-dev-lineage/index/*"
    assert resolved["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "Missing"}, "no resource"),
        ({"Fn::GetAtt": ["Table", "Nope"]}, "no GetAtt rule"),
        ({"Fn::GetAtt": ["Target", "Arn"]}, "no GetAtt rule"),
        ({"Fn::GetAZs": ""}, "unsupported intrinsic"),
        ({"Ref": "NoDefault"}, "has no value"),
        ({"Ref": "AWS::NotificationARNs"}, "unsupported pseudo"),
        ({"Fn::If": ["Nope", 1, 2]}, "no condition"),
    ],
)
def test_what_cannot_be_resolved_is_an_error(value: Any, message: str) -> None:
    with pytest.raises(UnresolvedError, match=message):
        resolve(value)
