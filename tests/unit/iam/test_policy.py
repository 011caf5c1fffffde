"""The IAM statement evaluator, one documented behaviour per case.

Evaluation logic: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
Condition operators: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
Set operators: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html
"""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure.iam.policy import Request, allows, evaluate, statements_of

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/aios-local-lineage"
BUCKET = "arn:aws:s3:::aios-local-documents-123456789012-us-east-1"


def allow(**element: Any) -> dict[str, Any]:
    return {"Effect": "Allow", **element}


def deny(**element: Any) -> dict[str, Any]:
    return {"Effect": "Deny", **element}


# --- evaluation logic -----------------------------------------------------------------------


def test_nothing_matching_is_an_implicit_deny() -> None:
    assert evaluate([], Request("dynamodb:GetItem", TABLE)) == "ImplicitDeny"
    assert (
        evaluate([allow(Action="dynamodb:PutItem", Resource=TABLE)], Request("dynamodb:GetItem", TABLE))
        == "ImplicitDeny"
    )


def test_a_matching_allow_allows() -> None:
    assert evaluate(
        [allow(Action="dynamodb:GetItem", Resource=TABLE)], Request("dynamodb:GetItem", TABLE)
    ) == ("Allow")


def test_an_explicit_deny_beats_an_allow_in_any_order() -> None:
    statements = [
        allow(Action="dynamodb:*", Resource="*"),
        deny(Action="dynamodb:DeleteItem", Resource=TABLE),
    ]
    assert evaluate(statements, Request("dynamodb:DeleteItem", TABLE)) == "ExplicitDeny"
    assert evaluate(list(reversed(statements)), Request("dynamodb:DeleteItem", TABLE)) == "ExplicitDeny"
    assert allows(statements, Request("dynamodb:GetItem", TABLE))


def test_a_statement_without_effect_is_refused() -> None:
    with pytest.raises(ValueError, match="Effect"):
        evaluate([{"Action": "s3:GetObject", "Resource": "*"}], Request("s3:GetObject", BUCKET))


def test_statements_of_accepts_one_statement_or_a_list() -> None:
    one = {"Version": "2012-10-17", "Statement": allow(Action="s3:GetObject", Resource="*")}
    assert statements_of(one) == [allow(Action="s3:GetObject", Resource="*")]
    assert len(statements_of({"Statement": [one["Statement"], one["Statement"]]})) == 2


# --- Action / NotAction ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("dynamodb:GetItem", "dynamodb:GetItem", True),
        ("dynamodb:getitem", "DynamoDB:GetItem", True),  # action names are case-insensitive
        ("dynamodb:Get*", "dynamodb:GetItem", True),
        ("dynamodb:Get*", "dynamodb:PutItem", False),
        ("s3:Abort*", "s3:AbortMultipartUpload", True),
        ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", True),
        ("s3:?etObject", "s3:GetObject", True),
        ("s3:?etObject", "s3:GeetObject", False),
        ("*", "sqs:SendMessage", True),
        ("dynamodb:*", "dynamodbx:GetItem", False),
        ("dynamodb:GetItem", "dynamodb:GetItems", False),  # whole-name match, not prefix
    ],
)
def test_action_wildcards(pattern: str, action: str, expected: bool) -> None:
    assert allows([allow(Action=pattern, Resource="*")], Request(action, TABLE)) is expected


def test_action_list_is_or() -> None:
    statement = allow(Action=["dynamodb:GetItem", "dynamodb:Query"], Resource=TABLE)
    assert allows([statement], Request("dynamodb:Query", TABLE))


def test_not_action_matches_every_other_action() -> None:
    statement = allow(NotAction=["iam:*", "kms:Delete*"], Resource="*")
    assert allows([statement], Request("s3:GetObject", BUCKET))
    assert not allows([statement], Request("iam:CreateUser", "*"))
    assert not allows([statement], Request("KMS:DeleteAlias", "*"))


def test_a_statement_needs_action_or_not_action() -> None:
    with pytest.raises(ValueError, match="Action"):
        evaluate([{"Effect": "Allow", "Resource": "*"}], Request("s3:GetObject", BUCKET))


