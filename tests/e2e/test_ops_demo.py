"""``aios report`` after the demo flow says what the demo's own summary says.

``make demo`` runs 20 invoices (about 80 s); this runs the same flow (``infrastructure.demo.Demo``,
the same platform, sandbox and clicks) on five of them, one of each kind the summary counts
apart: a refused payment (compensated), the rejected bank-account change, the unanswered one
(reminder, escalation, automatic rejection) and two more. The demo's count comes from each
execution's last state and what Slack was asked; the report's from lineage and the
executions' histories: two readings of one run. ``make demo`` itself prints the same comparison
(``report_disagreements``) and fails on a difference.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.demo import REFUSED_PAYMENT, REJECTED, UNANSWERED, Demo, report_disagreements, summary
from infrastructure.local.harness import REPO_ROOT, LocalProcess
from tests.e2e.conftest import start_local

BATCH = ["INV-2001", "INV-2002", REJECTED, REFUSED_PAYMENT, UNANSWERED]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    yield from start_local(
        "infrastructure.demo:DEMO_PLATFORM",
        env={"AIOS_LOCAL_TIME_SCALE": "0.05", "AIOS_LOCAL_LAMBDA_PREWARM": "1"},
        stop_timeout=30,
    )


def test_report_after_the_demo_flow_matches_the_demo_summary(local: LocalProcess, tmp_path: Path) -> None:
    # Given the demo flow over a batch with every kind of outcome
    started = time.monotonic()
    local.refuse_payment(REFUSED_PAYMENT)
    demo = Demo(local, invoices=BATCH)
    demo.send_invoices()
    executions = demo.wait()
    keys = {e["executionArn"]: local.business_key_of(e["executionArn"]) for e in executions}
    from infrastructure.demo import OUTCOMES  # noqa: PLC0415 - the demo's own reading

    outcomes = {keys[arn]: OUTCOMES.get(demo.final_state(arn), "other") for arn in keys}
    expected = summary(outcomes, demo.asked)

    # Then the demo counted one of each kind it set up
    assert expected["invoices"] == len(BATCH)
    assert (expected["compensated"], expected["rejected"], expected["auto-rejected"]) == (1, 1, 1), expected
    assert expected["paid"] == expected["automated"] + expected["approved"] == 2
    # ... and aios report, from lineage and histories, says exactly the same
    assert report_disagreements(local, expected) == []

    # ... and draws it over time (or, without matplotlib, says which pin it needs)
    png = tmp_path / "report.png"
    plotted = subprocess.run(
        [
            sys.executable,
            "-m",
            "infrastructure.cli",
            "report",
            "--plot",
            str(png),
            "--endpoint-url",
            local.aws,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if importlib.util.find_spec("matplotlib"):
        assert plotted.returncode == 0, plotted.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert plotted.returncode == 1 and "matplotlib==" in plotted.stderr
    print(f"demo batch of {len(BATCH)} and report: {time.monotonic() - started:.1f} s")
