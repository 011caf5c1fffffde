"""Policy contracts: what each AWS service documents it needs from our key, bucket and queue
policies, evaluated against the synthesized templates.

Each row of ``CONTRACTS`` is one request the service makes (principal, action, resource, the
condition keys it sends), with the address of the page that documents it, and whether our
policy must allow it (the service's job) or refuse it (a confused deputy: the same service
acting for another account or another resource). ``infrastructure.iam.policy`` evaluates
the statements the way IAM does, wildcards and condition operators included, so a statement
that looks right but carries a condition the request never has fails here, not at deploy.

The account and region are made up (``policy_contracts.ACCOUNT``); physical names come from
``DeploymentSettings`` (dev stage).
"""

from __future__ import annotations

import pytest

from tests.infrastructure.policy_contracts import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    Contract,
    DeployedPolicies,
)
from tests.infrastructure.synth import Synthesized

STAGE = "aios-dev"
TRAIL = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/{STAGE}-audit"
OTHER_TRAIL = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/someone-elses-trail"
BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{STAGE}-aios"
OTHER_BUS = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/someone-elses-bus"
ARCHIVE = f"arn:aws:events:{REGION}:{ACCOUNT}:archive/{STAGE}-aios-archive"
INTAKE_RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{STAGE}-aios/{STAGE}-intake-trigger"
DLQ = f"{STAGE}-dead-letters"
DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{DLQ}"
AUDIT_BUCKET = f"{STAGE}-audit-{ACCOUNT}-{REGION}"
DOCUMENTS_BUCKET = f"{STAGE}-documents-{ACCOUNT}-{REGION}"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{STAGE}-webhook-ingest"
KEY = "key"  # the key policy; the request's resource is the key's ARN (filled in below)

CLOUDTRAIL = {"Service": "cloudtrail.amazonaws.com"}
EVENTS = {"Service": "events.amazonaws.com"}
LOGS = {"Service": f"logs.{REGION}.amazonaws.com"}
S3_LOGGING = {"Service": "logging.s3.amazonaws.com"}

CLOUDTRAIL_KMS = (
    "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html"
)
CLOUDTRAIL_KMS_DEFAULT = (
    "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/default-kms-key-policy.html"
)
CLOUDTRAIL_S3 = (
    "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html"
)
LOGS_KMS = "https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html"
EVENTS_KMS = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-key-policy.html"
EVENTS_ARCHIVE_KMS = "https://docs.aws.amazon.com/eventbridge/latest/userguide/encryption-archives.html"
EVENTS_BUS_DLQ = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-event-bus-dlq.html"
EVENTS_RULE_DLQ = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html"
SQS_KMS = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html"
S3_ACCESS_LOGS = (
    "https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html"
    "#grant-log-delivery-permissions-general"
)
SECRETS_KMS = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html"
SECRETS_IAM = "https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_iam-policies.html"

trail_context = {"aws:SourceArn": TRAIL, "aws:SourceAccount": ACCOUNT}
bus_context = {
    "aws:SourceArn": BUS,
    "aws:SourceAccount": ACCOUNT,
    "kms:EncryptionContext:aws:events:event-bus:arn": BUS,
}

