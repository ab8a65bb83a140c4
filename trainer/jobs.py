"""Many runs, one after another or several at once: each in its own spawned worker process with its
share of the CPU threads and its own log, in stages whose figures are read as each stage's last
fold ends (`ser-train zoo`, `zoo --emovo`)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from trainer.config import TrainConfig, check_same_config
from trainer.run import finished_fold, run_cv


def share_threads(cfg: TrainConfig, jobs: int) -> TrainConfig:
    """A run's config for one of `jobs` workers: its share of the threads (where a run runs is no
    part of its recipe)."""
    return dataclasses.replace(cfg, threads=max(1, (cfg.threads or os.cpu_count() or 1) // jobs))


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def one_fold(cfg: TrainConfig, corpora: list, where: Path, name: str, fold: str, cache_dir) -> None:
    """One fold of a stage's run, trained (or resumed) in a worker; the stage then finds it done."""
    check_same_config(where / fold, cfg)
    run_cv(cfg, corpora, where, name, resume=True, robustness=False, cache_dir=cache_dir, folds=[fold])


def _in_worker(log: Path, task, *args):
    """A task in a worker process, its progress into its own log (several would interleave)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", buffering=1) as stream:
        sys.stderr = stream
        return task(*args)


def _config_of(key: str) -> str:
    """The config a task belongs to: a task is "NAME" or "NAME PROTOCOL FOLD"."""
    return key.split(" ")[0]


def run_tasks(tasks: dict[str, tuple], jobs: int, out: Path, on_done, what: dict[str, str] | None = None) -> None:
    """Run {name: (task, *args)} one after another, or `jobs` at a time in spawned worker processes
    (a fork would copy torch's running thread pool) logging to out/NAME/train.log; on_done(name,
    result) runs here as each ends. A failure stops the tasks not yet started and is raised.
    `what[name]` says in the log what a task does. A name may be "NAME FOLD": its log is NAME's."""
    def title(key: str) -> str:
        name = _config_of(key)
        return f"{key}: {what[name]}" if what and name in what else key

    if jobs <= 1:
        for name, (task, *args) in tasks.items():
            _log(f"== {title(name)}")
            on_done(name, task(*args))
        return
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {}
        for name, (task, *args) in tasks.items():
            log = out / _config_of(name) / "train.log"
            futures[pool.submit(_in_worker, log, task, *args)] = name
            _log(f"== {title(name)}: queued for a worker (its log: {log})")
        for future in as_completed(futures):
            on_done(futures[future], future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


def run_stage(stage, folds_of, args: dict[str, tuple], jobs: int, out: Path, cache_dir, on_done,
               what: dict[str, str] | None = None) -> None:
    """`stage(*args[name])` for each config, its figures to on_done(name, part). With jobs > 1, the
    runs it reads train first, one fold per worker (`folds_of(*args[name])`), so a few configs
    with many folds still keep every worker busy; a config's figures are read here as soon as
    its last fold ends (its runs are all done then, so `stage` only reads them)."""
    if jobs <= 1:
        run_tasks({n: (stage, *a) for n, a in args.items()}, 1, out, on_done, what)
        return
    # A finished fold needs no worker: the stage reads it as it would without workers.
    runs = {n: [(cfg, corpora, where, fold) for cfg, corpora, where, fold in folds_of(*a)
                if finished_fold(where / fold) is None] for n, a in args.items()}
    left = {n: len(r) for n, r in runs.items()}

    def fold_done(key: str, _) -> None:
        name = _config_of(key)
        left[name] -= 1
        if not left[name]:
            on_done(name, stage(*args[name]))

    for name in [n for n, k in left.items() if not k]:
        on_done(name, stage(*args[name]))
    tasks = {f"{n} {cfg.protocol} {fold}": (one_fold, cfg, corpora, where, n, fold, cache_dir)
             for n, rs in runs.items() for cfg, corpora, where, fold in rs}
    run_tasks(tasks, jobs, out, fold_done, what)
