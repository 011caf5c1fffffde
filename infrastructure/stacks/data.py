"""Stateful resources: they outlive every deployment of the code that uses them."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from constructs import Construct

from infrastructure.constructs.audit import AuditTrail
from infrastructure.constructs.encryption import PlatformKey
from infrastructure.constructs.storage import Buckets, Tables
from infrastructure.platform.spec import Platform
from infrastructure.settings import DeploymentSettings


class DataStack(Stack):
    """The platform key, tables, buckets and the audit trail."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        platform: Platform,
        settings: DeploymentSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.key = PlatformKey(self, "Encryption", platform=platform, settings=settings).key
        self.tables = Tables(self, "Tables", platform=platform, key=self.key, settings=settings)
        self.buckets = Buckets(self, "Buckets", platform=platform, key=self.key, settings=settings)
        self.audit = AuditTrail(
            self,
            "Audit",
            bucket=self.buckets.audit,
            key=self.key,
            data_event_tables=[self.tables.by_id["lineage"]],
            data_event_buckets=[self.buckets.by_id["documents"]],
            settings=settings,
        )