# --- Resource / NotResource -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        (TABLE, TABLE, True),
        (TABLE.upper(), TABLE, False),  # resource ARNs are case-sensitive
        (f"{TABLE}/index/*", f"{TABLE}/index/by-key", True),
        (f"{TABLE}/index/*", TABLE, False),
        (f"{BUCKET}/*", f"{BUCKET}/intake/a/b.json", True),  # * spans slashes
        (f"{BUCKET}/*", BUCKET, False),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:aios/erp-??????",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:aios/erp-AbC123",
            True,
        ),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:aios/erp-??????",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:aios/erp-AbC12",
            False,
        ),
        ("arn:aws:logs:*:*:*", "arn:aws:logs:us-east-1:123456789012:log-group:x:*", True),
        ("*", TABLE, True),
    ],
)
def test_resource_wildcards(pattern: str, resource: str, expected: bool) -> None:
    assert allows([allow(Action="*", Resource=pattern)], Request("dynamodb:GetItem", resource)) is expected


def test_an_action_without_resource_level_permissions_needs_resource_star() -> None:
    # The request's resource is "*": only a statement with Resource "*" grants it.
    request = Request("cloudwatch:PutMetricData", "*")
    assert not allows([allow(Action="cloudwatch:PutMetricData", Resource=TABLE)], request)
    assert allows([allow(Action="cloudwatch:PutMetricData", Resource="*")], request)


def test_not_resource() -> None:
    statement = deny(Action="s3:*", NotResource=[f"{BUCKET}/public/*"])
    assert evaluate([statement], Request("s3:GetObject", f"{BUCKET}/private/x")) == "ExplicitDeny"
    assert evaluate([statement], Request("s3:GetObject", f"{BUCKET}/public/x")) == "ImplicitDeny"


def test_resource_policy_variable_from_context() -> None:
    statement = allow(Action="s3:GetObject", Resource=f"{BUCKET}/${{aws:PrincipalAccount}}/*")
    ok = Request("s3:GetObject", f"{BUCKET}/123456789012/x", context={"aws:PrincipalAccount": "123456789012"})
    other = Request(
        "s3:GetObject", f"{BUCKET}/999999999999/x", context={"aws:PrincipalAccount": "123456789012"}
    )
    missing = Request("s3:GetObject", f"{BUCKET}/123456789012/x")
    assert allows([statement], ok)
    assert not allows([statement], other)
    assert not allows([statement], missing)  # a variable without a value matches nothing


def test_policy_variable_default_and_literal_wildcards() -> None:
    statement = allow(Action="s3:GetObject", Resource=f"{BUCKET}/${{aws:username, 'shared'}}/${{*}}")
    assert allows([statement], Request("s3:GetObject", f"{BUCKET}/shared/*"))
    assert not allows([statement], Request("s3:GetObject", f"{BUCKET}/shared/anything"))


# --- Principal / NotPrincipal -----------------------------------------------------------------


def test_identity_statements_apply_to_any_caller() -> None:
    assert allows([allow(Action="s3:GetObject", Resource="*")], Request("s3:GetObject", BUCKET))


def test_service_principal() -> None:
    statement = allow(
        Principal={"Service": "cloudtrail.amazonaws.com"}, Action="s3:GetBucketAcl", Resource=BUCKET
    )
    assert allows(
        [statement], Request("s3:GetBucketAcl", BUCKET, principal={"Service": "cloudtrail.amazonaws.com"})
    )
    assert not allows(
        [statement], Request("s3:GetBucketAcl", BUCKET, principal={"Service": "logs.amazonaws.com"})
    )
    assert not allows(
        [statement], Request("s3:GetBucketAcl", BUCKET, principal={"AWS": "arn:aws:iam::123456789012:root"})
    )
    assert not allows([statement], Request("s3:GetBucketAcl", BUCKET))  # anonymous


