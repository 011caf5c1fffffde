"""The operator's recovery verbs end to end in the local mode: ``aios pause | resume`` and
``aios replay``, typed as an operator types them (a subprocess with ``--endpoint-url``).

One ``aios local up`` for the module (the demo platform, as ``test_ops_cli``). The tests run
in order: pause/resume first, so that no earlier delivery lies within the replay window's
edge.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.local.harness import LocalProcess
from tests.e2e.conftest import eventually, start_local
from tests.e2e.test_ops_cli import (
    SLACK_SECRET,
    WORKFLOW,
    add_invoice,
    aios,
    aios_json,
    approval_message,
    finished,
    payments,
    send,
)

PAUSED = [f"INV-86{n:02d}" for n in range(1, 6)]
FAILED, WAITING = "INV-8701", "INV-8702"


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local(
        "infrastructure.demo:DEMO_PLATFORM",
        env={"AIOS_LOCAL_SECRET_SLACK": SLACK_SECRET},
        stop_timeout=30,
    )


def postings_of(local: LocalProcess, invoice_id: str) -> list[dict[str, Any]]:
    return [p for p in local.erp_postings()["postings"] if p["invoice_id"] == invoice_id]


def received(local: LocalProcess, business_key: str) -> bool:
    """Intake recorded the invoice's receipt (it runs whatever accounts payable does)."""
    return any(row.get("workflow") == "intake" for row in local.lineage(business_key))


def test_pause_holds_what_arrives_and_resume_processes_it_exactly_once(local: LocalProcess) -> None:
    # Given the operator paused accounts payable
    paused = aios_json(local, "pause", WORKFLOW)
    assert [rule["state"] for rule in paused["rules"]] == ["DISABLED"]
    assert aios_json(local, "pause", WORKFLOW)["already"] is True  # a second pause keeps the first

    # When five invoices arrive (each accepted: 202)
    for invoice_id in PAUSED:
        add_invoice(local, "INV-2001", invoice_id, f"2{invoice_id[-2:]}.40")
        send(local, invoice_id)
    eventually(lambda: all(received(local, f"erp:{i}") for i in PAUSED), timeout=30)
    time.sleep(2)  # what a running rule would have started by now

    # Then none of them starts accounts payable
    assert all(local.executions_for(WORKFLOW, f"erp:{i}") == [] for i in PAUSED)
    # ... and a replay of one says where it is
    held = aios(local, "replay", f"erp:{PAUSED[0]}", check=False)
    assert held.returncode == 1 and f"aios resume {WORKFLOW}" in held.stderr

    # When the operator resumes it
    started = time.monotonic()
    resumed = aios_json(local, "resume", WORKFLOW)
    resume_seconds = time.monotonic() - started

    # Then it says five, each new, and each of the five is paid exactly once
    assert (resumed["new"], resumed["duplicates"], resumed["replayed"]) == (5, 0, 5), resumed
    assert sorted(e["business_key"] for e in resumed["executions"]) == [f"erp:{i}" for i in PAUSED]
    assert resumed["replay_state"] == "COMPLETED"
    for invoice_id in PAUSED:
        assert finished(local, f"erp:{invoice_id}")["status"] == "SUCCEEDED"
        assert len(local.executions_for(WORKFLOW, f"erp:{invoice_id}")) == 1
        assert len(payments(local, invoice_id)) == 1
    # ... and the rule delivers live again
    assert [rule["state"] for rule in resumed["rules"]] == ["ENABLED"]
    # ... and both actions are in lineage, under the workflow's key
    actions = [
        step["facts"].get("action") for step in aios_json(local, "lineage", f"workflow:{WORKFLOW}")["steps"]
    ]
    assert actions == ["pause", "resume"]
    assert "not paused" in aios(local, "resume", WORKFLOW, check=False).stderr
    print(f"resume of 5 invoices: {resume_seconds:.1f} s")


def test_a_failed_invoice_is_replayed_once_the_fault_is_gone_and_paid_once(local: LocalProcess) -> None:
    # Given an invoice that failed on a permanent ERP error (a fault injected into the connector)
    add_invoice(local, "INV-2001", FAILED, "277.70")
    local.set_faults({"erp-connector": {"error": "Connector.Rejected", "message": "ERP refused the read"}})
    send(local, FAILED)
    failed = finished(local, f"erp:{FAILED}")
    assert failed["status"] == "FAILED" and payments(local, FAILED) == []

    # When the fault is removed and the operator replays it
    local.set_faults({})
    started = time.monotonic()
    result = aios_json(local, "replay", f"erp:{FAILED}", "--wait", "60")
    replay_seconds = time.monotonic() - started

    # Then a new execution ran from the recorded input and paid it, once
    assert result["previous"]["execution"] == failed["executionArn"]
    assert result["previous"]["status"] == "FAILED"
    assert result["claim"] == f"handed over from {failed['executionArn']}"
    assert result["status"] == "SUCCEEDED"
    executions = local.executions_for(WORKFLOW, f"erp:{FAILED}")
    assert executions == [failed["executionArn"], result["execution"]]
    sfn = local.client("stepfunctions")
    assert sfn.describe_execution(executionArn=result["execution"])["input"] == failed["input"]
    assert len(payments(local, FAILED)) == 1
    # ... linked to the failed one in lineage
    story = aios_json(local, "lineage", f"erp:{FAILED}")
    [link] = [s for s in story["steps"] if s["state"] == "Replayed by an operator"]
    assert link["execution"] == result["execution"]
    assert link["facts"]["replay_of"] == failed["executionArn"]
    assert story["outcome"] == "paid"
    assert f"replay_of={failed['executionArn']}" in aios(local, "lineage", f"erp:{FAILED}").stdout
    print(f"replay of a failed invoice to paid: {replay_seconds:.1f} s")


