"""Renders the platform description onto the embedded AWS (moto): the local twin of the CDK app.

Every part is created from ``Platform`` alone: tables (with their indexes and TTL), buckets,
the bus, each source's signing secret, each function, each workflow's state machine (its
ASL with ``${Name}`` substitutions resolved to local names and ARNs) and trigger rule
(the same event pattern JSON as CDK, targeting the state machine with the bus's
dead-letter queue). ``resolve_attribute`` is the local twin of
``PlatformStack.resolve_attribute``; nothing else resolves a ``ResourceAttribute``.
"""

from __future__ import annotations

import io
import json
import re
import secrets as secrets_module
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aios.fingerprints import fingerprint_key_secret_name
from aios.secrets import WebhookSecret, connector_secret_name, webhook_secret_name
from infrastructure.platform.models import artifact_version
from infrastructure.platform.spec import (
    FAILURE_MAX_EVENT_AGE_SECONDS,
    FAILURE_RETRY_ATTEMPTS,
    EventBusSpec,
    FunctionSpec,
    KeyAttribute,
    Platform,
    ResourceAttribute,
    TableSpec,
    WorkflowSpec,
)

STAGE = "local"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
SECRETS_PREFIX = "aios"
_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
#: As CDK's constructs: every function and workflow has a ``live`` alias over its versions.
LIVE_ALIAS = "live"
FIRST_VERSION = "1"


@dataclass(frozen=True)
class LocalNames:
    """Physical names and ARNs of the local deployment (``aios-local-<part>``)."""

    stage: str = STAGE
    account: str = ACCOUNT_ID
    region: str = REGION
    secrets_prefix: str = SECRETS_PREFIX

    def name(self, part: str) -> str:
        return f"aios-{self.stage}-{part}"

    def table(self, table_id: str) -> str:
        return self.name(table_id)

    def table_arn(self, table_id: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.table(table_id)}"

    def bucket(self, bucket_id: str) -> str:
        return f"{self.name(bucket_id)}-{self.account}-{self.region}"

    def bus(self, bus_name: str) -> str:
        return self.name(bus_name)

    def bus_arn(self, bus_name: str) -> str:
        return f"arn:aws:events:{self.region}:{self.account}:event-bus/{self.bus(bus_name)}"

    def function(self, function_name: str) -> str:
        return self.name(function_name)

    def function_arn(self, function_name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function(function_name)}"

    def function_version_arn(self, function_name: str, version: str = FIRST_VERSION) -> str:
        """What a workflow calls (CDK: the version the deploy published; here the first)."""
        return f"{self.function_arn(function_name)}:{version}"

    def state_machine_alias_arn(self, workflow: str) -> str:
        """What the workflow's rule starts (CDK: the ``live`` alias)."""
        return f"{self.state_machine_arn(workflow)}:{LIVE_ALIAS}"

    def state_machine(self, workflow: str) -> str:
        return self.name(workflow)

    def state_machine_arn(self, workflow: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.state_machine(workflow)}"

    def workflow_log_group(self, workflow: str) -> str:
        """Where the workflow's execution events go (CDK: ``Workflow``'s vended-logs group)."""
        return f"/aws/vendedlogs/states/{self.state_machine(workflow)}"

    def workflow_log_group_arn(self, workflow: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.workflow_log_group(workflow)}:*"

    def schedule_rule(self, function: str) -> str:
        return self.name(f"{function}-schedule")

    def rule(self, workflow: str) -> str:
        return self.name(f"{workflow}-trigger")

    def failure_rule(self, workflow: str) -> str:
        """The workflow's ``on_failure`` rule, on the default bus (CDK: ``record_failures_with``)."""
        return self.name(f"{workflow}-on-failure")

    def archive(self, bus: EventBusSpec) -> str:
        return self.name(bus.archive)

    @property
    def dead_letter_queue(self) -> str:
        return self.name("dead-letters")

    def queue_url(self, queue: str) -> str:
        """The SQS queue URL as AWS spells it; moto finds the queue by its last segment."""
        return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{queue}"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:role/aios-local"


