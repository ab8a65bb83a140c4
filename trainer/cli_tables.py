"""`ser-train crosscorpus | encoder-table | zoo`: the commands that make docs/results.md's tables
(the experiments: trainer/crosscorpus.py, trainer/encoder_table.py, trainer/zoo.py and
trainer/zoo_emovo.py), each table's figures kept in a JSON file and redrawn from it."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from serapp.corpora import CorpusError, parse_data_arg
from trainer import report
from trainer.cli_common import CONFIGS, RESULTS_DOC, cache_dir, cache_options, load_corpora, subcommand
from trainer.config import ConfigError, load_config


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
    cache_options(p)


def add_table_commands(sub) -> None:
    """`crosscorpus`, `encoder-table` and `zoo`."""
    k = subcommand(sub, "crosscorpus", "the cross-corpus table: train both recipes leave-one-corpus-out, "
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
    k.set_defaults(handler=_crosscorpus)
    w = subcommand(sub, "encoder-table", "the encoder recipe leave-one-corpus-out, cold and adapted to each "
                                   "voice, clip and window UA, and the EmoBox folds: the tables in docs/results.md")
    _table_inputs(w)
    w.add_argument("--config", default=str(CONFIGS / "whisper.toml"), metavar="TOML",
                   help="the encoder recipe (default: the whisper config)")
    w.add_argument("--encoder-dir", default="../shared/models/whisper-base", metavar="DIR",
                   help="the folder holding the encoder's published weights (encoder.safetensors)")
    w.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="N",
                   help="seeds: each draws the validation speakers and trains every head again (default: 0 1 2)")
    w.add_argument("--recipes", nargs="+", metavar="NAME", help="the head recipes to compare, the first the "
                   "incumbent: weighted, 'blocks 2+3+4', four-way (default: all three)")
    _table_outputs(w, "runs/encoder-table", "each fold's figures (kept; rerun resumes)", "docs/results/encoder.json",
                   "a config override (repeatable)")
    w.set_defaults(handler=_encoder_table)
    z = subcommand(sub, "zoo", "every architecture on the same footing: the model-zoo table in docs/results.md")
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
    cache_options(z)
    z.set_defaults(handler=_zoo)


def _all_corpora(args, listed: list[str]) -> list:
    """A table's corpora: those given with --data where it names more than RAVDESS, else the
    recipe's list, found under --data-root."""
    others_given = any(parse_data_arg(d)[0] != "ravdess" for d in args.data)
    return load_corpora(args.data, [] if others_given else listed, args.data_root)


def _figures(args, argv: list[str], compute) -> dict:
    """A table's figures: read back from --results (--render-only), or computed, stamped with the
    command that made them and written there. `compute(save)` may save figures so far as it goes."""
    results_path = Path(args.results)
    if args.render_only:
        if not results_path.is_file():
            raise CorpusError(f"{results_path}: no results to render (run without --render-only first)")
        return json.loads(results_path.read_text())

    def save(results: dict) -> None:
        results["command"] = "ser-train " + shlex.join(argv)
        report.write_results(results_path, results)

    results = compute(save)
    save(results)
    return results


def _publish(args, markdown: str, start: str, end: str) -> None:
    report.update_readme(Path(args.readme), markdown, start, end)
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
                                              cache_dir(args), (Path(args.baseline).name, Path(args.config).name),
                                              progress)
        return {**results, "reference_emobox": reference}

    results = _figures(args, argv, compute)
    _publish(args, crosscorpus.render_markdown(results, results.get("reference_emobox")), crosscorpus.START,
             crosscorpus.END)


def _encoder_table(args, argv: list[str]) -> None:
    from trainer import encoder_render, encoder_table

    def compute(save) -> dict:
        unknown = [r for r in args.recipes or () if r not in encoder_table.RECIPES]
        if unknown:
            raise ConfigError(f"--recipes: no recipe named {', '.join(map(repr, unknown))} (there are "
                              f"{', '.join(map(repr, encoder_table.RECIPES))})")
        cfg = load_config(args.config, [*args.set, f"model.encoder_dir={json.dumps(args.encoder_dir)}"])
        corpora = _all_corpora(args, cfg.corpora)
        return encoder_table.run_encoder_table(cfg, corpora, Path(args.out), cache_dir(args), args.emobox_folds,
                                               save, seeds=args.seeds, recipes=tuple(args.recipes or encoder_table.RECIPES))

    results = _figures(args, argv, compute)
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

        results = zoo.run_zoo(configs, corpora, Path(args.out), args.folds, cache_dir(args), args.random_split,
                              args.cross_corpus, args.best, mc, everything, save_costs,
                              Path(args.crosscorpus_out) / "loco", args.jobs, book)
        if not args.configs:
            results["not_run"] = {"speech_encoder": zoo.ENCODER_NOT_RUN}
        if args.emovo:
            results["emovo"] = _zoo_emovo(args, corpora, lambda emo: save_costs({**results, "emovo": emo}), book)
        return {**results, "costs": book.entries}

    results = _figures(args, argv, compute)
    _publish(args, zoo_markdown(results), zoo.START, zoo.END)


def _zoo_emovo(args, corpora: list, progress, book) -> dict:
    from trainer import zoo_emovo

    emovo = next((c for c in corpora if c.name == "emovo"), None) or load_corpora([], ["emovo"], args.data_root)[0]
    encoder = Path(args.encoder_dir)
    configs = zoo_emovo.variants(CONFIGS, args.set, encoder if (encoder / "encoder.safetensors").is_file() else None)
    return zoo_emovo.run_emovo(configs, emovo, Path(args.out) / "emovo", cache_dir(args), args.jobs, progress, book)


def zoo_markdown(results: dict) -> str:
    """The zoo's table, with the EMOVO table under it where `zoo --emovo` ran (trainer/zoo_emovo.py)."""
    from trainer import zoo, zoo_emovo

    return zoo.render_markdown(results, zoo_emovo.render_markdown(results["emovo"]) if "emovo" in results else ())