def test_a_paid_invoice_is_not_replayed_without_force_and_never_paid_twice(local: LocalProcess) -> None:
    # Given the invoice paid by the replay above
    key = f"erp:{FAILED}"
    assert len(postings_of(local, FAILED)) == 1

    # When the operator replays it again: refused, it succeeded
    refused = aios(local, "replay", key, check=False)
    assert refused.returncode == 1 and "nothing to re-run" in refused.stderr

    # When they force it
    forced = aios_json(local, "replay", key, "--force", "--wait", "60")

    # Then it ran again, and neither posted nor paid a second time
    assert forced["status"] == "SUCCEEDED"
    assert len(local.executions_for(WORKFLOW, key)) == 3
    assert len(payments(local, FAILED)) == 1
    assert len(postings_of(local, FAILED)) == 1


def test_a_replay_is_refused_while_the_item_still_runs(local: LocalProcess) -> None:
    # Given an invoice above the limit, waiting for an approver
    add_invoice(local, "INV-2003", WAITING, "7260.10")
    send(local, WAITING)
    eventually(lambda: approval_message(local, WAITING), timeout=30)

    # When the operator replays it, it is refused: the execution still runs
    refused = aios(local, "replay", f"erp:{WAITING}", check=False)
    assert refused.returncode == 1 and "still running" in refused.stderr
    assert len(local.executions_for(WORKFLOW, f"erp:{WAITING}")) == 1


OUTAGE = "INV-8801"


def test_an_outage_fails_at_its_step_and_a_redrive_finishes_the_invoice_once(local: LocalProcess) -> None:
    # Given an invoice whose ERP read fails on every retry (an outage, not a refusal)
    add_invoice(local, "INV-2001", OUTAGE, "288.80")
    local.set_faults({"erp-connector": {"error": "Connector.Unavailable", "message": "ERP is down"}})
    send(local, OUTAGE)
    failed = finished(local, f"erp:{OUTAGE}")
    local.set_faults({})
    arn = failed["executionArn"]
    # ... the execution failed at that step: not caught into "Invoice not processed"
    assert (failed["status"], failed["error"]) == ("FAILED", "Connector.Unavailable")
    [would] = aios_json(local, "redrive", arn, "--dry-run")
    assert would["verdict"] == "would-redrive" and would["fail_state"] is None

    # When the operator redrives it, the ERP back
    started = time.monotonic()
    [result] = aios_json(local, "redrive", arn, "--wait", "60")
    redrive_seconds = time.monotonic() - started

    # Then the same execution resumed at the failed step and paid the invoice, once
    assert (result["verdict"], result["status"]) == ("redriven", "SUCCEEDED"), result
    assert local.executions_for(WORKFLOW, f"erp:{OUTAGE}") == [arn]
    history = local.history(arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    assert entered.count("Claim the invoice") == 1  # succeeded before: not run again
    assert entered.count("Fetch the invoice from the ERP") == 2
    assert "ExecutionRedriven" in [e["type"] for e in history]
    assert len(payments(local, OUTAGE)) == 1
    # ... recorded in the invoice's lineage
    [row] = [r for r in local.lineage(f"erp:{OUTAGE}") if r["state"] == "Redriven by an operator"]
    assert (row["pk"], row["action"], row["redrive_count"]) == (arn, "redrive", "1")
    assert row["workflow"] == WORKFLOW
    # ... and a second redrive has nothing to do
    [again] = aios_json(local, "redrive", arn)
    assert again["verdict"] == "not-needed"
    print(f"redrive of an execution failed by an outage to paid: {redrive_seconds:.1f} s")


def test_redrive_says_where_it_cannot_and_what_to_do_instead(local: LocalProcess) -> None:
    # Given the invoice that ended in the Fail state "Invoice not processed" (the ERP refused it)
    failed = local.executions_for(WORKFLOW, f"erp:{FAILED}")[0]

    # Then a redrive of it is refused, pointing at replay
    refused = aios(local, "redrive", failed, check=False)
    assert refused.returncode == 1
    assert "cannot" in refused.stdout and "Invoice not processed" in refused.stdout
    assert f"aios replay erp:{FAILED}" in refused.stdout
    # ... an Express execution (intake) cannot be redriven at all
    intake = local.executions("intake")[0]["executionArn"]
    express = aios(local, "redrive", intake, "--json", check=False)
    [said] = json.loads(express.stdout)
    assert express.returncode == 1 and said["verdict"] == "cannot" and "Express" in said["detail"]
    # ... and the workflow's failures of the last hour say the same, redriving nothing
    listed = aios_json(local, "redrive", "--workflow", WORKFLOW, "--failed-since", "1h", "--dry-run")
    assert {(r["execution"], r["verdict"]) for r in listed} == {(failed, "cannot")}
