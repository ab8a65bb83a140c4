"""`serapp bench-report` at scale: seconds for answer files of N rows, each from its own rater.

    python benchmarks/bench_report.py [--rows 100000 30000 10000]

The rows are written as the listening test writes them (one file), then the whole command
runs as a user would start it (a new process: reading, checking, scoring, Fleiss' kappa).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serapp.listening.answers import COLUMNS, Answer, format_row

LABELS = ("neutral", "happy", "sad", "angry")


def write_answers(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(COLUMNS) + "\n")
        for i in range(rows):
            truth, chosen = rng.choice(LABELS), rng.choice(LABELS)
            f.write(format_row(Answer(
                session_id=f"s{i}", rater=f"rater{i}", timestamp_utc="2026-11-21T10:00:00.000+00:00",
                corpus="/corpus", clip=f"clip{rng.randrange(2000)}.wav", true_label=truth, chosen_label=chosen,
                correct=int(truth == chosen), response_ms=rng.randrange(300, 5000), replays=0, skipped=0,
                skip_reason="", label_set="|".join(LABELS), app_version="0.1.0")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    args = ap.parse_args()
    print(f"{'rows (= raters)':>16} {'text s':>8} {'json s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.rows:
            path = Path(tmp) / f"a{n}.csv"
            write_answers(path, n)
            times = []
            for fmt in ("text", "json"):
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "serapp", "bench-report", str(path), "--format", fmt],
                                      capture_output=True, text=True)
                times.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    sys.exit(proc.stderr)
            print(f"{n:>16} {times[0]:>8.2f} {times[1]:>8.2f}")


if __name__ == "__main__":
    main()
