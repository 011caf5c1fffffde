"""``aios report --plot FILE.png``: automation ratio and cycle time over time, one PNG.

The invoices that ended are grouped by when they ended, into about ``BUCKETS`` equal spans of
the report's time range; per span: the automation ratio (automated / ended, the platform's
headline number) on top, and cycle time p50 and p95 below. matplotlib draws it (Agg, no
display); it is imported only here, so the report itself needs none of it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import click

from infrastructure.ops.report import Invoice, Report, percentile

BUCKETS = 12
#: The pin this needs (pyproject.toml); matplotlib is not imported anywhere else.
REQUIREMENT = "matplotlib==3.11.2"


def series(
    invoices: tuple[Invoice, ...], buckets: int = BUCKETS
) -> list[tuple[datetime, float, float | None, float | None, int]]:
    """Per span that has ended invoices: (span start, automation ratio, cycle p50, cycle p95, n)."""
    ended = sorted((i for i in invoices if i.ended_at is not None), key=lambda i: i.ended_at or datetime.min)
    if not ended:
        return []
    first, last = ended[0].ended_at, ended[-1].ended_at
    assert first is not None and last is not None
    width = max((last - first) / buckets, timedelta(seconds=1))
    groups: dict[int, list[Invoice]] = {}
    for invoice in ended:
        assert invoice.ended_at is not None
        groups.setdefault(min(int((invoice.ended_at - first) / width), buckets - 1), []).append(invoice)
    rows = []
    for index in sorted(groups):
        group = groups[index]
        cycles = [i.cycle_seconds for i in group if i.cycle_seconds is not None]
        rows.append(
            (
                first + index * width,
                sum(1 for i in group if i.automated) / len(group),
                percentile(cycles, 50),
                percentile(cycles, 95),
                len(group),
            )
        )
    return rows


def plot(report: Report, path: str) -> None:
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415

        matplotlib.use("Agg")
        from matplotlib import dates, pyplot  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415
    except ImportError:
        raise click.ClickException(
            f"--plot needs {REQUIREMENT} (not installed in this environment)"
        ) from None
    rows = series(report.items)
    if not rows:
        raise click.ClickException("nothing to plot: no invoice has ended in the report's range")
    when = [r[0] for r in rows]
    figure, (ratio, cycle) = pyplot.subplots(2, 1, sharex=True, figsize=(9, 6))
    ratio.plot(when, [100 * r[1] for r in rows], marker="o")
    ratio.set_ylabel("automated (% of ended)")
    ratio.set_ylim(0, 100)
    ratio.set_title(f"accounts payable: {report.ended} invoices ended, {report.automated} automated")
    cycle.plot(when, [r[2] for r in rows], marker="o", label="p50")
    cycle.plot(when, [r[3] for r in rows], marker="x", label="p95")
    cycle.set_ylabel("cycle time (s)")
    cycle.set_xlabel("ended (UTC)")
    cycle.legend()
    locator = dates.AutoDateLocator()  # type: ignore[no-untyped-call] # matplotlib ships it untyped
    cycle.xaxis.set_major_locator(locator)
    cycle.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)