def test_service_principal_list() -> None:
    statement = allow(
        Principal={"Service": ["events.amazonaws.com", "states.amazonaws.com"]}, Action="sts:AssumeRole"
    )
    assert allows([statement], Request("sts:AssumeRole", "*", principal={"Service": "states.amazonaws.com"}))


def test_account_root_names_every_principal_of_the_account() -> None:
    statement = allow(Principal={"AWS": "arn:aws:iam::123456789012:root"}, Action="kms:*", Resource="*")
    role = {"AWS": "arn:aws:iam::123456789012:role/aios-local-intake"}
    session = {"AWS": "arn:aws:sts::123456789012:assumed-role/r/s"}
    stranger = {"AWS": "arn:aws:iam::999999999999:role/x"}
    assert allows([statement], Request("kms:Decrypt", "*", principal=role))
    assert allows([statement], Request("kms:Decrypt", "*", principal=session))
    assert allows([statement], Request("kms:Decrypt", "*", principal={"AWS": "123456789012"}))
    assert not allows([statement], Request("kms:Decrypt", "*", principal=stranger))


def test_bare_account_id_principal() -> None:
    statement = allow(Principal={"AWS": "123456789012"}, Action="sqs:SendMessage", Resource="*")
    assert allows(
        [statement], Request("sqs:SendMessage", "*", principal={"AWS": "arn:aws:iam::123456789012:user/u"})
    )


def test_a_role_principal_names_only_that_role() -> None:
    statement = allow(Principal={"AWS": "arn:aws:iam::123456789012:role/a"}, Action="*", Resource="*")
    assert allows(
        [statement], Request("s3:GetObject", "*", principal={"AWS": "arn:aws:iam::123456789012:role/a"})
    )
    assert not allows(
        [statement], Request("s3:GetObject", "*", principal={"AWS": "arn:aws:iam::123456789012:role/b"})
    )


@pytest.mark.parametrize("element", ["*", {"AWS": "*"}])
def test_star_principal_names_everyone(element: Any) -> None:
    statement = deny(Principal=element, Action="s3:*", Resource=f"{BUCKET}/*")
    assert evaluate([statement], Request("s3:GetObject", f"{BUCKET}/x")) == "ExplicitDeny"
    assert evaluate(
        [statement], Request("s3:GetObject", f"{BUCKET}/x", principal={"Service": "x.amazonaws.com"})
    ) == ("ExplicitDeny")


def test_not_principal() -> None:
    statement = deny(NotPrincipal={"AWS": "arn:aws:iam::123456789012:root"}, Action="kms:*", Resource="*")
    assert evaluate(
        [statement], Request("kms:Decrypt", "*", principal={"AWS": "arn:aws:iam::999999999999:root"})
    ) == ("ExplicitDeny")
    assert (
        evaluate([statement], Request("kms:Decrypt", "*", principal={"AWS": "123456789012"}))
        == "ImplicitDeny"
    )


# --- Condition ---------------------------------------------------------------------------------


def cond(condition: dict[str, Any]) -> list[dict[str, Any]]:
    return [allow(Action="kms:Decrypt", Resource="*", Condition=condition)]


def req(**context: Any) -> Request:
    return Request("kms:Decrypt", "*", context=context)


