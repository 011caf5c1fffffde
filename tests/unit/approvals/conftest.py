"""Fixtures for the approval unit tests: fakes only, sockets refused, log lines captured."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from aios.approvals.common import ApprovalConfig
from aios.approvals.interactions import SlackInteractions
from aios.approvals.requests import ApprovalRequests
from aios.observability import logger
from tests.unit.approvals.approval_fakes import (
    APPROVER,
    APPROVER_2,
    CHANNEL,
    ESCALATION,
    NOW,
    FakeLineage,
    FakeResponder,
    FakeSlack,
    FakeStore,
)
from tests.unit.webhooks.webhook_fakes import FakeSecrets


class LogLines(logging.Handler):
    """Every log line as Powertools formats it (message and extra keys, JSON)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logger.registered_formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    capture = LogLines()
    stdlib = logging.getLogger(logger.name)
    previous = stdlib.level
    stdlib.addHandler(capture)
    stdlib.setLevel(logging.DEBUG)
    yield capture
    stdlib.removeHandler(capture)
    stdlib.setLevel(previous)


class World:
    """Both approval functions' logic on one set of fakes, at a fixed time."""

    def __init__(self) -> None:
        self.now = float(NOW)
        self.store = FakeStore()
        self.responder = FakeResponder()
        self.slack = FakeSlack()
        self.lineage = FakeLineage()
        self.config = ApprovalConfig(
            channel=CHANNEL, approvers=(APPROVER, APPROVER_2), escalation_approvers=(ESCALATION,)
        )
        self.requests = ApprovalRequests(
            store=self.store,
            config=self.config,
            slack_port=self.slack,
            lineage=self.lineage,
            clock=lambda: self.now,
        )
        self.interactions = SlackInteractions(
            secrets=FakeSecrets(),
            store=self.store,
            responder=self.responder,
            slack_port=self.slack,
            lineage=self.lineage,
            clock=lambda: self.now,
        )


@pytest.fixture
def world() -> World:
    return World()
