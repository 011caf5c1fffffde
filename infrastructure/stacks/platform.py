"""The running platform: bus, functions, workflows and the HTTP API. Redeployed freely."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, CfnResource, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infrastructure.asl_policy import function_timeouts
from infrastructure.constructs.api import WebhookApi
from infrastructure.constructs.bus import PlatformBus
from infrastructure.constructs.functions import PlatformFunction, SharedLayer
from infrastructure.constructs.monitoring import monitor_platform_stack
from infrastructure.constructs.secrets import PlatformSecrets
from infrastructure.constructs.workflows import Workflow
from infrastructure.nag import acknowledge
from infrastructure.platform.models import artifact_version, endpoint_name
from infrastructure.platform.spec import Access, Platform, ResourceAttribute, camel
from infrastructure.settings import DeploymentSettings
from infrastructure.stacks.data import DataStack
from infrastructure.stacks.references import DataReferences

#: The key actions CDK's ``Table.grant_read_write_data`` adds for a customer-managed key.
_TABLE_KEY_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
)


class PlatformStack(Stack):
    """Renders the platform description's moving parts, wired to the data stack by grants."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: Platform,
        data: DataStack,
        settings: DeploymentSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.platform = platform
        self.settings = settings
        self.data = data
        # Declared before any grant: KMS grants to principals of a stack that depends on the
        # key's stack go to the principal's policy only, not into the key policy (a cycle).
        self.add_stack_dependency(data)
        key = data.key
        self.references = DataReferences(self, "Data", platform=platform, key=key, settings=settings)
        self.bus = PlatformBus(self, "Bus", spec=platform.bus, key=key, settings=settings)
        self.secrets = PlatformSecrets(self, "Secrets", platform=platform, key=key, settings=settings)
        layer = SharedLayer(self, "SharedLayer").layer

        if unknown := set(settings.reserved_concurrency) - {f.name for f in platform.functions}:
            raise ValueError(f"reservedConcurrency names functions the platform lacks: {sorted(unknown)}")
        self.functions: dict[str, PlatformFunction] = {}
        for spec in platform.functions:
            function = PlatformFunction(
                self,
                spec.name,
                spec=spec,
                layer=layer,
                environment=platform.runtime_environment(
                    spec,
                    stage=settings.stage,
                    secrets_prefix=settings.secrets_prefix,
                    resolve=self.resolve_attribute,
                ),
                key=key,
                dead_letter_queue=self.bus.dead_letter_queue,
                settings=settings,
            )
            self._grant_function(function)
            self.functions[spec.name] = function

        self.workflows: dict[str, Workflow] = {}
        for workflow_spec in platform.workflows:
            workflow = Workflow(
                self,
                workflow_spec.name,
                spec=workflow_spec,
                substitutions={
                    name: self.resolve_attribute(reference)
                    for name, reference in platform.substitutions(workflow_spec).items()
                },
                key=key,
                settings=settings,
                function_timeouts=function_timeouts(platform, workflow_spec),
            )
            self._grant_workflow(workflow)
            workflow.start_on(
                bus=self.bus.bus, dead_letter_queue=self.bus.dead_letter_queue, settings=settings
            )
            if workflow_spec.on_failure is not None:
                workflow.record_failures_with(
                    self.functions[workflow_spec.on_failure].alias,
                    pattern=platform.failure_pattern(workflow.state_machine.state_machine_arn),
                    dead_letter_queue=self.bus.dead_letter_queue,
                    settings=settings,
                )
            self.workflows[workflow_spec.name] = workflow

        self.api = WebhookApi(
            self,
            "HttpApi",
            platform=platform,
            # The ``live`` alias, never $LATEST: a route serves the code of the latest deploy.
            functions={name: function.alias for name, function in self.functions.items()},
            key=key,
            settings=settings,
        )
        # What ``aios smoke --stage`` reads to find the deployment (infrastructure/smoke.py).
        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the aios HTTP API")
        CfnOutput(self, "EventBusName", value=self.bus.bus.event_bus_name)
        # Dashboards, SLO alarms and the alarm topic, from the same description.
        self.monitoring = monitor_platform_stack(self)
        for workflow_name, workflow in self.workflows.items():
            # A rollout of the workflow's alias rolls back on the workflow's own SLO alarms.
            workflow.roll_back_on(self.monitoring.workflow_alarms(workflow_name))
        CfnOutput(
            self,
            "DeadLetterQueueUrl",
            value=self.bus.dead_letter_queue.queue_url,
            description="Dead letters of the bus and of every rule target",
        )
        for table_id, table in self.references.tables.items():
            CfnOutput(self, f"{camel(table_id)}TableName", value=table.table_name)
        for workflow_name, workflow in self.workflows.items():
            CfnOutput(
                self,
                f"{camel(workflow_name)}StateMachineArn",
                value=workflow.state_machine.state_machine_arn,
            )
            CfnOutput(self, f"{camel(workflow_name)}StateMachineAliasArn", value=workflow.alias_arn)

    def resolve_attribute(self, reference: ResourceAttribute) -> str:
        """The CloudFormation value of a description reference (the local mode has its own)."""
        by_name = reference.attribute in ("name", "value")
        resolvers: dict[str, Callable[[], str]] = {
            "table": lambda: (
                self.references.tables[reference.id].table_name
                if by_name
                else self.references.tables[reference.id].table_arn
            ),
            "bucket": lambda: self.references.buckets[reference.id].bucket_name,
            "bus": lambda: self.bus.bus.event_bus_name if by_name else self.bus.bus.event_bus_arn,
            # The version this deploy published: a state machine version calls the code it
            # was deployed with (constructs/workflows.py).
            "function": lambda: self.functions[reference.id].version.function_arn,
            "model": lambda: self._model_attribute(reference),
            "queue": lambda: self.bus.dead_letter_queue.queue_url,
            "literal": lambda: reference.id,
        }
        return resolvers[reference.kind]()

    def _model_attribute(self, reference: ResourceAttribute) -> str:
        """A declared model's endpoint name, or the version of its built artifact."""
        model = self.platform.model(reference.id)
        if reference.attribute == "version":
            return artifact_version(model)
        return endpoint_name(model, self.settings)

    def _grant_tables(
        self, grantee: iam.IGrantable, tables: Mapping[str, Access], *, owner: Construct
    ) -> None:
        for table_id, access in tables.items():
            table = self.references.tables[table_id]
            item_actions = self.platform.table(table_id).item_actions
            if item_actions is not None:
                # Exactly the calls its code makes; the platform key as grant_read_write_data
                # grants it (the table is encrypted with it).
                table.grant(grantee, *item_actions)
                if table.encryption_key is not None:
                    table.encryption_key.grant(grantee, *_TABLE_KEY_ACTIONS)
                continue
            {
                Access.READ: table.grant_read_data,
                Access.WRITE: table.grant_write_data,
                Access.READ_WRITE: table.grant_read_write_data,
            }[access](grantee)
            if self.platform.table(table_id).indexes:
                acknowledge(
                    owner,
                    f"AwsSolutions-IAM5[Resource::{_arn_pattern(table.table_arn, self)}/index/*]",
                    f"{table_id} table grant: its own secondary indexes, no other table",
                )

    def _grant_function(self, function: PlatformFunction) -> None:
        spec = function.spec
        grantee = function.function
        self._grant_tables(grantee, spec.tables, owner=function)
        for bucket_id, access in spec.buckets.items():
            self._grant_bucket(function, bucket_id, access)
        if spec.put_events:
            self.bus.bus.grant_put_events_to(grantee)
        if spec.webhook_secrets:
            self.secrets.grant_read(grantee, [self.secrets.webhooks[name] for name in spec.webhook_secrets])
        if spec.answers_workflows:
            # By name, not by reference: a workflow that invokes this function, and which
            # the function answers, would otherwise make the two depend on each other.
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"],
                    resources=[
                        self.format_arn(
                            service="states",
                            resource="stateMachine",
                            resource_name=self.settings.name(workflow),
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                        for workflow in spec.answers_workflows
                    ],
                )
            )
        if spec.credentials:
            self.secrets.grant_read(grantee, [self.secrets.connectors[spec.credentials]])
        if spec.fingerprint_key:
            assert self.secrets.fingerprint_key is not None
            self.secrets.grant_read(grantee, [self.secrets.fingerprint_key])
        if spec.model:
            # The endpoint of the model the function declares, no other.
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["sagemaker:InvokeEndpoint"],
                    resources=[
                        self.format_arn(
                            service="sagemaker",
                            resource="endpoint",
                            resource_name=endpoint_name(self.platform.model(spec.model), self.settings),
                        )
                    ],
                )
            )
        if spec.send_email:
            # SES v2 SendEmail is authorized against the sender (and, in the sandbox, the
            # recipient) identities and against the configuration set the call names
            # (the connector passes the one its secret's ``configuration_set`` names):
            # https://docs.aws.amazon.com/ses/latest/dg/control-user-access.html
            identities = self.format_arn(service="ses", resource="identity", resource_name="*")
            configuration_sets = self.format_arn(
                service="ses", resource="configuration-set", resource_name="*"
            )
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(actions=["ses:SendEmail"], resources=[identities, configuration_sets])
            )
            acknowledge(
                function,
                f"AwsSolutions-IAM5[Resource::{_arn_pattern(identities, self)}]",
                "SES authorizes a send against both the sender and recipient identities; the "
                "verified sender domains are the operator's, so identities of this account only",
            )
            acknowledge(
                function,
                f"AwsSolutions-IAM5[Resource::{_arn_pattern(configuration_sets, self)}]",
                "the configuration set is the operator's choice (connector secret); configuration "
                "sets of this account only",
            )

    def _grant_bucket(self, function: PlatformFunction, bucket_id: str, access: Access) -> None:
        """Read and/or put objects; never delete (claim-checks are immutable, versioned)."""
        bucket = self.references.buckets[bucket_id]
        reasons = {
            f"AwsSolutions-IAM5[Resource::{_arn_pattern(bucket.bucket_arn, self)}/*]": (
                f"{bucket_id} bucket grant: objects of that one bucket, whose keys are generated at run time"
            )
        }
        if access in (Access.READ, Access.READ_WRITE):
            bucket.grant_read(function.function)
            reasons |= {
                f"AwsSolutions-IAM5[Action::s3:{action}*]": (
                    f"{bucket_id} bucket grant_read: Get/List variants (versions, tags) of that bucket only"
                )
                for action in ("GetObject", "GetBucket", "List")
            }
        if access in (Access.WRITE, Access.READ_WRITE):
            bucket.grant_put(function.function)
            reasons["AwsSolutions-IAM5[Action::s3:Abort*]"] = (
                f"{bucket_id} bucket grant_put: AbortMultipartUpload on that bucket's objects only"
            )
        for rule_id, reason in reasons.items():
            acknowledge(function, rule_id, reason)

    def _grant_workflow(self, workflow: Workflow) -> None:
        spec = workflow.spec
        state_machine = workflow.state_machine
        self._grant_tables(state_machine, spec.tables, owner=workflow)
        for function_name in spec.functions:
            function = self.functions[function_name].function
            function.grant_invoke(state_machine)
            resource = function.node.default_child
            assert isinstance(resource, CfnResource)
            logical_id = self.resolve(self.get_logical_id(resource))
            acknowledge(
                workflow,
                f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>:*]",
                f"grant_invoke on {function_name}: its versions and aliases (ARN:*), no other function",
            )
        if spec.put_events:
            self.bus.bus.grant_put_events_to(state_machine)
        if spec.dead_letters:
            # sqs:SendMessage on the one queue, and the key use its encryption needs.
            self.bus.dead_letter_queue.grant_send_messages(state_machine)


def _arn_pattern(arn: str, stack: Stack) -> str:
    """An ARN as cdk-nag spells it in finding ids (``<AWS::Region>`` for pseudo parameters)."""
    resolved = stack.resolve(arn)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else f"<{part['Ref']}>" for part in parts)