def resolve_attribute(  # noqa: PLR0911 - a kind each
    reference: ResourceAttribute, names: LocalNames, platform: Platform | None = None
) -> str:
    """The local value of a description reference (CDK's is ``PlatformStack.resolve_attribute``);
    a model's needs the ``platform`` that declares it."""
    if reference.kind == "table":
        return names.table(reference.id) if reference.attribute == "name" else names.table_arn(reference.id)
    if reference.kind == "bucket":
        return names.bucket(reference.id)
    if reference.kind == "bus":
        return names.bus(reference.id) if reference.attribute == "name" else names.bus_arn(reference.id)
    if reference.kind == "function":
        return names.function_version_arn(reference.id)
    if reference.kind == "model":
        if platform is None:
            raise ValueError(f"cannot resolve {reference} without the platform that declares the model")
        model = platform.model(reference.id)
        return artifact_version(model) if reference.attribute == "version" else names.name(model.name)
    if reference.kind == "queue":
        return names.queue_url(names.dead_letter_queue)
    if reference.kind == "literal":
        return reference.id
    raise ValueError(f"cannot resolve {reference}")


def substitute(definition: str, values: Mapping[str, str]) -> str:
    """``${Name}`` replaced as CloudFormation's ``DefinitionSubstitutions`` does it."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return _SUBSTITUTION.sub(replace, definition)


def definition(platform: Platform, workflow: WorkflowSpec, names: LocalNames) -> str:
    """The state machine definition deployed locally: the ASL with substitutions resolved."""
    values = {
        name: resolve_attribute(reference, names)
        for name, reference in platform.substitutions(workflow).items()
    }
    return substitute(workflow.read_definition(), values)


def function_environment(platform: Platform, spec: FunctionSpec, names: LocalNames) -> dict[str, str]:
    """The environment CDK gives the function (``PlatformFunction``), with local values."""
    return platform.runtime_environment(
        spec,
        stage=names.stage,
        secrets_prefix=names.secrets_prefix,
        resolve=lambda reference: resolve_attribute(reference, names, platform),
    )


@dataclass
class Deployment:
    """What ``deploy`` created: the names tests and the CLI need."""

    platform: Platform
    names: LocalNames
    endpoint: str
    secrets: dict[str, str] = field(default_factory=dict)
    #: Connector name -> the JSON of its secret (``ConnectorSecret``), as created.
    connector_secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letter_queue_url: str = ""

    def state_machine_arn(self, workflow: str) -> str:
        return self.names.state_machine_arn(workflow)


def _dummy_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "# the local mode runs the real handler in-process\n")
    return buffer.getvalue()


def _key_schema(partition: KeyAttribute, sort: KeyAttribute | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition.name, "KeyType": "HASH"}]
    if sort is not None:
        schema.append({"AttributeName": sort.name, "KeyType": "RANGE"})
    return schema


def _create_table(dynamodb: Any, table: TableSpec, names: LocalNames) -> None:
    keys = [table.partition_key, *([table.sort_key] if table.sort_key else [])]
    for index in table.indexes:
        keys += [index.partition_key, *([index.sort_key] if index.sort_key else [])]
    attributes = {k.name: k.type for k in keys}
    request: dict[str, Any] = {
        "TableName": names.table(table.id),
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": _key_schema(table.partition_key, table.sort_key),
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in attributes.items()],
    }
    if table.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(index.partition_key, index.sort_key),
                "Projection": {"ProjectionType": index.projection},
            }
            for index in table.indexes
        ]
    dynamodb.create_table(**request)
    if table.ttl_attribute:
        dynamodb.update_time_to_live(
            TableName=names.table(table.id),
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
        )


def _create_connector_secrets(
    aws: Callable[[str], Any],
    platform: Platform,
    names: LocalNames,
    values: Mapping[str, Mapping[str, Any]],
    deployment: Deployment,
) -> None:
    """One secret per connector a function reads; the email sender's domain verified in SES."""
    for connector in dict.fromkeys(spec.credentials for spec in platform.functions if spec.credentials):
        value = values.get(connector)
        if value is None:
            continue
        aws("secretsmanager").create_secret(
            Name=connector_secret_name(connector, names.secrets_prefix),
            Description=f"aios: credentials of connector {connector} (local sandbox)",
            SecretString=json.dumps(value),
        )
        deployment.connector_secrets[connector] = dict(value)
        settings = value.get("settings")
        sender = settings.get("from_address") if isinstance(settings, dict) else None
        if isinstance(sender, str) and "@" in sender:  # SES refuses unverified senders
            aws("sesv2").create_email_identity(EmailIdentity=sender.rpartition("@")[2])


