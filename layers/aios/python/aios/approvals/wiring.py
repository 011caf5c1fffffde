"""The approval logic of this process, wired from the settings on first use (cold start)."""

from __future__ import annotations

from functools import cache

from aios.approvals.common import ApprovalConfig
from aios.approvals.interactions import SlackInteractions
from aios.approvals.requests import ApprovalRequests
from aios.approvals.responder import StepFunctionsResponder
from aios.approvals.store import DynamoApprovalStore
from aios.config import settings
from aios.secrets import WebhookSecrets


@cache
def default_store() -> DynamoApprovalStore:
    return DynamoApprovalStore(settings().require("approvals_table"))


@cache
def default_responder() -> StepFunctionsResponder:
    return StepFunctionsResponder()


@cache
def default_requests() -> ApprovalRequests:
    return ApprovalRequests(
        store=default_store(),
        config=ApprovalConfig.from_settings(settings()),
    )


@cache
def default_interactions() -> SlackInteractions:
    return SlackInteractions(
        secrets=WebhookSecrets(prefix=settings().secrets_prefix),
        store=default_store(),
        responder=default_responder(),
    )
