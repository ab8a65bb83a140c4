"""`serapp listen-web` under load on loopback: N raters at once, each answering M clips as fast as
it can (fetching each clip first, as the page does); answer latency, and a check that no answer
was lost or doubled.

    python benchmarks/bench_web.py [--raters 50] [--answers 20] [--resend 0.1]

The server runs as users start it (a new process, its answers folder on this disk, every
answer fsync'd before it is acknowledged). A share of the answers (--resend) is sent twice, as a
page retrying after a lost reply would: the second must be acknowledged as already saved and
leave one row. Latency is from sending an answer to its reply, per answer.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the generated corpus lives with the test helpers

from helpers import make_ravdess_corpus  # noqa: E402

from serapp.listening.answers import read_answers  # noqa: E402

LABELS = ("neutral", "happy", "sad", "angry")


class Rater(threading.Thread):
    def __init__(self, url: str, name: str, start: threading.Barrier, resend: float, seed: int):
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self.base, self.name, self.start_line, self.resend = parts.path, name, start, resend
        self.rng = random.Random(seed)
        self.handle = ""
        self.latencies: list[float] = []
        self.acked: list[str] = []
        self.duplicates = 0
        self.error: str | None = None

    def call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data else {}
        if self.handle:
            headers["X-Rater"] = self.handle
        self.conn.request(method, self.base + path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {raw[:200]!r}")
        return json.loads(raw) if response.getheader("content-type", "").startswith("application/json") else raw

    def run(self) -> None:
        try:
            joined = self.call("POST", "api/join", {"name": self.name})
            self.handle, state = joined["rater"], joined["state"]
            self.start_line.wait()
            while not state["done"]:
                self.call("GET", f"api/clip/{state['trial']}")
                label = self.rng.choice(LABELS)
                body = {"trial": state["trial"], "label": label, "response_ms": 900, "replays": 0}
                t0 = time.perf_counter()
                out = self.call("POST", "api/answer", body)
                self.latencies.append(time.perf_counter() - t0)
                self.acked.append(label)
                if self.rng.random() < self.resend:  # the same answer again: a retry after a lost reply
                    again = self.call("POST", "api/answer", body)
                    self.duplicates += again["duplicate"]
                state = out["state"]
        except Exception as exc:  # reported by main, with the rater
            self.error = f"{type(exc).__name__}: {exc}"


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raters", type=int, default=50)
    ap.add_argument("--answers", type=int, default=20, help="clips per rater")
    ap.add_argument("--resend", type=float, default=0.1, help="share of answers sent twice")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        corpus = make_ravdess_corpus(Path(tmp) / "corpus", actors=range(1, 9), reps=2, seconds=1.0)
        folder = Path(tmp) / "answers"
        server = subprocess.Popen([sys.executable, "-m", "serapp", "listen-web", str(corpus), "--answers", str(folder),
                                   "--port", "0", "--clips", str(args.answers), "--practice", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = server.stdout.readline()
            if not first.startswith("open "):
                print(f"the server did not start: {first!r} {server.stderr.read()}", file=sys.stderr)
                return 1
            url = first.split()[1]
            threading.Thread(target=server.stdout.read, daemon=True).start()  # its log, not to block it
            start = threading.Barrier(args.raters + 1)
            raters = [Rater(url, f"rater{i:03d}", start, args.resend, i) for i in range(args.raters)]
            for r in raters:
                r.start()
            start.wait()
            t0 = time.perf_counter()
            for r in raters:
                r.join()
            wall = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(30)
        failed = [f"{r.name}: {r.error}" for r in raters if r.error]
        saved = {}
        for path in glob.glob(str(folder / "*.csv")):
            for a in read_answers(path):
                saved.setdefault(a.rater, []).append(a)
        lost = doubled = 0
        for r in raters:
            rows = saved.get(r.name, [])
            lost += sum(1 for i, label in enumerate(r.acked) if i >= len(rows) or rows[i].chosen_label != label)
            doubled += len(rows) - len({a.clip for a in rows}) + max(0, len(rows) - len(r.acked))
        lat = sorted(x * 1000 for r in raters for x in r.latencies)
        n = len(lat)
        print(f"{args.raters} raters x {args.answers} answers on loopback, all at once: {n} answers in {wall:.2f} s "
              f"({n / wall:.0f} answers/s, each fsync'd before its reply; {sum(r.duplicates for r in raters)} resent "
              f"and acknowledged as already saved)")
        if n:
            print(f"answer latency: p50 {percentile(lat, 50):.1f} ms, p95 {percentile(lat, 95):.1f} ms, "
                  f"max {lat[-1]:.1f} ms")
        print(f"answers lost: {lost}, doubled: {doubled}, raters failed: {len(failed)}")
        for line in failed[:5]:
            print(f"  {line}")
        return 0 if not (lost or doubled or failed) and n == args.raters * args.answers else 1


if __name__ == "__main__":
    sys.exit(main())
