"""The operator's verbs of the ``aios`` command, one module per verb group.

- ``lineage``: an item's whole story from the lineage table (``aios lineage KEY``).
- ``approvals``: what waits for whom (``aios approvals pending``).
- ``dlq``: the platform dead-letter queue (``aios dlq list | show | redrive``).
- ``report``: automation, cycle time, outcomes and cost (``aios report``).
- ``replay``: one item again, from its recorded input (``aios replay KEY``).
- ``pause``: the kill switch and the catch-up (``aios pause | resume WORKFLOW``).
- ``redrive``: Step Functions RedriveExecution where it applies (``aios redrive``).

Each verb speaks to AWS (``--stage``: names ``aios-<stage>-<part>`` as DeploymentSettings
gives them) or to the local mode (``--endpoint-url``: stage ``local``) with the same calls,
prints a table, or JSON with ``--json``. Computation and formatting are pure functions over
what the calls return, so unit tests need no AWS.
"""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add every verb group to ``group`` (the ``aios`` command)."""
    from infrastructure.ops import approvals, dlq, lineage, pause, redrive, replay, report  # noqa: PLC0415

    for command in (
        lineage.lineage,
        approvals.approvals,
        dlq.dlq,
        report.report,
        replay.replay,
        redrive.redrive,
        pause.pause,
        pause.resume,
    ):
        group.add_command(command)
    from infrastructure.ops.rollout import rollout  # noqa: PLC0415

    group.add_command(rollout)
