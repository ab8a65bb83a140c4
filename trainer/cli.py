"""`ser-train train | cv | evaluate | export`.

Exit status: 0 done, 1 a runtime failure, 2 a usage error (bad arguments, config, corpus or
folder: one line naming it), 130 interrupted (the checkpoint is kept; rerun with --resume).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from serapp.corpora import CORPUS_NAMES, CorpusError, load_corpus, parse_data_arg
from serapp.errors import SerappError
from trainer.config import ConfigError, load_config
from trainer.loop import TrainingInterrupted

CONFIGS = Path(__file__).resolve().parent / "configs"
RESULTS_DOC = "docs/results.md"  # the full results; the README links it and shows the headline figures


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
    _cache_options(p)


def _cache_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", metavar="DIR", help="decoded audio and encoder outputs (default ~/.cache/serapp)")
    p.add_argument("--no-cache", action="store_true", help="decode (and encode) every file on every run")


EXAMPLES = {
    "train": "ser-train train --config trainer/configs/whisper.toml --data-root ../shared/data --fold all \\\n"
             "    --set model.encoder_dir='\"../shared/models/whisper-base\"' --out runs/whisper-final",
    "cv": "ser-train cv --config trainer/configs/default.toml --data ravdess=../shared/data/ravdess --out runs/cv",
    "evaluate": "ser-train evaluate --model assets/default.safetensors --data emovo=../shared/data/emovo",
    "crosscorpus": "ser-train crosscorpus --data-root ../shared/data --emobox-folds 1 3",
    "encoder-table": "ser-train encoder-table --data-root ../shared/data",
    "zoo": "ser-train zoo --data-root ../shared/data --folds 1 2 --random-split --best 2 --jobs 2",
    "export": "ser-train export runs/final --out my.safetensors --onnx my.onnx",
}


def _sub(sub, name: str, help: str, **kw) -> argparse.ArgumentParser:
    """A subcommand whose help ends with an example."""
    return sub.add_parser(name, help=help, description=kw.pop("description", help[:1].upper() + help[1:] + "."),
                          epilog=f"example:\n  {EXAMPLES[name]}", formatter_class=argparse.RawDescriptionHelpFormatter,
                          **kw)


def _table_inputs(p: argparse.ArgumentParser) -> None:
    """What the cross-corpus table commands read: the corpora, and the EmoBox folds to run."""
    p.add_argument("--data", action="append", default=[], metavar="CORPUS=DIR", help="a corpus (repeatable)")
    p.add_argument("--data-root", metavar="DIR", help="a folder holding the corpora the recipe config lists")
    p.add_argument("--emobox-folds", nargs="*", default=["1", "2", "3", "4", "5", "6"], metavar="K",
                   help="EmoBox RAVDESS folds to run with the recipe (default: all 6; none: skip)")


def _table_outputs(p: argparse.ArgumentParser, out: str, out_help: str, results: str, set_help: str) -> None:
    """What every README-table command shares: its runs, its figures, the README, the cache."""
    p.add_argument("--out", default=out, metavar="DIR", help=out_help)
    p.add_argument("--results", default=results, metavar="JSON",
                   help=f"the figures the table is drawn from, written here (default: {results})")
    p.add_argument("--readme", default=RESULTS_DOC, metavar="FILE",
                   help=f"the document the table goes into, between markers (default: {RESULTS_DOC})")
    p.add_argument("--render-only", action="store_true", help="redraw the table from --results; no training")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help=set_help)
    _cache_options(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ser-train", description="Train and evaluate serapp models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    t = _sub(sub, "train", "train one model (one fold, or all speakers for the shipped model)")
    _common(t)
    t.add_argument("--fold", default="all", help="fold name/number of the config's protocol, or 'all' (default)")
    t.add_argument("--cv-summary", action="append", metavar="SUMMARY.json",
                   help="a `ser-train cv` summary to record in the bundle (repeatable: EmoBox and leave-one-corpus-out)")
    c = _sub(sub, "cv", "cross-validate: every fold, a summary table and the robustness report")
    _common(c)
    c.add_argument("--folds", nargs="+", metavar="K", help="only these folds (e.g. 1 2)")
    c.add_argument("--no-robustness", action="store_true", help="skip the simulated-conditions report")
    e = _sub(sub, "evaluate", "score a bundle on a corpus (the labels both share)")
    e.add_argument("--model", required=True, metavar="BUNDLE", help="the model bundle to score")
    e.add_argument("--data", required=True, metavar="CORPUS=DIR", help="a corpus by name and its folder")
    e.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                   help="compute device (default: auto)")
    e.add_argument("--format", default="text", choices=("text", "json"), help="output format (default: text)")
    e.add_argument("--cache-dir", metavar="DIR", help="decoded-audio cache (default ~/.cache/serapp)")
    k = _sub(sub, "crosscorpus", "the cross-corpus table: train both recipes leave-one-corpus-out, "
                                 "the EmoBox folds, and write the figures and the table in docs/results.md")
    _table_inputs(k)
    k.add_argument("--baseline", default=str(CONFIGS / "default.toml"), metavar="TOML",
                   help="the RAVDESS-only recipe (default: the default config)")
    k.add_argument("--config", default=str(CONFIGS / "multicorpus.toml"), metavar="TOML",
                   help="the multi-corpus recipe (default: the multicorpus config)")
    k.add_argument("--reference", default="docs/results/ravdess-only-emobox.json", metavar="JSON",
                   help="the RAVDESS-only recipe's EmoBox figures shown beside the new ones")
    _table_outputs(k, "runs/crosscorpus", "run directories (kept; rerun resumes)", "docs/results/crosscorpus.json",
                   "applied to both recipes, e.g. --set train.device=\"cuda\" (repeatable)")
    w = _sub(sub, "encoder-table", "the encoder recipe leave-one-corpus-out, cold and adapted to each "
                                   "voice, clip and window UA, and the EmoBox folds: the tables in docs/results.md")
    _table_inputs(w)
    w.add_argument("--config", default=str(CONFIGS / "whisper.toml"), metavar="TOML",
                   help="the encoder recipe (default: the whisper config)")
    w.add_argument("--encoder-dir", default="../shared/models/whisper-base", metavar="DIR",
                   help="the folder holding the encoder's published weights (encoder.safetensors)")
    w.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="N",
                   help="seeds: each draws the validation speakers and trains every head again (default: 0 1 2)")
    _table_outputs(w, "runs/encoder-table", "each fold's figures (kept; rerun resumes)", "docs/results/encoder.json",
                   "a config override (repeatable)")
    z = _sub(sub, "zoo", "every architecture on the same footing: the model-zoo table in docs/results.md")
    z.add_argument("--data", action="append", default=[], metavar="CORPUS=DIR", help="RAVDESS (and, for --cross-corpus, the others)")
    z.add_argument("--data-root", metavar="DIR", help="a folder holding the corpora by name")
    z.add_argument("--configs", nargs="+", metavar="NAME", help="config names in trainer/configs (default: all but "
                   "multicorpus; speech_encoder only with --set model.encoder_dir=...)")
    z.add_argument("--folds", nargs="+", default=["1", "2"], metavar="K", help="EmoBox folds (default: 1 2)")
    z.add_argument("--random-split", action="store_true",
                   help="also one random 80/20 split (speaker-dependent) for each config whose origin reported "
                        "a random-split figure, beside it")
    z.add_argument("--best", type=int, default=0, metavar="N",
                   help="then give the default and the N configs with the best validation UA all six EmoBox folds "
                        "and the leave-one-corpus-out mean")
    z.add_argument("--cross-corpus", nargs="*", default=[], metavar="NAME",
                   help="configs also trained leave-one-corpus-out (the multicorpus recipe with their network)")
    z.add_argument("--emovo", action="store_true",
                   help="also TIM-Net and CkTIM-net with 1, 3 and 6 blocks, and the default recipe, on EMOVO (their "
                        "origin's corpus): its random 70/10/20 split and leave one speaker out (EMOVO from --data "
                        "emovo=DIR or --data-root)")
    z.add_argument("--encoder-dir", default="../shared/models/whisper-base", metavar="DIR",
                   help="with --emovo: the Whisper encoder's folder, for the default recipe's row (left out if absent)")
    z.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N runs (one fold each) at once, each in its own process with its share of "
                        "train.threads (and its config's log in OUT/NAME/train.log); small models use two threads "
                        "poorly (default: 1)")
    z.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="applied to every config")
    z.add_argument("--crosscorpus-out", default="runs/crosscorpus", metavar="DIR",
                   help="`ser-train crosscorpus` runs: a --cross-corpus model with its recipe shares them")
    z.add_argument("--out", default="runs/zoo", metavar="DIR", help="run directories (kept; rerun resumes)")
    z.add_argument("--results", default="docs/results/zoo.json", metavar="JSON",
                   help="the figures the table is drawn from, written here")
    z.add_argument("--readme", default=RESULTS_DOC, metavar="FILE",
                   help=f"the document the table goes into, between markers (default: {RESULTS_DOC})")
    z.add_argument("--render-only", action="store_true", help="redraw the table from --results; no training")
    z.add_argument("--remeasure", action="store_true",
                   help="measure every model's CPU time again (by default a network measured by an earlier run "
                        "keeps the figure stored in --results: on a shared machine it moves by tens of percent)")
    _cache_options(z)
    x = _sub(sub, "export", "write a bundle (and optionally ONNX) from a run's checkpoint")
    x.add_argument("run", metavar="RUN_DIR|CHECKPOINT", help="a run directory (its checkpoint) or a checkpoint file")
    x.add_argument("--out", required=True, metavar="BUNDLE.safetensors", help="the bundle to write")
    x.add_argument("--onnx", metavar="FILE.onnx", help="also export the network (features in, logits out) to ONNX")
    x.add_argument("--last", action="store_true", help="the last epoch instead of the best validation epoch")
    x.add_argument("--cv-summary", action="append", metavar="SUMMARY.json",
                   help="a `ser-train cv` summary to record in the bundle (repeatable)")
    return parser


def _cache_dir(args):
    from trainer.cache import DEFAULT_CACHE_DIR

    if getattr(args, "no_cache", False):
        return None
    return Path(args.cache_dir) if args.cache_dir else DEFAULT_CACHE_DIR


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


def load_corpora(data_args: list[str], listed: list[str], data_root: str | None) -> list:
    """The corpora of a run: each --data NAME=DIR, then those the config lists, found under --data-root."""
    given = dict(parse_data_arg(text) for text in data_args)
    if len(given) != len(data_args):
        raise CorpusError("a corpus is named twice in --data")
    wanted = list(given) + [name for name in listed if name not in given]
    if not wanted:
        raise CorpusError("no data: give --data CORPUS=DIR (repeatable), or a config listing data.corpora with --data-root DIR")
    corpora = []
    for name in wanted:
        where = given.get(name)
        if where is None:
            if data_root is None:
                raise CorpusError(f"the config lists corpus {name!r}: give --data-root DIR (holding {name}/) "
                                  f"or --data {name}=DIR")
            where = str(Path(data_root) / name)
        corpora.append(load_corpus(name, where))
    return corpora


def _all_corpora(args, listed: list[str]) -> list:
    """A table's corpora: those given with --data where it names more than RAVDESS, else the
    recipe's list, found under --data-root."""
    others_given = any(parse_data_arg(d)[0] != "ravdess" for d in args.data)
    return load_corpora(args.data, [] if others_given else listed, args.data_root)


