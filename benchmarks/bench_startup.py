"""Time to a visible window: from the process's start to its window's first expose, and whether
torch was imported by then. Run it on a real X server or under Xvfb:

    xvfb-run -a -s "-screen 0 1400x900x24" python benchmarks/bench_startup.py [--runs 5]

Each run is a fresh `python -m serapp` (the user's command), which prints the moment of its
first expose (SERAPP_STARTUP_REPORT) and quits; the clock starts just before the process is
spawned, so interpreter start-up and every import count. Printed: each run, the median.
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


def one_run(settings: str) -> tuple[float, bool]:
    env = {**os.environ, "SERAPP_STARTUP_REPORT": "1", "SERAPP_SETTINGS": settings}
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "serapp", "--quit-after", "4"], env=env, capture_output=True,
                          text=True, timeout=120)
    m = re.search(r"first expose at ([0-9.]+); torch imported: (True|False)", proc.stderr)
    if proc.returncode != 0 or m is None:
        sys.exit(proc.stderr)
    return float(m.group(1)) - t0, m.group(2) == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one_run(os.path.join(tmp, "s.ini"))  # a first run warms the disk cache, as a user's second start
        runs = [one_run(os.path.join(tmp, "s.ini")) for _ in range(args.runs)]
    for i, (s, torch) in enumerate(runs, 1):
        print(f"run {i}: window on screen after {s:.2f} s; torch imported by then: {'yes' if torch else 'no'}")
    print(f"median: {statistics.median(s for s, _ in runs):.2f} s to a visible window (target: at most 1.0 s)")


if __name__ == "__main__":
    main()
