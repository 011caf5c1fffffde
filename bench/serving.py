"""Serving throughput of the invoice anomaly scorer: input_fn -> predict_fn -> output_fn.

    .venv/bin/python bench/serving.py [--quick] [--device cpu|cuda|all]

For each device (CPU, and CUDA when available), each request format (json, jsonlines: JSON in
and out; npy: npy in and out) and each batch size, prints rows/s and p50/p99 latency per
request. Baselines from the same run: the batch-1 rate of each format, the bare model call on
a tensor already on the device, and the bare model call including the host->device->host
copies. Ratios: batched rows/s over batch-1 rows/s, and npy at the largest batch over the bare
model rate (incl. copies). Runtime is bounded by a time budget per cell.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

_MODEL_ROOT = Path(__file__).resolve().parents[1] / "models" / "invoice-anomaly"
for _p in (_MODEL_ROOT, _MODEL_ROOT / "code"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import inference  # noqa: E402
from features import featurize  # noqa: E402
from generate import generate  # noqa: E402
from train import TrainConfig, train  # noqa: E402

BATCH_SIZES = (1, 8, 64, 512, 4096)
FORMATS = ("json", "jsonlines", "npy")


@dataclass(frozen=True, slots=True)
class Timing:
    rows_per_s: float
    p50_ms: float
    p99_ms: float


def measure(fn: Callable[[], object], rows: int, budget_s: float, min_iters: int = 5) -> Timing:
    for _ in range(2):
        fn()  # warm-up
    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(samples) < min_iters or (time.perf_counter() < deadline and len(samples) < 20_000):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return Timing(rows / p50, p50 * 1e3, p99 * 1e3)


def _bodies(rows: list[dict[str, object]]) -> dict[str, tuple[bytes, str, str]]:
    buf = io.BytesIO()
    np.save(buf, featurize(rows))
    return {
        "json": (json.dumps(rows).encode(), "application/json", "application/json"),
        "jsonlines": (
            "\n".join(json.dumps(r) for r in rows).encode(),
            "application/jsonlines",
            "application/json",
        ),
        "npy": (buf.getvalue(), "application/x-npy", "application/x-npy"),
    }


def _model_dir() -> Path:
    built = _MODEL_ROOT / "artifacts" / "model"
    if (built / inference.WEIGHTS_FILE).is_file():
        return built
    out = Path("/tmp") / "aios-bench-invoice-model"  # noqa: S108 - scratch output of a bench
    if not (out / inference.WEIGHTS_FILE).is_file():
        train(out, TrainConfig())
    return out


def bench_device(device: str, model_dir: Path, budget_s: float) -> None:
    context = type("Ctx", (), {"system_properties": {"gpu_id": 0}})() if device == "cuda" else None
    model = inference.model_fn(str(model_dir), context)
    if device == "cpu" and model.device.type != "cpu":  # a CUDA host: bench the CPU path too
        cpu = torch.device("cpu")
        model = inference.LoadedModel(module=model.module.to(cpu), device=cpu, version=model.version)

    def sync() -> None:
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)

    biggest = max(BATCH_SIZES)
    pool = generate(biggest, seed=123).invoices
    bodies = {b: _bodies(pool[:b]) for b in BATCH_SIZES}

    print(f"\n== device {model.device} (torch {torch.__version__}, threads {torch.get_num_threads()}) ==")
    print(f"{'format':<10} {'batch':>6} {'rows/s':>12} {'p50 ms':>9} {'p99 ms':>9} {'x batch-1':>10}")
    results: dict[tuple[str, int], Timing] = {}
    for fmt in FORMATS:
        for b in BATCH_SIZES:
            body, ctype, accept = bodies[b][fmt]

            def call(body: bytes = body, ctype: str = ctype, accept: str = accept) -> object:
                return inference.output_fn(
                    inference.predict_fn(inference.input_fn(body, ctype), model), accept
                )

            t = measure(call, b, budget_s)
            results[(fmt, b)] = t
            ratio = t.rows_per_s / results[(fmt, 1)].rows_per_s
            print(f"{fmt:<10} {b:>6} {t.rows_per_s:>12,.0f} {t.p50_ms:>9.3f} {t.p99_ms:>9.3f} {ratio:>9.1f}x")

    x = featurize(pool)
    resident = torch.from_numpy(x).to(model.device)

    def bare() -> object:
        with torch.inference_mode():
            out = model.module(resident)
        sync()
        return out

    def bare_with_copies() -> object:
        with torch.inference_mode():
            out = model.module(torch.from_numpy(x).to(model.device)).cpu()
        return out

    t_bare = measure(bare, biggest, budget_s)
    t_copy = measure(bare_with_copies, biggest, budget_s)
    t_score = measure(lambda: model.score(x), biggest, budget_s)
    print(f"bare model, resident tensor, batch {biggest}: {t_bare.rows_per_s:>14,.0f} rows/s")
    print(f"bare model incl. host<->device copies:     {t_copy.rows_per_s:>14,.0f} rows/s")
    print(f"LoadedModel.score (pinned staging):        {t_score.rows_per_s:>14,.0f} rows/s")
    npy = results[("npy", biggest)].rows_per_s
    print(
        f"npy@{biggest} / bare incl. copies = {npy / t_copy.rows_per_s:.1%}; "
        f"npy@{biggest} / bare resident = {npy / t_bare.rows_per_s:.1%}"
    )
    for fmt in FORMATS:
        print(
            f"{fmt}: batch {biggest} vs batch 1 rows/s = "
            f"{results[(fmt, biggest)].rows_per_s / results[(fmt, 1)].rows_per_s:.0f}x"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Invoice anomaly serving benchmark.")
    parser.add_argument("--quick", action="store_true", help="short time budget per cell")
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    args = parser.parse_args(argv)
    budget = 0.15 if args.quick else 1.0
    model_dir = _model_dir()
    print(f"model dir {model_dir}; budget {budget}s per cell")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("\n== cuda: not available, skipped ==")
            continue
        bench_device(device, model_dir, budget)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