def _figures(args, argv: list[str], compute, write_results) -> dict:
    """A table's figures: read back from --results (--render-only), or computed, stamped with the
    command that made them and written there. `compute(save)` may save figures so far as it goes."""
    results_path = Path(args.results)
    if args.render_only:
        if not results_path.is_file():
            raise CorpusError(f"{results_path}: no results to render (run without --render-only first)")
        return json.loads(results_path.read_text())

    def save(results: dict) -> None:
        results["command"] = "ser-train " + shlex.join(argv)
        write_results(results_path, results)

    results = compute(save)
    save(results)
    return results


def _publish(args, markdown: str, *markers: str) -> None:
    from trainer import crosscorpus

    crosscorpus.update_readme(Path(args.readme), markdown, *markers)
    print(markdown)
    print(f"figures in {args.results}; table written into {args.readme}")


def _crosscorpus(args, argv: list[str]) -> None:
    from trainer import crosscorpus

    def compute(save) -> dict:
        baseline, recipe = load_config(args.baseline, args.set), load_config(args.config, args.set)
        corpora = _all_corpora(args, recipe.corpora)
        ref = Path(args.reference)
        reference = json.loads(ref.read_text()) if ref.is_file() else None

        def progress(results: dict) -> None:  # the figures so far, for --render-only while it trains
            save({**results, "reference_emobox": reference})

        results = crosscorpus.run_crosscorpus(baseline, recipe, corpora, Path(args.out), args.emobox_folds,
                                              _cache_dir(args), (Path(args.baseline).name, Path(args.config).name),
                                              progress)
        return {**results, "reference_emobox": reference}

    results = _figures(args, argv, compute, crosscorpus.write_results)
    _publish(args, crosscorpus.render_markdown(results, results.get("reference_emobox")))


