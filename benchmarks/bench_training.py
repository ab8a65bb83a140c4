"""Training throughput: audio-cache build time (cold and warm), seconds per epoch, clips per second.

    python benchmarks/bench_training.py --data ravdess=../shared/data/ravdess \
        [--config trainer/configs/default.toml] [--epochs 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from serapp.corpora import load_corpus, parse_data_arg
from trainer.cache import load_clips
from trainer.config import load_config
from trainer.folds import make_splits
from trainer.run import Data, train_one

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--config", default=str(ROOT / "trainer/configs/default.toml"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    cfg = load_config(args.config, [f"train.epochs={args.epochs}", f"train.threads={args.threads}", "train.patience=1000"])
    corpus = load_corpus(*parse_data_arg(args.data))
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        t0 = time.perf_counter()
        load_clips(corpus.records, cfg.frontend.sample_rate, cfg.trim_top_db, cache)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_clips(corpus.records, cfg.frontend.sample_rate, cfg.trim_top_db, cache)
        warm = time.perf_counter() - t0
        print(f"corpus: {corpus.summary()}")
        print(f"audio cache: build {cold:.2f} s (decode, resample, trim), load {warm:.2f} s")
        data = Data(corpus, cfg, cache)
        split = make_splits(corpus, cfg.protocol, cfg.val_speakers, cfg.seed, cfg.speakers_per_fold, cfg.n_folds)[0]
        train_one(cfg, data, split, Path(tmp) / "run")
        history = json.loads((Path(tmp) / "run" / "history.json").read_text())
    n_train = history[0]["train_clips"]
    print(f"config: {args.config} ({cfg.architecture}, window {cfg.window_s} s), torch threads {torch.get_num_threads()}")
    print(f"{'epoch':>5} {'seconds':>8} {'clips/s':>8}   (train {n_train} clips, plus validation on {len(split.val)})")
    for h in history:
        print(f"{h['epoch']:>5} {h['seconds']:>8.2f} {n_train / h['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
