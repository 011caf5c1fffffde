"""The aios event bus, its archive, and the dead-letter queue every target uses."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.platform.spec import EventBusSpec
from infrastructure.settings import DeploymentSettings


def bus_name(spec: EventBusSpec, settings: DeploymentSettings) -> str:
    return settings.name(spec.name)


def archive_name(spec: EventBusSpec, settings: DeploymentSettings) -> str:
    return settings.name(spec.archive)


def dead_letter_queue_name(settings: DeploymentSettings) -> str:
    return settings.name("dead-letters")


class PlatformBus(Construct):
    """A custom bus with an archive of every event and one KMS-encrypted DLQ.

    Nothing accepted is dropped: an event a target cannot take after its retries lands in
    ``dead_letter_queue`` (kept 14 days, the SQS maximum), and the archive can replay any
    time window (see README, "Replaying events"). The same queue is the bus's own
    dead-letter queue, which AWS recommends for a bus under a customer-managed key: events
    the bus cannot encrypt or decrypt (key disabled, policy changed) land there too
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-encryption-event-bus-dlq.html).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        spec: EventBusSpec,
        key: kms.IKey,
        settings: DeploymentSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            queue_name=dead_letter_queue_name(settings),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.bus = events.EventBus(
            self,
            "Bus",
            event_bus_name=bus_name(spec, settings),
            dead_letter_queue=self.dead_letter_queue,
        )
        # The bus's own DLQ needs a queue policy admitting the bus (rule targets get theirs
        # from CDK, each scoped to its rule): https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html
        self.dead_letter_queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBusDeadLetters",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.dead_letter_queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.bus.event_bus_arn}},
            )
        )
        self.archive = events.Archive(
            self,
            "Archive",
            source_event_bus=self.bus,
            archive_name=archive_name(spec, settings),
            description="Every event on the aios bus, for replay",
            event_pattern=events.EventPattern(
                account=spec.archive_pattern(Stack.of(self).account)["account"]
            ),
            retention=Duration.days(spec.archive_retention_days),
        )
        # The key is set on the L1 resources: the L2 ``kms_key`` options add key-policy
        # statements naming the bus, which would make the data stack (the key's) depend on
        # this one. The key policy admits EventBridge for this bus by name instead (PlatformKey).
        bus_resource = self.bus.node.default_child
        assert isinstance(bus_resource, events.CfnEventBus)
        bus_resource.kms_key_identifier = key.key_arn
        archive_resource = self.archive.node.default_child
        assert isinstance(archive_resource, events.CfnArchive)
        archive_resource.kms_key_identifier = key.key_arn
