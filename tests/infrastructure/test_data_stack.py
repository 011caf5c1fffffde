"""The stateful stack: encryption with our key, recovery, TLS, audit."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from tests.infrastructure.synth import Synthesized, synthesize


def _key_reference(synthesized: Synthesized) -> dict[str, Any]:
    keys = synthesized.data.find_resources("AWS::KMS::Key")
    assert len(keys) == 1, "one customer-managed key encrypts the platform"
    return {"Fn::GetAtt": [next(iter(keys)), "Arn"]}


def test_platform_key_rotates(synthesized: Synthesized) -> None:
    synthesized.data.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_every_table_is_encrypted_with_our_key_and_recoverable(synthesized: Synthesized) -> None:
    key = _key_reference(synthesized)
    tables = synthesized.data.find_resources("AWS::DynamoDB::Table")
    assert {t["Properties"]["TableName"] for t in tables.values()} >= {
        "aios-dev-lineage",
        "aios-dev-idempotency",
    }
    for table in tables.values():
        properties = table["Properties"]
        assert properties["SSESpecification"] == {"KMSMasterKeyId": key, "SSEEnabled": True, "SSEType": "KMS"}
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_lineage_table_answers_both_questions(synthesized: Synthesized) -> None:
    # all steps of one execution: the key; all steps of one business item: the GSI
    synthesized.data.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "aios-dev-lineage",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {
                        "IndexName": "by-business-key",
                        "KeySchema": [
                            {"AttributeName": "business_key", "KeyType": "HASH"},
                            {"AttributeName": "recorded_at", "KeyType": "RANGE"},
                        ],
                    }
                )
            ],
        },
    )


def test_idempotency_table_expires_records(synthesized: Synthesized) -> None:
    synthesized.data.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "aios-dev-idempotency",
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )


def test_dev_tables_are_not_deletion_protected(synthesized: Synthesized) -> None:
    for table in synthesized.data.find_resources("AWS::DynamoDB::Table").values():
        assert table["Properties"].get("DeletionProtectionEnabled") is False


def test_buckets_are_kms_encrypted_versioned_private_and_logged(synthesized: Synthesized) -> None:
    key = _key_reference(synthesized)
    buckets = synthesized.data.find_resources("AWS::S3::Bucket")
    kms_buckets = {
        logical_id: bucket
        for logical_id, bucket in buckets.items()
        if bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"
        ]["SSEAlgorithm"]
        == "aws:kms"
    }
    assert len(kms_buckets) == 2, "documents and audit"
    for bucket in kms_buckets.values():
        properties = bucket["Properties"]
        encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert "DestinationBucketName" in properties["LoggingConfiguration"]


def test_every_bucket_refuses_plain_http(synthesized: Synthesized) -> None:
    buckets = synthesized.data.find_resources("AWS::S3::Bucket")
    policies = synthesized.data.find_resources("AWS::S3::BucketPolicy")
    tls_only = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Effect") == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                tls_only.add(policy["Properties"]["Bucket"]["Ref"])
    assert tls_only == set(buckets)


def test_trail_is_multi_region_validated_encrypted_with_data_events(synthesized: Synthesized) -> None:
    key = _key_reference(synthesized)
    trails = synthesized.data.find_resources("AWS::CloudTrail::Trail")
    assert len(trails) == 1
    properties = next(iter(trails.values()))["Properties"]
    assert properties["IsMultiRegionTrail"] is True
    assert properties["EnableLogFileValidation"] is True
    assert properties["KMSKeyId"] == key
    selectors = properties["AdvancedEventSelectors"]
    data_types = {
        field["Equals"][0]
        for selector in selectors
        for field in selector["FieldSelectors"]
        if field["Field"] == "resources.type"
    }
    assert data_types == {"AWS::DynamoDB::Table", "AWS::S3::Object"}
    management = [s for s in selectors if s["FieldSelectors"][0]["Equals"] == ["Management"]]
    assert management, "management events stay on"


def test_log_groups_are_encrypted_with_our_key(synthesized: Synthesized) -> None:
    for template in (synthesized.data, synthesized.platform):
        for log_group in template.find_resources("AWS::Logs::LogGroup").values():
            assert "KmsKeyId" in log_group["Properties"]
            assert "RetentionInDays" in log_group["Properties"]


def test_production_protects_data(tmp_path_factory: Any) -> None:
    # Given the prod stage, When synthesized, Then tables cannot be deleted by accident
    production = synthesize(tmp_path_factory.mktemp("prod"), context={"stage": "prod"})
    tables = production.data.find_resources("AWS::DynamoDB::Table")
    assert tables
    for table in tables.values():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        # Retained on delete and replacement, but removed when the first create rolls back
        # (a retried first deploy must not collide with what the failed one left behind).
        assert table["DeletionPolicy"] == "RetainExceptOnCreate"
        assert table["UpdateReplacePolicy"] == "Retain"