def deploy(
    platform: Platform,
    endpoint: str,
    *,
    secrets: Mapping[str, str],
    names: LocalNames | None = None,
    connector_secrets: Mapping[str, Mapping[str, Any]] | None = None,
) -> Deployment:
    """Create every resource of ``platform`` on the AWS endpoint (moto) at ``endpoint``.

    ``secrets`` holds each source's current signing secret (source name -> value).
    ``connector_secrets`` holds the credentials (``ConnectorSecret`` JSON) of each connector
    a function reads (``FunctionSpec.credentials``): the local mode points them at the
    sandbox providers. A connector without one gets no secret (its calls fail as
    ``Connector.AuthFailed``, as on an account where nobody created it).
    """
    import boto3  # noqa: PLC0415 - kept out of module import for the parity test

    names = names or LocalNames()
    session = boto3.Session(region_name=names.region)

    def aws(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]

    dynamodb, s3, events, sqs = aws("dynamodb"), aws("s3"), aws("events"), aws("sqs")
    secretsmanager, lambda_, sfn = aws("secretsmanager"), aws("lambda"), aws("stepfunctions")
    deployment = Deployment(platform=platform, names=names, endpoint=endpoint)
    # One role for every function, state machine and target: moto checks it exists, not what it grants.
    aws("iam").create_role(
        RoleName=names.role_arn.rpartition("/")[2],
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {
                            "Service": [
                                "lambda.amazonaws.com",
                                "states.amazonaws.com",
                                "events.amazonaws.com",
                            ]
                        },
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )

    for table in platform.tables:
        _create_table(dynamodb, table, names)

    for bucket in platform.buckets:
        s3.create_bucket(Bucket=names.bucket(bucket.id))

    events.create_event_bus(Name=names.bus(platform.bus.name))
    # As CDK's PlatformBus: every event of the account archived (replayed by ``aios resume``).
    events.create_archive(
        ArchiveName=names.archive(platform.bus),
        EventSourceArn=names.bus_arn(platform.bus.name),
        EventPattern=json.dumps(platform.bus.archive_pattern(names.account)),
        RetentionDays=platform.bus.archive_retention_days,
    )
    deployment.dead_letter_queue_url = sqs.create_queue(
        QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=deployment.dead_letter_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]

    for source in platform.sources:
        value = secrets[source.name]
        secretsmanager.create_secret(
            Name=webhook_secret_name(source.name, names.secrets_prefix),
            Description=f"aios: signing secret of webhook source {source.name} ({source.scheme})",
            SecretString=WebhookSecret.model_validate({"current": value}).to_json(),
        )
        deployment.secrets[source.name] = value

    _create_connector_secrets(aws, platform, names, connector_secrets or {}, deployment)
    if any(spec.fingerprint_key for spec in platform.functions):
        # As the deploy does (constructs/secrets.py): a generated key, readable by the
        # functions that reference bank accounts (aios.fingerprints).
        secretsmanager.create_secret(
            Name=fingerprint_key_secret_name(names.secrets_prefix),
            Description="aios: HMAC key of bank-account references (local)",
            SecretString=json.dumps({"current": secrets_module.token_urlsafe(36)}),
        )

    code = _dummy_zip()
    for spec in platform.functions:
        lambda_.create_function(
            FunctionName=names.function(spec.name),
            Description=spec.description,
            Runtime="python3.14",
            Architectures=["arm64"],
            Handler=spec.handler,
            Role=names.role_arn,
            Code={"ZipFile": code},
            MemorySize=spec.memory_mb,
            Timeout=spec.timeout_seconds,
            Environment={"Variables": function_environment(platform, spec, names)},
            DeadLetterConfig={"TargetArn": dlq_arn},
        )
        # As CDK's PlatformFunction: a published version and the ``live`` alias on it.
        version = lambda_.publish_version(FunctionName=names.function(spec.name))["Version"]
        assert version == FIRST_VERSION, f"{spec.name}: first version is {version}"
        lambda_.create_alias(FunctionName=names.function(spec.name), Name=LIVE_ALIAS, FunctionVersion=version)
        if spec.schedule:
            # As CDK's PlatformFunction: a rule on the default bus targeting the alias. moto
            # runs no schedules: local/schedules.py does, and the events bridge never lets
            # a bus event match it.
            events.put_rule(
                Name=names.schedule_rule(spec.name),
                Description=f"Runs {spec.name} on {spec.schedule}",
                ScheduleExpression=spec.schedule,
                State="ENABLED",
            )
            events.put_targets(
                Rule=names.schedule_rule(spec.name),
                Targets=[{"Id": "Target0", "Arn": f"{names.function_arn(spec.name)}:{LIVE_ALIAS}"}],
            )

    logs = aws("logs")
    for workflow in platform.workflows:
        # As CDK's Workflow: level ALL, without execution data, to its own log group. The
        # stepfunctions bridge writes the events; for Express it is the only way to see them.
        logs.create_log_group(logGroupName=names.workflow_log_group(workflow.name))
        # As CDK's Workflow: version 1 published, and the ``live`` alias routing all to it.
        created = sfn.create_state_machine(
            publish=True,
            name=names.state_machine(workflow.name),
            definition=definition(platform, workflow, names),
            roleArn=names.role_arn,
            type=workflow.type,
            loggingConfiguration={
                "level": "ALL",
                "includeExecutionData": False,
                "destinations": [
                    {"cloudWatchLogsLogGroup": {"logGroupArn": names.workflow_log_group_arn(workflow.name)}}
                ],
            },
        )
        sfn.create_state_machine_alias(
            name=LIVE_ALIAS,
            description=f"aios workflow {workflow.name}: what rules start",
            routingConfiguration=[
                {"stateMachineVersionArn": created["stateMachineVersionArn"], "weight": 100}
            ],
        )
        _create_failure_rule(events, platform, workflow, names, dlq_arn)
        if workflow.trigger is None:
            continue
        events.put_rule(
            Name=names.rule(workflow.name),
            EventBusName=names.bus(platform.bus.name),
            Description=workflow.trigger.description,
            EventPattern=platform.trigger_pattern_json(workflow),
            State="ENABLED",
        )
        events.put_targets(
            Rule=names.rule(workflow.name),
            EventBusName=names.bus(platform.bus.name),
            Targets=[
                {
                    "Id": "Target0",
                    "Arn": names.state_machine_alias_arn(workflow.name),
                    "RoleArn": names.role_arn,
                    "DeadLetterConfig": {"Arn": dlq_arn},
                    "RetryPolicy": {
                        "MaximumRetryAttempts": workflow.trigger.retry_attempts,
                        "MaximumEventAgeInSeconds": workflow.trigger.max_event_age_seconds,
                    },
                }
            ],
        )
    return deployment


