"""Time to a visible window: from the process's start to its window's first expose, and whether
torch was imported by then. Run it on a real X server or under Xvfb:

    xvfb-run -a -s "-screen 0 1400x900x24" python benchmarks/bench_startup.py [--runs 5]

Each run is a fresh `python -m serapp` (the user's command), which prints the moment of its
first expose, the moment its views (the plots) are built and the moment the model is loaded
(SERAPP_STARTUP_REPORT), and quits; the clock starts just before the process is
spawned, so interpreter start-up and every import count. Printed: each run, the medians.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time


def one_run(settings: str) -> dict:
    """Seconds from spawning the process to each milestone it reports, and whether torch was in."""
    env = {**os.environ, "SERAPP_STARTUP_REPORT": "1", "SERAPP_SETTINGS": settings}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "serapp", "--quit-after", "10"], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    expose = re.search(r"first expose at ([0-9.]+); torch imported: (True|False)", proc.stderr)
    views = re.search(r"views built at ([0-9.]+)", proc.stderr)
    model = re.search(r"model loaded at ([0-9.]+)", proc.stderr)
    if proc.returncode != 0 or not (expose and views and model):
        sys.exit(proc.stderr)
    return {"window": float(expose.group(1)) - t0, "torch": expose.group(2) == "True",
            "views": float(views.group(1)) - t0, "model": float(model.group(1)) - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_run(os.path.join(tmp, "s.ini"))  # a first run warms the disk cache, as a user's second start
        runs = [one_run(os.path.join(tmp, "s.ini")) for _ in range(args.runs)]
    for i, r in enumerate(runs, 1):
        print(f"run {i}: window on screen after {r['window']:.2f} s (torch imported by then: "
              f"{'yes' if r['torch'] else 'no'}); views built after {r['views']:.2f} s; "
              f"model loaded after {r['model']:.2f} s")
    med = {k: statistics.median(r[k] for r in runs) for k in ("window", "views", "model")}
    print(f"median: {med['window']:.2f} s to a visible window (target: at most 1.0 s), {med['views']:.2f} s to "
          f"the views with their plots, {med['model']:.2f} s to a loaded model")


if __name__ == "__main__":
    main()
