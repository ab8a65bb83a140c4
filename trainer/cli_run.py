"""`ser-train train | cv | evaluate | export`: the commands of one run (trainer/run.py,
trainer/export.py), and the cv summaries a bundle records."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from serapp.corpora import CORPUS_NAMES, CorpusError, load_corpus, parse_data_arg
from trainer.cli_common import cache_dir, cache_options, load_corpora, subcommand
from trainer.config import ConfigError, load_config


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML", help="config file (e.g. trainer/configs/default.toml)")
    p.add_argument("--data", action="append", default=[], metavar="CORPUS=DIR",
                   help=f"a corpus and its folder, repeatable to train on several; corpora: {', '.join(CORPUS_NAMES)} "
                        "(manifest=FILE.csv)")
    p.add_argument("--data-root", metavar="DIR",
                   help="a folder holding the corpora the config lists (data.corpora), each in a folder named after it")
    p.add_argument("--out", metavar="DIR", help="run directory (default: runs/<command>-<config>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    p.add_argument("--overwrite", action="store_true",
                   help="train again where --out already holds a run (without it, such an --out is refused)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--epochs", type=int, help="shorthand for --set train.epochs=N")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="shorthand for --set train.device=...")
    cache_options(p)


def add_run_commands(sub) -> None:
    """`train`, `cv` and `evaluate`."""
    t = subcommand(sub, "train", "train one model (one fold, or all speakers for the shipped model)")
    _common(t)
    t.add_argument("--fold", default="all", help="fold name/number of the config's protocol, or 'all' (default)")
    t.add_argument("--cv-summary", action="append", metavar="SUMMARY.json",
                   help="a `ser-train cv` summary to record in the bundle (repeatable: EmoBox and leave-one-corpus-out)")
    t.set_defaults(handler=train)
    c = subcommand(sub, "cv", "cross-validate: every fold, a summary table and the robustness report")
    _common(c)
    c.add_argument("--folds", nargs="+", metavar="K", help="only these folds (e.g. 1 2)")
    c.add_argument("--no-robustness", action="store_true", help="skip the simulated-conditions report")
    c.set_defaults(handler=cv)
    e = subcommand(sub, "evaluate", "score a bundle on a corpus (the labels both share)")
    e.add_argument("--model", required=True, metavar="BUNDLE", help="the model bundle to score")
    e.add_argument("--data", required=True, metavar="CORPUS=DIR", help="a corpus by name and its folder")
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="compute device (default: auto)")
    e.add_argument("--format", default="text", choices=("text", "json"), help="output format (default: text)")
    e.add_argument("--cache-dir", metavar="DIR", help="decoded-audio cache (default ~/.cache/serapp)")
    e.set_defaults(handler=evaluate)


def add_export(sub) -> None:
    x = subcommand(sub, "export", "write a bundle (and optionally ONNX) from a run's checkpoint")
    x.add_argument("run", metavar="RUN_DIR|CHECKPOINT", help="a run directory (its checkpoint) or a checkpoint file")
    x.add_argument("--out", required=True, metavar="BUNDLE.safetensors", help="the bundle to write")
    x.add_argument("--onnx", metavar="FILE.onnx", help="also export the network (features in, logits out) to ONNX")
    x.add_argument("--last", action="store_true", help="the last epoch instead of the best validation epoch")
    x.add_argument("--cv-summary", action="append", metavar="SUMMARY.json",
                   help="a `ser-train cv` summary to record in the bundle (repeatable)")
    x.set_defaults(handler=export)


def _load(args):
    overrides = list(args.set)
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.device:
        overrides.append(f'train.device="{args.device}"')
    cfg = load_config(args.config, overrides)
    stem = Path(args.config).stem if args.config else "defaults"
    out = Path(args.out) if args.out else Path("runs") / f"{args.command}-{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if args.resume and not args.out:
        raise ConfigError("--resume needs --out DIR (the run to continue)")
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: use one")
    from trainer.run import check_run_dir

    check_run_dir(out, cfg, args.resume, args.overwrite)  # before any corpus is read
    corpora = load_corpora(args.data, cfg.corpora, args.data_root)
    return cfg, corpora, out, stem


def load_cv_summaries(paths) -> list[dict]:
    """`ser-train cv` summaries to record in a bundle; `ser-train encoder-table` figures given instead
    become the summary they make (trainer/encoder_render.py) here, before the run sees them."""
    if paths is None:
        return []
    out = []
    from trainer.encoder_render import as_cv_summary
    from trainer.summaries import check_cv_summary

    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        try:
            summary = json.loads(Path(path).read_text())
            if "loco" in summary and "protocol" not in summary:  # `ser-train encoder-table` figures
                summary = as_cv_summary(summary)
            check_cv_summary(summary)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorpusError(f"{path}: not a ser-train cv summary.json ({exc})") from None
        out.append(summary)
    return out


def train(args, argv: list[str]) -> None:
    from trainer import run

    cfg, corpus, out, _ = _load(args)
    summaries = load_cv_summaries(args.cv_summary)
    record = run.run_train(cfg, corpus, out, args.fold, args.resume, cache_dir(args), cv_summaries=summaries)
    msg = f"run written to {out}"
    if "test" in record:
        msg += f"; test UA {100 * record['test']['ua']:.1f}%  WA {100 * record['test']['wa']:.1f}% ({record['protocol']})"
    print(msg)


def cv(args, argv: list[str]) -> None:
    from trainer import run

    cfg, corpus, out, stem = _load(args)
    summary = run.run_cv(cfg, corpus, out, stem, args.resume, not args.no_robustness, cache_dir(args), args.folds)
    print((out / "summary.md").read_text() if (out / "summary.md").is_file() else json.dumps(summary))
    print(f"run written to {out}")


def evaluate(args, argv: list[str]) -> None:
    from trainer import run

    corpus = load_corpus(*parse_data_arg(args.data))
    m = run.run_evaluate(Path(args.model), corpus, args.device, cache_dir(args))
    if args.format == "json":
        print(json.dumps(m, indent=2))
    else:
        print(f"{m['model']} on {m['corpus']} ({m['n']} clips; labels: {', '.join(m['shared_labels'])})")
        if m["scoring"]["merged"]:
            print("  scored as: " + ", ".join(f"{a} counts as {b}" for a, b in m["scoring"]["merged"].items()))
        if m["model_only_labels"] or m["corpus_only_labels"]:
            print(f"  not shared, left out: model-only {m['model_only_labels'] or '-'}, corpus-only {m['corpus_only_labels'] or '-'}")
        print(f"  WA {100 * m['wa']:.1f}%  UA {100 * m['ua']:.1f}% (chance {100 * m['chance_ua']:.1f}%)  "
              f"macro-F1 {100 * m['macro_f1']:.1f}%")
        print("  recall: " + "  ".join(f"{k} {100 * v:.0f}%" for k, v in m["per_class_recall"].items()))


def export(args, argv: list[str]) -> None:
    from trainer.export import run_export

    path = run_export(Path(args.run), Path(args.out), Path(args.onnx) if args.onnx else None, args.last,
                      load_cv_summaries(args.cv_summary))
    print(f"bundle written to {path}" + (f" and ONNX to {args.onnx}" if args.onnx else ""))