def _encoder_table(args, argv: list[str]) -> None:
    from trainer import encoder_render, encoder_table

    def compute(save) -> dict:
        cfg = load_config(args.config, [*args.set, f"model.encoder_dir={json.dumps(args.encoder_dir)}"])
        corpora = _all_corpora(args, cfg.corpora)
        return encoder_table.run_encoder_table(cfg, corpora, Path(args.out), _cache_dir(args), args.emobox_folds,
                                               save, seeds=args.seeds)

    from trainer.crosscorpus import write_results

    results = _figures(args, argv, compute, write_results)
    encoder_render.reliability_diagrams(results, Path(args.results).parent)
    _publish(args, encoder_render.render_markdown(results), encoder_render.START, encoder_render.END)


def _zoo(args, argv: list[str]) -> None:
    from trainer import zoo
    from trainer.costs import CostBook

    def compute(save) -> dict:
        names = args.configs or sorted(p.stem for p in CONFIGS.glob("*.toml")
                                       if p.stem not in ("multicorpus", "speech_encoder", "whisper"))
        unknown = [n for n in names if not (CONFIGS / f"{n}.toml").is_file()]
        if unknown:
            raise CorpusError(f"no config {', '.join(unknown)} in {CONFIGS}")
        configs = {n: load_config(CONFIGS / f"{n}.toml", args.set) for n in names}
        mc = load_config(CONFIGS / "multicorpus.toml", args.set)
        corpora = load_corpora(args.data, ["ravdess"], args.data_root)
        missing = [n for n in args.cross_corpus if n not in configs]
        if missing:
            raise CorpusError(f"--cross-corpus {', '.join(missing)}: not among the configs run")
        others = [n for n in configs if n != zoo.REFERENCE]
        if not 0 <= args.best <= len(others):
            raise ConfigError(f"--best {args.best}: choose from 0 to {len(others)} (the configs run besides "
                              f"{zoo.REFERENCE})")
        if not 1 <= args.jobs <= 64:
            raise ConfigError(f"--jobs {args.jobs}: choose from 1 to 64")
        everything = _all_corpora(args, mc.corpora) if args.cross_corpus or args.best else None
        book = CostBook() if args.remeasure else CostBook.kept_in(Path(args.results))

        def save_costs(results: dict) -> None:
            save({**results, "costs": book.entries})

        results = zoo.run_zoo(configs, corpora, Path(args.out), args.folds, _cache_dir(args), args.random_split,
                              args.cross_corpus, args.best, mc, everything, save_costs,
                              Path(args.crosscorpus_out) / "loco", args.jobs, book)
        if not args.configs:
            results["not_run"] = {"speech_encoder": zoo.ENCODER_NOT_RUN}
        if args.emovo:
            results["emovo"] = _zoo_emovo(args, corpora, lambda emo: save_costs({**results, "emovo": emo}), book)
        return {**results, "costs": book.entries}

    results = _figures(args, argv, compute, zoo.write_results)
    _publish(args, zoo.render_markdown(results), zoo.START, zoo.END)


