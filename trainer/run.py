"""One run at a time: a split trained by the trainer its model calls for, cross-validation over a
protocol's folds, a bundle evaluated on a corpus (`ser-train train | cv | evaluate`); a run's
folder checked before any corpus is read."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from serapp.bundle import load_bundle, save_bundle
from serapp.corpora import CORPUS_TITLES, Corpus, CorpusError
from serapp.files import write_text
from serapp.metrics import classification_metrics
from serapp.predictor import Predictor, resolve_device
from serapp.scoring import ScoringRule
from trainer import report
from trainer.cache import DEFAULT_CACHE_DIR, load_clips
from trainer.config import ConfigError, TrainConfig, check_same_config, dump_config, window_frames
from trainer.data import ClipSet, Data
from trainer.distributed import dist_context, log
from trainer.end_to_end import CHECKPOINT, train_network
from trainer.evaluation import evaluate, robustness_report
from trainer.folds import Split, full_training_split, make_splits
from trainer.frozen import train_frozen
from trainer.quantise import attach_int8
from trainer.summaries import brief_metrics, bundle_readout, cv_record
from trainer.training import TrainResult, bundle_meta, start


def train_split(cfg: TrainConfig, train: ClipSet, val: ClipSet, labels: list[str], run_dir: Path,
                resume: bool = False, stop_after_epochs: int | None = None, verbose: bool = True,
                cache_dir: Path | None = None, watched: ClipSet | None = None) -> TrainResult:
    """Train on `train`, keeping the epoch best on `val`'s UA, by the trainer the model calls for:
    a frozen pretrained encoder's head on the encoder's cached outputs (trainer/frozen.py,
    cached in `cache_dir`), any other network end to end (trainer/end_to_end.py, resumable, with
    `watched`, the test clips under cfg.watch_test, scored after every epoch into the history)."""
    begun = start(cfg, labels, verbose)
    if getattr(begun.model, "frozen_encoder", False):
        return train_frozen(cfg, begun, train, val, cache_dir)
    return train_network(cfg, begun, train, val, run_dir, resume, stop_after_epochs, watched)


def train_one(cfg: TrainConfig, data: Data, split: Split, run_dir: Path, resume: bool = False,
              robustness: bool = False, stop_after_epochs: int | None = None, data_note: str = "",
              cv_summaries: list[dict] | None = None) -> dict:
    """Train on a split; write the run directory; return the fold record (test metrics etc.)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    labels = data.model_labels(split.train)
    cfg = dataclasses.replace(cfg, labels=labels)
    rank, _ = dist_context()
    _warn_small_validation(split)
    parts = ("train", "val", "test")
    if rank == 0:
        dump_config(cfg, run_dir / "config.json")
        described = ({p: sorted(split.speakers(p)) for p in parts} if len(data.corpora) == 1
                     else {p: split.speakers_by_corpus(p) for p in parts})
        report.write_json(run_dir / "split.json", {**described, "protocol": split.protocol_note})
    t0 = time.perf_counter()
    train, val = data.clipset(split.train, labels), data.clipset(split.val)
    for part, records, clips in (("training", split.train, train), ("validation", split.val, val)):
        if not len(clips):  # all failed to decode: nothing to learn from or choose by
            raise CorpusError(f"{split.name}: none of its {len(records)} {part} clips could be decoded; "
                              "see the 'skipped (cannot decode)' lines above")
    result = train_split(cfg, train, val, labels, run_dir, resume=resume, stop_after_epochs=stop_after_epochs,
                         cache_dir=data.cache_dir, watched=data.clipset(split.test) if cfg.watch_test else None)
    record = {"fold": split.name, "test_speakers": sorted(split.speakers("test"), key=str), "protocol": split.protocol_note,
              "best_epoch": result.best_epoch, "val": brief_metrics(result.val_metrics),
              "train_seconds": round(time.perf_counter() - t0, 1)}
    if split.held_out:
        record["test_corpus"] = split.held_out
    predictor = Predictor(result.model, result.meta, next(result.model.parameters()).device)
    test = data.clipset(split.test)
    if len(test):
        record["test"] = evaluate(predictor, test)
        if robustness:
            record["robustness"] = robustness_report(predictor, test, cfg.seed)
    trained_on = {r.corpus for r in split.train}
    corpora = [{**d, "train_speakers": split.speakers_by_corpus("train").get(d["name"], []),
                "val_speakers": split.speakers_by_corpus("val").get(d["name"], [])}
               for d in data.describe() if d["name"] in trained_on]
    training = {"data": data_note or data.note(trained_on), "licence": "; ".join(d["licence"] for d in corpora),
                "corpora": corpora, "protocol": split.protocol_note, "split": split.name,
                "best_epoch": result.best_epoch, "val_metrics": brief_metrics(result.val_metrics),
                "test_metrics": brief_metrics(record.get("test", {}))}
    if len(corpora) == 1:  # the flat form older readers know
        training.update(train_speakers=corpora[0]["train_speakers"], val_speakers=corpora[0]["val_speakers"])
    if split.held_out:
        training["test_corpus"] = split.held_out
    training.update(cv_record(cv_summaries))
    if getattr(result.model, "licence", ""):  # a pretrained part inside the bundle, with its own notice
        training["encoder_licence"] = result.model.licence
    if rank == 0:
        attach_int8(result.model, window_frames(cfg), log=log)
    readout = bundle_readout(result.meta.readout, "validation speakers", cv_summaries, training)
    meta = dataclasses.replace(bundle_meta(cfg, labels, dict(result.model.hparams), training), readout=readout)
    if rank == 0:
        save_bundle(run_dir / "model.safetensors", result.model.cpu(), meta)
        report.write_json(run_dir / "history.json", result.history)
        report.write_json(run_dir / "metrics.json", record)
        _plots(run_dir, result.history, record)
    return record


