"""A short soak (``bench/soak.py``): invoices at once, with redeliveries, re-announcements,
forged requests, transient faults and approvals answered at random moments, including
around the ladder's stage timeouts; then every accepted delivery is accounted for."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.soak import Soak, start
from infrastructure.local.harness import LocalProcess

#: Longer than the soak's default: stages must outlast a loaded machine's cold starts.
LADDER_SECONDS = 8


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProcess]:
    process = start(ladder_seconds=LADDER_SECONDS)
    try:
        yield process
    finally:
        process.stop(timeout=30)


@pytest.mark.parametrize("seed", [11])
def test_short_soak_accounts_for_every_delivery(local: LocalProcess, seed: int) -> None:
    # Given a handful of invoices sent at once, with faults, forgeries and random clicks
    report = Soak(local, count=8, concurrency=4, seed=seed, ladder_seconds=LADDER_SECONDS).run()

    # Then each ended once, as its approver was told, paid at most once, with its lineage
    assert report.violations == []
    assert report.completed() >= 8
    assert sum(len(invoice.deliveries) for invoice in report.invoices) >= 8