CONTRACTS: tuple[Contract, ...] = (
    # -- CloudTrail and the key -------------------------------------------------------------
    Contract(
        "cloudtrail-encrypts-log-files",
        CLOUDTRAIL_KMS,
        KEY,
        "kms:GenerateDataKey",
        KEY,
        CLOUDTRAIL,
        {**trail_context, "kms:EncryptionContext:aws:cloudtrail:arn": TRAIL},
    ),
    # CreateTrail describes the key: no encryption context on that call.
    Contract("cloudtrail-describes-the-key", CLOUDTRAIL_KMS_DEFAULT, KEY, "kms:DescribeKey", KEY, CLOUDTRAIL),
    # The audit bucket uses an S3 Bucket Key: CloudTrail needs Decrypt to create the trail.
    Contract(
        "cloudtrail-decrypts-with-bucket-key",
        CLOUDTRAIL_KMS,
        KEY,
        "kms:Decrypt",
        KEY,
        CLOUDTRAIL,
        trail_context,
    ),
    Contract(
        "cloudtrail-for-another-trail-is-refused",
        CLOUDTRAIL_KMS,
        KEY,
        "kms:GenerateDataKey",
        KEY,
        CLOUDTRAIL,
        {
            "aws:SourceArn": OTHER_TRAIL,
            "aws:SourceAccount": ACCOUNT,
            "kms:EncryptionContext:aws:cloudtrail:arn": OTHER_TRAIL,
        },
        allowed=False,
    ),
    # -- CloudTrail and the audit bucket ----------------------------------------------------
    Contract(
        "cloudtrail-checks-the-bucket-acl",
        CLOUDTRAIL_S3,
        f"bucket:{AUDIT_BUCKET}",
        "s3:GetBucketAcl",
        f"arn:aws:s3:::{AUDIT_BUCKET}",
        CLOUDTRAIL,
        {**trail_context, "aws:SecureTransport": "true"},
    ),
    Contract(
        "cloudtrail-writes-log-files",
        CLOUDTRAIL_S3,
        f"bucket:{AUDIT_BUCKET}",
        "s3:PutObject",
        f"arn:aws:s3:::{AUDIT_BUCKET}/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/12/01/log.json.gz",
        CLOUDTRAIL,
        {**trail_context, "s3:x-amz-acl": "bucket-owner-full-control", "aws:SecureTransport": "true"},
    ),
    Contract(
        "cloudtrail-writing-for-another-trail-is-refused",
        CLOUDTRAIL_S3,
        f"bucket:{AUDIT_BUCKET}",
        "s3:PutObject",
        f"arn:aws:s3:::{AUDIT_BUCKET}/AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/12/01/log.json.gz",
        CLOUDTRAIL,
        {
            "aws:SourceArn": OTHER_TRAIL,
            "aws:SourceAccount": ACCOUNT,
            "s3:x-amz-acl": "bucket-owner-full-control",
            "aws:SecureTransport": "true",
        },
        allowed=False,
    ),
    # -- CloudWatch Logs and the key --------------------------------------------------------
    *(
        Contract(
            f"logs-{action.removeprefix('kms:').lower()}-for-our-log-groups",
            LOGS_KMS,
            KEY,
            action,
            KEY,
            LOGS,
            {"kms:EncryptionContext:aws:logs:arn": LOG_GROUP},
        )
        for action in (
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncryptFrom",
            "kms:GenerateDataKey",
            "kms:DescribeKey",
        )
    ),
    Contract(
        "logs-for-another-accounts-log-group-is-refused",
        LOGS_KMS,
        KEY,
        "kms:GenerateDataKey",
        KEY,
        LOGS,
        {"kms:EncryptionContext:aws:logs:arn": LOG_GROUP.replace(ACCOUNT, OTHER_ACCOUNT)},
        allowed=False,
    ),
    # -- EventBridge bus, archive and the key -----------------------------------------------
    Contract("events-encrypts-bus-events", EVENTS_KMS, KEY, "kms:GenerateDataKey", KEY, EVENTS, bus_context),
    Contract("events-decrypts-bus-events", EVENTS_KMS, KEY, "kms:Decrypt", KEY, EVENTS, bus_context),
    Contract("events-describes-the-key", EVENTS_KMS, KEY, "kms:DescribeKey", KEY, EVENTS),
    Contract(
        "events-decrypts-for-a-rule-of-the-bus",
        EVENTS_KMS,
        KEY,
        "kms:Decrypt",
        KEY,
        EVENTS,
        {**bus_context, "aws:SourceArn": INTAKE_RULE},
    ),
    *(
        Contract(
            f"events-archive-{action.removeprefix('kms:').lower()}",
            EVENTS_ARCHIVE_KMS,
            KEY,
            action,
            KEY,
            EVENTS,
            {**bus_context, "aws:SourceArn": ARCHIVE},
        )
        for action in ("kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo")
    ),
    Contract(
        "events-for-another-bus-is-refused",
        EVENTS_KMS,
        KEY,
        "kms:Decrypt",
        KEY,
        EVENTS,
        {
            "aws:SourceArn": OTHER_BUS,
            "aws:SourceAccount": ACCOUNT,
            "kms:EncryptionContext:aws:events:event-bus:arn": OTHER_BUS,
        },
        allowed=False,
    ),
    Contract(
        "events-for-another-account-is-refused",
        EVENTS_KMS,
        KEY,
        "kms:GenerateDataKey",
        KEY,
        EVENTS,
        {**bus_context, "aws:SourceAccount": OTHER_ACCOUNT},
        allowed=False,
    ),
    # -- EventBridge and the encrypted dead-letter queue ------------------------------------
    *(
        Contract(
            f"events-{action.removeprefix('kms:').lower()}-for-the-dlq-from-{source}",
            SQS_KMS,
            KEY,
            action,
            KEY,
            EVENTS,
            {"aws:SourceArn": arn, "aws:SourceAccount": ACCOUNT},
        )
        for action in ("kms:GenerateDataKey", "kms:Decrypt")
        for source, arn in (("bus", BUS), ("rule", INTAKE_RULE))
    ),
    Contract(
        "another-bus-using-the-key-for-a-dlq-is-refused",
        SQS_KMS,
        KEY,
        "kms:GenerateDataKey",
        KEY,
        EVENTS,
        {"aws:SourceArn": OTHER_BUS, "aws:SourceAccount": ACCOUNT},
        allowed=False,
    ),
    Contract(
        "the-bus-sends-dead-letters",
        EVENTS_BUS_DLQ,
        f"queue:{DLQ}",
        "sqs:SendMessage",
        DLQ_ARN,
        EVENTS,
        {"aws:SourceArn": BUS, "aws:SecureTransport": "true"},
    ),
    Contract(
        "a-rule-target-sends-dead-letters",
        EVENTS_RULE_DLQ,
        f"queue:{DLQ}",
        "sqs:SendMessage",
        DLQ_ARN,
        EVENTS,
        {"aws:SourceArn": INTAKE_RULE, "aws:SecureTransport": "true"},
    ),
    Contract(
        "another-bus-sending-dead-letters-is-refused",
        EVENTS_RULE_DLQ,
        f"queue:{DLQ}",
        "sqs:SendMessage",
        DLQ_ARN,
        EVENTS,
        {"aws:SourceArn": OTHER_BUS, "aws:SecureTransport": "true"},
        allowed=False,
    ),
    # -- S3 server access logging -----------------------------------------------------------
    Contract(
        "s3-delivers-access-logs-of-the-documents-bucket",
        S3_ACCESS_LOGS,
        "bucket:ACCESS_LOGS",
        "s3:PutObject",
        "ACCESS_LOGS/documents/2026-12-01-00-00-00-ABCDEF",
        S3_LOGGING,
        {
            "aws:SourceArn": f"arn:aws:s3:::{DOCUMENTS_BUCKET}",
            "aws:SourceAccount": ACCOUNT,
            "aws:SecureTransport": "true",
        },
    ),
    Contract(
        "s3-access-logs-of-another-bucket-are-refused",
        S3_ACCESS_LOGS,
        "bucket:ACCESS_LOGS",
        "s3:PutObject",
        "ACCESS_LOGS/documents/2026-12-01-00-00-00-ABCDEF",
        S3_LOGGING,
        {
            "aws:SourceArn": "arn:aws:s3:::someone-elses-bucket",
            "aws:SourceAccount": OTHER_ACCOUNT,
            "aws:SecureTransport": "true",
        },
        allowed=False,
    ),
    # -- Secrets Manager and the key ---------------------------------------------------------
    # Secrets Manager calls KMS as the caller, through the service: the key policy must let
    # the account's IAM policies decide (the root statement), a role's policy then allows it.
    Contract(
        "secrets-manager-decrypts-for-this-accounts-principals",
        SECRETS_KMS,
        KEY,
        "kms:Decrypt",
        KEY,
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/{STAGE}-webhook-ingest"},
        {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com", "aws:PrincipalAccount": ACCOUNT},
    ),
    Contract(
        "ingest-reads-its-signing-secret",
        SECRETS_IAM,
        f"role:{STAGE}-webhook-ingest",
        "secretsmanager:GetSecretValue",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:aios/webhooks/stripe-AbC123",
    ),
    Contract(
        "ingest-decrypts-its-secret-through-secrets-manager",
        SECRETS_KMS,
        f"role:{STAGE}-webhook-ingest",
        "kms:Decrypt",
        KEY,
        context={"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"},
    ),
    Contract(
        "ingest-reading-a-connector-secret-is-refused",
        SECRETS_IAM,
        f"role:{STAGE}-webhook-ingest",
        "secretsmanager:GetSecretValue",
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:aios/connectors/payments-AbC123",
        allowed=False,
    ),
)


@pytest.fixture(scope="module")
def deployed(synthesized: Synthesized) -> DeployedPolicies:
    return DeployedPolicies(synthesized.templates())


def _concrete(contract: Contract, deployed: DeployedPolicies) -> Contract:
    """The contract with the placeholders for the key's ARN and the access-log bucket filled in."""
    access_logs = deployed.bucket_name("BucketsAccessLogs")
    replacements = {KEY: deployed.key_arn(), "ACCESS_LOGS": f"arn:aws:s3:::{access_logs}"}
    resource = contract.resource
    for placeholder, value in replacements.items():
        if resource == placeholder or resource.startswith(f"{placeholder}/"):
            resource = value + resource.removeprefix(placeholder)
    policy = contract.policy.replace("ACCESS_LOGS", access_logs)
    return Contract(**{**contract.__dict__, "resource": resource, "policy": policy})


@pytest.mark.parametrize("contract", CONTRACTS, ids=[c.id for c in CONTRACTS])
def test_service_contract(contract: Contract, deployed: DeployedPolicies) -> None:
    concrete = _concrete(contract, deployed)
    decision = deployed.decide(concrete)
    assert (decision == "Allow") is contract.allowed, f"{contract.id}: {decision} ({contract.doc})"


def test_every_service_statement_in_the_key_policy_is_scoped(deployed: DeployedPolicies) -> None:
    # Confused deputy (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html):
    # a service principal's data-key actions carry a source or encryption-context condition;
    # DescribeKey (metadata only) is the one action the services document unconditioned.
    for statement in deployed.key_policy():
        if "Service" not in statement.get("Principal", {}):
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if actions == ["kms:DescribeKey"]:
            continue
        keys = {key.lower() for block in statement.get("Condition", {}).values() for key in block}
        assert keys & {"aws:sourcearn", "aws:sourceaccount"} or any(
            key.startswith("kms:encryptioncontext:") for key in keys
        ), statement


def test_bus_sends_its_own_dead_letters_to_the_platform_queue(synthesized: Synthesized) -> None:
    # EventBridge recommends a bus-level DLQ for a bus under a customer-managed key (EVENTS_BUS_DLQ).
    [bus] = synthesized.platform.find_resources("AWS::Events::EventBus").values()
    [(queue_id, _)] = [
        (logical_id, queue)
        for logical_id, queue in synthesized.platform.find_resources("AWS::SQS::Queue").items()
        if queue["Properties"].get("QueueName") == DLQ
    ]
    assert bus["Properties"]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [queue_id, "Arn"]}}
    assert "KmsKeyIdentifier" in bus["Properties"]


def test_access_log_bucket_is_not_kms_encrypted(synthesized: Synthesized) -> None:
    # S3 delivers server access logs only to a target bucket with SSE-S3 (S3_ACCESS_LOGS).
    buckets = synthesized.data.find_resources("AWS::S3::Bucket")
    [access_logs] = [b for logical_id, b in buckets.items() if logical_id.startswith("BucketsAccessLogs")]
    [rule] = access_logs["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