MIN_VAL_CLIPS, MIN_VAL_SPEAKERS = 20, 2


def _warn_small_validation(split: Split) -> None:
    """Early stopping and the best epoch rest on the validation set: say when it is too small
    to carry them."""
    clips = len(split.val)
    speakers = {(r.corpus, r.speaker) for r in split.val}
    if clips < MIN_VAL_CLIPS or len(speakers) < MIN_VAL_SPEAKERS:
        log(f"warning: {split.name}: the validation set has {clips} clip(s) from {len(speakers)} speaker(s) "
             f"(fewer than {MIN_VAL_CLIPS} clips or {MIN_VAL_SPEAKERS} speakers): the best epoch and early stopping "
             "rest on it; give it more (data.val_speakers, data.val_min_clips)")


def _plots(run_dir: Path, history: list[dict], record: dict) -> None:
    try:
        report.plot_curves(run_dir / "curves.png", history, f"{run_dir.name}: training curves")
        if "test" in record and "confusion" in record["test"]:
            t = record["test"]
            report.plot_confusion(run_dir / "confusion.png", t["confusion"], t["labels"],
                                  f"{run_dir.name}: UA {100 * t['ua']:.1f}%, WA {100 * t['wa']:.1f}% ({record['protocol']})")
    except ImportError:
        log("matplotlib is not installed: PNG reports skipped (pip install 'serapp[train]')")


def _select_split(cfg: TrainConfig, corpora: list[Corpus], fold: str) -> Split:
    if fold == "all":
        return full_training_split(corpora, cfg.val_speakers, cfg.seed, cfg.val_keep_speakers, cfg.val_min_clips)
    splits = make_splits(corpora, cfg.protocol, cfg.val_speakers, cfg.seed, cfg.speakers_per_fold, cfg.n_folds,
                         cfg.val_keep_speakers, cfg.val_min_clips, cfg.val_fraction)
    names = [s.name for s in splits]
    wanted = fold if fold in names or fold.startswith("fold") else f"fold{fold}"
    if wanted not in names:
        raise CorpusError(f"no fold {fold!r} in protocol {cfg.protocol} (folds: {', '.join(names)})")
    return splits[names.index(wanted)]


def run_train(cfg: TrainConfig, corpora: Corpus | list[Corpus], out: Path, fold: str = "all", resume: bool = False,
              cache_dir: Path | None = DEFAULT_CACHE_DIR, data_note: str = "", cv_summaries: list[dict] | None = None) -> dict:
    data = Data(corpora, cfg, cache_dir)
    for c in data.corpora:
        log(c.summary())
    split = _select_split(cfg, data.corpora, fold)
    return train_one(cfg, data, split, out, resume=resume, data_note=data_note, cv_summaries=cv_summaries)


def check_run_dir(out: Path, cfg, resume: bool, overwrite: bool) -> None:
    """A run's folder: --resume needs a run there, trained with this config (its epochs may
    grow); without --resume or --overwrite, a run there is never written over."""
    marks = (CHECKPOINT, "metrics.json", "config.json")  # a run begun, stopped, or finished
    runs = [d for d in [out, *(sorted(out.iterdir()) if out.is_dir() else [])]
            if d.is_dir() and any((d / m).is_file() for m in marks)]
    if resume:
        if not runs:
            raise ConfigError(f"--resume: {out} holds no run to continue; leave out --resume to start one there")
        for d in runs:
            check_same_config(d, cfg, allow=("epochs", "patience"))
    elif runs and not overwrite:
        raise ConfigError(f"{out} already holds a run ({runs[0]}): --resume continues it, --overwrite trains it "
                          "again from the start, or choose another --out")
    check_writable(out)


