"""The aios event bus, its archive, and the dead-letter queue every target uses."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infrastructure.platform.model import EventBusSpec
from infrastructure.settings import DeploymentSettings


class PlatformBus(Construct):
    """A custom bus with an archive of every event and one KMS-encrypted DLQ.

    Nothing accepted is dropped: an event a target cannot take after its retries lands in
    ``dead_letter_queue`` (kept 14 days, the SQS maximum), and the archive can replay any
    time window (see README, "Replaying events").
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
            queue_name=settings.name("dead-letters"),
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.bus = events.EventBus(self, "Bus", event_bus_name=settings.name(spec.name))
        self.archive = events.Archive(
            self,
            "Archive",
            source_event_bus=self.bus,
            archive_name=settings.name(f"{spec.name}-archive"),
            description="Every event on the aios bus, for replay",
            event_pattern=events.EventPattern(account=[self.bus.env.account]),
            retention=Duration.days(spec.archive_retention_days),
        )
        # The key is set on the L1 resources: the L2 ``kms_key`` options add key-policy
        # statements naming the bus, which would make the data stack (the key's) depend on
        # this one. The key policy admits EventBridge for this account instead (PlatformKey).
        bus_resource = self.bus.node.default_child
        assert isinstance(bus_resource, events.CfnEventBus)
        bus_resource.kms_key_identifier = key.key_arn
        archive_resource = self.archive.node.default_child
        assert isinstance(archive_resource, events.CfnArchive)
        archive_resource.kms_key_identifier = key.key_arn
