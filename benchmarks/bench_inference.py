"""CPU cost of one inference window: front-end ms and model ms (median over many runs).

    python benchmarks/bench_inference.py [--model BUNDLE] [--window 3] [--runs 300] [--threads 1 2]

Without --model it uses the bundled default, or a randomly initialised default-size TCN when
no bundle is installed (the cost depends on the architecture, not on the weights).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from serapp.bundle import BundleMeta
from serapp.features import FrontEnd, FrontEndConfig
from serapp.models import build_model
from serapp.predictor import default_bundle_path, load_model


def _model(path):
    path = path or default_bundle_path()
    if path:
        p = load_model(path, device="cpu")
        return p.model, p.meta, str(path)
    fe = FrontEndConfig(normalize=True)
    meta = BundleMeta("tcn", [str(i) for i in range(8)], fe, 3.0)
    return build_model("tcn", fe.n_features, 8).eval(), meta, "random-init tcn (no bundle installed)"


def _median_ms(fn, runs: int) -> float:
    for _ in range(max(5, runs // 10)):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--window", type=float, default=3.0, help="seconds per window")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    model, meta, name = _model(args.model)
    frontend = FrontEnd(meta.frontend)
    rng = np.random.default_rng(0)
    wave = torch.from_numpy((0.1 * rng.standard_normal(int(args.window * meta.sample_rate))).astype(np.float32))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {name}  ({meta.architecture}, {n_params / 1e6:.2f} M parameters)")
    print(f"window: {args.window:g} s at {meta.sample_rate} Hz, median of {args.runs} runs, torch {torch.__version__}")
    # A model with an int8 encoder graph runs it on CPUs; its float32 path is timed beside it.
    runtimes = [True, False] if hasattr(model, "use_int8") and model.runtime != "torch float32" else [None]
    print(f"{'threads':>7} {'runtime':>17} {'features_ms':>12} {'model_ms':>9} {'total_ms':>9}")
    with torch.inference_mode():
        feats = frontend(wave.unsqueeze(0))
        for threads in args.threads:
            torch.set_num_threads(threads)
            f_ms = _median_ms(lambda: frontend(wave.unsqueeze(0)), args.runs)
            for int8 in runtimes:
                if int8 is not None:
                    model.use_int8 = int8
                runtime = getattr(model, "runtime", "torch float32")
                m_ms = _median_ms(lambda: model(feats), args.runs)
                print(f"{threads:>7} {runtime:>17} {f_ms:>12.3f} {m_ms:>9.3f} {f_ms + m_ms:>9.3f}")


if __name__ == "__main__":
    main()