def _create_failure_rule(
    events: Any, platform: Platform, workflow: WorkflowSpec, names: LocalNames, dlq_arn: str
) -> None:
    if workflow.on_failure is None:
        return
    # As CDK: Step Functions' status changes reach the default bus; the rule hands
    # an unsuccessful execution to the function's ``live`` alias.
    events.put_rule(
        Name=names.failure_rule(workflow.name),
        Description=f"Unsuccessful executions of {workflow.name}: their closing lineage row.",
        EventPattern=json.dumps(
            platform.failure_pattern(names.state_machine_arn(workflow.name)), sort_keys=True
        ),
        State="ENABLED",
    )
    events.put_targets(
        Rule=names.failure_rule(workflow.name),
        Targets=[
            {
                "Id": "Target0",
                "Arn": f"{names.function_arn(workflow.on_failure)}:{LIVE_ALIAS}",
                "DeadLetterConfig": {"Arn": dlq_arn},
                "RetryPolicy": {
                    "MaximumRetryAttempts": FAILURE_RETRY_ATTEMPTS,
                    "MaximumEventAgeInSeconds": FAILURE_MAX_EVENT_AGE_SECONDS,
                },
            }
        ],
    )


def rule_pattern(events_client: Any, names: LocalNames, platform: Platform, workflow: WorkflowSpec) -> str:
    """The event pattern moto holds for a workflow's rule (for the parity test)."""
    rule = events_client.describe_rule(
        Name=names.rule(workflow.name), EventBusName=names.bus(platform.bus.name)
    )
    return str(rule["EventPattern"])


def canonical_json(text: str) -> str:
    return json.dumps(json.loads(text), sort_keys=True)
