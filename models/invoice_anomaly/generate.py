"""Synthetic supplier invoices with planted, labelled anomalies.

Each invoice is one JSON object: the invoice's own fields plus the *vendor context* that the ERP
side supplies with it (the vendor's amount history, its expected tax rate and currency, whether
the bank account differs from the vendor master, the nearest look-alike invoice). Scoring one
invoice therefore needs only that invoice's object; no lookup happens in the model container.
See ``layers/aios/python/aios/anomaly_features.py`` for the field contract.

Normal invoices follow each vendor's own log-normal amount distribution, its country's tax rate,
its currency and its bank account, and are dated on business days. About 5% are anomalies of six
kinds (``ANOMALY_KINDS``), each a known accounts-payable fraud or error pattern.

The generator is vectorised with numpy and fully determined by its seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

ANOMALY_KINDS: tuple[str, ...] = (
    "amount_outlier",  # far from the vendor's own history
    "bank_account_changed",  # paid to an account that is not the vendor master's
    "duplicate",  # same vendor, near-same amount, close date, similar invoice number
    "odd_tax_ratio",  # tax does not match the vendor country's rate
    "weekend_posting",  # dated on a Saturday or Sunday
    "round_amount",  # a round, unusually high amount
)
DEFAULT_ANOMALY_RATE = 0.05

# Country -> (VAT rate, currency). Rates are the standard rates of a few countries.
_COUNTRIES: tuple[tuple[str, float, str], ...] = (
    ("DE", 0.19, "EUR"),
    ("FR", 0.20, "EUR"),
    ("NL", 0.21, "EUR"),
    ("GB", 0.20, "GBP"),
    ("SE", 0.25, "SEK"),
    ("CH", 0.081, "CHF"),
    ("US", 0.0, "USD"),
    ("JP", 0.10, "JPY"),
)
_EPOCH_DAY = np.datetime64("2023-01-02", "D")  # a Monday
_SPAN_DAYS = 730


@dataclass(frozen=True, slots=True)
class Dataset:
    """Invoices, their labels (1 = anomaly) and the planted kind ("" for normal invoices)."""

    invoices: list[dict[str, Any]]
    labels: npt.NDArray[np.int8]
    kinds: list[str]


def _iban(rng: np.random.Generator, country: str) -> str:
    digits = "".join(str(d) for d in rng.integers(0, 10, size=18))
    return f"{country}{digits}"


def _business_days(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    """Day offsets from ``_EPOCH_DAY`` that fall on Monday..Friday."""
    weeks = rng.integers(0, _SPAN_DAYS // 7, size=n)
    weekday = rng.integers(0, 5, size=n)
    return (weeks * 7 + weekday).astype(np.int64)


def generate(  # noqa: PLR0915 - one vectorised recipe, read top to bottom
    n_invoices: int,
    *,
    seed: int,
    n_vendors: int = 400,
    anomaly_rate: float = DEFAULT_ANOMALY_RATE,
) -> Dataset:
    """Generate ``n_invoices`` invoices; ``anomaly_rate`` of them (rounded) are anomalies."""
    if n_invoices <= 0:
        raise ValueError("n_invoices must be positive")
    rng = np.random.default_rng(seed)

    # Vendors: amount history, country (tax rate, currency), bank account, invoice volume.
    country_idx = rng.integers(0, len(_COUNTRIES), size=n_vendors)
    v_mu = rng.normal(7.0, 1.3, size=n_vendors)  # log amount: median ~ 1100
    v_sigma = rng.uniform(0.15, 0.7, size=n_vendors)
    v_count = rng.integers(3, 400, size=n_vendors)
    v_round_biller = rng.random(n_vendors) < 0.05  # subscriptions, retainers: legit round amounts
    v_tax = np.array([_COUNTRIES[c][1] for c in country_idx])
    v_cur = [_COUNTRIES[c][2] for c in country_idx]
    v_bank = [_iban(rng, _COUNTRIES[c][0]) for c in country_idx]
    v_gap = rng.uniform(5.0, 45.0, size=n_vendors)  # mean days between invoices

    vendor = rng.integers(0, n_vendors, size=n_invoices)
    n_anom = round(n_invoices * anomaly_rate)
    kind_idx = np.full(n_invoices, -1, dtype=np.int64)
    anom_rows = rng.choice(n_invoices, size=n_anom, replace=False)
    kind_idx[anom_rows] = rng.integers(0, len(ANOMALY_KINDS), size=n_anom)

    def is_kind(name: str) -> npt.NDArray[np.bool_]:
        mask: npt.NDArray[np.bool_] = kind_idx == ANOMALY_KINDS.index(name)
        return mask

    mu, sigma = v_mu[vendor], v_sigma[vendor]
    # The ERP's history estimate: the true parameters seen through a finite history.
    count = v_count[vendor]
    hist_mu = mu + rng.normal(0, 1, n_invoices) * sigma / np.sqrt(count)
    hist_sigma = sigma * rng.uniform(0.85, 1.15, n_invoices)

    log_amount = rng.normal(mu, sigma)
    outlier = is_kind("amount_outlier")
    direction = np.where(rng.random(n_invoices) < 0.75, 1.0, -1.0)
    log_amount = np.where(outlier, mu + direction * rng.uniform(3.5, 8.0, n_invoices) * sigma, log_amount)
    amount = np.round(np.exp(log_amount), 2)

    # Round amounts: legit for round billers (their history is round too), anomalous otherwise.
    round_anom = is_kind("round_amount")
    legit_round = v_round_biller[vendor] & ~round_anom
    step = np.where(amount >= 5000, 1000.0, 100.0)
    amount = np.where(legit_round, np.maximum(step, np.round(amount / step) * step), amount)
    high = np.exp(mu + rng.uniform(1.5, 3.0, n_invoices) * sigma)
    high_step = np.where(high >= 5000, 1000.0, 100.0)
    amount = np.where(round_anom, np.maximum(high_step, np.round(high / high_step) * high_step), amount)
    amount = np.maximum(amount, 0.01)

    tax_rate = v_tax[vendor]
    odd_tax = is_kind("odd_tax_ratio")
    tax_shift = np.where(
        tax_rate > 0.05,
        rng.choice([-1.0, 1.0], n_invoices) * rng.uniform(0.04, 0.12, n_invoices),
        rng.uniform(0.05, 0.2, n_invoices),
    )
    eff_rate = np.where(odd_tax, np.clip(tax_rate + tax_shift, 0.0, None), tax_rate)
    # ``amount`` is gross (canonical invoice): tax = gross * rate / (1 + rate).
    tax_amount = np.round(amount * eff_rate / (1.0 + eff_rate), 2)

    day = _business_days(rng, n_invoices)
    legit_weekend = rng.random(n_invoices) < 0.015
    weekend = is_kind("weekend_posting") | legit_weekend
    weekend_day = (day // 7) * 7 + rng.integers(5, 7, size=n_invoices)
    day = np.where(weekend, weekend_day, day)
    dates = (_EPOCH_DAY + day).astype(str)

    bank_changed = is_kind("bank_account_changed") | (rng.random(n_invoices) < 0.003)

    # Nearest look-alike invoice (same vendor, amount within 2%, last 365 days): most normal
    # invoices have none; some have an old one (recurring bills) with a dissimilar number.
    dup = is_kind("duplicate")
    has_similar = dup | (rng.random(n_invoices) < np.where(legit_round, 0.8, 0.15))
    days_similar = np.where(dup, rng.uniform(0.0, 6.0, n_invoices), rng.uniform(20.0, 365.0, n_invoices))
    days_similar = np.where(
        ~dup & (rng.random(n_invoices) < 0.03), rng.uniform(3, 20, n_invoices), days_similar
    )
    similarity = np.where(dup, rng.uniform(0.75, 1.0, n_invoices), rng.beta(2.0, 5.0, n_invoices))
    days_last = rng.exponential(v_gap[vendor])
    first_invoice = rng.random(n_invoices) < 0.01

    currency_mismatch = rng.random(n_invoices) < 0.01  # legit: occasional foreign-currency bill

    invoices: list[dict[str, Any]] = []
    kinds: list[str] = []
    for i in range(n_invoices):
        v = int(vendor[i])
        cur = v_cur[v]
        inv_cur = "USD" if currency_mismatch[i] and cur != "USD" else cur
        invoices.append(
            {
                "invoice_id": f"INV-{seed}-{i:07d}",
                "vendor_id": f"V{v:05d}",
                "invoice_number": f"{v % 97:02d}-{int(rng.integers(0, 10**6)):06d}",
                "amount": float(amount[i]),
                "tax_amount": float(tax_amount[i]),
                "currency": inv_cur,
                "invoice_date": str(dates[i]),
                "bank_account": _iban(rng, "XX") if bank_changed[i] else v_bank[v],
                "vendor_currency": cur,
                "vendor_tax_rate": float(tax_rate[i]),
                "vendor_mean_log_amount": round(float(hist_mu[i]), 6),
                "vendor_std_log_amount": round(float(hist_sigma[i]), 6),
                "vendor_invoice_count": int(count[i]),
                "bank_account_changed": bool(bank_changed[i]),
                "days_since_last_invoice": None if first_invoice[i] else round(float(days_last[i]), 3),
                "days_since_similar_invoice": round(float(days_similar[i]), 3) if has_similar[i] else None,
                "similar_invoice_number_similarity": round(float(similarity[i]), 4)
                if has_similar[i]
                else None,
            }
        )
        kinds.append(ANOMALY_KINDS[kind_idx[i]] if kind_idx[i] >= 0 else "")
    labels = (kind_idx >= 0).astype(np.int8)
    return Dataset(invoices=invoices, labels=labels, kinds=kinds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10, help="number of invoices")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    ds = generate(args.n, seed=args.seed)
    for inv, kind in zip(ds.invoices, ds.kinds, strict=True):
        sys.stdout.write(json.dumps({**inv, "_anomaly": kind}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