def _zoo_emovo(args, corpora: list, progress, book) -> dict:
    from trainer import zoo_emovo

    emovo = next((c for c in corpora if c.name == "emovo"), None) or load_corpora([], ["emovo"], args.data_root)[0]
    encoder = Path(args.encoder_dir)
    configs = zoo_emovo.variants(CONFIGS, args.set, encoder if (encoder / "encoder.safetensors").is_file() else None)
    return zoo_emovo.run_emovo(configs, emovo, Path(args.out) / "emovo", _cache_dir(args), args.jobs, progress, book)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from trainer import run

    try:
        if args.command == "train":
            cfg, corpus, out, _ = _load(args)
            summaries = run.load_cv_summaries(args.cv_summary)
            record = run.run_train(cfg, corpus, out, args.fold, args.resume, _cache_dir(args), cv_summaries=summaries)
            msg = f"run written to {out}"
            if "test" in record:
                msg += f"; test UA {100 * record['test']['ua']:.1f}%  WA {100 * record['test']['wa']:.1f}% ({record['protocol']})"
            print(msg)
        elif args.command == "cv":
            cfg, corpus, out, stem = _load(args)
            summary = run.run_cv(cfg, corpus, out, stem, args.resume, not args.no_robustness, _cache_dir(args), args.folds)
            print((out / "summary.md").read_text() if (out / "summary.md").is_file() else json.dumps(summary))
            print(f"run written to {out}")
        elif args.command == "evaluate":
            corpus = load_corpus(*parse_data_arg(args.data))
            m = run.run_evaluate(Path(args.model), corpus, args.device, _cache_dir(args))
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
        elif args.command == "crosscorpus":
            _crosscorpus(args, sys.argv[1:] if argv is None else list(argv))
        elif args.command == "encoder-table":
            _encoder_table(args, sys.argv[1:] if argv is None else list(argv))
        elif args.command == "zoo":
            _zoo(args, sys.argv[1:] if argv is None else list(argv))
        elif args.command == "export":
            path = run.run_export(Path(args.run), Path(args.out), Path(args.onnx) if args.onnx else None, args.last,
                                  run.load_cv_summaries(args.cv_summary))
            print(f"bundle written to {path}" + (f" and ONNX to {args.onnx}" if args.onnx else ""))
        return 0
    except (ConfigError, CorpusError) as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 2
    except SerappError as exc:
        print(f"ser-train: {exc}", file=sys.stderr)
        return 1
    except TrainingInterrupted as exc:
        print(f"ser-train: {exc}; continue with --resume --out <run dir>", file=sys.stderr)
        return 130
    except OSError as exc:  # a file the run needs cannot be read or written (WriteError is caught above)
        print(f"ser-train: {exc.filename or 'file'}: {exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