def check_writable(out: Path) -> None:
    """--out (or the folder it would be made in) takes a file, tried with a few bytes written and
    synced and then removed: a read-only or full disk is said before any corpus is decoded."""
    import tempfile

    where = out
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        if not where.is_dir():
            raise NotADirectoryError(20, "not a folder")
        with tempfile.TemporaryFile(dir=where) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there ({where}: {exc.strerror or exc})") from None


def finished_fold(fold_dir: Path) -> dict | None:
    """A fold's record if its run finished (test figures written), else None."""
    path = fold_dir / "metrics.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    return record if "test" in record else None


def run_cv(cfg: TrainConfig, corpora: Corpus | list[Corpus], out: Path, config_name: str, resume: bool = False,
           robustness: bool = True, cache_dir: Path | None = DEFAULT_CACHE_DIR, folds: list[str] | None = None,
           on_fold=None) -> dict:
    """Every fold (or those named), one after another; `on_fold(records)` hears of each as it ends."""
    data = Data(corpora, cfg, cache_dir)
    for c in data.corpora:
        log(c.summary())
    splits = make_splits(data.corpora, cfg.protocol, cfg.val_speakers, cfg.seed, cfg.speakers_per_fold,
                         cfg.n_folds, cfg.val_keep_speakers, cfg.val_min_clips, cfg.val_fraction)
    if folds:
        unknown = [f for f in folds if not any(f in (s.name, s.name.removeprefix("fold")) for s in splits)]
        if unknown:
            raise CorpusError(f"no fold {', '.join(unknown)} in protocol {cfg.protocol} "
                              f"(folds: {', '.join(s.name for s in splits)})")
        splits = [s for s in splits if s.name in folds or s.name.removeprefix("fold") in folds]
    if robustness and cfg.protocol == "loco":
        log("robustness report skipped: it is measured on speaker-independent folds (protocol emobox or speakers)")
        robustness = False
    records = []
    for split in splits:
        fold_dir = out / split.name
        done = finished_fold(fold_dir) if resume else None
        if done is not None:
            records.append(done)
            log(f"{split.name}: already done, kept")
        else:
            records.append(train_one(cfg, data, split, fold_dir, resume=resume, robustness=robustness))
            t = records[-1]["test"]
            log(f"{split.name}: test UA {100 * t['ua']:.1f}%  WA {100 * t['wa']:.1f}%")
        if on_fold is not None:
            on_fold(records)
    note = "cross-corpus (leave one corpus out)" if cfg.protocol == "loco" else (splits[0].protocol_note if splits else "")
    summary = report.summarize_cv(records, note, config_name, data.note())
    if dist_context()[0] == 0:
        report.write_json(out / "summary.json", summary)
        write_text(out / "summary.md", report.cv_markdown(summary))
    return summary


def run_evaluate(bundle_path: Path, corpus: Corpus, device: str = "auto", cache_dir: Path | None = DEFAULT_CACHE_DIR) -> dict:
    """Score a bundle on a corpus by the one scoring rule (argmax over the corpus' labels)."""
    dev = resolve_device(device)
    model, meta = load_bundle(bundle_path, dev)
    rule = ScoringRule(meta.labels, corpus.labels)
    if not rule.labels:
        raise CorpusError(f"{corpus.root}: the corpus has none of the model's labels ({', '.join(meta.labels)})")
    records = [r for r in corpus.records if r.label in rule.labels]
    clips, failures = load_clips(records, meta.sample_rate, meta.trim_top_db, cache_dir, log=log,
                                 desc=f"{CORPUS_TITLES.get(corpus.name, corpus.name)} ({corpus.root})")
    predictor = Predictor(model, meta, dev, bundle_path)
    true, pred = [], []
    for r, clip in zip(records, clips):
        if clip is None:
            continue
        true.append(rule.labels.index(r.label))
        pred.append(rule.choose(predictor.predict_prepared(clip)))
    metrics = classification_metrics(true, pred, rule.labels)
    metrics.update(model=str(bundle_path), corpus=corpus.name, shared_labels=rule.labels, scoring=rule.describe(),
                   chance_ua=1.0 / len(rule.labels),
                   model_only_labels=[x for x in meta.labels if x not in corpus.labels and x not in rule.merged],
                   corpus_only_labels=rule.unscorable, skipped_files=failures)
    return metrics
