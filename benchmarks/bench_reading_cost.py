"""The cost of one live reading, as the app's status bar measures it at load
(serapp.reading_cost: features + model ms of one model window, median of 5 after 2 warm-up
reads), repeated, against the live budget (settings.LIVE_BUDGET_MS).

    python benchmarks/bench_reading_cost.py [--model default small] [--repeats 9]

Models load as the app loads them (a CPU, half the cores' threads: SERAPP_THREADS overrides).
The load average is printed: a loaded host reads slower (a training run on the other core
doubled it here).
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from serapp.predictor import load_model
from serapp.reading_cost import reading_cost_ms
from serapp.settings import LIVE_BUDGET_MS, LIVE_HOP_S


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=["default", "small"], help="bundled names or bundle paths")
    ap.add_argument("--repeats", type=int, default=9, help="load-time measurements per model")
    args = ap.parse_args()
    print(f"live budget: {LIVE_BUDGET_MS:.0f} ms a reading at the {LIVE_HOP_S:g} s hop (half of it); "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'model':>10} {'threads':>7} {'runtime':>17} {'median ms':>10} {'min–max ms':>14} {'budget':>7}")
    for name in args.model:
        predictor = load_model(name, device="cpu")
        costs = [reading_cost_ms(predictor) for _ in range(args.repeats)]
        runtime = getattr(predictor.model, "runtime", "torch float32")
        median = statistics.median(costs)
        print(f"{name:>10} {torch.get_num_threads():>7} {runtime:>17} {median:>10.1f} "
              f"{f'{min(costs):.1f}–{max(costs):.1f}':>14} {'within' if median <= LIVE_BUDGET_MS else 'over':>7}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
