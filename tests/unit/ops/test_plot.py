"""``aios report --plot``: the series it draws, and what it says without matplotlib."""

from __future__ import annotations

import builtins
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest

from infrastructure.ops import plot
from infrastructure.ops.report import Invoice, Report

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def invoice(minute: int, *, automated: bool, cycle: float, ended: bool = True) -> Invoice:
    return Invoice(
        business_key=f"erp:INV-{minute}",
        outcome="paid" if ended else "in progress",
        route="auto" if automated else "human",
        human_touches=0 if automated else 1,
        automated=automated,
        cycle_seconds=cycle if ended else None,
        transitions=10,
        cost_usd=0.001,
        ended_at=T0 + timedelta(minutes=minute) if ended else None,
    )


def report(items: list[Invoice]) -> Report:
    return Report(
        since=None,
        invoices=len(items),
        ended=sum(1 for i in items if i.ended_at),
        automated=sum(1 for i in items if i.automated),
        automation_coverage=None,
        human_touches=0,
        cycle_time_p50_seconds=None,
        cycle_time_p95_seconds=None,
        outcomes={},
        transitions_per_invoice=None,
        cost_per_1000_invoices_usd=None,
        duplicates=0,
        items=tuple(items),
    )


def test_the_series_groups_ended_invoices_by_when_they_ended() -> None:
    items = [
        invoice(0, automated=True, cycle=10),
        invoice(1, automated=False, cycle=30),
        invoice(59, automated=True, cycle=20),
        invoice(60, automated=True, cycle=40),
        invoice(61, automated=True, cycle=99, ended=False),  # still running: not drawn
    ]
    rows = plot.series(tuple(items), buckets=2)
    assert [(start, ratio, p50, p95, n) for start, ratio, p50, p95, n in rows] == [
        (T0, 0.5, 10, 30, 2),
        (T0 + timedelta(minutes=30), 1.0, 20, 40, 2),
    ]
    assert plot.series(()) == []


def test_without_matplotlib_the_verb_names_the_pin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(click.ClickException, match="matplotlib=="):
        plot.plot(report([invoice(0, automated=True, cycle=1)]), str(tmp_path / "p.png"))


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "report.png"
    plot.plot(report([invoice(m, automated=m % 2 == 0, cycle=10 + m) for m in range(10)]), str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
