"""Training throughput: audio-cache build time (cold and warm), seconds per epoch, clips per second.

    python benchmarks/bench_training.py --data ravdess=../shared/data/ravdess \
        [--config trainer/configs/default.toml] [--epochs 2] [--threads 2]
    python benchmarks/bench_training.py --config trainer/configs/multicorpus.toml --data-root ../shared/data

The first fold of the config's protocol is trained for --epochs epochs in a temporary folder;
an epoch's time includes its validation pass.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from trainer.cache import load_clips
from trainer.cli_common import load_corpora
from trainer.config import load_config
from trainer.data import Data
from trainer.folds import make_splits
from trainer.run import train_one

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", default=[], help="CORPUS=DIR (repeatable)")
    ap.add_argument("--data-root", help="folder holding the corpora the config lists")
    ap.add_argument("--config", default=str(ROOT / "trainer/configs/default.toml"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    cfg = load_config(args.config, [f"train.epochs={args.epochs}", f"train.threads={args.threads}", "train.patience=1000"])
    corpora = load_corpora(args.data, cfg.corpora, args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cold = warm = 0.0
        for corpus in corpora:
            t0 = time.perf_counter()
            load_clips(corpus.records, cfg.frontend.sample_rate, cfg.trim_top_db, cache, log=lambda *a, **k: None)
            cold += time.perf_counter() - t0
            t0 = time.perf_counter()
            load_clips(corpus.records, cfg.frontend.sample_rate, cfg.trim_top_db, cache, log=lambda *a, **k: None)
            warm += time.perf_counter() - t0
            print(f"corpus: {corpus.summary()}")
        print(f"audio cache: build {cold:.2f} s (decode, resample, trim), load {warm:.2f} s")
        data = Data(corpora, cfg, cache)
        split = make_splits(data.corpora, cfg.protocol, cfg.val_speakers, cfg.seed, cfg.speakers_per_fold,
                            cfg.n_folds, cfg.val_keep_speakers, cfg.val_min_clips)[0]
        train_one(cfg, data, split, Path(tmp) / "run")
        history = json.loads((Path(tmp) / "run" / "history.json").read_text())
    n_train = history[0]["train_clips"]
    print(f"config: {args.config} ({cfg.architecture}, window {cfg.window_s} s, sampling {cfg.sampling}), "
          f"torch threads {torch.get_num_threads()}, fold {split.name}")
    print(f"{'epoch':>5} {'seconds':>8} {'clips/s':>8}   (train {n_train} clips an epoch, "
          f"plus validation on {len(split.val)})")
    for h in history:
        print(f"{h['epoch']:>5} {h['seconds']:>8.2f} {n_train / h['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