def test_string_equals_is_case_sensitive_and_values_are_ored() -> None:
    statements = cond(
        {"StringEquals": {"kms:ViaService": ["secretsmanager.us-east-1.amazonaws.com", "s3.x"]}}
    )
    assert allows(statements, req(**{"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}))
    assert allows(statements, req(**{"kms:ViaService": "s3.x"}))
    assert not allows(statements, req(**{"kms:ViaService": "SecretsManager.us-east-1.amazonaws.com"}))


def test_condition_key_names_are_case_insensitive() -> None:
    statements = cond({"StringEquals": {"aws:SourceAccount": "123456789012"}})
    assert allows(statements, req(**{"AWS:SOURCEACCOUNT": "123456789012"}))


def test_keys_and_operators_are_anded() -> None:
    statements = cond(
        {
            "StringEquals": {"aws:SourceAccount": "123456789012", "aws:PrincipalAccount": "123456789012"},
            "ArnLike": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/*"},
        }
    )
    full = {
        "aws:SourceAccount": "123456789012",
        "aws:PrincipalAccount": "123456789012",
        "aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/aios/r",
    }
    assert allows(statements, req(**full))
    for key in full:
        assert not allows(statements, req(**{k: v for k, v in full.items() if k != key}))


def test_a_missing_key_makes_a_positive_condition_false() -> None:
    assert not allows(cond({"StringEquals": {"aws:SourceAccount": "123456789012"}}), req())
    assert not allows(cond({"Bool": {"aws:SecureTransport": "true"}}), req())


def test_a_missing_key_makes_a_negated_condition_true() -> None:
    assert allows(cond({"StringNotEquals": {"aws:SourceAccount": "123456789012"}}), req())
    assert allows(cond({"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}}), req())


def test_negated_operator_with_several_values_is_nor() -> None:
    statements = cond({"StringNotEquals": {"aws:SourceAccount": ["111111111111", "222222222222"]}})
    assert not allows(statements, req(**{"aws:SourceAccount": "111111111111"}))
    assert not allows(statements, req(**{"aws:SourceAccount": "222222222222"}))
    assert allows(statements, req(**{"aws:SourceAccount": "333333333333"}))


def test_if_exists_passes_a_missing_key_and_checks_a_present_one() -> None:
    statements = cond({"StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}})
    assert allows(statements, req())
    assert allows(statements, req(**{"kms:ViaService": "s3.us-east-1.amazonaws.com"}))
    assert not allows(statements, req(**{"kms:ViaService": "sqs.us-east-1.amazonaws.com"}))


def test_null_checks_presence() -> None:
    absent = cond({"Null": {"aws:TokenIssueTime": "true"}})
    present = cond({"Null": {"aws:TokenIssueTime": "false"}})
    assert allows(absent, req())
    assert not allows(absent, req(**{"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}))
    assert allows(present, req(**{"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}))
    assert not allows(present, req())


@pytest.mark.parametrize(
    ("operator", "policy", "actual", "expected"),
    [
        ("StringEqualsIgnoreCase", "ABC", "abc", True),
        ("StringNotEqualsIgnoreCase", "ABC", "abc", False),
        (
            "StringLike",
            "arn:aws:cloudtrail:*:123456789012:trail/*",
            "arn:aws:cloudtrail:us-east-1:123456789012:trail/t",
            True,
        ),
        ("StringLike", "a?c", "abc", True),
        ("StringLike", "a?c", "ac", False),
        ("StringNotLike", "a*", "abc", False),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "11", True),
        ("NumericGreaterThanEquals", "10", "9.5", False),
        ("NumericEquals", "10", "10.0", True),
        ("NumericNotEquals", "10", "11", True),
        ("NumericEquals", "10", "ten", False),
        ("DateLessThan", "2026-12-31T00:00:00Z", "2026-06-01T00:00:00Z", True),
        ("DateGreaterThan", "2026-12-31T00:00:00Z", "2026-06-01T00:00:00Z", False),
        ("DateEquals", "2026-01-01T00:00:00Z", "1767225600", True),
        ("DateNotEquals", "2026-01-01T00:00:00Z", "1767225600", False),
        ("Bool", "true", "TRUE", True),
        ("Bool", "false", "true", False),
        ("BinaryEquals", "QmluYXJ5", "QmluYXJ5", True),
        ("IpAddress", "10.0.0.0/8", "10.1.2.3", True),
        ("IpAddress", "10.0.0.0/8", "192.168.0.1", False),
        ("NotIpAddress", "10.0.0.0/8", "192.168.0.1", True),
        (
            "ArnLike",
            "arn:aws:logs:us-east-1:123456789012:log-group:*",
            "arn:aws:logs:us-east-1:123456789012:log-group:/aws/x",
            True,
        ),
        (
            "ArnLike",
            "arn:aws:logs:*:123456789012:*",
            "arn:aws:logs:us-east-1:999999999999:log-group:x",
            False,
        ),
        (
            "ArnEquals",
            "arn:aws:events:us-east-1:123456789012:rule/aios/r",
            "arn:aws:events:us-east-1:123456789012:rule/aios/r",
            True,
        ),
        (
            "ArnEquals",
            "arn:aws:events:us-east-1:123456789012:rule/*",
            "arn:aws:events:us-east-1:123456789012:rule/x",
            True,
        ),
        ("ArnLike", "arn:aws:s3:::*", "not-an-arn", False),
        ("ArnNotEquals", "arn:aws:s3:::a", "arn:aws:s3:::b", True),
        ("ArnNotLike", "arn:aws:s3:::a*", "arn:aws:s3:::abc", False),
    ],
)
def test_operators(operator: str, policy: str, actual: str, expected: bool) -> None:
    assert allows(cond({operator: {"k:key": policy}}), req(**{"k:key": actual})) is expected


def test_arn_like_matches_each_part_on_its_own() -> None:
    # "*" in the region part cannot swallow the account part.
    statements = cond({"ArnLike": {"aws:SourceArn": "arn:aws:sqs:*:123456789012:q"}})
    assert allows(statements, req(**{"aws:SourceArn": "arn:aws:sqs:eu-west-1:123456789012:q"}))
    assert not allows(statements, req(**{"aws:SourceArn": "arn:aws:sqs:eu-west-1:1:123456789012:q"}))


def test_bool_context_values_may_be_python_bools() -> None:
    assert allows(cond({"Bool": {"aws:SecureTransport": "false"}}), req(**{"aws:SecureTransport": False}))


def test_condition_value_policy_variable() -> None:
    statements = cond({"StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}})
    assert allows(statements, req(**{"aws:SourceAccount": "1", "aws:PrincipalAccount": "1"}))
    assert not allows(statements, req(**{"aws:SourceAccount": "1", "aws:PrincipalAccount": "2"}))
    assert not allows(statements, req(**{"aws:SourceAccount": "1"}))


def test_for_any_value() -> None:
    statements = cond({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}})
    assert allows(statements, req(**{"aws:TagKeys": ["x", "b"]}))
    assert not allows(statements, req(**{"aws:TagKeys": ["x", "y"]}))
    assert not allows(statements, req(**{"aws:TagKeys": []}))  # empty: false
    assert not allows(statements, req())  # missing: false


def test_for_all_values() -> None:
    statements = cond({"ForAllValues:StringLike": {"aws:TagKeys": ["aios:*", "env"]}})
    assert allows(statements, req(**{"aws:TagKeys": ["aios:stage", "env"]}))
    assert not allows(statements, req(**{"aws:TagKeys": ["aios:stage", "owner"]}))
    assert allows(statements, req())  # missing: true
    assert allows(statements, req(**{"aws:TagKeys": []}))  # empty: true


def test_for_all_values_negated() -> None:
    statements = cond({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["secret"]}})
    assert allows(statements, req(**{"aws:TagKeys": ["a", "b"]}))
    assert not allows(statements, req(**{"aws:TagKeys": ["a", "secret"]}))


def test_deny_unless_secure_transport() -> None:
    # The bucket policies' "deny when aws:SecureTransport is false".
    statements = [
        allow(Action="s3:GetObject", Resource=f"{BUCKET}/*"),
        deny(
            Principal={"AWS": "*"},
            Action="s3:*",
            Resource=f"{BUCKET}/*",
            Condition={"Bool": {"aws:SecureTransport": "false"}},
        ),
    ]
    https = Request("s3:GetObject", f"{BUCKET}/x", context={"aws:SecureTransport": "true"})
    http = Request("s3:GetObject", f"{BUCKET}/x", context={"aws:SecureTransport": "false"})
    assert evaluate(statements, https) == "Allow"
    assert evaluate(statements, http) == "ExplicitDeny"


@pytest.mark.parametrize("operator", ["StringEqualz", "Foo:StringEquals"])
def test_unknown_operators_are_refused(operator: str) -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        evaluate(cond({operator: {"k": "v"}}), req(k="v"))
